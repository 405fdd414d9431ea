//! Conversions between the format types and the generated protobuf messages, checked on the
//! way in (a draft from the wire is parsed like any other input).

use crate::error::FormatError;
use crate::ids::{self, DocUri};
use crate::status_list::StatusEntry;
use crate::vc::Draft;
use dlocker_proto::keys::{decode_public_key, encode_public_key};
use dlocker_proto::pb;

/// A draft as sent to an issuer.
pub fn draft_to_pb(d: &Draft, expires_at: u64) -> pb::DocumentDraft {
    pb::DocumentDraft {
        credential_id: d.credential_id.clone(),
        issuer_id: d.issuer_id.clone(),
        issuer_name: d.issuer_name.clone(),
        holder_id: d.holder_id.clone(),
        holder_key: encode_public_key(&d.holder_key).to_vec(),
        document_uri: d.uri.to_string(),
        status: Some(pb::StatusListEntry {
            status_list_credential: d.status.list_url.clone(),
            status_list_index: d.status.index,
        }),
        valid_from: d.valid_from,
        valid_until: d.valid_until.unwrap_or(0),
        expires_at,
    }
}

/// A draft from the wire, every field checked.
pub fn draft_from_pb(p: &pb::DocumentDraft) -> Result<Draft, FormatError> {
    ids::check_credential_id("draft.credential_id", &p.credential_id)?;
    ids::check_org_id("draft.issuer_id", &p.issuer_id)?;
    ids::check_holder_id("draft.holder_id", &p.holder_id)?;
    if p.issuer_name.len() > crate::vc::MAX_NAME_LEN {
        return Err(FormatError::field("draft.issuer_name", "too long"));
    }
    let holder_key = decode_public_key(&p.holder_key)
        .map_err(|_| FormatError::Key("draft.holder_key is not a SEC1 compressed key"))?;
    let uri = DocUri::parse(&p.document_uri)?;
    if uri.issuer() != p.issuer_id {
        return Err(FormatError::field(
            "draft.document_uri",
            "names another issuer",
        ));
    }
    let s = p
        .status
        .as_ref()
        .ok_or_else(|| FormatError::field("draft.status", "is missing"))?;
    url::Url::parse(&s.status_list_credential)
        .map_err(|_| FormatError::field("draft.status", "status_list_credential must be a URL"))?;
    Ok(Draft {
        credential_id: p.credential_id.clone(),
        issuer_id: p.issuer_id.clone(),
        issuer_name: p.issuer_name.clone(),
        holder_id: p.holder_id.clone(),
        holder_key,
        uri,
        status: StatusEntry {
            list_url: s.status_list_credential.clone(),
            index: s.status_list_index,
        },
        valid_from: p.valid_from,
        valid_until: (p.valid_until != 0).then_some(p.valid_until),
    })
}
