# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 13: Model and data parallelism
#
# The paper trained one network on two GPUs by cutting the *network* in two: half of the
# kernels of every layer on each GPU, talking at a few layers (model parallelism, chapter
# 09). Today one usually cuts the *batch* instead: every device holds the whole network,
# takes its own share of the images, and the devices average their gradients once a step
# (data parallelism). This chapter counts what each way moves between devices, from the
# model's real shapes; does data parallelism by hand in one process; and then runs it for
# real, two processes on a laptop, and measures it.
#
# ## Setup
#
# - Locally, from a checkout: `make tutorials` (creates `.venv` and opens JupyterLab).
# - In a hosted Jupyter: `%pip install "minialexnet[mpi] @ git+<URL of this repository>"`,
#   or from a checkout `%pip install -e '/path/to/minialexnet[mpi]'`.
# - The second half starts real processes with `mpiexec`. It needs the `mpi` extra
#   (mpi4py, and the MPICH wheel, which puts `mpiexec` next to Python):
#   `pip install -e '.[mpi]'` from the repository root (`make tutorials` and `make test`
#   install it).
#   Without it, those cells say so and skip; the first half runs anyway.
# - `MINIALEXNET_FAST=1`: small batches and few steps (seconds); without it the
#   measurement uses the paper's batch of 128 and takes about a minute on a laptop CPU.
#   Files go to `tutorial-out/` in the current folder.

# %%
try:
    import minialexnet
    from minialexnet.tutorial import FAST, check_close, pick
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout run `make tutorials`, "
        "or `%pip install -e '/path/to/minialexnet'` (add [mpi] for the multi-process part)."
    ) from exc

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minialexnet import functional as F
from minialexnet.backend import Device
from minialexnet.checkpoint import load_checkpoint, unpack
from minialexnet.data import dataset_statistics, load_dataset, train_transform
from minialexnet.distributed import DataParallel, Dist, FlatGrads
from minialexnet.models import model_from_config
from minialexnet.towers import Exchange, Gather

OUT = Path("tutorial-out")
OUT.mkdir(exist_ok=True)
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
print("minialexnet from", minialexnet.__file__, "| fast mode:", FAST)
print("mpiexec:", MPIEXEC if HAVE_MPI else "not found (with mpi4py): pip install -e '.[mpi]'")

# %% [markdown]
# ## What the paper says
#
# [3.2] "A single GTX 580 GPU has only 3GB of memory, which limits the maximum size of the
# networks that can be trained on it. [...] Therefore we spread the net across two GPUs.
# [...] The parallelization scheme that we employ essentially puts half of the kernels
# (or neurons) on each GPU, with one additional trick: the GPUs communicate only in certain
# layers. This means that, for example, the kernels of layer 3 take input from all kernel
# maps in layer 2. However, kernels in layer 4 take input only from those kernel maps in
# layer 3 which reside on the same GPU."
#
# Two years later Krizhevsky's "One weird trick for parallelizing convolutional neural
# networks" (2014) split the network where its costs split: the convolutional layers hold
# 5% of the parameters and do 90-95% of the computation, the fully connected layers the
# opposite. So: **data parallelism for the convolutions** (every device a copy, its own
# images), **model parallelism for the fully connected layers** (every device 1/N of their
# neurons). The library's data-parallel training (`mpiexec -n N python -m
# minialexnet.train`, `docs/distributed.md`) is the plain form, data parallel everywhere.
#
# ## Model parallelism: what crosses between the towers
#
# In the two-tower network (`minialexnet/towers.py`, chapter 09) arrays cross between the
# devices only in three kinds of stage: `Broadcast` (the image to both towers), `Exchange`
# (each tower's maps to the other, into conv3, fc6 and fc7) and `Gather` (tower b's fc7
# output to device 0, for fc8). Backward, each crossing sends the gradient of what it
# sent back home: the same number of bytes the other way. From the shapes alone:

# %%
def tower_crossings(model):
    """(stage, kind, floats that one image sends from each tower to another device)."""
    shape, rows = (1, 3, model.input_size, model.input_size), []
    for label, stage in model.stages:
        if isinstance(stage, Exchange):  # every tower gets every other tower's maps
            sent = [math.prod(s) * (len(shape) - 1) for s in shape]
            rows.append((label, "Exchange", sent))
        elif isinstance(stage, Gather):  # the towers not on the gathering device send theirs
            sent = [0 if d == stage.device else math.prod(s)
                    for d, s in zip(stage.devices, shape, strict=True)]  # fmt: skip
            rows.append((label, "Gather", sent))
        _, shape = stage.describe(label, shape)
    return rows


def crossing_bytes(model):
    """Bytes that cross between the devices per image, forward and backward together."""
    floats = sum(sum(sent) for _, _, sent in tower_crossings(model))
    return 2 * floats * model.dtype.itemsize


two_devices = ["cpu:0", "cpu:1"]  # simulated devices (chapter 09): no GPU needed
paper = model_from_config({"arch": "alexnet", "num_classes": 1000}, devices=two_devices)
small = model_from_config({"arch": "alexnet-cifar", "num_classes": 10}, devices=two_devices)
for model in (paper, small):
    print(f"{model.config['arch']}: forward, floats per image sent by tower a, tower b")
    for label, kind, sent in tower_crossings(model):
        print(f"  {label:<9} {kind:<9} {sent[0]:>7,} {sent[1]:>7,}  "
              f"= {sum(sent) * 4:>9,} bytes")  # fmt: skip
    print(f"  forward + backward: {crossing_bytes(model):,} bytes per image\n")

# %% [markdown]
# The big crossing is the first: conv2's pooled maps, 128 channels of 13x13 per tower,
# nearly three times the bytes of everything after it together. The paper chose which
# layers cross so as to "tune the amount of communication until it is an acceptable
# fraction of the amount of computation" [3.2]: connecting conv4 and conv5 too would add
# two crossings larger still (192 maps of 13x13 per tower each). Per image the paper's
# network moves about 0.47 MB between its GPUs in a step.
#
# The count above is arithmetic on shapes. Check it against what really moves: every
# move between devices goes through `Device.asarray`, so wrap it in a counter for the
# length of one training step (forward with dropout, loss, backward) on two simulated
# devices, and count the bytes of every array that changes device. (`input_grad = False`,
# as in training: no gradient for the image itself, which would cross too.)

# %%
@contextmanager
def count_moves():
    """Count the bytes Device.asarray copies from one device to another (and from the host)."""
    moved = {"device to device": 0, "host to device": 0}
    original = Device.asarray

    def counting(self, x, dtype=None):
        source = getattr(x, "device_name", None)  # None: a host (plain NumPy) array
        if self.index is not None and source != self.name:  # onto a device it is not on
            moved["host to device" if source is None else "device to device"] += x.nbytes
        return original(self, x, dtype)

    Device.asarray = counting
    try:
        yield moved
    finally:
        Device.asarray = original


rng = np.random.default_rng(0)
for model in (paper, small):
    model.input_grad = False
    b = 2
    x = rng.standard_normal((b, 3, model.input_size, model.input_size)).astype(np.float32)
    y = rng.integers(0, model.config["num_classes"], b)
    with count_moves() as moved:
        model.reseed(0)
        loss, dlogits = F.softmax_cross_entropy(model.forward(x, train=True), y)
        model.backward(dlogits)
    per_image = moved["device to device"] // b
    print(f"{model.config['arch']}: measured {per_image:,} bytes per image between the "
          f"devices; {moved['host to device'] // b:,} from the host (the image, to both)")
    assert per_image == crossing_bytes(model), (per_image, crossing_bytes(model))
print("checked: what crosses is exactly the Exchange and Gather shapes, forward and back")

# %% [markdown]
# What model parallelism never moves: the parameters and their gradients. Each weight
# lives on one device and is updated there. That is where the two ways differ most.
#
# ## Data parallelism: what crosses is the gradient
#
# With N devices (ranks), each holds the whole network and takes $B/N$ rows of every
# global batch of $B$. The loss of the batch is the mean of the rows' losses, so its
# gradient is the mean of the shards' gradients:
#
# $$\frac{\partial}{\partial w}\, \frac1B \sum_{i=1}^{B} \ell_i = \frac1N \sum_{r=1}^{N}
#   \frac{\partial}{\partial w}\, \frac{N}{B} \sum_{i \in \text{shard } r} \ell_i .$$
#
# Each rank computes its term; one **allreduce** (the sum over ranks, handed to every
# rank) of all gradients, divided by N, gives every rank the same mean, and each applies
# the same SGD step, so the copies stay identical. The library copies the gradients into
# flat buffers (`distributed.FlatGrads`) so that a step does one allreduce per buffer, not
# one per parameter: by default two, the fully connected layers' (complete first in the
# backward pass, so their allreduce starts while the convolutions' backward still runs)
# and the convolutions'; `--no-overlap` makes it one buffer after the backward. Either
# way the bytes are the whole model's gradient:

# %%
for model in (paper, small):
    flat = FlatGrads(model.parameters())
    conv = sum(p.nbytes for name, p, _ in model.parameters() if "conv" in name)
    print(f"{model.config['arch']}: {model.num_parameters():,} parameters, flat gradient "
          f"{flat.nbytes:,} bytes ({flat.nbytes / 1e6:.1f} MB); convolutions "
          f"{conv / flat.nbytes:.1%} of it")  # fmt: skip

# %% [markdown]
# ### Data parallelism by hand, in one process
#
# Before any process is started: two "ranks" in one process, each a `DataParallel` view of
# the same model (the object the training script uses), with a stand-in that only knows
# its rank. Each takes its shard of one global batch; the mean of their gradients must be
# the gradient of the whole batch.
#
# One detail matters: dropout [4.2]. A mask drawn by each rank for its own rows would
# differ from the mask one process draws for the batch. `DataParallel.reseed` draws the
# masks for all $B$ rows on every rank and keeps the rank's rows (`distributed.shard`),
# so row $i$ gets the same mask whatever N is. Without it (plain `model.reseed`) the
# gradients no longer agree:

# %%
class Rank(Dist):
    """Stands in for process `rank` of `size`; communicates nothing (we average by hand)."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def flat_gradient(model, x, y):
    """Forward with dropout, loss, backward; all gradients as one flat vector (a copy)."""
    loss, dlogits = F.softmax_cross_entropy(model.forward(x, train=True), y)
    model.backward(dlogits)
    flat = FlatGrads(model.parameters())
    flat.copy_in()
    return flat.groups[0][0].copy()


B, N, seed = pick(16, 64), 2, 7
net = model_from_config({"arch": "alexnet-cifar", "num_classes": 10, "init": "balanced"}, seed=0)
shapes = load_dataset("shapes", "train", size=B, image_size=32, seed=0)
x = train_transform(shapes.images, np.random.default_rng(0), stats=dataset_statistics(
    shapes.images), crop=32, pad=4)  # fmt: skip
y = shapes.labels

net.reseed(seed)
whole = flat_gradient(net, x, y)  # one process, the whole batch

shards, naive = [], []
for r in range(N):
    dp = DataParallel(Rank(r, N), net, B)
    xs, ys = dp.shard(x, y)  # rows [r B/N, (r+1) B/N)
    dp.reseed(net, seed)  # dropout masks drawn for all B rows, this rank's kept
    shards.append(flat_gradient(net, xs, ys))
    net.reseed(seed)  # the naive way: masks drawn for the shard alone
    naive.append(flat_gradient(net, xs, ys))
print(f"global batch {B} = {N} ranks x {B // N} rows; gradient of {whole.size:,} numbers")
check_close("mean of the shards' gradients vs the whole batch's", np.mean(shards, axis=0),
            whole, 1e-5)  # fmt: skip
naive_err = np.linalg.norm(np.mean(naive, axis=0) - whole) / np.linalg.norm(whole)
print(f"with masks drawn per shard instead: relative error {naive_err:.2f} (a different step)")
assert naive_err > 1e-2

# %% [markdown]
# Equal up to float32 rounding, not bit for bit: the sums over the batch inside the
# weight gradients' matrix products are now split in two and added in another order.
#
# ### The allreduce, and why it costs up to two gradients per rank
#
# An allreduce that sends the fewest bytes a rank can send, $2\frac{N-1}{N} S$ for a
# buffer of $S$ bytes, is the **ring**: cut each rank's buffer into N chunks.
# *Reduce-scatter*, N-1 steps: each rank sends one chunk to its right neighbour, which
# adds it to its own; after them rank r holds the complete sum of one chunk.
# *All-gather*, N-1 steps: the complete chunks go round the ring once. Each step a rank
# sends $S/N$ bytes, so in all $2\frac{N-1}{N} S$: the gradient once at N = 2, and
# almost twice for many ranks, however many. Written out:

# %%
def ring_allreduce_mean(buffers):
    """The mean of N equal buffers, computed as a ring of N ranks would; (results, bytes sent)."""
    n = len(buffers)
    chunks = [np.array_split(b.copy(), n) for b in buffers]  # chunks[rank][chunk]
    sent = [0] * n
    for step in range(n - 1):  # reduce-scatter: rank r sends chunk r - step to rank r + 1
        msgs = [(r, (r - step) % n, chunks[r][(r - step) % n].copy()) for r in range(n)]
        for r, c, data in msgs:
            chunks[(r + 1) % n][c] += data
            sent[r] += data.nbytes
    for step in range(n - 1):  # all-gather: rank r passes on the complete chunk r + 1 - step
        msgs = [(r, (r + 1 - step) % n, chunks[r][(r + 1 - step) % n].copy()) for r in range(n)]
        for r, c, data in msgs:
            chunks[(r + 1) % n][c] = data
            sent[r] += data.nbytes
    return [np.concatenate(c) / n for c in chunks], sent


S = 2**15  # a buffer of 32 KiB: 4096 float64 numbers
for n in (2, 4, 8):
    grads = [np.random.default_rng(r).standard_normal(S // 8) for r in range(n)]
    results, sent = ring_allreduce_mean(grads)
    check_close(f"ring of {n}: every rank's result vs the mean", np.stack(results),
                np.stack([np.mean(grads, axis=0)] * n), 1e-12)  # fmt: skip
    print(f"  each rank sent {sent[0]:,} bytes = {sent[0] / S:.2f} S; 2 (N-1)/N = "
          f"{2 * (n - 1) / n:.2f}")  # fmt: skip
    assert all(s == 2 * (n - 1) * S // n for s in sent)

# %% [markdown]
# (MPI and NCCL pick among rings, trees and other schemes by size; for large buffers the
# bytes are those of the ring.)
#
# ## Bytes per step: model, data and hybrid parallelism
#
# Now the three ways side by side, for two devices, as a function of the global batch
# $B$, counting the bytes sent by all devices together in one step:
#
# - **model parallel** (the paper's towers): $B \times$ the crossings per image measured
#   above; the parameters stay put;
# - **data parallel**: an allreduce of the flat gradient, $2\frac{N-1}{N} S$ per rank,
#   $2(N-1)S$ in all, whatever $B$ is;
# - **hybrid** ("one weird trick"): an allreduce of the convolutions' gradients only, and
#   the activations where the network changes from data to model parallel: every device
#   needs the pool5 output of all $B$ images (an all-gather, $(N-1) \times B \times$ pool5
#   bytes in all), and its gradient goes back (the same again). With fc6 and fc7 split by
#   neurons too, fc7 needs all of fc6's outputs and fc8 all of fc7's: they are gathered
#   the same way, and counted below.

# %%
def bytes_per_step(model, batch, n=2):
    """Bytes sent by all n devices together in one step, by each way of splitting."""
    params = list(model.parameters())
    grad = sum(p.nbytes for _, p, _ in params)
    conv = sum(p.nbytes for name, p, _ in params if "conv" in name)
    rows = {row[0]: row[1] for row in model.layer_rows()}
    per_image = sum(math.prod(rows[f"{t}.{layer}"][1:]) for t in "ab"
                    for layer in ("flatten", "fc6", "fc7")) * model.dtype.itemsize  # fmt: skip
    return {
        "model parallel (towers)": batch * crossing_bytes(model),
        "data parallel": 2 * (n - 1) * grad,
        "hybrid": 2 * (n - 1) * conv + 2 * (n - 1) * batch * per_image,
    }


batches = 2.0 ** np.arange(3, 14)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, model in zip(axes, (paper, small), strict=True):
    table = [bytes_per_step(model, b) for b in batches]
    for name, style in zip(table[0], ("-o", "-s", "-^"), strict=True):
        ax.loglog(batches, [t[name] / 1e6 for t in table], style, ms=4, label=name)
    ax.axvline(128, color="grey", ls=":", lw=1)
    ax.text(128 * 1.1, 0.03, "B = 128, the paper's", color="grey", fontsize=8,
            transform=ax.get_xaxis_transform())  # fmt: skip
    ax.set_title(f"{model.config['arch']} ({model.num_parameters() / 1e6:.1f} M parameters)")
    ax.set_xlabel("global batch B (images per step)")
    ax.grid(alpha=0.3, which="both")
axes[0].set_ylabel("MB sent per step, both devices together")
axes[0].legend(loc="upper left", fontsize=8)
fig.suptitle("What two devices send each other in one training step")
plt.tight_layout()
plt.show()

print(f"{'at B = 128':<26}{'alexnet':>14}{'alexnet-cifar':>16}")
at128 = [bytes_per_step(m, 128) for m in (paper, small)]
for name in at128[0]:
    print(f"{name:<26}{at128[0][name] / 1e6:>11.1f} MB{at128[1][name] / 1e6:>13.1f} MB")
even = {m.config["arch"]: bytes_per_step(m, 1)["data parallel"] / crossing_bytes(m)
        for m in (paper, small)}  # fmt: skip
print("model parallel sends fewer bytes than data parallel below B =",
      ", ".join(f"{v:,.0f} ({k})" for k, v in even.items()))

# %% [markdown]
# At the paper's batch of 128 the paper's own scheme is the frugal one: its towers send
# each other about 60 MB a step, data parallelism about 490 MB (twice the 244 MB
# gradient), because 96% of that gradient belongs to fc6-fc8, which do under a tenth of
# the arithmetic (chapter 09). At that batch the hybrid sends less than either. Bytes are
# not the whole story, though: the towers wait for each other at every crossing (eight
# times a step), the split is fixed at two devices, and a tower's activations are needed
# before the next layer can start, while most of a gradient allreduce can travel while
# the backward pass still computes (`docs/distributed.md`, "Overlap"). Data parallelism
# stretches to any N with no change to the network, which is why it is the default.
#
# ## For real: two processes on this machine
#
# `mpiexec -n 2 python -m minialexnet.train ...` starts the training script twice. MPI
# gives each process its rank; each reads the same data, in the same order (the same
# seed), keeps its shard of every batch, and the two meet once a step in the allreduce.
# Rank 0 alone prints and writes the run's files. The cells below launch such runs with
# `subprocess`; `mpiexec` is the one next to this Python (the MPICH wheel), else the
# one on `PATH`.

# %%
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}


def launch(cmd, env=ENV, keep=None):
    """Run a command; print it (shortened) and its output (the lines that start with one of
    `keep`, if given); stop with its whole output if it fails. Returns its output."""
    short = " ".join(Path(c).name if c in (sys.executable, MPIEXEC) else
                     "'<script>'" if "\n" in c else c for c in cmd)  # fmt: skip
    print("$", short)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{short} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    lines = done.stdout.rstrip().splitlines()
    lines = lines if keep is None else [line for line in lines if line.startswith(keep)]
    if lines:
        print("\n".join(lines))
    print(f"({time.perf_counter() - start:.1f} s)")
    return done.stdout


def needs_mpi(what):
    """True when the cell can run; else says what it skipped and how to install MPI."""
    if not HAVE_MPI:
        print(f"skipped: {what} needs mpi4py and mpiexec: pip install -e '.[mpi]' from the "
              "repository root (or %pip install 'minialexnet[mpi]'); restart the kernel")
    return HAVE_MPI


# %% [markdown]
# ### Two processes train exactly as one
#
# The claim of the library (and of the derivation above): with the same global batch, N
# processes make the same steps as one process, up to float32 rounding. Train the same
# short run three times, once as one process and twice as two (`--batch-size` is the
# global batch: 2 x 8 rows), and compare the saved weights.

# %%
steps = pick(10, 20)
run = ["-m", "minialexnet.train", "--dataset", "shapes", "--epochs", "1",
       "--train-size", str(16 * steps), "--val-size", "32", "--batch-size", "16",
       "--seed", "0", "--no-ten-crop", "--quiet", "--workers", "1"]  # fmt: skip
weights = {}
if needs_mpi("the one-against-two-processes check"):
    for name, launcher in (("one", []), ("two", [MPIEXEC, "-n", "2"]),
                           ("again", [MPIEXEC, "-n", "2"])):  # fmt: skip
        out = OUT / f"ch13-{name}"
        shutil.rmtree(out, ignore_errors=True)
        launch([*launcher, sys.executable, *run, "--out", str(out)],
               keep=("data parallel", "epoch 1"))  # fmt: skip
        weights[name] = unpack(load_checkpoint(out / "checkpoint.npz")[0], "model")

# %%
if weights:
    one, two, again = (np.concatenate([w[k].ravel() for k in sorted(w)]).astype(np.float64)
                       for w in (weights["one"], weights["two"], weights["again"]))  # fmt: skip
    start = model_from_config({"arch": "alexnet-cifar", "num_classes": 10, "init": "balanced"},
                              seed=0).state_dict()  # fmt: skip
    start = np.concatenate([start[k].ravel() for k in sorted(start)]).astype(np.float64)
    moved = np.linalg.norm(one - start) / np.linalg.norm(one)
    print(f"{steps} steps moved the weights by {moved:.1e} (relative), from the same start")
    err = check_close("weights after 2 processes vs after 1 process", two, one, 1e-4)
    print(f"largest difference of one weight: {np.abs(two - one).max():.1e}")
    assert err < moved / 10, "the difference should be far below what training changed"
    assert np.array_equal(two, again), "two runs with 2 processes should be bit-identical"
    print("checked: two runs with 2 processes are identical bit for bit")

# %% [markdown]
# The two-process weights differ from the one-process weights by float32 rounding (the
# gradient is summed in another order), far below what the steps themselves changed;
# and two two-process runs are identical to the bit, since every process does the same
# operations in the same order each time. Resuming an interrupted run (`--resume`) keeps
# this: it ends where the uninterrupted run ends (`tests/test_distributed.py`).
#
# ### How fast: one process, two towers, two processes
#
# `python -m minialexnet.bench scaling` times whole training steps of `alexnet-cifar`
# (forward, backward, the allreduce, the SGD update) on random images, with 1 and then
# 2 processes, one core each (one BLAS thread, the towers one after the other), and
# reports images/s and the share of each step spent in the allreduce (the transfer and
# any wait for the slower rank). `--overlap both` times two processes twice: the
# allreduce after the backward pass, and the fc layers' part sent during it.
#
# For model parallelism on the same two cores, the library's two-tower network can run
# its towers side by side, one thread and one core each (`minialexnet/concurrency.py`;
# the paper's two GPUs). The same timing code times that: one process, pinned to two
# cores, towers in parallel.

# %%
batch, timed = pick(32, 128), pick(2, 10)
bench = [sys.executable, "-m", "minialexnet.bench", "scaling", "--model", "alexnet-cifar",
         "--batch", str(batch), "--steps", str(timed), "--overlap", "both",
         "--json", str(OUT / "ch13-scaling.json")]  # fmt: skip
PIN_TWO_CORES = (  # the towers' threads on two cores, as the two processes have
    "import os, runpy, sys\n"
    "if hasattr(os, 'sched_setaffinity'):\n"
    "    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])\n"
    "sys.argv[0] = 'minialexnet.bench.scaling'\n"
    "runpy.run_module('minialexnet.bench.scaling', run_name='__main__')\n"
)
rows = []
if needs_mpi("the scaling measurement"):
    launch(bench)
    rows = json.loads((OUT / "ch13-scaling.json").read_text())["rows"]
    towers = launch([MPIEXEC, "-n", "1", sys.executable, "-c", PIN_TWO_CORES, "--worker",
                     "--model", "alexnet-cifar", "--batch", str(batch), "--steps", str(timed)],
                    env={**ENV, "MINIALEXNET_TOWER_THREADS": "1"}, keep=())  # fmt: skip
    tower_row = json.loads(towers.strip().splitlines()[-1])
    print(f"one process, towers side by side on two cores: {tower_row['images_per_s']:.1f} "
          "images/s")

# %%
if rows:
    one_rank = next(r for r in rows if r["ranks"] == 1)
    after = next(r for r in rows if r["ranks"] == 2 and r.get("overlap") == "off")
    during = next(r for r in rows if r["ranks"] == 2 and r.get("overlap") == "on")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = ["1 process,\n1 core", "model parallel:\n2 towers", "data parallel:\nallreduce after",
              "data parallel:\nfc part during"]  # fmt: skip
    speeds = [r["images_per_s"] for r in (one_rank, tower_row, after, during)]
    bars = left.bar(labels, speeds, color=["grey", "tab:orange", "tab:blue", "tab:cyan"])
    left.axhline(2 * speeds[0], color="k", ls="--", lw=1, label="twice one core")
    for bar, v in zip(bars, speeds, strict=True):
        left.text(bar.get_x() + bar.get_width() / 2, v + 0.03 * speeds[0],
                  f"{v:.0f} ({v / speeds[0]:.2f}x)", ha="center", va="bottom", fontsize=9,
                  bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # fmt: skip
    left.set_ylim(0, 2.4 * speeds[0])
    left.set_ylabel("training images/s")
    left.set_title(f"alexnet-cifar, global batch {batch}, two cores at most")
    left.legend(loc="upper left", fontsize=8)
    left.tick_params(axis="x", labelsize=8)

    timed_rows = (one_rank, after, during)
    step_ms = [1e3 * r["seconds_per_step"] for r in timed_rows]
    comm_ms = [v * r["allreduce_share"] for v, r in zip(step_ms, timed_rows, strict=True)]
    compute_ms = [v - c for v, c in zip(step_ms, comm_ms, strict=True)]
    names = ["1 process", "2 processes,\nallreduce after", "2 processes,\nfc part during"]
    right.bar(names, compute_ms, color="tab:blue", label="forward, backward, update")
    right.bar(names, comm_ms, bottom=compute_ms, color="tab:red",
              label="in the allreduce (and waiting)")  # fmt: skip
    right.hlines(step_ms[0] / 2, 0.6, 2.4, color="k", ls="--", lw=1,
                 label="half of one process's step")  # fmt: skip
    for i, r in enumerate(timed_rows):
        what = (f"{comm_ms[i]:.1f} ms ({100 * r['allreduce_share']:.1f}%)\nin the allreduce"
                if r["ranks"] > 1 else "no allreduce")  # fmt: skip
        right.text(i, step_ms[i] + 0.03 * step_ms[0], f"{step_ms[i]:.0f} ms a step\n{what}",
                   ha="center", va="bottom", fontsize=8,
                   bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # fmt: skip
    right.set_ylim(0, 1.25 * max(step_ms))
    right.set_ylabel("ms per step (rank 0)")
    right.set_title(f"one step; {after['allreduce_bytes'] / 1e6:.1f} MB allreduced per rank")
    right.legend(loc="upper right", fontsize=8)
    right.tick_params(axis="x", labelsize=8)
    plt.tight_layout()
    plt.show()
    seconds = comm_ms[1] / 1e3
    print(f"after the backward, the allreduce of {after['allreduce_bytes'] / 1e6:.1f} MB took "
          f"{comm_ms[1]:.1f} ms a step (the transfer and any wait for the other rank): at least "
          f"{after['allreduce_bytes'] / max(seconds, 1e-9) / 1e9:.2f} GB/s through shared "
          "memory")  # fmt: skip

# %% [markdown]
# On an idle machine two processes give about twice the images/s of one: each does half
# of every step, and the allreduce of 11.4 MB through shared memory costs a few percent of
# a step (the project's 2-core machine: 1.95-2.19x, 1.5-3.9% of a step in the allreduce;
# `docs/performance.md`, "Data parallel: scaling"). A little more than twice repeats from
# run to run: each process works on half the batch, and one process alone at batch 64
# also runs 7-8% more images/s than at 128 (measured there too), likely because the
# smaller arrays fit the caches better.
# The towers side by side come close (1.81-2.00x there): in this network nearly all the
# work is inside the towers, and on one machine a crossing is only a concatenation in
# memory. Their limits are elsewhere: the split is fixed at two, and between real devices
# every crossing sits on the critical path.
#
# Sending the fc layers' gradients during the backward pass changes nothing measurable
# here: on a CPU the same cores compute and copy (and MPICH moves a non-blocking
# allreduce only when the library pokes it, at each stage boundary). It is meant for GPUs,
# where NCCL copies on a stream of its own while the GPU computes. On a machine that other
# programs keep busy every figure drops, the two processes' most: they need two free cores
# at the same moments. (Between machines the allreduce is far slower than shared memory;
# `docs/distributed.md` works out where data parallelism stops paying.)
#
# The claims above, checked on a full run (fast mode times too few, too small steps);
# the speed-up only where there are two cores, and loosely, since a busy machine lowers it:

# %%
if rows and not FAST:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    speedups = [r["images_per_s"] / one_rank["images_per_s"] for r in (after, during)]
    assert max(after["allreduce_share"], during["allreduce_share"]) < 0.2, (after, during)
    if cores >= 2:
        assert max(speedups) > 1.25, f"2 processes only {max(speedups):.2f}x one: a busy machine?"
    print(f"checked: 2 processes on {cores} cores {speedups[0]:.2f}x and {speedups[1]:.2f}x one "
          f"process (allreduce after / fc part during the backward), "
          f"{100 * after['allreduce_share']:.1f}% and {100 * during['allreduce_share']:.1f}% "
          f"of a step in the allreduce; the towers "
          f"{tower_row['images_per_s'] / one_rank['images_per_s']:.2f}x")  # fmt: skip
elif rows:
    print("fast mode: too few steps to judge speed; the checks run without MINIALEXNET_FAST")

# %% [markdown]
# ## Exercises
#
# 1. **More processes than cores.** Run `python -m minialexnet.bench scaling --ranks
#    1,2,3,4` on a machine with two cores. What happens to images/s and to the allreduce
#    share from 3 ranks on, and why does the "allreduce" now include waiting?
# 2. **The hybrid, written out.** Build a small network from `minialexnet.layers` (a few
#    `Conv2d`, `ReLU` and `MaxPool2d`, a `Flatten`, then three `Linear` layers). In one
#    process play two ranks: each runs the convolutions on its half of the batch (data
#    parallel); gather the flattened outputs of all rows; each rank computes half of the
#    neurons of every `Linear` layer (a `Linear` of half the width whose weights are rows
#    of the whole layer's), and the halves are gathered before the next layer. Check the
#    logits and every gradient against the whole network on the whole batch, and count
#    the bytes your gathers move against the "hybrid" formula of `bytes_per_step`.
# 3. **Overlap, measured.** Read `DataParallel.backward` and `sync`
#    (`minialexnet/distributed/data_parallel.py`). Time `bench scaling --overlap both`
#    at `--batch 32` and at `--batch 512`. Where would the overlap pay on this machine if
#    the copies did not need the same cores? Estimate from the step times how much of the
#    paper model's 244 MB could hide under its convolutional backward on one H200
#    (`docs/distributed.md`, "Overlap").
# 4. **A larger batch.** Train `--batch-size 64` on 2 processes and `--batch-size 32` on
#    one with the same `--lr`: the same images per step on each process, but not the same
#    run. Why? Read "Learning rate and batch size as N grows" in `docs/distributed.md`
#    and say what you would change to compare them fairly.
