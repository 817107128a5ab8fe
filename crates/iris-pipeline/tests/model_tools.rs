//! The language model calling the assistant's own tools: the called skill's sentence is the
//! answer, nothing of the call is spoken, and a plain answer streams as before.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iris_backend::fakes::FakeLlm;
use iris_backend::{GenParams, Skills, ToolCall, ToolSpec};
use iris_frames::{Envelope, Frame, TurnId};
use iris_pipeline::harness::run_stage;
use iris_pipeline::stages::{LlmSettings, LlmStage};

/// A timer skill the matcher never recognises, so only the model's call reaches it.
struct Timer(Arc<Mutex<Vec<String>>>);

impl Skills for Timer {
    fn handle(&mut self, _text: &str) -> Option<String> {
        None
    }

    fn tools(&self) -> Vec<ToolSpec> {
        vec![ToolSpec { name: "set_timer".into(), description: "A timer".into(), parameters: r#"{"type":"object"}"#.into() }]
    }

    fn call(&mut self, call: &ToolCall, _text: &str) -> Option<String> {
        (call.name == "set_timer").then(|| {
            self.0.lock().unwrap().push(call.arguments.clone());
            "Timer set for 15 minutes.".to_owned()
        })
    }
}

fn spoken(tokens: &[&str], model_tools: bool) -> (String, Vec<Vec<iris_backend::ChatMessage>>, Vec<String>) {
    let llm = FakeLlm::new(tokens);
    let prompts = llm.prompts.clone();
    let called = Arc::new(Mutex::new(Vec::new()));
    let settings =
        LlmSettings { system_prompt: "Be brief.".into(), params: GenParams::default(), history_turns: 4, max_sentences: 0, model_tools };
    let mut stage = LlmStage::new(Box::new(llm), None, settings).with_skills(Box::new(Timer(called.clone())));
    let t = TurnId(1);
    let input = vec![
        Envelope::new(t, Duration::ZERO, Frame::UserText("Wake me in a quarter of an hour".into())),
        Envelope::new(t, Duration::ZERO, Frame::EndOfTurn),
    ];
    let out = run_stage(&mut stage, input).unwrap();
    let text = out.iter().filter_map(|e| if let Frame::TextDelta(t) = &e.frame { Some(t.as_str()) } else { None }).collect();
    let prompts = prompts.lock().unwrap().clone();
    let called = called.lock().unwrap().clone();
    (text, prompts, called)
}

#[test]
fn a_call_runs_the_skill_and_its_sentence_is_the_answer() {
    let (text, _, called) = spoken(&["{\"name\": \"set_timer\", ", "\"arguments\": {\"minutes\": 15}}"], true);
    assert_eq!(text, "Timer set for 15 minutes.");
    assert_eq!(called, [r#"{"minutes":15}"#]);
    let (text, _, _) = spoken(&["Sure. <tool_call>{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 15}}</tool_call>"], true);
    assert_eq!(text, "Sure. Timer set for 15 minutes.", "text before the call streams; the call is not spoken");
}

#[test]
fn plain_answers_stream_and_tools_stay_off_unless_asked_for() {
    let (text, _, called) = spoken(&["Fifteen", " minutes", " is a quarter."], true);
    assert_eq!((text.as_str(), called.len()), ("Fifteen minutes is a quarter.", 0));
    // Off: a call-shaped answer is only text, and nothing runs.
    let (text, _, called) = spoken(&["{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 15}}"], false);
    assert!(text.starts_with("{\"name\"") && called.is_empty(), "{text}");
}

#[test]
fn a_call_to_a_function_not_offered_is_not_read_out_but_asked_again() {
    // The 0.5B model's own invention, fenced: `multiply` is not one of the tools.
    let stray = ["```json\n{\"name\": \"multiply\", ", "\"arguments\": {\"expression\": \"17 * 17\"}}\n```"];
    let (_, prompts, called) = spoken(&stray, true);
    assert!(called.is_empty());
    assert_eq!(prompts.len(), 2, "asked again without tools, in words");
    // Without tools offered, a model's JSON is its answer and is not second-guessed.
    let (_, prompts, _) = spoken(&stray, false);
    assert_eq!(prompts.len(), 1);
}
