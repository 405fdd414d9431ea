//! *Pull* issuers (DigiLocker's "Pull URI"): the issuer runs an `IssuerRepository` gRPC service
//! and the locker calls `PullDocument(holder, doc type, lookup fields, holder key)` when a
//! holder asks for a document — and again at a re-issue, with the new key.
//!
//! An issuer integrates by implementing one function, [`DocumentSource::pull`]: find the record
//! for the lookup fields and return its claims. [`RepositoryServer`] does the rest: it checks
//! that the call comes from the locker (a request signed by the locker's pinned key), checks the
//! draft the locker allocated, signs the credential with the issuer's key, and answers.
//!
//! ```no_run
//! use dlocker_locker::repository::{DocumentSource, PullQuery, PullRefusal, RepositoryServer};
//! use dlocker_locker::vc::Claims;
//!
//! struct Registry;
//! impl DocumentSource for Registry {
//!     async fn pull(&self, q: &PullQuery) -> Result<Claims, PullRefusal> {
//!         match q.lookup.get("licence_number").map(String::as_str) {
//!             Some("KA01-2020-0001234") => Claims::from_pairs([("name", "Asha Rao")])
//!                 .map_err(|e| PullRefusal::Invalid(e.to_string())),
//!             _ => Err(PullRefusal::NotFound("no licence with that number".into())),
//!         }
//!     }
//! }
//! # async fn run(key: dlocker_locker::PrincipalKey, locker_key: k256::PublicKey) -> Result<(), Box<dyn std::error::Error>> {
//! let server = RepositoryServer::new("in.gov.transport", key, Registry).with_locker_key(locker_key);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7301").await?;
//! server.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use crate::error::FormatError;
use crate::keys::PrincipalKey;
use crate::request::{self, LockerAction};
use crate::vc::{self, Claims, Draft};
use crate::wire;
use dlocker_proto::pb;
use dlocker_proto::pb::issuer_repository_client::IssuerRepositoryClient;
use dlocker_proto::pb::issuer_repository_server::{IssuerRepository, IssuerRepositoryServer};
use k256::PublicKey;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Most lookup fields in one pull.
pub const MAX_LOOKUP_FIELDS: usize = 8;
/// Longest lookup field name or value.
pub const MAX_LOOKUP_LEN: usize = 256;
/// Largest message exchanged with a repository.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Allowed difference between the locker's request time and the repository's clock.
pub const REQUEST_SKEW_SECS: u64 = 300;

/// Checks lookup fields: at most 8, names of `A-Za-z0-9_` and values of printable characters,
/// each at most 256 bytes.
pub fn check_lookup(lookup: &BTreeMap<String, String>) -> Result<(), FormatError> {
    if lookup.is_empty() || lookup.len() > MAX_LOOKUP_FIELDS {
        return Err(FormatError::field(
            "lookup",
            format!("give 1–{MAX_LOOKUP_FIELDS} lookup fields"),
        ));
    }
    for (k, v) in lookup {
        if k.is_empty()
            || k.len() > MAX_LOOKUP_LEN
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || v.len() > MAX_LOOKUP_LEN
            || v.chars().any(char::is_control)
        {
            return Err(FormatError::field(
                "lookup",
                format!("field {k:?} has a bad name or value"),
            ));
        }
    }
    Ok(())
}

/// What the locker asks a repository for.
#[derive(Debug, Clone)]
pub struct PullQuery {
    /// The holder (wallet id at the locker).
    pub holder_id: String,
    /// The document type.
    pub doc_type: String,
    /// The issuer's lookup fields, as the holder gave them.
    pub lookup: BTreeMap<String, String>,
    /// Everything the locker allocated (credential id, URI, status entry, holder key).
    pub draft: Draft,
}

/// Why a repository did not return a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRefusal {
    /// No record matches the lookup fields.
    NotFound(String),
    /// The lookup fields are malformed, or the record cannot be expressed as claims.
    Invalid(String),
    /// The issuer's back end is not available.
    Unavailable(String),
}

/// The one function a pull issuer implements.
pub trait DocumentSource: Send + Sync + 'static {
    /// The claims of the document `query` names, or why there is none.
    fn pull(&self, query: &PullQuery) -> impl Future<Output = Result<Claims, PullRefusal>> + Send;
}

/// An `IssuerRepository` gRPC service over a [`DocumentSource`].
pub struct RepositoryServer<S> {
    issuer_id: String,
    key: PrincipalKey,
    source: Arc<S>,
    locker_key: Option<PublicKey>,
}

impl<S> std::fmt::Debug for RepositoryServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryServer")
            .field("issuer_id", &self.issuer_id)
            .field("key", &self.key)
            .field("locker_key_pinned", &self.locker_key.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: DocumentSource> RepositoryServer<S> {
    /// A repository for `issuer_id`, signing with `key` (the key registered at the locker).
    pub fn new(issuer_id: &str, key: PrincipalKey, source: S) -> Self {
        Self {
            issuer_id: issuer_id.to_owned(),
            key,
            source: Arc::new(source),
            locker_key: None,
        }
    }

    /// Accepts calls only from the locker holding `key` (its node identity key, from its
    /// `GetLockerInfo` / the trustees file). Without it any caller may pull — tests only.
    pub fn with_locker_key(mut self, key: PublicKey) -> Self {
        self.locker_key = Some(key);
        self
    }

    /// The tonic service (for a server that also serves other things).
    pub fn into_service(self) -> IssuerRepositoryServer<Self> {
        IssuerRepositoryServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .timeout(Duration::from_secs(30))
            .add_service(self.into_service())
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown,
            )
            .await
    }

    fn check(&self, r: &pb::RepositoryPullRequest) -> Result<PullQuery, Status> {
        let invalid = |e: FormatError| Status::invalid_argument(e.to_string());
        let p = r
            .draft
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("draft is missing"))?;
        let draft = wire::draft_from_pb(p).map_err(invalid)?;
        if draft.issuer_id != self.issuer_id {
            return Err(Status::invalid_argument(format!(
                "this repository serves issuer {}, not {}",
                self.issuer_id, draft.issuer_id
            )));
        }
        if draft.holder_id != r.holder_id || draft.uri.doc_type() != r.doc_type {
            return Err(Status::invalid_argument(
                "the draft is for another holder or document type",
            ));
        }
        let lookup: BTreeMap<String, String> = r.lookup.clone().into_iter().collect();
        check_lookup(&lookup).map_err(invalid)?;
        if let Some(locker_key) = &self.locker_key {
            let params =
                request::params::repository_pull(&r.holder_id, &r.doc_type, &lookup, &draft);
            let signed = dlocker_proto::statement::Signed::<request::LockerRequest>::decode(
                &r.locker_request_encoded,
            )
            .map_err(|_| Status::unauthenticated("the pull request is not signed by a locker"))?;
            let body = signed.body();
            if signed.signer() != locker_key
                || body.action != LockerAction::RepositoryPull
                || body.params != params
                || body.principal != body.locker
            {
                return Err(Status::unauthenticated(
                    "the pull request is not signed by the pinned locker key",
                ));
            }
            if body.timestamp.abs_diff(dlocker_proto::time::unix_now()) > REQUEST_SKEW_SECS {
                return Err(Status::unauthenticated(
                    "the locker's pull request is stale; check the clocks",
                ));
            }
        }
        Ok(PullQuery {
            holder_id: r.holder_id.clone(),
            doc_type: r.doc_type.clone(),
            lookup,
            draft,
        })
    }
}

#[tonic::async_trait]
impl<S: DocumentSource> IssuerRepository for RepositoryServer<S> {
    async fn pull_document(
        &self,
        request: Request<pb::RepositoryPullRequest>,
    ) -> Result<Response<pb::RepositoryPullResponse>, Status> {
        let query = self.check(request.get_ref())?;
        let claims = self.source.pull(&query).await.map_err(|r| match r {
            PullRefusal::NotFound(m) => Status::not_found(m),
            PullRefusal::Invalid(m) => Status::invalid_argument(m),
            PullRefusal::Unavailable(m) => Status::unavailable(m),
        })?;
        let jws = vc::issue(
            &query.draft,
            &claims,
            self.key.signing_key(),
            dlocker_proto::time::unix_now(),
        );
        tracing::info!(issuer = %self.issuer_id, doc_type = %query.doc_type, "document pulled by the locker");
        Ok(Response::new(pb::RepositoryPullResponse {
            credential_jws: jws,
        }))
    }
}

/// Why calling a repository failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryCallError {
    /// The endpoint could not be reached or did not answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The repository answered with an error.
    #[error("{code:?}: {message}")]
    Refused {
        /// The gRPC code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

/// Calls `PullDocument` at `endpoint` (the locker's side), with connect and request timeouts.
pub async fn call_pull(
    endpoint: &str,
    request: pb::RepositoryPullRequest,
    timeout: Duration,
) -> Result<String, RepositoryCallError> {
    let ep = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| RepositoryCallError::Unreachable(e.to_string()))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = ep
        .connect()
        .await
        .map_err(|e| RepositoryCallError::Unreachable(innermost(&e)))?;
    let mut client = IssuerRepositoryClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    match client.pull_document(request).await {
        Ok(r) => Ok(r.into_inner().credential_jws),
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) =>
        {
            Err(RepositoryCallError::Unreachable(s.message().to_owned()))
        }
        Err(s) => Err(RepositoryCallError::Refused {
            code: s.code(),
            message: s.message().to_owned(),
        }),
    }
}

/// The innermost message of an error chain ("Connection refused", not "transport error").
pub fn innermost(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !t.trim().is_empty() {
            msg = t;
        }
        cur = s.source();
    }
    msg
}
