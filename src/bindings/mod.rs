//! The binding layer: NumPy arrays in, NumPy arrays out.
//!
//! - [`convert`]: the one conversion module: every option type (`Pair`, `Padding`, the mode,
//!   boundary, method and padding-mode enums, axes, shapes) implements `FromPyObject` there,
//!   once; each compiled function takes its options as named parameters of those types;
//! - [`dtype`]: the dtypes, and the one macro that dispatches on them;
//! - [`signal`], [`ndimage`], [`conv`], [`pool`], [`activation`], [`linear`], [`norm`], [`loss`],
//!   [`optim`], [`threads`]: one file per domain.
//!
//! Every compute call releases the GIL (`py.detach`). A function's body returns
//! [`BindError`]; [`named`] attaches the calling function's name (each compiled function takes
//! `name=`, defaulting to its public name) and maps [`ConvError`] to `ValueError` and
//! `TypeError` (the user's input) or `RuntimeError` (a broken invariant of rconv, or a user
//! error that the reference raises as one). The one way to write an output, a new array or
//! the caller's `out=`, is [`Dest`] with [`with_output`].

/// Register the `#[pyfunction]`s named in the braces on the module `m`.
macro_rules! add_functions {
    ($m:ident: $($f:ident),+ $(,)?) => {{
        $($m.add_function(pyo3::wrap_pyfunction!($f, $m)?)?;)+
    }};
}

pub mod activation;
pub mod conv;
pub mod convert;
pub mod dtype;
pub mod linear;
pub mod loss;
pub mod ndimage;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod signal;
pub mod threads;

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray, PyUntypedArray,
};
use numpy::{PyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::base::error::ConvError;

/// What a binding's body can fail with: the core's error, still without the function's name,
/// or a Python error raised on the way (NumPy's `MemoryError`), passed on as it is.
pub(crate) enum BindError {
    Conv(ConvError),
    Py(PyErr),
}

impl From<ConvError> for BindError {
    fn from(e: ConvError) -> Self {
        BindError::Conv(e)
    }
}

impl From<PyErr> for BindError {
    fn from(e: PyErr) -> Self {
        BindError::Py(e)
    }
}

impl BindError {
    /// The Python exception, its message prefixed with the calling function's name.
    pub(crate) fn named(self, func: &str) -> PyErr {
        match self {
            BindError::Py(e) => e,
            BindError::Conv(e) => {
                let msg = format!("{func}: {}", e.message());
                match e {
                    ConvError::Value(_) => PyValueError::new_err(msg),
                    ConvError::Type(_) => PyTypeError::new_err(msg),
                    ConvError::Runtime(_) | ConvError::Internal(_) => PyRuntimeError::new_err(msg),
                }
            }
        }
    }
}

/// A binding body's result.
pub(crate) type BResult<T> = Result<T, BindError>;

/// Run a binding's body and name its errors after `func`: the one place where a function's
/// name is attached to an error.
#[inline]
pub(crate) fn named<T>(func: &str, body: impl FnOnce() -> BResult<T>) -> PyResult<T> {
    body().map_err(|e| e.named(func))
}

/// A new C-contiguous array of `shape`, zero-filled or (with `zeroed == false`) uninitialised
/// for outputs the kernels overwrite entirely. Allocated through NumPy's C API, so that a
/// shape NumPy cannot allocate raises its `MemoryError`/`ValueError` instead of a panic.
pub(crate) fn new_array<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
    zeroed: bool,
) -> BResult<Bound<'py, PyArrayDyn<T>>> {
    crate::base::error::check_shape(shape)?;
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
                // 0: C order (with no data, any nonzero flags make a Fortran-ordered array)
                0,
                std::ptr::null_mut(),
            )
        }
    };
    if ptr.is_null() {
        return Err(PyErr::fetch(py).into());
    }
    // SAFETY: a non-null result of these calls is a new reference to an ndarray of dtype T.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// Where an output goes: a new zeroed array, or the caller's `out=` array, called `name` in
/// messages (`"out"`, `"out[1]"`), which must share no memory with `inputs`. Every `out=` of
/// the compiled module goes through here, with one set of messages.
pub(crate) struct Dest<'a, 'py> {
    name: &'a str,
    out: Option<&'a Bound<'py, PyAny>>,
    inputs: &'a [&'a Bound<'py, PyAny>],
}

impl<'a, 'py> Dest<'a, 'py> {
    /// A new array.
    pub(crate) fn fresh() -> Self {
        Dest {
            name: "out",
            out: None,
            inputs: &[],
        }
    }

    /// `out` (if given) as the destination named `name`, checked against `inputs`.
    pub(crate) fn of(
        name: &'a str,
        out: Option<&'a Bound<'py, PyAny>>,
        inputs: &'a [&'a Bound<'py, PyAny>],
    ) -> Self {
        Dest { name, out, inputs }
    }

    /// Check the caller's array, if any, for an output of `shape` and dtype `T`, without
    /// writing (so that a call with several destinations refuses before writing any).
    pub(crate) fn check<T: Element>(&self, shape: &[usize]) -> BResult<()> {
        if let Some(out) = self.out {
            checked_out::<T>(self.name, out, shape, self.inputs)?;
        }
        Ok(())
    }

    /// The array to write: a new zeroed one, or the caller's, checked.
    pub(crate) fn array<T: Element>(
        &self,
        py: Python<'py>,
        shape: &[usize],
    ) -> BResult<Bound<'py, PyArrayDyn<T>>> {
        self.array_init(py, shape, true)
    }

    /// [`Dest::array`], a new one zeroed only if `zeroed`.
    fn array_init<T: Element>(
        &self,
        py: Python<'py>,
        shape: &[usize],
        zeroed: bool,
    ) -> BResult<Bound<'py, PyArrayDyn<T>>> {
        match self.out {
            None => new_array::<T>(py, shape, zeroed),
            Some(out) => Ok(checked_out::<T>(self.name, out, shape, self.inputs)?),
        }
    }
}

/// The byte range an array's elements span (for overlap checks), empty for no elements.
pub(crate) fn extent(a: &Bound<'_, PyUntypedArray>) -> (usize, usize) {
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

/// `(2, 3)` as Python prints a shape.
pub(crate) fn tuple(d: &[usize]) -> String {
    match d {
        [one] => format!("({one},)"),
        _ => {
            let items: Vec<String> = d.iter().map(|v| v.to_string()).collect();
            format!("({})", items.join(", "))
        }
    }
}

/// The caller's `out=` array, checked: a NumPy array of dtype `T` and exactly `shape`,
/// C-contiguous, writeable, sharing no memory with `inputs`.
fn checked_out<'py, T: Element>(
    name: &str,
    ob: &Bound<'py, PyAny>,
    shape: &[usize],
    inputs: &[&Bound<'py, PyAny>],
) -> Result<Bound<'py, PyArrayDyn<T>>, ConvError> {
    let py = ob.py();
    let arr = ob.cast::<PyUntypedArray>().map_err(|_| {
        let t = ob
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        ConvError::type_(format!("{name} must be a NumPy array, got {t}"))
    })?;
    let want = T::get_dtype(py);
    if !arr.dtype().is_equiv_to(&want) {
        let msg = format!("{name} must have dtype {want}, got {}", dtype_name(arr));
        return Err(ConvError::type_(msg));
    }
    if arr.shape() != shape {
        let msg = format!(
            "{name} must have shape {}, got {}",
            tuple(shape),
            tuple(arr.shape())
        );
        return Err(ConvError::value(msg));
    }
    if !arr.is_c_contiguous() {
        return Err(ConvError::value(format!("{name} must be C-contiguous")));
    }
    // SAFETY: `arr` is a live ndarray (we hold the GIL); its flags field is plain data.
    let flags = unsafe { (*arr.as_array_ptr()).fields.flags };
    if flags & npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(ConvError::value(format!("{name} must be writeable")));
    }
    let (lo, hi) = extent(arr);
    for input in inputs {
        if let Ok(a) = input.cast::<PyUntypedArray>() {
            let (ilo, ihi) = extent(a);
            if lo < ihi && ilo < hi {
                let msg = format!("{name} must not share memory with the inputs");
                return Err(ConvError::value(msg));
            }
        }
    }
    arr.clone()
        .cast_into::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(format!("{name} has the wrong type")))
}

/// Exclusive access to an output array (`name` in messages).
pub(crate) fn writable<'py, T: Element>(
    arr: &Bound<'py, PyArrayDyn<T>>,
    name: &str,
) -> Result<PyReadwriteArrayDyn<'py, T>, ConvError> {
    arr.try_readwrite().map_err(|_| {
        ConvError::value(format!(
            "{name} is in use by another call (or is one of its inputs)"
        ))
    })
}

/// The elements of a C-contiguous output.
pub(crate) fn slice_mut<'a, T: Element>(
    rw: &'a mut PyReadwriteArrayDyn<'_, T>,
) -> Result<&'a mut [T], ConvError> {
    rw.as_slice_mut()
        .map_err(|_| ConvError::internal("output is not contiguous"))
}

/// An output of `shape` written by `f` into `dest` with the GIL released: a new zeroed
/// array, or the caller's checked `out=` array (the same object is returned). `f` must write
/// every element: a caller's array is not zeroed first (that pass would cost what `out=`
/// saves, the first touch of a large output); every kernel behind an `out=` overwrites its
/// output or zeroes it itself (tests/api/test_out.py checks it with NaN-filled arrays).
pub(crate) fn with_output<'py, T, F>(
    py: Python<'py>,
    shape: &[usize],
    dest: Dest<'_, 'py>,
    f: F,
) -> BResult<Bound<'py, PyArrayDyn<T>>>
where
    T: Element,
    F: FnOnce(&mut [T]) -> Result<(), ConvError> + Send,
{
    with_output_init(py, shape, dest, true, f)
}

/// [`with_output`] whose new array is not zeroed first (`zeroed == false`), for kernels that
/// zero their output themselves where they write it: the pages are then touched once, by the
/// threads that write them, instead of zeroed twice.
pub(crate) fn with_output_init<'py, T, F>(
    py: Python<'py>,
    shape: &[usize],
    dest: Dest<'_, 'py>,
    zeroed: bool,
    f: F,
) -> BResult<Bound<'py, PyArrayDyn<T>>>
where
    T: Element,
    F: FnOnce(&mut [T]) -> Result<(), ConvError> + Send,
{
    let out = dest.array_init::<T>(py, shape, zeroed)?;
    {
        let mut rw = writable(&out, dest.name)?;
        let os = slice_mut(&mut rw)?;
        py.detach(|| f(os))?;
    }
    Ok(out)
}

/// A new uninitialised 1-D array of `len` elements, and `f` run on it as write-only memory
/// with the GIL released. `f` must write every element (the activation kernels do).
pub(crate) fn with_fresh_1d<'py, T: Element + Send, F>(
    py: Python<'py>,
    len: usize,
    f: F,
) -> BResult<Bound<'py, PyArrayDyn<T>>>
where
    F: FnOnce(&mut [std::mem::MaybeUninit<T>]) + Send,
{
    Ok(with_fresh(py, &[len], f)?.0)
}

/// A new uninitialised C-contiguous array of `shape`, and `f` run on it as write-only memory
/// with the GIL released; returns the array and what `f` returned. `f` must write every
/// element unless it fails (the array is then dropped).
pub(crate) fn with_fresh<'py, T, R, F>(
    py: Python<'py>,
    shape: &[usize],
    f: F,
) -> BResult<(Bound<'py, PyArrayDyn<T>>, R)>
where
    T: Element + Send,
    R: Send,
    F: FnOnce(&mut [std::mem::MaybeUninit<T>]) -> R + Send,
{
    let ([out], r) = with_fresh_n::<T, R, 1>(py, shape, |[s]| f(s))?;
    Ok((out, r))
}

/// [`with_fresh`] with `K` new arrays of the same shape, handed to `f` together.
pub(crate) fn with_fresh_n<'py, T, R, const K: usize>(
    py: Python<'py>,
    shape: &[usize],
    f: impl FnOnce([&mut [std::mem::MaybeUninit<T>]; K]) -> R + Send,
) -> BResult<([Bound<'py, PyArrayDyn<T>>; K], R)>
where
    T: Element + Send,
    R: Send,
{
    let mut outs = Vec::with_capacity(K);
    for _ in 0..K {
        outs.push(new_array::<T>(py, shape, false)?);
    }
    let outs: [Bound<'py, PyArrayDyn<T>>; K] = outs
        .try_into()
        .map_err(|_| ConvError::internal("with_fresh_n: array count"))?;
    let len = outs[0].len();
    let ptrs = outs.each_ref().map(|o| o.data() as usize);
    let r = py.detach(|| {
        // SAFETY: each pointer is a distinct fresh C-contiguous array of `len` elements that
        // nothing else references until we return them; `MaybeUninit<T>` has no validity
        // requirement, so the uninitialised memory may be viewed (write-only) as such.
        let slices = ptrs.map(|p| unsafe {
            std::slice::from_raw_parts_mut(p as *mut std::mem::MaybeUninit<T>, len)
        });
        f(slices)
    });
    Ok((outs, r))
}

/// `ob` as a NumPy array, or a `TypeError` naming the argument.
pub(crate) fn untyped<'a, 'py>(
    arg: &str,
    ob: &'a Bound<'py, PyAny>,
) -> Result<&'a Bound<'py, PyUntypedArray>, ConvError> {
    ob.cast::<PyUntypedArray>()
        .map_err(|_| ConvError::type_(format!("{arg} must be a NumPy array")))
}

/// A read-only view of `ob` as an array of `T` with `N` dimensions; the Python layer has
/// already converted it (an internal error otherwise).
pub(crate) fn readonly<'py, T: Element, const N: usize>(
    arg: &str,
    ob: &Bound<'py, PyAny>,
) -> Result<PyReadonlyArray<'py, T, ndarray::Dim<[usize; N]>>, ConvError>
where
    ndarray::Dim<[usize; N]>: ndarray::Dimension,
{
    let arr = untyped(arg, ob)?;
    if arr.ndim() != N {
        return Err(ConvError::value(format!(
            "{arg} must be {N}-D, got {} dimension(s)",
            arr.ndim()
        )));
    }
    let any: &Bound<'py, PyArrayDyn<T>> = arr
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(format!("{arg} has dtype {}", dtype_name(arr))))?;
    let fixed = any
        .clone()
        .cast_into::<PyArray<T, ndarray::Dim<[usize; N]>>>()
        .map_err(|_| ConvError::internal(format!("{arg} has the wrong rank")))?;
    fixed
        .try_readonly()
        .map_err(|_| ConvError::internal(format!("{arg} is being written elsewhere")))
}

/// [`readonly`] of any rank.
pub(crate) fn readonly_dyn<'py, T: Element>(
    arg: &str,
    ob: &Bound<'py, PyAny>,
) -> Result<numpy::PyReadonlyArrayDyn<'py, T>, ConvError> {
    let arr = untyped(arg, ob)?;
    arr.cast::<PyArrayDyn<T>>()
        .map_err(|_| ConvError::internal(format!("{arg} has dtype {}", dtype_name(arr))))?
        .try_readonly()
        .map_err(|_| ConvError::internal(format!("{arg} is being written elsewhere")))
}

pub(crate) fn dtype_name(arr: &Bound<'_, PyUntypedArray>) -> String {
    arr.dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Register every function of the compiled module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CHOICES", convert::choice_names(m.py())?)?;
    signal::register(m)?;
    conv::register(m)?;
    pool::register(m)?;
    activation::register(m)?;
    linear::register(m)?;
    norm::register(m)?;
    loss::register(m)?;
    ndimage::register(m)?;
    optim::register(m)?;
    threads::register(m)
}
