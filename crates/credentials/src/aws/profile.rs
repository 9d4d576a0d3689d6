//! The shared `credentials` and `config` files (`~/.aws/…`, or `AWS_SHARED_CREDENTIALS_FILE`
//! and `AWS_CONFIG_FILE`), read at each fetch so a rotated file is picked up. A profile gives
//! keys, or a role to assume (`role_arn` with `source_profile` or `web_identity_token_file`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{read_bounded, read_token_file, sts, Credentials};
use crate::cache::Fresh;
use crate::env::Env;

type Section = HashMap<String, String>;

/// Both files' profiles, the credentials file's keys winning over the config file's.
struct Profiles {
    sections: HashMap<String, Section>,
}

fn expand(path: &str, env: &Env) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => env.home(rest).map(|p| p.display().to_string()).unwrap_or_else(|| path.to_string()),
        None => path.to_string(),
    }
}

fn credentials_file(env: &Env) -> Option<String> {
    env.get("AWS_SHARED_CREDENTIALS_FILE")
        .map(|p| expand(p, env))
        .or_else(|| env.home(".aws/credentials").map(|p| p.display().to_string()))
}

fn config_file(env: &Env) -> Option<String> {
    env.get("AWS_CONFIG_FILE")
        .map(|p| expand(p, env))
        .or_else(|| env.home(".aws/config").map(|p| p.display().to_string()))
}

impl Profiles {
    fn load(env: &Env) -> Result<Profiles, String> {
        let mut sections: HashMap<String, Section> = HashMap::new();
        // Config first, so the credentials file's keys overwrite.
        for (path, is_config) in [(config_file(env), true), (credentials_file(env), false)] {
            let Some(path) = path else { continue };
            let text = match read_bounded(&path) {
                Ok(t) => t,
                Err(_) if !std::path::Path::new(&path).exists() => continue,
                Err(e) => return Err(format!("cannot read the AWS shared file {path}: {e}")),
            };
            for (name, section) in parse(&text, is_config) {
                sections.entry(name).or_default().extend(section);
            }
        }
        Ok(Profiles { sections })
    }
}

/// An INI file's profiles. In the config file a profile's section is `[profile NAME]` (or
/// `[default]`); other sections (`[sso-session …]`, `[services …]`) are not profiles.
fn parse(text: &str, is_config: bool) -> Vec<(String, Section)> {
    let mut out: Vec<(String, Section)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            let header = header.trim();
            let name = if !is_config || header == "default" {
                Some(header)
            } else {
                header.strip_prefix("profile").filter(|r| r.starts_with(char::is_whitespace)).map(str::trim)
            };
            current = name.filter(|n| !n.is_empty()).map(|n| {
                out.push((n.to_string(), Section::new()));
                out.len() - 1
            });
            continue;
        }
        let (Some(i), Some((key, value))) = (current, line.split_once('=')) else { continue };
        // Nested sub-sections (`s3 =` then indented keys) are not credentials: their keys land
        // here as plain keys, which is harmless for the keys read below.
        if let Some((_, section)) = out.get_mut(i) {
            section.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    out
}

/// What `name` says to use, or `None` when neither file has it or it holds no credentials.
pub(super) async fn credentials(
    env: &Env,
    name: &str,
    sts: &sts::Endpoint,
) -> Result<Option<Fresh<Arc<Credentials>>>, String> {
    let profiles = Profiles::load(env)?;
    let Some(p) = profiles.sections.get(name) else { return Ok(None) };
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(role) = get("role_arn") {
        let session = get("role_session_name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("sluice-{}", crate::time::now_unix()));
        if let Some(file) = get("web_identity_token_file") {
            let token = read_token_file(&expand(file, env), &format!("profile {name}'s web_identity_token_file"))?;
            return sts::assume_role_with_web_identity(sts, role, &session, &token)
                .await
                .map(Some)
                .map_err(|e| format!("AWS profile {name} (role_arn with web_identity_token_file): {e}"));
        }
        let Some(source) = get("source_profile") else {
            return Err(format!("AWS profile {name} has role_arn without source_profile or web_identity_token_file; sluice supports only those two (credential_source is not supported): give the role's source as source_profile"));
        };
        let base = profiles
            .sections
            .get(source)
            .and_then(keys)
            .ok_or_else(|| format!("AWS profile {name}'s source_profile {source} has no aws_access_key_id and aws_secret_access_key (sluice assumes one role, not a chain of them)"))?;
        return sts::assume_role(sts, &base, role, &session)
            .await
            .map(Some)
            .map_err(|e| format!("AWS profile {name} (role_arn with source_profile {source}): {e}"));
    }
    if let Some(creds) = keys(p) {
        return Ok(Some(Fresh { value: Arc::new(creds), lifetime: None }));
    }
    for unsupported in ["credential_process", "sso_session", "sso_start_url"] {
        if get(unsupported).is_some() {
            return Err(format!("AWS profile {name} uses {unsupported}, which sluice does not support; give the profile keys (aws_access_key_id, aws_secret_access_key) or a role (role_arn with source_profile or web_identity_token_file)"));
        }
    }
    Ok(None)
}

fn keys(p: &Section) -> Option<Credentials> {
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    Some(Credentials {
        access_key_id: get("aws_access_key_id")?,
        secret_access_key: get("aws_secret_access_key")?,
        session_token: get("aws_session_token"),
    })
}

/// The error for a profile that was asked for by name (`setting`) and is not there.
pub(super) fn missing(env: &Env, name: &str, setting: &str) -> String {
    let files = [credentials_file(env), config_file(env)].into_iter().flatten().collect::<Vec<_>>().join(" or ");
    format!("AWS profile {name:?} ({setting}) has no credentials in {files}; add aws_access_key_id and aws_secret_access_key (or role_arn with source_profile) under it, or point AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE at the right files")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files() {
        let creds = "# c\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=s1\n\n[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key = s2\naws_session_token = t2\n";
        let config = "[default]\nregion = us-east-1\n[profile dev]\nregion=eu-west-1\n[profile   ops]\nrole_arn = arn:aws:iam::1:role/ops\nsource_profile = dev\n[sso-session x]\nsso_region=us-east-1\n[profileless]\nx=1\n";
        let parsed = parse(creds, false);
        assert_eq!(parsed.len(), 2);
        assert_eq!(keys(&parsed[1].1).unwrap().session_token.as_deref(), Some("t2"));
        let parsed = parse(config, true);
        let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["default", "dev", "ops"]);
        assert_eq!(parsed[2].1.get("source_profile").map(String::as_str), Some("dev"));
    }

    proptest::proptest! {
        #[test]
        fn any_file_parses(s in "[\\[\\]a-z =#;\n]{0,200}") {
            let _ = parse(&s, true);
            let _ = parse(&s, false);
        }
    }
}
