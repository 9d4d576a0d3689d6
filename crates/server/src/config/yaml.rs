//! Reading YAML files, `include:` merging, and the few helpers for the parts read untyped.

use super::error::{err, ConfigError};
use super::value::MAPPING;
use serde_yaml_ng::{Mapping, Value};
use std::path::Path;

/// Reads `path` and merges the files its top-level `include:` list names (relative to it):
/// lists are appended, other sections from an included file are taken when the main file lacks
/// them, as LiteLLM's `_process_includes` does.
pub fn read_with_includes(path: &Path) -> Result<Value, ConfigError> {
    let mut root = read(path)?;
    let Value::Mapping(map) = &mut root else {
        return Ok(root);
    };
    let Some(includes) = map.remove("include") else {
        return Ok(root);
    };
    let Value::Sequence(list) = includes else {
        return Err(err("include", "expected a list of file paths, e.g. include: [models.yaml]"));
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    for (i, item) in list.iter().enumerate() {
        let Value::String(rel) = item else {
            return Err(err(&format!("include[{i}]"), "expected a file path string"));
        };
        let included = read(&dir.join(rel)).map_err(|e| err(&format!("include[{i}]"), e))?;
        let Value::Mapping(inc) = included else {
            return Err(err(&format!("include[{i}]"), format!("{rel} must hold a mapping of config sections")));
        };
        for (k, v) in inc {
            match (map.get_mut(&k), v) {
                (Some(Value::Sequence(existing)), Value::Sequence(more)) => existing.extend(more),
                (Some(Value::Mapping(existing)), Value::Mapping(more)) => {
                    for (ik, iv) in more {
                        existing.entry(ik).or_insert(iv);
                    }
                }
                (Some(_), _) => {}
                (None, v) => {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(root)
}

fn read(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Document(format!("cannot read config file {}: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text)
        .map_err(|e| ConfigError::Document(format!("{} is not valid YAML: {e}", path.display())))
}

/// A mapping key as text (YAML allows non-string keys).
pub fn key_str(k: &Value) -> String {
    scalar_string(k).unwrap_or_else(|| format!("{k:?}"))
}

/// A scalar rendered as text; `None` for sequences and mappings.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

pub fn mapping<'a>(path: &str, v: &'a Value) -> Result<&'a Mapping, ConfigError> {
    match v {
        Value::Mapping(m) => Ok(m),
        _ => Err(err(path, MAPPING)),
    }
}
