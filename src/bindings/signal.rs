//! Bindings of the scipy.signal functions: correlate2d, convolve2d, corr2d (one entry point),
//! the 'auto' method choice, and the geometry `rconv.dask` plans its chunks with.

use numpy::{Element, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::args::{self, Method, SignalArgs};
use super::dtype::DType;
use super::{checked_out, new_array, readonly, untyped};
use crate::base::error::ConvError;
use crate::base::scalar::Elem;
use crate::base::threads;
use crate::dispatch;
use crate::signal::engine::{self, Engine, Job, SignalElem};
use crate::signal::params::{Boundary, Corr2dParams, Op};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(correlate2d, m)?)?;
    m.add_function(wrap_pyfunction!(choose_method, m)?)?;
    m.add_function(wrap_pyfunction!(geometry, m)?)?;
    m.add_function(wrap_pyfunction!(signal_options, m)?)?;
    m.add_function(wrap_pyfunction!(prefers_fft, m)?)?;
    Ok(())
}

/// The names of the two inputs in messages: scipy's `in1`/`in2`, d2l's `x`/`k`.
fn names(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::Corr2d => ("x", "k"),
        _ => ("in1", "in2"),
    }
}

/// The dtype of the inputs (their common type), or a `TypeError` naming the function.
fn supported(
    f: &str,
    (n1, n2): (&str, &str),
    d: &Bound<'_, numpy::PyArrayDescr>,
) -> Result<DType, ConvError> {
    DType::from_descr(d).ok_or_else(|| {
        ConvError::type_(
            f,
            format!(
                "unsupported dtype {d} (the common type of {n1} and {n2}); supported dtypes \
                 are {}",
                super::dtype::SUPPORTED
            ),
        )
    })
}

/// The inputs' dtype and validated parameters (the Python layer gave both inputs one dtype).
fn validate(
    args: &SignalArgs,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
) -> Result<(DType, Corr2dParams), ConvError> {
    let f = args.func.as_str();
    let (n1, n2) = names(args.op);
    let a1 = untyped(f, n1, in1)?;
    let a2 = untyped(f, n2, in2)?;
    for (name, a) in [(n1, a1), (n2, a2)] {
        if a.ndim() != 2 {
            return Err(ConvError::value(
                f,
                format!("{name} must be a 2-D array, got {} dimension(s)", a.ndim()),
            ));
        }
    }
    let dt = supported(f, (n1, n2), &a1.dtype())?;
    if DType::from_descr(&a2.dtype()) != Some(dt) {
        return Err(ConvError::internal(
            f,
            format!("{n1} and {n2} must share one dtype"),
        ));
    }
    let s = |a: &Bound<'_, numpy::PyUntypedArray>| (a.shape()[0], a.shape()[1]);
    let p = Corr2dParams::new(f, s(a1), s(a2), args.mode, args.boundary, args.op)?;
    Ok((dt, p))
}

/// 2-D correlation behind `correlate2d`, `convolve2d` and `corr2d`.
///
/// `in1`, `in2`: 2-D arrays of one dtype; `fill`: None (zero) or a 0-d array of that dtype;
/// `opts`: `(func, op, mode, boundary, method, fft_terms)` (see [`SignalArgs`]).
/// `out`: the caller's destination (checked as [`checked_out`]), or None for a new array.
#[pyfunction]
#[pyo3(signature = (in1, in2, fill, opts, out=None))]
fn correlate2d<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fill: Option<&Bound<'py, PyAny>>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = SignalArgs::parse(opts)?;
    let (dt, p) = validate(&args, in1, in2)?;
    dispatch!(all: dt, T => run::<T>(py, [in1, in2], fill, &p, &args, out))
}

fn run<'py, T: SignalElem + Element>(
    py: Python<'py>,
    [in1, in2]: [&Bound<'py, PyAny>; 2],
    fill: Option<&Bound<'py, PyAny>>,
    p: &Corr2dParams,
    args: &SignalArgs,
    dest: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = args.func.as_str();
    let (n1, n2) = names(args.op);
    let (image, kernel) = if p.swapped {
        (readonly::<T, 2>(f, n2, in2)?, readonly::<T, 2>(f, n1, in1)?)
    } else {
        (readonly::<T, 2>(f, n1, in1)?, readonly::<T, 2>(f, n2, in2)?)
    };
    let fill = match fill {
        Some(ob) if p.boundary == Boundary::Fill => {
            readonly::<T, 0>(f, "fillvalue", ob)?.as_array()[()]
        }
        _ => T::ZERO,
    };
    let (oh, ow) = p.out_shape();
    let out = match dest {
        None => new_array::<T, 2>(py, f, [oh, ow], true)?,
        Some(o) => checked_out::<T, 2>(f, "out", o, [oh, ow], &[in1, in2])?,
    };
    {
        let mut rw = out
            .try_readwrite()
            .map_err(|_| ConvError::value(f, "out is in use elsewhere"))?;
        // no zeroing pass for a caller's `out`: both engines write every output element
        let work = oh * ow * p.kernel.0 * p.kernel.1;
        let job = Job {
            func: f,
            image: image.as_array(),
            kernel: kernel.as_array(),
            params: p,
            fill,
            threads: threads::for_work(work),
            fft_terms: args.fft_terms,
        };
        let out_view = rw.as_array_mut();
        let method = args.method;
        py.detach(|| {
            let eng = match method {
                Method::Direct => Engine::Direct,
                Method::Fft => Engine::Fft,
                Method::Auto => engine::choose(&job),
                Method::FftIfFinite => engine::fft_if_finite(&job),
            };
            engine::run(eng, &job, out_view)
        })?;
    }
    Ok(out.into_any())
}

/// The engine `method='auto'` picks for these inputs: `"direct"` or `"fft"`.
#[pyfunction]
fn choose_method<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
) -> PyResult<&'static str> {
    let args = SignalArgs::parse(opts)?;
    let (dt, p) = validate(&args, in1, in2)?;
    let f = args.func.as_str();
    let name = |e: Engine| match e {
        Engine::Direct => "direct",
        Engine::Fft => "fft",
    };
    dispatch!(all: dt, T => {
        let (a, b) = (readonly::<T, 2>(f, "in1", in1)?, readonly::<T, 2>(f, "in2", in2)?);
        let (image, kernel) = if p.swapped { (b, a) } else { (a, b) };
        let (oh, ow) = p.out_shape();
        let job = Job {
            func: f,
            image: image.as_array(),
            kernel: kernel.as_array(),
            params: &p,
            fill: T::ZERO,
            threads: threads::for_work(oh * ow * p.kernel.0 * p.kernel.1),
            fft_terms: None,
        };
        Ok(name(py.detach(|| engine::choose(&job))))
    })
}

type Pair = (usize, usize);

/// Geometry of one correlation: `(output shape, (top, left), swapped)`. Output `(i, j)` reads
/// the window of input rows from `i - top` and columns from `j - left` (before any boundary
/// extension); `swapped` is scipy's 'valid'-mode exchange of the inputs.
#[pyfunction]
#[pyo3(signature = (in1_shape, in2_shape, mode, op, func))]
fn geometry(
    in1_shape: &Bound<'_, PyAny>,
    in2_shape: &Bound<'_, PyAny>,
    mode: &Bound<'_, PyAny>,
    op: &Bound<'_, PyAny>,
    func: &str,
) -> PyResult<(Pair, Pair, bool)> {
    let shape = |name: &str, ob: &Bound<'_, PyAny>| -> Result<Pair, ConvError> {
        match args::sizes(func, name, ob)?.as_slice() {
            &[a, b] => Ok((a, b)),
            s => Err(ConvError::value(
                func,
                format!("{name} must be 2-D, got {} dimension(s)", s.len()),
            )),
        }
    };
    let p = Corr2dParams::new(
        func,
        shape("in1", in1_shape)?,
        shape("in2", in2_shape)?,
        args::parse_mode(func, mode)?,
        Boundary::Fill,
        args::parse_op(func, op)?,
    )?;
    Ok((p.out_shape(), p.offsets(), p.swapped))
}

/// The options of `opts` (see [`SignalArgs`]) validated, under their canonical names:
/// `(mode, boundary, method)` with boundary one of 'fill', 'symm', 'wrap'.
#[pyfunction]
fn signal_options(opts: &Bound<'_, PyAny>) -> PyResult<(&'static str, &'static str, &'static str)> {
    let a = SignalArgs::parse(opts)?;
    let mode = match a.mode {
        crate::signal::params::Mode::Full => "full",
        crate::signal::params::Mode::Same => "same",
        crate::signal::params::Mode::Valid => "valid",
    };
    let boundary = match a.boundary {
        Boundary::Fill => "fill",
        Boundary::Symm => "symm",
        Boundary::Wrap => "wrap",
    };
    Ok((mode, boundary, a.method.name()))
}

/// Whether the cost model prefers the FFT for inputs of these shapes and of `probe`'s dtype
/// (`rconv.dask` decides once for the whole image). Never for integers.
#[pyfunction]
fn prefers_fft(
    in1_shape: &Bound<'_, PyAny>,
    in2_shape: &Bound<'_, PyAny>,
    probe: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let a = SignalArgs::parse(opts)?;
    let f = a.func.as_str();
    let shape = |name: &str, ob: &Bound<'_, PyAny>| -> Result<Pair, ConvError> {
        match args::sizes(f, name, ob)?.as_slice() {
            &[r, c] => Ok((r, c)),
            s => Err(ConvError::value(
                f,
                format!("{name} must be 2-D, got {} dimension(s)", s.len()),
            )),
        }
    };
    let p = Corr2dParams::new(
        f,
        shape("in1", in1_shape)?,
        shape("in2", in2_shape)?,
        a.mode,
        a.boundary,
        a.op,
    )?;
    let dt = supported(f, ("in1", "in2"), &untyped(f, "in1", probe)?.dtype())?;
    let (oh, ow) = p.out_shape();
    let t = threads::for_work(oh * ow * p.kernel.0 * p.kernel.1);
    Ok(dispatch!(all: dt, T => engine::fft_cheaper::<T>(&p, t)))
}
