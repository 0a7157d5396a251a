"""A small layer API for training CNNs from scratch with NumPy and rconv.

Each layer has ``forward(x)``, ``backward(grad)`` (returns the gradient with respect to its
input and stores the parameter gradients), ``params()`` and ``grads()`` (dicts with torch's
parameter names and shapes). Parameters are initialised as ``torch.nn`` does by default
(Kaiming-uniform weights with ``a = sqrt(5)``, uniform biases), from a seedable
``numpy.random.Generator``.

Examples
--------
>>> import numpy as np
>>> from rconv import nn
>>> rng = np.random.default_rng(0)
>>> net = nn.Sequential(
...     nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
...     nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng))
>>> x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
>>> loss_fn = nn.CrossEntropyLoss()
>>> loss = loss_fn.forward(net.forward(x), np.array([3, 7]))
>>> _ = net.backward(loss_fn.backward())
>>> sorted(net.params())[:2], net.params()["0.weight"].shape
(['0.bias', '0.weight'], (4, 1, 3, 3))
>>> opt = nn.SGD(net, lr=0.1, momentum=0.9)
>>> opt.step()
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from . import _nn, _rconv

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "ReLU",
    "SGD",
    "Sequential",
]


class Module:
    """Base class: a layer with no parameters."""

    training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> Dict[str, np.ndarray]:
        """Parameters by torch name (the arrays themselves: updates are in place)."""
        return {}

    def grads(self) -> Dict[str, np.ndarray]:
        """Gradients of the last backward pass, same keys as :meth:`params`."""
        return {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _need(self, what: Optional[np.ndarray], name: str) -> np.ndarray:
        if what is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward ({name})")
        return what


def _kaiming_uniform(rng, shape, fan_in, dtype):
    # torch.nn default: kaiming_uniform_(a=sqrt(5)) -> bound = sqrt(6 / ((1 + 5) fan_in))
    bound = math.sqrt(6.0 / (6.0 * fan_in)) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2d(Module):
    """2-D convolution layer (``torch.nn.Conv2d``): ``weight`` ``(out, in/groups, kH, kW)``,
    ``bias`` ``(out,)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size, stride, padding, dilation, groups, padding_mode
        As in :func:`rconv.conv2d`.
    bias : bool, optional
        Learn an additive bias (default True).
    rng : numpy.random.Generator, optional
        Source of the initial weights (default: a new unseeded generator).
    dtype : dtype, optional
        float32 (default) or float64.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> conv = nn.Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(0))
    >>> y = conv.forward(np.ones((2, 3, 5, 5), np.float32))
    >>> y.shape, conv.backward(np.ones_like(y)).shape, conv.grads()["weight"].shape
    ((2, 8, 5, 5), (2, 3, 5, 5), (8, 3, 3, 3))
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        rng=None,
        dtype=np.float32,
    ):
        rng = np.random.default_rng() if rng is None else rng
        kh, kw = _nn._pair("Conv2d", "kernel_size", kernel_size)
        opts = _nn._conv_opts("Conv2d", stride, padding, dilation, groups, padding_mode)
        # validated as conv2d validates (on a probe input large enough for any padding)
        cin_g = in_channels // groups if type(groups) is int and groups > 0 else in_channels
        probe = (0, in_channels, 1 << 20, 1 << 20)
        _rconv.conv_geometry(probe, (out_channels, cin_g, kh, kw), opts)
        fan_in = in_channels // groups * kh * kw
        self.weight = _kaiming_uniform(
            rng, (out_channels, in_channels // groups, kh, kw), fan_in, dtype
        )
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.bias = rng.uniform(-bound, bound, out_channels).astype(dtype) if bias else None
        self.conf = dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        )
        self._x: Optional[np.ndarray] = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    def forward(self, x):
        self._x = x
        return _nn.conv2d(x, self.weight, self.bias, **self.conf)

    def backward(self, grad):
        x = self._need(self._x, "input")
        gi, gw, gb = _nn.conv2d_backward(grad, x, self.weight, **self.conf)
        self.grad_weight = gw
        if self.bias is not None:
            self.grad_bias = gb.astype(self.bias.dtype)
        return gi

    def params(self):
        p = {"weight": self.weight}
        if self.bias is not None:
            p["bias"] = self.bias
        return p

    def grads(self):
        g = {"weight": self.grad_weight}
        if self.bias is not None:
            g["bias"] = self.grad_bias
        return g


class MaxPool2d(Module):
    """Max pooling (``torch.nn.MaxPool2d``); the backward pass scatters through the indices
    saved by the forward pass.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.conf = dict(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
        )
        self._x = self._ind = None

    def forward(self, x):
        out, self._ind = _nn.max_pool2d(x, return_indices=True, **self.conf)
        self._x = x
        return out

    def backward(self, grad):
        x = self._need(self._x, "input")
        return _nn.max_pool2d_backward(grad, x, indices=self._ind, **self.conf)


class AvgPool2d(Module):
    """Average pooling (``torch.nn.AvgPool2d``).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> nn.AvgPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        self.conf = dict(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )
        self._x = None

    def forward(self, x):
        self._x = x
        return _nn.avg_pool2d(x, **self.conf)

    def backward(self, grad):
        return _nn.avg_pool2d_backward(grad, self._need(self._x, "input"), **self.conf)


class ReLU(Module):
    """``max(x, 0)``, as ``torch.nn.ReLU``: NaN propagates, and the gradient passes where
    the input is not ``<= 0`` (0 at 0, passed at NaN).

    float32/float64 run as parallel Rust kernels; other dtypes through NumPy. The output
    is a new array; backward reads the saved output, so modifying the input in place
    between the passes does not change the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> relu = nn.ReLU()
    >>> relu.forward(np.array([-1.0, 2.0, np.nan])), relu.backward(np.array([5.0, 5.0, 5.0]))
    (array([ 0.,  2., nan]), array([0., 5., 5.]))
    """

    def __init__(self):
        self._out = None

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype is _nn._F32 or x.dtype is _nn._F64:
            out = _rconv.relu(_nn._c(x).reshape(-1)).reshape(x.shape)
        else:
            out = np.maximum(x, 0)
        self._out = out
        return out

    def backward(self, grad):
        out = self._need(self._out, "output")
        g = np.asarray(grad)
        if g.shape != out.shape:
            raise ValueError(
                f"ReLU.backward: grad has shape {g.shape}, expected the output's {out.shape}"
            )
        if g.dtype is out.dtype and (out.dtype is _nn._F32 or out.dtype is _nn._F64):
            return _rconv.relu(out.reshape(-1), _nn._c(g).reshape(-1)).reshape(g.shape)
        return np.where(out <= 0, 0, g).astype(g.dtype, copy=False)


class Flatten(Module):
    """Flatten every axis after the first (``torch.nn.Flatten``).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> nn.Flatten().forward(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self):
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._need(self._shape, "shape"))


class Linear(Module):
    """Fully connected layer (``torch.nn.Linear``): ``y = x W^T + b``, ``weight``
    ``(out, in)``, ``bias`` ``(out,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(4, 2, rng=np.random.default_rng(0))
    >>> lin.forward(np.ones((3, 4), np.float32)).shape, lin.params()["weight"].shape
    ((3, 2), (2, 4))
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.weight = _kaiming_uniform(rng, (out_features, in_features), in_features, dtype)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.bias = rng.uniform(-bound, bound, out_features).astype(dtype) if bias else None
        self._x = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    # A 2-D input runs as a 1x1 convolution on rconv's own GEMM: NumPy's matmul would wake
    # OpenBLAS's thread pool, whose spinning threads then slow the next layers (measured: a
    # conv backward right after a Linear-sized matmul took 1.5x as long on 2 cores).

    def forward(self, x):
        self._x = x
        if np.ndim(x) == 2:
            b = self.bias
            y = _nn.conv2d(np.asarray(x)[:, :, None, None], self.weight[:, :, None, None], b)
            return y[:, :, 0, 0]
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def backward(self, grad):
        x = self._need(self._x, "input")
        if np.ndim(x) == 2 and np.ndim(grad) == 2:
            g4 = np.asarray(grad)[:, :, None, None]
            gi, gw, gb = _nn.conv2d_backward(
                g4, np.asarray(x)[:, :, None, None], self.weight[:, :, None, None]
            )
            self.grad_weight = gw[:, :, 0, 0].astype(self.weight.dtype, copy=False)
            if self.bias is not None:
                self.grad_bias = gb.astype(self.bias.dtype, copy=False)
            return gi[:, :, 0, 0]
        self.grad_weight = (grad.T @ x).astype(self.weight.dtype, copy=False)
        if self.bias is not None:
            self.grad_bias = grad.sum(axis=0).astype(self.bias.dtype, copy=False)
        return grad @ self.weight

    params = Conv2d.params
    grads = Conv2d.grads


class Sequential(Module):
    """Layers applied in order; parameter names are ``"<index>.<name>"`` as in torch.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    >>> sorted(net.params()), net.forward(np.ones((2, 1, 2, 2), np.float32)).shape
    (['1.bias', '1.weight'], (2, 3))
    """

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def params(self):
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params().items()
        }

    def grads(self):
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads().items()
        }

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


class CrossEntropyLoss:
    """Softmax + negative log-likelihood, averaged over the batch
    (``torch.nn.CrossEntropyLoss``).

    ``forward(logits, targets)`` takes ``(N, classes)`` scores and ``(N,)`` integer labels
    and returns the mean loss; ``backward()`` returns its gradient with respect to the logits,
    ``(softmax(logits) - onehot(targets)) / N``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> bool(abs(loss.forward(np.zeros((2, 4)), np.array([1, 3])) - np.log(4)) < 1e-12)
    True
    >>> loss.backward()
    array([[ 0.125, -0.375,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """

    def __init__(self):
        self._p = self._t = None

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:
        logits = np.asarray(logits)
        t = np.asarray(targets)
        if logits.ndim != 2 or t.shape != (logits.shape[0],):
            raise ValueError(
                f"CrossEntropyLoss: expected logits (N, C) and targets (N,), got "
                f"{logits.shape} and {t.shape}"
            )
        if t.dtype.kind not in "iu" or (t.size and (t.min() < 0 or t.max() >= logits.shape[1])):
            raise ValueError("CrossEntropyLoss: targets must be integer class indices in range")
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._t = np.exp(logp), t
        return float(-logp[np.arange(len(t)), t].mean())

    def backward(self) -> np.ndarray:
        if self._p is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        g = self._p.copy()
        g[np.arange(len(self._t)), self._t] -= 1
        return (g / len(self._t)).astype(self._p.dtype, copy=False)


class SGD:
    """Stochastic gradient descent with momentum and weight decay (``torch.optim.SGD``).

    ``v = momentum * v + (g + weight_decay * p)``; ``p -= lr * v`` (in place).

    Parameters
    ----------
    model : Module
        Its ``params()``/``grads()`` are read at every step.
    lr : float
        Learning rate.
    momentum : float, optional
        Default 0.
    weight_decay : float, optional
        L2 penalty, default 0.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[2.0]])
    >>> nn.SGD(lin, lr=0.1).step()
    >>> lin.weight
    array([[0.8]])
    """

    def __init__(self, model: Module, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: lr must be > 0, momentum and weight_decay >= 0")
        self.model, self.lr, self.momentum, self.weight_decay = model, lr, momentum, weight_decay
        self._v: Dict[str, np.ndarray] = {}

    def step(self) -> None:
        grads = self.model.grads()
        for name, p in self.model.params().items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                v = self._v.get(name)
                v = g.copy() if v is None else self.momentum * v + g
                self._v[name] = v
                g = v
            p -= (self.lr * g).astype(p.dtype, copy=False)
