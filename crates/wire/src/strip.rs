//! Removing top-level members from a request body without re-serialising the rest: how the
//! gateway's own fields ([`crate::controls`]) are kept from reaching an upstream.
//!
//! The members that stay are copied as the same bytes, in order; only the whitespace between
//! top-level members is lost. Runs only for a request that carries such a field.

use crate::scan;
use bytes::Bytes;

/// `body` (a JSON object, already accepted by [`crate::sniff::request`]) without its top-level
/// members named in `names`.
pub fn without_members(body: &[u8], names: &[&str]) -> Bytes {
    let Some(text) = crate::text::utf8(body) else { return Bytes::copy_from_slice(body) };
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    let walked = scan::object_members(text, |key, escaped, value| {
        let decoded;
        let name = if escaped {
            decoded = serde_json::from_str::<String>(&format!("\"{key}\"")).map_err(|_| scan::Refused)?;
            decoded.as_str()
        } else {
            key
        };
        if names.contains(&name) {
            return Ok(());
        }
        if out.len() > 1 {
            out.push(b',');
        }
        // The member from its key's opening quote to its value's end, as sent.
        let start = key.as_ptr() as usize - text.as_ptr() as usize - 1;
        let end = value.as_ptr() as usize - text.as_ptr() as usize + value.len();
        out.extend_from_slice(&body[start..end]);
        Ok(())
    });
    if walked.is_err() {
        // What the fast scanner leaves to serde_json (deep nesting): the slow way, once.
        return by_tree(body, names);
    }
    out.push(b'}');
    Bytes::from(out)
}

fn by_tree(body: &[u8], names: &[&str]) -> Bytes {
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut object) => {
            for name in names {
                object.remove(*name);
            }
            Bytes::from(serde_json::Value::Object(object).to_string())
        }
        Err(_) => Bytes::copy_from_slice(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> serde_json::Value {
        serde_json::from_slice(&without_members(s.as_bytes(), &["fallbacks", "num_retries"])).unwrap()
    }

    #[test]
    fn removes_named_members_wherever_they_are() {
        let want = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "fallbacks"}]});
        for body in [
            r#"{"fallbacks":["a"],"model":"m","messages":[{"role":"user","content":"fallbacks"}]}"#,
            r#"{"model":"m","fallbacks":["a"],"messages":[{"role":"user","content":"fallbacks"}],"num_retries":2}"#,
            r#" { "model" : "m" , "messages" : [{"role":"user","content":"fallbacks"}] , "num_retries" : 1 } "#,
            r#"{"model":"m","messages":[{"role":"user","content":"fallbacks"}],"fallb\u0061cks":["x"]}"#,
        ] {
            assert_eq!(strip(body), want, "{body}");
        }
        assert_eq!(strip(r#"{"fallbacks":[]}"#), serde_json::json!({}));
    }

    #[test]
    fn keeps_the_remaining_bytes_as_sent() {
        let body = r#"{"model":"m","x":1.50,"num_retries":3,"s":"\u00e9"}"#;
        assert_eq!(&without_members(body.as_bytes(), &["num_retries"])[..], br#"{"model":"m","x":1.50,"s":"\u00e9"}"#);
    }

    #[test]
    fn deep_bodies_go_through_a_tree() {
        let deep = format!(r#"{{"num_retries":1,"x":{}{}}}"#, "[".repeat(120), "]".repeat(120));
        let v = strip(&deep);
        assert!(v.get("num_retries").is_none() && v.get("x").is_some());
    }
}
