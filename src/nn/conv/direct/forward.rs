//! Direct forward convolution of dense and grouped layers (dilation 1, any stride, zero
//! padding), oneDNN / Zhang-Franchetti-Low style, with no im2col.
//!
//! - The weights are converted once per call to `[group][oc block][kh][kw][ic][LANES]`, each
//!   block of `LANES` output channels padded with zeros.
//! - Each task (image, group, block of output rows) copies the input rows it reads into a
//!   zero-padded buffer `[row][ic][phase][col / stride]`: the columns of one row are split by
//!   their phase modulo the stride, so that consecutive output pixels read consecutive
//!   elements for every stride, and the padding is physically present (no bounds checks).
//! - The microkernel keeps a tile of `RH x RW` output pixels by `OCB` vectors of output
//!   channels in registers; for each `(kh, kw, ic)` it loads `OCB` weight vectors and
//!   broadcasts `RH * RW` input scalars. The tile is stored to a small scratch array and
//!   written to the NCHW output with the bias and the fused ReLU ([`Operands::finish_row`]'s
//!   rule). Rows and columns of a tile past the output are computed on zero padding and
//!   dropped.
//!
//! Every output element is the sum over `(kh, kw, ic)` in that order, whatever the tiling and
//! the thread count: results are bit-identical for every thread count.

use crate::base::par::{for_each_task, DisjointSlice};
use crate::base::real::relu;
use crate::base::simd::vector::dispatch_at;
use crate::base::simd::{Level, SimdReal, Vector, WithVector};
use crate::nn::conv::params::{ConvParams, Operands};

/// Whether the direct forward engine takes this layer (`size` = bytes per element).
///
/// Measured on a Zen 5 (avx512, float32, 1 and 2 threads), against im2col + GEMM and
/// Winograd: see the routing comment in `conv2d_forward`.
pub fn applies(p: &ConvParams, size: usize) -> bool {
    let _ = size;
    supports(p) && p.kh * p.kw > 1 && p.k_len() >= 128
}

/// The layers this engine computes: dilation 1, not depthwise (which has its own engine),
/// a non-empty output.
pub fn supports(p: &ConvParams) -> bool {
    p.dh == 1
        && p.dw == 1
        && !(p.groups == p.cin && p.cin_g() == 1 && p.cout_g() == 1)
        && p.cin_g() > 0
        && p.cout_g() > 0
        && p.n * p.oh * p.ow > 0
}

/// Accumulator vectors a tile may hold at `level` (the rest of the registers hold the weight
/// vectors and the broadcast).
fn acc_budget(level: Level) -> usize {
    match level {
        Level::Avx512 => 28,
        _ => 12,
    }
}

/// Accumulators from which a tile keeps the FMA pipes busy (latency x ports).
fn acc_saturation(level: Level) -> usize {
    match level {
        Level::Avx512 => 16,
        _ => 8,
    }
}

/// The tile shapes `(RH, RW)` the kernel is compiled for (each with `OCB` 1 and 2).
const TILES: [(usize, usize); 16] = [
    (1, 28),
    (1, 16),
    (1, 14),
    (1, 12),
    (1, 8),
    (1, 6),
    (1, 4),
    (2, 14),
    (2, 8),
    (2, 7),
    (2, 6),
    (2, 4),
    (3, 8),
    (3, 4),
    (4, 7),
    (6, 4),
];

/// The block plan of one call.
#[derive(Debug, Clone, Copy)]
struct Plan {
    level: Level,
    lanes: usize,
    /// Output-channel blocks per group (`ceil(cout_g / lanes)`).
    nb: usize,
    /// Output-channel vectors per tile (1, or 2 when `nb >= 2`; an odd last block runs alone).
    ocb: usize,
    rh: usize,
    rw: usize,
    /// Output rows per task (a multiple of `rh`) and the tasks per (image, group).
    rows: usize,
    row_blocks: usize,
    /// Output columns rounded up to a multiple of `rw`.
    owp: usize,
    /// Buffer columns per phase, the row length of one channel (`s * wq`), buffer rows.
    wq: usize,
    pw: usize,
    buf_rows: usize,
}

/// Bytes of the per-task input buffer above which a task takes fewer rows.
const BUF_BYTES: usize = 192 * 1024;

fn lanes_at<T: SimdReal>(level: Level) -> usize {
    struct Lanes;
    impl<T: SimdReal> WithVector<T> for Lanes {
        type Out = usize;
        #[inline(always)]
        fn call<V: Vector<Elem = T>>(self) -> usize {
            V::LANES
        }
    }
    dispatch_at::<T, _>(level, Lanes)
}

/// The tile `(RH, RW)` of `TILES` with the best estimated efficiency for `ocb` vectors.
fn choose_tile(p: &ConvParams, level: Level, ocb: usize) -> (usize, usize) {
    let budget = acc_budget(level);
    let sat = acc_saturation(level) as f64;
    let mut best = (1, 1);
    let mut best_score = -1.0f64;
    for &(rh, rw) in TILES.iter() {
        let acc = rh * rw * ocb;
        if acc > budget {
            continue;
        }
        let padded = (p.oh.div_ceil(rh) * rh * p.ow.div_ceil(rw) * rw) as f64;
        let useful = (p.oh * p.ow) as f64;
        // (prefer larger tiles on ties: fewer calls, fewer weight loads per FMA)
        let score = useful / padded * (acc as f64 / sat).min(1.0) + 1e-3 * acc as f64;
        if score > best_score {
            best_score = score;
            best = (rh, rw);
        }
    }
    best
}

fn plan<T: SimdReal>(p: &ConvParams, threads: usize) -> Plan {
    let level = crate::base::simd::level();
    let lanes = lanes_at::<T>(level);
    let nb = p.cout_g().div_ceil(lanes);
    let ocb = if nb >= 2 { 2 } else { 1 };
    let (rh, rw) = choose_tile(p, level, ocb);
    let s = p.sw;
    let owp = p.ow.div_ceil(rw) * rw;
    let wp = (owp - 1) * s + p.kw;
    let wq = wp.div_ceil(s);
    let pw = s * wq;
    let size = std::mem::size_of::<T>();
    // Rows that keep the buffer under BUF_BYTES, and enough tasks for the threads.
    let row_bytes = p.sh * p.cin_g() * pw * size;
    let fit = (BUF_BYTES / row_bytes.max(1)).max(1);
    let per_img = p.n * p.groups;
    let split = (4 * threads.max(1)).div_ceil(per_img).max(1);
    let want = p.oh.div_ceil(split).min(fit).max(1);
    let rows = want.div_ceil(rh) * rh;
    let row_blocks = p.oh.div_ceil(rows);
    let buf_rows = (rows - 1) * p.sh + p.kh;
    Plan {
        level,
        lanes,
        nb,
        ocb,
        rh,
        rw,
        rows,
        row_blocks,
        owp,
        wq,
        pw,
        buf_rows,
    }
}

/// `weight` (`cout x cin_g x kh x kw`) as `[group][oc block][kh][kw][ic][lanes]`, the output
/// channels of each block past `cout_g` zero.
fn convert_weights<T: SimdReal>(p: &ConvParams, weight: &[T], pl: &Plan) -> Vec<T> {
    let (c, cog, taps, l) = (p.cin_g(), p.cout_g(), p.kh * p.kw, pl.lanes);
    let mut wt = vec![T::ZERO; p.groups * pl.nb * taps * c * l];
    for g in 0..p.groups {
        for oc in 0..cog {
            let (ob, lane) = (oc / l, oc % l);
            let blk = (g * pl.nb + ob) * taps * c * l;
            let src = &weight[(g * cog + oc) * c * taps..][..c * taps];
            for ic in 0..c {
                for t in 0..taps {
                    wt[blk + (t * c + ic) * l + lane] = src[ic * taps + t];
                }
            }
        }
    }
    wt
}

/// The geometry the microkernel reads.
struct Geo<'a> {
    /// Buffer offset of every step `(kh, kw, ic)` (in that order) from the tile's first pixel.
    offs: &'a [usize],
    /// Elements between two output rows of a tile in the buffer.
    row_step: usize,
    /// Elements between two consecutive output-channel blocks of the weights.
    wstride: usize,
}

/// One tile: `RH x RW` output pixels by `OCB` vectors of output channels, summed over the
/// steps `(kh, kw, ic)`, stored to `tmp` as `[RH][RW][OCB][LANES]`.
///
/// # Safety
/// `x` points at the tile's first pixel in a task buffer in which every `x + offs[t] +
/// j row_step + r` (`j < RH`, `r < RW`) lies; `w` at the first of `OCB` weight blocks
/// (`wstride` apart) of `offs.len() LANES` elements each; `tmp` has `RH RW OCB LANES`
/// elements; the CPU has `V`'s level.
#[inline(always)]
unsafe fn kernel<V: Vector, const RH: usize, const RW: usize, const OCB: usize>(
    g: &Geo<'_>,
    x: *const V::Elem,
    w: *const V::Elem,
    tmp: *mut V::Elem,
) {
    let l = V::LANES;
    // SAFETY: every pointer stays inside the buffers the caller describes (see above), and
    // the CPU has V's level.
    unsafe {
        let mut acc = [[[V::zero(); OCB]; RW]; RH];
        let mut wi = w;
        for &off in g.offs {
            let xi = x.add(off);
            let mut wv = [V::zero(); OCB];
            for (o, v) in wv.iter_mut().enumerate() {
                *v = V::load(wi.add(o * g.wstride));
            }
            for (j, row) in acc.iter_mut().enumerate() {
                let xj = xi.add(j * g.row_step);
                for (r, px) in row.iter_mut().enumerate() {
                    let b = V::splat(*xj.add(r));
                    for (a, wo) in px.iter_mut().zip(wv.iter()) {
                        *a = wo.fma(b, *a);
                    }
                }
            }
            wi = wi.add(l);
        }
        for (j, row) in acc.iter().enumerate() {
            for (r, px) in row.iter().enumerate() {
                for (o, a) in px.iter().enumerate() {
                    a.store(tmp.add(((j * RW + r) * OCB + o) * l));
                }
            }
        }
    }
}

macro_rules! tile_match {
    ($v:ty, $rh:expr, $rw:expr, $ocb:expr, $args:tt; $(($h:literal, $w:literal)),*) => {
        match ($rh, $rw, $ocb) {
            $(
                ($h, $w, 1) => kernel::<$v, $h, $w, 1> $args,
                ($h, $w, 2) => kernel::<$v, $h, $w, 2> $args,
            )*
            _ => unreachable!("tile ({}, {}, {}) is not compiled", $rh, $rw, $ocb),
        }
    };
}

/// [`kernel`] for the runtime tile `(rh, rw, ocb)`, one of [`TILES`].
///
/// # Safety
/// As [`kernel`].
#[inline(always)]
unsafe fn run_tile<V: Vector>(
    (rh, rw, ocb): (usize, usize, usize),
    g: &Geo<'_>,
    x: *const V::Elem,
    w: *const V::Elem,
    tmp: *mut V::Elem,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        tile_match!(V, rh, rw, ocb, (g, x, w, tmp);
            (1, 28), (1, 16), (1, 14), (1, 12), (1, 8), (1, 6), (1, 4), (2, 14), (2, 8),
            (2, 7), (2, 6), (2, 4), (3, 8), (3, 4), (4, 7), (6, 4))
    }
}

/// What every task shares.
struct Shared<'a, T> {
    p: &'a ConvParams,
    op: Operands<'a, T>,
    pl: Plan,
    wt: &'a [T],
    /// The buffer offsets of the steps (see [`Geo`]).
    offs: &'a [usize],
    out: &'a DisjointSlice<'a, T>,
}

/// One task: image `img`, group `g`, output rows `rows * rb ..`.
struct Task<'a, 's, T> {
    sh: &'s Shared<'a, T>,
    scratch: &'s mut (Vec<T>, Vec<T>),
    img: usize,
    g: usize,
    rb: usize,
}

/// `src` (one input row) into the `s` phases of `dst` (`s` slots of `wq` columns): padded
/// column `pl + ix` to phase `(pl + ix) % s`, slot `(pl + ix) / s`.
#[inline(always)]
fn split_row<T: Copy>(src: &[T], dst: &mut [T], pl: usize, s: usize, wq: usize) {
    if s == 1 {
        dst[pl..pl + src.len()].copy_from_slice(src);
        return;
    }
    for ph in 0..s {
        let q0 = pl.saturating_sub(ph).div_ceil(s);
        let ix0 = q0 * s + ph - pl;
        if ix0 >= src.len() {
            continue;
        }
        let d = &mut dst[ph * wq + q0..(ph + 1) * wq];
        if s == 2 {
            // (pairs: vectorised by the compiler)
            for (d, pair) in d.iter_mut().zip(src[ix0..].chunks_exact(2)) {
                *d = pair[0];
            }
            let n = (src.len() - ix0).div_ceil(2);
            if (src.len() - ix0) % 2 == 1 {
                d[n - 1] = src[src.len() - 1];
            }
        } else {
            for (d, &v) in d.iter_mut().zip(src[ix0..].iter().step_by(s)) {
                *d = v;
            }
        }
    }
}

/// The tile in `tmp` (`[rh][rw][ocb][lanes]`) to the output channels `ob lanes ..` at
/// `out` (rows `plane_out` apart, row length `ow`), `nrow x ncol` pixels, through `fin`.
///
/// # Safety
/// `out` and every channel `< cog`, pixel row `< nrow`, column `< ncol` written lies in the
/// task's output block; `tmp` holds the tile.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn write_tile<T: Copy>(
    tmp: &[T],
    (rh, rw, ocb, l): (usize, usize, usize, usize),
    (ob, cog, bias): (usize, usize, Option<&[T]>),
    out: *mut T,
    (plane_out, ow): (usize, usize),
    (nrow, ncol): (usize, usize),
    fin: impl Fn(T, T) -> T,
    zero: T,
) {
    let _ = rh;
    for o in 0..ocb {
        for lane in 0..l {
            let oc = (ob + o) * l + lane;
            if oc >= cog {
                return;
            }
            let b = bias.map_or(zero, |b| b[oc]);
            for j in 0..nrow {
                let src = &tmp[(j * rw * ocb + o) * l + lane..];
                // SAFETY: the caller's contract: channel oc < cog, row j < nrow, columns < ncol.
                let dst = unsafe { out.add(oc * plane_out + j * ow) };
                for (r, v) in src.iter().step_by(ocb * l).take(ncol).enumerate() {
                    // SAFETY: as above.
                    unsafe { *dst.add(r) = fin(*v, b) };
                }
            }
        }
    }
}

impl<T: SimdReal> WithVector<T> for Task<'_, '_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let Task {
            sh,
            scratch,
            img,
            g,
            rb,
        } = self;
        let (p, pl) = (sh.p, &sh.pl);
        let l = V::LANES;
        assert_eq!(
            l, pl.lanes,
            "direct forward: the SIMD level changed mid-call"
        );
        let (c, s) = (p.cin_g(), p.sw);
        let (buf, tmp) = (&mut scratch.0, &mut scratch.1);
        let row_len = c * pl.pw;
        // The input rows of this block, zero-padded, columns split by phase.
        buf.clear();
        buf.resize(pl.buf_rows * row_len, T::ZERO);
        let oy0 = rb * pl.rows;
        let plane = p.h * p.w;
        let xg = &sh.op.x[(img * p.cin + g * c) * plane..][..c * plane];
        let cols = p.w.min(pl.pw.saturating_sub(p.pl));
        for rr in 0..pl.buf_rows {
            let iy = (oy0 * p.sh + rr) as isize - p.pt as isize;
            if iy < 0 || iy as usize >= p.h {
                continue;
            }
            let iy = iy as usize;
            for ic in 0..c {
                let src = &xg[ic * plane + iy * p.w..][..cols];
                let dst = &mut buf[(rr * c + ic) * pl.pw..][..pl.pw];
                split_row(src, dst, p.pl, s, pl.wq);
            }
        }
        let geo = Geo {
            offs: sh.offs,
            row_step: p.sh * row_len,
            wstride: p.kh * p.kw * c * l,
        };
        let (cog, plane_out) = (p.cout_g(), p.oh * p.ow);
        let nr = pl.rows.min(p.oh - oy0);
        let start = (img * p.cout + g * cog) * plane_out + oy0 * p.ow;
        // SAFETY: task (img, g, rb) alone writes output rows oy0 .. oy0 + nr of the channels of
        // group g of image img (the tasks partition the output).
        let out = unsafe { sh.out.block(start, cog, nr * p.ow, plane_out) };
        tmp.resize(pl.rh * pl.rw * 2 * l, T::ZERO);
        let bias = sh.op.bias.map(|b| &b[g * cog..][..cog]);
        let wg = &sh.wt[g * pl.nb * geo.wstride..][..pl.nb * geo.wstride];
        let mut ob = 0;
        while ob < pl.nb {
            let ocb = pl.ocb.min(pl.nb - ob);
            let wp = wg[ob * geo.wstride..].as_ptr();
            for ty in (0..nr).step_by(pl.rh) {
                for tx in (0..pl.owp).step_by(pl.rw) {
                    let xt = buf[ty * p.sh * row_len + tx..].as_ptr();
                    // SAFETY: the buffer holds buf_rows >= (rows - 1) sh + kh rows of c
                    // channels of pw >= (owp - 1) s + kw columns: every pixel of the tile (up to
                    // row rows - 1, column owp - 1) reads inside it; the weights hold nb blocks,
                    // ob + ocb <= nb; tmp has rh rw 2 lanes elements; dispatch gave V's level.
                    unsafe { run_tile::<V>((pl.rh, pl.rw, ocb), &geo, xt, wp, tmp.as_mut_ptr()) };
                    // The tile to NCHW, bias and ReLU applied (finish_row's rule).
                    let nrc = (pl.rh.min(nr - ty), pl.rw.min(p.ow - tx));
                    let shape = (pl.rh, pl.rw, ocb, l);
                    let at = (plane_out, p.ow);
                    // SAFETY: out + ty ow + tx, channels < cog, rows < nr - ty, columns < ow - tx
                    // lie in this task's block.
                    unsafe {
                        let o = out.add(ty * p.ow + tx);
                        if sh.op.relu {
                            let f = |v: T, b: T| relu(v + b);
                            write_tile(tmp, shape, (ob, cog, bias), o, at, nrc, f, T::ZERO);
                        } else if bias.is_some() {
                            let f = |v: T, b: T| v + b;
                            write_tile(tmp, shape, (ob, cog, bias), o, at, nrc, f, T::ZERO);
                        } else {
                            let f = |v: T, _: T| v;
                            write_tile(tmp, shape, (ob, cog, bias), o, at, nrc, f, T::ZERO);
                        }
                    }
                }
            }
            ob += ocb;
        }
    }
}

/// The buffer offset of every step `(kh, kw, ic)` from a tile's first pixel.
fn step_offsets(p: &ConvParams, pl: &Plan) -> Vec<usize> {
    let (c, s) = (p.cin_g(), p.sw);
    let mut offs = Vec::with_capacity(p.kh * p.kw * c);
    for ky in 0..p.kh {
        for kx in 0..p.kw {
            for ic in 0..c {
                offs.push((ky * c + ic) * pl.pw + (kx % s) * pl.wq + kx / s);
            }
        }
    }
    offs
}

/// The forward convolution of a layer [`supports`] accepts; `out` is overwritten.
pub fn forward<T: SimdReal>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    debug_assert!(supports(p));
    let pl = plan::<T>(p, threads);
    let wt = convert_weights(p, op.weight, &pl);
    let offs = step_offsets(p, &pl);
    let outs = DisjointSlice::new(out);
    let shared = Shared {
        p,
        op,
        pl,
        wt: &wt,
        offs: &offs,
        out: &outs,
    };
    let n_tasks = p.n * p.groups * pl.row_blocks;
    let per_img = p.groups * pl.row_blocks;
    for_each_task(
        threads > 1,
        n_tasks,
        || (Vec::new(), Vec::new()),
        |scratch, t| {
            let task = Task {
                sh: &shared,
                scratch,
                img: t / per_img,
                g: (t % per_img) / pl.row_blocks,
                rb: t % pl.row_blocks,
            };
            dispatch_at(pl.level, task);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::simd::with_each_level;

    fn naive(p: &ConvParams, op: &Operands<'_, f64>) -> Vec<f64> {
        let (cg, og) = (p.cin_g(), p.cout_g());
        let mut out = vec![0.0; p.output_shape().iter().product()];
        for n in 0..p.n {
            for o in 0..p.cout {
                let g = o / og;
                for y in 0..p.oh {
                    for x in 0..p.ow {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for i in 0..p.kh {
                                for j in 0..p.kw {
                                    let iy = (y * p.sh + i * p.dh) as isize - p.pt as isize;
                                    let ix = (x * p.sw + j * p.dw) as isize - p.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * p.cin + g * cg + c) * p.h + iy as usize) * p.w
                                        + ix as usize;
                                    let wi = ((o * cg + c) * p.kh + i) * p.kw + j;
                                    acc += op.x[xi] * op.weight[wi];
                                }
                            }
                        }
                        let b = op.bias.map_or(0.0, |b| b[o]);
                        let v = acc + b;
                        out[((n * p.cout + o) * p.oh + y) * p.ow + x] =
                            if op.relu { v.max(0.0) } else { v };
                    }
                }
            }
        }
        out
    }

    fn data(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % 17) as f64 - 8.0
            })
            .collect()
    }

    const CASES: [([usize; 4], [usize; 4], usize, usize, usize); 12] = [
        // input, weight, stride, pad, groups
        ([2, 3, 9, 11], [16, 3, 3, 3], 1, 1, 1),
        ([1, 3, 8, 8], [20, 3, 3, 3], 2, 1, 1),
        ([2, 8, 7, 5], [33, 8, 5, 5], 1, 2, 1),
        ([1, 16, 8, 8], [32, 4, 3, 3], 2, 1, 4),
        ([3, 6, 6, 9], [6, 2, 1, 1], 1, 0, 3),
        ([1, 5, 13, 13], [7, 5, 3, 2], 3, 0, 1),
        ([1, 4, 3, 30], [40, 4, 3, 3], 1, 1, 1),
        ([2, 8, 6, 6], [16, 4, 1, 1], 2, 0, 2),
        ([1, 2, 5, 5], [3, 2, 5, 5], 1, 4, 1),
        ([1, 64, 9, 9], [64, 16, 3, 3], 2, 1, 4),
        ([1, 3, 11, 10], [8, 3, 5, 5], 2, 2, 1),
        ([2, 3, 12, 13], [24, 3, 4, 4], 2, 3, 1),
    ];

    fn params(i: [usize; 4], w: [usize; 4], s: usize, pad: usize, g: usize) -> ConvParams {
        ConvParams::new(i, w, (s, s), (pad, pad, pad, pad), (1, 1), g).unwrap()
    }

    #[test]
    fn matches_a_naive_loop_at_every_level() {
        for (k, &(i, w, s, pad, g)) in CASES.iter().enumerate() {
            let p = params(i, w, s, pad, g);
            assert!(supports(&p));
            let x = data(i.iter().product(), k as u64);
            let wt = data(w.iter().product(), 100 + k as u64);
            let b = data(p.cout, 200 + k as u64);
            for (bias, relu) in [(None, false), (Some(&b[..]), false), (Some(&b[..]), true)] {
                let op = Operands {
                    x: &x,
                    weight: &wt,
                    bias,
                    relu,
                };
                let want = naive(&p, &op);
                with_each_level(|l| {
                    for threads in [1, 2] {
                        let mut got = vec![f64::NAN; want.len()];
                        crate::base::threads::run(threads, || forward(&p, op, &mut got, threads));
                        // small integers: exact at every level
                        assert_eq!(got, want, "case {k} {l:?} threads {threads}");
                    }
                    // float32 too
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
                    let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let op32 = Operands {
                        x: &x32,
                        weight: &w32,
                        bias: bias.map(|_| &b32[..]),
                        relu,
                    };
                    let mut got = vec![f32::NAN; want.len()];
                    forward(&p, op32, &mut got, 1);
                    let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    assert_eq!(got, want32, "case {k} {l:?} f32");
                });
            }
        }
    }

    #[test]
    fn thread_counts_give_identical_bits() {
        let p = params([3, 32, 14, 14], [64, 32, 3, 3], 1, 1, 1);
        let x: Vec<f32> = (0..3 * 32 * 14 * 14)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let w: Vec<f32> = (0..64 * 32 * 9)
            .map(|i| ((i * 104729) % 997) as f32 * 1e-3 - 0.5)
            .collect();
        let op = Operands::plain(&x, &w);
        with_each_level(|l| {
            let mut one = vec![0f32; 3 * 64 * 14 * 14];
            let mut two = one.clone();
            crate::base::threads::run(1, || forward(&p, op, &mut one, 1));
            crate::base::threads::run(2, || forward(&p, op, &mut two, 2));
            assert!(
                one.iter()
                    .zip(&two)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{l:?}"
            );
        });
    }
}
