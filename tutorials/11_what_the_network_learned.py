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
# # Chapter 11: What the network learned
#
# Section 6.1 of the paper looks inside the trained network in two ways: the pictures of
# the first layer's kernels, and the images whose last hidden layer (fc7) activations are
# nearest to each other. This chapter does both for our network, and draws the top-five
# prediction panels of Figure 4.
#
# ## Setup
#
# - Locally, from a checkout: `make tutorials` (creates `.venv` and opens JupyterLab).
# - In a hosted Jupyter with a GPU: `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`,
#   or from a checkout `%pip install -e '/path/to/minialexnet[gpu]'`.
# - It needs a trained model. If you ran `make train` (which writes
#   `runs/alexnet-cifar-shapes/best.npz`) or chapter 10 in the same folder, it loads that;
#   otherwise it trains one here, the same short run as chapter 10 (a few minutes on a
#   laptop CPU; seconds with `MINIALEXNET_FAST=1`, where the model stays near chance).

# %%
try:
    import minialexnet
    from minialexnet.tutorial import FAST, check_close, pick, trained_model
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout run `make tutorials`, "
        "or `%pip install -e '/path/to/minialexnet'` (add [gpu] on a CUDA machine)."
    ) from exc

import inspect
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from minialexnet import functional as F
from minialexnet.backend import to_numpy
from minialexnet.data import eval_transform, load_dataset
from minialexnet.evaluate import evaluate_model, load_model
from minialexnet.models import model_from_config
from minialexnet.viz import (
    filter_grid,
    nearest_neighbours,
    plot_filters,
    plot_neighbours,
    plot_top5,
)

OUT = Path("tutorial-out")
OUT.mkdir(exist_ok=True)
print("minialexnet from", minialexnet.__file__, "| fast mode:", FAST)

# %% [markdown]
# ## What the paper says
#
# [6.1] "Figure 3 shows the convolutional kernels learned by the network's two
# data-connected layers. The network has learned a variety of frequency- and
# orientation-selective kernels, as well as various colored blobs. Notice the
# specialization exhibited by the two GPUs, a result of the restricted connectivity
# described in Section 3.5. The kernels on GPU 1 are largely color-agnostic, while the
# kernels on GPU 2 are largely color-specific. This kind of specialization occurs during
# every run and is independent of any particular random weight initialization."
#
# "Another way to probe the network's visual knowledge is to consider the feature
# activations induced by an image at the last, 4096-dimensional hidden layer. If two
# images produce feature activation vectors with a small Euclidean separation, we can say
# that the higher levels of the neural network consider them to be similar." Figure 4
# (right) shows five test images and, for each, the six training images nearest to it in
# that sense; "at the pixel level, the retrieved training images are generally not close in
# L2 to the query images". Figure 4 (left) shows eight test images with the network's five
# most probable labels.
#
# ## A trained model
#
# The first place that has one wins: `make train`'s run (from the repository root or from
# `tutorials/`), chapter 10's run in this folder, else a fresh run with chapter 10's
# arguments (`minialexnet.tutorial.trained_model` looks, in that order). Every run is a
# pure function of its seed, so the fresh run is chapter 10's model, weight for weight.

# %%
found = trained_model(OUT)
model, stats, meta = load_model(found)
run = meta["run"]
classes = meta["classes"]
best = meta.get("progress", {}).get("best_val_top1", float("nan"))
print(f"using {found}: epoch {meta['epoch']}, trained on {run.get('train_size') or 10000} "
      f"images, best validation top-1 error {100 * best:.1f}%")  # fmt: skip

# %% [markdown]
# Keep in mind how far this is from the paper: their network saw 1.2 million images 90
# times over six days; ours has seen a few thousand images a few times. What follows is
# what such a model shows, measured, not what the paper's shows.
#
# ## conv1's kernels, per tower [Figure 3]
#
# Each tower has its own conv1 kernels: `a.conv1.w` and `b.conv1.w`, shape
# (32, 3, 5, 5) here (the paper: 48 kernels of 11x11x3 per GPU). `viz.filter_grid` lays
# them out as colour tiles, each shifted and scaled to [0, 1] on its own, as in Figure 3
# (these three lines), and `viz.plot_filters` puts the grids side by side:

# %%
print("\n".join(line for line in inspect.getsource(filter_grid).splitlines()
                if line.strip().startswith(("low =", "span =", "tiles ="))))  # fmt: skip
weights = model.state_dict()
untrained = model_from_config(meta["config"], seed=run.get("seed", 0)).state_dict()
path = plot_filters(
    {"tower a (untrained)": untrained["a.conv1.w"], "tower a": weights["a.conv1.w"],
     "tower b": weights["b.conv1.w"]},
    OUT / "ch11-filters.png",
    title=f"conv1 kernels before and after training (epoch {meta['epoch']})",
)  # fmt: skip
display(Image(str(path)))

# %% [markdown]
# ### Colour-agnostic or colour-specific: a number
#
# A kernel is colour-agnostic when its three colour planes are nearly the same pattern:
# it responds to brightness edges whatever their colour. Split every kernel $w$ (3, k, k)
# into its grey part $\bar w$ (the mean of the three planes, repeated) and the rest, and
# call
#
# $$\text{colour share}(w) = \frac{\lVert w - \bar w \rVert^2}{\lVert w \rVert^2} \in [0, 1].$$
#
# It is 0 for a grey kernel and 1 for one whose planes sum to zero (pure colour
# opponency). For kernels with random independent entries, as at initialisation, its
# expected value is about $2/3$: two of the three colour directions are not grey. The
# paper's GPU 1 would score low, GPU 2 higher.

# %%
def colour_share(w):
    w = np.asarray(to_numpy(w), dtype=np.float64)
    grey = w.mean(axis=1, keepdims=True)
    return ((w - grey) ** 2).sum(axis=(1, 2, 3)) / (w**2).sum(axis=(1, 2, 3))


print("                         colour share (mean, 10%-90%)   moved from init")
for name, w in [("tower a", weights["a.conv1.w"]), ("tower b", weights["b.conv1.w"]),
                ("tower a untrained", untrained["a.conv1.w"])]:  # fmt: skip
    share = colour_share(w)
    start = untrained[("a" if "a" in name else "b") + ".conv1.w"]
    moved = np.linalg.norm(w - start) / np.linalg.norm(start)
    print(f"{name:<22} {share.mean():6.3f}  ({np.quantile(share, 0.1):.2f}-"
          f"{np.quantile(share, 0.9):.2f})        {100 * moved:5.1f}%")  # fmt: skip

fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(0, 1, 21)
ax.hist(colour_share(weights["a.conv1.w"]), bins, alpha=0.6, label="tower a")
ax.hist(colour_share(weights["b.conv1.w"]), bins, alpha=0.6, label="tower b")
ax.axvline(2 / 3, color="k", ls="--", lw=1, label="random kernels (2/3)")
ax.set_xlabel("colour share of a conv1 kernel")
ax.set_ylabel("kernels")
ax.legend()
plt.show()

# %% [markdown]
# **What our model shows.** With chapter 10's model (a run of minutes) the kernels have
# moved only a few per cent from their random start (the last column; we measured 4-6%),
# both towers' colour shares sit at the random value of about 2/3, and the pictures look
# like noise, much like the untrained ones. There is no sign of the paper's split. That is expected: the kernels of Figure 3 are the product of 90
# epochs on ImageNet, and the split "is a result of the restricted connectivity": conv2
# of each tower sees only its own tower's conv1 maps, so the two sets of kernels are
# free to specialise. A longer run (`make train`, or the CIFAR-10 recipe of
# `docs/training.md`) shows smoother, more structured kernels; whether a 32x32 network
# with 5x5 kernels splits into grey and colour towers as the paper's did is a question
# you can measure with `colour_share` (exercise 1).
#
# ## Nearest neighbours by fc7 features [Figure 4, right]
#
# `model.features(x, "fc7")` runs the network in test mode up to fc7 and joins the two
# towers' outputs: the paper's 4096-dimensional vector is 2 x 512 = 1024 numbers here.
# `viz.nearest_neighbours` finds, for each query, the database vectors at the smallest
# Euclidean distance, all pairs at once from
# $\lVert q - d \rVert^2 = \lVert q \rVert^2 - 2\, q \cdot d + \lVert d \rVert^2$.
# As in the paper the queries are validation images and the database is training images.

# %%
image_size = run.get("image_size", 32)
database = load_dataset("shapes", "train", size=pick(256, 1000), image_size=image_size,
                        seed=run.get("seed", 0))  # fmt: skip
queries = load_dataset("shapes", "val", size=pick(64, 300), image_size=image_size,
                       seed=run.get("seed", 0))  # fmt: skip


def fc7(images, batch=250):
    """fc7 features of uint8 images (N, H, W, 3), in batches, as a host array."""
    parts = []
    for i in range(0, len(images), batch):
        x = eval_transform(images[i : i + batch], stats=stats, crop=model.input_size)
        parts.append(to_numpy(model.features(x, "fc7")))
    return np.concatenate(parts)


db_feats, q_feats = fc7(database.images), fc7(queries.images)
print("features:", db_feats.shape, q_feats.shape, "| zero entries (ReLU):",
      f"{100 * np.mean(db_feats == 0):.0f}%")  # fmt: skip

nearest = nearest_neighbours(q_feats, db_feats, k=6)
brute = np.argsort(((q_feats[:5, None] - db_feats[None]) ** 2).sum(-1), axis=1)[:, :6]
assert (nearest[:5] == brute).all(), "the matrix-product distances should rank like brute force"

show = range(pick(4, 6))
path = plot_neighbours(
    [queries.images[i] for i in show],
    [[database.images[j] for j in nearest[i]] for i in show],
    OUT / "ch11-neighbours.png",
    captions=[[classes[queries.labels[i]]] + [classes[database.labels[j]] for j in nearest[i]]
              for i in show],
)  # fmt: skip
display(Image(str(path)))

# %% [markdown]
# ### Are the neighbours alike? Measure it
#
# One picture can flatter. Over all queries: how often does a neighbour have the query's
# class? Compare with the same search on raw pixels (the paper's remark that fc7
# neighbours are not close in L2 on pixels), and with chance (10% for ten balanced
# classes).

# %%
def agreement(q, d, k=5):
    idx = nearest_neighbours(q, d, k=k)
    return np.mean(database.labels[idx] == queries.labels[:, None])


def pixels(ds):
    return ds.images.reshape(len(ds), -1).astype(np.float64)


print(f"neighbours of the same class, 5 per query, {len(queries)} queries:")
print(f"  by fc7 features: {100 * agreement(q_feats, db_feats):5.1f}%")
print(f"  by raw pixels:   {100 * agreement(pixels(queries), pixels(database)):5.1f}%")
print("  chance:           10.0%")

# %% [markdown]
# Even a briefly trained network puts same-class images closer together in fc7 than the
# pixels do (how much closer depends on how long it trained: fast mode's model hardly
# does). A pixel search is dominated by colour and brightness, which in shapes are drawn
# at random, whatever the class; in the picture above, look for fc7 neighbours that share
# the query's shape but not its colours.
#
# ## Top-five predictions [Figure 4, left]
#
# The softmax of the logits gives a probability per class; the five largest, with the
# image, make one panel.

# %%
pick_images = queries.images[: pick(4, 8)]
probs = to_numpy(F.softmax(model.forward(eval_transform(pick_images, stats=stats,
                                                        crop=model.input_size), train=False)))  # fmt: skip
check_close("softmax rows sum to 1", probs.sum(axis=1), np.ones(len(probs)), 1e-5)
top5 = []
for p in probs:
    order = np.argsort(-p)[:5]
    top5.append([(classes[i], float(p[i])) for i in order])
names = [f"true: {classes[lab]}" for lab in queries.labels[: len(pick_images)]]
display(Image(str(plot_top5(pick_images, names, top5, OUT / "ch11-top5.png"))))

# %% [markdown]
# A network near chance spreads its probability almost evenly (about 10% each); a
# trained one puts most of it on a few classes, and which classes share the rest tells
# you what it finds alike (compare with the confusion matrix of chapter 10).
#
# For reference, the validation errors of this model on the query images:

# %%
r = evaluate_model(model, queries, stats, progress=False)
print(f"top-1 error {100 * r['top1_err']:.1f}%, top-5 error {100 * r['top5_err']:.1f}% "
      f"on {r['examples']} validation images")  # fmt: skip

# %% [markdown]
# ## Exercises
#
# 1. **Does our network split its towers?** Train longer (`make train`, about 8 minutes,
#    or `python -m minialexnet.train --epochs 10`), rerun this notebook (it picks up
#    `runs/alexnet-cifar-shapes/best.npz`) and compare the two towers' `colour_share`
#    histograms. Shapes are drawn in random colours, so colour says little about the
#    class: would you expect colour-specific kernels at all? Try a real-image dataset
#    (CIFAR-10) if you have it.
# 2. **Which layer?** Repeat the neighbour agreement with `model.features(x, "fc6")`,
#    `"conv3-5"` (flatten it) and `"conv1-2"`. Where along the network does the class
#    become the thing that decides distance?
# 3. **Short codes.** The paper suggests compressing the 4096-d vectors to short binary
#    codes for fast retrieval. Take the sign of 32 random projections of the fc7 features
#    (`np.sign(feats @ R)`, `R` Gaussian of shape (1024, 32)) and search with Hamming
#    distance. How much agreement is left?
