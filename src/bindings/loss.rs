//! Bindings of the losses: C-contiguous float32/float64 arrays of one dtype and int64
//! class indices (the Python layer converts), new arrays out, written once by the kernels.

use numpy::{dtype, PyArrayDescrMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::activation::{real_arg, MEMORY_BOUND};
use super::conv::{data, real_dtype};
use super::convert::Arg;
use super::{named, readonly, untyped, with_fresh, with_fresh_n, BResult};
use crate::base::error::ConvError;
use crate::base::real::Real;
use crate::base::threads;
use crate::dispatch;
use crate::nn::loss::{self, LossGrad, Reduction};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: cross_entropy, cross_entropy_backward, mse_loss, mse_loss_backward }
    Ok(())
}

/// The class indices `target`: a 1-D int64 array of `n` elements.
fn targets<'py>(
    target: &Bound<'py, PyAny>,
    n: usize,
) -> BResult<numpy::PyReadonlyArray1<'py, i64>> {
    let arr = untyped("target", target)?;
    if !arr.dtype().is_equiv_to(&dtype::<i64>(target.py())) {
        let msg = format!("target must be an int64 array, got dtype {}", arr.dtype());
        return Err(ConvError::type_(msg).into());
    }
    let ta = readonly::<i64, 1>("target", target)?;
    if ta.len() != n {
        let msg = format!(
            "target has {} elements, expected one per row ({n})",
            ta.len()
        );
        return Err(ConvError::value(msg).into());
    }
    Ok(ta)
}

/// Cross-entropy of the logits `input` `(N, C)` against the class indices `target` `(N,)`,
/// averaged over the batch (torch's defaults): `(loss, probabilities)`, the loss a float
/// (rounded to the logits' dtype), the softmax probabilities `(N, C)` for
/// [`cross_entropy_backward`].
#[pyfunction]
#[pyo3(signature = (input, target, name=None))]
fn cross_entropy<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name.unwrap_or("cross_entropy"), || {
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 2>("input", input)?;
            let (n, c) = (xa.shape()[0], xa.shape()[1]);
            let ta = targets(target, n)?;
            let (xs, ts) = (data("input", &xa)?, data("target", &ta)?);
            // an exp per element (~0.35 ns): two threads from about 256K elements
            let nt = threads::for_work(xs.len() / 4);
            let (p, loss) = with_fresh::<T, _, _>(py, &[n, c], |ps| {
                threads::run(nt, || loss::cross_entropy_forward(xs, c, ts, ps, nt))
            })?;
            Ok(PyTuple::new(py, [pyo3::types::PyFloat::new(py, loss?).into_any(), p.into_any()])?)
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The gradient of [`cross_entropy`] with respect to the logits, from its probabilities
/// `(N, C)` and the targets: `(probs - onehot(target)) * grad / N`.
#[pyfunction]
#[pyo3(signature = (probs, target, grad=None, name=None))]
fn cross_entropy_backward<'py>(
    py: Python<'py>,
    probs: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    named(name.unwrap_or("cross_entropy_backward"), || {
        let g = match grad {
            None => 1.0,
            Some(g) => real_arg("grad", g)?,
        };
        dispatch!(real: real_dtype("probs", probs)?, T => {
            let pa = readonly::<T, 2>("probs", probs)?;
            let (n, c) = (pa.shape()[0], pa.shape()[1]);
            let ta = targets(target, n)?;
            let (ps, ts) = (data("probs", &pa)?, data("target", &ta)?);
            // torch: grad_output / total_weight, in the dtype
            let k = T::from_f64(g) / T::from_usize(n);
            let nt = threads::for_work(ps.len() / MEMORY_BOUND);
            let (out, r) = with_fresh::<T, _, _>(py, &[n, c], |os| {
                threads::run(nt, || loss::cross_entropy_backward(ps, c, ts, k, os, nt))
            })?;
            r?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The mean squared error of the flat arrays `input` and `target` (one dtype) with
/// `reduction`: `(loss, diff)`, the loss a float for 'mean' and 'sum' (rounded to the
/// dtype) or the array of squares for 'none', `diff = input - target` for
/// [`mse_loss_backward`].
#[pyfunction]
#[pyo3(signature = (input, target, reduction, name=None))]
fn mse_loss<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    reduction: Arg<Reduction>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name.unwrap_or("mse_loss"), || {
        let reduction = reduction.get("reduction")?;
        dispatch!(real: real_dtype("input", input)?, T => {
            let xa = readonly::<T, 1>("input", input)?;
            let ta = readonly::<T, 1>("target", target)
                .map_err(|_| ConvError::type_("target must have the dtype of input"))?;
            if ta.len() != xa.len() {
                let msg = format!("target has {} elements, input {}", ta.len(), xa.len());
                return Err(ConvError::value(msg).into());
            }
            let (xs, ts) = (data("input", &xa)?, data("target", &ta)?);
            let n = xs.len();
            let nt = threads::for_work(n / MEMORY_BOUND);
            let (loss, diff) = match reduction {
                Reduction::None => {
                    let ([d, sq], r) = with_fresh_n::<T, _, 2>(py, &[n], |[ds, ss]| {
                        threads::run(nt, || loss::mse_forward(xs, ts, ds, Some(ss), nt))
                    })?;
                    r?;
                    (sq.into_any(), d)
                }
                Reduction::Mean | Reduction::Sum => {
                    let (d, total) = with_fresh::<T, _, _>(py, &[n], |ds| {
                        threads::run(nt, || loss::mse_forward(xs, ts, ds, None, nt))
                    })?;
                    let total = total?;
                    let v = if reduction == Reduction::Mean {
                        total / n as f64
                    } else {
                        total
                    };
                    (pyo3::types::PyFloat::new(py, T::from_f64(v).to_f64()).into_any(), d)
                }
            };
            Ok(PyTuple::new(py, [loss, diff.into_any()])?)
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The gradient of [`mse_loss`] with respect to its input, from its `diff`:
/// `norm * diff * grad` (torch's order), `norm = 2 / size` for 'mean', else 2; `grad` is a
/// number (default 1) for 'mean' and 'sum', an array like `diff` for 'none'.
#[pyfunction]
#[pyo3(signature = (diff, reduction, grad=None, name=None))]
fn mse_loss_backward<'py>(
    py: Python<'py>,
    diff: &Bound<'py, PyAny>,
    reduction: Arg<Reduction>,
    grad: Option<&Bound<'py, PyAny>>,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    named(name.unwrap_or("mse_loss_backward"), || {
        let reduction = reduction.get("reduction")?;
        dispatch!(real: real_dtype("diff", diff)?, T => {
            let da = readonly::<T, 1>("diff", diff)?;
            let ds = data("diff", &da)?;
            let n = ds.len();
            let norm = T::from_f64(match reduction {
                Reduction::Mean if n > 0 => 2.0 / n as f64,
                _ => 2.0,
            });
            let ga;
            let g = match (reduction, grad) {
                (Reduction::None, Some(g)) => {
                    ga = readonly::<T, 1>("grad", g)
                        .map_err(|_| ConvError::type_("grad must have the dtype of diff"))?;
                    if ga.len() != n {
                        let msg = format!("grad has {} elements, diff {n}", ga.len());
                        return Err(ConvError::value(msg).into());
                    }
                    LossGrad::Elementwise(data("grad", &ga)?)
                }
                (Reduction::None, None) => LossGrad::Scalar(T::ONE),
                (_, g) => LossGrad::Scalar(T::from_f64(match g {
                    None => 1.0,
                    Some(g) => real_arg("grad", g)?,
                })),
            };
            let nt = threads::for_work(n / MEMORY_BOUND);
            let (out, r) = with_fresh::<T, _, _>(py, &[n], |os| {
                threads::run(nt, || loss::mse_backward(ds, norm, g, os, nt))
            })?;
            r?;
            Ok(out.into_any())
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}
