//! The one error type of the Rust core. The binding layer maps it to Python exceptions.

use std::fmt;

/// What went wrong: the user's input (`Value`, `Type`) or our own invariant (`Internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvError {
    /// A value is out of its domain (shape, mode, boundary, ...): Python `ValueError`.
    Value(String),
    /// A type is not supported (dtype, argument kind): Python `TypeError`.
    Type(String),
    /// A broken invariant of rconv itself (a bug, never the user's input): `RuntimeError`.
    Internal(String),
}

impl ConvError {
    /// A `ValueError` raised by function `func`.
    pub fn value(func: &str, msg: impl fmt::Display) -> Self {
        ConvError::Value(format!("{func}: {msg}"))
    }

    /// A `TypeError` raised by function `func`.
    pub fn type_(func: &str, msg: impl fmt::Display) -> Self {
        ConvError::Type(format!("{func}: {msg}"))
    }

    /// A broken invariant found in function `func` (a `RuntimeError`).
    pub fn internal(func: &str, msg: impl fmt::Display) -> Self {
        ConvError::Internal(format!("{func}: internal error (please report it): {msg}"))
    }
}

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvError::Value(m) | ConvError::Type(m) | ConvError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConvError {}

/// Check that arrays of these shapes (8-byte elements at most) are addressable: the element
/// count and byte size must not overflow. A `ValueError` naming `func` otherwise.
pub fn check_shapes<const N: usize>(func: &str, shapes: &[[usize; N]]) -> Result<()> {
    shapes.iter().try_for_each(|dims| check_shape(func, dims))
}

/// [`check_shapes`] for one shape of any rank.
pub fn check_shape(func: &str, dims: &[usize]) -> Result<()> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|v| v.checked_mul(8))
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| ConvError::value(func, format!("shape {dims:?} is too large")))?;
    Ok(())
}

/// Check that a kernel's slice has the length its params struct implies: a broken invariant of
/// the bindings (`RuntimeError`) otherwise, never a user error.
pub fn check_len<T>(func: &str, what: &str, v: &[T], want: usize) -> Result<()> {
    if v.len() != want {
        return Err(ConvError::internal(
            func,
            format!("{what} has {} elements, expected {want}", v.len()),
        ));
    }
    Ok(())
}

/// Check that both entries of a `(rows, cols)` parameter are at least 1 (kernel sizes,
/// strides, dilations): a `ValueError` naming `func` and `name` otherwise.
pub fn positive(func: &str, name: &str, v: (usize, usize)) -> Result<()> {
    if v.0 == 0 || v.1 == 0 {
        return Err(ConvError::value(
            func,
            format!("{name} must be >= 1, got {v:?}"),
        ));
    }
    Ok(())
}

/// Result type of the Rust core.
pub type Result<T> = std::result::Result<T, ConvError>;
