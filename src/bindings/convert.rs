//! The one conversion module of the boundary: every option type of the compiled functions
//! implements `FromPyObject` here, once.
//!
//! A compiled function takes each option as a named parameter of type [`Arg<T>`]. Its
//! conversion never fails inside PyO3: a value that is not a `T` is kept as an [`OptError`]
//! and raised by the function's body, by [`Arg::get`], which names the argument; the binding
//! then names the function ([`super::BindError::named`]). So every message reads
//! `"conv2d: stride must be an int or a pair of ints, got 'a'"`, from every entry point.
//!
//! The option types: [`Pair`] (an int or a pair of ints), [`Size`] (a non-negative int),
//! [`Padding`], [`Axes`], [`Shape`], [`OutputSize`], [`Flag`], [`Int`], [`Float`], and the
//! string choices of the core ([`Mode`], [`Boundary`], [`Op`], [`PadMode`], [`Method`],
//! [`Reduction`]), whose names
//! are listed once beside each enum ([`Choice`]).

use std::convert::Infallible;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyStringMethods, PyTuple};

use crate::base::choice::Choice;
use crate::base::error::ConvError;
use crate::ndimage::params::NdMode;
use crate::nn::conv::params::{self, PadMode};
use crate::nn::loss::Reduction;
use crate::signal::params::{Boundary, Mode, Op};

/// Why a value is not of an option's type: the kind of error and the end of its message
/// (`"must be an int or a pair of ints, got 'a'"`); [`Arg::get`] puts the argument's name
/// before it.
#[derive(Debug)]
pub struct OptError {
    type_error: bool,
    msg: String,
}

impl OptError {
    fn type_(msg: String) -> Self {
        OptError {
            type_error: true,
            msg,
        }
    }

    fn value(msg: String) -> Self {
        OptError {
            type_error: false,
            msg,
        }
    }
}

impl From<OptError> for PyErr {
    /// Only reached by a direct `extract` (the bindings go through [`Arg`]).
    fn from(e: OptError) -> PyErr {
        if e.type_error {
            PyTypeError::new_err(e.msg)
        } else {
            PyValueError::new_err(e.msg)
        }
    }
}

/// An option as it arrived: a `T`, or why it is not one (see the module doc).
pub struct Arg<T>(Result<T, OptError>);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Arg<T>
where
    T: FromPyObject<'a, 'py, Error = OptError>,
{
    type Error = Infallible;

    #[inline]
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> Result<Self, Infallible> {
        Ok(Arg(T::extract(ob)))
    }
}

impl<T> Arg<T> {
    /// The value, or the error naming the argument `name`.
    #[inline]
    pub fn get(self, name: &str) -> Result<T, ConvError> {
        self.0.map_err(|e| {
            let msg = format!("{name} {}", e.msg);
            if e.type_error {
                ConvError::type_(msg)
            } else {
                ConvError::value(msg)
            }
        })
    }
}

impl<T> From<T> for Arg<T> {
    fn from(v: T) -> Self {
        Arg(Ok(v))
    }
}

fn repr(ob: &Borrowed<'_, '_, PyAny>) -> String {
    ob.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python int, or any `numbers.Integral` (NumPy's integers); never a bool (NumPy 1.x gives
/// `numpy.bool_` an `__index__`, but it is no `Integral`).
fn index(ob: &Borrowed<'_, '_, PyAny>) -> Option<i64> {
    if ob.is_exact_instance_of::<PyInt>() {
        return ob.extract::<i64>().ok();
    }
    if ob.is_instance_of::<PyBool>() {
        return None;
    }
    static INTEGRAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = ob.py();
    let integral = INTEGRAL
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("numbers")?.getattr("Integral")?.unbind())
        })
        .ok()?;
    if !ob.is_instance(integral.bind(py)).unwrap_or(false) {
        return None;
    }
    ob.call_method0(pyo3::intern!(py, "__index__"))
        .ok()?
        .extract::<i64>()
        .ok()
}

/// The items of a tuple or list (other sequences are not options' shapes).
fn items<'py>(ob: &Borrowed<'_, 'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(t) = ob.cast::<PyTuple>() {
        return Some(t.iter().collect());
    }
    if let Ok(l) = ob.cast::<PyList>() {
        return Some(l.iter().collect());
    }
    None
}

/// The items of any iterable but a string (an `axes=` or a shape), or `None`.
fn sequence<'py>(ob: &Borrowed<'_, 'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if ob.is_instance_of::<PyString>() {
        return None;
    }
    ob.try_iter().ok()?.collect::<PyResult<_>>().ok()
}

/// A non-negative int (`groups`, a size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl FromPyObject<'_, '_> for Size {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let v = index(&ob)
            .ok_or_else(|| OptError::type_(format!("must be an int, got {}", repr(&ob))))?;
        usize::try_from(v)
            .map(Size)
            .map_err(|_| OptError::value(format!("must be >= 0, got {v}")))
    }
}

/// Any int (`divisor_override`, whose sign the params struct judges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl FromPyObject<'_, '_> for Int {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        index(&ob)
            .map(Int)
            .ok_or_else(|| OptError::type_(format!("must be an int, got {}", repr(&ob))))
    }
}

/// A truth value (`ceil_mode`, `count_include_pad`), as Python's `bool()` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl FromPyObject<'_, '_> for Flag {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        ob.is_truthy()
            .map(Flag)
            .map_err(|_| OptError::type_(format!("must be a bool, got {}", repr(&ob))))
    }
}

/// A real number (`momentum`, `eps`): a Python int or float, or any `numbers.Real` (NumPy's
/// floats and integers); never a bool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float(pub f64);

impl FromPyObject<'_, '_> for Float {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let bad = || OptError::type_(format!("must be a real number, got {}", repr(&ob)));
        if ob.is_exact_instance_of::<PyFloat>() || ob.is_exact_instance_of::<PyInt>() {
            return ob.extract::<f64>().map(Float).map_err(|_| bad());
        }
        if ob.is_instance_of::<PyBool>() {
            return Err(bad());
        }
        static REAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let py = ob.py();
        let real = REAL
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("numbers")?.getattr("Real")?.unbind())
            })
            .map_err(|_| bad())?;
        if !ob.is_instance(real.bind(py)).unwrap_or(false) {
            return Err(bad());
        }
        ob.extract::<f64>().map(Float).map_err(|_| bad())
    }
}

/// A pair of non-negative sizes, given as torch takes them: an int (for both axes) or a
/// tuple or list of one or two ints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair(pub params::Pair);

impl FromPyObject<'_, '_> for Pair {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let bad_type = || {
            OptError::type_(format!(
                "must be an int or a pair of ints, got {}",
                repr(&ob)
            ))
        };
        let (a, b) = if let Some(v) = index(&ob) {
            (v, v)
        } else {
            let vals = items(&ob).ok_or_else(bad_type)?;
            let ints = vals
                .iter()
                .map(|v| index(&v.as_borrowed()))
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(bad_type)?;
            match *ints.as_slice() {
                [a] => (a, a),
                [a, b] => (a, b),
                _ => {
                    let msg = format!("must be an int or a pair of ints, got {}", repr(&ob));
                    return Err(OptError::value(msg));
                }
            }
        };
        match (usize::try_from(a), usize::try_from(b)) {
            (Ok(a), Ok(b)) => Ok(Pair((a, b))),
            _ => Err(OptError::value(format!("must be >= 0, got ({a}, {b})"))),
        }
    }
}

/// A pooling `stride`: None or an empty sequence (the kernel size, as torch has it), else a
/// [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStride(pub Option<params::Pair>);

impl FromPyObject<'_, '_> for PoolStride {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        if ob.is_none() || items(&ob).is_some_and(|v| v.is_empty()) {
            return Ok(PoolStride(None));
        }
        Pair::extract(ob).map(|p| PoolStride(Some(p.0)))
    }
}

/// conv2d's `padding`: `'valid'`, `'same'`, an int or a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padding(pub params::Padding);

impl FromPyObject<'_, '_> for Padding {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        if let Ok(s) = ob.cast::<PyString>() {
            return match s.to_cow().ok().as_deref() {
                Some("valid") => Ok(Padding(params::Padding::Valid)),
                Some("same") => Ok(Padding(params::Padding::Same)),
                _ => Err(OptError::value(format!(
                    "must be 'valid', 'same', an int or a pair, got {}",
                    repr(&ob)
                ))),
            };
        }
        Pair::extract(ob).map(|p| Padding(params::Padding::Explicit(p.0)))
    }
}

/// `axes=` of a stacked signal call: exactly two ints (not yet normalised; negative values
/// count from the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axes(pub (isize, isize));

impl FromPyObject<'_, '_> for Axes {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let bad = || OptError::value(format!("must be a pair of two ints, got {}", repr(&ob)));
        let vals = sequence(&ob).ok_or_else(bad)?;
        let [a, b] = vals.as_slice() else {
            return Err(bad());
        };
        let int = |v: &Bound<'_, PyAny>| {
            index(&v.as_borrowed())
                .and_then(|i| isize::try_from(i).ok())
                .ok_or_else(|| OptError::type_(format!("must hold ints, got {}", repr(&ob))))
        };
        Ok(Axes((int(a)?, int(b)?)))
    }
}

/// A shape: a sequence of non-negative ints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape(pub Vec<usize>);

impl FromPyObject<'_, '_> for Shape {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let bad = || OptError::type_(format!("must be a sequence of ints, got {}", repr(&ob)));
        let ints = sequence(&ob)
            .and_then(|vals| {
                vals.iter()
                    .map(|v| index(&v.as_borrowed()))
                    .collect::<Option<Vec<i64>>>()
            })
            .ok_or_else(bad)?;
        ints.iter()
            .map(|&e| usize::try_from(e))
            .collect::<Result<Vec<usize>, _>>()
            .map(Shape)
            .map_err(|_| OptError::value(format!("must hold non-negative sizes, got {ints:?}")))
    }
}

impl Shape {
    /// The shape as `[n, c, h, w]`: 4 sizes, or 3 (an unbatched `(c, h, w)`, batch 1).
    pub fn batched(&self, name: &str) -> Result<[usize; 4], ConvError> {
        match *self.0.as_slice() {
            [n, c, h, w] => Ok([n, c, h, w]),
            [c, h, w] => Ok([1, c, h, w]),
            _ => Err(ConvError::value(format!(
                "{name} must hold 3 or 4 sizes, got {}",
                self.0.len()
            ))),
        }
    }

    /// The shape as `(rows, cols)`.
    pub fn plane(&self, name: &str) -> Result<(usize, usize), ConvError> {
        match *self.0.as_slice() {
            [a, b] => Ok((a, b)),
            _ => Err(ConvError::value(format!(
                "{name} must be 2-D, got {} dimension(s)",
                self.0.len()
            ))),
        }
    }
}

/// An adaptive pool's `output_size`: an int, or a pair whose entries may be None (keep the
/// input's size along that axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSize(pub (Option<usize>, Option<usize>));

impl FromPyObject<'_, '_> for OutputSize {
    type Error = OptError;

    fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
        let one = |v: &Borrowed<'_, '_, PyAny>| -> Result<Option<usize>, OptError> {
            if v.is_none() {
                return Ok(None);
            }
            let i = index(v).ok_or_else(|| {
                OptError::type_(format!(
                    "must be an int or a pair of ints or None, got {}",
                    repr(&ob)
                ))
            })?;
            usize::try_from(i)
                .map(Some)
                .map_err(|_| OptError::value(format!("must be >= 0, got {i}")))
        };
        if let Some(vals) = items(&ob) {
            let v: Vec<Option<usize>> = vals
                .iter()
                .map(|v| one(&v.as_borrowed()))
                .collect::<Result<_, _>>()?;
            return match *v.as_slice() {
                [a] => Ok(OutputSize((a, a))),
                [a, b] => Ok(OutputSize((a, b))),
                _ => Err(OptError::value(format!(
                    "must be an int or a pair, got {}",
                    repr(&ob)
                ))),
            };
        }
        let v = one(&ob)?;
        Ok(OutputSize((v, v)))
    }
}

crate::choice! {
    /// `method=` of the signal functions.
    pub enum Method {
        Auto = "auto",
        Direct = "direct",
        Fft = "fft",
        /// Two 1-D passes (a kernel of rank 1).
        Separable = "separable",
        @private
        /// `rconv.dask`'s blocks of an image for which 'auto' chose the FFT: the FFT unless
        /// the block holds NaN or Inf.
        FftIfFinite = "fft-if-finite",
        /// The same for the separable passes.
        SeparableIfFinite = "separable-if-finite",
    }
}

crate::choice! {
    /// Which gradient `conv2d_grad` computes.
    pub enum Wrt {
        Input = "input",
        Weight = "weight",
    }
}

/// A choice by name: the interned Python strings of its table are compared by identity first
/// (string literals are interned, so a call from the wrappers never decodes a string).
fn choice<T: Choice>(
    ob: &Borrowed<'_, '_, PyAny>,
    interned: &PyOnceLock<Vec<Py<PyString>>>,
) -> Result<T, OptError> {
    let py = ob.py();
    let names = interned.get_or_init(py, || {
        T::NAMES
            .iter()
            .map(|(n, _)| PyString::intern(py, n).unbind())
            .collect()
    });
    for (s, &(_, v)) in names.iter().zip(T::NAMES) {
        if ob.as_ptr() == s.as_ptr() {
            return Ok(v);
        }
    }
    ob.cast::<PyString>()
        .ok()
        .and_then(|s| s.to_cow().ok().and_then(|s| T::parse(&s)))
        .ok_or_else(|| OptError::value(format!("must be {}, got {}", T::expected(), repr(ob))))
}

macro_rules! choices {
    ($($t:ty),*) => {$(
        impl FromPyObject<'_, '_> for $t {
            type Error = OptError;

            fn extract(ob: Borrowed<'_, '_, PyAny>) -> Result<Self, OptError> {
                static NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
                choice::<$t>(&ob, &NAMES)
            }
        }
    )*};
}

choices!(Mode, Boundary, Op, PadMode, Method, Wrt, Reduction, NdMode);

/// The public names of every choice, by enum (`{"Mode": ("full", "valid", "same"), ...}`),
/// so that the tests can hold the stub's Literals to the one table of each enum.
pub fn choice_names(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    fn public<T: Choice>() -> Vec<&'static str> {
        T::NAMES[..T::PUBLIC].iter().map(|(n, _)| *n).collect()
    }
    let d = pyo3::types::PyDict::new(py);
    d.set_item("Mode", public::<Mode>())?;
    d.set_item("Boundary", public::<Boundary>())?;
    d.set_item("Op", public::<Op>())?;
    d.set_item("PadMode", public::<PadMode>())?;
    d.set_item("Method", public::<Method>())?;
    d.set_item("Wrt", public::<Wrt>())?;
    d.set_item("Reduction", public::<Reduction>())?;
    d.set_item("NdMode", public::<NdMode>())?;
    Ok(d)
}
