//! Bindings of the thread control and of the CPU dispatch report.

use pyo3::prelude::*;

use super::named;
use crate::base::error::ConvError;
use crate::base::{simd, threads};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions! { m: set_num_threads, get_num_threads, simd_level, simd_info, build_info, fma_peak, _set_simd_level }
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

/// The SIMD level rconv's own kernels dispatch to: `"generic"`, `"avx2"` or `"avx512"`.
#[pyfunction]
fn simd_level() -> &'static str {
    simd::level().name()
}

/// `(level, cpu level, RCONV_SIMD cap or None)` of rconv's own kernels.
#[pyfunction]
fn simd_info() -> (&'static str, &'static str, Option<&'static str>) {
    let cap = simd::cap().ok().flatten().map(simd::Level::name);
    (simd::level().name(), simd::cpu_level().name(), cap)
}

/// Private, for tests and benchmarks: run rconv's kernels at `level` (capped at the CPU's), or
/// at the process's level again with `None`. Returns the level now in force.
#[pyfunction]
#[pyo3(signature = (level=None))]
fn _set_simd_level(level: Option<&str>) -> PyResult<&'static str> {
    named("_set_simd_level", || {
        let l = level.map(simd::Level::parse).transpose()?;
        Ok(simd::set_level_override(l).name())
    })
}

/// GFLOP/s of a register-only FMA loop on `threads` threads (default: rconv's) for about
/// `seconds`, at rconv's SIMD level, in `dtype` (`"float32"` or `"float64"`).
#[pyfunction]
#[pyo3(signature = (dtype="float32", threads=None, seconds=0.05))]
fn fma_peak(py: Python<'_>, dtype: &str, threads: Option<usize>, seconds: f64) -> PyResult<f64> {
    named("fma_peak", || {
        let nt = threads.unwrap_or_else(threads::get_num_threads);
        if nt == 0 || nt > threads::MAX_THREADS {
            let max = threads::MAX_THREADS;
            return Err(ConvError::value(format!("threads must be in 1..{max}, got {nt}")).into());
        }
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 10.0) {
            return Err(
                ConvError::value(format!("seconds must be in (0, 10], got {seconds}")).into(),
            );
        }
        match dtype {
            "float32" => Ok(py.detach(|| simd::peak::fma_peak::<f32>(nt, seconds))),
            "float64" => Ok(py.detach(|| simd::peak::fma_peak::<f64>(nt, seconds))),
            _ => Err(ConvError::value(format!(
                "dtype must be 'float32' or 'float64', got {dtype:?}"
            ))
            .into()),
        }
    })
}

/// The kernels the `gemm` crate picks on this CPU (built with `std` and `x86-v4`: run-time
/// dispatch to AVX-512 where the CPU has AVX-512 F, else AVX2+FMA; `RCONV_SIMD` does not reach
/// it).
fn gemm_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512 (gemm crate, x86-v4; not capped by RCONV_SIMD)";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2 (gemm crate; not capped by RCONV_SIMD)";
        }
    }
    "generic (gemm crate)"
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
        simd::level().name(),
        gemm_level(),
        !crate::nn::conv::winograd_disabled(),
        threads::get_num_threads(),
        threads::num_threads_source(),
    )
}
