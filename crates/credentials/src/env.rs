//! The environment variables the credential sources read, captured once when a source is built:
//! the process's (through the config's `environment_variables` first), or a fixed set in tests.

use std::collections::HashMap;
use std::path::PathBuf;

/// Every variable a source here reads.
pub const NAMES: &[&str] = &[
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
];

/// A snapshot of [`NAMES`]; an empty value counts as unset.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: HashMap<&'static str, String>,
}

/// Names only: several of these values are secrets.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().copied().collect();
        names.sort_unstable();
        f.debug_struct("Env").field("set", &names).finish()
    }
}

impl Env {
    /// Reads [`NAMES`] through `lookup`.
    pub fn capture(lookup: &dyn Fn(&str) -> Option<String>) -> Env {
        let vars = NAMES.iter().filter_map(|n| lookup(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v))).collect();
        Env { vars }
    }

    /// The process's environment.
    pub fn process() -> Env {
        Env::capture(&|n| std::env::var(n).ok())
    }

    /// A fixed environment (tests); names outside [`NAMES`] are ignored.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env::capture(&|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every name and value, sorted: what makes two environments the same.
    pub(crate) fn fingerprint(&self) -> String {
        let mut pairs: Vec<(&&str, &String)> = self.vars.iter().collect();
        pairs.sort_unstable();
        format!("{pairs:?}")
    }

    /// `$HOME/rest`, when HOME is set.
    pub(crate) fn home(&self, rest: &str) -> Option<PathBuf> {
        self.get("HOME").map(|h| PathBuf::from(h).join(rest))
    }
}
