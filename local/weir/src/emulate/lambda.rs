//! One function as AWS runs it: its binary in Lambda mode against a Runtime API served here,
//! one invocation at a time (one execution environment), restarted after it exits (a new cold
//! start). `invoke` hands an event to it and waits for what it posts back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What a function answered: its response, or its error document (a function error).
pub type Outcome = Result<Bytes, String>;

struct Invocation {
    event: String,
    reply: oneshot::Sender<Outcome>,
}

struct RuntimeState {
    name: String,
    queue: Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    counter: std::sync::atomic::AtomicU64,
}

pub struct LambdaFunction {
    pub name: String,
    invocations: mpsc::Sender<Invocation>,
    pub timeout: Duration,
}

impl LambdaFunction {
    /// Serves a Runtime API for `name` and keeps `program` running against it with `env`.
    pub async fn start(
        name: &str,
        program: PathBuf,
        env: Vec<(String, String)>,
    ) -> Result<Arc<Self>, String> {
        let (invocations, queue) = mpsc::channel(64);
        let state = Arc::new(RuntimeState {
            name: name.to_string(),
            queue: Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            counter: std::sync::atomic::AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| error.to_string())?;
        let address: SocketAddr = listener.local_addr().map_err(|error| error.to_string())?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        let function = name.to_string();
        tokio::spawn(async move {
            loop {
                let child = weir_engine_provisioner::local::die_with_parent(&program)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
                    .env("AWS_LAMBDA_FUNCTION_NAME", &function)
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_REGION", "us-east-1")
                    .kill_on_drop(true)
                    .spawn();
                match child {
                    Ok(mut child) => {
                        let status = child.wait().await;
                        tracing::warn!(
                            function,
                            ?status,
                            "the function's process exited; starting it again"
                        );
                    }
                    Err(error) => {
                        tracing::error!(function, %error, program = %program.display(), "cannot start the function");
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Ok(Arc::new(Self {
            name: name.to_string(),
            invocations,
            timeout: Duration::from_secs(60),
        }))
    }

    /// Invokes the function with `event` (JSON); `Err` when it failed, died or timed out.
    pub async fn invoke(&self, event: String) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.invocations
            .send(Invocation { event, reply })
            .await
            .map_err(|_| "the function is gone".to_string())?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(format!("{} ended without answering", self.name)),
            Err(_) => Err(format!("{} timed out after {:?}", self.name, self.timeout)),
        }
    }
}

async fn next(State(state): State<Arc<RuntimeState>>) -> (StatusCode, HeaderMap, String) {
    let invocation = state.queue.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let number = state
        .counter
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let request_id = format!("{}-{number}", state.name);
    state
        .pending
        .lock()
        .await
        .insert(request_id.clone(), invocation.reply);
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    for (name, value) in [
        ("lambda-runtime-aws-request-id", request_id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                state.name
            ),
        ),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-{number:08x}-emulated"),
        ),
        ("content-type", "application/json".to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, invocation.event)
}

async fn response(
    State(state): State<Arc<RuntimeState>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    match state.pending.lock().await.remove(&request_id) {
        Some(reply) => {
            let _ = reply.send(Ok(body));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn error(
    State(state): State<Arc<RuntimeState>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    match state.pending.lock().await.remove(&request_id) {
        Some(reply) => {
            let _ = reply.send(Err(String::from_utf8_lossy(&body).to_string()));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    tracing::error!(function = %state.name, error = %String::from_utf8_lossy(&body), "the function failed to start");
    StatusCode::ACCEPTED
}
