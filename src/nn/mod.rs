//! The torch.nn.functional domain: CNN layers over NCHW float32/float64 slices.
//!
//! - [`conv`]: conv2d, its gradients and the transposed convolution;
//! - [`pool`]: max, average, adaptive pooling, unpooling and their gradients.
//!
//! Homes for what comes next: `activation` (ReLU and friends as fused kernels), `norm`
//! (batch normalisation) and `optim` (optimizer steps in place) go beside these.

pub mod conv;
pub mod pool;
