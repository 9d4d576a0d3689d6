//! Organizations in memory: read from the store (each one with the budget row it names) at
//! start, on every reload and when the management API announces a change, so that a request by
//! a key of a team in an organization is checked against the organization's budget without a
//! database query.

use super::registry::Organization;
use super::Access;
use sluice_store::{OrganizationRecord, Store, StoreError};
use std::collections::HashMap;

/// The organization with its budget row (none when it names no budget, or one that is gone).
pub async fn with_budget(store: &Store, record: OrganizationRecord) -> Result<Organization, StoreError> {
    let budget = match &record.budget_id {
        Some(id) => store.get_budget(id).await?,
        None => None,
    };
    Ok(Organization { record, budget })
}

impl Access {
    /// Loads every organization into memory; those gone from the database go from memory too.
    pub async fn load_organizations(&self) -> Result<(), StoreError> {
        let Some(store) = self.store() else { return Ok(()) };
        let records = store.all_organizations().await?;
        let mut budgets: HashMap<String, _> = HashMap::new();
        if records.iter().any(|o| o.budget_id.is_some()) {
            budgets = store.all_budgets().await?.into_iter().map(|b| (b.budget_id.clone(), b)).collect();
        }
        let orgs = records
            .into_iter()
            .map(|record| {
                let budget = record.budget_id.as_ref().and_then(|id| budgets.get(id).cloned());
                Organization { record, budget }
            })
            .collect();
        self.registry.reload_organizations(orgs);
        Ok(())
    }

    /// Reads one organization again (a change announced by another replica): it is put in
    /// memory, or removed if it is no longer in the database.
    pub async fn reload_organization(&self, organization_id: &str) -> Result<(), StoreError> {
        let Some(store) = self.store() else { return Ok(()) };
        match store.get_organization(organization_id).await? {
            Some(record) => drop(self.registry.put_organization(with_budget(store, record).await?, true)),
            None => drop(self.registry.organizations.remove(organization_id)),
        }
        Ok(())
    }
}
