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

    /// Frames already waiting at this stage's input. A stage with optional work (a partial
    /// transcript) skips it while behind, so it catches up with live input instead of lagging.
    fn backlog(&self) -> usize {
        0
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

/// Per-turn state that resets itself when frames of a new turn arrive, so nothing held for a
/// cancelled turn (whose `EndOfTurn` never comes) leaks into the next one.
#[derive(Debug, Default)]
pub struct PerTurn<T: Default> {
    turn: Option<TurnId>,
    value: T,
}

impl<T: Default> PerTurn<T> {
    pub fn get(&mut self, turn: TurnId) -> &mut T {
        if self.turn != Some(turn) {
            self.turn = Some(turn);
            self.value = T::default();
        }
        &mut self.value
    }

    /// Takes the state of `turn`, leaving a fresh one.
    pub fn take(&mut self, turn: TurnId) -> T {
        std::mem::take(self.get(turn))
    }
}
