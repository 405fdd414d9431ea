//! Regenerates `proto/test-vectors/*.json`.
//!
//! `cargo run -p dlocker-proto --example gen_test_vectors`
//!
//! Every input is derived from a fixed label, so the output is reproducible; `tests/vectors.rs`
//! checks every file in the directory against the code. Regenerating changes the files only if
//! the protocol changed — which must come with a version bump.

use dlocker_proto::blob;
use dlocker_proto::codec::Writer;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::{encode_public_key, node_id};
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Commitments, Share};
use dlocker_proto::statement::{
    BankApproval, BankCancellation, CommitReceipt, CredentialAttestation, EraseReceipt,
    PasskeyResetApproval, Receipt, RetireReceipt, Signed, StaffAdminRequest, StaffChange,
    StageReceipt, StatementBody,
};
use k256::ecdsa::SigningKey;
use k256::{ProjectivePoint, PublicKey, Scalar, SecretKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

fn scalar(label: &str) -> Scalar {
    let d: [u8; 32] = Sha256::digest(format!("dlocker test vector/{label}")).into();
    *SecretScalar::from_bytes(&d)
        .expect("below the order with overwhelming probability")
        .expose()
}

fn secret_key(label: &str) -> SecretKey {
    let d: [u8; 32] = Sha256::digest(format!("dlocker test vector/{label}")).into();
    SecretKey::from_slice(&d).expect("valid")
}

fn write(dir: &Path, name: &str, v: Value) {
    let text = serde_json::to_string_pretty(&v).expect("json") + "\n";
    std::fs::write(dir.join(format!("{name}.json")), text).expect("write");
}

/// A deterministic 2-of-3 sharing: f(x) = a0 + a1·x.
fn sharing() -> (Scalar, Vec<Share>, Commitments) {
    let a0 = scalar("k");
    let a1 = scalar("a1");
    let shares = (1u16..=3)
        .map(|i| {
            Share::new(i, SecretScalar::new(a0 + a1 * Scalar::from(u64::from(i)))).expect("share")
        })
        .collect();
    let comms = Commitments::new(vec![
        PublicKey::from_affine((ProjectivePoint::GENERATOR * a0).to_affine()).expect("pt"),
        PublicKey::from_affine((ProjectivePoint::GENERATOR * a1).to_affine()).expect("pt"),
    ])
    .expect("commitments");
    (a0, shares, comms)
}

fn manifest(comms: &Commitments) -> Manifest {
    let trustees: Vec<TrusteeEntry> = (1..=3)
        .map(|i| {
            let pk = secret_key(&format!("node{i}")).public_key();
            TrusteeEntry {
                share_index: i,
                node_id: node_id(&pk),
                public_key: pk,
            }
        })
        .collect();
    Manifest::new(ManifestParts {
        wallet_id: "wallet-vector-1".into(),
        epoch: 1,
        threshold: 2,
        bank_node_id: trustees[0].node_id.clone(),
        trustees,
        commitments: comms.clone(),
        recovery_delay_secs: 86_400,
        blob_hash: [0xab; 32],
        created_at: 1_767_225_600,
        previous: None,
    })
    .expect("manifest")
}

/// One-touch owner challenges: a 3-trustee recovery (positive) and what a trustee must refuse.
fn owner_challenges(dir: &Path) {
    use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
    let trustees: Vec<TrusteeNonce> = (1..=3)
        .map(|i| TrusteeNonce {
            node_id: node_id(&secret_key(&format!("trustee{i}")).public_key()),
            nonce: Sha256::digest(format!("dlocker test vector/nonce{i}")).into(),
        })
        .collect();
    let r1 = encode_public_key(&secret_key("R1").public_key()).to_vec();
    let r2 = encode_public_key(&secret_key("R2").public_key()).to_vec();
    let wallet = "wallet-vector-1";
    let nonces_json = |list: &[TrusteeNonce]| {
        list.iter()
            .map(|t| json!({"node_id": t.node_id, "nonce": hex::encode(t.nonce)}))
            .collect::<Vec<_>>()
    };
    let c = OwnerChallenge::new(OwnerAction::Recover, wallet, &r1, trustees.clone())
        .expect("challenge");
    let base = |expect: &str, description: &str| {
        json!({
            "kind": "owner-challenge", "expect": expect, "description": description,
            "action": OwnerAction::Recover.as_u8(), "wallet_id": wallet,
            "authorized": hex::encode(&r1), "nonces": nonces_json(&trustees),
            "verifier_node_id": trustees[1].node_id,
            "challenge": hex::encode(c.digest()),
        })
    };
    let mut ok = base(
        "ok",
        "recovery (action 2) towards R1 at 3 trustees: SHA-256(label || u8 action || str wallet || bytes R || u32 n || n x (str node_id || [32] nonce))",
    );
    ok["encoding"] = json!(hex::encode(c.encode()));
    write(dir, "owner-challenge-recover-valid", ok);
    let mut other_r = base(
        "error",
        "the touch was for R1; a trustee whose session is bound to R2 recomputes another challenge",
    );
    other_r["authorized"] = json!(hex::encode(&r2));
    write(dir, "owner-challenge-other-session-key", other_r);
    let mut other_action = base("error", "a recovery touch presented for a cancellation");
    other_action["action"] = json!(OwnerAction::Cancel.as_u8());
    write(dir, "owner-challenge-other-action", other_action);
    let mut other_wallet = base("error", "a touch for another wallet");
    other_wallet["wallet_id"] = json!("wallet-vector-2");
    write(dir, "owner-challenge-other-wallet", other_wallet);
    let mut missing = base(
        "error",
        "the verifier's nonce is not in the challenge (it was computed over the other two)",
    );
    missing["nonces"] = json!(nonces_json(&[trustees[0].clone(), trustees[2].clone()]));
    missing["challenge"] = json!(hex::encode(
        OwnerChallenge::new(
            OwnerAction::Recover,
            wallet,
            &r1,
            vec![trustees[0].clone(), trustees[2].clone()]
        )
        .expect("challenge")
        .digest()
    ));
    write(dir, "owner-challenge-without-verifier", missing);
    let mut dup = base("error", "a node id listed twice");
    dup["nonces"] = json!(nonces_json(&[
        trustees[0].clone(),
        trustees[1].clone(),
        trustees[1].clone()
    ]));
    write(dir, "owner-challenge-duplicate-node", dup);
    let mut short = base("error", "a nonce of 31 bytes");
    short["nonces"][1]["nonce"] = json!(hex::encode(&trustees[1].nonce[..31]));
    write(dir, "owner-challenge-short-nonce", short);
    let mut reordered = base(
        "error",
        "the same nonces in another order hash to another challenge (manifest order is part of it)",
    );
    reordered["nonces"] = json!(nonces_json(&[
        trustees[1].clone(),
        trustees[0].clone(),
        trustees[2].clone()
    ]));
    write(dir, "owner-challenge-reordered", reordered);

    // Delete: the action byte is the whole intent (`authorized` is empty).
    let d =
        OwnerChallenge::new(OwnerAction::Delete, wallet, b"", trustees.clone()).expect("challenge");
    let mut delete = base("ok", "delete (action 9) at 3 trustees: authorized is empty");
    delete["action"] = json!(OwnerAction::Delete.as_u8());
    delete["authorized"] = json!("");
    delete["challenge"] = json!(hex::encode(d.digest()));
    delete["encoding"] = json!(hex::encode(d.encode()));
    write(dir, "owner-challenge-delete-valid", delete.clone());
    let mut delete_as_recover = delete;
    if let Some(o) = delete_as_recover.as_object_mut() {
        o.remove("encoding");
    }
    delete_as_recover["expect"] = json!("error");
    delete_as_recover["description"] =
        json!("a delete touch presented for a recovery (another action byte)");
    delete_as_recover["action"] = json!(OwnerAction::Recover.as_u8());
    write(dir, "owner-challenge-delete-as-recover", delete_as_recover);

    // Cancel all: like a delete, the action byte is the whole intent (`authorized` is empty).
    let ca = OwnerChallenge::new(OwnerAction::CancelAll, wallet, b"", trustees.clone())
        .expect("challenge");
    let mut cancel_all = base(
        "ok",
        "cancel every recovery session (action 11) at 3 trustees: authorized is empty",
    );
    cancel_all["action"] = json!(OwnerAction::CancelAll.as_u8());
    cancel_all["authorized"] = json!("");
    cancel_all["challenge"] = json!(hex::encode(ca.digest()));
    cancel_all["encoding"] = json!(hex::encode(ca.encode()));
    write(dir, "owner-challenge-cancel-all-valid", cancel_all.clone());
    let mut cancel_all_as_delete = cancel_all;
    if let Some(o) = cancel_all_as_delete.as_object_mut() {
        o.remove("encoding");
    }
    cancel_all_as_delete["expect"] = json!("error");
    cancel_all_as_delete["description"] =
        json!("a cancel-all touch presented for a delete (another action byte)");
    cancel_all_as_delete["action"] = json!(OwnerAction::Delete.as_u8());
    write(
        dir,
        "owner-challenge-cancel-all-as-delete",
        cancel_all_as_delete,
    );

    // Passkey change: the current credential's assertion authorizes the new credential's
    // fingerprint (the new credential's registration uses the same nonces, authorized empty).
    let new_fp = dlocker_proto::owner_challenge::credential_fingerprint(
        b"vector new credential id",
        b"vector new credential COSE key",
    );
    let pc = OwnerChallenge::new(
        OwnerAction::ChangePasskey,
        wallet,
        &new_fp,
        trustees.clone(),
    )
    .expect("challenge");
    let mut change = base(
        "ok",
        "passkey change (action 10) at 3 trustees: authorized is the new credential's fingerprint",
    );
    change["action"] = json!(OwnerAction::ChangePasskey.as_u8());
    change["authorized"] = json!(hex::encode(new_fp));
    change["challenge"] = json!(hex::encode(pc.digest()));
    change["encoding"] = json!(hex::encode(pc.encode()));
    write(dir, "owner-challenge-change-passkey-valid", change.clone());
    let mut other_credential = change;
    if let Some(o) = other_credential.as_object_mut() {
        o.remove("encoding");
    }
    other_credential["expect"] = json!("error");
    other_credential["description"] =
        json!("the touch named another credential than the one the trustee is asked to install");
    other_credential["authorized"] = json!(hex::encode([0x5a; 32]));
    write(
        dir,
        "owner-challenge-change-passkey-other-credential",
        other_credential,
    );
    reset_proofs(dir, &trustees, &new_fp);
}

/// Passkey reset: a proof of knowledge of `k` over the reset challenge (action 12, authorized =
/// the new credential's fingerprint). Deterministic (`prove_with_aux`): the vector pins the
/// proof's generation as well as its verification.
fn reset_proofs(
    dir: &Path,
    trustees: &[dlocker_proto::owner_challenge::TrusteeNonce],
    new_fp: &[u8; 32],
) {
    use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge};
    use dlocker_proto::reset_proof::ResetProof;
    let wallet = "wallet-vector-1";
    let k = SecretScalar::new(scalar("k"));
    let c0 =
        PublicKey::from_affine((ProjectivePoint::GENERATOR * scalar("k")).to_affine()).expect("pt");
    let aux: [u8; 32] = Sha256::digest("dlocker test vector/reset-aux").into();
    let c = OwnerChallenge::new(OwnerAction::ResetPasskey, wallet, new_fp, trustees.to_vec())
        .expect("challenge");
    let proof = ResetProof::prove_with_aux(&k, &c, &aux).expect("prove");
    let nonces = trustees
        .iter()
        .map(|t| json!({"node_id": t.node_id, "nonce": hex::encode(t.nonce)}))
        .collect::<Vec<_>>();
    let base = |expect: &str, description: &str| {
        json!({
            "kind": "reset-proof", "expect": expect, "description": description,
            "wallet_id": wallet, "credential_fingerprint": hex::encode(new_fp),
            "nonces": nonces, "c0": hex::encode(encode_public_key(&c0)),
            "k": hex::encode(k.to_bytes().as_slice()), "aux": hex::encode(aux),
            "proof": hex::encode(proof.encode()),
        })
    };
    write(
        dir,
        "reset-proof-valid",
        base(
            "ok",
            "proof of knowledge of k for C_0 over the reset challenge (action 12) at 3 trustees: r = SHA-256(nonce label || k || aux || challenge), c = SHA-256(proof label || challenge || C_0 || A)",
        ),
    );
    let mut other_fp = base(
        "error",
        "the proof named another credential than the one the trustee is asked to install",
    );
    other_fp["credential_fingerprint"] = json!(hex::encode([0x5a; 32]));
    other_fp.as_object_mut().map(|o| o.remove("k"));
    write(dir, "reset-proof-other-credential", other_fp);
    let mut other_wallet = base("error", "a proof made for another wallet");
    other_wallet["wallet_id"] = json!("wallet-vector-2");
    other_wallet.as_object_mut().map(|o| o.remove("k"));
    write(dir, "reset-proof-other-wallet", other_wallet);
    let mut spent = base(
        "error",
        "a proof replayed in a later ceremony: the trustees' nonces differ",
    );
    let mut later = trustees.to_vec();
    later[1].nonce = Sha256::digest("dlocker test vector/nonce-later").into();
    spent["nonces"] = json!(
        later
            .iter()
            .map(|t| json!({"node_id": t.node_id, "nonce": hex::encode(t.nonce)}))
            .collect::<Vec<_>>()
    );
    spent.as_object_mut().map(|o| o.remove("k"));
    write(dir, "reset-proof-other-nonces", spent);
    let wrong_k =
        ResetProof::prove_with_aux(&SecretScalar::new(scalar("not-k")), &c, &aux).expect("prove");
    let mut wrong = base(
        "error",
        "a proof made with another secret than the wallet's k",
    );
    wrong["proof"] = json!(hex::encode(wrong_k.encode()));
    wrong.as_object_mut().map(|o| o.remove("k"));
    write(dir, "reset-proof-wrong-k", wrong);
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    std::fs::create_dir_all(&dir).expect("mkdir");
    owner_challenges(&dir);
    let (k, shares, comms) = sharing();

    // Share codec.
    write(
        &dir,
        "share-valid",
        json!({
            "kind": "share", "expect": "ok",
            "description": "share index 2 of a 2-of-3 sharing: index u16 BE || value 32 bytes BE",
            "share": hex::encode(shares[1].encode().as_slice()),
            "index": 2,
        }),
    );
    let mut zero_index = shares[1].encode().to_vec();
    zero_index[0] = 0;
    zero_index[1] = 0;
    write(
        &dir,
        "share-zero-index",
        json!({
            "kind": "share", "expect": "error",
            "description": "index 0 is not a share",
            "share": hex::encode(zero_index),
        }),
    );

    // Envelope.
    let node = secret_key("node2");
    let pk = node.public_key();
    let ctx = EnvelopeContext {
        wallet_id: "wallet-vector-1",
        epoch: 1,
        share_index: 2,
        recipient: &pk,
    };
    let eph = secret_key("ephemeral");
    let nonce = [7u8; 12];
    let env = ShareEnvelope::seal_deterministic(&shares[1], &ctx, &eph, nonce).expect("seal");
    let env_case = |expect: &str, description: &str, wallet: &str, epoch: u64, index: u16| {
        json!({
            "kind": "envelope", "expect": expect, "description": description,
            "recipient_secret": hex::encode(node.to_bytes()),
            "ephemeral_secret": hex::encode(eph.to_bytes()),
            "nonce": hex::encode(nonce),
            "wallet_id": wallet, "epoch": epoch, "share_index": index,
            "share": hex::encode(shares[1].encode().as_slice()),
            "envelope": hex::encode(env.encode()),
        })
    };
    write(
        &dir,
        "envelope-valid",
        env_case("ok", "share 2 sealed to node2", "wallet-vector-1", 1, 2),
    );
    write(
        &dir,
        "envelope-wrong-wallet",
        env_case(
            "error",
            "opened under another wallet id: AAD mismatch",
            "wallet-vector-2",
            1,
            2,
        ),
    );
    write(
        &dir,
        "envelope-wrong-epoch",
        env_case(
            "error",
            "opened under another epoch: AAD mismatch",
            "wallet-vector-1",
            2,
            2,
        ),
    );

    // Manifest.
    let m = manifest(&comms);
    write(
        &dir,
        "manifest-valid",
        json!({
            "kind": "manifest", "expect": "ok",
            "description": "2-of-3 manifest, epoch 1",
            "manifest": hex::encode(m.encode()),
            "hash": m.hash().to_string(),
        }),
    );
    let mut trailing = m.encode();
    trailing.push(0);
    write(
        &dir,
        "manifest-trailing-byte",
        json!({
            "kind": "manifest", "expect": "error",
            "description": "a trailing byte makes the encoding non-canonical",
            "manifest": hex::encode(trailing),
        }),
    );

    // Receipt statement.
    let signer = SigningKey::from(secret_key("node2"));
    let receipt = Receipt {
        node_id: node_id(&pk),
        wallet_id: "wallet-vector-1".into(),
        epoch: 1,
        share_index: 2,
        manifest_hash: m.hash(),
        issued_at: 1_767_225_601,
    };
    let signed = Signed::sign(receipt, &signer);
    let enc = signed.encode();
    write(
        &dir,
        "statement-receipt-valid",
        json!({
            "kind": "receipt", "expect": "ok",
            "description": "receipt signed by node2 (RFC 6979 deterministic ECDSA, low-S)",
            "signer_secret": hex::encode(node.to_bytes()),
            "signer_public": hex::encode(encode_public_key(&pk)),
            "manifest_hash": m.hash().to_string(),
            "statement": hex::encode(&enc),
        }),
    );
    let mut flipped = enc.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    write(
        &dir,
        "statement-receipt-flipped-bit",
        json!({
            "kind": "receipt", "expect": "error",
            "description": "one flipped bit in the body: signature fails",
            "signer_public": hex::encode(encode_public_key(&pk)),
            "statement": hex::encode(flipped),
        }),
    );

    // Bank approval.
    let bank = SigningKey::from(secret_key("bank-approval"));
    let approval = BankApproval {
        bank_node_id: m.bank_node_id().to_owned(),
        wallet_id: "wallet-vector-1".into(),
        session_key: secret_key("session-R").public_key(),
        issued_at: 1_767_300_000,
        expires_at: 1_767_303_600,
        approvers: vec!["alice".into(), "bob".into()],
    };
    let enc = Signed::sign(approval, &bank).encode();
    let approval_case = |expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": "bank-approval", "expect": expect, "description": description,
            "signer_secret": hex::encode(secret_key("bank-approval").to_bytes()),
            "signer_public": hex::encode(encode_public_key(&secret_key("bank-approval").public_key())),
            "session_key": hex::encode(encode_public_key(&secret_key("session-R").public_key())),
            "statement": hex::encode(statement),
        })
    };
    write(
        &dir,
        "statement-bank-approval-valid",
        approval_case(
            "ok",
            "approval of wallet-vector-1 towards R by alice and bob",
            &enc,
        ),
    );
    let mut other_kind = enc.clone();
    other_kind[1] = 1;
    write(
        &dir,
        "statement-bank-approval-as-receipt-kind",
        approval_case(
            "error",
            "kind byte changed: the signature covers the kind",
            &other_kind,
        ),
    );

    // Passkey reset approval (kind 13): the bank approves replacing the wallet's credential by
    // the one with this fingerprint.
    let reset = PasskeyResetApproval {
        bank_node_id: m.bank_node_id().to_owned(),
        wallet_id: "wallet-vector-1".into(),
        credential_fingerprint: dlocker_proto::owner_challenge::credential_fingerprint(
            b"vector new credential id",
            b"vector new credential COSE key",
        ),
        request_id: "0123456789abcdef0123456789abcdef".into(),
        issued_at: 1_767_300_000,
        expires_at: 1_767_303_600,
        approvers: vec!["alice".into(), "bob".into()],
    };
    let reset_enc = Signed::sign(reset.clone(), &bank).encode();
    let reset_case = |expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": "passkey-reset-approval", "expect": expect, "description": description,
            "signer_secret": hex::encode(secret_key("bank-approval").to_bytes()),
            "signer_public": hex::encode(encode_public_key(&secret_key("bank-approval").public_key())),
            "credential_fingerprint": hex::encode(reset.credential_fingerprint),
            "statement": hex::encode(statement),
        })
    };
    write(
        &dir,
        "statement-passkey-reset-approval-valid",
        reset_case(
            "ok",
            "bank approval of a passkey reset of wallet-vector-1 to the credential with this fingerprint, by alice and bob",
            &reset_enc,
        ),
    );
    let mut as_recovery = reset_enc.clone();
    as_recovery[1] = BankApproval::KIND;
    write(
        &dir,
        "statement-passkey-reset-approval-as-bank-approval-kind",
        reset_case(
            "error",
            "kind byte changed to a recovery approval's: the signature covers the kind",
            &as_recovery,
        ),
    );

    // Bank cancellation: names the bank's session and when it opened. The first layout (without
    // them), validly signed, is refused.
    let cancellation = BankCancellation {
        bank_node_id: m.bank_node_id().to_owned(),
        wallet_id: "wallet-vector-1".into(),
        session_key: secret_key("session-R").public_key(),
        session_id: "5e55".repeat(8),
        session_opened_at: 1_767_300_000,
        staff_id: "alice".into(),
        issued_at: 1_767_300_600,
    };
    let cancellation_case = |expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": "bank-cancellation", "expect": expect, "description": description,
            "signer_secret": hex::encode(secret_key("bank-approval").to_bytes()),
            "signer_public": hex::encode(encode_public_key(&secret_key("bank-approval").public_key())),
            "session_key": hex::encode(encode_public_key(&secret_key("session-R").public_key())),
            "session_id": "5e55".repeat(8),
            "statement": hex::encode(statement),
        })
    };
    write(
        &dir,
        "statement-bank-cancellation-valid",
        cancellation_case(
            "ok",
            "alice cancels the recovery of wallet-vector-1 towards R whose bank session is 5e55…",
            &Signed::sign(cancellation.clone(), &bank).encode(),
        ),
    );
    let first_layout = {
        let mut body = Writer::new();
        body.str(&cancellation.bank_node_id)
            .str(&cancellation.wallet_id)
            .fixed(&encode_public_key(&cancellation.session_key))
            .str(&cancellation.staff_id)
            .u64(cancellation.issued_at);
        let body = body.finish();
        let signer = encode_public_key(&secret_key("bank-approval").public_key());
        let mut input = Writer::new();
        input
            .fixed(dlocker_proto::labels::STATEMENT)
            .u8(BankCancellation::KIND)
            .fixed(&signer)
            .bytes(&body);
        let sig: k256::ecdsa::Signature =
            k256::ecdsa::signature::Signer::sign(&bank, &input.finish());
        let mut w = Writer::new();
        w.u8(1)
            .u8(BankCancellation::KIND)
            .fixed(&signer)
            .bytes(&body)
            .fixed(&sig.to_bytes());
        w.finish()
    };
    write(
        &dir,
        "statement-bank-cancellation-without-session",
        cancellation_case(
            "error",
            "the first layout (no session id, no opening time), validly signed: does not decode",
            &first_layout,
        ),
    );

    // Staff admin request (the bank's admin adds bob).
    let admin = SigningKey::from(secret_key("staff-admin"));
    let admin_req = StaffAdminRequest {
        node_id: m.bank_node_id().to_owned(),
        change: StaffChange::Add {
            id: "bob".into(),
            public_key: secret_key("staff-bob").public_key(),
            roles: "approver,canceller".into(),
        },
        timestamp: 1_767_300_000,
        nonce: [7; 16],
    };
    let enc = Signed::sign(admin_req, &admin).encode();
    let admin_case = |expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": "staff-admin-request", "expect": expect, "description": description,
            "signer_secret": hex::encode(secret_key("staff-admin").to_bytes()),
            "signer_public": hex::encode(encode_public_key(&secret_key("staff-admin").public_key())),
            "new_staff_public": hex::encode(encode_public_key(&secret_key("staff-bob").public_key())),
            "statement": hex::encode(statement),
        })
    };
    write(
        &dir,
        "statement-staff-admin-request-valid",
        admin_case(
            "ok",
            "the bank's admin adds staff bob (approver,canceller)",
            &enc,
        ),
    );
    let mut as_staff_request = enc.clone();
    as_staff_request[1] = 3;
    write(
        &dir,
        "statement-staff-admin-request-as-staff-request-kind",
        admin_case(
            "error",
            "kind byte changed to a staff request's: the signature covers the kind",
            &as_staff_request,
        ),
    );

    // Blob.
    let ks = SecretScalar::new(k);
    let b = blob::seal_with_nonce(
        &ks,
        "wallet-vector-1",
        b"correct horse battery staple",
        [9u8; 12],
    );
    write(
        &dir,
        "blob-valid",
        json!({
            "kind": "blob", "expect": "ok",
            "description": "wallet data sealed under HKDF(k)",
            "k": hex::encode(ks.to_bytes().as_slice()),
            "wallet_id": "wallet-vector-1",
            "nonce": hex::encode([9u8; 12]),
            "plaintext": hex::encode(b"correct horse battery staple"),
            "blob": hex::encode(&b),
            "hash": hex::encode(blob::hash(&b)),
        }),
    );

    // Epoch rotation statements (kinds 7, 8, 9), about a successor of the manifest above.
    let next_hash = dlocker_proto::manifest::ManifestHash(
        Sha256::digest(b"dlocker test vector/epoch-2").into(),
    );
    let epoch_case = |kind: &str, expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": kind, "expect": expect, "description": description,
            "signer_secret": hex::encode(node.to_bytes()),
            "signer_public": hex::encode(encode_public_key(&pk)),
            "manifest_hash": next_hash.to_string(),
            "statement": hex::encode(statement),
        })
    };
    let stage = Signed::sign(
        StageReceipt {
            node_id: node_id(&pk),
            wallet_id: "wallet-vector-1".into(),
            epoch: 2,
            share_index: 1,
            manifest_hash: next_hash,
            previous_manifest_hash: m.hash(),
            staged_at: 1_767_400_000,
            expires_at: 1_768_004_800,
        },
        &signer,
    )
    .encode();
    write(
        &dir,
        "statement-stage-receipt-valid",
        epoch_case(
            "stage-receipt",
            "ok",
            "node2 staged epoch 2 (share 1) beside epoch 1",
            &stage,
        ),
    );
    let commit = Signed::sign(
        CommitReceipt {
            node_id: node_id(&pk),
            wallet_id: "wallet-vector-1".into(),
            epoch: 2,
            share_index: 1,
            manifest_hash: next_hash,
            erased: Some(m.hash()),
            committed_at: 1_767_400_100,
        },
        &signer,
    )
    .encode();
    write(
        &dir,
        "statement-commit-receipt-valid",
        epoch_case(
            "commit-receipt",
            "ok",
            "node2 committed epoch 2 and erased its epoch-1 share",
            &commit,
        ),
    );
    write(
        &dir,
        "statement-commit-receipt-as-stage-kind",
        epoch_case(
            "stage-receipt",
            "error",
            "a commit receipt is never accepted as a stage receipt",
            &commit,
        ),
    );
    let retire = Signed::sign(
        RetireReceipt {
            node_id: node_id(&pk),
            wallet_id: "wallet-vector-1".into(),
            retired_epoch: 1,
            retired_manifest_hash: m.hash(),
            successor_manifest_hash: next_hash,
            retired_at: 1_767_400_200,
        },
        &signer,
    )
    .encode();
    write(
        &dir,
        "statement-retire-receipt-valid",
        epoch_case(
            "retire-receipt",
            "ok",
            "node2 left the wallet: epoch-1 data erased, successor named",
            &retire,
        ),
    );

    // A holder's attestation of the wallet's credential (kind 10), about its active manifest.
    let fingerprint: [u8; 32] = Sha256::digest(b"dlocker test vector/credential").into();
    let attestation = Signed::sign(
        CredentialAttestation {
            node_id: node_id(&pk),
            wallet_id: "wallet-vector-1".into(),
            epoch: 1,
            manifest_hash: m.hash(),
            credential_fingerprint: fingerprint,
            issued_at: 1_767_400_300,
        },
        &signer,
    )
    .encode();
    // The owner's delete at a trustee (kind 11).
    let erase = Signed::sign(
        EraseReceipt {
            node_id: node_id(&pk),
            wallet_id: "wallet-vector-1".into(),
            epoch: 1,
            manifest_hash: Some(m.hash()),
            staged_manifest_hash: Some(next_hash),
            erased_at: 1_767_400_300,
        },
        &signer,
    )
    .encode();
    let attestation_case = |expect: &str, description: &str, statement: &[u8]| {
        json!({
            "kind": "credential-attestation", "expect": expect, "description": description,
            "signer_secret": hex::encode(node.to_bytes()),
            "signer_public": hex::encode(encode_public_key(&pk)),
            "manifest_hash": m.hash().to_string(),
            "credential_fingerprint": hex::encode(fingerprint),
            "statement": hex::encode(statement),
        })
    };
    write(
        &dir,
        "statement-credential-attestation-valid",
        attestation_case(
            "ok",
            "node2 holds epoch 1 of the wallet, whose credential has this fingerprint",
            &attestation,
        ),
    );
    write(
        &dir,
        "statement-stage-receipt-as-credential-attestation",
        attestation_case(
            "error",
            "a stage receipt is never accepted as a credential attestation",
            &stage,
        ),
    );
    let mut erase_case = epoch_case(
        "erase-receipt",
        "ok",
        "node2 erased the wallet at its owner's request: active epoch 1 and staged epoch 2",
        &erase,
    );
    erase_case["manifest_hash"] = json!(m.hash().to_string());
    write(&dir, "statement-erase-receipt-valid", erase_case.clone());
    erase_case["kind"] = json!("retire-receipt");
    erase_case["expect"] = json!("error");
    erase_case["description"] = json!("an erase receipt is never accepted as a retire receipt");
    write(&dir, "statement-erase-receipt-as-retire-kind", erase_case);

    // Possession proof (randomised: the vector pins verification, not generation).
    let pnonce = [3u8; 32];
    let pctx = ProofContext {
        wallet_id: "wallet-vector-1",
        epoch: 1,
        share_index: 2,
        node_key: &pk,
        nonce: &pnonce,
    };
    let proof = PossessionProof::prove(&shares[1], &pctx).expect("prove");
    let proof_case = |expect: &str, description: &str, nonce: [u8; 32]| {
        json!({
            "kind": "possession-proof", "expect": expect, "description": description,
            "manifest": hex::encode(m.encode()),
            "node_public": hex::encode(encode_public_key(&pk)),
            "share_index": 2,
            "nonce": hex::encode(nonce),
            "proof": hex::encode(proof.encode()),
        })
    };
    write(
        &dir,
        "possession-proof-valid",
        proof_case("ok", "node2 proves share 2", pnonce),
    );
    write(
        &dir,
        "possession-proof-wrong-nonce",
        proof_case("error", "replayed under another nonce", [4u8; 32]),
    );
    println!("wrote {}", dir.display());
}
