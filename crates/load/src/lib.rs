//! `sluice load`: a load generator for OpenAI-compatible gateways, meant to replace locust for
//! load-testing sluice and LiteLLM. It runs closed-loop users like locust (`--users`,
//! `--spawn-rate`, `--wait`) or an open-loop fixed rate without coordinated omission (`--rate`),
//! sends the seed locustfile's payload by default, measures streaming (TTFT, tokens/s), shows one
//! live line, prints locust-style tables, and writes a self-contained HTML report, locust CSV
//! files and JSON.
//!
//! ```text
//! # the seed's locust run (1000 users, ramp 1000/s), for 60 s, with a report
//! sluice load --host http://127.0.0.1:4000 -u 1000 -r 1000 --wait 0.5..1 -t 60s --report report.html
//! # a fixed 1000 requests/s, latency from the intended send time
//! sluice load --host http://127.0.0.1:4000 --rate 1000 -t 2m --json out.json
//! # LiteLLM's CI mix, streamed
//! sluice load --endpoint 20:POST:chat/completions --endpoint 40:GET:health/readiness \
//!             --endpoint 40:GET:health/liveliness --stream -u 50 -t 30s
//! ```
//!
//! It is built to stay out of the way of the numbers it measures: a lean HTTP/1.1 client on
//! hand-managed keep-alive connections (one `write` a request, answer heads parsed in place),
//! bodies rendered once and only their UUIDs rewritten, per-worker HDR histograms merged at the
//! end, and no locks on the hot path.

pub mod args;
pub mod client;
pub mod export;
pub mod plan;
pub mod rate;
pub mod report;
pub mod sse;
pub mod stats;
pub mod summary;
pub mod table;
pub mod template;
pub mod timer;
pub mod users;
pub mod worker;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{mpsc, watch};

pub use args::LoadArgs;
use plan::{Mode, Plan};
use stats::WorkerStats;
use summary::{Summary, Timeline};
use worker::{Control, Msg};

/// Runs the load, prints progress and the final table; returns the process exit code (0 ok; 1 if
/// any request failed and --fail-on-error was given; 2 bad arguments).
pub fn run(args: LoadArgs) -> i32 {
    let plan = match Plan::from_args(&args) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("sluice load: {e}");
            return 2;
        }
    };
    let summary = match execute(plan.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice load: {e}");
            return 2;
        }
    };
    print!("{}", table::render(&summary));
    let mut code = 0;
    if let Err(e) = write_outputs(&args, &summary) {
        eprintln!("sluice load: {e}");
        code = 2;
    }
    if summary.total_failures() > 0 && args.fail_on_error && code == 0 {
        code = 1;
    }
    let _ = std::io::stdout().flush();
    code
}

/// Writes --report, --csv and --json.
fn write_outputs(args: &LoadArgs, summary: &Summary) -> Result<(), String> {
    if let Some(path) = &args.report {
        std::fs::write(path, report::render(summary, &report::command_line(std::env::args())))
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?;
        println!("Report: {}", path.display());
    }
    if let Some(prefix) = &args.csv {
        let paths = export::write_csv(prefix, summary)
            .map_err(|e| format!("cannot write the CSV files {prefix}_*.csv: {e}"))?;
        let names: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        println!("CSV: {}", names.join(", "));
    }
    if let Some(path) = &args.json {
        export::write_json(path, summary)
            .map_err(|e| format!("cannot write the JSON summary to {}: {e}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    Ok(())
}

/// Runs the workers and gathers their results; used by [`run`] and by tests that want the
/// figures rather than the printout.
pub fn execute(plan: Arc<Plan>) -> Result<Summary, String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    // A short head start lets every worker thread be up before the first send is due.
    let start = std::time::Instant::now() + Duration::from_millis(20);
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ctl = Arc::new(Control {
        start,
        stop: stop_rx,
        issued: AtomicU64::new(0),
        users: AtomicU64::new(0),
        error_bytes: AtomicU64::new(0),
        tx,
    });
    let mut threads = Vec::with_capacity(plan.threads);
    for i in 0..plan.threads {
        match worker::spawn(i, plan.clone(), ctl.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop_tx.send_replace(true);
                return Err(format!("cannot start worker thread {i}: {e}"));
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the event loop: {e}"))?;
    let gathered = rt.block_on(coordinate(&plan, &ctl, rx, stop_tx));
    for t in threads {
        let _ = t.join();
    }
    let (stats, elapsed, unfinished, timeline) = gathered;
    if let Some(err) = error_file_note(&plan, &ctl) {
        eprintln!("{err}");
    }
    Ok(Summary::build(&plan, &stats, started_unix, elapsed, unfinished, timeline))
}

fn error_file_note(plan: &Plan, ctl: &Control) -> Option<String> {
    let written = ctl.error_bytes.load(Ordering::Relaxed);
    (written > plan::ERROR_FILE_CAP).then(|| {
        format!(
            "note: {} reached its {} MB cap; later failed bodies were not written",
            plan.error_file.display(),
            plan::ERROR_FILE_CAP / (1024 * 1024)
        )
    })
}

/// The coordinator: collects seconds for the live line and the timeline, writes failed bodies
/// to the error file, handles Ctrl-C, and gathers the workers' totals.
async fn coordinate(
    plan: &Plan,
    ctl: &Control,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    stop_tx: watch::Sender<bool>,
) -> (WorkerStats, f64, u64, Vec<summary::Point>) {
    let open_loop = matches!(plan.mode, Mode::Rate { .. });
    let users_now = || (!open_loop).then(|| ctl.users.load(Ordering::Relaxed));
    let mut timeline = Timeline::new(plan.threads);
    let mut totals = WorkerStats::new(plan.endpoints.len());
    let mut done = 0usize;
    let mut elapsed = 0f64;
    let mut unfinished = 0u64;
    let mut last_intervals = Vec::new();
    let mut errors = ErrorFile::new(plan.error_file.clone());

    let live = Live::new(plan.quiet);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(ctl.start) + Duration::from_millis(1050),
        Duration::from_secs(1),
    );
    let mut interrupted = false;
    let mut ctrl_c: CtrlC = Box::pin(tokio::signal::ctrl_c());

    while done < plan.threads {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Second { second, interval, in_flight }) => {
                    timeline.add(second, &interval, in_flight, users_now());
                }
                Some(Msg::ErrorBody(body)) => errors.append(&body),
                Some(Msg::Done(r)) => {
                    done += 1;
                    totals.merge(&r.stats);
                    elapsed = elapsed.max(r.elapsed);
                    unfinished += r.unfinished;
                    last_intervals.push((r.last_second, r.last_interval));
                }
                None => break,
            },
            _ = tick.tick() => {
                let secs = ctl.start.elapsed().as_secs_f64();
                let who = if open_loop {
                    timeline.latest().map(|p| p.users).unwrap_or(0)
                } else {
                    ctl.users.load(Ordering::Relaxed)
                };
                live.show(secs, &table::progress(
                    secs,
                    open_loop,
                    who,
                    timeline.latest(),
                    timeline.total_failures(),
                ));
            }
            r = &mut ctrl_c => {
                if r.is_err() {
                    // No signal handling here: never fire again.
                    ctrl_c = Box::pin(std::future::pending());
                } else if interrupted {
                    live.finish();
                    eprintln!("sluice load: interrupted twice; exiting without a summary");
                    std::process::exit(130);
                } else {
                    interrupted = true;
                    live.note("stopping (Ctrl-C); waiting up to 5 s for requests in flight; Ctrl-C again to quit now");
                    stop_tx.send_replace(true);
                    ctrl_c = Box::pin(tokio::signal::ctrl_c());
                }
            }
        }
    }
    live.finish();
    // Drain what the workers sent just before they finished.
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Second { second, interval, in_flight } => timeline.add(second, &interval, in_flight, users_now()),
            Msg::ErrorBody(body) => errors.append(&body),
            Msg::Done(_) => {}
        }
    }
    for (second, iv) in &last_intervals {
        timeline.add_last(*second, iv);
    }
    errors.close();
    (totals, elapsed, unfinished, timeline.finish(elapsed, users_now()))
}

type CtrlC = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>>>>;

/// The live progress line: redrawn in place on a terminal, a plain line every 5 s otherwise.
struct Live {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: std::cell::Cell<f64>,
}

impl Live {
    fn new(quiet: bool) -> Live {
        if quiet {
            return Live { bar: None, plain: false, last_plain: Default::default() };
        }
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
            Live { bar: Some(bar), plain: false, last_plain: Default::default() }
        } else {
            Live { bar: None, plain: true, last_plain: std::cell::Cell::new(0.0) }
        }
    }

    fn show(&self, secs: f64, line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(line.to_string());
        } else if self.plain && secs - self.last_plain.get() >= 4.99 {
            self.last_plain.set(secs);
            println!("{line}");
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The error file, opened (for appending, like the seed's locustfile) on the first failure.
struct ErrorFile {
    path: std::path::PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    failed: bool,
}

impl ErrorFile {
    fn new(path: std::path::PathBuf) -> ErrorFile {
        ErrorFile { path, file: None, failed: false }
    }

    fn append(&mut self, body: &[u8]) {
        if self.failed {
            return;
        }
        if self.file.is_none() {
            match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => self.file = Some(std::io::BufWriter::new(f)),
                Err(e) => {
                    eprintln!(
                        "sluice load: cannot open the error file {}: {e}; failed bodies will not be kept (choose another with --error-file)",
                        self.path.display()
                    );
                    self.failed = true;
                    return;
                }
            }
        }
        if let Some(f) = &mut self.file {
            if f.write_all(body).and_then(|_| f.write_all(b"\n")).is_err() {
                self.failed = true;
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.flush();
        }
    }
}
