//! The direct-convolution engine: register-blocked microkernels over channel-blocked
//! layouts, converted inside each call, with no im2col (oneDNN's brgemm and Zhang, Franchetti
//! and Low's direct convolution). Hand-vectorised through [`crate::base::simd::Vector`], so
//! each kernel runs at the process's SIMD level (avx512, avx2 or generic).
//!
//! - [`forward`]: dense and grouped forward pass (first layers with 1-3 input channels
//!   included);
//! - [`backward`]: the input gradient and the weight gradient of dense and grouped layers;
//! - [`depthwise`]: depthwise layers (any stride, dilation and zero padding) in a
//!   channel-blocked layout, forward and both gradients.

pub mod backward;
pub mod depthwise;
pub mod forward;

use super::cost::Pass;
use super::params::{ConvParams, Operands};
use crate::base::scalar::Elem;
use crate::base::simd::{SimdReal, Vector};

/// Whether the direct engine computes `pass` of `p` (whatever it costs).
pub fn supports(p: &ConvParams, pass: Pass) -> bool {
    if p.is_depthwise() {
        return depthwise::applies(p, 0);
    }
    match pass {
        Pass::Forward => forward::supports(p),
        Pass::InputGrad | Pass::WeightGrad => backward::supports(p),
    }
}

/// Whether the direct engine is the cheapest for `pass` of `p` (the measured rules of each
/// kernel family, asked by [`super::cost`]).
pub fn pays(p: &ConvParams, pass: Pass, size: usize) -> bool {
    if p.is_depthwise() {
        // every pass, at every size: measured (Zen 5, 1 thread, float32, 3x3) 1.2-6.1x the row
        // kernels (stride 1) and 2.0-8.7x im2col, forward and backward
        return depthwise::applies(p, size);
    }
    match pass {
        Pass::Forward => forward::applies(p, size),
        Pass::InputGrad => backward::input_applies(p, size),
        Pass::WeightGrad => backward::weight_applies(p, size),
    }
}

/// The forward pass (where [`supports`]).
pub fn forward<T: SimdReal>(p: &ConvParams, op: Operands<'_, T>, out: &mut [T], threads: usize) {
    if p.is_depthwise() {
        depthwise::forward(p, op, out, threads)
    } else {
        forward::forward(p, op, out, threads)
    }
}

/// The input gradient, overwriting `grad_input` (where [`supports`]).
pub fn backward_input<T: SimdReal>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    if p.is_depthwise() {
        depthwise::backward_input(p, grad_output, weight, grad_input, threads)
    } else {
        backward::backward_input(p, grad_output, weight, grad_input, threads)
    }
}

/// The weight gradient, overwriting `grad_weight` (where [`supports`]).
pub fn backward_weight<T: SimdReal>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    threads: usize,
) {
    if p.is_depthwise() {
        depthwise::backward_weight(p, x, grad_output, grad_weight, threads)
    } else {
        backward::backward_weight(p, x, grad_output, grad_weight, threads)
    }
}

/// Writes `n` pixels of channel vectors, pixel `j` at `buf[j cs ..][..LANES]` (channel `k` at
/// lane `k`), to `nc` planes: `dst[k ps + j]` for `k < nc`, by in-register transposes
/// ([`Vector::transpose`]): the way the direct kernels' channel-blocked results reach NCHW.
///
/// # Safety
/// The level's features are on, and `dst` is valid for writes at every `k ps + j` (`k <
/// nc`, `j < n`).
#[inline(always)]
pub(crate) unsafe fn to_planes<V: Vector>(
    buf: &[V::Elem],
    cs: usize,
    n: usize,
    nc: usize,
    dst: *mut V::Elem,
    ps: usize,
) {
    let l = V::LANES;
    if n == 0 || nc == 0 {
        return;
    }
    assert!(nc <= l && l <= 16 && cs >= l && buf.len() >= (n.div_ceil(l) * l - 1) * cs + l);
    let bp = buf.as_ptr();
    let mut tmp = [V::Elem::ZERO; 256];
    let mut j = 0;
    while j < n {
        let m = l.min(n - j);
        // SAFETY: the transposes read pixels `j .. j + l` (`<= ceil(n / l) l`) of `buf`, `l`
        // elements each, inside it (asserted); the direct one writes `dst[k ps + j ..][..l]`
        // for `k < l = nc`, `j + l <= n`, the copies `dst[k ps + j ..][..m]` for `k < nc`:
        // valid by the contract.
        unsafe {
            if nc == l && m == l {
                V::transpose(bp.add(j * cs), cs, dst.add(j), ps);
            } else {
                V::transpose(bp.add(j * cs), cs, tmp.as_mut_ptr(), l);
                for k in 0..nc {
                    for r in 0..m {
                        *dst.add(k * ps + j + r) = tmp[k * l + r];
                    }
                }
            }
        }
        j += m;
    }
}
