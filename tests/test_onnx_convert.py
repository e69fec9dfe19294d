"""ONNX import: AlexNet files as minialexnet checkpoints (issue 17).

Every ONNX file is built here with ``onnx.helper`` (minialexnet.onnx_zoo): no network.
The reference is onnxruntime running the same file on the same inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs onnx: pip install -e '.[test]'")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e '.[test]'")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from minialexnet import onnx_zoo  # noqa: E402
from minialexnet.checkpoint import load_checkpoint  # noqa: E402
from minialexnet.convert import CONVENTIONS, ConvertError, convert, main  # noqa: E402
from minialexnet.data.imagenet import imagenet_classes  # noqa: E402
from minialexnet.evaluate import load_model  # noqa: E402
from minialexnet.layers import LRN  # noqa: E402
from minialexnet.towers import JoinedLRN  # noqa: E402

S = 224


def _logits_name(model) -> str:
    """The classifier's output (before a Softmax), added to the graph's outputs."""
    last = [n for n in model.graph.node if n.op_type in ("Gemm", "Add", "MatMul")][-1].output[0]
    if last not in [o.name for o in model.graph.output]:
        model.graph.output.append(helper.make_tensor_value_info(last, TensorProto.FLOAT, None))
    return last


def _runtime(model, x: np.ndarray) -> np.ndarray:
    name = _logits_name(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], {model.graph.input[0].name: x})[0]


def _their_input(rgb: np.ndarray, convention: str) -> np.ndarray:
    """What the file's own convention feeds it for RGB 0-255 images (N, H, W, 3)."""
    c = CONVENTIONS[convention]
    order = ["RGB".index(ch) for ch in c.order]
    u = (rgb[..., order] - np.array(c.mean)) / np.array(c.std)
    return np.ascontiguousarray(u.transpose(0, 3, 1, 2), dtype=np.float32)


def _compare(tmp_path: Path, model, convention: str, batch: int = 2) -> dict:
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    meta = convert(path, tmp_path / "model.npz")
    ours, stats, _ = load_model(tmp_path / "model.npz")
    rgb = np.random.default_rng(7).uniform(0, 255, (batch, S, S, 3))
    z = (rgb - stats.mean[:S, :S]).transpose(0, 3, 1, 2).astype(np.float32)
    got = ours.forward(np.ascontiguousarray(z), train=False)
    want = _runtime(model, _their_input(rgb, convention))
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err < 1e-4, f"relative error {err:.2e} against onnxruntime"
    assert (got.argmax(1) == want.argmax(1)).all()
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("ceil", [False, True], ids=["end-pads", "ceil-mode"])
def test_bvlc_alexnet_layout_matches_onnxruntime(tmp_path, ceil):
    meta = _compare(tmp_path, onnx_zoo.bvlc_alexnet(seed=3, ceil=ceil), "caffe")
    config = meta["config"]
    assert config["arch"] == "alexnet" and config["input_size"] == 224
    assert config["lrn_across"] and config["pool_ceil"]
    assert config["lrn_constants"] == [5, 1.0, 2e-5, 0.75]  # Caffe's alpha 1e-4 over n = 5
    assert meta["source"]["convention"] == "caffe" and meta["source"]["ended_in_softmax"]
    assert meta["classes"] == imagenet_classes() and meta["classes"][281] == "tabby"


@pytest.mark.slow
def test_bvlc_becomes_the_two_tower_model_with_groups_split_48_48(tmp_path):
    model = onnx_zoo.bvlc_alexnet(seed=4)
    onnx.save(model, tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "m.npz", convention="minialexnet")  # no folding
    arrays, _ = load_checkpoint(tmp_path / "m.npz")
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w1 = weights["conv1_w_0"]
    assert arrays["model/a.conv1.w"].shape == (48, 3, 11, 11)
    np.testing.assert_array_equal(arrays["model/a.conv1.w"], w1[:48])
    np.testing.assert_array_equal(arrays["model/b.conv1.w"], w1[48:])
    np.testing.assert_array_equal(arrays["model/b.conv2.w"], weights["conv2_w_0"][128:])
    np.testing.assert_array_equal(arrays["model/a.conv3.w"], weights["conv3_w_0"][:192])
    np.testing.assert_array_equal(arrays["model/b.fc7.w"], weights["fc7_w_0"][2048:])
    np.testing.assert_array_equal(arrays["model/fc8.w"], weights["fc8_w_0"])
    ours, _, _ = load_model(tmp_path / "m.npz")
    assert ours.num_parameters() == 60_965_224
    assert sum(isinstance(s, JoinedLRN) for _, s in ours.stages) == 2


@pytest.mark.slow
def test_torchvision_layout_matches_onnxruntime(tmp_path):
    meta = _compare(tmp_path, onnx_zoo.torchvision_alexnet(seed=5), "torchvision")
    assert meta["config"]["arch"] == "alexnet-owt"
    assert meta["source"]["convention"] == "torchvision"
    ours, _, _ = load_model(tmp_path / "model.npz")
    assert ours.num_parameters() == 61_100_840


def test_caffe_convention_folds_bgr_and_mean_into_conv1(tmp_path):
    """z = RGB - mean_rgb into the folded conv1 equals BGR - mean_bgr into the original."""
    model = onnx_zoo.bvlc_alexnet(seed=6)
    onnx.save(model, tmp_path / "m.onnx")
    convert(tmp_path / "m.onnx", tmp_path / "caffe.npz", convention="caffe")
    convert(tmp_path / "m.onnx", tmp_path / "raw.npz", convention="minialexnet")
    folded, _ = load_checkpoint(tmp_path / "caffe.npz")
    raw, _ = load_checkpoint(tmp_path / "raw.npz")
    np.testing.assert_array_equal(folded["model/a.conv1.w"], raw["model/a.conv1.w"][:, ::-1])
    mean = folded["data/mean"]
    assert mean.shape == (256, 256, 3)
    np.testing.assert_allclose(mean[0, 0], CONVENTIONS["caffe"].mean[::-1], rtol=1e-6)


def test_lrn_conversion_alone_matches_onnxruntime():
    """ONNX divides alpha by the size; this library's alpha multiplies the plain sum."""
    from minialexnet.onnx_chain import _lrn

    node = helper.make_node("LRN", ["x"], ["y"], size=5, alpha=3e-3, beta=0.8, bias=1.5)
    graph = helper.make_graph(
        [node],
        "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 11, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 11, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = np.random.default_rng(0).normal(0, 20, (2, 11, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(["y"], {"x": x})[0]
    n, k, alpha, beta = _lrn(node, (11, 4, 4)).attrs["constants"]
    assert (n, k, beta) == (5, 1.5, 0.8) and alpha == pytest.approx(3e-3 / 5)
    got = LRN(n, k, alpha, beta).forward(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _write(tmp_path: Path, model) -> Path:
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    return path


def _tiny(nodes, inits, shape=(1, 3, 32, 32)) -> object:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_not_onnx_is_a_clear_error_exit_2_nothing_written(tmp_path, capsys):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model")
    out = tmp_path / "out.npz"
    assert main([str(path), str(out)]) == 2
    assert "is not an ONNX model" in capsys.readouterr().err
    assert not out.exists()


def test_unsupported_node_is_named(tmp_path, capsys):
    w = np.zeros((4, 3, 3, 3), np.float32)
    model = _tiny(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv_a", pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn"),
        ],
        {"w": w, **{k: np.ones(4, np.float32) for k in "sbmv"}},
    )
    out = tmp_path / "out.npz"
    assert main([str(_write(tmp_path, model)), str(out)]) == 2
    err = capsys.readouterr().err
    assert "'bn' (BatchNormalization)" in err and "not part of an AlexNet" in err
    assert not out.exists()


def test_a_shape_that_is_not_alexnet_is_refused(tmp_path, capsys):
    """A bvlc layout whose conv1 has 64 kernels matches no model here: say which layer."""
    model = onnx_zoo.bvlc_alexnet(seed=0)
    inits = {t.name: t for t in model.graph.initializer}
    for name, shape in (("conv1_w_0", (64, 3, 11, 11)), ("conv1_b_0", (64,))):
        inits[name].CopyFrom(numpy_helper.from_array(np.zeros(shape, np.float32), name))
    conv2 = inits["conv2_w_0"]
    conv2.CopyFrom(numpy_helper.from_array(np.zeros((256, 32, 5, 5), np.float32), "conv2_w_0"))
    out = tmp_path / "out.npz"
    assert main([str(_write(tmp_path, model)), str(out)]) == 2
    err = capsys.readouterr().err
    assert "not an AlexNet this library builds" in err and "conv1" in err
    assert not out.exists()


def test_even_lrn_size_is_refused(tmp_path):
    model = _tiny([helper.make_node("LRN", ["x"], ["y"], name="n4", size=4)], {})
    with pytest.raises(ConvertError, match="'n4'.*even"):
        convert(_write(tmp_path, model), tmp_path / "o.npz")


def test_branching_graph_is_refused(tmp_path):
    model = _tiny(
        [
            helper.make_node("Relu", ["x"], ["r1"], name="r1"),
            helper.make_node("Relu", ["x"], ["r2"], name="r2"),
            helper.make_node("Add", ["r1", "r2"], ["y"], name="add"),
        ],
        {},
    )
    with pytest.raises(ConvertError, match="feeds 2 nodes"):
        convert(_write(tmp_path, model), tmp_path / "o.npz")


def test_cli_success_prints_what_it_wrote(tmp_path, capsys):
    path = tmp_path / "tv.onnx"
    onnx.save(onnx_zoo.torchvision_alexnet(seed=1), path)
    out = tmp_path / "tv.npz"
    assert main([str(path), str(out)]) == 0
    said = capsys.readouterr().out
    assert "alexnet-owt" in said and "torchvision" in said and "predict" in said
    _, meta = load_checkpoint(out)
    assert meta["source"]["file"] == "tv.onnx" and len(meta["source"]["sha256"]) == 64
    assert json.dumps(meta)  # plain JSON


def test_imagenet_classes_are_the_synset_order():
    names = imagenet_classes()
    assert len(names) == len(set(names)) == 1000
    assert names[0] == "tench" and names[281] == "tabby" and names[999] == "toilet tissue"


@pytest.mark.parametrize("raw_input", [False, True], ids=["logits-only", "with-mean-image"])
def test_export_then_import_is_the_identity_on_parameters(tmp_path, raw_input):
    from minialexnet.data import dataset_statistics
    from minialexnet.export import export_onnx
    from minialexnet.models import alexnet_cifar

    model = alexnet_cifar(seed=8, init="scaled", lrn_across=True, pool_ceil=True)
    images = np.random.default_rng(1).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    stats = dataset_statistics(images)
    names = [f"kind {i}" for i in range(10)]
    export_onnx(model, tmp_path / "m.onnx", stats=stats, preprocess=raw_input, classes=names)
    meta = convert(tmp_path / "m.onnx", tmp_path / "m.npz")
    assert meta["source"]["convention"] == "minialexnet" and meta["classes"] == names
    assert meta["config"] == model.config
    again, again_stats, _ = load_model(tmp_path / "m.npz")
    want = model.state_dict()
    for name, value in again.state_dict().items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)
    if raw_input:  # the mean image travelled in the graph's Sub node
        np.testing.assert_allclose(again_stats.mean, stats.mean, rtol=1e-6)
    else:
        assert not again_stats.mean.any()


# --- what a student meets first (review of 2026-12-07) ------------------------------------


@pytest.fixture(scope="module")
def bvlc_checkpoint(tmp_path_factory) -> Path:
    """The zoo layout's random stand-in, converted once for the tests below."""
    folder = tmp_path_factory.mktemp("bvlc")
    onnx.save(onnx_zoo.bvlc_alexnet(seed=11), folder / "bvlcalexnet-8.onnx")
    out = folder / "cache" / "minialexnet" / "bvlc_alexnet.npz"  # a folder not made yet
    assert main([str(folder / "bvlcalexnet-8.onnx"), str(out)]) == 0
    return out


@pytest.mark.slow
def test_convert_makes_the_output_folder_and_records_wordnet_ids(bvlc_checkpoint):
    _, meta = load_checkpoint(bvlc_checkpoint)
    assert meta["class_ids"][281] == "n02123045" and len(meta["class_ids"]) == 1000
    assert meta["run"]["image_size"] == 256 and meta["notes"] == []


def test_convert_refuses_to_overwrite_its_own_input(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(onnx_zoo.torchvision_alexnet(seed=0), path)
    before = path.read_bytes()
    assert main([str(path), str(tmp_path / "." / "m.onnx")]) == 2
    assert "is the ONNX file itself" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_truncated_download_says_to_check_the_checksum(tmp_path, capsys):
    path = tmp_path / "bvlcalexnet-8.onnx"
    onnx.save(onnx_zoo.torchvision_alexnet(seed=0), path)
    path.write_bytes(path.read_bytes()[:100_000])
    assert main([str(path), str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "not an ONNX model" in err and "sha256" in err and "docs/onnx.md" in err


def test_an_onnx_file_given_to_predict_says_to_convert_it_first(tmp_path, capsys):
    from minialexnet.predict import main as predict

    path = tmp_path / "m.onnx"
    onnx.save(onnx_zoo.torchvision_alexnet(seed=0), path)
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    assert predict([str(path), str(image), "--device", "cpu"]) == 2
    assert "python -m minialexnet.convert" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_reads_an_imagenet_folder_named_by_wordnet_id(bvlc_checkpoint, tmp_path, capsys):
    from PIL import Image

    from minialexnet.data.imagenet import imagenet_wordnet
    from minialexnet.evaluate import main as evaluate

    root = tmp_path / "imagenet" / "val"  # ImageNet's layout: val/ alone, one folder a class
    rng = np.random.default_rng(0)
    for i, (wnid, _) in enumerate(imagenet_wordnet()):
        (root / wnid).mkdir(parents=True)
        if i % 100 == 0:  # a few images; every class folder exists
            pixels = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / wnid / "x.jpg")
    assert evaluate([str(bvlc_checkpoint), "--device", "cpu", "--quiet"]) == 2
    assert "--dataset folder:PATH" in capsys.readouterr().err  # converted: no data of its own
    argv = [str(bvlc_checkpoint), "--dataset", f"folder:{root.parent}", "--device", "cpu",
            "--quiet", "--json", str(tmp_path / "e.json")]  # fmt: skip
    assert evaluate(argv) == 0, capsys.readouterr().err
    assert "top-1 error" in capsys.readouterr().out


@pytest.mark.slow
def test_export_then_convert_keeps_predicts_answers(bvlc_checkpoint, tmp_path, capsys):
    """The resize before the crop (256 for 224) travels in the file: predict answers the same."""
    from PIL import Image

    from minialexnet.export import main as export
    from minialexnet.predict import main as predict

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (300, 400, 3), np.uint8)).save(photo)
    answers = []
    for raw in (["--raw-input"],):
        assert export([str(bvlc_checkpoint), str(tmp_path / "b.onnx"), *raw]) == 0
        assert main([str(tmp_path / "b.onnx"), str(tmp_path / "back.npz")]) == 0
    capsys.readouterr()
    for ckpt in (bvlc_checkpoint, tmp_path / "back.npz"):
        assert predict([str(ckpt), str(photo), "--device", "cpu"]) == 0
        answers.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert answers[0] == answers[1]
    _, meta = load_checkpoint(tmp_path / "back.npz")
    assert meta["run"]["image_size"] == 256
