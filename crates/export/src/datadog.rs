//! LiteLLM's `datadog` callback (`integrations/datadog/datadog.py`): each batch POSTed, gzipped,
//! as one JSON array of log items to Datadog's logs intake (`/api/v2/logs`), with the key in
//! `DD-API-KEY`.
//!
//! An item is LiteLLM's `DatadogPayload`: `ddsource`, `ddtags`, `hostname`, `message` (the
//! record's JSON, as text), `service` and `status` (`info`, or `error` for a failure). Tags are
//! LiteLLM's too: `env`, `service`, `version`, `HOSTNAME`, `POD_NAME`, then a `request_tag:` per
//! tag of the call and `team:` its team. A batch larger than the intake takes (LiteLLM holds
//! requests under 4 MB before compression) goes as several requests.

use crate::queue::Sink;
use crate::record::LogRecord;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use serde::Serialize;
use sluice_http::ChainBody;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How long one request to the intake may take, answer included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The most uncompressed JSON in one request (LiteLLM's `DD_MAX_PAYLOAD_SIZE_BYTES`, under
/// Datadog's 5 MB).
pub const MAX_PAYLOAD_BYTES: usize = 4_000_000;

/// The most items in one request (Datadog's limit, LiteLLM's `DD_MAX_BATCH_SIZE`).
pub const MAX_ITEMS: usize = 1_000;

const MAX_ANSWER: usize = 64 * 1024;

/// Where the logs go and how they are labelled, as LiteLLM reads them from the environment.
#[derive(Clone)]
pub struct DatadogSettings {
    /// The intake: `https://http-intake.logs.{DD_SITE}/api/v2/logs`, `{DD_BASE_URL}/api/v2/logs`,
    /// or an agent's `http://{LITELLM_DD_AGENT_HOST}:{LITELLM_DD_AGENT_PORT}/api/v2/logs`.
    pub intake_url: String,
    /// `DD_API_KEY`: needed by the intake, optional through an agent.
    pub api_key: Option<String>,
    /// `DD_SOURCE` (`litellm`).
    pub source: String,
    /// `DD_SERVICE` (`litellm-server`).
    pub service: String,
    /// `HOSTNAME` (empty).
    pub hostname: String,
    /// `DD_ENV` (`unknown`).
    pub env: String,
    /// `DD_VERSION` (`unknown`).
    pub version: String,
    /// `POD_NAME` (`unknown`).
    pub pod_name: String,
}

/// The API key never shows.
impl std::fmt::Debug for DatadogSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatadogSettings")
            .field("intake_url", &self.intake_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("service", &self.service)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// The intake a batch goes to.
pub struct Datadog {
    intake: http::Uri,
    /// `Content-Type`, `Content-Encoding` and the key (marked sensitive).
    headers: http::HeaderMap,
    source: String,
    service: String,
    hostname: String,
    /// The tags every item carries, joined.
    base_tags: String,
    client: sluice_http::pool::Client,
}

/// Header names only: the key is among the values.
impl std::fmt::Debug for Datadog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(http::HeaderName::as_str).collect();
        f.debug_struct("Datadog").field("intake", &self.intake).field("headers", &names).finish_non_exhaustive()
    }
}

impl Datadog {
    /// A sink for `settings`; errors name the variable to fix, never the key.
    pub fn new(settings: DatadogSettings) -> Result<Datadog, String> {
        let (intake, headers) = parts(&settings)?;
        let base_tags = format!(
            "env:{},service:{},version:{},HOSTNAME:{},POD_NAME:{}",
            settings.env, settings.service, settings.version, settings.hostname, settings.pod_name
        );
        Ok(Datadog {
            intake,
            headers,
            source: settings.source,
            service: settings.service,
            hostname: settings.hostname,
            base_tags,
            client: sluice_http::client(Duration::from_secs(5)),
        })
    }

    /// LiteLLM's log item for `record`.
    fn item<'a>(&'a self, record: &LogRecord) -> Result<Item<'a>, String> {
        let message = serde_json::to_string(record).map_err(|e| format!("cannot encode a record: {e}"))?;
        let mut ddtags = self.base_tags.clone();
        for tag in &record.request_tags {
            ddtags.push_str(",request_tag:");
            ddtags.push_str(tag);
        }
        let meta = &record.metadata;
        if let Some(team) = meta.user_api_key_team_alias.as_deref().or(meta.user_api_key_team_id.as_deref()) {
            ddtags.push_str(",team:");
            ddtags.push_str(team);
        }
        Ok(Item {
            ddsource: &self.source,
            ddtags,
            hostname: &self.hostname,
            message,
            service: &self.service,
            status: match record.status {
                crate::record::Status::Success => "info",
                crate::record::Status::Failure => "error",
            },
        })
    }

    async fn post(&self, json: &[u8]) -> Result<(), String> {
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 4), flate2::Compression::fast());
        gz.write_all(json).and_then(|()| gz.flush()).map_err(|e| format!("cannot compress the logs: {e}"))?;
        let body = gz.finish().map_err(|e| format!("cannot compress the logs: {e}"))?;
        let mut req = http::Request::new(ChainBody::full(Bytes::from(body)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.intake.clone();
        *req.headers_mut() = self.headers.clone();
        let answer = self.client.request(req).await.map_err(|e| format!("cannot reach the Datadog intake: {e}"))?;
        let status = answer.status();
        let _ = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
        match status.is_success() {
            true => Ok(()),
            false => Err(format!("the Datadog intake answered {status}")),
        }
    }
}

/// `DatadogPayload`.
#[derive(Serialize)]
struct Item<'a> {
    ddsource: &'a str,
    ddtags: String,
    hostname: &'a str,
    message: String,
    service: &'a str,
    status: &'static str,
}

impl Sink for Datadog {
    async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
        for chunk in chunks(&self.encoded(batch)?) {
            match tokio::time::timeout(SEND_TIMEOUT, self.post(&chunk)).await {
                Ok(result) => result?,
                Err(_) => return Err(format!("the Datadog intake did not answer within {} s", SEND_TIMEOUT.as_secs())),
            }
        }
        Ok(())
    }
}

impl Datadog {
    /// Each record's item, as JSON.
    fn encoded(&self, batch: &[Arc<LogRecord>]) -> Result<Vec<Vec<u8>>, String> {
        batch
            .iter()
            .map(|r| serde_json::to_vec(&self.item(r)?).map_err(|e| format!("cannot encode a record: {e}")))
            .collect()
    }
}

/// The items as JSON arrays of at most [`MAX_ITEMS`] items and [`MAX_PAYLOAD_BYTES`] each (an
/// item larger than that alone goes alone: the intake decides).
fn chunks(items: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut count = 0;
    for item in items {
        if count > 0 && (count == MAX_ITEMS || current.len() + 1 + item.len() + 1 > MAX_PAYLOAD_BYTES) {
            current.push(b']');
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        current.push(if count == 0 { b'[' } else { b',' });
        current.extend_from_slice(item);
        count += 1;
    }
    if count > 0 {
        current.push(b']');
        out.push(current);
    }
    out
}

/// Whether [`Datadog::new`] would take these settings (its error if not): for checking a config.
pub fn check(settings: &DatadogSettings) -> Result<(), String> {
    parts(settings).map(drop)
}

fn parts(s: &DatadogSettings) -> Result<(http::Uri, http::HeaderMap), String> {
    let uri: http::Uri = s.intake_url.trim().parse().map_err(|_| {
        format!(
            "the Datadog intake address {:?} is not a URL; check DD_SITE (e.g. datadoghq.com, us5.datadoghq.com) or DD_BASE_URL",
            s.intake_url
        )
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err("DD_BASE_URL needs an http:// or https:// address with a host".into());
    }
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    if let Some(key) = &s.api_key {
        let mut value = HeaderValue::from_str(key.trim())
            .map_err(|_| "DD_API_KEY is not a valid header value (value not shown); copy the key again".to_string())?;
        value.set_sensitive(true);
        headers.insert("dd-api-key", value);
    }
    Ok((uri, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(intake_url: &str) -> DatadogSettings {
        DatadogSettings {
            intake_url: intake_url.into(),
            api_key: Some("dd-secret".into()),
            source: "litellm".into(),
            service: "litellm-server".into(),
            hostname: "host-1".into(),
            env: "prod".into(),
            version: "unknown".into(),
            pod_name: "unknown".into(),
        }
    }

    /// LiteLLM's item: its six fields, the record as text, its tags; `error` for a failure.
    #[test]
    fn items_take_litellms_shape() {
        let dd = Datadog::new(settings("https://http-intake.logs.datadoghq.com/api/v2/logs")).unwrap();
        let mut record = crate::record::sample();
        record.metadata.user_api_key_team_alias = Some("blue".into());
        let item = serde_json::to_value(dd.item(&record).unwrap()).unwrap();
        let keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["ddsource", "ddtags", "hostname", "message", "service", "status"]);
        assert_eq!(item["ddsource"], "litellm");
        assert_eq!(item["service"], "litellm-server");
        assert_eq!(item["hostname"], "host-1");
        assert_eq!(item["status"], "info");
        assert_eq!(
            item["ddtags"],
            "env:prod,service:litellm-server,version:unknown,HOSTNAME:host-1,POD_NAME:unknown,request_tag:t,team:blue"
        );
        let message: serde_json::Value = serde_json::from_str(item["message"].as_str().unwrap()).unwrap();
        assert_eq!(message["id"], "call-1");
        record.status = crate::record::Status::Failure;
        assert_eq!(dd.item(&record).unwrap().status, "error");
        assert!(!format!("{dd:?}{:?}", settings("x")).contains("dd-secret"));
    }

    /// Requests stay under the intake's limits, and every item is sent once, in order.
    #[test]
    fn large_batches_are_split() {
        let items: Vec<Vec<u8>> = (0..2_500).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        let parts = chunks(&items);
        let counts: Vec<usize> =
            parts.iter().map(|p| serde_json::from_slice::<Vec<serde_json::Value>>(p).unwrap().len()).collect();
        assert_eq!(counts, [1_000, 1_000, 500]);
        let big = vec![format!("\"{}\"", "x".repeat(MAX_PAYLOAD_BYTES / 2)).into_bytes(); 3];
        let parts = chunks(&big);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_PAYLOAD_BYTES));
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn bad_settings_say_what_to_fix() {
        let e = Datadog::new(settings("not a url")).unwrap_err();
        assert!(e.contains("DD_SITE"), "{e}");
        let e = Datadog::new(DatadogSettings {
            api_key: Some("bad\nkey".into()),
            ..settings("http://127.0.0.1:1/api/v2/logs")
        })
        .unwrap_err();
        assert!(e.contains("DD_API_KEY") && !e.contains("bad"), "{e}");
    }

    /// A batch reaches a real listener gzipped, with the key, and decodes to the items.
    #[tokio::test]
    async fn posts_gzipped_items_with_the_key() {
        use std::io::Read;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (head, body) = crate::collector::read_request(&mut conn).await;
            conn.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}").await.unwrap();
            (head, body)
        });
        let sink = Datadog::new(settings(&url)).unwrap();
        sink.send(&[Arc::new(crate::record::sample()), Arc::new(crate::record::sample())]).await.unwrap();
        let (head, body) = server.await.unwrap();
        assert!(head.starts_with("post /api/v2/logs"), "{head}");
        assert!(head.contains("dd-api-key: dd-secret") && head.contains("content-encoding: gzip"), "{head}");
        let mut json = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut json).unwrap();
        let items: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["ddsource"], "litellm");
    }

    /// An answer other than 2xx is an error naming the status, never the key.
    #[tokio::test]
    async fn a_refused_batch_is_an_error() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/logs", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf).await;
            conn.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
        });
        let e = Datadog::new(settings(&url)).unwrap().send(&[Arc::new(crate::record::sample())]).await.unwrap_err();
        assert!(e.contains("403") && !e.contains("dd-secret"), "{e}");
    }
}
