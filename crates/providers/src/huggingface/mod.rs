//! Hugging Face (`huggingface/`): chat through an OpenAI-compatible endpoint, as LiteLLM's
//! `HuggingFaceChatConfig` addresses it today. The client's bytes are forwarded with only `model`
//! rewritten.
//!
//! - With `api_base` (or `HF_API_BASE` / `HUGGINGFACE_API_BASE`: a dedicated Inference Endpoint,
//!   a TGI or vLLM server), chat goes to `{base}/v1/chat/completions` (`{base}/chat/completions`
//!   when the base ends in `/v1`, the base itself when it already ends in `/chat/completions`).
//! - Without one, to Hugging Face's router, `https://router.huggingface.co/v1/chat/completions`.
//!   `huggingface/<provider>/<org>/<model>` picks an inference provider: the router is sent
//!   `<org>/<model>:<provider>`, its own way of naming one. (LiteLLM instead asks the Hub for
//!   the provider's model id and calls `router.huggingface.co/<provider>/…`: a Hub round trip per
//!   model that the router's suffix makes unnecessary.)
//!
//! The token is `api_key`, else `HUGGINGFACE_API_KEY`, else `HF_TOKEN`, sent as a bearer token.
//!
//! Embeddings are LiteLLM's feature extraction, translated (`embed`): to the `api_base` as given,
//! else to the router's `hf-inference` pipeline. An `api_base` ending in `/v1` names an
//! OpenAI-compatible server, whose `/v1/embeddings` is forwarded like chat.

pub mod embed;

use http::Uri;
use sluice_wire::sniff::Endpoint;

use crate::openai::OpenAi;
use crate::provider::{Env, Params};

pub const ROUTER: &str = "https://router.huggingface.co";
pub const BASE_ENV: &[&str] = &["HF_API_BASE", "HUGGINGFACE_API_BASE"];
pub const KEY_ENV: &[&str] = &["HUGGINGFACE_API_KEY", "HF_TOKEN"];

/// Where a deployment's calls go and the model name it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The server's root: the OpenAI routes live under `{root}/v1`.
    pub root: String,
    /// The chat URL, exactly.
    pub chat: String,
    pub model: String,
}

/// The route for `model` (the part after `huggingface/`) with this `api_base`.
pub fn route(model: &str, api_base: Option<&str>, env: Env<'_>) -> Route {
    if let Some(base) = configured_base(api_base, env) {
        let chat = chat_url(&base);
        let root = chat.strip_suffix("/chat/completions").unwrap_or(&chat);
        let root = root.strip_suffix("/v1").unwrap_or(root).to_string();
        return Route { root, chat, model: model.to_string() };
    }
    // Three segments or more: the first names the inference provider.
    let model = match model.split_once('/') {
        Some((provider, rest)) if rest.contains('/') => format!("{rest}:{provider}"),
        _ => model.to_string(),
    };
    Route { root: ROUTER.to_string(), chat: format!("{ROUTER}/v1/chat/completions"), model }
}

/// LiteLLM's `_build_chat_completion_url`.
fn chat_url(base: &str) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    if url.ends_with("/v1") {
        url.push_str("/chat/completions");
    }
    if !url.ends_with("/chat/completions") {
        url.push_str("/v1/chat/completions");
    }
    url
}

/// The `api_base` a deployment names, else the environment's.
fn configured_base(api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| BASE_ENV.iter().find_map(|n| env(n)))
}

/// A `huggingface/` deployment. Embeddings are translated to feature extraction, unless the
/// base is an OpenAI-compatible `/v1`; routes other than chat and embeddings go to the same
/// server's OpenAI paths (`{root}/v1/…`), which TGI, TEI and vLLM serve.
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let route = route(&p.model.upstream, p.api_base, env);
    let uri = |url: String| -> Result<Uri, String> { p.uri(url) };
    let other = |e: Endpoint| uri(format!("{}/v1{}", route.root, e.path()));
    let auth = p
        .api_key
        .map(str::to_string)
        .or_else(|| KEY_ENV.iter().find_map(|n| env(n)))
        .map(|k| p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}")))
        .transpose()?;
    let base = configured_base(p.api_base, env);
    let translates = match base.as_deref().map(|b| b.trim_end_matches('/')) {
        Some(b) if b.ends_with("/v1") => None,
        base => Some(Box::new(crate::catalogue::Translated::HuggingFace(embed::Embed::new(p, base, auth.clone())?))),
    };
    let mut t = OpenAi::at(
        p,
        &route.model,
        |e| match e {
            Endpoint::Chat => uri(route.chat.clone()),
            other_route => other(other_route),
        },
        auth,
    )?;
    t.translates = translates;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_router_names_the_provider_with_a_suffix() {
        let r = route("together/deepseek-ai/DeepSeek-R1", None, &none);
        assert_eq!(r.chat, "https://router.huggingface.co/v1/chat/completions");
        assert_eq!(r.model, "deepseek-ai/DeepSeek-R1:together");
        let r = route("meta-llama/Llama-3.3-70B-Instruct", None, &none);
        assert_eq!(r.model, "meta-llama/Llama-3.3-70B-Instruct");
    }

    #[test]
    fn an_endpoint_gets_the_openai_path_once() {
        let r = route("tgi", Some("https://x.endpoints.huggingface.cloud"), &none);
        assert_eq!(r.chat, "https://x.endpoints.huggingface.cloud/v1/chat/completions");
        assert_eq!(r.root, "https://x.endpoints.huggingface.cloud");
        assert_eq!(r.model, "tgi");
        assert_eq!(route("m", Some("http://h:8080/v1/"), &none).chat, "http://h:8080/v1/chat/completions");
        assert_eq!(route("m", Some("http://h/v1/chat/completions"), &none).chat, "http://h/v1/chat/completions");
        let env = |k: &str| (k == "HUGGINGFACE_API_BASE").then(|| "http://tgi:80".to_string());
        assert_eq!(route("a/b/c", None, &env).chat, "http://tgi:80/v1/chat/completions");
        assert_eq!(route("a/b/c", None, &env).model, "a/b/c", "a server of one's own takes the name as written");
    }
}
