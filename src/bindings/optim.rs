//! Bindings of the optimizer steps: lists of NumPy arrays (a model's parameters, their
//! gradients and the optimizer's state), updated in place by one compiled call.
//!
//! Everything is checked before the first element is written: the lists' lengths, every
//! array's type, dtype (float32 or float64; a parameter's gradient and state have its
//! dtype, and one call may mix float32 and float64 parameters), shape, layout
//! (C-contiguous, aligned), writeability, and that no array the step writes shares memory
//! with any other array of the call; every array is borrowed before the first is written.
//! So a step either updates every parameter or raises before touching one.

use numpy::npyffi::{NPY_ARRAY_ALIGNED, NPY_ARRAY_WRITEABLE};
use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::conv::real_dtype;
use super::dtype::DType;
use super::{dtype_name, extent, named, new_array, slice_mut, tuple, untyped, BResult};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::dispatch;
use crate::nn::optim::{self, AdamHyper, AdamParam, SgdHyper, SgdParam};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: sgd_step, adam_step }
    Ok(())
}

/// The items of a list or tuple (`arg` in messages).
fn items<'py>(arg: &str, ob: &Bound<'py, PyAny>) -> Result<Vec<Bound<'py, PyAny>>, ConvError> {
    if let Ok(l) = ob.cast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = ob.cast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    Err(ConvError::type_(format!(
        "{arg} must be a list of NumPy arrays"
    )))
}

/// A list of the same length as `params` (`arg` in messages).
fn items_like<'py>(
    arg: &str,
    ob: &Bound<'py, PyAny>,
    n: usize,
) -> Result<Vec<Bound<'py, PyAny>>, ConvError> {
    let v = items(arg, ob)?;
    if v.len() != n {
        return Err(ConvError::value(format!(
            "{arg} has {} entries, params {n}",
            v.len()
        )));
    }
    Ok(v)
}

/// `arg[i]`: an array of the call, as messages name it (formatted only for a message).
#[derive(Clone, Copy)]
struct Label(&'static str, usize);

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// The thread-count heuristic's work for a step over `bytes` of parameters (the element
/// size counts: float64 moves twice the memory and divides at half the rate). Measured on
/// the 2-core host (an AMD Zen 5 VM), alternating blocks with 20 ms pauses (the pool's
/// workers asleep when a step starts, as after a training loop's Python work): a second
/// thread paid for its wake-up from about 400k float32 elements for Adam (two divisions
/// and a square root per element), and for SGD (memory-bound) not below 2M elements;
/// hence 384k and 2M.
fn work(bytes: usize, adam: bool) -> usize {
    bytes / if adam { 24 } else { 128 }
}

/// The byte range of one array of the call, for the overlap check.
struct Span {
    lo: usize,
    hi: usize,
    label: Label,
    /// The step writes it (a parameter or state), rather than only reading it (a gradient).
    write: bool,
}

/// The checks of one call's arrays, and their byte ranges.
#[derive(Default)]
struct Checker {
    spans: Vec<Span>,
}

impl Checker {
    /// C-contiguous and aligned, writeable if `write`; records the byte range.
    fn layout(
        &mut self,
        label: Label,
        arr: &Bound<'_, PyUntypedArray>,
        write: bool,
    ) -> Result<(), ConvError> {
        // SAFETY: `arr` is a live ndarray (we hold the GIL); its flags field is plain data.
        let flags = unsafe { (*arr.as_array_ptr()).fields.flags };
        if !arr.is_c_contiguous() || flags & NPY_ARRAY_ALIGNED == 0 {
            return Err(ConvError::value(format!(
                "{label} must be C-contiguous and aligned"
            )));
        }
        if write && flags & NPY_ARRAY_WRITEABLE == 0 {
            return Err(ConvError::value(format!("{label} must be writeable")));
        }
        let (lo, hi) = extent(arr);
        self.spans.push(Span {
            lo,
            hi,
            label,
            write,
        });
        Ok(())
    }

    /// `params[i]`: a float32 or float64 array the step writes. Returns its dtype.
    fn param(&mut self, i: usize, ob: &Bound<'_, PyAny>) -> Result<DType, ConvError> {
        let arr = match ob.cast::<PyUntypedArray>() {
            Ok(a) => a,
            Err(_) => {
                return Err(ConvError::type_(format!(
                    "params[{i}] must be a NumPy array"
                )))
            }
        };
        let dt = match DType::from_descr(&arr.dtype()) {
            Some(dt) if dt.is_real_float() => dt,
            _ => real_dtype(&Label("params", i).to_string(), ob)?, // the message
        };
        self.layout(Label("params", i), arr, true)?;
        Ok(dt)
    }

    /// An array (`label`) of parameter `i`'s dtype `dt` and shape `shape`.
    fn like(
        &mut self,
        label: Label,
        ob: &Bound<'_, PyAny>,
        (i, dt, shape): (usize, DType, &[usize]),
        write: bool,
    ) -> Result<(), ConvError> {
        let Ok(arr) = ob.cast::<PyUntypedArray>() else {
            return Err(ConvError::type_(format!("{label} must be a NumPy array")));
        };
        if DType::from_descr(&arr.dtype()) != Some(dt) {
            return Err(ConvError::type_(format!(
                "{label} has dtype {}, params[{i}] {}",
                dtype_name(arr),
                float_name(dt)
            )));
        }
        if arr.shape() != shape {
            return Err(ConvError::value(format!(
                "{label} has shape {}, params[{i}] {}",
                tuple(arr.shape()),
                tuple(shape)
            )));
        }
        self.layout(label, arr, write)
    }

    /// No array the step writes may share memory with another array of the call.
    fn disjoint(&self) -> Result<(), ConvError> {
        let shares = |a: &Span, b: &Span| {
            ConvError::value(format!("{} shares memory with {}", a.label, b.label))
        };
        let mut w: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.write && s.lo < s.hi)
            .collect();
        w.sort_by_key(|s| s.lo);
        for pair in w.windows(2) {
            if pair[1].lo < pair[0].hi {
                return Err(shares(pair[1], pair[0]));
            }
        }
        // the written ranges are disjoint and sorted: their ends are sorted too
        for r in self.spans.iter().filter(|s| !s.write && s.lo < s.hi) {
            let k = w.partition_point(|s| s.hi <= r.lo);
            if k < w.len() && w[k].lo < r.hi {
                return Err(shares(r, w[k]));
            }
        }
        Ok(())
    }
}

fn float_name(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "float32",
        _ => "float64",
    }
}

/// The parameters and gradients of a call, checked; returns the parameters' dtypes.
fn check_params(
    ck: &mut Checker,
    params: &[Bound<'_, PyAny>],
    grads: &[Bound<'_, PyAny>],
) -> Result<Vec<DType>, ConvError> {
    params
        .iter()
        .zip(grads)
        .enumerate()
        .map(|(i, (p, g))| {
            let dt = ck.param(i, p)?;
            let shape = untyped("params", p)?.shape();
            ck.like(Label("grads", i), g, (i, dt, shape), false)?;
            Ok(dt)
        })
        .collect()
}

/// A state list (`arg`), checked against the parameters; `None` entries stay `None`.
fn check_state(
    ck: &mut Checker,
    arg: &'static str,
    obs: &[Bound<'_, PyAny>],
    params: &[Bound<'_, PyAny>],
    dts: &[DType],
) -> Result<(), ConvError> {
    for (i, (ob, p)) in obs.iter().zip(params).enumerate() {
        if !ob.is_none() {
            let shape = untyped("params", p)?.shape();
            ck.like(Label(arg, i), ob, (i, dts[i], shape), true)?;
        }
    }
    Ok(())
}

/// The state list with every `None` replaced by a new zeroed array like its parameter.
fn fill<'py>(
    py: Python<'py>,
    obs: Vec<Bound<'py, PyAny>>,
    params: &[Bound<'py, PyAny>],
    dts: &[DType],
) -> BResult<Vec<Bound<'py, PyAny>>> {
    obs.into_iter()
        .zip(params)
        .zip(dts)
        .map(|((ob, p), &dt)| {
            if !ob.is_none() {
                return Ok(ob);
            }
            let shape = untyped("params", p)?.shape().to_vec();
            dispatch!(real: dt, T => Ok(new_array::<T>(py, &shape, true)?.into_any()),
                else => Err(ConvError::internal("not a float dtype").into()))
        })
        .collect()
}

/// The arrays of the parameters of one dtype `T`, borrowed (parameters and state for
/// writing, gradients for reading).
struct Group<'py, T: Element> {
    /// The parameters' indices in the call.
    idx: Vec<usize>,
    params: Vec<PyReadwriteArrayDyn<'py, T>>,
    grads: Vec<PyReadonlyArrayDyn<'py, T>>,
    /// One list per state list of the call.
    state: Vec<Vec<PyReadwriteArrayDyn<'py, T>>>,
}

fn typed<'a, 'py, T: Element>(
    label: Label,
    ob: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyArrayDyn<T>>, ConvError> {
    ob.cast::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(format!("{label} has the wrong dtype")))
}

impl<'py, T: Element> Group<'py, T> {
    /// Borrows the parameters of dtype `dt` (the dtype of `T`) with their gradients and
    /// the state lists `state` (named `names`).
    fn borrow(
        dt: DType,
        dts: &[DType],
        (params, grads): (&[Bound<'py, PyAny>], &[Bound<'py, PyAny>]),
        state: &[(&'static str, &[Bound<'py, PyAny>])],
    ) -> Result<Self, ConvError> {
        let idx: Vec<usize> = (0..dts.len()).filter(|&i| dts[i] == dt).collect();
        let rw = |arg: &'static str, obs: &[Bound<'py, PyAny>]| {
            idx.iter()
                .map(|&i| {
                    let label = Label(arg, i);
                    typed::<T>(label, &obs[i])?
                        .try_readwrite()
                        .map_err(|_| ConvError::value(format!("{label} is in use by another call")))
                })
                .collect::<Result<Vec<_>, ConvError>>()
        };
        let params_rw = rw("params", params)?;
        let grads_ro = idx
            .iter()
            .map(|&i| {
                let label = Label("grads", i);
                typed::<T>(label, &grads[i])?
                    .try_readonly()
                    .map_err(|_| ConvError::value(format!("{label} is in use by another call")))
            })
            .collect::<Result<Vec<_>, ConvError>>()?;
        let state = state
            .iter()
            .map(|(arg, obs)| rw(arg, obs))
            .collect::<Result<Vec<_>, ConvError>>()?;
        Ok(Group {
            idx,
            params: params_rw,
            grads: grads_ro,
            state,
        })
    }

    /// The element count of the group.
    fn len(&self) -> usize {
        self.params.iter().map(|p| p.len()).sum()
    }

    /// The parameters' and gradients' elements, and those of every state list.
    #[allow(clippy::type_complexity)]
    fn slices(&mut self) -> Result<(Vec<&mut [T]>, Vec<&[T]>, Vec<Vec<&mut [T]>>), ConvError> {
        let ps = self
            .params
            .iter_mut()
            .map(slice_mut)
            .collect::<Result<Vec<_>, _>>()?;
        let gs = self
            .grads
            .iter()
            .map(|g| {
                g.as_slice()
                    .map_err(|_| ConvError::internal("gradient is not contiguous"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let st = self
            .state
            .iter_mut()
            .map(|l| l.iter_mut().map(slice_mut).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ps, gs, st))
    }
}

/// The SGD items of one group (`fresh[i]`: parameter `i`'s buffer is new).
fn sgd_items<'a, T: Element>(
    g: &'a mut Group<'_, T>,
    fresh: &[bool],
) -> Result<Vec<SgdParam<'a, T>>, ConvError> {
    let idx = g.idx.clone();
    let (ps, gs, st) = g.slices()?;
    let mut bufs: Vec<Option<&mut [T]>> = match st.into_iter().next() {
        Some(b) => b.into_iter().map(Some).collect(),
        None => ps.iter().map(|_| None).collect(),
    };
    Ok(ps
        .into_iter()
        .zip(gs)
        .zip(bufs.iter_mut().map(Option::take))
        .zip(idx)
        .map(|(((param, grad), buf), i)| SgdParam {
            param,
            grad,
            buf,
            fresh: fresh[i],
        })
        .collect())
}

/// One `torch.optim.SGD` step (foreach=False) over lists of arrays, in place: `params[i]`
/// updated with `grads[i]`; with `momentum != 0`, `bufs[i]` is the momentum buffer, or
/// `None` on the parameter's first step (a new buffer set to its gradient). Returns the
/// buffers (`None` without momentum).
#[pyfunction]
#[pyo3(signature = (params, grads, bufs, lr, momentum, dampening, weight_decay, nesterov, name=None))]
#[allow(clippy::too_many_arguments)]
fn sgd_step<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
    grads: &Bound<'py, PyAny>,
    bufs: Option<&Bound<'py, PyAny>>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    name: Option<&str>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    named(name.unwrap_or("sgd_step"), || {
        let h = SgdHyper {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        };
        let params = items("params", params)?;
        let grads = items_like("grads", grads, params.len())?;
        let bufs = match (bufs, momentum != 0.0) {
            (Some(b), true) => Some(items_like("bufs", b, params.len())?),
            (None, false) => None,
            (Some(_), false) => {
                return Err(ConvError::value("bufs must be None when momentum == 0").into())
            }
            (None, true) => {
                return Err(ConvError::value("bufs must be a list when momentum != 0").into())
            }
        };
        let mut ck = Checker::default();
        let dts = check_params(&mut ck, &params, &grads)?;
        if let Some(b) = &bufs {
            check_state(&mut ck, "bufs", b, &params, &dts)?;
        }
        ck.disjoint()?;
        let fresh: Vec<bool> = match &bufs {
            Some(b) => b.iter().map(|b| b.is_none()).collect(),
            None => vec![false; params.len()],
        };
        let bufs = bufs.map(|b| fill(py, b, &params, &dts)).transpose()?;
        let state: Vec<(&'static str, &[Bound<'py, PyAny>])> = match &bufs {
            Some(b) => vec![("bufs", b.as_slice())],
            None => vec![],
        };
        {
            let pg = (params.as_slice(), grads.as_slice());
            let mut g32 = Group::<f32>::borrow(DType::F32, &dts, pg, &state)?;
            let mut g64 = Group::<f64>::borrow(DType::F64, &dts, pg, &state)?;
            let nt = threads::for_work(work(4 * g32.len() + 8 * g64.len(), false));
            let (i32s, i64s) = (sgd_items(&mut g32, &fresh)?, sgd_items(&mut g64, &fresh)?);
            py.detach(|| {
                threads::run(nt, || {
                    optim::sgd_step(i32s, &h, nt)?;
                    optim::sgd_step(i64s, &h, nt)
                })
            })?;
        }
        Ok(bufs.map(|b| PyList::new(py, b)).transpose()?)
    })
}

/// The Adam items of one group (`steps[i]`: parameter `i`'s step number).
fn adam_items<'a, T: Element>(
    g: &'a mut Group<'_, T>,
    steps: &[u64],
) -> Result<Vec<AdamParam<'a, T>>, ConvError> {
    let idx = g.idx.clone();
    let (ps, gs, st) = g.slices()?;
    let mut st = st.into_iter();
    let (ms, vs) = match (st.next(), st.next()) {
        (Some(m), Some(v)) => (m, v),
        _ => return Err(ConvError::internal("Adam needs two state lists")),
    };
    Ok(ps
        .into_iter()
        .zip(gs)
        .zip(ms.into_iter().zip(vs))
        .zip(idx)
        .map(|(((param, grad), (exp_avg, exp_avg_sq)), i)| AdamParam {
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            step: steps[i],
        })
        .collect())
}

/// One `torch.optim.Adam` step (foreach=False, no amsgrad) over lists of arrays, in place;
/// with `decoupled`, AdamW's. `exp_avgs[i]`/`exp_avg_sqs[i]` are the moment estimates of
/// `params[i]` (`None`: new zeroed ones), `steps[i]` the step number this update makes
/// (>= 1). Returns `(exp_avgs, exp_avg_sqs)`.
#[pyfunction]
#[pyo3(signature = (params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay, decoupled, name=None))]
#[allow(clippy::too_many_arguments)]
fn adam_step<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
    grads: &Bound<'py, PyAny>,
    exp_avgs: &Bound<'py, PyAny>,
    exp_avg_sqs: &Bound<'py, PyAny>,
    steps: &Bound<'py, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    name: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    named(name.unwrap_or("adam_step"), || {
        let h = AdamHyper {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
        };
        let params = items("params", params)?;
        let n = params.len();
        let grads = items_like("grads", grads, n)?;
        let ms = items_like("exp_avgs", exp_avgs, n)?;
        let vs = items_like("exp_avg_sqs", exp_avg_sqs, n)?;
        let steps = items_like("steps", steps, n)?
            .iter()
            .enumerate()
            .map(|(i, k)| match k.extract::<u64>() {
                Ok(k) if k >= 1 => Ok(k),
                _ => Err(ConvError::value(format!(
                    "steps[{i}] must be an integer >= 1"
                ))),
            })
            .collect::<Result<Vec<u64>, ConvError>>()?;
        let mut ck = Checker::default();
        let dts = check_params(&mut ck, &params, &grads)?;
        check_state(&mut ck, "exp_avgs", &ms, &params, &dts)?;
        check_state(&mut ck, "exp_avg_sqs", &vs, &params, &dts)?;
        ck.disjoint()?;
        let ms = fill(py, ms, &params, &dts)?;
        let vs = fill(py, vs, &params, &dts)?;
        {
            let pg = (params.as_slice(), grads.as_slice());
            let state = [("exp_avgs", ms.as_slice()), ("exp_avg_sqs", vs.as_slice())];
            let mut g32 = Group::<f32>::borrow(DType::F32, &dts, pg, &state)?;
            let mut g64 = Group::<f64>::borrow(DType::F64, &dts, pg, &state)?;
            let nt = threads::for_work(work(4 * g32.len() + 8 * g64.len(), true));
            let (i32s, i64s) = (adam_items(&mut g32, &steps)?, adam_items(&mut g64, &steps)?);
            py.detach(|| {
                threads::run(nt, || {
                    optim::adam_step(i32s, &h, nt)?;
                    optim::adam_step(i64s, &h, nt)
                })
            })?;
        }
        Ok(PyTuple::new(
            py,
            [PyList::new(py, ms)?, PyList::new(py, vs)?],
        )?)
    })
}
