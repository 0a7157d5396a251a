//! Run-time CPU feature detection: which SIMD paths the kernels may take.

/// Whether the CPU has AVX2 and FMA (detected once).
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The SIMD level rconv's own kernels dispatch to on this CPU: `"avx2+fma"` or `"generic"`.
/// (The GEMM crate makes its own choice, AVX-512 included.)
pub fn level() -> &'static str {
    if has_avx2_fma() {
        "avx2+fma"
    } else {
        "generic"
    }
}
