//! E-mail to patients: the notices of the outbox (booking confirmations with
//! their iCalendar event, cancellations, reminders, new documents) go by SMTP
//! when `PARCOURS_SMTP_URL` is set and the patient gave an address on the
//! portal; otherwise they stay on the portal and the log sender records that
//! they left. Plain SMTP to a relay of the establishment (`smtp://host:port`),
//! or STARTTLS (`?tls=required`) / implicit TLS (`smtps://`) with rustls,
//! trusting the configured CA (an MSSanté operator's IGC-Santé chain) and
//! presenting the establishment's certificate.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::outbound::DeliveryError;

/// The configured SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// The establishment's certificate and key for lettre. lettre 0.11's rustls
/// path keeps the certificate bytes it is given as they are (DER expected
/// despite the name `from_pem`), so the PEM is decoded here; the key it
/// decodes itself.
fn client_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<lettre::transport::smtp::client::Identity, String> {
    let certs = crate::pem::certificates("PARCOURS_SMTP_CERT", cert)?;
    let leaf = certs
        .first()
        .ok_or("PARCOURS_SMTP_CERT : aucun certificat PEM")?;
    lettre::transport::smtp::client::Identity::from_pem(
        leaf.as_ref(),
        &crate::pem::read("PARCOURS_SMTP_KEY", key)?,
    )
    .map_err(|e| format!("PARCOURS_SMTP_KEY illisible : {e}"))
}

impl Mailer {
    /// From the configuration: `None` without `smtp_url`; a clear error for a
    /// URL or sender address that cannot be used.
    pub fn from_config(c: &crate::config::Config) -> Result<Option<Mailer>, String> {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        let Some(url) = c.smtp_url.as_deref() else {
            return Ok(None);
        };
        let (implicit, rest) = match (url.strip_prefix("smtps://"), url.strip_prefix("smtp://")) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            (None, None) => {
                return Err(format!(
                    "PARCOURS_SMTP_URL doit commencer par smtp:// ou smtps:// : {url}"
                ));
            }
        };
        let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
        let starttls = match query {
            "" => false,
            "tls=required" => true,
            other => {
                return Err(format!(
                    "PARCOURS_SMTP_URL : option inconnue « {other} » (tls=required pour STARTTLS)"
                ));
            }
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("PARCOURS_SMTP_URL : port illisible dans {url}"))?,
            ),
            None => (hostport.to_owned(), if implicit { 465 } else { 25 }),
        };
        let from: Mailbox = c
            .smtp_from
            .parse()
            .map_err(|e| format!("PARCOURS_SMTP_FROM illisible ({}) : {e}", c.smtp_from))?;
        let tls = if implicit || starttls {
            let mut params = TlsParameters::builder(host.clone());
            if let Some(ca) = &c.smtp_ca {
                params = params
                    .certificate_store(lettre::transport::smtp::client::CertificateStore::None);
                for der in crate::pem::certificates("PARCOURS_SMTP_CA", ca)? {
                    let cert = Certificate::from_der(der.to_vec())
                        .map_err(|e| format!("PARCOURS_SMTP_CA : certificats illisibles ({e})"))?;
                    params = params.add_root_certificate(cert);
                }
            }
            match (&c.smtp_cert, &c.smtp_key) {
                (Some(cert), Some(key)) => {
                    params = params.identify_with(client_identity(cert, key)?);
                }
                (None, None) => {}
                _ => {
                    return Err(
                        "PARCOURS_SMTP_CERT et PARCOURS_SMTP_KEY vont ensemble (certificat et clé)"
                            .into(),
                    );
                }
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("TLS vers {host} : {e}"))?;
            if implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        } else {
            if c.smtp_cert.is_some() || c.smtp_ca.is_some() {
                return Err(
                    "PARCOURS_SMTP_CERT / PARCOURS_SMTP_CA sans TLS : ajoutez ?tls=required à PARCOURS_SMTP_URL"
                        .into(),
                );
            }
            Tls::None
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Some(Mailer { transport, from }))
    }

    /// Hands a message to the relay: a permanent refusal (5xx) is not retried.
    async fn send(&self, message: Message) -> Result<(), DeliveryError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Refused(format!("SMTP : {e}"))),
            Err(e) => Err(DeliveryError::Transient(format!("SMTP : {e}"))),
        }
    }

    /// The sender: an establishment's own address (its organisation file's
    /// `smtp_from`), else the instance's.
    fn sender(&self, from: Option<&str>) -> Result<Mailbox, DeliveryError> {
        match from {
            None => Ok(self.from.clone()),
            Some(f) => f.parse().map_err(|e| {
                DeliveryError::Refused(format!("adresse d'expédition illisible ({f}) : {e}"))
            }),
        }
    }

    /// Sends a notice from `from` (else the instance's sender): its text, and
    /// the iCalendar event it carries (after the text, from `BEGIN:VCALENDAR`)
    /// as a `text/calendar` attachment.
    pub async fn send_notice(
        &self,
        from: Option<&str>,
        to: &str,
        payload: &str,
    ) -> Result<(), DeliveryError> {
        let refused = |e: String| DeliveryError::Refused(e);
        let to: Mailbox = to
            .parse()
            .map_err(|e| refused(format!("adresse du patient illisible : {e}")))?;
        let (text, ics) = match payload.find("BEGIN:VCALENDAR") {
            Some(i) => (
                payload.get(..i).unwrap_or(payload).trim_end(),
                payload.get(i..),
            ),
            None => (payload, None),
        };
        let body = SinglePart::plain(format!(
            "{text}\n\n— Parcours. Ne répondez pas à ce message : votre espace Parcours garde vos rendez-vous et vos documents."
        ));
        let builder = Message::builder()
            .from(self.sender(from)?)
            .to(to)
            .subject("Parcours : un message de votre établissement de santé");
        let message = match ics {
            Some(ics) => {
                let calendar = ContentType::parse("text/calendar; method=PUBLISH; charset=utf-8")
                    .map_err(|e| refused(format!("type iCalendar : {e}")))?;
                builder.multipart(MultiPart::mixed().singlepart(body).singlepart(
                    Attachment::new("rendez-vous.ics".into()).body(ics.to_owned(), calendar),
                ))
            }
            None => builder.singlepart(body),
        }
        .map_err(|e| refused(format!("message : {e}")))?;
        self.send(message).await
    }

    /// Sends a document from `from` (else the instance's sender) the MSSanté way: subject `XDM/1.0/DDM`, the IHE XDM
    /// archive (`IHE_XDM.zip`) and a PDF rendition attached.
    pub async fn send_document(
        &self,
        from: Option<&str>,
        to: &str,
        title: &str,
        zip: Vec<u8>,
        pdf: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let refused = |e: String| DeliveryError::Refused(e);
        let to: Mailbox = to
            .parse()
            .map_err(|e| refused(format!("adresse du destinataire illisible : {e}")))?;
        let zip_type = ContentType::parse("application/zip").map_err(|e| refused(e.to_string()))?;
        let pdf_type = ContentType::parse("application/pdf").map_err(|e| refused(e.to_string()))?;
        let message = Message::builder()
            .from(self.sender(from)?)
            .to(to)
            .subject("XDM/1.0/DDM")
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(format!(
                        "{title}\n\nDocument joint au format IHE XDM (IHE_XDM.zip) et sa version PDF."
                    )))
                    .singlepart(Attachment::new("IHE_XDM.zip".into()).body(zip, zip_type))
                    .singlepart(Attachment::new("document.pdf".into()).body(pdf, pdf_type)),
            )
            .map_err(|e| refused(format!("message : {e}")))?;
        self.send(message).await
    }
}
