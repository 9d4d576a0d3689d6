//! Vertex AI's access tokens, as a [`TokenSource`] the providers can ask: Google's Application
//! Default Credentials (`sluice_credentials::gcp`) — the deployment's `vertex_credentials` (a
//! service-account or gcloud user key, path or JSON) or `GOOGLE_APPLICATION_CREDENTIALS`, else
//! gcloud's user credentials file, else the GCE/GKE metadata server — cached, refreshed five
//! minutes before expiry by one fetch for all the requests that need it.

use crate::config::Env;
use http::HeaderValue;
use sluice_credentials::gcp::{self, GoogleToken};
use sluice_providers::TokenSource;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Where the token comes from; it is looked for on first use (like LiteLLM), so a config naming
/// a file that is not there yet still loads.
pub struct VertexToken {
    token: Arc<GoogleToken>,
}

impl VertexToken {
    /// `source` is `vertex_credentials` (a path or inline JSON) or GOOGLE_APPLICATION_CREDENTIALS;
    /// empty, the rest of the chain is asked.
    pub fn new(source: String, env: &Env) -> Self {
        let env = sluice_credentials::Env::capture(&|name| env.get(name));
        VertexToken { token: gcp::token(source, env) }
    }

    /// An `Authorization: Bearer …` value, fetching a new token when the cached one is near expiry.
    pub async fn token(&self) -> Result<HeaderValue, String> {
        self.token.get().await
    }
}

impl TokenSource for VertexToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<HeaderValue, String>> + Send + '_>> {
        Box::pin(VertexToken::token(self))
    }
}
