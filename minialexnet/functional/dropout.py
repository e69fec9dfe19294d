"""Dropout: zero each unit with probability p while training.

Paper section 4.2: dropout with p = 0.5 in fc6 and fc7. Every presentation of
an example samples a new "thinned" network, so neurons cannot rely on the
presence of particular others. Here ``p`` is the probability of DROPPING a unit.

Two ways to keep the expected output the same between training and testing:

    inverted (default):  train  out = x * mask / (1 - p)      test  out = x
    paper:               train  out = x * mask                test  out = x * (1 - p)

with ``mask ~ Bernoulli(1 - p)`` drawn per element (``rng.random(x.shape) >= p``).
The paper multiplies by 0.5 at test time; the inverted form is the same
function in expectation and leaves the test-time network untouched.
Backward: ``dx = dout * (the same factor the forward applied)``.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

from . import _checks

__all__ = ["dropout_forward", "dropout_backward"]

_MODES = ("inverted", "paper")


def dropout_forward(
    x: Any, p: float, rng: Any, train: bool = True, *, mode: str = "inverted"
) -> tuple[Any, tuple]:
    """Dropout forward.

    Args:
        x: activations, any shape.
        p: probability of dropping a unit, 0 <= p < 1 (the paper: 0.5).
        rng: a random generator with ``random(shape, dtype=...)`` (NumPy's
            ``np.random.default_rng(seed)``, or ``Device.rng(seed)`` on a GPU);
            may be None when ``train`` is False.
        train: training (random mask) or evaluation (deterministic).
        mode: "inverted" (scale by 1/(1-p) while training) or "paper" (scale by
            (1-p) at test time).

    Returns:
        out shaped like x, and the cache for :func:`dropout_backward`.
    """
    fn = "dropout_forward"
    _checks.floating(x, fn, "x")
    if isinstance(p, bool) or not isinstance(p, Real) or not 0 <= p < 1:
        raise ValueError(
            f"{fn}: p is the probability of dropping a unit and must be in [0, 1), got {p!r}"
        )
    if mode not in _MODES:
        raise ValueError(f"{fn}: mode must be one of {_MODES}, got {mode!r}")
    ### BEGIN SOLUTION
    dtype = x.dtype
    if not train:
        factor = dtype.type(1 - p) if mode == "paper" else None
        out = x * factor if factor is not None else x.copy()
        return out, (x.shape, dtype, factor)
    if rng is None or not hasattr(rng, "random"):
        raise TypeError(
            f"{fn}: training needs a random generator, e.g. rng=np.random.default_rng(0), "
            f"got {rng!r}"
        )
    keep = rng.random(x.shape) >= p  # float64 draws: the same mask for float32 and float64 x
    scale = dtype.type(1 / (1 - p)) if mode == "inverted" else dtype.type(1)
    factor = keep * scale  # the per-element multiplier: 0 or scale
    return x * factor, (x.shape, dtype, factor)
    ### END SOLUTION


def dropout_backward(dout: Any, cache: tuple) -> Any:
    """Dropout backward: ``dx = dout * factor``, the forward's mask and scale."""
    ### BEGIN SOLUTION
    shape, dtype, factor = cache
    _checks.dout_shape(dout, shape, "dropout_backward")
    dout = dout.astype(dtype, copy=False)
    return dout.copy() if factor is None else dout * factor
    ### END SOLUTION
