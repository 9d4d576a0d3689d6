//! Model access groups (`model_info.access_groups`): a name that a key's, team's or user's
//! `models` may list to grant every model group filed under it, as LiteLLM's
//! `_model_in_team_aliases` / `can_key_call_model` read them. A wildcard model group in an
//! access group (`anthropic/*`) grants the names it matches.

use std::collections::HashMap;

/// Access group name → the model groups in it, in config order. Replaced whole when the models
/// change (`Access::set_access_groups`).
#[derive(Debug, Default)]
pub struct AccessGroups {
    by_name: HashMap<String, Vec<String>>,
    /// Names in the order first seen, for listing.
    order: Vec<String>,
}

impl AccessGroups {
    /// From `(access group, model group)` pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut g = AccessGroups::default();
        for (name, model) in pairs {
            let models = g.by_name.entry(name.to_string()).or_insert_with(|| {
                g.order.push(name.to_string());
                Vec::new()
            });
            if !models.iter().any(|m| m == model) {
                models.push(model.to_string());
            }
        }
        g
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Access group names, in config order.
    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// The model groups of access group `name` (empty when there is no such group).
    pub fn models(&self, name: &str) -> &[String] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether one of `listed` (a key's `models`) is an access group granting `model`.
    pub fn grant(&self, listed: &[String], model: &str) -> bool {
        if self.by_name.is_empty() {
            return false;
        }
        listed.iter().any(|l| self.models(l).iter().any(|m| covers(m, model)))
    }
}

/// Whether model group `group` serves `model`: the same name, or a wildcard matching it (a
/// trailing `*` as a prefix, as keys' own `models` entries are read).
pub(crate) fn covers(group: &str, model: &str) -> bool {
    group == model || group.strip_suffix('*').is_some_and(|prefix| model.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_the_models_filed_under_a_listed_group() {
        let g =
            AccessGroups::new([("beta", "gpt-4o"), ("beta", "anthropic/*"), ("prod", "gpt-4o"), ("beta", "gpt-4o")]);
        let listed = vec!["beta".to_string()];
        assert!(g.grant(&listed, "gpt-4o"));
        assert!(g.grant(&listed, "anthropic/claude-3-5-sonnet"));
        assert!(!g.grant(&listed, "gpt-3.5-turbo"));
        assert!(!g.grant(&["gpt-4o".to_string()], "anthropic/claude"), "a model name is not a group");
        assert_eq!(g.names(), ["beta", "prod"]);
        assert_eq!(g.models("beta"), ["gpt-4o", "anthropic/*"]);
        assert!(g.models("none").is_empty());
        assert!(!AccessGroups::default().grant(&listed, "gpt-4o"));
    }
}
