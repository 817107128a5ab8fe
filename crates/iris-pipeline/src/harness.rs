//! Runs one stage on scripted frames, synchronously, and collects what it gives.
//!
//! The same forwarding rules as the runtime apply (frames a stage does not take pass through;
//! `EndOfTurn` calls `end_turn` and is forwarded), so a stage tested here behaves the same in a
//! pipeline. `cancel_when` lets a test cancel a turn at a chosen point of the output.

use std::sync::Arc;

use iris_frames::{Envelope, Frame, TurnId};

use crate::stage::{Output, Stage, StageError};
use crate::turn::Turns;

/// Looks at each output frame; returns a turn to cancel at that point.
pub type CancelWhen<'a> = &'a mut dyn FnMut(&Envelope) -> Option<TurnId>;

pub struct Collect<'a> {
    pub frames: Vec<Envelope>,
    turns: Arc<Turns>,
    cancel_when: Option<CancelWhen<'a>>,
    backlog: usize,
}

impl Output for Collect<'_> {
    fn send(&mut self, env: Envelope) -> Result<(), StageError> {
        if self.turns.is_cancelled(env.turn) {
            return Ok(());
        }
        let cancel = self.cancel_when.as_mut().and_then(|f| f(&env));
        self.frames.push(env);
        if let Some(turn) = cancel {
            self.turns.cancel(turn);
        }
        Ok(())
    }

    fn is_cancelled(&self, turn: TurnId) -> bool {
        self.turns.is_cancelled(turn)
    }

    fn is_withdrawn(&self, turn: TurnId) -> bool {
        self.turns.is_withdrawn(turn)
    }

    fn heard_of(&self, turn: TurnId) -> Option<String> {
        self.turns.heard_of(turn)
    }

    fn backlog(&self) -> usize {
        self.backlog
    }
}

/// Runs `stage` over `input`; returns its output frames, or the first error.
/// Frames arrive one at a time, as from a live source that the stage keeps up with.
pub fn run_stage(stage: &mut dyn Stage, input: Vec<Envelope>) -> Result<Vec<Envelope>, StageError> {
    run_stage_with(stage, input, &Turns::new(), None)
}

/// As [`run_stage`], but all of `input` is queued at once: the stage sees the rest as backlog.
pub fn run_stage_queued(stage: &mut dyn Stage, input: Vec<Envelope>) -> Result<Vec<Envelope>, StageError> {
    run(stage, input, &Turns::new(), None, true)
}

/// As [`run_stage`], with a turn registry and a hook that may cancel a turn after any output.
pub fn run_stage_with(
    stage: &mut dyn Stage,
    input: Vec<Envelope>,
    turns: &Arc<Turns>,
    cancel_when: Option<CancelWhen<'_>>,
) -> Result<Vec<Envelope>, StageError> {
    run(stage, input, turns, cancel_when, false)
}

fn run(
    stage: &mut dyn Stage,
    input: Vec<Envelope>,
    turns: &Arc<Turns>,
    cancel_when: Option<CancelWhen<'_>>,
    queued: bool,
) -> Result<Vec<Envelope>, StageError> {
    let mut out = Collect { frames: Vec::new(), turns: turns.clone(), cancel_when, backlog: 0 };
    let total = input.len();
    for (i, env) in input.into_iter().enumerate() {
        out.backlog = if queued { total - i - 1 } else { 0 };
        if turns.is_cancelled(env.turn) {
            continue;
        }
        let result = match env.frame {
            Frame::EndOfTurn => stage.end_turn(env.turn, env.pts, &mut out).and_then(|()| out.send(env)),
            ref f if stage.accepts().contains(f.kind()) => stage.process(env, &mut out),
            _ => out.send(env),
        };
        match result {
            Ok(()) | Err(StageError::Backend(iris_backend::BackendError::Cancelled)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out.frames)
}
