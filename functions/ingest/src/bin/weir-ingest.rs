//! The ingest function binary: AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise an
//! HTTP service on `PORT`. Config: `/srv/ingest/service-config.yml` or `WEIR_CONFIG_PATH`, plus
//! `WEIR__...` environment variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = weir_function_runtime::run_function(weir_ingest::FUNCTION_NAME, async {
        let config: weir_ingest::IngestConfig =
            weir_function_runtime::load_config(weir_ingest::FUNCTION_NAME)
                .map_err(|error| error.to_string())?;
        weir_ingest::build_function(config).await
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
