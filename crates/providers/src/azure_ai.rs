//! Azure AI Foundry (`azure_ai/`): serverless and Foundry model deployments speaking OpenAI's chat
//! format at their own endpoint, as LiteLLM's `AzureAIStudioConfig` addresses them. The client's
//! bytes are forwarded with only `model` rewritten, like any OpenAI-compatible deployment; only
//! the addressing and the credential header differ:
//!
//! - the URL is `api_base` (or `AZURE_AI_API_BASE`) plus `/chat/completions` — or
//!   `/models/chat/completions` on a Foundry `*.services.ai.azure.com` resource — without doubling
//!   a path the base already ends in; `api_version`, when set, becomes the `api-version` query;
//! - the key (`api_key`, else `AZURE_AI_API_KEY`) goes in `api-key` on Azure's own hosts
//!   (`*.services.ai.azure.com`, `*.openai.azure.com`) and as a bearer token everywhere else
//!   (serverless `*.models.ai.azure.com`, `*.inference.ai.azure.com`).

use http::{HeaderName, Uri};
use sluice_wire::sniff::Endpoint;

use crate::openai::OpenAi;
use crate::provider::{Env, Params};

pub const BASE_ENV: &[&str] = &["AZURE_AI_API_BASE"];
pub const KEY_ENV: &[&str] = &["AZURE_AI_API_KEY"];

/// The base a deployment calls: `api_base`, else `AZURE_AI_API_BASE`.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    api_base.filter(|b| !b.is_empty()).map(str::to_string).or_else(|| BASE_ENV.iter().find_map(|n| env(n)))
}

/// The host of `url`, lower-cased, without port or credentials.
fn host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    authority.split(':').next().unwrap_or_default().to_ascii_lowercase()
}

/// Azure's own hosts take the key in `api-key`; the serverless endpoints take a bearer token.
pub fn uses_api_key_header(base: &str) -> bool {
    let host = host(base);
    host.ends_with(".services.ai.azure.com") || host.ends_with(".openai.azure.com")
}

/// `path` appended to `base`'s path, merged where the base already ends in its first segments
/// (`…/models` + `/models/chat/completions` is `…/models/chat/completions`, not `/models/models/…`),
/// as LiteLLM's `_add_path_to_api_base` does; the base's query is kept.
pub fn add_path(base: &str, path: &str) -> String {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let (origin, base_path) = match base.split_once("://") {
        Some((scheme, rest)) => match rest.find('/') {
            Some(i) => (&base[..scheme.len() + 3 + i], &rest[i..]),
            None => (base, ""),
        },
        None => ("", base),
    };
    let base_segments: Vec<&str> = base_path.split('/').filter(|s| !s.is_empty()).collect();
    let end_segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // The longest tail of the base that is a head of the path: those segments appear once.
    let keep = (0..base_segments.len())
        .find(|&i| {
            let tail = &base_segments[i..];
            tail.len() <= end_segments.len() && tail == &end_segments[..tail.len()]
        })
        .unwrap_or(base_segments.len());
    let mut url = String::with_capacity(base.len() + path.len() + 1);
    url.push_str(origin);
    for s in base_segments[..keep].iter().chain(end_segments.iter()) {
        url.push('/');
        url.push_str(s);
    }
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The URL for `endpoint`: Foundry resources serve the model inference API under `/models`.
pub fn url(base: &str, endpoint: Endpoint, api_version: Option<&str>) -> String {
    let foundry = host(base).ends_with(".services.ai.azure.com");
    let path = endpoint.path();
    let mut url = if foundry { add_path(base, &format!("/models{path}")) } else { add_path(base, path) };
    if let Some(v) = api_version.filter(|v| !v.is_empty()) {
        if !url.contains("api-version=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("api-version=");
            url.push_str(v);
        }
    }
    url
}

/// An `azure_ai/` deployment. As in LiteLLM, one without an endpoint fails its own requests, not
/// the start.
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let path = p.path();
    let base = base(p.api_base, env).ok_or_else(|| {
        format!(
            "{path}.api_base: missing; set it (or AZURE_AI_API_BASE) to your Azure AI endpoint, e.g. \
             https://<name>.<region>.models.ai.azure.com or https://<resource>.services.ai.azure.com"
        )
    })?;
    let uri = |e: Endpoint| -> Result<Uri, String> {
        url(&base, e, p.api_version).parse::<Uri>().map_err(|e| format!("{path}.api_base: not a valid URL ({e})"))
    };
    let key = p.api_key.map(str::to_string).or_else(|| KEY_ENV.iter().find_map(|n| env(n)));
    let auth = match key {
        Some(key) if uses_api_key_header(&base) => Some(p.secret_header(HeaderName::from_static("api-key"), &key)?),
        Some(key) => Some(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {key}"))?),
        None => None,
    };
    OpenAi::at(p, &p.model.upstream, uri, auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_added_once() {
        assert_eq!(
            add_path("https://h.models.ai.azure.com", "/chat/completions"),
            "https://h.models.ai.azure.com/chat/completions"
        );
        assert_eq!(
            add_path("https://h.models.ai.azure.com/", "/chat/completions"),
            "https://h.models.ai.azure.com/chat/completions"
        );
        assert_eq!(
            add_path("https://h.models.ai.azure.com/chat/completions", "/chat/completions"),
            "https://h.models.ai.azure.com/chat/completions"
        );
        assert_eq!(
            add_path("https://r.services.ai.azure.com/models", "/models/chat/completions"),
            "https://r.services.ai.azure.com/models/chat/completions"
        );
        assert_eq!(add_path("http://127.0.0.1:9/v1", "/chat/completions"), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(add_path("http://h/x?a=1", "/embeddings"), "http://h/x/embeddings?a=1");
    }

    #[test]
    fn foundry_resources_use_the_models_path_and_the_api_key_header() {
        let foundry = "https://r.services.ai.azure.com";
        assert_eq!(
            url(foundry, Endpoint::Chat, Some("2024-05-01-preview")),
            "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"
        );
        assert_eq!(
            url(
                "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
                Endpoint::Chat,
                Some("x")
            ),
            "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"
        );
        assert_eq!(
            url("https://m.eastus2.models.ai.azure.com", Endpoint::Embeddings, None),
            "https://m.eastus2.models.ai.azure.com/embeddings"
        );
        assert!(uses_api_key_header(foundry));
        assert!(uses_api_key_header("https://x.openai.azure.com/openai/v1"));
        assert!(!uses_api_key_header("https://m.eastus2.models.ai.azure.com"));
        assert!(!uses_api_key_header("http://127.0.0.1:8080/services.ai.azure.com"));
    }
}
