"""Pictures: conv1 filter grids per tower and the confusion matrix (numbers and files)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from minialexnet.viz import (
    confusion_matrix,
    filter_grid,
    nearest_neighbours,
    plot_confusion,
    plot_filters,
    plot_neighbours,
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
    assert not list(tmp_path.glob("*.tmp.png"))
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
