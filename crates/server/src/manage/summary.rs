//! The summarised `/spend/logs` answer written straight to bytes. With 10,000 keys a week of it
//! is 6 MB of names and figures, and serde_json checking every byte of every name for escapes
//! was the largest single cost of the route: most names (key hashes, model names) need none, and
//! a check of a whole name at once is several times quicker. A name that does need escaping is
//! written by serde_json.

use axum::response::{IntoResponse, Response};
use sluice_store::{DailySpend, SpendByName};

/// `[{"startTime", "spend", "models", "users", "api_keys"}, …]`, as `serde_json` would write
/// [`DailySpend`]'s own `Serialize`.
pub(crate) fn days_json(days: &[DailySpend]) -> Vec<u8> {
    let names: usize = days.iter().map(|d| d.models.len() + d.users.len() + d.api_keys.len()).sum();
    let mut out = Vec::with_capacity(64 + names * 96);
    out.push(b'[');
    for (i, d) in days.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"startTime\":");
        string(&mut out, &d.date);
        out.extend_from_slice(b",\"spend\":");
        number(&mut out, d.spend);
        for (field, sums) in [("models", &d.models), ("users", &d.users), ("api_keys", &d.api_keys)] {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":");
            object(&mut out, sums);
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

pub(crate) fn response(days: &[DailySpend]) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], days_json(days)).into_response()
}

fn object(out: &mut Vec<u8>, sums: &SpendByName) {
    out.push(b'{');
    for (i, (name, spend)) in sums.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, name);
        out.push(b':');
        number(out, *spend);
    }
    out.push(b'}');
}

fn string(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Infallible: a Vec takes every write and a str is always valid.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Whether JSON needs any byte of `s` escaped: a control character, a quote or a backslash.
/// Without an early exit, so that it runs over many bytes at once.
fn needs_escape(s: &[u8]) -> bool {
    s.iter().fold(false, |bad, &b| bad | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// As serde_json writes an f64 (a non-finite one as `null`).
fn number(out: &mut Vec<u8>, x: f64) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(date: &str, names: &[(&str, f64)]) -> DailySpend {
        let sums: SpendByName = names.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        DailySpend {
            date: date.into(),
            spend: names.iter().map(|(_, s)| s).sum(),
            models: sums.clone(),
            users: sums.clone(),
            api_keys: sums,
        }
    }

    /// Byte for byte: both walk the same maps in the same order.
    fn same_as_serde(days: &[DailySpend]) {
        let ours = days_json(days);
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde_json::to_vec(days).unwrap()));
    }

    #[test]
    fn the_answer_is_what_serde_writes() {
        same_as_serde(&[]);
        same_as_serde(&[day("2026-12-01", &[])]);
        same_as_serde(&[
            day("2026-12-01", &[("gpt-4o", 0.00153), ("a\"quoted\\name\u{1}", 1e-7), ("ünï", 2.5)]),
            day("2026-12-02", &[("k", f64::NAN), ("big", 1e300)]),
        ]);
    }

    proptest! {
        #[test]
        fn any_names_and_figures_come_out_as_serde_writes_them(
            names in proptest::collection::vec((any::<String>(), any::<f64>()), 0..20),
        ) {
            let names: Vec<(&str, f64)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
            same_as_serde(&[day("2026-12-01", &names), day("2026-12-02\"", &names)]);
        }
    }
}
