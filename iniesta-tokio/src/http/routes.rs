//! The three routes: `/metrics`, `/healthz` and `/readyz`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use super::readiness::Readiness;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct App {
    prometheus: PrometheusHandle,
    readiness: Readiness,
}

/// The router of the server; anything else is 404.
pub(super) fn router(prometheus: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(App {
            prometheus,
            readiness,
        })
}

/// Every series of the process's recorder, in the Prometheus text format.
async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        app.prometheus.render(),
    )
}

/// 200 while the server runs: the process is alive and its runtime
/// answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 `ready` when the consumer can do its work, else 503 with the
/// reasons, one a line.
async fn readyz(State(app): State<App>) -> (StatusCode, String) {
    let reasons = app.readiness.reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let mut body = reasons.join("\n");
        body.push('\n');
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
