//! Timers that really fire. Two clocks:
//!
//! - the wall clock (`Timers::new`, `Timers::restored`): one thread sleeps until the next is
//!   due and calls back; due times are seconds since the Unix epoch, so a list saved by the
//!   `persist` hook and handed back after a restart fires at the right moment (a timer that came
//!   due while Iris was off fires at once);
//! - a media clock (`Timers::on_clock`): nothing fires by itself; the live loop asks for the
//!   timers due on its own clock ([`Timers::take_due`]), so a simulated room, which runs faster
//!   than real time, rings at the right sample.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type OnFire = Arc<dyn Fn(&str) + Send + Sync>;
/// Called with the pending timers (due, label) whenever they change.
pub type Persist = Box<dyn Fn(&[(f64, String)]) + Send + Sync>;
/// Seconds on some clock.
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

#[derive(Default)]
struct State {
    due: Vec<(f64, String)>,
    /// Timers taken off `due` whose callback has not returned yet.
    firing: usize,
}

struct Inner {
    state: Mutex<State>,
    cv: Condvar,
    clock: Clock,
    persist: Option<Persist>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn saved(&self, st: &State) {
        if let Some(persist) = &self.persist {
            persist(&st.due);
        }
    }
}

/// Shared handle; when the last one is dropped the firing thread (if any) notices and ends.
#[derive(Clone)]
pub struct Timers {
    inner: Arc<Inner>,
}

/// Seconds since the Unix epoch.
pub fn wall_clock() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Timers {
    /// Wall-clock timers; `on_fire` receives the label ("timer for 2 seconds") when one is due.
    pub fn new(on_fire: OnFire) -> Self {
        Self::restored(on_fire, Vec::new(), None)
    }

    /// Wall-clock timers starting from `pending` (due in Unix seconds, label), each change
    /// handed to `persist`.
    pub fn restored(on_fire: OnFire, pending: Vec<(f64, String)>, persist: Option<Persist>) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State { due: pending, firing: 0 }),
            cv: Condvar::new(),
            clock: Arc::new(wall_clock),
            persist,
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("iris-timers".into())
            .spawn(move || loop {
                let Some(inner) = weak.upgrade() else { return };
                let mut st = inner.lock();
                let now = (inner.clock)();
                if let Some(i) = st.due.iter().position(|(at, _)| *at <= now) {
                    let (_, label) = st.due.remove(i);
                    st.firing += 1;
                    inner.saved(&st);
                    drop(st);
                    on_fire(&label);
                    // Only now is the timer done: `wait_all` must not return before its callback.
                    inner.lock().firing -= 1;
                    inner.cv.notify_all();
                    continue;
                }
                let wait = st.due.iter().map(|(at, _)| at - now).fold(0.2, f64::min).max(0.001);
                // Wake at the next deadline, or when a timer is added; re-check the handle often
                // enough to stop when the owner is gone.
                let _ = inner.cv.wait_timeout(st, Duration::from_secs_f64(wait));
            })
            .unwrap_or_else(|e| panic!("cannot start the timer thread: {e}"));
        Self { inner }
    }

    /// Timers on `clock`, fired only when the owner calls [`Timers::take_due`].
    pub fn on_clock(clock: Clock) -> Self {
        Self { inner: Arc::new(Inner { state: Mutex::default(), cv: Condvar::new(), clock, persist: None }) }
    }

    pub fn set(&self, after: Duration, label: String) {
        let mut st = self.inner.lock();
        let at = (self.inner.clock)() + after.as_secs_f64();
        st.due.push((at, label));
        self.inner.saved(&st);
        drop(st);
        self.inner.cv.notify_all();
    }

    /// The labels of the timers due now on the clock, taken off the list.
    pub fn take_due(&self) -> Vec<String> {
        let now = (self.inner.clock)();
        let mut st = self.inner.lock();
        if !st.due.iter().any(|(at, _)| *at <= now) {
            return Vec::new();
        }
        let (due, left): (Vec<_>, Vec<_>) = std::mem::take(&mut st.due).into_iter().partition(|(at, _)| *at <= now);
        st.due = left;
        self.inner.saved(&st);
        due.into_iter().map(|(_, label)| label).collect()
    }

    pub fn pending(&self) -> usize {
        let st = self.inner.lock();
        st.due.len() + st.firing
    }

    /// Waits until every timer has fired and its callback returned, at most `max`; true if so.
    pub fn wait_all(&self, max: Duration) -> bool {
        let deadline = std::time::Instant::now() + max;
        let mut st = self.inner.lock();
        while !st.due.is_empty() || st.firing > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.inner.cv.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn media_clock_timers_fire_when_the_clock_says() {
        let t = Arc::new(AtomicU64::new(0));
        let clock = t.clone();
        let timers = Timers::on_clock(Arc::new(move || clock.load(Ordering::Relaxed) as f64));
        timers.set(Duration::from_secs(10), "timer for 10 seconds".into());
        timers.set(Duration::from_secs(20), "timer for 20 seconds".into());
        t.store(9, Ordering::Relaxed);
        assert!(timers.take_due().is_empty());
        t.store(10, Ordering::Relaxed);
        assert_eq!(timers.take_due(), vec!["timer for 10 seconds".to_owned()]);
        assert!(timers.take_due().is_empty());
        assert_eq!(timers.pending(), 1);
    }

    #[test]
    fn restored_timers_fire_and_every_change_is_persisted() {
        let saved: Arc<Mutex<Vec<Vec<(f64, String)>>>> = Arc::default();
        let fired: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, f) = (saved.clone(), fired.clone());
        // One came due while Iris was off, one is still ahead.
        let pending = vec![(wall_clock() - 30.0, "timer for 1 minute".into()), (wall_clock() + 0.3, "timer for 2 minutes".into())];
        let timers = Timers::restored(
            Arc::new(move |l: &str| f.lock().unwrap().push(l.to_owned())),
            pending,
            Some(Box::new(move |due: &[(f64, String)]| s.lock().unwrap().push(due.to_vec()))),
        );
        assert!(timers.wait_all(Duration::from_secs(5)));
        assert_eq!(*fired.lock().unwrap(), vec!["timer for 1 minute".to_owned(), "timer for 2 minutes".to_owned()]);
        assert!(saved.lock().unwrap().last().is_some_and(|l| l.is_empty()), "the empty list is saved last");
    }
}
