//! RAGFlow (`ragflow/`): a chat assistant's or an agent's OpenAI-compatible chat, addressed as
//! LiteLLM's `RAGFlowConfig` addresses it. The model is written `chat/{chat_id}/{model}` or
//! `agent/{agent_id}/{model}`; the call goes to
//! `{api_base}/api/v1/chats_openai/{chat_id}/chat/completions` (or `agents_openai`), `api_base`
//! (else `RAGFLOW_API_BASE`, required) without a trailing `/v1` or `/api/v1`, with `{model}` as
//! the body's model and `api_key` (else `RAGFLOW_API_KEY`) as a bearer token. The client's bytes
//! are otherwise forwarded as for any OpenAI-compatible server.

use sluice_wire::sniff::Endpoint;

use crate::openai::{self, OpenAi};
use crate::provider::{Env, Params};

const BASE_ENV: &str = "RAGFLOW_API_BASE";
const KEY_ENV: &str = "RAGFLOW_API_KEY";

/// A RAGFlow model name: which kind of endpoint, its id, and the model the body names.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub agent: bool,
    pub id: &'a str,
    pub model: &'a str,
}

/// `chat/{id}/{model}` or `agent/{id}/{model}` (the model may hold slashes).
pub fn parse(upstream: &str) -> Result<Target<'_>, String> {
    let mut parts = upstream.splitn(3, '/');
    let (kind, id, model) = (parts.next(), parts.next(), parts.next());
    let agent = match kind {
        Some("chat") => false,
        Some("agent") => true,
        _ => return Err(format!("\"ragflow/{upstream}\" names no chat or agent; write it as \"ragflow/chat/<chat_id>/<model>\" or \"ragflow/agent/<agent_id>/<model>\"")),
    };
    match (id, model) {
        (Some(id), Some(model)) if !id.is_empty() && !model.is_empty() => Ok(Target { agent, id, model }),
        _ => Err(format!(
            "\"ragflow/{upstream}\" lacks the id or the model; write it as \"ragflow/{}/<id>/<model>\"",
            if agent { "agent" } else { "chat" }
        )),
    }
}

/// The server's root: `api_base` (else `RAGFLOW_API_BASE`) without its `/v1` or `/api/v1`.
pub fn root(api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    let base = api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| env(BASE_ENV))?;
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/api/v1").or_else(|| base.strip_suffix("/v1")).unwrap_or(base);
    Some(base.to_string())
}

/// The forwarding provider for a RAGFlow deployment.
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let target = parse(&p.model.upstream).map_err(|e| format!("{}.model: {e}", p.path()))?;
    let root = root(p.api_base, env).ok_or_else(|| {
        format!(
            "deployment {} of model group \"{}\" has no api_base; set litellm_params.api_base (or {BASE_ENV}) to the RAGFlow server",
            p.id, p.model_name
        )
    })?;
    let kind = if target.agent { "agents_openai" } else { "chats_openai" };
    let base = format!("{root}/api/v1/{kind}/{}", target.id);
    let auth = p
        .api_key
        .map(str::to_string)
        .or_else(|| env(KEY_ENV))
        .map(|k| p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}")))
        .transpose()?;
    OpenAi::at(p, target.model, |e: Endpoint| p.uri(openai::url(&base, e)), auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_litellms_model_names() {
        assert_eq!(parse("chat/c1/gpt-4o").unwrap(), Target { agent: false, id: "c1", model: "gpt-4o" });
        assert_eq!(parse("agent/a1/openai/gpt-4o").unwrap(), Target { agent: true, id: "a1", model: "openai/gpt-4o" });
        assert!(parse("gpt-4o").unwrap_err().contains("ragflow/chat/<chat_id>/<model>"));
        assert!(parse("chat/c1").unwrap_err().contains("lacks the id or the model"));
        assert!(parse("chat//m").is_err());
    }

    #[test]
    fn calls_the_chats_or_agents_path_under_the_servers_root() {
        let m = crate::catalogue::parse_model("ragflow/chat/c1/deepseek-chat", None).unwrap();
        let mut p = crate::provider::test_params(&m);
        let none = |_: &str| None;
        assert!(build(&p, &none).unwrap_err().contains("has no api_base"));
        p.api_base = Some("http://rf.example:9380/v1/");
        let t = build(&p, &none).unwrap();
        assert_eq!(t.chat.to_string(), "http://rf.example:9380/api/v1/chats_openai/c1/chat/completions");
        assert_eq!(&t.upstream_model[..], br#""deepseek-chat""#);
        assert!(t.auth.is_none());
        let m = crate::catalogue::parse_model("ragflow/agent/a9/m", None).unwrap();
        let p = crate::provider::test_params(&m);
        let env = |k: &str| match k {
            BASE_ENV => Some("http://rf.example/api/v1".to_string()),
            KEY_ENV => Some("rf-key".to_string()),
            _ => None,
        };
        let t = build(&p, &env).unwrap();
        assert_eq!(t.chat.to_string(), "http://rf.example/api/v1/agents_openai/a9/chat/completions");
        assert_eq!(t.auth.unwrap().1, "Bearer rf-key");
    }
}
