//! The three ways a document comes in (the eLocker's issuer types):
//!
//! * **push**: the issuer reserves a document (the locker allocates the credential id, the URI
//!   and a random status entry, and tells it the holder's key), signs the credential with its own
//!   key and pushes it; the locker checks signature, approval, document type and that the
//!   credential is exactly the reservation;
//! * **hosted**: the issuer sends claims in a signed request and the locker signs with the
//!   issuer's hosted key;
//! * **pull**: the holder asks; the locker calls the issuer's `IssuerRepository` with the lookup
//!   fields, the holder's key and a draft, and checks what comes back like a push.
//!
//! Plus the issuer's task list: attestation requests of uploads, and re-issues waiting for a push
//! issuer's signature.

use super::error::LockerError;
use super::holders::{document_pb, task_pb};
use super::store::{
    DocRecord, DocState, DraftPurpose, DraftRecord, HolderRecord, IssuerRecord, Signing, Source,
    TaskKind, TaskRecord, TaskState, keys, parse_key,
};
use super::{Locker, Tx, uri_tag};
use crate::ids::{DocUri, check_doc_type};
use crate::repository::{self, RepositoryCallError, check_lookup};
use crate::request::{self, LockerAction, params};
use crate::vc::{self, Claims, Draft};
use crate::wire::draft_to_pb;
use dlocker_proto::pb;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most tasks listed at once.
pub const MAX_TASKS_LISTED: usize = 256;

impl Locker {
    /// Authenticates an issuer request; returns the (approved) issuer.
    fn issuer_request(
        &self,
        bytes: &[u8],
        action: LockerAction,
        issuer_id: &str,
        p: [u8; 32],
        now: u64,
    ) -> Result<IssuerRecord, LockerError> {
        crate::ids::check_org_id("issuer_id", issuer_id)
            .map_err(LockerError::format("issuer_id"))?;
        let issuer = self.issuer(issuer_id)?;
        self.authenticate(bytes, action, issuer_id, p, &issuer.request_key()?, now)?;
        self.approved_issuer(issuer_id)
    }

    fn check_issues(&self, issuer: &IssuerRecord, doc_type: &str) -> Result<(), LockerError> {
        check_doc_type("doc_type", doc_type).map_err(LockerError::format("doc_type"))?;
        if issuer.doc_types.iter().any(|t| t == doc_type) {
            Ok(())
        } else {
            Err(LockerError::Forbidden(format!(
                "issuer {} is approved for {} documents, not {doc_type}",
                issuer.id,
                issuer.doc_types.join(", ")
            )))
        }
    }

    fn valid_until(&self, v: u64, now: u64) -> Result<Option<u64>, LockerError> {
        match v {
            0 => Ok(None),
            v if v > now => Ok(Some(v)),
            _ => Err(LockerError::invalid(
                "valid_until",
                "must be in the future (or 0 for no expiry)",
            )),
        }
    }

    /// `ReserveDocument` (push issuers).
    pub async fn reserve_document(
        &self,
        req: &pb::ReserveDocumentRequest,
    ) -> Result<pb::DocumentDraft, LockerError> {
        let now = self.now();
        let p = params::reserve_document(
            &req.issuer_id,
            &req.holder_id,
            &req.doc_type,
            req.valid_until,
        );
        let issuer = self.issuer_request(
            &req.request_encoded,
            LockerAction::ReserveDocument,
            &req.issuer_id,
            p,
            now,
        )?;
        if issuer.is_hosted() {
            return Err(LockerError::Precondition(format!(
                "issuer {} has a hosted key: use IssueDocument, the locker signs",
                issuer.id
            )));
        }
        self.check_issues(&issuer, &req.doc_type)?;
        self.check_holder_id(&req.holder_id)?;
        let holder = self.holder(&req.holder_id)?;
        let valid_until = self.valid_until(req.valid_until, now)?;
        let uri =
            DocUri::new(&issuer.id, &req.doc_type).map_err(LockerError::format("doc_type"))?;
        let _g = self.write.lock().await?;
        let mut tx = Tx::new(&self.store);
        self.prune_drafts(&mut tx, now)?;
        let expires_at = now + self.settings.reservation_ttl_secs;
        let d = self.new_draft(
            &mut tx,
            &issuer,
            &holder.id,
            &holder.key()?,
            &uri,
            now,
            valid_until,
            DraftPurpose::Push,
            expires_at,
        )?;
        tx.commit()?;
        self.durable().await?;
        Ok(draft_to_pb(
            &d.to_draft(&self.settings.base_url)?,
            expires_at,
        ))
    }

    // Expired push reservations go (their status entries stay allocated, never set).
    fn prune_drafts(&self, tx: &mut Tx<'_>, now: u64) -> Result<(), LockerError> {
        for d in self.store.scan::<DraftRecord>(keys::DRAFTS, 64)? {
            if matches!(d.purpose, DraftPurpose::Push) && d.expires_at <= now {
                tx.remove(keys::draft(&d.credential_id));
            }
        }
        Ok(())
    }

    /// Checks a credential an issuer signed against its draft and the issuer's key.
    fn check_signed(
        &self,
        jws: &str,
        issuer: &IssuerRecord,
        draft: &Draft,
        now: u64,
    ) -> Result<vc::Credential, LockerError> {
        let c = vc::verify(
            jws,
            &issuer.signing_key()?,
            now,
            self.settings.validity_skew_secs,
        )
        .map_err(LockerError::format("credential_jws"))?;
        c.matches(draft)
            .map_err(LockerError::format("credential_jws"))?;
        Ok(c)
    }

    /// `PushDocument`: a credential an own-key issuer signed for a reservation or a task.
    pub async fn push_document(
        &self,
        req: &pb::PushDocumentRequest,
    ) -> Result<pb::LockerDocument, LockerError> {
        let now = self.now();
        let p = params::push_document(&req.issuer_id, &req.credential_jws);
        let issuer = self.issuer_request(
            &req.request_encoded,
            LockerAction::PushDocument,
            &req.issuer_id,
            p,
            now,
        )?;
        if let Signing::Hosted { .. } = issuer.signing {
            return Err(LockerError::Precondition(format!(
                "issuer {} has a hosted key: the locker signs",
                issuer.id
            )));
        }
        let (_, unverified) =
            vc::parse(&req.credential_jws).map_err(LockerError::format("credential_jws"))?;
        let _g = self.write.lock().await?;
        let draft_rec: DraftRecord = self
            .store
            .get(&keys::draft(&unverified.credential_id))?
            .filter(|d: &DraftRecord| d.issuer_id == issuer.id)
            .ok_or_else(|| {
                LockerError::NotFound(
                    "no reservation or task of this issuer has this credential id; call ReserveDocument".into(),
                )
            })?;
        if now >= draft_rec.expires_at {
            return Err(LockerError::Precondition(
                "the reservation expired; call ReserveDocument again".into(),
            ));
        }
        let draft = draft_rec.to_draft(&self.settings.base_url)?;
        self.check_issues(&issuer, draft.uri.doc_type())?;
        let holder = self.holder(&draft.holder_id)?;
        if holder.key()? != draft.holder_key {
            return Err(LockerError::Precondition(
                "the holder's wallet key changed since the reservation; reserve again".into(),
            ));
        }
        let c = self.check_signed(&req.credential_jws, &issuer, &draft, now)?;
        let mut tx = Tx::new(&self.store);
        tx.remove(keys::draft(&draft_rec.credential_id));
        let doc = match &draft_rec.purpose {
            DraftPurpose::Push => {
                let d = new_doc(&draft_rec, &req.credential_jws, Source::Push, now);
                self.insert_document(&mut tx, &d)?;
                d
            }
            DraftPurpose::Attestation { task_id } => {
                self.finish_task(&mut tx, &issuer.id, task_id, TaskState::Granted, "")?;
                let d = new_doc(&draft_rec, &req.credential_jws, Source::Attested, now);
                self.insert_document(&mut tx, &d)?;
                d
            }
            DraftPurpose::Reissue { task_id } => {
                self.finish_task(&mut tx, &issuer.id, task_id, TaskState::Granted, "")?;
                let mut d: DocRecord = tx
                    .get(&keys::doc(&draft_rec.holder_id, &draft_rec.uri))?
                    .ok_or_else(|| {
                        LockerError::NotFound("the re-issued document no longer exists".into())
                    })?;
                d.state = DocState::Active;
                d.jws = req.credential_jws.clone();
                d.credential_id = draft_rec.credential_id.clone();
                d.status = Some((draft_rec.list, draft_rec.index));
                d.updated_at = now;
                tx.put(keys::doc(&d.holder, &d.uri), &d);
                d
            }
        };
        tx.commit()?;
        self.audit(
            now,
            "document_pushed",
            Some(&doc.holder),
            &format!(
                "issuer={} type={} doc={} credential={}",
                issuer.id,
                doc.doc_type,
                uri_tag(&doc.uri),
                c.credential_id
            ),
        )?;
        self.durable().await?;
        Ok(document_pb(&doc, true))
    }

    fn finish_task(
        &self,
        tx: &mut Tx<'_>,
        issuer: &str,
        task_id: &str,
        state: TaskState,
        reason: &str,
    ) -> Result<(), LockerError> {
        let key = keys::task(issuer, task_id);
        let mut t: TaskRecord = tx
            .get(&key)?
            .ok_or_else(|| LockerError::NotFound("no such task".into()))?;
        if t.state != TaskState::Pending {
            return Err(LockerError::Precondition(
                "the task was already decided".into(),
            ));
        }
        t.state = state;
        t.reason = reason.to_owned();
        tx.put(key, &t);
        Ok(())
    }

    /// `IssueDocument`: the locker signs with the issuer's hosted key.
    pub async fn issue_document(
        &self,
        req: &pb::IssueDocumentRequest,
    ) -> Result<pb::LockerDocument, LockerError> {
        let now = self.now();
        let claims_map: BTreeMap<String, String> = req.claims.clone().into_iter().collect();
        let p = params::issue_document(
            &req.issuer_id,
            &req.holder_id,
            &req.doc_type,
            &claims_map,
            req.valid_until,
        );
        let issuer = self.issuer_request(
            &req.request_encoded,
            LockerAction::IssueDocument,
            &req.issuer_id,
            p,
            now,
        )?;
        let key = self.hosted_key(&issuer)?;
        self.check_issues(&issuer, &req.doc_type)?;
        self.check_holder_id(&req.holder_id)?;
        let holder = self.holder(&req.holder_id)?;
        let claims = Claims::new(claims_map).map_err(LockerError::format("claims"))?;
        let valid_until = self.valid_until(req.valid_until, now)?;
        let uri =
            DocUri::new(&issuer.id, &req.doc_type).map_err(LockerError::format("doc_type"))?;
        let _g = self.write.lock().await?;
        let mut tx = Tx::new(&self.store);
        let d = self.new_draft(
            &mut tx,
            &issuer,
            &holder.id,
            &holder.key()?,
            &uri,
            now,
            valid_until,
            DraftPurpose::Push,
            0,
        )?;
        tx.remove(keys::draft(&d.credential_id));
        let jws = vc::issue(&d.to_draft(&self.settings.base_url)?, &claims, &key, now);
        let doc = new_doc(&d, &jws, Source::Hosted, now);
        self.insert_document(&mut tx, &doc)?;
        tx.commit()?;
        self.audit(
            now,
            "document_issued",
            Some(&doc.holder),
            &format!(
                "issuer={} type={} doc={} hosted_key",
                issuer.id,
                doc.doc_type,
                uri_tag(&doc.uri)
            ),
        )?;
        self.durable().await?;
        Ok(document_pb(&doc, true))
    }

    /// Calls `issuer`'s repository for `draft`; the credential it returns, checked.
    pub(crate) async fn pull_from(
        &self,
        issuer: &IssuerRecord,
        lookup: &BTreeMap<String, String>,
        draft: &Draft,
        now: u64,
    ) -> Result<String, LockerError> {
        let endpoint = issuer.pull_endpoint.as_deref().ok_or_else(|| {
            LockerError::Precondition(format!("issuer {} has no pull endpoint", issuer.id))
        })?;
        let p = params::repository_pull(&draft.holder_id, draft.uri.doc_type(), lookup, draft);
        let signed = request::sign(
            &self.keys.status_key,
            &self.keys.locker_id,
            LockerAction::RepositoryPull,
            &self.keys.locker_id,
            p,
        );
        let call = pb::RepositoryPullRequest {
            locker_request_encoded: signed,
            holder_id: draft.holder_id.clone(),
            doc_type: draft.uri.doc_type().to_owned(),
            lookup: lookup.clone().into_iter().collect(),
            draft: Some(draft_to_pb(draft, 0)),
        };
        let timeout = Duration::from_secs(self.settings.pull_timeout_secs);
        let jws = repository::call_pull(endpoint, call, timeout).await.map_err(|e| match e {
            RepositoryCallError::Unreachable(why) => LockerError::Unavailable(format!(
                "issuer {}'s repository at {endpoint} is unreachable ({why}); nothing was changed, try again later",
                issuer.id
            )),
            RepositoryCallError::Refused { code: tonic::Code::NotFound, message } => {
                LockerError::NotFound(format!("issuer {} has no such document: {message}", issuer.id))
            }
            RepositoryCallError::Refused { code, message } => LockerError::Precondition(format!(
                "issuer {}'s repository refused the pull ({code:?}: {message}); nothing was changed",
                issuer.id
            )),
        })?;
        self.check_signed(&jws, issuer, draft, now).map_err(|e| {
            LockerError::Precondition(format!(
                "issuer {}'s repository returned a credential that does not check: {e}",
                issuer.id
            ))
        })?;
        Ok(jws)
    }

    /// `PullDocument` (holder): the locker pulls from the issuer's repository.
    pub async fn pull_document(
        &self,
        req: &pb::HolderPullRequest,
    ) -> Result<pb::LockerDocument, LockerError> {
        let now = self.now();
        let lookup: BTreeMap<String, String> = req.lookup.clone().into_iter().collect();
        let p = params::pull_document(&req.holder_id, &req.issuer_id, &req.doc_type, &lookup);
        self.check_holder_id(&req.holder_id)?;
        let holder: HolderRecord = self.holder(&req.holder_id)?;
        self.authenticate(
            &req.request_encoded,
            LockerAction::PullDocument,
            &req.holder_id,
            p,
            &holder.key()?,
            now,
        )?;
        check_lookup(&lookup).map_err(LockerError::format("lookup"))?;
        let issuer = self.approved_issuer(&req.issuer_id)?;
        self.check_issues(&issuer, &req.doc_type)?;
        if issuer.pull_endpoint.is_none() {
            return Err(LockerError::Precondition(format!(
                "issuer {} does not offer pull",
                issuer.id
            )));
        }
        let uri =
            DocUri::new(&issuer.id, &req.doc_type).map_err(LockerError::format("doc_type"))?;
        // Held across the call so the allocation below is committed only if the pull succeeds:
        // a failed pull leaves every record as it was. Bounded by the pull timeout.
        let _g = self.write.lock().await?;
        let mut tx = Tx::new(&self.store);
        let d = self.new_draft(
            &mut tx,
            &issuer,
            &holder.id,
            &holder.key()?,
            &uri,
            now,
            None,
            DraftPurpose::Push,
            0,
        )?;
        tx.remove(keys::draft(&d.credential_id));
        let draft = d.to_draft(&self.settings.base_url)?;
        let jws = match self.pull_from(&issuer, &lookup, &draft, now).await {
            Ok(j) => j,
            Err(e) => {
                self.audit(
                    now,
                    "document_pull_failed",
                    Some(&holder.id),
                    &format!("issuer={} type={}: {e}", issuer.id, req.doc_type),
                )?;
                self.durable().await?;
                return Err(e);
            }
        };
        let mut doc = new_doc(&d, &jws, Source::Pull, now);
        doc.lookup = lookup;
        self.insert_document(&mut tx, &doc)?;
        tx.commit()?;
        self.audit(
            now,
            "document_pulled",
            Some(&holder.id),
            &format!(
                "issuer={} type={} doc={}",
                issuer.id,
                doc.doc_type,
                uri_tag(&doc.uri)
            ),
        )?;
        self.durable().await?;
        Ok(document_pb(&doc, true))
    }

    /// `ListIssuerTasks`.
    pub async fn list_issuer_tasks(
        &self,
        req: &pb::ListIssuerTasksRequest,
    ) -> Result<pb::ListIssuerTasksResponse, LockerError> {
        let now = self.now();
        let p = params::list_issuer_tasks(&req.issuer_id);
        let issuer = self.issuer_request(
            &req.request_encoded,
            LockerAction::ListIssuerTasks,
            &req.issuer_id,
            p,
            now,
        )?;
        self.durable().await?;
        let mut out = Vec::new();
        for t in self
            .store
            .scan::<TaskRecord>(&keys::tasks_of(&issuer.id), MAX_TASKS_LISTED)?
        {
            if t.state != TaskState::Pending {
                continue;
            }
            let draft = match self
                .store
                .get::<DraftRecord>(&keys::draft(&t.credential_id))?
            {
                Some(d) => Some(draft_to_pb(&d.to_draft(&self.settings.base_url)?, 0)),
                None => None,
            };
            let upload_jws = if t.kind == TaskKind::Attestation {
                self.store
                    .get::<DocRecord>(&keys::doc(&t.holder_id, &t.upload_uri))?
                    .map(|d| d.jws)
                    .unwrap_or_default()
            } else {
                String::new()
            };
            out.push(task_pb(&t, draft, upload_jws));
        }
        Ok(pb::ListIssuerTasksResponse { tasks: out })
    }

    /// `DecideAttestation`.
    pub async fn decide_attestation(
        &self,
        req: &pb::DecideAttestationRequest,
    ) -> Result<pb::DecideAttestationResponse, LockerError> {
        let now = self.now();
        let claims_map: BTreeMap<String, String> = req.claims.clone().into_iter().collect();
        let p = params::decide_attestation(
            &req.issuer_id,
            &req.task_id,
            req.grant,
            &req.credential_jws,
            &claims_map,
            &req.reason,
        );
        let issuer = self.issuer_request(
            &req.request_encoded,
            LockerAction::DecideAttestation,
            &req.issuer_id,
            p,
            now,
        )?;
        if req.reason.len() > 200 {
            return Err(LockerError::invalid("reason", "at most 200 characters"));
        }
        let _g = self.write.lock().await?;
        let task: TaskRecord = self
            .store
            .get(&keys::task(&issuer.id, &req.task_id))?
            .filter(|t: &TaskRecord| t.kind == TaskKind::Attestation)
            .ok_or_else(|| {
                LockerError::NotFound("this issuer has no such attestation task".into())
            })?;
        let draft_rec: DraftRecord = self
            .store
            .get(&keys::draft(&task.credential_id))?
            .ok_or_else(|| LockerError::Precondition("the task was already decided".into()))?;
        let mut tx = Tx::new(&self.store);
        tx.remove(keys::draft(&draft_rec.credential_id));
        if !req.grant {
            self.finish_task(
                &mut tx,
                &issuer.id,
                &task.id,
                TaskState::Rejected,
                &req.reason,
            )?;
            tx.commit()?;
            self.audit(
                now,
                "attestation_rejected",
                Some(&task.holder_id),
                &format!("issuer={} task={}", issuer.id, task.id),
            )?;
            self.durable().await?;
            let mut t = task.clone();
            t.state = TaskState::Rejected;
            t.reason = req.reason.clone();
            return Ok(pb::DecideAttestationResponse {
                task: Some(task_pb(&t, None, String::new())),
                document: None,
            });
        }
        let holder = self.holder(&task.holder_id)?;
        if holder.key()? != parse_key(&draft_rec.holder_key)? {
            return Err(LockerError::Precondition(
                "the holder's wallet key changed; the holder must ask again".into(),
            ));
        }
        let draft = draft_rec.to_draft(&self.settings.base_url)?;
        let jws = match &issuer.signing {
            Signing::Hosted { .. } => {
                if !req.credential_jws.is_empty() {
                    return Err(LockerError::invalid(
                        "credential_jws",
                        "a hosted issuer sends claims; the locker signs",
                    ));
                }
                let mut claims = claims_map;
                if claims.is_empty() {
                    let upload = self
                        .store
                        .get::<DocRecord>(&keys::doc(&task.holder_id, &task.upload_uri))?;
                    let digest = upload
                        .and_then(|u| {
                            vc::parse(&u.jws)
                                .ok()
                                .and_then(|(_, c)| c.upload.map(|f| f.digest_sri()))
                        })
                        .unwrap_or_default();
                    claims.insert("attestedDocumentDigest".into(), digest);
                }
                let claims = Claims::new(claims).map_err(LockerError::format("claims"))?;
                vc::issue(&draft, &claims, &self.hosted_key(&issuer)?, now)
            }
            Signing::Own => {
                self.check_signed(&req.credential_jws, &issuer, &draft, now)?;
                req.credential_jws.clone()
            }
        };
        self.finish_task(&mut tx, &issuer.id, &task.id, TaskState::Granted, "")?;
        let doc = new_doc(&draft_rec, &jws, Source::Attested, now);
        self.insert_document(&mut tx, &doc)?;
        tx.commit()?;
        self.audit(
            now,
            "attestation_granted",
            Some(&task.holder_id),
            &format!(
                "issuer={} task={} doc={}",
                issuer.id,
                task.id,
                uri_tag(&doc.uri)
            ),
        )?;
        self.durable().await?;
        let mut t = task.clone();
        t.state = TaskState::Granted;
        Ok(pb::DecideAttestationResponse {
            task: Some(task_pb(&t, None, String::new())),
            document: Some(document_pb(&doc, true)),
        })
    }
}

/// A new document record from its draft and credential.
pub(crate) fn new_doc(d: &DraftRecord, jws: &str, source: Source, now: u64) -> DocRecord {
    DocRecord {
        uri: d.uri.clone(),
        holder: d.holder_id.clone(),
        issuer_id: d.issuer_id.clone(),
        doc_type: DocUri::parse(&d.uri)
            .map(|u| u.doc_type().to_owned())
            .unwrap_or_default(),
        source,
        state: DocState::Active,
        jws: jws.to_owned(),
        credential_id: d.credential_id.clone(),
        status: Some((d.list, d.index)),
        lookup: BTreeMap::new(),
        created_at: now,
        updated_at: now,
        history: Vec::new(),
    }
}
