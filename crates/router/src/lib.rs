//! Choosing a deployment for each attempt at a request, and deciding what to do when one fails:
//! LiteLLM's routing strategies, cooldowns, retries and fallbacks.
//!
//! Pure logic, no I/O and no HTTP. A [`Router`] holds every model group's deployments with their
//! live [`health::Health`]; [`Router::execute`] runs one request through selection, retries and
//! fallbacks, calling back into the server (through [`Call`]) for each upstream attempt. What a
//! deployment *is* to the caller (URL, key, timeouts) is opaque here: the router is generic over
//! it. Time comes from tokio's clock, so tests drive cooldowns and retry sleeps with a paused
//! clock.
//!
//! A group named with a `*` is a wildcard ([`pattern`]): [`Router::resolve`] tries exact names
//! and aliases first, then the most specific pattern. Within a group, `enable_tag_filtering`
//! narrows the candidates to the request's tags ([`tags`]).

mod budget;
mod cooldown;
mod entropy;
mod execute;
pub mod failure;
pub mod health;
mod parallel;
pub mod pattern;
pub mod region;
mod retry;
pub mod settings;
mod strategy;
pub mod tags;

pub use execute::{Call, ExecError, Executed, Failed, Plan};
pub use failure::{ErrorKind, Failure};
pub use region::Region;
pub use settings::{PerKind, RetryBudgetSettings, Settings, Strategy};

use health::{Clock, Health};
use sluice_state::RateWindow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One deployment: identity, the fields strategies and checks read, live health, and the caller's
/// payload.
#[derive(Debug)]
pub struct Deployment<T> {
    /// `model_info.id`, or LiteLLM's deterministic hash of the entry.
    pub id: String,
    /// The public name (model group) this deployment serves.
    pub model_name: String,
    pub weight: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    /// Priority under `enable_pre_call_checks`: lowest wins.
    pub order: Option<f64>,
    pub max_parallel_requests: Option<u32>,
    /// Overrides the router's cooldown (0 disables cooldown for this deployment).
    pub cooldown_time: Option<Duration>,
    /// `model_info.max_input_tokens`, checked under `enable_pre_call_checks`.
    pub max_input_tokens: Option<u64>,
    /// Input + output price per token, for cost-based routing.
    pub cost_per_token: Option<f64>,
    /// `litellm_params.num_retries`: the retries a failure here gets, whatever the request or
    /// the router says (a `retry_policy` entry still wins).
    pub num_retries: Option<u32>,
    /// `litellm_params.tags`, for tag-based routing.
    pub tags: Vec<String>,
    /// Where it runs (`litellm_params.region_name`), for end users held to a region.
    pub region: Option<Region>,
    pub health: Health,
    pub target: T,
    semaphore: Option<Arc<Semaphore>>,
    /// An explicit `max_parallel_requests` counted over every replica, once shared.
    parallel: std::sync::OnceLock<parallel::SharedParallel>,
}

impl<T> Deployment<T> {
    pub fn new(id: impl Into<String>, model_name: impl Into<String>, target: T) -> Self {
        Deployment {
            id: id.into(),
            model_name: model_name.into(),
            weight: None,
            rpm: None,
            tpm: None,
            order: None,
            max_parallel_requests: None,
            cooldown_time: None,
            max_input_tokens: None,
            cost_per_token: None,
            num_retries: None,
            tags: Vec::new(),
            region: None,
            health: Health::default(),
            target,
            semaphore: None,
            parallel: std::sync::OnceLock::new(),
        }
    }

    /// LiteLLM's `calculate_max_parallel_requests`: `max_parallel_requests`, else `rpm`, else
    /// `tpm / 1000 * 6`, else the router default. So `rpm: 10000` also caps concurrency at 10000.
    fn concurrency_cap(&self, default: Option<u32>) -> Option<u32> {
        self.max_parallel_requests
            .or(self.rpm.map(|r| r.max(1.0) as u32))
            .or(self.tpm.map(|t| ((t / 1000.0 * 6.0) as u32).max(1)))
            .or(default)
    }
}

/// Every deployment sharing one `model_name`.
#[derive(Debug)]
pub struct Group<T> {
    pub name: String,
    pub deployments: Vec<Arc<Deployment<T>>>,
    /// Set when the name holds a `*`: the group serves the names the pattern matches.
    pub pattern: Option<pattern::Pattern>,
    /// What the group's retries may still spend.
    retry_budget: budget::RetryBudget,
}

/// The request facts selection may need.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ctx<'a> {
    /// Estimated prompt tokens (context-window and tpm checks).
    pub input_tokens: Option<u64>,
    /// The request's tags (`metadata.tags`), read only under `enable_tag_filtering`.
    pub tags: &'a [String],
    /// The end user's `allowed_model_region`: only deployments there may serve.
    pub region: Option<Region>,
}

/// Nothing in the group could take the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoDeployment {
    pub group: String,
    /// Seconds until the first cooled deployment is back (at least 1).
    pub retry_after_secs: u64,
    pub pre_call_checks: bool,
    pub cooldown_list: Vec<String>,
    /// Set when no deployment carries the request's tags (`enable_tag_filtering`): the tags.
    pub tags: Option<Vec<String>>,
    /// Set when no deployment of the group is in the end user's `allowed_model_region`.
    pub region: Option<Region>,
}

impl NoDeployment {
    /// The status the proxy answers with: 429 (try again when a deployment is back), or 400
    /// when the request's tags pick no deployment (sending it again will not help).
    pub fn status(&self) -> u16 {
        if self.tags.is_some() || self.region.is_some() {
            400
        } else {
            429
        }
    }

    /// LiteLLM's `RouterRateLimitError` text (the proxy answers it with a 429), or its
    /// `no_deployments_with_tag_routing` text.
    pub fn message(&self) -> String {
        if let Some(tags) = &self.tags {
            let list: Vec<String> = tags.iter().map(|t| format!("'{t}'")).collect();
            return format!(
                "Not allowed to access model due to tags configuration. Passed model={} and tags=[{}]. Send tags that a deployment of this model group carries in litellm_params.tags, or tag one deployment `default`.",
                self.group,
                list.join(", ")
            );
        }
        if let Some(region) = self.region {
            return format!(
                "No deployments available for selected model in allowed_model_region={}. Passed model={}. The end user may only use deployments whose litellm_params.region_name is in that region: add one to this model group, or change the end user's allowed_model_region with /end_user/update.",
                region.as_str(),
                self.group
            );
        }
        let py = if self.pre_call_checks { "True" } else { "False" };
        let list: Vec<String> = self.cooldown_list.iter().map(|id| format!("'{id}'")).collect();
        format!(
            "No deployments available for selected model, Try again in {} seconds. Passed model={}. pre-call-checks={py}, cooldown_list=[{}]",
            self.retry_after_secs,
            self.group,
            list.join(", ")
        )
    }
}

/// One attempt in flight on a deployment; dropping it releases the deployment's slot.
pub struct Attempt<T> {
    pub deployment: Arc<Deployment<T>>,
    _permit: Option<OwnedSemaphorePermit>,
    _shared: Option<parallel::ParallelSlot>,
    started: tokio::time::Instant,
}

impl<T> Drop for Attempt<T> {
    fn drop(&mut self) {
        self.deployment.health.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<T> Attempt<T> {
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The attempt's duration up to `t`.
    pub fn elapsed_at(&self, t: tokio::time::Instant) -> Duration {
        t.saturating_duration_since(self.started)
    }
}

/// What a failure did to the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    None,
    CooledDown(Duration),
}

/// One deployment of a [`Router::rebuilt`] router: one of the old router's, kept with its
/// health, or a new one.
pub enum Member<T> {
    Kept(Arc<Deployment<T>>),
    New(Box<Deployment<T>>),
}

/// All model groups, their aliases and the routing settings.
pub struct Router<T> {
    names: Vec<String>,
    groups: HashMap<String, Group<T>>,
    /// The wildcard groups' names, most specific first ([`pattern::Pattern::specificity`]).
    patterns: Vec<String>,
    pub settings: Settings,
    clock: Clock,
    /// Random numbers for picks and retry jitter, drawn without a lock.
    entropy: entropy::Entropy,
}

impl<T> Router<T> {
    pub fn new(deployments: Vec<Deployment<T>>, settings: Settings) -> Self {
        let members = deployments.into_iter().map(|d| Member::New(Box::new(d))).collect();
        Router::assemble(members, settings, Clock::new())
    }

    /// A router with this one's settings and clock serving `members`: a deployment handed back
    /// as [`Member::Kept`] (an `Arc` from [`Router::deployments`]) keeps its live health —
    /// cooldown, windows, in-flight slots — so adding or removing one model at run time does
    /// not reset the others. Its timestamps stay valid because the clock is the same.
    pub fn rebuilt(&self, members: Vec<Member<T>>) -> Router<T> {
        Router::assemble(members, self.settings.clone(), self.clock)
    }

    /// [`Router::rebuilt`] with other settings (retries, fallbacks, strategy, cooldowns changed
    /// through `/config/update`): kept deployments keep their live health.
    pub fn rebuilt_with(&self, members: Vec<Member<T>>, settings: Settings) -> Router<T> {
        Router::assemble(members, settings, self.clock)
    }

    fn assemble(members: Vec<Member<T>>, settings: Settings, clock: Clock) -> Self {
        let mut names = Vec::new();
        let mut groups_of: HashMap<String, Vec<Arc<Deployment<T>>>> = HashMap::new();
        for m in members {
            let d = match m {
                Member::Kept(d) => d,
                Member::New(d) => {
                    let mut d = *d;
                    if let Some(cap) = d.concurrency_cap(settings.default_max_parallel_requests) {
                        d.semaphore = Some(Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS as u32) as usize)));
                    }
                    Arc::new(d)
                }
            };
            if !groups_of.contains_key(&d.model_name) {
                names.push(d.model_name.clone());
            }
            groups_of.entry(d.model_name.clone()).or_default().push(d);
        }
        let groups: HashMap<String, Group<T>> = groups_of
            .into_iter()
            .map(|(name, deployments)| {
                let pattern = pattern::Pattern::parse(&name);
                (name.clone(), Group { name, deployments, pattern, retry_budget: budget::RetryBudget::default() })
            })
            .collect();
        // Config order among equals: a stable sort of the names as configured.
        let mut patterns: Vec<String> = names.iter().filter(|n| groups[*n].pattern.is_some()).cloned().collect();
        patterns.sort_by_key(|n| std::cmp::Reverse(groups[n].pattern.as_ref().map(|p| p.specificity())));
        let entropy = entropy::Entropy::new(settings.seed);
        Router { names, groups, patterns, settings, clock, entropy }
    }

    /// Model group names in config order (aliases not included).
    pub fn model_names(&self) -> &[String] {
        &self.names
    }

    /// Names clients may list: groups, then aliases that are not hidden.
    pub fn public_names(&self) -> Vec<String> {
        let mut out = self.names.clone();
        let mut aliases: Vec<&String> =
            self.settings.aliases.iter().filter(|(_, (_, hidden))| !hidden).map(|(a, _)| a).collect();
        aliases.sort();
        out.extend(aliases.into_iter().filter(|a| !self.groups.contains_key(*a)).cloned());
        out
    }

    /// The group a client's model name refers to: the group itself, or through
    /// `model_group_alias`, else the most specific wildcard group matching it.
    pub fn resolve(&self, model: &str) -> Option<&Group<T>> {
        self.groups
            .get(model)
            .or_else(|| self.settings.aliases.get(model).and_then(|(g, _)| self.groups.get(g)))
            .or_else(|| self.wildcard(model))
    }

    /// The most specific wildcard group whose pattern matches `model` (exact names not tried).
    pub fn wildcard(&self, model: &str) -> Option<&Group<T>> {
        self.patterns.iter().map(|n| &self.groups[n]).find(|g| g.pattern.as_ref().is_some_and(|p| p.matches(model)))
    }

    /// Whether any group is a wildcard.
    pub fn has_wildcards(&self) -> bool {
        !self.patterns.is_empty()
    }

    pub fn group(&self, name: &str) -> Option<&Group<T>> {
        self.groups.get(name)
    }

    /// Every deployment, grouped in config order.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment<T>>> {
        self.names.iter().flat_map(|n| self.groups[n].deployments.iter())
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Picks a deployment for one attempt and reserves its slot (waiting for a concurrency
    /// permit, as LiteLLM's semaphore does).
    pub async fn select(&self, group: &Group<T>, ctx: &Ctx<'_>) -> Result<Attempt<T>, NoDeployment> {
        let at = tokio::time::Instant::now();
        let now = self.clock.at(at);
        // A reservation can lose a race for the last unit of quota; a second pass re-reads it.
        for _ in 0..2 {
            let chosen = strategy::select(self, group, ctx, &mut self.entropy.draw(), now)?;
            if self.reserve_quota(&chosen, now.second).await {
                // The attempt's latency starts once it may go, after any wait for a permit.
                let (permit, mut started) = match &chosen.semaphore {
                    Some(s) => (s.clone().acquire_owned().await.ok(), tokio::time::Instant::now()),
                    None => (None, at),
                };
                let shared = match (chosen.parallel.get(), chosen.max_parallel_requests) {
                    (Some(p), Some(limit)) => {
                        let slot = p.enter(limit).await;
                        started = tokio::time::Instant::now();
                        Some(slot)
                    }
                    _ => None,
                };
                chosen.health.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Attempt { deployment: chosen, _permit: permit, _shared: shared, started });
            }
        }
        Err(self.no_deployment(group))
    }

    /// An attempt on `deployment` itself, outside selection (a health check): no quota is
    /// counted and no concurrency slot is taken, so checks never crowd out requests.
    pub fn probe(&self, deployment: Arc<Deployment<T>>) -> Attempt<T> {
        deployment.health.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Attempt { deployment, _permit: None, _shared: None, started: tokio::time::Instant::now() }
    }

    /// Counts the request against the deployment's rpm window; refuses if that would exceed its
    /// rpm. Every strategy keeps deployments within their quota (LiteLLM's simple-shuffle only
    /// weighs by rpm, and users find their limits exceeded: its issues #5783, #7395). A window
    /// shared through Redis asks it only when this replica's lease of the quota is spent.
    async fn reserve_quota(&self, d: &Deployment<T>, second: u64) -> bool {
        match d.rpm {
            Some(rpm) => d.health.requests.take(1, rpm as u64, second).await.is_ok(),
            None => {
                d.health.requests.add(1, second);
                true
            }
        }
    }

    /// Shares every deployment's rpm and tpm windows with the other replicas through Redis,
    /// named by the deployment's id (`model_info.id`, or LiteLLM's hash of the entry: the same
    /// on every replica with the same config). Call once Redis is configured, for each router
    /// built (a router rebuilt for a model change binds again; windows of the same id meet in
    /// Redis, so nothing counted is lost).
    pub fn share_windows(&self, sharing: &Arc<sluice_state::WindowSharing>) {
        for d in self.deployments() {
            d.health.requests.bind(sharing, &format!("deployment:{}:rpm", d.id));
            d.health.tokens.bind(sharing, &format!("deployment:{}:tpm", d.id));
            // An explicit `max_parallel_requests` is counted over every replica too (see
            // `parallel` for why a cap derived from rpm is not).
            if d.max_parallel_requests.is_some() {
                let _ = d.parallel.set(parallel::SharedParallel::new(sharing.remote().clone(), &d.id));
            }
        }
    }

    pub(crate) fn no_deployment(&self, group: &Group<T>) -> NoDeployment {
        let now = self.clock.now_ms();
        let cooling: Vec<&Arc<Deployment<T>>> = group.deployments.iter().filter(|d| d.health.cooling(now)).collect();
        let retry_after_secs = cooling
            .iter()
            .map(|d| d.health.cooldown_left(now))
            .min()
            .map(|ms| ms.div_ceil(1000))
            .unwrap_or(self.settings.cooldown_time.as_secs())
            .max(1);
        NoDeployment {
            group: group.name.clone(),
            retry_after_secs,
            pre_call_checks: self.settings.enable_pre_call_checks,
            cooldown_list: cooling.iter().map(|d| d.id.clone()).collect(),
            tags: None,
            region: None,
        }
    }

    /// Deployments of the group not cooling down now.
    pub fn healthy_count(&self, group: &Group<T>) -> usize {
        let now = self.clock.now_ms();
        group.deployments.iter().filter(|d| !d.health.cooling(now)).count()
    }

    /// Records a successful attempt (for streams: the first frame arrived).
    pub fn record_success(&self, attempt: &Attempt<T>, total_tokens: Option<u64>) {
        self.record_success_at(attempt, tokio::time::Instant::now(), total_tokens);
    }

    /// [`Router::record_success`] for an attempt that succeeded at `done`.
    pub fn record_success_at(&self, attempt: &Attempt<T>, done: tokio::time::Instant, total_tokens: Option<u64>) {
        let d = &attempt.deployment;
        let latency = attempt.elapsed_at(done);
        let now = self.clock.at(done);
        d.health.record_ok(now.second / 60, latency);
        if let Strategy::LatencyBased { max_list, .. } = self.settings.strategy {
            d.health.push_latency(now.ms, latency.as_secs_f64(), max_list);
        }
        if let Some(t) = total_tokens {
            d.health.tokens.add(t, now.second);
        }
    }

    /// Records what the provider's `x-ratelimit-remaining-*` headers said, in an answer to a
    /// request sent at `sent`.
    pub fn record_remaining(
        &self,
        d: &Deployment<T>,
        sent: tokio::time::Instant,
        requests: Option<f64>,
        tokens: Option<f64>,
    ) {
        d.health.set_remaining(self.clock.at(sent).ms, requests, tokens);
    }

    /// Shares cooldowns with the other replicas through `remote`: a deployment this router cools
    /// is written to Redis and published, and those the other replicas cool are skipped here
    /// too, for the time they have left (within the pub/sub delay, well under a second). A
    /// deployment is known by its id, the same on every replica given the same config. Call
    /// once, within a tokio runtime; the listener ends when this router is dropped.
    pub fn share_cooldowns(&self, remote: Arc<sluice_state::remote::Remote>)
    where
        T: Send + Sync + 'static,
    {
        let mut by_id: HashMap<String, std::sync::Weak<Deployment<T>>> = HashMap::new();
        for d in self.deployments() {
            d.health.share_cooldown(remote.clone(), &d.id);
            by_id.insert(d.id.clone(), Arc::downgrade(d));
        }
        let clock = self.clock;
        sluice_state::remote::cooldowns::listen(&remote, move |note| {
            // Another config's (or a removed) deployment: nothing here to cool.
            let Some(weak) = by_id.get(&note.deployment) else { return true };
            let Some(d) = weak.upgrade() else { return false };
            d.health.heard_cooldown(clock.now_ms(), note.left_ms);
            tracing::info!(
                model_id = %note.deployment,
                replica = %note.replica,
                reason = %note.reason,
                "deployment cooled down by another replica for {} ms",
                note.left_ms
            );
            true
        });
    }

    /// Records a failed attempt and applies LiteLLM's cooldown rules.
    pub fn record_failure(&self, group: &Group<T>, attempt: &Attempt<T>, failure: &Failure) -> FailureEffect {
        cooldown::on_failure(self, group, &attempt.deployment, failure)
    }
}
