//! The engine worker: our DataFusion engine behind the ODF engine gRPC protocol, on port 5544
//! unless `listen` says otherwise. It reads and writes the node's storage. Config:
//! `/srv/engine/service-config.yml` or `WEIR_CONFIG_PATH`, plus `WEIR__...` variables.

use std::process::ExitCode;
use std::time::Duration;

use weir_transform::engine::grpc::{serve, server::datafusion_service};

async fn run() -> Result<(), String> {
    weir_function_runtime::server::init_tracing();
    let config: weir_transform::EngineWorkerConfig =
        weir_function_runtime::load_config(weir_transform::ENGINE_WORKER_NAME)
            .map_err(|error| error.to_string())?;
    let store = config.storage.open().map_err(|error| error.to_string())?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    tracing::info!(%address, "engine worker listening");
    let service = datafusion_service(store)
        .with_progress_every(Duration::from_secs(config.progress_seconds.max(1)))
        .with_concurrency(config.max_concurrent_requests);
    serve(
        listener,
        service,
        weir_function_runtime::server::termination_signal(),
    )
    .await
    .map_err(|error| format!("engine worker failed: {error}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
