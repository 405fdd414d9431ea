//! Writes the seed corpora under `fuzz/corpus/<target>/` from the test vectors in
//! `proto/test-vectors` and `locker/test-vectors` (plus a few objects made here for statement
//! kinds without a vector file). Run once after a vector changes and commit the result:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! Seeds are small and deterministic (fixed keys and nonces), so re-running changes nothing
//! unless a vector did, except `record/seed-sealed` (`record::seal` picks a random nonce).

use dlocker_fuzz::{SIGNER, SIGNER_PUBLIC, hex_field, str_field};
use dlocker_locker::b64;
use dlocker_locker::jwk::Jwk;
use dlocker_locker::vc::Draft;
use dlocker_proto::codec::{Reader, Writer};
use dlocker_proto::manifest::{Manifest, ManifestHash};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::statement::{
    AuditCheckpoint, BankCancellation, ShareRelease, Signed, StaffAction, StaffRequest,
    StatementBody,
};
use prost::Message as _;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn vectors(dir: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(root().join(dir).join("test-vectors"))
        .expect("vector dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("x")
                .to_owned();
            let v =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

struct Corpus {
    dir: PathBuf,
    count: usize,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = root().join("fuzz").join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Self { dir, count: 0 }
    }
    fn put(&mut self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.join(format!("seed-{name}")), bytes).expect("write");
        self.count += 1;
    }
    fn with_mode(&mut self, name: &str, mode: u8, bytes: &[u8]) {
        self.put(name, &[&[mode], bytes].concat());
    }
}

/// `kind ‖ body` of an encoded statement, as `statement_body` takes it (the body's index in
/// the selector table is `kind - 1`).
fn kind_and_body(wire: &[u8]) -> Option<(u8, Vec<u8>)> {
    let mut r = Reader::new(wire);
    let _version = r.u8().ok()?;
    let kind = r.u8().ok()?;
    let _signer = r.array::<33>().ok()?;
    let body = r.bytes("body", 1 << 16).ok()?;
    Some((kind, body.to_vec()))
}

fn body_of<T: StatementBody>(body: T) -> Vec<u8> {
    let wire = Signed::sign(body, &SIGNER).encode();
    kind_and_body(&wire).map(|(_, b)| b).unwrap_or_default()
}

/// The payload of a compact JWS.
fn jws_payload(compact: &str) -> Vec<u8> {
    compact
        .split('.')
        .nth(1)
        .and_then(|p| b64::decode("payload", p).ok())
        .unwrap_or_default()
}

fn main() {
    let proto = vectors("proto");
    let locker = vectors("locker");

    // proto: share, envelope, manifest, proof, blob, statements.
    let mut share = Corpus::new("share");
    let mut envelope = Corpus::new("envelope");
    let mut manifest = Corpus::new("manifest");
    let mut proof = Corpus::new("possession_proof");
    let mut reset_proof = Corpus::new("reset_proof");
    let mut blob = Corpus::new("blob");
    let mut statement = Corpus::new("statement");
    let mut statement_body = Corpus::new("statement_body");
    let mut codec = Corpus::new("codec");
    let mut valid_manifest = None;
    for (name, v) in &proto {
        let field = |f: &str| hex_field(v, f);
        match str_field(v, "kind") {
            "share" => share.put(name, &field("share")),
            "envelope" => {
                envelope.put(name, &field("envelope"));
                share.put(name, &field("share"));
            }
            "manifest" => {
                let m = field("manifest");
                if valid_manifest.is_none() {
                    valid_manifest = Manifest::decode(&m).ok();
                }
                manifest.put(name, &m);
                // A script reading a manifest's first fields, then the rest.
                codec.put(name, &[&[6u8, 0, 5 + 9 * 3, 3, 1, 1, 7][..], &m].concat());
            }
            "reset-proof" => reset_proof.put(name, &field("proof")),
            "possession-proof" => {
                proof.put(name, &field("proof"));
                manifest.put(name, &field("manifest"));
            }
            "blob" => blob.put(name, &field("blob")),
            _ if name.starts_with("statement-") => {
                let wire = field("statement");
                statement.put(name, &wire);
                if let Some((kind, body)) = kind_and_body(&wire) {
                    statement_body.with_mode(name, kind.wrapping_sub(1), &body);
                }
            }
            _ => {}
        }
    }
    // A share followed by its sharing's commitments (share-valid is index 2 of that sharing).
    if let Some(m) = &valid_manifest {
        let points: Vec<u8> = m
            .commitments()
            .points()
            .iter()
            .flat_map(dlocker_proto::keys::encode_public_key)
            .collect();
        for (name, v) in &proto {
            if str_field(v, "kind") == "share" {
                share.put(
                    &format!("{name}-with-commitments"),
                    &[hex_field(v, "share"), points.clone()].concat(),
                );
            }
        }
    }

    // Statement kinds without a vector file, signed by the fixed key.
    let session_key = *SIGNER_PUBLIC;
    let node_id = "abababababababababababababababab".to_owned();
    let staff = StaffRequest {
        node_id: node_id.clone(),
        action: StaffAction::ApproveRecovery,
        target: "0123456789abcdef0123456789abcdef".into(),
        timestamp: 1_767_225_600,
        nonce: [7; 16],
    };
    let checkpoint = AuditCheckpoint {
        node_id: node_id.clone(),
        seq: 2,
        head_hash: [0; 32],
        at: 1_767_225_600,
    };
    let release = ShareRelease {
        node_id: node_id.clone(),
        wallet_id: "wallet-vector-1".into(),
        epoch: 1,
        share_index: 2,
        manifest_hash: ManifestHash([5; 32]),
        session_key,
        envelope_hash: [6; 32],
        released_at: 1_767_225_600,
    };
    let cancellation = BankCancellation {
        bank_node_id: node_id.clone(),
        wallet_id: "wallet-vector-1".into(),
        session_key,
        session_id: "5e55".repeat(8),
        session_opened_at: 1_767_225_000,
        staff_id: "alice".into(),
        issued_at: 1_767_225_600,
    };
    statement.put(
        "staff-request",
        &Signed::sign(staff.clone(), &SIGNER).encode(),
    );
    statement.put(
        "audit-checkpoint",
        &Signed::sign(checkpoint.clone(), &SIGNER).encode(),
    );
    statement.put(
        "share-release",
        &Signed::sign(release.clone(), &SIGNER).encode(),
    );
    statement.put(
        "bank-cancellation",
        &Signed::sign(cancellation.clone(), &SIGNER).encode(),
    );
    statement_body.with_mode(
        "staff-request",
        StaffRequest::KIND - 1,
        &body_of(staff.clone()),
    );
    statement_body.with_mode(
        "audit-checkpoint",
        AuditCheckpoint::KIND - 1,
        &body_of(checkpoint.clone()),
    );
    statement_body.with_mode("share-release", ShareRelease::KIND - 1, &body_of(release));
    statement_body.with_mode(
        "bank-cancellation",
        BankCancellation::KIND - 1,
        &body_of(cancellation),
    );
    codec.put(
        "strings",
        &[
            3,
            4 + 9 * 2,
            5 + 9 * 3,
            8,
            0,
            0,
            0,
            2,
            b'h',
            b'i',
            0,
            0,
            0,
            1,
            b'x',
        ],
    );

    // Staff requests as the node checks them: mode = action index << 1 | signed-here bit.
    let mut staff_c = Corpus::new("staff_request");
    staff_c.with_mode("approve-signed-here", (1 << 1) | 1, &body_of(staff.clone()));
    staff_c.with_mode(
        "approve-wire",
        1 << 1,
        &Signed::sign(staff.clone(), &SIGNER).encode(),
    );
    let list = StaffRequest {
        action: StaffAction::ListRecoveries,
        target: String::new(),
        nonce: [8; 16],
        ..staff
    };
    staff_c.with_mode("list-signed-here", 1, &body_of(list));

    // Audit: mode ‖ checkpoint body (u16 length) ‖ entries.
    let mut audit = Corpus::new("audit");
    let body = body_of(checkpoint);
    let mut entries = Writer::new();
    for seq in 1..=2u64 {
        entries
            .u64(seq)
            .u64(1_767_225_600 + seq)
            .str("enrollment")
            .str("0f0f")
            .str("epoch=1")
            .fixed(&[0; 32])
            .fixed(&[0; 32]);
    }
    let entries = entries.finish();
    for mode in [0u8, 1, 0x23, 0x45, 0x67] {
        audit.put(
            &format!("mode-{mode:02x}"),
            &[
                &[mode][..],
                &(body.len() as u16).to_be_bytes(),
                &body,
                &entries,
            ]
            .concat(),
        );
    }

    // Rotation records: mode 0 seals the rest here; mode 1 opens the input as it is.
    let mut record = Corpus::new("record");
    record.put("plaintext", b"\x00share 1 of epoch 2");
    if let Some(k) = SecretScalar::from_bytes(&[0x33; 32]) {
        let sealed =
            dlocker_proto::record::seal(&k, "wallet-vector-1", &ManifestHash([0x44; 32]), b"x");
        record.put("sealed", &sealed);
    }

    // Locker.
    let mut request = Corpus::new("locker_request");
    let mut jws_jwk = Corpus::new("jws_jwk");
    let mut vc = Corpus::new("vc");
    let mut status = Corpus::new("status_list");
    let mut ids = Corpus::new("locker_ids");
    let mut draft = Corpus::new("locker_draft");
    for (name, v) in &locker {
        match str_field(v, "kind") {
            "locker-request" => {
                let wire = hex_field(v, "request");
                request.with_mode(name, 0, &wire);
                if let Some((_, body)) = kind_and_body(&wire) {
                    request.with_mode(&format!("{name}-body"), 1, &body);
                }
                statement.put(name, &wire);
                for u in v["uris"].as_array().into_iter().flatten() {
                    ids.put(&format!("{name}-uri"), u.as_str().unwrap_or("").as_bytes());
                }
            }
            "jwk" => {
                jws_jwk.with_mode(name, 1, v["jwk"].to_string().as_bytes());
            }
            "credential" | "self-attested" => {
                let c = str_field(v, "credential");
                vc.with_mode(name, 0, c.as_bytes());
                jws_jwk.with_mode(name, 0, c.as_bytes());
                if name.ends_with("-valid") {
                    let payload = jws_payload(c);
                    vc.with_mode(&format!("{name}-payload"), 1, &payload);
                    jws_jwk.with_mode(&format!("{name}-payload"), 2, &payload);
                    if let Ok(p) = serde_json::from_slice::<Value>(&payload) {
                        for f in ["validFrom", "validUntil"] {
                            if let Some(s) = p[f].as_str() {
                                ids.put(&format!("{name}-{f}"), s.as_bytes());
                            }
                        }
                        if let Some(s) = p["credentialStatus"]["statusListCredential"].as_str() {
                            ids.put(&format!("{name}-list-url"), s.as_bytes());
                        }
                    }
                }
                if let Some(d) = v.get("draft") {
                    if let Some(p) = draft_pb(d) {
                        draft.put(name, &p.encode_to_vec());
                    }
                    if let Some(u) = d["document_uri"].as_str() {
                        ids.put(&format!("{name}-uri"), u.as_bytes());
                    }
                    if let Some(u) = d["credential_id"].as_str() {
                        ids.put(&format!("{name}-credential-id"), u.as_bytes());
                    }
                }
            }
            "status-list" => {
                let c = str_field(v, "credential");
                status.with_mode(name, 0, c.as_bytes());
                jws_jwk.with_mode(name, 0, c.as_bytes());
                let payload = jws_payload(c);
                status.with_mode(&format!("{name}-payload"), 1, &payload);
                if let Ok(p) = serde_json::from_slice::<Value>(&payload)
                    && let Some(l) = p["credentialSubject"]["encodedList"].as_str()
                {
                    status.with_mode(&format!("{name}-encoded-list"), 2, l.as_bytes());
                }
            }
            "encoded-list" => {
                status.with_mode(name, 2, str_field(v, "encoded_list").as_bytes());
            }
            _ => {}
        }
    }
    jws_jwk.with_mode(
        "jwk-fixed",
        1,
        Jwk::from_public_key(&SIGNER_PUBLIC)
            .to_json_string()
            .as_bytes(),
    );
    for s in [
        "2026-01-01T00:00:00Z",
        "2025-12-31T23:59:59.123+05:30",
        "self-PHOTO-00000000000000000000000000000000",
        "urn:dlocker:issuer:in.gov.transport",
        "https://locker.example/status-lists/in.gov.transport/0",
        "consent_not_found",
    ] {
        ids.put(&s.replace(['/', ':'], "_"), s.as_bytes());
    }

    // Node config files (for the `node` feature's node_config target).
    let mut config = Corpus::new("node_config");
    for (name, file) in [
        ("deploy-example-bank", "bank-node.toml"),
        ("deploy-example-trustee", "trustee-node.toml"),
    ] {
        let example = root().join("deploy").join("examples").join(file);
        if let Ok(text) = std::fs::read_to_string(example) {
            config.put(name, text.as_bytes());
        }
    }
    config.put(
        "minimal-trustee",
        b"[node]\nname = \"t\"\nrole = \"trustee\"\nlisten = \"127.0.0.1:7101\"\nendpoint = \"http://127.0.0.1:7101\"\n[webauthn]\nrp_id = \"localhost\"\norigins = [\"https://localhost\"]\n",
    );

    // node_requests seeds are hand-made protobuf messages (fuzz/corpus/node_requests/).
    for c in [
        &codec,
        &share,
        &envelope,
        &manifest,
        &statement,
        &statement_body,
        &audit,
        &proof,
        &reset_proof,
        &blob,
        &record,
        &request,
        &jws_jwk,
        &vc,
        &status,
        &ids,
        &draft,
        &staff_c,
        &config,
    ] {
        println!("{}: {} seeds", c.dir.display(), c.count);
    }
}

/// The `DocumentDraft` message of a vector's draft (as the locker sends it to a pull issuer).
fn draft_pb(d: &Value) -> Option<dlocker_proto::pb::DocumentDraft> {
    let key = dlocker_proto::keys::public_key_from_hex(d["holder_public"].as_str()?).ok()?;
    let draft = Draft {
        credential_id: d["credential_id"].as_str()?.to_owned(),
        issuer_id: d["issuer_id"].as_str()?.to_owned(),
        issuer_name: d["issuer_name"].as_str()?.to_owned(),
        holder_id: d["holder_id"].as_str()?.to_owned(),
        holder_key: key,
        uri: dlocker_locker::ids::DocUri::parse(d["document_uri"].as_str()?).ok()?,
        status: dlocker_locker::status_list::StatusEntry {
            list_url: d["status_list_credential"].as_str()?.to_owned(),
            index: d["status_list_index"].as_u64()? as u32,
        },
        valid_from: d["valid_from"].as_u64()?,
        valid_until: d["valid_until"].as_u64(),
    };
    Some(dlocker_locker::wire::draft_to_pb(&draft, 1_767_225_600))
}
