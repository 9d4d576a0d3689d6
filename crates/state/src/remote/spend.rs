//! Budget spend shared through Redis, so that N replicas spend one `max_budget`, not N of them.
//!
//! Each spender with a budget (a key, user, team, end user, or a key's per-model budget) has one
//! total in Redis, `prefix + "spend:" + kind:id`, added to with `INCRBYFLOAT` and rebuilt with
//! the database's view (written spend + this replica's pending) whenever it is absent or lower
//! than that view (a flushed or restarted Redis). Beside it, `prefix + "held:" + kind:id` is a
//! hash of the in-flight estimates each replica holds on that budget, one field per replica, so
//! the fields of a replica that died (gone from the heartbeat's set) stop counting.
//!
//! The request path never waits for this in the common case: a [`SharedSpend`] keeps the last
//! total read and the charges not yet sent; [`SpendBook::sync`] sends and reads them all in one
//! script call every [`SYNC_EVERY`]. Only a spender [`near`](SharedSpend::near) its budget (or
//! whose requests on this replica approach this replica's share of what is left) is
//! asked about per request ([`SharedSpend::hold`]): a script checks total + held estimates
//! against the budget and holds this request's estimate, so two replicas cannot both spend the
//! last dollar. The database stays the durable record: Redis is never the source of spend written.

use super::Remote;
use crate::counter::AtomicF64;
use crate::BudgetCounter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// [`SharedSpend::held_sent`] after a call that got no answer: whatever this replica holds, the
/// next call sends it.
const HELD_UNKNOWN: u64 = u64::MAX;

/// How often each replica sends its charges and reads every shared total.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);

/// A spender is near its budget when what is left is under this fraction of it...
const NEAR_FRACTION: f64 = 0.1;
/// ...or under what all replicas may spend in this long at the recent rate (a total read is at
/// most [`SYNC_EVERY`] old: ten times that is the margin for bursts).
const NEAR_HORIZON_S: f64 = 1.0;
/// Until the rate is known (two reads), a spender counts as near: a burst in a budget's first
/// moments is checked in Redis rather than trusted to a view that has not seen it.
const READS_BEFORE_TRUSTED: u64 = 2;

/// The view of the database a total is rebuilt from: (written spend + this replica's pending,
/// this replica's pending alone).
pub type Floor = Box<dyn Fn() -> (f64, f64) + Send + Sync>;

/// One spender's shared total, as this replica sees it.
pub struct SharedSpend {
    remote: Arc<Remote>,
    /// `kind:id`.
    name: String,
    total_key: String,
    held_key: String,
    epoch_key: String,
    /// The epoch of the total as this replica last synced it ('' before the first sync).
    epoch: Mutex<String>,
    /// When this replica bound the total (unix ms).
    bound_ms: u64,
    floor: Floor,
    /// The total as Redis last said (it includes every charge sent, from every replica).
    total: AtomicF64,
    /// Charged here and not yet added in Redis.
    unsent: AtomicF64,
    /// Taken out of `unsent` by a call on its way to Redis (still counted in the view; put back
    /// in `unsent` if the call fails). Taking, not reading, keeps two racing calls from both
    /// sending one charge.
    sending: AtomicF64,
    /// The estimates this replica's requests in flight hold on the budget (nano-USD): what its
    /// field in the hash should say. Sent as a figure, not as a change, so that a call that timed
    /// out after Redis ran it can be repeated without taking an estimate out twice.
    held_here: AtomicU64,
    /// What this replica's field in the hash says as far as it knows ([`HELD_UNKNOWN`] after a
    /// call that got no answer): a sync sends `held_here` only when they differ.
    held_sent: AtomicU64,
    /// Recent spend per second over all replicas, from successive reads.
    rate: AtomicF64,
    reads: AtomicU64,
    last_read: Mutex<Option<(f64, Instant)>>,
    /// Set when admission found the spender near its budget: charges are sent at once.
    near: AtomicBool,
    /// Held by each call that sends this total's charges and released estimates, from taking
    /// them until Redis answered: calls reach Redis in the order they took, so an estimate is
    /// never taken out there before the charge that replaced it was added (two calls in flight
    /// at once could arrive the other way round, and for that moment the budget would count
    /// neither, letting another replica spend the same dollars).
    turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SharedSpend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSpend").field("key", &self.total_key).field("total", &self.total.read()).finish()
    }
}

/// What Redis said about a request held against a budget near its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Held: the estimate counts in Redis until the [`Held`] guard is dropped.
    Held { total: f64, others: f64 },
    /// The total alone reaches the budget.
    Spent { total: f64 },
    /// The total with the estimates held by requests in flight reaches it.
    InFlight { total: f64, others: f64 },
}

/// Brings one total up to date (a Lua function the scripts below share): sends this replica's
/// unsent charges (`delta`), rebuilds an absent total from the database's view (`floor`: written
/// spend + this replica's pending) under a new epoch (`fresh`), and raises a low one to that view
/// when asked (`raise`: after an outage or a reload; only then, as a replica whose budget period
/// has not yet reset here would otherwise raise a total another replica just reset). A replica
/// that finds the epoch changed since its last sync (`mine`: another replica rebuilt the total
/// from the database) adds what it has not written (`pending`) instead of its unsent charges,
/// some of which the database, and so the rebuilt total, already holds; so does a replica that
/// never synced this total and finds it rebuilt after it bound it (`since`, unix ms).
/// Returns the total (Redis's string: exact, unlike a Lua number), the epoch, '1' if rebuilt.
macro_rules! settle_lua {
    () => {
        r"
local function settle(total, epoch, floor, delta, mine, pending, raise, fresh, since)
  local v = redis.call('GET', total)
  local e = redis.call('GET', epoch)
  if not v then
    redis.call('SET', total, floor)
    redis.call('SET', epoch, fresh)
    return floor, fresh, '1'
  end
  if not e then
    e = fresh
    redis.call('SET', epoch, e)
  end
  local changed = mine ~= '' and e ~= mine
  if mine == '' then
    -- Never synced here: the total was rebuilt after this replica bound it (its charges may be
    -- in the database it was rebuilt from) if the epoch is younger (epochs end in unix ms).
    changed = (tonumber(string.match(e, ':(%d+)$')) or 0) > tonumber(since)
  end
  if changed then
    if tonumber(pending) ~= 0 then v = redis.call('INCRBYFLOAT', total, pending) end
    return v, e, '0'
  end
  if tonumber(delta) ~= 0 then v = redis.call('INCRBYFLOAT', total, delta) end
  if raise == '1' and tonumber(v) < tonumber(floor) then
    redis.call('SET', total, floor)
    v = floor
  end
  return v, e, '0'
end
"
    };
}

/// Sets this replica's field in a budget's hash of held estimates to what it holds now (nano-USD;
/// 0 removes it, a negative figure leaves it).
macro_rules! set_held_lua {
    () => {
        r"
local function set_held(hash, me, held)
  local n = tonumber(held)
  if n == 0 then redis.call('HDEL', hash, me) elseif n > 0 then redis.call('HSET', hash, me, held) end
end
"
    };
}

/// Sends pending charges and released estimates and reads the totals of many spenders. KEYS:
/// total, held, epoch for each; ARGV: me, raise, fresh epoch, then floor, delta, held (this
/// replica's estimates held, nano-USD; -1: unchanged), mine, pending, since for each. Returns
/// total, epoch, rebuilt for each.
const SYNC: &str = concat!(
    settle_lua!(),
    set_held_lua!(),
    r"
local out = {}
for i = 1, #KEYS / 3 do
  local k, a = 3 * (i - 1), 3 + 6 * (i - 1)
  local v, e, rebuilt = settle(KEYS[k + 1], KEYS[k + 3], ARGV[a + 1], ARGV[a + 2], ARGV[a + 4], ARGV[a + 5], ARGV[2], ARGV[3], ARGV[a + 6])
  set_held(KEYS[k + 2], ARGV[1], ARGV[a + 3])
  out[3 * i - 2] = v
  out[3 * i - 1] = e
  out[3 * i] = rebuilt
end
return out
"
);

/// The per-request check near a budget. KEYS: total, held, epoch, live replicas. ARGV: me,
/// fresh epoch, floor, delta, mine, pending, max, past (1: refused only past max, the proxy
/// budget's rule), nanos to hold, since, what this replica holds already. Returns {0 spent | 1 in flight | 2 held, total, others' held
/// nanos, epoch}.
const HOLD: &str = concat!(
    settle_lua!(),
    live_sum_lua!(),
    set_held_lua!(),
    r"
local v, e = settle(KEYS[1], KEYS[3], ARGV[3], ARGV[4], ARGV[5], ARGV[6], '0', ARGV[2], ARGV[10])
set_held(KEYS[2], ARGV[1], ARGV[11])
local held = live_sum(KEYS[2], KEYS[4], ARGV[1])
local max = tonumber(ARGV[7])
local function over(x)
  if ARGV[8] == '1' then return x > max end
  return x >= max
end
if over(tonumber(v)) then return {0, v, held, e} end
if over(tonumber(v) + held / 1e9) then return {1, v, held, e} end
local n = tonumber(ARGV[9])
if n > 0 then redis.call('HINCRBY', KEYS[2], ARGV[1], n) end
return {2, v, held, e}
"
);

/// A budget period ended (or an admin set the spend): the total becomes `ARGV[1]`, once per
/// period however many replicas reset it (`ARGV[2]` names the period).
const RESET: &str = r"
if redis.call('GET', KEYS[2]) == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
";

/// Every shared total this replica has bound, and the loop that keeps them in step.
pub struct SpendBook {
    remote: Arc<Remote>,
    spends: Mutex<Vec<Weak<SharedSpend>>>,
    /// [`Remote::failures`] at the last sync that went through: more now means Redis was away
    /// in between, and totals are reconciled with the database's view.
    failures_seen: AtomicU64,
}

impl std::fmt::Debug for SpendBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendBook").field("remote", &self.remote).finish()
    }
}

/// The most totals one script call carries.
const BATCH: usize = 256;

impl SpendBook {
    pub fn new(remote: Arc<Remote>) -> Arc<SpendBook> {
        Arc::new(SpendBook { remote, spends: Mutex::new(Vec::new()), failures_seen: AtomicU64::new(u64::MAX) })
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// The shared total of `kind:id`, rebuilt from `floor` when Redis has none. Registered for
    /// the background sync; dropped from it when the caller drops the last `Arc`.
    pub fn bind(&self, kind: &str, id: &str, floor: Floor) -> Arc<SharedSpend> {
        let spend = Arc::new(SharedSpend {
            remote: self.remote.clone(),
            name: format!("{kind}:{id}"),
            total_key: self.remote.key("spend", &format!("{kind}:{id}")),
            held_key: self.remote.key("held", &format!("{kind}:{id}")),
            epoch_key: self.remote.key("spend-epoch", &format!("{kind}:{id}")),
            epoch: Mutex::new(String::new()),
            bound_ms: unix_ms(),
            total: AtomicF64::default(),
            unsent: AtomicF64::default(),
            sending: AtomicF64::default(),
            held_here: AtomicU64::new(0),
            held_sent: AtomicU64::new(0),
            rate: AtomicF64::default(),
            reads: AtomicU64::new(0),
            last_read: Mutex::new(None),
            near: AtomicBool::new(true),
            turn: tokio::sync::Mutex::new(()),
            floor,
        });
        spend.total.reset_to(spend.floor_now().0);
        self.spends.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::downgrade(&spend));
        spend
    }

    /// Sends every pending charge and reads every total, a few hundred per round trip. Nothing
    /// is lost when Redis is away: the charges stay unsent until a sync goes through. `raise`:
    /// reconcile every total with the database's view (after a reload from the database).
    /// Returns whether Redis lost totals or was away since the last sync: the caller reloads
    /// the database's view and syncs again with `raise`, so the totals are rebuilt from it.
    pub async fn sync(&self, raise: bool) -> bool {
        let live: Vec<Arc<SharedSpend>> = {
            let mut spends = self.spends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            spends.retain(|w| w.strong_count() > 0);
            spends.iter().filter_map(Weak::upgrade).collect()
        };
        let failures = self.remote.failures();
        let came_back = self.failures_seen.load(Ordering::Acquire) != failures;
        let (mut ok, mut rebuilt) = (true, false);
        for batch in live.chunks(BATCH) {
            match sync_batch(&self.remote, batch, raise || came_back).await {
                Some(r) => rebuilt |= r,
                None => ok = false,
            }
        }
        if ok {
            self.failures_seen.store(failures, Ordering::Release);
        }
        ok && (rebuilt || came_back)
    }
}

/// One script call for `batch`: what each sends is taken out of its counters only once Redis
/// has it. `None`: Redis is away; else whether a total had to be rebuilt.
async fn sync_batch(remote: &Remote, batch: &[Arc<SharedSpend>], raise: bool) -> Option<bool> {
    // In the batch's order, the one order every caller takes more than one turn in.
    let mut turns = Vec::with_capacity(batch.len());
    for s in batch {
        turns.push(s.turn.lock().await);
    }
    sync_locked(remote, batch, raise).await
}

/// [`sync_batch`] with every total's turn held.
async fn sync_locked(remote: &Remote, batch: &[Arc<SharedSpend>], raise: bool) -> Option<bool> {
    // The estimates held before the charges: a request that ended in between has its cost in
    // the charges taken, so the budget never counts neither.
    let sent: Vec<(i64, f64)> = batch
        .iter()
        .map(|s| {
            let held = s.held_here.load(Ordering::Acquire);
            let held = if held == s.held_sent.load(Ordering::Acquire) { -1 } else { held as i64 };
            (held, s.take_unsent())
        })
        .collect();
    let script = redis::Script::new(SYNC);
    let mut call = script.prepare_invoke();
    call.arg(remote.replica()).arg(if raise { "1" } else { "0" }).arg(fresh_epoch(remote));
    for (s, (held, delta)) in batch.iter().zip(&sent) {
        let (floor, pending) = s.floor_now();
        call.key(&s.total_key).key(&s.held_key).key(&s.epoch_key);
        call.arg(floor.to_string()).arg(delta.to_string()).arg(*held).arg(s.epoch_now()).arg(pending.to_string());
        call.arg(s.bound_ms);
    }
    let answer: Option<Vec<String>> = remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
    let ok = answer.is_some();
    let answer = answer.unwrap_or_default();
    let mut rebuilt = false;
    for (i, (s, (held, delta))) in batch.iter().zip(sent).enumerate() {
        match answer.get(3 * i..3 * i + 3) {
            Some([total, epoch, r]) => {
                s.read(total.parse().unwrap_or(0.0));
                if held >= 0 {
                    s.held_sent.store(held as u64, Ordering::Release);
                }
                s.set_epoch(epoch);
                rebuilt |= r == "1";
            }
            _ => {
                s.unsent.add(delta);
                // Redis may or may not have run it: the figures go again with the next call.
                // A charge sent twice counts twice until the next reload reconciles the total
                // with the database (refusing early, never late).
                s.held_sent.store(HELD_UNKNOWN, Ordering::Release);
            }
        }
        s.sending.add(-delta);
    }
    ok.then_some(rebuilt)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A name for a total this replica rebuilds, unique among replicas and rebuilds.
fn fresh_epoch(remote: &Remote) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!("{}:{}:{}", remote.replica(), SEQ.fetch_add(1, Ordering::Relaxed), unix_ms())
}

impl SharedSpend {
    fn floor_now(&self) -> (f64, f64) {
        let (floor, pending) = (self.floor)();
        let clean = |x: f64| if x.is_finite() { x } else { 0.0 };
        (clean(floor).max(0.0), clean(pending))
    }

    fn epoch_now(&self) -> String {
        self.epoch.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_epoch(&self, epoch: &str) {
        let mut mine = self.epoch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *mine != epoch {
            *mine = epoch.to_string();
        }
    }

    /// Moves the unsent charges to `sending` and returns them.
    fn take_unsent(&self) -> f64 {
        let delta = self.unsent.take();
        self.sending.add(delta);
        delta
    }

    /// A total read from Redis: the view, and the rate at which all replicas spend.
    fn read(&self, total: f64) {
        self.total.reset_to(total);
        let now = Instant::now();
        let mut last = self.last_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((before, at)) = *last {
            let dt = now.duration_since(at).as_secs_f64();
            if dt >= 0.01 {
                let rate = ((total - before) / dt).max(0.0);
                // Follows a rise at once and a fall slowly: the margin errs on the side of asking.
                let old = self.rate.read();
                self.rate.reset_to(if rate > old { rate } else { old * 0.9 + rate * 0.1 });
                *last = Some((total, now));
                self.reads.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            *last = Some((total, now));
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The spend as this replica knows it without asking: the last total read and its own
    /// charges sent since.
    pub fn view(&self) -> f64 {
        let unsent = self.unsent.read() + self.sending.read();
        self.total.read() + unsent
    }

    /// The total as Redis has it now, this replica's charges sent first; `None` when Redis is
    /// away (the caller shows [`view`](Self::view)). For `/key/info`, not for the request path.
    pub async fn read_now(self: &Arc<Self>) -> Option<f64> {
        sync_batch(&self.remote, std::slice::from_ref(self), false).await.map(|_| self.view())
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Whether `max` is close enough that admission must ask Redis (see the module's doc).
    /// `in_flight_here`: the estimates of this replica's requests in flight on the budget, the
    /// one asking included. Each replica decides alone only while what it has committed since
    /// the last read (those estimates and its charges not yet read back) stays within its share
    /// of what was left then, so that replicas deciding alone in the same moment cannot together
    /// commit more than was left, however sudden the burst (the rate has not seen it yet).
    pub fn near(&self, max: f64, in_flight_here: f64) -> bool {
        let seen = self.total.read();
        let unread = self.unsent.read() + self.sending.read();
        let left = max - seen - unread;
        let horizon = self.rate.read() * self.remote.replicas() as f64 * NEAR_HORIZON_S;
        let share_left = (max - seen) / self.remote.replicas() as f64;
        let near = self.reads.load(Ordering::Relaxed) < READS_BEFORE_TRUSTED
            || left < max * NEAR_FRACTION
            || left < horizon
            || unread + in_flight_here >= share_left;
        self.near.store(near, Ordering::Relaxed);
        near
    }

    /// What this replica may count up to while Redis is away: what was spent when it was last
    /// read, plus this replica's share of what was left then (the remaining budget divided among
    /// the replicas last counted, as [`Remote::share`] divides a count).
    pub fn share(&self, max: f64) -> f64 {
        let seen = self.total.read();
        if seen >= max {
            return max;
        }
        seen + (max - seen) / self.remote.replicas() as f64
    }

    /// Adds a request's cost: sent with the next sync, or at once (in the background) when the
    /// spender is near its budget.
    pub fn charge(self: &Arc<Self>, usd: f64) {
        if !usd.is_finite() || usd == 0.0 {
            return;
        }
        self.unsent.add(usd);
        if self.near.load(Ordering::Relaxed) {
            self.flush_soon();
        }
    }

    /// Sends this total's pending charge and released estimates now, off the caller's path.
    fn flush_soon(self: &Arc<Self>) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let me = self.clone();
            rt.spawn(async move {
                let _turn = me.turn.lock().await;
                // Flushes queue up behind one another near a budget's end; what an earlier one
                // sent leaves the later ones nothing, and they make no call.
                let unchanged = me.held_here.load(Ordering::Acquire) == me.held_sent.load(Ordering::Acquire);
                if unchanged && me.unsent.read() == 0.0 {
                    return;
                }
                sync_locked(&me.remote, std::slice::from_ref(&me), false).await;
            });
        }
    }

    /// Checks `max` in Redis, counting the estimates every replica holds on it, and holds
    /// `nanos` there if the request may go. `past`: refused only past `max`, not at it. `None`:
    /// Redis is away; the caller falls back to [`share`](Self::share).
    pub async fn hold(self: &Arc<Self>, max: f64, past: bool, nanos: u64) -> Option<(Verdict, Option<Held>)> {
        let _turn = self.turn.lock().await;
        let held_before = self.held_here.load(Ordering::Acquire);
        let delta = self.take_unsent();
        let (floor, pending) = self.floor_now();
        let script = redis::Script::new(HOLD);
        let mut call = script.prepare_invoke();
        call.key(&self.total_key)
            .key(&self.held_key)
            .key(&self.epoch_key)
            .key(self.remote.key("replicas", "live"))
            .arg(self.remote.replica())
            .arg(fresh_epoch(&self.remote))
            .arg(floor.to_string())
            .arg(delta.to_string())
            .arg(self.epoch_now())
            .arg(pending.to_string())
            .arg(max.to_string())
            .arg(if past { "1" } else { "0" })
            .arg(nanos)
            .arg(self.bound_ms)
            .arg(held_before);
        let answer: Option<(u8, String, u64, String)> =
            self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        let Some((code, total, held, epoch)) = answer else {
            self.unsent.add(delta);
            self.sending.add(-delta);
            self.held_sent.store(HELD_UNKNOWN, Ordering::Release);
            return None;
        };
        let held_now = if code == 2 {
            self.held_here.fetch_add(nanos, Ordering::AcqRel);
            held_before + nanos
        } else {
            held_before
        };
        self.held_sent.store(held_now, Ordering::Release);
        self.set_epoch(&epoch);
        let total: f64 = total.parse().unwrap_or(0.0);
        self.read(total);
        self.sending.add(-delta);
        let others = held as f64 / 1e9;
        Some(match code {
            0 => (Verdict::Spent { total }, None),
            1 => (Verdict::InFlight { total, others }, None),
            _ => (Verdict::Held { total, others }, (nanos > 0).then(|| Held { spend: self.clone(), nanos })),
        })
    }

    /// A budget period ended (`period`: its new end) or an admin set the spend: the shared total
    /// becomes `usd`, once for all replicas. Local figures follow at once.
    pub async fn reset(&self, usd: f64, period: &str) {
        // Between syncs: one in flight would otherwise set the total it read before the reset.
        let _turn = self.turn.lock().await;
        self.unsent.reset_to(0.0);
        self.total.reset_to(usd);
        let script = redis::Script::new(RESET);
        let mut call = script.prepare_invoke();
        call.key(&self.total_key).key(self.remote.key("spend-period", &self.name)).arg(usd.to_string()).arg(period);
        let _: Option<i64> = self.remote.call(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
    }
}

/// An estimate held in Redis on one budget, taken out when dropped (by the next sync, or at
/// once in the background), after this replica's charges: at no moment does the budget see
/// neither the estimate nor the cost.
#[derive(Debug)]
pub struct Held {
    spend: Arc<SharedSpend>,
    nanos: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.spend.held_here.fetch_sub(self.nanos, Ordering::AcqRel);
        self.spend.flush_soon();
    }
}
