//! Mutual TLS: which client certificates may call which gRPC service.
//!
//! `[tls.service_clients]` lists, per service, the SHA-256 of the client certificates (DER)
//! allowed to call it — the bank's staff front end for `staff`, say. A service not listed accepts
//! any certificate the client CA signed (the TLS handshake already checked that). The check is a
//! tonic interceptor in front of the service, so it runs before any handler: a refused call
//! reads and writes nothing.

use crate::config::{GrpcService, NodeConfig};
use crate::error::NodeError;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The interceptor of one service.
#[derive(Clone)]
pub struct ServiceGate {
    service: GrpcService,
    /// `None`: any client the TLS layer accepted.
    allowed: Option<Arc<[[u8; 32]]>>,
}

impl ServiceGate {
    /// The gate `config` sets for `service`.
    pub fn new(config: &NodeConfig, service: GrpcService) -> Self {
        let allowed = config
            .tls
            .as_ref()
            .and_then(|t| t.clients_of(service))
            .map(Arc::from);
        Self { service, allowed }
    }

    /// Whether a caller presenting `cert_sha256` (none without a client certificate) may call.
    pub fn check(&self, cert_sha256: Option<&[u8; 32]>) -> Result<(), NodeError> {
        match (&self.allowed, cert_sha256) {
            (None, _) => Ok(()),
            (Some(list), Some(h)) if list.contains(h) => Ok(()),
            (Some(_), _) => Err(NodeError::ServiceNotAllowed {
                service: self.service.name(),
                key: self.service.key(),
            }),
        }
    }
}

impl Interceptor for ServiceGate {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.allowed.is_none() {
            return Ok(req);
        }
        let cert = req.peer_certs().and_then(|certs| {
            certs
                .first()
                .map(|c| <[u8; 32]>::from(Sha256::digest(c.as_ref())))
        });
        self.check(cert.as_ref())?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_service_admits_only_its_certificates() {
        let gate = ServiceGate {
            service: GrpcService::Staff,
            allowed: Some(Arc::from(vec![[1u8; 32]])),
        };
        assert!(gate.check(Some(&[1u8; 32])).is_ok());
        let refused = gate.check(Some(&[2u8; 32])).expect_err("not listed");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.to_string().contains("Staff service"), "{refused}");
        assert!(gate.check(None).is_err(), "no certificate, no entry");
        let open = ServiceGate {
            service: GrpcService::Trustee,
            allowed: None,
        };
        assert!(open.check(None).is_ok() && open.check(Some(&[2u8; 32])).is_ok());
    }
}
