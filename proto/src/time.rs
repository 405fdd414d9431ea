//! Wall-clock time as the protocol counts it: whole Unix seconds.

/// Seconds since the Unix epoch (0 if the clock is before 1970, which no check relies on).
pub fn unix_now() -> u64 {
    // `web_time` is `std::time` natively and the browser's clock on wasm32 (where std has none).
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
