//! A fixed-window rate limiter per client address, for login and token attempts.
//! In memory: each app node limits on its own (good enough against guessing; the
//! per-account lockout in the store is what holds across nodes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Allows `per_window` attempts per address per `window_ms`.
#[derive(Debug)]
pub struct RateLimiter {
    per_window: u32,
    window_ms: i64,
    slots: Mutex<HashMap<IpAddr, (i64, u32)>>,
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

    /// Counts an attempt from `ip` at `now_ms`; `Err(retry_after_secs)` when over.
    pub fn check(&self, ip: IpAddr, now_ms: i64) -> Result<(), i64> {
        let Ok(mut slots) = self.slots.lock() else {
            return Ok(());
        };
        if slots.len() > 100_000 {
            slots.retain(|_, (start, _)| now_ms - *start < self.window_ms);
        }
        let slot = slots.entry(ip).or_insert((now_ms, 0));
        if now_ms - slot.0 >= self.window_ms {
            *slot = (now_ms, 0);
        }
        if slot.1 >= self.per_window {
            return Err(((slot.0 + self.window_ms - now_ms) / 1000).max(1));
        }
        slot.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_then_resets() {
        let l = RateLimiter::new(2, 60_000);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!(l.check(a, 0), Ok(()));
        assert_eq!(l.check(a, 1_000), Ok(()));
        assert_eq!(l.check(a, 2_000), Err(58));
        assert_eq!(l.check(b, 2_000), Ok(()), "other address");
        assert_eq!(l.check(a, 60_000), Ok(()), "new window");
    }
}
