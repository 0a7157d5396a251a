"""rconv on Dask arrays: images and batches larger than memory, or spread over a cluster.

Requires Dask: from a checkout of rconv, ``pip install ".[dask]"``; else
``pip install "dask[array]>=2023.1" "distributed>=2023.1"`` (rconv is not on a package
index). Every function takes the same arguments as its in-memory namesake in :mod:`rconv`,
accepts a ``dask.array.Array`` (or anything array-like) for the large argument and returns
lazy Dask arrays; call ``.compute()`` (or ``dask.compute``) to run them on any scheduler:
threads, processes or ``dask.distributed``.

:func:`correlate2d` and :func:`convolve2d` take a 2-D image (or, with ``axes=``, a stack of
them, chunked along any axis) in chunks of any shape, through ``dask.array.map_overlap``: each
block reads exactly the rows and columns its kernel window needs from its neighbours (an even
kernel reaches one cell further on one side, as in scipy). The true image edges are extended
by rconv itself with `boundary` and `fillvalue` ('wrap', which needs the opposite edge, is
taken from there before the blocks are cut). All three modes, with the output chunked like
the input ('full' and 'valid' grow or shrink the last chunks).

:mod:`rconv.dask.ndimage` has the filters of :mod:`rconv.ndimage` on arrays of any rank,
with dask-image's ``ndfilters`` signatures and the in-memory results byte for byte.

The batch functions, :func:`conv2d`, :func:`conv2d_backward`, :func:`max_pool2d`,
:func:`max_pool2d_backward`, :func:`avg_pool2d`, :func:`avg_pool2d_backward`,
:func:`adaptive_avg_pool2d` and :func:`adaptive_max_pool2d`, take NCHW batches chunked along
the batch axis (the other axes are made single chunks): every sample is computed by the
in-memory function; ``conv2d_backward`` sums the weight and bias gradients of the chunks.

Results equal the in-memory calls: bit for bit with ``method='direct'`` and for every
per-sample output (``conv2d``, pools, ``grad_input``). Two kinds of result agree to rounding
error only, because their sums are split differently: FFT correlations (each block is
transformed on its own) and the batch sums ``grad_weight``/``grad_bias`` of
:func:`conv2d_backward`. ``method='auto'`` decides once, from the full shapes and the kernel's
rank, exactly as the in-memory call does; a block holding NaN or Inf is then computed directly.
An explicit
``method='fft'`` transforms every block (a NaN or Inf spreads over the FFT tiles around it,
which are not the in-memory call's tiles), and with integer inputs it is refused, as in memory,
when a sum could exceed 2**52, but only when the graph runs (the values are not known before).

Argument errors are raised when the graph is built. Arrays must have known chunk sizes
(``compute_chunk_sizes()`` otherwise), except the batch axis of a single-input batch function.
"""

from __future__ import annotations

import functools
import inspect
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "rconv.dask needs Dask: pip install 'dask[array]>=2023.1' 'distributed>=2023.1' "
        "(or, in a checkout of rconv, pip install '.[dask]')"
    ) from e

from .. import _nn, _rconv, _signal
from .._docs import (
    _ADAPTIVE_POOLED_DOC,
    _AVG_OPTS_DOC,
    _BATCH_GRAD_INPUT_DOC,
    _BATCH_INPUT_DOC,
    _CONV_OPTS_DOC,
    _DASK_IMPORTS_DOC,
    _MAX_WINDOW_DOC,
    _POOLED_DOC,
    _POOLED_GRAD_DOC,
    _built,
    _doc,
    _filled,
)
from .._named import _named

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._rconv import (
        Axes,
        Boundary,
        Engine,
        IntPair,
        Method,
        Mode,
        Op,
        OutputSize,
        Padding,
        PaddingMode,
        PlanMethod,
    )
    from .._signal import Scalar

    #: The large argument: a Dask array, or anything array-like (wrapped in one chunk).
    Chunked = Union[da.Array, ArrayLike]

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "convolve2d",
    "correlate2d",
    "max_pool2d",
    "max_pool2d_backward",
]


#: The docstring texts this module's functions share (placeholders a function lacks are
#: ignored); ``[raises]`` names the function's in-memory namesake.
_BATCH_DOCS: Dict[str, Any] = dict(
    raises=_built,
    imports=_DASK_IMPORTS_DOC,
    input=_BATCH_INPUT_DOC,
    grads=_POOLED_GRAD_DOC,
    grad_input=_BATCH_GRAD_INPUT_DOC,
)


def _as_dask(func: str, name: str, x: Any) -> da.Array:
    if isinstance(x, da.Array):
        return x
    try:
        return da.asarray(np.asarray(x))
    except Exception as e:
        raise ValueError(f"{func}: {name} cannot be converted to an array: {e}") from e


def _known_shape(func: str, name: str, x: da.Array, axes: Iterable[int]) -> None:
    if any(np.isnan(x.shape[a]) for a in axes):
        raise ValueError(
            f"{func}: {name} has chunks of unknown size (shape {x.shape}); call "
            "compute_chunk_sizes() on it first"
        )


def _computed(x: Any) -> Any:
    """Small arguments (kernels, weights) are held in memory: a Dask array is computed."""
    return x.compute() if isinstance(x, da.Array) else x


# --------------------------------------------------------------------------- correlate2d


class _Axis:
    """Bookkeeping of one axis of a chunked correlation.

    Output element ``o`` reads input elements ``o - lo .. o - lo + k - 1`` (negative or past
    the end: the boundary). Output chunk ``i`` is computed from input chunk ``i`` plus
    ``depth`` neighbours; the last output chunk takes whatever 'full' adds or 'valid' drops.
    """

    def __init__(self, n: int, k: int, lo: int, out: int, chunks: Sequence[int]) -> None:
        self.n, self.k, self.lo, self.out = n, k, lo, out
        ext_end = max(0, out - 1 - lo + k - n)  # boundary cells needed past the end
        # Every chunk at least this long: the neighbour overlap fits in one chunk, the
        # boundary extension of an edge block lies inside that block (as for the whole
        # image), and the last chunk still owns an output row when 'valid' shrinks it.
        need = max(1, lo, k - 1 - lo, ext_end, n - out + 1)
        self.chunks = _merge_chunks(chunks, need)
        single = len(self.chunks) == 1
        self.depth = (0, 0) if single else (lo, k - 1 - lo)
        self.starts = np.cumsum((0,) + self.chunks[:-1]).tolist()
        self.out_chunks = self.chunks[:-1] + (out - self.starts[-1],)

    def plan(self, i: int, length: int) -> Tuple[int, int, int, int, int]:
        """For block ``i`` of `length` cells (with overlap): the slice of the block holding
        the cells the output chunk needs, the boundary cells needed before and after it,
        and the number of output cells."""
        r0 = self.starts[i]
        start = max(0, r0 - self.depth[0])  # first input cell in the block
        if length != min(self.n, r0 + self.chunks[i] + self.depth[1]) - start:
            raise RuntimeError("rconv.dask: unexpected block shape (internal error)")
        m = self.out_chunks[i]
        lo_in, hi_in = r0 - self.lo, r0 + m - self.lo + self.k - 1  # cells the outputs read
        c0, c1 = max(lo_in, start), min(hi_in, start + length)
        return c0 - start, c1 - start, c0 - lo_in, hi_in - c1, m


def _merge_chunks(chunks: Sequence[int], need: int) -> Tuple[int, ...]:
    """Join neighbouring chunks until each is at least `need` long (or there is one)."""
    out: List[int] = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= need:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _wrap_pad(x: da.Array, axis: int, before: int, after: int) -> da.Array:
    """Periodic extension of one axis (any width, repeating the axis as often as needed)."""
    n = x.shape[axis]
    if max(before, after) > n:
        # The kernel is longer than the image along this axis: the image axis is short, so
        # gather the repeated cells in one chunk rather than in one piece per repeat.
        index = np.arange(-before, n + after) % n
        x = x.rechunk({axis: -1})
        chunks = tuple((len(index),) if a == axis else c for a, c in enumerate(x.chunks))
        return da.map_blocks(np.take, x, index, axis=axis, chunks=chunks, dtype=x.dtype)
    pieces = []
    pos, end = -before, n + after
    while pos < end:
        s = pos % n
        m = min(n - s, end - pos)
        index = [slice(None)] * x.ndim
        index[axis] = slice(s, s + m)
        pieces.append(x[tuple(index)])
        pos += m
    return da.concatenate(pieces, axis=axis) if len(pieces) > 1 else pieces[0]


def _correlate_block(
    block: np.ndarray,
    block_id: Tuple[int, ...] = (),
    *,
    func: str,
    op: Op,
    kernel: np.ndarray,
    axes: Sequence[_Axis],
    boundary: Boundary,
    fill: Any,
    method: PlanMethod,
    terms: int,
    bstarts: Sequence[Sequence[int]],
) -> np.ndarray:
    """One output chunk of a chunked correlation (runs on a worker). The image axes are the
    last two; any axes before them are batch axes, which slice a stack of kernels."""
    i, j = block_id[-2:]
    r0, r1, top, bottom, m = axes[0].plan(i, block.shape[-2])
    c0, c1, left, right, n = axes[1].plan(j, block.shape[-1])
    piece = block[..., r0:r1, c0:c1]
    if kernel.ndim > 2:
        # this block's kernels: the batch ranges of the block (broadcast axes: the one kernel)
        index = tuple(
            slice(None) if kn == 1 else slice(st[b], st[b] + ln)
            for kn, st, b, ln in zip(kernel.shape[:-2], bstarts, block_id[:-2], block.shape[:-2])
        )
        kernel = kernel[index]
    stacked = (-2, -1) if block.ndim > 2 else None
    # method 'fft-if-finite': 'auto' chose the FFT for the whole image; a block holding NaN
    # or Inf stays direct, as the in-memory 'auto' does (decided in Rust)
    kh, kw = kernel.shape[-2:]
    args = (func, op, piece, kernel)
    if top == bottom == left == right == 0:
        return _signal._run(*args, "valid", boundary, fill, method, terms, None, stacked)
    # An edge block: rconv extends the image edge with the boundary ('full' computes every
    # window that overlaps the piece; the output chunk is a slice of it).
    full = _signal._run(*args, "full", boundary, fill, method, terms, None, stacked)
    return full[..., kh - 1 - top : kh - 1 - top + m, kw - 1 - left : kw - 1 - left + n]


def _stack(
    name: str,
    op: Op,
    x: da.Array,
    k: np.ndarray,
    axes: Axes,
    mode: Mode,
    boundary: Boundary,
) -> Tuple[da.Array, np.ndarray, Tuple[int, int]]:
    """A stacked call (``axes=``) as one with the image axes last: the moved image (broadcast
    against the kernels' batch axes), the moved kernel(s), and how to move the result back.
    The shape rules are checked in Rust, as for the in-memory call."""
    out_shape, (a, b) = _rconv.stack_geometry(x.shape, k.shape, axes, op, mode, boundary, name)
    xm = da.moveaxis(x, (a, b), (-2, -1))
    km = k if k.ndim == 2 else np.moveaxis(k, (a, b), (-2, -1))
    batch = tuple(out_shape[d] for d in range(len(out_shape)) if d not in (a, b))
    if xm.shape[:-2] != batch:
        xm = da.broadcast_to(xm, batch + xm.shape[-2:])
    return xm, km, (a, b)


#: The method of the blocks for method='auto': the engine chosen for the whole image, kept
#: direct for a block holding NaN or Inf (decided in Rust), as the in-memory 'auto' does.
_IF_FINITE: Dict[Engine, PlanMethod] = {
    "direct": "direct",
    "fft": "fft-if-finite",
    "separable": "separable-if-finite",
}


def _correlate(
    func: str,
    op: Op,
    /,
    in1: Chunked,
    in2: Chunked,
    mode: Mode = "full",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    *,
    method: Method = "auto",
    axes: Optional[Axes] = None,
) -> da.Array:
    """correlate2d (`op` 'correlate') and convolve2d ('convolve') of this module."""
    name = f"rconv.dask.{func}"
    # validated and named canonically by the in-memory functions' own parser
    mode, boundary, method = _rconv.signal_options(mode, boundary, method, name)
    x = _as_dask(name, "in1", in1)
    k = _signal._as_array(name, "in2", _computed(in2))
    if axes is None:
        for nm, ndim in (("in1", x.ndim), ("in2", k.ndim)):
            if ndim != 2:
                raise ValueError(f"{name}: {nm} must be a 2-D array, got {ndim} dimension(s)")
    _known_shape(name, "in1", x, range(x.ndim))
    _, k, dt = _signal._inputs(name, ("in1", "in2"), np.empty((0,) * x.ndim, x.dtype), k)
    moved = None
    if axes is not None:
        x, k, moved = _stack(name, op, x, k, axes, mode, boundary)
    nd = x.ndim
    fill: Union[np.ndarray, int, None]
    fill = _signal._fill_array(name, fillvalue, dt) if boundary == "fill" else None
    fill = 0 if fill is None else fill  # a 0-d array of the result dtype, or the default

    img, ker = x.shape[-2:], k.shape[-2:]
    if mode == "valid" and any(a < b for a, b in zip(img, ker)):
        raise ValueError(
            f"{name}: mode='valid' needs in1 (the chunked array) at least as large as in2 in "
            f"every dimension, got in1 {img} and in2 {ker}; for a kernel larger than "
            f"the image use rconv.{func} in memory"
        )
    plane_shape, offsets, _ = _rconv.geometry(img, ker, op, mode, name)  # never swapped
    out_shape = x.shape[:-2] + tuple(plane_shape)
    # the in-memory 'auto' plan for the whole image (the kernel's rank included); a stack of
    # kernels is separable only if each of them is
    kernels = k.reshape((-1,) + ker) if k.size else np.zeros((1,) + ker, dt)
    auto_plans = {
        _rconv.auto_plan(img, np.ascontiguousarray(kk, dt), op, mode, boundary, name)
        for kk in kernels
    }
    plan = auto_plans.pop() if len(auto_plans) == 1 else (auto_plans - {"separable"}).pop()

    def back(r):
        return r if moved is None else da.moveaxis(r, (-2, -1), moved)

    stacked = None if nd == 2 else (-2, -1)
    if x.size == 0:
        # Nothing to split (and no memory to speak of): the in-memory call gives the result,
        # or the error (an empty image cannot be extended by 'symm' or 'wrap').
        empty = np.empty(x.shape, x.dtype)
        r = _signal._run(name, op, empty, k, mode, boundary, fill, method, None, None, stacked)
        return back(da.from_array(r))
    if k.size == 0:
        # No kernel taps: every output element is an empty sum.
        return back(da.zeros(out_shape, dtype=dt, chunks=x.chunksize))
    run_method: PlanMethod = _IF_FINITE[plan] if method == "auto" else method

    in_shape = img
    axes_ = []
    pads = []
    # Output cell o reads the input window from o - lo (Corr2dParams' offsets and shape).
    for n, kn, lo, out in zip(img, ker, offsets, plane_shape):
        pads.append((lo, max(0, out - 1 - lo + kn - n)))
        axes_.append((n, kn, lo, out))
    if boundary == "wrap":
        # The periodic extension needs the opposite edge: take it before cutting blocks.
        for ax, (before, after) in enumerate(pads):
            x = _wrap_pad(x, nd - 2 + ax, before, after)
        axes_ = [(n + b + a, kn, 0, out) for (n, kn, _, out), (b, a) in zip(axes_, pads)]
        boundary = "fill"  # no window reaches past the extended array
    plans = [_Axis(n, kn, lo, out, c) for (n, kn, lo, out), c in zip(axes_, x.chunks[-2:])]
    x = x.rechunk(x.chunks[:-2] + tuple(p.chunks for p in plans))
    block = functools.partial(
        _correlate_block,
        func=name,
        op=op,
        kernel=k.astype(dt, copy=False),
        axes=plans,
        boundary=boundary,
        fill=fill,
        method=run_method,
        terms=min(int(np.prod(in_shape)), int(np.prod(ker))),
        bstarts=[np.cumsum((0,) + c[:-1]).tolist() for c in x.chunks[:-2]],
    )
    depth = {d: 0 for d in range(nd - 2)}
    depth.update({nd - 2: plans[0].depth, nd - 1: plans[1].depth})
    return back(
        da.map_overlap(
            block,
            x,
            depth=depth,
            boundary="none",
            trim=False,
            allow_rechunk=False,
            chunks=x.chunks[:-2] + tuple(p.out_chunks for p in plans),
            dtype=dt,
            meta=np.empty((0,) * nd, dt),
        )
    )


correlate2d = _named(
    _correlate,
    "correlate2d",
    "correlate",
    doc=_filled(
        """Cross-correlate a chunked 2-D Dask array with an in-memory kernel.

    The chunked :func:`rconv.correlate2d`: same arguments, same result, computed block by
    block with :func:`dask.array.map_overlap`.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
        The image, 2-D, in chunks of any shape (chunks shorter than the kernel's reach are
        joined to their neighbours).
    in2 : array_like
        The kernel, 2-D, held in memory (a Dask array is computed first).
    mode : {'full', 'valid', 'same'}, optional
        Output size, as :func:`scipy.signal.correlate2d`. 'valid' needs `in1` at least as
        large as `in2` in both dimensions (the in-memory call would swap the inputs).
    boundary : {'fill', 'symm', 'wrap'}, optional
        How the true image edges are extended (aliases 'pad', 'symmetric', 'circular').
        Block edges inside the image read their neighbours' cells.
    fillvalue : scalar, optional
        Value for ``boundary='fill'``.
    method : {'auto', 'direct', 'fft', 'separable'}, optional
        As :func:`rconv.correlate2d`; 'auto' decides once from the full shapes and the
        kernel's rank (blocks with NaN or Inf are then computed directly). 'fft' and
        'separable' agree with the in-memory call to rounding, for finite inputs.
    axes : pair of int, optional, keyword-only
        Stacks of images, as :func:`rconv.correlate2d`'s ``axes``: the chunks may split the
        batch axes as well as the image axes, and a stack of kernels (`in2` with `in1`'s
        number of dimensions) is sliced for each block.

    Returns
    -------
    out : dask.array.Array
        Lazy result with the in-memory call's shape and dtype, chunked like `in1` (the last
        chunks grow or shrink by the kernel size for 'full' and 'valid').

    Raises
    ------
    ValueError, TypeError
        As :func:`rconv.correlate2d`, raised when the graph is built; also for 'valid' with a
        kernel larger than the image.

    Examples
    --------
    [imports]
    >>> img = np.arange(48.0).reshape(6, 8)
    >>> x = da.from_array(img, chunks=(3, 4))
    >>> k = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> y = rconv.dask.correlate2d(x, k, mode="same", boundary="symm")
    >>> y.chunks
    ((3, 3), (4, 4))
    >>> np.array_equal(y.compute(), rconv.correlate2d(img, k, "same", "symm"))
    True
    """,
        "correlate2d",
        **_BATCH_DOCS,
    ),
)


convolve2d = _named(
    _correlate,
    "convolve2d",
    "convolve",
    doc=_filled(
        """Convolve a chunked 2-D Dask array with an in-memory kernel.

    The chunked :func:`rconv.convolve2d` (:func:`scipy.signal.convolve2d` semantics): same
    arguments and result as :func:`correlate2d` here, with the kernel flipped.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
        The image, 2-D, in chunks of any shape.
    in2 : array_like
        The kernel, 2-D, held in memory.
    mode : {'full', 'valid', 'same'}, optional
        Output size; 'valid' needs `in1` at least as large as `in2` in both dimensions.
    boundary : {'fill', 'symm', 'wrap'}, optional
        How the true image edges are extended (aliases 'pad', 'symmetric', 'circular').
    fillvalue : scalar, optional
        Value for ``boundary='fill'``.
    method : {'auto', 'direct', 'fft', 'separable'}, optional
        As :func:`rconv.convolve2d`.
    axes : pair of int, optional, keyword-only
        Stacks of images, as :func:`rconv.convolve2d`'s ``axes`` (chunks may split the batch
        axes too).

    Returns
    -------
    out : dask.array.Array
        Lazy result with the in-memory call's shape and dtype.

    [raises]

    Examples
    --------
    [imports]
    >>> img = np.random.default_rng(0).random((300, 200))
    >>> x = da.from_array(img, chunks=100)
    >>> y = rconv.dask.convolve2d(x, rconv.kernels.gaussian(5, 1.0), mode="full")
    >>> y.shape, y.chunks
    ((304, 204), ((100, 100, 104), (100, 104)))
    >>> np.array_equal(y.compute(), rconv.convolve2d(img, rconv.kernels.gaussian(5, 1.0)))
    True
    """,
        "convolve2d",
        **_BATCH_DOCS,
    ),
)


# --------------------------------------------------------------------------- batch axis


def _sum_in_order(parts: Sequence[np.ndarray]) -> np.ndarray:
    total = np.array(parts[0], copy=True)
    for p in parts[1:]:
        total += p
    return total


def _block(
    inner: Callable[..., Any], name: str, keys: Sequence[str], kwargs: Dict[str, Any], *arrays: Any
) -> Any:
    """The in-memory implementation `inner` on the arrays of one batch chunk (the chunks,
    then the weights), passed by name, with its errors named `name`."""
    return inner(name, **dict(zip(keys, arrays)), **kwargs)


_OPTIONAL = ("indices",)


def _batchwise(
    public: Callable[..., Any],
    params: Dict[str, Any],
    batched: Sequence[str],
    shared: Sequence[str] = (),
    reduced: Sequence[int] = (),
) -> Any:
    """Apply the in-memory function `public` (its implementation, which names the errors
    after this module's function) to every batch chunk.

    `params` are this module's function's arguments: those named in `batched` are the
    chunked arrays ("input" sets the batch chunks), those in `shared` (weights) are held in
    memory, once in the graph; the others are passed as they are. The outputs listed in
    `reduced` are summed over the batch (in chunk order), the others are concatenated along
    it. Shapes, dtypes and argument errors come from one call on a zero-length batch, when
    the graph is built.
    """
    name = f"rconv.dask.{public.__name__}"
    kwargs = {k: v for k, v in params.items() if k not in batched and k not in shared}
    if "out" in inspect.signature(public).parameters:
        kwargs["out"] = None
    arrays = []
    for n in batched:
        if params[n] is None:
            if n in _OPTIONAL:
                continue  # an omitted trailing argument (indices=None)
            raise TypeError(f"{name}: {n} must be an array, got None")
        arrays.append((n, _as_dask(name, n, params[n])))
    keys = [n for n, _ in arrays] + list(shared)
    fn = functools.partial(_block, inspect.unwrap(public), name, keys, kwargs)
    unbatched = dict(arrays)["input"].ndim == 3
    if unbatched:
        arrays = [(n, a[None]) for n, a in arrays]
    for n, a in arrays:
        if a.ndim != 4:
            raise ValueError(
                f"{name}: {n} must be a 4-D (N, C, H, W) array, or 3-D (C, H, W) like the "
                f"input, got {a.ndim - unbatched} dimension(s)"
            )
        _known_shape(name, n, a, range(1 if len(arrays) == 1 else 0, 4))
    ref = dict(arrays)["input"]
    batch = ref.shape[0]
    for n, a in arrays:
        if a is not ref and a.shape[0] != batch:
            raise ValueError(
                f"{name}: {n} has batch size {a.shape[0]}, expected {batch} (the input's)"
            )
    weights = [_computed(params[n]) for n in shared]
    empty = [np.empty((0,) + a.shape[1:], a.dtype) for _, a in arrays]
    probe = fn(*empty, *weights)  # validates every argument, errors named `name`
    single = not isinstance(probe, tuple)
    probe = (probe,) if single else probe

    def finish(out_list):
        if unbatched:
            out_list = [o if j in reduced else o[0] for j, o in enumerate(out_list)]
        return out_list[0] if single else tuple(out_list)

    if batch == 0:
        return finish([da.from_array(p) for p in probe])
    chunks0 = ref.chunks[0]
    blocks = [a.rechunk((chunks0, -1, -1, -1)) for _, a in arrays]
    # one copy of each weight in the graph, shared by the tasks
    weights = [None if w is None else dask.delayed(np.asarray(w)) for w in weights]
    if single:
        p = probe[0]
        out = da.map_blocks(
            fn,
            *blocks,
            *weights,
            chunks=(chunks0,) + tuple((s,) for s in p.shape[1:]),
            dtype=p.dtype,
            meta=np.empty((0,) * p.ndim, p.dtype),
        )
        return finish([out])
    # Several outputs: one task per chunk computes them all, the outputs are picked apart.
    delayed_blocks = [b.to_delayed().reshape(-1) for b in blocks]
    parts = [
        dask.delayed(fn, nout=len(probe), pure=True)(*(d[i] for d in delayed_blocks), *weights)
        for i in range(len(chunks0))
    ]
    outs = []
    for j, p in enumerate(probe):
        meta = np.empty((0,) * p.ndim, p.dtype)
        if j in reduced:
            total = dask.delayed(_sum_in_order, pure=True)([q[j] for q in parts])
            outs.append(da.from_delayed(total, shape=p.shape, dtype=p.dtype, meta=meta))
        else:
            outs.append(
                da.concatenate(
                    [
                        da.from_delayed(q[j], (c,) + p.shape[1:], dtype=p.dtype, meta=meta)
                        for q, c in zip(parts, chunks0)
                    ],
                    axis=0,
                )
            )
    return finish(outs)


@_doc(**_BATCH_DOCS, conv_opts=_CONV_OPTS_DOC)
def conv2d(
    input: Chunked,
    weight: Chunked,
    bias: Optional[Chunked] = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
) -> da.Array:
    """:func:`rconv.conv2d` over a batch chunked along its first axis.

    Parameters
    ----------
    input : dask.array.Array or array_like
        ``(N, C_in, H, W)``, chunked along N (other axes are joined into one chunk), or
        unbatched ``(C_in, H, W)``.
    weight : array_like
        In memory (a Dask array is computed), sent once to each worker.
    bias : array_like, optional
        As `weight`; default None (no bias).
    [conv_opts]

    Returns
    -------
    out : dask.array.Array
        ``(N, C_out, OH, OW)`` with the chunks of `input` along N.

    [raises]

    Examples
    --------
    [imports]
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((10, 3, 16, 16)).astype(np.float32)
    >>> w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    >>> y = rconv.dask.conv2d(da.from_array(x, chunks=(4, 3, 16, 16)), w, padding=1)
    >>> y.shape, y.chunks[0]
    ((10, 8, 16, 16), (4, 4, 2))
    >>> np.array_equal(y.compute(), rconv.conv2d(x, w, padding=1))
    True
    """
    return _batchwise(_nn.conv2d, locals(), ["input"], ["weight", "bias"])


@_doc(**_BATCH_DOCS, conv_opts=_CONV_OPTS_DOC)
def conv2d_backward(
    grad_output: Chunked,
    input: Chunked,
    weight: Chunked,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: PaddingMode = "zeros",
) -> Tuple[da.Array, da.Array, da.Array]:
    """:func:`rconv.conv2d_backward` over a batch chunked along its first axis.

    Parameters
    ----------
    grad_output, input : dask.array.Array or array_like
        ``(N, C_out, OH, OW)`` and ``(N, C_in, H, W)`` (or both unbatched); `grad_output`
        is rechunked to the batch chunks of `input`.
    weight : array_like
        In memory.
    [conv_opts]

    Returns
    -------
    grad_input : dask.array.Array
        Shape of `input`, chunked like it along N.
    grad_weight, grad_bias : dask.array.Array
        One chunk each: the chunks' gradients summed in chunk order (equal to the in-memory
        result up to rounding, since the batch sum is split differently).

    Raises
    ------
    ValueError, TypeError
        As :func:`rconv.conv2d_backward`, when the graph is built; also when the batch
        sizes differ.

    Examples
    --------
    >>> import dask
    [imports]
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((6, 2, 8, 8))
    >>> w = rng.standard_normal((4, 2, 3, 3))
    >>> g = np.ones((6, 4, 6, 6))
    >>> gx, gw, gb = dask.compute(*rconv.dask.conv2d_backward(
    ...     da.from_array(g, chunks=2), da.from_array(x, chunks=2), w))
    >>> rx, rw, rb = rconv.conv2d_backward(g, x, w)
    >>> np.array_equal(gx, rx), np.allclose(gw, rw, rtol=1e-12), gb
    (True, True, array([216., 216., 216., 216.]))
    """
    return _batchwise(_nn.conv2d_backward, locals(), ["grad_output", "input"], ["weight"], (1, 2))


@overload
def max_pool2d(
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
) -> da.Array: ...
@overload
def max_pool2d(
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
) -> Tuple[da.Array, da.Array]: ...
@overload
def max_pool2d(
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Union[da.Array, Tuple[da.Array, da.Array]]: ...
@_doc(**_BATCH_DOCS, max_window=_MAX_WINDOW_DOC, out=_POOLED_DOC)
def max_pool2d(
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Union[da.Array, Tuple[da.Array, da.Array]]:
    """:func:`rconv.max_pool2d` over a batch chunked along its first axis.

    Parameters
    ----------
    [input]
    [max_window]
    ceil_mode, return_indices : bool, optional
        As in :func:`rconv.max_pool2d`.

    Returns
    -------
    [out]
    indices : dask.array.Array
        With ``return_indices=True``: int64 flat indices into each ``H * W`` plane.

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import rconv.dask
    >>> x = da.arange(2 * 16.0, chunks=16).reshape(2, 1, 4, 4)
    >>> rconv.dask.max_pool2d(x, 2).compute()[:, 0]
    array([[[ 5.,  7.],
            [13., 15.]],
    <BLANKLINE>
           [[21., 23.],
            [29., 31.]]])
    """
    return _batchwise(_nn.max_pool2d, locals(), ["input"])


@_doc(**_BATCH_DOCS, max_window=_MAX_WINDOW_DOC)
def max_pool2d_backward(
    grad_output: Chunked,
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    indices: Optional[Chunked] = None,
) -> da.Array:
    """:func:`rconv.max_pool2d_backward` over a batch chunked along its first axis.

    Parameters
    ----------
    [grads]
    [max_window]
    ceil_mode : bool, optional
        As in :func:`rconv.max_pool2d`.
    indices : dask.array.Array or array_like, optional
        The forward call's indices: the gradient is scattered through them instead of
        recomputing the argmax.

    Returns
    -------
    [grad_input]

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import rconv.dask
    >>> x = da.arange(2 * 16.0, chunks=16).reshape(2, 1, 4, 4)
    >>> g = rconv.dask.max_pool2d_backward(da.ones((2, 1, 2, 2)), x, 2)
    >>> g.compute()[1, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    return _batchwise(_nn.max_pool2d_backward, locals(), ["grad_output", "input", "indices"])


@_doc(**_BATCH_DOCS, avg_opts=_AVG_OPTS_DOC, out=_POOLED_DOC)
def avg_pool2d(
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> da.Array:
    """:func:`rconv.avg_pool2d` over a batch chunked along its first axis.

    Parameters
    ----------
    [input]
    [avg_opts]

    Returns
    -------
    [out]

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import rconv.dask
    >>> x = da.arange(2 * 16.0, chunks=16).reshape(2, 1, 4, 4)
    >>> rconv.dask.avg_pool2d(x, 2).compute()[1, 0]
    array([[18.5, 20.5],
           [26.5, 28.5]])
    """
    return _batchwise(_nn.avg_pool2d, locals(), ["input"])


@_doc(**_BATCH_DOCS, avg_opts=_AVG_OPTS_DOC)
def avg_pool2d_backward(
    grad_output: Chunked,
    input: Chunked,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> da.Array:
    """:func:`rconv.avg_pool2d_backward` over a batch chunked along its first axis.

    Parameters
    ----------
    [grads]
    [avg_opts]

    Returns
    -------
    [grad_input]

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import rconv.dask
    >>> x = da.zeros((4, 1, 4, 4), chunks=2)
    >>> rconv.dask.avg_pool2d_backward(da.ones((4, 1, 2, 2)), x, 2).compute()[3, 0]
    array([[0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25],
           [0.25, 0.25, 0.25, 0.25]])
    """
    return _batchwise(_nn.avg_pool2d_backward, locals(), ["grad_output", "input"])


@_doc(**_BATCH_DOCS, out=_ADAPTIVE_POOLED_DOC)
def adaptive_avg_pool2d(input: Chunked, output_size: OutputSize) -> da.Array:
    """:func:`rconv.adaptive_avg_pool2d` over a batch chunked along its first axis.

    Parameters
    ----------
    [input]
    output_size : int or (int or None, int or None)
        As :func:`rconv.adaptive_avg_pool2d`.

    Returns
    -------
    [out]

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import rconv.dask
    >>> x = da.arange(2 * 16.0, chunks=16).reshape(2, 1, 4, 4)
    >>> rconv.dask.adaptive_avg_pool2d(x, 1).compute().ravel()
    array([ 7.5, 23.5])
    """
    return _batchwise(_nn.adaptive_avg_pool2d, locals(), ["input"])


@overload
def adaptive_max_pool2d(
    input: Chunked, output_size: OutputSize, return_indices: Literal[False] = False
) -> da.Array: ...
@overload
def adaptive_max_pool2d(
    input: Chunked, output_size: OutputSize, return_indices: Literal[True]
) -> Tuple[da.Array, da.Array]: ...
@overload
def adaptive_max_pool2d(
    input: Chunked, output_size: OutputSize, return_indices: bool = False
) -> Union[da.Array, Tuple[da.Array, da.Array]]: ...
@_doc(**_BATCH_DOCS, out=_ADAPTIVE_POOLED_DOC)
def adaptive_max_pool2d(
    input: Chunked, output_size: OutputSize, return_indices: bool = False
) -> Union[da.Array, Tuple[da.Array, da.Array]]:
    """:func:`rconv.adaptive_max_pool2d` over a batch chunked along its first axis.

    Parameters
    ----------
    [input]
    output_size : int or (int or None, int or None)
        As :func:`rconv.adaptive_max_pool2d`.
    return_indices : bool, optional
        Also return the int64 flat indices of the maxima.

    Returns
    -------
    [out]
    indices : dask.array.Array
        With ``return_indices=True``.

    [raises]

    Examples
    --------
    >>> import dask.array as da
    >>> import rconv.dask
    >>> x = da.arange(2 * 16.0, chunks=16).reshape(2, 1, 4, 4)
    >>> out, idx = rconv.dask.adaptive_max_pool2d(x, 1, return_indices=True)
    >>> out.compute().ravel(), idx.compute().ravel()
    (array([15., 31.]), array([15, 15]))
    """
    return _batchwise(_nn.adaptive_max_pool2d, locals(), ["input"])


# the ndimage filters on chunked arrays (a submodule: rconv.dask.ndimage)
from . import ndimage as ndimage  # noqa: E402
