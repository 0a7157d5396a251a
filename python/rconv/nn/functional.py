"""Functional forms of the layers of :mod:`rconv.nn` (``torch.nn.functional``).

The convolution and pooling functions and their gradients are the functions of :mod:`rconv`
itself (``rconv.nn.functional.conv2d is rconv.conv2d``), here under the names and in the
place torch has them; :func:`relu`, :func:`leaky_relu`, :func:`sigmoid`, :func:`tanh` and
:func:`linear` are the forward passes of :class:`rconv.nn.ReLU`, :class:`rconv.nn.LeakyReLU`,
:class:`rconv.nn.Sigmoid`, :class:`rconv.nn.Tanh` and :class:`rconv.nn.Linear`,
:func:`batch_norm` that of :class:`rconv.nn.BatchNorm2d` (for any ``(N, C, *)`` input), and
:func:`cross_entropy` and :func:`mse_loss` those of the losses.

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
relu, leaky_relu, sigmoid, tanh
    The activations.
linear
    ``x @ weight.T + bias``.
batch_norm
    Batch normalisation per channel (the forward pass).
cross_entropy, mse_loss
    The losses.

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

from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .. import _nn, _rconv
from .._nn import *  # noqa: F403 (the names of _nn.__all__)
from ._util import (
    _cross_entropy,
    _float_input,
    _leaky_relu,
    _linear_out,
    _linear_rows,
    _mse,
    _real,
    _reduction,
    _sigmoid,
    _tanh,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "batch_norm",
    "cross_entropy",
    "leaky_relu",
    "linear",
    "mse_loss",
    "relu",
    "sigmoid",
    "tanh",
]
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


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """Leaky rectified linear unit (``torch.nn.functional.leaky_relu``).

    ``input`` where it is ``> 0``, else ``negative_slope * input``, computed as torch does,
    ``x * (1 if x > 0 else negative_slope)``: NaN propagates. float32 and float64 run as a
    parallel Rust kernel, other floating dtypes through NumPy. The forward pass of
    :class:`rconv.nn.LeakyReLU`.

    Parameters
    ----------
    input : array_like
        A floating-point array of any shape.
    negative_slope : float, optional
        Slope for inputs ``<= 0`` (default 0.01).

    Returns
    -------
    out : numpy.ndarray
        A new array of `input`'s shape and dtype.

    Raises
    ------
    TypeError
        `input` is not floating-point, or `negative_slope` is not a real number.
    ValueError
        `negative_slope` is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> F.leaky_relu(np.array([-2.0, 0.0, 3.0, np.nan]), 0.1)
    array([-0.2,  0. ,  3. ,  nan])
    """
    return _leaky_relu(
        _float_input("leaky_relu", input), _real("leaky_relu", "negative_slope", negative_slope)
    )


def sigmoid(input: ArrayLike) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-input))`` (``torch.nn.functional.sigmoid``).

    float32 and float64 run as a parallel Rust kernel (a vectorised exp within 1 ulp;
    ``sigmoid(-1000) == 0``, ``sigmoid(1000) == 1``), other floating dtypes through NumPy.
    The forward pass of :class:`rconv.nn.Sigmoid`.

    Parameters
    ----------
    input : array_like
        A floating-point array of any shape.

    Returns
    -------
    out : numpy.ndarray
        A new array of `input`'s shape and dtype.

    Raises
    ------
    TypeError
        `input` is not floating-point.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> F.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    return _sigmoid(_float_input("sigmoid", input))


def tanh(input: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent (``torch.nn.functional.tanh``).

    float32 and float64 run as a parallel Rust kernel (within 1.5 ulp, full precision near
    0), other floating dtypes through ``numpy.tanh``. The forward pass of
    :class:`rconv.nn.Tanh`.

    Parameters
    ----------
    input : array_like
        A floating-point array of any shape.

    Returns
    -------
    out : numpy.ndarray
        A new array of `input`'s shape and dtype.

    Raises
    ------
    TypeError
        `input` is not floating-point.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> F.tanh(np.array([0.0, 20.0, -20.0]))
    array([ 0.,  1., -1.])
    """
    return _tanh(_float_input("tanh", input))


def cross_entropy(input: ArrayLike, target: ArrayLike) -> float:
    """Mean cross-entropy of class scores (``torch.nn.functional.cross_entropy``).

    With torch's defaults (mean over the batch, no weights). The forward pass of
    :class:`rconv.nn.CrossEntropyLoss`: ``-log softmax(input)[n, target[n]]`` averaged
    over the batch. float32/float64 scores run in Rust, others through NumPy.

    Parameters
    ----------
    input : array_like
        Scores ``(N, C)``.
    target : array_like
        Integer class indices ``(N,)`` in ``[0, C)``.

    Returns
    -------
    loss : float
        The mean loss (NaN for an empty batch, as torch's).

    Raises
    ------
    ValueError
        Wrong shapes, non-integer targets, or a target outside ``[0, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> round(F.cross_entropy(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 0])), 6)
    1.126928
    """
    return _cross_entropy("cross_entropy", input, target)[0]


def mse_loss(
    input: ArrayLike, target: ArrayLike, reduction: str = "mean"
) -> Union[float, np.ndarray]:
    """Mean squared error (``torch.nn.functional.mse_loss``).

    The forward pass of :class:`rconv.nn.MSELoss`: ``(input - target) ** 2`` reduced.
    float32/float64 run in Rust (the squares summed in float64), other floating dtypes
    through NumPy; the dtype is that of ``input - target``.

    Parameters
    ----------
    input : array_like
        A floating-point array.
    target : array_like
        An array of `input`'s shape.
    reduction : {'mean', 'sum', 'none'}, optional
        Average (default), sum, or the elementwise squared errors.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for 'mean' and 'sum', the array of squared errors for 'none'.

    Raises
    ------
    TypeError
        `input` is not floating-point.
    ValueError
        The shapes differ, or an unknown `reduction`.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> F.mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    2.0
    >>> F.mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0]), reduction="none")
    array([0., 4.])
    """
    return _mse("mse_loss", input, target, _reduction("mse_loss", reduction))[0]


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


def _running(func: str, name: str, a: Any, dt: np.dtype, update: bool) -> np.ndarray:
    """A running statistic as the kernel takes it: read-only, or updated in place (`a` itself
    when it is a C-contiguous array of the computing dtype, else a copy written back)."""
    if not update:
        return _nn._c(_nn._float_array(func, name, a), dt)
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{func}: {name} must be a NumPy array (updated in place when training), got "
            f"{type(a).__name__}"
        )
    if not a.flags.writeable:
        raise ValueError(f"{func}: {name} must be writeable (updated in place when training)")
    if a.dtype.kind != "f":
        raise TypeError(f"{func}: {name} must be a floating-point array, got dtype {a.dtype}")
    if a.dtype is dt and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.ascontiguousarray(a, dtype=dt).copy()


def batch_norm(
    input: ArrayLike,
    running_mean: Optional[np.ndarray],
    running_var: Optional[np.ndarray],
    weight: Optional[ArrayLike] = None,
    bias: Optional[ArrayLike] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    """Batch normalisation per channel, axis 1 (``torch.nn.functional.batch_norm``).

    ``(input - mean) / sqrt(var + eps) * weight + bias``: with the batch's mean and biased
    variance over every axis but 1 when `training` (the running statistics, if given, are
    then updated in place: ``running = (1 - momentum) * running + momentum * batch``, with
    the unbiased variance), else with `running_mean` and `running_var`. The forward pass of
    :class:`rconv.nn.BatchNorm2d`, as parallel Rust kernels (statistics accumulated in
    float64). float32 and float64 are computed natively, a float32/float64 mix of `input`,
    `weight` and `bias` in float64; integer arrays are converted to float64.

    Parameters
    ----------
    input : array_like
        ``(N, C, *)``: at least 2-D.
    running_mean, running_var : numpy.ndarray or None
        ``(C,)``; both or neither. Required when not `training`; updated in place when
        `training`.
    weight, bias : array_like, optional
        ``(C,)`` (default None: 1 and 0).
    training : bool, optional
        Normalise with the batch's statistics (default False).
    momentum : float, optional
        Weight of the batch in the running statistics (default 0.1).
    eps : float, optional
        Added to the variance inside the square root (default 1e-5).

    Returns
    -------
    out : numpy.ndarray
        A new array of `input`'s shape.

    Raises
    ------
    ValueError
        `input` has fewer than 2 dimensions; a per-channel array has the wrong shape; one
        value per channel when `training`; no running statistics when not; a negative
        `eps`.
    TypeError
        An array of an unsupported dtype; running statistics to update that are not NumPy
        arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.nn import functional as F
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> F.batch_norm(x, rm, rv, training=True, eps=0.0)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> rm, rv
    (array([0.2, 2. ]), array([ 1.1, 20.9]))
    >>> F.batch_norm(x, np.array([2.0, 20.0]), np.array([1.0, 100.0]), eps=0.0)
    array([[-1., -1.],
           [ 1.,  1.]])
    """
    f = "batch_norm"
    x = _nn._float_array(f, "input", input)
    if x.ndim < 2:
        raise ValueError(
            f"{f}: input must have at least 2 dimensions (N, C, *), got {x.ndim} dimension(s)"
        )
    w = None if weight is None else _nn._float_array(f, "weight", weight)
    b = None if bias is None else _nn._float_array(f, "bias", bias)
    dt = _nn._common(x, w, b)
    n, c = x.shape[:2]
    length = int(np.prod(x.shape[2:], dtype=np.int64))
    if training and n * length <= 1:
        raise ValueError(
            f"{f}: expected more than 1 value per channel when training, got input of shape "
            f"{x.shape}"
        )
    update = bool(training)
    rm = None if running_mean is None else _running(f, "running_mean", running_mean, dt, update)
    rv = None if running_var is None else _running(f, "running_var", running_var, dt, update)
    x4 = _nn._c(x, dt).reshape(n, c, 1, length)
    wk = None if w is None else _nn._c(w, dt)
    bk = None if b is None else _nn._c(b, dt)
    y, _, _ = _rconv.batch_norm2d(x4, wk, bk, rm, rv, training, momentum, eps, f)
    if update:
        # written back only now that the kernel succeeded
        if rm is not None and rm is not running_mean:
            assert isinstance(running_mean, np.ndarray)
            running_mean[...] = rm
        if rv is not None and rv is not running_var:
            assert isinstance(running_var, np.ndarray)
            running_var[...] = rv
    return y.reshape(x.shape)
