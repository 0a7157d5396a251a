//! rconv: fast, exact 2-D convolution for NumPy.
//!
//! The crate is organised by domain; dependencies point downwards only:
//!
//! - [`bindings`]: the Python boundary (argument types, dtype dispatch, one file per domain);
//! - [`signal`]: scipy.signal's correlate2d/convolve2d (params, direct engine, row kernels, FFT);
//! - [`ndimage`]: scipy.ndimage's linear filters, byte for byte (1-D passes, n-D correlation);
//! - [`nn`]: torch.nn.functional's CNN layers (convolution, pooling);
//! - [`base`]: scalar traits, the thread pool, GEMM glue, CPU features, errors.
//!
//! The kernels take slices or ndarray views and know nothing of Python. The binding layer
//! converts NumPy arrays, parses the options into enums, dispatches on dtype, releases the GIL
//! around all compute and maps [`base::error::ConvError`] to Python exceptions.

pub mod base;
pub mod bindings;
pub mod ndimage;
pub mod nn;
pub mod signal;

use pyo3::prelude::*;

/// The compiled core of rconv (private: use the `rconv` package).
#[pymodule]
fn _rconv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // an unknown RCONV_SIMD is an error at import, not a silent fallback
    bindings::named("import rconv", || Ok(base::simd::check_env()?))?;
    bindings::register(m)
}
