//! The organizations part of `import_litellm`: `LiteLLM_OrganizationTable` and
//! `LiteLLM_OrganizationMembership`, with the `LiteLLM_BudgetTable` rows the organizations and
//! memberships name (only those: the budgets of other records are theirs to bring).

use std::collections::HashMap;

use sqlx::any::{Any, AnyRow};
use sqlx::{AnyPool, Transaction};

use super::Kind::*;
use super::{list, map, read, Budget, Catalog, ImportReport, Kind};
use crate::codec;
use crate::table;
use crate::{budgets, organizations, BudgetRecord, OrgMemberRecord, OrganizationRecord, Result};

const ORG_TABLE: &str = "LiteLLM_OrganizationTable";
const MEMBER_TABLE: &str = "LiteLLM_OrganizationMembership";

const ORG_COLS: &[(&str, Kind)] = &[
    ("organization_id", Text),
    ("organization_alias", Text),
    ("budget_id", Text),
    ("models", List),
    ("spend", Real),
    ("model_spend", Json),
    ("metadata", Json),
    ("created_at", Time),
    ("created_by", Text),
    ("updated_at", Time),
    ("updated_by", Text),
];
const MEMBER_COLS: &[(&str, Kind)] = &[
    ("user_id", Text),
    ("organization_id", Text),
    ("user_role", Text),
    ("spend", Real),
    ("budget_id", Text),
    ("created_at", Time),
    ("updated_at", Time),
];

/// What was read, to be written in the import's transaction.
pub(super) struct Organizations {
    budgets: Vec<BudgetRecord>,
    pub orgs: Vec<OrganizationRecord>,
    members: Vec<OrgMemberRecord>,
}

fn org_from_row(r: &AnyRow) -> Result<OrganizationRecord> {
    Ok(OrganizationRecord {
        organization_id: codec::text(r, "organization_id")?,
        organization_alias: codec::opt_text(r, "organization_alias")?,
        budget_id: codec::opt_text(r, "budget_id")?,
        models: list(r, "models")?,
        spend: codec::opt_real(r, "spend")?.unwrap_or(0.0),
        model_spend: map(r, "model_spend")?,
        metadata: map(r, "metadata")?,
        // LiteLLM keeps no such column: an imported organization is not blocked.
        blocked: false,
        created_at: codec::opt_time(r, "created_at")?,
        created_by: codec::opt_text(r, "created_by")?,
        updated_at: codec::opt_time(r, "updated_at")?,
        updated_by: codec::opt_text(r, "updated_by")?,
    })
}

fn member_from_row(r: &AnyRow) -> Result<OrgMemberRecord> {
    Ok(OrgMemberRecord {
        user_id: codec::text(r, "user_id")?,
        organization_id: codec::text(r, "organization_id")?,
        user_role: codec::opt_text(r, "user_role")?,
        spend: codec::opt_real(r, "spend")?.unwrap_or(0.0),
        budget_id: codec::opt_text(r, "budget_id")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
    })
}

fn budget_record(budget_id: &str, b: &Budget) -> BudgetRecord {
    BudgetRecord {
        budget_id: budget_id.to_owned(),
        max_budget: b.max_budget,
        soft_budget: b.soft_budget,
        max_parallel_requests: b.max_parallel_requests,
        tpm_limit: b.tpm_limit,
        rpm_limit: b.rpm_limit,
        model_max_budget: b.model_max_budget.clone(),
        budget_duration: b.budget_duration.clone(),
        budget_reset_at: b.budget_reset_at,
        ..Default::default()
    }
}

/// Reads the organizations and memberships, and picks the budgets they name out of `budgets`
/// (a name with no budget row is kept as it is: the budget may come later).
pub(super) async fn read_organizations(
    source: &AnyPool,
    catalog: &Catalog,
    budgets: &HashMap<String, Budget>,
    report: &mut ImportReport,
) -> Result<Organizations> {
    let orgs = read(source, catalog, ORG_TABLE, ORG_COLS, report).await?;
    let orgs = orgs.iter().map(org_from_row).collect::<Result<Vec<_>>>()?;
    let members = read(source, catalog, MEMBER_TABLE, MEMBER_COLS, report).await?;
    let members = members.iter().map(member_from_row).collect::<Result<Vec<_>>>()?;
    let mut named: Vec<&String> = orgs
        .iter()
        .filter_map(|o| o.budget_id.as_ref())
        .chain(members.iter().filter_map(|m| m.budget_id.as_ref()))
        .collect();
    named.sort();
    named.dedup();
    let budgets = named.into_iter().filter_map(|id| budgets.get(id).map(|b| budget_record(id, b))).collect();
    Ok(Organizations { budgets, orgs, members })
}

impl Organizations {
    /// Writes (overwriting rows with the same ids, spend included) in the import's transaction.
    pub(super) async fn write(&self, tx: &mut Transaction<'static, Any>) -> Result<()> {
        table::upsert_all(tx, &budgets::TABLE, &self.budgets).await?;
        table::upsert_all(tx, &organizations::TABLE, &self.orgs).await?;
        organizations::upsert_members_in(tx, &self.members).await
    }
}
