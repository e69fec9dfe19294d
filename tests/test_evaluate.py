"""evaluate_model's ten-crop: the average of the ten patches' softmax, computed as cheaply
as the patches allow (two passes when the images are exactly the input size)."""

from __future__ import annotations

import numpy as np
import pytest

from minialexnet import functional as F
from minialexnet.data import dataset_statistics, load_dataset, ten_crop
from minialexnet.evaluate import evaluate_model, topk_correct
from minialexnet.models import alexnet_cifar


@pytest.mark.parametrize("image_size, passes", [(32, 2), (36, 10)])
def test_ten_crop_equals_the_average_of_ten_patches_with_as_few_passes_as_possible(
    image_size, passes
):
    data = load_dataset("shapes", "val", size=24, image_size=image_size, seed=3)
    stats = dataset_statistics(data.images)
    model = alexnet_cifar(num_classes=len(data.classes), init="scaled", seed=1)
    calls = []
    forward = model.forward

    def counting_forward(x, train=True):
        calls.append(len(x))
        return forward(x, train=train)

    model.forward = counting_forward
    result = evaluate_model(
        model, data, stats, batch_size=8, ten_crops=True, progress=False, keep_predictions=True
    )
    assert len(calls) == passes * 3  # 3 batches of 8
    model.forward = forward
    patches = ten_crop(data.images, stats=stats, crop=32)  # (10, N, 3, 32, 32)
    probs = np.mean([F.softmax(model.forward(p, train=False)) for p in patches], axis=0)
    y = data.labels
    assert np.array_equal(result["predictions"], probs.argmax(axis=1))
    assert result["top1_err"] == 1 - topk_correct(probs, y, 1) / len(y)
    assert result["top5_err"] == 1 - topk_correct(probs, y, 5) / len(y)
    loss = float(-np.log(probs[np.arange(len(y)), y]).mean())
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
