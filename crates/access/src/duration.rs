//! LiteLLM's duration grammar (`30s`, `30m`, `30h`, `30d`, `1w`, `1mo`), used by `duration`
//! (key expiry) and `budget_duration` (spend resets).

use chrono::{DateTime, Months, Utc};

/// The longest duration accepted: a hundred years, in seconds (leap days included). Longer
/// periods are typing mistakes, and an expiry or reset that far out no longer fits every
/// database's timestamp type.
pub const MAX_SECONDS: i64 = 100 * 366 * 86_400;

/// Adds `spec` to `from`; `Err` says what a valid duration looks like.
pub fn after(from: DateTime<Utc>, spec: &str) -> Result<DateTime<Utc>, String> {
    let spec = spec.trim();
    let digits = spec.find(|c: char| !c.is_ascii_digit()).unwrap_or(spec.len());
    let (n, unit) = spec.split_at(digits);
    if n.is_empty() || !["s", "m", "h", "d", "w", "mo"].contains(&unit) {
        return Err(invalid(spec));
    }
    // Digits only (a sign, spaces or a fraction never get here): what does not parse overflows.
    let n: i64 = n.parse().map_err(|_| too_long(spec))?;
    let unit_seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => {
            let months = u32::try_from(n).ok().filter(|m| *m <= 100 * 12).ok_or_else(|| too_long(spec))?;
            return from.checked_add_months(Months::new(months)).ok_or_else(|| too_long(spec));
        }
        _ => return Err(invalid(spec)),
    };
    let seconds = n.checked_mul(unit_seconds).filter(|s| *s <= MAX_SECONDS).ok_or_else(|| too_long(spec))?;
    chrono::TimeDelta::try_seconds(seconds).and_then(|d| from.checked_add_signed(d)).ok_or_else(|| too_long(spec))
}

fn invalid(spec: &str) -> String {
    format!("invalid duration {spec:?}: write a number and a unit, e.g. 30s, 30m, 30h, 30d, 1w or 1mo")
}

fn too_long(spec: &str) -> String {
    format!("duration {spec:?} is longer than the 100 years sluice accepts; write e.g. 30d, 52w or 12mo")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_every_unit() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
        assert_eq!(after(t, "30s").unwrap(), t + chrono::Duration::seconds(30));
        assert_eq!(after(t, "2m").unwrap(), t + chrono::Duration::minutes(2));
        assert_eq!(after(t, "3h").unwrap(), t + chrono::Duration::hours(3));
        assert_eq!(after(t, "1d").unwrap(), t + chrono::Duration::days(1));
        assert_eq!(after(t, "1w").unwrap(), t + chrono::Duration::days(7));
        assert_eq!(after(t, "1mo").unwrap(), Utc.with_ymd_and_hms(2026, 2, 28, 0, 0, 0).unwrap());
        for bad in ["", "d", "10", "5x", "-1d", "1.5h"] {
            assert!(after(t, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_durations_too_long_to_store() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
        for huge in [
            "9223372036854775807s",
            "9223372036854775807m",
            "153722867280912931m",
            "9223372036854775808s",
            "99999999999999999999999d",
            "5300w",
            "1201mo",
            "4294967296mo",
        ] {
            let e = after(t, huge).unwrap_err();
            assert!(e.contains("100 years"), "{huge}: {e}");
        }
        assert_eq!(after(t, "36600d").unwrap(), t + chrono::Duration::days(36_600));
        assert_eq!(after(t, "1200mo").unwrap(), Utc.with_ymd_and_hms(2126, 1, 31, 0, 0, 0).unwrap());
    }

    /// Any text, and numbers of every size (signs included) with every unit.
    fn duration_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[ -~]{0,30}",
            ("[0-9]{1,30}", "(s|m|h|d|w|mo|y|)").prop_map(|(n, u)| format!("{n}{u}")),
            (any::<i64>(), "(s|m|h|d|w|mo)").prop_map(|(n, u)| format!("{n}{u}")),
        ]
    }

    proptest::proptest! {
        /// Whatever the text, the time comes out at most a hundred years on, or an error does;
        /// never a panic.
        #[test]
        fn any_duration_is_bounded_or_refused(spec in duration_text()) {
            let t = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
            if let Ok(at) = after(t, &spec) {
                proptest::prop_assert!(at >= t);
                proptest::prop_assert!(at <= t + chrono::Duration::seconds(MAX_SECONDS));
            }
        }
    }
}
