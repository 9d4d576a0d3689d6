//! The gateway's logs: tracing to stderr, as text or (with `--json_logs`,
//! `litellm_settings.json_logs: true` or `JSON_LOGS=True`, as LiteLLM takes them) as one JSON
//! object per line — every line: the ones written before the process can serve (a config it
//! refuses, a port it cannot take), its one line on stdout, and a panic's message too.
//!
//! Lines reach stderr from a thread of their own ([`Queue`]): a worker thread serving requests
//! formats its line and hands it over, and never waits on stderr (a slow log collector, a pipe
//! nobody reads), nor on a lock other threads hold while writing. When the queue is full, lines
//! are dropped and counted, and the count is written once the writer catches up.

use sluice_server::config::Env;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Lines waiting for the writer thread, at most: a burst's worth, a few MB at worst.
const QUEUE_LINES: usize = 16 * 1024;
/// What a line's buffer starts with.
const LINE_CAPACITY: usize = 512;
/// How long the writer waits after a write before taking the next lines.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

pub struct Settings {
    pub json: bool,
    pub debug: bool,
    pub detailed_debug: bool,
}

/// LiteLLM's `JSON_LOGS` switch.
pub fn json_from_env(env: &Env) -> bool {
    env.get("JSON_LOGS").is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// What a line is sent as: its bytes, or a request to flush what came before it.
enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// The sending side of the writer thread's queue: what the subscriber writes each line to.
#[derive(Clone)]
struct Queue {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

/// One line being formatted; sent when the subscriber is done with it.
struct LineWriter<'a> {
    buf: Vec<u8>,
    queue: &'a Queue,
}

impl std::io::Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buf);
        if let Err(TrySendError::Full(_)) = self.queue.tx.try_send(Msg::Line(line)) {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Queue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        // Room for a usual line (an access line is ~300 bytes): one allocation per line.
        LineWriter { buf: Vec::with_capacity(LINE_CAPACITY), queue: self }
    }
}

/// Writes what comes through the queue to `out` (stderr), as much as is waiting in one write,
/// then pauses for `pause` unless a flush wakes it ([`Guard::flush`]).
fn write_lines(rx: Receiver<Msg>, dropped: Arc<AtomicU64>, json: bool, mut out: impl Write, pause: Duration) {
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Msg::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let text = format!("{lost} log lines dropped: stderr could not keep up");
            let _ = if json {
                writeln!(out, "{}", serde_json::json!({"level": "WARN", "message": text, "target": "sluice::logs"}))
            } else {
                writeln!(out, "WARN sluice::logs: {text}")
            };
        }
        let _ = out.flush();
        // Lines that come meanwhile wait in the queue without waking this thread: under load,
        // one wake-up and one write per pause instead of one per line. A flush does wake it: the
        // "listening" line waits for the start's lines, and the start must not wait out a pause.
        std::thread::park_timeout(pause);
    }
}

/// Held while the process runs: dropping it waits (briefly) until the lines logged so far are
/// written, so a refused start's message is not lost at exit.
pub struct Guard {
    queue: Queue,
    /// The writer thread, to wake from its pause; `None` when lines go straight to stderr.
    writer: Option<std::thread::Thread>,
}

impl Guard {
    /// Waits (at most 2 s) until the lines logged so far are written, waking the writer rather
    /// than waiting out its pause.
    fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.queue.tx.send(Msg::Flush(done)).is_ok() {
            if let Some(writer) = &self.writer {
                writer.unpark();
            }
            let _ = wait.recv_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// `LITELLM_LOG`'s level, named as Python's logging names them (`DEBUG`, `INFO`, `WARNING`,
/// `ERROR`, `CRITICAL`), as a tracing filter; anything else is passed on as a filter of its own.
fn litellm_level(level: &str) -> String {
    match level.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".into(),
        "critical" | "fatal" => "error".into(),
        other => other.into(),
    }
}

pub fn init(settings: &Settings) -> Guard {
    let default = if settings.detailed_debug {
        "debug"
    } else if settings.debug {
        "info,sluice=debug"
    } else {
        "info"
    };
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LITELLM_LOG").map(|l| litellm_level(&l)))
        .unwrap_or_else(|_| default.to_string());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = !settings.json
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
    let queue = Queue { tx, dropped: Arc::new(AtomicU64::new(0)) };
    let (dropped, json) = (queue.dropped.clone(), settings.json);
    let spawned = std::thread::Builder::new().name("sluice-log".into()).spawn(move || {
        let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
        write_lines(rx, dropped, json, stderr, BATCH_PAUSE)
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    let writer = spawned.as_ref().ok().map(|handle| handle.thread().clone());
    match (spawned.is_ok(), settings.json) {
        (true, true) => builder.json().flatten_event(true).with_writer(queue.clone()).init(),
        (true, false) => builder
            .event_format(crate::access_line::AccessFirst::new(tracing_subscriber::fmt::format::Format::default()))
            .with_writer(queue.clone())
            .init(),
        // No thread for the writer: straight to stderr, as before.
        (false, true) => builder.json().flatten_event(true).with_writer(std::io::stderr).init(),
        (false, false) => builder
            .event_format(crate::access_line::AccessFirst::new(tracing_subscriber::fmt::format::Format::default()))
            .with_writer(std::io::stderr)
            .init(),
    }
    // A panic goes through the log (JSON when the lines are), with its location; it ends only
    // the request that hit it (`sluice_server::contained`), so the writer gets to it as to any line.
    sluice_server::log_panics();
    Guard { queue, writer }
}

/// A message that ends the process: as before on stderr (after the lines logged before it), or
/// as an error line in JSON.
pub fn fatal(logs: &Guard, json: bool, message: &str) {
    if json {
        tracing::error!("{message}");
    } else {
        logs.flush();
        eprintln!("{message}");
    }
}

/// The one line on stdout that scripts wait for (`sluice listening on http://ADDR`): as text,
/// or in JSON mode as an object whose `message` holds the same text. What the start logged is on
/// stderr before it.
pub fn announce(logs: &Guard, json: bool, message: &str) {
    logs.flush();
    if json {
        println!("{}", serde_json::json!({ "level": "INFO", "message": message }));
    } else {
        println!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tracing_subscriber::fmt::MakeWriter as _;

    #[test]
    fn litellm_log_levels_are_python_logging_names() {
        for (given, filter) in
            [("DEBUG", "debug"), ("INFO", "info"), ("WARNING", "warn"), ("ERROR", "error"), ("CRITICAL", "error")]
        {
            assert_eq!(litellm_level(given), filter);
            assert!(tracing_subscriber::EnvFilter::try_new(litellm_level(given)).is_ok(), "{given}");
        }
        assert_eq!(litellm_level("sluice=debug"), "sluice=debug");
    }

    fn line(queue: &Queue, text: &str) {
        let mut w = queue.make_writer();
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_full_queue_drops_lines_and_counts_them_instead_of_waiting() {
        let (tx, rx) = mpsc::sync_channel(2);
        let queue = Queue { tx, dropped: Arc::new(AtomicU64::new(0)) };
        for text in ["one\n", "two\n", "three\n", "four\n"] {
            line(&queue, text);
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 2);
        let kept: Vec<Vec<u8>> = rx
            .try_iter()
            .map(|m| match m {
                Msg::Line(l) => l,
                Msg::Flush(_) => panic!("no flush was asked for"),
            })
            .collect();
        assert_eq!(kept, [b"one\n".to_vec(), b"two\n".to_vec()], "each line whole, in order");
    }

    #[test]
    fn the_guard_waits_for_the_lines_before_it() {
        let (tx, rx) = mpsc::sync_channel(16);
        let queue = Queue { tx, dropped: Arc::new(AtomicU64::new(0)) };
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                while let Ok(msg) = rx.recv() {
                    match msg {
                        Msg::Line(l) => {
                            std::thread::sleep(Duration::from_millis(20));
                            seen.lock().unwrap().push(l);
                        }
                        Msg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
        };
        line(&queue, "a\n");
        line(&queue, "b\n");
        drop(Guard { queue: queue.clone(), writer: None });
        assert_eq!(seen.lock().unwrap().len(), 2, "both lines written before the guard let go");
        drop(queue);
        writer.join().unwrap();
    }

    /// What the writer thread wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Written(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Written {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The "listening" line flushes the start's lines first: with the writer in its pause, the
    /// flush wakes it instead of waiting the pause out (the start waited up to 10 ms for it).
    #[test]
    fn a_flush_wakes_the_writer_from_its_pause() {
        let (tx, rx) = mpsc::sync_channel(16);
        let queue = Queue { tx, dropped: Arc::new(AtomicU64::new(0)) };
        let out = Written::default();
        let handle = {
            let (dropped, out) = (queue.dropped.clone(), out.clone());
            std::thread::spawn(move || write_lines(rx, dropped, false, out, Duration::from_secs(60)))
        };
        line(&queue, "first\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.text() != "first\n" {
            assert!(Instant::now() < deadline, "the writer never wrote the first line");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The writer is now in (or entering) its minute-long pause.
        line(&queue, "second\n");
        let guard = Guard { queue: queue.clone(), writer: Some(handle.thread().clone()) };
        let started = Instant::now();
        guard.flush();
        let took = started.elapsed();
        assert_eq!(out.text(), "first\nsecond\n", "the flush returned before the line before it was written");
        assert!(took < Duration::from_secs(1), "the flush took {took:?}: it waited for the writer's pause");
        drop(guard);
        drop(queue);
        handle.thread().unpark();
        handle.join().unwrap();
    }
}
