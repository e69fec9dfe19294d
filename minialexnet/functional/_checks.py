"""Argument checks shared by the functional ops.

Every message names the function and the argument, says what was given and
what was expected, so a student sees the fix without reading our code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module


def pair(value: Any, fn: str, name: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum, as a tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(items) < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fn}: {name} must be {bound}, got {value!r}")
    return int(items[0]), int(items[1])


def floating(x: Any, fn: str, name: str = "x") -> None:
    """x must be an array (numpy or cupy) of a floating-point dtype."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        raise TypeError(f"{fn}: {name} must be a numpy or cupy array, got {type(x).__name__}")
    if dtype.kind != "f":
        raise TypeError(
            f"{fn}: {name} must be a floating-point array (float32 or float64), got dtype "
            f"{dtype}; convert with {name}.astype('float32')"
        )


def ndim(x: Any, expected: int, fn: str, name: str, layout: str) -> None:
    if x.ndim != expected:
        raise ValueError(f"{fn}: {name} must be {expected}-D {layout}, got shape {tuple(x.shape)}")


def dout_shape(dout: Any, expected: tuple[int, ...], fn: str) -> None:
    shape = getattr(dout, "shape", None)
    if shape is None or tuple(shape) != tuple(expected):
        raise ValueError(
            f"{fn}: dout has shape {None if shape is None else tuple(shape)} but the forward "
            f"output had shape {tuple(expected)}; pass the gradient of that output"
        )


def labels(labels: Any, n: int, num_classes: int, fn: str, xp: Any) -> Any:
    """Integer class labels of shape (n,), each in [0, num_classes); returned as an ``xp`` array.

    Labels given on the host (a list or NumPy array, as the data loader gives them) are
    checked there and then moved: reading a GPU array's minimum and maximum would make
    the host wait for the GPU at every training step.
    """
    if get_array_module(labels) is np:
        labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: labels must be integers (class indices), got dtype {labels.dtype}; "
            "convert with labels.astype(int)"
        )
    if labels.shape != (n,):
        raise ValueError(
            f"{fn}: labels must have shape ({n},), one class index per row of the scores, "
            f"got shape {tuple(labels.shape)}"
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{fn}: labels must lie in [0, {num_classes}) for {num_classes} classes, got values "
            f"from {int(labels.min())} to {int(labels.max())}"
        )
    return xp.asarray(labels)
