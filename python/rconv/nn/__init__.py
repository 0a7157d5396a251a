"""A small layer API for training CNNs from scratch with NumPy and rconv, with torch.nn's
names, shapes, defaults and semantics.

Each layer has ``forward(x)`` and ``backward(grad, input_grad=True)``; backward returns the
gradient with respect to the layer's input (``None`` when ``input_grad=False``) and stores
the parameter gradients, which :meth:`Module.grads` returns. **Each backward replaces the
gradients of the previous one** (there is no accumulation and so no ``zero_grad``).

Parameters are initialised as ``torch.nn`` does by default (Kaiming-uniform weights with
``a = sqrt(5)``, uniform biases), from a seedable ``numpy.random.Generator`` passed as
``rng=``. Layers with parameters or buffers take ``dtype=`` (float32, the default, or
float64); parameter-free layers follow their input's dtype.

Modules are found as torch finds them: a :class:`Module` subclass that holds layers as
attributes (or in lists, tuples or dicts of layers) gets ``params()``, ``buffers()``,
``grads()``, ``train()``/``eval()`` and ``state_dict()`` through them, with torch's dotted
names (``"block.conv1.weight"``, ``"layers.0.bias"``). :class:`Sequential` names its layers
``"0"``, ``"1"``, ... as torch does.

Where things live, as in ``torch.nn.modules``: ``module`` (Module), ``conv`` (Conv2d),
``linear`` (Linear), ``normalization`` (BatchNorm2d), ``pooling`` (MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d), ``activation`` (ReLU, LeakyReLU, Sigmoid, Tanh), ``dropout``
(Dropout), ``flatten`` (Flatten, in its own module as torch has it), ``container``
(Sequential) and ``loss`` (CrossEntropyLoss, MSELoss); every name is imported here, so
``rconv.nn.Conv2d`` is the way to reach it. :mod:`rconv.nn.functional` holds the
functional forms (``conv2d``, ``max_pool2d``, ..., ``relu``, ``linear``). The optimizers
live in :mod:`rconv.optim` (``rconv.nn.SGD``, ``rconv.nn.Adam`` and ``rconv.nn.AdamW`` are
the same classes, kept for existing code).

Examples
--------
>>> import numpy as np
>>> from rconv import nn, optim
>>> rng = np.random.default_rng(0)
>>> net = nn.Sequential(
...     nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
...     nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng))
>>> x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
>>> loss_fn = nn.CrossEntropyLoss()
>>> loss = loss_fn.forward(net.forward(x), np.array([3, 7]))
>>> _ = net.backward(loss_fn.backward(), input_grad=False)
>>> sorted(net.params())[:2], net.params()["0.weight"].shape
(['0.bias', '0.weight'], (4, 1, 3, 3))
>>> opt = optim.SGD(net, lr=0.1, momentum=0.9)
>>> opt.step()
"""

from __future__ import annotations

from . import functional
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "AdaptiveAvgPool2d",
    "Adam",
    "AdamW",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
]

# Last: rconv.optim imports Module from .module (loaded above), so this import closes no
# cycle. rconv/__init__.py imports nn before optim, which is the order this relies on.
from ..optim import SGD, Adam, AdamW  # noqa: E402
