//! TLS for MLLP, both ways, with rustls and ring: the listener's configuration
//! (our certificate, client certificates required and chained to the
//! configured CA), the outbound client's (the receiver's CA, our certificate),
//! and the subject's common name of a peer certificate, which binds a
//! connection to the HL7 sender declared with that name.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use crate::config::Config;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(what: &str, path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pem::certificates(what, path)? {
        roots.add(cert).map_err(|e| format!("{what} : {e}"))?;
    }
    Ok(roots)
}

/// The MLLP/TLS listener's configuration, when `mllp_tls_listen` is set: it
/// needs the certificate, its key and the CA of the senders' certificates.
pub fn server_config(c: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    if c.mllp_tls_listen.is_none() {
        return Ok(None);
    }
    let (Some(cert), Some(key), Some(ca)) =
        (&c.mllp_tls_cert, &c.mllp_tls_key, &c.mllp_tls_client_ca)
    else {
        return Err(
            "PARCOURS_MLLP_TLS_LISTEN demande PARCOURS_MLLP_TLS_CERT, PARCOURS_MLLP_TLS_KEY et PARCOURS_MLLP_TLS_CLIENT_CA"
                .into(),
        );
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots("PARCOURS_MLLP_TLS_CLIENT_CA", ca)?),
        provider(),
    )
    .build()
    .map_err(|e| format!("PARCOURS_MLLP_TLS_CLIENT_CA : {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS : {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            crate::pem::certificates("PARCOURS_MLLP_TLS_CERT", cert)?,
            crate::pem::private_key("PARCOURS_MLLP_TLS_KEY", key)?,
        )
        .map_err(|e| format!("PARCOURS_MLLP_TLS_CERT / PARCOURS_MLLP_TLS_KEY : {e}"))?;
    Ok(Some(Arc::new(config)))
}

/// The client configuration for `mllps://` destinations (ORU, SIU).
pub fn client_config(c: &Config) -> Result<Arc<rustls::ClientConfig>, String> {
    client(
        "PARCOURS_MLLP_OUT",
        c.mllp_out_ca.as_deref(),
        c.mllp_out_cert.as_deref(),
        c.mllp_out_key.as_deref(),
    )
    .map(Arc::new)
}

/// A TLS client of an establishment (MLLP out, the IMAPS mailbox): the CA the
/// server's certificate must chain to (else the system's roots) and our
/// certificate with its key when given; errors name the settings
/// `{prefix}_CA`, `{prefix}_CERT`, `{prefix}_KEY`.
pub fn client(
    prefix: &str,
    ca: Option<&std::path::Path>,
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, String> {
    let roots = match ca {
        Some(ca) => roots(&format!("{prefix}_CA"), ca)?,
        None => {
            let mut r = rustls::RootCertStore::empty();
            let _ = r.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            r
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS : {e}"))?
        .with_root_certificates(roots);
    let (cert_name, key_name) = (format!("{prefix}_CERT"), format!("{prefix}_KEY"));
    match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                crate::pem::certificates(&cert_name, cert)?,
                crate::pem::private_key(&key_name, key)?,
            )
            .map_err(|e| format!("{cert_name} / {key_name} : {e}")),
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(format!(
            "{cert_name} et {key_name} vont ensemble (certificat et clé)"
        )),
    }
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest
            .get(..n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The subject's common name (OID 2.5.4.3) of a certificate, read from its DER
/// (Certificate → tbsCertificate → subject, the sixth field counting the
/// optional version).
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, certificate, _) = der(cert.as_ref())?;
    let (_, tbs, _) = der(certificate)?;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, after_first) = der(tbs)?;
    let after_serial = if tag == 0xa0 {
        der(after_first)?.2
    } else {
        after_first
    };
    subject_cn(skip(after_serial, 3)?)
}

fn skip(mut input: &[u8], n: usize) -> Option<&[u8]> {
    for _ in 0..n {
        input = der(input)?.2;
    }
    Some(input)
}

fn subject_cn(input: &[u8]) -> Option<String> {
    const CN: [u8; 3] = [0x55, 0x04, 0x03];
    let (_, mut name, _) = der(input)?;
    while !name.is_empty() {
        let (_, set, rest) = der(name)?;
        name = rest;
        let (_, attr, _) = der(set)?;
        let (_, oid, value) = der(attr)?;
        if oid == CN {
            let (_, text, _) = der(value)?;
            return String::from_utf8(text.to_vec()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn truncated_or_foreign_der_gives_no_name() {
        assert_eq!(common_name(&CertificateDer::from(vec![])), None);
        assert_eq!(
            common_name(&CertificateDer::from(vec![0x30, 0x82, 0xff])),
            None
        );
        assert_eq!(
            common_name(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01])),
            None
        );
    }
}
