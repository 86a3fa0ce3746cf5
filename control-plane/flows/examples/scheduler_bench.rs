//! Scheduler benchmark (run by `tests/bench/flows.sh`): 10,000 flow bindings, half on a
//! schedule (every 60 s) and half reactive transform flows fed input commits (100 a second), on the real
//! stores (SQLite as `weir up` embeds it, or PostgreSQL), the real scheduler loop and
//! in-process executors. Prints the dispatch delay (due time → taken by an executor) p50/p99,
//! the throughput of a burst (manual triggers of 2,000 flows at once, drained by the executors),
//! and the process's RSS and CPU while idle with the bindings in place. The peer in the same run
//! is the database's own round trip (`SELECT 1`).
//!
//! `scheduler_bench [DATABASE_URL|sqlite] [FLOWS] [SECONDS] [EVERY] [COMMITS_PER_SECOND]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_flows::executor::LocalTaskSource;
use weir_flows::model::{FlowConfig, FlowKey, FlowType, StopPolicy, Trigger};
use weir_flows::run::Cause;
use weir_flows::service::{Target, now_millis};
use weir_flows::{FlowService, SqlFlowStore};
use weir_metastore::SqlMetastore;
use weir_tasks::{LeasedTask, TaskHandler, TaskKind, TaskOutcome, WorkerOptions};

/// Records when each task was taken against when its run was due (its first cause).
struct Recorder {
    flows: Arc<FlowService>,
    delays: Mutex<Vec<(bool, i64)>>,
}

#[async_trait::async_trait]
impl TaskHandler for Recorder {
    async fn run(&self, task: &LeasedTask) -> TaskOutcome {
        let taken = now_millis();
        if let Ok(Some(run)) = self.flows.flows.run(task.run_id).await {
            let (scheduled, due) = match run.causes.first() {
                Some(Cause::Schedule { at }) => (true, *at),
                Some(Cause::InputCommitted { at, .. }) => (false, *at),
                _ => (false, taken),
            };
            self.delays.lock().unwrap().push((scheduled, taken - due));
        }
        TaskOutcome::Success {
            changed: false,
            details: serde_json::Value::Null,
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn proc_figures() -> (u64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    (rss_kib, ticks as f64 / 100.0)
}

fn schedule(every: &str) -> FlowConfig {
    FlowConfig {
        trigger: Trigger::Schedule {
            every: Some(every.to_string()),
            cron: None,
        },
        retry: None,
        stop: StopPolicy::Never,
        compaction: None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let directory = tempfile::tempdir().unwrap();
    let url = args
        .get(1)
        .cloned()
        .filter(|url| url != "sqlite")
        .unwrap_or_else(|| format!("sqlite://{}", directory.path().join("bench.db").display()));
    let flows: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(60);
    let every = args.get(4).cloned().unwrap_or_else(|| "60s".to_string());
    let rate: u64 = args.get(5).and_then(|n| n.parse().ok()).unwrap_or(100);
    let backend = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let metastore = SqlMetastore::connect(&url).await.unwrap();
    if let Ok(mode) = std::env::var("BENCH_SQLITE_SYNCHRONOUS") {
        sqlx::query(&format!("PRAGMA synchronous = {mode}"))
            .execute(metastore.pool())
            .await
            .unwrap();
    }
    let store = Arc::new(SqlFlowStore::open(&metastore).await.unwrap());
    let service = Arc::new(FlowService::new(store.clone(), store));

    // Peer: the database's round trip.
    let mut pings = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        metastore.ping().await.unwrap();
        pings.push(start.elapsed().as_micros() as i64);
    }
    pings.sort();

    let started = Instant::now();
    let half = flows / 2;
    for index in 0..half {
        let key = FlowKey::new(format!("did:odf:bench-s{index}"), FlowType::Reset);
        service
            .configure(&key, Target::Root, schedule(&every))
            .await
            .unwrap();
    }
    for index in 0..flows - half {
        let key = FlowKey::new(format!("did:odf:bench-r{index}"), FlowType::Transform);
        service
            .flows
            .ensure_binding(&key, &FlowConfig::default_transform(), now_millis())
            .await
            .unwrap();
    }
    let setup = started.elapsed();

    tokio::spawn(weir_flows::service::run_scheduler(
        service.clone(),
        || true,
        Duration::from_millis(
            std::env::var("BENCH_TICK_MILLIS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
        ),
    ));
    let recorder = Arc::new(Recorder {
        flows: service.clone(),
        delays: Mutex::new(Vec::new()),
    });
    tokio::spawn(weir_tasks::run_worker(
        Arc::new(LocalTaskSource(service.clone())),
        recorder.clone(),
        WorkerOptions {
            executor: "bench".to_string(),
            kinds: vec![TaskKind::Reset, TaskKind::Transform],
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(
                std::env::var("BENCH_POLL_MILLIS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500),
            ),
            concurrency: 16,
        },
        service.worker_wake.clone(),
    ));

    // `rate` input commits a second, spread over the reactive flows.
    let load_start = Instant::now();
    let mut commits = 0u64;
    let mut next = 0usize;
    let reactive = (flows - half).max(1);
    while load_start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..rate.div_ceil(100) {
            let derivative = format!("did:odf:bench-r{}", next % reactive);
            next += 7919;
            service
                .input_committed(&derivative, "did:odf:input", "f1620", 10)
                .await
                .unwrap();
            commits += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let load = load_start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delays = recorder.delays.lock().unwrap().clone();
    let mut scheduled: Vec<i64> = delays.iter().filter(|(s, _)| *s).map(|(_, d)| *d).collect();
    let mut reacted: Vec<i64> = delays
        .iter()
        .filter(|(s, _)| !*s)
        .map(|(_, d)| *d)
        .collect();
    let mut all: Vec<i64> = delays.iter().map(|(_, d)| *d).collect();
    scheduled.sort();
    reacted.sort();
    all.sort();

    // Burst: 2,000 manual triggers at once; how fast the queue drains.
    let before = recorder.delays.lock().unwrap().len();
    let burst = 2000.min(half);
    let burst_start = Instant::now();
    for index in 0..burst {
        let key = FlowKey::new(format!("did:odf:bench-s{index}"), FlowType::Reset);
        service
            .trigger_manual(&key, Target::Root, "bench")
            .await
            .unwrap();
    }
    let enqueued = burst_start.elapsed();
    while recorder.delays.lock().unwrap().len() < before + burst
        && burst_start.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = burst_start.elapsed();
    let burst_done = recorder.delays.lock().unwrap().len() - before;

    // Idle: every schedule moved to hourly, nothing to do.
    for index in 0..half {
        let key = FlowKey::new(format!("did:odf:bench-s{index}"), FlowType::Reset);
        service
            .configure(&key, Target::Root, schedule("1h"))
            .await
            .unwrap();
    }
    // Runs already planned on the old schedule are cancelled by waiting them out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, cpu_before) = proc_figures();
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss_kib, cpu_after) = proc_figures();
    let idle_cpu = (cpu_after - cpu_before) / idle.elapsed().as_secs_f64() * 100.0;

    println!(
        "{}",
        serde_json::json!({
            "backend": backend,
            "flows": flows,
            "setupSeconds": setup.as_secs_f64(),
            "loadSeconds": load.as_secs_f64(),
            "inputCommits": commits,
            "tasks": all.len(),
            "tasksPerSecond": all.len() as f64 / load.as_secs_f64(),
            "delayMs": {"p50": percentile(&all, 0.5), "p99": percentile(&all, 0.99), "max": all.last()},
            "scheduleDelayMs": {"n": scheduled.len(), "p50": percentile(&scheduled, 0.5), "p99": percentile(&scheduled, 0.99)},
            "reactiveDelayMs": {"n": reacted.len(), "p50": percentile(&reacted, 0.5), "p99": percentile(&reacted, 0.99)},
            "burst": {"tasks": burst_done, "enqueueSeconds": enqueued.as_secs_f64(), "drainSeconds": drained.as_secs_f64(), "tasksPerSecond": burst_done as f64 / drained.as_secs_f64()},
            "peerSelect1Us": {"p50": percentile(&pings, 0.5), "p99": percentile(&pings, 0.99)},
            "idleRssMiB": rss_kib as f64 / 1024.0,
            "idleCpuPercent": idle_cpu,
        })
    );
}
