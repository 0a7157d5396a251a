//! The direct input and weight gradients of dense and grouped convolutions (stride 1 or 2,
//! dilation 1, zero padding): register-blocked microkernels over channel-blocked copies made
//! inside each call, with no im2col and no col2im.
//!
//! - Input gradient ([`backward_input`]):
//!   `grad_input[ic][ih][iw] = sum grad_output[oc][oh][ow] w[oc][ic][kh][kw]` over
//!   `ih = oh s + kh - pt`, `iw = ow s + kw - pl`. Split by output phase (`ih mod s`,
//!   `iw mod s`), each phase is a stride-1 correlation of a zero-padded copy of `grad_output`
//!   with the taps `kh = (ih + pt) mod s (mod s)`: no scatter. The tile is `RW` pixels of one
//!   phase of a row times `ICB` vectors of input channels; the weights are rearranged once per
//!   call as `[group][ic vector][tap][oc][lanes]`, `grad_output` per task as `[row][oc][col]`
//!   so that the tile's broadcasts are consecutive elements. A row of `grad_input` is gathered
//!   as `[pixel][channel]` and written to the NCHW planes by in-register transposes
//!   ([`crate::base::simd::Vector::transpose`]). Each `grad_input` element is written by one
//!   task.
//! - Weight gradient ([`backward_weight`]):
//!   `grad_weight[oc][ic][tap] = sum grad_output[oc][p] x[ic][p + tap]`
//!   over the batch and the output pixels `p`. Vectors along `oc` (`grad_output` copied
//!   pixel-major with the channels innermost, padded to the lanes), `x` broadcast from a
//!   zero-padded channels-last copy: a tile of `RIC` input channels times `OCB` vectors of
//!   output channels for one tap, reduced over a unit of output rows. The units (fixed by the
//!   shape, never by the thread count) are split into at most [`WEIGHT_PARTS`] contiguous
//!   parts, each summed in order, and the parts are added in order: the same bits for every
//!   thread count.

use crate::base::par::{for_each_task, DisjointSlice};
use crate::base::simd::{dispatch, SimdReal, Vector, WithVector};
use crate::nn::conv::params::ConvParams;

/// Dense or grouped (not depthwise), stride 1 or 2, dilation 1: the shapes this engine
/// computes.
pub fn supports(p: &ConvParams) -> bool {
    (p.groups == 1 || p.groups < p.cin)
        && matches!(p.sh, 1 | 2)
        && matches!(p.sw, 1 | 2)
        && p.dh == 1
        && p.dw == 1
        && p.n > 0
        && p.oh > 0
        && p.ow > 0
        && p.cout > 0
}

/// Whether the direct engine computes this input gradient (`elem`: bytes per element).
///
/// Measured on a Zen 5 (2 threads, float32, avx512, batch 32 or 8 at width 56, the 120 dense
/// and grouped cells of the benchmark grid at kernel 3 and 5, against im2col + col2im): 1.1-3.2x
/// from 16 input channels per group up, except 5x5 layers of 128 and 256 channels on planes
/// of 16x16 or less (0.64-0.94x); 0.38-0.94x with 3 input channels. The cost model weighs it
/// against the Winograd adjoint where that applies.
pub fn input_applies(p: &ConvParams, elem: usize) -> bool {
    let _ = elem;
    let taps = p.kh * p.kw;
    let wide_small_5x5 = taps > 9 && p.cin_g() >= 128 && p.h * p.w <= 256;
    supports(p) && (2..=25).contains(&taps) && p.cin_g() >= 16 && !wide_small_5x5
}

/// Whether the direct engine computes this weight gradient (`elem`: bytes per element).
///
/// Measured on a Zen 5 (1 thread, float32, avx512, batch 32; against the shifted-GEMM and
/// im2col-GEMM routes): 1.0-2.8x from 16 input channels up (3x3 and 5x5, stride 1 and 2,
/// grouped), 0.31x with 3 input channels; 1x1 stride-1 layers keep their GEMM (1.0x).
pub fn weight_applies(p: &ConvParams, elem: usize) -> bool {
    let _ = elem;
    supports(p) && !p.is_pointwise() && p.cin_g() >= 8
}

/// Vector registers of a level whose vectors hold `lanes` elements of `elem` bytes: 32 at
/// avx512 (64-byte vectors), 16 otherwise.
fn registers(lanes: usize, elem: usize) -> usize {
    if lanes * elem >= 64 {
        32
    } else {
        16
    }
}

// ---------------------------------------------------------------------------------------
// Input gradient
// ---------------------------------------------------------------------------------------

/// Widest pixel tile of the input gradient (columns of margin in the padded `dy`).
const MAX_RW: usize = 24;

/// Input-channel vectors per tile of the input gradient.
fn dx_icb_max(regs: usize) -> usize {
    if regs >= 32 {
        4
    } else {
        2
    }
}

/// Pixels per tile of the input gradient for `icb` channel vectors (accumulators, the `icb`
/// weight vectors and a broadcast fit the registers).
fn dx_rw_full(regs: usize, icb: usize) -> usize {
    match (regs >= 32, icb) {
        (true, 1) => 24,
        (true, 2) => 12,
        (true, 3) => 8,
        (true, _) => 6,
        (false, 1) => 12,
        (false, _) => 6,
    }
}

/// The tile width for `rem` remaining pixels of a phase row: the full width, or 8 or 4 for a
/// short rest (a row of 8 at full width 6 goes as 4 + 4, not 6 + 4 with 2 wasted).
fn dx_rw(regs: usize, icb: usize, rem: usize) -> usize {
    let full = dx_rw_full(regs, icb);
    if rem <= 4 {
        4
    } else if rem <= 8 || rem < full {
        if full >= 8 {
            8
        } else {
            4
        }
    } else {
        full
    }
}

/// The geometry of one input-gradient call.
#[derive(Clone, Copy)]
struct DxGeom {
    /// Rows and columns of the padded `dy` copy.
    hp: usize,
    wp: usize,
    /// Zero rows above and columns left of `dy` in the copy.
    pyt: usize,
    pxl: usize,
    icb_max: usize,
    /// Input-channel vectors per group.
    nvec: usize,
}

/// `grad_input` (overwritten) of a dense or grouped convolution ([`supports`]).
pub(crate) fn backward_input<T: SimdReal>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let lanes = crate::base::simd::lanes::<T>(crate::base::simd::level());
    let regs = registers(lanes, std::mem::size_of::<T>());
    let (cin_g, cout_g, taps) = (p.cin_g(), p.cout_g(), p.kh * p.kw);
    let nvec = cin_g.div_ceil(lanes);
    // [g][ic vector][tap][oc][lane], zero past cin_g
    let mut wr = vec![T::ZERO; p.groups * nvec * taps * cout_g * lanes];
    for g in 0..p.groups {
        for oc in 0..cout_g {
            for ic in 0..cin_g {
                let src = &weight[((g * cout_g + oc) * cin_g + ic) * taps..][..taps];
                let (v, l) = (ic / lanes, ic % lanes);
                for (t, &s) in src.iter().enumerate() {
                    wr[(((g * nvec + v) * taps + t) * cout_g + oc) * lanes + l] = s;
                }
            }
        }
    }
    let pyt = (p.kh - 1).saturating_sub(p.pt).div_ceil(p.sh);
    let pxl = (p.kw - 1).saturating_sub(p.pl).div_ceil(p.sw);
    let oy_max = (p.h - 1 + p.pt) / p.sh;
    let ox_max = (p.w - 1 + p.pl) / p.sw;
    let geom = DxGeom {
        hp: pyt + p.oh.max(oy_max + 1),
        wp: pxl + p.ow.max(ox_max + 1) + MAX_RW,
        pyt,
        pxl,
        icb_max: dx_icb_max(regs),
        nvec,
    };
    let tiles = nvec.div_ceil(geom.icb_max);
    let dxs = DisjointSlice::new(grad_input);
    let n_tasks = p.n * p.groups * tiles;
    let run = |buf: &mut (Vec<T>, Vec<(usize, usize)>, Vec<T>), t: usize| {
        let (img, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
        let (g, tile) = (rest / tiles, rest % tiles);
        let v0 = tile * geom.icb_max;
        let nv = geom.icb_max.min(nvec - v0);
        let c0 = v0 * lanes;
        let cc = (nv * lanes).min(cin_g - c0);
        let plane = p.h * p.w;
        // SAFETY: task (img, g, tile) alone writes the planes of input channels
        // g cin_g + c0 .. + cc of image img.
        let out = unsafe { dxs.range((img * p.cin + g * cin_g + c0) * plane, cc * plane) };
        dispatch(DxTask {
            p,
            geom,
            dy: grad_output,
            wr: &wr,
            img,
            g,
            v0,
            nv,
            out,
            dyp: &mut buf.0,
            taps: &mut buf.1,
            row: &mut buf.2,
        });
    };
    for_each_task(
        threads > 1,
        n_tasks,
        || (Vec::new(), Vec::new(), Vec::new()),
        run,
    );
}

/// One task of the input gradient: `nv` channel vectors from `v0` of group `g`, image `img`.
struct DxTask<'a, T> {
    p: &'a ConvParams,
    geom: DxGeom,
    dy: &'a [T],
    wr: &'a [T],
    img: usize,
    g: usize,
    v0: usize,
    nv: usize,
    /// The task's `dx` planes.
    out: &'a mut [T],
    dyp: &'a mut Vec<T>,
    taps: &'a mut Vec<(usize, usize)>,
    /// The row buffer of [`Store`].
    row: &'a mut Vec<T>,
}

impl<T: SimdReal> WithVector<T> for DxTask<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let DxTask {
            p,
            geom,
            dy,
            wr,
            img,
            g,
            v0,
            nv,
            out,
            dyp,
            taps,
            row,
        } = self;
        let (cout_g, cin_g, lanes) = (p.cout_g(), p.cin_g(), V::LANES);
        let (hp, wp) = (geom.hp, geom.wp);
        // dy of (img, g) as [row][oc][col], zero-padded
        dyp.clear();
        dyp.resize(hp * cout_g * wp, T::ZERO);
        let plane_out = p.oh * p.ow;
        for oc in 0..cout_g {
            let src = &dy[(img * p.cout + g * cout_g + oc) * plane_out..][..plane_out];
            for (oy, row) in src.chunks_exact(p.ow).enumerate() {
                let d = ((oy + geom.pyt) * cout_g + oc) * wp + geom.pxl;
                dyp[d..d + p.ow].copy_from_slice(row);
            }
        }
        let ntaps = p.kh * p.kw;
        let wbase = (g * geom.nvec + v0) * ntaps * cout_g * lanes;
        let vstride = ntaps * cout_g * lanes;
        let regs = registers(lanes, std::mem::size_of::<T>());
        let (sh, sw) = (p.sh, p.sw);
        let c0 = v0 * lanes;
        let cc = (nv * lanes).min(cin_g - c0);
        let plane = p.h * p.w;
        let cs = nv * lanes;
        let row_len = p.w.div_ceil(lanes) * lanes * cs;
        if row.len() < row_len {
            row.resize(row_len, T::ZERO);
        }
        let mut st = Store {
            out,
            plane,
            w: p.w,
            cc,
            row: &mut row[..row_len],
            cs,
        };
        for ih in 0..p.h {
            let rphase = (ih + p.pt) % sh;
            for c in 0..sw {
                let iw_first = (c + sw - p.pl % sw) % sw;
                if iw_first >= p.w {
                    continue;
                }
                let count = (p.w - iw_first).div_ceil(sw);
                taps.clear();
                for kh in (rphase..p.kh).step_by(sh) {
                    let y = (ih + p.pt + geom.pyt * sh - kh) / sh;
                    for kw in (c..p.kw).step_by(sw) {
                        let x0 = (iw_first + p.pl + geom.pxl * sw - kw) / sw;
                        let woff = wbase + (kh * p.kw + kw) * cout_g * lanes;
                        taps.push((y * cout_g * wp + x0, woff));
                    }
                }
                let mut j0 = 0;
                while j0 < count {
                    let rw = dx_rw(regs, nv, count - j0);
                    let valid = rw.min(count - j0);
                    let args = DxArgs {
                        dyp,
                        wr,
                        taps,
                        shift: j0,
                        vstride,
                        cout_g,
                        wp,
                    };
                    let pos = (iw_first + j0 * sw, sw, valid);
                    macro_rules! go {
                        ($($rw:literal, $icb:literal);*) => {
                            match (rw, nv) {
                                $(($rw, $icb) => dx_tile::<V, $rw, $icb>(&args, &mut st, pos),)*
                                _ => unreachable!("dx tile ({rw}, {nv}) has no kernel"),
                            }
                        };
                    }
                    go!(24, 1; 12, 1; 8, 1; 4, 1; 12, 2; 8, 2; 6, 2; 4, 2;
                        8, 3; 4, 3; 6, 4; 4, 4);
                    j0 += rw;
                }
            }
            st.flush::<V>(ih);
        }
    }
}

/// The operands of one input-gradient tile.
struct DxArgs<'a, T> {
    /// `dy` as `[row][oc][col]`.
    dyp: &'a [T],
    /// The rearranged weights.
    wr: &'a [T],
    /// `(dy offset of the tile's first pixel at shift 0, weight offset)` per tap.
    taps: &'a [(usize, usize)],
    /// Pixels from the first of the phase.
    shift: usize,
    /// Elements between the weights of consecutive channel vectors.
    vstride: usize,
    cout_g: usize,
    wp: usize,
}

/// Where a tile's pixels go: the current row of the task's `cc` planes of `dx`, first as
/// `row[pixel][cs]` (`cs` = the task's channel vectors times the lanes), then transposed to
/// the planes by [`Store::flush`] (whole rows per channel: the planes may be 4 KiB apart,
/// where scattering pixel by pixel made the stores conflict in the L1 cache).
struct Store<'a, T> {
    out: &'a mut [T],
    plane: usize,
    w: usize,
    cc: usize,
    row: &'a mut [T],
    cs: usize,
}

impl<T: SimdReal> Store<'_, T> {
    /// Writes the row buffer to row `ih` of the `cc` planes ([`super::to_planes`] per block
    /// of `LANES` channels).
    #[inline(always)]
    fn flush<V: Vector<Elem = T>>(&mut self, ih: usize) {
        let l = V::LANES;
        let (w, cs, plane) = (self.w, self.cs, self.plane);
        assert!(self.cc <= cs && self.row.len() >= w.div_ceil(l) * l * cs);
        assert!(self.cc == 0 || (self.cc - 1) * plane + ih * w + w <= self.out.len());
        let op = self.out.as_mut_ptr();
        for c0 in (0..self.cc).step_by(l) {
            // SAFETY: the level's features are on (reached from `dispatch`); the writes are
            // `out[(c0 + k) plane + ih w ..][..w]` for `c0 + k < cc`: inside `out` (asserted).
            unsafe {
                let dst = op.add(c0 * plane + ih * w);
                super::to_planes::<V>(&self.row[c0..], cs, w, l.min(self.cc - c0), dst, plane);
            }
        }
    }
}

/// `RW` pixels (`pos = (first column, column step, pixels to store)` of the current row) times `ICB`
/// channel vectors of the input gradient, summed over the taps and output channels.
#[inline(always)]
fn dx_tile<V: Vector, const RW: usize, const ICB: usize>(
    a: &DxArgs<'_, V::Elem>,
    st: &mut Store<'_, V::Elem>,
    (iw0, step, valid): (usize, usize, usize),
) {
    let lanes = V::LANES;
    let n = a.cout_g;
    // Bounds of every access below, checked once per tile (the offsets come from the
    // geometry, so these hold; a failure would panic rather than read out of bounds).
    for &(d, w) in a.taps {
        assert!(d + a.shift + RW + (n - 1) * a.wp <= a.dyp.len());
        assert!(w + (ICB - 1) * a.vstride + n * lanes <= a.wr.len());
    }
    // SAFETY: the level's features are enabled (reached from `dispatch`); every load is
    // inside `dyp` or `wr` (asserted above: pixel `j < RW` of oc `o < n` at
    // `d + shift + o wp + j`, weight vector `b < ICB` of oc `o` at
    // `w + b vstride + o lanes .. + lanes`).
    let acc = unsafe {
        let mut acc = [[V::zero(); ICB]; RW];
        for &(d, w) in a.taps {
            let mut dp = a.dyp.as_ptr().add(d + a.shift);
            let mut wq = a.wr.as_ptr().add(w);
            for _ in 0..n {
                let mut wv = [V::zero(); ICB];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = V::load(wq.add(b * a.vstride));
                }
                for (j, row) in acc.iter_mut().enumerate() {
                    let x = V::splat(*dp.add(j));
                    for (acc_b, &wb) in row.iter_mut().zip(wv.iter()) {
                        *acc_b = wb.fma(x, *acc_b);
                    }
                }
                dp = dp.add(a.wp);
                wq = wq.add(lanes);
            }
        }
        acc
    };
    if valid == 0 {
        return;
    }
    let last = (iw0 + (valid - 1) * step) * st.cs + ICB * lanes;
    assert!(last <= st.row.len() && ICB * lanes <= st.cs);
    let rp = st.row.as_mut_ptr();
    for (j, row) in acc.iter().enumerate().take(valid) {
        let at = (iw0 + j * step) * st.cs;
        for (b, v) in row.iter().enumerate() {
            // SAFETY: the level's features are enabled; pixel `iw0 + j step` (`j < valid`),
            // channels `b lanes .. (b + 1) lanes` (`b < ICB`) of the row buffer end at most at
            // `last`, inside it (asserted above).
            unsafe { v.store(rp.add(at + b * lanes)) };
        }
    }
}

/// `dst[j ds + i] = src[i ss + j]` for `i < a`, `j < b`: a transpose in 16 x 16 tiles.
fn transpose<T: Copy>(src: &[T], ss: usize, dst: &mut [T], ds: usize, (a, b): (usize, usize)) {
    const TILE: usize = 16;
    for i0 in (0..a).step_by(TILE) {
        for j0 in (0..b).step_by(TILE) {
            for j in j0..(j0 + TILE).min(b) {
                for i in i0..(i0 + TILE).min(a) {
                    dst[j * ds + i] = src[i * ss + j];
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Weight gradient
// ---------------------------------------------------------------------------------------

/// The partial sums of the weight gradient: at most this many, over fixed units.
pub(crate) const WEIGHT_PARTS: usize = 8;

/// Bytes of one unit's copies of `x` and `dy` (the rows of a unit are chosen to fit).
const UNIT_BYTES: usize = 512 << 10;

/// Output-channel vectors per weight-gradient tile, largest first.
fn dw_ocb_choices(regs: usize) -> &'static [usize] {
    if regs >= 32 {
        &[4, 2, 1]
    } else {
        &[2, 1]
    }
}

/// Input channels per weight-gradient tile of `ocb` output-channel vectors.
fn dw_ric_full(regs: usize, ocb: usize) -> usize {
    match (regs >= 32, ocb) {
        (true, 4) => 6,
        (true, 2) => 12,
        (true, _) => 16,
        (false, 2) => 6,
        (false, _) => 12,
    }
}

/// The geometry of one weight-gradient call.
#[derive(Clone, Copy)]
struct DwGeom {
    /// Output channels per group, padded to the lanes.
    ocp: usize,
    /// Output rows per unit, units per image (1 when a unit holds whole images), images
    /// per unit (1 when an image is split).
    rows: usize,
    per_img: usize,
    imgs: usize,
    /// Columns of the padded `x` copy.
    wpx: usize,
}

/// `grad_weight` (overwritten) of a dense or grouped convolution ([`supports`]).
pub(crate) fn backward_weight<T: SimdReal>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    threads: usize,
) {
    let lanes = crate::base::simd::lanes::<T>(crate::base::simd::level());
    let elem = std::mem::size_of::<T>();
    let (cin_g, cout_g, taps) = (p.cin_g(), p.cout_g(), p.kh * p.kw);
    let ocp = cout_g.div_ceil(lanes) * lanes;
    let wpx = (p.ow - 1) * p.sw + p.kw;
    let row_bytes = (p.ow * p.groups * ocp + p.sh * wpx * p.cin) * elem;
    let fit = (UNIT_BYTES / row_bytes.max(1)).clamp(1, p.oh);
    // enough units for the parts when the batch is small (never depends on the threads)
    let per_img = p.oh.div_ceil(fit).max(WEIGHT_PARTS.div_ceil(p.n)).min(p.oh);
    let rows = p.oh.div_ceil(per_img);
    let per_img = p.oh.div_ceil(rows);
    // small images: several per unit, so that each tile sums over more pixels between the
    // loads and stores of its accumulators (still enough units for the parts)
    let imgs = match per_img {
        1 => (UNIT_BYTES / (row_bytes * p.oh).max(1)).clamp(1, p.n.div_ceil(WEIGHT_PARTS)),
        _ => 1,
    };
    let geom = DwGeom {
        ocp,
        rows,
        per_img,
        imgs,
        wpx,
    };
    let units = p.n.div_ceil(imgs) * per_img;
    let per_part = units.div_ceil(WEIGHT_PARTS.min(units));
    let parts = units.div_ceil(per_part); // (no empty part)
    let run_part = |part: usize| -> Vec<T> {
        let u0 = part * per_part;
        dispatch(DwPart {
            p,
            geom,
            x,
            dy: grad_output,
            units: u0..units.min(u0 + per_part),
        })
    };
    let acc_len = p.groups * taps * cin_g * ocp;
    let mut total = vec![T::ZERO; acc_len];
    let mut add = |part: Vec<T>| {
        for (t, s) in total.iter_mut().zip(part) {
            *t += s;
        }
    };
    if threads > 1 {
        use rayon::prelude::*;
        let all: Vec<Vec<T>> = (0..parts).into_par_iter().map(run_part).collect();
        all.into_iter().for_each(&mut add);
    } else {
        (0..parts).map(run_part).for_each(&mut add);
    }
    // [g][tap][ic][ocp] -> [g cout_g + oc][ic][tap]
    for g in 0..p.groups {
        for t in 0..taps {
            for ic in 0..cin_g {
                let src = &total[((g * taps + t) * cin_g + ic) * ocp..][..cout_g];
                for (oc, &v) in src.iter().enumerate() {
                    grad_weight[((g * cout_g + oc) * cin_g + ic) * taps + t] = v;
                }
            }
        }
    }
}

/// One part of the weight gradient: the units (image, block of output rows) in `units`,
/// summed in order into `[group][tap][ic][ocp]`.
struct DwPart<'a, T> {
    p: &'a ConvParams,
    geom: DwGeom,
    x: &'a [T],
    dy: &'a [T],
    units: std::ops::Range<usize>,
}

impl<T: SimdReal> WithVector<T> for DwPart<'_, T> {
    type Out = Vec<T>;
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) -> Vec<T> {
        let DwPart {
            p,
            geom,
            x,
            dy,
            units,
        } = self;
        let (cin_g, cout_g, taps) = (p.cin_g(), p.cout_g(), p.kh * p.kw);
        let (ocp, wpx, lanes) = (geom.ocp, geom.wpx, V::LANES);
        let regs = registers(lanes, std::mem::size_of::<T>());
        let mut acc = vec![T::ZERO; p.groups * taps * cin_g * ocp];
        let (mut xp, mut dv) = (Vec::new(), Vec::new());
        let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
        for u in units {
            let (img0, blk) = (u / geom.per_img * geom.imgs, u % geom.per_img);
            let m = geom.imgs.min(p.n - img0);
            let r0 = blk * geom.rows;
            let nr = geom.rows.min(p.oh - r0);
            // x rows r0 sh - pt .. of each image as [row][col][cin], zero-padded
            let hr = (nr - 1) * p.sh + p.kh;
            let ximg = hr * wpx * p.cin;
            xp.clear();
            xp.resize(m * ximg, T::ZERO);
            let cols = p.w.min(wpx.saturating_sub(p.pl));
            // dy rows r0 .. r0 + nr of each image as [pixel][g][ocp]
            let gp = p.groups * ocp;
            let dimg = nr * p.ow * gp;
            dv.clear();
            dv.resize(m * dimg, T::ZERO);
            for ii in 0..m {
                let img = img0 + ii;
                let xi = &x[img * p.cin * plane_in..][..p.cin * plane_in];
                for yy in 0..hr {
                    let iy = (r0 * p.sh + yy) as isize - p.pt as isize;
                    if iy < 0 || iy >= p.h as isize || cols == 0 {
                        continue;
                    }
                    let src = &xi[iy as usize * p.w..];
                    let dst = &mut xp[ii * ximg + (yy * wpx + p.pl) * p.cin..];
                    transpose(src, plane_in, dst, p.cin, (p.cin, cols));
                }
                for g in 0..p.groups {
                    let src = &dy[(img * p.cout + g * cout_g) * plane_out + r0 * p.ow..];
                    let dst = &mut dv[ii * dimg + g * ocp..];
                    transpose(src, plane_out, dst, gp, (cout_g, nr * p.ow));
                }
            }
            let args = DwArgs {
                xp: &xp,
                dv: &dv,
                xpix: p.sw * p.cin,
                xrow: p.sh * wpx * p.cin,
                dpix: gp,
                rows: nr,
                ow: p.ow,
                imgs: m,
                ximg,
                dimg,
            };
            for g in 0..p.groups {
                for kh in 0..p.kh {
                    for kw in 0..p.kw {
                        let t = kh * p.kw + kw;
                        let mut ov = 0;
                        let nvec = ocp / lanes;
                        while ov < nvec {
                            let ocb = dw_ocb_choices(regs)
                                .iter()
                                .copied()
                                .find(|&b| b <= nvec - ov)
                                .unwrap_or(1);
                            let full = dw_ric_full(regs, ocb);
                            let mut ic = 0;
                            while ic < cin_g {
                                let rem = cin_g - ic;
                                let ric =
                                    [full, 4, 2, 1].into_iter().find(|&r| r <= rem).unwrap_or(1);
                                let xoff = (kh * wpx + kw) * p.cin + g * cin_g + ic;
                                let doff = g * ocp + ov * lanes;
                                let aoff = ((g * taps + t) * cin_g + ic) * ocp + ov * lanes;
                                let at = (xoff, doff, aoff, ocp);
                                macro_rules! go {
                                    ($($ric:literal, $ocb:literal);*) => {
                                        match (ric, ocb) {
                                            $(($ric, $ocb) =>
                                                dw_tile::<V, $ric, $ocb>(&args, &mut acc, at),)*
                                            _ => unreachable!("dw tile ({ric}, {ocb})"),
                                        }
                                    };
                                }
                                go!(6, 4; 4, 4; 2, 4; 1, 4; 12, 2; 6, 2; 4, 2; 2, 2; 1, 2;
                                    16, 1; 12, 1; 4, 1; 2, 1; 1, 1);
                                ic += ric;
                            }
                            ov += ocb;
                        }
                    }
                }
            }
        }
        acc
    }
}

/// The copies of one weight-gradient unit.
struct DwArgs<'a, T> {
    /// `x` as `[row][col][cin]`, zero-padded.
    xp: &'a [T],
    /// `dy` as `[pixel][g][ocp]`.
    dv: &'a [T],
    /// Elements between the `x` of consecutive output pixels of a row, and of rows.
    xpix: usize,
    xrow: usize,
    /// Elements between the `dy` of consecutive output pixels.
    dpix: usize,
    rows: usize,
    ow: usize,
    /// Images, and elements between their copies in `xp` and in `dv`.
    imgs: usize,
    ximg: usize,
    dimg: usize,
}

/// `acc[RIC][OCB vectors] += sum over the unit's pixels of x[ic] dy[oc]` for one tap: `at =
/// (x offset of the tap and first channel, dy offset of the first vector, accumulator
/// offset, accumulator elements between input channels)`.
#[inline(always)]
fn dw_tile<V: Vector, const RIC: usize, const OCB: usize>(
    a: &DwArgs<'_, V::Elem>,
    acc: &mut [V::Elem],
    (xoff, doff, aoff, astride): (usize, usize, usize, usize),
) {
    let lanes = V::LANES;
    let last_pix = (a.rows - 1) * a.ow + a.ow - 1;
    let (xlast, dlast) = ((a.imgs - 1) * a.ximg, (a.imgs - 1) * a.dimg);
    assert!(xoff + xlast + (a.rows - 1) * a.xrow + (a.ow - 1) * a.xpix + RIC <= a.xp.len());
    assert!(doff + dlast + last_pix * a.dpix + OCB * lanes <= a.dv.len());
    assert!(aoff + (RIC - 1) * astride + OCB * lanes <= acc.len());
    // SAFETY: the level's features are enabled (reached from `dispatch`); every access is
    // inside its slice (asserted above for the last pixel, row, channel and vector).
    unsafe {
        let ap = acc.as_mut_ptr().add(aoff);
        let mut s = [[V::zero(); OCB]; RIC];
        for (r, row) in s.iter_mut().enumerate() {
            for (b, v) in row.iter_mut().enumerate() {
                *v = V::load(ap.add(r * astride + b * lanes));
            }
        }
        for (i, y) in (0..a.imgs).flat_map(|i| (0..a.rows).map(move |y| (i, y))) {
            let mut xq = a.xp.as_ptr().add(xoff + i * a.ximg + y * a.xrow);
            let mut dq = a.dv.as_ptr().add(doff + i * a.dimg + y * a.ow * a.dpix);
            for _ in 0..a.ow {
                let mut d = [V::zero(); OCB];
                for (b, v) in d.iter_mut().enumerate() {
                    *v = V::load(dq.add(b * lanes));
                }
                for (r, row) in s.iter_mut().enumerate() {
                    let xv = V::splat(*xq.add(r));
                    for (sv, &dv) in row.iter_mut().zip(d.iter()) {
                        *sv = dv.fma(xv, *sv);
                    }
                }
                xq = xq.add(a.xpix);
                dq = dq.add(a.dpix);
            }
        }
        for (r, row) in s.iter().enumerate() {
            for (b, v) in row.iter().enumerate() {
                v.store(ap.add(r * astride + b * lanes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::simd::with_each_level;

    fn naive_dx(p: &ConvParams, grad_output: &[f64], w: &[f64]) -> Vec<f64> {
        let (cin_g, cout_g) = (p.cin_g(), p.cout_g());
        let mut grad_input = vec![0.0; p.n * p.cin * p.h * p.w];
        for n in 0..p.n {
            for o in 0..p.cout {
                let g = o / cout_g;
                for c in 0..cin_g {
                    for i in 0..p.kh {
                        for j in 0..p.kw {
                            let wv = w[((o * cin_g + c) * p.kh + i) * p.kw + j];
                            for y in 0..p.oh {
                                for xx in 0..p.ow {
                                    let iy = (y * p.sh + i) as isize - p.pt as isize;
                                    let ix = (xx * p.sw + j) as isize - p.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let ci = g * cin_g + c;
                                    grad_input[((n * p.cin + ci) * p.h + iy as usize) * p.w
                                        + ix as usize] +=
                                        wv * grad_output[((n * p.cout + o) * p.oh + y) * p.ow + xx];
                                }
                            }
                        }
                    }
                }
            }
        }
        grad_input
    }

    fn naive_dw(p: &ConvParams, x: &[f64], grad_output: &[f64]) -> Vec<f64> {
        let (cin_g, cout_g) = (p.cin_g(), p.cout_g());
        let mut grad_weight = vec![0.0; p.cout * cin_g * p.kh * p.kw];
        for n in 0..p.n {
            for o in 0..p.cout {
                let g = o / cout_g;
                for c in 0..cin_g {
                    for i in 0..p.kh {
                        for j in 0..p.kw {
                            let mut s = 0.0;
                            for y in 0..p.oh {
                                for xx in 0..p.ow {
                                    let iy = (y * p.sh + i) as isize - p.pt as isize;
                                    let ix = (xx * p.sw + j) as isize - p.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let ci = g * cin_g + c;
                                    s += x[((n * p.cin + ci) * p.h + iy as usize) * p.w
                                        + ix as usize]
                                        * grad_output[((n * p.cout + o) * p.oh + y) * p.ow + xx];
                                }
                            }
                            grad_weight[((o * cin_g + c) * p.kh + i) * p.kw + j] += s;
                        }
                    }
                }
            }
        }
        grad_weight
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-9 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    #[test]
    fn gradients_match_the_definition_at_every_level() {
        let mut next = crate::base::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        with_each_level(|level| {
            for _ in 0..40 {
                let mut r = |m: usize| (next() % m as u64) as usize;
                let groups = [1, 1, 2, 3][r(4)];
                let cin = groups * (1 + r(20));
                let cout = groups * (1 + r(20));
                let (n, h, w) = ([1, 2, 3, 17][r(4)], 1 + r(11), 1 + r(11));
                let (kh, kw) = (1 + r(5), 1 + r(5));
                let (sh, sw) = (1 + r(2), 1 + r(2));
                let pads = (r(kh), r(kh), r(kw), r(kw));
                let Ok(p) = ConvParams::new(
                    [n, cin, h, w],
                    [cout, cin / groups, kh, kw],
                    (sh, sw),
                    pads,
                    (1, 1),
                    groups,
                ) else {
                    continue;
                };
                // a transposed convolution's restricted output (output_padding past the stride)
                let p = match r(4) {
                    0 if p.oh > 1 => p.with_output_size(p.oh - 1, p.ow).unwrap_or(p),
                    _ => p,
                };
                if !supports(&p) {
                    continue;
                }
                let mut val = || ((next() % 2001) as f64 - 1000.0) / 1000.0;
                let x: Vec<f64> = (0..n * cin * h * w).map(|_| val()).collect();
                let wt: Vec<f64> = (0..p.weight_shape().iter().product())
                    .map(|_| val())
                    .collect();
                let dy: Vec<f64> = (0..p.output_shape().iter().product())
                    .map(|_| val())
                    .collect();
                let mut dx1 = vec![f64::NAN; x.len()];
                let mut dx2 = vec![f64::NAN; x.len()];
                crate::base::threads::run(1, || backward_input(&p, &dy, &wt, &mut dx1, 1));
                crate::base::threads::run(2, || backward_input(&p, &dy, &wt, &mut dx2, 2));
                close(
                    &dx1,
                    &naive_dx(&p, &dy, &wt),
                    &format!("dx {level:?} {p:?}"),
                );
                assert_eq!(dx1, dx2, "dx threads {p:?}");
                let mut dw1 = vec![f64::NAN; wt.len()];
                let mut dw2 = vec![f64::NAN; wt.len()];
                crate::base::threads::run(1, || backward_weight(&p, &x, &dy, &mut dw1, 1));
                crate::base::threads::run(2, || backward_weight(&p, &x, &dy, &mut dw2, 2));
                close(&dw1, &naive_dw(&p, &x, &dy), &format!("dw {level:?} {p:?}"));
                assert_eq!(dw1, dw2, "dw threads {p:?}");
                // float32: within float32 rounding of the float64 result
                let f = |v: &[f64]| v.iter().map(|&e| e as f32).collect::<Vec<f32>>();
                let (x32, w32, dy32) = (f(&x), f(&wt), f(&dy));
                let mut dx32 = vec![0f32; x.len()];
                let mut dw32 = vec![0f32; wt.len()];
                let mut dw32b = vec![0f32; wt.len()];
                backward_input(&p, &dy32, &w32, &mut dx32, 1);
                backward_weight(&p, &x32, &dy32, &mut dw32, 1);
                crate::base::threads::run(2, || backward_weight(&p, &x32, &dy32, &mut dw32b, 2));
                assert_eq!(dw32, dw32b);
                let tol = 1e-4 * (1 + cout * kh * kw + n * h * w) as f64;
                for (a, b) in dx32.iter().zip(&dx1) {
                    assert!((*a as f64 - b).abs() <= tol, "dx32 {p:?}");
                }
                for (a, b) in dw32.iter().zip(&dw1) {
                    assert!((*a as f64 - b).abs() <= tol, "dw32 {p:?}");
                }
                checked += 1;
            }
        });
        assert!(checked > 20, "{checked}");
    }
}
