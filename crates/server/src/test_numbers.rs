//! Numbers as they arrive from outside, for the property tests of every parser that reads one:
//! huge, negative, fractional, exponent forms, overlong digit strings, NaN and infinities, and
//! arbitrary printable text.

use proptest::prelude::*;

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| x.to_string()),
        any::<f64>().prop_map(|x| format!("{x:e}")),
        "[0-9]{1,60}",
        "-?[0-9]{0,5}\\.?[0-9]{0,5}[eE][+-]?[0-9]{1,5}",
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-infinity".to_string()),
        "[ -~]{0,40}",
    ]
}

/// The same numbers followed by a unit of LiteLLM's duration grammar (or none, or a wrong one).
pub fn with_unit() -> impl Strategy<Value = String> {
    (text(), "(|s|m|h|d|w|mo|y|ms)").prop_map(|(n, u)| format!("{n}{u}"))
}

/// The same numbers as JSON values: numbers where JSON can carry them, strings otherwise (as
/// clients send them quoted).
pub fn json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        text().prop_map(serde_json::Value::String),
        text()
            .prop_filter_map("not a JSON number", |t| serde_json::from_str::<serde_json::Number>(&t).ok())
            .prop_map(serde_json::Value::Number),
        any::<f64>().prop_filter_map("not finite", serde_json::Number::from_f64).prop_map(serde_json::Value::Number),
    ]
}
