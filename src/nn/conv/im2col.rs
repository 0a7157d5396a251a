//! The im2col + GEMM engine: tiled im2col feeding single-threaded GEMMs, one GEMM per rayon
//! task over (image, group, tile of output rows); the im2col workspace is one tile per task,
//! never the whole batch. 1x1/stride-1/unpadded layers skip im2col entirely.
//!
//! The decomposition into tasks never depends on the thread count, so results are identical
//! for any number of threads.

use rayon::prelude::*;

use super::params::{ConvParams, Operands};
use crate::base::gemm::{gemm_into, MatMut, MatRef};
use crate::base::par::{for_each_task, DisjointSlice};
use crate::base::real::Real;
use crate::base::simd::simd_twin;
use crate::nn::tap_span;

/// Target size of one im2col tile (per task). Measured on the ResNet 3x3 layers: 1 MiB beats
/// 256-512 KiB by up to 10% (fewer re-packings of the weight matrix), larger gains nothing.
const TILE_BYTES: usize = 1024 * 1024;

/// Pixels per task of the pointwise (1x1) path.
const POINTWISE_TILE: usize = 1024;

/// Output rows per im2col tile: the workspace stays near [`TILE_BYTES`].
fn tile_rows(p: &ConvParams, size: usize) -> usize {
    let per_row = (p.k_len() * p.ow * size).max(1);
    (TILE_BYTES / per_row).clamp(1, p.oh.max(1))
}

/// Copy `src` into `dst` (equal lengths). Runs shorter than 32 elements are copied in fixed
/// blocks of 8, 4, 2 and 1 instead of a `memcpy` call: im2col of small planes makes one
/// call per (channel, tap, row), and on 8-px rows the calls cost more than the copies (3x3
/// 64->16 @8 N=64: im2col was half of the forward).
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len().min(src.len());
    if n >= 32 {
        dst[..n].copy_from_slice(&src[..n]);
        return;
    }
    let mut i = 0;
    while i + 8 <= n {
        copy_block::<T, 8>(&mut dst[i..], &src[i..]);
        i += 8;
    }
    if i + 4 <= n {
        copy_block::<T, 4>(&mut dst[i..], &src[i..]);
        i += 4;
    }
    if i + 2 <= n {
        copy_block::<T, 2>(&mut dst[i..], &src[i..]);
        i += 2;
    }
    if i < n {
        dst[i] = src[i];
    }
}

/// Copy the first `N` elements (a fixed-size move, no call).
#[inline(always)]
fn copy_block<T: Copy, const N: usize>(dst: &mut [T], src: &[T]) {
    if let (Some((d, _)), Some((s, _))) = (
        dst.split_first_chunk_mut::<N>(),
        src.split_first_chunk::<N>(),
    ) {
        *d = *s;
    }
}

/// Zero `dst`: short runs (the padding columns of im2col rows) without a `memset` call.
#[inline(always)]
fn zero_run<T: Real>(dst: &mut [T]) {
    match dst.len() {
        0 => {}
        1 => dst[0] = T::ZERO,
        2 => dst.copy_from_slice(&[T::ZERO; 2]),
        _ => dst.fill(T::ZERO),
    }
}

simd_twin! {
    /// [`im2col_imp`] compiled for the process's level (its copies and zero runs are the
    /// level's vector moves).
    fn im2col<T: Real>(p: &ConvParams, img: &[T], oy0: usize, rows: usize, col: &mut [T])
        = im2col_imp;
}

/// Fill `col` (`k_len x (rows * ow)`, row-major) with the im2col matrix of image `img`
/// (`cin_g` planes of `h x w`, contiguous) for output rows `oy0 .. oy0 + rows`.
#[inline(always)]
fn im2col_imp<T: Real>(p: &ConvParams, img: &[T], oy0: usize, rows: usize, col: &mut [T]) {
    if p.sw == 1 {
        return im2col_unit_stride(p, img, oy0, rows, col);
    }
    let (h, w, ow) = (p.h, p.w, p.ow);
    let tp = rows * ow;
    // Per kernel column j: the output columns lo..hi whose input column ox*sw + j*dw - pl lies
    // in 0..w, and the first such input column.
    let spans: Vec<(usize, usize, usize)> = (0..p.kw)
        .map(|j| {
            let (off, lo, hi) = tap_span(j, (p.dw, p.pl, p.sw), w, ow);
            (lo, hi, (lo as isize * p.sw as isize + off).max(0) as usize)
        })
        .collect();
    // With a stride, each input row is first split into its `sw` phases (columns q, q + sw,
    // ...), so that every kernel column copies a contiguous run instead of gathering.
    let mut phases: Vec<T> = if p.sw > 1 {
        vec![T::ZERO; w + p.sw]
    } else {
        Vec::new()
    };
    let plen = w.div_ceil(p.sw);
    for c in 0..p.cin_g() {
        let plane = &img[c * h * w..(c + 1) * h * w];
        for i in 0..p.kh {
            let r0 = (c * p.kh + i) * p.kw;
            for y in 0..rows {
                let iy = ((oy0 + y) * p.sh + i * p.dh) as isize - p.pt as isize;
                if iy < 0 || iy >= h as isize {
                    for j in 0..p.kw {
                        zero_run(&mut col[(r0 + j) * tp + y * ow..(r0 + j) * tp + (y + 1) * ow]);
                    }
                    continue;
                }
                let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                if p.sw > 1 {
                    for q in 0..p.sw {
                        for (t, d) in phases[q * plen..(q + 1) * plen].iter_mut().enumerate() {
                            *d = src.get(q + t * p.sw).copied().unwrap_or(T::ZERO);
                        }
                    }
                }
                for (j, &(lo, hi, x0)) in spans.iter().enumerate() {
                    let dst = &mut col[(r0 + j) * tp + y * ow..(r0 + j) * tp + (y + 1) * ow];
                    zero_run(&mut dst[..lo]);
                    zero_run(&mut dst[hi..]);
                    if hi == lo {
                        continue; // no window reaches this kernel column
                    }
                    if p.sw == 1 {
                        copy_run(&mut dst[lo..hi], &src[x0..x0 + (hi - lo)]);
                    } else {
                        let (q, s0) = (x0 % p.sw, x0 / p.sw);
                        let ph = &phases[q * plen + s0..q * plen + s0 + (hi - lo)];
                        copy_run(&mut dst[lo..hi], ph);
                    }
                }
            }
        }
    }
}

/// Copy the rows `top ..` of `plane` (`h x w`) into `dst` (rows of `wp`, from column `pl`),
/// as many as `dst` holds; rows outside the plane are left as they are (the zero padding).
#[inline(always)]
fn padded_rows<T: Copy>(
    plane: &[T],
    (h, w): (usize, usize),
    top: isize,
    dst: &mut [T],
    (wp, pl): (usize, usize),
) {
    for (r, row) in dst.chunks_exact_mut(wp).enumerate() {
        let iy = top + r as isize;
        if iy >= 0 && (iy as usize) < h {
            let iy = iy as usize;
            copy_run(&mut row[pl..pl + w], &plane[iy * w..(iy + 1) * w]);
        }
    }
}

/// [`im2col`] for a horizontal stride of 1: the input rows this tile reads are first copied,
/// zero-padded, into `span x wp` scratch (one channel at a time), so that every (channel,
/// tap, output row) is one unconditional run of `ow` elements at a fixed offset. No bounds
/// logic per run: on 8-px planes the general loop spent ~35 cycles per 8-element run.
#[inline(always)]
fn im2col_unit_stride<T: Real>(p: &ConvParams, img: &[T], oy0: usize, rows: usize, col: &mut [T]) {
    let (h, w, ow) = (p.h, p.w, p.ow);
    let tp = rows * ow;
    let wp = p.w + p.pl + p.pr;
    let span = (rows - 1) * p.sh + (p.kh - 1) * p.dh + 1;
    let top = (oy0 * p.sh) as isize - p.pt as isize;
    // Rows outside the image stay zero: every channel writes the same in-image rows.
    let mut pbuf = vec![T::ZERO; span * wp];
    for c in 0..p.cin_g() {
        let plane = &img[c * h * w..(c + 1) * h * w];
        padded_rows(plane, (h, w), top, &mut pbuf, (wp, p.pl));
        for i in 0..p.kh {
            for j in 0..p.kw {
                let r0 = ((c * p.kh + i) * p.kw + j) * tp;
                for (y, d) in col[r0..r0 + tp].chunks_exact_mut(ow).enumerate() {
                    let o = (y * p.sh + i * p.dh) * wp + j * p.dw;
                    copy_run(d, &pbuf[o..o + ow]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: add `col` into the `cin_c` planes of `img` (channels
/// `c0 .. c0 + cin_c` of the group, so `col` holds rows `c0 * kh * kw ..`).
fn col2im_add<T: Real>(
    p: &ConvParams,
    col: &[T],
    oy0: usize,
    rows: usize,
    cin_c: usize,
    img: &mut [T],
) {
    col2im_twin(p, col, (oy0, rows, cin_c), img)
}

simd_twin! {
    /// [`col2im_add_imp`] compiled for the process's level.
    fn col2im_twin<T: Real>(p: &ConvParams, col: &[T], at: (usize, usize, usize), img: &mut [T])
        = col2im_add_imp;
}

#[inline(always)]
fn col2im_add_imp<T: Real>(
    p: &ConvParams,
    col: &[T],
    (oy0, rows, cin_c): (usize, usize, usize),
    img: &mut [T],
) {
    let (h, w, ow) = (p.h, p.w, p.ow);
    let tp = rows * ow;
    let mut r = 0;
    for c in 0..cin_c {
        let plane = &mut img[c * h * w..(c + 1) * h * w];
        for i in 0..p.kh {
            for j in 0..p.kw {
                let src_row = &col[r * tp..(r + 1) * tp];
                r += 1;
                let (off, lo, hi) = tap_span(j, (p.dw, p.pl, p.sw), w, ow);
                if lo >= hi {
                    continue;
                }
                for (y, src) in src_row.chunks_exact(ow).enumerate() {
                    let iy = ((oy0 + y) * p.sh + i * p.dh) as isize - p.pt as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                    let x0 = (lo as isize * p.sw as isize + off) as usize;
                    if p.sw == 1 {
                        for (d, s) in dst[x0..x0 + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in dst[x0..].iter_mut().step_by(p.sw).zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// The output pass ([`Operands::finish_row`]: bias, fused ReLU) of row `r` of the `rows x n`
/// block at element `start` of `out` (row stride `ld`), channel `o0 + r`, while the block is
/// still in cache.
///
/// # Safety
/// The block must be this task's alone (as for [`DisjointSlice::range`]).
unsafe fn finish_rows<T: Real>(
    op: &Operands<'_, T>,
    o0: usize,
    out: &DisjointSlice<'_, T>,
    start: usize,
    (rows, n): (usize, usize),
    ld: usize,
) {
    if op.bias.is_none() && !op.relu {
        return;
    }
    for r in 0..rows {
        // SAFETY: row r of the block is ours alone (the caller's contract).
        op.finish_row(o0 + r, unsafe { out.range(start + r * ld, n) });
    }
}

/// The im2col forward path alone (the reference of the Winograd tests).
#[cfg(test)]
pub(crate) fn gemm_forward_for_tests<T: Real>(
    p: &ConvParams,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let op = Operands {
        bias,
        ..Operands::plain(x, weight)
    };
    gemm_forward(p, op, out, 1)
}

pub(crate) fn gemm_forward<T: Real>(
    p: &ConvParams,
    op: Operands<'_, T>,
    out: &mut [T],
    threads: usize,
) {
    if runs_applies(p) {
        return runs_forward(p, op, out, threads);
    }
    let (x, weight) = (op.x, op.weight);
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let outs = DisjointSlice::new(out);
    if p.is_pointwise() {
        let tiles = plane_out.div_ceil(POINTWISE_TILE);
        let run = |t: usize| {
            let (img, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
            let (g, tile) = (rest / tiles, rest % tiles);
            let p0 = tile * POINTWISE_TILE;
            let np = POINTWISE_TILE.min(plane_out - p0);
            let xb = &x[(img * p.cin + g * cin_g) * plane_in..];
            let wb = &weight[g * cout_g * k..];
            let start = (img * p.cout + g * cout_g) * plane_out + p0;
            // SAFETY: task (img, g, tile) alone writes rows g*cout_g.. of image img, columns
            // p0..p0+np (the tasks partition the output).
            let c = unsafe { MatMut::in_shared(&outs, start, (cout_g, np), plane_out) };
            gemm_into(
                c,
                false,
                MatRef::new(wb, (cout_g, cin_g), (k, 1)),
                MatRef::new(&xb[p0..], (cin_g, np), (plane_in, 1)),
            );
            // SAFETY: the same block, after the product is done with it.
            unsafe { finish_rows(&op, g * cout_g, &outs, start, (cout_g, np), plane_out) };
        };
        let n_tasks = p.n * p.groups * tiles;
        if threads <= 1 {
            (0..n_tasks).for_each(run);
        } else {
            (0..n_tasks).into_par_iter().for_each(run);
        }
        return;
    }
    let rows = tile_rows(p, std::mem::size_of::<T>());
    let tiles = p.oh.div_ceil(rows);
    let run = |col: &mut Vec<T>, t: usize| {
        let (img, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
        let (g, tile) = (rest / tiles, rest % tiles);
        let oy0 = tile * rows;
        let nr = rows.min(p.oh - oy0);
        let tp = nr * p.ow;
        col.resize(k * tp, T::ZERO);
        let xb =
            &x[(img * p.cin + g * cin_g) * plane_in..(img * p.cin + (g + 1) * cin_g) * plane_in];
        im2col(p, xb, oy0, nr, col);
        let wb = &weight[g * cout_g * k..];
        let start = (img * p.cout + g * cout_g) * plane_out + oy0 * p.ow;
        // SAFETY: task (img, g, tile) alone writes output rows g*cout_g.. of image img, pixels
        // oy0*ow .. (oy0+nr)*ow (the tasks partition the output).
        let c = unsafe { MatMut::in_shared(&outs, start, (cout_g, tp), plane_out) };
        gemm_into(
            c,
            false,
            MatRef::new(wb, (cout_g, k), (k, 1)),
            MatRef::new(col, (k, tp), (tp, 1)),
        );
        // SAFETY: the same block, after the product is done with it.
        unsafe { finish_rows(&op, g * cout_g, &outs, start, (cout_g, tp), plane_out) };
    };
    let n_tasks = p.n * p.groups * tiles;
    for_each_task(threads > 1, n_tasks, Vec::new, run);
}

/// Whether [`runs_forward`] computes this forward: stride 1, not pointwise, output rows of at
/// most [`RUNS_MAX_OW`] columns, padded rows at most 1.5x the output rows (the GEMM's extra
/// columns), and at least as many GEMM rows `K` as output channels (the copy of the product
/// to the output costs `cout` per pixel, the im2col it saves `K`). Measured on a Zen 3, one
/// thread, float32, against the tight im2col: 3x3 64->16 @8 N=64 1.67x, @16 N=8 1.29x, 5x5
/// 6->16 @14 1.56x, 1->6 @28 p2 1.25x; 3x3 3->32 @32 0.91x and 1->64 @32 0.68x (excluded by
/// the `K` rule).
pub(crate) fn runs_applies(p: &ConvParams) -> bool {
    let wp = p.w + p.pl + p.pr;
    p.sh == 1
        && p.sw == 1
        && !p.is_pointwise()
        && p.oh * p.ow > 0
        && p.ow <= RUNS_MAX_OW
        && 2 * wp <= 3 * p.ow
        && p.k_len() >= p.cout_g()
        && !runs_disabled()
}

/// The widest output rows [`runs_forward`] takes; wider rows copy efficiently already.
const RUNS_MAX_OW: usize = 32;

/// The im2col forward in the layout of the zero-padded input. A task takes a tile of output
/// rows `oy0 .. oy0 + nr` of a chunk of images; with row length `wp` (the padded width),
/// im2col row `(c, i, j)` of image `b` is one contiguous run of the padded plane:
/// `xp[c][b][(oy0 + i dh) wp + j dw ..][.. (nr - 1) wp + ow]`. The GEMM writes its
/// `cout x runs` product to scratch, and the `ow` valid columns of each row go to the output
/// (with the bias). The extra columns cost `wp / ow` more GEMM work and save one copy per
/// (channel, tap, output row).
fn runs_forward<T: Real>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    let (x, weight) = (op.x, op.weight);
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let wp = p.w + p.pl + p.pr;
    let size = std::mem::size_of::<T>().max(1);
    // A tile of rows per task, or whole images, chunked so that the im2col stays near
    // TILE_BYTES. The chunking depends on the layer, not the thread count.
    let rows = (TILE_BYTES / (k * wp * size).max(1)).clamp(1, p.oh);
    let tiles = p.oh.div_ceil(rows);
    let per_image = ((p.oh - 1) * wp + p.ow) * k * size;
    // Image chunks: within the budget, a multiple of 4 in number (balanced on 2 or 4
    // threads), of sizes differing by at most one.
    let chunks = if tiles == 1 {
        let nb = (TILE_BYTES / per_image.max(1)).clamp(1, p.n);
        p.n.div_ceil(nb).next_multiple_of(4).min(p.n)
    } else {
        p.n
    };
    let outs = DisjointSlice::new(out);
    let run = |(xp, col, prod): &mut (Vec<T>, Vec<T>, Vec<T>), t: usize| {
        let (chunk, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
        let (g, tile) = (rest / tiles, rest % tiles);
        let n0 = chunk * p.n / chunks;
        let nbb = (chunk + 1) * p.n / chunks - n0;
        let oy0 = tile * rows;
        let nr = rows.min(p.oh - oy0);
        let span = nr + (p.kh - 1) * p.dh;
        let pp = span * wp;
        let run_len = (nr - 1) * wp + p.ow;
        // padded rows oy0 .. oy0 + span of every (channel, image): [c][b][span x wp]
        xp.clear();
        xp.resize(cin_g * nbb * pp, T::ZERO);
        for c in 0..cin_g {
            for b in 0..nbb {
                let src = &x[((n0 + b) * p.cin + g * cin_g + c) * plane_in..][..plane_in];
                let dst = &mut xp[(c * nbb + b) * pp..][..pp];
                let top = oy0 as isize - p.pt as isize;
                padded_rows(src, (p.h, p.w), top, dst, (wp, p.pl));
            }
        }
        let ncol = nbb * run_len;
        col.resize(k * ncol, T::ZERO);
        for c in 0..cin_g {
            for i in 0..p.kh {
                for j in 0..p.kw {
                    let r = (c * p.kh + i) * p.kw + j;
                    let off = i * p.dh * wp + j * p.dw;
                    for b in 0..nbb {
                        col[r * ncol + b * run_len..][..run_len]
                            .copy_from_slice(&xp[(c * nbb + b) * pp + off..][..run_len]);
                    }
                }
            }
        }
        prod.resize(cout_g * ncol, T::ZERO);
        gemm_into(
            MatMut::new(prod, (cout_g, ncol), ncol),
            false,
            MatRef::new(&weight[g * cout_g * k..], (cout_g, k), (k, 1)),
            MatRef::new(col, (k, ncol), (ncol, 1)),
        );
        for b in 0..nbb {
            for co in 0..cout_g {
                let o = g * cout_g + co;
                let start = ((n0 + b) * p.cout + o) * plane_out + oy0 * p.ow;
                // SAFETY: task (chunk, g, tile) alone writes output rows oy0 .. oy0 + nr of
                // channels g*cout_g .. of its images (the tasks partition the output).
                let dst = unsafe { outs.range(start, nr * p.ow) };
                let src = &prod[co * ncol + b * run_len..];
                for (y, d) in dst.chunks_exact_mut(p.ow).enumerate() {
                    d.copy_from_slice(&src[y * wp..y * wp + p.ow]);
                    op.finish_row(o, d);
                }
            }
        }
    };
    let n_tasks = chunks * p.groups * tiles;
    let init = || (Vec::new(), Vec::new(), Vec::new());
    for_each_task(threads > 1, n_tasks, init, run);
}

/// `RCONV_NO_RUNS_FORWARD` set (to anything): stride-1 forwards use the tight im2col (read
/// once; for A/B measurements and tests).
fn runs_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RCONV_NO_RUNS_FORWARD").is_some())
}

/// Channel chunks per (image, group) for the input gradient: independent of the thread count.
fn channel_chunks(cin_g: usize) -> usize {
    cin_g.clamp(1, 4)
}

pub(crate) fn gemm_backward_input<T: Real>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let chunks = channel_chunks(cin_g);
    let per_chunk = cin_g.div_ceil(chunks);
    let dxs = DisjointSlice::new(grad_input);
    let rows = tile_rows(p, std::mem::size_of::<T>()).max(1);
    let tiles = p.oh.div_ceil(rows);
    let run = |col: &mut Vec<T>, t: usize| {
        let (img, rest) = (t / (p.groups * chunks), t % (p.groups * chunks));
        let (g, ch) = (rest / chunks, rest % chunks);
        let c0 = ch * per_chunk;
        if c0 >= cin_g {
            return;
        }
        let cc = per_chunk.min(cin_g - c0);
        let dyb = &grad_output[(img * p.cout + g * cout_g) * plane_out..];
        // Rows c0*kk .. (c0+cc)*kk of W_g^T, i.e. columns of W_g.
        let wb = &weight[g * cout_g * k + c0 * kk..];
        let chan0 = img * p.cin + g * cin_g + c0;
        // SAFETY: task (img, g, ch) is the only one touching input channels
        // chan0 .. chan0+cc of image img.
        let dxb = unsafe { dxs.range(chan0 * plane_in, cc * plane_in) };
        if p.is_pointwise() {
            gemm_into(
                MatMut::new(dxb, (cc, plane_in), plane_in),
                false,
                MatRef::new(wb, (cc, cout_g), (1, k)),
                MatRef::new(dyb, (cout_g, plane_in), (plane_out, 1)),
            );
            return;
        }
        for tile in 0..tiles {
            let oy0 = tile * rows;
            let nr = rows.min(p.oh - oy0);
            let tp = nr * p.ow;
            col.resize(cc * kk * tp, T::ZERO);
            gemm_into(
                MatMut::new(col, (cc * kk, tp), tp),
                false,
                MatRef::new(wb, (cc * kk, cout_g), (1, k)),
                MatRef::new(&dyb[oy0 * p.ow..], (cout_g, tp), (plane_out, 1)),
            );
            col2im_add(p, col, oy0, nr, cc, dxb);
        }
    };
    let n_tasks = p.n * p.groups * chunks;
    for_each_task(threads > 1, n_tasks, Vec::new, run);
}

/// Partial sums over fixed slices of the task list (the slicing never depends on the thread
/// count, and the partials are added in order, so the result is deterministic).
const WEIGHT_PARTIALS: usize = 8;

/// Bytes of one chunk's padded copies in [`shifted_backward_weight`].
const SHIFTED_CHUNK_BYTES: usize = 4 << 20;

/// Whether [`shifted_backward_weight`] computes this weight gradient: stride 1, ungrouped,
/// not pointwise (which reads its input in place already), with 3 to 64 input channels.
/// Measured on a Zen 4 (2 threads, float32): 1.1-2x faster than im2col for 3-64 input
/// channels at 14-32 px (the VGG and LeNet layers), even at 64 channels @56, slower with one
/// input channel (GEMMs of width 1) and at 256 channels (where im2col's wide GEMM wins).
pub(crate) fn shifted_applies(p: &ConvParams) -> bool {
    p.sh == 1
        && p.sw == 1
        && p.groups == 1
        && !p.is_pointwise()
        && p.oh * p.ow > 0
        && (3..=64).contains(&p.cin)
}

/// The weight gradient of a stride-1 ungrouped convolution without im2col. With the input
/// zero-padded into planes of `hp x wp` and the output gradient copied into planes of the same
/// row length `wp` (zero beyond its `ow` columns and `oh` rows), every kernel tap `(i, j)` is
/// one GEMM over all pixels of a chunk of images:
/// `dW[:, :, i, j] += dYp (cout x K) * Xp[off..]^T (K x cin)` with
/// `off = i dh wp + j dw`: a pixel's tap is the padded input at a fixed offset, and the
/// columns and rows where `dYp` is zero absorb the offsets that run past a row or a plane.
/// The planes are laid out `[channel][image][pixel]`, so `K` spans the chunk's images.
/// Partials over fixed chunks of the batch, as in [`gemm_backward_weight`].
fn shifted_backward_weight<T: Real>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    threads: usize,
) -> Vec<Vec<T>> {
    let (cin, cout, kh, kw) = (p.cin, p.cout, p.kh, p.kw);
    let (hp, wp) = (p.h + p.pt + p.pb, p.w + p.pl + p.pr);
    let pp = hp * wp;
    let slack = (kh - 1) * p.dh * wp + (kw - 1) * p.dw + 1;
    let size = std::mem::size_of::<T>().max(1);
    let per_image = (cin + cout) * pp * size;
    // within the byte budget, and at least WEIGHT_PARTIALS chunks when the batch allows
    let chunk = (SHIFTED_CHUNK_BYTES / per_image.max(1))
        .min(p.n.div_ceil(WEIGHT_PARTIALS))
        .clamp(1, p.n);
    let n_chunks = p.n.div_ceil(chunk);
    let parts = WEIGHT_PARTIALS.min(n_chunks);
    let per_part = n_chunks.div_ceil(parts);
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let run_part = |part: usize| -> Vec<T> {
        let mut taps = vec![T::ZERO; kh * kw * cout * cin];
        let (mut xp, mut dyp) = (Vec::new(), Vec::new());
        for ch in part * per_part..((part + 1) * per_part).min(n_chunks) {
            let (n0, nb) = (ch * chunk, chunk.min(p.n - ch * chunk));
            let kk = nb * pp;
            let lx = kk + slack;
            xp.clear();
            xp.resize(cin * lx, T::ZERO);
            dyp.clear();
            dyp.resize(cout * kk, T::ZERO);
            for b in 0..nb {
                let img = n0 + b;
                for c in 0..cin {
                    let src = &x[(img * cin + c) * plane_in..(img * cin + c + 1) * plane_in];
                    let dst = &mut xp[c * lx + b * pp..c * lx + (b + 1) * pp];
                    for (y, row) in src.chunks_exact(p.w).enumerate() {
                        let o = (y + p.pt) * wp + p.pl;
                        copy_run(&mut dst[o..o + p.w], row);
                    }
                }
                for c in 0..cout {
                    let src = &grad_output
                        [(img * cout + c) * plane_out..(img * cout + c + 1) * plane_out];
                    let dst = &mut dyp[c * kk + b * pp..c * kk + (b + 1) * pp];
                    for (y, row) in src.chunks_exact(p.ow).enumerate() {
                        copy_run(&mut dst[y * wp..y * wp + p.ow], row);
                    }
                }
            }
            for (t, tap) in taps.chunks_exact_mut(cout * cin).enumerate() {
                let off = (t / kw) * p.dh * wp + (t % kw) * p.dw;
                gemm_into(
                    MatMut::new(tap, (cout, cin), cin),
                    true,
                    MatRef::new(&dyp, (cout, kk), (kk, 1)),
                    MatRef::new(&xp[off..], (kk, cin), (1, lx)),
                );
            }
        }
        // [tap][co][ci] -> [co][ci][tap], the weight's layout
        let k = kh * kw;
        let mut acc = vec![T::ZERO; cout * cin * k];
        for (t, tap) in taps.chunks_exact(cout * cin).enumerate() {
            for (e, &v) in tap.iter().enumerate() {
                acc[e * k + t] = v;
            }
        }
        acc
    };
    if threads <= 1 {
        (0..parts).map(run_part).collect()
    } else {
        (0..parts).into_par_iter().map(run_part).collect()
    }
}

pub(crate) fn gemm_backward_weight<T: Real>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    threads: usize,
) -> Vec<Vec<T>> {
    if shifted_applies(p) && !shifted_disabled() {
        return shifted_backward_weight(p, x, grad_output, threads);
    }
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let wlen = p.cout * k;
    let pointwise = p.is_pointwise();
    let rows = tile_rows(p, std::mem::size_of::<T>());
    let tiles = if pointwise {
        plane_out.div_ceil(POINTWISE_TILE)
    } else {
        p.oh.div_ceil(rows)
    };
    let n_tasks = p.n * p.groups * tiles;
    let parts = WEIGHT_PARTIALS.min(n_tasks);
    let per_part = n_tasks.div_ceil(parts);
    let run_part = |part: usize| -> Vec<T> {
        let mut acc = vec![T::ZERO; wlen];
        let mut col: Vec<T> = Vec::new();
        for t in part * per_part..((part + 1) * per_part).min(n_tasks) {
            let (img, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
            let (g, tile) = (rest / tiles, rest % tiles);
            let xb = &x
                [(img * p.cin + g * cin_g) * plane_in..(img * p.cin + (g + 1) * cin_g) * plane_in];
            let dyb = &grad_output[(img * p.cout + g * cout_g) * plane_out..];
            let c = &mut acc[g * cout_g * k..];
            if pointwise {
                let p0 = tile * POINTWISE_TILE;
                let np = POINTWISE_TILE.min(plane_out - p0);
                // A = grad_output tile (cout_g x np), B = x tile transposed.
                gemm_into(
                    MatMut::new(c, (cout_g, cin_g), k),
                    true,
                    MatRef::new(&dyb[p0..], (cout_g, np), (plane_out, 1)),
                    MatRef::new(&xb[p0..], (np, cin_g), (1, plane_in)),
                );
                continue;
            }
            let oy0 = tile * rows;
            let nr = rows.min(p.oh - oy0);
            let tp = nr * p.ow;
            col.resize(k * tp, T::ZERO);
            im2col(p, xb, oy0, nr, &mut col);
            // A = grad_output tile (cout_g x tp), B = col^T (tp x k).
            gemm_into(
                MatMut::new(c, (cout_g, k), k),
                true,
                MatRef::new(&dyb[oy0 * p.ow..], (cout_g, tp), (plane_out, 1)),
                MatRef::new(&col, (tp, k), (1, tp)),
            );
        }
        acc
    };
    if threads <= 1 {
        (0..parts).map(run_part).collect()
    } else {
        (0..parts).into_par_iter().map(run_part).collect()
    }
}

/// `RCONV_NO_SHIFTED_WGRAD` set (to anything): stride-1 weight gradients go through im2col
/// like the others (read once; for A/B measurements and tests).
fn shifted_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RCONV_NO_SHIFTED_WGRAD").is_some())
}

#[cfg(test)]
mod shifted_tests {
    use super::*;

    /// dW from the definition, in f64.
    fn naive(p: &ConvParams, x: &[f64], grad_output: &[f64]) -> Vec<f64> {
        let mut grad_weight = vec![0.0; p.cout * p.cin * p.kh * p.kw];
        for n in 0..p.n {
            for o in 0..p.cout {
                for c in 0..p.cin {
                    for i in 0..p.kh {
                        for j in 0..p.kw {
                            let mut s = 0.0;
                            for y in 0..p.oh {
                                for xx in 0..p.ow {
                                    let iy = (y + i * p.dh) as isize - p.pt as isize;
                                    let ix = (xx + j * p.dw) as isize - p.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x
                                        [((n * p.cin + c) * p.h + iy as usize) * p.w + ix as usize];
                                    s +=
                                        xv * grad_output[((n * p.cout + o) * p.oh + y) * p.ow + xx];
                                }
                            }
                            grad_weight[((o * p.cin + c) * p.kh + i) * p.kw + j] += s;
                        }
                    }
                }
            }
        }
        grad_weight
    }

    #[test]
    fn shifted_weight_gradient_matches_the_definition() {
        let mut next = crate::base::testing::xorshift(0x1234_5678_9abc_def1_u64);
        let mut checked = 0;
        for _ in 0..60 {
            let r = |m: u64, next: &mut dyn FnMut() -> u64| (next() % m) as usize;
            let (n, cin, cout) = (
                1 + r(4, &mut next),
                1 + r(4, &mut next),
                1 + r(4, &mut next),
            );
            let (h, w) = (1 + r(7, &mut next), 1 + r(7, &mut next));
            let (kh, kw) = (1 + r(4, &mut next), 1 + r(4, &mut next));
            let (dh, dw) = (1 + r(2, &mut next), 1 + r(2, &mut next));
            let pads = (
                r(3, &mut next),
                r(3, &mut next),
                r(3, &mut next),
                r(3, &mut next),
            );
            let Ok(p) = ConvParams::new(
                [n, cin, h, w],
                [cout, cin, kh, kw],
                (1, 1),
                pads,
                (dh, dw),
                1,
            ) else {
                continue;
            };
            if !shifted_applies(&p) {
                continue;
            }
            let x: Vec<f64> = (0..n * cin * h * w)
                .map(|_| (next() % 17) as f64 - 8.0)
                .collect();
            let grad_output: Vec<f64> = (0..n * cout * p.oh * p.ow)
                .map(|_| (next() % 13) as f64 - 6.0)
                .collect();
            let want = naive(&p, &x, &grad_output);
            for threads in [1, 2] {
                let parts = shifted_backward_weight(&p, &x, &grad_output, threads);
                let mut got = vec![0.0; want.len()];
                for part in parts {
                    for (g, v) in got.iter_mut().zip(part) {
                        *g += v;
                    }
                }
                assert_eq!(got, want, "{p:?}"); // small integers: exact
            }
            checked += 1;
        }
        assert!(checked > 20, "only {checked} cases");
    }
}

#[cfg(test)]
mod runs_tests {
    use super::*;

    /// The forward from the definition (f64), and the input gradient's adjoint identity.
    fn naive(p: &ConvParams, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (cin_g, cout_g) = (p.cin_g(), p.cout_g());
        let mut out = vec![0.0; p.n * p.cout * p.oh * p.ow];
        for n in 0..p.n {
            for o in 0..p.cout {
                let g = o / cout_g;
                for y in 0..p.oh {
                    for xx in 0..p.ow {
                        let mut s = 0.0;
                        for c in 0..cin_g {
                            for i in 0..p.kh {
                                for j in 0..p.kw {
                                    let iy = (y * p.sh + i * p.dh) as isize - p.pt as isize;
                                    let ix = (xx * p.sw + j * p.dw) as isize - p.pl as isize;
                                    if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize
                                    {
                                        continue;
                                    }
                                    let ci = g * cin_g + c;
                                    let xv = x[((n * p.cin + ci) * p.h + iy as usize) * p.w
                                        + ix as usize];
                                    s += xv * w[((o * cin_g + c) * p.kh + i) * p.kw + j];
                                }
                            }
                        }
                        out[((n * p.cout + o) * p.oh + y) * p.ow + xx] = s;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn row_run_forward_and_its_adjoint_match_the_definition() {
        let mut raw = crate::base::testing::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let mut next = move |m: u64| (raw() % m) as usize;
        let (mut fwd, mut adj, mut via_runs) = (0, 0, 0);
        for case in 0..300 {
            let groups = 1 + next(2);
            let (cin, cout) = (groups * (1 + next(6)), groups * (1 + next(6)));
            let n = 1 + next(if case % 3 == 0 { 40 } else { 5 });
            let (h, w) = (1 + next(12), 1 + next(12));
            let (kh, kw) = (1 + next(4), 1 + next(4));
            let (dh, dw) = (1 + next(2), 1 + next(2));
            let pads = (next(3), next(3), next(3), next(3));
            let Ok(p) = ConvParams::new(
                [n, cin, h, w],
                [cout, cin / groups, kh, kw],
                (1, 1),
                pads,
                (dh, dw),
                groups,
            ) else {
                continue;
            };
            if p.oh * p.ow == 0 {
                continue;
            }
            let x: Vec<f64> = (0..n * cin * h * w)
                .map(|_| next(17) as f64 - 8.0)
                .collect();
            let wt: Vec<f64> = (0..p.weight_shape().iter().product::<usize>())
                .map(|_| next(13) as f64 - 6.0)
                .collect();
            if runs_applies(&p) {
                let want = naive(&p, &x, &wt);
                for threads in [1, 2] {
                    let mut got = vec![f64::NAN; want.len()];
                    let op = Operands::plain(&x, &wt);
                    crate::base::threads::run(threads, || runs_forward(&p, op, &mut got, threads));
                    assert_eq!(got, want, "{p:?}"); // small integers: exact
                }
                fwd += 1;
            }
            // the input gradient, whichever path takes it:
            // <conv(x), grad_output> == <x, grad_input>
            let grad_output: Vec<f64> = (0..n * cout * p.oh * p.ow)
                .map(|_| next(11) as f64 - 5.0)
                .collect();
            let mut grad_input = vec![f64::NAN; x.len()];
            crate::nn::conv::conv2d_backward_input(&p, &grad_output, &wt, &mut grad_input, 2)
                .unwrap();
            for (k, e) in grad_input.iter_mut().enumerate() {
                // probe each input element: grad_input[k] = <conv(e_k), grad_output>
                let mut ek = vec![0.0; x.len()];
                ek[k] = 1.0;
                let yk = naive(&p, &ek, &wt);
                let want: f64 = yk.iter().zip(&grad_output).map(|(a, b)| a * b).sum();
                assert_eq!(*e, want, "{p:?} element {k}");
                if k > 40 {
                    break;
                }
            }
            adj += 1;
            via_runs += usize::from(super::super::runs_adjoint(&p).is_some());
        }
        assert!(
            fwd > 30 && adj > 100 && via_runs > 10,
            "only {fwd} forward / {adj} adjoint ({via_runs} by row runs) cases"
        );
    }
}
