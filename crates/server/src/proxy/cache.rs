//! The answer cache on the request path (`sluice_cache`): the lookup once a request is admitted
//! and billed to its key, a hit answered here (whole or replayed as a stream, billed nothing,
//! logged with `cache_hit`), a miss's answer kept once it came back whole.
//!
//! A hit counts toward the key's rate limits like any request (it was admitted first, as in
//! LiteLLM) and reaches no deployment. The `/v1/messages` front door is not cached: its answers
//! are Anthropic's, not the chat answers the cache keeps (LiteLLM does not cache
//! `anthropic_messages` either).

use super::headers::{self, Facts, Outcome};
use crate::app::App;
use crate::exchange::{Reply, ReplyBody};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use sluice_cache::{Lookup, Shape};
use sluice_wire::sniff::{self, Endpoint, RequestView};
use std::sync::Arc;
use std::time::Duration;

/// LiteLLM's header naming the key a hit was found under.
pub static CACHE_KEY: HeaderName = HeaderName::from_static("x-litellm-cache-key");

/// A semantic hit's closeness to the prompt it was kept for.
pub static SIMILARITY: HeaderName = HeaderName::from_static("x-litellm-semantic-similarity");

/// The longest prompt text a semantic cache embeds (the rest is not compared).
const MAX_PROMPT: usize = 32 * 1024;

/// How long the semantic cache waits for a prompt's embedding before going upstream without it.
const EMBED_TIMEOUT: Duration = Duration::from_secs(10);

/// One request's business with the cache: its lookup, and for a semantic cache its prompt's
/// embedding (kept with the answer).
pub(crate) struct CacheCall {
    lookup: Lookup,
    vector: Option<Vec<f32>>,
}

/// What the cache does for this request (`controls`: the request's own, taken out of its body);
/// `None` when caching is off or the request is not one it keeps.
pub(crate) fn lookup(
    app: &App,
    endpoint: Endpoint,
    model: &str,
    body: &[u8],
    view: &RequestView<'_>,
    controls: Option<&sluice_wire::controls::Controls>,
    native_anthropic: bool,
) -> Option<CacheCall> {
    let cache = app.cache.as_ref()?;
    if native_anthropic {
        return None;
    }
    let shape = match endpoint {
        Endpoint::Chat => Shape::Chat,
        Endpoint::Completions => Shape::Completion,
        Endpoint::Embeddings => Shape::Embedding,
        // A Responses API event stream is neither kept nor replayed: whole answers only.
        Endpoint::Responses if view.stream => return None,
        Endpoint::Responses => Shape::Responses,
        Endpoint::Rerank => Shape::Rerank,
        // Generated images and audio are not kept: each call is meant to make a new one.
        Endpoint::Images
        | Endpoint::ImageEdits
        | Endpoint::ImageVariations
        | Endpoint::Moderations
        | Endpoint::Speech
        | Endpoint::Transcriptions
        | Endpoint::Translations => return None,
    };
    let lookup = cache.lookup(shape, model, body, controls.and_then(|c| c.cache.as_ref()))?;
    let lookup = match view.stream && view.include_usage {
        true => lookup.needing_usage(),
        false => lookup,
    };
    Some(CacheCall { lookup, vector: None })
}

/// Who asks the cache, for a hit's bill and record: the request, its model group and the name
/// its metrics carry.
pub(crate) struct Asker<'a> {
    pub view: &'a RequestView<'a>,
    pub model: &'a str,
    pub label_model: &'a str,
    pub facts: &'a Facts,
}

/// The kept answer, as the reply to send, when there is one; bills and records the hit. `None`:
/// a miss (counted), and the request goes upstream. For a cache that answers in this process
/// ([`sluice_cache::Cache::answers_here`]) [`answer_here`] does the same without a future.
pub(crate) async fn answer(app: &App, call: &mut CacheCall, asker: &Asker<'_>, outcome: &mut Outcome) -> Option<Reply> {
    let cache = app.cache.as_ref()?;
    let lookup = &call.lookup;
    let mut similarity = None;
    // The key the answer is found under: a semantic hit's is the close prompt's.
    let mut found_key: Option<String> = None;
    let found = match (cache.semantic(), &app.semantic_model) {
        (Some(semantic), Some(model)) if lookup.reads() || lookup.writes() => {
            // A prompt with no text, or an embedding that fails: an ordinary miss.
            match prompt_text(asker.view) {
                Some(text) => match super::embed(app, model, &text, EMBED_TIMEOUT).await {
                    Ok(vector) => {
                        let near = match lookup.reads() {
                            true => semantic.find(&lookup.scope, &vector).await,
                            false => None,
                        };
                        call.vector = Some(vector);
                        match near {
                            Some(near) => {
                                similarity = Some(near.similarity);
                                let entry = cache.get_as(lookup, &near.key).await;
                                found_key = Some(near.key);
                                entry
                            }
                            None => cache.missed(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(model = %model, "semantic cache: the prompt's embedding failed: {e}");
                        None
                    }
                },
                None => None,
            }
        }
        _ => cache.get(lookup).await,
    };
    let found = found.map(|entry| Found { entry, key: found_key, similarity });
    reply(app, &call.lookup, found, asker, outcome)
}

/// [`answer`] for a cache that answers here: every request of a local cache asks, and a boxed
/// future for a lookup that never waits was an allocation on each.
pub(crate) fn answer_here(app: &App, call: &CacheCall, asker: &Asker<'_>, outcome: &mut Outcome) -> Option<Reply> {
    let found = app.cache.as_ref()?.get_here(&call.lookup);
    reply(app, &call.lookup, found.map(|entry| Found { entry, key: None, similarity: None }), asker, outcome)
}

/// A kept answer found for a request: under its own key, or under a close prompt's (a semantic
/// hit, with its similarity).
struct Found {
    entry: sluice_cache::Entry,
    key: Option<String>,
    similarity: Option<f32>,
}

/// The hit's reply, billed and counted; or the miss counted.
fn reply(
    app: &App,
    lookup: &sluice_cache::Lookup,
    found: Option<Found>,
    asker: &Asker<'_>,
    outcome: &mut Outcome,
) -> Option<Reply> {
    let Asker { view, model, label_model, facts } = *asker;
    let end_user = view.user.as_deref().unwrap_or("");
    let Some(Found { entry, key: found_key, similarity }) = found else {
        if let (Some(m), true) = (&app.metrics, lookup.reads()) {
            m.cache_lookup(label_model, "", end_user, facts.caller(), false, 0);
        }
        return None;
    };
    let frames = match view.stream {
        true => Some(sluice_cache::replay::as_stream(entry.shape, &entry.answer, view.include_usage)?),
        false => None,
    };
    let answer = sniff::response(&entry.answer).unwrap_or_default();
    let usage = answer.usage.unwrap_or_default();
    if let Some(m) = &app.metrics {
        m.cache_lookup(label_model, "", end_user, facts.caller(), true, usage.prompt_tokens + usage.completion_tokens);
    }
    // Written only for a hit: a miss never shows its key.
    let key = found_key.unwrap_or_else(|| lookup.key());
    let key = key.as_str();
    if let Some(charge) = &facts.charge {
        charge.cached(key, true);
        // No deployment served: the row names the model group, and nothing is priced.
        charge.serving(&Arc::new(sluice_access::charge::Served::new(model, model, "", "", "", None)), None);
        if let Some(id) = answer.id(&entry.answer) {
            charge.answered_as(&id);
        }
        charge.answered_with(&entry.answer);
        charge.settle(sluice_access::charge::token_usage(&usage));
    }
    outcome.cost = Some(0.0);
    let mut reply = match frames {
        None => Reply::whole(StatusCode::OK, "application/json", [entry.answer, Bytes::new(), Bytes::new()]),
        Some(frames) => {
            let mut h = HeaderMap::with_capacity(2);
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::convert::Infallible>));
            Reply::stream(StatusCode::OK, h, axum::body::Body::from_stream(stream))
        }
    };
    reply.lines = headers::lines(facts, outcome, None, Some(b"0"));
    if let Ok(key) = HeaderValue::from_str(key) {
        reply.lines.push_header(&CACHE_KEY, &key);
    }
    if let Some(s) = similarity {
        reply.lines.push(SIMILARITY.as_str().as_bytes(), format!("{s:.4}").as_bytes());
    }
    Some(reply)
}

/// What a semantic cache compares: the text of the chat messages (LiteLLM joins their
/// contents), or the completion's prompt; `None` when there is none.
fn prompt_text(view: &RequestView<'_>) -> Option<String> {
    fn texts(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => out.push_str(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| texts(i, out)),
            serde_json::Value::Object(o) => {
                // A message's content, or a content part's text.
                for field in ["content", "text"] {
                    if let Some(x) = o.get(field) {
                        texts(x, out);
                    }
                }
            }
            _ => {}
        }
    }
    let raw = view.messages.or(view.prompt)?;
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let mut out = String::new();
    texts(&value, &mut out);
    if out.len() > MAX_PROMPT {
        let mut end = MAX_PROMPT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    (!out.trim().is_empty()).then_some(out)
}

/// A miss's reply on its way out: a whole answer is kept now, a stream once it has ended whole.
pub(crate) fn keep(app: &App, call: CacheCall, mut reply: Reply) -> Reply {
    let Some(cache) = &app.cache else { return reply };
    let CacheCall { lookup, vector } = call;
    if reply.status != StatusCode::OK || !lookup.writes() || reply.anthropic_native {
        return reply;
    }
    reply.body = match reply.body {
        ReplyBody::Whole(parts) => {
            // A copy of its own: the reply's slices may share the upstream connection's whole
            // read buffer, which a kept slice would pin (and so keep the pool from reusing it)
            // for as long as the entry lives.
            let answer = Bytes::from(parts.concat());
            put(cache, lookup, vector, answer);
            ReplyBody::Whole(parts)
        }
        ReplyBody::Stream(body) => {
            let limit = cache.settings().max_item_bytes.saturating_mul(4);
            let assembler = sluice_cache::assemble::Assembler::new(lookup.shape, limit);
            let cache = cache.clone();
            let keep = Box::new(move |answer: Bytes| put(&cache, lookup, vector, answer));
            ReplyBody::Stream(axum::body::Body::new(sluice_cache::tee::Tee::new(body, assembler, keep)))
        }
    };
    reply
}

/// Keeps the answer, and for a semantic cache its prompt's vector (once the answer is there to
/// be found by it).
fn put(cache: &Arc<sluice_cache::Cache>, lookup: Lookup, vector: Option<Vec<f32>>, answer: Bytes) {
    cache.put(&lookup, answer);
    if let (Some(vector), true) = (vector, cache.semantic().is_some()) {
        let cache = cache.clone();
        tokio::spawn(async move {
            if let Some(semantic) = cache.semantic() {
                semantic.add(&lookup.scope, &lookup.key(), &vector).await;
            }
        });
    }
}
