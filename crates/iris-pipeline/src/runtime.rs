//! Runs a checked pipeline: one thread per stage, bounded edges between them.
//!
//! Blocking inference stays on its stage's thread; async code (a web server) talks to the
//! pipeline through [`Pipeline::send`] and [`Pipeline::recv`]. A stage error is reported as an
//! event naming the stage and the turn; the pipeline itself keeps running for later turns.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use iris_backend::BackendError;
use iris_frames::{Envelope, Frame, TurnId};

use crate::edge::{Closed, Edge};
use crate::spec::PipelineSpec;
use crate::stage::{Output, Stage, StageError};
use crate::turn::{lock, Turns};

#[derive(Debug)]
pub enum PipelineEvent {
    Frame(Envelope),
    Error { stage: &'static str, turn: TurnId, message: String },
}

type Timings = Arc<Mutex<HashMap<(TurnId, &'static str), Duration>>>;

pub struct Pipeline {
    turns: Arc<Turns>,
    edges: Vec<Arc<Edge>>,
    // Behind a lock so one thread can feed the pipeline while another reads it.
    events: Mutex<Receiver<PipelineEvent>>,
    threads: Vec<JoinHandle<()>>,
    timings: Timings,
    stage_names: Vec<&'static str>,
}

enum Target {
    Edge(Arc<Edge>),
    Sink(SyncSender<PipelineEvent>),
}

struct StageOutput {
    target: Target,
    turns: Arc<Turns>,
    input: Arc<Edge>,
}

impl Output for StageOutput {
    fn send(&mut self, env: Envelope) -> Result<(), StageError> {
        if self.turns.is_cancelled(env.turn) {
            return Ok(());
        }
        match &self.target {
            Target::Edge(edge) => edge.push(env).map_err(StageError::from),
            Target::Sink(tx) => tx.send(PipelineEvent::Frame(env)).map_err(|_| StageError::Closed),
        }
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
        self.input.len()
    }

    fn waiting(&self, turn: TurnId, kind: iris_frames::FrameKind) -> bool {
        self.input.holds(turn, kind)
    }
}

impl Pipeline {
    /// Starts `stages`, which must match `spec` one to one, in order.
    pub fn start(spec: &PipelineSpec, stages: Vec<Box<dyn Stage>>, turns: Arc<Turns>) -> Self {
        assert_eq!(spec.stages.len(), stages.len(), "one stage per spec entry");
        let edges: Vec<Arc<Edge>> = spec.stages.iter().map(|s| Edge::new(s.input.capacity, s.input.policy, &turns)).collect();
        let (sink_tx, events) = mpsc::sync_channel(1024);
        let timings: Timings = Arc::default();
        let stage_names = stages.iter().map(|s| s.name()).collect();
        let mut threads = Vec::new();
        let count = stages.len();
        for (i, stage) in stages.into_iter().enumerate() {
            let input = edges[i].clone();
            let target = if i + 1 < count { Target::Edge(edges[i + 1].clone()) } else { Target::Sink(sink_tx.clone()) };
            let out = StageOutput { target, turns: turns.clone(), input: input.clone() };
            let errors = sink_tx.clone();
            let timings = timings.clone();
            let handle = std::thread::Builder::new()
                .name(format!("iris-{}", stage.name()))
                .spawn(move || run_stage(stage, input, out, errors, timings))
                .unwrap_or_else(|e| panic!("cannot start a stage thread: {e}"));
            threads.push(handle);
        }
        Self { turns, edges, events: Mutex::new(events), threads, timings, stage_names }
    }

    pub fn turns(&self) -> &Arc<Turns> {
        &self.turns
    }

    /// Feeds a frame to the first stage (waiting or dropping per its edge's policy).
    pub fn send(&self, env: Envelope) -> Result<(), Closed> {
        self.edges[0].push(env)
    }

    /// Cancels a turn everywhere: edges purge it, stages stop emitting it, `recv` skips it.
    pub fn cancel(&self, turn: TurnId) {
        self.turns.cancel(turn);
    }

    /// The next event of a live turn, or `None` when every stage has stopped.
    pub fn recv(&self) -> Option<PipelineEvent> {
        loop {
            let event = lock(&self.events).recv().ok()?;
            if !self.is_stale(&event) {
                return Some(event);
            }
        }
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<PipelineEvent, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = lock(&self.events).recv_timeout(left)?;
            if !self.is_stale(&event) {
                return Ok(event);
            }
        }
    }

    fn is_stale(&self, event: &PipelineEvent) -> bool {
        matches!(event, PipelineEvent::Frame(env) if self.turns.is_cancelled(env.turn))
    }

    /// Time each stage spent working on `turn`, in pipeline order.
    pub fn timings(&self, turn: TurnId) -> Vec<(&'static str, Duration)> {
        let t = lock(&self.timings);
        self.stage_names.iter().map(|n| (*n, t.get(&(turn, *n)).copied().unwrap_or_default())).collect()
    }

    /// The edges feeding each stage, in order (for inspection and tests).
    pub fn edges(&self) -> &[Arc<Edge>] {
        &self.edges
    }

    /// Closes the input and waits for every stage to finish what it holds.
    pub fn shutdown(self) {
        self.edges[0].close();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn run_stage(mut stage: Box<dyn Stage>, input: Arc<Edge>, mut out: StageOutput, errors: SyncSender<PipelineEvent>, timings: Timings) {
    let name = stage.name();
    let accepts = stage.accepts();
    while let Some(env) = input.pop() {
        let turn = env.turn;
        let started = Instant::now();
        let result = match env.frame {
            Frame::EndOfTurn => {
                let r = stage.end_turn(turn, env.pts, &mut out);
                *lock(&timings).entry((turn, name)).or_default() += started.elapsed();
                r.and_then(|()| out.send(env))
            }
            ref f if accepts.contains(f.kind()) => {
                let r = stage.process(env, &mut out);
                *lock(&timings).entry((turn, name)).or_default() += started.elapsed();
                r
            }
            _ => out.send(env),
        };
        match result {
            Ok(()) | Err(StageError::Backend(BackendError::Cancelled)) => {}
            Err(StageError::Closed) => break,
            Err(e) => {
                if errors.send(PipelineEvent::Error { stage: name, turn, message: e.to_string() }).is_err() {
                    break;
                }
            }
        }
    }
    if let Target::Edge(next) = &out.target {
        next.close();
    }
}
