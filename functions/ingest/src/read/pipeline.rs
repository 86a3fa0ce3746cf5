//! The decoding pipeline of a streamed body.
//!
//! The request task cuts the body into blocks of whole records (`chunk`) while it arrives and
//! hands each block to a pool of decoding threads. A sink thread receives the decoded batches
//! in body order and does the rest of the work (for a slice: system columns, hashing, Parquet
//! encoding), so reading, decoding and encoding overlap on every core. Queues are bounded:
//! memory holds a few blocks in flight, not the body.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use super::block::{BlockDecoder, BlockError};
use super::chunk::Block;
use crate::error::IngestError;

/// Receives decoded batches in body order, on a thread of its own.
pub trait BatchSink: Send + 'static {
    type Output: Send + 'static;

    fn write(&mut self, batch: RecordBatch) -> Result<(), IngestError>;

    fn finish(self) -> Result<Self::Output, IngestError>;
}

type BlockResult = Result<Vec<RecordBatch>, BlockError>;

struct Job {
    decoder: Arc<BlockDecoder>,
    block: Block,
    first_block: bool,
    reply: oneshot::Sender<BlockResult>,
}

enum Ordered {
    Block(oneshot::Receiver<BlockResult>),
    /// The body ended normally: the sink finishes. Without it, a closed queue means abort.
    End,
}

/// Decoding threads used per request: one per core, at most 4. Asked once per process (the
/// standard library reads cgroup files to answer).
fn decoding_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
}

/// The running pipeline of one request.
pub struct DecodePipeline<O> {
    jobs: Option<mpsc::Sender<Job>>,
    order: mpsc::Sender<Ordered>,
    sink: oneshot::Receiver<Result<O, IngestError>>,
    blocks_sent: usize,
}

impl<O: Send + 'static> DecodePipeline<O> {
    pub fn start<K: BatchSink<Output = O>>(sink: K) -> Result<Self, IngestError> {
        let threads = decoding_threads();
        let (jobs, job_receiver) = mpsc::channel::<Job>(threads);
        let job_receiver = Arc::new(Mutex::new(job_receiver));
        for _ in 0..threads {
            let job_receiver = job_receiver.clone();
            spawn_named("weir-decode", move || decode_jobs(&job_receiver))?;
        }
        let (order, order_receiver) = mpsc::channel::<Ordered>(threads * 2 + 2);
        let (sink_result, sink_receiver) = oneshot::channel();
        spawn_named("weir-ingest-sink", move || {
            let _ = sink_result.send(run_sink(order_receiver, sink));
        })?;
        Ok(Self {
            jobs: Some(jobs),
            order,
            sink: sink_receiver,
            blocks_sent: 0,
        })
    }

    /// Queues a block for decoding; waits while the pipeline is full.
    pub async fn send(
        &mut self,
        decoder: &Arc<BlockDecoder>,
        block: Block,
    ) -> Result<(), IngestError> {
        let (reply, result) = oneshot::channel();
        let job = Job {
            decoder: decoder.clone(),
            block,
            first_block: self.blocks_sent == 0,
            reply,
        };
        self.blocks_sent += 1;
        if self.order.send(Ordered::Block(result)).await.is_err() {
            return Err(self.sink_error().await);
        }
        let jobs = self.jobs.as_ref().expect("jobs close only at finish");
        if jobs.send(job).await.is_err() {
            return Err(IngestError::Internal(
                "decoding threads stopped".to_string(),
            ));
        }
        Ok(())
    }

    /// Waits for every block to be decoded and written; returns the sink's output.
    pub async fn finish(mut self) -> Result<O, IngestError> {
        drop(self.jobs.take());
        if self.order.send(Ordered::End).await.is_err() {
            return Err(self.sink_error().await);
        }
        drop(self.order);
        self.sink
            .await
            .map_err(|_| IngestError::Internal("the ingest sink thread stopped".to_string()))?
    }

    /// The error the sink stopped with (it stops early only on an error).
    async fn sink_error(&mut self) -> IngestError {
        match (&mut self.sink).await {
            Ok(Err(error)) => error,
            Ok(Ok(_)) => IngestError::Internal("ingest sink stopped early".to_string()),
            Err(_) => IngestError::Internal("the ingest sink thread stopped".to_string()),
        }
    }
}

/// Threads of a request are named, so profiles and stack dumps tell the stages apart.
fn spawn_named(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), IngestError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(work)
        .map(drop)
        .map_err(|error| IngestError::Internal(format!("starting thread {name}: {error}")))
}

fn decode_jobs(jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = {
            let Ok(mut receiver) = jobs.lock() else {
                return;
            };
            receiver.blocking_recv()
        };
        let Some(job) = job else {
            return;
        };
        let result = job.decoder.decode(&job.block, job.first_block);
        drop(job.block);
        // The sink may have stopped on an earlier error; nobody waits for this block then.
        let _ = job.reply.send(result);
    }
}

fn run_sink<K: BatchSink>(
    mut order: mpsc::Receiver<Ordered>,
    mut sink: K,
) -> Result<K::Output, IngestError> {
    let mut records_before = 0u64;
    while let Some(next) = order.blocking_recv() {
        let result = match next {
            Ordered::End => return sink.finish(),
            Ordered::Block(result) => result,
        };
        let batches = result
            .blocking_recv()
            .map_err(|_| IngestError::Internal("a decoding thread stopped".to_string()))?
            .map_err(|error| error.into_ingest_error(records_before))?;
        for batch in batches {
            let rows = batch.num_rows() as u64;
            sink.write(batch)
                .map_err(|error| error.after(records_before))?;
            records_before += rows;
        }
    }
    Err(IngestError::Internal("ingest was cancelled".to_string()))
}
