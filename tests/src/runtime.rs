//! One tokio runtime per test binary, shared by every upstream server the harness runs.
//!
//! Tests themselves are plain blocking `#[test]` functions; the servers live here so that
//! they keep running while a test blocks on an HTTP call.

use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared runtime's handle. Never call `block_on` on it from inside a runtime task.
pub fn handle() -> Handle {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("harness-upstream")
                .enable_all()
                .build()
                .expect("the harness runtime starts")
        })
        .handle()
        .clone()
}
