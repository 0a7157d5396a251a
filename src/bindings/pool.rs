//! Bindings of the pooling family: max (with indices), average, adaptive, unpooling, their
//! gradients, the pooling layers' argument checks, and the output shapes `rconv.dask` and
//! the layers plan with.
//!
//! Python hands over C-contiguous, aligned float32/float64 4-D arrays (indices as int64) and
//! the options as named parameters ([`super::convert`]); every shape rule is in
//! [`crate::nn::pool::params`].

use pyo3::prelude::*;

use super::conv::{check_shape, data, real_dtype, shape4};
use super::convert::{Arg, Flag, Int, OutputSize, Pair, PoolStride, Shape};
use super::{named, readonly, slice_mut, with_output, with_output_init, writable, Dest};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::pool::{self, AdaptiveParams, AvgOptions, PoolParams, PoolSpec, UnpoolParams};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! {
        m: max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward, adaptive_avg_pool2d,
            adaptive_avg_pool2d_backward, adaptive_max_pool2d, adaptive_max_pool2d_backward,
            max_unpool2d, pool_geometry, adaptive_geometry, unpool_geometry, pool_layer,
            adaptive_output_size
    }
    Ok(())
}

/// The window options, converted; `stride` None means `kernel_size`, as torch has it.
fn spec(
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    ceil_mode: Arg<Flag>,
) -> Result<PoolSpec, ConvError> {
    let kernel = kernel_size.get("kernel_size")?.0;
    Ok(PoolSpec {
        kernel,
        stride: stride.get("stride")?.0.unwrap_or(kernel),
        padding: padding.get("padding")?.0,
        dilation: dilation.get("dilation")?.0,
        ceil_mode: ceil_mode.get("ceil_mode")?.0,
    })
}

/// avg_pool2d's divisor options, converted and checked.
fn avg_options(
    count_include_pad: Arg<Flag>,
    divisor_override: Option<Arg<Int>>,
) -> Result<AvgOptions, ConvError> {
    let d = divisor_override
        .map(|d| d.get("divisor_override"))
        .transpose()?;
    AvgOptions::new(
        count_include_pad.get("count_include_pad")?.0,
        d.map(|d| d.0),
    )
}

/// Element visits of a pooling pass (the thread-count heuristic's work).
fn work(p: &PoolParams) -> usize {
    p.output_shape()
        .iter()
        .product::<usize>()
        .saturating_mul(p.kh * p.kw)
        .max(p.input_shape().iter().product())
}

type MaybePair<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// max_pool2d: `(out, indices or None)`.
///
/// `out` / `out_indices`: the caller's destinations (None: new arrays).
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out=None, out_indices=None, name="max_pool2d"))]
#[allow(clippy::too_many_arguments)]
fn max_pool2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    return_indices: bool,
    out: Option<&Bound<'py, PyAny>>,
    out_indices: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<MaybePair<'py>> {
    named(name, || {
        let s = spec(kernel_size, stride, padding, dilation, ceil_mode)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let p = PoolParams::new(shape4(&xa), &s)?;
            let xs = data("input", &xa)?;
            let nt = threads::for_work(work(&p));
            let shape = p.output_shape();
            if !return_indices {
                let inputs = [input];
                let out = with_output::<T, _>(py, &shape, Dest::of("out", out, &inputs), |o| {
                    pool::max_pool2d_forward(&p, xs, o, None, nt);
                    Ok(())
                })?;
                return Ok((out.into_any(), None));
            }
            let inputs = [input];
            let dest_ind = Dest::of("out[1]", out_indices, &inputs);
            let ind = dest_ind.array::<i64>(py, &shape)?;
            let ind_any = ind.as_any().clone();
            let inputs = [input, &ind_any];
            let out = {
                let mut irw = writable(&ind, "out[1]")?;
                let is = slice_mut(&mut irw)?;
                with_output::<T, _>(py, &shape, Dest::of("out[0]", out, &inputs), |o| {
                    pool::max_pool2d_forward(&p, xs, o, Some(is), nt);
                    Ok(())
                })?
            };
            Ok((out.into_any(), Some(ind.into_any())))
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The gradient of max_pool2d: from saved `indices` (a scatter) or, without them, with the
/// argmax of every window recomputed from `input`.
#[pyfunction]
#[pyo3(signature = (grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, indices=None, out=None, name="max_pool2d_backward"))]
#[allow(clippy::too_many_arguments)]
fn max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    indices: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = spec(kernel_size, stride, padding, dilation, ceil_mode)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let p = PoolParams::new(shape4(&xa), &s)?;
            let gs = data("grad_output", &ga)?;
            let nt = threads::for_work(work(&p));
            let inputs: Vec<&Bound<'py, PyAny>> = [Some(grad_output), Some(input), indices].into_iter().flatten().collect();
            let dest = Dest::of("out", out, &inputs);
            let out = match indices {
                Some(ind) => {
                    let ia = readonly::<i64, 4>("indices", ind)?;
                    check_shape("indices", shape4(&ia), shape4(&ga))?;
                    check_shape("grad_output", shape4(&ga), p.output_shape())?;
                    let is = data("indices", &ia)?;
                    let (plane_out, plane_in) = (p.oh * p.ow, p.h * p.w);
                    if out.is_some() && plane_out > 0 {
                        // a caller's array is not half-written when an index is refused
                        py.detach(|| threads::run(nt, || pool::check_plane_indices(is, plane_in)))?;
                    }
                    // every plane is zero-filled by the kernel, in parallel, before its scatter
                    with_output_init::<T, _>(py, &p.input_shape(), dest, false, |o| {
                        pool::max_pool2d_backward_indices(gs, is, plane_out, o, plane_in, nt)
                    })?
                }
                None => {
                    check_shape("grad_output", shape4(&ga), p.output_shape())?;
                    let xs = data("input", &xa)?;
                    // every plane is zero-filled by the kernel before its scatter
                    with_output_init::<T, _>(py, &p.input_shape(), dest, false, |o| {
                        pool::max_pool2d_backward(&p, xs, gs, o, nt);
                        Ok(())
                    })?
                }
            };
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out=None, name="avg_pool2d"))]
#[allow(clippy::too_many_arguments)]
fn avg_pool2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    count_include_pad: Arg<Flag>,
    divisor_override: Option<Arg<Int>>,
    out: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = spec(kernel_size, stride, padding, Pair((1, 1)).into(), ceil_mode)?;
        let opt = avg_options(count_include_pad, divisor_override)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let p = PoolParams::new(shape4(&xa), &s)?;
            let xs = data("input", &xa)?;
            let nt = threads::for_work(work(&p));
            let inputs = [input];
            let out = with_output::<T, _>(py, &p.output_shape(), Dest::of("out", out, &inputs), |o| {
                pool::avg_pool2d_forward(&p, xs, o, opt, nt);
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, out=None, name="avg_pool2d_backward"))]
#[allow(clippy::too_many_arguments)]
fn avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: Arg<Shape>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    count_include_pad: Arg<Flag>,
    divisor_override: Option<Arg<Int>>,
    out: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let s = spec(kernel_size, stride, padding, Pair((1, 1)).into(), ceil_mode)?;
        let opt = avg_options(count_include_pad, divisor_override)?;
        let shape = input_shape.get("input_shape")?.batched("input_shape")?;
        dispatch!(real: real_dtype("grad_output", grad_output)?, T => {
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let p = PoolParams::new(shape, &s)?;
            check_shape("grad_output", shape4(&ga), p.output_shape())?;
            let gs = data("grad_output", &ga)?;
            let nt = threads::for_work(work(&p));
            let inputs = [grad_output];
            let dest = Dest::of("out", out, &inputs);
            // every plane is written (tiles) or zero-filled before its scatter by the kernel
            let out = with_output_init::<T, _>(py, &p.input_shape(), dest, false, |o| {
                pool::avg_pool2d_backward(&p, gs, o, opt, nt);
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

fn adaptive_work(p: &AdaptiveParams) -> usize {
    (p.n * p.c).saturating_mul((p.h * p.w).max(p.oh * p.ow))
}

#[pyfunction]
#[pyo3(signature = (input, output_size, name="adaptive_avg_pool2d"))]
fn adaptive_avg_pool2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    output_size: Arg<OutputSize>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let size = output_size.get("output_size")?.0;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let p = AdaptiveParams::new(shape4(&xa), size)?;
            let xs = data("input", &xa)?;
            let nt = threads::for_work(adaptive_work(&p));
            let out = with_output::<T, _>(py, &p.output_shape(), Dest::fresh(), |o| {
                pool::adaptive_avg_pool2d_forward(&p, xs, o, nt);
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, input_shape, name="adaptive_avg_pool2d_backward"))]
fn adaptive_avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: Arg<Shape>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let shape = input_shape.get("input_shape")?.batched("input_shape")?;
        dispatch!(real: real_dtype("grad_output", grad_output)?, T => {
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let g = shape4(&ga);
            let p = AdaptiveParams::new(shape, (Some(g[2]), Some(g[3])))?;
            check_shape("grad_output", g, p.output_shape())?;
            let gs = data("grad_output", &ga)?;
            let nt = threads::for_work(adaptive_work(&p));
            let out = with_output::<T, _>(py, &[p.n, p.c, p.h, p.w], Dest::fresh(), |o| {
                pool::adaptive_avg_pool2d_backward(&p, gs, o, nt);
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// adaptive_max_pool2d: `(out, indices)`.
#[pyfunction]
#[pyo3(signature = (input, output_size, name="adaptive_max_pool2d"))]
fn adaptive_max_pool2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    output_size: Arg<OutputSize>,
    name: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    named(name, || {
        let size = output_size.get("output_size")?.0;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let p = AdaptiveParams::new(shape4(&xa), size)?;
            let xs = data("input", &xa)?;
            let nt = threads::for_work(adaptive_work(&p));
            let shape = p.output_shape();
            let ind = Dest::fresh().array::<i64>(py, &shape)?;
            let out = {
                let mut irw = writable(&ind, "indices")?;
                let is = slice_mut(&mut irw)?;
                with_output::<T, _>(py, &shape, Dest::fresh(), |o| {
                    pool::adaptive_max_pool2d_forward(&p, xs, o, is, nt);
                    Ok(())
                })?
            };
            Ok((out.into_any(), ind.into_any()))
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, input, name="adaptive_max_pool2d_backward"))]
fn adaptive_max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let g = shape4(&ga);
            let p = AdaptiveParams::new(shape4(&xa), (Some(g[2]), Some(g[3])))?;
            check_shape("grad_output", g, p.output_shape())?;
            let (xs, gs) = (data("input", &xa)?, data("grad_output", &ga)?);
            let nt = threads::for_work(adaptive_work(&p));
            let out = with_output::<T, _>(py, &shape4(&xa), Dest::fresh(), |o| {
                pool::adaptive_max_pool2d_backward(&p, xs, gs, o, nt);
                Ok(())
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// max_unpool2d's options, converted: the pooling window it inverts and the sizes of its
/// `output_size` (None: the default).
fn unpool_options(
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    output_size: Option<Arg<Shape>>,
) -> Result<(PoolSpec, Option<Vec<usize>>), ConvError> {
    let window = spec(
        kernel_size,
        stride,
        padding,
        Pair((1, 1)).into(),
        Flag(false).into(),
    )?;
    let size = output_size.map(|s| s.get("output_size")).transpose()?;
    Ok((window, size.map(|s| s.0)))
}

/// max_unpool2d: `input` and `indices` `[n, c, h, w]`; `output_size` None or a sequence of
/// 2-4 sizes (the last two are used).
#[pyfunction]
#[pyo3(signature = (input, indices, kernel_size, stride, padding, output_size=None, name="max_unpool2d"))]
#[allow(clippy::too_many_arguments)]
fn max_unpool2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    output_size: Option<Arg<Shape>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        let (s, size) = unpool_options(kernel_size, stride, padding, output_size)?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 4>("input", input)?;
            let ia = readonly::<i64, 4>("indices", indices)?;
            check_shape("indices", shape4(&ia), shape4(&xa))?;
            let p = UnpoolParams::new(shape4(&xa), s.kernel, s.stride, s.padding, size.as_deref())?;
            let (xs, is) = (data("input", &xa)?, data("indices", &ia)?);
            let out = with_output::<T, _>(py, &p.output_shape(), Dest::fresh(), |o| {
                pool::max_unpool2d(xs, is, p.h * p.w, o, p.oh * p.ow)
            })?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The output shape of max/avg pooling for this input shape and options.
#[pyfunction]
#[pyo3(signature = (input_shape, kernel_size, stride, padding, dilation, ceil_mode, name))]
fn pool_geometry(
    input_shape: Arg<Shape>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let s = spec(kernel_size, stride, padding, dilation, ceil_mode)?;
        let shape = input_shape.get("input_shape")?.batched("input_shape")?;
        Ok(PoolParams::new(shape, &s)?.output_shape())
    })
}

/// A pooling layer's options (`MaxPool2d`, `AvgPool2d`), checked as the calls check them,
/// before any input exists.
#[pyfunction]
#[pyo3(signature = (kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override, name))]
#[allow(clippy::too_many_arguments)]
fn pool_layer(
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    dilation: Arg<Pair>,
    ceil_mode: Arg<Flag>,
    count_include_pad: Arg<Flag>,
    divisor_override: Option<Arg<Int>>,
    name: &str,
) -> PyResult<()> {
    named(name, || {
        spec(kernel_size, stride, padding, dilation, ceil_mode)?.check()?;
        avg_options(count_include_pad, divisor_override)?;
        Ok(())
    })
}

/// An adaptive pool's `output_size` converted (`AdaptiveAvgPool2d` checks it when built).
#[pyfunction]
fn adaptive_output_size(
    output_size: Arg<OutputSize>,
    name: &str,
) -> PyResult<(Option<usize>, Option<usize>)> {
    named(name, || Ok(output_size.get("output_size")?.0))
}

/// The output shape of adaptive pooling for this input shape and output size.
#[pyfunction]
fn adaptive_geometry(
    input_shape: Arg<Shape>,
    output_size: Arg<OutputSize>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let size = output_size.get("output_size")?.0;
        let shape = input_shape.get("input_shape")?.batched("input_shape")?;
        Ok(AdaptiveParams::new(shape, size)?.output_shape())
    })
}

/// The output shape of max_unpool2d for this input shape, options and output size.
#[pyfunction]
#[pyo3(signature = (input_shape, kernel_size, stride, padding, output_size, name))]
fn unpool_geometry(
    input_shape: Arg<Shape>,
    kernel_size: Arg<Pair>,
    stride: Arg<PoolStride>,
    padding: Arg<Pair>,
    output_size: Option<Arg<Shape>>,
    name: &str,
) -> PyResult<[usize; 4]> {
    named(name, || {
        let (s, size) = unpool_options(kernel_size, stride, padding, output_size)?;
        let shape = input_shape.get("input_shape")?.batched("input_shape")?;
        let p = UnpoolParams::new(shape, s.kernel, s.stride, s.padding, size.as_deref())?;
        Ok(p.output_shape())
    })
}
