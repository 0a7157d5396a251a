//! Depthwise convolution (groups == channels, stride 1, dilation 1) through the direct
//! correlation row kernels of the signal engine.

use super::params::{ConvParams, Operands};
use crate::base::par::for_each_chunk;
use crate::base::real::Real;
use crate::signal::row_kernels::{Geometry, RowKernel, MAX_TILE};

/// Depthwise, stride 1, dilation 1: each output plane is a zero-padded 'valid' correlation of
/// one input plane with one kernel plane, computed by the correlation row kernels over a
/// zero-padded copy of the plane (one small buffer per task).
pub(crate) fn depthwise_forward<T: Real + RowKernel>(
    p: &ConvParams,
    op: Operands<'_, T>,
    out: &mut [T],
    threads: usize,
) {
    let (x, weight) = (op.x, op.weight);
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let geom = PlaneGeom {
        input: (p.h, p.w),
        kernel: (p.kh, p.kw),
        pad: (p.pt, p.pl),
        output: (p.oh, p.ow),
    };
    let run = |buf: &mut Vec<T>, (idx, o): (usize, &mut [T])| {
        let c = idx % p.cin;
        let img = &x[idx * plane_in..(idx + 1) * plane_in];
        depthwise_plane(&geom, img, &weight[c * kk..(c + 1) * kk], o, buf);
        op.finish_row(c, o); // the plane was just written: still in cache
    };
    for_each_chunk(threads > 1, out, plane_out, Vec::new, run);
}

/// The shapes of one plane's correlation in [`depthwise_plane`].
struct PlaneGeom {
    input: (usize, usize),
    kernel: (usize, usize),
    /// Zeros before the first row and column.
    pad: (usize, usize),
    output: (usize, usize),
}

/// `out = correlate(zero_pad(img), ker)` ('valid') for one plane: the padded plane (with room
/// for the row kernels' tile overhang) is built in `buf`, then the rows are computed in pairs.
fn depthwise_plane<T: Real + RowKernel>(
    geom: &PlaneGeom,
    img: &[T],
    ker: &[T],
    out: &mut [T],
    buf: &mut Vec<T>,
) {
    let ((h, w), (kh, kw)) = (geom.input, geom.kernel);
    let ((pt, pl), (oh, ow)) = (geom.pad, geom.output);
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

/// Depthwise input gradient (stride 1, dilation 1): the full correlation of each output
/// gradient plane with its kernel rotated by 180 degrees.
pub(crate) fn depthwise_backward_input<T: Real + RowKernel>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
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
    let geom = PlaneGeom {
        input: (p.oh, p.ow),
        kernel: (p.kh, p.kw),
        pad: (p.kh - 1 - p.pt, p.kw - 1 - p.pl),
        output: (p.h, p.w),
    };
    let run = |buf: &mut Vec<T>, (idx, d): (usize, &mut [T])| {
        let c = idx % p.cin;
        let img = &grad_output[idx * plane_out..(idx + 1) * plane_out];
        depthwise_plane(&geom, img, &rot[c * kk..(c + 1) * kk], d, buf);
    };
    for_each_chunk(threads > 1, grad_input, plane_in, Vec::new, run);
}

/// Depthwise weight gradient (stride 1, dilation 1): per channel, `dW[i, j]` is the dot product
/// of the output gradient planes with the zero-padded input planes shifted by `(i, j)`,
/// summed over the batch in order (one task per channel: deterministic).
pub(crate) fn depthwise_backward_weight<T: Real + RowKernel>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
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
            let g = &grad_output[idx * plane_out..(idx + 1) * plane_out];
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
    for_each_chunk(threads > 1, grad_weight, kk, Vec::new, run);
}
