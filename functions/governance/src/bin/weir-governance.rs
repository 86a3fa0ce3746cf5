//! The governance function binary: AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise an
//! HTTP service on `PORT`. Config: `/srv/governance/service-config.yml` or `WEIR_CONFIG_PATH`,
//! plus `WEIR__...` environment variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = weir_function_runtime::run_function(weir_governance::FUNCTION_NAME, async {
        let config: weir_governance::GovernanceConfig =
            weir_function_runtime::load_config(weir_governance::FUNCTION_NAME)
                .map_err(|error| error.to_string())?;
        weir_governance::build(config).await
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
