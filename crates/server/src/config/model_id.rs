//! LiteLLM's deterministic deployment id: the SHA-256 hex of the model name followed by every
//! `litellm_params` key and value, values rendered as Python's `str()` would (dicts as
//! `json.dumps`). Matching it keeps `model_id` labels and `x-litellm-model-id` stable across a
//! switch from LiteLLM.

use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};

pub fn generate(model_name: &str, litellm_params: &Mapping) -> String {
    let mut s = String::from(model_name);
    for (k, v) in litellm_params {
        s.push_str(&python_str(k));
        match v {
            Value::Mapping(_) => s.push_str(&json_dumps(v)),
            _ => s.push_str(&python_str(v)),
        }
    }
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn python_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) if n.is_f64() => python_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let parts: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Mapping(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", python_repr(k), python_repr(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Tagged(t) => python_str(&t.value),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        other => python_str(other),
    }
}

fn python_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn json_dumps(v: &Value) -> String {
    match v {
        Value::Mapping(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", json_dumps(&Value::String(python_str(k))), json_dumps(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Sequence(items) => format!("[{}]", items.iter().map(json_dumps).collect::<Vec<_>>().join(", ")),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => python_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::Tagged(t) => json_dumps(&t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_name_and_params_in_order() {
        let params: Mapping =
            serde_yaml_ng::from_str("model: openai/fake\napi_key: fake-key\nrpm: 10\nweight: 0.5\nstream: true\n")
                .unwrap();
        let expected =
            hex::encode(Sha256::digest(b"fake-openai-endpointmodelopenai/fakeapi_keyfake-keyrpm10weight0.5streamTrue"));
        assert_eq!(generate("fake-openai-endpoint", &params), expected);
    }

    #[test]
    fn python_rendering() {
        assert_eq!(python_float(10.0), "10.0");
        assert_eq!(python_str(&serde_yaml_ng::from_str("[a, 1]").unwrap()), "['a', 1]");
        assert_eq!(json_dumps(&serde_yaml_ng::from_str("{a: 1, b: x}").unwrap()), "{\"a\": 1, \"b\": \"x\"}");
    }
}
