"""2-D correlation and convolution with scipy.signal semantics."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _rconv

_SUPPORTED = frozenset(
    np.dtype(t)
    for t in (
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float32,
        np.float64,
        np.complex64,
        np.complex128,
    )
)
_SUPPORTED_NAMES = ", ".join(sorted(str(d) for d in _SUPPORTED))


def _as_2d(func: str, name: str, a: Any) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise ValueError(f"{func}: {name} cannot be converted to an array: {e}") from e
    if arr.ndim != 2:
        raise ValueError(f"{func}: {name} must be a 2-D array, got {arr.ndim} dimension(s)")
    return arr


def _result_dtype(func: str, a1: np.ndarray, a2: np.ndarray) -> np.dtype:
    """The common dtype of the inputs (as scipy computes it), if rconv supports it."""
    try:
        dt = np.result_type(a1.dtype, a2.dtype)
    except TypeError:
        dt = None
    if dt not in _SUPPORTED:
        raise TypeError(
            f"{func}: unsupported dtype {dt if dt is not None else 'combination'} "
            f"(in1 {a1.dtype}, in2 {a2.dtype}); supported dtypes are {_SUPPORTED_NAMES}"
        )
    return dt


def _fill_array(func: str, fillvalue: Any, dt: np.dtype, boundary: Any) -> np.ndarray:
    """`fillvalue` as a 0-d array of the result dtype, following scipy's rules."""
    if boundary not in ("fill", "pad"):
        return np.zeros((), dt)
    try:
        if isinstance(fillvalue, np.ndarray) and not np.can_cast(fillvalue.dtype, dt, "safe"):
            # scipy converts existing arrays with NumPy's safe casting only
            raise TypeError(f"cannot safely cast {fillvalue.dtype} to {dt}")
        fill = np.array(fillvalue, dtype=dt)
    except Exception as e:
        raise ValueError(
            f"{func}: could not cast fillvalue {fillvalue!r} to the output dtype {dt}"
        ) from e
    if fill.size != 1:
        if fill.size == 0:
            raise ValueError(f"{func}: fillvalue cannot be an empty array")
        raise ValueError(
            f"{func}: fillvalue must be scalar or an array with one element, got shape {fill.shape}"
        )
    return fill.reshape(())


def _aligned(a: np.ndarray) -> np.ndarray:
    """`a`, or an aligned copy when its data is misaligned for its dtype (arrays unpickled
    from a buffer or made by ``np.frombuffer`` at an odd offset): the kernels read whole
    elements."""
    return a if a.flags.aligned else a.copy()


def _check_str(func: str, name: str, value: Any, allowed: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{func}: {name} must be one of {allowed}, got {value!r}")
    return value


_METHODS = ("auto", "direct", "fft")
# Measured on the development machine: one unit of the FFT cost model takes about this many
# times one multiply-add of the direct kernels (float32, float64).
_FFT_FACTOR = {4: 5.8, 8: 5.0}
# Kernels smaller than this (taps) never ran faster through the FFT in the measured sweep.
_FFT_MIN_TAPS = 64


def _all_finite(a: np.ndarray) -> bool:
    """``np.isfinite(a).all()`` in slices, without a full-size temporary."""
    step = max(1, (1 << 20) // max(1, a.shape[1] if a.ndim == 2 else 1))
    return all(bool(np.isfinite(a[i : i + step]).all()) for i in range(0, a.shape[0], step))


def _cost_prefers_fft(func, op, shape1, shape2, dt, mode) -> bool:
    """Whether the cost model finds the FFT cheaper for these shapes (never for integers)."""
    if dt.kind not in "fc" or min(int(np.prod(shape1)), int(np.prod(shape2))) < _FFT_MIN_TAPS:
        return False
    direct, fft = _rconv.method_costs(tuple(shape1), tuple(shape2), mode, op, func)
    real_size = dt.itemsize // (2 if dt.kind == "c" else 1)
    return fft * _FFT_FACTOR[real_size] < direct


def _finite_inputs(a1, a2, fill, boundary) -> bool:
    fill_ok = boundary not in ("fill", "pad") or bool(np.isfinite(fill))
    return fill_ok and _all_finite(a1) and _all_finite(a2)


def _choose(func, op, a1, a2, dt, mode, fill, boundary) -> str:
    """'fft' or 'direct': direct for integers and whenever an input holds NaN or Inf (an FFT
    would smear them over the whole output), else whichever the cost model finds cheaper."""
    if not _cost_prefers_fft(func, op, a1.shape, a2.shape, dt, mode):
        return "direct"
    return "fft" if _finite_inputs(a1, a2, fill, boundary) else "direct"


def _abs_max(a: np.ndarray) -> float:
    """Largest magnitude, without a temporary (and without abs() wrapping at INT_MIN)."""
    return max(-float(a.min()), float(a.max())) if a.size else 0.0


def _fft_integer(func, op, a1, a2, fill, mode, boundary, dt, terms=None):
    """Integer inputs through a float64 FFT, rounded back: exact while every partial sum
    stays below 2**52 (refused otherwise), then wrapped to the dtype like the direct path.
    `terms` overrides the number of terms per sum (a chunk of a larger image passes the
    whole image's, so that it is refused exactly when the whole image would be)."""
    amax = max(_abs_max(a1), abs(float(fill)))
    bmax = _abs_max(a2)
    terms = min(a1.size, a2.size) if terms is None else terms
    if amax * bmax * terms >= 2.0**52:
        raise ValueError(
            f"{func}: method='fft' with integer inputs would be inexact (products up to "
            f"{amax:.3g} * {bmax:.3g} over {terms} terms exceed 2**52); "
            "use method='direct'"
        )
    f64 = np.dtype(np.float64)
    out = _rconv.correlate2d(
        a1.astype(f64), a2.astype(f64), fill.astype(f64), mode, boundary, op, func, "fft"
    )
    return np.rint(out).astype(np.int64).astype(dt)


def _fft_complex(func, op, a1, a2, fill, mode, boundary, dt):
    """Complex correlation as four real FFT correlations (the map is bilinear). correlate2d
    conjugates the operand that ends up as the kernel, which is in1 after the 'valid' swap."""
    rdt = np.dtype(np.float32 if dt == np.complex64 else np.float64)
    swapped = mode == "valid" and not (a1.shape[0] >= a2.shape[0] and a1.shape[1] >= a2.shape[1])
    if op == "correlate":
        if swapped:
            a1 = np.conj(a1)
        else:
            a2 = np.conj(a2)
    fr, fi = np.array(fill.real, rdt), np.array(fill.imag, rdt)

    def real(x, y, f):
        return _rconv.correlate2d(
            np.ascontiguousarray(x, rdt),
            np.ascontiguousarray(y, rdt),
            f,
            mode,
            boundary,
            op,
            func,
            "fft",
        )

    re = real(a1.real, a2.real, fr) - real(a1.imag, a2.imag, fi)
    im = real(a1.real, a2.imag, fr) + real(a1.imag, a2.real, fi)
    out = np.empty(re.shape, dt)
    out.real, out.imag = re, im
    return out


def _run(func, op, in1, in2, mode, boundary, fillvalue, method="direct", fft_terms=None):
    mode = _check_str(func, "mode", mode, "'valid', 'same', 'full'")
    boundary = _check_str(
        func, "boundary", boundary, "'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'"
    )
    if method not in _METHODS:
        raise ValueError(f"{func}: method must be 'auto', 'direct' or 'fft', got {method!r}")
    a1 = _as_2d(func, "in1", in1)
    a2 = _as_2d(func, "in2", in2)
    dt = _result_dtype(func, a1, a2)
    fill = _fill_array(func, fillvalue, dt, boundary)
    # astype(copy=False) copies only when the dtype changes; any strides are fine otherwise.
    a1 = _aligned(a1.astype(dt, copy=False))
    a2 = _aligned(a2.astype(dt, copy=False))
    if method == "auto":
        method = _choose(func, op, a1, a2, dt, mode, fill, boundary)
    if method == "fft" and dt.kind in "iu":
        return _fft_integer(func, op, a1, a2, fill, mode, boundary, dt, fft_terms)
    if method == "fft" and dt.kind == "c":
        return _fft_complex(func, op, a1, a2, fill, mode, boundary, dt)
    return _rconv.correlate2d(a1, a2, fill, mode, boundary, op, func, method)


def choose_conv_method(in1, in2, mode="full"):
    """The method ``method='auto'`` picks for :func:`correlate2d`/:func:`convolve2d`.

    Parameters
    ----------
    in1, in2 : array_like
        The inputs, as for :func:`correlate2d`.
    mode : {'full', 'valid', 'same'}, optional
        Output size.

    Returns
    -------
    method : {'direct', 'fft'}
        'direct' for integer (and bool-like) dtypes and whenever an input holds NaN or Inf
        (an FFT would spread them over the whole output); otherwise the cheaper of the two by
        a cost model measured on the development machine (direct: one multiply-add per kernel
        tap and output; FFT: overlap-save tiles of about eight kernel lengths).

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
    >>> rconv.choose_conv_method(img, np.ones((63, 63)), "same")
    'fft'
    >>> rconv.choose_conv_method(img.astype(int), np.ones((63, 63), int), "same")
    'direct'
    """
    f = "choose_conv_method"
    mode = _check_str(f, "mode", mode, "'valid', 'same', 'full'")
    a1 = _as_2d(f, "in1", in1)
    a2 = _as_2d(f, "in2", in2)
    dt = _result_dtype(f, a1, a2)
    return _choose(f, "correlate", a1, a2, dt, mode, np.zeros((), dt), "fill")


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto"):
    """Cross-correlate two 2-D arrays, exactly as :func:`scipy.signal.correlate2d`.

    Parameters
    ----------
    in1 : array_like
        First input, 2-D.
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
    fillvalue : scalar, optional
        Value to pad with when ``boundary='fill'``; cast to the result dtype. Default 0.
    method : {'auto', 'direct', 'fft'}, optional, keyword-only
        ``'direct'`` sums the products (exact in the dtype); ``'fft'`` multiplies spectra
        (overlap-save tiles; float rounding spreads over the output: errors stay below
        ``4 eps log2(n)`` times the largest sum of absolute products, ``eps`` of the dtype and
        ``n`` the transform size, about ``1e-5`` (float32) or ``1e-14`` (float64) of the
        output's scale; integers are computed in float64
        and rounded back, refused if products could exceed ``2**52``); ``'auto'`` (default)
        picks the faster, staying direct for integers and for inputs holding NaN or Inf.
        See :func:`choose_conv_method`.

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
    """
    return _run("correlate2d", "correlate", in1, in2, mode, boundary, fillvalue, method)


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, method="auto"):
    """Convolve two 2-D arrays, exactly as :func:`scipy.signal.convolve2d`.

    Parameters
    ----------
    in1 : array_like
        First input, 2-D.
    in2 : array_like
        Second input, 2-D; it is flipped in both axes and slid over `in1`.
    mode : {'full', 'valid', 'same'}, optional
        Output size, as in :func:`correlate2d`. In ``'same'`` mode an even kernel is anchored
        at ``K // 2`` (scipy's convention for convolution). In ``'valid'`` mode a larger `in2`
        is swapped with `in1` (convolution is commutative, so no reversal is needed).
    boundary : {'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'}, optional
        How `in1` is extended beyond its edges; see :func:`correlate2d`.
    fillvalue : scalar, optional
        Value to pad with when ``boundary='fill'``; cast to the result dtype. Default 0.
    method : {'auto', 'direct', 'fft'}, optional, keyword-only
        ``'direct'`` sums the products (exact in the dtype); ``'fft'`` multiplies spectra
        (overlap-save tiles; float rounding spreads over the output: errors stay below
        ``4 eps log2(n)`` times the largest sum of absolute products, ``eps`` of the dtype and
        ``n`` the transform size, about ``1e-5`` (float32) or ``1e-14`` (float64) of the
        output's scale; integers are computed in float64
        and rounded back, refused if products could exceed ``2**52``); ``'auto'`` (default)
        picks the faster, staying direct for integers and for inputs holding NaN or Inf.
        See :func:`choose_conv_method`.

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
    """
    return _run("convolve2d", "convolve", in1, in2, mode, boundary, fillvalue, method)


def corr2d(x, k):
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
    return _run("corr2d", "corr2d", x, k, "valid", "fill", 0)
