//! SMS through an SMS centre over SMPP 3.4 (the protocol every SMS gateway
//! speaks): one transceiver session kept bound by a task — it submits the
//! messages the outbox hands it (`submit_sm`, delivery receipt asked for),
//! answers the centre's `enquire_link`, acknowledges the delivery receipts
//! it pushes (`deliver_sm`) and hands them over, and binds again after a
//! dropped connection. A submission the centre refuses is final; one whose
//! connection dropped before the answer is retried by the outbox.
//!
//! Hand-written PDUs (a dozen fields; no crate needed for four commands).

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const GENERIC_NACK: u32 = 0x8000_0000;
const BIND_TRANSCEIVER: u32 = 0x0000_0009;
const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
const SUBMIT_SM: u32 = 0x0000_0004;
const SUBMIT_SM_RESP: u32 = 0x8000_0004;
const DELIVER_SM: u32 = 0x0000_0005;
const DELIVER_SM_RESP: u32 = 0x8000_0005;
const UNBIND: u32 = 0x0000_0006;
const UNBIND_RESP: u32 = 0x8000_0006;
const ENQUIRE_LINK: u32 = 0x0000_0015;
const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
/// The `message_payload` optional parameter (texts over 254 octets).
const TLV_MESSAGE_PAYLOAD: u16 = 0x0424;
/// The largest PDU read (a receipt is a few hundred octets).
const MAX_PDU: usize = 64 * 1024;

/// Where and as whom to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmppConfig {
    /// `host:port`.
    pub addr: String,
    /// The account's system id.
    pub system_id: String,
    /// Its password.
    pub password: String,
    /// The sender shown on phones (alphanumeric, 11 characters at most).
    pub source: String,
}

impl SmppConfig {
    /// From `PARCOURS_SMPP_URL` (`smpp://host:port`) and the account's
    /// settings; `None` when no SMS centre is configured.
    pub fn from_config(c: &crate::config::Config) -> Result<Option<SmppConfig>, String> {
        let Some(url) = &c.smpp_url else {
            return Ok(None);
        };
        let addr = url
            .strip_prefix("smpp://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| {
                a.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            })
            .ok_or_else(|| format!("PARCOURS_SMPP_URL : smpp://hôte:port attendu, pas {url}"))?;
        let system_id = c.smpp_system_id.clone().ok_or(
            "PARCOURS_SMPP_SYSTEM_ID manque (l'identifiant du compte auprès du centre SMS)",
        )?;
        let source = c.smpp_source.clone();
        if source.is_empty() || source.chars().count() > 11 {
            return Err("PARCOURS_SMPP_SOURCE : de 1 à 11 caractères".into());
        }
        Ok(Some(SmppConfig {
            addr: addr.to_owned(),
            system_id,
            password: c.smpp_password.clone().unwrap_or_default(),
            source,
        }))
    }
}

/// One PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    /// command_id.
    pub command: u32,
    /// command_status.
    pub status: u32,
    /// sequence_number.
    pub sequence: u32,
    /// The body.
    pub body: Vec<u8>,
}

impl Pdu {
    /// The PDU on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let len = u32::try_from(16 + self.body.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(16 + self.body.len());
        for v in [len, self.command, self.status, self.sequence] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// A PDU from its 16-octet header and body.
    pub fn decode(header: [u8; 16], body: Vec<u8>) -> Pdu {
        let [_, _, _, _, c0, c1, c2, c3, s0, s1, s2, s3, q0, q1, q2, q3] = header;
        Pdu {
            command: u32::from_be_bytes([c0, c1, c2, c3]),
            status: u32::from_be_bytes([s0, s1, s2, s3]),
            sequence: u32::from_be_bytes([q0, q1, q2, q3]),
            body,
        }
    }
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// The body of a `bind_transceiver`.
fn bind_body(c: &SmppConfig) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, &c.system_id);
    cstr(&mut b, &c.password);
    cstr(&mut b, ""); // system_type
    b.push(0x34); // interface_version 3.4
    b.push(0); // addr_ton
    b.push(0); // addr_npi
    cstr(&mut b, ""); // address_range
    b
}

/// The body of a `submit_sm` of `text` to `destination` (international,
/// without `+`), asking for a delivery receipt. GSM-safe ASCII goes as the
/// default alphabet, anything else (accents) as UCS-2; over 254 octets the
/// text goes in `message_payload`.
pub fn submit_body(source: &str, destination: &str, text: &str) -> Vec<u8> {
    let (coding, octets): (u8, Vec<u8>) = if text.chars().all(|c| c.is_ascii() && c != '`') {
        (0x00, text.as_bytes().to_vec())
    } else {
        (
            0x08,
            text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        )
    };
    let alphanumeric = source.chars().any(|c| !c.is_ascii_digit());
    let mut b = Vec::new();
    cstr(&mut b, ""); // service_type
    b.push(if alphanumeric { 5 } else { 1 }); // source_addr_ton
    b.push(if alphanumeric { 0 } else { 1 }); // source_addr_npi
    cstr(&mut b, source);
    b.push(1); // dest_addr_ton: international
    b.push(1); // dest_addr_npi: E.164
    cstr(&mut b, destination);
    b.push(0); // esm_class
    b.push(0); // protocol_id
    b.push(0); // priority_flag
    cstr(&mut b, ""); // schedule_delivery_time
    cstr(&mut b, ""); // validity_period
    b.push(1); // registered_delivery: receipt asked for
    b.push(0); // replace_if_present_flag
    b.push(coding);
    b.push(0); // sm_default_msg_id
    if octets.len() <= 254 {
        b.push(u8::try_from(octets.len()).unwrap_or(0));
        b.extend_from_slice(&octets);
    } else {
        b.push(0);
        b.extend_from_slice(&TLV_MESSAGE_PAYLOAD.to_be_bytes());
        b.extend_from_slice(
            &u16::try_from(octets.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        b.extend_from_slice(&octets);
    }
    b
}

/// Reads C-octet strings and octets from a body.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn cstr(&mut self) -> Option<String> {
        let rest = self.b.get(self.at..)?;
        let end = rest.iter().position(|c| *c == 0)?;
        let s = String::from_utf8_lossy(rest.get(..end)?).into_owned();
        self.at += end + 1;
        Some(s)
    }

    fn octet(&mut self) -> Option<u8> {
        let o = *self.b.get(self.at)?;
        self.at += 1;
        Some(o)
    }

    fn octets(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
}

/// A delivery receipt the centre pushed: the message it is about and its
/// final state (`DELIVRD`, `UNDELIV`, `EXPIRED`, `REJECTD`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The centre's message id (as `submit_sm_resp` gave it).
    pub message_id: String,
    /// The state.
    pub state: String,
}

/// The receipt a `deliver_sm` body carries (`esm_class` bit 2 and the
/// customary `id:… stat:…` text), if it is one.
pub fn parse_receipt(body: &[u8]) -> Option<Receipt> {
    let mut r = Reader { b: body, at: 0 };
    r.cstr()?; // service_type
    r.octet()?;
    r.octet()?;
    r.cstr()?; // source_addr
    r.octet()?;
    r.octet()?;
    r.cstr()?; // destination_addr
    let esm_class = r.octet()?;
    r.octet()?; // protocol_id
    r.octet()?; // priority_flag
    r.cstr()?; // schedule_delivery_time
    r.cstr()?; // validity_period
    r.octet()?; // registered_delivery
    r.octet()?; // replace_if_present_flag
    r.octet()?; // data_coding
    r.octet()?; // sm_default_msg_id
    let len = usize::from(r.octet()?);
    let text = String::from_utf8_lossy(r.octets(len)?).into_owned();
    if esm_class & 0x04 == 0 {
        return None;
    }
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    Some(Receipt {
        message_id: field("id:")?,
        state: field("stat:")?,
    })
}

/// Why a submission failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// The centre refused it (its `command_status`): final.
    #[error("refusé par le centre SMS (statut SMPP 0x{0:08X})")]
    Refused(u32),
    /// No answer (connection lost, centre unreachable): to retry.
    #[error("centre SMS injoignable : {0}")]
    Transient(String),
}

impl From<SmsError> for crate::outbound::DeliveryError {
    /// A refusal is final (a dead letter), anything else is retried.
    fn from(e: SmsError) -> Self {
        match &e {
            SmsError::Refused(status) => crate::outbound::DeliveryError::Refused(format!(
                "SMS refusé par le centre (statut SMPP 0x{status:08X})"
            )),
            SmsError::Transient(_) => crate::outbound::DeliveryError::Transient(e.to_string()),
        }
    }
}

struct Request {
    destination: String,
    text: String,
    reply: oneshot::Sender<Result<String, SmsError>>,
}

/// The handle the outbox submits through.
#[derive(Clone, Debug)]
pub struct SmsClient {
    tx: mpsc::Sender<Request>,
}

/// How long a submission waits for the centre's answer.
const ANSWER: Duration = Duration::from_secs(10);

impl SmsClient {
    /// Submits `text` to `destination`; the centre's message id.
    pub async fn submit(&self, destination: &str, text: &str) -> Result<String, SmsError> {
        let (reply, answer) = oneshot::channel();
        let req = Request {
            destination: destination.to_owned(),
            text: text.to_owned(),
            reply,
        };
        self.tx
            .send(req)
            .await
            .map_err(|_| SmsError::Transient("session SMS arrêtée".into()))?;
        match tokio::time::timeout(ANSWER, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SmsError::Transient(
                "connexion perdue avant la réponse".into(),
            )),
            Err(_) => Err(SmsError::Transient("pas de réponse du centre SMS".into())),
        }
    }
}

/// Starts the session task; `receipts` gets each delivery receipt. It stops
/// (unbinding) when `shutdown` turns true.
pub fn spawn(
    config: SmppConfig,
    receipts: mpsc::UnboundedSender<Receipt>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> SmsClient {
    let (tx, mut rx) = mpsc::channel::<Request>(64);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match session(&config, &mut rx, &receipts, &mut shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "SMS centre session ended; binding again");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
    SmsClient { tx }
}

async fn write(w: &mut tokio::net::tcp::OwnedWriteHalf, p: &Pdu) -> std::io::Result<()> {
    w.write_all(&p.encode()).await
}

/// Reads PDUs into `out` until the connection ends.
async fn read_loop(mut r: tokio::net::tcp::OwnedReadHalf, out: mpsc::Sender<std::io::Result<Pdu>>) {
    loop {
        let mut header = [0u8; 16];
        let res = async {
            r.read_exact(&mut header).await?;
            let [l0, l1, l2, l3, ..] = header;
            let len = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3])).unwrap_or(usize::MAX);
            if !(16..=MAX_PDU).contains(&len) {
                return Err(std::io::Error::other("longueur de PDU invalide"));
            }
            let mut body = vec![0u8; len - 16];
            r.read_exact(&mut body).await?;
            Ok(Pdu::decode(header, body))
        }
        .await;
        let end = res.is_err();
        if out.send(res).await.is_err() || end {
            return;
        }
    }
}

/// One bound session, until it fails (`Err`) or the application stops (`Ok`).
async fn session(
    c: &SmppConfig,
    rx: &mut mpsc::Receiver<Request>,
    receipts: &mpsc::UnboundedSender<Receipt>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let stream = tokio::time::timeout(ANSWER, TcpStream::connect(&c.addr))
        .await
        .map_err(|_| "connexion trop longue".to_owned())?
        .map_err(|e| e.to_string())?;
    let (r, mut w) = stream.into_split();
    let (pdus_tx, mut pdus) = mpsc::channel(64);
    let reader = tokio::spawn(read_loop(r, pdus_tx));
    let mut seq: u32 = 1;
    let mut next = || {
        seq = if seq >= 0x7FFF_FFFF { 1 } else { seq + 1 };
        seq
    };
    let bind = Pdu {
        command: BIND_TRANSCEIVER,
        status: 0,
        sequence: next(),
        body: bind_body(c),
    };
    write(&mut w, &bind).await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(ANSWER, pdus.recv()).await {
        Ok(Some(Ok(p))) if p.command == BIND_TRANSCEIVER_RESP && p.status == 0 => {}
        Ok(Some(Ok(p))) if p.command == BIND_TRANSCEIVER_RESP => {
            reader.abort();
            return Err(format!(
                "connexion refusée par le centre SMS (statut 0x{:08X})",
                p.status
            ));
        }
        _ => {
            reader.abort();
            return Err("pas de réponse à la connexion".into());
        }
    }
    tracing::info!("bound to the SMS centre");
    let mut pending: HashMap<u32, oneshot::Sender<Result<String, SmsError>>> = HashMap::new();
    let mut link = tokio::time::interval(Duration::from_secs(30));
    link.tick().await;
    let result = loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { break Ok(()) };
                let p = Pdu {
                    command: SUBMIT_SM,
                    status: 0,
                    sequence: next(),
                    body: submit_body(&c.source, &req.destination, &req.text),
                };
                if let Err(e) = write(&mut w, &p).await {
                    let _ = req.reply.send(Err(SmsError::Transient(e.to_string())));
                    break Err(e.to_string());
                }
                pending.insert(p.sequence, req.reply);
            }
            pdu = pdus.recv() => {
                let p = match pdu {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => break Err(e.to_string()),
                    None => break Err("connexion fermée".into()),
                };
                match p.command {
                    SUBMIT_SM_RESP => {
                        let id = Reader { b: &p.body, at: 0 }.cstr().unwrap_or_default();
                        let answer = if p.status == 0 { Ok(id) } else { Err(SmsError::Refused(p.status)) };
                        if let Some(reply) = pending.remove(&p.sequence) {
                            let _ = reply.send(answer);
                        }
                    }
                    DELIVER_SM => {
                        let mut body = Vec::new();
                        cstr(&mut body, "");
                        let resp = Pdu { command: DELIVER_SM_RESP, status: 0, sequence: p.sequence, body };
                        if let Err(e) = write(&mut w, &resp).await {
                            break Err(e.to_string());
                        }
                        if let Some(r) = parse_receipt(&p.body) {
                            let _ = receipts.send(r);
                        }
                    }
                    ENQUIRE_LINK => {
                        let resp = Pdu { command: ENQUIRE_LINK_RESP, status: 0, sequence: p.sequence, body: vec![] };
                        if let Err(e) = write(&mut w, &resp).await {
                            break Err(e.to_string());
                        }
                    }
                    UNBIND => {
                        let resp = Pdu { command: UNBIND_RESP, status: 0, sequence: p.sequence, body: vec![] };
                        let _ = write(&mut w, &resp).await;
                        break Err("le centre SMS a fermé la session".into());
                    }
                    ENQUIRE_LINK_RESP | UNBIND_RESP | GENERIC_NACK => {
                        if let Some(reply) = pending.remove(&p.sequence) {
                            let _ = reply.send(Err(SmsError::Refused(p.status)));
                        }
                    }
                    other => {
                        // Not ours to handle: say so, as the protocol asks.
                        let nack = Pdu { command: GENERIC_NACK, status: 0x0000_0003, sequence: p.sequence, body: vec![] };
                        tracing::debug!(command = other, "SMPP command not handled");
                        if let Err(e) = write(&mut w, &nack).await {
                            break Err(e.to_string());
                        }
                    }
                }
            }
            _ = link.tick() => {
                let p = Pdu { command: ENQUIRE_LINK, status: 0, sequence: next(), body: vec![] };
                if let Err(e) = write(&mut w, &p).await {
                    break Err(e.to_string());
                }
            }
            _ = shutdown.changed() => {
                let p = Pdu { command: UNBIND, status: 0, sequence: next(), body: vec![] };
                let _ = write(&mut w, &p).await;
                break Ok(());
            }
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(SmsError::Transient(
            "connexion perdue avant la réponse".into(),
        )));
    }
    reader.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_is_encoded_as_the_protocol_says() {
        let b = submit_body("Parcours", "33612345678", "Rappel : RDV");
        let mut r = Reader { b: &b, at: 0 };
        assert_eq!(r.cstr().as_deref(), Some(""));
        assert_eq!(
            (r.octet(), r.octet()),
            (Some(5), Some(0)),
            "alphanumeric sender"
        );
        assert_eq!(r.cstr().as_deref(), Some("Parcours"));
        assert_eq!((r.octet(), r.octet()), (Some(1), Some(1)));
        assert_eq!(r.cstr().as_deref(), Some("33612345678"));
        for _ in 0..3 {
            r.octet();
        }
        r.cstr();
        r.cstr();
        assert_eq!(r.octet(), Some(1), "receipt asked for");
        r.octet();
        assert_eq!(r.octet(), Some(0), "default alphabet");
        r.octet();
        assert_eq!(r.octet(), Some(12));
        assert_eq!(r.octets(12), Some(&b"Rappel : RDV"[..]));
        // Accents go as UCS-2.
        let b = submit_body("Parcours", "33612345678", "é");
        assert_eq!(&b[b.len() - 5..], &[0x08, 0x00, 0x02, 0x00, 0xE9]);
        // Long texts in message_payload.
        let long = "a".repeat(300);
        let b = submit_body("0600000000", "33612345678", &long);
        let at = b.len() - 300 - 5;
        assert_eq!(&b[at..at + 5], &[0, 0x04, 0x24, 0x01, 0x2C]);
    }

    #[test]
    fn a_pdu_round_trips_and_a_receipt_is_read() {
        let p = Pdu {
            command: SUBMIT_SM_RESP,
            status: 0x0B,
            sequence: 7,
            body: b"abc\0".to_vec(),
        };
        let wire = p.encode();
        assert_eq!(&wire[..4], &20u32.to_be_bytes());
        let mut h = [0u8; 16];
        h.copy_from_slice(&wire[..16]);
        assert_eq!(Pdu::decode(h, wire[16..].to_vec()), p);
        let text = b"id:42 sub:001 dlvrd:001 submit date:2612041030 done date:2612041031 stat:DELIVRD err:000 text:";
        let mut body = Vec::new();
        cstr(&mut body, "");
        body.extend([1, 1]);
        cstr(&mut body, "33612345678");
        body.extend([5, 0]);
        cstr(&mut body, "Parcours");
        body.extend([0x04, 0, 0]);
        cstr(&mut body, "");
        cstr(&mut body, "");
        body.extend([0, 0, 0, 0]);
        body.push(u8::try_from(text.len()).unwrap());
        body.extend_from_slice(text);
        assert_eq!(
            parse_receipt(&body),
            Some(Receipt {
                message_id: "42".into(),
                state: "DELIVRD".into()
            })
        );
        // The same text without the receipt flag is a message, not a receipt.
        let at = body.iter().position(|b| *b == 0x04).unwrap();
        body[at] = 0;
        assert_eq!(parse_receipt(&body), None);
        assert_eq!(parse_receipt(b"\0\x01"), None, "truncated");
    }
}
