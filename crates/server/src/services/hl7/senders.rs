//! Who may send HL7 to Parcours: the declared senders (cached), the peer a
//! message must come from, and the IPP authorities a sender may use.

use crate::services::ctx::Ctx;

pub use crate::services::ctx::SenderCache;

/// Where a message came from, for binding it to its declared sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// From inside (a replay by an administrator, a test): trusted.
    Internal,
    /// Plain MLLP from this address.
    Tcp(std::net::IpAddr),
    /// MLLP over TLS, with the subject (CN) of the client certificate.
    Tls {
        /// The address.
        addr: std::net::IpAddr,
        /// The certificate's common name.
        subject: String,
    },
}

/// How much of a message from an unknown or refused sender is logged.
pub const UNKNOWN_SENDER_PREFIX: usize = 256;

/// Whether `peer` may speak as `sender`: over TLS, only with the certificate
/// declared for it; over plain MLLP, only from this machine or a declared
/// address. The reason (French) when not.
pub fn peer_allowed(peer: &Peer, sender: &store::hl7::Hl7Sender) -> Result<(), String> {
    match peer {
        Peer::Internal => Ok(()),
        Peer::Tls { subject, .. } => match &sender.tls_subject {
            Some(s) if s == subject => Ok(()),
            _ => Err(format!(
                "le certificat présenté ({subject}) n'est pas celui déclaré pour cet émetteur"
            )),
        },
        Peer::Tcp(ip) => {
            let ip = crate::addr::canonical(*ip);
            if ip.is_loopback()
                || sender
                    .allowed_addresses
                    .iter()
                    .any(|a| crate::addr::matches(ip, a))
            {
                Ok(())
            } else {
                Err(format!(
                    "adresse {ip} non déclarée pour cet émetteur (MLLP/TLS avec certificat, ou adresse autorisée)"
                ))
            }
        }
    }
}

/// Whether an IPP assigned by (`namespace`, `universal_id`) (PID-3.4) is an
/// IPP of this domain: HD semantics, the universal id names the authority
/// when given, the namespace otherwise; it must be the territory's OID or the
/// authority declared for the sender.
pub(crate) fn ipp_authority_ok(
    sender: &store::hl7::Hl7Sender,
    namespace: &str,
    universal_id: &str,
) -> bool {
    let named = if universal_id.is_empty() {
        namespace
    } else {
        universal_id
    };
    !named.is_empty()
        && (named == sender.territory_oid || sender.ipp_authority.as_deref() == Some(named))
}

/// How long a node trusts its copy of a declared sender: a change made where
/// no live event reaches (`parcours org apply`, another process) binds every
/// node within this time; the admin page's changes empty the caches at once.
pub const SENDER_CACHE_MS: i64 = 60_000;

/// A declared sender; known senders are cached for [`SENDER_CACHE_MS`],
/// unknown ones looked up every time.
pub(crate) async fn sender_of(
    ctx: Ctx<'_>,
    app: &str,
    facility: &str,
) -> Result<Option<store::hl7::Hl7Sender>, store::StoreError> {
    let key = (app.to_owned(), facility.to_owned());
    let now = ctx.now_ms();
    if let Some((hit, at)) = ctx.senders.read().ok().and_then(|c| c.get(&key).cloned())
        && now - at < SENDER_CACHE_MS
    {
        return Ok(Some(hit));
    }
    let found = ctx.store.hl7_sender(app, facility).await?;
    if let Ok(mut cache) = ctx.senders.write() {
        match &found {
            Some(f) => {
                cache.insert(key, (f.clone(), now));
            }
            None => {
                cache.remove(&key);
            }
        }
    }
    Ok(found)
}
