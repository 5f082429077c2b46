//! A fixed-window rate limiter for login, second-factor and token attempts,
//! with one bucket per endpoint and key: the client address (behind a
//! reverse proxy, the address it forwards, see `addr::client`) and the account
//! aimed at. So one client flooding the token endpoint does not block logins,
//! a crowd behind one proxy does not share one bucket, and guessing one
//! account's password from many addresses is slowed too. In memory: each app
//! node limits on its own (the per-account lockout in the store is what holds
//! across nodes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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

/// What an attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Account(String),
}

/// Allows `per_window` attempts per endpoint and key per `window_ms`.
#[derive(Debug)]
pub struct RateLimiter {
    per_window: u32,
    window_ms: i64,
    slots: Mutex<HashMap<(Endpoint, Key), (i64, u32)>>,
}

impl RateLimiter {
    /// A limiter of `per_window` attempts per `window_ms`.
    pub fn new(per_window: u32, window_ms: i64) -> Self {
        Self {
            per_window,
            window_ms,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, endpoint: Endpoint, key: Key, now_ms: i64) -> Result<(), i64> {
        let Ok(mut slots) = self.slots.lock() else {
            return Ok(());
        };
        if slots.len() > 100_000 {
            slots.retain(|_, (start, _)| now_ms - *start < self.window_ms);
        }
        let slot = slots.entry((endpoint, key)).or_insert((now_ms, 0));
        if now_ms - slot.0 >= self.window_ms {
            *slot = (now_ms, 0);
        }
        if slot.1 >= self.per_window {
            return Err(((slot.0 + self.window_ms - now_ms) / 1000).max(1));
        }
        slot.1 += 1;
        Ok(())
    }

    /// Counts an attempt at `endpoint` from `ip` at `now_ms`, and against
    /// `account` when one is named (case-insensitive); `Err(retry_after_secs)`
    /// when either is over.
    pub fn check(
        &self,
        endpoint: Endpoint,
        ip: IpAddr,
        account: Option<&str>,
        now_ms: i64,
    ) -> Result<(), i64> {
        self.count(endpoint, Key::Address(ip), now_ms)?;
        match account
            .map(|a| a.trim().to_lowercase())
            .filter(|a| !a.is_empty())
        {
            Some(a) => self.count(endpoint, Key::Account(a), now_ms),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn window_limits_then_resets() {
        let l = RateLimiter::new(2, 60_000);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!(l.check(Endpoint::Login, a, None, 0), Ok(()));
        assert_eq!(l.check(Endpoint::Login, a, None, 1_000), Ok(()));
        assert_eq!(l.check(Endpoint::Login, a, None, 2_000), Err(58));
        assert_eq!(
            l.check(Endpoint::Login, b, None, 2_000),
            Ok(()),
            "other address"
        );
        assert_eq!(
            l.check(Endpoint::Token, a, None, 2_000),
            Ok(()),
            "other endpoint"
        );
        assert_eq!(
            l.check(Endpoint::Login, a, None, 60_000),
            Ok(()),
            "new window"
        );
    }

    #[test]
    fn accounts_are_limited_across_addresses() {
        let l = RateLimiter::new(2, 60_000);
        let ips: Vec<IpAddr> = (1..=4)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect();
        assert_eq!(
            l.check(Endpoint::Login, ips[0], Some("dr.martin"), 0),
            Ok(())
        );
        assert_eq!(
            l.check(Endpoint::Login, ips[1], Some("DR.MARTIN"), 0),
            Ok(())
        );
        assert!(
            l.check(Endpoint::Login, ips[2], Some("dr.martin"), 0)
                .is_err()
        );
        assert_eq!(
            l.check(Endpoint::Login, ips[3], Some("ide.petit"), 0),
            Ok(()),
            "other account"
        );
    }
}
