"""minialexnet: AlexNet from first principles in NumPy/CuPy, no autograd.

Layers of the library (each imports only those above it):
    backend     what a device is (NumPy on the CPU, CuPy on a GPU)
    functional  the maths: ``out, cache = op_forward(...)``, ``grads = op_backward(dout, cache)``
    layers      stateful wrappers holding params/grads, and ``Sequential``
    gradcheck   finite-difference checks of any forward/backward pair or layer
    towers      the two towers on their devices and what moves between them [3.2]
    models      alexnet, alexnet_cifar, alexnet_owt, cnn4 and the variants
    optim       SGD as the paper's update rule [5] and learning-rate schedules
    data        datasets (built-in shapes, CIFAR-10, image folders), transforms, loader
    checkpoint  atomic .npz checkpoints with JSON metadata
    viz         pictures: curves, filters, neighbours, top-5 panels, confusion matrix

Commands (``python -m minialexnet.NAME``): train, evaluate, predict, experiments,
bench, convert (ONNX -> checkpoint, e.g. the ImageNet-trained BVLC AlexNet), export
(checkpoint -> ONNX). ``tutorial`` holds what the notebooks in ``tutorials/`` share;
``onnx_zoo`` builds random-weight stand-ins of the published ONNX files.
"""

__version__ = "0.1.0"
