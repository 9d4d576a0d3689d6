//! Google's Application Default Credentials, as google-auth finds them: the key LiteLLM's
//! `vertex_credentials` gives (a path or the JSON) or `GOOGLE_APPLICATION_CREDENTIALS`; else
//! gcloud's user credentials (`application_default_credentials.json` under `CLOUDSDK_CONFIG` or
//! `~/.config/gcloud`); else the GCE metadata server (GKE workload identity), at
//! `GCE_METADATA_HOST` when set. A key file is a service account (an RS256 JWT exchanged at its
//! `token_uri`, [`google_auth`]) or an `authorized_user` (its refresh token exchanged at the
//! OAuth token endpoint).

pub mod google_auth;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;

use crate::cache::{BoxFuture, Cached, Fresh, Source};
use crate::env::Env;
use crate::fetch::{self, form_encode};
use google_auth::{parse_token_response, ServiceAccount, DEFAULT_TOKEN_URI};

/// An `Authorization: Bearer …` value for Google APIs, cached: `get().await` before each call.
pub type GoogleToken = Cached<Adc>;

/// The token endpoint may be slow; it is off the request path once a token is cached.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
const METADATA_HOST: &str = "metadata.google.internal";

/// What to set, for the error that ends the chain.
const WHAT_TO_SET: &str = "set litellm_params.vertex_credentials (a key file's path or its JSON) or GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or run on GCE/GKE with a service account (workload identity)";

/// Application Default Credentials with `explicit` (`vertex_credentials`, may be empty) first.
#[derive(Debug)]
pub struct Adc {
    explicit: String,
    env: Env,
}

/// The cached token for `explicit` (a key's path or JSON; empty: the rest of the chain).
pub fn token(explicit: String, env: Env) -> Arc<GoogleToken> {
    Cached::new(Adc { explicit, env })
}

/// As [`token`], refreshing `early` before expiry (tests).
pub fn token_with_margin(explicit: String, env: Env, early: Duration) -> Arc<GoogleToken> {
    Cached::with_margin(Adc { explicit, env }, early)
}

impl Source for Adc {
    type Value = HeaderValue;

    fn fetch(&self) -> BoxFuture<'_, Result<Fresh<HeaderValue>, String>> {
        Box::pin(async move {
            let (token, expires_in) = self.access_token().await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the Google token is not a valid header value".to_string())?;
            value.set_sensitive(true);
            Ok(Fresh { value, lifetime: Some(Duration::from_secs(expires_in)) })
        })
    }
}

impl Adc {
    async fn access_token(&self) -> Result<(String, u64), String> {
        let explicit = self.explicit.trim();
        if !explicit.is_empty() {
            return from_key(explicit, "vertex_credentials").await;
        }
        if let Some(path) = self.env.get("GOOGLE_APPLICATION_CREDENTIALS") {
            return from_key(path, "GOOGLE_APPLICATION_CREDENTIALS").await;
        }
        let gcloud = match self.env.get("CLOUDSDK_CONFIG") {
            Some(dir) => Some(std::path::PathBuf::from(dir).join("application_default_credentials.json")),
            None => self.env.home(".config/gcloud/application_default_credentials.json"),
        };
        if let Some(path) = gcloud.filter(|p| p.is_file()) {
            return from_key(&path.display().to_string(), "gcloud's application default credentials").await;
        }
        let host = self.env.get("GCE_METADATA_HOST").unwrap_or(METADATA_HOST).trim();
        metadata_token(host).await.map_err(|e| format!("no Google credentials found: {WHAT_TO_SET}. (Nothing else is configured, so the metadata server was asked: {e})"))
    }
}

/// A key file's path or its JSON (`setting` names where it came from, for errors).
async fn from_key(path_or_json: &str, setting: &str) -> Result<(String, u64), String> {
    let text = if path_or_json.starts_with('{') {
        path_or_json.to_string()
    } else {
        crate::aws::read_bounded(path_or_json).map_err(|e| {
            format!("cannot read {setting} file {path_or_json:?}: {e}; check the path and its permissions")
        })?
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        format!("{setting} is not valid JSON ({e}); expected a key file from Google Cloud IAM or gcloud")
    })?;
    match v.get("type").and_then(Value::as_str) {
        Some("authorized_user") => refresh_user(&v, setting).await,
        Some("service_account") | None => {
            let account = ServiceAccount::from_json(&text)
                .map_err(|e| format!("cannot use the service-account key ({setting}): {}", e.trim_end_matches('.')))?;
            let form = account.token_request_body(crate::time::now_unix())?;
            exchange(&account.token_uri, form, "the service account's assertion").await
        }
        Some(other) => Err(format!("{setting} has type {other:?}; sluice supports service_account and authorized_user keys (and the metadata server)")),
    }
}

/// gcloud's user credentials: the refresh-token grant.
async fn refresh_user(v: &Value, setting: &str) -> Result<(String, u64), String> {
    let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(id), Some(secret), Some(refresh)) = (field("client_id"), field("client_secret"), field("refresh_token"))
    else {
        return Err(format!("{setting} (authorized_user) needs client_id, client_secret and refresh_token; run `gcloud auth application-default login` again"));
    };
    let form = format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        form_encode(id),
        form_encode(secret),
        form_encode(refresh)
    );
    exchange(field("token_uri").unwrap_or(DEFAULT_TOKEN_URI), form, "the user's refresh token").await
}

/// A form POST to an OAuth token endpoint.
async fn exchange(token_uri: &str, form: String, what: &str) -> Result<(String, u64), String> {
    let headers = [(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))];
    let answer = fetch::fetch(Method::POST, token_uri, &headers, Bytes::from(form), TOKEN_TIMEOUT)
        .await
        .map_err(|e| format!("the Google token endpoint: {e}"))?;
    if !answer.status.is_success() {
        let parsed = parse_token_response(&answer.body).err();
        return Err(format!(
            "the Google token endpoint refused {what} ({}): {}",
            answer.status,
            parsed.unwrap_or_else(|| fetch::preview(&answer.body))
        ));
    }
    parse_token_response(&answer.body)
}

/// The metadata server's token for the instance's (or the GKE workload's) service account.
async fn metadata_token(host: &str) -> Result<(String, u64), String> {
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
    let headers = [(HeaderName::from_static("metadata-flavor"), HeaderValue::from_static("Google"))];
    let answer = fetch::fetch(Method::GET, &url, &headers, Bytes::new(), METADATA_TIMEOUT).await?;
    if !answer.status.is_success() {
        return Err(format!("{url} answered {}: {}", answer.status, fetch::preview(&answer.body)));
    }
    parse_token_response(&answer.body).map_err(|e| format!("{url}: {e}"))
}
