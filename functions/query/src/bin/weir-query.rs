//! The query function binary: AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise an HTTP
//! service on `PORT`, plus FlightSQL on `flightsql_listen` when configured.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = weir_function_runtime::run_function(weir_query::FUNCTION_NAME, async {
        let config: weir_query::QueryConfig =
            weir_function_runtime::load_config(weir_query::FUNCTION_NAME)
                .map_err(|error| error.to_string())?;
        let flightsql = config.flightsql_listen.clone();
        let context = weir_query::build_context(config).await?;
        if let Some(address) = flightsql {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .map_err(|error| format!("cannot listen for flightsql on {address}: {error}"))?;
            let engine = context.engine.clone();
            tracing::info!(%address, "serving flightsql");
            tokio::spawn(async move {
                if let Err(message) = weir_query::flight::serve_flightsql(engine, listener).await {
                    tracing::error!(%message, "flightsql stopped");
                }
            });
        }
        Ok::<_, String>(weir_query::router(context))
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
