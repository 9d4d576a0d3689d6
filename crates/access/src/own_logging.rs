//! A key's or team's own logging destination, LiteLLM's `metadata.logging`: a list like
//! `[{"callback_name": "langfuse", "callback_type": "success", "callback_vars":
//! {"langfuse_public_key": "...", "langfuse_secret_key": "os.environ/...", "langfuse_host": "..."}}]`.
//!
//! Resolved once, when the key or team is put in the registry (not per request): the request
//! path only clones the `Arc` it finds on the entry. As in LiteLLM's
//! `_get_dynamic_logging_metadata`, a key that has `logging` uses its own list and ignores its
//! team's; a key without one uses its team's (a team's older `callback_settings` is read when it
//! has no `logging`). Only `langfuse` is run per key; other names are
//! skipped (and said so in the log).
//!
//! Projects with the same host and keys are shared (one `Arc`, so a sink's batch groups them by
//! pointer), and there are at most [`MAX_PROJECTS`] distinct ones: each is a set of credentials
//! and connections, and a flood of keys must not make unbounded many.

use sluice_export::langfuse::{OwnProject, Project};
use sluice_export::Events;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Distinct Langfuse projects keys and teams may log to, at most (LiteLLM caps its Langfuse
/// clients too, at fewer: each of its clients is a thread, each of ours only a name in a map).
pub const MAX_PROJECTS: usize = 200;

/// What an entry's `metadata.logging` says.
#[derive(Debug, Clone, Default)]
pub enum OwnLogging {
    /// No `logging`: a key follows its team's.
    #[default]
    Inherit,
    /// `logging` is set: its Langfuse project if it names one that resolves, else none (the
    /// configured callbacks apply, as they would in LiteLLM).
    Own(Option<Arc<OwnProject>>),
}

impl OwnLogging {
    /// The project a call goes to, from its key's and its team's settings.
    pub fn of_call<'a>(key: Option<&'a OwnLogging>, team: Option<&'a OwnLogging>) -> Option<&'a Arc<OwnProject>> {
        match key {
            Some(OwnLogging::Own(p)) => p.as_ref(),
            _ => match team {
                Some(OwnLogging::Own(p)) => p.as_ref(),
                _ => None,
            },
        }
    }
}

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The registry's resolver of `metadata.logging`: where `os.environ/` values and the fallback
/// `LANGFUSE_*` variables are read, and the shared projects.
#[derive(Default)]
pub struct Resolver {
    env: OnceLock<Lookup>,
    /// By host endpoint and the two keys.
    projects: Mutex<HashMap<(String, String, String), Weak<Project>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.projects.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("Resolver").field("projects", &n).finish()
    }
}

impl Resolver {
    /// Reads variables through `env` (the config's environment, `environment_variables`
    /// included) instead of the process's. Set before keys load; later calls change nothing.
    pub fn set_env(&self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) {
        let _ = self.env.set(Arc::new(env));
    }

    fn var(&self, name: &str) -> Option<String> {
        match self.env.get() {
            Some(env) => env(name),
            None => std::env::var(name).ok(),
        }
        .filter(|v| !v.trim().is_empty())
    }

    /// A `callback_vars` value: `os.environ/NAME` is that variable (none when unset), anything
    /// else itself.
    fn value(&self, v: &serde_json::Value) -> Option<String> {
        let text = match v {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Null => return None,
            other => other.to_string(),
        };
        match text.strip_prefix("os.environ/") {
            Some(name) => self.var(name),
            None => Some(text).filter(|t| !t.is_empty()),
        }
    }

    /// `metadata.logging` of the key or team named `who` (for the log), resolved.
    pub fn resolve(&self, metadata: &serde_json::Map<String, serde_json::Value>, who: &str) -> OwnLogging {
        let Some(logging) = metadata.get("logging").filter(|l| !l.is_null()) else { return OwnLogging::Inherit };
        let Some(items) = logging.as_array() else {
            tracing::warn!(
                "{who}: metadata.logging is not a list of callbacks; ignored (the configured callbacks apply)"
            );
            return OwnLogging::Own(None);
        };
        let mut events = Events::default();
        let mut vars: HashMap<&str, &serde_json::Value> = HashMap::new();
        let mut named = false;
        for item in items {
            let name = item.get("callback_name").and_then(|n| n.as_str()).unwrap_or("");
            if name != sluice_export::LANGFUSE {
                tracing::info!("{who}: metadata.logging names \"{name}\", which sluice does not run per key; skipped");
                continue;
            }
            match item.get("callback_type").and_then(|t| t.as_str()).unwrap_or("") {
                "success" => events.success = true,
                "failure" => events.failure = true,
                "" | "success_and_failure" => events = Events { success: true, failure: true },
                other => {
                    tracing::warn!(
                        "{who}: metadata.logging's langfuse entry has callback_type \"{other}\"; write success, failure or success_and_failure. Entry skipped"
                    );
                    continue;
                }
            }
            named = true;
            if let Some(v) = item.get("callback_vars").and_then(|v| v.as_object()) {
                for (k, v) in v {
                    vars.insert(k.as_str(), v);
                }
            }
        }
        if !named {
            return OwnLogging::Own(None);
        }
        self.own_project(events, &vars, who)
    }

    /// A team's own logging: its `metadata.logging`, else LiteLLM's older
    /// `metadata.callback_settings` (`{"success_callback": [...], "failure_callback": [...],
    /// "callbacks": [...], "callback_vars": {...}}`, written by LiteLLM's `/team/{id}/callback`
    /// and kept in databases moved from it).
    pub fn resolve_team(&self, metadata: &serde_json::Map<String, serde_json::Value>, who: &str) -> OwnLogging {
        match self.resolve(metadata, who) {
            OwnLogging::Inherit => {}
            own => return own,
        }
        let Some(settings) = metadata.get("callback_settings").and_then(|c| c.as_object()) else {
            return OwnLogging::Inherit;
        };
        let names = |list: &str| {
            settings
                .get(list)
                .and_then(|l| l.as_array())
                .is_some_and(|l| l.iter().any(|n| n.as_str() == Some(sluice_export::LANGFUSE)))
        };
        let both = names("callbacks");
        let events = Events { success: both || names("success_callback"), failure: both || names("failure_callback") };
        let vars: HashMap<&str, &serde_json::Value> = settings
            .get("callback_vars")
            .and_then(|v| v.as_object())
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        // Langfuse credentials without langfuse in the lists still apply to the configured
        // callback's records of this team's calls, as LiteLLM's dynamic credentials do.
        if events == Events::default() && !vars.keys().any(|k| k.starts_with("langfuse_")) {
            return OwnLogging::Own(None);
        }
        self.own_project(events, &vars, who)
    }

    /// The project `vars` name (with the proxy's variables for what they leave out), taking
    /// `events`.
    fn own_project(&self, events: Events, vars: &HashMap<&str, &serde_json::Value>, who: &str) -> OwnLogging {
        // A variable the entry leaves out is the proxy's, as LiteLLM's Langfuse logger falls
        // back to its environment; one it names but that does not resolve (an unset
        // `os.environ/`) is missing, not the proxy's: a key's public key with the proxy's
        // secret would be neither project.
        let get = |names: &[&str], env: &str| match names.iter().find_map(|n| vars.get(n)) {
            Some(v) => self.value(v),
            None => self.var(env),
        };
        let public = get(&["langfuse_public_key"], "LANGFUSE_PUBLIC_KEY");
        let secret = get(&["langfuse_secret_key", "langfuse_secret"], "LANGFUSE_SECRET_KEY");
        let host = get(&["langfuse_host"], "LANGFUSE_HOST");
        let (Some(public), Some(secret)) = (public, secret) else {
            tracing::warn!(
                "{who}: its own Langfuse logging (metadata.logging or callback_settings) has no public and secret key; set callback_vars.langfuse_public_key and langfuse_secret_key (or LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY). Not logged to a project of its own"
            );
            return OwnLogging::Own(None);
        };
        match self.project(host.as_deref(), &public, &secret) {
            Ok(project) => OwnLogging::Own(Some(Arc::new(OwnProject { events, project }))),
            Err(e) => {
                tracing::warn!("{who}: its own Langfuse logging: {e}. Not logged to a project of its own");
                OwnLogging::Own(None)
            }
        }
    }

    /// The shared project with these settings, made if new and there is room.
    fn project(&self, host: Option<&str>, public: &str, secret: &str) -> Result<Arc<Project>, String> {
        let made = Project::new(host, public, secret)?;
        let id = (made.host().to_string(), public.trim().to_string(), secret.trim().to_string());
        let mut projects = self.projects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = projects.get(&id).and_then(Weak::upgrade) {
            return Ok(p);
        }
        if projects.len() >= MAX_PROJECTS {
            projects.retain(|_, p| p.strong_count() > 0);
        }
        if projects.len() >= MAX_PROJECTS {
            return Err(format!(
                "keys and teams already log to {MAX_PROJECTS} distinct Langfuse projects, the most sluice keeps; share a project or remove unused ones"
            ));
        }
        let project = Arc::new(made);
        projects.insert(id, Arc::downgrade(&project));
        Ok(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolver() -> Resolver {
        let r = Resolver::default();
        r.set_env(|name| match name {
            "TEAM_LF_SECRET" => Some("sk-from-env".into()),
            "LANGFUSE_HOST" => Some("http://global-host".into()),
            "LANGFUSE_SECRET_KEY" => Some("sk-global".into()),
            _ => None,
        });
        r
    }

    fn meta(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    fn own(l: &OwnLogging) -> &Arc<OwnProject> {
        match l {
            OwnLogging::Own(Some(p)) => p,
            other => panic!("no project: {other:?}"),
        }
    }

    #[test]
    fn a_langfuse_entry_resolves_with_environment_values() {
        let r = resolver();
        let m = meta(json!({"logging": [{
            "callback_name": "langfuse",
            "callback_type": "success",
            "callback_vars": {"langfuse_public_key": "pk-team", "langfuse_secret_key": "os.environ/TEAM_LF_SECRET", "langfuse_host": "http://team-host:3000"},
        }]}));
        let l = r.resolve(&m, "team t");
        let p = own(&l);
        assert_eq!(p.events, Events { success: true, failure: false });
        assert_eq!(p.project.host(), "http://team-host:3000");
        assert_eq!(*p.project, Project::new(Some("http://team-host:3000"), "pk-team", "sk-from-env").unwrap());
        // No host: the proxy's LANGFUSE_HOST; no type: both outcomes.
        let m = meta(
            json!({"logging": [{"callback_name": "langfuse", "callback_vars": {"langfuse_public_key": "pk", "langfuse_secret": "sk"}}]}),
        );
        let l = r.resolve(&m, "key k");
        assert_eq!(own(&l).project.host(), "http://global-host");
        assert_eq!(own(&l).events, Events { success: true, failure: true });
    }

    #[test]
    fn what_does_not_name_a_usable_langfuse_project_resolves_to_none() {
        let r = resolver();
        assert!(matches!(r.resolve(&meta(json!({"tags": ["x"]})), "k"), OwnLogging::Inherit));
        assert!(matches!(r.resolve(&meta(json!({"logging": null})), "k"), OwnLogging::Inherit));
        for logging in [
            json!([]),
            json!("langfuse"),
            json!([{"callback_name": "generic_api"}]),
            // No public key anywhere (the environment has only a secret).
            json!([{"callback_name": "langfuse"}]),
            // An unset variable: not the environment's secret instead.
            json!([{"callback_name": "langfuse", "callback_vars": {"langfuse_public_key": "pk", "langfuse_secret_key": "os.environ/UNSET"}}]),
            json!([{"callback_name": "langfuse", "callback_type": "sometimes", "callback_vars": {"langfuse_public_key": "pk", "langfuse_secret_key": "sk"}}]),
        ] {
            assert!(matches!(r.resolve(&meta(json!({ "logging": logging })), "k"), OwnLogging::Own(None)), "{logging}");
        }
    }

    #[test]
    fn a_teams_older_callback_settings_are_read_after_its_logging() {
        let r = resolver();
        let settings = json!({"callback_settings": {
            "success_callback": ["langfuse"],
            "failure_callback": [],
            "callback_vars": {"langfuse_public_key": "pk-old", "langfuse_secret_key": "sk-old", "langfuse_host": "http://old"},
        }});
        let l = r.resolve_team(&meta(settings.clone()), "team t");
        assert_eq!(own(&l).events, Events { success: true, failure: false });
        assert_eq!(own(&l).project.host(), "http://old");
        // Keys do not read it (LiteLLM reads it from the team's metadata only).
        assert!(matches!(r.resolve(&meta(settings), "key k"), OwnLogging::Inherit));
        // `logging` wins.
        let both = json!({
            "logging": [{"callback_name": "langfuse", "callback_vars": {"langfuse_public_key": "pk", "langfuse_secret_key": "sk", "langfuse_host": "http://new"}}],
            "callback_settings": {"callbacks": ["langfuse"], "callback_vars": {"langfuse_public_key": "pk-old", "langfuse_secret_key": "sk-old"}},
        });
        assert_eq!(own(&r.resolve_team(&meta(both), "team t")).project.host(), "http://new");
        let other =
            json!({"callback_settings": {"success_callback": ["datadog"], "callback_vars": {"dd_api_key": "x"}}});
        assert!(matches!(r.resolve_team(&meta(other), "team t"), OwnLogging::Own(None)));
    }

    #[test]
    fn a_keys_own_setting_wins_over_its_teams() {
        let r = resolver();
        let with = |pk: &str| {
            r.resolve(
                &meta(json!({"logging": [{"callback_name": "langfuse", "callback_vars": {"langfuse_public_key": pk, "langfuse_secret_key": "sk"}}]})),
                "x",
            )
        };
        let (key, team) = (with("pk-key"), with("pk-team"));
        assert!(Arc::ptr_eq(OwnLogging::of_call(Some(&key), Some(&team)).unwrap(), own(&key)));
        assert!(Arc::ptr_eq(OwnLogging::of_call(Some(&OwnLogging::Inherit), Some(&team)).unwrap(), own(&team)));
        assert!(OwnLogging::of_call(Some(&OwnLogging::Own(None)), Some(&team)).is_none());
        assert!(OwnLogging::of_call(None, None).is_none());
    }

    #[test]
    fn projects_are_shared_and_bounded() {
        let r = resolver();
        let a = r.project(None, "pk", "sk").unwrap();
        assert!(Arc::ptr_eq(&a, &r.project(None, " pk", "sk").unwrap()));
        let mut held = vec![a];
        for i in 1..MAX_PROJECTS {
            held.push(r.project(None, &format!("pk-{i}"), "sk").unwrap());
        }
        let e = r.project(None, "pk-one-too-many", "sk").unwrap_err();
        assert!(e.contains("distinct Langfuse projects"), "{e}");
        // Once unused, a project's place is free again.
        held.pop();
        assert!(r.project(None, "pk-one-too-many", "sk").is_ok());
    }
}
