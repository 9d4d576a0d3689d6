//! JSON Schema (what OpenAI clients send for tool parameters and `response_format`) cut down to
//! the OpenAPI subset Gemini's `Schema` accepts.
//!
//! Gemini answers 400 "Unknown name …" for any key outside its `Schema` message, so keys are
//! kept by allowlist rather than stripped by denylist: `$schema`, `additionalProperties`,
//! `strict`, `$id`, `examples`, … all go. `$ref`s into `$defs`/`definitions` are inlined (Gemini
//! has no references), `const` becomes a one-value `enum`, and `type: [T, "null"]` becomes
//! `type: T, nullable: true`, as LiteLLM does.

use serde_json::{Map, Value};

/// Keys of Gemini's `Schema` message whose values are plain data, kept as they are.
const PLAIN: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "default",
    "minimum",
    "maximum",
    "propertyOrdering",
];

/// References deeper than this are cut off: a recursive schema would otherwise never end, and
/// Gemini cannot express recursion anyway.
const MAX_DEPTH: usize = 32;

/// The schema Gemini accepts for `schema`.
pub fn clean(schema: &Value) -> Value {
    let defs = schema.get("$defs").or_else(|| schema.get("definitions"));
    clean_at(schema, defs, 0)
}

fn clean_at(schema: &Value, defs: Option<&Value>, depth: usize) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    if depth > MAX_DEPTH {
        return Value::Object(Map::new());
    }
    if let Some(target) = obj.get("$ref").and_then(Value::as_str).and_then(|r| resolve(r, defs)) {
        return clean_at(target, defs, depth + 1);
    }
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "type" => match v {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| t.as_str() != Some("null")).collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if let Some(t) = non_null.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                }
                Value::String(t) if t == "null" => {
                    out.insert("nullable".into(), Value::Bool(true));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), Value::Array(vec![v.clone()]));
            }
            "properties" => {
                if let Value::Object(props) = v {
                    let props = props.iter().map(|(name, s)| (name.clone(), clean_at(s, defs, depth + 1))).collect();
                    out.insert(k.clone(), Value::Object(props));
                }
            }
            "items" => {
                out.insert(k.clone(), clean_at(v, defs, depth + 1));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(alts) = v {
                    // A `T | null` union is how Pydantic spells an optional field; Gemini wants
                    // `nullable` for that, and `anyOf` only for real unions.
                    let non_null: Vec<&Value> =
                        alts.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).collect();
                    if non_null.len() < alts.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if non_null.len() == 1 {
                        if let Value::Object(inner) = clean_at(non_null[0], defs, depth + 1) {
                            for (ik, iv) in inner {
                                out.entry(ik).or_insert(iv);
                            }
                        }
                    } else {
                        let alts = non_null.into_iter().map(|a| clean_at(a, defs, depth + 1)).collect();
                        out.insert("anyOf".into(), Value::Array(alts));
                    }
                }
            }
            k if PLAIN.contains(&k) => {
                out.insert(k.to_string(), v.clone());
            }
            _ => {}
        }
    }
    // Gemini rejects enum values that are not strings.
    if let Some(Value::Array(values)) = out.get_mut("enum") {
        for v in values.iter_mut() {
            if !v.is_string() {
                let text = if v.is_null() { "null".to_string() } else { v.to_string() };
                *v = Value::String(text);
            }
        }
    }
    Value::Object(out)
}

fn resolve<'a>(reference: &str, defs: Option<&'a Value>) -> Option<&'a Value> {
    let name = reference.strip_prefix("#/$defs/").or_else(|| reference.strip_prefix("#/definitions/"))?;
    defs?.get(name)
}

/// Whether a function's parameters say nothing: Gemini rejects an OBJECT schema with empty
/// `properties`, so such a declaration is sent without `parameters`.
pub fn is_empty_object(schema: &Value) -> bool {
    match schema {
        Value::Null => true,
        Value::Object(o) => {
            o.is_empty()
                || (o.get("type").and_then(Value::as_str) == Some("object")
                    && o.get("properties").is_none_or(|p| p.as_object().is_some_and(Map::is_empty)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_what_gemini_rejects_and_inlines_refs() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City", "examples": ["Paris"]},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "where": {"$ref": "#/$defs/Place"},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}},
                "kind": {"const": "x"},
                "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            },
            "required": ["city"],
            "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number"}}}}
        });
        assert_eq!(
            clean(&s),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "unit": {"type": "string", "nullable": true, "enum": ["c", "f"]},
                    "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "kind": {"enum": ["x"]},
                    "maybe": {"type": "integer", "nullable": true}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn recursive_refs_end() {
        let s = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}});
        let out = clean(&s);
        assert_eq!(out["type"], "object");
    }

    #[test]
    fn empty_objects() {
        assert!(is_empty_object(&json!({"type": "object", "properties": {}})));
        assert!(is_empty_object(&json!({"type": "object"})));
        assert!(is_empty_object(&json!({})));
        assert!(!is_empty_object(&json!({"type": "object", "properties": {"a": {"type": "string"}}})));
    }
}
