//! LiteLLM's `fallback_reports`: with each daily report, the fallbacks since the last one —
//! which model group fell back to which, and how often that worked — counted here as calls end
//! (LiteLLM reads the same from its Prometheus fallback counters).

use std::sync::Mutex;

/// The most distinct (from, to) pairs counted between two reports; later new pairs are counted
/// under the last line, `other`.
const MAX_PAIRS: usize = 200;
/// The longest model group name a line shows.
const MAX_NAME: usize = 256;

#[derive(Debug, Default)]
pub struct Fallbacks {
    /// (from, to, successful, failed), in the order first seen.
    pairs: Mutex<Vec<(String, String, u64, u64)>>,
    /// Fallbacks past [`MAX_PAIRS`]: (successful, failed).
    other: Mutex<(u64, u64)>,
}

impl Fallbacks {
    /// A call to `from` was served (or not, `ok`) after falling back to `to`.
    pub fn record(&self, from: &str, to: &str, ok: bool) {
        let cut = |s: &str| s.chars().take(MAX_NAME).collect::<String>();
        let mut pairs = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = match pairs.iter().position(|p| p.0 == from && p.1 == to) {
            Some(at) => &mut pairs[at],
            None if pairs.len() < MAX_PAIRS => {
                pairs.push((cut(from), cut(to), 0, 0));
                pairs.last_mut().expect("just pushed")
            }
            None => {
                drop(pairs);
                let mut other = self.other.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match ok {
                    true => other.0 += 1,
                    false => other.1 += 1,
                }
                return;
            }
        };
        match ok {
            true => slot.2 += 1,
            false => slot.3 += 1,
        }
    }

    /// The report of the fallbacks since the last one (`None` when there were none), and a new
    /// count begins.
    pub fn take_report(&self) -> Option<String> {
        let pairs = std::mem::take(&mut *self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let other = std::mem::take(&mut *self.other.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if pairs.is_empty() && other == (0, 0) {
            return None;
        }
        let mut text = String::from("*Fallback Statistics:*\n");
        for (from, to, ok, failed) in &pairs {
            let to = if to.is_empty() { "(none served)" } else { to };
            text.push_str(&format!("`{from}` -> `{to}`: successful: `{ok}`, failed: `{failed}`\n"));
        }
        if other != (0, 0) {
            text.push_str(&format!("other fallbacks: successful: `{}`, failed: `{}`\n", other.0, other.1));
        }
        Some(text.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_are_counted_per_pair_and_reported_once() {
        let f = Fallbacks::default();
        assert_eq!(f.take_report(), None);
        f.record("gpt-4o", "claude", true);
        f.record("gpt-4o", "claude", true);
        f.record("gpt-4o", "", false);
        let report = f.take_report().unwrap();
        assert_eq!(
            report,
            "*Fallback Statistics:*\n`gpt-4o` -> `claude`: successful: `2`, failed: `0`\n`gpt-4o` -> `(none served)`: successful: `0`, failed: `1`"
        );
        assert_eq!(f.take_report(), None, "a new count begins");
        for i in 0..MAX_PAIRS + 3 {
            f.record(&format!("m{i}"), "x", i % 2 == 0);
        }
        let report = f.take_report().unwrap();
        assert_eq!(report.lines().count(), 1 + MAX_PAIRS + 1);
        assert!(report.ends_with("other fallbacks: successful: `2`, failed: `1`"), "{report}");
    }
}
