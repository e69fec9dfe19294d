"""Pictures: conv1 filter grids per tower and the confusion matrix (numbers and files)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minialexnet.viz import (
    colour_share,
    confusion_matrix,
    conv1_by_tower,
    filter_grid,
    nearest_neighbours,
    plot_confusion,
    plot_conv1_towers,
    plot_filters,
    plot_neighbours,
    plot_top5,
)


def test_filter_grid_scales_each_filter_to_its_own_range_and_places_tiles_row_major():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 2, 2))
    w[1] *= 1000  # a large filter must not wash out the others
    w[4] = 7.0  # a constant filter is drawn mid-grey
    grid = filter_grid(w, columns=3, gap=1)
    assert grid.shape == (2 * 3 - 1, 3 * 3 - 1, 3)
    for k in range(4):
        r, c = divmod(k, 3)
        tile = grid[3 * r : 3 * r + 2, 3 * c : 3 * c + 2]
        np.testing.assert_allclose(tile, (w[k] - w[k].min()).transpose(1, 2, 0) / np.ptp(w[k]))
        assert tile.min() == 0 and tile.max() == 1
    np.testing.assert_array_equal(grid[3:5, 3:5], 0.5)  # filter 4: constant
    np.testing.assert_array_equal(grid[3:5, 6:8], 1.0)  # no sixth filter: white
    np.testing.assert_array_equal(grid[2, :], 1.0)  # the gap between rows
    with pytest.raises(ValueError, match="RGB"):
        filter_grid(rng.standard_normal((4, 2, 3, 3)))


def test_plot_filters_writes_one_picture_with_a_grid_per_tower(tmp_path):
    rng = np.random.default_rng(1)
    towers = {name: rng.standard_normal((6, 3, 5, 5)) for name in ("tower a", "tower b")}
    out = plot_filters(towers, tmp_path / "filters.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > img.height
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ValueError, match="at least one"):
        plot_filters({}, tmp_path / "none.png")


def test_confusion_matrix_counts_true_against_predicted():
    labels = [0, 0, 1, 2, 2, 2]
    preds = [0, 1, 1, 2, 0, 2]
    m = confusion_matrix(labels, preds, 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert m.sum(axis=1).tolist() == [2, 1, 3]
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0], 3)


def test_plot_confusion_writes_a_png(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 200)
    preds = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 10, 200))
    out = plot_confusion(labels, preds, [f"class {i}" for i in range(10)], tmp_path / "cm.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width >= 300


def test_nearest_neighbours_by_euclidean_distance():
    database = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    query = np.array([[0.1, 0.0], [9.0, 9.0]])
    idx = nearest_neighbours(query, database, k=3)
    np.testing.assert_array_equal(idx, [[0, 2, 1], [3, 1, 2]])
    with pytest.raises(ValueError, match="same D"):
        nearest_neighbours(query, database[:, :1])
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(query, database, k=5)


def test_fc7_features_feed_fc8_and_neighbours_can_be_drawn(tmp_path):
    """model.features(x, "fc7") is exactly what fc8 sees in test mode: fc8 of it = logits."""
    from minialexnet.models import alexnet_cifar

    model = alexnet_cifar(seed=0)
    x = np.random.default_rng(3).standard_normal((5, 3, 32, 32)).astype(np.float32) * 50
    feats = model.features(x, "fc7")
    assert feats.shape == (5, 1024)  # 2 towers x 512
    params = {name: p for name, p, _ in model.parameters()}
    w, b = params["fc8.w"], params["fc8.b"]
    logits = model.forward(x, train=False)
    np.testing.assert_allclose(feats @ w.T + b, logits, rtol=1e-4, atol=1e-4)
    assert model.features(x, "conv1-2").shape == (5, 128, 7, 7)
    with pytest.raises(ValueError, match="stage must be one of"):
        model.features(x, "to_fc6")

    images = (np.random.default_rng(4).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    idx = nearest_neighbours(feats[:2], feats, k=3)
    assert idx[:, 0].tolist() == [0, 1]  # each image is its own nearest neighbour
    out = plot_neighbours(
        images[:2],
        [images[i] for i in idx],
        tmp_path / "nn.png",
        captions=[["q", "a", "b", "c"]] * 2,
    )
    with Image.open(out) as img:
        assert img.format == "PNG"


def test_colour_share_is_0_for_grey_kernels_1_for_opponent_ones_and_2_3_for_random():
    rng = np.random.default_rng(5)
    pattern = rng.standard_normal((4, 1, 7, 7))
    grey = np.repeat(pattern, 3, axis=1)  # three equal planes
    opponent = np.concatenate([pattern, -pattern, 0 * pattern], axis=1)  # red against green
    yellow = np.concatenate([pattern, pattern, 0 * pattern], axis=1)  # one colour, one sign
    np.testing.assert_allclose(colour_share(grey), 0, atol=1e-15)
    np.testing.assert_allclose(colour_share(opponent), 1)
    # (p, p, 0): grey part 2p/3 in each plane, the rest (p/3, p/3, -2p/3): 6/9 of 2 = 1/3
    np.testing.assert_allclose(colour_share(yellow), 1 / 3)
    # a grey kernel plus an opponent one of the same energy: half and half
    mixed = grey / np.sqrt(3) + opponent / np.sqrt(2)
    np.testing.assert_allclose(colour_share(mixed), 0.5)
    # scale-free, per kernel, and a kernel of zeros scores 0
    w = np.concatenate([grey[:1], 1000 * opponent[:1], np.zeros((1, 3, 7, 7))])
    np.testing.assert_allclose(colour_share(w), [0, 1, 0], atol=1e-15)
    random = rng.standard_normal((4000, 3, 5, 5))
    assert abs(colour_share(random).mean() - 2 / 3) < 0.01
    assert colour_share(random).shape == (4000,) and colour_share(random).dtype == np.float64
    with pytest.raises(ValueError, match="RGB"):
        colour_share(rng.standard_normal((4, 2, 3, 3)))


def test_conv1_by_tower_reads_each_towers_kernels_in_order():
    from minialexnet.models import alexnet_cifar

    model = alexnet_cifar(seed=0)
    towers = conv1_by_tower(model)
    state = model.state_dict()
    assert list(towers) == ["tower a", "tower b"]
    np.testing.assert_array_equal(towers["tower a"], state["a.conv1.w"])
    np.testing.assert_array_equal(towers["tower b"], state["b.conv1.w"])
    assert towers["tower a"] is not state["a.conv1.w"]  # a copy

    class NoConv1:
        def parameters(self):
            return [("fc.w", np.zeros((2, 2)), None)]

    with pytest.raises(ValueError, match="no parameter 'conv1.w'"):
        conv1_by_tower(NoConv1())


def test_plot_conv1_towers_stacks_the_towers_like_figure_3(tmp_path):
    """The paper's network: 48 kernels of 11x11x3 per tower, tower a above tower b."""
    rng = np.random.default_rng(6)
    pattern = rng.standard_normal((48, 1, 11, 11))
    towers = {
        "tower a": np.repeat(pattern, 3, axis=1),  # grey
        "tower b": rng.standard_normal((48, 3, 11, 11)),
    }
    out = plot_conv1_towers(towers, tmp_path / "fig3.png", columns=16)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > img.height  # two blocks of 3 rows of 16
        pixels = np.asarray(img.convert("RGB")).astype(int)
    # the upper half holds the grey tower: its kernels' pixels have R = G = B
    upper, lower = pixels[: len(pixels) // 2], pixels[len(pixels) // 2 :]
    spread = [np.ptp(part, axis=2).max() for part in (upper, lower)]
    assert spread[0] <= 2 < spread[1], spread  # (title text is black: grey as well)
    assert not list(tmp_path.glob("*.tmp*"))

    from minialexnet.models import alexnet_cifar

    path = plot_conv1_towers(alexnet_cifar(seed=0), tmp_path / "model.png")  # from a model
    with Image.open(path) as img:
        assert img.format == "PNG"
    with pytest.raises(ValueError, match="at least one"):
        plot_conv1_towers({}, tmp_path / "none.png")


def test_plot_top5_draws_a_panel_per_image_with_an_optional_title(tmp_path):
    images = [np.full((40, 40, 3), c, np.uint8) for c in (0, 128)]
    top5 = [[(f"class {j}", 0.5 / (j + 1)) for j in range(5)]] * 2
    plain = plot_top5(images, ["a", "b"], top5, tmp_path / "plain.png")
    titled = plot_top5(images, ["a", "b"], top5, tmp_path / "titled.png", title="RANDOM")
    with Image.open(plain) as a, Image.open(titled) as b:
        assert a.format == b.format == "PNG" and a.size == b.size
        assert not np.array_equal(np.asarray(a), np.asarray(b))  # the title is drawn
