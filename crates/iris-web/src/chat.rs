//! What the OpenAI and Ollama chat APIs share: a conversation with its sizes bounded before
//! anything is decoded, the photo in the question looked at, sampling settings checked, and
//! the answer generated on the blocking pool and handed to the route piece by piece.

use iris_backend::{ChatMessage, Flow, GenParams, GenStats, Role, ToolCall, ToolCallScanner, ToolSpec};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::limits::{MAX_IMAGES, MAX_MESSAGES, MAX_PROMPT_BYTES};
use crate::{upload, AppState};

/// An image as a client sent it: OpenAI sends `data:` URLs, Ollama bare base64.
pub enum ImageRef<'a> {
    DataUrl(&'a str),
    Base64(&'a str),
}

impl ImageRef<'_> {
    fn bytes(&self) -> ApiResult<Vec<u8>> {
        use base64::Engine;
        match self {
            ImageRef::DataUrl(url) => upload::data_url(url),
            // Some Ollama clients send a data: URL in `images` too.
            ImageRef::Base64(b) if b.starts_with("data:") => upload::data_url(b),
            ImageRef::Base64(b) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ApiError::BadRequest(format!("an image's base64 is broken: {e}"))),
        }
    }
}

/// One message of a conversation, in either API's shape.
pub struct Said<'a> {
    pub role: &'a str,
    pub text: String,
    pub images: Vec<ImageRef<'a>>,
    /// An assistant message's calls to tools.
    pub tool_calls: Vec<ToolCall>,
    /// A tool message's call.
    pub tool_call_id: String,
}

impl<'a> Said<'a> {
    pub fn new(role: &'a str, text: String, images: Vec<ImageRef<'a>>) -> Self {
        Self { role, text, images, tool_calls: Vec::new(), tool_call_id: String::new() }
    }
}

/// The most tools one request may offer the model, and the most JSON text they may take.
pub const MAX_TOOLS: usize = 64;
const MAX_TOOL_BYTES: usize = 32 << 10;

/// A tool as both APIs send it: `{"type": "function", "function": {"name", "description",
/// "parameters"}}`, checked.
pub fn tool_spec(i: usize, tool: &Value) -> ApiResult<ToolSpec> {
    let f = &tool["function"];
    let bad = |what: &str| ApiError::BadRequest(format!("tools[{i}]: {what}"));
    if tool.get("type").and_then(Value::as_str).is_some_and(|t| t != "function") {
        return Err(bad("type must be \"function\""));
    }
    let name = f["name"].as_str().ok_or_else(|| bad("function.name is missing"))?;
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("function.name must be 1 to 64 letters, digits, '_' or '-'"));
    }
    let description = f["description"].as_str().unwrap_or("");
    let parameters = match &f["parameters"] {
        Value::Null => "{\"type\":\"object\",\"properties\":{}}".to_owned(),
        p @ Value::Object(_) => p.to_string(),
        _ => return Err(bad("function.parameters must be a JSON Schema object")),
    };
    Ok(ToolSpec { name: name.to_owned(), description: description.to_owned(), parameters })
}

/// The tools of a request, bounded and checked.
pub fn tool_specs(tools: &[Value]) -> ApiResult<Vec<ToolSpec>> {
    if tools.len() > MAX_TOOLS {
        return Err(ApiError::BadRequest(format!("tools holds {} functions; offer at most {MAX_TOOLS}", tools.len())));
    }
    let specs = tools.iter().enumerate().map(|(i, t)| tool_spec(i, t)).collect::<ApiResult<Vec<_>>>()?;
    let bytes: usize = specs.iter().map(|t| t.name.len() + t.description.len() + t.parameters.len()).sum();
    if bytes > MAX_TOOL_BYTES {
        return Err(ApiError::BadRequest(format!("the tools take {bytes} bytes of JSON; Iris takes at most {MAX_TOOL_BYTES}")));
    }
    Ok(specs)
}

/// A message list, refused while it is read once it passes [`MAX_MESSAGES`]: a million empty
/// messages cost 2.2 GB before anything looked at them.
pub fn at_most_max_messages<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded(d, MAX_MESSAGES, "messages", "send the conversation's latest turns")
}

/// A tool list, refused while it is read once it passes [`MAX_TOOLS`].
pub fn at_most_max_tools<'de, D>(d: D) -> Result<Option<Vec<Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    bounded(d, MAX_TOOLS, "tools", "offer fewer functions").map(Some)
}

fn bounded<'de, D, T>(d: D, max: usize, what: &'static str, fix: &'static str) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(usize, &'static str, &'static str, std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {} {}", self.0, self.1)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element()? {
                if out.len() == self.0 {
                    return Err(serde::de::Error::custom(format!("{}: more than {}; {}", self.1, self.0, self.2)));
                }
                out.push(m);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded(max, what, fix, std::marker::PhantomData))
}

/// A conversation's sizes, checked before anything is tokenised or decoded.
pub fn bounds(said: &[Said]) -> ApiResult<()> {
    let call_bytes = |m: &Said| m.tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>();
    let text_bytes: usize = said.iter().map(|m| m.text.len() + call_bytes(m)).sum();
    let images: usize = said.iter().map(|m| m.images.len()).sum();
    if text_bytes > MAX_PROMPT_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the messages hold {text_bytes} bytes of text; Iris takes at most {MAX_PROMPT_BYTES} (its models read a few thousand words)"
        )));
    }
    if images > MAX_IMAGES {
        return Err(ApiError::BadRequest(format!("the messages hold {images} images; send at most {MAX_IMAGES}")));
    }
    Ok(())
}

/// The conversation for the model, and an answer already known (text read from a photo).
/// With no system message, the settings' persona and limits lead it (`client_tools`: the
/// request offers its own tools, so the limits are left out). Decodes images and runs the
/// vision model: call it on the blocking pool.
pub fn conversation(s: &AppState, said: &[Said], client_tools: bool) -> ApiResult<(Vec<ChatMessage>, Option<String>)> {
    if said.is_empty() {
        return Err(ApiError::BadRequest("messages is empty".into()));
    }
    bounds(said)?;
    let mut out = Vec::new();
    let mut direct = None;
    let last_user = said.iter().rposition(|m| m.role == "user");
    for (i, m) in said.iter().enumerate() {
        let role = match m.role {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => return Err(ApiError::BadRequest(format!("message {i} has role {other:?}; use system, user, assistant or tool"))),
        };
        let mut text = m.text.clone();
        // Only the question being asked is looked at; earlier photos were answered already.
        if Some(i) == last_user {
            for (n, image) in m.images.iter().enumerate() {
                let image = upload::image(&image.bytes()?, &format!("image {}", n + 1))?;
                match s.engine.look(&image, &text)? {
                    Some((seen, true)) => direct = Some(seen),
                    Some((seen, false)) => text.push_str(&format!("\n(The photo shows: {seen})")),
                    None => return Err(ApiError::BadRequest("this Iris has no vision model loaded".into())),
                }
            }
        }
        let mut message = ChatMessage::new(role, text);
        message.tool_calls = m.tool_calls.clone();
        message.tool_call_id = m.tool_call_id.clone();
        out.push(message);
    }
    if !out.iter().any(|m| m.role == Role::System) {
        let persona = s.engine.config().assistant.instructions(client_tools);
        if !persona.is_empty() {
            out.insert(0, ChatMessage::new(Role::System, persona));
        }
    }
    Ok((out, direct))
}

/// Sampling settings a request may override, in either API's names.
#[derive(Default)]
pub struct Sampling {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub stop: Option<Vec<String>>,
    pub seed: Option<u64>,
    pub tools: Vec<ToolSpec>,
}

/// The configured generation settings with a request's overrides, each checked.
pub fn params(s: &AppState, req: Sampling) -> ApiResult<GenParams> {
    let mut p = s.engine.gen_params();
    if let Some(n) = req.max_tokens {
        if !(1..=4096).contains(&n) {
            return Err(ApiError::BadRequest(format!("max_tokens is {n}; use 1 to 4096")));
        }
        p.max_tokens = n;
    }
    if let Some(t) = req.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::BadRequest(format!("temperature is {t}; use 0 to 2")));
        }
        p.temperature = t;
    }
    if let Some(top_p) = req.top_p {
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::BadRequest(format!("top_p is {top_p}; use more than 0, up to 1")));
        }
        p.top_p = (top_p < 1.0).then_some(top_p);
    }
    if let Some(k) = req.top_k {
        if k > 1000 {
            return Err(ApiError::BadRequest(format!("top_k is {k}; use 0 (off) to 1000")));
        }
        p.top_k = (k > 0).then_some(k);
    }
    if let Some(stop) = req.stop {
        p.stop = stop;
    }
    if p.stop.len() > 4 || p.stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::BadRequest("stop holds at most 4 texts of 1 to 256 bytes".into()));
    }
    if let Some(seed) = req.seed {
        p.seed = seed;
    }
    p.tools = req.tools;
    Ok(p)
}

/// What an answer hands the route as it is generated.
pub enum Piece {
    Text(String),
    /// The calls the model made, once the answer has ended.
    Calls(Vec<ToolCall>),
    /// The last piece of a failed answer.
    Failed(ApiError),
}

/// An answer being generated: its pieces as they come, and the worker, whose result holds the
/// token counts.
pub struct Generation {
    pub pieces: tokio::sync::mpsc::Receiver<Piece>,
    pub worker: tokio::task::JoinHandle<Result<GenStats, iris_engine::EngineError>>,
}

/// Starts the answer on the blocking pool; it stops when the route drops `pieces` (the client
/// went away). `direct` is an answer already known, sent as it is.
pub fn generate(s: &AppState, messages: Vec<ChatMessage>, params: GenParams, direct: Option<String>) -> Generation {
    let (tx, pieces) = tokio::sync::mpsc::channel::<Piece>(256);
    let engine = s.engine.clone();
    let worker = tokio::task::spawn_blocking(move || {
        if let Some(answer) = direct {
            let _ = tx.blocking_send(Piece::Text(answer));
            return Ok(GenStats::default());
        }
        // With tools offered, text that may be a call is held until it is known.
        let mut scanner = ToolCallScanner::for_tools(&params.tools);
        let gone = || tx.is_closed();
        let result = engine.chat(&messages, &params, &gone, &mut |t| {
            let text = match &mut scanner {
                Some(scan) => scan.push(t),
                None => t.to_owned(),
            };
            if !text.is_empty() && tx.blocking_send(Piece::Text(text)).is_err() {
                return Flow::Stop;
            }
            Flow::Continue
        });
        match &result {
            Ok(_) => {
                if let Some(scan) = scanner {
                    let (rest, calls) = scan.finish();
                    if !rest.is_empty() {
                        let _ = tx.blocking_send(Piece::Text(rest));
                    }
                    if !calls.is_empty() {
                        let _ = tx.blocking_send(Piece::Calls(calls));
                    }
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Piece::Failed(ApiError::from(e)));
            }
        }
        result
    });
    Generation { pieces, worker }
}
