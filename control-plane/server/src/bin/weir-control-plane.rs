//! The control plane as its own service (Kubernetes, several replicas behind one database).
//! Config: `/srv/control-plane/service-config.yml` or `WEIR_CONFIG_PATH`, plus `WEIR__...`.

use std::net::SocketAddr;
use std::process::ExitCode;

use weir_control_plane::{ControlPlane, ControlPlaneConfig, FUNCTION_NAME};

#[tokio::main]
async fn main() -> ExitCode {
    weir_function_runtime::server::init_tracing();
    let config: ControlPlaneConfig = match weir_function_runtime::load_config(FUNCTION_NAME) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let control_plane = match ControlPlane::start(config).await {
        Ok(control_plane) => control_plane,
        Err(error) => {
            eprintln!("error: control plane failed to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_string());
    let host = std::env::var("WEIR_LISTEN_HOST").unwrap_or_else(|_| "0.0.0.0".to_string());
    let Ok(address) = format!("{host}:{port}").parse::<SocketAddr>() else {
        eprintln!("error: invalid listen address {host}:{port}");
        return ExitCode::from(2);
    };
    let router = weir_control_plane::rest::router(control_plane);
    match weir_function_runtime::serve_http(router, FUNCTION_NAME, address).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: http server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
