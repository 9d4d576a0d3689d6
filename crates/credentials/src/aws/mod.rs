//! AWS credentials: the provider chain the AWS SDKs walk, and LiteLLM's assume-role on top.
//!
//! [`Settings`] are what a deployment (`litellm_params.aws_*`) or the S3 logger
//! (`s3_callback_params.s3_aws_*`) says; [`credentials`] makes the cached handle that signs with
//! them. Which source serves is decided at each fetch, in LiteLLM's order first —
//!
//! 1. `aws_web_identity_token` + `aws_role_name`: STS `AssumeRoleWithWebIdentity` with that token;
//! 2. `aws_role_name`: STS `AssumeRole`, signed with the base credentials below;
//!
//! — and for the base credentials, the SDKs' order: keys given in the config; a profile named in
//! the config (`aws_profile_name`); `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+
//! `AWS_SESSION_TOKEN`); `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (IRSA); the shared files'
//! profile (`AWS_PROFILE`, else `default`); ECS container credentials; EC2's IMDSv2. The first
//! source that is configured answers; when it fails, the error names it (the chain does not fall
//! through to the next, as the SDKs do not).

mod container;
mod imds;
mod profile;
mod sts;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cache::{BoxFuture, Cached, Fresh, Source, MAX_LIFETIME};
use crate::env::Env;
use crate::time;

pub use sluice_sigv4::Credentials;

/// The cached credentials of one [`Settings`]: `get().await` before each signature.
pub type AwsCredentials = Cached<Chain>;

/// What the config says about where AWS credentials come from. All optional: with nothing set,
/// the SDKs' chain decides.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Keys given outright (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`).
    pub keys: Option<Credentials>,
    /// `aws_profile_name`: this profile of the shared files, and no other source.
    pub profile: Option<String>,
    /// `aws_role_name`: a role ARN assumed with the base credentials (or the web identity token).
    pub role_arn: Option<String>,
    /// `aws_session_name`.
    pub session_name: Option<String>,
    /// `aws_web_identity_token`: an OIDC token to assume `role_arn` with.
    pub web_identity_token: Option<String>,
    /// `aws_sts_endpoint`: where STS is (tests, private endpoints).
    pub sts_endpoint: Option<String>,
    /// The region, for STS's regional endpoint and its signature.
    pub region: Option<String>,
}

/// Values are secrets: only which settings are set is shown.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("keys", &self.keys)
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("web_identity_token", &self.web_identity_token.as_ref().map(|_| "<redacted>"))
            .field("sts_endpoint", &self.sts_endpoint)
            .field("region", &self.region)
            .finish()
    }
}

/// The chain of one [`Settings`] in one environment.
#[derive(Debug)]
pub struct Chain {
    settings: Settings,
    env: Env,
}

/// The cached credentials for `settings`, read from `env`.
pub fn credentials(settings: Settings, env: Env) -> Arc<AwsCredentials> {
    Cached::new(Chain { settings, env })
}

/// As [`credentials`], but one cache for every caller with the same settings and environment
/// (deployments on one role, the S3 logger beside them): one fetch and one refresh for them all.
/// Only caches still in use are kept.
pub fn shared(settings: Settings, env: Env) -> Arc<AwsCredentials> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, Weak};
    static KEPT: OnceLock<Mutex<HashMap<String, Weak<AwsCredentials>>>> = OnceLock::new();
    let key = fingerprint(&settings, &env);
    let mut kept = KEPT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    kept.retain(|_, c| c.strong_count() > 0);
    if let Some(c) = kept.get(&key).and_then(Weak::upgrade) {
        return c;
    }
    let c = credentials(settings, env);
    kept.insert(key, Arc::downgrade(&c));
    c
}

/// Everything that decides which credentials a chain finds, as one string (held in memory only,
/// as the settings themselves are).
fn fingerprint(s: &Settings, env: &Env) -> String {
    let keys = s.keys.as_ref().map(|k| (&k.access_key_id, &k.secret_access_key, &k.session_token));
    let parts = (keys, &s.profile, &s.role_arn, &s.session_name, &s.web_identity_token, &s.sts_endpoint, &s.region);
    format!("{parts:?}\u{0}{}", env.fingerprint())
}

/// As [`credentials`], refreshing `early` before expiry (tests).
pub fn credentials_with_margin(settings: Settings, env: Env, early: Duration) -> Arc<AwsCredentials> {
    Cached::with_margin(Chain { settings, env }, early)
}

/// How long a credential call may take (IMDS's own is shorter: off EC2 nothing answers it).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The role session's length asked of STS (LiteLLM's and the SDKs' default).
const ROLE_SECONDS: u64 = 3600;

/// What to set when no source is configured, for every error that ends the chain.
const WHAT_TO_SET: &str = "set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), aws_profile_name (or AWS_PROFILE), AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or run where the platform gives a role (ECS task role, EC2 instance profile)";

impl Source for Chain {
    type Value = Arc<Credentials>;

    fn fetch(&self) -> BoxFuture<'_, Result<Fresh<Arc<Credentials>>, String>> {
        Box::pin(async move {
            let s = &self.settings;
            let fresh = match (&s.role_arn, &s.web_identity_token) {
                (Some(role), Some(token)) => {
                    let session = self.session_name(s.session_name.as_deref());
                    sts::assume_role_with_web_identity(&self.sts(), role, &session, token)
                        .await
                        .map_err(|e| format!("aws_role_name with aws_web_identity_token: {e}"))?
                }
                (None, Some(_)) => {
                    return Err(
                        "aws_web_identity_token is set without aws_role_name: set the role to assume with it".into()
                    )
                }
                (Some(role), None) => {
                    let base = self.base().await?;
                    let session = self.session_name(s.session_name.as_deref());
                    sts::assume_role(&self.sts(), &base.value, role, &session)
                        .await
                        .map_err(|e| format!("aws_role_name (STS AssumeRole): {e}"))?
                }
                (None, None) => self.base().await?,
            };
            Ok(fresh)
        })
    }
}

impl Chain {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn region(&self) -> Option<&str> {
        self.settings.region.as_deref().or(self.env.get("AWS_REGION")).or(self.env.get("AWS_DEFAULT_REGION"))
    }

    fn sts(&self) -> sts::Endpoint {
        sts::Endpoint::new(self.settings.sts_endpoint.as_deref(), self.region(), &self.env)
    }

    fn session_name(&self, given: Option<&str>) -> String {
        given.map(str::to_string).unwrap_or_else(|| format!("sluice-{}", time::now_unix()))
    }

    /// The base credentials: the SDKs' chain.
    async fn base(&self) -> Result<Fresh<Arc<Credentials>>, String> {
        let env = &self.env;
        if let Some(keys) = &self.settings.keys {
            return Ok(forever(keys.clone()));
        }
        if let Some(name) = &self.settings.profile {
            return profile::credentials(env, name, &self.sts())
                .await?
                .ok_or_else(|| profile::missing(env, name, "aws_profile_name"));
        }
        if let (Some(id), Some(secret)) = (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
            return Ok(forever(Credentials {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
            }));
        }
        if let (Some(file), Some(role)) = (env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), env.get("AWS_ROLE_ARN")) {
            let session = self.session_name(env.get("AWS_ROLE_SESSION_NAME"));
            let token = read_token_file(file, "AWS_WEB_IDENTITY_TOKEN_FILE")?;
            return sts::assume_role_with_web_identity(&self.sts(), role, &session, &token)
                .await
                .map_err(|e| format!("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN): {e}"));
        }
        let named = env.get("AWS_PROFILE").or(env.get("AWS_DEFAULT_PROFILE"));
        if let Some(fresh) = profile::credentials(env, named.unwrap_or("default"), &self.sts()).await? {
            return Ok(fresh);
        }
        if let Some(name) = named {
            return Err(profile::missing(env, name, "AWS_PROFILE"));
        }
        if let Some(fresh) = container::credentials(env).await? {
            return Ok(fresh);
        }
        if env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Err(format!("no AWS credentials found (and AWS_EC2_METADATA_DISABLED is set): {WHAT_TO_SET}"));
        }
        imds::credentials(env).await.map_err(|e| {
            format!("no AWS credentials found: {WHAT_TO_SET}. (Nothing else is configured, so the EC2 instance metadata service was asked: {e})")
        })
    }
}

fn forever(c: Credentials) -> Fresh<Arc<Credentials>> {
    Fresh { value: Arc::new(c), lifetime: None }
}

/// A token file (web identity, ECS authorization): bounded, trimmed, never quoted.
pub(crate) fn read_token_file(path: &str, variable: &str) -> Result<String, String> {
    let text = read_bounded(path).map_err(|e| format!("cannot read {variable} ({path}): {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{variable} ({path}) is empty"));
    }
    Ok(token.to_string())
}

/// A small file (a token, a credentials file), read up to 1 MiB.
pub(crate) fn read_bounded(path: &str) -> Result<String, String> {
    use std::io::Read;
    const MAX: u64 = 1 << 20;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX + 1).read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX {
        return Err("larger than 1 MiB".into());
    }
    Ok(text)
}

/// The JSON the ECS endpoint and IMDS answer with: `AccessKeyId`, `SecretAccessKey`, `Token`,
/// `Expiration`.
pub(crate) fn from_json(body: &[u8], service: &str) -> Result<Fresh<Arc<Credentials>>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| format!("{service} answered with something that is not JSON"))?;
    if let Some(code) = v.get("Code").and_then(Value::as_str).filter(|c| *c != "Success") {
        let message = v.get("Message").and_then(Value::as_str).unwrap_or("");
        return Err(format!("{service} answered {code}: {message}"));
    }
    let field = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(id), Some(secret)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
        return Err(format!("{service}'s answer has no AccessKeyId and SecretAccessKey"));
    };
    Ok(Fresh {
        value: Arc::new(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: field("Token").map(str::to_string),
        }),
        lifetime: Some(lifetime(field("Expiration"))),
    })
}

/// How long a credential expiring at `expiration` (RFC 3339) is kept: capped, and an hour when
/// the issuer does not say (or says something unreadable).
pub(crate) fn lifetime(expiration: Option<&str>) -> Duration {
    match expiration.and_then(time::parse_rfc3339) {
        Some(at) => time::remaining(at, MAX_LIFETIME),
        None => Duration::from_secs(ROLE_SECONDS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_credentials() {
        let ok = br#"{"Code":"Success","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2999-01-01T00:00:00Z"}"#;
        let f = from_json(ok, "IMDS").unwrap();
        assert_eq!(f.value.access_key_id, "ASIA1");
        assert_eq!(f.value.session_token.as_deref(), Some("t"));
        assert_eq!(f.lifetime, Some(MAX_LIFETIME));
        let past = br#"{"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"2000-01-01T00:00:00Z"}"#;
        assert_eq!(from_json(past, "ECS").unwrap().lifetime, Some(Duration::ZERO));
        let e = from_json(br#"{"Code":"Failed","Message":"no role"}"#, "IMDS").unwrap_err();
        assert!(e.contains("Failed: no role"), "{e}");
        assert!(from_json(br#"{"AccessKeyId":"A"}"#, "ECS").is_err());
        assert!(from_json(b"<html>", "ECS").is_err());
    }

    #[test]
    fn shared_caches_are_shared_only_between_equal_settings() {
        let role = |r: &str| Settings { role_arn: Some(r.into()), ..Settings::default() };
        let a = shared(role("arn:a"), Env::default());
        assert!(Arc::ptr_eq(&a, &shared(role("arn:a"), Env::default())));
        assert!(!Arc::ptr_eq(&a, &shared(role("arn:b"), Env::default())));
        let other_env = Env::from_pairs(&[("AWS_PROFILE", "x")]);
        assert!(!Arc::ptr_eq(&a, &shared(role("arn:a"), other_env)));
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let s = Settings {
            keys: Some(Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "TOPSECRET".into(),
                session_token: None,
            }),
            web_identity_token: Some("OIDCSECRET".into()),
            ..Settings::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("TOPSECRET") && !d.contains("OIDCSECRET"), "{d}");
    }
}
