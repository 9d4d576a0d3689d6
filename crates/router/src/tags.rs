//! Tag-based routing (`router_settings.enable_tag_filtering`): a request's tags
//! (`metadata.tags`, or a top-level `tags`) pick the deployments whose `litellm_params.tags`
//! carry them, as LiteLLM's `get_deployments_for_tag` does:
//!
//! - a tagged request goes to the deployments sharing at least one of its tags (all of them,
//!   with `tag_filtering_match_any: false`); when none does, to those tagged `default`; when
//!   there are none of those either, it is refused (LiteLLM's "Not allowed to access model due
//!   to tags configuration");
//! - an untagged request goes to the deployments tagged `default` when there are any, else to
//!   every deployment.
//!
//! `!tag` in a request excludes deployments carrying `tag`, and `&tag` requires it (LiteLLM's
//! exclusion and must-have markers); with only such constraints, the `default`-tagged
//! deployments (else all) that satisfy them serve.

use crate::Deployment;
use std::sync::Arc;

/// The tag that marks the deployments serving requests no other tag picks.
pub const DEFAULT_TAG: &str = "default";

/// The request's tags, split into LiteLLM's three kinds.
struct Wanted<'a> {
    positive: Vec<&'a str>,
    required: Vec<&'a str>,
    excluded: Vec<&'a str>,
}

impl<'a> Wanted<'a> {
    fn of(tags: &'a [String]) -> Self {
        let mut w = Wanted { positive: Vec::new(), required: Vec::new(), excluded: Vec::new() };
        for t in tags {
            match (t.strip_prefix('&'), t.strip_prefix('!')) {
                (Some(r), _) if !r.is_empty() => w.required.push(r),
                (_, Some(x)) if !x.is_empty() => w.excluded.push(x),
                // A lone marker carries nothing.
                _ if t == "&" || t == "!" => {}
                _ => w.positive.push(t),
            }
        }
        w
    }
}

fn has<T>(d: &Deployment<T>, tag: &str) -> bool {
    d.tags.iter().any(|t| t == tag)
}

/// Narrows `candidates` to the deployments the request's `tags` pick. `Err` when the tags pick
/// none (LiteLLM refuses the request then), with `candidates` left as they were.
pub(crate) fn retain<T>(candidates: &mut Vec<&Arc<Deployment<T>>>, tags: &[String], match_any: bool) -> Result<(), ()> {
    let w = Wanted::of(tags);
    let allowed = |d: &Deployment<T>| !w.excluded.iter().any(|x| has(d, x)) && w.required.iter().all(|r| has(d, r));
    let chosen: Vec<&Arc<Deployment<T>>> = if !w.positive.is_empty() {
        let hit = |d: &Deployment<T>| match match_any {
            true => w.positive.iter().any(|t| has(d, t)),
            false => w.positive.iter().all(|t| has(d, t)),
        };
        let matched: Vec<_> = candidates.iter().copied().filter(|d| allowed(d) && hit(d)).collect();
        if matched.is_empty() {
            candidates.iter().copied().filter(|d| allowed(d) && has(d, DEFAULT_TAG)).collect()
        } else {
            matched
        }
    } else {
        let defaults: Vec<_> = candidates.iter().copied().filter(|d| has(d, DEFAULT_TAG)).collect();
        let pool = if defaults.is_empty() { candidates.clone() } else { defaults };
        pool.into_iter().filter(|d| allowed(d)).collect()
    };
    if chosen.is_empty() && !candidates.is_empty() {
        return Err(());
    }
    *candidates = chosen;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, tags: &[&str]) -> Arc<Deployment<()>> {
        let mut d = Deployment::new(id, "g", ());
        d.tags = tags.iter().map(|t| t.to_string()).collect();
        Arc::new(d)
    }

    fn pick(ds: &[Arc<Deployment<()>>], tags: &[&str], any: bool) -> Result<Vec<String>, ()> {
        let mut c: Vec<&Arc<Deployment<()>>> = ds.iter().collect();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        retain(&mut c, &tags, any)?;
        Ok(c.iter().map(|d| d.id.clone()).collect())
    }

    #[test]
    fn litellm_tag_rules() {
        let ds = [dep("free", &["free"]), dep("paid", &["paid", "eu"]), dep("plain", &[])];
        assert_eq!(pick(&ds, &["paid"], true).unwrap(), ["paid"]);
        assert_eq!(pick(&ds, &["free", "eu"], true).unwrap(), ["free", "paid"]);
        assert_eq!(pick(&ds, &["paid", "eu"], false).unwrap(), ["paid"]);
        assert_eq!(pick(&ds, &["free", "eu"], false), Err(()));
        // No match and no default deployment: refused.
        assert_eq!(pick(&ds, &["gold"], true), Err(()));
        // Untagged requests: every deployment when none is tagged `default`.
        assert_eq!(pick(&ds, &[], true).unwrap(), ["free", "paid", "plain"]);

        let ds = [dep("a", &["teamA"]), dep("d", &["default"])];
        assert_eq!(pick(&ds, &[], true).unwrap(), ["d"], "untagged requests go to the default");
        assert_eq!(pick(&ds, &["teamB"], true).unwrap(), ["d"], "unmatched tags fall back to the default");
        assert_eq!(pick(&ds, &["teamA"], true).unwrap(), ["a"]);
    }

    #[test]
    fn exclusion_and_required_markers() {
        let ds = [dep("a", &["eu", "fast"]), dep("b", &["us", "fast"]), dep("c", &["eu"])];
        assert_eq!(pick(&ds, &["fast", "!us"], true).unwrap(), ["a"]);
        assert_eq!(pick(&ds, &["&eu"], true).unwrap(), ["a", "c"]);
        assert_eq!(pick(&ds, &["fast", "&eu"], true).unwrap(), ["a"]);
        assert_eq!(pick(&ds, &["!eu", "!us"], true), Err(()));
        assert_eq!(pick(&ds, &["&", "!"], true).unwrap(), ["a", "b", "c"], "lone markers carry nothing");
    }

    #[test]
    fn nothing_to_choose_from_is_not_a_tag_refusal() {
        assert_eq!(pick(&[], &["x"], true).unwrap(), Vec::<String>::new());
    }
}
