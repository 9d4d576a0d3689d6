//! Live changes on every replica: what the management API changes on one replica (keys, users,
//! teams, and with `store_model_in_db` models and `/config/update`'s settings) reaches the others
//! within a second, without a restart.
//!
//! The replica that made a change publishes a small notice — what kind, which ids, who sent it —
//! on the Redis channel `prefix + "changes"` after the database took the write. Every replica
//! subscribes (one task, subscribing again after Redis returns) and re-reads just those entries
//! from the database, dropping the ones that are gone; its own notices it ignores.
//!
//! The database is the fallback: while Redis is absent, down (the breaker open) or the
//! subscription is not up, each replica polls it every [`POLL_DEGRADED`] — a few counts
//! ([`Store::change_mark`](sluice_store::Store::change_mark)), and all keys, users and teams
//! only when those moved; the stored models and settings (small tables) each time. While notices arrive it
//! polls the same way every [`POLL_HEALTHY`], for a notice lost on the way; and each time the
//! subscription comes up it re-reads everything once (pub/sub keeps nothing for a subscriber
//! that was away).
//!
//! Models: the router cannot take a deployment in place, so [`App::reroute`] swaps in a new one
//! in which every deployment that did not change keeps its live health.

use crate::app::App;
use crate::config::Env;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sluice_state::remote::{redis, Remote};
use sluice_store::{ModelRecord, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// How often the database is re-read while Redis does not carry notices.
pub const POLL_DEGRADED: Duration = Duration::from_secs(1);
/// How often it is re-read while it does: only a safety net for a notice lost on the way.
pub const POLL_HEALTHY: Duration = Duration::from_secs(30);

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Ids are key hashes (`token`), never the keys themselves.
    Key,
    User,
    Team,
    /// A model stored in the database (`model_id`).
    Model,
    /// An end user (`user_id`).
    EndUser,
    /// A budget row (`budget_id`).
    Budget,
    /// An organization (`organization_id`), read again with its budget.
    Organization,
    /// Settings sections stored by `/config/update` (`router_settings`, ...).
    Config,
}

/// One notice on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    kind: Kind,
    ids: Vec<String>,
    /// The sending replica ([`Remote::replica`]).
    from: String,
}

/// The sending side, held by [`App`]: the management API calls [`Changes::publish`] after each
/// write. Publishes nothing until [`spawn`] gives it a Redis connection.
#[derive(Default)]
pub struct Changes {
    remote: OnceLock<Arc<Remote>>,
    /// Wakes this replica's own poll: a replica ignores its own notices, but its router must
    /// take a model it stored too.
    models_here: Arc<tokio::sync::Notify>,
    /// Whether notices from the other replicas are arriving (the subscription is up).
    following: Arc<AtomicBool>,
    /// Model writes made through this replica, counted; and the count its router has taken in.
    /// A write's answer waits until its own count is routed, so the caller's next request sees
    /// the change.
    models_asked: AtomicU64,
    models_routed: tokio::sync::watch::Sender<u64>,
    /// Whether [`spawn`] started the task that routes them (else nothing would answer the wait).
    routing: AtomicBool,
}

/// The longest a model write waits for this replica's router to take it in before answering
/// anyway (the database is slow): the change is stored, and routed when the re-read succeeds.
const ROUTED_WAIT: Duration = Duration::from_secs(2);

impl Changes {
    /// Whether changes made on other replicas arrive through Redis now; `false`: they arrive
    /// through the database poll, within about [`POLL_DEGRADED`].
    pub fn following(&self) -> bool {
        self.following.load(Ordering::Relaxed) && self.remote.get().is_some_and(|r| r.healthy())
    }

    /// Tells the other replicas that these entries changed (or are gone). Waits at most the
    /// Redis call timeout and never fails the write: a notice that cannot be sent is carried
    /// by the other replicas' database poll instead. For models it also has this replica re-read
    /// them, and returns once its router has them (at most [`ROUTED_WAIT`]).
    pub async fn publish<I, S>(&self, kind: Kind, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ticket = (kind == Kind::Model).then(|| {
            let ticket = self.models_asked.fetch_add(1, Ordering::AcqRel) + 1;
            self.models_here.notify_one();
            ticket
        });
        self.announce(kind, ids).await;
        if let Some(ticket) = ticket.filter(|_| self.routing.load(Ordering::Relaxed)) {
            let mut routed = self.models_routed.subscribe();
            let done = tokio::time::timeout(ROUTED_WAIT, routed.wait_for(|n| *n >= ticket)).await;
            if !matches!(done, Ok(Ok(_))) {
                tracing::warn!(
                    "a stored model changed, but this replica has not re-read it within {} s; it is routed once the database answers",
                    ROUTED_WAIT.as_secs()
                );
            }
        }
    }

    /// The notice to the other replicas (see [`Changes::publish`]).
    async fn announce<I, S>(&self, kind: Kind, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let Some(remote) = self.remote.get() else { return };
        let ids: Vec<String> = ids.into_iter().map(Into::into).collect();
        if ids.is_empty() {
            return;
        }
        let notice = Notice { kind, ids, from: remote.replica().to_string() };
        let Ok(payload) = serde_json::to_string(&notice) else { return };
        let channel = channel(remote);
        let sent = remote
            .call(|mut conn| async move {
                redis::cmd("PUBLISH").arg(&channel).arg(&payload).query_async::<i64>(&mut conn).await
            })
            .await;
        if sent.is_none() {
            tracing::warn!(
                ?kind,
                "could not announce a change through Redis; the other replicas pick it up from the database within about {} s",
                POLL_DEGRADED.as_secs()
            );
        }
    }
}

fn channel(remote: &Remote) -> String {
    format!("{}changes", remote.prefix())
}

/// What the two tasks of one replica share.
struct Follower {
    app: Weak<App>,
    env: Env,
    /// Whether notices are arriving: the subscription is up ([`Changes::following`]).
    subscribed: Arc<AtomicBool>,
    /// The stored models the router was last built with, by id.
    /// The database's [`change_mark`](sluice_store::Store::change_mark) at the last full
    /// re-read: the poll reads keys, users and teams again only when it moved.
    mark: std::sync::Mutex<Option<[i64; 8]>>,
    /// Held across the read, so two re-reads cannot install an older list after a newer one.
    models: tokio::sync::Mutex<Option<HashMap<String, ModelRecord>>>,
}

/// Starts following changes made by other replicas: the subscriber (with `remote`) and the
/// database poll (always). Call once, after [`App::start`] built the app; [`App::start_with`]
/// does. The tasks end when the app is dropped. Models are routed with the config as
/// `/config/update` left it ([`crate::manage::LiveSettings`]).
pub fn spawn(app: &Arc<App>, env: &Env, remote: Option<Arc<Remote>>) {
    let follower = Arc::new(Follower {
        app: Arc::downgrade(app),
        env: env.clone(),
        subscribed: app.changes.following.clone(),
        mark: std::sync::Mutex::new(None),
        models: tokio::sync::Mutex::new(None),
    });
    if let Some(remote) = &remote {
        if app.changes.remote.set(remote.clone()).is_err() {
            tracing::warn!("live changes were started twice; the second start is ignored");
            return;
        }
        tokio::spawn(subscribe(follower.clone(), remote.clone()));
    }
    app.changes.routing.store(true, Ordering::Relaxed);
    tokio::spawn(poll(follower, remote, app.changes.models_here.clone()));
}

/// Re-reads everything every [`POLL_DEGRADED`] while notices do not arrive, else every
/// [`POLL_HEALTHY`].
async fn poll(follower: Arc<Follower>, remote: Option<Arc<Remote>>, models_here: Arc<tokio::sync::Notify>) {
    let mut last = tokio::time::Instant::now();
    loop {
        let here = tokio::select! {
            _ = tokio::time::sleep(POLL_DEGRADED) => false,
            _ = models_here.notified() => true,
        };
        if here {
            let Some(app) = follower.app.upgrade() else { return };
            if let Err(e) = follower.sync_models(&app).await {
                tracing::warn!(
                    "could not read the stored models back ({e}); they are routed once the database answers"
                );
            }
            continue;
        }
        let carried = follower.subscribed.load(Ordering::Relaxed) && remote.as_ref().is_some_and(|r| r.healthy());
        if carried && last.elapsed() < POLL_HEALTHY {
            continue;
        }
        last = tokio::time::Instant::now();
        let Some(app) = follower.app.upgrade() else { return };
        follower.poll_once(&app).await;
    }
}

/// Subscribes to the channel and applies each notice; subscribes again whenever the
/// connection ends (Redis restarted or went away).
async fn subscribe(follower: Arc<Follower>, remote: Arc<Remote>) {
    let channel = channel(&remote);
    let mut announced = false;
    loop {
        if follower.app.strong_count() == 0 {
            return;
        }
        let mut pubsub = match remote.pubsub().await {
            Some(p) => p,
            None => {
                tokio::time::sleep(POLL_DEGRADED).await;
                continue;
            }
        };
        if let Err(e) = pubsub.subscribe(&channel).await {
            tracing::debug!("subscribing to changes failed: {:?}", e.kind());
            tokio::time::sleep(POLL_DEGRADED).await;
            continue;
        }
        follower.subscribed.store(true, Ordering::Relaxed);
        if announced {
            tracing::info!("following changes through Redis again");
        }
        announced = true;
        // What changed while no notice could arrive.
        if let Some(app) = follower.app.upgrade() {
            follower.resync(&app).await;
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            let Some(app) = follower.app.upgrade() else { return };
            let Ok(payload) = msg.get_payload::<String>() else { continue };
            match serde_json::from_str::<Notice>(&payload) {
                Ok(n) if n.from == remote.replica() => {}
                Ok(n) => follower.apply(&app, n.kind, &n.ids).await,
                Err(e) => tracing::debug!("ignoring a change notice that does not parse: {e}"),
            }
        }
        follower.subscribed.store(false, Ordering::Relaxed);
        tracing::warn!(
            "the Redis subscription to changes ended; following them by reading the database every {} s until it is back",
            POLL_DEGRADED.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Follower {
    /// Re-reads the entries a notice names; anything that fails is left to a full re-read.
    async fn apply(&self, app: &App, kind: Kind, ids: &[String]) {
        let Some(store) = app.access.store() else { return };
        let registry = &app.access.registry;
        let result: Result<(), StoreError> = async {
            match kind {
                Kind::Key => {
                    for id in ids {
                        match store.get_key(id).await? {
                            Some(r) => drop(registry.put_key(r, true)),
                            None => drop(registry.keys.remove(id)),
                        }
                    }
                }
                Kind::User => {
                    for id in ids {
                        match store.get_user(id).await? {
                            Some(r) => drop(registry.put_user(r, true)),
                            None => drop(registry.users.remove(id)),
                        }
                    }
                }
                Kind::Team => {
                    for id in ids {
                        match store.get_team(id).await? {
                            Some(r) => {
                                registry.put_team(r, true);
                                app.access.reload_members(id).await?;
                            }
                            None => {
                                registry.teams.remove(id);
                                registry.members.remove_team(id);
                            }
                        }
                    }
                }
                Kind::Model => self.sync_models(app).await?,
                Kind::EndUser => {
                    for id in ids {
                        match store.get_end_user(id).await? {
                            Some(r) => drop(registry.put_end_user(r, true)),
                            None => drop(registry.end_users.remove(id)),
                        }
                    }
                }
                Kind::Budget => {
                    for id in ids {
                        match store.get_budget(id).await? {
                            Some(r) => drop(registry.put_budget(r)),
                            None => drop(registry.budgets.remove(id)),
                        }
                    }
                }
                Kind::Organization => {
                    for id in ids {
                        app.access.reload_organization(id).await?;
                    }
                }
                Kind::Config => crate::manage::reload_settings(app).await?,
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(?kind, "could not read a changed entry from the database ({e}); reading everything again");
            self.resync(app).await;
        }
    }

    /// One tick of the poll: keys, users and teams are read again only if the
    /// database's change mark moved (a few counts, instead of every row each second); the
    /// stored models, a small table, each time.
    async fn poll_once(&self, app: &App) {
        let Some(store) = app.access.store() else { return };
        let mark = match store.change_mark().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("could not poll the database for changes: {e}");
                return;
            }
        };
        let before = *self.mark.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if before != Some(mark) {
            if let Err(e) = app.access.load().await {
                tracing::debug!("could not re-read keys from the database: {e}");
                return;
            }
            *self.mark.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mark);
        }
        if let Err(e) = self.sync_models(app).await {
            tracing::debug!("could not re-read stored models from the database: {e}");
        }
        if let Err(e) = crate::manage::reload_settings(app).await {
            tracing::debug!("could not re-read the stored settings from the database: {e}");
        }
    }

    /// Re-reads keys, users, teams, stored models and stored settings.
    async fn resync(&self, app: &App) {
        let mark = match app.access.store() {
            Some(store) => store.change_mark().await.ok(),
            None => None,
        };
        match app.access.load().await {
            Ok(()) => *self.mark.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = mark,
            Err(e) => tracing::debug!("could not re-read keys from the database: {e}"),
        }
        if let Err(e) = self.sync_models(app).await {
            tracing::debug!("could not re-read stored models from the database: {e}");
        }
        if let Err(e) = crate::manage::reload_settings(app).await {
            tracing::debug!("could not re-read the stored settings from the database: {e}");
        }
    }

    /// Reads the stored models and, if any was added, changed or deleted since the router was
    /// last built, swaps in a router with them.
    async fn sync_models(&self, app: &App) -> Result<(), StoreError> {
        if !app.store_model_in_db {
            return Ok(());
        }
        let Some(store) = app.access.store() else { return Ok(()) };
        let mut last = self.models.lock().await;
        // Every model write counted before this read is in what it returns.
        let asked = app.changes.models_asked.load(Ordering::Acquire);
        let models = store.all_models().await?;
        let now: HashMap<String, ModelRecord> = models.iter().map(|m| (m.model_id.clone(), m.clone())).collect();
        let changed: HashSet<String> = match last.as_ref() {
            Some(before) => {
                let gone = before.keys().filter(|id| !now.contains_key(*id));
                let new_or_changed = now.iter().filter(|(id, m)| before.get(*id) != Some(m)).map(|(id, _)| id);
                gone.chain(new_or_changed).cloned().collect()
            }
            // The first read: what start loaded is not known record by record, so every stored
            // model is built again (once).
            None => now.keys().cloned().collect(),
        };
        if last.is_none() || !changed.is_empty() {
            let specs = crate::manage::deployments_from_db(&models, &self.env);
            app.live_settings.route_models(app, specs, &changed);
            if last.is_some() {
                tracing::info!(models = changed.len(), "stored models changed; routing them from now on");
            }
            *last = Some(now);
        }
        app.changes.models_routed.send_if_modified(|routed| {
            let newer = asked > *routed;
            *routed = (*routed).max(asked);
            newer
        });
        Ok(())
    }
}
