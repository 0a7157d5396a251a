//! Depthwise convolution (`groups == cin == cout`, one kernel plane per channel): forward,
//! input gradient and weight gradient for any stride, dilation and zero padding.
//!
//! Each task owns one `(image, channel)` plane (the weight gradient: one channel over the
//! batch, in order). The plane is copied into a zero-padded *phase* layout: for strides
//! `(sh, sw)` the padded plane is split into `sh * sw` sub-planes `P[a][b][i][j] =
//! xpad[sh i + a][sw j + b]`, so that every tap of the kernel reads one phase plane with unit
//! stride (no deinterleave in the hot loop; stride 1 has one phase, the padded plane itself).
//! The phase planes are then read *flattened*: with row stride `wq`, output pixel `(y, x)` of
//! tap `(kh, kw)` reads element `y wq + x + off(kh, kw)` of the buffer, so one vector covers
//! consecutive pixels across row ends (the `wq - ow` columns past each row's end are computed
//! and dropped). That keeps every SIMD lane busy on 8x8 planes as on 56x56 ones, and keeps
//! NCHW: no transpose in or out, weights are broadcasts.
//!
//! The microkernels ([`correlate`] and [`dots`]) are register-blocked along the flattened
//! pixels (`RW` vectors of `V::LANES` pixels per tile), generic over
//! [`crate::base::simd::Vector`] and reached through [`dispatch`] once per task.
//!
//! The input gradient uses the same layout on the output gradient: the padded input gradient
//! splits into the same `sh * sw` phases, each a correlation of the (zero-padded) output
//! gradient with the taps of that phase (`kh dh = a mod sh`), then scattered back to NCHW.
//! The weight gradient is one dot product per tap between the output gradient (zero in the
//! dropped columns) and the phase plane shifted by the tap's offset.
//!
//! Every output element is computed by one task in a fixed order, and the weight gradient
//! sums the images of the batch in order inside its channel's task: the results are
//! bit-identical for every thread count.

use crate::base::par::for_each_chunk;
use crate::base::real::Real;
use crate::base::scalar::Elem;
use crate::base::simd::{dispatch, SimdReal, Vector, WithVector};
use crate::nn::conv::params::{ConvParams, Operands};

/// Accumulator vectors per tile of [`correlate`] (8 of the 32 zmm / 16 ymm registers, plus
/// one broadcast weight and one loaded input).
const RW: usize = 8;
/// Taps per pass of the weight gradient's [`dots`] (9 accumulators: a 3x3 kernel in one pass).
const TAPS_PER_PASS: usize = 9;

/// Whether this engine computes the layer: depthwise with channel multiplier 1 (any
/// stride, dilation and zero padding). `_elem` (the element size) is for the lead's cost
/// model; the rule does not depend on it yet.
pub fn applies(p: &ConvParams, _elem: usize) -> bool {
    p.is_depthwise() && p.kh * p.kw > 0
}

/// The phase layout of one zero-padded plane read by a forward correlation (see the module
/// docs): `sh * sw` planes of `hq x wq`.
#[derive(Clone, Copy)]
struct Phases {
    /// Input plane.
    h: usize,
    w: usize,
    /// Zeros before the first row and column.
    pt: usize,
    pl: usize,
    sh: usize,
    sw: usize,
    hq: usize,
    wq: usize,
}

impl Phases {
    /// The layout for the forward correlation of `p` (also the weight gradient's).
    fn forward(p: &ConvParams) -> Self {
        let (sh, sw) = (p.sh.max(1), p.sw.max(1));
        let qh = (p.kh.max(1) - 1) * p.dh / sh;
        let qw = (p.kw.max(1) - 1) * p.dw / sw;
        Phases {
            h: p.h,
            w: p.w,
            pt: p.pt,
            pl: p.pl,
            sh,
            sw,
            hq: p.oh + qh,
            wq: p.ow + qw,
        }
    }

    fn plane(&self) -> usize {
        self.hq * self.wq
    }

    /// Elements of the phase buffer, with `slack` zeros after the last plane.
    fn len(&self, slack: usize) -> usize {
        self.sh * self.sw * self.plane() + slack
    }

    /// Offset in the buffer of the element that tap `(i, j)` (in padded-plane units,
    /// `i = kh dh`, `j = kw dw`) reads for output pixel `(0, 0)`.
    fn offset(&self, i: usize, j: usize) -> usize {
        let (a, b) = (i % self.sh, j % self.sw);
        (a * self.sw + b) * self.plane() + (i / self.sh) * self.wq + j / self.sw
    }

    /// The copies that put one `h x w` plane into the phase layout, `P[a][b][i][j] =
    /// img[sh i + a - pt][sw j + b - pl]` (the rest of the buffer stays zero): one
    /// [`Seg`] (source stride `sw`) per input row and column phase.
    fn segs(&self) -> Vec<Seg> {
        let mut segs = Vec::new();
        for iy in 0..self.h {
            let u = iy + self.pt;
            let (a, i) = (u % self.sh, u / self.sh);
            if i >= self.hq {
                break;
            }
            for b in 0..self.sw {
                // first column of this phase: (ix + pl) % sw == b
                let ix0 = (b + self.sw - self.pl % self.sw) % self.sw;
                let j0 = (ix0 + self.pl) / self.sw;
                if ix0 >= self.w || j0 >= self.wq {
                    continue;
                }
                segs.push(Seg {
                    src: iy * self.w + ix0,
                    dst: (a * self.sw + b) * self.plane() + i * self.wq + j0,
                    n: (self.wq - j0).min((self.w - ix0).div_ceil(self.sw)),
                });
            }
        }
        segs
    }
}

/// One strided copy of a precomputed plan: `n` elements.
#[derive(Clone, Copy)]
struct Seg {
    src: usize,
    dst: usize,
    n: usize,
}

/// `dst[k] = src[k s]` for every `k` of `dst` (`src` holds at least `(dst.len() - 1) s + 1`
/// elements): a copy for `s = 1`, a deinterleave the compiler vectorises for `s = 2`.
#[inline(always)]
fn gather<T: Copy>(dst: &mut [T], src: &[T], s: usize) {
    match s {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        2 => {
            let full = dst.len().min(src.len() / 2);
            for (d, pair) in dst[..full].iter_mut().zip(src.chunks_exact(2)) {
                *d = pair[0];
            }
            if let Some(d) = dst.get_mut(full) {
                *d = src[2 * full];
            }
        }
        _ => {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = src[k * s];
            }
        }
    }
}

/// `dst[k s] = src[k]` for every `k` of `src` (`dst` holds at least `(src.len() - 1) s + 1`
/// elements): the inverse of [`gather`].
#[inline(always)]
fn scatter<T: Copy>(dst: &mut [T], src: &[T], s: usize) {
    match s {
        1 => dst[..src.len()].copy_from_slice(src),
        2 => {
            let full = src.len().min(dst.len() / 2);
            for (pair, v) in dst.chunks_exact_mut(2).zip(&src[..full]) {
                pair[0] = *v;
            }
            if full < src.len() {
                dst[2 * full] = src[full];
            }
        }
        _ => {
            for (k, v) in src.iter().enumerate() {
                dst[k * s] = *v;
            }
        }
    }
}

/// `out[i] = sum_t wts[t] * src[offs[t] + i]` for every `i` of `out`, whose length is a
/// multiple of `V::LANES`; every `offs[t] + out.len()` is at most `src.len()`.
#[inline(always)]
fn correlate<V: Vector>(src: &[V::Elem], offs: &[usize], wts: &[V::Elem], out: &mut [V::Elem]) {
    let l = V::LANES;
    let n = out.len();
    assert!(n % l == 0 && offs.len() == wts.len() && offs.iter().all(|&o| o + n <= src.len()));
    let (sp, op) = (src.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    // SAFETY: the level's features are on (reached from `dispatch`); every load reads
    // `src[off + i .. off + i + l]` with `off + i + l <= off + n <= src.len()` (asserted),
    // every store writes `out[i .. i + l]` with `i + l <= n`.
    unsafe {
        while i + RW * l <= n {
            let mut acc = [V::zero(); RW];
            for (&off, &wt) in offs.iter().zip(wts) {
                let wv = V::splat(wt);
                let p = sp.add(off + i);
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = V::load(p.add(r * l)).fma(wv, *a);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                a.store(op.add(i + r * l));
            }
            i += RW * l;
        }
        while i < n {
            let mut acc = V::zero();
            for (&off, &wt) in offs.iter().zip(wts) {
                acc = V::load(sp.add(off + i)).fma(V::splat(wt), acc);
            }
            acc.store(op.add(i));
            i += l;
        }
    }
}

/// `sum_i g[i] * src[offs[t] + i]` for the `N` taps `t`; `g.len()` is a multiple of
/// `V::LANES` and every `offs[t] + g.len()` is at most `src.len()`. The lanes are summed in
/// order at the end.
#[inline(always)]
fn dots<V: Vector, const N: usize>(src: &[V::Elem], offs: &[usize], g: &[V::Elem]) -> [V::Elem; N] {
    let l = V::LANES;
    let n = g.len();
    assert!(offs.len() == N && n % l == 0 && offs.iter().all(|&o| o + n <= src.len()));
    let (sp, gp) = (src.as_ptr(), g.as_ptr());
    let mut lanes = [V::Elem::ZERO; 16];
    let mut out = [V::Elem::ZERO; N];
    // SAFETY: the level's features are on (reached from `dispatch`); loads read
    // `g[i .. i + l]` (i + l <= n) and `src[o + i .. o + i + l]` (o + n <= src.len(),
    // asserted); `lanes` holds 16 >= l elements.
    unsafe {
        let mut acc = [V::zero(); N];
        let mut i = 0;
        while i < n {
            let gv = V::load(gp.add(i));
            for (a, &o) in acc.iter_mut().zip(offs) {
                *a = V::load(sp.add(o + i)).fma(gv, *a);
            }
            i += l;
        }
        for (a, o) in acc.iter().zip(out.iter_mut()) {
            a.store(lanes.as_mut_ptr());
            *o = lanes[..l].iter().fold(V::Elem::ZERO, |s, &v| s + v);
        }
    }
    out
}

/// `dst[sg.dst..][..sg.n] = src[sg.src..][..sg.n]` for every segment, in order, by whole
/// vectors: the lanes past a segment's end are stored as zeros, so `segs` must be in
/// increasing `dst` order with the elements between two segments meant to be zero (or
/// written by a later segment), and `dst` must hold `V::LANES` elements past the last one.
/// Rows too close to the end of `src` for a whole vector are copied element by element.
#[inline(always)]
fn copy_rows<V: Vector>(dst: &mut [V::Elem], src: &[V::Elem], segs: &[Seg]) {
    let l = V::LANES;
    for sg in segs {
        let nv = sg.n.div_ceil(l);
        let fits = sg.src + nv * l <= src.len() && sg.dst + (nv + 1) * l <= dst.len();
        if !fits {
            dst[sg.dst..sg.dst + sg.n].copy_from_slice(&src[sg.src..sg.src + sg.n]);
            continue;
        }
        // SAFETY: the level's features are on (reached from `dispatch`); the loads read
        // `src[sg.src .. sg.src + nv l]` and the stores write `dst[sg.dst .. sg.dst + (nv + 1)
        // l]`, both inside their slices (checked above).
        unsafe {
            let (sp, dp) = (src.as_ptr().add(sg.src), dst.as_mut_ptr().add(sg.dst));
            for v in 0..nv {
                V::load(sp.add(v * l)).store(dp.add(v * l));
            }
            V::zero().store(dp.add(sg.n));
        }
    }
}

/// `dst[r w .. r w + w] = src[r ld .. r ld + w]` for the rows `r` of `dst` (`w` wide), by
/// whole vectors where they fit: the lanes past a row's end land on the next row, which is
/// written after. `src` must hold `V::LANES` elements past the last row's start plus `w`.
#[inline(always)]
fn copy_out<V: Vector>(dst: &mut [V::Elem], src: &[V::Elem], w: usize, ld: usize) {
    let l = V::LANES;
    let nv = w.div_ceil(l);
    for (r, row) in (0..dst.len() / w.max(1)).map(|r| (r, r * w)) {
        let s0 = r * ld;
        if row + nv * l <= dst.len() && s0 + nv * l <= src.len() {
            // SAFETY: the level's features are on (reached from `dispatch`); the loads read
            // `src[s0 .. s0 + nv l]` and the stores write `dst[row .. row + nv l]`, both inside
            // their slices (checked above).
            unsafe {
                let (sp, dp) = (src.as_ptr().add(s0), dst.as_mut_ptr().add(row));
                for v in 0..nv {
                    V::load(sp.add(v * l)).store(dp.add(v * l));
                }
            }
        } else {
            dst[row..row + w].copy_from_slice(&src[s0..s0 + w]);
        }
    }
}

/// `v` with `n` elements: zeroed when its length changes, else left as it is (the plans
/// write the same elements of every plane, so the zeros around them stay).
fn sized<T: Real>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() != n {
        v.clear();
        v.resize(n, T::ZERO);
    }
    v
}

/// Per-task scratch: the phase buffer and the flattened output (or output gradient).
struct Scratch<T> {
    src: Vec<T>,
    out: Vec<T>,
}

impl<T> Scratch<T> {
    fn new() -> Self {
        Scratch {
            src: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// What every plane of a forward pass (or weight gradient) shares.
struct ForwardPlan {
    ph: Phases,
    /// Copies of the input plane into the phase buffer.
    fill: Vec<Seg>,
    /// Offset of each tap (`kh`-major) in the phase buffer.
    offs: Vec<usize>,
}

impl ForwardPlan {
    fn new(p: &ConvParams) -> Self {
        let ph = Phases::forward(p);
        let offs = (0..p.kh)
            .flat_map(|kh| (0..p.kw).map(move |kw| (kh, kw)))
            .map(|(kh, kw)| ph.offset(kh * p.dh, kw * p.dw))
            .collect();
        ForwardPlan {
            ph,
            fill: ph.segs(),
            offs,
        }
    }

    /// `buf` (the phase buffer, zero outside the plan's copies, `V::LANES` spare elements
    /// at the end) gets `img`.
    #[inline(always)]
    fn fill<V: Vector>(&self, img: &[V::Elem], buf: &mut [V::Elem]) {
        if self.ph.sh == 1 && self.ph.sw == 1 {
            // one phase: the rows go in increasing order
            copy_rows::<V>(buf, img, &self.fill);
        } else {
            for sg in &self.fill {
                gather(&mut buf[sg.dst..sg.dst + sg.n], &img[sg.src..], self.ph.sw);
            }
        }
    }
}

/// The forward pass of one `(image, channel)` plane.
struct ForwardPlane<'a, T> {
    p: &'a ConvParams,
    plan: &'a ForwardPlan,
    img: &'a [T],
    /// The channel's `kh x kw` kernel.
    ker: &'a [T],
    out: &'a mut [T],
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for ForwardPlane<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let ForwardPlane {
            p,
            plan,
            img,
            ker,
            out,
            s,
        } = self;
        let (l, wq) = (V::LANES, plan.ph.wq);
        let src = sized(&mut s.src, plan.ph.len(l));
        plan.fill::<V>(img, src);
        let len = ((p.oh - 1) * wq + p.ow).div_ceil(l) * l;
        let flat = sized(&mut s.out, len + l);
        correlate::<V>(src, &plan.offs, ker, &mut flat[..len]);
        copy_out::<V>(out, flat, p.ow, wq);
    }
}

/// Depthwise forward (see [`applies`]): `out` (`n x c x oh x ow`) is overwritten with the
/// convolution plus the bias, then the fused ReLU.
pub fn forward<T: SimdReal>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    if plane_out == 0 {
        return;
    }
    let plan = ForwardPlan::new(p);
    let run = |s: &mut Scratch<T>, (idx, o): (usize, &mut [T])| {
        let c = idx % p.cin;
        dispatch(ForwardPlane {
            p,
            plan: &plan,
            img: &op.x[idx * plane_in..(idx + 1) * plane_in],
            ker: &op.weight[c * kk..(c + 1) * kk],
            out: &mut *o,
            s,
        });
        if op.bias.is_some() || op.relu {
            op.finish_row(c, o);
        }
    };
    for_each_chunk(threads > 1, out, plane_out, Scratch::new, run);
}

/// What every plane of an input gradient shares (see the module docs): the output gradient
/// zero-padded into `gh x gw`, and per phase of the input gradient its taps and where its
/// `mq x nq` flattened pixels go.
struct InputPlan {
    /// Width of the input gradient.
    w: usize,
    gh: usize,
    gw: usize,
    sw: usize,
    /// Length of a phase's flattened output (a multiple of the lanes is computed).
    len: usize,
    /// Copies of the output gradient's rows into the padded buffer.
    fill: Vec<Seg>,
    /// Per phase: the taps' offsets and indices, and the copies of its rows into `dx`
    /// (stride `sw` on the destination).
    phases: Vec<InputPhase>,
}

/// One phase of [`InputPlan`].
struct InputPhase {
    offs: Vec<usize>,
    taps: Vec<usize>,
    out: Vec<Seg>,
}

impl InputPlan {
    fn new(p: &ConvParams) -> Self {
        let (sh, sw) = (p.sh.max(1), p.sw.max(1));
        let qh = (p.kh.max(1) - 1) * p.dh / sh;
        let qw = (p.kw.max(1) - 1) * p.dw / sw;
        // the first rows / columns of each phase that hold input pixels (above: padding)
        let (m0, n0) = (p.pt / sh, p.pl / sw);
        let mq = (p.h + p.pt).div_ceil(sh) - m0;
        let nq = (p.w + p.pl).div_ceil(sw) - n0;
        let (gh, gw) = (mq + qh, nq + qw);
        // G[r][c] = dy[r - qh + m0][c - qw + n0]
        let mut fill = Vec::new();
        let c0 = qw.saturating_sub(n0);
        let x0 = c0 + n0 - qw;
        if x0 < p.ow && c0 < gw {
            for r in 0..gh {
                if let Some(y) = (r + m0).checked_sub(qh).filter(|&y| y < p.oh) {
                    fill.push(Seg {
                        src: y * p.ow + x0,
                        dst: r * gw + c0,
                        n: (p.ow - x0).min(gw - c0),
                    });
                }
            }
        }
        let mut phases = Vec::new();
        for pa in 0..sh {
            for pb in 0..sw {
                let (mut offs, mut taps) = (Vec::new(), Vec::new());
                for kh in (0..p.kh).filter(|kh| kh * p.dh % sh == pa) {
                    for kw in (0..p.kw).filter(|kw| kw * p.dw % sw == pb) {
                        offs.push((qh - kh * p.dh / sh) * gw + qw - kw * p.dw / sw);
                        taps.push(kh * p.kw + kw);
                    }
                }
                // dx[iy][ix] = Q[(iy + pt) / sh - m0][(ix + pl) / sw - n0] for this phase
                let iy0 = (pa + sh - p.pt % sh) % sh;
                let ix0 = (pb + sw - p.pl % sw) % sw;
                let mut out = Vec::new();
                if ix0 < p.w {
                    let n = (ix0 + p.pl) / sw - n0;
                    for iy in (iy0..p.h).step_by(sh) {
                        let m = (iy + p.pt) / sh - m0;
                        out.push(Seg {
                            src: m * gw + n,
                            dst: iy * p.w + ix0,
                            n: (p.w - ix0).div_ceil(sw),
                        });
                    }
                }
                phases.push(InputPhase { offs, taps, out });
            }
        }
        InputPlan {
            w: p.w,
            gh,
            gw,
            sw,
            len: (mq - 1) * gw + nq,
            fill,
            phases,
        }
    }
}

/// The input gradient of one `(image, channel)` plane.
struct InputPlane<'a, T> {
    plan: &'a InputPlan,
    dy: &'a [T],
    ker: &'a [T],
    dx: &'a mut [T],
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for InputPlane<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let InputPlane {
            plan,
            dy,
            ker,
            dx,
            s,
        } = self;
        let l = V::LANES;
        let src = sized(&mut s.src, plan.gh * plan.gw + l);
        copy_rows::<V>(src, dy, &plan.fill);
        let len = plan.len.div_ceil(l) * l;
        let flat = sized(&mut s.out, len + l);
        let mut wts = [T::ZERO; 64];
        for ph in &plan.phases {
            if ph.offs.len() <= wts.len() {
                for (w, &t) in wts.iter_mut().zip(&ph.taps) {
                    *w = ker[t];
                }
                correlate::<V>(src, &ph.offs, &wts[..ph.offs.len()], &mut flat[..len]);
            } else {
                let w: Vec<T> = ph.taps.iter().map(|&t| ker[t]).collect();
                correlate::<V>(src, &ph.offs, &w, &mut flat[..len]);
            }
            if plan.phases.len() == 1 {
                // stride 1: the rows of dx are the rows of the one phase (`m0 = pt`, `n0 = pl`)
                copy_out::<V>(dx, flat, plan.w, plan.gw);
            } else {
                for sg in &ph.out {
                    scatter(&mut dx[sg.dst..], &flat[sg.src..sg.src + sg.n], plan.sw);
                }
            }
        }
    }
}

/// Depthwise input gradient (see [`applies`]): `dx` (`n x c x h x w`) is overwritten.
pub fn backward_input<T: SimdReal>(
    p: &ConvParams,
    dy: &[T],
    weight: &[T],
    dx: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    if plane_in == 0 {
        return;
    }
    let plan = InputPlan::new(p);
    let run = |s: &mut Scratch<T>, (idx, d): (usize, &mut [T])| {
        let c = idx % p.cin;
        dispatch(InputPlane {
            plan: &plan,
            dy: &dy[idx * plane_out..(idx + 1) * plane_out],
            ker: &weight[c * kk..(c + 1) * kk],
            dx: d,
            s,
        });
    };
    for_each_chunk(threads > 1, dx, plane_in, Scratch::new, run);
}

/// The weight gradient of one channel: the images of the batch in order.
struct WeightChannel<'a, T> {
    p: &'a ConvParams,
    plan: &'a ForwardPlan,
    c: usize,
    x: &'a [T],
    dy: &'a [T],
    dw: &'a mut [T],
    s: &'a mut Scratch<T>,
}

impl<T: SimdReal> WithVector<T> for WeightChannel<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let WeightChannel {
            p,
            plan,
            c,
            x,
            dy,
            dw,
            s,
        } = self;
        let (l, wq) = (V::LANES, plan.ph.wq);
        let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
        let offs = &plan.offs[..];
        let g_rows: Vec<Seg> = (0..p.oh)
            .map(|y| Seg {
                src: y * p.ow,
                dst: y * wq,
                n: p.ow,
            })
            .collect();
        dw.fill(T::ZERO);
        for n in 0..p.n {
            let idx = n * p.cin + c;
            // a tap's reads run past its phase plane by at most `qw + l` (times zeros of `g`)
            let src = sized(&mut s.src, plan.ph.len(wq + l));
            plan.fill::<V>(&x[idx * plane_in..(idx + 1) * plane_in], src);
            // the output gradient with the row stride of the phase planes, zeros between
            let g_len = (p.oh * wq).div_ceil(l) * l;
            let g = sized(&mut s.out, g_len + l);
            copy_rows::<V>(g, &dy[idx * plane_out..(idx + 1) * plane_out], &g_rows);
            let (src, g) = (&s.src[..], &s.out[..g_len]);
            let mut t = 0;
            while t < offs.len() {
                let o = &offs[t..];
                let k = match o.len() {
                    k if k >= TAPS_PER_PASS => TAPS_PER_PASS,
                    k if k >= 4 => 4,
                    k if k >= 2 => 2,
                    _ => 1,
                };
                let d = &mut dw[t..t + k];
                let add = |d: &mut [T], v: &[T]| d.iter_mut().zip(v).for_each(|(d, v)| *d += *v);
                match k {
                    TAPS_PER_PASS => add(d, &dots::<V, TAPS_PER_PASS>(src, &o[..k], g)),
                    4 => add(d, &dots::<V, 4>(src, &o[..k], g)),
                    2 => add(d, &dots::<V, 2>(src, &o[..k], g)),
                    _ => add(d, &dots::<V, 1>(src, &o[..k], g)),
                }
                t += k;
            }
        }
    }
}

/// Depthwise weight gradient (see [`applies`]): `dw` (`c x 1 x kh x kw`) is overwritten with
/// the sum over the batch (one task per channel, the images in order).
pub fn backward_weight<T: SimdReal>(
    p: &ConvParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    threads: usize,
) {
    let kk = p.kh * p.kw;
    if kk == 0 {
        return;
    }
    if p.oh * p.ow == 0 {
        dw.fill(T::ZERO);
        return;
    }
    let plan = ForwardPlan::new(p);
    let run = |s: &mut Scratch<T>, (c, d): (usize, &mut [T])| {
        dispatch(WeightChannel {
            p,
            plan: &plan,
            c,
            x,
            dy,
            dw: d,
            s,
        });
    };
    for_each_chunk(threads > 1, dw, kk, Scratch::new, run);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::simd::with_each_level;

    /// `(p, x, w, dy)` for a depthwise layer: `[n, c, h, w]`, kernel `k`, stride, padding,
    /// dilation.
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
        let dy = f(n * c * p.oh * p.ow, 3);
        (p, x, wt, dy)
    }

    /// The naive loops: forward, input gradient, weight gradient.
    fn naive(p: &ConvParams, x: &[f64], wt: &[f64], dy: &[f64]) -> [Vec<f64>; 3] {
        let mut out = vec![0.0; p.n * p.cin * p.oh * p.ow];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; wt.len()];
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
                                dx[i] += wt[t] * dy[o];
                                dw[t] += x[i] * dy[o];
                            }
                        }
                    }
                }
            }
        }
        [out, dx, dw]
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
        ];
        for (n, c, hw, k, s, pad, d) in cases {
            let (p, x, wt, dy) = case(n, c, hw, k, s, pad, d);
            let [want_out, want_dx, want_dw] = naive(&p, &x, &wt, &dy);
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
                let mut dx = vec![f64::NAN; x.len()];
                backward_input(&p, &dy, &wt, &mut dx, 1);
                close(&dx, &want_dx, &format!("input grad {what}"));
                let mut dw = vec![f64::NAN; wt.len()];
                backward_weight(&p, &x, &dy, &mut dw, 1);
                close(&dw, &want_dw, &format!("weight grad {what}"));
            });
        }
    }

    #[test]
    fn float32_and_thread_counts_agree_bitwise() {
        let (p, x, wt, dy) = case(4, 20, (17, 15), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1));
        let (x, wt, dy): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            wt.iter().map(|&v| v as f32).collect(),
            dy.iter().map(|&v| v as f32).collect(),
        );
        with_each_level(|_| {
            let runs: Vec<[Vec<f32>; 3]> = [1, 2]
                .into_iter()
                .map(|t| {
                    let mut out = vec![0f32; p.n * p.cin * p.oh * p.ow];
                    let mut dx = vec![0f32; x.len()];
                    let mut dw = vec![0f32; wt.len()];
                    crate::base::threads::run(t, || {
                        forward(&p, Operands::plain(&x, &wt), &mut out, t);
                        backward_input(&p, &dy, &wt, &mut dx, t);
                        backward_weight(&p, &x, &dy, &mut dw, t);
                    });
                    [out, dx, dw]
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
