//! Every store behaviour, run against a SQLite file, `sqlite::memory:` and PostgreSQL.
//!
//! The PostgreSQL tests need the server at 127.0.0.1:5432 (user root, trust auth); they fail,
//! rather than skip, when it is down.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};
use sluice_store::*;

use common::{Kind, TestDb};
use sqlx::Connection;

fn t(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

/// Spend by name, as a [`DailySpend`] has it.
fn sums(v: Value) -> sluice_store::SpendByName {
    obj(v).into_iter().map(|(k, v)| (k, v.as_f64().unwrap())).collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn full_key(token: &str, alias: Option<&str>) -> KeyRecord {
    KeyRecord {
        token: token.to_owned(),
        key_name: Some("sk-...abcd".to_owned()),
        key_alias: alias.map(str::to_owned),
        user_id: Some("u1".to_owned()),
        team_id: Some("t1".to_owned()),
        models: vec!["gpt-4o".to_owned(), "claude".to_owned()],
        spend: 1.25,
        max_budget: Some(100.5),
        soft_budget: Some(80.0),
        budget_duration: Some("30d".to_owned()),
        budget_reset_at: Some(t(1_700_000_000_123)),
        expires: Some(t(1_800_000_000_456)),
        tpm_limit: Some(100_000),
        rpm_limit: Some(60),
        max_parallel_requests: Some(4),
        model_max_budget: obj(json!({"gpt-4o": 10.0})),
        model_spend: obj(json!({"gpt-4o": 1.25})),
        metadata: obj(json!({"tags": ["a", "b"], "model_rpm_limit": {"gpt-4o": 5}, "nested": {"x": null}})),
        aliases: obj(json!({"fast": "gpt-4o-mini"})),
        allowed_cache_controls: vec!["no-cache".to_owned(), "ttl".to_owned()],
        blocked: true,
        created_at: Some(t(1_690_000_000_001)),
        updated_at: Some(t(1_690_000_000_002)),
        created_by: Some("admin".to_owned()),
        updated_by: Some("admin2".to_owned()),
    }
}

fn full_user(id: &str) -> UserRecord {
    UserRecord {
        user_id: id.to_owned(),
        user_alias: Some("Alice".to_owned()),
        user_email: Some("alice@example.com".to_owned()),
        user_role: Some("internal_user".to_owned()),
        teams: vec!["t1".to_owned(), "t2".to_owned()],
        models: vec!["gpt-4o".to_owned()],
        spend: 2.5,
        max_budget: Some(20.0),
        budget_duration: Some("1mo".to_owned()),
        budget_reset_at: Some(t(1_700_000_000_999)),
        tpm_limit: Some(1000),
        rpm_limit: Some(10),
        max_parallel_requests: Some(2),
        model_max_budget: obj(json!({"claude": 3.0})),
        model_spend: obj(json!({"claude": 2.5})),
        metadata: obj(json!({"dept": "r&d"})),
        created_at: Some(t(1_600_000_000_000)),
        updated_at: Some(t(1_600_000_000_500)),
    }
}

fn full_team(id: &str) -> TeamRecord {
    TeamRecord {
        team_id: id.to_owned(),
        team_alias: Some("Research".to_owned()),
        organization_id: Some("org1".to_owned()),
        admins: vec!["u1".to_owned()],
        members: vec!["u1".to_owned(), "u2".to_owned()],
        members_with_roles: vec![
            TeamMember { user_id: Some("u1".to_owned()), user_email: None, role: "admin".to_owned() },
            TeamMember {
                user_id: Some("u2".to_owned()),
                user_email: Some("b@example.com".to_owned()),
                role: "user".to_owned(),
            },
        ],
        models: vec!["gpt-4o".to_owned()],
        spend: 7.0,
        max_budget: Some(1000.0),
        soft_budget: Some(900.0),
        budget_duration: Some("7d".to_owned()),
        budget_reset_at: Some(t(1_700_000_100_000)),
        tpm_limit: Some(5000),
        rpm_limit: Some(500),
        max_parallel_requests: Some(50),
        model_max_budget: obj(json!({"gpt-4o": 100.0})),
        model_spend: obj(json!({"gpt-4o": 7.0})),
        metadata: obj(json!({"cost_center": 42})),
        blocked: true,
        created_at: Some(t(1_650_000_000_000)),
        updated_at: Some(t(1_650_000_000_001)),
        model_aliases: obj(json!({"fast": "gpt-4o-mini"})),
    }
}

fn log(id: &str, key: &str, ms: i64, spend: f64) -> SpendLogRecord {
    SpendLogRecord {
        request_id: id.to_owned(),
        client_call_id: None,
        call_type: "acompletion".into(),
        api_key: key.into(),
        spend,
        total_tokens: 30,
        prompt_tokens: 10,
        completion_tokens: 20,
        start_time: t(ms),
        end_time: t(ms + 250),
        model: "gpt-4o".into(),
        model_id: Some("dep-1".into()),
        model_group: Some("gpt-4o".into()),
        custom_llm_provider: Some("openai".into()),
        api_base: Some("https://api.openai.com/v1".into()),
        user: Some("u1".to_owned()),
        team_id: Some("t1".to_owned()),
        end_user: Some("customer-9".to_owned()),
        metadata: obj(json!({"status": "success"})),
        request_tags: vec!["prod".to_owned()],
        status: "success".into(),
        ..Default::default()
    }
}

fn inc(spender: Spender, amount: f64, per_model: &[(&str, f64)]) -> SpendIncrement {
    SpendIncrement { spender, amount, per_model: per_model.iter().map(|(m, v)| (m.to_string(), *v)).collect() }
}

async fn write_logs(s: &Store, logs: &[SpendLogRecord]) {
    s.insert_spend_logs(logs.to_vec()).await.unwrap();
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

// --- behaviours ---

async fn migrations_are_idempotent(db: &TestDb) {
    assert_eq!(db.store.schema_version().await.unwrap(), SCHEMA_VERSION);
    db.store.insert_key(&full_key("k1", Some("a"))).await.unwrap();
    if db.reopenable() {
        for _ in 0..2 {
            let again = Store::open(&db.url, 2).await.unwrap();
            assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
            assert_eq!(again.get_key("k1").await.unwrap().unwrap(), full_key("k1", Some("a")));
        }
    }
    db.store.ping().await.unwrap();
    let expected = if db.url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
    assert_eq!(db.store.backend(), expected);
}

async fn key_round_trip(db: &TestDb) {
    let s = &db.store;
    let k = full_key("k1", Some("alias-1"));
    s.insert_key(&k).await.unwrap();
    assert_eq!(s.get_key("k1").await.unwrap().unwrap(), k);
    assert_eq!(s.key_by_alias("alias-1").await.unwrap().unwrap(), k);
    assert!(s.get_key("nope").await.unwrap().is_none());
    assert!(s.key_by_alias("nope").await.unwrap().is_none());

    // Every optional field empty.
    let bare = KeyRecord { token: "k2".to_owned(), ..Default::default() };
    s.insert_key(&bare).await.unwrap();
    assert_eq!(s.get_key("k2").await.unwrap().unwrap(), bare);
    assert_eq!(s.all_keys().await.unwrap(), vec![k, bare]);
}

async fn key_conflicts(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&full_key("k1", Some("dup"))).await.unwrap();
    match s.insert_key(&full_key("k2", Some("dup"))).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("alias 'dup'"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match s.insert_key(&full_key("k1", Some("other"))).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("token"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Any number of keys without an alias.
    s.insert_key(&full_key("k3", None)).await.unwrap();
    s.insert_key(&full_key("k4", None)).await.unwrap();
    // An update may not steal an alias either.
    match s.update_key(&full_key("k3", Some("dup"))).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("alias 'dup'"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    s.insert_user(&full_user("u1")).await.unwrap();
    assert!(matches!(s.insert_user(&full_user("u1")).await, Err(StoreError::Conflict(_))));
    s.insert_team(&full_team("t1")).await.unwrap();
    assert!(matches!(s.insert_team(&full_team("t1")).await, Err(StoreError::Conflict(_))));
}

async fn user_team_end_user_model_round_trip(db: &TestDb) {
    let s = &db.store;
    let u = full_user("u1");
    s.insert_user(&u).await.unwrap();
    let bare_u = UserRecord { user_id: "u0".to_owned(), ..Default::default() };
    s.insert_user(&bare_u).await.unwrap();
    assert_eq!(s.get_user("u1").await.unwrap().unwrap(), u);
    assert_eq!(s.all_users().await.unwrap(), vec![bare_u, u]);
    assert!(s.get_user("zz").await.unwrap().is_none());

    let tm = full_team("t1");
    s.insert_team(&tm).await.unwrap();
    let bare_t = TeamRecord { team_id: "t0".to_owned(), ..Default::default() };
    s.insert_team(&bare_t).await.unwrap();
    assert_eq!(s.get_team("t1").await.unwrap().unwrap(), tm);
    assert_eq!(s.all_teams().await.unwrap(), vec![bare_t, tm]);

    let e = EndUserRecord {
        user_id: "c1".to_owned(),
        alias: Some("Cust".to_owned()),
        spend: 3.0,
        max_budget: Some(9.0),
        blocked: true,
        ..Default::default()
    };
    s.upsert_end_user(&e).await.unwrap();
    assert_eq!(s.all_end_users().await.unwrap(), vec![e.clone()]);
    // Upserting again changes the settings but keeps the stored spend.
    let e2 = EndUserRecord { alias: None, spend: 100.0, max_budget: None, blocked: false, ..e.clone() };
    s.upsert_end_user(&e2).await.unwrap();
    assert_eq!(s.all_end_users().await.unwrap(), vec![EndUserRecord { spend: 3.0, ..e2 }]);

    let m = ModelRecord {
        model_id: "m1".to_owned(),
        model_name: "gpt-4o".to_owned(),
        litellm_params: obj(json!({"model": "openai/gpt-4o", "api_key": "os.environ/OPENAI_API_KEY", "rpm": 10})),
        model_info: obj(json!({"id": "m1", "mode": "chat"})),
        created_at: Some(t(1_700_000_000_000)),
    };
    let m2 = ModelRecord { model_id: "m2".to_owned(), created_at: None, litellm_params: Map::new(), ..m.clone() };
    s.insert_model(&m).await.unwrap();
    s.insert_model(&m2).await.unwrap();
    assert_eq!(s.all_models().await.unwrap(), vec![m.clone(), m2.clone()]);
    // Same id again replaces it (keeping created_at).
    let m_new = ModelRecord { model_name: "gpt-4o-2".to_owned(), created_at: Some(t(5)), ..m.clone() };
    s.insert_model(&m_new).await.unwrap();
    assert_eq!(s.all_models().await.unwrap(), vec![ModelRecord { created_at: m.created_at, ..m_new }, m2.clone()]);
    assert!(s.delete_model("m1").await.unwrap());
    assert!(!s.delete_model("m1").await.unwrap());
    assert_eq!(s.all_models().await.unwrap(), vec![m2]);
}

async fn update_does_not_touch_spend(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&full_key("k1", Some("a"))).await.unwrap();
    s.insert_user(&full_user("u1")).await.unwrap();
    s.insert_team(&full_team("t1")).await.unwrap();
    s.apply_increments(&[
        inc(Spender::Key("k1".into()), 0.5, &[("gpt-4o", 0.5)]),
        inc(Spender::User("u1".into()), 0.5, &[("gpt-4o", 0.5)]),
        inc(Spender::Team("t1".into()), 0.5, &[("gpt-4o", 0.5)]),
    ])
    .await
    .unwrap();

    // Records as a server would hold them: stale spend, changed settings.
    let mut k = full_key("k1", Some("b"));
    k.spend = 999.0;
    k.model_spend = obj(json!({"stale": 1.0}));
    k.max_budget = Some(5.0);
    k.metadata = obj(json!({"changed": true}));
    k.blocked = false;
    k.expires = None;
    s.update_key(&k).await.unwrap();
    let got = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(got.spend, 1.75);
    assert_eq!(got.model_spend, obj(json!({"gpt-4o": 1.75})));
    assert_eq!(KeyRecord { spend: 999.0, model_spend: k.model_spend.clone(), ..got }, k);

    let mut u = full_user("u1");
    u.spend = 0.0;
    u.model_spend = Map::new();
    u.user_email = None;
    u.teams = vec![];
    s.update_user(&u).await.unwrap();
    let got = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!(got.spend, 3.0);
    assert_eq!(got.model_spend, obj(json!({"claude": 2.5, "gpt-4o": 0.5})));
    assert_eq!(UserRecord { spend: 0.0, model_spend: Map::new(), ..got }, u);

    let mut tm = full_team("t1");
    tm.spend = 0.0;
    tm.team_alias = Some("Renamed".into());
    tm.members_with_roles.pop();
    s.update_team(&tm).await.unwrap();
    let got = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!(got.spend, 7.5);
    assert_eq!(TeamRecord { spend: 0.0, model_spend: tm.model_spend.clone(), ..got.clone() }, tm);
    assert_eq!(got.model_spend, obj(json!({"gpt-4o": 7.5})));

    assert!(s.update_key(&full_key("missing", None)).await.is_err());
    assert!(s.update_user(&full_user("missing")).await.is_err());
    assert!(s.update_team(&full_team("missing")).await.is_err());
}

async fn apply_increments_and_logs(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&KeyRecord { token: "k1".into(), ..Default::default() }).await.unwrap();
    s.insert_user(&full_user("u1")).await.unwrap();
    s.insert_team(&TeamRecord { team_id: "t1".into(), ..Default::default() }).await.unwrap();
    s.upsert_end_user(&EndUserRecord { user_id: "c1".into(), spend: 1.0, ..Default::default() }).await.unwrap();

    let increments = [
        inc(Spender::Team("t1".into()), 0.25, &[("gpt-4o", 0.25)]),
        inc(Spender::Key("k1".into()), 0.5, &[("gpt-4o", 0.5)]),
        inc(Spender::Key("k1".into()), 0.25, &[("claude", 0.25), ("gpt-4o", 0.125)]),
        inc(Spender::User("u1".into()), 1.0, &[("claude", 1.0)]),
        inc(Spender::EndUser("c1".into()), 0.5, &[]),
        inc(Spender::EndUser("new-customer".into()), 0.75, &[]),
        // A key deleted in the meantime: ignored.
        inc(Spender::Key("gone".into()), 9.0, &[("x", 9.0)]),
    ];
    s.apply_increments(&increments).await.unwrap();
    write_logs(s, &[log("r1", "k1", 1_700_000_000_000, 0.5), log("r2", "k1", 1_700_000_001_000, 0.25)]).await;

    let k = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k.spend, 0.75);
    assert_eq!(k.model_spend, obj(json!({"gpt-4o": 0.625, "claude": 0.25})));
    let u = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!(u.spend, 3.5);
    assert_eq!(u.model_spend, obj(json!({"claude": 3.5})));
    let tm = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!(tm.spend, 0.25);
    assert_eq!(tm.model_spend, obj(json!({"gpt-4o": 0.25})));
    let ends: BTreeMap<String, f64> =
        s.all_end_users().await.unwrap().into_iter().map(|e| (e.user_id, e.spend)).collect();
    assert_eq!(ends, BTreeMap::from([("c1".into(), 1.5), ("new-customer".into(), 0.75)]));
    assert!(s.get_key("gone").await.unwrap().is_none());

    // A retried batch: the logged request is skipped, the new one and the increments go in.
    s.apply_increments(&[inc(Spender::Key("k1".into()), 0.25, &[])]).await.unwrap();
    write_logs(s, &[log("r2", "k1", 1_700_000_001_000, 0.25), log("r3", "k1", 1_700_000_002_000, 0.25)]).await;
    assert_eq!(s.get_key("k1").await.unwrap().unwrap().spend, 1.0);
    let ids: Vec<String> =
        s.spend_logs(&SpendLogFilter::default()).await.unwrap().into_iter().map(|l| l.request_id).collect();
    assert_eq!(ids, vec!["r3", "r2", "r1"]);

    // An empty batch is fine.
    s.apply_increments(&[]).await.unwrap();
    assert!(s.insert_spend_logs(Vec::new()).await.unwrap().is_empty());
}

/// Batches longer than one INSERT, and every shorter length, come back field for field: each
/// value in its own row and column.
async fn spend_logs_round_trip_in_chunks(db: &TestDb) {
    let s = &db.store;
    let row = |i: usize| {
        let n = i as i64;
        let start = 1_700_000_000_000 + n * 1000;
        SpendLogRecord {
            request_id: format!("req-{i:05}"),
            // The last column, so every row's values keep their places in a chunked insert.
            client_call_id: i.is_multiple_of(3).then(|| format!("client-{i}")),
            call_type: format!("call-{i}").into(),
            api_key: format!("k{}", i % 7).into(),
            spend: n as f64 / 8.0,
            total_tokens: 3 * n,
            prompt_tokens: 2 * n,
            completion_tokens: n,
            start_time: t(start),
            end_time: t(start + n),
            model: format!("model-{i}").into(),
            model_id: i.is_multiple_of(2).then(|| format!("dep-{i}").into()),
            model_group: (!i.is_multiple_of(3)).then(|| format!("group-{i}").into()),
            custom_llm_provider: (!i.is_multiple_of(5)).then(|| format!("provider-{i}").into()),
            api_base: (!i.is_multiple_of(4)).then(|| format!("https://{i}.example").into()),
            user: i.is_multiple_of(3).then(|| format!("u{i}")),
            team_id: (!i.is_multiple_of(2)).then(|| format!("t{i}")),
            end_user: i.is_multiple_of(6).then(|| format!("customer-{i}")),
            metadata: if i.is_multiple_of(10) { obj(json!({"i": i, "s": "x"})) } else { Map::new() },
            request_tags: if i.is_multiple_of(9) { vec![format!("tag-{i}"), "prod".into()] } else { vec![] },
            status: if i.is_multiple_of(11) { "failure" } else { "success" }.into(),
            // Now the last column.
            response_id: (!i.is_multiple_of(7)).then(|| format!("chatcmpl-{i}")),
            ..Default::default()
        }
    };
    // 2,127 rows: two full 1,000-row PostgreSQL statements and a remainder; 33 full 64-row SQLite
    // ones and 8 + 4 + 2 + 1. Then 127 = 64 + 32 + … + 1 rows, reusing the statements SQLite
    // keeps prepared.
    let first: Vec<SpendLogRecord> = (0..2_127).map(row).collect();
    let second: Vec<SpendLogRecord> = (2_127..2_254).map(row).collect();
    for logs in [&first, &second] {
        // The buffer comes back empty, its capacity kept for the next batch.
        let back = s.insert_spend_logs(logs.clone()).await.unwrap();
        assert!(back.is_empty() && back.capacity() >= logs.len());
    }
    let mut want: Vec<SpendLogRecord> = first.into_iter().chain(second).collect();
    want.reverse();
    assert_eq!(s.spend_logs(&SpendLogFilter::default()).await.unwrap(), want);
}

/// Runs `sql` on a connection of its own (SQLite file or PostgreSQL), as another process would.
async fn other_connection(db: &TestDb, sql: &str) {
    sql_on(&db.url, sql).await;
}

/// Runs `sql` on a connection of its own to the database at `url`.
async fn sql_on(url: &str, sql: &str) {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

async fn increments_are_atomic(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&KeyRecord { token: "k1".into(), ..Default::default() }).await.unwrap();
    // An increment the database rejects, after the key's ran (spenders are visited keys first):
    // PostgreSQL refuses NUL bytes in text; on SQLite a trigger (set up through a second
    // connection) refuses the end user.
    let bad = match &db.kind {
        Kind::Postgres(_) => "bad\0user",
        Kind::SqliteFile(_) => {
            other_connection(
                db,
                "CREATE TRIGGER refuse_bad BEFORE INSERT ON sluice_end_users WHEN NEW.user_id = 'bad' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .await;
            "bad"
        }
        // Nothing else can reach a private in-memory database; the file covers SQLite.
        Kind::SqliteMemory => return,
    };
    let increments = [
        inc(Spender::Key("k1".into()), 0.5, &[("gpt-4o", 0.5)]),
        inc(Spender::EndUser("c1".into()), 0.5, &[]),
        inc(Spender::EndUser(bad.into()), 0.5, &[]),
    ];
    assert!(s.apply_increments(&increments).await.is_err());
    let k = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k.spend, 0.0);
    assert!(k.model_spend.is_empty());
    assert!(s.all_end_users().await.unwrap().is_empty());
    // The store still works afterwards.
    s.apply_increments(&[inc(Spender::Key("k1".into()), 0.5, &[])]).await.unwrap();
    assert_eq!(s.get_key("k1").await.unwrap().unwrap().spend, 0.5);
}

/// A batch the database refuses part of writes nothing, and its rows come back to be retried.
async fn spend_logs_are_atomic(db: &TestDb) {
    let s = &db.store;
    // 100 rows: the bad one in the second INSERT on SQLite (64 + 32 + 4).
    let mut logs: Vec<SpendLogRecord> =
        (0..100).map(|i| log(&format!("r{i:03}"), "k1", 1_700_000_000_000 + i, 0.5)).collect();
    match &db.kind {
        Kind::Postgres(_) => logs[70].model = "bad\0model".into(),
        Kind::SqliteFile(_) => {
            other_connection(
                db,
                "CREATE TRIGGER refuse_bad BEFORE INSERT ON sluice_spend_logs WHEN NEW.request_id = 'r070' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .await
        }
        Kind::SqliteMemory => return,
    }
    let failed = s.insert_spend_logs(logs.clone()).await.unwrap_err();
    assert_eq!(failed.logs, logs);
    assert!(s.spend_logs(&SpendLogFilter::default()).await.unwrap().is_empty());
    // Fixed, the same rows go in.
    let mut retry = failed.logs;
    match &db.kind {
        Kind::Postgres(_) => retry[70].model = "gpt-4o".into(),
        _ => {
            assert!(failed.error.to_string().contains("refused"), "{}", failed.error);
            other_connection(db, "DROP TRIGGER refuse_bad").await;
        }
    }
    s.insert_spend_logs(retry.clone()).await.unwrap();
    retry.reverse();
    assert_eq!(s.spend_logs(&SpendLogFilter::default()).await.unwrap(), retry);
}

async fn non_finite_spend_is_refused(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&KeyRecord { token: "k1".into(), ..Default::default() }).await.unwrap();
    match s.apply_increments(&[inc(Spender::Key("k1".into()), f64::NAN, &[])]).await {
        Err(StoreError::Other(m)) => assert!(m.contains("not a finite number"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let logs = vec![log("ok", "k1", 0, 1.0), log("r", "k1", 0, f64::INFINITY)];
    match s.insert_spend_logs(logs.clone()).await {
        Err(LogsNotWritten { error: StoreError::Other(m), logs: back }) => {
            assert!(m.contains("not a finite number"), "{m}");
            assert_eq!(back, logs);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.get_key("k1").await.unwrap().unwrap().spend, 0.0);
    assert!(s.spend_logs(&SpendLogFilter::default()).await.unwrap().is_empty());
}

/// Every kind of value a row holds comes back as written: texts beyond ASCII and with quotes,
/// empty texts (not NULL), NULLs, JSON metadata and tags, extreme integers, times before 1970.
async fn spend_log_values_round_trip(db: &TestDb) {
    let s = &db.store;
    let odd = SpendLogRecord {
        request_id: "req-é✓-日本-🚀".into(),
        client_call_id: Some("call 'é' \"x\" 🚀".into()),
        call_type: "".into(),
        api_key: "key with 'quotes' and \"double\" and \\ and\nnewline".into(),
        spend: -0.1,
        total_tokens: i64::MAX,
        prompt_tokens: i64::MIN,
        completion_tokens: 0,
        start_time: t(-86_400_123),
        end_time: t(4_102_444_800_999),
        model: "modèle/ß".into(),
        model_id: Some("".into()),
        model_group: None,
        custom_llm_provider: Some("провайдер".into()),
        api_base: None,
        user: Some("ユーザー".into()),
        team_id: None,
        end_user: Some("".into()),
        metadata: obj(json!({"ü": {"nested": [1, 2.5, null, true, "ß"]}, "quote": "it's \"x\""})),
        request_tags: vec!["tag é".into(), "".into(), "🏷".into()],
        status: "success".into(),
        response_id: Some("chatcmpl-é".into()),
        ..Default::default()
    };
    let plain = SpendLogRecord {
        request_id: "req-plain".into(),
        start_time: t(1_700_000_000_000),
        end_time: t(1_700_000_000_000),
        ..Default::default()
    };
    write_logs(s, &[odd.clone(), plain.clone()]).await;
    assert_eq!(s.spend_logs(&SpendLogFilter::default()).await.unwrap(), vec![plain, odd]);
}

/// A client repeating its own call id gets one row per request, each carrying that id, and
/// `request_id=` finds them by it (as by the row's own id).
async fn client_call_ids_never_merge_rows(db: &TestDb) {
    let s = &db.store;
    let rows: Vec<SpendLogRecord> = (0..20)
        .map(|i| SpendLogRecord {
            client_call_id: Some("client-chosen".into()),
            ..log(&format!("sluice-{i:02}"), "k1", 1_700_000_000_000 + i, 0.5)
        })
        .collect();
    write_logs(s, &rows).await;
    let by_client = SpendLogFilter { request_id: Some("client-chosen".into()), ..Default::default() };
    let found = s.spend_logs(&by_client).await.unwrap();
    assert_eq!(found.len(), 20);
    assert!(found.iter().all(|l| l.client_call_id.as_deref() == Some("client-chosen")));
    let by_row = SpendLogFilter { request_id: Some("sluice-07".into()), ..Default::default() };
    let found = s.spend_logs(&by_row).await.unwrap();
    assert_eq!(found.iter().map(|l| l.request_id.as_str()).collect::<Vec<_>>(), ["sluice-07"]);
    assert_eq!(s.global_spend(None, None).await.unwrap(), 10.0);
}

async fn concurrent_spend_writes_sum(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&KeyRecord { token: "k1".into(), ..Default::default() }).await.unwrap();
    s.insert_key(&KeyRecord { token: "k2".into(), ..Default::default() }).await.unwrap();
    s.insert_user(&UserRecord { user_id: "u1".into(), ..Default::default() }).await.unwrap();
    s.insert_team(&TeamRecord { team_id: "t1".into(), ..Default::default() }).await.unwrap();
    const TASKS: usize = 8;
    const BATCHES: usize = 20;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                // Tasks list the spenders in different orders; the store sorts them.
                let mut increments = vec![
                    inc(Spender::Key("k1".into()), 0.25, &[("m1", 0.25)]),
                    inc(Spender::Key("k2".into()), 0.5, &[("m2", 0.5)]),
                    inc(Spender::User("u1".into()), 0.25, &[("m1", 0.25)]),
                    inc(Spender::Team("t1".into()), 0.125, &[("m1", 0.125)]),
                    inc(Spender::EndUser("c1".into()), 0.25, &[]),
                ];
                if task % 2 == 1 {
                    increments.reverse();
                }
                s.apply_increments(&increments).await.unwrap();
                write_logs(&s, &[log(&format!("r-{task}-{b}"), "k1", 1_700_000_000_000 + b as i64, 0.25)]).await;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let n = (TASKS * BATCHES) as f64;
    let k1 = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.spend, 0.25 * n);
    assert_eq!(f(&k1.model_spend["m1"]), 0.25 * n);
    let k2 = s.get_key("k2").await.unwrap().unwrap();
    assert_eq!((k2.spend, f(&k2.model_spend["m2"])), (0.5 * n, 0.5 * n));
    let u = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u.spend, f(&u.model_spend["m1"])), (0.25 * n, 0.25 * n));
    let tm = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!((tm.spend, f(&tm.model_spend["m1"])), (0.125 * n, 0.125 * n));
    assert_eq!(s.all_end_users().await.unwrap()[0].spend, 0.25 * n);
    assert_eq!(s.spend_logs(&SpendLogFilter::default()).await.unwrap().len(), TASKS * BATCHES);
    assert_eq!(s.global_spend(None, None).await.unwrap(), 0.25 * n);
}

const DAY: i64 = 86_400_000;
/// 2023-11-14T00:00:00Z.
const D0: i64 = 1_699_920_000_000;

async fn seed_logs(s: &Store) -> Vec<SpendLogRecord> {
    let mut a = log("a", "k1", D0 + 1000, 1.0);
    a.user = Some("u1".into());
    let mut b = log("b", "k2", D0 + DAY - 1, 2.0);
    b.user = Some("u2".into());
    b.team_id = Some("t2".into());
    b.model = "claude".into();
    let mut c = log("c", "k1", D0 + DAY, 4.0);
    c.user = None;
    c.team_id = None;
    c.end_user = None;
    c.model_id = None;
    c.metadata = Map::new();
    c.request_tags = vec![];
    let mut d = log("d", "k1", D0 + 2 * DAY + 5, 8.0);
    d.status = "failure".into();
    let logs = vec![a, b, c, d];
    write_logs(s, &logs).await;
    logs
}

async fn spend_log_filters(db: &TestDb) {
    let s = &db.store;
    let logs = seed_logs(s).await;
    let ids = |v: Vec<SpendLogRecord>| v.into_iter().map(|l| l.request_id).collect::<Vec<_>>();
    let all = s.spend_logs(&SpendLogFilter::default()).await.unwrap();
    // Newest first, every field back as written.
    assert_eq!(all, logs.iter().rev().cloned().collect::<Vec<_>>());
    let by = |f: SpendLogFilter| async move { ids(s.spend_logs(&f).await.unwrap()) };
    assert_eq!(by(SpendLogFilter { api_key: Some("k1".into()), ..Default::default() }).await, ["d", "c", "a"]);
    assert_eq!(by(SpendLogFilter { user_id: Some("u2".into()), ..Default::default() }).await, ["b"]);
    assert_eq!(by(SpendLogFilter { team_id: Some("t1".into()), ..Default::default() }).await, ["d", "a"]);
    assert_eq!(by(SpendLogFilter { request_id: Some("c".into()), ..Default::default() }).await, ["c"]);
    assert_eq!(
        by(SpendLogFilter { start: Some(t(D0 + DAY - 1)), end: Some(t(D0 + DAY)), ..Default::default() }).await,
        ["c", "b"]
    );
    assert_eq!(by(SpendLogFilter { start: Some(t(D0 + DAY)), ..Default::default() }).await, ["d", "c"]);
    assert_eq!(by(SpendLogFilter { end: Some(t(D0 + 1000)), ..Default::default() }).await, ["a"]);
    assert_eq!(by(SpendLogFilter { limit: Some(2), ..Default::default() }).await, ["d", "c"]);
    assert_eq!(
        by(SpendLogFilter { api_key: Some("k1".into()), limit: Some(1), start: Some(t(D0)), ..Default::default() })
            .await,
        ["d"]
    );
    assert!(by(SpendLogFilter { api_key: Some("none".into()), ..Default::default() }).await.is_empty());
    // By model group or upstream model (b's upstream is claude, its group gpt-4o), and status.
    assert_eq!(by(SpendLogFilter { model: Some("claude".into()), ..Default::default() }).await, ["b"]);
    assert_eq!(by(SpendLogFilter { model: Some("gpt-4o".into()), ..Default::default() }).await, ["d", "c", "b", "a"]);
    assert_eq!(by(SpendLogFilter { status: Some("failure".into()), ..Default::default() }).await, ["d"]);
    assert_eq!(
        by(SpendLogFilter { status: Some("success".into()), api_key: Some("k1".into()), ..Default::default() }).await,
        ["c", "a"]
    );
}

async fn spend_by_day_groups(db: &TestDb) {
    let s = &db.store;
    seed_logs(s).await;
    let days = s.spend_by_day(&SpendLogFilter::default()).await.unwrap();
    assert_eq!(
        days,
        vec![
            DailySpend {
                date: "2023-11-14".into(),
                spend: 3.0,
                models: sums(json!({"gpt-4o": 1.0, "claude": 2.0})),
                users: sums(json!({"u1": 1.0, "u2": 2.0})),
                api_keys: sums(json!({"k1": 1.0, "k2": 2.0})),
            },
            DailySpend {
                date: "2023-11-15".into(),
                spend: 4.0,
                models: sums(json!({"gpt-4o": 4.0})),
                users: Default::default(),
                api_keys: sums(json!({"k1": 4.0})),
            },
            DailySpend {
                date: "2023-11-16".into(),
                spend: 8.0,
                models: sums(json!({"gpt-4o": 8.0})),
                users: sums(json!({"u1": 8.0})),
                api_keys: sums(json!({"k1": 8.0})),
            },
        ]
    );
    let k2 = s.spend_by_day(&SpendLogFilter { api_key: Some("k2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(k2.len(), 1);
    assert_eq!((k2[0].date.as_str(), k2[0].spend), ("2023-11-14", 2.0));
    let later = s.spend_by_day(&SpendLogFilter { start: Some(t(D0 + DAY)), ..Default::default() }).await.unwrap();
    assert_eq!(later.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(), ["2023-11-15", "2023-11-16"]);
}

async fn global_spend_sums(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.global_spend(None, None).await.unwrap(), 0.0);
    seed_logs(s).await;
    assert_eq!(s.global_spend(None, None).await.unwrap(), 15.0);
    assert_eq!(s.global_spend(Some(t(D0 + DAY)), None).await.unwrap(), 12.0);
    assert_eq!(s.global_spend(None, Some(t(D0 + DAY))).await.unwrap(), 7.0);
    assert_eq!(s.global_spend(Some(t(D0 + 10 * DAY)), None).await.unwrap(), 0.0);
}

async fn reset_spend_zeroes(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&full_key("k1", None)).await.unwrap();
    s.insert_user(&full_user("u1")).await.unwrap();
    s.insert_team(&full_team("t1")).await.unwrap();
    s.upsert_end_user(&EndUserRecord { user_id: "c1".into(), spend: 5.0, ..Default::default() }).await.unwrap();
    let next = Some(t(1_800_000_000_000));
    s.reset_spend(&Spender::Key("k1".into()), next).await.unwrap();
    s.reset_spend(&Spender::User("u1".into()), None).await.unwrap();
    s.reset_spend(&Spender::Team("t1".into()), next).await.unwrap();
    s.reset_spend(&Spender::EndUser("c1".into()), next).await.unwrap();
    let k = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!((k.spend, k.model_spend.is_empty(), k.budget_reset_at), (0.0, true, next));
    assert_eq!(k.max_budget, Some(100.5));
    let u = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u.spend, u.model_spend.is_empty(), u.budget_reset_at), (0.0, true, None));
    let tm = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!((tm.spend, tm.model_spend.is_empty(), tm.budget_reset_at), (0.0, true, next));
    assert_eq!(s.all_end_users().await.unwrap()[0].spend, 0.0);
}

async fn delete_records(db: &TestDb) {
    let s = &db.store;
    for tok in ["k1", "k2", "k3"] {
        s.insert_key(&full_key(tok, None)).await.unwrap();
    }
    let gone = s.delete_keys(&["k3".into(), "nope".into(), "k1".into(), "k1".into()]).await.unwrap();
    assert_eq!(gone, vec!["k1".to_owned(), "k3".to_owned()]);
    assert_eq!(s.all_keys().await.unwrap().into_iter().map(|k| k.token).collect::<Vec<_>>(), ["k2"]);
    assert!(s.delete_keys(&[]).await.unwrap().is_empty());

    s.insert_user(&full_user("u1")).await.unwrap();
    s.insert_user(&full_user("u2")).await.unwrap();
    assert_eq!(s.delete_users(&["u2".into(), "u9".into()]).await.unwrap(), ["u2"]);
    assert_eq!(s.all_users().await.unwrap().len(), 1);

    s.insert_team(&full_team("t1")).await.unwrap();
    assert_eq!(s.delete_teams(&["t1".into()]).await.unwrap(), ["t1"]);
    assert!(s.all_teams().await.unwrap().is_empty());
}

async fn rekey_keeps_spend(db: &TestDb) {
    let s = &db.store;
    s.insert_key(&full_key("old", Some("mine"))).await.unwrap();
    s.insert_key(&full_key("other", None)).await.unwrap();
    s.apply_increments(&[inc(Spender::Key("old".into()), 2.0, &[("gpt-4o", 2.0)])]).await.unwrap();
    let mut new = full_key("new", Some("mine"));
    new.spend = 0.0;
    new.model_spend = Map::new();
    new.max_budget = Some(7.0);
    new.key_name = Some("sk-...wxyz".into());
    s.rekey("old", &new).await.unwrap();
    assert!(s.get_key("old").await.unwrap().is_none());
    let got = s.get_key("new").await.unwrap().unwrap();
    assert_eq!(got.spend, 3.25);
    assert_eq!(got.model_spend, obj(json!({"gpt-4o": 3.25})));
    assert_eq!(KeyRecord { spend: 0.0, model_spend: Map::new(), ..got }, new);
    assert_eq!(s.key_by_alias("mine").await.unwrap().unwrap().token, "new");
    // Onto a token in use, or from a missing one.
    assert!(matches!(s.rekey("new", &full_key("other", Some("mine"))).await, Err(StoreError::Conflict(_))));
    assert!(s.rekey("missing", &full_key("x", None)).await.is_err());
}

/// A key with most fields empty (as `/key/generate` with no options makes) changes token too.
async fn rekey_sparse_key(db: &TestDb) {
    let s = &db.store;
    // A NULL budget first, then a number in the same statement on the same connection.
    s.insert_key(&KeyRecord { token: "sparse-null".into(), ..Default::default() }).await.unwrap();
    let old = KeyRecord { token: "sparse-old".into(), max_budget: Some(10.0), ..Default::default() };
    s.insert_key(&old).await.unwrap();
    let mut old = s.get_key("sparse-old").await.unwrap().unwrap();
    old.blocked = true;
    s.update_key(&old).await.unwrap();
    let new = KeyRecord { token: "sparse-new".into(), ..old.clone() };
    s.rekey("sparse-old", &new).await.unwrap();
    assert_eq!(s.get_key("sparse-new").await.unwrap().unwrap().max_budget, Some(10.0));
}

async fn list_keys_pages(db: &TestDb) {
    let s = &db.store;
    for i in 0..5 {
        let mut k = full_key(&format!("k{i}"), Some(&format!("alias{i}")));
        k.created_at = Some(t(1_000 + i));
        k.user_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        k.team_id = Some(if i < 3 { "low" } else { "high" }.into());
        s.insert_key(&k).await.unwrap();
    }
    let toks = |v: Vec<KeyRecord>| v.into_iter().map(|k| k.token).collect::<Vec<_>>();
    let (page, total) = s.list_keys(&KeyFilter { page: 1, size: 2, ..Default::default() }).await.unwrap();
    assert_eq!((toks(page), total), (vec!["k4".to_owned(), "k3".to_owned()], 5));
    let (page, total) = s.list_keys(&KeyFilter { page: 3, size: 2, ..Default::default() }).await.unwrap();
    assert_eq!((toks(page), total), (vec!["k0".to_owned()], 5));
    let (page, total) = s
        .list_keys(&KeyFilter { user_id: Some("even".into()), page: 1, size: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!((toks(page), total), (vec!["k4".to_owned(), "k2".to_owned(), "k0".to_owned()], 3));
    let (page, total) = s
        .list_keys(&KeyFilter {
            user_id: Some("even".into()),
            team_id: Some("low".into()),
            page: 2,
            size: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((toks(page), total), (vec!["k0".to_owned()], 2));
    let (page, total) = s
        .list_keys(&KeyFilter { key_alias: Some("alias3".into()), page: 1, size: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!((toks(page), total), (vec!["k3".to_owned()], 1));
    // size 0: everything.
    let (page, total) = s.list_keys(&KeyFilter::default()).await.unwrap();
    assert_eq!((page.len(), total), (5, 5));
}

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::common::TestDb::sqlite_file().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::common::TestDb::sqlite_memory().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::common::TestDb::postgres().await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

on_every_backend!(
    migrations_are_idempotent,
    key_round_trip,
    key_conflicts,
    user_team_end_user_model_round_trip,
    update_does_not_touch_spend,
    apply_increments_and_logs,
    spend_logs_round_trip_in_chunks,
    increments_are_atomic,
    spend_logs_are_atomic,
    spend_log_values_round_trip,
    client_call_ids_never_merge_rows,
    non_finite_spend_is_refused,
    concurrent_spend_writes_sum,
    spend_log_filters,
    spend_by_day_groups,
    global_spend_sums,
    reset_spend_zeroes,
    delete_records,
    rekey_keeps_spend,
    rekey_sparse_key,
    list_keys_pages,
    responses_round_trip_owned_and_bounded,
    objects_round_trip_listed_by_owner,
    budget_round_trip_update_delete,
    end_user_round_trip_update_delete,
    end_users_upgrade_in_place_to_migration_7,
    team_aggregates_filled_in_at_migration_16,
    organization_round_trip_spend_and_delete,
    org_members_round_trip,
    config_params_round_trip,
    daily_aggregates_follow_the_logs,
    daily_summary_matches_the_logs,
    response_ids_find_rows,
);

async fn objects_round_trip_listed_by_owner(db: &TestDb) {
    let s = &db.store;
    let file = |id: &str, owner: &str, at: i64| ObjectRecord {
        object_id: id.into(),
        kind: "file".into(),
        owner: owner.into(),
        team_id: Some("team-1".into()),
        model: "gpt-4o".into(),
        model_id: "dep-1".into(),
        created_at: at,
        billed: false,
    };
    s.insert_object(&file("file-a", "hash-a", 1)).await.unwrap();
    s.insert_object(&file("file-b", "hash-a", 2)).await.unwrap();
    s.insert_object(&file("file-c", "hash-b", 3)).await.unwrap();
    let batch = ObjectRecord { kind: "batch".into(), team_id: None, ..file("batch_a", "hash-a", 4) };
    s.insert_object(&batch).await.unwrap();
    assert_eq!(s.get_object("file", "file-a").await.unwrap(), Some(file("file-a", "hash-a", 1)));
    assert_eq!(s.get_object("batch", "batch_a").await.unwrap(), Some(batch.clone()));
    // A finished batch is billed once.
    assert!(s.claim_object_billing("batch", "batch_a").await.unwrap());
    assert!(!s.claim_object_billing("batch", "batch_a").await.unwrap());
    assert!(s.get_object("batch", "batch_a").await.unwrap().unwrap().billed);
    assert!(!s.claim_object_billing("batch", "batch_unknown").await.unwrap());
    // Kinds are apart: a file id is no batch.
    assert_eq!(s.get_object("batch", "file-a").await.unwrap(), None);
    let ids = |v: Vec<ObjectRecord>| v.into_iter().map(|o| o.object_id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_objects("file", Some("hash-a"), 100).await.unwrap()), ["file-b", "file-a"]);
    assert_eq!(ids(s.list_objects("file", None, 100).await.unwrap()), ["file-c", "file-b", "file-a"]);
    assert_eq!(ids(s.list_objects("file", None, 1).await.unwrap()), ["file-c"]);
    // A repeated id (an upstream that reuses one) names the newer object.
    s.insert_object(&file("file-a", "hash-b", 5)).await.unwrap();
    assert_eq!(s.get_object("file", "file-a").await.unwrap().unwrap().owner, "hash-b");
    assert!(s.delete_object("file", "file-a").await.unwrap());
    assert!(!s.delete_object("file", "file-a").await.unwrap());
    assert_eq!(s.get_object("file", "file-a").await.unwrap(), None);
}

async fn responses_round_trip_owned_and_bounded(db: &TestDb) {
    let s = &db.store;
    let r = ResponseRecord {
        response_id: "resp_1".into(),
        owner: "hash-a".into(),
        model: "claude".into(),
        created_at: 1_700_000_000_123,
        conversation: json!([{"role": "user", "content": "hi \u{1F600} 'quoted'"}]).to_string(),
        response: json!({"id": "resp_1", "object": "response"}).to_string(),
    };
    s.insert_response(&r).await.unwrap();
    assert_eq!(s.get_response("resp_1").await.unwrap(), Some(r.clone()));
    assert_eq!(s.get_response("resp_2").await.unwrap(), None);
    // An id is written once.
    assert!(s.insert_response(&r).await.is_err());
    // Only the owner deletes.
    assert!(!s.delete_response("resp_1", "hash-b").await.unwrap());
    assert!(s.get_response("resp_1").await.unwrap().is_some());
    assert!(s.delete_response("resp_1", "hash-a").await.unwrap());
    assert_eq!(s.get_response("resp_1").await.unwrap(), None);
    assert!(!s.delete_response("resp_1", "hash-a").await.unwrap());
    // Bounded: a row over the limit is refused, not stored.
    let big = ResponseRecord {
        response_id: "resp_big".into(),
        conversation: "x".repeat(MAX_RESPONSE_BYTES),
        response: "{}".into(),
        ..r
    };
    assert!(s.insert_response(&big).await.is_err());
    assert_eq!(s.get_response("resp_big").await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_without_password() {
    let started = std::time::Instant::now();
    match Store::open("postgres://u:secretpw@127.0.0.1:1/x", 2).await {
        Err(StoreError::Unavailable(m)) => {
            assert!(!m.contains("secretpw"), "{m}");
            assert!(m.contains("127.0.0.1:1"), "{m}");
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("opened a database on a closed port"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn bad_urls_say_what_to_use() {
    match Store::open("mysql://root@localhost/x", 1).await {
        Err(StoreError::Other(m)) => assert!(m.contains("postgres://"), "{m}"),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("opened mysql"),
    }
}

#[tokio::test]
async fn bare_path_opens_sqlite() {
    let dir = std::env::temp_dir().join(common::unique("sluice_store_bare"));
    let path = dir.join("a b").join("x.db");
    let store = Store::open(path.to_str().unwrap(), 2).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(store.logs_on_own_connection());
    write_logs(&store, &[log("r", "k", 0, 1.0)]).await;
    store.insert_key(&full_key("k", None)).await.unwrap();
    drop(store);
    let again = Store::open(&format!("sqlite://{}", path.display()), 2).await.unwrap();
    assert!(again.get_key("k").await.unwrap().is_some());
    assert_eq!(again.spend_logs(&SpendLogFilter::default()).await.unwrap().len(), 1);
    assert!(path.exists());
    let _ = std::fs::remove_dir_all(dir);
}

// --- spend logs on a SQLite file's own connection ---

#[tokio::test]
async fn only_sqlite_files_log_on_their_own_connection() {
    assert!(TestDb::sqlite_file().await.store.logs_on_own_connection());
    assert!(!TestDb::sqlite_memory().await.store.logs_on_own_connection());
    assert!(!TestDb::postgres().await.store.logs_on_own_connection());
    // Options of the user's in the URL: the pool alone honours them.
    let dir = std::env::temp_dir().join(common::unique("sluice_store_query"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("q.db").display()), 2).await.unwrap();
    assert!(!store.logs_on_own_connection());
    write_logs(&store, &[log("r", "k", 0, 1.0)]).await;
    assert_eq!(store.spend_logs(&SpendLogFilter::default()).await.unwrap().len(), 1);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// A batch that finds another connection writing waits for it (the busy timeout) rather than
/// failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_logs_wait_for_the_write_lock() {
    let db = TestDb::sqlite_file().await;
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO sluice_keys (token) VALUES ('held')")
        .execute(&mut other)
        .await
        .unwrap();
    let logs: Vec<SpendLogRecord> = (0..70).map(|i| log(&format!("r{i}"), "k1", 1_700_000_000_000 + i, 0.5)).collect();
    let store = db.store.clone();
    let batch = logs.clone();
    let writing = tokio::spawn(async move { store.insert_spend_logs(batch).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!writing.is_finished(), "the batch did not wait for the write lock");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    writing.await.unwrap().unwrap();
    assert_eq!(db.store.spend_logs(&SpendLogFilter::default()).await.unwrap().len(), logs.len());
    assert!(db.store.get_key("held").await.unwrap().is_some());
    other.close().await.unwrap();
}

/// A new SQLite file gets 16 KiB pages (`SQLITE_PAGE_SIZE_PRAGMA`) and a rollback journal (WAL's
/// memory-mapped `-shm` turns a file made unwritable under load into a SIGBUS).
#[tokio::test]
async fn sqlite_file_gets_16_kib_pages() {
    let db = TestDb::sqlite_file().await;
    db.store.insert_spend_logs(vec![log("r", "k1", 1_700_000_000_000, 0.5)]).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!((size, mode.as_str()), (16384, "delete"));
}

/// A file an older sluice left in WAL mode is switched to the rollback journal at open.
#[tokio::test]
async fn sqlite_file_left_in_wal_mode_is_switched() {
    let dir = std::env::temp_dir().join(common::unique("sluice_store_wal"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("PRAGMA journal_mode = WAL; CREATE TABLE t (a)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let store = Store::open(path.to_str().unwrap(), 2).await.unwrap();
    store.insert_spend_logs(vec![log("r", "k1", 1_700_000_000_000, 0.5)]).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(mode, "delete");
    assert!(!dir.join("x.db-shm").exists() && !dir.join("x.db-wal").exists());
    drop(store);

    // Held open by another connection, a file in WAL mode cannot be switched, and is opened as it is.
    let other = dir.join("y.db");
    let other_url = format!("sqlite://{}?mode=rwc", other.display());
    let mut held = sqlx::SqliteConnection::connect(&other_url).await.unwrap();
    sqlx::raw_sql("PRAGMA journal_mode = WAL; CREATE TABLE t (a)").execute(&mut held).await.unwrap();
    let store = Store::open(other.to_str().unwrap(), 2).await.unwrap();
    store.insert_spend_logs(vec![log("r", "k1", 1_700_000_000_000, 0.5)]).await.unwrap();
    held.close().await.unwrap();
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// The table gone (renamed away by another connection): the batch fails with SQLite's message,
/// holds no lock, and its rows come back; with the table back, the same rows go in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_log_errors_give_the_rows_back() {
    let db = TestDb::sqlite_file().await;
    let s = &db.store;
    // Prepares the one-row INSERT, so both a kept statement and a new one meet the missing table.
    write_logs(s, &[log("first", "k1", 1_699_000_000_000, 0.5)]).await;
    other_connection(&db, "ALTER TABLE sluice_spend_logs RENAME TO sluice_spend_logs_away").await;
    let mut retry = Vec::new();
    for n in [1, 3] {
        let logs: Vec<SpendLogRecord> =
            (0..n).map(|i| log(&format!("r{n}-{i}"), "k1", 1_700_000_000_000 + i, 0.5)).collect();
        let failed = s.insert_spend_logs(logs.clone()).await.unwrap_err();
        assert_eq!(failed.logs, logs);
        match &failed.error {
            StoreError::Other(m) => {
                assert!(m.contains("no such table: sluice_spend_logs"), "{m}");
                assert!(m.contains("sluice.db"), "{m}");
            }
            other => panic!("expected Other, got {other:?}"),
        }
        retry.extend(failed.logs);
    }
    // No transaction was left open: another connection can write at once.
    other_connection(&db, "ALTER TABLE sluice_spend_logs_away RENAME TO sluice_spend_logs").await;
    s.insert_spend_logs(retry.clone()).await.unwrap();
    let ids: Vec<String> =
        s.spend_logs(&SpendLogFilter::default()).await.unwrap().into_iter().map(|l| l.request_id).collect();
    assert_eq!(ids, ["r3-2", "r3-1", "r3-0", "r1-0", "first"]);
}

/// A retried batch, longer than one INSERT, that holds rows already written: those are skipped,
/// the rest go in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_retried_batch_skips_logged_rows() {
    let db = TestDb::sqlite_file().await;
    let s = &db.store;
    let rows: Vec<SpendLogRecord> =
        (0..150).map(|i| log(&format!("r{i:03}"), "k1", 1_700_000_000_000 + i, 0.25)).collect();
    write_logs(s, &rows[60..90]).await;
    let mut changed = rows.clone();
    // A row already written keeps its first values.
    changed[70].spend = 99.0;
    write_logs(s, &changed).await;
    let mut want = rows;
    want.reverse();
    assert_eq!(s.spend_logs(&SpendLogFilter::default()).await.unwrap(), want);
    assert_eq!(s.global_spend(None, None).await.unwrap(), 150.0 * 0.25);
}

async fn budget_round_trip_update_delete(db: &TestDb) {
    let s = &db.store;
    let full = BudgetRecord {
        budget_id: "b1".into(),
        max_budget: Some(10.5),
        soft_budget: Some(8.0),
        max_parallel_requests: Some(3),
        tpm_limit: Some(1000),
        rpm_limit: Some(10),
        model_max_budget: obj(json!({"gpt-4o": 2.0})),
        budget_duration: Some("30d".into()),
        budget_reset_at: Some(t(1_800_000_000_000)),
        created_at: Some(t(1_700_000_000_001)),
        updated_at: Some(t(1_700_000_000_002)),
        created_by: Some("admin".into()),
        updated_by: Some("admin".into()),
    };
    s.insert_budget(&full).await.unwrap();
    let sparse = BudgetRecord { budget_id: "b2".into(), ..Default::default() };
    s.insert_budget(&sparse).await.unwrap();
    assert_eq!(s.get_budget("b1").await.unwrap().as_ref(), Some(&full));
    assert_eq!(s.get_budget("b2").await.unwrap().as_ref(), Some(&sparse));
    assert!(matches!(s.insert_budget(&sparse).await, Err(StoreError::Conflict(_))));

    let mut changed = full.clone();
    changed.max_budget = None;
    changed.rpm_limit = Some(20);
    s.update_budget(&changed).await.unwrap();
    assert_eq!(s.get_budget("b1").await.unwrap(), Some(changed));
    assert!(s.update_budget(&BudgetRecord { budget_id: "nope".into(), ..Default::default() }).await.is_err());

    assert_eq!(s.delete_budgets(&["b2".into(), "b9".into()]).await.unwrap(), ["b2"]);
    let left: Vec<String> = s.all_budgets().await.unwrap().into_iter().map(|b| b.budget_id).collect();
    assert_eq!(left, ["b1"]);
}

/// End users with LiteLLM's budget link, region and default model (migration 7): written, read
/// back, updated without touching spend, and deleted.
async fn end_user_round_trip_update_delete(db: &TestDb) {
    let s = &db.store;
    s.insert_budget(&BudgetRecord { budget_id: "free".into(), rpm_limit: Some(5), ..Default::default() })
        .await
        .unwrap();
    let full = EndUserRecord {
        user_id: "c1".into(),
        alias: Some("Cust".into()),
        spend: 0.0,
        max_budget: None,
        blocked: false,
        budget_id: Some("free".into()),
        allowed_model_region: Some("eu".into()),
        default_model: Some("gpt-4o".into()),
    };
    s.insert_end_user(&full).await.unwrap();
    let sparse = EndUserRecord { user_id: "c2".into(), ..Default::default() };
    s.insert_end_user(&sparse).await.unwrap();
    assert_eq!(s.get_end_user("c1").await.unwrap().as_ref(), Some(&full));
    assert_eq!(s.get_end_user("nope").await.unwrap(), None);
    match s.insert_end_user(&sparse).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("Customer already exists"), "{m}"),
        other => panic!("a taken user_id must conflict: {other:?}"),
    }

    s.apply_increments(&[inc(Spender::EndUser("c1".into()), 2.5, &[])]).await.unwrap();
    let changed = EndUserRecord { allowed_model_region: None, blocked: true, spend: 99.0, ..full.clone() };
    s.update_end_user(&changed).await.unwrap();
    assert_eq!(s.get_end_user("c1").await.unwrap(), Some(EndUserRecord { spend: 2.5, ..changed }));
    assert!(s.update_end_user(&EndUserRecord { user_id: "gone".into(), ..Default::default() }).await.is_err());

    assert_eq!(s.delete_end_users(&["c2".into(), "c9".into()]).await.unwrap(), ["c2"]);
    let left: Vec<String> = s.all_end_users().await.unwrap().into_iter().map(|e| e.user_id).collect();
    assert_eq!(left, ["c1"]);
}

/// A database from before migration 7 (end users without budget_id, allowed_model_region,
/// default_model) upgrades in place when opened: its end users keep their spend and budget.
async fn end_users_upgrade_in_place_to_migration_7(db: &TestDb) {
    // A database as sluice left it at schema version 6, with an end user in the old shape.
    let (url, _keep) = match &db.kind {
        Kind::SqliteMemory => return,
        Kind::SqliteFile(dir) => (format!("sqlite://{}", dir.join("v6.db").display()), None),
        Kind::Postgres(_) => {
            let pg = common::PgDb::create().await;
            (pg.url.clone(), Some(pg))
        }
    };
    let old_store = Store::open_at_version(&url, 2, 6).await.unwrap();
    assert_eq!(old_store.schema_version().await.unwrap(), 6);
    drop(old_store);
    let insert =
        "INSERT INTO sluice_end_users (user_id, alias, spend, max_budget, blocked) VALUES ('old', 'Old', 1.5, 4.0, 1)";
    sql_on(&url, insert).await;
    let again = Store::open(&url, 2).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
    let old = again.get_end_user("old").await.unwrap().unwrap();
    assert_eq!(
        old,
        EndUserRecord {
            user_id: "old".into(),
            alias: Some("Old".into()),
            spend: 1.5,
            max_budget: Some(4.0),
            blocked: true,
            ..Default::default()
        }
    );
    let linked = EndUserRecord { budget_id: Some("b".into()), allowed_model_region: Some("us".into()), ..old };
    again.update_end_user(&linked).await.unwrap();
    assert_eq!(again.get_end_user("old").await.unwrap(), Some(linked));
}

/// A database from before migration 16 gets the per-team aggregates of the daily rows it
/// already has, so the per-team report of the days before the upgrade is unchanged.
async fn team_aggregates_filled_in_at_migration_16(db: &TestDb) {
    let (url, _keep) = match &db.kind {
        Kind::SqliteMemory => return,
        Kind::SqliteFile(dir) => (format!("sqlite://{}", dir.join("v15.db").display()), None),
        Kind::Postgres(_) => {
            let pg = common::PgDb::create().await;
            (pg.url.clone(), Some(pg))
        }
    };
    drop(Store::open_at_version(&url, 2, 15).await.unwrap());
    sql_on(
        &url,
        "INSERT INTO sluice_daily_spend (date, api_key, user_id, team_id, end_user, model, spend, prompt_tokens, \
         completion_tokens, api_requests) VALUES \
         ('2023-11-14', 'k1', 'u1', 't1', '', 'gpt-4o', 1.5, 10, 5, 2), \
         ('2023-11-14', 'k2', 'u2', 't1', '', 'gpt-4o', 2.0, 1, 1, 1), \
         ('2023-11-14', 'k3', 'u1', 't2', 'c', 'gpt-4o', 4.0, 1, 1, 1), \
         ('2023-11-15', 'k1', 'u1', 't1', 'c', 'claude', 0.5, 3, 3, 1)",
    )
    .await;
    let s = Store::open(&url, 2).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
    let rows = |group| {
        let s = &s;
        async move {
            let rows = s.daily_report(&DailyFilter::default(), group).await.unwrap();
            rows.into_iter()
                .map(|r| (r.date, r.group, r.model, r.spend, r.prompt_tokens, r.completion_tokens, r.api_requests))
                .collect::<Vec<_>>()
        }
    };
    let r = |d: &str, g: &str, m: &str, spend, p, c, n| (d.to_owned(), g.to_owned(), m.to_owned(), spend, p, c, n);
    assert_eq!(
        rows(ReportGroup::Team).await,
        [
            r("2023-11-14", "t1", "gpt-4o", 3.5, 11, 6, 3),
            r("2023-11-14", "t2", "gpt-4o", 4.0, 1, 1, 1),
            r("2023-11-15", "t1", "claude", 0.5, 3, 3, 1)
        ]
    );
    assert_eq!(
        rows(ReportGroup::EndUser).await,
        [
            r("2023-11-14", "", "gpt-4o", 3.5, 11, 6, 3),
            r("2023-11-14", "c", "gpt-4o", 4.0, 1, 1, 1),
            r("2023-11-15", "c", "claude", 0.5, 3, 3, 1)
        ]
    );
}

async fn organization_round_trip_spend_and_delete(db: &TestDb) {
    let s = &db.store;
    s.insert_budget(&BudgetRecord {
        budget_id: "ob1".into(),
        max_budget: Some(5.0),
        budget_duration: Some("1d".into()),
        budget_reset_at: Some(t(1_700_000_000_000)),
        ..Default::default()
    })
    .await
    .unwrap();
    let full = OrganizationRecord {
        organization_id: "o1".into(),
        organization_alias: Some("acme 'quoted'".into()),
        budget_id: Some("ob1".into()),
        models: vec!["gpt-4o".into(), "claude".into()],
        spend: 0.0,
        model_spend: Map::new(),
        metadata: obj(json!({"tier": "gold"})),
        blocked: true,
        created_at: Some(t(1_700_000_000_001)),
        created_by: Some("admin".into()),
        updated_at: Some(t(1_700_000_000_002)),
        updated_by: Some("admin".into()),
    };
    s.insert_organization(&full).await.unwrap();
    let sparse = OrganizationRecord { organization_id: "o2".into(), ..Default::default() };
    s.insert_organization(&sparse).await.unwrap();
    assert_eq!(s.get_organization("o1").await.unwrap().as_ref(), Some(&full));
    assert_eq!(s.get_organization("o2").await.unwrap().as_ref(), Some(&sparse));
    assert!(matches!(s.insert_organization(&sparse).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.all_organizations().await.unwrap().len(), 2);

    // Spend moves only through increments; an update leaves it.
    let inc = |amount: f64| SpendIncrement {
        spender: Spender::Organization("o1".into()),
        amount,
        per_model: vec![("gpt-4o".into(), amount)],
    };
    s.apply_increments(&[inc(1.5), inc(0.5)]).await.unwrap();
    let mut changed = full.clone();
    changed.organization_alias = None;
    changed.models.clear();
    s.update_organization(&changed).await.unwrap();
    let got = s.get_organization("o1").await.unwrap().unwrap();
    assert_eq!((got.spend, got.model_spend.get("gpt-4o").and_then(Value::as_f64)), (2.0, Some(2.0)));
    assert_eq!((got.organization_alias, got.models), (None, Vec::<String>::new()));

    // A reset zeroes the spend and moves the budget row's next reset.
    let next = Some(t(1_800_000_000_000));
    s.reset_spend(&Spender::Organization("o1".into()), next).await.unwrap();
    let got = s.get_organization("o1").await.unwrap().unwrap();
    assert_eq!((got.spend, got.model_spend.is_empty()), (0.0, true));
    assert_eq!(s.get_budget("ob1").await.unwrap().unwrap().budget_reset_at, next);

    // Deleting takes the memberships along; an unknown id is not reported.
    s.insert_org_member(&OrgMemberRecord { user_id: "u1".into(), organization_id: "o1".into(), ..Default::default() })
        .await
        .unwrap();
    let gone = s.delete_organizations(&["o1".into(), "nope".into()]).await.unwrap();
    assert_eq!(gone, vec!["o1".to_owned()]);
    assert_eq!(s.get_organization("o1").await.unwrap(), None);
    assert!(s.org_members("o1").await.unwrap().is_empty());
    assert!(s.get_organization("o2").await.unwrap().is_some());
}

async fn org_members_round_trip(db: &TestDb) {
    let s = &db.store;
    let m = |user: &str, org: &str, role: &str| OrgMemberRecord {
        user_id: user.into(),
        organization_id: org.into(),
        user_role: Some(role.into()),
        spend: 0.0,
        budget_id: None,
        created_at: Some(t(1_700_000_000_000)),
        updated_at: Some(t(1_700_000_000_000)),
    };
    s.insert_org_member(&m("u1", "o1", "org_admin")).await.unwrap();
    s.insert_org_member(&m("u2", "o1", "internal_user")).await.unwrap();
    s.insert_org_member(&m("u1", "o2", "internal_user")).await.unwrap();
    // One membership per user and organization.
    assert!(matches!(s.insert_org_member(&m("u1", "o1", "internal_user")).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.get_org_member("u1", "o1").await.unwrap(), Some(m("u1", "o1", "org_admin")));
    assert_eq!(s.get_org_member("u3", "o1").await.unwrap(), None);
    let users: Vec<String> = s.org_members("o1").await.unwrap().into_iter().map(|x| x.user_id).collect();
    assert_eq!(users, vec!["u1".to_owned(), "u2".to_owned()]);
    let orgs: Vec<String> =
        s.user_org_memberships("u1").await.unwrap().into_iter().map(|x| x.organization_id).collect();
    assert_eq!(orgs, vec!["o1".to_owned(), "o2".to_owned()]);
    assert_eq!(s.all_org_members().await.unwrap().len(), 3);

    let mut changed = m("u2", "o1", "org_admin");
    changed.budget_id = Some("b9".into());
    changed.updated_at = Some(t(1_700_000_000_500));
    assert!(s.update_org_member(&changed).await.unwrap());
    assert_eq!(s.get_org_member("u2", "o1").await.unwrap(), Some(changed));
    assert!(!s.update_org_member(&m("u9", "o1", "org_admin")).await.unwrap());

    // The import overwrites, spend included.
    let mut imported = m("u1", "o1", "internal_user");
    imported.spend = 3.0;
    s.upsert_org_members(&[imported.clone(), m("u4", "o1", "internal_user")]).await.unwrap();
    assert_eq!(s.get_org_member("u1", "o1").await.unwrap(), Some(imported));
    assert_eq!(s.org_members("o1").await.unwrap().len(), 3);

    assert!(s.delete_org_member("u2", "o1").await.unwrap());
    assert!(!s.delete_org_member("u2", "o1").await.unwrap());
    assert_eq!(s.org_members("o1").await.unwrap().len(), 2);
}

async fn config_params_round_trip(db: &TestDb) {
    let s = &db.store;
    assert!(s.config_params().await.unwrap().is_empty());
    let router = json!({"num_retries": 4, "fallbacks": [{"gpt-4o": ["claude"]}], "timeout": 12.5});
    s.put_config_param("router_settings", &router).await.unwrap();
    s.put_config_param("litellm_settings", &json!({"drop_params": true})).await.unwrap();
    let all = s.config_params().await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.param_name.as_str()).collect();
    assert_eq!(names, ["litellm_settings", "router_settings"]);
    assert_eq!(all[1].param_value, router);
    assert!(all[1].updated_at.timestamp_millis() > 0);
    // A second write replaces the section whole.
    s.put_config_param("router_settings", &json!({"num_retries": 1})).await.unwrap();
    let all = s.config_params().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].param_value, json!({"num_retries": 1}));
}

/// The daily aggregates are written with the logs, add up across batches, count a retried
/// batch once, and the reports read them with their filters and pages.
async fn daily_aggregates_follow_the_logs(db: &TestDb) {
    let s = &db.store;
    let logs = seed_logs(s).await;
    // A second batch adding to a's group (same day and ids). On PostgreSQL, with the first
    // batch again (a retry whose commit had landed, its reply lost): only the new row counts.
    // SQLite is local: a batch it failed was rolled back, so it never sees rows twice.
    let a2 = SpendLogRecord { request_id: "a2".into(), ..logs[0].clone() };
    let mut again = match db.kind {
        Kind::Postgres(_) => logs.clone(),
        _ => Vec::new(),
    };
    again.push(a2);
    write_logs(s, &again).await;
    let all = DailyFilter::default();
    let (rows, total) = s.daily_activity(&all, 1, 100).await.unwrap();
    assert_eq!(total, 4);
    let days: Vec<(&str, &str, f64, i64)> =
        rows.iter().map(|r| (r.date.as_str(), r.api_key.as_str(), r.sums.spend, r.sums.api_requests)).collect();
    assert_eq!(
        days,
        [
            ("2023-11-16", "k1", 8.0, 1),
            ("2023-11-15", "k1", 4.0, 1),
            ("2023-11-14", "k2", 2.0, 1),
            ("2023-11-14", "k1", 2.0, 2)
        ]
    );
    let a = &rows[3];
    assert_eq!(
        (a.user_id.as_str(), a.team_id.as_str(), a.end_user.as_str(), a.model.as_str(), a.provider.as_str()),
        ("u1", "t1", "customer-9", "gpt-4o", "openai")
    );
    assert_eq!((a.sums.prompt_tokens, a.sums.completion_tokens, a.sums.successful_requests), (20, 40, 2));
    assert_eq!((rows[0].sums.successful_requests, rows[0].sums.failed_requests), (0, 1));
    // Missing ids are ''.
    assert_eq!((rows[1].user_id.as_str(), rows[1].team_id.as_str()), ("", ""));

    // Pages, newest first.
    let (page2, total) = s.daily_activity(&all, 2, 3).await.unwrap();
    assert_eq!((page2.len(), total, page2[0].api_key.as_str()), (1, 4, "k1"));
    // Filters: user, teams, key, model, dates.
    let by = |f: DailyFilter| async move {
        let (rows, total) = s.daily_activity(&f, 1, 100).await.unwrap();
        assert_eq!(rows.len() as i64, total);
        rows.iter().map(|r| (r.date.clone(), r.sums.spend)).collect::<Vec<_>>()
    };
    let d = |day: &str, spend: f64| (day.to_owned(), spend);
    assert_eq!(
        by(DailyFilter { user_id: Some("u1".into()), ..Default::default() }).await,
        [d("2023-11-16", 8.0), d("2023-11-14", 2.0)]
    );
    assert_eq!(
        by(DailyFilter { team_ids: vec!["t2".into(), "t9".into()], ..Default::default() }).await,
        [d("2023-11-14", 2.0)]
    );
    assert_eq!(by(DailyFilter { model: Some("claude".into()), ..Default::default() }).await, [d("2023-11-14", 2.0)]);
    assert_eq!(
        by(DailyFilter {
            api_key: Some("k1".into()),
            start_date: Some("2023-11-15".into()),
            end_date: Some("2023-11-15".into()),
            ..Default::default()
        })
        .await,
        [d("2023-11-15", 4.0)]
    );

    // The report, summed per day, group and model.
    let teams = s.daily_report(&all, ReportGroup::Team).await.unwrap();
    let teams: Vec<(&str, &str, &str, f64, i64)> =
        teams.iter().map(|r| (r.date.as_str(), r.group.as_str(), r.model.as_str(), r.spend, r.api_requests)).collect();
    assert_eq!(
        teams,
        [
            ("2023-11-14", "t1", "gpt-4o", 2.0, 2),
            ("2023-11-14", "t2", "claude", 2.0, 1),
            ("2023-11-15", "", "gpt-4o", 4.0, 1),
            ("2023-11-16", "t1", "gpt-4o", 8.0, 1)
        ]
    );
    let keys = s
        .daily_report(&DailyFilter { end_date: Some("2023-11-14".into()), ..Default::default() }, ReportGroup::ApiKey)
        .await
        .unwrap();
    assert_eq!(keys.iter().map(|r| (r.group.as_str(), r.spend)).collect::<Vec<_>>(), [("k1", 2.0), ("k2", 2.0)]);
    let customers = s.daily_report(&all, ReportGroup::EndUser).await.unwrap();
    assert_eq!(customers.iter().filter(|r| r.group == "customer-9").map(|r| r.spend).sum::<f64>(), 12.0);

    // Tags: every tagged row's spend; dates bound them.
    let tags = s.tag_spend(None, None).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!((tags[0].tag.as_str(), tags[0].spend, tags[0].api_requests), ("prod", 12.0, 4));
    let early = s.tag_spend(Some("2023-11-14"), Some("2023-11-15")).await.unwrap();
    assert_eq!((early[0].spend, early[0].api_requests), (4.0, 3));
    assert!(s.tag_spend(Some("2030-01-01"), None).await.unwrap().is_empty());
}

/// `request_id=` finds a row by the provider's answer id too.
async fn response_ids_find_rows(db: &TestDb) {
    let s = &db.store;
    let rows: Vec<SpendLogRecord> = (0..5)
        .map(|i| SpendLogRecord {
            response_id: Some(format!("chatcmpl-{i}")),
            ..log(&format!("sluice-{i}"), "k1", 1_700_000_000_000 + i, 0.5)
        })
        .collect();
    write_logs(s, &rows).await;
    let find = |id: &str| SpendLogFilter { request_id: Some(id.into()), ..Default::default() };
    let found = s.spend_logs(&find("chatcmpl-3")).await.unwrap();
    assert_eq!(found, [rows[3].clone()]);
    assert_eq!(s.spend_logs(&find("sluice-3")).await.unwrap(), [rows[3].clone()]);
    assert!(s.spend_logs(&find("chatcmpl-9")).await.unwrap().is_empty());
    // Paging the raw rows: newest first, `offset` after `limit`.
    let page = SpendLogFilter { limit: Some(2), offset: Some(2), ..Default::default() };
    let ids: Vec<String> = s.spend_logs(&page).await.unwrap().into_iter().map(|l| l.request_id).collect();
    assert_eq!(ids, ["sluice-2", "sluice-1"]);
}

/// `/spend/logs`' daily summary read from the aggregates is what summing the rows gives.
async fn daily_summary_matches_the_logs(db: &TestDb) {
    let s = &db.store;
    seed_logs(s).await;
    let from_rows = s.spend_by_day(&SpendLogFilter::default()).await.unwrap();
    assert_eq!(from_rows.len(), 3);
    assert_eq!(s.daily_summary(&DailyFilter::default()).await.unwrap(), from_rows);
    let k2 = s.spend_by_day(&SpendLogFilter { api_key: Some("k2".into()), ..Default::default() }).await.unwrap();
    let f = DailyFilter { api_key: Some("k2".into()), ..Default::default() };
    assert_eq!(s.daily_summary(&f).await.unwrap(), k2);
    let f = DailyFilter { start_date: Some("2023-11-15".into()), user_id: Some("u1".into()), ..Default::default() };
    let days = s.daily_summary(&f).await.unwrap();
    assert_eq!(days.iter().map(|d| (d.date.as_str(), d.spend)).collect::<Vec<_>>(), [("2023-11-16", 8.0)]);
}
