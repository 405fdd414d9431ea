//! Ceremony state the wallet app saves between steps, so a ceremony survives the app being
//! killed: serialised, then sealed whole (AES-256-GCM, [`dlocker_proto::client_state`]) under a
//! key the app keeps in the device keystore ([`StateKey`]). To the app it is an opaque blob:
//! store it, replace it at the next checkpoint, hand the last one back to resume.
//!
//! The recovery's state holds the new device's session secret `R` (what the trustees seal the
//! shares to), so it is a secret; sealed, it is safe in ordinary app storage.

use crate::recover::{RecoveryHandle, RecoveryStep};
use dlocker_proto::client_state::{self, StateError, StateKey, StateKind};
use k256::SecretKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Bumped when the serialised layout changes incompatibly; older states are refused with a
/// clear error rather than misread.
const LAYOUT: u32 = 1;

/// One session of a saved recovery that takes part in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedSession {
    pub(crate) name: String,
    pub(crate) node_id: String,
    pub(crate) session_id: String,
    pub(crate) release_not_before: u64,
    pub(crate) staged: bool,
    pub(crate) authenticated: bool,
    /// The session's owner nonce (hex), for a resumed owner authentication.
    pub(crate) nonce: String,
    pub(crate) request_options_json: String,
}

/// A recovery between two steps.
#[derive(Serialize, Deserialize)]
pub(crate) struct RecoveryState {
    pub(crate) wallet_id: String,
    /// Every session opened (what a cancel needs).
    pub(crate) handle: RecoveryHandle,
    /// `R`'s secret key, hex.
    pub(crate) session_secret: Zeroizing<String>,
    /// The manifest chosen when the sessions opened, canonical encoding, hex.
    pub(crate) manifest: String,
    pub(crate) step: RecoveryStep,
    /// The sessions taking part (in the chosen manifest, not failed).
    pub(crate) sessions: Vec<SavedSession>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    layout: u32,
    state: T,
}

impl RecoveryState {
    pub(crate) fn seal(&self, key: &StateKey) -> Vec<u8> {
        seal_json(key, StateKind::Recovery, self)
    }

    pub(crate) fn open(saved: &[u8], key: &StateKey) -> Result<Self, SavedStateError> {
        open_json(key, StateKind::Recovery, saved)
    }

    pub(crate) fn session_secret(&self) -> Option<SecretKey> {
        let bytes = Zeroizing::new(hex::decode(self.session_secret.as_str()).ok()?);
        SecretKey::from_slice(&bytes).ok()
    }
}

/// Why a saved state could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedStateError {
    /// The seal did not open: another key, tampered bytes, another ceremony's state or an
    /// unknown format version.
    #[error(transparent)]
    Sealed(#[from] StateError),
    /// It opened but its content is not a state this build understands.
    #[error("saved state content: {0}")]
    Content(String),
}

pub(crate) fn seal_json<T: Serialize>(key: &StateKey, kind: StateKind, state: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let json = Zeroizing::new(
        serde_json::to_vec(&Envelope {
            layout: LAYOUT,
            state,
        })
        .unwrap_or_default(),
    );
    client_state::seal(key, kind, &json)
}

pub(crate) fn open_json<T: for<'de> Deserialize<'de>>(
    key: &StateKey,
    kind: StateKind,
    saved: &[u8],
) -> Result<T, SavedStateError> {
    let plain = client_state::open(key, kind, saved)?;
    let env: Envelope<T> = serde_json::from_slice(plain.expose())
        // serde's message names the field, never its value.
        .map_err(|e| SavedStateError::Content(format!("not readable: {e}")))?;
    if env.layout != LAYOUT {
        return Err(SavedStateError::Content(format!(
            "layout {} (this build reads {LAYOUT})",
            env.layout
        )));
    }
    Ok(env.state)
}

/// The [`RecoveryHandle`] inside a saved recovery state: what
/// [`crate::protocol::cancel_recovery`] needs to close the recovery's sessions without resuming
/// it.
pub fn saved_recovery_handle(
    saved: &[u8],
    key: &StateKey,
) -> Result<RecoveryHandle, SavedStateError> {
    RecoveryState::open(saved, key).map(|s| s.handle)
}
