//! Winograd F(2x2, 3x3) forward convolution for 3x3, stride-1, dilation-1, ungrouped layers.
//!
//! Each 2x2 block of outputs ("tile") is computed from a 4x4 block of input through
//! `Y = A^T [ (G g G^T) . (B^T d B) ] A`: the products of one tile position, summed over the
//! input channels, are 16 independent matrix products `U_xi (Cout x Cin) * V_xi (Cin x tiles)`,
//! 2.25 times fewer multiplications than the direct 3x3 (im2col) product. Tiles are processed
//! in blocks of a bounded size (transform, 16 GEMMs, inverse transform), one block per task, so
//! the workspace stays small and the result does not depend on the thread count.

use rayon::prelude::*;

use crate::base::gemm::{gemm_into, MatMut, MatRef};
use crate::base::par::{for_each_chunk, for_each_task, DisjointSlice};
use crate::base::real::{relu, Real};
use crate::base::simd::simd_twin;
use crate::nn::conv::params::{ConvParams, Operands};

/// Target bytes of one block's transformed input (or output): about the L2 cache.
const BLOCK_BYTES: usize = 1 << 20;

/// Whether [`forward`] computes this convolution, for elements of `size` bytes: 3x3, stride
/// 1, dilation 1, ungrouped, and large enough that the 16 products are efficient GEMMs
/// (measured on the development machine: at least 32 channels in and out, at least 32 tiles
/// per block, at least 48 tiles per image; smaller layers ran faster through im2col).
pub(crate) fn applies(p: &ConvParams, size: usize) -> bool {
    let shape_ok = p.kh == 3
        && p.kw == 3
        && p.sh == 1
        && p.sw == 1
        && p.dh == 1
        && p.dw == 1
        && p.groups == 1
        && p.oh >= 2
        && p.ow >= 2;
    if !shape_ok || p.cin.min(p.cout) < 32 {
        return false;
    }
    // Per image, not per batch: a sample's result must not depend on the rest of the batch.
    let per_image = p.oh.div_ceil(2) * p.ow.div_ceil(2);
    tiles_per_block(p, size) >= 32 && per_image >= 48
}

/// Tiles per block: the transformed input or output of a block stays near [`BLOCK_BYTES`].
fn tiles_per_block(p: &ConvParams, size: usize) -> usize {
    (BLOCK_BYTES / (16 * p.cin.max(p.cout) * size)).clamp(16, 512)
}

/// `U[co][xi][ci] = (G g G^T)[xi]` for every 3x3 kernel `g = weight[co][ci]`, one output
/// channel per task. The nine taps of all input channels are first laid out as nine
/// contiguous rows, so that the transform runs along `ci` in vectors. With `adjoint`,
/// `weight` is `(cin, cout, 3, 3)` and `g` is its kernel `[ci][co]` rotated by 180 degrees
/// (the kernels of an input gradient), read in place.
fn transform_weights<T: Real>(
    p: &ConvParams,
    weight: &[T],
    adjoint: bool,
    threads: usize,
) -> Vec<T> {
    let (cin, cout) = (p.cin, p.cout);
    let mut u = vec![T::ZERO; 16 * cout * cin];
    let k = WeightKernels {
        cin,
        cout,
        weight,
        adjoint,
    };
    let one = |taps: &mut Vec<T>, (co, uc): (usize, &mut [T])| transform_channel(&k, co, taps, uc);
    for_each_chunk(threads > 1, &mut u, 16 * cin, Vec::new, one);
    u
}

/// The kernels being transformed (see [`transform_weights`]).
struct WeightKernels<'a, T> {
    cin: usize,
    cout: usize,
    weight: &'a [T],
    adjoint: bool,
}

simd_twin! {
    /// The 16 rows `U[co][xi][..]` of output channel `co`, into `uc`.
    fn transform_channel<T: Real>(
        k: &WeightKernels<'_, T>,
        co: usize,
        taps: &mut Vec<T>,
        uc: &mut [T],
    ) {
        let (cin, cout, weight, adjoint) = (k.cin, k.cout, k.weight, k.adjoint);
        let half = T::ONE / (T::ONE + T::ONE);
        taps.clear();
        taps.resize(9 * cin, T::ZERO);
        for ci in 0..cin {
            let at = 9 * if adjoint {
                ci * cout + co
            } else {
                co * cin + ci
            };
            for (k, &v) in weight[at..at + 9].iter().enumerate() {
                let k = if adjoint { 8 - k } else { k };
                taps[k * cin + ci] = v;
            }
        }
        let tap = |k: usize| &taps[k * cin..(k + 1) * cin];
        // (G g) for kernel row combination r, kernel column c: g[c], (g0+g1+g2)/2, (g0-g1+g2)/2, g2
        // over the rows; then the same combinations over the columns give U[r * 4 + j].
        for r in 0..4 {
            let col = |c: usize, ci: usize| -> T {
                let (g0, g1, g2) = (tap(c)[ci], tap(3 + c)[ci], tap(6 + c)[ci]);
                match r {
                    0 => g0,
                    1 => (g0 + g1 + g2) * half,
                    2 => (g0 - g1 + g2) * half,
                    _ => g2,
                }
            };
            let rows = &mut uc[r * 4 * cin..(r + 1) * 4 * cin];
            let (u0, rest) = rows.split_at_mut(cin);
            let (u1, rest) = rest.split_at_mut(cin);
            let (u2, u3) = rest.split_at_mut(cin);
            for ci in 0..cin {
                let (a, b, c) = (col(0, ci), col(1, ci), col(2, ci));
                u0[ci] = a;
                u1[ci] = (a + b + c) * half;
                u2[ci] = (a - b + c) * half;
                u3[ci] = c;
            }
        }
    }
}

/// Geometry of the tiling: a block holds whole rows of tiles of one image, so that a
/// sample's result does not depend on the rest of the batch.
#[derive(Clone, Copy)]
struct Tiles {
    th: usize,
    tw: usize,
    /// Tile rows per block.
    block_rows: usize,
    /// Blocks per image.
    per_image: usize,
}

impl Tiles {
    fn new<T>(p: &ConvParams) -> Self {
        let (th, tw) = (p.oh.div_ceil(2), p.ow.div_ceil(2));
        let tiles = tiles_per_block(p, std::mem::size_of::<T>());
        // at least two blocks per image when each still holds 32 tiles or more: a single
        // image then keeps two threads busy (smaller blocks make inefficient products)
        let half = th.div_ceil(2);
        let cap = if half * tw >= 32 { half } else { th };
        let block_rows = (tiles / tw).clamp(1, cap.max(1));
        Tiles {
            th,
            tw,
            block_rows,
            per_image: th.div_ceil(block_rows),
        }
    }

    /// Block `b`: its first tile row (counted over the batch) and number of tile rows.
    fn block(&self, b: usize) -> (usize, usize) {
        let (img, j) = (b / self.per_image, b % self.per_image);
        let first = j * self.block_rows;
        (img * self.th + first, self.block_rows.min(self.th - first))
    }
}

/// Scratch of one task.
struct Scratch<T> {
    v: Vec<T>,
    m: Vec<T>,
    /// Row buffers of the input transform (four padded input rows, four combined rows split
    /// into even and odd columns) and of the output transform.
    rows: Vec<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            v: Vec::new(),
            m: Vec::new(),
            rows: Vec::new(),
        }
    }
}

/// `V[xi][ci][t] = (B^T d B)[xi]` for the tile rows `r0 .. r0 + nr` (d: the 4x4 input patch,
/// zero outside the image). Separable: the four input rows of a tile row are combined
/// first (whole rows, contiguous), then each combined row, split into even and odd columns,
/// gives the four column combinations for every tile at once.
#[inline(always)]
fn transform_input<T: Real>(
    p: &ConvParams,
    tl: Tiles,
    x: &[T],
    r0: usize,
    nr: usize,
    v: &mut [T],
    rows: &mut Vec<T>,
) {
    let (h, w, cin, tw) = (p.h, p.w, p.cin, tl.tw);
    let nt = nr * tw;
    let plane = h * w;
    let stride_xi = cin * nt;
    // per combined row: tw + 1 even and tw + 1 odd columns (padded columns 0 .. 2 tw + 2)
    let half = tw + 1;
    rows.clear();
    rows.resize(4 * 2 * half + 4 * (2 * half), T::ZERO);
    let (split, line) = rows.split_at_mut(8 * half);
    for ci in 0..cin {
        for lr in 0..nr {
            let g = r0 + lr;
            let (img, ty) = (g / tl.th, g % tl.th);
            let base = &x[(img * cin + ci) * plane..(img * cin + ci + 1) * plane];
            let y0 = (2 * ty) as isize - p.pt as isize;
            // the four input rows, zero-padded to columns -pl .. -pl + 2 tw + 2
            let mut d: [&[T]; 4] = [&[]; 4];
            let (l0, l1) = line.split_at_mut(2 * 2 * half);
            let (la, lb) = l0.split_at_mut(2 * half);
            let (lc, ld) = l1.split_at_mut(2 * half);
            for (r, buf) in [la, lb, lc, ld].into_iter().enumerate() {
                let yy = y0 + r as isize;
                buf.fill(T::ZERO);
                if yy >= 0 && yy < h as isize {
                    let src = &base[yy as usize * w..(yy as usize + 1) * w];
                    // padded column c holds input column c - pl
                    let c_lo = p.pl.min(buf.len());
                    let c_hi = (p.pl + w).min(buf.len());
                    if c_hi > c_lo {
                        buf[c_lo..c_hi].copy_from_slice(&src[..c_hi - c_lo]);
                    }
                }
                d[r] = buf;
            }
            // B^T d (four combined rows, whole rows at once), each split into its even and
            // odd columns; then (B^T d) B for every tile of the row: columns 2tx .. 2tx + 3
            // are even[tx], odd[tx], even[tx + 1], odd[tx + 1]. Every loop runs over slices
            // of one known length, so the bounds checks go and the loops vectorise.
            let n2 = 2 * half;
            let (a, b, cc, dd) = (&d[0][..n2], &d[1][..n2], &d[2][..n2], &d[3][..n2]);
            for i in 0..4 {
                let (ev, od) = split[2 * i * half..(2 * i + 2) * half].split_at_mut(half);
                let pairs = a.chunks_exact(2).zip(b.chunks_exact(2));
                let pairs = pairs.zip(cc.chunks_exact(2).zip(dd.chunks_exact(2)));
                for ((e, o), ((pa, pb), (pc, pd))) in ev.iter_mut().zip(od.iter_mut()).zip(pairs) {
                    let (x0, x1) = match i {
                        0 => (pa[0] - pc[0], pa[1] - pc[1]),
                        1 => (pb[0] + pc[0], pb[1] + pc[1]),
                        2 => (pc[0] - pb[0], pc[1] - pb[1]),
                        _ => (pb[0] - pd[0], pb[1] - pd[1]),
                    };
                    *e = x0;
                    *o = x1;
                }
                let (ev, od) = (
                    &split[2 * i * half..(2 * i + 1) * half],
                    &split[(2 * i + 1) * half..(2 * i + 2) * half],
                );
                let (e0, e1, o0, o1) = (&ev[..tw], &ev[1..tw + 1], &od[..tw], &od[1..tw + 1]);
                let at = |j: usize| (i * 4 + j) * stride_xi + ci * nt + lr * tw;
                let (v0, rest) = v[at(0)..].split_at_mut(stride_xi);
                let (v1, rest) = rest.split_at_mut(stride_xi);
                let (v2, v3) = rest.split_at_mut(stride_xi);
                let (v0, v1, v2, v3) = (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                for tx in 0..tw {
                    v0[tx] = e0[tx] - e1[tx];
                    v1[tx] = o0[tx] + e1[tx];
                    v2[tx] = e1[tx] - o0[tx];
                    v3[tx] = o0[tx] - o1[tx];
                }
            }
        }
    }
}

/// One convolution by transformed kernels: what every block shares.
struct Job<'a, T> {
    p: &'a ConvParams,
    tl: Tiles,
    x: &'a [T],
    /// `U[co][xi][ci]`.
    u: &'a [T],
    bias: Option<&'a [T]>,
    /// A ReLU fused into the output transform.
    relu: bool,
    out: DisjointSlice<'a, T>,
    /// One block at a time, its 16 products in parallel.
    inner_parallel: bool,
}

/// Inverse transform of `M[xi][co][t]` for the tile rows `r0 .. r0 + nr` into the output,
/// plus the bias: per tile row and output channel, `A^T q` over whole rows of tiles
/// (contiguous), then the two output columns of every tile, interleaved into the output row.
///
/// # Safety
/// These tile rows of the output are written by nobody else meanwhile.
#[inline(always)]
unsafe fn transform_output<T: Real>(
    job: &Job<'_, T>,
    m: &[T],
    (r0, nr): (usize, usize),
    tmp: &mut Vec<T>,
) {
    let (p, tl) = (job.p, job.tl);
    let (oh, ow, cout, tw) = (p.oh, p.ow, p.cout, tl.tw);
    let nt = nr * tw;
    let stride_xi = cout * nt;
    tmp.clear();
    tmp.resize(6 * tw, T::ZERO);
    let (s, y) = tmp.split_at_mut(4 * tw);
    let (y0, y1) = y.split_at_mut(tw);
    for co in 0..cout {
        let b = job.bias.map_or(T::ZERO, |b| b[co]);
        for lr in 0..nr {
            let g = r0 + lr;
            let (img, ty) = (g / tl.th, g % tl.th);
            let q = |k: usize| {
                let at = k * stride_xi + co * nt + lr * tw;
                &m[at..at + tw]
            };
            for i in 0..2 {
                let oy = 2 * ty + i;
                if oy >= oh {
                    break;
                }
                // row i of A^T q, for the four columns c of every tile
                for c in 0..4 {
                    let sc = &mut s[c * tw..(c + 1) * tw];
                    let (q1, q2) = (q(4 + c), q(8 + c));
                    if i == 0 {
                        for (((e, &a), &b1), &b2) in sc.iter_mut().zip(q(c)).zip(q1).zip(q2) {
                            *e = a + b1 + b2;
                        }
                    } else {
                        for (((e, &b1), &b2), &d) in sc.iter_mut().zip(q1).zip(q2).zip(q(12 + c)) {
                            *e = b1 - b2 - d;
                        }
                    }
                }
                let (s0, rest) = s.split_at(tw);
                let (s1, rest) = rest.split_at(tw);
                let (s2, s3) = rest.split_at(tw);
                for ((((e0, e1), &a), &b1), (&b2, &d)) in y0
                    .iter_mut()
                    .zip(y1.iter_mut())
                    .zip(s0)
                    .zip(s1)
                    .zip(s2.iter().zip(s3))
                {
                    *e0 = a + b1 + b2 + b;
                    *e1 = b1 - b2 - d + b;
                }
                if job.relu {
                    for e in y0.iter_mut().chain(y1.iter_mut()) {
                        *e = relu(*e);
                    }
                }
                // SAFETY: output row oy of channel co of image img is in this block's tile
                // rows, which no other task writes (the caller's contract).
                let row = unsafe { job.out.range(((img * cout + co) * oh + oy) * ow, ow) };
                let (pairs, last) = row.split_at_mut(ow / 2 * 2);
                for ((pair, &a), &c) in pairs.chunks_exact_mut(2).zip(y0.iter()).zip(y1.iter()) {
                    pair[0] = a;
                    pair[1] = c;
                }
                if let Some(e) = last.first_mut() {
                    *e = y0[ow / 2];
                }
            }
        }
    }
}

/// One block: input transform, the 16 products, output transform.
///
/// # Safety
/// No other task runs block `b` of this job meanwhile (blocks write disjoint tile rows).
#[inline(always)]
unsafe fn block_impl<T: Real>(job: &Job<'_, T>, b: usize, sc: &mut Scratch<T>) {
    let (p, tl, u) = (job.p, job.tl, job.u);
    let (cin, cout) = (p.cin, p.cout);
    let (r0, nr) = tl.block(b);
    let nt = nr * tl.tw;
    sc.v.resize(16 * cin * nt, T::ZERO);
    sc.m.resize(16 * cout * nt, T::ZERO);
    transform_input(p, tl, job.x, r0, nr, &mut sc.v, &mut sc.rows);
    let v = &sc.v;
    // M_xi (cout x nt) = U_xi (cout x cin, rows 16 cin apart) * V_xi (cin x nt)
    let product = |(xi, mx): (usize, &mut [T])| {
        gemm_into(
            MatMut::new(mx, (cout, nt), nt),
            false,
            MatRef::new(&u[xi * cin..], (cout, cin), (16 * cin, 1)),
            MatRef::new(&v[xi * cin * nt..], (cin, nt), (nt, 1)),
        )
    };
    let m = &mut sc.m[..16 * cout * nt];
    if job.inner_parallel {
        m.par_chunks_mut(cout * nt).enumerate().for_each(product);
    } else {
        m.chunks_mut(cout * nt).enumerate().for_each(product);
    }
    // SAFETY: block b's tile rows are ours (the caller's contract).
    unsafe { transform_output(job, &sc.m, (r0, nr), &mut sc.rows) };
}

simd_twin! {
    /// [`block_impl`], compiled for AVX2 where the CPU has it (the transforms are long runs
    /// of vector adds).
    ///
    /// # Safety
    /// As [`block_impl`].
    unsafe fn block<T: Real>(job: &Job<'_, T>, b: usize, sc: &mut Scratch<T>) = block_impl;
}

/// The forward convolution of `p` (see [`applies`]) by Winograd F(2x2, 3x3).
pub(crate) fn forward<T: Real>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    let u = transform_weights(p, op.weight, false, threads);
    convolve(p, op.x, &u, (op.bias, op.relu), out, threads)
}

/// The 3x3 convolution `p` whose kernels are those of `weight` `(p.cin, p.cout, 3, 3)`
/// rotated by 180 degrees and transposed: the input gradient of the convolution with
/// `weight`, when `p` takes its output gradient with the complementary padding.
pub(crate) fn forward_adjoint<T: Real>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let u = transform_weights(p, weight, true, threads);
    convolve(p, grad_output, &u, (None, false), grad_input, threads)
}

/// The convolution with transformed kernels `u`.
fn convolve<T: Real>(
    p: &ConvParams,
    x: &[T],
    u: &[T],
    (bias, relu): (Option<&[T]>, bool),
    out: &mut [T],
    threads: usize,
) {
    let tl = Tiles::new::<T>(p);
    let blocks = p.n * tl.per_image;
    assert!(
        out.len() >= p.n * p.cout * p.oh * p.ow,
        "winograd: output too short"
    );
    let job = Job {
        p,
        tl,
        x,
        u,
        bias,
        relu,
        out: DisjointSlice::new(out),
        // Few blocks (a small batch of small images): one block at a time, its 16 products
        // in parallel; otherwise the blocks in parallel. The same arithmetic either way.
        inner_parallel: threads > 1 && blocks < threads,
    };
    // SAFETY: each block index is run by one task only, and blocks write disjoint tile rows.
    let run = |sc: &mut Scratch<T>, b: usize| unsafe { block(&job, b, sc) };
    let parallel = threads > 1 && !job.inner_parallel;
    for_each_task(parallel, blocks, Scratch::default, run);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    /// Winograd equals the im2col path to rounding, over odd and even sizes, every padding
    /// (asymmetric too), bias or none, both element types, serial and parallel.
    #[test]
    fn matches_im2col() {
        let mut seed = 7;
        let mut checked = 0;
        for case in 0..120 {
            let n = 1 + case % 3;
            let (cin, cout) = (1 + case % 5, 1 + (case / 5) % 4);
            let (h, w) = (1 + (case * 7) % 9, 1 + (case * 5) % 11);
            let pads = (case % 3, (case / 3) % 3, (case / 2) % 3, (case / 4) % 3);
            let Ok(p) = ConvParams::new([n, cin, h, w], [cout, cin, 3, 3], (1, 1), pads, (1, 1), 1)
            else {
                continue;
            };
            let x: Vec<f64> = (0..n * cin * h * w).map(|_| lcg(&mut seed)).collect();
            let wt: Vec<f64> = (0..cout * cin * 9).map(|_| lcg(&mut seed)).collect();
            let bias: Vec<f64> = (0..cout).map(|_| lcg(&mut seed)).collect();
            let b = (case % 2 == 0).then_some(&bias[..]);
            let len = n * cout * p.oh * p.ow;
            let mut want = vec![0.0; len];
            crate::nn::conv::im2col::gemm_forward_for_tests(&p, &x, &wt, b, &mut want);
            let mut serial = vec![f64::NAN; len];
            let op = Operands {
                bias: b,
                ..Operands::plain(&x[..], &wt[..])
            };
            forward(&p, op, &mut serial, 1);
            for (g, e) in serial.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-12 * (1.0 + e.abs()),
                    "case {case}: {g} {e}"
                );
            }
            // blocks in parallel, or one block's 16 products in parallel: the same numbers
            for threads in [2, 16] {
                let mut got = vec![f64::NAN; len];
                crate::base::threads::run(threads, || forward(&p, op, &mut got, threads));
                assert!(got == serial, "case {case}: {threads} threads differ");
            }
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
            let mut got = vec![f32::NAN; len];
            let op = Operands {
                bias: b.map(|_| &b32[..]),
                ..Operands::plain(&x32[..], &w32[..])
            };
            forward(&p, op, &mut got, 1);
            for (g, e) in got.iter().zip(&want) {
                let tol = 1e-5 * (1.0 + e.abs()) * (cin as f64 * 9.0);
                assert!((*g as f64 - e).abs() <= tol, "case {case} f32: {g} {e}");
            }
            checked += 1;
        }
        assert!(checked > 80, "only {checked} cases");
    }
}
