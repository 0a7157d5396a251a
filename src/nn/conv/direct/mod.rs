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
