//! AWS STS's two role calls, as its Query API has them: `AssumeRoleWithWebIdentity` (unsigned:
//! the OIDC token is the proof) and `AssumeRole` (SigV4-signed with the base credentials), both
//! a form POST answered in XML.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method};

use super::{lifetime, Credentials, CALL_TIMEOUT, ROLE_SECONDS};
use crate::cache::Fresh;
use crate::env::Env;
use crate::fetch::{self, form_encode};

/// Where STS is, and the region its signatures are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub url: String,
    pub region: String,
}

impl Endpoint {
    /// `aws_sts_endpoint`, else `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`, else the region's
    /// own endpoint (the SDKs' default) unless `AWS_STS_REGIONAL_ENDPOINTS=legacy` or there is
    /// no region, when it is the global one.
    pub fn new(explicit: Option<&str>, region: Option<&str>, env: &Env) -> Endpoint {
        let given = explicit.or(env.get("AWS_ENDPOINT_URL_STS")).or(env.get("AWS_ENDPOINT_URL"));
        let legacy = env.get("AWS_STS_REGIONAL_ENDPOINTS").is_some_and(|v| v.trim().eq_ignore_ascii_case("legacy"));
        let url = match (given, region) {
            (Some(url), _) => url.trim().trim_end_matches('/').to_string(),
            (None, Some(r)) if !legacy => format!("https://sts.{r}.amazonaws.com"),
            (None, _) => "https://sts.amazonaws.com".to_string(),
        };
        Endpoint { url, region: region.unwrap_or("us-east-1").to_string() }
    }
}

/// `AssumeRoleWithWebIdentity` for `role` with the OIDC `token`.
pub(crate) async fn assume_role_with_web_identity(
    sts: &Endpoint,
    role: &str,
    session: &str,
    token: &str,
) -> Result<Fresh<Arc<Credentials>>, String> {
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}&DurationSeconds={ROLE_SECONDS}",
        form_encode(role),
        form_encode(session),
        form_encode(token)
    );
    call(sts, form, None).await
}

/// `AssumeRole` for `role`, signed with `base`.
pub(crate) async fn assume_role(
    sts: &Endpoint,
    base: &Credentials,
    role: &str,
    session: &str,
) -> Result<Fresh<Arc<Credentials>>, String> {
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}&DurationSeconds={ROLE_SECONDS}",
        form_encode(role),
        form_encode(session)
    );
    call(sts, form, Some(base)).await
}

async fn call(sts: &Endpoint, form: String, signer: Option<&Credentials>) -> Result<Fresh<Arc<Credentials>>, String> {
    let url = format!("{}/", sts.url);
    let mut headers: Vec<(HeaderName, HeaderValue)> =
        vec![(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"))];
    if let Some(creds) = signer {
        let signed = sluice_sigv4::sign(
            "sts",
            sluice_sigv4::PathRule::EncodeTwice,
            "POST",
            &url,
            &[],
            form.as_bytes(),
            &sts.region,
            creds,
            crate::time::now_unix(),
        )?;
        for (name, value) in signed {
            headers.push((HeaderName::from_static(name), fetch::secret_header(&value, "the signature")?));
        }
    }
    let answer = fetch::fetch(Method::POST, &url, &headers, Bytes::from(form), CALL_TIMEOUT).await?;
    let text = String::from_utf8_lossy(&answer.body);
    if !answer.status.is_success() {
        return Err(match (element(&text, "Code"), element(&text, "Message")) {
            (Some(code), message) => {
                format!("STS at {} refused ({}): {code}: {}", sts.url, answer.status, message.unwrap_or_default())
            }
            _ => format!("STS at {} answered {}: {}", sts.url, answer.status, fetch::preview(&answer.body)),
        });
    }
    parse_credentials(&text).ok_or_else(|| format!("STS at {} answered without Credentials", sts.url))
}

/// The `<Credentials>` of an STS answer.
pub(crate) fn parse_credentials(xml: &str) -> Option<Fresh<Arc<Credentials>>> {
    let creds = raw(xml, "Credentials")?;
    let id = element(creds, "AccessKeyId").filter(|s| !s.is_empty())?;
    let secret = element(creds, "SecretAccessKey").filter(|s| !s.is_empty())?;
    Some(Fresh {
        value: Arc::new(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: element(creds, "SessionToken").filter(|s| !s.is_empty()),
        }),
        lifetime: Some(lifetime(element(creds, "Expiration").as_deref())),
    })
}

/// The text of the first `<tag>…</tag>` in `xml`, entities decoded. STS's answers are flat and
/// attribute-free where these elements are, so no XML parser is needed.
fn element(xml: &str, tag: &str) -> Option<String> {
    raw(xml, tag).map(unescape)
}

/// The content of the first `<tag>…</tag>`, as it is written.
fn raw<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    Some(xml.get(start..start + len)?.trim())
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FQo&amp;token</SessionToken>
      <SecretAccessKey>wJalr</SecretAccessKey>
      <Expiration>2999-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn reads_the_answer() {
        let f = parse_credentials(ANSWER).unwrap();
        assert_eq!(f.value.access_key_id, "ASIAEXAMPLE");
        assert_eq!(f.value.secret_access_key, "wJalr");
        assert_eq!(f.value.session_token.as_deref(), Some("FQo&token"));
        assert_eq!(f.lifetime, Some(crate::cache::MAX_LIFETIME));
        assert!(parse_credentials("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>").is_none());
    }

    #[test]
    fn endpoints() {
        let env = Env::default();
        assert_eq!(Endpoint::new(None, Some("eu-west-1"), &env).url, "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(
            Endpoint::new(None, None, &env),
            Endpoint { url: "https://sts.amazonaws.com".into(), region: "us-east-1".into() }
        );
        let legacy = Env::from_pairs(&[("AWS_STS_REGIONAL_ENDPOINTS", "legacy")]);
        assert_eq!(Endpoint::new(None, Some("eu-west-1"), &legacy).url, "https://sts.amazonaws.com");
        let over = Env::from_pairs(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/")]);
        assert_eq!(Endpoint::new(None, Some("eu-west-1"), &over).url, "http://127.0.0.1:9");
        assert_eq!(Endpoint::new(Some("http://sts.local"), None, &over).url, "http://sts.local");
    }

    proptest::proptest! {
        #[test]
        fn any_answer_parses_or_not_without_panicking(s in ".{0,300}", cut in 0usize..600) {
            let _ = parse_credentials(&s);
            let cut = cut.min(ANSWER.len());
            if ANSWER.is_char_boundary(cut) {
                let _ = parse_credentials(&ANSWER[..cut]);
                let _ = parse_credentials(&format!("{}{s}{}", &ANSWER[..cut], &ANSWER[cut..]));
            }
        }
    }
}
