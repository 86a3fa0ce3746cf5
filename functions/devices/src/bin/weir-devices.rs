//! The device function binary: AWS Lambda (the HTTP path) when `AWS_LAMBDA_RUNTIME_API` is set,
//! otherwise an HTTP service on `PORT` that also bridges the configured MQTT broker. Config:
//! `/srv/devices/service-config.yml` or `WEIR_CONFIG_PATH`, plus `WEIR__...` variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = weir_function_runtime::run_function(weir_devices::FUNCTION_NAME, async {
        let config: weir_devices::DevicesConfig =
            weir_function_runtime::load_config(weir_devices::FUNCTION_NAME)
                .map_err(|error| error.to_string())?;
        weir_devices::build_function(config).await
    })
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
