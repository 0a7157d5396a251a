"""Functional forms of the layers of :mod:`rconv.nn` (``torch.nn.functional``).

The convolution and pooling functions and their gradients are the functions of :mod:`rconv`
itself (``rconv.nn.functional.conv2d is rconv.conv2d``), here under the names and in the
place torch has them; :func:`relu` and :func:`linear` are the forward passes of
:class:`rconv.nn.ReLU` and :class:`rconv.nn.Linear`.

Functions
---------
conv2d, conv_transpose2d
    Convolution and transposed convolution; their gradients ``conv2d_backward``,
    ``conv2d_input``, ``conv2d_weight`` and ``conv_transpose2d_backward``.
max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d, max_unpool2d
    Pooling; the gradients ``max_pool2d_backward``, ``avg_pool2d_backward``,
    ``adaptive_avg_pool2d_backward`` and ``adaptive_max_pool2d_backward``.
corr2d_backward
    The gradients of :func:`rconv.corr2d`.
relu
    ``max(x, 0)``.
linear
    ``x @ weight.T + bias``.

Examples
--------
>>> import numpy as np
>>> from rconv.nn import functional as F
>>> x = np.arange(-4.0, 12.0).reshape(1, 1, 4, 4)
>>> F.max_pool2d(F.relu(x), 2)[0, 0]
array([[ 1.,  3.],
       [ 9., 11.]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import _nn, _rconv
from .._nn import *  # noqa: F403 (the names of _nn.__all__)
from ._util import _linear_out, _linear_rows

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["linear", "relu"]
__all__ += _nn.__all__


def relu(input: ArrayLike) -> np.ndarray:
    """Rectified linear unit, ``max(input, 0)`` elementwise (``torch.nn.functional.relu``).

    NaN propagates. float32 and float64 run as a parallel Rust kernel, other dtypes through
    ``numpy.maximum``. This is the forward pass of :class:`rconv.nn.ReLU`.

    Parameters
    ----------
    input : array_like
        Any shape.

    Returns
    -------
    out : numpy.ndarray
        A new array of `input`'s shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> F.relu(np.array([-1.0, 0.0, 2.0, np.nan]))
    array([ 0.,  0.,  2., nan])
    >>> F.relu(np.array([-3, 3]))
    array([0, 3])
    """
    x = np.asarray(input)
    if x.dtype is _nn._F32 or x.dtype is _nn._F64:
        return _rconv.relu(_nn._c(x).reshape(-1)).reshape(x.shape)
    return np.maximum(x, 0)


def linear(input: ArrayLike, weight: ArrayLike, bias: Optional[ArrayLike] = None) -> np.ndarray:
    """Fully connected map ``input @ weight.T + bias`` (``torch.nn.functional.linear``).

    The forward pass of :class:`rconv.nn.Linear`: one matrix product in rconv's Rust over
    all the leading axes of `input`. float32 and float64 are computed natively, a
    float32/float64 mix in float64; integer arrays are converted to float64.

    Parameters
    ----------
    input : array_like
        ``(*, in_features)``, with any number of leading axes.
    weight : array_like
        ``(out_features, in_features)``.
    bias : array_like, optional
        ``(out_features,)`` (default None: no bias).

    Returns
    -------
    out : numpy.ndarray
        ``(*, out_features)``.

    Raises
    ------
    ValueError
        `weight` is not 2-D, the last axis of `input` is not ``in_features`` long, or
        `bias` has the wrong shape.
    TypeError
        An array of an unsupported dtype (complex, bool, float16, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> w = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    >>> F.linear(np.array([[1.0, 2.0, 3.0]]), w, np.array([0.0, 1.0]))
    array([[-2.,  4.]])
    >>> F.linear(np.ones((2, 5, 3)), w).shape
    (2, 5, 2)
    """
    w = _nn._float_array("linear", "weight", weight)
    if w.ndim != 2:
        raise ValueError(
            f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}"
        )
    b = None if bias is None else _nn._float_array("linear", "bias", bias)
    x, x2, dt = _linear_rows("linear", input, w, b)
    return _linear_out(x, x2, dt, w, b)
