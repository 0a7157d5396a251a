//! Bindings of `rconv.ndimage`'s three kernels (`correlate1d`, `uniform_filter1d`,
//! `correlate`) on arrays of any rank, strides and element type. The Python package checks
//! the arguments as scipy does and composes the derived filters; these functions take an
//! aligned, native-order input (or `None`: the output, filtered in place) and an output of
//! the same shape that they overwrite.

use numpy::npyffi;
use numpy::{
    dtype, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::convert::Arg;
use super::{extent, named, BResult};
use crate::base::error::ConvError;
use crate::base::threads;
use crate::ndimage::cast::Kind;
use crate::ndimage::params::NdMode;
use crate::ndimage::run::{self, Options, Strided};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: ndimage_correlate1d, ndimage_correlate1d_twice, ndimage_uniform1d, ndimage_correlate }
    Ok(())
}

/// The element type of `a`, or a `TypeError` naming `arg`.
fn kind(arg: &str, a: &Bound<'_, PyUntypedArray>) -> Result<Kind, ConvError> {
    let py = a.py();
    let d = a.dtype();
    macro_rules! kinds {
        ($($t:ty => $k:ident),*) => {$(
            if d.is_equiv_to(&dtype::<$t>(py)) {
                return Ok(Kind::$k);
            }
        )*};
    }
    kinds!(f64 => F64, f32 => F32, u8 => U8, bool => U8, i8 => I8, u16 => U16, i16 => I16,
           u32 => U32, i32 => I32, u64 => U64, i64 => I64);
    Err(ConvError::runtime(format!(
        "{arg}: array type {d} not supported"
    )))
}

/// A view of the array `ob` (called `arg` in messages): aligned, and writeable if `write`.
fn strided(arg: &str, ob: &Bound<'_, PyAny>, write: bool) -> Result<Strided, ConvError> {
    let a = ob
        .cast::<PyUntypedArray>()
        .map_err(|_| ConvError::type_(format!("{arg} must be a NumPy array")))?;
    let k = kind(arg, a)?;
    // SAFETY: `a` is a live ndarray (we hold the GIL); its fields are plain data.
    let (ptr, flags) = unsafe {
        let raw = &*a.as_array_ptr();
        (raw.fields.data as *mut u8, raw.fields.flags)
    };
    if flags & npyffi::NPY_ARRAY_ALIGNED == 0 {
        return Err(ConvError::internal(format!("{arg} is not aligned")));
    }
    if write && flags & npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(ConvError::value(format!("{arg} array is read-only.")));
    }
    // SAFETY: NumPy guarantees every index inside the shape addresses an aligned (checked)
    // element of the dtype; the caller keeps `ob` alive for the call; the Python package
    // passes arrays no one else writes meanwhile, and an output that overlaps no input (checked
    // by `disjoint`).
    Ok(unsafe { Strided::new(ptr, k, a.shape(), a.strides()) })
}

/// The input view, or the output itself (`None`: in place); a given input must not overlap
/// the output (the Python package copies such inputs first).
fn source(input: Option<&Bound<'_, PyAny>>, output: &Bound<'_, PyAny>) -> BResult<Strided> {
    let Some(input) = input else {
        return Ok(strided("output", output, true)?);
    };
    let s = strided("input", input, false)?;
    if let (Ok(i), Ok(o)) = (
        input.cast::<PyUntypedArray>(),
        output.cast::<PyUntypedArray>(),
    ) {
        let ((a, b), (c, d)) = (extent(i), extent(o));
        if a < d && c < b {
            return Err(ConvError::internal("input and output overlap").into());
        }
    }
    Ok(s)
}

/// The options of a call on `output` of `work` units; with several threads, the output's
/// pages are populated first ([`crate::base::mem`]: threads faulting a fresh output at once
/// cost several times the faults).
fn options(
    mode: Arg<NdMode>,
    cval: f64,
    work: usize,
    output: &Bound<'_, PyAny>,
) -> Result<Options, ConvError> {
    let opt = Options {
        mode: mode.get("mode")?,
        cval,
        threads: threads::for_work(work),
    };
    if opt.threads > 1 {
        if let Ok(o) = output.cast::<PyUntypedArray>() {
            let (lo, hi) = extent(o);
            crate::base::mem::prefault(lo as *const u8, hi - lo);
        }
    }
    Ok(opt)
}

/// `correlate1d` of `input` (or of `output`, in place) into `output` along `axis`.
#[pyfunction]
#[pyo3(signature = (input, output, weights, axis, mode, cval, origin, *, name = "correlate1d"))]
#[allow(clippy::too_many_arguments)]
fn ndimage_correlate1d(
    py: Python<'_>,
    input: Option<Bound<'_, PyAny>>,
    output: Bound<'_, PyAny>,
    weights: PyReadonlyArray1<'_, f64>,
    axis: usize,
    mode: Arg<NdMode>,
    cval: f64,
    origin: i64,
    name: &str,
) -> PyResult<()> {
    named(name, || {
        let dst = strided("output", &output, true)?;
        let src = source(input.as_ref(), &output)?;
        let w = weights
            .as_slice()
            .map_err(|_| ConvError::internal("weights are not contiguous"))?;
        let n: usize = dst.shape().iter().product();
        let opt = options(mode, cval, n.saturating_mul(w.len()), &output)?;
        py.detach(|| run::correlate1d(&src, &dst, axis, w, origin, opt))?;
        Ok(())
    })
}

/// `correlate1d` of `input` (or of `output`, in place) with `w1` along `axis1`, then of that
/// result (stored in `output`'s type) with `w2` along `axis2`, into `output`.
#[pyfunction]
#[pyo3(signature = (input, output, w1, axis1, mode1, w2, axis2, mode2, cval, *, name = "correlate1d"))]
#[allow(clippy::too_many_arguments)]
fn ndimage_correlate1d_twice(
    py: Python<'_>,
    input: Option<Bound<'_, PyAny>>,
    output: Bound<'_, PyAny>,
    w1: PyReadonlyArray1<'_, f64>,
    axis1: usize,
    mode1: Arg<NdMode>,
    w2: PyReadonlyArray1<'_, f64>,
    axis2: usize,
    mode2: Arg<NdMode>,
    cval: f64,
    name: &str,
) -> PyResult<()> {
    named(name, || {
        let dst = strided("output", &output, true)?;
        let src = source(input.as_ref(), &output)?;
        let contiguous = |w: &PyReadonlyArray1<'_, f64>| {
            w.as_slice()
                .map(<[f64]>::to_vec)
                .map_err(|_| ConvError::internal("weights are not contiguous"))
        };
        let (a, b) = (contiguous(&w1)?, contiguous(&w2)?);
        let n: usize = dst.shape().iter().product();
        let opt = options(mode1, cval, n.saturating_mul(a.len() + b.len()), &output)?;
        let m2 = mode2.get("mode")?;
        py.detach(|| {
            run::correlate1d_twice(
                &src,
                &dst,
                (axis1, &a, 0, opt.mode),
                (axis2, &b, 0, m2),
                cval,
                opt.threads,
            )
        })?;
        Ok(())
    })
}

/// `uniform_filter1d` of `input` (or of `output`, in place) into `output` along `axis`.
#[pyfunction]
#[pyo3(signature = (input, output, size, axis, mode, cval, origin, *, name = "uniform_filter1d"))]
#[allow(clippy::too_many_arguments)]
fn ndimage_uniform1d(
    py: Python<'_>,
    input: Option<Bound<'_, PyAny>>,
    output: Bound<'_, PyAny>,
    size: usize,
    axis: usize,
    mode: Arg<NdMode>,
    cval: f64,
    origin: i64,
    name: &str,
) -> PyResult<()> {
    named(name, || {
        let dst = strided("output", &output, true)?;
        let src = source(input.as_ref(), &output)?;
        let n: usize = dst.shape().iter().product();
        let opt = options(mode, cval, n.saturating_mul(4), &output)?;
        py.detach(|| run::uniform1d(&src, &dst, axis, size, origin, opt))?;
        Ok(())
    })
}

/// `correlate` of `input` with `weights` (any rank, C order) into `output`, which must not
/// overlap it.
#[pyfunction]
#[pyo3(signature = (input, output, weights, mode, cval, origins, *, name = "correlate"))]
#[allow(clippy::too_many_arguments)]
fn ndimage_correlate(
    py: Python<'_>,
    input: Bound<'_, PyAny>,
    output: Bound<'_, PyAny>,
    weights: Bound<'_, PyAny>,
    mode: Arg<NdMode>,
    cval: f64,
    origins: Vec<i64>,
    name: &str,
) -> PyResult<()> {
    named(name, || {
        let dst = strided("output", &output, true)?;
        let src = source(Some(&input), &output)?;
        let wa = weights
            .cast::<numpy::PyArrayDyn<f64>>()
            .map_err(|_| ConvError::internal("weights must be a float64 array"))?
            .try_readonly()
            .map_err(|_| ConvError::internal("weights are being written"))?;
        let kshape = wa.shape().to_vec();
        let w = wa
            .as_slice()
            .map_err(|_| ConvError::internal("weights are not contiguous"))?;
        let n: usize = dst.shape().iter().product();
        let opt = options(mode, cval, n.saturating_mul(w.len()), &output)?;
        py.detach(|| run::correlate(&src, &dst, &kshape, w, &origins, opt))?;
        Ok(())
    })
}
