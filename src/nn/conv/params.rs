//! The shape rules of the convolution family: [`ConvParams`] (conv2d, its gradients) and
//! [`ConvTransposeParams`] (conv_transpose2d). Every output-size formula and every check on the
//! shapes and parameters of these ops lives here, once.

use crate::base::choice::Choice;
use crate::base::error::{check_shapes, positive, ConvError, Result};
use crate::base::real::{relu, Real};

/// Shapes of one convolution: input `(n, cin, h, w)`, weight `(cout, cin / groups, kh, kw)`,
/// output `(n, cout, oh, ow)`, with zero padding `pt, pb` (rows) and `pl, pr` (columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pb: usize,
    pub pl: usize,
    pub pr: usize,
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

fn check_overflow(v: Option<usize>) -> Result<usize> {
    v.ok_or_else(|| ConvError::value("shape arithmetic overflows"))
}

/// `floor((len + pads - dil * (k - 1) - 1) / stride) + 1`, or an error if the dilated kernel is
/// larger than the padded input.
fn out_len(axis: &str, len: usize, pads: usize, k: usize, s: usize, d: usize) -> Result<usize> {
    let padded = check_overflow(len.checked_add(pads))?;
    let eff = check_overflow(d.checked_mul(k - 1).and_then(|v| v.checked_add(1)))?;
    if eff > padded {
        return Err(ConvError::value(format!(
            "kernel size {eff} (dilation {d} x (kernel {k} - 1) + 1) along {axis} is larger \
                 than the padded input size {padded}"
        )));
    }
    Ok((padded - eff) / s + 1)
}

impl ConvParams {
    /// Validate and derive the output shape.
    ///
    /// `pad` is `(top, bottom, left, right)`; `stride` and `dilation` are `(rows, cols)`.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: (usize, usize),
        pad: (usize, usize, usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> Result<Self> {
        let [n, cin, h, w] = input;
        let [cout, cin_g, kh, kw] = weight;
        if groups == 0 {
            return Err(ConvError::value("groups must be a positive integer"));
        }
        positive("stride", stride)?;
        positive("dilation", dilation)?;
        if cin % groups != 0 {
            return Err(ConvError::value(format!(
                "groups={groups} must divide the input channels ({cin})"
            )));
        }
        if cout % groups != 0 {
            return Err(ConvError::value(format!(
                "groups={groups} must divide the output channels ({cout}) of weight"
            )));
        }
        if cin_g * groups != cin {
            // channels-last data (N, H, W, C) shows its channels in the last axis
            let hint = if w == cin_g * groups && cin != w {
                "; rconv takes NCHW input (channels in axis 1): for channels-last (NHWC) \
                 data pass x.transpose(0, 3, 1, 2)"
            } else {
                ""
            };
            return Err(ConvError::value(format!(
                "input has {cin} channels but weight of shape {weight:?} expects {} \
                 (weight.shape[1] * groups = {cin_g} * {groups}){hint}",
                cin_g * groups
            )));
        }
        if kh == 0 || kw == 0 {
            return Err(ConvError::value(format!(
                "weight must have a non-empty kernel, got shape {weight:?}"
            )));
        }
        let (pad_h, pad_w) = (pad.0.checked_add(pad.1), pad.2.checked_add(pad.3));
        let (pad_h, pad_w) = (check_overflow(pad_h)?, check_overflow(pad_w)?);
        let len = |axis, n, pad, k, s, d| out_len(axis, n, pad, k, s, d);
        let oh = len("height", h, pad_h, kh, stride.0, dilation.0)?;
        let ow = len("width", w, pad_w, kw, stride.1, dilation.1)?;
        // Every buffer we allocate must be addressable.
        check_shapes(&[[n, cin, h, w], [n, cout, oh, ow], [cout, cin_g, kh, kw]])?;
        Ok(ConvParams {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            sh: stride.0,
            sw: stride.1,
            dh: dilation.0,
            dw: dilation.1,
            pt: pad.0,
            pb: pad.1,
            pl: pad.2,
            pr: pad.3,
            groups,
            oh,
            ow,
        })
    }

    /// Restrict the output to its first `oh x ow` positions (transposed convolutions whose
    /// `output_padding` reaches past the stride, where only a prefix of the natural output
    /// pairs with the transposed input).
    pub fn with_output_size(mut self, oh: usize, ow: usize) -> Result<Self> {
        if oh > self.oh || ow > self.ow {
            return Err(ConvError::value(format!(
                "output size ({oh}, {ow}) exceeds the convolution's ({}, {})",
                self.oh, self.ow
            )));
        }
        self.oh = oh;
        self.ow = ow;
        Ok(self)
    }

    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }
    /// Rows of the im2col matrix: `cin_g * kh * kw`.
    pub fn k_len(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.cout, self.cin_g(), self.kh, self.kw]
    }
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.oh, self.ow]
    }
    /// A 1x1, stride-1, unpadded layer: the im2col matrix is the input itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pt + self.pb + self.pl + self.pr == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// Depthwise with channel multiplier 1 (`groups == cin == cout`), any stride, dilation
    /// and padding.
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.cin && self.cout == self.cin && self.cin > 0
    }
    /// Depthwise with stride 1 and dilation 1: the direct correlation kernels apply.
    pub fn is_direct_depthwise(&self) -> bool {
        // (the direct kernel computes the natural output size)
        self.oh + self.kh == self.h + self.pt + self.pb + 1
            && self.ow + self.kw == self.w + self.pl + self.pr + 1
            && self.groups == self.cin
            && self.cout == self.cin
            && self.sh == 1
            && self.sw == 1
            && self.dh == 1
            && self.dw == 1
    }
}

/// `(rows, cols)`.
pub type Pair = (usize, usize);
/// `(top, bottom, left, right)`.
pub type Pads = (usize, usize, usize, usize);

/// conv2d's `padding` argument: torch's `'valid'`, `'same'` or explicit `(rows, cols)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Valid,
    Same,
    Explicit(Pair),
}

crate::choice! {
    /// How the padding is filled (`torch.nn.Conv2d`'s `padding_mode`).
    pub enum PadMode {
        Zeros = "zeros",
        /// Mirror without repeating the edge sample (needs padding < input size).
        Reflect = "reflect",
        /// Repeat the edge sample.
        Replicate = "replicate",
        /// Periodic (needs padding <= input size).
        Circular = "circular",
        /// Mirror repeating the edge sample, as `np.pad(mode='symmetric')` (torch has no
        /// such mode); any padding, the reflection repeats.
        Symmetric = "symmetric",
    }
}

/// The options of one conv2d-family call, as torch.nn.functional takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub stride: Pair,
    pub padding: Padding,
    pub dilation: Pair,
    pub groups: usize,
    pub pad_mode: PadMode,
}

/// A conv2d-family call resolved against its shapes: the convolution to run and, for a
/// non-zero `padding_mode`, the explicit padding to apply to the input first (the convolution
/// then runs unpadded on the padded input, as torch.nn.Conv2d does it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvPlan {
    /// The convolution (on the padded input when `explicit` is set).
    pub conv: ConvParams,
    /// The caller's input shape.
    pub input: [usize; 4],
    /// Explicit padding `(pads, mode)` applied before `conv`.
    pub explicit: Option<(Pads, PadMode)>,
}

/// The bias of a layer with `channels` output channels (conv2d, conv_transpose2d, linear):
/// `(channels,)`, a `ValueError` otherwise.
pub fn check_bias(len: usize, channels: usize) -> Result<()> {
    if len != channels {
        return Err(ConvError::value(format!(
            "bias has {len} elements, expected {channels} (the output channels)"
        )));
    }
    Ok(())
}

impl ConvSpec {
    /// The weight shape `(out_channels, in_channels / groups, kh, kw)` of a `Conv2d` layer
    /// with these options, checked as a call checks them, before any input exists: groups
    /// dividing both channel counts, a non-empty kernel, stride and dilation >= 1, and
    /// `padding='same'` only with stride 1.
    pub fn layer_weight(
        &self,
        in_channels: usize,
        out_channels: usize,
        kernel: Pair,
    ) -> Result<[usize; 4]> {
        let g = self.groups;
        if g == 0 {
            return Err(ConvError::value("groups must be a positive integer"));
        }
        positive("kernel_size", kernel)?;
        positive("stride", self.stride)?;
        positive("dilation", self.dilation)?;
        for (what, c) in [("in_channels", in_channels), ("out_channels", out_channels)] {
            if c % g != 0 {
                return Err(ConvError::value(format!(
                    "groups={g} must divide {what} ({c})"
                )));
            }
        }
        self.pads(kernel)?;
        let weight = [out_channels, in_channels / g, kernel.0, kernel.1];
        check_shapes(&[weight])?;
        Ok(weight)
    }

    /// `(top, bottom, left, right)` zero padding with torch's rules: `'same'` pads
    /// `d (k - 1) // 2` before and the rest after, and is refused with a stride > 1.
    pub fn pads(&self, kernel: Pair) -> Result<Pads> {
        match self.padding {
            Padding::Valid => Ok((0, 0, 0, 0)),
            Padding::Same => {
                if self.stride != (1, 1) {
                    return Err(ConvError::value(
                        "padding='same' is not supported for stride > 1",
                    ));
                }
                let total = |d: usize, k: usize| {
                    d.checked_mul(k.saturating_sub(1))
                        .ok_or_else(|| ConvError::value("shape arithmetic overflows"))
                };
                let th = total(self.dilation.0, kernel.0)?;
                let tw = total(self.dilation.1, kernel.1)?;
                Ok((th / 2, th - th / 2, tw / 2, tw - tw / 2))
            }
            Padding::Explicit((ph, pw)) => Ok((ph, ph, pw, pw)),
        }
    }

    /// Validate the call for `input` and `weight` shapes and resolve its padding.
    pub fn plan(&self, input: [usize; 4], weight: [usize; 4]) -> Result<ConvPlan> {
        let pads = self.pads((weight[2], weight[3]))?;
        let explicit = self.pad_mode != PadMode::Zeros && pads != (0, 0, 0, 0);
        if !explicit {
            let conv =
                ConvParams::new(input, weight, self.stride, pads, self.dilation, self.groups)?;
            return Ok(ConvPlan {
                conv,
                input,
                explicit: None,
            });
        }
        let [n, c, h, w] = input;
        let (t, b, l, r) = pads;
        let limit_ok = match self.pad_mode {
            PadMode::Reflect => t.max(b) < h && l.max(r) < w,
            PadMode::Circular => t.max(b) <= h && l.max(r) <= w,
            _ => h > 0 && w > 0,
        };
        if !limit_ok {
            let need = match self.pad_mode {
                PadMode::Reflect => "padding < input size",
                PadMode::Circular => "padding <= input size",
                _ => "a non-empty input",
            };
            return Err(ConvError::value(format!(
                "padding_mode='{}' needs {need}, got padding {pads:?} for input {h}x{w}",
                self.pad_mode.name()
            )));
        }
        let grow = |len: usize, a: usize, z: usize| {
            len.checked_add(a)
                .and_then(|v| v.checked_add(z))
                .ok_or_else(|| ConvError::value("padding is too large: shape arithmetic overflows"))
        };
        let padded = [n, c, grow(h, t, b)?, grow(w, l, r)?];
        let conv = ConvParams::new(
            padded,
            weight,
            self.stride,
            (0, 0, 0, 0),
            self.dilation,
            self.groups,
        )?;
        Ok(ConvPlan {
            conv,
            input,
            explicit: Some((pads, self.pad_mode)),
        })
    }
}

/// Shapes of one transposed convolution (`torch.nn.functional.conv_transpose2d`): input
/// `(n, cin, h, w)`, weight `(cin, cout / groups, kh, kw)`, output `(n, cout, oh, ow)` with
/// `oh = (h - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1`.
///
/// It is the adjoint of [`ConvTransposeParams::conv`], the convolution from the output shape
/// back to the input shape: the forward pass is that convolution's input gradient, and the
/// input gradient is that convolution's forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTransposeParams {
    pub input: [usize; 4],
    pub output: [usize; 4],
    conv: ConvParams,
}

impl ConvTransposeParams {
    /// Validate as torch does and derive the output shape.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        spec: &ConvSpec,
        output_padding: Pair,
    ) -> Result<Self> {
        let (stride, dilation, groups) = (spec.stride, spec.dilation, spec.groups);
        let Padding::Explicit((ph, pw)) = spec.padding else {
            return Err(ConvError::value("padding must be an int or a pair of ints"));
        };
        positive("stride", stride)?;
        positive("dilation", dilation)?;
        if groups == 0 {
            return Err(ConvError::value("groups must be >= 1, got 0"));
        }
        for (o, s, d) in [
            (output_padding.0, stride.0, dilation.0),
            (output_padding.1, stride.1, dilation.1),
        ] {
            if o >= s && o >= d {
                return Err(ConvError::value(format!(
                    "output_padding {output_padding:?} must be smaller than either stride \
                         {stride:?} or dilation {dilation:?}"
                )));
            }
        }
        let [n, cin, h, w] = input;
        let [wcin, cout_g, kh, kw] = weight;
        if wcin != cin {
            return Err(ConvError::value(format!(
                "input has {cin} channels but weight of shape {weight:?} expects {wcin} \
                     (weight.shape[0])"
            )));
        }
        if cin % groups != 0 {
            return Err(ConvError::value(format!(
                "groups={groups} must divide the input channels ({cin})"
            )));
        }
        // torch's size rule: (i - 1) s - 2 p + d (k - 1) + o + 1
        let len = |i: usize, s: usize, p: usize, d: usize, k: usize, o: usize| -> i128 {
            (i as i128 - 1) * s as i128 - 2 * p as i128
                + d as i128 * (k as i128 - 1)
                + o as i128
                + 1
        };
        let oh = len(h, stride.0, ph, dilation.0, kh, output_padding.0);
        let ow = len(w, stride.1, pw, dilation.1, kw, output_padding.1);
        if h == 0 || w == 0 || oh <= 0 || ow <= 0 {
            return Err(ConvError::value(format!(
                "the output size ({oh}, {ow}) for input ({h}, {w}) is not positive"
            )));
        }
        let to_usize =
            |v: i128| usize::try_from(v).map_err(|_| ConvError::value("output size overflows"));
        let cout = cout_g
            .checked_mul(groups)
            .ok_or_else(|| ConvError::value("shape arithmetic overflows"))?;
        let output = [n, cout, to_usize(oh)?, to_usize(ow)?];
        // The equivalent convolution maps `output` back to (h, w): with an output_padding past
        // the stride its natural output is larger, and only the first (h, w) pair up.
        let conv = ConvParams::new(output, weight, stride, (ph, ph, pw, pw), dilation, groups)?
            .with_output_size(h, w)?;
        Ok(ConvTransposeParams {
            input,
            output,
            conv,
        })
    }

    /// The convolution this operator transposes (from the output shape to the input shape).
    pub fn conv(&self) -> &ConvParams {
        &self.conv
    }
}

/// The operands of a forward convolution: contiguous NCHW input, `(cout, cin / groups, kh,
/// kw)` weight, optional bias of `cout`, and whether a ReLU follows in the output pass
/// (`relu(conv + bias)`, fused where each output block is written, while it is in cache).
#[derive(Clone, Copy)]
pub struct Operands<'a, T> {
    pub x: &'a [T],
    pub weight: &'a [T],
    pub bias: Option<&'a [T]>,
    pub relu: bool,
}

impl<'a, T: Real> Operands<'a, T> {
    /// A convolution of `x` with `weight` alone: no bias, no ReLU.
    pub fn plain(x: &'a [T], weight: &'a [T]) -> Self {
        Operands {
            x,
            weight,
            bias: None,
            relu: false,
        }
    }

    /// The output pass of channel `o` over `row`, which holds the bare convolution: the bias
    /// added, then the fused ReLU (nothing to do without either).
    #[inline(always)]
    pub fn finish_row(&self, o: usize, row: &mut [T]) {
        let b = self.bias.map_or(T::ZERO, |b| b[o]);
        if self.relu {
            for e in row {
                *e = relu(*e + b);
            }
        } else if self.bias.is_some() {
            for e in row {
                *e += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shapes_follow_torch() {
        // d2l shapes on 8x8
        let p = |k: (usize, usize), pad: (usize, usize), s: (usize, usize)| {
            ConvParams::new(
                [1, 1, 8, 8],
                [1, 1, k.0, k.1],
                s,
                (pad.0, pad.0, pad.1, pad.1),
                (1, 1),
                1,
            )
            .map(|p| (p.oh, p.ow))
        };
        assert_eq!(p((3, 3), (1, 1), (1, 1)).unwrap(), (8, 8));
        assert_eq!(p((5, 3), (2, 1), (1, 1)).unwrap(), (8, 8));
        assert_eq!(p((3, 3), (1, 1), (2, 2)).unwrap(), (4, 4));
        assert_eq!(p((3, 5), (0, 1), (3, 4)).unwrap(), (2, 2));
        assert!(p((9, 3), (0, 0), (1, 1)).is_err());
        // dilation: effective kernel 5 on 8 + 2 -> 6
        let d =
            ConvParams::new([1, 1, 8, 8], [1, 1, 3, 3], (1, 1), (1, 1, 1, 1), (2, 2), 1).unwrap();
        assert_eq!((d.oh, d.ow), (6, 6));
    }

    #[test]
    fn grouping_errors() {
        let p = |w: [usize; 4], stride: (usize, usize), groups: usize| {
            ConvParams::new([1, 6, 5, 5], w, stride, (0, 0, 0, 0), (1, 1), groups)
        };
        assert!(p([4, 3, 3, 3], (1, 1), 3).is_err()); // cout not divisible by groups
        assert!(p([6, 2, 3, 3], (1, 1), 4).is_err()); // cin not divisible by groups
        assert!(p([6, 3, 3, 3], (1, 1), 3).is_err()); // weight's cin / groups mismatch
        assert!(p([6, 2, 3, 3], (0, 1), 3).is_err()); // zero stride
        assert!(p([6, 2, 3, 3], (1, 1), 3).is_ok());
    }
}
