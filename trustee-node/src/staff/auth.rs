//! Staff request authentication on the bank node: signature by a configured staff key with the
//! role for the action, addressed to this node, fresh, and never seen before.

use dlocker_proto::statement::{
    Signed, StaffAction, StaffAdminRequest, StaffRequest, StatementError,
};
use k256::PublicKey;
use serde::{Deserialize, Serialize};

use crate::db::Database;
pub use crate::db::STAFF_NONCES_TREE;

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    /// List recoveries.
    Viewer,
    /// Approve recoveries (implies viewer).
    Approver,
    /// Cancel recoveries (implies viewer).
    Canceller,
    /// Document locker operator: approve and suspend issuers and requesters (implies viewer).
    Operator,
    /// Staff administrator: list and change the staff and the approval policy with signed
    /// staff-admin requests (implies viewer).
    Admin,
}

impl StaffRole {
    /// The role's name in the config and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Approver => "approver",
            Self::Canceller => "canceller",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl StaffRole {
    fn permits(self, action: StaffAction) -> bool {
        matches!(
            (self, action),
            (
                _,
                StaffAction::ListRecoveries
                    | StaffAction::ListPasskeyResets
                    | StaffAction::ListRegistry
                    | StaffAction::WatchEvents
            ) | (
                Self::Approver,
                StaffAction::ApproveRecovery | StaffAction::ApprovePasskeyReset
            ) | (Self::Canceller, StaffAction::CancelRecovery)
                | (
                    Self::Admin,
                    StaffAction::ListStaff | StaffAction::ManageStaff
                )
                | (
                    Self::Operator,
                    StaffAction::ApproveIssuer
                        | StaffAction::SuspendIssuer
                        | StaffAction::ApproveRequester
                        | StaffAction::SuspendRequester
                )
        )
    }
}

/// A staff member from the bank config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Staff id (appears in approvals and audit).
    pub id: String,
    /// Their request-signing key.
    pub public_key: PublicKey,
    /// Their roles.
    pub roles: Vec<StaffRole>,
}

/// Why a staff request was refused.
#[derive(Debug, thiserror::Error)]
pub enum StaffAuthError {
    /// Not a valid signed statement.
    #[error("staff request is malformed or its signature is invalid")]
    Invalid,
    /// Signed by a key not in the staff list.
    #[error("staff request is signed by an unknown key")]
    UnknownStaff,
    /// The staff member lacks the role.
    #[error("staff member {staff_id} may not {action}")]
    Forbidden {
        /// Who.
        staff_id: String,
        /// What.
        action: &'static str,
    },
    /// Signed for another action than the RPC called.
    #[error("staff request is for {got}, not {expected}")]
    WrongAction {
        /// Expected.
        expected: &'static str,
        /// Found.
        got: &'static str,
    },
    /// Addressed to another node.
    #[error("staff request is addressed to another bank node")]
    WrongNode,
    /// Outside the allowed clock skew.
    #[error(
        "staff request timestamp is outside the allowed window of {skew_secs} s; check the clock \
            and sign a new request"
    )]
    Stale {
        /// The window.
        skew_secs: u64,
    },
    /// The nonce was used before.
    #[error("staff request was already used (replay rejected); sign a new request")]
    Replayed,
    /// Storage failed.
    #[error("staff nonce storage: {0}")]
    Storage(#[from] crate::db::EngineError),
}

fn decode_error(e: StatementError) -> StaffAuthError {
    match e {
        StatementError::UntrustedSigner => StaffAuthError::UnknownStaff,
        _ => StaffAuthError::Invalid,
    }
}

/// A staff request that passed every check.
#[derive(Debug)]
pub struct VerifiedStaffRequest {
    /// The staff member.
    pub staff_id: String,
    /// What they asked.
    pub request: StaffRequest,
}

/// Checks staff requests.
#[derive(Debug)]
pub struct StaffGate {
    // Replaced whole on a config reload (SIGHUP); a request is checked against one snapshot.
    staff: std::sync::RwLock<Vec<StaffMember>>,
    node_id: String,
    skew_secs: u64,
    db: Database,
}

impl StaffGate {
    /// A gate over `staff` for the bank node `node_id`.
    pub fn new(
        db: &Database,
        staff: Vec<StaffMember>,
        node_id: String,
        skew_secs: u64,
    ) -> Result<Self, StaffAuthError> {
        Ok(Self {
            staff: std::sync::RwLock::new(staff),
            node_id,
            skew_secs,
            db: db.clone(),
        })
    }

    /// The staff list now.
    pub fn staff(&self) -> Vec<StaffMember> {
        // A poisoned lock still holds a whole list (it is only ever replaced whole).
        self.staff
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the staff list (config reload); requests checked from now on use it.
    pub fn replace_staff(&self, staff: Vec<StaffMember>) {
        *self
            .staff
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = staff;
    }

    /// Verifies `bytes` as a request for `action` and consumes its nonce (durably: the caller
    /// flushes before acting).
    pub fn check(
        &self,
        bytes: &[u8],
        action: StaffAction,
        now: u64,
    ) -> Result<VerifiedStaffRequest, StaffAuthError> {
        let signed = Signed::<StaffRequest>::decode(bytes).map_err(decode_error)?;
        let req = signed.body().clone();
        if req.action != action {
            return Err(StaffAuthError::WrongAction {
                expected: action.name(),
                got: req.action.name(),
            });
        }
        let staff_id = self.authorize(
            signed.signer(),
            action,
            &req.node_id,
            req.timestamp,
            req.nonce,
            now,
        )?;
        Ok(VerifiedStaffRequest {
            staff_id,
            request: req,
        })
    }

    /// Verifies `bytes` as a staff-admin request (role `admin`) and consumes its nonce.
    pub fn check_admin(
        &self,
        bytes: &[u8],
        now: u64,
    ) -> Result<(String, StaffAdminRequest), StaffAuthError> {
        let signed = Signed::<StaffAdminRequest>::decode(bytes).map_err(decode_error)?;
        let req = signed.body().clone();
        let staff_id = self.authorize(
            signed.signer(),
            req.change.action(),
            &req.node_id,
            req.timestamp,
            req.nonce,
            now,
        )?;
        Ok((staff_id, req))
    }

    // Signer known, role permits, this node, fresh, nonce unused (then spent). Returns the id.
    fn authorize(
        &self,
        signer: &PublicKey,
        action: StaffAction,
        node_id: &str,
        timestamp: u64,
        nonce: [u8; 16],
        now: u64,
    ) -> Result<String, StaffAuthError> {
        let member = self
            .staff()
            .into_iter()
            .find(|m| m.public_key == *signer)
            .ok_or(StaffAuthError::UnknownStaff)?;
        if !member.roles.iter().any(|r| r.permits(action)) {
            return Err(StaffAuthError::Forbidden {
                staff_id: member.id.clone(),
                action: action.name(),
            });
        }
        if node_id != self.node_id {
            return Err(StaffAuthError::WrongNode);
        }
        if timestamp.abs_diff(now) > self.skew_secs {
            return Err(StaffAuthError::Stale {
                skew_secs: self.skew_secs,
            });
        }
        // Atomic insert-if-absent: two concurrent uses of one nonce cannot both pass.
        let fresh = self.db.claim_staff_nonce(&nonce, timestamp)?;
        if !fresh {
            return Err(StaffAuthError::Replayed);
        }
        self.prune(now)?;
        Ok(member.id)
    }

    // Nonces older than twice the window can never be replayed (the timestamp check refuses
    // them first), so they are dropped to keep the tree small.
    fn prune(&self, now: u64) -> Result<(), StaffAuthError> {
        let horizon = now.saturating_sub(2 * self.skew_secs);
        Ok(self.db.prune_staff_nonces(horizon)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;
    use k256::elliptic_curve::Generate;

    fn req(key: &SigningKey, node: &str, action: StaffAction, ts: u64, nonce: u8) -> Vec<u8> {
        Signed::sign(
            StaffRequest {
                node_id: node.into(),
                action,
                target: "s1".into(),
                timestamp: ts,
                nonce: [nonce; 16],
            },
            key,
        )
        .encode()
    }

    #[test]
    fn checks_role_node_time_and_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Database::open(dir.path()).expect("db");
        let alice = SigningKey::generate_from_rng(&mut rand::rng());
        let viewer = SigningKey::generate_from_rng(&mut rand::rng());
        let gate = StaffGate::new(
            &db,
            vec![
                StaffMember {
                    id: "alice".into(),
                    public_key: PublicKey::from(alice.verifying_key()),
                    roles: vec![StaffRole::Approver],
                },
                StaffMember {
                    id: "vic".into(),
                    public_key: PublicKey::from(viewer.verifying_key()),
                    roles: vec![StaffRole::Viewer],
                },
            ],
            "bank".into(),
            300,
        )
        .expect("gate");
        let ok = req(&alice, "bank", StaffAction::ApproveRecovery, 1000, 1);
        assert_eq!(
            gate.check(&ok, StaffAction::ApproveRecovery, 1000)
                .expect("ok")
                .staff_id,
            "alice"
        );
        assert!(matches!(
            gate.check(&ok, StaffAction::ApproveRecovery, 1001),
            Err(StaffAuthError::Replayed)
        ));
        assert!(matches!(
            gate.check(
                &req(&viewer, "bank", StaffAction::ApproveRecovery, 1000, 2),
                StaffAction::ApproveRecovery,
                1000
            ),
            Err(StaffAuthError::Forbidden { .. })
        ));
        assert!(matches!(
            gate.check(
                &req(&alice, "other", StaffAction::ApproveRecovery, 1000, 3),
                StaffAction::ApproveRecovery,
                1000
            ),
            Err(StaffAuthError::WrongNode)
        ));
        assert!(matches!(
            gate.check(
                &req(&alice, "bank", StaffAction::ApproveRecovery, 100, 4),
                StaffAction::ApproveRecovery,
                1000
            ),
            Err(StaffAuthError::Stale { .. })
        ));
        let stranger = SigningKey::generate_from_rng(&mut rand::rng());
        assert!(matches!(
            gate.check(
                &req(&stranger, "bank", StaffAction::ApproveRecovery, 1000, 5),
                StaffAction::ApproveRecovery,
                1000
            ),
            Err(StaffAuthError::UnknownStaff)
        ));
        assert!(matches!(
            gate.check(
                &req(&alice, "bank", StaffAction::ApproveRecovery, 1000, 6),
                StaffAction::CancelRecovery,
                1000
            ),
            Err(StaffAuthError::WrongAction { .. })
        ));
    }
}
