//! DataRobot (`datarobot/`): its LLM gateway, or one deployment, speaking OpenAI's chat. LiteLLM's
//! `DataRobotConfig` makes the whole chat URL of `api_base` (else `DATAROBOT_ENDPOINT`, else
//! `https://app.datarobot.com`): a bare host gets `/api/v2/genai/llmgw/chat/completions/`, an
//! `/api/v2` endpoint gets `/genai/llmgw/chat/completions`, a deployment's URL
//! (`…/api/v2/deployments/…`) is kept; each ends in a slash. The key is `api_key`, else
//! `DATAROBOT_API_TOKEN`, else LiteLLM's placeholder. The client's bytes are forwarded as for any
//! OpenAI-compatible server.

use http::{HeaderName, HeaderValue};
use sluice_wire::sniff::Endpoint;

use crate::openai::{self, OpenAi};
use crate::provider::{Env, Params};

const BASE_ENV: &str = "DATAROBOT_ENDPOINT";
const KEY_ENV: &str = "DATAROBOT_API_TOKEN";
const DEFAULT_BASE: &str = "https://app.datarobot.com";
const DEFAULT_KEY: &str = "fake-api-key";
const GATEWAY: &str = "/genai/llmgw/chat/completions";

/// The chat URL LiteLLM makes of a deployment's base.
pub fn chat_url(api_base: Option<&str>, env: Env<'_>) -> String {
    let base = api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| env(BASE_ENV));
    let base = base.as_deref().unwrap_or(DEFAULT_BASE);
    let (base, query) = base.split_once('?').map_or((base, None), |(b, q)| (b, Some(q)));
    let (origin, path) = match base.split_once("://") {
        Some((scheme, rest)) => match rest.find('/') {
            Some(i) => (&base[..scheme.len() + 3 + i], &rest[i..]),
            None => (base, ""),
        },
        None => ("", base),
    };
    let mut path = path.to_string();
    if path.is_empty() || path == "/" {
        path.push_str("/api/v2");
        path.push_str(GATEWAY);
    } else if path.contains("api/v2") && !path.contains("api/v2/deployments") && !path.contains(GATEWAY) {
        // An `/api/v2` endpoint reaches the gateway; a deployment's own URL is kept as written.
        path.push_str(GATEWAY);
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    let mut url = format!("{origin}{path}");
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The forwarding provider for a DataRobot deployment: chat at [`chat_url`]; the other routes
/// beside it, as for any OpenAI-format server (DataRobot's gateway has chat alone).
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let chat = chat_url(p.api_base, env);
    let root = chat.trim_end_matches('/').trim_end_matches("/chat/completions").to_string();
    let key = p.api_key.map(str::to_string).or_else(|| env(KEY_ENV)).unwrap_or_else(|| DEFAULT_KEY.to_string());
    let auth: (HeaderName, HeaderValue) = p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {key}"))?;
    OpenAi::at(
        p,
        &p.model.upstream,
        |e| p.uri(if e == Endpoint::Chat { chat.clone() } else { openai::url(&root, e) }),
        Some(auth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_litellms_chat_url() {
        let none = |_: &str| None;
        let url = |b: &str| chat_url(Some(b), &none);
        assert_eq!(chat_url(None, &none), "https://app.datarobot.com/api/v2/genai/llmgw/chat/completions/");
        assert_eq!(url("https://dr.example/"), "https://dr.example/api/v2/genai/llmgw/chat/completions/");
        assert_eq!(url("https://dr.example/api/v2"), "https://dr.example/api/v2/genai/llmgw/chat/completions/");
        assert_eq!(
            url("https://dr.example/api/v2/deployments/abc123"),
            "https://dr.example/api/v2/deployments/abc123/"
        );
        assert_eq!(
            url("https://dr.example/api/v2/genai/llmgw/chat/completions"),
            "https://dr.example/api/v2/genai/llmgw/chat/completions/"
        );
        let env = |k: &str| (k == BASE_ENV).then(|| "http://127.0.0.1:9/api/v2".to_string());
        assert_eq!(chat_url(None, &env), "http://127.0.0.1:9/api/v2/genai/llmgw/chat/completions/");
    }

    #[test]
    fn sends_the_token_or_litellms_placeholder() {
        let m = crate::catalogue::parse_model("datarobot/azure/gpt-4o-mini", None).unwrap();
        let p = crate::provider::test_params(&m);
        let none = |_: &str| None;
        let t = build(&p, &none).unwrap();
        assert_eq!(t.chat.to_string(), "https://app.datarobot.com/api/v2/genai/llmgw/chat/completions/");
        assert_eq!(t.auth.as_ref().unwrap().1, "Bearer fake-api-key");
        assert_eq!(&t.upstream_model[..], br#""azure/gpt-4o-mini""#);
        let env = |k: &str| (k == KEY_ENV).then(|| "dr-token".to_string());
        assert_eq!(build(&p, &env).unwrap().auth.unwrap().1, "Bearer dr-token");
    }
}
