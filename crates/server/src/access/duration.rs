//! LiteLLM's duration grammar (`30s`, `30m`, `30h`, `30d`, `1w`, `1mo`), used by `duration`
//! (key expiry) and `budget_duration` (spend resets).

use chrono::{DateTime, Months, Utc};

/// Adds `spec` to `from`; `Err` says what a valid duration looks like.
pub fn after(from: DateTime<Utc>, spec: &str) -> Result<DateTime<Utc>, String> {
    let spec = spec.trim();
    let digits = spec.find(|c: char| !c.is_ascii_digit()).unwrap_or(spec.len());
    let (n, unit) = spec.split_at(digits);
    let n: i64 = n.parse().map_err(|_| invalid(spec))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        "mo" => {
            let months = u32::try_from(n).map_err(|_| invalid(spec))?;
            return from.checked_add_months(Months::new(months)).ok_or_else(|| invalid(spec));
        }
        _ => return Err(invalid(spec)),
    };
    from.checked_add_signed(chrono::Duration::seconds(seconds)).ok_or_else(|| invalid(spec))
}

fn invalid(spec: &str) -> String {
    format!("invalid duration {spec:?}: write a number and a unit, e.g. 30s, 30m, 30h, 30d, 1w or 1mo")
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
}
