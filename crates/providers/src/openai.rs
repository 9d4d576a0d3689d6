//! Addressing an OpenAI-compatible upstream: the URL for an endpoint and the auth headers.

use crate::catalogue::{Family, Provider};
use sluice_wire::sniff::Endpoint;

/// The base URL a deployment calls: its `api_base`, else the provider's env override, else the
/// provider's default. `None` when the provider needs an `api_base` and none is set.
pub fn resolve_base(
    provider: &Provider,
    api_base: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    if let Some(b) = api_base.filter(|b| !b.is_empty()) {
        return Some(b.to_string());
    }
    let Family::OpenAiCompatible { default_base, base_env, .. } = provider.family else {
        return None;
    };
    base_env.iter().find_map(|v| env(v)).or_else(|| default_base.map(str::to_string))
}

/// The key a deployment sends: its `api_key`, else the provider's env variable, else the
/// provider's placeholder for local servers.
pub fn resolve_key(provider: &Provider, api_key: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(k) = api_key {
        return Some(k.to_string());
    }
    let Family::OpenAiCompatible { key_env, default_key, .. } = provider.family else {
        return None;
    };
    key_env.iter().find_map(|v| env(v)).or_else(|| default_key.map(str::to_string))
}

/// `base` + the endpoint's path, joined as the OpenAI SDK joins them (one slash between).
pub fn url(base: &str, endpoint: Endpoint) -> String {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let mut url = String::with_capacity(base.len() + 24);
    url.push_str(base.trim_end_matches('/'));
    url.push_str(endpoint.path());
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// `api_base` as LiteLLM reports it in `x-litellm-model-api-base`: without its query string.
pub fn display_base(base: &str) -> &str {
    base.split_once('?').map(|(b, _)| b).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::lookup;

    #[test]
    fn joins_like_the_sdk() {
        assert_eq!(url("http://127.0.0.1:8090/", Endpoint::Chat), "http://127.0.0.1:8090/chat/completions");
        assert_eq!(url("https://api.openai.com/v1", Endpoint::Embeddings), "https://api.openai.com/v1/embeddings");
        assert_eq!(url("http://h/v1?x=1", Endpoint::Completions), "http://h/v1/completions?x=1");
        assert_eq!(display_base("http://h/v1?key=secret"), "http://h/v1");
    }

    #[test]
    fn resolves_base_and_key() {
        let openai = lookup("openai").unwrap();
        let vllm = lookup("hosted_vllm").unwrap();
        let no_env = |_: &str| None;
        assert_eq!(resolve_base(&openai, None, no_env).as_deref(), Some("https://api.openai.com/v1"));
        assert_eq!(resolve_base(&vllm, None, no_env), None);
        let env = |v: &str| (v == "HOSTED_VLLM_API_BASE").then(|| "http://vllm:8000/v1".to_string());
        assert_eq!(resolve_base(&vllm, None, env).as_deref(), Some("http://vllm:8000/v1"));
        assert_eq!(resolve_key(&vllm, None, no_env).as_deref(), Some("fake-api-key"));
        assert_eq!(resolve_key(&openai, Some("k"), no_env).as_deref(), Some("k"));
    }
}
