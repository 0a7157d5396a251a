//! Bindings of the scipy.signal functions: correlate2d, convolve2d, corr2d (one entry point),
//! their gradients, the 'auto' method choice, and the geometry `rconv.dask` plans its chunks
//! with.

use numpy::{Element, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::convert::{Arg, Axes, Method, Shape, Size};
use super::dtype::DType;
use super::{named, readonly, readonly_dyn, untyped, with_output, BResult, Dest};
use crate::base::choice::Choice;
use crate::base::error::ConvError;
use crate::base::scalar::Elem;
use crate::base::threads;
use crate::dispatch;
use crate::signal::backward::{backward, BackwardJob};
use crate::signal::engine::{self, Engine, Job, SignalElem};
use crate::signal::params::{Boundary, Corr2dParams, Mode, Op, StackParams};
use crate::signal::stack::{plane, run_stack, StackJob};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! {
        m: correlate2d, choose_method, correlate2d_backward, geometry, stack_geometry,
            signal_options, auto_plan
    }
    // the names of boundary='fill' (Python converts `fillvalue` only for them)
    let fill: Vec<&str> = Boundary::NAMES
        .iter()
        .filter(|(_, b)| *b == Boundary::Fill)
        .map(|(n, _)| *n)
        .collect();
    m.add("FILL_BOUNDARIES", pyo3::types::PyTuple::new(m.py(), fill)?)?;
    Ok(())
}

/// The names of the two inputs in messages: scipy's `in1`/`in2`, d2l's `x`/`k`.
fn names(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::Corr2d => ("x", "k"),
        _ => ("in1", "in2"),
    }
}

/// The public function an op serves (the default `name=`).
fn public_name(op: Op, backward: bool) -> &'static str {
    match (op, backward) {
        (Op::Correlate, false) => "correlate2d",
        (Op::Convolve, false) => "convolve2d",
        (Op::Corr2d, false) => "corr2d",
        (Op::Correlate, true) => "correlate2d_backward",
        (Op::Convolve, true) => "convolve2d_backward",
        (Op::Corr2d, true) => "corr2d_backward",
    }
}

/// The options of one call, converted.
struct Rule {
    op: Op,
    mode: Mode,
    boundary: Boundary,
}

impl Rule {
    fn get(op: Op, mode: Arg<Mode>, boundary: Arg<Boundary>) -> Result<Self, ConvError> {
        Ok(Rule {
            op,
            mode: mode.get("mode")?,
            boundary: boundary.get("boundary")?,
        })
    }
}

/// The dtype of the inputs (their common type), or a `TypeError`.
fn supported(
    (n1, n2): (&str, &str),
    d: &Bound<'_, numpy::PyArrayDescr>,
) -> Result<DType, ConvError> {
    DType::from_descr(d).ok_or_else(|| {
        ConvError::type_(format!(
            "unsupported dtype {d} (the common type of {n1} and {n2}); supported dtypes are {}",
            super::dtype::SUPPORTED
        ))
    })
}

/// The common dtype of the two inputs (the Python layer gave both one dtype).
fn common(
    r: &Rule,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
) -> Result<(DType, Vec<usize>, Vec<usize>), ConvError> {
    let (n1, n2) = names(r.op);
    let (a1, a2) = (untyped(n1, in1)?, untyped(n2, in2)?);
    let dt = supported((n1, n2), &a1.dtype())?;
    if DType::from_descr(&a2.dtype()) != Some(dt) {
        return Err(ConvError::internal(format!(
            "{n1} and {n2} must share one dtype"
        )));
    }
    Ok((dt, a1.shape().to_vec(), a2.shape().to_vec()))
}

/// The 2-D call's shape rules (scipy's contract: both inputs 2-D).
fn validate(
    r: &Rule,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
) -> Result<(DType, Corr2dParams), ConvError> {
    let (n1, n2) = names(r.op);
    let (dt, s1, s2) = common(r, in1, in2)?;
    let plane = |name: &str, s: &[usize]| match *s {
        [a, b] => Ok((a, b)),
        _ => {
            let hint = if s.len() > 2 {
                " (for a stack of images, pass axes=(row_axis, column_axis), e.g. \
                 axes=(-2, -1))"
            } else {
                ""
            };
            Err(ConvError::value(format!(
                "{name} must be a 2-D array, got {} dimension(s){hint}",
                s.len()
            )))
        }
    };
    let (p1, p2) = (plane(n1, &s1)?, plane(n2, &s2)?);
    let p = Corr2dParams::new(p1, p2, r.mode, r.boundary, r.op)?;
    Ok((dt, p))
}

/// The stacked call's shape rules (`axes` as given, not yet normalised).
fn validate_stack(
    r: &Rule,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
    axes: (isize, isize),
) -> Result<(DType, StackParams), ConvError> {
    let (dt, s1, s2) = common(r, in1, in2)?;
    let p = StackParams::new(&s1, &s2, axes, (r.mode, r.boundary, r.op))?;
    Ok((dt, p))
}

/// 2-D correlation behind `correlate2d`, `convolve2d` and `corr2d` (`op`), their
/// `rconv.dask` blocks included.
///
/// `in1`, `in2`: arrays of one dtype (2-D, or stacks with `axes`); `fill`: None (zero) or a
/// 0-d array of that dtype; `fft_terms`: the terms per sum of an integer FFT's exactness
/// bound (None: from the shapes; `rconv.dask` passes the whole image's for each block);
/// `out`: the caller's destination ([`Dest`]); `axes`: None (scipy's 2-D contract) or the
/// two axes of `in1` that carry the 2-D operation ([`StackParams`]); `name`: the calling
/// function, for messages (default: the public function of `op`).
#[pyfunction]
#[pyo3(signature = (in1, in2, fill, op, mode, boundary, method, fft_terms=None, out=None, axes=None, name=None))]
#[allow(clippy::too_many_arguments)]
fn correlate2d<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fill: Option<&Bound<'py, PyAny>>,
    op: Arg<Op>,
    mode: Arg<Mode>,
    boundary: Arg<Boundary>,
    method: Arg<Method>,
    fft_terms: Option<Arg<Size>>,
    out: Option<&Bound<'py, PyAny>>,
    axes: Option<Arg<Axes>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = op.get("op");
    let func = name.unwrap_or_else(|| {
        op.as_ref()
            .map_or("correlate2d", |&o| public_name(o, false))
    });
    named(func, || {
        let r = Rule::get(op?, mode, boundary)?;
        let method = method.get("method")?;
        let terms = fft_terms
            .map(|t| t.get("fft_terms"))
            .transpose()?
            .map(|s| s.0);
        let run = Run {
            in1,
            in2,
            op: r.op,
            fill,
            method,
            terms,
            out,
        };
        if let Some(axes) = axes {
            let (dt, p) = validate_stack(&r, in1, in2, axes.get("axes")?.0)?;
            return dispatch!(all: dt, T => run.stack::<T>(py, &p));
        }
        let (dt, p) = validate(&r, in1, in2)?;
        dispatch!(all: dt, T => run.plane::<T>(py, &p))
    })
}

/// One forward call, converted: its inputs and what it computes with besides the shapes.
struct Run<'a, 'py> {
    in1: &'a Bound<'py, PyAny>,
    in2: &'a Bound<'py, PyAny>,
    op: Op,
    fill: Option<&'a Bound<'py, PyAny>>,
    method: Method,
    terms: Option<usize>,
    out: Option<&'a Bound<'py, PyAny>>,
}

/// The fill value of a call (zero unless `boundary='fill'` with a given value).
fn fill_value<T: SignalElem + Element>(
    fill: Option<&Bound<'_, PyAny>>,
    boundary: Boundary,
) -> Result<T, ConvError> {
    Ok(match fill {
        Some(ob) if boundary == Boundary::Fill => readonly::<T, 0>("fillvalue", ob)?.as_array()[()],
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

impl<'py> Run<'_, 'py> {
    /// A stacked call (`axes=`).
    fn stack<T: SignalElem + Element>(self, py: Python<'py>, p: &StackParams) -> Out<'py> {
        let (n1, n2) = names(self.op);
        let a1 = readonly_dyn::<T>(n1, self.in1)?;
        let a2 = readonly_dyn::<T>(n2, self.in2)?;
        let fill = fill_value::<T>(self.fill, p.plane.boundary)?;
        let ((kh, kw), (oh, ow)) = (p.plane.kernel, p.plane.out_shape());
        let job = StackJob {
            in1: p.batch_order(a1.as_array(), false),
            in2: p.batch_order(a2.as_array(), true),
            params: p,
            fill,
            threads: threads::for_work(p.count() * oh * ow * kh * kw),
            fft_terms: self.terms,
        };
        let chooser = pick::<T>(self.method);
        let inputs = [self.in1, self.in2];
        let dest = Dest::of("out", self.out, &inputs);
        let out =
            with_output::<T, _>(py, &p.out_shape(), dest, |os| run_stack(&job, &chooser, os))?;
        Ok(out.into_any())
    }

    /// A 2-D call (scipy's contract).
    fn plane<T: SignalElem + Element>(self, py: Python<'py>, p: &Corr2dParams) -> Out<'py> {
        let (n1, n2) = names(self.op);
        let (x, k) = (
            readonly::<T, 2>(n1, self.in1)?,
            readonly::<T, 2>(n2, self.in2)?,
        );
        let (image, kernel) = if p.swapped { (k, x) } else { (x, k) };
        let fill = fill_value::<T>(self.fill, p.boundary)?;
        let (oh, ow) = p.out_shape();
        let job = Job {
            image: image.as_array(),
            kernel: kernel.as_array(),
            params: p,
            fill,
            threads: threads::for_work(oh * ow * p.kernel.0 * p.kernel.1),
            fft_terms: self.terms,
        };
        let chooser = pick::<T>(self.method);
        let inputs = [self.in1, self.in2];
        let dest = Dest::of("out", self.out, &inputs);
        // no zeroing pass for a caller's `out`: every engine writes every output element
        let out = with_output::<T, _>(py, &[oh, ow], dest, |os| {
            let view = ndarray::ArrayViewMut2::from_shape((oh, ow), os)
                .map_err(|_| ConvError::internal("output shape"))?;
            engine::run(chooser(&job), &job, view)
        })?;
        Ok(out.into_any())
    }
}

/// A binding's array result.
type Out<'py> = BResult<Bound<'py, PyAny>>;

/// Gradients behind `correlate2d_backward`, `convolve2d_backward` and `corr2d_backward`:
/// `(grad_in1, grad_in2)` of `sum(forward(in1, in2) * grad_output)`, arrays of the inputs'
/// shapes.
///
/// `grad_output`, `in1`, `in2`: arrays of one dtype; `fill`, `op`, `mode`, `boundary`,
/// `axes`, `name`: as [`correlate2d`] (the method is always 'auto').
#[pyfunction]
#[pyo3(signature = (grad_output, in1, in2, fill, op, mode, boundary, axes=None, name=None))]
#[allow(clippy::too_many_arguments)]
fn correlate2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fill: Option<&Bound<'py, PyAny>>,
    op: Arg<Op>,
    mode: Arg<Mode>,
    boundary: Arg<Boundary>,
    axes: Option<Arg<Axes>>,
    name: Option<&str>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let op = op.get("op");
    let func = name.unwrap_or_else(|| {
        op.as_ref()
            .map_or("correlate2d_backward", |&o| public_name(o, true))
    });
    named(func, || {
        let r = Rule::get(op?, mode, boundary)?;
        let (dt, p) = match axes {
            Some(axes) => validate_stack(&r, in1, in2, axes.get("axes")?.0)?,
            None => {
                validate(&r, in1, in2)?; // 2-D only, with the forward's messages
                validate_stack(&r, in1, in2, (0, 1))?
            }
        };
        let g = untyped("grad_output", grad_output)?;
        if DType::from_descr(&g.dtype()) != Some(dt) {
            return Err(ConvError::internal("grad_output must share the inputs' dtype").into());
        }
        let want = p.out_shape();
        if g.shape() != want.as_slice() {
            return Err(ConvError::value(format!(
                "grad_output must have the forward output's shape {want:?}, got {:?}",
                g.shape()
            ))
            .into());
        }
        dispatch!(all: dt, T => run_backward::<T>(py, [grad_output, in1, in2], fill, &p, &r))
    })
}

fn run_backward<'py, T: SignalElem + Element>(
    py: Python<'py>,
    [g, in1, in2]: [&Bound<'py, PyAny>; 3],
    fill: Option<&Bound<'py, PyAny>>,
    p: &StackParams,
    r: &Rule,
) -> BResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (n1, n2) = names(r.op);
    let g = readonly_dyn::<T>("grad_output", g)?;
    let (a1, a2) = (readonly_dyn::<T>(n1, in1)?, readonly_dyn::<T>(n2, in2)?);
    let fill = fill_value::<T>(fill, p.plane.boundary)?;
    let d1 = Dest::fresh().array::<T>(py, a1.shape())?;
    let d2 = Dest::fresh().array::<T>(py, a2.shape())?;
    {
        let (mut w1, mut w2) = (d1.readwrite(), d2.readwrite());
        let v1 = p.batch_order(w1.as_array_mut(), false);
        let v2 = p.batch_order(w2.as_array_mut(), true);
        let ((kh, kw), (oh, ow)) = (p.plane.kernel, p.plane.out_shape());
        let job = BackwardJob {
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

/// The engine `method='auto'` picks for these inputs: `"direct"`, `"fft"` or `"separable"`.
/// With `axes` (a stacked call), the choice for one image, and direct when any image holds
/// NaN or Inf.
#[pyfunction]
#[pyo3(signature = (in1, in2, mode, axes=None, name="choose_conv_method"))]
fn choose_method<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    mode: Arg<Mode>,
    axes: Option<Arg<Axes>>,
    name: &str,
) -> PyResult<&'static str> {
    named(name, || {
        let r = Rule::get(Op::Correlate, mode, Boundary::Fill.into())?;
        if let Some(axes) = axes {
            let (dt, p) = validate_stack(&r, in1, in2, axes.get("axes")?.0)?;
            return dispatch!(all: dt, T => choose_stacked::<T>(py, in1, in2, &p));
        }
        let (dt, p) = validate(&r, in1, in2)?;
        dispatch!(all: dt, T => {
            let (a, b) = (readonly::<T, 2>("in1", in1)?, readonly::<T, 2>("in2", in2)?);
            let (image, kernel) = if p.swapped { (b, a) } else { (a, b) };
            let (oh, ow) = p.out_shape();
            let job = Job {
                image: image.as_array(),
                kernel: kernel.as_array(),
                params: &p,
                fill: T::ZERO,
                threads: threads::for_work(oh * ow * p.kernel.0 * p.kernel.1),
                fft_terms: None,
            };
            Ok(py.detach(|| engine::resolved(&job, engine::choose(&job))).name())
        })
    })
}

fn choose_stacked<T: SignalElem + Element>(
    py: Python<'_>,
    in1: &Bound<'_, PyAny>,
    in2: &Bound<'_, PyAny>,
    p: &StackParams,
) -> BResult<&'static str> {
    let (oh, ow) = p.plane.out_shape();
    let t = threads::for_work(oh * ow * p.plane.kernel.0 * p.plane.kernel.1);
    let (a, b) = (
        readonly_dyn::<T>("in1", in1)?,
        readonly_dyn::<T>("in2", in2)?,
    );
    let (a, b) = (a.as_array(), b.as_array());
    if p.count() == 0 {
        // an empty batch has no image to ask: direct, as for empty inputs
        return Ok(Engine::Direct.name());
    }
    // the first image asks
    let first = vec![0; p.batch.len()];
    let x = plane(&p.batch_order(a.view(), false), &first)?;
    let k = plane(&p.batch_order(b.view(), true), &first)?;
    let (image, kernel) = if p.plane.swapped { (k, x) } else { (x, k) };
    let job = Job {
        image,
        kernel,
        params: &p.plane,
        fill: T::ZERO,
        threads: t,
        fft_terms: None,
    };
    // the shapes and the kernel decide; then no image may hold NaN or Inf
    let engine = py.detach(|| match engine::choose(&job) {
        Engine::Direct => Engine::Direct,
        e if engine::all_finite(&a) && engine::all_finite(&b) => e,
        _ => Engine::Direct,
    });
    Ok(engine.name())
}

type Pair = (usize, usize);

/// Geometry of one correlation: `(output shape, (top, left), swapped)`. Output `(i, j)` reads
/// the window of input rows from `i - top` and columns from `j - left` (before any boundary
/// extension); `swapped` is scipy's 'valid'-mode exchange of the inputs.
#[pyfunction]
fn geometry(
    in1_shape: Arg<Shape>,
    in2_shape: Arg<Shape>,
    op: Arg<Op>,
    mode: Arg<Mode>,
    name: &str,
) -> PyResult<(Pair, Pair, bool)> {
    named(name, || {
        let p = Corr2dParams::new(
            in1_shape.get("in1_shape")?.plane("in1")?,
            in2_shape.get("in2_shape")?.plane("in2")?,
            mode.get("mode")?,
            Boundary::Fill,
            op.get("op")?,
        )?;
        Ok((p.out_shape(), p.offsets(), p.swapped))
    })
}

/// Geometry of a stacked call (`axes=`), validated by [`StackParams`] from the shapes alone:
/// `(output shape, (row axis, column axis))` with the axes normalised.
#[pyfunction]
fn stack_geometry(
    in1_shape: Arg<Shape>,
    in2_shape: Arg<Shape>,
    axes: Arg<Axes>,
    op: Arg<Op>,
    mode: Arg<Mode>,
    boundary: Arg<Boundary>,
    name: &str,
) -> PyResult<(Vec<usize>, Pair)> {
    named(name, || {
        let r = Rule::get(op.get("op")?, mode, boundary)?;
        let (n1, n2) = names(r.op);
        let s1 = in1_shape.get(n1)?;
        let s2 = in2_shape.get(n2)?;
        let p = StackParams::new(
            &s1.0,
            &s2.0,
            axes.get("axes")?.0,
            (r.mode, r.boundary, r.op),
        )?;
        Ok((p.out_shape(), p.axes))
    })
}

/// The options validated, under their canonical names: `(mode, boundary, method)`, boundary
/// one of 'fill', 'symm', 'wrap'.
#[pyfunction]
fn signal_options(
    mode: Arg<Mode>,
    boundary: Arg<Boundary>,
    method: Arg<Method>,
    name: &str,
) -> PyResult<(&'static str, &'static str, &'static str)> {
    named(name, || {
        let (m, b, me) = (
            mode.get("mode")?,
            boundary.get("boundary")?,
            method.get("method")?,
        );
        Ok((m.name(), b.name(), me.name()))
    })
}

/// The engine `method='auto'` plans for an image of `in1_shape` and this kernel, by the
/// shapes and the kernel's rank alone: `"direct"`, `"fft"` or `"separable"` (`rconv.dask`
/// decides once for the whole image; its blocks then stay direct where they hold NaN or Inf).
/// Never the FFT for integers.
#[pyfunction]
fn auto_plan(
    in1_shape: Arg<Shape>,
    in2: &Bound<'_, PyAny>,
    op: Arg<Op>,
    mode: Arg<Mode>,
    boundary: Arg<Boundary>,
    name: &str,
) -> PyResult<&'static str> {
    named(name, || {
        let r = Rule::get(op.get("op")?, mode, boundary)?;
        let image = in1_shape.get("in1_shape")?.plane("in1")?;
        let k = untyped("in2", in2)?;
        if k.ndim() != 2 {
            return Err(ConvError::value("in2 must be 2-D").into());
        }
        let dt = supported(("in1", "in2"), &k.dtype())?;
        let p = Corr2dParams::new(
            image,
            (k.shape()[0], k.shape()[1]),
            r.mode,
            r.boundary,
            r.op,
        )?;
        let (oh, ow) = p.out_shape();
        let t = threads::for_work(oh * ow * p.kernel.0 * p.kernel.1);
        dispatch!(all: dt, T => {
            let kv = readonly::<T, 2>("in2", in2)?;
            Ok(engine::plan::<T>(&p, &kv.as_array(), t).name())
        })
    })
}
