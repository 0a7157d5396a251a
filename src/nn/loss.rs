//! Losses (torch.nn semantics): cross-entropy of class scores ([`cross_entropy_forward`],
//! [`cross_entropy_backward`]) and the mean squared error ([`mse_forward`],
//! [`mse_backward`]).
//!
//! Parallel over fixed chunks (rows of the logits, runs of elements), and every sum over the
//! batch is a sum of per-chunk partial sums (in f64) added in chunk order: the result never
//! depends on the thread count. Outputs are write-only (`MaybeUninit`), each element
//! written by one pass.
//!
//! Cross-entropy follows torch's `log_softmax` + `nll_loss` (mean): per row `m = max(z)`,
//! `s = sum(exp(z - m))`, `log p[t] = (z[t] - m) - ln(s)`, all in the logits' type, the loss
//! the mean over rows of `-log p[t]` (summed in f64, rounded to the logits' type). The
//! forward saves the probabilities `exp(z - m) * (1 / s)` (0 below the smallest normal
//! number); the gradient is `p * k` with `k`
//! subtracted at the target, `k = grad / N`, as torch's `_log_softmax_backward_data` of
//! `nll_loss_backward` computes it. A NaN in a row, or an infinite maximum, makes the row
//! NaN, as in torch.
//!
//! MSE follows torch's `mse_loss`: `d = x - t` and `d * d` in the input's type, the sum of
//! the squares in f64; the gradient `norm * d * grad` with `norm = 2 / size` ('mean') or 2.

use std::mem::MaybeUninit;

use crate::base::error::ConvError;
use crate::base::real::{select, Real};
use crate::base::simd::{has_avx2_fma, simd_twin};
use crate::base::vmath::{Fused, MulAdd, Unfused, VMath};

crate::choice! {
    /// How a loss reduces its elementwise terms (torch's `reduction=`).
    pub enum Reduction {
        Mean = "mean",
        Sum = "sum",
        None = "none",
    }
}

/// Elements per parallel task (cross-entropy: whole rows of about this many elements).
const CHUNK: usize = 1 << 14;
/// Independent accumulators of the vectorised reductions: several vector registers, so
/// that the adds' latency is hidden.
const LANES: usize = 32;

/// The sum of the accumulators, in order (a pairwise tree defeats the vectoriser of the
/// loop before it: measured 3.5 times slower).
#[inline(always)]
fn fold_lanes<T: Copy + std::ops::Add<Output = T>>(acc: [T; LANES]) -> T {
    let mut s = acc[0];
    for &v in &acc[1..] {
        s = s + v;
    }
    s
}

/// `f(scratch, index, chunk)` for the consecutive `size`-element chunks of `out` (in
/// parallel when `parallel`, each worker making its scratch with `init`), each returning a
/// partial sum; the partial sums are added in chunk order.
fn sum_chunks<T, S, I, F>(parallel: bool, out: &mut [T], size: usize, init: I, f: F) -> f64
where
    T: Send,
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [T]) -> f64 + Send + Sync,
{
    if parallel {
        use rayon::prelude::*;
        let parts: Vec<f64> = out
            .par_chunks_mut(size)
            .enumerate()
            .map_init(init, |s, (i, c)| f(s, i, c))
            .collect();
        parts.iter().fold(0.0, |a, p| a + p)
    } else {
        let mut s = init();
        out.chunks_mut(size)
            .enumerate()
            .map(|(i, c)| f(&mut s, i, c))
            .fold(0.0, |a, p| a + p)
    }
}

/// `f(index, a_chunk, b_chunk)` for the consecutive `size`-element chunks of two outputs of
/// equal length.
fn for_each_chunk2<T, F>(parallel: bool, a: &mut [T], b: &mut [T], size: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T], &mut [T]) + Send + Sync,
{
    if parallel {
        use rayon::prelude::*;
        a.par_chunks_mut(size)
            .zip(b.par_chunks_mut(size))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    } else {
        a.chunks_mut(size)
            .zip(b.chunks_mut(size))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    }
}

/// Whether every target is a class index in `0..classes`; else the error.
fn check_targets(targets: &[i64], classes: usize) -> Result<(), ConvError> {
    let c = classes as i64;
    // branch-free over the batch (the caller's error path finds the offender)
    let bad = targets.iter().fold(false, |b, &t| b | (t < 0) | (t >= c));
    if bad {
        let (lo, hi) = targets
            .iter()
            .fold((i64::MAX, i64::MIN), |(l, h), &t| (l.min(t), h.max(t)));
        return Err(ConvError::value(format!(
            "target must hold class indices in [0, {classes}), got values from {lo} to {hi}"
        )));
    }
    Ok(())
}

/// Rows per parallel task of `classes` columns.
fn rows_per_chunk(classes: usize) -> usize {
    (CHUNK / classes.max(1)).max(1)
}

/// The maximum of a row (NaN is not propagated here: a NaN makes the row's sum NaN).
#[inline(always)]
fn row_max<T: Real>(r: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let mut it = r.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] = select(c[k] > acc[k], c[k], acc[k]);
        }
    }
    let mut m = acc[0];
    for &v in acc[1..].iter().chain(it.remainder()) {
        m = select(v > m, v, m);
    }
    m
}

/// The sum of a row, in a fixed order.
#[inline(always)]
fn row_sum<T: Real>(r: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut it = r.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] += c[k];
        }
    }
    let mut s = fold_lanes(acc);
    for &v in it.remainder() {
        s += v;
    }
    s
}

/// `-log p[t]` of a row, from its target logit, maximum and sum of exponentials, in
/// torch's order: `log p[t] = (z[t] - m) - ln(s)`.
#[inline(always)]
fn row_loss<T: Real>(zt: T, m: T, s: T) -> f64 {
    let ls = T::from_f64(s.to_f64().ln());
    -((zt - m) - ls).to_f64()
}

/// Row length from which a row is processed on its own (its passes vectorise); shorter
/// rows are processed a chunk at a time.
const WIDE: usize = 32;

simd_twin! {
    /// [`row_max`], compiled for AVX2 where the CPU has it.
    fn row_max_t<T: Real>(r: &[T]) -> T = row_max;
}

simd_twin! {
    /// [`row_sum`], compiled for AVX2 where the CPU has it.
    fn row_sum_t<T: Real>(r: &[T]) -> T = row_sum;
}

/// `exp(u)` for `u = z - max(row) <= 0` (or NaN): exact as [`VMath::exp_v`] down to the
/// smallest normal number, 0 below (a probability under 1e-38, or 2e-308 in f64, is 0
/// here where torch may keep a subnormal); fewer operations than the full-range exp.
#[inline(always)]
fn exp_nonpositive<T: VMath, M: MulAdd>(u: T) -> T {
    select(u < T::EXP_NORMAL_MIN, T::ZERO, u.exp_normal::<M, false>())
}

simd_twin! {
    /// `e = exp(z - m)`.
    fn exp_shifted<T: VMath, M: MulAdd>(_m: M, z: &[T], m: T, e: &mut [T]) {
        for (ev, &zv) in e.iter_mut().zip(z) {
            *ev = exp_nonpositive::<T, M>(zv - m);
        }
    }
}

simd_twin! {
    /// `p = e * (1 / s)` (a multiply: the division cost a sixth of the forward pass).
    fn normalise<T: Real>(e: &[T], s: T, p: &mut [MaybeUninit<T>]) {
        let inv = T::ONE / s;
        for (pv, &ev) in p.iter_mut().zip(e) {
            pv.write(ev * inv);
        }
    }
}

/// The maximum of a short row, in order.
#[inline(always)]
fn short_max<T: Real>(r: &[T]) -> T {
    r.iter().fold(T::NEG_INFINITY, |m, &v| select(v > m, v, m))
}

/// The sum of a short row, in order.
#[inline(always)]
fn short_sum<T: Real>(r: &[T]) -> T {
    r.iter().fold(T::ZERO, |s, &v| s + v)
}

simd_twin! {
    /// Short rows of the cross-entropy forward pass (fewer than [`WIDE`] classes): `z -
    /// max(row)` for the whole chunk into `e`, one exp pass over it, then per row the sum
    /// and the normalisation. Returns the sum of the rows' losses.
    fn ce_short_rows<T: VMath, M: MulAdd>(
        _m: M,
        x: &[T],
        classes: usize,
        targets: &[i64],
        p: &mut [MaybeUninit<T>],
        e: &mut [T],
    ) -> f64 {
        let mut loss = 0.0f64;
        for (zr, er) in x.chunks_exact(classes).zip(e.chunks_exact_mut(classes)) {
            let m = short_max(zr);
            for (ev, &zv) in er.iter_mut().zip(zr) {
                *ev = zv - m;
            }
        }
        for ev in e.iter_mut() {
            *ev = exp_nonpositive::<T, M>(*ev);
        }
        for ((zr, (er, pr)), &t) in x
            .chunks_exact(classes)
            .zip(e.chunks_exact(classes).zip(p.chunks_exact_mut(classes)))
            .zip(targets)
        {
            let s = short_sum(er);
            let inv = T::ONE / s;
            for (pv, &ev) in pr.iter_mut().zip(er) {
                pv.write(ev * inv);
            }
            // the row's maximum again (cheaper than keeping it)
            loss += row_loss(zr[t as usize], short_max(zr), s);
        }
        loss
    }
}

/// Rows of the cross-entropy forward pass: the probabilities into `p`, the sum of the
/// rows' losses returned. `e` is scratch (grown as needed, kept across calls). A long row
/// is processed on its own, each pass a small vectorised function (all in L1); short rows
/// a chunk at a time.
fn ce_rows<T: VMath, M: MulAdd>(
    m: M,
    x: &[T],
    classes: usize,
    targets: &[i64],
    p: &mut [MaybeUninit<T>],
    e: &mut Vec<T>,
) -> f64 {
    let need = if classes >= WIDE { classes } else { x.len() };
    if e.len() < need {
        e.resize(need, T::ZERO);
    }
    if classes < WIDE {
        return ce_short_rows(m, x, classes, targets, p, &mut e[..need]);
    }
    let er = &mut e[..classes];
    let mut loss = 0.0f64;
    for ((zr, pr), &t) in x
        .chunks_exact(classes)
        .zip(p.chunks_exact_mut(classes))
        .zip(targets)
    {
        let mx = row_max_t(zr);
        exp_shifted(m, zr, mx, er);
        let s = row_sum_t(er);
        normalise(er, s, pr);
        loss += row_loss(zr[t as usize], mx, s);
    }
    loss
}

/// Cross-entropy of the `n x classes` row-major logits `x` against the class indices
/// `targets` (`n` of them): the mean loss (in f64, rounded to `T`), and the softmax
/// probabilities written into `probs` for [`cross_entropy_backward`]. An empty batch gives
/// NaN (torch's mean of nothing). A target outside `0..classes` is a `ValueError`, before
/// anything is written.
pub fn cross_entropy_forward<T: VMath>(
    x: &[T],
    classes: usize,
    targets: &[i64],
    probs: &mut [MaybeUninit<T>],
    threads: usize,
) -> Result<f64, ConvError> {
    let n = targets.len();
    if x.len() != n * classes || probs.len() != x.len() {
        return Err(ConvError::internal("cross_entropy: length mismatch"));
    }
    check_targets(targets, classes)?;
    if n == 0 {
        return Ok(f64::NAN);
    }
    let total = if has_avx2_fma() {
        ce_forward_with(Fused, x, classes, targets, probs, threads)
    } else {
        ce_forward_with(Unfused, x, classes, targets, probs, threads)
    };
    Ok(T::from_f64(total / n as f64).to_f64())
}

fn ce_forward_with<T: VMath, M: MulAdd>(
    m: M,
    x: &[T],
    classes: usize,
    targets: &[i64],
    probs: &mut [MaybeUninit<T>],
    threads: usize,
) -> f64 {
    let rows = rows_per_chunk(classes);
    sum_chunks(threads > 1, probs, rows * classes, Vec::new, |e, i, p| {
        let r0 = i * rows;
        let nr = p.len() / classes;
        ce_rows(
            m,
            &x[r0 * classes..r0 * classes + p.len()],
            classes,
            &targets[r0..r0 + nr],
            p,
            e,
        )
    })
}

simd_twin! {
    /// Rows of the cross-entropy gradient: `p * k`, minus `k` at the target.
    fn ce_grad_rows<T: Real>(
        p: &[T],
        classes: usize,
        targets: &[i64],
        k: T,
        o: &mut [MaybeUninit<T>],
    ) {
        for ((pr, or), &t) in p.chunks_exact(classes).zip(o.chunks_exact_mut(classes)).zip(targets) {
            for (ov, &pv) in or.iter_mut().zip(pr) {
                ov.write(pv * k);
            }
            let t = t as usize;
            or[t].write(pr[t] * k - k);
        }
    }
}

/// The gradient of [`cross_entropy_forward`] with respect to the logits, from the saved
/// probabilities: `(p - onehot(targets)) * grad_scale` in torch's order, where the caller
/// passes `grad_scale = grad / n` (torch's `grad_output / total_weight`).
pub fn cross_entropy_backward<T: Real>(
    probs: &[T],
    classes: usize,
    targets: &[i64],
    grad_scale: T,
    out: &mut [MaybeUninit<T>],
    threads: usize,
) -> Result<(), ConvError> {
    let n = targets.len();
    if probs.len() != n * classes || out.len() != probs.len() {
        return Err(ConvError::internal(
            "cross_entropy_backward: length mismatch",
        ));
    }
    check_targets(targets, classes)?;
    if n == 0 {
        return Ok(());
    }
    let rows = rows_per_chunk(classes);
    crate::base::par::for_each_chunk(
        threads > 1,
        out,
        rows * classes,
        || (),
        |_, (i, o)| {
            let r0 = i * rows;
            let nr = o.len() / classes;
            ce_grad_rows(
                &probs[r0 * classes..r0 * classes + o.len()],
                classes,
                &targets[r0..r0 + nr],
                grad_scale,
                o,
            )
        },
    );
    Ok(())
}

simd_twin! {
    /// One chunk of the MSE forward pass with a reduction: `d = x - t` into `d`, the sum of
    /// `d * d` (each square in `T`, summed in f64 lanes) returned.
    fn mse_sum_chunk<T: Real>(x: &[T], t: &[T], d: &mut [MaybeUninit<T>]) -> f64 {
        let mut acc = [0.0f64; LANES];
        let n = d.len();
        let mut dc = d.chunks_exact_mut(LANES);
        for ((dc, xc), tc) in (&mut dc).zip(x.chunks_exact(LANES)).zip(t.chunks_exact(LANES)) {
            for k in 0..LANES {
                let v = xc[k] - tc[k];
                dc[k].write(v);
                acc[k] += (v * v).to_f64();
            }
        }
        let tail = n - n % LANES;
        let mut s = fold_lanes(acc);
        for ((dv, &xv), &tv) in dc.into_remainder().iter_mut().zip(&x[tail..]).zip(&t[tail..]) {
            let v = xv - tv;
            dv.write(v);
            s += (v * v).to_f64();
        }
        s
    }
}

simd_twin! {
    /// One chunk of the MSE forward pass without reduction: `d = x - t` and `d * d`.
    fn mse_none_chunk<T: Real>(
        x: &[T],
        t: &[T],
        d: &mut [MaybeUninit<T>],
        sq: &mut [MaybeUninit<T>],
    ) {
        for (((dv, sv), &xv), &tv) in d.iter_mut().zip(sq.iter_mut()).zip(x).zip(t) {
            let v = xv - tv;
            dv.write(v);
            sv.write(v * v);
        }
    }
}

/// MSE forward: `x - t` into `diff` (what [`mse_backward`] reads), and for
/// [`Reduction::None`] the squares into `squares` (which must then have `x.len()`
/// elements); returns the sum of the squares (f64), or 0 for `None`.
pub fn mse_forward<T: Real>(
    x: &[T],
    t: &[T],
    diff: &mut [MaybeUninit<T>],
    squares: Option<&mut [MaybeUninit<T>]>,
    threads: usize,
) -> Result<f64, ConvError> {
    let n = x.len();
    if t.len() != n || diff.len() != n || squares.as_ref().is_some_and(|s| s.len() != n) {
        return Err(ConvError::internal("mse_loss: length mismatch"));
    }
    let par = threads > 1;
    Ok(match squares {
        None => sum_chunks(
            par,
            diff,
            CHUNK,
            || (),
            |_, i, d| {
                let a = i * CHUNK;
                mse_sum_chunk(&x[a..a + d.len()], &t[a..a + d.len()], d)
            },
        ),
        Some(sq) => {
            for_each_chunk2(par, diff, sq, CHUNK, |i, d, s| {
                let a = i * CHUNK;
                mse_none_chunk(&x[a..a + d.len()], &t[a..a + d.len()], d, s)
            });
            0.0
        }
    })
}

/// The output gradient of [`mse_backward`]: one number (after 'mean' or 'sum') or one
/// value per element ('none').
#[derive(Debug, Clone, Copy)]
pub enum LossGrad<'a, T> {
    Scalar(T),
    Elementwise(&'a [T]),
}

simd_twin! {
    /// One chunk of [`mse_backward`] with one output gradient `g`.
    fn mse_grad_scalar<T: Real>(d: &[T], norm: T, g: T, o: &mut [MaybeUninit<T>]) {
        for (ov, &dv) in o.iter_mut().zip(d) {
            ov.write(norm * dv * g);
        }
    }
}

simd_twin! {
    /// One chunk of [`mse_backward`] with elementwise output gradients `g`.
    fn mse_grad_array<T: Real>(d: &[T], norm: T, g: &[T], o: &mut [MaybeUninit<T>]) {
        for ((ov, &dv), &gv) in o.iter_mut().zip(d).zip(g) {
            ov.write(norm * dv * gv);
        }
    }
}

/// MSE gradient with respect to the input, `norm * d * grad` (torch's order), from the
/// saved difference `d = x - t`; `norm` is `2 / size` for 'mean', else 2.
pub fn mse_backward<T: Real>(
    d: &[T],
    norm: T,
    grad: LossGrad<'_, T>,
    out: &mut [MaybeUninit<T>],
    threads: usize,
) -> Result<(), ConvError> {
    if out.len() != d.len() || matches!(grad, LossGrad::Elementwise(g) if g.len() != d.len()) {
        return Err(ConvError::internal("mse_loss_backward: length mismatch"));
    }
    crate::base::par::for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| {
            let a = i * CHUNK;
            let dc = &d[a..a + o.len()];
            match grad {
                LossGrad::Scalar(g) => mse_grad_scalar(dc, norm, g, o),
                LossGrad::Elementwise(g) => mse_grad_array(dc, norm, &g[a..a + o.len()], o),
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh<T: Copy, R>(n: usize, f: impl FnOnce(&mut [MaybeUninit<T>]) -> R) -> (Vec<T>, R) {
        let mut v = vec![MaybeUninit::uninit(); n];
        let r = f(&mut v);
        // SAFETY: the kernels write every element (a missed one would be uninitialised,
        // which Miri reports).
        (
            v.into_iter().map(|e| unsafe { e.assume_init() }).collect(),
            r,
        )
    }

    /// Cross-entropy row by row in f64, from the definition.
    fn ce_reference(x: &[f64], c: usize, t: &[i64]) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut p = vec![0.0; x.len()];
        for (r, &tr) in t.iter().enumerate() {
            let row = &x[r * c..(r + 1) * c];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            for j in 0..c {
                p[r * c + j] = (row[j] - m).exp() / s;
            }
            loss += s.ln() - (row[tr as usize] - m);
        }
        (loss / t.len() as f64, p)
    }

    #[test]
    fn cross_entropy_matches_definition() {
        for &(n, c) in &[(3usize, 4usize), (5, 1), (7, 37), (2, 1000)] {
            let x: Vec<f64> = (0..n * c)
                .map(|i| ((i * 7919) % 101) as f64 / 9.0 - 5.0)
                .collect();
            let t: Vec<i64> = (0..n).map(|i| ((i * 31) % c) as i64).collect();
            let (p, loss) = fresh(n * c, |o| cross_entropy_forward(&x, c, &t, o, 1));
            let loss = loss.unwrap();
            let (want, wp) = ce_reference(&x, c, &t);
            assert!(
                (loss - want).abs() <= 1e-14 * want.abs().max(1.0),
                "{n}x{c}"
            );
            for (a, b) in p.iter().zip(&wp) {
                assert!((a - b).abs() <= 1e-15, "{n}x{c}");
            }
            let (g, r) = fresh(n * c, |o| {
                cross_entropy_backward(&p, c, &t, 0.5 / n as f64, o, 1)
            });
            r.unwrap();
            for r in 0..n {
                for j in 0..c {
                    let hot = if j == t[r] as usize { 1.0 } else { 0.0 };
                    let want = (wp[r * c + j] - hot) * 0.5 / n as f64;
                    assert!((g[r * c + j] - want).abs() <= 1e-16, "{n}x{c}");
                }
            }
        }
    }

    #[test]
    fn cross_entropy_extremes_and_errors() {
        let x = [0.0f32, 1000.0, -1000.0, 0.0, f32::NAN, 2.0, 1.0, 0.0];
        let (p, loss) = fresh(8, |o| cross_entropy_forward(&x, 4, &[1, 2], o, 1));
        assert!(loss.unwrap().is_nan()); // the NaN row
        assert_eq!(&p[..4], &[0.0, 1.0, 0.0, 0.0]);
        assert!(p[4..].iter().all(|v| v.is_nan()));
        let (_, loss) = fresh(4, |o| cross_entropy_forward(&x[..4], 4, &[1], o, 1));
        assert_eq!(loss.unwrap(), 0.0);
        let y = [1.0f32, 2.0, f32::NEG_INFINITY, 0.0];
        let (_, loss) = fresh(4, |o| cross_entropy_forward(&y, 4, &[2], o, 1));
        assert_eq!(loss.unwrap(), f64::INFINITY); // -log(0)
        let y = [1.0f32, f32::INFINITY, 0.0];
        let (p, loss) = fresh(3, |o| cross_entropy_forward(&y, 3, &[0], o, 1));
        assert!(loss.unwrap().is_nan() && p.iter().all(|v| v.is_nan())); // inf - inf
        let (_, loss) = fresh(0, |o| cross_entropy_forward::<f64>(&[], 3, &[], o, 1));
        assert!(loss.unwrap().is_nan());
        let mut o = vec![MaybeUninit::uninit(); 8];
        let e = cross_entropy_forward(&x, 4, &[1, 4], &mut o, 1).unwrap_err();
        assert_eq!(
            e,
            ConvError::value("target must hold class indices in [0, 4), got values from 1 to 4")
        );
        let e = cross_entropy_backward(&x, 4, &[-1, 0], 1.0, &mut o, 1).unwrap_err();
        assert!(matches!(e, ConvError::Value(_)));
    }

    #[test]
    fn mse_matches_definition() {
        let n = 2 * CHUNK + 13;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 / 100.0).collect();
        let t: Vec<f32> = (0..n)
            .map(|i| ((i * 104729) % 997) as f32 / 100.0)
            .collect();
        let (d, s) = fresh(n, |o| mse_forward(&x, &t, o, None, 1));
        let s = s.unwrap();
        let want: f64 = x
            .iter()
            .zip(&t)
            .map(|(a, b)| ((a - b) * (a - b)) as f64)
            .sum();
        assert!((s - want).abs() <= 1e-12 * want);
        assert!(d
            .iter()
            .zip(x.iter().zip(&t))
            .all(|(d, (a, b))| *d == a - b));
        let mut sq = vec![MaybeUninit::uninit(); n];
        let (d2, _) = fresh(n, |o| mse_forward(&x, &t, o, Some(&mut sq), 1));
        assert_eq!(d, d2);
        let (g, _) = fresh(n, |o| mse_backward(&d, 0.25, LossGrad::Scalar(3.0), o, 1));
        assert!(g.iter().zip(&d).all(|(g, d)| *g == 0.25 * d * 3.0));
        let (g, _) = fresh(n, |o| {
            mse_backward(&d, 2.0, LossGrad::Elementwise(&x), o, 1)
        });
        assert!(g
            .iter()
            .zip(d.iter().zip(&x))
            .all(|(g, (d, x))| *g == 2.0 * d * x));
    }

    #[test]
    fn losses_parallel_equal_serial() {
        let (n, c) = (300usize, 1000usize);
        let x: Vec<f32> = (0..n * c)
            .map(|i| ((i * 7919) % 1013) as f32 / 50.0 - 10.0)
            .collect();
        let t: Vec<i64> = (0..n).map(|i| ((i * 31) % c) as i64).collect();
        let (p1, l1) = fresh(n * c, |o| cross_entropy_forward(&x, c, &t, o, 1));
        let (p2, l2) = fresh(n * c, |o| {
            crate::base::threads::run(2, || cross_entropy_forward(&x, c, &t, o, 2))
        });
        assert_eq!(p1, p2);
        assert_eq!(l1.unwrap().to_bits(), l2.unwrap().to_bits());
        let (g1, _) = fresh(n * c, |o| cross_entropy_backward(&p1, c, &t, 0.01, o, 1));
        let (g2, _) = fresh(n * c, |o| {
            crate::base::threads::run(2, || cross_entropy_backward(&p1, c, &t, 0.01, o, 2))
        });
        assert_eq!(g1, g2);
        let (d1, s1) = fresh(n * c, |o| mse_forward(&x, &p1, o, None, 1));
        let (d2, s2) = fresh(n * c, |o| {
            crate::base::threads::run(2, || mse_forward(&x, &p1, o, None, 2))
        });
        assert_eq!(d1, d2);
        assert_eq!(s1.unwrap().to_bits(), s2.unwrap().to_bits());
    }
}
