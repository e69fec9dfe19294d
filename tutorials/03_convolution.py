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

import time

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.data import load_dataset
from minialexnet.functional import conv2d_backward, conv2d_forward
from minialexnet.functional.conv import im2col, space_to_depth
from minialexnet.functional.reference import conv2d_backward_loops, conv2d_loops
from minialexnet.gradcheck import check_function
from minialexnet.tutorial import FAST, check_close, pick, show_source

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
show_source(conv2d_loops, start="    x = to_numpy(x)")

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
# memory (each input pixel is copied up to $K_H K_W$ times) for speed.
#
# ### Your turn: im2col
#
# Build the column matrix. Loop over the kernel offsets $(u, v)$, not over the
# output pixels: for one offset, the entries $x_\text{pad}[n, c, s i + u, s j + v]$ of
# all $n, c, i, j$ at once are one strided slice of the padded batch,
# `x_pad[:, :, u : u + s*(OH-1) + 1 : s, v : v + s*(OW-1) + 1 : s]`, of shape
# $(N, C, H_\text{out}, W_\text{out})$. Put it in the rows $(c, u, v)$ of every channel
# $c$; the columns are ordered $(n, i, j)$.

# %%
def im2col_by_hand(x, kh, kw, stride=1, pad=0):
    """The (C*KH*KW, N*OH*OW) column matrix of x (N, C, H, W): rows (c, u, v), columns (n, i, j)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    # Hint: np.pad the two spatial axes; fill col (C, KH, KW, N, OH, OW) slice by slice, reshape.
    ### BEGIN SOLUTION
    x_pad = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            window = x_pad[:, :, u : u + stride * (oh - 1) + 1 : stride,
                           v : v + stride * (ow - 1) + 1 : stride]  # (N, C, OH, OW)
            col[:, u, v] = window.transpose(1, 0, 2, 3)
    return col.reshape(c * kh * kw, n * oh * ow)
    ### END SOLUTION


# %% [markdown]
# Two checks. First the columns themselves: take one channel of $5 \times 5$ pixels
# numbered 0 to 24 and a $3 \times 3$ kernel. Each of the $3 \times 3 = 9$ output
# pixels gets one column holding the 9 pixel numbers of its window; output pixel
# $(0, 1)$ (column 1) sees rows 0-2 and columns 1-3, the pixels 1, 2, 3, 6, 7, 8, 11,
# 12, 13. Then a real batch (several channels, stride 2, padding 1): the one matrix
# product with your columns against the loops. Both sum the same products in another
# order, so they agree to rounding, about $10^{-16}$ (tolerance $10^{-12}$).

# %%
x_small = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
col = im2col_by_hand(x_small, 3, 3)
print("column matrix", col.shape, "(C*KH*KW, N*OH*OW):")
print(col.astype(int))
assert col.shape == (9, 9), f"expected a (9, 9) matrix, got {col.shape}"
check_close("column of output pixel (0, 1) = its window", col[:, 1],
            np.array([1, 2, 3, 6, 7, 8, 11, 12, 13]), 1e-15)

rng = np.random.default_rng(0)
N, C, H, W, C_out, K, S, P = 2, 3, 9, 9, 4, 3, 2, 1
x = rng.standard_normal((N, C, H, W))
w = rng.standard_normal((C_out, C, K, K))
b = rng.standard_normal(C_out)
OH = OW = out_size(H, K, S, P)
col_batch = im2col_by_hand(x, K, K, stride=S, pad=P)
print(f"column matrix: C*KH*KW = {C * K * K} rows, N*OH*OW = {N * OH * OW} columns -> "
      f"{col_batch.shape}")
out_mat = w.reshape(C_out, -1) @ col_batch  # (C_out, N*OH*OW): the whole convolution
out_im2col = out_mat.reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3) + b.reshape(1, -1, 1, 1)
out_loops = conv2d_loops(x, w, b, stride=S, pad=P)
check_close("one product with your columns vs the loops", out_im2col, out_loops, 1e-12)

# %%
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
ax_col.set_title("your im2col: one column per output pixel")
plt.show()

# %% [markdown]
# Pixel 12, the centre, appears in all 9 columns: that is the memory cost. The
# library's `im2col` builds the same matrix, laid out as $(C, K_H, K_W, N, H_\text{out},
# W_\text{out})$, from `space_to_depth(x, pad, stride)`: a padded copy of $x$
# rearranged so that each kernel offset reads a contiguous block even with a stride
# (details in `docs/architecture.md`). `conv2d_forward` does the one product per
# group. Both against yours and the loops:

# %%
col_lib = im2col(space_to_depth(x, (P, P), (S, S)), (K, K), (OH, OW)).reshape(C * K * K, -1)
check_close("the library's im2col vs yours", col_lib, col_batch, 1e-15)
out_lib, _ = conv2d_forward(x, w, b, stride=S, pad=P)
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
# ### What a convolution computes on an image
#
# Each output map is one kernel slid over the image: large where the patch under it
# looks like the kernel, negative where it looks like the kernel's negative. Learned
# kernels are chapter 11's subject; here, six made by hand on an image of the built-in
# shapes dataset (64x64, raw 0-255 pixels minus their mean), with your `im2col` and
# one matrix product. Each kernel spans the three colour channels: the edge and
# blob detectors look at the brightness (the same weights on R, G and B), the colour
# kernel at red minus green.

# %%
shapes = load_dataset("shapes", "train", size=40, image_size=64, seed=0)
image = shapes.images[np.flatnonzero(shapes.labels == shapes.classes.index("star"))[0]]
x_img = image.astype(np.float64).transpose(2, 0, 1)[None]  # (1, 3, 64, 64)
x_img -= x_img.mean()

sobel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
grey_kernels = {  # 3x3 kernels applied to the brightness (R + G + B) / 3
    "vertical edges (Sobel x)": sobel,
    "horizontal edges (Sobel y)": sobel.T,
    "diagonal edges": np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]]),
    "blur (mean of 3x3)": np.full((3, 3), 1 / 9),
    "spot (centre minus surround)": np.array([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0],
                                              [-1.0, -1.0, -1.0]]) / 8,
}
bank = np.stack([np.stack([k / 3] * 3) for k in grey_kernels.values()]
                + [np.stack([np.pad([[1.0]], 1), -np.pad([[1.0]], 1), np.zeros((3, 3))])])
names = [*grey_kernels, "red minus green"]
print("kernel bank:", bank.shape, "(C_out, C, KH, KW)")

maps = (bank.reshape(len(bank), -1) @ im2col_by_hand(x_img, 3, 3, pad=1)).reshape(-1, 64, 64)
check_close("the maps vs the loops", maps, conv2d_loops(x_img, bank, None, pad=1)[0], 1e-12)

fig, axes = plt.subplots(2, 4, figsize=(13, 6.6))
axes[0, 0].imshow(image)
axes[0, 0].set_title("the image (star)")
for ax, m, name in zip(axes.ravel()[1:], maps, names, strict=False):
    lim = np.abs(m).max()
    ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(name, fontsize=9)
kernel_show = [k.sum(axis=0) / np.abs(k.sum(axis=0)).max() for k in bank[:5]]  # over R, G, B
axes[1, 3].imshow(np.concatenate([np.pad(k, 1, constant_values=np.nan) for k in kernel_show],
                                 axis=1), cmap="RdBu_r", vmin=-1, vmax=1)
axes[1, 3].set_title("the five brightness kernels, in order\n(red +, blue -)", fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Six kernels, one convolution: every map is one kernel slid over the image "
             "(red: positive, blue: negative)")
fig.tight_layout()
plt.show()

centre = np.unravel_index(np.argmax(np.abs(maps[3])), maps[3].shape)  # the blur map's extreme
print(f"red minus green: {maps[5, 2, 2]:.0f} in the corner (background), "
      f"{maps[5][centre]:.0f} at {tuple(int(i) for i in centre)} (inside the star)")

# %% [markdown]
# Read the maps against the image. The edge kernels respond along the star's outline
# and nowhere else, with opposite signs on opposite sides of the star (brighter on the
# right of an edge, or on its left), each most strongly where the outline runs along
# its own direction: the vertical strokes for Sobel x, the horizontal ones for Sobel y,
# the slanted ones for the diagonal kernel. The blur map is a smoothed copy of the
# brightness. The centre-minus-surround kernel answers mostly to the fine noise
# texture of the image. The colour kernel sees what the brightness kernels cannot:
# the regions' colours (the printed values: a red-minus-green far from 0 in the
# background, near 0 inside the star). AlexNet's first layer learns kernels of these
# kinds by itself, oriented edges and colour blobs (chapter 11).

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
    "backward, im2col": best_time(
        lambda: conv2d_backward(dout, conv2d_forward(x, w, b, pad=2)[1]), 5),
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
# 1. **Your own col2im.** Write `col2im_by_hand(col, x_shape, kh, kw, stride, pad)`,
#    the adjoint of your `im2col_by_hand`: the same loop over $(u, v)$, now *adding*
#    each block of rows back onto its strided slice of a zero padded array (windows
#    overlap, so `+=`), then cutting the padding off. Check it with the dot-product
#    test $\langle \text{im2col}(x), c \rangle = \langle x, \text{col2im}(c) \rangle$ for
#    random $x$ and $c$, and against `conv2d_backward`'s `dx`.
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

# %% [markdown]
# ## Summary
#
# - Each output pixel of a convolution is the dot product of a kernel with the window
#   of input it sees; a window $K$ moved by $s$ over $H + 2p$ pixels fits
#   $\lfloor (H + 2p - K)/s \rfloor + 1$ times (227 gives conv1's 55, 224 does not).
# - im2col gathers every window as a column, so the whole convolution is one matrix
#   product: fast, at the price of copying each pixel into up to $K_H K_W$ columns.
# - `groups=2` is the paper's two towers in one layer: conv2, conv4 and conv5 see only
#   their own tower's maps, and have half the parameters of an ungrouped layer.
# - Backward: $dW$ and $db$ from the columns, $dx$ by col2im, which adds every column
#   entry back onto the pixel it came from.
#
# ## Questions
#
# 1. For AlexNet's conv1 at batch 128, about how many times more numbers does the
#    column matrix hold than the input batch? Estimate it from $K$ and the stride
#    before you compute it.
# 2. Your `im2col_by_hand` loops over the kernel offsets, not over the output pixels.
#    For conv1 at batch 128, how many Python-level steps does each choice take, and
#    why is the first one fast?
# 3. conv3 is the one convolution that sees both towers. What would change in its
#    weights' shape and parameter count if it were grouped like conv4?
