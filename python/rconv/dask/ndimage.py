"""rconv.ndimage on chunked Dask arrays: scipy.ndimage's linear filters beyond one machine.

The functions follow dask-image's ``dask_image.ndfilters`` (the image first, scipy.ndimage's
arguments after it, no ``output``) and :mod:`rconv.ndimage`'s semantics, and return lazy
Dask arrays. Every chunk is filtered by the in-memory :mod:`rconv.ndimage` function through
:func:`dask.array.map_overlap`:

- the overlap along each axis is the filter's reach there (a kernel's half-length plus its
  origin shift, a Gaussian's radius, 1 for the derivative filters); every pass of a filter
  runs along one axis, so a chunk with that overlap computes its own cells exactly;
- at the image's edges a chunk applies the boundary `mode` itself, as the whole image would;
  'wrap' ('grid-wrap') takes its overlap periodically from the opposite edge;
- chunks shorter than the overlap are joined to their neighbours first (an axis whose
  filter reaches further than the whole axis becomes one chunk);
- the uniform filters keep a running sum along each line, which restarts wherever a line is
  cut: :func:`uniform_filter` and :func:`uniform_filter1d` run one pass per filtered axis
  with that axis in one chunk (the other axes stay chunked), the way scipy's passes run.

So every result equals the in-memory call byte for byte, NaN for NaN. Argument errors are
raised when the graph is built, with the in-memory function's message (and its warnings).

Examples
--------
>>> import numpy as np, dask.array as da
>>> import rconv.ndimage
>>> import rconv.dask.ndimage as dnd
>>> x = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
>>> y = dnd.gaussian_filter(da.from_array(x, chunks=100), 2.0)
>>> bool((y.compute() == rconv.ndimage.gaussian_filter(x, 2.0)).all())
True
"""

from __future__ import annotations

import functools
import math
import operator
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import ndimage as _nd
from .._docs import _doc
from . import _as_dask, _computed, _known_shape, _merge_chunks, da

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    #: The image: a Dask array, or anything array-like (wrapped in one chunk).
    Chunked = Union[da.Array, ArrayLike]

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

Modes = Union[str, Sequence[str]]


# The parameter texts the filters share (``[name]`` lines of their docstrings, filled by
# :func:`rconv._docs._doc`).
_PARTS: Dict[str, Any] = dict(
    image="""\
        image : dask.array.Array or array_like
            The image, any rank, in chunks of any shape.
        """,
    weights="""\
        weights : array_like
            The kernel, held in memory (a Dask array is computed first).
        """,
    axis="""\
        axis : int, optional
            The axis to filter along (default the last).
        """,
    axes="""\
        axes : tuple of int or None, optional
            The axes to filter (default all).
        """,
    sigma="""\
        sigma : float or sequence of float
            The standard deviation, one for all axes or one per axis.
        """,
    mode="""\
        mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}, optional
            The boundary, one for all axes (the ``grid-*`` names too).
        """,
    modes="""\
        mode : str or sequence of str, optional
            The boundary, one for all axes or one per axis.
        """,
    cval="""\
        cval : float, optional
            The value past the edges with mode 'constant'.
        """,
    origin="""\
        origin : int, optional
            Shifts the window.
        """,
    origins="""\
        origin : int or sequence of int, optional
            Shifts the window, one for all axes or one per axis.
        """,
    kwargs="""\
        **kwargs
            ``truncate`` and ``radius``, passed to the Gaussian filters.
        """,
    returns=lambda name: (
        f"""\
        dask.array.Array
            Lazy; computed, equal to :func:`rconv.ndimage.{name}` byte for byte.
        """
    ),
)

_WRAP = ("wrap", "grid-wrap")


def _image(func: str, image: Any) -> da.Array:
    x = _as_dask(func, "image", image)
    _known_shape(func, "image", x, range(x.ndim))
    return x


def _probe(x: da.Array, call: Callable[[np.ndarray], np.ndarray]) -> np.dtype:
    """The result's dtype, and the in-memory function's checks (its errors and warnings)
    on a one-element image of the same rank and dtype."""
    return np.asarray(call(np.zeros((1,) * x.ndim, x.dtype))).dtype


def _overlapped(
    x: da.Array,
    depth: Sequence[int],
    wrap: Sequence[bool],
    dtype: np.dtype,
    call: Callable[[np.ndarray], np.ndarray],
) -> da.Array:
    """`call` (an in-memory filter) on every chunk with `depth` cells of overlap per axis,
    trimmed back to the chunk; chunks shorter than the overlap joined first, and an axis in
    one chunk filtered without overlap (`call` applies the boundary mode itself)."""
    chunks, dep, bnd = [], {}, {}
    for ax, (d, c) in enumerate(zip(depth, x.chunks)):
        c = _merge_chunks(c, d) if d and len(c) > 1 else tuple(c)
        chunks.append(c)
        dep[ax] = d if len(c) > 1 else 0
        bnd[ax] = "periodic" if wrap[ax] and dep[ax] else "none"
    if x.size == 0 or x.ndim == 0:
        return da.from_array(call(np.asarray(x)))
    x = x.rechunk(tuple(chunks))
    return x.map_overlap(
        call,
        depth=dep,
        boundary=bnd,
        trim=True,
        dtype=dtype,
        meta=np.empty((0,) * x.ndim, dtype),
    )


def _modes_wrap(mode: Modes, ndim: int) -> List[bool]:
    return [m in _WRAP for m in _nd._normalize_sequence(mode, ndim)]


def _radius(sigma: float, truncate: float, radius: Optional[int]) -> int:
    """scipy's Gaussian radius: ``int(truncate * sigma + 0.5)`` unless given."""
    if radius is not None:
        return int(radius)
    return int(float(truncate) * float(sigma) + 0.5)


# --------------------------------------------------------------------------- correlate


def _correlate_nd(
    func: str,
    fn: Callable[..., np.ndarray],
    image: Chunked,
    weights: ArrayLike,
    mode: str,
    cval: Any,
    origin: Union[int, Sequence[int]],
    axes: Optional[Sequence[int]],
) -> da.Array:
    x = _image(func, image)
    w = np.asarray(_computed(weights))
    call = functools.partial(fn, weights=w, mode=mode, cval=cval, origin=origin, axes=axes)
    dtype = _probe(x, call)
    ax = _nd._check_axes(axes, x.ndim)
    origins = _nd._normalize_sequence(origin, len(ax))
    depth = [0] * x.ndim
    for a, n, o in zip(ax, w.shape, origins):
        depth[a] = n // 2 + abs(operator.index(o))
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


@_doc(**_PARTS)
def correlate(
    image: Chunked,
    weights: ArrayLike,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> da.Array:
    """Multidimensional correlation of a chunked array (:func:`rconv.ndimage.correlate`).

    Parameters
    ----------
    [image]
    [weights]
    [mode]
    [cval]
    [origins]
    [axes]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import correlate
    >>> x = np.arange(36.0).reshape(6, 6)
    >>> y = correlate(da.from_array(x, chunks=3), np.ones((3, 3)))
    >>> bool((y.compute() == rconv.ndimage.correlate(x, np.ones((3, 3)))).all())
    True
    """
    return _correlate_nd(
        "rconv.dask.ndimage.correlate", _nd.correlate, image, weights, mode, cval, origin, axes
    )


@_doc(**_PARTS)
def convolve(
    image: Chunked,
    weights: ArrayLike,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> da.Array:
    """Multidimensional convolution of a chunked array (:func:`rconv.ndimage.convolve`).

    Parameters
    ----------
    [image]
    [weights]
    [mode]
    [cval]
    [origins]
    [axes]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import convolve
    >>> x = np.arange(36.0).reshape(6, 6)
    >>> w = np.array([[1.0, 2.0], [0.0, -1.0]])
    >>> y = convolve(da.from_array(x, chunks=2), w, mode="wrap")
    >>> bool((y.compute() == rconv.ndimage.convolve(x, w, mode="wrap")).all())
    True
    """
    return _correlate_nd(
        "rconv.dask.ndimage.convolve", _nd.convolve, image, weights, mode, cval, origin, axes
    )


def _correlate_1d(
    func: str,
    fn: Callable[..., np.ndarray],
    image: Chunked,
    weights: ArrayLike,
    axis: int,
    mode: str,
    cval: Any,
    origin: int,
) -> da.Array:
    x = _image(func, image)
    w = np.asarray(_computed(weights))
    call = functools.partial(fn, weights=w, axis=axis, mode=mode, cval=cval, origin=origin)
    dtype = _probe(x, call)
    depth = [0] * x.ndim
    depth[_nd._check_axes((axis,), x.ndim)[0]] = len(w) // 2 + abs(operator.index(origin))
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


@_doc(**_PARTS)
def correlate1d(
    image: Chunked,
    weights: ArrayLike,
    axis: int = -1,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> da.Array:
    """1-D correlation along one axis of a chunked array (:func:`rconv.ndimage.correlate1d`).

    Parameters
    ----------
    [image]
    weights : array_like
        The 1-D kernel.
    [axis]
    [mode]
    [cval]
    [origin]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import correlate1d
    >>> x = np.arange(20.0).reshape(4, 5)
    >>> y = correlate1d(da.from_array(x, chunks=2), [1.0, 0.0, -1.0], axis=0)
    >>> bool((y.compute() == rconv.ndimage.correlate1d(x, [1.0, 0.0, -1.0], axis=0)).all())
    True
    """
    return _correlate_1d(
        "rconv.dask.ndimage.correlate1d", _nd.correlate1d, image, weights, axis, mode, cval, origin
    )


@_doc(**_PARTS)
def convolve1d(
    image: Chunked,
    weights: ArrayLike,
    axis: int = -1,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> da.Array:
    """1-D convolution along one axis of a chunked array (:func:`rconv.ndimage.convolve1d`).

    Parameters
    ----------
    [image]
    weights : array_like
        The 1-D kernel.
    [axis]
    [mode]
    [cval]
    [origin]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import convolve1d
    >>> x = np.arange(20.0).reshape(4, 5)
    >>> y = convolve1d(da.from_array(x, chunks=2), [1.0, 2.0], mode="nearest")
    >>> bool((y.compute() == rconv.ndimage.convolve1d(x, [1.0, 2.0], mode="nearest")).all())
    True
    """
    return _correlate_1d(
        "rconv.dask.ndimage.convolve1d", _nd.convolve1d, image, weights, axis, mode, cval, origin
    )


# --------------------------------------------------------------------------- Gaussians


def _gaussian_depth(
    ndim: int,
    sigma: Any,
    truncate: float,
    radius: Any,
    axes: Optional[Sequence[int]],
) -> List[int]:
    ax = _nd._check_axes(axes, ndim)
    sigmas = _nd._normalize_sequence(sigma, len(ax))
    radii = _nd._normalize_sequence(radius, len(ax))
    depth = [0] * ndim
    for a, s, r in zip(ax, sigmas, radii):
        s = float(s)
        depth[a] = _radius(s, truncate, r) if math.isfinite(s) and s > 1e-15 else 0
    return depth


@_doc(**_PARTS)
def gaussian_filter1d(
    image: Chunked,
    sigma: float,
    axis: int = -1,
    order: int = 0,
    mode: str = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    *,
    radius: Optional[int] = None,
) -> da.Array:
    """1-D Gaussian filter of a chunked array (:func:`rconv.ndimage.gaussian_filter1d`).

    Parameters
    ----------
    [image]
    sigma : float
        The Gaussian's standard deviation.
    [axis]
    order : int, optional
        0 smooths; 1, 2, 3 convolve with that derivative of the Gaussian.
    [mode]
    [cval]
    truncate : float, optional
        The radius in standard deviations (default 4.0).
    radius : int or None, optional
        The radius in cells, overriding `truncate`.

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import gaussian_filter1d
    >>> x = np.linspace(0, 1, 50)
    >>> y = gaussian_filter1d(da.from_array(x, chunks=10), 3.0, order=1)
    >>> bool((y.compute() == rconv.ndimage.gaussian_filter1d(x, 3.0, order=1)).all())
    True
    """
    x = _image("rconv.dask.ndimage.gaussian_filter1d", image)
    call = functools.partial(
        _nd.gaussian_filter1d,
        sigma=sigma,
        axis=axis,
        order=order,
        mode=mode,
        cval=cval,
        truncate=truncate,
        radius=radius,
    )
    dtype = _probe(x, call)
    a = _nd._check_axes((axis,), x.ndim)[0]
    depth = _gaussian_depth(x.ndim, [sigma], truncate, [radius], (a,))
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


@_doc(**_PARTS)
def gaussian_filter(
    image: Chunked,
    sigma: Union[float, Sequence[float]],
    order: Union[int, Sequence[int]] = 0,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    truncate: float = 4.0,
    *,
    radius: Union[None, int, Sequence[int]] = None,
    axes: Optional[Sequence[int]] = None,
) -> da.Array:
    """Gaussian filter of a chunked array (:func:`rconv.ndimage.gaussian_filter`).

    Parameters
    ----------
    [image]
    [sigma]
    order : int or sequence of int, optional
        The derivative order per axis (0 smooths).
    [modes]
    [cval]
    truncate : float, optional
        The radius in standard deviations (default 4.0).
    radius : int, sequence of int or None, optional
        The radius in cells, overriding `truncate`.
    [axes]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import gaussian_filter
    >>> v = np.random.default_rng(1).random((20, 30, 30)).astype(np.float32)
    >>> y = gaussian_filter(da.from_array(v, chunks=(5, 15, 15)), 1.0, mode="wrap")
    >>> bool((y.compute() == rconv.ndimage.gaussian_filter(v, 1.0, mode="wrap")).all())
    True
    """
    x = _image("rconv.dask.ndimage.gaussian_filter", image)
    call = functools.partial(
        _nd.gaussian_filter,
        sigma=sigma,
        order=order,
        mode=mode,
        cval=cval,
        truncate=truncate,
        radius=radius,
        axes=axes,
    )
    dtype = _probe(x, call)
    depth = _gaussian_depth(x.ndim, sigma, truncate, radius, axes)
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


def _gaussian_derived(
    func: str,
    fn: Callable[..., np.ndarray],
    image: Chunked,
    sigma: Union[float, Sequence[float]],
    mode: Modes,
    cval: Any,
    axes: Optional[Sequence[int]],
    kwargs: Dict[str, Any],
) -> da.Array:
    x = _image(func, image)
    call = functools.partial(fn, sigma=sigma, mode=mode, cval=cval, axes=axes, **kwargs)
    dtype = _probe(x, call)
    truncate = kwargs.get("truncate", 4.0)
    depth = _gaussian_depth(x.ndim, sigma, truncate, kwargs.get("radius"), axes)
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


@_doc(**_PARTS)
def gaussian_laplace(
    image: Chunked,
    sigma: Union[float, Sequence[float]],
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> da.Array:
    """Laplace of Gaussian of a chunked array (:func:`rconv.ndimage.gaussian_laplace`).

    Parameters
    ----------
    [image]
    [sigma]
    [modes]
    [cval]
    [axes]
    [kwargs]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import gaussian_laplace
    >>> x = np.random.default_rng(2).random((40, 40))
    >>> y = gaussian_laplace(da.from_array(x, chunks=15), 1.5)
    >>> bool((y.compute() == rconv.ndimage.gaussian_laplace(x, 1.5)).all())
    True
    """
    return _gaussian_derived(
        "rconv.dask.ndimage.gaussian_laplace",
        _nd.gaussian_laplace,
        image,
        sigma,
        mode,
        cval,
        axes,
        kwargs,
    )


@_doc(**_PARTS)
def gaussian_gradient_magnitude(
    image: Chunked,
    sigma: Union[float, Sequence[float]],
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> da.Array:
    """Gradient magnitude with Gaussian derivatives of a chunked array.

    The chunked :func:`rconv.ndimage.gaussian_gradient_magnitude`.

    Parameters
    ----------
    [image]
    [sigma]
    [modes]
    [cval]
    [axes]
    [kwargs]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import gaussian_gradient_magnitude as ggm
    >>> x = np.random.default_rng(3).random((40, 40)).astype(np.float32)
    >>> y = ggm(da.from_array(x, chunks=20), 2.0, mode="nearest")
    >>> ref = rconv.ndimage.gaussian_gradient_magnitude(x, 2.0, mode="nearest")
    >>> bool((y.compute() == ref).all())
    True
    """
    return _gaussian_derived(
        "rconv.dask.ndimage.gaussian_gradient_magnitude",
        _nd.gaussian_gradient_magnitude,
        image,
        sigma,
        mode,
        cval,
        axes,
        kwargs,
    )


# --------------------------------------------------------------------------- derivatives


def _unit_reach(
    func: str,
    call: Callable[[np.ndarray], np.ndarray],
    image: Chunked,
    mode: Modes,
    axes: Optional[Sequence[int]],
) -> da.Array:
    """A filter of reach 1 along `axes` (the derivative stencils)."""
    x = _image(func, image)
    dtype = _probe(x, call)
    depth = [0] * x.ndim
    for a in _nd._check_axes(axes, x.ndim):
        depth[a] = 1
    return _overlapped(x, depth, _modes_wrap(mode, x.ndim), dtype, call)


@_doc(**_PARTS)
def sobel(image: Chunked, axis: int = -1, mode: Modes = "reflect", cval: Any = 0.0) -> da.Array:
    """Sobel derivative of a chunked array (:func:`rconv.ndimage.sobel`).

    Parameters
    ----------
    [image]
    axis : int, optional
        The axis of the derivative (the others are smoothed).
    [modes]
    [cval]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import sobel
    >>> x = (np.arange(64) % 7).reshape(8, 8).astype(np.uint8)
    >>> y = sobel(da.from_array(x, chunks=3), axis=0)
    >>> bool((y.compute() == rconv.ndimage.sobel(x, axis=0)).all())
    True
    """
    call = functools.partial(_nd.sobel, axis=axis, mode=mode, cval=cval)
    return _unit_reach("rconv.dask.ndimage.sobel", call, image, mode, None)


@_doc(**_PARTS)
def prewitt(image: Chunked, axis: int = -1, mode: Modes = "reflect", cval: Any = 0.0) -> da.Array:
    """Prewitt derivative of a chunked array (:func:`rconv.ndimage.prewitt`).

    Parameters
    ----------
    [image]
    axis : int, optional
        The axis of the derivative (the others are smoothed).
    [modes]
    [cval]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import prewitt
    >>> x = np.arange(64.0).reshape(8, 8) ** 2
    >>> y = prewitt(da.from_array(x, chunks=4), mode="mirror")
    >>> bool((y.compute() == rconv.ndimage.prewitt(x, mode="mirror")).all())
    True
    """
    call = functools.partial(_nd.prewitt, axis=axis, mode=mode, cval=cval)
    return _unit_reach("rconv.dask.ndimage.prewitt", call, image, mode, None)


@_doc(**_PARTS)
def laplace(
    image: Chunked,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> da.Array:
    """Laplace filter of a chunked array (:func:`rconv.ndimage.laplace`).

    Parameters
    ----------
    [image]
    [modes]
    [cval]
    [axes]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import laplace
    >>> x = np.arange(100.0).reshape(10, 10) ** 2
    >>> y = laplace(da.from_array(x, chunks=4), mode="constant", cval=1.0)
    >>> bool((y.compute() == rconv.ndimage.laplace(x, mode="constant", cval=1.0)).all())
    True
    """
    call = functools.partial(_nd.laplace, mode=mode, cval=cval, axes=axes)
    return _unit_reach("rconv.dask.ndimage.laplace", call, image, mode, axes)


# --------------------------------------------------------------------------- uniform


def _whole_lines(
    x: da.Array,
    axis: int,
    dtype: np.dtype,
    call: Callable[[np.ndarray], np.ndarray],
) -> da.Array:
    """`call` on blocks holding whole lines along `axis` (the other axes keep their chunks)."""
    if x.size == 0 or x.ndim == 0:
        return da.from_array(call(np.asarray(x)))
    x = x.rechunk({axis: -1})
    return da.map_blocks(call, x, dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))


@_doc(**_PARTS)
def uniform_filter1d(
    image: Chunked,
    size: int,
    axis: int = -1,
    mode: str = "reflect",
    cval: Any = 0.0,
    origin: int = 0,
) -> da.Array:
    """1-D uniform (box) filter of a chunked array (:func:`rconv.ndimage.uniform_filter1d`).

    scipy's running sum restarts wherever a line is cut, so the filtered axis is made one
    chunk (the other axes stay chunked) and the result is the in-memory call's.

    Parameters
    ----------
    [image]
    size : int
        The box length.
    [axis]
    [mode]
    [cval]
    [origin]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import uniform_filter1d
    >>> x = np.random.default_rng(4).random((6, 50))
    >>> y = uniform_filter1d(da.from_array(x, chunks=(2, 10)), 5)
    >>> bool((y.compute() == rconv.ndimage.uniform_filter1d(x, 5)).all())
    True
    """
    x = _image("rconv.dask.ndimage.uniform_filter1d", image)
    call = functools.partial(
        _nd.uniform_filter1d, size=size, axis=axis, mode=mode, cval=cval, origin=origin
    )
    dtype = _probe(x, call)
    return _whole_lines(x, _nd._check_axes((axis,), x.ndim)[0], dtype, call)


@_doc(**_PARTS)
def uniform_filter(
    image: Chunked,
    size: Union[int, Sequence[int]] = 3,
    mode: Modes = "reflect",
    cval: Any = 0.0,
    origin: Union[int, Sequence[int]] = 0,
    *,
    axes: Optional[Sequence[int]] = None,
) -> da.Array:
    """Uniform (box) filter of a chunked array (:func:`rconv.ndimage.uniform_filter`).

    As scipy, one :func:`uniform_filter1d` pass per axis whose size exceeds 1, each stored
    in the result's dtype; each pass runs with its axis in one chunk (see
    :func:`uniform_filter1d`), so the result is the in-memory call's.

    Parameters
    ----------
    [image]
    size : int or sequence of int, optional
        The box length, one for all axes or one per axis (default 3).
    [modes]
    [cval]
    [origins]
    [axes]

    Returns
    -------
    [returns]

    Examples
    --------
    >>> import numpy as np, dask.array as da, rconv.ndimage
    >>> from rconv.dask.ndimage import uniform_filter
    >>> x = np.random.default_rng(5).random((30, 40)).astype(np.float32)
    >>> y = uniform_filter(da.from_array(x, chunks=10), 5)
    >>> bool((y.compute() == rconv.ndimage.uniform_filter(x, 5)).all())
    True
    """
    x = _image("rconv.dask.ndimage.uniform_filter", image)
    call = functools.partial(
        _nd.uniform_filter, size=size, mode=mode, cval=cval, origin=origin, axes=axes
    )
    dtype = _probe(x, call)
    ax = _nd._check_axes(axes, x.ndim)
    sizes = _nd._normalize_sequence(size, len(ax))
    origins = _nd._normalize_sequence(origin, len(ax))
    modes = _nd._normalize_sequence(mode, len(ax))
    passes = [(a, int(s), o, m) for a, s, o, m in zip(ax, sizes, origins, modes) if int(s) > 1]
    if not passes or x.dtype.kind == "c":
        # nothing to filter (a cast), or complex data (scipy filters its real and imaginary
        # parts through all the passes): whole lines along every filtered axis at once
        for a, *_ in passes:
            x = x.rechunk({a: -1})
        return _whole_lines(x, ax[0] if ax else 0, dtype, call)
    for a, s, o, m in passes:
        step = functools.partial(
            _nd.uniform_filter1d, size=s, axis=a, output=dtype, mode=m, cval=cval, origin=o
        )
        x = _whole_lines(x, a, dtype, step)
    return x
