//! The summarised `/spend/logs` answer written straight to bytes ([`super::json_bytes`]). With
//! 10,000 keys a week of it is 6 MB of names and figures, and serde_json checking every byte of
//! every name for escapes was the largest single cost of the route.
//!
//! [`DayCache`] keeps each day's written answer, so that a day whose aggregates have not
//! changed since is neither read nor written again: only today's (or any day still being
//! counted) is.

use std::collections::BTreeMap;

use super::json_bytes::{number, string};
use axum::response::Response;
use sluice_store::{DailySpend, DayVersion, SpendByName};

/// `[{"startTime", "spend", "models", "users", "api_keys"}, …]`, as `serde_json` would write
/// [`DailySpend`]'s own `Serialize`.
pub(crate) fn days_json(days: &[DailySpend]) -> Vec<u8> {
    let names: usize = days.iter().map(|d| d.models.len() + d.users.len() + d.api_keys.len()).sum();
    let mut out = Vec::with_capacity(64 + names * 96);
    out.push(b'[');
    for (i, d) in days.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        day_json(&mut out, d);
    }
    out.push(b']');
    out
}

/// One day's `{"startTime", …}`.
fn day_json(out: &mut Vec<u8>, d: &DailySpend) {
    out.extend_from_slice(b"{\"startTime\":");
    string(out, &d.date);
    out.extend_from_slice(b",\"spend\":");
    number(out, d.spend);
    for (field, sums) in [("models", &d.models), ("users", &d.users), ("api_keys", &d.api_keys)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        object(out, sums);
    }
    out.push(b'}');
}

pub(crate) fn response(days: &[DailySpend]) -> Response {
    super::json_bytes::response(days_json(days))
}

/// The days' answers kept, at most this many bytes in all: with 10,000 keys a day is about
/// 0.9 MB, so a month fits.
const CACHE_BYTES: usize = 32 << 20;

/// Each day's written answer, with the [`DayVersion`] of the aggregates it was read after, for
/// the summary of the whole proxy (a key's or user's is small and never kept). With 10,000
/// keys a week's answer cost the gateway ~70 ms of CPU to read and write; a day unchanged since
/// is copied instead. It holds the days of the last range asked for (the dashboards ask for
/// the same range again), oldest dropped first past [`CACHE_BYTES`]. A replica's write to a
/// day changes that day's version, so every replica sees it.
#[derive(Default)]
pub struct DayCache(tokio::sync::Mutex<BTreeMap<String, (DayVersion, Vec<u8>)>>);

impl DayCache {
    /// The summary of `versions`' days (as the store found them, oldest first): each day kept
    /// at that version is copied, the rest are read through `read` (given the first and last
    /// such day; it returns the days of that range) and kept. One summary at a time, so that
    /// concurrent ones read a changed day once.
    pub(crate) async fn answer<F, Fut, E>(&self, versions: &[DayVersion], read: F) -> Result<Vec<u8>, E>
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<DailySpend>, E>>,
    {
        let mut kept = self.0.lock().await;
        let stale: Vec<&DayVersion> =
            versions.iter().filter(|v| kept.get(&v.date).is_none_or(|(at, _)| at != *v)).collect();
        if let (Some(first), Some(last)) = (stale.first(), stale.last()) {
            // Days in between that were kept are read again too: one range read is cheaper
            // than several, and rarely more than today is stale.
            for d in read(first.date.clone(), last.date.clone()).await? {
                let Some(v) = versions.iter().find(|v| v.date == d.date) else { continue };
                let mut json = Vec::new();
                day_json(&mut json, &d);
                kept.insert(d.date.clone(), (v.clone(), json));
            }
        }
        // Only the days asked for stay, newest first within the bound.
        kept.retain(|date, _| versions.iter().any(|v| &v.date == date));
        let mut total = 0;
        let mut too_old = Vec::new();
        for (date, (_, json)) in kept.iter().rev() {
            total += json.len();
            if total > CACHE_BYTES {
                too_old.push(date.clone());
            }
        }
        let mut out = Vec::with_capacity(2 + kept.values().map(|(_, j)| j.len() + 1).sum::<usize>());
        out.push(b'[');
        for v in versions {
            // A day with no rows now (read empty) is left out, as the store leaves it out.
            if let Some((_, json)) = kept.get(&v.date) {
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(json);
            }
        }
        out.push(b']');
        for date in too_old {
            kept.remove(&date);
        }
        Ok(out)
    }
}

fn object(out: &mut Vec<u8>, sums: &SpendByName) {
    out.push(b'{');
    for (i, (name, spend)) in sums.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, name);
        out.push(b':');
        number(out, *spend);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(date: &str, names: &[(&str, f64)]) -> DailySpend {
        let sums: SpendByName = names.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        DailySpend {
            date: date.into(),
            spend: names.iter().map(|(_, s)| s).sum(),
            models: sums.clone(),
            users: sums.clone(),
            api_keys: sums,
        }
    }

    /// Byte for byte: both walk the same maps in the same order.
    fn same_as_serde(days: &[DailySpend]) {
        let ours = days_json(days);
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde_json::to_vec(days).unwrap()));
    }

    #[test]
    fn the_answer_is_what_serde_writes() {
        same_as_serde(&[]);
        same_as_serde(&[day("2026-12-01", &[])]);
        same_as_serde(&[
            day("2026-12-01", &[("gpt-4o", 0.00153), ("a\"quoted\\name\u{1}", 1e-7), ("ünï", 2.5)]),
            day("2026-12-02", &[("k", f64::NAN), ("big", 1e300)]),
        ]);
    }

    fn version(date: &str, rows: i64, requests: i64) -> DayVersion {
        DayVersion { date: date.into(), rows, requests }
    }

    /// A kept day is not read again until its version changes; the answer is what the days
    /// written at once would be.
    #[tokio::test]
    async fn kept_days_are_read_again_only_when_they_change() {
        let cache = DayCache::default();
        let d1 = day("2026-12-01", &[("a", 1.0)]);
        let d2 = day("2026-12-02", &[("b", 2.0)]);
        let d2_later = day("2026-12-02", &[("b", 2.0), ("c", 3.0)]);
        let reads = std::sync::Mutex::new(Vec::new());
        let store = |days: Vec<DailySpend>| {
            let reads = &reads;
            move |from: String, to: String| {
                reads.lock().unwrap().push((from.clone(), to.clone()));
                let days: Vec<DailySpend> = days.into_iter().filter(|d| d.date >= from && d.date <= to).collect();
                async move { Ok::<_, ()>(days) }
            }
        };
        let v1 = [version("2026-12-01", 1, 5), version("2026-12-02", 1, 1)];
        let first = cache.answer(&v1, store(vec![d1.clone(), d2.clone()])).await.unwrap();
        assert_eq!(first, days_json(&[d1.clone(), d2.clone()]));
        // Nothing changed: nothing read.
        let again = cache.answer(&v1, store(vec![])).await.unwrap();
        assert_eq!(again, first);
        // The second day changed: only it is read.
        let v2 = [version("2026-12-01", 1, 5), version("2026-12-02", 2, 4)];
        let later = cache.answer(&v2, store(vec![d1.clone(), d2_later.clone()])).await.unwrap();
        assert_eq!(later, days_json(&[d1.clone(), d2_later.clone()]));
        assert_eq!(
            *reads.lock().unwrap(),
            [("2026-12-01".to_owned(), "2026-12-02".to_owned()), ("2026-12-02".to_owned(), "2026-12-02".to_owned())]
        );
        // A range with no days, and a read that fails, answer as the store would.
        assert_eq!(cache.answer(&[], store(vec![])).await.unwrap(), b"[]");
        let failed = cache.answer(&v1, |_, _| async { Err::<Vec<DailySpend>, _>("down") }).await;
        assert_eq!(failed, Err("down"));
    }

    proptest! {
        #[test]
        fn any_names_and_figures_come_out_as_serde_writes_them(
            names in proptest::collection::vec((any::<String>(), any::<f64>()), 0..20),
        ) {
            let names: Vec<(&str, f64)> = names.iter().map(|(n, s)| (n.as_str(), *s)).collect();
            same_as_serde(&[day("2026-12-01", &names), day("2026-12-02\"", &names)]);
        }
    }
}
