//! TLS: the public ports over TLS, and mutual TLS between the services of the mesh.
//!
//! A process is given its certificate and key (`--tls-cert`, `--tls-key`, PEM). With the
//! mesh's certificate authority too (`--tls-ca`), its internal gRPC servers accept only peers
//! that show a certificate the CA signed, and its clients show theirs and trust only servers
//! the CA signed: a process outside the mesh can neither join it nor read from it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
pub use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("the {what} is not usable: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// How long a client may take over its TLS handshake (as on the HTTP ports).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// This process's certificate and key, and the mesh's CA if it takes part in mutual TLS.
#[derive(Clone)]
pub struct Tls {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Option<Vec<u8>>,
    /// The name peers' certificates must carry, in place of the host of their address (peers
    /// known by IP, such as executors on Kubernetes, share one certificate name).
    server_name: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Tls")
            .field("mutual", &self.ca.is_some())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// From PEM text, checked now so a bad file stops the process at its start.
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, ca: Option<Vec<u8>>) -> Result<Self, TlsError> {
        let tls = Self {
            cert,
            key,
            ca,
            server_name: None,
        };
        tls.http_server()?;
        if let Some(ca) = &tls.ca {
            certificates(ca, "CA certificate (--tls-ca)")?;
        }
        Ok(tls)
    }

    /// From the files `--tls-cert`, `--tls-key` and (for mutual TLS) `--tls-ca` name.
    pub fn from_files(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Self, TlsError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|e| TlsError::Read {
                what,
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let ca = ca.map(|ca| read("CA certificate", ca)).transpose()?;
        Self::from_pem(read("certificate", cert)?, read("key", key)?, ca)
    }

    /// Expects `name` in every peer's certificate, whatever its address (`--tls-server-name`).
    pub fn with_server_name(mut self, name: Option<String>) -> Self {
        self.server_name = name;
        self
    }

    /// Whether peers must show a certificate the mesh's CA signed.
    pub fn is_mutual(&self) -> bool {
        self.ca.is_some()
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }

    /// An internal service's gRPC server: with the CA, only peers with a certificate it signed.
    pub fn grpc_server(&self) -> ServerTlsConfig {
        let config = self.public_grpc_server();
        match &self.ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// A public gRPC server: TLS without client certificates (callers bring tokens).
    pub fn public_grpc_server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A client in the mesh: shows this process's certificate and trusts only the CA. `None`
    /// without a CA (the mesh is then plain gRPC).
    pub fn grpc_client(&self) -> Option<ClientTlsConfig> {
        let ca = self.ca.as_ref()?;
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(self.identity());
        Some(match &self.server_name {
            Some(name) => config.domain_name(name.clone()),
            None => config,
        })
    }

    /// An HTTP server's TLS (HTTP/1.1 and HTTP/2), without client certificates.
    pub fn http_server(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = certificates(&self.cert, "certificate (--tls-cert)")?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| TlsError::Invalid {
            what: "key (--tls-key)",
            reason: e.to_string(),
        })?;
        let provider = ring_provider();
        let invalid = |e: rustls::Error| TlsError::Invalid {
            what: "certificate and key",
            reason: e.to_string(),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(invalid)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The cryptography fwasm's TLS uses: ring, as tonic's gRPC TLS here (rustls deprecates it
/// for lacking post-quantum key exchange, which would take aws-lc-rs and its C toolchain).
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default for TLS clients built without a configuration of their
/// own (reqwest's, in the tests); a no-op if a default is already set.
pub fn use_ring_by_default() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM file's text; at least one, or why not (`what` names the file).
pub fn certificates(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            what,
            reason: e.to_string(),
        })?;
    match certs.is_empty() {
        true => Err(TlsError::Invalid {
            what,
            reason: "it holds no PEM certificate".into(),
        }),
        false => Ok(certs),
    }
}
