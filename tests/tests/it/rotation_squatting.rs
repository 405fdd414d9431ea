//! No squatting on a wallet id, on real nodes: a stranger who knows a wallet id tries to make a
//! trustee that does not hold the wallet join it under a manifest, keys and a passkey of their
//! own, with "receipts" from keys they made up. Every variant is refused at the stage with
//! `PERMISSION_DENIED` and the check it failed (before the passkey answer is looked at), the
//! made-up commit finds nothing, the node still holds nothing, and the owner's later rotation to
//! that node succeeds and recovers.
//!
//! Nodes: bank, trustee-2, trustee-3 hold the owner's 2-of-3 epoch 1; trustee-4 (the target)
//! holds nothing; the owner then rotates to bank, trustee-2, trustee-4. Every node knows every
//! other node's identity key (`[epochs] known_trustee_keys`, set by the harness).

use dlocker_integration_tests::craft::seal;
use dlocker_integration_tests::recovery_cluster::Touch;
use dlocker_integration_tests::rotation::{RotationCluster, options, source};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::blob;
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestHash, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::{OwnerAction, stage_authorized};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share;
use dlocker_proto::statement::{CredentialAttestation, Signed, StageReceipt};
use dlocker_sdk::BackupPolicy;
use dlocker_sdk::protocol::rotate;
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::Generate;
use tonic::Code;

const OLD: [usize; 3] = [0, 1, 2];
const NEW: [usize; 3] = [0, 1, 3];
const TARGET: usize = 3;
const DATA: &[u8] = b"squatting: the owner's wallet, not the stranger's";

async fn epochs(rc: &RotationCluster, i: usize) -> EpochsClient<tonic::transport::Channel> {
    EpochsClient::new(rc.node(i).channel().await.expect("connect"))
}

async fn begin_stage(
    rc: &RotationCluster,
    i: usize,
    wallet: &str,
    hash: &ManifestHash,
) -> pb::BeginEpochActionResponse {
    epochs(rc, i)
        .await
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: wallet.into(),
            action: pb::EpochAction::Stage as i32,
            manifest_hash: hash.0.to_vec(),
        })
        .await
        .expect("BeginEpochAction(STAGE)")
        .into_inner()
}

/// The stranger's epoch 2 of `wallet`: 2-of-3 over a made-up bank key, the target and another
/// made-up key, succeeding the owner's real epoch 1 (its hash is no secret).
struct Squat {
    manifest: Manifest,
    envelope: Vec<u8>,
    blob: Vec<u8>,
    fakes: [SigningKey; 2],
}

impl Squat {
    fn new(wallet: &str, target: &PublicKey, previous: ManifestHash) -> Self {
        let fakes = [
            SigningKey::generate_from_rng(&mut rand::rng()),
            SigningKey::generate_from_rng(&mut rand::rng()),
        ];
        let keys = [
            PublicKey::from(fakes[0].verifying_key()),
            *target,
            PublicKey::from(fakes[1].verifying_key()),
        ];
        let k = SecretScalar::random();
        let (shares, commitments) = share::split(&k, 2, 3).expect("split");
        let blob = blob::seal(&k, wallet, b"the stranger's data");
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, pk)| TrusteeEntry {
                share_index: (i + 1) as u16,
                node_id: node_id(pk),
                public_key: *pk,
            })
            .collect();
        let manifest = Manifest::new(ManifestParts {
            wallet_id: wallet.into(),
            epoch: 2,
            threshold: 2,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 0,
            blob_hash: blob::hash(&blob),
            created_at: dlocker_proto::time::unix_now(),
            previous: Some(previous),
        })
        .expect("manifest");
        let envelope = seal(&shares[1], wallet, 2, target);
        Self {
            manifest,
            envelope,
            blob,
            fakes,
        }
    }

    fn request(&self, joining: pb::JoiningOwner) -> pb::StageEpochRequest {
        pb::StageEpochRequest {
            manifest_encoded: self.manifest.encode(),
            share_envelope_encoded: self.envelope.clone(),
            blob: self.blob.clone(),
            authority: Some(pb::stage_epoch_request::Authority::Joining(joining)),
        }
    }

    /// A "stage receipt" from made-up key `i`.
    fn fake_receipt(&self, i: usize) -> Vec<u8> {
        let pk = PublicKey::from(self.fakes[i].verifying_key());
        let entry = self.manifest.trustee(&node_id(&pk)).expect("listed");
        let now = dlocker_proto::time::unix_now();
        Signed::sign(
            StageReceipt {
                node_id: node_id(&pk),
                wallet_id: self.manifest.wallet_id().into(),
                epoch: 2,
                share_index: entry.share_index,
                manifest_hash: self.manifest.hash(),
                previous_manifest_hash: *self.manifest.previous().expect("previous"),
                staged_at: now,
                expires_at: now + 600,
            },
            &self.fakes[i],
        )
        .encode()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_squat_a_wallet_id_at_a_joining_trustee() {
    let rc = RotationCluster::start(4, None).await;
    let (wallet, prepared, mut owner_auth) = rc.backup("squat-owner", &OLD, 2, DATA).await;
    // The stranger's own wallet at the bank: a genuine passkey and a genuine attestation of it.
    let (own_wallet, _, mut stranger_auth) = rc.backup("squat-stranger", &[0, 1], 2, b"x").await;
    assert_eq!(
        rc.epochs_at(TARGET, &wallet).await,
        None,
        "target holds nothing"
    );

    let target_key = *rc.public_key(TARGET);
    let h1 = prepared.manifest_hash();
    let squat = Squat::new(&wallet, &target_key, h1);
    let h_squat = squat.manifest.hash();

    // What anyone can get by asking: the stranger's credential and the bank's word for it (about
    // the stranger's wallet), the owner's credential and the bank's word for it (about the
    // owner's wallet), and the target's nonce for a stage of the owner's wallet.
    let stranger = begin_stage(&rc, 0, &own_wallet, &h_squat).await;
    let owner_at_bank = begin_stage(&rc, 0, &wallet, &h_squat).await;
    assert!(
        !stranger.credential_attestation.is_empty()
            && !owner_at_bank.credential_attestation.is_empty(),
        "a holder attests the wallet's credential at a stage"
    );
    let at_target = begin_stage(&rc, TARGET, &wallet, &h_squat).await;
    assert!(
        at_target.passkey_json.is_empty() && at_target.credential_attestation.is_empty(),
        "a node that does not hold the wallet attests nothing"
    );
    let stranger_fp: [u8; 32] = stranger
        .credential_fingerprint
        .as_slice()
        .try_into()
        .expect("fingerprint");

    // The stranger's one touch over their made-up manifest and their own credential.
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(TARGET).node_id, &at_target.nonce);
    let touch = Touch::new(
        &mut stranger_auth,
        OwnerAction::Stage,
        &wallet,
        &stage_authorized(&h_squat.0, &stranger_fp),
        nonces.clone(),
        &stranger.request_options_json,
    );
    let joining = |passkey_json: &str, attestations: Vec<Vec<u8>>| pb::JoiningOwner {
        owner: Some(pb::OwnerAssertion {
            challenge_id: at_target.challenge_id.clone(),
            assertion_json: touch.assertion_json.clone(),
            nonces: nonces.wire(),
        }),
        passkey_json: passkey_json.to_owned(),
        credential_attestations: attestations,
    };
    // An attestation the stranger signs with a made-up key, saying all the right things.
    let forged = Signed::sign(
        CredentialAttestation {
            node_id: node_id(&PublicKey::from(squat.fakes[0].verifying_key())),
            wallet_id: wallet.clone(),
            epoch: 1,
            manifest_hash: h1,
            credential_fingerprint: stranger_fp,
            issued_at: dlocker_proto::time::unix_now(),
        },
        &squat.fakes[0],
    )
    .encode();

    let attempts: [(&str, pb::JoiningOwner, &str); 4] = [
        (
            "the stranger's passkey, no attestation",
            joining(&stranger.passkey_json, vec![]),
            "no credential attestation was sent",
        ),
        (
            "an attestation signed by a made-up key",
            joining(&stranger.passkey_json, vec![forged]),
            "no attestation is signed by a trustee this node knows",
        ),
        (
            "the bank's genuine attestation of the stranger's own wallet",
            joining(
                &stranger.passkey_json,
                vec![stranger.credential_attestation.clone()],
            ),
            "the attestation is for another wallet",
        ),
        (
            "the bank's genuine attestation of the owner's wallet, with the stranger's passkey",
            joining(
                &stranger.passkey_json,
                vec![owner_at_bank.credential_attestation.clone()],
            ),
            "the attested credential is not the one handed to this node",
        ),
    ];
    for (what, joining, why) in attempts {
        let refused = epochs(&rc, TARGET)
            .await
            .stage_epoch(squat.request(joining))
            .await
            .expect_err(what);
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{what}: {refused:?}"
        );
        assert!(
            refused.message().contains(
                "a trustee joins a wallet only with the wallet's credential attested by a trustee it knows"
            ) && refused.message().contains(why),
            "{what}: {}",
            refused.message()
        );
        assert_eq!(
            rc.epochs_at(TARGET, &wallet).await,
            None,
            "{what}: the target neither joins nor holds the wallet"
        );
    }
    // The owner's credential and the bank's genuine attestation of it, with the stranger's
    // passkey answer: the owner's credential does not verify it.
    let refused = epochs(&rc, TARGET)
        .await
        .stage_epoch(squat.request(joining(
            &owner_at_bank.passkey_json,
            vec![owner_at_bank.credential_attestation.clone()],
        )))
        .await
        .expect_err("the stranger cannot answer for the owner's credential");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(rc.epochs_at(TARGET, &wallet).await, None);

    // The commit with the made-up quorum: nothing is staged there, so nothing to commit.
    let refused = epochs(&rc, TARGET)
        .await
        .commit_epoch(pb::CommitEpochRequest {
            wallet_id: wallet.clone(),
            manifest_hash: h_squat.0.to_vec(),
            owner: Some(pb::OwnerAssertion {
                challenge_id: at_target.challenge_id.clone(),
                assertion_json: touch.assertion_json.clone(),
                nonces: nonces.wire(),
            }),
            quorum_encoded: vec![squat.fake_receipt(0), squat.fake_receipt(1)],
        })
        .await
        .expect_err("a made-up quorum commits nothing");
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    assert_eq!(rc.epochs_at(TARGET, &wallet).await, None, "still nothing");
    for i in OLD {
        assert_eq!(
            rc.epochs_at(i, &wallet).await,
            Some((1, 0)),
            "the owner's trustees are untouched"
        );
    }

    // The owner's own rotation to the target succeeds, and the wallet recovers from epoch 2.
    let hook = |_: &dlocker_sdk::RotationStep| false;
    let opts = options(rc.root_dir(), &wallet, &hook);
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let record = rotate(
        &rc.set(&OLD),
        &rc.set(&NEW),
        &source(&prepared),
        policy,
        false,
        &mut owner_auth,
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("the owner's rotation after the squatting attempts: {e}"));
    assert!(record.is_done());
    assert_eq!(
        rc.epochs_at(TARGET, &wallet).await,
        Some((2, 0)),
        "the target joined the owner's epoch 2"
    );
    let (epoch, _) = rc.recover_expecting(&wallet, &mut owner_auth, DATA).await;
    assert_eq!(epoch, 2);
}
