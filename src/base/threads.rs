//! The thread pool: one rayon pool per process, sized by `set_num_threads` or
//! `RCONV_NUM_THREADS`.
//!
//! rayon's global pool does not survive `fork()` (the child has no worker threads and would hang
//! waiting for them), so rconv owns its pools and remembers the process id they were built in:
//! a forked child builds a fresh pool on its first call and never touches the parent's. The
//! first pool has the calling thread as a worker (see [`pool_for`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::ThreadPool;

/// 0 means "not set": use the default.
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

struct PoolState {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

/// The ordinary pool (any thread count but the caller pool's, or a thread other than its
/// builder's first call).
static POOL: Mutex<Option<PoolState>> = Mutex::new(None);

/// The pool whose worker 0 is the thread that first needed a pool (see [`pool_for`]).
static CALLER_POOL: Mutex<Option<PoolState>> = Mutex::new(None);

/// The default thread count: `RCONV_NUM_THREADS` if it holds a positive integer, else the
/// number of CPUs available to the process.
pub fn default_num_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        std::env::var("RCONV_NUM_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    })
}

/// Upper bound on the thread count accepted by `set_num_threads`.
pub const MAX_THREADS: usize = 1024;

/// Set the number of threads used by later calls (`n >= 1`).
pub fn set_num_threads(n: usize) {
    REQUESTED.store(n.clamp(1, MAX_THREADS), Ordering::SeqCst);
}

/// Where [`get_num_threads`]'s value comes from: `"set_num_threads"`, `"RCONV_NUM_THREADS"`
/// or `"default"` (the CPUs available to the process).
pub fn num_threads_source() -> &'static str {
    if REQUESTED.load(Ordering::SeqCst) != 0 {
        return "set_num_threads";
    }
    let env = std::env::var("RCONV_NUM_THREADS").ok();
    match env.and_then(|s| s.trim().parse::<usize>().ok()) {
        Some(n) if n >= 1 => "RCONV_NUM_THREADS",
        _ => "default",
    }
}

/// The number of threads later calls will use.
pub fn get_num_threads() -> usize {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => default_num_threads(),
        n => n,
    }
}

/// Work (multiply-adds or element visits) below which one more thread does not pay for
/// itself: dispatching to the pool costs about 10 µs, about 64k multiply-adds of the kernels.
pub const WORK_PER_THREAD: usize = 1 << 16;

/// The thread count for a call of `work` units: [`get_num_threads`], capped so that each
/// thread has at least [`WORK_PER_THREAD`] (tiny calls run on the calling thread, without
/// dispatching to the pool). The kernels' results never depend on the thread count.
pub fn for_work(work: usize) -> usize {
    get_num_threads().min(1 + work / WORK_PER_THREAD)
}

/// The pool for `threads` workers in this process, building it if needed.
///
/// The first pool is built with the calling thread as its worker 0 (rayon's
/// `use_current_thread`), and kept for the life of the process: when that thread (usually
/// Python's main thread) calls in, it splits the work and runs its own share while the
/// other workers steal the rest, instead of handing the whole call to the pool and sleeping
/// until a worker wakes it (on 2 cores that handoff cost as much as a ReLU of 1M elements
/// on one thread). Other threads, and other thread counts, use an ordinary pool.
fn pool_for(threads: usize) -> Option<Arc<ThreadPool>> {
    let pid = std::process::id();
    let mut caller = CALLER_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(state) = caller.as_ref() {
        if state.pid == pid && state.threads == threads {
            return Some(Arc::clone(&state.pool));
        }
    }
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(state) = guard.as_ref() {
        if state.pid == pid && state.threads == threads {
            return Some(Arc::clone(&state.pool));
        }
    }
    for slot in [&mut *caller, &mut *guard] {
        if let Some(old) = slot.take_if(|old| old.pid != pid) {
            // A forked child: the parent's workers do not exist here. Dropping the pool would
            // try to signal them; leak it instead (a few bytes, once per fork).
            std::mem::forget(old);
        }
    }
    let builder = || {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rconv-{i}"))
    };
    // A thread can be worker 0 of one pool only (a forked child's thread may still be the
    // parent's): then, or if the build fails, an ordinary pool.
    if caller.is_none() && rayon::current_thread_index().is_none() {
        if let Ok(pool) = builder().use_current_thread().build() {
            let pool = Arc::new(pool);
            *caller = Some(PoolState {
                pid,
                threads,
                pool: Arc::clone(&pool),
            });
            return Some(pool);
        }
    }
    // Same process, other size: dropping the old ordinary pool's Arc is safe; calls still
    // running on it hold their own Arc and finish there.
    let pool = Arc::new(builder().build().ok()?);
    *guard = Some(PoolState {
        pid,
        threads,
        pool: Arc::clone(&pool),
    });
    Some(pool)
}

/// Run `f` with `threads` workers available to rayon's parallel iterators inside it.
/// With one thread (or if no pool can be built) `f` runs on the calling thread.
pub fn run<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads <= 1 {
        return f();
    }
    match pool_for(threads) {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_uses_requested_pool() {
        let n = run(2, rayon::current_num_threads);
        assert_eq!(n, 2);
        assert_eq!(run(1, || 7), 7);
    }
}
