//! Pooling layers (torch.nn.functional semantics): [`params`] holds the shape rules, [`ops`]
//! the kernels (max with and without indices, average, adaptive, unpooling, gradients),
//! parallel over the N x C planes.

pub mod ops;
pub mod params;

pub use params::{AdaptiveParams, AvgOptions, PoolParams, PoolSpec, UnpoolParams};
