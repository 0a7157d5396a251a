//! Real floating-point element types (f32, f64) for the CNN layers.

use crate::base::scalar::Elem;

/// f32 or f64: what the conv and pooling kernels compute in.
pub trait Real:
    Elem
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
{
    const ONE: Self;
    const NEG_INFINITY: Self;
    /// Every integer up to this is exactly representable (2^24 for f32, 2^53 for f64).
    const EXACT_INTS: usize;
    fn from_usize(v: usize) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// Truncating conversion (used on exactly representable integers).
    fn to_i64(self) -> i64;
    fn is_nan(self) -> bool;
}

/// `if cond { a } else { b }` without a (mispredictable) branch: max pooling's comparisons
/// on real data are coin flips, and a branch per element costs several times the work.
#[inline(always)]
pub fn select<T>(cond: bool, a: T, b: T) -> T {
    std::hint::select_unpredictable(cond, a, b)
}

/// `max(v, 0)` with NaN passed through, as torch's ReLU (branch-free).
#[inline(always)]
pub fn relu<T: Real>(v: T) -> T {
    select((v > T::ZERO) | v.is_nan(), v, T::ZERO)
}

macro_rules! impl_real {
    ($($t:ty),*) => {$(
        impl Real for $t {
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const EXACT_INTS: usize = 1 << <$t>::MANTISSA_DIGITS;
            #[inline(always)]
            fn from_usize(v: usize) -> Self { v as $t }
            #[inline(always)]
            fn from_f64(v: f64) -> Self { v as $t }
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn to_i64(self) -> i64 { self as i64 }
            #[inline(always)]
            fn is_nan(self) -> bool { <$t>::is_nan(self) }
        }
    )*};
}
impl_real!(f32, f64);
