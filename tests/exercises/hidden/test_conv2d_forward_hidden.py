"""Hidden grading cases of conv2d_forward (not shipped to students): random shapes."""

from __future__ import annotations

import pytest
from exercise_support import assert_close, generator, rand, student_module

student = student_module("minialexnet.functional.conv")


def _case(seed):
    rng = generator(seed)
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    h = int(rng.integers(max(1, kh - 2 * pad[0]), kh + 6))
    w = int(rng.integers(max(1, kw - 2 * pad[1]), kw + 6))
    x = rand(seed, (int(rng.integers(1, 4)), cin, h, w))
    wt = rand(seed + 1, (cout, cin // groups, kh, kw))
    b = rand(seed + 2, (cout,)) if rng.random() < 0.5 else None
    return x, wt, b, stride, pad, groups


@pytest.mark.parametrize("seed", range(12))
def test_random_configurations(ref, seed):
    x, w, b, stride, pad, groups = _case(seed)
    out, _ = student.conv2d_forward(x, w, b, stride=stride, pad=pad, groups=groups)
    what = f"out (x {x.shape}, w {w.shape}, stride {stride}, pad {pad}, groups {groups})"
    assert_close(what, out, ref.loops.conv2d_loops(x, w, b, stride, pad, groups), note=ref.note)


def test_kernel_as_large_as_the_padded_input(ref):
    x, w = rand(0, (2, 2, 3, 3)), rand(1, (3, 2, 5, 5))
    out, _ = student.conv2d_forward(x, w, None, pad=1)
    assert_close("out (one output pixel)", out, ref.loops.conv2d_loops(x, w, None, 1, 1))
