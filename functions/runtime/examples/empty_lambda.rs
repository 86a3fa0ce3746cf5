//! The floor of a Rust Lambda's cold start: `lambda_http` answering every request with 200 and
//! nothing else (no config, storage or router). `tests/bench/coldstart.sh` measures it beside
//! Weir's function binaries, in the same run.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Error>(Response::new(Body::from("ok")))
    }))
    .await
}
