//! The float64 kernels of scipy.ndimage's linear filters, written once over [`Vector`] and
//! compiled per SIMD level. Vectors hold consecutive output elements (never terms of one
//! sum), and every product and sum is rounded as in scipy's C loops: no FMA, no
//! reassociation, no reciprocal. So each level gives the same bytes as scipy's scalar code.
//!
//! A kernel reads a float64 buffer `b` and writes `out[i]` for `i < out.len()` from elements
//! `b[i + off]`: offsets `k` for a line extended in place, `k * width` for `width` lines
//! stored position by position, the strides of a padded tile for the n-D correlation.

use crate::base::simd::{dispatch, Vector, WithVector};

/// The sum that makes each output element.
#[derive(Debug, Clone, Copy)]
pub enum Plan<'a> {
    /// `NI_Correlate`: `0.0`, then `+= w[k] * b[i + off[k]]` for each `k` in order.
    Taps { off: &'a [usize], w: &'a [f64] },
    /// `NI_Correlate1D`'s general kernel: `b[i + off[last]] * w[last]`, then
    /// `+= b[i + off[k]] * w[k]` for `k` from the first to the second-to-last.
    LastFirst { off: &'a [usize], w: &'a [f64] },
    /// `NI_Correlate1D`'s symmetric (or, with `neg`, antisymmetric) kernel of `2c + 1` taps:
    /// `b[i + off[c]] * w[c]`, then `+= (b[i + off[k]] ± b[i + off[2c - k]]) * w[k]` for `k`
    /// from 0 (the outermost pair) to `c - 1`.
    Pairs {
        off: &'a [usize],
        w: &'a [f64],
        neg: bool,
    },
}

impl Plan<'_> {
    fn max_offset(&self) -> usize {
        let (Plan::Taps { off, .. } | Plan::LastFirst { off, .. } | Plan::Pairs { off, .. }) = self;
        off.iter().copied().max().unwrap_or(0)
    }
}

/// Output vectors per block: independent sums in flight to cover the add latency (with 4, the
/// taps of a 5x5 correlation waited on their chains of adds: one add per tap and sum).
const R: usize = 8;

/// `out[i]` for every `i` by `plan` (see [`Plan`]), at the process's SIMD level.
///
/// # Panics
/// If `b` is shorter than `out.len() + ` the largest offset, or `off` and `w` differ in
/// length (broken invariants of the drivers).
pub fn apply(plan: Plan<'_>, b: &[f64], out: &mut [f64]) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let (Plan::Taps { off, w } | Plan::LastFirst { off, w } | Plan::Pairs { off, w, .. }) = plan;
    assert!(
        off.len() == w.len(),
        "ndimage kernel: offsets and weights differ"
    );
    assert!(
        b.len() >= n + plan.max_offset(),
        "ndimage kernel: buffer too short"
    );
    if let Plan::LastFirst { w, .. } | Plan::Pairs { w, .. } = plan {
        assert!(!w.is_empty(), "ndimage kernel: no taps");
    }
    if let Plan::Pairs { w, .. } = plan {
        assert!(w.len() % 2 == 1, "ndimage kernel: pairs need an odd kernel");
    }
    dispatch::<f64, _>(Apply { plan, b, out });
}

struct Apply<'a> {
    plan: Plan<'a>,
    b: &'a [f64],
    out: &'a mut [f64],
}

impl WithVector<f64> for Apply<'_> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f64>>(self) {
        let Apply { plan, b, out } = self;
        match plan {
            Plan::Taps { off, w } => {
                let taps: Vec<(usize, f64)> = off.iter().copied().zip(w.iter().copied()).collect();
                sweep::<V, _>(
                    &Taps {
                        first: None,
                        taps: &taps,
                    },
                    b,
                    out,
                );
            }
            Plan::LastFirst { off, w } => {
                let last = w.len() - 1;
                let taps: Vec<(usize, f64)> = off[..last]
                    .iter()
                    .copied()
                    .zip(w[..last].iter().copied())
                    .collect();
                let first = Some((off[last], w[last]));
                sweep::<V, _>(&Taps { first, taps: &taps }, b, out);
            }
            Plan::Pairs { off, w, neg } => {
                let c = w.len() / 2;
                let pairs: Vec<(usize, usize, f64)> =
                    (0..c).map(|k| (off[k], off[2 * c - k], w[k])).collect();
                let centre = (off[c], w[c]);
                if neg {
                    sweep::<V, _>(
                        &Pairs::<true> {
                            centre,
                            pairs: &pairs,
                        },
                        b,
                        out,
                    );
                } else {
                    sweep::<V, _>(
                        &Pairs::<false> {
                            centre,
                            pairs: &pairs,
                        },
                        b,
                        out,
                    );
                }
            }
        }
    }
}

/// The sum of one kind of [`Plan`], for `Q` vectors of outputs and for one output.
trait Sum {
    /// # Safety
    /// Every offset from `bp` (plus `Q * LANES`) is in the buffer, `Q * LANES` outputs at
    /// `op`, and the CPU has `V`'s level.
    unsafe fn block<V: Vector<Elem = f64>, const Q: usize>(&self, bp: *const f64, op: *mut f64);
    /// # Safety
    /// Every offset from `bp` is in the buffer.
    unsafe fn one(&self, bp: *const f64) -> f64;
}

/// `out[i]` for `i < out.len()`: blocks of `R` vectors, then single vectors, then elements.
#[inline(always)]
fn sweep<V: Vector<Elem = f64>, S: Sum>(sum: &S, b: &[f64], out: &mut [f64]) {
    let n = out.len();
    let l = V::LANES;
    let (bp, op) = (b.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    // SAFETY: `b` holds `n + max offset` elements and `out` `n` (checked by `apply`), and
    // every block and tail element stays below `n`; the CPU has `V`'s level (`dispatch`).
    unsafe {
        while i + R * l <= n {
            sum.block::<V, R>(bp.add(i), op.add(i));
            i += R * l;
        }
        while i + l <= n {
            sum.block::<V, 1>(bp.add(i), op.add(i));
            i += l;
        }
        while i < n {
            *op.add(i) = sum.one(bp.add(i));
            i += 1;
        }
    }
}

/// `first` (a product) or 0.0, then `+= w * b[off]` per tap, in order: `NI_Correlate` (no
/// first, `w * x`) and `NI_Correlate1D`'s general loop (its last tap first, `x * w`; the
/// product is the same either way).
struct Taps<'a> {
    first: Option<(usize, f64)>,
    taps: &'a [(usize, f64)],
}

impl Sum for Taps<'_> {
    #[inline(always)]
    unsafe fn block<V: Vector<Elem = f64>, const Q: usize>(&self, bp: *const f64, op: *mut f64) {
        let l = V::LANES;
        // SAFETY: loads at `bp + off + q * l` with `q < Q`, stores at `op + q * l` (the
        // contract); the CPU has `V`'s level.
        unsafe {
            let ld = |off: usize, q: usize| V::load(bp.add(off + q * l));
            let mut acc = [V::zero(); Q];
            if let Some((o, wf)) = self.first {
                let wv = V::splat(wf);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = ld(o, q).mul(wv);
                }
            }
            for &(o, wk) in self.taps {
                let wv = V::splat(wk);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = a.add(ld(o, q).mul(wv));
                }
            }
            for (q, a) in acc.iter().enumerate() {
                a.store(op.add(q * l));
            }
        }
    }

    #[inline(always)]
    unsafe fn one(&self, bp: *const f64) -> f64 {
        // SAFETY: every offset is in the buffer (the contract).
        let ld = |off: usize| unsafe { *bp.add(off) };
        let mut acc = match self.first {
            Some((o, wf)) => ld(o) * wf,
            None => 0.0,
        };
        for &(o, wk) in self.taps {
            acc += ld(o) * wk;
        }
        acc
    }
}

/// `b[centre] * w_c`, then `+= (b[lo] ± b[hi]) * w` per pair, outermost first.
struct Pairs<'a, const NEG: bool> {
    centre: (usize, f64),
    pairs: &'a [(usize, usize, f64)],
}

impl<const NEG: bool> Sum for Pairs<'_, NEG> {
    #[inline(always)]
    unsafe fn block<V: Vector<Elem = f64>, const Q: usize>(&self, bp: *const f64, op: *mut f64) {
        let l = V::LANES;
        // SAFETY: as `Taps::block`.
        unsafe {
            let ld = |off: usize, q: usize| V::load(bp.add(off + q * l));
            let (oc, wc) = self.centre;
            let wc = V::splat(wc);
            let mut acc = [V::zero(); Q];
            for (q, a) in acc.iter_mut().enumerate() {
                *a = ld(oc, q).mul(wc);
            }
            for &(lo, hi, wk) in self.pairs {
                let wv = V::splat(wk);
                for (q, a) in acc.iter_mut().enumerate() {
                    let pair = if NEG {
                        ld(lo, q).sub(ld(hi, q))
                    } else {
                        ld(lo, q).add(ld(hi, q))
                    };
                    *a = a.add(pair.mul(wv));
                }
            }
            for (q, a) in acc.iter().enumerate() {
                a.store(op.add(q * l));
            }
        }
    }

    #[inline(always)]
    unsafe fn one(&self, bp: *const f64) -> f64 {
        // SAFETY: every offset is in the buffer (the contract).
        let ld = |off: usize| unsafe { *bp.add(off) };
        let (oc, wc) = self.centre;
        let mut acc = ld(oc) * wc;
        for &(lo, hi, wk) in self.pairs {
            let pair = if NEG {
                ld(lo) - ld(hi)
            } else {
                ld(lo) + ld(hi)
            };
            acc += pair * wk;
        }
        acc
    }
}

/// `NI_UniformFilter1D` on `width` lines stored position by position, `n` outputs at a time
/// with the running sums `sums` carried from the previous call: `b` holds `n + size` rows of
/// the extended lines, row `r` being extended position `p0 - 1 + r` for outputs `p0 ..
/// p0 + n`. With `start` (`p0 == 0`, row 0 unused), `s = 0.0; s += b[k]` over the first
/// `size` positions and `out[0] = s / size`; then each output adds the position entering the
/// window minus the one leaving it, `s += b[i + size - 1] - b[i - 1]`, and is `s / size`.
///
/// # Panics
/// If the buffers do not have those lengths.
pub fn running_mean(
    b: &[f64],
    width: usize,
    n: usize,
    size: usize,
    start: bool,
    sums: &mut [f64],
    out: &mut [f64],
) {
    assert!(
        size >= 1 && b.len() == (n + size) * width && out.len() == n * width && sums.len() == width,
        "running_mean: buffer sizes"
    );
    if n == 0 || width == 0 {
        return;
    }
    dispatch::<f64, _>(Running {
        b,
        width,
        n,
        size,
        start,
        sums,
        out,
    });
}

struct Running<'a> {
    b: &'a [f64],
    width: usize,
    n: usize,
    size: usize,
    start: bool,
    sums: &'a mut [f64],
    out: &'a mut [f64],
}

impl WithVector<f64> for Running<'_> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f64>>(self) {
        let l = V::LANES;
        let width = self.width;
        let mut j = 0;
        // SAFETY: lanes `j .. j + Q l <= width`, inside the checked buffers; the CPU has
        // `V`'s level.
        unsafe {
            while j + R * l <= width {
                lanes::<V, R>(&self, j);
                j += R * l;
            }
            while j + l <= width {
                lanes::<V, 1>(&self, j);
                j += l;
            }
        }
        let Running {
            b,
            n,
            size,
            start,
            sums,
            out,
            ..
        } = self;
        let d = size as f64;
        for j in j..width {
            let mut s = sums[j];
            let mut first = 0;
            if start {
                s = 0.0;
                for k in 1..=size {
                    s += b[k * width + j];
                }
                out[j] = s / d;
                first = 1;
            }
            for i in first..n {
                s += b[(i + size) * width + j] - b[i * width + j];
                out[i * width + j] = s / d;
            }
            sums[j] = s;
        }
    }
}

/// [`running_mean`] of lanes `j .. j + Q * LANES`.
///
/// # Safety
/// `j + Q * LANES <= width`, the buffers as [`running_mean`] checks them, and the CPU has
/// `V`'s level.
#[inline(always)]
unsafe fn lanes<V: Vector<Elem = f64>, const Q: usize>(k: &Running<'_>, j: usize) {
    let (l, width, size) = (V::LANES, k.width, k.size);
    let bp = k.b.as_ptr();
    let op = k.out.as_ptr() as *mut f64;
    let sp = k.sums.as_ptr() as *mut f64;
    // SAFETY: loads at rows below `n + size`, stores at outputs below `n`, lanes below `width`
    // (the contract; `running_mean` holds `out` and `sums` mutably for the call); the CPU has
    // `V`'s level.
    unsafe {
        let ld = |row: usize, q: usize| V::load(bp.add(row * width + j + q * l));
        let d = V::splat(size as f64);
        let mut s = [V::zero(); Q];
        let mut first = 0;
        if k.start {
            for row in 1..=size {
                for (q, a) in s.iter_mut().enumerate() {
                    *a = a.add(ld(row, q));
                }
            }
            for (q, a) in s.iter().enumerate() {
                a.div(d).store(op.add(j + q * l));
            }
            first = 1;
        } else {
            for (q, a) in s.iter_mut().enumerate() {
                *a = V::load(sp.add(j + q * l));
            }
        }
        for i in first..k.n {
            for (q, a) in s.iter_mut().enumerate() {
                *a = a.add(ld(i + size, q).sub(ld(i, q)));
                a.div(d).store(op.add(i * width + j + q * l));
            }
        }
        for (q, a) in s.iter().enumerate() {
            a.store(sp.add(j + q * l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::simd::with_each_level;

    fn data(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 7919 % 113) as f64 - 50.0) / 7.0 + 1e-9 * i as f64)
            .collect()
    }

    /// The C loops of `ni_filters.c`, element by element.
    fn reference(plan: Plan<'_>, b: &[f64]) -> f64 {
        match plan {
            Plan::Taps { off, w } => {
                let mut acc = 0.0;
                for (&o, &wk) in off.iter().zip(w) {
                    acc += wk * b[o];
                }
                acc
            }
            Plan::LastFirst { off, w } => {
                let last = w.len() - 1;
                let mut acc = b[off[last]] * w[last];
                for k in 0..last {
                    acc += b[off[k]] * w[k];
                }
                acc
            }
            Plan::Pairs { off, w, neg } => {
                let c = w.len() / 2;
                let mut acc = b[off[c]] * w[c];
                for k in 0..c {
                    let (lo, hi) = (b[off[k]], b[off[2 * c - k]]);
                    acc += if neg { lo - hi } else { lo + hi } * w[k];
                }
                acc
            }
        }
    }

    #[test]
    fn every_level_gives_the_scalar_bytes() {
        let b = data(200);
        let w = [0.1, -0.25, 0.3, -0.25, 0.1];
        let off: Vec<usize> = (0..5).map(|k| 3 * k).collect();
        for plan in [
            Plan::Taps { off: &off, w: &w },
            Plan::LastFirst { off: &off, w: &w },
            Plan::Pairs {
                off: &off,
                w: &w,
                neg: false,
            },
            Plan::Pairs {
                off: &off,
                w: &w,
                neg: true,
            },
        ] {
            let n = 200 - 12;
            let want: Vec<f64> = (0..n).map(|i| reference(plan, &b[i..])).collect();
            with_each_level(|level| {
                let mut out = vec![f64::NAN; n];
                apply(plan, &b, &mut out);
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{plan:?} at {level:?}");
            });
        }
    }

    #[test]
    fn running_mean_is_the_same_at_every_level_and_in_chunks() {
        let (width, len, size) = (45, 30, 4);
        // extended rows -1 .. len + size - 1 (row 0 unused)
        let b = data((len + size) * width);
        let mut want = vec![0.0; len * width];
        for j in 0..width {
            let mut s = 0.0;
            for k in 1..=size {
                s += b[k * width + j];
            }
            want[j] = s / size as f64;
            for i in 1..len {
                s += b[(i + size) * width + j] - b[i * width + j];
                want[i * width + j] = s / size as f64;
            }
        }
        with_each_level(|level| {
            for chunk in [len, 7] {
                let mut out = vec![f64::NAN; len * width];
                let mut sums = vec![0.0; width];
                let mut p0 = 0;
                while p0 < len {
                    let n = chunk.min(len - p0);
                    let rows = &b[p0 * width..(p0 + n + size) * width];
                    let o = &mut out[p0 * width..(p0 + n) * width];
                    running_mean(rows, width, n, size, p0 == 0, &mut sums, o);
                    p0 += n;
                }
                let same = out
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{level:?} chunk {chunk}");
            }
        });
    }
}
