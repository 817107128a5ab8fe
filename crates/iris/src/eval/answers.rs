//! `iris eval answers`: asks each language model a question set through the same stages a
//! spoken turn uses (the tools, the conversation, the sentences made for the ear) and scores
//! what would be heard: right (every fact it must contain, none it must not), invented (a fact
//! it must not contain, or no "I don't know" where nobody could know), spoken badly (markdown,
//! a list marker or a closing colon left in), and the time to the first sentence.
//!
//! A question is spoken, as to the live loop: its words arrive at a talker's pace, with a
//! partial transcript every `[speech] partial_ms` (the model works ahead on them), the whole
//! question heard at the pause, and the final transcript `[speech] endpoint_ms` later; the
//! clock starts at the final transcript. `--typed` sends the question in one piece instead,
//! as the API does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use iris_frames::{Envelope, Frame, TurnId};
use iris_pipeline::stages::BUILTIN;
use iris_pipeline::{Pipeline, PipelineEvent, PipelineSpec, Turns};
use serde::Deserialize;
use serde_json::json;

use crate::backends::Models;
use crate::eval::judge::{asserts, has, spoken_badly};

const QUESTIONS: &str = include_str!("../../../../tests/data/answers.jsonl");

/// The answering half of a spoken turn: text in, sentences for the voice out.
const ANSWERS_PIPELINE: &str = r#"
name = "answers"
input = ["user_text", "transcript"]
output = ["text_delta", "sentence"]

[[stage]]
use = "llm"
capacity = 64
policy = "block"

[[stage]]
use = "sentences"
capacity = 256
policy = "block"
"#;

/// A question set larger than this is not a question set.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// A talker's pace in conversation (150 words a minute).
const WORDS_PER_SECOND: f64 = 2.5;

#[derive(Args)]
pub struct AnswersArgs {
    /// JSON lines: {"kind", "question", "must": ["a|b", …], "must_not": […], "follow_up": bool}
    /// (default: the built-in set, tests/data/answers.jsonl).
    file: Option<PathBuf>,
    /// One language model from the catalog (default: every installed one).
    #[arg(long)]
    model: Option<String>,
    /// Send each question as typed text in one piece, not spoken with partial transcripts.
    #[arg(long)]
    typed: bool,
    /// Print each question and answer as it comes.
    #[arg(long)]
    verbose: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct Question {
    kind: String,
    question: String,
    /// Each entry must be in the answer, as whole words; `|` separates spellings that count alike.
    #[serde(default)]
    must: Vec<String>,
    /// None of these may be (a wrong fact, or advice that harms).
    #[serde(default)]
    must_not: Vec<String>,
    /// Asked in the conversation of the question before it.
    #[serde(default)]
    follow_up: bool,
}

#[derive(Default)]
struct Score {
    asked: usize,
    right: usize,
    invented: usize,
    badly_spoken: usize,
    first_sentence: Vec<f64>,
    wrong: Vec<String>,
}

fn read(file: Option<&Path>) -> Result<Vec<Question>> {
    let text = match file {
        Some(p) => {
            let size = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?.len();
            if size > MAX_FILE_BYTES {
                bail!("{}: {size} bytes; a question set is at most {MAX_FILE_BYTES} bytes", p.display());
            }
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => QUESTIONS.to_owned(),
    };
    let questions: Vec<Question> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}: {l}", i + 1)))
        .collect::<Result<_>>()?;
    if questions.is_empty() {
        bail!("no questions");
    }
    Ok(questions)
}

/// How a question reaches the model.
#[derive(Clone, Copy)]
enum Asking {
    Typed,
    /// Partial transcripts this often while the words come, and the final this long after the last.
    Spoken {
        partial_every: Duration,
        endpoint: Duration,
    },
}

fn transcript(text: &str, is_final: bool) -> Frame {
    Frame::Transcript(iris_frames::Transcript { text: text.to_owned(), is_final, language: None })
}

/// Sends `question` as a live turn hears it, in real time: the words so far at each partial,
/// the whole question at the pause, then the wait for the end of the turn (the caller sends the
/// final).
fn speak(pipeline: &Pipeline, turn: TurnId, question: &str, partial_every: Duration, endpoint: Duration) -> Result<()> {
    let words: Vec<&str> = question.split_whitespace().collect();
    let spoken = Duration::from_secs_f64(words.len() as f64 / WORDS_PER_SECOND);
    let start = Instant::now();
    let send = |frame| pipeline.send(Envelope::new(turn, Duration::ZERO, frame)).map_err(|_| anyhow::anyhow!("the pipeline stopped"));
    let mut at = partial_every;
    while at < spoken {
        std::thread::sleep((start + at).saturating_duration_since(Instant::now()));
        let heard = ((at.as_secs_f64() * WORDS_PER_SECOND) as usize).min(words.len());
        if heard > 0 {
            send(transcript(&words[..heard].join(" "), false))?;
        }
        at += partial_every.max(Duration::from_millis(50));
    }
    std::thread::sleep((start + spoken).saturating_duration_since(Instant::now()));
    send(transcript(question, false))?;
    std::thread::sleep(endpoint);
    Ok(())
}

/// One model through the whole set.
fn score(models: &Models, questions: &[Question], asking: Asking, verbose: bool) -> Result<Score> {
    let spec = PipelineSpec::parse(ANSWERS_PIPELINE, BUILTIN)?;
    let timers = iris_tools::Timers::new(std::sync::Arc::new(|_: &str| {}));
    let stages = models.stages(&spec, &timers, None)?;
    let turns = Turns::new();
    let pipeline = Pipeline::start(&spec, stages, turns.clone());
    let mut conversation = Vec::new();
    let mut s = Score::default();
    for q in questions {
        if !q.follow_up {
            // A new conversation: the earlier one leaves the prompt as if it never happened.
            for id in conversation.drain(..) {
                turns.withdraw(id);
            }
        }
        let turn = turns.begin();
        conversation.push(turn.id);
        let question = match asking {
            Asking::Typed => Frame::UserText(q.question.clone()),
            Asking::Spoken { partial_every, endpoint } => {
                speak(&pipeline, turn.id, &q.question, partial_every, endpoint)?;
                transcript(&q.question, true)
            }
        };
        let asked = Instant::now();
        for frame in [question, Frame::EndOfTurn] {
            pipeline.send(Envelope::new(turn.id, Duration::ZERO, frame)).map_err(|_| anyhow::anyhow!("the pipeline stopped"))?;
        }
        let mut sentences = Vec::new();
        let mut first = None;
        loop {
            match pipeline.recv() {
                Some(PipelineEvent::Frame(env)) if env.turn == turn.id => match env.frame {
                    Frame::Sentence(text) => {
                        first.get_or_insert_with(|| asked.elapsed().as_secs_f64());
                        sentences.push(text);
                    }
                    Frame::EndOfTurn => break,
                    _ => {}
                },
                Some(PipelineEvent::Error { stage, message, .. }) => bail!("{stage}: {message}"),
                Some(_) => {}
                None => bail!("the pipeline stopped"),
            }
        }
        let answer = sentences.join(" ");
        if verbose {
            eprintln!("    {:.2}s {} → {answer}", first.unwrap_or(f64::NAN), q.question);
        }
        // A statement that sets up a follow-up is not scored.
        if q.must.is_empty() && q.must_not.is_empty() {
            continue;
        }
        let lower = answer.to_lowercase();
        let invented = q.must_not.iter().any(|m| asserts(&lower, m));
        let right = !invented && q.must.iter().all(|m| has(&lower, m));
        // Where only "I don't know" is right, any other answer is made up.
        let invented = invented || (q.kind == "unknowable" && !right);
        let badly = spoken_badly(&sentences);
        s.asked += 1;
        s.right += usize::from(right);
        s.invented += usize::from(invented);
        s.badly_spoken += usize::from(badly);
        s.first_sentence.extend(first);
        if !right {
            s.wrong.push(format!("{} → {answer}", q.question));
        }
        if verbose {
            eprintln!(
                "  {}",
                if right {
                    "right"
                } else if invented {
                    "INVENTED"
                } else {
                    "wrong"
                }
            );
        }
    }
    pipeline.shutdown();
    Ok(s)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
}

pub fn run(config_path: Option<&Path>, args: AnswersArgs) -> Result<ExitCode> {
    let questions = read(args.file.as_deref())?;
    let models = Models::open(config_path)?;
    let ids: Vec<String> = match &args.model {
        Some(id) => vec![id.clone()],
        None => {
            models.catalog.models.iter().filter(|m| m.task == "llm" && models.store.main_file(m).is_ok()).map(|m| m.id.clone()).collect()
        }
    };
    if ids.is_empty() {
        bail!("no language model is installed: `iris models pull default`");
    }
    let mut rows = Vec::new();
    for id in &ids {
        let mut config = models.config.clone();
        config.models.llm = id.clone();
        let asking = if args.typed || config.speech.partial_ms == 0 {
            Asking::Typed
        } else {
            Asking::Spoken {
                partial_every: Duration::from_millis(config.speech.partial_ms),
                endpoint: Duration::from_millis(config.speech.endpoint_ms),
            }
        };
        let s = score(&models.with_config(config), &questions, asking, args.verbose)?;
        rows.push((id.clone(), s));
    }
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(id, s)| {
                json!({
                    "model": id, "asked": s.asked, "right": s.right, "invented": s.invented, "badly_spoken": s.badly_spoken,
                    "first_sentence_s_p50": pct(&s.first_sentence, 0.5), "first_sentence_s_p90": pct(&s.first_sentence, 0.9),
                    "wrong": s.wrong,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
        return Ok(ExitCode::SUCCESS);
    }
    println!("| model | right | invented | spoken badly | first sentence p50 / p90 |");
    println!("|---|---|---|---|---|");
    for (id, s) in &rows {
        let share = |n: usize| 100.0 * n as f64 / s.asked.max(1) as f64;
        println!(
            "| {id} | {:.0} % ({}/{}) | {:.0} % | {} | {:.2} / {:.2} s |",
            share(s.right),
            s.right,
            s.asked,
            share(s.invented),
            s.badly_spoken,
            pct(&s.first_sentence, 0.5),
            pct(&s.first_sentence, 0.9)
        );
    }
    Ok(ExitCode::SUCCESS)
}
