//! Bindings of the fully connected layer: C-contiguous 2-D float32/float64 arrays of one
//! dtype (the Python layer converts), shapes checked by [`LinearParams`].

use numpy::{Element, PyArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::conv::{data, real_dtype};
use super::{named, readonly, with_output, Dest};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::conv::params::check_bias;
use crate::nn::linear::{
    linear_backward_input, linear_backward_weight, linear_forward, LinearParams,
};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: linear, linear_backward }
    Ok(())
}

fn shape2<T: Element>(a: &numpy::PyReadonlyArray2<'_, T>) -> [usize; 2] {
    let s = a.shape();
    [s[0], s[1]]
}

/// `x W^T + b` for `x` `(n, in)`, `weight` `(out, in)`, `bias` `(out,)`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None, name="linear"))]
fn linear<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    named(name, || {
        dispatch!(real: real_dtype("input", input)?, T => {
        let xa = readonly::<T, 2>("input", input)?;
        let wa = readonly::<T, 2>("weight", weight)?;
        let p = LinearParams::new(shape2(&xa), shape2(&wa))?;
        let ba = bias.map(|b| readonly::<T, 1>("bias", b)).transpose()?;
        if let Some(b) = &ba {
            check_bias(b.len(), p.out_features)?;
        }
        let (xs, ws) = (data("input", &xa)?, data("weight", &wa)?);
        let bs = ba.as_ref().map(|b| data("bias", b)).transpose()?;
        let nt = threads::for_work(p.work());
        let out = with_output::<T, _>(py, &p.output_shape(), Dest::fresh(), |o| {
            threads::run(nt, || linear_forward(&p, (xs, ws, bs), o, nt))
        })?;
        Ok(out.into_any())
    }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// `(grad_input or None, grad_weight, grad_bias)` of [`linear`] for `grad_output` `(n, out)`.
#[pyfunction]
#[pyo3(signature = (grad_output, input, weight, input_grad=true, name="linear_backward"))]
fn linear_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    input_grad: bool,
    name: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name, || {
        dispatch!(real: real_dtype("input", input)?, T => {
        let xa = readonly::<T, 2>("input", input)?;
        let wa = readonly::<T, 2>("weight", weight)?;
        let ga = readonly::<T, 2>("grad_output", grad_output)?;
        let p = LinearParams::new(shape2(&xa), shape2(&wa))?;
        if shape2(&ga) != p.output_shape() {
            let msg = format!(
                "grad_output must have the output's shape {:?}, got {:?}",
                p.output_shape(),
                shape2(&ga)
            );
            return Err(ConvError::value(msg).into());
        }
        let (xs, ws, gs) = (data("input", &xa)?, data("weight", &wa)?, data("grad_output", &ga)?);
        let nt = threads::for_work(p.work());
        let gi = if input_grad {
            let gi = with_output::<T, _>(py, &[p.n, p.in_features], Dest::fresh(), |o| {
                threads::run(nt, || linear_backward_input(&p, gs, ws, o, nt))
            })?;
            Some(gi)
        } else {
            None
        };
        let mut gb: Vec<T> = Vec::new();
        let gw = with_output::<T, _>(py, &[p.out_features, p.in_features], Dest::fresh(), |o| {
            gb = threads::run(nt, || linear_backward_weight(&p, xs, gs, o, nt))?;
            Ok(())
        })?;
        let gb = PyArray::from_vec(py, gb);
        let gi: Bound<'py, PyAny> = match gi {
            Some(a) => a.into_any(),
            None => py.None().into_bound(py),
        };
        Ok(PyTuple::new(py, [gi, gw.into_any(), gb.into_any()])?)
    }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}
