//! SIMD levels of rconv's own kernels: detection, the `RCONV_SIMD` cap, the twin macro
//! ([`simd_twin!`]) and, in [`vector`], one SIMD register per level for hand-blocked kernels.
//!
//! The level is chosen once per process: the highest the CPU has (`generic` < `avx2` <
//! `avx512`), capped by `RCONV_SIMD=generic|avx2|avx512` (never raised above the CPU's). The cap
//! does not reach the `gemm` crate, which makes its own choice. Tests and benchmarks may lower
//! the level in process through a private override ([`set_level_override`]), never above the
//! CPU's.

pub mod peak;
pub mod vector;

pub use vector::{dispatch, dispatch_at, lanes, SimdReal, Vector, WithVector};

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::base::error::{ConvError, Result};

/// A SIMD level of rconv's own kernels, ordered from the least to the most capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The build's baseline (SSE2 on x86-64), no FMA.
    Generic = 0,
    /// AVX2 and FMA (256-bit vectors).
    Avx2 = 1,
    /// AVX-512 F, BW, DQ and VL (512-bit vectors), with AVX2 and FMA.
    Avx512 = 2,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Generic, Level::Avx2, Level::Avx512];

    /// The level's name as `RCONV_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Generic => "generic",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parse an `RCONV_SIMD` value (case and surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Level> {
        let t = s.trim().to_ascii_lowercase();
        Level::ALL
            .into_iter()
            .find(|l| l.name() == t)
            .ok_or_else(|| {
                ConvError::value(format!(
                    "RCONV_SIMD={s:?} is not a SIMD level: expected one of 'generic', 'avx2', \
                     'avx512' (or unset it to use the CPU's best)"
                ))
            })
    }

    fn from_u8(v: u8) -> Level {
        match v {
            2 => Level::Avx512,
            1 => Level::Avx2,
            _ => Level::Generic,
        }
    }
}

/// The highest level this CPU supports (detected once).
pub fn cpu_level() -> Level {
    static CPU: OnceLock<Level> = OnceLock::new();
    *CPU.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            let avx512 =
                avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl");
            if avx512 {
                Level::Avx512
            } else if avx2 {
                Level::Avx2
            } else {
                Level::Generic
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Level::Generic
        }
    })
}

/// `RCONV_SIMD` as read once: `Ok(None)` when unset or empty, an error for an unknown value.
pub fn cap() -> Result<Option<Level>> {
    static CAP: OnceLock<std::result::Result<Option<Level>, String>> = OnceLock::new();
    CAP.get_or_init(|| match std::env::var("RCONV_SIMD") {
        Ok(s) if !s.trim().is_empty() => Level::parse(&s).map(Some).map_err(|e| e.to_string()),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err("RCONV_SIMD is not valid UTF-8: expected 'generic', 'avx2' or 'avx512'".into())
        }
    })
    .clone()
    .map_err(ConvError::value)
}

/// The level of the process: the CPU's, lowered to `RCONV_SIMD` when set (an unknown value
/// counts as unset here; [`check_env`] reports it at import).
pub fn process_level() -> Level {
    let cpu = cpu_level();
    match cap() {
        Ok(Some(c)) => c.min(cpu),
        _ => cpu,
    }
}

/// `u8::MAX`: no override.
static OVERRIDE: AtomicU8 = AtomicU8::new(u8::MAX);

/// The level rconv's kernels dispatch to now: [`process_level`], or the private override.
#[inline]
pub fn level() -> Level {
    match OVERRIDE.load(Ordering::Relaxed) {
        u8::MAX => process_level(),
        v => Level::from_u8(v),
    }
}

/// Lower (or restore, with `None`) the level of this process, for tests and benchmarks that
/// compare levels in one run: never above the CPU's, and not a public API. Calls already
/// running finish at the level they started with.
pub fn set_level_override(level: Option<Level>) -> Level {
    match level {
        Some(l) => OVERRIDE.store(l.min(cpu_level()) as u8, Ordering::SeqCst),
        None => OVERRIDE.store(u8::MAX, Ordering::SeqCst),
    }
    self::level()
}

/// Fails when `RCONV_SIMD` holds an unknown value: checked when the module is imported.
pub fn check_env() -> Result<()> {
    cap().map(|_| ())
}

/// Run `f` at each level up to the CPU's in turn (Rust unit tests): the override is process
/// wide, so these tests hold a lock against each other.
#[cfg(test)]
pub fn with_each_level(mut f: impl FnMut(Level)) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for l in Level::ALL.into_iter().filter(|&l| l <= cpu_level()) {
        set_level_override(Some(l));
        f(l);
    }
    set_level_override(None);
}

/// Whether rconv's kernels may use AVX2 and FMA: the level is `avx2` or above.
#[inline]
pub fn has_avx2_fma() -> bool {
    level() >= Level::Avx2
}

/// Defines a function that runs an `#[inline(always)]` implementation compiled for the
/// process's [`level`]: AVX-512 (F, BW, DQ, VL), AVX2+FMA, or the build's baseline: the one
/// place where rconv makes `#[target_feature]` twins of auto-vectorised kernels.
///
/// ```ignore
/// simd_twin! {
///     /// Docs of the dispatcher.
///     pub(crate) fn row_sum<T: Real>(v: &[T]) -> T = lane_sum;
/// }
/// simd_twin! {
///     /// Or with the implementation's body in place.
///     fn twice<T: Real>(v: &mut [T]) { for e in v { *e += *e } }
/// }
/// ```
///
/// With `unsafe fn` (and `= implementation`), the dispatcher is `unsafe` with the
/// implementation's contract.
macro_rules! simd_twin {
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
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn twin512<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn twin2<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    $imp($($arg),*)
                }
                match $crate::base::simd::level() {
                    // SAFETY: the level is never above the CPU's: it has AVX-512 F/BW/DQ/VL.
                    $crate::base::simd::Level::Avx512 => return unsafe { twin512($($arg),*) },
                    // SAFETY: the level is never above the CPU's: it has AVX2 and FMA.
                    $crate::base::simd::Level::Avx2 => return unsafe { twin2($($arg),*) },
                    $crate::base::simd::Level::Generic => {}
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
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn twin512<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn twin2<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                match $crate::base::simd::level() {
                    // SAFETY: the level is never above the CPU's: it has AVX-512 F/BW/DQ/VL.
                    $crate::base::simd::Level::Avx512 => return unsafe { twin512($($arg),*) },
                    // SAFETY: the level is never above the CPU's: it has AVX2 and FMA.
                    $crate::base::simd::Level::Avx2 => return unsafe { twin2($($arg),*) },
                    $crate::base::simd::Level::Generic => {}
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
                /// As the implementation's, and the CPU must have AVX-512 F/BW/DQ/VL.
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn twin512<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: the caller upholds the implementation's contract.
                    unsafe { $imp($($arg),*) }
                }
                /// # Safety
                /// As the implementation's, and the CPU must have AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn twin2<$($gen: $bound),*>($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: the caller upholds the implementation's contract.
                    unsafe { $imp($($arg),*) }
                }
                match $crate::base::simd::level() {
                    // SAFETY: the CPU has AVX-512 F/BW/DQ/VL (the level is never above the
                    // CPU's); the caller upholds the rest.
                    $crate::base::simd::Level::Avx512 => return unsafe { twin512($($arg),*) },
                    // SAFETY: the CPU has AVX2 and FMA; the caller upholds the rest.
                    $crate::base::simd::Level::Avx2 => return unsafe { twin2($($arg),*) },
                    $crate::base::simd::Level::Generic => {}
                }
            }
            // SAFETY: the caller upholds the implementation's contract.
            unsafe { $imp($($arg),*) }
        }
    };
}
pub(crate) use simd_twin;
