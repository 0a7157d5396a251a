//! The non-zero padding modes of torch.nn.Conv2d (`reflect`, `replicate`, `circular`) and
//! NumPy's `symmetric`: the
//! explicit padding of an NCHW input, and its adjoint (every padded cell's gradient added back
//! into the cell it was copied from). Parallel over the N x C planes.

use rayon::prelude::*;

use super::params::{PadMode, Pads};
use crate::base::real::Real;

/// The source index of padded position `v` (virtual, may be negative or `>= len`) along an
/// axis of `len > 0` elements.
#[inline]
fn source(mode: PadMode, v: isize, len: usize) -> usize {
    let n = len as isize;
    if (0..n).contains(&v) {
        return v as usize;
    }
    match mode {
        PadMode::Replicate | PadMode::Zeros => v.clamp(0, n - 1) as usize,
        PadMode::Circular => v.rem_euclid(n) as usize,
        PadMode::Reflect => {
            let period = 2 * (n - 1);
            if period == 0 {
                return 0;
            }
            let m = v.rem_euclid(period);
            (if m < n { m } else { period - m }) as usize
        }
        PadMode::Symmetric => {
            let m = v.rem_euclid(2 * n);
            (if m < n { m } else { 2 * n - 1 - m }) as usize
        }
    }
}

/// For each padded position along an axis, its source index.
fn sources(mode: PadMode, before: usize, after: usize, len: usize) -> Vec<usize> {
    (0..before + len + after)
        .map(|i| source(mode, i as isize - before as isize, len))
        .collect()
}

/// `x` (`[n, c, h, w]`, contiguous, `h, w > 0`) padded by `pads` with `mode` into `out`
/// (`[n, c, h + t + b, w + l + r]`).
pub fn pad<T: Real>(x: &[T], shape: [usize; 4], pads: Pads, mode: PadMode, out: &mut [T]) {
    let [_, _, h, w] = shape;
    let (t, b, l, r) = pads;
    let (ph, pw) = (h + t + b, w + l + r);
    if h == 0 || w == 0 || ph * pw == 0 {
        return;
    }
    let rows = sources(mode, t, b, h);
    let cols = sources(mode, l, r, w);
    out.par_chunks_mut(ph * pw)
        .zip(x.par_chunks(h * w))
        .for_each(|(o, plane)| {
            for (orow, &sy) in o.chunks_exact_mut(pw).zip(&rows) {
                let src = &plane[sy * w..(sy + 1) * w];
                orow[l..l + w].copy_from_slice(src);
                for (d, &sx) in orow[..l].iter_mut().zip(&cols[..l]) {
                    *d = src[sx];
                }
                for (d, &sx) in orow[l + w..].iter_mut().zip(&cols[l + w..]) {
                    *d = src[sx];
                }
            }
        });
}

/// The adjoint of [`pad`]: `g` (`[n, c, h + t + b, w + l + r]`) folded back into `out`
/// (`[n, c, h, w]`, overwritten).
pub fn pad_adjoint<T: Real>(g: &[T], shape: [usize; 4], pads: Pads, mode: PadMode, out: &mut [T]) {
    let [_, _, h, w] = shape;
    let (t, b, l, r) = pads;
    let (ph, pw) = (h + t + b, w + l + r);
    out.fill(T::ZERO);
    if h == 0 || w == 0 || ph * pw == 0 {
        return;
    }
    let rows = sources(mode, t, b, h);
    let cols = sources(mode, l, r, w);
    out.par_chunks_mut(h * w)
        .zip(g.par_chunks(ph * pw))
        .for_each(|(o, plane)| {
            for (grow, &sy) in plane.chunks_exact(pw).zip(&rows) {
                let dst = &mut o[sy * w..(sy + 1) * w];
                for (&v, &sx) in grow.iter().zip(&cols) {
                    dst[sx] += v;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_match_numpy_pad() {
        // np.pad(arange(4), (3, 3), mode): reflect / edge / wrap / symmetric
        let idx = |m| sources(m, 3, 3, 4);
        assert_eq!(idx(PadMode::Symmetric), vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
        // np.pad(arange(2), (5, 5), 'symmetric'): the reflection repeats
        let wide = sources(PadMode::Symmetric, 5, 5, 2);
        assert_eq!(wide, vec![0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]);
        assert_eq!(idx(PadMode::Reflect), vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(idx(PadMode::Replicate), vec![0, 0, 0, 0, 1, 2, 3, 3, 3, 3]);
        assert_eq!(idx(PadMode::Circular), vec![1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
    }

    #[test]
    fn adjoint_is_the_transpose() {
        // <pad(x), g> == <x, pad_adjoint(g)> for every mode
        let shape = [2, 1, 3, 4];
        let pads = (2, 1, 3, 2);
        let x: Vec<f64> = (0..24).map(|v| (v * 7 % 11) as f64).collect();
        let g: Vec<f64> = (0..2 * 6 * 9).map(|v| (v * 5 % 13) as f64 - 6.0).collect();
        let modes = [
            PadMode::Reflect,
            PadMode::Replicate,
            PadMode::Circular,
            PadMode::Symmetric,
        ];
        for mode in modes {
            let mut px = vec![0.0; g.len()];
            pad(&x, shape, pads, mode, &mut px);
            let mut ag = vec![0.0; x.len()];
            pad_adjoint(&g, shape, pads, mode, &mut ag);
            let lhs: f64 = px.iter().zip(&g).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&ag).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{mode:?}");
        }
    }
}
