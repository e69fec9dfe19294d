"""Hidden grading cases of conv2d_backward (not shipped to students): random shapes, chunks."""

from __future__ import annotations

import pytest
from exercise_support import assert_close, generator, in_place, rand, student_module

student = student_module("minialexnet.functional.conv")


@pytest.mark.parametrize("seed", range(10))
def test_random_configurations(ref, monkeypatch, seed):
    if ref.isolated:
        monkeypatch.setattr(student, "im2col", ref.module("functional.conv").im2col)
    rng = generator(100 + seed)
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    h = int(rng.integers(max(1, kh - 2 * pad[0]), kh + 6))
    w = int(rng.integers(max(1, kw - 2 * pad[1]), kw + 6))
    x = rand(seed, (int(rng.integers(1, 4)), cin, h, w))
    wt = rand(seed + 1, (cout, cin // groups, kh, kw))
    b = rand(seed + 2, (cout,))
    col_bytes = 1 if seed % 3 == 0 else None  # sometimes one image per chunk
    out, cache = ref.functional.conv2d_forward(x, wt, b, stride, pad, groups, col_bytes=col_bytes)
    dout = rand(seed + 3, out.shape)
    in_place(cache[-1])  # the backward may take the kept columns out and write over them
    dx, dw, db = student.conv2d_backward(dout, cache)
    ex, ew, eb = ref.loops.conv2d_backward_loops(dout, x, wt, stride, pad, groups)
    what = f"(x {x.shape}, w {wt.shape}, stride {stride}, pad {pad}, groups {groups})"
    assert_close(f"dx {what}", dx, ex, note=ref.note)
    assert_close(f"dw {what}", dw, ew, note=ref.note)
    assert_close(f"db {what}", db, eb, note=ref.note)
