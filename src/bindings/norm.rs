//! Bindings of batch normalisation: a C-contiguous 4-D float32/float64 input and 1-D
//! per-channel arrays of the input's dtype (the Python layer converts; every shape, dtype and
//! value rule is checked here, before anything is written). The output is a fresh array
//! written once by the kernel; the running statistics are updated in place.

use numpy::{Element, PyArray, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::conv::{real_dtype, shape4};
use super::convert::{Arg, Flag, Float};
use super::dtype::DType;
use super::{named, readonly, untyped, with_fresh, BResult};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::norm::{self, Affine, BnShape, Saved};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: batch_norm2d, batch_norm2d_backward }
    Ok(())
}

/// The thread-count heuristic's work for a call on `s`, with per-channel sums (`reduces`:
/// compute-bound, f64 accumulation) or only elementwise (memory-bound). Measured on the
/// 2-core host (an AMD Zen 5 VM), alternating blocks with 20 ms pauses: a second thread
/// paid for its wake-up from about 1M elements for the calls with sums, but not even at 2M
/// for the elementwise eval pass; hence 1M and 4M elements.
fn work(s: &BnShape, reduces: bool) -> usize {
    s.len() / if reduces { 16 } else { 64 }
}

/// `(2, 3)` as Python prints a shape.
fn shape_str(d: &[usize]) -> String {
    match d {
        [one] => format!("({one},)"),
        _ => {
            let items: Vec<String> = d.iter().map(|v| v.to_string()).collect();
            format!("({})", items.join(", "))
        }
    }
}

/// `ob`'s dtype, checked to be the input's `want` (a `TypeError` naming `arg` otherwise).
fn same_dtype(
    arg: &str,
    ob: &Bound<'_, PyAny>,
    want: DType,
    input: &Bound<'_, PyAny>,
) -> BResult<()> {
    let d = untyped(arg, ob)?.dtype();
    if DType::from_descr(&d) != Some(want) {
        let wname = untyped("input", input)?.dtype();
        let msg = format!("{arg} has dtype {d}, expected the input's {wname}");
        return Err(ConvError::type_(msg).into());
    }
    Ok(())
}

/// A per-channel array `(c,)` of the input's dtype, C-contiguous.
fn channel_vec<'py, T: Element>(
    arg: &str,
    ob: &Bound<'py, PyAny>,
    (dt, input): (DType, &Bound<'py, PyAny>),
    c: usize,
) -> BResult<PyReadonlyArray1<'py, T>> {
    same_dtype(arg, ob, dt, input)?;
    check_channel_shape(arg, ob, c)?;
    Ok(readonly::<T, 1>(arg, ob)?)
}

/// `(c,)` and C-contiguous, or a `ValueError` naming `arg`.
fn check_channel_shape(arg: &str, ob: &Bound<'_, PyAny>, c: usize) -> BResult<()> {
    let a = untyped(arg, ob)?;
    if a.shape() != [c] {
        let msg = format!(
            "{arg} must have shape ({c},) (one value per channel), got {}",
            shape_str(a.shape())
        );
        return Err(ConvError::value(msg).into());
    }
    if !a.is_c_contiguous() {
        return Err(ConvError::value(format!("{arg} must be C-contiguous")).into());
    }
    Ok(())
}

/// A running statistic to update in place (dtype and shape already checked): borrowed for
/// writing, or a `ValueError` naming `arg` (read-only, or in use, e.g. as another argument).
fn updated<'py, T: Element>(
    arg: &str,
    ob: &Bound<'py, PyAny>,
) -> BResult<numpy::PyReadwriteArrayDyn<'py, T>> {
    let a = untyped(arg, ob)?
        .cast::<numpy::PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(format!("{arg} has the wrong type")))?;
    a.try_readwrite().map_err(|e| {
        let msg = match e {
            numpy::BorrowError::NotWriteable => {
                format!("{arg} must be writeable (it is updated in place when training)")
            }
            _ => format!("{arg} is in use by another call (or is one of its inputs)"),
        };
        ConvError::value(msg).into()
    })
}

/// The elements of a C-contiguous array, or a `ValueError` naming `arg`.
fn elems<'a, T: Element, D: ndarray::Dimension>(
    arg: &str,
    a: &'a numpy::PyReadonlyArray<'_, T, D>,
) -> BResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| ConvError::value(format!("{arg} must be C-contiguous")).into())
}

/// The 4-D input, as a read-only view and its shape.
fn input4<'py, T: Element>(
    input: &Bound<'py, PyAny>,
) -> BResult<(numpy::PyReadonlyArray4<'py, T>, [usize; 4])> {
    let xa = readonly::<T, 4>("input", input)?;
    let shape = shape4(&xa);
    Ok((xa, shape))
}

/// Batch normalisation of an `(N, C, H, W)` input: `(output, mean, invstd)`, the per-channel
/// mean and `1 / sqrt(var + eps)` it normalised with.
///
/// `training`: the batch's statistics (biased variance); `running_mean` and `running_var`,
/// if given, are updated in place (`momentum` weighs the batch; the unbiased variance).
/// Otherwise the running statistics, which are then required.
#[pyfunction]
#[pyo3(signature = (input, weight=None, bias=None, running_mean=None, running_var=None,
    training=Arg::from(Flag(true)), momentum=Arg::from(Float(0.1)), eps=Arg::from(Float(1e-5)),
    name="batch_norm2d"))]
#[allow(clippy::too_many_arguments)]
fn batch_norm2d<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    running_mean: Option<&Bound<'py, PyAny>>,
    running_var: Option<&Bound<'py, PyAny>>,
    training: Arg<Flag>,
    momentum: Arg<Float>,
    eps: Arg<Float>,
    name: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name, || {
        let training = training.get("training")?.0;
        let momentum = momentum.get("momentum")?.0;
        let eps = eps.get("eps")?.0;
        if eps.is_nan() || eps < 0.0 {
            let shown = if eps.is_nan() {
                "nan".into()
            } else {
                format!("{eps:?}")
            };
            return Err(ConvError::value(format!("eps must be >= 0, got {shown}")).into());
        }
        let dt = real_dtype("input", input)?;
        dispatch!(real: dt, T => {
            let (xa, shape) = input4::<T>(input)?;
            let s = BnShape::new(shape);
            let ctx = (dt, input);
            let wa = weight.map(|w| channel_vec::<T>("weight", w, ctx, s.c)).transpose()?;
            let ba = bias.map(|b| channel_vec::<T>("bias", b, ctx, s.c)).transpose()?;
            let running = match (running_mean, running_var) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) => None,
                _ => {
                    let msg = "running_mean and running_var must be given together";
                    return Err(ConvError::value(msg).into());
                }
            };
            if let Some((m, v)) = running {
                for (arg, ob) in [("running_mean", m), ("running_var", v)] {
                    same_dtype(arg, ob, dt, input)?;
                    check_channel_shape(arg, ob, s.c)?;
                }
            }
            if training && s.count() <= 1 {
                let msg = format!(
                    "expected more than 1 value per channel when training, got input of shape {}",
                    shape_str(&shape)
                );
                return Err(ConvError::value(msg).into());
            }
            let xs = elems("input", &xa)?;
            let ws = wa.as_ref().map(|w| elems("weight", w)).transpose()?;
            let bs = ba.as_ref().map(|b| elems("bias", b)).transpose()?;
            let aff = Affine { weight: ws, bias: bs };
            let nt = threads::for_work(work(&s, training));
            let (y, saved) = if training {
                // both buffers borrowed for writing before any is written
                let mut bufs = running
                    .map(|(m, v)| -> BResult<_> {
                        Ok((updated::<T>("running_mean", m)?, updated::<T>("running_var", v)?))
                    })
                    .transpose()?;
                let run = match bufs.as_mut() {
                    Some((m, v)) => {
                        let ms = m.as_slice_mut().map_err(|_| {
                            ConvError::value("running_mean must be C-contiguous")
                        })?;
                        let vs = v.as_slice_mut().map_err(|_| {
                            ConvError::value("running_var must be C-contiguous")
                        })?;
                        Some((ms, vs, momentum))
                    }
                    None => None,
                };
                with_fresh::<T, _, _>(py, &shape, |o| {
                    threads::run(nt, || norm::batch_norm_train(&s, xs, aff, run, eps, o, nt))
                })?
            } else {
                let Some((m, v)) = running else {
                    let msg = "running_mean and running_var are required when training=False";
                    return Err(ConvError::value(msg).into());
                };
                let ma = readonly::<T, 1>("running_mean", m)?;
                let va = readonly::<T, 1>("running_var", v)?;
                let stats = (elems("running_mean", &ma)?, elems("running_var", &va)?);
                with_fresh::<T, _, _>(py, &shape, |o| {
                    threads::run(nt, || norm::batch_norm_eval(&s, xs, aff, stats, eps, o, nt))
                })?
            };
            let mean = PyArray::from_vec(py, saved.mean);
            let invstd = PyArray::from_vec(py, saved.invstd);
            Ok(PyTuple::new(py, [y.into_any(), mean.into_any(), invstd.into_any()])?)
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}

/// The gradients of [`batch_norm2d`] for `grad_output`, from its `input` and the `mean` and
/// `invstd` it returned: `(grad_input or None, grad_weight or None, grad_bias or None)`.
///
/// `training`: the forward used the batch's statistics (their dependence on the input enters
/// `grad_input`). `input_grad` / `param_grads`: which gradients to compute (`grad_weight` is
/// `sum(grad_output * xhat)` and `grad_bias` `sum(grad_output)`, with or without `weight`).
#[pyfunction]
#[pyo3(signature = (grad_output, input, mean, invstd, weight=None, training=Arg::from(Flag(true)),
    input_grad=Arg::from(Flag(true)), param_grads=Arg::from(Flag(true)),
    name="batch_norm2d_backward"))]
#[allow(clippy::too_many_arguments)]
fn batch_norm2d_backward<'py>(
    py: Python<'py>,
    grad_output: &Bound<'py, PyAny>,
    input: &Bound<'py, PyAny>,
    mean: &Bound<'py, PyAny>,
    invstd: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    training: Arg<Flag>,
    input_grad: Arg<Flag>,
    param_grads: Arg<Flag>,
    name: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name, || {
        let training = training.get("training")?.0;
        let input_grad = input_grad.get("input_grad")?.0;
        let param_grads = param_grads.get("param_grads")?.0;
        let dt = real_dtype("input", input)?;
        dispatch!(real: dt, T => {
            let (xa, shape) = input4::<T>(input)?;
            let s = BnShape::new(shape);
            let ctx = (dt, input);
            same_dtype("grad_output", grad_output, dt, input)?;
            let gshape = untyped("grad_output", grad_output)?.shape().to_vec();
            if gshape != shape {
                let msg = format!(
                    "grad_output has shape {}, expected the input's {}",
                    shape_str(&gshape),
                    shape_str(&shape)
                );
                return Err(ConvError::value(msg).into());
            }
            let ga = readonly::<T, 4>("grad_output", grad_output)?;
            let ma = channel_vec::<T>("mean", mean, ctx, s.c)?;
            let ia = channel_vec::<T>("invstd", invstd, ctx, s.c)?;
            let wa = weight.map(|w| channel_vec::<T>("weight", w, ctx, s.c)).transpose()?;
            let (xs, gs) = (elems("input", &xa)?, elems("grad_output", &ga)?);
            let ws = wa.as_ref().map(|w| elems("weight", w)).transpose()?;
            let saved = Saved {
                mean: elems("mean", &ma)?.to_vec(),
                invstd: elems("invstd", &ia)?.to_vec(),
                batch: training,
            };
            let nt = threads::for_work(work(&s, training || param_grads));
            let none = || py.None().into_bound(py);
            let (gi, pg) = if input_grad {
                let (gi, pg) = with_fresh::<T, _, _>(py, &shape, |o| {
                    threads::run(nt, || {
                        norm::batch_norm_backward(&s, (gs, xs), &saved, ws, Some(o), param_grads, nt)
                    })
                })?;
                (gi.into_any(), pg)
            } else {
                let pg = py.detach(|| {
                    threads::run(nt, || {
                        norm::batch_norm_backward(&s, (gs, xs), &saved, ws, None, param_grads, nt)
                    })
                });
                (none(), pg)
            };
            let (gw, gb) = match pg {
                Some(p) => (
                    PyArray::from_vec(py, p.weight).into_any(),
                    PyArray::from_vec(py, p.bias).into_any(),
                ),
                None => (none(), none()),
            };
            Ok(PyTuple::new(py, [gi, gw, gb])?)
        }, else => Err(ConvError::internal("not a float dtype").into()))
    })
}
