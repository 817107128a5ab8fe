//! The stage trait: one input, one output, declared frame kinds.
//!
//! A stage receives only the kinds it declares in [`Stage::accepts`]; the runtime forwards every
//! other frame unchanged, so a stage never has to know about frames meant for others. Each stage
//! runs on its own thread, so blocking inference inside `process` is fine.

use std::time::Duration;

use iris_frames::{Envelope, Frame, KindSet, TurnId};

use crate::edge::Closed;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Backend(#[from] iris_backend::BackendError),
    #[error("{0}")]
    Input(String),
    /// The downstream edge closed: the pipeline is shutting down.
    #[error("pipeline closed")]
    Closed,
}

impl From<Closed> for StageError {
    fn from(_: Closed) -> Self {
        StageError::Closed
    }
}

/// Where a stage sends its frames, and how it learns that its turn was cancelled.
pub trait Output {
    fn send(&mut self, env: Envelope) -> Result<(), StageError>;
    fn is_cancelled(&self, turn: TurnId) -> bool;

    /// The turn was withdrawn (see `Turns::withdraw`): forget what it did.
    fn is_withdrawn(&self, _turn: TurnId) -> bool {
        false
    }

    /// What was heard of the turn's answer, if the user interrupted it (see `Turns::interrupt`).
    fn heard_of(&self, _turn: TurnId) -> Option<String> {
        None
    }

    /// Frames already waiting at this stage's input. A stage with optional work (a partial
    /// transcript) skips it while behind, so it catches up with live input instead of lagging.
    fn backlog(&self) -> usize {
        0
    }

    /// A frame of `kind` for `turn` is waiting at this stage's input: work that it makes moot
    /// (a partial transcript when the speech has already stopped) can stop.
    fn waiting(&self, _turn: TurnId, _kind: iris_frames::FrameKind) -> bool {
        false
    }

    fn emit(&mut self, turn: TurnId, pts: Duration, frame: Frame) -> Result<(), StageError> {
        self.send(Envelope::new(turn, pts, frame))
    }
}

pub trait Stage: Send {
    /// The name used in pipeline files and status lines.
    fn name(&self) -> &'static str;
    fn accepts(&self) -> KindSet;
    fn emits(&self) -> KindSet;

    /// Handles one frame of an accepted kind.
    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError>;

    /// The turn is over: flush what is held for it. The runtime forwards `EndOfTurn` afterwards.
    fn end_turn(&mut self, _turn: TurnId, _pts: Duration, _out: &mut dyn Output) -> Result<(), StageError> {
        Ok(())
    }
}

/// Per-turn state for the few latest turns. Turns can interleave (a speculative answer is made
/// while the question's turn is still being heard), so each keeps its own; the oldest is
/// dropped beyond [`PerTurn::KEEP`], so nothing held for a cancelled turn (whose `EndOfTurn`
/// never comes) stays for long.
#[derive(Debug)]
pub struct PerTurn<T: Default> {
    turns: std::collections::VecDeque<(TurnId, T)>,
}

impl<T: Default> Default for PerTurn<T> {
    fn default() -> Self {
        Self { turns: std::collections::VecDeque::new() }
    }
}

impl<T: Default> PerTurn<T> {
    pub const KEEP: usize = 4;

    pub fn get(&mut self, turn: TurnId) -> &mut T {
        let i = match self.turns.iter().position(|(t, _)| *t == turn) {
            Some(i) => i,
            None => {
                if self.turns.len() == Self::KEEP {
                    self.turns.pop_front();
                }
                self.turns.push_back((turn, T::default()));
                self.turns.len() - 1
            }
        };
        &mut self.turns[i].1
    }

    /// Takes the state of `turn` and forgets it.
    pub fn take(&mut self, turn: TurnId) -> T {
        match self.turns.iter().position(|(t, _)| *t == turn) {
            Some(i) => self.turns.remove(i).map(|(_, v)| v).unwrap_or_default(),
            None => T::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_turns_keep_their_own_state_and_old_ones_are_dropped() {
        let mut s: PerTurn<Vec<u32>> = PerTurn::default();
        s.get(TurnId(1)).push(1);
        s.get(TurnId(2)).push(2);
        s.get(TurnId(1)).push(11);
        assert_eq!(s.take(TurnId(1)), vec![1, 11]);
        assert_eq!(s.take(TurnId(1)), Vec::<u32>::new());
        for t in 3..10 {
            s.get(TurnId(t)).push(t as u32);
        }
        assert_eq!(s.turns.len(), PerTurn::<Vec<u32>>::KEEP);
        assert!(s.get(TurnId(2)).is_empty(), "the oldest turn was dropped");
    }
}
