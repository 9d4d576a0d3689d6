//! `simple-shuffle`: LiteLLM's default strategy, a weighted random pick.

use crate::Deployment;
use std::sync::Arc;

/// Reads the quota field a group is weighted by.
type WeightField<T> = fn(&Deployment<T>) -> Option<f64>;

/// Cumulative weights for a weighted pick, computed once per group.
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// One deployment: nothing to choose.
    Single,
    /// No weights configured: every deployment equally likely.
    Uniform(usize),
    /// Running totals; pick the first whose total exceeds a uniform draw below the last.
    Cumulative(Vec<f64>),
}

impl Weights {
    /// LiteLLM looks at the *first* deployment: if it sets `weight`, all are weighted by `weight`
    /// (missing counts as 0); else by `rpm`; else by `tpm`; else uniform.
    pub fn simple_shuffle<T>(deployments: &[Arc<Deployment<T>>]) -> Self {
        if deployments.len() <= 1 {
            return Weights::Single;
        }
        let first = &deployments[0];
        let field: Option<WeightField<T>> = if first.weight.is_some() {
            Some(|d| d.weight)
        } else if first.rpm.is_some() {
            Some(|d| d.rpm)
        } else if first.tpm.is_some() {
            Some(|d| d.tpm)
        } else {
            None
        };
        let Some(field) = field else {
            return Weights::Uniform(deployments.len());
        };
        let mut total = 0.0;
        let cumulative: Vec<f64> = deployments
            .iter()
            .map(|d| {
                total += field(d).filter(|w| w.is_finite() && *w > 0.0).unwrap_or(0.0);
                total
            })
            .collect();
        if total <= 0.0 {
            return Weights::Uniform(deployments.len());
        }
        Weights::Cumulative(cumulative)
    }

    pub fn pick(&self, rng: &mut impl rand::Rng) -> usize {
        match self {
            Weights::Single => 0,
            Weights::Uniform(n) => rng.gen_range(0..*n),
            Weights::Cumulative(c) => {
                let total = *c.last().expect("cumulative weights are never empty");
                let x = rng.gen_range(0.0..total);
                c.iter().position(|t| x < *t).unwrap_or(c.len() - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Router;
    use rand::SeedableRng;

    fn dep(id: &str, weight: Option<f64>, rpm: Option<f64>) -> Deployment<()> {
        Deployment { id: id.into(), model_name: "g".into(), weight, rpm, tpm: None, target: () }
    }

    fn counts(router: &Router<()>, n: usize) -> Vec<usize> {
        let g = router.group("g").unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = vec![0; g.deployments.len()];
        for _ in 0..n {
            let d = g.pick(&mut rng);
            counts[g.deployments.iter().position(|x| Arc::ptr_eq(x, d)).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn uniform_without_weights() {
        let r = Router::new(vec![dep("a", None, None), dep("b", None, None)]);
        let c = counts(&r, 20_000);
        assert!((9_500..10_500).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn weighted_by_weight_then_rpm() {
        let r = Router::new(vec![dep("a", Some(3.0), None), dep("b", Some(1.0), Some(1000.0))]);
        let c = counts(&r, 20_000);
        assert!((14_500..15_500).contains(&c[0]), "{c:?}");
        let r = Router::new(vec![dep("a", None, Some(100.0)), dep("b", None, Some(300.0))]);
        let c = counts(&r, 20_000);
        assert!((4_500..5_500).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn first_deployment_decides_the_field_and_missing_weighs_zero() {
        let r = Router::new(vec![dep("a", Some(1.0), None), dep("b", None, Some(500.0))]);
        assert_eq!(counts(&r, 1_000), vec![1_000, 0]);
    }

    #[test]
    fn groups_keep_config_order() {
        let mut a = dep("a", None, None);
        a.model_name = "z".into();
        let r = Router::new(vec![a, dep("b", None, None), dep("c", None, None)]);
        assert_eq!(r.model_names(), &["z".to_string(), "g".to_string()]);
        assert_eq!(r.deployments().count(), 3);
        assert!(r.pick("missing").is_none());
        assert_eq!(r.pick("z").unwrap().id, "a");
    }
}
