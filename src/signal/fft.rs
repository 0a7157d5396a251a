//! FFT correlation (`method='fft'`): overlap-save over output tiles, with the same semantics
//! as the direct engine (every mode and boundary: each tile's input is gathered through the
//! boundary extension, then transformed).
//!
//! Memory stays close to input + output: one FFT tile of scratch per task and the kernel's
//! spectrum. Real inputs use real-to-complex transforms (`realfft`) along rows and complex
//! transforms (`rustfft`) along columns.

use std::sync::Arc;

use ndarray::{ArrayView2, ArrayViewMut2};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use crate::base::error::Result;
use crate::base::par::{for_each_task, DisjointSlice};
use crate::base::real::Real;
use crate::base::simd::simd_twin;
use crate::signal::direct::extend_row;
use crate::signal::params::{Corr2dParams, Prepared};

/// Float types the FFT engine computes in.
pub trait FftReal: Real + realfft::FftNum {}
impl FftReal for f32 {}
impl FftReal for f64 {}

/// Smallest `2^a 3^b 5^c >= n` (sizes rustfft transforms fastest).
pub fn next_fast_len(n: usize) -> usize {
    let mut best = n.max(1).next_power_of_two();
    let mut p5 = 1;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut m = p35;
            while m < n {
                m *= 2;
            }
            best = best.min(m);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

/// Candidate FFT lengths in `lo..=hi`: `2^a` and `3 * 2^a` (measured: tiles with factors
/// of 5 or 9 ran up to twice as slow per point as these).
fn smooth_lengths(lo: usize, hi: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut p2 = 1usize;
    while p2 <= hi {
        for m in [p2, 3 * p2] {
            if (lo..=hi).contains(&m) {
                v.push(m);
            }
        }
        p2 *= 2;
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Smallest `2^a` or `3 * 2^a` that is `>= n`.
fn good_len(n: usize) -> usize {
    let p = n.max(1).next_power_of_two();
    if p / 4 * 3 >= n && p >= 4 {
        p / 4 * 3
    } else {
        p
    }
}

/// Overlap-save tile `(fh, fw)` for an `(oh, ow)` output and a `(kh, kw)` kernel on
/// `threads` threads: among 5-smooth sizes from two kernel lengths up to the whole padded
/// output, the one with the least estimated time (tiles run in parallel, so a few large
/// tiles can beat one whole-image transform that would leave threads idle).
pub fn tile_shape(oh: usize, ow: usize, kh: usize, kw: usize, threads: usize) -> (usize, usize) {
    let cands = |out: usize, k: usize| {
        let whole = good_len(out + k - 1);
        let lo = (2 * k).max(16).min(whole);
        smooth_lengths(lo, whole)
    };
    let (ch, cw) = (cands(oh, kh), cands(ow, kw));
    let mut best = (f64::INFINITY, ch[ch.len() - 1], cw[cw.len() - 1]);
    for &fh in &ch {
        let th = oh.div_ceil(fh + 1 - kh);
        for &fw in &cw {
            let tiles = th * ow.div_ceil(fw + 1 - kw);
            let n = (fh * fw) as f64;
            let rounds = tiles.div_ceil(threads.max(1)) as f64;
            let cost = rounds * n * (n.log2() + 3.0);
            if cost < best.0 {
                best = (cost, fh, fw);
            }
        }
    }
    (best.1, best.2)
}

/// Estimated cost (arbitrary units calibrated against the direct kernels' units) of the FFT
/// path for an `(oh, ow)` output and a `(kh, kw)` kernel, per thread.
pub fn fft_cost(oh: usize, ow: usize, kh: usize, kw: usize, threads: usize) -> f64 {
    if oh == 0 || ow == 0 || kh == 0 || kw == 0 {
        return 0.0;
    }
    let (fh, fw) = tile_shape(oh, ow, kh, kw, threads);
    let tiles = oh.div_ceil(fh + 1 - kh) * ow.div_ceil(fw + 1 - kw);
    let n = (fh * fw) as f64;
    let rounds = tiles.div_ceil(threads.max(1)) as f64;
    // forward + inverse 2-D transforms per tile (the kernel's once), plus the gather/copy
    rounds * n * (2.0 * n.log2() + 6.0) + n * n.log2()
}

/// Estimated cost of the direct path (same units), per thread: one multiply-add per tap and
/// output.
pub fn direct_cost(oh: usize, ow: usize, kh: usize, kw: usize, threads: usize) -> f64 {
    (oh * ow) as f64 * (kh * kw) as f64 / threads.max(1) as f64
}

struct Plans<T: FftReal> {
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    col_fwd: Arc<dyn Fft<T>>,
    col_inv: Arc<dyn Fft<T>>,
    fh: usize,
    fw: usize,
    nc: usize,
}

/// Scratch of one task: the real tile, its spectrum (row-major and transposed).
struct Scratch<T> {
    real: Vec<T>,
    spec: Vec<Complex<T>>,
    spec_t: Vec<Complex<T>>,
}

impl<T: FftReal> Plans<T> {
    fn scratch(&self) -> Scratch<T> {
        Scratch {
            real: vec![T::ZERO; self.fh * self.fw],
            spec: vec![Complex::new(T::ZERO, T::ZERO); self.fh * self.nc],
            spec_t: vec![Complex::new(T::ZERO, T::ZERO); self.fh * self.nc],
        }
    }

    /// `s.real` -> 2-D spectrum in `s.spec_t`, transposed: `nc` rows of `fh`.
    fn forward(&self, s: &mut Scratch<T>) {
        let (fh, fw, nc) = (self.fh, self.fw, self.nc);
        for (row, spec) in s.real.chunks_exact_mut(fw).zip(s.spec.chunks_exact_mut(nc)) {
            // lengths match the plan: cannot fail
            let _ = self.r2c.process(row, spec);
        }
        transpose(&s.spec, (fh, nc), &mut s.spec_t);
        self.col_fwd.process(&mut s.spec_t);
    }

    /// Inverse of [`forward`](Self::forward) (unnormalised) back into rows `rows` of
    /// `s.real` (the others are left as they were: overlap-save discards them).
    fn inverse(&self, s: &mut Scratch<T>, rows: std::ops::Range<usize>) {
        let (fh, fw, nc) = (self.fh, self.fw, self.nc);
        self.col_inv.process(&mut s.spec_t);
        transpose(&s.spec_t, (nc, fh), &mut s.spec);
        let spec_rows = s.spec.chunks_exact_mut(nc).skip(rows.start);
        let real_rows = s.real.chunks_exact_mut(fw).skip(rows.start);
        for (spec, row) in spec_rows.zip(real_rows).take(rows.len()) {
            // the DC and Nyquist bins of a real signal are real: drop rounding noise
            spec[0].im = T::ZERO;
            if fw.is_multiple_of(2) {
                spec[nc - 1].im = T::ZERO;
            }
            let _ = self.c2r.process(spec, row);
        }
    }
}

simd_twin! {
    /// [`transpose_imp`] compiled for the process's level.
    fn transpose<C: Copy>(src: &[C], shape: (usize, usize), dst: &mut [C]) = transpose_imp;
}

simd_twin! {
    /// `x *= k` element by element (the tile's spectrum times the kernel's), compiled for the
    /// process's level.
    fn multiply<T: FftReal>(x: &mut [Complex<T>], k: &[Complex<T>]) {
        for (x, k) in x.iter_mut().zip(k) {
            *x = *x * *k;
        }
    }
}

/// `dst[c * rows + r] = src[r * cols + c]` for a `rows x cols` row-major `src`, in square
/// blocks that stay in the L1 (element by element, the strided stores of a 192-row spectrum
/// took a fifth of a 1024x1024, 63x63 correlation).
#[inline(always)]
fn transpose_imp<C: Copy>(src: &[C], (rows, cols): (usize, usize), dst: &mut [C]) {
    const B: usize = 16;
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "fft transpose: sizes"
    );
    for r0 in (0..rows).step_by(B) {
        let r1 = (r0 + B).min(rows);
        for c0 in (0..cols).step_by(B) {
            let c1 = (c0 + B).min(cols);
            for c in c0..c1 {
                let d = &mut dst[c * rows + r0..c * rows + r1];
                for (r, v) in (r0..r1).zip(d) {
                    *v = src[r * cols + c];
                }
            }
        }
    }
}

/// FFT counterpart of [`crate::signal::direct::correlate`] for real float types: same inputs,
/// same output (to rounding).
pub fn correlate_fft<T: FftReal>(
    image: ArrayView2<T>,
    kernel: ArrayView2<T>,
    p: &Corr2dParams,
    fill: T,
    mut out: ArrayViewMut2<T>,
    threads: usize,
) -> Result<()> {
    let Some((job, out)) = p.prepare(image, &kernel, fill, &mut out)? else {
        return Ok(());
    };
    if job.kh == 0 || job.kw == 0 {
        out.fill(T::ZERO);
        return Ok(());
    }
    correlate_fft_raw(&job, out, threads);
    Ok(())
}

/// The engine: the correlation `job` (see [`Prepared`]) into `out`.
pub fn correlate_fft_raw<T: FftReal>(job: &Prepared<'_, T>, out: &mut [T], threads: usize) {
    let ow = job.ow;
    let (kh, kw, top, left) = (job.kh, job.kw, job.top, job.left);
    let oh = out.len() / ow;
    let (fh, fw) = tile_shape(oh, ow, kh, kw, threads);
    let (th, tw) = (fh + 1 - kh, fw + 1 - kw);
    let nc = fw / 2 + 1;
    let mut rp = RealFftPlanner::<T>::new();
    let mut cp = FftPlanner::<T>::new();
    let plans = Plans {
        r2c: rp.plan_fft_forward(fw),
        c2r: rp.plan_fft_inverse(fw),
        col_fwd: cp.plan_fft_forward(fh),
        col_inv: cp.plan_fft_inverse(fh),
        fh,
        fw,
        nc,
    };
    // The kernel's spectrum: correlation is convolution with the flipped kernel, placed at
    // the origin; output (i, j) of a tile is then circular-convolution sample
    // (i + kh - 1, j + kw - 1), which no wrap-around reaches.
    let mut ks = plans.scratch();
    for a in 0..kh {
        for b in 0..kw {
            ks.real[(kh - 1 - a) * fw + (kw - 1 - b)] = job.keff[a * kw + b];
        }
    }
    plans.forward(&mut ks);
    let scale = T::ONE / <T as Real>::from_usize(fh * fw);
    let kspec: Vec<Complex<T>> = ks.spec_t.iter().map(|v| *v * scale).collect();

    let (rows_t, cols_t) = (oh.div_ceil(th), ow.div_ceil(tw));
    let outs = DisjointSlice::new(out);
    let run = |s: &mut Scratch<T>, t: usize| {
        let (r0, c0) = ((t / cols_t) * th, (t % cols_t) * tw);
        for (rr, row) in s.real.chunks_exact_mut(fw).enumerate() {
            let v = (r0 + rr) as isize - top as isize;
            extend_row(
                &job.image,
                job.boundary,
                job.fill,
                v,
                c0 as isize - left as isize,
                row,
            );
        }
        plans.forward(s);
        multiply(&mut s.spec_t, &kspec);
        let (nr, ncols) = (th.min(oh - r0), tw.min(ow - c0));
        plans.inverse(s, kh - 1..kh - 1 + nr);
        for i in 0..nr {
            let src = &s.real[(i + kh - 1) * fw + kw - 1..(i + kh - 1) * fw + kw - 1 + ncols];
            // SAFETY: tile t alone writes output rows r0..r0+nr, columns c0..c0+ncols (the
            // tiles partition the output).
            unsafe { outs.range((r0 + i) * ow + c0, ncols) }.copy_from_slice(src);
        }
    };
    let n_tiles = rows_t * cols_t;
    let parallel = threads > 1 && n_tiles > 1;
    crate::base::threads::run(threads, || {
        for_each_task(parallel, n_tiles, || plans.scratch(), run)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_kernel_and_prefer_parallel_work() {
        let (fh, fw) = tile_shape(1024, 1024, 63, 63, 2);
        assert!(fh >= 2 * 63 && fw >= 2 * 63);
        let tiles = 1024usize.div_ceil(fh - 62) * 1024usize.div_ceil(fw - 62);
        assert!(tiles >= 2, "{fh}x{fw}");
        let (fh, fw) = tile_shape(10, 10, 3, 3, 2);
        assert!(
            fh >= 12 && fw >= 12,
            "a small output is one tile: {fh}x{fw}"
        );
        assert_eq!(smooth_lengths(16, 64), vec![16, 24, 32, 48, 64]);
        assert_eq!(
            (good_len(5), good_len(7), good_len(13), good_len(1025)),
            (6, 8, 16, 1536)
        );
    }

    #[test]
    fn fast_lengths() {
        assert_eq!(next_fast_len(1), 1);
        assert_eq!(next_fast_len(7), 8);
        assert_eq!(next_fast_len(11), 12);
        assert_eq!(next_fast_len(97), 100);
        assert_eq!(next_fast_len(1025), 1080);
        for n in 1..300 {
            let m = next_fast_len(n);
            assert!(m >= n);
            let mut r = m;
            for f in [2, 3, 5] {
                while r.is_multiple_of(f) {
                    r /= f;
                }
            }
            assert_eq!(r, 1, "{m}");
        }
    }
}
