//! Running a function: as an AWS Lambda or as an HTTP server with health, readiness and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::{self, FunctionMetrics};

/// Adds `/healthz`, `/readyz` and `/metrics` and request metrics to a function's router.
pub fn with_operational_routes(
    router: Router,
    function_name: &str,
    ready: Arc<AtomicBool>,
) -> Router {
    let metrics = FunctionMetrics::new(function_name);
    let operational = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(ready): State<Arc<AtomicBool>>| async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
                }
            })
            .with_state(ready),
        )
        .route("/metrics", get(metrics::render).with_state(metrics.clone()));
    router
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .merge(operational)
}

/// Completes on SIGTERM (how Kubernetes and Knative stop a pod) or Ctrl-C.
pub async fn termination_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn shutdown_signal(ready: Arc<AtomicBool>) {
    termination_signal().await;
    ready.store(false, Ordering::Relaxed);
    tracing::info!("shutdown requested, draining in-flight requests");
}

/// Serves `router` over HTTP on `address` until SIGTERM or Ctrl-C, finishing in-flight requests.
pub async fn serve_http(
    router: Router,
    function_name: &str,
    address: SocketAddr,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    serve_listener(router, function_name, listener).await
}

/// Serves `router` on an already bound listener, like `serve_http`.
pub async fn serve_listener(
    router: Router,
    function_name: &str,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let ready = Arc::new(AtomicBool::new(true));
    let app = with_operational_routes(router, function_name, ready.clone());
    tracing::info!(function = function_name, address = %listener.local_addr()?, "serving http");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(ready))
        .await
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What a function binary serves: its HTTP routes and, in Lambda, optionally a handler of the
/// queue messages (SQS events) it is subscribed to.
pub struct Function {
    pub router: Router,
    pub messages: Option<Arc<dyn crate::messages::MessageHandler>>,
}

impl From<Router> for Function {
    fn from(router: Router) -> Self {
        Self {
            router,
            messages: None,
        }
    }
}

/// Whether this process runs under the Lambda Runtime API.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Entry point of a function binary: builds the function once (cold start), then runs it as a
/// Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise as an HTTP server on `PORT` (8080).
pub async fn run_function<F, T, E>(function_name: &str, build: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<T, E>>,
    T: Into<Function>,
    E: std::fmt::Display,
{
    init_tracing();
    let Function { router, messages } = build
        .await
        .map_err(|error| format!("{function_name} failed to start: {error}"))?
        .into();
    if in_lambda() {
        tracing::info!(function = function_name, "running as aws lambda");
        if let Some(handler) = messages {
            return crate::messages::run_lambda(router, handler).await;
        }
        return lambda_http::run(router)
            .await
            .map_err(|error| format!("lambda runtime failed: {error}"));
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("invalid PORT `{port}`: expected a port number"))?,
        Err(_) => 8080,
    };
    let host = std::env::var("WEIR_LISTEN_HOST").unwrap_or_else(|_| "0.0.0.0".to_string());
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| format!("invalid listen address {host}:{port}"))?;
    serve_http(router, function_name, address)
        .await
        .map_err(|error| format!("http server failed: {error}"))
}
