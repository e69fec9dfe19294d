"""Every bad input of the contract raises ValueError/TypeError naming the function and argument.

Each case is (id, call, exception, function name, argument pattern). ``call(dev)`` builds its
arrays on ``dev`` and makes the bad call. The message must mention the function and the
argument (as a whole word), checked with one ``match`` regex of two look-aheads.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from minialexnet.functional import (
    conv2d_backward,
    conv2d_forward,
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    lrn_backward,
    lrn_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    multiclass_hinge,
    relu_backward,
    relu_forward,
    softmax,
    softmax_cross_entropy,
    tanh_backward,
    tanh_forward,
)


def naming(fn: str, arg: str) -> str:
    """Regex: the message contains ``fn`` and, as a whole word, one of ``arg`` (alternatives)."""
    return rf"(?s)^(?=.*{re.escape(fn)})(?=.*\b(?:{arg})\b)"


def a(dev, *shape, dtype=np.float64):
    """A deterministic array of ``shape`` on ``dev``."""
    size = int(np.prod(shape)) if shape else 1
    return dev.asarray((np.arange(size, dtype=np.float64) % 7 - 3).reshape(shape).astype(dtype))


def ints(dev, *shape):
    return dev.asarray(np.ones(shape, dtype=np.int64))


def labels(dev, *values, dtype=np.int64):
    return dev.asarray(np.array(values, dtype=dtype))


def conv(dev, x=(2, 4, 6, 6), w=(6, 2, 3, 3), b=(6,), **kw):
    """conv2d_forward on arrays of the given shapes (groups=2 by default)."""
    kw.setdefault("groups", 2)
    return conv2d_forward(a(dev, *x), a(dev, *w), None if b is None else a(dev, *b), **kw)


def conv_bwd(dev, dout_shape):
    _, cache = conv(dev)  # out (2, 6, 4, 4)
    return conv2d_backward(a(dev, *dout_shape), cache)


def pool_bwd(dev, dout_shape):
    _, cache = maxpool2d_forward(a(dev, 2, 3, 7, 7), 3, 2)  # out (2, 3, 3, 3)
    return maxpool2d_backward(a(dev, *dout_shape), cache)


def lrn_bwd(dev, dout_shape):
    _, cache = lrn_forward(a(dev, 2, 6, 3, 3))
    return lrn_backward(a(dev, *dout_shape), cache)


def elem_bwd(dev, fwd, bwd, dout_shape, **kw):
    _, cache = fwd(a(dev, 3, 4), **kw)
    return bwd(a(dev, *dout_shape), cache)


def lin_bwd(dev, dout_shape):
    _, cache = linear_forward(a(dev, 5, 3), a(dev, 4, 3), a(dev, 4))  # out (5, 4)
    return linear_backward(a(dev, *dout_shape), cache)


V, T = ValueError, TypeError
SCE, HINGE = "softmax_cross_entropy", "multiclass_hinge"

CASES = [
    # ---- conv2d
    ("conv-x-3d", lambda d: conv(d, x=(4, 6, 6)), V, "conv2d", "x"),
    ("conv-x-5d", lambda d: conv(d, x=(1, 2, 4, 6, 6)), V, "conv2d", "x"),
    ("conv-w-3d", lambda d: conv(d, w=(6, 2, 3)), V, "conv2d", "w"),
    (
        "conv-channels-mismatch",
        lambda d: conv(d, x=(2, 3, 6, 6), w=(6, 4, 3, 3), groups=1),
        V,
        "conv2d",
        "x|w|channels",
    ),
    (
        "conv-channels-mismatch-groups",
        lambda d: conv(d, x=(2, 6, 6, 6)),
        V,
        "conv2d",
        "x|w|channels|groups",
    ),
    (
        "conv-cin-not-divisible",
        lambda d: conv(d, x=(2, 3, 6, 6), w=(6, 1, 3, 3)),
        V,
        "conv2d",
        "groups",
    ),
    ("conv-cout-not-divisible", lambda d: conv(d, w=(5, 2, 3, 3), b=(5,)), V, "conv2d", "groups|w"),
    ("conv-groups-0", lambda d: conv(d, groups=0), V, "conv2d", "groups"),
    ("conv-groups-neg", lambda d: conv(d, groups=-2), V, "conv2d", "groups"),
    (
        "conv-kernel-too-big",
        lambda d: conv(d, x=(1, 2, 2, 2), w=(2, 2, 5, 5), b=None, groups=1, pad=1),
        V,
        "conv2d",
        "w|x|kernel|pad",
    ),
    (
        "conv-kernel-too-wide",
        lambda d: conv(d, x=(1, 2, 8, 3), w=(2, 2, 3, 4), b=None, groups=1),
        V,
        "conv2d",
        "w|x|kernel|pad",
    ),
    ("conv-stride-0", lambda d: conv(d, stride=0), V, "conv2d", "stride"),
    ("conv-stride-neg", lambda d: conv(d, stride=-1), V, "conv2d", "stride"),
    ("conv-stride-pair-0", lambda d: conv(d, stride=(1, 0)), V, "conv2d", "stride"),
    ("conv-pad-neg", lambda d: conv(d, pad=-1), V, "conv2d", "pad"),
    ("conv-pad-pair-neg", lambda d: conv(d, pad=(0, -1)), V, "conv2d", "pad"),
    ("conv-b-length", lambda d: conv(d, b=(5,)), V, "conv2d", "b"),
    ("conv-b-2d", lambda d: conv(d, b=(6, 1)), V, "conv2d", "b"),
    (
        "conv-x-int",
        lambda d: conv2d_forward(ints(d, 2, 4, 6, 6), a(d, 6, 2, 3, 3), None, groups=2),
        T,
        "conv2d",
        "x",
    ),
    ("conv-dout-shape", lambda d: conv_bwd(d, (2, 6, 4, 5)), V, "conv2d", "dout"),
    ("conv-dout-channels", lambda d: conv_bwd(d, (2, 4, 4, 4)), V, "conv2d", "dout"),
    ("conv-dout-ndim", lambda d: conv_bwd(d, (6, 4, 4)), V, "conv2d", "dout"),
    # ---- maxpool2d
    ("pool-x-3d", lambda d: maxpool2d_forward(a(d, 3, 7, 7)), V, "maxpool2d", "x"),
    (
        "pool-size-too-big",
        lambda d: maxpool2d_forward(a(d, 1, 1, 2, 5), 3, 1),
        V,
        "maxpool2d",
        "size|x",
    ),
    (
        "pool-size-pair-too-big",
        lambda d: maxpool2d_forward(a(d, 1, 1, 5, 5), (2, 6), 1),
        V,
        "maxpool2d",
        "size|x",
    ),
    ("pool-size-0", lambda d: maxpool2d_forward(a(d, 1, 1, 5, 5), 0, 1), V, "maxpool2d", "size"),
    ("pool-size-neg", lambda d: maxpool2d_forward(a(d, 1, 1, 5, 5), -3, 1), V, "maxpool2d", "size"),
    (
        "pool-stride-0",
        lambda d: maxpool2d_forward(a(d, 1, 1, 5, 5), 2, 0),
        V,
        "maxpool2d",
        "stride",
    ),
    (
        "pool-stride-pair-neg",
        lambda d: maxpool2d_forward(a(d, 1, 1, 5, 5), 2, (2, -1)),
        V,
        "maxpool2d",
        "stride",
    ),
    ("pool-x-int", lambda d: maxpool2d_forward(ints(d, 1, 1, 5, 5)), T, "maxpool2d", "x"),
    ("pool-dout-shape", lambda d: pool_bwd(d, (2, 3, 3, 4)), V, "maxpool2d", "dout"),
    ("pool-dout-ndim", lambda d: pool_bwd(d, (2, 3, 9)), V, "maxpool2d", "dout"),
    # ---- lrn
    ("lrn-x-1d", lambda d: lrn_forward(a(d, 6)), V, "lrn", "x"),
    ("lrn-n-0", lambda d: lrn_forward(a(d, 2, 6, 3, 3), n=0), V, "lrn", "n"),
    ("lrn-n-neg", lambda d: lrn_forward(a(d, 2, 6, 3, 3), n=-5), V, "lrn", "n"),
    ("lrn-x-int", lambda d: lrn_forward(ints(d, 2, 6, 3, 3)), T, "lrn", "x"),
    ("lrn-dout-shape", lambda d: lrn_bwd(d, (2, 5, 3, 3)), V, "lrn", "dout"),
    ("lrn-dout-ndim", lambda d: lrn_bwd(d, (2, 6, 9)), V, "lrn", "dout"),
    # ---- relu / tanh
    ("relu-x-int", lambda d: relu_forward(ints(d, 3, 4)), T, "relu", "x"),
    (
        "relu-dout-shape",
        lambda d: elem_bwd(d, relu_forward, relu_backward, (4, 3)),
        V,
        "relu",
        "dout",
    ),
    ("tanh-x-int", lambda d: tanh_forward(ints(d, 3, 4)), T, "tanh", "x"),
    (
        "tanh-dout-shape",
        lambda d: elem_bwd(d, tanh_forward, tanh_backward, (3, 4, 1)),
        V,
        "tanh",
        "dout",
    ),
    # ---- dropout
    ("dropout-p-neg", lambda d: dropout_forward(a(d, 3, 4), -0.1, d.rng(0)), V, "dropout", "p"),
    ("dropout-p-1", lambda d: dropout_forward(a(d, 3, 4), 1.0, d.rng(0)), V, "dropout", "p"),
    ("dropout-p-big", lambda d: dropout_forward(a(d, 3, 4), 1.5, d.rng(0)), V, "dropout", "p"),
    (
        "dropout-p-1-eval",
        lambda d: dropout_forward(a(d, 3, 4), 1.0, None, train=False),
        V,
        "dropout",
        "p",
    ),
    ("dropout-x-int", lambda d: dropout_forward(ints(d, 3, 4), 0.5, d.rng(0)), T, "dropout", "x"),
    (
        "dropout-dout-shape",
        lambda d: elem_bwd(d, dropout_forward, dropout_backward, (3, 5), p=0.5, rng=d.rng(0)),
        V,
        "dropout",
        "dout",
    ),
    (
        "dropout-dout-shape-eval",
        lambda d: elem_bwd(
            d, dropout_forward, dropout_backward, (12,), p=0.5, rng=None, train=False
        ),
        V,
        "dropout",
        "dout",
    ),
    (
        "dropout-rng-none-train",
        lambda d: dropout_forward(a(d, 3, 4), 0.5, None, train=True),
        (TypeError, ValueError),
        "dropout",
        "rng",
    ),
    # ---- linear
    (
        "linear-in-features",
        lambda d: linear_forward(a(d, 5, 3), a(d, 4, 2), a(d, 4)),
        V,
        "linear",
        "x|w|in_features",
    ),
    ("linear-w-1d", lambda d: linear_forward(a(d, 5, 3), a(d, 3), None), V, "linear", "w"),
    ("linear-w-3d", lambda d: linear_forward(a(d, 5, 3), a(d, 1, 4, 3), None), V, "linear", "w"),
    ("linear-x-0d", lambda d: linear_forward(a(d), a(d, 4, 1), None), V, "linear", "x"),
    (
        "linear-b-length",
        lambda d: linear_forward(a(d, 5, 3), a(d, 4, 3), a(d, 3)),
        V,
        "linear",
        "b",
    ),
    ("linear-b-2d", lambda d: linear_forward(a(d, 5, 3), a(d, 4, 3), a(d, 1, 4)), V, "linear", "b"),
    ("linear-x-int", lambda d: linear_forward(ints(d, 5, 3), a(d, 4, 3), None), T, "linear", "x"),
    ("linear-dout-shape", lambda d: lin_bwd(d, (5, 3)), V, "linear", "dout"),
    ("linear-dout-rows", lambda d: lin_bwd(d, (4, 4)), V, "linear", "dout"),
    # ---- softmax
    ("softmax-int", lambda d: softmax(ints(d, 3, 4)), T, "softmax", "logits|x"),
]

for _fn, _name, _call in [
    (SCE, "logits", softmax_cross_entropy),
    (HINGE, "scores|logits", multiclass_hinge),
]:
    CASES += [
        (f"{_fn}-logits-1d", lambda d, f=_call: f(a(d, 4), labels(d, 0)), V, _fn, _name),
        (f"{_fn}-logits-3d", lambda d, f=_call: f(a(d, 2, 3, 4), labels(d, 0, 1)), V, _fn, _name),
        (f"{_fn}-logits-int", lambda d, f=_call: f(ints(d, 2, 3), labels(d, 0, 1)), T, _fn, _name),
        (
            f"{_fn}-labels-float",
            lambda d, f=_call: f(a(d, 2, 3), labels(d, 0, 1, dtype=np.float64)),
            T,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-labels-negative",
            lambda d, f=_call: f(a(d, 2, 3), labels(d, 0, -1)),
            V,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-labels-too-big",
            lambda d, f=_call: f(a(d, 2, 3), labels(d, 3, 0)),
            V,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-labels-short",
            lambda d, f=_call: f(a(d, 3, 3), labels(d, 0, 1)),
            V,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-labels-long",
            lambda d, f=_call: f(a(d, 2, 3), labels(d, 0, 1, 2)),
            V,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-labels-2d",
            lambda d, f=_call: f(a(d, 2, 3), d.asarray(np.zeros((2, 1), int))),
            V,
            _fn,
            "labels",
        ),
        (
            f"{_fn}-empty-batch",
            lambda d, f=_call: f(a(d, 0, 3), labels(d)),
            V,
            _fn,
            f"{_name}|labels|batch|N",
        ),
    ]


@pytest.mark.parametrize(
    ("call", "exc", "fn", "arg"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_bad_input_raises_naming_function_and_argument(device, call, exc, fn, arg):
    with pytest.raises(exc, match=naming(fn, arg)):
        call(device)


def test_error_messages_say_what_was_given():
    """Spot checks that the message also states the offending value/shape."""
    x = np.zeros((2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"\(4, 6, 6\)|4-D|ndim"):
        conv2d_forward(np.zeros((4, 6, 6)), np.zeros((2, 4, 3, 3)), None)
    with pytest.raises(ValueError, match=r"-1"):
        conv2d_forward(x, np.zeros((2, 3, 3, 3)), None, pad=-1)
    with pytest.raises(ValueError, match=r"1\.5"):
        dropout_forward(x, 1.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"int"):
        relu_forward(np.zeros((2, 2), dtype=np.int32))
