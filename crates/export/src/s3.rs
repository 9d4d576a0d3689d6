//! LiteLLM's `s3` callback (`s3_v2.py`): each record written as one JSON object to an S3 bucket,
//! or any S3-compatible store (`s3_endpoint_url`), by a PUT signed with AWS SigV4.
//!
//! Object keys follow LiteLLM's layout: `{s3_path}/{team alias}/{key alias}/{YYYY-MM-DD}/
//! time-{HH-MM-SS-micros}_{id}.json` (the path and the alias folders only when set and asked
//! for), dated by the call's start in UTC. S3 has no batch PUT, so a batch is written object by
//! object, [`PARALLEL_PUTS`] at a time; a PUT S3 answers 500 or 503 is tried twice more, after
//! 1 s and 2 s, as LiteLLM does.

use crate::queue::Sink;
use crate::record::LogRecord;
use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderValue;
use http_body_util::BodyExt;
use sluice_http::ChainBody;
use sluice_sigv4::PathRule;

pub use sluice_sigv4::Credentials;
use std::sync::Arc;
use std::time::Duration;

/// How many PUTs of a batch are in flight at once, at most.
pub const PARALLEL_PUTS: usize = 8;

/// How long one PUT may take, answer included.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(10);

/// The waits before a PUT that S3 answered 500 or 503 is tried again (LiteLLM's 1 s, 2 s).
const RETRY_AFTER: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// S3's limit on an object key, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// The most of an answer read: enough for S3's XML error, whose `Code` the error names.
const MAX_ANSWER: usize = 16 * 1024;

/// Where the objects go and how they are signed: LiteLLM's `s3_callback_params`, resolved.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// The region signed for (also the AWS host's when there is no endpoint).
    pub region: String,
    /// An S3-compatible store's address (`s3_endpoint_url`); AWS when `None`.
    pub endpoint_url: Option<String>,
    /// `s3_path`: a folder every key starts with.
    pub path: Option<String>,
    /// `s3_use_team_prefix`: a folder named after the key's team alias.
    pub use_team_prefix: bool,
    /// `s3_use_key_prefix`: a folder named after the key's alias.
    pub use_key_prefix: bool,
    /// `s3_use_virtual_hosted_style`: the bucket in the host, not the path, of an endpoint.
    pub virtual_hosted_style: bool,
    /// Where the signing credentials come from (`Debug` shows no secret).
    pub credentials: Arc<sluice_credentials::aws::AwsCredentials>,
}

/// The bucket the records are written to.
pub struct S3 {
    settings: S3Settings,
    /// Everything of an object's URL before its key, without the trailing `/`.
    base: String,
    client: sluice_http::pool::Client,
}

/// The settings (their `Debug` hides the secrets) and the address.
impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3").field("settings", &self.settings).field("base", &self.base).finish_non_exhaustive()
    }
}

impl S3 {
    /// A sink for `settings`; errors name the setting to fix, never a secret.
    pub fn new(settings: S3Settings) -> Result<S3, String> {
        let base = base_url(&settings)?;
        let client = sluice_http::client(Duration::from_secs(5));
        Ok(S3 { settings, base, client })
    }

    /// The URL an object with `key` is PUT to: the key percent-encoded once, `/` kept.
    fn object_url(&self, key: &str) -> String {
        format!("{}/{}", self.base, sluice_sigv4::uri_encode(key, true))
    }

    /// One object written, each attempt within [`PUT_TIMEOUT`]; S3's "try again" answers (500,
    /// 503) are tried again after [`RETRY_AFTER`], as LiteLLM does.
    async fn put_in_time(&self, record: &LogRecord) -> Result<(), String> {
        let mut waits = RETRY_AFTER.iter();
        loop {
            let result = match tokio::time::timeout(PUT_TIMEOUT, self.put(record)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Final(format!("S3 did not answer within {} s", PUT_TIMEOUT.as_secs()))),
            };
            match (result, waits.next()) {
                (Ok(()), _) => return Ok(()),
                (Err(Failure::Transient(_)), Some(wait)) => tokio::time::sleep(*wait).await,
                (Err(Failure::Transient(why) | Failure::Final(why)), _) => return Err(why),
            }
        }
    }

    async fn put(&self, record: &LogRecord) -> Result<(), Failure> {
        let key = object_key(&self.settings, record);
        let body = serde_json::to_vec(record).map_err(|e| Failure::Final(format!("cannot encode a record: {e}")))?;
        let url = self.object_url(&key);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let credentials = self
            .settings
            .credentials
            .get()
            .await
            .map_err(|e| Failure::Final(format!("no AWS credentials to sign with: {e}")))?;
        let signed =
            sluice_sigv4::sign("s3", PathRule::S3, "PUT", &url, &[], &body, &self.settings.region, &credentials, now)
                .map_err(Failure::Final)?;
        let mut req = http::Request::new(ChainBody::full(Bytes::from(body)));
        *req.method_mut() = http::Method::PUT;
        *req.uri_mut() =
            url.parse().map_err(|_| Failure::Final(format!("cannot build an object URL for key {key:?}")))?;
        let headers = req.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // As LiteLLM writes its objects: opened in a browser, shown inline under a useful name.
        headers.insert(http::header::CONTENT_LANGUAGE, HeaderValue::from_static("en"));
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, immutable, max-age=31536000, s-maxage=0"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", download_name(record))) {
            headers.insert(http::header::CONTENT_DISPOSITION, v);
        }
        for (name, value) in signed {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| Failure::Final("the AWS credentials hold characters a header cannot carry".into()))?;
            value.set_sensitive(matches!(name, "authorization" | "x-amz-security-token"));
            headers.insert(name, value);
        }
        let answer =
            self.client.request(req).await.map_err(|e| Failure::Final(format!("cannot reach the S3 endpoint: {e}")))?;
        let status = answer.status();
        let text = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let why = match error_code(&text) {
            Some(code) => format!("S3 answered {status} ({code}) for bucket {}", self.settings.bucket),
            None => format!("S3 answered {status} for bucket {}", self.settings.bucket),
        };
        Err(match status.as_u16() {
            500 | 503 => Failure::Transient(why),
            _ => Failure::Final(why),
        })
    }
}

/// Why a PUT failed, and whether trying again may help.
enum Failure {
    /// S3's 500 and 503: busy or briefly failing.
    Transient(String),
    Final(String),
}

impl Sink for S3 {
    async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
        // Collected first: a closure held across the await would make the future not `Send`
        // for every lifetime (a known limit of the compiler's reasoning).
        let puts: Vec<_> = batch.iter().map(|record| self.put_in_time(record)).collect();
        let results: Vec<Result<(), String>> =
            futures_util::stream::iter(puts).buffer_unordered(PARALLEL_PUTS).collect().await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(first) => Err(format!("{failed} of {} objects not written: {first}", batch.len())),
        }
    }
}

/// Whether [`S3::new`] would take these settings (its error if not), without building a
/// client: for checking a config.
pub fn check(settings: &S3Settings) -> Result<(), String> {
    base_url(settings).map(drop)
}

fn base_url(s: &S3Settings) -> Result<String, String> {
    let bucket = s.bucket.trim();
    let valid = (1..=255).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(format!(
            "s3_callback_params.s3_bucket_name: \"{bucket}\" is not a bucket name (letters, digits, '-', '.' and '_')"
        ));
    }
    match s.endpoint_url.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(endpoint) => {
            let uri: http::Uri = endpoint.parse().map_err(|_| {
                "s3_callback_params.s3_endpoint_url is not a URL; set it to the store's address, e.g. http://127.0.0.1:9000"
                    .to_string()
            })?;
            let (Some(scheme @ ("http" | "https")), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
                return Err(
                    "s3_callback_params.s3_endpoint_url needs an http:// or https:// address with a host".into()
                );
            };
            if authority.as_str().contains('@') {
                return Err("s3_callback_params.s3_endpoint_url must not carry a user name or password".into());
            }
            Ok(match s.virtual_hosted_style {
                true => format!("{scheme}://{bucket}.{authority}"),
                false => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            })
        }
        None => {
            let region = s.region.trim();
            if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!("s3_callback_params.s3_region_name: \"{region}\" is not an AWS region"));
            }
            let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
            Ok(format!("https://{bucket}.s3.{region}.{suffix}"))
        }
    }
}

/// The call's start as UTC time, to the microsecond.
fn start_time(record: &LogRecord) -> chrono::DateTime<chrono::Utc> {
    let micros = (record.start_time * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// LiteLLM's object key: `[s3_path/][team alias/][key alias/]YYYY-MM-DD/time-HH-MM-SS-micros_{id}.json`.
/// The file name's `/`s become `_`. A key over S3's 1,024 bytes loses the end of its folders
/// (the date and the file name are always whole).
pub fn object_key(s: &S3Settings, record: &LogRecord) -> String {
    let start = start_time(record);
    let mut prefix = String::new();
    if let Some(path) = s.path.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        prefix.push_str(path);
        prefix.push('/');
    }
    let folders = [
        (s.use_team_prefix, record.metadata.user_api_key_team_alias.as_deref()),
        (s.use_key_prefix, record.metadata.user_api_key_alias.as_deref()),
    ];
    for (wanted, alias) in folders {
        if let Some(alias) = alias.filter(|a| wanted && !a.is_empty()) {
            prefix.push_str(alias);
            prefix.push('/');
        }
    }
    let name = format!("time-{}_{}", start.format("%H-%M-%S-%6f"), record.id).replace('/', "_");
    let tail = format!("{}/{name}.json", start.format("%Y-%m-%d"));
    if prefix.len() + tail.len() > MAX_KEY_BYTES {
        let mut keep = MAX_KEY_BYTES.saturating_sub(tail.len() + 1);
        while !prefix.is_char_boundary(keep.min(prefix.len())) {
            keep -= 1;
        }
        prefix.truncate(keep.min(prefix.len()));
        prefix.push('/');
    }
    prefix + &tail
}

/// The object's download name (`Content-Disposition`), as LiteLLM names it.
fn download_name(record: &LogRecord) -> String {
    let id: String = record.id.chars().take(200).map(|c| if matches!(c, '/' | '"') { '_' } else { c }).collect();
    format!("time-{}_{id}.json", start_time(record).format("%Y-%m-%dT%H-%M-%S-%6f"))
}

/// The `<Code>` of S3's XML error answer (`NoSuchBucket`, `SignatureDoesNotMatch`, ...), when it
/// is a plain word.
fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let code = &text[start..start + text[start..].find("</Code>")?];
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> S3Settings {
        S3Settings {
            bucket: "logs".into(),
            region: "us-east-1".into(),
            endpoint_url: None,
            path: None,
            use_team_prefix: false,
            use_key_prefix: false,
            virtual_hosted_style: false,
            credentials: sluice_credentials::aws::credentials(
                sluice_credentials::aws::Settings {
                    keys: Some(Credentials {
                        access_key_id: "AKIDEXAMPLE".into(),
                        secret_access_key: "very-secret".into(),
                        session_token: Some("token-secret".into()),
                    }),
                    ..Default::default()
                },
                sluice_credentials::Env::default(),
            ),
        }
    }

    fn record() -> LogRecord {
        let mut r = crate::record::sample();
        // 2024-01-02T03:04:05.000123Z
        r.start_time = 1_704_164_645.000_123;
        r.id = "chatcmpl/abc".into();
        r.metadata.user_api_key_team_alias = Some("team-a".into());
        r.metadata.user_api_key_alias = Some("key-b".into());
        r
    }

    /// LiteLLM's layout: date folder, then time and id; folders only when asked for.
    #[test]
    fn keys_follow_litellms_layout() {
        let s = settings();
        assert_eq!(object_key(&s, &record()), "2024-01-02/time-03-04-05-000123_chatcmpl_abc.json");
        let s = S3Settings { path: Some("/litellm-logs/".into()), use_team_prefix: true, ..settings() };
        assert_eq!(object_key(&s, &record()), "litellm-logs/team-a/2024-01-02/time-03-04-05-000123_chatcmpl_abc.json");
        let s = S3Settings { use_key_prefix: true, use_team_prefix: true, ..settings() };
        assert_eq!(object_key(&s, &record()), "team-a/key-b/2024-01-02/time-03-04-05-000123_chatcmpl_abc.json");
        // A key without a team alias gets no team folder.
        let mut r = record();
        r.metadata.user_api_key_team_alias = None;
        assert_eq!(object_key(&s, &r), "key-b/2024-01-02/time-03-04-05-000123_chatcmpl_abc.json");
        assert_eq!(download_name(&record()), "time-2024-01-02T03-04-05-000123_chatcmpl_abc.json");
    }

    /// A very long alias cannot make a key S3 refuses.
    #[test]
    fn keys_stay_within_s3s_limit() {
        let s = S3Settings { use_key_prefix: true, ..settings() };
        let mut r = record();
        r.metadata.user_api_key_alias = Some("é".repeat(2_000));
        let key = object_key(&s, &r);
        assert!(key.len() <= MAX_KEY_BYTES, "{}", key.len());
        assert!(key.ends_with("/2024-01-02/time-03-04-05-000123_chatcmpl_abc.json"), "{key}");
    }

    /// Path style for an endpoint (moto, MinIO), virtual-hosted on request, AWS's host otherwise.
    #[test]
    fn urls_address_the_bucket() {
        let s3 = |s: S3Settings| S3::new(s).unwrap();
        let aws = s3(settings());
        assert_eq!(
            aws.object_url("2024-01-02/a b$.json"),
            "https://logs.s3.us-east-1.amazonaws.com/2024-01-02/a%20b%24.json"
        );
        let local = s3(S3Settings { endpoint_url: Some("http://127.0.0.1:5000/".into()), ..settings() });
        assert_eq!(local.object_url("k.json"), "http://127.0.0.1:5000/logs/k.json");
        let hosted = s3(S3Settings {
            endpoint_url: Some("https://store.example.com".into()),
            virtual_hosted_style: true,
            ..settings()
        });
        assert_eq!(hosted.object_url("k.json"), "https://logs.store.example.com/k.json");
        let cn = s3(S3Settings { region: "cn-north-1".into(), ..settings() });
        assert!(cn.object_url("k").starts_with("https://logs.s3.cn-north-1.amazonaws.com.cn/"));
    }

    #[test]
    fn bad_settings_name_the_setting_and_hide_secrets() {
        let e = S3::new(S3Settings { bucket: "a/b".into(), ..settings() }).unwrap_err();
        assert!(e.contains("s3_bucket_name"), "{e}");
        let e = S3::new(S3Settings { endpoint_url: Some("ftp://x".into()), ..settings() }).unwrap_err();
        assert!(e.contains("s3_endpoint_url"), "{e}");
        let e = S3::new(S3Settings { endpoint_url: Some("http://u:pw@h:1".into()), ..settings() }).unwrap_err();
        assert!(e.contains("s3_endpoint_url") && !e.contains("pw"), "{e}");
        let ok = S3::new(settings()).unwrap();
        let debug = format!("{ok:?}");
        assert!(!debug.contains("very-secret") && !debug.contains("token-secret"), "{debug}");
    }

    #[test]
    fn s3_error_codes_are_read() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("NoSuchBucket"));
        assert_eq!(error_code(b"<Code>a b</Code>"), None);
        assert_eq!(error_code(b"nothing"), None);
    }

    /// A stand-in S3 endpoint on loopback: answers each connection's request with the next of
    /// `replies` (status, S3 error code), then closes it; gives back the requests it read.
    fn stand_in(replies: Vec<(u16, Option<&'static str>)>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::AsyncWriteExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let mut requests = Vec::new();
            for (status, code) in replies {
                let (mut conn, _) = listener.accept().await.unwrap();
                let (head, body) = crate::collector::read_request(&mut conn).await;
                let xml = code.map(|c| format!("<Error><Code>{c}</Code></Error>")).unwrap_or_default();
                let reply =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}", xml.len());
                conn.write_all(reply.as_bytes()).await.unwrap();
                requests.push(format!("{head}\r\n\r\n{}", String::from_utf8(body).unwrap()));
            }
            requests
        });
        (endpoint, server)
    }

    /// One signed PUT per record reaches a real listener: the path-style URL, the JSON body, the
    /// SigV4 headers; a 404 with S3's error is an error naming its code, not tried again.
    #[tokio::test]
    async fn puts_one_signed_object_per_record() {
        let (endpoint, server) = stand_in(vec![(200, None), (404, Some("NoSuchBucket"))]);
        let sink = S3::new(S3Settings { endpoint_url: Some(endpoint), ..settings() }).unwrap();
        sink.send(&[Arc::new(record())]).await.unwrap();
        let e = sink.send(&[Arc::new(record())]).await.unwrap_err();
        assert!(e.contains("404") && e.contains("NoSuchBucket") && e.contains("1 of 1"), "{e}");
        assert!(!e.contains("very-secret") && !e.contains("token-secret"), "{e}");
        let requests = server.await.unwrap();
        let (head, body) = requests[0].split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("put /logs/2024-01-02/time-03-04-05-000123_chatcmpl_abc.json http/1.1"), "{head}");
        assert!(head.contains("authorization: aws4-hmac-sha256 credential=akidexample/"), "{head}");
        assert!(head.contains("/us-east-1/s3/aws4_request"), "{head}");
        assert!(
            head.contains("x-amz-security-token: token-secret") && head.contains("x-amz-content-sha256: "),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        let object: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(object["id"], "chatcmpl/abc");
        assert_eq!(object["metadata"]["user_api_key_hash"], "abc");
    }

    /// S3's "slow down" (503) is tried again after a second, as LiteLLM does, and then succeeds.
    #[tokio::test]
    async fn a_busy_s3_is_tried_again() {
        let (endpoint, server) = stand_in(vec![(503, Some("SlowDown")), (200, None)]);
        let sink = S3::new(S3Settings { endpoint_url: Some(endpoint), ..settings() }).unwrap();
        let started = std::time::Instant::now();
        sink.send(&[Arc::new(record())]).await.unwrap();
        assert!(started.elapsed() >= RETRY_AFTER[0]);
        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 2);
        let path = |r: &str| r.lines().next().unwrap().to_string();
        assert_eq!(path(&requests[0]), path(&requests[1]));
    }
}
