//! Test databases: a SQLite file in a fresh temp directory, `sqlite::memory:`, or a fresh
//! PostgreSQL database on the local server, each removed again when the test ends.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_store::Store;
use sqlx::Connection;

/// The server the PostgreSQL tests use (override with `SLUICE_TEST_PG`, a URL whose database
/// may create others).
pub fn pg_admin_url() -> String {
    std::env::var("SLUICE_TEST_PG").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
}

/// A name no other test (in this or a parallel run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub enum Kind {
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres(PgDb),
}

pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub kind: Kind,
}

impl TestDb {
    pub async fn sqlite_file() -> TestDb {
        let dir = std::env::temp_dir().join(unique("sluice_store"));
        // A directory that does not exist yet: `open` must create it.
        let url = format!("sqlite://{}", dir.join("nested").join("sluice.db").display());
        let store = Store::open(&url, 5).await.expect("open SQLite file");
        TestDb { store, url, kind: Kind::SqliteFile(dir) }
    }

    pub async fn sqlite_memory() -> TestDb {
        let url = "sqlite::memory:".to_owned();
        let store = Store::open(&url, 5).await.expect("open sqlite::memory:");
        TestDb { store, url, kind: Kind::SqliteMemory }
    }

    pub async fn postgres() -> TestDb {
        let db = PgDb::create().await;
        let store = Store::open(&db.url, 5).await.expect("open PostgreSQL test database");
        TestDb { store, url: db.url.clone(), kind: Kind::Postgres(db) }
    }

    /// Whether `url` can be opened again to reach the same data.
    pub fn reopenable(&self) -> bool {
        !matches!(self.kind, Kind::SqliteMemory)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::SqliteFile(dir) = &self.kind {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh PostgreSQL database, dropped (with its connections) when this goes away.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let admin = pg_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}). The PostgreSQL tests need it: start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (or set \
                 SLUICE_TEST_PG to a server URL)"
            )
        });
        let name = unique("sluice_store");
        // A generated identifier, not user input; CREATE DATABASE takes no parameters.
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        PgDb { url: format!("{base}/{name}"), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a separate thread with its own runtime can block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ =
                        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}
