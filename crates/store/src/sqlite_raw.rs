//! The few SQLite C calls the spend-log writer makes, behind a safe API: a connection that stays
//! on the thread that opened it, statements prepared once and kept, and parameters bound without
//! copying them (`SQLITE_STATIC`). sqlx copies every bound text (`SQLITE_TRANSIENT`) and frees it
//! again after each run, which for a spend-log row costs about as much as SQLite's own insert.
//!
//! This is the crate's only `unsafe` code.

use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::ptr;
use std::time::Duration;

use libsqlite3_sys as ffi;

/// What SQLite said went wrong: its extended result code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) code: c_int,
    pub(crate) message: String,
}

impl Error {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_IOERR`, …) of an extended one.
    pub(crate) fn primary(&self) -> c_int {
        self.code & 0xff
    }

    /// Worth retrying later: busy or locked past the timeout, I/O failed, disk or memory full, the
    /// file read-only or not there.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.primary(),
            ffi::SQLITE_BUSY
                | ffi::SQLITE_LOCKED
                | ffi::SQLITE_IOERR
                | ffi::SQLITE_FULL
                | ffi::SQLITE_CANTOPEN
                | ffi::SQLITE_READONLY
                | ffi::SQLITE_NOMEM
                | ffi::SQLITE_PROTOCOL
        )
    }

    /// The connection is not open (for now).
    pub(crate) fn closed(message: impl Into<String>) -> Error {
        Error::new(ffi::SQLITE_CANTOPEN, message)
    }

    /// A failure of the caller's, not SQLite's.
    pub(crate) fn misuse(message: impl Into<String>) -> Error {
        Error::new(ffi::SQLITE_MISUSE, message)
    }

    fn new(code: c_int, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.code)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// An open connection. It holds a raw pointer, so it is neither `Send` nor `Sync`: it stays on
/// the thread that opened it, which is what `SQLITE_OPEN_NOMUTEX` asks of its user.
pub(crate) struct Connection {
    db: *mut ffi::sqlite3,
}

impl Connection {
    /// Opens an existing database file for reading and writing (never creating it), with
    /// extended result codes and `busy_timeout` to wait for another connection's lock.
    pub(crate) fn open(path: &str, busy_timeout: Duration) -> Result<Connection> {
        let c_path = CString::new(path)
            .map_err(|_| Error::new(ffi::SQLITE_CANTOPEN, "the database path contains a NUL byte"))?;
        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_NOMUTEX
            | ffi::SQLITE_OPEN_PRIVATECACHE
            | ffi::SQLITE_OPEN_EXRESCODE;
        let mut db = ptr::null_mut();
        // SAFETY: `c_path` is NUL-terminated and outlives the call; `db` is a valid out-pointer.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, ptr::null()) };
        if db.is_null() {
            return Err(Error::new(ffi::SQLITE_NOMEM, "SQLite could not allocate a connection"));
        }
        // From here on `Drop` closes the handle, whatever happens below (SQLite hands out a
        // handle to close even when opening failed).
        let conn = Connection { db };
        conn.check(rc)?;
        let ms = c_int::try_from(busy_timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: `conn.db` is an open connection handle.
        let rc = unsafe { ffi::sqlite3_busy_timeout(conn.db, ms) };
        conn.check(rc)?;
        Ok(conn)
    }

    /// Runs SQL that returns nothing worth reading (`PRAGMA`s), all its statements in turn.
    pub(crate) fn exec(&self, sql: &str) -> Result<()> {
        let c_sql = CString::new(sql).map_err(|_| Error::new(ffi::SQLITE_MISUSE, "SQL text contains a NUL byte"))?;
        // SAFETY: `self.db` is open, `c_sql` is NUL-terminated and outlives the call; with no
        // callback and no error out-pointer SQLite keeps nothing of ours.
        let rc = unsafe { ffi::sqlite3_exec(self.db, c_sql.as_ptr(), None, ptr::null_mut(), ptr::null_mut()) };
        self.check(rc)
    }

    /// Prepares one statement to be kept and run many times (`SQLITE_PREPARE_PERSISTENT`).
    pub(crate) fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        let len = c_int::try_from(sql.len()).map_err(|_| Error::new(ffi::SQLITE_TOOBIG, "SQL text too long"))?;
        let mut raw = ptr::null_mut();
        // SAFETY: `self.db` is open; `sql` is valid for `len` bytes (no NUL terminator is needed
        // when the length is given); `raw` is a valid out-pointer; a null tail pointer is allowed.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db,
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                ptr::null_mut(),
            )
        };
        self.check(rc)?;
        if raw.is_null() {
            return Err(Error::new(ffi::SQLITE_MISUSE, "no SQL statement to prepare"));
        }
        // SAFETY: `raw` is a statement just prepared on this connection.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(raw) };
        Ok(Statement { raw, params, conn: self })
    }

    /// Whether a transaction is open (SQLite leaves one open when `COMMIT` fails busy).
    pub(crate) fn in_transaction(&self) -> bool {
        // SAFETY: `self.db` is open.
        unsafe { ffi::sqlite3_get_autocommit(self.db) == 0 }
    }

    fn check(&self, rc: c_int) -> Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error(rc))
        }
    }

    /// The connection's last error, `rc` if it has none on record.
    fn error(&self, rc: c_int) -> Error {
        // SAFETY: `self.db` is a connection handle (possibly one that failed to open, which
        // `sqlite3_errmsg` and `sqlite3_extended_errcode` accept). The message is a
        // NUL-terminated string owned by SQLite, valid until the next call on the connection:
        // it is copied at once.
        unsafe {
            let msg = ffi::sqlite3_errmsg(self.db);
            let message = if msg.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(msg).to_string_lossy().into()
            };
            let code = ffi::sqlite3_extended_errcode(self.db);
            Error { code: if code == ffi::SQLITE_OK { rc } else { code }, message }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: `self.db` came from `sqlite3_open_v2` and is closed only here. Every
        // `Statement` borrows the connection, so all are finalized by now and the close cannot
        // fail busy (which would leak the connection).
        unsafe {
            ffi::sqlite3_close(self.db);
        }
    }
}

/// A prepared statement that returns no rows (`INSERT`, `BEGIN`, `COMMIT`, …), finalized when
/// dropped. It borrows its connection, so it cannot outlive it.
pub(crate) struct Statement<'c> {
    raw: *mut ffi::sqlite3_stmt,
    params: c_int,
    conn: &'c Connection,
}

impl Statement<'_> {
    /// Binds every parameter through `bind` (in order, each exactly once), runs the statement
    /// to completion and resets it.
    ///
    /// Texts are bound without a copy: SQLite reads them while the statement runs, and `'a`,
    /// a lifetime parameter of this call, outlives it. After the reset the statement still holds
    /// those pointers, but nothing reads them: the next run binds every parameter afresh (a run
    /// that binds fewer or more is refused before it steps), and finalizing reads no values.
    pub(crate) fn execute<'a>(&mut self, bind: impl FnOnce(&mut Binder<'a>)) -> Result<()> {
        let mut binder = Binder { stmt: self.raw, next: 1, rc: ffi::SQLITE_OK, _values: PhantomData };
        bind(&mut binder);
        let bound = binder.next - 1;
        if binder.rc != ffi::SQLITE_OK {
            return Err(self.conn.error(binder.rc));
        }
        if bound != self.params {
            return Err(Error::new(
                ffi::SQLITE_RANGE,
                format!("{bound} values bound to a statement with {} parameters", self.params),
            ));
        }
        // SAFETY: `self.raw` is a live statement of `self.conn`, on the connection's thread, and
        // every parameter was bound just now to values that outlive this call.
        let rc = unsafe { ffi::sqlite3_step(self.raw) };
        // Read before the reset, which may replace the connection's error message.
        let result = match rc {
            ffi::SQLITE_DONE => Ok(()),
            ffi::SQLITE_ROW => Err(Error::new(ffi::SQLITE_MISUSE, "the statement returned rows")),
            rc => Err(self.conn.error(rc)),
        };
        // SAFETY: as above. Its return value repeats the step's error, already taken.
        unsafe {
            ffi::sqlite3_reset(self.raw);
        }
        result
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.raw` came from `sqlite3_prepare_v3` on a connection that is still open
        // (the borrow guarantees it) and is finalized only here.
        unsafe {
            ffi::sqlite3_finalize(self.raw);
        }
    }
}

/// Binds one run's parameters, in order. A failure is kept and reported by
/// [`Statement::execute`]; later binds are skipped.
pub(crate) struct Binder<'a> {
    stmt: *mut ffi::sqlite3_stmt,
    /// 1-based index of the next parameter.
    next: c_int,
    /// The first bind that failed.
    rc: c_int,
    /// Texts bound must live for `'a`.
    _values: PhantomData<&'a str>,
}

impl<'a> Binder<'a> {
    pub(crate) fn int(&mut self, v: i64) {
        // SAFETY: `self.stmt` is live (the `execute` call that made this binder holds it).
        self.bound(|stmt, i| unsafe { ffi::sqlite3_bind_int64(stmt, i, v) });
    }

    pub(crate) fn real(&mut self, v: f64) {
        // SAFETY: as in `int`.
        self.bound(|stmt, i| unsafe { ffi::sqlite3_bind_double(stmt, i, v) });
    }

    pub(crate) fn null(&mut self) {
        // SAFETY: as in `int`.
        self.bound(|stmt, i| unsafe { ffi::sqlite3_bind_null(stmt, i) });
    }

    /// Binds `v` without copying it. An empty text stays an empty text: a `&str` never has a
    /// null pointer, which SQLite would store as NULL.
    pub(crate) fn text(&mut self, v: &'a str) {
        // SAFETY: as in `int`; `v` is valid for `v.len()` bytes for `'a`, which outlasts the run
        // (see `Statement::execute`), so SQLite may keep the pointer (`SQLITE_STATIC`).
        self.bound(|stmt, i| unsafe {
            ffi::sqlite3_bind_text64(
                stmt,
                i,
                v.as_ptr().cast::<c_char>(),
                v.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            )
        });
    }

    pub(crate) fn opt_text(&mut self, v: Option<&'a str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    fn bound(&mut self, bind: impl FnOnce(*mut ffi::sqlite3_stmt, c_int) -> c_int) {
        if self.rc == ffi::SQLITE_OK {
            self.rc = bind(self.stmt, self.next);
        }
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        Connection::open(":memory:", Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn binds_and_runs() {
        let conn = memory();
        // The checks fail the insert if a value arrives other than as bound.
        conn.exec(
            "CREATE TABLE t (a TEXT CHECK (typeof(a) = 'text' AND a IN ('héllo ✓', '')), \
             b BIGINT CHECK (b = -7), c DOUBLE PRECISION CHECK (c = 0.5), d TEXT CHECK (d IS NULL))",
        )
        .unwrap();
        let mut insert = conn.prepare("INSERT INTO t VALUES (?, ?, ?, ?)").unwrap();
        let texts = [String::from("héllo ✓"), String::new()];
        for s in &texts {
            insert
                .execute(|b| {
                    b.text(s);
                    b.int(-7);
                    b.real(0.5);
                    b.opt_text(None);
                })
                .unwrap();
        }
        let err = insert
            .execute(|b| {
                b.text("other");
                b.int(-7);
                b.real(0.5);
                b.null();
            })
            .unwrap_err();
        assert_eq!(err.primary(), ffi::SQLITE_CONSTRAINT, "{err}");
        // Too few or too many values: refused before anything runs.
        let err = insert.execute(|b| b.int(1)).unwrap_err();
        assert_eq!(err.code, ffi::SQLITE_RANGE);
        let err = insert
            .execute(|b| {
                for _ in 0..5 {
                    b.int(1);
                }
            })
            .unwrap_err();
        assert_eq!(err.primary(), ffi::SQLITE_RANGE);
        assert!(!conn.in_transaction());
        let mut begin = conn.prepare("BEGIN IMMEDIATE").unwrap();
        begin.execute(|_| {}).unwrap();
        assert!(conn.in_transaction());
    }

    #[test]
    fn errors_carry_the_message() {
        let conn = memory();
        let err = conn.prepare("INSERT INTO missing VALUES (1)").err().unwrap();
        assert_eq!(err.primary(), ffi::SQLITE_ERROR);
        assert!(err.message.contains("no such table: missing"), "{err}");
        conn.exec("CREATE TABLE t (a TEXT NOT NULL)").unwrap();
        let mut insert = conn.prepare("INSERT INTO t VALUES (?)").unwrap();
        let err = insert.execute(|b| b.null()).unwrap_err();
        assert_eq!(err.primary(), ffi::SQLITE_CONSTRAINT);
        assert!(err.message.contains("NOT NULL"), "{err}");
        // The statement is usable again after a failed run.
        insert.execute(|b| b.text("x")).unwrap();
        assert!(Connection::open("/nonexistent-dir/x.db", Duration::ZERO).is_err());
    }
}
