//! The choice between the direct and FFT engines (`method='auto'`), and how each scalar type
//! goes through the FFT engine: real floats directly, integers through an exact-bounded
//! float64 FFT rounded back, complex numbers as four real correlations (the map is bilinear).

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex;

use super::direct::correlate;
use super::fft::{correlate_fft, direct_cost, fft_cost, FftReal};
use super::params::{Boundary, Corr2dParams, Op};
use super::row_kernels::RowKernel;
use crate::base::error::{ConvError, Result};
use crate::base::scalar::Elem;

/// Kernels smaller than this (taps) never ran faster through the FFT in the measured sweep.
const FFT_MIN_TAPS: usize = 64;

/// Which engine computes a correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Direct,
    Fft,
}

/// One correlation: the inputs (already swapped as `params` says) and how to run it.
pub struct Job<'a, T> {
    /// The public function, for error messages.
    pub func: &'a str,
    pub image: ArrayView2<'a, T>,
    pub kernel: ArrayView2<'a, T>,
    pub params: &'a Corr2dParams,
    pub fill: T,
    pub threads: usize,
    /// Terms per sum of the integer FFT's exactness bound (`None`: from the shapes).
    pub fft_terms: Option<usize>,
}

/// A scalar type of the signal functions: the direct engine, and its way through the FFT.
pub trait SignalElem: RowKernel {
    /// Integers: the FFT is exact only under a bound, and `auto` never picks it.
    const INTEGER: bool;
    /// One unit of the FFT cost model takes about this many direct multiply-adds (measured;
    /// 0 for integers).
    const FFT_FACTOR: f64;
    /// Whether `v` is finite (NaN and Inf keep `auto` direct).
    fn finite(self) -> bool;
    /// The FFT correlation of this type.
    fn correlate_fft(job: &Job<'_, Self>, out: ArrayViewMut2<Self>) -> Result<()>;
}

/// The engine `method='auto'` picks: direct for integers, small kernels, and whenever an
/// input holds NaN or Inf (an FFT would smear them over the whole output); otherwise the
/// cheaper by the cost model.
pub fn choose<T: SignalElem>(job: &Job<'_, T>) -> Engine {
    if !fft_cheaper::<T>(job.params, job.threads) {
        return Engine::Direct;
    }
    fft_if_finite(job)
}

/// The FFT, unless an input (or the fill value in use) holds NaN or Inf.
pub fn fft_if_finite<T: SignalElem>(job: &Job<'_, T>) -> Engine {
    let fill_ok = job.params.boundary != Boundary::Fill || job.fill.finite();
    let finite = |a: &ArrayView2<T>| a.iter().all(|v| v.finite());
    if fill_ok && finite(&job.image) && finite(&job.kernel) {
        Engine::Fft
    } else {
        Engine::Direct
    }
}

/// Whether the cost model finds the FFT cheaper for these shapes (never for integers).
pub fn fft_cheaper<T: SignalElem>(p: &Corr2dParams, threads: usize) -> bool {
    let (oh, ow) = p.out_shape();
    let (kh, kw) = p.kernel;
    let smaller = (p.image.0 * p.image.1).min(kh * kw);
    if T::INTEGER || smaller < FFT_MIN_TAPS {
        return false;
    }
    fft_cost(oh, ow, kh, kw, threads) * T::FFT_FACTOR < direct_cost(oh, ow, kh, kw, threads)
}

/// Run `job` on `engine` into `out` (shape `job.params.out_shape()`, C order).
pub fn run<T: SignalElem>(engine: Engine, job: &Job<'_, T>, out: ArrayViewMut2<T>) -> Result<()> {
    let (image, kernel) = (job.image.view(), job.kernel.view());
    match engine {
        Engine::Direct => correlate(image, kernel, job.params, job.fill, out, job.threads),
        Engine::Fft => T::correlate_fft(job, out),
    }
}

macro_rules! real_signal {
    ($($t:ty => $factor:expr),*) => {$(
        impl SignalElem for $t {
            const INTEGER: bool = false;
            const FFT_FACTOR: f64 = $factor;
            #[inline]
            fn finite(self) -> bool { self.is_finite() }
            fn correlate_fft(job: &Job<'_, Self>, out: ArrayViewMut2<Self>) -> Result<()> {
                let (image, kernel) = (job.image.view(), job.kernel.view());
                correlate_fft(image, kernel, job.params, job.fill, out, job.threads)
            }
        }
    )*};
}
real_signal!(f32 => 5.8, f64 => 5.0);

/// An integer type's conversions to float64 and (wrapping) back from int64.
type Casts<T> = (fn(T) -> f64, fn(i64) -> T);

/// Integers through a float64 FFT, rounded back: exact while every partial sum stays below
/// 2^52 (refused otherwise), then wrapped to the dtype like the direct path.
fn integer_fft<T: Elem>(
    job: &Job<'_, T>,
    out: ArrayViewMut2<T>,
    (to_f64, from_i64): Casts<T>,
) -> Result<()> {
    let Job {
        func,
        image,
        kernel,
        params: p,
        fill,
        threads,
        fft_terms: terms,
    } = *job;
    let amax = |a: &ArrayView2<T>| a.iter().fold(0.0f64, |m, &v| m.max(to_f64(v).abs()));
    let a = amax(&image).max(to_f64(fill).abs());
    let b = amax(&kernel);
    let terms = terms.unwrap_or_else(|| image.len().min(kernel.len()));
    if a * b * terms as f64 >= 2f64.powi(52) {
        return Err(ConvError::value(
            func,
            format!(
                "method='fft' with integer inputs would be inexact (products up to {a:.3e} * \
                 {b:.3e} over {terms} terms exceed 2**52); use method='direct'"
            ),
        ));
    }
    let img = image.mapv(to_f64);
    let ker = kernel.mapv(to_f64);
    let mut res = Array2::<f64>::zeros(out.dim());
    correlate_fft(
        img.view(),
        ker.view(),
        p,
        to_f64(fill),
        res.view_mut(),
        threads,
    )?;
    let mut out = out;
    out.zip_mut_with(&res, |o, &r| *o = from_i64(r.round_ties_even() as i64));
    Ok(())
}

macro_rules! int_signal {
    ($($t:ty),*) => {$(
        impl SignalElem for $t {
            const INTEGER: bool = true;
            const FFT_FACTOR: f64 = 0.0;
            #[inline]
            fn finite(self) -> bool { true }
            fn correlate_fft(job: &Job<'_, Self>, out: ArrayViewMut2<Self>) -> Result<()> {
                integer_fft(job, out, (|v| v as f64, |v| v as $t))
            }
        }
    )*};
}
int_signal!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Complex correlation as four real FFT correlations. correlate2d conjugates the kernel
/// actually slid (in1 after the 'valid' swap); the real correlations then run unconjugated.
fn complex_fft<R: FftReal>(
    job: &Job<'_, Complex<R>>,
    out: ArrayViewMut2<Complex<R>>,
) -> Result<()> {
    let Job {
        image,
        kernel,
        params: p,
        fill,
        threads,
        ..
    } = *job;
    let conj = p.op == Op::Correlate;
    let (ir, ii) = (image.mapv(|v| v.re), image.mapv(|v| v.im));
    let kr = kernel.mapv(|v| v.re);
    let ki = kernel.mapv(|v| if conj { R::ZERO - v.im } else { v.im });
    let real = |x: &Array2<R>, k: &Array2<R>, f: R| -> Result<Array2<R>> {
        let mut o = Array2::<R>::zeros(out.dim());
        correlate_fft(x.view(), k.view(), p, f, o.view_mut(), threads)?;
        Ok(o)
    };
    let rr = real(&ir, &kr, fill.re)?;
    let mm = real(&ii, &ki, fill.im)?;
    let rm = real(&ir, &ki, fill.re)?;
    let mr = real(&ii, &kr, fill.im)?;
    let mut out = out;
    ndarray::Zip::from(&mut out)
        .and(&rr)
        .and(&mm)
        .and(&rm)
        .and(&mr)
        .for_each(|o, &a, &b, &c, &d| *o = Complex::new(a - b, c + d));
    Ok(())
}

macro_rules! complex_signal {
    ($($r:ty => $factor:expr),*) => {$(
        impl SignalElem for Complex<$r> {
            const INTEGER: bool = false;
            const FFT_FACTOR: f64 = $factor;
            #[inline]
            fn finite(self) -> bool { self.re.is_finite() && self.im.is_finite() }
            fn correlate_fft(job: &Job<'_, Self>, out: ArrayViewMut2<Self>) -> Result<()> {
                complex_fft(job, out)
            }
        }
    )*};
}
complex_signal!(f32 => 5.8, f64 => 5.0);
