"""Grading tests of the exercise lrn_forward (paper section 3.3).

Reference values from the loop version ``lrn_loops``; the cache is checked by
running the reference ``lrn_backward`` on it. A large alpha makes every channel
of the window matter, so a window shifted or cut by one channel is caught.
"""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, assert_dtype, rand, student_module

student = student_module("minialexnet.functional.lrn")


# (x shape, n, k, alpha, beta)
CASES = [
    pytest.param((2, 12, 4, 4), 5, 2.0, 1e-4, 0.75, 80.0, id="paper-at-scale"),
    pytest.param((2, 9, 3, 3), 5, 1.0, 0.5, 0.75, 1.0, id="n5-large-alpha"),
    pytest.param((2, 9, 3, 2), 3, 0.5, 1.0, 1.0, 1.0, id="n3"),
    pytest.param((1, 8, 2, 3), 4, 2.0, 0.3, 0.5, 1.0, id="n4-even"),
    pytest.param((3, 6, 2, 2), 1, 1.5, 0.7, 1.25, 1.0, id="n1"),
    pytest.param((2, 3, 2, 2), 7, 1.0, 0.4, 0.75, 1.0, id="window-wider-than-channels"),
    pytest.param((5, 10), 5, 2.0, 0.2, 0.75, 1.0, id="2d-features"),
]


@pytest.mark.parametrize("shape, n, k, alpha, beta, scale", CASES)
def test_forward_matches_the_loop_version(ref, shape, n, k, alpha, beta, scale):
    x = rand(0, shape, scale=scale)
    out, _ = student.lrn_forward(x, n=n, k=k, alpha=alpha, beta=beta)
    expected = ref.loops.lrn_loops(x, n=n, k=k, alpha=alpha, beta=beta)
    assert_close(f"out (n={n}, k={k}, alpha={alpha}, beta={beta})", out, expected, note=ref.note)


def test_paper_defaults(ref):
    """Called as lrn_forward(x): n=5, k=2, alpha=1e-4, beta=0.75."""
    x = np.maximum(rand(1, (2, 16, 3, 3), scale=100.0), 0.0)
    out, _ = student.lrn_forward(x)
    assert_close("out (paper defaults)", out, ref.loops.lrn_loops(x), note=ref.note)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_dtype_and_leaves_x_alone(ref, dtype):
    x = rand(2, (2, 7, 3, 3), dtype, scale=2.0)
    before = x.copy()
    out, _ = student.lrn_forward(x, n=5, k=1.0, alpha=0.3, beta=0.75)
    assert_dtype("out", out, dtype)
    assert np.array_equal(x, before), "lrn_forward modified its input x"
    assert_close("out", out, ref.loops.lrn_loops(x, 5, 1.0, 0.3, 0.75), note=ref.note)


@pytest.mark.parametrize("n", [3, 4, 5])
def test_the_cache_works_with_the_reference_backward(ref, n):
    """The cache keeps (x, out, denom, scale, ...): denom = D, scale = D ** -beta."""
    x = rand(3, (2, 8, 3, 3))
    out, cache = student.lrn_forward(x, n=n, k=1.0, alpha=0.5, beta=0.75)
    dout = rand(4, x.shape)
    dx = ref.functional.lrn_backward(dout, cache)
    expected = ref.loops.lrn_backward_loops(dout, x, n=n, k=1.0, alpha=0.5, beta=0.75)
    assert_close(
        "dx from the reference lrn_backward on your cache",
        dx,
        expected,
        note="(check denom = k + alpha * window sum and scale = denom ** -beta)",
    )
