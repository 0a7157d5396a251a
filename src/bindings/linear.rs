//! Bindings of the fully connected layer: C-contiguous 2-D float32/float64 arrays of one
//! dtype (the Python layer converts), shapes checked by [`LinearParams`].

use numpy::{Element, PyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::conv::{data, real_dtype};
use super::{readonly, with_output};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::linear::{
    linear_backward_input, linear_backward_weight, linear_forward, LinearParams,
};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(linear, m)?)?;
    m.add_function(wrap_pyfunction!(linear_backward, m)?)?;
    Ok(())
}

fn shape2<T: Element>(a: &numpy::PyReadonlyArray2<'_, T>) -> [usize; 2] {
    let s = a.shape();
    [s[0], s[1]]
}

/// `x W^T + b` for `x` `(n, in)`, `weight` `(out, in)`, `bias` `(out,)`.
#[pyfunction]
#[pyo3(signature = (x, weight, bias=None))]
fn linear<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "linear";
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 2>(f, "input", x)?;
        let wa = readonly::<T, 2>(f, "weight", weight)?;
        let p = LinearParams::new(f, shape2(&xa), shape2(&wa))?;
        let ba = bias.map(|b| readonly::<T, 1>(f, "bias", b)).transpose()?;
        if let Some(b) = &ba {
            if b.len() != p.out_features {
                let msg = format!("bias must have shape ({},), got ({},)", p.out_features, b.len());
                return Err(ConvError::value(f, msg).into());
            }
        }
        let (xs, ws) = (data(f, "input", &xa)?, data(f, "weight", &wa)?);
        let bs = ba.as_ref().map(|b| data(f, "bias", b)).transpose()?;
        let nt = threads::for_work(p.work());
        let out = with_output::<T, _, 2>(py, f, p.output_shape(), |o| {
            threads::run(nt, || linear_forward(&p, (xs, ws, bs), o, nt))
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}

/// `(grad_input or None, grad_weight, grad_bias)` of [`linear`] for `grad_output` `(n, out)`.
#[pyfunction]
#[pyo3(signature = (grad_output, x, weight, input_grad=true))]
fn linear_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    input_grad: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let f = "linear_backward";
    dispatch!(real: real_dtype(f, "input", x)?, T => {
        let xa = readonly::<T, 2>(f, "input", x)?;
        let wa = readonly::<T, 2>(f, "weight", weight)?;
        let ga = readonly::<T, 2>(f, "grad_output", grad_output)?;
        let p = LinearParams::new(f, shape2(&xa), shape2(&wa))?;
        if shape2(&ga) != p.output_shape() {
            let msg = format!(
                "grad_output must have the output's shape {:?}, got {:?}",
                p.output_shape(),
                shape2(&ga)
            );
            return Err(ConvError::value(f, msg).into());
        }
        let (xs, ws, gs) = (data(f, "input", &xa)?, data(f, "weight", &wa)?, data(f, "grad_output", &ga)?);
        let nt = threads::for_work(p.work());
        let gi = if input_grad {
            let gi = with_output::<T, _, 2>(py, f, [p.n, p.in_features], |o| {
                threads::run(nt, || linear_backward_input(&p, gs, ws, o, nt))
            })?;
            Some(gi)
        } else {
            None
        };
        let mut gb: Vec<T> = Vec::new();
        let gw = with_output::<T, _, 2>(py, f, [p.out_features, p.in_features], |o| {
            gb = threads::run(nt, || linear_backward_weight(&p, xs, gs, o, nt))?;
            Ok(())
        })?;
        let gb = PyArray::from_vec(py, gb);
        let gi: Bound<'py, PyAny> = match gi {
            Some(a) => a.into_any(),
            None => py.None().into_bound(py),
        };
        PyTuple::new(py, [gi, gw.into_any(), gb.into_any()])
    }, else => Err(ConvError::internal(f, "not a float dtype").into()))
}
