//! Turning a database URL into a connection pool: which backend it names, the SQLite file to
//! create, pool settings per backend, and error messages that name the database but never carry
//! its password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection};

use crate::sqlite_file::{self, FileId};
use crate::{Backend, Result, StoreError};

/// How long a caller waits for a PostgreSQL connection before giving up: short, so a database
/// that is down fails requests fast instead of stacking them up.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// SQLite waits this long for another connection's write lock: sqlx's default, which it gives
/// every connection of the pool, and what the spend-log connection (`log_writer`) sets.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pages of 16 KiB for a new SQLite file (SQLite's default is 4 KiB). The spend log appends a
/// row per request to four B-trees, and every page it fills costs a write of its own: larger
/// pages mean fewer writes and reads per row and fewer page splits (bench/README.md). SQLite
/// applies it only to a database without tables, so an existing file keeps its page size (a
/// `VACUUM` outside WAL mode would change it).
pub(crate) const SQLITE_PAGE_SIZE_PRAGMA: &str = "PRAGMA page_size = 16384";
/// Page cache of each SQLite connection: 512 KiB (SQLite's default is 2 MiB).
pub(crate) const SQLITE_CACHE_PRAGMA: &str = "PRAGMA cache_size = -512";
/// Statement journals in memory. Each multi-row INSERT of a spend-log batch runs inside a
/// transaction, so SQLite keeps the pages it changes in a statement journal, which by default
/// spills to a temporary file past 64 KiB: a file created, written page by page (two `pwrite`s
/// per page) and deleted for every chunk of a batch, about half of all the writes the spend log
/// made. A chunk's journal is at most its pages (a few hundred KiB), freed when it ends.
pub(crate) const SQLITE_TEMP_STORE_PRAGMA: &str = "PRAGMA temp_store = MEMORY";
/// The journal of every SQLite file (see `connect`): created and deleted with each transaction.
/// A journal kept between transactions (`PERSIST`) costs a little less, but left beside a deleted
/// database it makes SQLite refuse even to read the open file, and reading it is how a deleted
/// file is restored (see `sqlite_file`).
pub(crate) const SQLITE_JOURNAL_PRAGMA: &str = "PRAGMA journal_mode = DELETE";
/// What sqlx runs on each SQLite connection it opens, unasked (its defaults; the rest of
/// SQLite's settings it leaves alone). The spend-log connection runs it too.
pub(crate) const SQLX_SQLITE_PRAGMAS: &str = "PRAGMA foreign_keys = ON";
/// Connections to a SQLite file, at most (see `open`).
const SQLITE_MAX_CONNECTIONS: u32 = 2;
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed database URL.
pub(crate) struct Target {
    pub(crate) backend: Backend,
    /// The URL handed to sqlx.
    url: String,
    /// What error messages show: credentials and query string removed.
    pub(crate) display: String,
    /// Strings that must never appear in a message (the password, raw and percent-decoded).
    secrets: Vec<String>,
    memory: bool,
    /// A SQLite file named without URL options of the user's (which a second connection opened
    /// another way could not honour).
    plain_file: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let (display, secrets) = redact(url);
            return Ok(Target {
                backend: Backend::Postgres,
                url: url.to_owned(),
                display,
                secrets,
                memory: false,
                plain_file: false,
            });
        }
        let rest = if let Some(r) = url.strip_prefix("sqlite://") {
            r
        } else if let Some(r) = url.strip_prefix("sqlite:") {
            r
        } else if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or_default();
            return Err(StoreError::Other(format!(
                "unsupported database URL scheme '{scheme}': use postgres://…, sqlite://path, sqlite::memory: \
                 or a file path"
            )));
        } else {
            url
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path == ":memory:" || path.is_empty() || query.is_some_and(|q| q.contains("mode=memory")) {
            return Ok(Target {
                backend: Backend::Sqlite,
                url: "sqlite::memory:".to_owned(),
                display: "sqlite::memory:".to_owned(),
                secrets: Vec::new(),
                memory: true,
                plain_file: false,
            });
        }
        // `sqlite:` followed by the path (not `sqlite://`), so the url crate does not read the
        // first path segment as a host name and lower-case it.
        let mut sqlx_url = format!("sqlite:{}", encode_path(path));
        match query {
            Some(q) if q.contains("mode=") => sqlx_url.push_str(&format!("?{q}")),
            Some(q) => sqlx_url.push_str(&format!("?{q}&mode=rwc")),
            // Never created by a connection: `open` creates the file, and a connection that
            // created one where the opened file was deleted would corrupt it (`sqlite_file`).
            None => sqlx_url.push_str("?mode=rw"),
        }
        Ok(Target {
            backend: Backend::Sqlite,
            url: sqlx_url,
            display: path.to_owned(),
            secrets: Vec::new(),
            memory: false,
            plain_file: query.is_none(),
        })
    }

    /// Whether spend logs get a connection of their own (`log_writer`): a SQLite file opened
    /// with the settings sluice chooses.
    pub(crate) fn own_log_connection(&self) -> bool {
        self.plain_file
    }

    /// A SQLite file opened with the settings sluice chooses, whose deletion or replacement
    /// sluice watches for and recovers from (`sqlite_file`): the path made absolute.
    pub(crate) fn watched_file(&self) -> Result<Option<PathBuf>> {
        if !self.plain_file {
            return Ok(None);
        }
        let path = std::path::absolute(&self.display).map_err(|e| {
            StoreError::Unavailable(format!("cannot resolve the SQLite database path {}: {e}", self.display))
        })?;
        Ok(Some(path))
    }

    /// Creates the directory and an empty database file at `path` if missing; the file's
    /// identity, which the pool's connections check before they use it.
    pub(crate) fn create_file(&self, path: &Path) -> Result<FileId> {
        self.create_parent_dir()?;
        sqlite_file::create(path).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create SQLite database {}: {e}; check that the path is writable",
                path.display()
            ))
        })
    }

    /// Removes the password from a message (sqlx errors should not contain it, but this is the
    /// one place where a leak would matter).
    pub(crate) fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        for s in &self.secrets {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// PostgreSQL only: a typed pool for the few reads of many rows (the daily summary), where
    /// the `Any` driver's copy of every row into its own shape was a fifth of the time. Lazy: it
    /// connects on its first read, at most two connections.
    ///
    /// Its sessions never plan a sequential scan. Their one read is a date range of the daily
    /// aggregates, a table written day by day and so in date order, and PostgreSQL, costing
    /// each index page as a random disk read, chose to read the whole table: a week of 30 days
    /// (70,000 rows of 300,000) took 72–97 ms that way against 28–50 ms by the primary key's
    /// date range (bench/README.md, nineteenth session). A range covering the whole table costs
    /// about the same either way.
    pub(crate) fn bulk_reads(&self) -> Result<Option<sqlx::PgPool>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET enable_seqscan = off").execute(conn).await?;
                    Ok(())
                })
            })
            .connect_lazy(&self.url)
            .map_err(|e| self.unavailable(&e))?;
        Ok(Some(pool))
    }

    /// Opens the pool and checks that one connection works. `file`: the watched SQLite file
    /// (see [`Self::watched_file`]) and the identity every connection checks it has.
    pub(crate) async fn connect(&self, pool_size: u32, file: Option<(&Path, FileId)>) -> Result<AnyPool> {
        sqlx::any::install_default_drivers();
        let pool_size = pool_size.max(1);
        let options = match (self.backend, self.memory) {
            (Backend::Postgres, _) => {
                AnyPoolOptions::new().max_connections(pool_size).acquire_timeout(PG_ACQUIRE_TIMEOUT)
            }
            // Every new connection to `sqlite::memory:` would be a new, empty database, so the
            // pool holds exactly one connection and never lets it go.
            (Backend::Sqlite, true) => AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT),
            (Backend::Sqlite, false) => {
                self.create_parent_dir()?;
                let expect = file.map(|(path, id)| (path.to_owned(), id));
                let mut options = AnyPoolOptions::new();
                if expect.is_some() {
                    // A connection is opened again only when one fails, never on a timer: each
                    // new one is a chance to open a file other than the one the rest have open.
                    options = options.idle_timeout(None).max_lifetime(None);
                }
                // SQLite has one writer at a time whatever the pool, and each connection keeps its
                // own page cache (and sqlx a thread): two serve a write beside a read.
                options
                    .max_connections(pool_size.min(SQLITE_MAX_CONNECTIONS))
                    .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                    // SQLite's default page cache is 2 MiB per connection, allocated outside
                    // sluice's allocator; the operating system caches the file anyway, and the
                    // gateway's working set (keys, appended log rows) is small.
                    .after_connect(move |conn, _| {
                        let expect = expect.clone();
                        Box::pin(async move {
                            // Before anything reads the file (and maps its `-shm`).
                            if let Some((path, id)) = &expect {
                                if sqlite_file::identity(path).ok() != Some(*id) {
                                    return Err(sqlx::Error::Io(std::io::Error::new(
                                        std::io::ErrorKind::NotFound,
                                        format!("{} is no longer the database file sluice opened", path.display()),
                                    )));
                                }
                            }
                            sqlx::query(SQLITE_PAGE_SIZE_PRAGMA).execute(&mut *conn).await?;
                            sqlx::query(SQLITE_CACHE_PRAGMA).execute(&mut *conn).await?;
                            sqlx::query(SQLITE_TEMP_STORE_PRAGMA).execute(conn).await?;
                            Ok(())
                        })
                    })
            }
        };
        // A connection goes back to the pool after its transaction failed, with sqlx's rollback
        // queued. When SQLite already ended the transaction itself (it does on an I/O error, a
        // full disk or `OR ROLLBACK`), that ROLLBACK fails and sqlx goes on counting the
        // transaction as open, so every later `BEGIN IMMEDIATE` on the connection fails: such a
        // connection is closed instead of handed out again.
        // (Not `sqlite::memory:`, whose one connection is the database.)
        let options = if self.memory {
            options
        } else {
            options.before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
        };
        let pool = options.connect(&self.url).await.map_err(|e| self.unavailable(&e))?;
        if self.backend == Backend::Sqlite && !self.memory {
            // A rollback journal, not WAL. WAL keeps its index in a memory-mapped `-shm` file, and
            // a mapped page that can no longer be written (the file made immutable, truncated, or
            // its disk gone) is not an error code but a SIGBUS that kills the process: under load,
            // `chattr +i` on the files or truncating `-shm` did exactly that. With a journal every
            // fault is an error SQLite returns, and spend waits in memory until writes work again.
            // WAL's gain is readers beside the writer, and nothing here needs it: requests never
            // read the database, and spend is written in a few batched transactions a second. The
            // mode is stored in the file, so a database left in WAL mode is switched back here;
            // that needs the file to itself, and while another process has it open it stays in
            // WAL mode rather than keep sluice from opening it.
            let _ = sqlx::query(SQLITE_JOURNAL_PRAGMA).execute(&pool).await;
        }
        Ok(pool)
    }

    pub(crate) fn create_parent_dir(&self) -> Result<()> {
        let Some(parent) = Path::new(&self.display).parent() else { return Ok(()) };
        if parent.as_os_str().is_empty() || parent.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create directory {} for the SQLite database: {e}; create it or choose another path",
                parent.display()
            ))
        })
    }

    pub(crate) fn unavailable(&self, e: &sqlx::Error) -> StoreError {
        let hint = match self.backend {
            Backend::Postgres => {
                "check that PostgreSQL is running and that the host, port, user, password and \
                                  database in the URL are right"
            }
            Backend::Sqlite => "check that the path is writable",
        };
        let what = match self.backend {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite database",
        };
        StoreError::Unavailable(self.scrub(&format!("cannot open {what} at {}: {e}; {hint}", self.display)))
    }
}

/// `scheme://user:pw@host/db?params` → (`scheme://user@host/db`, [pw, decoded pw, …]). Query
/// parameters are dropped from the display because libpq-style URLs may carry `password=` there.
fn redact(url: &str) -> (String, Vec<String>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let mut secrets = Vec::new();
    let shown = match rest.rsplit_once('@') {
        Some((userinfo, hostpart)) => match userinfo.split_once(':') {
            Some((user, pw)) => {
                secrets.push(pw.to_owned());
                secrets.push(percent_decode(pw));
                format!("{user}@{hostpart}")
            }
            None => format!("{userinfo}@{hostpart}"),
        },
        None => rest.to_owned(),
    };
    for pair in query.unwrap_or_default().split('&') {
        if let Some(("password", pw)) = pair.split_once('=') {
            secrets.push(pw.to_owned());
            secrets.push(percent_decode(pw));
        }
    }
    (format!("{scheme}://{shown}"), secrets)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Escapes the characters that would end or change the path part of a `sqlite:` URL; sqlx
/// percent-decodes the path again.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' | ' ' | '"' | '<' | '>' | '`' | '{' | '}' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        let (shown, secrets) = redact("postgres://u:s%40cret@db.example:5432/app?sslmode=require&password=x2");
        assert_eq!(shown, "postgres://u@db.example:5432/app");
        assert!(secrets.contains(&"s@cret".to_owned()));
        assert!(secrets.contains(&"x2".to_owned()));
    }

    #[test]
    fn sqlite_urls() {
        let t = Target::parse("/tmp/a b/x.db").unwrap();
        assert_eq!(t.url, "sqlite:/tmp/a%20b/x.db?mode=rw");
        let t = Target::parse("sqlite://data/x.db").unwrap();
        assert_eq!(t.url, "sqlite:data/x.db?mode=rw");
        let t = Target::parse("sqlite://data/x.db?busy_timeout=1").unwrap();
        assert_eq!(t.url, "sqlite:data/x.db?busy_timeout=1&mode=rwc");
        assert!(Target::parse("sqlite::memory:").unwrap().memory);
        assert!(Target::parse("mysql://x").is_err());
        assert_eq!(Target::parse("postgresql://a@b/c").unwrap().backend, Backend::Postgres);
    }
}
