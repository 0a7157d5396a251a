//! Pooling layers (torch.nn.functional semantics): max, average, adaptive, unpooling, and their
//! gradients, for NCHW float32/float64 arrays, parallel over the N x C planes.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rayon::prelude::*;

use super::params::{AdaptiveParams, AvgOptions, PoolParams};
use crate::base::error::{ConvError, Result};
use crate::base::par::for_each_chunk;
use crate::base::real::{select, Real};
use crate::base::simd::simd_twin;

/// Run `f(plane index, plane)` over the planes of `out`, in parallel when `threads > 1`.
fn run_planes<U: Send, F>(threads: usize, out: &mut [U], plane_out: usize, f: F)
where
    F: Fn(usize, &mut [U]) + Send + Sync,
{
    run_planes_grouped(threads, out, plane_out, 1, f)
}

/// [`run_planes`] with at least `min_planes` planes per parallel task (tiny planes, such as
/// a global pooling's single output, would otherwise make one task per element).
fn run_planes_grouped<U: Send, F>(
    threads: usize,
    out: &mut [U],
    plane_out: usize,
    min_planes: usize,
    f: F,
) where
    F: Fn(usize, &mut [U]) + Send + Sync,
{
    run_planes_with(
        threads,
        out,
        plane_out,
        min_planes,
        || (),
        |_, i, o| f(i, o),
    )
}

/// [`run_planes_grouped`] with per-task scratch made by `init` (reused across the planes a
/// task runs, instead of allocated per plane).
fn run_planes_with<U: Send, S, I, F>(
    threads: usize,
    out: &mut [U],
    plane_out: usize,
    min_planes: usize,
    init: I,
    f: F,
) where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [U]) + Send + Sync,
{
    if plane_out == 0 || out.is_empty() {
        return;
    }
    if threads <= 1 {
        let mut scratch = init();
        out.chunks_exact_mut(plane_out)
            .enumerate()
            .for_each(|(i, o)| f(&mut scratch, i, o));
    } else {
        crate::base::threads::run(threads, || {
            out.par_chunks_exact_mut(plane_out)
                .enumerate()
                .with_min_len(min_planes.max(1))
                .for_each_init(&init, |scratch, (i, o)| f(scratch, i, o));
        });
    }
}

/// [`run_planes_with`] over the planes of values `out` and their argmax indices `ind` (both
/// `plane_out` per plane): `f(scratch, plane index, values, indices)`.
fn run_planes_indexed<T: Send, S, I, F>(
    threads: usize,
    (out, ind): (&mut [T], &mut [i64]),
    plane_out: usize,
    min_planes: usize,
    init: I,
    f: F,
) where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [T], &mut [i64]) + Send + Sync,
{
    if plane_out == 0 || out.is_empty() {
        return;
    }
    let planes = out
        .chunks_exact_mut(plane_out)
        .zip(ind.chunks_exact_mut(plane_out));
    if threads <= 1 {
        let mut scratch = init();
        planes
            .enumerate()
            .for_each(|(i, (o, ix))| f(&mut scratch, i, o, ix));
    } else {
        crate::base::threads::run(threads, || {
            out.par_chunks_exact_mut(plane_out)
                .zip(ind.par_chunks_exact_mut(plane_out))
                .enumerate()
                .with_min_len(min_planes.max(1))
                .for_each_init(&init, |sc, (i, (o, ix))| f(sc, i, o, ix));
        });
    }
}

simd_twin! {
    /// [`lane_sum`] with AVX2 vectors where the CPU has them (a call per window row or plane).
    fn row_sum<T: Real>(v: &[T]) -> T = lane_sum;
}

/// The sum of a whole plane (global average pooling): float32 planes through AVX2
/// intrinsics where the CPU has them (LLVM compiled [`lane_sum`] into 2-wide loads with
/// spilled accumulators), [`row_sum`] otherwise.
fn plane_sum<T: Real>(v: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() == 4 && crate::base::simd::has_avx2_fma() {
        // SAFETY: `Real` is implemented for f32 and f64 only, so a 4-byte `T` is f32 (same
        // layout); the CPU has AVX2 (checked), the only requirement of `sum_f32_avx2`.
        let s = unsafe {
            let v32 = std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len());
            sum_f32_avx2(v32)
        };
        return T::from_f64(f64::from(s));
    }
    row_sum(v)
}

/// Sum of `v` in four 8-lane accumulators (fixed order), the tail in 8-lane blocks and then
/// one by one.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn sum_f32_avx2(v: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut blocks = v.chunks_exact(32);
    for b in &mut blocks {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `b` holds 32 floats, so `b[8k .. 8k + 8]` is in bounds (unaligned load).
            *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * k)) });
        }
    }
    let mut tail = blocks.remainder().chunks_exact(8);
    for b in &mut tail {
        // SAFETY: `b` holds 8 floats.
        acc[0] = _mm256_add_ps(acc[0], unsafe { _mm256_loadu_ps(b.as_ptr()) });
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` has room for 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
    let mut total = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for &x in tail.remainder() {
        total += x;
    }
    total
}

/// Sum of `v` in 32 interleaved partial sums (independent additions vectorise and overlap;
/// one running sum is a chain of dependent additions), combined pairwise.
#[inline(always)]
fn lane_sum<T: Real>(v: &[T]) -> T {
    let mut acc = [T::ZERO; 32];
    let chunks = v.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut width = 16;
    while width > 0 {
        for i in 0..width {
            let upper = acc[i + width];
            acc[i] += upper;
        }
        width /= 2;
    }
    let mut s = acc[0];
    for &x in rest {
        s += x;
    }
    s
}

/// `start, start + step, ...` below `end`. (`Range::step_by` divides to count its steps,
/// and a division per pooling window dominated the max-pooling time.)
#[inline(always)]
fn stepped(start: usize, end: usize, step: usize) -> impl Iterator<Item = usize> {
    std::iter::successors(Some(start), move |&v| Some(v + step)).take_while(move |&v| v < end)
}

/// `v` replaces the running maximum `m` when greater or NaN (torch's rule), branch-free.
#[inline(always)]
fn nan_max_wins<T: Real>(v: T, m: T) -> bool {
    (v > m) | v.is_nan()
}

/// Window maximum as torch computes it: the first in-bounds element seeds the index, a value
/// wins if it is greater than the running maximum or NaN (so NaN propagates, ties keep the
/// first).
#[inline(always)]
fn window_max<T: Real>(
    x: &[T],
    w: usize,
    ys: (usize, usize),
    dy: usize,
    xs: (usize, usize),
    dx: usize,
) -> (T, usize) {
    let mut best = T::NEG_INFINITY;
    let mut idx = ys.0 * w + xs.0;
    for y in stepped(ys.0, ys.1, dy) {
        let row = &x[y * w..(y + 1) * w];
        for xx in stepped(xs.0, xs.1, dx) {
            let v = row[xx];
            let win = nan_max_wins(v, best);
            best = select(win, v, best);
            idx = select(win, y * w + xx, idx);
        }
    }
    (best, idx)
}

simd_twin! {
    /// Max pooling values only: for each output row, the NaN-propagating maximum over the window
    /// rows is formed column by column (contiguous, vectorisable), then over the window columns.
    fn max_pool_values<T: Real>(p: &PoolParams, xp: &[T], o: &mut [T], colmax: &mut Vec<T>) {
        colmax.resize(p.w, T::ZERO);
        for oy in 0..p.oh {
            let ys = PoolParams::taps(oy, p.sh, p.ph, p.dh, p.kh, p.h);
            colmax.fill(T::NEG_INFINITY);
            for y in stepped(ys.0, ys.1, p.dh) {
                let row = &xp[y * p.w..(y + 1) * p.w];
                for (m, &v) in colmax.iter_mut().zip(row) {
                    *m = select(nan_max_wins(v, *m), v, *m);
                }
            }
            let orow = &mut o[oy * p.ow..(oy + 1) * p.ow];
            for (ox, out) in orow.iter_mut().enumerate() {
                let xs = PoolParams::taps(ox, p.sw, p.pw, p.dw, p.kw, p.w);
                let mut best = T::NEG_INFINITY;
                for xx in stepped(xs.0, xs.1, p.dw) {
                    let v = colmax[xx];
                    best = select(nan_max_wins(v, best), v, best);
                }
                *out = best;
            }
        }
    }
}

/// Scratch buffers of [`max_pool_argmax`].
struct ArgmaxScratch<T> {
    hv: Vec<T>,
    hc: Vec<usize>,
    seed_col: Vec<usize>,
    /// The fast path's column indices, stored as `T` (exact integers) so that value and
    /// index selects have one lane width and vectorise together.
    hct: Vec<T>,
    seed_t: Vec<T>,
    col_t: Vec<T>,
    gathered: Vec<T>,
    oi_t: Vec<T>,
}

impl<T> Default for ArgmaxScratch<T> {
    fn default() -> Self {
        ArgmaxScratch {
            hv: Vec::new(),
            hc: Vec::new(),
            seed_col: Vec::new(),
            hct: Vec::new(),
            seed_t: Vec::new(),
            col_t: Vec::new(),
            gathered: Vec::new(),
            oi_t: Vec::new(),
        }
    }
}

simd_twin! {
    /// Max pooling with torch's argmax: a scan of each window in row-major order where a value
    /// wins if greater than the running maximum or NaN. Done separably and branch-free: first,
    /// per input row, the winner of each window's columns (in column order); then, per output,
    /// the winner over the window's rows (in row order), which is the same element.
    ///
    /// Compiled for AVX2 where the CPU has it: float selects become blends instead of
    /// branches (baseline x86-64 has no blend instruction).
    fn max_pool_argmax<T: Real>(
        p: &PoolParams,
        xp: &[T],
        vals: &mut [T],
        idx: &mut [i64],
        sc: &mut ArgmaxScratch<T>,
    ) {
        // Every index the fast path forms (seeds included) stays below this.
        let bound = (p.h + p.kh * p.dh + 1) * (p.w + p.kw * p.dw + 1);
        if bound < T::EXACT_INTS {
            max_pool_argmax_same_width(p, xp, vals, idx, sc)
        } else {
            max_pool_argmax_usize(p, xp, vals, idx, sc)
        }
    }
}

/// Output columns `lo..hi` whose window tap `j` lies inside a row, and that tap's column
/// offset (`ox * sw + off` is the column).
#[inline(always)]
fn tap_columns(p: &PoolParams, j: usize) -> (isize, usize, usize) {
    crate::nn::tap_span(j, (p.dw, p.pw, p.sw), p.w, p.ow)
}

/// [`max_pool_argmax_usize`] with the indices held as exact integers in `T`: value and
/// index selects are blends of one lane width over contiguous rows (a strided row is gathered
/// once per tap, with -inf where the tap falls outside), so both passes vectorise. Every
/// select writes a different buffer than it reads (ping-pong): selecting in place lets the
/// compiler turn the blend into a masked store, which is several times slower on AMD CPUs.
#[inline(always)]
fn max_pool_argmax_same_width<T: Real>(
    p: &PoolParams,
    xp: &[T],
    vals: &mut [T],
    idx: &mut [i64],
    sc: &mut ArgmaxScratch<T>,
) {
    let (h, w, ow) = (p.h, p.w, p.ow);
    let ArgmaxScratch {
        hv,
        hct,
        seed_t,
        col_t,
        gathered,
        oi_t,
        ..
    } = sc;
    seed_t.clear();
    seed_t
        .extend((0..ow).map(|ox| T::from_usize(PoolParams::taps(ox, p.sw, p.pw, p.dw, p.kw, w).0)));
    col_t.clear();
    col_t.resize(p.kw * ow, T::ZERO);
    for j in 0..p.kw {
        let (off, lo, hi) = tap_columns(p, j);
        for ox in lo..hi {
            col_t[j * ow + ox] = T::from_usize((ox as isize * p.sw as isize + off) as usize);
        }
    }
    // row winners: values then columns, for every input row
    hv.clear();
    hv.resize(h * ow, T::ZERO);
    hct.clear();
    hct.resize(h * ow, T::ZERO);
    // scratch: the gathered tap, and two (value, index) rows to ping-pong between
    gathered.clear();
    gathered.resize(5 * ow, T::ZERO);
    let (tap, rest) = gathered.split_at_mut(ow);
    let (mut a_m, rest) = rest.split_at_mut(ow);
    let (mut a_c, rest) = rest.split_at_mut(ow);
    let (mut b_m, mut b_c) = rest.split_at_mut(ow);
    for y in 0..h {
        let row = &xp[y * w..(y + 1) * w];
        a_m.fill(T::NEG_INFINITY);
        a_c.copy_from_slice(seed_t);
        for j in 0..p.kw {
            let (off, lo, hi) = tap_columns(p, j);
            if lo == hi {
                continue;
            }
            let first = (lo as isize * p.sw as isize + off) as usize;
            tap[..lo].fill(T::NEG_INFINITY); // -inf never wins: taps outside the row
            tap[hi..].fill(T::NEG_INFINITY);
            let strided = row[first..].iter().step_by(p.sw).take(hi - lo);
            for (g, &v) in tap[lo..hi].iter_mut().zip(strided) {
                *g = v;
            }
            let cols = &col_t[j * ow..(j + 1) * ow];
            argmax_step((a_m, a_c), (b_m, b_c), tap, cols, T::ZERO);
            std::mem::swap(&mut a_m, &mut b_m);
            std::mem::swap(&mut a_c, &mut b_c);
        }
        hv[y * ow..(y + 1) * ow].copy_from_slice(a_m);
        hct[y * ow..(y + 1) * ow].copy_from_slice(a_c);
    }
    // column winners over the window rows, per output row
    oi_t.clear();
    oi_t.resize(4 * ow, T::ZERO);
    let (mut a_m, rest) = oi_t.split_at_mut(ow);
    let (mut a_c, rest) = rest.split_at_mut(ow);
    let (mut b_m, mut b_c) = rest.split_at_mut(ow);
    for oy in 0..p.oh {
        let (y0, y1) = PoolParams::taps(oy, p.sh, p.ph, p.dh, p.kh, h);
        a_m.fill(T::NEG_INFINITY);
        let base = T::from_usize(y0 * w);
        for (o, &c) in a_c.iter_mut().zip(seed_t.iter()) {
            *o = base + c;
        }
        for y in stepped(y0, y1, p.dh) {
            let base = T::from_usize(y * w);
            let rv = &hv[y * ow..(y + 1) * ow];
            let rc = &hct[y * ow..(y + 1) * ow];
            argmax_step((a_m, a_c), (b_m, b_c), rv, rc, base);
            std::mem::swap(&mut a_m, &mut b_m);
            std::mem::swap(&mut a_c, &mut b_c);
        }
        vals[oy * ow..(oy + 1) * ow].copy_from_slice(a_m);
        for (d, &o) in idx[oy * ow..(oy + 1) * ow].iter_mut().zip(a_c.iter()) {
            *d = o.to_i64();
        }
    }
}

/// One step of the running argmax, from `(max, index)` rows `a` into `b`: candidate `k` with
/// value `vals[k]` and index `offset + idx[k]` wins where torch's rule says so. Writing a
/// separate row (not selecting in place) keeps the blends blends: in place, the compiler
/// turns them into masked stores, several times slower on AMD CPUs.
#[inline(always)]
fn argmax_step<T: Real>(
    a: (&[T], &[T]),
    b: (&mut [T], &mut [T]),
    vals: &[T],
    idx: &[T],
    offset: T,
) {
    for ((((bm, bc), &am), &ac), (&v, &i)) in
        b.0.iter_mut()
            .zip(b.1.iter_mut())
            .zip(a.0)
            .zip(a.1)
            .zip(vals.iter().zip(idx))
    {
        let win = nan_max_wins(v, am);
        *bm = select(win, v, am);
        *bc = select(win, offset + i, ac);
    }
}

/// The argmax with `usize` column indices: for planes too large for exact integer indices
/// in `T` (more than 2^24 elements in float32).
#[inline(always)]
fn max_pool_argmax_usize<T: Real>(
    p: &PoolParams,
    xp: &[T],
    vals: &mut [T],
    idx: &mut [i64],
    sc: &mut ArgmaxScratch<T>,
) {
    let (h, w, ow) = (p.h, p.w, p.ow);
    // torch seeds the index with the first tap at or after the padding
    sc.seed_col.clear();
    sc.seed_col
        .extend((0..ow).map(|ox| PoolParams::taps(ox, p.sw, p.pw, p.dw, p.kw, w).0));
    sc.hv.clear();
    sc.hv.resize(h * ow, T::NEG_INFINITY);
    sc.hc.clear();
    for _ in 0..h {
        sc.hc.extend_from_slice(&sc.seed_col);
    }
    for y in 0..h {
        let row = &xp[y * w..(y + 1) * w];
        let hv = &mut sc.hv[y * ow..(y + 1) * ow];
        let hc = &mut sc.hc[y * ow..(y + 1) * ow];
        for j in 0..p.kw {
            let (off, lo, hi) = tap_columns(p, j);
            for ox in lo..hi {
                let c = (ox as isize * p.sw as isize + off) as usize;
                let v = row[c];
                let win = nan_max_wins(v, hv[ox]);
                hv[ox] = select(win, v, hv[ox]);
                // arithmetic, not a select: the compiler turns selects on indices into branches
                hc[ox] += c.wrapping_sub(hc[ox]) * usize::from(win);
            }
        }
    }
    for oy in 0..p.oh {
        let (y0, y1) = PoolParams::taps(oy, p.sh, p.ph, p.dh, p.kh, h);
        let ov = &mut vals[oy * ow..(oy + 1) * ow];
        let oi = &mut idx[oy * ow..(oy + 1) * ow];
        ov.fill(T::NEG_INFINITY);
        for (o, &c) in oi.iter_mut().zip(&sc.seed_col) {
            *o = (y0 * w + c) as i64;
        }
        for y in stepped(y0, y1, p.dh) {
            let hv = &sc.hv[y * ow..(y + 1) * ow];
            let hc = &sc.hc[y * ow..(y + 1) * ow];
            for ox in 0..ow {
                let v = hv[ox];
                let win = nan_max_wins(v, ov[ox]);
                ov[ox] = select(win, v, ov[ox]);
                oi[ox] += ((y * w + hc[ox]) as i64 - oi[ox]) * i64::from(win);
            }
        }
    }
}

impl PoolParams {
    /// 2x2 windows at stride 2, no padding or dilation, all inside the plane (the pooling of
    /// most CNNs): [`max_pool_2x2`] computes these without per-plane scratch.
    fn is_2x2_s2(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw) == (2, 2, 2, 2)
            && (self.ph, self.pw, self.dh, self.dw) == (0, 0, 1, 1)
            && 2 * self.oh <= self.h
            && 2 * self.ow <= self.w
    }
}

/// Outputs per chunk of [`max_pool_2x2`] (the de-interleaved taps stay on the stack).
const CHUNK_2X2: usize = 64;

/// The four taps, in torch's scan order, of [`CHUNK_2X2`] consecutive outputs of a plane,
/// and each output's flat index of its first tap.
struct Taps2x2<T> {
    t: [[T; CHUNK_2X2]; 4],
    base: [i64; CHUNK_2X2],
}

/// The maxima (and, with `ind`, their indices) of the first `n` outputs of `taps`, written to
/// `out[..n]`. The selects run over the whole fixed-length chunk (lanes past `n` hold stale
/// taps and are not written), so they compile to vector blends with no scalar tail; the
/// winner's offset in its window (0, 1, w or w + 1) is selected as a `T`, of the values'
/// lane width.
#[inline(always)]
fn max_2x2_chunk<T: Real>(
    taps: &Taps2x2<T>,
    (wt, w1): (T, T),
    n: usize,
    out: &mut [T],
    ind: Option<&mut [i64]>,
) {
    let mut m = [T::ZERO; CHUNK_2X2];
    let mut ks = [T::ZERO; CHUNK_2X2];
    let [ta, tb, tc, td] = &taps.t;
    let quads = ta.iter().zip(tb).zip(tc.iter().zip(td));
    for ((o, k), ((&a, &b), (&c, &d))) in m.iter_mut().zip(ks.iter_mut()).zip(quads) {
        // the seed is the first tap: -inf there keeps its index
        let wb = nan_max_wins(b, a);
        let v = select(wb, b, a);
        let kk = select(wb, T::ONE, T::ZERO);
        let wc = nan_max_wins(c, v);
        let v = select(wc, c, v);
        let kk = select(wc, wt, kk);
        let wd = nan_max_wins(d, v);
        *o = select(wd, d, v);
        *k = select(wd, w1, kk);
    }
    out[..n].copy_from_slice(&m[..n]);
    if let Some(ind) = ind {
        for ((i, &k), &b) in ind[..n].iter_mut().zip(&ks).zip(&taps.base) {
            *i = b + k.to_i64();
        }
    }
}

simd_twin! {
    /// Max pooling over 2x2 windows at stride 2 (see [`PoolParams::is_2x2_s2`]), one plane:
    /// the four taps in torch's scan order (row by row), a tap winning when greater than the
    /// running maximum or NaN, as [`window_max`] decides. `idx` (if given) gets the winner's
    /// flat index in the plane.
    ///
    /// The plane's outputs are taken in chunks of [`CHUNK_2X2`], across row ends (small
    /// planes have rows of a few outputs): the taps are de-interleaved into four contiguous
    /// rows, then [`max_2x2_chunk`] selects.
    fn max_pool_2x2<T: Real>(p: &PoolParams, x: &[T], vals: &mut [T], idx: Option<&mut [i64]>) {
        let (w, ow) = (p.w, p.ow);
        let wts = (T::from_usize(w), T::from_usize(w + 1));
        let mut idx = idx;
        let mut taps = Taps2x2 {
            t: [[T::ZERO; CHUNK_2X2]; 4],
            base: [0; CHUNK_2X2],
        };
        let (mut j, mut q0) = (0, 0);
        for oy in 0..p.oh {
            let r0 = &x[2 * oy * w..(2 * oy + 1) * w];
            let r1 = &x[(2 * oy + 1) * w..(2 * oy + 2) * w];
            for ox in 0..ow {
                taps.t[0][j] = r0[2 * ox];
                taps.t[1][j] = r0[2 * ox + 1];
                taps.t[2][j] = r1[2 * ox];
                taps.t[3][j] = r1[2 * ox + 1];
                taps.base[j] = (2 * oy * w + 2 * ox) as i64;
                j += 1;
                if j == CHUNK_2X2 {
                    let ind = idx.as_deref_mut().map(|v| &mut v[q0..q0 + j]);
                    max_2x2_chunk(&taps, wts, j, &mut vals[q0..q0 + j], ind);
                    q0 += j;
                    j = 0;
                }
            }
        }
        if j > 0 {
            let ind = idx.map(|v| &mut v[q0..q0 + j]);
            max_2x2_chunk(&taps, wts, j, &mut vals[q0..q0 + j], ind);
        }
    }
}

/// Max pooling forward; `indices` (if given) receives the flattened `h * w` argmax per output.
pub fn max_pool2d_forward<T: Real>(
    p: &PoolParams,
    x: &[T],
    out: &mut [T],
    indices: Option<&mut [i64]>,
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    if p.is_2x2_s2() && plane_out > 0 {
        // several small planes per task: about 16K outputs each
        let group = (16_384 / plane_out).max(1);
        let x_of = |i: usize| &x[i * plane_in..(i + 1) * plane_in];
        match indices {
            None => run_planes_grouped(threads, out, plane_out, group, |i, o| {
                max_pool_2x2(p, x_of(i), o, None)
            }),
            Some(ind) => run_planes_indexed(
                threads,
                (out, ind),
                plane_out,
                group,
                || (),
                |_, i, o, ix| max_pool_2x2(p, x_of(i), o, Some(ix)),
            ),
        }
        return;
    }
    match indices {
        None => run_planes(threads, out, plane_out, |i, o| {
            let mut colmax = Vec::new();
            max_pool_values(p, &x[i * plane_in..(i + 1) * plane_in], o, &mut colmax)
        }),
        Some(ind) => {
            let body = |sc: &mut ArgmaxScratch<T>, i: usize, o: &mut [T], ix: &mut [i64]| {
                max_pool_argmax(p, &x[i * plane_in..(i + 1) * plane_in], o, ix, sc)
            };
            run_planes_indexed(
                threads,
                (out, ind),
                plane_out,
                1,
                ArgmaxScratch::default,
                body,
            )
        }
    }
}

/// Max pooling backward: each output's gradient goes to its argmax (recomputed from `x`).
pub fn max_pool2d_backward<T: Real>(
    p: &PoolParams,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let init = || {
        let vals = vec![T::ZERO; plane_out];
        (ArgmaxScratch::default(), vals, vec![0i64; plane_out])
    };
    run_planes_with(threads, dx, plane_in, 1, init, |scratch, i, d| {
        let (sc, vals, idx) = scratch;
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        let g = &dy[i * plane_out..(i + 1) * plane_out];
        max_pool_argmax(p, xp, vals, idx, sc);
        for (&k, &gv) in idx.iter().zip(g) {
            // A window holding no element (possible with dilation and padding) reports
            // torch's seed index, which may lie past the plane: it routes nothing.
            if let Some(e) = d.get_mut(k as usize) {
                *e += gv;
            }
        }
    });
}

/// The averaging window of torch's CPU kernel: clipped start/end per axis and the divisor.
#[inline(always)]
fn avg_window(o: usize, s: usize, p: usize, k: usize, len: usize) -> (isize, isize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((len + p) as isize);
    let pool = (end - start) as usize;
    (start.max(0), end.min(len as isize), pool)
}

/// The averaging window of every output column (the same for every row and plane).
fn avg_columns(p: &PoolParams) -> Vec<(isize, isize, usize)> {
    (0..p.ow)
        .map(|ox| avg_window(ox, p.sw, p.pw, p.kw, p.w))
        .collect()
}

/// Average pooling forward (dilation is 1 for avg_pool2d): for each output row the window
/// rows are summed column by column (vectorisable), then over the window columns.
pub fn avg_pool2d_forward<T: Real>(
    p: &PoolParams,
    x: &[T],
    out: &mut [T],
    opt: AvgOptions,
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let cols = avg_columns(p);
    run_planes(threads, out, plane_out, |i, o| {
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        let mut colsum = vec![T::ZERO; p.w];
        for oy in 0..p.oh {
            let (y0, y1, ph) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
            let orow = &mut o[oy * p.ow..(oy + 1) * p.ow];
            if y0 >= y1 {
                orow.fill(T::ZERO);
                continue;
            }
            colsum.fill(T::ZERO);
            for y in y0 as usize..y1 as usize {
                for (c, &v) in colsum.iter_mut().zip(&xp[y * p.w..(y + 1) * p.w]) {
                    *c += v;
                }
            }
            for (out, &(x0, x1, pw)) in orow.iter_mut().zip(&cols) {
                if x0 >= x1 {
                    *out = T::ZERO;
                    continue;
                }
                let mut s = T::ZERO;
                for &c in &colsum[x0 as usize..x1 as usize] {
                    s += c;
                }
                let inside = ((y1 - y0) * (x1 - x0)) as usize;
                *out = s / opt.divisor::<T>(ph * pw, inside);
            }
        }
    });
}

/// Average pooling backward: each output's gradient is spread evenly over its window; per
/// output row the spread is built once along the row, then added to the window rows.
pub fn avg_pool2d_backward<T: Real>(
    p: &PoolParams,
    dy: &[T],
    dx: &mut [T],
    opt: AvgOptions,
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let cols = avg_columns(p);
    // Every window's divisor, once for all planes (1 where the window is empty): per plane
    // the quotients are then one vectorised division per row, where a scalar division per
    // window took ~45% of the time.
    let mut divs = vec![T::ONE; plane_out];
    for oy in 0..p.oh {
        let (y0, y1, ph) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
        for (ox, &(x0, x1, pw)) in cols.iter().enumerate() {
            if y0 < y1 && x0 < x1 {
                let inside = ((y1 - y0) * (x1 - x0)) as usize;
                divs[oy * p.ow + ox] = opt.divisor::<T>(ph * pw, inside);
            }
        }
    }
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    // Windows that tile the plane exactly (kernel == stride, no padding, no remainder): each
    // input element gets one quotient, so the rows are written once, without the zeroing
    // pass and the additions.
    let tiles = p.kh == p.sh
        && p.kw == p.sw
        && p.ph == 0
        && p.pw == 0
        && p.oh * p.sh == p.h
        && p.ow * p.sw == p.w;
    run_planes_grouped(threads, dx, plane_in, group, |i, d| {
        let g = &dy[i * plane_out..(i + 1) * plane_out];
        let mut spread = vec![T::ZERO; p.w];
        let mut quot = vec![T::ZERO; p.ow];
        if tiles {
            for oy in 0..p.oh {
                let row = oy * p.ow..(oy + 1) * p.ow;
                for ((q, &gv), &dv) in quot.iter_mut().zip(&g[row.clone()]).zip(&divs[row]) {
                    *q = gv / dv;
                }
                for (chunk, &v) in spread.chunks_exact_mut(p.kw).zip(&quot) {
                    chunk.fill(v);
                }
                for y in oy * p.kh..(oy + 1) * p.kh {
                    d[y * p.w..(y + 1) * p.w].copy_from_slice(&spread);
                }
            }
            return;
        }
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        for oy in 0..p.oh {
            let (y0, y1, _) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
            if y0 >= y1 {
                continue;
            }
            let row = oy * p.ow..(oy + 1) * p.ow;
            for ((q, &gv), &dv) in quot.iter_mut().zip(&g[row.clone()]).zip(&divs[row]) {
                *q = gv / dv;
            }
            spread.fill(T::ZERO);
            for (&v, &(x0, x1, _)) in quot.iter().zip(&cols) {
                if x0 >= x1 {
                    continue;
                }
                for e in &mut spread[x0 as usize..x1 as usize] {
                    *e += v;
                }
            }
            for y in y0 as usize..y1 as usize {
                for (e, &v) in d[y * p.w..(y + 1) * p.w].iter_mut().zip(&spread) {
                    *e += v;
                }
            }
        }
    });
}

/// Planes per task of global average pooling: about 16K input elements per task.
fn global_group(plane: usize) -> usize {
    ((1 << 14) / plane.max(1)).max(1)
}

/// The means of the consecutive `plane`-element planes of `x`, one per element of `out`
/// (`plane` > 0): each plane summed as [`plane_sum`] sums it, in one loop over the planes
/// (a call per plane cost more than the sum of a small plane).
fn plane_means<T: Real>(x: &[T], plane: usize, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() == 4 && crate::base::simd::has_avx2_fma() {
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn means_f32(x: &[f32], plane: usize, out: &mut [f32]) {
            let div = plane as f32;
            for (o, v) in out.iter_mut().zip(x.chunks_exact(plane)) {
                // SAFETY: this function's caller checked that the CPU has AVX2.
                *o = unsafe { sum_f32_avx2(v) } / div;
            }
        }
        // SAFETY: `Real` is implemented for f32 and f64 only, so a 4-byte `T` is f32 (same
        // layout, both slices reinterpreted with their lengths); the CPU has AVX2 (checked).
        unsafe {
            let x32 = std::slice::from_raw_parts(x.as_ptr() as *const f32, x.len());
            let o32 = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len());
            means_f32(x32, plane, o32);
        }
        return;
    }
    plane_means_lanes(x, plane, out)
}

simd_twin! {
    /// [`plane_means`] through [`lane_sum`] (float64, or a CPU without AVX2).
    fn plane_means_lanes<T: Real>(x: &[T], plane: usize, out: &mut [T]) {
        let div = T::from_usize(plane);
        for (o, v) in out.iter_mut().zip(x.chunks_exact(plane)) {
            *o = lane_sum(v) / div;
        }
    }
}

/// Global average pooling (`p.oh == p.ow == 1`, non-empty planes): every plane's mean, in
/// fixed groups of planes.
fn global_avg_pool2d_forward<T: Real>(p: &AdaptiveParams, x: &[T], out: &mut [T], threads: usize) {
    let plane = p.h * p.w;
    let group = global_group(plane);
    for_each_chunk(
        threads > 1,
        out,
        group,
        || (),
        |_, (i, o)| {
            let start = i * group * plane;
            plane_means(&x[start..start + o.len() * plane], plane, o);
        },
    );
}

/// Adaptive average pooling forward.
pub fn adaptive_avg_pool2d_forward<T: Real>(
    p: &AdaptiveParams,
    x: &[T],
    out: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    if plane_out == 1 && plane_in > 0 {
        return crate::base::threads::run(threads, || {
            global_avg_pool2d_forward(p, x, out, threads)
        });
    }
    let min_planes = (1 << 14) / plane_in.max(1);
    run_planes_grouped(threads, out, plane_out, min_planes, |i, o| {
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        for oy in 0..p.oh {
            let (y0, y1) = AdaptiveParams::range(oy, p.oh, p.h);
            for ox in 0..p.ow {
                let (x0, x1) = AdaptiveParams::range(ox, p.ow, p.w);
                let s = if x0 == 0 && x1 == p.w {
                    plane_sum(&xp[y0 * p.w..y1 * p.w]) // whole rows: one contiguous run
                } else {
                    let mut s = T::ZERO;
                    for y in y0..y1 {
                        s += row_sum(&xp[y * p.w + x0..y * p.w + x1]);
                    }
                    s
                };
                o[oy * p.ow + ox] = s / T::from_usize((y1 - y0) * (x1 - x0));
            }
        }
    });
}

/// Adaptive average pooling backward.
pub fn adaptive_avg_pool2d_backward<T: Real>(
    p: &AdaptiveParams,
    dy: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    if plane_out == 1 && plane_in > 0 {
        // global pooling: each plane is its gradient over the plane's size (`+ 0`: a -0.0
        // quotient gives +0.0, as the accumulation below does)
        let group = global_group(plane_in);
        let div = T::from_usize(plane_in);
        return crate::base::threads::run(threads, || {
            for_each_chunk(
                threads > 1,
                dx,
                group * plane_in,
                || (),
                |_, (i, d)| {
                    for (d, &g) in d.chunks_exact_mut(plane_in).zip(&dy[i * group..]) {
                        d.fill(g / div + T::ZERO);
                    }
                },
            )
        });
    }
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    run_planes_grouped(threads, dx, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let g = &dy[i * plane_out..(i + 1) * plane_out];
        for oy in 0..p.oh {
            let (y0, y1) = AdaptiveParams::range(oy, p.oh, p.h);
            for ox in 0..p.ow {
                let (x0, x1) = AdaptiveParams::range(ox, p.ow, p.w);
                let v = g[oy * p.ow + ox] / T::from_usize((y1 - y0) * (x1 - x0));
                for y in y0..y1 {
                    for e in &mut d[y * p.w + x0..y * p.w + x1] {
                        *e += v;
                    }
                }
            }
        }
    });
}

/// Adaptive max pooling forward with flattened argmax indices.
pub fn adaptive_max_pool2d_forward<T: Real>(
    p: &AdaptiveParams,
    x: &[T],
    out: &mut [T],
    ind: &mut [i64],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    run_planes_indexed(
        threads,
        (out, ind),
        plane_out,
        1,
        || (),
        |_, i, o, ix| {
            let xp = &x[i * plane_in..(i + 1) * plane_in];
            for oy in 0..p.oh {
                let ys = AdaptiveParams::range(oy, p.oh, p.h);
                for ox in 0..p.ow {
                    let xs = AdaptiveParams::range(ox, p.ow, p.w);
                    let (v, idx) = window_max(xp, p.w, ys, 1, xs, 1);
                    o[oy * p.ow + ox] = v;
                    ix[oy * p.ow + ox] = idx as i64;
                }
            }
        },
    );
}

/// Adaptive max pooling backward (argmax recomputed from `x`).
pub fn adaptive_max_pool2d_backward<T: Real>(
    p: &AdaptiveParams,
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    run_planes_grouped(threads, dx, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        let g = &dy[i * plane_out..(i + 1) * plane_out];
        for oy in 0..p.oh {
            let ys = AdaptiveParams::range(oy, p.oh, p.h);
            for ox in 0..p.ow {
                let xs = AdaptiveParams::range(ox, p.ow, p.w);
                let (_, idx) = window_max(xp, p.w, ys, 1, xs, 1);
                d[idx] += g[oy * p.ow + ox];
            }
        }
    });
}

/// Max pooling backward from saved indices: `dx` (zero-filled here) accumulates each
/// output's gradient at its index. An index outside the plane is a `ValueError`.
pub fn max_pool2d_backward_indices<T: Real>(
    dy: &[T],
    indices: &[i64],
    plane_out: usize,
    dx: &mut [T],
    plane_in: usize,
    threads: usize,
) -> Result<()> {
    if plane_out == 0 || (dx.is_empty() && indices.is_empty()) {
        dx.fill(T::ZERO);
        return Ok(());
    }
    if plane_in == 0 {
        return Err(ConvError::value(format!(
            "indices holds {}, but the input plane is empty",
            indices[0]
        )));
    }
    // Any index outside the plane (negative, or at least `plane_in`) is an error; `found`
    // says whether one was seen (no index value is reserved as a marker).
    let found = AtomicBool::new(false);
    let bad = AtomicI64::new(0);
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    run_planes_grouped(threads, dx, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let g = &dy[i * plane_out..(i + 1) * plane_out];
        let ix = &indices[i * plane_out..(i + 1) * plane_out];
        for (&k, &gv) in ix.iter().zip(g) {
            match usize::try_from(k).ok().and_then(|k| d.get_mut(k)) {
                Some(e) => *e += gv,
                None => {
                    bad.store(k, Ordering::Relaxed);
                    found.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    if found.into_inner() {
        return Err(bad_index(bad.into_inner(), plane_in));
    }
    Ok(())
}

/// The error of an index outside its input plane.
fn bad_index(k: i64, plane_in: usize) -> ConvError {
    ConvError::value(format!(
        "indices holds {k}, outside the input plane of {plane_in} elements \
             (valid: 0 <= index < {plane_in})"
    ))
}

/// The check of [`max_pool2d_backward_indices`] alone, before anything is written: a
/// caller's `out=` array is left untouched when an index is refused.
pub fn check_plane_indices(indices: &[i64], plane_in: usize) -> Result<()> {
    // plain loops over large chunks (a per-element parallel find_first cost 12 ms on 3.2M
    // indices); the chunk holding the first bad index reports it
    let limit = i64::try_from(plane_in).unwrap_or(i64::MAX);
    let first_bad = indices
        .par_chunks(1 << 16)
        .find_map_first(|c| c.iter().copied().find(|&k| k < 0 || k >= limit));
    match first_bad {
        Some(k) => Err(bad_index(k, plane_in)),
        None => Ok(()),
    }
}

/// max_unpool2d: `out` (planes of `plane_out`, zero-filled here) receives `x[k]` at
/// `indices[k]` of its plane. An index outside the plane is a `ValueError`.
pub fn max_unpool2d<T: Real>(
    x: &[T],
    indices: &[i64],
    plane_in: usize,
    out: &mut [T],
    plane_out: usize,
) -> Result<()> {
    out.fill(T::ZERO);
    if plane_in == 0 || x.is_empty() {
        return Ok(());
    }
    if plane_out == 0 {
        return Err(ConvError::value(format!(
            "found an invalid max index {} (the output plane is empty)",
            indices[0]
        )));
    }
    for (i, (o, (xp, ip))) in out
        .chunks_exact_mut(plane_out)
        .zip(x.chunks_exact(plane_in).zip(indices.chunks_exact(plane_in)))
        .enumerate()
    {
        for (&v, &idx) in xp.iter().zip(ip) {
            let k = usize::try_from(idx).ok().filter(|&k| k < plane_out).ok_or_else(|| {
                ConvError::value(format!("found an invalid max index {idx} in plane {i} (output plane has {plane_out} elements)"),
                )
            })?;
            o[k] = v;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn plane_sum_matches_the_exact_sum_for_every_tail() {
        // small integers: every order of summation is exact, so both paths must agree
        for len in 0..200usize {
            let v: Vec<f32> = (0..len).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
            let want: f32 = v.iter().sum();
            assert_eq!(plane_sum(&v), want, "len {len}");
            assert_eq!(lane_sum(&v), want, "len {len}");
            let v64: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
            assert_eq!(plane_sum(&v64), f64::from(want), "len {len}");
        }
    }

    use super::*;
    use crate::nn::pool::params::PoolSpec;

    fn pp(
        input: [usize; 4],
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<PoolParams> {
        let spec = PoolSpec {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
        };
        PoolParams::new(input, &spec)
    }

    #[test]
    fn avg_backward_of_tiling_windows_is_the_spread_quotient() {
        for (h, w, k, div) in [
            (4, 6, 2, None),
            (6, 6, 3, Some(-2)),
            (5, 10, 5, Some(3)),
            (1, 1, 1, None),
        ] {
            let p = pp([2, 3, h, w], (k, k), (k, k), (0, 0), (1, 1), false).unwrap();
            let opt = AvgOptions::new(true, div).unwrap();
            let dy: Vec<f64> = (0..2 * 3 * p.oh * p.ow)
                .map(|i| (i % 7) as f64 - 3.0)
                .collect();
            for threads in [1, 2] {
                let mut dx = vec![f64::NAN; 2 * 3 * h * w];
                avg_pool2d_backward(&p, &dy, &mut dx, opt, threads);
                for (i, &v) in dx.iter().enumerate() {
                    let (plane, y, x) = (i / (h * w), i % (h * w) / w, i % w);
                    let g = dy[plane * p.oh * p.ow + (y / k) * p.ow + x / k];
                    assert_eq!(
                        v,
                        g / opt.divisor::<f64>(k * k, k * k),
                        "{h}x{w} k{k} at {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn d2l_pooling_examples() {
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let p = pp([1, 1, 3, 3], (2, 2), (1, 1), (0, 0), (1, 1), false).unwrap();
        let mut out = vec![0.0; 4];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![4.0, 5.0, 7.0, 8.0]);
        let opt = AvgOptions::new(true, None).unwrap();
        avg_pool2d_forward(&p, &x, &mut out, opt, 1);
        assert_eq!(out, vec![2.0, 3.0, 5.0, 6.0]);
        let x: Vec<f64> = (0..16).map(f64::from).collect();
        let p = pp([1, 1, 4, 4], (3, 3), (3, 3), (0, 0), (1, 1), false).unwrap();
        let mut out = vec![0.0; 1];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![10.0]);
        let p = pp([1, 1, 4, 4], (3, 3), (2, 2), (1, 1), (1, 1), false).unwrap();
        let mut out = vec![0.0; 4];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![5.0, 7.0, 13.0, 15.0]);
    }

    /// The vectorised argmax (indices as exact integers in `T`) and the `usize` one agree on
    /// every element, with ties, NaN and -inf, over strides, paddings, dilations, ceil_mode.
    #[test]
    fn argmax_paths_agree() {
        let mut next = crate::base::testing::xorshift(0x2545_f491_4f6c_dd1d_u64);
        let mut checked = 0;
        for case in 0..400 {
            let (h, w) = (1 + next() as usize % 13, 1 + next() as usize % 13);
            let (kh, kw) = (1 + next() as usize % 4, 1 + next() as usize % 4);
            let (sh, sw) = (1 + next() as usize % 3, 1 + next() as usize % 3);
            let (dh, dw) = (1 + next() as usize % 2, 1 + next() as usize % 2);
            let (ph, pw) = (
                next() as usize % (kh / 2 + 1),
                next() as usize % (kw / 2 + 1),
            );
            let ceil = case % 2 == 0;
            let Ok(p) = pp([1, 1, h, w], (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil) else {
                continue;
            };
            let x: Vec<f32> = (0..h * w)
                .map(|_| match next() % 8 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    v => (v % 3) as f32, // many ties
                })
                .collect();
            let n = p.oh * p.ow;
            let (mut v1, mut i1) = (vec![0.0f32; n], vec![0i64; n]);
            let (mut v2, mut i2) = (vec![0.0f32; n], vec![0i64; n]);
            let mut sc = ArgmaxScratch::default();
            max_pool_argmax_same_width(&p, &x, &mut v1, &mut i1, &mut sc);
            max_pool_argmax_usize(&p, &x, &mut v2, &mut i2, &mut ArgmaxScratch::default());
            assert_eq!(i1, i2, "case {case}: {p:?}");
            let same = v1
                .iter()
                .zip(&v2)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "case {case}: {p:?}");
            checked += 1;
        }
        assert!(checked > 200, "only {checked} valid cases");
    }

    #[test]
    fn fast_2x2_path_agrees_with_the_general_argmax() {
        let mut next = crate::base::testing::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for case in 0..300 {
            let (h, w) = (2 + next() as usize % 11, 2 + next() as usize % 11);
            let ceil = case % 2 == 0;
            let p = pp([1, 1, h, w], (2, 2), (2, 2), (0, 0), (1, 1), ceil).unwrap();
            if !p.is_2x2_s2() {
                continue; // ceil mode over an odd size: a partial last window
            }
            let x: Vec<f32> = (0..h * w)
                .map(|_| match next() % 8 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    v => (v % 3) as f32,
                })
                .collect();
            let n = p.oh * p.ow;
            let (mut v1, mut i1) = (vec![0.0f32; n], vec![0i64; n]);
            let (mut v2, mut i2) = (vec![0.0f32; n], vec![0i64; n]);
            let mut v3 = vec![0.0f32; n];
            max_pool_2x2(&p, &x, &mut v1, Some(&mut i1));
            max_pool_2x2(&p, &x, &mut v3, None);
            max_pool_argmax_usize(&p, &x, &mut v2, &mut i2, &mut ArgmaxScratch::default());
            assert_eq!(i1, i2, "case {case}: {p:?}");
            for (a, b) in v1.iter().zip(&v2).chain(v3.iter().zip(&v2)) {
                assert!(a == b || (a.is_nan() && b.is_nan()), "case {case}: {p:?}");
            }
        }
    }

    #[test]
    fn ceil_mode_drops_window_starting_in_padding() {
        let p = pp([1, 1, 5, 5], (2, 2), (2, 2), (1, 1), (1, 1), true).unwrap();
        assert_eq!((p.oh, p.ow), (3, 3));
        let p = pp([1, 1, 5, 5], (2, 2), (2, 2), (0, 0), (1, 1), true).unwrap();
        assert_eq!((p.oh, p.ow), (3, 3));
        assert!(pp([1, 1, 4, 4], (5, 5), (1, 1), (0, 0), (1, 1), false).is_err());
        assert!(pp([1, 1, 4, 4], (3, 3), (1, 1), (2, 2), (1, 1), false).is_err());
    }
}
