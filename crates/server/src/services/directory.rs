//! The directory of the platform: territories and establishments as pages
//! name them.

use domain::EstablishmentId;

use crate::services::ctx::Ctx;

/// An establishment's name (its id when it cannot be read).
pub async fn establishment_name(ctx: Ctx<'_>, id: EstablishmentId) -> String {
    ctx.store
        .establishment(id)
        .await
        .map(|e| e.name)
        .unwrap_or_else(|_| id.to_string())
}
