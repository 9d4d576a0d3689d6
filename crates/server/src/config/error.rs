//! What goes wrong loading a config, and the typed reading that names where.
//!
//! Each section is read by serde into a struct of the lenient value types in `value`, through
//! `serde_path_to_error`, so an error carries the YAML path it happened at; `typed` joins that path
//! to the section's own.

use serde::de::{self, DeserializeOwned, Visitor};
use serde_yaml_ng::Value;

/// Why a config could not be loaded. Display gives the text a person reads: the YAML path, then
/// what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One setting is wrong: `model_list[1].litellm_params.rpm: expected a number, got "ten"`.
    #[error("{path}: {message}")]
    Setting { path: String, message: String },
    /// The file as a whole: it cannot be read, is not YAML, or security settings did not resolve
    /// (each of those lines names its own path).
    #[error("{0}")]
    Document(String),
}

impl ConfigError {
    /// The YAML path of the setting at fault, when one setting is.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Setting { path, .. } => Some(path),
            ConfigError::Document(_) => None,
        }
    }
}

pub(crate) fn err(path: &str, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError::Setting { path: path.to_string(), message: msg.to_string() }
}

/// Reads the value at YAML path `at` as `T`; an error names the path down to the setting.
pub(crate) fn typed<T: DeserializeOwned>(at: &str, v: &Value) -> Result<T, ConfigError> {
    // serde takes an integer key as a field's index (`0:` would be the first field); such keys
    // are not settings, and are listed as ignored like any other key a section does not read.
    let strings_only;
    let v = match v {
        Value::Mapping(m) if m.keys().any(|k| !k.is_string()) => {
            strings_only =
                Value::Mapping(m.iter().filter(|(k, _)| k.is_string()).map(|(k, v)| (k.clone(), v.clone())).collect());
            &strings_only
        }
        other => other,
    };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let mut path = at.to_string();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                    join(&mut path, key)
                }
                serde_path_to_error::Segment::Unknown => join(&mut path, "?"),
            }
        }
        ConfigError::Setting { path, message: e.into_inner().to_string() }
    })
}

fn join(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// For `#[serde(deserialize_with = "present")]`: a key written with no value (`fallbacks:`) is
/// `Some` of what null reads as, because for some settings LiteLLM's null means "empty", not
/// "unset".
pub(crate) fn present<'de, D: de::Deserializer<'de>, T: de::Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The keys a derived section struct reads: the rest of a section's keys are reported as ignored
/// (or refused), so the struct is the one list of what sluice implements.
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

/// A deserializer that only records the field names a struct asks for.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
