//! The binding layer: NumPy arrays in, NumPy arrays out. It converts and validates the
//! arguments, dispatches on dtype, releases the GIL around all compute and maps the one error
//! type of the core ([`ConvError`]) to `ValueError`/`TypeError`.

mod nn;
mod signal;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::error::ConvError;

impl From<ConvError> for PyErr {
    fn from(e: ConvError) -> PyErr {
        match e {
            ConvError::Value(m) => PyValueError::new_err(m),
            ConvError::Type(m) => PyTypeError::new_err(m),
        }
    }
}

/// Register every function of the compiled module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    signal::register(m)?;
    nn::register(m)
}
