//! The turn controller: when a turn starts, when it ends, when to barge in, and the follow-up
//! window. Pure logic on the media clock: no threads, devices or models, so every rule is
//! tested with scripted timelines.
//!
//! States: `Idle` (waiting for the wake word, or for speech in `always` mode), `Armed` (woken,
//! waiting for the question), `Listening` (the question is being said), `Thinking` (the turn went
//! to the pipeline), `Speaking` (its answer is playing) and `FollowUp` (a few seconds after an
//! answer in which speech starts a turn without the wake word).

/// Media time in seconds since the loop started.
pub type Secs = f64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A turn starts with the wake word (default).
    WakeWord,
    /// Every utterance is a turn.
    Always,
    /// A turn starts when asked (a button, an HTTP call, Enter).
    PushToTalk,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wake_word" => Some(Mode::WakeWord),
            "always" => Some(Mode::Always),
            "push_to_talk" => Some(Mode::PushToTalk),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TurnRules {
    pub mode: Mode,
    /// Silence after speech that ends the turn when no semantic check is made.
    pub endpoint: Secs,
    /// With a semantic check: the longest pause allowed inside an unfinished sentence.
    pub max_pause: Secs,
    /// Probability from the semantic check at or above which a pause ends the turn at once.
    pub complete_threshold: f32,
    /// Woken but nobody speaks: give up after this long.
    pub armed_timeout: Secs,
    /// After an answer, speech within this long starts a turn without the wake word (0: off).
    pub follow_up: Secs,
    /// A turn longer than this is ended (Whisper hears 30 s at most).
    pub max_turn: Secs,
    /// Audio kept from before a turn's start, so its first syllable is not lost.
    pub pre_roll: Secs,
    /// The same after the wake word: shorter, since the score peaks just after the word ends
    /// and more would hand the recogniser the word's tail ("…vis, what time is it").
    pub wake_pre_roll: Secs,
    /// Speech (not only the wake word) during an answer interrupts it.
    pub barge_in_on_speech: bool,
}

impl Default for TurnRules {
    fn default() -> Self {
        Self {
            mode: Mode::WakeWord,
            endpoint: 0.5,
            max_pause: 1.2,
            complete_threshold: 0.5,
            armed_timeout: 5.0,
            follow_up: 5.0,
            max_turn: 28.0,
            pre_roll: 0.3,
            wake_pre_roll: 0.05,
            barge_in_on_speech: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum State {
    Idle,
    Armed {
        since: Secs,
    },
    /// `silent_since`: speech paused there (None while speech goes on); `complete`: the semantic
    /// check's verdict on that pause, once known.
    Listening {
        started: Secs,
        silent_since: Option<Secs>,
        complete: Option<bool>,
    },
    Thinking,
    Speaking,
    FollowUp {
        until: Secs,
    },
}

/// What the controller asks of the loop.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start a turn with the audio from `from` on.
    StartTurn { from: Secs },
    /// The speaker finished: the turn's audio ends at `at`.
    EndTurn { at: Secs },
    /// Drop the turn that was starting (woken, but nobody asked anything).
    CancelTurn,
    /// Run the semantic end-of-turn check on the turn's audio so far.
    CheckTurn,
    /// Stop the answer now: flush playback, cancel the turn's work.
    BargeIn,
    /// Pause playback where it is: the user may be saying the wake word.
    Hold,
    /// It was not the wake word: play on from where it paused.
    Resume,
}

/// Speech that goes on this long after the wake word was detected holds a question. The word's
/// own speech ends at or just before its detection (the score peaks as the word ends); a word
/// as short as "Stop." said 0.3 s after it ends 0.4 to 0.6 s after the detection, which a
/// half-second rule missed when the score settled late (the turn was then dropped).
const ONE_BREATH: Secs = 0.3;
/// A paused answer waits this long after the last stir for the wake word to be confirmed: a
/// score that has risen part of the way settles above the threshold within two or three hops
/// when it is the word.
const HOLD_FOR: Secs = 0.4;

pub struct Controller {
    rules: TurnRules,
    state: State,
    in_speech: bool,
    semantic: bool,
    /// The answer is paused until then, waiting for the wake word.
    held_until: Option<Secs>,
    /// The turn being listened to began with the wake word (or a button), not with speech in
    /// a follow-up window.
    woken: bool,
}

impl Controller {
    /// `semantic`: a semantic end-of-turn check is available and on.
    pub fn new(rules: TurnRules, semantic: bool) -> Self {
        Self { rules, state: State::Idle, in_speech: false, semantic, held_until: None, woken: false }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn rules(&self) -> &TurnRules {
        &self.rules
    }

    /// Whether a turn is being heard (its audio goes to the pipeline).
    pub fn collecting(&self) -> bool {
        matches!(self.state, State::Armed { .. } | State::Listening { .. })
    }

    /// `speaking`: the turn starts with speech already under way (not a wake word or a button).
    fn start(&mut self, t: Secs, from: Secs, speaking: bool, out: &mut Vec<Action>) {
        out.push(Action::StartTurn { from: from.max(0.0) });
        self.woken = !speaking;
        // After the wake word, wait even if speech goes on (the wake word itself): the question
        // may follow a pause.
        self.state = if speaking { State::Listening { started: t, silent_since: None, complete: None } } else { State::Armed { since: t } };
    }

    fn interrupt(&mut self, out: &mut Vec<Action>) {
        // A barge-in flushes what the hold kept.
        self.held_until = None;
        if matches!(self.state, State::Thinking | State::Speaking) {
            out.push(Action::BargeIn);
        }
    }

    /// A wake word's score rose part of the way at `t`: an answer that is playing pauses, so
    /// that if it is the word the speaker is already silent when the word is confirmed.
    pub fn stir(&mut self, t: Secs) -> Vec<Action> {
        let mut out = Vec::new();
        if self.rules.mode == Mode::WakeWord && self.state == State::Speaking {
            if self.held_until.is_none() {
                out.push(Action::Hold);
            }
            self.held_until = Some(t + HOLD_FOR);
        }
        out
    }

    /// Whether an answer is paused waiting for the wake word.
    pub fn holding(&self) -> bool {
        self.held_until.is_some()
    }

    /// The wake word was heard at `t`.
    pub fn wake(&mut self, t: Secs) -> Vec<Action> {
        let mut out = Vec::new();
        if self.rules.mode != Mode::WakeWord {
            return out;
        }
        match self.state {
            State::Idle | State::FollowUp { .. } => self.start(t, t - self.rules.wake_pre_roll, false, &mut out),
            State::Thinking | State::Speaking => {
                self.interrupt(&mut out);
                self.start(t, t - self.rules.wake_pre_roll, false, &mut out);
            }
            // A follow-up that opens with the wake word ("Hey Jarvis, what is …"): the user is
            // starting over, so the turn starts again at the word, and its pause after the word
            // does not end the turn with the word alone.
            State::Listening { .. } if !self.woken => self.start(t, t - self.rules.wake_pre_roll, false, &mut out),
            // Said again while already listening: nothing new.
            State::Armed { .. } | State::Listening { .. } => {}
        }
        out
    }

    /// The user asked Iris to stop ("stop", "never mind"): the answer ends, nothing new starts.
    pub fn stop(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::Thinking | State::Speaking) {
            self.interrupt(&mut out);
            self.state = State::Idle;
        }
        out
    }

    /// Whether an answer is being made or played.
    pub fn answering(&self) -> bool {
        matches!(self.state, State::Thinking | State::Speaking)
    }

    /// Push to talk (or a panel button): start listening now, whatever the mode.
    pub fn push_to_talk(&mut self, t: Secs) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Armed { .. } | State::Listening { .. } => {}
            _ => {
                self.interrupt(&mut out);
                self.start(t, t - self.rules.pre_roll, false, &mut out);
            }
        }
        out
    }

    /// Voice activity began at `at`.
    pub fn speech_start(&mut self, at: Secs) -> Vec<Action> {
        self.in_speech = true;
        let mut out = Vec::new();
        match self.state {
            // Speech that began before the wake word was detected is the wake word itself.
            State::Armed { since } if at >= since => self.state = State::Listening { started: at, silent_since: None, complete: None },
            State::Listening { started, .. } => self.state = State::Listening { started, silent_since: None, complete: None },
            State::Idle if self.rules.mode == Mode::Always => self.start(at, at - self.rules.pre_roll, true, &mut out),
            State::FollowUp { until } if at <= until => self.start(at, at - self.rules.pre_roll, true, &mut out),
            State::Thinking | State::Speaking if self.rules.barge_in_on_speech => {
                self.interrupt(&mut out);
                self.start(at, at - self.rules.pre_roll, true, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Voice activity stopped; speech really ended at `at`.
    pub fn speech_end(&mut self, at: Secs) -> Vec<Action> {
        self.in_speech = false;
        let mut out = Vec::new();
        match self.state {
            State::Listening { started, .. } => self.state = State::Listening { started, silent_since: Some(at), complete: None },
            // Speech that went on well past the wake word was the question, said in one breath.
            State::Armed { since } if at - since >= ONE_BREATH => {
                self.state = State::Listening { started: since, silent_since: Some(at), complete: None }
            }
            _ => return out,
        }
        if self.semantic {
            out.push(Action::CheckTurn);
        }
        out
    }

    /// The semantic check's probability that the speaker finished, for the current pause.
    pub fn turn_check(&mut self, probability: f32) {
        if let State::Listening { started, silent_since: Some(s), .. } = self.state {
            let complete = probability >= self.rules.complete_threshold;
            self.state = State::Listening { started, silent_since: Some(s), complete: Some(complete) };
        }
    }

    /// Time passes: ends turns whose pause is long enough, gives up waiting, closes windows.
    pub fn tick(&mut self, t: Secs) -> Vec<Action> {
        let mut out = Vec::new();
        if self.held_until.is_some_and(|until| t >= until) {
            self.held_until = None;
            out.push(Action::Resume);
        }
        match self.state {
            State::Armed { since } if t - since >= self.rules.armed_timeout => {
                out.push(Action::CancelTurn);
                self.state = State::Idle;
            }
            State::Listening { started, silent_since, complete } => {
                let ended = match silent_since {
                    Some(s) => {
                        let needed = match (self.semantic, complete) {
                            (false, _) => self.rules.endpoint,
                            (true, Some(true)) => 0.0,
                            // The check has not answered yet: wait for it, up to the longest pause.
                            (true, _) => self.rules.max_pause,
                        };
                        (t - s >= needed).then_some(s)
                    }
                    None => (t - started >= self.rules.max_turn).then_some(t),
                };
                if let Some(at) = ended {
                    out.push(Action::EndTurn { at });
                    self.state = State::Thinking;
                }
            }
            State::FollowUp { until } if t > until => self.state = State::Idle,
            _ => {}
        }
        out
    }

    /// The answer's first sample was played.
    pub fn answer_started(&mut self) {
        if self.state == State::Thinking {
            self.state = State::Speaking;
        }
    }

    /// The turn is over: its answer played to the end (or there was none).
    pub fn answer_done(&mut self, t: Secs) {
        self.held_until = None;
        if matches!(self.state, State::Thinking | State::Speaking) {
            self.state = if self.rules.follow_up > 0.0 && self.rules.mode != Mode::Always {
                State::FollowUp { until: t + self.rules.follow_up }
            } else {
                State::Idle
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mode: Mode) -> TurnRules {
        // A pre-roll exact in binary, so times compare exactly.
        TurnRules { mode, pre_roll: 0.25, wake_pre_roll: 0.25, ..TurnRules::default() }
    }

    #[test]
    fn wake_then_question_then_pause_ends_the_turn() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        assert_eq!(c.speech_start(0.5), vec![]);
        assert_eq!(c.speech_end(1.2), vec![]);
        assert_eq!(c.wake(1.25), vec![Action::StartTurn { from: 1.0 }]);
        assert!(matches!(c.state(), State::Armed { .. }));
        assert_eq!(c.speech_start(1.6), vec![]);
        assert_eq!(c.speech_end(3.0), vec![]);
        assert_eq!(c.tick(3.4), vec![]);
        assert_eq!(c.tick(3.5), vec![Action::EndTurn { at: 3.0 }]);
        assert_eq!(c.state(), State::Thinking);
        // Its own answer's echo does not start another turn.
        assert_eq!(c.speech_start(4.0), vec![]);
        c.answer_started();
        c.answer_done(6.0);
        assert_eq!(c.state(), State::FollowUp { until: 11.0 });
    }

    #[test]
    fn wake_word_said_in_one_breath_with_the_question() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.speech_start(0.2);
        assert_eq!(c.wake(1.0), vec![Action::StartTurn { from: 0.75 }]);
        c.speech_end(2.0);
        assert!(matches!(c.state(), State::Listening { .. }));
        assert_eq!(c.tick(2.5), vec![Action::EndTurn { at: 2.0 }]);
    }

    /// "Hey Jarvis … stop": one short word run on from the wake word (the speech detector heard
    /// no pause between them) is a turn, however late the word's score settled.
    #[test]
    fn a_short_word_run_on_from_the_wake_word_is_a_turn() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.speech_start(0.2);
        c.wake(1.0);
        c.speech_end(1.4);
        assert_eq!(c.tick(1.9), vec![Action::EndTurn { at: 1.4 }]);
        // The word alone, its speech ending as it is detected, waits for the question.
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.speech_start(0.2);
        c.wake(1.0);
        c.speech_end(1.1);
        assert!(c.tick(2.0).is_empty() && matches!(c.state(), State::Armed { .. }));
    }

    #[test]
    fn a_pause_after_the_wake_word_waits_for_the_question() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.speech_start(0.2);
        c.wake(0.9);
        c.speech_end(1.0);
        assert!(c.tick(1.8).is_empty());
        assert!(matches!(c.state(), State::Armed { .. }));
        c.speech_start(2.0);
        c.speech_end(3.0);
        assert_eq!(c.tick(3.5), vec![Action::EndTurn { at: 3.0 }]);
    }

    #[test]
    fn without_the_wake_word_nothing_starts() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.speech_start(0.2);
        c.speech_end(2.0);
        assert!(c.tick(10.0).is_empty());
        assert_eq!(c.state(), State::Idle);
    }

    #[test]
    fn woken_but_silent_gives_up() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.wake(1.0);
        assert!(c.tick(5.9).is_empty());
        assert_eq!(c.tick(6.0), vec![Action::CancelTurn]);
        assert_eq!(c.state(), State::Idle);
    }

    #[test]
    fn always_mode_takes_every_utterance() {
        let mut c = Controller::new(rules(Mode::Always), false);
        assert_eq!(c.speech_start(1.0), vec![Action::StartTurn { from: 0.75 }]);
        c.speech_end(2.0);
        assert_eq!(c.tick(2.5), vec![Action::EndTurn { at: 2.0 }]);
        assert!(c.wake(3.0).is_empty());
    }

    #[test]
    fn a_pause_inside_a_sentence_does_not_end_the_turn() {
        let mut c = Controller::new(rules(Mode::Always), true);
        c.speech_start(1.0);
        assert_eq!(c.speech_end(2.0), vec![Action::CheckTurn]);
        c.turn_check(0.1);
        assert!(c.tick(2.9).is_empty(), "incomplete: waits up to max_pause");
        c.speech_start(3.0);
        assert_eq!(c.speech_end(4.0), vec![Action::CheckTurn]);
        c.turn_check(0.9);
        assert_eq!(c.tick(4.02), vec![Action::EndTurn { at: 4.0 }]);
    }

    #[test]
    fn an_unfinished_pause_still_ends_after_max_pause() {
        let mut c = Controller::new(rules(Mode::Always), true);
        c.speech_start(1.0);
        c.speech_end(2.0);
        c.turn_check(0.1);
        assert_eq!(c.tick(3.2), vec![Action::EndTurn { at: 2.0 }]);
    }

    #[test]
    fn a_follow_up_that_opens_with_the_wake_word_starts_over_at_the_word() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.wake(1.0);
        c.speech_start(1.2);
        c.speech_end(3.0);
        c.tick(3.6);
        c.answer_started();
        c.answer_done(6.0);
        // In the follow-up window, speech starts a turn; the wake word then starts it over.
        assert_eq!(c.speech_start(7.0).len(), 1);
        let again = c.wake(7.6);
        assert!(matches!(again[..], [Action::StartTurn { .. }]), "{again:?}");
        assert!(matches!(c.state(), State::Armed { .. }));
        // Heard again in a turn it opened, it changes nothing.
        assert!(c.wake(7.9).is_empty());
    }

    #[test]
    fn follow_up_needs_no_wake_word_until_the_window_closes() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.wake(0.0);
        c.speech_start(0.5);
        c.speech_end(1.0);
        c.tick(1.5);
        c.answer_started();
        c.answer_done(3.0);
        assert_eq!(c.speech_start(4.0), vec![Action::StartTurn { from: 3.75 }]);
        c.speech_end(5.0);
        c.tick(5.5);
        c.answer_done(6.0);
        c.tick(11.5);
        assert_eq!(c.state(), State::Idle);
        assert!(c.speech_start(12.0).is_empty());
    }

    #[test]
    fn the_wake_word_interrupts_an_answer() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.wake(0.0);
        c.speech_start(0.5);
        c.speech_end(1.0);
        c.tick(1.5);
        c.answer_started();
        assert_eq!(c.wake(2.0), vec![Action::BargeIn, Action::StartTurn { from: 1.75 }]);
    }

    /// A score part of the way pauses the answer; the word confirmed within the hold is a
    /// barge-in, and a stir that goes nowhere plays on.
    #[test]
    fn a_stir_holds_the_answer_until_the_word_is_confirmed_or_not() {
        let mut c = Controller::new(rules(Mode::WakeWord), false);
        c.wake(0.0);
        c.speech_start(0.5);
        c.speech_end(1.0);
        c.tick(1.5);
        assert!(c.stir(1.6).is_empty(), "nothing is playing yet");
        c.answer_started();
        assert_eq!(c.stir(2.0), vec![Action::Hold]);
        assert!(c.stir(2.08).is_empty() && c.holding());
        assert!(c.tick(2.4).is_empty(), "held 0.4 s after the last stir");
        assert_eq!(c.tick(2.48), vec![Action::Resume]);
        assert_eq!(c.stir(3.0), vec![Action::Hold]);
        assert_eq!(c.wake(3.08), vec![Action::BargeIn, Action::StartTurn { from: 2.83 }]);
        assert!(!c.holding() && c.tick(3.5).is_empty());
    }

    #[test]
    fn a_turn_that_never_pauses_is_cut_at_max_turn() {
        let mut c = Controller::new(rules(Mode::Always), false);
        c.speech_start(0.0);
        assert!(c.tick(27.9).is_empty());
        assert_eq!(c.tick(28.0), vec![Action::EndTurn { at: 28.0 }]);
    }
}
