//! The boundary modes of scipy.ndimage's filters and their index map, and the geometry of the
//! two kinds of pass: a 1-D pass along one axis ([`Line1d`]) and an n-D correlation
//! ([`NdParams`]). Every check of an origin or a kernel shape lives here.

use crate::base::error::{ConvError, Result};

crate::choice! {
    /// How scipy.ndimage's filters extend the input beyond its edges (`mode=`). For filters
    /// scipy treats the `grid-` names as these (`'grid-mirror'` is `'reflect'`).
    pub enum NdMode {
        /// `d c b a | a b c d | d c b a`: half-sample symmetric.
        Reflect = "reflect" | "grid-mirror",
        /// `d c b | a b c d | c b a`: whole-sample symmetric.
        Mirror = "mirror",
        /// `a a a | a b c d | d d d`.
        Nearest = "nearest",
        /// `b c d | a b c d | a b c`.
        Wrap = "wrap" | "grid-wrap",
        /// `k k k | a b c d | k k k` with `k = cval`.
        Constant = "constant" | "grid-constant",
    }
}

impl NdMode {
    /// The input index that position `i` of an axis of `n >= 1` elements reads, or `None`
    /// for `cval`: scipy's `NI_ExtendLine` (1-D passes) and `NI_InitFilterOffsets` (n-D
    /// correlation), which agree on every position (periods `2n` for reflect, `2n - 2` for
    /// mirror, `n` for wrap; mirror of one element is nearest).
    ///
    /// One exception: `NI_InitFilterOffsets` maps reflect positions `i = -2jn` for `j >= 2` to
    /// index `-1`, outside the array (it reads memory before the axis); here they read index
    /// 0, as the period says.
    #[inline]
    pub fn index(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let m = match self {
            NdMode::Constant => return None,
            NdMode::Nearest => i.clamp(0, n - 1),
            NdMode::Wrap => i.rem_euclid(n),
            NdMode::Reflect => {
                let m = i.rem_euclid(2 * n);
                if m < n {
                    m
                } else {
                    2 * n - 1 - m
                }
            }
            NdMode::Mirror if n == 1 => 0,
            NdMode::Mirror => {
                let m = i.rem_euclid(2 * n - 2);
                if m < n {
                    m
                } else {
                    2 * n - 2 - m
                }
            }
        };
        Some(m as usize)
    }
}

/// The geometry of a 1-D pass (correlate1d, uniform_filter1d) along an axis of `len`
/// elements with a kernel of `size` taps: the line is extended by `before` positions before
/// and `after` after, and output `i` reads extended positions `i .. i + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line1d {
    pub len: usize,
    pub size: usize,
    pub before: usize,
    pub after: usize,
}

impl Line1d {
    /// scipy's checks: at least one tap, and `-(size / 2) <= origin <= (size - 1) / 2`.
    pub fn new(len: usize, size: usize, origin: i64) -> Result<Self> {
        if size == 0 {
            return Err(ConvError::runtime("no filter weights given"));
        }
        let before = (size / 2) as i64 + origin;
        if before < 0 || before >= size as i64 {
            return Err(ConvError::value(format!(
                "invalid origin {origin} for a filter of size {size}: it must satisfy \
                 -(size // 2) <= origin <= (size - 1) // 2"
            )));
        }
        let before = before as usize;
        Ok(Line1d {
            len,
            size,
            before,
            after: size - 1 - before,
        })
    }

    /// Positions of the extended line.
    pub fn extended(&self) -> usize {
        self.before + self.len + self.after
    }
}

/// The geometry of an n-D correlation: the input shape, the kernel shape and the origins,
/// of one rank, checked as scipy checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdParams {
    pub shape: Vec<usize>,
    pub kshape: Vec<usize>,
    /// Per axis, the kernel tap that sits on the output element: `k / 2 + origin`.
    pub centre: Vec<usize>,
}

impl NdParams {
    pub fn new(shape: &[usize], kshape: &[usize], origins: &[i64]) -> Result<Self> {
        if kshape.len() != shape.len() {
            return Err(ConvError::runtime(format!(
                "weights.ndim ({}) must match the input's rank ({})",
                kshape.len(),
                shape.len()
            )));
        }
        if origins.len() != shape.len() {
            return Err(ConvError::value(format!(
                "Invalid {} element 'origin' sequence for {}-dimensional input array.",
                origins.len(),
                shape.len()
            )));
        }
        let mut centre = Vec::with_capacity(shape.len());
        for (&k, &o) in kshape.iter().zip(origins) {
            let c = (k / 2) as i64 + o;
            if k == 0 || c < 0 || c >= k as i64 {
                return Err(ConvError::value(
                    "Invalid origin; origin must satisfy -(weights.shape[k] // 2) <= origin[k] \
                     <= (weights.shape[k]-1) // 2",
                ));
            }
            centre.push(c as usize);
        }
        Ok(NdParams {
            shape: shape.to_vec(),
            kshape: kshape.to_vec(),
            centre,
        })
    }

    /// Elements of the output.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NI_ExtendLine`'s loops, literally, on a line of `n` values `0..n`.
    fn extend_line(n: usize, before: usize, after: usize, mode: NdMode) -> Vec<Option<usize>> {
        let mut b: Vec<Option<usize>> = vec![None; before + n + after];
        for i in 0..n {
            b[before + i] = Some(i);
        }
        let first = before as isize;
        let last = first + n as isize;
        let mode = if n == 1 && mode == NdMode::Mirror {
            NdMode::Nearest
        } else {
            mode
        };
        let (mut sb, mut sa) = (before as isize, after as isize);
        match mode {
            NdMode::Nearest => {
                for d in 0..before {
                    b[d] = b[first as usize];
                }
                for d in 0..after {
                    b[last as usize + d] = b[last as usize - 1];
                }
            }
            NdMode::Wrap => {
                let (mut src, mut dst) = (last - 1, first - 1);
                while sb > 0 {
                    b[dst as usize] = b[src as usize];
                    dst -= 1;
                    src -= 1;
                    sb -= 1;
                }
                let (mut src, mut dst) = (first, last);
                while sa > 0 {
                    b[dst as usize] = b[src as usize];
                    dst += 1;
                    src += 1;
                    sa -= 1;
                }
            }
            NdMode::Reflect | NdMode::Mirror => {
                let m = (mode == NdMode::Mirror) as isize;
                let (mut src, mut dst) = (first + m, first - 1);
                while sb > 0 && src < last {
                    b[dst as usize] = b[src as usize];
                    dst -= 1;
                    src += 1;
                    sb -= 1;
                }
                src = last - 1 - m;
                while sb > 0 {
                    b[dst as usize] = b[src as usize];
                    dst -= 1;
                    src -= 1;
                    sb -= 1;
                }
                let (mut src, mut dst) = (last - 1 - m, last);
                while sa > 0 && src >= first {
                    b[dst as usize] = b[src as usize];
                    dst += 1;
                    src -= 1;
                    sa -= 1;
                }
                src = first + m;
                while sa > 0 {
                    b[dst as usize] = b[src as usize];
                    dst += 1;
                    src += 1;
                    sa -= 1;
                }
            }
            NdMode::Constant => {}
        }
        b
    }

    #[test]
    fn the_index_map_is_extend_lines_loops() {
        for mode in [
            NdMode::Reflect,
            NdMode::Mirror,
            NdMode::Nearest,
            NdMode::Wrap,
            NdMode::Constant,
        ] {
            for n in 1..7 {
                for ext in [0, 1, 3, 8, 20] {
                    let want = extend_line(n, ext, ext + 1, mode);
                    let got: Vec<_> = (0..want.len())
                        .map(|p| mode.index(p as isize - ext as isize, n))
                        .collect();
                    assert_eq!(got, want, "{mode:?} n={n} ext={ext}");
                }
            }
        }
    }

    #[test]
    fn origins_are_checked() {
        assert_eq!(Line1d::new(5, 3, 0).map(|g| g.before), Ok(1));
        assert_eq!(
            Line1d::new(5, 4, -2).map(|g| (g.before, g.after)),
            Ok((0, 3))
        );
        assert!(Line1d::new(5, 4, 2).is_err());
        assert!(Line1d::new(5, 0, 0).is_err());
        assert!(NdParams::new(&[4, 4], &[3, 2], &[1, 0]).is_ok());
        assert!(NdParams::new(&[4, 4], &[3, 2], &[2, 0]).is_err());
        assert!(NdParams::new(&[4, 4], &[3], &[0]).is_err());
    }
}
