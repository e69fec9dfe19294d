"""The maths of AlexNet: pure functions, one forward/backward pair per operation.

    out, cache = op_forward(x, ...)      # cache: what backward needs
    grads      = op_backward(dout, cache)

Every function takes NumPy or CuPy arrays (it asks ``get_array_module`` which),
keeps the input's dtype, and never modifies its inputs. Arrays are NCHW; conv
weights are (C_out, C_in/groups, KH, KW), linear weights (out_features, in_features).
Slow loop versions for tests and teaching are in :mod:`minialexnet.functional.reference`.
"""

from .activation import relu_backward, relu_forward, tanh_backward, tanh_forward
from .conv import conv2d_backward, conv2d_forward
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward
from .loss import multiclass_hinge, softmax, softmax_cross_entropy
from .lrn import lrn_backward, lrn_forward
from .pool import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "lrn_forward",
    "lrn_backward",
    "relu_forward",
    "relu_backward",
    "tanh_forward",
    "tanh_backward",
    "dropout_forward",
    "dropout_backward",
    "linear_forward",
    "linear_backward",
    "softmax",
    "softmax_cross_entropy",
    "multiclass_hinge",
]
