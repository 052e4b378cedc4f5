//! Everything rustls-specific (DESIGN: rustls 0.24 renames the client verifier trait and
//! `peer_certificates()`, so it stays in this one module): the server configuration per
//! TLS generation, the client-certificate verifier, and reading the peer chain.
//!
//! In mtls mode the server *offers* client auth without requiring it (a missing
//! certificate is judged per request: 401 or pass). The verifier checks the
//! CertificateVerify signature (proof of the private key) with the provider's algorithms
//! and accepts any chain, except with `validation_failure = handshake`, where it judges
//! the chain against the current trust store and fails the handshake with an alert.

use std::io;
use std::sync::Arc;

use arc_swap::ArcSwap;
use certgate_store::model::{CertAuthMode, ValidationFailure};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::evaluate::DenialReason;
use crate::identity::{CertSource, ClientIdentity, IdentityVerdict};
use crate::settings::ProxySettings;
use crate::snapshot::Snapshot;
use crate::telemetry;

/// TLS sessions kept by the server-side session cache (per TLS generation).
const SESSION_CACHE_SIZE: usize = 4096;

/// The process-wide crypto provider (aws-lc-rs).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds server configurations for successive TLS generations.
pub(crate) struct TlsFactory {
    provider: Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    http2: bool,
    session_resumption: bool,
    live: Arc<ArcSwap<Snapshot>>,
}

impl TlsFactory {
    /// Checks the server chain and key once (a config that cannot build fails `serve`).
    pub(crate) fn new(
        settings: &ProxySettings,
        live: Arc<ArcSwap<Snapshot>>,
    ) -> io::Result<TlsFactory> {
        let key = settings
            .server_key
            .as_ref()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "ssl is on but no server private key was given",
                )
            })?
            .clone_key();
        if settings.server_cert_chain.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ssl is on but no server certificate was given",
            ));
        }
        let factory = TlsFactory {
            provider: provider(),
            chain: settings.server_cert_chain.clone(),
            key,
            http2: settings.http2,
            session_resumption: settings.session_resumption,
            live,
        };
        let probe = factory.live.load_full();
        factory.build(&probe)?;
        Ok(factory)
    }

    /// The server configuration for `snapshot`'s mode. Each build has its own session
    /// cache and ticket keys, so a session never resumes across a mode change.
    pub(crate) fn build(&self, snapshot: &Snapshot) -> io::Result<Arc<ServerConfig>> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?;
        let builder = if snapshot.mode == CertAuthMode::Mtls {
            let hints = if snapshot.send_ca_names {
                snapshot.trust.ca_names.clone()
            } else {
                Vec::new()
            };
            builder.with_client_cert_verifier(Arc::new(ClientVerifier {
                algorithms: self.provider.signature_verification_algorithms,
                hints,
                live: self.live.clone(),
            }))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("server certificate or key: {e}"),
                )
            })?;
        config.alpn_protocols = if self.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        if self.session_resumption {
            config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
            config.ticketer =
                rustls::crypto::aws_lc_rs::Ticketer::new().map_err(io::Error::other)?;
        } else {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        Ok(Arc::new(config))
    }
}

/// The peer's chain (leaf first) after a handshake, resumed or not.
pub(crate) fn peer_chain(conn: &rustls::ServerConnection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
}

/// True when ALPN chose HTTP/2.
pub(crate) fn negotiated_h2(conn: &rustls::ServerConnection) -> bool {
    conn.alpn_protocol() == Some(b"h2")
}

/// Offers client auth, proves key possession, and judges the chain only when
/// `validation_failure = handshake`.
#[derive(Debug)]
struct ClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    hints: Vec<DistinguishedName>,
    live: Arc<ArcSwap<Snapshot>>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let snapshot = self.live.load();
        if snapshot.mode != CertAuthMode::Mtls
            || snapshot.validation_failure != ValidationFailure::Handshake
        {
            return Ok(ClientCertVerified::assertion());
        }
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        // Judged (or found judged) once for the connection that follows too.
        let identity = ClientIdentity::shared(&chain, CertSource::Mtls, &snapshot.trust);
        let info = identity.info.as_ref();
        let verdict = identity.verdict;
        match verdict {
            IdentityVerdict::Trusted => Ok(ClientCertVerified::assertion()),
            IdentityVerdict::Denied(reason) => {
                telemetry::record_denial(reason, "");
                snapshot.inventory.record(
                    &identity,
                    crate::inventory::Seen {
                        api: None,
                        denied: Some(reason),
                    },
                );
                tracing::info!(
                    reason = reason.as_str(),
                    subject = info.map(|i| i.subject.to_string()).unwrap_or_default(),
                    "client certificate refused in the handshake"
                );
                Err(rustls::Error::InvalidCertificate(certificate_error(reason)))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The alert a refused chain produces.
fn certificate_error(reason: DenialReason) -> CertificateError {
    match reason {
        DenialReason::Expired => CertificateError::Expired,
        DenialReason::NotYetValid => CertificateError::NotValidYet,
        DenialReason::Revoked => CertificateError::Revoked,
        _ => CertificateError::UnknownIssuer,
    }
}
