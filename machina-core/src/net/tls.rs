//! TLS for the network services (feature `tls`): [`ServerTls`] for a
//! [`TcpServer`](super::TcpServer) (aiomisc `TLSServer`) and [`ClientTls`]
//! for a [`TcpClient`](super::TcpClient) (aiomisc `TLSClient`), with
//! rustls (its `ring` provider) over `futures-io` through
//! `futures-rustls` — the same on every runtime.
//!
//! Certificates and keys come from PEM, in memory or in files; a rustls
//! configuration of your own can be used as it is.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};

use super::error::NetError;
use super::tcp_server::Upgrade;
use crate::rt::{Connection, IoFuture};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> NetError {
    NetError::Tls(format!("{what}: {error}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|e| tls_error(&format!("cannot read {}", path.display()), e))
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("bad certificate PEM", e))?;
    if certs.is_empty() {
        return Err(NetError::Tls(
            "no certificate in the PEM (expected a -----BEGIN CERTIFICATE----- block)".into(),
        ));
    }
    Ok(certs)
}

/// A server's certificate and key, ready to accept TLS connections.
///
/// # Examples
///
/// ```
/// use machina_core::net::ServerTls;
///
/// let err = ServerTls::from_pem(b"not a certificate", b"nor a key").unwrap_err();
/// assert!(err.to_string().contains("no certificate"), "{err}");
/// ```
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// From a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`NetError::Tls`] for PEM without a certificate or key, or a key
    /// that does not fit the certificate.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, NetError> {
        let certs = certificates(cert_chain)?;
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_error("bad private key PEM", e))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error("certificate and key", e))?;
        Ok(ServerTls::from_config(Arc::new(config)))
    }

    /// From PEM files: the certificate chain and the private key.
    ///
    /// # Errors
    /// [`NetError::Tls`] for a file that cannot be read, or as
    /// [`from_pem`](Self::from_pem).
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, NetError> {
        ServerTls::from_pem(&read_file(cert_chain.as_ref())?, &read_file(key.as_ref())?)
    }

    /// From a rustls configuration of your own (client certificates, ALPN,
    /// another crypto provider).
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        ServerTls {
            acceptor: TlsAcceptor::from(config),
        }
    }
}

impl Upgrade for ServerTls {
    fn upgrade(&self, conn: Connection) -> IoFuture<'static, Connection> {
        let accept = self.acceptor.accept(conn);
        Box::pin(async move { Ok(Box::new(accept.await?) as Connection) })
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

/// What a client trusts and the name it expects the server to prove.
///
/// # Examples
///
/// ```
/// use machina_core::net::ClientTls;
///
/// let err = ClientTls::trusting_pem(b"", "example.com").unwrap_err();
/// assert!(err.to_string().contains("no certificate"), "{err}");
/// ```
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl ClientTls {
    /// Trusting the CA certificates in `ca_pem`, expecting a certificate
    /// for `server_name` (a DNS name or an IP address).
    ///
    /// # Errors
    /// [`NetError::Tls`] for PEM without a certificate, a certificate
    /// rustls refuses, or an invalid server name.
    pub fn trusting_pem(ca_pem: &[u8], server_name: &str) -> Result<Self, NetError> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca_pem)? {
            roots
                .add(cert)
                .map_err(|e| tls_error("CA certificate", e))?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientTls::from_config(Arc::new(config), server_name)
    }

    /// Trusting the CA certificates in a PEM file.
    ///
    /// # Errors
    /// As [`trusting_pem`](Self::trusting_pem), or the file cannot be
    /// read.
    pub fn trusting_pem_file(
        ca_pem: impl AsRef<Path>,
        server_name: &str,
    ) -> Result<Self, NetError> {
        ClientTls::trusting_pem(&read_file(ca_pem.as_ref())?, server_name)
    }

    /// From a rustls configuration of your own (the platform's or
    /// webpki's roots, client certificates, ALPN).
    ///
    /// # Errors
    /// [`NetError::Tls`] for an invalid server name.
    pub fn from_config(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, NetError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| tls_error(&format!("server name {server_name:?}"), e))?;
        Ok(ClientTls {
            connector: TlsConnector::from(config),
            server_name,
        })
    }

    /// The handshake over `conn`.
    pub(crate) fn upgrade(&self, conn: Connection) -> IoFuture<'static, Connection> {
        let connect = self.connector.connect(self.server_name.clone(), conn);
        Box::pin(async move { Ok(Box::new(connect.await?) as Connection) })
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}
