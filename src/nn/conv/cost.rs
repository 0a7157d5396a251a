//! The choice among the convolution engines, one per shape and pass: which engines can run a
//! [`ConvParams`] ([`ConvParams::supports`]) and which one runs it ([`ConvParams::engine`],
//! the cost model). The forward pass, both gradients, the transposed convolution and
//! `_rconv.conv_engines` (tests, docs) all ask here.

use super::params::ConvParams;
use super::{direct, winograd};
use std::sync::atomic::{AtomicU8, Ordering};

crate::choice! {
    /// The engines of the convolution family.
    pub enum Engine {
        /// Register-blocked microkernels over blocked layouts, no im2col ([`direct`]).
        Direct = "direct",
        /// Stride-1 depthwise through the signal row kernels ([`super::depthwise`]).
        Depthwise = "depthwise",
        /// F(2x2, 3x3) for 3x3 stride-1 ungrouped layers ([`winograd`]).
        Winograd = "winograd",
        /// A 1x1 unpadded layer as one GEMM on the input itself (subsampled first for a
        /// stride above 1).
        Gemm1x1 = "gemm1x1",
        /// im2col (tiled, or row runs) and a GEMM; for the input gradient, the row runs of the
        /// adjoint forward or col2im ([`super::im2col`]).
        Im2col = "im2col",
    }
}

crate::choice! {
    /// The passes of a convolution.
    pub enum Pass {
        Forward = "forward",
        InputGrad = "input_grad",
        WeightGrad = "weight_grad",
    }
}

impl Engine {
    pub const ALL: [Engine; 5] = [
        Engine::Direct,
        Engine::Depthwise,
        Engine::Winograd,
        Engine::Gemm1x1,
        Engine::Im2col,
    ];
}

impl Pass {
    pub const ALL: [Pass; 3] = [Pass::Forward, Pass::InputGrad, Pass::WeightGrad];
}

/// `u8::MAX`: no forced engine.
static FORCED: AtomicU8 = AtomicU8::new(u8::MAX);

/// Force `engine` wherever it can run (tests that run every engine on the same cases; not a
/// public API), or restore the cost model with `None`.
pub fn force_engine(engine: Option<Engine>) {
    let v = engine.map_or(u8::MAX, |e| {
        Engine::ALL.iter().position(|&x| x == e).unwrap_or(0) as u8
    });
    FORCED.store(v, Ordering::SeqCst);
}

fn forced() -> Option<Engine> {
    Engine::ALL
        .get(FORCED.load(Ordering::Relaxed) as usize)
        .copied()
}

/// Where both run a 3x3 stride-1 forward pass, the direct engine is faster on narrow planes
/// with few channels. Measured on a Zen 5 (avx512, 2 threads, float32, batch 32, 8 at width
/// 56; ms direct / Winograd): 32->64 @8 0.45/0.94, @16 1.44/2.58, @32 3.17/4.56, @56
/// 3.09/2.86; 64 @8 0.73/1.53, @16 2.93/4.04, @32 5.67/6.73, @56 5.46/4.73; 128 @8
/// 1.63/4.37, @16 5.66/5.81, @32 21.2/17.6; 256 @8 6.07/7.04, @16 20.9/15.7.
fn direct_beats_winograd(p: &ConvParams) -> bool {
    p.ow < 48 && p.ow * p.cin.min(p.cout) < 4096
}

impl ConvParams {
    /// Whether `engine` computes `pass` of this convolution at all (whatever it costs).
    pub fn supports(&self, engine: Engine, pass: Pass) -> bool {
        let p = self;
        match engine {
            Engine::Im2col => true,
            Engine::Gemm1x1 => p.is_pointwise() || super::subsampled(p).is_some(),
            Engine::Depthwise => {
                p.is_direct_depthwise() && (pass != Pass::InputGrad || (p.pt < p.kh && p.pl < p.kw))
            }
            Engine::Winograd => match pass {
                Pass::Forward => winograd::supports(p),
                Pass::InputGrad => super::winograd_adjoint(p, false).is_some(),
                Pass::WeightGrad => false,
            },
            Engine::Direct => direct::supports(p, pass),
        }
    }

    /// The engines that can compute `pass`, in [`Engine::ALL`]'s order.
    pub fn engines(&self, pass: Pass) -> Vec<Engine> {
        Engine::ALL
            .into_iter()
            .filter(|&e| self.supports(e, pass))
            .collect()
    }

    /// The engine that computes `pass` for elements of `size` bytes: the forced one where it
    /// can run, else the cost model's choice.
    pub fn engine(&self, pass: Pass, size: usize) -> Engine {
        if let Some(e) = forced().filter(|&e| self.supports(e, pass)) {
            return e;
        }
        self.cheapest(pass, size)
    }

    /// The cost model: measured rules, first match wins.
    fn cheapest(&self, pass: Pass, size: usize) -> Engine {
        let p = self;
        // depthwise: the direct kernels (any stride), 1.2-3.6x the row kernels at stride 1
        // (Zen 5, 1 thread, k3; see direct/depthwise.rs)
        if p.is_depthwise() && direct::pays(p, pass, size) {
            return Engine::Direct;
        }
        if p.supports(Engine::Depthwise, pass) {
            return Engine::Depthwise;
        }
        match pass {
            Pass::Forward => {
                let winograd = winograd::applies(p, size) && !super::winograd_disabled();
                let direct = direct::pays(p, pass, size);
                if winograd && !(direct && direct_beats_winograd(p)) {
                    Engine::Winograd
                } else if direct {
                    Engine::Direct
                } else if p.supports(Engine::Gemm1x1, pass) {
                    Engine::Gemm1x1
                } else {
                    Engine::Im2col
                }
            }
            Pass::InputGrad => {
                let winograd =
                    super::winograd_adjoint(p, true).is_some_and(|q| winograd::applies(&q, size));
                // the Winograd adjoint keeps 3x3 stride-1 layers of 128 input channels and
                // more (direct 0.59-1.02x of it on the grid, 0.88-1.63x at 64 channels)
                if direct::pays(p, pass, size) && !(winograd && p.cin >= 128) {
                    Engine::Direct
                } else if winograd {
                    Engine::Winograd
                } else if p.supports(Engine::Gemm1x1, pass) {
                    Engine::Gemm1x1
                } else {
                    Engine::Im2col
                }
            }
            // 1x1 stride 2, 2 threads (ms, GEMM of the subsampled input / direct): 64 @32
            // 0.9/8.9, 256 @16 2.6/5.3
            Pass::WeightGrad if p.supports(Engine::Gemm1x1, pass) => Engine::Gemm1x1,
            Pass::WeightGrad if direct::pays(p, pass, size) => Engine::Direct,
            Pass::WeightGrad => Engine::Im2col,
        }
    }
}
