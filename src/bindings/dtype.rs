//! The dtypes rconv computes in, as one enum, and the one macro that dispatches on it.

use numpy::PyArrayDescrMethods;
use numpy::{dtype, PyArrayDescr};
use pyo3::prelude::*;

use crate::base::error::{ConvError, Result};

/// Every dtype the signal functions compute in natively (the CNN layers: F32 and F64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    C64,
    C128,
}

/// The list of supported dtypes, as error messages name it.
pub const SUPPORTED: &str = "int8, int16, int32, int64, uint8, uint16, uint32, uint64, \
                             float32, float64, complex64, complex128";

impl DType {
    /// The `DType` of a NumPy dtype, or `None`.
    pub fn from_descr(descr: &Bound<'_, PyArrayDescr>) -> Option<Self> {
        let py = descr.py();
        macro_rules! try_types {
            ($($t:ty => $v:ident),*) => {$(
                if descr.is_equiv_to(&dtype::<$t>(py)) {
                    return Some(DType::$v);
                }
            )*};
        }
        try_types!(
            f32 => F32, f64 => F64, i64 => I64, i32 => I32, i16 => I16, i8 => I8,
            u64 => U64, u32 => U32, u16 => U16, u8 => U8,
            numpy::Complex64 => C128, numpy::Complex32 => C64
        );
        None
    }

    /// The `DType` of a NumPy dtype, or a `TypeError` naming `arg` and the dtype.
    pub fn of(arg: &str, descr: &Bound<'_, PyArrayDescr>) -> Result<Self> {
        Self::from_descr(descr).ok_or_else(|| {
            let name = descr
                .str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into());
            ConvError::type_(format!(
                "{arg} has unsupported dtype {name}; supported dtypes are {SUPPORTED}"
            ))
        })
    }

    /// True for float32 and float64.
    pub fn is_real_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

/// Run `$body` with `$T` bound to the Rust type of `$dt`, for the dtypes of one family:
/// `all` (every [`DType`]) or `real` (F32 and F64; any other dtype runs `$other`).
#[macro_export]
macro_rules! dispatch {
    (all: $dt:expr, $T:ident => $body:expr) => {
        $crate::dispatch!(@arms $dt, $T => $body, {
            I8 => i8, I16 => i16, I32 => i32, I64 => i64,
            U8 => u8, U16 => u16, U32 => u32, U64 => u64,
            F32 => f32, F64 => f64,
            C64 => numpy::Complex32, C128 => numpy::Complex64
        }, )
    };
    (real: $dt:expr, $T:ident => $body:expr, else => $other:expr) => {
        $crate::dispatch!(@arms $dt, $T => $body, { F32 => f32, F64 => f64 }, _ => $other)
    };
    (@arms $dt:expr, $T:ident => $body:expr, { $($v:ident => $t:ty),* }, $($rest:tt)*) => {{
        use $crate::bindings::dtype::DType;
        #[allow(unreachable_patterns)]
        match $dt {
            $(DType::$v => {
                type $T = $t;
                $body
            })*
            $($rest)*
        }
    }};
}
