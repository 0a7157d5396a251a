//! The scalar types the kernels compute in, and the arithmetic they need. These traits know
//! no engine: the callers choose the engine.
//!
//! Integer types wrap on overflow (as scipy's C loops do); floats use IEEE arithmetic (fused
//! multiply-add in the AVX2 kernels); complex numbers use scipy's association.

use num_complex::Complex;

/// A scalar type a kernel can accumulate in.
pub trait Elem: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The additive identity.
    const ZERO: Self;
    /// `acc + w * x`.
    fn madd(acc: Self, w: Self, x: Self) -> Self;
    /// Complex conjugate (identity for real types).
    fn conj(self) -> Self;
    /// `self + other`, wrapping for integers (as the sums of [`Elem::madd`]).
    fn add(self, other: Self) -> Self;
}

macro_rules! impl_int {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const ZERO: Self = 0;
            #[inline(always)]
            fn madd(acc: Self, w: Self, x: Self) -> Self {
                acc.wrapping_add(w.wrapping_mul(x))
            }
            #[inline(always)]
            fn conj(self) -> Self { self }
            #[inline(always)]
            fn add(self, other: Self) -> Self { self.wrapping_add(other) }
        }
    )*};
}
impl_int!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! impl_float {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn madd(acc: Self, w: Self, x: Self) -> Self {
                acc + w * x
            }
            #[inline(always)]
            fn conj(self) -> Self { self }
            #[inline(always)]
            fn add(self, other: Self) -> Self { self + other }
        }
        impl Elem for Complex<$t> {
            const ZERO: Self = Complex { re: 0.0, im: 0.0 };
            #[inline(always)]
            fn madd(acc: Self, w: Self, x: Self) -> Self {
                // scipy's association: re += x.re*w.re - x.im*w.im; im += x.re*w.im + x.im*w.re
                Complex {
                    re: acc.re + (x.re * w.re - x.im * w.im),
                    im: acc.im + (x.re * w.im + x.im * w.re),
                }
            }
            #[inline(always)]
            fn conj(self) -> Self { Complex { re: self.re, im: -self.im } }
            #[inline(always)]
            fn add(self, other: Self) -> Self { self + other }
        }
    )*};
}
impl_float!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_wrap() {
        assert_eq!(<i8 as Elem>::madd(120, 10, 10), 120i8.wrapping_add(100));
        assert_eq!(<u8 as Elem>::madd(250, 2, 5), 4);
    }

    #[test]
    fn complex_conj_and_madd() {
        let a = Complex::new(1.0f64, 2.0);
        assert_eq!(a.conj(), Complex::new(1.0, -2.0));
        let r = <Complex<f64> as Elem>::madd(Complex::new(1.0, 1.0), a, a);
        assert_eq!(r, Complex::new(1.0 - 3.0, 1.0 + 4.0));
    }
}
