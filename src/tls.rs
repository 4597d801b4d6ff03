//! The TLS and HTTP/1.1 client pieces both HTTPS clients share (the loader's Kubernetes API
//! client and `trust fetch`'s registry client): rustls on ring with its safe protocol
//! versions and HTTP/1.1 by ALPN, the CA certificates a caller trusts read from PEM, and one
//! request on a connection of its own. Trust is always the caller's explicit root store:
//! nothing here skips verification.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a PEM file of CA certificates was refused.
#[derive(Debug, thiserror::Error)]
pub enum PemCaError {
    #[error("not PEM: {0}")]
    NotPem(String),
    #[error("not a CA certificate: {0}")]
    NotCa(String),
}

/// Add every certificate of `pem` to `roots`; how many there were.
pub fn add_pem_cas(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<usize, PemCaError> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| PemCaError::NotPem(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| PemCaError::NotCa(e.to_string()))?;
        added += 1;
    }
    Ok(added)
}

/// A client configuration trusting exactly `roots`.
pub fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One HTTP/1.1 request on `io` (a TCP or TLS stream), its connection driven meanwhile.
pub async fn send_on<S, B>(
    io: S,
    request: http::Request<B>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    tokio::spawn(conn);
    sender.send_request(request).await
}
