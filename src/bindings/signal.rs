//! Bindings of the scipy.signal functions: correlate2d, convolve2d, corr2d (one entry point),
//! the 'auto' method choice, and the geometry `rconv.dask` plans its chunks with.

use numpy::{Element, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::args::{self, Method, SignalArgs};
use super::dtype::DType;
use super::{
    checked_out, checked_out_dyn, new_array, new_array_dyn, readonly, readonly_dyn, untyped,
};
use crate::base::error::ConvError;
use crate::base::scalar::Elem;
use crate::base::threads;
use crate::dispatch;
use crate::signal::backward::{backward, BackwardJob};
use crate::signal::engine::{self, Engine, Job, SignalElem};
use crate::signal::params::{Boundary, Corr2dParams, Op, StackParams};
use crate::signal::stack::{plane, run_stack, StackJob};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(correlate2d, m)?)?;
    m.add_function(wrap_pyfunction!(choose_method, m)?)?;
    m.add_function(wrap_pyfunction!(correlate2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(geometry, m)?)?;
    m.add_function(wrap_pyfunction!(stack_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(signal_options, m)?)?;
    m.add_function(wrap_pyfunction!(auto_plan, m)?)?;
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

/// The stacked call's shape rules: `axes` as given (parsed, not yet normalised), with the
/// shapes of both inputs.
fn validate_stack(
    args: &SignalArgs,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
    ax: (isize, isize),
) -> Result<(DType, StackParams), ConvError> {
    let f = args.func.as_str();
    let (n1, n2) = names(args.op);
    let a1 = untyped(f, n1, in1)?;
    let a2 = untyped(f, n2, in2)?;
    let dt = supported(f, (n1, n2), &a1.dtype())?;
    if DType::from_descr(&a2.dtype()) != Some(dt) {
        return Err(ConvError::internal(
            f,
            format!("{n1} and {n2} must share one dtype"),
        ));
    }
    let rule = (args.mode, args.boundary, args.op);
    let p = StackParams::new(f, a1.shape(), a2.shape(), ax, rule)?;
    Ok((dt, p))
}

/// 2-D correlation behind `correlate2d`, `convolve2d` and `corr2d`.
///
/// `in1`, `in2`: arrays of one dtype (2-D, or stacks with `axes`); `fill`: None (zero) or a
/// 0-d array of that dtype; `opts`: `(func, op, mode, boundary, method, fft_terms)` (see
/// [`SignalArgs`]). `out`: the caller's destination (checked as [`checked_out`]), or None for
/// a new array. `axes`: None (scipy's 2-D contract), or the two axes of `in1` that carry the
/// 2-D operation ([`StackParams`]).
#[pyfunction]
#[pyo3(signature = (in1, in2, fill, opts, out=None, axes=None))]
fn correlate2d<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fill: Option<&Bound<'py, PyAny>>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    axes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = SignalArgs::parse(opts)?;
    if let Some(axes) = axes.filter(|a| !a.is_none()) {
        let axes = args::parse_axes(args.func.as_str(), axes)?;
        let (dt, p) = validate_stack(&args, in1, in2, axes)?;
        return dispatch!(all: dt, T => run_stacked::<T>(py, [in1, in2], fill, &p, &args, out));
    }
    let (dt, p) = validate(&args, in1, in2)?;
    dispatch!(all: dt, T => run::<T>(py, [in1, in2], fill, &p, &args, out))
}

/// The fill value of a call (zero unless `boundary='fill'` with a given value).
fn fill_value<T: SignalElem + Element>(
    f: &str,
    fill: Option<&Bound<'_, PyAny>>,
    boundary: Boundary,
) -> PyResult<T> {
    Ok(match fill {
        Some(ob) if boundary == Boundary::Fill => {
            readonly::<T, 0>(f, "fillvalue", ob)?.as_array()[()]
        }
        _ => T::ZERO,
    })
}

/// The engine each image of a call runs on, by the call's `method`.
fn pick<T: SignalElem>(method: Method) -> impl Fn(&Job<'_, T>) -> Engine + Sync {
    move |job: &Job<'_, T>| match method {
        Method::Direct => Engine::Direct,
        Method::Fft => Engine::Fft,
        Method::Separable => Engine::Separable,
        Method::Auto => engine::choose(job),
        Method::FftIfFinite => engine::fft_if_finite(job),
        // the fused check of the output: direct for blocks holding NaN or Inf
        Method::SeparableIfFinite => Engine::SeparableAuto,
    }
}

fn run_stacked<'py, T: SignalElem + Element>(
    py: Python<'py>,
    [in1, in2]: [&Bound<'py, PyAny>; 2],
    fill: Option<&Bound<'py, PyAny>>,
    p: &StackParams,
    args: &SignalArgs,
    dest: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = args.func.as_str();
    let (n1, n2) = names(args.op);
    let (a1, a2) = (
        readonly_dyn::<T>(f, n1, in1)?,
        readonly_dyn::<T>(f, n2, in2)?,
    );
    let fill = fill_value::<T>(f, fill, p.plane.boundary)?;
    let shape = p.out_shape();
    let out = match dest {
        None => new_array_dyn::<T>(py, f, &shape, true)?,
        Some(o) => checked_out_dyn::<T>(f, "out", o, &shape, &[in1, in2])?,
    };
    {
        let mut rw = out
            .try_readwrite()
            .map_err(|_| ConvError::value(f, "out is in use elsewhere"))?;
        let ((kh, kw), (oh, ow)) = (p.plane.kernel, p.plane.out_shape());
        let work = p.count() * oh * ow * kh * kw;
        let job = StackJob {
            func: f,
            in1: p.batch_order(a1.as_array(), false),
            in2: p.batch_order(a2.as_array(), true),
            params: p,
            fill,
            threads: threads::for_work(work),
            fft_terms: args.fft_terms,
        };
        let os = rw
            .as_slice_mut()
            .map_err(|_| ConvError::internal(f, "output is not contiguous"))?;
        let chooser = pick::<T>(args.method);
        py.detach(|| run_stack(&job, &chooser, os))?;
    }
    Ok(out.into_any())
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
    let fill = fill_value::<T>(f, fill, p.boundary)?;
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
        let chooser = pick::<T>(args.method);
        py.detach(|| engine::run(chooser(&job), &job, out_view))?;
    }
    Ok(out.into_any())
}

/// Gradients behind `correlate2d_backward` and `convolve2d_backward`: `(grad_in1,
/// grad_in2)` of `sum(forward(in1, in2) * grad_output)`, arrays of the inputs' shapes.
///
/// `grad_output`, `in1`, `in2`: arrays of one dtype; `fill`, `opts`: as [`correlate2d`]
/// (the method is always 'auto'); `axes`: None (2-D inputs) or as for a stacked call.
#[pyfunction]
#[pyo3(signature = (grad_output, in1, in2, fill, opts, axes=None))]
fn correlate2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fill: Option<&Bound<'py, PyAny>>,
    opts: &Bound<'py, PyAny>,
    axes: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let args = SignalArgs::parse(opts)?;
    let f = args.func.as_str();
    let (dt, p) = match axes.filter(|a| !a.is_none()) {
        Some(axes) => validate_stack(&args, in1, in2, args::parse_axes(f, axes)?)?,
        None => {
            validate(&args, in1, in2)?; // 2-D only, with the forward's messages
            validate_stack(&args, in1, in2, (0, 1))?
        }
    };
    let g = untyped(f, "grad_output", grad_output)?;
    if DType::from_descr(&g.dtype()) != Some(dt) {
        return Err(ConvError::internal(f, "grad_output must share the inputs' dtype").into());
    }
    let want = p.out_shape();
    if g.shape() != want.as_slice() {
        return Err(ConvError::value(
            f,
            format!(
                "grad_output must have the forward output's shape {want:?}, got {:?}",
                g.shape()
            ),
        )
        .into());
    }
    dispatch!(all: dt, T => run_backward::<T>(py, [grad_output, in1, in2], fill, &p, &args))
}

fn run_backward<'py, T: SignalElem + Element>(
    py: Python<'py>,
    [g, in1, in2]: [&Bound<'py, PyAny>; 3],
    fill: Option<&Bound<'py, PyAny>>,
    p: &StackParams,
    args: &SignalArgs,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let f = args.func.as_str();
    let (n1, n2) = names(args.op);
    let g = readonly_dyn::<T>(f, "grad_output", g)?;
    let (a1, a2) = (
        readonly_dyn::<T>(f, n1, in1)?,
        readonly_dyn::<T>(f, n2, in2)?,
    );
    let fill = fill_value::<T>(f, fill, p.plane.boundary)?;
    let d1 = new_array_dyn::<T>(py, f, a1.shape(), true)?;
    let d2 = new_array_dyn::<T>(py, f, a2.shape(), true)?;
    {
        let (mut w1, mut w2) = (d1.readwrite(), d2.readwrite());
        let v1 = p.batch_order(w1.as_array_mut(), false);
        let v2 = p.batch_order(w2.as_array_mut(), true);
        let ((kh, kw), (oh, ow)) = (p.plane.kernel, p.plane.out_shape());
        let job = BackwardJob {
            func: f,
            g: p.batch_order(g.as_array(), false),
            in1: p.batch_order(a1.as_array(), false),
            in2: p.batch_order(a2.as_array(), true),
            params: p,
            fill,
            threads: threads::for_work(2 * p.count() * oh * ow * kh * kw),
        };
        py.detach(|| backward(&job, v1, v2))?;
    }
    Ok((d1.into_any(), d2.into_any()))
}

/// The engine `method='auto'` picks for these inputs: `"direct"` or `"fft"`. With `axes`
/// (a stacked call), the FFT when the cost model prefers it for one image and no input holds
/// NaN or Inf.
#[pyfunction]
#[pyo3(signature = (in1, in2, opts, axes=None))]
fn choose_method<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    axes: Option<&Bound<'py, PyAny>>,
) -> PyResult<&'static str> {
    let args = SignalArgs::parse(opts)?;
    let f = args.func.as_str();
    if let Some(axes) = axes.filter(|a| !a.is_none()) {
        let (dt, p) = validate_stack(&args, in1, in2, args::parse_axes(f, axes)?)?;
        let (oh, ow) = p.plane.out_shape();
        let t = threads::for_work(oh * ow * p.plane.kernel.0 * p.plane.kernel.1);
        return dispatch!(all: dt, T => {
            let (a, b) = (readonly_dyn::<T>(f, "in1", in1)?, readonly_dyn::<T>(f, "in2", in2)?);
            let (a, b) = (a.as_array(), b.as_array());
            // the first image asks (an empty batch has none: direct, as for empty inputs)
            let first = vec![0; p.batch.len()];
            let planes = if p.count() == 0 {
                None
            } else {
                let x = plane(f, &p.batch_order(a.view(), false), &first)?;
                Some((x, plane(f, &p.batch_order(b.view(), true), &first)?))
            };
            let engine = match planes {
                Some((x, k)) => {
                    let (image, kernel) = if p.plane.swapped { (k, x) } else { (x, k) };
                    let job = Job {
                        func: f,
                        image,
                        kernel,
                        params: &p.plane,
                        fill: T::ZERO,
                        threads: t,
                        fft_terms: None,
                    };
                    // the shapes and the kernel decide; then no image may hold NaN or Inf
                    py.detach(|| match engine::choose(&job) {
                        Engine::Direct => Engine::Direct,
                        e if engine::all_finite(&a) && engine::all_finite(&b) => e,
                        _ => Engine::Direct,
                    })
                }
                _ => Engine::Direct,
            };
            Ok(engine.name())
        });
    }
    let (dt, p) = validate(&args, in1, in2)?;
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
        Ok(py.detach(|| engine::resolved(&job, engine::choose(&job))).name())
    })
}

type Pair = (usize, usize);

/// A 2-D shape from a Python sequence of two sizes, or a `ValueError` naming `name`.
fn shape_2d(func: &str, name: &str, ob: &Bound<'_, PyAny>) -> Result<Pair, ConvError> {
    match args::sizes(func, name, ob)?.as_slice() {
        &[a, b] => Ok((a, b)),
        s => Err(ConvError::value(
            func,
            format!("{name} must be 2-D, got {} dimension(s)", s.len()),
        )),
    }
}

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
    let p = Corr2dParams::new(
        func,
        shape_2d(func, "in1", in1_shape)?,
        shape_2d(func, "in2", in2_shape)?,
        args::parse_mode(func, mode)?,
        Boundary::Fill,
        args::parse_op(func, op)?,
    )?;
    Ok((p.out_shape(), p.offsets(), p.swapped))
}

/// Geometry of a stacked call (`axes=`), validated by [`StackParams`] from the shapes alone:
/// `(output shape, (row axis, column axis))` with the axes normalised.
#[pyfunction]
fn stack_geometry(
    in1_shape: &Bound<'_, PyAny>,
    in2_shape: &Bound<'_, PyAny>,
    axes: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
) -> PyResult<(Vec<usize>, Pair)> {
    let a = SignalArgs::parse(opts)?;
    let f = a.func.as_str();
    let (n1, n2) = names(a.op);
    let s1 = args::sizes(f, n1, in1_shape)?;
    let s2 = args::sizes(f, n2, in2_shape)?;
    let p = StackParams::new(
        f,
        &s1,
        &s2,
        args::parse_axes(f, axes)?,
        (a.mode, a.boundary, a.op),
    )?;
    Ok((p.out_shape(), p.axes))
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

/// The engine `method='auto'` plans for an image of `in1_shape` and this kernel, by the
/// shapes and the kernel's rank alone: `"direct"`, `"fft"` or `"separable"` (`rconv.dask`
/// decides once for the whole image; its blocks then stay direct where they hold NaN or Inf).
/// Never the FFT for integers.
#[pyfunction]
fn auto_plan(
    in1_shape: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
) -> PyResult<&'static str> {
    let a = SignalArgs::parse(opts)?;
    let f = a.func.as_str();
    let image = shape_2d(f, "in1", in1_shape)?;
    let k = untyped(f, "in2", in2)?;
    if k.ndim() != 2 {
        return Err(ConvError::value(f, "in2 must be 2-D").into());
    }
    let dt = supported(f, ("in1", "in2"), &k.dtype())?;
    let p = Corr2dParams::new(
        f,
        image,
        (k.shape()[0], k.shape()[1]),
        a.mode,
        a.boundary,
        a.op,
    )?;
    let (oh, ow) = p.out_shape();
    let t = threads::for_work(oh * ow * p.kernel.0 * p.kernel.1);
    dispatch!(all: dt, T => {
        let kv = readonly::<T, 2>(f, "in2", in2)?;
        Ok(engine::plan::<T>(&p, &kv.as_array(), t).name())
    })
}
