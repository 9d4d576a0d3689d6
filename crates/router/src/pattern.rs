//! Wildcard model groups: LiteLLM's pattern router (`model_name: "*"`, `"anthropic/*"`,
//! `"claude-3-5-*"`).
//!
//! A group whose name holds a `*` serves every requested name the pattern matches, where `*`
//! stands for any run of characters. Exact names are looked up first; among patterns the most
//! specific wins, as LiteLLM sorts them: the longer pattern first, then the one with more
//! wildcards, then config order. Matching is anchored at both ends (LiteLLM's `re.match` is
//! anchored only at the start, so there `"gpt-*-mini"` would also take `"gpt-4o-mini-2024"` and
//! drop the `-2024` when it builds the upstream name; here it does not match).
//!
//! [`Pattern::upstream`] is LiteLLM's `set_deployment_model_name`: the request's wildcard segments
//! replace, in order, the `*`s of the deployment's `litellm_params.model`.

/// Longest requested name matched against patterns. Names come from request bodies; the bound
/// keeps matching (which backtracks over the `*`s) cheap and the names a wildcard can produce
/// short. No real model name comes near it.
pub const MAX_NAME: usize = 256;

/// A group name holding at least one `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// The literal runs between the `*`s (one more than there are `*`s).
    parts: Vec<String>,
}

impl Pattern {
    /// The pattern `name` describes, or `None` when it holds no `*` (an exact name).
    pub fn parse(name: &str) -> Option<Pattern> {
        if !name.contains('*') {
            return None;
        }
        Some(Pattern { text: name.to_string(), parts: name.split('*').map(str::to_string).collect() })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The literal text before the first `*` (`"anthropic/"` for `"anthropic/*"`).
    pub fn prefix(&self) -> &str {
        &self.parts[0]
    }

    /// Whether the pattern is the single `*`, matching every name.
    pub fn is_catch_all(&self) -> bool {
        self.parts.iter().all(String::is_empty)
    }

    /// How LiteLLM orders patterns (`calculate_pattern_specificity`): longer first, then more
    /// wildcards. Compared descending.
    pub fn specificity(&self) -> (usize, usize) {
        (self.text.len(), self.parts.len() - 1)
    }

    /// The segments the `*`s stand for in `name`, or `None` when the pattern does not match it
    /// (or `name` is longer than [`MAX_NAME`]). Each `*` takes as much as it can, leftmost first,
    /// as Python's greedy `(.*)` groups do.
    pub fn captures<'n>(&self, name: &'n str) -> Option<Vec<&'n str>> {
        if name.len() > MAX_NAME {
            return None;
        }
        let first = &self.parts[0];
        let rest = name.strip_prefix(first.as_str())?;
        let mut out = Vec::with_capacity(self.parts.len() - 1);
        greedy(&self.parts[1..], rest, &mut out).then_some(out)
    }

    pub fn matches(&self, name: &str) -> bool {
        self.captures(name).is_some()
    }

    /// The model a deployment with `litellm_params.model: template` calls for requested `name`:
    /// `template`'s `*`s replaced in order by the segments the pattern captured. A template
    /// without `*` is the deployment's fixed model; one with fewer `*`s than the pattern has
    /// takes the requested name whole, as LiteLLM does. `None` when the pattern does not match.
    pub fn upstream(&self, template: &str, name: &str) -> Option<String> {
        let segments = self.captures(name)?;
        let wildcards = template.matches('*').count();
        if wildcards == 0 {
            return Some(template.to_string());
        }
        if segments.len() > wildcards {
            return Some(name.to_string());
        }
        let mut out = String::with_capacity(template.len() + name.len());
        let mut pieces = template.split('*');
        out.push_str(pieces.next().unwrap_or_default());
        for (i, piece) in pieces.enumerate() {
            // A template with more `*`s than segments keeps the extra ones, as LiteLLM's
            // `str.replace(.., 1)` loop does.
            out.push_str(segments.get(i).copied().unwrap_or("*"));
            out.push_str(piece);
        }
        Some(out)
    }
}

/// Matches `s` against `*part[0]*part[1]…` (each part preceded by a `*`), pushing what each `*`
/// took. The last part must end `s`; a `*` takes the longest run that lets the rest match.
/// Positions already shown not to work are remembered, so a name costs at most
/// parts × length² steps however many `*`s the pattern has.
fn greedy<'n>(parts: &[String], s: &'n str, out: &mut Vec<&'n str>) -> bool {
    let mut dead = vec![false; parts.len() * (s.len() + 1)];
    step(parts, 0, s, 0, out, &mut dead)
}

/// `parts[i..]` against `s[from..]`.
fn step<'n>(parts: &[String], i: usize, s: &'n str, from: usize, out: &mut Vec<&'n str>, dead: &mut [bool]) -> bool {
    let Some(part) = parts.get(i) else { return from == s.len() };
    let slot = i * (s.len() + 1) + from;
    if dead[slot] {
        return false;
    }
    let tail = &s[from..];
    if i + 1 == parts.len() {
        // The last literal must end the name: the `*` takes everything before it.
        if let Some(taken) = tail.strip_suffix(part.as_str()) {
            out.push(taken);
            return true;
        }
        dead[slot] = true;
        return false;
    }
    // The literal's occurrences from the right: the longest capture first.
    let mut at = tail.len().checked_sub(part.len());
    while let Some(a) = at {
        if tail.is_char_boundary(a) && tail[a..].starts_with(part.as_str()) {
            out.push(&tail[..a]);
            if step(parts, i + 1, s, from + a + part.len(), out, dead) {
                return true;
            }
            out.pop();
        }
        at = a.checked_sub(1);
    }
    dead[slot] = true;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn exact_names_are_not_patterns() {
        assert_eq!(Pattern::parse("gpt-4o"), None);
    }

    #[test]
    fn matches_provider_prefix_and_catch_all() {
        assert_eq!(p("anthropic/*").captures("anthropic/claude-3-5-sonnet"), Some(vec!["claude-3-5-sonnet"]));
        assert_eq!(p("anthropic/*").captures("openai/gpt-4o"), None);
        assert_eq!(p("*").captures("anything/at all"), Some(vec!["anything/at all"]));
        assert!(p("*").is_catch_all());
        assert_eq!(p("claude-3-5-*").captures("claude-3-5-haiku"), Some(vec!["haiku"]));
        assert_eq!(p("claude-3-5-*").captures("claude-3-opus"), None);
    }

    #[test]
    fn anchored_at_both_ends_and_greedy() {
        assert!(p("gpt-*-mini").matches("gpt-4o-mini"));
        assert!(!p("gpt-*-mini").matches("gpt-4o-mini-2024"));
        // Greedy: the first `*` takes as much as it can.
        assert_eq!(p("*-*").captures("a-b-c"), Some(vec!["a-b", "c"]));
        assert_eq!(p("*meta.llama3*").captures("hello-meta.llama3-70b"), Some(vec!["hello-", "-70b"]));
        assert_eq!(p("fo::*::static::*").captures("fo::bar::static::baz"), Some(vec!["bar", "baz"]));
        assert_eq!(p("a**b").captures("axyb"), Some(vec!["xy", ""]));
    }

    #[test]
    fn long_names_do_not_match() {
        let long = format!("anthropic/{}", "x".repeat(MAX_NAME));
        assert!(!p("anthropic/*").matches(&long));
    }

    #[test]
    fn upstream_maps_segments_into_the_template() {
        let pat = p("anthropic/*");
        assert_eq!(pat.upstream("anthropic/*", "anthropic/claude-3-5-sonnet").unwrap(), "anthropic/claude-3-5-sonnet");
        assert_eq!(p("llmengine/*").upstream("openai/*", "llmengine/foo").unwrap(), "openai/foo");
        assert_eq!(p("*").upstream("*", "gpt-4o").unwrap(), "gpt-4o");
        assert_eq!(
            p("claude-3-5-*").upstream("anthropic/claude-3-5-*", "claude-3-5-haiku").unwrap(),
            "anthropic/claude-3-5-haiku"
        );
        // More segments than the template has `*`s: the requested name whole (LiteLLM's rule).
        assert_eq!(
            p("*meta.llama3*").upstream("bedrock/meta.llama3*", "x-meta.llama3-70b").unwrap(),
            "x-meta.llama3-70b"
        );
        // A fixed template: the deployment's own model.
        assert_eq!(p("gpt-*").upstream("openai/gpt-4o", "gpt-anything").unwrap(), "openai/gpt-4o");
        assert_eq!(p("gpt-*").upstream("openai/gpt-4o", "claude"), None);
    }

    #[test]
    fn multibyte_names_never_split_a_character() {
        for name in ["é-é-é", "ü*ü", "日本-語-x", "-", "--", "é"] {
            let _ = p("*-*").captures(name);
            let _ = p("*é*").captures(name);
            let _ = p("**").captures(name);
        }
        assert_eq!(p("*-*").captures("日本-語-x"), Some(vec!["日本-語", "x"]));
    }
}
