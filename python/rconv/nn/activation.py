"""Activation layers: :class:`ReLU`, :class:`LeakyReLU`, :class:`Sigmoid` and :class:`Tanh`
(``torch.nn.ReLU``, ...)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import _nn, _rconv
from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import (
    _float_input,
    _leaky_relu,
    _leaky_relu_grad,
    _real,
    _sigmoid,
    _sigmoid_grad,
    _tanh,
    _tanh_grad,
)
from .functional import relu
from .module import Module

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


def _backward(
    layer: Module,
    saved: Optional[np.ndarray],
    what: str,
    grad: Any,
    input_grad: bool,
    rule: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Optional[np.ndarray]:
    """An activation's backward pass: ``rule(g, s)`` of the checked gradient `g` and the
    array the forward pass saved, `s` (its `what`: the layer's input or output)."""
    s = layer._need(saved, what)
    g = layer._check_grad(grad, s.shape)
    return rule(g, s) if input_grad else None


def _relu_grad(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    if g.dtype is out.dtype and (out.dtype is _nn._F32 or out.dtype is _nn._F64):
        return _rconv.relu(out.reshape(-1), _nn._c(g).reshape(-1)).reshape(g.shape)
    return np.where(out <= 0, 0, g).astype(g.dtype, copy=False)


@_doc(examples=_NN_EXAMPLES_DOC)
class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)`` (``torch.nn.ReLU``).

    NaN propagates, and the gradient passes where the input is not ``<= 0`` (0 at 0,
    passed at NaN).

    float32/float64 run as parallel Rust kernels; other dtypes through NumPy. The output
    is a new array; backward reads the saved output, so modifying the input in place
    between the passes does not change the gradient.

    [examples]
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
        return _backward(self, self._out, "output", grad, input_grad, _relu_grad)


@_doc(examples=_NN_EXAMPLES_DOC)
class LeakyReLU(Module):
    """Leaky rectified linear unit (``torch.nn.LeakyReLU``).

    The output is ``x`` where ``x > 0``, else ``negative_slope * x``; the gradient at 0 is
    `negative_slope`, as torch has it. NaN propagates.

    float32/float64 run as parallel Rust kernels (torch's expression,
    ``x * (1 if x > 0 else negative_slope)``); other floating dtypes through NumPy. For
    ``negative_slope >= 0`` backward reads the output (``> 0`` exactly where the input is),
    else a copy of the input, so modifying the input in place between the passes does not
    change the gradient.

    Parameters
    ----------
    negative_slope : float, optional
        Slope for negative inputs (default 0.01).

    [examples]
    >>> act = nn.LeakyReLU(0.1)
    >>> act.forward(np.array([-2.0, 0.0, 3.0])), act.backward(np.ones(3))
    (array([-0.2,  0. ,  3. ]), array([0.1, 0.1, 1. ]))
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self._saved: Optional[np.ndarray] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/activation.py, LeakyReLU.extra_repr (no inplace here)
        return f"negative_slope={self.negative_slope}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input("LeakyReLU", x)
        out = _leaky_relu(x, self.negative_slope)
        self._saved = out if self.negative_slope >= 0 else x.copy()
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        return _backward(self, self._saved, "input", grad, input_grad, self._input_grad)

    def _input_grad(self, g: np.ndarray, s: np.ndarray) -> np.ndarray:
        return _leaky_relu_grad(g, s, self.negative_slope)


@_doc(examples=_NN_EXAMPLES_DOC)
class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``torch.nn.Sigmoid``); the gradient is ``y (1 - y)``.

    float32/float64 run as parallel Rust kernels (a vectorised exp within 1 ulp; the
    gradient ``grad * (1 - y) * y`` from the saved output, as torch computes it); other
    floating dtypes through NumPy.

    [examples]
    >>> s = nn.Sigmoid()
    >>> s.forward(np.array([0.0, 1000.0, -1000.0])), s.backward(np.ones(3))
    (array([0.5, 1. , 0. ]), array([0.25, 0.  , 0.  ]))
    """

    def __init__(self) -> None:
        self._out: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = _sigmoid(_float_input("Sigmoid", x))
        self._out = out
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        return _backward(self, self._out, "output", grad, input_grad, _sigmoid_grad)


@_doc(examples=_NN_EXAMPLES_DOC)
class Tanh(Module):
    """Hyperbolic tangent (``torch.nn.Tanh``); the gradient is ``1 - y**2``.

    float32/float64 run as parallel Rust kernels (within 1.5 ulp, full precision near 0;
    the gradient ``grad * (1 - y * y)`` from the saved output, as torch computes it); other
    floating dtypes through NumPy.

    [examples]
    >>> t = nn.Tanh()
    >>> t.forward(np.array([0.0, 20.0])), t.backward(np.ones(2))
    (array([0., 1.]), array([1., 0.]))
    """

    def __init__(self) -> None:
        self._out: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = _tanh(_float_input("Tanh", x))
        self._out = out
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        return _backward(self, self._out, "output", grad, input_grad, _tanh_grad)
