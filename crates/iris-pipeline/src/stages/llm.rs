//! The language model: gathers a turn's words (transcripts, typed text, what an image shows)
//! and streams the answer as text deltas. Keeps the conversation across turns.
//!
//! While the user speaks, each partial transcript is pre-filled into the model's cache in the
//! conversation it will be answered in, as if the question ended there, so the finished question
//! computes only what its last words change.
//!
//! Images are described at the end of the turn, when the whole question is known ("read this"
//! may be heard after the photo arrived). When the vision backend's description already
//! answers the question (text read aloud, a colour), it is spoken as it is, not rephrased.
//! With a camera, a question about what is in front of the user and no picture of its own
//! takes the camera's latest frame at that moment.

use std::time::Duration;

use iris_backend::{BackendError, Camera, ChatMessage, Flow, GenParams, Llm, Role, Skills, ToolCall, ToolCallScanner, Vlm};
use iris_frames::{Envelope, Frame, ImageFrame, KindSet, TurnId};

use crate::stage::{Output, PerTurn, Stage, StageError};

#[derive(Clone, Debug)]
pub struct LlmSettings {
    pub system_prompt: String,
    pub params: GenParams,
    /// Conversation turns kept (user + assistant pairs); older ones are dropped first.
    pub history_turns: usize,
    /// Stop after this many complete sentences (0: no limit). Spoken answers should be short,
    /// and a small model rambles past "be brief".
    pub max_sentences: usize,
    /// Offer the skills to the model as functions it may call (for requests the intent
    /// matcher's phrasings miss); the called skill's sentence is the answer.
    pub model_tools: bool,
}

#[derive(Default)]
struct State {
    words: Vec<String>,
    images: Vec<ImageFrame>,
}

pub struct LlmStage {
    llm: Box<dyn Llm>,
    vision: Option<Box<dyn Vlm>>,
    camera: Option<Box<dyn Camera>>,
    skills: Option<Box<dyn Skills>>,
    settings: LlmSettings,
    /// Questions and answers, each with its turn (a withdrawn one is left out of prompts).
    history: Vec<(TurnId, ChatMessage, ChatMessage)>,
    state: PerTurn<State>,
}

impl LlmStage {
    pub fn new(llm: Box<dyn Llm>, vision: Option<Box<dyn Vlm>>, settings: LlmSettings) -> Self {
        Self { llm, vision, camera: None, skills: None, settings, history: Vec::new(), state: PerTurn::default() }
    }

    /// Deterministic skills answered before the model (time, timers, …).
    pub fn with_skills(mut self, skills: Box<dyn Skills>) -> Self {
        self.skills = Some(skills);
        self
    }

    /// The camera a question about what is in front of the user looks through.
    pub fn with_camera(mut self, camera: Box<dyn Camera>) -> Self {
        self.camera = Some(camera);
        self
    }

    /// The camera's frame if the question asks about the picture and brought none; a camera
    /// that fails gives the sentence to say instead.
    fn camera_frame(&mut self, question: &str) -> Option<Result<ImageFrame, String>> {
        let camera = self.camera.as_mut().filter(|_| super::asks_to_look(question))?;
        Some(camera.latest().map_err(|e| format!("I can't see right now: {e}")))
    }

    /// What the turn's images show, described for its question; `Some(answer)` when the
    /// descriptions are the answer itself.
    fn look(&mut self, images: &[ImageFrame], question: &str) -> Result<(Vec<String>, Option<String>), StageError> {
        let Some(vision) = self.vision.as_mut() else {
            return Ok((vec!["Iris has no vision model loaded, so it cannot see it.".to_owned(); images.len()], None));
        };
        let seen = images.iter().map(|i| vision.describe(i, question)).collect::<Result<Vec<_>, _>>()?;
        let direct = (!seen.is_empty() && vision.answers_directly(question)).then(|| seen.join(" "));
        Ok((seen, direct))
    }
}
impl LlmStage {
    /// The conversation to answer `user` in: the system prompt, the latest turns the user
    /// heard (an answer cut short as far as it was heard), and the question.
    fn prompt(&self, out: &dyn Output, user: &str) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::new(Role::System, self.settings.system_prompt.clone())];
        let heard: Vec<_> = self.history.iter().filter(|(t, _, _)| !out.is_withdrawn(*t)).collect();
        let skip = heard.len().saturating_sub(self.settings.history_turns);
        for (t, q, a) in &heard[skip..] {
            messages.push(q.clone());
            match out.heard_of(*t) {
                Some(heard) => messages.push(ChatMessage::new(Role::Assistant, heard)),
                None => messages.push(a.clone()),
            }
        }
        messages.push(ChatMessage::new(Role::User, user.to_owned()));
        messages
    }

    fn params(&self) -> GenParams {
        let mut params = self.settings.params.clone();
        if self.settings.model_tools {
            params.tools = self.skills.as_ref().map(|s| s.tools()).unwrap_or_default();
        }
        params
    }

    /// A partial transcript: the model computes the prompt of the words heard so far while the
    /// user is still speaking, so the answer needs only what the rest of the question changes.
    /// Skipped when newer input already waits (it will be worked on instead), and for a turn
    /// with pictures (their descriptions join the question at its end). A failure here costs
    /// only the head start: the answer reports the model's own errors.
    fn work_ahead(&mut self, turn: TurnId, partial: &str, out: &dyn Output) {
        if out.backlog() > 0 || out.is_cancelled(turn) {
            return;
        }
        let state = self.state.get(turn);
        if !state.images.is_empty() {
            return;
        }
        let said = state.words.iter().map(String::as_str).chain([partial.trim()]).collect::<Vec<_>>().join(" ");
        if super::asks_to_stop(&said) {
            return;
        }
        let messages = self.prompt(out, &said);
        let params = self.params();
        let _ = self.llm.prefill(&messages, &params);
    }

    /// Computes the system prompt ahead, so the first question, and the first partial
    /// transcript worked on while it is spoken, compute only their own words. Call it where
    /// the wait does not matter (at start-up, off any async runtime).
    pub fn warm(&mut self) {
        let system = [ChatMessage::new(Role::System, self.settings.system_prompt.clone())];
        let params = self.params();
        let _ = self.llm.prefill(&system, &params);
    }

    /// Keeps a question and its answer; only the latest few are ever needed.
    fn remember(&mut self, turn: TurnId, user: String, answer: String) {
        self.history.push((turn, ChatMessage::new(Role::User, user), ChatMessage::new(Role::Assistant, answer)));
        let excess = self.history.len().saturating_sub(64);
        self.history.drain(..excess);
    }

    /// Generates an answer to `messages`, emitting it as it comes (text that may be a tool call
    /// held until it is known); gives the text emitted, the calls made, and whether the turn
    /// was cancelled.
    fn answer(
        &mut self,
        turn: TurnId,
        pts: Duration,
        out: &mut dyn Output,
        messages: &[ChatMessage],
        params: &GenParams,
    ) -> Result<(String, Vec<ToolCall>, bool), StageError> {
        // The stop check and the emitter both need `out`; a RefCell lets the deltas leave as
        // they are decoded instead of after the whole answer.
        let out = std::cell::RefCell::new(out);
        let mut answer = String::new();
        let mut send_error = None;
        let mut sentences = super::SentenceSplitter::whole_sentences();
        let mut said = 0;
        let max_sentences = self.settings.max_sentences;
        let stop = || out.borrow().is_cancelled(turn);
        let mut scanner = ToolCallScanner::for_tools(&params.tools);
        let result = self.llm.generate(messages, params, &stop, &mut |delta: &str| {
            // Text that may be a call is held until it is known.
            let delta = match &mut scanner {
                Some(scan) => scan.push(delta),
                None => delta.to_owned(),
            };
            if delta.is_empty() {
                return Flow::Continue;
            }
            let delta = delta.as_str();
            // An announcement ("Here are the steps:") is not a sentence of its own: its list is.
            said += sentences.push(delta).iter().filter(|s| !super::ear::announces(s)).count();
            let done = max_sentences > 0 && said >= max_sentences;
            // The last sentence's end is seen only when the next word starts: hold that word back.
            let delta = if done { delta.strip_suffix(sentences.pending()).unwrap_or(delta) } else { delta };
            answer.push_str(delta);
            match out.borrow_mut().emit(turn, pts, Frame::TextDelta(delta.to_owned())) {
                Ok(()) if done => Flow::Stop,
                Ok(()) => Flow::Continue,
                Err(e) => {
                    send_error = Some(e);
                    Flow::Stop
                }
            }
        });
        let out = out.into_inner();
        if out.is_cancelled(turn) {
            return Ok((answer, Vec::new(), true));
        }
        if let Some(e) = send_error {
            return Err(e);
        }
        match result {
            Ok(_) => {}
            Err(BackendError::Cancelled) => return Ok((answer, Vec::new(), true)),
            Err(e) => return Err(e.into()),
        }
        let Some(scan) = scanner else { return Ok((answer, Vec::new(), false)) };
        let (rest, calls) = scan.finish();
        if calls.is_empty() && answer.is_empty() {
            if let Some(call) = iris_backend::stray_call(&rest) {
                // A call to a function not offered is not read out: no skill takes it, so the
                // model is asked again without tools.
                return Ok((String::new(), vec![call], false));
            }
        }
        if !rest.is_empty() {
            out.emit(turn, pts, Frame::TextDelta(rest.clone()))?;
            answer.push_str(&rest);
        }
        Ok((answer, calls, false))
    }
}

impl Stage for LlmStage {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn accepts(&self) -> KindSet {
        super::info("llm").accepts
    }

    fn emits(&self) -> KindSet {
        super::info("llm").emits
    }

    fn process(&mut self, env: Envelope, out: &mut dyn Output) -> Result<(), StageError> {
        let turn = env.turn;
        match env.frame {
            Frame::Transcript(ref t) => {
                let partial = (!t.is_final && !t.text.trim().is_empty()).then(|| t.text.clone());
                if t.is_final && !t.text.is_empty() {
                    self.state.get(turn).words.push(t.text.clone());
                }
                // Displays downstream show what was heard, before any work ahead.
                out.send(env)?;
                if let Some(partial) = partial {
                    self.work_ahead(turn, &partial, &*out);
                }
                return Ok(());
            }
            Frame::UserText(text) if !text.trim().is_empty() => self.state.get(turn).words.push(text.trim().to_owned()),
            Frame::Image(image) => self.state.get(turn).images.push(image),
            _ => {}
        }
        Ok(())
    }

    fn end_turn(&mut self, turn: TurnId, pts: Duration, out: &mut dyn Output) -> Result<(), StageError> {
        let mut state = self.state.take(turn);
        let said = state.words.join(" ");
        // "Stop", "never mind": the loop has stopped what was playing; there is nothing to answer
        // and nothing to remember.
        if state.images.is_empty() && super::asks_to_stop(&said) {
            return Ok(());
        }
        if state.images.is_empty() {
            match self.camera_frame(&said) {
                Some(Ok(frame)) => state.images.push(frame),
                Some(Err(sorry)) => {
                    out.emit(turn, pts, Frame::TextDelta(sorry.clone()))?;
                    self.remember(turn, said, sorry);
                    return Ok(());
                }
                None => {}
            }
        }
        let (seen, direct) = self.look(&state.images, &said)?;
        let mut user = said.clone();
        for s in &seen {
            user.push_str(&format!("\n(The user is showing a picture. {s})"));
        }
        let user = user.trim().to_owned();
        if user.is_empty() {
            return Ok(());
        }
        if let Some(answer) = direct {
            out.emit(turn, pts, Frame::TextDelta(answer.clone()))?;
            self.remember(turn, user, answer);
            return Ok(());
        }
        if state.images.is_empty() {
            if let Some(answer) = self.skills.as_mut().and_then(|s| s.handle(&user)) {
                out.emit(turn, pts, Frame::TextDelta(answer.clone()))?;
                self.remember(turn, user, answer);
                return Ok(());
            }
        }
        let messages = self.prompt(out, &user);
        let mut params = self.params();
        let (mut answer, calls, cut) = self.answer(turn, pts, out, &messages, &params)?;
        if cut {
            // Cancelled (interrupted): what was written is kept; the prompt cuts it to what was heard.
            if !answer.is_empty() {
                self.remember(turn, user, answer);
            }
            return Ok(());
        }
        if !calls.is_empty() {
            // The first call the skills take is the answer; what the model said around it is not.
            if let Some(spoken) = calls.iter().find_map(|c| self.skills.as_mut()?.call(c, &user)) {
                out.emit(turn, pts, Frame::TextDelta(spoken.clone()))?;
                self.remember(turn, user, spoken);
                return Ok(());
            }
            // A call no skill takes (a wrong tool, arguments the words do not support): asked
            // again without tools, the model answers in words.
            if answer.trim().is_empty() {
                params.tools.clear();
                let (again, _, cut) = self.answer(turn, pts, out, &messages, &params)?;
                answer = again;
                if cut && answer.is_empty() {
                    return Ok(());
                }
            }
        }
        // Stored exactly as generated, so the next prompt extends the model's cached text.
        self.remember(turn, user, answer);
        Ok(())
    }
}
