//! Tools a language model may call: their specifications (given to the model in its own
//! format by its chat template), the calls it makes, and the scanner that finds those calls in
//! the streamed text. Models write calls in several ways: Qwen2.5's format is
//! `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, and small models often drop the tags
//! and answer with the bare JSON object, or the object in a Markdown code fence; all three are
//! calls here, as llama.cpp's server also takes them.

use serde_json::Value;

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// Its parameters as a JSON Schema object, in JSON text.
    pub parameters: String,
}

impl ToolSpec {
    /// As OpenAI's API and chat templates take a tool: `{"type": "function", "function": …}`.
    pub fn to_openai(&self) -> Value {
        let parameters: Value = serde_json::from_str(&self.parameters).unwrap_or_else(|_| serde_json::json!({ "type": "object" }));
        serde_json::json!({ "type": "function", "function": { "name": self.name, "description": self.description, "parameters": parameters } })
    }
}

/// A call the model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// Unique within the answer (`call_0`, `call_1`, …) unless a client gave its own.
    pub id: String,
    pub name: String,
    /// The arguments as a JSON object, in JSON text.
    pub arguments: String,
}

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// Splits a streamed answer into text to pass on and tool calls. Text that may be the start of
/// a call is held back until it is known; an answer that opens like a JSON object or a code
/// fence is held whole, because only its end shows whether it was a call.
pub struct ToolCallScanner {
    names: Vec<String>,
    /// Text not yet known to be plain.
    held: String,
    /// Inside `<tool_call>…`: the call's text so far.
    inside: Option<String>,
    /// Nothing but white space has been seen yet.
    at_start: bool,
    /// The whole answer is held: it opened like a bare call.
    whole: bool,
    calls: Vec<ToolCall>,
}

impl ToolCallScanner {
    /// A scanner for calls to `names` (a bare JSON object naming another function is text).
    pub fn new(names: Vec<String>) -> Self {
        Self { names, held: String::new(), inside: None, at_start: true, whole: false, calls: Vec::new() }
    }

    /// A scanner for calls to `tools`, or `None` when no tool is offered.
    pub fn for_tools(tools: &[ToolSpec]) -> Option<Self> {
        (!tools.is_empty()).then(|| Self::new(tools.iter().map(|t| t.name.clone()).collect()))
    }

    /// Takes the next piece; returns the text that is surely not part of a call.
    pub fn push(&mut self, piece: &str) -> String {
        if self.whole {
            self.held.push_str(piece);
            return String::new();
        }
        self.held.push_str(piece);
        if self.at_start {
            let t = self.held.trim_start();
            if t.is_empty() {
                return String::new();
            }
            self.at_start = false;
            if t.starts_with('{') || t.starts_with("```") {
                self.whole = true;
                return String::new();
            }
        }
        let mut out = String::new();
        loop {
            if let Some(call) = &mut self.inside {
                match self.held.find(CLOSE) {
                    Some(end) => {
                        call.push_str(&self.held[..end]);
                        let text = std::mem::take(call);
                        self.inside = None;
                        self.held.drain(..end + CLOSE.len());
                        self.parse_into_calls(&text);
                    }
                    None => {
                        // Keep what could be the start of the closing tag.
                        let keep = partial_suffix(&self.held, CLOSE);
                        call.push_str(&self.held[..self.held.len() - keep]);
                        self.held.drain(..self.held.len() - keep);
                        return out;
                    }
                }
            } else {
                match self.held.find(OPEN) {
                    Some(start) => {
                        out.push_str(&self.held[..start]);
                        self.held.drain(..start + OPEN.len());
                        self.inside = Some(String::new());
                    }
                    None => {
                        let keep = partial_suffix(&self.held, OPEN);
                        out.push_str(&self.held[..self.held.len() - keep]);
                        self.held.drain(..self.held.len() - keep);
                        return out;
                    }
                }
            }
        }
    }

    /// The end of the answer: the text still held that is not a call, and every call.
    pub fn finish(mut self) -> (String, Vec<ToolCall>) {
        if self.whole {
            let text = std::mem::take(&mut self.held);
            let body = unfenced(text.trim());
            if self.parse_into_calls(body) {
                return (String::new(), self.calls);
            }
            return (text, self.calls);
        }
        if let Some(call) = self.inside.take() {
            // An unclosed call at the end of the answer is still a call if its JSON is whole.
            let text = call + &self.held;
            if !self.parse_into_calls(&text) {
                return (format!("{OPEN}{text}"), self.calls);
            }
            return (String::new(), self.calls);
        }
        (std::mem::take(&mut self.held), self.calls)
    }

    /// Parses one or more call objects (one per line, or one); false if any is not a call.
    fn parse_into_calls(&mut self, text: &str) -> bool {
        let mut found = Vec::new();
        let stream = serde_json::Deserializer::from_str(text.trim()).into_iter::<Value>();
        for v in stream {
            let Ok(v) = v else { return false };
            let Some(call) = self.call_from(&v) else { return false };
            found.push(call);
        }
        if found.is_empty() {
            return false;
        }
        self.calls.extend(found);
        true
    }

    fn call_from(&self, v: &Value) -> Option<ToolCall> {
        let f = v.get("function").unwrap_or(v);
        let name = f.get("name")?.as_str()?.to_owned();
        if !self.names.contains(&name) {
            return None;
        }
        let arguments = match f.get("arguments").or_else(|| f.get("parameters")) {
            None | Some(Value::Null) => "{}".to_owned(),
            // Some models write the arguments as a JSON string, as OpenAI's API carries them.
            Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok().filter(Value::is_object)?.to_string(),
            Some(o @ Value::Object(_)) => o.to_string(),
            Some(_) => return None,
        };
        Some(ToolCall { id: format!("call_{}", self.calls.len()), name, arguments })
    }
}

/// The length of the longest end of `text` that begins `tag`.
fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..]))
        .unwrap_or(0)
}

/// The body of a Markdown code fence, or the text as it is.
/// A whole answer shaped like a call to a function that was not offered (`{"name": "multiply",
/// "arguments": …}`, bare or in a code fence): what a small model writes when it reaches for a
/// tool it does not have. Not text to read out; the caller decides what to do instead.
pub fn stray_call(text: &str) -> Option<ToolCall> {
    let v: Value = serde_json::from_str(unfenced(text.trim())).ok()?;
    let f = v.get("function").unwrap_or(&v);
    let name = f.get("name")?.as_str()?.to_owned();
    let arguments = f.get("arguments").filter(|a| a.is_object()).map_or_else(|| "{}".to_owned(), Value::to_string);
    Some(ToolCall { id: "call_0".into(), name, arguments })
}

fn unfenced(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else { return text };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.trim_end().strip_suffix("```").unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_a_function_not_offered_is_recognised_as_one() {
        let fenced = "```json\n{\n  \"name\": \"multiply\",\n  \"arguments\": {\"expression\": \"17 * 17\"}\n}\n```";
        let call = stray_call(fenced).expect("a stray call");
        assert_eq!((call.name.as_str(), call.arguments.as_str()), ("multiply", r#"{"expression":"17 * 17"}"#));
        assert!(stray_call("{\"name\": \"get_weather\"}").is_some());
        assert!(stray_call("The capital of France is Paris.").is_none());
        assert!(stray_call("{\"city\": \"Paris\"}").is_none());
    }

    fn scan(pieces: &[&str]) -> (String, Vec<ToolCall>) {
        let mut s = ToolCallScanner::new(vec!["get_weather".into(), "set_timer".into()]);
        let mut text: String = pieces.iter().map(|p| s.push(p)).collect();
        let (rest, calls) = s.finish();
        text.push_str(&rest);
        (text, calls)
    }

    #[test]
    fn plain_answers_pass_through_as_they_stream() {
        let mut s = ToolCallScanner::new(vec!["get_weather".into()]);
        assert_eq!(s.push("The capital"), "The capital");
        assert_eq!(s.push(" is Paris. <"), " is Paris. ", "a '<' that may open a call is held");
        assert_eq!(s.push("b>Yes</b>"), "<b>Yes</b>");
        assert_eq!(s.finish(), (String::new(), vec![]));
    }

    #[test]
    fn tagged_bare_and_fenced_calls_are_found() {
        let (text, calls) = scan(&["<tool", "_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_", "call>"]);
        assert_eq!(text, "");
        assert_eq!((calls[0].name.as_str(), calls[0].arguments.as_str()), ("get_weather", r#"{"city":"Paris"}"#));
        let (text, calls) = scan(&["{\"name\": \"set_timer\", ", "\"arguments\": {\"minutes\": 10}}"]);
        assert_eq!((text.as_str(), calls[0].arguments.as_str()), ("", r#"{"minutes":10}"#));
        let (_, calls) = scan(&["```json\n{\"name\": \"set_timer\", \"arguments\": \"{\\\"minutes\\\": 5}\"}\n```"]);
        assert_eq!(calls[0].arguments, r#"{"minutes":5}"#);
        let (text, calls) =
            scan(&["Let me check. <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"]);
        assert_eq!((text.as_str(), calls.len()), ("Let me check. ", 1));
        let (_, calls) = scan(&["<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"set_timer\", \"arguments\": {\"minutes\": 1}}</tool_call>"]);
        assert_eq!((calls[0].id.as_str(), calls[1].id.as_str()), ("call_0", "call_1"));
    }

    #[test]
    fn json_that_is_not_a_call_is_text() {
        let (text, calls) = scan(&["{\"name\": \"launch_rockets\", \"arguments\": {}}"]);
        assert_eq!((text.as_str(), calls.len()), ("{\"name\": \"launch_rockets\", \"arguments\": {}}", 0));
        let (text, calls) = scan(&["```python\nprint(1)\n```"]);
        assert_eq!((text.as_str(), calls.len()), ("```python\nprint(1)\n```", 0));
        let (text, calls) = scan(&["<tool_call>{\"name\": \"get_weather\", \"argu"]);
        assert_eq!((text.as_str(), calls.len()), ("<tool_call>{\"name\": \"get_weather\", \"argu", 0));
    }
}
