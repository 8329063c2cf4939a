//! `/api/v1/projects/{id}/webhooks`: where a project's events are POSTed,
//! signed, and the log of those deliveries.

use axum::Json as Out;
use axum::extract::State;
use axum::http::StatusCode;
use cubby_model::{CreateWebhook, ProjectId, Webhook, WebhookDelivery, WebhookId};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Make a webhook: the project's events (all, or those of `events`) are
/// POSTed to `url` as JSON, signed in `Cubby-Signature: t=…,v1=…`
/// (HMAC-SHA256 of `"{t}.{body}"` under the secret), retried with backoff
/// for a day. The secret is shown once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = CreateWebhook,
    responses((status = 201, body = Webhook), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create_webhook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<CreateWebhook>,
) -> Result<(StatusCode, Out<Webhook>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.webhooks().create(&caller, &id, &req)?)))
}

/// The project's webhooks, without their secrets.
#[utoipa::path(get, path = "/api/v1/projects/{id}/webhooks", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<Webhook>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_webhooks(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<Vec<Webhook>>, ApiError> {
    Ok(Out(s.platform.webhooks().list(&caller, &id)?))
}

/// Remove a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/webhooks/{webhook_id}", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), ("webhook_id" = String, Path, description = "Webhook id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    PathId(webhook_id): PathId<WebhookId>,
) -> Result<StatusCode, ApiError> {
    s.platform.webhooks().delete(&caller, &id, &webhook_id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's latest deliveries, newest first: status, attempts, the last
/// answer's code or error, and when it is tried next.
#[utoipa::path(get, path = "/api/v1/projects/{id}/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), ("webhook_id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    PathId(webhook_id): PathId<WebhookId>,
) -> Result<Out<Vec<WebhookDelivery>>, ApiError> {
    Ok(Out(s.platform.webhooks().deliveries(&caller, &id, &webhook_id)?))
}
