//! `Reissue`: after a wallet recovery, bind the holder's documents to the new wallet key.
//!
//! Checks, in order: the request is signed by the new key (proof of possession); a
//! `BankApproval` under a bank key this node accepts, for this wallet, whose `session_key` is
//! the new key, unexpired; the owner's passkey assertion for the locker's challenge. Then every
//! issued document is revoked in its status list and issued anew bound to the new key:
//!
//! * hosted issuers: the locker signs again (same URI and claims, new id and status entry);
//! * pull issuers: the repository is called again with the stored lookup fields and the new key;
//! * push issuers (and any issuer suspended meanwhile): the document waits for the issuer, who
//!   finds a `reissue` task with a draft for the new key and pushes it.
//!
//! The new credentials are all made before anything is written: if a pull issuer is down the
//! call fails with a clear error and no document, status list, consent or key changes. Consents
//! are carried over (they name URIs, which stay the same, so a requester now gets the new
//! credential) or ended, as the holder chose. Self-attested uploads are kept as they are.

use super::error::LockerError;
use super::holders::{document_pb, holder_pb};
use super::issuing::new_doc;
use super::store::{
    DocRecord, DocState, DraftPurpose, DraftRecord, HolderRecord, IssuerRecord, PastCredential,
    RegState, Signing, Source, TaskKind, TaskRecord, TaskState, key_hex, keys,
};
use super::{Locker, Tx, new_id, parse_request_key};
use crate::ids::DocUri;
use crate::request::{LockerAction, params};
use crate::vc::{self, Claims};
use dlocker_proto::pb;
use dlocker_proto::statement::{BankApproval, Signed, StatementError};
use futures::future::join_all;
use k256::PublicKey;

/// Largest bank approval accepted.
pub const MAX_APPROVAL_BYTES: usize = 4 * 1024;

/// How one document is re-issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Signed now with the hosted key.
    Hosted,
    /// Pulled again from the repository.
    Pull,
    /// Left to the issuer as a task.
    Task,
}

impl Locker {
    fn check_approval(
        &self,
        bytes: &[u8],
        holder: &str,
        new_key: &PublicKey,
        now: u64,
    ) -> Result<BankApproval, LockerError> {
        if bytes.len() > MAX_APPROVAL_BYTES {
            return Err(LockerError::invalid("bank_approval_encoded", "too large"));
        }
        let signed = Signed::<BankApproval>::decode_trusted(bytes, &self.host.accepted_bank_keys())
            .map_err(|e| match e {
                StatementError::UntrustedSigner => LockerError::Forbidden(
                    "the bank approval is signed by a key this node does not accept".into(),
                ),
                StatementError::BadSignature => {
                    LockerError::Forbidden("the bank approval's signature is invalid".into())
                }
                other => LockerError::invalid(
                    "bank_approval_encoded",
                    format!("not a bank approval: {other}"),
                ),
            })?;
        let a = signed.body().clone();
        if a.wallet_id != holder {
            return Err(LockerError::Forbidden(
                "the bank approval is for another wallet".into(),
            ));
        }
        if a.session_key != *new_key {
            return Err(LockerError::Forbidden(
                "the bank approval is bound to another key than new_holder_key; ask the bank to approve this key"
                    .into(),
            ));
        }
        if now >= a.expires_at {
            return Err(LockerError::Forbidden(format!(
                "the bank approval expired at {}; ask the bank to approve again",
                a.expires_at
            )));
        }
        if a.issued_at > now + self.settings.request_skew_secs {
            return Err(LockerError::Forbidden(
                "the bank approval is not valid yet; check the clocks".into(),
            ));
        }
        Ok(a)
    }

    /// `Reissue`.
    pub async fn reissue(
        &self,
        req: &pb::ReissueRequest,
    ) -> Result<pb::ReissueResponse, LockerError> {
        self.check_holder_id(&req.holder_id)?;
        let new_key = parse_request_key("new_holder_key", &req.new_holder_key)?;
        if req.assertion_json.len() > super::holders::MAX_ASSERTION_JSON_BYTES {
            return Err(LockerError::invalid("assertion_json", "too large"));
        }
        let now = self.now();
        let p = params::reissue(
            &req.holder_id,
            &new_key,
            &req.bank_approval_encoded,
            &req.challenge_id,
            req.carry_over_consents,
        );
        // Signed by the NEW key: whoever asks holds it.
        self.authenticate(
            &req.request_encoded,
            LockerAction::Reissue,
            &req.holder_id,
            p,
            &new_key,
            now,
        )?;
        let holder = self.holder(&req.holder_id)?;
        let approval =
            self.check_approval(&req.bank_approval_encoded, &req.holder_id, &new_key, now)?;
        let _g = self.write.lock().await?;
        let holder: HolderRecord = self.store.get(&keys::holder(&holder.id))?.unwrap_or(holder);
        if holder.key()? == new_key {
            // A retry after success: the documents are already bound to this key.
            self.durable().await?;
            let docs = self.documents_of(&holder.id)?;
            return Ok(pb::ReissueResponse {
                reissued: docs
                    .iter()
                    .filter(|d| d.state == DocState::Active && d.source != Source::SelfAttested)
                    .map(|d| document_pb(d, true))
                    .collect(),
                awaiting_issuer: docs
                    .iter()
                    .filter(|d| d.state == DocState::AwaitingIssuer)
                    .map(|d| document_pb(d, false))
                    .collect(),
                revoked_credential_ids: Vec::new(),
                consents_carried_over: 0,
                consents_ended: 0,
                holder: Some(holder_pb(&holder)?),
            });
        }
        self.owner_touch(
            &holder.id,
            dlocker_proto::owner_challenge::OwnerAction::Reissue,
            &new_key,
            &req.challenge_id,
            &req.assertion_json,
        )
        .await?;

        // 1. Plan and make every new credential; nothing is written yet.
        let mut tx = Tx::new(&self.store);
        let docs: Vec<DocRecord> = self
            .documents_of(&holder.id)?
            .into_iter()
            .filter(|d| d.source != Source::SelfAttested)
            .collect();
        let mut planned: Vec<(DocRecord, DraftRecord, IssuerRecord, Plan, Option<String>)> =
            Vec::new();
        for doc in &docs {
            let issuer = self.issuer(&doc.issuer_id)?;
            let uri =
                DocUri::parse(&doc.uri).map_err(|e| LockerError::corrupt("document uri", e))?;
            let old = if doc.jws.is_empty() {
                None
            } else {
                vc::parse(&doc.jws).ok().map(|(_, c)| c)
            };
            let valid_until = old.as_ref().and_then(|c| c.valid_until);
            let plan = match (&issuer.signing, &issuer.pull_endpoint, issuer.state) {
                // The locker holds the key and the claims: it signs again.
                (Signing::Hosted { .. }, _, _) if old.is_some() => Plan::Hosted,
                (Signing::Own, Some(_), RegState::Approved) if !doc.lookup.is_empty() => Plan::Pull,
                _ => Plan::Task,
            };
            let task_id = new_id();
            let (purpose, expires) = match plan {
                Plan::Task => (
                    DraftPurpose::Reissue {
                        task_id: task_id.clone(),
                    },
                    u64::MAX,
                ),
                _ => (DraftPurpose::Push, 0),
            };
            let draft = self.new_draft(
                &mut tx,
                &issuer,
                &holder.id,
                &new_key,
                &uri,
                now,
                valid_until,
                purpose,
                expires,
            )?;
            let mut hosted_jws = None;
            match plan {
                Plan::Hosted => {
                    let claims = old
                        .as_ref()
                        .map(|c| c.claims.clone())
                        .unwrap_or_else(Claims::default);
                    hosted_jws = Some(vc::issue(
                        &draft.to_draft(&self.settings.base_url)?,
                        &claims,
                        &self.hosted_key(&issuer)?,
                        now,
                    ));
                    tx.remove(keys::draft(&draft.credential_id));
                }
                Plan::Pull => tx.remove(keys::draft(&draft.credential_id)),
                Plan::Task => {
                    let t = TaskRecord {
                        id: task_id,
                        kind: TaskKind::Reissue,
                        issuer_id: issuer.id.clone(),
                        holder_id: holder.id.clone(),
                        doc_type: doc.doc_type.clone(),
                        upload_uri: String::new(),
                        credential_id: draft.credential_id.clone(),
                        state: TaskState::Pending,
                        reason: String::new(),
                        created_at: now,
                    };
                    tx.put(keys::task(&issuer.id, &t.id), &t);
                }
            }
            planned.push((doc.clone(), draft, issuer, plan, hosted_jws));
        }
        // Pull issuers are called concurrently; one failure aborts the whole re-issue.
        let pulls = join_all(
            planned
                .iter()
                .map(|(doc, draft, issuer, plan, _)| async move {
                    match plan {
                        Plan::Pull => {
                            let d = draft.to_draft(&self.settings.base_url)?;
                            self.pull_from(issuer, &doc.lookup, &d, now).await.map(Some)
                        }
                        _ => Ok(None),
                    }
                }),
        )
        .await;
        let mut pulled = Vec::with_capacity(pulls.len());
        for r in pulls {
            match r {
                Ok(j) => pulled.push(j),
                Err(e) => {
                    self.audit(
                        now,
                        "documents_reissue_failed",
                        Some(&holder.id),
                        &e.to_string(),
                    )?;
                    self.durable().await?;
                    return Err(e);
                }
            }
        }

        // 2. Apply everything in one batch.
        let mut reissued = Vec::new();
        let mut awaiting = Vec::new();
        let mut revoked = Vec::new();
        for ((doc, draft, _issuer, _plan, hosted_jws), pulled) in planned.into_iter().zip(pulled) {
            let mut history = doc.history.clone();
            if let (Some((list, index)), false) = (doc.status, doc.jws.is_empty()) {
                self.revoke_status(&mut tx, &doc.issuer_id, list, index)?;
                history.push(PastCredential {
                    credential_id: doc.credential_id.clone(),
                    list,
                    index,
                    revoked_at: now,
                });
                revoked.push(doc.credential_id.clone());
            }
            if doc.state == DocState::AwaitingIssuer {
                self.supersede_reissue_task(&mut tx, &doc)?;
            }
            let mut d = match hosted_jws.or(pulled) {
                Some(jws) => {
                    let mut d = new_doc(&draft, &jws, doc.source, now);
                    d.lookup = doc.lookup.clone();
                    d
                }
                None => DocRecord {
                    state: DocState::AwaitingIssuer,
                    jws: String::new(),
                    credential_id: draft.credential_id.clone(),
                    status: Some((draft.list, draft.index)),
                    updated_at: now,
                    ..doc.clone()
                },
            };
            d.created_at = doc.created_at;
            d.history = history;
            tx.put(keys::doc(&d.holder, &d.uri), &d);
            if d.state == DocState::Active {
                reissued.push(d);
            } else {
                awaiting.push(d);
            }
        }
        let mut carried = 0u32;
        let mut ended = 0u32;
        for mut c in self.consents_of(&holder.id)? {
            if c.revoked_at.is_some() || c.ended_at.is_some() || now >= c.not_after {
                continue;
            }
            if req.carry_over_consents {
                c.carried_over_at = Some(now);
                carried += 1;
            } else {
                c.ended_at = Some(now);
                ended += 1;
            }
            tx.put(keys::consent(&c.id), &c);
        }
        let new_holder = HolderRecord {
            key: key_hex(&new_key),
            key_generation: holder.key_generation + 1,
            ..holder.clone()
        };
        tx.put(keys::holder(&holder.id), &new_holder);
        tx.commit()?;
        self.audit(
            now,
            "documents_reissued",
            Some(&holder.id),
            &format!(
                "reissued={} awaiting_issuer={} revoked={} consents_carried={carried} consents_ended={ended} approved_by={}",
                reissued.len(),
                awaiting.len(),
                revoked.len(),
                approval.approvers.join(",")
            ),
        )?;
        self.durable().await?;
        tracing::info!(
            reissued = reissued.len(),
            awaiting = awaiting.len(),
            "documents re-issued to a new wallet key"
        );
        Ok(pb::ReissueResponse {
            reissued: reissued.iter().map(|d| document_pb(d, true)).collect(),
            awaiting_issuer: awaiting.iter().map(|d| document_pb(d, false)).collect(),
            revoked_credential_ids: revoked,
            consents_carried_over: carried,
            consents_ended: ended,
            holder: Some(holder_pb(&new_holder)?),
        })
    }

    /// A document re-issued again before its issuer signed: the old task is superseded.
    fn supersede_reissue_task(&self, tx: &mut Tx<'_>, doc: &DocRecord) -> Result<(), LockerError> {
        if let Some(d) = tx.get::<DraftRecord>(&keys::draft(&doc.credential_id))? {
            if let DraftPurpose::Reissue { task_id } = &d.purpose {
                let key = keys::task(&d.issuer_id, task_id);
                if let Some(mut t) = tx.get::<TaskRecord>(&key)? {
                    t.state = TaskState::Rejected;
                    t.reason = "superseded by a newer re-issue".into();
                    tx.put(key, &t);
                }
            }
            tx.remove(keys::draft(&doc.credential_id));
        }
        Ok(())
    }
}
