//! Issuers and requesters: self-service registration (signed with the key being registered),
//! approval and suspension by the operator (bank staff with the `operator` role, signed
//! `StaffRequest`s), and the public issuer directory.

use super::error::LockerError;
use super::store::{IssuerRecord, RegState, RequesterRecord, Signing, key_hex, keys};
use super::{Locker, Tx, check_text, parse_request_key, sealing};
use crate::ids::{
    SELF_ISSUER, check_doc_type, check_org_id, key_fingerprint, parse_approval_target,
};
use crate::refusal::RefusalCode;
use crate::request::{self, LockerAction, params};
use dlocker_proto::pb;
use dlocker_proto::statement::{Signed, StaffAction, StaffRequest};
use k256::ecdsa::SigningKey;

/// Most document types per issuer.
pub const MAX_DOC_TYPES: usize = 16;
/// Longest display name.
pub const MAX_NAME_LEN: usize = crate::vc::MAX_NAME_LEN;
/// Most registry entries listed.
pub const MAX_LISTED: usize = 1000;
/// Longest pull endpoint URL.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// The wire form of an issuer.
pub fn issuer_info(r: &IssuerRecord) -> Result<pb::IssuerInfo, LockerError> {
    Ok(pb::IssuerInfo {
        issuer_id: r.id.clone(),
        name: r.name.clone(),
        doc_types: r.doc_types.clone(),
        signing_key: dlocker_proto::keys::encode_public_key(&r.signing_key()?).to_vec(),
        request_key: dlocker_proto::keys::encode_public_key(&r.request_key()?).to_vec(),
        mode: r.mode().to_owned(),
        pull_endpoint: r.pull_endpoint.clone().unwrap_or_default(),
        state: r.state.as_str().to_owned(),
        registered_at: r.registered_at,
        decided_at: r.decided_at,
        decided_by: r.decided_by.clone(),
    })
}

/// The wire form of a requester.
pub fn requester_info(r: &RequesterRecord) -> Result<pb::RequesterInfo, LockerError> {
    Ok(pb::RequesterInfo {
        requester_id: r.id.clone(),
        name: r.name.clone(),
        public_key: dlocker_proto::keys::encode_public_key(&super::store::parse_key(
            &r.public_key,
        )?)
        .to_vec(),
        state: r.state.as_str().to_owned(),
        registered_at: r.registered_at,
        decided_at: r.decided_at,
        decided_by: r.decided_by.clone(),
    })
}

fn check_endpoint(s: &str) -> Result<(), LockerError> {
    let bad = |why: &str| LockerError::invalid("pull_endpoint", why.to_owned());
    if s.len() > MAX_ENDPOINT_LEN {
        return Err(bad("too long"));
    }
    let u = url::Url::parse(s).map_err(|_| bad("must be an http:// or https:// URL"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad("must be an http:// or https:// URL with a host"));
    }
    Ok(())
}

impl Locker {
    /// Counts a registration attempt by `peer` (none for in-process callers).
    fn limit_registration(&self, peer: Option<std::net::IpAddr>) -> Result<(), LockerError> {
        let Some(peer) = peer else { return Ok(()) };
        self.registrations
            .check(peer, self.now())
            .map_err(|retry| {
                LockerError::refused(
                    RefusalCode::TooManyRegistrations,
                    format!(
                        "too many registrations from this address (at most {} per {} s); retry in {retry} s",
                        super::limits::REGISTRATIONS_PER_WINDOW,
                        super::limits::REGISTRATION_WINDOW_SECS
                    ),
                )
            })
    }

    /// An issuer's record.
    pub(crate) fn issuer(&self, id: &str) -> Result<IssuerRecord, LockerError> {
        self.store
            .get(&keys::issuer(id))?
            .ok_or_else(|| LockerError::NotFound(format!("no issuer {id:?} is registered")))
    }

    /// An issuer that may act now (approved), for its own requests.
    pub(crate) fn approved_issuer(&self, id: &str) -> Result<IssuerRecord, LockerError> {
        check_org_id("issuer_id", id).map_err(LockerError::format("issuer_id"))?;
        let r = self.issuer(id)?;
        match r.state {
            RegState::Approved => Ok(r),
            s => Err(LockerError::Forbidden(format!(
                "issuer {id} is {}; the operator must approve it",
                s.as_str()
            ))),
        }
    }

    /// An issuer's own signing key (hosted issuers only).
    pub(crate) fn hosted_key(&self, r: &IssuerRecord) -> Result<SigningKey, LockerError> {
        match &r.signing {
            Signing::Hosted { sealed, .. } => {
                let bytes =
                    hex::decode(sealed).map_err(|e| LockerError::corrupt("hosted key", e))?;
                sealing::open(&self.keys.sealing_key, &r.id, &bytes)
            }
            Signing::Own => Err(LockerError::Precondition(format!(
                "issuer {} signs with its own key",
                r.id
            ))),
        }
    }

    /// `GetIssuer`.
    pub fn get_issuer(&self, id: &str) -> Result<pb::IssuerInfo, LockerError> {
        check_org_id("issuer_id", id).map_err(LockerError::format("issuer_id"))?;
        issuer_info(&self.issuer(id)?)
    }

    /// `RegisterIssuer`.
    pub async fn register_issuer(
        &self,
        req: &pb::RegisterIssuerRequest,
        peer: Option<std::net::IpAddr>,
    ) -> Result<pb::IssuerInfo, LockerError> {
        self.limit_registration(peer)?;
        let id = req.issuer_id.as_str();
        check_org_id("issuer_id", id).map_err(LockerError::format("issuer_id"))?;
        if id == SELF_ISSUER {
            return Err(LockerError::invalid(
                "issuer_id",
                "\"self\" is reserved for self-attested uploads",
            ));
        }
        check_text("name", &req.name, MAX_NAME_LEN)?;
        if req.doc_types.is_empty() || req.doc_types.len() > MAX_DOC_TYPES {
            return Err(LockerError::invalid(
                "doc_types",
                format!("give 1–{MAX_DOC_TYPES} document types"),
            ));
        }
        for (i, t) in req.doc_types.iter().enumerate() {
            check_doc_type("doc_types", t).map_err(LockerError::format("doc_types"))?;
            if req.doc_types[..i].contains(t) {
                return Err(LockerError::invalid(
                    "doc_types",
                    format!("{t} is listed twice"),
                ));
            }
        }
        let request_key = parse_request_key("request_key", &req.request_key)?;
        if !req.pull_endpoint.is_empty() {
            check_endpoint(&req.pull_endpoint)?;
            if req.hosted_signing {
                return Err(LockerError::invalid(
                    "pull_endpoint",
                    "a pull issuer signs its credentials with its own key; hosted_signing must be false",
                ));
            }
        }
        let now = self.now();
        let p = params::register_issuer(
            id,
            &req.name,
            &req.doc_types,
            &request_key,
            req.hosted_signing,
            &req.pull_endpoint,
        );
        // Proof of possession: signed by the key being registered.
        self.authenticate(
            &req.request_encoded,
            LockerAction::RegisterIssuer,
            id,
            p,
            &request_key,
            now,
        )?;
        let _g = self.write.lock().await?;
        if let Some(existing) = self.store.get::<IssuerRecord>(&keys::issuer(id))? {
            let same = existing.request_key()? == request_key
                && existing.name == req.name
                && existing.doc_types == req.doc_types
                && existing.is_hosted() == req.hosted_signing
                && existing.pull_endpoint.as_deref().unwrap_or("") == req.pull_endpoint;
            if same {
                self.durable().await?;
                return issuer_info(&existing);
            }
            // Never rebound, never merged: the operator approved (or will approve) the first key.
            return Err(LockerError::refused(
                RefusalCode::IdTaken,
                format!(
                    "issuer id {id} is already registered with another key or other details; \
                     nothing was changed — choose another id, or ask the operator"
                ),
            ));
        }
        let signing = if req.hosted_signing {
            let key = {
                use k256::elliptic_curve::Generate as _;
                SigningKey::generate_from_rng(&mut rand::rng())
            };
            let sealed = sealing::seal(&self.keys.sealing_key, id, &key)?;
            Signing::Hosted {
                public_key: key_hex(&k256::PublicKey::from(key.verifying_key())),
                sealed: hex::encode(sealed),
            }
        } else {
            Signing::Own
        };
        let rec = IssuerRecord {
            id: id.to_owned(),
            name: req.name.clone(),
            doc_types: req.doc_types.clone(),
            request_key: key_hex(&request_key),
            signing,
            pull_endpoint: (!req.pull_endpoint.is_empty()).then(|| req.pull_endpoint.clone()),
            state: RegState::Pending,
            registered_at: now,
            decided_at: 0,
            decided_by: String::new(),
        };
        let mut tx = Tx::new(&self.store);
        tx.put(keys::issuer(id), &rec);
        tx.commit()?;
        self.audit(
            now,
            "issuer_registered",
            None,
            &format!(
                "issuer={id} mode={} types={}",
                rec.mode(),
                rec.doc_types.join(",")
            ),
        )?;
        self.durable().await?;
        tracing::info!(issuer = %id, mode = rec.mode(), "issuer registered (pending approval)");
        issuer_info(&rec)
    }

    /// `RegisterRequester`.
    pub async fn register_requester(
        &self,
        req: &pb::RegisterRequesterRequest,
        peer: Option<std::net::IpAddr>,
    ) -> Result<pb::RequesterInfo, LockerError> {
        self.limit_registration(peer)?;
        let id = req.requester_id.as_str();
        check_org_id("requester_id", id).map_err(LockerError::format("requester_id"))?;
        check_text("name", &req.name, MAX_NAME_LEN)?;
        let key = parse_request_key("public_key", &req.public_key)?;
        let now = self.now();
        let p = params::register_requester(id, &req.name, &key);
        self.authenticate(
            &req.request_encoded,
            LockerAction::RegisterRequester,
            id,
            p,
            &key,
            now,
        )?;
        let _g = self.write.lock().await?;
        if let Some(existing) = self.store.get::<RequesterRecord>(&keys::requester(id))? {
            if existing.public_key == key_hex(&key) && existing.name == req.name {
                self.durable().await?;
                return requester_info(&existing);
            }
            return Err(LockerError::refused(
                RefusalCode::IdTaken,
                format!(
                    "requester id {id} is already registered with another key or other details; \
                     nothing was changed — choose another id, or ask the operator"
                ),
            ));
        }
        let rec = RequesterRecord {
            id: id.to_owned(),
            name: req.name.clone(),
            public_key: key_hex(&key),
            state: RegState::Pending,
            registered_at: now,
            decided_at: 0,
            decided_by: String::new(),
        };
        let mut tx = Tx::new(&self.store);
        tx.put(keys::requester(id), &rec);
        tx.commit()?;
        self.audit(
            now,
            "requester_registered",
            None,
            &format!("requester={id}"),
        )?;
        self.durable().await?;
        requester_info(&rec)
    }

    /// `ListRegistry` (operator).
    pub async fn list_registry(
        &self,
        staff_request: &[u8],
    ) -> Result<pb::ListRegistryResponse, LockerError> {
        let now = self.now();
        self.host
            .check_staff(staff_request, StaffAction::ListRegistry, now)
            .map_err(LockerError::Host)?;
        // The staff nonce is spent: make that durable before answering.
        self.durable().await?;
        let issuers = self.store.scan::<IssuerRecord>(keys::ISSUERS, MAX_LISTED)?;
        let requesters = self
            .store
            .scan::<RequesterRecord>(keys::REQUESTERS, MAX_LISTED)?;
        Ok(pb::ListRegistryResponse {
            issuers: issuers.iter().map(issuer_info).collect::<Result<_, _>>()?,
            requesters: requesters
                .iter()
                .map(requester_info)
                .collect::<Result<_, _>>()?,
        })
    }

    /// `DecideRegistration` (operator): approve or suspend the issuer or requester the staff
    /// request's target names.
    pub async fn decide_registration(
        &self,
        staff_request: &[u8],
    ) -> Result<pb::RegistryDecision, LockerError> {
        // The action decides which check applies; the host verifies everything else.
        let action = Signed::<StaffRequest>::decode(staff_request)
            .map(|s| s.body().action)
            .map_err(|_| {
                LockerError::invalid("staff_request_encoded", "not a valid signed staff request")
            })?;
        let (is_issuer, state) = match action {
            StaffAction::ApproveIssuer => (true, RegState::Approved),
            StaffAction::SuspendIssuer => (true, RegState::Suspended),
            StaffAction::ApproveRequester => (false, RegState::Approved),
            StaffAction::SuspendRequester => (false, RegState::Suspended),
            other => {
                return Err(LockerError::invalid(
                    "staff_request_encoded",
                    format!("{} is not a registry decision", other.name()),
                ));
            }
        };
        let now = self.now();
        let _g = self.write.lock().await?;
        let staff_id = self
            .host
            .check_staff(staff_request, action, now)
            .map_err(LockerError::Host)?;
        let signed_target = Signed::<StaffRequest>::decode(staff_request)
            .map(|s| s.body().target.clone())
            .map_err(|_| {
                LockerError::invalid("staff_request_encoded", "not a valid signed staff request")
            })?;
        // An approval names the key as well as the id (`ID:FINGERPRINT`), so an operator who
        // checked an organisation's key out of band never approves a squatter's; a suspension
        // may name the id alone.
        let (target, fingerprint) = match parse_approval_target(&signed_target) {
            Some((id, fp)) => (id.to_owned(), Some(fp.to_owned())),
            None if state == RegState::Approved => {
                return Err(LockerError::invalid(
                    "staff_request_encoded",
                    "an approval must name ID:FINGERPRINT (the key fingerprint the registry \
                     lists, checked with the organisation)",
                ));
            }
            None => (signed_target.clone(), None),
        };
        let kind = if is_issuer { "issuer" } else { "requester" };
        let check_fp = |key: &k256::PublicKey| -> Result<(), LockerError> {
            match &fingerprint {
                Some(fp) if *fp != key_fingerprint(key) => Err(LockerError::refused(
                    RefusalCode::FingerprintMismatch,
                    format!(
                        "{kind} {target} is registered with key {}, not {fp}; nothing was \
                         changed — check the key with the organisation",
                        key_fingerprint(key)
                    ),
                )),
                _ => Ok(()),
            }
        };
        let mut tx = Tx::new(&self.store);
        if is_issuer {
            let mut r: IssuerRecord = tx.get(&keys::issuer(&target))?.ok_or_else(|| {
                LockerError::NotFound(format!("no issuer {target:?} is registered"))
            })?;
            check_fp(&r.request_key()?)?;
            r.state = state;
            r.decided_at = now;
            r.decided_by = staff_id.clone();
            tx.put(keys::issuer(&target), &r);
        } else {
            let mut r: RequesterRecord = tx.get(&keys::requester(&target))?.ok_or_else(|| {
                LockerError::NotFound(format!("no requester {target:?} is registered"))
            })?;
            check_fp(&super::store::parse_key(&r.public_key)?)?;
            r.state = state;
            r.decided_at = now;
            r.decided_by = staff_id.clone();
            tx.put(keys::requester(&target), &r);
        }
        tx.commit()?;
        self.audit(
            now,
            &format!("{kind}_{}", state.as_str()),
            None,
            &format!(
                "{kind}={target} key={} by={staff_id}",
                fingerprint.as_deref().unwrap_or("-")
            ),
        )?;
        self.durable().await?;
        tracing::info!(kind, id = %target, state = state.as_str(), staff = %staff_id, "registry decision");
        Ok(pb::RegistryDecision {
            kind: kind.to_owned(),
            id: target,
            state: state.as_str().to_owned(),
            decided_by: staff_id,
        })
    }

    /// A requester's record.
    pub(crate) fn requester(&self, id: &str) -> Result<Option<RequesterRecord>, LockerError> {
        self.store.get(&keys::requester(id))
    }
}

/// The principal a signed request claims (for audit before it is verified).
pub fn claimed_principal(bytes: &[u8]) -> Option<String> {
    Signed::<request::LockerRequest>::decode(bytes)
        .ok()
        .map(|s| s.body().principal.clone())
}
