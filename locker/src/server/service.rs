//! The gRPC edge of the locker: each RPC hands its request to the matching `Locker` method and
//! maps the result through the one `LockerError → Status` conversion.

use super::Locker;
use super::error::LockerError;
use dlocker_proto::pb;
use dlocker_proto::pb::document_service_server::DocumentService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `DocumentService` implementation.
#[derive(Debug, Clone)]
pub struct DocumentServiceImpl {
    locker: Arc<Locker>,
}

impl DocumentServiceImpl {
    /// Serves `locker`.
    pub fn new(locker: Arc<Locker>) -> Self {
        Self { locker }
    }
}

fn answer<T>(r: Result<T, LockerError>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl DocumentService for DocumentServiceImpl {
    async fn get_locker_info(
        &self,
        _: Request<pb::GetLockerInfoRequest>,
    ) -> Result<Response<pb::LockerInfo>, Status> {
        let l = &self.locker;
        let s = l.settings();
        Ok(Response::new(pb::LockerInfo {
            locker_id: l.locker_id().to_owned(),
            issuer_uri: crate::ids::locker_urn(l.locker_id()),
            status_key: dlocker_proto::keys::encode_public_key(&l.status_key()).to_vec(),
            max_upload_bytes: s.max_upload_bytes as u32,
            max_uploads_per_holder: s.max_uploads_per_holder as u32,
            upload_media_types: s.upload_media_types.clone(),
            base_url: s.base_url.clone(),
        }))
    }

    async fn get_issuer(
        &self,
        r: Request<pb::GetIssuerRequest>,
    ) -> Result<Response<pb::IssuerInfo>, Status> {
        answer(self.locker.get_issuer(&r.get_ref().issuer_id))
    }

    async fn get_status_list(
        &self,
        r: Request<pb::GetStatusListRequest>,
    ) -> Result<Response<pb::StatusListResponse>, Status> {
        let r = r.get_ref();
        answer(
            self.locker
                .status_list_credential(&r.issuer_id, r.list)
                .map(|(credential_jws, url)| pb::StatusListResponse {
                    credential_jws,
                    url,
                }),
        )
    }

    async fn register_issuer(
        &self,
        r: Request<pb::RegisterIssuerRequest>,
    ) -> Result<Response<pb::IssuerInfo>, Status> {
        let peer = r.remote_addr().map(|a| a.ip());
        answer(self.locker.register_issuer(r.get_ref(), peer).await)
    }

    async fn register_requester(
        &self,
        r: Request<pb::RegisterRequesterRequest>,
    ) -> Result<Response<pb::RequesterInfo>, Status> {
        let peer = r.remote_addr().map(|a| a.ip());
        answer(self.locker.register_requester(r.get_ref(), peer).await)
    }

    async fn list_registry(
        &self,
        r: Request<pb::ListRegistryRequest>,
    ) -> Result<Response<pb::ListRegistryResponse>, Status> {
        answer(
            self.locker
                .list_registry(&r.get_ref().staff_request_encoded)
                .await,
        )
    }

    async fn decide_registration(
        &self,
        r: Request<pb::DecideRegistrationRequest>,
    ) -> Result<Response<pb::RegistryDecision>, Status> {
        answer(
            self.locker
                .decide_registration(&r.get_ref().staff_request_encoded)
                .await,
        )
    }

    async fn reserve_document(
        &self,
        r: Request<pb::ReserveDocumentRequest>,
    ) -> Result<Response<pb::DocumentDraft>, Status> {
        answer(self.locker.reserve_document(r.get_ref()).await)
    }

    async fn push_document(
        &self,
        r: Request<pb::PushDocumentRequest>,
    ) -> Result<Response<pb::LockerDocument>, Status> {
        answer(self.locker.push_document(r.get_ref()).await)
    }

    async fn issue_document(
        &self,
        r: Request<pb::IssueDocumentRequest>,
    ) -> Result<Response<pb::LockerDocument>, Status> {
        answer(self.locker.issue_document(r.get_ref()).await)
    }

    async fn list_issuer_tasks(
        &self,
        r: Request<pb::ListIssuerTasksRequest>,
    ) -> Result<Response<pb::ListIssuerTasksResponse>, Status> {
        answer(self.locker.list_issuer_tasks(r.get_ref()).await)
    }

    async fn decide_attestation(
        &self,
        r: Request<pb::DecideAttestationRequest>,
    ) -> Result<Response<pb::DecideAttestationResponse>, Status> {
        answer(self.locker.decide_attestation(r.get_ref()).await)
    }

    async fn begin_owner_challenge(
        &self,
        r: Request<pb::BeginOwnerChallengeRequest>,
    ) -> Result<Response<pb::OwnerChallenge>, Status> {
        self.locker.host().owner_call(r.remote_addr())?;
        let r = r.get_ref();
        answer(
            self.locker
                .begin_owner_challenge(&r.holder_id, &r.purpose)
                .await,
        )
    }

    async fn register_holder(
        &self,
        r: Request<pb::RegisterHolderRequest>,
    ) -> Result<Response<pb::HolderInfo>, Status> {
        self.locker.host().owner_call(r.remote_addr())?;
        answer(self.locker.register_holder(r.get_ref()).await)
    }

    async fn pull_document(
        &self,
        r: Request<pb::HolderPullRequest>,
    ) -> Result<Response<pb::LockerDocument>, Status> {
        answer(self.locker.pull_document(r.get_ref()).await)
    }

    async fn list_documents(
        &self,
        r: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        answer(self.locker.list_documents(r.get_ref()).await)
    }

    async fn upload_document(
        &self,
        r: Request<pb::UploadDocumentRequest>,
    ) -> Result<Response<pb::LockerDocument>, Status> {
        answer(self.locker.upload_document(r.get_ref()).await)
    }

    async fn request_attestation(
        &self,
        r: Request<pb::RequestAttestationRequest>,
    ) -> Result<Response<pb::IssuerTask>, Status> {
        answer(self.locker.request_attestation(r.get_ref()).await)
    }

    async fn grant_consent(
        &self,
        r: Request<pb::GrantConsentRequest>,
    ) -> Result<Response<pb::ConsentRecord>, Status> {
        answer(self.locker.grant_consent(r.get_ref()).await)
    }

    async fn revoke_consent(
        &self,
        r: Request<pb::RevokeConsentRequest>,
    ) -> Result<Response<pb::ConsentRecord>, Status> {
        answer(self.locker.revoke_consent(r.get_ref()).await)
    }

    async fn list_consents(
        &self,
        r: Request<pb::ListConsentsRequest>,
    ) -> Result<Response<pb::ListConsentsResponse>, Status> {
        answer(self.locker.list_consents(r.get_ref()).await)
    }

    async fn reissue(
        &self,
        r: Request<pb::ReissueRequest>,
    ) -> Result<Response<pb::ReissueResponse>, Status> {
        self.locker.host().owner_call(r.remote_addr())?;
        answer(self.locker.reissue(r.get_ref()).await)
    }

    async fn fetch_document(
        &self,
        r: Request<pb::FetchDocumentRequest>,
    ) -> Result<Response<pb::FetchDocumentResponse>, Status> {
        answer(self.locker.fetch_document(r.get_ref()).await)
    }
}
