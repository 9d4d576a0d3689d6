//! The spend, budget and rate-limit columns that keys, users and teams share: the same names in
//! sluice's tables and in LiteLLM's, and the same fields in [`KeyRecord`](crate::KeyRecord),
//! [`UserRecord`](crate::UserRecord) and [`TeamRecord`](crate::TeamRecord). Those records stay
//! flat (they are the public API), so the two macros here spell those fields and columns out once
//! for all three.

/// The `(column, value)` pairs of the shared columns of `$rec` (a key, user or team record).
macro_rules! limit_vals {
    ($rec:expr) => {{
        let r = $rec;
        [
            ("spend", $crate::sql::Val::real(r.spend)),
            ("max_budget", $crate::sql::Val::opt_real(r.max_budget)),
            ("budget_duration", $crate::sql::Val::opt_text(&r.budget_duration)),
            ("budget_reset_at", $crate::sql::Val::opt_time(r.budget_reset_at)),
            ("tpm_limit", $crate::sql::Val::int(r.tpm_limit)),
            ("rpm_limit", $crate::sql::Val::int(r.rpm_limit)),
            ("max_parallel_requests", $crate::sql::Val::int(r.max_parallel_requests)),
            ("model_max_budget", $crate::sql::Val::json(&r.model_max_budget)),
            ("model_spend", $crate::sql::Val::json(&r.model_spend)),
            ("metadata", $crate::sql::Val::json(&r.metadata)),
        ]
    }};
}

/// `$record { own fields…, shared fields }`: a key, user or team record built from its own
/// fields and the shared columns of row `$r`, whose JSON maps `$map` reads (`codec::map` for
/// sluice's tables, the import's lenient reader for LiteLLM's). Used where `?` can return a
/// `StoreError`; the compiler still checks that every field is given.
macro_rules! with_limits {
    ($record:ident { $($field:ident: $value:expr),* $(,)? }, $r:expr, $map:path) => {{
        let r: &sqlx::any::AnyRow = $r;
        $record {
            $($field: $value,)*
            spend: $crate::codec::real(r, "spend")?,
            max_budget: $crate::codec::opt_real(r, "max_budget")?,
            budget_duration: $crate::codec::opt_text(r, "budget_duration")?,
            budget_reset_at: $crate::codec::opt_time(r, "budget_reset_at")?,
            tpm_limit: $crate::codec::opt_int(r, "tpm_limit")?,
            rpm_limit: $crate::codec::opt_int(r, "rpm_limit")?,
            max_parallel_requests: $crate::codec::opt_int(r, "max_parallel_requests")?,
            model_max_budget: $map(r, "model_max_budget")?,
            model_spend: $map(r, "model_spend")?,
            metadata: $map(r, "metadata")?,
        }
    }};
}

pub(crate) use {limit_vals, with_limits};
