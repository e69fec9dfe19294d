"""Pictures: training curves, top-five panels, conv1 filters per tower, a confusion matrix.

Every function saves a PNG with a title and labelled axes and returns its path.
Figures are made with matplotlib's object API (``Figure``, no pyplot), so they
work on a server or in CI with no screen, from threads, and inside a notebook
without touching its backend: show one there with ``IPython.display.Image(path)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .backend import to_numpy

__all__ = [
    "read_metrics",
    "plot_curves",
    "plot_comparison",
    "plot_top5",
    "filter_grid",
    "plot_filters",
    "colour_share",
    "conv1_by_tower",
    "plot_conv1_towers",
    "confusion_matrix",
    "plot_confusion",
    "nearest_neighbours",
    "plot_neighbours",
]


def _save(fig: Any, out: Path) -> Path:
    """Save ``fig`` at ``out`` atomically (temporary name, then rename), in the format its
    suffix names (``.png`` when it names none); ValueError for a suffix matplotlib cannot
    write, OSError when ``out`` cannot be written (nothing is left behind)."""
    kind = out.suffix[1:].lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if kind not in supported:
        raise ValueError(
            f"cannot draw a .{kind} picture: use one of .png, .jpg, .pdf, .svg ({out})"
        )
    tmp = out.with_name(out.name + ".tmp")
    try:
        fig.savefig(tmp, dpi=100, format=kind)
        tmp.replace(out)  # never leave a half-written picture under the final name
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return out


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
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_err = fig.subplots(1, 2)
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
    return _save(fig, out)


def plot_comparison(
    runs: dict[str, Sequence[dict[str, Any]]],
    out: str | Path,
    *,
    keys: Sequence[str] = ("train_top1_err", "val_top1_err"),
    title: str = "",
    threshold: float | None = None,
) -> Path:
    """Error against epochs for several runs on shared axes (the paper's Figure 1 style).

    ``runs`` maps a label to that run's metrics.jsonl records; one panel per key in
    ``keys`` (e.g. training and validation top-1 error), one line per run. An epoch
    cut short by a time limit is drawn at its fraction (``epoch - 1 + epoch_fraction``).
    ``threshold`` (a fraction) draws a dashed horizontal line, e.g. 0.25 for the
    paper's "25% training error".
    """
    out = Path(out)
    if not runs:
        raise ValueError("plot_comparison: give at least one run")
    names = {
        "train_top1_err": "training error (top-1)",
        "val_top1_err": "test error (top-1)",
        "val_top5_err": "test error (top-5)",
    }
    fig = Figure(figsize=(5.5 * len(keys), 4))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    styles = ["o-", "s--", "^-.", "d:"]
    for ax, key in zip(axes, keys, strict=True):
        for i, (label, records) in enumerate(runs.items()):
            x = [r["epoch"] - 1 + r.get("epoch_fraction", 1.0) for r in records]
            ax.plot(x, [100 * r[key] for r in records], styles[i % len(styles)], label=label)
        if threshold is not None:
            ax.axhline(100 * threshold, color="grey", ls=":", lw=1)
        ax.set_xlabel("epochs")
        ax.set_ylabel(f"{names.get(key, key)} (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Comparison")
    fig.tight_layout()
    return _save(fig, out)


def plot_top5(
    images: Sequence[np.ndarray],
    names: Sequence[str],
    top5: Sequence[Sequence[tuple[str, float]]],
    out: str | Path,
    title: str = "",
) -> Path:
    """Each image beside a bar chart of its five most probable classes (the paper's Figure 4, left).

    ``images`` are uint8 HxWx3 arrays, ``names`` their titles, ``top5`` a list of
    (class, probability) pairs per image, most probable first; ``title`` (optional) goes
    above them all.
    """
    out = Path(out)
    n = len(images)
    fig = Figure(figsize=(8, 2.6 * n))
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [1, 1.6]})
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def filter_grid(w: Any, columns: int = 8, gap: int = 1) -> np.ndarray:
    """First-layer kernels as one RGB picture: a grid of tiles, each filter scaled to [0, 1].

    ``w`` is a conv1 weight array (C_out, 3, KH, KW) (NumPy or CuPy). Each filter is
    shifted and scaled on its own (``(f - min f) / (max f - min f)``), as in the paper's
    Figure 3, so that its pattern shows whatever its magnitude; a constant filter is
    drawn mid-grey. Returns a float array (rows * (KH + gap) - gap, columns * (KW + gap)
    - gap, 3) with white gaps.
    """
    w = np.asarray(to_numpy(w), dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(
            f"filter_grid: expected conv1 weights (C_out, 3, KH, KW), got shape {w.shape}; "
            "only filters that see RGB pixels can be drawn as colour tiles"
        )
    if columns < 1 or gap < 0:
        raise ValueError(f"filter_grid: columns must be >= 1 and gap >= 0, got {columns}, {gap}")
    n, _, kh, kw = w.shape
    low = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - low
    tiles = np.where(span > 0, (w - low) / np.where(span > 0, span, 1), 0.5)
    tiles = tiles.transpose(0, 2, 3, 1)  # (C_out, KH, KW, 3)
    rows = -(-n // columns)
    # white canvas of rows*columns cells, each a tile plus its gap below and to the right
    cells = np.ones((rows * columns, kh + gap, kw + gap, 3))
    cells[:n, :kh, :kw] = tiles
    grid = cells.reshape(rows, columns, kh + gap, kw + gap, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (kh + gap), columns * (kw + gap), 3)
    return grid[: grid.shape[0] - gap, : grid.shape[1] - gap]


def plot_filters(
    weights: dict[str, Any], out: str | Path, title: str = "conv1 filters", columns: int = 8
) -> Path:
    """conv1's kernels, one grid per tower side by side (the paper's Figure 3).

    ``weights`` maps a tower's name to its conv1 weights (C_out, 3, KH, KW), e.g.
    ``{"tower a": model.state_dict()["a.conv1.w"], "tower b": ...["b.conv1.w"]}``. In
    the paper the kernels of GPU 1 came out largely colour-agnostic and those of GPU 2
    largely colour-specific.
    """
    out = Path(out)
    if not isinstance(weights, dict):
        raise TypeError(
            f"plot_filters: weights must map a tower's name to its conv1 weights, got "
            f"{type(weights).__name__}; for a model use plot_conv1_towers(model, out)"
        )
    if not weights:
        raise ValueError("plot_filters: give at least one tower's weights")
    grids = {name: filter_grid(w, columns) for name, w in weights.items()}
    fig = Figure(figsize=(4.5 * len(grids), 4.2))
    axes = fig.subplots(1, len(grids), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items(), strict=True):
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(f"{name}: {len(weights[name])} kernels")
        ax.set_xlabel("kernel (each scaled to its own range)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def colour_share(w: Any) -> np.ndarray:
    """Per kernel, the share of its energy that is colour: ``||w - g||^2 / ||w||^2``.

    ``w`` is a conv1 weight array (C_out, 3, KH, KW) (NumPy or CuPy); ``g`` is the
    kernel's grey part, the mean of its three colour planes at each pixel, repeated in
    all three. A grey kernel (three equal planes) scores 0: it sees brightness whatever
    the colour. A kernel whose planes sum to zero at every pixel (pure colour
    opponency, red against green say) scores 1. Kernels with independent random entries
    score 2/3 on average (two of the three colour directions are not grey). A kernel of
    zeros scores 0. Returns a float64 array (C_out,) with values in [0, 1]: the
    statistic behind the paper's "largely color-agnostic" and "largely color-specific"
    towers [6.1, Figure 3].
    """
    w = np.asarray(to_numpy(w), dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(
            f"colour_share: expected conv1 weights (C_out, 3, KH, KW), got shape {w.shape}; "
            "colour is defined for kernels that see RGB pixels"
        )
    grey = w.mean(axis=1, keepdims=True)  # (C_out, 1, KH, KW): the per-pixel channel mean
    colour = ((w - grey) ** 2).sum(axis=(1, 2, 3))
    energy = (w**2).sum(axis=(1, 2, 3))
    return np.divide(colour, energy, out=np.zeros_like(energy), where=energy > 0)


def conv1_by_tower(model: Any) -> dict[str, np.ndarray]:
    """conv1's kernels of ``model``, one host array per tower: ``{"tower a": ..., ...}``.

    A two-tower network (``alexnet``, ``alexnet_cifar``) has parameters ``a.conv1.w``
    and ``b.conv1.w``: they come out in that order, as the paper's GPU 1 and GPU 2. A
    one-tower network (``conv1.w``) gives ``{"conv1": ...}``. Only conv1 is copied to
    the host, not the whole model.
    """
    found: dict[str, np.ndarray] = {}
    for name, p, _ in model.parameters():
        match = re.fullmatch(r"(?:(\w+)\.)?conv1\.w", name)
        if match:
            key = f"tower {match.group(1)}" if match.group(1) else "conv1"
            found[key] = np.array(to_numpy(p), copy=True)
    if not found:
        names = [name for name, _, _ in model.parameters()][:6]
        raise ValueError(
            f"conv1_by_tower: the model has no parameter 'conv1.w' or '<tower>.conv1.w' "
            f"(its first parameters: {names})"
        )
    return dict(sorted(found.items()))


def plot_conv1_towers(
    weights: Any, out: str | Path, title: str = "conv1 kernels per tower", columns: int = 16
) -> Path:
    """conv1's kernels with the towers one above the other, as the paper's Figure 3.

    ``weights`` is a model (its conv1 per tower, see :func:`conv1_by_tower`) or a dict
    that maps a tower's name to its conv1 weights (C_out, 3, KH, KW). For the paper's
    network that is 48 kernels of 11x11x3 per tower: tower a's (GPU 1) in the upper
    block, tower b's (GPU 2) in the lower, as in the paper's caption; ``columns``
    kernels a row. Each kernel is scaled to its own range (:func:`filter_grid`); each
    block's title gives its mean :func:`colour_share`.
    """
    out = Path(out)
    if not isinstance(weights, dict):
        weights = conv1_by_tower(weights)
    if not weights:
        raise ValueError("plot_conv1_towers: give at least one tower's weights")
    grids = {name: filter_grid(w, columns) for name, w in weights.items()}
    width = 8.0
    heights = [width * g.shape[0] / g.shape[1] for g in grids.values()]
    fig = Figure(figsize=(width, sum(heights) + 0.5 * len(grids) + 0.4))
    axes = fig.subplots(len(grids), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (name, grid) in zip(axes[:, 0], grids.items(), strict=True):
        w = weights[name]
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(
            f"{name}: {len(w)} kernels of {w.shape[2]}x{w.shape[3]}x3, "
            f"mean colour share {colour_share(w).mean():.2f}",
            fontsize=10,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> np.ndarray:
    """Counts ``m[true, predicted]``: how often class ``true`` was predicted as ``predicted``.

    ``labels`` and ``predictions`` are integer arrays of the same length with values in
    [0, num_classes). Rows sum to the number of examples of each class.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"confusion_matrix: labels and predictions must be 1-D and of the same length, "
            f"got shapes {labels.shape} and {predictions.shape}"
        )
    for name, a in (("labels", labels), ("predictions", predictions)):
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0
                       or a.max() >= num_classes):  # fmt: skip
            raise ValueError(
                f"confusion_matrix: {name} must be integers in [0, {num_classes}), "
                f"got {a.dtype} from {a.min()} to {a.max()}"
            )
    flat = labels.astype(np.int64) * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, -1)


def plot_confusion(
    labels: Any, predictions: Any, classes: Sequence[str], out: str | Path, title: str = ""
) -> Path:
    """The confusion matrix as a picture, each row in percent of its class; saved to ``out``.

    The diagonal is each class's accuracy; the title gives the overall top-1 error.
    """
    out = Path(out)
    counts = confusion_matrix(labels, predictions, len(classes))
    per_row = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    error = 1 - np.trace(counts) / max(counts.sum(), 1)
    size = max(4.0, 0.55 * len(classes) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(100 * per_row, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of the true class")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(classes) <= 20:  # numbers in the cells while they still fit
        for (i, j), value in np.ndenumerate(per_row):
            colour = "white" if value > 0.5 else "black"
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title or f"Confusion matrix (top-1 error {100 * error:.1f}%)")
    fig.tight_layout()
    return _save(fig, out)


def nearest_neighbours(query: Any, database: Any, k: int = 6) -> np.ndarray:
    """For each query vector, the indices of its ``k`` nearest database vectors.

    Euclidean distance, as the paper's Figure 4 (right) on 4096-d fc7 features [6.1]:
    ``||q - d||^2 = ||q||^2 - 2 q.d + ||d||^2`` for all pairs at once (one matrix
    product). query (Q, D), database (M, D) -> int array (Q, k), nearest first; ties
    keep the lower index.
    """
    q = np.asarray(to_numpy(query), dtype=np.float64)
    d = np.asarray(to_numpy(database), dtype=np.float64)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(
            f"nearest_neighbours: query (Q, D) and database (M, D) must be 2-D with the same D, "
            f"got {q.shape} and {d.shape}"
        )
    if not 1 <= k <= len(d):
        raise ValueError(f"nearest_neighbours: k must be in [1, {len(d)}], got {k}")
    squared = (q * q).sum(1)[:, None] - 2 * q @ d.T + (d * d).sum(1)[None, :]
    return np.argsort(squared, axis=1, kind="stable")[:, :k]


def plot_neighbours(
    query_images: Sequence[np.ndarray],
    neighbour_images: Sequence[Sequence[np.ndarray]],
    out: str | Path,
    title: str = "Nearest neighbours by fc7 features",
    captions: Sequence[Sequence[str]] | None = None,
) -> Path:
    """One row per query: the query image, then its neighbours (the paper's Figure 4, right).

    Images are uint8 HxWx3 arrays; ``captions`` (optional) one list per row with a
    caption for the query and for each neighbour (e.g. class names).
    """
    out = Path(out)
    rows = len(query_images)
    if rows == 0 or len(neighbour_images) != rows:
        raise ValueError(
            f"plot_neighbours: need one list of neighbours per query image, got {rows} queries "
            f"and {len(neighbour_images)} lists"
        )
    cols = 1 + max(len(n) for n in neighbour_images)
    fig = Figure(figsize=(1.6 * cols, 1.7 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        row_images = [query_images[r], *neighbour_images[r]]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row_images):
                ax.axis("off")
                continue
            ax.imshow(row_images[c], interpolation="nearest")
            if captions is not None and c < len(captions[r]):
                ax.set_xlabel(captions[r][c], fontsize=7)
            if c == 0:
                ax.set_ylabel("query", fontsize=8)
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(2)
        if r == 0:
            axes[0][0].set_title("query", fontsize=8)
            for c in range(1, cols):
                axes[0][c].set_title(f"#{c}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)
