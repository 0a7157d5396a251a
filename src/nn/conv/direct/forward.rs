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

/// Whether the direct forward engine takes this layer (`size` = bytes per element): every
/// layer it [`supports`] with a kernel larger than 1x1 (1x1 layers stay on GEMM).
///
/// Measured on a Zen 5 (avx512, float32, 1 thread, CPU time per call, loaded host), against
/// im2col + GEMM: first layer 3->16 k3 @32 156 vs 90 GFLOP/s, 3->16 k3 s2 @56 89 vs 46, 16->32
/// k3 @32 220 vs 149, 32->64 k5 @16 251 vs 152, 64->64 k3 s2 @16 157 vs 94, 256->256 k3 @8
/// 222 vs 157, 256 k3 s2 @8 155-176 vs 100, groups=4 64 k3 s2 @32 102 vs 40, groups=4 128 k3
/// @16 183 vs 125; 1x1 stride 2 64 @32 51 vs 62 (so 1x1 stays on GEMM); 3->16 k3 @8 44-58 vs
/// 58 (a tie). Winograd, ahead in the routing, keeps the large 3x3 stride-1 layers (128 @16:
/// 257 effective against 225-240 here).
pub fn applies(p: &ConvParams, size: usize) -> bool {
    let _ = size;
    supports(p) && p.kh * p.kw > 1
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
        // (16 registers: fewer than 12 accumulators measured at 40% of the avx2 peak)
        _ => 12,
    }
}

/// The tile shapes `(RH, RW)` the kernel is compiled for (each with `OCB` 1 and 2).
const TILES: [(usize, usize); 17] = [
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
    (2, 3),
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
    /// The pixel-vector kernel ([`px_kernel`]): `rw` vectors of pixels by `ocb` output
    /// channels (`rh` 1); else the channel-vector kernel ([`kernel`]).
    px: bool,
    /// Images per task.
    ni: usize,
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
        let eff = useful / padded * (acc as f64 / sat).min(1.0) * load_factor(acc, rh * rw + ocb);
        let score = eff + 1e-3 * acc as f64;
        if score > best_score {
            best_score = score;
            best = (rh, rw);
        }
    }
    best
}

/// The pixel-vector tiles `(RH, RV, OCN)`: `RH` rows of `RV` vectors of pixels by `OCN`
/// output channels of one block (`OCN` divides the lanes).
const PX_TILES: [(usize, usize, usize); 19] = [
    (1, 1, 4),
    (1, 1, 8),
    (1, 1, 16),
    (1, 2, 4),
    (1, 2, 8),
    (1, 3, 4),
    (1, 3, 8),
    (1, 4, 4),
    (1, 6, 4),
    (1, 7, 4),
    (2, 1, 8),
    (3, 1, 8),
    (2, 1, 4),
    (3, 1, 4),
    (4, 1, 4),
    (6, 1, 4),
    (2, 2, 4),
    (2, 3, 4),
    (3, 2, 4),
];

/// How far the loads of one step (vectors and broadcasts) let `acc` FMAs run at full rate
/// (about 1.5 loads per FMA slot), in (0, 1].
fn load_factor(acc: usize, loads: usize) -> f64 {
    (acc as f64 / (1.5 * loads as f64)).min(1.0)
}

/// The best pixel-vector tile and its estimated efficiency (0..1].
fn choose_px(p: &ConvParams, level: Level, lanes: usize) -> ((usize, usize, usize), f64) {
    let (budget, sat) = (acc_budget(level), acc_saturation(level) as f64);
    let cog = p.cout_g();
    let nb = cog.div_ceil(lanes);
    let mut best = ((1, 1, lanes.min(4)), 0.0);
    let mut best_score = -1.0f64;
    for &(rh, rv, ocn) in PX_TILES.iter() {
        let acc = rh * rv * ocn;
        // accumulators, the input vectors and the broadcast must fit the registers (a spilled
        // accumulator measured at 40% of the avx2 peak)
        let regs = if level == Level::Avx512 { 32 } else { 16 };
        let fits = acc <= budget && acc + rh * rv + 1 < regs;
        if ocn > lanes || !lanes.is_multiple_of(ocn) || !fits {
            continue;
        }
        let span = rv * lanes;
        let padded = p.oh.div_ceil(rh) * rh * p.ow.div_ceil(span) * span;
        let pix = (p.oh * p.ow) as f64 / padded as f64;
        let passes: usize = (0..nb)
            .map(|b| (cog - b * lanes).min(lanes).div_ceil(ocn))
            .sum();
        let ocu = cog as f64 / (passes * ocn) as f64;
        let eff = pix * ocu * (acc as f64 / sat).min(1.0) * load_factor(acc, rh * rv + ocn);
        let score = eff + 1e-3 * acc as f64;
        if score > best_score {
            best_score = score;
            best = ((rh, rv, ocn), eff);
        }
    }
    best
}

/// The estimated efficiency (0..1] of the channel-vector tile `(rh, rw)` with `ocb` vectors.
fn oc_efficiency(p: &ConvParams, level: Level, lanes: usize, (rh, rw): (usize, usize)) -> f64 {
    let nb = p.cout_g().div_ceil(lanes);
    let ocb = if nb >= 2 { 2 } else { 1 };
    let padded = (p.oh.div_ceil(rh) * rh * p.ow.div_ceil(rw) * rw) as f64;
    let pix = (p.oh * p.ow) as f64 / padded;
    let ocu = p.cout_g() as f64 / (nb * lanes) as f64;
    let acc = rh * rw * ocb;
    pix * ocu
        * (acc as f64 / acc_saturation(level) as f64).min(1.0)
        * load_factor(acc, rh * rw + ocb)
}

/// Estimated cycles per output element of the scalar transposing write of the channel-vector
/// kernel, and of the vector write of the pixel-vector kernel.
const OC_WRITE: f64 = 0.7;
const PX_WRITE: f64 = 0.1;

fn plan<T: SimdReal>(p: &ConvParams, threads: usize, force_px: Option<bool>) -> Plan {
    let level = crate::base::simd::level();
    let lanes = crate::base::simd::lanes::<T>(level);
    let nb = p.cout_g().div_ceil(lanes);
    let oc_ocb = if nb >= 2 { 2 } else { 1 };
    let oc_tile = choose_tile(p, level, oc_ocb);
    let ((prh, rv, ocn), px_eff) = choose_px(p, level, lanes);
    // cycles per output element: FMAs (2 per cycle) over the efficiency, plus the write
    let fmas = (p.k_len() as f64) / (2 * lanes) as f64;
    let oc_cost = fmas / oc_efficiency(p, level, lanes, oc_tile) + OC_WRITE;
    let px_cost = fmas / px_eff.max(1e-9) + PX_WRITE;
    let px = force_px.unwrap_or(px_cost < oc_cost);
    let (ocb, (rh, rw)) = if px {
        (ocn, (prh, rv))
    } else {
        (oc_ocb, oc_tile)
    };
    let span = if px { rw * lanes } else { rw };
    let s = p.sw;
    let owp = p.ow.div_ceil(span) * span;
    let wp = (owp - 1) * s + p.kw;
    let wq = wp.div_ceil(s);
    let pw = s * wq;
    let size = std::mem::size_of::<T>();
    // Rows that keep the buffer under BUF_BYTES, and enough tasks for the threads.
    let row_bytes = p.sh * p.cin_g() * pw * size;
    let fit = (BUF_BYTES / row_bytes.max(1)).max(1);
    // Small planes: several images per task, so that each weight block loaded serves about
    // 128 pixels (as long as each thread keeps two tasks and the buffers stay bounded).
    let img_bytes = ((p.oh - 1) * p.sh + p.kh) * p.cin_g() * pw * size;
    let mut ni = 128usize.div_ceil(p.oh * p.ow).min(p.n).max(1);
    while ni > 1 && (p.n.div_ceil(ni) * p.groups < 2 * threads || ni * img_bytes > 4 * BUF_BYTES) {
        ni -= 1;
    }
    let per_img = p.n * p.groups;
    let split = (4 * threads.max(1)).div_ceil(per_img).max(1);
    let want = if ni > 1 {
        p.oh
    } else {
        p.oh.div_ceil(split).min(fit).max(1)
    };
    let rows = want.div_ceil(rh) * rh;
    let row_blocks = p.oh.div_ceil(rows);
    let buf_rows = (rows - 1) * p.sh + p.kh;
    Plan {
        level,
        lanes,
        px,
        ni,
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
            (2, 7), (2, 6), (2, 4), (2, 3), (3, 8), (3, 4), (4, 7), (6, 4))
    }
}

/// Where a pixel-vector tile goes: channel rows `plane` apart, `ow - tx` columns left in the
/// row, `valid` channels of the tile inside the group, the bias of its first channel.
struct PxOut<T> {
    out: *mut T,
    plane: usize,
    /// Output row length, and rows of the tile inside the output.
    ow: usize,
    rows: usize,
    left: usize,
    valid: usize,
    bias: Option<*const T>,
    relu: bool,
}

/// One pixel-vector tile: `RV LANES` pixels along a row by `OCN` output channels (lanes
/// `0..OCN` of the weight blocks at `w`), summed over the steps `(kh, kw, ic)` in order, then
/// written to the output with the bias and the ReLU (whole vectors straight, the last partial
/// one through `tmp`).
///
/// # Safety
/// `x + offs[t] + v LANES + i` (`v < RV`, `i < LANES`) lies in the task buffer for every step
/// `t`; `w + t LANES + n` (`n < OCN`) in the weights; `o.out + n plane + c` for `n < valid`,
/// `c < min(left, RV LANES)` in the task's output block, `o.bias + n` in the bias; `tmp` has
/// `LANES` elements; the CPU has `V`'s level.
#[inline(always)]
unsafe fn px_kernel<V: Vector, const RH: usize, const RV: usize, const OCN: usize>(
    offs: &[usize],
    (x, row_step): (*const V::Elem, usize),
    w: *const V::Elem,
    o: &PxOut<V::Elem>,
    tmp: *mut V::Elem,
) {
    let l = V::LANES;
    // SAFETY: every pointer stays inside the buffers the caller describes (see above), and
    // the CPU has V's level.
    unsafe {
        let mut acc = [[[V::zero(); OCN]; RV]; RH];
        let mut wi = w;
        for &off in offs {
            let xi = x.add(off);
            let mut xv = [[V::zero(); RV]; RH];
            for (j, row) in xv.iter_mut().enumerate() {
                for (v, e) in row.iter_mut().enumerate() {
                    *e = V::load(xi.add(j * row_step + v * l));
                }
            }
            for n in 0..OCN {
                let b = V::splat(*wi.add(n));
                for (arow, xrow) in acc.iter_mut().zip(xv.iter()) {
                    for (a, xe) in arow.iter_mut().zip(xrow.iter()) {
                        a[n] = xe.fma(b, a[n]);
                    }
                }
            }
            wi = wi.add(l);
        }
        for n in 0..OCN.min(o.valid) {
            let b = match o.bias {
                Some(b) => V::splat(*b.add(n)),
                None => V::zero(),
            };
            for (j, arow) in acc.iter().enumerate().take(o.rows) {
                let row = o.out.add(n * o.plane + j * o.ow);
                for (v, a) in arow.iter().enumerate() {
                    let mut e = a[n];
                    if o.relu {
                        e = e.add(b).relu();
                    } else if o.bias.is_some() {
                        e = e.add(b);
                    }
                    let c0 = v * l;
                    if c0 + l <= o.left {
                        e.store(row.add(c0));
                    } else if c0 < o.left {
                        e.store(tmp);
                        std::ptr::copy_nonoverlapping(tmp, row.add(c0), o.left - c0);
                    }
                }
            }
        }
    }
}

/// [`px_kernel`] for the runtime tile `(rv, ocn)`, one of [`PX_TILES`].
///
/// # Safety
/// As [`px_kernel`].
#[inline(always)]
unsafe fn run_px<V: Vector>(
    (rh, rv, ocn): (usize, usize, usize),
    offs: &[usize],
    x: (*const V::Elem, usize),
    w: *const V::Elem,
    o: &PxOut<V::Elem>,
    tmp: *mut V::Elem,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match (rh, rv, ocn) {
            (1, 1, 4) => px_kernel::<V, 1, 1, 4>(offs, x, w, o, tmp),
            (1, 1, 8) => px_kernel::<V, 1, 1, 8>(offs, x, w, o, tmp),
            (1, 1, 16) => px_kernel::<V, 1, 1, 16>(offs, x, w, o, tmp),
            (1, 2, 4) => px_kernel::<V, 1, 2, 4>(offs, x, w, o, tmp),
            (1, 2, 8) => px_kernel::<V, 1, 2, 8>(offs, x, w, o, tmp),
            (1, 3, 4) => px_kernel::<V, 1, 3, 4>(offs, x, w, o, tmp),
            (1, 3, 8) => px_kernel::<V, 1, 3, 8>(offs, x, w, o, tmp),
            (1, 4, 4) => px_kernel::<V, 1, 4, 4>(offs, x, w, o, tmp),
            (1, 6, 4) => px_kernel::<V, 1, 6, 4>(offs, x, w, o, tmp),
            (1, 7, 4) => px_kernel::<V, 1, 7, 4>(offs, x, w, o, tmp),
            (2, 1, 8) => px_kernel::<V, 2, 1, 8>(offs, x, w, o, tmp),
            (3, 1, 8) => px_kernel::<V, 3, 1, 8>(offs, x, w, o, tmp),
            (2, 1, 4) => px_kernel::<V, 2, 1, 4>(offs, x, w, o, tmp),
            (3, 1, 4) => px_kernel::<V, 3, 1, 4>(offs, x, w, o, tmp),
            (4, 1, 4) => px_kernel::<V, 4, 1, 4>(offs, x, w, o, tmp),
            (6, 1, 4) => px_kernel::<V, 6, 1, 4>(offs, x, w, o, tmp),
            (2, 2, 4) => px_kernel::<V, 2, 2, 4>(offs, x, w, o, tmp),
            (2, 3, 4) => px_kernel::<V, 2, 3, 4>(offs, x, w, o, tmp),
            (3, 2, 4) => px_kernel::<V, 3, 2, 4>(offs, x, w, o, tmp),
            _ => unreachable!("pixel tile ({rh}, {rv}, {ocn}) is not compiled"),
        }
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

/// One task: images `img .. img + ni`, group `g`, output rows `rows * rb ..`.
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
        let img_len = pl.buf_rows * row_len;
        let nimg = pl.ni.min(p.n - img);
        // The input rows of this block, zero-padded, columns split by phase, per image.
        buf.clear();
        buf.resize(nimg * img_len, T::ZERO);
        let oy0 = rb * pl.rows;
        let plane = p.h * p.w;
        let cols = p.w.min(pl.pw.saturating_sub(p.pl));
        for k in 0..nimg {
            let xg = &sh.op.x[((img + k) * p.cin + g * c) * plane..][..c * plane];
            let bk = &mut buf[k * img_len..][..img_len];
            for rr in 0..pl.buf_rows {
                let iy = (oy0 * p.sh + rr) as isize - p.pt as isize;
                if iy < 0 || iy as usize >= p.h {
                    continue;
                }
                let iy = iy as usize;
                for ic in 0..c {
                    let src = &xg[ic * plane + iy * p.w..][..cols];
                    let dst = &mut bk[(rr * c + ic) * pl.pw..][..pl.pw];
                    split_row(src, dst, p.pl, s, pl.wq);
                }
            }
        }
        let geo = Geo {
            offs: sh.offs,
            row_step: p.sh * row_len,
            wstride: p.kh * p.kw * c * l,
        };
        let (cog, plane_out) = (p.cout_g(), p.oh * p.ow);
        let nr = pl.rows.min(p.oh - oy0);
        let outs: Vec<*mut T> = (img..img + nimg)
            .map(|i| {
                let start = (i * p.cout + g * cog) * plane_out + oy0 * p.ow;
                // SAFETY: task (images img.., g, rb) alone writes output rows oy0 .. oy0 + nr
                // of the channels of group g of its images (the tasks partition the output).
                unsafe { sh.out.block(start, cog, nr * p.ow, plane_out) }
            })
            .collect();
        tmp.resize(pl.rh * pl.rw * 2 * l, T::ZERO);
        let bias = sh.op.bias.map(|b| &b[g * cog..][..cog]);
        let wg = &sh.wt[g * pl.nb * geo.wstride..][..pl.nb * geo.wstride];
        if pl.px {
            tmp.resize(l, T::ZERO);
            for blk in 0..pl.nb {
                let in_blk = (cog - blk * l).min(l);
                for n0 in (0..in_blk).step_by(pl.ocb) {
                    let oc = blk * l + n0;
                    let wp = wg[blk * geo.wstride + n0..].as_ptr();
                    for (k, &out) in outs.iter().enumerate() {
                        for ty in (0..nr).step_by(pl.rh) {
                            for tx in (0..pl.owp).step_by(pl.rw * l) {
                                let xt = buf[k * img_len + ty * p.sh * row_len + tx..].as_ptr();
                                // SAFETY: out + oc plane_out + ty ow + tx: channel oc + n < cog
                                // (valid), row ty < nr, columns tx + c < ow (left): this task's block.
                                let dst = unsafe { out.add(oc * plane_out + ty * p.ow + tx) };
                                let o = PxOut {
                                    out: dst,
                                    plane: plane_out,
                                    ow: p.ow,
                                    rows: pl.rh.min(nr - ty),
                                    left: p.ow - tx,
                                    valid: in_blk - n0,
                                    bias: bias.map(|b| b[oc..].as_ptr()),
                                    relu: sh.op.relu,
                                };
                                // SAFETY: the buffer holds rows up to (rows - 1) sh + kh - 1 and
                                // pw >= (owp - 1) s + kw columns per channel: every pixel of the
                                // tile (column < owp) reads inside it; the weights of block blk
                                // hold steps x lanes elements, n0 + ocb <= lanes; the output as
                                // above; bias has cog - oc >= valid elements; tmp has l elements.
                                unsafe {
                                    let xs = (xt, geo.row_step);
                                    let tile = (pl.rh, pl.rw, pl.ocb);
                                    run_px::<V>(tile, sh.offs, xs, wp, &o, tmp.as_mut_ptr())
                                };
                            }
                        }
                    }
                }
            }
            return;
        }
        let mut ob = 0;
        while ob < pl.nb {
            let ocb = pl.ocb.min(pl.nb - ob);
            let wp = wg[ob * geo.wstride..].as_ptr();
            for (k, &out) in outs.iter().enumerate() {
                for ty in (0..nr).step_by(pl.rh) {
                    for tx in (0..pl.owp).step_by(pl.rw) {
                        let xt = buf[k * img_len + ty * p.sh * row_len + tx..].as_ptr();
                        // SAFETY: the buffer holds buf_rows >= (rows - 1) sh + kh rows of c
                        // channels of pw >= (owp - 1) s + kw columns: every pixel of the tile (up to
                        // row rows - 1, column owp - 1) reads inside it; the weights hold nb blocks,
                        // ob + ocb <= nb; tmp has rh rw 2 lanes elements; dispatch gave V's level.
                        unsafe {
                            run_tile::<V>((pl.rh, pl.rw, ocb), &geo, xt, wp, tmp.as_mut_ptr())
                        };
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
    forward_with(p, op, out, threads, None)
}

/// [`forward`], with the pixel-vector kernel forced on or off (`force_px`) or chosen.
fn forward_with<T: SimdReal>(
    p: &ConvParams,
    op: Operands<'_, T>,
    out: &mut [T],
    threads: usize,
    force_px: Option<bool>,
) {
    debug_assert!(supports(p));
    let pl = plan::<T>(p, threads, force_px);
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
    let n_tasks = p.n.div_ceil(pl.ni) * p.groups * pl.row_blocks;
    let per_img = p.groups * pl.row_blocks;
    for_each_task(
        threads > 1,
        n_tasks,
        || (Vec::new(), Vec::new()),
        |scratch, t| {
            let task = Task {
                sh: &shared,
                scratch,
                img: t / per_img * pl.ni,
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

    /// input, weight, stride, pad, groups
    type Case = ([usize; 4], [usize; 4], usize, usize, usize);

    const CASES: [Case; 14] = [
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
        ([5, 16, 4, 5], [32, 16, 3, 3], 1, 1, 1),
        ([7, 8, 3, 3], [16, 4, 3, 3], 2, 1, 2),
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
                    for (threads, px) in [
                        (1, Some(false)),
                        (2, Some(false)),
                        (1, Some(true)),
                        (2, Some(true)),
                        (2, None),
                    ] {
                        let mut got = vec![f64::NAN; want.len()];
                        crate::base::threads::run(threads, || {
                            forward_with(&p, op, &mut got, threads, px)
                        });
                        // small integers: exact at every level
                        assert_eq!(got, want, "case {k} {l:?} threads {threads} px {px:?}");
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
                    let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    for px in [false, true] {
                        let mut got = vec![f32::NAN; want.len()];
                        forward_with(&p, op32, &mut got, 1, Some(px));
                        assert_eq!(got, want32, "case {k} {l:?} f32 px {px}");
                    }
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
            for px in [false, true] {
                crate::base::threads::run(2, || forward_with(&p, op, &mut two, 2, Some(px)));
                let same = one
                    .iter()
                    .zip(&two)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{l:?} px {px}");
            }
        });
    }
}
