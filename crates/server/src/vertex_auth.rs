//! Vertex AI access tokens from a service-account key: an RS256 JWT exchanged at the key's
//! `token_uri`, cached, refreshed four minutes before expiry, and refreshed once for all the
//! requests that need it at the same moment.

use crate::proxy::body::ChainBody;
use crate::proxy::upstream::Client;
use bytes::Bytes;
use http::{header, HeaderValue};
use http_body_util::BodyExt;
use sluice_providers::google_auth::{self, ServiceAccount};
use sluice_providers::TokenSource;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Refresh this long before the token expires, as google-auth does.
const REFRESH_EARLY: Duration = Duration::from_secs(240);

/// Where the key comes from; it is read on first use (like LiteLLM), so a config naming a file
/// that is not there yet still loads.
pub struct VertexToken {
    source: String,
    /// The gateway's upstream client, which also reaches the key's token endpoint.
    client: Client,
    cached: RwLock<Option<(HeaderValue, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl VertexToken {
    /// `source` is `vertex_credentials` (a path or inline JSON) or GOOGLE_APPLICATION_CREDENTIALS.
    pub fn new(source: String, client: Client) -> Self {
        VertexToken { source, client, cached: RwLock::new(None), refresh: tokio::sync::Mutex::new(()) }
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().filter(|(_, refresh_at)| Instant::now() < *refresh_at).map(|(v, _)| v.clone())
    }

    /// An `Authorization: Bearer …` value, fetching a new token when the cached one is near expiry.
    pub async fn token(&self) -> Result<HeaderValue, String> {
        let client = &self.client;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _one_refresh = self.refresh.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        if self.source.is_empty() {
            return Err("no service-account key is configured. Set litellm_params.vertex_credentials (a path or the key's JSON) or GOOGLE_APPLICATION_CREDENTIALS.".into());
        }
        let account = ServiceAccount::load(&self.source)
            .map_err(|e| {
            let e = e.trim_end_matches('.');
            format!("cannot use the Vertex service-account key: {e}. Set litellm_params.vertex_credentials (a path or the key's JSON) or GOOGLE_APPLICATION_CREDENTIALS.")
        })?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let form = account.token_request_body(now)?;
        let uri: http::Uri = account
            .token_uri
            .parse()
            .map_err(|_| format!("the key's token_uri {:?} is not a URL", account.token_uri))?;
        let mut req = http::Request::new(ChainBody::full(Bytes::from(form)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri;
        req.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
            .await
            .map_err(|_| "the Google token endpoint did not answer within 30 s".to_string())?
            .map_err(|e| format!("cannot reach the Google token endpoint: {e}"))?;
        let status = resp.status();
        let body = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
            .await
            .map_err(|_| "the Google token endpoint stalled".to_string())?
            .map_err(|e| format!("the Google token endpoint broke off: {e}"))?
            .to_bytes();
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("the Google token endpoint refused the key ({status}): {detail}"));
        }
        let (token, expires_in) = google_auth::parse_token_response(&body)?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token endpoint returned a token that is not a valid header".to_string())?;
        value.set_sensitive(true);
        let refresh_at = Instant::now() + Duration::from_secs(expires_in).saturating_sub(REFRESH_EARLY);
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some((value.clone(), refresh_at));
        Ok(value)
    }
}

impl TokenSource for VertexToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<HeaderValue, String>> + Send + '_>> {
        Box::pin(VertexToken::token(self))
    }
}
