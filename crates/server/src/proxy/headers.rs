//! The `x-litellm-*` response headers and the upstream's headers forwarded under `llm_provider-`.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::time::{Duration, Instant};

// Names built once: inserting by `&str` would parse and validate the name on every request.
pub const CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
pub const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
pub const MAX_RETRIES: HeaderName = HeaderName::from_static("x-litellm-max-retries");
pub const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const RESPONSE_DURATION: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
const OVERHEAD_DURATION: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
pub const RATELIMIT_REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
pub const RATELIMIT_REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

/// Room for what an answer usually carries (the upstream's headers twice over, plus ours: 21 for
/// an OpenAI-style upstream), so the map is sized once instead of growing three or four times.
/// 24 is the most a 32-slot map holds; asking for more doubles it, and that costs every idle
/// connection, not only the request: hyper keeps each connection's last response map to parse
/// the next request into (~5 KB for 48 entries, ~2.5 KB for 24).
const TYPICAL_RESPONSE_HEADERS: usize = 24;

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
        let call_id =
            request_headers.get(CALL_ID).filter(|v| !v.is_empty() && v.len() <= 128).cloned().unwrap_or_else(|| {
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
        out.insert(CALL_ID, self.call_id.clone());
        if let Some(id) = &self.model_id {
            out.insert(MODEL_ID, id.clone());
        }
        if let Some(base) = &self.api_base {
            out.insert(MODEL_API_BASE, base.clone());
        }
        out.insert(ATTEMPTED_RETRIES, HeaderValue::from_static("0"));
        let total = self.started.elapsed();
        out.insert(RESPONSE_DURATION, millis(total));
        out.insert(OVERHEAD_DURATION, millis(total.saturating_sub(self.upstream)));
        if let Some(cost) = self.cost {
            if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
                out.insert(RESPONSE_COST, v);
            }
        }
        if let Some(charge) = &self.charge {
            for (name, value) in &charge.admission().headers {
                out.insert(name.clone(), value.clone());
            }
        }
    }
}

/// A count as a header value: the small ones every answer carries (retries attempted and
/// allowed) without the allocation `HeaderValue::from(u32)` makes.
pub fn count(n: u32) -> HeaderValue {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(n as usize) {
        Some(digit) => HeaderValue::from_static(digit),
        None => HeaderValue::from(n),
    }
}

/// Milliseconds with three decimals (`12.345`), written with integer arithmetic: float
/// formatting was a visible share of a request's instructions.
fn millis(d: Duration) -> HeaderValue {
    let micros = d.as_micros();
    let mut buf = [0u8; 48];
    let mut at = buf.len();
    let mut put = |digit: u128| {
        at -= 1;
        buf[at] = b'0' + digit as u8;
    };
    let (mut whole, mut frac) = (micros / 1000, micros % 1000);
    for _ in 0..3 {
        put(frac % 10);
        frac /= 10;
    }
    at -= 1;
    buf[at] = b'.';
    loop {
        at -= 1;
        buf[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&buf[at..]).expect("digits and a dot are a valid header value")
}

thread_local! {
    /// `llm_provider-<name>` header names, built once per thread per upstream header name. A
    /// fast hasher: the keys come from the configured upstreams' answers, not from clients.
    static PREFIXED: RefCell<FxHashMap<HeaderName, HeaderName>> = RefCell::new(FxHashMap::default());
}

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"];

/// Copies the upstream's headers: every one under `llm_provider-`, and OpenAI's rate-limit headers
/// also as they are.
pub fn forward_upstream(upstream: &HeaderMap, out: &mut HeaderMap) {
    PREFIXED.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Every answer that carries upstream headers passes here first, streamed or not.
        out.reserve(TYPICAL_RESPONSE_HEADERS.saturating_sub(out.len()));
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

    #[test]
    fn counts() {
        for n in [0, 1, 9, 10, 12345, u32::MAX] {
            assert_eq!(count(n), n.to_string().as_str());
        }
    }

    #[test]
    fn millis_have_three_decimals() {
        assert_eq!(millis(Duration::from_micros(12_345)), "12.345");
        assert_eq!(millis(Duration::from_micros(7)), "0.007");
        assert_eq!(millis(Duration::from_nanos(999)), "0.000");
        assert_eq!(millis(Duration::from_secs(90)), "90000.000");
    }
}
