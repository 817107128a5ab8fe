//! Tools in the prompt. A template that knows tools (Qwen2.5's) gets them, and the calls and
//! results in the conversation, as `transformers` passes them; a template that does not
//! (SmolLM2's, Gemma's) gets the same instructions in the system message and the calls and
//! results written out as text, in Qwen2.5's `<tool_call>` format, which the scanner reads back.

use iris_backend::{ChatMessage, Role, ToolSpec};
use minijinja::Value;
use serde_json::json;

/// Whether a template source renders `tools` itself.
pub fn knows_tools(source: &str) -> bool {
    source.contains("tools") && source.contains("tool_call")
}

/// The tool list as chat templates take it: OpenAI's `{"type": "function", "function": …}`.
pub fn tools_value(tools: &[ToolSpec]) -> Vec<serde_json::Value> {
    tools.iter().map(ToolSpec::to_openai).collect()
}

/// One message for a template that knows tools.
pub fn message_value(m: &ChatMessage) -> Value {
    let calls: Vec<serde_json::Value> = m
        .tool_calls
        .iter()
        .map(|c| {
            let arguments: serde_json::Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
            json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": arguments } })
        })
        .collect();
    Value::from_serialize(json!({
        "role": m.role.as_str(), "content": m.content, "tool_calls": calls, "tool_call_id": m.tool_call_id,
    }))
}

/// The instructions a template without tools gets, in its system message.
fn instructions(tools: &[ToolSpec]) -> String {
    let list: Vec<String> = tools_value(tools).iter().map(|t| t.to_string()).collect();
    format!(
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function \
         signatures within <tools></tools> XML tags:\n<tools>\n{}\n</tools>\n\nFor each function call, return a json object \
         with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \
         \"arguments\": <args-json-object>}}\n</tool_call>",
        list.join("\n")
    )
}

/// The conversation rewritten for a template that does not know tools.
pub fn as_plain_text(messages: &[ChatMessage], tools: &[ToolSpec]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::new();
    if !tools.is_empty() {
        match messages.first() {
            Some(m) if m.role == Role::System => out.push(ChatMessage::new(Role::System, m.content.clone() + &instructions(tools))),
            _ => out.push(ChatMessage::new(Role::System, instructions(tools).trim_start().to_owned())),
        }
    }
    let skip = usize::from(!tools.is_empty() && messages.first().is_some_and(|m| m.role == Role::System));
    for m in &messages[skip..] {
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut text = m.content.clone();
                for c in &m.tool_calls {
                    text.push_str(&format!("\n<tool_call>\n{{\"name\": {}, \"arguments\": {}}}\n</tool_call>", json!(c.name), c.arguments));
                }
                out.push(ChatMessage::new(Role::Assistant, text.trim_start().to_owned()));
            }
            Role::Tool => {
                let response = format!("<tool_response>\n{}\n</tool_response>", m.content);
                match out.last_mut() {
                    // Results of one turn's calls go in one user message, as Qwen's template does.
                    Some(prev) if prev.role == Role::User && prev.content.ends_with("</tool_response>") => {
                        prev.content.push('\n');
                        prev.content.push_str(&response);
                    }
                    _ => out.push(ChatMessage::new(Role::User, response)),
                }
            }
            _ => out.push(ChatMessage::new(m.role, m.content.clone())),
        }
    }
    out
}
