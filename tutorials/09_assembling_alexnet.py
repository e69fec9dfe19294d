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
# # Chapter 09: Assembling AlexNet
#
# The earlier chapters built every piece: convolution, ReLU, LRN, overlapping pooling,
# dropout, fully connected layers, the loss. This chapter puts them together into the
# paper's network, checks its shapes and its 60,965,224 parameters by hand, and then
# splits it over two devices the way the paper split it over two GPUs.
#
# ## Setup
#
# - Locally, from a checkout: `make tutorials` (creates `.venv` and opens JupyterLab).
# - In a hosted Jupyter with a GPU: `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`,
#   or from a checkout `%pip install -e '/path/to/minialexnet[gpu]'`.
# - No GPU and no network are needed: everything below runs on a laptop CPU. Set
#   `MINIALEXNET_FAST=1` to shrink the work to seconds.

# %%
try:
    import minialexnet
    from minialexnet.tutorial import FAST, check_close, pick
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout run `make tutorials`, "
        "or `%pip install -e '/path/to/minialexnet'` (add [gpu] on a CUDA machine)."
    ) from exc

import inspect

import numpy as np

from minialexnet.backend import Device, gpu_available
from minialexnet.functional import conv2d_forward, softmax_cross_entropy
from minialexnet.gradcheck import relative_error
from minialexnet.models import alexnet, alexnet_cifar
from minialexnet.towers import Exchange, output_shape

print("minialexnet from", minialexnet.__file__, "| fast mode:", FAST)

# %% [markdown]
# ## What the paper says
#
# [3.5, Figure 2] "The net contains eight layers with weights; the first five are
# convolutional and the remaining three are fully-connected. The output of the last
# fully-connected layer is fed to a 1000-way softmax." conv1 filters the 224x224x3 input
# with 96 kernels of size 11x11x3 at stride 4; conv2 has 256 kernels of 5x5x48; conv3 384
# of 3x3x256; conv4 384 of 3x3x192; conv5 256 of 3x3x192; the fully connected layers
# have 4096 neurons each. ReLU follows every layer [3.1], LRN follows conv1 and conv2
# [3.3], overlapping 3x3 stride-2 max pooling follows both LRNs and conv5 [3.4], and
# dropout 0.5 follows fc6 and fc7 [4.2].
#
# [3.2] The network did not fit on one 3 GB GTX 580, so "we spread the net across two
# GPUs ... we put half of the kernels (or neurons) on each GPU, with one additional
# trick: the GPUs communicate only in certain layers." The kernels of conv3 see all the
# maps of conv2, on both GPUs; those of conv4 (and conv2, conv5) see only the maps on
# their own GPU. The fully connected layers see everything.
#
# ## The shape of each layer, by hand
#
# A convolution or pooling window of size $k$, moved with stride $s$ over an input of
# size $H$ padded by $p$ on each side, fits
#
# $$H_\text{out} = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1$$
#
# times along each axis (pooling has $p = 0$). The library's `towers.output_shape` uses
# exactly this (the `//` below):

# %%
print(inspect.getsource(output_shape).split('"""')[-1])


# %% [markdown]
# Here is the whole spatial path of AlexNet, one formula per layer, in plain Python:


# %%
def out_size(h, k, s=1, p=0):
    """floor((h + 2p - k) / s) + 1, and whether the windows tile the input exactly."""
    return (h + 2 * p - k) // s + 1, (h + 2 * p - k) % s == 0


def spatial_path(h, layers):
    print(f"input      {h}")
    for name, k, s, p in layers:
        h, exact = out_size(h, k, s, p)
        note = "" if exact else "   <- (H + 2p - k) is not a multiple of the stride"
        print(f"{name:<10} {h}{note}")
    return h


#            name      k   s  p
ALEXNET = [("conv1", 11, 4, 0), ("pool1", 3, 2, 0), ("conv2", 5, 1, 2), ("pool2", 3, 2, 0),
           ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2, 0)]  # fmt: skip
final = spatial_path(227, ALEXNET)
print("fc6 inputs: 256 maps x", final, "x", final, "=", 256 * final * final)

# %% [markdown]
# ### 224 or 227?
#
# The paper's text says 224x224, but with 224 conv1's windows do not tile the image:
# $(224 - 11)/4 + 1 = 54.25$. Only 227 gives the 55x55 maps of Figure 2, and the 6x6x256 =
# 9216 inputs of fc6. The library uses 227 (as Caffe's `bvlc_alexnet` did).

# %%
final_224 = spatial_path(224, ALEXNET)
print("fc6 inputs with 224:", 256 * final_224**2, "(the paper's fc6 has 9216)")

# %% [markdown]
# Now the library's own table. `model.summary()` walks the stages with `output_shape`
# and counts every layer's parameters. Building the 61-million-parameter network takes
# a second or two (the weights are drawn on the host).

# %%
big = alexnet()  # 1000 classes, the paper's initialisation, both towers on the CPU
print(big.summary())

# %% [markdown]
# Check the hand-computed sizes against the table, and run one real image-sized array
# through the network to be sure the arrays agree with the table too. A 224x224 input is
# refused with a message that says what the network expects.

# %%
rows = {}
shape = (1, 3, big.input_size, big.input_size)
for label, stage in big.stages:
    new_rows, shape = stage.describe(label, shape)
    rows.update({name: s for name, s, _, _ in new_rows})

h = 227
for name, k, s, p in ALEXNET:
    h, _ = out_size(h, k, s, p)
    assert rows[f"a.{name}"][2:] == (h, h), (name, rows[f"a.{name}"], h)
print("hand-computed sizes match the summary: 55, 27, 27, 13, 13, 13, 13, 6")

x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
print("pool5 of both towers:", big.features(x, "conv3-5").shape, "(2 x 4608 = 9216)")
print("logits:", big.forward(x, train=False).shape)

try:
    big.forward(np.zeros((1, 3, 224, 224), np.float32))
except ValueError as exc:
    print("224 refused:", exc)

# %% [markdown]
# ### 60,965,224 parameters, by hand
#
# A convolution with $C_\text{out}$ kernels of size $k \times k$, each seeing
# $C_\text{in}$ maps, has $C_\text{out} (C_\text{in} k^2 + 1)$ parameters (the $+1$ is
# the bias); a fully connected layer $n_\text{out}(n_\text{in} + 1)$. The tower structure
# is in $C_\text{in}$: conv2, conv4 and conv5 see only their own tower's maps (48, 192,
# 192), conv3 and the fully connected layers see both towers.

# %%
def conv_params(c_out, c_in, k):
    return c_out * (c_in * k * k + 1)


def fc_params(n_out, n_in):
    return n_out * (n_in + 1)


two_towers = {
    "conv1": conv_params(96, 3, 11),
    "conv2": conv_params(256, 48, 5),  # each kernel sees its own tower's 48 maps
    "conv3": conv_params(384, 256, 3),  # both towers' 2 x 128 maps
    "conv4": conv_params(384, 192, 3),  # own tower
    "conv5": conv_params(256, 192, 3),  # own tower
    "fc6": fc_params(4096, 6 * 6 * 256),
    "fc7": fc_params(4096, 4096),
    "fc8": fc_params(1000, 4096),
}
for name, count in two_towers.items():
    print(f"{name:<6}{count:>12,}")
print(f"total {sum(two_towers.values()):>12,}   library: {big.num_parameters():,}")
assert sum(two_towers.values()) == big.num_parameters() == 60_965_224

one_tower = dict(two_towers, conv2=conv_params(256, 96, 5), conv4=conv_params(384, 384, 3),
                 conv5=conv_params(256, 384, 3))  # fmt: skip
print(f"one tower with the same maps but no grouping: {sum(one_tower.values()):,} parameters")
del big  # 244 MB of float32 weights

# %% [markdown]
# 94% of the parameters are in the three fully connected layers; most of the computation
# is in the convolutions.
#
# ### The small network for 32x32 images
#
# `alexnet_cifar` keeps the topology (five convs, three fc layers, two towers, the same
# cross-tower points) with fewer maps and a 5x5 stride-1 conv1 with padding 2, so that a
# 32x32 image survives three poolings: 32 -> 32 -> 15 -> 15 -> 7 -> 7 -> 3. It is the
# network the following chapters train.

# %%
CIFAR = [("conv1", 5, 1, 2), ("pool1", 3, 2, 0), ("conv2", 5, 1, 2), ("pool2", 3, 2, 0),
         ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2, 0)]  # fmt: skip
spatial_path(32, CIFAR)
small = alexnet_cifar()
print(small.summary())
assert small.num_parameters() == 2_846_090

# %% [markdown]
# ## Two towers on two devices [3.2, Figure 2]
#
# In `minialexnet/towers.py` a network is a chain of *stages*. Between the points where
# the GPUs talk, an activation is a **list** of two arrays, one per tower, each on its
# tower's device:
#
# | stage | forward | backward |
# |---|---|---|
# | `Broadcast` | the image to both towers: $[x, x]$ | $dx = dx_a + dx_b$ (moved to device 0) |
# | `Towers` | $[f_a(x_a), f_b(x_b)]$, each on its own device, at the same time | each tower's own backward |
# | `Exchange` | both towers get $[x_a \,\|\, x_b]$ (concatenated channels) | split each gradient, send the pieces home, add: $dx_s = \sum_t g_t[\text{piece } s]$ |
# | `Gather` | $[x_a \,\|\, x_b]$ on device 0 (before fc8) | split, send each piece home |
# | `OnDevice` | fc8 on device 0 | fc8's backward |
#
# Only `Broadcast`, `Exchange` and `Gather` move arrays between devices, explicitly, with
# `Device.asarray`. Here is the chain of `alexnet_cifar`:

# %%
for label, stage in small.stages:
    print(f"{label:<9} {type(stage).__name__}")

print(inspect.getsource(Exchange.forward))
print(inspect.getsource(Exchange.backward))

# %% [markdown]
# ### Simulated devices
#
# A laptop has no two GPUs, so the library has *simulated* CPU devices: `Device("cpu:0")`
# and `Device("cpu:1")` hold NumPy arrays that remember their device and refuse to be
# combined with another device's arrays, just as CuPy refuses to add arrays that live on
# two GPUs. A model that runs on them moves data between towers only where it means to.

# %%
cpu0, cpu1 = Device("cpu:0"), Device("cpu:1")
a = cpu0.asarray(np.ones(3))
b = cpu1.asarray(np.ones(3))
print("a on", a.device_name, "| b on", b.device_name, "| a + a on", (a + a).device_name)
try:
    a + b
except ValueError as exc:
    print("a + b:", exc)
print("moved explicitly:", (a + cpu0.asarray(b)).device_name)

# %% [markdown]
# ### `Exchange` backward is the adjoint of its forward
#
# Backward must be the transpose (adjoint) of the forward map: for every input list
# $x$ and every output-gradient list $g$, $\langle \mathrm{Exchange}(x), g\rangle =
# \langle x, \mathrm{Exchange}^\top(g)\rangle$. With one random $x$ and $g$ this "dot
# product test" catches a missing or misplaced piece at once. Here on two simulated
# devices:

# %%
rng = np.random.default_rng(0)
ex = Exchange([cpu0, cpu1])
xs = [cpu0.asarray(rng.standard_normal((2, 3, 4, 4))), cpu1.asarray(rng.standard_normal((2, 5, 4, 4)))]
ys = ex.forward(xs)
gs = [cpu0.asarray(rng.standard_normal(ys[0].shape)), cpu1.asarray(rng.standard_normal(ys[1].shape))]
dxs = ex.backward(gs)
print("forward shapes:", [y.shape for y in ys], "on", [y.device_name for y in ys])
print("backward shapes:", [d.shape for d in dxs], "on", [d.device_name for d in dxs])
lhs = sum(float(np.sum(np.asarray(y) * np.asarray(g))) for y, g in zip(ys, gs))
rhs = sum(float(np.sum(np.asarray(x) * np.asarray(d))) for x, d in zip(xs, dxs))
check_close("<Exchange(x), g> vs <x, Exchange^T(g)>", lhs, rhs, 1e-12)

# %% [markdown]
# ### AlexNet on two devices
#
# Build `alexnet_cifar` with `devices=["cpu:0", "cpu:1"]`: tower a on the first, tower b
# on the second, fc8 on the first. The weights are drawn on the host from one seeded
# generator and then moved, so the same seed gives the same network on any devices.

# %%
seed = 0
two = alexnet_cifar(devices=["cpu:0", "cpu:1"], seed=seed, init="scaled")
one = alexnet_cifar(devices=["cpu"], seed=seed, init="scaled")


def device_of(model, p):
    return next(d.name for d in model.devices if d.holds(p))


where = {}
for name, p, _ in two.parameters():
    where.setdefault(device_of(two, p), []).append(name)
for dev, names in where.items():
    print(f"{dev}: {len(names)} arrays, e.g. {names[:3]} ... {names[-2:]}")
assert all(n.startswith(("a.", "fc8")) for n in where["cpu:0"])
assert all(n.startswith("b.") for n in where["cpu:1"])

# %% [markdown]
# The two networks must compute the same function: same logits in test mode, and, with
# the dropout generators seeded alike (`reseed`), the same training-mode loss gradients
# for every parameter. On simulated devices both do the same operations in the same
# order, so they agree bit for bit; across real devices (CPU against GPU) expect float32
# rounding differences of about $10^{-7}$.

# %%
batch = pick(8, 32)
x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32) * 60  # raw-pixel scale
y = rng.integers(0, 10, batch)

check_close("test-mode logits, two devices vs one", two.forward(x, train=False),
            one.forward(x, train=False), 1e-5)  # fmt: skip

for model in (two, one):
    model.reseed(123)  # the same dropout masks in both
    _, dlogits = softmax_cross_entropy(model.forward(x, train=True), y)
    model.backward(dlogits)
grads_two = {name: g for name, _, g in two.parameters()}
grads_one = {name: g for name, _, g in one.parameters()}
errors = {name: relative_error(grads_two[name], grads_one[name]) for name in grads_one}
worst = max(errors, key=errors.get)
print(f"{len(errors)} gradient arrays compared; the largest relative error is {worst}'s")
check_close(f"gradient of {worst}, two devices vs one", grads_two[worst], grads_one[worst], 1e-4)

# %% [markdown]
# ### Two towers are one grouped network
#
# On one device, the towers compute what a single network computes with grouped
# convolutions: conv2 of both towers is one `groups=2` convolution whose kernels are the
# two towers' kernels stacked, applied to the stacked pool1 maps. Checked with the
# functional op on the model's own weights:

# %%
tower_a, tower_b = dict(one.stages)["conv1-2"].towers
w_a, b_a = tower_a["conv2"].params["w"], tower_a["conv2"].params["b"]
w_b, b_b = tower_b["conv2"].params["w"], tower_b["conv2"].params["b"]
p1_a = rng.standard_normal((2, 32, 15, 15)).astype(np.float32)
p1_b = rng.standard_normal((2, 32, 15, 15)).astype(np.float32)
towers_out = np.concatenate([conv2d_forward(p1_a, w_a, b_a, 1, 2)[0],
                             conv2d_forward(p1_b, w_b, b_b, 1, 2)[0]], axis=1)  # fmt: skip
grouped, _ = conv2d_forward(np.concatenate([p1_a, p1_b], 1), np.concatenate([w_a, w_b]),
                            np.concatenate([b_a, b_b]), 1, 2, groups=2)  # fmt: skip
check_close("two towers' conv2 vs one groups=2 conv", towers_out, grouped, 1e-6)

# %% [markdown]
# ### The towers run side by side
#
# On the CPU, `Towers` hands its two jobs to `concurrency.run_per_device`, which runs
# them in two threads (NumPy releases the interpreter lock inside array operations),
# each with half the cores for its matrix products: the paper's two GPUs computing at the
# same time. `MINIALEXNET_TOWER_THREADS=0` runs them one after the other; the numbers are
# the same.
#
# ## On GPUs
#
# With CuPy and a CUDA device, the same code puts the towers on GPUs: `["gpu:0",
# "gpu:1"]` on a machine with two, or both towers on `"gpu:0"`. The cell below runs only
# where a GPU exists and compares with the CPU model built from the same seed.

# %%
if gpu_available():
    try:
        Device("gpu:1")
        gpus = ["gpu:0", "gpu:1"]
    except RuntimeError:  # one GPU: both towers on it
        gpus = ["gpu:0"]
    on_gpu = alexnet_cifar(devices=gpus, seed=seed, init="scaled")
    for name, p, _ in on_gpu.parameters():
        if name in ("a.conv1.w", "b.conv1.w", "fc8.w"):
            print(f"{name:<10} on {device_of(on_gpu, p)}, {type(p).__module__}.{type(p).__name__}")
    check_close("logits on " + "+".join(gpus) + " vs CPU", on_gpu.forward(x, train=False),
                one.forward(x, train=False), 1e-4)  # fmt: skip
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# ## Exercises
#
# 1. **The one-GPU baseline.** The paper compares its net with "a net with half as many
#    kernels in each convolutional layer trained on one GPU" [3.2]. Count that network's
#    parameters by hand with `conv_params`/`fc_params` (48, 128, 192, 192, 128 kernels,
#    and keep or halve the fc layers: say which), then build it from `minialexnet.layers`
#    (`Conv2d`, `LRN`, `MaxPool2d`, `Linear`, ... in a `Sequential`) and compare the
#    count with `sum(p.size for _, p, _ in net.parameters())`.
# 2. **Where the data crosses.** For `alexnet` at batch 128 in float32, how many bytes does
#    each `Exchange` and `Gather` move between the devices in the forward pass? (Each
#    tower sends its part to the other: e.g. into conv3, 128 x 128 x 13 x 13 floats each
#    way.) Which crossing is the most expensive, and why did the paper not connect conv4?
# 3. **Adjoint tests.** Repeat the dot-product test for `Broadcast` and `Gather` on the
#    simulated devices. Then break `Exchange.backward` on purpose in a copy (forget to add
#    one of the two pieces) and watch the test fail.
