//! The intake's answers: an ACK or none, the ERR segments, and the log entry
//! of a message that changes nothing (AE, AR).

use hl7v2::Message;
use hl7v2::ack::{self, AckCode, AckError};
use store::hl7::{NewHl7Message, is_duplicate_message};

use crate::services::ctx::Ctx;

/// What the intake answers.
#[derive(Debug)]
pub enum Outcome {
    /// Send this ACK.
    Ack(String),
    /// Do not acknowledge (the store is unavailable): the sender will resend.
    NoAck,
}

pub(crate) use interop::pam::error_at as err;

pub(crate) fn ack_control_id() -> String {
    let u = uuid::Uuid::now_v7().simple().to_string();
    u.get(u.len() - 20..).unwrap_or(&u).to_owned()
}

/// Logs a message that changes nothing and returns its ACK (AE or AR).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn finish_without_effect(
    ctx: Ctx<'_>,
    m: Option<&Message>,
    code: AckCode,
    errors: &[AckError],
    mut log: NewHl7Message,
    ts: &str,
) -> Outcome {
    let ack_text = match m {
        Some(m) => ack::build(m, code, errors, &ack_control_id(), ts),
        None => ack::build_unreadable(&log.raw, code, errors, &ack_control_id(), ts),
    };
    log.status = match code {
        AckCode::Reject => "rejected".into(),
        AckCode::Accept => "accepted".into(),
        _ => "error".into(),
    };
    log.errors = errors
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    log.ack = ack_text.clone();
    match ctx.store.log_hl7_message(&log).await {
        Ok(_) => Outcome::Ack(ack_text),
        Err(e) if is_duplicate_message(&e) => match (
            &log.control_id,
            ctx.store
                .hl7_message_for(&log.sender, log.control_id.as_deref().unwrap_or(""))
                .await,
        ) {
            (Some(_), Ok(Some(first))) => Outcome::Ack(first.ack),
            _ => Outcome::NoAck,
        },
        Err(e) => {
            tracing::error!(error = %e, "hl7: logging a message failed");
            Outcome::NoAck
        }
    }
}
