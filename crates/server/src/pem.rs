//! Certificates and keys from PEM files named in the configuration (the mail
//! server's CA, the establishment's certificate), with errors that name the
//! setting and the file.

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The bytes of the file `path` given by setting `what`.
pub fn read(what: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} ({}) illisible : {e}", path.display()))
}

/// The certificates of a PEM file (at least one).
pub fn certificates(
    what: &str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(&read(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} : certificats illisibles ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{what} : aucun certificat PEM"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(what: &str, path: &std::path::Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(&read(what, path)?).map_err(|e| format!("{what} illisible : {e}"))
}
