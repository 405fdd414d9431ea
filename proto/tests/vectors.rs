//! Runs every file in `test-vectors/` (not a hand-picked list) and fails on a file it cannot
//! classify, so a vector can never be silently skipped.

use dlocker_proto::blob;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::decode_public_key;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::Share;
use dlocker_proto::statement::{
    BankApproval, BankCancellation, CommitReceipt, CredentialAttestation, EraseReceipt,
    PasskeyResetApproval, Receipt, RetireReceipt, Signed, StaffAdminRequest, StaffChange,
    StageReceipt, StatementBody,
};
use k256::SecretKey;
use serde_json::Value;
use std::path::Path;

fn h(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("missing {field}")),
    )
    .expect("hex")
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("missing {field}"))
}

/// Runs one vector; `Ok` when the code accepted it and reproduced every output.
fn run(v: &Value) -> Result<(), String> {
    match s(v, "kind") {
        "owner-challenge" => owner_challenge(v),
        "share" => {
            let share = Share::decode(&h(v, "share")).map_err(|e| e.to_string())?;
            if v.get("index").is_some() {
                assert_eq!(u64::from(share.index()), n(v, "index"));
                assert_eq!(share.encode().as_slice(), h(v, "share").as_slice());
            }
            Ok(())
        }
        "envelope" => {
            let node = SecretKey::from_slice(&h(v, "recipient_secret")).expect("key");
            let pk = node.public_key();
            let ctx = EnvelopeContext {
                wallet_id: s(v, "wallet_id"),
                epoch: n(v, "epoch"),
                share_index: n(v, "share_index") as u16,
                recipient: &pk,
            };
            let env = ShareEnvelope::decode(&h(v, "envelope")).map_err(|e| e.to_string())?;
            let share = env.open(&ctx, &node).map_err(|e| e.to_string())?;
            assert_eq!(share.encode().as_slice(), h(v, "share").as_slice());
            // Sealing is reproducible from the same ephemeral key and nonce.
            let eph = SecretKey::from_slice(&h(v, "ephemeral_secret")).expect("key");
            let nonce: [u8; 12] = h(v, "nonce").try_into().expect("nonce");
            let again = ShareEnvelope::seal_deterministic(&share, &ctx, &eph, nonce)
                .map_err(|e| e.to_string())?;
            assert_eq!(again.encode(), h(v, "envelope"));
            Ok(())
        }
        "manifest" => {
            let m = Manifest::decode(&h(v, "manifest")).map_err(|e| e.to_string())?;
            assert_eq!(m.encode(), h(v, "manifest"));
            assert_eq!(m.hash().to_string(), s(v, "hash"));
            Ok(())
        }
        "receipt" => {
            let st = signed_vector::<Receipt>(v)?;
            assert_eq!(st.body().manifest_hash.to_string(), s(v, "manifest_hash"));
            Ok(())
        }
        "bank-approval" => {
            let st = signed_vector::<BankApproval>(v)?;
            assert_eq!(
                dlocker_proto::keys::encode_public_key(&st.body().session_key).to_vec(),
                h(v, "session_key")
            );
            Ok(())
        }
        "passkey-reset-approval" => {
            let st = signed_vector::<PasskeyResetApproval>(v)?;
            assert_eq!(
                st.body().credential_fingerprint.to_vec(),
                h(v, "credential_fingerprint")
            );
            Ok(())
        }
        "reset-proof" => reset_proof(v),
        "bank-cancellation" => {
            let st = signed_vector::<BankCancellation>(v)?;
            assert_eq!(
                dlocker_proto::keys::encode_public_key(&st.body().session_key).to_vec(),
                h(v, "session_key")
            );
            assert_eq!(st.body().session_id, s(v, "session_id"));
            Ok(())
        }
        "staff-admin-request" => {
            let st = signed_vector::<StaffAdminRequest>(v)?;
            match &st.body().change {
                StaffChange::Add { public_key, .. } => assert_eq!(
                    dlocker_proto::keys::encode_public_key(public_key).to_vec(),
                    h(v, "new_staff_public")
                ),
                other => return Err(format!("unexpected change {other:?}")),
            }
            Ok(())
        }
        "stage-receipt" => epoch_statement::<StageReceipt>(v, |b| b.manifest_hash.to_string()),
        "commit-receipt" => epoch_statement::<CommitReceipt>(v, |b| b.manifest_hash.to_string()),
        "retire-receipt" => {
            epoch_statement::<RetireReceipt>(v, |b| b.successor_manifest_hash.to_string())
        }
        "credential-attestation" => {
            let st = signed_vector::<CredentialAttestation>(v)?;
            assert_eq!(st.body().manifest_hash.to_string(), s(v, "manifest_hash"));
            assert_eq!(
                st.body().credential_fingerprint.to_vec(),
                h(v, "credential_fingerprint")
            );
            Ok(())
        }
        "erase-receipt" => epoch_statement::<EraseReceipt>(v, |b| {
            b.manifest_hash.map(|h| h.to_string()).unwrap_or_default()
        }),
        "blob" => {
            let kb: [u8; 32] = h(v, "k").try_into().expect("k");
            let k = SecretScalar::from_bytes(&kb).expect("k");
            let nonce: [u8; 12] = h(v, "nonce").try_into().expect("nonce");
            let sealed = blob::seal_with_nonce(&k, s(v, "wallet_id"), &h(v, "plaintext"), nonce);
            assert_eq!(sealed, h(v, "blob"));
            assert_eq!(blob::hash(&sealed).to_vec(), h(v, "hash"));
            let opened =
                blob::open(&k, s(v, "wallet_id"), &h(v, "blob")).map_err(|e| e.to_string())?;
            assert_eq!(opened.expose(), h(v, "plaintext").as_slice());
            Ok(())
        }
        "possession-proof" => {
            let m = Manifest::decode(&h(v, "manifest")).expect("manifest");
            let pk = decode_public_key(&h(v, "node_public")).expect("key");
            let nonce: [u8; 32] = h(v, "nonce").try_into().expect("nonce");
            let index = n(v, "share_index") as u16;
            let ctx = ProofContext {
                wallet_id: m.wallet_id(),
                epoch: m.epoch(),
                share_index: index,
                node_key: &pk,
                nonce: &nonce,
            };
            let proof = PossessionProof::decode(&h(v, "proof")).map_err(|e| e.to_string())?;
            proof
                .verify(&m.commitments().expected_public_share(index), &ctx)
                .map_err(|e| e.to_string())
        }
        other => panic!("unknown vector kind {other:?}"),
    }
}

/// An epoch-rotation statement: decodes under the pinned signer, names the expected manifest, and
/// re-signs to the same bytes.
fn epoch_statement<T: StatementBody + Clone>(
    v: &Value,
    manifest_of: impl Fn(&T) -> String,
) -> Result<(), String> {
    let st = signed_vector::<T>(v)?;
    assert_eq!(manifest_of(st.body()), s(v, "manifest_hash"));
    Ok(())
}

/// The vector's statement, decoded under its `signer_public`; it re-signs with `signer_secret`
/// to the same bytes (ECDSA here is deterministic, RFC 6979).
fn signed_vector<T: StatementBody + Clone>(v: &Value) -> Result<Signed<T>, String> {
    let pk = decode_public_key(&h(v, "signer_public")).expect("key");
    let st = Signed::<T>::decode_trusted(&h(v, "statement"), &[pk]).map_err(|e| e.to_string())?;
    let key = k256::ecdsa::SigningKey::from_slice(&h(v, "signer_secret")).expect("key");
    assert_eq!(
        Signed::sign(st.body().clone(), &key).encode(),
        h(v, "statement")
    );
    Ok(st)
}

/// A trustee's view of a one-touch challenge: the inputs must form a valid challenge that
/// includes `verifier_node_id`, and hash to `challenge` (what the authenticator signed).
fn owner_challenge(v: &Value) -> Result<(), String> {
    use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge};
    let action = OwnerAction::from_u8(n(v, "action") as u8).ok_or("unknown action")?;
    let nonces: Vec<(String, Vec<u8>)> = v["nonces"]
        .as_array()
        .expect("nonces")
        .iter()
        .map(|e| (s(e, "node_id").to_owned(), h(e, "nonce")))
        .collect();
    let c = OwnerChallenge::from_wire(
        action,
        s(v, "wallet_id"),
        &h(v, "authorized"),
        nonces.iter().map(|(id, n)| (id.as_str(), n.as_slice())),
    )
    .map_err(|e| e.to_string())?;
    if c.nonce_of(s(v, "verifier_node_id")).is_none() {
        return Err("the challenge does not include the verifier's nonce".into());
    }
    if let Some(enc) = v.get("encoding").and_then(Value::as_str) {
        assert_eq!(hex::encode(c.encode()), enc, "encoding");
    }
    if c.digest().to_vec() != h(v, "challenge") {
        return Err("the challenge the authenticator signed is not this one".into());
    }
    Ok(())
}

/// A trustee's check of a passkey-reset proof: over the challenge it recomputes (action 12, the
/// wallet, the fingerprint of the credential it is asked to install, the nonces) against `C_0`.
/// With `k` and `aux` given, the proof must also be reproduced byte for byte.
fn reset_proof(v: &Value) -> Result<(), String> {
    use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge};
    use dlocker_proto::reset_proof::ResetProof;
    let nonces: Vec<(String, Vec<u8>)> = v["nonces"]
        .as_array()
        .expect("nonces")
        .iter()
        .map(|e| (s(e, "node_id").to_owned(), h(e, "nonce")))
        .collect();
    let c = OwnerChallenge::from_wire(
        OwnerAction::ResetPasskey,
        s(v, "wallet_id"),
        &h(v, "credential_fingerprint"),
        nonces.iter().map(|(id, n)| (id.as_str(), n.as_slice())),
    )
    .map_err(|e| e.to_string())?;
    let c0 = decode_public_key(&h(v, "c0")).expect("C_0");
    if let Some(k) = v.get("k").and_then(Value::as_str) {
        let kb: [u8; 32] = hex::decode(k).expect("hex").try_into().expect("k");
        let k = SecretScalar::from_bytes(&kb).expect("k");
        let aux: [u8; 32] = h(v, "aux").try_into().expect("aux");
        let again = ResetProof::prove_with_aux(&k, &c, &aux).map_err(|e| e.to_string())?;
        assert_eq!(again.encode(), h(v, "proof"), "proof generation");
    }
    let proof = ResetProof::decode(&h(v, "proof")).map_err(|e| e.to_string())?;
    proof.verify(&c0, &c).map_err(|e| e.to_string())
}

#[test]
fn every_vector_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("test-vectors dir") {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("json"),
            "stray file {name}"
        );
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let result = run(&v);
        match s(&v, "expect") {
            "ok" => assert!(result.is_ok(), "{name}: expected ok, got {result:?}"),
            "error" => assert!(result.is_err(), "{name}: expected an error"),
            other => panic!("{name}: unknown expect {other:?}"),
        }
        count += 1;
    }
    assert!(count >= 14, "only {count} vectors found");
}
