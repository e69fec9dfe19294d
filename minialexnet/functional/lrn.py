"""Local response normalization across channels ("brightness normalization").

Paper section 3.3, applied after the ReLU of conv1 and conv2:

    b[n, c, h, w] = a[n, c, h, w] / D[n, c, h, w] ** beta
    D[n, c, h, w] = k + alpha * sum_{c' in W(c)} a[n, c', h, w] ** 2

with the window W(c) = {c - n//2, ..., c + (n-1)//2} clipped to [0, C-1]
(for the paper's odd n = 5 that is c-2 .. c+2) and k = 2, n = 5,
alpha = 1e-4, beta = 0.75.

Conventions elsewhere: the paper's alpha multiplies the plain SUM. PyTorch's
``torch.nn.functional.local_response_norm`` and Caffe's LRN layer divide alpha by
n (they use the mean of the squares, counting the zero padding at the edges),
so ours with ``alpha`` equals theirs with ``alpha_torch = n * alpha``:
``lrn_forward(x, n=5, k=2, alpha=1e-4, beta=0.75)`` equals
``local_response_norm(x, size=5, alpha=5e-4, beta=0.75, k=2)``. (Caffe's
``bvlc_alexnet`` also uses k = 1, not 2.)

Gradient. With S = sum of squares and D = k + alpha * S as above, and the
upstream gradient g = dL/db,

    dL/da[j] = g[j] * D[j]^-beta - 2 * alpha * beta * a[j] * sum_{i : j in W(i)} g[i] * b[i] / D[i]

The first term is a's own scaling; the second is how a[j] raises the
denominators of its neighbours i (using a[i] * D[i]^(-beta-1) = b[i] / D[i]).
``j in W(i)`` means i runs over {j - (n-1)//2, ..., j + n//2}, the mirrored
window (the same window when n is odd).

Both window sums are n shifted slices of a zero-padded array added up: a
loop over n (5) offsets, never over channels or pixels.

On a GPU each pass is one CUDA kernel (:mod:`.cuda_kernels`), with the same
sums and caches; ``MINIALEXNET_KERNELS=0`` runs this code there too.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from ..backend import get_array_module
from . import _checks

try:  # the GPU kernels; absent from student copies (instructor-only, like conv's)
    from . import cuda_kernels
except ImportError:  # pragma: no cover - only in a released student copy
    cuda_kernels = None  # type: ignore[assignment]

__all__ = ["lrn_forward", "lrn_backward"]


def _zero_padded(like: Any, before: int, after: int) -> tuple[Any, Any]:
    """Zeros shaped like ``like`` plus ``before``/``after`` extra channels, and its middle view."""
    xp = get_array_module(like)
    shape = list(like.shape)
    c = shape[1]
    shape[1] = before + c + after
    padded = xp.zeros_like(like, shape=shape)
    return padded, padded[:, before : before + c]


def _window_sum(padded: Any, c: int) -> Any:
    """s[:, i] = padded[:, i] + padded[:, i+1] + ... over the window: one add per window offset."""
    total = padded[:, 0:c].copy()
    for d in range(1, padded.shape[1] - c + 1):
        total += padded[:, d : d + c]
    return total


def lrn_forward(
    x: Any, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> tuple[Any, tuple]:
    """LRN forward: ``b = a / (k + alpha * sum_{c' in W(c)} a_c'^2) ** beta`` (see module doc).

    Args:
        x: activations (N, C, H, W) (any ndim >= 2 with channels on axis 1).
        n: number of channels in the window (the paper: 5).
        k, alpha, beta: the paper's 2, 1e-4, 0.75. alpha multiplies the SUM over
            the window (PyTorch/Caffe alpha = n * this alpha).

    Returns:
        out shaped like x, and the cache for :func:`lrn_backward`.

    On a GPU: one CUDA kernel (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code).
    """
    fn = "lrn_forward"
    _checks.floating(x, fn, "x")
    if x.ndim < 2:
        raise ValueError(f"{fn}: x must have a channel axis (N, C, ...), got shape {x.shape}")
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{fn}: n (channels in the window) must be a positive int, got {n!r}")
    n = int(n)
    if cuda_kernels is not None and cuda_kernels.enabled(x):
        return cuda_kernels.lrn_forward(x, n, k, alpha, beta)
    ### BEGIN SOLUTION
    xp = get_array_module(x)
    dtype = x.dtype
    padded, middle = _zero_padded(x, n // 2, (n - 1) // 2)
    xp.multiply(x, x, out=middle)  # a^2, with n//2 zero channels before and (n-1)//2 after
    denom = _window_sum(padded, x.shape[1])  # S
    denom *= dtype.type(alpha)
    denom += dtype.type(k)  # D = k + alpha * S
    scale = xp.power(denom, dtype.type(-beta))  # D^-beta
    out = x * scale
    ### END SOLUTION
    cache = (x, out, denom, scale, n, alpha, beta)
    return out, cache


def lrn_backward(dout: Any, cache: tuple) -> Any:
    """LRN backward: ``dx_j = g_j D_j^-beta - 2 alpha beta x_j sum_{i: j in W(i)} g_i b_i / D_i``.

    Args:
        dout: upstream gradient g, shaped like x.
        cache: from :func:`lrn_forward`.

    Returns:
        dx shaped like x.

    On a GPU: one CUDA kernel (:mod:`.cuda_kernels`; ``MINIALEXNET_KERNELS=0``: this code).
    """
    x, out, denom, scale, n, alpha, beta = cache
    _checks.dout_shape(dout, x.shape, "lrn_backward")
    if cuda_kernels is not None and cuda_kernels.enabled(x):
        return cuda_kernels.lrn_backward(dout, cache)
    ### BEGIN SOLUTION
    xp = get_array_module(x)
    dtype = x.dtype
    dout = dout.astype(dtype, copy=False)
    padded, middle = _zero_padded(x, (n - 1) // 2, n // 2)  # the mirrored window
    xp.multiply(dout, out, out=middle)
    middle /= denom  # g_i b_i / D_i
    neighbours = _window_sum(padded, x.shape[1])  # sum_{i: j in W(i)} g_i b_i / D_i
    neighbours *= x
    neighbours *= dtype.type(-2.0 * alpha * beta)
    neighbours += dout * scale
    return neighbours
    ### END SOLUTION
