//! Element types the kernels compute in, and the arithmetic they need.
//!
//! Integer types wrap on overflow (as scipy's C loops do); floats use IEEE arithmetic (fused
//! multiply-add in the AVX2 kernels); complex numbers use scipy's association.

use num_complex::Complex;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::correlate::Corr2dParams;
use crate::error::{ConvError, Result};
use crate::kernels::{self, Geometry};

/// A scalar type a kernel can accumulate in.
pub trait Elem: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The additive identity.
    const ZERO: Self;
    /// `acc + w * x`.
    fn madd(acc: Self, w: Self, x: Self) -> Self;
    /// Complex conjugate (identity for real types).
    fn conj(self) -> Self;
    /// Compute output row `out0` (and `out1`, the next one, if given) of a correlation.
    /// Types with explicit SIMD kernels override this.
    fn rows(g: &Geometry<'_, Self>, out0: &mut [Self], out1: Option<&mut [Self]>) {
        kernels::generic_rows_best(g, out0, out1)
    }
    /// The FFT engine for this type (real floats only; the binding layer computes integers
    /// and complex numbers through float64/real FFTs).
    fn correlate_fft(
        image: ArrayView2<Self>,
        kernel: ArrayView2<Self>,
        p: &Corr2dParams,
        fill: Self,
        out: ArrayViewMut2<Self>,
        threads: usize,
    ) -> Result<()> {
        let _ = (image, kernel, p, fill, out, threads);
        Err(ConvError::Type(
            "internal: method='fft' computes in float32 or float64 only".into(),
        ))
    }
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
            fn correlate_fft(
                image: ArrayView2<Self>,
                kernel: ArrayView2<Self>,
                p: &Corr2dParams,
                fill: Self,
                out: ArrayViewMut2<Self>,
                threads: usize,
            ) -> Result<()> {
                crate::fft::correlate_fft(image, kernel, p, fill, out, threads)
            }
            fn rows(g: &Geometry<'_, Self>, out0: &mut [Self], out1: Option<&mut [Self]>) {
                #[cfg(target_arch = "x86_64")]
                if kernels::has_avx2_fma() {
                    // SAFETY: AVX2 and FMA were detected on this CPU.
                    unsafe {
                        match out1 {
                            Some(out1) => kernels::avx2::two_rows(g, out0, out1),
                            None => kernels::avx2::one_row(g, out0),
                        }
                    }
                    return;
                }
                kernels::generic_rows_best(g, out0, out1)
            }
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
