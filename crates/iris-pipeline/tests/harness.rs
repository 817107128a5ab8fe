//! Stages on scripted frames with fakes of every backend, and whole pipelines with cancellation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iris_backend::fakes::{FakeAsr, FakeLlm, FakeTts, FakeVad, FakeVlm};
use iris_backend::{AsrOptions, GenParams};
use iris_frames::{AudioChunk, Envelope, Frame, FrameKind, ImageFrame, TurnId};
use iris_pipeline::harness::{run_stage, run_stage_queued, run_stage_with};
use iris_pipeline::stages::{AsrSettings, AsrStage, LlmSettings, LlmStage, SentenceStage, TtsStage, VadSettings, VadStage, BUILTIN};
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Stage, Turns};

const T: TurnId = TurnId(1);

fn env(frame: Frame) -> Envelope {
    Envelope::new(T, Duration::ZERO, frame)
}

/// 20 ms chunks: `speech` of them loud, framed by `silence` quiet ones each side.
fn utterance(silence: usize, speech: usize) -> Vec<Envelope> {
    let mut out = Vec::new();
    let mut pts = Duration::ZERO;
    for i in 0..(2 * silence + speech) {
        let level = if i >= silence && i < silence + speech { 0.5 } else { 0.0 };
        let c = AudioChunk::new(16_000, vec![level; 320]);
        out.push(Envelope::new(T, pts, Frame::Audio(c.clone())));
        pts += c.duration();
    }
    out.push(Envelope::new(T, pts, Frame::EndOfTurn));
    out
}

fn kinds(frames: &[Envelope]) -> Vec<FrameKind> {
    frames.iter().map(|e| e.frame.kind()).filter(|k| *k != FrameKind::Audio).collect()
}

fn settings() -> LlmSettings {
    LlmSettings { system_prompt: "Be brief.".into(), params: GenParams::default(), history_turns: 4, max_sentences: 0, model_tools: false }
}

const FINALS_ONLY: AsrSettings = AsrSettings { gated: true, partial_every: None };

fn transcripts(frames: &[Envelope]) -> Vec<(Duration, iris_frames::Transcript)> {
    frames.iter().filter_map(|e| if let Frame::Transcript(t) = &e.frame { Some((e.pts, t.clone())) } else { None }).collect()
}

/// 1 s of silence, 2 s of speech with a VAD's marks: started at 1.0 s, and stopped 500 ms after
/// it, before the chunk that completed the silence (a VAD stage sends its marks first).
fn marked_utterance() -> Vec<Envelope> {
    let mut frames = utterance(50, 100);
    frames.insert(50, Envelope::new(T, Duration::from_secs(1), Frame::SpeechStarted));
    frames.insert(175, Envelope::new(T, Duration::from_millis(3500), Frame::SpeechStopped));
    frames
}

#[test]
fn asr_gives_partials_every_half_second_of_speech_then_one_final() {
    let asr = FakeAsr::new("one two three four five six seven eight");
    let settings = AsrSettings { gated: true, partial_every: Some(Duration::from_millis(500)) };
    let mut stage = AsrStage::new(Arc::new(asr.clone()), AsrOptions::default(), settings);
    let out = transcripts(&run_stage(&mut stage, marked_utterance()).unwrap());
    let partials: Vec<_> = out.iter().filter(|(_, t)| !t.is_final).collect();
    // A partial at each 500 ms of speech, on the media clock: 1.5, 2.0, 2.5, 3.0 s.
    let at: Vec<f64> = partials.iter().map(|(pts, _)| pts.as_secs_f64()).collect();
    assert_eq!(at.len(), 4, "{at:?}");
    for (i, t) in at.iter().enumerate() {
        assert!((t - (1.5 + 0.5 * i as f64)).abs() < 0.021, "{at:?}");
    }
    // Each re-decodes the whole utterance so far (with pre-roll), so the text grows.
    assert_eq!(partials[0].1.text, "one");
    assert_eq!(partials[3].1.text, "one two three four");
    let finals: Vec<_> = out.iter().filter(|(_, t)| t.is_final).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].1.text, "one two three four five six seven eight");
    assert!(out.last().unwrap().1.is_final, "the final comes last");
}

#[test]
fn asr_skips_partials_while_input_is_waiting() {
    let asr = FakeAsr::new("one two three");
    let settings = AsrSettings { gated: true, partial_every: Some(Duration::from_millis(500)) };
    let mut stage = AsrStage::new(Arc::new(asr.clone()), AsrOptions::default(), settings);
    let out = transcripts(&run_stage_queued(&mut stage, marked_utterance()).unwrap());
    assert!(asr.partial_calls.lock().unwrap().is_empty(), "a stage that is behind must not decode partials");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.text, "one two three");
    assert_eq!(asr.calls.lock().unwrap().as_slice(), [100 * 320 + 4800 + 24 * 320]);
}

#[test]
fn an_image_answer_that_needs_no_rephrasing_is_spoken_as_it_is() {
    let llm = FakeLlm::new(&["Something", " invented."]);
    let prompts = llm.prompts.clone();
    let mut stage = LlmStage::new(Box::new(llm), Some(Box::new(FakeVlm { direct: true })), settings());
    let image = ImageFrame { width: 4, height: 3, rgb: Arc::from(vec![0u8; 36]) };
    // The photo arrives first; the spoken question after it is what the picture is read for.
    let frames = vec![
        env(Frame::Image(image)),
        env(Frame::Transcript(iris_frames::Transcript { text: "Read this".into(), is_final: true, language: None })),
        env(Frame::EndOfTurn),
    ];
    let out = run_stage(&mut stage, frames).unwrap();
    let text: String = out.iter().filter_map(|e| if let Frame::TextDelta(d) = &e.frame { Some(d.clone()) } else { None }).collect();
    assert_eq!(text, "You asked \"Read this\": it is 4x3 pixels.");
    assert!(prompts.lock().unwrap().is_empty(), "the language model must not rephrase it");
}

#[test]
fn a_question_about_what_is_in_front_takes_the_camera_frame_then() {
    use iris_backend::fakes::StillCamera;
    let llm = FakeLlm::new(&["Paris."]);
    let prompts = llm.prompts.clone();
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let frame = ImageFrame { width: 6, height: 2, rgb: Arc::from(vec![0u8; 36]) };
    let camera = StillCamera { frame, taken: taken.clone() };
    let mut stage = LlmStage::new(Box::new(llm), Some(Box::new(FakeVlm { direct: true })), settings()).with_camera(Box::new(camera));
    let ask = |text: &str| vec![env(Frame::UserText(text.into())), env(Frame::EndOfTurn)];
    let said = |out: &[Envelope]| -> String {
        out.iter().filter_map(|e| if let Frame::TextDelta(d) = &e.frame { Some(d.clone()) } else { None }).collect()
    };
    // Not about the picture: no frame is taken, the language model answers.
    let out = run_stage(&mut stage, ask("What is the capital of France?")).unwrap();
    assert_eq!(said(&out), "Paris.");
    assert_eq!(taken.load(std::sync::atomic::Ordering::Relaxed), 0);
    // About the picture: the frame is taken at the end of the turn and described.
    let out = run_stage(&mut stage, ask("What is in front of me?")).unwrap();
    assert_eq!(said(&out), "You asked \"What is in front of me?\": it is 6x2 pixels.");
    assert_eq!(taken.load(std::sync::atomic::Ordering::Relaxed), 1);
    // A picture the user sent wins over the camera.
    let sent = ImageFrame { width: 1, height: 1, rgb: Arc::from(vec![0u8; 3]) };
    let out =
        run_stage(&mut stage, vec![env(Frame::Image(sent)), env(Frame::UserText("Read this".into())), env(Frame::EndOfTurn)]).unwrap();
    assert_eq!(said(&out), "You asked \"Read this\": it is 1x1 pixels.");
    assert_eq!(taken.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(prompts.lock().unwrap().len(), 1, "only the first question reached the language model");
}

/// Barge-in: the user interrupts an answer after hearing its first sentence. The next prompt's
/// history holds only that sentence, so "what were you saying?" is answered honestly.
#[test]
fn an_interrupted_answer_is_remembered_as_far_as_it_was_heard() {
    let llm = FakeLlm::new(&["Paris is the capital.", " It has the Louvre.", " It is on the Seine."]);
    let prompts = llm.prompts.clone();
    let mut stage = LlmStage::new(Box::new(llm), None, settings());
    let turns = Turns::new();
    let first = turns.begin().id;
    let ask = |turn: TurnId, text: &str| {
        vec![Envelope::new(turn, Duration::ZERO, Frame::UserText(text.into())), Envelope::new(turn, Duration::ZERO, Frame::EndOfTurn)]
    };
    run_stage_with(&mut stage, ask(first, "Tell me about Paris."), &turns, None).unwrap();
    turns.interrupt(first, "Paris is the capital.".into());
    let second = turns.begin().id;
    run_stage_with(&mut stage, ask(second, "What were you saying?"), &turns, None).unwrap();
    let prompt = prompts.lock().unwrap()[1].clone();
    let said: Vec<&str> = prompt.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(said[1..], ["Tell me about Paris.", "Paris is the capital.", "What were you saying?"]);
    // Cut off while still writing: what was written so far is kept, and cut to what was heard.
    let third = turns.begin().id;
    let mut cut_at_second_delta = |env: &Envelope| matches!(&env.frame, Frame::TextDelta(d) if d.contains("Louvre")).then_some(env.turn);
    run_stage_with(&mut stage, ask(third, "And London?"), &turns, Some(&mut cut_at_second_delta)).unwrap();
    turns.interrupt(third, String::new());
    run_stage_with(&mut stage, ask(turns.begin().id, "Go on."), &turns, None).unwrap();
    let prompt = prompts.lock().unwrap()[3].clone();
    let said: Vec<&str> = prompt.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(said[said.len() - 3..], ["And London?", "", "Go on."]);
}

#[test]
fn vad_marks_speech_on_the_media_clock() {
    let mut vad = VadStage::new(Box::new(FakeVad { frame_len: 512, threshold: 0.1 }), VadSettings::default());
    let out = run_stage(&mut vad, utterance(50, 50)).unwrap();
    assert_eq!(kinds(&out), [FrameKind::SpeechStarted, FrameKind::SpeechStopped, FrameKind::EndOfTurn]);
    let started = out.iter().find(|e| e.frame == Frame::SpeechStarted).unwrap().pts;
    let stopped = out.iter().find(|e| e.frame == Frame::SpeechStopped).unwrap().pts;
    // Speech starts at 1.0 s (within one 32 ms VAD frame) and the endpoint comes 500 ms after it ends.
    assert!((started.as_secs_f64() - 1.0).abs() < 0.04, "{started:?}");
    assert!((stopped.as_secs_f64() - 2.5).abs() < 0.07, "{stopped:?}");
    // Audio passes through untouched.
    assert_eq!(out.iter().filter(|e| e.frame.kind() == FrameKind::Audio).count(), 150);
}

#[test]
fn asr_behind_a_vad_ignores_silence() {
    let asr = FakeAsr::new("should never be heard");
    let mut stage = AsrStage::new(Arc::new(asr.clone()), AsrOptions::default(), FINALS_ONLY);
    let out = run_stage(&mut stage, utterance(100, 0)).unwrap();
    let transcripts: Vec<_> = out.iter().filter_map(|e| if let Frame::Transcript(t) = &e.frame { Some(t.clone()) } else { None }).collect();
    assert_eq!(transcripts.len(), 1);
    assert_eq!(transcripts[0].text, "");
    assert!(asr.calls.lock().unwrap().is_empty(), "silence must not reach the recogniser");
}

#[test]
fn asr_transcribes_each_utterance_with_pre_roll() {
    let asr = FakeAsr::new("hello");
    let mut stage = AsrStage::new(Arc::new(asr.clone()), AsrOptions::default(), FINALS_ONLY);
    let mut frames = utterance(50, 50);
    // What a VAD would add: started at 1.0 s, stopped after.
    frames.insert(50, env(Frame::SpeechStarted));
    frames.insert(101, env(Frame::SpeechStopped));
    let out = run_stage(&mut stage, frames).unwrap();
    assert_eq!(kinds(&out), [FrameKind::SpeechStarted, FrameKind::SpeechStopped, FrameKind::Transcript, FrameKind::EndOfTurn]);
    // 50 chunks of speech plus 300 ms of pre-roll.
    assert_eq!(asr.calls.lock().unwrap().as_slice(), [50 * 320 + 4800]);
}

#[test]
fn llm_answers_the_turn_and_remembers_it() {
    let llm = FakeLlm::new(&["Paris", " it", " is."]);
    let prompts = llm.prompts.clone();
    let mut stage = LlmStage::new(Box::new(llm), Some(Box::new(FakeVlm::default())), settings());
    let image = ImageFrame { width: 4, height: 3, rgb: Arc::from(vec![0u8; 36]) };
    let input = vec![
        env(Frame::Transcript(iris_frames::Transcript { text: "What is this?".into(), is_final: true, language: None })),
        env(Frame::Image(image)),
        env(Frame::EndOfTurn),
    ];
    let out = run_stage(&mut stage, input.clone()).unwrap();
    let text: String = out.iter().filter_map(|e| if let Frame::TextDelta(t) = &e.frame { Some(t.as_str()) } else { None }).collect();
    assert_eq!(text, "Paris it is.");
    assert_eq!(kinds(&out).first(), Some(&FrameKind::Transcript), "the transcript is forwarded for displays");
    let user = prompts.lock().unwrap()[0][1].content.clone();
    assert!(user.contains("What is this?") && user.contains("an image of 4x3 pixels"), "{user}");
    // A second turn sees the first in its history.
    run_stage(&mut stage, input).unwrap();
    assert_eq!(prompts.lock().unwrap()[1].len(), 4, "system, user, assistant, user");
}

/// While the question is spoken, each partial transcript is handed to the model to pre-fill, in
/// the conversation it will be answered in; the answer's own prompt is the final transcript's.
#[test]
fn llm_works_ahead_on_partial_transcripts() {
    let heard = |text: &str, is_final| env(Frame::Transcript(iris_frames::Transcript { text: text.into(), is_final, language: None }));
    let llm = FakeLlm::new(&["Paris."]);
    let (prompts, prefilled) = (llm.prompts.clone(), llm.prefilled.clone());
    let mut stage = LlmStage::new(Box::new(llm), None, settings());
    let question = [heard("What is", false), heard("What is the capital", false), heard("What is the capital of France?", true)];
    let mut input: Vec<_> = question.to_vec();
    input.push(env(Frame::EndOfTurn));
    let out = run_stage(&mut stage, input.clone()).unwrap();
    assert_eq!(kinds(&out)[..3], [FrameKind::Transcript; 3], "partials pass on for displays");
    let users: Vec<_> = prefilled.lock().unwrap().iter().map(|m| (m.len(), m.last().unwrap().content.clone())).collect();
    assert_eq!(users, [(2, "What is".to_owned()), (2, "What is the capital".to_owned())]);
    assert_eq!(prompts.lock().unwrap()[0][1].content, "What is the capital of France?");
    // The next turn's partials come with the conversation so far.
    prefilled.lock().unwrap().clear();
    run_stage(&mut stage, input.clone()).unwrap();
    assert_eq!(prefilled.lock().unwrap()[0].len(), 4, "system, user, assistant, user");
    // Input already waiting (a later partial, the end of the turn) is worked on instead.
    prefilled.lock().unwrap().clear();
    run_stage_queued(&mut stage, input).unwrap();
    assert!(prefilled.lock().unwrap().is_empty());
}

#[test]
fn answers_stop_after_the_configured_sentences() {
    let llm = FakeLlm::new(&["One", " two.", " Three", " four!", " Five", " six.", " Seven."]);
    let mut stage = LlmStage::new(Box::new(llm), None, LlmSettings { max_sentences: 2, ..settings() });
    let out = run_stage(&mut stage, vec![env(Frame::UserText("count".into())), env(Frame::EndOfTurn)]).unwrap();
    let text: String = out.iter().filter_map(|e| if let Frame::TextDelta(t) = &e.frame { Some(t.as_str()) } else { None }).collect();
    // The second sentence is known to be complete once the next word begins.
    assert_eq!(text, "One two. Three four! ");
}

#[test]
fn empty_turn_gets_no_answer() {
    let mut stage = LlmStage::new(Box::new(FakeLlm::new(&["x"])), None, settings());
    let out = run_stage(&mut stage, vec![env(Frame::UserText("  ".into())), env(Frame::EndOfTurn)]).unwrap();
    assert_eq!(kinds(&out), [FrameKind::EndOfTurn]);
}

#[test]
fn sentences_then_speech() {
    let mut split = SentenceStage::new();
    let deltas = ["Hello the", "re. How are", " you? Fi", "ne"].map(|d| env(Frame::TextDelta(d.into())));
    let mut input: Vec<_> = deltas.into();
    input.push(env(Frame::EndOfTurn));
    let out = run_stage(&mut split, input).unwrap();
    let sentences: Vec<_> = out.iter().filter_map(|e| if let Frame::Sentence(s) = &e.frame { Some(s.clone()) } else { None }).collect();
    assert_eq!(sentences, ["Hello there.", "How are you?", "Fine"]);

    let tts = FakeTts::default();
    let mut speak = TtsStage::new(Box::new(tts.clone()));
    let out = run_stage(&mut speak, out).unwrap();
    assert_eq!(tts.spoken.lock().unwrap().as_slice(), ["Hello there.", "How are you?", "Fine"]);
    let samples: usize = out.iter().filter_map(|e| if let Frame::Audio(a) = &e.frame { Some(a.samples.len()) } else { None }).sum();
    assert_eq!(samples, "Hello there.How are you?Fine".len());
}

#[test]
fn the_voice_follows_the_language_heard() {
    let tts = FakeTts::default();
    let mut speak = TtsStage::new(Box::new(tts.clone()));
    let heard =
        |lang: &str| env(Frame::Transcript(iris_frames::Transcript { text: "x".into(), is_final: true, language: Some(lang.into()) }));
    let out = run_stage(&mut speak, vec![heard("de"), env(Frame::Sentence("Hallo.".into())), heard("de"), heard("fr")]).unwrap();
    assert_eq!(tts.languages.lock().unwrap().as_slice(), ["de", "fr"], "switched once per change");
    assert_eq!(kinds(&out).iter().filter(|k| **k == FrameKind::Transcript).count(), 3, "transcripts pass on");
}

#[test]
fn harness_cancellation_drops_the_rest_of_the_turn() {
    let turns = Turns::new();
    let turn = turns.begin();
    let mut stage = LlmStage::new(Box::new(FakeLlm::new(&["a", "b", "c", "d", "e"])), None, settings());
    let input = vec![
        Envelope::new(turn.id, Duration::ZERO, Frame::UserText("go".into())),
        Envelope::new(turn.id, Duration::ZERO, Frame::EndOfTurn),
    ];
    let mut deltas = 0;
    let mut cancel = |e: &Envelope| {
        deltas += usize::from(matches!(e.frame, Frame::TextDelta(_)));
        (deltas == 2).then_some(e.turn)
    };
    let out = run_stage_with(&mut stage, input, &turns, Some(&mut cancel)).unwrap();
    assert_eq!(kinds(&out), [FrameKind::TextDelta, FrameKind::TextDelta], "nothing after the cancel, not even end of turn");
    assert!(turn.token.is_cancelled());
}

fn fake_pipeline(turns: &Arc<Turns>, llm: FakeLlm, tts: FakeTts) -> Pipeline {
    let spec = PipelineSpec::parse(include_str!("../../../pipelines/ask.toml"), BUILTIN).unwrap();
    let stages: Vec<Box<dyn Stage>> = vec![
        Box::new(VadStage::new(Box::new(FakeVad { frame_len: 512, threshold: 0.1 }), VadSettings::default())),
        Box::new(AsrStage::new(Arc::new(FakeAsr::new("tell me a story")), AsrOptions::default(), FINALS_ONLY)),
        Box::new(LlmStage::new(Box::new(llm), None, settings())),
        Box::new(SentenceStage::new()),
        Box::new(TtsStage::new(Box::new(tts))),
    ];
    Pipeline::start(&spec, stages, turns.clone())
}

fn feed(p: &Pipeline, turn: TurnId, frames: Vec<Envelope>) {
    for mut e in frames {
        e.turn = turn;
        p.send(e).unwrap();
    }
}

#[test]
fn pipeline_cancel_mid_stream_drops_the_turn_everywhere() {
    let turns = Turns::new();
    let first = turns.begin();
    let tts = FakeTts::default();
    let spoken = tts.spoken.clone();
    // The LLM cancels its own turn after its 4th token, as barge-in would, while sentences
    // are already queued downstream.
    let cancel_at = Arc::new(Mutex::new(Some((turns.clone(), first.id))));
    let mut llm = FakeLlm::new(&["One.", " Two.", " Three.", " Four.", " Five.", " Six."]);
    let hook = cancel_at.clone();
    llm.before_token = Box::new(move |i| {
        if i == 4 {
            if let Some((turns, id)) = hook.lock().unwrap().take() {
                turns.cancel(id);
            }
        }
    });
    let p = fake_pipeline(&turns, llm, tts);
    feed(&p, first.id, utterance(10, 40));

    // The second turn runs normally after the first was cancelled.
    std::thread::sleep(Duration::from_millis(200));
    let second = turns.begin();
    feed(&p, second.id, utterance(10, 40));
    let mut events = Vec::new();
    loop {
        match p.recv_timeout(Duration::from_secs(10)).expect("the second turn must finish") {
            PipelineEvent::Frame(e) => {
                let done = e.frame == Frame::EndOfTurn && e.turn == second.id;
                events.push(e);
                if done {
                    break;
                }
            }
            PipelineEvent::Error { message, .. } => panic!("{message}"),
        }
    }
    assert!(first.token.is_cancelled());
    assert!(events.iter().all(|e| e.turn == second.id), "no frame of the cancelled turn reached the exit");
    for edge in p.edges() {
        assert_eq!(edge.count_of(first.id), 0, "no frame of the cancelled turn is left queued");
    }
    let spoken = spoken.lock().unwrap().clone();
    assert!(spoken.len() <= 4 + 6, "{spoken:?}");
    assert!(!spoken[..spoken.len() - 6].iter().any(|s| s == "Five." || s == "Six."), "the first turn stopped at its 4th token: {spoken:?}");
    let audio = events.iter().filter(|e| e.frame.kind() == FrameKind::Audio).count();
    assert!(audio > 0, "the second turn was spoken");
    p.shutdown();
}

#[test]
fn the_shipped_pipelines_load() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines")).unwrap() {
        let path = entry.unwrap().path();
        // `pipelines/profiles/` holds settings, checked by iris-config's tests.
        if path.is_dir() {
            continue;
        }
        PipelineSpec::load(&path, BUILTIN).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn speech_starts_before_the_answer_is_written() {
    // The LLM writes slowly; the first sentence must be spoken while it is still writing.
    let turns = Turns::new();
    let turn = turns.begin();
    let written = Arc::new(Mutex::new(0usize));
    let tokens = ["The", " first", " sentence", " is", " short.", " Then", " a", " much", " longer", " second", " one", " follows", "."];
    let mut llm = FakeLlm::new(&tokens);
    let w = written.clone();
    llm.before_token = Box::new(move |i| {
        std::thread::sleep(Duration::from_millis(30));
        *w.lock().unwrap() = i;
    });
    let p = fake_pipeline(&turns, llm, FakeTts::default());
    feed(&p, turn.id, utterance(10, 40));
    let mut tokens_written_at_first_audio = None;
    loop {
        match p.recv_timeout(Duration::from_secs(10)).expect("the turn finishes") {
            PipelineEvent::Frame(e) if e.frame.kind() == FrameKind::Audio => {
                tokens_written_at_first_audio.get_or_insert(*written.lock().unwrap());
            }
            PipelineEvent::Frame(e) if e.frame == Frame::EndOfTurn => break,
            PipelineEvent::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    let at = tokens_written_at_first_audio.expect("audio came out");
    assert!(at < tokens.len() - 1, "first audio only after token {at} of {}", tokens.len());
    p.shutdown();
}
