//! Batch normalisation over NCHW float32/float64 slices (torch.nn.functional.batch_norm, the
//! compute of torch.nn.BatchNorm2d): the batch statistics, the running-statistics update, the
//! output pass and the gradients.
//!
//! Passes over memory: a training forward reads `x` twice (the statistics, then the output),
//! an eval forward once; a training backward reads `(grad, x)` twice (the two per-channel
//! sums, then the input gradient), an eval backward once (the sums ride along).
//!
//! Numbers follow torch's CPU kernels (`batch_norm_cpu_collect_stats`, `InvStd`,
//! `batch_norm_cpu_update_stats_template`, `batch_norm_cpu_backward`), the reductions
//! accumulated in f64 for both dtypes (torch accumulates float32 in double too):
//!
//! - statistics in one read: per fixed segment of a channel's data, the sums of `x - K` and
//!   `(x - K)^2` in f64 for a shift `K`, the channel's first element, so that the variance
//!   does not lose digits to a large mean. As `K` is one of the values, the sums lose at
//!   most `log2(m)` bits; beyond `CANCEL` (an outlier as the first element of a huge
//!   channel) that channel is recomputed in two more reads (the plain mean, then the
//!   deviations);
//! - `invstd = 1 / sqrt(var + eps)`, 0 when both are 0 (torch's `InvStd`); the output is
//!   `x * scale + shift` with `scale = weight * invstd`, `shift = bias - mean * scale`;
//! - running statistics: `momentum * batch + (1 - momentum) * running`, the unbiased variance
//!   (`m2 / (m - 1)`) for `running_var`, computed in f64 and rounded once;
//! - backward: `sum_g = sum(g)`, `dotp = sum((x - mean) g)` per channel, each of the 16
//!   lanes summing `FLUSH` values in the data's type before adding them to its f64 sum
//!   (the terms are centred: nothing cancels; torch sums whole planes in float32);
//!   `grad_input = (g - sum_g / m - (x - mean) k) * invstd * weight`, `k = dotp invstd^2 / m`
//!   (eval: `g * invstd * weight`); `grad_weight = dotp * invstd`, `grad_bias = sum_g`.
//!
//! Determinism: the reductions are split into segments of at most `SEG` elements of one
//! plane `(n, c)`, fixed by the shape alone; each segment's sums are formed alone and the
//! segments of a channel are added in memory order, so results are bit-identical for every
//! thread count. Elementwise passes are parallel over fixed chunks.
//!
//! Outputs are write-only (`MaybeUninit`): every element of a fresh output is written once.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::base::par::{for_each_chunk, DisjointSlice};
use crate::base::real::Real;
use crate::base::simd::{dispatch, level, simd_twin, Level, Vector, WithVector};

/// Longest segment of a reduction (elements of one plane).
const SEG: usize = 1 << 13;
/// Elements per parallel task (reductions group whole segments up to about this many).
const TASK: usize = 1 << 15;
/// Independent accumulators of a reduction (breaks the add latency chain; vectorises).
const LANES: usize = 16;
/// Blocks of [`LANES`] values that the gradient sums add in the data's type before adding
/// the partial sums to their f64 lanes.
const FLUSH: usize = 4;
/// A variance below `shift_offset^2 / CANCEL` lost too many digits to the shifted sums:
/// recompute it from the mean (2^-20 of f64's 53 bits leaves 33).
const CANCEL: f64 = (1u64 << 20) as f64;

/// The shape of a batch-normalisation call: `n` images of `c` channels of `hw` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl BnShape {
    /// The shape of an `(n, c, h, w)` input.
    pub fn new([n, c, h, w]: [usize; 4]) -> Self {
        Self::of(n, c, h * w)
    }

    /// `n` images of `c` channels of `hw` values.
    pub fn of(n: usize, c: usize, hw: usize) -> Self {
        BnShape { n, c, hw }
    }

    /// Elements of the input.
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }

    /// Whether the input has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel, `m = n * h * w`.
    pub fn count(&self) -> usize {
        self.n * self.hw
    }

    /// Segments per plane.
    fn per_plane(&self) -> usize {
        self.hw.div_ceil(SEG)
    }

    /// All segments, plane after plane in memory order.
    fn segments(&self) -> usize {
        self.n * self.c * self.per_plane()
    }

    /// Segments per parallel task.
    fn per_task(&self) -> usize {
        (TASK / self.hw.clamp(1, SEG)).max(1)
    }

    /// The segments from number `first` on, in order: each one's channel and element range
    /// (no division per segment: small planes are a segment each, and a division costs
    /// about as much as summing them).
    fn segments_from(&self, first: usize) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
        let sp = self.per_plane().max(1);
        let (plane, mut q) = (first / sp, first % sp);
        let (mut c, mut start) = (plane % self.c.max(1), plane * self.hw);
        std::iter::repeat_with(move || {
            let item = (c, start + q * SEG..start + ((q + 1) * SEG).min(self.hw));
            q += 1;
            if q == sp {
                q = 0;
                start += self.hw;
                c = if c + 1 == self.c { 0 } else { c + 1 };
            }
            item
        })
    }
}

/// The weight and bias of an affine layer (each optional: 1 and 0).
#[derive(Debug, Clone, Copy)]
pub struct Affine<'a, T> {
    pub weight: Option<&'a [T]>,
    pub bias: Option<&'a [T]>,
}

/// Per-channel statistics of a batch, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    /// The mean.
    pub mean: Vec<f64>,
    /// The sum of squared deviations from the mean (`var = m2 / count`).
    pub m2: Vec<f64>,
    /// Values per channel.
    pub count: usize,
}

impl BatchStats {
    /// The biased variance of channel `c`.
    pub fn var(&self, c: usize) -> f64 {
        self.m2[c] / self.count as f64
    }

    /// `1 / sqrt(var + eps)` per channel, 0 where both are 0 (torch's `InvStd`).
    pub fn invstd(&self, eps: f64) -> Vec<f64> {
        (0..self.mean.len())
            .map(|c| inv_std(self.var(c), eps))
            .collect()
    }
}

/// Pairwise sum of the lanes in a fixed order.
#[inline(always)]
fn lane_sum(mut v: [f64; LANES]) -> f64 {
    let mut n = LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            v[i] += v[i + n];
        }
    }
    v[0]
}

/// `(sum(x - k), sum((x - k)^2))` of one segment, in f64, in [`LANES`] lanes (element `i`
/// of the segment goes to lane `i % LANES`) combined by [`lane_sum`]: the definition that
/// [`avx2::shifted_sums_f32`] reproduces bit for bit.
#[inline(always)]
fn shifted_sums_lanes<T: Real>(x: &[T], k: f64) -> [f64; 2] {
    let (mut a, mut b) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (blocks, rest) = x.as_chunks::<LANES>();
    for blk in blocks {
        for j in 0..LANES {
            let v = blk[j].to_f64() - k;
            a[j] += v;
            b[j] += v * v;
        }
    }
    for (j, &e) in rest.iter().enumerate() {
        let v = e.to_f64() - k;
        a[j] += v;
        b[j] += v * v;
    }
    [lane_sum(a), lane_sum(b)]
}

/// `(sum(g), sum((x - mean) g))` of one segment, in [`LANES`] lanes as
/// [`shifted_sums_lanes`], each lane summed in `T` over [`FLUSH`] blocks of lanes at a time
/// and then added to its f64 sum (reproduced by [`avx2::grad_sums_f32`]). The terms are
/// centred, so the short sums in `T` lose nothing that matters (torch sums whole planes in
/// float32); they halve the work of the float32 conversions.
#[inline(always)]
fn grad_sums_lanes<T: Real>(g: &[T], x: &[T], mean: T) -> [f64; 2] {
    let (mut a, mut b) = ([0.0f64; LANES], [0.0f64; LANES]);
    let flush = |a: &mut [f64; LANES], b: &mut [f64; LANES], pa: [T; LANES], pb: [T; LANES]| {
        for j in 0..LANES {
            a[j] += pa[j].to_f64();
            b[j] += pb[j].to_f64();
        }
    };
    let (gb, gr) = g.as_chunks::<LANES>();
    let (xb, xr) = x.as_chunks::<LANES>();
    for (gs, xs) in gb.chunks(FLUSH).zip(xb.chunks(FLUSH)) {
        let (mut pa, mut pb) = ([T::ZERO; LANES], [T::ZERO; LANES]);
        for (gv, xv) in gs.iter().zip(xs) {
            for j in 0..LANES {
                pa[j] += gv[j];
                pb[j] += (xv[j] - mean) * gv[j];
            }
        }
        flush(&mut a, &mut b, pa, pb);
    }
    if !gr.is_empty() {
        let (mut pa, mut pb) = ([T::ZERO; LANES], [T::ZERO; LANES]);
        for (j, (&gv, &xv)) in gr.iter().zip(xr).enumerate() {
            pa[j] += gv;
            pb[j] += (xv - mean) * gv;
        }
        flush(&mut a, &mut b, pa, pb);
    }
    [lane_sum(a), lane_sum(b)]
}

/// [`shifted_sums_lanes`] of f64 data in the level's vectors: lane `j` of the definition is
/// lane `j % V::LANES` of vector `j / V::LANES`, so the sums are the same bit for bit (LLVM
/// left the portable loop scalar at every level).
struct ShiftedF64<'a>(&'a [f64], f64);

impl WithVector<f64> for ShiftedF64<'_> {
    type Out = [f64; 2];
    #[inline(always)]
    fn call<V: Vector<Elem = f64>>(self) -> [f64; 2] {
        let ShiftedF64(x, k) = self;
        let nv = LANES / V::LANES;
        let (blocks, rest) = x.as_chunks::<LANES>();
        let (mut la, mut lb) = ([0.0f64; LANES], [0.0f64; LANES]);
        // SAFETY: loads of `V::LANES` values at `q * V::LANES < LANES` inside a block of
        // `LANES`, stores likewise inside `la`/`lb`; `dispatch` runs this at V's level.
        unsafe {
            let kv = V::splat(k);
            let (mut a, mut b) = ([V::zero(); LANES], [V::zero(); LANES]);
            for blk in blocks {
                for q in 0..nv {
                    let v = V::load(blk.as_ptr().add(q * V::LANES)).sub(kv);
                    a[q] = a[q].add(v);
                    b[q] = b[q].add(v.mul(v));
                }
            }
            for q in 0..nv {
                a[q].store(la.as_mut_ptr().add(q * V::LANES));
                b[q].store(lb.as_mut_ptr().add(q * V::LANES));
            }
        }
        for (j, &e) in rest.iter().enumerate() {
            let v = e - k;
            la[j] += v;
            lb[j] += v * v;
        }
        [lane_sum(la), lane_sum(lb)]
    }
}

/// [`grad_sums_lanes`] of f64 data in the level's vectors (as [`ShiftedF64`]).
struct GradF64<'a>(&'a [f64], &'a [f64], f64);

impl WithVector<f64> for GradF64<'_> {
    type Out = [f64; 2];
    #[inline(always)]
    fn call<V: Vector<Elem = f64>>(self) -> [f64; 2] {
        let GradF64(g, x, mean) = self;
        let nv = LANES / V::LANES;
        let (gb, gr) = g.as_chunks::<LANES>();
        let (xb, xr) = x.as_chunks::<LANES>();
        let (mut la, mut lb) = ([0.0f64; LANES], [0.0f64; LANES]);
        // SAFETY: as `ShiftedF64::call`, for the blocks of `g` and `x`.
        unsafe {
            let mv = V::splat(mean);
            let (mut a, mut b) = ([V::zero(); LANES], [V::zero(); LANES]);
            for (gs, xs) in gb.chunks(FLUSH).zip(xb.chunks(FLUSH)) {
                let (mut pa, mut pb) = ([V::zero(); LANES], [V::zero(); LANES]);
                for (gv, xv) in gs.iter().zip(xs) {
                    for q in 0..nv {
                        let gq = V::load(gv.as_ptr().add(q * V::LANES));
                        let xq = V::load(xv.as_ptr().add(q * V::LANES));
                        pa[q] = pa[q].add(gq);
                        pb[q] = pb[q].add(xq.sub(mv).mul(gq));
                    }
                }
                for q in 0..nv {
                    a[q] = a[q].add(pa[q]);
                    b[q] = b[q].add(pb[q]);
                }
            }
            for q in 0..nv {
                a[q].store(la.as_mut_ptr().add(q * V::LANES));
                b[q].store(lb.as_mut_ptr().add(q * V::LANES));
            }
        }
        if !gr.is_empty() {
            let (mut pa, mut pb) = ([0.0f64; LANES], [0.0f64; LANES]);
            for (j, (&gv, &xv)) in gr.iter().zip(xr).enumerate() {
                pa[j] += gv;
                pb[j] += (xv - mean) * gv;
            }
            for j in 0..LANES {
                la[j] += pa[j];
                lb[j] += pb[j];
            }
        }
        [lane_sum(la), lane_sum(lb)]
    }
}

/// `x` as f64 data if `T` is f64.
#[inline(always)]
fn as_f64<T: Real>(x: &[T]) -> Option<&[f64]> {
    // SAFETY: `Real` is implemented for f32 and f64 only, so an 8-byte `T` is f64 (same
    // layout and length).
    (std::mem::size_of::<T>() == 8)
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const f64, x.len()) })
}

/// `x` as f32 data if `T` is f32.
#[inline(always)]
fn as_f32<T: Real>(x: &[T]) -> Option<&[f32]> {
    // SAFETY: `Real` is implemented for f32 and f64 only, so a 4-byte `T` is f32 (same
    // layout and length).
    (std::mem::size_of::<T>() == 4)
        .then(|| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len()) })
}

/// [`shifted_sums_lanes`]: float32 through AVX-512 or AVX2 intrinsics at those levels (LLVM
/// pairs the two sums of the f32-to-f64 loop into 2-wide vectors instead of vectorising the
/// lanes: 2.5x slower), float64 through [`ShiftedF64`] at every level.
#[inline]
fn shifted_sums<T: Real>(x: &[T], k: f64) -> [f64; 2] {
    #[cfg(target_arch = "x86_64")]
    if let Some(x32) = as_f32(x) {
        match level() {
            // SAFETY: the level is never above the CPU's: it has AVX-512 F.
            Level::Avx512 => return unsafe { avx512::shifted_sums_f32(x32, k) },
            // SAFETY: the CPU has AVX2, the only requirement.
            Level::Avx2 => return unsafe { avx2::shifted_sums_f32(x32, k) },
            Level::Generic => {}
        }
    }
    if let Some(x64) = as_f64(x) {
        return dispatch(ShiftedF64(x64, k));
    }
    shifted_sums_lanes(x, k)
}

/// [`grad_sums_lanes`]: float32 through AVX-512 or AVX2 intrinsics at those levels (as
/// [`shifted_sums`]).
#[inline]
fn grad_sums<T: Real>(g: &[T], x: &[T], mean: T) -> [f64; 2] {
    #[cfg(target_arch = "x86_64")]
    if let (Some(g32), Some(x32)) = (as_f32(g), as_f32(x)) {
        let m = mean.to_f64() as f32; // exact: `T` is f32
        match level() {
            // SAFETY: the level is never above the CPU's: it has AVX-512 F.
            Level::Avx512 => return unsafe { avx512::grad_sums_f32(g32, x32, m) },
            // SAFETY: the CPU has AVX2, the only requirement.
            Level::Avx2 => return unsafe { avx2::grad_sums_f32(g32, x32, m) },
            Level::Generic => {}
        }
    }
    if let (Some(g64), Some(x64)) = (as_f64(g), as_f64(x)) {
        return dispatch(GradF64(g64, x64, mean.to_f64()));
    }
    grad_sums_lanes(g, x, mean)
}

/// The float32 reductions in AVX2 intrinsics, bit-identical to the portable definitions: the
/// same 16 lanes (four vectors of 4 f64), multiplications and additions unfused, the tail
/// added lane by lane, the lanes combined by [`lane_sum`].
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{lane_sum, FLUSH, LANES};

    /// The lanes of four accumulators, in order.
    #[target_feature(enable = "avx2")]
    fn lanes(v: [__m256d; 4]) -> [f64; LANES] {
        let mut out = [0.0f64; LANES];
        for (q, v) in v.into_iter().enumerate() {
            // SAFETY: `out` has room for 4 f64 at 4q (q < 4, LANES = 16).
            unsafe { _mm256_storeu_pd(out.as_mut_ptr().add(4 * q), v) };
        }
        out
    }

    /// [`lane_sum`] of the lanes of four accumulators, in vectors: the same additions in
    /// the same order (lanes `i += i + 8`, then `i += i + 4`, `i += i + 2`, `i += i + 1`).
    #[target_feature(enable = "avx2")]
    fn hsum(v: [__m256d; 4]) -> f64 {
        let h = _mm256_add_pd(_mm256_add_pd(v[0], v[2]), _mm256_add_pd(v[1], v[3]));
        let q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h));
        _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)))
    }

    /// [`super::shifted_sums_lanes`] of f32 data.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn shifted_sums_f32(x: &[f32], k: f64) -> [f64; 2] {
        const { assert!(LANES == 16) };
        let kv = _mm256_set1_pd(k);
        let (mut a, mut b) = ([_mm256_setzero_pd(); 4], [_mm256_setzero_pd(); 4]);
        let (blocks, rest) = x.as_chunks::<LANES>();
        for blk in blocks {
            for q in 0..4 {
                // SAFETY: `blk` holds 16 floats, so `blk[4q .. 4q + 4]` is in bounds.
                let xv = unsafe { _mm_loadu_ps(blk.as_ptr().add(4 * q)) };
                let v = _mm256_sub_pd(_mm256_cvtps_pd(xv), kv);
                a[q] = _mm256_add_pd(a[q], v);
                b[q] = _mm256_add_pd(b[q], _mm256_mul_pd(v, v));
            }
        }
        if rest.is_empty() {
            return [hsum(a), hsum(b)];
        }
        let (mut a, mut b) = (lanes(a), lanes(b));
        for (j, &e) in rest.iter().enumerate() {
            let v = f64::from(e) - k;
            a[j] += v;
            b[j] += v * v;
        }
        [lane_sum(a), lane_sum(b)]
    }

    /// `acc` (four 4-lane f64 vectors) plus the 16 f32 lanes of `p`, converted.
    #[target_feature(enable = "avx2")]
    fn flush(acc: &mut [__m256d; 4], p: [__m256; 2]) {
        for (h, v) in p.into_iter().enumerate() {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
            acc[2 * h] = _mm256_add_pd(acc[2 * h], lo);
            acc[2 * h + 1] = _mm256_add_pd(acc[2 * h + 1], hi);
        }
    }

    /// 16 floats as two 8-lane vectors.
    #[target_feature(enable = "avx2")]
    fn load16(v: &[f32; LANES]) -> [__m256; 2] {
        // SAFETY: `v` holds 16 floats: `[0 .. 8]` and `[8 .. 16]` are in bounds.
        unsafe {
            [
                _mm256_loadu_ps(v.as_ptr()),
                _mm256_loadu_ps(v.as_ptr().add(8)),
            ]
        }
    }

    /// [`super::grad_sums_lanes`] of f32 data: the partial sums in two 8-lane f32 vectors
    /// each, flushed into four 4-lane f64 vectors each.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn grad_sums_f32(g: &[f32], x: &[f32], mean: f32) -> [f64; 2] {
        let mv = _mm256_set1_ps(mean);
        let (mut a, mut b) = ([_mm256_setzero_pd(); 4], [_mm256_setzero_pd(); 4]);
        let (gb, gr) = g.as_chunks::<LANES>();
        let (xb, xr) = x.as_chunks::<LANES>();
        for (gs, xs) in gb.chunks(FLUSH).zip(xb.chunks(FLUSH)) {
            let (mut pa, mut pb) = ([_mm256_setzero_ps(); 2], [_mm256_setzero_ps(); 2]);
            for (gv, xv) in gs.iter().zip(xs) {
                let (g8, x8) = (load16(gv), load16(xv));
                for h in 0..2 {
                    pa[h] = _mm256_add_ps(pa[h], g8[h]);
                    let d = _mm256_sub_ps(x8[h], mv);
                    pb[h] = _mm256_add_ps(pb[h], _mm256_mul_ps(d, g8[h]));
                }
            }
            flush(&mut a, pa);
            flush(&mut b, pb);
        }
        if !gr.is_empty() {
            let (mut pa, mut pb) = ([0.0f32; LANES], [0.0f32; LANES]);
            for (j, (&gv, &xv)) in gr.iter().zip(xr).enumerate() {
                pa[j] += gv;
                pb[j] += (xv - mean) * gv;
            }
            flush(&mut a, load16(&pa));
            flush(&mut b, load16(&pb));
        }
        [hsum(a), hsum(b)]
    }
}

/// The float32 reductions in AVX-512 intrinsics, bit-identical to the portable definitions
/// (and so to [`avx2`]): the 16 lanes in two vectors of 8 f64, multiplications and additions
/// unfused, the tail added lane by lane, the lanes combined as [`lane_sum`] combines them.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{lane_sum, FLUSH, LANES};

    /// The lanes of two accumulators, in order.
    #[target_feature(enable = "avx512f")]
    fn lanes(v: [__m512d; 2]) -> [f64; LANES] {
        let mut out = [0.0f64; LANES];
        for (q, v) in v.into_iter().enumerate() {
            // SAFETY: `out` has room for 8 f64 at 8q (q < 2, LANES = 16).
            unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(8 * q), v) };
        }
        out
    }

    /// [`lane_sum`] of the lanes of two accumulators, in vectors: the same additions in the
    /// same order (lanes `i += i + 8`, then `i += i + 4`, `i += i + 2`, `i += i + 1`).
    #[target_feature(enable = "avx512f")]
    fn hsum(v: [__m512d; 2]) -> f64 {
        let h = _mm512_add_pd(v[0], v[1]);
        let h = _mm256_add_pd(_mm512_castpd512_pd256(h), _mm512_extractf64x4_pd::<1>(h));
        let q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h));
        _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)))
    }

    /// [`super::shifted_sums_lanes`] of f32 data.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn shifted_sums_f32(x: &[f32], k: f64) -> [f64; 2] {
        const { assert!(LANES == 16) };
        let kv = _mm512_set1_pd(k);
        let (mut a, mut b) = ([_mm512_setzero_pd(); 2], [_mm512_setzero_pd(); 2]);
        let (blocks, rest) = x.as_chunks::<LANES>();
        for blk in blocks {
            for q in 0..2 {
                // SAFETY: `blk` holds 16 floats, so `blk[8q .. 8q + 8]` is in bounds.
                let xv = unsafe { _mm256_loadu_ps(blk.as_ptr().add(8 * q)) };
                let v = _mm512_sub_pd(_mm512_cvtps_pd(xv), kv);
                a[q] = _mm512_add_pd(a[q], v);
                b[q] = _mm512_add_pd(b[q], _mm512_mul_pd(v, v));
            }
        }
        if rest.is_empty() {
            return [hsum(a), hsum(b)];
        }
        let (mut a, mut b) = (lanes(a), lanes(b));
        for (j, &e) in rest.iter().enumerate() {
            let v = f64::from(e) - k;
            a[j] += v;
            b[j] += v * v;
        }
        [lane_sum(a), lane_sum(b)]
    }

    /// `acc` (two 8-lane f64 vectors) plus the 16 f32 lanes of `p`, converted.
    #[target_feature(enable = "avx512f")]
    fn flush(acc: &mut [__m512d; 2], p: __m512) {
        let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(p));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(p),
        )));
        acc[0] = _mm512_add_pd(acc[0], lo);
        acc[1] = _mm512_add_pd(acc[1], hi);
    }

    /// [`super::grad_sums_lanes`] of f32 data: the partial sums in one 16-lane f32 vector
    /// each, flushed into two 8-lane f64 vectors each.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn grad_sums_f32(g: &[f32], x: &[f32], mean: f32) -> [f64; 2] {
        let mv = _mm512_set1_ps(mean);
        let (mut a, mut b) = ([_mm512_setzero_pd(); 2], [_mm512_setzero_pd(); 2]);
        let (gb, gr) = g.as_chunks::<LANES>();
        let (xb, xr) = x.as_chunks::<LANES>();
        for (gs, xs) in gb.chunks(FLUSH).zip(xb.chunks(FLUSH)) {
            let (mut pa, mut pb) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for (gv, xv) in gs.iter().zip(xs) {
                // SAFETY: `gv` and `xv` hold 16 floats each.
                let (g16, x16) =
                    unsafe { (_mm512_loadu_ps(gv.as_ptr()), _mm512_loadu_ps(xv.as_ptr())) };
                pa = _mm512_add_ps(pa, g16);
                pb = _mm512_add_ps(pb, _mm512_mul_ps(_mm512_sub_ps(x16, mv), g16));
            }
            flush(&mut a, pa);
            flush(&mut b, pb);
        }
        if !gr.is_empty() {
            let (mut pa, mut pb) = ([0.0f32; LANES], [0.0f32; LANES]);
            for (j, (&gv, &xv)) in gr.iter().zip(xr).enumerate() {
                pa[j] += gv;
                pb[j] += (xv - mean) * gv;
            }
            // SAFETY: `pa` and `pb` hold 16 floats each.
            let (pa, pb) = unsafe { (_mm512_loadu_ps(pa.as_ptr()), _mm512_loadu_ps(pb.as_ptr())) };
            flush(&mut a, pa);
            flush(&mut b, pb);
        }
        [hsum(a), hsum(b)]
    }
}

simd_twin! {
    /// `x * scale + shift` over one run of a channel.
    fn affine_run<T: Real>(x: &[T], o: &mut [MaybeUninit<T>], terms: (T, T)) {
        let (scale, shift) = terms;
        for (o, &v) in o.iter_mut().zip(x) {
            o.write(v * scale + shift);
        }
    }
}

simd_twin! {
    /// `g * scale` over one run of a channel (the eval-mode input gradient).
    fn scale_run<T: Real>(g: &[T], o: &mut [MaybeUninit<T>], scale: T) {
        for (o, &v) in o.iter_mut().zip(g) {
            o.write(v * scale);
        }
    }
}

/// The per-channel constants of the training input gradient:
/// `((g - grad_mean) - (x - mean) * k) * scale`.
#[derive(Debug, Clone, Copy)]
struct GradTerms<T> {
    grad_mean: T,
    mean: T,
    k: T,
    scale: T,
}

simd_twin! {
    /// The training-mode input gradient over one run of a channel.
    fn grad_train_run<T: Real>(g: &[T], x: &[T], o: &mut [MaybeUninit<T>], t: GradTerms<T>) {
        for ((o, &gv), &xv) in o.iter_mut().zip(g).zip(x) {
            o.write(((gv - t.grad_mean) - (xv - t.mean) * t.k) * t.scale);
        }
    }
}

/// `f(c, range, run)` for the consecutive runs of one channel that cover `out` (a flat NCHW
/// output of shape `s`), in parallel over fixed chunks when `threads > 1`.
fn for_each_run<T, F>(s: &BnShape, out: &mut [T], threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, Range<usize>, &mut [T]) + Send + Sync,
{
    assert_eq!(out.len(), s.len(), "batch_norm: output length mismatch");
    const CHUNK: usize = TASK;
    for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| {
            let start = i * CHUNK;
            let mut off = 0;
            while off < o.len() {
                let pos = start + off;
                let plane = pos / s.hw;
                let end = ((plane + 1) * s.hw).min(start + o.len());
                f(plane % s.c, pos..end, &mut o[off..end - start]);
                off = end - start;
            }
        },
    );
}

/// Per-channel sums of a reduction: `seg(c, range)` gives a segment's pair, formed in
/// parallel over groups of whole segments; each channel then adds its segments in memory
/// order (the same bits for every thread count, and as [`channel_reduce`]).
fn reduce<F>(s: &BnShape, threads: usize, seg: F) -> Vec<[f64; 2]>
where
    F: Fn(usize, Range<usize>) -> [f64; 2] + Send + Sync,
{
    let mut parts = vec![[0.0f64; 2]; s.segments()];
    let per_task = s.per_task();
    for_each_chunk(
        threads > 1,
        &mut parts,
        per_task,
        || (),
        |_, (i, ps)| {
            for (p, (c, r)) in ps.iter_mut().zip(s.segments_from(i * per_task)) {
                *p = seg(c, r);
            }
        },
    );
    let sp = s.per_plane();
    let mut sums = vec![[0.0f64; 2]; s.c];
    for n in 0..s.n {
        for (c, sum) in sums.iter_mut().enumerate() {
            let first = (n * s.c + c) * sp;
            for p in &parts[first..first + sp] {
                sum[0] += p[0];
                sum[1] += p[1];
            }
        }
    }
    sums
}

/// Channel `c`'s sums of a reduction: `seg(range)` of each of its segments, added in memory
/// order: the additions of [`reduce`], so both give the same bits.
fn channel_reduce<F>(s: &BnShape, c: usize, seg: F) -> [f64; 2]
where
    F: Fn(Range<usize>) -> [f64; 2],
{
    let mut acc = [0.0f64; 2];
    for n in 0..s.n {
        let (mut lo, end) = ((n * s.c + c) * s.hw, (n * s.c + c + 1) * s.hw);
        while lo < end {
            let hi = (lo + SEG).min(end);
            let [a, b] = seg(lo..hi);
            acc[0] += a;
            acc[1] += b;
            lo = hi;
        }
    }
    acc
}

/// Channel `c`'s mean and sum of squared deviations from its shifted sums `[a, b]` (shift
/// `k`): `mean = k + a / m`, `m2 = b - a^2 / m`, or, where that cancelled (see [`CANCEL`]),
/// both recomputed from `x` in two reads of the channel.
fn finish_stats<T: Real>(s: &BnShape, x: &[T], c: usize, k: f64, [a, b]: [f64; 2]) -> (f64, f64) {
    let m = s.count() as f64;
    let d = a / m;
    let ss = (b - a * d).max(0.0);
    if d * d > ss / m * CANCEL {
        let mu = channel_reduce(s, c, |r| shifted_sums(&x[r], 0.0))[0] / m;
        (mu, channel_reduce(s, c, |r| shifted_sums(&x[r], mu))[1])
    } else {
        (k + d, ss)
    }
}

/// The shifts of the statistics: each channel's first value.
fn shifts<T: Real>(s: &BnShape, x: &[T]) -> Vec<f64> {
    (0..s.c).map(|c| x[c * s.hw].to_f64()).collect()
}

/// The per-channel mean and sum of squared deviations of `x` (`count() >= 1`), in one read
/// (see the module doc), plus two exact reads of a channel whose shifted sums cancelled.
pub fn batch_stats<T: Real>(s: &BnShape, x: &[T], threads: usize) -> BatchStats {
    assert_eq!(x.len(), s.len(), "batch_stats: length mismatch");
    assert!(s.count() >= 1, "batch_stats: no values per channel");
    let shift = shifts(s, x);
    let sums = reduce(s, threads, |c, r| shifted_sums(&x[r], shift[c]));
    let (mean, m2) = (0..s.c)
        .map(|c| finish_stats(s, x, c, shift[c], sums[c]))
        .unzip();
    BatchStats {
        mean,
        m2,
        count: s.count(),
    }
}

/// `1 / sqrt(var + eps)`, 0 where both are 0 (torch's `InvStd`).
fn inv_std(var: f64, eps: f64) -> f64 {
    if var != 0.0 || eps != 0.0 {
        1.0 / (var + eps).sqrt()
    } else {
        0.0
    }
}

/// `running = momentum * batch + (1 - momentum) * running` for the mean and, with the
/// unbiased variance `m2 / (count - 1)`, the variance (torch's order, in f64, rounded once).
/// Needs `count >= 2`.
pub fn update_running<T: Real>(
    stats: &BatchStats,
    running_mean: &mut [T],
    running_var: &mut [T],
    momentum: f64,
) {
    assert!(
        stats.count >= 2,
        "update_running: fewer than 2 values per channel"
    );
    let keep = 1.0 - momentum;
    let denom = (stats.count - 1) as f64;
    for (c, (rm, rv)) in running_mean.iter_mut().zip(running_var).enumerate() {
        *rm = T::from_f64(momentum * stats.mean[c] + keep * rm.to_f64());
        *rv = T::from_f64(momentum * (stats.m2[c] / denom) + keep * rv.to_f64());
    }
}

/// Channel `c`'s output terms `(scale, shift)`: `weight * invstd` and
/// `bias - mean * scale`.
fn affine_term<T: Real>(c: usize, mean: f64, invstd: f64, aff: Affine<'_, T>) -> (T, T) {
    let w = aff.weight.map_or(1.0, |w| w[c].to_f64());
    let b = aff.bias.map_or(0.0, |b| b[c].to_f64());
    let scale = invstd * w;
    (T::from_f64(scale), T::from_f64(b - mean * scale))
}

/// `out = x * scale[c] + shift[c]`.
fn normalize<T: Real>(
    s: &BnShape,
    x: &[T],
    terms: &[(T, T)],
    out: &mut [MaybeUninit<T>],
    threads: usize,
) {
    for_each_run(s, out, threads, |c, r, o| affine_run(&x[r], o, terms[c]));
}

/// What a forward pass hands to backward: the mean and `invstd` it normalised with, and
/// whether they were the batch's statistics (whose dependence on `x` enters the input
/// gradient) or given ones (eval).
#[derive(Debug, Clone, PartialEq)]
pub struct Saved<T> {
    pub mean: Vec<T>,
    pub invstd: Vec<T>,
    pub batch: bool,
}

/// The training forward pass: the batch statistics (`count() >= 2`), the running statistics
/// updated in place if given (`(running_mean, running_var, momentum)`), and the normalised
/// output written to `out`. Returns the batch mean and `invstd` (torch's `save_mean`,
/// `save_invstd`).
pub fn batch_norm_train<T: Real>(
    s: &BnShape,
    x: &[T],
    aff: Affine<'_, T>,
    running: Option<(&mut [T], &mut [T], f64)>,
    eps: f64,
    out: &mut [MaybeUninit<T>],
    threads: usize,
) -> Saved<T> {
    let stats = batch_stats(s, x, threads);
    let terms: Vec<(T, T)> = (0..s.c)
        .map(|c| affine_term(c, stats.mean[c], inv_std(stats.var(c), eps), aff))
        .collect();
    normalize(s, x, &terms, out, threads);
    if let Some((rm, rv, momentum)) = running {
        update_running(&stats, rm, rv, momentum);
    }
    Saved {
        mean: stats.mean.iter().map(|&v| T::from_f64(v)).collect(),
        invstd: stats.invstd(eps).iter().map(|&v| T::from_f64(v)).collect(),
        batch: true,
    }
}

/// The eval forward pass with the given statistics (`(running_mean, running_var)`),
/// `invstd = 1 / sqrt(running_var + eps)`: the output written to `out`. Returns the mean and
/// `invstd` used.
pub fn batch_norm_eval<T: Real>(
    s: &BnShape,
    x: &[T],
    aff: Affine<'_, T>,
    (running_mean, running_var): (&[T], &[T]),
    eps: f64,
    out: &mut [MaybeUninit<T>],
    threads: usize,
) -> Saved<T> {
    let invstd: Vec<f64> = running_var
        .iter()
        .map(|v| 1.0 / (v.to_f64() + eps).sqrt())
        .collect();
    let terms: Vec<(T, T)> = (0..s.c)
        .map(|c| affine_term(c, running_mean[c].to_f64(), invstd[c], aff))
        .collect();
    normalize(s, x, &terms, out, threads);
    Saved {
        mean: running_mean.to_vec(),
        invstd: invstd.iter().map(|&v| T::from_f64(v)).collect(),
        batch: false,
    }
}

/// The gradients of the parameters: `grad_weight = sum(g * xhat)`, `grad_bias = sum(g)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamGrads<T> {
    pub weight: Vec<T>,
    pub bias: Vec<T>,
}

/// The backward pass of a forward that normalised with `saved`, for the output gradient `g`
/// at the input `x`. Writes the input gradient to `grad_input` if given; returns the
/// parameter gradients if `param_grads`.
///
/// In training, two passes: the sums, then the input gradient; in eval one, with the sums
/// (if wanted) formed segment by segment as the input gradient is written.
pub fn batch_norm_backward<T: Real>(
    s: &BnShape,
    (g, x): (&[T], &[T]),
    saved: &Saved<T>,
    weight: Option<&[T]>,
    grad_input: Option<&mut [MaybeUninit<T>]>,
    param_grads: bool,
    threads: usize,
) -> Option<ParamGrads<T>> {
    assert!(
        g.len() == s.len() && x.len() == s.len(),
        "batch_norm_backward: length mismatch"
    );
    let invstd: Vec<f64> = saved.invstd.iter().map(|v| v.to_f64()).collect();
    let w = |c: usize| weight.map_or(1.0, |w| w[c].to_f64());
    let scale: Vec<T> = (0..s.c).map(|c| T::from_f64(invstd[c] * w(c))).collect();
    let m = s.count() as f64;
    let seg_sums = |c: usize, r: Range<usize>| grad_sums(&g[r.clone()], &x[r], saved.mean[c]);
    let terms = |c: usize, sums: [f64; 2]| GradTerms {
        grad_mean: T::from_f64(sums[0] / m),
        mean: saved.mean[c],
        k: T::from_f64(sums[1] * invstd[c] * invstd[c] / m),
        scale: scale[c],
    };
    let sums = match grad_input {
        Some(gi) if !saved.batch && param_grads => {
            // eval: the sums ride along in the input gradient's pass, segment by segment
            assert_eq!(
                gi.len(),
                s.len(),
                "batch_norm_backward: output length mismatch"
            );
            let gis = DisjointSlice::new(gi);
            reduce(s, threads, |c, r| {
                // SAFETY: `reduce` visits every segment once, and segments are disjoint
                // element ranges, so no two calls hold overlapping parts of `gis`.
                let o = unsafe { gis.range(r.start, r.len()) };
                scale_run(&g[r.clone()], o, scale[c]);
                seg_sums(c, r)
            })
        }
        Some(gi) if !saved.batch => {
            for_each_run(s, gi, threads, |c, r, o| scale_run(&g[r], o, scale[c]));
            return None;
        }
        Some(gi) => {
            let sums = reduce(s, threads, seg_sums);
            let t: Vec<GradTerms<T>> = (0..s.c).map(|c| terms(c, sums[c])).collect();
            for_each_run(s, gi, threads, |c, r, o| {
                grad_train_run(&g[r.clone()], &x[r], o, t[c])
            });
            sums
        }
        None if param_grads => reduce(s, threads, seg_sums),
        None => return None,
    };
    param_grads.then(|| ParamGrads {
        weight: (0..s.c)
            .map(|c| T::from_f64(sums[c][1] * invstd[c]))
            .collect(),
        bias: (0..s.c).map(|c| T::from_f64(sums[c][0])).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh write-only buffer of `n` elements and returns it.
    fn fresh<T: Copy, R>(n: usize, f: impl FnOnce(&mut [MaybeUninit<T>]) -> R) -> (Vec<T>, R) {
        let mut v = vec![MaybeUninit::uninit(); n];
        let r = f(&mut v);
        // SAFETY: the kernels write every element (checked by the tests' expectations; a
        // missed element would be uninitialised, which Miri reports).
        let v = v.into_iter().map(|e| unsafe { e.assume_init() }).collect();
        (v, r)
    }

    /// Deterministic pseudo-random values in [-1, 1) * scale + offset.
    fn data(len: usize, seed: u64, scale: f64, offset: f64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                (2.0 * u - 1.0) * scale + offset
            })
            .collect()
    }

    /// Neumaier's compensated sum (a reference far more accurate than the kernels).
    fn exact_sum(v: impl Iterator<Item = f64>) -> f64 {
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for x in v {
            let t = sum + x;
            comp += if sum.abs() >= x.abs() {
                (sum - t) + x
            } else {
                (x - t) + sum
            };
            sum = t;
        }
        sum + comp
    }

    /// Two-pass per-channel mean and biased variance, with compensated sums.
    fn reference_stats(s: &BnShape, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let m = s.count() as f64;
        let chan =
            |c: usize| (0..s.n).flat_map(move |n| (0..s.hw).map(move |i| (n * s.c + c) * s.hw + i));
        let mean: Vec<f64> = (0..s.c)
            .map(|c| exact_sum(chan(c).map(|i| x[i])) / m)
            .collect();
        let var = (0..s.c)
            .map(|c| exact_sum(chan(c).map(|i| (x[i] - mean[c]).powi(2))) / m)
            .collect();
        (mean, var)
    }

    fn close(a: f64, b: f64, rtol: f64) -> bool {
        (a - b).abs() <= rtol * b.abs().max(1e-300)
    }

    #[test]
    fn stats_match_two_pass_reference() {
        for &(n, c, hw) in &[(2, 3, 5), (1, 2, SEG + 7), (3, 1, 1), (4, 5, 64)] {
            let s = BnShape::of(n, c, hw);
            let x = data(s.len(), 7, 3.0, 100.0);
            let st = batch_stats(&s, &x, 1);
            let (mean, var) = reference_stats(&s, &x);
            for ch in 0..c {
                assert!(close(st.mean[ch], mean[ch], 1e-14), "{:?}", (n, c, hw));
                assert!(close(st.var(ch), var[ch], 1e-10), "{:?}", (n, c, hw));
            }
        }
    }

    #[test]
    fn outlier_first_element_is_recomputed_exactly() {
        // The shift is a value of the channel, so m2 >= (shift - mean)^2 and the shifted sums
        // lose at most log2(m) bits: a second read is needed only beyond CANCEL values.
        let s = BnShape::of(2, 1, 3 << 19);
        let mut x = data(s.len(), 3, 1.0, 0.0);
        x[0] = 1e12; // the shift: far from every other value
        let st = batch_stats(&s, &x, 2);
        let (mean, var) = reference_stats(&s, &x);
        let d = mean[0] - x[0];
        assert!(d * d > var[0] * CANCEL); // the recomputed case
        assert!(close(st.mean[0], mean[0], 1e-14));
        assert!(close(st.var(0), var[0], 1e-14));
        // a constant channel has zero variance, exactly
        let y = vec![3.25f32; 40];
        let st = batch_stats(&BnShape::of(2, 2, 10), &y, 1);
        assert_eq!(st.m2, [0.0, 0.0]);
        assert_eq!(st.mean, [3.25, 3.25]);
        assert_eq!(st.invstd(0.0), [0.0, 0.0]); // torch's InvStd
    }

    #[test]
    fn reductions_match_the_portable_lanes_at_every_level() {
        crate::base::simd::with_each_level(|level| {
            for len in (0..40).chain([100, 1000, SEG]) {
                let x: Vec<f32> = data(len, 1, 3.0, 2.0).iter().map(|&v| v as f32).collect();
                let g: Vec<f32> = data(len, 2, 1.0, 0.0).iter().map(|&v| v as f32).collect();
                assert_eq!(
                    shifted_sums(&x, 1.5),
                    shifted_sums_lanes(&x, 1.5),
                    "len {len} at {level:?}"
                );
                assert_eq!(
                    grad_sums(&g, &x, 0.25),
                    grad_sums_lanes(&g, &x, 0.25f32),
                    "len {len} at {level:?}"
                );
                let x64 = data(len, 3, 3.0, 2.0);
                let g64 = data(len, 4, 1.0, 0.0);
                assert_eq!(
                    shifted_sums(&x64, 1.5),
                    shifted_sums_lanes(&x64, 1.5),
                    "f64 len {len} at {level:?}"
                );
                assert_eq!(
                    grad_sums(&g64, &x64, 0.25),
                    grad_sums_lanes(&g64, &x64, 0.25f64),
                    "f64 len {len} at {level:?}"
                );
            }
        });
    }

    #[test]
    fn segments_cover_each_plane_in_order() {
        for s in [
            BnShape::of(3, 4, 10),
            BnShape::of(2, 3, 2 * SEG + 5),
            BnShape::of(2, 1, SEG),
        ] {
            let sp = s.hw.div_ceil(SEG);
            let all: Vec<_> = s.segments_from(0).take(s.segments()).collect();
            for (k, (c, r)) in all.iter().enumerate() {
                let (p, q) = (k / sp, k % sp);
                assert_eq!(*c, p % s.c);
                assert_eq!(r.start, p * s.hw + q * SEG);
                assert_eq!(r.end, p * s.hw + ((q + 1) * SEG).min(s.hw));
                assert_eq!(s.segments_from(k).next().as_ref(), Some(&all[k]));
            }
            assert_eq!(all.last().map(|(_, r)| r.end), Some(s.len()));
        }
    }

    #[test]
    fn running_update_follows_torch() {
        let stats = BatchStats {
            mean: vec![2.0],
            m2: vec![6.0],
            count: 4,
        };
        let (mut rm, mut rv) = (vec![1.0f64], vec![1.0f64]);
        update_running(&stats, &mut rm, &mut rv, 0.1);
        assert_eq!(rm, [0.1 * 2.0 + 0.9 * 1.0]);
        assert_eq!(rv, [0.1 * (6.0 / 3.0) + 0.9 * 1.0]);
    }

    #[test]
    fn forward_and_backward_match_formulas() {
        let s = BnShape::of(3, 2, 7);
        let x = data(s.len(), 11, 2.0, 1.0);
        let g = data(s.len(), 12, 1.0, 0.5);
        let (w, b) = (vec![1.5, -0.5], vec![0.25, 2.0]);
        let aff = Affine {
            weight: Some(&w[..]),
            bias: Some(&b[..]),
        };
        let eps = 1e-5;
        let (y, saved) = fresh(s.len(), |o| batch_norm_train(&s, &x, aff, None, eps, o, 1));
        let (mean, var) = reference_stats(&s, &x);
        let m = s.count() as f64;
        for i in 0..s.len() {
            let c = (i / s.hw) % s.c;
            let xhat = (x[i] - mean[c]) / (var[c] + eps).sqrt();
            assert!(close(y[i], xhat * w[c] + b[c], 1e-12));
        }
        let (gi, pg) = fresh(s.len(), |o| {
            batch_norm_backward(&s, (&g, &x), &saved, Some(&w), Some(o), true, 1)
        });
        let pg = pg.unwrap();
        for c in 0..s.c {
            let idx: Vec<usize> = (0..s.len()).filter(|i| (i / s.hw) % s.c == c).collect();
            let inv = 1.0 / (var[c] + eps).sqrt();
            let xh = |i: usize| (x[i] - mean[c]) * inv;
            let sg: f64 = idx.iter().map(|&i| g[i]).sum();
            let sgx: f64 = idx.iter().map(|&i| g[i] * xh(i)).sum();
            assert!(close(pg.bias[c], sg, 1e-12));
            assert!(close(pg.weight[c], sgx, 1e-12));
            for &i in &idx {
                let want = w[c] * inv * (g[i] - sg / m - xh(i) * sgx / m);
                assert!((gi[i] - want).abs() < 1e-12, "{} {}", gi[i], want);
            }
        }
        // eval: g * weight * invstd, fused with the sums or alone
        let frozen = Saved {
            batch: false,
            ..saved.clone()
        };
        let (ge, pe) = fresh(s.len(), |o| {
            batch_norm_backward(&s, (&g, &x), &frozen, Some(&w), Some(o), true, 1)
        });
        let (ge2, none) = fresh(s.len(), |o| {
            batch_norm_backward(&s, (&g, &x), &frozen, Some(&w), Some(o), false, 1)
        });
        assert!(none.is_none());
        assert_eq!(ge, ge2);
        let pe = pe.unwrap();
        assert_eq!(pe.bias, pg.bias);
        for c in 0..s.c {
            assert!(close(pe.weight[c], pg.weight[c], 1e-12));
        }
        for i in 0..s.len() {
            let c = (i / s.hw) % s.c;
            assert_eq!(ge[i], g[i] * (saved.invstd[c] * w[c]));
        }
    }

    fn run_all<T: Real>(s: &BnShape, x: &[T], g: &[T], threads: usize) -> Vec<Vec<T>> {
        let w: Vec<T> = (0..s.c).map(|c| T::from_f64(0.5 + c as f64)).collect();
        let b: Vec<T> = (0..s.c).map(|c| T::from_f64(c as f64 - 1.0)).collect();
        let aff = Affine {
            weight: Some(&w[..]),
            bias: Some(&b[..]),
        };
        let (mut rm, mut rv) = (vec![T::ZERO; s.c], vec![T::ONE; s.c]);
        crate::base::threads::run(threads, || {
            let (y, saved) = fresh(s.len(), |o| {
                batch_norm_train(s, x, aff, Some((&mut rm, &mut rv, 0.1)), 1e-5, o, threads)
            });
            let (gi, pg) = fresh(s.len(), |o| {
                batch_norm_backward(s, (g, x), &saved, Some(&w), Some(o), true, threads)
            });
            let (ye, se) = fresh(s.len(), |o| {
                batch_norm_eval(s, x, aff, (&rm, &rv), 1e-5, o, threads)
            });
            let (ge, pe) = fresh(s.len(), |o| {
                batch_norm_backward(s, (g, x), &se, Some(&w), Some(o), true, threads)
            });
            let (pg, pe) = (pg.unwrap(), pe.unwrap());
            vec![
                y,
                saved.mean,
                saved.invstd,
                gi,
                pg.weight,
                pg.bias,
                ye,
                ge,
                pe.weight,
                pe.bias,
                rm.clone(),
                rv.clone(),
            ]
        })
    }

    #[test]
    fn parallel_equals_serial() {
        for &(n, c, hw) in &[(8, 16, 64), (2, 3, 3 * SEG + 5), (16, 4, 300)] {
            let s = BnShape::of(n, c, hw);
            let x32: Vec<f32> = data(s.len(), 5, 2.0, 1.0)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let g32: Vec<f32> = data(s.len(), 6, 1.0, 0.0)
                .iter()
                .map(|&v| v as f32)
                .collect();
            assert_eq!(run_all(&s, &x32, &g32, 1), run_all(&s, &x32, &g32, 2));
            let x64 = data(s.len(), 8, 2.0, 1.0);
            let g64 = data(s.len(), 9, 1.0, 0.0);
            assert_eq!(run_all(&s, &x64, &g64, 1), run_all(&s, &x64, &g64, 2));
        }
    }
}
