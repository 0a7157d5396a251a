"""Pooling layers: :class:`MaxPool2d`, :class:`AvgPool2d` and :class:`AdaptiveAvgPool2d`
(``torch.nn.MaxPool2d``, ...), by the functional forms of :mod:`rconv`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from .. import _nn, _rconv
from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _arguments
from .module import Module

if TYPE_CHECKING:
    from .._rconv import IntPair, OutputSize

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]


@_doc(examples=_NN_EXAMPLES_DOC)
class MaxPool2d(Module):
    """Max pooling (``torch.nn.MaxPool2d``).

    The forward pass is :func:`rconv.max_pool2d`; the backward pass scatters the gradient
    through the indices it saved.

    Parameters
    ----------
    kernel_size : int or (int, int)
        As in :func:`rconv.max_pool2d`.
    stride, padding, dilation : int or (int, int), optional
        As in :func:`rconv.max_pool2d` (`stride` defaults to `kernel_size`).
    ceil_mode : bool, optional
        As in :func:`rconv.max_pool2d`.

    [examples]
    >>> pool = nn.MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: Optional[IntPair] = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> None:
        self.conf: Dict[str, Any] = _arguments(locals())
        # checked now, as the functional form checks them
        _rconv.pool_layer(
            **self.conf, count_include_pad=True, divisor_override=None, name="MaxPool2d"
        )
        self._x: Optional[np.ndarray] = None
        self._ind: Optional[np.ndarray] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/pooling.py, _MaxPoolNd.extra_repr: the arguments as given, the
        # stride defaulting to kernel_size
        c = self.conf
        stride = c["kernel_size"] if c["stride"] is None else c["stride"]
        return (
            f"kernel_size={c['kernel_size']}, stride={stride}, padding={c['padding']}, "
            f"dilation={c['dilation']}, ceil_mode={c['ceil_mode']}"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._ind = _nn.max_pool2d(x, return_indices=True, **self.conf)
        self._x = x
        return out

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.max_pool2d_backward(grad, x, indices=self._ind, **self.conf)


@_doc(examples=_NN_EXAMPLES_DOC)
class AvgPool2d(Module):
    """Average pooling (``torch.nn.AvgPool2d``), by :func:`rconv.avg_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
        As in :func:`rconv.avg_pool2d`.
    stride, padding : int or (int, int), optional
        As in :func:`rconv.avg_pool2d` (`stride` defaults to `kernel_size`).
    ceil_mode, count_include_pad : bool, optional
        As in :func:`rconv.avg_pool2d`.
    divisor_override : int, optional
        As in :func:`rconv.avg_pool2d`.

    [examples]
    >>> nn.AvgPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(
        self,
        kernel_size: IntPair,
        stride: Optional[IntPair] = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
    ) -> None:
        self.conf: Dict[str, Any] = _arguments(locals())
        _rconv.pool_layer(**self.conf, dilation=1, name="AvgPool2d")
        self._x: Optional[np.ndarray] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/pooling.py, _AvgPoolNd.extra_repr (AvgPool2d stores the stride
        # as kernel_size when it is None)
        c = self.conf
        stride = c["kernel_size"] if c["stride"] is None else c["stride"]
        return f"kernel_size={c['kernel_size']}, stride={stride}, padding={c['padding']}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return _nn.avg_pool2d(x, **self.conf)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.avg_pool2d_backward(grad, x, **self.conf)


@_doc(examples=_NN_EXAMPLES_DOC)
class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling to a fixed output size (``torch.nn.AdaptiveAvgPool2d``).

    ``AdaptiveAvgPool2d(1)`` is global average pooling.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        As in :func:`rconv.adaptive_avg_pool2d`.

    [examples]
    >>> gap = nn.AdaptiveAvgPool2d(1)
    >>> gap.forward(np.arange(8.0).reshape(1, 2, 2, 2)).ravel()
    array([1.5, 5.5])
    >>> gap.backward(np.ones((1, 2, 1, 1)))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """

    def __init__(self, output_size: OutputSize) -> None:
        self.output_size = _rconv.adaptive_output_size(output_size, "AdaptiveAvgPool2d")
        self._given_size = output_size  # for the repr, as torch stores it
        self._x: Optional[np.ndarray] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/pooling.py, _AdaptiveAvgPoolNd.extra_repr: output_size as given
        # (a layer pickled before _given_size existed shows its converted size)
        return f"output_size={getattr(self, '_given_size', self.output_size)}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return _nn.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.adaptive_avg_pool2d_backward(grad, x)
