//! The whole loop in the simulated room on fake backends: the turn-taking rules end to end,
//! on the media clock, in milliseconds.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts, FakeVad, FakeWakeWord};
use iris_backend::{AsrOptions, GenParams};
use iris_live::{Controller, Event, FrontEnd, FrontSettings, LiveLoop, Mode, Room, TurnRules};
use iris_pipeline::stages::{AsrSettings, AsrStage, LlmSettings, LlmStage, SentenceStage, TtsStage, BUILTIN};
use iris_pipeline::{Pipeline, PipelineSpec, Stage, Turns};

const PIPELINE: &str = include_str!("../../../pipelines/listen.toml");

fn pipeline() -> Pipeline {
    pipeline_with(FakeLlm::new(&["Paris", " is", " the", " capital", "."]))
}

/// A language model that takes `ms` of real time per token; the prompts it was asked.
fn slow_llm(ms: u64) -> (FakeLlm, Arc<Mutex<Vec<Vec<iris_backend::ChatMessage>>>>) {
    let mut llm = FakeLlm::new(&["Paris", " is", " the", " capital", "."]);
    llm.before_token = Box::new(move |_| std::thread::sleep(std::time::Duration::from_millis(ms)));
    let prompts = llm.prompts.clone();
    (llm, prompts)
}

fn pipeline_with(llm: FakeLlm) -> Pipeline {
    build(llm, 0, FakeTts::default())
}

/// The recogniser stage, closing each turn `ms` of real time late (a loaded machine).
struct LateEnd(Box<dyn Stage>, u64);

impl Stage for LateEnd {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn accepts(&self) -> iris_frames::KindSet {
        self.0.accepts()
    }
    fn emits(&self) -> iris_frames::KindSet {
        self.0.emits()
    }
    fn process(&mut self, env: iris_frames::Envelope, out: &mut dyn iris_pipeline::Output) -> Result<(), iris_pipeline::StageError> {
        self.0.process(env, out)
    }
    fn end_turn(
        &mut self,
        turn: iris_frames::TurnId,
        pts: std::time::Duration,
        out: &mut dyn iris_pipeline::Output,
    ) -> Result<(), iris_pipeline::StageError> {
        std::thread::sleep(std::time::Duration::from_millis(self.1));
        self.0.end_turn(turn, pts, out)
    }
}

/// The listening pipeline on fakes: the recogniser ends each turn `late_ms` of real time late.
fn build(llm: FakeLlm, late_ms: u64, tts: FakeTts) -> Pipeline {
    let spec = PipelineSpec::parse(PIPELINE, BUILTIN).unwrap();
    let settings = LlmSettings {
        system_prompt: "Be brief.".into(),
        params: GenParams::default(),
        history_turns: 4,
        max_sentences: 0,
        model_tools: false,
    };
    let asr = AsrStage::new(
        Arc::new(FakeAsr::new("what is the capital of france")),
        AsrOptions::default(),
        AsrSettings { gated: true, partial_every: None },
    )
    .merging_pauses();
    let stages: Vec<Box<dyn Stage>> = vec![
        Box::new(LateEnd(Box::new(asr), late_ms)),
        Box::new(LlmStage::new(Box::new(llm), None, settings)),
        Box::new(SentenceStage::new()),
        Box::new(TtsStage::new(Box::new(tts))),
    ];
    Pipeline::start(&spec, stages, Turns::new())
}

/// Seconds of silence and "speech" (a steady level); a wake word is a short loud burst.
fn session(parts: &[(&str, f64)]) -> Vec<f32> {
    let mut out = Vec::new();
    for (kind, secs) in parts {
        let n = (secs * 16_000.0) as usize;
        let level = match *kind {
            "wake" => 1.0,
            // Half as loud as the wake word: the fake word half heard.
            "stir" => 0.6,
            "speech" => 0.2,
            _ => 0.0,
        };
        out.extend(std::iter::repeat_n(level, n));
    }
    out
}

fn run(mic: Vec<f32>, mode: Mode) -> (Vec<Event>, Vec<f32>) {
    run_on(pipeline(), mic, mode)
}

fn run_on(p: Pipeline, mic: Vec<f32>, mode: Mode) -> (Vec<Event>, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let (mut room, speaker) = Room::new(mic, &out, None).unwrap();
    let wake = FakeWakeWord { hop_len: 1280, level: 0.9 };
    let front = FrontEnd::new(Some(Box::new(wake)), Box::new(FakeVad { frame_len: 512, threshold: 0.05 }), FrontSettings::default());
    let controller = Controller::new(TurnRules { mode, ..TurnRules::default() }, false);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let lp = LiveLoop::new(&p, front, controller, None, speaker).with_sink(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    lp.run(&mut room, &AtomicBool::new(false));
    room.finish().unwrap();
    let played = iris_audio::read_wav(&out).unwrap().samples;
    let events = events.lock().unwrap().clone();
    (events, played)
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

#[test]
fn wake_word_then_question_is_answered_out_loud() {
    let mic = session(&[("silence", 1.0), ("wake", 0.1), ("silence", 0.5), ("speech", 1.5), ("silence", 3.0)]);
    let (events, played) = run(mic, Mode::WakeWord);
    let n = names(&events);
    for want in [
        "wake",
        "speech_start",
        "speech_end",
        "end_of_turn",
        "transcript",
        "llm_first_token",
        "sentence",
        "audio_start",
        "audio_stop",
        "answer",
    ] {
        assert!(n.contains(&want), "no {want} in {n:?}");
    }
    let at = |name: &str| events.iter().find(|e| e.kind.name() == name).map(|e| e.t).unwrap();
    let speech_end = events.iter().filter(|e| e.kind.name() == "speech_end").last().unwrap().t;
    assert!((speech_end - 3.1).abs() < 0.05, "speech ended at 3.1 s, heard {speech_end}");
    assert!(at("end_of_turn") >= speech_end + 0.5, "{events:?}");
    assert!(at("audio_start") > at("end_of_turn"));
    let answer = events.iter().find_map(|e| if let iris_live::EventKind::Answer { text } = &e.kind { Some(text.clone()) } else { None });
    assert_eq!(answer.as_deref(), Some("Paris is the capital."));
    // What was played sits in the speaker file where audio_start says it started.
    let first = played.iter().position(|&s| s.abs() > 0.1).unwrap() as f64 / 16_000.0;
    assert!((first - at("audio_start")).abs() < 0.021, "played at {first}, audio_start {}", at("audio_start"));
}

#[test]
fn without_the_wake_word_nobody_answers() {
    let mic = session(&[("silence", 0.5), ("speech", 1.5), ("silence", 2.0)]);
    let (events, played) = run(mic, Mode::WakeWord);
    assert!(!names(&events).contains(&"end_of_turn"), "{:?}", names(&events));
    assert!(played.iter().all(|&s| s == 0.0));
}

#[test]
fn always_mode_answers_every_utterance() {
    let mic = session(&[("silence", 0.5), ("speech", 1.0), ("silence", 2.0), ("speech", 1.0), ("silence", 2.0)]);
    let (events, _) = run(mic, Mode::Always);
    let answers = events.iter().filter(|e| e.kind.name() == "answer").count();
    assert_eq!(answers, 2, "{:?}", names(&events));
}

/// An hour of silence through the loop: nothing is kept that grows with time.
#[test]
fn an_hour_of_silence_keeps_memory_flat() {
    struct Silence {
        left: usize,
    }
    impl iris_live::Capture for Silence {
        fn read(&mut self) -> Result<Vec<f32>, iris_live::IoError> {
            self.left = self.left.saturating_sub(1);
            Ok(vec![0.0; 320])
        }
        fn finished(&self) -> bool {
            self.left == 0
        }
    }
    use iris_live::Capture;
    fn rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    let p = pipeline();
    let wake = FakeWakeWord { hop_len: 1280, level: 0.9 };
    let front = FrontEnd::new(Some(Box::new(wake)), Box::new(FakeVad { frame_len: 512, threshold: 0.05 }), FrontSettings::default());
    let controller = Controller::new(TurnRules::default(), false);
    let speaker = iris_live::Speaker::new(16_000);
    // Ten minutes first (warm-up), then the rest of the hour: the second part adds nothing.
    let mut lp = LiveLoop::new(&p, front, controller, None, speaker);
    let mut silence = Silence { left: 0 };
    for _ in 0..30_000 {
        lp.step(&silence.read().unwrap());
    }
    let warm = rss_kb();
    for _ in 0..150_000 {
        lp.step(&silence.read().unwrap());
    }
    let after = rss_kb();
    assert!(after <= warm + 2_048, "RSS grew from {warm} kB to {after} kB over 50 minutes of silence");
}

fn at(events: &[Event], name: &str) -> f64 {
    events.iter().find(|e| e.kind.name() == name).map(|e| e.t).unwrap_or_else(|| panic!("no {name} in {:?}", names(events)))
}

/// The answer is made during the pause that ends the turn: with a language model that takes
/// 0.5 s, the reply starts about 0.2 s after the end of the turn (decided 0.5 s after the
/// speech, which the front end hears as over 0.2 s in), not 0.5 s after it.
#[test]
fn the_answer_is_made_while_the_end_of_the_turn_is_decided() {
    let (llm, prompts) = slow_llm(100);
    let mic = session(&[("silence", 0.5), ("speech", 1.5), ("silence", 3.0)]);
    let (events, _) = run_on(pipeline_with(llm), mic, Mode::Always);
    let end = at(&events, "end_of_turn");
    let first_audio = at(&events, "audio_start");
    assert!(first_audio - end < 0.38, "audio {first_audio:.3} s, end of turn {end:.3} s: {:?}", names(&events));
    assert!(at(&events, "llm_first_token") >= end, "events are reported when the answer is taken");
    assert_eq!(prompts.lock().unwrap().len(), 1, "the question was answered once");
}

/// A pause inside the question: the answer begun at the pause is withdrawn when the user goes
/// on, and the language model forgets it (the next question's prompt holds one earlier turn).
#[test]
fn speech_after_a_pause_withdraws_the_answer_begun_at_it() {
    let (llm, prompts) = slow_llm(60);
    let mic = session(&[
        ("silence", 0.5),
        ("speech", 1.0),
        ("silence", 0.35),
        ("speech", 1.0),
        ("silence", 3.0),
        ("speech", 1.0),
        ("silence", 3.0),
    ]);
    let (events, _) = run_on(pipeline_with(llm), mic, Mode::Always);
    let answers: Vec<_> = events.iter().filter(|e| e.kind.name() == "answer").collect();
    assert_eq!(answers.len(), 2, "{:?}", names(&events));
    let prompts = prompts.lock().unwrap();
    let last = prompts.last().unwrap();
    let users = last.iter().filter(|m| m.role == iris_backend::Role::User).count();
    assert_eq!(users, 2, "the withdrawn answer stayed in the conversation: {last:?}");
}

/// On a loaded machine the recogniser is still busy when the answer made ahead is taken: the
/// turn has one transcript, the question's words (not the empty one of the answer made ahead).
#[test]
fn a_slow_recogniser_gives_the_turn_one_transcript() {
    let (llm, _) = slow_llm(10);
    let mic = session(&[("silence", 0.5), ("speech", 1.5), ("silence", 4.0)]);
    let (events, _) = run_on(build(llm, 400, FakeTts::default()), mic, Mode::Always);
    let transcripts: Vec<_> = events.iter().filter(|e| e.kind.name() == "transcript").collect();
    assert_eq!(transcripts.len(), 1, "{transcripts:?}");
    assert!(format!("{:?}", transcripts[0].kind).contains("capital"), "{transcripts:?}");
}

/// An answer that takes about a second to say ("Paris is the capital." at 50 ms a character),
/// with `parts` said over it from 3.9 s on (the answer starts about 3.7 s in).
fn over_a_long_answer(parts: &[(&str, f64)]) -> (Vec<Event>, Vec<f32>) {
    let mut mic = session(&[("silence", 1.0), ("wake", 0.1), ("silence", 0.5), ("speech", 1.5), ("silence", 0.8)]);
    mic.extend(session(parts));
    mic.extend(session(&[("silence", 4.0)]));
    let tts = FakeTts { per_char: 800, ..FakeTts::default() };
    run_on(build(FakeLlm::new(&["Paris", " is", " the", " capital", "."]), 0, tts), mic, Mode::WakeWord)
}

/// A score part of the way over an answer pauses it (silence from that hop on); nothing
/// confirms the word, so it goes on from where it paused and is played whole.
#[test]
fn a_half_heard_wake_word_pauses_the_answer_and_it_goes_on() {
    let (events, played) = over_a_long_answer(&[("stir", 0.05)]);
    let n = names(&events);
    assert!(!n.contains(&"barge_in"), "{n:?}");
    let (hold, resume) = (at(&events, "hold"), at(&events, "resume"));
    assert!(at(&events, "audio_start") < hold && hold <= 4.0 && (0.4..=0.5).contains(&(resume - hold)), "{events:?}");
    let quiet = &played[((hold + 0.02) * 16_000.0) as usize..(resume * 16_000.0) as usize];
    assert!(quiet.iter().all(|x| *x == 0.0), "the hold was not silent");
    let sound = played.iter().filter(|x| x.abs() > 0.0).count();
    assert_eq!(sound, "Paris is the capital.".len() * 800, "the whole answer was played");
    let answer = events.iter().find_map(|e| if let iris_live::EventKind::Answer { text } = &e.kind { Some(text.clone()) } else { None });
    assert_eq!(answer.as_deref(), Some("Paris is the capital."));
}

/// The word confirmed a hop after it stirred: the speaker has been silent since the stir, and
/// the answer is cut where it paused.
#[test]
fn the_wake_word_over_an_answer_silences_it_from_the_first_stir() {
    let (events, played) = over_a_long_answer(&[("stir", 0.05), ("silence", 0.05), ("wake", 0.05)]);
    let (hold, barge) = (at(&events, "hold"), at(&events, "barge_in"));
    assert!(barge > hold && barge - hold < 0.2, "{events:?}");
    let after = &played[((hold + 0.02) * 16_000.0) as usize..];
    assert!(after.iter().take(16_000).all(|x| *x == 0.0), "sound after the hold at {hold}");
    assert!(!names(&events).contains(&"resume"));
}
