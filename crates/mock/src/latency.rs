//! Durations and latency distributions as written on the command line.

use std::time::Duration;

use rand::Rng;

/// How long to wait before answering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Answer at once.
    None,
    /// Always the same delay (`25ms`).
    Fixed(Duration),
    /// Uniformly drawn between two bounds (`10ms..50ms`).
    Uniform(Duration, Duration),
    /// Normally distributed, clamped at zero (`normal:100ms,20ms` = mean, standard deviation).
    Normal { mean: Duration, std_dev: Duration },
}

impl Latency {
    /// Parses `25ms`, `10ms..50ms` or `normal:MEAN,STDDEV`.
    pub fn parse(spec: &str) -> Result<Latency, String> {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix("normal:") {
            let (mean, sd) = rest.split_once(',').ok_or("expected normal:MEAN,STDDEV, e.g. normal:100ms,20ms")?;
            return Ok(Latency::Normal { mean: parse_duration(mean)?, std_dev: parse_duration(sd)? });
        }
        if let Some((lo, hi)) = spec.split_once("..") {
            let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
            if lo > hi {
                return Err(format!("lower bound {lo:?} is above upper bound {hi:?}"));
            }
            return Ok(Latency::Uniform(lo, hi));
        }
        match parse_duration(spec)? {
            d if d.is_zero() => Ok(Latency::None),
            d => Ok(Latency::Fixed(d)),
        }
    }

    /// Draws one delay.
    pub fn sample(&self) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform(lo, hi) if lo == hi => lo,
            Latency::Uniform(lo, hi) => rand::thread_rng().gen_range(lo..=hi),
            Latency::Normal { mean, std_dev } => {
                // Box–Muller: rand 0.8 alone has no normal distribution, and this is two lines.
                let mut rng = rand::thread_rng();
                let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
                let u2: f64 = rng.gen();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let secs = mean.as_secs_f64() + z * std_dev.as_secs_f64();
                Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::ZERO)
            }
        }
    }

    /// True when no request is ever delayed, so the hot path can skip the timer entirely.
    pub fn is_none(&self) -> bool {
        matches!(self, Latency::None)
    }
}

/// Parses `250ms`, `2s`, `1.5s`, `100us`, `1m`, `1h`; a bare number means milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration (try 25ms, 2s or 1m)"))?;
    let scale = match unit.trim() {
        "" | "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25ms").unwrap(), Duration::from_millis(25));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("40").unwrap(), Duration::from_millis(40));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn specs() {
        assert_eq!(Latency::parse("25ms").unwrap(), Latency::Fixed(Duration::from_millis(25)));
        assert_eq!(Latency::parse("0").unwrap(), Latency::None);
        let u = Latency::parse("10ms..50ms").unwrap();
        for _ in 0..100 {
            let d = u.sample();
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(50));
        }
        assert!(Latency::parse("50ms..10ms").is_err());
        let n = Latency::parse("normal:1ms,100ms").unwrap();
        // Clamped at zero: a wide deviation around a tiny mean never yields a negative delay.
        for _ in 0..100 {
            n.sample();
        }
        assert!(Latency::parse("normal:100ms").is_err());
    }
}
