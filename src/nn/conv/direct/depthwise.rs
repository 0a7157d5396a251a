//! Depthwise convolution (`groups == cin == cout`, one kernel plane per channel): forward,
//! input gradient and weight gradient for any stride, dilation and zero padding, in a
//! channel-blocked layout (oneDNN's `nChw16c`).
//!
//! Each task takes one block of `LANES` channels of one image (the weight gradient: of a
//! fixed part of the batch) and a block of rows. It converts the pixels it reads into a
//! zero-padded buffer `[row][column][LANES]`, one vector per pixel, with in-register
//! transposes ([`Vector::transpose`]), computes in that layout with weights as vectors of
//! `LANES` channels, and transposes its result back to NCHW:
//! - forward ([`tile`]): `RW` output pixels of one row in `RW` accumulators; each tap
//!   loads one weight vector and does `RW` FMAs on input vectors `sw` pixels apart (stride 2
//!   needs no deinterleave), then the bias and the fused ReLU;
//! - input gradient ([`tile`] too): the pixels of one input-gradient row are taken by
//!   column phase `(ix + pl) mod sw`; the taps of that phase read consecutive vectors of the
//!   padded output gradient;
//! - weight gradient ([`weight_row`]): one accumulator per tap (up to [`TAPS`] per pass)
//!   over a row of output-gradient pixels, added to the task's sums row after row; the parts
//!   of the batch are summed in order at the end.
//!
//! The padding is physically present in the buffers: no kernel multiplies an element
//! outside a tap's window. Every element is computed in a fixed order whatever the blocking
//! and the thread count: results are bit-identical for every thread count.

use super::to_planes;
use crate::base::par::{for_each_chunk, for_each_task, DisjointSlice};
use crate::base::real::Real;
use crate::base::scalar::Elem;
use crate::base::simd::{dispatch_at, lanes, level, Level, SimdReal, Vector, WithVector};
use crate::nn::conv::params::{ConvParams, Operands};

/// Output pixels per forward and input-gradient tile (accumulators; a row's last pixels take
/// tiles of 4, 2 and 1).
const RW: usize = 8;
/// Taps per pass of the weight gradient (9 accumulators: a 3x3 kernel in one pass).
const TAPS: usize = 9;
/// Bytes of a task's blocked input buffer above which it takes fewer rows.
const BUF_BYTES: usize = 256 * 1024;
/// Parts of the batch whose weight gradients are computed apart and summed in order (a fixed
/// number: the result does not depend on the thread count).
const PARTS: usize = 4;

/// Whether this engine computes the layer: depthwise with channel multiplier 1 (any
/// stride, dilation and zero padding). `_elem` (the element size) is for the cost model; the
/// rule does not depend on it.
pub fn applies(p: &ConvParams, _elem: usize) -> bool {
    p.is_depthwise() && p.kh * p.kw > 0
}

/// `v[..n]`, grown (with zeros) if shorter; the callers write every element they read.
fn sized<T: Real>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::ZERO);
    }
    &mut v[..n]
}

/// Copies `nc` planes of `h x w` pixels (`ps` apart in `src`) into the blocked buffer
/// `buf[rows][cols][LANES]`: `buf[i][j][k] = src[k ps + (r0 + i) w + c0 + j]` where that
/// pixel exists, zero where it does not; lanes `k >= nc` hold anything.
///
/// The source rows are read as one run of pixels, `LANES` at a time through
/// [`Vector::transpose`] (reading the next channels' planes for a partial block, never past
/// `src`), so narrow rows keep every lane busy.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fill<V: Vector>(
    src: &[V::Elem],
    ps: usize,
    (h, w): (usize, usize),
    nc: usize,
    (r0, c0): (isize, isize),
    (rows, cols): (usize, usize),
    buf: &mut [V::Elem],
) {
    let l = V::LANES;
    assert!((1..=l).contains(&nc) && l <= 16 && buf.len() >= rows * cols * l);
    assert!(src.len() >= (nc - 1) * ps + h * w);
    let zero = V::Elem::ZERO;
    // buffer columns j0 .. j1 hold source columns x0 .. x1
    let j0 = (-c0).clamp(0, cols as isize) as usize;
    let j1 = (w as isize - c0).clamp(j0 as isize, cols as isize) as usize;
    let x0 = (c0 + j0 as isize).max(0) as usize;
    let x1 = x0 + (j1 - j0);
    // source rows ya .. yb are buffer rows ya - r0 ..
    let ya = r0.clamp(0, h as isize) as usize;
    let yb = (r0 + rows as isize).clamp(ya as isize, h as isize) as usize;
    for (i, row) in buf[..rows * cols * l]
        .chunks_exact_mut(cols * l)
        .enumerate()
    {
        let y = r0 + i as isize;
        if y < ya as isize || y >= yb as isize || j0 == j1 {
            row.fill(zero);
        } else {
            row[..j0 * l].fill(zero);
            row[j1 * l..].fill(zero);
        }
    }
    if j0 == j1 {
        return;
    }
    // the buffer offset of source pixel (y, x), x0 <= x < x1
    let at = |y: usize, x: usize| (((y as isize - r0) as usize) * cols + j0 + x - x0) * l;
    let (sp, bp) = (src.as_ptr(), buf.as_mut_ptr());
    let mut tmp = [zero; 256];
    let (mut q, end) = (ya * w, yb * w);
    while q < end {
        let (y, x) = (q / w, q % w);
        let m = l.min(end - q);
        if (l - 1) * ps + q + l > src.len() {
            // the last pixels of the last planes: one by one
            for p in q..end {
                let (y, x) = (p / w, p % w);
                if (x0..x1).contains(&x) {
                    for k in 0..nc {
                        buf[at(y, x) + k] = src[k * ps + p];
                    }
                }
            }
            break;
        }
        // SAFETY: the level's features are on (reached from `dispatch_at`); the transposes
        // read `src[k ps + q ..][..l]` for `k < l`, inside `src` (checked above); the direct
        // one writes `l` pixels of one buffer row inside its columns `j0 .. j1` (`x0 <= x`,
        // `x + l <= x1`), the copies one pixel each at `at(y, x)`, for `x0 <= x < x1` and
        // `ya <= y < yb` (rows of the buffer).
        unsafe {
            if x >= x0 && x + l <= x1 && m == l {
                V::transpose(sp.add(q), ps, bp.add(at(y, x)), l);
            } else {
                V::transpose(sp.add(q), ps, tmp.as_mut_ptr(), l);
                let (mut y, mut x) = (y, x);
                for p in 0..m {
                    if (x0..x1).contains(&x) {
                        V::load(tmp.as_ptr().add(p * l)).store(bp.add(at(y, x)));
                    }
                    x += 1;
                    if x == w {
                        (y, x) = (y + 1, 0);
                    }
                }
            }
        }
        q += m;
    }
}

/// Writes `buf` (`ry x w` pixels of `nc` channels, see [`to_planes`]) to rows `y0 .. y0 + ry`
/// of the `h x w` planes of channels `c0 ..` of image `n` in `dst` (`n x c x h x w`).
///
/// # Safety
/// The level's features are on, and no other task writes those rows while this runs.
#[inline(always)]
unsafe fn write_rows<V: Vector>(
    dst: &DisjointSlice<'_, V::Elem>,
    c: usize,
    (n, c0, nc): (usize, usize, usize),
    (y0, ry): (usize, usize),
    (h, w): (usize, usize),
    buf: &[V::Elem],
) {
    let plane = h * w;
    // SAFETY: the caller's contract; `block` checks that the rows lie inside `dst`.
    unsafe {
        let d = dst.block((n * c + c0) * plane + y0 * w, nc, ry * w, plane);
        to_planes::<V>(buf, V::LANES, ry * w, nc, d, plane);
    }
}

/// One tile of `R` accumulators: `acc[r] = sum over taps (off, wo) of x[off + r xs] * w[wo]`
/// (vectors), plus `bias` when given, through the ReLU when `relu`, stored `os` elements
/// apart from `out`. The forward pass reads input pixels `sw` vectors apart and stores
/// consecutive vectors; the input gradient reads consecutive output-gradient vectors and
/// stores `sw` vectors apart (one column phase).
///
/// # Safety
/// The level's features are on; every `x + off + r xs` (`r < R`) and `w + wo` has `LANES`
/// readable elements, every `out + r os` `LANES` writable ones.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<V: Vector, const R: usize>(
    x: *const V::Elem,
    xs: usize,
    taps: &[(usize, usize)],
    w: *const V::Elem,
    bias: Option<V>,
    relu: bool,
    out: *mut V::Elem,
    os: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = [V::zero(); R];
        for &(off, wo) in taps {
            let wv = V::load(w.add(wo));
            let p = x.add(off);
            for (r, a) in acc.iter_mut().enumerate() {
                *a = V::load(p.add(r * xs)).fma(wv, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let mut v = *a;
            if let Some(b) = bias {
                v = v.add(b);
            }
            if relu {
                v = v.relu();
            }
            v.store(out.add(r * os));
        }
    }
}

/// One row of the weight gradient for `N` taps: `sums[t] += sum_j g[j] x[j step + offs[t]]`
/// over the `n` output-gradient vectors of the row (the row summed first, then added).
///
/// # Safety
/// The level's features are on; `g` has `n LANES` readable elements, every `x + j step +
/// offs[t]` (`j < n`) `LANES`, `sums` `N LANES` readable and writable ones.
#[inline(always)]
unsafe fn weight_row<V: Vector, const N: usize>(
    x: *const V::Elem,
    step: usize,
    offs: &[usize],
    g: *const V::Elem,
    n: usize,
    sums: *mut V::Elem,
) {
    let l = V::LANES;
    let o: [usize; N] = std::array::from_fn(|t| offs[t]);
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = [V::zero(); N];
        for j in 0..n {
            let gv = V::load(g.add(j * l));
            let p = x.add(j * step);
            for (a, &off) in acc.iter_mut().zip(&o) {
                *a = V::load(p.add(off)).fma(gv, *a);
            }
        }
        for (t, a) in acc.iter().enumerate() {
            V::load(sums.add(t * l)).add(*a).store(sums.add(t * l));
        }
    }
}

/// `f::<R>(first pixel)` over `n` pixels by tiles of [`RW`], then 4, 2 and 1.
macro_rules! tiles {
    ($n:expr, |$j:ident, $r:ident| $body:expr) => {{
        let n = $n;
        let mut $j = 0;
        while $j + RW <= n {
            {
                const $r: usize = RW;
                $body;
            }
            $j += RW;
        }
        for k in [4usize, 2, 1] {
            while $j + k <= n {
                match k {
                    4 => {
                        const $r: usize = 4;
                        $body
                    }
                    2 => {
                        const $r: usize = 2;
                        $body
                    }
                    _ => {
                        const $r: usize = 1;
                        $body
                    }
                }
                $j += k;
            }
        }
    }};
}

/// Weights (or the bias) as `[block][tap][LANES]` from `[channel][tap]`, zeros past the
/// last channel.
fn blocked<T: Real>(w: &[T], c: usize, kk: usize, l: usize) -> Vec<T> {
    let nb = c.div_ceil(l);
    let mut out = vec![T::ZERO; nb * kk * l];
    for ch in 0..c {
        let (b, k) = (ch / l, ch % l);
        for t in 0..kk {
            out[(b * kk + t) * l + k] = w[ch * kk + t];
        }
    }
    out
}

/// The blocking of one call: `LANES`, channel blocks, and rows per task.
#[derive(Clone, Copy)]
struct Blocks {
    level: Level,
    l: usize,
    nb: usize,
    /// Rows of the task's own output (forward: output rows; input gradient: input rows) and
    /// row blocks.
    rows: usize,
    nrb: usize,
}

impl Blocks {
    /// `total` rows, each reading a buffer row of `cols` pixels, `rows` rows reading
    /// `rows * per + extra` buffer rows; at least `2 * threads` tasks when the rows allow.
    fn new<T: SimdReal>(
        p: &ConvParams,
        total: usize,
        cols: usize,
        (per, extra): (usize, usize),
        threads: usize,
    ) -> Self {
        let level = level();
        let l = lanes::<T>(level);
        let nb = p.cin.div_ceil(l);
        let row_bytes = (cols * l * std::mem::size_of::<T>()).max(1);
        let fit = (BUF_BYTES / row_bytes).saturating_sub(extra) / per.max(1);
        let mut rows = fit.clamp(1, total.max(1));
        let tasks = p.n * nb;
        if threads > 1 && tasks < 2 * threads {
            rows = rows.min(total.div_ceil((2 * threads).div_ceil(tasks.max(1))).max(1));
        }
        Blocks {
            level,
            l,
            nb,
            rows,
            nrb: total.div_ceil(rows),
        }
    }

    fn tasks(&self, n: usize) -> usize {
        n * self.nb * self.nrb
    }

    /// `(image, channel block, first row, rows, channels)` of task `t`.
    fn task(&self, p: &ConvParams, t: usize, total: usize) -> (usize, usize, usize, usize, usize) {
        let (rb, cb, n) = (
            t % self.nrb,
            (t / self.nrb) % self.nb,
            t / (self.nrb * self.nb),
        );
        let y0 = rb * self.rows;
        (
            n,
            cb,
            y0,
            self.rows.min(total - y0),
            self.l.min(p.cin - cb * self.l),
        )
    }
}

/// Per-task scratch: the blocked input (or output gradient), the blocked result, the taps.
struct Scratch<T> {
    src: Vec<T>,
    out: Vec<T>,
    taps: Vec<(usize, usize)>,
}

impl<T> Scratch<T> {
    fn new() -> Self {
        Scratch {
            src: Vec::new(),
            out: Vec::new(),
            taps: Vec::new(),
        }
    }
}

/// Columns of the forward (and weight-gradient) input buffer: every column the output reads.
fn fwd_cols(p: &ConvParams) -> usize {
    (p.ow - 1) * p.sw + (p.kw - 1) * p.dw + 1
}

/// The forward (and weight-gradient) input buffer of output rows `y0 .. y0 + ry`, channels
/// `c0 .. c0 + nc` of image `n`: the padded input rows they read, [`fwd_cols`] wide (see
/// [`fill`]).
#[inline(always)]
fn fill_input<V: Vector>(
    p: &ConvParams,
    x: &[V::Elem],
    n: usize,
    (c0, nc): (usize, usize),
    (y0, ry): (usize, usize),
    buf: &mut Vec<V::Elem>,
) {
    let l = V::LANES;
    let (cols, rows) = (fwd_cols(p), (ry - 1) * p.sh + (p.kh - 1) * p.dh + 1);
    let plane = p.h * p.w;
    let r0 = (y0 * p.sh) as isize - p.pt as isize;
    let buf = sized(buf, rows * cols * l);
    let xs = &x[(n * p.cin + c0) * plane..];
    fill::<V>(
        xs,
        plane,
        (p.h, p.w),
        nc,
        (r0, -(p.pl as isize)),
        (rows, cols),
        buf,
    );
}

/// One forward task (see the module docs).
struct FwdTask<'a, T> {
    p: &'a ConvParams,
    b: Blocks,
    t: usize,
    x: &'a [T],
    w: &'a [T],
    bias: Option<&'a [T]>,
    relu: bool,
    out: &'a DisjointSlice<'a, T>,
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for FwdTask<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let FwdTask {
            p,
            b,
            t,
            x,
            w,
            bias,
            relu,
            out,
            s,
        } = self;
        let l = V::LANES;
        let (n, cb, y0, ry, nc) = b.task(p, t, p.oh);
        let cols = fwd_cols(p);
        let c0 = cb * l;
        fill_input::<V>(p, x, n, (c0, nc), (y0, ry), &mut s.src);
        s.taps.clear();
        for kh in 0..p.kh {
            for kw in 0..p.kw {
                s.taps
                    .push(((kh * p.dh * cols + kw * p.dw) * l, (kh * p.kw + kw) * l));
            }
        }
        let ob = sized(&mut s.out, (ry * p.ow).div_ceil(l) * l * l);
        let kk = p.kh * p.kw;
        let wb = &w[cb * kk * l..(cb + 1) * kk * l];
        let (xp, wp, op) = (s.src.as_ptr(), wb.as_ptr(), ob.as_mut_ptr());
        let step = p.sw * l;
        // SAFETY: the level's features are on (reached from `dispatch_at`); a tile at output
        // pixel (i, j) reads buffer pixels (i sh + kh dh, (j + r) sw + kw dw) < (in_rows,
        // cols) and weight vectors `< kk` of the block, and writes `ob[(i ow + j) l ..][..R
        // l]` with `j + R <= ow`.
        unsafe {
            // (a `map` closure would be compiled without the level's features)
            #[allow(clippy::manual_map)]
            let bv = match bias {
                Some(bb) => Some(V::load(bb.as_ptr().add(cb * l))),
                None => None,
            };
            for i in 0..ry {
                let xr = xp.add(i * p.sh * cols * l);
                let orow = op.add(i * p.ow * l);
                tiles!(p.ow, |j, R| tile::<V, R>(
                    xr.add(j * step),
                    step,
                    &s.taps,
                    wp,
                    bv,
                    relu,
                    orow.add(j * l),
                    l
                ));
            }
        }
        // SAFETY: reached from `dispatch_at`; task (n, cb, row block) alone writes rows y0 ..
        // y0 + ry of the planes of its `nc` channels in image n.
        unsafe { write_rows::<V>(out, p.cin, (n, c0, nc), (y0, ry), (p.oh, p.ow), &s.out) };
    }
}

/// Depthwise forward (see [`applies`]): `out` (`n x c x oh x ow`) is overwritten with the
/// convolution plus the bias, then the fused ReLU.
pub fn forward<T: SimdReal>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    if out.is_empty() || p.oh * p.ow == 0 {
        return;
    }
    let b = Blocks::new::<T>(p, p.oh, fwd_cols(p), (p.sh, (p.kh - 1) * p.dh + 1), threads);
    let kk = p.kh * p.kw;
    let w = blocked(op.weight, p.cin, kk, b.l);
    let bias = op.bias.map(|bb| blocked(bb, p.cin, 1, b.l));
    let out = DisjointSlice::new(out);
    let run = |s: &mut Scratch<T>, t: usize| {
        let task = FwdTask {
            p,
            b,
            t,
            x: op.x,
            w: &w,
            bias: bias.as_deref(),
            relu: op.relu,
            out: &out,
            s,
        };
        dispatch_at(b.level, task);
    };
    for_each_task(threads > 1, b.tasks(p.n), Scratch::new, run);
}

/// Where the input gradient reads the output gradient (see [`backward_input`]): rows and
/// columns of dy from `(r0, c0)` of the padded buffer for input-gradient rows `y0 .. y0 +
/// ry`.
struct GradWindow {
    r0: isize,
    rows: usize,
    c0: isize,
    cols: usize,
}

impl GradWindow {
    fn new(p: &ConvParams, y0: usize, ry: usize) -> Self {
        let fd = |a: isize, b: usize| a.div_euclid(b as isize);
        let r0 = fd((y0 + p.pt) as isize - ((p.kh - 1) * p.dh) as isize, p.sh);
        let r1 = fd((y0 + ry - 1 + p.pt) as isize, p.sh);
        let c0 = fd(p.pl as isize - ((p.kw - 1) * p.dw) as isize, p.sw);
        let c1 = fd((p.w - 1 + p.pl) as isize, p.sw);
        GradWindow {
            r0,
            rows: (r1 - r0 + 1) as usize,
            c0,
            cols: (c1 - c0 + 1) as usize,
        }
    }
}

/// The taps of each phase `(a, b)` of the input gradient: the rows `iy` with `(iy + pt) mod
/// sh == a` and the columns `ix = ix0 + j sw` (`j < cnt`, `(ix + pl) mod sw == b`).
struct InputPhases {
    of: Vec<InputPhase>,
}

/// One phase of [`InputPhases`]: per tap that reaches it, `(dy row relative to (iy + pt - a) /
/// sh, dy column in the window of the first pixel, tap)`.
struct InputPhase {
    ix0: usize,
    cnt: usize,
    taps: Vec<(isize, usize, usize)>,
}

impl InputPhases {
    fn new(p: &ConvParams) -> Self {
        let c0 = GradWindow::new(p, 0, 1).c0;
        let mut of = Vec::new();
        for a in 0..p.sh {
            for b in 0..p.sw {
                let ix0 = (b + p.sw - p.pl % p.sw) % p.sw;
                let cnt = if ix0 < p.w {
                    (p.w - ix0).div_ceil(p.sw)
                } else {
                    0
                };
                let v = (ix0 + p.pl) as isize;
                let mut taps = Vec::new();
                for kh in (0..p.kh).filter(|kh| (kh * p.dh) % p.sh == a) {
                    let dr = (a as isize - (kh * p.dh) as isize) / p.sh as isize;
                    for kw in 0..p.kw {
                        let c = v - (kw * p.dw) as isize;
                        if c.rem_euclid(p.sw as isize) == 0 {
                            let col = (c / p.sw as isize - c0) as usize;
                            taps.push((dr, col, kh * p.kw + kw));
                        }
                    }
                }
                of.push(InputPhase { ix0, cnt, taps });
            }
        }
        InputPhases { of }
    }
}

/// One input-gradient task (see the module docs).
struct InputTask<'a, T> {
    p: &'a ConvParams,
    phases: &'a InputPhases,
    b: Blocks,
    t: usize,
    dy: &'a [T],
    w: &'a [T],
    dx: &'a DisjointSlice<'a, T>,
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for InputTask<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let InputTask {
            p,
            phases,
            b,
            t,
            dy,
            w,
            dx,
            s,
        } = self;
        let l = V::LANES;
        let (n, cb, y0, ry, nc) = b.task(p, t, p.h);
        let plane_out = p.oh * p.ow;
        let c0 = cb * l;
        let gw = GradWindow::new(p, y0, ry);
        let buf = sized(&mut s.src, gw.rows * gw.cols * l);
        let gs = &dy[(n * p.cin + c0) * plane_out..];
        fill::<V>(
            gs,
            plane_out,
            (p.oh, p.ow),
            nc,
            (gw.r0, gw.c0),
            (gw.rows, gw.cols),
            buf,
        );
        let ob = sized(&mut s.out, (ry * p.w).div_ceil(l) * l * l);
        let kk = p.kh * p.kw;
        let wb = &w[cb * kk * l..(cb + 1) * kk * l];
        for i in 0..ry {
            let u = y0 + i + p.pt;
            let a = u % p.sh;
            let base = ((u - a) / p.sh) as isize - gw.r0;
            for ph in &phases.of[a * p.sw..(a + 1) * p.sw] {
                let (ix0, cnt) = (ph.ix0, ph.cnt);
                if cnt == 0 {
                    continue;
                }
                s.taps.clear();
                s.taps.extend(
                    ph.taps
                        .iter()
                        .map(|&(dr, col, t)| (((base + dr) as usize * gw.cols + col) * l, t * l)),
                );
                let (gp, wp) = (s.src.as_ptr(), wb.as_ptr());
                let op = ob.as_mut_ptr();
                let step = p.sw * l;
                // SAFETY: the level's features are on (reached from `dispatch_at`); the taps
                // read buffer rows `< gw.rows` and columns `col + j + r < gw.cols` (the window
                // covers every output-gradient pixel an input-gradient pixel of the rows
                // reads), weight vectors `< kk` of the block; the stores write
                // `ob[(i w + ix0 + (j + r) sw) l ..][..l]` with `ix0 + (j + r) sw < w`.
                unsafe {
                    let orow = op.add((i * p.w + ix0) * l);
                    tiles!(cnt, |j, R| tile::<V, R>(
                        gp.add(j * l),
                        l,
                        &s.taps,
                        wp,
                        None,
                        false,
                        orow.add(j * step),
                        step
                    ));
                }
            }
        }
        // SAFETY: reached from `dispatch_at`; task (n, cb, row block) alone writes rows y0 ..
        // y0 + ry of the planes of its `nc` channels in image n.
        unsafe { write_rows::<V>(dx, p.cin, (n, c0, nc), (y0, ry), (p.h, p.w), &s.out) };
    }
}

/// Depthwise input gradient (see [`applies`]): `grad_input` (`n x c x h x w`) is overwritten.
pub fn backward_input<T: SimdReal>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    if grad_input.is_empty() {
        return;
    }
    if p.oh * p.ow == 0 {
        grad_input.fill(T::ZERO);
        return;
    }
    let cols = GradWindow::new(p, 0, 1).cols;
    let extra = (p.kh - 1) * p.dh / p.sh + 2;
    let b = Blocks::new::<T>(p, p.h, cols, (1, extra), threads);
    let w = blocked(weight, p.cin, p.kh * p.kw, b.l);
    let phases = InputPhases::new(p);
    let grad_input = DisjointSlice::new(grad_input);
    let run = |s: &mut Scratch<T>, t: usize| {
        let task = InputTask {
            p,
            phases: &phases,
            b,
            t,
            dy: grad_output,
            w: &w,
            dx: &grad_input,
            s,
        };
        dispatch_at(b.level, task);
    };
    for_each_task(threads > 1, b.tasks(p.n), Scratch::new, run);
}

/// The weight gradient of one channel block over one part of the batch: `sums[tap][LANES]`.
struct WeightTask<'a, T> {
    p: &'a ConvParams,
    b: Blocks,
    cb: usize,
    images: std::ops::Range<usize>,
    x: &'a [T],
    dy: &'a [T],
    sums: &'a mut [T],
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for WeightTask<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let WeightTask {
            p,
            b,
            cb,
            images,
            x,
            dy,
            sums,
            s,
        } = self;
        let l = V::LANES;
        let (plane_out, kk) = (p.oh * p.ow, p.kh * p.kw);
        let c0 = cb * l;
        let nc = l.min(p.cin - c0);
        let cols = fwd_cols(p);
        sums.fill(T::ZERO);
        let offs: Vec<usize> = (0..kk)
            .map(|t| ((t / p.kw) * p.dh * cols + (t % p.kw) * p.dw) * l)
            .collect();
        for n in images {
            for rb in 0..b.nrb {
                let y0 = rb * b.rows;
                let ry = b.rows.min(p.oh - y0);
                fill_input::<V>(p, x, n, (c0, nc), (y0, ry), &mut s.src);
                let gs = &dy[(n * p.cin + c0) * plane_out..];
                let g = sized(&mut s.out, ry * p.ow * l);
                fill::<V>(
                    gs,
                    plane_out,
                    (p.oh, p.ow),
                    nc,
                    (y0 as isize, 0),
                    (ry, p.ow),
                    g,
                );
                let (xp, gp, sp) = (s.src.as_ptr(), s.out.as_ptr(), sums.as_mut_ptr());
                let step = p.sw * l;
                for i in 0..ry {
                    let mut t = 0;
                    while t < kk {
                        let k = match kk - t {
                            k if k >= TAPS => TAPS,
                            k if k >= 4 => 4,
                            k if k >= 2 => 2,
                            _ => 1,
                        };
                        let o = &offs[t..t + k];
                        // SAFETY: the level's features are on (reached from `dispatch_at`);
                        // row i of the output gradient has `ow` vectors in `g`; the input
                        // vectors (i sh + kh dh, j sw + kw dw) lie in the buffer (`in_rows x
                        // cols`); `sums` holds `kk` vectors, of which `t .. t + k`.
                        unsafe {
                            let xr = xp.add(i * p.sh * cols * l);
                            let gr = gp.add(i * p.ow * l);
                            let sr = sp.add(t * l);
                            match k {
                                TAPS => weight_row::<V, TAPS>(xr, step, o, gr, p.ow, sr),
                                4 => weight_row::<V, 4>(xr, step, o, gr, p.ow, sr),
                                2 => weight_row::<V, 2>(xr, step, o, gr, p.ow, sr),
                                _ => weight_row::<V, 1>(xr, step, o, gr, p.ow, sr),
                            }
                        }
                        t += k;
                    }
                }
            }
        }
    }
}

/// Depthwise weight gradient (see [`applies`]): `grad_weight` (`c x 1 x kh x kw`) is
/// overwritten with the sum over the batch: per channel block, up to [`PARTS`] consecutive
/// parts of the batch (a number that does not depend on the thread count), summed in order.
pub fn backward_weight<T: SimdReal>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    threads: usize,
) {
    let kk = p.kh * p.kw;
    grad_weight.fill(T::ZERO);
    if kk == 0 || p.n == 0 || p.oh * p.ow == 0 {
        return;
    }
    let b = Blocks::new::<T>(p, p.oh, fwd_cols(p), (p.sh, (p.kh - 1) * p.dh + 1), 1);
    let l = b.l;
    let parts = p.n.min(PARTS);
    let mut sums = vec![T::ZERO; b.nb * parts * kk * l];
    let run = |s: &mut Scratch<T>, (t, chunk): (usize, &mut [T])| {
        let (cb, part) = (t / parts, t % parts);
        let task = WeightTask {
            p,
            b,
            cb,
            images: part * p.n / parts..(part + 1) * p.n / parts,
            x,
            dy: grad_output,
            sums: chunk,
            s,
        };
        dispatch_at(b.level, task);
    };
    for_each_chunk(threads > 1, &mut sums, kk * l, Scratch::new, run);
    for c in 0..p.cin {
        let (cb, k) = (c / l, c % l);
        for part in 0..parts {
            let s = &sums[(cb * parts + part) * kk * l..][..kk * l];
            for (t, d) in grad_weight[c * kk..(c + 1) * kk].iter_mut().enumerate() {
                *d += s[t * l + k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::simd::with_each_level;

    /// `(p, x, w, grad_output)` for a depthwise layer: `[n, c, h, w]`, kernel `k`, stride,
    /// padding, dilation.
    fn case(
        n: usize,
        c: usize,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        s: (usize, usize),
        pad: (usize, usize, usize, usize),
        d: (usize, usize),
    ) -> (ConvParams, Vec<f64>, Vec<f64>, Vec<f64>) {
        let p = ConvParams::new([n, c, h, w], [c, 1, kh, kw], s, pad, d, c).unwrap();
        let f = |len: usize, seed: usize| -> Vec<f64> {
            (0..len)
                .map(|i| (((i * 7919 + seed * 104729) % 1009) as f64) / 504.5 - 1.0)
                .collect()
        };
        let x = f(n * c * h * w, 1);
        let wt = f(c * kh * kw, 2);
        let grad_output = f(n * c * p.oh * p.ow, 3);
        (p, x, wt, grad_output)
    }

    /// The naive loops: forward, input gradient, weight gradient.
    fn naive(p: &ConvParams, x: &[f64], wt: &[f64], grad_output: &[f64]) -> [Vec<f64>; 3] {
        let mut out = vec![0.0; p.n * p.cin * p.oh * p.ow];
        let mut grad_input = vec![0.0; x.len()];
        let mut grad_weight = vec![0.0; wt.len()];
        for n in 0..p.n {
            for c in 0..p.cin {
                for oy in 0..p.oh {
                    for ox in 0..p.ow {
                        let o = ((n * p.cin + c) * p.oh + oy) * p.ow + ox;
                        for kh in 0..p.kh {
                            for kw in 0..p.kw {
                                let iy = (oy * p.sh + kh * p.dh) as isize - p.pt as isize;
                                let ix = (ox * p.sw + kw * p.dw) as isize - p.pl as isize;
                                if iy < 0 || ix < 0 || iy >= p.h as isize || ix >= p.w as isize {
                                    continue;
                                }
                                let i = ((n * p.cin + c) * p.h + iy as usize) * p.w + ix as usize;
                                let t = c * p.kh * p.kw + kh * p.kw + kw;
                                out[o] += wt[t] * x[i];
                                grad_input[i] += wt[t] * grad_output[o];
                                grad_weight[t] += x[i] * grad_output[o];
                            }
                        }
                    }
                }
            }
        }
        [out, grad_input, grad_weight]
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!(
                (u - v).abs() <= 1e-12 * (1.0 + v.abs()),
                "{what}[{i}]: {u} vs {v}"
            );
        }
    }

    #[test]
    fn matches_naive_loops_at_every_level() {
        let cases = [
            (2, 3, (8, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
            (1, 2, (9, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
            (2, 2, (16, 16), (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
            (1, 2, (11, 13), (5, 3), (1, 2), (0, 2, 1, 0), (1, 1)),
            (1, 1, (10, 12), (3, 3), (3, 2), (2, 1, 0, 2), (2, 1)),
            (1, 2, (5, 6), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
            (1, 1, (4, 4), (3, 3), (1, 1), (2, 2, 2, 2), (1, 1)),
            (3, 2, (33, 20), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
            // full channel blocks at every level (the transposes), with a partial last block
            (2, 35, (18, 37), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
            (1, 33, (21, 40), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
            (1, 16, (17, 34), (5, 5), (2, 1), (2, 1, 2, 3), (1, 2)),
            (1, 16, (9, 20), (2, 2), (3, 3), (3, 0, 0, 4), (1, 1)),
        ];
        for (n, c, hw, k, s, pad, d) in cases {
            let (p, x, wt, grad_output) = case(n, c, hw, k, s, pad, d);
            let [want_out, want_grad_input, want_grad_weight] = naive(&p, &x, &wt, &grad_output);
            let bias: Vec<f64> = (0..c).map(|i| i as f64 * 0.5 - 0.25).collect();
            with_each_level(|level| {
                let what = format!("{hw:?} k{k:?} s{s:?} pad{pad:?} d{d:?} {level:?}");
                let mut out = vec![f64::NAN; want_out.len()];
                let op = Operands {
                    x: &x,
                    weight: &wt,
                    bias: Some(&bias),
                    relu: true,
                };
                forward(&p, op, &mut out, 1);
                let plane = p.oh * p.ow;
                let want: Vec<f64> = want_out
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v + bias[(i / plane) % c]).max(0.0))
                    .collect();
                close(&out, &want, &format!("forward {what}"));
                let mut grad_input = vec![f64::NAN; x.len()];
                backward_input(&p, &grad_output, &wt, &mut grad_input, 1);
                close(&grad_input, &want_grad_input, &format!("input grad {what}"));
                let mut grad_weight = vec![f64::NAN; wt.len()];
                backward_weight(&p, &x, &grad_output, &mut grad_weight, 1);
                close(
                    &grad_weight,
                    &want_grad_weight,
                    &format!("weight grad {what}"),
                );
            });
        }
    }

    #[test]
    fn float32_and_thread_counts_agree_bitwise() {
        let (p, x, wt, grad_output) = case(4, 20, (17, 15), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1));
        let (x, wt, grad_output): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            wt.iter().map(|&v| v as f32).collect(),
            grad_output.iter().map(|&v| v as f32).collect(),
        );
        with_each_level(|_| {
            let runs: Vec<[Vec<f32>; 3]> = [1, 2]
                .into_iter()
                .map(|t| {
                    let mut out = vec![0f32; p.n * p.cin * p.oh * p.ow];
                    let mut grad_input = vec![0f32; x.len()];
                    let mut grad_weight = vec![0f32; wt.len()];
                    crate::base::threads::run(t, || {
                        forward(&p, Operands::plain(&x, &wt), &mut out, t);
                        backward_input(&p, &grad_output, &wt, &mut grad_input, t);
                        backward_weight(&p, &x, &grad_output, &mut grad_weight, t);
                    });
                    [out, grad_input, grad_weight]
                })
                .collect();
            for (a, b) in runs[0].iter().zip(&runs[1]) {
                let (a, b): (Vec<u32>, Vec<u32>) = (
                    a.iter().map(|v| v.to_bits()).collect(),
                    b.iter().map(|v| v.to_bits()).collect(),
                );
                assert_eq!(a, b);
            }
        });
    }
}
