//! A fixed-window rate limiter for login, second-factor and token attempts,
//! with one bucket per endpoint and key: the client address (behind a
//! reverse proxy, the address it forwards, see `addr::client`) and the account
//! aimed at. So one client flooding the token endpoint does not block logins,
//! a crowd behind one proxy does not share one bucket, and guessing one
//! account's password from many addresses is slowed too. The attempts are
//! counted in the database (`store::cluster`), so every node of a cluster
//! counts against the same buckets; the account is kept as its SHA-256.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use store::Store;

/// The endpoint an attempt is made at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The password step.
    Login,
    /// The TOTP step.
    Totp,
    /// The OAuth2 token endpoint.
    Token,
    /// "Mot de passe oublié" (each request may send a mail).
    PasswordReset,
    /// A sign-in through an identity provider started (each one is stored
    /// until it ends or expires).
    FederatedLogin,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::Totp => "totp",
            Endpoint::Token => "token",
            Endpoint::PasswordReset => "reset",
            Endpoint::FederatedLogin => "oidc",
        }
    }
}

/// Allows `per_window` attempts per endpoint and key per `window_ms`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_window: u32,
    window_ms: i64,
    store: Store,
}

impl RateLimiter {
    /// A limiter of `per_window` attempts per `window_ms`, counted in `store`.
    pub fn new(store: Store, per_window: u32, window_ms: i64) -> Self {
        Self {
            per_window,
            window_ms,
            store,
        }
    }

    /// The length of a window (what pruning keeps).
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    async fn count(&self, bucket: &str, now_ms: i64) -> Result<(), i64> {
        match self
            .store
            .count_attempt(bucket, now_ms, self.window_ms, self.per_window)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ms)) => Err((ms / 1000).max(1)),
            // The attempt itself needs the store and will fail the same way:
            // no lockout of everyone while the database is away.
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter: store unavailable");
                Ok(())
            }
        }
    }

    /// Counts an attempt at `endpoint` from `ip` at `now_ms`, and against
    /// `account` when one is named (case-insensitive); `Err(retry_after_secs)`
    /// when either is over.
    pub async fn check(
        &self,
        endpoint: Endpoint,
        ip: IpAddr,
        account: Option<&str>,
        now_ms: i64,
    ) -> Result<(), i64> {
        self.count(&format!("{}:ip:{ip}", endpoint.name()), now_ms)
            .await?;
        match account
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty())
        {
            Some(a) => {
                let h = hex::encode(Sha256::digest(a.as_bytes()));
                self.count(&format!("{}:account:{h}", endpoint.name()), now_ms)
                    .await
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn limiter(per_window: u32) -> RateLimiter {
        let store = Store::connect(&store::testing::fresh_sqlite_url())
            .await
            .unwrap();
        store.migrate(0).await.unwrap();
        RateLimiter::new(store, per_window, 60_000)
    }

    #[tokio::test]
    async fn window_limits_then_resets() {
        let l = limiter(2).await;
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!(l.check(Endpoint::Login, a, None, 0).await, Ok(()));
        assert_eq!(l.check(Endpoint::Login, a, None, 1_000).await, Ok(()));
        assert_eq!(l.check(Endpoint::Login, a, None, 2_000).await, Err(58));
        assert_eq!(
            l.check(Endpoint::Login, b, None, 2_000).await,
            Ok(()),
            "other address"
        );
        assert_eq!(
            l.check(Endpoint::Token, a, None, 2_000).await,
            Ok(()),
            "other endpoint"
        );
        assert_eq!(
            l.check(Endpoint::Login, a, None, 60_000).await,
            Ok(()),
            "new window"
        );
    }

    #[tokio::test]
    async fn accounts_are_limited_across_addresses() {
        let l = limiter(2).await;
        let ips: Vec<IpAddr> = (1..=4)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect();
        assert_eq!(
            l.check(Endpoint::Login, ips[0], Some("dr.martin"), 0).await,
            Ok(())
        );
        assert_eq!(
            l.check(Endpoint::Login, ips[1], Some("DR.MARTIN"), 0).await,
            Ok(())
        );
        assert!(
            l.check(Endpoint::Login, ips[2], Some("dr.martin"), 0)
                .await
                .is_err()
        );
        assert_eq!(
            l.check(Endpoint::Login, ips[3], Some("ide.petit"), 0).await,
            Ok(()),
            "other account"
        );
    }
}
