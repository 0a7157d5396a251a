//! Bindings of the scipy.signal-style functions and of the thread control.

use numpy::{PyArrayMethods, PyReadonlyArray0, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::correlate::{correlate, Boundary, Corr2dParams, Mode, Op};
use crate::dispatch_dtype;
use crate::dtype::DType;
use crate::element::Elem;
use crate::error::ConvError;
use crate::threads;

/// Register this module's functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(correlate2d, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(method_costs, m)?)?;
    m.add_function(wrap_pyfunction!(geometry, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add("MAX_THREADS", threads::MAX_THREADS)?;
    Ok(())
}

fn as_array<'py>(
    func: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> Result<Bound<'py, numpy::PyUntypedArray>, ConvError> {
    obj.cast::<numpy::PyUntypedArray>()
        .cloned()
        .map_err(|_| ConvError::type_(func, format!("{arg} must be a NumPy array")))
}

/// Shared 2-D correlation entry point behind `correlate2d`, `convolve2d` and `corr2d`.
///
/// `in1`, `in2` are 2-D arrays of one supported dtype; `fillvalue` a 0-d array of that dtype;
/// `op` one of "correlate", "convolve", "corr2d"; `func` names the public function in errors.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (in1, in2, fillvalue, mode, boundary, op, func, method="direct"))]
fn correlate2d<'py>(
    py: Python<'py>,
    in1: &Bound<'py, PyAny>,
    in2: &Bound<'py, PyAny>,
    fillvalue: &Bound<'py, PyAny>,
    mode: &str,
    boundary: &str,
    op: &str,
    func: &str,
    method: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let fft = match method {
        "direct" => false,
        "fft" => true,
        _ => {
            return Err(
                ConvError::value(func, format!("internal: unknown method {method:?}")).into(),
            )
        }
    };
    let op = match op {
        "correlate" => Op::Correlate,
        "convolve" => Op::Convolve,
        "corr2d" => Op::Corr2d,
        _ => return Err(ConvError::value(func, format!("internal: unknown op {op:?}")).into()),
    };
    let mode = Mode::parse(func, mode)?;
    let boundary = Boundary::parse(func, boundary)?;
    let a1 = as_array(func, "in1", in1)?;
    let a2 = as_array(func, "in2", in2)?;
    for (name, a) in [("in1", &a1), ("in2", &a2)] {
        if a.ndim() != 2 {
            return Err(ConvError::value(
                func,
                format!("{name} must be a 2-D array, got {} dimension(s)", a.ndim()),
            )
            .into());
        }
    }
    let dt = DType::of(func, "in1", &a1.dtype())?;
    let dt2 = DType::of(func, "in2", &a2.dtype())?;
    if dt != dt2 {
        return Err(ConvError::type_(func, "internal: in1 and in2 must share one dtype").into());
    }
    let s1 = (a1.shape()[0], a1.shape()[1]);
    let s2 = (a2.shape()[0], a2.shape()[1]);
    let params = Corr2dParams::new(func, s1, s2, mode, boundary, op)?;
    let (image, kernel) = if params.swapped {
        (in2, in1)
    } else {
        (in1, in2)
    };
    let nthreads = threads::get_num_threads();
    dispatch_dtype!(dt, T => run_correlate::<T>(py, image, kernel, fillvalue, &params, nthreads, func, fft))
}

#[allow(clippy::too_many_arguments)]
fn run_correlate<'py, T: Elem + numpy::Element>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    kernel: &Bound<'py, PyAny>,
    fillvalue: &Bound<'py, PyAny>,
    params: &Corr2dParams,
    nthreads: usize,
    func: &str,
    fft: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let image: PyReadonlyArray2<T> = image.extract()?;
    let kernel: PyReadonlyArray2<T> = kernel.extract()?;
    let fill: PyReadonlyArray0<T> = fillvalue
        .extract()
        .map_err(|_| ConvError::value(func, "internal: fillvalue must be a 0-d array"))?;
    let fill = fill.as_array()[()];
    let (oh, ow) = params.out_shape();
    // Uninitialised: `correlate` and `correlate_fft` write every element of their output
    // (row tiles, FFT tiles, or zeros for an empty kernel) before Python can see it.
    let out = super::alloc::<T, ndarray::Ix2>(py, &[oh, ow], false)?;
    {
        let mut out_rw = out.readwrite();
        let out_view = out_rw.as_array_mut();
        let img = image.as_array();
        let ker = kernel.as_array();
        if fft {
            py.detach(|| T::correlate_fft(img, ker, params, fill, out_view, nthreads))?;
        } else {
            py.detach(|| correlate(img, ker, params, fill, out_view, nthreads))?;
        }
    }
    Ok(out.into_any())
}

/// The parameters of one correlation from shapes alone (validated like the call itself).
fn shape_params(
    in1_shape: (usize, usize),
    in2_shape: (usize, usize),
    mode: &str,
    op: &str,
    func: &str,
) -> Result<Corr2dParams, ConvError> {
    let op = match op {
        "convolve" => Op::Convolve,
        "corr2d" => Op::Corr2d,
        _ => Op::Correlate,
    };
    let mode = Mode::parse(func, mode)?;
    Corr2dParams::new(func, in1_shape, in2_shape, mode, Boundary::Fill, op)
}

type Pair = (usize, usize);

/// Geometry of one correlation: `(output shape, (top, left), swapped)`. Output `(i, j)` reads
/// the window of input rows from `i - top` and columns from `j - left` (before any boundary
/// extension); `swapped` is scipy's 'valid'-mode exchange of the inputs.
#[pyfunction]
#[pyo3(signature = (in1_shape, in2_shape, mode, op, func))]
fn geometry(
    in1_shape: (usize, usize),
    in2_shape: (usize, usize),
    mode: &str,
    op: &str,
    func: &str,
) -> PyResult<(Pair, Pair, bool)> {
    let p = shape_params(in1_shape, in2_shape, mode, op, func)?;
    Ok((p.out_shape(), p.offsets(), p.swapped))
}

/// Estimated costs `(direct, fft)` of one correlation (validated like the call itself).
#[pyfunction]
#[pyo3(signature = (in1_shape, in2_shape, mode, op, func))]
fn method_costs(
    in1_shape: (usize, usize),
    in2_shape: (usize, usize),
    mode: &str,
    op: &str,
    func: &str,
) -> PyResult<(f64, f64)> {
    let p = shape_params(in1_shape, in2_shape, mode, op, func)?;
    let (oh, ow) = p.out_shape();
    let (kh, kw) = p.kernel;
    let t = threads::get_num_threads();
    Ok((
        crate::fft::direct_cost(oh, ow, kh, kw, t),
        crate::fft::fft_cost(oh, ow, kh, kw, t),
    ))
}

/// Set the number of threads rconv uses (`n >= 1`).
#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    if n < 1 || n > threads::MAX_THREADS as i64 {
        return Err(ConvError::value(
            "set_num_threads",
            format!(
                "n must be an integer in 1..={}, got {n}",
                threads::MAX_THREADS
            ),
        )
        .into());
    }
    threads::set_num_threads(n as usize);
    Ok(())
}

/// The number of threads rconv uses.
#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}
