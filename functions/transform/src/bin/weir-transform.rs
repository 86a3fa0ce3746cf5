//! The transform function binary: AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise an
//! HTTP service on `PORT`. Config: `/srv/transform/service-config.yml` or `WEIR_CONFIG_PATH`,
//! plus `WEIR__...` environment variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = weir_function_runtime::run_function(weir_transform::FUNCTION_NAME, async {
        let config: weir_transform::TransformConfig =
            weir_function_runtime::load_config(weir_transform::FUNCTION_NAME)
                .map_err(|error| error.to_string())?;
        weir_transform::build_function(config).await
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
