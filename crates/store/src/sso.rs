//! Sign-in through OpenID Connect providers: logins under way (state, nonce,
//! PKCE verifier, bound to a browser, taken once), provider subjects linked to
//! accounts, and the ID token a session was opened with (for the provider's
//! logout). Tokens and states are kept as SHA-256 where they are credentials.

use domain::UserId;

use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, q};
use crate::{Result, Store, StoreError};

/// A login under way, as `begin` stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 of the cookie of the browser that started it.
    pub browser_hash: String,
    /// Which provider.
    pub provider: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The signed-in account asking to link the provider's identity to
    /// itself (rather than to sign in).
    pub link_user: Option<UserId>,
    /// Until when (Unix ms).
    pub expires_at_ms: i64,
}

impl Store {
    /// Records a login under way, keyed by its state's hash.
    pub async fn begin_oidc_login(&self, state_hash: &str, l: &PendingLogin) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO oidc_logins (state_hash, browser_hash, provider, nonce, verifier, expires_at_ms, link_user) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(state_hash)
                .bind(&l.browser_hash)
                .bind(&l.provider)
                .bind(&l.nonce)
                .bind(&l.verifier)
                .bind(l.expires_at_ms)
                .bind(l.link_user.map(|u| u.to_string()))
                .execute(&mut tx.as_tx())
                .await?;
            // Abandoned logins go with the next one.
            q("DELETE FROM oidc_logins WHERE expires_at_ms <= $1")
                .bind(l.expires_at_ms - 3_600_000)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes a login under way (once): `None` when unknown, used or expired
    /// at `now_ms`.
    pub async fn take_oidc_login(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<PendingLogin>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING browser_hash, provider, nonce, verifier, expires_at_ms, link_user")
                .bind(state_hash)
                .fetch_optional(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            let Some(r) = row else { return Ok(None) };
            let l = PendingLogin {
                browser_hash: r.get("browser_hash")?,
                provider: r.get("provider")?,
                nonce: r.get("nonce")?,
                verifier: r.get("verifier")?,
                link_user: r
                    .get::<Option<String>>("link_user")?
                    .as_deref()
                    .map(parse_id)
                    .transpose()?,
                expires_at_ms: r.get("expires_at_ms")?,
            };
            Ok((now_ms < l.expires_at_ms).then_some(l))
        })
    }

    /// The account a provider's subject is linked to, if any.
    pub async fn oidc_identity(&self, provider: &str, subject: &str) -> Result<Option<UserId>> {
        let id: Option<String> = on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            q("SELECT user_id FROM oidc_identities WHERE provider = $1 AND subject = $2")
                .bind(provider)
                .bind(subject)
                .fetch_column(&mut tx.as_tx())
                .await?
                .into_iter()
                .next()
        });
        id.as_deref().map(parse_id).transpose()
    }

    /// Links a provider's subject to `user` (again: nothing to do); a subject
    /// already linked to another account is refused (`StoreError::Refused`,
    /// nothing changed). One insert decides, so two links at once cannot both win.
    pub async fn link_oidc_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        created_by: &str,
        now_ms: i64,
    ) -> Result<()> {
        let inserted = on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("INSERT INTO oidc_identities (provider, subject, user_id, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(provider)
                .bind(subject)
                .bind(user.to_string())
                .bind(created_by)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            n == 1
        });
        if inserted || self.oidc_identity(provider, subject).await? == Some(user) {
            Ok(())
        } else {
            Err(StoreError::Refused(
                "cette identité est déjà liée à un autre compte".into(),
            ))
        }
    }

    /// Remembers the ID token a session was opened with.
    pub async fn set_oidc_session(
        &self,
        session_hash: &str,
        provider: &str,
        id_token: &str,
        expires_at_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO oidc_sessions (session_hash, provider, id_token, expires_at_ms) VALUES ($1, $2, $3, $4)")
                .bind(session_hash)
                .bind(provider)
                .bind(id_token)
                .bind(expires_at_ms)
                .execute(&mut tx.as_tx())
                .await?;
            q("DELETE FROM oidc_sessions WHERE expires_at_ms <= $1")
                .bind(expires_at_ms - 30 * 24 * 3_600_000)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes (once) the provider and ID token of a session opened by OIDC.
    pub async fn take_oidc_session(&self, session_hash: &str) -> Result<Option<(String, String)>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row =
                q("DELETE FROM oidc_sessions WHERE session_hash = $1 RETURNING provider, id_token")
                    .bind(session_hash)
                    .fetch_optional(&mut tx.as_tx())
                    .await?;
            tx.commit().await?;
            match row {
                Some(r) => Ok(Some((r.get("provider")?, r.get("id_token")?))),
                None => Ok(None),
            }
        })
    }

    /// The active professional whose RPPS is `rpps`, if exactly one.
    pub async fn professional_by_rpps(&self, rpps: &str) -> Result<Option<UserId>> {
        let ids: Vec<String> = on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            q("SELECT id FROM users WHERE rpps = $1 AND kind = 'professional' AND active = $2")
                .bind(rpps)
                .bind(true)
                .fetch_column(&mut tx.as_tx())
                .await?
        });
        match ids.as_slice() {
            [one] => Ok(Some(parse_id(one)?)),
            _ => Ok(None),
        }
    }
}

/// How an API client proves itself with a signed assertion, and what it may
/// be granted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientKeys {
    /// Its public keys (a JWKS document), if registered.
    pub jwks: Option<String>,
    /// Where to fetch them, if not registered.
    pub jwks_url: Option<String>,
    /// The system scopes it may be granted (space-separated); `None`: not
    /// narrowed beyond the establishment policy.
    pub scopes: Option<String>,
}

impl Store {
    /// Sets an API client's keys and allowed scopes.
    pub async fn set_client_keys(&self, client: domain::ApiClientId, k: &ClientKeys) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE api_clients SET jwks = $1, jwks_url = $2, scopes = $3 WHERE id = $4")
                .bind(k.jwks.as_deref())
                .bind(k.jwks_url.as_deref())
                .bind(k.scopes.as_deref())
                .bind(client.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// An API client's keys and allowed scopes.
    pub async fn client_keys(&self, client: domain::ApiClientId) -> Result<ClientKeys> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = q("SELECT jwks, jwks_url, scopes FROM api_clients WHERE id = $1")
                .bind(client.to_string())
                .fetch_optional(&mut tx.as_tx())
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(ClientKeys {
                jwks: r.get("jwks")?,
                jwks_url: r.get("jwks_url")?,
                scopes: r.get("scopes")?,
            })
        })
    }

    /// Records a client assertion's `jti` until it expires: `false` when the
    /// client used it already (a replay). Expired ones are forgotten.
    pub async fn use_client_assertion(
        &self,
        client: domain::ApiClientId,
        jti: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("DELETE FROM client_assertions WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            let n = q("INSERT INTO client_assertions (client_pk, jti, expires_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(client.to_string())
                .bind(jti)
                .bind(expires_at_ms)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}
