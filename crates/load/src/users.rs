//! Closed-loop users, as in locust: each user holds one keep-alive connection, sends a request,
//! waits for the whole answer, pauses `--wait`, and repeats. Users start at `--spawn-rate` per
//! second, spread over the workers round-robin.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use tokio::time::{sleep, sleep_until, Instant};

use crate::args::WaitRange;
use crate::worker::Ctx;

/// Starts this worker's users (global numbers `index`, `index + threads`, …) on schedule and
/// returns when they have all stopped.
pub async fn run(ctx: Rc<Ctx>, start: Instant, users: u32, spawn_rate: f64, wait: WaitRange) {
    let threads = ctx.plan.threads;
    let mut handles = Vec::new();
    let mut n = ctx.index;
    while n < users as usize {
        sleep_until(start + Duration::from_secs_f64(n as f64 / spawn_rate)).await;
        let exhausted = ctx.plan.requests.is_some_and(|l| ctx.ctl.issued.load(Ordering::Relaxed) >= l);
        if ctx.stop.get() || exhausted {
            break;
        }
        handles.push(tokio::task::spawn_local(user(ctx.clone(), wait)));
        n += threads;
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Decrements the running-users count however the user ends (also when the run drops it).
struct Running<'a>(&'a Ctx);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.ctl.users.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn user(ctx: Rc<Ctx>, wait: WaitRange) {
    ctx.ctl.users.fetch_add(1, Ordering::Relaxed);
    let _running = Running(&ctx);
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::from_entropy();
    let mut conn = None;
    loop {
        if ctx.stop.get() {
            break;
        }
        if let Some(limit) = ctx.plan.requests {
            if ctx.ctl.issued.fetch_add(1, Ordering::Relaxed) >= limit {
                break;
            }
        }
        let ep = ctx.pick_endpoint(&mut rng);
        ctx.one(&mut conn, ep, Instant::now()).await;
        if wait.max > 0.0 {
            let secs = if wait.max > wait.min { rng.gen_range(wait.min..=wait.max) } else { wait.min };
            sleep(Duration::from_secs_f64(secs)).await;
        }
    }
}
