//! Bindings of the activations: flat C-contiguous float32/float64 arrays in (Python passes
//! `x.reshape(-1)` and reshapes the result), a new flat array out, written once by the
//! kernel without a zero-fill pass.

use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;

use super::conv::{data, real_dtype};
use super::{named, readonly, with_fresh_1d};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::activation;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: relu }
    Ok(())
}

/// `max(x, 0)` of a flat array (NaN propagates, as torch's); with `grad`, instead the
/// gradient at `x` (the forward's input or output) for the output gradient `grad`.
#[pyfunction]
#[pyo3(signature = (input, grad=None, name=None))]
fn relu<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let default = if grad.is_some() {
        "relu_backward"
    } else {
        "relu"
    };
    named(name.unwrap_or(default), || {
        dispatch!(real: real_dtype("input", input)?, T => {
        let xa = readonly::<T, 1>("input", input)?;
        let xs = data("input", &xa)?;
        let nt = threads::for_work(xs.len() / 8);
        let out = match grad {
            None => with_fresh_1d::<T, _>(py, xs.len(), |os| {
                threads::run(nt, || activation::relu_forward(xs, os, nt))
            })?,
            Some(g) => {
                let ga = readonly::<T, 1>("grad_output", g)?;
                if ga.len() != xs.len() {
                    let msg = format!("grad_output has {} elements, input {}", ga.len(), xs.len());
                    return Err(ConvError::value(msg).into());
                }
                let gs = data("grad_output", &ga)?;
                with_fresh_1d::<T, _>(py, xs.len(), |os| {
                    threads::run(nt, || activation::relu_backward(gs, xs, os, nt))
                })?
            }
        };
        Ok(out.into_any())
    }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}
