//! What every trustee refuses during a rotation, on real nodes with a short staged-epoch TTL
//! (`[epochs] staged_ttl_secs = 10`): a stage with a bad share (nothing stored), a commit without
//! the owner's passkey (or with a wrong one, or without the evidence that the new epoch has its
//! threshold), a stale staged epoch (expired: dropped and erased, the commit refused, and a resume
//! stages it again), and a rotation while a recovery session is open on the wallet.
//!
//! Nodes: bank, trustee-2, trustee-3 hold a 2-of-3 epoch 1; epoch 2 is 2-of-3 over bank,
//! trustee-2 and trustee-4 (joining; trustee-3 leaves).

use dlocker_integration_tests::recovery_cluster::{session_key, wait_for};
use dlocker_integration_tests::rotation::{
    RotationCluster, StopAfter, db_mentions_wallet, epoch_owner, load_record, options, source,
    stage_only,
};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::manifest::ManifestHash;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::Share;
use dlocker_sdk::{BackupPolicy, SoftwareAuthenticator};
use dlocker_sdk::{
    RotateError, RotationPhase, RotationStep,
    protocol::{prepare_rotation, resume_rotation, rotate},
};
use std::time::Duration;
use tonic::Code;

const TTL: u64 = 10;
const OLD: [usize; 3] = [0, 1, 2];
const NEW: [usize; 3] = [0, 1, 3];
const POLICY: BackupPolicy = BackupPolicy {
    threshold: 2,
    recovery_delay_secs: 0,
};
const DATA: &[u8] = b"refusals: the wallet survives them all";

async fn epochs(rc: &RotationCluster, i: usize) -> EpochsClient<tonic::transport::Channel> {
    EpochsClient::new(rc.node(i).channel().await.expect("connect"))
}

/// BeginEpochAction at node `i` and the owner's answer.
async fn owner(
    rc: &RotationCluster,
    i: usize,
    wallet: &str,
    action: pb::EpochAction,
    hash: &ManifestHash,
    auth: &mut SoftwareAuthenticator,
    wrong: bool,
) -> pb::OwnerAssertion {
    let ch = rc.node(i).channel().await.expect("connect");
    epoch_owner(ch, &rc.node(i).node_id, wallet, action, hash, auth, wrong).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_share_no_passkey_stale_stage_and_open_recovery_are_refused() {
    let mut rc = RotationCluster::start(4, Some(TTL)).await;
    let (wallet, prepared, mut auth) = rc.backup("rot-refuse", &OLD, 2, DATA).await;
    let (old, new) = (rc.set(&OLD), rc.set(&NEW));
    let src = source(&prepared);

    // 1. A stage with a bad share (a valid envelope for the bank, but not on the polynomial).
    let plan = prepare_rotation(&old, &new, &src, POLICY, false, "alice").expect("plan");
    let m2 = plan.manifest().expect("manifest");
    let h2 = m2.hash();
    let bank_key = *rc.public_key(0);
    let bad = Share::new(1, SecretScalar::random()).expect("share");
    let envelope = ShareEnvelope::seal(
        &bad,
        &EnvelopeContext {
            wallet_id: &wallet,
            epoch: 2,
            share_index: 1,
            recipient: &bank_key,
        },
    )
    .expect("seal")
    .encode();
    let o = owner(
        &rc,
        0,
        &wallet,
        pb::EpochAction::Stage,
        &h2,
        &mut auth,
        false,
    )
    .await;
    let refused = epochs(&rc, 0)
        .await
        .stage_epoch(pb::StageEpochRequest {
            manifest_encoded: plan.manifest_bytes().expect("bytes"),
            share_envelope_encoded: envelope,
            blob: plan.blob().expect("blob"),
            authority: Some(pb::stage_epoch_request::Authority::Owner(o)),
        })
        .await
        .expect_err("a bad share is refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("share does not match the manifest commitments"),
        "{refused:?}"
    );
    assert_eq!(
        rc.epochs_at(0, &wallet).await,
        Some((1, 0)),
        "nothing staged after the refusal"
    );
    println!(
        "refused: StageEpoch with a bad share → {:?} {:?}",
        refused.code(),
        refused.message()
    );

    // 2. Stage for real (the SDK, stopped before the first commit), then commit without the
    // passkey, with a wrong passkey, and without evidence.
    let (step, h2, quorum) = stage_only(
        rc.root_dir(),
        &wallet,
        &old,
        &new,
        &src,
        POLICY,
        &mut auth,
        3,
    )
    .await;
    assert_eq!(step, "commit at trustee-4");
    assert_eq!(quorum.len(), 3);
    let commit = |owner: Option<pb::OwnerAssertion>, quorum: Vec<Vec<u8>>| pb::CommitEpochRequest {
        wallet_id: wallet.clone(),
        manifest_hash: h2.0.to_vec(),
        owner,
        quorum_encoded: quorum,
    };
    let no_passkey = epochs(&rc, 0)
        .await
        .commit_epoch(commit(None, quorum.clone()))
        .await
        .expect_err("refused");
    assert_eq!(no_passkey.code(), Code::Unauthenticated, "{no_passkey:?}");
    println!(
        "refused: CommitEpoch without the passkey → {:?} {:?}",
        no_passkey.code(),
        no_passkey.message()
    );
    let o = owner(
        &rc,
        0,
        &wallet,
        pb::EpochAction::Commit,
        &h2,
        &mut auth,
        true,
    )
    .await;
    let wrong = epochs(&rc, 0)
        .await
        .commit_epoch(commit(Some(o), quorum.clone()))
        .await
        .expect_err("refused");
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(wrong.message().contains("does not verify"), "{wrong:?}");
    println!(
        "refused: CommitEpoch with a wrong passkey assertion → {:?} {:?}",
        wrong.code(),
        wrong.message()
    );
    let o = owner(
        &rc,
        0,
        &wallet,
        pb::EpochAction::Commit,
        &h2,
        &mut auth,
        false,
    )
    .await;
    let thin = epochs(&rc, 0)
        .await
        .commit_epoch(commit(Some(o), vec![]))
        .await
        .expect_err("refused");
    assert_eq!(thin.code(), Code::FailedPrecondition, "{thin:?}");
    println!(
        "refused: CommitEpoch without evidence of the new epoch's threshold → {:?} {:?}",
        thin.code(),
        thin.message()
    );
    for i in [0, 1] {
        assert_eq!(
            rc.epochs_at(i, &wallet).await,
            Some((1, 2)),
            "still staged, not committed, at node {i}"
        );
    }
    assert_eq!(
        rc.epochs_at(3, &wallet).await,
        Some((0, 2)),
        "the joining node holds only the staged epoch"
    );

    // 3. Stale: nothing commits within the TTL. The staged epochs expire and are erased.
    for i in [0, 1, 3] {
        let want = if i == 3 { None } else { Some((1, 0)) };
        wait_for(
            Duration::from_secs(60),
            "the staged epoch to expire",
            || async { (rc.epochs_at(i, &wallet).await == want).then_some(()) },
        )
        .await;
    }
    let o = owner(
        &rc,
        0,
        &wallet,
        pb::EpochAction::Commit,
        &h2,
        &mut auth,
        false,
    )
    .await;
    let stale = epochs(&rc, 0)
        .await
        .commit_epoch(commit(Some(o), quorum.clone()))
        .await
        .expect_err("refused");
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    println!(
        "refused: CommitEpoch of a stale staged epoch → {:?} {:?}",
        stale.code(),
        stale.message()
    );
    let prove = epochs(&rc, 0)
        .await
        .prove_epoch_share(pb::ProveEpochShareRequest {
            wallet_id: wallet.clone(),
            nonce: vec![7; 32],
            epoch: 2,
        })
        .await
        .expect_err("no staged share to prove");
    assert_eq!(prove.code(), Code::FailedPrecondition);
    let audit = RecoveryClient::new(rc.node(0).channel().await.expect("connect"))
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 0,
            limit: 1000,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit")
        .into_inner();
    assert!(
        audit.entries.iter().any(|e| e.kind == "epoch_expired"),
        "the expiry is audited"
    );
    // Nodes nobody asked since are cleaned by their sweeper (every TTL/2): the expiry is audited
    // there too, and the joining node erased everything it had (share, blob, passkey).
    for i in [1, 3] {
        wait_for(
            Duration::from_secs(60),
            "the sweeper to erase the expired staged epoch",
            || async {
                let log = RecoveryClient::new(rc.node(i).channel().await.expect("connect"))
                    .get_audit_log(pb::GetAuditLogRequest {
                        from_seq: 0,
                        limit: 1000,
                        staff_request_encoded: Vec::new(),
                    })
                    .await
                    .expect("audit")
                    .into_inner();
                log.entries
                    .iter()
                    .any(|e| e.kind == "epoch_expired")
                    .then_some(())
            },
        )
        .await;
    }
    rc.stop(3);
    assert!(
        db_mentions_wallet(&rc.node(3).dir, &wallet).is_empty(),
        "expired staged data is erased"
    );
    rc.start_node(3).await;
    // Epoch 1 still recovers; resume stages again and completes.
    let (epoch, recovered) = rc.recover_expecting(&wallet, &mut auth, DATA).await;
    assert_eq!(epoch, 1);
    let mut record = load_record(rc.root_dir(), &wallet);
    let never = StopAfter::never();
    let hook = |s: &RotationStep| never.hook(s);
    let opts = options(rc.root_dir(), &wallet, &hook);
    resume_rotation(
        &mut record,
        &old,
        &new,
        recovered.secret(),
        &mut auth,
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("resume after expiry: {e}"));
    drop(opts);
    assert!(record.is_done());
    let (epoch, recovered) = rc.recover_expecting(&wallet, &mut auth, DATA).await;
    assert_eq!(epoch, 2);
    println!(
        "stale staged epoch: expired and erased after {TTL} s; epoch 1 recovered; resume staged again and completed; epoch 2 recovered"
    );

    // 4. A recovery session only opened (anyone can) blocks nothing; one the owner authenticated
    // blocks rotation (and is never blocked by one).
    let stranger_r = session_key();
    RecoveryClient::new(rc.node(0).channel().await.expect("connect"))
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: wallet.clone(),
            session_key: encode_public_key(&stranger_r.public_key()).to_vec(),
        })
        .await
        .expect("a stranger opens a recovery session");
    let r = session_key();
    let opened = rc
        .recovery_cluster()
        .open_and_authenticate(0, &wallet, &r.public_key(), &mut auth)
        .await;
    let src2 = dlocker_sdk::RotationSource::from_recovered(&recovered);
    let never = StopAfter::never();
    let hook = |s: &RotationStep| never.hook(s);
    let opts = options(rc.root_dir(), &wallet, &hook);
    let why = match rotate(&new, &new, &src2, POLICY, false, &mut auth, &opts).await {
        Err(RotateError::Incomplete {
            phase: RotationPhase::Staging,
            failed,
            ..
        }) => {
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].0, "bank");
            assert_eq!(
                failed[0].1.refusal(),
                Some(dlocker_proto::refusal::NodeRefusal::RecoveryInProgress),
                "{failed:?}"
            );
            failed[0].1.to_string()
        }
        other => panic!("expected the bank to refuse while a recovery is open, got {other:?}"),
    };
    assert!(
        why.contains("owner-authenticated recovery") && !why.contains(&opened.session_id),
        "{why}"
    );
    println!("refused: StageEpoch while a recovery session is open → {why}");
    drop(opts);
    // The owner cancels that session; the rotation resumes and completes.
    rc.recovery_cluster()
        .owner_cancel(0, &wallet, &r.public_key(), &opened.session_id, &mut auth)
        .await
        .expect("cancel");
    let mut record = load_record(rc.root_dir(), &wallet);
    assert_eq!(record.to_epoch, 3);
    let opts = options(rc.root_dir(), &wallet, &hook);
    resume_rotation(
        &mut record,
        &new,
        &new,
        recovered.secret(),
        &mut auth,
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("resume after the cancellation: {e}"));
    let (epoch, _) = rc.recover_expecting(&wallet, &mut auth, DATA).await;
    assert_eq!(epoch, 3);
}
