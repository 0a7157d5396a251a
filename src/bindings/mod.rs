//! The binding layer: NumPy arrays in, NumPy arrays out.
//!
//! - [`args`]: the options of each op family, parsed into the core's enums and args structs;
//! - [`dtype`]: the dtypes, and the one macro that dispatches on them;
//! - [`signal`], [`conv`], [`pool`], [`activation`], [`linear`], [`threads`]: one file per
//!   domain.
//!
//! Every compute call releases the GIL (`py.detach`). [`ConvError`] maps to `ValueError` and
//! `TypeError` (the user's input) or `RuntimeError` (a broken invariant of rconv).

pub mod activation;
pub mod args;
pub mod conv;
pub mod dtype;
pub mod linear;
pub mod pool;
pub mod signal;
pub mod threads;

use numpy::npyffi::{self, npy_intp, NPY_ARRAY_C_CONTIGUOUS, PY_ARRAY_API};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray, PyUntypedArray,
};
use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::base::error::ConvError;

impl From<ConvError> for PyErr {
    fn from(e: ConvError) -> PyErr {
        match e {
            ConvError::Value(m) => PyValueError::new_err(m),
            ConvError::Type(m) => PyTypeError::new_err(m),
            ConvError::Internal(m) => PyRuntimeError::new_err(m),
        }
    }
}

/// A new C-contiguous array of `shape`, zero-filled or (with `zeroed == false`) uninitialised
/// for outputs the kernels overwrite entirely. Allocated through NumPy's C API, so that a
/// shape NumPy cannot allocate raises its `MemoryError`/`ValueError` instead of a panic.
pub(crate) fn new_array<'py, T: Element, const N: usize>(
    py: Python<'py>,
    func: &str,
    shape: [usize; N],
    zeroed: bool,
) -> PyResult<Bound<'py, PyArray<T, ndarray::Dim<[usize; N]>>>>
where
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    let any = new_array_dyn::<T>(py, func, &shape, zeroed)?;
    // SAFETY: `any` is a new array of dtype T with exactly N dimensions.
    Ok(unsafe { any.into_any().cast_into_unchecked() })
}

/// [`new_array`] of any rank.
pub(crate) fn new_array_dyn<'py, T: Element>(
    py: Python<'py>,
    func: &str,
    shape: &[usize],
    zeroed: bool,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    crate::base::error::check_shape(func, shape)?;
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    let nd = dims.len() as i32;
    let descr = T::get_dtype(py).into_dtype_ptr();
    // SAFETY: `dims` holds `nd` valid sizes (checked addressable above), `descr` is a new
    // reference that both calls steal; a null result is turned into the Python error NumPy set.
    let ptr = unsafe {
        if zeroed {
            PY_ARRAY_API.PyArray_Zeros(py, nd, dims.as_mut_ptr(), descr, 0)
        } else {
            PY_ARRAY_API.PyArray_NewFromDescr(
                py,
                npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
                descr,
                nd,
                dims.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                NPY_ARRAY_C_CONTIGUOUS,
                std::ptr::null_mut(),
            )
        }
    };
    if ptr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-null result of these calls is a new reference to an ndarray of dtype T.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// A new zeroed C-contiguous array of `shape`, filled by `f` with the GIL released.
pub(crate) fn with_output<'py, T, F, const N: usize>(
    py: Python<'py>,
    func: &str,
    shape: [usize; N],
    f: F,
) -> PyResult<Bound<'py, PyArray<T, ndarray::Dim<[usize; N]>>>>
where
    T: Element,
    F: FnOnce(&mut [T]) -> Result<(), ConvError> + Send,
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    with_output_in(py, func, shape, Dest::Fresh, f)
}

/// Where an output goes: a new array, or the caller's `out=` array (`name` in messages),
/// which must share no memory with `inputs`.
pub(crate) enum Dest<'a, 'py> {
    Fresh,
    Caller {
        name: &'a str,
        out: &'a Bound<'py, PyAny>,
        inputs: &'a [&'a Bound<'py, PyAny>],
    },
}

impl<'a, 'py> Dest<'a, 'py> {
    /// `out` (if given) as the destination named `name`, checked against `inputs`.
    pub(crate) fn of(
        name: &'a str,
        out: Option<&'a Bound<'py, PyAny>>,
        inputs: &'a [&'a Bound<'py, PyAny>],
    ) -> Self {
        match out {
            None => Dest::Fresh,
            Some(out) => Dest::Caller { name, out, inputs },
        }
    }
}

/// An `N`-dimensional array of `T`.
pub(crate) type ArrayN<'py, T, const N: usize> = Bound<'py, PyArray<T, ndarray::Dim<[usize; N]>>>;

/// The byte range an array's elements span (for overlap checks), empty for no elements.
fn extent(a: &Bound<'_, PyUntypedArray>) -> (usize, usize) {
    // SAFETY: `a` is a live ndarray (we hold the GIL); its data pointer is plain data.
    let base = unsafe { (*a.as_array_ptr()).fields.data } as usize;
    if a.len() == 0 {
        return (base, base);
    }
    let item = a.dtype().itemsize();
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&d, &st) in a.shape().iter().zip(a.strides()) {
        let span = (d as isize - 1) * st;
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    let start = base.wrapping_add_signed(lo);
    (start, base.wrapping_add_signed(hi) + item)
}

/// The caller's `out=` array, checked: a NumPy array of dtype `T` and exactly `shape`,
/// C-contiguous, writeable, sharing no memory with `inputs`, and not borrowed elsewhere.
pub(crate) fn checked_out<'py, T: Element, const N: usize>(
    func: &str,
    name: &str,
    ob: &Bound<'py, PyAny>,
    shape: [usize; N],
    inputs: &[&Bound<'py, PyAny>],
) -> Result<ArrayN<'py, T, N>, ConvError>
where
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    checked_out_dyn::<T>(func, name, ob, &shape, inputs)?
        .cast_into::<PyArray<T, ndarray::Dim<[usize; N]>>>()
        .map_err(|_| ConvError::internal(func, format!("{name} has the wrong rank")))
}

/// [`checked_out`] of any rank.
pub(crate) fn checked_out_dyn<'py, T: Element>(
    func: &str,
    name: &str,
    ob: &Bound<'py, PyAny>,
    shape: &[usize],
    inputs: &[&Bound<'py, PyAny>],
) -> Result<Bound<'py, PyArrayDyn<T>>, ConvError> {
    let py = ob.py();
    let tname = |o: &Bound<'_, PyAny>| {
        o.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let arr = ob.cast::<PyUntypedArray>().map_err(|_| {
        ConvError::type_(
            func,
            format!("{name} must be a NumPy array, got {}", tname(ob)),
        )
    })?;
    let want = T::get_dtype(py);
    if !arr.dtype().is_equiv_to(&want) {
        let msg = format!("{name} must have dtype {want}, got {}", dtype_name(arr));
        return Err(ConvError::type_(func, msg));
    }
    if arr.shape() != shape {
        let tuple = |d: &[usize]| match d {
            [one] => format!("({one},)"),
            _ => format!(
                "({})",
                d.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let msg = format!(
            "{name} must have shape {}, got {}",
            tuple(shape),
            tuple(arr.shape())
        );
        return Err(ConvError::value(func, msg));
    }
    if !arr.is_c_contiguous() {
        return Err(ConvError::value(
            func,
            format!("{name} must be C-contiguous"),
        ));
    }
    // SAFETY: `arr` is a live ndarray (we hold the GIL); its flags field is plain data.
    let flags = unsafe { (*arr.as_array_ptr()).fields.flags };
    if flags & npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(ConvError::value(func, format!("{name} must be writeable")));
    }
    let (lo, hi) = extent(arr);
    for input in inputs {
        if let Ok(a) = input.cast::<PyUntypedArray>() {
            let (ilo, ihi) = extent(a);
            if lo < ihi && ilo < hi {
                let msg = format!("{name} must not share memory with the inputs");
                return Err(ConvError::value(func, msg));
            }
        }
    }
    arr.clone()
        .cast_into::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(func, format!("{name} has the wrong type")))
}

/// [`with_output`] into `dest`: a new zeroed array, or the caller's checked `out=` array
/// (the same array object is returned). `f` must write every element: a caller's array is
/// not zeroed first (that pass would cost what `out=` saves, the first touch of a large
/// output); every kernel behind an `out=` overwrites its output or zeroes it itself.
pub(crate) fn with_output_in<'py, T, F, const N: usize>(
    py: Python<'py>,
    func: &str,
    shape: [usize; N],
    dest: Dest<'_, 'py>,
    f: F,
) -> PyResult<Bound<'py, PyArray<T, ndarray::Dim<[usize; N]>>>>
where
    T: Element,
    F: FnOnce(&mut [T]) -> Result<(), ConvError> + Send,
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    let out = match dest {
        Dest::Fresh => new_array::<T, N>(py, func, shape, true)?,
        Dest::Caller { name, out, inputs } => checked_out::<T, N>(func, name, out, shape, inputs)?,
    };
    {
        let mut rw = out.try_readwrite().map_err(|_| {
            ConvError::value(
                func,
                "out is in use by another call (or is one of its inputs)",
            )
        })?;
        let os = rw
            .as_slice_mut()
            .map_err(|_| ConvError::internal(func, "output is not contiguous"))?;
        // no zeroing of a caller's array: the kernels overwrite every element
        // (tests/test_out.py checks it with NaN-filled arrays)
        py.detach(|| f(os))?;
    }
    Ok(out)
}

/// A new uninitialised 1-D array of `len` elements, and `f` run on it as write-only memory
/// with the GIL released. `f` must write every element (the activation kernels do).
pub(crate) fn with_fresh_1d<'py, T: Element + Send, F>(
    py: Python<'py>,
    func: &str,
    len: usize,
    f: F,
) -> PyResult<Bound<'py, PyArray<T, ndarray::Ix1>>>
where
    F: FnOnce(&mut [std::mem::MaybeUninit<T>]) + Send,
{
    let out = new_array::<T, 1>(py, func, [len], false)?;
    let ptr = out.data() as usize;
    py.detach(|| {
        // SAFETY: `out` is a fresh C-contiguous array of `len` elements that nothing else
        // references until we return it; `MaybeUninit<T>` has no validity requirement, so
        // its uninitialised memory may be viewed (write-only) as `[MaybeUninit<T>]`.
        let s =
            unsafe { std::slice::from_raw_parts_mut(ptr as *mut std::mem::MaybeUninit<T>, len) };
        f(s)
    });
    Ok(out)
}

/// `ob` as a NumPy array, or a `TypeError` naming the argument.
pub(crate) fn untyped<'a, 'py>(
    func: &str,
    arg: &str,
    ob: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyUntypedArray>, ConvError> {
    ob.cast::<PyUntypedArray>()
        .map_err(|_| ConvError::type_(func, format!("{arg} must be a NumPy array")))
}

/// A read-only view of `ob` as an array of `T` with `N` dimensions; the Python layer has
/// already converted it (an internal error otherwise).
pub(crate) fn readonly<'py, T: Element, const N: usize>(
    func: &str,
    arg: &str,
    ob: &Bound<'py, PyAny>,
) -> Result<PyReadonlyArray<'py, T, ndarray::Dim<[usize; N]>>, ConvError>
where
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    let arr = untyped(func, arg, ob)?;
    if arr.ndim() != N {
        return Err(ConvError::value(
            func,
            format!("{arg} must be {N}-D, got {} dimension(s)", arr.ndim()),
        ));
    }
    let any: &Bound<'py, PyArrayDyn<T>> = arr
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(func, format!("{arg} has dtype {}", dtype_name(arr))))?;
    let fixed = any
        .clone()
        .cast_into::<PyArray<T, ndarray::Dim<[usize; N]>>>()
        .map_err(|_| ConvError::internal(func, format!("{arg} has the wrong rank")))?;
    fixed
        .try_readonly()
        .map_err(|_| ConvError::internal(func, format!("{arg} is being written elsewhere")))
}

/// [`readonly`] of any rank.
pub(crate) fn readonly_dyn<'py, T: Element>(
    func: &str,
    arg: &str,
    ob: &Bound<'py, PyAny>,
) -> Result<numpy::PyReadonlyArrayDyn<'py, T>, ConvError> {
    let arr = untyped(func, arg, ob)?;
    arr.cast::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(func, format!("{arg} has dtype {}", dtype_name(arr))))?
        .try_readonly()
        .map_err(|_| ConvError::internal(func, format!("{arg} is being written elsewhere")))
}

fn dtype_name(arr: &Bound<'_, PyUntypedArray>) -> String {
    arr.dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Register every function of the compiled module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    signal::register(m)?;
    conv::register(m)?;
    pool::register(m)?;
    activation::register(m)?;
    linear::register(m)?;
    threads::register(m)
}
