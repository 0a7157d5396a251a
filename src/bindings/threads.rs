//! Bindings of the thread control and of the CPU dispatch report.

use pyo3::prelude::*;

use super::named;
use crate::base::error::ConvError;
use crate::base::{simd, threads};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: set_num_threads, get_num_threads, simd_level, build_info }
    m.add("MAX_THREADS", threads::MAX_THREADS)?;
    Ok(())
}

/// Set the number of threads rconv uses (`1 <= n <= MAX_THREADS`).
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    named("set_num_threads", || {
        let is_int =
            n.is_instance_of::<pyo3::types::PyInt>() && !n.is_instance_of::<pyo3::types::PyBool>();
        let v: i64 = if is_int {
            n.extract().unwrap_or(i64::MAX)
        } else {
            let name = n
                .get_type()
                .name()
                .map(|s| s.to_string())
                .unwrap_or_default();
            return Err(ConvError::type_(format!("n must be an integer, got {name}")).into());
        };
        if v < 1 || v > threads::MAX_THREADS as i64 {
            let max = threads::MAX_THREADS;
            return Err(ConvError::value(format!("n must be in 1..{max}, got {v}")).into());
        }
        threads::set_num_threads(v as usize);
        Ok(())
    })
}

/// The number of threads rconv uses.
#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}

/// The SIMD level rconv's own kernels dispatch to on this CPU (`"avx2+fma"` or `"generic"`).
#[pyfunction]
fn simd_level() -> &'static str {
    simd::level()
}

/// What `rconv.show_config()` reports of the compiled core: `(profile, simd, gemm features,
/// winograd on, threads, threads source)`.
#[pyfunction]
fn build_info() -> (
    &'static str,
    &'static str,
    &'static str,
    bool,
    usize,
    &'static str,
) {
    let profile = if cfg!(debug_assertions) {
        "debug (unoptimised)"
    } else {
        "optimised"
    };
    (
        profile,
        simd::level(),
        // Cargo.toml: gemm with `std` and `x86-v4`; gemm picks its kernels at run time
        "std, x86-v4 (run-time dispatch: AVX2+FMA kernels, AVX-512 where the CPU has it)",
        !crate::nn::conv::winograd_disabled(),
        threads::get_num_threads(),
        threads::num_threads_source(),
    )
}
