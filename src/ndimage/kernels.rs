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

/// Output vectors per block: independent sums in flight to cover the add latency.
const R: usize = 4;

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
        let n = out.len();
        let l = V::LANES;
        let (bp, op) = (b.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        // SAFETY: `b` holds `n + max offset` elements and `out` `n` (checked by `apply`), and
        // every block and tail element stays below `n`; the CPU has `V`'s level (`dispatch`).
        unsafe {
            while i + R * l <= n {
                block::<V, R>(plan, bp.add(i), op.add(i));
                i += R * l;
            }
            while i + l <= n {
                block::<V, 1>(plan, bp.add(i), op.add(i));
                i += l;
            }
            while i < n {
                *op.add(i) = scalar(plan, bp.add(i));
                i += 1;
            }
        }
    }
}

/// `Q` vectors of outputs at `op` from the buffer at `bp`.
///
/// # Safety
/// `bp + off + Q * LANES` in the buffer for every offset, `Q * LANES` outputs at `op`, and
/// the CPU has `V`'s level.
#[inline(always)]
unsafe fn block<V: Vector<Elem = f64>, const Q: usize>(
    plan: Plan<'_>,
    bp: *const f64,
    op: *mut f64,
) {
    let l = V::LANES;
    // SAFETY: every load is at `bp + off + q * l` with `q < Q` and every store at `op + q * l`
    // (the contract); the CPU has `V`'s level.
    unsafe {
        let ld = |off: usize, q: usize| V::load(bp.add(off + q * l));
        let mut acc = [V::zero(); Q];
        match plan {
            Plan::Taps { off, w } => {
                for (&o, &wk) in off.iter().zip(w) {
                    let wv = V::splat(wk);
                    for (q, a) in acc.iter_mut().enumerate() {
                        *a = a.add(wv.mul(ld(o, q)));
                    }
                }
            }
            Plan::LastFirst { off, w } => {
                let last = w.len() - 1;
                let wl = V::splat(w[last]);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = ld(off[last], q).mul(wl);
                }
                for (&o, &wk) in off[..last].iter().zip(&w[..last]) {
                    let wv = V::splat(wk);
                    for (q, a) in acc.iter_mut().enumerate() {
                        *a = a.add(ld(o, q).mul(wv));
                    }
                }
            }
            Plan::Pairs { off, w, neg } => {
                let c = w.len() / 2;
                let wc = V::splat(w[c]);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = ld(off[c], q).mul(wc);
                }
                for k in 0..c {
                    let wv = V::splat(w[k]);
                    let (lo, hi) = (off[k], off[2 * c - k]);
                    for (q, a) in acc.iter_mut().enumerate() {
                        let pair = if neg {
                            ld(lo, q).sub(ld(hi, q))
                        } else {
                            ld(lo, q).add(ld(hi, q))
                        };
                        *a = a.add(pair.mul(wv));
                    }
                }
            }
        }
        for (q, a) in acc.iter().enumerate() {
            a.store(op.add(q * l));
        }
    }
}

/// One output, element by element (the same operations as [`block`]).
///
/// # Safety
/// `bp + off` in the buffer for every offset.
#[inline(always)]
unsafe fn scalar(plan: Plan<'_>, bp: *const f64) -> f64 {
    // SAFETY: every offset is in the buffer (the contract).
    let ld = |off: usize| unsafe { *bp.add(off) };
    match plan {
        Plan::Taps { off, w } => {
            let mut acc = 0.0;
            for (&o, &wk) in off.iter().zip(w) {
                acc += wk * ld(o);
            }
            acc
        }
        Plan::LastFirst { off, w } => {
            let last = w.len() - 1;
            let mut acc = ld(off[last]) * w[last];
            for (&o, &wk) in off[..last].iter().zip(&w[..last]) {
                acc += ld(o) * wk;
            }
            acc
        }
        Plan::Pairs { off, w, neg } => {
            let c = w.len() / 2;
            let mut acc = ld(off[c]) * w[c];
            for k in 0..c {
                let (lo, hi) = (ld(off[k]), ld(off[2 * c - k]));
                let pair = if neg { lo - hi } else { lo + hi };
                acc += pair * w[k];
            }
            acc
        }
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
            // SAFETY: every offset of every output is inside `b`.
            let want: Vec<f64> = (0..n)
                .map(|i| unsafe { scalar(plan, b.as_ptr().add(i)) })
                .collect();
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
