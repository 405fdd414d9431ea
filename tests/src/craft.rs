//! Deposits built by hand from `dlocker-proto`, sent over raw gRPC.
//!
//! The SDK only ever sends good deposits. To prove a node rejects bad ones (a tampered share, an
//! envelope for someone else, commitments that do not match, an oversized blob, a broken
//! credential), a test builds the pieces itself and changes exactly one of them.

use crate::touch;
use dlocker_proto::blob;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::pb::{
    BeginEnrollmentRequest, FinishEnrollmentRequest, FinishEnrollmentResponse,
    GetBackupStatusRequest, GetBackupStatusResponse,
};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{self, Commitments, Share};
use dlocker_proto::statement::{Receipt, Signed};
use k256::PublicKey;
use tonic::transport::Channel;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The origin the nodes' default config allows (`[webauthn] origins`).
pub const ORIGIN: &str = touch::ORIGIN;

/// A complete, valid deposit for a set of trustees (index `i` of `keys` holds share `i + 1`;
/// trustee 0 is the bank).
pub struct Deposit {
    /// The wallet.
    pub wallet_id: String,
    /// The shared secret (the test keeps it to check things; a real client forgets it).
    pub k: SecretScalar,
    /// Share `i + 1` for trustee `i`.
    pub shares: Vec<Share>,
    /// Feldman commitments.
    pub commitments: Commitments,
    /// The manifest.
    pub manifest: Manifest,
    /// The encrypted wallet blob.
    pub blob: Vec<u8>,
    /// The trustees' identity keys.
    pub keys: Vec<PublicKey>,
}

/// A fresh wallet id that no other test uses.
pub fn wallet_id(prefix: &str) -> String {
    let r: u64 = rand::random();
    format!("{prefix}-{r:016x}")
}

impl Deposit {
    /// Splits a fresh secret `threshold`-of-`keys.len()`, encrypts `data`, builds the manifest.
    pub fn new(wallet_id: &str, keys: &[PublicKey], threshold: u16, data: &[u8]) -> Self {
        let k = SecretScalar::random();
        let (shares, commitments) =
            share::split(&k, usize::from(threshold), keys.len()).expect("split");
        let blob = blob::seal(&k, wallet_id, data);
        let manifest = Self::manifest_for(
            wallet_id,
            keys,
            threshold,
            commitments.clone(),
            blob::hash(&blob),
        );
        Self {
            wallet_id: wallet_id.to_owned(),
            k,
            shares,
            commitments,
            manifest,
            blob,
            keys: keys.to_vec(),
        }
    }

    /// A manifest for these trustees with the given commitments and blob hash.
    pub fn manifest_for(
        wallet_id: &str,
        keys: &[PublicKey],
        threshold: u16,
        commitments: Commitments,
        blob_hash: [u8; 32],
    ) -> Manifest {
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, pk)| TrusteeEntry {
                share_index: (i + 1) as u16,
                node_id: node_id(pk),
                public_key: *pk,
            })
            .collect();
        Manifest::new(ManifestParts {
            wallet_id: wallet_id.to_owned(),
            epoch: 1,
            threshold,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 0,
            blob_hash,
            created_at: dlocker_proto::time::unix_now(),
            previous: None,
        })
        .expect("valid manifest")
    }

    /// The manifest's canonical encoding.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        self.manifest.encode()
    }

    /// Share `i + 1` sealed to trustee `i`, as it must be.
    pub fn envelope(&self, i: usize) -> Vec<u8> {
        seal(
            &self.shares[i],
            &self.wallet_id,
            self.manifest.epoch(),
            &self.keys[i],
        )
    }

    /// The valid request parts for trustee `i`.
    pub fn parts(&self, i: usize) -> Parts {
        Parts {
            manifest: self.manifest_bytes(),
            envelope: self.envelope(i),
            blob: self.blob.clone(),
        }
    }
}

/// Seals `share` to `recipient` in the context `(wallet, epoch, share.index(), recipient)`.
pub fn seal(share: &Share, wallet_id: &str, epoch: u64, recipient: &PublicKey) -> Vec<u8> {
    let ctx = EnvelopeContext {
        wallet_id,
        epoch,
        share_index: share.index(),
        recipient,
    };
    ShareEnvelope::seal(share, &ctx).expect("seal").encode()
}

/// The deposit fields of a `FinishEnrollmentRequest`.
#[derive(Clone)]
pub struct Parts {
    /// Canonical manifest.
    pub manifest: Vec<u8>,
    /// Share envelope.
    pub envelope: Vec<u8>,
    /// Encrypted blob.
    pub blob: Vec<u8>,
}

/// A wallet owner with a software passkey (tests only).
pub struct Owner {
    passkey: SoftPasskey,
}

impl Default for Owner {
    fn default() -> Self {
        Self::new()
    }
}

impl Owner {
    /// A new owner with a fresh software passkey.
    pub fn new() -> Self {
        // `true`: claim user verification, as a platform authenticator with a PIN would.
        Self {
            passkey: SoftPasskey::new(true),
        }
    }

    /// `BeginEnrollment` then the one-touch registration with this node as the ceremony's only
    /// trustee, over `parts`' manifest: the ceremony id, the credential JSON and the nonces.
    pub async fn begin_and_register(
        &mut self,
        client: &mut TrusteeClient<Channel>,
        wallet_id: &str,
        parts: &Parts,
    ) -> (String, String, Vec<pb::TrusteeNonce>) {
        let info = client
            .get_info(pb::GetInfoRequest {})
            .await
            .unwrap_or_else(|s| panic!("GetInfo refused: {s:?}"))
            .into_inner();
        let begin = client
            .begin_enrollment(BeginEnrollmentRequest {
                wallet_id: wallet_id.to_owned(),
                user_name: "alice".into(),
                customer_reference: String::new(),
            })
            .await
            .unwrap_or_else(|s| panic!("BeginEnrollment refused: {s:?}"))
            .into_inner();
        // A test may send a manifest that does not decode; the node refuses it before the
        // passkey, so any hash will do then.
        let hash = Manifest::decode(&parts.manifest)
            .map(|m| m.hash().0)
            .unwrap_or_default();
        let mut nonces = touch::Nonces::default();
        nonces.push(&info.node_id, &begin.nonce);
        let challenge = nonces.challenge(OwnerAction::Backup, wallet_id, &hash);
        let credential =
            touch::register(&mut self.passkey, &begin.creation_options_json, &challenge);
        (begin.ceremony_id, credential, nonces.wire())
    }

    /// Begin and register, then the complete `FinishEnrollmentRequest` for `parts` (to send,
    /// and send again, as a client whose answer was lost would).
    pub async fn finish_request(
        &mut self,
        client: &mut TrusteeClient<Channel>,
        wallet_id: &str,
        parts: &Parts,
    ) -> FinishEnrollmentRequest {
        let (ceremony_id, credential_json, nonces) =
            self.begin_and_register(client, wallet_id, parts).await;
        FinishEnrollmentRequest {
            ceremony_id,
            credential_json,
            manifest_encoded: parts.manifest.clone(),
            share_envelope_encoded: parts.envelope.clone(),
            blob: parts.blob.clone(),
            nonces,
        }
    }

    /// A whole enrollment at one node: begin, register, finish with `parts`; the credential JSON
    /// passes through `edit_credential` first (identity for a good deposit).
    pub async fn enroll_with(
        &mut self,
        client: &mut TrusteeClient<Channel>,
        wallet_id: &str,
        parts: &Parts,
        edit_credential: impl FnOnce(String) -> String,
    ) -> Result<FinishEnrollmentResponse, tonic::Status> {
        let mut req = self.finish_request(client, wallet_id, parts).await;
        req.credential_json = edit_credential(req.credential_json);
        client
            .finish_enrollment(req)
            .await
            .map(tonic::Response::into_inner)
    }

    /// [`Owner::enroll_with`] with the credential untouched.
    pub async fn enroll(
        &mut self,
        client: &mut TrusteeClient<Channel>,
        wallet_id: &str,
        parts: &Parts,
    ) -> Result<FinishEnrollmentResponse, tonic::Status> {
        self.enroll_with(client, wallet_id, parts, |c| c).await
    }

    /// The software passkey (for a test's own ceremonies).
    pub fn passkey(&mut self) -> &mut SoftPasskey {
        &mut self.passkey
    }
}

/// `GetBackupStatus` for a wallet.
pub async fn status(
    client: &mut TrusteeClient<Channel>,
    wallet_id: &str,
) -> Result<GetBackupStatusResponse, tonic::Status> {
    client
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: wallet_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Decodes a receipt, requires it to be signed by `node_key`, and checks it is for `manifest`
/// and `share_index`.
pub fn check_receipt(
    bytes: &[u8],
    node_key: &PublicKey,
    manifest: &Manifest,
    share_index: u16,
) -> Receipt {
    let signed = Signed::<Receipt>::decode_trusted(bytes, &[*node_key])
        .expect("receipt signed by the node's key");
    let r = signed.body().clone();
    assert_eq!(r.node_id, node_id(node_key), "receipt names the node");
    assert_eq!(
        r.wallet_id,
        manifest.wallet_id(),
        "receipt names the wallet"
    );
    assert_eq!(r.epoch, manifest.epoch(), "receipt epoch");
    assert_eq!(r.share_index, share_index, "receipt share index");
    assert_eq!(r.manifest_hash, manifest.hash(), "receipt manifest hash");
    r
}
