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
# # Chapter 05: Local response normalisation
#
# AlexNet divides every activation after conv1 and conv2 by a number that grows with
# the activity of its neighbouring channels at the same pixel. This chapter builds that
# operation, derives its gradient by hand, checks both against the library and against
# finite differences, converts its constants to the conventions of other libraries, and
# shows what it does to a set of feature maps.

# %% [markdown]
# ## Setup
#
# Everything here runs on a laptop CPU in seconds, offline. To run it elsewhere:
#
# - in a hosted Jupyter with a GPU:
#   `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`
# - from a checkout: `%pip install -e '/path/to/minialexnet[gpu]'` (leave out `[gpu]`
#   on a machine without CUDA);
# - locally, in the repository: `make tutorials` (creates `.venv` and opens JupyterLab).
#
# `MINIALEXNET_FAST=1` in the environment makes the chapter use smaller arrays (the
# test-suite runs it that way); every check still holds.

# %%
try:
    import minialexnet
except ImportError as exc:
    raise ImportError(
        "this chapter needs minialexnet: `%pip install -e '/path/to/minialexnet'` from a "
        "checkout (or `make tutorials` in the repository), then restart the kernel"
    ) from exc

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.data import load_dataset
from minialexnet.functional import conv2d_forward, lrn_backward, lrn_forward, relu_forward
from minialexnet.functional.reference import lrn_backward_loops, lrn_loops
from minialexnet.gradcheck import check_function
from minialexnet.layers import LRN
from minialexnet.tutorial import FAST, check_close, pick, show_source

print("minialexnet", minialexnet.__version__ if hasattr(minialexnet, "__version__") else "")
print("fast mode" if FAST else "full mode")

# %% [markdown]
# ## What the paper says [3.3]
#
# ReLUs do not need their inputs normalised to avoid saturating, but the authors still
# found that a *local* normalisation helped generalisation. With $a^i_{x,y}$ the
# activity of kernel $i$ at position $(x, y)$ after the ReLU, the response-normalised
# activity is
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\,i-n/2)}^{\min(N-1,\,i+n/2)} \big(a^j_{x,y}\big)^2\Big)^{\beta}$$
#
# where the sum runs over $n$ "adjacent" kernel maps at the same position and $N$ is
# the number of kernels in the layer. The ordering of the kernel maps is arbitrary,
# fixed before training. "This sort of response normalization implements a form of
# lateral inhibition inspired by the type found in real neurons, creating competition
# for big activities amongst neuron outputs computed using different kernels." The
# constants, set with a validation set: $k = 2$, $n = 5$, $\alpha = 10^{-4}$,
# $\beta = 0.75$. It is applied after the ReLU in conv1 and conv2, and it cut the
# top-1 and top-5 error rates by 1.4% and 1.2% (on CIFAR-10, a four-layer net went
# from 13% to 11% test error with it).

# %% [markdown]
# ## The idea in numbers
#
# Write $S_i = \sum_{j \in W(i)} a_j^2$ for the sum of squares over the window
# $W(i) = \{i-2, \dots, i+2\} \cap \{0, \dots, N-1\}$ and $D_i = k + \alpha S_i$.
# Then $b_i = a_i D_i^{-\beta}$: every activation is multiplied by a factor
# $D_i^{-\beta} \le k^{-\beta}$.
#
# - Where the neighbourhood is quiet ($\alpha S_i \ll k$) the factor is the constant
#   $k^{-\beta} = 2^{-0.75} \approx 0.59$: LRN is then just a fixed scaling.
# - It starts to bite when $\alpha S_i$ is comparable to $k$, i.e. $S_i \approx 2 \cdot 10^4$,
#   activations of order $\sqrt{2 \cdot 10^4 / 5} \approx 63$ in each of the five channels.
#
# That is the scale of the paper's inputs: raw 0-255 pixels minus the mean image. On
# inputs scaled to unit variance the sum term would be negligible and LRN would do
# nothing but multiply by 0.59; this is why the library keeps the raw-pixel scale
# (`docs/training.md`, "Input scale").

# %%
k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
for s in [0.0, 1.0, 1e2, 1e4, 2e4, 1e5, 1e6]:
    d = k + alpha * s
    print(f"sum of squares S = {s:>9.0f}:  D = {d:8.3f},  factor D^-beta = {d**-beta:.3f}")

# %% [markdown]
# ## Your turn: the forward, from the formula
#
# Write the paper's formula as it reads: a loop over the channels $i$, each summing the
# squares of the channels $\max(0, i - n/2)$ to $\min(N - 1, i + n/2)$ (with $n/2$
# rounded down) at every pixel of every image at once. Arrays are $(N, C, H, W)$, so the
# channels are axis 1.

# %%
def lrn_by_the_formula(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """The paper's formula, one channel at a time (a teaching version)."""
    # Hint: b[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta.
    ### BEGIN SOLUTION
    b = np.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(axis=1)
        b[:, i] = a[:, i] / (k + alpha * s) ** beta
    return b
    ### END SOLUTION


# %% [markdown]
# The check compares yours with the library's slow reference `lrn_loops`
# (`minialexnet/functional/reference.py`), a loop over every pixel and channel, on an
# input of the paper's scale (ReLU outputs of order 100). The same sums in the same
# order: a relative error of 0, or about $10^{-16}$ (tolerance $10^{-12}$).

# %%
rng = np.random.default_rng(0)
N, C, H, W = pick((2, 12, 4, 4), (8, 48, 13, 13))
a = np.maximum(rng.normal(0.0, 80.0, size=(N, C, H, W)), 0.0)  # float64, post-ReLU

check_close("yours vs reference.lrn_loops", lrn_by_the_formula(a), lrn_loops(a), 1e-12)

# %% [markdown]
# ## The library's code
#
# `minialexnet/functional/lrn.py` holds `lrn_forward` and `lrn_backward`. The window sum
# is computed without a loop over channels: the squares are written into a zero-padded
# array and $n$ shifted slices of it are added up. Read the forward, then check it
# against yours:

# %%
show_source(lrn_forward)

# %%
b, cache = lrn_forward(a, n=5, k=2.0, alpha=1e-4, beta=0.75)
check_close("lrn_forward vs yours", b, lrn_by_the_formula(a), 1e-12)
check_close("layers.LRN() (the paper's defaults)", LRN().forward(a), b, 1e-12)
ratio = b[a > 0] / a[a > 0]
print(f"factor b/a over this input: from {ratio.min():.3f} to {ratio.max():.3f}")

# %% [markdown]
# ## The gradient, step by step
#
# Backpropagation needs $\partial L / \partial a_j$ from the upstream gradient
# $g_i = \partial L / \partial b_i$. All of this happens at one pixel of one image, so
# drop $x, y$ and the batch index.
#
# **Step 1: which outputs depend on $a_j$?** $a_j$ appears in $b_j$ directly (the
# numerator), and in the denominator $D_i$ of every output $i$ whose window contains
# $j$: for $n = 5$ these are $i = j-2, \dots, j+2$ (those that exist). So
#
# $$\frac{\partial L}{\partial a_j} = \sum_i g_i \frac{\partial b_i}{\partial a_j}.$$
#
# **Step 2: differentiate one output.** With $b_i = a_i D_i^{-\beta}$ and the product
# rule,
#
# $$\frac{\partial b_i}{\partial a_j} = \underbrace{[i = j]\, D_i^{-\beta}}_{\text{numerator}}
# \;+\; a_i \cdot (-\beta) D_i^{-\beta - 1} \cdot \frac{\partial D_i}{\partial a_j}.$$
#
# **Step 3: the denominator.** $D_i = k + \alpha \sum_{j' \in W(i)} a_{j'}^2$, so
# $\partial D_i / \partial a_j = 2 \alpha a_j$ if $j \in W(i)$, else 0. Hence
#
# $$\frac{\partial b_i}{\partial a_j} = [i = j]\, D_i^{-\beta}
# \;-\; 2\alpha\beta\, a_i a_j\, D_i^{-\beta-1}\, [j \in W(i)].$$
#
# - The **self term** ($i = j$; $j$ is always in its own window) is
#   $D_j^{-\beta} - 2\alpha\beta\, a_j^2 D_j^{-\beta-1}$: the plain scaling, reduced
#   because a larger $a_j$ also enlarges its own denominator.
# - The **cross terms** ($i \ne j$, $|i - j| \le 2$) are
#   $-2\alpha\beta\, a_i a_j D_i^{-\beta-1} \le 0$ for ReLU outputs: raising $a_j$
#   *lowers* its neighbours' outputs. That is the lateral inhibition, in the Jacobian.
#
# **Step 4: sum over $i$.** Using $a_i D_i^{-\beta-1} = b_i / D_i$,
#
# $$\boxed{\frac{\partial L}{\partial a_j} = g_j D_j^{-\beta}
# \;-\; 2\alpha\beta\, a_j \sum_{i:\, j \in W(i)} \frac{g_i\, b_i}{D_i}}$$
#
# The sum runs over the outputs whose window contains $j$. For odd $n$ that set is
# $W(j)$ itself, so the same shifted-slice trick as in the forward computes it; for
# even $n$ it is the mirrored window (see the exercises).

# %% [markdown]
# First, the Jacobian at a single pixel from the formula of step 3, against a
# Jacobian by finite differences: column $j$ is
# $(b(a + \epsilon e_j) - b(a - \epsilon e_j)) / 2\epsilon$.

# %%
C_small = 10
a_pixel = rng.uniform(50.0, 250.0, size=C_small)  # one pixel, 10 channels, a busy one


def lrn_pixel(v):
    return lrn_forward(v.reshape(1, -1), n=5, k=2.0, alpha=1e-4, beta=0.75)[0].ravel()


S = np.array([(a_pixel[max(0, i - 2) : i + 3] ** 2).sum() for i in range(C_small)])
D = 2.0 + 1e-4 * S
in_window = np.abs(np.subtract.outer(np.arange(C_small), np.arange(C_small))) <= 2  # [j in W(i)]
jacobian = np.diag(D**-0.75) - 2 * 1e-4 * 0.75 * np.outer(a_pixel * D**-1.75, a_pixel) * in_window

eps = 1e-6
numeric = np.empty((C_small, C_small))
for j in range(C_small):
    e = np.zeros(C_small)
    e[j] = eps
    numeric[:, j] = (lrn_pixel(a_pixel + e) - lrn_pixel(a_pixel - e)) / (2 * eps)
check_close("Jacobian from the formula vs finite differences", jacobian, numeric, 1e-7)

fig, ax = plt.subplots(figsize=(4.5, 4))
lim = np.abs(jacobian).max()
im = ax.imshow(jacobian, cmap="RdBu_r", vmin=-lim, vmax=lim)
ax.set(title="d b_i / d a_j at one pixel", xlabel="input channel j",
       ylabel="output channel i")
fig.colorbar(im, ax=ax)
plt.show()
print("self terms (diagonal):", np.round(np.diag(jacobian), 3))
print("cross terms are all <= 0:", bool((jacobian[~np.eye(C_small, dtype=bool)] <= 0).all()))

# %% [markdown]
# Red diagonal, blue band of width two on each side: each channel's output grows with
# its own input and shrinks as its four nearest channels grow.
#
# ## Your turn: the backward, from the boxed formula
#
# Write the boxed formula with loops, for odd $n$: first $D_i$ for every channel (as in
# your forward), then the self term $g_j D_j^{-\beta}$, then for each $j$ the sum over
# the outputs $i$ whose window holds it, $i = j - n/2, \dots, j + n/2$ within
# $0 \dots N - 1$.

# %%
def lrn_backward_by_the_formula(g, a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """dL/da_j = g_j D_j^-beta - 2 alpha beta a_j sum_{i: j in W(i)} g_i b_i / D_i (odd n)."""
    # Hint: D[:, i] = k + alpha * (sum of squares over W(i)); b = a * D**-beta; two loops.
    ### BEGIN SOLUTION
    channels = a.shape[1]
    D = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        D[:, i] = k + alpha * (a[:, lo : hi + 1] ** 2).sum(axis=1)
    b = a * D**-beta
    da = g * D**-beta  # the self scaling
    for j in range(channels):
        for i in range(max(0, j - n // 2), min(channels - 1, j + n // 2) + 1):  # j in W(i)
            da[:, j] -= 2 * alpha * beta * a[:, j] * g[:, i] * b[:, i] / D[:, i]
    return da
    ### END SOLUTION


# %% [markdown]
# The check: yours against the reference `lrn_backward_loops` (the same sums in
# another order: about $10^{-16}$, tolerance $10^{-12}$), and against centred finite
# differences of your forward, in float64, on a small piece of the input (two
# forwards per entry). With activations of order 100 the rounding of a difference
# quotient is about $u \cdot 100 / \varepsilon \approx 2 \cdot 10^{-8}$ (chapter 04), so
# expect about $10^{-8}$ (tolerance $10^{-7}$).

# %%
g = rng.standard_normal(a.shape)
check_close("yours vs reference.lrn_backward_loops", lrn_backward_by_the_formula(g, a),
            lrn_backward_loops(g, a), 1e-12)
a_small = a[:1, : pick(8, 16), :3, :3].copy()
errors = check_function(lambda x: (lrn_by_the_formula(x), x),
                        lambda dout, x: lrn_backward_by_the_formula(dout, x), {"x": a_small})
print(f"yours vs finite differences: relative error {errors['x']:.1e} (tolerance 1e-07)")
assert errors["x"] < 1e-7

# %% [markdown]
# The library's `lrn_backward` computes the same sum with the shifted-slice trick of the
# forward, from the forward's cache. Read it, then the checks: against yours, and
# `gradcheck.check_function` against centred finite differences of `lrn_forward`.

# %%
show_source(lrn_backward)

# %%
da = lrn_backward(g, cache)
check_close("lrn_backward vs yours", da, lrn_backward_by_the_formula(g, a), 1e-12)
check_close("lrn_backward vs reference.lrn_backward_loops", da, lrn_backward_loops(g, a), 1e-12)

a_check = a[:1, : pick(8, 16), :3, :3].copy()  # finite differences cost two forwards per entry
errors = check_function(lambda x: lrn_forward(x, 5, 2.0, 1e-4, 0.75), lrn_backward, {"x": a_check})
print("check_function relative error:", errors)
assert errors["x"] < 1e-7

# %% [markdown]
# The cross terms matter. Drop them (pretend LRN were a fixed scaling) and the
# gradient is measurably wrong at the paper's scale, though nearly right where the
# activations are small:

# %%
def off_by(got, want):
    return np.linalg.norm(got - want) / np.linalg.norm(want)


for scale in [1, 1 / 50]:  # activations of order 80, and of order 1.6
    _, c = lrn_forward(a * scale)
    self_only = g * c[3]  # c[3] is D^-beta: the gradient of a fixed scaling
    print(f"activations ~{80 * scale:g}: without the cross terms the gradient is off by "
          f"{off_by(self_only, lrn_backward(g, c)):.1e}")

# %% [markdown]
# ## Other libraries' conventions
#
# The same operation goes by different constants elsewhere. Three families:
#
# | library | denominator | our $\alpha$ becomes |
# |---|---|---|
# | the paper, minialexnet, TensorFlow `tf.nn.local_response_normalization(depth_radius, bias, alpha, beta)` | $k + \alpha \sum_{W} a^2$ | $\alpha$ (and `depth_radius` $= n/2$ rounded down, `bias` $= k$) |
# | PyTorch `local_response_norm(size, alpha, beta, k)`, Caffe `LRN` (`local_size`, `alpha`, `beta`, `k`) | $k + \frac{\alpha'}{n} \sum_{W} a^2$ | $\alpha' = n\alpha$ |
# | cuda-convnet2 cross-map layer `cmrnorm` (`size`, `scale`, `pow`, `minDiv`) | $\text{minDiv} + \frac{\text{scale}}{\text{size}} \sum_{W} a^2$ | $\text{scale} = n\alpha$, $\text{minDiv} = k$ |
#
# PyTorch and Caffe divide by $n$ even at the edges (they average over a zero-padded
# window), so the conversion is exact everywhere. Caffe's `bvlc_alexnet` model uses
# `alpha: 0.0001` in *its* convention and $k = 1$, i.e. a normalisation five times
# weaker than the paper's, with a different constant: a common "AlexNet" is not
# quite the paper's. Below, each convention in a few lines of NumPy (no PyTorch
# needed), and the conversion checked numerically.

# %%
def window_sum_zero_padded(sq, n):
    """sum over channels c - n//2 .. c + (n-1)//2 of sq, zero-padded (PyTorch's window)."""
    channels = sq.shape[1]
    padded = np.pad(sq, [(0, 0), (n // 2, (n - 1) // 2)] + [(0, 0)] * (sq.ndim - 2))
    return sum(padded[:, d : d + channels] for d in range(n))


def lrn_pytorch_caffe(x, size, alpha, beta, k):
    """PyTorch's local_response_norm / Caffe's LRN: alpha multiplies the MEAN over `size`."""
    return x / (k + alpha * window_sum_zero_padded(x**2, size) / size) ** beta


def lrn_tensorflow(x, depth_radius, bias, alpha, beta):
    """tf.nn.local_response_normalization on NCHW: a plain SUM over 2*depth_radius + 1."""
    return x / (bias + alpha * window_sum_zero_padded(x**2, 2 * depth_radius + 1)) ** beta


def lrn_cuda_convnet(x, size, scale, pow, min_div):
    """cuda-convnet2 cmrnorm: scale is divided by size when the layer is parsed."""
    return x / (min_div + (scale / size) * window_sum_zero_padded(x**2, size)) ** pow


ours = lrn_forward(a, n=5, k=2.0, alpha=1e-4, beta=0.75)[0]
n_ = 5
check_close("PyTorch/Caffe, alpha' = n * alpha",
            lrn_pytorch_caffe(a, size=n_, alpha=n_ * 1e-4, beta=0.75, k=2.0), ours, 1e-12)
check_close("TensorFlow, depth_radius = n // 2",
            lrn_tensorflow(a, depth_radius=n_ // 2, bias=2.0, alpha=1e-4, beta=0.75), ours, 1e-12)
check_close("cuda-convnet2, scale = n * alpha",
            lrn_cuda_convnet(a, size=n_, scale=n_ * 1e-4, pow=0.75, min_div=2.0), ours, 1e-12)

unconverted = lrn_pytorch_caffe(a, 5, 1e-4, 0.75, 2.0)  # the paper's alpha pasted as it is
print(f"PyTorch with alpha=1e-4 (not converted) is off by {off_by(unconverted, ours):.1%}")
caffe_alexnet = lrn_pytorch_caffe(a, 5, 1e-4, 0.75, 1.0)  # bvlc_alexnet: alpha 1e-4, k = 1
print(f"Caffe's bvlc_alexnet settings are off by {off_by(caffe_alexnet, ours):.1%}")
check_close("bvlc_alexnet = ours with alpha 2e-5 and k 1",
            caffe_alexnet, lrn_forward(a, n=5, k=1.0, alpha=2e-5, beta=0.75)[0], 1e-12)

# %% [markdown]
# ## A picture: lateral inhibition
#
# To see the competition we need channels whose order means something. Build a small
# bank of eight oriented edge detectors (derivatives of a Gaussian at 0, 22.5, ..., 157.5
# degrees), so that *adjacent channels detect similar orientations*, run it over a few
# shapes images (grey, raw 0-255 scale, mean removed), apply ReLU and then LRN.
# AlexNet's learned kernels come in an arbitrary order; here we chose the order so the
# effect is easy to read.

# %%
images = load_dataset("shapes", "train", size=4, image_size=pick(48, 64), seed=0)
grey = images.images.astype(np.float64).mean(axis=-1)  # (N, H, W), raw 0-255 scale
grey -= grey.mean(axis=(1, 2), keepdims=True)

r, sigma = 3, 1.2
yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
bank = []
for theta in np.arange(8) * np.pi / 8:
    d = (np.cos(theta) * xx + np.sin(theta) * yy) * np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    bank.append(d / np.linalg.norm(d))
bank = np.array(bank)[:, None]  # (8, 1, 7, 7): 8 output channels, 1 input channel

maps, _ = conv2d_forward(grey[:, None], bank, np.zeros(8), stride=1, pad=r)
maps, _ = relu_forward(maps)
normed, lrn_cache = lrn_forward(maps, n=5, k=2.0, alpha=1e-4, beta=0.75)
factor = lrn_cache[3]  # D^-beta per channel and pixel
print(f"edge responses up to {maps.max():.0f}; factor {factor.min():.2f} to {factor.max():.2f}")

# %%
which = 0
top = maps[which].max()  # one grey scale for a and b: black 0, white the largest a
fig, axes = plt.subplots(3, 8, figsize=(15, 6.2))
for c in range(8):
    axes[0, c].imshow(maps[which, c], cmap="gray", vmin=0, vmax=top)
    axes[0, c].set_title(f"{c * 22.5:.1f} deg")
    axes[1, c].imshow(normed[which, c], cmap="gray", vmin=0, vmax=top)
    shown = axes[2, c].imshow(factor[which, c], cmap="magma", vmin=0, vmax=2**-0.75)
for row, label in enumerate(["a (after ReLU)", "b = LRN(a), same scale", "factor D^-beta"]):
    axes[row, 0].set_ylabel(label)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(shown, ax=axes[2].tolist(), fraction=0.02, pad=0.01)
label = images.classes[images.labels[which]]
fig.suptitle(f"LRN across 8 orientation channels of a '{label}' image: a and b on one grey scale "
             f"(0 to {top:.0f}); bottom row: dark = strongly divided, 0.59 = a quiet neighbourhood")
plt.show()
strong = maps[which] > 0.5 * top  # the strongest edge responses
print(f"b / a (the factor) where a is above half its maximum: {factor[which][strong].mean():.2f} "
      f"on average, {factor[which][strong].min():.2f} at least; where a is 0: "
      f"{factor[which][maps[which] == 0].mean():.2f} on average; "
      f"largest b {normed[which].max():.0f}, largest a {top:.0f}")
assert factor[which][strong].mean() < 0.9 * 2**-0.75  # the strong edges are divided more

# %% [markdown]
# On one grey scale the middle row is a dimmed copy of the top row: everywhere by at
# least the constant $2^{-0.75} \approx 0.59$, and along the strong edges by more (the
# averages printed above), so the largest responses shrink the most. The factor map
# (bottom row) shows where: it is dark wherever any of the five nearest orientations
# responds strongly, so along the edges each channel is divided down by the activity of
# its neighbours, including the neighbours that respond only weakly there. In quiet
# regions the factor is the constant $2^{-0.75}$ and LRN changes nothing but the scale.
# Two views of single pixels: a pixel on the strongest edge (left), and a made-up
# pixel where one channel is far stronger than the rest (right).

# %%
pixel = np.unravel_index(np.argmax(maps[which].max(axis=0)), maps.shape[2:])
before, after = maps[which, :, pixel[0], pixel[1]], normed[which, :, pixel[0], pixel[1]]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2))
ax1.bar(np.arange(8) - 0.2, before, width=0.4, label="a (before)")
ax1.bar(np.arange(8) + 0.2, after, width=0.4, label="b (after LRN)")
ax1.set(xlabel="channel (orientation)", ylabel="activation",
        title=f"the pixel {tuple(int(p) for p in pixel)}, on an edge")
ax1.legend()

# A single strong channel among weak ones: its neighbours are inhibited, far channels not.
spike = np.full(16, 20.0)
spike[8] = 300.0
out_spike = lrn_forward(spike.reshape(1, 16), n=5)[0].ravel()
ax2.plot(out_spike / spike, "o-")
ax2.axhline(2**-0.75, color="gray", ls="--", label="k^-beta (no neighbours)")
ax2.set(xlabel="channel", ylabel="b / a", title="channel 8 at 300, all others at 20")
ax2.legend()
plt.tight_layout()
plt.show()
print("factor b/a per channel:", np.round(out_spike / spike, 3))

# %% [markdown]
# On the left, every channel is divided by about the same amount: at that pixel they
# all share most of their window, and LRN acts as a gain control on the whole group
# (the strongest responses are compressed most in absolute terms). On the right,
# channels 6 to 10 share their window with the strong channel 8 and are
# divided by more than the others, whose factor stays near $2^{-0.75}$. A weak channel
# next to a strong one loses proportionally as much as the strong one itself: the
# strong response keeps its lead in absolute terms, and weak rivals nearby become
# weaker. That is "competition for big activities" across kernels.

# %% [markdown]
# ## On a GPU
#
# The same functions take CuPy arrays; the result agrees with the CPU to float32
# rounding.

# %%
if gpu_available():
    dev = Device("gpu:0")
    x32 = a.astype(np.float32)
    out_gpu, cache_gpu = lrn_forward(dev.asarray(x32))
    dx_gpu = lrn_backward(dev.asarray(g.astype(np.float32)), cache_gpu)
    out_cpu, cache_cpu = lrn_forward(x32)
    check_close("LRN forward, GPU vs CPU (float32)", to_numpy(out_gpu), out_cpu, 1e-5)
    dx_cpu = lrn_backward(g.astype(np.float32), cache_cpu)
    check_close("LRN backward, GPU vs CPU (float32)", to_numpy(dx_gpu), dx_cpu, 1e-5)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **Even windows.** For $n = 4$ the window of channel $i$ is $i-2, \dots, i+1$, and
#    the set $\{i : j \in W(i)\}$ in the backward is the *mirrored* window
#    $j-1, \dots, j+2$. Run `check_function` on `lrn_forward(x, n=4)` to see that the
#    library handles it, then change `lrn_backward_by_the_formula` above so that it is
#    right for even $n$ too (hint: loop over $i$ and test whether $j$ lies in $W(i)$).
# 2. **Scale matters.** Take the edge maps `maps` above and divide them by 64 (roughly
#    what "inputs of unit variance" would give). Plot the factor $D^{-\beta}$ again: how
#    far is it from the constant $2^{-0.75}$ now? Which constant of LRN would you have to
#    change to restore the effect, and by how much?
# 3. **The same-map variant.** cuda-convnet also had `rnorm`, which normalises over a
#    *spatial* $n \times n$ neighbourhood within one channel (its `scale` is divided by
#    $n^2$). Write it with `np.pad` and shifted slices like `window_sum_zero_padded`,
#    derive its gradient in the same four steps, and check it with
#    `gradcheck.check_function`.

# %% [markdown]
# ## Summary
#
# - LRN divides each activation by $(k + \alpha \sum a^2)^\beta$, the sum over $n = 5$
#   neighbouring channels at the same pixel. With $k = 2$ it is the constant factor
#   $2^{-0.75} \approx 0.59$ where the neighbourhood is quiet, and bites only when the
#   sum of squares reaches about $2 \cdot 10^4$: the scale of the paper's raw-pixel
#   inputs.
# - Its gradient has a self term $g_j D_j^{-\beta}$ and cross terms
#   $-2\alpha\beta\, a_j \sum_i g_i b_i / D_i$ over the outputs whose window holds $j$:
#   the lateral inhibition, in the Jacobian.
# - Other libraries write the same layer with other constants: PyTorch and Caffe
#   need $\alpha' = n\alpha$; Caffe's `bvlc_alexnet` is not the paper's setting.
#
# ## Questions
#
# 1. Feed LRN, with the paper's constants, activations of order 1 (as inputs scaled to
#    unit variance would give). What does the layer compute then, and why?
# 2. A PyTorch user writes `LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)` for the
#    paper's layer. What is wrong, and what should `alpha` be?
# 3. Why are the cross terms of the Jacobian never positive after a ReLU, and what does
#    that do to two neighbouring channels that respond to the same edge?

