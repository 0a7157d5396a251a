//! The drivers of scipy.ndimage's kernels over arrays of any rank, element type and strides:
//! 1-D passes by blocks of lines, the n-D correlation by padded tiles, in parallel over
//! disjoint parts of the output. Every output element is computed by the same operations
//! whatever the blocking, so the result does not depend on the thread count.

use super::cast::{read_block, read_run, round_to, transpose, write_block, Kind, Out};
use super::kernels::{apply, running_mean, Plan};
use super::params::{Line1d, NdMode, NdParams};
use crate::base::error::{ConvError, Result};
use crate::base::par::for_each_task;

/// An array as the binding hands it over: a data pointer, the element type, the shape and
/// the strides in bytes (any sign).
#[derive(Debug, Clone)]
pub struct Strided {
    ptr: *mut u8,
    kind: Kind,
    shape: Vec<usize>,
    strides: Vec<isize>,
}

// SAFETY: a `Strided` is a view of plain numeric data that the binding keeps alive for the
// call; the drivers read it, and write it only at disjoint elements from different tasks.
unsafe impl Send for Strided {}
// SAFETY: as above.
unsafe impl Sync for Strided {}

impl Strided {
    /// A view of the array at `ptr`.
    ///
    /// # Safety
    /// For every index inside `shape`, `ptr + Σ index[d] strides[d]` must be a valid, aligned
    /// element of `kind` for as long as the view is used; nothing else may write the array
    /// meanwhile, and nothing else may read it while a driver writes it.
    pub unsafe fn new(ptr: *mut u8, kind: Kind, shape: &[usize], strides: &[isize]) -> Self {
        Strided {
            ptr,
            kind,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The options shared by the passes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub mode: NdMode,
    pub cval: f64,
    pub threads: usize,
}

/// What a 1-D pass computes on one block of lines.
#[derive(Clone, Copy)]
enum Pass<'a> {
    Correlate(&'a [f64]),
    Uniform,
}

/// A non-axis dimension: its size and the strides (bytes) of the input and the output.
#[derive(Debug, Clone, Copy)]
struct Dim {
    size: usize,
    si: isize,
    so: isize,
}

/// Byte offsets (input, output) of outer index `t` over `dims` (the last dimension fastest).
fn offsets(dims: &[Dim], mut t: usize) -> (isize, isize) {
    let (mut oi, mut oo) = (0isize, 0isize);
    for d in dims.iter().rev() {
        let i = (t % d.size) as isize;
        t /= d.size;
        oi += i * d.si;
        oo += i * d.so;
    }
    (oi, oo)
}

fn check_pair(src: &Strided, dst: &Strided) -> Result<()> {
    if src.shape != dst.shape {
        return Err(ConvError::internal(
            "ndimage: input and output shapes differ",
        ));
    }
    Ok(())
}

/// `correlate1d`: `w` along `axis` (scipy's `NI_Correlate1D`). `src` may be `dst` itself.
pub fn correlate1d(
    src: &Strided,
    dst: &Strided,
    axis: usize,
    w: &[f64],
    origin: i64,
    opt: Options,
) -> Result<()> {
    pass1d(src, dst, axis, Pass::Correlate(w), w.len(), origin, opt)
}

/// `uniform_filter1d`: the running mean of `size` along `axis` (`NI_UniformFilter1D`).
pub fn uniform1d(
    src: &Strided,
    dst: &Strided,
    axis: usize,
    size: usize,
    origin: i64,
    opt: Options,
) -> Result<()> {
    pass1d(src, dst, axis, Pass::Uniform, size, origin, opt)
}

/// How many lines (or lanes) a task takes.
const LANES_PER_BLOCK: usize = 32;
/// Elements a task of whole lines aims for.
const ELEMENTS_PER_TASK: usize = 1 << 15;

fn pass1d(
    src: &Strided,
    dst: &Strided,
    axis: usize,
    pass: Pass<'_>,
    size: usize,
    origin: i64,
    opt: Options,
) -> Result<()> {
    check_pair(src, dst)?;
    let rank = src.shape.len();
    // a 0-d array is one line of one element
    let (len, sa) = if rank == 0 {
        (1, (0, 0))
    } else if axis < rank {
        (src.shape[axis], (src.strides[axis], dst.strides[axis]))
    } else {
        return Err(ConvError::internal(format!(
            "ndimage: axis {axis} of a {rank}-d array"
        )));
    };
    let g = Line1d::new(len, size, origin)?;
    if src.len() == 0 {
        return Ok(());
    }
    let mut dims: Vec<Dim> = (0..rank)
        .filter(|&d| d != axis && src.shape[d] > 1)
        .map(|d| Dim {
            size: src.shape[d],
            si: src.strides[d],
            so: dst.strides[d],
        })
        .collect();
    // the lanes: the other dimension whose input elements lie closest together
    let inner = (0..dims.len()).min_by_key(|&i| dims[i].si.unsigned_abs());
    let along = match (pass, inner) {
        (Pass::Uniform, _) => false,
        (Pass::Correlate(_), None) => true,
        (Pass::Correlate(_), Some(i)) => sa.0.unsigned_abs() < dims[i].si.unsigned_abs(),
    };
    if let (true, Pass::Correlate(wt)) = (along, pass) {
        // one line at a time, extended in place: the kernel runs along the line
        let lines: usize = dims.iter().map(|d| d.size).product();
        let per_task = (ELEMENTS_PER_TASK / len.max(1)).clamp(1, lines);
        let tasks = lines.div_ceil(per_task);
        let parallel = opt.threads > 1 && tasks > 1;
        let off: Vec<usize> = (0..wt.len()).collect();
        let plan = plan1d(wt, &off);
        crate::base::threads::run(opt.threads, || {
            for_each_task(
                parallel,
                tasks,
                || (vec![0.0; g.extended()], vec![0.0; len]),
                |(buf, out), t| {
                    for line in t * per_task..((t + 1) * per_task).min(lines) {
                        let (oi, oo) = offsets(&dims, line);
                        // SAFETY: the line's elements are inside both views (offsets of
                        // indices inside the shape), and this task alone handles this line.
                        unsafe {
                            along_line(src, dst, (oi, sa.0), (oo, sa.1), &g, plan, opt, buf, out)
                        };
                    }
                },
            )
        });
        return Ok(());
    }
    // (a running mean of a single line takes it as one lane)
    let inner = match inner {
        Some(i) => dims.remove(i),
        None => Dim {
            size: 1,
            si: 0,
            so: 0,
        },
    };
    // lanes contiguous: wide blocks of whole rows; lines contiguous: fewer lanes, longer runs
    let width = if inner.si.unsigned_abs() <= sa.0.unsigned_abs() {
        inner.size.min(WIDE_LANES)
    } else {
        inner.size.min(LANES_PER_BLOCK)
    };
    let across = Across {
        src,
        dst,
        g,
        pass,
        opt,
        axis: sa,
        lane: (inner.si, inner.so),
        then: None,
    };
    across.run_all(&dims, inner.size, width);
    Ok(())
}

/// `correlate1d` along `a` (of `src`) then along `b` (of the result), into `dst`: scipy's two
/// passes, the first result rounded to `dst`'s type between them as scipy stores it, computed
/// row by row without storing the first result. `src` may be `dst` itself (in place, each
/// task takes whole planes of axes `a` and `b`).
pub fn correlate1d_twice(
    src: &Strided,
    dst: &Strided,
    first: (usize, &[f64], i64, NdMode),
    second: (usize, &[f64], i64, NdMode),
    cval: f64,
    threads: usize,
) -> Result<()> {
    check_pair(src, dst)?;
    let rank = src.shape.len();
    let ((a, wa, oa, ma), (b, wb, ob, mb)) = (first, second);
    if a >= rank || b >= rank || a == b {
        return Err(ConvError::internal(format!(
            "ndimage: axes {a}, {b} of a {rank}-d array"
        )));
    }
    let ga = Line1d::new(src.shape[a], wa.len(), oa)?;
    let gb = Line1d::new(src.shape[b], wb.len(), ob)?;
    if src.len() == 0 {
        return Ok(());
    }
    let dims: Vec<Dim> = (0..rank)
        .filter(|&d| d != a && d != b && src.shape[d] > 1)
        .map(|d| Dim {
            size: src.shape[d],
            si: src.strides[d],
            so: dst.strides[d],
        })
        .collect();
    let opt = |mode| Options {
        mode,
        cval,
        threads,
    };
    let across = Across {
        src,
        dst,
        g: ga,
        pass: Pass::Correlate(wa),
        opt: opt(ma),
        axis: (src.strides[a], dst.strides[a]),
        lane: (src.strides[b], dst.strides[b]),
        then: Some(Then {
            g: gb,
            w: wb,
            opt: opt(mb),
        }),
    };
    if src.shape[b] > FUSED_LANES {
        // rows too long to stream: the two passes, the second in place
        correlate1d(src, dst, a, wa, oa, opt(ma))?;
        return correlate1d(dst, dst, b, wb, ob, opt(mb));
    }
    // the lanes are the whole of axis b: each row of the first pass is a line of the second
    across.run_all(&dims, src.shape[b], src.shape[b]);
    Ok(())
}

/// The row pitch (in values) of buffers of `w` lanes: a multiple of 64 bytes, but not of
/// 1 KiB once past it: rows a power of two apart would all fall in the same L1 sets (a
/// 2048-wide pass ran 1.5x slower).
fn pitch(w: usize) -> usize {
    let p = w.next_multiple_of(8);
    if p >= 128 && p.is_multiple_of(128) {
        p + 8
    } else {
        p
    }
}

/// The longest axis `b` that [`correlate1d_twice`] streams rows of (else two passes).
const FUSED_LANES: usize = 1 << 14;
/// Chunks a task's buffer of extended rows holds, at most (see `Across::run`), and the bytes
/// it aims for.
const WINDOWS: usize = 8;
const WINDOW_BYTES: usize = 2 << 20;
/// Lanes of a block when the lanes are contiguous.
const WIDE_LANES: usize = 256;
/// Positions below which a segment is not worth a task.
const MIN_SEGMENT: usize = 64;
/// Bytes of extended rows a task streams through at a time.
const STREAM_BYTES: usize = 256 << 10;

/// A 1-D pass over blocks of lines stored position by position (`w` lanes per row).
struct Across<'a> {
    src: &'a Strided,
    dst: &'a Strided,
    g: Line1d,
    pass: Pass<'a>,
    opt: Options,
    /// Byte strides (input, output) along the axis and along the lanes.
    axis: (isize, isize),
    lane: (isize, isize),
    /// A second pass along the lanes, after the first result is rounded to the output's type
    /// (the lanes must then be the whole of that axis).
    then: Option<Then<'a>>,
}

/// The second pass of [`correlate1d_twice`]: `w` along the lanes.
struct Then<'a> {
    g: Line1d,
    w: &'a [f64],
    opt: Options,
}

thread_local! {
    /// Each thread's [`Stream`], kept from call to call: fresh buffers of this size are
    /// mapped anew and fault in page by page (the kernel's page clearing took 9% of a 2048²
    /// Gaussian with buffers made per call).
    static STREAM: std::cell::RefCell<Stream> = std::cell::RefCell::default();
}

/// A task's buffers: extended rows, the after-extension rows read up front, outputs, and
/// the running sums.
#[derive(Default)]
struct Stream {
    rows: Aligned,
    tail: Vec<f64>,
    out: Aligned,
    sums: Vec<f64>,
    /// The second pass's extended line and its output.
    line: Aligned,
    line_out: Aligned,
}

/// A float64 buffer handed out from a 64-byte boundary: the vector loads of the kernels at
/// offsets that are multiples of 8 then stay inside one cache line (a large `Vec` starts 16
/// bytes into its pages, and every zmm load of a 2048-wide pass straddled two lines).
#[derive(Default)]
struct Aligned(Vec<f64>);

impl Aligned {
    /// `len` values from a 64-byte boundary (their contents are what they were).
    fn get(&mut self, len: usize) -> &mut [f64] {
        if self.0.len() < len + 7 {
            self.0.resize(len + 7, 0.0);
        }
        let skip = self.0.as_ptr().align_offset(64).min(7);
        &mut self.0[skip..skip + len]
    }
}

impl Across<'_> {
    /// Every block of `width` lanes (of `lanes`) at every outer index of `dims`, in tasks.
    fn run_all(&self, dims: &[Dim], lanes: usize, width: usize) {
        let len = self.g.len;
        let blocks = lanes.div_ceil(width);
        let outer: usize = dims.iter().map(|d| d.size).product();
        // independent segments of positions, when no task reads what another writes (not in
        // place) and each output is a fresh sum (not the running mean)
        let in_place = std::ptr::eq(self.src.ptr, self.dst.ptr);
        let segments = match self.pass {
            Pass::Correlate(_) if !in_place => {
                let want = (4 * self.opt.threads).div_ceil(outer * blocks);
                want.clamp(1, len.div_ceil(MIN_SEGMENT).max(1))
            }
            _ => 1,
        };
        let seg_len = len.div_ceil(segments);
        let tasks = outer * blocks * segments;
        let parallel = self.opt.threads > 1 && tasks > 1;
        let (li, lo) = self.lane;
        crate::base::threads::run(self.opt.threads, || {
            for_each_task(
                parallel,
                tasks,
                || (),
                |(), t| {
                    let (rest, seg) = (t / segments, t % segments);
                    let (o, blk) = (rest / blocks, rest % blocks);
                    let (oi, oo) = offsets(dims, o);
                    let c0 = blk * width;
                    let w = width.min(lanes - c0);
                    let (oi, oo) = (oi + c0 as isize * li, oo + c0 as isize * lo);
                    let (s0, s1) = (seg * seg_len, ((seg + 1) * seg_len).min(len));
                    // SAFETY: lanes `c0 .. c0 + w` and every position of the axis are inside both
                    // views; this task alone writes positions `s0 .. s1` of these lanes, and reads
                    // only positions no other task writes (one segment when in place).
                    STREAM.with_borrow_mut(|st| unsafe { self.run((oi, oo), w, (s0, s1), st) });
                },
            )
        });
    }

    /// Outputs `s0 .. s1` of `w` lanes at byte offsets `(oi, oo)`, in chunks: each chunk's
    /// extended rows follow the previous chunk's last `size` rows in the buffer, so that an
    /// input row is read once, before any output row it feeds is written (in place too: rows
    /// past the end, which the extension may map to rows already written, are read first).
    ///
    /// # Safety
    /// The block (its lanes, every position) lies in both views, and its outputs `s0 .. s1`
    /// are this task's alone; in place, the task has all positions.
    unsafe fn run(
        &self,
        (oi, oo): (isize, isize),
        w: usize,
        (s0, s1): (usize, usize),
        st: &mut Stream,
    ) {
        let g = &self.g;
        let size = g.size;
        let ld = pitch(w);
        let chunk = (STREAM_BYTES / 8 / ld).saturating_sub(size).max(16);
        // the extended rows, in a buffer of several chunks: the window of a chunk (local row
        // r is extended position p0 - 1 + r, at buffer row base + r) moves down the buffer,
        // and its carried `size` rows go back to the top only when the buffer runs out
        let windows = (WINDOW_BYTES / (chunk * ld * 8)).clamp(2, WINDOWS);
        let cap = windows * chunk + size;
        // (the padding lanes are computed too, from whatever they hold, and never written)
        let all_rows = st.rows.get(cap * ld);
        let out_buf = st.out.get(chunk * ld);
        st.sums.resize(ld, 0.0);
        st.tail.resize(g.after * w, 0.0);
        if s1 == g.len {
            for a in 0..g.after {
                let row = &mut st.tail[a * w..(a + 1) * w];
                // SAFETY: the block's lanes (the contract); position `len + a` maps inside.
                unsafe { self.load(oi, w, g.before + g.len + a, row) };
            }
        }
        let mut p0 = s0;
        let mut prev_n = None;
        let mut base = 0;
        while p0 < s1 {
            let p1 = (p0 + chunk).min(s1);
            let n = p1 - p0;
            // the previous chunk's last `size` rows are this chunk's first
            let mut r = match prev_n {
                Some(pn) => {
                    base += pn;
                    if base + n + size > cap {
                        all_rows.copy_within(base * ld..(base + size) * ld, 0);
                        base = 0;
                    }
                    size
                }
                None => usize::from(p0 == 0),
            };
            let rows = &mut all_rows[base * ld..(base + n + size) * ld];
            while r < n + size {
                let e = p0 + r - 1;
                if e >= g.before + g.len {
                    let a = e - g.before - g.len;
                    rows[r * ld..r * ld + w].copy_from_slice(&st.tail[a * w..(a + 1) * w]);
                    r += 1;
                } else if e >= g.before {
                    // a run of input rows
                    let run = (n + size - r).min(g.before + g.len - e);
                    let (ai, li) = (self.axis.0, self.lane.0);
                    let i = (e - g.before) as isize;
                    let dst = &mut rows[r * ld..(r + run) * ld];
                    // SAFETY: rows i .. i + run of the block's lanes, inside the input view, not
                    // yet written by this task (they are at or past its next output row).
                    unsafe {
                        read_block(
                            self.src.kind,
                            self.src.ptr.offset(oi + i * ai),
                            (ai, li),
                            (run, w),
                            dst,
                            ld,
                        )
                    };
                    r += run;
                } else {
                    // SAFETY: the block's lanes (the contract); before any output is written.
                    unsafe { self.load(oi, w, e, &mut rows[r * ld..r * ld + w]) };
                    r += 1;
                }
            }
            let out = &mut out_buf[..n * ld];
            match self.pass {
                Pass::Correlate(wt) => {
                    let off: Vec<usize> = (0..wt.len()).map(|k| k * ld).collect();
                    apply(plan1d(wt, &off), &rows[ld..], out);
                }
                Pass::Uniform => {
                    running_mean(rows, ld, n, size, p0 == 0, &mut st.sums, out);
                }
            }
            let (ao, lo) = (self.axis.1, self.lane.1);
            match &self.then {
                None => {
                    let p = self.dst.ptr.wrapping_offset(oo + p0 as isize * ao);
                    // SAFETY: positions p0 .. p1 of the block, this task's alone (the contract).
                    unsafe {
                        write_block(self.dst.kind, p, (ao, lo), (n, w), out, ld, Out::Direct)
                    };
                }
                Some(then) => {
                    // the chunk's n rows, transposed: positions along b by n lanes, so that the
                    // second pass runs across them too (aligned loads, vectors of rows)
                    let gb = &then.g;
                    let lt = pitch(n);
                    let tb = st.line.get(gb.extended() * lt);
                    let tout = st.line_out.get(gb.len * lt);
                    transpose(
                        &out[..(n - 1) * ld + w],
                        ld,
                        (n, w),
                        &mut tb[gb.before * lt..],
                        lt,
                    );
                    // the first result as scipy stores it in the output's type
                    round_to(
                        self.dst.kind,
                        &mut tb[gb.before * lt..(gb.before + gb.len) * lt],
                    );
                    extend(tb, lt, gb, then.opt.mode, then.opt.cval);
                    let off: Vec<usize> = (0..then.w.len()).map(|k| k * lt).collect();
                    apply(plan1d(then.w, &off), tb, tout);
                    let p = self.dst.ptr.wrapping_offset(oo + p0 as isize * ao);
                    // SAFETY: rows p0 .. p1 of the block (all of axis b), this task's alone.
                    unsafe {
                        write_block(
                            self.dst.kind,
                            p,
                            (lo, ao),
                            (gb.len, n),
                            tout,
                            lt,
                            Out::Direct,
                        )
                    };
                }
            }
            prev_n = Some(n);
            p0 = p1;
        }
    }
    /// Extended position `q` of the block's `w` lanes into `row`: an input row, or `cval`.
    ///
    /// # Safety
    /// The block's lanes at byte offset `oi` are inside the input view.
    unsafe fn load(&self, oi: isize, w: usize, q: usize, row: &mut [f64]) {
        let g = &self.g;
        match self.opt.mode.index(q as isize - g.before as isize, g.len) {
            None => row.fill(self.opt.cval),
            Some(i) => {
                let (ai, li) = (self.axis.0, self.lane.0);
                // SAFETY: row `i < len`, lanes `0..w` (the contract).
                unsafe {
                    read_block(
                        self.src.kind,
                        self.src.ptr.offset(oi + i as isize * ai),
                        (ai, li),
                        (1, w),
                        row,
                        w,
                    )
                };
            }
        }
    }
}

/// One line at byte offsets `oi`/`oo` (axis strides `ai`/`ao`): read as float64 into `buf`
/// between its extensions, extended, summed by `plan` into `out`, written back.
///
/// # Safety
/// Every element `offset + p * axis stride` (`p < len`) must be inside its view, and no other
/// task may touch the output line (the input line may be the same memory: it is read in
/// full before it is written).
#[allow(clippy::too_many_arguments)]
unsafe fn along_line(
    src: &Strided,
    dst: &Strided,
    (oi, ai): (isize, isize),
    (oo, ao): (isize, isize),
    g: &Line1d,
    plan: Plan<'_>,
    opt: Options,
    buf: &mut [f64],
    out: &mut [f64],
) {
    let line = &mut buf[g.before..g.before + g.len];
    // SAFETY: positions `0..len` of the line (the caller's contract).
    unsafe { read_run(src.kind, src.ptr.offset(oi), ai, line) };
    extend(buf, 1, g, opt.mode, opt.cval);
    apply(plan, buf, out);
    // SAFETY: positions `0..len` of the line, ours alone (the contract).
    unsafe {
        write_block(
            dst.kind,
            dst.ptr.offset(oo),
            (ao, 0),
            (g.len, 1),
            out,
            1,
            Out::Direct,
        )
    };
}

/// `NI_Correlate1D`'s choice of loop: symmetric or antisymmetric within `DBL_EPSILON` (odd
/// kernels), else the general one.
fn plan1d<'a>(w: &'a [f64], off: &'a [usize]) -> Plan<'a> {
    let n = w.len();
    if n % 2 == 1 {
        let c = n / 2;
        // C's `fabs(d) > DBL_EPSILON` breaks the symmetry; NaN does not
        let close = |d: f64| d.is_nan() || d.abs() <= f64::EPSILON;
        let sym = (1..=c).all(|i| close(w[c + i] - w[c - i]));
        if sym {
            return Plan::Pairs { off, w, neg: false };
        }
        let anti = (1..=c).all(|i| close(w[c + i] + w[c - i]));
        if anti {
            return Plan::Pairs { off, w, neg: true };
        }
    }
    Plan::LastFirst { off, w }
}

/// Fills the `before` and `after` positions of `w` lines stored position by position.
fn extend(buf: &mut [f64], w: usize, g: &Line1d, mode: NdMode, cval: f64) {
    let positions = (0..g.before).chain(g.before + g.len..g.extended());
    for q in positions {
        match mode.index(q as isize - g.before as isize, g.len) {
            Some(i) => buf.copy_within((g.before + i) * w..(g.before + i + 1) * w, q * w),
            None => buf[q * w..(q + 1) * w].fill(cval),
        }
    }
}

/// `correlate`: the n-D correlation of `weights` (C order, shape `kshape`) with the origins
/// (scipy's `NI_Correlate`). Taps with `|w| <= DBL_EPSILON` (and NaN) are skipped; each
/// output starts from 0.0. `src` and `dst` must not overlap.
pub fn correlate(
    src: &Strided,
    dst: &Strided,
    kshape: &[usize],
    weights: &[f64],
    origins: &[i64],
    opt: Options,
) -> Result<()> {
    check_pair(src, dst)?;
    let p = NdParams::new(&src.shape, kshape, origins)?;
    if weights.len() != kshape.iter().product::<usize>() {
        return Err(ConvError::internal(
            "ndimage: weights do not fill their shape",
        ));
    }
    if p.is_empty() {
        return Ok(());
    }
    // rank >= 2 inside: leading axes of one element (a 0-d array is 1x1)
    let lead = 2usize.saturating_sub(p.shape.len());
    let mut shape = vec![1; lead];
    shape.extend(&p.shape);
    let mut ks = vec![1; lead];
    ks.extend(&p.kshape);
    let mut centre = vec![0; lead];
    centre.extend(&p.centre);
    let mut si = vec![0isize; lead];
    si.extend(&src.strides);
    let mut so = vec![0isize; lead];
    so.extend(&dst.strides);
    let r = shape.len();
    // per axis, the input index each padded position reads (None: cval)
    let maps: Vec<Vec<Option<usize>>> = (0..r)
        .map(|d| {
            (0..shape[d] + ks[d] - 1)
                .map(|q| opt.mode.index(q as isize - centre[d] as isize, shape[d]))
                .collect()
        })
        .collect();
    // the taps kept, in C order: their multi-indices and weights
    let mut taps: Vec<(Vec<usize>, f64)> = Vec::new();
    for (f, &wv) in weights.iter().enumerate() {
        if wv.abs() > f64::EPSILON {
            let mut idx = vec![0; r];
            let mut t = f;
            for d in (0..r).rev() {
                idx[d] = t % ks[d];
                t /= ks[d];
            }
            taps.push((idx, wv));
        }
    }
    let w: Vec<f64> = taps.iter().map(|t| t.1).collect();
    // tiles: blocks of rows of axis 0 by segments of the last axis
    let last = r - 1;
    let seg = if shape[last] <= 4096 {
        shape[last]
    } else {
        2048
    };
    let segs = shape[last].div_ceil(seg);
    let mid: usize = (1..last).map(|d| shape[d] + ks[d] - 1).product();
    let row = mid * (seg + ks[last] - 1);
    let budget = (1usize << 16) / row.max(1);
    let mut rows = budget.saturating_sub(ks[0] - 1).max(1).min(shape[0]);
    let want_tasks = 4 * opt.threads;
    if shape[0].div_ceil(rows) * segs < want_tasks {
        rows = rows.min(shape[0].div_ceil(want_tasks.div_ceil(segs)).max(1));
    }
    let blocks = shape[0].div_ceil(rows);
    let tasks = blocks * segs;
    let parallel = opt.threads > 1 && tasks > 1;
    let tile = Tile {
        src,
        dst,
        shape: &shape,
        ks: &ks,
        si: &si,
        so: &so,
        maps: &maps,
        taps: &taps,
        w: &w,
        cval: opt.cval,
    };
    crate::base::threads::run(opt.threads, || {
        for_each_task(
            parallel,
            tasks,
            || (),
            |(), t| {
                let (b, s) = (t / segs, t % segs);
                let r0 = b * rows;
                let c0 = s * seg;
                let rs = rows.min(shape[0] - r0);
                let cs = seg.min(shape[last] - c0);
                STREAM.with_borrow_mut(|st| tile.run(r0, rs, c0, cs, st));
            },
        )
    });
    Ok(())
}

/// The shared state of the n-D correlation's tiles (all axes padded, rank >= 2).
struct Tile<'a> {
    src: &'a Strided,
    dst: &'a Strided,
    shape: &'a [usize],
    ks: &'a [usize],
    si: &'a [isize],
    so: &'a [isize],
    maps: &'a [Vec<Option<usize>>],
    taps: &'a [(Vec<usize>, f64)],
    w: &'a [f64],
    cval: f64,
}

impl Tile<'_> {
    /// Output rows `r0 .. r0 + rs` of axis 0, columns `c0 .. c0 + cs` of the last axis, all
    /// of the middle axes.
    fn run(&self, r0: usize, rs: usize, c0: usize, cs: usize, st: &mut Stream) {
        let r = self.shape.len();
        let last = r - 1;
        // the padded tile's extents and strides (in elements)
        let mut ext: Vec<usize> = (0..r).map(|d| self.shape[d] + self.ks[d] - 1).collect();
        ext[0] = rs + self.ks[0] - 1;
        ext[last] = cs + self.ks[last] - 1;
        let mut ts = vec![1usize; r];
        for d in (0..last).rev() {
            ts[d] = ts[d + 1] * ext[d + 1];
        }
        let buf = st.rows.get(ts[0] * ext[0]);
        let out = st.out.get(cs);
        // fill: one padded row of the last axis per index of the others, by runs of the
        // last axis's index map (cval, or consecutive input indices)
        let rows: usize = ext[..last].iter().product();
        let lmap = &self.maps[last][c0..c0 + ext[last]];
        let mut runs: Vec<(usize, usize, Option<usize>)> = Vec::new();
        let mut q = 0;
        while q < lmap.len() {
            let mut e = q + 1;
            while e < lmap.len() && lmap[e] == lmap[q].map(|i| i + (e - q)) && lmap[q].is_some() {
                e += 1;
            }
            runs.push((q, e, lmap[q]));
            q = e;
        }
        let mut idx = vec![0usize; last];
        for tr in 0..rows {
            let mut t = tr;
            for d in (0..last).rev() {
                idx[d] = t % ext[d];
                t /= ext[d];
            }
            let dst = &mut buf[tr * ext[last]..(tr + 1) * ext[last]];
            let mut base = Some(0isize);
            for d in 0..last {
                let q = if d == 0 { r0 + idx[0] } else { idx[d] };
                base = match (base, self.maps[d][q]) {
                    (Some(b), Some(i)) => Some(b + i as isize * self.si[d]),
                    _ => None,
                };
            }
            let Some(base) = base else {
                dst.fill(self.cval);
                continue;
            };
            self.fill_row(base, &runs, dst);
        }
        // compute: one output line per index of the axes but the last
        let off: Vec<usize> = self
            .taps
            .iter()
            .map(|(k, _)| k.iter().zip(&ts).map(|(a, b)| a * b).sum())
            .collect();
        let plan = Plan::Taps {
            off: &off,
            w: self.w,
        };
        let lines: usize = rs * self.shape[1..last].iter().product::<usize>();
        for line in 0..lines {
            let mut t = line;
            let (mut tb, mut ob) = (0usize, 0isize);
            for d in (0..last).rev() {
                let size = if d == 0 { rs } else { self.shape[d] };
                let i = t % size;
                t /= size;
                tb += i * ts[d];
                let oi = if d == 0 { r0 + i } else { i };
                ob += oi as isize * self.so[d];
            }
            apply(plan, &buf[tb..], out);
            ob += c0 as isize * self.so[last];
            // SAFETY: output row (r0 + i0, middle indices) columns c0 .. c0 + cs: inside the
            // view, and only this task writes them (tiles are disjoint).
            unsafe {
                write_block(
                    self.dst.kind,
                    self.dst.ptr.offset(ob),
                    (self.so[last], 0),
                    (cs, 1),
                    out,
                    1,
                    Out::Uint64Negated,
                )
            };
        }
    }

    /// One padded row of the last axis, whose other coordinates start at byte offset `base`,
    /// by `runs` of its index map.
    fn fill_row(&self, base: isize, runs: &[(usize, usize, Option<usize>)], dst: &mut [f64]) {
        let s = self.si[self.si.len() - 1];
        for &(q0, q1, i0) in runs {
            match i0 {
                None => dst[q0..q1].fill(self.cval),
                Some(i0) => {
                    let p = self.src.ptr.wrapping_offset(base + i0 as isize * s);
                    // SAFETY: input indices i0 .. i0 + (q1 - q0) of the last axis are inside
                    // the shape (the index maps), at a row inside the view.
                    unsafe { read_run(self.src.kind, p, s, &mut dst[q0..q1]) };
                }
            }
        }
    }
}
