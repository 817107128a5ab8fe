//! The language model's KV cache between calls, on SmolLM2-135M (the smallest; fast): a growing
//! conversation pre-fills only its new words (`conformance.rs`); here, a prompt that leaves the
//! cached conversation (a new conversation with the same system prompt, the last answer cut to
//! what was heard, a question grown from a partial transcript) keeps the tokens it shares with
//! the cache, and answers exactly as a model with an empty cache does. A question still being
//! spoken can be pre-filled ahead (`Llm::prefill`), and the answer to the finished question is
//! the same.

use iris_backend::{ChatMessage, Flow, GenParams, GenStats, Llm, NeverStop, Role};
use iris_llm_candle::{Engine, LlamaChat};
use iris_tests::model;

const SYSTEM: &str = "You are a helpful AI assistant named Iris. Give short, correct answers.";

fn say(role: Role, text: &str) -> ChatMessage {
    ChatMessage::new(role, text)
}

fn ask(llm: &mut LlamaChat, messages: &[ChatMessage]) -> (GenStats, String) {
    let mut answer = String::new();
    let params = GenParams { max_tokens: 24, ..GenParams::default() };
    let stats = llm
        .generate(messages, &params, &NeverStop, &mut |d| {
            answer.push_str(d);
            Flow::Continue
        })
        .expect("the model answers");
    (stats, answer)
}

/// The tokens of `now`'s prompt that `cached` (the tokens the model saw) begins with.
fn shared(llm: &LlamaChat, cached: &[u32], now: &[ChatMessage]) -> usize {
    let ids = llm.tokenizer().encode(llm.render(now).unwrap().as_str(), false).unwrap().get_ids().to_vec();
    ids.iter().zip(cached).take_while(|(a, b)| a == b).count()
}

/// The prompt's tokens and the answer's, as the model saw them.
fn seen(llm: &LlamaChat, messages: &[ChatMessage], answer: &str) -> Vec<u32> {
    let prompt = llm.render(messages).unwrap();
    let mut ids = llm.tokenizer().encode(prompt.as_str(), false).unwrap().get_ids().to_vec();
    ids.extend(llm.tokenizer().encode(answer, false).unwrap().get_ids());
    ids
}

fn fresh(engine: Engine) -> LlamaChat {
    LlamaChat::load_on(&model("smollm2-135m-instruct"), 4096, None, engine).expect("SmolLM2 loads")
}

#[test]
fn a_new_conversation_resumes_after_the_shared_system_prompt() {
    let mut llm = fresh(Engine::Cpu);
    let first = [say(Role::System, SYSTEM), say(Role::User, "What is the capital of France?")];
    let (_, answer) = ask(&mut llm, &first);
    assert!(answer.contains("Paris"), "{answer:?}");
    let second = [say(Role::System, SYSTEM), say(Role::User, "Name a colour of the sky.")];
    let expected = shared(&llm, &seen(&llm, &first, &answer), &second);
    let (stats, resumed) = ask(&mut llm, &second);
    // The system prompt and the user turn's opening came from the cache.
    assert!(expected > 15, "the system prompt is more than 15 tokens: {expected}");
    assert_eq!(stats.reused_tokens, expected, "{stats:?}");
    assert_eq!(stats.prefill_tokens, stats.prompt_tokens - expected);
    let (cold, from_nothing) = ask(&mut fresh(Engine::Cpu), &second);
    assert_eq!(stats.prompt_tokens, cold.prompt_tokens, "the same tokens either way");
    assert_eq!(resumed, from_nothing, "a resumed cache answers as an empty one does");
}

#[test]
fn an_answer_cut_to_what_was_heard_resumes_before_it() {
    let mut llm = fresh(Engine::Cpu);
    let asked = [say(Role::System, SYSTEM), say(Role::User, "Tell me about the moon.")];
    let (before, answer) = ask(&mut llm, &asked);
    // Interrupted after its first two words: the conversation keeps only those.
    let heard: String = answer.split_inclusive(' ').take(2).collect();
    assert!(heard.len() < answer.len(), "{answer:?}");
    let next = [
        say(Role::System, SYSTEM),
        say(Role::User, "Tell me about the moon."),
        say(Role::Assistant, heard.trim_end()),
        say(Role::User, "How far away is it?"),
    ];
    let expected = shared(&llm, &seen(&llm, &asked, &answer), &next);
    let (stats, resumed) = ask(&mut llm, &next);
    // At least the question and the answer's opening came from the cache.
    assert!(expected >= before.prompt_tokens, "{expected} of {}", before.prompt_tokens);
    assert_eq!(stats.reused_tokens, expected, "{stats:?}");
    let (_, from_nothing) = ask(&mut fresh(Engine::Cpu), &next);
    assert_eq!(resumed, from_nothing);
}

#[test]
fn a_question_grown_from_its_partial_transcript_keeps_the_partial() {
    let mut llm = fresh(Engine::Cpu);
    let partial = [say(Role::System, SYSTEM), say(Role::User, "What is the capital")];
    let (_, partial_answer) = ask(&mut llm, &partial);
    let whole = [say(Role::System, SYSTEM), say(Role::User, "What is the capital of Italy?")];
    let expected = shared(&llm, &seen(&llm, &partial, &partial_answer), &whole);
    let (stats, resumed) = ask(&mut llm, &whole);
    // All of the partial's prompt but the template's closing tokens (five in ChatML).
    let partial_tokens = llm.tokenizer().encode(llm.render(&partial).unwrap().as_str(), false).unwrap().len();
    assert!(stats.reused_tokens + 6 >= partial_tokens, "the partial's words came from the cache: {stats:?}");
    assert_eq!(stats.reused_tokens, expected, "{stats:?}");
    let (_, from_nothing) = ask(&mut fresh(Engine::Cpu), &whole);
    assert_eq!(resumed, from_nothing);
}

/// Partial transcripts pre-filled while the user speaks, each as if the question ended there:
/// a partial computes only what it adds to the last (and the template's closing tokens again);
/// a question that ends as the last partial heard it starts its answer at once; one that goes on
/// computes only its last words. Either way the answer is an empty cache's.
#[test]
fn partial_transcripts_are_prefilled_ahead_of_the_question() {
    let mut llm = fresh(Engine::Cpu);
    let params = GenParams::default();
    let user = |text: &str| [say(Role::System, SYSTEM), say(Role::User, text)];
    let tokens =
        |llm: &LlamaChat, text: &str| llm.tokenizer().encode(llm.render(&user(text)).unwrap().as_str(), false).unwrap().get_ids().to_vec();
    let common = |a: &[u32], b: &[u32]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let first = llm.prefill(&user("What is"), &params).expect("pre-fills");
    assert_eq!(first, tokens(&llm, "What is").len(), "the whole prompt, from nothing");
    let (a, b) = (tokens(&llm, "What is"), tokens(&llm, "What is the capital of"));
    let more = llm.prefill(&user("What is the capital of"), &params).expect("pre-fills");
    assert_eq!(more, b.len() - common(&a, &b), "only what the words changed");
    assert_eq!(llm.prefill(&user("What is the capital of"), &params).unwrap(), 0, "nothing twice");
    // The question goes on past the last partial.
    let whole = user("What is the capital of Italy?");
    let (stats, ahead) = ask(&mut llm, &whole);
    assert_eq!(stats.reused_tokens, common(&b, &tokens(&llm, "What is the capital of Italy?")), "{stats:?}");
    assert!(stats.prefill_tokens <= 8, "the last words and the template's end: {stats:?}");
    let (_, from_nothing) = ask(&mut fresh(Engine::Cpu), &whole);
    assert_eq!(ahead, from_nothing);
    // The question ends as the pause's partial heard it: nothing is left to compute.
    let next = user("Is Rome the capital of Italy?");
    let (_, cold) = ask(&mut fresh(Engine::Cpu), &next);
    llm.prefill(&user("Is Rome the capitol"), &params).unwrap();
    llm.prefill(&next, &params).unwrap();
    let (stats, answer) = ask(&mut llm, &next);
    assert_eq!((stats.reused_tokens, stats.prefill_tokens), (stats.prompt_tokens, 0), "{stats:?}");
    assert_eq!(answer, cold, "a misheard partial (\"capitol\") left nothing behind");
    // candle cannot cut its cache back: nothing is pre-filled there.
    assert_eq!(fresh(Engine::Candle).prefill(&user("What is"), &params).unwrap(), 0);
}

#[test]
fn candle_restarts_its_cache_instead() {
    // candle's KV cache can only grow or restart; a prompt that leaves the cached text is
    // pre-filled whole there.
    let mut llm = fresh(Engine::Candle);
    ask(&mut llm, &[say(Role::System, SYSTEM), say(Role::User, "What is the capital of France?")]);
    let (stats, _) = ask(&mut llm, &[say(Role::System, SYSTEM), say(Role::User, "Name a colour of the sky.")]);
    assert_eq!(stats.reused_tokens, 0, "{stats:?}");
}
