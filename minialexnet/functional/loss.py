"""Losses on class scores: softmax cross-entropy (the paper's) and the multiclass SVM hinge.

Paper section 3.5: "The output of the last fully-connected layer is fed to a
1000-way softmax"; training maximises the multinomial logistic regression
objective, i.e. minimises the mean cross-entropy. The hinge loss is the
"other classifier on the conv features" the seed summary asks to compare.

Shapes: scores/logits (N, C), labels (N,) integers in [0, C). Both losses are
the MEAN over the batch, and their gradients include the 1/N.

On a GPU each function runs on the GPU its scores live on: CuPy makes new arrays
(the labels given on the host, row indices) and runs kernels on the CURRENT device,
which need not be the scores' (``--gpus 1``: the logits are on GPU 1, GPU 0 is current).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from numbers import Real
from typing import Any

from ..backend import get_array_module, on_device_of
from . import _checks

__all__ = ["softmax", "softmax_cross_entropy", "multiclass_hinge"]


def _on_scores_device(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with the GPU its first argument (the scores) lives on made current."""

    @functools.wraps(fn)
    def run(scores: Any, *args: Any, **kwargs: Any) -> Any:
        with on_device_of(scores):
            return fn(scores, *args, **kwargs)

    return run


def _scores(s: Any, fn: str, name: str) -> None:
    _checks.floating(s, fn, name)
    _checks.ndim(s, 2, fn, name, "(N, num_classes)")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"{fn}: {name} needs at least one example and one class, got {s.shape}")


@_on_scores_device
def softmax(logits: Any) -> Any:
    """Softmax along the last axis: ``p_j = exp(z_j - max z) / sum_k exp(z_k - max z)``.

    Subtracting the row maximum changes nothing mathematically and keeps exp()
    from overflowing for logits in the thousands.
    """
    _checks.floating(logits, "softmax", "logits")
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = xp.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


@_on_scores_device
def softmax_cross_entropy(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

        loss     = -(1/N) sum_n log p[n, y_n],   log p = z - max z - log sum exp(z - max z)
        dlogits  = (p - onehot(y)) / N

    Args:
        logits: (N, C) class scores.
        labels: (N,) integer class indices in [0, C).

    Returns:
        (loss, dlogits): a scalar in the logits' dtype (``float(loss)`` for a
        number) and an (N, C) array.
    """
    fn = "softmax_cross_entropy"
    _scores(logits, fn, "logits")
    xp = get_array_module(logits)
    n, c = logits.shape
    labels = _checks.labels(labels, n, c, fn, xp)
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    rows = xp.arange(n)
    loss = -log_probs[rows, labels].mean()
    dlogits = xp.exp(log_probs)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits
    ### END SOLUTION


@_on_scores_device
def multiclass_hinge(scores: Any, labels: Any, margin: float = 1.0) -> tuple[Any, Any]:
    """Weston-Watkins multiclass SVM loss, mean over the batch, and its gradient.

        loss = (1/N) sum_n sum_{j != y_n} max(0, s[n, j] - s[n, y_n] + margin)

        dscores[n, j]   = [s[n, j] - s[n, y_n] + margin > 0] / N        (j != y_n)
        dscores[n, y_n] = -(number of j != y_n with a positive margin) / N

    (the strict ">" picks the zero subgradient at the kink, as PyTorch does).

    Args:
        scores: (N, C) class scores.
        labels: (N,) integer class indices in [0, C).
        margin: the required gap between the true class and every other (> 0).

    Returns:
        (loss, dscores) as for :func:`softmax_cross_entropy`.
    """
    fn = "multiclass_hinge"
    _scores(scores, fn, "scores")
    if isinstance(margin, bool) or not isinstance(margin, Real) or margin < 0:
        raise ValueError(f"{fn}: margin must be a non-negative number, got {margin!r}")
    xp = get_array_module(scores)
    n, c = scores.shape
    labels = _checks.labels(labels, n, c, fn, xp)
    rows = xp.arange(n)
    correct = scores[rows, labels][:, None]
    margins = scores - correct + scores.dtype.type(margin)
    margins[rows, labels] = 0
    active = margins > 0
    loss = (margins * active).sum() / scores.dtype.type(n)
    dscores = active.astype(scores.dtype)
    dscores[rows, labels] = -active.sum(axis=1)
    dscores /= n
    return loss, dscores
