//! Retries, cooldowns and fallbacks end to end through `Router::execute`, with scripted upstreams
//! and tokio's paused clock so every sleep and cooldown is exact.

use sluice_router::{
    Attempt, Call, Ctx, Deployment, ExecError, Failed, Failure, FailureEffect, Plan, RetryBudgetSettings, Router,
    Settings,
};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Each deployment answers from a script: a status per call (200 = success), repeating the last.
struct Scripted {
    scripts: HashMap<String, Vec<u16>>,
    calls: Vec<(String, Duration)>,
    cooled: Vec<String>,
    start: Instant,
    retry_after: Option<Duration>,
    /// When set, the very first call (whichever deployment) answers this instead.
    first: Option<u16>,
}

impl Scripted {
    fn new(scripts: &[(&str, &[u16])]) -> Self {
        Scripted {
            scripts: scripts.iter().map(|(id, s)| (id.to_string(), s.to_vec())).collect(),
            calls: Vec::new(),
            cooled: Vec::new(),
            start: Instant::now(),
            retry_after: None,
            first: None,
        }
    }

    fn ids(&self) -> Vec<&str> {
        self.calls.iter().map(|(id, _)| id.as_str()).collect()
    }
}

impl Call<()> for Scripted {
    type Output = String;
    type Error = String;

    async fn call(&mut self, attempt: &Attempt<()>, _depth: u32) -> Result<String, Failed<String>> {
        let id = attempt.deployment.id.clone();
        self.calls.push((id.clone(), self.start.elapsed()));
        let script = self.scripts.get_mut(&id).unwrap();
        let scripted = if script.len() > 1 { script.remove(0) } else { script[0] };
        let status = self.first.take().unwrap_or(scripted);
        if status == 200 {
            Ok(id)
        } else if status == UNREACHABLE {
            Err(Failed { failure: Failure::unreachable(), error: format!("{id}: connection refused") })
        } else if status == SIMULATED {
            Err(Failed { failure: Failure::status(500, None).simulated(), error: format!("{id}: mock failure") })
        } else if status == CONTEXT_WINDOW {
            let mut failure = Failure::status(400, None);
            failure.kind = sluice_router::ErrorKind::ContextWindowExceeded;
            Err(Failed { failure, error: format!("{id}: context window exceeded") })
        } else {
            Err(Failed { failure: Failure::status(status, self.retry_after), error: format!("{id} said {status}") })
        }
    }

    fn annotate(&mut self, error: &mut String, note: &str) {
        error.push_str(note);
    }

    fn failed(&mut self, attempt: &Attempt<()>, _f: &Failure, effect: FailureEffect) {
        if let FailureEffect::CooledDown(_) = effect {
            self.cooled.push(attempt.deployment.id.clone());
        }
    }
}

/// Script code for a 400 the upstream explained as "maximum context length exceeded".
const CONTEXT_WINDOW: u16 = 4001;
/// Script code for a failure a request's testing switch made up (`mock_testing_fallbacks`).
const SIMULATED: u16 = 5000;
/// Script code for a connection refused.
const UNREACHABLE: u16 = 1;

fn group(ids: &[&str], name: &str) -> Vec<Deployment<()>> {
    ids.iter().map(|id| Deployment::new(*id, name, ())).collect()
}

fn settings() -> Settings {
    Settings { seed: Some(7), ..Settings::default() }
}

#[tokio::test(start_paused = true)]
async fn a_429_cools_the_deployment_and_the_retry_goes_to_the_other_at_once() {
    let r = Router::new(group(&["a", "b"], "g"), settings());
    let mut c = Scripted::new(&[("a", &[200]), ("b", &[200])]);
    c.first = Some(429);
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    let served = out.result.unwrap_or_else(|_| panic!("served"));
    assert_eq!(out.attempted_retries, 1);
    assert_eq!(c.calls.len(), 2);
    assert_ne!(c.calls[0].0, c.calls[1].0, "the retry skips the cooled deployment");
    assert_eq!(c.calls[1].1, Duration::ZERO, "no sleep: another deployment was healthy");
    assert_eq!(c.cooled, vec![c.calls[0].0.clone()]);
    assert_eq!(served, c.calls[1].0);

    // For the next 5 s every request goes to the one still healthy.
    let mut c2 = Scripted::new(&[("a", &[200]), ("b", &[200])]);
    for _ in 0..20 {
        r.execute("g", &Ctx::default(), &mut c2).await;
    }
    assert!(c2.ids().iter().all(|id| *id == served), "{:?}", c2.ids());
    // After the default 5 s cooldown both serve again.
    tokio::time::advance(Duration::from_millis(5_001)).await;
    let mut c3 = Scripted::new(&[("a", &[200]), ("b", &[200])]);
    for _ in 0..40 {
        r.execute("g", &Ctx::default(), &mut c3).await;
    }
    assert!(c3.ids().contains(&"a") && c3.ids().contains(&"b"));
}

#[tokio::test(start_paused = true)]
async fn when_everything_is_cooling_the_answer_is_immediate() {
    let r = Router::new(group(&["a", "b"], "g"), settings());
    let mut c = Scripted::new(&[("a", &[429]), ("b", &[429])]);
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert!(matches!(out.result, Err(ExecError::Upstream(_))), "both tried, both 429");
    assert_eq!(c.calls.len(), 2, "no third try with nothing healthy");
    let t0 = Instant::now();
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    let Err(ExecError::NoDeployment(n)) = out.result else { panic!("expected NoDeployment") };
    assert_eq!(t0.elapsed(), Duration::ZERO, "answered without waiting");
    assert_eq!(n.retry_after_secs, 5);
    assert_eq!(n.cooldown_list.len(), 2);
    assert!(n.message().contains("Try again in 5 seconds. Passed model=g"));
}

#[tokio::test(start_paused = true)]
async fn a_lone_deployment_is_not_cooled_for_429_and_retries_back_off() {
    let r = Router::new(group(&["solo"], "g"), settings());
    let mut c = Scripted::new(&[("solo", &[500, 500, 200])]);
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert!(out.result.is_ok());
    assert_eq!(out.attempted_retries, 2);
    let t1 = c.calls[1].1.as_secs_f64();
    let t2 = c.calls[2].1.as_secs_f64() - t1;
    assert!((0.375..=0.5).contains(&t1), "first backoff 0.5 s jittered: {t1}");
    assert!((0.75..=1.0).contains(&t2), "second backoff 1 s jittered: {t2}");
    assert!(c.cooled.is_empty());

    let mut c = Scripted::new(&[("solo", &[429])]);
    c.retry_after = Some(Duration::from_secs(2));
    let t0 = Instant::now();
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert!(out.result.is_err());
    assert_eq!(c.calls.len(), 3, "num_retries 2");
    assert_eq!(t0.elapsed(), Duration::from_secs(4), "Retry-After honoured before each retry");
    assert!(c.cooled.is_empty(), "a single deployment is not cooled for 429s");
}

#[tokio::test(start_paused = true)]
async fn auth_and_not_found_failures_cool_even_a_lone_deployment_and_are_not_retried() {
    let r = Router::new(group(&["solo"], "g"), settings());
    let mut c = Scripted::new(&[("solo", &[404])]);
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert!(out.result.is_err());
    assert_eq!(c.calls.len(), 1);
    assert_eq!(c.cooled, vec!["solo"]);
}

#[tokio::test(start_paused = true)]
async fn more_than_half_failing_in_a_minute_cools_a_deployment() {
    let r = Router::new(group(&["a", "b"], "g"), Settings { num_retries: 0, ..settings() });
    let a = r.group("g").unwrap().deployments.iter().find(|d| d.id == "a").unwrap().clone();
    for _ in 0..2 {
        a.health.record_ok(0, Duration::from_millis(1));
    }
    let mut c = Scripted::new(&[("a", &[500]), ("b", &[200])]);
    let mut cooled_after = None;
    for i in 0..40 {
        r.execute("g", &Ctx::default(), &mut c).await;
        if !c.cooled.is_empty() {
            cooled_after = Some(i);
            break;
        }
    }
    assert!(cooled_after.is_some(), "a failing 500s was never cooled");
    let fails = c.ids().iter().filter(|id| **id == "a").count();
    assert_eq!(fails, 3, "cooled on the failure that took it over 50% of at least 5 requests");
}

#[tokio::test(start_paused = true)]
async fn cooldown_time_zero_and_disable_cooldowns_keep_deployments_in() {
    let mut ds = group(&["a", "b"], "g");
    ds[0].cooldown_time = Some(Duration::ZERO);
    let r = Router::new(ds, Settings { num_retries: 0, ..settings() });
    let mut c = Scripted::new(&[("a", &[429]), ("b", &[429])]);
    for _ in 0..10 {
        r.execute("g", &Ctx::default(), &mut c).await;
    }
    assert!(c.cooled.iter().all(|id| id == "b"));
    let r = Router::new(group(&["a", "b"], "g"), Settings { disable_cooldowns: true, num_retries: 0, ..settings() });
    let mut c = Scripted::new(&[("a", &[429]), ("b", &[429])]);
    for _ in 0..10 {
        r.execute("g", &Ctx::default(), &mut c).await;
    }
    assert!(c.cooled.is_empty());
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_cooldown_and_per_deployment_time_beats_it() {
    let mut ds = group(&["a", "b"], "g");
    ds[1].cooldown_time = Some(Duration::from_secs(1));
    let r = Router::new(ds, Settings { num_retries: 0, ..settings() });
    let mut c = Scripted::new(&[("a", &[429]), ("b", &[429])]);
    c.retry_after = Some(Duration::from_secs(30));
    for _ in 0..2 {
        r.execute("g", &Ctx::default(), &mut c).await;
    }
    let g = r.group("g").unwrap();
    let now = r.now_ms();
    let left = |id: &str| g.deployments.iter().find(|d| d.id == id).unwrap().health.cooldown_left(now);
    assert_eq!(left("a"), 30_000, "upstream Retry-After");
    assert_eq!(left("b"), 1_000, "the deployment's own cooldown_time wins");
}

#[tokio::test(start_paused = true)]
async fn legacy_allowed_fails_mode() {
    let r = Router::new(group(&["a", "b"], "g"), Settings { allowed_fails: Some(1), num_retries: 0, ..settings() });
    let mut c = Scripted::new(&[("a", &[500]), ("b", &[500])]);
    let mut n = 0;
    while c.cooled.is_empty() && n < 20 {
        r.execute("g", &Ctx::default(), &mut c).await;
        n += 1;
    }
    let id = c.cooled[0].clone();
    assert_eq!(c.ids().iter().filter(|x| **x == id).count(), 2, "cooled once failures exceed allowed_fails=1");
}

#[tokio::test(start_paused = true)]
async fn fallbacks_run_in_order_after_retries_and_report_depth() {
    let mut ds = group(&["p"], "primary");
    ds.extend(group(&["f1"], "first"));
    ds.extend(group(&["f2"], "second"));
    let s = Settings { fallbacks: vec![("primary".into(), vec!["first".into(), "second".into()])], ..settings() };
    let r = Router::new(ds, s);
    let mut c = Scripted::new(&[("p", &[500]), ("f1", &[503]), ("f2", &[200])]);
    let out = r.execute("primary", &Ctx::default(), &mut c).await;
    assert_eq!(out.result.ok().as_deref(), Some("f2"));
    assert_eq!(out.fallback_depth, 1);
    assert_eq!(c.ids(), vec!["p", "p", "p", "f1", "f1", "f1", "f2"], "retries in each group, fallbacks in list order");
}

#[tokio::test(start_paused = true)]
async fn no_matching_fallback_says_so() {
    let mut ds = group(&["p"], "primary");
    ds.extend(group(&["o"], "other"));
    let s = Settings { fallbacks: vec![("other".into(), vec!["primary".into()])], num_retries: 0, ..settings() };
    let r = Router::new(ds, s);
    let mut c = Scripted::new(&[("p", &[500])]);
    let out = r.execute("primary", &Ctx::default(), &mut c).await;
    let Err(ExecError::Upstream(e)) = out.result else { panic!() };
    assert!(e.contains("Received Model Group=primary"), "{e}");
    assert!(e.contains("No fallback model group found for original model_group=primary"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn fallback_depth_is_capped() {
    // a -> b -> a -> b ... must stop at max_fallbacks.
    let mut ds = group(&["a1"], "a");
    ds.extend(group(&["b1"], "b"));
    let s = Settings {
        fallbacks: vec![("a".into(), vec!["b".into()]), ("b".into(), vec!["a".into()])],
        num_retries: 0,
        disable_cooldowns: true,
        max_fallbacks: 3,
        ..settings()
    };
    let r = Router::new(ds, s);
    let mut c = Scripted::new(&[("a1", &[500]), ("b1", &[500])]);
    let out = r.execute("a", &Ctx::default(), &mut c).await;
    assert!(out.result.is_err());
    assert_eq!(c.calls.len(), 4, "the original plus three levels of fallback");
}

#[tokio::test(start_paused = true)]
async fn aliases_resolve_to_their_group() {
    let mut s = settings();
    s.aliases.insert("gpt-4".into(), ("g".into(), false));
    s.aliases.insert("secret".into(), ("g".into(), true));
    let r = Router::new(group(&["a"], "g"), s);
    let mut c = Scripted::new(&[("a", &[200])]);
    assert!(r.execute("gpt-4", &Ctx::default(), &mut c).await.result.is_ok());
    assert!(matches!(r.execute("nope", &Ctx::default(), &mut c).await.result, Err(ExecError::UnknownModel)));
    assert_eq!(r.public_names(), vec!["g".to_string(), "gpt-4".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn context_window_errors_go_straight_to_their_own_fallbacks() {
    let mut ds = group(&["small"], "short");
    ds.extend(group(&["big"], "long"));
    ds.extend(group(&["other"], "regular"));
    let s = Settings {
        context_window_fallbacks: vec![("short".into(), vec!["long".into()])],
        fallbacks: vec![("short".into(), vec!["regular".into()])],
        ..settings()
    };
    let r = Router::new(ds, s);
    let mut c = Scripted::new(&[("small", &[CONTEXT_WINDOW]), ("big", &[200]), ("other", &[200])]);
    let out = r.execute("short", &Ctx::default(), &mut c).await;
    assert_eq!(out.result.ok().as_deref(), Some("big"));
    assert_eq!(c.ids(), vec!["small", "big"], "no retries of a context-window error; its own fallback list");
}

#[tokio::test(start_paused = true)]
async fn a_storm_spends_the_retry_budget_not_num_retries_per_request() {
    let s = Settings {
        num_retries: 3,
        disable_cooldowns: true,
        retry_budget: RetryBudgetSettings { ratio: 0.2, min_per_second: 1.0 },
        ..settings()
    };
    let r = Router::new(group(&["a", "b"], "g"), s);
    let mut c = Scripted::new(&[("a", &[503]), ("b", &[503])]);
    let mut retries = 0;
    for _ in 0..100 {
        let out = r.execute("g", &Ctx::default(), &mut c).await;
        assert!(out.result.is_err());
        retries += out.attempted_retries;
    }
    // Without a budget: 100 × (1 + 3). With it: 100 first attempts, 10 retries from the
    // allowance (1 a second over the 10 s window) and a fifth of the 100 first attempts.
    assert_eq!(retries, 30);
    assert_eq!(c.calls.len(), 130);
    // The window slides: ten seconds later the group may retry again.
    tokio::time::advance(Duration::from_secs(10)).await;
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert_eq!(out.attempted_retries, 3);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_group_never_feels_the_retry_budget() {
    // Cooldowns off: the scripted upstreams' successes are not recorded, so their failures alone
    // would look like failing deployments.
    let s = Settings {
        num_retries: 2,
        disable_cooldowns: true,
        retry_budget: RetryBudgetSettings { ratio: 0.2, min_per_second: 0.0 },
        ..settings()
    };
    let r = Router::new(group(&["a", "b"], "g"), s);
    // One request in ten meets a failure and is retried once.
    for i in 0..200 {
        let mut c = Scripted::new(&[("a", &[200]), ("b", &[200])]);
        if i % 10 == 5 {
            c.first = Some(500);
        }
        let out = r.execute("g", &Ctx::default(), &mut c).await;
        assert!(out.result.is_ok(), "request {i} was not retried: {} {:?}", out.attempted_retries, c.ids());
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_deployment_beside_others_cools_at_once_a_lone_one_never() {
    let r = Router::new(group(&["a", "b"], "g"), settings());
    let mut c = Scripted::new(&[("a", &[200]), ("b", &[200])]);
    c.first = Some(UNREACHABLE);
    let out = r.execute("g", &Ctx::default(), &mut c).await;
    assert!(out.result.is_ok());
    assert_eq!(c.cooled, vec![c.calls[0].0.clone()]);
    assert_eq!(c.calls[1].1, Duration::ZERO, "retried on the other at once");

    let r = Router::new(group(&["solo"], "g"), Settings { num_retries: 0, ..settings() });
    let mut c = Scripted::new(&[("solo", &[UNREACHABLE])]);
    for _ in 0..10 {
        assert!(r.execute("g", &Ctx::default(), &mut c).await.result.is_err());
    }
    assert!(c.cooled.is_empty(), "a lone deployment keeps being tried");
    // A connection that broke once made is LiteLLM's connection error: never cooled.
    let r = Router::new(group(&["a", "b"], "g"), Settings { num_retries: 0, ..settings() });
    let g = r.group("g").unwrap();
    let attempt = r.select(g, &Ctx::default()).await.unwrap();
    assert_eq!(r.record_failure(g, &attempt, &Failure::connection()), FailureEffect::None);
}

#[tokio::test(start_paused = true)]
async fn a_request_sets_its_own_retries() {
    let r = Router::new(group(&["a", "b"], "g"), settings());
    let plan = Plan { num_retries: Some(0), ..Plan::default() };
    let mut c = Scripted::new(&[("a", &[500]), ("b", &[500])]);
    let out = r.execute_planned("g", &Ctx::default(), &plan, &mut c).await;
    assert!(out.result.is_err());
    assert_eq!((c.calls.len(), out.max_retries), (1, 0), "num_retries 0: the first failure is the answer");
    let plan = Plan { num_retries: Some(4), ..Plan::default() };
    let mut c = Scripted::new(&[("solo", &[500, 500, 500, 500, 200])]);
    let r = Router::new(group(&["solo"], "g"), settings());
    let out = r.execute_planned("g", &Ctx::default(), &plan, &mut c).await;
    assert!(out.result.is_ok());
    assert_eq!((out.attempted_retries, out.max_retries), (4, 4));
}

#[tokio::test(start_paused = true)]
async fn a_deployments_own_num_retries_wins_over_the_request_and_the_router() {
    let mut ds = group(&["solo"], "g");
    ds[0].num_retries = Some(1);
    let r = Router::new(ds, settings());
    for plan in [Plan::default(), Plan { num_retries: Some(5), ..Plan::default() }] {
        let mut c = Scripted::new(&[("solo", &[500])]);
        let out = r.execute_planned("g", &Ctx::default(), &plan, &mut c).await;
        assert!(out.result.is_err());
        assert_eq!(c.calls.len(), 2, "one retry, as the deployment says ({plan:?})");
    }
}

#[tokio::test(start_paused = true)]
async fn a_requests_fallbacks_replace_the_configured_ones_in_order() {
    let mut ds = group(&["p"], "primary");
    ds.extend(group(&["c"], "configured"));
    ds.extend(group(&["f1"], "first"));
    ds.extend(group(&["f2"], "second"));
    let s = Settings {
        fallbacks: vec![("primary".into(), vec!["configured".into()]), ("first".into(), vec!["configured".into()])],
        num_retries: 0,
        ..settings()
    };
    let r = Router::new(ds, s);
    let plan = Plan { fallbacks: Some(vec!["nope".into(), "first".into(), "second".into()]), ..Plan::default() };
    let mut c = Scripted::new(&[("p", &[500]), ("c", &[200]), ("f1", &[500]), ("f2", &[200])]);
    let out = r.execute_planned("primary", &Ctx::default(), &plan, &mut c).await;
    assert_eq!(out.result.ok().as_deref(), Some("f2"));
    assert_eq!(c.ids(), vec!["p", "f1", "f2"], "the request's list, not the groups' configured ones");
    assert_eq!(out.fallback_depth, 2);
    assert_eq!(out.served_group.as_deref(), Some("second"));

    // All failing: the last error, with the request's list in the diagnostics.
    let mut c = Scripted::new(&[("p", &[500]), ("c", &[200]), ("f1", &[500]), ("f2", &[503])]);
    let out = r.execute_planned("primary", &Ctx::default(), &plan, &mut c).await;
    let Err(ExecError::Upstream(e)) = out.result else { panic!("expected the last upstream error") };
    assert!(e.starts_with("f2 said 503") && e.contains("Fallbacks=[\"nope\", \"first\", \"second\"]"), "{e}");

    // disable_fallbacks: neither the request's nor the configured ones.
    let plan = Plan { no_fallbacks: true, ..Plan::default() };
    let mut c = Scripted::new(&[("p", &[500]), ("c", &[200])]);
    let out = r.execute_planned("primary", &Ctx::default(), &plan, &mut c).await;
    assert!(out.result.is_err());
    assert_eq!(c.ids(), vec!["p"]);
}

#[tokio::test(start_paused = true)]
async fn a_requests_fallbacks_stop_at_max_fallbacks() {
    let mut ds = group(&["p"], "primary");
    for i in 0..4 {
        ds.extend(group(&[&format!("f{i}")], &format!("g{i}")));
    }
    let r = Router::new(ds, Settings { num_retries: 0, max_fallbacks: 2, ..settings() });
    let plan = Plan { fallbacks: Some((0..4).map(|i| format!("g{i}")).collect()), ..Plan::default() };
    let mut c = Scripted::new(&[("p", &[500]), ("f0", &[500]), ("f1", &[500]), ("f2", &[200]), ("f3", &[200])]);
    let out = r.execute_planned("primary", &Ctx::default(), &plan, &mut c).await;
    assert!(out.result.is_err());
    assert_eq!(c.ids(), vec!["p", "f0", "f1"]);
}

#[tokio::test(start_paused = true)]
async fn a_simulated_failure_steers_the_fallback_but_never_cools_the_deployment() {
    let mut ds = group(&["a", "b"], "primary");
    ds.extend(group(&["f"], "fallback"));
    let s = Settings { fallbacks: vec![("primary".into(), vec!["fallback".into()])], num_retries: 1, ..settings() };
    let r = Router::new(ds, s);
    for _ in 0..10 {
        let mut c = Scripted::new(&[("a", &[SIMULATED]), ("b", &[SIMULATED]), ("f", &[200])]);
        let out = r.execute("primary", &Ctx::default(), &mut c).await;
        assert_eq!(out.result.ok().as_deref(), Some("f"));
        assert_eq!(out.fallback_depth, 1);
        assert!(c.cooled.is_empty());
    }
    let g = r.group("primary").unwrap();
    assert_eq!(r.healthy_count(g), 2, "both still in");
}

#[tokio::test(start_paused = true)]
async fn a_wildcard_deployments_404_is_about_the_name_and_does_not_cool_it() {
    // The same 404 cools an ordinary deployment (a failure retrying cannot fix) …
    let r = Router::new(group(&["a"], "g"), settings());
    let mut c = Scripted::new(&[("a", &[404])]);
    let _ = r.execute("g", &Ctx::default(), &mut c).await;
    assert_eq!(c.cooled, ["a"]);
    // … but not a wildcard one: the next name it serves still reaches it.
    let r = Router::new(group(&["w"], "openai/*"), settings());
    let mut c = Scripted::new(&[("w", &[404, 200])]);
    let out = r.execute("openai/no-such-model", &Ctx::default(), &mut c).await;
    assert!(matches!(out.result, Err(ExecError::Upstream(_))));
    assert!(c.cooled.is_empty(), "{:?}", c.cooled);
    let out = r.execute("openai/gpt-4o", &Ctx::default(), &mut c).await;
    assert_eq!(out.result.ok().as_deref(), Some("w"));
}
