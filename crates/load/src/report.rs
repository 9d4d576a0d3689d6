//! The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched from
//! the network) with the summary tables, charts over time of requests/s, failures/s and latency
//! percentiles, and a latency histogram. It opens offline, from a CI artifact, in any browser.
//! Its header says when the run started (UTC) and the command line that made it, so a report
//! found later can be rerun and compared; secrets on that line (`--api-key`, header values) are
//! masked.

use std::fmt::Write;

use crate::summary::{Bin, EndpointSummary, Summary};
use crate::table::ms;

const W: f64 = 900.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" upper bound and step for an axis from 0 to `max`.
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').to_string()
    }
}

/// A line chart of several series over seconds.
fn line_chart(title: &str, unit: &str, xs: &[f64], series: &[(&str, &str, Vec<f64>)]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{t}"><text x="{LEFT}" y="18" class="title">{t}</text>"#,
        t = esc(title)
    );
    let x_max = xs.last().copied().unwrap_or(1.0).max(1.0);
    let y_top = series.iter().flat_map(|s| s.2.iter().copied()).fold(0.0f64, f64::max);
    let (y_max, y_step) = nice_axis(y_top);
    let (x_axis_max, x_step) = nice_axis(x_max);
    let px = |x: f64| LEFT + x / x_axis_max * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    // Grid and axes.
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{py}" y2="{py}" class="grid"/><text x="{tx}" y="{ty}" class="tick" text-anchor="end">{label}</text>"#,
            x2 = W - RIGHT,
            py = py(y),
            tx = LEFT - 6.0,
            ty = py(y) + 4.0,
            label = fmt_tick(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_axis_max + x_step / 2.0 {
        let _ = write!(
            svg,
            r#"<text x="{px}" y="{ty}" class="tick" text-anchor="middle">{label}s</text>"#,
            px = px(x),
            ty = H - BOTTOM + 16.0,
            label = fmt_tick(x)
        );
        x += x_step;
    }
    let _ = write!(
        svg,
        r#"<text x="{x}" y="{y}" class="tick" text-anchor="end">{unit}</text>"#,
        x = W - RIGHT,
        y = H - 6.0,
        unit = esc(unit)
    );
    // Series and legend.
    let mut legend_x = LEFT + 8.0 + 7.5 * title.len() as f64 + 24.0;
    for (name, color, ys) in series {
        if xs.len() == 1 {
            let _ = write!(svg, r#"<circle cx="{}" cy="{}" r="3" fill="{color}"/>"#, px(xs[0]), py(ys[0]));
        } else {
            let points: Vec<String> = xs.iter().zip(ys).map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
                points.join(" ")
            );
        }
        let _ = write!(
            svg,
            r#"<rect x="{legend_x}" y="9" width="12" height="12" fill="{color}"/><text x="{tx}" y="19" class="tick">{name}</text>"#,
            tx = legend_x + 16.0,
            name = esc(name)
        );
        legend_x += 30.0 + 7.0 * name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The latency histogram: one bar per log-spaced bin.
fn histogram_chart(bins: &[Bin]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="Latency histogram"><text x="{LEFT}" y="18" class="title">Latency histogram (requests per bin, log-spaced bins)</text>"#
    );
    if bins.is_empty() {
        svg.push_str(r#"<text x="450" y="130" class="tick" text-anchor="middle">no requests</text></svg>"#);
        return svg;
    }
    let top = bins.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    let (y_max, y_step) = nice_axis(top);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{py}" y2="{py}" class="grid"/><text x="{tx}" y="{ty}" class="tick" text-anchor="end">{label}</text>"#,
            x2 = W - RIGHT,
            py = py(y),
            tx = LEFT - 6.0,
            ty = py(y) + 4.0,
            label = fmt_tick(y)
        );
        y += y_step;
    }
    let bw = (W - LEFT - RIGHT) / bins.len() as f64;
    let label_every = (bins.len() / 8).max(1);
    for (i, b) in bins.iter().enumerate() {
        let x = LEFT + i as f64 * bw;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#4e79a7"><title>{from}–{to} ms: {n}</title></rect>"##,
            y = py(b.count as f64),
            w = (bw - 1.0).max(0.5),
            h = H - BOTTOM - py(b.count as f64),
            from = ms(b.from_ms),
            to = ms(b.to_ms),
            n = b.count
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{ty}" class="tick">{label}</text>"#,
                ty = H - BOTTOM + 16.0,
                label = ms(b.from_ms)
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{x}" y="{y}" class="tick" text-anchor="end">ms</text></svg>"#,
        x = W - RIGHT,
        y = H - 6.0
    );
    svg
}

fn stats_rows(out: &mut String, e: &EndpointSummary, class: &str) {
    let l = &e.latency_ms;
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
        esc(&e.method),
        esc(&e.name),
        e.requests,
        e.failures,
        ms(l.p50),
        ms(l.avg),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        e.rps
    );
}

/// The command line that started this run, as a shell would take it back, with secrets masked:
/// the API key and every `--header` value (they carry credentials as often as not).
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut mask_next: Option<&str> = None;
    for arg in args {
        let shown = match mask_next.take() {
            Some("--api-key") => "***".to_string(),
            Some(_) => masked_header(&arg),
            None => match arg.split_once('=') {
                Some(("--api-key", _)) => "--api-key=***".to_string(),
                Some(("--header", value)) => format!("--header={}", masked_header(value)),
                _ => {
                    if arg == "--api-key" {
                        mask_next = Some("--api-key");
                    } else if arg == "--header" {
                        mask_next = Some("--header");
                    }
                    arg
                }
            },
        };
        out.push(shell_quote(&shown));
    }
    out.join(" ")
}

/// `NAME: VALUE` with the value hidden.
fn masked_header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{name}: ***"),
        None => "***".to_string(),
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar, days counted as
/// in Howard Hinnant's `civil_from_days`).
pub fn utc_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The whole report; `command` is the run's command line ([`command_line`]).
pub fn render(s: &Summary, command: &str) -> String {
    let mut h = String::new();
    let shape = match (s.users, s.rate) {
        (Some(u), _) => format!("{u} users"),
        (_, Some(r)) => format!("open loop at {r} requests/s"),
        _ => String::new(),
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>sluice load report</title><style>
body{{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:960px;color:#222}}
h1{{font-size:20px}}h2{{font-size:16px;margin-top:28px}}
table{{border-collapse:collapse;width:100%;margin:8px 0}}td,th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}}
td:nth-child(-n+2),th:nth-child(-n+2){{text-align:left}}tr.agg td{{font-weight:600}}
.fail td:last-child{{text-align:left}}.muted{{color:#666}}
svg{{display:block;margin:12px 0;background:#fafafa}}svg .title{{font-size:13px;font-weight:600}}svg .tick{{font-size:11px;fill:#555}}svg .grid{{stroke:#e3e3e3}}
</style></head><body><h1>sluice load report</h1>
<p class="muted">{host} · {shape} · {threads} thread(s) · {dur:.1} s{stream}</p>
<p class="muted">Started {started} · <code>{command}</code></p>"#,
        host = esc(&s.host),
        started = utc_time(s.started_unix),
        command = esc(command),
        threads = s.threads,
        dur = s.duration_s,
        stream = if s.stream { " · streaming" } else { "" }
    );

    h.push_str("<h2>Requests</h2><table><tr><th>Type</th><th>Name</th><th># reqs</th><th># fails</th><th>Median (ms)</th><th>Average (ms)</th><th>p90 (ms)</th><th>p99 (ms)</th><th>Max (ms)</th><th>req/s</th></tr>");
    for e in &s.endpoints {
        stats_rows(&mut h, e, "");
    }
    stats_rows(&mut h, &s.aggregated, "agg");
    h.push_str("</table>");

    let streams: Vec<_> = s.endpoints.iter().filter_map(|e| e.stream.as_ref().map(|st| (e, st))).collect();
    if !streams.is_empty() {
        h.push_str("<h2>Streaming</h2><table><tr><th>Type</th><th>Name</th><th># streams</th><th>TTFT p50 (ms)</th><th>TTFT p99 (ms)</th><th>tokens/s</th><th>output tokens</th></tr>");
        for (e, st) in streams {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.method),
                esc(&e.name),
                st.streams,
                ms(st.ttft_ms.p50),
                ms(st.ttft_ms.p99),
                crate::table::tokens_per_s(st.tokens_per_s),
                st.output_tokens
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Over time</h2>");
    let xs: Vec<f64> = s.timeline.iter().map(|p| p.t as f64 + 1.0).collect();
    if xs.is_empty() {
        h.push_str("<p class=\"muted\">The run was too short for a timeline.</p>");
    } else {
        let col = |f: fn(&crate::summary::Point) -> f64| s.timeline.iter().map(f).collect::<Vec<_>>();
        h.push_str(&line_chart(
            "Requests per second",
            "req/s",
            &xs,
            &[("requests/s", "#4e79a7", col(|p| p.rps)), ("failures/s", "#e15759", col(|p| p.failures_per_s))],
        ));
        h.push_str(&line_chart(
            "Failures per second",
            "failures/s",
            &xs,
            &[("failures/s", "#e15759", col(|p| p.failures_per_s))],
        ));
        h.push_str(&line_chart(
            "Latency per second",
            "ms",
            &xs,
            &[
                ("p50", "#59a14f", col(|p| p.p50_ms)),
                ("p90", "#f28e2b", col(|p| p.p90_ms)),
                ("p99", "#e15759", col(|p| p.p99_ms)),
            ],
        ));
        let who = if s.rate.is_some() { "requests in flight" } else { "users" };
        h.push_str(&line_chart(
            if s.rate.is_some() { "Requests in flight" } else { "Users" },
            who,
            &xs,
            &[(who, "#76b7b2", col(|p| p.users as f64))],
        ));
    }
    h.push_str(&histogram_chart(&s.histogram));

    let l = &s.aggregated.latency_ms;
    let _ = write!(
        h,
        "<h2>Latency percentiles (all requests, ms)</h2><table><tr><th>min</th><th>p50</th><th>p66</th><th>p75</th><th>p80</th><th>p90</th><th>p95</th><th>p98</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr><tr>{}</tr></table>",
        [l.min, l.p50, l.p66, l.p75, l.p80, l.p90, l.p95, l.p98, l.p99, l.p999, l.p9999, l.max]
            .iter()
            .map(|v| format!("<td>{}</td>", ms(*v)))
            .collect::<String>()
    );

    h.push_str("<h2>Failures</h2>");
    if s.failures.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<table class=\"fail\"><tr><th>Type</th><th>Name</th><th># occurred</th><th>Status</th><th>Message</th></tr>");
        for f in &s.failures {
            let status = if f.status == 0 { "no response".to_string() } else { f.status.to_string() };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.method),
                esc(&f.name),
                f.count,
                status,
                esc(&f.message)
            );
        }
        h.push_str("</table>");
    }
    if s.unfinished > 0 {
        let _ = write!(
            h,
            "<p class=\"muted\">{} request(s) were still in flight when the run ended and are not counted.</p>",
            s.unfinished
        );
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests_support::summary;

    #[test]
    fn report_is_self_contained() {
        let mut s = summary();
        s.failures[0].message = "<script src=\"https://evil.example/x.js\"></script>".into();
        let html = render(&s, "sluice load --host http://127.0.0.1:4000");
        assert!(html.starts_with("<!DOCTYPE html>"));
        let lower = html.to_ascii_lowercase();
        for bad in ["src=\"http", "src='http", "href=\"http", "href='http", "<link", "@import", "url(http", "<script"] {
            assert!(!lower.contains(bad), "report contains {bad}");
        }
        // The host is shown as text only (in the header and the command line); no other URL.
        assert_eq!(lower.matches("http://").count(), 2);
        assert_eq!(lower.matches("https://").count(), 1); // the escaped failure message, as text
        assert!(html.contains("&lt;script"));
        // Charts are there: over time and the histogram.
        assert!(html.matches("<svg").count() >= 5);
        assert!(html.contains("Requests per second"));
        assert!(html.contains("Latency per second"));
        assert!(html.contains("Latency histogram"));
        assert!(html.contains("polyline"));
        assert!(html.contains("/chat/completions"));
        assert!(html.contains("connection refused"));
    }

    #[test]
    fn report_carries_the_date_and_the_command_line() {
        let mut s = summary();
        s.started_unix = 1_764_979_200 + 3_723; // 2025-12-06 01:02:03 UTC
        let html = render(&s, "sluice load -u 5 --report 'my report.html'");
        assert!(html.contains("Started 2025-12-06 01:02:03 UTC"), "{html}");
        assert!(html.contains("<code>sluice load -u 5 --report &#39;my report.html&#39;</code>"), "{html}");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn command_lines_hide_keys_and_header_values() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let line = command_line(args(&[
            "sluice",
            "load",
            "--api-key",
            "sk-secret",
            "--header",
            "Authorization: Bearer sk-other",
            "--api-key=sk-third",
            "--header=x-api-key:sk-fourth",
            "-u",
            "10",
        ]));
        assert_eq!(
            line,
            "sluice load --api-key '***' --header 'Authorization: ***' '--api-key=***' '--header=x-api-key: ***' -u 10"
        );
        assert!(!line.contains("sk-"), "{line}");
    }

    #[test]
    fn axes_are_nice() {
        assert_eq!(nice_axis(97.0), (100.0, 25.0));
        assert_eq!(nice_axis(31_000.0), (40_000.0, 10_000.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
    }
}
