//! Whether this node can serve: the store answers.

use crate::services::ctx::Ctx;

/// `Ok` when the store answers a query; the reason (logged, never shown) otherwise.
pub async fn ready(ctx: Ctx<'_>) -> Result<(), store::StoreError> {
    ctx.store.ping().await
}
