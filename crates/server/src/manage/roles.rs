//! Who may call which management route: LiteLLM's user roles (`LitellmUserRoles`), the policy
//! table that says, for every management route, what each role may do there ([`POLICY`]), the
//! one check the handlers call ([`authorize`]), and the ownership tests a handler uses to narrow
//! a route to what is the caller's own (its keys, its team's keys where it is a team admin, its
//! user, its teams, its spend).
//!
//! It follows LiteLLM's two layers (`route_checks.py`, then the endpoint): a route a role may not
//! call at all is refused before anything is read, with LiteLLM's status and words (401 for the
//! admin-only routes, 403 for a viewer's write); a route a role may call for itself ([`Grant::Own`])
//! runs, and the handler limits it to what the caller owns, refusing the rest with a 403. Every
//! decision reads the in-memory registry only.

use super::{mask_user_id, Result};
use crate::app::App;
use crate::errors::ErrorResponse;
use http::HeaderMap;
use sluice_access::registry::Registry;
use sluice_access::Identity;
use sluice_store::KeyRecord;
use sluice_wire::ApiError;

/// A caller's role (LiteLLM's `LitellmUserRoles`, as `_get_user_role` reads it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// The master key, an open proxy (no master key), or a key of a `proxy_admin` user.
    ProxyAdmin,
    /// `proxy_admin_viewer`: reads everything, changes nothing.
    ProxyAdminViewer,
    /// `internal_user`, and a user whose role is unset or not one LiteLLM knows (LiteLLM reads
    /// those as `internal_user`): manages its own keys.
    InternalUser,
    /// `internal_user_viewer`: reads its own keys, user and spend.
    InternalUserViewer,
    /// A key of no user, of a user that is not loaded, or of a `team`/`customer`/`org_admin` user.
    Other,
}

impl Role {
    /// The role's column in [`POLICY`].
    fn column(self) -> usize {
        match self {
            Role::ProxyAdmin => 0,
            Role::ProxyAdminViewer => 1,
            Role::InternalUser => 2,
            Role::InternalUserViewer => 3,
            Role::Other => 4,
        }
    }

    /// The role of `identity`: its key's user's `user_role`, read from memory.
    pub fn of(identity: &Identity, registry: &Registry) -> Role {
        let Identity::Key(k) = identity else { return Role::ProxyAdmin };
        let Some(user) = k.record.user_id.as_deref().and_then(|u| registry.users.get(u)) else {
            return Role::Other;
        };
        match user.record.user_role.as_deref() {
            Some("proxy_admin") => Role::ProxyAdmin,
            Some("proxy_admin_viewer") => Role::ProxyAdminViewer,
            Some("internal_user_viewer") => Role::InternalUserViewer,
            // LiteLLM's other roles: an `org_admin`'s rights come with its organization (not
            // modelled here), so it gets no more than a key of no user.
            Some("team") | Some("customer") | Some("org_admin") => Role::Other,
            _ => Role::InternalUser,
        }
    }
}

/// What a role may do on a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Grant {
    /// Everything the route does.
    All,
    /// Only what is the caller's own; the handler narrows the route to it and refuses the rest
    /// with a 403.
    Own,
    /// LiteLLM's route check refuses: 401 `auth_error`, "Only proxy admin can be used to …".
    AdminOnly,
    /// LiteLLM's route check refuses a `proxy_admin_viewer`'s write: 403 `auth_error`, "user not
    /// allowed to access this route, role= proxy_admin_viewer. Trying to access: …".
    NoWrite,
    /// LiteLLM lets the call past its route check and the endpoint refuses it: 403 `auth_error`.
    Forbidden,
}

use Grant::{AdminOnly, All, Forbidden, NoWrite, Own};

/// Every management route and what each role may do there. Columns: `proxy_admin` (and the
/// master key), `proxy_admin_viewer`, `internal_user`, `internal_user_viewer`, any other key
/// (no user, or a `team`/`customer` user). A route missing here is admin-only. A team admin is
/// an internal user: where its column says `Own`, "its own" includes the keys of the teams it
/// is an `admin` member of.
#[rustfmt::skip]
pub(crate) const POLICY: &[(&str, [Grant; 5])] = &[
    //  route                        admin viewer    internal   int.viewer  other
    ("/key/generate",              [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    ("/key/update",                [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    ("/key/delete",                [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    ("/key/regenerate",            [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    ("/key/{key}/regenerate",      [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    // Blocking one's own key only takes it out of use; lifting an admin's block is the admin's.
    ("/key/block",                 [All, NoWrite, Own,       AdminOnly, AdminOnly]),
    ("/key/unblock",               [All, NoWrite, Forbidden, AdminOnly, AdminOnly]),
    ("/key/info",                  [All, All,     Own,       Own,       Own]),
    ("/v2/key/info",               [All, All,     Own,       Own,       Own]),
    ("/key/list",                  [All, All,     Own,       Own,       Own]),
    ("/user/new",                  [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/user/update",               [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/user/delete",               [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/user/info",                 [All, All,     Own,       Own,       Own]),
    ("/user/list",                 [All, All,     Forbidden, Forbidden, Forbidden]),
    ("/team/new",                  [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    // A team admin changes its team (teams.rs, team_members.rs narrow these to it).
    ("/team/update",               [All, NoWrite, Own,       Own,       Own]),
    ("/team/delete",               [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/team/info",                 [All, All,     Own,       Own,       Own]),
    ("/team/list",                 [All, All,     Own,       Own,       Own]),
    // A team admin adds and removes its team's members.
    ("/team/member_add",           [All, NoWrite, Own,       Own,       Own]),
    ("/team/member_delete",        [All, NoWrite, Own,       Own,       Own]),
    ("/team/member_update",        [All, NoWrite, Own,       Own,       Own]),
    ("/team/model/add",            [All, NoWrite, Own,       Own,       Own]),
    ("/team/model/delete",         [All, NoWrite, Own,       Own,       Own]),
    // The teams a user may join: any key of a user asks for its own.
    ("/team/available",            [All, All,     All,       All,       All]),
    ("/team/block",                [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/team/unblock",              [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    // Any key reads its own logs (`reports::own_rows`): its user's, or its own key's.
    ("/spend/logs",                [All, All,     Own,       Own,       Own]),
    ("/global/spend",              [All, All,     Own,       Own,       AdminOnly]),
    ("/spend/keys",                [All, All,     Own,       Own,       AdminOnly]),
    ("/spend/users",               [All, All,     Own,       Own,       AdminOnly]),
    ("/model/new",                 [All, NoWrite, Forbidden, Forbidden, Forbidden]),
    ("/model/update",              [All, NoWrite, Forbidden, Forbidden, Forbidden]),
    ("/model/delete",              [All, NoWrite, Forbidden, Forbidden, Forbidden]),
    ("/model/{model_id}/update",   [All, NoWrite, Forbidden, Forbidden, Forbidden]),
    // Spend reports: the whole proxy's are a proxy admin's (a viewer reads them); the daily
    // activity of a user or team is any key's own (`reports::visible` narrows it).
    ("/spend/tags",                [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/global/spend/report",       [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/user/daily/activity",       [All, All,     Own,       Own,       Own]),
    ("/team/daily/activity",       [All, All,     Own,       Own,       Own]),
    // Budgets and end users: a proxy admin's; a viewer reads them.
    ("/budget/new",                [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/budget/update",             [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/budget/delete",             [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/budget/info",               [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/budget/list",               [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/budget/settings",           [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/end_user/new",              [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/end_user/update",           [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/end_user/delete",           [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/end_user/info",             [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/end_user/list",             [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    // Organizations: where a column says `Own`, the handler decides by the caller's membership
    // (an `org_admin` of the organization manages it; creating and deleting stay a proxy
    // admin's, refused with LiteLLM's endpoint messages).
    ("/organization/new",          [All, NoWrite, Own,       Own,       Own]),
    ("/organization/delete",       [All, NoWrite, Own,       Own,       Own]),
    ("/organization/update",       [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/organization/member_add",   [All, NoWrite, Own,       Own,       Own]),
    ("/organization/member_update",[All, NoWrite, Own,       Own,       Own]),
    ("/organization/member_delete",[All, NoWrite, Own,       Own,       Own]),
    ("/organization/list",         [All, All,     Own,       Own,       Own]),
    ("/organization/info",         [All, All,     Own,       Own,       Own]),
    // LiteLLM's aliases of the end-user routes: the same handlers, the same rules.
    ("/customer/new",              [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/customer/update",           [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/customer/delete",           [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/customer/info",             [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/customer/list",             [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    // Config and callbacks: a proxy admin's; a viewer reads the views. `/settings` is served by
    // the `/active/callbacks` handler and checked under that name.
    ("/config/update",             [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/active/callbacks",          [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/settings",                  [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/get/config/callbacks",      [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    // The answer cache's routes: a proxy admin's (LiteLLM: admin-only); a viewer reads.
    ("/cache/ping",                [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    ("/cache/delete",              [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/cache/flushall",            [All, NoWrite, AdminOnly, AdminOnly, AdminOnly]),
    ("/cache/redis/info",          [All, All,     AdminOnly, AdminOnly, AdminOnly]),
    // Every key may ask about its own logging callbacks.
    ("/key/health",                [All, All,     All,       All,       All]),
    // Every key sees the deployments of the models it may call (the handler narrows by model
    // access, not by role).
    ("/model/info",                [All, All,     All,       All,       All]),
];

/// What `role` may do on `route` (admin-only when the route is not in [`POLICY`]).
pub(crate) fn grant(route: &str, role: Role) -> Grant {
    let row = POLICY.iter().find(|(r, _)| *r == route);
    match row {
        Some((_, grants)) => grants[role.column()],
        None if role == Role::ProxyAdmin => All,
        None => AdminOnly,
    }
}

/// The caller of a management route, past the route check: who it is, and whether the route is
/// all its (`All`) or only what it owns (`Own`).
pub(crate) struct Caller {
    pub identity: Identity,
    pub grant: Grant,
}

/// The management routes' one check: authenticates the caller (a blocked or expired key
/// manages nothing, itself included) and applies [`POLICY`] for `route`.
pub(crate) async fn authorize(app: &App, headers: &HeaderMap, route: &str) -> Result<Caller> {
    let identity = super::caller(app, headers).await?;
    let registry = &app.access.registry;
    let role = Role::of(&identity, registry);
    match grant(route, role) {
        g @ (All | Own) => Ok(Caller { identity, grant: g }),
        AdminOnly => Err(super::not_admin(&identity, registry, route).into()),
        NoWrite => Err(ApiError::new(
            403,
            format!("user not allowed to access this route, role= proxy_admin_viewer. Trying to access: {route}"),
        )
        .kind("auth_error")
        .into()),
        Forbidden => Err(forbidden(format!(
            "Your role={} may not call {route}. Ask a proxy admin (the master key or a proxy_admin user's key) to do it.",
            role_name(&identity, registry)
        ))),
    }
}

/// A 403 from a handler (the route is the caller's to call, but not for this object).
pub(crate) fn forbidden(message: impl Into<String>) -> ErrorResponse {
    ErrorResponse(ApiError::new(403, message).kind("auth_error"))
}

/// The caller's `user_role` as LiteLLM words it in refusals (`None` for a key of no user).
pub(crate) fn role_name(identity: &Identity, registry: &Registry) -> String {
    match identity {
        Identity::Key(k) => k
            .record
            .user_id
            .as_deref()
            .and_then(|u| registry.users.get(u).and_then(|e| e.record.user_role.clone()))
            .unwrap_or_else(|| "None".into()),
        _ => "proxy_admin".into(),
    }
}

impl Caller {
    /// The route is the caller's whole (an admin, or a viewer reading).
    pub fn all(&self) -> bool {
        self.grant == All
    }

    /// The caller's key's user.
    pub fn user_id(&self) -> Option<&str> {
        match &self.identity {
            Identity::Key(k) => k.record.user_id.as_deref(),
            _ => None,
        }
    }

    /// The caller's own key's hash.
    pub fn token(&self) -> Option<&str> {
        match &self.identity {
            Identity::Key(k) => Some(k.record.token.as_str()),
            _ => None,
        }
    }

    /// The caller's key's team.
    pub fn team_id(&self) -> Option<&str> {
        match &self.identity {
            Identity::Key(k) => k.record.team_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the caller's user is an `admin` member of `team_id` (its `members_with_roles`,
    /// read from memory).
    pub fn is_team_admin(&self, registry: &Registry, team_id: &str) -> bool {
        self.team_role(registry, team_id).as_deref() == Some("admin")
    }

    /// The caller's user's role in `team_id` (`admin`/`user`), if it is a member.
    pub fn team_role(&self, registry: &Registry, team_id: &str) -> Option<String> {
        let me = self.user_id()?;
        let team = registry.teams.get(team_id)?;
        let member = team.record.members_with_roles.iter().find(|m| m.user_id.as_deref() == Some(me))?;
        Some(member.role.clone())
    }

    /// The teams the caller's user is an `admin` member of.
    pub fn admin_teams(&self, registry: &Registry) -> Vec<String> {
        let Some(me) = self.user_id() else { return Vec::new() };
        registry
            .teams
            .iter()
            .filter(|t| {
                t.record.members_with_roles.iter().any(|m| m.user_id.as_deref() == Some(me) && m.role == "admin")
            })
            .map(|t| t.key().clone())
            .collect()
    }

    /// Whether the caller may see or change the key `rec`: an admin any key; others their own
    /// key, their user's keys, and the keys of teams they are an admin of.
    pub fn owns_key(&self, registry: &Registry, rec: &KeyRecord) -> bool {
        if self.all() {
            return true;
        }
        let same_user = self.user_id().is_some() && self.user_id() == rec.user_id.as_deref();
        let team_admin = rec.team_id.as_deref().is_some_and(|t| self.is_team_admin(registry, t));
        self.token() == Some(rec.token.as_str()) || same_user || team_admin
    }

    /// Whether the caller may look at user `user_id` (itself, unless the route is all its).
    pub fn owns_user(&self, user_id: &str) -> bool {
        self.all() || self.user_id() == Some(user_id)
    }

    /// The 403 for a key that is not the caller's. A key that does not exist gets the same
    /// answer, so a non-admin cannot use the routes to learn which keys exist.
    pub fn not_your_key(&self, registry: &Registry, action: &str) -> ErrorResponse {
        forbidden(format!(
            "You are not allowed to {action} this key: it belongs to another user or to a team you are not an admin of. Your role={}",
            role_name(&self.identity, registry)
        ))
    }

    /// LiteLLM's checks on the owner of a key a non-admin creates or changes (`rec` as it would
    /// be stored): a key of no team must be the caller's own; a team's key needs the caller to
    /// be that team's admin, and its user, if any, to be a member.
    pub fn check_new_owner(&self, registry: &Registry, rec: &KeyRecord, route: &str) -> Result<()> {
        if self.all() {
            return Ok(());
        }
        let me = self.user_id().unwrap_or("None");
        let Some(team_id) = rec.team_id.as_deref() else {
            return match rec.user_id.as_deref() {
                Some(u) if u == me => Ok(()),
                other => Err(forbidden(format!(
                    "User can only create keys for themselves. Got user_id={}, Your ID={me}",
                    other.unwrap_or("None")
                ))),
            };
        };
        let member_of = |u: &str| {
            registry
                .teams
                .get(team_id)
                .is_some_and(|t| t.record.members_with_roles.iter().any(|m| m.user_id.as_deref() == Some(u)))
        };
        match self.team_role(registry, team_id).as_deref() {
            Some("admin") => {}
            Some(_) => {
                return Err(ErrorResponse(
                    ApiError::new(
                        401,
                        format!(
                            "Team member does not have permissions for endpoint: {route}. You only have access to the following endpoints: ['/key/info', '/key/health'] for team {team_id}. To create keys for this team, please ask your proxy admin to check the team member permission settings and update the settings to allow team member users to create keys."
                        ),
                    )
                    .kind("team_member_permission_error")
                    .param("team_id"),
                ))
            }
            None => {
                return Err(super::bad(format!("User={me} not assigned to team={team_id}"), "team_id"));
            }
        }
        match rec.user_id.as_deref() {
            Some(u) if u != me && !member_of(u) => {
                Err(super::bad(format!("User={u} not assigned to team={team_id}"), "user_id"))
            }
            _ => Ok(()),
        }
    }

    /// Fields of a key only an admin may set: `spend` (else an owner could zero its key's spend
    /// and so its budget) and `blocked` (else an owner could lift a block an admin set).
    pub fn check_key_fields(&self, f: &super::Fields, route: &str) -> Result<()> {
        if self.all() {
            return Ok(());
        }
        // `allowed_cache_controls` restricts the key: its holder lifting it would undo it.
        match ["spend", "blocked", "allowed_cache_controls"].into_iter().find(|k| f.has(k)) {
            Some(field) => Err(forbidden(format!(
                "Only a proxy admin may set `{field}` on a key ({route}); remove it from the request{}.",
                if field == "blocked" { ", or use /key/block to block your own key" } else { "" }
            ))),
            None => Ok(()),
        }
    }

    /// The 403 a non-admin gets on a team route for a team it does not administer (LiteLLM's
    /// words for the team member routes).
    pub fn not_team_admin(&self, route: &str, team_id: &str) -> ErrorResponse {
        forbidden(format!(
            "Call not allowed. User not proxy admin OR team admin. route={route}, team_id={team_id}, user_id={}",
            mask_user_id(self.user_id().unwrap_or("unknown"))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route that only reads: named for what it shows, or under the spend reports.
    fn is_read(route: &str) -> bool {
        let last = route.rsplit('/').next().unwrap_or_default();
        matches!(last, "info" | "list" | "settings" | "available" | "callbacks" | "health" | "ping")
            || route.starts_with("/spend/")
            || route.starts_with("/global/")
            || route.ends_with("/daily/activity")
    }

    #[test]
    fn every_management_route_has_a_row_and_admins_may_do_everything() {
        for path in super::super::routes().paths() {
            let row = POLICY.iter().find(|(r, _)| r == path);
            let Some((_, grants)) = row else { panic!("{path} has no row in roles::POLICY: add one") };
            assert_eq!(grants[0], All, "{path}: a proxy admin may do everything");
        }
    }

    #[test]
    fn viewers_never_write_and_only_admins_and_viewers_get_writes_refused_as_writes() {
        for (route, grants) in POLICY {
            let read = is_read(route);
            let viewer = grants[Role::ProxyAdminViewer.column()];
            if read {
                assert_eq!(viewer, All, "{route}: a proxy_admin_viewer reads everything");
            } else {
                assert_eq!(viewer, NoWrite, "{route}: a proxy_admin_viewer changes nothing");
                let iv = grants[Role::InternalUserViewer.column()];
                // The team member, update and model routes are a team admin's, and the
                // organization routes an org admin's, whatever its proxy role (LiteLLM's
                // self-managed routes); every other write is refused to an internal viewer.
                let self_managed = route.starts_with("/team/member_")
                    || route.starts_with("/team/model/")
                    || route.starts_with("/organization/");
                if !self_managed && *route != "/team/update" {
                    assert!(matches!(iv, AdminOnly | Forbidden), "{route}: internal_user_viewer may write");
                }
            }
            assert!(!grants.contains(&NoWrite) || viewer == NoWrite, "{route}: NoWrite is the viewer's refusal only");
        }
    }

    use sluice_store::{TeamMember, TeamRecord, UserRecord};

    /// A registry with a user of `role` (none: a key of no user), and that user's key.
    fn key_of(registry: &Registry, user: Option<(&str, Option<&str>)>) -> Identity {
        if let Some((id, role)) = user {
            let rec = UserRecord { user_id: id.into(), user_role: role.map(str::to_string), ..Default::default() };
            registry.put_user(rec, false);
        }
        let key = KeyRecord {
            token: format!("hash-{}", user.map_or("none", |u| u.0)),
            user_id: user.map(|u| u.0.to_string()),
            ..Default::default()
        };
        Identity::Key(registry.put_key(key, false))
    }

    fn caller(identity: Identity, registry: &Registry, route: &str) -> Caller {
        let grant = grant(route, Role::of(&identity, registry));
        assert!(matches!(grant, All | Own), "{route}: {grant:?}");
        Caller { identity, grant }
    }

    #[test]
    fn roles_are_read_as_litellm_reads_them() {
        let r = Registry::new(None);
        assert_eq!(Role::of(&Identity::Master, &r), Role::ProxyAdmin);
        assert_eq!(Role::of(&Identity::Open, &r), Role::ProxyAdmin);
        for (role, want) in [
            (Some("proxy_admin"), Role::ProxyAdmin),
            (Some("proxy_admin_viewer"), Role::ProxyAdminViewer),
            (Some("internal_user"), Role::InternalUser),
            (Some("internal_user_viewer"), Role::InternalUserViewer),
            // LiteLLM's `_get_user_role`: a role it does not know, or none, is internal_user.
            (None, Role::InternalUser),
            (Some("made_up"), Role::InternalUser),
            (Some("team"), Role::Other),
            (Some("customer"), Role::Other),
            (Some("org_admin"), Role::Other),
        ] {
            let id = format!("u-{role:?}");
            assert_eq!(Role::of(&key_of(&r, Some((&id, role))), &r), want, "{role:?}");
        }
        assert_eq!(Role::of(&key_of(&r, None), &r), Role::Other);
    }

    #[test]
    fn owners_and_team_admins_own_keys_and_no_one_else_does() {
        let r = Registry::new(None);
        let me = caller(key_of(&r, Some(("me", Some("internal_user")))), &r, "/key/update");
        let boss = caller(key_of(&r, Some(("boss", Some("internal_user")))), &r, "/key/update");
        key_of(&r, Some(("other", Some("internal_user"))));
        let member = |u: &str, role: &str| TeamMember { user_id: Some(u.into()), user_email: None, role: role.into() };
        let team = TeamRecord {
            team_id: "t".into(),
            members_with_roles: vec![member("boss", "admin"), member("me", "user")],
            ..Default::default()
        };
        r.put_team(team, false);
        let key = |user: Option<&str>, team: Option<&str>| KeyRecord {
            token: "k".into(),
            user_id: user.map(str::to_string),
            team_id: team.map(str::to_string),
            ..Default::default()
        };

        assert!(me.owns_key(&r, &key(Some("me"), None)));
        assert!(!me.owns_key(&r, &key(Some("other"), None)));
        assert!(!me.owns_key(&r, &key(None, Some("t"))), "a plain member does not own the team's keys");
        assert!(boss.owns_key(&r, &key(None, Some("t"))));
        assert!(boss.owns_key(&r, &key(Some("me"), Some("t"))));
        assert!(!boss.owns_key(&r, &key(Some("me"), None)), "a team admin does not own a member's own keys");
        assert_eq!(boss.admin_teams(&r), vec!["t".to_string()]);
        assert!(me.admin_teams(&r).is_empty());

        let status =
            |c: &Caller, rec: KeyRecord| c.check_new_owner(&r, &rec, "/key/generate").err().map(|e| e.0.status);
        assert_eq!(status(&me, key(Some("me"), None)), None);
        assert_eq!(status(&me, key(Some("other"), None)), Some(403));
        assert_eq!(status(&me, key(None, None)), Some(403));
        assert_eq!(status(&me, key(Some("me"), Some("t"))), Some(401), "team member permissions");
        assert_eq!(status(&boss, key(Some("me"), Some("t"))), None);
        assert_eq!(status(&boss, key(Some("other"), Some("t"))), Some(400), "not a member of the team");
        assert_eq!(status(&boss, key(Some("boss"), Some("elsewhere"))), Some(400));
        let admin = Caller { identity: Identity::Master, grant: All };
        assert_eq!(status(&admin, key(Some("other"), Some("elsewhere"))), None);
        assert!(admin.owns_key(&r, &key(Some("other"), None)));
    }

    #[test]
    fn an_unlisted_route_is_admin_only() {
        assert_eq!(grant("/not/a/route", Role::ProxyAdmin), All);
        for role in [Role::ProxyAdminViewer, Role::InternalUser, Role::InternalUserViewer, Role::Other] {
            assert_eq!(grant("/not/a/route", role), AdminOnly);
        }
    }
}
