//! The live loop end to end on the default pack (its language model SmolLM2, the suite's
//! `IRIS_DEFAULT_LLM`): in the simulated room (spoken sessions in
//! voices that are not Iris's, over light noise), and on real ALSA devices through a user-space
//! PulseAudio server. The tests take turns (a lock), so nothing else in this binary competes for
//! the cores while the media clock runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const IRIS: &str = env!("CARGO_BIN_EXE_iris");

/// The tests of this file take turns: each runs the loop on the media clock with real models,
/// and two at once on two cores starve each other (a device test then loses audio).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sessions() -> (PathBuf, Vec<Value>) {
    let dir = std::env::var_os("IRIS_LOOP_SESSIONS").map(PathBuf::from).expect("IRIS_LOOP_SESSIONS (deploy/test.sh makes them)");
    let text = std::fs::read_to_string(dir.join("sessions.jsonl")).expect("sessions.jsonl");
    (dir, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn first<'a>(events: &'a [Value], name: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event"] == name)
}

/// The sentences of the first turn that had any, joined as they were spoken: an interrupted
/// answer is remembered as a prefix of this, cut wherever the interruption fell.
fn first_answer_text(events: &[Value]) -> String {
    let turn = first(events, "sentence").map(|e| e["turn"].clone()).unwrap_or_default();
    let sentences: Vec<&str> =
        events.iter().filter(|e| e["event"] == "sentence" && e["turn"] == turn).filter_map(|e| e["text"].as_str()).collect();
    sentences.join(" ")
}

/// Lower-case words, numbers as digits (Whisper writes "12" for "twelve").
fn normalise(s: &str) -> Vec<String> {
    let s: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    s.split_whitespace().map(|w| iris_tools::intent::number_word(w).map_or(w.to_owned(), |n| n.to_string())).collect()
}

fn room(mic: &Path, dir: &Path, extra: &[&str]) -> (Vec<Value>, Vec<f32>, String) {
    let out = dir.join("out.wav");
    let ev = dir.join("events.jsonl");
    let o = Command::new(IRIS)
        .args(["listen", "--mic-file"])
        .arg(mic)
        .arg("--speaker-file")
        .arg(&out)
        .arg("--events")
        .arg(&ev)
        .args(extra)
        .output()
        .expect("run iris");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "iris listen failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (events(&ev), iris_audio::read_wav(&out).unwrap().samples, stderr)
}

/// Each session: the wake word is heard, the question transcribed, the answer right and played,
/// and the response time is in the events. Then a question without the wake word: no answer.
#[test]
fn the_room_hears_the_wake_word_and_answers_out_loud() {
    let _turn = one_at_a_time();
    let (dir, list) = sessions();
    let tmp = tempfile::tempdir().unwrap();
    for s in &list {
        let mic = dir.join(s["file"].as_str().unwrap());
        let (ev, played, log) = room(&mic, tmp.path(), &[]);
        let ctx = format!("{}: {log}", s["file"]);
        assert!(first(&ev, "wake").is_some(), "no wake word heard in {ctx}");
        let heard = first(&ev, "transcript").unwrap_or_else(|| panic!("no transcript in {ctx}"))["text"].as_str().unwrap().to_owned();
        let want = normalise(s["question"].as_str().unwrap());
        let got = normalise(&heard);
        let missing = want.iter().filter(|w| !got.contains(w)).count();
        assert!(missing <= 1, "heard {heard:?} for {:?} in {ctx}", s["question"]);
        let answer = first(&ev, "answer").unwrap_or_else(|| panic!("no answer in {ctx}"))["text"].as_str().unwrap().to_lowercase();
        let right = s["answer_has_any"].as_array().unwrap().iter().any(|w| answer.contains(w.as_str().unwrap()));
        assert!(right, "answer {answer:?} to {:?} in {ctx}", s["question"]);
        let start = first(&ev, "audio_start").unwrap_or_else(|| panic!("nothing played in {ctx}"))["t"].as_f64().unwrap();
        let speech_end =
            ev.iter().filter(|e| e["event"] == "speech_end" && e["t"].as_f64().unwrap() < start).last().unwrap()["t"].as_f64().unwrap();
        assert!(start > speech_end, "{ctx}");
        // The speaker file holds the answer where audio_start says it began.
        // (A voice starts with a breath of near silence: the first loud sample comes a little after.)
        let first_sound = played.iter().position(|s| s.abs() > 0.01).expect("the answer is in the speaker file") as f64 / 16_000.0;
        assert!(first_sound >= start - 0.021 && first_sound - start < 0.6, "sound at {first_sound}, audio_start {start}: {ctx}");
    }
    // Wake-word mode: a question without the wake word is not answered.
    let (ev, played, log) = room(&root().join("tests/data/question.wav"), tmp.path(), &[]);
    assert!(first(&ev, "wake").is_none() && first(&ev, "answer").is_none(), "{log}");
    assert!(played.iter().all(|s| *s == 0.0));
    // Always mode: it is.
    let (ev, _, log) = room(&root().join("tests/data/question.wav"), tmp.path(), &["--mode", "always"]);
    let answer = first(&ev, "answer").unwrap_or_else(|| panic!("always mode: {log}"))["text"].as_str().unwrap().to_lowercase();
    assert!(answer.contains("paris"), "{answer}");
}

/// A question about what is in front of the user takes the camera's frame (here a photo shown
/// to it) and is answered from it; a question about something else, with the same camera, is
/// answered by the language model as usual.
#[test]
fn questions_about_what_is_in_front_look_through_the_camera() {
    let _turn = one_at_a_time();
    let (dir, list) = sessions();
    let images = std::env::var_os("IRIS_IMAGES_DIR").map(PathBuf::from).expect("IRIS_IMAGES_DIR (deploy/test.sh fetches them)");
    let text = std::fs::read_to_string(dir.join("look.jsonl")).expect("look.jsonl (deploy/loop-sessions.sh)");
    let tmp = tempfile::tempdir().unwrap();
    for line in text.lines() {
        let s: Value = serde_json::from_str(line).unwrap();
        let photo = images.join(s["image"].as_str().unwrap());
        let camera = ["--camera-file", photo.to_str().unwrap()];
        let (ev, played, log) = room(&dir.join(s["file"].as_str().unwrap()), tmp.path(), &camera);
        let ctx = format!("{}: {log}", s["file"]);
        let answer = first(&ev, "answer").unwrap_or_else(|| panic!("no answer in {ctx}"))["text"].as_str().unwrap().to_lowercase();
        let right = s["answer_has_any"].as_array().unwrap().iter().any(|w| answer.contains(w.as_str().unwrap()));
        assert!(right, "answer {answer:?} to {:?} in {ctx}", s["question"]);
        assert!(played.iter().any(|x| x.abs() > 0.01), "nothing played in {ctx}");
    }
    let coffee = images.join("coffee.png");
    let (ev, _, log) = room(&dir.join(list[0]["file"].as_str().unwrap()), tmp.path(), &["--camera-file", coffee.to_str().unwrap()]);
    let answer = first(&ev, "answer").unwrap_or_else(|| panic!("no answer: {log}"))["text"].as_str().unwrap().to_lowercase();
    assert!(answer.contains("paris") && !answer.contains("espresso") && !answer.contains("picture"), "{answer}");
}

/// The TFLite set's words (okay_nabu, hey_rhasspy) wake the loop: beside the ONNX features (the
/// default runtime), and with every wake network on TensorFlow Lite. Each session is woken by its
/// own word, named in the event, and answered.
#[test]
fn other_wake_words_wake_the_loop_on_either_runtime() {
    let _turn = one_at_a_time();
    let (dir, _) = sessions();
    let text = std::fs::read_to_string(dir.join("words.jsonl")).expect("words.jsonl (deploy/loop-sessions.sh)");
    let tmp = tempfile::tempdir().unwrap();
    for (i, line) in text.lines().enumerate() {
        let s: Value = serde_json::from_str(line).unwrap();
        // Alternate the runtimes so each word is heard on both.
        let runtime = if i % 4 < 2 { "onnx" } else { "tflite" };
        let config = tmp.path().join("config.toml");
        std::fs::write(&config, format!("[audio]\nwake_words = [\"okay_nabu\", \"hey_rhasspy\"]\nwake_runtime = \"{runtime}\"\n")).unwrap();
        let (ev, played, log) = room(&dir.join(s["file"].as_str().unwrap()), tmp.path(), &["--config", config.to_str().unwrap()]);
        let ctx = format!("{} on {runtime}: {log}", s["file"]);
        let wake = first(&ev, "wake").unwrap_or_else(|| panic!("no wake word heard in {ctx}"));
        assert_eq!(wake["word"], s["wake_word"], "{ctx}");
        let answer = first(&ev, "answer").unwrap_or_else(|| panic!("no answer in {ctx}"))["text"].as_str().unwrap().to_lowercase();
        let right = s["answer_has_any"].as_array().unwrap().iter().any(|w| answer.contains(w.as_str().unwrap()));
        assert!(right, "answer {answer:?} to {:?} in {ctx}", s["question"]);
        assert!(played.iter().any(|x| x.abs() > 0.01), "nothing played in {ctx}");
    }
}

/// microWakeWord, the small boards' engine: "Okay Nabu" wakes the loop at its model's own
/// cutoff, and the question after it is answered out loud; "Hey Rhasspy" (not one of its words)
/// wakes nothing.
#[test]
fn microwakeword_wakes_the_loop_at_its_own_cutoff() {
    let _turn = one_at_a_time();
    let (dir, _) = sessions();
    let text = std::fs::read_to_string(dir.join("words.jsonl")).expect("words.jsonl (deploy/loop-sessions.sh)");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "[audio]\nwake_engine = \"microwakeword\"\nwake_words = [\"okay_nabu\"]\n").unwrap();
    for line in text.lines().take(2) {
        let s: Value = serde_json::from_str(line).unwrap();
        let (ev, played, log) = room(&dir.join(s["file"].as_str().unwrap()), tmp.path(), &["--config", config.to_str().unwrap()]);
        let ctx = format!("{}: {log}", s["file"]);
        if s["wake_word"] != "okay_nabu" {
            assert!(first(&ev, "wake").is_none() && first(&ev, "answer").is_none(), "woke on {} in {ctx}", s["wake_word"]);
            continue;
        }
        let wake = first(&ev, "wake").unwrap_or_else(|| panic!("no wake word heard in {ctx}"));
        assert!(wake["word"] == "okay_nabu" && wake["score"].as_f64().unwrap() >= 0.85, "{ctx}");
        let answer = first(&ev, "answer").unwrap_or_else(|| panic!("no answer in {ctx}"))["text"].as_str().unwrap().to_lowercase();
        let right = s["answer_has_any"].as_array().unwrap().iter().any(|w| answer.contains(w.as_str().unwrap()));
        assert!(right, "answer {answer:?} to {:?} in {ctx}", s["question"]);
        assert!(played.iter().any(|x| x.abs() > 0.01), "nothing played in {ctx}");
    }
}

/// A spoken session with the times of its parts (deploy/loop-sessions.sh): `NAME.json`, or
/// the first line of `NAME.jsonl`.
fn timed_session(name: &str) -> (PathBuf, Value) {
    let (dir, _) = sessions();
    let text = std::fs::read_to_string(dir.join(format!("{name}.json")))
        .or_else(|_| std::fs::read_to_string(dir.join(format!("{name}.jsonl"))))
        .expect("deploy/loop-sessions.sh");
    let times: Value = serde_json::from_str(text.lines().next().unwrap_or_default()).unwrap();
    (dir.join(times["file"].as_str().unwrap()), times)
}

/// The last sample louder than the noise floor of a speaker file, in seconds.
fn last_sound(played: &[f32]) -> f64 {
    played.iter().rposition(|x| x.abs() > 0.01).map_or(0.0, |i| i as f64 / 16_000.0)
}

/// "Hey Jarvis, set a timer for ten seconds": ten seconds later the chime and the reminder play
/// (the reminder, transcribed, says what the timer was for); "Stop." said alone while it rings
/// silences it, and never becomes a turn.
#[test]
fn a_timer_rings_through_the_speaker_and_stop_silences_it() {
    let _turn = one_at_a_time();
    let (wav, times) = timed_session("timer");
    let tmp = tempfile::tempdir().unwrap();
    let (ev, played, log) = room(&wav, tmp.path(), &[]);
    let end_of_turn = first(&ev, "end_of_turn").unwrap_or_else(|| panic!("no turn: {log}"))["t"].as_f64().unwrap();
    let rang = first(&ev, "timer").unwrap_or_else(|| panic!("no timer rang: {log}"))["t"].as_f64().unwrap();
    assert!((rang - end_of_turn - 10.0).abs() <= 0.5, "set at {end_of_turn}, rang at {rang}: {log}");
    let sound = played.iter().enumerate().skip((rang * 16_000.0) as usize - 320).find(|(_, x)| x.abs() > 0.01).unwrap().0 as f64 / 16_000.0;
    assert!(sound - rang < 0.1, "the chime starts at {sound}, the timer rang at {rang}");
    // The first round, transcribed: the reminder says what the timer was for.
    let round = tmp.path().join("round.wav");
    let from = (rang * 16_000.0) as usize;
    iris_audio::write_wav_atomic(&round, &played[from..(from + 5 * 16_000).min(played.len())], 16_000).unwrap();
    let o = Command::new(IRIS).arg("transcribe").arg(&round).output().unwrap();
    let heard = String::from_utf8_lossy(&o.stdout).to_lowercase();
    // Whisper tiny sometimes hears the voice's "timer" as "time".
    assert!(
        heard.contains("time") && heard.contains("done") && normalise(&heard).contains(&"10".to_owned()),
        "the reminder said {heard:?}"
    );
    // "Stop." alone: heard as a stop request, the ringing ends at once, no turn, no answer.
    let stop = first(&ev, "stop").unwrap_or_else(|| panic!("\"Stop.\" was not taken as a stop request: {log}"));
    let stopped = stop["t"].as_f64().unwrap();
    let said = times["stop_end"].as_f64().unwrap();
    assert!(stopped >= times["stop_start"].as_f64().unwrap() && stopped - said < 1.0, "stop said by {said}, acted on at {stopped}");
    assert!(first(&ev, "timer_stop").is_some_and(|e| e["t"] == stop["t"]), "{log}");
    assert!(last_sound(&played) <= stopped + 0.02, "sound until {} after the stop at {stopped}", last_sound(&played));
    assert_eq!(ev.iter().filter(|e| e["event"] == "answer").count(), 1, "\"stop\" became a turn: {log}");
}

/// "Stop." said alone over a long answer: the answer stops at once, the history keeps only what
/// was played, and "stop" is not a question for the language model.
#[test]
fn stop_said_over_an_answer_ends_it_and_is_not_a_question() {
    let _turn = one_at_a_time();
    let (wav, times) = timed_session("story");
    let tmp = tempfile::tempdir().unwrap();
    let (ev, played, log) = room(&wav, tmp.path(), &[]);
    let stop = first(&ev, "stop").unwrap_or_else(|| panic!("no stop: {log}"));
    let stopped = stop["t"].as_f64().unwrap();
    let said = times["stop_end"].as_f64().unwrap();
    assert!(stopped - said < 1.0 && stopped > times["stop_start"].as_f64().unwrap(), "stop said by {said}, acted on at {stopped}: {log}");
    assert!(first(&ev, "barge_in").is_some_and(|e| e["t"] == stop["t"]), "{log}");
    assert!(last_sound(&played) <= stopped + 0.02, "sound until {} after the stop at {stopped}", last_sound(&played));
    let answer = first(&ev, "answer").unwrap()["text"].as_str().unwrap().to_owned();
    let spoken = first_answer_text(&ev);
    assert!(!answer.is_empty() && spoken.starts_with(answer.trim_end_matches('.')), "{answer:?} is not what was played of {spoken:?}");
    let transcripts: Vec<&Value> = ev.iter().filter(|e| e["event"] == "transcript").collect();
    assert_eq!(transcripts.len(), 1, "\"stop\" became a turn: {log}");
}

/// "Hey Jarvis" said over a long answer, then "Stop.": the speaker is silent from the moment the
/// wake word is heard, the answer is remembered as far as it was played, and "stop" gets no
/// answer from the language model.
#[test]
fn the_wake_word_over_an_answer_stops_it_at_once() {
    let _turn = one_at_a_time();
    let (wav, times) = timed_session("barge");
    let tmp = tempfile::tempdir().unwrap();
    let (ev, played, log) = room(&wav, tmp.path(), &[]);
    let barge = first(&ev, "barge_in").unwrap_or_else(|| panic!("no barge-in: {log}"))["t"].as_f64().unwrap();
    let (start, end) = (times["wake_start"].as_f64().unwrap(), times["wake_end"].as_f64().unwrap());
    // The score settles above the threshold a hop or two after the word ends; the answer
    // paused when it first stirred, so the speaker is silent within 0.1 s of the word's end.
    assert!(barge > start && barge <= end + 0.3, "the wake word sounds {start}–{end}, the barge-in came at {barge}: {log}");
    assert!(last_sound(&played) <= end + 0.1, "sound until {}, the wake word ended at {end}", last_sound(&played));
    let answers: Vec<&str> = ev.iter().filter(|e| e["event"] == "answer").map(|e| e["text"].as_str().unwrap()).collect();
    let spoken = first_answer_text(&ev);
    assert!(!answers[0].is_empty() && spoken.starts_with(answers[0]), "{:?} is not what was played of {spoken:?}", answers[0]);
    let heard: Vec<&str> = ev.iter().filter(|e| e["event"] == "transcript").map(|e| e["text"].as_str().unwrap()).collect();
    assert!(heard.last().is_some_and(|t| t.to_lowercase().contains("stop")), "{heard:?}");
    assert_eq!(answers.last(), Some(&""), "\"stop\" is answered with silence: {answers:?}");
    assert!(ev
        .iter()
        .filter(|e| e["event"] == "sentence")
        .all(|e| e["turn"] == ev.iter().find(|e| e["event"] == "sentence").unwrap()["turn"]));
}

/// 44.1 kHz stereo input with the answer's echo mixed back in: still one clear turn.
#[test]
fn stereo_input_at_another_rate_with_echo() {
    let _turn = one_at_a_time();
    let (dir, _) = sessions();
    let tmp = tempfile::tempdir().unwrap();
    let stereo = tmp.path().join("stereo.wav");
    let status = Command::new("sox").arg(dir.join("01.wav")).args(["-r", "44100", "-c", "2"]).arg(&stereo).status().expect("sox");
    assert!(status.success());
    let (ev, _, log) = room(&stereo, tmp.path(), &["--echo", "-12,40"]);
    let answers: Vec<_> = ev.iter().filter(|e| e["event"] == "answer").collect();
    assert_eq!(answers.len(), 1, "{log}");
    assert!(answers[0]["text"].as_str().unwrap().to_lowercase().contains("paris"), "{log}");
}

/// Bad input: a missing microphone file, and a bad echo setting, each one clear line.
#[test]
fn bad_room_input_is_one_clear_line() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--mic-file", "/nonexistent.wav", "--speaker-file", "/tmp/x.wav"], "no such file"),
        (vec!["--mic-file", "tests/data/question.wav", "--speaker-file", "/tmp/x.wav", "--echo", "loud"], "--echo"),
        (vec!["--mode", "sometimes", "--mic-file", "tests/data/question.wav", "--speaker-file", "/tmp/x.wav"], "mode"),
    ] {
        let o =
            Command::new(IRIS).current_dir(root()).arg("listen").args(&args).current_dir(tmp.path()).current_dir(root()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {err}");
        assert!(err.lines().count() == 1 && err.contains(needle), "{args:?}: {err}");
    }
}

fn wait_for(events: &Path, name: &str, count: usize, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        let n = std::fs::read_to_string(events)
            .map(|t| t.lines().filter(|l| l.contains(&format!("\"event\":\"{name}\""))).count())
            .unwrap_or(0);
        if n >= count {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A user-space PulseAudio room (deploy/pulse-room.sh) in `dir`: a "room" sink whose monitor
/// is the microphone, and a "spk" sink whose monitor records what Iris plays.
struct PulseRoom {
    dir: PathBuf,
    server: String,
}

impl PulseRoom {
    fn script() -> PathBuf {
        root().join("deploy/pulse-room.sh")
    }

    fn start(dir: &Path) -> Self {
        let started = Command::new(Self::script()).arg("start").arg(dir).output().expect("deploy/pulse-room.sh (needs pulseaudio)");
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        Self { dir: dir.to_owned(), server: String::from_utf8_lossy(&started.stdout).trim().to_owned() }
    }

    fn stop(&self) {
        let _ = Command::new(Self::script()).arg("stop").arg(&self.dir).status();
    }

    /// Plays a spoken session into the room, to its end.
    fn play(&self, wav: &Path) {
        let ok = Command::new("paplay").args(["-d", "room"]).arg(wav).env("PULSE_SERVER", &self.server).status().unwrap();
        assert!(ok.success());
    }

    /// The speaker heard in the room `ms` later, as loud as it was played (PulseAudio's loopback).
    fn echo(&self, ms: u32) {
        let ok = Command::new(Self::script()).arg("echo").arg(&self.dir).arg(ms.to_string()).status().unwrap();
        assert!(ok.success(), "module-loopback did not load");
    }

    /// Records the speaker's monitor into `wav` until [`stop_recording`] is called.
    fn record(&self, wav: &Path) -> std::process::Child {
        Command::new("parecord")
            .args(["-d", "spk.monitor", "--rate=16000", "--channels=1", "--format=s16le", "--file-format=wav"])
            .arg(wav)
            .env("PULSE_SERVER", &self.server)
            .spawn()
            .unwrap()
    }
}

impl Drop for PulseRoom {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGINT, so parecord finishes the WAV header.
fn stop_recording(mut recorder: std::process::Child) {
    let _ = Command::new("kill").arg("-INT").arg(recorder.id().to_string()).status();
    let _ = recorder.wait();
}

/// `iris listen` on the room's devices for `seconds`, its stderr collected; returns once the loop
/// says it listens and the microphone has had a moment to open.
struct Listening {
    child: std::process::Child,
    said: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Listening {
    fn start(room: &PulseRoom, events: &Path, seconds: u32) -> Self {
        Self::start_with(room, events, seconds, &[])
    }

    fn start_with(room: &PulseRoom, events: &Path, seconds: u32, extra: &[&str]) -> Self {
        let mut child = Command::new(IRIS)
            .args(["listen", "--seconds", &seconds.to_string(), "--events"])
            .arg(events)
            .args(extra)
            .env("PULSE_SERVER", &room.server)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collect = said.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut all = collect.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        for _ in 0..600 {
            if said.lock().unwrap().contains("listening") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Self { child, said, reader }
    }

    /// Waits for the loop to end; whether it succeeded, and its log.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        let _ = self.reader.join();
        let log = self.said.lock().unwrap().clone();
        (status.success() && !log.contains("panicked"), log)
    }
}

/// Real ALSA devices through cpal: a user-space PulseAudio room; a session is played into the
/// room and what Iris plays is recorded from the speaker's monitor. Then the sound server goes
/// away mid-session (microphone and speaker vanish) and comes back: one clear line, the devices
/// are reopened, and the next question is answered.
#[test]
fn the_loop_runs_on_real_alsa_devices_through_pulseaudio() {
    let _turn = one_at_a_time();
    let (dir, _) = sessions();
    let tmp = tempfile::tempdir().unwrap();
    let pulse = tmp.path().join("pulse");
    let room = PulseRoom::start(&pulse);
    // The sound server's devices are listed by the short names [audio] input/output take.
    let list = Command::new(IRIS).args(["audio", "list"]).env("PULSE_SERVER", &room.server).output().unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success() && listed.lines().any(|l| l.starts_with("pulse ")), "{listed}");
    assert!(list.stderr.is_empty(), "ALSA's own noise leaked: {}", String::from_utf8_lossy(&list.stderr));
    let ev = tmp.path().join("events.jsonl");
    let rec = tmp.path().join("speaker.wav");
    let iris = Listening::start(&room, &ev, 45);
    let recorder = room.record(&rec);
    room.play(&dir.join("01.wav"));
    let first = wait_for(&ev, "answer", 1, 20);
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop_recording(recorder);
    // The sound server goes away and comes back (the same address).
    room.stop();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let room = PulseRoom::start(&pulse);
    std::thread::sleep(std::time::Duration::from_secs(4));
    room.play(&dir.join("03.wav"));
    let second = wait_for(&ev, "answer", 2, 20);
    let (ok, log) = iris.finish();
    room.stop();
    assert!(ok, "{log}");
    assert!(first && second, "answers: first {first}, after the devices came back {second}: {log}");
    let ev = events(&ev);
    let answers: Vec<String> = ev.iter().filter(|e| e["event"] == "answer").map(|e| e["text"].as_str().unwrap().to_lowercase()).collect();
    assert!(answers[0].contains("paris") && answers[1].contains("42"), "{answers:?}: {log}");
    let errors: Vec<&str> = ev.iter().filter(|e| e["event"] == "error").map(|e| e["message"].as_str().unwrap()).collect();
    assert!(errors.iter().any(|m| m.contains("microphone")), "the outage should be one clear line: {errors:?}");
    assert!(errors.len() <= 4, "one line per distinct failure, not one per retry: {errors:?}");
    let heard = iris_audio::read_wav(&rec).unwrap().samples;
    let loud = heard.iter().filter(|s| s.abs() > 0.02).count();
    assert!(loud > 1_600, "the speaker's monitor recorded {loud} loud samples of {}: no answer", heard.len());
}

/// The barge-in on real devices: "Hey Jarvis" said into the room over a long answer stops it;
/// what the speaker's monitor recorded of the answer is no longer than what the loop says was
/// played before the barge-in (the device's buffer was cleared, not played out).
#[test]
fn the_wake_word_stops_an_answer_on_real_devices() {
    let _turn = one_at_a_time();
    let (wav, _) = timed_session("barge");
    let tmp = tempfile::tempdir().unwrap();
    let room = PulseRoom::start(&tmp.path().join("pulse"));
    let ev = tmp.path().join("events.jsonl");
    let rec = tmp.path().join("speaker.wav");
    let iris = Listening::start(&room, &ev, 30);
    let recorder = room.record(&rec);
    room.play(&wav);
    let answered = wait_for(&ev, "answer", 2, 20);
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop_recording(recorder);
    let (ok, log) = iris.finish();
    assert!(ok && answered, "{log}");
    let ev = events(&ev);
    let barge = first(&ev, "barge_in").unwrap_or_else(|| panic!("no barge-in on the devices: {log}"))["t"].as_f64().unwrap();
    let start = first(&ev, "audio_start").unwrap()["t"].as_f64().unwrap();
    let heard = iris_audio::read_wav(&rec).unwrap().samples;
    let first_sound = heard.iter().position(|s| s.abs() > 0.01).expect("the answer was recorded");
    let played = (last_sound(&heard) - first_sound as f64 / 16_000.0).max(0.0);
    assert!(
        played <= barge - start + 0.1,
        "the speaker sounded {played:.2} s, the loop played {:.2} s before the barge-in: {log}",
        barge - start
    );
}

/// The same on devices with an echo path: the speaker is heard in the room 30 ms later, as loud
/// as it plays (PulseAudio's loopback), and echo cancellation is on. A first question warms the
/// canceller, as a running appliance's is (cold, its filter needs about 2.5 s of Iris talking).
/// Iris never hears its own answers as the wake word, and the user's wake word said over the
/// second one still stops it.
///
/// Through PulseAudio's loopback the echo's delay moves from run to run (40 to 52 ms) and AEC3
/// converges to between 6 and 12 dB, so about one run in three misses a turn here (issue 15's
/// open item: `[audio] echo_cancel` stays off by default until it is reliable). The room is
/// made again for a second attempt, and both attempts' logs are kept in the failure.
#[test]
fn the_wake_word_stops_an_answer_heard_back_through_an_echo_path() {
    let _turn = one_at_a_time();
    let first = echo_path_attempt();
    if let Err(first) = first {
        eprintln!("first attempt through the echo path failed; trying once more in a new room:\n{first}");
        if let Err(second) = echo_path_attempt() {
            panic!("both attempts failed.\nfirst: {first}\nsecond: {second}");
        }
    }
}

/// One attempt: `Err` with what went wrong and the loop's log.
fn echo_path_attempt() -> Result<(), String> {
    let (dir, list) = sessions();
    let (wav, _) = timed_session("barge");
    let tmp = tempfile::tempdir().unwrap();
    let room = PulseRoom::start(&tmp.path().join("pulse"));
    room.echo(30);
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "[audio]\necho_cancel = true\n").unwrap();
    let ev = tmp.path().join("events.jsonl");
    let rec = tmp.path().join("rec");
    let iris = Listening::start_with(&room, &ev, 50, &["--config", config.to_str().unwrap(), "--record", rec.to_str().unwrap()]);
    room.play(&dir.join(list[0]["file"].as_str().unwrap()));
    if !wait_for(&ev, "answer", 1, 20) {
        let (_, log) = iris.finish();
        return Err(format!("the first question was not answered: {log}"));
    }
    // Past the follow-up window (5 s), so the next request starts with its wake word.
    std::thread::sleep(std::time::Duration::from_secs(6));
    room.play(&wav);
    let answered = wait_for(&ev, "answer", 3, 20);
    let (ok, log) = iris.finish();
    // The events say when speech started and ended around each wake word.
    let log = format!("{log}\nevents:\n{}", std::fs::read_to_string(&ev).unwrap_or_default());
    let check = |good: bool, what: &str| if good { Ok(()) } else { Err(format!("{what}: {log}")) };
    check(ok && answered, "the loop failed, or the third request was not answered")?;
    let ev = events(&ev);
    let count = |name: &str| ev.iter().filter(|e| e["event"] == name).count();
    check(count("wake") == 3, "not two requests' wake words and the interruption alone (Iris's own voice heard?)")?;
    let second = ev.iter().filter(|e| e["event"] == "audio_start").nth(1).and_then(|e| e["t"].as_f64());
    let barge = first(&ev, "barge_in").and_then(|e| e["t"].as_f64());
    check(second.is_some(), "no second answer")?;
    check(barge.is_some(), "no barge-in through the echo")?;
    check(barge > second, "the barge-in came before the second answer")?;
    check(count("resume") == 0, "Iris paused for its own voice")?;
    replays_as_it_ran(&rec, &log)
}

/// `iris audio echo` on the loop's `--record` folder: the canceller, fed the same calls, removes
/// as much echo as it did live (the WAVs are 16-bit, so to a fraction of a dB), and the wake
/// words are heard in the replayed microphone.
fn replays_as_it_ran(rec: &Path, log: &str) -> Result<(), String> {
    let db = |text: &str, after: &str| -> Option<f64> { text.split(after).nth(1)?.split_whitespace().next()?.parse().ok() };
    let live = db(log, "echo cancelled by ").ok_or_else(|| format!("no echo figure in the log: {log}"))?;
    let o = Command::new(IRIS).args(["audio", "echo"]).arg(rec).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let replayed = db(&out, "echo removed ");
    if !o.status.success() || replayed.is_none_or(|r| (r - live).abs() > 0.5) {
        return Err(format!("replayed {replayed:?} dB against {live} dB live: {out}{}", String::from_utf8_lossy(&o.stderr)));
    }
    let wakes = |name: &str| {
        out.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)?.split_whitespace().next()?.parse::<usize>().ok())
    };
    if wakes("microphone").is_none_or(|n| n < 2) || wakes("cleaned").is_none_or(|n| n < 2) {
        return Err(format!("the replay did not hear both requests' wake words: {out}"));
    }
    // A folder that is not a recording: one line naming what is missing.
    let o = Command::new(IRIS).args(["audio", "echo"]).arg(rec.join("..")).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() || !err.contains("no steps.txt") {
        return Err(format!("a folder with no recording: {err}"));
    }
    Ok(())
}

/// A session that ends at once (half a second of quiet) exits cleanly every time: the threads
/// still loading the reminder's voice and the stop check are waited for, so ONNX Runtime is not
/// torn down under them (it segfaulted at exit in 5 of 6 such runs before).
#[test]
fn a_session_that_ends_at_once_exits_cleanly() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let quiet = tmp.path().join("quiet.wav");
    iris_audio::write_wav_atomic(&quiet, &vec![0.0; 8_000], 16_000).unwrap();
    for _ in 0..4 {
        let o = Command::new(IRIS)
            .args(["listen", "--mic-file"])
            .arg(&quiet)
            .arg("--speaker-file")
            .arg(tmp.path().join("out.wav"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    }
}
