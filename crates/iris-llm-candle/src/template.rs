//! Chat prompts rendered from the model's own template (`tokenizer.chat_template`), a Jinja
//! text, with minijinja and Python-style string methods, as transformers renders it.

use iris_backend::ChatMessage;
use minijinja::{context, Environment, Error, ErrorKind};

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
}

impl ChatTemplate {
    pub fn new(template: Option<String>, bos: String, eos: String) -> Result<Self, LlmError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
        env.add_template_owned("chat", template.unwrap_or_else(|| CHATML.to_owned()))
            .map_err(|e| LlmError::Format(format!("the model's chat template does not parse: {e}")))?;
        Ok(Self { env, bos, eos })
    }

    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        let msgs: Vec<_> = messages.iter().map(|m| context! { role => m.role.as_str(), content => m.content.as_str() }).collect();
        let t = self.env.get_template("chat").map_err(|e| LlmError::Format(e.to_string()))?;
        t.render(context! { messages => msgs, add_generation_prompt => true, bos_token => &self.bos, eos_token => &self.eos })
            .map_err(|e| LlmError::Format(format!("the chat template failed: {e}")))
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
    fn python_string_methods_work() {
        let t = ChatTemplate::new(Some("{{ messages[0].content.strip() }}".into()), String::new(), String::new()).unwrap();
        assert_eq!(t.render(&[ChatMessage::new(Role::User, "  hi ")]).unwrap(), "hi");
    }
}
