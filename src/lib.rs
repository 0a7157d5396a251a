//! rconv: fast, exact 2-D convolution for NumPy.
//!
//! The crate has two layers. The kernels ([`correlate`], [`threads`]) take ndarray views and
//! know nothing of Python. The binding layer ([`bindings`]) converts NumPy arrays, validates,
//! dispatches on dtype, releases the GIL around all compute and maps [`error::ConvError`] to
//! Python exceptions.

pub mod bindings;
pub mod conv;
pub mod correlate;
pub mod dtype;
pub mod element;
pub mod error;
pub mod fft;
pub mod kernels;
pub mod pool;
pub mod real;
pub mod threads;
pub mod winograd;

use pyo3::prelude::*;

/// The compiled core of rconv (private: use the `rconv` package).
#[pymodule]
fn _rconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    bindings::register(m)
}
