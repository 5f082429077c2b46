//! The outbox worker: claims due messages, delivers each (HL7 v2 over MLLP,
//! MHD submissions over HTTP, notifications) and records the outcome. AA/CA: delivered. AE/AR: the receiver refused the
//! content, retrying will not help: dead letter at once, with the receiver's
//! reason. Connection refused, timeout, no readable ACK: retry with exponential
//! backoff, dead letter after the policy's last attempt.

use std::time::Duration;

use hl7v2::mllp::{self, Frame};
use store::outbox::{OutboxMessage, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

pub use crate::outbound::{
    DeliveryError, MHD_TOPIC, MSS_TOPIC, NOTIFY_TOPIC, ORU_TOPIC, SIU_TOPIC,
};
use crate::state::AppState;

const LEASE_MS: i64 = 120_000;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one message over MLLP to `HOST:PORT` (or `mllp://HOST:PORT`), or
/// over TLS to `mllps://HOST:PORT` with `tls` (the receiver's CA, our client
/// certificate), and reads its ACK.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn send_mllp(
    destination: &str,
    payload: &[u8],
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<(), DeliveryError> {
    let t = |e: String| DeliveryError::Transient(e);
    if let Some(addr) = destination.strip_prefix("mllps://") {
        let Some(config) = tls else {
            return Err(t("MLLP/TLS non configuré".into()));
        };
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
        let name = rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| DeliveryError::Refused(format!("nom de serveur {host:?}: {e}")))?;
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| t(format!("connexion à {addr}: délai dépassé")))?
            .map_err(|e| t(format!("connexion à {addr}: {e}")))?;
        let stream = tokio::time::timeout(
            IO_TIMEOUT,
            tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| t(format!("TLS avec {addr}: délai dépassé")))?
        .map_err(|e| t(format!("TLS avec {addr}: {e}")))?;
        return exchange(stream, payload).await;
    }
    let addr = destination.strip_prefix("mllp://").unwrap_or(destination);
    let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| t(format!("connexion à {addr}: délai dépassé")))?
        .map_err(|e| t(format!("connexion à {addr}: {e}")))?;
    exchange(stream, payload).await
}

/// Writes one frame on `stream` and reads the ACK.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    payload: &[u8],
) -> Result<(), DeliveryError> {
    let t = |e: String| DeliveryError::Transient(e);
    stream
        .write_all(&mllp::frame(payload))
        .await
        .map_err(|e| t(format!("envoi: {e}")))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let ack = loop {
        if let Frame::Message { start, end, .. } = mllp::next_frame(&buf) {
            break buf.get(start..end).unwrap_or(&[]).to_vec();
        }
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| t("acquittement: délai dépassé".into()))?
            .map_err(|e| t(format!("lecture de l'acquittement: {e}")))?;
        if n == 0 {
            return Err(t("connexion fermée avant l'acquittement".into()));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if buf.len() > 1 << 20 {
            return Err(t("acquittement trop volumineux".into()));
        }
    };
    let m = hl7v2::Message::parse(&ack).map_err(|e| t(format!("acquittement illisible: {e}")))?;
    let code = m
        .get("MSA-1")
        .ok()
        .flatten()
        .map(|c| c.into_owned())
        .unwrap_or_default();
    match code.as_str() {
        "AA" | "CA" => Ok(()),
        "AE" | "AR" | "CE" | "CR" => {
            let why = m
                .get("ERR-8")
                .ok()
                .flatten()
                .or_else(|| m.get("MSA-3").ok().flatten())
                .map(|c| c.into_owned())
                .unwrap_or_default();
            Err(DeliveryError::Refused(format!("{code}: {why}")))
        }
        other => Err(t(format!("code d'acquittement inattendu {other:?}"))),
    }
}

fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(IO_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    })
}

/// Whom an MHD submission authenticates as (OAuth2 client credentials).
#[derive(Clone, PartialEq, Eq)]
struct MhdClient {
    token_url: String,
    client_id: String,
    secret: String,
}

/// The client of a document's establishment when its organisation file
/// names a token endpoint (the secret read from its file), else the
/// instance's; `None` when the recipient takes no token. A half-configured
/// establishment is said (and retried: the file may be fixed meanwhile).
async fn mhd_client(
    store: &store::Store,
    config: &crate::config::Config,
    establishment: Option<domain::EstablishmentId>,
) -> Result<Option<MhdClient>, DeliveryError> {
    let t = |e: String| DeliveryError::Transient(e);
    if let Some(e) = establishment {
        let settings = store
            .establishment_settings(e)
            .await
            .map_err(|e| t(format!("réglages de l'établissement : {e}")))?;
        let get = |name: &str| {
            settings
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(token_url) = get("mhd_token_url") {
            let (Some(client_id), Some(file)) =
                (get("mhd_client_id"), get("mhd_client_secret_file"))
            else {
                return Err(t(
                    "jeton MHD : mhd_client_id et mhd_client_secret_file manquent dans le fichier d'organisation".into(),
                ));
            };
            let secret = tokio::fs::read_to_string(&file)
                .await
                .map_err(|e| t(format!("jeton MHD : secret illisible ({file}) : {e}")))?
                .trim()
                .to_owned();
            return Ok(Some(MhdClient {
                token_url,
                client_id,
                secret,
            }));
        }
    }
    let c = config;
    Ok(
        match (
            c.mhd_token_url.as_deref(),
            c.mhd_client_id.as_deref(),
            c.mhd_client_secret.as_deref(),
        ) {
            (Some(url), Some(id), Some(secret)) => Some(MhdClient {
                token_url: url.to_owned(),
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            }),
            _ => None,
        },
    )
}

/// A bearer token for `client` (client credentials), kept per token
/// endpoint and client until a minute before it expires: getting one costs
/// the recipient a password hash, not something to pay once per document.
async fn mhd_token(
    tokens: &tokio::sync::Mutex<crate::state::MhdTokens>,
    client: &MhdClient,
) -> Result<String, DeliveryError> {
    let key = (client.token_url.clone(), client.client_id.clone());
    let mut cached = tokens.lock().await;
    if let Some((t, until)) = cached.get(&key)
        && std::time::Instant::now() < *until
    {
        return Ok(t.clone());
    }
    let (token, until) = fetch_mhd_token(client).await?;
    cached.insert(key, (token.clone(), until));
    Ok(token)
}

async fn fetch_mhd_token(
    client: &MhdClient,
) -> Result<(String, std::time::Instant), DeliveryError> {
    let t = |e: String| DeliveryError::Transient(e);
    let r = http()
        .post(&client.token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
        .send()
        .await
        .map_err(|e| t(format!("jeton MHD : {}", e.without_url())))?;
    if !r.status().is_success() {
        return Err(t(format!(
            "jeton MHD refusé : HTTP {}",
            r.status().as_u16()
        )));
    }
    let v: serde_json::Value = r
        .json()
        .await
        .map_err(|_| t("jeton MHD illisible".into()))?;
    let lifetime = interop::json_at(&v, &["expires_in"])
        .as_u64()
        .unwrap_or(300)
        .saturating_sub(60);
    interop::json_at(&v, &["access_token"])
        .as_str()
        .map(|s| {
            (
                s.to_owned(),
                std::time::Instant::now() + Duration::from_secs(lifetime),
            )
        })
        .ok_or_else(|| t("jeton MHD absent de la réponse".into()))
}

/// Sends an ITI-65 bundle to the MHD Document Recipient. 2xx: delivered;
/// 408, 429, 5xx, no answer: retry; any other 4xx: the recipient refused the
/// content (dead letter, with its OperationOutcome's diagnostics).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn send_mhd(state: &AppState, m: &OutboxMessage) -> Result<(), DeliveryError> {
    let req = http()
        .post(&m.destination)
        .header("content-type", "application/fhir+json")
        .header("accept", "application/fhir+json")
        .body(m.payload.clone());
    let r = send_as_client(
        req,
        &state.store,
        &state.config,
        &state.mhd_token,
        m.establishment(),
    )
    .await?;
    let status = r.status().as_u16();
    if r.status().is_success() {
        return Ok(());
    }
    if status == 401 {
        return Err(DeliveryError::Transient("HTTP 401 : jeton refusé".into()));
    }
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let why = interop::json_at(&body, &["issue", "0", "diagnostics"])
        .as_str()
        .map(|d| format!("HTTP {status} : {d}"))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if matches!(status, 408 | 429) || status >= 500 {
        Err(DeliveryError::Transient(why))
    } else {
        Err(DeliveryError::Refused(why))
    }
}

/// Sends `req` to an MHD actor as `establishment`'s client (its bearer token,
/// else the instance's, else none); a 401 drops the cached token, so that the
/// next call asks for a new one (it expired or was revoked).
async fn send_as_client(
    req: reqwest::RequestBuilder,
    store: &store::Store,
    config: &crate::config::Config,
    tokens: &tokio::sync::Mutex<crate::state::MhdTokens>,
    establishment: Option<domain::EstablishmentId>,
) -> Result<reqwest::Response, DeliveryError> {
    let client = mhd_client(store, config, establishment).await?;
    let req = match &client {
        Some(c) => req.bearer_auth(mhd_token(tokens, c).await?),
        None => req,
    };
    let r = req
        .send()
        .await
        .map_err(|e| DeliveryError::Transient(format!("MHD : {}", e.without_url())))?;
    if r.status().as_u16() == 401
        && let Some(c) = client
    {
        tokens.lock().await.remove(&(c.token_url, c.client_id));
    }
    Ok(r)
}

/// `GET url` at an MHD Document Responder (ITI-67 search, ITI-68 retrieve) as
/// `establishment`'s client (its token, else the instance's): the media type
/// and the body of a 2xx answer; the status said otherwise (a 401 drops the
/// cached token).
pub async fn mhd_get(
    store: &store::Store,
    config: &crate::config::Config,
    tokens: &tokio::sync::Mutex<crate::state::MhdTokens>,
    establishment: domain::EstablishmentId,
    url: &str,
) -> Result<(String, Vec<u8>), DeliveryError> {
    let req = http().get(url).header("accept", "application/fhir+json");
    let r = send_as_client(req, store, config, tokens, Some(establishment)).await?;
    let status = r.status().as_u16();
    if !r.status().is_success() {
        return Err(DeliveryError::Refused(format!("HTTP {status}")));
    }
    let media = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = r
        .bytes()
        .await
        .map_err(|e| DeliveryError::Transient(format!("MHD : {}", e.without_url())))?;
    Ok((media, body.to_vec()))
}

/// Records how a delivery went: delivered; refused by the receiver (retrying
/// will not help: dead letter at once, with its reason); or failed for now
/// (retried with backoff, dead letter after the policy's last attempt).
async fn record(
    state: &AppState,
    m: &OutboxMessage,
    sent: Result<(), DeliveryError>,
    now: i64,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    match sent {
        Ok(()) => state.store.outbox_delivered(&m.id, now).await,
        Err(DeliveryError::Refused(why)) => {
            tracing::warn!(id = %m.id, topic = %m.topic, "message refused by the receiver: dead letter");
            let once = RetryPolicy {
                max_attempts: 1,
                ..*policy
            };
            state
                .store
                .outbox_failed(&m.id, &why, now, &once)
                .await
                .map(|_| ())
        }
        Err(DeliveryError::Transient(why)) => {
            tracing::info!(id = %m.id, topic = %m.topic, "delivery failed, will retry");
            state
                .store
                .outbox_failed(&m.id, &why, now, policy)
                .await
                .map(|_| ())
        }
    }
}

/// Delivers one claimed message and records the outcome.
async fn deliver(
    state: &AppState,
    m: &OutboxMessage,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    let now = state.now_ms();
    let sent = if m.topic == MHD_TOPIC {
        send_mhd(state, m).await
    } else if m.topic == crate::services::subscriptions::TOPIC {
        send_subscription(state, m).await
    } else {
        send_mllp(
            &m.destination,
            m.payload.as_bytes(),
            state.mllp_client_tls.as_ref(),
        )
        .await
    };
    record(state, m, sent, now, policy).await
}

/// The sender address of an establishment's mail (its `smtp_from`), if it
/// has one.
async fn sender_of(
    state: &AppState,
    m: &OutboxMessage,
) -> Result<Option<String>, store::StoreError> {
    match m.establishment() {
        Some(e) => state.store.establishment_setting(e, "smtp_from").await,
        None => Ok(None),
    }
}

/// Delivers a notice: a patient's on the channel they chose
/// ([`notify_patient`]), a professional's (the doctor on call) to their
/// address only — it has no portal to wait on: without one it is retried,
/// then a dead letter the admin sees.
async fn notify(
    state: &AppState,
    m: &OutboxMessage,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    let patient = m
        .destination
        .strip_prefix("portail:")
        .and_then(|p| p.parse::<domain::PatientId>().ok());
    let professional = m
        .destination
        .strip_prefix("pro:")
        .and_then(|p| p.parse::<domain::UserId>().ok());
    if let Some(p) = patient {
        return notify_patient(state, m, p, policy).await;
    }
    if let Some(guest) = m.destination.strip_prefix("invite:") {
        return notify_guest(state, m, guest, policy).await;
    }
    let email = match (&state.mailer, professional) {
        (Some(_), Some(u)) => state.store.user_email(u).await?,
        _ => None,
    };
    let sent = match (&state.mailer, email) {
        (Some(mailer), Some(to)) => {
            let from = sender_of(state, m).await?;
            mailer.send_notice(from.as_deref(), &to, &m.payload).await
        }
        _ => Err(DeliveryError::Transient(
            "aucune adresse e-mail pour ce professionnel, ou messagerie non configurée".into(),
        )),
    };
    record(state, m, sent, state.now_ms(), policy).await
}

/// Sends a consultation guest their link: to the address or mobile number
/// the doctor gave (by mail or SMS); neither configured: retried, then a
/// dead letter.
async fn notify_guest(
    state: &AppState,
    m: &OutboxMessage,
    guest: &str,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    let contact = state.store.guest(guest).await?.contact.unwrap_or_default();
    let now = state.now_ms();
    let sent = match (&state.mailer, &state.sms) {
        (Some(mailer), _) if contact.contains('@') => {
            let from = sender_of(state, m).await?;
            mailer
                .send_notice(from.as_deref(), &contact, &m.payload)
                .await
        }
        (_, Some(sms)) if !contact.is_empty() && !contact.contains('@') => sms
            .submit(&contact, &m.payload)
            .await
            .map(drop)
            .map_err(DeliveryError::from),
        _ => Err(DeliveryError::Transient(
            "ni messagerie ni centre SMS pour envoyer l'invitation".into(),
        )),
    };
    record(state, m, sent, now, policy).await
}

/// Delivers a notice to patient `p` on the channel they chose when it is
/// open (`domain::notice::channel`): an SMS through the SMS centre (its
/// message id kept for the delivery receipt), an e-mail, or the portal
/// alone; how it left is recorded for their "Mes avis" page. The logs name
/// the message id only, never the text, number or address.
async fn notify_patient(
    state: &AppState,
    m: &OutboxMessage,
    p: domain::PatientId,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    use domain::notice::{Channel, Reach, channel};
    let chosen = state
        .store
        .notice_channel(p)
        .await?
        .and_then(|c| Channel::from_code(&c));
    let email = match &state.mailer {
        Some(_) => state.store.patient_email(p).await?,
        None => None,
    };
    let mobile = match &state.sms {
        Some(_) => state
            .store
            .demographics(p)
            .await?
            .telecoms
            .iter()
            .filter(|t| t.kind == domain::demographics::TelecomKind::Mobile)
            .find_map(|t| domain::notice::sms_number(&t.value)),
        None => None,
    };
    let reach = Reach {
        sms: mobile.is_some(),
        email: email.is_some(),
    };
    let now = state.now_ms();
    let sent = match (
        channel(chosen, reach),
        &state.sms,
        mobile,
        &state.mailer,
        email,
    ) {
        (Channel::Sms, Some(sms), Some(to), _, _) => match sms.submit(&to, &m.payload).await {
            Ok(id) => {
                state
                    .store
                    .record_notice_sent(&m.id, "sms", Some(&id), now)
                    .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
        (Channel::Email, _, _, Some(mailer), Some(to)) => {
            let from = sender_of(state, m).await?;
            let sent = mailer.send_notice(from.as_deref(), &to, &m.payload).await;
            if sent.is_ok() {
                state
                    .store
                    .record_notice_sent(&m.id, "email", None, now)
                    .await?;
            }
            sent
        }
        _ => {
            tracing::info!(id = %m.id, "notification left on the portal");
            state
                .store
                .record_notice_sent(&m.id, "portail", None, now)
                .await?;
            Ok(())
        }
    };
    record(state, m, sent, now, policy).await
}

/// Sends a document by secure messaging (the XDM archive and its PDF).
async fn send_document_mail(
    state: &AppState,
    m: &OutboxMessage,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap_or_default();
    let part = |k: &str| {
        interop::json_at(&v, &[k])
            .as_str()
            .and_then(|s| b64.decode(s).ok())
    };
    let sent = match (&state.mailer, part("zip"), part("pdf")) {
        (None, _, _) => Err(DeliveryError::Transient(
            "messagerie non configurée (PARCOURS_SMTP_URL)".into(),
        )),
        (Some(mailer), Some(zip), Some(pdf)) => {
            let title = interop::json_at(&v, &["title"])
                .as_str()
                .unwrap_or("Document");
            let from = sender_of(state, m).await?;
            mailer
                .send_document(from.as_deref(), &m.destination, title, zip, pdf)
                .await
        }
        _ => Err(DeliveryError::Refused("message illisible".into())),
    };
    record(state, m, sent, state.now_ms(), policy).await
}

/// Calls a rest-hook subscriber: the changed resource PUT to
/// `{endpoint}/{type}/{id}` when the subscription asked for the payload (read
/// as the owner would read it: the policy, the audit), else an empty POST to
/// the endpoint (FHIR R4). Every call is signed (`X-Parcours-Signature:
/// t=…,v1=` HMAC-SHA256 of `t.body` with the subscription's secret) and
/// names its subscription; the subscription keeps the last error.
async fn send_subscription(state: &AppState, m: &OutboxMessage) -> Result<(), DeliveryError> {
    use crate::services::subscriptions as subs;
    let refused = |why: &str| DeliveryError::Refused(why.to_owned());
    let n: subs::Notice =
        serde_json::from_str(&m.payload).map_err(|_| refused("notification illisible"))?;
    let id: domain::SubscriptionId = n
        .subscription
        .parse()
        .map_err(|_| refused("notification illisible"))?;
    let s = match state.store.subscription(id).await {
        Ok(s) => s,
        Err(store::StoreError::NotFound) => return Err(refused("abonnement supprimé")),
        Err(e) => return Err(DeliveryError::Transient(e.to_string())),
    };
    if !s.live(state.now_ms()) {
        return Err(refused("abonnement arrêté ou client désactivé"));
    }
    let endpoint = s.endpoint.clone().unwrap_or_default();
    let (req, body) = if s.payload.is_some() {
        let actor = subs::owner_actor(&s);
        let topic = domain::subscription::Topic::parse(&n.kind)
            .ok_or_else(|| refused("type de ressource inconnu"))?;
        let Some(read) = state.notified_resource else {
            return Err(DeliveryError::Transient(
                "lecture des ressources non branchée".into(),
            ));
        };
        let resource = match read(state, &actor, topic, &n.id).await {
            Ok(r) => r,
            Err(crate::error::AppError::NotFound(_) | crate::error::AppError::Forbidden(_)) => {
                return Err(refused(
                    "ressource introuvable ou plus lisible par le client",
                ));
            }
            Err(e) => return Err(DeliveryError::Transient(e.to_string())),
        };
        subs::audit_delivery(state.ctx(), &s, &n)
            .await
            .map_err(|e| DeliveryError::Transient(e.to_string()))?;
        let url = format!("{}/{}/{}", endpoint.trim_end_matches('/'), n.kind, n.id);
        let body = resource.to_string().into_bytes();
        (
            http()
                .put(url)
                .header("content-type", "application/fhir+json"),
            body,
        )
    } else {
        (http().post(&endpoint), Vec::new())
    };
    let t = state.now_ms() / 1000;
    let mut req = req
        .header("x-parcours-subscription", s.id.to_string())
        .header(
            "x-parcours-signature",
            format!("t={t},v1={}", crate::payment::sign(&s.secret, t, &body)),
        );
    for h in &s.headers {
        if let Some((k, v)) = h.split_once(':') {
            req = req.header(k.trim(), v.trim());
        }
    }
    let sent = match req.body(body).send().await {
        Err(e) => Err(DeliveryError::Transient(format!(
            "abonné injoignable : {}",
            e.without_url()
        ))),
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let code = r.status().as_u16();
            let why = format!("l'abonné a répondu HTTP {code}");
            if r.status().is_client_error() && code != 408 && code != 429 {
                Err(DeliveryError::Refused(why))
            } else {
                Err(DeliveryError::Transient(why))
            }
        }
    };
    let (status, error) = match &sent {
        Ok(()) => (domain::subscription::Status::Active, None),
        Err(DeliveryError::Refused(w) | DeliveryError::Transient(w)) => {
            (domain::subscription::Status::Error, Some(w.as_str()))
        }
    };
    // Written only when it changes (not once per delivery).
    let changed = s.status != status || s.error.as_deref() != error;
    if changed
        && s.status != domain::subscription::Status::Off
        && let Err(e) = state
            .store
            .set_subscription_status(s.id, status, error, state.now_ms())
            .await
    {
        tracing::error!(error = %e, "subscription status");
    }
    sent
}

/// One step: claims up to 10 due messages and delivers them; returns how many.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn try_execute_task(
    state: &AppState,
    policy: &RetryPolicy,
) -> Result<usize, store::StoreError> {
    let mut claimed = state
        .store
        .claim_outbox(ORU_TOPIC, state.now_ms(), LEASE_MS, 10)
        .await?;
    claimed.extend(
        state
            .store
            .claim_outbox(SIU_TOPIC, state.now_ms(), LEASE_MS, 10)
            .await?,
    );
    // HL7 in order, one after the other (a receiver applies them in sequence).
    for m in &claimed {
        deliver(state, m, policy).await?;
    }
    // Documents are independent of each other: up to 16 at once; so are
    // the subscribers' notifications.
    let mut documents = state
        .store
        .claim_outbox(MHD_TOPIC, state.now_ms(), LEASE_MS, 16)
        .await?;
    documents.extend(
        state
            .store
            .claim_outbox(
                crate::services::subscriptions::TOPIC,
                state.now_ms(),
                LEASE_MS,
                16,
            )
            .await?,
    );
    let claimed_len = claimed.len() + documents.len();
    let mut running = tokio::task::JoinSet::new();
    for m in documents {
        let (state, policy) = (state.clone(), *policy);
        running.spawn(async move { deliver(&state, &m, &policy).await });
    }
    while let Some(done) = running.join_next().await {
        match done {
            Ok(r) => r?,
            Err(e) => tracing::error!(error = %e, "document delivery task"),
        }
    }
    let mails = state
        .store
        .claim_outbox(MSS_TOPIC, state.now_ms(), LEASE_MS, 10)
        .await?;
    for m in &mails {
        send_document_mail(state, m, policy).await?;
    }
    let claimed_len = claimed_len + mails.len();
    let notices = state
        .store
        .claim_outbox(NOTIFY_TOPIC, state.now_ms(), LEASE_MS, 10)
        .await?;
    for m in &notices {
        notify(state, m, policy).await?;
    }
    Ok(claimed_len + notices.len())
}

/// Runs until `shutdown` turns true, looking for due messages every 200 ms.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let policy = RetryPolicy::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        loop {
            // Shutting down: the batch in hand is done, the rest waits for
            // the next start (or another node).
            if *shutdown.borrow() {
                return;
            }
            match try_execute_task(&state, &policy).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "outbox worker");
                    break;
                }
            }
        }
    }
}
