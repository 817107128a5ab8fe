//! The answering side of the loop: the pipeline's frames for the turn being answered, the
//! answer made ahead at a pause, and the speaker's queue followed to know what was heard.

use std::time::Duration;

use iris_frames::{Envelope, Frame, TurnId};
use iris_pipeline::PipelineEvent;

use super::LiveLoop;
use crate::controller::Secs;
use crate::events::EventKind;
use crate::ledger::{played_text, Spoken};

/// An answer being made, unheard, to the words said before the pause.
pub(super) struct Ahead {
    pub(super) id: TurnId,
    text: String,
    /// Its frames so far, played if the turn ends at this pause.
    held: Vec<Envelope>,
}

impl LiveLoop<'_> {
    /// Starts answering `text`, the whole question up to the pause, ahead of the end of the turn.
    pub(super) fn answer_ahead(&mut self, text: String) {
        let Some(cur) = self.current.as_mut() else { return };
        if let Some(old) = cur.ahead.take() {
            self.turns.withdraw(old.id);
        }
        let id = self.turns.begin().id;
        cur.ahead = Some(Ahead { id, text: text.clone(), held: Vec::new() });
        for frame in [Frame::UserText(text), Frame::EndOfTurn] {
            if self.pipeline.send(Envelope::new(id, Duration::ZERO, frame)).is_err() {
                let t = self.now();
                self.emit(t, EventKind::Error { message: "the pipeline stopped".into() });
                return;
            }
        }
    }

    /// The turn ended at the pause whose words were answered ahead: that answer is played (what
    /// it made so far at once), and the recogniser's turn, whose final would be those words, ends.
    pub(super) fn take_ahead(&mut self, ahead: Ahead, t: Secs) {
        let Some(cur) = self.current.as_mut() else { return };
        self.pipeline.cancel(cur.id);
        cur.answer = ahead.id;
        self.emit(t, EventKind::EndOfTurn);
        self.turn_asked_to_stop(&ahead.text);
        self.emit(t, EventKind::Transcript { text: ahead.text });
        for env in ahead.held {
            self.on_frame(env, t);
        }
    }

    pub(super) fn drain_pipeline(&mut self) {
        while let Ok(event) = self.pipeline.recv_timeout(Duration::ZERO) {
            let t = self.now();
            match event {
                PipelineEvent::Frame(env) => {
                    let ahead = self.current.as_mut().and_then(|c| c.ahead.as_mut()).filter(|a| a.id == env.turn);
                    match ahead {
                        // Its transcript is only the (empty) recogniser's: the words are known.
                        Some(ahead) if !matches!(env.frame, Frame::Transcript(_)) => ahead.held.push(env),
                        Some(_) => {}
                        None => self.on_frame(env, t),
                    }
                }
                PipelineEvent::Error { stage, turn, message } => {
                    self.emit(t, EventKind::Error { message: format!("{stage}: {message}") });
                    let Some(cur) = self.current.as_mut() else { continue };
                    if cur.ahead.as_ref().is_some_and(|a| a.id == turn) {
                        // Answering ahead failed: the end of the turn answers as usual.
                        cur.ahead = None;
                        self.turns.withdraw(turn);
                    } else if cur.answer == turn && !cur.collecting {
                        // A stage that failed does not pass the end of its turn on: close it here.
                        self.pipeline.cancel(turn);
                        cur.pipeline_done = true;
                    }
                }
            }
        }
        self.flush_audio();
    }

    pub(super) fn on_frame(&mut self, env: Envelope, t: Secs) {
        let Some(cur) = self.current.as_mut().filter(|c| c.id == env.turn || c.answer == env.turn) else { return };
        match env.frame {
            // An answer made ahead has no audio: its recogniser's final is empty, and may arrive
            // after the answer was taken (the words were emitted then).
            Frame::Transcript(_) if env.turn == cur.answer && cur.answer != cur.id => {}
            Frame::Transcript(tr) if tr.is_final => {
                self.turn_asked_to_stop(&tr.text);
                self.emit(t, EventKind::Transcript { text: tr.text });
            }
            Frame::Transcript(tr) => {
                // The whole question decoded at the pause the pipeline was last told of.
                let settled = cur.collecting && !cur.marked && cur.pause == Some(env.pts);
                self.emit(t, EventKind::Partial { text: tr.text.clone() });
                if settled {
                    self.answer_ahead(tr.text);
                }
            }
            Frame::TextDelta(_) if !cur.first_token => {
                cur.first_token = true;
                self.emit(t, EventKind::LlmFirstToken);
            }
            Frame::Sentence(text) => {
                self.flush_audio();
                if let Some(cur) = self.current.as_mut() {
                    cur.ledger.push(Spoken { text: text.clone(), start: None, end: 0 });
                }
                self.emit(t, EventKind::Sentence { text });
            }
            Frame::Audio(chunk) => {
                if chunk.sample_rate != cur.pending_rate && !cur.pending.is_empty() {
                    self.flush_audio();
                }
                if let Some(cur) = self.current.as_mut() {
                    cur.pending_rate = chunk.sample_rate;
                    cur.pending.extend_from_slice(&chunk.samples);
                }
            }
            Frame::EndOfTurn if env.turn == cur.answer => {
                self.flush_audio();
                if let Some(cur) = self.current.as_mut() {
                    cur.pipeline_done = true;
                }
            }
            _ => {}
        }
    }

    /// Resamples what the voice made so far to the speaker's rate and queues it.
    pub(super) fn flush_audio(&mut self) {
        let Some(cur) = self.current.as_mut() else { return };
        if cur.pending.is_empty() {
            return;
        }
        let samples = iris_audio::resample(&std::mem::take(&mut cur.pending), cur.pending_rate, self.speaker.rate());
        let at = self.speaker.queue(&samples);
        let end = at + samples.len() as u64;
        cur.first_sample.get_or_insert(at);
        if cur.ledger.is_empty() {
            cur.ledger.push(Spoken { text: String::new(), start: None, end: 0 });
        }
        if let Some(last) = cur.ledger.last_mut() {
            last.start.get_or_insert(at);
            last.end = end;
        }
    }

    pub(super) fn follow_playback(&mut self) {
        let played = self.speaker.played();
        let rate = f64::from(self.speaker.rate());
        let now = self.now();
        let Some(cur) = self.current.as_mut() else { return };
        if let Some(first) = cur.first_sample.filter(|&f| !cur.audio_started && played > f) {
            cur.audio_started = true;
            self.controller.answer_started();
            self.emit(now - (played - first) as f64 / rate, EventKind::AudioStart);
        }
        let Some(cur) = self.current.as_ref() else { return };
        let end = cur.ledger.last().map_or(0, |s| s.end);
        if cur.pipeline_done && played >= end {
            let started = cur.audio_started;
            let text = played_text(&cur.ledger, played);
            let (id, answer) = (cur.id, cur.answer);
            if started {
                self.emit(now - (played - end) as f64 / rate, EventKind::AudioStop);
            }
            self.emit(now, EventKind::Answer { text });
            self.controller.answer_done(now);
            self.speaker.hold(false);
            self.turns.finish(id);
            self.turns.finish(answer);
            self.current = None;
        }
    }
}
