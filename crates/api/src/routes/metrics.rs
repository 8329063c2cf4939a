//! `/metrics`: the daemon and its tenants in the OpenMetrics text format
//! Prometheus scrapes. Per tenant (labels `container`, `project`, `name`):
//! counters since the daemon started, from the usage readings, and the
//! last memory and disk seen; for the daemon: containers by status, pool
//! space, and the API's latency per route. Labels never hold a request
//! path or anything else unbounded.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cubby_core::Error;
use cubby_model::ContainerStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    /// The route's template (`/api/v1/containers/{id}`), never the path.
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    container: String,
    project: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantClassLabels {
    container: String,
    project: String,
    name: String,
    /// `2xx`, `4xx`...
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// What the API measures of itself between scrapes.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests through tenants' URLs, by status class: the proxy's own
    /// time, from the request to the end of the response.
    proxy: Family<ClassLabels, Histogram, fn() -> Histogram>,
    /// Starts on behalf of a request, by outcome.
    wakes: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    /// Exec script runs, by the status class their client got.
    scripts: Family<ClassLabels, Histogram, fn() -> Histogram>,
    /// Off (`--no-metrics`): nothing is timed and `/metrics` answers 404.
    /// Usage (billing) counts requests either way.
    enabled: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `started`, or why not (`busy`, `timeout`, `disabled`, `failed`).
    outcome: String,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            latency: Family::new_with_constructor(latency_histogram),
            proxy: Family::new_with_constructor(latency_histogram),
            wakes: Family::new_with_constructor(latency_histogram),
            scripts: Family::new_with_constructor(latency_histogram),
            enabled: true,
        }
    }
}

/// `2xx` for 200, `none` when no status was sent (no allocation: this
/// runs once per proxied request).
fn class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "none",
    }
}

impl ApiMetrics {
    /// Records one proxied request that ended with `status` after `seconds`.
    pub fn observe_proxy(&self, status: u16, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.proxy.get_or_create(&ClassLabels { class: class(status) }).observe(seconds);
    }

    /// Records a wake that ended with `outcome` after `seconds`.
    pub fn observe_wake(&self, outcome: &str, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.wakes.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).observe(seconds);
    }

    /// Records a script run whose client got `status` after `seconds`.
    pub fn observe_script(&self, status: u16, seconds: f64) {
        if !self.enabled {
            return;
        }
        self.scripts.get_or_create(&ClassLabels { class: class(status) }).observe(seconds);
    }
}

/// Times each routed request by its route's template.
pub async fn track(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(route) = route.filter(|_| s.metrics.enabled) {
        s.metrics.latency.get_or_create(&RouteLabels { method, route }).observe(started.elapsed().as_secs_f64());
    }
    response
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The daemon and its tenants for Prometheus (admin token only).
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("bearer" = [])),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn metrics(State(s): State<AppState>, Auth(caller): Auth) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(Error::Forbidden.into());
    }
    if !s.metrics.enabled {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "metrics_disabled",
            "this daemon runs with --no-metrics: start it without that flag to scrape /metrics",
        ));
    }
    let snapshot = s.platform.containers().metrics()?;
    let mut registry = Registry::with_prefix("cubby");

    let cpu = Family::<TenantLabels, Counter<f64, AtomicU64>>::default();
    let running = Family::<TenantLabels, Counter<f64, AtomicU64>>::default();
    let rx = Family::<TenantLabels, Counter>::default();
    let tx = Family::<TenantLabels, Counter>::default();
    let requests = Family::<TenantLabels, Counter>::default();
    let sent = Family::<TenantLabels, Counter>::default();
    let wakes = Family::<TenantLabels, Counter>::default();
    let memory = Family::<TenantLabels, Gauge>::default();
    let memory_limit = Family::<TenantLabels, Gauge>::default();
    let disk = Family::<TenantLabels, Gauge>::default();
    let up = Family::<TenantLabels, Gauge>::default();
    let by_status = Family::<StatusLabels, Gauge>::default();
    let responses = Family::<TenantClassLabels, Counter>::default();
    for t in &snapshot.tenants {
        let labels = TenantLabels {
            container: t.container_id.to_string(),
            project: t.project_id.to_string(),
            name: t.name.clone(),
        };
        cpu.get_or_create(&labels).inc_by(t.counted.cpu_seconds);
        running.get_or_create(&labels).inc_by(t.counted.running_seconds);
        rx.get_or_create(&labels).inc_by(t.counted.network_rx_bytes);
        tx.get_or_create(&labels).inc_by(t.counted.network_tx_bytes);
        requests.get_or_create(&labels).inc_by(t.counted.requests);
        sent.get_or_create(&labels).inc_by(t.counted.response_bytes);
        wakes.get_or_create(&labels).inc_by(t.counted.wakes);
        memory.get_or_create(&labels).set(to_i64(t.memory_bytes));
        memory_limit.get_or_create(&labels).set(to_i64(t.memory_limit_bytes));
        disk.get_or_create(&labels).set(to_i64(t.disk_bytes));
        up.get_or_create(&labels).set(i64::from(t.status == ContainerStatus::Running));
        by_status.get_or_create(&StatusLabels { status: t.status.as_str().to_owned() }).inc();
        for (i, n) in t.responses_by_class.iter().enumerate().filter(|(_, n)| **n > 0) {
            let class = format!("{}xx", i + 1);
            let labels = TenantClassLabels {
                container: labels.container.clone(),
                project: labels.project.clone(),
                name: labels.name.clone(),
                class,
            };
            responses.get_or_create(&labels).inc_by(*n);
        }
    }
    registry.register("container_cpu_seconds", "CPU time since the daemon started", cpu);
    registry.register("container_running_seconds", "Time running since the daemon started", running);
    registry.register("container_network_receive_bytes", "Bytes the tenant received on its interface", rx);
    registry.register("container_network_transmit_bytes", "Bytes the tenant sent on its interface", tx);
    registry.register("container_requests", "Requests through the tenant's URL", requests);
    registry.register("container_response_bytes", "Bytes of responses through the tenant's URL", sent);
    registry.register("container_wakes", "Starts caused by a request while stopped", wakes);
    registry.register("container_memory_bytes", "Memory charged at the last reading", memory);
    registry.register("container_memory_limit_bytes", "Memory limit", memory_limit);
    registry.register("container_disk_bytes", "Exclusive disk bytes at the last reading", disk);
    registry.register("container_up", "1 while the tenant runs", up);
    registry.register("containers", "Containers by status", by_status);
    registry.register("container_responses", "Responses through the tenant's URL by status class", responses);
    registry.register("proxy_request_duration_seconds", "Requests through tenants' URLs", s.metrics.proxy.clone());
    registry.register("wake_duration_seconds", "Starts on behalf of a request", s.metrics.wakes.clone());
    registry.register("script_duration_seconds", "Exec script runs", s.metrics.scripts.clone());
    let pool = Family::<PoolLabels, Gauge>::default();
    pool.get_or_create(&PoolLabels { state: "used".into() }).set(to_i64(snapshot.pool_used_bytes));
    pool.get_or_create(&PoolLabels { state: "free".into() }).set(to_i64(snapshot.pool_free_bytes));
    registry.register("pool_bytes", "The storage pool's space", pool);
    registry.register("api_request_duration_seconds", "API requests by route", s.metrics.latency.clone());
    // nftables changes: a count and a total time per step (their rates'
    // ratio is the mean time of one change).
    let applies = Family::<StepLabels, Counter>::default();
    let apply_seconds = Family::<StepLabels, Counter<f64, AtomicU64>>::default();
    for a in &snapshot.nft_applies {
        let labels = StepLabels { step: a.step.to_owned() };
        applies.get_or_create(&labels).inc_by(a.count);
        apply_seconds.get_or_create(&labels).inc_by(a.seconds);
    }
    registry.register("nft_applies", "nftables changes applied, by step", applies);
    registry.register("nft_apply_seconds", "Time spent applying nftables changes, by step", apply_seconds);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(|_| {
        ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "metrics did not encode")
    })?;
    Ok(([(CONTENT_TYPE, OPENMETRICS)], text).into_response())
}

/// A shared handle, for the state.
pub fn shared() -> Arc<ApiMetrics> {
    Arc::new(ApiMetrics::default())
}

/// A shared handle that measures nothing (`--no-metrics`).
pub fn disabled() -> Arc<ApiMetrics> {
    Arc::new(ApiMetrics { enabled: false, ..ApiMetrics::default() })
}
