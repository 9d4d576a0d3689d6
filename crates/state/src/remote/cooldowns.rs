//! Deployment cooldowns shared through Redis: who cooled which deployment, until when, and why.
//!
//! A replica that cools a deployment writes `<prefix>cooldown:<deployment id>` (expiring with
//! the cooldown) and publishes the same note on `<prefix>cooldowns`; every replica's listener
//! applies the notes of the others to its own deadline. The key is for replicas that start (or
//! reconnect) while a cooldown runs: the listener reads every `cooldown:*` key each time its
//! subscription begins.
//!
//! Time crosses replicas as milliseconds *left* (`left_ms`, the key's remaining TTL when read
//! back), never as a wall-clock deadline: each replica adds it to its own monotonic clock, so
//! clocks that disagree between hosts do not stretch or cut a cooldown. `until_unix_ms` is there
//! for people reading Redis.
//!
//! A cooldown started while Redis is away stays this replica's until Redis answers again: it is
//! kept in [`Unsent`] and the heartbeat sends it then, with the time it has left, so the other
//! replicas stop routing to a deployment that is still failing.

use super::Remote;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The note a cooldown leaves in Redis (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownNote {
    /// The deployment's id (`model_info.id` or LiteLLM's hash of its entry).
    pub deployment: String,
    /// When it ends, in Unix milliseconds by the cooling replica's clock.
    pub until_unix_ms: u64,
    /// Milliseconds left when the note was written (or, read back from a key, its TTL).
    pub left_ms: u64,
    /// Why, e.g. `429 RateLimit`.
    pub reason: String,
    /// The replica that cooled it ([`Remote::replica`]).
    pub replica: String,
}

/// Sets the key only if it would outlive the one there (two replicas cooling at once keep the
/// longer cooldown, as each replica's own deadline does), and publishes the note either way.
const WRITE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
";

/// The channel cooldown notes are published on.
pub fn channel(remote: &Remote) -> String {
    format!("{}cooldowns", remote.prefix())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The most cooldowns kept for sending later: one per deployment is enough (a later one for the
/// same deployment replaces it), and this bounds what a long outage can hold.
const UNSENT_MAX: usize = 1_024;

/// Cooldowns Redis did not take, each with its deadline on this replica's monotonic clock.
#[derive(Debug, Default)]
pub(crate) struct Unsent(Mutex<Vec<(Instant, CooldownNote)>>);

impl Unsent {
    fn keep(&self, until: Instant, note: CooldownNote) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let full = held.len() >= UNSENT_MAX;
        match held.iter_mut().find(|(_, n)| n.deployment == note.deployment) {
            Some(slot) if slot.0 < until => *slot = (until, note),
            Some(_) => {}
            None if !full => held.push((until, note)),
            None => tracing::warn!("too many cooldowns waiting for Redis; this one stays on this replica"),
        }
    }

    fn take(&self) -> Vec<(Instant, CooldownNote)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Writes and publishes a cooldown of `deployment` for `duration`, in a task of its own: the
/// caller (a request's failure path) never waits for Redis. With Redis away the cooldown is
/// this replica's alone until the heartbeat finds Redis back and [`resend`]s it. Outside a
/// tokio runtime it stays this replica's.
pub fn publish(remote: &Arc<Remote>, deployment: &str, duration: Duration, reason: &str) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let left_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1);
    let until = Instant::now().checked_add(Duration::from_millis(left_ms)).unwrap_or_else(far_future);
    let note = CooldownNote {
        deployment: deployment.to_string(),
        until_unix_ms: unix_ms().saturating_add(left_ms),
        left_ms,
        reason: reason.to_string(),
        replica: remote.replica().to_string(),
    };
    let remote = remote.clone();
    runtime.spawn(async move {
        if !write(&remote, &note).await {
            tracing::debug!(deployment = %note.deployment, "cooldown kept on this replica until Redis takes it");
            remote.unsent_cooldowns.keep(until, note);
        }
    });
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Writes the note's key and publishes it; whether Redis took it.
async fn write(remote: &Remote, note: &CooldownNote) -> bool {
    let Ok(json) = serde_json::to_string(note) else { return true };
    let key = remote.key("cooldown", &note.deployment);
    let channel = channel(remote);
    let left_ms = note.left_ms;
    let done: Option<i64> = remote
        .call(|mut conn| async move {
            let script = redis::Script::new(WRITE);
            let mut call = script.key(&key);
            call.arg(&json).arg(left_ms).arg(&channel);
            call.invoke_async(&mut conn).await
        })
        .await;
    done.is_some()
}

/// Sends the cooldowns Redis did not take while it was away, with the time each has left; those
/// that ended meanwhile are dropped. What Redis still does not take is kept for the next call.
pub(crate) async fn resend(remote: &Remote) {
    let held = remote.unsent_cooldowns.take();
    if held.is_empty() {
        return;
    }
    let now = Instant::now();
    for (until, mut note) in held {
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            continue;
        }
        note.left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
        note.until_unix_ms = unix_ms().saturating_add(note.left_ms);
        if write(remote, &note).await {
            tracing::info!(deployment = %note.deployment, "cooldown started while Redis was away sent to the other replicas");
        } else {
            remote.unsent_cooldowns.keep(until, note);
        }
    }
}

/// Every cooldown running in Redis now (the notes of `cooldown:*`, `left_ms` being each key's
/// remaining TTL). `None` when Redis did not answer.
pub async fn running(remote: &Remote) -> Option<Vec<CooldownNote>> {
    let pattern = format!("{}*", remote.key("cooldown", ""));
    let mut cursor = 0u64;
    let mut notes = Vec::new();
    loop {
        let pattern = pattern.clone();
        let (next, keys): (u64, Vec<String>) = remote
            .call(|mut conn| async move {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if !keys.is_empty() {
            let found: Vec<(Option<String>, i64)> = remote
                .call(|mut conn| async move {
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.get(k).cmd("PTTL").arg(k);
                    }
                    let flat: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
                    let mut out = Vec::with_capacity(keys.len());
                    for pair in flat.chunks(2) {
                        let json: Option<String> = redis::from_redis_value_ref(&pair[0]).unwrap_or(None);
                        let ttl: i64 = redis::from_redis_value_ref(&pair[1]).unwrap_or(-2);
                        out.push((json, ttl));
                    }
                    Ok(out)
                })
                .await?;
            for (json, ttl) in found {
                let Some(mut note) = json.and_then(|j| serde_json::from_str::<CooldownNote>(&j).ok()) else { continue };
                if ttl > 0 {
                    note.left_ms = ttl as u64;
                    notes.push(note);
                }
            }
        }
        if next == 0 {
            return Some(notes);
        }
        cursor = next;
    }
}

/// How long the listener waits before subscribing again after Redis went away.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// Listens for the other replicas' cooldowns and hands each to `apply` (this replica's own are
/// skipped: they are applied already). At every (re)subscription, the cooldowns already running
/// in Redis are handed over first, so a replica that starts or reconnects mid-cooldown honours
/// it. `apply` returns `false` once whatever it applies to is gone; the listener then ends. It
/// also ends when the last `Arc` of `remote` is dropped.
pub fn listen(remote: &Arc<Remote>, apply: impl Fn(&CooldownNote) -> bool + Send + Sync + 'static) {
    let weak: Weak<Remote> = Arc::downgrade(remote);
    tokio::spawn(async move {
        loop {
            let Some(remote) = weak.upgrade() else { return };
            let me = remote.replica().to_string();
            let mut subscribed = None;
            if let Some(mut pubsub) = remote.pubsub().await {
                if pubsub.subscribe(channel(&remote)).await.is_ok() {
                    subscribed = Some(pubsub);
                }
            }
            if let Some(pubsub) = subscribed {
                // Subscribed first, read second: a cooldown published in between is seen twice
                // (harmless: the later deadline wins), never missed.
                for note in running(&remote).await.unwrap_or_default() {
                    if note.replica != me && !apply(&note) {
                        return;
                    }
                }
                drop(remote);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else { continue };
                    let Ok(note) = serde_json::from_str::<CooldownNote>(&payload) else { continue };
                    if note.replica != me && !apply(&note) {
                        return;
                    }
                }
                tracing::warn!("the cooldown subscription to Redis ended; subscribing again");
            } else {
                drop(remote);
            }
            tokio::time::sleep(RESUBSCRIBE_EVERY).await;
        }
    });
}
