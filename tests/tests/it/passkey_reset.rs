//! Bank-assisted passkey reset on real nodes (`docs/protocol.md` §13a, "Passkey reset"): the
//! passkey is lost, the wallet secret `k` is not. Every attack is refused with its code and
//! message and leaves every trustee's credential as it was: no bank approval, another bank's key,
//! an approval for another credential or wallet, a proof with a wrong `k`, a replayed request
//! (spent nonce), an approval replayed for a second reset. A reset through raw RPCs and one
//! through the SDK then swap the credential everywhere: the old passkeys are refused by every
//! trustee, the new one recovers the wallet, and each trustee audited `passkey_reset`.
//!
//! Nodes: bank A (node 0, the wallets' bank), trustee-2, trustee-3 hold 2-of-3 backups. The two
//! trustees also accept bank B's approval key, bound to bank B.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dlocker_integration_tests::recovery_cluster::{Touch, session_key, set_config_value};
use dlocker_integration_tests::rotation::{RotationCluster, audit_entries};
use dlocker_integration_tests::touch::{Nonces, ORIGIN, creation_options};
use dlocker_proto::keys::{encode_public_key, public_key_hex};
use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::staff_client::StaffClient as RawStaff;
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::reset_proof::ResetProof;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::statement::{PasskeyResetApproval, Signed};
use dlocker_proto::time::unix_now;
use dlocker_sdk::{
    Passkey as _, PreparedBackup, ResetEvent, ResetOptions, SoftwareAuthenticator,
    protocol::{change_passkey, reset_passkey},
};
use k256::ecdsa::SigningKey;
use std::time::Duration;

const ALL: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"passkey reset: the bank and k, not the lost passkey";

fn refused<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    refusal: NodeRefusal,
    needle: &str,
    what: &str,
) {
    let e = r.expect_err(what);
    assert_eq!(NodeRefusal::of_status(&e), Some(refusal), "{what}: {e:?}");
    assert_eq!(e.code(), refusal.grpc_code(), "{what}: {e:?}");
    assert!(e.message().contains(needle), "{what}: {e:?}");
}

/// A reset's owner side built by hand: every trustee's nonce, the new credential's
/// registration over the reset challenge, and a proof of `k` naming its fingerprint.
#[derive(Clone)]
struct Owner {
    wallet: String,
    nonces: Nonces,
    registration_json: String,
    fingerprint: Vec<u8>,
    proof: Vec<u8>,
}

impl Owner {
    fn proof_for(&self, k: &SecretScalar, fingerprint: &[u8]) -> Vec<u8> {
        let list = self
            .nonces
            .0
            .iter()
            .map(|(id, n)| TrusteeNonce::from_wire(id, n).expect("nonce"))
            .collect();
        let c = OwnerChallenge::new(OwnerAction::ResetPasskey, &self.wallet, fingerprint, list)
            .expect("challenge");
        ResetProof::prove(k, &c).expect("prove").encode()
    }

    fn filing(&self) -> pb::RequestPasskeyResetRequest {
        pb::RequestPasskeyResetRequest {
            wallet_id: self.wallet.clone(),
            registration_json: self.registration_json.clone(),
            nonces: self.nonces.wire(),
            key_proof: self.proof.clone(),
            wait_secs: 0,
        }
    }

    fn reset(&self, approval: &[u8]) -> pb::ResetPasskeyRequest {
        pb::ResetPasskeyRequest {
            wallet_id: self.wallet.clone(),
            registration_json: self.registration_json.clone(),
            nonces: self.nonces.wire(),
            key_proof: self.proof.clone(),
            reset_approval_encoded: approval.to_vec(),
        }
    }
}

async fn bank(rc: &RotationCluster) -> RawStaff<tonic::transport::Channel> {
    RawStaff::new(rc.node(0).channel().await.expect("connect"))
}

/// `new` registers a credential over the reset challenge of `nonces`; returns the registration
/// and its fingerprint as the nodes compute it (webauthn-rs verifies it against the same
/// challenge, `trustee_node::owner_touch::passkey_fingerprint` hashes it).
async fn register(
    wallet: &str,
    nonces: &Nonces,
    template: &str,
    new: &mut SoftwareAuthenticator,
) -> (String, Vec<u8>) {
    use webauthn_rs::prelude::{RegisterPublicKeyCredential, Url, Uuid, WebauthnBuilder};
    let c = nonces.challenge(OwnerAction::ResetPasskey, wallet, b"");
    let options = creation_options(template, &c);
    let json = new
        .create(serde_json::to_string(&options).expect("json"))
        .await
        .expect("register");
    let cred: RegisterPublicKeyCredential = serde_json::from_str(&json).expect("registration");
    let webauthn = WebauthnBuilder::new(
        &options.public_key.rp.id,
        &Url::parse(ORIGIN).expect("origin"),
    )
    .and_then(|b| b.build())
    .expect("webauthn");
    let user = Uuid::from_slice(options.public_key.user.id.as_ref()).expect("user handle");
    let (_, state) = webauthn
        .start_passkey_registration(user, wallet, wallet, None)
        .expect("start");
    let mut state = serde_json::to_value(&state).expect("state");
    state["rs"]["challenge"] = URL_SAFE_NO_PAD.encode(c).into();
    let passkey = webauthn
        .finish_passkey_registration(&cred, &serde_json::from_value(state).expect("state"))
        .expect("the registration verifies");
    let fp = trustee_node::owner_touch::passkey_fingerprint(&passkey).expect("fingerprint");
    (json, fp.to_vec())
}

/// Begins a reset at every node, registers `new` over its challenge, proves `k` and files the
/// request at the bank (which checks the same as a trustee, spending nothing).
async fn prepare(
    rc: &RotationCluster,
    wallet: &str,
    k: &SecretScalar,
    new: &mut SoftwareAuthenticator,
) -> (Owner, pb::PasskeyResetStatus) {
    let mut nonces = Nonces::default();
    let mut template = String::new();
    for i in ALL {
        let b = rc
            .begin_action(i, wallet, pb::EpochAction::ResetPasskey)
            .await;
        nonces.push(&rc.node(i).node_id, &b.nonce);
        template = b.creation_options_json;
    }
    let (registration_json, fingerprint) = register(wallet, &nonces, &template, new).await;
    let mut owner = Owner {
        wallet: wallet.to_owned(),
        nonces,
        registration_json,
        fingerprint,
        proof: Vec::new(),
    };
    owner.proof = owner.proof_for(k, &owner.fingerprint);
    let status = bank(rc)
        .await
        .request_passkey_reset(owner.filing())
        .await
        .expect("the bank files the request")
        .into_inner();
    assert_eq!(status.credential_fingerprint, owner.fingerprint);
    assert!(status.reset_approval_encoded.is_empty(), "not approved yet");
    (owner, status)
}

/// Staff approve the request; the phone collects the signed approval by asking again.
async fn approved(rc: &RotationCluster, owner: &Owner, request_id: &str) -> Vec<u8> {
    let s = rc
        .staff_client()
        .approve_passkey_reset(request_id)
        .await
        .expect("staff approve");
    assert!(s.approved, "one approval meets the test bank's policy");
    let again = bank(rc)
        .await
        .request_passkey_reset(owner.filing())
        .await
        .expect("ask again")
        .into_inner();
    assert!(!again.reset_approval_encoded.is_empty());
    again.reset_approval_encoded
}

async fn reset_at(
    rc: &RotationCluster,
    i: usize,
    req: pb::ResetPasskeyRequest,
) -> Result<Vec<u8>, tonic::Status> {
    EpochsClient::new(rc.node(i).channel().await.expect("connect"))
        .reset_passkey(req)
        .await
        .map(|r| r.into_inner().credential_fingerprint)
}

/// `registration_json` presented over `challenge` by someone who saw it: the client data's
/// challenge rewritten and the attestation replaced by format `none` (what platform passkeys
/// send), which signs nothing, so the credential verifies over any challenge.
fn forged_registration(registration_json: &str, challenge: &[u8; 32]) -> String {
    let mut v: serde_json::Value = serde_json::from_str(registration_json).expect("json");
    let cd = v["response"]["clientDataJSON"]
        .as_str()
        .expect("client data");
    let mut client: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cd).expect("b64")).expect("json");
    client["challenge"] = URL_SAFE_NO_PAD.encode(challenge).into();
    v["response"]["clientDataJSON"] = URL_SAFE_NO_PAD.encode(client.to_string().as_bytes()).into();
    let att = URL_SAFE_NO_PAD
        .decode(
            v["response"]["attestationObject"]
                .as_str()
                .expect("attestation object"),
        )
        .expect("b64");
    // authData is the byte string after the CBOR text key "authData".
    let key = b"\x68authData";
    let at = att
        .windows(key.len())
        .position(|w| w == key)
        .expect("authData key")
        + key.len();
    let (len, start) = match att[at] {
        0x58 => (usize::from(att[at + 1]), at + 2),
        0x59 => (
            usize::from(u16::from_be_bytes([att[at + 1], att[at + 2]])),
            at + 3,
        ),
        other => panic!("authData header {other:#x}"),
    };
    let auth_data = &att[start..start + len];
    // {"fmt": "none", "attStmt": {}, "authData": bytes}
    let mut none = vec![0xa3, 0x63];
    none.extend_from_slice(b"fmt");
    none.push(0x64);
    none.extend_from_slice(b"none");
    none.push(0x67);
    none.extend_from_slice(b"attStmt");
    none.push(0xa0);
    none.extend_from_slice(key);
    none.push(0x59);
    none.extend_from_slice(&u16::try_from(len).expect("short").to_be_bytes());
    none.extend_from_slice(auth_data);
    v["response"]["attestationObject"] = URL_SAFE_NO_PAD.encode(none).into();
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reset_needs_bank_and_k_and_swaps_the_credential_everywhere() {
    let mut rc = RotationCluster::init(3, None);
    let bank_a = rc.node(0).node_id.clone();
    let bank_b = "b".repeat(32);
    let key_b = SigningKey::from(session_key());
    let bound = toml::Value::Array(vec![
        toml::Value::String(format!(
            "{bank_a}={}",
            public_key_hex(&rc.recovery_cluster().bank_approval_key)
        )),
        toml::Value::String(format!(
            "{bank_b}={}",
            public_key_hex(&k256::PublicKey::from(key_b.verifying_key()))
        )),
    ]);
    for i in [1, 2] {
        set_config_value(
            rc.data_dir(i),
            "recovery",
            "bank_approval_keys",
            bound.clone(),
        );
    }
    rc.start_all().await;
    let (wallet, prepared, mut lost) = rc.backup("pk-reset", &ALL, 2, DATA).await;
    let (other, other_prepared, _) = rc.backup("pk-reset-other", &ALL, 2, DATA).await;
    let k = prepared.secret();
    // The lost passkey's request template, to show later that it is refused.
    let lost_template = rc
        .begin_action(0, &wallet, pb::EpochAction::ChangePasskey)
        .await
        .request_options_json;
    let original = rc.credential_fingerprints(&ALL, &wallet).await;

    // The owner's side, filed at the bank (the bank checks proof and registration on filing).
    let mut new1 = SoftwareAuthenticator::new();
    let (owner, status) = prepare(&rc, &wallet, k, &mut new1).await;

    // A stranger without k cannot even file a request: the bank refuses the proof.
    let mut wrong = owner.clone();
    wrong.proof = owner.proof_for(&SecretScalar::random(), &owner.fingerprint);
    refused(
        bank(&rc).await.request_passkey_reset(wrong.filing()).await,
        NodeRefusal::ResetProofRejected,
        "proof of knowledge of the wallet secret does not verify",
        "filing with a wrong k",
    );

    // 1. No bank approval.
    for i in ALL {
        refused(
            reset_at(&rc, i, owner.reset(b"")).await,
            NodeRefusal::ResetApprovalRequired,
            "needs the wallet's bank's approval",
            "a reset without approval",
        );
    }
    // 2. Another bank's key: claiming to be bank A, and as itself.
    let now = unix_now();
    for (claimed, what) in [(&bank_a, "B's key as A"), (&bank_b, "B's key as B")] {
        let forged = Signed::sign(
            PasskeyResetApproval {
                bank_node_id: claimed.clone(),
                wallet_id: wallet.clone(),
                credential_fingerprint: owner.fingerprint.clone().try_into().expect("32"),
                request_id: status.request_id.clone(),
                issued_at: now,
                expires_at: now + 3600,
                approvers: vec!["mallory".into()],
            },
            &key_b,
        )
        .encode();
        for i in [1, 2] {
            refused(
                reset_at(&rc, i, owner.reset(&forged)).await,
                NodeRefusal::ApprovalRejected,
                "not from this wallet's bank",
                what,
            );
        }
    }
    // 3. A genuine approval for another credential (a second request on the same nonces).
    let mut new_other = SoftwareAuthenticator::new();
    let mut second = owner.clone();
    let template = rc
        .begin_action(0, &wallet, pb::EpochAction::ResetPasskey)
        .await
        .creation_options_json;
    (second.registration_json, second.fingerprint) =
        register(&wallet, &owner.nonces, &template, &mut new_other).await;
    second.proof = second.proof_for(k, &second.fingerprint);
    let s2 = bank(&rc)
        .await
        .request_passkey_reset(second.filing())
        .await
        .expect("file the second")
        .into_inner();
    assert_ne!(s2.request_id, status.request_id);
    let approval_other_credential = approved(&rc, &second, &s2.request_id).await;
    for i in ALL {
        refused(
            reset_at(&rc, i, owner.reset(&approval_other_credential)).await,
            NodeRefusal::ApprovalRejected,
            "bank approval is for another credential",
            "an approval for another credential",
        );
    }
    //    ... and for another wallet.
    let mut new_o = SoftwareAuthenticator::new();
    let (other_owner, other_status) =
        prepare(&rc, &other, other_prepared.secret(), &mut new_o).await;
    let approval_other_wallet = approved(&rc, &other_owner, &other_status.request_id).await;
    for i in ALL {
        refused(
            reset_at(&rc, i, owner.reset(&approval_other_wallet)).await,
            NodeRefusal::ApprovalRejected,
            "bank approval is for another wallet",
            "an approval for another wallet",
        );
    }
    // 4. The genuine approval with a proof made with a wrong k.
    let approval = approved(&rc, &owner, &status.request_id).await;
    for i in ALL {
        refused(
            reset_at(&rc, i, wrong.reset(&approval)).await,
            NodeRefusal::ResetProofRejected,
            "proof of knowledge of the wallet secret does not verify",
            "a proof with a wrong k",
        );
    }
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        original,
        "the refusals changed nothing"
    );

    // The owner's genuine request resets every trustee.
    for i in ALL {
        let fp = reset_at(&rc, i, owner.reset(&approval))
            .await
            .expect("the reset");
        assert_eq!(fp, owner.fingerprint);
    }
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![owner.fingerprint.clone(); 3]
    );

    // 5. The same request replayed: its nonces are spent.
    for i in ALL {
        refused(
            reset_at(&rc, i, owner.reset(&approval)).await,
            NodeRefusal::NonceUsed,
            "already used",
            "a replayed reset",
        );
    }
    // 6. The owner moves on to another passkey; the old approval, replayed with fresh nonces and
    //    a registration of the credential it approved forged over them, is spent everywhere.
    let mut new2 = SoftwareAuthenticator::new();
    let changed = change_passkey(&rc.all(), &wallet, &mut new1, &mut new2)
        .await
        .expect("passkey change");
    let new2_template = rc
        .begin_action(0, &wallet, pb::EpochAction::ChangePasskey)
        .await
        .request_options_json;
    let mut replay = owner.clone();
    replay.nonces = Nonces::default();
    for i in ALL {
        let b = rc
            .begin_action(i, &wallet, pb::EpochAction::ResetPasskey)
            .await;
        replay.nonces.push(&rc.node(i).node_id, &b.nonce);
    }
    replay.registration_json = forged_registration(
        &owner.registration_json,
        &replay
            .nonces
            .challenge(OwnerAction::ResetPasskey, &wallet, b""),
    );
    replay.proof = replay.proof_for(k, &owner.fingerprint);
    for i in ALL {
        refused(
            reset_at(&rc, i, replay.reset(&approval)).await,
            NodeRefusal::ResetApprovalSpent,
            "already used for a passkey reset here",
            "an approval replayed for a second reset",
        );
    }
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![changed.new_fingerprint.to_vec(); 3],
        "the replays changed nothing"
    );

    // The SDK: new2 is lost too; a reset with k, the bank's staff approving the request.
    let mut new3 = SoftwareAuthenticator::new();
    let staff = rc.staff_client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let events = std::sync::Mutex::new(Vec::new());
    let progress = |e: ResetEvent| {
        if let ResetEvent::Requested { request_id, .. } = &e {
            let _ = tx.send(request_id.clone());
        }
        events.lock().expect("events").push(e);
    };
    let opts = ResetOptions {
        poll_interval: Duration::from_millis(200),
        approval_timeout: Duration::from_secs(120),
        progress: &progress,
        checkpoint: None,
    };
    let trustees = rc.all();
    let report = {
        let run = reset_passkey(&trustees, &wallet, k, &mut new3, opts);
        tokio::pin!(run);
        loop {
            tokio::select! {
                res = &mut run => break res.expect("the SDK's reset"),
                Some(id) = rx.recv() => {
                    staff.approve_passkey_reset(&id).await.expect("staff approve");
                }
            }
        }
    };
    assert_eq!(new3.touches(), 1, "one touch of the new passkey");
    assert_eq!(report.reset.len(), 3);
    assert!(
        events
            .lock()
            .expect("events")
            .iter()
            .any(|e| matches!(e, ResetEvent::Approved { .. })),
        "the approval was reported"
    );
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![report.new_fingerprint.to_vec(); 3]
    );

    // Every earlier passkey is refused by every trustee; the new one recovers the wallet.
    let r = session_key().public_key();
    let recovery = rc.recovery_cluster();
    for (old, template, what) in [
        (&mut lost, &lost_template, "the lost passkey"),
        (
            &mut new2,
            &new2_template,
            "the passkey changed to, then lost too",
        ),
    ] {
        for i in ALL {
            let opened = recovery.open(i, &wallet, &r).await.expect("open");
            let mut nonces = Nonces::default();
            nonces.push(&rc.node(i).node_id, &opened.nonce);
            let touch = Touch::new(
                old,
                OwnerAction::Recover,
                &wallet,
                &encode_public_key(&r),
                nonces,
                template,
            );
            refused(
                recovery.authenticate(i, &opened.session_id, &touch).await,
                NodeRefusal::AssertionRejected,
                "passkey response does not verify",
                what,
            );
        }
    }
    rc.recover_expecting(&wallet, &mut new3, DATA).await;

    // Each trustee audited both resets of the wallet (abbreviated fingerprints only).
    rc.stop_all();
    for i in ALL {
        let entries = audit_entries(rc.data_dir(i), "passkey_reset");
        assert_eq!(entries.len(), 2, "node {i}: {entries:?}");
        let first = &entries[0].1;
        assert!(
            first.contains(&hex::encode(&original[i][..6]))
                && first.contains(&hex::encode(&owner.fingerprint[..6]))
                && !first.contains(&hex::encode(&owner.fingerprint)),
            "node {i}: {first}"
        );
    }
}

/// Staff act half a second after the call went out: the call can only return their answer if
/// the bank held it.
async fn after_a_moment<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.await
}

/// `RequestPasskeyReset` held by the bank: a call made before staff act returns the approval
/// when they approve, and the SDK's reset therefore needs no polling interval (with one of an
/// hour it still finishes as soon as staff approve).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reset_is_held_until_staff_approve_with_an_hour_between_polls() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, prepared, _lost) = rc.backup("pk-reset-held", &ALL, 2, DATA).await;
    let k = prepared.secret();
    let staff = rc.staff_client();

    // Filed (answered at once, with the request id staff approve), then asked again with a
    // wait: staff approve while the call is held, and it returns their approval.
    let mut new1 = SoftwareAuthenticator::new();
    let (owner, status) = prepare(&rc, &wallet, k, &mut new1).await;
    let mut ask = owner.filing();
    ask.wait_secs = 30;
    let (held, approved) = tokio::join!(
        async { bank(&rc).await.request_passkey_reset(ask).await },
        after_a_moment(staff.approve_passkey_reset(&status.request_id))
    );
    assert!(approved.expect("staff approve").approved);
    let held = held.expect("the held call answers").into_inner();
    assert_eq!(held.request_id, status.request_id);
    let approval = Signed::<PasskeyResetApproval>::decode(&held.reset_approval_encoded)
        .expect("the held call returns the signed approval");
    assert_eq!(
        approval.body().credential_fingerprint.to_vec(),
        owner.fingerprint
    );

    // The SDK, asking with an hour between polls: done soon after staff approve.
    let mut new2 = SoftwareAuthenticator::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress = |e: ResetEvent| {
        if let ResetEvent::Requested { request_id, .. } = e {
            let _ = tx.send(request_id);
        }
    };
    let opts = ResetOptions {
        poll_interval: Duration::from_secs(3600),
        approval_timeout: Duration::from_secs(7200),
        progress: &progress,
        checkpoint: None,
    };
    let trustees = rc.all();
    let reset = reset_passkey(&trustees, &wallet, k, &mut new2, opts);
    let approve = async {
        let id = rx.recv().await.expect("the SDK filed the request");
        after_a_moment(staff.approve_passkey_reset(&id))
            .await
            .expect("staff approve");
    };
    // Bounded well under the polling interval: only a held call can finish it in time.
    let (report, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(reset, approve)
    })
    .await
    .expect("the reset finished once staff approved, without waiting for a poll");
    let report = report.expect("the SDK's reset");
    assert_eq!(report.reset.len(), 3);
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![report.new_fingerprint.to_vec(); 3]
    );
}

fn dlocker(args: &[&str]) -> std::process::Output {
    dlocker_integration_tests::cli_command()
        .args(args)
        .output()
        .expect("run dlocker")
}

fn succeeded(o: &std::process::Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what} failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The same from the command line: `dlocker passkey reset` (the owner, with `k` in a file)
/// files the request and waits; staff find it with `dlocker passkey-resets list` and approve it
/// with `dlocker passkey-resets approve`; every trustee then holds the new passkey, which
/// recovers the wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reset_from_the_command_line() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, prepared, _lost) = rc.backup("cli-reset", &ALL, 2, DATA).await;
    let CliFiles {
        trustees: t,
        secret: k,
        new_passkey: n,
        staff_key: key,
    } = cli_files(&rc, &prepared, "reset");
    let owner = dlocker_integration_tests::cli_command()
        .args([
            "passkey",
            "reset",
            "--trustees",
            &t,
            "--wallet",
            &wallet,
            "--secret-file",
            &k,
            "--new-passkey",
            &n,
            "--wait",
            "120",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dlocker passkey reset");
    let request = filed_request(&t, &key, &wallet).await;
    approve_with_cli(&t, &key, &request);
    let done = tokio::task::spawn_blocking(move || owner.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let out = succeeded(&done, "passkey reset");
    assert!(out.contains("passkey reset at every trustee"), "{out}");
    let fps = rc.credential_fingerprints(&ALL, &wallet).await;
    assert!(fps.iter().all(|f| f == &fps[0]), "{fps:?}");
    let mut new =
        SoftwareAuthenticator::from_bytes(&std::fs::read(&n).expect("read")).expect("passkey file");
    rc.recover_expecting(&wallet, &mut new, DATA).await;
}

/// The files a `dlocker passkey reset` run uses (paths as text): the trustees file, the wallet's
/// `k` in hex, where the new passkey goes, and the bank staff key that approves.
struct CliFiles {
    trustees: String,
    secret: String,
    new_passkey: String,
    staff_key: String,
}

fn cli_files(rc: &RotationCluster, prepared: &PreparedBackup, prefix: &str) -> CliFiles {
    let root = rc.root_dir();
    let path = |name: &str| root.join(format!("{prefix}-{name}"));
    std::fs::write(path("trustees.toml"), rc.trustees_toml_for(&ALL)).expect("trustees file");
    std::fs::write(
        path("k.hex"),
        hex::encode(prepared.secret().to_bytes().as_slice()),
    )
    .expect("k");
    let text = |p: std::path::PathBuf| p.display().to_string();
    CliFiles {
        trustees: text(path("trustees.toml")),
        secret: text(path("k.hex")),
        new_passkey: text(path("new.passkey")),
        staff_key: text(rc.recovery_cluster().staff[0].key_file.clone()),
    }
}

/// Staff approve reset request `request` with `dlocker passkey-resets approve`.
fn approve_with_cli(trustees: &str, key: &str, request: &str) {
    let out = succeeded(
        &dlocker(&[
            "passkey-resets",
            "approve",
            request,
            "--trustees",
            trustees,
            "--key",
            key,
            "--yes",
        ]),
        "passkey-resets approve",
    );
    assert!(out.contains("APPROVED"), "{out}");
}

/// The id of `wallet`'s reset request at the bank, once it is there (`dlocker passkey-resets
/// list`, polled).
async fn filed_request(trustees: &str, key: &str, wallet: &str) -> String {
    for _ in 0..300 {
        let out = succeeded(
            &dlocker(&[
                "--json",
                "passkey-resets",
                "list",
                "--trustees",
                trustees,
                "--key",
                key,
            ]),
            "passkey-resets list",
        );
        let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
        let found = rows.as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["wallet_id"] == wallet)
                .and_then(|r| r["request_id"].as_str().map(str::to_owned))
        });
        if let Some(id) = found {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the owner's request never reached the bank");
}

/// Stopped while it waits for the bank, `dlocker passkey reset --state FILE` resumes: the first
/// run files the request, saves it sealed (its key in `FILE.key`) and is killed; staff approve
/// THAT request; the same command run again, without `--secret-file`, picks it up (no new
/// passkey, no new request — a new one would wait for an approval nobody gives, and time out)
/// and every trustee then holds the first run's new passkey, which recovers the wallet. The
/// state file is gone once the reset completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_reset_from_the_command_line_resumes_after_a_kill() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, prepared, _lost) = rc.backup("cli-reset-resume", &ALL, 2, DATA).await;
    let CliFiles {
        trustees: t,
        secret: k,
        new_passkey: n,
        staff_key: key,
    } = cli_files(&rc, &prepared, "resume");
    let root = rc.root_dir();
    let state = root.join("reset.state");
    let s = state.display().to_string();
    let mut first = dlocker_integration_tests::cli_command()
        .args([
            "passkey",
            "reset",
            "--trustees",
            &t,
            "--wallet",
            &wallet,
            "--secret-file",
            &k,
            "--new-passkey",
            &n,
            "--state",
            &s,
            "--wait",
            "120",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn dlocker passkey reset");
    let request = filed_request(&t, &key, &wallet).await;
    // The request reached the bank, so it was saved before: stop the command there.
    first.kill().expect("kill");
    first.wait().expect("reap");
    assert!(state.exists(), "the filed request is saved");
    assert!(root.join("reset.state.key").exists(), "its sealing key");
    let before = rc.credential_fingerprints(&ALL, &wallet).await;
    assert!(before.iter().all(|f| f == &before[0]), "{before:?}");
    approve_with_cli(&t, &key, &request);
    let resumed = dlocker(&[
        "passkey",
        "reset",
        "--trustees",
        &t,
        "--wallet",
        &wallet,
        "--new-passkey",
        &n,
        "--state",
        &s,
        "--wait",
        "20",
    ]);
    let out = succeeded(&resumed, "resumed passkey reset");
    assert!(out.contains("passkey reset at every trustee"), "{out}");
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains("resuming the reset"), "{err}");
    assert!(err.contains(&request), "the same request: {err}");
    assert!(!state.exists(), "the saved request is deleted once done");
    let fps = rc.credential_fingerprints(&ALL, &wallet).await;
    assert!(fps.iter().all(|f| f == &fps[0]), "{fps:?}");
    assert_ne!(fps[0], before[0], "the credential was replaced");
    let mut new =
        SoftwareAuthenticator::from_bytes(&std::fs::read(&n).expect("read")).expect("passkey file");
    rc.recover_expecting(&wallet, &mut new, DATA).await;
}
