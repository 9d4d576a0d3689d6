//! Choosing a deployment for a request: model groups and LiteLLM's routing strategies.
//!
//! Pure logic, no I/O and no HTTP. A [`Router`] holds the deployments of every model group; the
//! server asks it for a deployment per attempt. What a deployment *is* to the caller (its upstream
//! URL, key, timeouts) is opaque here: the router is generic over it, so providers and routing
//! stay in separate rooms.

mod shuffle;

use std::collections::HashMap;
use std::sync::Arc;

pub use shuffle::Weights;

/// One deployment as the router sees it: identity, the quota fields strategies weigh by, and
/// the caller's payload.
#[derive(Debug)]
pub struct Deployment<T> {
    /// `model_info.id`, or LiteLLM's deterministic hash of the entry.
    pub id: String,
    /// The public name (model group) this deployment serves.
    pub model_name: String,
    pub weight: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    pub target: T,
}

/// Every deployment sharing one `model_name`.
#[derive(Debug)]
pub struct Group<T> {
    pub deployments: Vec<Arc<Deployment<T>>>,
    weights: Weights,
}

impl<T> Group<T> {
    fn new(deployments: Vec<Arc<Deployment<T>>>) -> Self {
        let weights = Weights::simple_shuffle(&deployments);
        Group { deployments, weights }
    }

    /// LiteLLM's default `simple-shuffle`: weighted by `weight`, else `rpm`, else `tpm` of the
    /// deployments, else uniform.
    pub fn pick(&self, rng: &mut impl rand::Rng) -> &Arc<Deployment<T>> {
        &self.deployments[self.weights.pick(rng)]
    }
}

/// All model groups, in the order their names first appear in the config.
#[derive(Debug)]
pub struct Router<T> {
    names: Vec<String>,
    groups: HashMap<String, Group<T>>,
}

impl<T> Router<T> {
    pub fn new(deployments: Vec<Deployment<T>>) -> Self {
        let mut names = Vec::new();
        let mut members: HashMap<String, Vec<Arc<Deployment<T>>>> = HashMap::new();
        for d in deployments {
            if !members.contains_key(&d.model_name) {
                names.push(d.model_name.clone());
            }
            members.entry(d.model_name.clone()).or_default().push(Arc::new(d));
        }
        let groups = members.into_iter().map(|(name, ds)| (name, Group::new(ds))).collect();
        Router { names, groups }
    }

    /// Model group names in config order.
    pub fn model_names(&self) -> &[String] {
        &self.names
    }

    pub fn group(&self, name: &str) -> Option<&Group<T>> {
        self.groups.get(name)
    }

    /// Every deployment, grouped in config order.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment<T>>> {
        self.names.iter().flat_map(|n| self.groups[n].deployments.iter())
    }

    /// A deployment for one attempt at `group`, or `None` when no such group exists.
    pub fn pick(&self, group: &str) -> Option<Arc<Deployment<T>>> {
        let g = self.groups.get(group)?;
        Some(g.pick(&mut rand::thread_rng()).clone())
    }
}
