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
# # Chapter 10: Training and evaluation
#
# Chapter 09 assembled the network. Here we train it with the paper's recipe through the
# library's own training command, read its curves, and measure it the way the paper
# does: top-1 and top-5 error, with the centre patch and with ten patches, and a
# confusion matrix to see which classes it mixes up.
#
# ## Setup
#
# - Locally, from a checkout: `make tutorials` (creates `.venv` and opens JupyterLab).
# - In a hosted Jupyter with a GPU: `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`,
#   or from a checkout `%pip install -e '/path/to/minialexnet[gpu]'`.
# - The data is the built-in `shapes` dataset, drawn by code: no download. The run below
#   takes a few minutes on a laptop CPU (`MINIALEXNET_FAST=1`: seconds, and the model
#   stays near chance). Files go to `tutorial-out/` in the current folder.

# %%
try:
    import minialexnet
    from minialexnet.tutorial import FAST, chapter10_args, check_close, pick
except ImportError as exc:
    raise ImportError(
        "minialexnet is not installed in this kernel. From a checkout run `make tutorials`, "
        "or `%pip install -e '/path/to/minialexnet'` (add [gpu] on a CUDA machine)."
    ) from exc

import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

from minialexnet import functional as F
from minialexnet import train
from minialexnet.backend import Device, gpu_available
from minialexnet.data import Stats, dataset_statistics, load_dataset, ten_crop, train_transform
from minialexnet.evaluate import evaluate_model, load_model, topk_correct
from minialexnet.models import alexnet_cifar
from minialexnet.optim import SGD
from minialexnet.viz import confusion_matrix, plot_confusion, plot_curves, read_metrics

OUT = Path("tutorial-out")
OUT.mkdir(exist_ok=True)
print("minialexnet from", minialexnet.__file__, "| fast mode:", FAST)

# %% [markdown]
# ## What the paper says
#
# [5] "We trained our models using stochastic gradient descent with a batch size of 128
# examples, momentum of 0.9, and weight decay of 0.0005":
#
# $$v_{i+1} = 0.9\, v_i - 0.0005\, \epsilon\, w_i - \epsilon \left\langle \frac{\partial L}{\partial w}\Big|_{w_i} \right\rangle_{D_i}, \qquad w_{i+1} = w_i + v_{i+1}$$
#
# with learning rate $\epsilon = 0.01$, "divided by 10 when the validation error rate
# stopped improving with the current learning rate", three times in all, over about 90
# epochs. [4.1] At test time "the network makes a prediction by extracting five 224x224
# patches (the four corner patches and the center patch) as well as their horizontal
# reflections (hence ten patches in all), and averaging the predictions made by the
# network's softmax layer on the ten patches." [6] Results are reported as top-1 and
# top-5 error rates: "the fraction of test images for which the correct label is not among
# the five labels considered most probable by the model."
#
# ## The loop, by hand
#
# One step of training is five lines: augment a batch, forward, loss, backward, update.
# `optim.SGD.step` is the paper's rule above, written out. A classic first check of a new
# network is that it can drive the loss down on one fixed batch (here without
# augmentation or dropout, so the only thing that changes is the weights):

# %%
train_small = load_dataset("shapes", "train", size=64, image_size=32, seed=0)
stats = dataset_statistics(train_small.images)  # mean image and RGB PCA, for the transforms
x = train_transform(train_small.images[:16], np.random.default_rng(0), stats=stats, crop=32,
                    pad=0, flip=False, pca_std=0.0)  # fmt: skip
y = train_small.labels[:16]

net = alexnet_cifar(len(train_small.classes), seed=0, init="scaled")
optimizer = SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
losses = []
for step in range(pick(6, 18)):
    loss, dlogits = F.softmax_cross_entropy(net.forward(x, train=False), y)
    net.backward(dlogits)
    optimizer.step()
    losses.append(float(loss))
print("loss on one batch of 16:", " ".join(f"{v:.3f}" for v in losses))
print(f"ln 10 = {np.log(10):.3f}: an untrained 10-way classifier starts there")
assert losses[-1] < losses[0], "the loss on a fixed batch should go down"

# %% [markdown]
# ## A training run through the library
#
# `python -m minialexnet.train` (or `make train`) does the same loop over a whole dataset
# with everything around it: random crops, flips and PCA colour [4.1], dropout [4.2], the
# learning-rate schedule, validation after every epoch, checkpoints, and the curves. From
# Python, `train.main([...])` takes the same arguments as the command line.
#
# The default run (`make train`: 10,000 images, 5 epochs) takes about 8 minutes on two
# cores. Here a smaller one: shapes needs a couple of hundred updates at chance before it
# starts to learn (see `docs/training.md`), so batches of 64 give more updates for the same
# images, and the learning rate falls linearly to zero over the run (`--schedule linear`,
# the default on shapes, suited to a fixed budget).

# %%
run_dir = OUT / "ch10-run"
args = chapter10_args(run_dir)  # chapters 11 and 12 train the same run when they need it
print("python -m minialexnet.train", " ".join(args))  # --no-ten-crop: we do it ourselves below
start = time.perf_counter()
status = train.main(args)
print(f"train.main returned {status} after {time.perf_counter() - start:.0f} s")
assert status == 0
print(sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# ## The curves
#
# `metrics.jsonl` has one JSON object per epoch (errors are fractions). `viz.read_metrics`
# reads it and `viz.plot_curves` draws loss and error against epochs.

# %%
records = read_metrics(run_dir / "metrics.jsonl")
print("epoch   lr       train loss  val loss  val top-1  val top-5  images/s")
for r in records:
    print(f"{r['epoch']:>5}   {r['lr']:<8.4f} {r['train_loss']:>10.3f} {r['val_loss']:>9.3f} "
          f"{100 * r['val_top1_err']:>8.1f}% {100 * r['val_top5_err']:>8.1f}% "
          f"{r['images_per_s']:>9.0f}")  # fmt: skip
display(Image(str(plot_curves(records, OUT / "ch10-curves.png", title="alexnet-cifar on shapes"))))

# %% [markdown]
# Chance is 90% top-1 and 50% top-5 error for ten balanced classes. In fast mode the
# model has seen too few batches to leave chance; the full run leaves it in its last
# epochs. The default `make train` run reaches about 69% top-1 error after 5 epochs of
# 10,000 images, and more epochs keep improving (52% after 6 epochs with the same
# schedule; `docs/training.md`).
#
# ## Top-1 and top-5 error
#
# An example is a top-$k$ error when its label is not among the $k$ highest scores.
# `evaluate.topk_correct` counts the hits with `np.argpartition` (which finds the $k$
# largest without sorting the rest). By hand on three examples and four classes:

# %%
scores = np.array([[0.10, 0.60, 0.20, 0.10],   # label 1 has the top score: a hit for every k
                   [0.30, 0.10, 0.40, 0.20],   # label 0 is second: a top-2 hit, a top-1 miss
                   [0.50, 0.05, 0.15, 0.30]])  # label 2 is third: a hit only from k = 3 on
labels = np.array([1, 0, 2])
for k in (1, 2, 3):
    by_sorting = int(sum(lab in np.argsort(-s, kind="stable")[:k] for s, lab in zip(scores, labels)))
    print(f"top-{k}: {topk_correct(scores, labels, k)} of 3 correct (by full sorting: {by_sorting})")

# %% [markdown]
# Ties make "the top $k$" ambiguous: in `[0.5, 0.1, 0.1, 0.3]` either class at 0.1 can
# be the third. `topk_correct` takes tied scores in any order, so in such a case its count
# can differ from a sort's; with real-valued softmax outputs ties are rare.
#
# ## Centre crop and ten crops
#
# `evaluate.load_model` rebuilds the network from a checkpoint (its config, its weights
# and the data statistics it was trained with); `evaluate_model` runs it over a dataset in
# test mode (no dropout) and returns loss, top-1 and top-5 error.
#
# The ten patches of the paper are the four corners, the centre and their mirrors.
# `data.ten_crop` cuts them. On a 40x40 image cut to 32x32 they differ:

# %%
big_images = load_dataset("shapes", "val", size=1, image_size=40, seed=0).images
no_mean = Stats(mean=np.zeros((40, 40, 3)), eigvals=np.zeros(3), eigvecs=np.eye(3))
crops = ten_crop(big_images, stats=no_mean, crop=32)  # (10, 1, 3, 32, 32), raw 0-255 pixels
names = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
fig, axes = plt.subplots(2, 5, figsize=(10, 4.2))
for k, ax in enumerate(axes.flat):
    patch = crops[k, 0].transpose(1, 2, 0)
    ax.imshow(patch / 255)
    ax.set_title(names[k % 5] + (" (mirror)" if k >= 5 else ""), fontsize=8)
    ax.axis("off")
fig.suptitle("data.ten_crop: ten 32x32 patches of one 40x40 image")
plt.show()

# %% [markdown]
# **A caveat for the small network.** `alexnet_cifar` is trained on 32x32 images padded to
# 40 and cropped back to 32 (the CIFAR-10 habit), and it is tested on the 32x32 images
# themselves. A 32x32 crop of a 32x32 image has only one position, so its "ten crops" are
# five copies of the image and five of its mirror: ten-crop testing here is the average
# of an image and its reflection. The paper's 224-of-256 patches (and `alexnet` with its
# 227-of-256) do differ.

# %%
model, stats, meta = load_model(run_dir / "best.npz")
run = meta["run"]
val = load_dataset("shapes", "val", size=run["val_size"], image_size=run["image_size"],
                   seed=run["seed"])  # fmt: skip
print(f"best.npz: epoch {meta['epoch']}, {len(val)} validation images")

same = ten_crop(val.images[:2], stats=stats, crop=32)
check_close("ten-crop patch 3 vs patch 0 on 32x32 images", same[3], same[0], 1e-12)
check_close("ten-crop patch 5 vs mirrored patch 0", same[5], same[0][..., ::-1], 1e-12)

results = {}
for name, ten in (("centre", False), ("ten-crop", True)):
    start = time.perf_counter()
    results[name] = evaluate_model(model, val, stats, batch_size=128, ten_crops=ten,
                                   progress=False, keep_predictions=True)  # fmt: skip
    r = results[name]
    print(f"{name:<9} top-1 error {100 * r['top1_err']:5.1f}%  top-5 error "
          f"{100 * r['top5_err']:5.1f}%  loss {r['loss']:.3f}  ({time.perf_counter() - start:.1f} s)")  # fmt: skip

# %% [markdown]
# Ten-crop testing costs ten forward passes per image where the patches differ; here they
# do not (see above), and `evaluate_model` runs only the two distinct ones. On
# this small network it can only help where the model is unsure of an image and its
# mirror; the difference between the two lines above is small, and with a model trained
# for minutes on a few hundred validation images it is mostly noise.
#
# Recompute the centre-crop top-1 error from the predictions by hand, as a check on
# `evaluate_model`:

# %%
predictions = results["centre"]["predictions"]
check_close("top-1 error from predictions", np.mean(predictions != val.labels),
            results["centre"]["top1_err"], 1e-12)  # fmt: skip

# %% [markdown]
# ## The confusion matrix
#
# `viz.confusion_matrix` counts `m[true, predicted]`; each row sums to the number of
# examples of that class, and the diagonal holds the correct ones. `viz.plot_confusion`
# draws each row in percent of its class.

# %%
counts = confusion_matrix(val.labels, predictions, len(val.classes))
assert counts.sum() == len(val) and np.trace(counts) == np.sum(predictions == val.labels)
per_class = np.diag(counts) / counts.sum(axis=1)
for cls, acc in sorted(zip(val.classes, per_class), key=lambda t: -t[1]):
    print(f"{cls:<20} {100 * acc:5.1f}% correct")
path = plot_confusion(val.labels, predictions, val.classes, OUT / "ch10-confusion.png",
                      title="shapes val, centre crop")  # fmt: skip
display(Image(str(path)))

# %% [markdown]
# An untrained or barely trained network predicts one or two classes for almost
# everything: a few bright columns. As it learns, the mass moves onto the diagonal, and
# the off-diagonal cells that stay bright name the pairs it finds alike (on shapes,
# typically circle, ring and crescent, or the two stripe directions).
#
# ## The same evaluation on a GPU
#
# `load_model(path, devices=[Device("gpu:0")])` puts the network on a GPU; the data
# pipeline stays on the host and `evaluate_model` moves each batch. The errors must be
# the same up to float rounding.

# %%
if gpu_available():
    gpu_model, _, _ = load_model(run_dir / "best.npz", devices=[Device("gpu:0")])
    r = evaluate_model(gpu_model, val, stats, progress=False)
    print(f"GPU: top-1 error {100 * r['top1_err']:.1f}%, CPU: {100 * results['centre']['top1_err']:.1f}%")
    check_close("loss on GPU vs CPU", r["loss"], results["centre"]["loss"], 1e-4)
else:
    print("no GPU here: this cell ran the CPU path only")

# %% [markdown]
# What the run left behind, for later chapters and for `python -m minialexnet.evaluate`:

# %%
print(json.dumps(meta["run"], indent=1))
print("files:", sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# ## Exercises
#
# 1. **The paper's schedule.** Rerun the training cell with `"--schedule", "plateau"` and
#    more epochs, and compare the curves with the linear schedule. How many epochs does it
#    take before the plateau rule divides the learning rate for the first time? (Look at the
#    `lr` column of `metrics.jsonl`, and at `optim.PlateauSchedule`.)
# 2. **Real ten crops.** Generate the validation images at `image_size=36`, compute new
#    `Stats` with `dataset_statistics` on a training set of the same size, and evaluate
#    with `ten_crops=True`: now the ten 32x32 patches differ. Is the model, trained on
#    32x32 images, still as accurate on 32x32 patches of larger images? Why not?
# 3. **Top-5 on ten classes.** With ten classes, what top-5 error does a model that
#    guesses uniformly at random get? What does the top-5 error of your run say that top-1
#    does not? Write your own `topk_correct` with `np.argsort` and compare it with the
#    library's on the softmax outputs of a validation batch
#    (`F.softmax(model.forward(x, train=False))`, `x` from `data.eval_transform`).
