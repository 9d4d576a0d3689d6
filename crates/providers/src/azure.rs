//! Azure OpenAI: OpenAI's wire format behind per-deployment URLs with an `api-version` query and
//! an `api-key` header (or a Microsoft Entra `azure_ad_token` as a bearer token).

use sluice_wire::sniff::Endpoint;

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
    if v1 {
        if api_version == "preview" {
            return format!("{prefix}{path}?api-version=preview");
        }
        return format!("{prefix}{path}");
    }
    format!("{prefix}{path}?api-version={api_version}")
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
    }
}
