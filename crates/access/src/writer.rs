//! The spend writer: one background task that, every `proxy_batch_write_at` seconds, writes the
//! spend accumulated in memory (one transaction) and the queued spend-log rows (another: on a
//! SQLite file they go through a connection of their own), resets budgets whose period ended,
//! and reloads keys, users and teams every `user_api_key_cache_ttl`.
//!
//! If the database is down, nothing is lost: ledgers keep their pending spend (requests keep
//! being checked against it) and the next write carries everything. Each part is retried alone,
//! so spend written once is never written again because the logs failed. Spend-log rows wait in
//! a bounded buffer; past it the oldest rows are dropped and counted (spend totals are not rows
//! and are never dropped).
//!
//! Every [`DB_CHECK_EVERY`] the task also looks after the database itself: a SQLite file deleted
//! or replaced under it is brought back ([`sluice_store::Store::recover`]), a failing write is
//! retried, and an idle database is pinged, so `/health/readiness` follows an outage within
//! seconds whether or not there is spend to write.

use super::ledger::Taken;
use super::log_queue::LogQueue;
use super::registry::Live;
use super::Access;
use sluice_store::{LogsNotWritten, Recovery, SpendIncrement, SpendLogRecord, Spender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Spend-log rows held while the database is away, at most (the oldest are dropped once the
/// buffer is a sixteenth over, so they are not moved up one tick's worth at a time).
pub const MAX_PENDING_LOGS: usize = 200_000;
/// A write happens at the first tick (every 200 ms at most) that finds this many rows waiting,
/// whatever the interval, so busy gateways write batches often instead of holding seconds of
/// rows in memory (a batch is then a tick's rows, which the spend-log thread of a SQLite file
/// writes in pieces: `sluice_store`'s `log_writer`): at the seed load test's ~1,300 requests/s
/// that is a write at nearly every tick and ~500 rows held at the peak (1,000 held twice that,
/// ~0.9 MB more RssAnon: bench/README.md). The spend goes with the rows, so a row in the
/// database always has its spend there too. Under ~1,300 requests/s writes come less often than
/// ticks, and a quiet gateway keeps `proxy_batch_write_at`'s pace: a shared PostgreSQL sees no
/// more transactions from an idle replica. A batch this size is one PostgreSQL statement and a
/// handful of SQLite ones.
pub const LOG_ROWS_PER_WRITE: usize = 256;
/// How often the database's health is checked (and a failing write retried).
pub const DB_CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct Queue {
    dirty_tx: mpsc::UnboundedSender<(Spender, Weak<Live>)>,
    logs: LogQueue,
    receivers: std::sync::Mutex<Option<Receivers>>,
    /// Spend-log rows dropped because the buffer was full, since the last warning.
    dropped_logs: AtomicU64,
    /// Spend-log rows dropped since the start, for `/health/readiness`.
    pub dropped_logs_total: AtomicU64,
    /// Spend-log rows waiting to be written, as of the writer's last pass.
    pub pending_logs: AtomicU64,
    /// Spenders whose spend waits to be written, as of the writer's last pass.
    pub pending_spend: AtomicU64,
    stop: tokio::sync::Notify,
    done: tokio::sync::Notify,
}

struct Receivers {
    dirty: mpsc::UnboundedReceiver<(Spender, Weak<Live>)>,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    pub fn new() -> Self {
        let (dirty_tx, dirty) = mpsc::unbounded_channel();
        Queue {
            dirty_tx,
            logs: LogQueue::default(),
            receivers: std::sync::Mutex::new(Some(Receivers { dirty })),
            dropped_logs: AtomicU64::new(0),
            dropped_logs_total: AtomicU64::new(0),
            pending_logs: AtomicU64::new(0),
            pending_spend: AtomicU64::new(0),
            stop: tokio::sync::Notify::new(),
            done: tokio::sync::Notify::new(),
        }
    }

    /// A ledger just got its first pending spend since its last write.
    pub fn dirty(&self, spender: Spender, live: &Arc<Live>) {
        let _ = self.dirty_tx.send((spender, Arc::downgrade(live)));
    }

    /// The rows queued and not yet written, taken from the queue (for tests of what a request
    /// logs).
    #[cfg(test)]
    pub(crate) fn take_queued_logs(&self) -> Vec<SpendLogRecord> {
        let mut rows = Vec::new();
        self.logs.drain_into(&mut rows);
        rows
    }

    pub fn log(&self, row: SpendLogRecord) {
        if !self.logs.push(row) {
            self.dropped_logs.fetch_add(1, Ordering::Relaxed);
            self.dropped_logs_total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the writer on the current runtime. It stops when `access` is dropped.
pub fn spawn(access: &Arc<Access>) {
    let Some(rx) = access.writer.receivers.lock().unwrap().take() else { return };
    let weak = Arc::downgrade(access);
    let interval = access.settings.batch_write_interval;
    let reload_every = access.settings.reload_interval;
    let writer = tokio::spawn(async move {
        let mut w = Writer::new(rx);
        let period = interval.min(Duration::from_millis(200)).max(Duration::from_millis(50));
        w.spread = period * 3 / 4;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_write = Instant::now();
        let mut last_check = Instant::now();
        loop {
            let stopping = {
                let Some(access) = weak.upgrade() else { return };
                let stop = access.writer.stop.notified();
                tokio::select! {
                    _ = tick.tick() => false,
                    _ = stop => true,
                }
            };
            let Some(access) = weak.upgrade() else { return };
            if stopping {
                w.spread = Duration::ZERO;
                w.write(&access).await;
                access.writer.done.notify_one();
                return;
            }
            w.resets(&access).await;
            access.reset_end_user_budgets().await;
            w.drain(&access).await;
            // A full buffer writes early, but not while the database is failing: then once per
            // interval is enough to notice it is back.
            let early = w.logs.len() >= LOG_ROWS_PER_WRITE && !w.failing;
            if last_write.elapsed() >= interval || early {
                last_write = Instant::now();
                w.write(&access).await;
            }
            if last_check.elapsed() >= DB_CHECK_EVERY {
                last_check = Instant::now();
                if w.check_db(&access).await {
                    last_write = Instant::now();
                }
            }
            // Safe with spend pending: a reload only replaces what the database holds (the base),
            // and no write is in flight (this task does both).
            if w.last_reload.elapsed() >= reload_every {
                w.last_reload = Instant::now();
                let _ = access.load().await;
            }
        }
    });
    // A request's panic costs that request; this task's would cost every later request's spend
    // record and budget check. Serving on without it would fail open, so the process ends, as
    // it did when panics aborted, for its supervisor to restart it.
    tokio::spawn(async move {
        if writer.await.is_err_and(|e| e.is_panic()) {
            tracing::error!(
                "the spend writer failed; exiting so that sluice restarts instead of serving without recording spend"
            );
            std::process::exit(70);
        }
    });
}

/// Asks the writer for a last write (at shutdown) and waits for it, at most `within`.
pub async fn shutdown(access: &Access, within: Duration) {
    if access.store().is_none() {
        return;
    }
    let done = access.writer.done.notified();
    access.writer.stop.notify_one();
    let _ = tokio::time::timeout(within, done).await;
}

struct Writer {
    rx: Receivers,
    /// The last write failed.
    failing: bool,
    /// Keyed by spender: a ledger queued twice is written once.
    dirty: std::collections::BTreeMap<Spender, Weak<Live>>,
    /// Rows to write, oldest first within each queue shard.
    logs: Vec<SpendLogRecord>,
    /// How long a batch of spend-log rows may take to write: most of a tick, so a busy gateway's
    /// rows go in at a steady pace rather than in bursts that slow every request in flight (see
    /// [`sluice_store::Store::insert_spend_logs_paced`]). Zero for the last write at shutdown.
    spread: Duration,
    last_reload: Instant,
}

impl Writer {
    fn new(rx: Receivers) -> Writer {
        Writer {
            rx,
            failing: false,
            dirty: Default::default(),
            logs: Vec::new(),
            spread: Duration::ZERO,
            last_reload: Instant::now(),
        }
    }

    async fn drain(&mut self, access: &Access) {
        while let Ok((spender, live)) = self.rx.dirty.try_recv() {
            self.dirty.insert(spender, live);
        }
        access.writer.logs.drain_into(&mut self.logs);
        if self.logs.len() > MAX_PENDING_LOGS + MAX_PENDING_LOGS / 16 {
            let over = self.logs.len() - MAX_PENDING_LOGS;
            self.logs.drain(..over);
            access.writer.dropped_logs.fetch_add(over as u64, Ordering::Relaxed);
            access.writer.dropped_logs_total.fetch_add(over as u64, Ordering::Relaxed);
        }
        access.writer.pending_logs.store(self.logs.len() as u64, Ordering::Relaxed);
        access.writer.pending_spend.store(self.dirty.len() as u64, Ordering::Relaxed);
    }

    /// Writes what waits, the spend-log rows spread over [`Writer::spread`].
    async fn write(&mut self, access: &Access) {
        let Some(store) = access.store() else { return };
        self.drain(access).await;
        self.dirty.retain(|_, live| live.strong_count() > 0);
        let dropped = access.writer.dropped_logs.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "{dropped} spend-log rows were dropped: more arrived than the buffer holds while the database was slow or away (spend totals are unaffected)"
            );
        }
        if self.dirty.is_empty() && self.logs.is_empty() {
            return;
        }
        let taken: Vec<(Spender, Arc<Live>, Taken)> = self
            .dirty
            .iter()
            .filter_map(|(s, w)| {
                let live = w.upgrade()?;
                let t = live.ledger.snapshot();
                Some((s.clone(), live, t))
            })
            .collect();
        let increments: Vec<SpendIncrement> = taken
            .iter()
            .filter(|(_, _, t)| t.amount != 0.0 || !t.per_model.is_empty())
            .map(|(s, _, t)| SpendIncrement { spender: s.clone(), amount: t.amount, per_model: t.per_model.clone() })
            .collect();
        tracing::debug!(
            increments = ?increments.iter().map(|i| (&i.spender, i.amount)).collect::<Vec<_>>(),
            logs = self.logs.len(),
            "writing spend"
        );
        let mut ok = true;
        let mut failure = None;
        match store.apply_increments(&increments).await {
            Ok(()) => {
                for (s, live, t) in taken {
                    if !live.ledger.committed(&t) {
                        self.dirty.remove(&s);
                    }
                }
            }
            Err(e) => {
                ok = false;
                tracing::warn!("spend write failed, will retry ({} ledgers pending): {e}", self.dirty.len());
                failure = Some(e);
            }
        }
        if !self.logs.is_empty() {
            // Moved, not copied (a busy gateway's batch is thousands of rows). Nothing adds to
            // `self.logs` meanwhile: only this task drains the queue.
            match store.insert_spend_logs_paced(std::mem::take(&mut self.logs), self.spread).await {
                // The emptied buffer is let go: the queue's shards got buffers with room when
                // they were drained, and keeping this one too would hold a third batch's memory.
                Ok(_emptied) => {}
                Err(LogsNotWritten { error, logs }) => {
                    ok = false;
                    self.logs = logs;
                    tracing::warn!("spend-log write failed, will retry {} rows: {error}", self.logs.len());
                    failure = failure.or(Some(error));
                }
            }
        }
        access.writer.pending_logs.store(self.logs.len() as u64, Ordering::Relaxed);
        access.writer.pending_spend.store(self.dirty.len() as u64, Ordering::Relaxed);
        if ok && self.failing {
            tracing::info!("spend writes resumed: everything held in memory is written");
        }
        self.failing = !ok;
        access.db_result(failure.as_ref().map_or(Ok(()), Err));
    }

    /// Whether anything waits to be written.
    fn pending(&self) -> bool {
        !self.dirty.is_empty() || !self.logs.is_empty()
    }

    /// Brings back a SQLite file deleted or replaced under the store, then retries a failing
    /// write at once, or pings the database. Returns whether it wrote.
    async fn check_db(&mut self, access: &Access) -> bool {
        let Some(store) = access.store() else { return false };
        let recovered = match store.recover().await {
            Ok(Recovery::NotNeeded) => false,
            Ok(Recovery::Restored(what) | Recovery::Switched(what)) => {
                tracing::warn!("{what}");
                true
            }
            Err(e) => {
                if access.db_connected() {
                    tracing::error!("database unavailable: {e}");
                }
                access.db_result(Err(&e));
                return false;
            }
        };
        if (self.failing || recovered) && self.pending() {
            self.write(access).await;
            return true;
        }
        // While writes fail, they decide (above): a database that answers may still refuse them.
        let result = store.ping().await;
        match &result {
            Ok(()) if !access.db_connected() => tracing::info!("database reachable again"),
            Err(e) if access.db_connected() => tracing::error!("database unavailable: {e}"),
            _ => {}
        }
        self.failing = result.is_err();
        access.db_result(result.as_ref().map(|_| ()));
        false
    }

    /// Zeroes the spend of every ledger whose budget period ended and schedules the next reset.
    async fn resets(&mut self, access: &Access) {
        let Some(store) = access.store() else { return };
        let now = chrono::Utc::now();
        let now_ms = now.timestamp_millis();
        let due = |reset: Option<i64>| reset.is_some_and(|t| t <= now_ms);
        let mut jobs: Vec<(Spender, Arc<Live>, Option<String>)> = Vec::new();
        for e in access.registry.keys.iter() {
            if due(e.live.ledger.reset_at_ms()) {
                jobs.push((Spender::Key(e.record.token.clone()), e.live.clone(), e.record.budget_duration.clone()));
            }
        }
        for e in access.registry.users.iter() {
            if due(e.live.ledger.reset_at_ms()) {
                jobs.push((Spender::User(e.record.user_id.clone()), e.live.clone(), e.record.budget_duration.clone()));
            }
        }
        for e in access.registry.teams.iter() {
            if due(e.live.ledger.reset_at_ms()) {
                jobs.push((Spender::Team(e.record.team_id.clone()), e.live.clone(), e.record.budget_duration.clone()));
            }
        }
        for e in access.registry.organizations.iter() {
            if due(e.live.ledger.reset_at_ms()) {
                let duration = e.record.budget.as_ref().and_then(|b| b.budget_duration.clone());
                jobs.push((Spender::Organization(e.record.record.organization_id.clone()), e.live.clone(), duration));
            }
        }
        for (spender, live, duration) in jobs {
            let next = duration.and_then(|d| match super::duration::after(now, &d) {
                Ok(next) => Some(next),
                Err(why) => {
                    // A row written before durations were checked (or by another tool): its spend
                    // is reset this once, and not again until its budget_duration is fixed.
                    tracing::error!(
                        "{spender:?}: budget_duration: {why}; no further budget resets are scheduled for it"
                    );
                    None
                }
            });
            let ended = live.ledger.reset_at_ms().unwrap_or_default().to_string();
            if store.reset_spend(&spender, next).await.is_ok() {
                live.ledger.reset();
                live.ledger.set_reset_at_ms(next.map(|t| t.timestamp_millis()));
                // Shared totals restart too, once for all replicas (the period's end names it).
                live.shared.reset(0.0, &ended).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccessSettings;
    use sluice_store::{KeyRecord, SpendLogFilter, Store};
    use sqlx::Connection;

    async fn sql(url: &str, statement: &str) {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }

    /// Settings whose batch interval and reload never fire during a test: it drives the writer.
    fn settings() -> AccessSettings {
        AccessSettings {
            batch_write_interval: Duration::from_secs(10),
            reload_interval: Duration::from_secs(60),
            disable_spend_logs: false,
            max_end_user_budget: None,
            max_budget: None,
            budget_duration: None,
            max_parallel_requests: None,
        }
    }

    /// An access layer over `store` with one key, `tok`.
    async fn access_over(store: &Store) -> Arc<Access> {
        store.insert_key(&KeyRecord { token: "tok".into(), ..Default::default() }).await.unwrap();
        let access = Access::new(Some("sk-master"), settings(), None);
        access.attach(store.clone());
        access.load().await.unwrap();
        access
    }

    /// An access layer over `store` with one key, `tok`, and its writer, driven by hand.
    async fn writer_over(store: &Store) -> (Arc<Access>, Writer) {
        let access = access_over(store).await;
        let rx = access.writer.receivers.lock().unwrap().take().unwrap();
        let w = Writer::new(rx);
        (access, w)
    }

    /// One request of `cost` on `tok`, as the request path bills it: the ledger, then its log row.
    fn charge(access: &Access, cost: f64, id: &str) {
        let key = access.registry.key("tok").unwrap();
        if key.live.ledger.charge(cost, Some("m")) {
            access.writer.dirty(Spender::Key("tok".into()), &key.live);
        }
        access.writer.log(SpendLogRecord {
            request_id: id.into(),
            api_key: "tok".into(),
            spend: cost,
            ..Default::default()
        });
    }

    /// Spend and log rows are separate writes: while the database refuses the logs, the spend
    /// is written once, and only the rows are retried (in order, each once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_logs_never_reapply_spend() {
        let dir = std::env::temp_dir().join(format!("sluice_writer_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("w.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        // The logs take the dedicated SQLite connection: the path under test.
        assert!(store.logs_on_own_connection());
        let (access, mut w) = writer_over(&store).await;
        let charge = |cost: f64, id: &str| charge(&access, cost, id);
        let stored = || async { store.get_key("tok").await.unwrap().unwrap() };
        let logged = || async {
            store
                .spend_logs(&SpendLogFilter::default())
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.request_id)
                .collect::<Vec<_>>()
        };

        sql(&url, "CREATE TRIGGER refuse BEFORE INSERT ON sluice_spend_logs BEGIN SELECT RAISE(ABORT, 'refused'); END")
            .await;
        charge(0.5, "r1");
        w.write(&access).await;
        assert!(w.failing);
        assert!(!access.db_connected());
        assert_eq!(stored().await.spend, 0.5);
        assert_eq!(w.logs.len(), 1);
        // Retries carry the rows again, not the spend.
        w.write(&access).await;
        w.write(&access).await;
        assert_eq!(stored().await.spend, 0.5);
        assert_eq!(access.registry.key("tok").unwrap().live.ledger.spend(), 0.5);
        // Spend added meanwhile is written once too.
        charge(0.25, "r2");
        w.write(&access).await;
        w.write(&access).await;
        let k = stored().await;
        assert_eq!((k.spend, k.model_spend.get("m").and_then(|v| v.as_f64())), (0.75, Some(0.75)));
        assert_eq!(w.logs.iter().map(|l| l.request_id.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);
        assert!(logged().await.is_empty());

        // The database takes rows again: each goes in once, the spend stays.
        sql(&url, "DROP TRIGGER refuse").await;
        charge(0.125, "r3");
        w.write(&access).await;
        assert!(!w.failing);
        assert!(access.db_connected());
        assert!(w.logs.is_empty());
        assert_eq!(stored().await.spend, 0.875);
        w.write(&access).await;
        assert_eq!(stored().await.spend, 0.875);
        assert_eq!(access.registry.key("tok").unwrap().live.ledger.spend(), 0.875);
        let mut ids = logged().await;
        ids.sort();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The SQLite file deleted between writes (its directory too): the write that finds it gone
    /// fails without writing into the deleted file, readiness turns, and the next check restores
    /// the file from the open connection and writes everything held meanwhile, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deleted_sqlite_file_loses_no_spend() {
        let dir = std::env::temp_dir().join(format!("sluice_writer_deleted_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("data").join("w.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url, 2).await.unwrap();
        let (access, mut w) = writer_over(&store).await;
        let charge = |cost: f64, id: &str| charge(&access, cost, id);

        charge(0.5, "r1");
        w.write(&access).await;
        assert!(!w.failing);
        std::fs::remove_dir_all(&dir).unwrap();
        charge(0.25, "r2");
        w.write(&access).await;
        assert!(w.failing, "a write into the deleted file must not count as done");
        assert!(!access.db_connected());
        assert!(access.db_error.lock().unwrap().as_deref().unwrap_or_default().contains("deleted"));
        assert_eq!(w.logs.len(), 1);
        charge(0.125, "r3");

        assert!(w.check_db(&access).await, "the check restores the file and writes what waits");
        assert!(!w.failing);
        assert!(access.db_connected());
        assert!(w.logs.is_empty());
        let stored = store.get_key("tok").await.unwrap().unwrap();
        assert_eq!(stored.spend, 0.875);
        let mut ids: Vec<String> =
            store.spend_logs(&SpendLogFilter::default()).await.unwrap().into_iter().map(|l| l.request_id).collect();
        ids.sort();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        // An idle check pings and keeps readiness up.
        assert!(!w.check_db(&access).await);
        assert!(access.db_connected());
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A long queue reaches the database whole through the spend-log thread, which writes it in
    /// paced pieces: 30,000 requests billed at once (seconds of a busy gateway's rows), the
    /// writer running on its own, and shutdown's last write taking what is left. No row is
    /// dropped or written twice, and the spend matches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_queue_drains_without_losing_a_row() {
        const REQUESTS: usize = 30_000;
        let dir = std::env::temp_dir().join(format!("sluice_writer_drain_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("w.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        assert!(store.logs_on_own_connection());
        let access = access_over(&store).await;
        spawn(&access);
        for i in 0..REQUESTS {
            charge(&access, 0.5, &format!("r{i}"));
        }
        shutdown(&access, Duration::from_secs(120)).await;
        assert_eq!(access.writer.dropped_logs_total.load(Ordering::Relaxed), 0);
        assert_eq!(access.writer.pending_logs.load(Ordering::Relaxed), 0);
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (rows, distinct): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM sluice_spend_logs")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        assert_eq!((rows, distinct), (REQUESTS as i64, REQUESTS as i64));
        assert_eq!(store.get_key("tok").await.unwrap().unwrap().spend, 0.5 * REQUESTS as f64);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The spend-log rows in the database once there are `want`, or after `within`.
    async fn rows_within(conn: &mut sqlx::SqliteConnection, want: i64, within: Duration) -> i64 {
        let since = Instant::now();
        loop {
            let (rows,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM sluice_spend_logs").fetch_one(&mut *conn).await.unwrap();
            if rows >= want || since.elapsed() > within {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A batch's worth of rows is written at the next tick, with its spend, rather than held
    /// until the interval (10 s here) ends; fewer rows wait for the interval.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_written_at_the_next_tick_with_its_spend() {
        let dir = std::env::temp_dir().join(format!("sluice_writer_tick_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("w.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let access = access_over(&store).await;
        spawn(&access);
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for i in 0..LOG_ROWS_PER_WRITE - 1 {
            charge(&access, 0.5, &format!("r{i}"));
        }
        assert_eq!(rows_within(&mut conn, 1, Duration::from_millis(600)).await, 0, "a batch less one row waits");
        charge(&access, 0.5, "last");
        let rows = rows_within(&mut conn, LOG_ROWS_PER_WRITE as i64, Duration::from_secs(3)).await;
        assert_eq!(rows, LOG_ROWS_PER_WRITE as i64, "a whole batch is written at the next tick");
        let spend = store.get_key("tok").await.unwrap().unwrap().spend;
        assert_eq!(spend, 0.5 * LOG_ROWS_PER_WRITE as f64, "and its spend with it");
        conn.close().await.unwrap();
        shutdown(&access, Duration::from_secs(10)).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
