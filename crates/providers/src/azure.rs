//! Azure OpenAI: OpenAI's wire format behind per-deployment URLs with an `api-version` query and
//! an `api-key` header (or a Microsoft Entra `azure_ad_token` as a bearer token).

use http::{HeaderName, Uri};
use sluice_wire::sniff::Endpoint;

use crate::openai::OpenAi;
use crate::provider::{Env, Params};

/// LiteLLM's default `api_version` for Azure (its CLI default).
pub const DEFAULT_API_VERSION: &str = "2024-07-01-preview";

/// Environment variables for the base URL, key and version when the deployment sets none.
pub const BASE_ENV: &[&str] = &["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"];
pub const KEY_ENV: &[&str] = &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"];
pub const VERSION_ENV: &[&str] = &["AZURE_API_VERSION", "OPENAI_API_VERSION"];

/// The URL for `endpoint` on deployment `deployment`.
///
/// Versions `v1`, `latest` and `preview` select Azure's newer `/openai/v1/` surface, where the
/// deployment is named by the body's `model`; every other version uses
/// `/openai/deployments/{deployment}/…?api-version=…`. A base that already contains `/openai/`
/// is taken as the full prefix.
pub fn url(base: &str, deployment: &str, endpoint: Endpoint, api_version: &str) -> String {
    let base = base.trim_end_matches('/');
    let v1 = matches!(api_version, "v1" | "latest" | "preview");
    let prefix = if base.contains("/openai/") || base.ends_with("/openai") {
        base.to_string()
    } else if v1 {
        format!("{base}/openai/v1")
    } else {
        format!("{base}/openai/deployments/{deployment}")
    };
    let path = endpoint.path();
    // The Responses API is not per deployment: the body's `model` names the deployment.
    if endpoint == Endpoint::Responses && !v1 {
        let prefix = prefix.split("/openai/deployments/").next().unwrap_or(&prefix);
        let prefix = prefix.strip_suffix("/openai").unwrap_or(prefix);
        return format!("{prefix}/openai{path}?api-version={api_version}");
    }
    if v1 {
        if api_version == "preview" {
            return format!("{prefix}{path}?api-version=preview");
        }
        return format!("{prefix}{path}");
    }
    format!("{prefix}{path}?api-version={api_version}")
}

/// Where an Azure deployment lives and how it authenticates, from `litellm_params` and the
/// environment (shared by `azure/` and `azure_text/`).
pub struct Resolved {
    pub base: String,
    pub version: String,
    /// `Authorization: Bearer <azure_ad_token>`, else `api-key`.
    pub auth: Option<(HeaderName, http::HeaderValue)>,
}

pub fn resolve(p: &Params<'_>, env: Env<'_>) -> Result<Resolved, String> {
    let path = p.path();
    let first_env = |names: &[&str]| names.iter().find_map(|n| env(n));
    let base = p.api_base.map(str::to_string).or_else(|| first_env(BASE_ENV)).ok_or_else(|| {
        format!(
            "{path}.api_base: missing; set it to your Azure OpenAI endpoint, e.g. https://<resource>.openai.azure.com"
        )
    })?;
    let version = p
        .api_version
        .map(str::to_string)
        .or_else(|| first_env(VERSION_ENV))
        .unwrap_or_else(|| DEFAULT_API_VERSION.into());
    let auth = match (p.azure_ad_token, p.api_key.map(str::to_string).or_else(|| first_env(KEY_ENV))) {
        (Some(token), _) => Some(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {token}"))?),
        (None, Some(key)) => Some(p.secret_header(HeaderName::from_static("api-key"), &key)?),
        (None, None) => None,
    };
    Ok(Resolved { base, version, auth })
}

/// An Azure deployment: OpenAI's format at its deployment URLs. As LiteLLM does, one missing its
/// endpoint fails its own requests, not the start.
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let path = p.path();
    let Resolved { base, version, auth } = resolve(p, env)?;
    let deployment = &p.model.upstream;
    let uri = |e: Endpoint| -> Result<Uri, String> {
        url(&base, deployment, e, &version)
            .parse::<Uri>()
            .map_err(|e| format!("{path}.api_base: not a valid URL ({e})"))
    };
    let mut t = OpenAi::at(p, deployment, uri, auth)?;
    t.responses_native = true;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_deployment_and_v1_urls() {
        assert_eq!(
            url("https://r.openai.azure.com/", "gpt4o", Endpoint::Chat, "2024-10-21"),
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "emb", Endpoint::Embeddings, DEFAULT_API_VERSION),
            "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-07-01-preview"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "gpt4o", Endpoint::Chat, "v1"),
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "gpt4o", Endpoint::Chat, "preview"),
            "https://r.openai.azure.com/openai/v1/chat/completions?api-version=preview"
        );
        assert_eq!(
            url("https://r.openai.azure.com/", "gpt4o", Endpoint::Responses, "2025-03-01-preview"),
            "https://r.openai.azure.com/openai/responses?api-version=2025-03-01-preview"
        );
        assert_eq!(
            url("https://r.openai.azure.com/openai/deployments/x", "gpt4o", Endpoint::Responses, "2025-04-01-preview"),
            "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "dall-e-2", Endpoint::ImageEdits, "2024-02-01"),
            "https://r.openai.azure.com/openai/deployments/dall-e-2/images/edits?api-version=2024-02-01"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "dall-e-2", Endpoint::ImageVariations, "2024-02-01"),
            "https://r.openai.azure.com/openai/deployments/dall-e-2/images/variations?api-version=2024-02-01"
        );
        assert_eq!(
            url("https://r.openai.azure.com", "gpt4o", Endpoint::Responses, "v1"),
            "https://r.openai.azure.com/openai/v1/responses"
        );
    }
}
