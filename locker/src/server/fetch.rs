//! `FetchDocument`: the gateway. An approved requester, authenticated by its signed request,
//! gets a credential only inside a consent (the URI, the requester, the time, not revoked or
//! ended), and only once it verified (issuer signature and approval, validity, status bit,
//! binding to the holder's current key). Every fetch and every refusal of an authenticated
//! requester is audited, with the holder as the node's keyed wallet tag and the document as a
//! hash tag. A refusal before the requester is authenticated (unknown id, bad signature) writes
//! nothing: it is counted in the host's metrics, since anyone can send one.

use super::error::LockerError;
use super::store::{ConsentRecord, DocRecord, DocState, RegState, Source, keys};
use super::{Locker, uri_tag};
use crate::ids::DocUri;
use crate::refusal::RefusalCode as R;
use crate::request::{LockerAction, params};
use crate::vc;
use dlocker_proto::pb;

struct Context<'a> {
    requester: &'a str,
    consent: &'a str,
    uri: &'a str,
    holder: Option<String>,
}

impl Locker {
    /// `FetchDocument`.
    pub async fn fetch_document(
        &self,
        req: &pb::FetchDocumentRequest,
    ) -> Result<pb::FetchDocumentResponse, LockerError> {
        let now = self.now();
        let mut ctx = Context {
            requester: &req.requester_id,
            consent: &req.consent_id,
            uri: &req.document_uri,
            holder: None,
        };
        match self.try_fetch(req, now, &mut ctx) {
            Ok(resp) => {
                self.audit(
                    now,
                    "document_fetched",
                    ctx.holder.as_deref(),
                    &format!(
                        "requester={} consent={} doc={}",
                        ctx.requester,
                        ctx.consent,
                        uri_tag(ctx.uri)
                    ),
                )?;
                self.durable().await?;
                tracing::info!(requester = %ctx.requester, consent = %ctx.consent, "document fetched under consent");
                Ok(resp)
            }
            Err(LockerError::Refused { code, message })
                if matches!(code, R::RequesterUnknown | R::BadRequestSignature) =>
            {
                self.host.count_unauthenticated_refusal(code);
                tracing::debug!(reason = %code, "unauthenticated document fetch refused");
                Err(LockerError::Refused { code, message })
            }
            Err(e) => {
                let reason = match &e {
                    LockerError::Refused { code, .. } => code.as_str().to_owned(),
                    other => format!("{:?}", other.code()),
                };
                // Unchecked input goes into the log only when it has the shape of an id.
                let requester = if crate::ids::check_org_id("requester_id", ctx.requester).is_ok() {
                    ctx.requester.to_owned()
                } else {
                    "<invalid>".to_owned()
                };
                let consent = if ctx.consent.len() == 32
                    && ctx.consent.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    ctx.consent.to_owned()
                } else if ctx.consent.is_empty() {
                    "<none>".to_owned()
                } else {
                    "<invalid>".to_owned()
                };
                self.audit(
                    now,
                    "document_fetch_refused",
                    ctx.holder.as_deref(),
                    &format!(
                        "requester={requester} consent={consent} doc={} reason={reason}",
                        uri_tag(ctx.uri)
                    ),
                )?;
                self.durable().await?;
                tracing::info!(requester = %requester, reason = %reason, "document fetch refused");
                Err(e)
            }
        }
    }

    fn try_fetch(
        &self,
        req: &pb::FetchDocumentRequest,
        now: u64,
        ctx: &mut Context<'_>,
    ) -> Result<pb::FetchDocumentResponse, LockerError> {
        if crate::ids::check_org_id("requester_id", &req.requester_id).is_err() {
            return Err(LockerError::refused(
                R::RequesterUnknown,
                "no requester of that id is registered",
            ));
        }
        let requester = self.requester(&req.requester_id)?.ok_or_else(|| {
            LockerError::refused(
                R::RequesterUnknown,
                format!("no requester {} is registered", req.requester_id),
            )
        })?;
        let p = params::fetch_document(&req.requester_id, &req.document_uri, &req.consent_id);
        let key = super::store::parse_key(&requester.public_key)?;
        self.authenticate(
            &req.request_encoded,
            LockerAction::FetchDocument,
            &req.requester_id,
            p,
            &key,
            now,
        )
        .map_err(|e| LockerError::refused(R::BadRequestSignature, e.to_string()))?;
        if requester.state != RegState::Approved {
            return Err(LockerError::refused(
                R::RequesterNotApproved,
                format!(
                    "requester {} is {}; only approved requesters may fetch",
                    requester.id,
                    requester.state.as_str()
                ),
            ));
        }
        let consent: ConsentRecord = if req.consent_id.is_empty() || req.consent_id.len() > 64 {
            None
        } else {
            self.store.get(&keys::consent(&req.consent_id))?
        }
        .filter(|c: &ConsentRecord| c.requester == req.requester_id)
        .ok_or_else(|| {
            LockerError::refused(
                R::NoConsent,
                format!(
                    "requester {} holds no consent with this id; ask the holder to grant one",
                    requester.id
                ),
            )
        })?;
        ctx.holder = Some(consent.holder.clone());
        if let Some(at) = consent.revoked_at {
            return Err(LockerError::refused(
                R::ConsentRevoked,
                format!("the holder revoked this consent at {at}"),
            ));
        }
        if let Some(at) = consent.ended_at {
            return Err(LockerError::refused(
                R::ConsentEnded,
                format!("this consent ended at {at} when the holder's documents were re-issued"),
            ));
        }
        if now >= consent.not_after {
            return Err(LockerError::refused(
                R::ConsentExpired,
                format!("this consent expired at {}", consent.not_after),
            ));
        }
        if !consent.uris.contains(&req.document_uri) {
            return Err(LockerError::refused(
                R::UriOutsideConsent,
                "this consent does not cover that document URI",
            ));
        }
        DocUri::parse(&req.document_uri)
            .map_err(|_| LockerError::refused(R::DocumentNotFound, "no such document"))?;
        let doc: DocRecord = self
            .store
            .get(&keys::doc(&consent.holder, &req.document_uri))?
            .ok_or_else(|| {
                LockerError::refused(
                    R::DocumentNotFound,
                    "the holder no longer has this document",
                )
            })?;
        if doc.state == DocState::AwaitingIssuer {
            return Err(LockerError::refused(
                R::DocumentUnavailable,
                format!(
                    "the document is being re-issued by {}; try later",
                    doc.issuer_id
                ),
            ));
        }
        let holder = self.holder(&consent.holder)?;
        let holder_key = holder.key()?;
        let skew = self.settings.validity_skew_secs;
        let mut status_list_jws = String::new();
        if doc.source == Source::SelfAttested {
            // Accepted at upload as signed by the holder's wallet key of the time (a re-issue
            // since may have replaced that key): checked against the key it binds.
            let (_, c) = vc::parse(&doc.jws).map_err(|e| {
                LockerError::refused(
                    R::CredentialInvalid,
                    format!("the upload does not parse: {e}"),
                )
            })?;
            vc::verify(&doc.jws, &c.holder_key, now, skew).map_err(|e| {
                LockerError::refused(
                    R::CredentialInvalid,
                    format!("the upload does not verify: {e}"),
                )
            })?;
        } else {
            let issuer = self.issuer(&doc.issuer_id)?;
            if issuer.state == RegState::Suspended {
                return Err(LockerError::refused(
                    R::IssuerSuspended,
                    format!("issuer {} is suspended by the operator", issuer.id),
                ));
            }
            let c = vc::verify(&doc.jws, &issuer.signing_key()?, now, skew).map_err(|e| {
                LockerError::refused(
                    R::CredentialInvalid,
                    format!("the credential does not verify: {e}"),
                )
            })?;
            if c.holder_key != holder_key {
                return Err(LockerError::refused(
                    R::CredentialInvalid,
                    "the credential is bound to a previous wallet key",
                ));
            }
            let (list, index) = doc
                .status
                .ok_or_else(|| LockerError::corrupt("document", "issued without status"))?;
            let bits = self
                .list_bits(&doc.issuer_id, list)?
                .ok_or_else(|| LockerError::corrupt("status list", "missing"))?;
            if bits.get(index) != Some(false) {
                return Err(LockerError::refused(
                    R::CredentialRevoked,
                    "the credential is revoked in its status list",
                ));
            }
            status_list_jws = self.status_list_credential(&doc.issuer_id, list)?.0;
        }
        Ok(pb::FetchDocumentResponse {
            credential_jws: doc.jws,
            document_uri: doc.uri,
            issuer_id: doc.issuer_id,
            status_list_jws,
            fetched_at: now,
        })
    }
}
