"""``python -m minialexnet.experiments NAME``: the paper's ablations at CIFAR scale.

Each experiment trains a matched pair of networks that differ in one thing, with
the same data, the same seed, the same options and the same share of the time
budget, and writes what it measured:

    relu-vs-tanh      [3.1, Figure 1] the four-layer CNN (``cnn4``) with ReLUs against
                      tanh: training error against epochs; how many times fewer
                      epochs the ReLU net needs to reach 25% training error
                      (the paper: six times). As in the paper's figure, no
                      regularization (no augmentation, no weight decay, no dropout)
                      and a constant learning rate; 5,000 training images so that
                      a 9-minute run sees many epochs.
    lrn               [3.3] ``cnn4`` with and without local response normalization:
                      test error (the paper: 13% without, 11% with, on CIFAR-10).
    overlapping-pool  [3.4] ``alexnet-cifar`` with 3x3 windows at stride 2 against
                      2x2 at stride 2 (the paper, on ImageNet: top-1 -0.4%, top-5 -0.3%).
    towers            [3.2] ``alexnet-cifar``: two towers against one tower with half
                      the kernels in conv1-conv4 (the paper, on ImageNet: top-1 -1.7%,
                      top-5 -1.2%, and the two-GPU net trained slightly faster).

Written to ``--out`` (default ``runs/experiments/NAME``): one training folder per
network (metrics.jsonl, curves.png, checkpoints), ``results.json``,
``results.md`` (a table beside the paper's numbers) and ``NAME.png`` (the curves
of both networks on shared axes).

``--budget MINUTES`` (default 20) bounds the whole experiment: each of the two
networks trains for at most 45% of it (``--max-minutes`` of the training script,
whose linear schedule then ends at that time), leaving the rest for loading and
evaluation. Every other option (``--epochs``, ``--train-size``, ``--lr``,
``--batch-size``, ...) goes to ``python -m minialexnet.train`` for both networks.

    python -m minialexnet.experiments list
    python -m minialexnet.experiments relu-vs-tanh --dataset folder:data/cifar10-jpg
    python -m minialexnet.experiments towers --dataset cifar10 --data-dir data --budget 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import train
from .checkpoint import CheckpointError, load_checkpoint
from .models import model_from_config
from .viz import plot_comparison, read_metrics

__all__ = [
    "Experiment",
    "EXPERIMENTS",
    "LEVELS",
    "epochs_to_reach",
    "run_experiment",
    "report",
    "speedup",
    "to_markdown",
    "main",
]

TRAIN_TIME_SHARE = 0.45  # of --budget, per network (two networks: 90%; the rest loads and tests)


@dataclass(frozen=True)
class Experiment:
    """A matched pair: the same training options, two model variants (label, --variant values)."""

    name: str
    section: str
    question: str
    paper: str
    model: str
    runs: tuple[tuple[str, tuple[str, ...]], ...]
    train_args: str  # options of python -m minialexnet.train for both networks
    panels: tuple[str, ...] = ("train_top1_err", "val_top1_err")
    threshold: float | None = None  # training error whose epoch is compared (relu-vs-tanh)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            name="relu-vs-tanh",
            section="3.1, Figure 1",
            question="How much faster does a ReLU network reach 25% training error than tanh?",
            paper="a four-layer CNN on CIFAR-10 reached 25% training error six times faster "
            "with ReLUs than with tanh units",
            model="cnn4",
            runs=(("ReLU", ()), ("tanh", ("activation=tanh",))),
            train_args=(
                "--init paper --no-augment --weight-decay 0 --schedule step --step-every 1000 "
                "--train-size 5000 --val-size 1000 --epochs 100"
            ),
            panels=("train_top1_err",),
            threshold=0.25,
        ),
        Experiment(
            name="lrn",
            section="3.3",
            question="Does local response normalization lower the test error?",
            paper="on CIFAR-10 a four-layer CNN had 13% test error without normalization and "
            "11% with it",
            model="cnn4",
            runs=(("with LRN", ()), ("without LRN", ("lrn=off",))),
            train_args=(
                "--init paper --schedule linear --train-size 20000 --epochs 3 --val-size 2000"
            ),
        ),
        Experiment(
            name="overlapping-pool",
            section="3.4",
            question="Does overlapping pooling (3x3 windows, stride 2) beat 2x2, stride 2?",
            paper="on ImageNet, overlapping pooling lowered top-1 and top-5 error by 0.4% and "
            "0.3% against s = z = 2, and nets with it were slightly harder to overfit",
            model="alexnet-cifar",
            runs=(("pool 3/2 (overlapping)", ()), ("pool 2/2", ("pool=2/2",))),
            train_args="--schedule linear --epochs 1 --batch-size 64 --val-size 2000",
        ),
        Experiment(
            name="towers",
            section="3.2",
            question="Do two towers beat one tower with half the kernels?",
            paper="on ImageNet, the two-GPU net had 1.7% lower top-1 and 1.2% lower top-5 "
            "error than a one-GPU net with half as many kernels in each convolutional layer "
            "(conv5 and the fully connected layers kept their size), and trained slightly faster",
            model="alexnet-cifar",
            runs=(("two towers", ()), ("one tower, half the kernels", ("towers=1",))),
            train_args="--schedule linear --epochs 1 --batch-size 64 --val-size 2000",
        ),
    ]
}


def epochs_to_reach(records: list[dict[str, Any]], threshold: float, key: str = "train_top1_err"):
    """The (fractional) number of epochs after which ``key`` first fell to ``threshold`` or below.

    Interpolated linearly between the ends of the two epochs around the crossing.
    Nothing is assumed before the first record, so a first record already at or
    below the threshold gives its own epoch count. None if it was never reached.
    """
    prev_x, prev_y = None, None
    for r in records:
        x = r["epoch"] - 1 + r.get("epoch_fraction", 1.0)
        y = r[key]
        if y <= threshold:
            if prev_x is None or prev_y is None or prev_y == y:
                return x
            return prev_x + (prev_y - threshold) / (prev_y - y) * (x - prev_x)
        prev_x, prev_y = x, y
    return None


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def _summarise(records: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    if not records:
        return {"epochs": 0.0}
    last = records[-1]
    seconds = sum(r["seconds"] for r in records)
    images = sum(r["images_per_s"] * r["seconds"] for r in records)
    return {
        "epochs": last["epoch"] - 1 + last.get("epoch_fraction", 1.0),
        "train_top1_err": last["train_top1_err"],
        "val_top1_err": last["val_top1_err"],
        "val_top5_err": last["val_top5_err"],
        "best_val_top1_err": min(r["val_top1_err"] for r in records),
        "train_minutes": seconds / 60,
        "images_per_s": images / max(seconds, 1e-9),
        "parameters": model_from_config(config).num_parameters(),
    }


LEVELS = (0.6, 0.5, 0.4, 0.3, 0.25)  # training errors whose epochs relu-vs-tanh reports


def run_experiment(
    experiment: Experiment, out: Path, budget_minutes: float, common: list[str]
) -> dict[str, Any]:
    """Train the pair (one after the other), then write results.json, results.md and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    share = TRAIN_TIME_SHARE * budget_minutes
    for label, variant in experiment.runs:
        run_dir = out / _slug(label)
        argv = [
            "--model", experiment.model,
            *[a for v in variant for a in ("--variant", v)],
            *experiment.train_args.split(),
            "--no-ten-crop", "--max-minutes", f"{share:g}",
            *common,
            "--out", str(run_dir),
        ]  # fmt: skip
        command = "python -m minialexnet.train " + " ".join(argv)
        print(f"\n== {experiment.name}: {label} ==\n{command}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "command.txt").write_text(command + "\n")
        code = train.main(argv)
        if code not in (0, None):  # train said why; its status (2: bad input) is ours
            print(f"experiments: training {label!r} failed (exit {code}); see above",
                  file=sys.stderr)  # fmt: skip
            raise SystemExit(code)
    return report(experiment, out, budget_minutes)


def report(experiment: Experiment, out: Path, budget_minutes: float) -> dict[str, Any]:
    """Read both networks' runs under ``out``; write results.json, results.md and NAME.png.

    Works on finished or interrupted runs alike (``--report-only``): what each
    network's metrics.jsonl holds is what is reported. Raises FileNotFoundError when a
    network has no run under ``out``.
    """
    results: dict[str, Any] = {
        "experiment": experiment.name,
        "section": experiment.section,
        "question": experiment.question,
        "paper": experiment.paper,
        "model": experiment.model,
        "budget_minutes": budget_minutes,
        "train_args": experiment.train_args.split(),
        "runs": {},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    curves: dict[str, list[dict[str, Any]]] = {}
    for label, _ in experiment.runs:
        run_dir = out / _slug(label)
        if not (run_dir / "metrics.jsonl").exists():
            raise FileNotFoundError(
                f"no run of {label!r} in {run_dir}; train it first (leave out "
                "--report-only) or give the --out of an earlier run"
            )
        records = read_metrics(run_dir / "metrics.jsonl")
        _, meta = load_checkpoint(run_dir / "checkpoint.npz")  # the model as it was trained
        config = meta["config"]
        summary = _summarise(records, config)
        command = run_dir / "command.txt"
        summary["command"] = command.read_text().strip() if command.exists() else None
        if experiment.threshold is not None:
            levels = [v for v in LEVELS if v >= experiment.threshold]
            summary["epochs_to_train_err"] = {
                f"{round(100 * v)}%": epochs_to_reach(records, v) for v in levels
            }
        results["runs"][label] = summary
        curves[label] = records
    if experiment.threshold is not None:
        results["speedup"] = speedup(results, experiment.threshold)
    plot = plot_comparison(
        curves,
        out / f"{experiment.name}.png",
        keys=experiment.panels,
        title=f"{experiment.name} [{experiment.section}]: {experiment.model}",
        threshold=experiment.threshold,
    )
    results["plot"] = plot.name
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(to_markdown(results))
    print(f"\n{to_markdown(results)}\nwrote {out / 'results.json'}, results.md and {plot.name}")
    return results


def speedup(results: dict[str, Any], threshold: float) -> dict[str, Any]:
    """How many times fewer epochs the first network needed than the second to reach an error.

    At ``threshold`` (the paper's 25%) if both reached it. Otherwise at the lowest
    level both reached, plus a lower bound at ``threshold`` when only the first
    did (the second's epochs so far over the first's epochs to it).
    """
    (a_label, a), (b_label, b) = results["runs"].items()
    a_to, b_to = a["epochs_to_train_err"], b["epochs_to_train_err"]
    paper = f"{round(100 * threshold)}%"
    if a_to[paper] is not None and b_to[paper] is not None:
        ratio = b_to[paper] / a_to[paper]
        return {"level": paper, "ratio": ratio, "note": f"at {paper} training error: {ratio:.1f}x"}
    out: dict[str, Any] = {"level": None, "ratio": None}
    notes = []
    both = [lv for lv in a_to if a_to[lv] is not None and b_to[lv] is not None]
    if both:
        level = both[-1]
        out.update(level=level, ratio=b_to[level] / a_to[level])
        notes.append(
            f"{b_label} needed {out['ratio']:.1f}x the epochs of {a_label} to reach {level} "
            "training error (the lowest level both reached)"
        )
    if a_to[paper] is not None:
        out["at_least"] = b["epochs"] / a_to[paper]
        notes.append(
            f"{a_label} reached {paper} after {a_to[paper]:.1f} epochs, {b_label} not in "
            f"{b['epochs']:.1f}: at {paper} the ratio is at least {out['at_least']:.1f}x"
        )
    elif not both:
        notes.append(f"neither reached {paper}, nor a common level of {list(a_to)}")
    else:
        notes.append(f"{a_label} did not reach {paper} within the budget")
    out["note"] = "; ".join(notes)
    return out


def to_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables with the paper's claim above them."""
    runs = results["runs"]
    header = ["network", "parameters", "epochs", "train err", "test top-1", "test top-5",
              "images/s", "minutes"]  # fmt: skip
    lines = [
        f"**{results['experiment']}** [{results['section']}]: {results['question']}",
        "",
        f"Paper: {results['paper']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for label, r in runs.items():
        if not r.get("epochs"):
            lines.append(f"| {label} | (no epoch finished) |")
            continue
        row = [label, f"{r['parameters']:,}", f"{r['epochs']:.2f}",
               f"{100 * r['train_top1_err']:.1f}%", f"{100 * r['val_top1_err']:.1f}%",
               f"{100 * r['val_top5_err']:.1f}%", f"{r['images_per_s']:.0f}",
               f"{r['train_minutes']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    if "speedup" in results:
        levels = list(next(iter(runs.values()))["epochs_to_train_err"])
        lines += [
            "",
            "Epochs to reach a training error:",
            "",
            "| network | " + " | ".join(levels) + " |",
            "|---|" + "---|" * len(levels),
        ]
        for label, r in runs.items():
            cells = [("-" if e is None else f"{e:.2f}") for e in r["epochs_to_train_err"].values()]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", f"Speed-up: {results['speedup']['note']}."]
    lines += [
        "",
        f"Model `{results['model']}`, budget {results['budget_minutes']:g} minutes, options "
        f"`{' '.join(results['train_args'])}`; reported {results['date']}. Test errors are "
        "those after the last epoch (centre crop), not the best epoch's; '-': not reached.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.experiments NAME``: train the pair and report; 0 on success."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.experiments",
        description="The paper's ablations at CIFAR scale, as matched pairs of training runs. "
        "Options not listed here go to python -m minialexnet.train for both networks.",
    )
    parser.add_argument("name", choices=[*EXPERIMENTS, "list"], help="which experiment, or list")
    parser.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="minutes for the whole experiment (each network trains for 45%% of it)",
    )
    parser.add_argument("--dataset", default="cifar10", help="cifar10 | folder:PATH | shapes")
    parser.add_argument("--out", help="output folder (default runs/experiments/NAME)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rewrite the table and plot from the runs already in --out",
    )
    args, common = parser.parse_known_args(argv)
    if args.name == "list":
        for e in EXPERIMENTS.values():
            print(f"{e.name:17s} [{e.section}] {e.question}\n{'':17s} paper: {e.paper}")
        return 0
    if args.budget <= 0:
        parser.error(f"--budget must be positive minutes, got {args.budget}")
    for flag in ("--model", "--variant", "--out", "--max-minutes", "--resume"):
        if any(a == flag or a.startswith(flag + "=") for a in common):
            parser.error(f"{flag} is set by the experiment itself; leave it out")
    out = Path(args.out) if args.out else Path("runs") / "experiments" / args.name
    try:
        if args.report_only:
            report(EXPERIMENTS[args.name], out, args.budget)
        else:
            common = ["--dataset", args.dataset, *common]
            run_experiment(EXPERIMENTS[args.name], out, args.budget, common)
    except (FileNotFoundError, CheckpointError) as exc:  # no runs in --out, or not ours
        print(f"minialexnet.experiments: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
