//! Bindings of the pooling family: max (with indices), average, adaptive, unpooling, their
//! gradients, and the output shapes `rconv.dask` and the layers plan with.
//!
//! Python hands over C-contiguous, aligned float32/float64 4-D arrays (indices as int64) and
//! the options as one tuple ([`PoolArgs`]); every shape rule is in [`crate::nn::pool::params`].

use numpy::PyArrayMethods;
use pyo3::prelude::*;

use super::args::{self, PoolArgs};
use super::conv::{check_shape, data, real_dtype, shape4};
use super::{checked_out, with_output, with_output_in, Dest};
use super::{new_array, readonly};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::pool::ops;
use crate::nn::pool::{AdaptiveParams, AvgOptions, PoolParams, UnpoolParams};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(max_unpool2d, m)?)?;
    m.add_function(wrap_pyfunction!(pool_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(unpool_geometry, m)?)?;
    Ok(())
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
#[pyo3(signature = (x, opts, return_indices, out=None, out_indices=None))]
fn max_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    return_indices: bool,
    out: Option<&Bound<'py, PyAny>>,
    out_indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<MaybePair<'py>> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let p = PoolParams::new(f, shape4(&xa), &a.spec)?;
        let xs = data(f, "input", &xa)?;
        let nt = threads::for_work(work(&p));
        if !return_indices {
            let out = with_output_in::<T, _, 4>(py, f, p.output_shape(), Dest::of("out", out, &[x]), |o| {
                ops::max_pool2d_forward(&p, xs, o, None, nt);
                Ok(())
            })?;
            return Ok((out.into_any(), None));
        }
        let ind = match out_indices {
            None => new_array::<i64, 4>(py, f, p.output_shape(), true)?,
            Some(o) => checked_out::<i64, 4>(f, "out[1]", o, p.output_shape(), &[x])?,
        };
        let ind_any = ind.as_any().clone();
        let inputs = [x, &ind_any];
        let out = {
            let mut irw = ind.try_readwrite().map_err(|_| ConvError::value(f, "out[1] is in use elsewhere"))?;
            let is = irw.as_slice_mut().map_err(|_| ConvError::internal(f, "indices not contiguous"))?;
            with_output_in::<T, _, 4>(py, f, p.output_shape(), Dest::of("out[0]", out, &inputs), |o| {
                ops::max_pool2d_forward(&p, xs, o, Some(is), nt);
                Ok(())
            })?
        };
        Ok((out.into_any(), Some(ind.into_any())))
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The gradient of max_pool2d: from saved `indices` (a scatter) or, without them, with the
/// argmax of every window recomputed from `x`.
#[pyfunction]
#[pyo3(signature = (grad_output, x, opts, indices, out=None))]
fn max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    indices: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let p = PoolParams::new(f, shape4(&xa), &a.spec)?;
        let gs = data(f, "grad_output", &ga)?;
        let nt = threads::for_work(work(&p));
        let inputs: Vec<&Bound<'py, PyAny>> = [Some(grad_output), Some(x), indices].into_iter().flatten().collect();
        let dest = Dest::of("out", out, &inputs);
        let out = match indices {
            Some(ind) => {
                let ia = readonly::<i64, 4>(f, "indices", ind)?;
                check_shape(f, "indices", shape4(&ia), shape4(&ga))?;
                check_shape(f, "grad_output", shape4(&ga), p.output_shape())?;
                let is = data(f, "indices", &ia)?;
                let (plane_out, plane_in) = (p.oh * p.ow, p.h * p.w);
                if out.is_some() && plane_out > 0 {
                    // a caller's array is not half-written when an index is refused
                    py.detach(|| threads::run(nt, || ops::check_plane_indices(is, plane_in)))?;
                }
                with_output_in::<T, _, 4>(py, f, p.input_shape(), dest, |o| {
                    ops::max_pool2d_backward_indices(gs, is, plane_out, o, plane_in, nt)
                })?
            }
            None => {
                check_shape(f, "grad_output", shape4(&ga), p.output_shape())?;
                let xs = data(f, "input", &xa)?;
                with_output_in::<T, _, 4>(py, f, p.input_shape(), dest, |o| {
                    ops::max_pool2d_backward(&p, xs, gs, o, nt);
                    Ok(())
                })?
            }
        };
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

#[pyfunction]
#[pyo3(signature = (x, opts, out=None))]
fn avg_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    let opt = AvgOptions::new(f, a.count_include_pad, a.divisor_override)?;
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let p = PoolParams::new(f, shape4(&xa), &a.spec)?;
        let xs = data(f, "input", &xa)?;
        let nt = threads::for_work(work(&p));
        let out = with_output_in::<T, _, 4>(py, f, p.output_shape(), Dest::of("out", out, &[x]), |o| {
            ops::avg_pool2d_forward(&p, xs, o, opt, nt);
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

#[pyfunction]
#[pyo3(signature = (grad_output, input_shape, opts, out=None))]
fn avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    let opt = AvgOptions::new(f, a.count_include_pad, a.divisor_override)?;
    dispatch!(real: real_dtype(f, "grad_output", grad_output)?, T => {
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let p = PoolParams::new(f, args::shape4(f, "input_shape", input_shape)?, &a.spec)?;
        check_shape(f, "grad_output", shape4(&ga), p.output_shape())?;
        let gs = data(f, "grad_output", &ga)?;
        let nt = threads::for_work(work(&p));
        let inputs = [grad_output];
        let dest = Dest::of("out", out, &inputs);
        let out = with_output_in::<T, _, 4>(py, f, p.input_shape(), dest, |o| {
            ops::avg_pool2d_backward(&p, gs, o, opt, nt);
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

fn adaptive_work(p: &AdaptiveParams) -> usize {
    (p.n * p.c).saturating_mul((p.h * p.w).max(p.oh * p.ow))
}

#[pyfunction]
fn adaptive_avg_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: &Bound<'py, PyAny>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let f = func;
    let size = args::adaptive_size(f, output_size)?;
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let p = AdaptiveParams::new(f, shape4(&xa), size)?;
        let xs = data(f, "input", &xa)?;
        let nt = threads::for_work(adaptive_work(&p));
        let out = with_output::<T, _, 4>(py, f, p.output_shape(), |o| {
            ops::adaptive_avg_pool2d_forward(&p, xs, o, nt);
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

#[pyfunction]
fn adaptive_avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let f = func;
    dispatch!(real: real_dtype(f, "grad_output", grad_output)?, T => {
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let g = shape4(&ga);
        let p = AdaptiveParams::new(f, args::shape4(f, "input_shape", input_shape)?, (Some(g[2]), Some(g[3])))?;
        check_shape(f, "grad_output", g, p.output_shape())?;
        let gs = data(f, "grad_output", &ga)?;
        let nt = threads::for_work(adaptive_work(&p));
        let out = with_output::<T, _, 4>(py, f, [p.n, p.c, p.h, p.w], |o| {
            ops::adaptive_avg_pool2d_backward(&p, gs, o, nt);
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// adaptive_max_pool2d: `(out, indices)`.
#[pyfunction]
fn adaptive_max_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: &Bound<'py, PyAny>,
    func: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let f = func;
    let size = args::adaptive_size(f, output_size)?;
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let p = AdaptiveParams::new(f, shape4(&xa), size)?;
        let xs = data(f, "input", &xa)?;
        let nt = threads::for_work(adaptive_work(&p));
        let ind = new_array::<i64, 4>(py, f, p.output_shape(), true)?;
        let out = {
            let mut irw = ind.readwrite();
            let is = irw.as_slice_mut().map_err(|_| ConvError::internal(f, "indices not contiguous"))?;
            with_output::<T, _, 4>(py, f, p.output_shape(), |o| {
                ops::adaptive_max_pool2d_forward(&p, xs, o, is, nt);
                Ok(())
            })?
        };
        Ok((out.into_any(), ind.into_any()))
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

#[pyfunction]
fn adaptive_max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let f = func;
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let ga = readonly::<T, 4>(f, "grad_output", grad_output)?;
        let g = shape4(&ga);
        let p = AdaptiveParams::new(f, shape4(&xa), (Some(g[2]), Some(g[3])))?;
        check_shape(f, "grad_output", g, p.output_shape())?;
        let (xs, gs) = (data(f, "input", &xa)?, data(f, "grad_output", &ga)?);
        let nt = threads::for_work(adaptive_work(&p));
        let out = with_output::<T, _, 4>(py, f, shape4(&xa), |o| {
            ops::adaptive_max_pool2d_backward(&p, xs, gs, o, nt);
            Ok(())
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// max_unpool2d: `x` and `indices` `[n, c, h, w]`; `output_size` None or a sequence of 2-4
/// sizes (the last two are used).
#[pyfunction]
fn max_unpool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    opts: &Bound<'py, PyAny>,
    output_size: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    let size = output_size
        .map(|s| args::sizes(f, "output_size", s))
        .transpose()?;
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 4>(f, "input", x)?;
        let ia = readonly::<i64, 4>(f, "indices", indices)?;
        check_shape(f, "indices", shape4(&ia), shape4(&xa))?;
        let s = &a.spec;
        let p = UnpoolParams::new(f, shape4(&xa), s.kernel, s.stride, s.padding, size.as_deref())?;
        let (xs, is) = (data(f, "input", &xa)?, data(f, "indices", &ia)?);
        let out = with_output::<T, _, 4>(py, f, p.output_shape(), |o| {
            ops::max_unpool2d(xs, is, p.h * p.w, o, p.oh * p.ow)
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The output shape of max/avg pooling for this input shape and options.
#[pyfunction]
fn pool_geometry(input_shape: &Bound<'_, PyAny>, opts: &Bound<'_, PyAny>) -> PyResult<[usize; 4]> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    AvgOptions::new(f, a.count_include_pad, a.divisor_override)?;
    let p = PoolParams::new(f, args::shape4(f, "input_shape", input_shape)?, &a.spec)?;
    Ok(p.output_shape())
}

/// The output shape of adaptive pooling for this input shape and output size.
#[pyfunction]
fn adaptive_geometry(
    input_shape: &Bound<'_, PyAny>,
    output_size: &Bound<'_, PyAny>,
    func: &str,
) -> PyResult<[usize; 4]> {
    let size = args::adaptive_size(func, output_size)?;
    let p = AdaptiveParams::new(func, args::shape4(func, "input_shape", input_shape)?, size)?;
    Ok(p.output_shape())
}

/// The output shape of max_unpool2d for this input shape, options and output size.
#[pyfunction]
fn unpool_geometry(
    input_shape: &Bound<'_, PyAny>,
    opts: &Bound<'_, PyAny>,
    output_size: Option<&Bound<'_, PyAny>>,
) -> PyResult<[usize; 4]> {
    let a = PoolArgs::parse(opts)?;
    let f = a.func.as_str();
    let size = output_size
        .map(|s| args::sizes(f, "output_size", s))
        .transpose()?;
    let s = &a.spec;
    let p = UnpoolParams::new(
        f,
        args::shape4(f, "input_shape", input_shape)?,
        s.kernel,
        s.stride,
        s.padding,
        size.as_deref(),
    )?;
    Ok(p.output_shape())
}
