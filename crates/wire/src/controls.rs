//! The request fields that are the gateway's, not the model's: LiteLLM's per-request controls
//! (`fallbacks`, `num_retries`, `timeout`, the answer cache's `cache`) and its testing switches (`mock_response`,
//! `mock_testing_fallbacks`, `mock_testing_rate_limit_error`, `mock_timeout`).
//!
//! [`crate::sniff`] finds them in the same scan that finds `model`; they are read here only when
//! one is present, so the common request pays nothing more. None of them may reach an upstream
//! (LiteLLM strips them too): [`crate::strip`] removes them from the body.

use crate::error::ApiError;
use serde::Deserialize;
use std::time::Duration;

/// The control fields, in the order [`crate::sniff`] hands their raw values to [`parse`].
pub const NAMES: [&str; 9] = [
    "fallbacks",
    "num_retries",
    "timeout",
    "mock_response",
    "mock_testing_fallbacks",
    "mock_testing_rate_limit_error",
    "mock_timeout",
    "disable_fallbacks",
    "cache",
];

/// The most retries a request may ask for: each is another upstream call, and past a handful a
/// retry loop outlasts any client's own timeout; a larger number is read as this one. (The
/// group's retry budget still caps what a storm of retries costs.)
pub const MAX_NUM_RETRIES: u32 = 10;

/// The longest per-attempt timeout a request may ask for, as long as a config's may be.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The shortest per-attempt timeout: a millisecond.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The most fallbacks one request may list: LiteLLM tries at most `max_fallbacks` (5 by
/// default) anyway, and a longer list is more likely a mistake than a plan.
pub const MAX_FALLBACKS: usize = 20;

/// What the request asked of the gateway.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Controls {
    /// `fallbacks`: replaces the configured fallbacks for this request (LiteLLM's
    /// `kwargs.get("fallbacks", self.fallbacks)`).
    pub fallbacks: Option<Vec<FallbackEntry>>,
    /// `num_retries`, at most [`MAX_NUM_RETRIES`].
    pub num_retries: Option<u32>,
    /// `timeout` (seconds, per attempt), at most [`MAX_TIMEOUT`]. The `x-litellm-timeout` header
    /// is read by the server and wins, as in LiteLLM.
    pub timeout: Option<Duration>,
    pub mock_response: Option<MockResponse>,
    /// Every attempt at the requested model fails (an internal server error), so the fallbacks
    /// are taken.
    pub mock_testing_fallbacks: bool,
    /// Every attempt at the requested model answers 429, as a rate-limited deployment does.
    pub mock_testing_rate_limit_error: bool,
    /// The attempt waits out its timeout and fails as a timeout.
    pub mock_timeout: bool,
    /// `disable_fallbacks: true`: no fallback, configured or not.
    pub disable_fallbacks: bool,
    /// `cache`: what this request asks of the answer cache.
    pub cache: Option<CacheControls>,
}

/// The most seconds a request may ask an answer to be kept (`cache.ttl`) or may accept an entry's
/// age (`cache.s-maxage`): a year; a larger number is read as this one.
pub const MAX_CACHE_SECONDS: u64 = 365 * 24 * 3600;

/// The longest `cache.namespace`, in bytes: it becomes part of every key the request reads or
/// writes.
pub const MAX_CACHE_NAMESPACE: usize = 256;

/// The request's `cache` object (LiteLLM's per-request cache controls; the OpenAI SDK sends it
/// through `extra_body`). LiteLLM's code is the reference where its docs disagree: `no-cache`
/// skips the lookup (the answer is still stored), `no-store` skips the write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControls {
    /// `no-cache: true`: do not answer from the cache.
    pub no_cache: bool,
    /// `no-store: true`: do not keep this answer.
    pub no_store: bool,
    /// `ttl`: keep this answer that long (whole seconds, at least one).
    pub ttl: Option<Duration>,
    /// `s-maxage` (or `s-max-age`): accept only an entry at most that old.
    pub s_maxage: Option<Duration>,
    /// `namespace`: entries of this namespace only, instead of the configured one.
    pub namespace: Option<String>,
    /// `use-cache: true`: opt in when the cache's `mode` is `default_off`.
    pub use_cache: bool,
    /// Every member's name as sent, the ones read above and the rest: a key's
    /// `allowed_cache_controls` is checked against these, as LiteLLM checks the object's keys.
    pub named: Vec<String>,
}

/// One entry of a request's `fallbacks`.
#[derive(Debug, Clone, PartialEq)]
pub enum FallbackEntry {
    /// A model name, or `{"model": ..., "messages": [...]}`: the model to try next, and the
    /// messages to send it instead of the request's (raw JSON of the list).
    Model { model: String, messages: Option<String> },
    /// The router's own form, `{"group": ["fallback", ...]}`: applies when `group` (or `"*"`)
    /// is the requested model.
    ByGroup { group: String, models: Vec<String> },
}

/// `mock_response`: the answer's text, or one of the error names LiteLLM's `mock_completion`
/// raises instead of answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockResponse {
    Text(String),
    /// `"litellm.RateLimitError"`: a 429.
    RateLimit,
    /// `"litellm.InternalServerError"`: a 500.
    InternalServer,
    /// `"litellm.ContextWindowExceededError"`: a 400 the context-window fallbacks take.
    ContextWindowExceeded,
    /// `"Exception: content_filter_policy..."`: a 400 the content-policy fallbacks take.
    ContentPolicy(String),
}

impl MockResponse {
    fn from_text(text: String) -> MockResponse {
        match text.as_str() {
            "litellm.RateLimitError" => MockResponse::RateLimit,
            "litellm.InternalServerError" => MockResponse::InternalServer,
            "litellm.ContextWindowExceededError" => MockResponse::ContextWindowExceeded,
            t if t.starts_with("Exception: content_filter_policy") => MockResponse::ContentPolicy(text),
            _ => MockResponse::Text(text),
        }
    }
}

impl Controls {
    /// The fallbacks this request names for `model`, in order; `None` when it names none (the
    /// configured ones apply). The router's `{"group": [...]}` form applies for its group, else
    /// for `"*"`; plain entries apply to any model.
    pub fn fallbacks_for(&self, model: &str) -> Option<Vec<(String, Option<String>)>> {
        let entries = self.fallbacks.as_ref()?;
        let by_group = |want: &str| {
            entries.iter().find_map(|e| match e {
                FallbackEntry::ByGroup { group, models } if group == want => Some(models),
                _ => None,
            })
        };
        if let Some(models) = by_group(model).or_else(|| by_group("*")) {
            return Some(models.iter().map(|m| (m.clone(), None)).collect());
        }
        Some(
            entries
                .iter()
                .filter_map(|e| match e {
                    FallbackEntry::Model { model, messages } => Some((model.clone(), messages.clone())),
                    FallbackEntry::ByGroup { .. } => None,
                })
                .collect(),
        )
    }
}

/// Reads the raw values of [`NAMES`] (in that order); `None` when the request has none of them.
pub(crate) fn parse(raw: [Option<&str>; NAMES.len()]) -> Result<Option<Box<Controls>>, ApiError> {
    if raw.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [fallbacks, num_retries, timeout, mock_response, mock_testing_fallbacks, rate_limit, mock_timeout, disable, cache] =
        raw;
    Ok(Some(Box::new(Controls {
        fallbacks: fallbacks.map(parse_fallbacks).transpose()?,
        num_retries: num_retries.map(parse_num_retries).transpose()?,
        timeout: timeout.map(|v| parse_timeout(v, "timeout")).transpose()?,
        mock_response: mock_response.map(parse_mock_response).transpose()?,
        mock_testing_fallbacks: flag(mock_testing_fallbacks, "mock_testing_fallbacks")?,
        mock_testing_rate_limit_error: flag(rate_limit, "mock_testing_rate_limit_error")?,
        mock_timeout: flag(mock_timeout, "mock_timeout")?,
        disable_fallbacks: flag(disable, "disable_fallbacks")?,
        cache: cache.map(parse_cache).transpose()?,
    })))
}

fn parse_cache(v: &str) -> Result<CacheControls, ApiError> {
    let bad = |why: String| {
        ApiError::bad_request(format!(
            "cache: {why}. Send an object, e.g. \"cache\": {{\"no-cache\": true}}, {{\"ttl\": 600}}, {{\"s-maxage\": 60}} or {{\"namespace\": \"team-a\"}}."
        ))
        .param("cache")
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(v).map_err(|_| bad("expected an object".into()))?;
    let mut c = CacheControls { named: object.keys().cloned().collect(), ..CacheControls::default() };
    for (name, value) in &object {
        let switch = || match value {
            serde_json::Value::Bool(b) => Ok(*b),
            serde_json::Value::Null => Ok(false),
            _ => Err(bad(format!("`{name}` must be true or false"))),
        };
        let seconds = || match value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(s) if s.is_finite() && s >= 0.0 => {
                    Ok(Some(Duration::from_secs((s.ceil() as u64).min(MAX_CACHE_SECONDS))))
                }
                _ => Err(bad(format!("`{name}` must be a number of seconds, 0 or more"))),
            },
            _ => Err(bad(format!("`{name}` must be a number of seconds"))),
        };
        match name.as_str() {
            "no-cache" => c.no_cache = switch()?,
            "no-store" => c.no_store = switch()?,
            "use-cache" => c.use_cache = switch()?,
            // A zero ttl keeps nothing: as `no-store`.
            "ttl" => match seconds()? {
                Some(Duration::ZERO) => c.no_store = true,
                t => c.ttl = t,
            },
            "s-maxage" | "s-max-age" => c.s_maxage = seconds()?,
            "namespace" => match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(ns) if !ns.is_empty() && ns.len() <= MAX_CACHE_NAMESPACE => {
                    c.namespace = Some(ns.clone())
                }
                _ => return Err(bad(format!("`namespace` must be a string of 1 to {MAX_CACHE_NAMESPACE} bytes"))),
            },
            // LiteLLM reads the controls it knows and passes over the rest.
            _ => {}
        }
    }
    Ok(c)
}

fn flag(v: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match v {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request(format!("{name}: expected true or false.")).param(name)),
    }
}

fn parse_num_retries(v: &str) -> Result<u32, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "num_retries: expected a whole number from 0 to {MAX_NUM_RETRIES}, got {v}. Send e.g. \"num_retries\": 2."
        ))
        .param("num_retries")
    };
    // Digits only: a sign, a fraction or an exponent is not a count of retries. More digits than
    // a u32 holds is still "many", read as the maximum.
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(v.parse::<u64>().map_or(MAX_NUM_RETRIES, |n| n.min(MAX_NUM_RETRIES as u64) as u32))
}

/// A timeout in seconds: a JSON number, or a string holding one (as a header carries it).
/// Refused unless finite and above zero; more than [`MAX_TIMEOUT`] is read as that, less than
/// [`MIN_TIMEOUT`] as that (a zero deadline would fail every attempt before it is sent).
pub fn parse_timeout(v: &str, name: &str) -> Result<Duration, ApiError> {
    let text = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v).trim();
    let secs: f64 = text.parse().map_err(|_| timeout_error(v, name))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(timeout_error(v, name));
    }
    Ok(Duration::from_secs_f64(secs.min(MAX_TIMEOUT.as_secs_f64())).max(MIN_TIMEOUT))
}

fn timeout_error(v: &str, name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{name}: expected a number of seconds above 0 (at most {}), got {v}. Send e.g. \"timeout\": 30.",
        MAX_TIMEOUT.as_secs()
    ))
    .param(name.to_string())
}

fn parse_mock_response(v: &str) -> Result<MockResponse, ApiError> {
    let text: String = serde_json::from_str(v).map_err(|_| {
        ApiError::bad_request(
            "mock_response: expected a string: the answer's text, or an error name such as \"litellm.RateLimitError\".",
        )
        .param("mock_response")
    })?;
    Ok(MockResponse::from_text(text))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Name(String),
    Object(serde_json::Map<String, serde_json::Value>),
}

fn parse_fallbacks(v: &str) -> Result<Vec<FallbackEntry>, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "fallbacks: {why}. Send a list of model names, e.g. \"fallbacks\": [\"gpt-4o-mini\"], or of objects like {{\"model\": \"gpt-4o-mini\", \"messages\": [...]}}."
        ))
        .param("fallbacks")
    };
    let raw: Vec<RawEntry> = serde_json::from_str(v).map_err(|_| bad("expected a list"))?;
    if raw.len() > MAX_FALLBACKS {
        return Err(bad(&format!("at most {MAX_FALLBACKS} entries, got {}", raw.len())));
    }
    raw.into_iter()
        .map(|entry| match entry {
            RawEntry::Name(model) => Ok(FallbackEntry::Model { model, messages: None }),
            RawEntry::Object(mut o) if o.contains_key("model") => {
                let model = match o.remove("model") {
                    Some(serde_json::Value::String(m)) => m,
                    _ => return Err(bad("`model` of an entry must be a string")),
                };
                let messages = match o.remove("messages") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(m @ serde_json::Value::Array(_)) => Some(m.to_string()),
                    Some(_) => return Err(bad("`messages` of an entry must be a list of messages")),
                };
                if let Some(other) = o.keys().next() {
                    return Err(bad(&format!("an entry may set `model` and `messages` only, not `{other}`")));
                }
                Ok(FallbackEntry::Model { model, messages })
            }
            RawEntry::Object(o) if o.len() == 1 => {
                let (group, models) = o.into_iter().next().expect("one member");
                let models: Vec<String> = serde_json::from_value(models)
                    .map_err(|_| bad(&format!("`{group}` must map to a list of model names")))?;
                if models.len() > MAX_FALLBACKS {
                    return Err(bad(&format!("at most {MAX_FALLBACKS} models per group")));
                }
                Ok(FallbackEntry::ByGroup { group, models })
            }
            RawEntry::Object(_) => Err(bad("an object entry needs a `model`")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(i: usize, v: &str) -> Result<Option<Box<Controls>>, ApiError> {
        let mut raw = [None; NAMES.len()];
        raw[i] = Some(v);
        parse(raw)
    }

    #[test]
    fn nothing_present_is_nothing() {
        assert_eq!(parse([None; NAMES.len()]).unwrap(), None);
    }

    #[test]
    fn reads_fallbacks_in_every_form() {
        let c = one(0, r#"["a", {"model": "b", "messages": [{"role": "user", "content": "x"}]}, {"model": "c"}]"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            c.fallbacks_for("m").unwrap(),
            vec![
                ("a".into(), None),
                ("b".into(), Some(r#"[{"content":"x","role":"user"}]"#.into())),
                ("c".into(), None)
            ]
        );
        let c = one(0, r#"[{"m": ["x", "y"]}, {"*": ["z"]}]"#).unwrap().unwrap();
        assert_eq!(c.fallbacks_for("m").unwrap(), vec![("x".into(), None), ("y".into(), None)]);
        assert_eq!(c.fallbacks_for("other").unwrap(), vec![("z".into(), None)]);
        let c = one(1, "3").unwrap().unwrap();
        assert_eq!(c.fallbacks_for("m"), None);
    }

    #[test]
    fn refuses_malformed_fallbacks_with_what_to_send() {
        for bad in [
            r#""gpt-4""#,
            "[1]",
            r#"[{"model": 5}]"#,
            r#"[{"model": "a", "messages": "hi"}]"#,
            r#"[{"model": "a", "temperature": 0}]"#,
            r#"[{"a": "b"}]"#,
            r#"[{}]"#,
            &format!("[{}]", vec!["\"a\""; MAX_FALLBACKS + 1].join(",")),
        ] {
            let e = one(0, bad).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some("fallbacks")), "{bad}");
            assert!(e.message.contains("Send a list of model names"), "{}", e.message);
        }
    }

    #[test]
    fn num_retries_are_bounded() {
        let n = |v: &str| one(1, v).map(|c| c.unwrap().num_retries.unwrap());
        assert_eq!(n("0").unwrap(), 0);
        assert_eq!(n("3").unwrap(), 3);
        assert_eq!(n("11").unwrap(), MAX_NUM_RETRIES);
        assert_eq!(n("99999999999999999999999").unwrap(), MAX_NUM_RETRIES);
        for bad in ["-1", "1.5", "1e3", "\"2\"", "true", "[]"] {
            assert_eq!(n(bad).unwrap_err().param.as_deref(), Some("num_retries"), "{bad}");
        }
    }

    #[test]
    fn timeouts_are_positive_and_bounded() {
        let t = |v: &str| parse_timeout(v, "timeout");
        assert_eq!(t("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(t("\"2\"").unwrap(), Duration::from_secs(2));
        assert_eq!(t("1e9").unwrap(), MAX_TIMEOUT);
        assert_eq!(t("1e-300").unwrap(), MIN_TIMEOUT);
        for bad in ["0", "-1", "\"x\"", "1e999", "\"NaN\"", "\"inf\"", "[]", "true"] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mock_responses_name_errors_like_litellm() {
        let m = |v: &str| one(3, v).unwrap().unwrap().mock_response.unwrap();
        assert_eq!(m(r#""hello""#), MockResponse::Text("hello".into()));
        assert_eq!(m(r#""litellm.RateLimitError""#), MockResponse::RateLimit);
        assert_eq!(m(r#""litellm.InternalServerError""#), MockResponse::InternalServer);
        assert_eq!(m(r#""litellm.ContextWindowExceededError""#), MockResponse::ContextWindowExceeded);
        assert!(matches!(m(r#""Exception: content_filter_policy""#), MockResponse::ContentPolicy(_)));
        assert!(one(3, "5").is_err());
    }

    #[test]
    fn switches_are_booleans() {
        // The switches: from `mock_testing_fallbacks` to `disable_fallbacks`.
        for (i, name) in NAMES.iter().enumerate().skip(4).take(4) {
            assert!(one(i, "true").unwrap().is_some());
            assert!(one(i, "\"yes\"").is_err(), "{name}");
        }
        let c = one(4, "true").unwrap().unwrap();
        assert!(c.mock_testing_fallbacks && !c.mock_timeout);
    }

    #[test]
    fn cache_controls_are_read_as_litellm_reads_them_and_bounded() {
        let c = |v: &str| one(8, v).map(|c| c.unwrap().cache.unwrap());
        let all = c(r#"{"no-cache": true, "no-store": false, "ttl": 1.5, "s-max-age": 60, "namespace": "team-a", "use-cache": true, "other": 1}"#).unwrap();
        assert_eq!(
            all,
            CacheControls {
                no_cache: true,
                no_store: false,
                ttl: Some(Duration::from_secs(2)),
                s_maxage: Some(Duration::from_secs(60)),
                namespace: Some("team-a".into()),
                use_cache: true,
                named: ["namespace", "no-cache", "no-store", "other", "s-max-age", "ttl", "use-cache"]
                    .map(String::from)
                    .to_vec(),
            }
        );
        assert_eq!(c(r#"{"s-maxage": 1e300}"#).unwrap().s_maxage, Some(Duration::from_secs(MAX_CACHE_SECONDS)));
        assert!(c(r#"{"ttl": 0}"#).unwrap().no_store, "keeping an answer for no time is not keeping it");
        for bad in [
            r#""no-cache""#,
            "[]",
            r#"{"no-cache": "yes"}"#,
            r#"{"ttl": -1}"#,
            r#"{"ttl": "60"}"#,
            r#"{"namespace": ""}"#,
            r#"{"namespace": 7}"#,
        ] {
            let e = c(bad).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("cache"), "{bad}");
            assert!(e.message.contains("Send an object"), "{}", e.message);
        }
        let long = format!(r#"{{"namespace": "{}"}}"#, "n".repeat(MAX_CACHE_NAMESPACE + 1));
        assert!(c(&long).is_err());
    }

    proptest::proptest! {
        /// Whatever a client sends in these fields, reading them never panics, and what comes
        /// out is within its bounds.
        #[test]
        fn any_control_value_is_refused_or_bounded(
            text in "\\PC{0,40}",
            number in proptest::num::f64::ANY,
            at in 0..NAMES.len(),
        ) {
            for v in [text.clone(), format!("{number}"), format!("\"{number}\""), format!("[{text}]")] {
                let mut raw = [None; NAMES.len()];
                raw[at] = Some(v.as_str());
                if let Ok(Some(c)) = parse(raw) {
                    proptest::prop_assert!(c.num_retries.is_none_or(|n| n <= MAX_NUM_RETRIES));
                    proptest::prop_assert!(c.timeout.is_none_or(|t| !t.is_zero() && t <= MAX_TIMEOUT));
                    proptest::prop_assert!(c.fallbacks.as_ref().is_none_or(|f| f.len() <= MAX_FALLBACKS));
                }
                if let Ok(t) = parse_timeout(&v, "x-litellm-timeout") {
                    proptest::prop_assert!(!t.is_zero() && t <= MAX_TIMEOUT);
                }
            }
        }
    }
}
