//! The gateway's pulse: what the admin UI's dashboard shows live — requests, failures and
//! latency percentiles over the last minute, and today's requests and spend in all, per model
//! group and per key — kept in process, whether or not Prometheus metrics are on.
//!
//! Recording is a few relaxed atomic operations on fixed arrays made at start: no lock, no
//! allocation (`tests/no_alloc.rs`). The last minute is a ring of one-second slots, each with a
//! latency histogram of log-spaced buckets (each bound 1.2× the one before, so a percentile read
//! from it is within 20% of the true one); a slot of a past second is zeroed by the first record
//! that lands in it again. Per-entity tallies live in a fixed open-addressed table keyed by a hash
//! of the name ([`Pulse::id_of`]): a model group's slot keeps the first 64 bytes of its name,
//! written once when the slot is claimed; keys the reader names back from the keys it knows.
//!
//! The figures are approximate where records race with a slot's reset (a record or two may be
//! lost at a second's or a day's turn), and they are this process's alone: "today" counts from
//! the later of midnight UTC and the process's start ([`Pulse::started_unix_s`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds the ring holds; the window read is at most [`WINDOW_S`].
const SLOTS: usize = 64;
/// The dashboard's "recent": the last minute.
pub const WINDOW_S: u64 = 60;
/// Latency bucket `i` holds samples up to `FIRST_MS × RATIO^i` milliseconds; one more for longer.
const BUCKETS: usize = 64;
const FIRST_MS: f64 = 1.0;
const RATIO: f64 = 1.2;
/// Entities (keys, model groups) whose day is tallied; more fall into the "others" tally.
const KEY_SLOTS: usize = 16_384;
const MODEL_SLOTS: usize = 1_024;
/// How far a lookup probes before it gives up on a full neighbourhood.
const PROBES: usize = 64;
/// Spend is counted in nano-USD: a u64 then holds 18 billion USD, and a cheap call still counts.
const NANOS: f64 = 1e9;

/// One second of traffic.
struct Second {
    second: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    latency: [AtomicU64; BUCKETS + 1],
}

/// One entity's day: keyed by `id` (0: free), counted for `day` (days since the epoch, UTC).
struct Tally {
    id: AtomicU64,
    day: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    spend_nanos: AtomicU64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            id: AtomicU64::new(0),
            day: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            spend_nanos: AtomicU64::new(0),
        }
    }

    /// This tally, its counts zeroed first when they are of another day.
    fn on(&self, day: u64) -> &Tally {
        let seen = self.day.load(Relaxed);
        if seen != day && self.day.compare_exchange(seen, day, Relaxed, Relaxed).is_ok() {
            self.requests.store(0, Relaxed);
            self.failures.store(0, Relaxed);
            self.spend_nanos.store(0, Relaxed);
        }
        self
    }

    fn read(&self, day: u64) -> Today {
        if self.day.load(Relaxed) != day {
            return Today::default();
        }
        Today {
            requests: self.requests.load(Relaxed),
            failures: self.failures.load(Relaxed),
            spend: self.spend_nanos.load(Relaxed) as f64 / NANOS,
        }
    }
}

/// The first bytes of a name kept beside its tally (so a model group no longer served is still
/// named), as words of eight.
const NAME_WORDS: usize = 8;

/// A fixed table of tallies with one "others" tally for what does not fit, and optionally the
/// start of each entity's name.
struct Tallies {
    slots: Box<[Tally]>,
    /// Empty, or one per slot: written once by whoever claims the slot.
    names: Box<[[AtomicU64; NAME_WORDS]]>,
    others: Tally,
}

impl Tallies {
    fn new(n: usize, named: bool) -> Tallies {
        Tallies {
            slots: (0..n).map(|_| Tally::new()).collect(),
            names: (0..if named { n } else { 0 }).map(|_| std::array::from_fn(|_| AtomicU64::new(0))).collect(),
            others: Tally::new(),
        }
    }

    /// The tally of `name` (claimed on first use), or the others' when its neighbourhood is full.
    fn of(&self, name: &str) -> &Tally {
        let id = Pulse::id_of(name);
        let n = self.slots.len();
        let start = (id % n as u64) as usize;
        for i in 0..PROBES.min(n) {
            let at = (start + i) % n;
            let Some(slot) = self.slots.get(at) else { break };
            let held = slot.id.load(Relaxed);
            if held == id {
                return slot;
            }
            if held == 0 {
                match slot.id.compare_exchange(0, id, Relaxed, Relaxed) {
                    Ok(_) => {
                        if let Some(words) = self.names.get(at) {
                            write_name(words, name);
                        }
                        return slot;
                    }
                    Err(now) if now == id => return slot,
                    Err(_) => {}
                }
            }
        }
        &self.others
    }

    /// Every entity with traffic on `day`: its id, the start of its name (empty when the table
    /// keeps none) and its counts.
    fn read(&self, day: u64) -> Vec<(u64, String, Today)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(at, s)| {
                let id = s.id.load(Relaxed);
                let t = s.read(day);
                let name = self.names.get(at).map(read_name).unwrap_or_default();
                (id != 0 && (t.requests > 0 || t.spend_nanos() > 0)).then_some((id, name, t))
            })
            .collect()
    }
}

fn write_name(words: &[AtomicU64; NAME_WORDS], name: &str) {
    let bytes = name.as_bytes();
    for (i, word) in words.iter().enumerate() {
        let mut chunk = [0u8; 8];
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = bytes.get(i * 8 + j).copied().unwrap_or(0);
        }
        word.store(u64::from_le_bytes(chunk), Relaxed);
    }
}

fn read_name(words: &[AtomicU64; NAME_WORDS]) -> String {
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.load(Relaxed).to_le_bytes()).collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One entity's (or everything's) counts today.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Today {
    pub requests: u64,
    pub failures: u64,
    /// USD.
    pub spend: f64,
}

impl Today {
    fn spend_nanos(&self) -> u64 {
        (self.spend * NANOS) as u64
    }
}

/// The last [`WINDOW_S`] seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recent {
    pub requests: u64,
    pub failures: u64,
    /// Median and 99th percentile of the requests' whole time in sluice, in milliseconds: the
    /// upper bound of the bucket holding that rank (`None` without requests).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The in-process pulse; one per gateway, shared.
pub struct Pulse {
    ring: Box<[Second]>,
    day_total: Tally,
    keys: Tallies,
    models: Tallies,
    started_unix_s: u64,
}

impl Default for Pulse {
    fn default() -> Self {
        Pulse::new()
    }
}

impl std::fmt::Debug for Pulse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulse").field("started_unix_s", &self.started_unix_s).finish_non_exhaustive()
    }
}

fn unix_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The bucket of a latency: the first whose bound is at least `ms`.
fn bucket(ms: f64) -> usize {
    if ms.is_nan() || ms <= FIRST_MS {
        return 0;
    }
    let i = ((ms / FIRST_MS).ln() / RATIO.ln()).ceil();
    if i >= BUCKETS as f64 {
        BUCKETS
    } else {
        i as usize
    }
}

/// The upper bound of bucket `i` in milliseconds (the overflow bucket reports the last bound).
fn bound_ms(i: usize) -> f64 {
    FIRST_MS * RATIO.powi(i.min(BUCKETS - 1) as i32)
}

impl Pulse {
    pub fn new() -> Pulse {
        Pulse {
            ring: (0..SLOTS)
                .map(|_| Second {
                    second: AtomicU64::new(0),
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    latency: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            day_total: Tally::new(),
            keys: Tallies::new(KEY_SLOTS, false),
            models: Tallies::new(MODEL_SLOTS, true),
            started_unix_s: unix_s(),
        }
    }

    /// The id a key's token hash or a model group's name is tallied under; never 0.
    pub fn id_of(name: &str) -> u64 {
        // FNV-1a: stable, allocation-free, and good enough to spread names over the table.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h.max(1)
    }

    /// When this process started counting (seconds since the epoch).
    pub fn started_unix_s(&self) -> u64 {
        self.started_unix_s
    }

    /// One finished client request: its status, its whole time, the model group it named and
    /// the key's token hash (`None`: the master key or no auth).
    pub fn request(&self, status: u16, took: Duration, model: &str, key: Option<&str>) {
        self.request_at(unix_s(), status, took, model, key);
    }

    fn request_at(&self, now_s: u64, status: u16, took: Duration, model: &str, key: Option<&str>) {
        let failed = status >= 400;
        let slot = &self.ring[(now_s % SLOTS as u64) as usize];
        let seen = slot.second.load(Relaxed);
        if seen != now_s && slot.second.compare_exchange(seen, now_s, Relaxed, Relaxed).is_ok() {
            slot.requests.store(0, Relaxed);
            slot.failures.store(0, Relaxed);
            for b in &slot.latency {
                b.store(0, Relaxed);
            }
        }
        slot.requests.fetch_add(1, Relaxed);
        slot.latency[bucket(took.as_secs_f64() * 1000.0)].fetch_add(1, Relaxed);
        if failed {
            slot.failures.fetch_add(1, Relaxed);
        }
        let day = now_s / 86_400;
        let count = |t: &Tally| {
            let t = t.on(day);
            t.requests.fetch_add(1, Relaxed);
            if failed {
                t.failures.fetch_add(1, Relaxed);
            }
        };
        count(&self.day_total);
        // A request refused before its model was read (no key, a bad body) is no model's.
        if !model.is_empty() {
            count(self.models.of(model));
        }
        if let Some(key) = key {
            count(self.keys.of(key));
        }
    }

    /// What a request cost (USD), once billed; not finite or not above 0 counts nothing.
    pub fn spend(&self, usd: f64, model: &str, key: Option<&str>) {
        self.spend_at(unix_s(), usd, model, key);
    }

    fn spend_at(&self, now_s: u64, usd: f64, model: &str, key: Option<&str>) {
        if !(usd.is_finite() && usd > 0.0) {
            return;
        }
        let nanos = (usd * NANOS).min(u64::MAX as f64 / 4.0) as u64;
        let day = now_s / 86_400;
        let add = |t: &Tally| {
            t.on(day).spend_nanos.fetch_add(nanos, Relaxed);
        };
        add(&self.day_total);
        if !model.is_empty() {
            add(self.models.of(model));
        }
        if let Some(key) = key {
            add(self.keys.of(key));
        }
    }

    /// The last [`WINDOW_S`] seconds, this one included.
    pub fn recent(&self) -> Recent {
        self.recent_at(unix_s())
    }

    fn recent_at(&self, now_s: u64) -> Recent {
        let mut r = Recent::default();
        let mut latency = [0u64; BUCKETS + 1];
        for slot in self.ring.iter() {
            let s = slot.second.load(Relaxed);
            if s > now_s || now_s - s >= WINDOW_S {
                continue;
            }
            r.requests += slot.requests.load(Relaxed);
            r.failures += slot.failures.load(Relaxed);
            for (sum, b) in latency.iter_mut().zip(&slot.latency) {
                *sum += b.load(Relaxed);
            }
        }
        let timed: u64 = latency.iter().sum();
        let rank = |q: f64| {
            let want = ((q * timed as f64).ceil() as u64).max(1);
            let mut seen = 0;
            latency.iter().position(|n| {
                seen += n;
                seen >= want
            })
        };
        if timed > 0 {
            r.p50_ms = rank(0.5).map(bound_ms);
            r.p99_ms = rank(0.99).map(bound_ms);
        }
        r
    }

    /// Today (UTC) in all.
    pub fn today(&self) -> Today {
        self.day_total.read(unix_s() / 86_400)
    }

    /// Today per key, by [`Pulse::id_of`] its token hash; traffic of keys the table had no room
    /// for is in [`Pulse::today_other_keys`].
    pub fn today_by_key(&self) -> Vec<(u64, Today)> {
        self.keys.read(unix_s() / 86_400).into_iter().map(|(id, _, t)| (id, t)).collect()
    }

    pub fn today_other_keys(&self) -> Today {
        self.keys.others.read(unix_s() / 86_400)
    }

    /// Today per model group: its name (the first 64 bytes) and counts.
    pub fn today_by_model(&self) -> Vec<(String, Today)> {
        self.models.read(unix_s() / 86_400).into_iter().map(|(_, name, t)| (name, t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    #[test]
    fn buckets_cover_their_bounds() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(1.0), 0);
        assert_eq!(bucket(f64::NAN), 0);
        assert_eq!(bucket(1e12), BUCKETS);
        for ms in [1.5, 12.0, 99.0, 1000.0, 30_000.0] {
            let i = bucket(ms);
            assert!(bound_ms(i) >= ms && bound_ms(i) < ms * RATIO * 1.0001, "{ms} in {i}");
        }
    }

    #[test]
    fn percentiles_of_the_last_minute() {
        let p = Pulse::new();
        for i in 0..99 {
            p.request_at(T + i % 10, 200, Duration::from_millis(100), "m", None);
        }
        p.request_at(T + 5, 500, Duration::from_millis(2000), "m", Some("k"));
        let r = p.recent_at(T + 10);
        assert_eq!((r.requests, r.failures), (100, 1));
        let (p50, p99) = (r.p50_ms.unwrap_or(0.0), r.p99_ms.unwrap_or(0.0));
        assert!((100.0..120.0).contains(&p50), "{p50}");
        assert!((100.0..120.0).contains(&p99), "{p99}");
        // One more slow one puts the 99th percentile among the slow.
        p.request_at(T + 6, 200, Duration::from_millis(2000), "m", None);
        let p99 = p.recent_at(T + 10).p99_ms.unwrap_or(0.0);
        assert!((2000.0..2400.0).contains(&p99), "{p99}");
    }

    #[test]
    fn old_seconds_leave_the_window_and_their_slot_is_reused() {
        let p = Pulse::new();
        p.request_at(T, 200, Duration::from_millis(5), "m", None);
        assert_eq!(p.recent_at(T + WINDOW_S - 1).requests, 1);
        assert_eq!(p.recent_at(T + WINDOW_S).requests, 0);
        assert_eq!(p.recent_at(T + WINDOW_S).p50_ms, None);
        // Same slot, a later lap: the old count is gone.
        p.request_at(T + SLOTS as u64, 200, Duration::from_millis(5), "m", None);
        assert_eq!(p.recent_at(T + SLOTS as u64).requests, 1);
    }

    #[test]
    fn today_per_key_and_model_restarts_with_the_day() {
        let p = Pulse::new();
        p.request_at(T, 200, Duration::from_millis(5), "gpt", Some("hash-a"));
        p.spend_at(T, 0.25, "gpt", Some("hash-a"));
        p.spend_at(T, 0.5, "claude", Some("hash-b"));
        p.spend_at(T, f64::NAN, "gpt", Some("hash-a"));
        p.spend_at(T, -1.0, "gpt", Some("hash-a"));
        let day = T / 86_400;
        let total = p.day_total.read(day);
        assert_eq!(total.requests, 1);
        assert!((total.spend - 0.75).abs() < 1e-9);
        let keys = p.keys.read(day);
        let a = keys.iter().find(|(id, _, _)| *id == Pulse::id_of("hash-a")).map(|(_, _, t)| *t).unwrap_or_default();
        assert_eq!(a.requests, 1);
        assert!((a.spend - 0.25).abs() < 1e-9);
        let mut models: Vec<String> = p.models.read(day).into_iter().map(|(_, name, _)| name).collect();
        models.sort();
        assert_eq!(models, ["claude", "gpt"]);
        // The next day starts from zero.
        p.spend_at(T + 86_400, 0.1, "gpt", Some("hash-a"));
        assert_eq!(p.keys.read(day + 1).len(), 1);
        assert!((p.day_total.read(day + 1).spend - 0.1).abs() < 1e-9);
        assert_eq!(p.day_total.read(day), Today::default());
    }

    #[test]
    fn a_full_neighbourhood_counts_as_others() {
        let t = Tallies::new(4, false);
        for name in ["a", "b", "c", "d"] {
            t.of(name).on(1).requests.fetch_add(1, Relaxed);
        }
        t.of("e").on(1).requests.fetch_add(1, Relaxed);
        assert_eq!(t.read(1).len(), 4);
        assert_eq!(t.others.read(1).requests, 1);
    }

    #[test]
    fn names_are_kept_to_their_first_bytes() {
        let t = Tallies::new(8, true);
        let long = "m".repeat(100);
        for name in ["gpt-4o", "", long.as_str(), "é-model"] {
            t.of(name).on(1).requests.fetch_add(1, Relaxed);
        }
        let mut names: Vec<String> = t.read(1).into_iter().map(|(_, n, _)| n).collect();
        names.sort();
        assert_eq!(names, ["", "gpt-4o", "m".repeat(8 * NAME_WORDS).as_str(), "é-model"]);
    }
}
