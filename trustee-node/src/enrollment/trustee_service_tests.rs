//! In-process tests of the Trustee service: a real server on loopback, a real client, and a
//! software passkey (test only).

use crate::config::{NodeConfig, Role};
use crate::db::{Database, SHARES_TREE, wallet_key};
use crate::enrollment::{BeginEnrollment, FinishEnrollment};
use crate::error::NodeError;
use crate::init::{InitOptions, init_node};
use crate::keys::FileKeyProvider;
use crate::node::{Clock, Node};
use crate::owner_touch_tests as touch;
use crate::server::{RunningNode, spawn};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::{decode_public_key, node_id};
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Share, split};
use dlocker_proto::statement::{Receipt, Signed};
use k256::elliptic_curve::Generate;
use k256::{PublicKey, Scalar, SecretKey};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::Code;
use tonic::transport::Channel;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// A backup prepared the way the SDK does it, for a 2-of-3 set whose first trustee (the bank)
/// is the node under test.
pub(crate) struct Backup {
    pub(crate) manifest: Manifest,
    pub(crate) shares: Vec<Share>,
    pub(crate) blob: Vec<u8>,
    pub(crate) node_key: PublicKey,
    /// The nonces of the last [`begin`] for this backup (what `request` sends).
    pub(crate) nonces: std::sync::Mutex<Vec<pb::TrusteeNonce>>,
}

impl Backup {
    pub(crate) fn new(wallet: &str, node_key: PublicKey) -> Self {
        let (shares, commitments) = split(&SecretScalar::random(), 2, 3).expect("split");
        let mut keys = vec![node_key];
        keys.extend((0..2).map(|_| SecretKey::generate_from_rng(&mut rand::rng()).public_key()));
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, pk)| TrusteeEntry {
                share_index: i as u16 + 1,
                node_id: node_id(pk),
                public_key: *pk,
            })
            .collect();
        let blob = dlocker_proto::blob::seal(&SecretScalar::random(), wallet, b"wallet seed words");
        let manifest = Manifest::new(ManifestParts {
            wallet_id: wallet.into(),
            epoch: 1,
            threshold: 2,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 60,
            blob_hash: dlocker_proto::blob::hash(&blob),
            created_at: 1_700_000_000,
            previous: None,
        })
        .expect("manifest");
        Self {
            manifest,
            shares,
            blob,
            node_key,
            nonces: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn envelope_of(&self, share: &Share, recipient: &PublicKey) -> Vec<u8> {
        let ctx = EnvelopeContext {
            wallet_id: self.manifest.wallet_id(),
            epoch: 1,
            share_index: share.index(),
            recipient,
        };
        ShareEnvelope::seal(share, &ctx).expect("seal").encode()
    }

    pub(crate) fn request(
        &self,
        ceremony_id: &str,
        credential_json: &str,
    ) -> pb::FinishEnrollmentRequest {
        pb::FinishEnrollmentRequest {
            ceremony_id: ceremony_id.into(),
            credential_json: credential_json.into(),
            manifest_encoded: self.manifest.encode(),
            share_envelope_encoded: self.envelope_of(&self.shares[0], &self.node_key),
            blob: self.blob.clone(),
            nonces: self.nonces.lock().expect("lock").clone(),
        }
    }
}

fn init(dir: &Path, blob_limit: Option<usize>) {
    let mut opts = InitOptions::new(
        dir.to_path_buf(),
        "bank",
        "127.0.0.1:0".parse().expect("addr"),
        Role::Bank,
    );
    opts.endpoint = Some("http://127.0.0.1:7101".into());
    init_node(&opts).expect("init");
    if let Some(max) = blob_limit {
        let path = dir.join("config.toml");
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace("max_blob_bytes = 65536", &format!("max_blob_bytes = {max}"));
        std::fs::write(&path, text).expect("write");
    }
}

async fn client(node: &RunningNode) -> TrusteeClient<Channel> {
    TrusteeClient::connect(node.url()).await.expect("connect")
}

/// BeginEnrollment, then the software passkey's one-touch registration for `manifest` with this
/// node (`node_key`) the ceremony's only trustee. Returns the ceremony, the credential JSON and
/// the nonces to send.
pub(crate) async fn begin_for(
    c: &mut TrusteeClient<Channel>,
    auth: &mut SoftPasskey,
    manifest: &Manifest,
    node_key: &PublicKey,
) -> (String, String, Vec<pb::TrusteeNonce>) {
    let wallet = manifest.wallet_id();
    let r = c
        .begin_enrollment(pb::BeginEnrollmentRequest {
            wallet_id: wallet.into(),
            user_name: "alice".into(),
            customer_reference: String::new(),
        })
        .await
        .expect("begin")
        .into_inner();
    let pairs = vec![(node_id(node_key), r.nonce.clone())];
    let challenge = touch::challenge(OwnerAction::Backup, wallet, &manifest.hash().0, &pairs);
    let cred = touch::register(auth, &r.creation_options_json, &challenge);
    (r.ceremony_id, cred, touch::wire(&pairs))
}

/// [`begin_for`] a [`Backup`]; the nonces are kept in it for `request`.
pub(crate) async fn begin(
    c: &mut TrusteeClient<Channel>,
    auth: &mut SoftPasskey,
    backup: &Backup,
) -> (String, String) {
    let (ceremony, cred, nonces) = begin_for(c, auth, &backup.manifest, &backup.node_key).await;
    *backup.nonces.lock().expect("lock") = nonces;
    (ceremony, cred)
}

async fn status_code(c: &mut TrusteeClient<Channel>, wallet: &str) -> Code {
    match c
        .get_backup_status(pb::GetBackupStatusRequest {
            wallet_id: wallet.into(),
        })
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test]
async fn enrollment_over_grpc() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, None);
    let node = spawn(dir).await.expect("spawn");
    let mut c = client(&node).await;
    let mut auth = SoftPasskey::new(true);

    // GetInfo.
    let info = c
        .get_info(pb::GetInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    let node_key = decode_public_key(&info.public_key).expect("key");
    assert_eq!(info.node_id, node_id(&node_key));
    assert_eq!(info.role, "bank");
    assert_eq!(info.endpoint, "http://127.0.0.1:7101");
    assert_eq!(info.protocol_version, dlocker_proto::PROTOCOL_VERSION);

    let wallet = "wallet-1";
    let backup = Backup::new(wallet, node_key);
    let (ceremony, cred) = begin(&mut c, &mut auth, &backup).await;

    // Every bad deposit is refused with the right code and leaves nothing behind; the ceremony
    // stays usable because nothing was written.
    let expect_refusal = |code: Code, needle: &'static str| {
        move |r: Result<tonic::Response<pb::FinishEnrollmentResponse>, tonic::Status>| {
            let s = r.expect_err("must be refused");
            assert_eq!(s.code(), code, "{}", s.message());
            assert!(
                s.message().contains(needle),
                "{:?} lacks {needle:?}",
                s.message()
            );
        }
    };

    // A tampered share (sealed correctly, but not on the polynomial).
    let bad = Share::new(
        1,
        SecretScalar::new(*backup.shares[0].value().expose() + Scalar::ONE),
    )
    .expect("share");
    let mut req = backup.request(&ceremony, &cred);
    req.share_envelope_encoded = backup.envelope_of(&bad, &node_key);
    expect_refusal(
        Code::InvalidArgument,
        "share does not match the manifest commitments",
    )(c.finish_enrollment(req).await);

    // An envelope sealed to another node.
    let other = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    let mut req = backup.request(&ceremony, &cred);
    req.share_envelope_encoded = backup.envelope_of(&backup.shares[0], &other);
    expect_refusal(
        Code::InvalidArgument,
        "share envelope does not open for this node",
    )(c.finish_enrollment(req).await);

    // The right node but another trustee's share (index 2 in an envelope claiming index 1 fails
    // to open: the index is bound into the envelope).
    let mut req = backup.request(&ceremony, &cred);
    req.share_envelope_encoded = backup.envelope_of(&backup.shares[1], &node_key);
    expect_refusal(Code::InvalidArgument, "share envelope does not open")(
        c.finish_enrollment(req).await,
    );

    // Commitments of another sharing.
    let foreign = Backup::new(wallet, node_key);
    let mut req = backup.request(&ceremony, &cred);
    req.manifest_encoded = Manifest::new(ManifestParts {
        commitments: foreign.manifest.commitments().clone(),
        wallet_id: wallet.into(),
        epoch: 1,
        threshold: 2,
        trustees: backup.manifest.trustees().to_vec(),
        bank_node_id: backup.manifest.bank_node_id().into(),
        recovery_delay_secs: 60,
        blob_hash: *backup.manifest.blob_hash(),
        created_at: 1,
        previous: None,
    })
    .expect("manifest")
    .encode();
    expect_refusal(Code::InvalidArgument, "share does not match")(c.finish_enrollment(req).await);

    // A manifest that does not list this node.
    let mut req = backup.request(&ceremony, &cred);
    req.manifest_encoded = Backup::new(wallet, other).manifest.encode();
    expect_refusal(Code::InvalidArgument, "manifest does not list this node")(
        c.finish_enrollment(req).await,
    );

    // A blob that is not the manifest's.
    let mut req = backup.request(&ceremony, &cred);
    req.blob.push(0);
    expect_refusal(Code::InvalidArgument, "blob")(c.finish_enrollment(req).await);

    // An oversized blob.
    let mut req = backup.request(&ceremony, &cred);
    req.blob = vec![0; 64 * 1024 + 1];
    expect_refusal(Code::ResourceExhausted, "blob")(c.finish_enrollment(req).await);

    // Garbage manifest, malformed and wrong credentials, unknown ceremony.
    let mut req = backup.request(&ceremony, &cred);
    req.manifest_encoded = vec![1, 2, 3];
    expect_refusal(Code::InvalidArgument, "manifest")(c.finish_enrollment(req).await);
    expect_refusal(Code::InvalidArgument, "passkey credential rejected")(
        c.finish_enrollment(backup.request(&ceremony, "{not json"))
            .await,
    );
    let (_, other_cred) = begin(&mut c, &mut auth, &foreign).await;
    expect_refusal(Code::InvalidArgument, "passkey credential rejected")(
        c.finish_enrollment(backup.request(&ceremony, &other_cred))
            .await,
    );
    expect_refusal(Code::NotFound, "no such enrollment ceremony")(
        c.finish_enrollment(backup.request(&uuid::Uuid::new_v4().to_string(), &cred))
            .await,
    );
    expect_refusal(Code::NotFound, "no such enrollment ceremony")(
        c.finish_enrollment(backup.request("garbage", &cred)).await,
    );
    assert_eq!(
        status_code(&mut c, wallet).await,
        Code::NotFound,
        "nothing stored after refusals"
    );

    // The good deposit.
    let receipt = c
        .finish_enrollment(backup.request(&ceremony, &cred))
        .await
        .expect("finish")
        .into_inner()
        .receipt_encoded;
    let signed =
        Signed::<Receipt>::decode_trusted(&receipt, &[node_key]).expect("receipt verifies");
    let body = signed.body();
    assert_eq!(body.wallet_id, wallet);
    assert_eq!(body.node_id, info.node_id);
    assert_eq!(body.share_index, 1);
    assert_eq!(body.epoch, 1);
    assert_eq!(body.manifest_hash, backup.manifest.hash());

    // Identical retry of the very same request: same receipt bytes.
    let again = c
        .finish_enrollment(backup.request(&ceremony, &cred))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.receipt_encoded, receipt);
    // The used ceremony does not accept another credential.
    expect_refusal(Code::FailedPrecondition, "already used")(
        c.finish_enrollment(backup.request(&ceremony, &other_cred))
            .await,
    );
    // A fresh ceremony with the same deposit (what the SDK does on retry): same receipt.
    let (ceremony2, cred2) = begin(&mut c, &mut auth, &backup).await;
    let again = c
        .finish_enrollment(backup.request(&ceremony2, &cred2))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.receipt_encoded, receipt);
    // A conflicting deposit for the same wallet.
    let (ceremony3, cred3) = begin(&mut c, &mut auth, &foreign).await;
    expect_refusal(Code::AlreadyExists, "different backup")(
        c.finish_enrollment(foreign.request(&ceremony3, &cred3))
            .await,
    );

    // Status.
    let st = c
        .get_backup_status(pb::GetBackupStatusRequest {
            wallet_id: wallet.into(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (st.epoch, st.share_index, st.blob_size),
        (1, 1, backup.blob.len() as u64)
    );
    assert_eq!(st.manifest_hash, backup.manifest.hash().0.to_vec());
    assert_eq!(st.receipt_encoded, receipt);
    assert_eq!(status_code(&mut c, "nobody").await, Code::NotFound);
    assert_eq!(
        status_code(&mut c, "bad wallet id").await,
        Code::InvalidArgument
    );

    // Proof of possession.
    let prove = |nonce: Vec<u8>| pb::ProveShareRequest {
        wallet_id: wallet.into(),
        nonce,
    };
    let nonce = [9u8; 32];
    let p = c
        .prove_share(prove(nonce.to_vec()))
        .await
        .expect("prove")
        .into_inner();
    let proof = PossessionProof::decode(&p.proof_encoded).expect("proof");
    let ctx = ProofContext {
        wallet_id: wallet,
        epoch: 1,
        share_index: 1,
        node_key: &node_key,
        nonce: &nonce,
    };
    proof
        .verify(
            &backup.manifest.commitments().expected_public_share(1),
            &ctx,
        )
        .expect("proof verifies");
    assert_eq!(
        c.prove_share(prove(vec![0; 31]))
            .await
            .expect_err("short nonce")
            .code(),
        Code::InvalidArgument
    );
    let missing = pb::ProveShareRequest {
        wallet_id: "nobody".into(),
        nonce: nonce.to_vec(),
    };
    assert_eq!(
        c.prove_share(missing).await.expect_err("no wallet").code(),
        Code::NotFound
    );

    // Restart: everything is durable. Then corrupt the stored share with the node stopped.
    drop(c);
    node.shutdown().await.expect("shutdown");
    let node = spawn(dir).await.expect("respawn");
    let mut c = client(&node).await;
    c.prove_share(prove(nonce.to_vec()))
        .await
        .expect("prove after restart");
    drop(c);
    node.shutdown().await.expect("shutdown");
    {
        let db = Database::open(&dir.join("db")).expect("open db");
        let mut sealed = db
            .raw_get(SHARES_TREE, wallet_key(wallet))
            .expect("present");
        sealed[20] ^= 0x40;
        db.raw_put(SHARES_TREE, wallet_key(wallet), sealed);
        db.flush_blocking().expect("flush");
    }
    let node = spawn(dir).await.expect("respawn");
    let mut c = client(&node).await;
    let s = c
        .prove_share(prove(nonce.to_vec()))
        .await
        .expect_err("corrupt share");
    assert_eq!(s.code(), Code::DataLoss);
    assert_eq!(s.message(), "stored share failed its integrity check");
    // The health service answers.
    let channel = Channel::from_shared(node.url())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "dlocker.v1.Trustee".into(),
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Server reflection v1 lists the services.
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut refl = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = refl
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .expect("reflection")
            .into_inner();
        let resp = stream
            .message()
            .await
            .expect("message")
            .expect("one response");
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("unexpected reflection answer")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == "dlocker.v1.Trustee"), "{names:?}");
        assert!(
            names.iter().any(|n| n == "grpc.health.v1.Health"),
            "{names:?}"
        );
    }
    drop(c);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn oversized_messages_are_refused_by_the_transport() {
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), Some(1024));
    let node = spawn(tmp.path()).await.expect("spawn");
    let mut c = client(&node).await;
    let req = pb::FinishEnrollmentRequest {
        blob: vec![0; 300 * 1024],
        ..Default::default()
    };
    let s = c.finish_enrollment(req).await.expect_err("too big");
    assert_eq!(s.code(), Code::OutOfRange, "{}", s.message());
    // A configured blob limit below the default is applied.
    let mut auth = SoftPasskey::new(true);
    let info = c
        .get_info(pb::GetInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    let backup = Backup::new("w2", decode_public_key(&info.public_key).expect("key"));
    let (ceremony, cred) = begin(&mut c, &mut auth, &backup).await;
    let mut req = backup.request(&ceremony, &cred);
    req.blob = vec![0; 1025];
    assert_eq!(
        c.finish_enrollment(req).await.expect_err("limit").code(),
        Code::ResourceExhausted
    );
    drop(c);
    node.shutdown().await.expect("shutdown");
}

struct ManualClock(AtomicU64);
impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn ceremonies_expire_and_are_bounded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, None);
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "max_pending_ceremonies = 10000",
            "max_pending_ceremonies = 2",
        ),
    )
    .expect("write");
    let config = NodeConfig::load(dir).expect("config");
    let clock = Arc::new(ManualClock(AtomicU64::new(1_000)));
    let store = Database::open(&config.db_path()).expect("db");
    let node = Node::new(config, &FileKeyProvider::new(dir), store, clock.clone()).expect("node");

    let wallet = crate::wallet::parse_wallet_id("w".into()).expect("wallet");
    let begin = || BeginEnrollment {
        wallet_id: wallet.clone(),
        user_name: "alice".into(),
        customer_reference: String::new(),
    };
    let c = node
        .enrollment()
        .begin_enrollment(begin())
        .await
        .expect("begin");
    assert_eq!(c.expires_at, 1_300);
    node.enrollment()
        .begin_enrollment(begin())
        .await
        .expect("begin");
    assert!(matches!(
        node.enrollment().begin_enrollment(begin()).await,
        Err(NodeError::Busy)
    ));
    let long_name = BeginEnrollment {
        user_name: "x".repeat(65),
        ..begin()
    };
    assert!(matches!(
        node.enrollment().begin_enrollment(long_name).await,
        Err(NodeError::InvalidArgument { .. })
    ));

    clock.0.store(1_300, Ordering::SeqCst);
    let req = FinishEnrollment {
        ceremony_id: c.ceremony_id.clone(),
        credential_json: "{}".into(),
        manifest: vec![],
        share_envelope: vec![],
        blob: vec![],
        nonces: vec![],
    };
    let e = node
        .enrollment()
        .finish_enrollment(req)
        .await
        .expect_err("expired");
    assert!(
        matches!(e, NodeError::CeremonyExpired { ago_secs: 0 }),
        "{e:?}"
    );
    assert_eq!(tonic::Status::from(e).code(), Code::FailedPrecondition);
    assert_eq!(
        node.db()
            .remove_expired_ceremonies(node.now())
            .expect("sweep"),
        2
    );
    node.enrollment()
        .begin_enrollment(begin())
        .await
        .expect("room again after the sweep");
}

#[tokio::test]
async fn mutual_tls() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init(dir, None);
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost");
    let (client_cert, client_key) = leaf("client");
    std::fs::create_dir_all(dir.join("tls")).expect("mkdir");
    std::fs::write(dir.join("tls/node.crt"), &server_cert).expect("write");
    std::fs::write(dir.join("tls/node.key"), &server_key).expect("write");
    std::fs::write(dir.join("tls/ca.crt"), ca.pem()).expect("write");
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("read").replace(
        "endpoint = \"http://127.0.0.1:7101\"",
        "endpoint = \"https://localhost:7101\"",
    ) + "\n[tls]\ncert = \"tls/node.crt\"\nkey = \"tls/node.key\"\nclient_ca = \"tls/ca.crt\"\n";
    std::fs::write(&path, text).expect("write");

    let node = spawn(dir).await.expect("spawn");
    assert!(node.url().starts_with("https://"));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    let connect = |tls: ClientTlsConfig| {
        let url = node.url();
        async move {
            Channel::from_shared(url)
                .expect("uri")
                .tls_config(tls)
                .expect("tls")
                .connect()
                .await
        }
    };
    // With a client certificate from the configured CA.
    let channel = connect(
        tls.clone()
            .identity(Identity::from_pem(&client_cert, &client_key)),
    )
    .await
    .expect("connect");
    let info = TrusteeClient::new(channel)
        .get_info(pb::GetInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.endpoint, "https://localhost:7101");
    // Without one: refused.
    let refused = match connect(tls).await {
        Err(_) => true,
        Ok(ch) => TrusteeClient::new(ch)
            .get_info(pb::GetInfoRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    node.shutdown().await.expect("shutdown");
}
