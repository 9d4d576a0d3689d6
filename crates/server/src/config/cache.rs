//! The answer cache's settings (`litellm_settings.cache`, `cache_params`), as LiteLLM reads
//! them (reference §6), into [`sluice_cache::Settings`]. Where the Redis is that a `type: redis`
//! cache keeps answers in is read by `config::redis` (the replicas' one Redis).
//!
//! What sluice cannot keep answers in (`s3`, `gcs`, `azure-blob`, `disk`, `qdrant-semantic`)
//! is listed as ignored: caching never denies or limits anything, so it does not stop the start,
//! and every request then goes upstream as it would without a cache.

use super::error::{err, ConfigError};
use super::value::{boolean, number, string, MAX_COUNT, MAX_SECONDS};
use super::yaml::key_str;
use serde_yaml_ng::{Mapping, Value};
use sluice_cache::{Backend, Settings, Shape};
use std::time::Duration;

const AT: &str = "litellm_settings.cache_params";

/// The most bytes a namespace may have: it is part of every key.
const MAX_NAMESPACE: usize = 256;

/// `cache_params` keys read here or by `config::redis` (the rest are listed as ignored).
const READ: &[&str] = &[
    "type",
    "ttl",
    "default_in_memory_ttl",
    "default_in_redis_ttl",
    "namespace",
    "supported_call_types",
    "mode",
    "max_size_in_memory",
    "similarity_threshold",
    "redis_semantic_cache_embedding_model",
    // Where Redis is: `config::redis`.
    "host",
    "port",
    "password",
    "username",
    "url",
    "db",
    // Cluster and Sentinel stop the start in `config::redis`.
    "redis_startup_nodes",
    "startup_nodes",
    "service_name",
    "sentinel_nodes",
    "sentinel_password",
];

/// The semantic cache's settings (`type: redis-semantic`).
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticSettings {
    /// `similarity_threshold`: the least cosine similarity that is a hit (0 to 1).
    pub similarity_threshold: f64,
    /// `redis_semantic_cache_embedding_model`: the model group that embeds prompts.
    pub embedding_model: String,
}

/// The answer cache, when the config turns one on.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub settings: Settings,
    pub semantic: Option<SemanticSettings>,
}

/// `Ok(None)`: no answers are cached (`cache` off, `supported_call_types: []`, or a type sluice
/// cannot keep answers in).
pub(crate) fn read(l: Option<&Mapping>, ignored: &mut Vec<String>) -> Result<Option<CacheSettings>, ConfigError> {
    let Some(l) = l else { return Ok(None) };
    let on = match l.get("cache") {
        None => false,
        Some(v) => boolean(v).map_err(|m| err("litellm_settings.cache", m))?.unwrap_or(false),
    };
    let params = match l.get("cache_params") {
        Some(Value::Mapping(m)) if on => m,
        // `config::redis` says what is wrong with anything else, or that it is unused.
        _ if on => &Mapping::new(),
        _ => return Ok(None),
    };
    for (k, _) in params {
        let key = key_str(k);
        if !READ.contains(&key.as_str()) {
            ignored.push(format!("{AT}.{key}: not implemented in sluice"));
        }
    }
    // The proxy's default cache type is Redis (the SDK's is local).
    let kind = match params.get("type") {
        None | Some(Value::Null) => "redis".to_string(),
        Some(v) => string(v).map_err(|m| err(&format!("{AT}.type"), m))?.unwrap_or_default(),
    };
    let backend = match kind.as_str() {
        "local" => Backend::Local,
        "redis" | "redis-semantic" => Backend::Redis,
        other => {
            ignored.push(format!(
                "{AT}.type: {other}: sluice keeps answers in process (local) or in Redis (redis, redis-semantic) only; answers are not cached"
            ));
            return Ok(None);
        }
    };
    let shapes = match params.get("supported_call_types") {
        None | Some(Value::Null) => Settings::default().shapes,
        Some(Value::Sequence(s)) => {
            let mut shapes = Vec::new();
            for (i, v) in s.iter().enumerate() {
                let path = format!("{AT}.supported_call_types[{i}]");
                let name = string(v).map_err(|m| err(&path, m))?.unwrap_or_default();
                match shape(&name) {
                    Some(s) if !shapes.contains(&s) => shapes.push(s),
                    Some(_) => {}
                    None if KNOWN_UNCACHED.contains(&name.as_str()) => {
                        ignored.push(format!("{path}: {name}: sluice does not cache this call type"))
                    }
                    None => {
                        return Err(err(
                            &path,
                            format!("\"{name}\" is not a call type; use completion, acompletion, text_completion, atext_completion, embedding, aembedding, responses, aresponses, rerank or arerank"),
                        ))
                    }
                }
            }
            if shapes.is_empty() {
                // `[]`: Redis for limits only.
                return Ok(None);
            }
            shapes
        }
        Some(_) => {
            return Err(err(
                &format!("{AT}.supported_call_types"),
                "expected a list of call types, or [] to cache no answers",
            ))
        }
    };
    let default_on = match params.get("mode") {
        None | Some(Value::Null) => true,
        Some(v) => match string(v).map_err(|m| err(&format!("{AT}.mode"), m))?.as_deref() {
            Some("default_on") => true,
            Some("default_off") => false,
            Some(other) => {
                return Err(err(
                    &format!("{AT}.mode"),
                    format!("\"{other}\": expected default_on (every request) or default_off (only requests sending cache: {{\"use-cache\": true}})"),
                ))
            }
            None => true,
        },
    };
    let namespace = match params.get("namespace") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let ns = string(v).map_err(|m| err(&format!("{AT}.namespace"), m))?.unwrap_or_default();
            if ns.is_empty() || ns.len() > MAX_NAMESPACE {
                return Err(err(&format!("{AT}.namespace"), format!("expected 1 to {MAX_NAMESPACE} bytes")));
            }
            Some(ns)
        }
    };
    let d = Settings::default();
    let max_entries = match params.get("max_size_in_memory") {
        None | Some(Value::Null) => d.max_entries,
        Some(v) => match number(v).map_err(|m| err(&format!("{AT}.max_size_in_memory"), m))? {
            Some(n) if (1.0..=MAX_COUNT).contains(&n) => n as usize,
            _ => {
                return Err(err(&format!("{AT}.max_size_in_memory"), format!("expected a count from 1 to {MAX_COUNT}")))
            }
        },
    };
    let semantic = match kind.as_str() {
        "redis-semantic" => Some(semantic(params)?),
        _ => None,
    };
    Ok(Some(CacheSettings {
        settings: Settings {
            backend,
            ttl: seconds(params, "ttl")?,
            in_memory_ttl: seconds(params, "default_in_memory_ttl")?,
            redis_ttl: seconds(params, "default_in_redis_ttl")?,
            namespace,
            shapes,
            default_on,
            max_entries,
            similarity_threshold: semantic.as_ref().map(|s| s.similarity_threshold),
            ..d
        },
        semantic,
    }))
}

/// LiteLLM's call types sluice has no cached answer for.
const KNOWN_UNCACHED: &[&str] = &[
    "transcription",
    "atranscription",
    "rerank",
    "arerank",
    "image_generation",
    "aimage_generation",
    "speech",
    "aspeech",
];

fn shape(call_type: &str) -> Option<Shape> {
    Some(match call_type {
        "completion" | "acompletion" => Shape::Chat,
        "text_completion" | "atext_completion" => Shape::Completion,
        "embedding" | "aembedding" => Shape::Embedding,
        "responses" | "aresponses" => Shape::Responses,
        "rerank" | "arerank" => Shape::Rerank,
        _ => return None,
    })
}

/// A whole number of seconds above zero, at most a year.
fn seconds(params: &Mapping, key: &str) -> Result<Option<Duration>, ConfigError> {
    let path = format!("{AT}.{key}");
    match params.get(key).map(number).transpose().map_err(|m| err(&path, m))?.flatten() {
        None => Ok(None),
        Some(s) if s > 0.0 && s <= MAX_SECONDS => Ok(Some(Duration::from_secs_f64(s.ceil()))),
        Some(_) => Err(err(&path, format!("expected seconds above 0, at most {MAX_SECONDS}"))),
    }
}

fn semantic(params: &Mapping) -> Result<SemanticSettings, ConfigError> {
    let threshold_at = format!("{AT}.similarity_threshold");
    let similarity_threshold = match params.get("similarity_threshold").map(number).transpose() {
        Ok(Some(Some(t))) if (0.0..=1.0).contains(&t) => t,
        Ok(None | Some(None)) => {
            return Err(err(&threshold_at, "type: redis-semantic needs a similarity_threshold from 0 to 1, e.g. 0.8"))
        }
        Ok(Some(Some(_))) => return Err(err(&threshold_at, "expected a number from 0 to 1, e.g. 0.8")),
        Err(m) => return Err(err(&threshold_at, m)),
    };
    let model_at = format!("{AT}.redis_semantic_cache_embedding_model");
    let embedding_model = match params.get("redis_semantic_cache_embedding_model").map(string).transpose() {
        Ok(Some(Some(m))) if !m.trim().is_empty() => m.trim().to_string(),
        Ok(_) => return Err(err(
            &model_at,
            "type: redis-semantic needs the model_name of an embedding deployment in model_list to embed prompts with",
        )),
        Err(m) => return Err(err(&model_at, m)),
    };
    Ok(SemanticSettings { similarity_threshold, embedding_model })
}
