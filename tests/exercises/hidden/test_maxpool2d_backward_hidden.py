"""Hidden grading cases of maxpool2d_backward (not shipped to students): random shapes, ties."""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, generator, rand, student_module

student = student_module("minialexnet.functional.pool")


@pytest.mark.parametrize("seed", range(10))
def test_random_configurations_with_ties(ref, seed):
    rng = generator(200 + seed)
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    shape = (
        int(rng.integers(1, 3)),
        int(rng.integers(1, 3)),
        kh + int(rng.integers(0, 7)),
        kw + int(rng.integers(0, 7)),
    )
    x = rng.integers(0, 4, size=shape).astype(np.float64)
    out, cache = ref.functional.maxpool2d_forward(x, (kh, kw), (sh, sw))
    dout = rand(seed, out.shape)
    dx = student.maxpool2d_backward(dout, cache)
    expected = ref.loops.maxpool2d_backward_loops(dout, x, (kh, kw), (sh, sw))
    assert_close(
        f"dx (x {shape}, size ({kh}, {kw}), stride ({sh}, {sw}))", dx, expected, note=ref.note
    )


def test_pixels_in_no_window_get_zero(ref):
    """Size 2 every 3: rows and columns 2, 5 and 6 of a 7x7 input lie in no window."""
    x = rand(1, (1, 2, 7, 7))
    out, cache = ref.functional.maxpool2d_forward(x, 2, 3)
    dx = np.asarray(student.maxpool2d_backward(np.ones(out.shape), cache))
    outside = np.ones((7, 7), dtype=bool)
    for r in (0, 1, 3, 4):
        for c in (0, 1, 3, 4):
            outside[r, c] = False
    assert not dx[:, :, outside].any(), "dx must be 0 at pixels that lie in no window"
    assert_close("dx", dx, ref.loops.maxpool2d_backward_loops(np.ones(out.shape), x, 2, 3))
