//! Timers that really fire: one thread sleeps until the next is due and calls back.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type OnFire = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct State {
    due: Vec<(Instant, String)>,
    /// Timers taken off `due` whose callback has not returned yet.
    firing: usize,
}

/// Shared handle; when the last one is dropped the thread notices and ends.
#[derive(Clone)]
pub struct Timers {
    inner: Arc<(Mutex<State>, Condvar)>,
}

impl Timers {
    /// `on_fire` receives the timer's label ("2 second timer") when it is due.
    pub fn new(on_fire: OnFire) -> Self {
        let inner: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("iris-timers".into())
            .spawn(move || loop {
                let Some(inner) = weak.upgrade() else { return };
                let (lock, cv) = &*inner;
                let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                if let Some(i) = st.due.iter().position(|(at, _)| *at <= now) {
                    let (_, label) = st.due.remove(i);
                    st.firing += 1;
                    drop(st);
                    on_fire(&label);
                    // Only now is the timer done: `wait_all` must not return before its callback.
                    lock.lock().unwrap_or_else(|p| p.into_inner()).firing -= 1;
                    cv.notify_all();
                    continue;
                }
                let wait = st.due.iter().map(|(at, _)| *at - now).min().unwrap_or(Duration::from_millis(200));
                // Wake at the next deadline, or when a timer is added; re-check the handle often
                // enough to stop when the owner is gone.
                let _ = cv.wait_timeout(st, wait.min(Duration::from_millis(200)));
            })
            .unwrap_or_else(|e| panic!("cannot start the timer thread: {e}"));
        Self { inner }
    }

    pub fn set(&self, after: Duration, label: String) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap_or_else(|p| p.into_inner()).due.push((Instant::now() + after, label));
        cv.notify_all();
    }

    pub fn pending(&self) -> usize {
        let st = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        st.due.len() + st.firing
    }

    /// Waits until every timer has fired and its callback returned, at most `max`; true if so.
    pub fn wait_all(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let (lock, cv) = &*self.inner;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !st.due.is_empty() || st.firing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }
}
