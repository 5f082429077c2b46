//! OAuth2 client credentials: a machine client proves its secret (checked
//! with the same cost whether the client exists or not) and gets a bearer
//! token for the FHIR API.

use crate::auth::{dummy_hash, random_token, token_hash, verify_secret};
use crate::services::ctx::Ctx;

/// Why no token was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Unknown client, wrong secret or disabled client (one answer for all).
    InvalidClient,
    /// The store failed.
    Unavailable,
}

/// A token issued: the bearer token and its life in seconds.
#[derive(Debug)]
pub struct Issued {
    /// The token (only its hash is stored).
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// Issues a token to client `client_id` if `secret` is its secret.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn issue(ctx: Ctx<'_>, client_id: &str, secret: String) -> Result<Issued, Refused> {
    let client = ctx
        .store
        .client_by_client_id(client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "token: store error");
            Refused::Unavailable
        })?;
    let hash = client
        .as_ref()
        .map(|c| c.secret_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = verify_secret(hash, secret).await;
    let client = match client {
        Some(c) if ok && c.active => c,
        _ => return Err(Refused::InvalidClient),
    };
    let token = random_token();
    let now = ctx.now_ms();
    let ttl = ctx.config.token_ttl_seconds;
    ctx.store
        .create_access_token(&token_hash(&token), client.id, now, now + ttl * 1000)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "token: store error");
            Refused::Unavailable
        })?;
    Ok(Issued {
        token,
        expires_in: ttl,
    })
}
