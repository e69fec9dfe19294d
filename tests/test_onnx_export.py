"""ONNX export (minialexnet.export): onnxruntime computes what ``model.forward`` computes.

Every kind of network the library builds (two towers or one, on one device or two, LRN
within each tower or across both, ceil-mode pooling, tanh, float64, cnn4's LRN after
the pooling) is exported and run in onnxruntime on the same images; the logits agree
to float32 rounding (relative error < 1e-4 of the largest logit). The LRN, whose ONNX
alpha is n times ours and whose ONNX window differs for an even n, is compared alone.
The command line is run on a checkpoint in the format train writes, and on bad input
(exit status 2, one line, nothing written). The paper's 227x227 AlexNet is exported
once (about 10 s); the rest of the file takes a few seconds.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_gpu

onnx = pytest.importorskip("onnx", reason="needs onnx: pip install -e '.[test]'")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e '.[test]'")

from minialexnet import export  # noqa: E402 -- after the importorskips
from minialexnet.backend import to_numpy  # noqa: E402
from minialexnet.checkpoint import pack, save_checkpoint  # noqa: E402
from minialexnet.data import Stats, eval_transform  # noqa: E402
from minialexnet.export import ExportError, export_onnx, layers_to_onnx, onnx_model  # noqa: E402
from minialexnet.layers import LRN, Dropout, MaxPool2d  # noqa: E402
from minialexnet.models import alexnet, alexnet_cifar, alexnet_owt, cnn4  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAFFE = {"lrn_across": True, "pool_ceil": True, "lrn_constants": (5, 1.0, 2e-5, 0.75)}


def run_onnx(source, x):
    """onnxruntime's output for ``x`` (a ModelProto or a file path), on the CPU."""
    model = source.SerializeToString() if isinstance(source, onnx.ModelProto) else str(source)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def images_for(model, n=3, seed=0):
    """Random images on the library's input scale (raw pixels minus the mean: std ~64)."""
    size = model.input_size
    return np.random.default_rng(seed).normal(0, 64, (n, 3, size, size)).astype(np.float32)


def assert_same(got, want):
    """float32 output, the same shape, relative error < 1e-4 of the largest |value|."""
    want = np.asarray(want, dtype=np.float64)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    scale = np.abs(want).max()
    assert scale > 0
    assert np.abs(got - want).max() < 1e-4 * scale


def attributes(node):
    """A node's attributes as ``{name: value}``."""
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def stats_for(size, seed=0):
    """Statistics with a random (size, size, 3) mean image on the 0-255 scale."""
    rng = np.random.default_rng(seed)
    return Stats(rng.uniform(60, 200, (size, size, 3)), np.ones(3), np.eye(3))


MODELS = {
    "alexnet-cifar": lambda: alexnet_cifar(init="scaled", seed=1),
    "alexnet-cifar-merged": lambda: alexnet_cifar(init="scaled", seed=1, merged=True),
    "alexnet-cifar-two-devices": lambda: alexnet_cifar(
        init="scaled", seed=1, devices=["cpu:0", "cpu:1"]
    ),
    "alexnet-cifar-one-tower": lambda: alexnet_cifar(init="scaled", seed=1, towers=1),
    "alexnet-cifar-tanh": lambda: alexnet_cifar(init="scaled", seed=1, activation="tanh"),
    "alexnet-cifar-pool2-no-lrn": lambda: alexnet_cifar(
        init="scaled", seed=1, pool=(2, 2), lrn=False
    ),
    # Caffe's BVLC layout (LRN across the towers, ceil-mode pooling, its LRN constants) at
    # a small input, so that it is cheap: 95 -> conv1 22 -> pool1 11 (floor mode: 10)
    "alexnet-caffe-layout": lambda: alexnet(
        num_classes=10, init="scaled", seed=1, input_size=95, **CAFFE
    ),
    "alexnet-cifar-caffe-layout": lambda: alexnet_cifar(
        init="scaled", seed=1, input_size=30, **CAFFE
    ),
    "alexnet-owt": lambda: alexnet_owt(num_classes=10, seed=1, input_size=95),
    "cnn4": lambda: cnn4(init="scaled", seed=1),
    "cnn4-tanh-float64": lambda: cnn4(init="scaled", seed=1, activation="tanh", dtype="float64"),
}


@pytest.mark.parametrize("kind", MODELS)
def test_onnxruntime_computes_the_models_logits(kind):
    model = MODELS[kind]()
    x = images_for(model)
    assert_same(run_onnx(onnx_model(model), x), model.forward(x, train=False))


@needs_gpu
def test_a_model_on_a_gpu_is_exported_from_a_host_copy():
    """One GPU: the towers run merged, on CuPy arrays; the export rebuilds it on the CPU."""
    model = alexnet_cifar(init="scaled", seed=1, devices=["gpu:0"])
    x = images_for(model)
    assert_same(run_onnx(onnx_model(model), x), to_numpy(model.forward(x, train=False)))


@pytest.mark.slow
def test_the_papers_alexnet_exports_to_a_file_that_computes_its_logits(tmp_path):
    """The 227x227 two-tower network (60M parameters), written and read back."""
    model = alexnet(num_classes=10, init="scaled", seed=3)
    path = tmp_path / "alexnet.onnx"
    export_onnx(model, path)
    x = images_for(model, n=2)
    assert_same(run_onnx(path, x), model.forward(x, train=False))
    proto = onnx.load(path)
    nodes = {node.name: node for node in proto.graph.node}
    groups = {n: attributes(node)["group"] for n, node in nodes.items() if node.op_type == "Conv"}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert [nodes[f"norm{i}"].op_type for i in (1, 2)] == ["Concat", "Concat"]  # Split, 2 LRNs


def test_the_graph_names_its_layers_and_holds_float32(tmp_path):
    model = alexnet_cifar(init="scaled", seed=1, dtype="float64")
    proto = export_onnx(model, tmp_path / "net.onnx", classes=[f"c{i}" for i in range(10)])
    graph = proto.graph
    ops = [(node.name, node.op_type) for node in graph.node]
    assert ops[:4] == [("conv1", "Conv"), ("relu1", "Relu"), ("norm1.split", "Split"),
                       ("norm1.lrn0", "LRN")]  # fmt: skip
    assert ops[-1] == ("fc8", "Gemm")
    assert "Dropout" not in {op for _, op in ops}
    inits = {t.name: t for t in graph.initializer}
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        assert f"{layer}.w" in inits and f"{layer}.b" in inits
    kinds = {t.data_type for name, t in inits.items() if not name.endswith(".sizes")}
    assert kinds == {onnx.TensorProto.FLOAT}  # the float64 model's weights, as float32
    assert list(onnx.numpy_helper.to_array(inits["norm1.sizes"])) == [32, 32]
    # ONNX divides alpha by the window size: 5 * 1e-4 here
    lrn = attributes(graph.node[3])
    assert lrn == pytest.approx({"size": 5, "alpha": 5e-4, "beta": 0.75, "bias": 2.0})
    assert attributes(graph.node[0]) == {"kernel_shape": [5, 5], "strides": [1, 1],
                                         "pads": [2, 2, 2, 2], "group": 1}  # fmt: skip
    assert attributes(graph.node[-1]) == {"transB": 1}
    (image,), (logits,) = graph.input, graph.output
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert (image.name, dims) == ("images", ["N", 3, 32, 32])
    dims = [d.dim_param or d.dim_value for d in logits.type.tensor_type.shape.dim]
    assert (logits.name, dims) == ("logits", ["N", 10])
    assert "no softmax" in graph.doc_string and "no softmax" in proto.doc_string
    assert proto.ir_version == 7  # the oldest that carries opset 13


def test_metadata_round_trips_config_classes_and_the_input_convention(tmp_path):
    model = cnn4(num_classes=3, init="scaled", seed=1, activation="tanh")
    export_onnx(model, tmp_path / "cnn4.onnx", classes=["cat", "dog", "ship"])
    props = {p.key: p.value for p in onnx.load(tmp_path / "cnn4.onnx").metadata_props}
    assert json.loads(props["minialexnet.config"]) == model.config
    assert json.loads(props["minialexnet.classes"]) == ["cat", "dog", "ship"]
    assert "minus the training set's mean image" in props["minialexnet.input"]
    without = {p.key for p in onnx_model(model).metadata_props}
    assert without == {"minialexnet.config", "minialexnet.input"}
    with pytest.raises(ExportError, match="3 names"):
        onnx_model(model, classes=["cat", "dog"])


@pytest.mark.parametrize("opset", [10, 11, 13, 18, 21])
def test_every_supported_opset_gives_the_same_logits(opset):
    model = alexnet_cifar(init="scaled", seed=2, pool_ceil=True, input_size=30)
    proto = onnx_model(model, opset=opset)
    assert proto.opset_import[0].version == opset
    x = images_for(model, n=2)
    assert_same(run_onnx(proto, x), model.forward(x, train=False))


@pytest.mark.parametrize("opset", [9, onnx.defs.onnx_opset_version() + 1, "13", 13.0, True])
def test_an_unsupported_opset_is_refused(opset):
    with pytest.raises(ExportError, match="opset"):
        onnx_model(cnn4(), opset=opset)


@pytest.mark.parametrize(
    "n, groups, k, alpha, beta", [(5, 2, 2.0, 1e-4, 0.75), (3, 3, 1.0, 2e-5, 0.75),
                                  (5, 1, 2.0, 1e-4, 0.75), (1, 2, 0.5, 1e-3, 0.5)]
)  # fmt: skip
def test_lrn_alone_equals_our_lrn_layer(n, groups, k, alpha, beta):
    layer = LRN(n, k, alpha, beta, groups=groups)
    x = np.random.default_rng(n + groups).normal(0, 100, (2, 12, 5, 5)).astype(np.float32)
    want = layer.forward(x, train=False)
    assert np.abs(want - x / k**beta).max() > 0.1 * np.abs(want).max()  # the sums matter
    proto = layers_to_onnx([("norm", layer)], x.shape[1:])
    assert_same(run_onnx(proto, x), want)
    ops = [node.op_type for node in proto.graph.node]
    assert ops == (["LRN"] if groups == 1 else ["Split", *["LRN"] * groups, "Concat"])


def test_lrn_of_an_even_window_is_refused_naming_the_layer(tmp_path):
    """ONNX's even window is one channel later than ours: refused, and nothing written."""
    with pytest.raises(ExportError, match="norm: LRN with an even window"):
        layers_to_onnx([("norm", LRN(4))], (8, 3, 3))
    model = alexnet_cifar(lrn_constants=(4, 2.0, 1e-4, 0.75))
    old = tmp_path / "old.onnx"
    old.write_bytes(b"an earlier export")
    with pytest.raises(ExportError, match="norm1: LRN with an even window .n=4."):
        export_onnx(model, old)
    assert old.read_bytes() == b"an earlier export"
    assert sorted(tmp_path.iterdir()) == [old]  # no temporary file left


def test_paper_mode_dropout_scales_at_test_time():
    layer = Dropout(0.4, mode="paper")
    x = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
    assert_same(run_onnx(layers_to_onnx([("drop", layer)], (7,)), x), layer.forward(x, False))


def test_ceil_mode_pooling_whose_last_window_starts_past_the_edge_is_refused():
    """Window 1, stride 2 over 4 pixels: ceil mode drops the window at 4 (ours, PyTorch's)
    where ONNX's formula keeps it; such pooling is refused, the usual ones export."""
    with pytest.raises(ExportError, match="pool: ceil-mode pooling of 4 pixels"):
        layers_to_onnx([("pool", MaxPool2d(1, 2, ceil_mode=True))], (2, 4, 4))
    layer = MaxPool2d(2, 2, ceil_mode=True)
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5)).astype(np.float32)
    assert_same(run_onnx(layers_to_onnx([("pool", layer)], (3, 5, 5)), x), layer.forward(x))


def test_non_finite_weights_are_refused():
    model = cnn4(init="scaled")
    next(p for name, p, _ in model.parameters() if name == "a.conv2.w")[0, 0, 0, 0] = np.nan
    with pytest.raises(ExportError, match="conv2.w: holds NaN"):
        onnx_model(model)


def test_preprocess_takes_raw_pixels_as_eval_transform_does():
    model = alexnet_cifar(init="scaled", seed=4)
    stats = stats_for(36)
    raw = np.random.default_rng(5).integers(0, 256, (3, 36, 36, 3), dtype=np.uint8)
    want = model.forward(eval_transform(raw, stats=stats, crop=32), train=False)
    proto = onnx_model(model, stats=stats, preprocess=True)
    assert proto.graph.node[0].op_type == "Sub"
    crop = raw[:, 2:34, 2:34].transpose(0, 3, 1, 2).astype(np.float32)  # centre, channels first
    assert_same(run_onnx(proto, crop), want)
    props = {p.key: p.value for p in proto.metadata_props}
    assert "raw 0-255 pixels" in props["minialexnet.input"]
    with pytest.raises(ExportError, match="needs the training set's statistics"):
        onnx_model(model, preprocess=True)
    with pytest.raises(ExportError, match="smaller than"):
        onnx_model(model, stats=stats_for(28), preprocess=True)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint as train's save() writes it: alexnet-cifar, 3 classes, 36x36 statistics."""
    folder = tmp_path_factory.mktemp("export")
    model = alexnet_cifar(num_classes=3, init="scaled", seed=6)
    state = model.state_dict()
    stats = stats_for(36, seed=1)
    classes = ["circle", "square", "triangle"]
    path = folder / "best.npz"
    arrays = {
        **pack("model", state),
        **pack("optim/velocity", {k: np.zeros_like(v) for k, v in state.items()}),
        **pack("data", stats.to_arrays()),
    }
    run = {"dataset": "shapes", "image_size": 36, "seed": 0}
    meta = {"config": model.config, "run": run, "classes": classes, "epoch": 1}
    save_checkpoint(path, arrays, meta)
    even = folder / "even_lrn.npz"
    bad = alexnet_cifar(num_classes=3, lrn_constants=(4, 2.0, 1e-4, 0.75))
    save_checkpoint(
        even,
        {**pack("model", bad.state_dict()), **pack("data", stats.to_arrays())},
        {"config": bad.config, "run": run, "classes": classes},
    )
    return {"path": path, "even": even, "model": model, "stats": stats, "classes": classes}


def test_cli_writes_a_file_that_computes_the_checkpoints_logits(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert export.main([str(checkpoint["path"]), str(out)]) == 0
    printed = capsys.readouterr().out
    model = checkpoint["model"]
    assert f"wrote {out}: ONNX opset 13" in printed
    assert "(N, 3, 32, 32)" in printed and f"{model.num_parameters():,} parameters" in printed
    raw = np.random.default_rng(7).integers(0, 256, (2, 36, 36, 3), dtype=np.uint8)
    x = eval_transform(raw, stats=checkpoint["stats"], crop=32)
    assert_same(run_onnx(out, x), model.forward(x, train=False))
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(props["minialexnet.config"]) == model.config
    assert json.loads(props["minialexnet.classes"]) == checkpoint["classes"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    assert sorted(tmp_path.iterdir()) == [out]

    raw_out = tmp_path / "raw.onnx"
    argv = [str(checkpoint["path"]), str(raw_out), "--raw-input", "--opset", "17"]
    assert export.main(argv) == 0
    assert "opset 17" in capsys.readouterr().out
    crop = raw[:, 2:34, 2:34].transpose(0, 3, 1, 2).astype(np.float32)
    assert_same(run_onnx(raw_out, crop), model.forward(x, train=False))


@pytest.mark.parametrize(
    "case, message",
    [
        ("text", "not an .npz file"),
        ("missing_folder", "cannot write"),
        ("even_lrn", "norm1: LRN with an even window"),
        ("old_opset", "opset 9 is not supported"),
        ("onto_itself", "is the checkpoint itself"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(
    case, message, checkpoint, tmp_path, capsys
):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    out = str(tmp_path / "out.onnx")
    argv = {
        "text": [str(text), out],
        "missing_folder": [str(checkpoint["path"]), str(tmp_path / "no" / "such" / "out.onnx")],
        "even_lrn": [str(checkpoint["even"]), out],
        "old_opset": [str(checkpoint["path"]), out, "--opset", "9"],
        "onto_itself": [str(checkpoint["path"]), str(checkpoint["path"])],
    }[case]
    before = checkpoint["path"].read_bytes()
    assert export.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("minialexnet.export: ") and message in err
    assert err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == [text]
    assert checkpoint["path"].read_bytes() == before


def test_python_m_export_reports_a_non_checkpoint_without_a_traceback(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    proc = subprocess.run(
        [sys.executable, "-m", "minialexnet.export", str(text), str(tmp_path / "out.onnx")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("minialexnet.export: ") and "Traceback" not in proc.stderr
    assert f"{text}" in proc.stderr and proc.stdout == ""
    assert sorted(tmp_path.iterdir()) == [text]
