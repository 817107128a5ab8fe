//! Turns and their cancellation.
//!
//! A turn owns a [`CancellationToken`]. Cancelling it marks the turn dead everywhere at once:
//! every edge registered with [`Turns`] purges the turn's queued frames, and edges and stage
//! outputs drop any frame of that turn that arrives later.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use iris_frames::TurnId;
use tokio_util::sync::CancellationToken;

use crate::edge::Edge;

/// A live turn: its id and the token that cancels it.
#[derive(Clone, Debug)]
pub struct Turn {
    pub id: TurnId,
    pub token: CancellationToken,
}

/// The registry of turns shared by every edge and stage of one pipeline.
#[derive(Default)]
pub struct Turns {
    next: AtomicU64,
    live: Mutex<HashMap<TurnId, CancellationToken>>,
    cancelled: Mutex<HashSet<TurnId>>,
    withdrawn: Mutex<HashSet<TurnId>>,
    /// Answers cut short by the user, with what of them was heard (the latest few).
    heard: Mutex<std::collections::VecDeque<(TurnId, String)>>,
    edges: Mutex<Vec<Weak<Edge>>>,
}

impl Turns {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts a new turn.
    pub fn begin(&self) -> Turn {
        let id = TurnId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let token = CancellationToken::new();
        lock(&self.live).insert(id, token.clone());
        Turn { id, token }
    }

    /// Cancels a turn: its token fires and its frames are purged from every edge.
    pub fn cancel(&self, id: TurnId) {
        if let Some(token) = lock(&self.live).remove(&id) {
            token.cancel();
        }
        lock(&self.cancelled).insert(id);
        let edges: Vec<Arc<Edge>> = lock(&self.edges).iter().filter_map(Weak::upgrade).collect();
        for edge in edges {
            edge.purge(id);
        }
    }

    /// Cancels a turn that should never have happened: a speculative answer to words the user
    /// then went on from. Stages forget what it did (the language model drops it from the
    /// conversation), where a cancelled turn (an answer interrupted) is kept as far as it went.
    pub fn withdraw(&self, id: TurnId) {
        lock(&self.withdrawn).insert(id);
        self.cancel(id);
    }

    pub fn is_withdrawn(&self, id: TurnId) -> bool {
        lock(&self.withdrawn).contains(&id)
    }

    /// The user interrupted this turn's answer after hearing `heard` of it: the turn is cancelled,
    /// and the conversation keeps only what was heard ("what were you saying?" has an honest answer).
    pub fn interrupt(&self, id: TurnId, heard: String) {
        {
            let mut h = lock(&self.heard);
            h.push_back((id, heard));
            // Only the conversation's recent turns are ever asked about.
            while h.len() > 64 {
                h.pop_front();
            }
        }
        self.cancel(id);
    }

    /// What was heard of this turn's answer, if the user interrupted it.
    pub fn heard_of(&self, id: TurnId) -> Option<String> {
        lock(&self.heard).iter().rev().find(|(t, _)| *t == id).map(|(_, h)| h.clone())
    }

    /// A turn that ended normally: forget its token.
    pub fn finish(&self, id: TurnId) {
        lock(&self.live).remove(&id);
    }

    pub fn is_cancelled(&self, id: TurnId) -> bool {
        lock(&self.cancelled).contains(&id)
    }

    pub(crate) fn register(&self, edge: &Arc<Edge>) {
        let mut edges = lock(&self.edges);
        edges.retain(|e| e.strong_count() > 0);
        edges.push(Arc::downgrade(edge));
    }
}

/// Locks, ignoring poisoning: a panicking stage thread must not take the registry down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_fires_the_token_and_marks_the_turn() {
        let turns = Turns::new();
        let a = turns.begin();
        let b = turns.begin();
        assert_ne!(a.id, b.id);
        turns.cancel(a.id);
        assert!(a.token.is_cancelled());
        assert!(!b.token.is_cancelled());
        assert!(turns.is_cancelled(a.id));
        assert!(!turns.is_cancelled(b.id));
    }
}
