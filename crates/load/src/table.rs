//! The tables printed at the end of a run (locust's layout: one row per endpoint, an Aggregated
//! row, then the failures grouped by status and message) and the live progress line.

use std::fmt::Write;

use crate::summary::{EndpointSummary, Point, Summary};

/// Milliseconds, with decimals where they matter (a fast gateway answers in well under 10 ms).
pub fn ms(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn name_width(s: &Summary) -> usize {
    s.endpoints.iter().map(|e| e.name.len()).max().unwrap_or(0).clamp(10, 60)
}

fn stats_row(out: &mut String, e: &EndpointSummary, w: usize) {
    let fails = if e.requests > 0 {
        format!("{}({:.2}%)", e.failures, 100.0 * e.failures as f64 / e.requests as f64)
    } else {
        "0(0.00%)".into()
    };
    let l = &e.latency_ms;
    let _ = writeln!(
        out,
        "{:<7} {:<w$} {:>9} {:>16} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9.1}",
        e.method,
        e.name,
        e.requests,
        fails,
        ms(l.p50),
        ms(l.avg),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        e.rps,
    );
}

/// Tokens/s, or "-" when no stream spread its tokens over time (all in one read).
pub fn tokens_per_s(v: f64) -> String {
    if v > 0.0 {
        format!("{v:.1}")
    } else {
        "-".into()
    }
}

/// The whole end-of-run text.
pub fn render(s: &Summary) -> String {
    let w = name_width(s);
    let mut out = String::new();
    let header = format!(
        "{:<7} {:<w$} {:>9} {:>16} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9}",
        "Type", "Name", "# reqs", "# fails", "Median", "Average", "p90", "p99", "Max", "req/s"
    );
    let rule = "-".repeat(header.len());
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{:<7} {:<w$} {:>9} {:>16} | {:>44} |", "", "", "", "", "(ms)");
    let _ = writeln!(out, "{rule}");
    for e in &s.endpoints {
        stats_row(&mut out, e, w);
    }
    let _ = writeln!(out, "{rule}");
    stats_row(&mut out, &s.aggregated, w);

    let streams: Vec<_> = s.endpoints.iter().filter_map(|e| e.stream.as_ref().map(|st| (e, st))).collect();
    if !streams.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<7} {:<w$} {:>9} {:>10} {:>10} {:>12} {:>14}",
            "Stream", "Name", "# streams", "TTFT p50", "TTFT p99", "tokens/s", "output tokens"
        );
        for (e, st) in streams {
            let _ = writeln!(
                out,
                "{:<7} {:<w$} {:>9} {:>10} {:>10} {:>12} {:>14}",
                e.method,
                e.name,
                st.streams,
                ms(st.ttft_ms.p50),
                ms(st.ttft_ms.p99),
                tokens_per_s(st.tokens_per_s),
                st.output_tokens
            );
        }
    }

    if !s.failures.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Failures");
        let _ = writeln!(out, "{:>12}  {:>6}  {:<7} {:<w$}  Message", "# occurred", "Status", "Type", "Name");
        for f in &s.failures {
            let status = if f.status == 0 { "-".to_string() } else { f.status.to_string() };
            let _ = writeln!(out, "{:>12}  {:>6}  {:<7} {:<w$}  {}", f.count, status, f.method, f.name, f.message);
        }
    }
    if s.failures.iter().any(|f| f.status == 0 && f.message == "client overloaded") {
        let _ = writeln!(
            out,
            "\n\"client overloaded\": more requests were due at once than --max-in-flight allows; \
             the server cannot keep up with --rate (or raise --max-in-flight / --connections)."
        );
    }
    if s.unfinished > 0 {
        let _ =
            writeln!(out, "\n{} request(s) were still in flight when the run ended and are not counted.", s.unfinished);
    }
    out
}

/// The live line: elapsed, users (or in-flight), requests/s and latency of the last second,
/// failures so far.
pub fn progress(elapsed: f64, open_loop: bool, users: u64, p: Option<&Point>, failures: u64) -> String {
    let who = if open_loop { "in-flight" } else { "users" };
    match p {
        Some(p) => format!(
            "{:>6.0}s  {who} {users}  req/s {:.0}  failures {failures}  p50 {} ms  p99 {} ms",
            elapsed,
            p.rps,
            ms(p.p50_ms),
            ms(p.p99_ms)
        ),
        None => format!("{elapsed:>6.0}s  {who} {users}  starting…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests_support::summary;

    #[test]
    fn table_has_rows_and_failures() {
        let text = render(&summary());
        assert!(text.contains("Type"));
        assert!(text.contains("/chat/completions"));
        assert!(text.contains("Aggregated"));
        assert!(text.contains("Failures"));
        assert!(text.contains("server exploded"));
        assert!(text.contains("connection refused"));
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].contains("Median") && lines[0].contains("req/s"));
    }

    #[test]
    fn formats_ms() {
        assert_eq!(ms(0.0), "0");
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1234.5), "1234");
    }
}
