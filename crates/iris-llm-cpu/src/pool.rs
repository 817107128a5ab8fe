//! A small pool of persistent threads for the forward pass. A decode step hands out about five
//! jobs per layer, each a few microseconds long, so the hand-off must cost well under a
//! microsecond: workers spin on an epoch counter for a while after each job, then sleep on a
//! condition variable so an idle assistant does not keep cores busy.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker spins for the next job before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    epoch: AtomicUsize,
    pending: AtomicUsize,
    quit: AtomicBool,
    panicked: AtomicBool,
    /// Written by `run` before the epoch moves, read by workers after they see it move.
    job: UnsafeCell<Option<Job>>,
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only while no worker reads it (between epochs), and the closure it
// points to is only called while `Pool::run`, which owns the borrow, waits.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// `threads` in all, the caller's included.
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("iris-llm-{i}"))
                    .spawn(move || worker(&shared, i))
                    .expect("spawning an LLM worker thread")
            })
            .collect();
        Self { shared, workers }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every thread index `i` (0 on the caller) and returns when all are done.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            return f(0);
        }
        let s = &self.shared;
        // SAFETY: the lifetime is erased only until every worker has reported back below.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f) };
        // SAFETY: every worker finished the previous job (pending was 0), so none reads `job`.
        unsafe { *s.job.get() = Some(job) };
        s.pending.store(self.workers.len(), Ordering::SeqCst);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        // A worker counts itself a sleeper before its last look at the epoch, so either it saw
        // the new epoch or it is counted here (and waits on the lock we take to notify).
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        f(0);
        while s.pending.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        if s.panicked.swap(false, Ordering::AcqRel) {
            panic!("an LLM worker thread panicked");
        }
    }
}

fn worker(s: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.epoch.load(Ordering::Acquire) != seen || s.quit.load(Ordering::Acquire) {
                break;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins % 1024 == 0 && start.elapsed() > SPIN {
                let g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                let _g = s
                    .wake
                    .wait_while(g, |_| s.epoch.load(Ordering::SeqCst) == seen && !s.quit.load(Ordering::SeqCst))
                    .unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
                break;
            }
        }
        if s.quit.load(Ordering::Acquire) {
            return;
        }
        seen = s.epoch.load(Ordering::Acquire);
        // SAFETY: `run` set the job before moving the epoch and keeps the closure alive until
        // `pending` reaches zero.
        if let Some(job) = unsafe { *s.job.get() } {
            let call = std::panic::AssertUnwindSafe(|| unsafe { (*job)(index) });
            if std::panic::catch_unwind(call).is_err() {
                s.panicked.store(true, Ordering::Release);
            }
        }
        s.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.quit.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The part of `0..n` that thread `i` of `threads` takes, in whole steps of `align`.
pub fn share(n: usize, i: usize, threads: usize, align: usize) -> std::ops::Range<usize> {
    let steps = n.div_ceil(align);
    let (lo, hi) = (steps * i / threads, steps * (i + 1) / threads);
    (lo * align).min(n)..(hi * align).min(n)
}

/// A raw pointer that threads writing disjoint parts of one buffer may share.
pub struct SyncPtr<T = f32>(pub *mut T);
// SAFETY: users write disjoint elements, and `Pool::run` joins before the buffer is read.
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

// Copy whatever `T` is (a derive would ask `T: Copy`).
impl<T> Clone for SyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// The pointer (a method, so closures capture the whole `SyncPtr`, not its field).
    pub fn get(self) -> *mut T {
        self.0
    }
}
