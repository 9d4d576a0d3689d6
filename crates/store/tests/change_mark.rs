//! `Store::change_mark`, which replicas without Redis poll every second: it moves with every
//! create, update and delete of a key, user, team or organization, and stays put while only spend is written.

use sluice_store::{KeyRecord, OrganizationRecord, SpendIncrement, Spender, Store, TeamRecord, UserRecord};

#[tokio::test]
async fn the_mark_moves_with_management_writes_and_not_with_spend() {
    let dir = std::env::temp_dir().join(format!("sluice_change_mark_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("m.db").display()), 2).await.unwrap();
    let empty = store.change_mark().await.unwrap();
    assert_eq!(empty, [0; 8]);

    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms);
    let mut key = KeyRecord { token: "t1".into(), updated_at: at(1_000), ..Default::default() };
    store.insert_key(&key).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [1, 1_000, 0, 0, 0, 0, 0, 0]);

    // Spend written by the batch writer: no change to poll for.
    let inc = SpendIncrement { spender: Spender::Key("t1".into()), amount: 0.5, per_model: vec![] };
    store.apply_increments(&[inc]).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [1, 1_000, 0, 0, 0, 0, 0, 0]);

    // Blocked (an update stamps updated_at), then deleted.
    key.blocked = true;
    key.updated_at = at(2_000);
    store.update_key(&key).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [1, 2_000, 0, 0, 0, 0, 0, 0]);
    store.insert_user(&UserRecord { user_id: "u".into(), updated_at: at(3_000), ..Default::default() }).await.unwrap();
    store.insert_team(&TeamRecord { team_id: "t".into(), updated_at: at(4_000), ..Default::default() }).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [1, 2_000, 1, 3_000, 1, 4_000, 0, 0]);
    store.delete_keys(&["t1".to_string()]).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [0, 0, 1, 3_000, 1, 4_000, 0, 0]);
    // Organizations: an update stamps updated_at, spend does not move the mark.
    let mut org = OrganizationRecord { organization_id: "o".into(), updated_at: at(5_000), ..Default::default() };
    store.insert_organization(&org).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [0, 0, 1, 3_000, 1, 4_000, 1, 5_000]);
    let inc = SpendIncrement { spender: Spender::Organization("o".into()), amount: 0.5, per_model: vec![] };
    store.apply_increments(&[inc]).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [0, 0, 1, 3_000, 1, 4_000, 1, 5_000]);
    org.updated_at = at(6_000);
    store.update_organization(&org).await.unwrap();
    assert_eq!(store.change_mark().await.unwrap(), [0, 0, 1, 3_000, 1, 4_000, 1, 6_000]);
    let _ = std::fs::remove_dir_all(dir);
}
