//! Per-caller limits on owner ceremonies.
//!
//! Passkeys cannot be guessed, so nothing a caller sends may lock a wallet; what needs bounding
//! is the work and storage a caller can make a node spend. Every owner-ceremony call (a nonce
//! issued, a passkey response checked) counts against the caller's address in a GCRA bucket of
//! `limits.owner_calls_per_minute` (burst of the same size); beyond it the call is refused with
//! `RESOURCE_EXHAUSTED` and the time to wait. Owners make a handful of calls per ceremony; a
//! stranger spamming one wallet id exhausts only their own budget. IPv6 callers are counted per
//! /64 (one subscriber's block), so fresh addresses from one block do not buy fresh budgets.
//!
//! A rate alone still lets a few addresses fill the node-wide `limits.max_pending_ceremonies`
//! over a ceremony's lifetime. So each caller also holds at most
//! `limits.pending_ceremonies_per_caller` *pending* owner ceremonies: a nonce issued
//! (`BeginEnrollment`, `OpenRecovery`, `BeginOwnerCancel`, `BeginEpochAction`, the locker's owner
//! touch) and neither spent by the owner's response nor expired. A spent or expired one frees its
//! place at once. The count lives in memory (a restart forgets it; the node-wide cap is
//! persisted).

use crate::error::NodeError;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;

/// A place held by a caller: reserved while its ceremony begins, then its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Reserved(u64),
    Nonce([u8; 32]),
}

#[derive(Debug, Default)]
struct Pending {
    /// Each caller's places with their expiry (Unix seconds).
    by_caller: HashMap<IpAddr, Vec<(Place, u64)>>,
    /// Whose nonce it is, to free the place when it is spent.
    caller_of: HashMap<[u8; 32], IpAddr>,
    next: u64,
}

impl Pending {
    fn remove(&mut self, caller: IpAddr, place: Place) {
        if let Some(places) = self.by_caller.get_mut(&caller) {
            places.retain(|(p, _)| *p != place);
            if places.is_empty() {
                self.by_caller.remove(&caller);
            }
        }
        if let Place::Nonce(n) = place {
            self.caller_of.remove(&n);
        }
    }

    fn drop_expired(&mut self, caller: IpAddr, now: u64) {
        let Some(places) = self.by_caller.get_mut(&caller) else {
            return;
        };
        let caller_of = &mut self.caller_of;
        places.retain(|(p, expires_at)| {
            let live = *expires_at > now;
            if let (false, Place::Nonce(n)) = (live, p) {
                caller_of.remove(n);
            }
            live
        });
        if places.is_empty() {
            self.by_caller.remove(&caller);
        }
    }
}

/// The limiter, keyed by the caller's IP address.
#[derive(Debug)]
pub struct CallerLimits {
    owner_calls: DefaultKeyedRateLimiter<IpAddr>,
    pending_per_caller: usize,
    pending: Mutex<Pending>,
}

/// A caller's place for one ceremony being begun: [`CeremonyPlace::issued`] keeps it under the
/// nonce the ceremony issued; dropped without that (the begin failed), it is freed.
#[derive(Debug)]
pub struct CeremonyPlace<'a> {
    limits: &'a CallerLimits,
    caller: IpAddr,
    id: u64,
    expires_at: u64,
    kept: bool,
}

impl CeremonyPlace<'_> {
    /// The ceremony issued `nonce`: the place is held until it is spent or expires.
    pub fn issued(mut self, nonce: &[u8; 32]) {
        let mut p = self.limits.lock();
        if let Some(places) = p.by_caller.get_mut(&self.caller)
            && let Some(slot) = places
                .iter_mut()
                .find(|(place, _)| *place == Place::Reserved(self.id))
        {
            *slot = (Place::Nonce(*nonce), self.expires_at);
            p.caller_of.insert(*nonce, self.caller);
        }
        self.kept = true;
    }
}

impl Drop for CeremonyPlace<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.limits
                .lock()
                .remove(self.caller, Place::Reserved(self.id));
        }
    }
}

impl CallerLimits {
    /// `per_minute` owner-ceremony calls per caller (at least 1) and `pending_per_caller`
    /// pending ceremonies per caller (at least 1).
    pub fn new(per_minute: u32, pending_per_caller: usize) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            owner_calls: RateLimiter::keyed(Quota::per_minute(n)),
            pending_per_caller: pending_per_caller.max(1),
            pending: Mutex::new(Pending::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The map holds no invariant a panic elsewhere could break halfway: use it as is.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one owner-ceremony call from `caller` (an unknown address shares one bucket).
    pub fn owner_call(&self, caller: Option<std::net::SocketAddr>) -> Result<(), NodeError> {
        let ip = key_of(caller);
        self.owner_calls.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            NodeError::RateLimited {
                what: "owner-ceremony calls from this address",
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    /// Reserves a place for a ceremony `caller` begins at `now` (its nonce lives `ttl_secs`);
    /// refused while the caller already holds `pending_ceremonies_per_caller` pending ones.
    pub fn begin_ceremony(
        &self,
        caller: Option<std::net::SocketAddr>,
        now: u64,
        ttl_secs: u64,
    ) -> Result<CeremonyPlace<'_>, NodeError> {
        let ip = key_of(caller);
        let mut p = self.lock();
        p.drop_expired(ip, now);
        let held = p.by_caller.get(&ip).map_or(0, Vec::len);
        if held >= self.pending_per_caller {
            let first_free = p
                .by_caller
                .get(&ip)
                .and_then(|v| v.iter().map(|(_, e)| *e).min())
                .unwrap_or(now);
            return Err(NodeError::TooManyPending {
                held,
                retry_after_secs: first_free.saturating_sub(now).max(1),
            });
        }
        p.next += 1;
        let id = p.next;
        let expires_at = now.saturating_add(ttl_secs);
        p.by_caller
            .entry(ip)
            .or_default()
            .push((Place::Reserved(id), expires_at));
        Ok(CeremonyPlace {
            limits: self,
            caller: ip,
            id,
            expires_at,
            kept: false,
        })
    }

    /// The owner answered with `nonce` (spent): its caller's place is free.
    pub fn ceremony_done(&self, nonce: &[u8; 32]) {
        let mut p = self.lock();
        if let Some(caller) = p.caller_of.get(nonce).copied() {
            p.remove(caller, Place::Nonce(*nonce));
        }
    }

    /// Forgets callers whose buckets are full again and places that expired by `now` (bounded
    /// memory under many addresses).
    pub fn forget_idle(&self, now: u64) {
        self.owner_calls.retain_recent();
        self.owner_calls.shrink_to_fit();
        let mut p = self.lock();
        let callers: Vec<IpAddr> = p.by_caller.keys().copied().collect();
        for c in callers {
            p.drop_expired(c, now);
        }
        p.by_caller.shrink_to_fit();
        p.caller_of.shrink_to_fit();
    }
}

/// The key of a caller (an unknown address shares one key).
fn key_of(caller: Option<std::net::SocketAddr>) -> IpAddr {
    caller.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| caller_key(a.ip()))
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
        let l = CallerLimits::new(3, 8);
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
    fn pending_ceremonies_are_capped_per_caller_and_freed_when_spent_or_expired() {
        let l = CallerLimits::new(1000, 2);
        let a = Some("10.0.0.1:5000".parse().expect("addr"));
        let a6 = |s: &str| Some(std::net::SocketAddr::new(s.parse().expect("ip"), 443));
        let b = Some("10.0.0.2:5000".parse().expect("addr"));
        l.begin_ceremony(a, 100, 60)
            .expect("first")
            .issued(&[1; 32]);
        {
            // A begin that fails (dropped without a nonce) holds nothing.
            let _failed = l.begin_ceremony(a, 100, 60).expect("second");
        }
        l.begin_ceremony(a, 100, 60)
            .expect("second")
            .issued(&[2; 32]);
        let e = l.begin_ceremony(a, 110, 60).expect_err("a third");
        assert!(
            matches!(
                e,
                NodeError::TooManyPending {
                    held: 2,
                    retry_after_secs: 50
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            tonic::Status::from(e).code(),
            tonic::Code::ResourceExhausted
        );
        l.begin_ceremony(b, 110, 60)
            .expect("another caller")
            .issued(&[3; 32]);
        // Spent: the place is free.
        l.ceremony_done(&[1; 32]);
        l.begin_ceremony(a, 110, 60)
            .expect("freed")
            .issued(&[4; 32]);
        assert!(l.begin_ceremony(a, 110, 60).is_err());
        // Expired: free too.
        l.begin_ceremony(a, 160, 60)
            .expect("the first ones expired");
        // One IPv6 /64 is one caller.
        l.begin_ceremony(a6("2001:db8::1"), 0, 60)
            .expect("1")
            .issued(&[5; 32]);
        l.begin_ceremony(a6("2001:db8::2"), 0, 60)
            .expect("2")
            .issued(&[6; 32]);
        assert!(l.begin_ceremony(a6("2001:db8::3"), 0, 60).is_err());
        l.forget_idle(1000);
        let p = l.lock();
        assert!(p.by_caller.is_empty() && p.caller_of.is_empty());
    }

    #[test]
    fn one_ipv6_subscriber_block_is_one_caller() {
        let l = CallerLimits::new(2, 8);
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
