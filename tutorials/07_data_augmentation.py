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
# # Chapter 07: Data augmentation
#
# The paper's second weapon against overfitting, next to dropout, is to make the
# training set larger without collecting anything: every time an image is shown to the
# network it is cut, mirrored and re-coloured at random. At test time the network looks
# at ten fixed patches of each image and averages its answers. This chapter takes each
# of those steps in turn, with the library's `minialexnet.data` functions, on pictures
# of the built-in shapes dataset.

# %% [markdown]
# ## Setup
#
# Everything here runs on a laptop CPU in seconds, offline (the images are drawn by the
# library). To run it elsewhere:
#
# - in a hosted Jupyter with a GPU:
#   `%pip install "minialexnet[gpu] @ git+<URL of this repository>"`
# - from a checkout: `%pip install -e '/path/to/minialexnet[gpu]'` (leave out `[gpu]`
#   on a machine without CUDA);
# - locally, in the repository: `make tutorials` (creates `.venv` and opens JupyterLab).
#
# The transforms always run on the CPU in NumPy, also when the model trains on a GPU:
# `data.BatchLoader` prepares the next batches in background threads meanwhile.
# `MINIALEXNET_FAST=1` makes the chapter use fewer images.

# %%
try:
    import minialexnet  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "this chapter needs minialexnet: `%pip install -e '/path/to/minialexnet'` from a "
        "checkout (or `make tutorials` in the repository), then restart the kernel"
    ) from exc

import inspect

import matplotlib.pyplot as plt
import numpy as np

from minialexnet import functional as F
from minialexnet.data import (
    TEN_CROP_ORDER,
    Stats,
    dataset_statistics,
    eval_transform,
    load_dataset,
    ten_crop,
    train_transform,
)
from minialexnet.data.transforms import PCA_PIXEL_SCALE
from minialexnet.models import alexnet_cifar
from minialexnet.tutorial import FAST, check_close, pick

print("fast mode" if FAST else "full mode")

# %% [markdown]
# ## What the paper says [2, 4.1]
#
# **Preprocessing [2].** ImageNet's images are rescaled so that the shorter side is 256
# pixels, and the central 256x256 patch is kept. The only other preprocessing is
# "subtracting the mean activity over the training set from each pixel": the network
# is trained on the (centred) raw RGB values.
#
# **Augmentation [4.1]**, two kinds, both computed on the CPU while the GPU trains on
# the previous batch, "so these data augmentation schemes are, in effect,
# computationally free":
#
# 1. *Translations and reflections.* Train on random 224x224 patches of the 256x256
#    images, and their horizontal reflections: "this increases the size of our training
#    set by a factor of 2048, though the resulting training examples are, of course,
#    highly interdependent. Without this scheme, our network suffers from substantial
#    overfitting." At test time: the four corner patches and the centre patch, and
#    their reflections (ten patches); the softmax outputs are averaged.
# 2. *Altering the intensities of the RGB channels.* Do PCA on the RGB pixel values of
#    the whole training set; to each training image add multiples of the principal
#    components, $[p_1, p_2, p_3]\,[\alpha_1\lambda_1, \alpha_2\lambda_2, \alpha_3\lambda_3]^T$,
#    where $p_i$, $\lambda_i$ are the eigenvectors and eigenvalues of the 3x3 RGB
#    covariance and $\alpha_i \sim N(0, 0.1^2)$ is drawn once for all the pixels of an
#    image each time it is used. It captures that "object identity is invariant to
#    changes in the intensity and color of the illumination", and cut top-1 error by
#    over 1%.
#
# Why 227 and not 224: conv1 (11x11, stride 4, no padding) gives the paper's 55x55 maps
# only from 227 pixels, $(227 - 11)/4 + 1 = 55$, so the library's `alexnet` crops 227.
# The 32x32 network `alexnet_cifar` cannot cut smaller patches out of 32x32 images;
# there the library pads each image by 4 pixels to 40x40 and cuts 32x32 patches.

# %% [markdown]
# ## The data and its statistics
#
# Shapes images at 256x256 (the paper's resolution) and at 32x32 (what `alexnet_cifar`
# trains on), and `dataset_statistics`: the per-pixel mean image and the PCA of the RGB
# covariance, computed once over the training set.

# %%
big = load_dataset("shapes", "train", size=pick(8, 16), image_size=256, seed=0)
small = load_dataset("shapes", "train", size=pick(500, 5000), image_size=32, seed=0)
stats_big = dataset_statistics(big.images)
stats_small = dataset_statistics(small.images)
print("256x256:", big.images.shape, big.images.dtype, " 32x32:", small.images.shape)
print("mean image", stats_small.mean.shape, "eigenvalues", stats_small.eigvals)
print("eigenvectors (columns):\n", np.round(stats_small.eigvecs, 3))

fig, axes = plt.subplots(1, 6, figsize=(15, 2.8))
for ax, i in zip(axes[:4], range(4), strict=True):
    ax.imshow(big.images[i])
    ax.set_title(big.classes[big.labels[i]])
axes[4].imshow(stats_big.mean.astype(np.uint8))
axes[4].set_title(f"mean of {len(big)} (256x256)")
axes[5].imshow(stats_small.mean.astype(np.uint8))
axes[5].set_title(f"mean of {len(small)} (32x32)")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# Over thousands of images the mean is a nearly uniform grey (objects and colours are
# everywhere); over the few 256x256 images drawn here it still shows ghosts of single
# shapes, which will reappear, inverted, in the mean-subtracted pictures below.
#
# ### Your turn: the statistics
#
# Compute them yourself: the mean over the images of each pixel (an $H \times W \times 3$
# image), and the PCA of the $3 \times 3$ covariance $C$ of all the pixels' RGB vectors,
# taken about their mean, $C = P\,\mathrm{diag}(\lambda)\,P^T$, with the eigenvalues
# in descending order and the eigenvectors $p_i$ as the columns of $P$.

# %%
def rgb_pca(images):
    """Mean image (H, W, 3) and the RGB covariance's eigenvalues (3,), descending, and
    eigenvectors (3, 3), one per column, of uint8 images (N, H, W, 3), in float64."""
    # Hint: np.cov(images.reshape(-1, 3), rowvar=False, bias=True); np.linalg.eigh sorts ascending.
    ### BEGIN SOLUTION
    mean_image = images.mean(axis=0, dtype=np.float64)
    cov = np.cov(images.reshape(-1, 3).astype(np.float64), rowvar=False, bias=True)
    eigvals, eigvecs = np.linalg.eigh(cov)
    return mean_image, eigvals[::-1], eigvecs[:, ::-1]
    ### END SOLUTION


# %% [markdown]
# The check, against the library's `dataset_statistics` (which accumulates the sums
# image by image and keeps the results in `float32`): the mean image and the
# eigenvalues agree to `float32` rounding, about $10^{-8}$ (tolerance $10^{-6}$). The
# eigenvectors of nearly equal eigenvalues, as here, are not well defined one by one
# (any rotation within the near-tie is almost as good), so the check asks what must
# hold for any answer: the columns are orthonormal, and $P\,\mathrm{diag}(\lambda)\,P^T$
# gives back the covariance.

# %%
mean_image, eigvals, eigvecs = rgb_pca(small.images)
cov = np.cov(small.images.reshape(-1, 3).astype(np.float64), rowvar=False, bias=True)
check_close("mean image vs dataset_statistics", mean_image, stats_small.mean, 1e-6)
check_close("eigenvalues vs dataset_statistics", eigvals, stats_small.eigvals, 1e-6)
assert eigvals[0] >= eigvals[1] >= eigvals[2], f"not in descending order: {eigvals}"
check_close("your eigenvectors are orthonormal", eigvecs.T @ eigvecs, np.eye(3), 1e-12)
check_close("P diag(lambda) P^T vs the covariance", eigvecs @ np.diag(eigvals) @ eigvecs.T, cov,
            1e-12)

# %% [markdown]
# The three eigenvalues of the shapes data are almost equal: its colours are drawn
# uniformly from the RGB cube, so no colour direction is special, and its eigenvectors
# are close to arbitrary. Natural images are different: R, G and B rise and fall
# together, and the first component (roughly "brightness", all three channels with the
# same sign) dominates. For the pictures of colour augmentation below we therefore also
# use ImageNet statistics: those of Facebook's `fb.resnet.torch` (2016, the training
# code of its ResNet models, not the paper's), computed there from a random subset of
# ImageNet's training images, on pixel values in [0, 1]:
# $\lambda = 0.2175, 0.0188, 0.0045$. The paper publishes no numbers. `Stats` stores
# eigenvalues on the raw 0-255 scale, so they are multiplied by $255^2$.

# %%
imagenet_eigvals = np.array([0.2175, 0.0188, 0.0045]) * 255**2
imagenet_eigvecs = np.array([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]])  # columns: p_1, p_2, p_3 (R, G, B rows)
imagenet_like = Stats(mean=stats_big.mean, eigvals=imagenet_eigvals, eigvecs=imagenet_eigvecs)
for name, st in [("shapes (32x32)", stats_small), ("ImageNet", imagenet_like)]:
    share = st.eigvals / st.eigvals.sum()
    print(f"{name:15s} eigenvalues {np.round(st.eigvals, 0)}  shares {np.round(share, 3)}")

# %% [markdown]
# ## Random crops
#
# `train_transform` does everything of section 4.1 in one vectorised call per batch.
# Read its documentation: what it computes, in which order it draws its random numbers.

# %%
print(inspect.getdoc(train_transform))

# %% [markdown]
# To look at the crops as pictures, give it statistics with a zero mean image: then the
# output is the raw pixels of the patch. (In training the mean image is subtracted; we
# show that further down.) One image, repeated eight times, so each copy gets its own
# random patch; colour and flips off for now.

# %%
zero_mean_big = Stats(mean=np.zeros((256, 256, 3)), eigvals=stats_big.eigvals,
                      eigvecs=stats_big.eigvecs)
one = np.repeat(big.images[:1], 8, axis=0)
seed = 1
crops = train_transform(one, np.random.default_rng(seed), stats=zero_mean_big, crop=227,
                        flip=False, pca_std=0.0)
print("output:", crops.shape, crops.dtype)

# The same generator state gives the same offsets: alpha (N, 3) first, then oy, ox.
rng = np.random.default_rng(seed)
rng.normal(0.0, 0.0, size=(8, 3))
oy, ox = rng.integers(0, 256 - 227 + 1, size=8), rng.integers(0, 256 - 227 + 1, size=8)
print("offsets (row, col):", list(zip(oy.tolist(), ox.tolist(), strict=True)))
by_hand = np.stack([one[i, oy[i] : oy[i] + 227, ox[i] : ox[i] + 227].transpose(2, 0, 1)
                    for i in range(8)]).astype(np.float32)
check_close("crops vs slicing by hand at the same offsets", crops, by_hand, 1e-7)


def as_image(chw):
    """(3, H, W) float on the 0-255 scale -> (H, W, 3) in [0, 1] for imshow."""
    return np.clip(chw.transpose(1, 2, 0) / 255.0, 0, 1)


fig, axes = plt.subplots(2, 5, figsize=(15, 6.2))
axes[0, 0].imshow(big.images[0])
for i in range(8):
    axes[0, 0].add_patch(plt.Rectangle((ox[i], oy[i]), 227, 227, fill=False, lw=1,
                                       color=plt.cm.tab10(i)))
axes[0, 0].set_title("the image, 8 random 227 windows")
for i, ax in enumerate(axes.ravel()[1:9]):
    ax.imshow(as_image(crops[i]))
    ax.set_title(f"offset ({oy[i]}, {ox[i]})", color=plt.cm.tab10(i))
axes[1, 4].axis("off")
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

n_offsets = (256 - 227 + 1) ** 2
print(f"distinct patches per image: {n_offsets} offsets x 2 reflections = {2 * n_offsets}")
print(f"the paper's count for 224: {(256 - 224) ** 2} x 2 = {2 * (256 - 224) ** 2}")

# %% [markdown]
# The paper's 2048 counts $(256 - 224)^2 \times 2$ offsets; strictly there are
# $(256-224+1)^2$, and with 227 it is $30^2 \times 2 = 1800$. Either way, neighbouring
# patches overlap almost entirely: the new examples are "highly interdependent".
#
# ### At 32x32: padding, then crops
#
# A 32x32 image has no room for a smaller crop that keeps the network's 32x32 input.
# The library's training command pads by 4 pixels on each side and cuts 32x32 windows
# out of the 40x40 result (`train.py`: `pad = 4` for `alexnet-cifar`), the standard
# translation augmentation for CIFAR-10. Padding happens *after* the mean is subtracted,
# so the border is 0, i.e. exactly the mean image. Below, what the network really
# receives, shown with 128 added so that grey means "equal to the mean".

# %%
x32 = train_transform(np.repeat(small.images[:1], 8, axis=0), np.random.default_rng(2),
                      stats=stats_small, crop=32, pad=4, flip=False, pca_std=0.0)
fig, axes = plt.subplots(1, 10, figsize=(15, 1.9))
axes[0].imshow(small.images[0])
axes[0].set_title("image")
axes[1].imshow(np.clip(small.images[0] - stats_small.mean + 128, 0, 255).astype(np.uint8))
axes[1].set_title("minus mean")
for ax, x in zip(axes[2:], x32, strict=True):
    ax.imshow(np.clip(x.transpose(1, 2, 0) + 128, 0, 255).astype(np.uint8))
for ax in axes:
    ax.axis("off")
fig.suptitle("32x32 crops of the image padded to 40x40 (what alexnet_cifar trains on, + 128)")
plt.show()
zero_rows = [int((x == 0).all(axis=(0, 2)).sum()) for x in x32]
zero_cols = [int((x == 0).all(axis=(0, 1)).sum()) for x in x32]
print("rows of padding (exactly 0) in each crop:   ", zero_rows)
print("columns of padding (exactly 0) in each crop:", zero_cols)

# %% [markdown]
# ## Horizontal flips
#
# With `flip=True` each image is mirrored with probability 1/2. The flips are drawn
# *after* the offsets, so the same seed gives the same windows with and without flips,
# which makes the flip easy to check:

# %%
n = len(big)
kw = dict(stats=stats_big, crop=227, pca_std=0.0)
plain = train_transform(big.images, np.random.default_rng(3), flip=False, **kw)
flipped = train_transform(big.images, np.random.default_rng(3), flip=True, **kw)
rng = np.random.default_rng(3)
rng.normal(size=(n, 3))
rng.integers(0, 30, size=n)
rng.integers(0, 30, size=n)
was_flipped = rng.random(n) < 0.5
expected = np.where(was_flipped[:, None, None, None], plain[..., ::-1], plain)
check_close("flip=True = the same windows, mirrored where drawn", flipped, expected, 1e-7)
print(f"{was_flipped.sum()} of {n} images flipped")

i, j = int(np.argmax(was_flipped)), int(np.argmin(was_flipped))  # one flipped, one not
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for ax, img, title in [(axes[0], plain[i], f"image {i}, flip=False"),
                       (axes[1], flipped[i], f"image {i}, flip=True: mirrored"),
                       (axes[2], plain[j], f"image {j}, flip=False"),
                       (axes[3], flipped[j], f"image {j}, flip=True: not this time")]:
    ax.imshow(as_image(img + 128))  # mean subtracted; + 128 for display
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# The classes of the shapes dataset were chosen so that a mirror image keeps its label
# (a horizontal-stripes image stays horizontal stripes); for ImageNet's classes the
# same holds, which is what the paper relies on. It would not for, say, digits.

# %% [markdown]
# ## PCA colour augmentation
#
# For image $n$, draw $\alpha_n \sim N(0, 0.1^2)$ (three numbers) and add the same RGB
# vector $s_n = P\,(\alpha_n \odot \lambda)$ to every pixel. One scale matters here.
# $\lambda$ is a variance, so it depends on the unit of the pixel values: the paper's
# formula, taken literally on 0-255 values where $\lambda_1 \approx 5000$-$10^4$, would
# move pixels by hundreds of grey levels and drown the image. The reference
# implementations compute $\lambda$ on pixel values in $[0, 1]$. The library keeps
# $\lambda$ on the raw scale and converts, `PCA_PIXEL_SCALE` $= 255$:
# $s_n = P\,(\alpha_n \odot \lambda / 255)$ in 0-255 units, i.e. a few grey levels.

# %%
print(f"PCA_PIXEL_SCALE = {PCA_PIXEL_SCALE}")
for name, st in [("shapes", stats_small), ("ImageNet", imagenet_like)]:
    literal = 0.1 * st.eigvals[0]
    scaled = 0.1 * st.eigvals[0] / PCA_PIXEL_SCALE
    print(f"{name:8s}: a 1-sigma shift along p_1 is {literal:7.1f} grey levels taken literally, "
          f"{scaled:4.1f} as the library does it")

# %% [markdown]
# ### Your turn: the colour shift
#
# Write the shift of every image of a batch, $s_n = P\,(\alpha_n \odot \lambda / 255)$,
# for the $\alpha$ of all images at once.

# %%
def pca_colour_shift(alpha, eigvals, eigvecs):
    """RGB shifts (N, 3), in 0-255 units, for alpha (N, 3) and the PCA (eigvals (3,), eigvecs
    (3, 3) with one eigenvector per column) of raw 0-255 pixels."""
    # Hint: row n is P @ (alpha[n] * eigvals / PCA_PIXEL_SCALE); all rows at once with one "@".
    ### BEGIN SOLUTION
    return (alpha * eigvals / PCA_PIXEL_SCALE) @ eigvecs.T
    ### END SOLUTION


# %% [markdown]
# The check against `train_transform`: with the same seed the crops and flips are the
# same whatever `pca_std` is (the colours are drawn first), so the difference between
# `pca_std=0.1` and `pca_std=0` is the shift alone, one RGB vector per image. The
# transform works in `float32`: the difference of two images with values near 100,
# each rounded to about $10^{-5}$, gives shifts of a few grey levels to a relative
# error of order $10^{-7}$ to $10^{-6}$ (tolerance $10^{-4}$).

# %%
kw = dict(stats=imagenet_like, crop=227, flip=True)
with_colour = train_transform(big.images, np.random.default_rng(4), pca_std=0.1, **kw)
without = train_transform(big.images, np.random.default_rng(4), pca_std=0.0, **kw)
alpha = np.random.default_rng(4).normal(0.0, 0.1, size=(n, 3))  # the first draws
shift = pca_colour_shift(alpha, imagenet_like.eigvals, imagenet_like.eigvecs)  # (n, 3)
assert shift.shape == (n, 3), f"expected shape {(n, 3)}, got {shift.shape}"
check_close("your shift vs train_transform's, the same at every pixel",
            with_colour - without, np.broadcast_to(shift[:, :, None, None], without.shape), 1e-4)
print("shifts in grey levels (R, G, B) of the first images:\n", np.round(shift[:4], 2))

# %% [markdown]
# With $\sigma = 0.1$ the change is a few grey levels: the pictures would look the same.
# To *see* the directions, the second row exaggerates $\sigma$ twenty-fold (2.0);
# mostly the image gets lighter or darker (the first component), with small shifts
# towards or away from blue-orange and green-magenta (the second and third).

# %%
one = np.repeat(big.images[1:2], 6, axis=0)
stats_show = Stats(mean=np.zeros((256, 256, 3)), eigvals=imagenet_like.eigvals,
                   eigvecs=imagenet_like.eigvecs)
kw = dict(stats=stats_show, crop=256, flip=False)
rows = [train_transform(one, np.random.default_rng(5), pca_std=s, **kw) for s in (0.1, 2.0)]
fig, axes = plt.subplots(2, 6, figsize=(15, 5.4))
for r, (images_row, s) in enumerate(zip(rows, (0.1, 2.0), strict=True)):
    for c in range(6):
        axes[r, c].imshow(as_image(images_row[c]))
        rgb_shift = np.round(images_row[c, :, 0, 0] - one[c, 0, 0], 0)
        axes[r, c].set_title(f"sigma {s}: shift {rgb_shift}", fontsize=8)
        axes[r, c].axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## All of it together, as training sees it
#
# One call per batch: mean image subtracted, colour shift, (padding,) random window,
# flip. Below, a batch of 32x32 training inputs as `alexnet_cifar` receives them, with
# 128 added for display.

# %%
batch = train_transform(small.images[:16], np.random.default_rng(6), stats=stats_small, crop=32,
                        pad=4)
print("batch:", batch.shape, batch.dtype, f"mean {batch.mean():.1f}, std {batch.std():.1f}")
fig, axes = plt.subplots(2, 16, figsize=(15, 2.2))
for c in range(16):
    axes[0, c].imshow(small.images[c])
    axes[1, c].imshow(np.clip(batch[c].transpose(1, 2, 0) + 128, 0, 255).astype(np.uint8))
    axes[0, c].axis("off")
    axes[1, c].axis("off")
axes[0, 0].set_title("stored", fontsize=8, loc="left")
axes[1, 0].set_title("trained on (+128)", fontsize=8, loc="left")
plt.show()

# %% [markdown]
# ## Testing: the centre crop, and ten crops
#
# `eval_transform` cuts the centre window, mean subtracted. `ten_crop` returns the ten
# patches of the paper, in the order `TEN_CROP_ORDER`, with shape (10, N, 3, crop, crop);
# the caller averages the model's softmax outputs over the first axis.

# %%
print(TEN_CROP_ORDER)
tens = ten_crop(big.images, stats=stats_big, crop=227)
centre = eval_transform(big.images, stats=stats_big, crop=227)
print("ten_crop:", tens.shape)
check_close("patch 4 ('centre') = eval_transform", tens[4], centre, 1e-7)
check_close("patches 5-9 = patches 0-4 mirrored", tens[5:], tens[:5, ..., ::-1], 1e-7)
mean_chw = stats_big.mean.transpose(2, 0, 1)
corner = big.images[:, 256 - 227 :, 256 - 227 :].transpose(0, 3, 1, 2) - mean_chw[:, 29:, 29:]
check_close("patch 3 ('bottom-right') by hand", tens[3], corner, 1e-6)

fig, axes = plt.subplots(2, 5, figsize=(14, 6))
for k, ax in enumerate(axes.ravel()):
    ax.imshow(as_image(tens[k, 2] + 128))
    ax.set_title(TEN_CROP_ORDER[k], fontsize=9)
    ax.axis("off")
fig.suptitle("the ten test patches of one image (mean subtracted, + 128)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Averaging is one line. Here with an *untrained* `alexnet_cifar` on 32x32 images, just
# to show the mechanics (`evaluate.evaluate_model(..., ten_crops=True)` does exactly
# this over a whole dataset).
#
# Note what ten crops mean at 32x32: the model's input is the whole image, so the four
# corners and the centre are the same window, and the ten patches are five copies of
# the image and five of its mirror. For `alexnet_cifar`, ten-crop testing therefore
# averages the image and its reflection, and `evaluate_model` computes only those two.

# %%
model = alexnet_cifar(init="scaled", seed=0)
test_images = small.images[:4]
tens32 = ten_crop(test_images, stats=stats_small, crop=32)
check_close("32x32: the five windows are the same", tens32[:5],
            np.broadcast_to(tens32[4], tens32[:5].shape), 1e-7)
probs = np.mean([F.softmax(model.forward(patch, train=False)) for patch in tens32], axis=0)
probs_two = np.mean([F.softmax(model.forward(patch, train=False)) for patch in tens32[[4, 9]]],
                    axis=0)
check_close("32x32: ten-crop average = average of the image and its mirror", probs, probs_two, 1e-6)
print("averaged softmax, shape", probs.shape, "rows sum to", np.round(probs.sum(axis=1), 6))

# %% [markdown]
# ## Exercises
#
# 1. **Scale augmentation.** Later networks (VGG, ResNet) also crop at random *sizes*
#    and resize. Write a transform that picks a window between 160 and 256 pixels wide
#    from the 256x256 images, resizes it to 227 (nearest neighbour with index arrays is
#    enough), and applies the mean image and flips like `train_transform`. Show eight
#    draws.
# 2. **Your own colour statistics.** Point `load_dataset("folder:PATH", "train",
#    image_size=64)` at a folder of your own photos (one subfolder per class) and compute
#    `dataset_statistics`. Divide the eigenvalues by $255^2$ and compare them with
#    ImageNet's 0.2175, 0.0188, 0.0045. Is the first eigenvector close to
#    $(1, 1, 1)/\sqrt{3}$?
# 3. **How much do flips add at test time?** Train for a few minutes (`make train`, or
#    chapter 10), then evaluate `runs/alexnet-cifar-shapes/best.npz` with
#    `evaluate.evaluate_model` with and without `ten_crops=True`. By the note above, what
#    you measure at 32x32 is the gain from averaging with the mirror image.

# %% [markdown]
# ## Summary
#
# - The only preprocessing is subtracting the mean image; the network trains on the
#   centred raw RGB values.
# - Training augmentation: a random window of each image (227 of 256, or 32 of the
#   32x32 image padded to 40), mirrored with probability 1/2, and one PCA colour shift
#   $P\,(\alpha \odot \lambda / 255)$ per image, $\alpha \sim N(0, 0.1^2)$.
# - Testing: the softmax averaged over ten patches, the four corners, the centre and
#   their mirrors; at 32x32 that is the image and its mirror.
# - The colour formula is not scale-free: eigenvalues of 0-255 pixels must be converted,
#   or the shift drowns the image.
#
# ## Questions
#
# 1. How many distinct training patches, reflections included, does one 256x256 image
#    give at 227x227? In what sense is the training set not that many times larger?
# 2. Why is the colour shift the same for every pixel of an image, rather than drawn
#    anew per pixel? What change in the world does it imitate?
# 3. Taken literally on 0-255 pixel values, by how many grey levels would a one-sigma
#    shift along $p_1$ move an ImageNet image? Use the numbers the chapter printed.

