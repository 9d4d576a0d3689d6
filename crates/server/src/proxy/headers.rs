//! The `x-litellm-*` response headers and the upstream's headers forwarded under `llm_provider-`.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the response headers report about one call.
pub struct CallMeta {
    pub call_id: HeaderValue,
    pub started: Instant,
    pub model_id: Option<HeaderValue>,
    pub api_base: Option<HeaderValue>,
    /// Time spent waiting on the upstream, subtracted to report the gateway's own overhead.
    pub upstream: Duration,
    /// Metrics handles of the deployment that served (or failed) last.
    pub deployment: Option<sluice_metrics::DeploymentMetrics>,
    /// The request's outcome has been recorded in the metrics already.
    pub recorded: bool,
    /// Whom the request is billed to, once admitted.
    pub charge: Option<std::sync::Arc<crate::access::charge::Charge>>,
    /// `x-litellm-response-cost`, once the usage is known before the headers go out.
    pub cost: Option<f64>,
}

impl CallMeta {
    /// Honours a client-supplied `x-litellm-call-id` (as newer LiteLLM does), else a fresh UUID.
    /// Version 7 (time-ordered): the id keys the spend-log row, and ids that grow with time keep
    /// the table's index appending instead of scattering writes over its whole B-tree.
    pub fn new(request_headers: &HeaderMap, started: Instant) -> Self {
        let call_id = request_headers
            .get("x-litellm-call-id")
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .cloned()
            .unwrap_or_else(|| {
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let s = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
                HeaderValue::from_str(s).expect("a uuid is a valid header value")
            });
        CallMeta {
            call_id,
            started,
            model_id: None,
            api_base: None,
            upstream: Duration::ZERO,
            deployment: None,
            recorded: false,
            charge: None,
            cost: None,
        }
    }

    /// The calling key's metrics labels, when a virtual key is calling.
    pub fn caller(&self) -> Option<&sluice_metrics::Caller> {
        self.charge.as_ref()?.admission().key.as_ref()?.caller.as_ref()
    }

    pub fn apply(&self, out: &mut HeaderMap) {
        out.insert("x-litellm-call-id", self.call_id.clone());
        if let Some(id) = &self.model_id {
            out.insert("x-litellm-model-id", id.clone());
        }
        if let Some(base) = &self.api_base {
            out.insert("x-litellm-model-api-base", base.clone());
        }
        out.insert("x-litellm-attempted-retries", HeaderValue::from_static("0"));
        let total = self.started.elapsed();
        out.insert("x-litellm-response-duration-ms", millis(total));
        out.insert("x-litellm-overhead-duration-ms", millis(total.saturating_sub(self.upstream)));
        if let Some(cost) = self.cost {
            if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
                out.insert("x-litellm-response-cost", v);
            }
        }
        if let Some(charge) = &self.charge {
            for (name, value) in &charge.admission().headers {
                out.insert(name.clone(), value.clone());
            }
        }
    }
}

fn millis(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("{:.3}", d.as_secs_f64() * 1000.0)).expect("a number is a valid header value")
}

thread_local! {
    /// `llm_provider-<name>` header names, built once per thread per upstream header name.
    static PREFIXED: RefCell<HashMap<HeaderName, HeaderName>> = RefCell::new(HashMap::new());
}

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"];

/// Copies the upstream's headers: every one under `llm_provider-`, and OpenAI's rate-limit headers
/// also as they are.
pub fn forward_upstream(upstream: &HeaderMap, out: &mut HeaderMap) {
    PREFIXED.with(|cache| {
        let mut cache = cache.borrow_mut();
        for (name, value) in upstream {
            if HOP_BY_HOP.contains(&name.as_str()) {
                continue;
            }
            if name.as_str().starts_with("x-ratelimit-") {
                out.append(name.clone(), value.clone());
            }
            let prefixed = match cache.get(name) {
                Some(p) => p.clone(),
                None => {
                    let Ok(p) = HeaderName::from_bytes(format!("llm_provider-{}", name.as_str()).as_bytes()) else {
                        continue;
                    };
                    if cache.len() < 256 {
                        cache.insert(name.clone(), p.clone());
                    }
                    p
                }
            };
            out.append(prefixed, value.clone());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_with_prefix_and_copies_rate_limits() {
        let mut up = HeaderMap::new();
        up.insert("openai-processing-ms", "12".parse().unwrap());
        up.insert("x-ratelimit-remaining-requests", "99".parse().unwrap());
        up.insert("transfer-encoding", "chunked".parse().unwrap());
        let mut out = HeaderMap::new();
        forward_upstream(&up, &mut out);
        assert_eq!(out["llm_provider-openai-processing-ms"], "12");
        assert_eq!(out["x-ratelimit-remaining-requests"], "99");
        assert_eq!(out["llm_provider-x-ratelimit-remaining-requests"], "99");
        assert!(out.get("llm_provider-transfer-encoding").is_none());
    }

    #[test]
    fn call_meta_headers() {
        let meta = CallMeta::new(&HeaderMap::new(), Instant::now());
        let mut out = HeaderMap::new();
        meta.apply(&mut out);
        assert_eq!(out["x-litellm-call-id"].len(), 36);
        assert_eq!(out["x-litellm-attempted-retries"], "0");
        assert!(out["x-litellm-response-duration-ms"].to_str().unwrap().parse::<f64>().is_ok());
    }
}
