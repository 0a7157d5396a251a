//! Direct 2-D correlation with scipy.signal semantics: modes, boundaries, fill values.
//!
//! Everything is reduced to one operation: a correlation
//! `out[i, j] = sum_{a, b} taps[a, b] * ext[i + a - top, j + b - left]`
//! where `ext` is the image extended by its boundary rule. [`Corr2dParams`] owns the shapes and
//! the offsets (`top`, `left`); [`correlate`] runs the kernel over disjoint blocks of output rows.

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::params::{Boundary, Corr2dParams, Prepared};
use super::row_kernels::{Geometry, RowKernel, MAX_TILE};
use crate::base::error::Result;
use crate::base::scalar::Elem;

/// Bytes the ring of extended rows of one block may use. Measured on 2048-wide images: whole
/// rows (ring in L2) beat L1-sized column strips by 10-40%, as the input is then read in
/// long sequential runs; strips only cap the ring for very wide images.
const RING_BUDGET: usize = 1024 * 1024;

/// Outputs at least this large (a quarter of this machine's 32 MiB L3; input and output
/// together then fill half of it) are written with streaming stores. Measured: 2048x2048
/// float32 3x3 went from 1.23 to 0.96 ms; float64 cases unchanged.
pub(crate) const STREAM_BYTES: usize = 8 << 20;

/// Output rows computed together by the two-row kernel.
const PAIR: usize = 2;

/// Write row `v` of `image` extended by `boundary` (virtual coordinates: row `v`, columns
/// `shift .. shift + dst.len()`, either may lie outside the image) into `dst`.
pub fn extend_row<T: Elem>(
    image: &ArrayView2<T>,
    boundary: Boundary,
    fill: T,
    v: isize,
    shift: isize,
    dst: &mut [T],
) {
    let (h, w) = image.dim();
    let src_row = if h == 0 { None } else { boundary.map(v, h) };
    let Some(ri) = src_row else {
        dst.fill(fill);
        return;
    };
    let row = image.row(ri);
    let ext_col = |v: isize| -> T {
        if w == 0 {
            return fill;
        }
        match boundary.map(v, w) {
            Some(c) => row[c],
            None => fill,
        }
    };
    // dst[c] holds image column c + shift; the part with 0 <= c + shift < w is a copy.
    let len = dst.len() as isize;
    let lo = (-shift).clamp(0, len) as usize;
    let hi = (w as isize - shift).clamp(0, len) as usize;
    if boundary == Boundary::Fill && hi > lo {
        // everything outside the image is the fill value: two fills and a copy
        let s0 = (lo as isize + shift) as usize;
        dst[..lo].fill(fill);
        dst[hi..].fill(fill);
        match row.as_slice() {
            Some(src) => dst[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]),
            None => {
                for (d, s) in dst[lo..hi]
                    .iter_mut()
                    .zip(row.slice(ndarray::s![s0..]).iter())
                {
                    *d = *s;
                }
            }
        }
        return;
    }
    for (c, d) in dst[..lo].iter_mut().enumerate() {
        *d = ext_col(c as isize + shift);
    }
    if hi > lo {
        let s0 = (lo as isize + shift) as usize;
        let s1 = s0 + (hi - lo);
        match row.as_slice() {
            Some(src) => dst[lo..hi].copy_from_slice(&src[s0..s1]),
            None => {
                let src = row.slice(ndarray::s![s0..s1]);
                for (d, s) in dst[lo..hi].iter_mut().zip(src.iter()) {
                    *d = *s;
                }
            }
        }
    }
    let tail = hi.max(lo);
    for (c, d) in dst.iter_mut().enumerate().skip(tail) {
        *d = ext_col(c as isize + shift);
    }
}

/// Everything one block of output rows needs; `ring` holds `kh + 1` extended input rows of
/// `row_len` elements, row `r` of the extended image at slot `r % (kh + 1)`.
struct RowCtx<'a, 'b, T> {
    image: &'a ArrayView2<'b, T>,
    /// Effective kernel, row-major `(kh, kw)`.
    keff: &'a [T],
    kh: usize,
    kw: usize,
    top: usize,
    left: usize,
    boundary: Boundary,
    fill: T,
    ow: usize,
    /// Output columns per strip (a multiple of the tile widths, except for the last strip).
    strip: usize,
    /// Length of one extended row in the ring: `strip + kw - 1` plus tile overhang.
    row_len: usize,
    /// Use streaming stores for the output (see [`STREAM_BYTES`]).
    stream: bool,
}

impl<T: RowKernel> RowCtx<'_, '_, T> {
    /// Write extended row `r` (virtual row `r - top`), columns `c0..c0 + dst.len()` of the
    /// extended image (virtual columns shifted by `left`), into `dst`.
    fn build_row(&self, r: usize, c0: usize, dst: &mut [T]) {
        extend_row(
            self.image,
            self.boundary,
            self.fill,
            r as isize - self.top as isize,
            c0 as isize - self.left as isize,
            dst,
        );
    }

    /// Compute output rows `first..first + out.len() / ow` into `out`, one column strip at a
    /// time (see [`RING_BUDGET`]), two output rows at a time.
    fn block(&self, first: usize, out: &mut [T]) {
        let n_rows = out.len() / self.ow.max(1);
        if n_rows == 0 {
            return;
        }
        if self.keff.is_empty() {
            out.fill(T::ZERO);
            return;
        }
        let (kh, ow) = (self.kh, self.ow);
        let slots = kh + PAIR - 1;
        let mut ring = vec![T::ZERO; slots * self.row_len];
        let mut offs = vec![0usize; slots];
        let mut c0 = 0;
        while c0 < ow {
            let c1 = (c0 + self.strip).min(ow);
            let mut next = first; // next extended row to build
            let mut k = 0;
            while k < n_rows {
                let pair = k + 1 < n_rows;
                let i = first + k;
                let need = i + kh + usize::from(pair); // rows i .. need are read
                while next < need {
                    let s = (next % slots) * self.row_len;
                    self.build_row(next, c0, &mut ring[s..s + self.row_len]);
                    next += 1;
                }
                for (a, o) in offs.iter_mut().enumerate() {
                    *o = ((i + a) % slots) * self.row_len;
                }
                let g = Geometry {
                    ring: &ring,
                    offs: &offs,
                    keff: self.keff,
                    kh,
                    kw: self.kw,
                    stream: self.stream,
                };
                if pair {
                    let (o0, o1) = out[k * ow..(k + 2) * ow].split_at_mut(ow);
                    T::rows(&g, &mut o0[c0..c1], Some(&mut o1[c0..c1]));
                    k += 2;
                } else {
                    let o0 = &mut out[k * ow..(k + 1) * ow];
                    T::rows(&g, &mut o0[c0..c1], None);
                    k += 1;
                }
            }
            c0 = c1;
        }
    }
}

/// Correlate `image` with `kernel` (already swapped as `p` says) into `out`.
///
/// `out` must have shape `p.out_shape()` and be in standard (C) layout; `threads == 1` runs
/// serially on the calling thread.
pub fn correlate<T: RowKernel>(
    image: ArrayView2<T>,
    kernel: ArrayView2<T>,
    p: &Corr2dParams,
    fill: T,
    mut out: ArrayViewMut2<T>,
    threads: usize,
) -> Result<()> {
    if let Some((job, out)) = p.prepare(image, &kernel, fill, &mut out)? {
        correlate_raw(&job, out, threads);
    }
    Ok(())
}

/// The row context of `job` for an output of `oh` rows (`stream`: streaming stores).
fn row_ctx<'a, 'b, T: RowKernel>(job: &'a Prepared<'b, T>, stream: bool) -> RowCtx<'a, 'b, T> {
    let ow = job.ow;
    let (kh, kw) = (job.kh, job.kw);
    let size = std::mem::size_of::<T>();
    // A strip is a whole number of tiles of every kernel (widths divide 192), and the ring
    // (kh + 1 rows of strip + kw - 1 elements) stays within the ring budget.
    let unit = 192;
    let fit = (RING_BUDGET / ((kh + PAIR) * size)).saturating_sub(kw);
    // One strip for an image narrower than a unit: the ring rows then hold only what the
    // kernels read (measured: an 8x8 image spent 38% of its call extending 258-wide rows).
    let strip = if ow <= unit {
        ow
    } else {
        (fit / unit * unit).max(unit).min(ow.div_ceil(unit) * unit)
    };
    RowCtx {
        image: &job.image,
        keff: &job.keff,
        kh: kh.max(1),
        kw,
        top: job.top,
        left: job.left,
        boundary: job.boundary,
        fill: job.fill,
        ow,
        strip,
        row_len: strip + MAX_TILE + kw.max(1) - 1,
        stream,
    }
}

/// The engine behind [`correlate`]: the correlation `job` (see [`Prepared`]) into `out`.
pub fn correlate_raw<T: RowKernel>(job: &Prepared<'_, T>, out: &mut [T], threads: usize) {
    let ow = job.ow;
    if ow == 0 || out.is_empty() {
        return;
    }
    let oh = out.len() / ow;
    let size = std::mem::size_of::<T>();
    let ctx = row_ctx(job, oh * ow * size >= STREAM_BYTES);
    let work = oh * ow * job.keff.len().max(1);
    if threads <= 1 || oh < 2 || work < 1 << 16 {
        ctx.block(0, out);
        return;
    }
    // Blocks of whole output rows (an even number, for the two-row kernel): about 8 per
    // thread, so that work stealing evens out the load.
    let block_rows = oh.div_ceil(threads * 8).next_multiple_of(PAIR);
    crate::base::threads::run(threads, || {
        out.par_chunks_mut(block_rows * ow)
            .enumerate()
            .for_each(|(b, chunk)| ctx.block(b * block_rows, chunk));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::choice::Choice;
    use crate::base::error::ConvError;
    use crate::signal::params::{Mode, Op};
    use ndarray::{arr2, Array2};

    fn params(in1: (usize, usize), in2: (usize, usize), mode: Mode, op: Op) -> Corr2dParams {
        Corr2dParams::new(in1, in2, mode, Boundary::Fill, op).unwrap()
    }

    #[test]
    fn shapes_follow_scipy() {
        let full = params((5, 7), (3, 2), Mode::Full, Op::Correlate);
        assert_eq!(full.out_shape(), (7, 8));
        assert_eq!(full.offsets(), (2, 1));
        let same = params((5, 7), (4, 4), Mode::Same, Op::Correlate);
        assert_eq!(same.out_shape(), (5, 7));
        assert_eq!(same.offsets(), (1, 1));
        let same_conv = params((5, 7), (4, 4), Mode::Same, Op::Convolve);
        assert_eq!(same_conv.offsets(), (2, 2));
        let valid = params((5, 7), (3, 2), Mode::Valid, Op::Correlate);
        assert_eq!(valid.out_shape(), (3, 6));
        let swapped = params((3, 2), (5, 7), Mode::Valid, Op::Correlate);
        assert!(swapped.swapped && swapped.reversed());
        assert_eq!(swapped.out_shape(), (3, 6));
        let empty = params((0, 0), (1, 1), Mode::Full, Op::Correlate);
        assert_eq!(empty.out_shape(), (0, 0));
        let both_empty =
            Corr2dParams::new((0, 7), (0, 1), Mode::Full, Boundary::Fill, Op::Correlate);
        assert!(both_empty.is_err());
        let empty_valid = params((2, 3), (0, 0), Mode::Valid, Op::Correlate);
        assert_eq!(empty_valid.out_shape(), (3, 4));
    }

    #[test]
    fn valid_mode_errors() {
        let e = Corr2dParams::new((2, 5), (3, 3), Mode::Valid, Boundary::Fill, Op::Convolve);
        // the message names the arguments, never the function (the binding adds it)
        assert!(matches!(e, Err(ConvError::Value(m)) if m.contains("in1") && !m.contains(": ")));
        let e = Corr2dParams::new((2, 2), (3, 3), Mode::Valid, Boundary::Fill, Op::Corr2d);
        assert!(e.is_err());
        assert!(Mode::parse("FULL").is_none());
        assert!(Boundary::parse("reflect").is_none());
        assert_eq!(Boundary::parse("pad"), Some(Boundary::Fill));
    }

    #[test]
    fn boundary_maps_repeat() {
        let s = Boundary::Symm;
        let mapped: Vec<_> = (-5..8).map(|v| s.map(v, 3).unwrap()).collect();
        assert_eq!(mapped, vec![1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
        let w = Boundary::Wrap;
        let mapped: Vec<_> = (-4..5).map(|v| w.map(v, 3).unwrap()).collect();
        assert_eq!(mapped, vec![2, 0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(Boundary::Fill.map(-1, 3), None);
    }

    fn run(x: &Array2<i64>, k: &Array2<i64>, mode: Mode, op: Op, threads: usize) -> Array2<i64> {
        let p = Corr2dParams::new(x.dim(), k.dim(), mode, Boundary::Fill, op).unwrap();
        let (img, ker) = if p.swapped { (k, x) } else { (x, k) };
        let mut out = Array2::zeros(p.out_shape());
        correlate(img.view(), ker.view(), &p, 0, out.view_mut(), threads).unwrap();
        out
    }

    #[test]
    fn scipy_convolve_example() {
        let a = arr2(&[
            [1, 1, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 1, 1],
            [0, 0, 1, 1, 0],
            [0, 1, 1, 0, 0],
        ]);
        let b = arr2(&[[1, 0, 1], [0, 1, 0], [1, 0, 1]]);
        let out = run(&a, &b, Mode::Valid, Op::Convolve, 1);
        assert_eq!(out, arr2(&[[4, 3, 4], [2, 4, 3], [2, 3, 4]]));
    }

    #[test]
    fn d2l_example_serial_and_parallel() {
        let x = Array2::from_shape_vec((3, 3), (0..9).collect()).unwrap();
        let k = arr2(&[[0, 1], [2, 3]]);
        assert_eq!(
            run(&x, &k, Mode::Valid, Op::Corr2d, 1),
            arr2(&[[19, 25], [37, 43]])
        );
        let big = Array2::from_shape_fn((300, 301), |(i, j)| (i * 7 + j * 3) as i64 % 11);
        let k = Array2::from_shape_fn((4, 5), |(i, j)| (i as i64) - (j as i64));
        assert_eq!(
            run(&big, &k, Mode::Same, Op::Correlate, 1),
            run(&big, &k, Mode::Same, Op::Correlate, 2)
        );
    }

    /// The definition, evaluated naively in f64.
    fn naive(x: &Array2<f64>, k: &Array2<f64>, p: &Corr2dParams, fill: f64) -> Array2<f64> {
        let (top, left) = p.offsets();
        let (kh, kw) = k.dim();
        let (h, w) = x.dim();
        Array2::from_shape_fn(p.out_shape(), |(i, j)| {
            let mut acc = 0.0;
            for a in 0..kh {
                for b in 0..kw {
                    let wv = match p.op {
                        Op::Convolve => k[[kh - 1 - a, kw - 1 - b]],
                        _ => k[[a, b]],
                    };
                    let r = p.boundary.map(i as isize + a as isize - top as isize, h);
                    let c = p.boundary.map(j as isize + b as isize - left as isize, w);
                    acc += wv
                        * match (r, c) {
                            (Some(r), Some(c)) => x[[r, c]],
                            _ => fill,
                        };
                }
            }
            acc
        })
    }

    #[test]
    fn kernels_match_definition_for_every_shape() {
        // Covers the one-row and two-row kernels, partial tiles, odd row counts and every
        // boundary, in f64 and f32, serially and in parallel.
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64) / (1u64 << 31) as f64 - 0.5
        };
        for (h, w) in [(1, 1), (2, 3), (7, 50), (33, 97), (64, 200)] {
            for (kh, kw) in [(1, 1), (3, 3), (2, 5), (6, 1), (9, 9)] {
                let x = Array2::from_shape_fn((h, w), |_| next());
                let k = Array2::from_shape_fn((kh, kw), |_| next());
                for boundary in [Boundary::Fill, Boundary::Symm, Boundary::Wrap] {
                    for (mode, op) in [
                        (Mode::Same, Op::Correlate),
                        (Mode::Full, Op::Convolve),
                        (Mode::Same, Op::Convolve),
                    ] {
                        let p = Corr2dParams::new((h, w), (kh, kw), mode, boundary, op).unwrap();
                        let want = naive(&x, &k, &p, 0.5);
                        for threads in [1, 2] {
                            let mut out = Array2::<f64>::zeros(p.out_shape());
                            correlate(x.view(), k.view(), &p, 0.5, out.view_mut(), threads)
                                .unwrap();
                            let err = (&out - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
                            assert!(err < 1e-12, "{h}x{w} {kh}x{kw} {p:?}: {err}");
                            let x32 = x.mapv(|v| v as f32);
                            let k32 = k.mapv(|v| v as f32);
                            let mut o32 = Array2::<f32>::zeros(p.out_shape());
                            correlate(x32.view(), k32.view(), &p, 0.5, o32.view_mut(), threads)
                                .unwrap();
                            let err = o32
                                .iter()
                                .zip(want.iter())
                                .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
                            assert!(err < 1e-4, "f32 {h}x{w} {kh}x{kw} {p:?}: {err}");
                        }
                    }
                }
            }
        }
    }
}
