//! Fully connected layers (torch.nn.functional.linear): `y = x W^T + b` for row-major
//! float32/float64 matrices, and its gradients. Each is one GEMM over the whole batch, split
//! into fixed blocks of output rows (the blocks never depend on the thread count, and every
//! element is summed in one GEMM, so results are identical for any number of threads).
//!
//! [`LinearParams`] holds the shape rule, once: `x (n, in)`, `weight (out, in)`,
//! `bias (out,)`, `y (n, out)`.

use crate::base::error::{check_len, ConvError, Result};
use crate::base::gemm::{gemm_into, MatMut, MatRef};
use crate::base::par::for_each_chunk;
use crate::base::real::Real;

/// Output rows per parallel task of the forward pass and the input gradient.
const ROWS: usize = 16;
/// Weight-gradient rows (output features) per parallel task.
const FEATURES: usize = 16;

/// Shapes of one linear call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearParams {
    pub n: usize,
    pub in_features: usize,
    pub out_features: usize,
}

impl LinearParams {
    /// The shapes of `linear(x, weight)`, or a `ValueError` when the feature counts differ.
    pub fn new(x: [usize; 2], weight: [usize; 2]) -> Result<Self> {
        if x[1] != weight[1] {
            return Err(ConvError::value(format!(
                "input has {} features, weight of shape ({}, {}) expects {}",
                x[1], weight[0], weight[1], weight[1]
            )));
        }
        Ok(LinearParams {
            n: x[0],
            in_features: x[1],
            out_features: weight[0],
        })
    }

    /// `(n, out_features)`.
    pub fn output_shape(&self) -> [usize; 2] {
        [self.n, self.out_features]
    }

    /// Multiply-adds of one GEMM (the thread-count heuristic's work).
    pub fn work(&self) -> usize {
        self.n
            .saturating_mul(self.in_features)
            .saturating_mul(self.out_features)
    }
}

/// `c = a b` for row-major `c` (`cols` wide) and `a` (`(rows, inner)`), and `b`
/// (`(inner, cols)`) given by its strides, over fixed blocks of [`ROWS`] rows, each finished by
/// `then` while it is in cache.
fn rows_gemm<T: Real>(
    c: &mut [T],
    cols: usize,
    (a, inner): (&[T], usize),
    (b, b_strides): (&[T], (usize, usize)),
    threads: usize,
    then: impl Fn(&mut [T]) + Send + Sync,
) {
    for_each_chunk(
        threads > 1,
        c,
        ROWS * cols,
        || (),
        |_, (t, block)| {
            let rows = block.len() / cols;
            gemm_into(
                MatMut::new(block, (rows, cols), cols),
                false,
                MatRef::new(&a[t * ROWS * inner..], (rows, inner), (inner, 1)),
                MatRef::new(b, (inner, cols), b_strides),
            );
            then(block);
        },
    );
}

/// `out = x W^T (+ bias)`, `out` `(n, out_features)` overwritten.
pub fn linear_forward<T: Real>(
    p: &LinearParams,
    (x, weight, bias): (&[T], &[T], Option<&[T]>),
    out: &mut [T],
    threads: usize,
) -> Result<()> {
    let (n, k, m) = (p.n, p.in_features, p.out_features);
    check_len("input", x, n * k)?;
    check_len("weight", weight, m * k)?;
    check_len("output", out, n * m)?;
    if let Some(b) = bias {
        check_len("bias", b, m)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    rows_gemm(out, m, (x, k), (weight, (1, k)), threads, |block| {
        if let Some(b) = bias {
            for row in block.chunks_exact_mut(m) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
        }
    });
    Ok(())
}

/// `gx = g W`, `gx` `(n, in_features)` overwritten.
pub fn linear_backward_input<T: Real>(
    p: &LinearParams,
    g: &[T],
    weight: &[T],
    gx: &mut [T],
    threads: usize,
) -> Result<()> {
    let (n, k, m) = (p.n, p.in_features, p.out_features);
    check_len("grad_output", g, n * m)?;
    check_len("weight", weight, m * k)?;
    check_len("grad_input", gx, n * k)?;
    if gx.is_empty() {
        return Ok(());
    }
    rows_gemm(gx, k, (g, m), (weight, (k, 1)), threads, |_| ());
    Ok(())
}

/// `gw = g^T x` (`(out_features, in_features)`, overwritten) and the bias gradient, the
/// column sums of `g` (accumulated in float64, in order).
pub fn linear_backward_weight<T: Real>(
    p: &LinearParams,
    x: &[T],
    g: &[T],
    gw: &mut [T],
    threads: usize,
) -> Result<Vec<T>> {
    let (n, k, m) = (p.n, p.in_features, p.out_features);
    check_len("input", x, n * k)?;
    check_len("grad_output", g, n * m)?;
    check_len("grad_weight", gw, m * k)?;
    if !gw.is_empty() {
        for_each_chunk(
            threads > 1,
            gw,
            FEATURES * k,
            || (),
            |_, (t, block)| {
                let rows = block.len() / k;
                gemm_into(
                    MatMut::new(block, (rows, k), k),
                    false,
                    MatRef::new(&g[t * FEATURES..], (rows, n), (1, m)),
                    MatRef::new(x, (n, k), (k, 1)),
                );
            },
        );
    }
    let mut acc = vec![0f64; m];
    for row in g.chunks_exact(m.max(1)).take(n) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v.to_f64();
        }
    }
    Ok(acc.into_iter().map(T::from_f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_for_any_thread_count() {
        let (n, k, m) = (70, 5, 40);
        let p = LinearParams::new([n, k], [m, k]).unwrap();
        let x: Vec<f64> = (0..n * k).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
        let w: Vec<f64> = (0..m * k).map(|i| ((i * 3) % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..m).map(|i| i as f64).collect();
        let g: Vec<f64> = (0..n * m).map(|i| ((i * 5) % 9) as f64 - 4.0).collect();
        for threads in [1, 2] {
            let mut y = vec![0.0; n * m];
            linear_forward(&p, (&x, &w, Some(&b)), &mut y, threads).unwrap();
            let mut gx = vec![0.0; n * k];
            linear_backward_input(&p, &g, &w, &mut gx, threads).unwrap();
            let mut gw = vec![0.0; m * k];
            let gb = linear_backward_weight(&p, &x, &g, &mut gw, threads).unwrap();
            for r in 0..n {
                for o in 0..m {
                    let want: f64 = (0..k).map(|i| x[r * k + i] * w[o * k + i]).sum::<f64>() + b[o];
                    assert_eq!(y[r * m + o], want);
                }
                for i in 0..k {
                    let want: f64 = (0..m).map(|o| g[r * m + o] * w[o * k + i]).sum();
                    assert_eq!(gx[r * k + i], want);
                }
            }
            for o in 0..m {
                for i in 0..k {
                    let want: f64 = (0..n).map(|r| g[r * m + o] * x[r * k + i]).sum();
                    assert_eq!(gw[o * k + i], want);
                }
                assert_eq!(gb[o], (0..n).map(|r| g[r * m + o]).sum::<f64>());
            }
        }
        assert!(LinearParams::new([2, 3], [4, 5]).is_err());
    }
}
