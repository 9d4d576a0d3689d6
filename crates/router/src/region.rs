//! Where a deployment runs, for end users held to a region (LiteLLM's `allowed_model_region`:
//! `eu` or `us`). A deployment's region is read once, from `litellm_params.region_name` (else
//! `aws_region_name`, else `vertex_location`): `eu`/`us` as written, or inferred from a
//! provider's region name (`eu-west-1`, `europe-west4`, `westeurope`, `us-east-1`, `eastus2`),
//! as LiteLLM's `_is_region_eu`/`_is_region_us` do. A deployment whose region is unknown serves
//! no region-held end user: data that must stay in a region is not sent where it might not.

use crate::Deployment;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Eu,
    Us,
}

/// Azure and other region names that start with a European country.
const EU_PREFIXES: &[&str] =
    &["eu-", "europe", "sweden", "switzerland", "france", "germany", "uk", "norway", "poland", "italy", "spain"];

impl Region {
    /// An end user's `allowed_model_region`.
    pub fn parse(s: &str) -> Option<Region> {
        match s {
            "eu" => Some(Region::Eu),
            "us" => Some(Region::Us),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Eu => "eu",
            Region::Us => "us",
        }
    }

    /// The region a provider's region name lies in, when it says.
    pub fn of(region_name: &str) -> Option<Region> {
        let name = region_name.trim().to_ascii_lowercase();
        if let Some(r) = Region::parse(&name) {
            return Some(r);
        }
        if EU_PREFIXES.iter().any(|p| name.starts_with(p)) || name.ends_with("europe") {
            return Some(Region::Eu);
        }
        // `us-east-1`, `us-central1`; Azure's `eastus`, `westus2`, `southcentralus`.
        if name.starts_with("us-") || name.trim_end_matches(|c: char| c.is_ascii_digit()).ends_with("us") {
            return Some(Region::Us);
        }
        None
    }
}

/// Narrows `candidates` to the deployments in `region`.
pub(crate) fn retain<T>(candidates: &mut Vec<&Arc<Deployment<T>>>, region: Region) {
    candidates.retain(|d| d.region == Some(region));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_read_from_provider_region_names() {
        for eu in ["eu", "EU", "eu-west-1", "eu-central-1", "europe-west4", "westeurope", "swedencentral", "uksouth"] {
            assert_eq!(Region::of(eu), Some(Region::Eu), "{eu}");
        }
        for us in ["us", "us-east-1", "us-central1", "eastus", "eastus2", "southcentralus", "us-gov-west-1"] {
            assert_eq!(Region::of(us), Some(Region::Us), "{us}");
        }
        for other in ["", "ap-southeast-1", "australiaeast", "asia-east1", "japaneast", "mars"] {
            assert_eq!(Region::of(other), None, "{other}");
        }
        assert_eq!(Region::parse("eu").map(Region::as_str), Some("eu"));
        assert_eq!(Region::parse("europe"), None);
    }

    /// An end user held to a region is served only there, whatever the strategy picks; a group
    /// with no deployment there refuses it with a 400 naming the region; others are unaffected.
    #[tokio::test]
    async fn a_region_held_request_goes_only_to_that_region() {
        use crate::{Ctx, Router, Settings};
        let dep = |id: &str, group: &str, region: Option<Region>| {
            let mut d = crate::Deployment::new(id, group, ());
            d.region = region;
            d
        };
        let r = Router::new(
            vec![
                dep("eu-1", "g", Some(Region::Eu)),
                dep("us-1", "g", Some(Region::Us)),
                dep("unknown", "g", None),
                dep("us-only", "h", Some(Region::Us)),
            ],
            Settings { seed: Some(7), ..Settings::default() },
        );
        let g = r.group("g").unwrap();
        let eu = Ctx { region: Some(Region::Eu), ..Ctx::default() };
        for _ in 0..50 {
            assert_eq!(r.select(g, &eu).await.unwrap().deployment.id, "eu-1");
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(r.select(g, &Ctx::default()).await.unwrap().deployment.id.clone());
        }
        assert_eq!(seen.len(), 3, "without a region every deployment serves: {seen:?}");
        let refused = r.select(r.group("h").unwrap(), &eu).await.err().unwrap();
        assert_eq!(refused.status(), 400);
        assert!(refused.message().contains("allowed_model_region=eu. Passed model=h."), "{}", refused.message());
    }
}
