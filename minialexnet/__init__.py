"""minialexnet: AlexNet from first principles in NumPy/CuPy, no autograd.

Layers of the library (each imports only those above it):
    backend     what a device is (NumPy on the CPU, CuPy on a GPU)
    functional  the maths: ``out, cache = op_forward(...)``, ``grads = op_backward(dout, cache)``
    layers      stateful wrappers holding params/grads, and ``Sequential``
    gradcheck   finite-difference checks of any forward/backward pair or layer
"""

__version__ = "0.1.0"
