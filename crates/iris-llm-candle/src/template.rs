//! Chat prompts rendered from the model's own template (`tokenizer.chat_template`), a Jinja
//! text, with minijinja and Python-style string methods, as transformers renders it.

use iris_backend::{ChatMessage, Role, ToolSpec};
use minijinja::{context, Environment, Error, ErrorKind, Value};

use crate::LlmError;

/// Gemma's turn format, for Gemma files that carry no template (base models), as llama.cpp
/// falls back to it; Gemma has no system role, so a system prompt opens the first user turn.
const GEMMA: &str = "{{ bos_token }}{% if messages[0].role == 'system' %}{% set first = messages[0].content + '\n\n' %}{% set rest = messages[1:] %}{% else %}{% set first = '' %}{% set rest = messages %}{% endif %}{% for m in rest %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n{{ (first if loop.first else '') + (m.content | trim) }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

/// The template for a file that carries none: its family's, else ChatML.
pub fn fallback(arch: &str) -> &'static str {
    if arch.starts_with("gemma") {
        GEMMA
    } else {
        CHATML
    }
}

/// ChatML, for files that carry no template.
const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// The template renders tools itself (else they are written into the system message).
    knows_tools: bool,
}

impl ChatTemplate {
    pub fn new(template: Option<String>, bos: String, eos: String) -> Result<Self, LlmError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
        let source = template.unwrap_or_else(|| CHATML.to_owned());
        let knows_tools = crate::tool_prompt::knows_tools(&source);
        env.add_template_owned("chat", source).map_err(|e| LlmError::Format(format!("the model's chat template does not parse: {e}")))?;
        Ok(Self { env, bos, eos, knows_tools })
    }

    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        self.render_with_tools(messages, &[])
    }

    /// The prompt for `messages` with `tools` the model may call, in the model's own format
    /// where its template has one.
    pub fn render_with_tools(&self, messages: &[ChatMessage], tools: &[ToolSpec]) -> Result<String, LlmError> {
        use crate::tool_prompt::{as_plain_text, message_value, tools_value};
        let has_tool_turns = messages.iter().any(|m| m.role == Role::Tool || !m.tool_calls.is_empty());
        let t = self.env.get_template("chat").map_err(|e| LlmError::Format(e.to_string()))?;
        let rendered = if self.knows_tools && (!tools.is_empty() || has_tool_turns) {
            let msgs: Vec<_> = messages.iter().map(message_value).collect();
            let tools = (!tools.is_empty()).then(|| Value::from_serialize(tools_value(tools)));
            t.render(context! { messages => msgs, tools => tools, add_generation_prompt => true, bos_token => &self.bos, eos_token => &self.eos })
        } else {
            let plain;
            let messages = if tools.is_empty() && !has_tool_turns {
                messages
            } else {
                plain = as_plain_text(messages, tools);
                &plain
            };
            let msgs: Vec<_> = messages.iter().map(|m| context! { role => m.role.as_str(), content => m.content.as_str() }).collect();
            t.render(context! { messages => msgs, add_generation_prompt => true, bos_token => &self.bos, eos_token => &self.eos })
        };
        rendered.map_err(|e| LlmError::Format(format!("the chat template failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use iris_backend::Role;

    use super::*;

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        let p = t.render(&[ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, "Hi")]).unwrap();
        assert_eq!(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn gemma_files_without_a_template_get_gemma_turns() {
        let t = ChatTemplate::new(Some(fallback("gemma3").to_owned()), "<bos>".into(), "<eos>".into()).unwrap();
        let p = t.render(&[ChatMessage::new(Role::System, "Be brief."), ChatMessage::new(Role::User, " Hi ")]).unwrap();
        assert_eq!(p, "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    }

    #[test]
    fn tools_go_to_a_template_that_knows_them_and_into_the_system_text_otherwise() {
        let tools = [ToolSpec { name: "get_time".into(), description: "The time now".into(), parameters: r#"{"type":"object"}"#.into() }];
        let call = iris_backend::ToolCall { id: "call_0".into(), name: "get_time".into(), arguments: "{}".into() };
        let conversation = [
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "What time is it?"),
            ChatMessage::calls("", vec![call]),
            ChatMessage::tool_result("call_0", "12:30"),
        ];
        let knowing = "{% if tools %}TOOLS {{ tools[0].function.name }}|{% endif %}{% for m in messages %}{{ m.role }}:{{ m.content }}{% for c in m.tool_calls %}<{{ c.function.name }} {{ c.function.arguments | tojson }}>{% endfor %};{% endfor %}";
        let t = ChatTemplate::new(Some(knowing.into()), String::new(), String::new()).unwrap();
        let p = t.render_with_tools(&conversation, &tools).unwrap();
        assert_eq!(p, "TOOLS get_time|system:Be brief.;user:What time is it?;assistant:<get_time {}>;tool:12:30;");
        let plain = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        let p = plain.render_with_tools(&conversation, &tools).unwrap();
        assert!(p.starts_with("<|im_start|>system\nBe brief.\n\n# Tools") && p.contains(r#""name":"get_time""#), "{p}");
        assert!(
            p.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call><|im_end|>"),
            "{p}"
        );
        assert!(p.contains("<|im_start|>user\n<tool_response>\n12:30\n</tool_response><|im_end|>"), "{p}");
        // No tools: the prompt is exactly what it was.
        assert_eq!(plain.render_with_tools(&conversation[..2], &[]).unwrap(), plain.render(&conversation[..2]).unwrap());
    }

    #[test]
    fn python_string_methods_work() {
        let t = ChatTemplate::new(Some("{{ messages[0].content.strip() }}".into()), String::new(), String::new()).unwrap();
        assert_eq!(t.render(&[ChatMessage::new(Role::User, "  hi ")]).unwrap(), "hi");
    }
}
