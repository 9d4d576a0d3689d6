//! EC2's instance metadata service, version 2: a session token from `PUT /latest/api/token`,
//! then the instance profile's role name and its credentials, each GET carrying the token.
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it (tests, IPv6 `http://[fd00:ec2::254]`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::{from_json, Credentials};
use crate::cache::Fresh;
use crate::env::Env;
use crate::fetch;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Off EC2 nothing answers; the SDKs wait about a second per try.
const TIMEOUT: Duration = Duration::from_secs(2);
const TOKEN_TTL: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const TOKEN: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");

pub(super) async fn credentials(env: &Env) -> Result<Fresh<Arc<Credentials>>, String> {
    let base = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or(DEFAULT_ENDPOINT).trim().trim_end_matches('/');
    let token = fetch::fetch(
        Method::PUT,
        &format!("{base}/latest/api/token"),
        &[(TOKEN_TTL, HeaderValue::from_static("21600"))],
        Bytes::new(),
        TIMEOUT,
    )
    .await?;
    if !token.status.is_success() {
        return Err(format!("the IMDSv2 token request to {base} answered {}", token.status));
    }
    let token = String::from_utf8_lossy(&token.body).trim().to_string();
    let auth = [(TOKEN, fetch::secret_header(&token, "the IMDSv2 session token")?)];
    let list = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = fetch::fetch(Method::GET, &list, &auth, Bytes::new(), TIMEOUT).await?;
    if !roles.status.is_success() {
        return Err(format!("{list} answered {} (does the instance have an instance profile?)", roles.status));
    }
    let roles = String::from_utf8_lossy(&roles.body).to_string();
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| format!("{list} lists no role: the instance has no instance profile"))?;
    if role.contains(['/', '?', '#']) {
        return Err(format!("{list} answered a role name that is not one"));
    }
    let url = format!("{list}{role}");
    let answer = fetch::fetch(Method::GET, &url, &auth, Bytes::new(), TIMEOUT).await?;
    if !answer.status.is_success() {
        return Err(format!("{url} answered {}", answer.status));
    }
    from_json(&answer.body, "the EC2 instance metadata service")
}
