"""Pictures: training curves from ``metrics.jsonl`` and top-five prediction panels.

Every function saves a PNG with a title and labelled axes, using matplotlib's
non-interactive "Agg" backend, so it works on a server or in CI with no screen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

__all__ = ["read_metrics", "plot_curves", "plot_top5"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, one dict per epoch (blank lines skipped)."""
    lines = Path(path).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def plot_curves(records: Sequence[dict[str, Any]], out: str | Path, title: str = "") -> Path:
    """Loss and error rates against epochs, side by side, saved to ``out`` (PNG).

    ``records`` are metrics.jsonl objects: epoch, train_loss, train_top1_err,
    val_top1_err, val_top5_err, lr. Errors are fractions in [0, 1], drawn in percent.
    """
    out = Path(out)
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in records], "o-", label="train loss")
    if any("val_loss" in r for r in records):
        ax_loss.plot(epochs, [r.get("val_loss") for r in records], "s-", label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.set_title("Loss")
    ax_loss.legend()
    for key, label, style in [
        ("train_top1_err", "train top-1", "o-"),
        ("val_top1_err", "val top-1", "s-"),
        ("val_top5_err", "val top-5", "^-"),
    ]:
        ax_err.plot(epochs, [100 * r[key] for r in records], style, label=label)
    ax_err.set_xlabel("epoch")
    ax_err.set_ylabel("error (%)")
    ax_err.set_ylim(0, 100)
    ax_err.set_title("Error rates")
    ax_err.legend()
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.suptitle(title or "Training curves")
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)  # never leave a half-written picture under the final name
    return out


def plot_top5(
    images: Sequence[np.ndarray],
    names: Sequence[str],
    top5: Sequence[Sequence[tuple[str, float]]],
    out: str | Path,
) -> Path:
    """Each image beside a bar chart of its five most probable classes (the paper's Figure 4, left).

    ``images`` are uint8 HxWx3 arrays, ``names`` their titles, ``top5`` a list of
    (class, probability) pairs per image, most probable first.
    """
    out = Path(out)
    n = len(images)
    fig, axes = plt.subplots(
        n, 2, figsize=(8, 2.6 * n), squeeze=False, gridspec_kw={"width_ratios": [1, 1.6]}
    )
    for row, (img, name, preds) in enumerate(zip(images, names, top5, strict=True)):
        ax_img, ax_bar = axes[row]
        ax_img.imshow(img)
        ax_img.set_title(name, fontsize=9)
        ax_img.axis("off")
        classes = [c for c, _ in preds][::-1]
        probs = [100 * p for _, p in preds][::-1]
        ax_bar.barh(range(len(probs)), probs, color="tab:blue")
        ax_bar.set_yticks(range(len(probs)), classes)
        ax_bar.set_xlim(0, 100)
        ax_bar.set_xlabel("probability (%)")
        ax_bar.set_title("top-5 predictions", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
