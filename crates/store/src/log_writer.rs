//! Spend-log rows into a SQLite file, on a connection and a thread of their own.
//!
//! Every proxied request writes one row. Through sqlx a row cost about as much again as SQLite's
//! own insert (each text copied and freed, argument vectors built and dropped, a round trip to
//! sqlx's worker per statement), so for a SQLite file the rows go to a dedicated thread holding a
//! raw connection ([`crate::sqlite_raw`]) with its INSERTs prepared once and the records' texts
//! bound where they lie. The async side sends a batch over a channel and awaits the answer: no
//! runtime thread ever waits on SQLite.
//!
//! The thread writes a batch in pieces with a pause after each (see [`PIECES_PER_BATCH`]): a
//! gateway pinned to one core shares it with this thread, and a batch written in one go held the
//! core for whole scheduler ticks while every request in flight waited behind it.
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

/// A batch is written in this many pieces at most, each followed by a pause as long as the piece
/// took, so the thread gives the core back between pieces instead of running until the scheduler
/// takes it away: on a saturated core that is the next tick, and every request in flight waited
/// that long (bench/README.md, twelfth session). Counting pieces per batch rather than rows per
/// piece keeps the thread from falling behind: however long the batch, it waits through at most
/// `PIECES_PER_BATCH - 1` pauses of at most [`MAX_PAUSE`], so a busier gateway gets longer pieces,
/// never a growing backlog. A lower scheduling priority would not do: a saturated core is never
/// idle, so the thread would starve, and it keeps the normal one.
const PIECES_PER_BATCH: usize = 32;
/// A pause is never longer than this, whatever the piece before it took (one that ran long
/// because the core was taken from it), so a batch's pauses add a bounded time.
const MAX_PAUSE: Duration = Duration::from_millis(5);

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
        reply: oneshot::Sender<Reply>,
    },
    /// Close the connection (answered once it is closed); inserts fail until the next `Open`.
    Close(oneshot::Sender<()>),
    /// Open the file again.
    Open(oneshot::Sender<sqlite_raw::Result<()>>),
    /// Copy the whole database, as this connection sees it, into a new file.
    Copy {
        to: String,
        reply: oneshot::Sender<sqlite_raw::Result<()>>,
    },
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

    /// Inserts `logs` in one transaction. On success the vector comes back empty, its capacity
    /// kept; on failure nothing was written and the rows come back with the error.
    pub(crate) async fn insert(
        &self,
        logs: Vec<SpendLogRecord>,
    ) -> std::result::Result<Vec<SpendLogRecord>, LogsNotWritten> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job::Insert { logs, reply }) {
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
                Ok(Job::Insert { logs, reply }) => {
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
            Ok(Job::Insert { mut logs, reply }) => {
                let result = inserter.write(&logs, &mut std::thread::sleep);
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
}

impl<'c> Inserter<'c> {
    fn new(conn: &'c Connection) -> sqlite_raw::Result<Inserter<'c>> {
        Ok(Inserter {
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

    /// The whole batch or nothing, in pieces of [`piece_rows`] with a `pause` after each but the
    /// last. The pauses fall inside the transaction: a commit per piece would multiply the
    /// journal's syncs. Another connection's write (the management API's) waits the longer for
    /// it, within the busy timeout.
    fn write(&mut self, logs: &[SpendLogRecord], pause: &mut dyn FnMut(Duration)) -> sqlite_raw::Result<()> {
        self.begin.execute(|_| {})?;
        let mut result = Ok(());
        let mut rest = logs;
        let per_piece = piece_rows(logs.len());
        let mut in_piece = 0;
        let mut piece_started = Instant::now();
        while !rest.is_empty() && result.is_ok() {
            let (chunk, after) = rest.split_at(spend::chunk_rows(Backend::Sqlite, rest.len()));
            result = self.insert(chunk);
            rest = after;
            in_piece += chunk.len();
            if in_piece >= per_piece && !rest.is_empty() {
                pause(piece_started.elapsed().min(MAX_PAUSE));
                in_piece = 0;
                piece_started = Instant::now();
            }
        }
        let result = result.and_then(|()| self.commit.execute(|_| {}));
        // A failed COMMIT (busy) leaves the transaction open; a failed INSERT may or may not
        // have ended it.
        if result.is_err() && self.conn.in_transaction() {
            let _ = self.rollback.execute(|_| {});
        }
        result
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

/// Rows per piece of a batch of `rows`: whole INSERTs, and at most [`PIECES_PER_BATCH`] pieces.
fn piece_rows(rows: usize) -> usize {
    rows.div_ceil(PIECES_PER_BATCH).next_multiple_of(SQLITE_MAX_LOG_ROWS)
}

/// `v` as JSON in `buf` (the text `codec::json_text` gives).
fn json_text<'b>(buf: &'b mut Vec<u8>, v: &impl serde::Serialize) -> sqlite_raw::Result<&'b str> {
    buf.clear();
    serde_json::to_writer(&mut *buf, v).map_err(|e| sqlite_raw::Error::misuse(format!("JSON: {e}")))?;
    std::str::from_utf8(buf).map_err(|e| sqlite_raw::Error::misuse(format!("JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{open, piece_rows, Inserter, PIECES_PER_BATCH};
    use crate::{SpendLogRecord, Store};
    use std::time::Duration;

    fn rows(batch: usize, n: usize) -> Vec<SpendLogRecord> {
        (0..n).map(|i| SpendLogRecord { request_id: format!("b{batch}-r{i}"), ..Default::default() }).collect()
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM sluice_spend_logs").fetch_one(&store.pool().unwrap()).await.unwrap()
    }

    /// A batch goes in with a pause after each piece but the last, never more than
    /// `PIECES_PER_BATCH` pieces however long the batch (so the thread cannot fall behind a busy
    /// gateway), and every row lands, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_written_whole_in_paced_pieces() {
        let dir = std::env::temp_dir().join(format!("sluice_log_pieces_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("p.db");
        let store = Store::open(db.to_str().unwrap(), 2).await.unwrap();
        let conn = open(db.to_str().unwrap()).unwrap();
        let mut inserter = Inserter::new(&conn).unwrap();
        let mut written = 0;
        // (rows, pauses): one INSERT, no pause; small batches pause after every full INSERT; long
        // ones after every 1/32nd, rounded up to whole INSERTs (10,000 → pieces of 320).
        let batches = [(1, 0), (64, 0), (100, 1), (2_048, 31), (10_000, 31), (100_000, 31)];
        for (batch, (n, pauses)) in batches.into_iter().enumerate() {
            let mut paused: Vec<Duration> = Vec::new();
            inserter.write(&rows(batch, n), &mut |d| paused.push(d)).unwrap();
            assert_eq!(paused.len(), pauses, "{n} rows");
            assert!(paused.len() < PIECES_PER_BATCH);
            assert!(paused.iter().all(|d| *d <= super::MAX_PAUSE));
            written += n as i64;
            assert_eq!(count(&store).await, written, "after {n} rows");
        }
        assert_eq!(piece_rows(100_000), 3_136);
        drop(inserter);
        drop(conn);
        let _ = std::fs::remove_dir_all(dir);
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
