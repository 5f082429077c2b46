//! Results back to the hospital: an ORU^R01 built from a report, written to the
//! outbox (delivered by `delivery`), never sent from the request path.

use interop::oru::{OruReport, build};
use store::outbox::NewMessage;

use crate::error::AppError;
use crate::outbound::ORU_TOPIC;
use crate::services::ctx::Ctx;

/// Enqueues the ORU for the configured destination; `Ok(false)` if the same report
/// (same control id) is already queued.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn enqueue(ctx: Ctx<'_>, report: &OruReport) -> Result<bool, AppError> {
    let Some(destination) = ctx.config.oru_destination.clone() else {
        return Err(AppError::Unprocessable(
            "not-supported",
            "aucune destination ORU configurée (PARCOURS_ORU_DESTINATION)".into(),
        ));
    };
    let payload = build(report).map_err(|e| AppError::Internal(anyhow::anyhow!("ORU: {e}")))?;
    let m = NewMessage {
        idempotency_key: format!("oru:{}", report.control_id),
        topic: ORU_TOPIC.into(),
        destination,
        payload,
        establishment: None,
    };
    Ok(ctx.store.enqueue(&m, ctx.now_ms()).await?)
}
