//! The live voice loop's model-free parts: audio in and out ([`io`], the simulated [`room`]),
//! the [`front`] end (wake word and voice activity over the backend traits), the turn
//! [`controller`] (a small state machine on the media clock), the [`events`] every part reports
//! to, and the loop that runs them ([`run`]). No model, no C library, no device: the binary
//! supplies real backends and devices, tests supply fakes.

pub mod controller;
pub mod events;
pub mod front;
pub mod io;
mod ledger;
pub mod ring;
pub mod room;
pub mod run;

pub use controller::{Controller, Mode, TurnRules};
pub use events::{Event, EventKind, EventSink, JsonLines, TurnTimes};
pub use front::{FrontEnd, FrontSettings, Heard};
pub use io::{Capture, IoError, Speaker};
pub use ring::{Announce, Transcribe};
pub use room::{Echo, Room};
pub use run::{LiveLoop, Summary};
