//! `mock_response`: answering without an upstream, as LiteLLM does, from the config (so an example
//! config works on a machine with no provider at all) or from the request's own `mock_response`.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

/// LiteLLM's mock usage figures.
const USAGE: (u64, u64) = (10, 20);

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// LiteLLM's mock usage, as the bill reads it.
pub fn usage_counts() -> sluice_wire::sniff::Usage {
    sluice_wire::sniff::Usage {
        prompt_tokens: USAGE.0,
        completion_tokens: USAGE.1,
        total_tokens: USAGE.0 + USAGE.1,
        ..Default::default()
    }
}

fn usage() -> serde_json::Value {
    json!({"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1})
}

/// The complete (non-streamed) mock answer.
pub fn complete(endpoint: Endpoint, model: &str, text: &str, call_id: &str) -> Result<Bytes, ApiError> {
    let body = match endpoint {
        Endpoint::Chat => json!({
            "id": format!("chatcmpl-{call_id}"),
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage(),
        }),
        Endpoint::Completions => json!({
            "id": format!("cmpl-{call_id}"),
            "object": "text_completion",
            "created": now(),
            "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage(),
        }),
        Endpoint::Embeddings
        | Endpoint::Rerank
        | Endpoint::Images
        | Endpoint::ImageEdits
        | Endpoint::ImageVariations
        | Endpoint::Moderations
        | Endpoint::Speech
        | Endpoint::Transcriptions
        | Endpoint::Translations => return Err(ApiError::bad_request(
            "mock_response answers chat and completion requests only; point this deployment at a server for this route",
        )),
        // `/v1/responses` reaches the demo model as chat (`proxy::responses`).
        Endpoint::Responses => {
            return Err(ApiError::bad_request("mock_response answers the Responses API through chat"))
        }
    };
    Ok(Bytes::from(body.to_string()))
}

/// The streamed mock answer: the text word by word, a finish chunk, usage if asked, `[DONE]`.
pub fn stream(
    endpoint: Endpoint,
    model: &str,
    text: &str,
    call_id: &str,
    include_usage: bool,
) -> Result<Bytes, ApiError> {
    let created = now();
    let (id, object) = match endpoint {
        Endpoint::Chat => (format!("chatcmpl-{call_id}"), "chat.completion.chunk"),
        Endpoint::Completions => (format!("cmpl-{call_id}"), "text_completion"),
        Endpoint::Embeddings
        | Endpoint::Responses
        | Endpoint::Rerank
        | Endpoint::Images
        | Endpoint::ImageEdits
        | Endpoint::ImageVariations
        | Endpoint::Moderations
        | Endpoint::Speech
        | Endpoint::Transcriptions
        | Endpoint::Translations => return complete(endpoint, model, text, call_id),
    };
    let mut out = BytesMut::new();
    let mut frame = |choices: serde_json::Value, usage: Option<serde_json::Value>| {
        let mut chunk = json!({"id": id, "object": object, "created": created, "model": model, "choices": choices});
        if let Some(u) = usage {
            chunk["usage"] = u;
        }
        out.put_slice(b"data: ");
        out.put_slice(chunk.to_string().as_bytes());
        out.put_slice(b"\n\n");
    };
    for (i, word) in text.split_inclusive(' ').enumerate() {
        let choice = match endpoint {
            Endpoint::Chat if i == 0 => {
                json!([{"index": 0, "delta": {"role": "assistant", "content": word}, "finish_reason": null}])
            }
            Endpoint::Chat => json!([{"index": 0, "delta": {"content": word}, "finish_reason": null}]),
            _ => json!([{"index": 0, "text": word, "finish_reason": null}]),
        };
        frame(choice, None);
    }
    let last = match endpoint {
        Endpoint::Chat => json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        _ => json!([{"index": 0, "text": "", "finish_reason": "stop"}]),
    };
    frame(last, None);
    if include_usage {
        frame(json!([]), Some(usage()));
    }
    out.put_slice(b"data: [DONE]\n\n");
    Ok(out.freeze())
}
