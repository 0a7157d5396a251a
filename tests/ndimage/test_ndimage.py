"""rconv.ndimage against scipy.ndimage: byte equality (any NaN matches any NaN) across
functions, dtypes (both byte orders), modes, origins, ranks, axes, strides and sizes; the
errors scipy raises (class and text), its warnings; in-place and overlapping outputs; the
float-to-integer casts of scipy's x86-64 build; thread counts and SIMD levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as sn
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rconv
import rconv.ndimage as rn

NAMES = list(rn.__all__)
MODES = [
    "reflect",
    "mirror",
    "nearest",
    "wrap",
    "constant",
    "grid-mirror",
    "grid-wrap",
    "grid-constant",
]
REAL = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float32,
    np.float64,
]
COMPLEX = [np.complex64, np.complex128]


def same(a, b) -> bool:
    """Same shape, dtype and bytes; NaN matches NaN wherever both have one."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "c":
        return same(a.real.copy(), b.real.copy()) and same(a.imag.copy(), b.imag.copy())
    if a.dtype.kind == "f":
        na, nb = np.isnan(a), np.isnan(b)
        if not np.array_equal(na, nb):
            return False
        a, b = np.where(na, 0, a), np.where(nb, 0, b)
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def both(name, *args, **kwargs):
    """(scipy's result or exception, rconv's), on copies of every array argument."""

    def run(mod):
        a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        k = {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in kwargs.items()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return getattr(mod, name)(*a, **k)
        except Exception as e:  # compared below
            return e

    return run(sn), run(rn)


def check(name, *args, **kwargs):
    want, got = both(name, *args, **kwargs)
    if isinstance(want, Exception):
        assert isinstance(got, Exception), f"scipy raised {want!r}, rconv returned"
        assert type(got) is type(want), (got, want)
        assert str(want) in str(got), (got, want)
        assert str(got).startswith(f"ndimage.{name}: ")
        return
    assert not isinstance(got, Exception), f"rconv raised {got!r}; scipy returned"
    assert same(want, got), f"{name}: {want!r}\n!=\n{got!r}"


# --- data ------------------------------------------------------------------------------------


@st.composite
def arrays(draw, max_rank=3, max_side=9, dtypes=REAL + COMPLEX):
    """Arrays of any listed dtype (either byte order), rank 0..max_rank, sides 0..max_side
    (mostly nonempty), as views with steps, reversals and transposes (any strides)."""
    dt = np.dtype(draw(st.sampled_from(dtypes)))
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=rank, max_size=rank)))
    if rank and draw(st.integers(0, 9)) == 0:
        shape = shape[:-1] + (0,)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = [draw(st.sampled_from([1, 1, 2, -1])) for _ in shape]
    base_shape = tuple(s * abs(k) for s, k in zip(shape, steps))
    if dt.kind == "b":
        base = rng.integers(0, 2, base_shape).astype(dt)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(info.min, -100), min(info.max, 100)
        base = rng.integers(lo, hi, base_shape, endpoint=True).astype(dt)
    else:
        base = (rng.standard_normal(base_shape) * 10).astype(dt)
        if dt.kind == "c":
            base = base + 1j * rng.standard_normal(base_shape).astype(dt)
        special = draw(st.sampled_from([None, None, None, np.nan, np.inf, -np.inf, -0.0]))
        if special is not None and base.size:
            base.flat[rng.integers(0, base.size)] = special
    if draw(st.booleans()) and dt.itemsize > 1:
        base = base.astype(dt.newbyteorder())
    x = base[tuple(slice(None, None, k) for k in steps)]
    if rank >= 2 and draw(st.booleans()):
        x = x.T
    return x


def weights_for(draw, n, kind=None):
    """A 1-D kernel of `n` taps: symmetric, antisymmetric, with zeros, or general."""
    kind = kind or draw(st.sampled_from(["sym", "anti", "general", "zeros", "int"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.standard_normal(n)
    if kind == "sym":
        w = (w + w[::-1]) / 2
    elif kind == "anti":
        w = (w - w[::-1]) / 2
    elif kind == "zeros":
        w[rng.random(n) < 0.5] = 0.0
    elif kind == "int":
        w = rng.integers(-3, 4, n).astype(float)
    return w


def out_dtype_for(draw, x):
    """None (the input's dtype), or an output dtype whose results stay in range (the casts
    of out-of-range values are C's undefined behaviour: tested in a table of their own)."""
    choice = draw(st.sampled_from([None, None, np.float64, np.float32, np.int32, np.int16]))
    if x.dtype.kind == "c" and choice is not None:
        return None
    return choice


def in_range(name, x, args, kwargs, out_dtype) -> bool:
    """Whether scipy's float64 result (and each float64 pass) fits `out_dtype`, or the
    input's dtype: integer outputs of integer inputs only (no undefined casts)."""
    dt = np.dtype(out_dtype) if out_dtype is not None else x.dtype
    if dt.kind not in "iub":
        return True
    if x.dtype.kind in "c":
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = getattr(sn, name)(x.astype(np.float64), *args, **{**kwargs, "output": np.float64})
    except Exception:
        return True
    if dt.kind == "b":
        return bool(np.all((r >= 0) & (r < 256)))
    info = np.iinfo(dt)
    lo = 0 if dt.kind == "u" else info.min
    return bool(np.all(np.isfinite(r)) and np.all(r >= lo) and np.all(r <= info.max))


# --- byte equality -----------------------------------------------------------------------------


@given(data=st.data())
def test_1d_filters_equal_scipys(data):
    x = data.draw(arrays())
    assume(x.ndim >= 1)
    name = data.draw(
        st.sampled_from(["correlate1d", "convolve1d", "uniform_filter1d", "gaussian_filter1d"])
    )
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    mode = data.draw(st.sampled_from(MODES))
    cval = data.draw(st.sampled_from([0.0, 1.5, -7.0]))
    kwargs = dict(axis=axis, mode=mode, cval=cval)
    if name in ("correlate1d", "convolve1d"):
        n = data.draw(st.integers(1, 12))
        args = (weights_for(data.draw, n),)
        kwargs["origin"] = data.draw(st.integers(-(n // 2), (n - 1) // 2))
    elif name == "uniform_filter1d":
        n = data.draw(st.integers(1, 12))
        args = (n,)
        kwargs["origin"] = data.draw(st.integers(-(n // 2), (n - 1) // 2))
    else:
        args = (data.draw(st.sampled_from([0.5, 1.0, 1.7, 3.0])),)
        kwargs["order"] = data.draw(st.integers(0, 3))
        kwargs["truncate"] = data.draw(st.sampled_from([4.0, 2.0, 10.0]))
    out = out_dtype_for(data.draw, x)
    assume(in_range(name, x, args, kwargs, out))
    check(name, x, *args, output=out, **kwargs)


@given(data=st.data())
def test_correlate_and_convolve_equal_scipys(data):
    x = data.draw(arrays())
    name = data.draw(st.sampled_from(["correlate", "convolve"]))
    # a kernel of the input's rank, sides 1..5 (kernels larger than small arrays too)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kshape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=x.ndim, max_size=x.ndim)))
    w = rng.standard_normal(kshape)
    if data.draw(st.booleans()):
        w[rng.random(kshape) < 0.4] = 0.0
    if data.draw(st.booleans()):
        w = np.round(w * 2)
    mode = data.draw(st.sampled_from(MODES))
    origin = [data.draw(st.integers(-(k // 2), (k - 1) // 2)) for k in kshape]
    cval = data.draw(st.sampled_from([0.0, 2.5]))
    # scipy reads before an axis for 'reflect' positions -4n, -6n, ... (see the exclusion)
    if mode in ("reflect", "grid-mirror"):
        assume(all(k // 2 + o < 4 * n for k, o, n in zip(kshape, origin, x.shape) if n > 1))
    out = out_dtype_for(data.draw, x)
    kwargs = dict(mode=mode, cval=cval, origin=origin)
    assume(in_range(name, x, (w,), kwargs, out))
    check(name, x, w, output=out, **kwargs)


@given(data=st.data())
def test_multi_axis_filters_equal_scipys(data):
    x = data.draw(arrays(max_side=12))
    name = data.draw(
        st.sampled_from(
            [
                "gaussian_filter",
                "uniform_filter",
                "sobel",
                "prewitt",
                "laplace",
                "gaussian_laplace",
                "gaussian_gradient_magnitude",
            ]
        )
    )
    mode = data.draw(st.sampled_from(MODES))
    kwargs: dict = dict(mode=mode, cval=data.draw(st.sampled_from([0.0, 3.0])))
    args: tuple = ()
    if name in ("sobel", "prewitt"):
        assume(x.ndim >= 1)
        kwargs["axis"] = data.draw(st.integers(-x.ndim, x.ndim - 1))
        if x.ndim and data.draw(st.booleans()):
            kwargs["mode"] = [data.draw(st.sampled_from(MODES)) for _ in range(x.ndim)]
    else:
        axes = None
        if x.ndim and data.draw(st.booleans()):
            axes = tuple(
                data.draw(st.permutations(range(x.ndim)))[: data.draw(st.integers(1, x.ndim))]
            )
            kwargs["axes"] = axes
        n_axes = x.ndim if axes is None else len(axes)
        if name in ("gaussian_filter", "gaussian_laplace", "gaussian_gradient_magnitude"):
            sig = [data.draw(st.sampled_from([0.0, 0.6, 1.0, 2.2])) for _ in range(n_axes)]
            args = (
                sig
                if n_axes and data.draw(st.booleans())
                else data.draw(st.sampled_from([0.8, 1.5])),
            )
            if name == "gaussian_filter" and n_axes:
                kwargs["order"] = [data.draw(st.integers(0, 2)) for _ in range(n_axes)]
        if name == "uniform_filter":
            args = ([data.draw(st.integers(1, 6)) for _ in range(n_axes)],)
        if (
            n_axes
            and name in ("gaussian_filter", "uniform_filter", "laplace")
            and data.draw(st.booleans())
        ):
            kwargs["mode"] = [data.draw(st.sampled_from(MODES)) for _ in range(n_axes)]
    out = out_dtype_for(data.draw, x)
    assume(in_range(name, x, args, kwargs, out))
    check(name, x, *args, output=out, **kwargs)


@pytest.mark.parametrize("dtype", REAL + COMPLEX)
@pytest.mark.parametrize("name", NAMES)
def test_every_filter_and_dtype_on_an_image(name, dtype):
    """Each filter at default options on a 2-D image of each dtype (a bigger case than the
    property tests: full vector blocks and tails, several tasks)."""
    rng = np.random.default_rng(7)
    x = (rng.random((45, 70)) * 40).astype(dtype)
    args = {
        "correlate1d": ([0.5, 1.0, -0.25],),
        "convolve1d": ([0.5, 1.0, -0.25, 2.0],),
        "correlate": (rng.standard_normal((3, 4)),),
        "convolve": (rng.standard_normal((5, 2)),),
        "gaussian_filter": (1.5,),
        "gaussian_filter1d": (2.5,),
        "uniform_filter": (4,),
        "uniform_filter1d": (5,),
        "gaussian_laplace": (1.2,),
        "gaussian_gradient_magnitude": (1.2,),
    }.get(name, ())
    if dtype in (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64) and name not in (
        "gaussian_filter",
        "gaussian_filter1d",
        "uniform_filter",
        "uniform_filter1d",
        "gaussian_gradient_magnitude",
    ):
        x = x.astype(np.float64)  # negative results would be undefined casts
    check(name, x, *args)


# --- scipy's rules on the way in and out ---------------------------------------------------


def test_uniform_filter_nan_poisons_the_rest_of_its_line():
    x = np.arange(12.0).reshape(2, 6)
    x[0, 1] = np.nan
    check("uniform_filter1d", x, 3)
    assert np.isnan(rn.uniform_filter1d(x, 3)[0, 1:]).all()


@pytest.mark.parametrize(
    "call",
    [
        ("correlate1d", (np.ones((3, 4)), []), {}),
        ("correlate1d", (np.ones((3, 4)), [1, 2, 3]), {"origin": 2}),
        ("correlate1d", (np.ones((3, 4)), [1, 2]), {"axis": 2}),
        ("correlate1d", (np.ones((3, 4)), [1, 2]), {"mode": "bogus"}),
        ("correlate1d", (np.ones(3, np.float16), [1.0]), {}),
        ("correlate1d", (np.ones(3), [1.0]), {"output": np.float16}),
        ("correlate1d", (np.ones(3, np.longdouble), [1.0]), {}),
        ("correlate1d", (np.ones(3), [1.0]), {"output": np.zeros(4)}),
        ("correlate1d", (np.ones(3), [1.0]), {"output": "U3"}),
        ("correlate1d", (np.ones(3), [1.0]), {"cval": 1j}),
        ("correlate", (np.ones((3, 4)), np.ones(3)), {}),
        ("correlate", (np.ones((3, 4)), np.ones((3, 3))), {"origin": 2}),
        ("correlate", (np.ones((3, 4)), np.ones((3, 3))), {"mode": ["reflect", "wrap"]}),
        ("correlate", (np.ones((3, 4), np.float16), np.ones((3, 3))), {}),
        ("correlate", (np.ones((3, 4)).astype(object), np.ones((3, 3))), {}),
        ("convolve", (np.ones((3, 4)), np.ones((2, 2))), {"origin": (0, 1)}),
        ("uniform_filter1d", (np.ones(5), 0), {}),
        ("uniform_filter1d", (np.ones(5), 3), {"origin": 2}),
        ("uniform_filter", (np.ones((5, 5)), [3, 3, 3]), {}),
        ("uniform_filter", (np.ones((5, 5)), 3), {"axes": (0, 0)}),
        ("uniform_filter", (np.ones((5, 5)), 3), {"axes": (0, 5)}),
        ("gaussian_filter", (np.ones((5, 5)), np.inf), {}),
        ("gaussian_filter", (np.ones((5, 5)), 1), {"order": -1}),
        ("gaussian_filter", (np.ones((5, 5)), 1), {"radius": -2}),
        ("gaussian_filter1d", (np.ones(5), np.nan), {}),
        ("gaussian_filter1d", (np.ones(5), 1), {"radius": 1.5}),
        ("sobel", (np.float64(3.0),), {}),
        ("prewitt", (np.ones((3, 3)),), {"axis": -3}),
        ("laplace", (np.ones((3, 3)),), {"mode": ["reflect"]}),
        ("gaussian_laplace", (np.ones((3, 3)), [1, 2, 3]), {}),
        ("gaussian_gradient_magnitude", (np.ones((3, 3)), 1), {"truncate": "x"}),
    ],
    ids=lambda c: f"{c[0]}-{sorted(c[2])}",
)
def test_errors_are_scipys(call):
    name, args, kwargs = call
    want, got = both(name, *args, **kwargs)
    assert isinstance(want, Exception), "the case must make scipy raise"
    check(name, *args, **kwargs)


def test_read_only_output_raises_and_nothing_is_written():
    x = np.arange(12.0).reshape(3, 4)
    o = np.zeros((3, 4))
    o.setflags(write=False)
    for name, args in [
        ("correlate1d", ([1.0, 2.0],)),
        ("correlate", (np.ones((2, 2)),)),
        ("uniform_filter", (3,)),
    ]:
        with pytest.raises(ValueError, match=f"ndimage.{name}: output array is read-only"):
            getattr(rn, name)(x, *args, output=o)
    assert not o.any()


def test_a_failed_check_writes_nothing():
    x = np.arange(12.0).reshape(3, 4)
    o = np.full((3, 4), 7.0)
    with pytest.raises(RuntimeError):
        rn.uniform_filter(x, [3, 3, 3], output=o)
    with pytest.raises(ValueError):
        rn.correlate1d(x, [1, 2, 3], output=o, origin=5)
    assert (o == 7).all()


def test_warnings_are_scipys():
    x = np.ones((4, 4), np.complex64)
    with pytest.warns(UserWarning, match="promoting specified output dtype to complex"):
        r = rn.correlate(x, np.ones((2, 2)), output=np.float32)
    check("correlate", x, np.ones((2, 2)), output=np.float32)
    assert r.dtype == np.complex64


def test_inputs_are_never_modified():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 30))
    keep = x.copy()
    for name in NAMES:
        arg = {
            "correlate": (np.ones((3, 3)),),
            "convolve": (np.ones((3, 3)),),
            "correlate1d": ([1, 2],),
            "convolve1d": ([1, 2],),
        }.get(name, (2,) if "uniform" in name else (1.0,) if "gauss" in name else ())
        getattr(rn, name)(x, *arg)
        assert np.array_equal(x, keep), name


@pytest.mark.parametrize(
    "name",
    [
        "gaussian_filter",
        "uniform_filter",
        "sobel",
        "laplace",
        "correlate",
        "correlate1d",
        "uniform_filter1d",
    ],
)
def test_in_place_output_equals_scipys(name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((33, 41))
    arg = {
        "gaussian_filter": (1.3,),
        "uniform_filter": (4,),
        "correlate": (rng.standard_normal((3, 4)),),
        "correlate1d": ([1.0, -2.0, 0.5],),
        "uniform_filter1d": (5,),
    }.get(name, ())
    for axis in (0, 1) if name.endswith("1d") else (None,):
        kw = {} if axis is None else {"axis": axis}
        a, b = x.copy(), x.copy()
        ra = getattr(sn, name)(a, *arg, output=a, **kw)
        rb = getattr(rn, name)(b, *arg, output=b, **kw)
        assert rb is b and same(ra, rb)


@pytest.mark.parametrize("shift", [1, 7, -3])
def test_partly_overlapping_output_is_computed_as_from_a_copy(shift):
    rng = np.random.default_rng(6)
    buf = rng.standard_normal(200)
    for name, arg in [
        ("correlate1d", ([1.0, 2.0, -1.0],)),
        ("uniform_filter1d", (4,)),
        ("gaussian_filter", (2.0,)),
        ("correlate", (np.array([1.0, 3.0]),)),
    ]:
        b = buf.copy()
        inp = b[50:150]
        out = b[50 + shift : 150 + shift]
        want = getattr(sn, name)(inp.copy(), *arg)
        getattr(rn, name)(inp, *arg, output=out)
        assert same(out, want), (name, shift)


def test_output_array_of_another_dtype_and_order():
    x = np.random.default_rng(8).random((16, 24)) * 100
    for out in [
        np.zeros((16, 24), np.float32),
        np.zeros((16, 24), ">f8"),
        np.zeros((24, 16), np.int32).T,
        np.zeros((16, 24), "<i2"),
    ]:
        a, b = out.copy(), out.copy()
        sn.gaussian_filter(x, 1.5, output=a)
        r = rn.gaussian_filter(x, 1.5, output=b)
        assert r is b and same(a, b)


def test_empty_and_zero_d_arrays():
    for x in [
        np.zeros((0, 3)),
        np.zeros((3, 0, 2), np.float32),
        np.array(2.5),
        np.zeros(0, np.uint8),
    ]:
        for name in [
            "gaussian_filter",
            "uniform_filter",
            "laplace",
            "gaussian_laplace",
            "gaussian_gradient_magnitude",
        ]:
            arg = (1.0,) if "gauss" in name else ()
            check(name, x, *arg)
        check("correlate", x, np.ones((2,) * x.ndim))


def test_huge_kernels_and_sigmas():
    x = np.random.default_rng(9).random((6, 5))
    check("gaussian_filter", x, 40.0)
    check("correlate1d", x, np.arange(41.0), mode="mirror")
    check("uniform_filter1d", x, 30, mode="wrap")
    check("correlate", x, np.ones((9, 11)), mode="mirror")
    check("gaussian_filter", x, [0.0, np.nan])


# --- C's float-to-integer casts, as scipy's x86-64 build executes them --------------------------

CAST_VALUES = np.array(
    [
        -2.6,
        300.7,
        5e9 + 7,
        np.nan,
        np.inf,
        -np.inf,
        -5e9,
        1.9e19,
        3e19,
        -1e19,
        2.7,
        4294967296.5,
        -0.7,
        255.9,
        127.6,
        -129.2,
    ]
)


@pytest.mark.parametrize(
    "dtype",
    [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64],
)
@pytest.mark.parametrize("name", ["correlate1d", "correlate", "uniform_filter1d"])
def test_undefined_casts_follow_scipys_x86_64_build(name, dtype):
    """Out-of-range, NaN and infinite results: undefined in C, scipy's wheels give
    cvttsd2si's truncation and integer-indefinite pattern (uint8 [-2.6, 300.7, 5e9+7, nan]
    -> [254, 44, 0, 0]); the n-D correlation's uint64 route differs from the 1-D ones."""
    arg = 1 if name == "uniform_filter1d" else [1.0]
    check(name, CAST_VALUES, arg, output=dtype)
    if name == "correlate1d" and dtype == np.uint8:
        assert list(rn.correlate1d(CAST_VALUES[:4], [1.0], output=np.uint8)) == [254, 44, 0, 0]


# --- threads and SIMD levels ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gaussian_filter", "uniform_filter", "correlate", "sobel"])
def test_same_bytes_at_every_thread_count_and_simd_level(name):
    x = np.random.default_rng(10).standard_normal((130, 301)).astype(np.float32)
    arg = {
        "gaussian_filter": (2.0,),
        "uniform_filter": (5,),
        "correlate": (np.random.default_rng(1).standard_normal((5, 5)),),
    }.get(name, ())
    want = getattr(sn, name)(x, *arg)
    _, cpu, _ = rconv._rconv.simd_info()
    levels = ["generic", "avx2", "avx512"]
    levels = levels[: levels.index(cpu) + 1]
    old = rconv.get_num_threads()
    try:
        for level in levels:
            rconv._rconv._set_simd_level(level)
            for threads in (1, 2, 3):
                rconv.set_num_threads(threads)
                assert same(getattr(rn, name)(x, *arg), want), (level, threads)
    finally:
        rconv._rconv._set_simd_level(None)
        rconv.set_num_threads(old)


# --- what scipy's C code gets wrong, and rconv does not copy --------------------------------------


def test_reflect_far_past_a_short_axis_reads_inside_the_array():
    """scipy's NI_InitFilterOffsets maps 'reflect' positions -4n, -6n, ... of an axis of n
    elements to index -1, before the axis: its result there depends on memory outside the
    array. rconv reads index 0, as the reflection's period says; the 1-D passes (whose
    NI_ExtendLine has no such case) agree with it."""
    x = np.array([[1.0, 2.0]])
    w = np.zeros((1, 17))
    w[0, 0] = 1.0  # the tap at position -8 = -4n of the second axis
    got = rn.correlate(x, w, mode="reflect")
    assert np.array_equal(got, rn.correlate1d(x, w[0], mode="reflect"))
    assert np.array_equal(got, [[1.0, 2.0]])


def test_broadcast_scalar_input_is_filtered_as_its_values():
    """scipy's border flag is max(shape) * max(|stride|) + 1: 1 for an array whose strides
    are all zero, so scipy takes coordinate 1 for 'outside' and uses cval there. rconv
    filters the values (a copy of the array gives scipy's result too)."""
    x = np.broadcast_to(np.float64(2.0), (4, 4))
    w = np.ones((3, 3))
    assert same(rn.correlate(x, w), sn.correlate(x.copy(), w))


@settings(max_examples=20)
@given(st.integers(1, 6), st.integers(1, 40), st.sampled_from(MODES))
def test_long_kernels_on_short_lines(n, k, mode):
    x = np.arange(1.0, n + 1.0)
    w = np.random.default_rng(k).standard_normal(k)
    check("correlate1d", x, w, mode=mode)
    check("uniform_filter1d", x, k, mode=mode)
    if mode not in ("reflect", "grid-mirror") or k // 2 < 4 * n or n == 1:
        check("correlate", x, w, mode=mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("mode", ["reflect", "wrap", "constant"])
def test_large_images_in_many_chunks(dtype, mode):
    """Images long enough that the passes stream many chunks through their buffers (and
    reuse the buffers' tops), in several tasks, in place and not, fused and not."""
    rng = np.random.default_rng(11)
    x = (rng.random((1100, 300)) * 200).astype(dtype)
    xt = np.ascontiguousarray(x.T)
    for name, args in [
        ("gaussian_filter", (2.0,)),
        ("uniform_filter", (5,)),
        ("sobel", ()),
        ("gaussian_laplace", (1.5,)),
        ("correlate", (rng.standard_normal((5, 5)),)),
        ("correlate1d", (rng.standard_normal(6),)),
        ("uniform_filter1d", (7,)),
    ]:
        if dtype == np.uint8 and name in ("sobel", "gaussian_laplace", "correlate", "correlate1d"):
            continue  # negative results: undefined casts
        for a in (x, xt):
            for axis in (0, 1) if name.endswith("1d") else (None,):
                kw = {"mode": mode} if axis is None else {"mode": mode, "axis": axis}
                check(name, a, *args, **kw)
                # in place (scipy's own aliasing included: gaussian_laplace reads its input
                # after its first term overwrote it)
                want = a.copy()
                getattr(sn, name)(want, *args, output=want, **kw)
                b = a.copy()
                getattr(rn, name)(b, *args, output=b, **kw)
                assert same(b, want), (name, axis, "in place")
