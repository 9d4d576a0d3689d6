//! Slack incoming webhooks: a message is `POST`ed as JSON `{"text": ...}`; Slack answers 200
//! `ok`, or 429 with `Retry-After` when rate-limited. The webhook's URL carries its credential
//! (the path is the token), so it never appears in logs, errors or `Debug` output: only its host.

use super::dispatch::{AlertSink, Delivery};
use super::AlertType;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use sluice_http::ChainBody;
use std::collections::HashMap;
use std::time::Duration;

/// How long one post may take, answer included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer read (and thrown away), so the connection can be reused.
const MAX_ANSWER: usize = 16 * 1024;

/// The wait when a 429 names none (or one that is not a number of seconds).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where each alert type's messages go: `SLACK_WEBHOOK_URL`, and `alert_to_webhook_url`'s
/// URLs for the types it names.
pub struct Slack {
    default: http::Uri,
    by_type: HashMap<AlertType, Vec<http::Uri>>,
    client: sluice_http::pool::Client,
}

/// Hosts only: a webhook's path is its credential.
impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<&str> = self.by_type.keys().map(|t| t.name()).collect();
        f.debug_struct("Slack")
            .field("host", &self.default.host())
            .field("types_with_their_own_webhook", &types)
            .finish()
    }
}

/// A webhook URL read from `what` (the variable or setting it came from, for the error).
pub fn webhook(url: &str, what: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.trim().parse().map_err(|_| {
        format!(
            "{what} is not a URL; set it to the Slack incoming webhook's address (https://hooks.slack.com/services/…)"
        )
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{what} needs an http:// or https:// address with a host"));
    }
    Ok(uri)
}

impl Slack {
    pub fn new(default: http::Uri, by_type: HashMap<AlertType, Vec<http::Uri>>) -> Slack {
        Slack { default, by_type, client: sluice_http::client(Duration::from_secs(5)) }
    }

    async fn post_to(&self, url: &http::Uri, body: Bytes) -> Delivery {
        let mut req = http::Request::new(ChainBody::full(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = url.clone();
        req.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let answer = match self.client.request(req).await {
            Ok(a) => a,
            Err(e) => return Delivery::Failed(format!("cannot reach the Slack webhook: {e}")),
        };
        let status = answer.status();
        let retry_after = answer
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let _ = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
        match status.as_u16() {
            200..=299 => Delivery::Sent,
            429 => Delivery::RetryAfter(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
            _ => Delivery::Failed(format!("the Slack webhook answered {status}")),
        }
    }
}

impl AlertSink for Slack {
    async fn post(&self, kind: AlertType, text: &str) -> Delivery {
        let body = match serde_json::to_vec(&serde_json::json!({ "text": text })) {
            Ok(b) => Bytes::from(b),
            Err(e) => return Delivery::Failed(format!("cannot encode the message: {e}")),
        };
        let urls = self.by_type.get(&kind).map_or(std::slice::from_ref(&self.default), Vec::as_slice);
        let mut outcome = Delivery::Sent;
        for url in urls {
            let one = match tokio::time::timeout(SEND_TIMEOUT, self.post_to(url, body.clone())).await {
                Ok(d) => d,
                Err(_) => {
                    Delivery::Failed(format!("the Slack webhook did not answer within {} s", SEND_TIMEOUT.as_secs()))
                }
            };
            // A rate limit anywhere wins (the message is sent again); else the first failure.
            outcome = match (outcome, one) {
                (Delivery::RetryAfter(a), Delivery::RetryAfter(b)) => Delivery::RetryAfter(a.max(b)),
                (Delivery::RetryAfter(a), _) | (_, Delivery::RetryAfter(a)) => Delivery::RetryAfter(a),
                (Delivery::Failed(why), _) | (Delivery::Sent, Delivery::Failed(why)) => Delivery::Failed(why),
                (Delivery::Sent, Delivery::Sent) => Delivery::Sent,
            };
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A webhook stand-in that answers each request with the next of `answers`, and returns the
    /// bodies it received.
    async fn stand_in(answers: Vec<&'static str>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/services/T000/B000/secret-token", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for answer in answers {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if body.len() >= len {
                            bodies.push(body.to_string());
                            break;
                        }
                    }
                }
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
            bodies
        });
        (url, task)
    }

    #[tokio::test]
    async fn posts_text_and_reads_a_rate_limit() {
        let (url, server) = stand_in(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ])
        .await;
        let slack = Slack::new(webhook(&url, "SLACK_WEBHOOK_URL").unwrap(), HashMap::new());
        assert!(!format!("{slack:?}").contains("secret-token"));
        assert_eq!(slack.post(AlertType::BudgetAlerts, "Key Budget: \"x\"").await, Delivery::Sent);
        assert_eq!(slack.post(AlertType::BudgetAlerts, "again").await, Delivery::RetryAfter(Duration::from_secs(7)));
        let bodies = server.await.unwrap();
        let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(first, serde_json::json!({"text": "Key Budget: \"x\""}));
    }

    #[tokio::test]
    async fn errors_never_show_the_webhook_path() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/services/T/B/secret-token", listener.local_addr().unwrap());
        drop(listener);
        let slack = Slack::new(webhook(&url, "SLACK_WEBHOOK_URL").unwrap(), HashMap::new());
        match slack.post(AlertType::DbExceptions, "x").await {
            Delivery::Failed(why) => assert!(!why.contains("secret-token"), "{why}"),
            other => panic!("{other:?}"),
        }
        let e = webhook("not a url", "SLACK_WEBHOOK_URL").unwrap_err();
        assert!(e.contains("SLACK_WEBHOOK_URL"), "{e}");
    }
}
