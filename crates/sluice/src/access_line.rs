//! The access log's lines (`sluice::access`, one per request) written straight, byte for byte as
//! tracing's text format writes them. That format's generic path (its field visitor, `Debug` for
//! every string, the clock formatted field by field) was about a seventh of a proxied request's
//! instructions; here the date is formatted once a second and plain strings are copied. A line
//! inside a span, a coloured one (a terminal), any other target, and JSON logs go through
//! tracing's own format.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// The access log's target (`sluice_server::access_log`).
const TARGET: &str = "sluice::access";

/// Formats access lines itself and hands every other event to `inner`.
pub struct AccessFirst<F> {
    inner: F,
}

impl<F> AccessFirst<F> {
    pub fn new(inner: F) -> Self {
        AccessFirst { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessFirst<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != TARGET || writer.has_ansi_escapes() || ctx.lookup_current().is_some() {
            return self.inner.format_event(ctx, writer, event);
        }
        write_now(&mut writer)?;
        write!(writer, " {:>5} {TARGET}: ", meta.level())?;
        let mut fields = Fields { writer: &mut writer, first: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes fields as tracing's default visitor does: the message as it reads, every other field
/// as `name=value` in `Debug`, separated by spaces.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn separate(&mut self) -> fmt::Result {
        if std::mem::take(&mut self.first) {
            return Ok(());
        }
        self.writer.write_char(' ')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| {
            if field.name() != "message" {
                self.writer.write_str(field.name())?;
                self.writer.write_char('=')?;
            }
            value(self.writer)
        });
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.put(field, |w| w.write_str(value));
        }
        self.put(field, |w| write_debug_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| write!(w, "{value:?}"));
    }
}

/// `value` as `<str as Debug>` writes it: quoted, and copied as it is when nothing in it needs
/// escaping (printable ASCII but the quote and the backslash), which is nearly always.
fn write_debug_str(w: &mut Writer<'_>, value: &str) -> fmt::Result {
    if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
        w.write_char('"')?;
        w.write_str(value)?;
        return w.write_char('"');
    }
    write!(w, "{value:?}")
}

thread_local! {
    /// The second last written and its text up to the fraction (`2026-12-07T09:47:46.`).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Now, as tracing's `SystemTime` timer writes it: RFC 3339 in UTC with microseconds.
fn write_now(w: &mut Writer<'_>) -> fmt::Result {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    write_time(w, since.as_secs(), since.subsec_micros())
}

fn write_time(w: &mut Writer<'_>, secs: u64, micros: u32) -> fmt::Result {
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs {
            text.clear();
            let (year, month, day) = civil(secs / 86_400);
            let of_day = secs % 86_400;
            let _ = write!(
                text,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60
            );
            *second = secs;
        }
        w.write_str(text)?;
        let mut digits = [b'0'; 6];
        let mut rest = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        // Six ASCII digits.
        w.write_str(std::str::from_utf8(&digits).unwrap_or("000000"))?;
        w.write_char('Z')
    })
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Lines written by a subscriber, collected.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An access line as `sluice_server::access_log::write` emits it: its message a field.
    fn emit(method: &str, path: &str, status: u16, latency_ms: f64, model: &str, alias: &str, call_id: &str) {
        tracing::info!(
            target: "sluice::access",
            message = format!("\"{method} {path}\" {status}").as_str(),
            method = method,
            path = path,
            status = status,
            latency_ms = latency_ms,
            model = model,
            key_alias = alias,
            call_id = call_id,
        );
    }

    /// The same line as it was emitted before, its message a format string: what the field
    /// must print as.
    fn emit_formatted(method: &str, path: &str, status: u16, latency_ms: f64, model: &str, alias: &str, call_id: &str) {
        tracing::info!(
            target: "sluice::access",
            method = method,
            path = path,
            status = status,
            latency_ms = latency_ms,
            model = model,
            key_alias = alias,
            call_id = call_id,
            "\"{} {}\" {}",
            method,
            path,
            status,
        );
    }

    fn both(events: impl Fn()) -> (String, String) {
        let mine = Lines::default();
        let theirs = Lines::default();
        let with_mine = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(AccessFirst::new(tracing_subscriber::fmt::format::Format::default()))
            .with_writer({
                let l = mine.clone();
                move || l.clone()
            })
            .finish();
        let with_theirs = tracing_subscriber::fmt().with_ansi(false).with_writer({
            let l = theirs.clone();
            move || l.clone()
        });
        tracing::subscriber::with_default(with_mine, &events);
        tracing::subscriber::with_default(with_theirs.finish(), &events);
        let text = |l: Lines| String::from_utf8(l.0.lock().unwrap().clone()).unwrap();
        (text(mine), text(theirs))
    }

    /// The lines without their timestamps (the two subscribers wrote them at different moments).
    fn untimed(text: &str) -> Vec<&str> {
        text.lines().map(|l| &l[27..]).collect()
    }

    #[test]
    fn access_lines_read_as_tracing_writes_them() {
        let (mine, theirs) = both(|| {
            emit("POST", "/chat/completions", 200, 0.788, "fake-openai-endpoint", "-", "01a24fe6-f99d-73d0");
            emit("GET", "/health/liveliness", 404, 12.0, "-", "-", "-");
            emit("POST", "/v1/chat/completions", 429, 1000.5, "m\"odel\\x", "team\nalias", "é ü \u{7f}\t");
            emit("POST", "/", 500, 0.0, "", "\u{301}accent", "id");
            tracing::info!(target: "sluice::other", answer = "x", "not an access line");
            let span = tracing::info_span!("around", n = 1);
            let _in = span.enter();
            emit("GET", "/in/a/span", 200, 1.5, "m", "a", "c");
        });
        assert_eq!(untimed(&mine), untimed(&theirs), "mine:\n{mine}\ntheirs:\n{theirs}");
        assert_eq!(mine.lines().count(), 6);
        // A message given as a field reads as one given as a format string.
        let (as_field, _) = both(|| emit("POST", "/v1/x", 200, 0.5, "m\"", "a", "c"));
        let (_, formatted) = both(|| emit_formatted("POST", "/v1/x", 200, 0.5, "m\"", "a", "c"));
        assert_eq!(untimed(&as_field), untimed(&formatted));
        for line in mine.lines() {
            let stamp = &line[..27];
            assert!(stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T' && stamp.as_bytes()[19] == b'.', "{line}");
        }
    }

    #[test]
    fn timestamps_are_rfc_3339_with_microseconds() {
        let text = |secs: u64, micros: u32| {
            let mut s = String::new();
            write_time(&mut Writer::new(&mut s), secs, micros).unwrap();
            s
        };
        assert_eq!(text(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(text(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(text(1_796_636_866, 974_762), "2026-12-07T09:47:46.974762Z");
        assert_eq!(text(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        // The cached second is not reused for another.
        assert_eq!(text(1_796_636_867, 1), "2026-12-07T09:47:47.000001Z");
    }

    #[test]
    fn every_day_follows_the_one_before() {
        let leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let length = |y: u64, m: u64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut expected = (1970, 1, 1);
        for days in 0..(400 * 366) {
            assert_eq!(civil(days), expected, "day {days}");
            let (y, m, d) = expected;
            expected = match (d == length(y, m), m == 12) {
                (false, _) => (y, m, d + 1),
                (true, false) => (y, m + 1, 1),
                (true, true) => (y + 1, 1, 1),
            };
        }
    }
}
