//! The node side: the `DocumentService` over the node's database.
//!
//! The locker knows the node only through [`LockerHost`] (clock, audit log, staff requests,
//! accepted bank approval keys, the wallet owner's passkey) and [`LockerKeys`] (its id, the
//! node identity key that signs status lists, the key sealing hosted issuer keys). A node
//! registers it with
//!
//! ```ignore
//! let locker = Locker::open(&db, host, keys, LockerSettings::default())?;
//! builder.add_service(locker.service(max_message_bytes));
//! ```
//!
//! Request logic lives in one module per area ([`registry`], [`holders`], [`issuing`],
//! [`fetch`], [`reissue`], [`erase`]); [`service`] is the gRPC edge.

pub mod erase;
pub mod error;
pub mod fetch;
pub mod holders;
pub mod issuing;
pub mod limits;
pub mod registry;
pub mod reissue;
pub mod sealing;
pub mod service;
pub mod store;

use crate::request::{self, LockerAction};
use crate::status_list::{Bitstring, LIST_ENTRIES};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::statement::StaffAction;
use error::LockerError;
use futures::future::BoxFuture;
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use rand::RngExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{ListMeta, Store, keys};
use tonic::Status;
use zeroize::Zeroizing;

pub use service::DocumentServiceImpl;

/// A passkey challenge started by the host.
#[derive(Clone, Debug)]
pub struct OwnerAssertionStart {
    /// `RequestChallengeResponse` JSON template for the client (it sets the one-touch
    /// challenge).
    pub request_options_json: String,
    /// The node's single-use nonce for this ceremony.
    pub nonce: [u8; 32],
    /// The node's id (the challenge's one entry).
    pub node_id: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What the locker needs from the node it runs on.
pub trait LockerHost: Send + Sync + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> u64;
    /// Appends an anonymised entry to the node's audit log (the holder id becomes the node's
    /// keyed wallet tag). Made durable by the locker's next flush.
    fn audit(&self, now: u64, kind: &str, holder: Option<&str>, detail: &str)
    -> Result<(), String>;
    /// Checks a signed staff request for `action` (key, role, node, freshness, single use);
    /// returns the staff id.
    fn check_staff(&self, request: &[u8], action: StaffAction, now: u64) -> Result<String, Status>;
    /// The bank approval keys this node accepts.
    fn accepted_bank_keys(&self) -> Vec<PublicKey>;
    /// Starts a passkey assertion for the owner of wallet `holder` (NOT_FOUND if this node holds
    /// no such wallet; PERMISSION_DENIED while it is locked).
    fn begin_owner_assertion<'a>(
        &'a self,
        holder: &'a str,
        action: OwnerAction,
    ) -> BoxFuture<'a, Result<OwnerAssertionStart, Status>>;
    /// Verifies the owner's one-touch assertion for `action` over `authorized` with the node's
    /// `nonce`, and spends the nonce. Failures never lock anything.
    fn finish_owner_assertion<'a>(
        &'a self,
        holder: &'a str,
        action: OwnerAction,
        authorized: &'a [u8],
        nonce: [u8; 32],
        assertion_json: &'a str,
    ) -> BoxFuture<'a, Result<(), Status>>;
    /// Counts one owner-ceremony call (a nonce issued, a passkey response checked) from `peer`
    /// against the node's per-caller limit; `RESOURCE_EXHAUSTED` beyond it.
    fn owner_call(&self, peer: Option<std::net::SocketAddr>) -> Result<(), Status>;
    /// Makes every write to the node's database durable, through the node's shared (group)
    /// flush: concurrent direct `sled` flushes can exhaust sled's thread pool.
    fn flush(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Counts a fetch refused before the requester was authenticated (unknown requester, bad
    /// signature). Such refusals are not audited: anyone could grow the log with them.
    fn count_unauthenticated_refusal(&self, code: crate::refusal::RefusalCode);
}

/// The locker's keys.
pub struct LockerKeys {
    /// The node id (addresses signed requests; names the locker in status lists).
    pub locker_id: String,
    /// The node identity key: signs status list credentials and repository pull requests.
    pub status_key: SigningKey,
    /// Seals hosted issuer keys: a key for this purpose only (the node derives it from its
    /// storage key with HKDF).
    pub sealing_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for LockerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockerKeys")
            .field("locker_id", &self.locker_id)
            .finish_non_exhaustive()
    }
}

/// Bounds and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockerSettings {
    /// Base of status list URLs (the node's advertised endpoint).
    pub base_url: String,
    /// Allowed clock difference for signed requests.
    pub request_skew_secs: u64,
    /// Allowed clock difference for credential validity windows.
    pub validity_skew_secs: u64,
    /// Largest self-attested file.
    pub max_upload_bytes: usize,
    /// Most self-attested uploads per holder.
    pub max_uploads_per_holder: usize,
    /// Most documents per holder (uploads included).
    pub max_documents_per_holder: usize,
    /// Media types a holder may upload.
    pub upload_media_types: Vec<String>,
    /// Most consents kept per holder (ended and revoked ones included).
    pub max_consents_per_holder: usize,
    /// Most URIs in one consent.
    pub max_consent_uris: usize,
    /// Longest consent.
    pub max_consent_secs: u64,
    /// Longest purpose text.
    pub max_purpose_len: usize,
    /// Validity of a served status list credential.
    pub status_list_ttl_secs: u64,
    /// Connect and request timeout for issuer repositories.
    pub pull_timeout_secs: u64,
    /// Lifetime of a push reservation.
    pub reservation_ttl_secs: u64,
}

impl LockerSettings {
    /// Defaults for a locker whose status lists live under `base_url`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            request_skew_secs: 300,
            validity_skew_secs: 60,
            max_upload_bytes: 64 * 1024,
            max_uploads_per_holder: 16,
            max_documents_per_holder: 64,
            upload_media_types: [
                "application/pdf",
                "image/png",
                "image/jpeg",
                "text/plain",
                "application/json",
            ]
            .map(str::to_owned)
            .to_vec(),
            max_consents_per_holder: 256,
            max_consent_uris: 16,
            max_consent_secs: 366 * 24 * 3600,
            max_purpose_len: 200,
            status_list_ttl_secs: 300,
            pull_timeout_secs: 10,
            reservation_ttl_secs: 24 * 3600,
        }
    }
}

/// The document locker.
pub struct Locker {
    store: Store,
    host: Arc<dyn LockerHost>,
    keys: LockerKeys,
    settings: LockerSettings,
    /// Serialises read-modify-write of locker records, across replicas on one database too.
    write: dlocker_store::SharedMutex,
    /// Registrations per caller.
    registrations: limits::RegistrationLimiter,
}

impl std::fmt::Debug for Locker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locker")
            .field("locker_id", &self.keys.locker_id)
            .finish_non_exhaustive()
    }
}

/// Pending writes over the store: reads see them, [`Tx::commit`] applies them in one atomic
/// batch.
pub(crate) struct Tx<'a> {
    store: &'a Store,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Tx<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            pending: BTreeMap::new(),
        }
    }
    pub(crate) fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LockerError> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.store.get_raw(key),
        }
    }
    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, LockerError> {
        match self.get_raw(key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| LockerError::corrupt("record", e)),
            None => Ok(None),
        }
    }
    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, v: &T) {
        self.pending.insert(key, Some(store::json(v)));
    }
    pub(crate) fn put_raw(&mut self, key: Vec<u8>, v: Vec<u8>) {
        self.pending.insert(key, Some(v));
    }
    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.pending.insert(key, None);
    }
    fn commit(self) -> Result<(), LockerError> {
        let ops: Vec<_> = self.pending.into_iter().collect();
        self.store.tree.apply_batch(&ops)?;
        Ok(())
    }
}

/// A short, non-reversible tag of a document URI for the audit log.
pub fn uri_tag(uri: &str) -> String {
    let d = Sha256::new()
        .chain_update(b"dlocker/locker/uri-tag/v1")
        .chain_update(uri.as_bytes())
        .finalize();
    hex::encode(&d[..8])
}

impl Locker {
    /// Opens the locker over `db` (its records live in the `locker` tree).
    pub fn open(
        db: &dlocker_store::Store,
        host: Arc<dyn LockerHost>,
        keys: LockerKeys,
        settings: LockerSettings,
    ) -> Result<Arc<Self>, LockerError> {
        Ok(Arc::new(Self {
            store: Store::open(db)?,
            host,
            keys,
            settings,
            write: db.shared_mutex("locker"),
            registrations: limits::RegistrationLimiter::default(),
        }))
    }

    /// The gRPC service, with `max_message_bytes` as its decoding and encoding limit.
    pub fn service(
        self: &Arc<Self>,
        max_message_bytes: usize,
    ) -> dlocker_proto::pb::document_service_server::DocumentServiceServer<DocumentServiceImpl>
    {
        dlocker_proto::pb::document_service_server::DocumentServiceServer::new(
            DocumentServiceImpl::new(self.clone()),
        )
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
    }

    /// The locker's id.
    pub fn locker_id(&self) -> &str {
        &self.keys.locker_id
    }

    /// The settings.
    pub fn settings(&self) -> &LockerSettings {
        &self.settings
    }

    /// The node the locker runs on.
    pub(crate) fn host(&self) -> &dyn LockerHost {
        self.host.as_ref()
    }

    /// The key status lists are signed with.
    pub fn status_key(&self) -> PublicKey {
        PublicKey::from(self.keys.status_key.verifying_key())
    }

    fn now(&self) -> u64 {
        self.host.now()
    }

    /// Makes every write so far durable (the locker's records and the audit entries share the
    /// node's database).
    async fn durable(&self) -> Result<(), LockerError> {
        self.host.flush().await.map_err(LockerError::Internal)
    }

    fn audit(
        &self,
        now: u64,
        kind: &str,
        holder: Option<&str>,
        detail: &str,
    ) -> Result<(), LockerError> {
        self.host
            .audit(now, kind, holder, detail)
            .map_err(LockerError::Internal)
    }

    /// Checks a signed request: signature by `expected` (the principal's registered key),
    /// addressed to this locker, for `action` and exactly `params`, fresh, and never seen. The
    /// nonce is spent (durably with the caller's next flush).
    fn authenticate(
        &self,
        bytes: &[u8],
        action: LockerAction,
        principal: &str,
        params: [u8; 32],
        expected: &PublicKey,
        now: u64,
    ) -> Result<(), LockerError> {
        let checked = request::check(bytes, &self.keys.locker_id, action, principal, params)
            .map_err(|e| LockerError::Unauthenticated(e.to_string()))?;
        if checked.signer != *expected {
            return Err(LockerError::Unauthenticated(format!(
                "the request is not signed by {principal}'s registered key"
            )));
        }
        self.check_fresh(&checked.request, now)
    }

    fn check_fresh(&self, r: &request::LockerRequest, now: u64) -> Result<(), LockerError> {
        let skew = self.settings.request_skew_secs;
        if r.timestamp.abs_diff(now) > skew {
            return Err(LockerError::Unauthenticated(format!(
                "the request's timestamp is outside the allowed {skew} s window; check the clock and sign a new request"
            )));
        }
        let fresh = self.store.tree.compare_and_swap(
            &keys::nonce(&r.nonce),
            None,
            Some(&r.timestamp.to_be_bytes()[..]),
        )?;
        if !fresh {
            return Err(LockerError::Forbidden(
                "the request was already used (replay refused); sign a new one".into(),
            ));
        }
        self.prune_nonces(now)
    }

    // Nonces older than twice the window can never pass the timestamp check again.
    fn prune_nonces(&self, now: u64) -> Result<(), LockerError> {
        let horizon = now.saturating_sub(2 * self.settings.request_skew_secs);
        let end = keys::NONCES_END;
        for (k, v) in self.store.tree.range(Some(keys::NONCES), Some(end), 64)? {
            let ts = <[u8; 8]>::try_from(&v[..])
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if ts < horizon {
                self.store.tree.remove(&k)?;
            }
        }
        Ok(())
    }

    /// Allocates a random, unused status entry in `issuer`'s current list (a new list once the
    /// current one is half full, so random draws stay cheap).
    fn allocate_status(&self, tx: &mut Tx<'_>, issuer: &str) -> Result<(u32, u32), LockerError> {
        let mut meta: ListMeta = tx.get(&keys::list_meta(issuer))?.unwrap_or_default();
        if meta.current == 0 || meta.used >= LIST_ENTRIES / 2 {
            meta.current += 1;
            meta.used = 0;
        }
        let alloc_key = keys::list_alloc(issuer, meta.current);
        let mut alloc = match tx.get_raw(&alloc_key)? {
            Some(b) => Bitstring::from_bytes(b)
                .ok_or_else(|| LockerError::corrupt("status allocation", "size"))?,
            None => Bitstring::new(),
        };
        let mut rng = rand::rng();
        let mut index = None;
        // At most half full: each draw succeeds with probability ≥ 1/2.
        for _ in 0..256 {
            let i = rng.random_range(0..LIST_ENTRIES);
            if alloc.get(i) == Some(false) {
                index = Some(i);
                break;
            }
        }
        let index =
            index.ok_or_else(|| LockerError::Internal("no free status index found".into()))?;
        alloc.set(index);
        meta.used += 1;
        tx.put_raw(alloc_key, alloc.as_bytes().to_vec());
        let bits_key = keys::list_bits(issuer, meta.current);
        if tx.get_raw(&bits_key)?.is_none() {
            tx.put_raw(bits_key, Bitstring::new().as_bytes().to_vec());
        }
        let list = meta.current;
        tx.put(keys::list_meta(issuer), &meta);
        Ok((list, index))
    }

    /// Sets the revocation bit of `(list, index)` in `issuer`'s lists.
    fn revoke_status(
        &self,
        tx: &mut Tx<'_>,
        issuer: &str,
        list: u32,
        index: u32,
    ) -> Result<(), LockerError> {
        let key = keys::list_bits(issuer, list);
        let mut bits = match tx.get_raw(&key)? {
            Some(b) => Bitstring::from_bytes(b)
                .ok_or_else(|| LockerError::corrupt("status list", "size"))?,
            None => Bitstring::new(),
        };
        if !bits.set(index) {
            return Err(LockerError::corrupt("status list", "index past the end"));
        }
        tx.put_raw(key, bits.as_bytes().to_vec());
        Ok(())
    }

    /// The revocation bits of one list (`None` if it does not exist).
    fn list_bits(&self, issuer: &str, list: u32) -> Result<Option<Bitstring>, LockerError> {
        match self.store.get_raw(&keys::list_bits(issuer, list))? {
            Some(b) => {
                Ok(Some(Bitstring::from_bytes(b).ok_or_else(|| {
                    LockerError::corrupt("status list", "size")
                })?))
            }
            None => Ok(None),
        }
    }

    /// The signed status list credential of `issuer`'s list `list` (0 = the current one).
    pub fn status_list_credential(
        &self,
        issuer: &str,
        list: u32,
    ) -> Result<(String, String), LockerError> {
        crate::ids::check_org_id("issuer_id", issuer).map_err(LockerError::format("issuer_id"))?;
        let list = if list == 0 {
            self.store
                .get::<ListMeta>(&keys::list_meta(issuer))?
                .map(|m| m.current)
                .unwrap_or(0)
        } else {
            list
        };
        let bits = self.list_bits(issuer, list)?.ok_or_else(|| {
            LockerError::NotFound(format!(
                "issuer {issuer} has no status list {list} at this locker"
            ))
        })?;
        let url = crate::status_list::list_url(&self.settings.base_url, issuer, list);
        let jws = crate::status_list::issue_list(
            &url,
            &self.keys.locker_id,
            &bits,
            &self.keys.status_key,
            self.now(),
            self.settings.status_list_ttl_secs,
        );
        Ok((jws, url))
    }
}

/// Checks a free-text field: 1..=max bytes, no control characters.
pub(crate) fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), LockerError> {
    if s.trim().is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(LockerError::invalid(
            field,
            format!("must be 1–{max} printable characters"),
        ));
    }
    Ok(())
}

/// Parses a SEC1 compressed key from a request.
pub(crate) fn parse_request_key(
    field: &'static str,
    bytes: &[u8],
) -> Result<PublicKey, LockerError> {
    dlocker_proto::keys::decode_public_key(bytes)
        .map_err(|_| LockerError::invalid(field, "must be a 33-byte SEC1 compressed secp256k1 key"))
}

/// A random 32-hex id.
pub(crate) fn new_id() -> String {
    crate::ids::random_hex()
}
