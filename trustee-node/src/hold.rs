//! Calls the node holds open instead of answering "not yet" (the client then needs no polling
//! interval): `Staff.GetApproval` until staff approve, `Staff.RequestPasskeyReset` until the
//! reset is approved, `Recovery.ReleaseShare` / `Epochs.ReleaseStagedShare` until the session's
//! `release_not_before`.
//!
//! One waiting machinery for all of them: a held call looks again when an event of its wallet
//! is announced, at the moment the caller says the answer changes by the clock alone, on a
//! short recheck where replicas share the database (a change made at another replica raises no
//! event here), and when shutdown begins (it then answers at once, so a held call never holds
//! the shutdown). At most [`MAX_HELD_CALLS`] calls are held at once; beyond that a call is
//! answered at once, as without a wait.

use crate::error::NodeError;
use crate::node::Node;
use std::time::Duration;

/// The longest any call is held (a request's `wait_secs` is capped to this).
pub const MAX_WAIT_SECS: u32 = 30;

/// How many calls may be held at once; beyond this a call is answered at once (the client then
/// polls), so waiting callers cannot crowd out anyone.
pub const MAX_HELD_CALLS: usize = 1024;

/// The shortest pause between two looks of one held call (a clock a hair behind the timer must
/// not make it spin).
const MIN_LOOK_GAP: Duration = Duration::from_millis(10);

/// A request's `wait_secs`, capped to [`MAX_WAIT_SECS`].
pub fn capped_wait(wait_secs: u32) -> Duration {
    Duration::from_secs(u64::from(wait_secs.min(MAX_WAIT_SECS)))
}

/// How often a held call looks again without an event: where replicas share the database a
/// change made at another replica raises no event here.
fn recheck(shared: bool) -> Duration {
    Duration::from_millis(if shared { 250 } else { 5_000 })
}

/// What a held call found when it looked.
pub(crate) enum Look<T> {
    /// The answer: sent now.
    Done(Result<T, NodeError>),
    /// Still waiting: the answer sent if the wait ends now, and, when the clock alone changes
    /// it, how long until then.
    Pending(Result<T, NodeError>, Option<Duration>),
}

impl Node {
    /// Holds a call about `wallet_id` for at most `wait`: `look` decides what it answers, and is
    /// asked again whenever the answer may have changed, until it is [`Look::Done`], the wait is
    /// over or shutdown begins (then the pending answer is sent).
    pub(crate) async fn hold<T>(
        &self,
        wallet_id: &str,
        wait: Duration,
        mut look: impl FnMut() -> Look<T>,
    ) -> Result<T, NodeError> {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before the first look, so a change between the look and the wait wakes.
        let mut events = self.events.subscribe();
        let mut stopping = self.stopping.subscribe();
        let mut place = None;
        loop {
            let (answer, changes_in) = match look() {
                Look::Done(answer) => return answer,
                Look::Pending(answer, changes_in) => (answer, changes_in),
            };
            let now = tokio::time::Instant::now();
            if now >= deadline || *stopping.borrow_and_update() {
                return answer;
            }
            if place.is_none() {
                match self.held_calls.try_acquire() {
                    Ok(p) => place = Some(p),
                    Err(_) => return answer,
                }
            }
            let mut look_again =
                deadline.min(now + recheck(self.db.backend() == dlocker_store::Backend::Postgres));
            if let Some(d) = changes_in {
                look_again = look_again.min(now + d.max(MIN_LOOK_GAP));
            }
            let this_wallet = async {
                loop {
                    match events.recv().await {
                        Ok(ev) if ev.wallet_id == wallet_id => return,
                        Ok(_) => {}
                        // Missed events: look again.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            };
            tokio::select! {
                () = this_wallet => {}
                () = tokio::time::sleep_until(look_again) => {}
                // Shutdown (or the node gone): the pending answer now; the client asks again.
                _ = stopping.changed() => {}
            }
        }
    }
}
