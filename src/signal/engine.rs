//! The choice between the direct and FFT engines (`method='auto'`), and how each scalar type
//! goes through the FFT engine: real floats directly, integers through an exact-bounded
//! float64 FFT rounded back, complex numbers as four real correlations (the map is bilinear).

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use num_complex::Complex;

use super::direct::correlate;
use super::fft::{correlate_fft, direct_cost, fft_cost, FftReal};
use super::params::{effective_kernel, Boundary, Corr2dParams, Op};
use super::row_kernels::RowKernel;
use super::separable::{correlate_separable, factor_float, factor_int};
use crate::base::error::{ConvError, Result};
use crate::base::scalar::Elem;

/// Kernels smaller than this (taps) never ran faster through the FFT in the measured sweep.
const FFT_MIN_TAPS: usize = 64;

/// Which engine computes a correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Direct,
    Fft,
    /// Two 1-D passes, for a kernel of rank 1.
    Separable,
    /// `method='auto'`'s separable passes: direct instead if an input holds NaN or Inf
    /// (found without a scan of the inputs when the intermediate rows are finite).
    SeparableAuto,
}

impl Engine {
    /// The name `choose_conv_method` returns.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Direct => "direct",
            Engine::Fft => "fft",
            Engine::Separable | Engine::SeparableAuto => "separable",
        }
    }
}

/// One separable output costs about this many direct multiply-adds per tap of its two
/// passes (measured on 2048x2048 float32 'same' images: the column pass also copies the
/// intermediate rows).
const SEPARABLE_FACTOR: f64 = 1.6;

/// One correlation: the inputs (already swapped as `params` says) and how to run it.
pub struct Job<'a, T> {
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
    /// Factors `(u, v)` of a row-major `kh x kw` kernel of rank 1 (see
    /// [`super::separable`]), or `None`.
    fn factor(k: &[Self], kh: usize, kw: usize) -> Option<(Vec<Self>, Vec<Self>)>;
}

/// The engine `method='auto'` picks: direct for small kernels, and whenever an input holds
/// NaN or Inf (an FFT would smear them over the whole output; the separable passes would
/// differ from the direct sums in where they make NaN); otherwise the cheapest by the cost
/// model, the separable passes only for a kernel of rank 1 (the FFT never for integers).
pub fn choose<T: SignalElem>(job: &Job<'_, T>) -> Engine {
    match plan(job.params, &job.kernel, job.threads) {
        Engine::Fft => fft_if_finite(job),
        e => e,
    }
}

/// [`choose`] by the shapes and the kernel alone: `Direct`, `Fft` (to be confirmed by
/// [`fft_if_finite`]) or `SeparableAuto` (`rconv.dask` plans a whole image with it).
pub fn plan<T: SignalElem>(p: &Corr2dParams, kernel: &ArrayView2<T>, threads: usize) -> Engine {
    let (oh, ow) = p.out_shape();
    let (kh, kw) = p.kernel;
    let fft = fft_cheaper::<T>(p, threads);
    let sep = separable_cost(oh, ow, kh, kw, threads);
    let sep_wins = kh > 1
        && kw > 1
        && sep < direct_cost(oh, ow, kh, kw, threads)
        && (!fft || sep < fft_cost(oh, ow, kh, kw, threads) * T::FFT_FACTOR);
    if sep_wins && T::factor(&effective_kernel(kernel, p), kh, kw).is_some() {
        Engine::SeparableAuto
    } else if fft {
        Engine::Fft
    } else {
        Engine::Direct
    }
}

/// The engine [`choose`]'s choice amounts to for these inputs (a scan decides between the
/// separable passes and direct for NaN or Inf, which [`run`] does without one).
pub fn resolved<T: SignalElem>(job: &Job<'_, T>, engine: Engine) -> Engine {
    match engine {
        Engine::SeparableAuto if !finite_inputs(job) => Engine::Direct,
        Engine::SeparableAuto => Engine::Separable,
        e => e,
    }
}

/// The cost of the two separable passes, in direct multiply-adds.
pub fn separable_cost(oh: usize, ow: usize, kh: usize, kw: usize, threads: usize) -> f64 {
    let taps = ((oh + kh.max(1) - 1) * kw + oh * (kh + 1)) as f64 * ow as f64;
    SEPARABLE_FACTOR * taps / threads.max(1) as f64
}

/// True when no input (nor the fill value in use) holds NaN or Inf.
fn finite_inputs<T: SignalElem>(job: &Job<'_, T>) -> bool {
    let fill_ok = job.params.boundary != Boundary::Fill || job.fill.finite();
    fill_ok && all_finite(&job.image) && all_finite(&job.kernel)
}

/// True when no element of `a` is NaN or Inf: contiguous rows in chunks whose test is a
/// branch-free reduction (which vectorises).
pub fn all_finite<T: SignalElem, D: ndarray::Dimension>(a: &ndarray::ArrayView<T, D>) -> bool {
    a.rows().into_iter().all(|row| match row.as_slice() {
        Some(s) => all_finite_slice(s),
        None => row.iter().all(|v| v.finite()),
    })
}

/// The FFT, unless an input (or the fill value in use) holds NaN or Inf.
pub fn fft_if_finite<T: SignalElem>(job: &Job<'_, T>) -> Engine {
    if finite_inputs(job) {
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

/// The two passes of a rank-1 kernel; a `ValueError` for any other kernel.
/// With `auto`, a call whose inputs held NaN or Inf (a non-finite intermediate row, then a
/// scan of the inputs, tells) is recomputed directly.
fn separable<T: SignalElem>(job: &Job<'_, T>, mut out: ArrayViewMut2<T>, auto: bool) -> Result<()> {
    let p = job.params;
    let finite_rows = {
        let Some((prep, o)) = p.prepare(job.image.view(), &job.kernel, job.fill, &mut out)? else {
            return Ok(());
        };
        let Some((u, v)) = T::factor(&prep.keff, prep.kh, prep.kw) else {
            return Err(ConvError::value(format!(
                "method='separable' needs a kernel of rank 1 (an outer product of a column \
                     and a row), got a {}x{} kernel of higher rank",
                prep.kh, prep.kw
            )));
        };
        if prep.kh == 0 || prep.kw == 0 {
            o.fill(T::ZERO);
            return Ok(());
        }
        let check = |c: &[T]| !auto || all_finite_slice(c);
        correlate_separable(&prep, (&u, &v), o, job.threads, check)
    };
    if !finite_rows && !finite_inputs(job) {
        return correlate(
            job.image.view(),
            job.kernel.view(),
            p,
            job.fill,
            out,
            job.threads,
        );
    }
    Ok(())
}

/// [`all_finite`] of a slice.
fn all_finite_slice<T: SignalElem>(s: &[T]) -> bool {
    s.chunks(512)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.finite()))
}

/// Run `job` on `engine` into `out` (shape `job.params.out_shape()`, C order).
pub fn run<T: SignalElem>(engine: Engine, job: &Job<'_, T>, out: ArrayViewMut2<T>) -> Result<()> {
    let (image, kernel) = (job.image.view(), job.kernel.view());
    match engine {
        Engine::Direct => correlate(image, kernel, job.params, job.fill, out, job.threads),
        Engine::Fft => T::correlate_fft(job, out),
        Engine::Separable => separable(job, out, false),
        Engine::SeparableAuto => separable(job, out, true),
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
            fn factor(k: &[Self], kh: usize, kw: usize) -> Option<(Vec<Self>, Vec<Self>)> {
                factor_float(k, kh, kw)
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
        return Err(ConvError::value(format!(
            "method='fft' with integer inputs would be inexact (products up to {a:.3e} * \
                 {b:.3e} over {terms} terms exceed 2**52); use method='direct'"
        )));
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
    ($($t:ty => $s:ty),*) => {$(
        impl SignalElem for $t {
            const INTEGER: bool = true;
            const FFT_FACTOR: f64 = 0.0;
            #[inline]
            fn finite(self) -> bool { true }
            fn correlate_fft(job: &Job<'_, Self>, out: ArrayViewMut2<Self>) -> Result<()> {
                integer_fft(job, out, (|v| v as f64, |v| v as $t))
            }
            fn factor(k: &[Self], kh: usize, kw: usize) -> Option<(Vec<Self>, Vec<Self>)> {
                // the values as stored, or (unsigned types) as the signed integers of the
                // same bits: either factoring holds modulo 2^bits, where the sums are taken
                let wide: Vec<i128> = k.iter().map(|&v| v as i128).collect();
                let (u, v) = factor_int(&wide, kh, kw).or_else(|| {
                    let signed: Vec<i128> = k.iter().map(|&v| v as $s as i128).collect();
                    (signed != wide).then(|| factor_int(&signed, kh, kw)).flatten()
                })?;
                // wrapping casts: the factors hold modulo 2^bits, where the sums are taken
                Some((u.iter().map(|&a| a as $t).collect(), v.iter().map(|&b| b as $t).collect()))
            }
        }
    )*};
}
int_signal!(
    i8 => i8, i16 => i16, i32 => i32, i64 => i64, u8 => i8, u16 => i16, u32 => i32, u64 => i64
);

/// Complex correlation as four real FFT correlations. correlate2d conjugates the kernel
/// actually slid (in1 after the 'valid' swap); the real correlations then run unconjugated.
fn complex_fft<R: FftReal>(
    job: &Job<'_, Complex<R>>,
    out: ArrayViewMut2<Complex<R>>,
) -> Result<()> {
    let (image, kernel, p) = (job.image, job.kernel, job.params);
    let (fill, threads) = (job.fill, job.threads);
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
            fn factor(k: &[Self], kh: usize, kw: usize) -> Option<(Vec<Self>, Vec<Self>)> {
                factor_float(k, kh, kw)
            }
        }
    )*};
}
complex_signal!(f32 => 5.8, f64 => 5.0);
