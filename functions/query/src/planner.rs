//! Where queries are parsed, planned and optimized: a small runtime whose threads have large
//! stacks. Parsing and dropping a syntax tree as long as the query text allows, and planning
//! one as deep as the depth limit allows, recurse further than a runtime worker's default stack.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::QueryError;

/// Stack of each planner thread. Only the pages a plan touches are ever committed.
const PLANNER_STACK_BYTES: usize = 256 << 20;
const PLANNER_THREADS: usize = 2;

fn planner() -> &'static Runtime {
    static PLANNER: OnceLock<Runtime> = OnceLock::new();
    PLANNER.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(PLANNER_THREADS)
            .thread_name("weir-query-planner")
            .thread_stack_size(PLANNER_STACK_BYTES)
            .enable_all()
            .build()
            .expect("the query planner runtime starts")
    })
}

/// Runs `work` on a planner thread. Dropping the returned future (a timeout, a closed
/// connection) cancels the work; a panic in it becomes an internal error, not a crash.
pub async fn plan<F, T>(work: F) -> Result<T, QueryError>
where
    F: Future<Output = Result<T, QueryError>> + Send + 'static,
    T: Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(planner().spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(error) => Err(QueryError::Internal(format!(
            "query planning failed: {error}"
        ))),
    }
}
