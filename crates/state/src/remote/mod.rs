//! The connection to Redis that replicas share state through: one multiplexed connection (the
//! `redis` crate's `ConnectionManager`, which reconnects by itself), every call bounded by a short
//! timeout and guarded by a [`Breaker`], and a heartbeat that counts the live replicas.
//!
//! Nothing on the request path waits for Redis in the common case: the shared counters keep
//! local state and talk to Redis in the background or only near a limit. When Redis is away the
//! breaker is open, calls return `None` at once, and each replica falls back to its
//! [`share`](Remote::share) of every limit until Redis answers again.

/// A Lua function for the scripts that count per-replica fields of a hash (in-flight slots,
/// budget holds): `live_sum(hash, live, me)` sums the fields of the replicas still in the
/// heartbeat's set `live` (and `me`'s), deleting those of replicas gone, so a replica that died
/// does not hold its share forever.
macro_rules! live_sum_lua {
    () => {
        r"
local function live_sum(hash, live, me)
  local n = 0
  local fields = redis.call('HGETALL', hash)
  for j = 1, #fields, 2 do
    if fields[j] ~= me and not redis.call('ZSCORE', live, fields[j]) then
      redis.call('HDEL', hash, fields[j])
    else
      n = n + tonumber(fields[j + 1])
    end
  end
  return n
end
"
    };
}

pub mod breaker;
pub mod cap;
pub mod cooldowns;
pub mod spend;
pub mod window;

use breaker::Breaker;
use redis::aio::ConnectionManager;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use redis;

/// Where Redis is and how this gateway names its keys there.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// `redis://[user][:password@]host:port[/db]` (or `rediss://` for TLS).
    pub url: String,
    /// Put before every key, so several gateways (or tests) can share one Redis.
    pub prefix: String,
    /// The most one call may take before it counts as a failure and opens the breaker.
    pub op_timeout: Duration,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only whether it does is printed.
        let login =
            self.url.split_once("://").is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@'));
        f.debug_struct("RemoteConfig")
            .field("url", &if login { "redis://<credentials hidden>@..." } else { self.url.as_str() })
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "sluice:";
/// The default bound on one call.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a replica announces itself, and how long it stays counted without doing so.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
pub const REPLICA_TTL: Duration = Duration::from_secs(5);

/// Runs `step` on `owner` every `period` (a late tick is delayed, not bunched) on the current
/// runtime, until the last `Arc` of `owner` is dropped: the background syncs of what replicas
/// share (the heartbeat, the windows, the budgets) hold no reference that keeps them alive.
pub fn every<T, F, Fut>(period: Duration, owner: &Arc<T>, step: F)
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(owner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(owner) = weak.upgrade() else { return };
            step(owner).await;
        }
    });
}

/// The shared connection. Cheap to call from anywhere; clone the `Arc`.
pub struct Remote {
    client: redis::Client,
    /// `None` until the first connection succeeds (Redis may be away at start).
    conn: RwLock<Option<ConnectionManager>>,
    prefix: String,
    op_timeout: Duration,
    breaker: Breaker,
    /// This process's name among the replicas.
    replica: String,
    /// Live replicas as last counted (at least 1: this one).
    replicas: AtomicU64,
    /// Cooldowns this replica started while Redis did not take them, sent by the heartbeat
    /// once it answers again.
    unsent_cooldowns: cooldowns::Unsent,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("Remote").field("prefix", &self.prefix).field("replica", &self.replica).finish()
    }
}

impl Remote {
    /// Checks the URL and tries to connect once (within `op_timeout` × 20); if Redis is away the
    /// gateway starts anyway, degraded (the breaker open), and [`Remote::spawn_heartbeat`] keeps
    /// trying. A URL that cannot be parsed is an error: the setting would silently share nothing.
    pub async fn connect(config: &RemoteConfig) -> Result<Arc<Remote>, String> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            format!("the Redis address is not usable: {:?}; expected redis://[:password@]host:port[/db]", e.kind())
        })?;
        let remote = Arc::new(Remote {
            client,
            conn: RwLock::new(None),
            prefix: config.prefix.clone(),
            op_timeout: config.op_timeout,
            breaker: Breaker::default(),
            replica: uuid::Uuid::new_v4().simple().to_string(),
            replicas: AtomicU64::new(1),
            unsent_cooldowns: cooldowns::Unsent::default(),
        });
        if !remote.reconnect().await {
            remote.breaker.failed();
            tracing::error!(
                "Redis is not reachable at start; serving with each limit divided among the replicas last known (1) until it is"
            );
        }
        Ok(remote)
    }

    /// Opens the connection if there is none; whether there is one now.
    async fn reconnect(&self) -> bool {
        if self.conn.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            return true;
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout * 20))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            self.op_timeout * 30,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                *self.conn.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn);
                true
            }
            Ok(Err(e)) => {
                tracing::debug!("Redis connection failed: {:?}", e.kind());
                false
            }
            Err(_) => false,
        }
    }

    /// Runs one call on the shared connection, within the call timeout, through the breaker.
    /// `None` when the breaker is open, there is no connection, or the call failed or timed out;
    /// the caller then goes on with what it knows locally. Never waits longer than the timeout.
    pub async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return None;
        }
        let conn = self.conn.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(conn) = conn else {
            self.breaker.failed();
            return None;
        };
        match tokio::time::timeout(self.op_timeout, f(conn)).await {
            Ok(Ok(v)) => {
                if self.breaker.succeeded() {
                    tracing::warn!("Redis answers again: limits, budgets and cooldowns are shared again");
                }
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(&format!("{:?} ({})", e.kind(), e.category()));
                None
            }
            Err(_) => {
                self.fail(&format!("no answer within {} ms", self.op_timeout.as_millis()));
                None
            }
        }
    }

    fn fail(&self, why: &str) {
        if self.breaker.failed() {
            tracing::error!(
                "Redis call failed: {why}; each replica now counts limits on its own (its share of each) until Redis answers"
            );
        }
    }

    /// A connection for pub/sub (a connection of its own, as Redis requires).
    pub async fn pubsub(&self) -> Option<redis::aio::PubSub> {
        tokio::time::timeout(self.op_timeout * 20, self.client.get_async_pubsub()).await.ok()?.ok()
    }

    /// `prefix` + `kind` + `:` + `name`: every key this gateway writes.
    pub fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// The key prefix, for patterns and channels.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether Redis is answering (the breaker is closed).
    pub fn healthy(&self) -> bool {
        !self.breaker.is_open()
    }

    /// Calls that failed since the start.
    pub fn failures(&self) -> u64 {
        self.breaker.failures()
    }

    /// Live replicas as last counted, this one included (the last count while Redis is away).
    pub fn replicas(&self) -> u64 {
        self.replicas.load(Ordering::Relaxed).max(1)
    }

    /// This replica's share of `limit` while it cannot ask Redis: the limit divided among the
    /// replicas last known, at least 1 of a non-zero limit (so a small limit still admits).
    pub fn share(&self, limit: u64) -> u64 {
        if limit == 0 {
            return 0;
        }
        (limit / self.replicas()).max(1)
    }

    /// Announces this replica every [`HEARTBEAT_EVERY`] and counts the others; also what brings
    /// the connection back after a start without Redis. Ends when the last `Arc` is dropped.
    pub fn spawn_heartbeat(self: &Arc<Self>) {
        every(HEARTBEAT_EVERY, self, |remote| async move { remote.heartbeat().await });
    }

    /// One heartbeat: registers this replica, drops the silent ones, counts the rest.
    pub async fn heartbeat(&self) {
        if !self.reconnect().await {
            self.fail("cannot connect");
            return;
        }
        let set = self.key("replicas", "live");
        let me = self.replica.clone();
        let count: Option<u64> = self
            .call(|mut conn| async move {
                let now: (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
                let now_ms = now.0 * 1000 + now.1 / 1000;
                let (_, _, n): (i64, i64, u64) = redis::pipe()
                    .atomic()
                    .zadd(&set, &me, now_ms)
                    .zrembyscore(&set, "-inf", now_ms.saturating_sub(REPLICA_TTL.as_millis() as u64))
                    .zcard(&set)
                    .pexpire(&set, REPLICA_TTL.as_millis() as i64)
                    .ignore()
                    .query_async(&mut conn)
                    .await?;
                Ok(n)
            })
            .await;
        if let Some(n) = count {
            self.replicas.store(n.max(1), Ordering::Relaxed);
            cooldowns::resend(self).await;
        }
    }
}
