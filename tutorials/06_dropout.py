# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

# %% [markdown]
# # Chapter 06: Dropout
#
# AlexNet has 60 million parameters and only 1.2 million training images; its two big
# fully connected layers, fc6 and fc7, would overfit badly on their own. The paper's
# answer is dropout: while training, every hidden unit of fc6 and fc7 is switched off
# at random, half of the time. This chapter writes the two ways to do that (the
# paper's, and the "inverted" one the library uses by default), checks their
# expectations over many masks, derives the gradient, and runs a tiny overfitting
# experiment with and without dropout.

# %% [markdown]
# ## Setup
#
# Everything here runs on a laptop CPU in well under a minute, offline. To run it
# elsewhere:
#
# - in a hosted Jupyter with a GPU:
#   `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`
# - from a checkout: `%pip install -e '/path/to/minialexnet[gpu]'` (leave out `[gpu]`
#   on a machine without CUDA);
# - locally, in the repository: `make tutorials` (creates `.venv` and opens JupyterLab).
#
# `MINIALEXNET_FAST=1` in the environment makes the chapter use fewer masks and
# epochs (the test-suite runs it that way); every check still holds.

# %%
try:
    import minialexnet  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "this chapter needs minialexnet: `%pip install -e '/path/to/minialexnet'` from a "
        "checkout (or `make tutorials` in the repository), then restart the kernel"
    ) from exc

import itertools

import matplotlib.pyplot as plt
import numpy as np

from minialexnet import functional as F
from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.functional import dropout_backward, dropout_forward
from minialexnet.gradcheck import check_function
from minialexnet.layers import Dropout, Linear, ReLU, Sequential
from minialexnet.models import alexnet_cifar
from minialexnet.optim import SGD
from minialexnet.tutorial import FAST, check_close, pick, show_source

print("fast mode" if FAST else "full mode")

# %% [markdown]
# ## What the paper says [4.2]
#
# Combining the predictions of many models is a reliable way to reduce test error, but
# too expensive for networks that take days to train. Dropout is a cheap version:
# "setting to zero the output of each hidden neuron with probability 0.5. The neurons
# which are 'dropped out' in this way do not contribute to the forward pass and do not
# participate in back-propagation. So every time an input is presented, the neural
# network samples a different architecture, but all these architectures share
# weights." A neuron cannot rely on the presence of particular other neurons, so it
# must learn features that are useful together with many random subsets of the rest.
#
# "At test time, we use all the neurons but multiply their outputs by 0.5, which is a
# reasonable approximation to taking the geometric mean of the predictive
# distributions produced by the exponentially-many dropout networks." Dropout is used
# in the first two fully connected layers (fc6 and fc7). "Without dropout, our network
# exhibits substantial overfitting. Dropout roughly doubles the number of iterations
# required to converge."

# %% [markdown]
# ## The idea in formulas
#
# Let $p$ be the probability of **dropping** a unit (the paper: $p = 0.5$) and draw a
# mask $m_i \sim \text{Bernoulli}(1 - p)$, independently for every unit of every
# example, anew at every presentation. Two ways to keep training and testing
# consistent:
#
# | mode | training | testing |
# |---|---|---|
# | `"paper"` | $y = m \odot x$ | $y = (1 - p)\, x$ |
# | `"inverted"` (the library's default) | $y = m \odot x / (1 - p)$ | $y = x$ |
#
# In both, the test-time output equals the *expected* training output:
# $E[m_i x_i] = (1 - p) x_i$ and $E[m_i x_i / (1-p)] = x_i$. The inverted form puts the
# correction into training, so the trained network is used at test time exactly as it
# is (nothing to remember when exporting it). The two train different weights only by
# a constant factor: a unit's outgoing weights under "paper" play the role of
# $1/(1-p)$ times the same weights under "inverted".
#
# The backward pass multiplies by the same factor as the forward: $y_i = f_i x_i$ with
# $f_i \in \{0, 1/(1-p)\}$ (inverted) or $\{0, 1\}$ (paper), so
# $\partial L / \partial x_i = f_i \, \partial L / \partial y_i$: dropped units get no
# gradient, "do not participate in back-propagation".
#
# ## Your turn: dropout, forward and backward
#
# Write the training-time forward for both modes, and its backward. Draw the mask as
# the library does, `rng.random(x.shape) >= p` (a unit is kept when its uniform number
# is at least $p$), so that the same generator state gives the same mask as the
# library's. What the cache holds is up to you: the backward is its only reader.

# %%
def dropout_forward_by_hand(x, p, rng, mode="inverted"):
    """Training-time dropout of x: drop each unit with probability p. Returns (out, cache)."""
    # Hint: keep a unit where rng.random(x.shape) >= p; inverted mode also divides by (1 - p).
    ### BEGIN SOLUTION
    kept = rng.random(x.shape) >= p
    factor = kept / (1.0 - p) if mode == "inverted" else kept.astype(x.dtype)
    return x * factor, factor
    ### END SOLUTION


def dropout_backward_by_hand(dout, cache):
    """dL/dx of training-time dropout, from dout = dL/dout and the forward's cache."""
    # Hint: the gradient goes back through the same mask and the same scale.
    ### BEGIN SOLUTION
    return dout * cache
    ### END SOLUTION


# %% [markdown]
# Four checks. The values: in inverted mode a kept unit is $x/(1-p) = 2x$ and a dropped
# one 0; in paper mode $x$ and 0. The share of units kept over $10^6$ draws: $1 - p$ up
# to a binomial standard deviation $\sqrt{p(1-p)/10^6} = 0.0005$ (tolerance five of
# them). The gradient against finite differences, with the same mask in every
# evaluation (a fresh generator with one seed): for a fixed mask dropout is linear, so
# the two agree to rounding, about $10^{-10}$ (tolerance $10^{-8}$). And dropped units
# get no gradient.

# %%
x = np.random.default_rng(7).normal(size=(3, 8))
for mode, kept_value in [("inverted", 2 * x), ("paper", x)]:
    y, cache = dropout_forward_by_hand(x, 0.5, np.random.default_rng(8), mode=mode)
    dropped = y == 0
    print(f"{mode}: {int(dropped.sum())} of {x.size} units dropped")
    check_close(f"{mode}: the kept units", y[~dropped], kept_value[~dropped], 1e-15)
    errors = check_function(
        lambda x, mode=mode: dropout_forward_by_hand(x, 0.5, np.random.default_rng(8), mode=mode),
        dropout_backward_by_hand,
        {"x": x},
    )
    print(f"{mode}: your backward vs finite differences: relative error {errors['x']:.1e} "
          "(tolerance 1e-08)")
    assert errors["x"] < 1e-8
    dx = dropout_backward_by_hand(np.ones_like(y), cache)
    assert (dx[dropped] == 0).all(), "a dropped unit got a gradient"

big = dropout_forward_by_hand(np.ones(1_000_000), 0.5, np.random.default_rng(1))[0]
kept = float((big > 0).mean())
print(f"share of units kept over 10^6 draws: {kept:.4f} (expected 0.5 +- {0.5 / 1000:.4f})")
assert abs(kept - 0.5) < 5 * 0.5 / 1000

# %% [markdown]
# ## The library's code
#
# `minialexnet/functional/dropout.py` (the maths) and `layers.Dropout` (which holds
# the random generator). `p` is the probability of dropping; `mode` picks the row of
# the table. With the same generator state it draws the same mask as yours.

# %%
show_source(dropout_forward)
show_source(dropout_backward)
print(Dropout(0.5), Dropout(0.5, mode="paper"))
for mode in ["inverted", "paper"]:
    mine = dropout_forward_by_hand(x, 0.5, np.random.default_rng(8), mode=mode)[0]
    library = dropout_forward(x, 0.5, np.random.default_rng(8), mode=mode)[0]
    check_close(f"{mode}: dropout_forward vs yours, the same seed", library, mine, 1e-15)

# %% [markdown]
# ## Masks
#
# Each call draws a new mask from the generator, so each training step sees a
# different "thinned" network. Below: the kept units (white) of 16 masks over 64
# units, drawn by the library's `dropout_forward`.

# %%
rng = np.random.default_rng(0)
x = np.ones((16, 64))
y, cache = dropout_forward(x, 0.5, rng)  # inverted: kept units become 1 / (1 - p) = 2
fig, ax = plt.subplots(figsize=(8, 2.4))
ax.imshow(y > 0, cmap="gray", aspect="auto")
ax.set(xlabel="unit", ylabel="mask (one per step)", title="16 dropout masks, p = 0.5 (white: kept)")
plt.show()
print("values after inverted dropout:", np.unique(y))

# %% [markdown]
# ## Expectations over many masks
#
# Average the training-time output over $M$ masks and compare it with the test-time
# output. By the central limit theorem the average of $M$ outputs of unit $i$ has
# standard deviation $|x_i| \sqrt{p / ((1-p) M)}$ (inverted; a factor $(1-p)$ smaller in
# paper mode), so the relative error should be about $\sqrt{p / ((1-p) M)}$; the
# tolerance below is three times that.

# %%
M = pick(400, 10_000)
p = 0.5
x = np.random.default_rng(2).normal(size=(4, 256))  # some activations
noise = np.sqrt(p / ((1 - p) * M))

for mode in ["inverted", "paper"]:
    layer = Dropout(p, mode=mode, rng=np.random.default_rng(3))
    train_mean = np.mean([layer.forward(x, train=True) for _ in range(M)], axis=0)
    test_out = layer.forward(x, train=False)
    check_close(f"{mode}: mean of {M} training outputs vs the test output", train_mean, test_out,
                3 * noise)

# Variance of the inverted output: Var[m x / (1-p)] = x^2 p / (1 - p). For p = 0.5 every
# output is exactly x +- x, so the estimate is accurate far beyond 1/sqrt(M).
layer = Dropout(p, rng=np.random.default_rng(4))
outs = np.array([layer.forward(x, train=True) for _ in range(M)])
check_close("inverted: variance over masks vs x^2 p/(1-p)", outs.var(axis=0), x**2 * p / (1 - p),
            3 * noise)

# %% [markdown]
# The two modes draw the same mask from the same generator state, and differ by the
# constant $1/(1-p)$ while training, and by $(1-p)$ at test time:

# %%
y_inv = dropout_forward(x, p, np.random.default_rng(5), mode="inverted")[0]
y_pap = dropout_forward(x, p, np.random.default_rng(5), mode="paper")[0]
check_close("inverted train = paper train / (1 - p)", y_inv, y_pap / (1 - p), 1e-15)
check_close("paper test = (1 - p) * x", dropout_forward(x, p, None, train=False, mode="paper")[0],
            (1 - p) * x, 1e-15)
check_close("inverted test = x", dropout_forward(x, p, None, train=False)[0], x, 1e-15)

# %% [markdown]
# ### "A reasonable approximation to the geometric mean"
#
# For a single softmax layer on top of dropout, the paper's test-time rule is not an
# approximation but *exact*. With $n$ hidden units there are $2^n$ thinned networks,
# equally likely for $p = 0.5$. The normalised geometric mean of their softmax outputs
# is
#
# $$\Big(\prod_{m} \text{softmax}(z_m)_c\Big)^{1/2^n} \propto \exp\big(\text{mean}_m\, z_{m,c}\big),
# \qquad z_m = W (m \odot h) + b,$$
#
# because the $\log \sum \exp$ part of each log-softmax is the same for every class $c$
# and cancels in the normalisation. And $\text{mean}_m z_m = W (0.5\, h) + b$ exactly,
# since $z_m$ is linear in $m$. So softmax of the half-scaled layer *is* the geometric
# mean of all $2^n$ networks. Check it with $n = 10$ (1024 networks):

# %%
rng = np.random.default_rng(6)
n_hidden, n_classes = 10, 4
h = np.abs(rng.normal(size=n_hidden))  # the hidden activations of one example
W, bias = rng.normal(size=(n_classes, n_hidden)), rng.normal(size=n_classes)

all_masks = np.array(list(itertools.product([0, 1], repeat=n_hidden)))  # (1024, 10)
log_probs = np.log(F.softmax((all_masks * h) @ W.T + bias))  # one row per thinned network
geometric = np.exp(log_probs.mean(axis=0))
geometric /= geometric.sum()
arithmetic = np.exp(log_probs).mean(axis=0)
scaled = F.softmax(((1 - 0.5) * h) @ W.T + bias)  # the paper's test-time network

check_close("softmax(W (0.5 h) + b) vs the geometric mean of 1024 networks", scaled, geometric,
            1e-12)
print("geometric mean :", np.round(geometric, 4))
print("arithmetic mean:", np.round(arithmetic, 4), "(a different average)")

# %% [markdown]
# With hidden layers *between* the dropout and the softmax (fc7 and fc8 after fc6's
# dropout) the equality no longer holds exactly; that is where "reasonable
# approximation" comes from.
#
# ## The gradient
#
# `dropout_backward` multiplies by the forward's factor. Finite differences agree as
# long as the *same* mask is used in every evaluation, so the forward below builds a
# fresh generator with the same seed on every call. Dropout is linear in $x$ for a
# fixed mask, so the check is exact up to rounding.

# %%
x = np.random.default_rng(7).normal(size=(3, 8))
for mode in ["inverted", "paper"]:
    errors = check_function(
        lambda x, mode=mode: dropout_forward(x, 0.5, np.random.default_rng(8), mode=mode),
        dropout_backward,
        {"x": x},
    )
    print(f"{mode}: check_function relative error {errors['x']:.1e}")
    assert errors["x"] < 1e-8

y, cache = dropout_forward(x, 0.5, np.random.default_rng(8))
dx = dropout_backward(np.ones_like(y), cache)
print("dropped units get no gradient:", bool((dx[y == 0] == 0).all()))
print("kept units get 1/(1-p) =", np.unique(dx[y != 0]))

# %% [markdown]
# ## In the network
#
# `alexnet_cifar` (like `alexnet`) has a `Dropout(0.5)` after the ReLUs of fc6 and fc7
# in each tower. `forward(x, train=True)` draws masks, `forward(x, train=False)` does
# not; `model.reseed(seed)` resets the dropout generators, which is how training makes
# every batch's masks a function of (seed, epoch, batch).

# %%
model = alexnet_cifar(init="scaled", seed=0)
print([name for name, layer, _ in model.named_layers() if isinstance(layer, Dropout)])
images = np.random.default_rng(9).normal(0.0, 60.0, size=(2, 3, 32, 32)).astype(np.float32)

two_train = [model.forward(images, train=True) for _ in range(2)]
two_test = [model.forward(images, train=False) for _ in range(2)]
print("two training forwards differ:", not np.array_equal(two_train[0], two_train[1]))
print("two test forwards are equal: ", np.array_equal(two_test[0], two_test[1]))
model.reseed(1)
again = model.forward(images, train=True)
model.reseed(1)
check_close("after reseed(1), the same masks again", model.forward(images, train=True), again,
            1e-12)

# %% [markdown]
# ## A tiny overfitting experiment
#
# A network much bigger than its data set: two hidden layers of 256 ReLUs learn to
# separate two interleaved half-moons (with overlapping noise) from only 60 points.
# We train it twice with the library's `SGD` (momentum 0.9, no weight decay, so that
# dropout is the only regulariser), once plain and once with `Dropout(0.5)` after each
# hidden layer, as fc6 and fc7 in AlexNet, and measure the error on the 60 training
# points and on 4,000 fresh points from the same distribution.

# %%
def moons(n, seed, noise=0.25):
    """Two interleaved half-circles, classes 0 and 1, with Gaussian noise."""
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    t = r.uniform(0, np.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + noise * r.standard_normal((n, 2))
    return ((x - [0.5, 0.25]) / 0.8).astype(np.float32), y.astype(np.int64)


x_val, y_val = moons(4000, seed=1000)
epochs = pick(20, 300)


def make_net(p, hidden=256):
    rng = np.random.default_rng(0)  # the same initial weights for both runs
    return Sequential([  # Dropout(0.0) keeps every unit: the plain network
        ("fc1", Linear(2, hidden, weight_std=1.0, rng=rng)),
        ("relu1", ReLU()),
        ("drop1", Dropout(p, rng=np.random.default_rng(1))),
        ("fc2", Linear(hidden, hidden, weight_std=np.sqrt(2 / hidden), rng=rng)),
        ("relu2", ReLU()),
        ("drop2", Dropout(p, rng=np.random.default_rng(2))),
        ("fc3", Linear(hidden, 2, weight_std=0.01, rng=rng)),
    ])


def error(net, x, y):
    return float((net.forward(x, train=False).argmax(axis=1) != y).mean())


def train(p, x_train, y_train, batch=10, lr=0.01):
    net = make_net(p)
    opt = SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    history = []
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(x_train))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits = net.forward(x_train[idx], train=True)
            loss, dlogits = F.softmax_cross_entropy(logits, y_train[idx])
            net.backward(dlogits)
            opt.step()
        val_loss = float(F.softmax_cross_entropy(net.forward(x_val, train=False), y_val)[0])
        history.append((error(net, x_train, y_train), error(net, x_val, y_val), val_loss))
    return net, np.array(history)


nets, histories = {}, {}
for data_seed in pick([1], [1, 2, 3]):  # three different draws of the 60 training points
    x_train, y_train = moons(60, seed=data_seed)
    for p in [0.0, 0.5]:
        net, history = train(p, x_train, y_train)
        if data_seed == 1:  # plotted below
            nets[p], histories[p], x_plot, y_plot = net, history, x_train, y_train
        tr, va, vl = history[-1]
        print(f"points drawn with seed {data_seed}, p = {p}: after {epochs} epochs "
              f"train error {tr:5.1%}, validation error {va:5.1%}, validation loss {vl:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for p, colour in [(0.0, "tab:red"), (0.5, "tab:blue")]:
    label = "no dropout" if p == 0 else "dropout 0.5"
    axes[0].plot(histories[p][:, 0] * 100, color=colour, ls="--", label=f"{label}: train")
    axes[0].plot(histories[p][:, 1] * 100, color=colour, label=f"{label}: validation")
    axes[1].plot(histories[p][:, 2], color=colour, label=label)
axes[0].set(xlabel="epoch", ylabel="error (%)", title="error: 60 training points vs 4,000 new ones")
axes[1].set(xlabel="epoch", ylabel="cross-entropy", title="validation loss")
axes[0].legend()
axes[1].legend()
plt.tight_layout()
plt.show()

# %%
lim = np.abs(x_plot).max() + 0.2
grid = np.linspace(-lim, lim, 200)
gx, gy = np.meshgrid(grid, grid)
points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, p in zip(axes, [0.0, 0.5], strict=True):
    prob = F.softmax(nets[p].forward(points, train=False))[:, 1].reshape(gx.shape)
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu", alpha=0.6)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k")
    ax.scatter(*x_plot.T, c=y_plot, cmap="RdBu", edgecolors="k", s=30)
    ax.set(title=("no dropout" if p == 0 else "dropout 0.5") + ": P(class 1) and the 0.5 boundary",
           xticks=[], yticks=[])
plt.tight_layout()
plt.show()

# %% [markdown]
# What to read from it. In full mode (300 epochs, three draws of the 60 points) we
# measured:
#
# | draw | train error, plain / dropout | validation error, plain / dropout | validation loss, plain / dropout |
# |---|---|---|---|
# | 1 (plotted) | 0.0% / 3.3% | 9.0% / 9.6% | 0.55 / 0.44 |
# | 2 | 0.0% / 5.0% | 12.3% / 11.3% | 1.07 / 0.38 |
# | 3 | 0.0% / 0.0% | 10.7% / 10.1% | 1.16 / 0.86 |
#
# - **Training error.** The plain network reaches 0% on its 60 points every time: it
#   has memorised them, noise included, and its boundary bends around single points.
#   With dropout the training error comes down much later (dashed lines): every step
#   trains a different half of the network, which cannot carve out one point at a
#   time. The paper: dropout "roughly doubles the number of iterations required to
#   converge".
# - **Validation loss.** Without dropout it climbs once the points are memorised: the
#   network grows confidently wrong on new points near the boundary. With dropout it
#   is lower in all three draws, by up to a factor of three. In the picture of the
#   boundaries, the band where the dropout network is unsure (pale colours) is wider.
# - **Validation error.** Here it moves by about a point, in either direction: in a
#   problem this small the gain shows mostly in the loss and in a smoother boundary.
#   Do not expect a tiny experiment to reproduce the size of the paper's effect: there,
#   fc6 and fc7 hold 54.5 of AlexNet's 61 million parameters and without dropout the
#   network "exhibits substantial overfitting".

# %% [markdown]
# ## On a GPU
#
# On a GPU the masks come from CuPy's generator (`Device.rng(seed)`), so they differ
# from the CPU's for the same seed, but their statistics are the same.

# %%
if gpu_available():
    dev = Device("gpu:0")
    x_gpu = dev.asarray(np.ones((1000, 1000), dtype=np.float32))
    y_gpu, cache_gpu = dropout_forward(x_gpu, 0.5, dev.rng(0))
    kept_gpu = float(to_numpy((y_gpu > 0).mean()))
    print(f"GPU: share kept {kept_gpu:.4f}, values {np.unique(to_numpy(y_gpu))}")
    assert abs(kept_gpu - 0.5) < 0.005
    dx_gpu = dropout_backward(dev.asarray(np.ones((1000, 1000), dtype=np.float32)), cache_gpu)
    check_close("GPU: the gradient is the mask", to_numpy(dx_gpu), to_numpy(y_gpu), 1e-7)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **Other rates.** Repeat the expectation check with $p = 0.2$ and $p = 0.8$ in
#    both modes. How many masks do you need for the same accuracy at $p = 0.8$, and
#    why (look at the variance formula)?
# 2. **Switching modes after training.** Train the moons network with
#    `Dropout(0.5, mode="paper")` instead. Then rebuild it with `mode="inverted"` and
#    copy the weights across: which weights must you rescale, and by what factor, for
#    the test outputs to agree? Check with `check_close`.
# 3. **Monte Carlo dropout.** For the trained moons network, average the softmax
#    outputs of 100 *training-mode* forward passes (`train=True`) on the validation
#    points, and compare with the single test-mode pass. With two hidden layers the
#    geometric-mean argument above is no longer exact: how far apart are they, and
#    where on the plane do they differ most?

# %% [markdown]
# ## Summary
#
# - While training, each unit of fc6 and fc7 is dropped with probability $p = 0.5$,
#   with a new mask at every presentation; dropped units take no part in the forward
#   pass or the backward pass.
# - Test-time outputs must equal the expected training outputs: the paper multiplies
#   by $1 - p$ at test time; the inverted form (the library's default) divides the kept
#   units by $1 - p$ while training and leaves testing alone.
# - The backward multiplies by the forward's mask and scale.
# - For a softmax layer right after the dropout, the paper's test-time network is
#   exactly the normalised geometric mean of all $2^n$ thinned networks.
#
# ## Questions
#
# 1. With $p = 0.5$ in inverted mode, which values can a unit's training output take,
#    and what is its variance over masks?
# 2. A network trained with inverted dropout is evaluated with `train=True` by
#    mistake. What do its predictions look like? And a network trained in paper mode
#    and evaluated without the factor $1 - p$?
# 3. Why is the geometric-mean result exact for a single softmax layer, and what breaks
#    it when hidden layers lie between the dropout and the softmax?

