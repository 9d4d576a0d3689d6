//! Spend-log rows into a SQLite file, on a connection and a thread of their own.
//!
//! Every proxied request writes one row. Through sqlx a row cost about as much again as SQLite's
//! own insert (each text copied and freed, argument vectors built and dropped, a round trip to
//! sqlx's worker per statement), so for a SQLite file the rows go to a dedicated thread holding a
//! raw connection ([`crate::sqlite_raw`]) with its INSERTs prepared once and the records' texts
//! bound where they lie. The async side sends a batch over a channel and awaits the answer: no
//! runtime thread ever waits on SQLite.
//!
//! The thread writes a batch in small pieces paced over the time the caller allows (see
//! [`Inserter::write`]): a gateway pinned to one core shares it with this thread, and a batch
//! written in one go held the core for whole scheduler ticks while every request in flight waited
//! behind it; written in bursts at half the core, it slowed every request in the burst.
//!
//! `sqlite::memory:` cannot be reached from a second connection, and PostgreSQL parses every
//! statement anyway, so both keep writing logs through sqlx.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::connect::{
    SQLITE_BUSY_TIMEOUT, SQLITE_CACHE_PRAGMA, SQLITE_JOURNAL_PRAGMA, SQLITE_TEMP_STORE_PRAGMA, SQLX_SQLITE_PRAGMAS,
};
use crate::spend::{self, LogValue, NO_METADATA, NO_TAGS, SQLITE_MAX_LOG_ROWS};
use crate::sqlite_raw::{self, Connection, Statement};
use crate::{Backend, LogsNotWritten, Result, SpendLogRecord, StoreError};

/// Rows per piece: one INSERT. A piece is the longest the thread holds a shared core in one go
/// (~0.2 ms on the machines in bench/README.md), short against a request's own latency.
const PIECE_ROWS: usize = SQLITE_MAX_LOG_ROWS;
/// A pause is never longer than this, so a batch whose pacing went wrong (a clock jump, a spread
/// far longer than the rows need) still ends within a bounded time.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The store's handle on the thread. The thread ends, finalizing its statements and closing its
/// connection, once every clone is dropped (the channel closes).
#[derive(Clone)]
pub(crate) struct LogWriter {
    jobs: mpsc::Sender<Job>,
    /// The database file, for messages.
    path: Arc<str>,
}

type Reply = (Vec<SpendLogRecord>, sqlite_raw::Result<()>);

enum Job {
    Insert {
        logs: Vec<SpendLogRecord>,
        /// How long the write may be spread over.
        spread: Duration,
        reply: oneshot::Sender<Reply>,
    },
    /// Close the connection (answered once it is closed); inserts fail until the next `Open`.
    Close(oneshot::Sender<()>),
    /// Open the file again.
    Open(oneshot::Sender<sqlite_raw::Result<()>>),
    /// Copy the whole database, as this connection sees it, into a new file.
    Copy { to: String, reply: oneshot::Sender<sqlite_raw::Result<()>> },
}

impl LogWriter {
    /// Starts the thread, which opens `path` (an existing database file, already migrated) with
    /// the settings the pool's connections have.
    pub(crate) async fn open(path: &str) -> Result<LogWriter> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let owned = path.to_owned();
        std::thread::Builder::new()
            // Linux shows 15 bytes of a thread's name.
            .name("sluice-spendlog".into())
            .spawn(move || run(&owned, queue, ready))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the spend-log writer thread: {e}")))?;
        let writer = LogWriter { jobs, path: path.into() };
        writer.opened(opened).await?;
        Ok(writer)
    }

    async fn opened(&self, opened: oneshot::Receiver<sqlite_raw::Result<()>>) -> Result<()> {
        match opened.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "cannot open SQLite database {} for spend logs: {e}; check that the path is writable",
                self.path
            ))),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Closes the thread's connection; it waits, failing inserts, until [`Self::reopen`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }

    /// Copies the database into the new file `to` (`VACUUM INTO`) from the thread's connection,
    /// which still reads the file it opened after that file was deleted.
    pub(crate) async fn copy_to(&self, to: &str) -> Result<()> {
        let (reply, copied) = oneshot::channel();
        self.jobs.send(Job::Copy { to: to.to_owned(), reply }).map_err(|_| self.stopped())?;
        match copied.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "cannot copy SQLite database {} to {to}: {e}; check that the directory is writable",
                self.path
            ))),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Opens the file again after [`Self::close`].
    pub(crate) async fn reopen(&self) -> Result<()> {
        let (ready, opened) = oneshot::channel();
        self.jobs.send(Job::Open(ready)).map_err(|_| self.stopped())?;
        self.opened(opened).await
    }

    /// Inserts `logs` in one transaction, paced over about `spread`. On success the vector comes
    /// back empty, its capacity kept; on failure nothing was written and the rows come back with
    /// the error.
    pub(crate) async fn insert(
        &self,
        logs: Vec<SpendLogRecord>,
        spread: Duration,
    ) -> std::result::Result<Vec<SpendLogRecord>, LogsNotWritten> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job::Insert { logs, spread, reply }) {
            let Job::Insert { logs, .. } = job else { unreachable!("the job sent") };
            return Err(LogsNotWritten { error: self.stopped(), logs });
        }
        match answer.await {
            Ok((logs, Ok(()))) => Ok(logs),
            Ok((logs, Err(e))) => Err(LogsNotWritten { error: self.error(e), logs }),
            // The thread died holding the rows. Release builds abort on a panic, so only a
            // debug build gets here.
            Err(_) => Err(LogsNotWritten { error: self.stopped(), logs: Vec::new() }),
        }
    }

    fn error(&self, e: sqlite_raw::Error) -> StoreError {
        let msg = format!("cannot write spend logs to SQLite database {}: {e}", self.path);
        if e.is_transient() {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Other(msg)
        }
    }

    fn stopped(&self) -> StoreError {
        StoreError::Other(format!(
            "the spend-log writer of SQLite database {} stopped; this is a bug, restart sluice",
            self.path
        ))
    }
}

/// The thread: opens the connection, reports how that went, then writes batch after batch until
/// the channel closes; closes and opens again when asked.
fn run(path: &str, jobs: mpsc::Receiver<Job>, ready: oneshot::Sender<sqlite_raw::Result<()>>) {
    let mut ready = ready;
    loop {
        let Some(closed) = serve(path, &jobs, ready) else { return };
        // The connection is closed now (`serve` returned).
        let _ = closed.send(());
        // Closed: inserts fail until asked to open again.
        loop {
            match jobs.recv() {
                Err(_) => return,
                Ok(Job::Insert { logs, reply, .. }) => {
                    let err = sqlite_raw::Error::closed(
                        "the spend-log connection is closed while the database file is reopened",
                    );
                    let _ = reply.send((logs, Err(err)));
                }
                Ok(Job::Close(done)) => {
                    let _ = done.send(());
                }
                Ok(Job::Copy { reply, .. }) => {
                    let _ = reply.send(Err(sqlite_raw::Error::closed("the spend-log connection is closed")));
                }
                Ok(Job::Open(again)) => {
                    ready = again;
                    break;
                }
            }
        }
    }
}

/// Opens the connection, reports how that went on `ready`, then serves inserts; returns the
/// answer to a `Close` (to send once the connection is closed), `None` when the channel closed.
/// A failed open is answered and the thread waits closed, as after a `Close`.
fn serve(
    path: &str,
    jobs: &mpsc::Receiver<Job>,
    ready: oneshot::Sender<sqlite_raw::Result<()>>,
) -> Option<oneshot::Sender<()>> {
    let conn = match open(path) {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send(Err(e));
            let (done, _) = oneshot::channel();
            return Some(done);
        }
    };
    // Declared after `conn`, so its statements are finalized before the connection closes.
    let mut inserter = match Inserter::new(&conn) {
        Ok(inserter) => inserter,
        Err(e) => {
            let _ = ready.send(Err(e));
            let (done, _) = oneshot::channel();
            return Some(done);
        }
    };
    let _ = ready.send(Ok(()));
    loop {
        match jobs.recv() {
            Err(_) => return None,
            Ok(Job::Insert { mut logs, spread, reply }) => {
                let result = inserter.write(&logs, spread, &mut std::thread::sleep);
                if result.is_ok() {
                    // Dropped here rather than on a runtime thread; the buffer goes back for reuse.
                    logs.clear();
                }
                // A caller that stopped waiting (its task was cancelled) loses the rows.
                let _ = reply.send((logs, result));
            }
            Ok(Job::Close(done)) => return Some(done),
            Ok(Job::Copy { to, reply }) => {
                let _ = reply.send(conn.prepare("VACUUM INTO ?").and_then(|mut copy| copy.execute(|b| b.text(&to))));
            }
            // Already open.
            Ok(Job::Open(again)) => {
                let _ = again.send(Ok(()));
            }
        }
    }
}

fn open(path: &str) -> sqlite_raw::Result<Connection> {
    // The pool's connections' settings (`connect`), nothing looser: `synchronous` stays SQLite's
    // default there and here.
    let conn = Connection::open(path, SQLITE_BUSY_TIMEOUT)?;
    conn.exec(SQLX_SQLITE_PRAGMAS)?;
    conn.exec(SQLITE_CACHE_PRAGMA)?;
    conn.exec(SQLITE_TEMP_STORE_PRAGMA)?;
    // A property of the file, set when the pool opened it (where it could be); asking again is
    // a no-op, or fails as it did for the pool.
    let _ = conn.exec(SQLITE_JOURNAL_PRAGMA);
    Ok(conn)
}

/// The thread's statements and buffers.
struct Inserter<'c> {
    conn: &'c Connection,
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    /// At index `i`, the INSERT of 2^i rows, prepared when first needed (see
    /// [`spend::chunk_rows`]).
    inserts: Vec<Option<Statement<'c>>>,
    /// JSON of each row's metadata and tags in the chunk being inserted, when not empty (rarely);
    /// the buffers are kept from chunk to chunk.
    json: Vec<[Vec<u8>; 2]>,
    /// The daily aggregates' upserts (`daily`), one group or tag per run.
    daily: Statement<'c>,
    daily_teams: Statement<'c>,
    daily_tags: Statement<'c>,
}

impl<'c> Inserter<'c> {
    fn new(conn: &'c Connection) -> sqlite_raw::Result<Inserter<'c>> {
        let [daily, daily_teams, daily_tags] = crate::daily::raw_upserts();
        Ok(Inserter {
            daily: conn.prepare(&daily)?,
            daily_teams: conn.prepare(&daily_teams)?,
            daily_tags: conn.prepare(&daily_tags)?,
            // The write lock at once: a deferred transaction that finds another connection has
            // written since cannot be helped by waiting (see `begin_write`).
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            inserts: (0..=SQLITE_MAX_LOG_ROWS.ilog2()).map(|_| None).collect(),
            json: vec![Default::default(); SQLITE_MAX_LOG_ROWS],
            conn,
        })
    }

    /// The whole batch or nothing, one INSERT of [`PIECE_ROWS`] at a time, paced so that the
    /// rows written keep up with the time elapsed out of `spread`: after each piece the thread
    /// pauses until the clock catches up with its progress, and a thread that fell behind (the
    /// core was busy) writes on without pausing. So the batch ends within about `spread`, or as
    /// soon as the core allows, and the thread takes an even share of it meanwhile instead of
    /// bursts (bench/README.md, thirteenth session). The pauses fall inside the transaction: a
    /// commit per piece would multiply the journal's syncs. Another connection's write (the
    /// management API's) waits the longer for it, within the busy timeout.
    fn write(
        &mut self,
        logs: &[SpendLogRecord],
        spread: Duration,
        pause: &mut dyn FnMut(Duration),
    ) -> sqlite_raw::Result<()> {
        self.begin.execute(|_| {})?;
        let started = Instant::now();
        let mut result = Ok(());
        let mut written = 0;
        while written < logs.len() && result.is_ok() {
            let rest = &logs[written..];
            let chunk = &rest[..spend::chunk_rows(Backend::Sqlite, rest.len().min(PIECE_ROWS))];
            result = self.insert(chunk);
            written += chunk.len();
            if written < logs.len() {
                if let Some(wait) = pace(spread, written, logs.len(), started.elapsed()) {
                    pause(wait);
                }
            }
        }
        // The day's aggregates in the same transaction: a batch counts in both or in neither.
        let result = result.and_then(|()| self.upsert_daily(logs));
        let result = result.and_then(|()| self.commit.execute(|_| {}));
        // A failed COMMIT (busy) leaves the transaction open; a failed INSERT may or may not
        // have ended it.
        if result.is_err() && self.conn.in_transaction() {
            let _ = self.rollback.execute(|_| {});
        }
        result
    }

    /// The batch's daily groups, teams and tags, one upsert each.
    fn upsert_daily(&mut self, logs: &[SpendLogRecord]) -> sqlite_raw::Result<()> {
        let batch = crate::daily::Batch::of(logs);
        for (date, ids, sums) in batch.groups() {
            self.daily.execute(|b| crate::daily::bind_group(b, &date, ids, sums))?;
        }
        for (date, ids, sums) in batch.teams() {
            self.daily_teams.execute(|b| crate::daily::bind_team(b, &date, ids, sums))?;
        }
        for (date, tag, sums) in batch.tags() {
            self.daily_tags.execute(|b| crate::daily::bind_tag(b, &date, tag, sums))?;
        }
        Ok(())
    }

    /// One INSERT of `chunk` (a length `chunk_rows` gives).
    fn insert(&mut self, chunk: &[SpendLogRecord]) -> sqlite_raw::Result<()> {
        let Inserter { conn, inserts, json, .. } = self;
        let slot = &mut inserts[chunk.len().ilog2() as usize];
        let stmt = match slot {
            Some(stmt) => stmt,
            None => slot.insert(conn.prepare(&spend::log_insert(Backend::Sqlite, chunk.len()))?),
        };
        let mut texts = [(NO_METADATA, NO_TAGS); SQLITE_MAX_LOG_ROWS];
        for ((l, [metadata, tags]), text) in chunk.iter().zip(json.iter_mut()).zip(&mut texts) {
            if !l.metadata.is_empty() {
                text.0 = json_text(metadata, &l.metadata)?;
            }
            if !l.request_tags.is_empty() {
                text.1 = json_text(tags, &l.request_tags)?;
            }
        }
        stmt.execute(|b| {
            for (l, (metadata, tags)) in chunk.iter().zip(texts) {
                for v in spend::log_values(l, metadata, tags) {
                    match v {
                        LogValue::Text(s) => b.text(s),
                        LogValue::OptText(s) => b.opt_text(s),
                        LogValue::Real(f) => b.real(f),
                        LogValue::Int(i) => b.int(i),
                    }
                }
            }
        })
    }
}

/// How long to pause after `written` of `total` rows, `elapsed` into a write spread over
/// `spread`: until the time that share of the rows is due, at most [`MAX_PAUSE`]; `None` when
/// the write is on time or late.
fn pace(spread: Duration, written: usize, total: usize, elapsed: Duration) -> Option<Duration> {
    let due = spread.mul_f64(written as f64 / total as f64);
    let wait = due.checked_sub(elapsed)?;
    (!wait.is_zero()).then(|| wait.min(MAX_PAUSE))
}

/// `v` as JSON in `buf` (the text `codec::json_text` gives).
fn json_text<'b>(buf: &'b mut Vec<u8>, v: &impl serde::Serialize) -> sqlite_raw::Result<&'b str> {
    buf.clear();
    serde_json::to_writer(&mut *buf, v).map_err(|e| sqlite_raw::Error::misuse(format!("JSON: {e}")))?;
    std::str::from_utf8(buf).map_err(|e| sqlite_raw::Error::misuse(format!("JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{open, pace, Inserter, MAX_PAUSE, PIECE_ROWS};
    use crate::{SpendLogRecord, Store};

    fn rows(batch: usize, n: usize) -> Vec<SpendLogRecord> {
        (0..n).map(|i| SpendLogRecord { request_id: format!("b{batch}-r{i}"), ..Default::default() }).collect()
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM sluice_spend_logs").fetch_one(&store.pool().unwrap()).await.unwrap()
    }

    /// A batch goes in whole, one INSERT at a time; with a spread, the pauses after the pieces
    /// add up to about the spread (each one a piece's share of it, never over `MAX_PAUSE`), and
    /// without one there are none. Every row lands, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_written_whole_in_paced_pieces() {
        let dir = std::env::temp_dir().join(format!("sluice_log_pieces_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("p.db");
        let store = Store::open(db.to_str().unwrap(), 2).await.unwrap();
        let conn = open(db.to_str().unwrap()).unwrap();
        let mut inserter = Inserter::new(&conn).unwrap();
        let mut written = 0;
        // (rows, spread in ms, pauses at most): one INSERT never pauses; no spread, no pauses;
        // otherwise a pause after every INSERT but the last (INSERTs of 64 rows, the rest in
        // powers of two: 100 = 64 + 32 + 4).
        let batches = [(1, 100, 0), (6_400, 0, 0), (100, 100, 2), (2_048, 200, 31), (10_000, 300, 157)];
        for (batch, (n, spread_ms, pauses)) in batches.into_iter().enumerate() {
            let mut paused: Vec<std::time::Duration> = Vec::new();
            let spread = std::time::Duration::from_millis(spread_ms);
            let started = std::time::Instant::now();
            inserter
                .write(&rows(batch, n), spread, &mut |d| {
                    paused.push(d);
                    std::thread::sleep(d);
                })
                .unwrap();
            if pauses > 30 {
                // Paced: it takes about the spread (less by the last piece's share).
                assert!(started.elapsed() >= spread.mul_f64(0.9), "{n} rows in {:?}", started.elapsed());
            }
            assert!(paused.len() <= pauses, "{n} rows: {} pauses", paused.len());
            assert!(paused.iter().all(|d| *d <= MAX_PAUSE));
            let total: std::time::Duration = paused.iter().sum();
            assert!(total <= spread, "{n} rows: paused {total:?} of {spread:?}");
            written += n as i64;
            assert_eq!(count(&store).await, written, "after {n} rows");
        }
        drop(inserter);
        drop(conn);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The pacing rule: pause until this share of the rows is due, not at all when late.
    #[test]
    fn pauses_catch_up_with_the_clock_and_never_wait_when_late() {
        let ms = std::time::Duration::from_millis;
        // A quarter written at 10 ms of 100: due at 25, so wait 15.
        assert_eq!(pace(ms(100), 250, 1_000, ms(10)), Some(ms(15)));
        // Late: no pause.
        assert_eq!(pace(ms(100), 250, 1_000, ms(30)), None);
        assert_eq!(pace(ms(100), 250, 1_000, ms(25)), None);
        // No spread: never.
        assert_eq!(pace(std::time::Duration::ZERO, 1, 1_000, std::time::Duration::ZERO), None);
        // Capped.
        assert_eq!(pace(ms(10_000), 500, 1_000, ms(0)), Some(MAX_PAUSE));
        assert_eq!(PIECE_ROWS, 64);
    }

    /// The descriptors this process has open on `path`.
    fn open_descriptors(path: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target == path)
            .count()
    }

    /// The thread finalizes its statements and closes its connection once the store is gone:
    /// a connection left open (or one kept alive by an unfinalized statement) keeps a
    /// descriptor on the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_thread_closes_its_connection_with_the_store() {
        let dir = std::env::temp_dir().join(format!("sluice_log_writer_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("x.db");
        let store = Store::open(db.to_str().unwrap(), 2).await.unwrap();
        assert!(store.log_writer.is_some());
        // Three rows: the two- and one-row INSERTs get prepared.
        let logs = (0..3).map(|i| SpendLogRecord { request_id: format!("r{i}"), ..Default::default() }).collect();
        store.insert_spend_logs(logs).await.unwrap();
        assert!(open_descriptors(&db) >= 2, "the pool's connection and the writer's");
        store.pool().unwrap().close().await;
        assert_eq!(open_descriptors(&db), 1, "the writer's connection");
        drop(store);
        let started = std::time::Instant::now();
        while open_descriptors(&db) > 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "the spend-log connection stayed open");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
