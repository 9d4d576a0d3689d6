//! Machine-readable results: locust-compatible CSV files (PREFIX_stats.csv,
//! PREFIX_stats_history.csv, PREFIX_failures.csv) and one JSON document with every figure.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::summary::{EndpointSummary, Latency, Summary, CSV_PERCENTILES};

/// Quotes a CSV field the way locust's csv.writer(quoting=QUOTE_ALL) does.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn pcts(l: &Latency) -> [f64; 11] {
    [l.p50, l.p66, l.p75, l.p80, l.p90, l.p95, l.p98, l.p99, l.p999, l.p9999, l.max]
}

fn pct_header() -> String {
    CSV_PERCENTILES.iter().map(|p| q(&format!("{}%", num(*p)))).collect::<Vec<_>>().join(",")
}

/// The contents of PREFIX_stats.csv.
pub fn stats_csv(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{},{}",
        [
            "Type",
            "Name",
            "Request Count",
            "Failure Count",
            "Median Response Time",
            "Average Response Time",
            "Min Response Time",
            "Max Response Time",
            "Average Content Size",
            "Requests/s",
            "Failures/s",
        ]
        .map(q)
        .join(","),
        pct_header()
    );
    let row = |out: &mut String, e: &EndpointSummary| {
        let l = &e.latency_ms;
        let mut cells = vec![
            q(&e.method),
            q(&e.name),
            e.requests.to_string(),
            e.failures.to_string(),
            num(l.p50),
            num(l.avg),
            num(l.min),
            num(l.max),
            num(e.avg_content_bytes),
            num(e.rps),
            num(e.failures_per_s),
        ];
        cells.extend(pcts(l).iter().map(|v| num(*v)));
        let _ = writeln!(out, "{}", cells.join(","));
    };
    for e in &s.endpoints {
        row(&mut out, e);
    }
    row(&mut out, &s.aggregated);
    out
}

/// The contents of PREFIX_stats_history.csv: one Aggregated row per second.
pub fn history_csv(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{},{},{}",
        ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"].map(q).join(","),
        pct_header(),
        [
            "Total Request Count",
            "Total Failure Count",
            "Total Median Response Time",
            "Total Average Response Time",
            "Total Min Response Time",
            "Total Max Response Time",
            "Total Average Content Size",
        ]
        .map(q)
        .join(",")
    );
    for p in &s.timeline {
        let mut cells = vec![
            (s.started_unix + p.t + 1).to_string(),
            p.users.to_string(),
            q(""),
            q("Aggregated"),
            num(p.rps),
            num(p.failures_per_s),
        ];
        cells.extend(p.percentiles_ms.iter().map(|v| num(*v)));
        cells.extend([
            p.total_requests.to_string(),
            p.total_failures.to_string(),
            num(p.total_p50_ms),
            num(p.total_avg_ms),
            num(p.total_min_ms),
            num(p.total_max_ms),
            num(s.aggregated.avg_content_bytes),
        ]);
        let _ = writeln!(out, "{}", cells.join(","));
    }
    out
}

/// The contents of PREFIX_failures.csv.
pub fn failures_csv(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", ["Method", "Name", "Error", "Occurrences"].map(q).join(","));
    for f in &s.failures {
        let error = if f.status == 0 { f.message.clone() } else { format!("HTTP {}: {}", f.status, f.message) };
        let _ = writeln!(out, "{},{},{},{}", q(&f.method), q(&f.name), q(&error), f.count);
    }
    out
}

/// Writes the three CSV files; returns their paths.
pub fn write_csv(prefix: &str, s: &Summary) -> io::Result<Vec<PathBuf>> {
    let files = [
        (format!("{prefix}_stats.csv"), stats_csv(s)),
        (format!("{prefix}_stats_history.csv"), history_csv(s)),
        (format!("{prefix}_failures.csv"), failures_csv(s)),
    ];
    let mut paths = Vec::new();
    for (path, text) in files {
        std::fs::write(&path, text)?;
        paths.push(PathBuf::from(path));
    }
    Ok(paths)
}

/// The JSON document.
pub fn json(s: &Summary) -> String {
    serde_json::to_string_pretty(s).expect("a summary always serialises")
}

pub fn write_json(path: &Path, s: &Summary) -> io::Result<()> {
    std::fs::write(path, json(s) + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests_support::summary;

    #[test]
    fn stats_csv_shape() {
        let text = stats_csv(&summary());
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4); // header, 2 endpoints, Aggregated
        assert!(lines[0].starts_with("\"Type\",\"Name\",\"Request Count\",\"Failure Count\",\"Median Response Time\""));
        assert!(lines[0].ends_with("\"99.9%\",\"99.99%\",\"100%\""));
        let cols = lines[0].split(',').count();
        assert_eq!(cols, 22);
        for l in &lines[1..] {
            assert_eq!(l.split(',').count(), cols, "{l}");
        }
        assert!(lines[1].starts_with("\"POST\",\"/chat/completions\",1001,1,"));
        assert!(lines[3].starts_with("\"\",\"Aggregated\",1003,2,"));
    }

    #[test]
    fn history_and_failures_csv_shape() {
        let s = summary();
        let text = history_csv(&s);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 1 + s.timeline.len());
        let cols = lines[0].split(',').count();
        assert_eq!(cols, 24);
        for l in &lines[1..] {
            assert_eq!(l.split(',').count(), cols, "{l}");
        }
        assert!(lines[1].starts_with("1700000001,10,\"\",\"Aggregated\",300,0,"));

        let text = failures_csv(&s);
        assert!(text.starts_with("\"Method\",\"Name\",\"Error\",\"Occurrences\"\n"));
        assert!(text.contains("\"POST\",\"/chat/completions\",\"HTTP 500: server exploded\",1"));
        assert!(text.contains("\"GET\",\"/health/readiness\",\"connection refused\",1"));
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&json(&summary())).unwrap();
        assert_eq!(v["endpoints"].as_array().unwrap().len(), 2);
        let e = &v["endpoints"][0];
        assert_eq!(e["name"], "/chat/completions");
        assert_eq!(e["requests"], 1001);
        assert_eq!(e["failures"], 1);
        assert!(e["rps"].as_f64().unwrap() > 333.0);
        let p50 = e["latency_ms"]["p50"].as_f64().unwrap();
        assert!((p50 - 500.5).abs() < 2.0, "{p50}");
        assert!(e["latency_ms"]["p99"].is_number());
        assert_eq!(v["aggregated"]["requests"], 1003);
        assert_eq!(v["failures"].as_array().unwrap().len(), 2);
        assert_eq!(v["failures"][0]["count"], 1);
        assert!(v["failures"][0]["status"].is_number());
        assert_eq!(v["timeline"].as_array().unwrap().len(), 3);
        assert!(v["timeline"][0]["rps"].is_number());
        assert!(v["histogram"].as_array().unwrap().len() > 5);
        assert_eq!(v["mode"], "users");
    }

    #[test]
    fn quoting() {
        assert_eq!(q("a\"b"), "\"a\"\"b\"");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.0), "0");
    }
}
