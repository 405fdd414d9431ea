//! The bank node's `Staff` service: list, approve and cancel recoveries on signed staff
//! requests, and hand the SDK the bank approval once the staff policy holds.
//!
//! Only registered on a node with role `bank`. Every call but `GetApproval` carries a
//! `StaffRequest` checked by [`crate::staff::auth::StaffGate`] (key, role, node, freshness,
//! single-use nonce). The bank approval key signs a `BankApproval` only when
//! `bank.approvals_required` distinct staff members approved the session.

pub mod admin;
pub mod auth;
pub mod resets;
pub mod roster;
pub mod staff_service;

use crate::config::BankSettings;
use crate::error::NodeError;
use crate::hold::Look;
use crate::node::Node;
use crate::recovery::session::{Canceller, RecoverySession, SessionError, SessionState};
use crate::recovery::{MAX_LISTED_RECOVERIES, MAX_STATEMENT_BYTES, StoredSession};
use crate::staff::auth::VerifiedStaffRequest;
use crate::wallet::WalletId;
use dlocker_proto::statement::{BankApproval, BankCancellation, Signed, StaffAction};
use k256::PublicKey;

/// The approval state of a session after `ApproveRecovery`.
#[derive(Debug, Clone)]
pub struct ApprovalState {
    /// Distinct staff who approved.
    pub approvers: Vec<String>,
    /// Needed.
    pub approvals_required: u32,
    /// The signed approval once the policy holds.
    pub bank_approval: Option<Vec<u8>>,
}

/// Staff operations (approvals, cancellations, the roster): a borrowed view of the [`Node`]
/// context, whose fields and methods read through it.
#[derive(Clone, Copy)]
pub struct StaffOps<'a>(&'a Node);

impl std::ops::Deref for StaffOps<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.0
    }
}

impl Node {
    /// The bank's staff: approvals, cancellations, the roster.
    pub fn staff(&self) -> StaffOps<'_> {
        StaffOps(self)
    }
}

fn approval_live(bytes: &[u8], now: u64) -> bool {
    Signed::<BankApproval>::decode(bytes)
        .map(|s| now < s.body().expires_at)
        .unwrap_or(false)
}

impl StaffOps<'_> {
    fn bank(&self) -> Result<&BankSettings, NodeError> {
        self.config
            .bank
            .as_ref()
            .ok_or_else(|| NodeError::Internal("staff call on a node without the bank role".into()))
    }

    /// Approvals required on this node now (0 when it is not the bank); a config reload may
    /// change it.
    pub fn approvals_required(&self) -> u32 {
        self.approvals_required
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// On a shared database (replicas on PostgreSQL), takes up a roster another replica stored
    /// since this one last looked, so a staff change made at one replica holds at every replica
    /// from the next request on. One key read; nothing on sled, where this process made every
    /// change itself.
    pub(crate) fn sync_roster(&self) -> Result<(), NodeError> {
        if self.db.backend() != dlocker_store::Backend::Postgres {
            return Ok(());
        }
        let (Some(gate), Some(stored)) = (&self.staff_gate, roster::load(&self.db)?) else {
            return Ok(());
        };
        if gate.staff() != stored.staff {
            gate.replace_staff(stored.staff);
        }
        self.approvals_required.store(
            stored.approvals_required,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    fn staff_check(
        &self,
        bytes: &[u8],
        action: StaffAction,
        now: u64,
    ) -> Result<VerifiedStaffRequest, NodeError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(NodeError::invalid(
                "staff_request_encoded",
                format!("{} bytes; at most {MAX_STATEMENT_BYTES}", bytes.len()),
            ));
        }
        let gate = self.staff_gate.as_ref().ok_or_else(|| {
            NodeError::Internal("staff call on a node without the bank role".into())
        })?;
        self.sync_roster()?;
        let v = gate.check(bytes, action, now).inspect_err(|e| {
            tracing::warn!(action = action.name(), error = %e, "staff request refused");
        })?;
        Ok(v)
    }

    /// Who may read the event stream (it names wallets and sessions): a staff member of this
    /// node with a signed request for `action`, or a client certificate the TLS config lists.
    /// Returns the reader's identity (what per-reader limits count against).
    pub fn authorize_event_reader(
        &self,
        staff_request: &[u8],
        client_cert_sha256: Option<&[u8; 32]>,
        action: StaffAction,
    ) -> Result<String, NodeError> {
        let by_cert = client_cert_sha256.filter(|fp| {
            self.config
                .tls
                .as_ref()
                .is_some_and(|t| t.event_readers.iter().any(|r| r == *fp))
        });
        if let Some(fp) = by_cert {
            return Ok(format!("certificate {}", hex::encode(fp)));
        }
        if staff_request.is_empty() || self.staff_gate.is_none() {
            return Err(NodeError::ReaderUnauthenticated);
        }
        let v = self.staff_check(staff_request, action, self.now())?;
        Ok(format!("staff {}", v.staff_id))
    }

    fn approved(&self, s: &RecoverySession, now: u64) -> bool {
        s.bank_approval
            .as_deref()
            .is_some_and(|b| approval_live(b, now))
    }

    /// `ListRecoveries`: live sessions on this node.
    pub async fn staff_list(&self, request: &[u8]) -> Result<Vec<RecoverySession>, NodeError> {
        let now = self.now();
        self.staff_check(request, StaffAction::ListRecoveries, now)?;
        // The nonce is spent: make that durable before answering.
        self.commit(Vec::new()).await?;
        let mut out: Vec<RecoverySession> = self
            .recovery()
            .sessions(usize::MAX)?
            .into_iter()
            .map(|s| s.session)
            .filter(|s| s.is_live(now))
            .take(MAX_LISTED_RECOVERIES)
            .collect();
        out.sort_by_key(|s| s.opened_at);
        Ok(out)
    }

    /// `ApproveRecovery`.
    pub async fn staff_approve(&self, request: &[u8]) -> Result<ApprovalState, NodeError> {
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let v = self.staff_check(request, StaffAction::ApproveRecovery, now)?;
        let bank = self.bank()?.clone();
        let bank_key = self
            .bank_key
            .as_ref()
            .ok_or_else(|| NodeError::Internal("no bank approval key".into()))?;
        let mut st: StoredSession = self.recovery().load_session(&v.request.target)?;
        // An expired approval's approvers do not carry over: renewing it needs the whole policy
        // again (two new approvals under "four eyes"), not one click.
        if st
            .session
            .bank_approval
            .as_deref()
            .is_some_and(|a| !approval_live(a, now))
        {
            st.session.bank_approval = None;
            st.session.approvals.clear();
        }
        let required = self.approvals_required();
        let added = st.session.add_approval(&v.staff_id, required, now)?;
        let mut events = Vec::new();
        let count = st.session.approvals.len();
        if added {
            events.push(self.record(
                now,
                "recovery_approved",
                &st.session.wallet_id,
                &st.session.id,
                &format!("staff {} ({count} of {required} approvals)", v.staff_id),
            )?);
        }
        let holds = count >= required as usize;
        if holds && !self.approved(&st.session, now) {
            let r = st
                .session
                .session_key()
                .ok_or_else(|| NodeError::Internal("stored session key".into()))?;
            let approval = Signed::sign(
                BankApproval {
                    bank_node_id: self.identity.node_id().to_owned(),
                    wallet_id: st.session.wallet_id.clone(),
                    session_key: r,
                    issued_at: now,
                    expires_at: now.saturating_add(bank.approval_ttl_secs),
                    approvers: st.session.approvals.clone(),
                },
                &bank_key.signing_key(),
            )
            .encode();
            st.session.bank_approval = Some(approval);
            tracing::info!(session = %st.session.id, approvers = count, "bank approval signed");
        }
        self.recovery().save_session(&st)?;
        self.commit(events).await?;
        Ok(ApprovalState {
            approvers: st.session.approvals.clone(),
            approvals_required: required,
            bank_approval: if holds {
                st.session.bank_approval
            } else {
                None
            },
        })
    }

    /// Staff `CancelRecovery`: cancels the bank's session and returns a `BankCancellation` for the
    /// other trustees, naming this session and when it opened. Asking again for a session already
    /// cancelled re-issues the statement.
    pub async fn staff_cancel(&self, request: &[u8]) -> Result<Vec<u8>, NodeError> {
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let v = self.staff_check(request, StaffAction::CancelRecovery, now)?;
        let bank_key = self
            .bank_key
            .as_ref()
            .ok_or_else(|| NodeError::Internal("no bank approval key".into()))?;
        let mut st = self.recovery().load_session(&v.request.target)?;
        let mut events = Vec::new();
        if !matches!(st.session.state, SessionState::Cancelled { .. }) {
            let by = Canceller::Bank {
                staff_id: v.staff_id.clone(),
                bank_session_id: st.session.id.clone(),
            };
            events.push(self.recovery().cancel_session(&mut st, by, now)?);
        }
        let r = st
            .session
            .session_key()
            .ok_or_else(|| NodeError::Internal("stored session key".into()))?;
        let cancellation = Signed::sign(
            BankCancellation {
                bank_node_id: self.identity.node_id().to_owned(),
                wallet_id: st.session.wallet_id.clone(),
                session_key: r,
                session_id: st.session.id.clone(),
                session_opened_at: st.session.opened_at,
                staff_id: v.staff_id,
                issued_at: now,
            },
            &bank_key.signing_key(),
        )
        .encode();
        self.commit(events).await?;
        tracing::info!(session = %st.session.id, "recovery cancelled by bank staff");
        Ok(cancellation)
    }

    /// `GetApproval(wallet, R)` with a wait: while the approval is pending, answers as soon as
    /// it is given (or the session is cancelled or ends), at the latest after `wait`. The
    /// owner's app then needs no polling interval: staff approve and the release follows.
    pub async fn await_approval(
        &self,
        wallet_id: &WalletId,
        r: &PublicKey,
        wait: std::time::Duration,
    ) -> Result<Vec<u8>, NodeError> {
        self.hold(wallet_id.as_str(), wait, || {
            match self.get_approval(wallet_id, r) {
                pending @ Err(NodeError::AwaitingApproval { .. }) => Look::Pending(pending, None),
                answer => Look::Done(answer),
            }
        })
        .await
    }

    /// `GetApproval(wallet, R)`: the stored, unexpired approval of the bank's session.
    pub fn get_approval(&self, wallet_id: &WalletId, r: &PublicKey) -> Result<Vec<u8>, NodeError> {
        let now = self.now();
        // Several sessions may carry this R (a retried open): the approved one, else the newest.
        let mut of_r: Vec<StoredSession> = self
            .recovery()
            .sessions_for_wallet(wallet_id.as_str())?
            .into_iter()
            .filter(|s| s.session.session_key().as_ref() == Some(r))
            .collect();
        of_r.sort_by_key(|s| (s.session.bank_approval.is_some(), s.session.opened_at));
        let st = of_r.pop().ok_or(NodeError::SessionNotFound)?;
        if let SessionState::Cancelled { by, .. } = &st.session.state {
            return Err(SessionError::Cancelled { by: by.clone() }.into());
        }
        if st.session.is_expired(now) {
            return Err(SessionError::Expired {
                expires_at: st.session.expires_at,
            }
            .into());
        }
        match st.session.bank_approval {
            Some(a) if approval_live(&a, now) => Ok(a),
            _ => Err(NodeError::AwaitingApproval {
                approvers: st.session.approvals.len(),
                required: self.approvals_required(),
            }),
        }
    }
}
