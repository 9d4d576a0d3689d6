//! Running one request through the router: select, call, and on failure retry within the group,
//! then fall back to other groups, in LiteLLM's order (reference §4.5–4.6).

use crate::failure::{ErrorKind, Failure};
use crate::retry::{self, GroupView};
use crate::{Attempt, Ctx, FailureEffect, Group, NoDeployment, Router};
use std::future::Future;
use std::pin::Pin;

/// A failed upstream attempt: what the router needs to know, and the caller's own error.
pub struct Failed<E> {
    pub failure: Failure,
    pub error: E,
}

/// The server's side of an attempt.
pub trait Call<T>: Send {
    type Output: Send;
    type Error: Send;

    /// One upstream attempt on `attempt.deployment`. `fallback_depth` > 0 when serving a
    /// fallback group.
    fn call(
        &mut self,
        attempt: &Attempt<T>,
        fallback_depth: u32,
    ) -> impl Future<Output = Result<Self::Output, Failed<Self::Error>>> + Send;

    /// Appends LiteLLM's router diagnostics to the message of the error the client will get.
    fn annotate(&mut self, error: &mut Self::Error, note: &str);

    /// Observes each failed attempt and what it did to the deployment (metrics).
    fn failed(&mut self, _attempt: &Attempt<T>, _failure: &Failure, _effect: FailureEffect) {}
}

#[derive(Debug)]
pub enum ExecError<E> {
    /// No group or alias has this name.
    UnknownModel,
    /// Every deployment was cooling down or over quota.
    NoDeployment(NoDeployment),
    Upstream(E),
}

/// The result of a request and what the router did to get it.
pub struct Executed<O, E> {
    pub result: Result<O, ExecError<E>>,
    /// Retries within the group that answered (or failed last).
    pub attempted_retries: u32,
    /// How deep into fallbacks the answer came from (0: the requested group).
    pub fallback_depth: u32,
    pub max_retries: u32,
    /// The model group that produced the result.
    pub served_group: Option<String>,
}

/// An outcome, the retries it took, and the class of the last failure (which picks the fallback
/// list).
/// A result, its retries, its fallback depth, and the group that produced it.
type Outcome<O, E> = (Result<O, ExecError<E>>, u32, u32, String);

type BoxedOutcome<'a, O, E> = Pin<Box<dyn Future<Output = Outcome<O, E>> + Send + 'a>>;

type Attempted<O, E> = (Result<O, ExecError<E>>, u32, Option<ErrorKind>);

/// What one request asks of the router beyond its model: LiteLLM's per-request `num_retries`
/// and `fallbacks` (bounded by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Retries for this request in place of the router's `num_retries`.
    pub num_retries: Option<u32>,
    /// Model names to fall back to, in order, in place of the configured fallbacks: each is
    /// tried with its own retries, one level deeper than the last, up to `max_fallbacks`; the
    /// groups' own configured fallbacks are not followed (LiteLLM passes the request's list
    /// down instead).
    pub fallbacks: Option<Vec<String>>,
    /// `disable_fallbacks`: none at all.
    pub no_fallbacks: bool,
}

impl<T: Send + Sync + 'static> Router<T> {
    pub async fn execute<C: Call<T>>(
        &self,
        model: &str,
        ctx: &Ctx<'_>,
        caller: &mut C,
    ) -> Executed<C::Output, C::Error> {
        self.execute_planned(model, ctx, &Plan::default(), caller).await
    }

    /// [`Router::execute`] with what the request itself asks for.
    pub async fn execute_planned<C: Call<T>>(
        &self,
        model: &str,
        ctx: &Ctx<'_>,
        plan: &Plan,
        caller: &mut C,
    ) -> Executed<C::Output, C::Error> {
        let max_retries = plan.num_retries.unwrap_or(self.settings.num_retries);
        let Some(group) = self.resolve(model) else {
            return Executed {
                result: Err(ExecError::UnknownModel),
                attempted_retries: 0,
                fallback_depth: 0,
                max_retries,
                served_group: None,
            };
        };
        let (result, retries, depth, served) = match &plan.fallbacks {
            Some(list) if !plan.no_fallbacks => self.with_listed_fallbacks(group, list, ctx, plan, caller).await,
            _ => self.with_fallbacks(group, ctx, plan, caller, 0).await,
        };
        Executed { result, attempted_retries: retries, fallback_depth: depth, max_retries, served_group: Some(served) }
    }

    /// The request's own fallbacks: the group with retries, then each listed group in turn.
    async fn with_listed_fallbacks<C: Call<T>>(
        &self,
        group: &Group<T>,
        list: &[String],
        ctx: &Ctx<'_>,
        plan: &Plan,
        caller: &mut C,
    ) -> Outcome<C::Output, C::Error> {
        let (result, retries, _) = self.with_retries(group, ctx, plan, caller, 0).await;
        let mut last = match result {
            Ok(o) => return (Ok(o), retries, 0, group.name.clone()),
            Err(e) => (Err(e), retries, 0, group.name.clone()),
        };
        let mut depth = 0;
        for name in list {
            if depth >= self.settings.max_fallbacks {
                break;
            }
            let Some(fb) = self.resolve(name).filter(|fb| fb.name != group.name) else { continue };
            depth += 1;
            let (result, retries, _) = self.with_retries(fb, ctx, plan, caller, depth).await;
            let ok = result.is_ok();
            last = (result, retries, depth, fb.name.clone());
            if ok {
                return last;
            }
        }
        if let (Err(ExecError::Upstream(e)), _, _, _) = &mut last {
            caller.annotate(
                e,
                &format!(". Received Model Group={}\nAvailable Model Group Fallbacks={list:?}", group.name),
            );
        }
        last
    }

    /// LiteLLM's `async_function_with_fallbacks`: the group with retries, then each fallback
    /// group in list order, each with its own retries and fallbacks, to a depth of `max_fallbacks`.
    fn with_fallbacks<'a, C: Call<T>>(
        &'a self,
        group: &'a Group<T>,
        ctx: &'a Ctx<'_>,
        plan: &'a Plan,
        caller: &'a mut C,
        depth: u32,
    ) -> BoxedOutcome<'a, C::Output, C::Error> {
        Box::pin(async move {
            let (result, retries, kind) = self.with_retries(group, ctx, plan, caller, depth).await;
            let err = match result {
                Ok(o) => return (Ok(o), retries, depth, group.name.clone()),
                Err(e) => e,
            };
            let list = self.fallbacks_for(&group.name, kind).filter(|_| !plan.no_fallbacks);
            let mut err = err;
            let Some(list) = list.filter(|_| depth < self.settings.max_fallbacks) else {
                if let ExecError::Upstream(e) = &mut err {
                    caller.annotate(e, &self.diagnostics(&group.name, None));
                }
                return (Err(err), retries, depth, group.name.clone());
            };
            let mut last = (Err(err), retries, depth, group.name.clone());
            for name in list {
                if name == group.name {
                    continue;
                }
                let Some(fb) = self.resolve(&name) else { continue };
                let out = self.with_fallbacks(fb, ctx, plan, caller, depth + 1).await;
                if out.0.is_ok() {
                    return out;
                }
                last = out;
            }
            last
        })
    }

    /// Which fallback list applies: context-window and content-policy failures have their own;
    /// everything else uses `fallbacks` for the group, else the generic `"*"` entry.
    fn fallbacks_for(&self, group: &str, kind: Option<ErrorKind>) -> Option<Vec<String>> {
        let s = &self.settings;
        let find = |list: &[(String, Vec<String>)]| list.iter().find(|(g, _)| g == group).map(|(_, l)| l.clone());
        match kind {
            Some(ErrorKind::ContextWindowExceeded) => find(&s.context_window_fallbacks),
            Some(ErrorKind::ContentPolicyViolation) => find(&s.content_policy_fallbacks),
            _ => find(&s.fallbacks).or_else(|| s.fallbacks.iter().find(|(g, _)| g == "*").map(|(_, l)| l.clone())),
        }
    }

    fn diagnostics(&self, group: &str, _note: Option<&str>) -> String {
        let fallbacks = self.settings.fallbacks.iter().find(|(g, _)| g == group).map(|(_, l)| format!("{l:?}"));
        let mut s = format!(
            ". Received Model Group={group}\nAvailable Model Group Fallbacks={}",
            fallbacks.as_deref().unwrap_or("None")
        );
        if !self.settings.fallbacks.is_empty() && fallbacks.is_none() {
            s.push_str(&format!(
                "\nNo fallback model group found for original model_group={group}. Fallbacks={:?}",
                self.settings.fallbacks
            ));
        }
        s
    }

    /// LiteLLM's `async_function_with_retries` for one group.
    async fn with_retries<C: Call<T>>(
        &self,
        group: &Group<T>,
        ctx: &Ctx<'_>,
        plan: &Plan,
        caller: &mut C,
        depth: u32,
    ) -> Attempted<C::Output, C::Error> {
        group.retry_budget.deposit(self.clock.second());
        let (mut failure, deployment_retries) = match self.attempt(group, ctx, caller, depth).await {
            Ok(o) => return (Ok(o), 0, None),
            Err(AttemptError::NoDeployment(n)) => {
                return (Err(ExecError::NoDeployment(n)), 0, Some(ErrorKind::RateLimit))
            }
            Err(AttemptError::Failed(f, n)) => (f, n),
        };
        let allowed = retry::allowed(&self.settings, &failure.failure, deployment_retries, plan.num_retries);
        let mut retries = 0;
        while retries < allowed {
            let view = self.view(group);
            if view.healthy == 0 || !retry::should_retry(&failure.failure, &view) {
                break;
            }
            // Checked last, so that only a retry that would otherwise happen spends the budget.
            if !group.retry_budget.withdraw(&self.settings.retry_budget, self.clock.second()) {
                break;
            }
            let pause = retry::sleep_before(&self.settings, &failure.failure, retries, &view, &mut self.entropy.draw());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            retries += 1;
            match self.attempt(group, ctx, caller, depth).await {
                Ok(o) => return (Ok(o), retries, None),
                Err(AttemptError::NoDeployment(_)) => break,
                Err(AttemptError::Failed(f, _)) => failure = f,
            }
        }
        (Err(ExecError::Upstream(failure.error)), retries, Some(failure.failure.kind))
    }

    async fn attempt<C: Call<T>>(
        &self,
        group: &Group<T>,
        ctx: &Ctx<'_>,
        caller: &mut C,
        depth: u32,
    ) -> Result<C::Output, AttemptError<C::Error>> {
        let attempt = self.select(group, ctx).await.map_err(AttemptError::NoDeployment)?;
        match caller.call(&attempt, depth).await {
            Ok(o) => Ok(o),
            // A testing switch's failure: the deployment did nothing wrong.
            Err(f) if f.failure.simulated => Err(AttemptError::Failed(f, attempt.deployment.num_retries)),
            Err(f) => {
                let effect = self.record_failure(group, &attempt, &f.failure);
                caller.failed(&attempt, &f.failure, effect);
                Err(AttemptError::Failed(f, attempt.deployment.num_retries))
            }
        }
    }

    fn view(&self, group: &Group<T>) -> GroupView {
        let s = &self.settings;
        let has = |l: &[(String, Vec<String>)]| l.iter().any(|(g, _)| *g == group.name);
        GroupView {
            all: group.deployments.len(),
            healthy: self.healthy_count(group),
            has_context_window_fallbacks: has(&s.context_window_fallbacks),
            has_content_policy_fallbacks: has(&s.content_policy_fallbacks),
            has_regular_fallbacks: has(&s.fallbacks) || has_generic(&s.fallbacks),
        }
    }
}

fn has_generic(l: &[(String, Vec<String>)]) -> bool {
    l.iter().any(|(g, _)| g == "*")
}

enum AttemptError<E> {
    NoDeployment(NoDeployment),
    /// The failure, and the `num_retries` of the deployment that failed.
    Failed(Failed<E>, Option<u32>),
}
