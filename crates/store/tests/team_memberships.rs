//! Team members in the store, on a SQLite file, `sqlite::memory:` and PostgreSQL: concurrent
//! joins of one new member (by id and by email) leave one user row listing every team; a
//! member's budget in a team (`max_budget_in_team`) and its spend.

mod common;

use chrono::Utc;
use common::TestDb;
use sluice_store::*;

fn new_user(id: &str, email: Option<&str>) -> UserRecord {
    let now = Utc::now();
    UserRecord {
        user_id: id.to_owned(),
        user_email: email.map(str::to_owned),
        user_role: Some("internal_user".to_owned()),
        created_at: Some(now),
        updated_at: Some(now),
        ..Default::default()
    }
}

/// Ten joins at once, each naming the same not-yet-existing member for another team.
async fn concurrent_joins(db: &TestDb, by_email: bool) -> Vec<Joined> {
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move {
                // By email, each request would make up its own id for the new user.
                let id = if by_email { format!("made-up-{i}") } else { "new-u".to_owned() };
                let user = new_user(&id, Some("New.Member@example.com"));
                let email = if by_email { "new.member@EXAMPLE.com" } else { "New.Member@example.com" };
                let user = UserRecord { user_email: Some(email.to_owned()), ..user };
                store.join_team(&user, by_email, &format!("team-{i}"), Utc::now()).await.unwrap().1
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn concurrent_joins_make_one_user_by_id(db: &TestDb) {
    let how = concurrent_joins(db, false).await;
    assert_eq!(how.iter().filter(|h| **h == Joined::Created).count(), 1, "{how:?}");
    let users = db.store.all_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    let mut teams = users[0].teams.clone();
    teams.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("team-{i}")).collect();
    want.sort();
    assert_eq!(teams, want);
    // Joining again changes nothing.
    let (u, how) = db.store.join_team(&new_user("new-u", None), false, "team-3", Utc::now()).await.unwrap();
    assert_eq!(how, Joined::Already);
    assert_eq!(u.teams.len(), 10);
}

async fn concurrent_joins_make_one_user_by_email(db: &TestDb) {
    let how = concurrent_joins(db, true).await;
    assert_eq!(how.iter().filter(|h| **h == Joined::Created).count(), 1, "{how:?}");
    let users = db.store.all_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].teams.len(), 10, "{:?}", users[0].teams);
    // An existing user found by email keeps its id and role.
    let (u, how) =
        db.store.join_team(&new_user("other", Some("NEW.MEMBER@example.com")), true, "t-x", Utc::now()).await.unwrap();
    assert_eq!((how, u.user_id.as_str()), (Joined::Added, users[0].user_id.as_str()));
}

async fn member_budget_and_spend(db: &TestDb) {
    let s = &db.store;
    let now = Utc::now();
    assert_eq!(s.get_team_membership("u1", "t1").await.unwrap(), None);
    let (m, b) = s.set_member_budget("u1", "t1", Some(2.5), "b-1", Some("admin"), now).await.unwrap();
    assert_eq!(m.budget_id.as_deref(), Some("b-1"));
    assert_eq!(b.as_ref().and_then(|b| b.max_budget), Some(2.5));
    assert_eq!(s.get_budget("b-1").await.unwrap().unwrap().max_budget, Some(2.5));

    // Spend lands on the membership, not on another team's.
    let inc = |team: &str, amount: f64| SpendIncrement {
        spender: Spender::TeamMember("u1".into(), team.into()),
        amount,
        per_model: vec![("m".into(), amount)],
    };
    s.apply_increments(&[inc("t1", 1.0), inc("t1", 0.5), inc("t2", 4.0)]).await.unwrap();
    let got = s.get_team_membership("u1", "t1").await.unwrap().unwrap();
    assert_eq!((got.spend, got.budget_id.as_deref()), (1.5, Some("b-1")));
    assert_eq!(s.get_team_membership("u1", "t2").await.unwrap().unwrap().spend, 4.0);

    // A new limit updates the same budget row; the spend stays.
    let (m, _) = s.set_member_budget("u1", "t1", Some(3.0), "b-2", None, now).await.unwrap();
    assert_eq!((m.spend, m.budget_id.as_deref()), (1.5, Some("b-1")));
    assert_eq!(s.get_budget("b-1").await.unwrap().unwrap().max_budget, Some(3.0));
    assert_eq!(s.get_budget("b-2").await.unwrap(), None);
    assert_eq!(s.team_memberships(Some("t1")).await.unwrap().len(), 1);
    assert_eq!(s.team_memberships(None).await.unwrap().len(), 2);

    s.reset_spend(&Spender::TeamMember("u1".into(), "t1".into()), None).await.unwrap();
    assert_eq!(s.get_team_membership("u1", "t1").await.unwrap().unwrap().spend, 0.0);

    // `None` removes the budget; deleting the membership removes the row.
    let (m, b) = s.set_member_budget("u1", "t1", None, "b-3", None, now).await.unwrap();
    assert_eq!((m.budget_id, b), (None, None));
    assert_eq!(s.get_budget("b-1").await.unwrap(), None);
    s.set_member_budget("u1", "t1", Some(1.0), "b-4", None, now).await.unwrap();
    assert!(s.delete_team_membership("u1", "t1").await.unwrap());
    assert!(!s.delete_team_membership("u1", "t1").await.unwrap());
    assert_eq!(s.get_budget("b-4").await.unwrap(), None);
}

async fn team_model_aliases_round_trip(db: &TestDb) {
    let mut aliases = serde_json::Map::new();
    aliases.insert("fast".into(), "gpt-4o-mini".into());
    let t = TeamRecord { team_id: "t1".into(), model_aliases: aliases.clone(), ..Default::default() };
    db.store.insert_team(&t).await.unwrap();
    assert_eq!(db.store.get_team("t1").await.unwrap().unwrap().model_aliases, aliases);
    let t = TeamRecord { model_aliases: Default::default(), ..t };
    db.store.update_team(&t).await.unwrap();
    assert!(db.store.get_team("t1").await.unwrap().unwrap().model_aliases.is_empty());
}

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(&crate::common::TestDb::sqlite_file().await).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(&crate::common::TestDb::sqlite_memory().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(&crate::common::TestDb::postgres().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    concurrent_joins_make_one_user_by_id,
    concurrent_joins_make_one_user_by_email,
    member_budget_and_spend,
    team_model_aliases_round_trip,
);
