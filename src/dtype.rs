//! The dtypes rconv computes in, as one enum, and the macro that dispatches on it.

use numpy::PyArrayDescrMethods;
use numpy::{dtype, PyArrayDescr};
use pyo3::prelude::*;

use crate::error::{ConvError, Result};

/// Every dtype the signal functions compute in natively.
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

impl DType {
    /// The `DType` of a NumPy dtype, or a `TypeError` naming it.
    pub fn of(func: &str, arg: &str, descr: &Bound<'_, PyArrayDescr>) -> Result<Self> {
        let py = descr.py();
        macro_rules! try_types {
            ($($t:ty => $v:ident),*) => {$(
                if descr.is_equiv_to(&dtype::<$t>(py)) {
                    return Ok(DType::$v);
                }
            )*};
        }
        try_types!(
            f64 => F64, f32 => F32, i64 => I64, i32 => I32, i16 => I16, i8 => I8,
            u64 => U64, u32 => U32, u16 => U16, u8 => U8,
            numpy::Complex64 => C128, numpy::Complex32 => C64
        );
        let name = descr
            .str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "?".into());
        Err(ConvError::type_(
            func,
            format!(
                "{arg} has unsupported dtype {name}; supported dtypes are int8, int16, int32, \
                 int64, uint8, uint16, uint32, uint64, float32, float64, complex64, complex128"
            ),
        ))
    }
}

/// Run `$body` with `$T` bound to the Rust type of `$dt`.
#[macro_export]
macro_rules! dispatch_dtype {
    ($dt:expr, $T:ident => $body:expr) => {{
        use $crate::dtype::DType;
        match $dt {
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I16 => {
                type $T = i16;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::U16 => {
                type $T = u16;
                $body
            }
            DType::U32 => {
                type $T = u32;
                $body
            }
            DType::U64 => {
                type $T = u64;
                $body
            }
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::C64 => {
                type $T = numpy::Complex32;
                $body
            }
            DType::C128 => {
                type $T = numpy::Complex64;
                $body
            }
        }
    }};
}
