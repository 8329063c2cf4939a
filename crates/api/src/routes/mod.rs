//! One module per API resource. Each handler: parse, call the core with the
//! caller, map the result. No business logic lives here.

pub mod access;
pub mod access_log;
pub mod backups;
pub mod containers;
pub mod domains;
pub mod env;
pub mod events;
pub mod export;
pub mod firewall;
pub mod images;
pub mod meta;
pub mod metrics;
pub mod projects;
pub mod rollouts;
pub mod scripts;
pub mod snapshots;
pub mod tokens;
pub mod usage;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Every documented route.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(meta::health))
        .routes(routes!(metrics::metrics))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(projects::get_project, projects::update_project, projects::delete_project))
        .routes(routes!(access::authorize))
        .routes(routes!(access::revoke_claims))
        .routes(routes!(access::public_key))
        .routes(routes!(access::create_alias, access::list_aliases))
        .routes(routes!(access::delete_alias))
        .routes(routes!(domains::create_domain, domains::list_domains))
        .routes(routes!(domains::verify_domain))
        .routes(routes!(domains::delete_domain))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::delete_token))
        .routes(routes!(containers::create_container, containers::list_project_containers))
        .routes(routes!(containers::list_containers))
        .routes(routes!(containers::get_container, containers::update_container, containers::delete_container))
        .routes(routes!(env::get_env, env::replace_env))
        .routes(routes!(env::set_env_var, env::delete_env_var))
        .routes(routes!(snapshots::copy_container))
        .routes(routes!(snapshots::sync_container))
        .routes(routes!(export::export_container))
        .routes(routes!(export::import_container))
        .routes(routes!(snapshots::create_snapshot, snapshots::list_snapshots))
        .routes(routes!(
            snapshots::get_snapshot,
            snapshots::restore_snapshot,
            snapshots::update_snapshot,
            snapshots::delete_snapshot
        ))
        .routes(routes!(containers::start_container))
        .routes(routes!(containers::stop_container))
        .routes(routes!(containers::restart_container))
        .routes(routes!(containers::exec_container))
        .routes(routes!(containers::container_logs))
        .routes(routes!(containers::container_transitions))
        .routes(routes!(containers::container_stats))
        .routes(routes!(usage::container_usage))
        .routes(routes!(usage::project_usage))
        .routes(routes!(events::list_events))
        .routes(routes!(events::stream_events))
        .routes(routes!(access_log::access_log))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(firewall::get_firewall, firewall::replace_firewall))
        .routes(routes!(firewall::reset_firewall))
        .routes(routes!(firewall::add_rule))
        .routes(routes!(firewall::patch_rule, firewall::delete_rule))
        .routes(routes!(firewall::get_network, firewall::set_network))
        .routes(routes!(scripts::list_scripts))
        .routes(routes!(scripts::script_logs))
        .routes(routes!(scripts::put_secrets, scripts::get_secrets))
        .merge(OpenApiRouter::with_openapi(<scripts::ScriptFileDocs as utoipa::OpenApi>::openapi()).route(
            "/api/v1/projects/{id}/scripts/{*path}",
            axum::routing::get(scripts::get_script).put(scripts::put_script).delete(scripts::delete_script),
        ))
        .routes(routes!(backups::create_backup))
        .routes(routes!(rollouts::create_rollout, rollouts::list_rollouts))
        .routes(routes!(rollouts::get_rollout))
        .routes(routes!(images::list_images))
        .routes(routes!(images::get_image, images::delete_image))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(images::import_image))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}
