//! Environment lookups for `os.environ/VAR` references, with `environment_variables` layered on
//! top of the process environment (without mutating it: the process env is shared state).

use super::error::{err, ConfigError};
use serde_yaml_ng::Value;
use std::collections::HashMap;

const PREFIX: &str = "os.environ/";

/// The environment a config is resolved against.
#[derive(Clone, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
    use_process: bool,
}

/// Names only: the values are secrets as often as not.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.overlay.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("set", &names).field("use_process", &self.use_process).finish()
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env { overlay: HashMap::new(), use_process: true }
    }

    /// Only the given variables (tests).
    pub fn fixed<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env { overlay: vars.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), use_process: false }
    }

    /// A variable the config's `environment_variables` set (not the process's).
    pub fn from_config(&self, name: &str) -> Option<String> {
        self.overlay.get(name).cloned()
    }

    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overlay.get(name) {
            return Some(v.clone());
        }
        if self.use_process {
            return std::env::var(name).ok();
        }
        None
    }

    /// `environment_variables: {K: V}` — values may themselves be `os.environ/` references; a
    /// reference to an unset variable leaves `K` unset, as LiteLLM does.
    pub(crate) fn apply_section(&mut self, section: &Value, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        let Value::Mapping(m) = section else {
            return Err(err("environment_variables", "expected a mapping of NAME: value"));
        };
        for (k, v) in m {
            let name = super::yaml::key_str(k);
            let path = format!("environment_variables.{name}");
            let value = match v {
                Value::String(s) => match self.resolve_str(&path, s, warnings) {
                    Some(v) => v,
                    None => continue,
                },
                Value::Null => continue,
                other => super::yaml::scalar_string(other)
                    .ok_or_else(|| err(&path, "expected a string, number or boolean"))?,
            };
            self.overlay.insert(name, value);
        }
        Ok(())
    }

    /// Resolves `os.environ/VAR`; other strings pass through. An unset variable is a warning and
    /// resolves to `None`, as LiteLLM's `get_secret` does.
    pub(crate) fn resolve_str(&self, path: &str, s: &str, warnings: &mut Vec<String>) -> Option<String> {
        match s.strip_prefix(PREFIX) {
            Some(var) => {
                let v = self.get(var);
                if v.is_none() {
                    warnings
                        .push(format!("{path}: environment variable {var} is not set; treating the value as absent"));
                }
                v
            }
            None => Some(s.to_string()),
        }
    }

    /// Resolves every string scalar of a mapping in place (one level, as LiteLLM does for
    /// `litellm_params`); unset references become null.
    pub(crate) fn resolve_mapping(&self, path: &str, m: &mut serde_yaml_ng::Mapping, warnings: &mut Vec<String>) {
        for (k, v) in m.iter_mut() {
            if let Value::String(s) = v {
                if s.starts_with(PREFIX) {
                    let p = format!("{path}.{}", super::yaml::key_str(k));
                    *v = match self.resolve_str(&p, s, warnings) {
                        Some(r) => Value::String(r),
                        None => Value::Null,
                    };
                }
            }
        }
    }
}
