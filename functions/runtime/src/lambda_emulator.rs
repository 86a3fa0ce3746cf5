//! A small implementation of the AWS Lambda Runtime API (`/2018-06-01/runtime/invocation/*`) on
//! loopback, so a function binary can run in Lambda mode where there is no Lambda: in tests and
//! for local emulation. Queue events with `LambdaRuntimeEmulator::start`, point the binary's
//! `AWS_LAMBDA_RUNTIME_API` at `address`, and read what it answered from `next_response`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc};

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationResult {
    pub request_id: String,
    /// `response` or `error`.
    pub kind: String,
    pub body: String,
}

struct Queue {
    events: Mutex<Vec<(String, String)>>,
    function_arn: String,
    results: mpsc::UnboundedSender<InvocationResult>,
}

pub struct LambdaRuntimeEmulator {
    pub address: SocketAddr,
    results: mpsc::UnboundedReceiver<InvocationResult>,
}

impl LambdaRuntimeEmulator {
    /// Serves the Runtime API on a free loopback port with `events` (JSON) queued in order;
    /// they get request ids `request-1`, `request-2`, ...
    pub async fn start(function_name: &str, events: Vec<String>) -> std::io::Result<Self> {
        let (results, received) = mpsc::unbounded_channel();
        let mut queued: Vec<(String, String)> = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| (format!("request-{}", index + 1), event))
            .collect();
        queued.reverse();
        let queue = Arc::new(Queue {
            events: Mutex::new(queued),
            function_arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"),
            results,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/{kind}",
                post(invocation_result),
            )
            .with_state(queue);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            address,
            results: received,
        })
    }

    /// The next result the function posted, or `None` after `timeout`.
    pub async fn next_result(&mut self, timeout: Duration) -> Option<InvocationResult> {
        tokio::time::timeout(timeout, self.results.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next_invocation(State(queue): State<Arc<Queue>>) -> (StatusCode, HeaderMap, String) {
    let next = queue.events.lock().await.pop();
    let Some((request_id, event)) = next else {
        // No more work: hold the long poll like the real service does.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return (StatusCode::NO_CONTENT, HeaderMap::new(), String::new());
    };
    let mut headers = HeaderMap::new();
    let mut insert = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    insert("lambda-runtime-aws-request-id", &request_id);
    insert("lambda-runtime-deadline-ms", "99999999999999");
    insert("lambda-runtime-invoked-function-arn", &queue.function_arn);
    insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
    );
    insert("content-type", "application/json");
    (StatusCode::OK, headers, event)
}

async fn invocation_result(
    State(queue): State<Arc<Queue>>,
    Path((request_id, kind)): Path<(String, String)>,
    body: String,
) -> StatusCode {
    let _ = queue.results.send(InvocationResult {
        request_id,
        kind,
        body,
    });
    StatusCode::ACCEPTED
}
