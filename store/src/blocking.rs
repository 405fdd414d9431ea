//! Running a blocking database call from wherever the caller is.
//!
//! The PostgreSQL client is synchronous (it drives its own small runtime per connection), and the
//! node calls the store from async request handlers. Blocking a runtime worker unannounced would
//! stall its other tasks, and starting the client's runtime inside a runtime panics, so:
//! on a multi-threaded runtime the call runs under `block_in_place` (the worker hands its tasks
//! to another thread first); on a current-thread runtime (unit tests) it runs on a short-lived
//! scoped thread; outside any runtime it runs directly.

use tokio::runtime::{Handle, RuntimeFlavor};

pub(crate) fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        Err(_) => f(),
    }
}
