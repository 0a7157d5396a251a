"""2-D correlation and convolution with scipy.signal semantics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _rconv
from ._docs import (
    _IN1_DOC,
    _OUT_DOC,
    _SIGNAL_OPTS_DOC,
    _axes_doc,
    _backward_doc,
    _doc,
    _fill,
)
from ._named import _named

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._rconv import Axes, Boundary, Engine, Method, Mode, Op, PlanMethod

    #: A fill value: a number (cast to the result dtype as scipy casts it).
    Scalar = Union[int, float, complex, np.generic]


def _as_array(func: str, name: str, a: Any) -> np.ndarray:
    if type(a) is np.ndarray:
        return a
    try:
        return np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{func}: {name} cannot be converted to an array: {e}") from e


def _fill_array(func: str, fillvalue: Any, dt: np.dtype) -> Optional[np.ndarray]:
    """`fillvalue` as a 0-d array of the result dtype, following scipy's rules (None for the
    default 0, which the kernels use without a conversion)."""
    if type(fillvalue) is int and fillvalue == 0:
        return None
    try:
        if isinstance(fillvalue, np.ndarray):
            # scipy converts existing arrays with NumPy's safe casting only. A 0-d array is
            # passed itself, so that NumPy 1.x judges it by its value as scipy's conversion
            # does there (NumPy 2 judges it by its dtype, as scipy's conversion does there).
            src = fillvalue if fillvalue.ndim == 0 else fillvalue.dtype
            if not np.can_cast(src, dt, "safe"):
                raise TypeError(f"cannot safely cast {fillvalue.dtype} to {dt}")
        if type(fillvalue) is int and dt.kind in "iu":
            # NumPy 2 refuses an out-of-range Python int (-1 to uint8); 1.24-1.26 wrap it
            # with a DeprecationWarning. rconv refuses it with every NumPy.
            info = np.iinfo(dt)
            if not info.min <= fillvalue <= info.max:
                raise OverflowError(f"Python integer {fillvalue} out of bounds for {dt}")
        fill = np.array(fillvalue, dtype=dt)
    except Exception as e:
        raise ValueError(
            f"{func}: could not cast `fillvalue` directly to the output type {dt} "
            f"(got {fillvalue!r})"
        ) from e
    if fill.size != 1:
        if fill.size == 0:
            raise ValueError(f"{func}: fillvalue cannot be an empty array")
        raise ValueError(
            f"{func}: `fillvalue` must be scalar or an array with one element, got shape "
            f"{fill.shape}"
        )
    return fill.reshape(())


def _inputs(
    func: str, names: Sequence[str], in1: Any, in2: Any
) -> Tuple[np.ndarray, np.ndarray, np.dtype]:
    """Both inputs as arrays of their common dtype (``numpy.result_type``), aligned."""
    a1 = _as_array(func, names[0], in1)
    a2 = _as_array(func, names[1], in2)
    dt = a1.dtype
    if a2.dtype != dt or not dt.isnative:
        try:
            dt = np.result_type(a1.dtype, a2.dtype)
            dt = dt if dt.isnative else dt.newbyteorder("=")  # big-endian input
        except TypeError:
            raise TypeError(
                f"{func}: unsupported dtype combination ({names[0]} {a1.dtype}, "
                f"{names[1]} {a2.dtype})"
            ) from None
        # astype(copy=False) copies only when the dtype changes; any strides are fine.
        a1 = a1.astype(dt, copy=False)
        a2 = a2.astype(dt, copy=False)
    if not a1.flags.aligned:
        a1 = a1.copy()  # unpickled or np.frombuffer'd at an odd offset: the kernels read
    if not a2.flags.aligned:  # whole elements
        a2 = a2.copy()
    return a1, a2, dt


def _is_fill(boundary: Any) -> bool:
    """Whether `boundary` names 'fill' (the names come from Rust's one table)."""
    return isinstance(boundary, str) and boundary in _rconv.FILL_BOUNDARIES


def _run(
    name: str,
    op: Op,
    in1: ArrayLike,
    in2: ArrayLike,
    mode: Mode,
    boundary: Boundary,
    fillvalue: Any,
    method: PlanMethod = "direct",
    fft_terms: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    axes: Optional[Axes] = None,
) -> np.ndarray:
    """The shared entry point: types converted here, every option checked in Rust (`out` and
    `axes` too: the same `out` object comes back). `name` names the errors."""
    names = ("x", "k") if op == "corr2d" else ("in1", "in2")
    a1, a2, dt = _inputs(name, names, in1, in2)
    fill = _fill_array(name, fillvalue, dt) if _is_fill(boundary) else None
    return _rconv.correlate2d(a1, a2, fill, op, mode, boundary, method, fft_terms, out, axes, name)


def choose_conv_method(
    in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", *, axes: Optional[Axes] = None
) -> Engine:
    """The method ``method='auto'`` picks for :func:`correlate2d`/:func:`convolve2d`.

    Parameters
    ----------
    in1, in2 : array_like
        The inputs, as for :func:`correlate2d`.
    mode : {'full', 'valid', 'same'}, optional
        Output size.
    axes : pair of int, optional, keyword-only
        For stacks of images, as in :func:`correlate2d`: the method for each image ('fft'
        only if no image holds NaN or Inf).

    Returns
    -------
    method : {'direct', 'fft', 'separable'}
        'direct' whenever an input holds NaN or Inf (an FFT would spread them over the whole
        output, and the separable passes would make NaN where the direct sum does not);
        otherwise the cheapest by a cost model measured on the development machine (direct:
        one multiply-add per kernel tap and output; FFT: overlap-save tiles of about eight
        kernel lengths, never for integer dtypes; separable: ``kh + kw`` taps per output, only
        for a kernel of rank 1). 'separable' is an extension of scipy's two values.

    Raises
    ------
    ValueError, TypeError
        As :func:`correlate2d` for bad shapes, modes and dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> img = np.zeros((1024, 1024))
    >>> rconv.choose_conv_method(img, np.ones((3, 3)), "same")
    'direct'
    >>> rconv.choose_conv_method(img, np.ones((63, 63)), "same")  # rank 1
    'separable'
    >>> rconv.choose_conv_method(img, np.random.default_rng(0).random((63, 63)), "same")
    'fft'
    >>> rconv.choose_conv_method(img.astype(int), np.eye(63, dtype=int), "same")
    'direct'
    """
    f = "choose_conv_method"
    a1, a2, _ = _inputs(f, ("in1", "in2"), in1, in2)
    return _rconv.choose_method(a1, a2, mode, axes, f)


def _correlate(
    name: str,
    op: Op,
    /,
    in1: ArrayLike,
    in2: ArrayLike,
    mode: Mode = "full",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    *,
    method: Method = "auto",
    axes: Optional[Axes] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """correlate2d (`op` 'correlate') and convolve2d ('convolve'), their errors named
    `name` (the public options of :func:`_run`)."""
    a1, a2, dt = _inputs(name, ("in1", "in2"), in1, in2)
    fill = _fill_array(name, fillvalue, dt) if _is_fill(boundary) else None
    return _rconv.correlate2d(a1, a2, fill, op, mode, boundary, method, None, out, axes, name)


correlate2d = _named(
    _correlate,
    "correlate2d",
    "correlate",
    doc=_fill(
        """Cross-correlate two 2-D arrays, exactly as :func:`scipy.signal.correlate2d`.

    Parameters
    ----------
    [in1]
    in2 : array_like
        Second input, 2-D. It is conjugated (for complex input) and slid over `in1`.
    mode : {'full', 'valid', 'same'}, optional
        Output size. ``'full'`` (default): the full discrete cross-correlation, shape
        ``(M1 + M2 - 1, N1 + N2 - 1)``. ``'valid'``: only elements that do not rely on the
        boundary, shape ``(|M1 - M2| + 1, |N1 - N2| + 1)``; one input must be at least as large
        as the other in every dimension, and if `in2` is the larger one the inputs are swapped
        and the result is reversed in both axes (as scipy does). ``'same'``: the shape of
        `in1`, centred on the 'full' output; an even kernel is anchored at ``(K - 1) // 2``.
    boundary : {'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'}, optional
        How `in1` is extended beyond its edges: ``'fill'``/``'pad'`` with `fillvalue`,
        ``'symm'``/``'symmetric'`` by mirroring (the edge sample repeated),
        ``'wrap'``/``'circular'`` periodically. Kernels larger than the image repeat the
        reflection or wrap.
    [options]

    Returns
    -------
    out : ndarray
        2-D array of the common dtype of the inputs (``numpy.result_type``). Sums accumulate
        in that dtype: integer results wrap on overflow exactly as scipy's do.

    Raises
    ------
    ValueError
        If an input is not 2-D, `mode` or `boundary` is unknown, the 'valid' shapes are
        incompatible, or `fillvalue` cannot be cast to the result dtype or is not a scalar.
    TypeError
        If the result dtype is not one of int8..int64, uint8..uint64, float32, float64,
        complex64, complex128 (bool, float16, object and string arrays are refused).

    See Also
    --------
    convolve2d : The same with the kernel flipped.
    corr2d : The 'valid' correlation of deep-learning texts.

    Notes
    -----
    With ``e`` the boundary-extended `in1` and ``(t, l)`` the offset of the mode,

    .. math:: out[i, j] = \\sum_{a, b} \\overline{in2[a, b]}\\, e[i + a - t, j + b - l]

    The computation runs in Rust with the GIL released, on ``rconv.get_num_threads()``
    threads.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> x = np.arange(9.0).reshape(3, 3)
    >>> rconv.correlate2d(x, [[0.0, 1.0], [2.0, 3.0]], mode="valid")
    array([[19., 25.],
           [37., 43.]])
    >>> rconv.correlate2d(np.eye(3, dtype=int), [[1, 2], [3, 4]], mode="same", boundary="wrap")
    array([[5, 3, 2],
           [2, 5, 3],
           [3, 2, 5]])

    A stack of images, and a colour image with its channels last, in one call each:

    >>> stack = np.stack([x, 2 * x])
    >>> rconv.correlate2d(stack, [[0.0, 1.0], [2.0, 3.0]], "valid", axes=(-2, -1))[1]
    array([[38., 50.],
           [74., 86.]])
    >>> rgb = np.ones((4, 5, 3))
    >>> rconv.correlate2d(rgb, np.ones((3, 3)) / 9, "same", axes=(0, 1)).shape
    (4, 5, 3)
    """,
        in1=_IN1_DOC,
        options=_SIGNAL_OPTS_DOC,
    ),
)

convolve2d = _named(
    _correlate,
    "convolve2d",
    "convolve",
    doc=_fill(
        """Convolve two 2-D arrays, exactly as :func:`scipy.signal.convolve2d`.

    Parameters
    ----------
    [in1]
    in2 : array_like
        Second input, 2-D; it is flipped in both axes and slid over `in1`.
    mode : {'full', 'valid', 'same'}, optional
        Output size, as in :func:`correlate2d`. In ``'same'`` mode an even kernel is anchored
        at ``K // 2`` (scipy's convention for convolution). In ``'valid'`` mode a larger `in2`
        is swapped with `in1` (convolution is commutative, so no reversal is needed).
    boundary : {'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'}, optional
        How `in1` is extended beyond its edges; see :func:`correlate2d`.
    [options]

    Returns
    -------
    out : ndarray
        2-D array of the common dtype of the inputs; sums accumulate in that dtype.

    Raises
    ------
    ValueError
        Bad dimensions, mode, boundary, 'valid' shapes or fillvalue (see :func:`correlate2d`).
    TypeError
        Unsupported dtype (bool, float16, object, strings, ...).

    See Also
    --------
    correlate2d : The same without the flip (and with conjugation).

    Notes
    -----
    .. math:: out[i, j] = \\sum_{a, b} in2[a, b]\\, e[i - a + t', j - b + l']

    where ``e`` is the boundary-extended `in1` and ``(t', l')`` the offset of the mode.

    Examples
    --------
    The example of the scipy documentation's users (integer in, integer out):

    >>> import numpy as np
    >>> import rconv
    >>> A = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    >>> B = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    >>> rconv.convolve2d(A, B, "valid")
    array([[4, 3, 4],
           [2, 4, 3],
           [2, 3, 4]])
    """,
        in1=_IN1_DOC,
        options=_SIGNAL_OPTS_DOC,
    ),
)


@_doc(axes=_axes_doc("x", "k"), out=_OUT_DOC)
def corr2d(
    x: ArrayLike, k: ArrayLike, *, axes: Optional[Axes] = None, out: Optional[np.ndarray] = None
) -> np.ndarray:
    """The 2-D cross-correlation of deep-learning texts (d2l's ``corr2d``), in Rust.

    Equivalent to the loop::

        Y[i, j] = (X[i:i + h, j:j + w] * K).sum()

    that is ``correlate2d(x, k, mode='valid')`` without scipy's swap of a larger kernel and
    without conjugation.

    Parameters
    ----------
    x : array_like
        Input image, 2-D, shape ``(H, W)``.
    k : array_like
        Kernel, 2-D, shape ``(h, w)`` with ``h <= H`` and ``w <= W``.
    [axes]
    [out]

    Returns
    -------
    y : ndarray
        Shape ``(H - h + 1, W - w + 1)``, in the common dtype of `x` and `k`.

    Raises
    ------
    ValueError
        If an input is not 2-D or the kernel is larger than the image in any dimension.
    TypeError
        If the common dtype is not supported.

    See Also
    --------
    correlate2d : All modes, boundaries and scipy's conventions.

    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> rconv.corr2d(np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]]))
    array([[19., 25.],
           [37., 43.]])
    """
    return _run("corr2d", "corr2d", x, k, "valid", "fill", 0, "direct", None, out, axes)


def _backward(
    name: str,
    op: Op,
    /,
    grad_output: ArrayLike,
    in1: ArrayLike,
    in2: ArrayLike,
    mode: Mode = "full",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    *,
    axes: Optional[Axes] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """The backward functions (correlate2d_backward, convolve2d_backward, corr2d_backward):
    the three arrays in their common dtype, the rest checked in Rust."""
    names = ("x", "k") if op == "corr2d" else ("in1", "in2")
    a1, a2, dt = _inputs(name, names, in1, in2)
    g = _as_array(name, "grad_output", grad_output)
    if g.dtype != dt:
        try:
            dt = np.result_type(dt, g.dtype)
        except TypeError:
            raise TypeError(
                f"{name}: unsupported dtype combination (grad_output {g.dtype}, inputs {dt})"
            ) from None
        dt = dt if dt.isnative else dt.newbyteorder("=")
        g, a1, a2 = (a.astype(dt, copy=False) for a in (g, a1, a2))
    if not g.flags.aligned:
        g = g.copy()
    fill = _fill_array(name, fillvalue, dt) if _is_fill(boundary) else None
    return _rconv.correlate2d_backward(g, a1, a2, fill, op, mode, boundary, axes, name)


correlate2d_backward = _named(
    _backward,
    "correlate2d_backward",
    "correlate",
    doc=_backward_doc(
        "correlate2d",
        "convolve2d_backward",
        "convolution",
        complex=(
            "correlate2d is linear in the image and conjugate-linear in the kernel it slides "
            "(`in2`, or `in1` after the 'valid' swap): the gradient of the image is "
            "``dS/d(image)``, that of the conjugated kernel ``dS/d(conj(kernel))``, the only "
            "non-zero Wirtinger derivatives. For real inputs both are the ordinary gradients."
        ),
        examples="""
    Examples
    --------
    Learning a kernel: the gradient of a squared error with respect to it.

    >>> import numpy as np
    >>> import rconv
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> k = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> y = rconv.correlate2d(x, k, "same", "symm")
    >>> gx, gk = rconv.correlate2d_backward(2 * y, x, k, "same", "symm")
    >>> gx.shape, gk.shape
    ((4, 4), (2, 2))
    >>> bool(np.isclose((2 * y * y).sum(), (gk * k).sum()))
    True
    """,
    ),
)

convolve2d_backward = _named(
    _backward,
    "convolve2d_backward",
    "convolve",
    doc=_backward_doc(
        "convolve2d",
        "correlate2d_backward",
        "correlation",
        complex="convolve2d is linear in both arguments: both gradients are ``dS/d(arg)``.",
        examples="""
    Examples
    --------
    >>> import numpy as np
    >>> import rconv
    >>> g1, g2 = rconv.convolve2d_backward(np.ones((3, 3)), np.eye(2), np.ones((2, 2)))
    >>> g1
    array([[4., 4.],
           [4., 4.]])
    >>> g2
    array([[2., 2.],
           [2., 2.]])
    """,
    ),
)
