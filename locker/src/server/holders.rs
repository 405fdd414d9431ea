//! Holders: binding a wallet key with the owner's passkey, listing documents, self-attested
//! uploads, attestation requests, and consents.
//!
//! A holder is a wallet enrolled at this node (its id is the wallet id); its requests are signed
//! with its current wallet key, which only a passkey-authenticated `RegisterHolder` (first time)
//! or `Reissue` (after a recovery, with the bank's approval) can set.

use super::error::LockerError;
use super::store::{
    ConsentRecord, DocRecord, DocState, DraftPurpose, DraftRecord, HolderRecord, IssuerRecord,
    Source, TaskKind, TaskRecord, TaskState, key_hex, keys,
};
use super::{Locker, Tx, check_text, new_id, parse_request_key, uri_tag};
use crate::ids::{DocUri, check_holder_id, check_org_id};
use crate::request::{LockerAction, params};
use crate::vc;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use k256::PublicKey;

/// Challenge purposes.
pub const PURPOSE_REGISTER: &str = "register";
/// Challenge purposes.
pub const PURPOSE_REISSUE: &str = "reissue";

fn purpose_action(purpose: &str) -> Result<OwnerAction, LockerError> {
    match purpose {
        PURPOSE_REGISTER => Ok(OwnerAction::HolderRegister),
        PURPOSE_REISSUE => Ok(OwnerAction::Reissue),
        _ => Err(LockerError::invalid(
            "purpose",
            "must be \"register\" or \"reissue\"",
        )),
    }
}
/// Largest WebAuthn assertion JSON accepted.
pub const MAX_ASSERTION_JSON_BYTES: usize = 16 * 1024;

/// The wire form of a document; `with_jws` false leaves the credential out.
pub fn document_pb(d: &DocRecord, with_jws: bool) -> pb::LockerDocument {
    pb::LockerDocument {
        document_uri: d.uri.clone(),
        holder_id: d.holder.clone(),
        issuer_id: d.issuer_id.clone(),
        doc_type: d.doc_type.clone(),
        source: d.source.as_str().to_owned(),
        state: match d.state {
            DocState::Active => "active",
            DocState::AwaitingIssuer => "awaiting_issuer",
        }
        .to_owned(),
        credential_jws: if with_jws {
            d.jws.clone()
        } else {
            String::new()
        },
        credential_id: d.credential_id.clone(),
        updated_at: d.updated_at,
    }
}

/// The wire form of a consent at `now`.
pub fn consent_pb(c: &ConsentRecord, now: u64) -> pb::ConsentRecord {
    pb::ConsentRecord {
        consent_id: c.id.clone(),
        holder_id: c.holder.clone(),
        requester_id: c.requester.clone(),
        document_uris: c.uris.clone(),
        purpose: c.purpose.clone(),
        not_after: c.not_after,
        granted_at: c.granted_at,
        revoked_at: c.revoked_at.unwrap_or(0),
        state: c.state(now).to_owned(),
        carried_over_at: c.carried_over_at.unwrap_or(0),
    }
}

/// The wire form of a holder.
pub fn holder_pb(h: &HolderRecord) -> Result<pb::HolderInfo, LockerError> {
    Ok(pb::HolderInfo {
        holder_id: h.id.clone(),
        holder_key: dlocker_proto::keys::encode_public_key(&h.key()?).to_vec(),
        registered_at: h.registered_at,
        key_generation: h.key_generation,
    })
}

/// The wire form of a task.
pub fn task_pb(
    t: &TaskRecord,
    draft: Option<pb::DocumentDraft>,
    upload_jws: String,
) -> pb::IssuerTask {
    pb::IssuerTask {
        task_id: t.id.clone(),
        kind: match t.kind {
            TaskKind::Attestation => "attestation",
            TaskKind::Reissue => "reissue",
        }
        .to_owned(),
        issuer_id: t.issuer_id.clone(),
        holder_id: t.holder_id.clone(),
        doc_type: t.doc_type.clone(),
        upload_uri: t.upload_uri.clone(),
        upload_jws,
        draft,
        state: match t.state {
            TaskState::Pending => "pending",
            TaskState::Granted => "granted",
            TaskState::Rejected => "rejected",
        }
        .to_owned(),
        reason: t.reason.clone(),
        created_at: t.created_at,
    }
}

impl Locker {
    pub(crate) fn check_holder_id(&self, id: &str) -> Result<(), LockerError> {
        check_holder_id("holder_id", id).map_err(LockerError::format("holder_id"))
    }

    /// A registered holder.
    pub(crate) fn holder(&self, id: &str) -> Result<HolderRecord, LockerError> {
        self.store.get(&keys::holder(id))?.ok_or_else(|| {
            LockerError::NotFound(format!(
                "holder {id} has not registered a wallet key at this locker (RegisterHolder)"
            ))
        })
    }

    /// Authenticates a holder request; returns the holder.
    fn holder_request(
        &self,
        bytes: &[u8],
        action: LockerAction,
        holder_id: &str,
        p: [u8; 32],
        now: u64,
    ) -> Result<HolderRecord, LockerError> {
        self.check_holder_id(holder_id)?;
        let h = self.holder(holder_id)?;
        self.authenticate(bytes, action, holder_id, p, &h.key()?, now)?;
        Ok(h)
    }

    /// The holder's documents.
    pub(crate) fn documents_of(&self, holder: &str) -> Result<Vec<DocRecord>, LockerError> {
        self.store.scan(
            &keys::docs_of(holder),
            self.settings.max_documents_per_holder + 1,
        )
    }

    /// `BeginOwnerChallenge`: the node's single-use nonce for the owner's one touch. It never
    /// replaces another: a stranger's call cannot disturb the owner's pending challenge.
    pub async fn begin_owner_challenge(
        &self,
        holder_id: &str,
        purpose: &str,
    ) -> Result<pb::OwnerChallenge, LockerError> {
        self.check_holder_id(holder_id)?;
        let action = purpose_action(purpose)?;
        let start = self
            .host
            .begin_owner_assertion(holder_id, action)
            .await
            .map_err(LockerError::Host)?;
        Ok(pb::OwnerChallenge {
            challenge_id: hex::encode(start.nonce),
            request_options_json: start.request_options_json,
            expires_at: start.expires_at,
            nonce: start.nonce.to_vec(),
            node_id: start.node_id,
        })
    }

    /// Checks the owner's one-touch assertion for `action` over `key` (the challenge id is the
    /// node's nonce, in hex) and spends the nonce.
    pub(crate) async fn owner_touch(
        &self,
        holder: &str,
        action: OwnerAction,
        key: &PublicKey,
        challenge_id: &str,
        assertion_json: &str,
    ) -> Result<(), LockerError> {
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(challenge_id, &mut nonce).map_err(|_| {
            LockerError::invalid(
                "challenge_id",
                "the challenge id BeginOwnerChallenge returned",
            )
        })?;
        let authorized = dlocker_proto::keys::encode_public_key(key);
        self.host
            .finish_owner_assertion(holder, action, &authorized, nonce, assertion_json)
            .await
            .map_err(LockerError::Host)
    }

    /// `RegisterHolder`: binds the wallet key, proven by the owner's passkey and a request
    /// signed with the key itself.
    pub async fn register_holder(
        &self,
        req: &pb::RegisterHolderRequest,
    ) -> Result<pb::HolderInfo, LockerError> {
        self.check_holder_id(&req.holder_id)?;
        let key = parse_request_key("holder_key", &req.holder_key)?;
        if req.assertion_json.len() > MAX_ASSERTION_JSON_BYTES {
            return Err(LockerError::invalid("assertion_json", "too large"));
        }
        let now = self.now();
        let p = params::register_holder(&req.holder_id, &key, &req.challenge_id);
        self.authenticate(
            &req.request_encoded,
            LockerAction::RegisterHolder,
            &req.holder_id,
            p,
            &key,
            now,
        )?;
        self.owner_touch(
            &req.holder_id,
            OwnerAction::HolderRegister,
            &key,
            &req.challenge_id,
            &req.assertion_json,
        )
        .await?;
        let _g = self.write.lock().await?;
        let existing: Option<HolderRecord> = self.store.get(&keys::holder(&req.holder_id))?;
        let rec = match existing {
            Some(h) if h.key == key_hex(&key) => h,
            Some(_) => {
                self.durable().await?;
                return Err(LockerError::AlreadyExists(
                    "this holder already has a wallet key; a new key is bound only by Reissue (with the bank's approval)"
                        .into(),
                ));
            }
            None => {
                let h = HolderRecord {
                    id: req.holder_id.clone(),
                    key: key_hex(&key),
                    registered_at: now,
                    key_generation: 0,
                };
                let mut tx = Tx::new(&self.store);
                tx.put(keys::holder(&req.holder_id), &h);
                tx.commit()?;
                self.audit(now, "locker_holder_registered", Some(&req.holder_id), "")?;
                h
            }
        };
        self.durable().await?;
        holder_pb(&rec)
    }

    /// `ListDocuments`.
    pub async fn list_documents(
        &self,
        req: &pb::ListDocumentsRequest,
    ) -> Result<pb::ListDocumentsResponse, LockerError> {
        let now = self.now();
        let p = params::list_documents(&req.holder_id, &req.document_uri);
        self.holder_request(
            &req.request_encoded,
            LockerAction::ListDocuments,
            &req.holder_id,
            p,
            now,
        )?;
        self.durable().await?;
        if !req.document_uri.is_empty() {
            DocUri::parse(&req.document_uri).map_err(LockerError::format("document_uri"))?;
            let d: DocRecord = self
                .store
                .get(&keys::doc(&req.holder_id, &req.document_uri))?
                .ok_or_else(|| LockerError::NotFound("the holder has no such document".into()))?;
            return Ok(pb::ListDocumentsResponse {
                documents: vec![document_pb(&d, true)],
            });
        }
        let docs = self.documents_of(&req.holder_id)?;
        Ok(pb::ListDocumentsResponse {
            documents: docs
                .iter()
                .map(|d| document_pb(d, d.source != Source::SelfAttested))
                .collect(),
        })
    }

    fn check_document_room(
        &self,
        tx: &Tx<'_>,
        holder: &str,
        uploads: bool,
    ) -> Result<(), LockerError> {
        let docs = self.documents_of(holder)?;
        let pending_new = tx
            .pending
            .keys()
            .filter(|k| k.starts_with(&keys::docs_of(holder)))
            .count();
        if docs.len() + pending_new >= self.settings.max_documents_per_holder {
            return Err(LockerError::Limit(format!(
                "the holder has {} documents; this locker keeps at most {}",
                docs.len(),
                self.settings.max_documents_per_holder
            )));
        }
        if uploads {
            let n = docs
                .iter()
                .filter(|d| d.source == Source::SelfAttested)
                .count();
            if n >= self.settings.max_uploads_per_holder {
                return Err(LockerError::Limit(format!(
                    "the holder has {n} uploads; this locker keeps at most {}",
                    self.settings.max_uploads_per_holder
                )));
            }
        }
        Ok(())
    }

    /// Stores a new document (its URI must never have been used).
    pub(crate) fn insert_document(
        &self,
        tx: &mut Tx<'_>,
        d: &DocRecord,
    ) -> Result<(), LockerError> {
        if tx.get_raw(&keys::uri(&d.uri))?.is_some() {
            return Err(LockerError::AlreadyExists(format!(
                "document URI {} is already in use",
                d.uri
            )));
        }
        self.check_document_room(tx, &d.holder, d.source == Source::SelfAttested)?;
        tx.put_raw(keys::uri(&d.uri), d.holder.as_bytes().to_vec());
        tx.put(keys::doc(&d.holder, &d.uri), d);
        Ok(())
    }

    /// `UploadDocument`: a self-attested credential signed with the holder's wallet key.
    pub async fn upload_document(
        &self,
        req: &pb::UploadDocumentRequest,
    ) -> Result<pb::LockerDocument, LockerError> {
        let now = self.now();
        let p = params::upload_document(&req.holder_id, &req.credential_jws);
        let h = self.holder_request(
            &req.request_encoded,
            LockerAction::UploadDocument,
            &req.holder_id,
            p,
            now,
        )?;
        let key = h.key()?;
        let c = vc::verify(
            &req.credential_jws,
            &key,
            now,
            self.settings.validity_skew_secs,
        )
        .map_err(LockerError::format("credential_jws"))?;
        let upload = c
            .upload
            .as_ref()
            .filter(|_| c.is_self_attested())
            .ok_or_else(|| LockerError::invalid("credential_jws", "not a self-attested upload"))?;
        if c.holder_id != req.holder_id || c.holder_key != key {
            return Err(LockerError::invalid(
                "credential_jws",
                "is about another holder or bound to another key",
            ));
        }
        if upload.data.len() > self.settings.max_upload_bytes {
            return Err(LockerError::Limit(format!(
                "the file is {} bytes; at most {} are accepted",
                upload.data.len(),
                self.settings.max_upload_bytes
            )));
        }
        if !self
            .settings
            .upload_media_types
            .contains(&upload.media_type)
        {
            return Err(LockerError::invalid(
                "credential_jws",
                format!(
                    "media type {:?} is not accepted (allowed: {})",
                    upload.media_type,
                    self.settings.upload_media_types.join(", ")
                ),
            ));
        }
        check_text("document.name", &upload.name, 128)?;
        let uri = c.uri.to_string();
        let _g = self.write.lock().await?;
        let mut tx = Tx::new(&self.store);
        let d = DocRecord {
            uri: uri.clone(),
            holder: req.holder_id.clone(),
            issuer_id: crate::ids::SELF_ISSUER.to_owned(),
            doc_type: c.uri.doc_type().to_owned(),
            source: Source::SelfAttested,
            state: DocState::Active,
            jws: req.credential_jws.clone(),
            credential_id: c.credential_id.clone(),
            status: None,
            lookup: Default::default(),
            created_at: now,
            updated_at: now,
            history: Vec::new(),
        };
        self.insert_document(&mut tx, &d)?;
        tx.commit()?;
        self.audit(
            now,
            "document_uploaded",
            Some(&req.holder_id),
            &format!("type={} doc={}", d.doc_type, uri_tag(&uri)),
        )?;
        self.durable().await?;
        Ok(document_pb(&d, false))
    }

    /// Creates a draft (allocating a status entry) for a document `issuer` will sign.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_draft(
        &self,
        tx: &mut Tx<'_>,
        issuer: &IssuerRecord,
        holder_id: &str,
        holder_key: &PublicKey,
        uri: &DocUri,
        valid_from: u64,
        valid_until: Option<u64>,
        purpose: DraftPurpose,
        expires_at: u64,
    ) -> Result<DraftRecord, LockerError> {
        let (list, index) = self.allocate_status(tx, &issuer.id)?;
        let d = DraftRecord {
            credential_id: crate::ids::new_credential_id(),
            issuer_id: issuer.id.clone(),
            issuer_name: issuer.name.clone(),
            holder_id: holder_id.to_owned(),
            holder_key: key_hex(holder_key),
            uri: uri.to_string(),
            list,
            index,
            valid_from,
            valid_until,
            purpose,
            expires_at,
        };
        tx.put(keys::draft(&d.credential_id), &d);
        Ok(d)
    }

    /// `RequestAttestation`: the issuer that issues this type is asked to attest an upload.
    pub async fn request_attestation(
        &self,
        req: &pb::RequestAttestationRequest,
    ) -> Result<pb::IssuerTask, LockerError> {
        let now = self.now();
        let p = params::request_attestation(&req.holder_id, &req.upload_uri, &req.issuer_id);
        let h = self.holder_request(
            &req.request_encoded,
            LockerAction::RequestAttestation,
            &req.holder_id,
            p,
            now,
        )?;
        let upload_uri =
            DocUri::parse(&req.upload_uri).map_err(LockerError::format("upload_uri"))?;
        let issuer = self.approved_issuer(&req.issuer_id)?;
        let _g = self.write.lock().await?;
        let upload: DocRecord = self
            .store
            .get(&keys::doc(&req.holder_id, &req.upload_uri))?
            .filter(|d: &DocRecord| d.source == Source::SelfAttested)
            .ok_or_else(|| LockerError::NotFound("the holder has no such upload".into()))?;
        if !issuer.doc_types.contains(&upload.doc_type) {
            return Err(LockerError::Precondition(format!(
                "issuer {} does not issue {} documents",
                issuer.id, upload.doc_type
            )));
        }
        let uri = DocUri::new(&issuer.id, upload_uri.doc_type())
            .map_err(LockerError::format("doc_type"))?;
        let task_id = new_id();
        let mut tx = Tx::new(&self.store);
        let draft = self.new_draft(
            &mut tx,
            &issuer,
            &req.holder_id,
            &h.key()?,
            &uri,
            now,
            None,
            DraftPurpose::Attestation {
                task_id: task_id.clone(),
            },
            u64::MAX,
        )?;
        let task = TaskRecord {
            id: task_id,
            kind: TaskKind::Attestation,
            issuer_id: issuer.id.clone(),
            holder_id: req.holder_id.clone(),
            doc_type: upload.doc_type.clone(),
            upload_uri: upload.uri.clone(),
            credential_id: draft.credential_id.clone(),
            state: TaskState::Pending,
            reason: String::new(),
            created_at: now,
        };
        tx.put(keys::task(&issuer.id, &task.id), &task);
        tx.commit()?;
        self.audit(
            now,
            "attestation_requested",
            Some(&req.holder_id),
            &format!(
                "issuer={} type={} doc={}",
                issuer.id,
                upload.doc_type,
                uri_tag(&upload.uri)
            ),
        )?;
        self.durable().await?;
        Ok(task_pb(
            &task,
            Some(crate::wire::draft_to_pb(
                &draft.to_draft(&self.settings.base_url)?,
                0,
            )),
            upload.jws,
        ))
    }

    /// `GrantConsent`: the holder's signed consent for `requester` to fetch `uris` for
    /// `purpose` until `not_after`.
    pub async fn grant_consent(
        &self,
        req: &pb::GrantConsentRequest,
    ) -> Result<pb::ConsentRecord, LockerError> {
        let now = self.now();
        let p = params::grant_consent(
            &req.holder_id,
            &req.requester_id,
            &req.document_uris,
            &req.purpose,
            req.not_after,
        );
        self.holder_request(
            &req.request_encoded,
            LockerAction::GrantConsent,
            &req.holder_id,
            p,
            now,
        )?;
        check_org_id("requester_id", &req.requester_id)
            .map_err(LockerError::format("requester_id"))?;
        check_text("purpose", &req.purpose, self.settings.max_purpose_len)?;
        if req.document_uris.is_empty() || req.document_uris.len() > self.settings.max_consent_uris
        {
            return Err(LockerError::invalid(
                "document_uris",
                format!("give 1–{} URIs", self.settings.max_consent_uris),
            ));
        }
        if req.not_after <= now || req.not_after > now + self.settings.max_consent_secs {
            return Err(LockerError::invalid(
                "not_after",
                format!(
                    "must be in the future and at most {} days away",
                    self.settings.max_consent_secs / 86_400
                ),
            ));
        }
        let requester = self.requester(&req.requester_id)?.ok_or_else(|| {
            LockerError::NotFound(format!("no requester {:?} is registered", req.requester_id))
        })?;
        if requester.state != super::store::RegState::Approved {
            return Err(LockerError::Precondition(format!(
                "requester {} is {}; consent can only be given to an approved requester",
                requester.id,
                requester.state.as_str()
            )));
        }
        let _g = self.write.lock().await?;
        for (i, u) in req.document_uris.iter().enumerate() {
            DocUri::parse(u).map_err(LockerError::format("document_uris"))?;
            if req.document_uris[..i].contains(u) {
                return Err(LockerError::invalid(
                    "document_uris",
                    format!("{u} is listed twice"),
                ));
            }
            if self.store.get_raw(&keys::doc(&req.holder_id, u))?.is_none() {
                return Err(LockerError::NotFound(format!(
                    "the holder has no document {u}"
                )));
            }
        }
        let existing = self.store.scan_keys(
            &keys::consents_of(&req.holder_id),
            self.settings.max_consents_per_holder + 1,
        )?;
        if existing.len() >= self.settings.max_consents_per_holder {
            return Err(LockerError::Limit(format!(
                "the holder has {} consents; at most {} are kept",
                existing.len(),
                self.settings.max_consents_per_holder
            )));
        }
        let c = ConsentRecord {
            id: new_id(),
            holder: req.holder_id.clone(),
            requester: req.requester_id.clone(),
            uris: req.document_uris.clone(),
            purpose: req.purpose.clone(),
            not_after: req.not_after,
            granted_at: now,
            revoked_at: None,
            ended_at: None,
            carried_over_at: None,
            grant_request: hex::encode(&req.request_encoded),
        };
        let mut tx = Tx::new(&self.store);
        tx.put(keys::consent(&c.id), &c);
        tx.put_raw(keys::holder_consent(&c.holder, &c.id), Vec::new());
        tx.commit()?;
        self.audit(
            now,
            "consent_granted",
            Some(&req.holder_id),
            &format!(
                "consent={} requester={} documents={} not_after={}",
                c.id,
                c.requester,
                c.uris.len(),
                c.not_after
            ),
        )?;
        self.durable().await?;
        Ok(consent_pb(&c, now))
    }

    /// `RevokeConsent`.
    pub async fn revoke_consent(
        &self,
        req: &pb::RevokeConsentRequest,
    ) -> Result<pb::ConsentRecord, LockerError> {
        let now = self.now();
        let p = params::revoke_consent(&req.holder_id, &req.consent_id);
        self.holder_request(
            &req.request_encoded,
            LockerAction::RevokeConsent,
            &req.holder_id,
            p,
            now,
        )?;
        let _g = self.write.lock().await?;
        let mut c: ConsentRecord = self
            .store
            .get(&keys::consent(&req.consent_id))?
            .filter(|c: &ConsentRecord| c.holder == req.holder_id)
            .ok_or_else(|| LockerError::NotFound("the holder has no such consent".into()))?;
        if c.revoked_at.is_none() {
            c.revoked_at = Some(now);
            let mut tx = Tx::new(&self.store);
            tx.put(keys::consent(&c.id), &c);
            tx.commit()?;
            self.audit(
                now,
                "consent_revoked",
                Some(&req.holder_id),
                &format!("consent={} requester={}", c.id, c.requester),
            )?;
        }
        self.durable().await?;
        Ok(consent_pb(&c, now))
    }

    /// `ListConsents`.
    pub async fn list_consents(
        &self,
        req: &pb::ListConsentsRequest,
    ) -> Result<pb::ListConsentsResponse, LockerError> {
        let now = self.now();
        let p = params::list_consents(&req.holder_id);
        self.holder_request(
            &req.request_encoded,
            LockerAction::ListConsents,
            &req.holder_id,
            p,
            now,
        )?;
        self.durable().await?;
        Ok(pb::ListConsentsResponse {
            consents: self
                .consents_of(&req.holder_id)?
                .iter()
                .map(|c| consent_pb(c, now))
                .collect(),
        })
    }

    /// The holder's consents.
    pub(crate) fn consents_of(&self, holder: &str) -> Result<Vec<ConsentRecord>, LockerError> {
        let ids = self.store.scan_keys(
            &keys::consents_of(holder),
            self.settings.max_consents_per_holder,
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = String::from_utf8(id).map_err(|e| LockerError::corrupt("consent index", e))?;
            if let Some(c) = self.store.get::<ConsentRecord>(&keys::consent(&id))? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
