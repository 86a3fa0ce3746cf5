//! Prometheus metrics of a function: requests by route and status, and request latency.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct FunctionMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl FunctionMetrics {
    pub fn new(function_name: &str) -> Arc<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("weir_http_requests_total", "HTTP requests served")
                .const_label("function", function_name),
            &["method", "route", "status"],
        )
        .expect("metric definition is valid");
        let latency = HistogramVec::new(
            HistogramOpts::new("weir_http_request_duration_seconds", "HTTP request latency")
                .const_label("function", function_name),
            &["method", "route"],
        )
        .expect("metric definition is valid");
        registry
            .register(Box::new(requests.clone()))
            .expect("metric registers once");
        registry
            .register(Box::new(latency.clone()))
            .expect("metric registers once");
        Arc::new(Self {
            registry,
            requests,
            latency,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        // The function's own metrics, and those its libraries keep in the default registry.
        let mut families = self.registry.gather();
        families.extend(prometheus::gather());
        if encoder.encode(&families, &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Middleware recording every request.
pub async fn track(
    State(metrics): State<Arc<FunctionMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    response
}

pub async fn render(State(metrics): State<Arc<FunctionMetrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics.render(),
    )
}
