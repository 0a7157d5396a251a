//! Max pooling: values only ([`max_pool2d_forward`] without indices), with torch's argmax
//! (the separable scan, indices held as exact integers in `T` or as `usize`), the fast path
//! of 2x2 windows at stride 2 (taps de-interleaved in chunks), and the input gradient, from
//! the argmax recomputed ([`max_pool2d_backward`]) or from saved indices
//! ([`max_pool2d_backward_indices`], checked by [`check_plane_indices`]).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rayon::prelude::*;

use super::params::PoolParams;
use super::planes::{
    nan_max_wins, run_planes, run_planes_grouped, run_planes_indexed, run_planes_with, stepped,
};
use crate::base::error::{ConvError, Result};
use crate::base::real::{select, Real};
use crate::base::simd::simd_twin;

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
    /// running maximum or NaN, as [`window_max`](super::planes::window_max) decides. `idx` (if
    /// given) gets the winner's flat index in the plane.
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
    grad_output: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let init = || {
        let vals = vec![T::ZERO; plane_out];
        (ArgmaxScratch::default(), vals, vec![0i64; plane_out])
    };
    run_planes_with(threads, grad_input, plane_in, 1, init, |scratch, i, d| {
        let (sc, vals, idx) = scratch;
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        let g = &grad_output[i * plane_out..(i + 1) * plane_out];
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

/// Max pooling backward from saved indices: `grad_input` (zero-filled here) accumulates each
/// output's gradient at its index. An index outside the plane is a `ValueError`.
pub fn max_pool2d_backward_indices<T: Real>(
    grad_output: &[T],
    indices: &[i64],
    plane_out: usize,
    grad_input: &mut [T],
    plane_in: usize,
    threads: usize,
) -> Result<()> {
    if plane_out == 0 || (grad_input.is_empty() && indices.is_empty()) {
        grad_input.fill(T::ZERO);
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
    run_planes_grouped(threads, grad_input, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let g = &grad_output[i * plane_out..(i + 1) * plane_out];
        let ix = &indices[i * plane_out..(i + 1) * plane_out];
        // the plane's indices checked at once (a loop without branches, vectorised), then
        // scattered without a check per element
        if !all_below(ix, d.len()) {
            if let Some(k) = first_outside(ix, d.len()) {
                bad.store(k, Ordering::Relaxed);
                found.store(true, Ordering::Relaxed);
            }
            return;
        }
        for (&k, &gv) in ix.iter().zip(g) {
            // SAFETY: `all_below` checked every index of the plane: 0 <= k < d.len().
            unsafe { *d.get_unchecked_mut(k as usize) += gv };
        }
    });
    if found.into_inner() {
        return Err(bad_index(bad.into_inner(), plane_in));
    }
    Ok(())
}

simd_twin! {
    /// Whether every index lies in `0..len` (a negative one reads as a huge unsigned value):
    /// one pass without branches, which the compiler vectorises.
    fn all_below<>(ix: &[i64], len: usize) -> bool {
        ix.is_empty() || ix.iter().fold(0u64, |m, &k| m.max(k as u64)) < len as u64
    }
}

/// The first index of `ix` outside `0..len` (the error path, after [`all_below`]).
fn first_outside(ix: &[i64], len: usize) -> Option<i64> {
    ix.iter()
        .copied()
        .find(|&k| usize::try_from(k).map_or(true, |k| k >= len))
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
    // the common case, every index valid, in branch-free vectorised passes over large chunks
    // (a per-element parallel find_first cost 12 ms on 3.2M indices); the error path then
    // finds the first bad index
    if indices.par_chunks(1 << 16).all(|c| all_below(c, plane_in)) {
        return Ok(());
    }
    match first_outside(indices, plane_in) {
        Some(k) => Err(bad_index(k, plane_in)),
        None => Err(ConvError::internal(
            "check_plane_indices: no bad index found",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::base::simd::with_each_level;

    #[test]
    fn index_checks_find_every_out_of_plane_index_at_every_level() {
        with_each_level(|level| {
            for len in [0usize, 1, 7, 64, 1000] {
                for n in [0usize, 1, 5, 33, 200] {
                    let ok: Vec<i64> = (0..n).map(|i| (i * 31 % len.max(1)) as i64).collect();
                    assert_eq!(
                        all_below(&ok, len),
                        n == 0 || len > 0,
                        "{level:?} {len} {n}"
                    );
                    for (pos, bad) in [
                        (0, -1i64),
                        (n / 2, len as i64),
                        (n.saturating_sub(1), i64::MIN),
                    ] {
                        if n == 0 {
                            continue;
                        }
                        let mut v = ok.clone();
                        v[pos] = bad;
                        assert!(!all_below(&v, len), "{level:?} {len} {n} {bad} at {pos}");
                        let err = check_plane_indices(&v, len).expect_err("a bad index");
                        if len > 0 {
                            // the only bad index is the one put there
                            assert!(err.to_string().contains(&bad.to_string()), "{err}");
                        }
                    }
                    if len > 0 {
                        assert!(check_plane_indices(&ok, len).is_ok());
                    }
                }
            }
        });
    }

    use super::*;
    use crate::nn::pool::params::tests::pp;

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
}
