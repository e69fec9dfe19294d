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


def test_predict_reads_16_bit_grey_without_turning_it_white(tmp_path):
    from PIL import Image

    from minialexnet.predict import load_image

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    x = load_image(tmp_path / "grey16.png", 32)
    assert x.min() < 10 and x.max() > 245 and 100 < x.mean() < 155  # a ramp, not all 255


def test_predict_says_when_a_photo_is_much_smaller_than_the_network_wants(tmp_path, capsys):
    from PIL import Image

    from minialexnet.checkpoint import pack, save_checkpoint
    from minialexnet.data.transforms import Stats
    from minialexnet.models import cnn4
    from minialexnet.predict import main as predict

    model = cnn4(seed=0)
    stats = Stats(np.zeros((32, 32, 3)), np.zeros(3), np.eye(3))
    meta = {"config": model.config, "classes": [f"c{i}" for i in range(10)], "run": {}}
    arrays = {**pack("model", model.state_dict()), **pack("data", stats.to_arrays())}
    save_checkpoint(tmp_path / "c.npz", arrays, meta)
    Image.new("RGB", (8, 10), (9, 9, 9)).save(tmp_path / "tiny.png")
    Image.new("RGB", (40, 50), (9, 9, 9)).save(tmp_path / "fine.png")
    assert predict([str(tmp_path / "c.npz"), str(tmp_path / "tiny.png"),
                    str(tmp_path / "fine.png"), "--device", "cpu"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "tiny.png is 8x10, enlarged to 32" in err and "fine.png" not in err
