# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 00: Arrays and devices
#
# Everything in AlexNet is an array: a batch of images, a layer's weights, the
# gradient of the loss. This chapter shows how minialexnet holds those arrays, how
# one piece of code runs on the CPU (NumPy) and on a GPU (CuPy), what a *device*
# is in the library, how random numbers are made repeatable, and why training uses
# `float32` while gradient checks use `float64`. It ends with how to get your own
# copy of the tutorials, in which the "your turn" cells of the later chapters are
# yours to write.
#
# No GPU is needed: every GPU cell checks first and says so when it ran the CPU
# path only.

# %% [markdown]
# ## Setup
#
# - On your laptop, from a checkout of this repository: `make tutorials` (it creates
#   `.venv`, installs JupyterLab and opens the tutorials). No download is needed.
# - In a hosted Jupyter with a GPU (Colab, Kaggle, a lab server): run
#   `%pip install "minialexnet[gpu] @ git+<URL of this repository>"` in a cell
#   (the address you cloned it from), or from a checkout
#   `%pip install -e '/path/to/minialexnet[gpu]'`, then restart the kernel.
# - `MINIALEXNET_FAST=1` in the environment makes every chapter shrink its sizes and
#   run in seconds (the tests do this); see the last section.

# %%
try:
    import minialexnet
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout: `pip install -e .` "
        "(or `make tutorials`); in a hosted notebook: "
        '`%pip install "minialexnet[gpu] @ git+<URL of this repository>"`, then restart.'
    ) from exc

import time

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, get_array_module, gpu_available, to_numpy
from minialexnet.data import load_dataset
from minialexnet.exercises.catalogue import CatalogueError, format_table, read_catalogue
from minialexnet.functional import activation
from minialexnet.layers import Conv2d
from minialexnet.tutorial import FAST, check_close, pick, show_source

print("minialexnet from", minialexnet.__file__)
print("fast mode:", FAST, "| GPU available:", gpu_available())

# %% [markdown]
# ## What the paper says
#
# AlexNet was trained on two NVIDIA GTX 580 GPUs with 3 GB of memory each; the
# network did not fit on one, so half of the kernels of every layer live on each
# GPU, and the GPUs exchange activations only at certain layers [3.2]. Training
# took five to six days [5]. A GPU mattered because the network is mostly large
# matrix products (convolutions and fully connected layers), which a GPU computes
# much faster than a CPU.
#
# Two ideas follow for a library: the same maths must run on a CPU and on a GPU,
# and an array must *live somewhere* (on the host or on GPU 1 or GPU 2), with
# explicit moves between places.

# %% [markdown]
# ## Arrays: a batch of images
#
# The library stores images as **NCHW** arrays: batch size $N$, channels $C$
# (3 for RGB), height $H$, width $W$. Datasets give `uint8` images in NHWC (the
# layout of image files); a model wants floating point numbers in NCHW, so we
# convert and transpose. The built-in `shapes` dataset is drawn by code, so it
# needs no download.

# %%
data = load_dataset("shapes", "train", size=8, image_size=32, seed=0)
print("images:", data.images.dtype, data.images.shape, "(N, H, W, C)")
print("labels:", data.labels, "->", [data.classes[i] for i in data.labels[:4]], "...")

x = data.images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # NCHW in [0, 1]
print("x:", x.dtype, x.shape, "(N, C, H, W);", x.nbytes, "bytes =", x.size, "numbers x 4 bytes")

fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, img, label in zip(axes, data.images, data.labels, strict=True):
    ax.imshow(img)
    ax.set_title(data.classes[label], fontsize=8)
    ax.axis("off")
fig.suptitle("Eight images of the built-in shapes dataset (32 x 32)")
plt.show()

# %% [markdown]
# How large are AlexNet's arrays? The paper's input batch is 128 images of
# $3 \times 227 \times 227$, and the network has 60,965,224 parameters. At 4 bytes
# a number (`float32`):

# %%
batch_bytes = 128 * 3 * 227 * 227 * 4
param_bytes = 60_965_224 * 4
print(f"input batch : {batch_bytes / 2**20:7.1f} MiB")
print(f"parameters  : {param_bytes / 2**20:7.1f} MiB "
      "(and as much again for gradients and momentum)")

# %% [markdown]
# ## The `xp` idea: write the maths once
#
# NumPy (CPU) and CuPy (GPU) have the same API: `numpy.maximum` and
# `cupy.maximum` do the same thing on arrays that live in different memories. So
# every operation in `minialexnet.functional` asks which module its input belongs
# to and calls that one, conventionally named `xp`:
#
# ```python
# xp = get_array_module(x)    # numpy for a NumPy array, cupy for a CuPy array
# out = xp.maximum(x, 0)
# ```
#
# Here is the library's ReLU: there is no `if gpu:` anywhere.

# %%
show_source(activation.relu_forward)
print("get_array_module(x) is", get_array_module(x).__name__)

# %% [markdown]
# A function of your own works the same way. This one standardises each image
# (zero mean and unit variance per image), on whatever device `x` lives.

# %%
def standardise(x):
    """Each image of x (N, C, H, W) shifted and scaled to mean 0 and variance 1."""
    xp = get_array_module(x)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = xp.sqrt(x.var(axis=(1, 2, 3), keepdims=True) + 1e-8)
    return (x - mean) / std


z = standardise(x)
print("means:", np.round(z.mean(axis=(1, 2, 3)), 6))
print("stds: ", np.round(z.std(axis=(1, 2, 3)), 4))

# %% [markdown]
# `to_numpy(a)` gives a NumPy array whatever `a` is (a copy from GPU memory, the
# same array on the CPU). Use it to print, plot or save; matplotlib cannot read
# GPU memory.

# %%
print(type(to_numpy(z)), to_numpy(z) is z)

# %% [markdown]
# ## Devices
#
# A `Device` names where arrays live and computation happens:
#
# | name | what it is | `xp` |
# |---|---|---|
# | `"cpu"` | the host | `numpy` |
# | `"gpu:0"`, `"gpu:1"` (or `"gpu"`) | one CUDA GPU | `cupy` |
# | `"auto"` | `gpu:0` when one is usable, else the CPU (with a one-line notice) | either |
# | `"cpu:0"`, `"cpu:1"` | *simulated* devices, for the two towers (chapter 09) | `numpy` |
#
# A device gives its array module (`dev.xp`), moves arrays onto itself
# (`dev.asarray`), tells whether it holds an array (`dev.holds`), and is a context
# manager (`with dev:` makes a GPU current; on the CPU it does nothing).

# %%
cpu = Device("cpu")
print(cpu, cpu.name, cpu.kind, cpu.xp.__name__)
with cpu:
    y = cpu.asarray([1.0, 2.0, 3.0], dtype="float32")
print(y, y.dtype, cpu.holds(y))

auto = Device("auto")  # the GPU when there is one; here maybe the CPU, with a notice
print("auto picked", auto)

# %% [markdown]
# Asking for a GPU that is not there fails at once, with a message that says what
# is missing and how to fix it:

# %%
if not gpu_available():
    try:
        Device("gpu:0")
    except RuntimeError as err:
        print("RuntimeError:", err)
else:
    print("this machine has a GPU:", Device("gpu:0"))

# %% [markdown]
# ### On a GPU
#
# With CuPy and a CUDA GPU the same code runs there. GPU work is queued and runs
# asynchronously, so a timing must wait for it: `dev.synchronize()`.

# %%
def time_matmul(dev, n, repeat=3):
    """Best time of an (n x n) @ (n x n) float32 product on dev, in seconds."""
    with dev:
        rng = dev.rng(0)
        m = rng.standard_normal((n, n), dtype=np.float32)
        m @ m  # warm-up (a GPU loads its kernels the first time)
        dev.synchronize()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            m @ m
            dev.synchronize()
            best = min(best, time.perf_counter() - start)
    return best


n = pick(256, 1024)
t_cpu = time_matmul(cpu, n)
print(f"CPU: {n}x{n} matmul in {1e3 * t_cpu:.2f} ms = {2 * n**3 / t_cpu / 1e9:.1f} GFLOP/s")

if gpu_available():
    gpu = Device("gpu:0")
    with gpu:
        x_gpu = gpu.asarray(x)  # host -> GPU memory
        z_gpu = standardise(x_gpu)  # the same function, now with xp = cupy
    print(type(x_gpu), "| xp is", get_array_module(x_gpu).__name__,
          "| gpu holds it:", gpu.holds(x_gpu))
    check_close("standardise on the GPU vs the CPU", to_numpy(z_gpu), z, 1e-5)
    t_gpu = time_matmul(gpu, n)
    print(f"GPU: {n}x{n} matmul in {1e3 * t_gpu:.3f} ms = {2 * n**3 / t_gpu / 1e9:.1f} GFLOP/s")
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Seeded generators
#
# Training draws random numbers everywhere: initial weights, the order of the
# examples, crops, flips, dropout masks. To make a run repeatable, the library never
# uses a global random state; every random draw comes from a generator made from a
# seed. `Device.rng(seed)` makes one for a device: NumPy's `Generator` (PCG64) on
# the CPU, CuPy's on a GPU. The same seed gives the same numbers, bit for bit.

# %%
r1 = cpu.rng(seed=42).standard_normal(5)
r2 = cpu.rng(seed=42).standard_normal(5)
r3 = cpu.rng(seed=43).standard_normal(5)
print(r1)
print("same seed, identical:", np.array_equal(r1, r2),
      "| other seed, identical:", np.array_equal(r1, r3))

# %% [markdown]
# CuPy's generator is another algorithm, so `Device("gpu:0").rng(42)` gives other
# numbers than the CPU's. That is why layers draw their *weights* on the host with a
# NumPy generator and only then move them to their device: the same seed builds the
# same network on the CPU and on any GPU. Pass one generator to all layers of a
# model, so that two layers of the same shape get different weights.

# %%
rng = np.random.default_rng(0)
conv_a = Conv2d(3, 4, 3, rng=rng)
conv_b = Conv2d(3, 4, 3, rng=rng)  # the same generator, further along: other weights
conv_c = Conv2d(3, 4, 3, rng=np.random.default_rng(0))  # the same seed again
print("conv_a == conv_b:", np.array_equal(conv_a.params["w"], conv_b.params["w"]))
print("conv_a == conv_c:", np.array_equal(conv_a.params["w"], conv_c.params["w"]))

if gpu_available():
    conv_gpu = Conv2d(3, 4, 3, rng=np.random.default_rng(0), device="gpu:0")
    same = np.array_equal(to_numpy(conv_gpu.params["w"]), conv_a.params["w"])
    print("weights drawn for the GPU equal the CPU's:", same)
    g = Device("gpu:0").rng(42).standard_normal(5)
    print("gpu rng(42):", to_numpy(g), "(not the CPU's numbers)")
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## float32 against float64
#
# A `float32` number has a 24-bit significand: its relative precision (machine
# epsilon) is $2^{-23} \approx 1.2 \times 10^{-7}$. `float64` has
# $2^{-52} \approx 2.2 \times 10^{-16}$, but takes twice the memory and, on most
# hardware, at least twice the time (on gaming GPUs like the paper's, many times
# more). Training does not need more than `float32`: the gradients of one batch are
# noisy estimates anyway.

# %%
for dt in (np.float32, np.float64):
    info = np.finfo(dt)
    print(f"{info.dtype}: eps {info.eps:.2e}, largest {info.max:.2e}, "
          f"smallest normal {info.tiny:.2e}")
print("1 + 1e-8 == 1 in float32:", np.float32(1) + np.float32(1e-8) == np.float32(1))
print("1 + 1e-8 == 1 in float64:", np.float64(1) + np.float64(1e-8) == np.float64(1))

n = pick(256, 1024)
for dt in ("float32", "float64"):
    m = np.random.default_rng(0).standard_normal((n, n)).astype(dt)
    start = time.perf_counter()
    for _ in range(3):
        m @ m
    print(f"{dt}: {n}x{n} matmul {1e3 * (time.perf_counter() - start) / 3:.1f} ms on the CPU")

# %% [markdown]
# Where `float32` is not enough: **finite differences**. Chapter 01 checks every
# backward pass by comparing it with
#
# $$f'(x) \approx \frac{f(x + \varepsilon) - f(x - \varepsilon)}{2 \varepsilon},$$
#
# whose error is about $\varepsilon^2$ (the formula's truncation) plus
# $u / \varepsilon$ (rounding, $u$ the machine epsilon). Take $f = \sin$ at
# $x = 1$, where we know $f'(1) = \cos 1$, and try many $\varepsilon$:

# %%
eps_values = np.logspace(-12, 0, 49)  # 1e-12 ... 1, four per decade; 1e-6 is among them
errors = {}
for dt in (np.float32, np.float64):
    x0 = dt(1.0)
    errs = []
    for eps in eps_values:
        e = dt(eps)
        estimate = (np.sin(x0 + e) - np.sin(x0 - e)) / (2 * e)
        errs.append(max(abs(float(estimate) - np.cos(1.0)) / np.cos(1.0), 1e-17))
    errors[np.dtype(dt).name] = np.array(errs)

at_1e6 = int(np.argmin(abs(np.log10(eps_values) + 6)))
fig, ax = plt.subplots(figsize=(6, 4))
for name, errs in errors.items():
    ax.loglog(eps_values, errs, "o-", ms=3, label=name)
    best = int(np.argmin(errs))
    print(f"{name}: error {errs[at_1e6]:.0e} at eps 1e-6; "
          f"best {errs[best]:.0e} at eps {eps_values[best]:.0e}")
ax.axvline(1e-6, color="grey", ls="--", lw=1, label="eps = 1e-6 (gradcheck)")
ax.set_xlabel("step $\\varepsilon$")
ax.set_ylabel("relative error of the derivative")
ax.set_title("Centred differences of sin at 1")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# Both curves are V-shaped: to the right the truncation error $\varepsilon^2$ wins,
# to the left the rounding error $u / \varepsilon$. At the library's step
# $\varepsilon = 10^{-6}$, `float64` is right to about $10^{-10}$ and `float32` only
# to about $10^{-2}$; `float32` is at its best (four or five digits) in a narrow band
# of larger steps, and below $\varepsilon \approx 10^{-7}$ the step vanishes in
# rounding ($1 + \varepsilon = 1$) and the estimate is 0 (error 1). So the library
# trains in `float32` and checks gradients in `float64`; every layer takes
# `dtype="float64"` for that.

# %%
w64 = Conv2d(3, 4, 3, dtype="float64", rng=np.random.default_rng(0)).params["w"]
print("a float64 layer:", w64.dtype, "| its weights equal the float32 layer's to",
      f"{np.abs(w64 - conv_c.params['w']).max():.1e}")

# %% [markdown]
# ## How the other chapters run quickly: fast mode
#
# Every chapter imports three helpers from `minialexnet.tutorial`:
#
# - `FAST`: `True` when the environment variable `MINIALEXNET_FAST` is set (to
#   anything but `0`, `false` or `no`). The test-suite runs every notebook so.
# - `pick(fast, full)`: the first value in fast mode, the second otherwise; for
#   sizes, epochs, repetitions.
# - `check_close(name, got, want, tol)`: prints the relative error
#   $\lVert a - b \rVert / (\lVert a \rVert + \lVert b \rVert)$ and stops the notebook
#   with an `AssertionError` when it is not below `tol`. A check that passes in fast
#   mode passes in full mode too; only the numbers get larger.
#
# To run a chapter in fast mode yourself: `MINIALEXNET_FAST=1 jupyter lab`, or from
# a shell `MINIALEXNET_FAST=1 python tutorials/00_arrays_and_devices.py`.

# %%
print("FAST =", FAST, "| pick(8, 128) =", pick(8, 128))
check_close("per-image std of standardise(x)", z.std(axis=(1, 2, 3)), np.ones(len(z)), 1e-4)

# %% [markdown]
# ## Your own copy: write the code, check it
#
# From chapter 01 on, every chapter up to 08 has one or two **"your turn"** cells: a
# function with its signature, a docstring and a one-line hint, whose body is yours
# to write, followed by a cell that checks it and prints each relative error next to
# the error it expects. In the project's repository (the instructor's edition, which
# its test-suite runs) those cells hold a solution, marked off by two comment lines
# that `show_source` and the student copy leave out. To do them yourself, write a
# **student copy** of the project, from a shell in a clone of the repository:
#
# ```bash
# python -m minialexnet.exercises release --out ../my-alexnet
# cd ../my-alexnet
# make tutorials      # a .venv of its own, with the copy's package installed in it
# ```
#
# In the copy, every "your turn" body is one line,
# `raise NotImplementedError("your turn: ...")`: replace it with your code and run the
# check cell after it. The library's own exercises are stubs there too: the layers
# that the chapters explain (im2col and the convolution, max pooling, LRN, dropout,
# the loss, the SGD update, the exchange between the towers; the cell below lists
# them). Inside the copy, check one with
#
# ```bash
# python -m minialexnet.exercises check lrn_forward
# ```
#
# which runs its tests and explains each failure: which output or gradient is wrong,
# its relative error, the worst entry. Later cells of a chapter call the library, so
# in the copy they stop at the first layer you have not written yet, with a message
# that says what to implement. To take the library's exercises one at a time, hand
# out only some: `release --only softmax_cross_entropy --out ../my-alexnet` keeps the
# reference code of all the others (the "your turn" cells are stubs in every copy).
# The chapters end with questions; their answers are in this repository's
# `docs/instructors.md`, which the copy leaves out.

# %%
try:
    print(format_table(read_catalogue()))  # what `python -m minialexnet.exercises list` prints
except CatalogueError as err:  # installed without its repository (e.g. from a URL)
    print("no exercise catalogue here:", err)

# %% [markdown]
# ## Exercises
#
# 1. **Memory of AlexNet's activations.** With the spatial sizes
#    227 -> 55 -> 27 -> 13 -> 6 (chapters 03 and 04) and the channel counts
#    96, 256, 384, 384, 256 (`docs/architecture.md`), estimate in MiB the
#    `float32` output of each conv layer for a batch of 128. Which layer is the
#    largest? Would a batch of 128 fit in 3 GB once the backward pass keeps them all?
# 2. **Device-generic code.** Write `one_hot(labels, num_classes)` that returns an
#    `(N, num_classes)` float32 array with a 1 in each row's label column, using only
#    `xp = get_array_module(labels)`, so that NumPy labels give a NumPy array and CuPy
#    labels a CuPy array. (Hint: `xp.zeros(...)`, then one indexed assignment with
#    `xp.arange(N)` and `labels`.) Chapter 09 asks it again on a simulated device,
#    where it must also keep the device of `labels`.
# 3. **Where the rounding starts.** Repeat the finite-difference plot for
#    $f(x) = \exp(x)$ at $x = 10$. Does the best $\varepsilon$ move? Why does a
#    *relative* step $\varepsilon \cdot |x|$ work better for large $x$?

# %% [markdown]
# ## Summary
#
# - Images are arrays: `uint8` NHWC as stored, floating point NCHW for a model.
# - One piece of code serves the CPU and a GPU: `xp = get_array_module(x)` picks NumPy
#   or CuPy, and `to_numpy` brings a result back to the host for printing and plots.
# - A `Device` names where arrays live (`"cpu"`, `"gpu:0"`, `"auto"`); GPU work is
#   queued, so a timing must `synchronize()` first.
# - Every random draw comes from a generator made from a seed; weights are drawn on the
#   host, so one seed builds the same network on any device.
# - `float32` for training, `float64` for gradient checks: at the step $10^{-6}$ a
#   centred difference is good to about $10^{-10}$ in `float64` and only about
#   $10^{-2}$ in `float32`.
#
# ## Questions
#
# 1. `time_matmul` calls `dev.synchronize()` before it reads the clock. What would the
#    GPU timing measure without it?
# 2. Why does a layer draw its weights with NumPy on the host and then move them,
#    rather than drawing them with the generator of its own device?
# 3. In the finite-difference plot, which of the two error terms makes `float32` so
#    poor at $\varepsilon = 10^{-6}$, and at about which $\varepsilon$ should it do best?
#    Compare your estimate with the best step the cell printed.
