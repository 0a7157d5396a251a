//! scipy.ndimage's linear filters, exactly: the three kernels of scipy's `ni_filters.c` that
//! every linear filter of `scipy.ndimage` is built from, computing each output element with
//! scipy's arithmetic, step for step, in float64.
//!
//! - [`params`]: the boundary modes and their one index map, and the geometry and checks of a
//!   1-D pass ([`params::Line1d`]) and of an n-D correlation ([`params::NdParams`]);
//! - [`cast`]: the ten element types read as float64, and float64 written back as C's
//!   `(type)double` does on x86-64 (truncation, then the low bits of a 32- or 64-bit
//!   conversion, the integer-indefinite pattern for NaN, infinities and overflow);
//! - [`kernels`]: the float64 kernels (taps, symmetric and antisymmetric pairs, the running
//!   sum), one per SIMD level, vectorised across output elements, never along one sum: the
//!   same bytes at every level and thread count;
//! - [`run`]: the drivers: blocks of lines (1-D passes) and tiles (n-D correlation) of any
//!   rank and strides, in parallel over disjoint outputs.
//!
//! The derived filters (Gaussian, Sobel, Laplace, uniform, gradient magnitude) are composed
//! in Python over these kernels exactly as scipy's `_filters.py` composes them.

pub mod cast;
pub mod kernels;
pub mod params;
pub mod run;
