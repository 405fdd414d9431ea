//! The one place a share is opened for release: given the [`ReleaseAuthorized`] proof, open the
//! sealed share, seal it to the session key `R` and sign the `ShareRelease`.
//!
//! Both release paths call [`release_share`]: `Recovery.ReleaseShare` (the active epoch) and
//! `Epochs.ReleaseStagedShare` (a staged epoch). The proof can only be made by
//! [`crate::recovery::session::RecoverySession::authorize_release`], after every release check
//! passed, and it names the wallet, the epoch and `R`; this function refuses a share of another
//! wallet or epoch.

use crate::at_rest::{self, ShareRecordId};
use crate::db::SESSIONS_TREE;
use crate::error::NodeError;
use crate::node::Node;
use crate::recovery::session::ReleaseAuthorized;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::ManifestHash;
use dlocker_proto::statement::{ShareRelease, Signed};
use sha2::{Digest, Sha256};

/// Which stored share is released (for the log line when its integrity check fails).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ShareSource {
    /// The active epoch's share, from the wallet tables.
    Active,
    /// A staged epoch's share.
    Staged,
}

/// The share to release, as stored.
pub(crate) struct StoredShare<'a> {
    /// The share sealed at rest.
    pub sealed_share: &'a [u8],
    /// Its epoch.
    pub epoch: u64,
    /// This node's share index.
    pub share_index: u16,
    /// The manifest the release names.
    pub manifest_hash: ManifestHash,
    /// Where it is stored.
    pub source: ShareSource,
}

/// What a release hands back: the share sealed to `R`, and the signed `ShareRelease`.
pub(crate) struct Release {
    /// `ShareEnvelope`, encoded.
    pub envelope: Vec<u8>,
    /// `Signed<ShareRelease>`, encoded.
    pub release: Vec<u8>,
}

/// Opens `share` and releases it to the session key named by `proof`.
pub(crate) fn release_share(
    node: &Node,
    proof: &ReleaseAuthorized,
    share: StoredShare<'_>,
    session_id: &str,
    now: u64,
) -> Result<Release, NodeError> {
    if proof.epoch != share.epoch {
        return Err(NodeError::Internal(format!(
            "release authorized for epoch {}, asked for epoch {}",
            proof.epoch, share.epoch
        )));
    }
    let wallet = proof.wallet_id();
    let r = proof.session_key().ok_or_else(|| {
        NodeError::Storage(crate::db::StoreError::Corrupt {
            tree: SESSIONS_TREE,
            reason: "session key".to_owned(),
        })
    })?;
    let id = ShareRecordId {
        node_id: node.identity.node_id(),
        wallet_id: wallet,
        epoch: share.epoch,
        share_index: share.share_index,
    };
    let opened = at_rest::open_share(&node.storage_key, &id, share.sealed_share).map_err(|_| {
        match share.source {
            ShareSource::Active => {
                tracing::error!(session = %session_id, "stored share failed its integrity check")
            }
            ShareSource::Staged => {
                tracing::error!(session = %session_id, "staged share failed its integrity check")
            }
        }
        NodeError::StoredShareCorrupt
    })?;
    let envelope = ShareEnvelope::seal(
        &opened,
        &EnvelopeContext {
            wallet_id: wallet,
            epoch: share.epoch,
            share_index: share.share_index,
            recipient: &r,
        },
    )
    .map_err(|e| NodeError::Internal(format!("seal share to R: {e}")))?
    .encode();
    let release = Signed::sign(
        ShareRelease {
            node_id: node.identity.node_id().to_owned(),
            wallet_id: wallet.to_owned(),
            epoch: share.epoch,
            share_index: share.share_index,
            manifest_hash: share.manifest_hash,
            session_key: r,
            envelope_hash: Sha256::digest(&envelope).into(),
            released_at: now,
        },
        &node.identity.signing_key(),
    )
    .encode();
    Ok(Release { envelope, release })
}
