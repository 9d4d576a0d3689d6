//! Who owns each file and batch, and which deployment holds it: the caller's identity, the
//! deployment a new object goes to (LiteLLM's `target_model_names` / `model`, else its
//! `custom_llm_provider`, `openai` by default), and the deployment an id lives on (its record in
//! `sluice_objects`). A key that did not make an object is told it does not exist; the master key
//! and proxy admins see every one.

use super::{upstream, Billed};
use crate::app::{App, Target};
use serde_json::Value;
use sluice_access::Identity;
use sluice_providers::pricing::TokenUsage;
use sluice_store::ObjectRecord;
use sluice_wire::ApiError;
use std::sync::Arc;

pub(super) type Dep = Arc<sluice_router::Deployment<Target>>;

/// The most deployments one list reads from.
const MAX_LIST_DEPLOYMENTS: usize = 16;
/// The most records one list reads.
const MAX_LIST_RECORDS: i64 = 10_000;

/// Who is calling.
pub(super) struct Caller {
    pub identity: Identity,
    /// The key's token hash; `master` or `open` for the master key and an open proxy.
    pub owner: String,
    pub team: Option<String>,
    /// The master key, an open proxy or a proxy admin's key: sees every object.
    pub admin: bool,
}

pub(super) async fn caller(app: &App, headers: &http::HeaderMap) -> Result<Caller, ApiError> {
    let identity = app.access.identify(headers).await?;
    app.access.check_standing(&identity)?;
    let admin = identity.is_admin(&app.access.registry);
    let (owner, team) = match &identity {
        Identity::Key(k) => (k.record.token.clone(), k.record.team_id.clone()),
        Identity::Master => ("master".to_string(), None),
        Identity::Open => ("open".to_string(), None),
    };
    Ok(Caller { identity, owner, team, admin })
}

/// Where the caller asks a new object (or an id not recorded here, for an admin) to go.
#[derive(Default)]
pub(super) struct Ask<'a> {
    /// LiteLLM's `target_model_names` (comma-separated; the first is used) or `model`.
    pub names: Option<&'a str>,
    /// LiteLLM's `custom_llm_provider`: `openai` (the default) or `azure`.
    pub provider: Option<&'a str>,
}

/// LiteLLM's routing fields in a query string or the `custom-llm-provider` header.
pub(super) struct QueryAsk {
    names: Option<String>,
    provider: Option<String>,
}

impl QueryAsk {
    pub(super) fn new(query: Option<&str>, headers: &http::HeaderMap) -> QueryAsk {
        let pairs: Vec<(String, String)> =
            url_pairs(query.unwrap_or("")).into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string());
        let header = headers.get("custom-llm-provider").and_then(|v| v.to_str().ok()).map(str::to_string);
        QueryAsk {
            names: get("target_model_names").or_else(|| get("model")),
            provider: get("custom_llm_provider").or(header),
        }
    }

    pub(super) fn names(&self) -> Option<&str> {
        self.names.as_deref()
    }

    pub(super) fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    pub(super) fn ask(&self) -> Ask<'_> {
        Ask { names: self.names(), provider: self.provider() }
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();

    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The deployment a new object goes to.
pub(super) fn choose(app: &App, caller: &Caller, ask: &Ask<'_>) -> Result<Dep, ApiError> {
    let router = app.router.load();
    if let Some(names) = ask.names {
        let name = names.split(',').map(str::trim).find(|n| !n.is_empty()).unwrap_or("");
        let name = app.access.team_alias(&caller.identity, name).unwrap_or_else(|| name.to_string());
        let group = router.group(&name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid model name passed in target_model_names={name}. Call `/v1/models` to view available models for your key."
            ))
            .param("target_model_names")
        })?;
        return group.deployments.iter().find(|d| super::openai(&d.target).is_some()).cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Model group `{name}` has no OpenAI-compatible or Azure deployment; files and batches live on those."
            ))
        });
    }
    let provider = ask.provider.unwrap_or("openai");
    let found = router
        .deployments()
        .find(|d| {
            d.target.provider.name == provider
                && super::openai(&d.target).is_some()
                && app.access.admit_model(&caller.identity, &d.model_name)
        })
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "No {provider} deployment in model_list that this key may use serves files and batches. Name a model group with `target_model_names` (form field or query), or set `custom_llm_provider` to openai or azure."
            ))
            .param("custom_llm_provider")
        });
    found
}

fn not_found(kind: &str, id: &str) -> ApiError {
    let what = match kind {
        super::BATCH => "Batch",
        _ => "File",
    };
    ApiError::new(404, format!("No such {what} object: {id}")).kind("invalid_request_error")
}

fn unavailable(e: sluice_store::StoreError) -> ApiError {
    tracing::warn!("could not read the files and batches table: {e}");
    ApiError::new(503, "The database that records files and batches is unavailable; retry shortly.")
}

/// The record of `kind` object `id`, when there is a database.
pub(super) async fn record(app: &App, kind: &str, id: &str) -> Result<Option<ObjectRecord>, ApiError> {
    match app.access.store() {
        Some(store) => store.get_object(kind, id).await.map_err(unavailable),
        None => Ok(None),
    }
}

/// The deployment holding `kind` object `id`, if the caller may see it. An id not recorded here
/// is found only for an admin (on the deployment `ask` names), or when there is no database to
/// record owners in (only the master key exists then).
pub(super) async fn locate(app: &App, caller: &Caller, kind: &str, id: &str, ask: &Ask<'_>) -> Result<Dep, ApiError> {
    if !upstream::plain_id(id) {
        return Err(not_found(kind, id));
    }
    match record(app, kind, id).await? {
        Some(r) if caller.admin || r.owner == caller.owner => {
            let router = app.router.load();
            let found = router.deployments().find(|d| d.id == r.model_id).cloned();
            found.ok_or_else(|| {
                ApiError::new(
                    404,
                    format!(
                        "{id} lives on deployment {} of `{}`, which is no longer in model_list.",
                        r.model_id, r.model
                    ),
                )
                .kind("invalid_request_error")
            })
        }
        Some(_) => Err(not_found(kind, id)),
        None if caller.admin || app.access.store().is_none() => choose(app, caller, ask),
        None => Err(not_found(kind, id)),
    }
}

/// Records the object in an upstream's answer (`{"id": …}`) as the caller's, on `dep`.
pub(super) async fn remember(app: &App, caller: &Caller, kind: &str, answer: &[u8], dep: &Dep) {
    let Some(id) = serde_json::from_slice::<Value>(answer).ok().and_then(|v| v["id"].as_str().map(str::to_string))
    else {
        tracing::warn!(kind, "an upstream's answer named no id; the object is not recorded");
        return;
    };
    own(app, &caller.owner, caller.team.clone(), kind, &id, dep).await;
}

/// Records `id` as `owner`'s, on `dep` (a batch's output files belong to the batch's owner).
pub(super) async fn own(app: &App, owner: &str, team: Option<String>, kind: &str, id: &str, dep: &Dep) {
    let Some(store) = app.access.store() else { return };
    let record = ObjectRecord {
        object_id: id.to_string(),
        kind: kind.to_string(),
        owner: owner.to_string(),
        team_id: team,
        model: dep.model_name.clone(),
        model_id: dep.id.clone(),
        created_at: chrono::Utc::now().timestamp_millis(),
        billed: false,
    };
    if let Err(e) = store.insert_object(&record).await {
        tracing::warn!(object_id = id, "could not record who owns an upstream object: {e}");
    }
}

pub(super) async fn forget(app: &App, kind: &str, id: &str) {
    if let Some(store) = app.access.store() {
        if let Err(e) = store.delete_object(kind, id).await {
            tracing::warn!(object_id = id, "could not forget a deleted upstream object: {e}");
        }
    }
}

/// `GET /v1/files` or `/v1/batches`: the upstream lists of the deployments that hold the caller's
/// objects (an admin's: also the deployment the query names), keeping only the caller's, newest
/// first.
pub(super) async fn list(
    app: &App,
    headers: &http::HeaderMap,
    query: Option<&str>,
    kind: &str,
    call_type: &'static str,
    tail: &str,
) -> Result<axum::response::Response, ApiError> {
    let caller = caller(app, headers).await?;
    let records = match app.access.store() {
        Some(store) => {
            let owner = (!caller.admin).then_some(caller.owner.as_str());
            store.list_objects(kind, owner, MAX_LIST_RECORDS).await.map_err(unavailable)?
        }
        None => Vec::new(),
    };
    let mut deps: Vec<Dep> = Vec::new();
    {
        let router = app.router.load();
        for r in &records {
            if deps.len() == MAX_LIST_DEPLOYMENTS {
                break;
            }
            if deps.iter().any(|d| d.id == r.model_id) {
                continue;
            }
            if let Some(d) = router.deployments().find(|d| d.id == r.model_id) {
                deps.push(d.clone());
            }
        }
    }
    let asked = QueryAsk::new(query, headers);
    if caller.admin || app.access.store().is_none() {
        match choose(app, &caller, &asked.ask()) {
            Ok(d) if !deps.iter().any(|x| x.id == d.id) => deps.insert(0, d),
            Ok(_) => {}
            Err(e) if deps.is_empty() => return Err(e),
            Err(_) => {}
        }
    }
    let owned: std::collections::HashSet<&str> = records.iter().map(|r| r.object_id.as_str()).collect();
    let Some(first) = deps.first() else {
        // Nothing made by this key: no upstream to ask, nothing to admit.
        return Ok(list_reply(Vec::new()));
    };
    let billed = Billed::admit(app, &caller, first, call_type).await?;
    let forwarded = super::forwarded_query(query);
    let result = async {
        let mut data: Vec<Value> = Vec::new();
        for dep in &deps {
            let t = super::target(dep)?;
            let (_, bytes) = super::fetch(t, http::Method::GET, tail, &forwarded, None).await?;
            let page: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let Some(items) = page["data"].as_array() else { continue };
            for item in items {
                let id = item["id"].as_str().unwrap_or("");
                if (caller.admin || owned.contains(id)) && !data.iter().any(|d| d["id"] == item["id"]) {
                    data.push(item.clone());
                }
            }
        }
        data.sort_by_key(|v| std::cmp::Reverse(v["created_at"].as_i64().unwrap_or(0)));
        Ok(data)
    }
    .await;
    billed.settle(&result, TokenUsage::default());
    result.map(list_reply)
}

fn list_reply(data: Vec<Value>) -> axum::response::Response {
    let first = data.first().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|v| v["id"].clone()).unwrap_or(Value::Null);
    let body =
        serde_json::json!({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false});
    super::json_reply(http::StatusCode::OK, bytes::Bytes::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_pairs_are_decoded() {
        let pairs = super::url_pairs("target_model_names=gpt%2D4o%2Cother&custom_llm_provider=azure&x&a=b+c");
        assert_eq!(pairs[0], ("target_model_names".into(), "gpt-4o,other".into()));
        assert_eq!(pairs[1], ("custom_llm_provider".into(), "azure".into()));
        assert_eq!(pairs[2], ("x".into(), String::new()));
        assert_eq!(pairs[3], ("a".into(), "b c".into()));
        // A broken escape is kept as it is.
        assert_eq!(super::url_pairs("a=%zz%4")[0].1, "%zz%4");
    }
}
