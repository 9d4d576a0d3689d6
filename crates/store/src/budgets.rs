//! `sluice_budgets`: budgets and limits shared by reference (LiteLLM's `LiteLLM_BudgetTable`).
//! End users, organizations and team memberships name one by `budget_id`.

use sqlx::any::AnyRow;

use crate::codec;
use crate::sql::Val;
use crate::table::{self, Table};
use crate::{BudgetRecord, Result, Store};

pub(crate) const TABLE: Table<BudgetRecord> = Table {
    name: "sluice_budgets",
    key: "budget_id",
    noun: |budget_id| format!("budget '{budget_id}'"),
    conflict: |b, _| format!("Budget with budget_id '{}' already exists", b.budget_id),
    row,
    from_row,
};

fn row(b: &BudgetRecord) -> Vec<(&'static str, Val)> {
    vec![
        ("budget_id", Val::text(&b.budget_id)),
        ("max_budget", Val::opt_real(b.max_budget)),
        ("soft_budget", Val::opt_real(b.soft_budget)),
        ("max_parallel_requests", Val::int(b.max_parallel_requests)),
        ("tpm_limit", Val::int(b.tpm_limit)),
        ("rpm_limit", Val::int(b.rpm_limit)),
        ("model_max_budget", Val::json(&b.model_max_budget)),
        ("budget_duration", Val::opt_text(&b.budget_duration)),
        ("budget_reset_at", Val::opt_time(b.budget_reset_at)),
        ("created_at", Val::opt_time(b.created_at)),
        ("updated_at", Val::opt_time(b.updated_at)),
        ("created_by", Val::opt_text(&b.created_by)),
        ("updated_by", Val::opt_text(&b.updated_by)),
    ]
}

fn from_row(r: &AnyRow) -> Result<BudgetRecord> {
    Ok(BudgetRecord {
        budget_id: codec::text(r, "budget_id")?,
        max_budget: codec::opt_real(r, "max_budget")?,
        soft_budget: codec::opt_real(r, "soft_budget")?,
        max_parallel_requests: codec::opt_int(r, "max_parallel_requests")?,
        tpm_limit: codec::opt_int(r, "tpm_limit")?,
        rpm_limit: codec::opt_int(r, "rpm_limit")?,
        model_max_budget: codec::map(r, "model_max_budget")?,
        budget_duration: codec::opt_text(r, "budget_duration")?,
        budget_reset_at: codec::opt_time(r, "budget_reset_at")?,
        created_at: codec::opt_time(r, "created_at")?,
        updated_at: codec::opt_time(r, "updated_at")?,
        created_by: codec::opt_text(r, "created_by")?,
        updated_by: codec::opt_text(r, "updated_by")?,
    })
}

pub(crate) async fn insert(store: &Store, b: &BudgetRecord) -> Result<()> {
    table::insert(store, &TABLE, b).await
}

pub(crate) async fn update(store: &Store, b: &BudgetRecord) -> Result<()> {
    table::update(store, &TABLE, &b.budget_id, b).await
}

pub(crate) async fn get(store: &Store, budget_id: &str) -> Result<Option<BudgetRecord>> {
    table::get(store, &TABLE, budget_id).await
}

pub(crate) async fn all(store: &Store) -> Result<Vec<BudgetRecord>> {
    table::all(store, &TABLE).await
}
