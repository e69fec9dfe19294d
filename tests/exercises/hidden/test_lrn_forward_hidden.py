"""Hidden grading cases of lrn_forward (not shipped to students)."""

from __future__ import annotations

import numpy as np
import pytest
from exercise_support import assert_close, rand, student_module

student = student_module("minialexnet.functional.lrn")


def test_equals_the_pytorch_convention_with_n_times_alpha():
    """PyTorch's local_response_norm divides alpha by n and pads with zeros (written out here)."""
    x = rand(0, (2, 7, 3, 3), scale=3.0)
    size, alpha_torch, beta, k = 5, 0.5, 0.75, 2.0
    padded = np.pad(x**2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
    mean = sum(padded[:, i : i + x.shape[1]] for i in range(size)) / size
    torch_like = x / (k + alpha_torch * mean) ** beta
    out, _ = student.lrn_forward(x, n=size, k=k, alpha=alpha_torch / size, beta=beta)
    assert_close("out (against PyTorch's formula with alpha_torch = n * alpha)", out, torch_like)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8])
def test_every_window_size(ref, n):
    x = rand(n, (2, 9, 2, 2))
    out, _ = student.lrn_forward(x, n=n, k=0.5, alpha=0.8, beta=1.1)
    assert_close(f"out (n={n})", out, ref.loops.lrn_loops(x, n, 0.5, 0.8, 1.1), note=ref.note)
