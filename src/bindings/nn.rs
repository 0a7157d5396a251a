//! Bindings of the CNN layers: conv2d and its gradients, pooling.
//!
//! The Python layer normalises the arguments (dtype promotion, unbatched inputs, int-or-pair
//! parameters, 'same'/'valid' padding, padding modes) and hands over C-contiguous 4-D float32 or
//! float64 arrays of one dtype; everything shape-related is validated here and in the params
//! structs.

use numpy::{
    PyArray4, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray4, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::conv::{self, ConvParams};
use crate::dtype::DType;
use crate::error::ConvError;
use crate::pool::{self, AdaptiveParams, AvgOptions, PoolParams};
use crate::real::Real;
use crate::threads;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_backward_input, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_backward_weight, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d_backward_indices, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_avg_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(max_unpool2d, m)?)?;
    Ok(())
}

/// The float dtype of `obj` (a NumPy array), or a `TypeError`.
fn real_dtype(func: &str, arg: &str, obj: &Bound<'_, PyAny>) -> Result<DType, ConvError> {
    let arr = obj
        .cast::<PyUntypedArray>()
        .map_err(|_| ConvError::type_(func, format!("{arg} must be a NumPy array")))?;
    match DType::of(func, arg, &arr.dtype())? {
        d @ (DType::F32 | DType::F64) => Ok(d),
        _ => Err(ConvError::type_(
            func,
            format!("{arg} must be float32 or float64"),
        )),
    }
}

/// Run `$body` with `$T` = f32 or f64 as `$dt` says.
macro_rules! dispatch_real {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            DType::F32 => {
                type $T = f32;
                $body
            }
            _ => {
                type $T = f64;
                $body
            }
        }
    };
}

fn shape4<T: numpy::Element>(a: &PyReadonlyArray4<'_, T>) -> [usize; 4] {
    let s = a.shape();
    [s[0], s[1], s[2], s[3]]
}

fn slice_of<'a, T: numpy::Element>(
    func: &str,
    arg: &str,
    a: &'a PyReadonlyArray4<'_, T>,
) -> Result<&'a [T], ConvError> {
    a.as_slice()
        .map_err(|_| ConvError::value(func, format!("internal: {arg} must be C-contiguous")))
}

fn extract4<'py, T: numpy::Element>(
    func: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> Result<PyReadonlyArray4<'py, T>, ConvError> {
    obj.extract::<PyReadonlyArray4<'py, T>>().map_err(|_| {
        ConvError::value(
            func,
            format!("{arg} must be a 4-D array of the input's dtype"),
        )
    })
}

fn check_shape(func: &str, arg: &str, got: [usize; 4], want: [usize; 4]) -> Result<(), ConvError> {
    if got != want {
        return Err(ConvError::value(
            func,
            format!("{arg} has shape {got:?}, expected {want:?}"),
        ));
    }
    Ok(())
}

/// A new zeroed array of `shape`, the work `f(out)` done with the GIL released.
fn with_output<'py, T: Real + numpy::Element, F>(
    py: Python<'py>,
    shape: [usize; 4],
    f: F,
) -> PyResult<Bound<'py, PyArray4<T>>>
where
    F: FnOnce(&mut [T]) -> Result<(), ConvError> + Send,
{
    let out = super::alloc::<T, ndarray::Ix4>(py, &shape, true)?;
    {
        let mut rw = out.readwrite();
        let os = rw
            .as_slice_mut()
            .map_err(|_| ConvError::Value("internal: output not contiguous".into()))?;
        py.detach(|| f(os))?;
    }
    Ok(out)
}

type Pair = (usize, usize);
type Quad = (usize, usize, usize, usize);

#[allow(clippy::too_many_arguments)]
fn conv_params(
    func: &str,
    input: [usize; 4],
    weight: [usize; 4],
    stride: Pair,
    padding: Quad,
    dilation: Pair,
    groups: usize,
    output_hw: Option<Pair>,
) -> Result<ConvParams, ConvError> {
    let p = ConvParams::new(func, input, weight, stride, padding, dilation, groups)?;
    match output_hw {
        Some((oh, ow)) => p.with_output_size(func, oh, ow),
        None => Ok(p),
    }
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (x, weight, bias, stride, padding, dilation, groups, func, output_hw=None))]
fn conv2d_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: Pair,
    padding: Quad,
    dilation: Pair,
    groups: usize,
    func: &str,
    output_hw: Option<Pair>,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let wa = extract4::<T>(func, "weight", weight)?;
        let ba = match bias {
            Some(b) => Some(b.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
                ConvError::value(func, "bias must be a 1-D array of the input's dtype")
            })?),
            None => None,
        };
        let p = conv_params(func, shape4(&xa), shape4(&wa), stride, padding, dilation, groups, output_hw)?;
        if let Some(b) = &ba {
            if b.len() != p.cout {
                return Err(ConvError::value(
                    func,
                    format!("bias has {} elements, expected {} (out_channels)", b.len(), p.cout),
                ).into());
            }
        }
        let xs = slice_of(func, "input", &xa)?;
        let ws = slice_of(func, "weight", &wa)?;
        let bs = match &ba {
            Some(b) => Some(b.as_slice().map_err(|_| ConvError::value(func, "internal: bias not contiguous"))?),
            None => None,
        };
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, p.output_shape(), |o| conv::conv2d_forward(&p, xs, ws, bs, o, nt))?.into_any())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (grad_output, weight, input_shape, stride, padding, dilation, groups, func, output_hw=None))]
fn conv2d_backward_input<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    input_shape: [usize; 4],
    stride: Pair,
    padding: Quad,
    dilation: Pair,
    groups: usize,
    func: &str,
    output_hw: Option<Pair>,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "grad_output", grad_output)?;
    dispatch_real!(dt, T => {
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let wa = extract4::<T>(func, "weight", weight)?;
        let p = conv_params(func, input_shape, shape4(&wa), stride, padding, dilation, groups, output_hw)?;
        check_shape(func, "grad_output", shape4(&ga), p.output_shape())?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let ws = slice_of(func, "weight", &wa)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, input_shape, |o| conv::conv2d_backward_input(&p, gs, ws, o, nt))?.into_any())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (x, grad_output, weight_shape, stride, padding, dilation, groups, func, output_hw=None))]
fn conv2d_backward_weight<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    weight_shape: [usize; 4],
    stride: Pair,
    padding: Quad,
    dilation: Pair,
    groups: usize,
    func: &str,
    output_hw: Option<Pair>,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let p = conv_params(func, shape4(&xa), weight_shape, stride, padding, dilation, groups, output_hw)?;
        check_shape(func, "grad_output", shape4(&ga), p.output_shape())?;
        let xs = slice_of(func, "input", &xa)?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, weight_shape, |o| conv::conv2d_backward_weight(&p, xs, gs, o, nt))?.into_any())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (x, kernel, stride, padding, dilation, ceil_mode, return_indices, func))]
fn max_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool,
    return_indices: bool,
    func: &str,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let p = PoolParams::new(func, shape4(&xa), kernel, stride, padding, dilation, ceil_mode)?;
        let xs = slice_of(func, "input", &xa)?;
        let nt = threads::get_num_threads();
        if return_indices {
            let ind = super::alloc::<i64, ndarray::Ix4>(py, &p.output_shape(), true)?;
            let out = {
                let mut irw = ind.readwrite();
                let is = irw.as_slice_mut().map_err(|_| ConvError::Value("internal".into()))?;
                with_output::<T, _>(py, p.output_shape(), |o| {
                    pool::max_pool2d_forward(&p, xs, o, Some(is), nt);
                    Ok(())
                })?
            };
            Ok((out.into_any(), Some(ind.into_any())))
        } else {
            let out = with_output::<T, _>(py, p.output_shape(), |o| {
                pool::max_pool2d_forward(&p, xs, o, None, nt);
                Ok(())
            })?;
            Ok((out.into_any(), None))
        }
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (grad_output, x, kernel, stride, padding, dilation, ceil_mode, func))]
fn max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    ceil_mode: bool,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let p = PoolParams::new(func, shape4(&xa), kernel, stride, padding, dilation, ceil_mode)?;
        check_shape(func, "grad_output", shape4(&ga), p.output_shape())?;
        let xs = slice_of(func, "input", &xa)?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, p.input_shape(), |o| {
            pool::max_pool2d_backward(&p, xs, gs, o, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, indices, input_shape, func))]
fn max_pool2d_backward_indices<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    input_shape: [usize; 4],
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "grad_output", grad_output)?;
    dispatch_real!(dt, T => {
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let ia = extract4::<i64>(func, "indices", indices)?;
        let g = shape4(&ga);
        check_shape(func, "indices", shape4(&ia), g)?;
        if g[0] != input_shape[0] || g[1] != input_shape[1] {
            return Err(ConvError::value(func, format!("grad_output has shape {g:?}, input {input_shape:?}")).into());
        }
        let gs = slice_of(func, "grad_output", &ga)?;
        let is = slice_of(func, "indices", &ia)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, input_shape, |o| {
            pool::max_pool2d_backward_indices(gs, is, g[2] * g[3], o, input_shape[2] * input_shape[3], nt)
        })?.into_any())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, func))]
fn avg_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let p = PoolParams::new(func, shape4(&xa), kernel, stride, padding, (1, 1), ceil_mode)?;
        let xs = slice_of(func, "input", &xa)?;
        let opt = AvgOptions { count_include_pad, divisor_override };
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, p.output_shape(), |o| {
            pool::avg_pool2d_forward(&p, xs, o, opt, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (grad_output, input_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, func))]
fn avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: [usize; 4],
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "grad_output", grad_output)?;
    dispatch_real!(dt, T => {
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let p = PoolParams::new(func, input_shape, kernel, stride, padding, (1, 1), ceil_mode)?;
        check_shape(func, "grad_output", shape4(&ga), p.output_shape())?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let opt = AvgOptions { count_include_pad, divisor_override };
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, input_shape, |o| {
            pool::avg_pool2d_backward(&p, gs, o, opt, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[pyo3(signature = (x, output_size, func))]
fn adaptive_avg_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: Pair,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let p = AdaptiveParams::new(func, shape4(&xa), output_size)?;
        let xs = slice_of(func, "input", &xa)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, p.output_shape(), |o| {
            pool::adaptive_avg_pool2d_forward(&p, xs, o, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, input_shape, func))]
fn adaptive_avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input_shape: [usize; 4],
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "grad_output", grad_output)?;
    dispatch_real!(dt, T => {
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let g = shape4(&ga);
        let p = AdaptiveParams::new(func, input_shape, (g[2], g[3]))?;
        check_shape(func, "grad_output", g, p.output_shape())?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, input_shape, |o| {
            pool::adaptive_avg_pool2d_backward(&p, gs, o, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[pyo3(signature = (x, output_size, func))]
fn adaptive_max_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    output_size: Pair,
    func: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let p = AdaptiveParams::new(func, shape4(&xa), output_size)?;
        let xs = slice_of(func, "input", &xa)?;
        let nt = threads::get_num_threads();
        let ind = super::alloc::<i64, ndarray::Ix4>(py, &p.output_shape(), true)?;
        let out = {
            let mut irw = ind.readwrite();
            let is = irw.as_slice_mut().map_err(|_| ConvError::Value("internal".into()))?;
            with_output::<T, _>(py, p.output_shape(), |o| {
                pool::adaptive_max_pool2d_forward(&p, xs, o, is, nt);
                Ok(())
            })?
        };
        Ok((out.into_any(), ind.into_any()))
    })
}

#[pyfunction]
#[pyo3(signature = (grad_output, x, func))]
fn adaptive_max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let ga = extract4::<T>(func, "grad_output", grad_output)?;
        let g = shape4(&ga);
        let p = AdaptiveParams::new(func, shape4(&xa), (g[2], g[3]))?;
        check_shape(func, "grad_output", g, p.output_shape())?;
        let xs = slice_of(func, "input", &xa)?;
        let gs = slice_of(func, "grad_output", &ga)?;
        let nt = threads::get_num_threads();
        Ok(with_output::<T, _>(py, shape4(&xa), |o| {
            pool::adaptive_max_pool2d_backward(&p, xs, gs, o, nt);
            Ok(())
        })?.into_any())
    })
}

#[pyfunction]
#[pyo3(signature = (x, indices, output_hw, func))]
fn max_unpool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    output_hw: Pair,
    func: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dt = real_dtype(func, "input", x)?;
    dispatch_real!(dt, T => {
        let xa = extract4::<T>(func, "input", x)?;
        let ia = extract4::<i64>(func, "indices", indices)?;
        let s = shape4(&xa);
        check_shape(func, "indices", shape4(&ia), s)?;
        let xs = slice_of(func, "input", &xa)?;
        let is = slice_of(func, "indices", &ia)?;
        let plane_out = output_hw.0.checked_mul(output_hw.1).ok_or_else(|| ConvError::value(func, "output size overflows"))?;
        Ok(with_output::<T, _>(py, [s[0], s[1], output_hw.0, output_hw.1], |o| {
            pool::max_unpool2d(xs, is, s[2] * s[3], o, plane_out)
        })?.into_any())
    })
}
