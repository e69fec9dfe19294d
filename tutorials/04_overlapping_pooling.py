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
# # Chapter 04: Overlapping max pooling
#
# After conv1, conv2 and conv5, AlexNet shrinks its feature maps with max pooling:
# each output keeps the largest value of a small window. The paper's twist is that
# the windows **overlap**: $3 \times 3$ windows placed every 2 pixels. This chapter
# computes pooling forward and backward, follows where the gradient goes (including
# when several values tie for the maximum), tracks the map sizes through AlexNet,
# looks at a pooled feature map, and checks the gradient.

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

import itertools
import time

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.data import load_dataset
from minialexnet.functional import (
    conv2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    relu_backward,
    relu_forward,
)
from minialexnet.functional.reference import maxpool2d_backward_loops, maxpool2d_loops
from minialexnet.gradcheck import check_function
from minialexnet.tutorial import FAST, check_close, pick, show_source

print("fast mode:", FAST, "| GPU available:", gpu_available())

# %% [markdown]
# ## What the paper says
#
# "Pooling layers in CNNs summarize the outputs of neighboring groups of neurons in
# the same kernel map." A pooling layer is a grid of pooling units spaced $s$ pixels
# apart, each summarising a $z \times z$ neighbourhood. With $s = z$ this is the
# traditional, non-overlapping pooling; with $s < z$ the windows overlap. AlexNet
# uses $s = 2$, $z = 3$ throughout. Against $s = z = 2$, "which produces output of
# equivalent dimensions", this lowered the top-1 and top-5 error rates by 0.4% and
# 0.3%, and the paper observed that models with overlapping pooling were "slightly
# more difficult to overfit" [3.4].
#
# ## The formula
#
# For each channel separately (no weights, no padding):
#
# $$\text{out}[n, c, i, j] = \max_{0 \le u, v < z}\; x[n, c,\; s\,i + u,\; s\,j + v],
#   \qquad H_\text{out} = \left\lfloor \frac{H - z}{s} \right\rfloor + 1 .$$
#
# A small example, one $7 \times 7$ map, both settings:

# %%
rng = np.random.default_rng(0)
x7 = rng.permutation(49).reshape(1, 1, 7, 7).astype(np.float64)  # distinct values: no ties
out32, _ = maxpool2d_forward(x7, size=3, stride=2)
out22, _ = maxpool2d_forward(x7, size=2, stride=2)
print("x:\n", x7[0, 0].astype(int))
print("z=3, s=2 ->", out32.shape[2:], "\n", out32[0, 0].astype(int))
print("z=2, s=2 ->", out22.shape[2:], "\n", out22[0, 0].astype(int))
check_close("z=3, s=2 vs the loops", out32, maxpool2d_loops(x7, 3, 2), 1e-15)
check_close("z=2, s=2 vs the loops", out22, maxpool2d_loops(x7, 2, 2), 1e-15)

# %% [markdown]
# Where the windows lie, and how many windows see each pixel. With $z = 3, s = 2$
# neighbouring windows share a row or a column, so a pixel is in 1, 2 or 4
# windows. With $z = s = 2$ every pixel is in exactly one window, except that on a
# 7-pixel side the last row and column are in none: they are never looked at.

# %%
def coverage(h, z, s):
    """How many pooling windows contain each pixel of an h x h map."""
    counts = np.zeros((h, h), int)
    o = (h - z) // s + 1
    for i in range(o):
        for j in range(o):
            counts[s * i:s * i + z, s * j:s * j + z] += 1
    return counts


fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (z, s) in zip(axes, [(3, 2), (2, 2)], strict=True):
    counts = coverage(7, z, s)
    ax.imshow(counts, cmap="Blues", vmin=0, vmax=4)
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, v, ha="center", va="center", color="w" if v >= 3 else "k")
    for (i, j), colour in [((0, 0), "red"), ((0, 1), "orange")]:  # two neighbouring windows
        ax.add_patch(plt.Rectangle((s * j - 0.5, s * i - 0.5), z, z, fill=False, ec=colour, lw=2.5))
    ax.set_title(f"z={z}, s={s}: windows per pixel")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Two neighbouring windows (red, orange) and the coverage of a 7x7 map")
plt.show()

# %% [markdown]
# ## Sizes through AlexNet
#
# Both settings give the same output sizes on AlexNet's maps, which is what made the
# paper's comparison fair: $55 \to 27 \to 13 \to 6$. With $z = s = 2$ the odd sizes
# lose their last row and column ($\lfloor 53/2 \rfloor$, $\lfloor 25/2 \rfloor$,
# $\lfloor 11/2 \rfloor$ round down); with $z = 3, s = 2$ the windows end exactly at
# the border. On 32x32 inputs (the project's `alexnet-cifar`) the two differ:
# $32 \to 15$ against $32 \to 16$.

# %%
def pooled(h, z, s):
    return (h - z) // s + 1


for where, h in [("pool1 (after conv1)", 55), ("pool2 (after conv2)", 27),
                 ("pool5 (after conv5)", 13), ("alexnet-cifar pool1", 32)]:
    got = maxpool2d_forward(np.zeros((1, 1, h, h)), 3, 2)[0].shape[2]
    print(f"{where:20s}: {h:2d} -> z=3,s=2: {pooled(h, 3, 2):2d} (library: {got:2d}) | "
          f"z=2,s=2: {pooled(h, 2, 2):2d}")
assert [pooled(h, 3, 2) for h in (55, 27, 13)] == [27, 13, 6]
print("fc6 sees 256 maps of 6 x 6 =", 256 * 6 * 6, "numbers")

# %% [markdown]
# ## What pooling does to a feature map
#
# Take two shape images, compute a simple feature map by hand: the strength of the
# grey-level edges, from two Sobel kernels (horizontal and vertical differences)
# through `conv2d_forward`, and a ReLU that keeps only the strong edges. Then pool it
# both ways. Pooling keeps the strongest response in each neighbourhood: the
# outline survives at half the resolution, and each output no longer cares where in
# its window the edge was: a small invariance to position, which is what pooling is for.
# With overlapping windows each strong pixel shows in up to four outputs, so the
# pooled outline is thicker; fine detail such as the checkerboard's inner edges is
# merged.

# %%
data = load_dataset("shapes", "train", size=40, image_size=64, seed=0)
sobel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
kernels = np.stack([sobel, sobel.T])[:, None]  # (2, 1, 3, 3): d/dx and d/dy
fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
for row, name in zip(axes, ["star", "checkerboard"], strict=True):
    image = data.images[np.flatnonzero(data.labels == data.classes.index(name))[0]]
    grey = image.astype(np.float64).mean(axis=2)[None, None] / 255.0  # (1, 1, 64, 64)
    g, _ = conv2d_forward(grey, kernels, None)  # (1, 2, 62, 62), no padding
    edges = np.sqrt((g**2).sum(axis=1, keepdims=True))  # edge strength (1, 1, 62, 62)
    feature, _ = relu_forward(edges - 0.3 * edges.max())  # only the strong edges
    p32, _ = maxpool2d_forward(feature, 3, 2)
    p22, _ = maxpool2d_forward(feature, 2, 2)
    panels = [(image, name), (feature[0, 0], f"edge map {feature.shape[2]}x{feature.shape[3]}"),
              (p32[0, 0], f"pooled z=3, s=2: {p32.shape[2]}x{p32.shape[3]}"),
              (p22[0, 0], f"pooled z=2, s=2: {p22.shape[2]}x{p22.shape[3]}")]
    for ax, (img, title) in zip(row, panels, strict=True):
        ax.imshow(img, cmap=None if img.ndim == 3 else "magma")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Backward: where the gradient goes
#
# The maximum of a window depends only on the entry that holds it, with slope 1.
# So the backward pass sends each window's upstream gradient, whole, to the
# position of its maximum, and nothing to the other entries:
#
# $$dx[n, c, s\,i + u^*, s\,j + v^*] \mathrel{+}= \text{dout}[n, c, i, j],
#   \qquad (u^*, v^*) = \arg\max_{u, v}\, x[n, c, s\,i + u, s\,j + v].$$
#
# With overlapping windows one pixel can be the maximum of several windows and then
# receives the **sum** of their gradients. When several entries of a window tie for
# the maximum, the library (like PyTorch) sends the gradient to the **first** of them
# in row-major order: top row first, left to right (more on ties below).
#
# ### Your turn: max pooling backward
#
# Write it with a loop over the output positions $(i, j)$, each step handling the
# whole batch and all channels at once.

# %%
def maxpool_backward_by_hand(dout, x, z=3, s=2):
    """dL/dx of max pooling (window z, stride s): each window's gradient goes to its first max."""
    n, c, h, w = x.shape
    oh, ow = (h - z) // s + 1, (w - z) // s + 1
    # Hint: argmax of a window reshaped to (n, c, z*z) is its first max; divmod(k, z) = (u, v).
    ### BEGIN SOLUTION
    dx = np.zeros_like(x)
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, s * i : s * i + z, s * j : s * j + z].reshape(n, c, z * z)
            u, v = np.divmod(window.argmax(axis=2), z)  # (n, c) each
            dx[nn, cc, s * i + u, s * j + v] += dout[:, :, i, j]
    return dx
    ### END SOLUTION


# %% [markdown]
# The check: your gradient against the loop reference `maxpool2d_backward_loops` on
# distinct values, on a constant input (every window one big tie), and on ReLU
# outputs (ties between zeros), for both $z = 3, s = 2$ and $z = s = 2$. They add the
# same numbers, so they should agree exactly, a relative error of 0 (tolerance
# $10^{-12}$). Then against finite differences of the forward, on well separated
# values (no ties; see the gradient check below). These values reach about 50, and
# the rounding error of a difference quotient grows with the numbers it subtracts,
# $u\,|x| / \varepsilon \approx 2 \cdot 10^{-16} \cdot 50 / 10^{-6} \approx 10^{-8}$: expect
# about that (tolerance $10^{-7}$).

# %%
cases = {
    "distinct values": rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9) * 0.1,
    "constant (ties)": np.ones((2, 3, 9, 9)),
    "after a ReLU (tied zeros)": np.maximum(rng.standard_normal((2, 3, 9, 9)) - 1.0, 0.0),
}
for (name, x_case), (z_, s_) in itertools.product(cases.items(), [(3, 2), (2, 2)]):
    out_case = maxpool2d_loops(x_case, z_, s_)
    dout_case = rng.standard_normal(out_case.shape)
    check_close(f"{name}, z={z_}, s={s_}: yours vs the loops",
                maxpool_backward_by_hand(dout_case, x_case, z_, s_),
                maxpool2d_backward_loops(dout_case, x_case, z_, s_), 1e-12)
errors = check_function(lambda x: (maxpool2d_loops(x, 3, 2), x),
                        lambda dout, x: maxpool_backward_by_hand(dout, x, 3, 2),
                        {"x": cases["distinct values"]})
rounding = np.finfo(np.float64).eps * np.abs(cases["distinct values"]).max() / 1e-6
print(f"yours vs finite differences: relative error {errors['x']:.1e} (rounding estimate "
      f"{rounding:.0e}, tolerance 1e-07)")
assert errors["x"] < 1e-7

# %% [markdown]
# With `dout` all ones, `dx` counts how many windows chose each pixel. The library's
# `maxpool2d_backward`:

# %%
x = rng.standard_normal((1, 1, 9, 9))
x[0, 0, 4, 4] = 10.0  # one large value, in the middle: the max of all 4 windows around it
out, cache = maxpool2d_forward(x, 3, 2)
dx = maxpool2d_backward(np.ones_like(out), cache)
print("windows:", out.shape[2:], "| gradient at the large value (4, 4):", dx[0, 0, 4, 4])
print(dx[0, 0].astype(int))
check_close("backward vs the loops", dx, maxpool2d_backward_loops(np.ones_like(out), x, 3, 2),
            1e-15)
assert dx.sum() == out.size  # each window passes on exactly its own gradient

fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
axes[0].imshow(x[0, 0], cmap="viridis")
axes[0].set_title("x (9x9), a large value at (4, 4)")
axes[1].imshow(dx[0, 0], cmap="Reds")
for (r, c), v in np.ndenumerate(dx[0, 0]):
    if v:
        axes[1].text(c, r, int(v), ha="center", va="center", color="w" if v >= 3 else "k")
axes[1].set_title("dx for dout = 1: windows won by each pixel")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

# %% [markdown]
# ### Ties
#
# When several entries of a window are equal and largest, the maximum has no
# derivative (moving any one of them up changes the output, moving it down does
# not). A rule is needed; the library's is PyTorch's: the gradient goes to the
# **first** maximum in row-major order (top row first, left to right). The loop
# reference shows it with a strict `>`:

# %%
show_source(maxpool2d_backward_loops, start="    dx = np.zeros")

# %%
flat = np.ones((1, 1, 5, 5))  # every window is one big tie
out, cache = maxpool2d_forward(flat, 3, 2)
dx = maxpool2d_backward(np.ones_like(out), cache)
print("all-equal input: dx =\n", dx[0, 0].astype(int))
check_close("ties: library vs loops", dx, maxpool2d_backward_loops(np.ones_like(out), flat, 3, 2),
            1e-15)

# %% [markdown]
# Ties are common in AlexNet: pooling follows a ReLU, and a window of a map that is
# zero there is a tie between zeros. The rule does not matter in that case: the
# gradient then reaches a zero of the ReLU, whose backward passes nothing at 0.

# %%
z, relu_cache = relu_forward(rng.standard_normal((1, 1, 9, 9)) - 1.0)  # mostly zeros
out, cache = maxpool2d_forward(z, 3, 2)
d_relu_in = relu_backward(maxpool2d_backward(np.ones_like(out), cache), relu_cache)
print(f"zeros after the ReLU: {np.mean(z == 0):.0%}; "
      f"all-zero windows: {int((out == 0).sum())} of {out.size}")
print("gradient that reaches a zero of the ReLU:", float(np.abs(d_relu_in[z == 0]).sum()))

# %% [markdown]
# ## Gradient check, away from ties
#
# At a tie the finite difference sees two pieces of the function, so it is
# meaningless there (the thresholds in `minialexnet.gradcheck` say so). Check with
# values that are distinct and far apart compared with $\varepsilon = 10^{-6}$, so
# that no perturbation changes which entry wins: a shuffled ramp, with steps of 0.1.

# %%
n_values = 2 * 3 * 11 * 11
x = (rng.permutation(n_values) * 0.1).reshape(2, 3, 11, 11)
for z_, s_ in [(3, 2), (2, 2)]:
    errors = check_function(lambda x, z_=z_, s_=s_: maxpool2d_forward(x, z_, s_),
                            maxpool2d_backward, {"x": x})
    print(f"z={z_}, s={s_}: dx relative error {errors['x']:.1e}")
    assert errors["x"] < 1e-7

# and at ties, to see why we avoid them: a constant input
tie_error = check_function(lambda x: maxpool2d_forward(x, 3, 2), maxpool2d_backward,
                           {"x": np.ones((1, 1, 7, 7))})["x"]
print(f"constant input (every window a tie): relative error {tie_error:.1e}, not a bug")

# %% [markdown]
# ### On a GPU
#
# Pooling on CuPy arrays, checked against the CPU, at the size of AlexNet's pool1.

# %%
batch = pick(4, 32)
x55 = rng.standard_normal((batch, 96, 55, 55)).astype(np.float32)
start = time.perf_counter()
out_cpu, cache_cpu = maxpool2d_forward(x55, 3, 2)
dx_cpu = maxpool2d_backward(np.ones_like(out_cpu), cache_cpu)
t_cpu = time.perf_counter() - start
print(f"pool1 forward + backward, batch {batch}, CPU: {1e3 * t_cpu:.1f} ms, out {out_cpu.shape}")

if gpu_available():
    gpu = Device("gpu:0")
    with gpu:
        xg = gpu.asarray(x55)
        warm_out, warm_cache = maxpool2d_forward(xg, 3, 2)  # warm-up: CuPy compiles its
        maxpool2d_backward(gpu.xp.ones_like(warm_out), warm_cache)  # kernels on first use
        gpu.synchronize()
        start = time.perf_counter()
        out_gpu, cache_gpu = maxpool2d_forward(xg, 3, 2)
        dx_gpu = maxpool2d_backward(gpu.xp.ones_like(out_gpu), cache_gpu)
        gpu.synchronize()
        t_gpu = time.perf_counter() - start
    print(f"pool1 forward + backward, batch {batch}, GPU: {1e3 * t_gpu:.2f} ms")
    check_close("pooled maps, GPU vs CPU", to_numpy(out_gpu), out_cpu, 1e-7)
    check_close("dx, GPU vs CPU", to_numpy(dx_gpu), dx_cpu, 1e-7)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **Average pooling.** Write `avgpool_forward(x, z, s)` and its backward with one
#    loop over the $z^2$ window offsets (each step takes the strided view
#    `x[:, :, u:u + s*(OH-1) + 1:s, v:v + s*(OW-1) + 1:s]` of the whole batch), and
#    check the backward with `check_function`. Unlike max pooling it has no ties:
#    does the check pass on a constant input?
# 2. **How much does pooling throw away?** For AlexNet's pool1 ($55 \to 27$, 96
#    maps, batch 1) count what fraction of the input entries receive any gradient
#    (`dx != 0`) for random inputs, with $z = 3, s = 2$ and with $z = s = 2$. Explain
#    the two numbers from the coverage pictures above.
# 3. **Ties after ReLU.** Build conv1 -> ReLU -> pool1 of AlexNet on a few shape
#    images at 227x227 (`load_dataset("shapes", "train", size=4, image_size=227)`,
#    weights `0.01 * standard_normal((96, 3, 11, 11))`, inputs as raw 0-255 pixels
#    minus their mean) and count the windows whose maximum is a tie. Change the
#    conv1 bias to +1 or -1: how does the count change, and why?

# %% [markdown]
# ## Summary
#
# - Max pooling keeps the largest value of each $z \times z$ window, windows $s$ apart.
#   AlexNet's windows overlap ($z = 3$, $s = 2$) and give the same sizes as $z = s = 2$
#   on its maps: $55 \to 27 \to 13 \to 6$.
# - Backward, each window's gradient goes whole to the position of its maximum; a
#   pixel that wins several overlapping windows receives the sum of their gradients.
# - At a tie the gradient goes to the first maximum in row-major order (PyTorch's
#   rule). Ties are common after a ReLU and harmless there; finite differences are
#   meaningless at a tie, so gradient checks use distinct, well separated values.
#
# ## Questions
#
# 1. With $z = 3$, $s = 2$, how many windows can a single pixel be the maximum of, at
#    most? Where must it sit?
# 2. With $z = s = 2$ on conv1's $55 \times 55$ maps, what share of the map never
#    receives any gradient, whatever the data? And with $z = 3$, $s = 2$?
# 3. A gradient check on a constant input reports a large error although the backward
#    is right. Explain what the two evaluations $f(x \pm \varepsilon e_i)$ see there.

