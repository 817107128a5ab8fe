//! The streaming core: stages joined by bounded edges, turns that can be cancelled, and
//! pipelines described in files under `pipelines/` and checked when they load.
//!
//! Layout: [`edge`] (bounded queues and their overflow policies), [`turn`] (turn ids and their
//! cancellation tokens), [`stage`] (the `Stage` trait and its output handle), [`spec`] (the
//! pipeline file and its checks), [`runtime`] (one thread per stage), [`harness`] (runs one
//! stage on scripted frames), [`stages`] (the built-in stages over the backend traits).

pub mod edge;
pub mod harness;
pub mod runtime;
pub mod spec;
pub mod stage;
pub mod stages;
pub mod turn;

pub use edge::{Edge, Overflow};
pub use runtime::{Pipeline, PipelineEvent};
pub use spec::{PipelineSpec, SpecError, StageInfo};
pub use stage::{Output, Stage, StageError};
pub use turn::{Turn, Turns};
