"""Activation layers: :class:`ReLU`, :class:`LeakyReLU`, :class:`Sigmoid` and :class:`Tanh`
(``torch.nn.ReLU``, ...)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _nn, _rconv
from ._util import _float_input, _real
from .functional import relu
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)`` (``torch.nn.ReLU``).

    NaN propagates, and the gradient passes where the input is not ``<= 0`` (0 at 0,
    passed at NaN).

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

    def __init__(self) -> None:
        self._out: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = relu(x)
        self._out = out
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        out = self._need(self._out, "output")
        g = self._check_grad(grad, out.shape)
        if not input_grad:
            return None
        if g.dtype is out.dtype and (out.dtype is _nn._F32 or out.dtype is _nn._F64):
            return _rconv.relu(out.reshape(-1), _nn._c(g).reshape(-1)).reshape(g.shape)
        return np.where(out <= 0, 0, g).astype(g.dtype, copy=False)


class LeakyReLU(Module):
    """Leaky rectified linear unit (``torch.nn.LeakyReLU``).

    The output is ``x`` where ``x > 0``, else ``negative_slope * x``; the gradient at 0 is
    `negative_slope`, as torch has it. NaN propagates.

    Parameters
    ----------
    negative_slope : float, optional
        Slope for negative inputs (default 0.01).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> act = nn.LeakyReLU(0.1)
    >>> act.forward(np.array([-2.0, 0.0, 3.0])), act.backward(np.ones(3))
    (array([-0.2,  0. ,  3. ]), array([0.1, 0.1, 1. ]))
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self._x: Optional[np.ndarray] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/activation.py, LeakyReLU.extra_repr (no inplace here)
        return f"negative_slope={self.negative_slope}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input("LeakyReLU", x)
        self._x = x.copy()
        s = x.dtype.type(self.negative_slope)
        out = x * s
        pos = x > 0
        np.copyto(out, x, where=pos)
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x = self._need(self._x, "input")
        g = self._check_grad(grad, x.shape)
        if not input_grad:
            return None
        out = (g * self.negative_slope).astype(np.result_type(g, x), copy=False)
        np.copyto(out, g, where=x > 0, casting="unsafe")
        return out


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``torch.nn.Sigmoid``); the gradient is ``y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> s = nn.Sigmoid()
    >>> s.forward(np.array([0.0, 1000.0, -1000.0])), s.backward(np.ones(3))
    (array([0.5, 1. , 0. ]), array([0.25, 0.  , 0.  ]))
    """

    def __init__(self) -> None:
        self._out: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input("Sigmoid", x)
        with np.errstate(over="ignore", under="ignore"):
            out = np.exp(-x)
        out += 1
        np.reciprocal(out, out=out)
        self._out = out
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        y = self._need(self._out, "output")
        g = self._check_grad(grad, y.shape)
        if not input_grad:
            return None
        return g * (y * (1 - y))


class Tanh(Module):
    """Hyperbolic tangent (``torch.nn.Tanh``); the gradient is ``1 - y**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> t = nn.Tanh()
    >>> t.forward(np.array([0.0, 20.0])), t.backward(np.ones(2))
    (array([0., 1.]), array([1., 0.]))
    """

    def __init__(self) -> None:
        self._out: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.tanh(_float_input("Tanh", x))
        self._out = out
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        y = self._need(self._out, "output")
        g = self._check_grad(grad, y.shape)
        if not input_grad:
            return None
        return g * (1 - y * y)
