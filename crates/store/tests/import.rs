//! `import_litellm` against a LiteLLM-shaped PostgreSQL database (the tables and column types
//! of LiteLLM's schema.prisma), imported into a SQLite store.

mod common;

use chrono::{TimeZone, Utc};
use serde_json::json;
use sluice_store::*;
use sqlx::Connection;

use common::{PgDb, TestDb};

const LITELLM_SCHEMA: &str = r#"
CREATE TABLE "LiteLLM_BudgetTable" (
    budget_id text PRIMARY KEY,
    max_budget double precision,
    soft_budget double precision,
    max_parallel_requests integer,
    tpm_limit bigint,
    rpm_limit bigint,
    model_max_budget jsonb,
    budget_duration text,
    budget_reset_at timestamp(3),
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by text NOT NULL DEFAULT 'admin',
    updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_by text NOT NULL DEFAULT 'admin'
);
CREATE TABLE "LiteLLM_VerificationToken" (
    token text PRIMARY KEY,
    key_name text,
    key_alias text,
    soft_budget_cooldown boolean NOT NULL DEFAULT false,
    spend double precision NOT NULL DEFAULT 0.0,
    expires timestamp(3),
    models text[],
    aliases jsonb NOT NULL DEFAULT '{}',
    config jsonb NOT NULL DEFAULT '{}',
    user_id text,
    team_id text,
    permissions jsonb NOT NULL DEFAULT '{}',
    max_parallel_requests integer,
    metadata jsonb NOT NULL DEFAULT '{}',
    blocked boolean,
    tpm_limit bigint,
    rpm_limit bigint,
    max_budget double precision,
    budget_duration text,
    budget_reset_at timestamp(3),
    allowed_cache_controls text[] DEFAULT ARRAY[]::text[],
    model_spend jsonb NOT NULL DEFAULT '{}',
    model_max_budget jsonb NOT NULL DEFAULT '{}',
    budget_id text REFERENCES "LiteLLM_BudgetTable"(budget_id),
    created_at timestamp(3) DEFAULT CURRENT_TIMESTAMP,
    created_by text,
    updated_at timestamp(3) DEFAULT CURRENT_TIMESTAMP,
    updated_by text
);
CREATE TABLE "LiteLLM_UserTable" (
    user_id text PRIMARY KEY,
    user_alias text,
    team_id text,
    sso_user_id text,
    organization_id text,
    password text,
    teams text[] DEFAULT ARRAY[]::text[],
    user_role text,
    max_budget double precision,
    spend double precision NOT NULL DEFAULT 0.0,
    user_email text,
    models text[],
    metadata jsonb DEFAULT '{}',
    max_parallel_requests integer,
    tpm_limit bigint,
    rpm_limit bigint,
    budget_duration text,
    budget_reset_at timestamp(3),
    allowed_cache_controls text[] DEFAULT ARRAY[]::text[],
    model_spend jsonb DEFAULT '{}',
    model_max_budget jsonb DEFAULT '{}',
    created_at timestamp(3) DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp(3) DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE "LiteLLM_TeamTable" (
    team_id text PRIMARY KEY,
    team_alias text,
    organization_id text,
    admins text[],
    members text[],
    members_with_roles jsonb NOT NULL DEFAULT '{}',
    metadata jsonb DEFAULT '{}',
    max_budget double precision,
    spend double precision NOT NULL DEFAULT 0.0,
    models text[],
    max_parallel_requests integer,
    tpm_limit bigint,
    rpm_limit bigint,
    budget_duration text,
    budget_reset_at timestamp(3),
    blocked boolean NOT NULL DEFAULT false,
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    model_spend jsonb NOT NULL DEFAULT '{}',
    model_max_budget jsonb NOT NULL DEFAULT '{}',
    model_id integer
);
CREATE TABLE "LiteLLM_EndUserTable" (
    user_id text PRIMARY KEY,
    alias text,
    spend double precision NOT NULL DEFAULT 0.0,
    allowed_model_region text,
    default_model text,
    budget_id text REFERENCES "LiteLLM_BudgetTable"(budget_id),
    blocked boolean NOT NULL DEFAULT false
);

CREATE TABLE "LiteLLM_OrganizationTable" (
    organization_id text PRIMARY KEY,
    organization_alias text NOT NULL,
    budget_id text NOT NULL REFERENCES "LiteLLM_BudgetTable"(budget_id),
    metadata jsonb NOT NULL DEFAULT '{}',
    models text[],
    spend double precision NOT NULL DEFAULT 0.0,
    model_spend jsonb NOT NULL DEFAULT '{}',
    object_permission_id text,
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by text NOT NULL,
    updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_by text NOT NULL
);
CREATE TABLE "LiteLLM_OrganizationMembership" (
    user_id text NOT NULL,
    organization_id text NOT NULL,
    user_role text,
    spend double precision DEFAULT 0.0,
    budget_id text REFERENCES "LiteLLM_BudgetTable"(budget_id),
    created_at timestamp(3) DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp(3) DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, organization_id)
);

INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, soft_budget, max_parallel_requests, tpm_limit, rpm_limit,
    model_max_budget, budget_duration, budget_reset_at)
VALUES ('b1', 50.0, 40.0, 3, 1000, 10, '{"gpt-4": 5.0}', '30d', '2024-02-01 00:00:00');

INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, spend, expires, models, aliases, user_id,
    team_id, max_parallel_requests, metadata, blocked, tpm_limit, rpm_limit, max_budget, budget_duration,
    budget_reset_at, model_spend, model_max_budget, created_at, created_by, updated_at, updated_by,
    allowed_cache_controls)
VALUES ('hash1', 'sk-...abcd', 'ci-key', 12.5, '2030-01-02 03:04:05.678', ARRAY['gpt-4', 'claude'],
    '{"fast": "gpt-4o-mini"}', 'u1', 't1', 7, '{"tags": ["prod"], "model_rpm_limit": {"gpt-4": 3}}', true, 900,
    9, 100.0, '7d', '2024-01-08 00:00:00', '{"gpt-4": 12.5}', '{"gpt-4": 50}', '2024-01-01 12:00:00.123',
    'admin', '2024-01-02 12:00:00', 'admin2', ARRAY['no-cache']);

-- Limits only through its budget row.
INSERT INTO "LiteLLM_VerificationToken" (token, key_name, spend, models, user_id, budget_id)
VALUES ('hash2', 'sk-...wxyz', 1.5, NULL, 'u1', 'b1');

INSERT INTO "LiteLLM_UserTable" (user_id, user_alias, team_id, teams, user_role, max_budget, spend, user_email,
    models, metadata, max_parallel_requests, tpm_limit, rpm_limit, budget_duration, budget_reset_at, model_spend,
    model_max_budget, created_at, updated_at)
VALUES ('u1', 'Alice', 't1', ARRAY['t1'], 'internal_user', 25.0, 14.0, 'alice@example.com', ARRAY[]::text[],
    '{"dept": "r&d"}', 2, 500, 5, '1mo', '2024-02-01 00:00:00', '{"gpt-4": 14.0}', '{}', '2023-12-01 00:00:00',
    '2023-12-02 00:00:00');

INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, organization_id, admins, members, members_with_roles,
    metadata, max_budget, spend, models, max_parallel_requests, tpm_limit, rpm_limit, budget_duration,
    budget_reset_at, blocked, model_spend, model_max_budget, created_at, updated_at)
VALUES ('t1', 'Research', 'org1', ARRAY['u1'], ARRAY['u1', 'u2'],
    '[{"role": "admin", "user_id": "u1", "user_email": null}, {"role": "user", "user_id": "u2", "user_email": "b@x.io"}]',
    '{"cost_center": 42}', 1000.0, 14.0, ARRAY['gpt-4'], 20, 10000, 100, '30d', NULL, false, '{"gpt-4": 14.0}',
    '{}', '2023-11-01 00:00:00', '2023-11-02 00:00:00');

INSERT INTO "LiteLLM_EndUserTable" (user_id, alias, spend, budget_id, blocked, allowed_model_region, default_model)
VALUES ('customer-1', 'Acme', 3.25, 'b1', true, 'eu', 'gpt-4');
"#;

fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, milli: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::Duration::milliseconds(milli)
}

async fn litellm_db(schema: &str) -> PgDb {
    let db = PgDb::create().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(schema).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_litellm_and_is_idempotent() {
    let source = litellm_db(LITELLM_SCHEMA).await;
    let target = TestDb::sqlite_file().await;
    let s = &target.store;

    let counts = import_litellm(&source.url, s).await.unwrap();
    assert_eq!(counts, ImportCounts { keys: 2, users: 1, teams: 1, end_users: 1, ..Default::default() });

    let k1 = s.get_key("hash1").await.unwrap().unwrap();
    assert_eq!(
        k1,
        KeyRecord {
            token: "hash1".into(),
            key_name: Some("sk-...abcd".into()),
            key_alias: Some("ci-key".into()),
            user_id: Some("u1".into()),
            team_id: Some("t1".into()),
            models: vec!["gpt-4".into(), "claude".into()],
            spend: 12.5,
            max_budget: Some(100.0),
            soft_budget: None,
            budget_duration: Some("7d".into()),
            budget_reset_at: Some(ms(2024, 1, 8, 0, 0, 0, 0)),
            expires: Some(ms(2030, 1, 2, 3, 4, 5, 678)),
            tpm_limit: Some(900),
            rpm_limit: Some(9),
            max_parallel_requests: Some(7),
            model_max_budget: json!({"gpt-4": 50}).as_object().unwrap().clone(),
            model_spend: json!({"gpt-4": 12.5}).as_object().unwrap().clone(),
            metadata: json!({"tags": ["prod"], "model_rpm_limit": {"gpt-4": 3}}).as_object().unwrap().clone(),
            aliases: json!({"fast": "gpt-4o-mini"}).as_object().unwrap().clone(),
            allowed_cache_controls: vec!["no-cache".into()],
            blocked: true,
            created_at: Some(ms(2024, 1, 1, 12, 0, 0, 123)),
            updated_at: Some(ms(2024, 1, 2, 12, 0, 0, 0)),
            created_by: Some("admin".into()),
            updated_by: Some("admin2".into()),
        }
    );

    // The budget row supplies what the key itself leaves empty.
    let k2 = s.get_key("hash2").await.unwrap().unwrap();
    assert_eq!(k2.spend, 1.5);
    assert!(k2.models.is_empty());
    assert_eq!(k2.max_budget, Some(50.0));
    assert_eq!(k2.soft_budget, Some(40.0));
    assert_eq!((k2.tpm_limit, k2.rpm_limit, k2.max_parallel_requests), (Some(1000), Some(10), Some(3)));
    assert_eq!(k2.budget_duration.as_deref(), Some("30d"));
    assert_eq!(k2.budget_reset_at, Some(ms(2024, 2, 1, 0, 0, 0, 0)));
    assert_eq!(k2.model_max_budget, json!({"gpt-4": 5.0}).as_object().unwrap().clone());
    assert!(!k2.blocked);
    assert!(k2.created_at.is_some());

    let u = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!(u.user_alias.as_deref(), Some("Alice"));
    assert_eq!(u.user_email.as_deref(), Some("alice@example.com"));
    assert_eq!(u.user_role.as_deref(), Some("internal_user"));
    assert_eq!(u.teams, vec!["t1".to_owned()]);
    assert!(u.models.is_empty());
    assert_eq!((u.spend, u.max_budget), (14.0, Some(25.0)));
    assert_eq!((u.tpm_limit, u.rpm_limit, u.max_parallel_requests), (Some(500), Some(5), Some(2)));
    assert_eq!(u.budget_reset_at, Some(ms(2024, 2, 1, 0, 0, 0, 0)));
    assert_eq!(u.metadata, json!({"dept": "r&d"}).as_object().unwrap().clone());
    assert_eq!(u.created_at, Some(ms(2023, 12, 1, 0, 0, 0, 0)));

    let tm = s.get_team("t1").await.unwrap().unwrap();
    assert_eq!(tm.team_alias.as_deref(), Some("Research"));
    assert_eq!(tm.organization_id.as_deref(), Some("org1"));
    assert_eq!(tm.admins, vec!["u1".to_owned()]);
    assert_eq!(tm.members, vec!["u1".to_owned(), "u2".to_owned()]);
    assert_eq!(
        tm.members_with_roles,
        vec![
            TeamMember { user_id: Some("u1".into()), user_email: None, role: "admin".into() },
            TeamMember { user_id: Some("u2".into()), user_email: Some("b@x.io".into()), role: "user".into() },
        ]
    );
    assert_eq!((tm.spend, tm.max_budget, tm.budget_reset_at), (14.0, Some(1000.0), None));
    assert_eq!(tm.models, vec!["gpt-4".to_owned()]);
    assert_eq!(tm.model_spend, json!({"gpt-4": 14.0}).as_object().unwrap().clone());
    assert!(!tm.blocked);

    let ends = s.all_end_users().await.unwrap();
    assert_eq!(
        ends,
        vec![EndUserRecord {
            user_id: "customer-1".into(),
            alias: Some("Acme".into()),
            spend: 3.25,
            max_budget: Some(50.0),
            blocked: true,
            budget_id: Some("b1".into()),
            allowed_model_region: Some("eu".into()),
            default_model: Some("gpt-4".into()),
        }]
    );
    // The budget the end user names comes across whole.
    let b1 = s.get_budget("b1").await.unwrap().unwrap();
    assert_eq!(
        (b1.max_budget, b1.soft_budget, b1.max_parallel_requests, b1.tpm_limit, b1.rpm_limit),
        (Some(50.0), Some(40.0), Some(3), Some(1000), Some(10))
    );
    assert_eq!(b1.budget_duration.as_deref(), Some("30d"));
    assert_eq!(b1.budget_reset_at, Some(ms(2024, 2, 1, 0, 0, 0, 0)));
    assert_eq!(b1.model_max_budget, json!({"gpt-4": 5.0}).as_object().unwrap().clone());
    assert_eq!(b1.created_by.as_deref(), Some("admin"));

    // Again, after spend moved in the store: same rows, the source's values.
    s.apply_increments(&[SpendIncrement { spender: Spender::Key("hash1".into()), amount: 1.0, per_model: vec![] }])
        .await
        .unwrap();
    let before = (s.all_keys().await.unwrap(), s.all_users().await.unwrap(), s.all_teams().await.unwrap());
    let report = import_litellm_report(&source.url, s).await.unwrap();
    assert_eq!(report.counts, counts);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let after = (s.all_keys().await.unwrap(), s.all_users().await.unwrap(), s.all_teams().await.unwrap());
    assert_eq!(after.0.len(), 2);
    assert_eq!(after.0[0], k1);
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);
    assert_eq!(s.all_end_users().await.unwrap(), ends);
    assert_eq!(s.get_budget("b1").await.unwrap(), Some(b1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_skips_what_an_old_litellm_lacks() {
    let source = litellm_db(
        r#"CREATE TABLE "LiteLLM_VerificationToken" (token text PRIMARY KEY, spend double precision NOT NULL
               DEFAULT 0, expires timestamp(3), models text[], user_id text);
           INSERT INTO "LiteLLM_VerificationToken" VALUES ('h', 2.0, NULL, ARRAY['a', NULL], 'u');"#,
    )
    .await;
    let target = TestDb::sqlite_memory().await;
    let report = import_litellm_report(&source.url, &target.store).await.unwrap();
    assert_eq!(report.counts, ImportCounts { keys: 1, ..Default::default() });
    for missing in [
        "LiteLLM_UserTable (table not found)",
        "LiteLLM_TeamTable (table not found)",
        "LiteLLM_EndUserTable (table not found)",
        "LiteLLM_BudgetTable (table not found)",
        "LiteLLM_VerificationToken.budget_id (column not found)",
    ] {
        assert!(report.skipped.iter().any(|s| s == missing), "{missing} not in {:?}", report.skipped);
    }
    let k = target.store.get_key("h").await.unwrap().unwrap();
    assert_eq!((k.spend, k.models.clone(), k.user_id.as_deref()), (2.0, vec!["a".to_owned()], Some("u")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_a_database_without_litellm_tables_fails_clearly() {
    let source = litellm_db("CREATE TABLE other (x int)").await;
    let target = TestDb::sqlite_memory().await;
    match import_litellm(&source.url, &target.store).await {
        Err(StoreError::Other(m)) => assert!(m.contains("LiteLLM_VerificationToken"), "{m}"),
        other => panic!("expected an error, got {other:?}"),
    }
    match import_litellm("postgres://u:secretpw@127.0.0.1:1/litellm", &target.store).await {
        Err(StoreError::Unavailable(m)) => assert!(!m.contains("secretpw"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Rows for LiteLLM's organization tables: one budget an organization names, one a membership
/// names, and one nobody names.
const LITELLM_ORGS: &str = r#"
INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, rpm_limit, budget_duration, budget_reset_at)
VALUES ('ob', 100.0, 50, '30d', '2024-02-01 00:00:00'), ('mb', 5.0, NULL, NULL, NULL), ('other', 1.0, NULL, NULL, NULL);
INSERT INTO "LiteLLM_OrganizationTable" (organization_id, organization_alias, budget_id, metadata, models, spend,
    model_spend, created_at, created_by, updated_at, updated_by)
VALUES ('org1', 'Acme', 'ob', '{"tier": "gold"}', ARRAY['gpt-4'], 7.5, '{"gpt-4": 7.5}', '2024-01-01 00:00:00',
    'admin', '2024-01-02 00:00:00', 'admin2');
INSERT INTO "LiteLLM_OrganizationMembership" (user_id, organization_id, user_role, spend, budget_id, created_at,
    updated_at)
VALUES ('u1', 'org1', 'org_admin', 1.25, 'mb', '2024-01-03 00:00:00', '2024-01-04 00:00:00'),
       ('u2', 'org1', 'internal_user', 0, NULL, '2024-01-03 00:00:00', '2024-01-04 00:00:00');
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_organizations_with_the_budgets_they_name() {
    let source = litellm_db(&format!("{LITELLM_SCHEMA}{LITELLM_ORGS}")).await;
    let target = TestDb::sqlite_memory().await;
    let s = &target.store;
    for _ in 0..2 {
        let counts = import_litellm(&source.url, s).await.unwrap();
        assert_eq!(counts.organizations, 1);
    }
    let org = s.get_organization("org1").await.unwrap().unwrap();
    assert_eq!(
        org,
        OrganizationRecord {
            organization_id: "org1".into(),
            organization_alias: Some("Acme".into()),
            budget_id: Some("ob".into()),
            models: vec!["gpt-4".into()],
            spend: 7.5,
            model_spend: json!({"gpt-4": 7.5}).as_object().unwrap().clone(),
            metadata: json!({"tier": "gold"}).as_object().unwrap().clone(),
            blocked: false,
            created_at: Some(ms(2024, 1, 1, 0, 0, 0, 0)),
            created_by: Some("admin".into()),
            updated_at: Some(ms(2024, 1, 2, 0, 0, 0, 0)),
            updated_by: Some("admin2".into()),
        }
    );
    let budget = s.get_budget("ob").await.unwrap().unwrap();
    assert_eq!((budget.max_budget, budget.rpm_limit), (Some(100.0), Some(50)));
    assert_eq!(budget.budget_reset_at, Some(ms(2024, 2, 1, 0, 0, 0, 0)));
    assert_eq!(s.get_budget("mb").await.unwrap().unwrap().max_budget, Some(5.0));
    // Every budget row comes across, named by an organization or not (end users name them too).
    assert_eq!(s.get_budget("other").await.unwrap().unwrap().max_budget, Some(1.0));
    let members = s.org_members("org1").await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        (
            members[0].user_id.as_str(),
            members[0].user_role.as_deref(),
            members[0].spend,
            members[0].budget_id.as_deref()
        ),
        ("u1", Some("org_admin"), 1.25, Some("mb"))
    );
    assert_eq!(members[1].created_at, Some(ms(2024, 1, 3, 0, 0, 0, 0)));
}
