//! `/openapi.json` and `/docs`: the gateway's routes described as OpenAPI 3.1, and a page that
//! renders the description in a browser without fetching anything from the network.
//!
//! The description is built from the route table itself: [`Routes`] records the path of every
//! route it registers, and [`document`] describes each recorded path from [`OPERATIONS`]. A route
//! added without a row there still appears (as a path with no operation), and a test walks the
//! router — every recorded path, every method — to prove each operation the router answers is
//! described and each described one is answered.
//!
//! Both routes are public, as LiteLLM serves its FastAPI docs: the description is static (routes,
//! parameters, schemas) and names no deployment, key, model or upstream address.

use crate::app::App;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bytes::Bytes;
use http::header;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A router under construction that remembers the path of every route it is given.
pub struct Routes {
    router: axum::Router<Arc<App>>,
    paths: Vec<String>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes { router: axum::Router::new(), paths: Vec::new() }
    }

    /// As [`axum::Router::route`].
    pub fn route(mut self, path: &str, method_router: MethodRouter<Arc<App>>) -> Routes {
        self.paths.push(path.to_string());
        self.router = self.router.route(path, method_router);
        self
    }

    /// As [`axum::Router::merge`].
    pub fn merge(mut self, other: Routes) -> Routes {
        self.paths.extend(other.paths);
        self.router = self.router.merge(other.router);
        self
    }

    /// Applies `f` to the router (a fallback, a layer), keeping the recorded paths.
    pub fn map(mut self, f: impl FnOnce(axum::Router<Arc<App>>) -> axum::Router<Arc<App>>) -> Routes {
        self.router = f(self.router);
        self
    }

    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    pub fn into_router(self) -> axum::Router<Arc<App>> {
        self.router
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    /// Anyone.
    Public,
    /// A virtual key or the master key (`Authorization: Bearer …`).
    Key,
    /// The master key or a `proxy_admin` user's key.
    Admin,
}

/// One described operation.
#[derive(Debug)]
pub struct Operation {
    pub method: &'static str,
    /// As registered with axum (`{name}` and `{*name}` for parameters).
    pub path: &'static str,
    /// Also served under `/v1` (LiteLLM serves the OpenAI routes both ways).
    pub v1: bool,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// The request body's schema in `components.schemas`, if it takes one.
    pub body: Option<&'static str>,
    /// Query parameters.
    pub query: &'static [&'static str],
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    auth: Auth,
    summary: &'static str,
) -> Operation {
    Operation { method, path, v1: false, tag, summary, auth, body: None, query: &[] }
}

/// The media type a request schema is sent as: an upload's is a form.
fn body_type(schema: &str) -> &'static str {
    match schema {
        "TranscriptionRequest" | "ImageEditRequest" | "ImageVariationRequest" => "multipart/form-data",
        _ => "application/json",
    }
}

const fn openai(path: &'static str, body: &'static str, summary: &'static str) -> Operation {
    Operation { method: "post", path, v1: true, tag: "OpenAI", summary, auth: Auth::Key, body: Some(body), query: &[] }
}

const fn admin_post(path: &'static str, tag: &'static str, body: &'static str, summary: &'static str) -> Operation {
    Operation { method: "post", path, v1: false, tag, summary, auth: Auth::Admin, body: Some(body), query: &[] }
}

const fn get_with(
    path: &'static str,
    tag: &'static str,
    auth: Auth,
    query: &'static [&'static str],
    summary: &'static str,
) -> Operation {
    Operation { method: "get", path, v1: false, tag, summary, auth, body: None, query }
}

/// Every operation the gateway serves.
/// A provider pass-through route (any method under the prefix).
const fn relayed(method: &'static str, path: &'static str, summary: &'static str) -> Operation {
    op(method, path, "Pass-through", Auth::Key, summary)
}

const OPENAI_RELAY: &str = "OpenAI's API, relayed with OPENAI_API_KEY (pass-through)";
const ANTHROPIC_RELAY: &str = "Anthropic's API, relayed with ANTHROPIC_API_KEY (pass-through)";
const GEMINI_RELAY: &str = "Google AI Studio's Gemini API, relayed with GEMINI_API_KEY (pass-through)";
const VERTEX_AI_RELAY: &str = "Vertex AI's API, relayed with default_vertex_config's credentials (pass-through)";
const BEDROCK_RELAY: &str = "Bedrock's runtime API, signed with the gateway's AWS credentials (pass-through)";
const AZURE_RELAY: &str = "Azure OpenAI's API, relayed with AZURE_API_KEY (pass-through)";

pub static OPERATIONS: &[Operation] = &[
    openai("/chat/completions", "ChatCompletionRequest", "Create a chat completion (streamed with `stream: true`)"),
    openai("/completions", "CompletionRequest", "Create a text completion"),
    openai("/embeddings", "EmbeddingRequest", "Create embeddings"),
    openai("/rerank", "RerankRequest", "Rank documents against a query (Cohere's rerank shape, as LiteLLM serves it)"),
    Operation {
        v1: false,
        ..openai("/v2/rerank", "RerankRequest", "Rank documents against a query (Cohere's v2 path)")
    },
    openai("/images/generations", "ImageGenerationRequest", "Generate images (billed per image, or per pixel)"),
    openai(
        "/images/edits",
        "ImageEditRequest",
        "Edit an image upload with a prompt (multipart/form-data, at most max_request_size_mb; billed per image)",
    ),
    openai(
        "/images/variations",
        "ImageVariationRequest",
        "Make variations of an image upload (multipart/form-data, at most max_request_size_mb; billed per image)",
    ),
    openai("/moderations", "ModerationRequest", "Classify text against the moderation categories"),
    openai("/audio/speech", "SpeechRequest", "Speak text: the audio streams back as the provider sends it"),
    openai(
        "/audio/transcriptions",
        "TranscriptionRequest",
        "Transcribe an audio upload (multipart/form-data, at most max_request_size_mb)",
    ),
    openai(
        "/audio/translations",
        "TranscriptionRequest",
        "Translate an audio upload into English text (multipart/form-data, at most max_request_size_mb)",
    ),
    openai(
        "/responses",
        "ResponsesRequest",
        "Create a model response (OpenAI's Responses API; streamed with `stream: true`)",
    ),
    Operation { v1: true, ..op("get", "/responses/{id}", "OpenAI", Auth::Key, "A stored response (the caller's own)") },
    Operation {
        v1: true,
        ..op("delete", "/responses/{id}", "OpenAI", Auth::Key, "Delete a stored response (the caller's own)")
    },
    Operation {
        v1: true,
        query: &["target_model_names", "custom_llm_provider"],
        ..op(
            "post",
            "/files",
            "OpenAI",
            Auth::Key,
            "Upload a file (multipart/form-data, streamed to the upstream, at most max_request_size_mb)",
        )
    },
    Operation {
        v1: true,
        query: &["purpose", "limit", "after", "order", "custom_llm_provider"],
        ..op("get", "/files", "OpenAI", Auth::Key, "The caller's files (every file for an admin)")
    },
    Operation { v1: true, ..op("get", "/files/{id}", "OpenAI", Auth::Key, "A file (the caller's own)") },
    Operation { v1: true, ..op("delete", "/files/{id}", "OpenAI", Auth::Key, "Delete a file (the caller's own)") },
    Operation {
        v1: true,
        ..op("get", "/files/{id}/content", "OpenAI", Auth::Key, "A file's content, streamed (the caller's own)")
    },
    Operation {
        v1: true,
        ..op("post", "/batches", "OpenAI", Auth::Key, "Create a batch from an uploaded input file (the caller's own)")
    },
    Operation {
        v1: true,
        query: &["limit", "after", "custom_llm_provider"],
        ..op("get", "/batches", "OpenAI", Auth::Key, "The caller's batches (every batch for an admin)")
    },
    Operation {
        v1: true,
        ..op(
            "get",
            "/batches/{id}",
            "OpenAI",
            Auth::Key,
            "A batch (the caller's own); billed for its answers when first seen completed",
        )
    },
    Operation {
        v1: true,
        ..op("post", "/batches/{id}/cancel", "OpenAI", Auth::Key, "Cancel a batch (the caller's own)")
    },
    openai(
        "/openai/deployments/{model}/chat/completions",
        "ChatCompletionRequest",
        "Azure-style chat completion: the path names the model",
    ),
    openai("/openai/deployments/{model}/completions", "CompletionRequest", "Azure-style text completion"),
    openai("/openai/deployments/{model}/embeddings", "EmbeddingRequest", "Azure-style embeddings"),
    openai("/engines/{model}/chat/completions", "ChatCompletionRequest", "Legacy engines path: chat completion"),
    openai("/engines/{model}/completions", "CompletionRequest", "Legacy engines path: text completion"),
    openai("/engines/{model}/embeddings", "EmbeddingRequest", "Legacy engines path: embeddings"),
    Operation {
        method: "post",
        path: "/v1/messages",
        v1: false,
        tag: "Anthropic",
        summary: "Anthropic Messages API, routed like every other request",
        auth: Auth::Key,
        body: Some("AnthropicMessagesRequest"),
        query: &[],
    },
    Operation {
        method: "post",
        path: "/v1/messages/count_tokens",
        v1: false,
        tag: "Anthropic",
        summary: "Count a Messages request's input tokens (Anthropic's own count for Anthropic deployments)",
        auth: Auth::Key,
        body: None,
        query: &[],
    },
    Operation {
        v1: true,
        query: &["return_wildcard_routes", "only_model_access_groups", "include_model_access_groups"],
        ..op("get", "/models", "OpenAI", Auth::Key, "List the models the caller may use")
    },
    Operation { v1: true, ..op("get", "/models/{*id}", "OpenAI", Auth::Key, "One model by name") },
    Operation { v1: true, ..op("get", "/model/info", "Models", Auth::Key, "Deployments and their model_info") },
    Operation {
        query: &["model_group"],
        ..op("get", "/model_group/info", "Models", Auth::Key, "Model groups the caller may use, with prices and limits")
    },
    op("get", "/health/liveliness", "Health", Auth::Public, "Liveness: the process answers"),
    op("get", "/health/liveness", "Health", Auth::Public, "Liveness (alias of /health/liveliness)"),
    op("get", "/health/readiness", "Health", Auth::Public, "Readiness, with the database's state"),
    get_with(
        "/health",
        "Health",
        Auth::Admin,
        &["model", "model_id"],
        "Calls each deployment (or the background checks' latest result): healthy and unhealthy endpoints",
    ),
    op("get", "/routes", "Health", Auth::Public, "Every route the gateway serves, with its methods"),
    op("get", "/health/readiness/details", "Health", Auth::Key, "Readiness with its diagnostics, for any valid key"),
    op("get", "/", "Health", Auth::Public, "LiteLLM's root answer"),
    op("get", "/metrics", "Health", Auth::Public, "Prometheus metrics (with the `prometheus` callback on)"),
    op("get", "/openapi.json", "Health", Auth::Public, "This description"),
    op("get", "/docs", "Health", Auth::Public, "This description, rendered as a page"),
    admin_post("/key/generate", "Keys", "KeyFields", "Create a virtual key"),
    admin_post("/key/update", "Keys", "KeyFields", "Change a key's settings"),
    get_with("/key/info", "Keys", Auth::Key, &["key"], "A key's settings and spend (the caller's own without `key`)"),
    Operation { method: "post", ..admin_post("/v2/key/info", "Keys", "KeyList", "Several keys' settings and spend") },
    get_with(
        "/key/list",
        "Keys",
        Auth::Admin,
        &["page", "size", "return_full_object", "user_id", "team_id", "key_alias"],
        "List keys",
    ),
    admin_post("/key/delete", "Keys", "KeyList", "Delete keys"),
    admin_post("/key/block", "Keys", "KeyRef", "Block a key"),
    admin_post("/key/unblock", "Keys", "KeyRef", "Unblock a key"),
    admin_post("/key/regenerate", "Keys", "KeyFields", "Replace a key's secret, keeping its settings"),
    admin_post("/key/{key}/regenerate", "Keys", "KeyFields", "Replace the named key's secret"),
    admin_post("/user/new", "Users", "UserFields", "Create a user"),
    get_with("/user/info", "Users", Auth::Key, &["user_id"], "A user, their keys and teams"),
    admin_post("/user/update", "Users", "UserFields", "Change a user"),
    admin_post("/user/delete", "Users", "UserList", "Delete users"),
    get_with(
        "/user/list",
        "Users",
        Auth::Admin,
        &["page", "page_size", "user_ids", "role", "team", "user_email"],
        "List users",
    ),
    admin_post("/team/new", "Teams", "TeamFields", "Create a team"),
    admin_post("/team/update", "Teams", "TeamFields", "Change a team"),
    get_with("/team/info", "Teams", Auth::Key, &["team_id"], "A team, its members and keys"),
    get_with("/team/list", "Teams", Auth::Admin, &["user_id"], "List teams"),
    admin_post("/team/delete", "Teams", "TeamList", "Delete teams"),
    admin_post("/team/member_add", "Teams", "TeamMembers", "Add members to a team"),
    admin_post("/team/member_delete", "Teams", "TeamMembers", "Remove members from a team"),
    admin_post("/team/block", "Teams", "TeamRef", "Block a team"),
    admin_post("/team/unblock", "Teams", "TeamRef", "Unblock a team"),
    // Teams: proxy admins and the team's own admins.
    Operation {
        auth: Auth::Key,
        ..admin_post("/team/member_update", "Teams", "TeamMemberUpdate", "Change a member's role or budget in a team")
    },
    Operation {
        auth: Auth::Key,
        ..admin_post("/team/model/add", "Teams", "TeamModels", "Add models to a team's list")
    },
    Operation {
        auth: Auth::Key,
        ..admin_post("/team/model/delete", "Teams", "TeamModels", "Remove models from a team's list")
    },
    get_with("/team/available", "Teams", Auth::Key, &[], "The teams (available_teams) the caller's user may join"),
    get_with(
        "/spend/logs",
        "Spend",
        Auth::Admin,
        &["start_date", "end_date", "summarize", "api_key", "user_id", "request_id", "page", "page_size"],
        "Spend log rows, or daily sums",
    ),
    get_with("/global/spend", "Spend", Auth::Admin, &[], "Total spend and the proxy's budget"),
    get_with("/spend/keys", "Spend", Auth::Admin, &[], "Spend per key"),
    get_with("/spend/users", "Spend", Auth::Admin, &["user_id"], "Spend per user"),
    get_with("/spend/tags", "Spend", Auth::Admin, &["start_date", "end_date"], "Spend per request tag"),
    get_with(
        "/global/spend/report",
        "Spend",
        Auth::Admin,
        &["start_date", "end_date", "group_by", "api_key", "internal_user_id", "team_id", "customer_id"],
        "Daily spend per team or customer, or per key",
    ),
    get_with(
        "/user/daily/activity",
        "Spend",
        Auth::Key,
        &["start_date", "end_date", "model", "api_key", "user_id", "page", "page_size"],
        "Daily activity of users (a non-admin key: its own)",
    ),
    get_with(
        "/team/daily/activity",
        "Spend",
        Auth::Key,
        &["start_date", "end_date", "model", "api_key", "team_ids", "page", "page_size"],
        "Daily activity of teams (a non-admin key: its own team)",
    ),
    admin_post("/model/new", "Models", "ModelFields", "Add a deployment (stored with store_model_in_db)"),
    admin_post("/model/delete", "Models", "ModelRef", "Remove a deployment added with /model/new"),
    admin_post("/model/update", "Models", "ModelUpdate", "Change a stored deployment (model_info.id names it)"),
    Operation {
        method: "patch",
        ..admin_post("/model/{model_id}/update", "Models", "ModelUpdate", "Change a stored deployment's fields")
    },
    // End users and budgets.
    admin_post("/budget/new", "Budgets", "BudgetFields", "Create a budget end users can share"),
    admin_post("/budget/update", "Budgets", "BudgetFields", "Change a budget (budget_id names it)"),
    admin_post("/budget/info", "Budgets", "BudgetList", "Several budgets"),
    get_with("/budget/list", "Budgets", Auth::Admin, &[], "List budgets"),
    get_with("/budget/settings", "Budgets", Auth::Admin, &["budget_id"], "A budget's fields, described"),
    admin_post("/budget/delete", "Budgets", "BudgetRef", "Delete a budget no end user names"),
    admin_post("/end_user/new", "End users", "EndUserFields", "Create an end user"),
    get_with("/end_user/info", "End users", Auth::Admin, &["end_user_id"], "An end user and its budget"),
    admin_post("/end_user/update", "End users", "EndUserFields", "Change an end user or its budget"),
    admin_post("/end_user/delete", "End users", "UserList", "Delete end users"),
    get_with("/end_user/list", "End users", Auth::Admin, &[], "List end users"),
    admin_post("/customer/new", "End users", "EndUserFields", "Create an end user"),
    get_with("/customer/info", "End users", Auth::Admin, &["end_user_id"], "An end user and its budget"),
    admin_post("/customer/update", "End users", "EndUserFields", "Change an end user or its budget"),
    admin_post("/customer/delete", "End users", "UserList", "Delete end users"),
    get_with("/customer/list", "End users", Auth::Admin, &[], "List end users"),
    // Organizations.
    admin_post("/organization/new", "Organizations", "OrganizationFields", "Create an organization and its budget"),
    get_with("/organization/list", "Organizations", Auth::Key, &["org_id", "org_alias"], "List organizations"),
    get_with(
        "/organization/info",
        "Organizations",
        Auth::Key,
        &["organization_id"],
        "An organization, its budget, members and teams",
    ),
    Operation {
        auth: Auth::Key,
        ..admin_post("/organization/info", "Organizations", "OrganizationList", "Organizations by id (deprecated form)")
    },
    Operation {
        method: "patch",
        ..admin_post(
            "/organization/update",
            "Organizations",
            "OrganizationFields",
            "Change an organization and its budget",
        )
    },
    Operation {
        method: "delete",
        ..admin_post("/organization/delete", "Organizations", "OrganizationIds", "Delete organizations and their teams")
    },
    Operation {
        auth: Auth::Key,
        ..admin_post(
            "/organization/member_add",
            "Organizations",
            "OrganizationMembers",
            "Add members (admins and org_admins)",
        )
    },
    Operation {
        method: "patch",
        auth: Auth::Key,
        ..admin_post(
            "/organization/member_update",
            "Organizations",
            "OrganizationMembers",
            "Change a member's role or budget",
        )
    },
    Operation {
        method: "delete",
        auth: Auth::Key,
        ..admin_post("/organization/member_delete", "Organizations", "OrganizationMembers", "Remove a member")
    },
    admin_post("/config/update", "Config", "ConfigUpdate", "Change settings without a restart (store_model_in_db)"),
    get_with("/active/callbacks", "Config", Auth::Admin, &[], "The callbacks the config names, and those sluice runs"),
    get_with("/settings", "Config", Auth::Admin, &[], "As /active/callbacks (its older name)"),
    get_with("/get/config/callbacks", "Config", Auth::Admin, &[], "Callbacks and alerts with the variables they read"),
    get_with(
        "/cache/ping",
        "Cache",
        Auth::Admin,
        &[],
        "Whether the answer cache's store answers, its type and settings",
    ),
    admin_post("/cache/delete", "Cache", "CacheKeys", "Delete the answers kept under these keys (x-litellm-cache-key)"),
    op("post", "/cache/flushall", "Cache", Auth::Admin, "Delete every kept answer (this gateway's key prefix only)"),
    get_with("/cache/redis/info", "Cache", Auth::Admin, &[], "The cache's Redis INFO, field by field"),
    op("post", "/key/health", "Keys", Auth::Key, "The calling key's health (its logging callbacks)"),
    op("get", "/key/health", "Keys", Auth::Key, "As POST /key/health"),
    relayed("get", "/openai/{*endpoint}", OPENAI_RELAY),
    relayed("post", "/openai/{*endpoint}", OPENAI_RELAY),
    relayed("put", "/openai/{*endpoint}", OPENAI_RELAY),
    relayed("patch", "/openai/{*endpoint}", OPENAI_RELAY),
    relayed("delete", "/openai/{*endpoint}", OPENAI_RELAY),
    relayed("get", "/anthropic/{*endpoint}", ANTHROPIC_RELAY),
    relayed("post", "/anthropic/{*endpoint}", ANTHROPIC_RELAY),
    relayed("put", "/anthropic/{*endpoint}", ANTHROPIC_RELAY),
    relayed("patch", "/anthropic/{*endpoint}", ANTHROPIC_RELAY),
    relayed("delete", "/anthropic/{*endpoint}", ANTHROPIC_RELAY),
    relayed("get", "/gemini/{*endpoint}", GEMINI_RELAY),
    relayed("post", "/gemini/{*endpoint}", GEMINI_RELAY),
    relayed("put", "/gemini/{*endpoint}", GEMINI_RELAY),
    relayed("patch", "/gemini/{*endpoint}", GEMINI_RELAY),
    relayed("delete", "/gemini/{*endpoint}", GEMINI_RELAY),
    relayed("get", "/vertex_ai/{*endpoint}", VERTEX_AI_RELAY),
    relayed("post", "/vertex_ai/{*endpoint}", VERTEX_AI_RELAY),
    relayed("put", "/vertex_ai/{*endpoint}", VERTEX_AI_RELAY),
    relayed("patch", "/vertex_ai/{*endpoint}", VERTEX_AI_RELAY),
    relayed("delete", "/vertex_ai/{*endpoint}", VERTEX_AI_RELAY),
    relayed("get", "/bedrock/{*endpoint}", BEDROCK_RELAY),
    relayed("post", "/bedrock/{*endpoint}", BEDROCK_RELAY),
    relayed("put", "/bedrock/{*endpoint}", BEDROCK_RELAY),
    relayed("patch", "/bedrock/{*endpoint}", BEDROCK_RELAY),
    relayed("delete", "/bedrock/{*endpoint}", BEDROCK_RELAY),
    relayed("get", "/azure/{*endpoint}", AZURE_RELAY),
    relayed("post", "/azure/{*endpoint}", AZURE_RELAY),
    relayed("put", "/azure/{*endpoint}", AZURE_RELAY),
    relayed("patch", "/azure/{*endpoint}", AZURE_RELAY),
    relayed("delete", "/azure/{*endpoint}", AZURE_RELAY),
];

/// The operations that describe `path` as registered with axum.
fn operations_of(path: &str) -> impl Iterator<Item = &'static Operation> + '_ {
    let unprefixed = path.strip_prefix("/v1").filter(|rest| rest.starts_with('/'));
    OPERATIONS.iter().filter(move |op| op.path == path || (op.v1 && unprefixed == Some(op.path)))
}

/// axum's `{*name}` as OpenAPI's `{name}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The names of `path`'s parameters.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
        .collect()
}

/// The OpenAPI document for the router whose routes were registered at `paths`.
pub fn document(paths: &[String]) -> Value {
    let mut out = Map::new();
    let mut seen = std::collections::HashSet::new();
    for path in paths.iter().filter(|p| seen.insert(p.as_str())) {
        let mut item = Map::new();
        for op in operations_of(path) {
            item.insert(op.method.to_string(), operation(op, path));
        }
        if item.is_empty() {
            item.insert("description".into(), json!("Served, but not described yet (openapi::OPERATIONS)."));
        }
        out.insert(openapi_path(path), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sluice",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An LLM gateway compatible with the LiteLLM Proxy: OpenAI-compatible routes, \
                LiteLLM's management API and health routes. Authenticate with `Authorization: Bearer <key>` \
                (a virtual key, or the master key for admin routes).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": out,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A virtual key (sk-...) or the master key."},
            },
            "schemas": schemas(),
            "responses": {
                "Error": {
                    "description": "An OpenAI-shaped error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        },
    })
}

fn operation(op: &Operation, registered: &str) -> Value {
    let mut o = Map::new();
    o.insert("tags".into(), json!([op.tag]));
    o.insert("summary".into(), json!(op.summary));
    // Unique across the document: the method and the path as registered.
    let id: String = format!("{}{}", op.method, registered)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    o.insert("operationId".into(), json!(id.trim_end_matches('_')));
    let mut params: Vec<Value> = path_parameters(registered)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(op.query.iter().map(|name| json!({"name": name, "in": "query", "schema": {"type": "string"}})));
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(schema) = op.body {
        o.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": {body_type(schema): {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            }),
        );
    }
    let ok = if op.tag == "OpenAI" && op.method == "post" {
        json!({
            "description": "The provider's answer in OpenAI's format; with `stream: true`, server-sent events",
            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {"schema": {"type": "string"}}},
        })
    } else if op.path == "/metrics" {
        json!({"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}})
    } else if op.path == "/docs" {
        json!({"description": "An HTML page", "content": {"text/html": {"schema": {"type": "string"}}}})
    } else {
        json!({"description": "OK", "content": {"application/json": {"schema": {}}}})
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    if op.auth != Auth::Public || op.body.is_some() || !op.query.is_empty() {
        responses.insert("default".into(), json!({"$ref": "#/components/responses/Error"}));
    }
    o.insert("responses".into(), Value::Object(responses));
    match op.auth {
        Auth::Public => {
            o.insert("security".into(), json!([]));
        }
        Auth::Key => {
            o.insert("security".into(), json!([{"bearer": []}]));
        }
        Auth::Admin => {
            o.insert("security".into(), json!([{"bearer": []}]));
            o.insert("description".into(), json!("For admins; what other roles may do: docs/keys.md, \"Roles\"."));
        }
    }
    Value::Object(o)
}

fn schemas() -> Value {
    let message = json!({
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
            "content": {"description": "Text, or a list of content parts"},
            "name": {"type": "string"},
            "tool_calls": {"type": "array", "items": {"type": "object"}},
            "tool_call_id": {"type": "string"},
        },
    });
    let model = json!({"type": "string", "description": "A model_name from the config (or an alias)"});
    let user = json!({"type": "string", "description": "The end user, tracked and budgeted as LiteLLM does"});
    let object = |description: &str| json!({"type": "object", "description": description});
    // Outside the one `json!` below, which is at the macro's recursion limit.
    let cache_keys = json!({"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}}});
    let mut all = json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }},
        },
        "ChatCompletionRequest": {
            "type": "object",
            "required": ["messages"],
            "properties": {
                "model": model,
                "messages": {"type": "array", "items": message},
                "stream": {"type": "boolean"},
                "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
                "max_tokens": {"type": "integer", "minimum": 0},
                "max_completion_tokens": {"type": "integer", "minimum": 0},
                "temperature": {"type": "number"},
                "top_p": {"type": "number"},
                "n": {"type": "integer"},
                "stop": {},
                "tools": {"type": "array", "items": {"type": "object"}},
                "tool_choice": {},
                "response_format": {"type": "object"},
                "user": user,
                "metadata": {"type": "object"},
            },
            "additionalProperties": true,
        },
        "CompletionRequest": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "model": model,
                "prompt": {"description": "A string or a list of strings"},
                "stream": {"type": "boolean"},
                "max_tokens": {"type": "integer", "minimum": 0},
                "temperature": {"type": "number"},
                "user": user,
            },
            "additionalProperties": true,
        },
        "EmbeddingRequest": {
            "type": "object",
            "required": ["input"],
            "properties": {
                "model": model,
                "input": {"description": "A string, a list of strings, or token arrays"},
                "encoding_format": {"type": "string", "enum": ["float", "base64"]},
                "dimensions": {"type": "integer"},
                "user": user,
            },
            "additionalProperties": true,
        },
        "RerankRequest": {
            "type": "object",
            "required": ["model", "query", "documents"],
            "properties": {
                "model": model,
                "query": {"type": "string"},
                "documents": {"type": "array", "description": "Texts, or objects with a `text`"},
                "top_n": {"type": "integer", "minimum": 1},
                "return_documents": {"type": "boolean"},
                "max_tokens_per_doc": {"type": "integer", "minimum": 1},
            },
            "additionalProperties": true,
        },
        "ResponsesRequest": {
            "type": "object",
            "properties": {
                "model": model,
                "input": {"description": "A string, or a list of input items (messages, function calls and their outputs)"},
                "instructions": {"type": "string"},
                "previous_response_id": {"type": "string"},
                "tools": {"type": "array", "items": {"type": "object"}},
                "max_output_tokens": {"type": "integer", "minimum": 0},
                "reasoning": {"type": "object"},
                "store": {"type": "boolean"},
                "stream": {"type": "boolean"},
                "user": user,
            },
            "additionalProperties": true,
        },
        "AnthropicMessagesRequest": {
            "type": "object",
            "required": ["model", "messages", "max_tokens"],
            "properties": {
                "model": model,
                "messages": {"type": "array", "items": {"type": "object"}},
                "system": {},
                "max_tokens": {"type": "integer", "minimum": 1},
                "stream": {"type": "boolean"},
            },
            "additionalProperties": true,
        },
        "KeyFields": {
            "type": "object",
            "description": "LiteLLM's key fields (all optional)",
            "properties": {
                "key": {"type": "string", "description": "The key to update or regenerate"},
                "key_alias": {"type": "string"},
                "models": {"type": "array", "items": {"type": "string"}},
                "max_budget": {"type": "number", "minimum": 0},
                "budget_duration": {"type": "string", "examples": ["30d"]},
                "duration": {"type": "string", "examples": ["24h"]},
                "tpm_limit": {"type": "integer", "minimum": 0},
                "rpm_limit": {"type": "integer", "minimum": 0},
                "max_parallel_requests": {"type": "integer", "minimum": 0},
                "user_id": {"type": "string"},
                "team_id": {"type": "string"},
                "metadata": {"type": "object"},
            },
            "additionalProperties": true,
        },
        "KeyRef": {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}},
        "KeyList": {
            "type": "object",
            "properties": {
                "keys": {"type": "array", "items": {"type": "string"}},
                "key_aliases": {"type": "array", "items": {"type": "string"}},
            },
        },
        "UserFields": object("LiteLLM's user fields: user_id, user_email, user_role, max_budget, budget_duration, models, tpm_limit, rpm_limit, metadata"),
        "UserList": {"type": "object", "properties": {"user_ids": {"type": "array", "items": {"type": "string"}}}},
        "TeamFields": object("LiteLLM's team fields: team_id, team_alias, models, max_budget, budget_duration, tpm_limit, rpm_limit, members_with_roles, metadata, blocked"),
        "TeamRef": {"type": "object", "required": ["team_id"], "properties": {"team_id": {"type": "string"}}},
        "TeamList": {"type": "object", "properties": {"team_ids": {"type": "array", "items": {"type": "string"}}}},
        "OrganizationFields": object("LiteLLM's organization fields: organization_id, organization_alias, models, budget_id or max_budget, soft_budget, budget_duration, tpm_limit, rpm_limit, max_parallel_requests, model_max_budget, metadata, blocked"),
        "OrganizationList": {"type": "object", "properties": {"organizations": {"type": "array", "items": {"type": "string"}}}},
        "OrganizationIds": {"type": "object", "properties": {"organization_ids": {"type": "array", "items": {"type": "string"}}}},
        "OrganizationMembers": {
            "type": "object",
            "required": ["organization_id"],
            "properties": {
                "organization_id": {"type": "string"},
                "member": {"description": "One member or a list: {role, user_id, user_email}"},
                "user_id": {"type": "string"},
                "user_email": {"type": "string"},
                "role": {"type": "string"},
                "max_budget_in_organization": {"type": "number"},
            },
        },
        "TeamMembers": {
            "type": "object",
            "required": ["team_id"],
            "properties": {
                "team_id": {"type": "string"},
                "member": {"description": "One member or a list: {role, user_id, user_email}"},
                "user_id": {"type": "string"},
                "user_email": {"type": "string"},
            },
        },
        "TeamMemberUpdate": {
            "type": "object",
            "required": ["team_id"],
            "properties": {
                "team_id": {"type": "string"},
                "user_id": {"type": "string"},
                "user_email": {"type": "string"},
                "role": {"type": "string", "enum": ["admin", "user"]},
                "max_budget_in_team": {"type": ["number", "null"]},
            },
        },
        "TeamModels": {
            "type": "object",
            "required": ["team_id", "models"],
            "properties": {"team_id": {"type": "string"}, "models": {"type": "array", "items": {"type": "string"}}},
        },
        "ModelFields": {
            "type": "object",
            "required": ["model_name", "litellm_params"],
            "properties": {
                "model_name": {"type": "string"},
                "litellm_params": {"type": "object", "description": "As in the config's model_list"},
                "model_info": {"type": "object"},
            },
        },
        "BudgetFields": object("LiteLLM's budget fields: budget_id, max_budget, soft_budget, max_parallel_requests, tpm_limit, rpm_limit, model_max_budget, budget_duration, budget_reset_at"),
        "BudgetList": {"type": "object", "required": ["budgets"], "properties": {"budgets": {"type": "array", "items": {"type": "string"}}}},
        "BudgetRef": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "EndUserFields": object("LiteLLM's end-user fields: user_id, alias, blocked, budget_id, allowed_model_region (eu or us), default_model, and budget fields (max_budget, tpm_limit, rpm_limit, max_parallel_requests, budget_duration, model_max_budget)"),
        "ModelRef": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "ConfigUpdate": {
            "type": "object",
            "description": "Each section is merged key by key into the stored one; null removes a key",
            "properties": {
                "router_settings": {"type": "object"},
                "litellm_settings": {"type": "object"},
                "general_settings": {"type": "object"},
                "environment_variables": {"type": "object"},
            },
        },
        "ModelUpdate": {
            "type": "object",
            "description": "The fields to change; litellm_params and model_info are merged key by key",
            "properties": {
                "model_name": {"type": "string"},
                "litellm_params": {"type": "object"},
                "model_info": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        },
    });
    all["CacheKeys"] = cache_keys;
    if let (Value::Object(all), Value::Object(media)) = (&mut all, media_schemas(&model, &user)) {
        all.extend(media);
    }
    all
}

/// The image, moderation and audio routes' requests (apart: one `json!` holding every schema
/// would pass the macro's recursion limit).
fn media_schemas(model: &Value, user: &Value) -> Value {
    json!({
        "ImageGenerationRequest": {
            "type": "object",
            "required": ["model", "prompt"],
            "properties": {
                "model": model,
                "prompt": {"type": "string"},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "size": {"type": "string", "description": "WIDTHxHEIGHT, e.g. 1024x1024"},
                "quality": {"type": "string"},
                "response_format": {"type": "string", "enum": ["url", "b64_json"]},
                "user": user,
            },
            "additionalProperties": true,
        },
        "ModerationRequest": {
            "type": "object",
            "required": ["model", "input"],
            "properties": {"model": model, "input": {"description": "A string or a list of strings"}},
            "additionalProperties": true,
        },
        "SpeechRequest": {
            "type": "object",
            "required": ["model", "input", "voice"],
            "properties": {
                "model": model,
                "input": {"type": "string"},
                "voice": {"type": "string"},
                "response_format": {"type": "string"},
                "speed": {"type": "number"},
            },
            "additionalProperties": true,
        },
        "ImageEditRequest": {
            "type": "object",
            "required": ["model", "image", "prompt"],
            "properties": {
                "model": model,
                "image": {"type": "string", "format": "binary"},
                "mask": {"type": "string", "format": "binary"},
                "prompt": {"type": "string"},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "size": {"type": "string"},
                "response_format": {"type": "string", "enum": ["url", "b64_json"]},
            },
        },
        "ImageVariationRequest": {
            "type": "object",
            "required": ["model", "image"],
            "properties": {
                "model": model,
                "image": {"type": "string", "format": "binary"},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "size": {"type": "string"},
                "response_format": {"type": "string", "enum": ["url", "b64_json"]},
            },
        },
        "TranscriptionRequest": {
            "type": "object",
            "required": ["model", "file"],
            "properties": {
                "model": model,
                "file": {"type": "string", "format": "binary"},
                "response_format": {"type": "string", "enum": ["json", "text", "srt", "verbose_json", "vtt"]},
                "language": {"type": "string"},
                "prompt": {"type": "string"},
            },
        },
    })
}

/// The document of a route table, rendered when it is first asked for: building it makes a tree
/// of several megabytes, which at start-up was a third of the idle gateway's heap and a part of
/// its time to ready, for a page most deployments never fetch.
pub struct Document {
    paths: Vec<String>,
    rendered: std::sync::OnceLock<Bytes>,
}

impl Document {
    pub fn new(paths: Vec<String>) -> Document {
        Document { paths, rendered: std::sync::OnceLock::new() }
    }

    pub fn rendered(&self) -> Bytes {
        self.rendered.get_or_init(|| Bytes::from(document(&self.paths).to_string())).clone()
    }
}

/// `/openapi.json`'s handler: the document of the route table, known once the table is complete.
pub fn serve_document(table: Arc<std::sync::OnceLock<Document>>) -> MethodRouter<Arc<App>> {
    axum::routing::get(move || {
        let body = table.get().map(Document::rendered).unwrap_or_default();
        async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
    })
}

/// `/docs`: a page that renders `/openapi.json` with a few lines of script, nothing fetched from
/// anywhere else.
pub async fn docs_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page's own script and style only.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        DOCS_HTML,
    )
        .into_response()
}

const DOCS_HTML: &str = include_str!("openapi/docs.html");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Env};
    use tower::ServiceExt as _;

    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// A concrete request path for a registered path: a sample value for each parameter.
    fn sample(path: &str) -> String {
        path.split('/').map(|seg| if seg.starts_with('{') { "sample" } else { seg }).collect::<Vec<_>>().join("/")
    }

    #[tokio::test]
    async fn every_route_the_router_answers_is_described_and_no_other() {
        let config = Config::from_yaml_str("model_list: []\n", Env::fixed([])).unwrap();
        let app = App::with_env(&config, &Env::fixed([])).unwrap();
        let (router, paths) = crate::route_table(app);
        let doc = document(&paths);
        let mut served = Vec::new();
        for path in &paths {
            for method in METHODS {
                let req = http::Request::builder()
                    .method(method)
                    .uri(sample(path))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{}"))
                    .unwrap();
                let status = router.clone().oneshot(req).await.unwrap().status();
                if status != http::StatusCode::METHOD_NOT_ALLOWED {
                    served.push((method.to_ascii_lowercase(), openapi_path(path)));
                }
            }
        }
        let described: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().unwrap().keys().filter(|k| *k != "description").map(|m| (m.clone(), path.clone()))
            })
            .collect();
        for route in &served {
            assert!(
                described.contains(route),
                "{} {} is served but not described: add it to openapi::OPERATIONS",
                route.0,
                route.1
            );
        }
        for route in &described {
            assert!(served.contains(route), "{} {} is described but not served", route.0, route.1);
        }
        // Every row of the table describes something the router serves.
        for op in OPERATIONS {
            assert!(paths.iter().any(|p| operations_of(p).any(|o| std::ptr::eq(o, op))), "{op:?} matches no route");
        }
        assert!(served.len() > 60, "the walk found only {} operations", served.len());
    }

    #[test]
    fn the_document_is_well_formed() {
        let paths: Vec<String> =
            ["/chat/completions", "/v1/chat/completions", "/models/{*id}", "/key/info", "/new/route"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let doc = document(&paths);
        assert_eq!(doc["openapi"], "3.1.0");
        let chat = &doc["paths"]["/v1/chat/completions"]["post"];
        assert_eq!(
            chat["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ChatCompletionRequest"
        );
        assert_eq!(chat["security"], json!([{"bearer": []}]));
        assert_ne!(chat["operationId"], doc["paths"]["/chat/completions"]["post"]["operationId"]);
        let by_id = &doc["paths"]["/models/{id}"]["get"];
        assert_eq!(by_id["parameters"][0]["name"], "id");
        assert_eq!(by_id["parameters"][0]["in"], "path");
        assert_eq!(doc["paths"]["/key/info"]["get"]["parameters"][0]["name"], "key");
        assert!(doc["paths"]["/new/route"]["description"].is_string(), "an undescribed route still appears");
        // Every schema referenced is defined.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#/components/").skip(1) {
            let name = &r[..r.find('"').unwrap()];
            let (kind, name) = name.split_once('/').unwrap();
            assert!(doc["components"][kind][name].is_object(), "{kind}/{name} is not defined");
        }
    }

    #[test]
    fn the_page_fetches_nothing_from_elsewhere() {
        let lower = DOCS_HTML.to_ascii_lowercase();
        for bad in ["http://", "https://", "//cdn", "<link", "@import", "src=\""] {
            assert!(!lower.contains(bad), "the docs page contains {bad}");
        }
        assert!(DOCS_HTML.contains("openapi.json"));
    }
}
