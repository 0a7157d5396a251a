//! The one error type of the Rust core. The binding layer maps it to Python exceptions.

use std::fmt;

/// What went wrong: the user's input (`Value`, `Type`, `Runtime`) or our own invariant
/// (`Internal`). The message names the argument and what was expected, never the function:
/// the binding layer attaches the calling function's name once, at the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvError {
    /// A value is out of its domain (shape, mode, boundary, ...): Python `ValueError`.
    Value(String),
    /// A type is not supported (dtype, argument kind): Python `TypeError`.
    Type(String),
    /// A user error that the reference library raises as `RuntimeError` (scipy.ndimage
    /// does, for some bad arguments): Python `RuntimeError`, without the "internal error"
    /// text.
    Runtime(String),
    /// A broken invariant of rconv itself (a bug, never the user's input): `RuntimeError`.
    Internal(String),
}

impl ConvError {
    /// A `ValueError`.
    pub fn value(msg: impl fmt::Display) -> Self {
        ConvError::Value(msg.to_string())
    }

    /// A `TypeError`.
    pub fn type_(msg: impl fmt::Display) -> Self {
        ConvError::Type(msg.to_string())
    }

    /// A user error raised as `RuntimeError` (see [`ConvError::Runtime`]).
    pub fn runtime(msg: impl fmt::Display) -> Self {
        ConvError::Runtime(msg.to_string())
    }

    /// A broken invariant (a `RuntimeError` that asks to be reported).
    pub fn internal(msg: impl fmt::Display) -> Self {
        ConvError::Internal(msg.to_string())
    }

    /// The message as Python shows it after the function's name.
    pub fn message(&self) -> String {
        match self {
            ConvError::Value(m) | ConvError::Type(m) | ConvError::Runtime(m) => m.clone(),
            ConvError::Internal(m) => format!("internal error (please report it): {m}"),
        }
    }
}

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConvError {}

/// Check that arrays of these shapes (8-byte elements at most) are addressable: the element
/// count and byte size must not overflow. A `ValueError` otherwise.
pub fn check_shapes<const N: usize>(shapes: &[[usize; N]]) -> Result<()> {
    shapes.iter().try_for_each(|dims| check_shape(dims))
}

/// [`check_shapes`] for one shape of any rank.
pub fn check_shape(dims: &[usize]) -> Result<()> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|v| v.checked_mul(8))
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| ConvError::value(format!("shape {dims:?} is too large")))?;
    Ok(())
}

/// Check that a kernel's slice has the length its params struct implies: a broken invariant of
/// the bindings (`RuntimeError`) otherwise, never a user error.
pub fn check_len<T>(what: &str, v: &[T], want: usize) -> Result<()> {
    if v.len() != want {
        return Err(ConvError::internal(format!(
            "{what} has {} elements, expected {want}",
            v.len()
        )));
    }
    Ok(())
}

/// Check that both entries of a `(rows, cols)` parameter are at least 1 (kernel sizes,
/// strides, dilations): a `ValueError` naming `name` otherwise.
pub fn positive(name: &str, v: (usize, usize)) -> Result<()> {
    if v.0 == 0 || v.1 == 0 {
        return Err(ConvError::value(format!("{name} must be >= 1, got {v:?}")));
    }
    Ok(())
}

/// Result type of the Rust core.
pub type Result<T> = std::result::Result<T, ConvError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_no_function_and_only_internal_asks_to_be_reported() {
        let user = [
            ConvError::value("stride must be >= 1"),
            ConvError::type_("input has unsupported dtype"),
            ConvError::runtime("sequence argument must have length equal to input rank"),
        ];
        for e in &user {
            assert!(!e.message().contains("internal error"), "{e:?}");
            assert!(!e.message().contains(": "), "{e:?}");
        }
        let bug = ConvError::internal("output is not contiguous");
        assert_eq!(
            bug.message(),
            "internal error (please report it): output is not contiguous"
        );
        assert_eq!(bug.to_string(), bug.message());
    }
}
