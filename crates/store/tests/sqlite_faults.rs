//! The SQLite file failing under the store: a transaction SQLite ended by itself, the file
//! deleted (alone, with its companions, or with its directory) or replaced while open. Each test
//! checks what was kept, not only that nothing crashed.

mod common;

use sluice_store::{KeyRecord, Recovery, SpendIncrement, SpendLogFilter, SpendLogRecord, Spender, Store, StoreError};
use sqlx::Connection;
use std::path::{Path, PathBuf};

fn temp_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(common::unique(prefix))
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn other_connection(path: &Path, sql: &str) {
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn spend(token: &str, amount: f64) -> Vec<SpendIncrement> {
    vec![SpendIncrement { spender: Spender::Key(token.into()), amount, per_model: vec![("m".into(), amount)] }]
}

fn logs(ids: std::ops::Range<usize>) -> Vec<SpendLogRecord> {
    ids.map(|i| SpendLogRecord { request_id: format!("r{i}"), api_key: "k".into(), spend: 0.5, ..Default::default() })
        .collect()
}

async fn log_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> =
        store.spend_logs(&SpendLogFilter::default()).await.unwrap().into_iter().map(|l| l.request_id).collect();
    ids.sort();
    ids
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(|i| format!("r{i}")).collect();
    v.sort();
    v
}

/// SQLite ends a transaction itself on an I/O error or a full disk (here: a trigger's
/// `RAISE(ROLLBACK)`, which does the same). The connection must come back clean: before the
/// fix, sqlx's ROLLBACK failed, it went on counting the transaction as open, and every write
/// that got that pooled connection failed from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_sqlite_ended_itself_leaves_no_connection_stuck() {
    let dir = temp_dir("sluice_faults_rollback");
    let path = dir.join("x.db");
    let store = Store::open(&url(&path), 2).await.unwrap();
    store.insert_key(&KeyRecord { token: "k".into(), ..Default::default() }).await.unwrap();
    other_connection(
        &path,
        "CREATE TRIGGER fail BEFORE UPDATE ON sluice_keys BEGIN SELECT RAISE(ROLLBACK, 'disk I/O error'); END",
    )
    .await;
    let err = store.apply_increments(&spend("k", 1.0)).await.unwrap_err();
    assert!(err.to_string().contains("disk I/O error"), "{err}");
    other_connection(&path, "DROP TRIGGER fail").await;
    let mut failed = Vec::new();
    for i in 0..8 {
        if let Err(e) = store.apply_increments(&spend("k", 1.0)).await {
            failed.push(format!("write {i}: {e}"));
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
    let key = store.get_key("k").await.unwrap().unwrap();
    assert_eq!(key.spend, 8.0, "the failed write added nothing, the eight after it everything");
    let _ = std::fs::remove_dir_all(dir);
}

/// What is done to the file while the store has it open.
#[derive(Clone, Copy, Debug)]
enum Deletion {
    /// The database file alone (its `-wal` and `-shm` stay).
    File,
    /// `rm x.db*`.
    WithCompanions,
    /// The whole directory.
    Directory,
}

async fn a_deleted_file_is_restored(how: Deletion) {
    let dir = temp_dir("sluice_faults_deleted");
    let path = dir.join("data").join("x.db");
    let store = Store::open(&url(&path), 2).await.unwrap();
    store.insert_key(&KeyRecord { token: "k".into(), ..Default::default() }).await.unwrap();
    store.apply_increments(&spend("k", 1.5)).await.unwrap();
    store.insert_spend_logs(logs(0..3)).await.unwrap();

    match how {
        Deletion::File => std::fs::remove_file(&path).unwrap(),
        Deletion::WithCompanions => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        Deletion::Directory => std::fs::remove_dir_all(&dir).unwrap(),
    }

    // Noticed: nothing is written into the deleted file, and every write says so.
    let err = store.check_file().unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)) && err.to_string().contains("was deleted"), "{err}");
    assert!(store.insert_key(&KeyRecord { token: "lost".into(), ..Default::default() }).await.is_err());
    assert!(store.apply_increments(&spend("k", 1.0)).await.is_err());
    let refused = store.insert_spend_logs(logs(3..5)).await.unwrap_err();
    assert_eq!(refused.logs.len(), 2, "the rows come back to be retried");

    match store.recover().await.unwrap() {
        Recovery::Restored(msg) => assert!(msg.contains("restored"), "{msg}"),
        other => panic!("{how:?}: expected Restored, got {other:?}"),
    }
    assert_eq!(store.recover().await.unwrap(), Recovery::NotNeeded);
    store.check_file().unwrap();
    // Everything written before the deletion is there, and writes resume.
    let key = store.get_key("k").await.unwrap().unwrap();
    assert_eq!(key.spend, 1.5);
    assert_eq!(log_ids(&store).await, ids(0..3));
    store.apply_increments(&spend("k", 1.0)).await.unwrap();
    store.insert_spend_logs(refused.logs).await.unwrap();
    store.insert_key(&KeyRecord { token: "k2".into(), ..Default::default() }).await.unwrap();

    // And all of it is in the file at the path: a new start finds it.
    drop(store);
    let again = Store::open(&url(&path), 2).await.unwrap();
    assert_eq!(again.get_key("k").await.unwrap().unwrap().spend, 2.5);
    assert!(again.get_key("k2").await.unwrap().is_some());
    assert!(again.get_key("lost").await.unwrap().is_none());
    assert_eq!(log_ids(&again).await, ids(0..5));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_restored_from_the_open_connection() {
    a_deleted_file_is_restored(Deletion::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_with_its_wal_and_shm_is_restored() {
    a_deleted_file_is_restored(Deletion::WithCompanions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_directory_was_removed_is_restored() {
    a_deleted_file_is_restored(Deletion::Directory).await;
}

/// Another database moved over the open one (a restore from backup) is adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_file_is_adopted() {
    let dir = temp_dir("sluice_faults_replaced");
    let path = dir.join("x.db");
    let store = Store::open(&url(&path), 2).await.unwrap();
    store.insert_key(&KeyRecord { token: "old".into(), ..Default::default() }).await.unwrap();
    let source = dir.join("source.db");
    let source_store = Store::open(&url(&source), 2).await.unwrap();
    source_store.insert_key(&KeyRecord { token: "from-backup".into(), ..Default::default() }).await.unwrap();
    // A self-contained copy (no WAL beside it), as a backup would be.
    let backup = dir.join("backup.db");
    other_connection(&source, &format!("VACUUM INTO '{}'", backup.display())).await;
    std::fs::rename(&backup, &path).unwrap();

    let err = store.check_file().unwrap_err();
    assert!(err.to_string().contains("replaced"), "{err}");
    assert!(matches!(store.recover().await.unwrap(), Recovery::Switched(_)));
    assert!(store.get_key("from-backup").await.unwrap().is_some());
    assert!(store.get_key("old").await.unwrap().is_none());
    store.insert_spend_logs(logs(0..2)).await.unwrap();
    assert_eq!(log_ids(&store).await, ids(0..2));
    let _ = std::fs::remove_dir_all(dir);
}
