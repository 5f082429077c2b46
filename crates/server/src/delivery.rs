//! The outbox worker for HL7 v2: claims due ORU messages, delivers each over MLLP
//! and records the outcome. AA/CA: delivered. AE/AR: the receiver refused the
//! content, retrying will not help: dead letter at once, with the receiver's
//! reason. Connection refused, timeout, no readable ACK: retry with exponential
//! backoff, dead letter after the policy's last attempt.

use std::time::Duration;

use hl7v2::mllp::{self, Frame};
use store::outbox::{OutboxMessage, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::state::AppState;

/// The outbox topic of ORU^R01 messages.
pub const ORU_TOPIC: &str = "hl7.oru";
/// The outbox topic of SIU messages (the clinic's agenda), sent like ORU.
pub const SIU_TOPIC: &str = "hl7.siu";
/// The outbox topic of notifications to patients (reminders). The default sender
/// only logs that a notification left (its id, never its text or recipient);
/// an SMS or mail sender plugs in here.
pub const NOTIFY_TOPIC: &str = "notify";
const LEASE_MS: i64 = 120_000;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a delivery did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth retrying later.
    Transient(String),
    /// The receiver answered AE or AR: do not retry.
    Refused(String),
}

/// Sends one message over MLLP to `HOST:PORT` and reads its ACK.
pub async fn send_mllp(destination: &str, payload: &[u8]) -> Result<(), DeliveryError> {
    let t = |e: String| DeliveryError::Transient(e);
    let addr = destination.strip_prefix("mllp://").unwrap_or(destination);
    let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| t(format!("connexion à {addr}: délai dépassé")))?
        .map_err(|e| t(format!("connexion à {addr}: {e}")))?;
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

/// Delivers one claimed message and records the outcome.
async fn deliver(
    state: &AppState,
    m: &OutboxMessage,
    policy: &RetryPolicy,
) -> Result<(), store::StoreError> {
    let now = state.now_ms();
    match send_mllp(&m.destination, m.payload.as_bytes()).await {
        Ok(()) => state.store.outbox_delivered(&m.id, now).await,
        Err(DeliveryError::Refused(why)) => {
            tracing::warn!(id = %m.id, topic = %m.topic, "HL7 message refused by the receiver: dead letter");
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
            tracing::info!(id = %m.id, topic = %m.topic, "HL7 delivery failed, will retry");
            state
                .store
                .outbox_failed(&m.id, &why, now, policy)
                .await
                .map(|_| ())
        }
    }
}

/// One step: claims up to 10 due messages and delivers them; returns how many.
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
    for m in &claimed {
        deliver(state, m, policy).await?;
    }
    let notices = state
        .store
        .claim_outbox(NOTIFY_TOPIC, state.now_ms(), LEASE_MS, 10)
        .await?;
    for m in &notices {
        tracing::info!(id = %m.id, "notification sent (log sender)");
        state.store.outbox_delivered(&m.id, state.now_ms()).await?;
    }
    Ok(claimed.len() + notices.len())
}

/// Runs until `shutdown` turns true, looking for due messages every 200 ms.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let policy = RetryPolicy::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        loop {
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
