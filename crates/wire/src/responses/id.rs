//! Response ids that name the deployment holding the response, as LiteLLM writes them:
//! `resp_` + base64 of `litellm:custom_llm_provider:{provider};model_id:{deployment id};response_id:{upstream id}`.
//! OpenAI keeps a response where it was made, so a `GET`, a `DELETE` or a `previous_response_id`
//! must reach the same deployment; the id carries it there without a lookup table, and ids a
//! LiteLLM proxy handed out keep working after a move to sluice.

use base64::Engine as _;

const PREFIX: &str = "resp_";
const HEAD: &str = "litellm:custom_llm_provider:";
/// The longest id decoded: an upstream id and a deployment id are short; anything longer is not
/// one of ours and is not worth decoding.
const MAX_LEN: usize = 4096;

/// What an id minted by [`encode`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub provider: String,
    pub model_id: String,
    /// The id the upstream gave the response.
    pub response_id: String,
}

/// The id a client sees for `response_id`, made by deployment `model_id` of `provider`.
pub fn encode(provider: &str, model_id: &str, response_id: &str) -> String {
    let raw = format!("{HEAD}{provider};model_id:{model_id};response_id:{response_id}");
    let mut out = String::with_capacity(PREFIX.len() + raw.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(raw, &mut out);
    out
}

/// Reads an id made by [`encode`] (padded or not, standard or URL-safe alphabet); `None` for
/// any other id (an upstream's own, one of sluice's stored responses, garbage).
pub fn decode(id: &str) -> Option<Decoded> {
    if id.len() > MAX_LEN {
        return None;
    }
    let b64 = id.strip_prefix(PREFIX)?.trim_end_matches('=');
    let engines =
        [&base64::engine::general_purpose::STANDARD_NO_PAD, &base64::engine::general_purpose::URL_SAFE_NO_PAD];
    let raw = engines.iter().find_map(|e| e.decode(b64).ok())?;
    let text = String::from_utf8(raw).ok()?;
    let rest = text.strip_prefix(HEAD)?;
    let (provider, rest) = rest.split_once(";model_id:")?;
    let (model_id, response_id) = rest.split_once(";response_id:")?;
    if response_id.is_empty() {
        return None;
    }
    Some(Decoded {
        provider: provider.to_string(),
        model_id: model_id.to_string(),
        response_id: response_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_litellm_ids() {
        let id = encode("openai", "dep-1", "resp_abc123");
        assert!(id.starts_with("resp_"));
        let d = decode(&id).unwrap();
        assert_eq!(
            (d.provider.as_str(), d.model_id.as_str(), d.response_id.as_str()),
            ("openai", "dep-1", "resp_abc123")
        );
        // As LiteLLM writes one (standard alphabet, padded), and with its padding stripped.
        let litellm =
            "resp_bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVyOm9wZW5haTttb2RlbF9pZDpOb25lO3Jlc3BvbnNlX2lkOnJlc3BfdG95MTIz";
        let d = decode(litellm).unwrap();
        assert_eq!((d.model_id.as_str(), d.response_id.as_str()), ("None", "resp_toy123"));
        assert_eq!(decode(&format!("{litellm}==")).unwrap(), d);
    }

    #[test]
    fn other_ids_are_not_ours() {
        for id in ["resp_67ebc9caabf48191", "resp_", "", "msg_x", "resp_!!!!", "resp_bGl0ZWxsbQ"] {
            assert_eq!(decode(id), None, "{id}");
        }
        assert_eq!(decode(&encode("openai", "d", "")), None);
        assert_eq!(decode(&"resp_".repeat(2000)), None);
    }

    proptest::proptest! {
        /// Whatever a client sends as an id, reading it never panics, and what [`encode`] makes
        /// reads back as it was.
        #[test]
        fn any_id_reads_without_panic(id in ".{0,300}", a in "[a-z_]{1,12}", b in "[^;]{0,40}", c in ".{1,80}") {
            let _ = decode(&id);
            let _ = decode(&format!("resp_{id}"));
            let d = decode(&encode(&a, &b, &c)).unwrap();
            proptest::prop_assert_eq!(d, Decoded { provider: a, model_id: b, response_id: c });
        }
    }
}
