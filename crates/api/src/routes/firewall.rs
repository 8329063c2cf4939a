//! `/api/v1/containers/{id}/firewall` and `/network`

use axum::Json as Out;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_model::{
    ContainerId, Direction, Firewall, FirewallRule, NetworkRules, ReplaceFirewall, RuleId, RulePatch, RuleSpec,
};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

fn direction(text: &str) -> Result<Direction, ApiError> {
    Direction::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            format!("`{}` is not a direction: use ingress or egress", text.escape_default()),
        )
    })
}

/// A container's firewall: ingress and egress rules, each in evaluation order.
#[utoipa::path(get, path = "/api/v1/containers/{id}/firewall", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Firewall), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_firewall(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Firewall>, ApiError> {
    Ok(Out(s.platform.network().firewall(&caller, &id)?))
}

/// Replace the whole rule set atomically.
#[utoipa::path(put, path = "/api/v1/containers/{id}/firewall", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = ReplaceFirewall,
    responses((status = 200, body = Firewall), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn replace_firewall(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<ReplaceFirewall>,
) -> Result<Out<Firewall>, ApiError> {
    Ok(Out(s.platform.network().replace_firewall(&caller, &id, &req).await?))
}

/// Go back to the default rules.
#[utoipa::path(post, path = "/api/v1/containers/{id}/firewall/reset", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Firewall), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reset_firewall(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Firewall>, ApiError> {
    Ok(Out(s.platform.network().reset_firewall(&caller, &id).await?))
}

/// Add a rule, at `position` or at the end.
#[utoipa::path(post, path = "/api/v1/containers/{id}/firewall/{direction}", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("direction" = String, Path, description = "ingress or egress")),
    request_body = RuleSpec,
    responses((status = 201, body = FirewallRule), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn add_rule(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, dir)): Path<(String, String)>,
    Json(spec): Json<RuleSpec>,
) -> Result<(StatusCode, Out<FirewallRule>), ApiError> {
    let rule = s.platform.network().add_rule(&caller, &id, direction(&dir)?, &spec).await?;
    Ok((StatusCode::CREATED, Out(rule)))
}

/// Change one rule.
#[utoipa::path(patch, path = "/api/v1/containers/{id}/firewall/{direction}/{rule_id}", tag = "firewall",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("direction" = String, Path, description = "ingress or egress"),
        ("rule_id" = String, Path, description = "Rule id")),
    request_body = RulePatch,
    responses((status = 200, body = FirewallRule), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn patch_rule(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    PathId(rule_id): PathId<RuleId>,
    Path((_id, dir, _rule)): Path<(String, String, String)>,
    Json(patch): Json<RulePatch>,
) -> Result<Out<FirewallRule>, ApiError> {
    Ok(Out(s.platform.network().patch_rule(&caller, &id, direction(&dir)?, &rule_id, &patch).await?))
}

/// Remove one rule.
#[utoipa::path(delete, path = "/api/v1/containers/{id}/firewall/{direction}/{rule_id}", tag = "firewall",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("direction" = String, Path, description = "ingress or egress"),
        ("rule_id" = String, Path, description = "Rule id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_rule(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    PathId(rule_id): PathId<RuleId>,
    Path((_id, dir, _rule)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    s.platform.network().delete_rule(&caller, &id, direction(&dir)?, &rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A container's network rules.
#[utoipa::path(get, path = "/api/v1/containers/{id}/network", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = NetworkRules), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_network(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<NetworkRules>, ApiError> {
    Ok(Out(s.platform.network().network_rules(&caller, &id)?))
}

/// Set a container's network mode (`open`, `block`, or `proxy` with
/// `proxy`) and resolvers. Egress rules apply at once; the proxy variables
/// reach the app at its next start.
#[utoipa::path(put, path = "/api/v1/containers/{id}/network", tag = "firewall", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = NetworkRules,
    responses((status = 200, body = NetworkRules), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn set_network(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(rules): Json<NetworkRules>,
) -> Result<Out<NetworkRules>, ApiError> {
    Ok(Out(s.platform.network().set_network(&caller, &id, &rules).await?))
}
