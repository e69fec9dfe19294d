"""Assertions for the grading tests that say what is wrong: shapes, which gradient, how far off.

A failing comparison reads, for instance::

    dw (gradient of the weights): relative error 3.1e-01 (allowed 1e-08); worst at index
    (1, 0, 2, 2): got 0.5123, expected 1.0246; 17 of 72 entries differ

so ``python -m minialexnet.exercises check NAME`` (and the grader's table) can
show the student the first useful line. Everything here is NumPy on the CPU.

The tests reach the code under test through :func:`student_module`, never by importing
it: in grading, ``minialexnet`` in the tests' process is the instructor's package, and the
student's code runs in another process (see ``minialexnet/exercises/sandbox.py``).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

_JUDGE_PLUGIN = "_minialexnet_sandbox_plugin"


def _client() -> Any:
    return getattr(sys.modules.get(_JUDGE_PLUGIN), "CLIENT", None)


def student_module(dotted: str, in_place: bool = False) -> Any:
    """The code under test: module ``dotted`` (``"minialexnet.functional.lrn"``).

    In grading, a proxy of the student's module in the worker process (calls go there,
    results come back as plain values); elsewhere (the instructor's test-suite, a
    student's self-check) the module itself. In grading, the student's code may not
    change the arrays a test gives it (the test fails, the arrays stay as they were),
    unless ``in_place`` (every array passed through this module and the objects it
    returns, such as an optimizer's parameters) or :func:`in_place` allows it.
    """
    client = _client()
    if client is not None:
        return client.module(dotted, in_place=in_place)
    return importlib.import_module(dotted)


def in_place(value: Any) -> Any:
    """``value`` (an array, or a tuple/list/dict holding some), which the code under test
    may change in place (``col2im`` adds into ``dxs``); returned as it is."""
    client = _client()
    if client is not None:
        client.allow_in_place(value)
    return value


TOL64 = {"rtol": 1e-8, "atol": 1e-10}
"""Agreement expected in float64 against a float64 reference."""
TOL32 = {"rtol": 1e-4, "atol": 1e-5}
"""Agreement expected in float32 against a float64 reference."""


def tolerance(dtype: Any) -> dict[str, float]:
    """rtol/atol for a result computed in ``dtype``."""
    return TOL64 if np.dtype(dtype) == np.float64 else TOL32


def relative_error(a: Any, b: Any) -> float:
    """Norm-wise ``||a - b|| / (||a|| + ||b||)`` (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b)) / denom


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a NumPy array, failing with a clear message when it is not an array."""
    if value is None:
        raise AssertionError(f"{name}: got None; did you forget to return it?")
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise AssertionError(f"{name}: expected an array, got {_describe(value)}")
    return np.asarray(value)


def assert_shape(name: str, got: Any, shape: tuple[int, ...], what: str = "") -> None:
    """``got`` is an array of ``shape`` (``what`` says where that shape comes from)."""
    arr = as_array(name, got)
    if tuple(arr.shape) != tuple(shape):
        hint = f" ({what})" if what else ""
        raise AssertionError(f"{name}: shape {tuple(arr.shape)}, expected {tuple(shape)}{hint}")


def assert_close(
    name: str,
    got: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    note: str = "",
) -> None:
    """``got`` matches ``expected`` entry by entry (shape first, then values).

    Default tolerances follow ``got``'s dtype (:func:`tolerance`). ``note`` is
    appended to the message (e.g. where the reference values came from).
    """
    arr = as_array(name, got)
    exp = np.asarray(expected)
    suffix = f" {note}" if note else ""
    if tuple(arr.shape) != tuple(exp.shape):
        raise AssertionError(
            f"{name}: shape {tuple(arr.shape)}, expected {tuple(exp.shape)}{suffix}"
        )
    tol = tolerance(arr.dtype if arr.dtype.kind == "f" else np.float64)
    rtol = tol["rtol"] if rtol is None else rtol
    atol = tol["atol"] if atol is None else atol
    a64, e64 = arr.astype(np.float64), exp.astype(np.float64)
    bad = ~np.isclose(a64, e64, rtol=rtol, atol=atol * max(1.0, float(np.abs(e64).max(initial=0))))
    if not bad.any():
        return
    diff = np.where(np.isnan(a64) != np.isnan(e64), np.inf, np.abs(a64 - e64))
    worst = np.unravel_index(int(np.nanargmax(np.where(bad, diff, -1))), arr.shape)
    raise AssertionError(
        f"{name}: relative error {relative_error(a64, e64):.1e} (allowed {rtol:.0e}); worst at "
        f"index {tuple(int(i) for i in worst)}: got {a64[worst]:.6g}, expected "
        f"{e64[worst]:.6g}; {int(bad.sum())} of {bad.size} entries differ{suffix}"
    )


def assert_dtype(name: str, got: Any, dtype: Any) -> None:
    """``got`` has ``dtype`` (the ops keep their input's dtype)."""
    arr = as_array(name, got)
    if arr.dtype != np.dtype(dtype):
        raise AssertionError(
            f"{name}: dtype {arr.dtype}, expected {np.dtype(dtype)} (keep the input's dtype)"
        )


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, dout: Any) -> np.ndarray:
    """Centred differences (eps 1e-6) of ``sum(f(x) * dout)`` with respect to float64 ``x``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    eps = 1e-6
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = float(np.sum(np.asarray(f(x), dtype=np.float64) * dout))
        flat[i] = old - eps
        minus = float(np.sum(np.asarray(f(x), dtype=np.float64) * dout))
        flat[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return grad


def assert_gradient(name: str, got: Any, numeric: np.ndarray, limit: float = 1e-6) -> None:
    """An analytic gradient agrees with finite differences (norm-wise relative error)."""
    arr = as_array(name, got)
    if tuple(arr.shape) != numeric.shape:
        raise AssertionError(f"{name}: shape {tuple(arr.shape)}, expected {numeric.shape}")
    err = relative_error(arr, numeric)
    if not err < limit:
        worst = np.unravel_index(int(np.argmax(np.abs(arr - numeric))), numeric.shape)
        raise AssertionError(
            f"{name}: relative error {err:.1e} against finite differences (allowed "
            f"{limit:.0e}); worst at index {tuple(int(i) for i in worst)}: got "
            f"{float(arr[worst]):.6g}, finite differences say {float(numeric[worst]):.6g}"
        )


GRADE_SALT_ENV = "MINIALEXNET_GRADE_SALT"
"""Environment variable holding the grading salt (an integer), set in grading only."""


def generator(seed: int) -> np.random.Generator:
    """The random generator of ``seed``: every random input of the grading tests comes from one.

    ``np.random.default_rng(seed)``, except in grading, where the grader sets
    :data:`GRADE_SALT_ENV` (the release's *grading salt*, see ``grade.grading_salt``) and
    the generator is ``np.random.default_rng([salt, seed])``: the grading tests then draw
    other inputs than the shipped ones, so a submission cannot pass them by looking their
    inputs up in the recorded reference calls (``fixtures/reference_calls.npz``) that a
    student copy ships for its self-check.
    """
    salt = os.environ.get(GRADE_SALT_ENV, "").strip()
    if not salt:
        return np.random.default_rng(seed)
    return np.random.default_rng([int(salt), seed])


def rand(seed: int, shape: tuple[int, ...], dtype: Any = np.float64, scale: float = 1.0):
    """Standard-normal entries times ``scale``, from ``seed`` (:func:`generator`)."""
    return (scale * generator(seed).standard_normal(shape)).astype(dtype)


def distinct(seed: int, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """All entries different (a shuffled ramp, 0.1 apart): no ties in any pooling window."""
    size = int(np.prod(shape))
    values = (generator(seed).permutation(size) - size / 2.0) * 0.1
    return values.reshape(shape).astype(dtype)
