//! Bindings of the convolution family: conv2d, its gradients, conv_transpose2d and its
//! gradients, the `Conv2d` layer's argument checks, and the output shapes `rconv.dask` plans
//! with.
//!
//! Python hands over C-contiguous, aligned float32 or float64 arrays of one dtype (batched:
//! 4-D) and the options as named parameters ([`super::convert`]); every check on shapes and
//! parameters is made by the params structs of [`crate::nn::conv`].

use numpy::{Element, PyReadonlyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::convert::{Arg, Padding, Pair, Shape, Size, Wrt};
use super::dtype::DType;
use super::{named, readonly, untyped, with_output, BResult, Dest};
use crate::base::error::ConvError;
use crate::base::real::Real;
use crate::base::simd::SimdReal;
use crate::base::threads;
use crate::dispatch;
use crate::nn::conv::params::{check_bias, ConvPlan, ConvSpec, ConvTransposeParams, PadMode};
use crate::nn::conv::{self, pad, ConvParams};
use crate::signal::row_kernels::RowKernel;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! {
        m: conv2d, conv2d_backward, conv2d_grad, conv_transpose2d,
            conv_transpose2d_backward, conv_geometry, conv_transpose_geometry, conv2d_layer,
            conv_engines, _force_conv_engine
    }
    Ok(())
}

type Arr4<'py, T> = PyReadonlyArray<'py, T, ndarray::Ix4>;

/// float32 or float64, the dtypes of the CNN layers (Python converts every other input).
pub(crate) fn real_dtype(arg: &str, ob: &Bound<'_, PyAny>) -> Result<DType, ConvError> {
    let d = untyped(arg, ob)?.dtype();
    match DType::from_descr(&d) {
        Some(dt) if dt.is_real_float() => Ok(dt),
        _ => Err(ConvError::type_(format!(
            "{arg} has unsupported dtype {d}; expected float32 or float64"
        ))),
    }
}

pub(crate) fn shape4<T: Element>(a: &Arr4<'_, T>) -> [usize; 4] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3]]
}

/// The data of a contiguous array (the Python layer made it so).
pub(crate) fn data<'a, T: Element, D: ndarray::Dimension>(
    arg: &str,
    a: &'a PyReadonlyArray<'_, T, D>,
) -> Result<&'a [T], ConvError> {
    a.as_slice()
        .map_err(|_| ConvError::internal(format!("{arg} is not C-contiguous")))
}

pub(crate) fn check_shape(arg: &str, got: [usize; 4], want: [usize; 4]) -> Result<(), ConvError> {
    if got != want {
        return Err(ConvError::value(format!(
            "{arg} has shape {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// The options of a conv2d-family call, converted (each named in its own error).
fn spec(
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
) -> Result<ConvSpec, ConvError> {
    Ok(ConvSpec {
        stride: stride.get("stride")?.0,
        padding: padding.get("padding")?.0,
        dilation: dilation.get("dilation")?.0,
        groups: groups.get("groups")?.0,
        pad_mode: padding_mode.get("padding_mode")?,
    })
}

/// conv_transpose2d's options: `padding` takes no string there.
fn transpose_spec(
    stride: Arg<Pair>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
) -> Result<ConvSpec, ConvError> {
    let p = padding.get("padding")?.0;
    spec(
        stride,
        Padding(crate::nn::conv::params::Padding::Explicit(p)).into(),
        dilation,
        groups,
        PadMode::Zeros.into(),
    )
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

/// conv2d: `input` `[n, cin, h, w]`, `weight` `[cout, cin / groups, kh, kw]`, `bias`
/// `[cout]` or None; `relu`: `relu(conv2d(...))`, the ReLU fused into the output pass
/// (measured slower than the two layers in `rconv.nn.Sequential`, so no layer uses it yet).
#[pyfunction]
#[pyo3(signature = (input, weight, bias, stride, padding, dilation, groups, padding_mode, out=None, name="conv2d", relu=false))]
#[allow(clippy::too_many_arguments)]
fn conv2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
    out: Option<&Bound<'py, PyAny>>,
    name: &str,
    relu: bool,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = spec(stride, padding, dilation, groups, padding_mode)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let wa = readonly::<T, 4>("weight", weight)?;
            let plan = s.plan(shape4(&xa), shape4(&wa))?;
            let ba = bias.map(|b| readonly::<T, 1>("bias", b)).transpose()?;
            if let Some(b) = &ba {
                check_bias(b.len(), plan.conv.cout)?;
            }
            let (xs, ws) = (data("input", &xa)?, data("weight", &wa)?);
            let bs = ba.as_ref().map(|b| data("bias", b)).transpose()?;
            let nt = threads::for_work(work(&plan.conv));
            let inputs: Vec<&Bound<'py, PyAny>> = [Some(input), Some(weight), bias].into_iter().flatten().collect();
            let dest = Dest::of("out", out, &inputs);
            let out = with_output::<T, _>(py, &plan.conv.output_shape(), dest, |o| {
                let buf = padded(&plan, xs);
                let x = buf.as_deref().unwrap_or(xs);
                let op = conv::Operands { x, weight: ws, bias: bs, relu };
                conv::conv2d_forward(&plan.conv, op, o, nt)
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The input gradient of `plan` into `dest`.
fn input_grad<'py, T: Real + RowKernel + SimdReal + Element>(
    py: Python<'py>,
    plan: &ConvPlan,
    gs: &[T],
    ws: &[T],
    dest: Dest<'_, 'py>,
) -> BResult<Bound<'py, PyAny>> {
    let nt = threads::for_work(work(&plan.conv));
    let out = with_output::<T, _>(py, &plan.input, dest, |o| match plan.explicit {
        None => conv::conv2d_backward_input(&plan.conv, gs, ws, o, nt),
        Some((pads, mode)) => {
            let mut gp = vec![T::ZERO; plan.conv.input_shape().iter().product()];
            conv::conv2d_backward_input(&plan.conv, gs, ws, &mut gp, nt)?;
            pad::pad_adjoint(&gp, plan.input, pads, mode, o);
            Ok(())
        }
    })?;
    Ok(out.into_any())
}

/// The weight gradient of `plan` into `dest`.
fn weight_grad<'py, T: Real + RowKernel + SimdReal + Element>(
    py: Python<'py>,
    plan: &ConvPlan,
    xs: &[T],
    gs: &[T],
    dest: Dest<'_, 'py>,
) -> BResult<Bound<'py, PyAny>> {
    let nt = threads::for_work(work(&plan.conv));
    let out = with_output::<T, _>(py, &plan.conv.weight_shape(), dest, |o| {
        let buf = padded(plan, xs);
        conv::conv2d_backward_weight(&plan.conv, buf.as_deref().unwrap_or(xs), gs, o, nt)
    })?;
    Ok(out.into_any())
}

/// The bias gradient (`grad_output` summed over batch and space) into `dest`.
fn bias_grad<'py, T: Real + Element>(
    py: Python<'py>,
    gs: &[T],
    shape: [usize; 4],
    dest: Dest<'_, 'py>,
) -> BResult<Bound<'py, PyAny>> {
    let out = with_output::<T, _>(py, &[shape[1]], dest, |o| {
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
#[pyo3(signature = (grad_output, input, weight, stride, padding, dilation, groups, padding_mode, out=None, name="conv2d_backward"))]
#[allow(clippy::too_many_arguments)]
fn conv2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
    out: Option<GradDests<'py>>,
    name: &str,
) -> PyResult<Grads<'py>> {
    named(name, || {
        let s = spec(stride, padding, dilation, groups, padding_mode)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let wa = readonly::<T, 4>("weight", weight)?;
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let plan = s.plan(shape4(&xa), shape4(&wa))?;
            check_shape("grad_output", shape4(&ga), plan.conv.output_shape())?;
            let (xs, ws, gs) = (data("input", &xa)?, data("weight", &wa)?, data("grad_output", &ga)?);
            let (oi, ow, ob) = out.unwrap_or((None, None, None));
            // each destination shares no memory with the inputs nor with the ones before it
            let in_i = vec![grad_output, input, weight];
            let in_w: Vec<_> = in_i.iter().copied().chain(oi.as_ref()).collect();
            let in_b: Vec<_> = in_w.iter().copied().chain(ow.as_ref()).collect();
            let grad_input_dest = Dest::of("out[0]", oi.as_ref(), &in_i);
            let grad_weight_dest = Dest::of("out[1]", ow.as_ref(), &in_w);
            let grad_bias_dest = Dest::of("out[2]", ob.as_ref(), &in_b);
            // every destination checked before any is written (no half-applied out=)
            grad_input_dest.check::<T>(&plan.input)?;
            grad_weight_dest.check::<T>(&plan.conv.weight_shape())?;
            grad_bias_dest.check::<T>(&[plan.conv.cout])?;
            let gi = input_grad::<T>(py, &plan, gs, ws, grad_input_dest)?;
            let gw = weight_grad::<T>(py, &plan, xs, gs, grad_weight_dest)?;
            let gb = bias_grad::<T>(py, gs, shape4(&ga), grad_bias_dest)?;
            Ok((gi, gw, gb))
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// One gradient of conv2d from the other operand (`torch.nn.grad.conv2d_input` and
/// `conv2d_weight`): with `wrt='input'`, `operand` is the weight and `shape` the input's
/// shape (3 sizes for one unbatched sample, with `unbatched` true, else 4); with
/// `wrt='weight'`, `operand` is the input and `shape` the weight's.
#[pyfunction]
#[pyo3(signature = (grad_output, operand, shape, wrt, stride, padding, dilation, groups, out=None, unbatched=false, name="conv2d_grad"))]
#[allow(clippy::too_many_arguments)]
fn conv2d_grad<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    operand: &Bound<'py, PyAny>,
    shape: Arg<Shape>,
    wrt: Arg<Wrt>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    out: Option<&Bound<'py, PyAny>>,
    unbatched: bool,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = spec(stride, padding, dilation, groups, PadMode::Zeros.into())?;
        let wrt = wrt.get("wrt")?;
        let (arg, shape_name) = match wrt {
            Wrt::Input => ("weight", "input_shape"),
            Wrt::Weight => ("input", "weight_shape"),
        };
        let shape = shape.get(shape_name)?;
        dispatch!(real: real_dtype("grad_output", grad_output)?, T => {
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let oa = readonly::<T, 4>(arg, operand)?;
            let plan = match wrt {
                Wrt::Input => {
                    // an unbatched grad_output (3-D) goes with a 3-size input_shape
                    let want = if unbatched { 3 } else { 4 };
                    if shape.0.len() != want {
                        return Err(ConvError::value(format!(
                            "input_shape must hold {want} sizes for a {}-D grad_output, got {:?}",
                            want, shape.0
                        ))
                        .into());
                    }
                    s.plan(shape.batched(shape_name)?, shape4(&oa))?
                }
                Wrt::Weight => s.plan(shape4(&oa), four(shape, shape_name)?)?,
            };
            check_shape("grad_output", shape4(&ga), plan.conv.output_shape())?;
            let (os, gs) = (data(arg, &oa)?, data("grad_output", &ga)?);
            let inputs = [grad_output, operand];
            let dest = Dest::of("out", out, &inputs);
            match wrt {
                Wrt::Input => input_grad::<T>(py, &plan, gs, os, dest),
                Wrt::Weight => weight_grad::<T>(py, &plan, os, gs, dest),
            }
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// conv_transpose2d: `input` `[n, cin, h, w]`, `weight` `[cin, cout / groups, kh, kw]`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias, stride, padding, output_padding, groups, dilation, out=None, name="conv_transpose2d"))]
#[allow(clippy::too_many_arguments)]
fn conv_transpose2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: Arg<Pair>,
    padding: Arg<Pair>,
    output_padding: Arg<Pair>,
    groups: Arg<Size>,
    dilation: Arg<Pair>,
    out: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = transpose_spec(stride, padding, dilation, groups)?;
        let op = output_padding.get("output_padding")?.0;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let wa = readonly::<T, 4>("weight", weight)?;
            let tp = ConvTransposeParams::new(shape4(&xa), shape4(&wa), &s, op)?;
            let ba = bias.map(|b| readonly::<T, 1>("bias", b)).transpose()?;
            if let Some(b) = &ba {
                check_bias(b.len(), tp.output[1])?;
            }
            let (xs, ws) = (data("input", &xa)?, data("weight", &wa)?);
            let bs = ba.as_ref().map(|b| data("bias", b)).transpose()?;
            let nt = threads::for_work(work(tp.conv()));
            let inputs: Vec<&Bound<'py, PyAny>> = [Some(input), Some(weight), bias].into_iter().flatten().collect();
            let dest = Dest::of("out", out, &inputs);
            let out = with_output::<T, _>(py, &tp.output, dest, |o| {
                // the input gradient writes every element (conv2d_grad's out= relies on it)
                conv::conv2d_backward_input(tp.conv(), xs, ws, o, nt)?;
                if let Some(b) = bs {
                    conv::add_bias(o, b, tp.output);
                }
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The gradients of conv_transpose2d: `(grad_input, grad_weight, grad_bias)`.
#[pyfunction]
#[pyo3(signature = (grad_output, input, weight, stride, padding, output_padding, groups, dilation, name="conv_transpose2d_backward"))]
#[allow(clippy::too_many_arguments)]
fn conv_transpose2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stride: Arg<Pair>,
    padding: Arg<Pair>,
    output_padding: Arg<Pair>,
    groups: Arg<Size>,
    dilation: Arg<Pair>,
    name: &str,
) -> PyResult<Grads<'py>> {
    named(name, || {
        let s = transpose_spec(stride, padding, dilation, groups)?;
        let op = output_padding.get("output_padding")?.0;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let wa = readonly::<T, 4>("weight", weight)?;
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let tp = ConvTransposeParams::new(shape4(&xa), shape4(&wa), &s, op)?;
            check_shape("grad_output", shape4(&ga), tp.output)?;
            let (xs, ws, gs) = (data("input", &xa)?, data("weight", &wa)?, data("grad_output", &ga)?);
            let c = tp.conv();
            let nt = threads::for_work(work(c));
            let gi = with_output::<T, _>(py, &tp.input, Dest::fresh(), |o| {
                conv::conv2d_forward(c, conv::Operands::plain(gs, ws), o, nt)
            })?;
            let gw = with_output::<T, _>(py, &c.weight_shape(), Dest::fresh(), |o| {
                conv::conv2d_backward_weight(c, gs, xs, o, nt)
            })?;
            let gb = bias_grad::<T>(py, gs, tp.output, Dest::fresh())?;
            Ok((gi.into_any(), gw.into_any(), gb))
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The output shape of conv2d for these shapes and options (validated like the call).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_geometry(
    input_shape: Arg<Shape>,
    weight_shape: Arg<Shape>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let s = spec(stride, padding, dilation, groups, padding_mode)?;
        let x = input_shape.get("input_shape")?.batched("input_shape")?;
        let w = four(weight_shape.get("weight_shape")?, "weight_shape")?;
        Ok(s.plan(x, w)?.conv.output_shape())
    })
}

/// The engines of conv2d for these shapes and options: for each pass (`"forward"`,
/// `"input_grad"`, `"weight_grad"`), the one the cost model chooses for `dtype` and every one
/// that can run it.
#[pyfunction]
#[pyo3(signature = (input_shape, weight_shape, stride, padding, dilation, groups, padding_mode, dtype="float32", name="conv_engines"))]
#[allow(clippy::too_many_arguments)]
fn conv_engines(
    input_shape: Arg<Shape>,
    weight_shape: Arg<Shape>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
    dtype: &str,
    name: &str,
) -> PyResult<Vec<(&'static str, &'static str, Vec<&'static str>)>> {
    use crate::base::choice::Choice;
    named(name, || {
        let size = match dtype {
            "float32" => 4,
            "float64" => 8,
            _ => {
                return Err(ConvError::value(format!(
                    "dtype must be 'float32' or 'float64', got {dtype:?}"
                ))
                .into())
            }
        };
        let s = spec(stride, padding, dilation, groups, padding_mode)?;
        let x = input_shape.get("input_shape")?.batched("input_shape")?;
        let w = four(weight_shape.get("weight_shape")?, "weight_shape")?;
        let p = s.plan(x, w)?.conv;
        Ok(conv::Pass::ALL
            .into_iter()
            .map(|pass| {
                let all = p.engines(pass).into_iter().map(|e| e.name()).collect();
                (pass.name(), p.engine(pass, size).name(), all)
            })
            .collect())
    })
}

/// Private, for tests: run every convolution pass on `engine` wherever it can run, or on the
/// cost model's choice again with `None`.
#[pyfunction]
#[pyo3(signature = (engine=None))]
fn _force_conv_engine(engine: Option<&str>) -> PyResult<()> {
    use crate::base::choice::Choice;
    named("_force_conv_engine", || {
        let e = match engine {
            None => None,
            Some(s) => Some(conv::Engine::parse(s).ok_or_else(|| {
                let names: Vec<_> = conv::Engine::ALL.iter().map(|e| e.name()).collect();
                ConvError::value(format!(
                    "engine must be one of {names:?} or None, got {s:?}"
                ))
            })?),
        };
        conv::cost::force_engine(e);
        Ok(())
    })
}

/// A shape of exactly 4 sizes.
fn four(s: Shape, name: &str) -> Result<[usize; 4], ConvError> {
    s.0.as_slice()
        .try_into()
        .map_err(|_| ConvError::value(format!("{name} must hold 4 sizes, got {}", s.0.len())))
}

/// The output shape of conv_transpose2d for these shapes and options (validated like the call).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv_transpose_geometry(
    input_shape: Arg<Shape>,
    weight_shape: Arg<Shape>,
    stride: Arg<Pair>,
    padding: Arg<Pair>,
    output_padding: Arg<Pair>,
    groups: Arg<Size>,
    dilation: Arg<Pair>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let s = transpose_spec(stride, padding, dilation, groups)?;
        let op = output_padding.get("output_padding")?.0;
        let x = input_shape.get("input_shape")?.batched("input_shape")?;
        let w = four(weight_shape.get("weight_shape")?, "weight_shape")?;
        Ok(ConvTransposeParams::new(x, w, &s, op)?.output)
    })
}

/// The weight shape of a `Conv2d(in_channels, out_channels, kernel_size, ...)` layer, its
/// arguments checked as conv2d checks them (no input needed).
#[pyfunction]
#[pyo3(signature = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode, name="Conv2d"))]
#[allow(clippy::too_many_arguments)]
fn conv2d_layer(
    in_channels: Arg<Size>,
    out_channels: Arg<Size>,
    kernel_size: Arg<Pair>,
    stride: Arg<Pair>,
    padding: Arg<Padding>,
    dilation: Arg<Pair>,
    groups: Arg<Size>,
    padding_mode: Arg<PadMode>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let cin = in_channels.get("in_channels")?.0;
        let cout = out_channels.get("out_channels")?.0;
        let k = kernel_size.get("kernel_size")?.0;
        let s = spec(stride, padding, dilation, groups, padding_mode)?;
        Ok(s.layer_weight(cin, cout, k)?)
    })
}
