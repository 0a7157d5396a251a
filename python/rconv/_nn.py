"""CNN layers with torch.nn.functional semantics: conv2d, conv_transpose2d, pooling, gradients.

Arrays are NCHW ``(N, C, H, W)`` or unbatched ``(C, H, W)``. float32 and float64 are computed
natively (the output has the input's dtype); a float32/float64 mix computes in float64;
integer inputs are converted to float64; complex, bool, float16, object and string arrays are
refused with a ``TypeError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple, Union, overload

import numpy as np

from . import _rconv
from ._docs import _OUT_DOC, _PADDING_MODE_DOC, _ZERO_PAD_OPTS_DOC, _doc
from ._named import _named
from ._signal import _backward

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._rconv import IntPair, OutputSize, Padding, PaddingMode, Shape

    #: `out=` of a function returning two or three arrays: a destination or None for each.
    Out2 = Tuple[Optional[np.ndarray], Optional[np.ndarray]]
    Out3 = Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]

# --------------------------------------------------------------------------- argument helpers
# Python converts arrays (array-likes, dtype promotion, unbatched inputs) and passes every
# option through; the options' types and values, and every shape rule, are checked in Rust.


def _float_array(func: str, name: str, x: Any) -> np.ndarray:
    a = x if type(x) is np.ndarray else _asarray(func, name, x)
    dt = a.dtype
    if dt is _F32 or dt is _F64:
        return a
    if dt.kind == "f" and dt.itemsize in (4, 8):
        # float32/float64, in native byte order (a big-endian array is converted)
        return a if dt.isnative else a.astype(_F64 if dt.itemsize == 8 else _F32)
    if dt.kind in "iu":
        return a.astype(np.float64)
    raise TypeError(
        f"{func}: {name} has unsupported dtype {dt}; expected float32 or float64 "
        "(integer arrays are converted to float64)"
    )


def _asarray(func: str, name: str, x: Any) -> np.ndarray:
    try:
        return np.asarray(x)
    except Exception as e:
        raise ValueError(f"{func}: {name} cannot be converted to an array: {e}") from e


_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _common(*arrays: Optional[np.ndarray]) -> np.dtype:
    for a in arrays:
        if a is not None and a.dtype is _F64:
            return _F64
    return _F32


def _c(a: np.ndarray, dt: Optional[np.dtype] = None) -> np.ndarray:
    """C-contiguous and aligned (arrays unpickled from a buffer, e.g. by Dask workers, or
    made by ``np.frombuffer`` at an odd offset can be unaligned): what the kernels read."""
    if (dt is None or a.dtype is dt) and a.flags.c_contiguous and a.flags.aligned:
        return a
    out = np.ascontiguousarray(a, dtype=dt)
    return out if out.flags.aligned else out.copy()


def _batched(func: str, name: str, x: np.ndarray) -> Tuple[np.ndarray, bool]:
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return x[None], True
    raise ValueError(
        f"{func}: {name} must be 3-D (C, H, W) or 4-D (N, C, H, W), got {x.ndim} dimension(s)"
    )


def _out(out: Any, unbatched: bool) -> Any:
    """An `out=` destination as the compiled layer takes it: an unbatched (3-D) array as a
    batched view of itself (the same memory). Everything else goes through as given, and
    the compiled layer checks it."""
    if unbatched and isinstance(out, np.ndarray) and out.ndim == 3:
        return out[None]
    return out


def _outs(func: str, out: Any, n: int) -> Tuple[Any, ...]:
    """`out=` of a function returning `n` arrays: None, or a tuple of `n` (array or None)."""
    if out is None:
        return (None,) * n
    if not isinstance(out, (tuple, list)) or len(out) != n:
        raise TypeError(
            f"{func}: out must be a tuple of {n} arrays (or None entries), got {type(out).__name__}"
        )
    return tuple(out)


def _unbatch(a: np.ndarray, unbatched: bool) -> np.ndarray:
    return a[0] if unbatched else a


def _grad_output(func: str, g: Any, unbatched: bool) -> np.ndarray:
    g = _float_array(func, "grad_output", g)
    want = 3 if unbatched else 4
    if g.ndim != want:
        raise ValueError(
            f"{func}: grad_output must be {want}-D like the layer's output, got "
            f"{g.ndim} dimension(s)"
        )
    return g[None] if unbatched else g


# --------------------------------------------------------------------------- convolution
# The functions rconv.dask applies to batch chunks are written once, with the name their
# errors carry as a first argument; @_named makes the public function without it (rconv.dask
# calls the implementation, inspect.unwrap(f), with its own name).


@_named
@_doc(padding_mode=_PADDING_MODE_DOC, out=_OUT_DOC)
def conv2d(
    name: str,
    /,
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """2-D convolution (cross-correlation) over NCHW input, as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
    weight : array_like
        ``(C_out, C_in / groups, kH, kW)``.
    bias : array_like, optional
        ``(C_out,)``, added to every output position.
    stride : int or (int, int), optional
        Step between windows (>= 1).
    padding : int, (int, int), 'valid' or 'same', optional
        Implicit padding on both sides of each spatial axis. ``'same'`` pads
        ``dilation * (k - 1) // 2`` before and the rest after (stride must be 1).
    dilation : int or (int, int), optional
        Spacing between kernel taps (>= 1).
    groups : int, optional
        Channels are split into `groups` independent convolutions.
    [padding_mode]
    [out]

    Returns
    -------
    out : ndarray
        ``(N, C_out, OH, OW)`` (or unbatched), ``OH = (H + pad_h - dilation*(kH-1) - 1)
        // stride + 1`` with ``pad_h`` the total padding of the axis.

    Raises
    ------
    ValueError
        Channel mismatch, groups not dividing the channels, kernel larger than the padded
        input, stride/dilation < 1, negative padding, 'same' with stride > 1, bad
        padding_mode, wrong bias length.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    .. math::

        out[n, o, y, x] &= b[o] + \\sum_{c, i, j} W[o, c, i, j]\\,
            x_p[n, c_o, y_i, x_j], \\\\
        & \\text{with } c_o = g(o) C_g + c,\\ y_i = y s_h + i d_h,\\ x_j = x s_w + j d_w

    with ``x_p`` the padded input. Computed as tiled im2col + GEMM (bounded workspace), a
    plain GEMM for 1x1 layers, direct kernels for stride-1 depthwise layers, and Winograd
    F(2x2, 3x3) for 3x3 stride-1 ungrouped layers with at least 32 channels in and out and
    at least 48 output tiles of 2x2 per image (2.25 times fewer multiplications; rounding
    differs from the direct sum by a few units in the last place; a sample's result does
    not depend on the rest of the batch; the same transform computes the input gradient in
    :func:`conv2d_backward`). The environment variable ``RCONV_NO_WINOGRAD`` (set to
    anything before the first call) turns it off.

    Examples
    --------
    The d2l two-channel example:

    >>> import numpy as np
    >>> import rconv
    >>> X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    >>> K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    >>> rconv.conv2d(X, K[None])
    array([[[ 56.,  72.],
            [104., 120.]]])
    """
    return _conv2d(
        name, input, weight, bias, stride, padding, dilation, groups, padding_mode, out, False
    )


def _conv2d(
    name: str,
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike],
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    out: Optional[np.ndarray],
    relu: bool,
) -> np.ndarray:
    """:func:`conv2d`, and with `relu` ``relu(conv2d(...))`` with the ReLU fused into the
    convolution's output pass (measured slower than the two layers in a ``Sequential``, so no
    layer uses it yet)."""
    x = _float_array(name, "input", input)
    w = _float_array(name, "weight", weight)
    b = None if bias is None else _float_array(name, "bias", bias)
    x, unbatched = _batched(name, "input", x)
    dt = _common(x, w, b)
    res = _rconv.conv2d(
        _c(x, dt),
        _c(w, dt),
        None if b is None else _c(b, dt),
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
        _out(out, unbatched),
        name,
        relu,
    )
    if out is not None:
        return out
    return res[0] if unbatched else res


@_named
@_doc(padding_mode=_PADDING_MODE_DOC)
def conv2d_backward(
    name: str,
    /,
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
    *,
    out: Optional[Out3] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of :func:`conv2d`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the conv2d output, shape ``(N, C_out, OH, OW)``
        (or unbatched).
    input, weight : array_like
        The forward call's input and weight.
    stride : int or (int, int), optional
        As in :func:`conv2d`.
    padding : int, (int, int), 'valid' or 'same', optional
        As in :func:`conv2d`.
    dilation : int or (int, int), optional
        As in :func:`conv2d`.
    groups : int, optional
        As in :func:`conv2d`.
    [padding_mode]
    out : tuple of 3 (numpy.ndarray or None), optional
        Keyword-only destinations ``(grad_input, grad_weight, grad_bias)``, ``None`` where a
        new array is wanted. Each given array is checked as ``out`` of :func:`conv2d`
        (exact shape and dtype, C-contiguous, writeable, no memory shared with the inputs),
        overwritten and returned in its place.

    Returns
    -------
    grad_input : ndarray
        Same shape as `input`.
    grad_weight : ndarray
        Same shape as `weight`.
    grad_bias : ndarray
        ``(C_out,)``: `grad_output` summed over batch and space.

    Raises
    ------
    ValueError
        As :func:`conv2d`, and when `grad_output` does not have the output's shape.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    The hand-derived formulas of the source material, generalised: the input gradient is the
    full correlation of `grad_output` (spread with ``stride - 1`` zeros between values) with
    the kernel rotated by 180 degrees, ``dX = pad(dY) * rot180(W)``; the weight gradient is
    the correlation of the input with `grad_output`, ``dW = X * dY``; the bias gradient is
    ``db = sum(dY)``. Computed as ``col2im(W^T dY)`` and per-thread partial GEMMs
    ``dY col^T`` summed in a fixed order (results do not depend on the thread count).

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3))
    >>> gx, gw, gb = rconv.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gx[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    >>> gw[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> gb
    array([4.])
    """
    x = _float_array(name, "input", input)
    w = _float_array(name, "weight", weight)
    x, unbatched = _batched(name, "input", x)
    g = _grad_output(name, grad_output, unbatched)
    dt = _common(x, w, g)
    outs = _outs(name, out, 3)
    dest = (_out(outs[0], unbatched), outs[1], outs[2])
    gi, gw, gb = _rconv.conv2d_backward(
        _c(g, dt), _c(x, dt), _c(w, dt), stride, padding, dilation, groups, padding_mode, dest, name
    )
    gi = _unbatch(gi, unbatched) if outs[0] is None else outs[0]
    return gi, gw, gb


@_doc(zero_pad_opts=_ZERO_PAD_OPTS_DOC, out=_OUT_DOC)
def conv2d_input(
    input_shape: Shape,
    weight: ArrayLike,
    grad_output: ArrayLike,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its input, as ``torch.nn.grad.conv2d_input``.

    Parameters
    ----------
    input_shape : sequence of int
        Shape of the forward input, ``(N, C_in, H, W)`` or ``(C_in, H, W)``.
    weight : array_like
        The forward weight.
    grad_output : array_like
        Gradient with respect to the forward output.
    [zero_pad_opts]
    [out]

    Returns
    -------
    grad_input : ndarray
        Shape `input_shape`.

    Raises
    ------
    ValueError
        Inconsistent shapes (see :func:`conv2d_backward`).
    TypeError
        Unsupported dtype, non-integer parameters.

    See Also
    --------
    conv2d_backward : All three gradients at once.

    Notes
    -----
    ``dX[n, g C_g + c, y s + i d - p, x s + j d - p] += sum_o W[o, c, i, j] dY[n, o, y, x]``
    (the adjoint of :func:`conv2d`), computed as ``col2im(W^T dY)``.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.conv2d_input((1, 1, 3, 3), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """

    f = "conv2d_input"
    w = _float_array(f, "weight", weight)
    g = _float_array(f, "grad_output", grad_output)
    g, unbatched = _batched(f, "grad_output", g)
    dt = _common(w, g)
    gi = _rconv.conv2d_grad(
        _c(g, dt),
        _c(w, dt),
        input_shape,
        "input",
        stride,
        padding,
        dilation,
        groups,
        _out(out, unbatched),
        unbatched,
        f,
    )
    return _unbatch(gi, unbatched) if out is None else out


@_doc(zero_pad_opts=_ZERO_PAD_OPTS_DOC, out=_OUT_DOC)
def conv2d_weight(
    input: ArrayLike,
    weight_shape: Shape,
    grad_output: ArrayLike,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient of :func:`conv2d` with respect to its weight, as ``torch.nn.grad.conv2d_weight``.

    Parameters
    ----------
    input : array_like
        The forward input.
    weight_shape : sequence of int
        ``(C_out, C_in / groups, kH, kW)``.
    grad_output : array_like
        Gradient with respect to the forward output.
    [zero_pad_opts]
    [out]

    Returns
    -------
    grad_weight : ndarray
        Shape `weight_shape`, summed over the batch.

    Raises
    ------
    ValueError
        Inconsistent shapes (see :func:`conv2d_backward`).
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    ``dW[o, c, i, j] = sum_{n, y, x} dY[n, o, y, x] X_p[n, g C_g + c, y s + i d, x s + j d]``
    with ``X_p`` the zero-padded input, computed as per-thread partial GEMMs ``dY col^T``.

    Examples
    --------
    The weight gradient is the correlation of the input with the output gradient:

    >>> import numpy as np
    >>> import rconv
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> rconv.conv2d_weight(x, (1, 1, 2, 2), np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """

    f = "conv2d_weight"
    x = _float_array(f, "input", input)
    x, unbatched = _batched(f, "input", x)
    g = _grad_output(f, grad_output, unbatched)
    dt = _common(x, g)
    gw = _rconv.conv2d_grad(
        _c(g, dt),
        _c(x, dt),
        weight_shape,
        "weight",
        stride,
        padding,
        dilation,
        groups,
        out,
        False,
        f,
    )
    return gw if out is None else out


@_doc(out=_OUT_DOC)
def conv_transpose2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
    weight : array_like
        ``(C_in, C_out / groups, kH, kW)``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding : int or (int, int), optional
        Those of the convolution this operator transposes.
    output_padding : int or (int, int), optional
        Extra size added to one side of the output (smaller than stride or dilation).
    groups : int, optional
        Number of blocked connections from input to output channels.
    dilation : int or (int, int), optional
        That of the convolution this operator transposes.
    [out]

    Returns
    -------
    out : ndarray
        ``(N, C_out, OH, OW)`` with ``OH = (H - 1) stride - 2 padding + dilation (kH - 1) +
        output_padding + 1``.

    Raises
    ------
    ValueError
        Channel mismatch, groups not dividing channels, bad output_padding, non-positive
        output size, negative padding, stride/dilation < 1.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    The adjoint of :func:`conv2d`: ``conv_transpose2d(y, W)`` equals the input gradient of a
    convolution with weight ``W`` whose output gradient is ``y`` (the stride spreads the input
    with zeros, the kernel is rotated by 180 degrees).

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """

    f = "conv_transpose2d"
    x = _float_array(f, "input", input)
    w = _float_array(f, "weight", weight)
    b = None if bias is None else _float_array(f, "bias", bias)
    x, unbatched = _batched(f, "input", x)
    dt = _common(x, w, b)
    res = _rconv.conv_transpose2d(
        _c(x, dt),
        _c(w, dt),
        None if b is None else _c(b, dt),
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        _out(out, unbatched),
        f,
    )
    return _unbatch(res, unbatched) if out is None else out


def conv_transpose2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of :func:`conv_transpose2d`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the conv_transpose2d output.
    input, weight : array_like
        The forward call's input and weight.
    stride, padding, output_padding : int or (int, int), optional
        As in :func:`conv_transpose2d`.
    groups : int, optional
        As in :func:`conv_transpose2d`.
    dilation : int or (int, int), optional
        As in :func:`conv_transpose2d`.

    Returns
    -------
    grad_input : ndarray
        Same shape as `input`: the convolution of `grad_output` with `weight`.
    grad_weight : ndarray
        Same shape as `weight`.
    grad_bias : ndarray
        ``(C_out,)``.

    Raises
    ------
    ValueError
        As :func:`conv_transpose2d`, and when `grad_output` has the wrong shape.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    ``grad_input = conv2d(grad_output, weight)`` with the same stride, padding, dilation and
    groups; ``grad_weight`` is the weight gradient of that convolution with the roles of input
    and output exchanged; ``grad_bias = sum(grad_output)`` over batch and space.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> gi, gw, gb = rconv.conv_transpose2d_backward(
    ...     np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)
    >>> gi[0, 0], gw[0, 0], gb
    (array([[4., 4.],
           [4., 4.]]), array([[4., 4.],
           [4., 4.]]), array([16.]))
    """

    f = "conv_transpose2d_backward"
    x = _float_array(f, "input", input)
    w = _float_array(f, "weight", weight)
    x, unbatched = _batched(f, "input", x)
    g = _grad_output(f, grad_output, unbatched)
    dt = _common(x, w, g)
    gi, gw, gb = _rconv.conv_transpose2d_backward(
        _c(g, dt), _c(x, dt), _c(w, dt), stride, padding, output_padding, groups, dilation, f
    )
    return _unbatch(gi, unbatched), gw, gb


def _indices(func: str, indices: Any, unbatched: bool) -> np.ndarray:
    ind = np.asarray(indices)
    if ind.dtype.kind not in "iu":
        raise TypeError(f"{func}: indices must be an integer array, got dtype {ind.dtype}")
    return _c(ind[None] if unbatched else ind, np.dtype(np.int64))


def _pool_input(func: str, x: Any) -> Tuple[np.ndarray, bool]:
    a = _float_array(func, "input", x)
    a, unbatched = _batched(func, "input", a)
    return _c(a), unbatched


@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
    out: Optional[Out2] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    out: Union[None, np.ndarray, Out2] = None,
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]: ...
@_named
def max_pool2d(
    name: str,
    /,
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    out: Union[None, np.ndarray, Out2] = None,
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Window step; default `kernel_size`.
    padding : int or (int, int), optional
        Implicit -inf padding, at most half the kernel size.
    dilation : int or (int, int), optional
        Spacing between window elements.
    ceil_mode : bool, optional
        Use ceil instead of floor for the output size (a last window starting in the right
        padding is dropped).
    return_indices : bool, optional
        Also return the argmax of each window, flattened over the ``H * W`` plane (int64).
    out : numpy.ndarray, or (with `return_indices`) a tuple of 2, optional
        Keyword-only destination: C-contiguous, writeable, of exactly the result's shape and
        dtype (int64 for the indices), sharing no memory with the input; with
        `return_indices`, a pair ``(values, indices)`` with ``None`` where a new array is
        wanted. Given arrays are overwritten and returned (the same objects); any other
        array raises ``ValueError`` or ``TypeError``.

    Returns
    -------
    out : ndarray
        ``(N, C, OH, OW)``; ``(out, indices)`` with `return_indices`.

    Raises
    ------
    ValueError
        Padding over half the kernel, output size < 1, kernel/stride/dilation < 1.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    ``OH = floor((H + 2 p - d (k - 1) - 1) / s) + 1`` (ceil with `ceil_mode`). The window is
    scanned in row-major order and an element replaces the running maximum when it is greater
    or NaN (torch's rule): ties keep the first maximum, and a window holding NaN returns NaN
    with the index of its *last* NaN in row-major order.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.max_pool2d(np.arange(9.0).reshape(1, 3, 3), 2, stride=1)
    array([[[4., 5.],
            [7., 8.]]])
    >>> rconv.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 3, stride=2, padding=1)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    x, unbatched = _pool_input(name, input)
    opts = (kernel_size, stride, padding, dilation, ceil_mode)
    if return_indices:
        ov, oi = _outs(name, out, 2)
        res, ind = _rconv.max_pool2d(x, *opts, True, _out(ov, unbatched), _out(oi, unbatched), name)
        assert ind is not None  # always returned with return_indices=True
        res = _unbatch(res, unbatched) if ov is None else ov
        return res, _unbatch(ind, unbatched) if oi is None else oi
    res, _ = _rconv.max_pool2d(x, *opts, False, _out(out, unbatched), None, name)
    # `out` is None or, accepted by the compiled layer, the array it wrote
    return out if isinstance(out, np.ndarray) else _unbatch(res, unbatched)


@_named
@_doc(out=_OUT_DOC)
def max_pool2d_backward(
    name: str,
    /,
    grad_output: ArrayLike,
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    indices: Optional[ArrayLike] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output.
    input : array_like
        The forward input.
    kernel_size : int or (int, int)
        As in :func:`max_pool2d`.
    stride, padding, dilation : int or (int, int), optional
        As in :func:`max_pool2d`.
    ceil_mode : bool, optional
        As in :func:`max_pool2d`.
    indices : array_like of int, optional
        The indices ``max_pool2d(..., return_indices=True)`` returned for this input. With
        them the gradient is a plain scatter (as torch's autograd does it); without them the
        argmax of every window is recomputed from `input` (same result, slower).
    [out]

    Returns
    -------
    grad_input : ndarray
        Shape of `input`: each output's gradient is routed to its window's argmax (and
        accumulated where windows overlap).

    Raises
    ------
    ValueError
        As :func:`max_pool2d`, and when `grad_output` has the wrong shape.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    ``dX[n, c, argmax(window)] += dY[n, c, y, x]`` for every output; the argmax follows the
    rule of :func:`max_pool2d`: the first maximum in row-major order, or, in a window holding
    NaN, its last NaN in row-major order (which receives the whole gradient).

    With `indices`, any index outside its plane (negative, or at least ``H * W``) is a
    ``ValueError``. torch's CPU backward skips ``-1`` silently; rconv refuses it on purpose,
    since a gradient would otherwise be dropped without a word. In-plane indices are
    accepted as given.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> x = np.array([[[1.0, 2.0], [4.0, 3.0]]])
    >>> rconv.max_pool2d_backward(np.array([[[10.0]]]), x, 2)
    array([[[ 0.,  0.],
            [10.,  0.]]])
    """
    x, unbatched = _pool_input(name, input)
    g = _grad_output(name, grad_output, unbatched)
    dt = _common(x, g)
    ind = None if indices is None else _indices(name, indices, unbatched)
    gi = _rconv.max_pool2d_backward(
        _c(g, dt),
        _c(x, dt),
        kernel_size,
        stride,
        padding,
        dilation,
        ceil_mode,
        ind,
        _out(out, unbatched),
        name,
    )
    return _unbatch(gi, unbatched) if out is None else out


def max_unpool2d(
    input: ArrayLike,
    indices: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    output_size: Optional[Shape] = None,
) -> np.ndarray:
    """Partial inverse of :func:`max_pool2d`, as ``torch.nn.functional.max_unpool2d``.

    Parameters
    ----------
    input : array_like
        Pooled values, ``(N, C, H, W)`` or ``(C, H, W)``.
    indices : array_like of int
        The indices :func:`max_pool2d` returned (flattened per plane).
    kernel_size : int or (int, int)
        That of the pooling.
    stride, padding : int or (int, int), optional
        Those of the pooling (`stride` defaults to `kernel_size`).
    output_size : sequence of int, optional
        Target spatial size (the last two entries are used); default
        ``(H - 1) * stride - 2 * padding + kernel_size``.

    Returns
    -------
    out : ndarray
        Zeros except ``out.flat-per-plane[indices] = input``.

    Raises
    ------
    ValueError
        An index outside the output plane, an output_size out of range, mismatched shapes.
    TypeError
        Unsupported dtype, non-integer indices.

    Notes
    -----
    ``out[n, c].flat[indices[n, c, y, x]] = input[n, c, y, x]``; positions not named by an
    index are zero.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> x = np.array([[[1.0, 2.0], [4.0, 3.0]]])
    >>> out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    >>> rconv.max_unpool2d(out, ind, 2)
    array([[[0., 0.],
            [4., 0.]]])
    """

    f = "max_unpool2d"
    x, unbatched = _pool_input(f, input)
    ind = _indices(f, indices, unbatched)
    res = _rconv.max_unpool2d(x, ind, kernel_size, stride, padding, output_size, f)
    return _unbatch(res, unbatched)


@_named
@_doc(out=_OUT_DOC)
def avg_pool2d(
    name: str,
    /,
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Window step; default `kernel_size`.
    padding : int or (int, int), optional
        Implicit zero padding, at most half the kernel size.
    ceil_mode : bool, optional
        Ceil instead of floor for the output size.
    count_include_pad : bool, optional
        Count the zero padding in the divisor (default True).
    divisor_override : int, optional
        Divide by this instead.
    [out]

    Returns
    -------
    out : ndarray
        ``(N, C, OH, OW)``.

    Raises
    ------
    ValueError
        Padding over half the kernel, output size < 1, zero divisor.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    The divisor is the window clipped to the padded input (``count_include_pad``) or to the
    input itself; a window entirely in the padding yields 0.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.avg_pool2d(np.arange(9.0).reshape(1, 3, 3), 2, stride=1)
    array([[[2., 3.],
            [5., 6.]]])
    """
    x, unbatched = _pool_input(name, input)
    res = _rconv.avg_pool2d(
        x,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        _out(out, unbatched),
        name,
    )
    return _unbatch(res, unbatched) if out is None else out


@_named
@_doc(out=_OUT_DOC)
def avg_pool2d_backward(
    name: str,
    /,
    grad_output: ArrayLike,
    input: ArrayLike,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output.
    input : array_like
        The forward input (only its shape is used).
    kernel_size : int or (int, int)
        As in :func:`avg_pool2d`.
    stride, padding : int or (int, int), optional
        As in :func:`avg_pool2d`.
    ceil_mode, count_include_pad : bool, optional
        As in :func:`avg_pool2d`.
    divisor_override : int, optional
        As in :func:`avg_pool2d`.
    [out]

    Returns
    -------
    grad_input : ndarray
        Shape of `input`: each output's gradient spread evenly (divided by the same divisor
        as the forward pass) over its window.

    Raises
    ------
    ValueError
        As :func:`avg_pool2d`, and when `grad_output` has the wrong shape.
    TypeError
        Unsupported dtype, non-integer parameters.

    Notes
    -----
    ``dX[window] += dY[n, c, y, x] / divisor`` for every output, with the divisor of the
    forward pass.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.avg_pool2d_backward(np.array([[[4.0]]]), np.zeros((1, 2, 2)), 2)
    array([[[1., 1.],
            [1., 1.]]])
    """
    x, unbatched = _pool_input(name, input)
    g = _grad_output(name, grad_output, unbatched)
    dt = _common(x, g)
    res = _rconv.avg_pool2d_backward(
        _c(g, dt),
        x.shape,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        _out(out, unbatched),
        name,
    )
    return _unbatch(res, unbatched) if out is None else out


@_named
def adaptive_avg_pool2d(name: str, /, input: ArrayLike, output_size: OutputSize) -> np.ndarray:
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or (int or None, int or None)
        Target ``(OH, OW)``; ``None`` keeps the input size along that axis.

    Returns
    -------
    out : ndarray
        ``(N, C, OH, OW)``; window ``i`` spans ``floor(i H / OH)`` to ``ceil((i + 1) H / OH)``.

    Raises
    ------
    ValueError
        Negative output size, empty input with a non-empty output.
    TypeError
        Unsupported dtype, non-integer sizes.

    Notes
    -----
    ``out[i, j] = mean(x[floor(i H / OH) : ceil((i + 1) H / OH),
    floor(j W / OW) : ceil((j + 1) W / OW)])``; windows may overlap.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.adaptive_avg_pool2d(np.arange(16.0).reshape(1, 4, 4), 2)
    array([[[ 2.5,  4.5],
            [10.5, 12.5]]])
    """
    x, unbatched = _pool_input(name, input)
    return _unbatch(_rconv.adaptive_avg_pool2d(x, output_size, name), unbatched)


def adaptive_avg_pool2d_backward(grad_output: ArrayLike, input: ArrayLike) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output ``(N, C, OH, OW)``.
    input : array_like
        The forward input (only its shape is used).

    Returns
    -------
    grad_input : ndarray
        Shape of `input`.

    Raises
    ------
    ValueError
        Shapes that do not match.
    TypeError
        Unsupported dtype.

    Notes
    -----
    Each output's gradient is divided by its window's size and added to the window.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.adaptive_avg_pool2d_backward(np.ones((1, 1, 1)), np.zeros((1, 2, 2)))
    array([[[0.25, 0.25],
            [0.25, 0.25]]])
    """

    f = "adaptive_avg_pool2d_backward"
    x, unbatched = _pool_input(f, input)
    g = _grad_output(f, grad_output, unbatched)
    dt = _common(x, g)
    return _unbatch(_rconv.adaptive_avg_pool2d_backward(_c(g, dt), x.shape, f), unbatched)


@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: OutputSize, return_indices: Literal[False] = False
) -> np.ndarray: ...
@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: OutputSize, return_indices: Literal[True]
) -> Tuple[np.ndarray, np.ndarray]: ...
@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: OutputSize, return_indices: bool = False
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]: ...
@_named
def adaptive_max_pool2d(
    name: str, /, input: ArrayLike, output_size: OutputSize, return_indices: bool = False
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``.
    output_size : int or (int or None, int or None)
        Target ``(OH, OW)``; ``None`` keeps the input size.
    return_indices : bool, optional
        Also return the flattened per-plane argmax (int64).

    Returns
    -------
    out : ndarray
        ``(N, C, OH, OW)``; ``(out, indices)`` with `return_indices`.

    Raises
    ------
    ValueError
        Negative output size, empty input with a non-empty output.
    TypeError
        Unsupported dtype, non-integer sizes.

    Notes
    -----
    The windows of :func:`adaptive_avg_pool2d`; the maximum and its index follow the rule of
    :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.adaptive_max_pool2d(np.arange(16.0).reshape(1, 4, 4), 2)
    array([[[ 5.,  7.],
            [13., 15.]]])
    """
    x, unbatched = _pool_input(name, input)
    out, ind = _rconv.adaptive_max_pool2d(x, output_size, name)
    if return_indices:
        return _unbatch(out, unbatched), _unbatch(ind, unbatched)
    return _unbatch(out, unbatched)


def adaptive_max_pool2d_backward(grad_output: ArrayLike, input: ArrayLike) -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to the pooled output.
    input : array_like
        The forward input.

    Returns
    -------
    grad_input : ndarray
        Shape of `input`; gradients routed to each window's argmax.

    Raises
    ------
    ValueError
        Shapes that do not match.
    TypeError
        Unsupported dtype.

    Notes
    -----
    ``dX[n, c, argmax(window)] += dY[n, c, i, j]``.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> x = np.array([[[1.0, 2.0], [4.0, 3.0]]])
    >>> rconv.adaptive_max_pool2d_backward(np.array([[[5.0]]]), x)
    array([[[0., 0.],
            [5., 0.]]])
    """

    f = "adaptive_max_pool2d_backward"
    x, unbatched = _pool_input(f, input)
    g = _grad_output(f, grad_output, unbatched)
    dt = _common(x, g)
    gi = _rconv.adaptive_max_pool2d_backward(_c(g, dt), _c(x, dt), f)
    return _unbatch(gi, unbatched)


def corr2d_backward(
    grad_output: ArrayLike, x: ArrayLike, k: ArrayLike
) -> Tuple[np.ndarray, np.ndarray]:
    """Compute the gradients of :func:`rconv.corr2d`: ``(grad_x, grad_k)``.

    Parameters
    ----------
    grad_output : array_like
        Gradient with respect to ``corr2d(x, k)``, shape ``(H - h + 1, W - w + 1)``.
    x : array_like
        The forward image ``(H, W)``.
    k : array_like
        The forward kernel ``(h, w)``.

    Returns
    -------
    grad_x : ndarray
        ``(H, W)``: the full correlation of `grad_output` with the kernel rotated by 180
        degrees, i.e. ``convolve2d(grad_output, k, 'full')``.
    grad_k : ndarray
        ``(h, w)``: ``corr2d(x, grad_output)``.

    Raises
    ------
    ValueError
        Non-2-D inputs, a kernel larger than the image, or a `grad_output` of the wrong shape.
    TypeError
        Unsupported dtypes.

    Notes
    -----
    The formulas of the source material: ``delta_out = pad(delta_in, h - 1) * rot180(K)`` and
    ``dK = X * delta_in``.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> gx, gk = rconv.corr2d_backward(np.ones((2, 2)), np.arange(9.0).reshape(3, 3),
    ...                                np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> gx
    array([[0., 1., 1.],
           [2., 6., 4.],
           [2., 5., 3.]])
    >>> gk
    array([[ 8., 12.],
           [20., 24.]])
    """
    return _backward("corr2d_backward", "corr2d", grad_output, x, k, "valid")


__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "corr2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
]
