//! TLS for QUIC: a self-signed server identity by default or PEM files, and client
//! configurations that either verify against a given certificate or accept any (with a warning).

use crate::NetError;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// ALPN of protocol version 1.
pub const ALPN: &[u8] = b"deepoffload/1";

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The certificate in PEM form when we generated it, so clients can pin it with `--ca`.
    pub generated_pem: Option<String>,
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and the given names.
    pub fn self_signed(names: &[String]) -> Result<Self, NetError> {
        let mut all = vec!["localhost".to_string()];
        all.extend(names.iter().cloned());
        let certified = rcgen::generate_simple_self_signed(all)
            .map_err(|e| NetError::Tls(format!("generating a certificate: {e}")))?;
        Ok(Self {
            certs: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
            generated_pem: Some(certified.cert.pem()),
        })
    }

    /// Loads a PEM certificate chain and private key.
    pub fn from_pem(cert: &Path, key: &Path) -> Result<Self, NetError> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                NetError::Tls(format!(
                    "{}: not a PEM certificate chain ({e})",
                    cert.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(NetError::Tls(format!(
                "{}: holds no certificate",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            NetError::Tls(format!("{}: not a PEM private key ({e})", key.display()))
        })?;
        Ok(Self {
            certs,
            key,
            generated_pem: None,
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Keep-alives and idle timeout tuned so a vanished peer is noticed within seconds.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_millis(500)));
    t.max_idle_timeout(Some(
        Duration::from_secs(3).try_into().expect("small duration"),
    ));
    t.max_concurrent_bidi_streams(256u32.into());
    Arc::new(t)
}

/// QUIC server configuration for an identity.
pub fn server_config(identity: Identity) -> Result<quinn::ServerConfig, NetError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| NetError::Tls(format!("certificate and key do not match: {e}")))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// QUIC client configuration: verify the server against `ca` (a PEM certificate) when given,
/// else accept any certificate — the session token still authenticates the client, but the
/// server is then unauthenticated, which is logged.
pub fn client_config(ca: Option<&Path>) -> Result<quinn::ClientConfig, NetError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(e.to_string()))?;
    let mut tls = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?
            {
                let cert = cert.map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| NetError::Tls(format!("{}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            tracing::warn!("QUIC: not verifying the server's certificate (pass --ca to pin it)");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider())))
                .with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| NetError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// Accepts any server certificate but still checks handshake signatures, so the connection is
/// encrypted and bound to the key the server presented.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
