//! ECS (and EKS Pod Identity) container credentials: a GET to the agent's endpoint —
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on 169.254.170.2, or
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` — with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]` as its
//! `Authorization` when set.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::{from_json, read_token_file, Credentials};
use crate::cache::Fresh;
use crate::env::Env;
use crate::fetch;

const ECS_HOST: &str = "http://169.254.170.2";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoint the environment names, or `None` when it names none.
pub(super) fn endpoint(env: &Env) -> Result<Option<String>, String> {
    if let Some(relative) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let relative = relative.trim();
        let sep = if relative.starts_with('/') { "" } else { "/" };
        return Ok(Some(format!("{ECS_HOST}{sep}{relative}")));
    }
    let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").map(str::trim) else { return Ok(None) };
    let uri: http::Uri = full.parse().map_err(|_| "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL".to_string())?;
    // As the SDKs: plain HTTP only to the container agents' own addresses or this machine.
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let local = host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || matches!(host, "169.254.170.2" | "169.254.170.23" | "fd00:ec2::23");
    match uri.scheme_str() {
        Some("https") => Ok(Some(full.to_string())),
        Some("http") if local => Ok(Some(full.to_string())),
        _ => Err("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://, or http:// to a loopback address or the container agent (169.254.170.2, 169.254.170.23)".into()),
    }
}

/// The container's role credentials, or `None` when this is not a container with a role.
pub(super) async fn credentials(env: &Env) -> Result<Option<Fresh<Arc<Credentials>>>, String> {
    let Some(url) = endpoint(env)? else { return Ok(None) };
    let token = match (env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
    {
        // Read at each fetch: the agent rotates the file.
        (Some(file), _) => Some(read_token_file(file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")?),
        (None, Some(token)) => Some(token.to_string()),
        (None, None) => None,
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    if let Some(token) = token {
        headers.push((http::header::AUTHORIZATION, fetch::secret_header(&token, "the container authorization token")?));
    }
    let what = "the ECS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*_URI)";
    let answer =
        fetch::fetch(Method::GET, &url, &headers, Bytes::new(), TIMEOUT).await.map_err(|e| format!("{what}: {e}"))?;
    if !answer.status.is_success() {
        return Err(format!("{what} answered {}: {}", answer.status, fetch::preview(&answer.body)));
    }
    from_json(&answer.body, what).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let rel = Env::from_pairs(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc")]);
        assert_eq!(endpoint(&rel).unwrap().as_deref(), Some("http://169.254.170.2/v2/credentials/abc"));
        let full = Env::from_pairs(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")]);
        assert!(endpoint(&full).unwrap().is_some());
        let local = Env::from_pairs(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds")]);
        assert!(endpoint(&local).unwrap().is_some());
        let far = Env::from_pairs(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds")]);
        assert!(endpoint(&far).is_err());
        assert_eq!(endpoint(&Env::default()).unwrap(), None);
    }
}
