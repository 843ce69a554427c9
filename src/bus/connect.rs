//! Opening a connection to the broker, for the daemon's bus and the client
//! CLI alike: `amqp://`, or `amqps://` (TLS, verified against the system's
//! trust roots plus an optional CA file) with an optional client
//! certificate and key. The files are checked when the settings are loaded
//! (so `check-config` reports a bad one) and read again at every connect,
//! so certificates rotated on disk are picked up at the next reconnect.

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties, DefaultConnectionBuilder};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// The TLS files of `broker.tls` (all PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Extra trust anchors (`broker.tls.ca_file`), for a broker whose
    /// certificate is signed by the lab's own CA.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (`broker.tls.cert_file`), for brokers that
    /// authenticate clients by certificate.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (`broker.tls.key_file`).
    pub key_file: Option<PathBuf>,
}

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The settings key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file was read but holds nothing usable.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The settings key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Only one of the certificate and the key was given.
    #[error("a client certificate needs both cert_file and key_file")]
    Incomplete {
        /// The settings key that is missing.
        key: &'static str,
    },
}

impl TlsError {
    /// The settings key the error is about (`broker.tls.ca_file`, ...).
    pub(crate) fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Invalid { key, .. }
            | TlsError::Incomplete { key } => key,
        }
    }
}

impl From<TlsError> for std::io::Error {
    fn from(error: TlsError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, error.to_string())
    }
}

impl TlsFiles {
    /// Reads and checks the files into lapin's TLS configuration: the CA
    /// file must hold at least one certificate, the certificate file at
    /// least one, and the key file a private key.
    pub(crate) fn load(&self) -> Result<OwnedTLSConfig, TlsError> {
        let cert_chain = match &self.ca_file {
            Some(path) => {
                let pem = read(path, "broker.tls.ca_file")?;
                certificates(&pem, path, "broker.tls.ca_file")?;
                // PEM is ASCII; the check above proved the file parses.
                Some(String::from_utf8_lossy(&pem).into_owned())
            }
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsError::Incomplete {
                    key: "broker.tls.key_file",
                })
            }
            (None, Some(_)) => {
                return Err(TlsError::Incomplete {
                    key: "broker.tls.cert_file",
                })
            }
            (Some(cert), Some(key)) => {
                let pem = read(cert, "broker.tls.cert_file")?;
                certificates(&pem, cert, "broker.tls.cert_file")?;
                let key_pem = read(key, "broker.tls.key_file")?;
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Invalid {
                    key: "broker.tls.key_file",
                    path: key.clone(),
                    message: format!("no usable PEM private key: {e}"),
                })?;
                Some(OwnedIdentity::PKCS8 { pem, key: key_pem })
            }
        };
        Ok(OwnedTLSConfig {
            identity,
            cert_chain,
        })
    }
}

/// The settings' check of `broker.tls` for `url`: the files must be usable
/// and the URL must be `amqps://`. Errors are (settings key, message).
pub(crate) fn checked(
    files: Option<TlsFiles>,
    url: &str,
) -> Result<Option<TlsFiles>, (&'static str, String)> {
    let Some(files) = files else {
        return Ok(None);
    };
    if !url.starts_with("amqps://") {
        return Err((
            "broker.tls",
            "TLS files are used only with an amqps:// broker.url".into(),
        ));
    }
    files.load().map_err(|e| (e.key(), e.to_string()))?;
    Ok(Some(files))
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// Counts the PEM certificates in `pem`; none, or a malformed one, is an error.
fn certificates(pem: &[u8], path: &Path, key: &'static str) -> Result<usize, TlsError> {
    let invalid = |message: String| TlsError::Invalid {
        key,
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs.len())
}

/// Connects to `url` (`amqp://` or `amqps://`) with `tls` applied to an
/// `amqps://` URL, naming the connection `name` in the broker's management
/// view. A TLS file that cannot be used is an I/O error of the attempt.
pub(crate) async fn connect(
    url: &str,
    tls: Option<&TlsFiles>,
    name: &str,
) -> lapin::Result<Connection> {
    let tls = match tls {
        Some(files) => files.load().map_err(std::io::Error::from)?,
        None => OwnedTLSConfig::default(),
    };
    DefaultConnectionBuilder::new()?
        .with_uri_str(url.to_owned())
        .with_properties(ConnectionProperties::default().with_connection_name(name.into()))
        .with_tls_config(tls)
        .connect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_names_the_key() {
        let files = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let error = files.load().unwrap_err();
        assert_eq!(error.key(), "broker.tls.ca_file");
        assert!(error.to_string().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let files = TlsFiles {
            ca_file: Some(path),
            ..TlsFiles::default()
        };
        let error = files.load().unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn certificate_without_key_is_incomplete() {
        let files = TlsFiles {
            cert_file: Some("/c.pem".into()),
            ..TlsFiles::default()
        };
        assert_eq!(files.load().unwrap_err().key(), "broker.tls.key_file");
    }
}
