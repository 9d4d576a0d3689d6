//! A worker: one OS thread with its own single-threaded tokio runtime, connections and
//! statistics. It runs its share of the users (or of the open-loop schedule), hands the
//! coordinator one interval per second, and its totals at the end. Within a worker everything is
//! `Rc`/`Cell`: nothing on the hot path takes a lock or touches another thread's cache lines,
//! except the one relaxed counter `--requests` needs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::LocalSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::client::{self, Conn, Outcome};
use crate::plan::{Endpoint, Mode, Plan, ERROR_FILE_CAP};
use crate::rate::Schedule;
use crate::stats::{Interval, WorkerStats};
use crate::template::fresh_uuid;
use crate::timer::Timer;

/// What workers tell the coordinator.
pub enum Msg {
    /// One second of one worker.
    Second { second: u64, interval: Interval, in_flight: usize },
    /// The body of a failed response, for the error file.
    ErrorBody(Bytes),
    /// The worker has finished.
    Done(Box<WorkerResult>),
}

/// A worker's totals.
pub struct WorkerResult {
    pub stats: WorkerStats,
    /// The last, partial second and its index.
    pub last_interval: Interval,
    pub last_second: u64,
    /// Seconds from the start to the moment the worker finished.
    pub elapsed: f64,
    /// Requests still in flight when the worker gave up waiting for them (not counted).
    pub unfinished: u64,
}

/// State shared by all workers and the coordinator.
pub struct Control {
    pub start: std::time::Instant,
    pub stop: watch::Receiver<bool>,
    /// Closed-loop requests started so far (for --requests).
    pub issued: AtomicU64,
    /// Users running now.
    pub users: AtomicU64,
    /// Bytes handed over for the error file so far.
    pub error_bytes: AtomicU64,
    pub tx: mpsc::UnboundedSender<Msg>,
}

/// One worker's state, shared by its tasks on one thread.
pub struct Ctx {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub ctl: Arc<Control>,
    pub stats: RefCell<WorkerStats>,
    pub in_flight: Cell<usize>,
    /// Open-loop sends spawned but not yet started.
    pub queued: Cell<usize>,
    /// Set when the run ends: users stop before their next request.
    pub stop: Cell<bool>,
    /// Idle connections of the open-loop mode.
    pub idle: RefCell<Vec<Conn>>,
    /// The request being written: one buffer for the whole worker, since the socket takes a
    /// request at once (a connection keeps only what it could not write).
    pub outgoing: RefCell<Outgoing>,
    /// The index of the second now being counted.
    pub second: Cell<u64>,
}

impl Ctx {
    pub fn new(index: usize, plan: Arc<Plan>, ctl: Arc<Control>) -> Ctx {
        let endpoints = plan.endpoints.len();
        Ctx {
            index,
            plan,
            ctl,
            stats: RefCell::new(WorkerStats::new(endpoints)),
            in_flight: Cell::new(0),
            queued: Cell::new(0),
            stop: Cell::new(false),
            idle: RefCell::new(Vec::new()),
            outgoing: RefCell::new(Outgoing::default()),
            second: Cell::new(0),
        }
    }

    /// Requests in flight or about to be.
    pub fn busy(&self) -> usize {
        self.in_flight.get() + self.queued.get()
    }

    /// A random endpoint, by weight.
    pub fn pick_endpoint(&self, rng: &mut rand::rngs::SmallRng) -> usize {
        use rand::Rng;
        if self.plan.endpoints.len() == 1 {
            return 0;
        }
        self.plan.pick(rng.gen_range(0..self.plan.total_weight()))
    }

    /// An idle connection of the open-loop pool, if there is one. One the server has closed
    /// meanwhile is found out by the exchange, which then sends on a new one.
    fn idle_connection(&self) -> Option<Conn> {
        self.idle.borrow_mut().pop()
    }

    /// Sends one request of endpoint `ep` on `conn` and records it. `started` is when the
    /// latency clock starts: now for users, the intended send time for the open loop.
    pub async fn one(&self, conn: &mut Option<Conn>, ep: usize, started: Instant) {
        let endpoint = &self.plan.endpoints[ep];
        self.in_flight.set(self.in_flight.get() + 1);
        let mut send = |c: &mut Conn| c.start(self.outgoing.borrow_mut().request(ep, endpoint));
        let head_request = endpoint.answer_has_no_body();
        let exchange =
            client::exchange(conn, self.plan.target.addr, head_request, &mut send, started, self.plan.stream);
        let outcome = match timeout(self.plan.timeout, exchange).await {
            Ok(o) => o,
            Err(_) => {
                // The connection is in an unknown state mid-exchange: drop it.
                *conn = None;
                Outcome::Error("timeout".into())
            }
        };
        self.in_flight.set(self.in_flight.get() - 1);
        let latency_us = started.elapsed().as_micros() as u64;
        self.record(ep, latency_us, outcome);
    }

    fn record(&self, ep: usize, latency_us: u64, outcome: Outcome) {
        let mut stats = self.stats.borrow_mut();
        match outcome {
            Outcome::Ok { bytes, stream } => {
                stats.success(ep, latency_us, bytes);
                if let Some(s) = stream {
                    stats.stream(ep, &s);
                }
            }
            Outcome::Http { status, bytes, body, broken } => {
                let message = match broken {
                    Some(b) => b,
                    None => client::failure_message(&body),
                };
                stats.failure(ep, Some(latency_us), bytes, status, message);
                drop(stats);
                self.error_body(body);
            }
            Outcome::Error(text) => stats.failure(ep, Some(latency_us), 0, 0, text),
        }
    }

    /// Hands a failed body to the coordinator for the error file, while under the cap.
    fn error_body(&self, body: Bytes) {
        let len = body.len() as u64 + 1;
        let before = self.ctl.error_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len <= ERROR_FILE_CAP {
            let _ = self.ctl.tx.send(Msg::ErrorBody(body));
        }
    }
}

/// The bytes of the request last prepared: an endpoint's head and a body from its template.
#[derive(Default)]
pub struct Outgoing {
    bytes: Vec<u8>,
    /// Which endpoint `bytes` were rendered for.
    endpoint: Option<usize>,
}

impl Outgoing {
    /// A request to endpoint number `index` with a fresh UUID in its body. The same endpoint
    /// as last time only has its UUIDs rewritten; the rest of the bytes are already there.
    pub fn request(&mut self, index: usize, endpoint: &Endpoint) -> &[u8] {
        if self.endpoint != Some(index) {
            self.bytes.clear();
            self.bytes.extend_from_slice(&endpoint.head);
            if let Some(t) = &endpoint.body {
                t.render_into(&mut self.bytes, &fresh_uuid());
            }
            self.endpoint = Some(index);
        } else if let Some(t) = endpoint.body.as_ref().filter(|t| t.placeholders() > 0) {
            t.patch(&mut self.bytes[endpoint.head.len()..], &fresh_uuid());
        }
        &self.bytes
    }
}

/// Starts worker `index` on its own thread.
pub fn spawn(index: usize, plan: Arc<Plan>, ctl: Arc<Control>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("sluice-load-{index}")).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("sluice load: worker {index} cannot start its event loop: {e}");
                return;
            }
        };
        let local = LocalSet::new();
        let result = local.block_on(&rt, main(index, plan, ctl.clone()));
        let _ = ctl.tx.send(Msg::Done(Box::new(result)));
    })
}

async fn main(index: usize, plan: Arc<Plan>, ctl: Arc<Control>) -> WorkerResult {
    let start = Instant::from_std(ctl.start);
    let deadline = plan.duration.map(|d| start + d);
    let ctx = Rc::new(Ctx::new(index, plan.clone(), ctl.clone()));
    let ticker = tokio::task::spawn_local(ticker(ctx.clone(), start));
    let mut stop = ctl.stop.clone();

    tokio::select! {
        _ = load(ctx.clone(), start, deadline) => {}
        _ = stop.wait_for(|s| *s) => {}
        // Users stop at the deadline; the open-loop schedule ends by itself after its last
        // intended send before the deadline, even if it runs a little behind.
        _ = async {
            match (deadline, &plan.mode) {
                (Some(d), Mode::Users { .. }) => sleep_until(d).await,
                _ => std::future::pending().await,
            }
        } => {}
    }
    ctx.stop.set(true);

    // Let the requests in flight finish, but not forever.
    let grace_end = Instant::now() + plan.timeout.min(Duration::from_secs(5));
    while ctx.busy() > 0 && Instant::now() < grace_end {
        sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    ticker.abort();
    let mut stats = ctx.stats.replace(WorkerStats::new(0));
    let last_interval = stats.take_interval();
    WorkerResult { stats, last_interval, last_second: ctx.second.get(), elapsed, unfinished: ctx.busy() as u64 }
}

/// Sends the interval of every finished second to the coordinator.
async fn ticker(ctx: Rc<Ctx>, start: Instant) {
    loop {
        let second = ctx.second.get();
        sleep_until(start + Duration::from_secs(second + 1)).await;
        let interval = ctx.stats.borrow_mut().take_interval();
        ctx.second.set(second + 1);
        let _ = ctx.ctl.tx.send(Msg::Second { second, interval, in_flight: ctx.busy() });
    }
}

/// The load itself; returns when this worker's share is done (users all gone, schedule over).
async fn load(ctx: Rc<Ctx>, start: Instant, deadline: Option<Instant>) {
    match ctx.plan.mode.clone() {
        Mode::Users { users, spawn_rate, wait } => crate::users::run(ctx, start, users, spawn_rate, wait).await,
        Mode::Rate { rate, max_in_flight, connections } => {
            open_loop(ctx, start, deadline, rate, max_in_flight, connections).await
        }
    }
}

async fn open_loop(
    ctx: Rc<Ctx>,
    start: Instant,
    deadline: Option<Instant>,
    rate: f64,
    max_in_flight: usize,
    connections: usize,
) {
    // Each worker keeps its share of the caps, so the totals never exceed them.
    let threads = ctx.plan.threads;
    let share_of = |n: usize| (n / threads + usize::from(ctx.index < n % threads)).max(1);
    let share = share_of(max_in_flight);
    let slots = Rc::new(tokio::sync::Semaphore::new(share_of(connections)));
    let schedule = Schedule {
        start,
        rate,
        first: ctx.index as u64,
        stride: threads as u64,
        end: deadline,
        limit: ctx.plan.requests,
        max_in_flight: share,
    };
    let rng = RefCell::new(<rand::rngs::SmallRng as rand::SeedableRng>::from_entropy());
    schedule
        .run(
            &mut Timer::new(),
            || ctx.in_flight.get() + ctx.queued.get(),
            |_, at| {
                let ep = ctx.pick_endpoint(&mut rng.borrow_mut());
                // Counted from now, so the cap holds while the task waits for its first poll.
                ctx.queued.set(ctx.queued.get() + 1);
                let ctx = ctx.clone();
                let slots = slots.clone();
                tokio::task::spawn_local(async move {
                    // Wait for a connection slot: opening ever more connections when the server
                    // falls behind would only make it fall further behind.
                    let _slot = slots.acquire().await;
                    ctx.queued.set(ctx.queued.get() - 1);
                    let mut conn = ctx.idle_connection();
                    ctx.one(&mut conn, ep, at).await;
                    if let Some(c) = conn {
                        if !ctx.stop.get() {
                            ctx.idle.borrow_mut().push(c);
                        }
                    }
                });
            },
            |_| {
                let ep = ctx.pick_endpoint(&mut rng.borrow_mut());
                ctx.stats.borrow_mut().failure(ep, None, 0, 0, "client overloaded".into());
            },
        )
        .await;
    // The requests still in flight get the worker's bounded grace period, like users'.
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of a prepared request, parsed.
    fn body_of(request: &[u8], endpoint: &Endpoint) -> serde_json::Value {
        assert_eq!(&request[..endpoint.head.len()], &endpoint.head[..]);
        serde_json::from_slice(&request[endpoint.head.len()..]).unwrap()
    }

    #[test]
    fn each_request_gets_a_fresh_uuid_and_switching_endpoints_renders_afresh() {
        let plan = crate::plan::plan(&["--endpoint", "1:POST:chat/completions", "--endpoint", "1:GET:health"]).unwrap();
        let (chat, health) = (&plan.endpoints[0], &plan.endpoints[1]);
        let mut out = Outgoing::default();
        let first = body_of(out.request(0, chat), chat);
        let second = body_of(out.request(0, chat), chat);
        let content = |v: &serde_json::Value| v["messages"][0]["content"].as_str().unwrap().to_string();
        assert_ne!(content(&first), content(&second));
        assert_eq!(content(&second).matches(&content(&second)[..36]).count(), 150);
        assert_eq!(out.request(1, health), &health.head[..]);
        let third = body_of(out.request(0, chat), chat);
        assert_ne!(content(&third), content(&second));
    }
}
