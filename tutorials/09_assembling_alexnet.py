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
# paper's network, checks its shapes and its 60,965,224 parameters by hand, draws its two
# towers the way the paper's Figure 2 does, and then splits it over two devices the way
# the paper split it over two GPUs: on a laptop, over two *simulated* devices.
#
# ## Setup
#
# - Locally, from a checkout: `make tutorials` (creates `.venv` and opens JupyterLab).
# - In a hosted Jupyter with a GPU:
#   `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`,
#   or from a checkout `%pip install -e '/path/to/minialexnet[gpu]'`.
# - No GPU and no network are needed: everything below runs on a laptop CPU. Set
#   `MINIALEXNET_FAST=1` to shrink the work to seconds.

# %%
try:
    import minialexnet
    from minialexnet.tutorial import FAST, check_close, pick, show_source
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout run `make tutorials`, "
        "or `%pip install -e '/path/to/minialexnet'` (add [gpu] on a CUDA machine)."
    ) from exc

import matplotlib.pyplot as plt
import numpy as np

from minialexnet.backend import Device, get_array_module, gpu_available
from minialexnet.functional import conv2d_forward, relu_forward, softmax_cross_entropy
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
# have 4096 neurons each. "The ReLU non-linearity is applied to the output of every
# convolutional and fully-connected layer" [3.5], except, as in every implementation,
# the last one: fc8's outputs are the logits that go to the softmax. LRN follows conv1
# and conv2 [3.3], overlapping 3x3 stride-2 max pooling follows both LRNs and conv5
# [3.4], and dropout 0.5 follows fc6 and fc7 [4.2].
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
show_source(output_shape, start="    if isinstance(layer, Sequential)")


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
           ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2, 0)]
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
# ### The two towers, drawn from the table
#
# The paper's Figure 2 draws the network as two rows of layers, one per GPU, with the
# lines between the rows where the GPUs exchange their maps. `model.layer_rows()` holds
# everything needed to draw it: one row per layer, `(name, output shape for one image,
# parameters, device)`. Layers of tower a are named `a.*`, tower b's `b.*`; a row named
# `a.to_conv3` is the exchange before conv3 (each tower's input is then both towers'
# maps), and `to_fc8` gathers both towers for fc8. The drawing below is made from those
# rows alone: each box is a layer with weights, with its output per tower and the
# layers that follow it up to the next one.

# %%
LEARNED = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


def tower_boxes(rows, tower):
    """[(layer, output shape, parameters, [what follows it])] of one tower, in order."""
    boxes = []
    for name, shape, count, _ in rows:
        if not name.startswith(tower + "."):
            continue
        short = name.split(".", 1)[1]
        if short in LEARNED:
            boxes.append((short, shape, count, []))
        elif boxes and short.startswith(("relu", "norm", "pool", "drop")):
            kind = {"relu": "ReLU", "norm": "LRN", "pool": "pool", "drop": "dropout"}
            label = kind[short.rstrip("0123456789")]
            boxes[-1][3].append(f"{label} {shape[2]}x{shape[3]}" if label == "pool" else label)
    return boxes


def draw_towers(model, title):
    """Figure 2 from model.layer_rows(); returns the layers before which the towers exchange."""
    rows = model.layer_rows()
    towers = {t: tower_boxes(rows, t) for t in ("a", "b")}
    crossings = [name.split("to_")[1] for name, *_ in rows if name.startswith("a.to_")]
    step, width, height, y_of = 2.1, 1.7, 1.25, {"a": 1.7, "b": 0.0}
    y_mid = (y_of["a"] + y_of["b"]) / 2

    def box(x, y, name, size, note, colour):
        ax.add_patch(plt.Rectangle((x, y), width, height, fc=colour, ec="k"))
        ax.text(x + width / 2, y + height - 0.2, name, ha="center", va="center", fontsize=10,
                weight="bold")
        ax.text(x + width / 2, y + height / 2 - 0.05, size, ha="center", va="center", fontsize=9)
        ax.text(x + width / 2, y + 0.22, note, ha="center", va="center", fontsize=7)

    def arrow(x0, y0, x1, y1, colour="k"):
        ax.annotate("", xy=(x1, y1 + height / 2), xytext=(x0, y0 + height / 2),
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.2))

    fig, ax = plt.subplots(figsize=(16, 5.2))
    image = rows[0][1]  # a.input: (1, 3, H, W)
    box(-step, y_mid, "image", f"{image[1]} x {image[2]} x {image[3]}", "to both towers", "0.9")
    for tower, boxes in towers.items():
        y = y_of[tower]
        device = next(r[3] for r in rows if r[0].startswith(tower + "."))
        ax.text(0, y + height + 0.08, f"tower {tower}, on {device}", fontsize=9, va="bottom")
        arrow(-step + width, y_mid, 0, y, "grey")
        for i, (name, shape, _, after) in enumerate(boxes):
            size = f"{shape[1]} x {shape[2]} x {shape[3]}" if len(shape) == 4 else f"{shape[1]}"
            colour = "#c6dbef" if name.startswith("conv") else "#fdd0a2"
            box(step * i, y, name, size, ", ".join(after), colour)
            if i + 1 < len(boxes):
                arrow(step * i + width, y, step * (i + 1), y)
            if i > 0 and name in crossings:  # the exchange: the other tower's maps come in too
                other = y_of["b" if tower == "a" else "a"]
                arrow(step * (i - 1) + width, other, step * i, y, "tab:red")
    fc8 = next(r for r in rows if r[0] == "fc8")
    x8 = step * len(towers["a"])
    box(x8, y_mid, "fc8", f"{fc8[1][1]}", "softmax (in the loss)", "#fdd0a2")
    for y in y_of.values():  # both towers' fc7 into fc8
        arrow(x8 - step + width, y, x8, y_mid, "tab:red")
    ax.set_xlim(-step - 0.2, x8 + width + 0.2)
    ax.set_ylim(-0.2, y_of["a"] + height + 0.5)
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    plt.show()
    return crossings


crossings = draw_towers(big, "alexnet (227x227 input), from model.layer_rows(): each tower's "
                        "outputs (maps x height x width); red: where the towers exchange")
print("the towers exchange before:", crossings, "| fc8 takes both towers' fc7")
assert crossings == ["conv3", "fc6", "fc7"]  # the paper's Figure 2 [3.2]
assert big.layer_rows()[-1][0] == "fc8"  # the last layer: no ReLU after it, the logits

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

# %% [markdown]
# Where are the parameters, and where is the work? A layer with weights does one
# multiply-add per weight (bias aside) for every output position: a fully connected
# layer once per image, a convolution at every pixel of its output map.

# %%
total = sum(two_towers.values())
fc_params = two_towers["fc6"] + two_towers["fc7"] + two_towers["fc8"]
print(f"fully connected layers: {fc_params:,} of {total:,} parameters = {fc_params / total:.1%}")
assert (fc_params, total) == (58_631_144, 60_965_224) and round(100 * fc_params / total, 1) == 96.2

macs = {}  # multiply-adds per layer, both towers, for one image
for name, shape, count, _ in big.layer_rows():
    layer = name.split(".")[-1]
    if layer.startswith(("conv", "fc")) and count:
        weights = count - shape[1]  # the parameters minus one bias per output channel
        macs[layer] = macs.get(layer, 0) + int(np.prod(shape)) * weights // shape[1]
assert 2 * sum(macs.values()) == big.forward_flops()
conv_macs = sum(v for k, v in macs.items() if k.startswith("conv"))
print(f"convolutions: {conv_macs / 1e6:,.0f} of {sum(macs.values()) / 1e6:,.0f} million "
      f"multiply-adds per image = {conv_macs / sum(macs.values()):.1%}")
assert round(100 * conv_macs / sum(macs.values())) == 92
del big  # 244 MB of float32 weights

# %% [markdown]
# The fully connected layers hold 96.2% of the parameters (58,631,144 of 60,965,224),
# while the convolutions do 92% of the computation: a weight of fc6 is used once per
# image, a weight of conv1 at each of its 55 x 55 output positions.
#
# ### The small network for 32x32 images
#
# `alexnet_cifar` keeps the topology (five convs, three fc layers, two towers, the same
# cross-tower points) with fewer maps and a 5x5 stride-1 conv1 with padding 2, so that a
# 32x32 image survives three poolings: 32 -> 32 -> 15 -> 15 -> 7 -> 7 -> 3. It is the
# network the following chapters train.

# %%
CIFAR = [("conv1", 5, 1, 2), ("pool1", 3, 2, 0), ("conv2", 5, 1, 2), ("pool2", 3, 2, 0),
         ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2, 0)]
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

show_source(Exchange.forward)
show_source(Exchange.backward)

# %% [markdown]
# ### Simulated devices: two devices on one CPU
#
# The paper's two towers live on two GPUs, and a GPU cannot read an array in another
# GPU's memory: CuPy refuses to add arrays from two GPUs. To test the two-tower model on
# a laptop, `Device("cpu:0")` and `Device("cpu:1")` are two *simulated* devices. Their
# arrays are NumPy arrays that carry a device name; the results of NumPy operations on
# them stay on that device, and mixing two devices raises, just as on two GPUs. The
# only way across is an explicit move, `dev.asarray(a)`.

# %%
cpu0, cpu1 = Device("cpu:0"), Device("cpu:1")
a = cpu0.asarray(np.arange(6.0).reshape(2, 3) - 2)
b = cpu1.asarray(np.ones((2, 3)))
print("a on", a.device_name, "| b on", b.device_name, "| a + a on", (a + a).device_name)
print("the library's relu of a stays on", relu_forward(a)[0].device_name)
try:
    a + b
except ValueError as exc:
    print("a + b:", exc)
b_on_0 = cpu0.asarray(b)  # the explicit move (a copy)
print("after the move:", (a + b_on_0).device_name, "| cpu:0 holds it:", cpu0.holds(b_on_0))

# %% [markdown]
# A function that *creates* an array must create it on the device of its input. A
# fresh array from `np.zeros` or `np.eye` is a host array: it belongs to no simulated
# device (on a GPU, CuPy would put it on whichever GPU is current). Made "like" the
# input, with `xp.zeros_like(a, shape=...)`, it stays on the input's device; that is
# how the library's functional ops allocate their results.

# %%
xp = get_array_module(a)
fresh = xp.zeros((2, 4))
alike = xp.zeros_like(a, shape=(2, 4))
print(f"xp.zeros: held by cpu:0? {cpu0.holds(fresh)} | xp.zeros_like(a, shape=...): on "
      f"{alike.device_name}, held by cpu:0? {cpu0.holds(alike)}")
assert not cpu0.holds(fresh) and cpu0.holds(alike)

# %% [markdown]
# This is how the test-suite proves, on a machine without a GPU, that the two-tower
# AlexNet moves activations between its towers only where the paper does: into conv3,
# fc6 and fc7 (the red arrows of the picture above), and both towers into fc8.

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
xs = [cpu0.asarray(rng.standard_normal((2, 3, 4, 4))),
      cpu1.asarray(rng.standard_normal((2, 5, 4, 4)))]
ys = ex.forward(xs)
gs = [cpu0.asarray(rng.standard_normal(ys[0].shape)),
      cpu1.asarray(rng.standard_normal(ys[1].shape))]
dxs = ex.backward(gs)
print("forward shapes:", [y.shape for y in ys], "on", [y.device_name for y in ys])
print("backward shapes:", [d.shape for d in dxs], "on", [d.device_name for d in dxs])
lhs = sum(float(np.sum(np.asarray(y) * np.asarray(g))) for y, g in zip(ys, gs, strict=True))
rhs = sum(float(np.sum(np.asarray(x) * np.asarray(d))) for x, d in zip(xs, dxs, strict=True))
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
draw_towers(two, "alexnet_cifar on two simulated devices, from its layer_rows(): "
            "the same crossings on a smaller network (fc8 lives with tower a)")

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
# 4. **Device-generic code, on two devices.** Take chapter 00's `one_hot(labels,
#    num_classes)` and call it on `Device("cpu:1").asarray(labels)`: the result should
#    report `device_name == "cpu:1"`. If you built it with `xp.zeros` (or `xp.eye`), it
#    does not: allocate it like its input, `xp.zeros_like(labels, dtype=np.float32,
#    shape=(N, num_classes))`, then set the ones with one indexed assignment.

# %% [markdown]
# ## Summary
#
# - AlexNet is five convolutions and three fully connected layers, with ReLU after
#   every one of them but fc8, LRN after conv1 and conv2, overlapping pooling after
#   conv1, conv2 and conv5, and dropout after fc6 and fc7.
# - Its sizes follow from $\lfloor (H + 2p - k)/s \rfloor + 1$ at every layer: from 227
#   pixels, $55 \to 27 \to 13 \to 6$, and $6 \times 6 \times 256 = 9216$ inputs to fc6.
# - Of its 60,965,224 parameters, 96.2% are in the fully connected layers, while 92% of
#   its computation is in the convolutions.
# - The two towers exchange their maps only before conv3, fc6 and fc7 (and both feed
#   fc8); the library's stages make every move between devices explicit, and simulated
#   devices test the placement without a GPU.
#
# ## Questions
#
# 1. Which parameter counts would change if conv4 also saw both towers' maps, as conv3
#    does, and by how much?
# 2. Why does fc6 have more parameters than all five convolutions together, while doing
#    far less of the computation?
# 3. The paper feeds 224x224 images. What would the network have to change to accept
#    them, and which layer's size would change first?
