//! One passkey touch for all trustees: the owner-ceremony challenge.
//!
//! Every owner ceremony (backup, recovery, cancel, epoch actions, the document locker's holder
//! actions) involves several trustees, and each must see a fresh WebAuthn response bound to what
//! it authorizes. Instead of one challenge per trustee (n touches), each trustee issues a fresh,
//! single-use 32-byte nonce for `(wallet, action)`, and the client hashes
//!
//! ```text
//! challenge = SHA-256( "dlocker/owner-challenge/v1"
//!                      ‖ u8 action ‖ str wallet_id ‖ bytes authorized
//!                      ‖ u32 count ‖ count × (str node_id ‖ fixed32 nonce) )
//! ```
//!
//! (the protocol codec: `str`/`bytes` are `u32`-length-prefixed) into ONE WebAuthn challenge. The
//! authenticator is asked once; the same response goes to every trustee, and each recomputes the
//! challenge from the request it received, finds its own `(node_id, nonce)` in the list, checks
//! the nonce is its own, unused and unexpired, and verifies the response with webauthn-rs.
//!
//! `authorized` is what the touch authorizes, fixed by the action (see [`OwnerAction`]): a
//! manifest hash, the new device's session key `R`, or a locker key. A response made for one
//! `R`, wallet, action or manifest therefore fails everywhere else. The list is in the order the
//! client ran the ceremony (manifest order); node ids are distinct.

use crate::codec::Writer;
use crate::labels;
use sha2::{Digest, Sha256};

/// Length of a trustee's nonce.
pub const NONCE_LEN: usize = 32;
/// Most entries in one challenge (one per trustee; a rotation may span two trustee sets).
pub const MAX_ENTRIES: usize = 2 * crate::MAX_TRUSTEES;
/// Largest `authorized` value (a session key is 33 bytes, a hash 32, a JWK thumbprint input less).
pub const MAX_AUTHORIZED_LEN: usize = 512;

/// What an owner's touch authorizes. The byte is part of the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OwnerAction {
    /// Enrollment (one passkey registered at every trustee); authorizes the manifest hash.
    Backup = 1,
    /// Owner authentication of a recovery session; authorizes `R` (33-byte SEC1).
    Recover = 2,
    /// Owner cancellation of the recovery towards `R`; authorizes `R`.
    Cancel = 3,
    /// Staging epoch e+1; authorizes the successor manifest hash ‖ the wallet credential's
    /// fingerprint (so a trustee new to the wallet learns the owner's credential).
    Stage = 4,
    /// Committing epoch e+1 (and retiring the trustees that leave); authorizes its manifest hash.
    Commit = 5,
    /// Abandoning a staged epoch; authorizes its manifest hash.
    Abandon = 6,
    /// Binding a wallet key at the document locker; authorizes the holder key (SEC1).
    HolderRegister = 7,
    /// Re-issuing the holder's documents to a new key; authorizes the new key (SEC1).
    Reissue = 8,
    /// Erasing the wallet at a trustee (every epoch, the credential, sessions, nonces);
    /// authorizes [`delete_authorized`]: empty for a plain delete, [`DELETE_WITH_DOCUMENTS`]
    /// when the document locker's holder is to be erased too.
    Delete = 9,
    /// Replacing the wallet's credential. Two responses over the same nonces: the NEW
    /// credential's registration authorizes nothing (empty), the CURRENT credential's assertion
    /// authorizes the new credential's fingerprint ([`credential_fingerprint`]).
    ChangePasskey = 10,
    /// Closing every open recovery session of the wallet at a trustee, whoever opened them
    /// (`Epochs.CancelAllRecoveries`); authorizes nothing more than the wallet (empty).
    CancelAll = 11,
    /// A bank-assisted passkey reset (`Epochs.ResetPasskey`, the passkey lost, `k` still held):
    /// the NEW credential's registration authorizes nothing (empty); the proof of knowledge of
    /// `k` ([`crate::reset_proof`]) binds a challenge of this action whose `authorized` is the new
    /// credential's fingerprint.
    ResetPasskey = 12,
}

impl OwnerAction {
    /// Every action, for tests and tables.
    pub const ALL: [OwnerAction; 12] = [
        Self::Backup,
        Self::Recover,
        Self::Cancel,
        Self::Stage,
        Self::Commit,
        Self::Abandon,
        Self::HolderRegister,
        Self::Reissue,
        Self::Delete,
        Self::ChangePasskey,
        Self::CancelAll,
        Self::ResetPasskey,
    ];

    /// The action's byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The action for a byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_u8() == v)
    }

    /// A short name for logs, errors and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Recover => "recover",
            Self::Cancel => "cancel",
            Self::Stage => "stage",
            Self::Commit => "commit",
            Self::Abandon => "abandon",
            Self::HolderRegister => "holder-register",
            Self::Reissue => "reissue",
            Self::Delete => "delete",
            Self::ChangePasskey => "change-passkey",
            Self::CancelAll => "cancel-all",
            Self::ResetPasskey => "reset-passkey",
        }
    }
}

impl std::fmt::Display for OwnerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One trustee's part of a ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrusteeNonce {
    /// The trustee's node id (32 lowercase hex characters).
    pub node_id: String,
    /// The nonce it issued.
    pub nonce: [u8; NONCE_LEN],
}

impl TrusteeNonce {
    /// A `(node id, nonce)` pair as it comes off the wire: a nonce of the wrong length is an
    /// error, not a panic (the node id is checked by [`OwnerChallenge::new`]).
    pub fn from_wire(node_id: &str, nonce: &[u8]) -> Result<Self, ChallengeError> {
        Ok(Self {
            node_id: node_id.to_owned(),
            nonce: nonce
                .try_into()
                .map_err(|_| ChallengeError::NonceLength(node_id.to_owned()))?,
        })
    }
}

/// Why a challenge cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// No trustee, or more than [`MAX_ENTRIES`].
    #[error("a challenge lists 1 to {MAX_ENTRIES} trustees, not {0}")]
    Count(usize),
    /// A node id is not 32 lowercase hex characters.
    #[error("node id {0:?} is not 32 lowercase hex characters")]
    NodeId(String),
    /// A nonce is not 32 bytes.
    #[error("the nonce of node {0} is not {NONCE_LEN} bytes")]
    NonceLength(String),
    /// A node id appears twice.
    #[error("node {0} appears twice")]
    Duplicate(String),
    /// `authorized` is longer than [`MAX_AUTHORIZED_LEN`].
    #[error("the authorized value is longer than {MAX_AUTHORIZED_LEN} bytes")]
    AuthorizedTooLong,
}

/// The inputs of one ceremony's challenge, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChallenge {
    action: OwnerAction,
    wallet_id: String,
    authorized: Vec<u8>,
    nonces: Vec<TrusteeNonce>,
}

fn valid_node_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl OwnerChallenge {
    /// Checks the inputs: 1..=[`MAX_ENTRIES`] distinct, well-formed node ids.
    pub fn new(
        action: OwnerAction,
        wallet_id: &str,
        authorized: &[u8],
        nonces: Vec<TrusteeNonce>,
    ) -> Result<Self, ChallengeError> {
        if nonces.is_empty() || nonces.len() > MAX_ENTRIES {
            return Err(ChallengeError::Count(nonces.len()));
        }
        if authorized.len() > MAX_AUTHORIZED_LEN {
            return Err(ChallengeError::AuthorizedTooLong);
        }
        for (i, n) in nonces.iter().enumerate() {
            if !valid_node_id(&n.node_id) {
                return Err(ChallengeError::NodeId(n.node_id.clone()));
            }
            if nonces[..i].iter().any(|m| m.node_id == n.node_id) {
                return Err(ChallengeError::Duplicate(n.node_id.clone()));
            }
        }
        Ok(Self {
            action,
            wallet_id: wallet_id.to_owned(),
            authorized: authorized.to_vec(),
            nonces,
        })
    }

    /// Like [`OwnerChallenge::new`], from `(node id, nonce bytes)` pairs as they come off the
    /// wire (a nonce of the wrong length is an error, not a panic).
    pub fn from_wire<'a>(
        action: OwnerAction,
        wallet_id: &str,
        authorized: &[u8],
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, ChallengeError> {
        let mut nonces = Vec::new();
        for (node_id, nonce) in pairs {
            if nonces.len() >= MAX_ENTRIES {
                return Err(ChallengeError::Count(MAX_ENTRIES + 1));
            }
            nonces.push(TrusteeNonce::from_wire(node_id, nonce)?);
        }
        Self::new(action, wallet_id, authorized, nonces)
    }

    /// The action.
    pub fn action(&self) -> OwnerAction {
        self.action
    }

    /// The wallet.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }

    /// What the touch authorizes.
    pub fn authorized(&self) -> &[u8] {
        &self.authorized
    }

    /// The trustees' nonces, in ceremony order.
    pub fn nonces(&self) -> &[TrusteeNonce] {
        &self.nonces
    }

    /// The nonce `node_id` contributed, if it is in the challenge.
    pub fn nonce_of(&self, node_id: &str) -> Option<&[u8; NONCE_LEN]> {
        self.nonces
            .iter()
            .find(|n| n.node_id == node_id)
            .map(|n| &n.nonce)
    }

    /// The canonical encoding that is hashed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(labels::OWNER_CHALLENGE)
            .u8(self.action.as_u8())
            .str(&self.wallet_id)
            .bytes(&self.authorized);
        // Bounded by MAX_ENTRIES in `new`.
        w.u32(self.nonces.len() as u32);
        for n in &self.nonces {
            w.str(&n.node_id).fixed(&n.nonce);
        }
        w.finish()
    }

    /// The WebAuthn challenge: SHA-256 of [`OwnerChallenge::encode`].
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}

/// `authorized` for [`OwnerAction::Stage`]: the successor manifest hash followed by the wallet
/// credential's fingerprint (see [`credential_fingerprint`]).
pub fn stage_authorized(manifest_hash: &[u8; 32], credential_fingerprint: &[u8; 32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(manifest_hash);
    v.extend_from_slice(credential_fingerprint);
    v
}

/// `authorized` for [`OwnerAction::Delete`] when the owner also erases the wallet's holder at the
/// document locker (its documents, consents, drafts and tasks).
pub const DELETE_WITH_DOCUMENTS: &[u8] = b"delete+documents";

/// `authorized` for [`OwnerAction::Delete`]: the owner's choice about the locker's documents is
/// part of the one touch, so nobody carrying the assertion can add or strip it.
pub fn delete_authorized(erase_documents: bool) -> &'static [u8] {
    if erase_documents {
        DELETE_WITH_DOCUMENTS
    } else {
        b""
    }
}

/// A WebAuthn credential's fingerprint: `SHA-256(label ‖ bytes credential_id ‖ bytes
/// cose_public_key)`. Lets every trustee of a wallet agree on its one credential without
/// trusting whoever carries it.
pub fn credential_fingerprint(credential_id: &[u8], cose_public_key: &[u8]) -> [u8; 32] {
    let mut w = Writer::new();
    w.fixed(labels::CREDENTIAL_FINGERPRINT)
        .bytes(credential_id)
        .bytes(cose_public_key);
    Sha256::digest(w.finish()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u8) -> TrusteeNonce {
        TrusteeNonce {
            node_id: format!("{:032x}", i),
            nonce: [i; NONCE_LEN],
        }
    }

    #[test]
    fn binds_every_input() {
        let base =
            OwnerChallenge::new(OwnerAction::Recover, "w", b"R", vec![n(1), n(2)]).expect("valid");
        let d = base.digest();
        let variants = [
            OwnerChallenge::new(OwnerAction::Cancel, "w", b"R", vec![n(1), n(2)]),
            OwnerChallenge::new(OwnerAction::Recover, "v", b"R", vec![n(1), n(2)]),
            OwnerChallenge::new(OwnerAction::Recover, "w", b"S", vec![n(1), n(2)]),
            OwnerChallenge::new(OwnerAction::Recover, "w", b"R", vec![n(2), n(1)]),
            OwnerChallenge::new(OwnerAction::Recover, "w", b"R", vec![n(1)]),
            OwnerChallenge::new(OwnerAction::Recover, "w", b"R", vec![n(1), n(3)]),
        ];
        for v in variants {
            assert_ne!(v.expect("valid").digest(), d);
        }
        // Length prefixes: moving a byte between wallet and authorized changes the digest.
        let a = OwnerChallenge::new(OwnerAction::Recover, "wR", b"", vec![n(1)]).expect("ok");
        let b = OwnerChallenge::new(OwnerAction::Recover, "w", b"R", vec![n(1)]).expect("ok");
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn a_delete_touch_covers_the_documents_choice() {
        assert_eq!(delete_authorized(false), b"");
        assert_eq!(delete_authorized(true), b"delete+documents");
        let d = |docs| {
            OwnerChallenge::new(
                OwnerAction::Delete,
                "w",
                delete_authorized(docs),
                vec![n(1)],
            )
            .expect("valid")
            .digest()
        };
        assert_ne!(d(false), d(true));
    }

    #[test]
    fn refuses_malformed_lists() {
        let e = |v: Vec<TrusteeNonce>| OwnerChallenge::new(OwnerAction::Backup, "w", b"", v);
        assert_eq!(e(vec![]), Err(ChallengeError::Count(0)));
        assert!(matches!(
            e(vec![n(1), n(1)]),
            Err(ChallengeError::Duplicate(_))
        ));
        let mut bad = n(1);
        bad.node_id = "ABC".into();
        assert!(matches!(e(vec![bad]), Err(ChallengeError::NodeId(_))));
        let too_many = (0..=MAX_ENTRIES as u8).map(n).collect();
        assert!(matches!(e(too_many), Err(ChallengeError::Count(_))));
        let short: &[u8] = &[0u8; 31];
        let id = format!("{:032x}", 1);
        assert!(matches!(
            OwnerChallenge::from_wire(OwnerAction::Backup, "w", b"", [(id.as_str(), short)]),
            Err(ChallengeError::NonceLength(_))
        ));
        assert_eq!(
            OwnerChallenge::new(OwnerAction::Backup, "w", &[0; 513], vec![n(1)]),
            Err(ChallengeError::AuthorizedTooLong)
        );
    }

    #[test]
    fn actions_round_trip() {
        for a in OwnerAction::ALL {
            assert_eq!(OwnerAction::from_u8(a.as_u8()), Some(a));
        }
        assert_eq!(OwnerAction::from_u8(0), None);
        assert_eq!(OwnerAction::from_u8(13), None);
    }
}
