//! 2-D convolution layers (torch.nn.functional semantics): forward, input gradient (which is
//! also the transposed convolution) and weight gradient, for NCHW float32/float64 arrays.
//!
//! [`ConvParams`] owns every shape: the output size formula, the padded extent, the grouping.
//! The engine is a tiled im2col feeding single-threaded GEMMs (the `gemm` crate), one GEMM per
//! rayon task over (image, group, tile of output rows); the im2col workspace is one tile per
//! task, never the whole batch. 1x1/stride-1/unpadded layers skip im2col entirely. Depthwise
//! layers with stride 1 run the direct correlation kernels instead.
//!
//! The decomposition into tasks never depends on the thread count, so results are identical
//! for any number of threads.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::error::{check_shapes, ConvError, Result};
use crate::kernels::{Geometry, MAX_TILE};
use crate::real::{Real, SyncPtr};

/// Shapes of one convolution: input `(n, cin, h, w)`, weight `(cout, cin / groups, kh, kw)`,
/// output `(n, cout, oh, ow)`, with zero padding `pt, pb` (rows) and `pl, pr` (columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pb: usize,
    pub pl: usize,
    pub pr: usize,
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

fn check_overflow(func: &str, v: Option<usize>) -> Result<usize> {
    v.ok_or_else(|| ConvError::value(func, "shape arithmetic overflows"))
}

/// `floor((len + pads - dil * (k - 1) - 1) / stride) + 1`, or an error if the dilated kernel is
/// larger than the padded input.
fn out_len(
    func: &str,
    axis: &str,
    len: usize,
    pads: usize,
    k: usize,
    s: usize,
    d: usize,
) -> Result<usize> {
    let padded = check_overflow(func, len.checked_add(pads))?;
    let eff = check_overflow(func, d.checked_mul(k - 1).and_then(|v| v.checked_add(1)))?;
    if eff > padded {
        return Err(ConvError::value(
            func,
            format!(
                "kernel size {eff} (dilation {d} x (kernel {k} - 1) + 1) along {axis} is larger \
                 than the padded input size {padded}"
            ),
        ));
    }
    Ok((padded - eff) / s + 1)
}

impl ConvParams {
    /// Validate and derive the output shape.
    ///
    /// `pad` is `(top, bottom, left, right)`; `stride` and `dilation` are `(rows, cols)`.
    pub fn new(
        func: &str,
        input: [usize; 4],
        weight: [usize; 4],
        stride: (usize, usize),
        pad: (usize, usize, usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> Result<Self> {
        let [n, cin, h, w] = input;
        let [cout, cin_g, kh, kw] = weight;
        if groups == 0 {
            return Err(ConvError::value(func, "groups must be a positive integer"));
        }
        if stride.0 == 0 || stride.1 == 0 {
            return Err(ConvError::value(
                func,
                format!("stride must be >= 1, got {stride:?}"),
            ));
        }
        if dilation.0 == 0 || dilation.1 == 0 {
            return Err(ConvError::value(
                func,
                format!("dilation must be >= 1, got {dilation:?}"),
            ));
        }
        if cin % groups != 0 {
            return Err(ConvError::value(
                func,
                format!("groups={groups} must divide the input channels ({cin})"),
            ));
        }
        if cout % groups != 0 {
            return Err(ConvError::value(
                func,
                format!("groups={groups} must divide the output channels ({cout}) of weight"),
            ));
        }
        if cin_g * groups != cin {
            return Err(ConvError::value(
                func,
                format!(
                    "input has {cin} channels but weight of shape {weight:?} expects \
                     {} (weight.shape[1] * groups = {cin_g} * {groups})",
                    cin_g * groups
                ),
            ));
        }
        if kh == 0 || kw == 0 {
            return Err(ConvError::value(
                func,
                format!("weight must have a non-empty kernel, got shape {weight:?}"),
            ));
        }
        let oh = out_len(
            func,
            "height",
            h,
            check_overflow(func, pad.0.checked_add(pad.1))?,
            kh,
            stride.0,
            dilation.0,
        )?;
        let ow = out_len(
            func,
            "width",
            w,
            check_overflow(func, pad.2.checked_add(pad.3))?,
            kw,
            stride.1,
            dilation.1,
        )?;
        // Every buffer we allocate must be addressable.
        check_shapes(
            func,
            &[[n, cin, h, w], [n, cout, oh, ow], [cout, cin_g, kh, kw]],
        )?;
        Ok(ConvParams {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            sh: stride.0,
            sw: stride.1,
            dh: dilation.0,
            dw: dilation.1,
            pt: pad.0,
            pb: pad.1,
            pl: pad.2,
            pr: pad.3,
            groups,
            oh,
            ow,
        })
    }

    /// Restrict the output to its first `oh x ow` positions (transposed convolutions whose
    /// `output_padding` reaches past the stride, where only a prefix of the natural output
    /// pairs with the transposed input).
    pub fn with_output_size(mut self, func: &str, oh: usize, ow: usize) -> Result<Self> {
        if oh > self.oh || ow > self.ow {
            return Err(ConvError::value(
                func,
                format!(
                    "output size ({oh}, {ow}) exceeds the convolution's ({}, {})",
                    self.oh, self.ow
                ),
            ));
        }
        self.oh = oh;
        self.ow = ow;
        Ok(self)
    }

    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of the im2col matrix: `cin_g * kh * kw`.
    pub fn k_len(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin_g(), self.kh, self.kw]
    }
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.oh, self.ow]
    }
    /// A 1x1, stride-1, unpadded layer: the im2col matrix is the input itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt + self.pb + self.pl + self.pr == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// Depthwise with stride 1 and dilation 1: the direct correlation kernels apply.
    pub fn is_direct_depthwise(&self) -> bool {
        // (the direct kernel computes the natural output size)
        self.oh + self.kh == self.h + self.pt + self.pb + 1
            && self.ow + self.kw == self.w + self.pl + self.pr + 1
            && self.groups == self.cin
            && self.cout == self.cin
            && self.sh == 1
            && self.sw == 1
            && self.dh == 1
            && self.dw == 1
    }
    /// Output rows per im2col tile: the workspace stays near [`TILE_BYTES`].
    fn tile_rows(&self, size: usize) -> usize {
        let per_row = (self.k_len() * self.ow * size).max(1);
        (TILE_BYTES / per_row).clamp(1, self.oh.max(1))
    }
}

/// Target size of one im2col tile (per task). Measured on the ResNet 3x3 layers: 1 MiB beats
/// 256-512 KiB by up to 10% (fewer re-packings of the weight matrix), larger gains nothing.
const TILE_BYTES: usize = 1024 * 1024;

/// Pixels per task of the pointwise (1x1) path.
const POINTWISE_TILE: usize = 1024;

/// `C[m x n] (+)= A[m x k] * B[k x n]`, single-threaded; strides in elements, C has unit column
/// stride and row stride `ldc`.
///
/// # Safety
/// All three matrices must be valid for the given shapes and strides, and C must not alias A
/// or B nor be written by anyone else during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_into<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
    a: *const T,
    a_rs: usize,
    a_cs: usize,
    b: *const T,
    b_rs: usize,
    b_cs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(c.add(i * ldc), n).fill(T::ZERO);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        T::ONE,
        T::ONE,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// Fill `col` (`k_len x (rows * ow)`, row-major) with the im2col matrix of image `img`
/// (`cin_g` planes of `h x w`, contiguous) for output rows `oy0 .. oy0 + rows`.
fn im2col<T: Real>(p: &ConvParams, img: &[T], oy0: usize, rows: usize, col: &mut [T]) {
    let (h, w, ow) = (p.h, p.w, p.ow);
    let tp = rows * ow;
    // Per kernel column j: the output columns lo..hi whose input column ox*sw + j*dw - pl lies
    // in 0..w, and the first such input column.
    let spans: Vec<(usize, usize, usize)> = (0..p.kw)
        .map(|j| {
            let off = (j * p.dw) as isize - p.pl as isize;
            let lo = if off >= 0 {
                0
            } else {
                ((-off) as usize).div_ceil(p.sw)
            };
            let hi = if (w as isize) > off {
                (((w as isize - off - 1) as usize) / p.sw + 1).min(ow)
            } else {
                0
            };
            let lo = lo.min(ow); // a tap left of every window (large padding, narrow input)
            let hi = hi.max(lo);
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
                        col[(r0 + j) * tp + y * ow..(r0 + j) * tp + (y + 1) * ow].fill(T::ZERO);
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
                    dst[..lo].fill(T::ZERO);
                    dst[hi..].fill(T::ZERO);
                    if hi == lo {
                        continue; // no window reaches this kernel column
                    }
                    if p.sw == 1 {
                        dst[lo..hi].copy_from_slice(&src[x0..x0 + (hi - lo)]);
                    } else {
                        let (q, s0) = (x0 % p.sw, x0 / p.sw);
                        let ph = &phases[q * plen + s0..q * plen + s0 + (hi - lo)];
                        dst[lo..hi].copy_from_slice(ph);
                    }
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
    let (h, w, ow) = (p.h, p.w, p.ow);
    let tp = rows * ow;
    let mut r = 0;
    for c in 0..cin_c {
        let plane = &mut img[c * h * w..(c + 1) * h * w];
        for i in 0..p.kh {
            for j in 0..p.kw {
                let src_row = &col[r * tp..(r + 1) * tp];
                r += 1;
                let off = (j * p.dw) as isize - p.pl as isize;
                let lo = if off >= 0 {
                    0
                } else {
                    ((-off) as usize).div_ceil(p.sw)
                };
                let hi = if (w as isize) > off {
                    (((w as isize - off - 1) as usize) / p.sw + 1).min(ow)
                } else {
                    0
                };
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

fn check_len<T>(func: &str, what: &str, v: &[T], want: usize) -> Result<()> {
    if v.len() != want {
        return Err(ConvError::value(
            func,
            format!("internal: {what} has {} elements, expected {want}", v.len()),
        ));
    }
    Ok(())
}

/// Forward convolution: `out = conv(x, weight) + bias`. All slices are contiguous NCHW.
pub fn conv2d_forward<T: Real>(
    p: &ConvParams,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    threads: usize,
) -> Result<()> {
    let f = "conv2d";
    check_len(f, "input", x, p.input_shape().iter().product())?;
    check_len(f, "weight", weight, p.weight_shape().iter().product())?;
    check_len(f, "output", out, p.output_shape().iter().product())?;
    if let Some(b) = bias {
        check_len(f, "bias", b, p.cout)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    if p.is_direct_depthwise() {
        crate::threads::run(threads, || {
            depthwise_forward(p, x, weight, bias, out, threads)
        });
    } else if crate::winograd::applies(p, std::mem::size_of::<T>()) && !winograd_disabled() {
        crate::threads::run(threads, || {
            crate::winograd::forward(p, x, weight, bias, out, threads)
        });
    } else {
        crate::threads::run(threads, || gemm_forward(p, x, weight, bias, out, threads));
    }
    Ok(())
}

/// Add `bias[o0 + r]` to row `r` of the `rows x n` block at `c` (row stride `ld`), while the
/// block is still in cache.
///
/// # Safety
/// The block must be valid and exclusively ours.
unsafe fn add_bias_rows<T: Real>(
    bias: Option<&[T]>,
    o0: usize,
    rows: usize,
    c: *mut T,
    ld: usize,
    n: usize,
) {
    if let Some(b) = bias {
        for r in 0..rows {
            let v = b[o0 + r];
            for e in std::slice::from_raw_parts_mut(c.add(r * ld), n) {
                *e += v;
            }
        }
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
    gemm_forward(p, x, weight, bias, out, 1)
}

fn gemm_forward<T: Real>(
    p: &ConvParams,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    threads: usize,
) {
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let outp = SyncPtr(out.as_mut_ptr());
    if p.is_pointwise() {
        let tiles = plane_out.div_ceil(POINTWISE_TILE);
        let run = |t: usize| {
            let (img, rest) = (t / (p.groups * tiles), t % (p.groups * tiles));
            let (g, tile) = (rest / tiles, rest % tiles);
            let p0 = tile * POINTWISE_TILE;
            let np = POINTWISE_TILE.min(plane_out - p0);
            let xb = &x[(img * p.cin + g * cin_g) * plane_in..];
            let wb = &weight[g * cout_g * k..];
            // SAFETY: task (img, g, tile) writes rows g*cout_g.. of image img, columns
            // p0..p0+np: disjoint across tasks; the shapes were checked against p.
            unsafe {
                let c = outp.get().add((img * p.cout + g * cout_g) * plane_out + p0);
                gemm_into(
                    cout_g,
                    np,
                    cin_g,
                    c,
                    plane_out,
                    false,
                    wb.as_ptr(),
                    k,
                    1,
                    xb.as_ptr().add(p0),
                    plane_in,
                    1,
                );
                add_bias_rows(bias, g * cout_g, cout_g, c, plane_out, np);
            }
        };
        let n_tasks = p.n * p.groups * tiles;
        if threads <= 1 {
            (0..n_tasks).for_each(run);
        } else {
            (0..n_tasks).into_par_iter().for_each(run);
        }
        return;
    }
    let rows = p.tile_rows(std::mem::size_of::<T>());
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
        // SAFETY: task (img, g, tile) writes output rows g*cout_g.. of image img, pixels
        // oy0*ow .. (oy0+nr)*ow: disjoint across tasks; shapes were checked against p.
        unsafe {
            let c = outp
                .get()
                .add((img * p.cout + g * cout_g) * plane_out + oy0 * p.ow);
            gemm_into(
                cout_g,
                tp,
                k,
                c,
                plane_out,
                false,
                wb.as_ptr(),
                k,
                1,
                col.as_ptr(),
                tp,
                1,
            );
            add_bias_rows(bias, g * cout_g, cout_g, c, plane_out, tp);
        }
    };
    let n_tasks = p.n * p.groups * tiles;
    if threads <= 1 {
        let mut col = Vec::new();
        (0..n_tasks).for_each(|t| run(&mut col, t));
    } else {
        (0..n_tasks).into_par_iter().for_each_init(Vec::new, run);
    }
}

/// Depthwise, stride 1, dilation 1: each output plane is a zero-padded 'valid' correlation of
/// one input plane with one kernel plane, computed by the correlation row kernels over a
/// zero-padded copy of the plane (one small buffer per task).
fn depthwise_forward<T: Real>(
    p: &ConvParams,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let run = |buf: &mut Vec<T>, (idx, o): (usize, &mut [T])| {
        let c = idx % p.cin;
        depthwise_plane(
            &x[idx * plane_in..(idx + 1) * plane_in],
            (p.h, p.w),
            &weight[c * kk..(c + 1) * kk],
            (p.kh, p.kw),
            (p.pt, p.pl),
            o,
            (p.oh, p.ow),
            buf,
        );
        if let Some(b) = bias {
            // the plane was just written: still in cache
            for e in o.iter_mut() {
                *e += b[c];
            }
        }
    };
    if threads <= 1 {
        let mut buf = Vec::new();
        out.chunks_exact_mut(plane_out)
            .enumerate()
            .for_each(|t| run(&mut buf, t));
    } else {
        out.par_chunks_exact_mut(plane_out)
            .enumerate()
            .for_each_init(Vec::new, run);
    }
}

/// `out = correlate(zero_pad(img), ker)` ('valid') for one plane: the padded plane (with room
/// for the row kernels' tile overhang) is built in `buf`, then the rows are computed in pairs.
#[allow(clippy::too_many_arguments)]
fn depthwise_plane<T: Real>(
    img: &[T],
    (h, w): (usize, usize),
    ker: &[T],
    (kh, kw): (usize, usize),
    (pt, pl): (usize, usize),
    out: &mut [T],
    (oh, ow): (usize, usize),
    buf: &mut Vec<T>,
) {
    let wp = ow.div_ceil(MAX_TILE) * MAX_TILE + kw - 1;
    let hp = oh + kh; // one spare row: the two-row kernel reads kh + 1 rows
    buf.clear();
    buf.resize(hp * wp, T::ZERO);
    for y in 0..h {
        let py = y + pt;
        if py < hp {
            let n = w.min(wp.saturating_sub(pl));
            buf[py * wp + pl..py * wp + pl + n].copy_from_slice(&img[y * w..y * w + n]);
        }
    }
    let mut offs = vec![0usize; kh + 1];
    let mut y = 0;
    while y < oh {
        for (a, o) in offs.iter_mut().enumerate() {
            *o = (y + a) * wp;
        }
        let g = Geometry {
            ring: buf,
            offs: &offs,
            keff: ker,
            kh,
            kw,
            stream: false,
        };
        if y + 1 < oh {
            let (o0, o1) = out[y * ow..(y + 2) * ow].split_at_mut(ow);
            T::rows(&g, o0, Some(o1));
            y += 2;
        } else {
            T::rows(&g, &mut out[y * ow..(y + 1) * ow], None);
            y += 1;
        }
    }
}

/// Input gradient: `dx = conv2d_input(dy, weight)`, i.e. the adjoint of the forward map
/// (also the transposed convolution of `dy`). `dx` is overwritten.
pub fn conv2d_backward_input<T: Real>(
    p: &ConvParams,
    dy: &[T],
    weight: &[T],
    dx: &mut [T],
    threads: usize,
) -> Result<()> {
    let f = "conv2d_backward";
    check_len(f, "grad_output", dy, p.output_shape().iter().product())?;
    check_len(f, "weight", weight, p.weight_shape().iter().product())?;
    check_len(f, "grad_input", dx, p.input_shape().iter().product())?;
    if dx.is_empty() {
        return Ok(());
    }
    if p.cout == 0 || p.k_len() == 0 {
        dx.fill(T::ZERO); // no output channel (or no input channel) connects anything
        return Ok(());
    }
    if p.is_direct_depthwise() && p.pt < p.kh && p.pl < p.kw {
        crate::threads::run(threads, || {
            depthwise_backward_input(p, dy, weight, dx, threads)
        });
        return Ok(());
    }
    if let Some(q) = winograd_adjoint::<T>(p) {
        // The input gradient of a 3x3, stride-1 convolution is the 'full' correlation of the
        // output gradient with the kernels rotated by 180 degrees and transposed (in <-> out):
        // a forward 3x3 convolution, computed by Winograd when it is large enough.
        crate::threads::run(threads, || {
            crate::winograd::forward_adjoint(&q, dy, weight, dx, threads)
        });
        return Ok(());
    }
    dx.fill(T::ZERO);
    crate::threads::run(threads, || gemm_backward_input(p, dy, weight, dx, threads));
    Ok(())
}

/// For a 3x3, stride-1, dilation-1, ungrouped convolution with padding at most 2 on each side
/// whose input gradient Winograd would compute: the forward convolution that gives it
/// (`grad_output` in, kernels rotated and transposed, padding `2 - p`).
fn winograd_adjoint<T>(p: &ConvParams) -> Option<ConvParams> {
    let k3s1 = p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1;
    let pads_ok = p.pt <= 2 && p.pb <= 2 && p.pl <= 2 && p.pr <= 2;
    if !k3s1 || !pads_ok || p.groups != 1 || winograd_disabled() {
        return None;
    }
    let q = ConvParams::new(
        "conv2d_backward",
        [p.n, p.cout, p.oh, p.ow],
        [p.cin, p.cout, 3, 3],
        (1, 1),
        (2 - p.pt, 2 - p.pb, 2 - p.pl, 2 - p.pr),
        (1, 1),
        1,
    )
    .ok()?;
    let fits = q.oh == p.h && q.ow == p.w;
    (fits && crate::winograd::applies(&q, std::mem::size_of::<T>())).then_some(q)
}

/// `RCONV_NO_WINOGRAD` set (to anything): 3x3 layers go through im2col like the others
/// (read once).
fn winograd_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RCONV_NO_WINOGRAD").is_some())
}

/// Depthwise input gradient (stride 1, dilation 1): the full correlation of each output
/// gradient plane with its kernel rotated by 180 degrees.
fn depthwise_backward_input<T: Real>(
    p: &ConvParams,
    dy: &[T],
    weight: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let rot: Vec<T> = (0..p.cin)
        .flat_map(|c| {
            weight[c * kk..(c + 1) * kk]
                .iter()
                .rev()
                .copied()
                .collect::<Vec<T>>()
        })
        .collect();
    let run = |buf: &mut Vec<T>, (idx, d): (usize, &mut [T])| {
        let c = idx % p.cin;
        depthwise_plane(
            &dy[idx * plane_out..(idx + 1) * plane_out],
            (p.oh, p.ow),
            &rot[c * kk..(c + 1) * kk],
            (p.kh, p.kw),
            (p.kh - 1 - p.pt, p.kw - 1 - p.pl),
            d,
            (p.h, p.w),
            buf,
        );
    };
    if threads <= 1 {
        let mut buf = Vec::new();
        dx.chunks_exact_mut(plane_in)
            .enumerate()
            .for_each(|t| run(&mut buf, t));
    } else {
        dx.par_chunks_exact_mut(plane_in)
            .enumerate()
            .for_each_init(Vec::new, run);
    }
}

/// Depthwise weight gradient (stride 1, dilation 1): per channel, `dW[i, j]` is the dot product
/// of the output gradient planes with the zero-padded input planes shifted by `(i, j)`,
/// summed over the batch in order (one task per channel: deterministic).
fn depthwise_backward_weight<T: Real>(
    p: &ConvParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let wp = p.w + p.pl + p.pr;
    let hp = p.h + p.pt + p.pb;
    let run = |buf: &mut Vec<T>, (c, dwc): (usize, &mut [T])| {
        dwc.fill(T::ZERO);
        for n in 0..p.n {
            let idx = n * p.cin + c;
            let img = &x[idx * plane_in..(idx + 1) * plane_in];
            let g = &dy[idx * plane_out..(idx + 1) * plane_out];
            buf.clear();
            buf.resize(hp * wp, T::ZERO);
            for y in 0..p.h {
                let o = (y + p.pt) * wp + p.pl;
                buf[o..o + p.w].copy_from_slice(&img[y * p.w..(y + 1) * p.w]);
            }
            for i in 0..p.kh {
                for j in 0..p.kw {
                    let mut lanes = [T::ZERO; 16];
                    let mut tail = T::ZERO;
                    for y in 0..p.oh {
                        let gr = &g[y * p.ow..(y + 1) * p.ow];
                        let xr = &buf[(y + i) * wp + j..(y + i) * wp + j + p.ow];
                        let mut gc = gr.chunks_exact(16);
                        let mut xc = xr.chunks_exact(16);
                        for (a, b) in (&mut gc).zip(&mut xc) {
                            for l in 0..16 {
                                lanes[l] = T::madd(lanes[l], a[l], b[l]);
                            }
                        }
                        for (a, b) in gc.remainder().iter().zip(xc.remainder()) {
                            tail = T::madd(tail, *a, *b);
                        }
                    }
                    let mut s = tail;
                    for v in lanes {
                        s += v;
                    }
                    dwc[i * p.kw + j] += s;
                }
            }
        }
    };
    if threads <= 1 {
        let mut buf = Vec::new();
        dw.chunks_exact_mut(kk)
            .enumerate()
            .for_each(|t| run(&mut buf, t));
    } else {
        dw.par_chunks_exact_mut(kk)
            .enumerate()
            .for_each_init(Vec::new, run);
    }
}

/// Channel chunks per (image, group) for the input gradient: independent of the thread count.
fn channel_chunks(cin_g: usize) -> usize {
    cin_g.clamp(1, 4)
}

fn gemm_backward_input<T: Real>(
    p: &ConvParams,
    dy: &[T],
    weight: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let chunks = channel_chunks(cin_g);
    let per_chunk = cin_g.div_ceil(chunks);
    let dxp = SyncPtr(dx.as_mut_ptr());
    let rows = p.tile_rows(std::mem::size_of::<T>()).max(1);
    let tiles = p.oh.div_ceil(rows);
    let run = |col: &mut Vec<T>, t: usize| {
        let (img, rest) = (t / (p.groups * chunks), t % (p.groups * chunks));
        let (g, ch) = (rest / chunks, rest % chunks);
        let c0 = ch * per_chunk;
        if c0 >= cin_g {
            return;
        }
        let cc = per_chunk.min(cin_g - c0);
        let dyb = &dy[(img * p.cout + g * cout_g) * plane_out..];
        // Rows c0*kk .. (c0+cc)*kk of W_g^T, i.e. columns of W_g.
        let wb = &weight[g * cout_g * k + c0 * kk..];
        let chan0 = img * p.cin + g * cin_g + c0;
        // SAFETY: task (img, g, ch) is the only one touching input channels
        // chan0 .. chan0+cc of image img; the buffer outlives the parallel section.
        let dxb = unsafe {
            std::slice::from_raw_parts_mut(dxp.get().add(chan0 * plane_in), cc * plane_in)
        };
        if p.is_pointwise() {
            // SAFETY: shapes were checked against p; dxb is exclusively ours.
            unsafe {
                gemm_into(
                    cc,
                    plane_in,
                    cout_g,
                    dxb.as_mut_ptr(),
                    plane_in,
                    false,
                    wb.as_ptr(),
                    1,
                    k,
                    dyb.as_ptr(),
                    plane_out,
                    1,
                );
            }
            return;
        }
        for tile in 0..tiles {
            let oy0 = tile * rows;
            let nr = rows.min(p.oh - oy0);
            let tp = nr * p.ow;
            col.resize(cc * kk * tp, T::ZERO);
            // SAFETY: col is a private buffer of cc*kk x tp; A and B are within dy/weight.
            unsafe {
                gemm_into(
                    cc * kk,
                    tp,
                    cout_g,
                    col.as_mut_ptr(),
                    tp,
                    false,
                    wb.as_ptr(),
                    1,
                    k,
                    dyb.as_ptr().add(oy0 * p.ow),
                    plane_out,
                    1,
                );
            }
            col2im_add(p, col, oy0, nr, cc, dxb);
        }
    };
    let n_tasks = p.n * p.groups * chunks;
    if threads <= 1 {
        let mut col = Vec::new();
        (0..n_tasks).for_each(|t| run(&mut col, t));
    } else {
        (0..n_tasks).into_par_iter().for_each_init(Vec::new, run);
    }
}

/// Weight gradient: `dw = conv2d_weight(x, dy)`, summed over the batch. `dw` is overwritten.
pub fn conv2d_backward_weight<T: Real>(
    p: &ConvParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    threads: usize,
) -> Result<()> {
    let f = "conv2d_backward";
    check_len(f, "input", x, p.input_shape().iter().product())?;
    check_len(f, "grad_output", dy, p.output_shape().iter().product())?;
    check_len(f, "grad_weight", dw, p.weight_shape().iter().product())?;
    dw.fill(T::ZERO);
    if p.n == 0 || dw.is_empty() || p.oh * p.ow == 0 {
        return Ok(());
    }
    if p.is_direct_depthwise() {
        crate::threads::run(threads, || depthwise_backward_weight(p, x, dy, dw, threads));
        return Ok(());
    }
    let partials = crate::threads::run(threads, || gemm_backward_weight(p, x, dy, threads));
    for part in partials {
        for (d, s) in dw.iter_mut().zip(part) {
            *d += s;
        }
    }
    Ok(())
}

/// Partial sums over fixed slices of the task list (the slicing never depends on the thread
/// count, and the partials are added in order, so the result is deterministic).
const WEIGHT_PARTIALS: usize = 8;

fn gemm_backward_weight<T: Real>(p: &ConvParams, x: &[T], dy: &[T], threads: usize) -> Vec<Vec<T>> {
    let (cin_g, cout_g, k) = (p.cin_g(), p.cout_g(), p.k_len());
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let wlen = p.cout * k;
    let pointwise = p.is_pointwise();
    let rows = p.tile_rows(std::mem::size_of::<T>());
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
            let dyb = &dy[(img * p.cout + g * cout_g) * plane_out..];
            let c = acc[g * cout_g * k..].as_mut_ptr();
            if pointwise {
                let p0 = tile * POINTWISE_TILE;
                let np = POINTWISE_TILE.min(plane_out - p0);
                // SAFETY: acc is private; A = dy tile (cout_g x np), B = x tile transposed.
                unsafe {
                    gemm_into(
                        cout_g,
                        cin_g,
                        np,
                        c,
                        k,
                        true,
                        dyb.as_ptr().add(p0),
                        plane_out,
                        1,
                        xb.as_ptr().add(p0),
                        1,
                        plane_in,
                    );
                }
                continue;
            }
            let oy0 = tile * rows;
            let nr = rows.min(p.oh - oy0);
            let tp = nr * p.ow;
            col.resize(k * tp, T::ZERO);
            im2col(p, xb, oy0, nr, &mut col);
            // SAFETY: acc is private; A = dy tile (cout_g x tp), B = col^T (tp x k).
            unsafe {
                gemm_into(
                    cout_g,
                    k,
                    tp,
                    c,
                    k,
                    true,
                    dyb.as_ptr().add(oy0 * p.ow),
                    plane_out,
                    1,
                    col.as_ptr(),
                    1,
                    tp,
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes_follow_torch() {
        // d2l shapes on 8x8
        let p = |k: (usize, usize), pad: (usize, usize), s: (usize, usize)| {
            ConvParams::new(
                "t",
                [1, 1, 8, 8],
                [1, 1, k.0, k.1],
                s,
                (pad.0, pad.0, pad.1, pad.1),
                (1, 1),
                1,
            )
            .map(|p| (p.oh, p.ow))
        };
        assert_eq!(p((3, 3), (1, 1), (1, 1)).unwrap(), (8, 8));
        assert_eq!(p((5, 3), (2, 1), (1, 1)).unwrap(), (8, 8));
        assert_eq!(p((3, 3), (1, 1), (2, 2)).unwrap(), (4, 4));
        assert_eq!(p((3, 5), (0, 1), (3, 4)).unwrap(), (2, 2));
        assert!(p((9, 3), (0, 0), (1, 1)).is_err());
        // dilation: effective kernel 5 on 8 + 2 -> 6
        let d = ConvParams::new(
            "t",
            [1, 1, 8, 8],
            [1, 1, 3, 3],
            (1, 1),
            (1, 1, 1, 1),
            (2, 2),
            1,
        )
        .unwrap();
        assert_eq!((d.oh, d.ow), (6, 6));
    }

    #[test]
    fn grouping_errors() {
        assert!(ConvParams::new(
            "t",
            [1, 6, 5, 5],
            [4, 3, 3, 3],
            (1, 1),
            (0, 0, 0, 0),
            (1, 1),
            3
        )
        .is_err());
        assert!(ConvParams::new(
            "t",
            [1, 6, 5, 5],
            [6, 2, 3, 3],
            (1, 1),
            (0, 0, 0, 0),
            (1, 1),
            4
        )
        .is_err());
        assert!(ConvParams::new(
            "t",
            [1, 6, 5, 5],
            [6, 3, 3, 3],
            (1, 1),
            (0, 0, 0, 0),
            (1, 1),
            3
        )
        .is_err());
        assert!(ConvParams::new(
            "t",
            [1, 6, 5, 5],
            [6, 2, 3, 3],
            (0, 1),
            (0, 0, 0, 0),
            (1, 1),
            3
        )
        .is_err());
        assert!(ConvParams::new(
            "t",
            [1, 6, 5, 5],
            [6, 2, 3, 3],
            (1, 1),
            (0, 0, 0, 0),
            (1, 1),
            3
        )
        .is_ok());
    }
}
