//! Bounded edges between stages.
//!
//! Every edge has a capacity in frames and a stated overflow policy: `Block` (text and
//! transcripts: nothing may be lost, the producer waits), `DropOldest` (live microphone audio:
//! the oldest frame is dropped and counted, so latency cannot grow without bound) and
//! `LatestOnly` (camera frames: only the newest is worth anything).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use iris_frames::{Envelope, TurnId};

use crate::turn::{lock, Turns};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    Block,
    DropOldest,
    LatestOnly,
}

/// The edge was closed: the consumer is gone, or the producer finished.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

struct State {
    queue: VecDeque<Envelope>,
    closed: bool,
}

pub struct Edge {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    policy: Overflow,
    turns: Arc<Turns>,
    dropped: AtomicU64,
}

impl Edge {
    pub fn new(capacity: usize, policy: Overflow, turns: &Arc<Turns>) -> Arc<Self> {
        let capacity = if policy == Overflow::LatestOnly { 1 } else { capacity.max(1) };
        let edge = Arc::new(Self {
            state: Mutex::new(State { queue: VecDeque::with_capacity(capacity), closed: false }),
            changed: Condvar::new(),
            capacity,
            policy,
            turns: turns.clone(),
            dropped: AtomicU64::new(0),
        });
        turns.register(&edge);
        edge
    }

    /// Queues a frame, applying the overflow policy. Frames of cancelled turns are dropped.
    pub fn push(&self, env: Envelope) -> Result<(), Closed> {
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return Err(Closed);
            }
            if self.turns.is_cancelled(env.turn) {
                return Ok(());
            }
            if st.queue.len() < self.capacity {
                break;
            }
            match self.policy {
                Overflow::Block => st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
                Overflow::DropOldest | Overflow::LatestOnly => {
                    st.queue.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        st.queue.push_back(env);
        self.changed.notify_all();
        Ok(())
    }

    /// Takes the next live frame, waiting for one. `None` once closed and drained.
    pub fn pop(&self) -> Option<Envelope> {
        let mut st = lock(&self.state);
        loop {
            while let Some(env) = st.queue.pop_front() {
                self.changed.notify_all();
                if !self.turns.is_cancelled(env.turn) {
                    return Some(env);
                }
            }
            if st.closed {
                return None;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// No more frames will be pushed; a blocked producer is released.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
    }

    /// Removes every queued frame of `turn`.
    pub fn purge(&self, turn: TurnId) {
        let mut st = lock(&self.state);
        st.queue.retain(|env| env.turn != turn);
        self.changed.notify_all();
    }

    pub fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a frame of `kind` for `turn` is queued.
    pub fn holds(&self, turn: TurnId, kind: iris_frames::FrameKind) -> bool {
        lock(&self.state).queue.iter().any(|e| e.turn == turn && e.frame.kind() == kind)
    }

    /// Queued frames belonging to `turn`.
    pub fn count_of(&self, turn: TurnId) -> usize {
        lock(&self.state).queue.iter().filter(|e| e.turn == turn).count()
    }

    /// Frames thrown away by the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use iris_frames::Frame;

    use super::*;

    fn text(turn: TurnId, s: &str) -> Envelope {
        Envelope::new(turn, Duration::ZERO, Frame::TextDelta(s.into()))
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let turns = Turns::new();
        let t = turns.begin().id;
        let edge = Edge::new(2, Overflow::DropOldest, &turns);
        for s in ["a", "b", "c"] {
            edge.push(text(t, s)).unwrap();
        }
        assert_eq!(edge.dropped(), 1);
        assert_eq!(edge.pop().unwrap().frame, Frame::TextDelta("b".into()));
    }

    #[test]
    fn latest_only_holds_one() {
        let turns = Turns::new();
        let t = turns.begin().id;
        let edge = Edge::new(8, Overflow::LatestOnly, &turns);
        edge.push(text(t, "a")).unwrap();
        edge.push(text(t, "b")).unwrap();
        assert_eq!(edge.len(), 1);
        assert_eq!(edge.pop().unwrap().frame, Frame::TextDelta("b".into()));
    }

    #[test]
    fn block_waits_for_room() {
        let turns = Turns::new();
        let t = turns.begin().id;
        let edge = Edge::new(1, Overflow::Block, &turns);
        edge.push(text(t, "a")).unwrap();
        let e2 = edge.clone();
        let producer = std::thread::spawn(move || e2.push(text(t, "b")));
        assert_eq!(edge.pop().unwrap().frame, Frame::TextDelta("a".into()));
        producer.join().unwrap().unwrap();
        assert_eq!(edge.pop().unwrap().frame, Frame::TextDelta("b".into()));
        assert_eq!(edge.dropped(), 0);
    }

    #[test]
    fn cancelled_turn_is_purged_and_refused() {
        let turns = Turns::new();
        let a = turns.begin().id;
        let b = turns.begin().id;
        let edge = Edge::new(8, Overflow::Block, &turns);
        edge.push(text(a, "a1")).unwrap();
        edge.push(text(b, "b1")).unwrap();
        turns.cancel(a);
        assert_eq!(edge.count_of(a), 0);
        edge.push(text(a, "a2")).unwrap();
        assert_eq!(edge.count_of(a), 0);
        assert_eq!(edge.pop().unwrap().turn, b);
    }

    #[test]
    fn close_releases_a_blocked_producer() {
        let turns = Turns::new();
        let t = turns.begin().id;
        let edge = Edge::new(1, Overflow::Block, &turns);
        edge.push(text(t, "a")).unwrap();
        let e2 = edge.clone();
        let producer = std::thread::spawn(move || e2.push(text(t, "b")));
        edge.close();
        assert_eq!(producer.join().unwrap(), Err(Closed));
    }
}
