//! Bindings of the activations: flat C-contiguous float32/float64 arrays in (Python passes
//! `x.reshape(-1)` and reshapes the result), a new flat array out, written once by the
//! kernel without a zero-fill pass.

use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;
use pyo3::types::PyBool;

use super::conv::{data, real_dtype};
use super::{named, readonly, with_fresh_1d, BResult};
use crate::base::error::ConvError;
use crate::base::real::Real;
use crate::base::threads;
use crate::dispatch;
use crate::nn::activation::{self, Activation};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: relu, leaky_relu, sigmoid, tanh }
    Ok(())
}

/// A real-number argument (a Python or NumPy int or float, not a bool) as f64.
pub(crate) fn real_arg(arg: &str, ob: &Bound<'_, PyAny>) -> Result<f64, ConvError> {
    let v = if ob.is_instance_of::<PyBool>() {
        None
    } else {
        ob.extract::<f64>().ok()
    };
    v.ok_or_else(|| {
        let r = ob
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into());
        ConvError::type_(format!("{arg} must be a real number, got {r}"))
    })
}

/// Elements per unit of [`threads::for_work`] of a memory-bound pass (read one or two
/// arrays, write one): two threads pay only from about a million elements.
pub(crate) const MEMORY_BOUND: usize = 16;

/// `act` (of parameters in f64) in the element type.
fn cast<T: Real>(act: Activation<f64>) -> Activation<T> {
    match act {
        Activation::LeakyRelu { negative_slope } => Activation::LeakyRelu {
            negative_slope: T::from_f64(negative_slope),
        },
        Activation::Sigmoid => Activation::Sigmoid,
        Activation::Tanh => Activation::Tanh,
    }
}

/// The forward pass of `act` on a flat array, or with `grad` its backward pass (`input`
/// then being what [`Activation::saved`] names).
fn apply<'py>(
    py: Python<'py>,
    act: Activation<f64>,
    input: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
) -> BResult<Bound<'py, PyAny>> {
    dispatch!(real: real_dtype("input", input)?, T => {
        let act = cast::<T>(act);
        let xa = readonly::<T, 1>("input", input)?;
        let xs = data("input", &xa)?;
        let out = match grad {
            None => {
                // work per element, as measured on a 2-core KVM guest (where waking the
                // second worker costs ~25 us): a memory-bound pass (~0.08 ns per element)
                // gains from 2 threads from about 1M elements, the sigmoid (~0.24 ns)
                // from about 256K, tanh (~0.45 ns) from about 128K
                let work = match act {
                    Activation::LeakyRelu { .. } => xs.len() / MEMORY_BOUND,
                    Activation::Sigmoid => xs.len() / 4,
                    Activation::Tanh => xs.len() / 2,
                };
                let nt = threads::for_work(work);
                with_fresh_1d::<T, _>(py, xs.len(), |os| {
                    threads::run(nt, || activation::forward(act, xs, os, nt))
                })?
            }
            Some(g) => {
                let ga = readonly::<T, 1>("grad_output", g)?;
                if ga.len() != xs.len() {
                    let msg = format!("grad_output has {} elements, input {}", ga.len(), xs.len());
                    return Err(ConvError::value(msg).into());
                }
                let gs = data("grad_output", &ga)?;
                let nt = threads::for_work(xs.len() / MEMORY_BOUND);
                with_fresh_1d::<T, _>(py, xs.len(), |os| {
                    threads::run(nt, || activation::backward(act, gs, xs, os, nt))
                })?
            }
        };
        Ok(out.into_any())
    }, else => Err(ConvError::internal("not a float dtype").into()))
}

/// LeakyReLU of a flat array, `x` where `x > 0`, else `negative_slope * x` (torch's
/// expression: NaN propagates); with `grad`, instead the gradient at the forward's input
/// `input` (or its output, when `negative_slope >= 0`: the same elements are `> 0`).
#[pyfunction]
#[pyo3(signature = (input, negative_slope=None, grad=None, name=None))]
fn leaky_relu<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    negative_slope: Option<&Bound<'py, PyAny>>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    named(
        pass_name(name, grad, "leaky_relu", "leaky_relu_backward"),
        || {
            let negative_slope = match negative_slope {
                None => 0.01,
                Some(s) => real_arg("negative_slope", s)?,
            };
            apply(py, Activation::LeakyRelu { negative_slope }, input, grad)
        },
    )
}

/// Sigmoid of a flat array, `1 / (1 + exp(-x))`; with `grad`, instead the gradient
/// `grad * (1 - y) * y` at the forward's output `input` (`y`).
#[pyfunction]
#[pyo3(signature = (input, grad=None, name=None))]
fn sigmoid<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    named(pass_name(name, grad, "sigmoid", "sigmoid_backward"), || {
        apply(py, Activation::Sigmoid, input, grad)
    })
}

/// tanh of a flat array; with `grad`, instead the gradient `grad * (1 - y * y)` at the
/// forward's output `input` (`y`).
#[pyfunction]
#[pyo3(signature = (input, grad=None, name=None))]
fn tanh<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    named(pass_name(name, grad, "tanh", "tanh_backward"), || {
        apply(py, Activation::Tanh, input, grad)
    })
}

/// The calling function's name: `name` if given, else the forward's or, with `grad`, the
/// backward's.
fn pass_name<'a>(
    name: Option<&'a str>,
    grad: Option<&Bound<'_, PyAny>>,
    forward: &'a str,
    backward: &'a str,
) -> &'a str {
    name.unwrap_or(if grad.is_some() { backward } else { forward })
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
    named(pass_name(name, grad, "relu", "relu_backward"), || {
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
