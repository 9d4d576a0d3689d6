//! The exposition text: Prometheus text format 0.0.4, as LiteLLM serves it.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

/// Encodes `registry` the way Python's `prometheus_client` would.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a `String` cannot fail and our label sets never fail to encode; should that
    // change, a partial scrape beats a panic in the metrics endpoint.
    let _ = prometheus_text::encode(&mut out, registry);
    pythonise(&out)
}

/// Rewrites what prometheus-client prints differently from Python's `prometheus_client`. Runs
/// only at scrape time.
///
/// Whole-number bucket bounds: prometheus-client formats `le` like Go (`le="1"`, `le="300"`);
/// Python, hence LiteLLM, writes `le="1.0"`, `le="300.0"`. Prometheus 3 normalises both on
/// ingestion, but Prometheus 2 stores them as different series, so a dashboard or recording rule
/// written against LiteLLM's `le="1.0"` would see nothing.
///
/// Infinite values: prometheus-client writes `inf` (Rust's float formatting), Python `+Inf`, the
/// spelling the exposition format documents; a remaining budget with no max budget is +Inf.
fn pythonise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.split_inclusive('\n') {
        if let Some(at) = whole_number_le_end(line) {
            out.push_str(&line[..at]);
            out.push_str(".0");
            out.push_str(&line[at..]);
        } else if let Some((head, python)) = infinite_value(line) {
            out.push_str(head);
            out.push_str(python);
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    out
}

/// For a sample whose value is infinite, the line up to the value and Python's spelling of it.
fn infinite_value(line: &str) -> Option<(&str, &'static str)> {
    if line.starts_with('#') {
        return None;
    }
    let body = line.strip_suffix('\n').unwrap_or(line);
    if let Some(head) = body.strip_suffix(" inf") {
        return Some((head, " +Inf"));
    }
    body.strip_suffix(" -inf").map(|head| (head, " -Inf"))
}

/// For a `*_bucket` sample whose `le` is a whole number, the byte offset just after the number.
fn whole_number_le_end(line: &str) -> Option<usize> {
    let brace = line.find('{')?;
    if line.starts_with('#') || !line[..brace].ends_with("_bucket") {
        return None;
    }
    // `le` is always the last label. Label values are escaped, so `le="` only appears with
    // a bare quote at the real label (or inside an earlier value, which `rfind` skips past).
    let start = line.rfind("le=\"")? + 4;
    if !matches!(line.as_bytes()[start - 5], b'{' | b',') {
        return None;
    }
    let len = line[start..].find('"')?;
    let value = &line[start..start + len];
    let whole = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    whole.then_some(start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_bounds_gain_a_decimal() {
        let text = "# TYPE h histogram\n\
                    h_bucket{a=\"1\",le=\"0.005\"} 1\n\
                    h_bucket{a=\"x,le=\",le=\"1\"} 2\n\
                    h_bucket{le=\"300\"} 3\n\
                    h_bucket{le=\"+Inf\"} 4\n\
                    h_sum{a=\"1\"} 5\n\
                    c_total{le=\"1\"} 6\n";
        let want = "# TYPE h histogram\n\
                    h_bucket{a=\"1\",le=\"0.005\"} 1\n\
                    h_bucket{a=\"x,le=\",le=\"1.0\"} 2\n\
                    h_bucket{le=\"300.0\"} 3\n\
                    h_bucket{le=\"+Inf\"} 4\n\
                    h_sum{a=\"1\"} 5\n\
                    c_total{le=\"1\"} 6\n";
        assert_eq!(pythonise(text), want);
    }

    #[test]
    fn infinite_values_are_spelled_like_python() {
        let text = "# HELP g inf\ng{a=\"x inf\"} inf\ng 1.5\ng{} -inf\n";
        assert_eq!(pythonise(text), "# HELP g inf\ng{a=\"x inf\"} +Inf\ng 1.5\ng{} -Inf\n");
    }
}
