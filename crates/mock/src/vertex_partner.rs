//! Vertex AI's doors for partner models, as Google publishes them: a publisher's
//! `…/publishers/{anthropic|mistralai|ai21}/models/{model}:rawPredict` (`:streamRawPredict` for
//! streams), and the OpenAI-compatible `…/endpoints/openapi/chat/completions` (and a Model
//! Garden endpoint's `…/endpoints/{id}/chat/completions`). Claude's door speaks Anthropic's
//! Messages API without `model` (the path names it) and with `anthropic_version`; the others
//! OpenAI's chat. Every one wants a Google bearer token, like Gemini's door.

use serde_json::Value;

/// Which partner door a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// A publisher model's `rawPredict`: the model from the path, and whether the verb streams.
    RawPredict { publisher: Publisher, model: &'a str, stream: bool },
    /// `endpoints/{openapi|id}/chat/completions`: OpenAI's chat, the model in the body.
    OpenApi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// Anthropic's Messages API.
    Anthropic,
    /// OpenAI's chat (Mistral AI, AI21).
    OpenAiChat,
}

/// Recognises a partner path under `/{v1,v1beta1}/projects/{p}/locations/{l}/`; `None` for
/// anything else (Gemini's `publishers/google` door included).
pub fn parse_path(path: &str) -> Option<Call<'_>> {
    let rest = path.strip_prefix("/v1/").or_else(|| path.strip_prefix("/v1beta1/"))?;
    let rest = rest.strip_prefix("projects/")?;
    let (_project, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("locations/")?;
    let (_location, rest) = rest.split_once('/')?;
    if let Some(endpoint) = rest.strip_prefix("endpoints/") {
        let id = endpoint.strip_suffix("/chat/completions")?;
        return (!id.is_empty() && !id.contains('/')).then_some(Call::OpenApi);
    }
    let rest = rest.strip_prefix("publishers/")?;
    let (publisher, rest) = rest.split_once("/models/")?;
    let publisher = match publisher {
        "anthropic" => Publisher::Anthropic,
        "mistralai" | "ai21" => Publisher::OpenAiChat,
        _ => return None,
    };
    let (model, verb) = rest.rsplit_once(':')?;
    let stream = match verb {
        "rawPredict" => false,
        "streamRawPredict" => true,
        _ => return None,
    };
    (!model.is_empty()).then_some(Call::RawPredict { publisher, model, stream })
}

/// What Claude's door refuses that Anthropic's own would take: a `model` in the body, no
/// `anthropic_version`, or a `stream` flag the verb contradicts. `Err` is the 400's message.
pub fn check_claude_body(body: &[u8], stream_verb: bool) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    if v.get("model").is_some() {
        return Err("model: Extra inputs are not permitted".into());
    }
    match v.get("anthropic_version").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => return Err("anthropic_version: Field required".into()),
    }
    check_stream(&v, stream_verb)
}

/// A body whose `stream` flag disagrees with the verb it was sent to (`streamRawPredict` wants
/// a stream, `rawPredict` a whole answer) is refused, so a gateway that picks the wrong verb
/// fails its tests.
pub fn check_stream(v: &Value, stream_verb: bool) -> Result<(), String> {
    let streams = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match (streams, stream_verb) {
        (true, false) => Err("stream: true must be sent to :streamRawPredict".into()),
        (false, true) => Err(":streamRawPredict needs stream: true".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path(
                "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:rawPredict"
            ),
            Some(Call::RawPredict {
                publisher: Publisher::Anthropic,
                model: "claude-3-5-sonnet@20240620",
                stream: false
            })
        );
        assert_eq!(
            parse_path("/v1/projects/p/locations/l/publishers/mistralai/models/mistral/error-429:streamRawPredict"),
            Some(Call::RawPredict { publisher: Publisher::OpenAiChat, model: "mistral/error-429", stream: true })
        );
        assert!(matches!(
            parse_path("/v1beta1/projects/p/locations/l/publishers/ai21/models/jamba:rawPredict"),
            Some(Call::RawPredict { publisher: Publisher::OpenAiChat, .. })
        ));
        assert_eq!(
            parse_path("/v1beta1/projects/p/locations/l/endpoints/openapi/chat/completions"),
            Some(Call::OpenApi)
        );
        assert_eq!(parse_path("/v1/projects/p/locations/l/endpoints/123/chat/completions"), Some(Call::OpenApi));
        for other in [
            "/v1/projects/p/locations/l/publishers/google/models/gemini:generateContent",
            "/v1/projects/p/locations/l/publishers/google/models/claude:rawPredict",
            "/v1/projects/p/locations/l/publishers/anthropic/models/claude:predict",
            "/v1/projects/p/locations/l/publishers/anthropic/models/:rawPredict",
            "/v1/projects/p/locations/l/endpoints//chat/completions",
            "/v1/chat/completions",
        ] {
            assert_eq!(parse_path(other), None, "{other}");
        }
    }

    #[test]
    fn claude_bodies_carry_the_version_and_no_model() {
        assert!(check_claude_body(br#"{"anthropic_version":"vertex-2023-10-16","messages":[]}"#, false).is_ok());
        let e = check_claude_body(br#"{"model":"c","anthropic_version":"v","messages":[]}"#, false).unwrap_err();
        assert!(e.contains("model"), "{e}");
        assert!(check_claude_body(br#"{"messages":[]}"#, false).unwrap_err().contains("anthropic_version"));
        assert!(check_claude_body(br#"{"anthropic_version":"v","stream":true,"messages":[]}"#, false).is_err());
        assert!(check_claude_body(br#"{"anthropic_version":"v","messages":[]}"#, true).is_err());
        assert!(check_claude_body(br#"{"anthropic_version":"v","stream":true,"messages":[]}"#, true).is_ok());
    }
}
