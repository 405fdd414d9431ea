//! Per-caller limits on registrations: a fixed window per peer address, so one caller cannot
//! fill the registry (or the operator's queue) for everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Registrations one peer address may attempt per window.
pub const REGISTRATIONS_PER_WINDOW: u32 = 20;
/// The window, in seconds.
pub const REGISTRATION_WINDOW_SECS: u64 = 60;
/// Most peers tracked; past it, windows that have ended are dropped first.
const MAX_TRACKED_PEERS: usize = 10_000;

/// Fixed-window counters per peer address.
#[derive(Debug, Default)]
pub struct RegistrationLimiter {
    windows: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl RegistrationLimiter {
    /// Counts an attempt by `peer` at `now`; `Err(seconds until the window ends)` when over the
    /// limit.
    pub fn check(&self, peer: IpAddr, now: u64) -> Result<(), u64> {
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.len() >= MAX_TRACKED_PEERS && !w.contains_key(&peer) {
            w.retain(|_, (start, _)| now < start.saturating_add(REGISTRATION_WINDOW_SECS));
            if w.len() >= MAX_TRACKED_PEERS {
                // Every tracked peer is in an active window: a flood; new callers wait too.
                return Err(REGISTRATION_WINDOW_SECS);
            }
        }
        let e = w.entry(peer).or_insert((now, 0));
        if now >= e.0.saturating_add(REGISTRATION_WINDOW_SECS) {
            *e = (now, 0);
        }
        if e.1 >= REGISTRATIONS_PER_WINDOW {
            return Err(e
                .0
                .saturating_add(REGISTRATION_WINDOW_SECS)
                .saturating_sub(now)
                .max(1));
        }
        e.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_per_peer() {
        let l = RegistrationLimiter::default();
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        for _ in 0..REGISTRATIONS_PER_WINDOW {
            assert!(l.check(a, 100).is_ok());
        }
        assert_eq!(
            l.check(a, 110),
            Err(50),
            "over the limit: retry when the window ends"
        );
        assert!(l.check(b, 110).is_ok(), "another caller is not affected");
        assert!(l.check(a, 160).is_ok(), "a new window");
    }
}
