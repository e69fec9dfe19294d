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
# # Chapter 01: A linear layer, softmax cross-entropy, and gradient checking
#
# AlexNet ends the way every classifier since logistic regression ends: a fully
# connected (linear) layer gives one score per class, a softmax turns the scores
# into probabilities, and training lowers the cross-entropy of the true class. This
# chapter builds those two pieces, derives their backward passes, and introduces the
# tool every later chapter uses to trust a backward pass: **gradient checking** with
# centred finite differences. At the end a linear classifier learns a toy problem.

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

import matplotlib.pyplot as plt
import numpy as np

from minialexnet import gradcheck
from minialexnet.backend import Device, gpu_available, to_numpy
from minialexnet.functional import linear_backward, linear_forward, softmax, softmax_cross_entropy
from minialexnet.gradcheck import check_function, numerical_gradient
from minialexnet.tutorial import FAST, check_close, pick, show_source

print("fast mode:", FAST, "| GPU available:", gpu_available())

# %% [markdown]
# ## What the paper says
#
# The last three layers of AlexNet are fully connected: fc6 takes the
# $6 \times 6 \times 256 = 9216$ numbers of the last pooling layer to 4096, fc7 maps
# 4096 to 4096, and "the output of the last fully-connected layer [fc8] is fed to a
# 1000-way softmax which produces a distribution over the 1000 class labels" [3.5].
# Training "maximizes the multinomial logistic regression objective", i.e. the
# average log-probability of the correct label [3.5], by stochastic gradient descent
# [5]. Maximising the log-probability is minimising the cross-entropy, which is what
# `softmax_cross_entropy` computes.

# %% [markdown]
# ## The linear layer
#
# For a batch $x$ of $N$ rows with $D$ features, weights $W$ of shape
# (out_features, in_features) $= (M, D)$ (the layout of PyTorch and Caffe) and a
# bias $b$ of $M$ numbers:
#
# $$\text{out} = x W^\top + b, \qquad \text{out}_{nm} = \sum_d x_{nd} W_{md} + b_m .$$
#
# **Backward.** Given $g = \partial L / \partial \text{out}$ (shape $N \times M$),
# the chain rule on $\text{out}_{nm}$ gives, entry by entry,
# $\partial L/\partial x_{nd} = \sum_m g_{nm} W_{md}$,
# $\partial L/\partial W_{md} = \sum_n g_{nm} x_{nd}$ and
# $\partial L/\partial b_m = \sum_n g_{nm}$, that is
#
# $$dx = g\,W, \qquad dW = g^\top x, \qquad db = \textstyle\sum_n g_{n\cdot} .$$
#
# Check the shapes: $dx$ is $(N, M)(M, D) = (N, D)$ like $x$; $dW$ is
# $(M, N)(N, D) = (M, D)$ like $W$. When in doubt, the shapes alone nearly force the
# formula. The library's forward, `minialexnet/functional/linear.py`:

# %%
show_source(linear_forward)

# %% [markdown]
# ### Your turn: the linear layer's backward
#
# Write the backward pass from the three formulas above, in NumPy. In your own copy
# of the tutorials (chapter 00 says how to get one) the body of the function below
# is a stub that raises `NotImplementedError("your turn: ...")`: replace that line
# with your code, run the cell, then run the check after it.

# %%
def linear_backward_by_hand(g, x, w):
    """Gradients (dx, dw, db) of out = x @ w.T + b, given g = dL/dout of shape (N, M)."""
    # Hint: dx = g W, dW = g^T x, db = the sum of g over the batch; each has its input's shape.
    ### BEGIN SOLUTION
    dx = g @ w
    dw = g.T @ x
    db = g.sum(axis=0)
    return dx, dw, db
    ### END SOLUTION


# %% [markdown]
# The check compares your three gradients with the library's `linear_backward` on
# random numbers. Both do the same two matrix products and one sum, so they should
# agree to rounding: a relative error of about $10^{-16}$ (the tolerance is
# $10^{-12}$). A transposed product, or a sum over the wrong axis, fails with an
# error near 1 or with a shape error.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 5))
w = rng.standard_normal((3, 5))
b = rng.standard_normal(3)

out, cache = linear_forward(x, w, b)
print("out:", out.shape)
check_close("linear_forward vs x @ w.T + b", out, x @ w.T + b, 1e-12)

g = rng.standard_normal(out.shape)  # some upstream gradient dL/dout
dx, dw, db = linear_backward_by_hand(g, x, w)
for name, mine, library in zip(("dx", "dw", "db"), (dx, dw, db), linear_backward(g, cache),
                               strict=True):
    assert mine.shape == library.shape, f"{name}: shape {mine.shape}, expected {library.shape}"
    check_close(f"{name}: yours vs linear_backward", mine, library, 1e-12)

# %% [markdown]
# The library's version, for comparison (its checks of the arguments aside, the same
# three lines):

# %%
show_source(linear_backward)

# %% [markdown]
# ## Softmax and cross-entropy
#
# The softmax turns $C$ scores (logits) $z$ into probabilities:
#
# $$p_j = \frac{e^{z_j}}{\sum_k e^{z_k}} .$$
#
# Adding the same constant to every $z_j$ changes nothing (it cancels), so the
# library subtracts $\max_k z_k$ first. Without that, $e^{z}$ overflows for logits
# in the hundreds, which untrained networks do produce:

# %%
z = np.array([[1000.0, 1001.0, 1002.0]])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
print("naive  :", naive)
print("softmax:", softmax(z))
check_close("softmax is shift-invariant", softmax(z), softmax(z - 1000), 1e-12)

# %% [markdown]
# The cross-entropy of example $n$ with true class $y_n$ is $-\log p_{n, y_n}$; the
# loss is its mean over the batch (the library's losses are means, and their
# gradients include the $1/N$):
#
# $$L = -\frac{1}{N} \sum_n \log p_{n, y_n}, \qquad
#   \frac{\partial L}{\partial z_{nj}} = \frac{1}{N}\bigl(p_{nj} - [j = y_n]\bigr).$$
#
# The gradient is famously simple: the predicted probabilities minus the one-hot
# truth. (Derivation: $\log p_{n,y} = z_{n,y} - \log\sum_k e^{z_{nk}}$, and the
# derivative of $\log\sum_k e^{z_k}$ by $z_j$ is $p_j$.)
#
# ### Your turn: softmax cross-entropy and its gradient
#
# Write the loss and its gradient together, as the library does: one function that
# returns both. Compute $\log p$ from the shifted logits,
# $\log p_{nj} = (z_{nj} - \max_k z_{nk}) - \log \sum_k e^{z_{nk} - \max_k z_{nk}}$, so
# that neither the exponential overflows nor the logarithm meets a probability
# that rounded to 0.

# %%
def softmax_loss(logits, labels):
    """Mean cross-entropy of softmax(logits) for integer labels, and its gradient.

    logits: (N, C) scores; labels: (N,) class indices. Returns (loss, dlogits), dlogits (N, C).
    """
    # Hint: log p = shifted - log(sum(exp(shifted))); loss = mean(-log p[n, y_n]); (p - onehot) / N
    ### BEGIN SOLUTION
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), labels].mean()
    dlogits = np.exp(log_p)
    dlogits[np.arange(n), labels] -= 1.0
    return loss, dlogits / n
    ### END SOLUTION


# %% [markdown]
# Four checks. A first sanity check, used by the training command before it starts:
# with all logits equal every class gets $1/C$, so the loss is $\ln C$ whatever the
# labels. (An untrained network with small weights starts close to that;
# $\ln 1000 \approx 6.91$ for ImageNet, $\ln 10 \approx 2.30$ for ten classes.) Then the
# loss against $-\log$ of the library's `softmax`, and the same logits shifted by 1000
# (the loss must not change, nor overflow): both to rounding, about $10^{-16}$. Last,
# the gradient against `numerical_gradient`, which estimates every entry by finite
# differences (the next section explains how, and why it is good to about
# $10^{-10}$ here; the tolerance is $10^{-7}$).

# %%
labels = np.array([0, 2, 1, 2])
loss, dlogits = softmax_loss(np.zeros((4, 3)), labels)
print(f"loss at zero logits: {float(loss):.6f}, ln 3 = {np.log(3):.6f}")
check_close("loss at zero logits = ln C", float(loss), np.log(3), 1e-12)
print("dlogits (rows: p - onehot, divided by N = 4):\n", dlogits)

logits = rng.standard_normal((6, 4))
y = np.array([0, 3, 1, 1, 2, 0])
loss, dlogits = softmax_loss(logits, y)
check_close("loss vs -mean(log softmax(logits)[n, y_n])", float(loss),
            -np.mean(np.log(softmax(logits)[np.arange(6), y])), 1e-12)
check_close("loss of logits + 1000 (no overflow)", float(softmax_loss(logits + 1000, y)[0]),
            float(loss), 1e-12)
num_dlogits = numerical_gradient(lambda z: softmax_loss(z, y)[0], logits.copy(), 1.0)
check_close("dlogits vs finite differences", dlogits, num_dlogits, 1e-7)

# %% [markdown]
# The library's version, `softmax_cross_entropy` (it also runs on a GPU, and checks
# its arguments):

# %%
show_source(softmax_cross_entropy)

# %% [markdown]
# ## Gradient checking
#
# A backward pass written by hand is easy to get almost right: a missing
# transpose, a forgotten $1/N$, a sum over the wrong axis. Nothing crashes; training
# just works worse. So we compare every backward with a numerical estimate.
#
# To check all of a layer at once, take a fixed random upstream gradient $g$
# (same shape as the output) and the scalar $L(x) = \sum \text{out}(x) \odot g$.
# Its gradient with respect to $x$ is exactly what `backward(g)` returns, and each
# entry can be estimated by **centred differences**:
#
# $$\frac{\partial L}{\partial x_i} \approx
#   \frac{L(x + \varepsilon e_i) - L(x - \varepsilon e_i)}{2\varepsilon},$$
#
# whose error is $O(\varepsilon^2)$ (a one-sided difference would be
# $O(\varepsilon)$), plus rounding of order $u/\varepsilon$. In `float64` with
# $\varepsilon = 10^{-6}$ the truncation is about $10^{-12}$ and the rounding about
# $10^{-10}$, so the estimate is good to about $10^{-10}$ (chapter 00 has the
# picture; the cell below prints both).
# The comparison is the norm-wise relative error
# $\lVert a - n \rVert / (\lVert a \rVert + \lVert n \rVert)$, so entries near zero
# cannot blow it up.
#
# Here is one entry by hand, then `numerical_gradient` doing every entry:

# %%
i, j = 1, 2  # the entry x[1, 2]
eps = 1e-6
print(f"truncation ~ eps^2 = {eps**2:.0e}, "
      f"rounding ~ u / eps = {np.finfo(np.float64).eps / eps:.0e}")
x_plus, x_minus = x.copy(), x.copy()
x_plus[i, j] += eps
x_minus[i, j] -= eps
L_plus = np.sum(linear_forward(x_plus, w, b)[0] * g)
L_minus = np.sum(linear_forward(x_minus, w, b)[0] * g)
print(f"by hand : {(L_plus - L_minus) / (2 * eps):.10f}")
print(f"backward: {dx[i, j]:.10f}")

num_dx = numerical_gradient(lambda v: linear_forward(v, w, b)[0], x.copy(), g)
check_close("dx against finite differences", dx, num_dx, 1e-7)

# %% [markdown]
# `check_function(forward, backward, inputs)` does this for every input of a
# functional pair and returns the relative errors. How small is small enough? The
# thresholds are in the docstring of `minialexnet.gradcheck`:

# %%
doc = inspect.getdoc(gradcheck)
print(doc[doc.index("Thresholds"):doc.index("Always check")])

# %%
errors = check_function(linear_forward, linear_backward, {"x": x, "w": w, "b": b})
for name, err in errors.items():
    print(f"linear, d{name}: {err:.1e}")
    assert err < 1e-7, name

# %% [markdown]
# Your loss has a scalar output and returns its gradient from the same call, so we
# wrap it in the forward/backward shape `check_function` expects: the "cache" is
# `dlogits`, and backward scales it by the (scalar) upstream gradient.

# %%
def ce_forward(logits):
    return softmax_loss(logits, y)  # (loss, dlogits): dlogits is the cache


def ce_backward(dout, dlogits):
    return dout * dlogits


err = check_function(ce_forward, ce_backward, {"logits": logits})["logits"]
print(f"softmax cross-entropy, dlogits: {err:.1e}")
assert err < 1e-7

# %% [markdown]
# And what a bug looks like: a backward that forgets the $1/N$ of the mean, or one
# that forgets to subtract the one-hot. Both are off far beyond $10^{-4}$.

# %%
def forgot_mean(dout, dlogits):
    return dout * dlogits * len(y)


def forgot_onehot(dout, dlogits):
    return dout * softmax(logits) / len(y)


for bug in (forgot_mean, forgot_onehot):
    err = check_function(ce_forward, bug, {"logits": logits})["logits"]
    print(f"{bug.__name__:14s}: relative error {err:.1e}  -> {'bug' if err > 1e-4 else 'ok?'}")
    assert err > 1e-4

# %% [markdown]
# Always check in `float64`: `numerical_gradient` refuses anything else, since in
# `float32` the differences are only good to about $10^{-2}$ at this step.

# %%
try:
    numerical_gradient(lambda v: linear_forward(v, w, b)[0], x.astype(np.float32), g)
except TypeError as err:
    print("TypeError:", err)

# %% [markdown]
# ## A tiny linear classifier
#
# Now train, with your two functions: three clouds of points in the plane, one per
# class, and a linear layer from 2 features to 3 scores. Each step: forward (linear,
# then your loss), backward (the loss's `dlogits` into your `linear_backward_by_hand`),
# and the paper's update rule with momentum 0.9 [5]:
#
# $$v \leftarrow 0.9\,v - \eta\,\frac{\partial L}{\partial w}, \qquad w \leftarrow w + v$$
#
# (weight decay is left out here; `minialexnet.optim.SGD` has the full rule and comes
# in a later chapter). With only 2 inputs the whole batch is one step.

# %%
n_per_class = pick(50, 200)
steps = pick(60, 200)
centres = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
data_rng = np.random.default_rng(1)
X = np.concatenate([c + data_rng.standard_normal((n_per_class, 2)) for c in centres])
Y = np.repeat(np.arange(3), n_per_class)

W = 0.01 * np.random.default_rng(2).standard_normal((3, 2))
B = np.zeros(3)
vW, vB = np.zeros_like(W), np.zeros_like(B)
lr = 0.1
history = []
for _ in range(steps):
    scores, _ = linear_forward(X, W, B)
    loss, dscores = softmax_loss(scores, Y)
    _, dW, dB = linear_backward_by_hand(dscores, X, W)
    vW = 0.9 * vW - lr * dW
    vB = 0.9 * vB - lr * dB
    W += vW
    B += vB
    history.append(float(loss))

accuracy = float((linear_forward(X, W, B)[0].argmax(axis=1) == Y).mean())
print(f"loss: {history[0]:.3f} (ln 3 = {np.log(3):.3f}) -> {history[-1]:.3f} after {steps} steps")
print(f"training accuracy: {100 * accuracy:.1f}%")
assert history[-1] < 0.5 * history[0] and accuracy > 0.85

# %%
fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(11, 4))
ax_loss.plot(history)
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("cross-entropy loss")
ax_loss.set_title("Training loss (full batch, momentum 0.9)")
ax_loss.axhline(np.log(3), color="grey", ls="--", lw=1, label="ln 3 (chance)")
ax_loss.legend()
ax_loss.grid(alpha=0.3)

grid = np.stack(np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-5, 5, 200)), axis=-1)
regions = linear_forward(grid.reshape(-1, 2), W, B)[0].argmax(axis=1).reshape(200, 200)
ax_map.contourf(grid[..., 0], grid[..., 1], regions, levels=[-0.5, 0.5, 1.5, 2.5],
                colors=["#c6dbef", "#fdd0a2", "#c7e9c0"])
for k, colour in enumerate(["tab:blue", "tab:orange", "tab:green"]):
    ax_map.scatter(*X[Y == k].T, s=8, color=colour, label=f"class {k}")
ax_map.set_title("Decision regions: each is where one score is largest")
ax_map.legend(loc="lower center", ncol=3, fontsize=8)
plt.show()

# %% [markdown]
# The boundaries between the regions are straight lines: where two scores
# $w_j \cdot x + b_j$ are equal. A linear classifier cannot do better than that; the
# convolutional layers of the next chapters exist to compute features in which the
# classes *are* separated by such lines.
#
# ### On a GPU
#
# The library's functions take CuPy arrays (yours call `np` directly, so they do not:
# chapter 00's `xp` would fix that). The cell below repeats one training step on the
# GPU with the library's functions and compares it with the CPU.

# %%
if gpu_available():
    gpu = Device("gpu:0")
    with gpu:
        Xg, Yg, Wg, Bg = (gpu.asarray(a) for a in (X, Y, W, B))
        scores_g, cache_g = linear_forward(Xg, Wg, Bg)
        loss_g, dscores_g = softmax_cross_entropy(scores_g, Yg)
        _, dWg, _ = linear_backward(dscores_g, cache_g)
    scores_c, cache_c = linear_forward(X, W, B)
    loss_c, dscores_c = softmax_cross_entropy(scores_c, Y)
    _, dW_c, _ = linear_backward(dscores_c, cache_c)
    check_close("loss on the GPU vs the CPU", float(loss_g), float(loss_c), 1e-10)
    check_close("dW on the GPU vs the CPU", to_numpy(dWg), dW_c, 1e-10)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **A missing bias.** `linear_forward(x, w, None)` has no bias. Check with
#    `check_function` that the gradients of `x` and `w` are still right (the
#    backward returns `db = None`, which `check_function` skips). Then write the
#    backward of `out = x @ w` (no transpose) yourself and check it the same way.
# 2. **The hinge loss.** `minialexnet.functional.multiclass_hinge` is the SVM loss
#    the project compares with softmax. Check its gradient with the wrapper used for
#    `ce_forward` above. Draw the scores at random; what happens to the error if you
#    make one margin exactly zero (a kink, see the docstring's thresholds)?
# 3. **Where linear fails.** Replace the three clouds with two rings (class 0:
#    radius 1, class 1: radius 3, plus noise). How accurate can the linear classifier
#    get? Add the feature $x_1^2 + x_2^2$ as a third input and train again: why does
#    this work, and what is a convolutional layer doing that resembles it?

# %% [markdown]
# ## Summary
#
# - A linear layer is $\text{out} = x W^\top + b$; its backward is two matrix products
#   and a sum, $dx = gW$, $dW = g^\top x$, $db = \sum_n g_n$, and the shapes alone
#   nearly force them.
# - Softmax cross-entropy is computed from shifted logits (subtract the row's maximum),
#   and its gradient is $(p - \text{onehot}(y))/N$. At equal logits the loss is
#   $\ln C$: the first number to look at when training starts.
# - Every backward pass is checked in `float64` against centred finite differences
#   with the norm-wise relative error: about $10^{-10}$ for a correct smooth op, above
#   $10^{-4}$ for a bug.
#
# ## Questions
#
# 1. A freshly initialised 1000-class network prints a first loss of 20. What loss did
#    you expect, and what does 20 tell you about the logits?
# 2. Each row of `dlogits` sums to zero. Show why from the formula, and connect it to
#    the fact that adding the same constant to every logit of a row changes nothing.
# 3. Why does `check_close` use $\lVert a - b \rVert / (\lVert a \rVert + \lVert b \rVert)$
#    rather than the largest entrywise ratio $\max_i |a_i - b_i| / |b_i|$?
