//! Per-caller limits on registrations: a fixed window per peer address, so one caller cannot
//! fill the registry (or the operator's queue) for everyone. An IPv6 caller is counted by its
//! /64 (the block one subscriber gets), so fresh addresses from one block buy no fresh budget.

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
        let peer = caller_key(peer);
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

/// The budget an address draws from: an IPv4 address (or an IPv4-mapped IPv6 one) on its own,
/// an IPv6 address by its /64.
fn caller_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_caller_is_counted_by_its_64() {
        let l = RegistrationLimiter::default();
        for i in 0..REGISTRATIONS_PER_WINDOW {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().expect("ip");
            assert!(l.check(ip, 100).is_ok());
        }
        let fresh: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("ip");
        assert!(
            l.check(fresh, 100).is_err(),
            "another address of the same /64 shares the budget"
        );
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(l.check(other, 100).is_ok(), "another /64 is not affected");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        let v4: IpAddr = "10.0.0.1".parse().expect("ip");
        assert!(l.check(mapped, 100).is_ok());
        for _ in 1..REGISTRATIONS_PER_WINDOW {
            assert!(l.check(v4, 100).is_ok());
        }
        assert!(
            l.check(v4, 100).is_err(),
            "an IPv4-mapped address is that IPv4 address"
        );
    }

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
