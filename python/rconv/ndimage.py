"""scipy.ndimage's linear filters, byte for byte, on every core.

The thirteen linear filters of :mod:`scipy.ndimage` with scipy's signatures, defaults and
semantics: every mode (``'reflect'``, ``'mirror'``, ``'nearest'``, ``'wrap'``,
``'constant'`` and the ``grid-`` names), ``cval``, ``origin``, ``output`` (an array or a
dtype), ``axes``/``axis``, per-axis sequences, any rank, every integer, float, bool and
complex dtype in either byte order and with any strides.

The results equal scipy.ndimage's byte for byte (any NaN matches any NaN). Three compiled
kernels do the work, each following scipy's ``ni_filters.c`` step for step in float64 (no
FMA, no reassociation), vectorised across output elements and run on all of rconv's
threads: :func:`correlate1d`, :func:`correlate` and :func:`uniform_filter1d`. Every other
filter is composed from them in Python exactly as scipy's ``_filters.py`` composes it.

Differences from scipy, all where scipy's C code reads outside the array or mistakes an
index for its border flag (see the "ndimage parity" page): :func:`correlate` in ``'reflect'``
mode along an axis of ``n`` elements with a kernel long enough to reach position ``-4n``
(scipy reads memory before the axis there), and :func:`correlate` of an array whose strides
are all zero (a broadcast scalar), where scipy takes some elements for ``cval``.

Errors are raised with scipy's class (``RuntimeError`` where scipy raises it, which
overrides rconv's usual rule) and scipy's text, after ``ndimage.<function>:``.

Examples
--------
>>> import numpy as np
>>> import rconv.ndimage
>>> x = np.arange(25, dtype=np.float32).reshape(5, 5)
>>> rconv.ndimage.uniform_filter(x, 3)[2]
array([10.333333, 11.      , 12.      , 13.      , 13.666667], dtype=float32)
"""

# The Python layer follows scipy/ndimage/_filters.py and _ni_support.py (scipy 1.17.1,
# Copyright (C) 2003-2005 Peter J. Verveer and the SciPy developers, BSD-3-Clause): the
# order of its checks, its messages and its compositions are scipy's, so that the results
# and the errors are scipy's.

from __future__ import annotations

import functools
import numbers
import operator
import threading
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, TypeVar, Union

import numpy as np

from . import _rconv

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    #: ``output=``: an array to write, or the dtype of a new one.
    Output = Union[np.ndarray, DTypeLike, None]
    #: A mode, or one per axis where scipy takes a sequence.
    Modes = Union[str, Sequence[str]]

__all__ = [
    "convolve",
    "convolve1d",
    "correlate",
    "correlate1d",
    "gaussian_filter",
    "gaussian_filter1d",
    "gaussian_gradient_magnitude",
    "gaussian_laplace",
    "laplace",
    "prewitt",
    "sobel",
    "uniform_filter",
    "uniform_filter1d",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_depth = threading.local()


def _public(func: _F) -> _F:
    """`func` with its errors named ``ndimage.<name>: <scipy's text>`` (same class).

    Only the outermost call names the error: filters built from other public filters raise
    under the name the user called.
    """
    name = f"ndimage.{func.__name__}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "n", 0)
        _depth.n = depth + 1
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, RuntimeError, OverflowError, IndexError) as e:
            if depth:
                raise
            try:
                named = type(e)(f"{name}: {e}")
            except Exception:
                raise e from None
            raise named.with_traceback(e.__traceback__) from None
        finally:
            _depth.n = depth

    return wrapper  # type: ignore[return-value]


# --- scipy's _ni_support ------------------------------------------------------------------


def _extend_mode_to_code(mode: Any) -> str:
    """The mode's canonical name for the kernels (scipy's check and error)."""
    if mode in ("nearest", "wrap", "reflect", "grid-mirror", "mirror", "constant"):
        return {"grid-mirror": "reflect"}.get(mode, mode)
    if mode == "grid-wrap":
        return "wrap"
    if mode == "grid-constant":
        return "constant"
    raise RuntimeError("boundary mode not supported")


def _normalize_sequence(input: Any, rank: int) -> list[Any]:
    is_str = isinstance(input, str)
    if not is_str and np.iterable(input):
        normalized = list(input)
        if len(normalized) != rank:
            err = "sequence argument must have length equal to input rank"
            raise RuntimeError(err)
    else:
        normalized = [input] * rank
    return normalized


def _get_output(
    output: Any,
    input: np.ndarray,
    shape: Optional[tuple[int, ...]] = None,
    complex_output: bool = False,
) -> np.ndarray:
    # scipy's, with np.empty for np.zeros: every caller overwrites each element of a new
    # output (and a fresh zeroed array costs a pass over memory)
    if shape is None:
        shape = input.shape
    if output is None:
        if not complex_output:
            output = np.empty(shape, dtype=input.dtype.name)
        else:
            complex_type = np.promote_types(input.dtype, np.complex64)
            output = np.empty(shape, dtype=complex_type)
    elif isinstance(output, (type, np.dtype)):
        if complex_output and np.dtype(output).kind != "c":
            warnings.warn("promoting specified output dtype to complex", stacklevel=3)
            output = np.promote_types(output, np.complex64)
        output = np.empty(shape, dtype=output)
    elif isinstance(output, str):
        output = np.dtype(output)
        if complex_output and output.kind != "c":
            raise RuntimeError("output must have complex dtype")
        elif not issubclass(output.type, np.number):
            raise RuntimeError("output must have numeric dtype")
        output = np.empty(shape, dtype=output)
    else:
        output = np.asarray(output)
        if output.shape != shape:
            raise RuntimeError("output shape not correct")
        elif complex_output and output.dtype.kind != "c":
            raise RuntimeError("output must have complex dtype")
    return output


def _check_axes(axes: Any, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    elif np.isscalar(axes):
        axes = (operator.index(axes),)  # type: ignore[arg-type]
    elif isinstance(axes, Iterable):
        for ax in axes:
            axes = tuple(operator.index(ax) for ax in axes)
            if ax < -ndim or ax > ndim - 1:
                raise ValueError(f"specified axis: {ax} is out of range")
        axes = tuple(ax % ndim if ax < 0 else ax for ax in axes)
    else:
        message = "axes must be an integer, iterable of integers, or None"
        raise ValueError(message)
    if len(tuple(set(axes))) != len(axes):
        raise ValueError("axes must be unique")
    return tuple(axes)


def _normalize_axis_index(axis: Any, ndim: int) -> int:
    """NumPy's ``normalize_axis_index`` (its error class and text)."""
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


# --- the compiled kernels, called as scipy calls _nd_image ----------------------------------

#: The dtypes of scipy's C kernels (bool travels as its bytes).
_KINDS = frozenset("?bBhHiIlLqQfd")


def _behaved(a: np.ndarray) -> bool:
    return a.dtype.isnative and a.flags.aligned


def _input_array(input: np.ndarray) -> np.ndarray:
    """`input` aligned and in native byte order (a copy if it is not)."""
    if not _behaved(input):
        input = input.astype(input.dtype.newbyteorder("="), order="K")
    return input


def _c_args(output: np.ndarray, cval: Any) -> float:
    """The argument checks of scipy's C wrappers, in their order: a writeable output
    (ValueError), then `cval` as a C double (TypeError)."""
    if not output.flags.writeable:
        raise ValueError("output array is read-only.")
    return _double(cval)


def _c_types(input: np.ndarray, output: np.ndarray, message: str, lines: int) -> None:
    """scipy's kernels' dtype check (RuntimeError), made only when there is a line (1-D
    passes) or an element (n-D) to copy."""
    if lines:
        for a in (input, output):
            if a.dtype.char not in _KINDS:
                raise RuntimeError(message.format(dtype=repr(a.dtype)))


def _lines(a: np.ndarray, axis: int) -> int:
    """The lines of `a` along `axis`, as scipy's line buffers count them."""
    return int(np.prod([n for d, n in enumerate(a.shape) if d != axis])) if a.ndim else 1


def _call(
    kernel: Callable[..., None],
    input: np.ndarray,
    output: np.ndarray,
    in_place_ok: bool,
    *args: Any,
) -> None:
    """Run `kernel(input or None, output, *args)` on behaved arrays (after `_c_checks`),
    with a temporary for a misaligned or byte-swapped output. An input that overlaps the
    output is read as if copied first (in place when it is exactly the output, for the 1-D
    passes). Nothing to compute (an empty array), nothing is called."""
    if input.size == 0:
        return
    input = _input_array(input)
    target = output
    if not _behaved(output):
        target = output.astype(output.dtype.newbyteorder("="), order="K")
    src: Optional[np.ndarray] = input
    if np.may_share_memory(input, output):
        same = (
            input.__array_interface__["data"][0] == output.__array_interface__["data"][0]
            and input.strides == output.strides
            and input.dtype == output.dtype
        )
        if in_place_ok and same and target is output:
            src = None
        else:
            src = input.copy()
    elif target is not output and np.may_share_memory(input, target):
        src = input.copy()
    kernel(src, target, *args)
    if target is not output:
        output[...] = target


def _double(v: Any) -> float:
    """`v` as C's ``PyArg_ParseTuple`` "d" takes it: through ``__float__`` (or
    ``__index__``), whose own errors pass; anything else is "must be real number"."""
    t = type(v)
    if not (hasattr(t, "__float__") or hasattr(t, "__index__")):
        raise TypeError(f"must be real number, not {t.__name__}")
    return float(v)


_LINE_TYPES = "array type {dtype} not supported"


def _c_correlate1d(
    input: np.ndarray,
    weights: np.ndarray,
    axis: int,
    output: np.ndarray,
    mode: str,
    cval: float,
    origin: int,
) -> None:
    c = _c_args(output, cval)
    _c_types(input, output, _LINE_TYPES, _lines(input, axis))
    _call(_rconv.ndimage_correlate1d, input, output, True, weights, axis, mode, c, origin)


def _c_uniform_filter1d(
    input: np.ndarray,
    size: int,
    axis: int,
    output: np.ndarray,
    mode: str,
    cval: float,
    origin: int,
) -> None:
    c = _c_args(output, cval)
    _c_types(input, output, _LINE_TYPES, _lines(input, axis))
    _call(_rconv.ndimage_uniform1d, input, output, True, size, axis, mode, c, origin)


def _c_correlate(
    input: np.ndarray,
    weights: np.ndarray,
    output: np.ndarray,
    mode: str,
    cval: float,
    origins: list[int],
) -> None:
    c = _c_args(output, cval)
    if len(origins) != input.ndim:
        raise ValueError(
            f"Invalid {len(origins)} element 'origin' sequence for "
            f"{input.ndim}-dimensional input array."
        )
    origins = [operator.index(o) for o in origins]
    _c_types(input, output, "array type not supported", input.size)
    weights = np.asarray(weights, dtype=np.float64)  # 0-d after convolve's reversal
    _call(_rconv.ndimage_correlate, input, output, False, weights, mode, c, origins)


# --- scipy's _filters ----------------------------------------------------------------------


def _invalid_origin(origin: int, lenw: int) -> bool:
    return origin < -(lenw // 2) or origin > (lenw - 1) // 2


def _complex_via_real_components(
    func: Callable[..., np.ndarray],
    input: np.ndarray,
    weights: np.ndarray,
    output: np.ndarray,
    cval: Any,
    **kwargs: Any,
) -> np.ndarray:
    """Complex convolution via a linear combination of real convolutions."""
    complex_input = input.dtype.kind == "c"
    complex_weights = weights.dtype.kind == "c"
    if complex_input and complex_weights:
        # real component of the output
        func(input.real, weights.real, output=output.real, cval=np.real(cval), **kwargs)
        output.real -= func(input.imag, weights.imag, output=None, cval=np.imag(cval), **kwargs)
        # imaginary component of the output
        func(input.real, weights.imag, output=output.imag, cval=np.real(cval), **kwargs)
        output.imag += func(input.imag, weights.real, output=None, cval=np.imag(cval), **kwargs)
    elif complex_input:
        func(input.real, weights, output=output.real, cval=np.real(cval), **kwargs)
        func(input.imag, weights, output=output.imag, cval=np.imag(cval), **kwargs)
    else:
        if np.iscomplexobj(cval):
            raise ValueError("Cannot provide a complex-valued cval when the input is real.")
        func(input, weights.real, output=output.real, cval=cval, **kwargs)
        func(input, weights.imag, output=output.imag, cval=cval, **kwargs)
    return output


def _expand_origin(ndim_image: int, axes: tuple[int, ...], origin: Any) -> list[Any]:
    num_axes = len(axes)
    origins = _normalize_sequence(origin, num_axes)
    if num_axes < ndim_image:
        # set origin = 0 for any axes not being filtered
        origins_temp = [0] * ndim_image
        for o, ax in zip(origins, axes):
            origins_temp[ax] = o
        origins = origins_temp
    return origins


def _expand_footprint(
    ndim_image: int, axes: tuple[int, ...], footprint: np.ndarray, footprint_name: str = "footprint"
) -> np.ndarray:
    num_axes = len(axes)
    if num_axes < ndim_image:
        if footprint.ndim != num_axes:
            raise RuntimeError(
                f"{footprint_name}.ndim ({footprint.ndim}) must match len(axes) ({num_axes})"
            )
        footprint = np.expand_dims(
            footprint, tuple(ax for ax in range(ndim_image) if ax not in axes)
        )
    return footprint


_MODES_DOC = """mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}, optional
        How the input is extended beyond its boundaries (default 'reflect'):
        'reflect' ``(d c b a | a b c d | d c b a)``, 'constant' ``(k k k k | a b c d |
        k k k k)`` with ``k = cval``, 'nearest' ``(a a a a | a b c d | d d d d)``, 'mirror'
        ``(d c b | a b c d | c b a)``, 'wrap' ``(a b c d | a b c d | a b c d)``. The
        names 'grid-mirror', 'grid-constant' and 'grid-wrap' are 'reflect', 'constant' and
        'wrap'."""

_CVAL_DOC = """cval : scalar, optional
        The value beyond the edges with mode 'constant' (default 0.0), as a float64."""

_OUTPUT_DOC = """output : array or dtype, optional
        The array to write the result to (returned), or the dtype of a new one; by
        default a new array of the input's dtype."""


def _doc(text: str) -> Callable[[_F], _F]:
    def deco(f: _F) -> _F:
        f.__doc__ = (
            text.replace("%(mode)s", _MODES_DOC)
            .replace("%(cval)s", _CVAL_DOC)
            .replace("%(output)s", _OUTPUT_DOC)
        )
        return f

    return deco


@_public
@_doc(
    """Correlate along one axis with a 1-D kernel (scipy.ndimage.correlate1d).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    weights : array_like
        The 1-D kernel.
    axis : int, optional
        The axis to filter (default -1).
    %(output)s
    %(mode)s
    %(cval)s
    origin : int, optional
        Shifts the kernel: ``-(len(weights) // 2) <= origin <= (len(weights) - 1) // 2``
        (default 0).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import correlate1d
    >>> correlate1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), weights=[1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
)
def correlate1d(
    input: ArrayLike,
    weights: ArrayLike,
    axis: int = -1,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> np.ndarray:
    input = np.asarray(input)
    w: Any = np.asarray(weights)
    complex_input = input.dtype.kind == "c"
    complex_weights = w.dtype.kind == "c"
    if complex_input or complex_weights:
        if complex_weights:
            w = w.conj()
            w = w.astype(np.complex128, copy=False)
        kwargs = dict(axis=axis, mode=mode, origin=origin)
        output = _get_output(output, input, complex_output=True)
        return _complex_via_real_components(correlate1d, input, w, output, cval, **kwargs)

    output = _get_output(output, input)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] < 1:
        raise RuntimeError("no filter weights given")
    if not w.flags.contiguous:
        w = w.copy()
    axis = _normalize_axis_index(axis, input.ndim)
    if _invalid_origin(origin, len(w)):
        raise ValueError(
            "Invalid origin; origin must satisfy "
            "-(len(weights) // 2) <= origin <= "
            "(len(weights)-1) // 2"
        )
    mode = _extend_mode_to_code(mode)
    _c_correlate1d(input, w, axis, output, mode, cval, origin)
    return output


@_public
@_doc(
    """Convolve along one axis with a 1-D kernel (scipy.ndimage.convolve1d).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    weights : array_like
        The 1-D kernel.
    axis : int, optional
        The axis to filter (default -1).
    %(output)s
    %(mode)s
    %(cval)s
    origin : int, optional
        Shifts the kernel (default 0).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import convolve1d
    >>> convolve1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), weights=[1, 3])
    array([14, 24,  4, 13, 12, 36, 27,  0])
    """
)
def convolve1d(
    input: ArrayLike,
    weights: ArrayLike,
    axis: int = -1,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> np.ndarray:
    weights = np.asarray(weights)
    weights = weights[::-1]
    origin = -origin
    if not weights.shape[0] & 1:
        origin -= 1
    if weights.dtype.kind == "c":
        # pre-conjugate here to counteract the conjugation in correlate1d
        weights = weights.conj()
    return correlate1d(input, weights, axis, output, mode, cval, origin)


def _gaussian_kernel1d(sigma: float, order: int, radius: int) -> np.ndarray:
    """Computes a 1-D Gaussian convolution kernel (scipy's expressions)."""
    if order < 0:
        raise ValueError("order must be non-negative")
    exponent_range = np.arange(order + 1)
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x**2)
    phi_x = phi_x / phi_x.sum()

    if order == 0:
        return phi_x
    else:
        # f(x) = q(x) * phi(x) = q(x) * exp(p(x)), f'(x) = (q'(x) + q(x) * p'(x)) * phi(x)
        q = np.zeros(order + 1)
        q[0] = 1
        D = np.diag(exponent_range[1:], 1)  # D @ q(x) = q'(x)
        P = np.diag(np.ones(order) / -sigma2, -1)  # P @ q(x) = q(x) * p'(x)
        Q_deriv = D + P
        for _ in range(order):
            q = Q_deriv.dot(q)
        q = (x[:, None] ** exponent_range).dot(q)
        return q * phi_x


def _gaussian_weights(sigma: Any, order: int, truncate: float, radius: Optional[int]) -> np.ndarray:
    """gaussian_filter1d's kernel, reversed for correlate1d (its checks and errors)."""
    sd = float(sigma)
    # make the radius of the filter equal to truncate standard deviations
    lw = int(truncate * sd + 0.5)
    if radius is not None:
        lw = radius
    if not isinstance(lw, numbers.Integral) or lw < 0:
        raise ValueError("Radius must be a nonnegative integer.")
    # Since we are calling correlate, not convolve, revert the kernel
    return _gaussian_kernel1d(sigma, order, lw)[::-1]


@_public
@_doc(
    """1-D Gaussian filter (scipy.ndimage.gaussian_filter1d).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    sigma : scalar
        The standard deviation of the Gaussian.
    axis : int, optional
        The axis to filter (default -1).
    order : int, optional
        0 filters with the Gaussian; 1, 2 or 3 with its derivative of that order.
    %(output)s
    %(mode)s
    %(cval)s
    truncate : float, optional
        The kernel's radius in standard deviations (default 4.0): ``int(truncate * sigma +
        0.5)`` taps each side.
    radius : None or int, optional
        The kernel's radius in taps, overriding `truncate`.

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import gaussian_filter1d
    >>> gaussian_filter1d(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 1).round(4)
    array([1.427 , 2.0678, 3.    , 3.9322, 4.573 ])
    """
)
def gaussian_filter1d(
    input: ArrayLike,
    sigma: float,
    axis: int = -1,
    order: int = 0,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    *,
    radius: Optional[int] = None,
) -> np.ndarray:
    weights = _gaussian_weights(sigma, order, truncate, radius)
    return correlate1d(input, weights, axis, output, mode, cval, 0)


@_public
@_doc(
    """Multidimensional Gaussian filter (scipy.ndimage.gaussian_filter).

    One :func:`gaussian_filter1d` pass per axis, each stored in the output's dtype.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    sigma : scalar or sequence of scalars
        The standard deviation of the Gaussian, one for all axes or one per axis; axes with
        ``sigma <= 1e-15`` (or NaN) are not filtered.
    order : int or sequence of ints, optional
        The derivative order per axis (0-3).
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s
    truncate : float, optional
        The kernel's radius in standard deviations (default 4.0).
    radius : None or int or sequence of ints, optional
        The kernel's radius in taps, overriding `truncate`.
    axes : tuple of int or None, optional
        The axes to filter (default all).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import gaussian_filter
    >>> gaussian_filter(np.arange(50, step=2).reshape((5, 5)), sigma=1)
    array([[ 4,  6,  8,  9, 11],
           [10, 12, 14, 15, 17],
           [20, 22, 24, 25, 27],
           [29, 31, 33, 34, 36],
           [35, 37, 39, 40, 42]])
    """
)
def gaussian_filter(
    input: ArrayLike,
    sigma: Union[float, Sequence[float]],
    order: Union[int, Sequence[int]] = 0,
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    *,
    radius: Union[None, int, Sequence[int]] = None,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    input = np.asarray(input)
    output = _get_output(output, input)

    axes = _check_axes(axes, input.ndim)
    num_axes = len(axes)
    orders = _normalize_sequence(order, num_axes)
    sigmas = _normalize_sequence(sigma, num_axes)
    modes = _normalize_sequence(mode, num_axes)
    radiuses = _normalize_sequence(radius, num_axes)
    passes = [
        (axes[ii], sigmas[ii], orders[ii], modes[ii], radiuses[ii])
        for ii in range(num_axes)
        if sigmas[ii] > 1e-15
    ]
    if len(passes) >= 2 and input.dtype.kind != "c":
        return _gaussian_passes(input, output, passes, cval, truncate)
    if len(passes) > 0:
        for ax, sig, o, m, r in passes:
            gaussian_filter1d(input, sig, ax, o, output, m, cval, truncate, radius=r)
            input = output
    else:
        output[...] = input[...]
    return output


def _gaussian_passes(
    input: np.ndarray, output: np.ndarray, passes: list[Any], cval: Any, truncate: float
) -> np.ndarray:
    """gaussian_filter's passes (two or more, real input), with scipy's checks made in
    scipy's order before anything is written. Two passes whose second runs along the
    output's innermost axis are fused (the first result is rounded to the output's type
    between them, as scipy stores it: the same bytes): the first two, if the output overlaps
    nothing, else the last two, in place."""
    plan = []
    c = 0.0
    for i, (ax, sig, o, m, r) in enumerate(passes):
        w = np.ascontiguousarray(_gaussian_weights(sig, o, truncate, r))
        code = _extend_mode_to_code(m)
        if i == 0:
            c = _c_args(output, cval)
            _c_types(input, output, _LINE_TYPES, _lines(input, ax))
        plan.append((ax, w, code))
    if input.size == 0:
        return output
    inner = _innermost(output)
    fuse = _behaved(output) and plan[-1][0] == inner
    if fuse and len(plan) == 2:
        src = _input_array(input)
        if not np.may_share_memory(src, output) and _innermost(src) == inner:
            (a, wa, ma), (b, wb, mb) = plan
            _rconv.ndimage_correlate1d_twice(src, output, wa, a, ma, wb, b, mb, c)
            return output
    if fuse and len(plan) > 2:
        for ax, w, m in plan[:-2]:
            _c_correlate1d(input, w, ax, output, m, c, 0)
            input = output
        (a, wa, ma), (b, wb, mb) = plan[-2:]
        _rconv.ndimage_correlate1d_twice(None, output, wa, a, ma, wb, b, mb, c)
        return output
    for ax, w, m in plan:
        _c_correlate1d(input, w, ax, output, m, c, 0)
        input = output
    return output


def _innermost(a: np.ndarray) -> int:
    """The axis of `a` (of more than one element) whose elements lie closest together."""
    axes = [d for d in range(a.ndim) if a.shape[d] > 1] or [a.ndim - 1]
    return min(axes, key=lambda d: abs(a.strides[d]))


def _derivative_1d(
    input: ArrayLike, axis: int, output: Output, mode: Modes, cval: Any, smooth: list[int]
) -> np.ndarray:
    """scipy's prewitt and sobel: [-1, 0, 1] along `axis`, `smooth` along the others."""
    input = np.asarray(input)
    axis = _normalize_axis_index(axis, input.ndim)
    output = _get_output(output, input)
    modes = _normalize_sequence(mode, input.ndim)
    correlate1d(input, [-1, 0, 1], axis, output, modes[axis], cval, 0)
    axes = [ii for ii in range(input.ndim) if ii != axis]
    for ii in axes:
        correlate1d(output, smooth, ii, output, modes[ii], cval, 0)
    return output


@_public
@_doc(
    """Prewitt derivative along one axis (scipy.ndimage.prewitt).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    axis : int, optional
        The axis of the derivative (default -1); the others are smoothed with ``[1, 1, 1]``.
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import prewitt
    >>> prewitt(np.array([[0, 0, 1, 1], [0, 0, 1, 1]]))
    array([[0, 3, 3, 0],
           [0, 3, 3, 0]])
    """
)
def prewitt(
    input: ArrayLike,
    axis: int = -1,
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
) -> np.ndarray:
    return _derivative_1d(input, axis, output, mode, cval, [1, 1, 1])


@_public
@_doc(
    """Sobel derivative along one axis (scipy.ndimage.sobel).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    axis : int, optional
        The axis of the derivative (default -1); the others are smoothed with ``[1, 2, 1]``.
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import sobel
    >>> sobel(np.array([[0, 0, 1, 1], [0, 0, 1, 1]]))
    array([[0, 4, 4, 0],
           [0, 4, 4, 0]])
    """
)
def sobel(
    input: ArrayLike,
    axis: int = -1,
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
) -> np.ndarray:
    return _derivative_1d(input, axis, output, mode, cval, [1, 2, 1])


def _generic_laplace(
    input: ArrayLike,
    derivative2: Callable[..., np.ndarray],
    output: Output,
    mode: Modes,
    cval: Any,
    extra_arguments: tuple[Any, ...] = (),
    extra_keywords: Optional[dict[str, Any]] = None,
    *,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    if extra_keywords is None:
        extra_keywords = {}
    input = np.asarray(input)
    output = _get_output(output, input)
    axes = _check_axes(axes, input.ndim)
    if len(axes) > 0:
        modes = _normalize_sequence(mode, len(axes))
        derivative2(input, axes[0], output, modes[0], cval, *extra_arguments, **extra_keywords)
        for ii in range(1, len(axes)):
            tmp = derivative2(
                input, axes[ii], output.dtype, modes[ii], cval, *extra_arguments, **extra_keywords
            )
            output += tmp
    else:
        output[...] = input[...]
    return output


@_public
@_doc(
    """Laplace filter from second differences (scipy.ndimage.laplace).

    The sum over the axes of :func:`correlate1d` with ``[1, -2, 1]``, each stored in the
    output's dtype and added with NumPy's ``+=``.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s
    axes : tuple of int or None, optional
        The axes to sum over (default all).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import laplace
    >>> laplace(np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
)
def laplace(
    input: ArrayLike,
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    def derivative2(
        input: ArrayLike, axis: int, output: Output, mode: str, cval: Any
    ) -> np.ndarray:
        return correlate1d(input, [1, -2, 1], axis, output, mode, cval, 0)

    return _generic_laplace(input, derivative2, output, mode, cval, axes=axes)


@_public
@_doc(
    """Laplace filter from Gaussian second derivatives (scipy.ndimage.gaussian_laplace).

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    sigma : scalar or sequence of scalars
        The standard deviation of the Gaussian, one for all axes or one per axis.
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s
    axes : tuple of int or None, optional
        The axes to sum over (default all).
    **kwargs
        Passed to :func:`gaussian_filter` (``truncate``, ``radius``).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import gaussian_laplace
    >>> x = np.zeros((5, 5))
    >>> x[2, 2] = 1
    >>> float(gaussian_laplace(x, 1)[2, 2].round(4))
    -0.3183
    """
)
def gaussian_laplace(
    input: ArrayLike,
    sigma: Union[float, Sequence[float]],
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> np.ndarray:
    input = np.asarray(input)

    def derivative2(
        input: np.ndarray,
        axis: int,
        output: Output,
        mode: str,
        cval: Any,
        sigma: Any,
        **kwargs: Any,
    ) -> np.ndarray:
        order = [0] * input.ndim
        order[axis] = 2
        return gaussian_filter(input, sigma, order, output, mode, cval, **kwargs)

    axes = _check_axes(axes, input.ndim)
    num_axes = len(axes)
    sigma = _normalize_sequence(sigma, num_axes)
    if num_axes < input.ndim:
        # set sigma = 0 for any axes not being filtered
        sigma_temp = [0] * input.ndim
        for s, ax in zip(sigma, axes):
            sigma_temp[ax] = s
        sigma = sigma_temp

    return _generic_laplace(
        input,
        derivative2,
        output,
        mode,
        cval,
        extra_arguments=(sigma,),
        extra_keywords=kwargs,
        axes=axes,
    )


@_public
@_doc(
    """Gradient magnitude from Gaussian derivatives (scipy.ndimage.gaussian_gradient_magnitude).

    The square root of the sum over the axes of the squared first derivatives, with NumPy's
    ``np.multiply``, ``+=`` and ``np.sqrt(out, out, casting='unsafe')`` as scipy combines
    them.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    sigma : scalar or sequence of scalars
        The standard deviation of the Gaussian, one for all axes or one per axis.
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s
    axes : tuple of int or None, optional
        The axes to sum over (default all).
    **kwargs
        Passed to :func:`gaussian_filter` (``truncate``, ``radius``).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import gaussian_gradient_magnitude
    >>> x = np.zeros((5, 5))
    >>> x[:, 3:] = 1
    >>> gaussian_gradient_magnitude(x, 1)[2].round(3)
    array([0.013, 0.122, 0.364, 0.363, 0.108])
    """
)
def gaussian_gradient_magnitude(
    input: ArrayLike,
    sigma: Union[float, Sequence[float]],
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> np.ndarray:
    input = np.asarray(input)

    def derivative(
        input: np.ndarray,
        axis: int,
        output: Output,
        mode: str,
        cval: Any,
        sigma: Any,
        **kwargs: Any,
    ) -> np.ndarray:
        order = [0] * input.ndim
        order[axis] = 1
        return gaussian_filter(input, sigma, order, output, mode, cval, **kwargs)

    extra_keywords = kwargs
    output = _get_output(output, input)
    axes = _check_axes(axes, input.ndim)
    if len(axes) > 0:
        modes = _normalize_sequence(mode, len(axes))
        derivative(input, axes[0], output, modes[0], cval, sigma, **extra_keywords)
        np.multiply(output, output, output)
        for ii in range(1, len(axes)):
            tmp = derivative(
                input, axes[ii], output.dtype, modes[ii], cval, sigma, **extra_keywords
            )
            np.multiply(tmp, tmp, tmp)
            output += tmp
        # This allows the sqrt to work with a different default casting
        np.sqrt(output, output, casting="unsafe")
    else:
        output[...] = input[...]
    return output


def _correlate_or_convolve(
    input: ArrayLike,
    weights: ArrayLike,
    output: Output,
    mode: Any,
    cval: Any,
    origin: Any,
    convolution: bool,
    axes: Optional[Sequence[int]],
) -> np.ndarray:
    input = np.asarray(input)
    w: Any = np.asarray(weights)
    complex_input = input.dtype.kind == "c"
    complex_weights = w.dtype.kind == "c"
    if complex_input or complex_weights:
        if complex_weights and not convolution:
            # As for np.correlate, conjugate weights rather than input.
            w = w.conj()
        kwargs = dict(mode=mode, origin=origin, convolution=convolution, axes=axes)
        output = _get_output(output, input, complex_output=True)

        return _complex_via_real_components(
            _correlate_or_convolve, input, w, output, cval, **kwargs
        )

    axes = _check_axes(axes, input.ndim)
    w = np.asarray(w, dtype=np.float64)

    # expand weights and origins if num_axes < input.ndim
    w = _expand_footprint(input.ndim, axes, w, "weights")
    origins = _expand_origin(input.ndim, axes, origin)

    wshape = [ii for ii in w.shape if ii > 0]
    if len(wshape) != input.ndim:
        raise RuntimeError(f"weights.ndim ({len(wshape)}) must match len(axes) ({len(axes)})")
    if convolution:
        w = w[tuple([slice(None, None, -1)] * w.ndim)]
        for ii in range(len(origins)):
            origins[ii] = -origins[ii]
            if not w.shape[ii] & 1:
                origins[ii] -= 1
    for origin, lenw in zip(origins, wshape):
        if _invalid_origin(origin, lenw):
            raise ValueError(
                "Invalid origin; origin must satisfy "
                "-(weights.shape[k] // 2) <= origin[k] <= "
                "(weights.shape[k]-1) // 2"
            )

    if not w.flags.contiguous:
        w = w.copy()
    output = _get_output(output, input)
    temp_needed = np.may_share_memory(input, output)
    if temp_needed:
        # input and output arrays cannot share memory
        temp = output
        output = _get_output(output.dtype, input)
    if not isinstance(mode, str) and isinstance(mode, Iterable):
        raise RuntimeError("A sequence of modes is not supported")
    mode = _extend_mode_to_code(mode)
    _c_correlate(input, w, output, mode, cval, origins)
    if temp_needed:
        temp[...] = output
        output = temp
    return output


@_public
@_doc(
    """Multidimensional correlation (scipy.ndimage.correlate).

    Each output element is one float64 sum, from 0.0, over the weights in C order; weights
    with ``|w| <= DBL_EPSILON`` are skipped, as scipy skips them.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    weights : array_like
        The kernel, of the input's rank (or of ``len(axes)``).
    %(output)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}, optional
        As in :func:`correlate1d` (one mode for all axes).
    %(cval)s
    origin : int or sequence of int, optional
        Shifts the kernel, one for all axes or one per axis (default 0).
    axes : tuple of int or None, optional
        The axes the kernel spans (default all).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import correlate
    >>> a = np.arange(25).reshape(5, 5)
    >>> correlate(a, np.ones((2, 2)))[:2]
    array([[ 0,  2,  6, 10, 14],
           [10, 12, 16, 20, 24]])
    """
)
def correlate(
    input: ArrayLike,
    weights: ArrayLike,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, False, axes)


@_public
@_doc(
    """Multidimensional convolution (scipy.ndimage.convolve).

    :func:`correlate` with the kernel reversed along every axis and the origins mirrored.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    weights : array_like
        The kernel, of the input's rank (or of ``len(axes)``).
    %(output)s
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}, optional
        As in :func:`correlate1d` (one mode for all axes).
    %(cval)s
    origin : int or sequence of int, optional
        Shifts the kernel, one for all axes or one per axis (default 0).
    axes : tuple of int or None, optional
        The axes the kernel spans (default all).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import convolve
    >>> a = np.array([[1, 2, 0, 0], [5, 3, 0, 4], [0, 0, 0, 7], [9, 3, 0, 0]])
    >>> k = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    >>> convolve(a, k, mode='constant', cval=0.0)
    array([[11, 10,  7,  4],
           [10,  3, 11, 11],
           [15, 12, 14,  7],
           [12,  3,  7,  0]])
    """
)
def convolve(
    input: ArrayLike,
    weights: ArrayLike,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, True, axes)


@_public
@_doc(
    """1-D uniform (mean) filter (scipy.ndimage.uniform_filter1d).

    A running sum per line, ``s += x[i + size - 1] - x[i - 1]``, each output ``s / size``;
    so a NaN or infinity spoils the rest of its line, as in scipy.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    size : int
        The length of the filter.
    axis : int, optional
        The axis to filter (default -1).
    %(output)s
    %(mode)s
    %(cval)s
    origin : int, optional
        Shifts the filter (default 0).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import uniform_filter1d
    >>> uniform_filter1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), size=3)
    array([4, 3, 4, 1, 4, 6, 6, 3])
    """
)
def uniform_filter1d(
    input: ArrayLike,
    size: int,
    axis: int = -1,
    output: Output = None,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> np.ndarray:
    input = np.asarray(input)
    axis = _normalize_axis_index(axis, input.ndim)
    if size < 1:
        raise RuntimeError("incorrect filter size")
    complex_output = input.dtype.kind == "c"
    output = _get_output(output, input, complex_output=complex_output)
    if (size // 2 + origin < 0) or (size // 2 + origin >= size):
        raise ValueError("invalid origin")
    mode = _extend_mode_to_code(mode)
    if not complex_output:
        _c_uniform_filter1d(input, size, axis, output, mode, cval, origin)
    else:
        _c_uniform_filter1d(input.real, size, axis, output.real, mode, np.real(cval), origin)
        _c_uniform_filter1d(input.imag, size, axis, output.imag, mode, np.imag(cval), origin)
    return output


@_public
@_doc(
    """Multidimensional uniform (mean) filter (scipy.ndimage.uniform_filter).

    One :func:`uniform_filter1d` pass per axis, each stored in the output's dtype; axes of
    size 1 are skipped.

    Parameters
    ----------
    input : array_like
        The input array, any rank.
    size : int or sequence of ints, optional
        The filter's length, one for all axes or one per axis (default 3).
    %(output)s
    mode : str or sequence of str, optional
        As in :func:`correlate1d`, one for all axes or one per axis.
    %(cval)s
    origin : int or sequence of int, optional
        Shifts the filter, one for all axes or one per axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).

    Returns
    -------
    numpy.ndarray
        The filtered array, equal to scipy.ndimage's byte for byte.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv.ndimage import uniform_filter
    >>> uniform_filter(np.arange(25.0).reshape(5, 5), size=3)[1:4, 1:4]
    array([[ 6.,  7.,  8.],
           [11., 12., 13.],
           [16., 17., 18.]])
    """
)
def uniform_filter(
    input: ArrayLike,
    size: Union[int, Sequence[int]] = 3,
    output: Output = None,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    input = np.asarray(input)
    output = _get_output(output, input, complex_output=input.dtype.kind == "c")
    axes = _check_axes(axes, input.ndim)
    num_axes = len(axes)
    sizes = _normalize_sequence(size, num_axes)
    origins = _normalize_sequence(origin, num_axes)
    modes = _normalize_sequence(mode, num_axes)
    passes = [
        (axes[ii], sizes[ii], origins[ii], modes[ii]) for ii in range(num_axes) if sizes[ii] > 1
    ]
    if len(passes) > 0:
        for ax, sz, o, m in passes:
            uniform_filter1d(input, int(sz), ax, output, m, cval, o)
            input = output
    else:
        output[...] = input[...]
    return output
