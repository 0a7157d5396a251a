//! Bindings of the activations: flat C-contiguous float32/float64 arrays in (Python passes
//! `x.reshape(-1)` and reshapes the result), a new flat array out, written once by the
//! kernel without a zero-fill pass.

use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;

use super::conv::{data, real_dtype};
use super::{readonly, with_fresh_1d};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::activation;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(relu, m)?)?;
    m.add_function(wrap_pyfunction!(relu_backward, m)?)?;
    Ok(())
}

/// `max(x, 0)` of a flat array (NaN propagates, as torch's).
#[pyfunction]
fn relu<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let f = "relu";
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 1>(f, "input", x)?;
        let xs = data(f, "input", &xa)?;
        let nt = threads::for_work(xs.len() / 8);
        let out = with_fresh_1d::<T, _>(py, f, xs.len(), |os| {
            threads::run(nt, || activation::relu_forward(xs, os, nt))
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// The gradient of [`relu`] at `x` for the output gradient `grad` (flat, same length).
#[pyfunction]
fn relu_backward<'py>(
    py: Python<'py>,
    grad: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "relu_backward";
    dispatch!(real: real_dtype(f, "grad_output", grad)?, T => {
        let ga = readonly::<T, 1>(f, "grad_output", grad)?;
        let xa = readonly::<T, 1>(f, "input", x)?;
        if ga.len() != xa.len() {
            let msg = format!("grad_output has {} elements, input {}", ga.len(), xa.len());
            return Err(ConvError::value(f, msg).into());
        }
        let (gs, xs) = (data(f, "grad_output", &ga)?, data(f, "input", &xa)?);
        let nt = threads::for_work(xs.len() / 8);
        let out = with_fresh_1d::<T, _>(py, f, xs.len(), |os| {
            threads::run(nt, || activation::relu_backward(gs, xs, os, nt))
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}
