//! The metrics endpoint: `GET /metrics` in the OpenMetrics text format, on a listener of its own
//! (so that it can be bound where only the operator reaches it).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// The content type of [`Metrics::encode`]'s text.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` (everything else is 404) on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Metrics) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics);
    axum::serve(listener, app).await
}

async fn scrape(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        metrics.encode(),
    )
}
