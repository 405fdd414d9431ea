//! What the SDK needs from its runtime, natively (tokio) and in the browser (wasm32, where there
//! is no tokio runtime and `std::time` has no clock): sleeping and a monotonic clock.

use std::time::Duration;

/// A monotonic instant (`std::time::Instant` natively, `performance.now()` in the browser).
pub(crate) use web_time::Instant;

/// Waits `d` without blocking the thread.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Waits `d` without blocking the thread (the browser's `setTimeout`).
#[cfg(target_arch = "wasm32")]
pub(crate) async fn sleep(d: Duration) {
    // setTimeout takes a u32 of milliseconds; the SDK never sleeps anywhere near 49 days.
    let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    gloo_timers::future::TimeoutFuture::new(ms).await;
}
