//! `App::start` and `App::shutdown` as the binary uses them: spend billed while serving reaches
//! the database at shutdown, without the binary reaching into the access layer.

use sluice_server::config::{Config, Env};
use sluice_server::App;
use sluice_store::{KeyRecord, Spender};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_the_spend_still_in_memory() {
    let dir = std::env::temp_dir().join(format!("sluice_app_shutdown_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("s.db");
    // A batch interval longer than the test: only the shutdown's last write can store the spend.
    let yaml = format!(
        "general_settings:\n  master_key: sk-master\n  database_url: sqlite://{}\n  proxy_batch_write_at: 3600\n",
        db.display()
    );
    let env = Env::fixed(std::iter::empty());
    let config = Config::from_yaml_str(&yaml, env.clone()).unwrap();
    assert_eq!(App::database_url(&config, &env), format!("sqlite://{}", db.display()));
    let app = App::start(&config, &env).await.unwrap();
    let store = app.access.store().expect("the database opened").clone();
    store.insert_key(&KeyRecord { token: "tok".into(), ..Default::default() }).await.unwrap();
    app.access.load().await.unwrap();

    let key = app.access.registry.key("tok").unwrap();
    if key.live.ledger.charge(0.25, None) {
        app.access.writer.dirty(Spender::Key("tok".into()), &key.live);
    }
    assert_eq!(store.get_key("tok").await.unwrap().unwrap().spend, 0.0, "not written while serving");

    app.shutdown().await;
    assert_eq!(store.get_key("tok").await.unwrap().unwrap().spend, 0.25);
    let _ = std::fs::remove_dir_all(&dir);
}
