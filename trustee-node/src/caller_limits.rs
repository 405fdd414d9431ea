//! Per-caller limits on owner ceremonies.
//!
//! Passkeys cannot be guessed, so nothing a caller sends may lock a wallet; what needs bounding
//! is the work and storage a caller can make a node spend. Every owner-ceremony call (a nonce
//! issued, a passkey response checked) counts against the caller's address in a GCRA bucket of
//! `limits.owner_calls_per_minute` (burst of the same size); beyond it the call is refused with
//! `RESOURCE_EXHAUSTED` and the time to wait. Owners make a handful of calls per ceremony; a
//! stranger spamming one wallet id exhausts only their own budget. IPv6 callers are counted per
//! /64 (one subscriber's block), so fresh addresses from one block do not buy fresh budgets.

use crate::error::NodeError;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

/// The limiter, keyed by the caller's IP address.
#[derive(Debug)]
pub struct CallerLimits {
    owner_calls: DefaultKeyedRateLimiter<IpAddr>,
}

impl CallerLimits {
    /// `per_minute` owner-ceremony calls per caller (at least 1).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            owner_calls: RateLimiter::keyed(Quota::per_minute(n)),
        }
    }

    /// Counts one owner-ceremony call from `caller` (an unknown address shares one bucket).
    pub fn owner_call(&self, caller: Option<std::net::SocketAddr>) -> Result<(), NodeError> {
        let ip = caller.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| caller_key(a.ip()));
        self.owner_calls.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            NodeError::RateLimited {
                what: "owner-ceremony calls from this address",
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// Forgets callers whose buckets are full again (bounded memory under many addresses).
    pub fn forget_idle(&self) {
        self.owner_calls.retain_recent();
        self.owner_calls.shrink_to_fit();
    }
}

/// The bucket of an address: an IPv4 address (or an IPv4-mapped IPv6 one) on its own; an IPv6
/// address by its /64, the block one subscriber gets, so one caller cannot draw a fresh budget
/// per address.
fn caller_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
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
    fn a_caller_is_limited_and_others_are_not() {
        let l = CallerLimits::new(3);
        let a = Some("10.0.0.1:5000".parse().expect("addr"));
        let b = Some("10.0.0.2:5000".parse().expect("addr"));
        for _ in 0..3 {
            l.owner_call(a).expect("within the burst");
        }
        let e = l.owner_call(a).expect_err("over the limit");
        assert!(
            matches!(e, NodeError::RateLimited { retry_after_secs, .. } if retry_after_secs >= 1)
        );
        assert_eq!(
            tonic::Status::from(e).code(),
            tonic::Code::ResourceExhausted
        );
        l.owner_call(b).expect("another caller has its own budget");
    }

    #[test]
    fn one_ipv6_subscriber_block_is_one_caller() {
        let l = CallerLimits::new(2);
        let addr = |s: &str| Some(std::net::SocketAddr::new(s.parse().expect("ip"), 443));
        l.owner_call(addr("2001:db8:1:2::1")).expect("first");
        l.owner_call(addr("2001:db8:1:2::ffff")).expect("second");
        assert!(
            l.owner_call(addr("2001:db8:1:2:abcd::7")).is_err(),
            "a new address in the same /64 draws from the same budget"
        );
        l.owner_call(addr("2001:db8:1:3::1"))
            .expect("another /64 is another caller");
        l.owner_call(addr("::ffff:10.0.0.9")).expect("mapped IPv4");
        l.owner_call(addr("10.0.0.9"))
            .expect("the same IPv4 caller");
        assert!(l.owner_call(addr("10.0.0.9")).is_err());
    }
}
