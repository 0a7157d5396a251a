//! The thread pool: one rayon pool per process, sized by `set_num_threads` or
//! `RCONV_NUM_THREADS`.
//!
//! rayon's global pool does not survive `fork()` (the child has no worker threads and would hang
//! waiting for them), so rconv owns its pools and remembers the process id they were built in:
//! a forked child builds a fresh pool on its first call and never touches the parent's. The
//! first pool has the calling thread as a worker (see [`pool_for`]).
//!
//! Workers are pinned, one per CPU of the process ([`affinity`]): left to the scheduler, a
//! worker woken by the calling thread often ran on that thread's CPU for milliseconds while
//! the other CPU idled, and the call took its one-thread time.

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
    // worker 0 of the caller pool is the calling thread: pinned only during calls (`run`)
    let builder = |caller: bool| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rconv-{i}"))
            .start_handler(move |i| {
                if !(caller && i == 0) {
                    affinity::pin_worker(i, threads)
                }
            })
    };
    // A thread can be worker 0 of one pool only (a forked child's thread may still be the
    // parent's): then, or if the build fails, an ordinary pool.
    if caller.is_none() && rayon::current_thread_index().is_none() {
        if let Ok(pool) = builder(true).use_current_thread().build() {
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
    let pool = Arc::new(builder(false).build().ok()?);
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
        Some(pool) => {
            // the calling thread is worker 0 of the caller pool: on worker 0's CPU meanwhile
            let _pinned = (pool.current_thread_index() == Some(0))
                .then(|| affinity::Pinned::worker0(threads));
            pool.install(f)
        }
        None => f(),
    }
}

/// Pinning the workers to the CPUs of the process: worker `i` of a pool of `threads` on the
/// `i`-th CPU of the set the process started with (the calling thread's affinity mask the
/// first time a pool is built), when `threads` does not exceed that set. The calling thread,
/// worker 0 of the caller pool, is pinned to the first CPU during a call only, and its own
/// mask is restored afterwards (not at all if that CPU is outside its mask). Linux only;
/// `RCONV_PIN_THREADS=0` turns it off.
pub mod affinity {
    /// Whether workers are pinned: not with `RCONV_PIN_THREADS=0` (read once).
    pub fn enabled() -> bool {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var("RCONV_PIN_THREADS").map_or(true, |v| v.trim() != "0"))
    }

    #[cfg(target_os = "linux")]
    mod imp {
        use std::mem::{size_of, zeroed};
        use std::sync::OnceLock;

        /// The calling thread's affinity mask.
        fn mask() -> Option<libc::cpu_set_t> {
            // SAFETY: `sched_getaffinity` on the calling thread (pid 0) writes at most
            // `size_of::<cpu_set_t>()` bytes into `m`, a zeroed `cpu_set_t`.
            unsafe {
                let mut m: libc::cpu_set_t = zeroed();
                (libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut m) == 0).then_some(m)
            }
        }

        fn set(m: &libc::cpu_set_t) {
            // SAFETY: `sched_setaffinity` on the calling thread reads `size_of::<cpu_set_t>()`
            // bytes of `m`; a failure (a CPU not allowed) leaves the mask as it was.
            unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), m) };
        }

        fn contains(m: &libc::cpu_set_t, cpu: usize) -> bool {
            // SAFETY: `CPU_ISSET` reads bit `cpu < CPU_SETSIZE` of `m`.
            cpu < libc::CPU_SETSIZE as usize && unsafe { libc::CPU_ISSET(cpu, m) }
        }

        /// The CPUs of the process, in order (read the first time a pool is built).
        fn cpus() -> &'static [usize] {
            static CPUS: OnceLock<Vec<usize>> = OnceLock::new();
            CPUS.get_or_init(|| match mask() {
                Some(m) => (0..libc::CPU_SETSIZE as usize)
                    .filter(|&c| contains(&m, c))
                    .collect(),
                None => Vec::new(),
            })
        }

        /// The CPU of worker `i` in a pool of `threads`, if workers are pinned.
        fn cpu_of(i: usize, threads: usize) -> Option<usize> {
            let cpus = cpus();
            (super::enabled() && threads >= 2 && threads <= cpus.len()).then(|| cpus[i])
        }

        fn only(cpu: usize) -> libc::cpu_set_t {
            // SAFETY: a zeroed `cpu_set_t` is the empty set; `CPU_SET` sets bit
            // `cpu < CPU_SETSIZE` (`cpus` holds no larger index).
            unsafe {
                let mut m: libc::cpu_set_t = zeroed();
                libc::CPU_SET(cpu, &mut m);
                m
            }
        }

        pub fn pin_worker(i: usize, threads: usize) {
            if let Some(cpu) = cpu_of(i, threads) {
                set(&only(cpu));
            }
        }

        /// The calling thread on worker 0's CPU until dropped, then its own mask again.
        pub struct Pinned(Option<libc::cpu_set_t>);

        impl Pinned {
            pub fn worker0(threads: usize) -> Pinned {
                let Some(cpu) = cpu_of(0, threads) else {
                    return Pinned(None);
                };
                match mask() {
                    Some(m) if contains(&m, cpu) => {
                        set(&only(cpu));
                        Pinned(Some(m))
                    }
                    _ => Pinned(None),
                }
            }
        }

        impl Drop for Pinned {
            fn drop(&mut self) {
                if let Some(m) = &self.0 {
                    set(m);
                }
            }
        }

        /// The calling thread's CPUs (for tests).
        #[cfg(test)]
        pub fn current() -> Vec<usize> {
            mask().map_or(Vec::new(), |m| {
                (0..libc::CPU_SETSIZE as usize)
                    .filter(|&c| contains(&m, c))
                    .collect()
            })
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod imp {
        pub fn pin_worker(_i: usize, _threads: usize) {}

        pub struct Pinned;

        impl Pinned {
            pub fn worker0(_threads: usize) -> Pinned {
                Pinned
            }
        }
    }

    pub use imp::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn workers_are_pinned_and_the_caller_mask_restored() {
        let before = affinity::current();
        if !affinity::enabled() || before.len() < 2 {
            return; // one CPU: nothing is pinned (the Python tests say which case ran)
        }
        // every worker (the calling thread too, if it is worker 0) on a CPU of its own (no
        // broadcast: worker 0 of the caller pool may be another test's finished thread)
        let seen = Mutex::new(Vec::new());
        run(2, || {
            rayon::scope(|s| {
                for _ in 0..32 {
                    s.spawn(|_| {
                        std::thread::sleep(std::time::Duration::from_micros(500));
                        let who = (rayon::current_thread_index(), affinity::current());
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(who);
                    });
                }
            })
        });
        let seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
        assert!(seen.iter().all(|(_, m)| m.len() == 1), "{seen:?}");
        for (i, m) in &seen {
            assert!(seen.iter().all(|(j, n)| i != j || m == n), "{seen:?}");
            assert!(seen.iter().all(|(j, n)| i == j || m != n), "{seen:?}");
        }
        // and the calling thread has its own mask back
        assert_eq!(affinity::current(), before);
    }

    #[test]
    fn run_uses_requested_pool() {
        let n = run(2, rayon::current_num_threads);
        assert_eq!(n, 2);
        assert_eq!(run(1, || 7), 7);
    }
}
