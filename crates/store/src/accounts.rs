//! The life of an account: territory administrators, e-mail addresses,
//! one-time links (first set-up, invitation, password or second-factor reset),
//! recovery codes, granting and revoking roles, disabling (which ends every
//! session in the same transaction), a user's own sessions, and API clients'
//! rotation and revocation. Tokens and codes are kept only as SHA-256 hashes.

use domain::org::Role;
use domain::{ApiClientId, EstablishmentId, TerritoryId, UserId};

use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::users::ApiClient;
use crate::{Result, Store, StoreError};

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// The first administrator's set-up (password and second factor).
    Setup,
    /// A professional's invitation (password and second factor).
    Invitation,
    /// A patient's portal invitation (password; the link proves the e-mail).
    PatientInvitation,
    /// Choose a new password (forgotten, or sent by an admin).
    PasswordReset,
    /// Enrol a new second factor (after an admin reset it).
    SecondFactorReset,
    /// Confirm the e-mail address a patient gave on the portal.
    EmailConfirmation,
}

impl LinkPurpose {
    const ALL: [LinkPurpose; 6] = [
        LinkPurpose::Setup,
        LinkPurpose::Invitation,
        LinkPurpose::PatientInvitation,
        LinkPurpose::PasswordReset,
        LinkPurpose::SecondFactorReset,
        LinkPurpose::EmailConfirmation,
    ];

    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            LinkPurpose::Setup => "setup",
            LinkPurpose::Invitation => "invitation",
            LinkPurpose::PatientInvitation => "patient_invitation",
            LinkPurpose::PasswordReset => "password_reset",
            LinkPurpose::SecondFactorReset => "totp_reset",
            LinkPurpose::EmailConfirmation => "email_confirmation",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// Whether following the link sets a password.
    pub fn sets_password(self) -> bool {
        !matches!(
            self,
            LinkPurpose::SecondFactorReset | LinkPurpose::EmailConfirmation
        )
    }

    /// Whether following the link enrols a second factor (professionals).
    pub fn enrols_second_factor(self) -> bool {
        matches!(
            self,
            LinkPurpose::Setup | LinkPurpose::Invitation | LinkPurpose::SecondFactorReset
        )
    }
}

/// A one-time link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Whose account.
    pub user: UserId,
    /// What for.
    pub purpose: LinkPurpose,
    /// Who made it (a username or `init`).
    pub created_by: String,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
    /// When it was used, if it was.
    pub used_at_ms: Option<i64>,
    /// The e-mail address following it confirms (a patient's), if any.
    pub email: Option<String>,
}

impl Link {
    /// Whether it can still be followed at `now_ms`.
    pub fn usable(&self, now_ms: i64) -> bool {
        self.used_at_ms.is_none() && now_ms < self.expires_at_ms
    }
}

/// What following a link writes, in one transaction.
pub struct LinkCompletion<'a> {
    /// The new password's argon2id hash, when the link sets one.
    pub password_hash: Option<&'a str>,
    /// The enrolled TOTP seed, when the link enrols one.
    pub totp_secret: Option<&'a str>,
    /// Hashes of fresh recovery codes (replacing the old ones), if any.
    pub recovery_code_hashes: &'a [String],
}

/// One of a user's open sessions, as shown on "my sessions".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// SHA-256 of its token (an opaque handle; never the token).
    pub token_hash: String,
    /// Opened at (Unix ms).
    pub created_at_ms: i64,
    /// Expires at (Unix ms).
    pub expires_at_ms: i64,
}

async fn end_sessions(tx: &mut Tx<'_>, user: UserId) -> std::result::Result<u64, sqlx::Error> {
    q("DELETE FROM sessions WHERE user_id = $1")
        .bind(user.to_string())
        .execute(tx)
        .await
}

impl Store {
    /// Makes `user` an administrator of `territory` (idempotent).
    pub async fn add_territory_admin(&self, user: UserId, territory: TerritoryId) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO territory_admins (user_id, territory_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user.to_string())
                .bind(territory.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The territories `user` administers.
    pub async fn administered_territories(&self, user: UserId) -> Result<Vec<TerritoryId>> {
        let ids: Vec<String> = on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            q("SELECT territory_id FROM territory_admins WHERE user_id = $1 ORDER BY territory_id")
                .bind(user.to_string())
                .fetch_column(&mut tx.as_tx())
                .await?
        });
        ids.iter().map(|s| parse_id(s)).collect()
    }

    /// A user's e-mail address, if known.
    pub async fn user_email(&self, user: UserId) -> Result<Option<String>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("SELECT email FROM users WHERE id = $1")
                .bind(user.to_string())
                .fetch_optional(&mut tx.as_tx())
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(row.get::<Option<String>>("email")?)
        })
    }

    /// Sets (or clears) a user's e-mail address.
    pub async fn set_user_email(&self, user: UserId, email: Option<&str>) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE users SET email = $1 WHERE id = $2")
                .bind(email)
                .bind(user.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// Gives `user` `role` in `establishment` (idempotent).
    pub async fn grant_role(
        &self,
        user: UserId,
        establishment: EstablishmentId,
        role: Role,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO user_roles (user_id, establishment_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(user.to_string())
                .bind(establishment.to_string())
                .bind(role.code())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes `role` in `establishment` from `user`; whether it was held.
    pub async fn revoke_role(
        &self,
        user: UserId,
        establishment: EstablishmentId,
        role: Role,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q(
                "DELETE FROM user_roles WHERE user_id = $1 AND establishment_id = $2 AND role = $3",
            )
            .bind(user.to_string())
            .bind(establishment.to_string())
            .bind(role.code())
            .execute(&mut tx.as_tx())
            .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// Disables (or re-enables) an account; disabling ends every session of it
    /// and every unused link in the same transaction. How many sessions ended.
    pub async fn set_account_enabled(&self, user: UserId, enabled: bool) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE users SET active = $1 WHERE id = $2")
                .bind(enabled)
                .bind(user.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let ended = if enabled {
                0
            } else {
                q("DELETE FROM invitations WHERE user_id = $1 AND used_at_ms IS NULL")
                    .bind(user.to_string())
                    .execute(&mut tx.as_tx())
                    .await?;
                end_sessions(&mut tx.as_tx(), user).await?
            };
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// Clears a user's second factor and recovery codes and ends their sessions
    /// (an admin's reset: the user enrols again through a link).
    pub async fn clear_second_factor(&self, user: UserId) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE id = $1")
                .bind(user.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            q("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            end_sessions(&mut tx.as_tx(), user).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores a one-time link (its token's hash); earlier unused links of the
    /// same user and purpose stop working.
    pub async fn create_link(&self, token_hash: &str, link: &Link, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("DELETE FROM invitations WHERE user_id = $1 AND purpose = $2 AND used_at_ms IS NULL")
                .bind(link.user.to_string())
                .bind(link.purpose.code())
                .execute(&mut tx.as_tx())
                .await?;
            q("INSERT INTO invitations (token_hash, user_id, purpose, created_by, created_at_ms, expires_at_ms, email) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(token_hash)
                .bind(link.user.to_string())
                .bind(link.purpose.code())
                .bind(&link.created_by)
                .bind(now_ms)
                .bind(link.expires_at_ms)
                .bind(link.email.as_deref())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Reads a link by its token's hash (used or not).
    pub async fn link(&self, token_hash: &str) -> Result<Option<Link>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("SELECT user_id, purpose, created_by, expires_at_ms, used_at_ms, email FROM invitations WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&mut tx.as_tx())
                .await?;
            let Some(r) = row else { return Ok(None) };
            let purpose: String = r.get("purpose")?;
            Ok(Some(Link {
                user: parse_id(&r.get::<String>("user_id")?)?,
                purpose: LinkPurpose::from_code(&purpose)
                    .ok_or_else(|| StoreError::Corrupt(format!("lien {purpose:?}")))?,
                created_by: r.get("created_by")?,
                expires_at_ms: r.get("expires_at_ms")?,
                used_at_ms: r.get("used_at_ms")?,
                email: r.get("email")?,
            }))
        })
    }

    /// Follows a link: marks it used (only if unused and unexpired at `now_ms`,
    /// else `StoreError::NotFound` and nothing written), writes the password,
    /// the second factor and recovery codes it brings and the e-mail address
    /// it confirms (a patient's, for notices), and — when a credential changed
    /// — ends the account's other sessions, in one transaction. The account's
    /// user.
    pub async fn complete_link(
        &self,
        token_hash: &str,
        done: &LinkCompletion<'_>,
        now_ms: i64,
    ) -> Result<UserId> {
        let sealed = done.totp_secret.map(|t| self.seal(t)).transpose()?;
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("UPDATE invitations SET used_at_ms = $1 WHERE token_hash = $2 AND used_at_ms IS NULL AND expires_at_ms > $1 RETURNING user_id, email")
                .bind(now_ms)
                .bind(token_hash)
                .fetch_optional(&mut tx.as_tx())
                .await?
                .ok_or(StoreError::NotFound)?;
            let user: String = row.get("user_id")?;
            let email: Option<String> = row.get("email")?;
            if let Some(email) = email {
                q(
                    "INSERT INTO patient_contacts (patient_id, email, updated_at_ms) \
                   SELECT patient_id, $2, $3 FROM users WHERE id = $1 AND patient_id IS NOT NULL \
                   ON CONFLICT (patient_id) DO UPDATE SET email = $2, updated_at_ms = $3",
                )
                .bind(&user)
                .bind(&email)
                .bind(now_ms)
                .execute(&mut tx.as_tx())
                .await?;
            }
            if let Some(h) = done.password_hash {
                q("UPDATE users SET password_hash = $1, failed_logins = 0, locked_until_ms = NULL WHERE id = $2")
                    .bind(h)
                    .bind(&user)
                    .execute(&mut tx.as_tx())
                    .await?;
            }
            if let Some(s) = &sealed {
                q("UPDATE users SET totp_secret = $1, totp_last_step = NULL WHERE id = $2")
                    .bind(s)
                    .bind(&user)
                    .execute(&mut tx.as_tx())
                    .await?;
            }
            if !done.recovery_code_hashes.is_empty() {
                q("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(&user)
                    .execute(&mut tx.as_tx())
                    .await?;
                for h in done.recovery_code_hashes {
                    q("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(&user)
                        .bind(h)
                        .execute(&mut tx.as_tx())
                        .await?;
                }
            }
            let id: UserId = parse_id(&user)?;
            if done.password_hash.is_some() || sealed.is_some() {
                end_sessions(&mut tx.as_tx(), id).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Spends a recovery code (its hash): whether it was unused, now used.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE recovery_codes SET used_at_ms = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at_ms IS NULL")
                .bind(now_ms)
                .bind(user.to_string())
                .bind(code_hash)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// How many unused recovery codes a user has left.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at_ms IS NULL")
                .bind(user.to_string())
                .fetch_one(&mut tx.as_tx())
                .await?;
            Ok(row.get::<i64>("n")?)
        })
    }

    /// A user's unexpired sessions, newest first.
    pub async fn sessions_of(&self, user: UserId, now_ms: i64) -> Result<Vec<SessionInfo>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = q("SELECT token_hash, created_at_ms, expires_at_ms FROM sessions WHERE user_id = $1 AND expires_at_ms > $2 AND mfa_done = $3 ORDER BY created_at_ms DESC")
                .bind(user.to_string())
                .bind(now_ms)
                .bind(true)
                .fetch_all(&mut tx.as_tx())
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(SessionInfo {
                        token_hash: r.get("token_hash")?,
                        created_at_ms: r.get("created_at_ms")?,
                        expires_at_ms: r.get("expires_at_ms")?,
                    })
                })
                .collect()
        })
    }

    /// Ends one of `user`'s sessions; whether it was theirs and open.
    pub async fn end_session_of(&self, user: UserId, token_hash: &str) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("DELETE FROM sessions WHERE user_id = $1 AND token_hash = $2")
                .bind(user.to_string())
                .bind(token_hash)
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// The API clients acting for one of `establishments`, by name.
    pub async fn clients_of(&self, establishments: &[EstablishmentId]) -> Result<Vec<ApiClient>> {
        let mut out = Vec::new();
        for e in establishments {
            let ids: Vec<String> = on_pool!(self, read, |pool| {
                let mut tx = pool.begin_write().await?;
                q("SELECT client_id FROM api_clients WHERE establishment_id = $1 ORDER BY name")
                    .bind(e.to_string())
                    .fetch_column(&mut tx.as_tx())
                    .await?
            });
            for id in ids {
                if let Some(c) = self.client_by_client_id(&id).await? {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// Replaces a client's secret (its hash) and revokes its tokens.
    pub async fn rotate_client_secret(&self, client: ApiClientId, secret_hash: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE api_clients SET secret_hash = $1 WHERE id = $2")
                .bind(secret_hash)
                .bind(client.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            q("DELETE FROM access_tokens WHERE client_pk = $1")
                .bind(client.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            tx.commit().await?;
            self.tokens.clear();
            Ok(())
        })
    }

    /// Revokes (or restores) a client; revoking deletes its tokens at once.
    pub async fn set_client_active(&self, client: ApiClientId, active: bool) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = q("UPDATE api_clients SET active = $1 WHERE id = $2")
                .bind(active)
                .bind(client.to_string())
                .execute(&mut tx.as_tx())
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if !active {
                q("DELETE FROM access_tokens WHERE client_pk = $1")
                    .bind(client.to_string())
                    .execute(&mut tx.as_tx())
                    .await?;
            }
            tx.commit().await?;
            self.tokens.clear();
            Ok(())
        })
    }
}
