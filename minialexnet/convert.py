"""``python -m minialexnet.convert MODEL.onnx OUT.npz``: trained AlexNet weights from ONNX.

An ONNX file is a graph of standard operators (Conv, Relu, LRN, MaxPool, Gemm, ...)
with the weights stored beside it. The converter reads it with the ``onnx`` package,
walks the chain from the input to the output and turns each node into the layer of
this library that computes the same thing:

    ONNX node                         layer here
    Conv (group g)                    Conv2d (groups g)          W (C_out, C_in/g, K, K), B
    Relu / Tanh                       ReLU / Tanh
    LRN (size n, alpha, beta, bias)   LRN(n, k=bias, alpha/n, beta)   ONNX divides alpha by n
    Split -> LRN x g -> Concat        LRN(groups=g)                   each tower its own maps
    MaxPool (pads, ceil_mode)         MaxPool2d (ceil_mode)           end pads = rounding up
    Flatten / Reshape (N, -1)         Flatten
    Gemm (transB) / MatMul + Add      Linear                          w (out, in)
    Dropout, Identity                 nothing at test time (dropout stays in the model)
    Softmax (last)                    nothing: the model gives logits, predict applies it

(Reading the graph into that chain is :mod:`minialexnet.onnx_chain`; this module does the
rest.) The chain is then matched against the networks this library builds (the paper's
``alexnet`` with its towers, ``alexnet-owt``, ``alexnet-cifar``, ``cnn4``): the
model whose layers have exactly the graph's kinds, shapes and constants is built
and its weights are filled in. Two towers come from the groups: conv2, conv4 and
conv5 have ``group=2``, so conv1's 96 kernels split 48/48 (the first 48 feed group
0 of conv2: tower a) and each tower takes its half of every layer
(:mod:`minialexnet.merged` is the same correspondence). Caffe's LRN has no groups,
so its windows run across the towers' maps: the model is built with
``lrn_across=True`` (:class:`~minialexnet.towers.JoinedLRN`) and computes exactly
what the file computes.

The input convention travels with the weights, not in the file: Caffe's
``bvlc_alexnet`` wants BGR pixels 0-255 minus the ImageNet mean; torchvision's
wants RGB scaled to 0-1, minus (0.485, 0.456, 0.406), divided by (0.229, 0.224,
0.225). This library feeds RGB 0-255 minus a mean image, so the converter folds
the difference into conv1 (channels reordered, divided by the scale; exact, since
zero padding is the mean in both) and stores the mean as the checkpoint's mean
image: ``predict`` and ``evaluate`` then prepare photos correctly with no special
case. The checkpoint's ``source`` records the file, its SHA-256 and the convention.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import pack, save_checkpoint
from .data.imagenet import imagenet_classes, imagenet_wordnet
from .data.transforms import Stats
from .layers import LRN, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from .merged import flat_layers
from .models import ALEXNET, ALEXNET_CIFAR, ALEXNET_OWT, ARCHS, PAPER_LRN
from .onnx_chain import Chain, ConvertError, Op, _onnx, read_chain

__all__ = ["CONVENTIONS", "Chain", "Convention", "ConvertError", "convert", "read_chain", "main"]


@dataclass(frozen=True)
class Convention:
    """What a network's first layer expects: ``u_c = (x[order[c]] - mean[c]) / std[c]``,
    ``x`` the RGB pixels on a 0-255 scale, ``c`` the network's input channel."""

    name: str
    order: str  # "RGB" or "BGR": the channel order the weights expect
    mean: tuple[float, float, float]  # per channel, in that order, on the 0-255 scale
    std: tuple[float, float, float]  # per channel, in that order, on the 0-255 scale
    resize: int  # shorter side before the centre crop
    note: str


CONVENTIONS = {
    "caffe": Convention(
        "caffe", "BGR", (104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0), 256,
        "Caffe's bvlc_alexnet: BGR, 0-255, minus the ILSVRC-2012 mean per channel "
        "(ilsvrc_2012_mean.npy averaged over the image)",
    ),
    "torchvision": Convention(
        "torchvision", "RGB", (0.485 * 255, 0.456 * 255, 0.406 * 255),
        (0.229 * 255, 0.224 * 255, 0.225 * 255), 256,
        "torchvision: RGB scaled to 0-1, minus (0.485, 0.456, 0.406), divided by "
        "(0.229, 0.224, 0.225)",
    ),
    "minialexnet": Convention(
        "minialexnet", "RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0,
        "this library's: RGB, 0-255, minus the mean image (a file exported from here)",
    ),
}  # fmt: skip


# -- matching the chain with a minialexnet model ------------------------------------------------


def _variant_guess(ops: list[Op], size: int) -> dict[str, Any]:
    """The builder keywords the chain implies (the matching checks every layer after)."""
    kinds = {op.kind for op in ops}
    convs = [op for op in ops if op.kind == "conv"]
    lrns = [op for op in ops if op.kind == "lrn"]
    pools = [op for op in ops if op.kind == "pool"]
    ceil = {op.attrs["ceil"] for op in pools} - {None}
    if len(ceil) > 1:
        raise ConvertError("the poolings round differently (some up, some down)")
    towers = 2 if any(op.attrs["groups"] == 2 for op in convs) else 1
    return {
        "num_classes": ops[-1].weights[0].shape[0],
        "activation": "tanh" if "tanh" in kinds else "relu",
        "lrn": bool(lrns),
        "lrn_constants": lrns[0].attrs["constants"] if lrns else PAPER_LRN,
        "lrn_across": towers == 2 and bool(lrns) and lrns[0].attrs["groups"] == 1,
        "pool": (pools[0].attrs["size"], pools[0].attrs["stride"]) if pools else (3, 2),
        "pool_ceil": ceil == {True},
        "towers": towers,
        "input_size": size,
    }


def _build(arch: str, guess: dict[str, Any]) -> Any:
    """The ``arch`` model with the guessed keywords it takes (CPU, float32), two towers
    merged (:mod:`minialexnet.merged`): one chain of layers whose ``state_dict`` has the
    towers' names, so it is filled and saved as it is."""
    builder = ARCHS[arch]
    kw = dict(guess)
    num_classes = kw.pop("num_classes")
    if arch == "alexnet-owt":
        kw = {k: v for k, v in kw.items() if k not in ("towers", "lrn_across")}
    elif arch == "cnn4":
        if guess["input_size"] != 32 or guess["towers"] != 1:
            raise ValueError("cnn4 takes 32x32 images, one tower")
        kw = {k: kw[k] for k in ("activation", "lrn", "pool")}
    else:
        kw["merged"] = guess["towers"] == 2
    return builder(num_classes, ["cpu"], 0, "paper", **kw)


def _signature(layer: Any) -> tuple[Any, ...] | None:
    if isinstance(layer, Conv2d):
        w = layer.params["w"]
        return ("conv", tuple(w.shape), layer.stride[0], layer.pad[0], layer.groups)
    if isinstance(layer, Linear):
        return ("fc", tuple(layer.params["w"].shape))
    if isinstance(layer, LRN):
        return ("lrn", layer.n, layer.groups)
    if isinstance(layer, MaxPool2d):
        return ("pool", layer.size[0], layer.stride[0])
    if isinstance(layer, ReLU):
        return ("relu",)
    if isinstance(layer, Tanh):
        return ("tanh",)
    if isinstance(layer, Flatten):
        return ("flatten",)
    return None  # dropout: not in an inference graph


def _op_signature(op: Op) -> tuple[Any, ...]:
    a = op.attrs
    if op.kind == "conv":
        return ("conv", tuple(op.weights[0].shape), a["stride"], a["pad"], a["groups"])
    if op.kind == "fc":
        return ("fc", tuple(op.weights[0].shape))
    if op.kind == "lrn":
        return ("lrn", a["constants"][0], a["groups"])
    if op.kind == "pool":
        return ("pool", a["size"], a["stride"])
    return (op.kind,)


def _describe(sig: tuple[Any, ...]) -> str:
    """A layer signature in words: ``conv 96 kernels 11x11x3, stride 4, pad 0, groups 1``."""
    kind, rest = sig[0], sig[1:]
    if kind == "conv":
        (c_out, c_in, k, _), stride, pad, groups = rest
        return f"conv {c_out} kernels {k}x{k}x{c_in}, stride {stride}, pad {pad}, groups {groups}"
    if kind == "fc":
        return f"fc {rest[0][1]} -> {rest[0][0]}"
    if kind == "lrn":
        return f"LRN size {rest[0]}, groups {rest[1]}"
    if kind == "pool":
        return f"max pool {rest[0]}x{rest[0]}, stride {rest[1]}"
    return kind


def match_model(ops: list[Op], size: int) -> Any:
    """The minialexnet model (CPU, float32, unfilled; two towers merged) whose layers are
    ``ops``; ConvertError naming the first layer that differs from the closest candidate
    otherwise."""
    guess = _variant_guess(ops, size)
    wanted = [_op_signature(op) for op in ops]
    best: tuple[int, str] = (-1, "")
    first = next((op.attrs for op in ops if op.kind == "conv"), {})
    conv1 = (first.get("kernel"), first.get("stride"), first.get("pad"))
    specs = {spec.arch: spec for spec in (ALEXNET, ALEXNET_CIFAR, ALEXNET_OWT)}

    def unlikely(arch: str) -> bool:  # try first the nets whose conv1 kernel/stride/pad fit
        return arch not in specs or specs[arch].conv1[1:] != conv1

    for arch in sorted(ARCHS, key=unlikely):
        try:
            model = _build(arch, guess)
        except (ValueError, AssertionError) as exc:
            best = max(best, (0, f"{arch}: {exc}"))
            continue
        layers = [(n, s) for n, layer in flat_layers(model) if (s := _signature(layer)) is not None]
        got = [s for _, s in layers]
        if got == wanted:
            return model
        pairs = enumerate(zip(got, wanted, strict=False))
        same = next((i for i, (a, b) in pairs if a != b), min(len(got), len(wanted)))
        if same < len(got) and same < len(wanted):
            why = (f"layer {same + 1} ({ops[same].node or ops[same].kind}) is "
                   f"'{_describe(wanted[same])}' where {arch} has {layers[same][0]} "
                   f"'{_describe(got[same])}'")  # fmt: skip
        else:
            why = f"the graph has {len(wanted)} layers, {arch} {len(got)}"
        best = max(best, (same, why))
    raise ConvertError(f"not an AlexNet this library builds: {best[1]}")


def fill(model: Any, ops: list[Op]) -> None:
    """Copy the chain's weights into ``model`` (matched by :func:`match_model`), in place."""
    layers = flat_layers(model)
    weighted = [layer for _, layer in layers if isinstance(layer, (Conv2d, Linear))]
    for layer, op in zip(weighted, [op for op in ops if op.kind in ("conv", "fc")], strict=True):
        for name, array in zip(("w", "b"), op.weights, strict=True):
            layer.params[name][...] = np.asarray(array, dtype=layer.params[name].dtype)
    for op, (_, layer) in zip(
        [op for op in ops if op.kind == "lrn"],
        [(n, la) for n, la in layers if isinstance(la, LRN)],
        strict=True,
    ):
        ours = (layer.n, layer.k, layer.alpha, layer.beta)
        if not np.allclose(ours, op.attrs["constants"], rtol=1e-6, atol=0):
            raise ConvertError(f"LRN {op.node}: constants {op.attrs['constants']} became {ours}")


def fold_convention(model: Any, convention: Convention) -> np.ndarray:
    """Make ``model`` take this library's input (RGB 0-255 minus a mean) instead of
    ``convention``'s; returns the per-channel mean (RGB) to subtract.

    The weights want ``u_c = (x[order[c]] - mean_c) / std_c``; this library gives
    ``z = x - m`` with ``m[order[c]] = mean_c``, so ``u_c = z[order[c]] / std_c`` and
    conv1's ``w[:, c]`` becomes ``w'[:, order[c]] = w[:, c] / std_c``. Zero padding is
    the mean in both, so the result is exact.
    """
    order = [("RGB".index(ch)) for ch in convention.order]
    mean_rgb = np.zeros(3)
    for c, src in enumerate(order):
        mean_rgb[src] = convention.mean[c]
    conv1 = next(layer for _, layer in flat_layers(model) if isinstance(layer, Conv2d))
    w = np.array(conv1.params["w"], dtype=np.float64)
    folded = np.empty_like(w)
    for c, src in enumerate(order):
        folded[:, src] = w[:, c] / convention.std[c]
    conv1.params["w"][...] = folded.astype(conv1.params["w"].dtype)
    return mean_rgb


def _guess_convention(onnx_model: Any, model: Any) -> str:
    props = {p.key: p.value for p in onnx_model.metadata_props}
    if "minialexnet.config" in props:
        return "minialexnet"
    if model.config["arch"] == "alexnet-owt":
        return "torchvision"
    if model.config["arch"] == "alexnet" and model.config.get("lrn_across"):
        return "caffe"
    raise ConvertError(
        "cannot tell what input these weights expect: give --convention caffe (BGR, minus "
        "the ImageNet mean), torchvision (RGB 0-1, normalised) or minialexnet"
    )


def _load(onnx: Any, source: Path) -> tuple[Any, str]:
    """The ONNX model in ``source`` (weights in a side file too, found next to it) and the
    file's SHA-256."""
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ConvertError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:  # onnx.load finds external weights relative to the file, not the working folder
        onnx_model = onnx.load(str(source))
        if not onnx_model.graph.node:
            raise ValueError("no nodes")
    except Exception as exc:  # protobuf raises DecodeError and others: all mean "not ONNX"
        size = source.stat().st_size
        raise ConvertError(
            f"{source} is not an ONNX model ({type(exc).__name__}; {size:,} bytes): a "
            "download that failed or stopped early? Compare its size and sha256 with the "
            "ones docs/onnx.md gives, and download it again"
        ) from None
    return onnx_model, digest.hexdigest()


def convert(
    source: str | Path,
    out: str | Path,
    *,
    convention: str = "auto",
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """Read the ONNX file ``source``, write a minialexnet checkpoint to ``out`` (its folder
    is made when missing).

    ``convention``: "auto" (minialexnet's files say so; Caffe's layout means "caffe",
    torchvision's "torchvision"), or a key of :data:`CONVENTIONS`. ``classes``: the class
    names (default: the file's, else ImageNet's for 1000 outputs, else "class i").
    Returns the checkpoint's metadata; ``meta["notes"]`` says what a user should know
    (a convention given against the layout, a missing mean image). Raises
    :class:`ConvertError` (nothing written) when the file is not ONNX, not an AlexNet
    this library builds, or ``out`` cannot be written.
    """
    onnx = _onnx()
    source, out = Path(source), Path(out)
    if out.exists() and out.resolve() == source.resolve():
        raise ConvertError(f"{out} is the ONNX file itself: give another output path")
    onnx_model, sha256 = _load(onnx, source)
    chain = read_chain(onnx_model)
    ops, size = chain.ops, chain.size
    model = match_model(ops, size)
    fill(model, ops)
    props = {p.key: p.value for p in onnx_model.metadata_props}
    if "minialexnet.config" in props:  # exported from here: how it was initialised, too
        init = json.loads(props["minialexnet.config"]).get("init")
        if init in ("paper", "scaled", "balanced"):
            model.config["init"] = init
    notes = []
    if chain.mean is not None:  # the graph subtracts a mean image: this library's input
        guess = "minialexnet"
    else:
        try:
            guess = _guess_convention(onnx_model, model)
        except ConvertError:
            if convention == "auto":
                raise
            guess = convention
    name = guess if convention == "auto" else convention
    if name not in CONVENTIONS:
        raise ConvertError(f"convention must be auto or one of {list(CONVENTIONS)}, got {name!r}")
    if name != guess:
        notes.append(
            f"--convention {name} given, but the file's layout says {guess}: the checkpoint "
            f"prepares photos the {name} way"
        )
    conv = CONVENTIONS[name]
    mean_rgb = fold_convention(model, conv)
    num_classes = model.config["num_classes"]
    if classes is None and "minialexnet.classes" in props:
        classes = json.loads(props["minialexnet.classes"])
    imagenet = classes is None and num_classes == 1000
    if classes is None:
        classes = imagenet_classes() if imagenet else [f"class {i}" for i in range(num_classes)]
    if len(classes) != num_classes:
        raise ConvertError(f"{len(classes)} class names for {num_classes} outputs")
    stored = props.get("minialexnet.image_size", "")
    image_size = int(stored) if stored.isdigit() else max(conv.resize, size)
    mean_image = np.broadcast_to(mean_rgb, (image_size, image_size, 3))
    if chain.mean is not None:  # the file subtracts its own mean: keep it, subtract here
        if name != "minialexnet":
            raise ConvertError(
                "a graph that subtracts its own mean image takes this library's input: "
                "leave out --convention (or give minialexnet)"
            )
        # the centre crop's window, exact; around it (ten-crop corners) its edge, repeated
        pad = (image_size - size) // 2
        widths = ((pad, image_size - size - pad), (pad, image_size - size - pad), (0, 0))
        mean_image = np.pad(chain.mean, widths, mode="edge")
    elif name == "minialexnet":
        notes.append(
            "the file carries no mean image, so the checkpoint subtracts none; export with "
            "`python -m minialexnet.export --raw-input` to carry it"
        )
    stats = Stats(
        mean=mean_image,
        eigvals=np.zeros(3),  # no colour statistics come with the weights
        eigvecs=np.eye(3),
    )
    meta: dict[str, Any] = {
        "config": model.config,
        "classes": list(classes),
        "run": {"image_size": image_size},
        "source": {
            "file": source.name,
            "sha256": sha256,
            "producer": f"{onnx_model.producer_name} {onnx_model.producer_version}".strip(),
            "opset": max((o.version for o in onnx_model.opset_import), default=0),
            "convention": conv.name,
            "convention_note": conv.note,
            "ended_in_softmax": chain.softmax,
            "mean_from_file": chain.mean is not None,
        },
        "notes": notes,
    }
    if imagenet:  # ImageNet folders are named by WordNet id: evaluate matches them too
        meta["class_ids"] = [wnid for wnid, _ in imagenet_wordnet()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            out, {**pack("model", model.state_dict()), **pack("data", stats.to_arrays())}, meta
        )
    except OSError as exc:
        raise ConvertError(
            f"cannot write {out}: {exc.strerror or exc}; give a file path you can write to"
        ) from None
    return meta


def main(argv: list[str] | None = None) -> int:
    """``python -m minialexnet.convert MODEL.onnx OUT.npz``: 0 on success, 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m minialexnet.convert", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="an ONNX file, e.g. the model zoo's bvlcalexnet-8.onnx")
    parser.add_argument(
        "out", help="the checkpoint to write (.npz; its folder is made), for predict and evaluate"
    )
    parser.add_argument(
        "--convention",
        default="auto",
        choices=["auto", *CONVENTIONS],
        help="the input the weights expect: caffe (BGR minus the ImageNet mean), torchvision "
        "(RGB 0-1, normalised) or minialexnet; default: from the file's layout",
    )
    args = parser.parse_args(argv)
    try:
        meta = convert(args.model, args.out, convention=args.convention)
    except ConvertError as exc:
        print(f"minialexnet.convert: {exc}", file=sys.stderr)
        return 2
    for note in meta["notes"]:
        print(f"note: {note}", file=sys.stderr)
    config, source = meta["config"], meta["source"]
    shown = {k: v for k, v in config.items() if k not in ("arch", "dtype", "init")}
    folded = {
        "minialexnet": "this library's input (nothing folded)",
        "caffe": "Caffe's BGR input minus the ImageNet mean, folded into conv1",
        "torchvision": "torchvision's normalised RGB input, folded into conv1",
    }[source["convention"]]
    print(
        f"wrote {args.out}: {config['arch']} ({', '.join(f'{k}={v}' for k, v in shown.items())}); "
        f"{folded}; photos resized to {meta['run']['image_size']}, centre {config['input_size']}; "
        f"try: python -m minialexnet.predict {args.out} photo.jpg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
