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

/// Defines a function that runs an `#[inline(always)]` implementation compiled for AVX2+FMA
/// when the CPU has them (detected at run time), and compiled for the build's baseline
/// otherwise: the one place where rconv makes `#[target_feature]` twins.
///
/// ```ignore
/// avx2_twin! {
///     /// Docs of the dispatcher.
///     pub(crate) fn row_sum<T: Real>(v: &[T]) -> T = lane_sum;
/// }
/// avx2_twin! {
///     /// Or with the implementation's body in place.
///     fn twice<T: Real>(v: &mut [T]) { for e in v { *e += *e } }
/// }
/// ```
///
/// With `unsafe fn` (and `= implementation`), the dispatcher is `unsafe` with the
/// implementation's contract.
macro_rules! avx2_twin {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident <$($gen:ident : $bound:path),*> ($($arg:ident : $ty:ty),* $(,)?)
            $(-> $ret:ty)? = $imp:path;
    ) => {
        $(#[$meta])*
        #[inline]
        $vis fn $name<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn twin<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                if $crate::base::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA, the only requirement of `twin`.
                    return unsafe { twin($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident <$($gen:ident : $bound:path),*> ($($arg:ident : $ty:ty),* $(,)?)
            $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[inline]
        $vis fn $name<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn twin<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if $crate::base::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA, the only requirement of `twin`.
                    return unsafe { twin($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis unsafe fn $name:ident <$($gen:ident : $bound:path),*> ($($arg:ident : $ty:ty),* $(,)?)
            $(-> $ret:ty)? = $imp:path;
    ) => {
        $(#[$meta])*
        #[inline]
        $vis unsafe fn $name<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// As the implementation's, and the CPU must have AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn twin<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: the caller upholds the implementation's contract.
                    unsafe { $imp($($arg),*) }
                }
                if $crate::base::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA; the caller upholds the rest.
                    return unsafe { twin($($arg),*) };
                }
            }
            // SAFETY: the caller upholds the implementation's contract.
            unsafe { $imp($($arg),*) }
        }
    };
}
pub(crate) use avx2_twin;
