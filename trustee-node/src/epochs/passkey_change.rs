//! Passkey change: the owner replaces the wallet's credential at this trustee
//! (`docs/protocol.md` §13a).
//!
//! `BeginEpochAction(CHANGE_PASSKEY)` hands out a nonce, the request options naming the current
//! credential and a creation-options template for the new one (excluding the current one). The
//! client registers the new credential over the one-touch challenge (action change-passkey,
//! empty `authorized`) and has the CURRENT credential assert over the same nonces with the new
//! credential's fingerprint as `authorized`: two touches, whatever the number of trustees. The
//! node verifies both — the registration with webauthn-rs exactly as at backup, the assertion
//! against the stored credential — and swaps the stored credential. From then on every owner
//! ceremony here verifies with the new credential only.
//!
//! A retry at a trustee that missed the change carries, instead of the registration, the new
//! credential as a trustee that changed holds it (`Passkey` JSON): the current credential's
//! assertion covers its fingerprint, so the node installs exactly the credential the owner named
//! (the same rule as a trustee joining a wallet at a rotation).

use super::EpochOps;
use crate::db::Batch;
use crate::epochs::state::{EpochError, EpochState};
use crate::epochs::{MAX_PASSKEY_JSON_BYTES, OwnerAssertion};
use crate::error::NodeError;
use crate::owner_touch::{VerifiedTouch, passkey_fingerprint};
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::owner_challenge::OwnerAction;
use webauthn_rs::prelude::{CreationChallengeResponse, Passkey, PasskeyRegistration};

/// The new credential of a `ChangePasskey` request.
#[derive(Debug, Clone)]
pub enum NewCredential {
    /// Its registration (`RegisterPublicKeyCredential` JSON) over the change's challenge.
    Registration(String),
    /// The credential a trustee that changed already holds (`Passkey` JSON): a retry.
    Passkey(String),
}

/// `ChangePasskey`, parsed.
#[derive(Debug, Clone)]
pub struct ChangePasskey {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The current credential's assertion.
    pub owner: Option<OwnerAssertion>,
    /// The new credential.
    pub new_credential: Option<NewCredential>,
}

/// The audit entry's kind for a passkey change.
pub const PASSKEY_CHANGED: &str = "passkey_changed";

fn internal(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what}: {e}"))
}

impl EpochOps<'_> {
    /// The registration ceremony of a new credential for `wallet_id`, excluding `current`. Its
    /// state holds nothing random but the challenge, which the one-touch check replaces: the same
    /// call at `BeginEpochAction` (for the options) and at `ChangePasskey` (for the state)
    /// describes the same ceremony, so nothing is stored between them.
    pub(crate) fn start_passkey_change(
        &self,
        wallet_id: &WalletId,
        current: &Passkey,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), NodeError> {
        self.webauthn
            .start_passkey_registration(
                crate::enrollment::user_handle(wallet_id),
                wallet_id.as_str(),
                wallet_id.as_str(),
                Some(vec![current.cred_id().clone()]),
            )
            .map_err(|e| internal("start passkey registration", e))
    }

    /// Verifies a new credential's registration (`credential_json`) over the one-touch challenge
    /// of `action` (nothing authorized, `nonces`) against the ceremony
    /// [`Self::start_passkey_change`] describes; spends nothing. A change and a reset share it.
    pub(crate) fn verify_new_credential(
        &self,
        wallet_id: &WalletId,
        current: &Passkey,
        action: OwnerAction,
        nonces: Vec<dlocker_proto::owner_challenge::TrusteeNonce>,
        credential_json: &str,
    ) -> Result<VerifiedTouch<Passkey>, NodeError> {
        let (_, registration) = self.start_passkey_change(wallet_id, current)?;
        let state_json = serde_json::to_string(&registration)
            .map_err(|e| internal("serialise registration state", e))?;
        self.owner_touch().verify_owner_registration(
            wallet_id.as_str(),
            action,
            b"",
            nonces,
            credential_json,
            &state_json,
        )
    }

    /// The wallet's state when its credential is to be replaced (a change or a reset): held
    /// here, and not only through a staged epoch this node is joining.
    pub(crate) async fn credential_swap_state(
        &self,
        wallet: &str,
        now: u64,
    ) -> Result<EpochState, NodeError> {
        let state = self
            .expire_if_due(wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        if matches!(state, EpochState::Joining { .. }) {
            return Err(EpochError::PasskeyChangeWhileJoining.into());
        }
        Ok(state)
    }

    /// `ChangePasskey`: replaces the wallet's credential, authorized by the current one.
    /// Returns the new credential's fingerprint.
    pub async fn change_passkey(&self, req: ChangePasskey) -> Result<[u8; 32], NodeError> {
        let wallet = req.wallet_id.as_str();
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let state = self.credential_swap_state(wallet, now).await?;
        let owner = req.owner.ok_or(EpochError::OwnerAssertionRequired {
            action: "a passkey change",
        })?;
        let current = self.owner_passkey(wallet, &state)?;
        let new = match req.new_credential {
            Some(NewCredential::Registration(json)) => {
                self.verify_new_credential(
                    &req.wallet_id,
                    &current,
                    OwnerAction::ChangePasskey,
                    owner.nonces.clone(),
                    &json,
                )?
                .value
            }
            Some(NewCredential::Passkey(json)) => {
                if json.len() > MAX_PASSKEY_JSON_BYTES {
                    return Err(NodeError::invalid(
                        "passkey_json",
                        format!("at most {MAX_PASSKEY_JSON_BYTES} bytes"),
                    ));
                }
                serde_json::from_str::<Passkey>(&json).map_err(|_| {
                    NodeError::invalid("passkey_json", "not a webauthn Passkey (JSON)")
                })?
            }
            None => {
                return Err(NodeError::invalid(
                    "new_credential",
                    "the new credential's registration or, on a retry, its passkey JSON",
                ));
            }
        };
        let old_fp = passkey_fingerprint(&current)?;
        let new_fp = passkey_fingerprint(&new)?;
        // The current credential names the new one: its fingerprint is what the touch authorizes.
        let touch = self.owner_touch().verify_owner_assertion(
            wallet,
            OwnerAction::ChangePasskey,
            &new_fp,
            owner.nonces.clone(),
            &owner.assertion_json,
            &current,
        )?;
        self.owner_touch().spend_nonce(&touch)?;
        let mut batch = Batch::default();
        batch.put_passkey_json(
            wallet,
            serde_json::to_vec(&new).map_err(|e| internal("serialise passkey", e))?,
        );
        self.apply(&batch)?;
        let ev = self.record(
            now,
            PASSKEY_CHANGED,
            wallet,
            "",
            &format!(
                "credential {} replaced by {} at the owner's request",
                &hex::encode(old_fp)[..12],
                &hex::encode(new_fp)[..12]
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), "passkey changed");
        Ok(new_fp)
    }
}
