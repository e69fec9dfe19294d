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


def test_predict_turns_a_phone_photo_upright_and_puts_transparency_on_white(tmp_path):
    from PIL import Image

    from minialexnet.predict import load_image

    tall = Image.new("RGB", (40, 20), (0, 0, 0))
    tall.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    tall.save(tmp_path / "phone.jpg", exif=exif)
    upright = load_image(tmp_path / "phone.jpg", 20).astype(int)
    assert upright.shape == (20, 20, 3)
    # viewed upright the red half is on top (stored, it is on the left)
    assert upright[2, 10, 0] > 200 and upright[17, 10, 0] < 60
    assert upright[5, 2, 0] > 200 and upright[5, 17, 0] > 200  # left and right alike
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png", 10).min() == 255  # transparent -> white
