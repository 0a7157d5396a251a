//! Bindings of the convolution family: conv2d, its gradients, conv_transpose2d and its
//! gradients, and the output shapes `rconv.dask` and the layers plan with.
//!
//! Python hands over C-contiguous, aligned float32 or float64 arrays of one dtype (batched:
//! 4-D), and the options as one tuple ([`ConvArgs`]); every check on shapes and parameters is
//! made by the params structs of [`crate::nn::conv`].

use numpy::{Element, PyArray, PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::args::{self, ConvArgs};
use super::dtype::DType;
use super::{checked_out, readonly, untyped, with_output, with_output_in, Dest};
use crate::base::error::ConvError;
use crate::base::real::Real;
use crate::base::threads;
use crate::dispatch;
use crate::nn::conv::params::{ConvPlan, ConvTransposeParams};
use crate::nn::conv::{self, pad, ConvParams};
use crate::signal::row_kernels::RowKernel;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv2d, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_input, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_weight, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose2d, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(conv_transpose_geometry, m)?)?;
    Ok(())
}

type Arr4<'py, T> = PyReadonlyArray<'py, T, ndarray::Ix4>;
type Out4<'py, T> = Bound<'py, PyArray<T, ndarray::Ix4>>;

/// float32 or float64, the dtypes of the CNN layers (Python converts every other input).
pub(crate) fn real_dtype(func: &str, arg: &str, ob: &Bound<'_, PyAny>) -> Result<DType, ConvError> {
    let d = untyped(func, arg, ob)?.dtype();
    match DType::from_descr(&d) {
        Some(dt) if dt.is_real_float() => Ok(dt),
        _ => Err(ConvError::type_(
            func,
            format!("{arg} has unsupported dtype {d}; expected float32 or float64"),
        )),
    }
}

pub(crate) fn shape4<T: Element>(a: &Arr4<'_, T>) -> [usize; 4] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3]]
}

/// The data of a contiguous array (the Python layer made it so).
pub(crate) fn data<'a, T: Element, D: ndarray::Dimension>(
    func: &str,
    arg: &str,
    a: &'a PyReadonlyArray<'_, T, D>,
) -> Result<&'a [T], ConvError> {
    a.as_slice()
        .map_err(|_| ConvError::internal(func, format!("{arg} is not C-contiguous")))
}

pub(crate) fn check_shape(
    func: &str,
    arg: &str,
    got: [usize; 4],
    want: [usize; 4],
) -> Result<(), ConvError> {
    if got != want {
        return Err(ConvError::value(
            func,
            format!("{arg} has shape {got:?}, expected {want:?}"),
        ));
    }
    Ok(())
}

/// Multiply-adds of one pass of a convolution (the thread-count heuristic's work).
fn work(p: &ConvParams) -> usize {
    p.output_shape()
        .iter()
        .product::<usize>()
        .saturating_mul(p.k_len())
}

/// The input padded as `plan` says (a copy), or None when the convolution pads with zeros.
fn padded<T: Real>(plan: &ConvPlan, x: &[T]) -> Option<Vec<T>> {
    let (pads, mode) = plan.explicit?;
    let mut buf = vec![T::ZERO; plan.conv.input_shape().iter().product()];
    pad::pad(x, plan.input, pads, mode, &mut buf);
    Some(buf)
}

/// conv2d: `x` `[n, cin, h, w]`, `weight` `[cout, cin / groups, kh, kw]`, `bias` `[cout]` or
/// None; `opts` as [`ConvArgs`].
#[pyfunction]
#[pyo3(signature = (x, weight, bias, opts, out=None))]
fn conv2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let wa = readonly::<T, 4>(f, "weight", weight)?;
        let plan = a.spec.plan(f, shape4(&xa), shape4(&wa))?;
        let ba = bias.map(|b| readonly::<T, 1>(f, "bias", b)).transpose()?;
        if let Some(b) = &ba {
            if b.len() != plan.conv.cout {
                let msg = format!("bias has {} elements, expected {} (out_channels)", b.len(), plan.conv.cout);
                return Err(ConvError::value(f, msg).into());
            }
        }
        let (xs, ws) = (data(f, "input", &xa)?, data(f, "weight", &wa)?);
        let bs = ba.as_ref().map(|b| data(f, "bias", b)).transpose()?;
        let nt = threads::for_work(work(&plan.conv));
        let inputs: Vec<&Bound<'py, PyAny>> = [Some(x), Some(weight), bias].into_iter().flatten().collect();
        let dest = Dest::of("out", out, &inputs);
        let out = with_output_in::<T, _, 4>(py, f, plan.conv.output_shape(), dest, |o| {
            let buf = padded(&plan, xs);
            let x = buf.as_deref().unwrap_or(xs);
            let op = conv::Operands { x, weight: ws, bias: bs };
            conv::conv2d_forward(&plan.conv, op, o, nt)
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The input gradient of `plan` into a new array of the caller's input shape.
fn input_grad<'py, T: Real + RowKernel + Element>(
    py: Python<'py>,
    func: &str,
    plan: &ConvPlan,
    gs: &[T],
    ws: &[T],
    dest: Dest<'_, 'py>,
) -> PyResult<Out4<'py, T>> {
    let nt = threads::for_work(work(&plan.conv));
    with_output_in::<T, _, 4>(py, func, plan.input, dest, |o| match plan.explicit {
        None => conv::conv2d_backward_input(&plan.conv, gs, ws, o, nt),
        Some((pads, mode)) => {
            let mut gp = vec![T::ZERO; plan.conv.input_shape().iter().product()];
            conv::conv2d_backward_input(&plan.conv, gs, ws, &mut gp, nt)?;
            pad::pad_adjoint(&gp, plan.input, pads, mode, o);
            Ok(())
        }
    })
}

/// The weight gradient of `plan` into a new array.
fn weight_grad<'py, T: Real + RowKernel + Element>(
    py: Python<'py>,
    func: &str,
    plan: &ConvPlan,
    xs: &[T],
    gs: &[T],
    dest: Dest<'_, 'py>,
) -> PyResult<Out4<'py, T>> {
    let nt = threads::for_work(work(&plan.conv));
    with_output_in::<T, _, 4>(py, func, plan.conv.weight_shape(), dest, |o| {
        let buf = padded(plan, xs);
        conv::conv2d_backward_weight(&plan.conv, buf.as_deref().unwrap_or(xs), gs, o, nt)
    })
}

fn bias_array<'py, T: Real + Element>(
    py: Python<'py>,
    func: &str,
    gs: &[T],
    shape: [usize; 4],
    dest: Dest<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let out = with_output_in::<T, _, 1>(py, func, [shape[1]], dest, |o| {
        o.copy_from_slice(&conv::bias_grad(gs, shape));
        Ok(())
    })?;
    Ok(out.into_any())
}

type Grads<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// `out=` of the three gradients: a destination or None for each.
type GradDests<'py> = (
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

/// The three gradients of conv2d: `(grad_input, grad_weight, grad_bias)`.
///
/// `out`: None, or `(grad_input, grad_weight, grad_bias)` destinations, each an array or None.
#[pyfunction]
#[pyo3(signature = (grad_output, x, weight, opts, out=None))]
fn conv2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    out: Option<GradDests<'py>>,
) -> PyResult<Grads<'py>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let wa = readonly::<T, 4>(f, "weight", weight)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let plan = a.spec.plan(f, shape4(&xa), shape4(&wa))?;
        check_shape(f, "grad_output", shape4(&ga), plan.conv.output_shape())?;
        let (xs, ws, gs) = (data(f, "input", &xa)?, data(f, "weight", &wa)?, data(f, "grad_output", &ga)?);
        let (oi, ow, ob) = out.unwrap_or((None, None, None));
        let inputs = [grad_output, x, weight];
        // every destination checked before any is written (no half-applied out=)
        if let Some(o) = &oi {
            checked_out::<T, 4>(f, "out[0]", o, plan.input, &inputs)?;
        }
        if let Some(o) = &ow {
            checked_out::<T, 4>(f, "out[1]", o, plan.conv.weight_shape(), &inputs)?;
        }
        if let Some(o) = &ob {
            checked_out::<T, 1>(f, "out[2]", o, [plan.conv.cout], &inputs)?;
        }
        let gi = input_grad::<T>(py, f, &plan, gs, ws, Dest::of("out[0]", oi.as_ref(), &inputs))?;
        let gw = weight_grad::<T>(py, f, &plan, xs, gs, Dest::of("out[1]", ow.as_ref(), &inputs))?;
        let gb = bias_array::<T>(py, f, gs, shape4(&ga), Dest::of("out[2]", ob.as_ref(), &inputs))?;
        Ok((gi.into_any(), gw.into_any(), gb))
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// `torch.nn.grad.conv2d_input`: the input gradient for an input of `input_shape`.
#[pyfunction]
#[pyo3(signature = (grad_output, weight, input_shape, opts, out=None))]
fn conv2d_input<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "grad_output", grad_output)?, T => {
        let wa = readonly::<T, 4>(f, "weight", weight)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let plan = a.spec.plan(f, args::shape4(f, "input_shape", input_shape)?, shape4(&wa))?;
        check_shape(f, "grad_output", shape4(&ga), plan.conv.output_shape())?;
        let (ws, gs) = (data(f, "weight", &wa)?, data(f, "grad_output", &ga)?);
        let inputs = [grad_output, weight];
        Ok(input_grad::<T>(py, f, &plan, gs, ws, Dest::of("out", out, &inputs))?.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// `torch.nn.grad.conv2d_weight`: the weight gradient for a weight of `weight_shape`.
#[pyfunction]
#[pyo3(signature = (x, grad_output, weight_shape, opts, out=None))]
fn conv2d_weight<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    weight_shape: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let plan = a.spec.plan(f, shape4(&xa), args::shape4(f, "weight_shape", weight_shape)?)?;
        check_shape(f, "grad_output", shape4(&ga), plan.conv.output_shape())?;
        let (xs, gs) = (data(f, "input", &xa)?, data(f, "grad_output", &ga)?);
        let inputs = [x, grad_output];
        Ok(weight_grad::<T>(py, f, &plan, xs, gs, Dest::of("out", out, &inputs))?.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// conv_transpose2d: `x` `[n, cin, h, w]`, `weight` `[cin, cout / groups, kh, kw]`.
#[pyfunction]
fn conv_transpose2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    opts: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let wa = readonly::<T, 4>(f, "weight", weight)?;
        let tp = ConvTransposeParams::new(f, shape4(&xa), shape4(&wa), &a.spec, a.output_padding)?;
        let ba = bias.map(|b| readonly::<T, 1>(f, "bias", b)).transpose()?;
        if let Some(b) = &ba {
            if b.len() != tp.output[1] {
                let msg = format!("bias must have shape ({},), got ({},)", tp.output[1], b.len());
                return Err(ConvError::value(f, msg).into());
            }
        }
        let (xs, ws) = (data(f, "input", &xa)?, data(f, "weight", &wa)?);
        let bs = ba.as_ref().map(|b| data(f, "bias", b)).transpose()?;
        let nt = threads::for_work(work(tp.conv()));
        let out = with_output::<T, _, 4>(py, f, tp.output, |o| {
            conv::conv2d_backward_input(tp.conv(), xs, ws, o, nt)?;
            if let Some(b) = bs {
                conv::add_bias(o, b, tp.output);
            }
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The gradients of conv_transpose2d: `(grad_input, grad_weight, grad_bias)`.
#[pyfunction]
fn conv_transpose2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
) -> PyResult<Grads<'py>> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let wa = readonly::<T, 4>(f, "weight", weight)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let tp = ConvTransposeParams::new(f, shape4(&xa), shape4(&wa), &a.spec, a.output_padding)?;
        check_shape(f, "grad_output", shape4(&ga), tp.output)?;
        let (xs, ws, gs) = (data(f, "input", &xa)?, data(f, "weight", &wa)?, data(f, "grad_output", &ga)?);
        let c = tp.conv();
        let nt = threads::for_work(work(c));
        let gi = with_output::<T, _, 4>(py, f, tp.input, |o| conv::conv2d_forward(c, conv::Operands { x: gs, weight: ws, bias: None }, o, nt))?;
        let gw = with_output::<T, _, 4>(py, f, c.weight_shape(), |o| conv::conv2d_backward_weight(c, gs, xs, o, nt))?;
        let gb = bias_array::<T>(py, f, gs, tp.output, Dest::Fresh)?;
        Ok((gi.into_any(), gw.into_any(), gb))
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The output shape of conv2d for these shapes and options (validated like the call).
#[pyfunction]
fn conv_geometry(
    input_shape: &Bound<'_, PyAny>,
    weight_shape: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
) -> PyResult<[usize; 4]> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    let plan = a.spec.plan(
        f,
        args::shape4(f, "input_shape", input_shape)?,
        args::shape4(f, "weight_shape", weight_shape)?,
    )?;
    Ok(plan.conv.output_shape())
}

/// The output shape of conv_transpose2d for these shapes and options (validated like the call).
#[pyfunction]
fn conv_transpose_geometry(
    input_shape: &Bound<'_, PyAny>,
    weight_shape: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
) -> PyResult<[usize; 4]> {
    let a = ConvArgs::parse(opts)?;
    let f = a.func.as_str();
    let tp = ConvTransposeParams::new(
        f,
        args::shape4(f, "input_shape", input_shape)?,
        args::shape4(f, "weight_shape", weight_shape)?,
        &a.spec,
        a.output_padding,
    )?;
    Ok(tp.output)
}
