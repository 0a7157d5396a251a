//! Pooling layers (torch.nn.functional semantics) for NCHW float32/float64 slices, parallel
//! over the N x C planes.
//!
//! - [`params`]: the shape rules ([`PoolParams`], [`AvgOptions`], [`AdaptiveParams`],
//!   [`UnpoolParams`]);
//! - [`max`]: max pooling, with and without torch's argmax indices, and its input gradient
//!   (from the argmax or from saved indices);
//! - [`avg`]: average pooling and its input gradient;
//! - [`adaptive`]: adaptive average pooling (global average pooling among it) and adaptive
//!   max pooling, and their input gradients;
//! - [`unpool`]: max_unpool2d (each value to its saved index);
//! - `planes`: what the families share: the drivers over the planes and torch's
//!   window-maximum rule.
//!
//! The families use `planes` and [`params`], never each other.

pub mod adaptive;
pub mod avg;
pub mod max;
pub mod params;
mod planes;
pub mod unpool;

pub use adaptive::{
    adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
    adaptive_max_pool2d_forward,
};
pub use avg::{avg_pool2d_backward, avg_pool2d_forward};
pub use max::{
    check_plane_indices, max_pool2d_backward, max_pool2d_backward_indices, max_pool2d_forward,
};
pub use params::{AdaptiveParams, AvgOptions, PoolParams, PoolSpec, UnpoolParams};
pub use unpool::max_unpool2d;

#[cfg(test)]
mod tests {
    use super::*;
    use params::tests::pp;

    #[test]
    fn d2l_pooling_examples() {
        let x: Vec<f64> = (0..9).map(f64::from).collect();
        let p = pp([1, 1, 3, 3], (2, 2), (1, 1), (0, 0), (1, 1), false).unwrap();
        let mut out = vec![0.0; 4];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![4.0, 5.0, 7.0, 8.0]);
        let opt = AvgOptions::new(true, None).unwrap();
        avg_pool2d_forward(&p, &x, &mut out, opt, 1);
        assert_eq!(out, vec![2.0, 3.0, 5.0, 6.0]);
        let x: Vec<f64> = (0..16).map(f64::from).collect();
        let p = pp([1, 1, 4, 4], (3, 3), (3, 3), (0, 0), (1, 1), false).unwrap();
        let mut out = vec![0.0; 1];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![10.0]);
        let p = pp([1, 1, 4, 4], (3, 3), (2, 2), (1, 1), (1, 1), false).unwrap();
        let mut out = vec![0.0; 4];
        max_pool2d_forward(&p, &x, &mut out, None, 1);
        assert_eq!(out, vec![5.0, 7.0, 13.0, 15.0]);
    }
}
