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
# # Chapter 03: Convolution
#
# Five of AlexNet's eight learned layers are convolutions, and they take nearly all of
# its computing time. This chapter builds a convolution three times: as nested
# loops that read like the formula (slow, the reference), as **im2col** plus one
# matrix product (what the library runs), and with **groups**, which is how the
# paper's two GPU towers appear in a single network. Then we time the two versions
# and check the backward pass against finite differences.

# %% [markdown]
# ## Setup
#
# - On your laptop, from a checkout of this repository: `make tutorials` (it creates
#   `.venv`, installs JupyterLab and opens the tutorials). No download is needed.
# - In a hosted Jupyter with a GPU: `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`
#   (the address you cloned it from), or from a checkout
#   `%pip install -e '/path/to/minialexnet[gpu]'`, then restart the kernel.
# - `MINIALEXNET_FAST=1` shrinks the sizes so the chapter runs in seconds (chapter 00).

# %%
try:
    import minialexnet  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout: `pip install -e .` "
        "(or `make tutorials`); in a hosted notebook: "
        '`%pip install "minialexnet[gpu] @ git+<URL of this repository>"`, then restart.'
    ) from exc

import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.functional import conv2d_backward, conv2d_forward
from minialexnet.functional.conv import im2col, space_to_depth
from minialexnet.functional.reference import conv2d_backward_loops, conv2d_loops
from minialexnet.gradcheck import check_function
from minialexnet.tutorial import FAST, check_close, pick

print("fast mode:", FAST, "| GPU available:", gpu_available())

# %% [markdown]
# ## What the paper says
#
# "The first convolutional layer filters the $224 \times 224 \times 3$ input image
# with 96 kernels of size $11 \times 11 \times 3$ with a stride of 4 pixels [...] The
# second convolutional layer [...] filters it with 256 kernels of size
# $5 \times 5 \times 48$" [3.5]. Conv3, conv4 and conv5 have 384, 384 and 256 kernels
# of size $3 \times 3$. Note the 48 in conv2's kernels: conv1's 96 maps are split
# between two GPUs, 48 each, and "the kernels of layer [2, 4 and 5] take input only
# from those kernel maps in layer [1, 3, 4] which reside on the same GPU" [3.2],
# while conv3 sees all the maps of both GPUs.
#
# ## The formula
#
# With input $x$ of shape $(N, C, H, W)$, weights $w$ of shape
# $(C_\text{out}, C, K_H, K_W)$, bias $b$, stride $s$ and zero padding $p$:
#
# $$\text{out}[n, o, i, j] = b[o] + \sum_{c, u, v}
#   w[o, c, u, v]\; x_\text{pad}[n, c,\; s\,i + u,\; s\,j + v].$$
#
# (This is cross-correlation; every framework calls it convolution, and since the
# kernels are learned the flip would change nothing.) Each output pixel sees a
# $K_H \times K_W$ window of every input channel. The output size is
#
# $$H_\text{out} = \left\lfloor \frac{H + 2p - K_H}{s} \right\rfloor + 1 .$$
#
# For conv1 that gives $(227 - 11)/4 + 1 = 55$: the paper's $55 \times 55$ maps
# come from a **227**-pixel input. From 224 the division is not exact,
# $(224 - 11)/4 + 1 = 54.25$, and the floor gives 54.

# %%
def out_size(h, k, stride=1, pad=0):
    """Output height of a convolution (or pooling) window k moved by stride over h + 2 pad."""
    return (h + 2 * pad - k) // stride + 1


print("conv1 from 227:", out_size(227, 11, 4), "| (227 - 11) / 4 + 1 =", (227 - 11) / 4 + 1)
print("conv1 from 224:", out_size(224, 11, 4), "| (224 - 11) / 4 + 1 =", (224 - 11) / 4 + 1)

# AlexNet's convolutions; the pooling between them (chapter 04) takes 55 -> 27 and 27 -> 13
layers = [("conv1", 227, 11, 4, 0), ("conv2", 27, 5, 1, 2), ("conv3", 13, 3, 1, 1),
          ("conv4", 13, 3, 1, 1), ("conv5", 13, 3, 1, 1)]
for name, h, k, s, p in layers:
    print(f"{name}: ({h} + 2*{p} - {k}) // {s} + 1 = {out_size(h, k, s, p)}")

# and the library agrees: one 227x227 image through conv1's 96 kernels
x227 = np.zeros((1, 3, 227, 227), np.float32)
out, _ = conv2d_forward(x227, np.zeros((96, 3, 11, 11), np.float32), None, stride=4)
print("conv2d_forward output:", out.shape)
assert out.shape == (1, 96, 55, 55)

# %% [markdown]
# ## 1. Loops: the reference
#
# `minialexnet.functional.reference.conv2d_loops` is the formula written as loops,
# one per index of the output. It is slow on purpose and exists for tests and for
# reading:

# %%
src = inspect.getsource(conv2d_loops)
print(src[src.index("    x = to_numpy(x)"):])

# %% [markdown]
# ## 2. im2col: a convolution is a matrix product
#
# The loops compute `np.sum(window * w[o])` for every output pixel and every kernel:
# a dot product between a flattened window and a flattened kernel. Gather all the
# windows once, as the **columns** of one matrix, and all those dot products become
# one matrix product:
#
# $$\underbrace{W_\text{mat}}_{C_\text{out} \times C K_H K_W}\;
#   \underbrace{\text{col}}_{C K_H K_W \times N H_\text{out} W_\text{out}}
#   = \underbrace{\text{out}}_{C_\text{out} \times N H_\text{out} W_\text{out}},
#   \qquad \text{col}[(c, u, v), (n, i, j)] = x_\text{pad}[n, c, s i + u, s j + v].$$
#
# Matrix products are what BLAS libraries (and GPUs) do fastest, so this trades
# memory (each input pixel is copied up to $K_H K_W$ times) for speed. To see the
# columns, take one channel of $5 \times 5$ pixels numbered 0 to 24 and a
# $3 \times 3$ kernel: each of the $3 \times 3 = 9$ output pixels gets one column
# holding the 9 pixel numbers of its window.

# %%
x_small = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
xs = space_to_depth(x_small, pad=(0, 0), stride=(1, 1))  # the library's padded layout
col6 = im2col(xs, kernel=(3, 3), out_hw=(3, 3))  # (C, KH, KW, N, OH, OW)
col = col6.reshape(1 * 3 * 3, 1 * 3 * 3)  # (C*KH*KW, N*OH*OW)
print("col6:", col6.shape, "-> column matrix", col.shape)
print(col.astype(int))

fig, (ax_x, ax_col) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1, 1.4]})
ax_x.imshow(x_small[0, 0], cmap="viridis")
for (r, c), v in np.ndenumerate(x_small[0, 0]):
    ax_x.text(c, r, int(v), ha="center", va="center", color="w")
ax_x.add_patch(plt.Rectangle((0.5, -0.5), 3, 3, fill=False, ec="red", lw=2))
ax_x.set_title("input 5x5; window of output (0, 1) in red")
ax_col.imshow(col, cmap="viridis")
for (r, c), v in np.ndenumerate(col):
    ax_col.text(c, r, int(v), ha="center", va="center", color="w", fontsize=8)
ax_col.add_patch(plt.Rectangle((0.5, -0.5), 1, 9, fill=False, ec="red", lw=2))
ax_col.set_xlabel("column = output pixel (n, i, j)")
ax_col.set_ylabel("row = kernel offset (c, u, v)")
ax_col.set_title("im2col: one column per output pixel")
plt.show()

# %% [markdown]
# Pixel 12, the centre, appears in all 9 columns: that is the memory cost. Now a
# real batch: several channels, a stride and padding. The library's `im2col` reads
# from `space_to_depth(x, pad, stride)`, a padded copy of $x$ rearranged so that
# each kernel offset reads a contiguous block even with a stride (details in
# `docs/architecture.md`). We build the column matrix, do the one product, and
# compare with the loops and with `conv2d_forward`:

# %%
rng = np.random.default_rng(0)
N, C, H, W, C_out, K, S, P = 2, 3, 9, 9, 4, 3, 2, 1
x = rng.standard_normal((N, C, H, W))
w = rng.standard_normal((C_out, C, K, K))
b = rng.standard_normal(C_out)
OH = OW = out_size(H, K, S, P)

col = im2col(space_to_depth(x, (P, P), (S, S)), (K, K), (OH, OW)).reshape(C * K * K, N * OH * OW)
print(f"column matrix: C*KH*KW = {C * K * K} rows, N*OH*OW = {N * OH * OW} columns -> {col.shape}")
out_mat = w.reshape(C_out, -1) @ col  # (C_out, N*OH*OW): the whole convolution
out_im2col = out_mat.reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3) + b.reshape(1, -1, 1, 1)

out_loops = conv2d_loops(x, w, b, stride=S, pad=P)
out_lib, _ = conv2d_forward(x, w, b, stride=S, pad=P)
check_close("im2col by hand vs loops", out_im2col, out_loops, 1e-12)
check_close("conv2d_forward vs loops", out_lib, out_loops, 1e-12)

# %% [markdown]
# For AlexNet's conv1 at batch 128 the column matrix has
# $3 \cdot 11 \cdot 11 = 363$ rows and $128 \cdot 55 \cdot 55 = 387{,}200$ columns:
# 0.56 GB in `float32`. The library therefore processes the batch in chunks whose
# columns fit `col_bytes` (256 MiB by default); the result is the same.

# %%
print(f"conv1 columns at batch 128: {363 * 128 * 55 * 55 * 4 / 1e9:.2f} GB")
small_chunks, _ = conv2d_forward(x, w, b, stride=S, pad=P, col_bytes=1)  # one image per chunk
check_close("conv2d_forward in chunks of one image", small_chunks, out_lib, 1e-15)

# %% [markdown]
# ## 3. Groups: the two towers in one layer
#
# With `groups=2` the input channels are split into two halves, and so are the
# output channels; output channels of the first half see only the first half of
# the input, and so on. The weights then have shape $(C_\text{out}, C/2, K_H, K_W)$:
# conv2's $5 \times 5 \times 48$ kernels. That is exactly the paper's "own tower
# only" connection for conv2, conv4 and conv5 [3.2]; conv3 (and the fully connected
# layers) are ordinary, `groups=1`, and see both towers.
#
# A grouped convolution is two independent convolutions side by side:

# %%
x = rng.standard_normal((2, 8, 7, 7))
w = rng.standard_normal((6, 4, 3, 3))  # 6 outputs, each sees 8 / 2 = 4 input channels
b = rng.standard_normal(6)
grouped, _ = conv2d_forward(x, w, b, pad=1, groups=2)
tower_a, _ = conv2d_forward(x[:, :4], w[:3], b[:3], pad=1)  # first half: channels 0-3 -> 0-2
tower_b, _ = conv2d_forward(x[:, 4:], w[3:], b[3:], pad=1)  # second half: 4-7 -> 3-5
check_close("groups=2 vs two convolutions side by side",
            grouped, np.concatenate([tower_a, tower_b], axis=1), 1e-12)
check_close("groups=2 vs the loops", grouped, conv2d_loops(x, w, b, pad=1, groups=2), 1e-12)

# %% [markdown]
# Which input channels does each output channel see? For AlexNet's conv2 (96 maps
# in, 256 out), the connections are a full matrix without groups and two diagonal
# blocks with them. The blocks also halve the parameters:

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, groups in zip(axes, (1, 2), strict=True):
    seen = np.zeros((256, 96))
    per_in, per_out = 96 // groups, 256 // groups
    for g in range(groups):
        seen[g * per_out:(g + 1) * per_out, g * per_in:(g + 1) * per_in] = 1
    ax.imshow(seen, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlabel("input map (conv1 output)")
    ax.set_ylabel("output map (conv2 kernel)")
    params = 256 * (96 // groups) * 5 * 5 + 256
    ax.set_title(f"groups={groups}: {params:,} parameters")
fig.suptitle("conv2's connections (black: output map sees input map): one network, or two towers")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Loops against im2col: timings
#
# The same convolution, forward and backward, with the loops and with the library:

# %%
def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


N, C, H, C_out, K = pick((2, 3, 12, 8, 5), (4, 3, 32, 16, 5))
x = rng.standard_normal((N, C, H, H)).astype(np.float32)
w = rng.standard_normal((C_out, C, K, K)).astype(np.float32)
b = np.zeros(C_out, np.float32)
out, cache = conv2d_forward(x, w, b, pad=2)
dout = rng.standard_normal(out.shape).astype(np.float32)
print(f"x {x.shape}, w {w.shape}, pad 2 -> out {out.shape}")

times = {
    "forward, loops": best_time(lambda: conv2d_loops(x, w, b, pad=2), 1),
    "forward, im2col": best_time(lambda: conv2d_forward(x, w, b, pad=2), 5),
    "backward, loops": best_time(lambda: conv2d_backward_loops(dout, x, w, pad=2), 1),
    "backward, im2col": best_time(lambda: conv2d_backward(dout, conv2d_forward(x, w, b, pad=2)[1]), 5),
}
for name, t in times.items():
    print(f"{name:17s}: {1e3 * t:9.2f} ms")
print(f"im2col is {times['forward, loops'] / times['forward, im2col']:.0f}x faster forward, "
      f"{times['backward, loops'] / times['backward, im2col']:.0f}x backward")

fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(times), [1e3 * t for t in times.values()],
        color=["tab:red", "tab:blue", "tab:red", "tab:blue"])
ax.set_xscale("log")
ax.set_xlabel("time (ms, log scale)")
ax.set_title(f"Convolution of x {x.shape} with w {w.shape}")
ax.invert_yaxis()
plt.show()

check_close("forward: library vs loops (float32)", out, conv2d_loops(x, w, b, pad=2), 1e-5)

# %% [markdown]
# (The "backward, im2col" time includes a forward pass, which rebuilds the cache each
# time.) The loops cost one Python step, a few microseconds, per output number;
# im2col costs $K_H K_W$ block copies and one matrix product for the whole batch.

# %% [markdown]
# ## The backward pass and its check
#
# With `col` and `dout_mat` = `dout` arranged as $C_\text{out} \times N H_\text{out} W_\text{out}$:
#
# $$dW_\text{mat} = \text{dout\_mat}\;\text{col}^\top, \qquad
#   db[o] = \sum_{n, i, j} \text{dout}[n, o, i, j], \qquad
#   dx = \text{col2im}\bigl(W_\text{mat}^\top\, \text{dout\_mat}\bigr),$$
#
# where col2im is the adjoint of im2col: it adds every column entry back onto the
# input pixel it was copied from (overlapping windows add up). Per group, the same
# with that group's slices. First against the loop reference, then against finite
# differences in `float64`, with a stride, padding and two groups at once:

# %%
x = rng.standard_normal((2, 4, 7, 7))
w = rng.standard_normal((6, 2, 3, 3))
b = rng.standard_normal(6)
out, cache = conv2d_forward(x, w, b, stride=2, pad=1, groups=2)
dout = rng.standard_normal(out.shape)
dx, dw, db = conv2d_backward(dout, cache)
ref_dx, ref_dw, ref_db = conv2d_backward_loops(dout, x, w, stride=2, pad=1, groups=2)
check_close("dx vs loops", dx, ref_dx, 1e-12)
check_close("dw vs loops", dw, ref_dw, 1e-12)
check_close("db vs loops", db, ref_db, 1e-12)

errors = check_function(lambda x, w, b: conv2d_forward(x, w, b, stride=2, pad=1, groups=2),
                        conv2d_backward, {"x": x, "w": w, "b": b})
for name, err in errors.items():
    print(f"conv2d_backward d{name} vs finite differences: {err:.1e}")
    assert err < 1e-7, name

# %% [markdown]
# ### On a GPU
#
# The same `conv2d_forward` on CuPy arrays: AlexNet's conv1 on a small batch.

# %%
batch = pick(4, 32)
x1 = rng.standard_normal((batch, 3, 227, 227)).astype(np.float32)
w1 = (0.01 * rng.standard_normal((96, 3, 11, 11))).astype(np.float32)
b1 = np.zeros(96, np.float32)
t_cpu = best_time(lambda: conv2d_forward(x1, w1, b1, stride=4), 2)
print(f"conv1, batch {batch}, CPU: {1e3 * t_cpu:.1f} ms")

if gpu_available():
    gpu = Device("gpu:0")
    with gpu:
        xg, wg, bg = gpu.asarray(x1), gpu.asarray(w1), gpu.asarray(b1)
        conv2d_forward(xg, wg, bg, stride=4)  # warm-up

        def run_gpu():
            conv2d_forward(xg, wg, bg, stride=4)
            gpu.synchronize()

        t_gpu = best_time(run_gpu, 5)
        out_gpu, _ = conv2d_forward(xg, wg, bg, stride=4)
    print(f"conv1, batch {batch}, GPU: {1e3 * t_gpu:.2f} ms ({t_cpu / t_gpu:.0f}x the CPU)")
    check_close("conv1 on the GPU vs the CPU", to_numpy(out_gpu),
                conv2d_forward(x1, w1, b1, stride=4)[0], 1e-5)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **Your own im2col.** For stride 1 and no padding, write `my_im2col(x, kh, kw)`
#    returning the $(C K_H K_W, N H_\text{out} W_\text{out})$ matrix with one loop over
#    the kernel offsets $(u, v)$ (each step copies `x[:, :, u:u+OH, v:v+OW]` for the
#    whole batch). Check it against the library's `im2col` reshaped as above. Why is
#    a loop over $(u, v)$ fast while a loop over output pixels is slow?
# 2. **What AlexNet's convolutions cost.** A convolution does
#    $C_\text{out} \cdot (C/\text{groups}) K_H K_W \cdot H_\text{out} W_\text{out}$
#    multiply-adds per image. Compute it for conv1-conv5 (sizes above; conv2, conv4
#    and conv5 with groups=2; conv3 sees 256 maps) and compare with their parameter
#    counts. Which layer has the most parameters, and which does the most work?
# 3. **dx is a convolution too.** For stride 1, show numerically that `dx` from
#    `conv2d_backward` equals `conv2d_forward` applied to `dout`, padded by $K - 1 - p$,
#    with the kernel flipped in both spatial axes and its two channel axes swapped
#    (`w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)`). This "transposed convolution" is
#    how many libraries compute it.
