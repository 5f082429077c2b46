//! Users (professionals and patients' portal accounts), their roles per
//! establishment, login sessions, lockout counters, API clients and their tokens.
//! Secrets are stored only as hashes (argon2id for passwords and client secrets,
//! SHA-256 for random session and access tokens).

use domain::org::Role;
use domain::policy::Grant;
use domain::{ApiClientId, EstablishmentId, PatientId, TerritoryId, UserId};

use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

/// Professional or patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A professional: roles per establishment, TOTP mandatory.
    Professional,
    /// A patient's portal account, bound to one record.
    Patient,
}

impl UserKind {
    fn code(self) -> &'static str {
        match self {
            UserKind::Professional => "professional",
            UserKind::Patient => "patient",
        }
    }
}

/// A user as stored (the TOTP seed opened; `Debug` shows neither it nor the
/// password hash).
#[derive(Clone)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Kind.
    pub kind: UserKind,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Base32 TOTP secret, once enrolled.
    pub totp_secret: Option<String>,
    /// RPPS number (doctors, nurses).
    pub rpps: Option<String>,
    /// Profession label (médecin anesthésiste, IDE...).
    pub profession: Option<String>,
    /// The patient record of a portal account.
    pub patient: Option<PatientId>,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked until this time (Unix ms), if locked.
    pub locked_until_ms: Option<i64>,
    /// Whether the account may log in.
    pub active: bool,
}

/// A user to create, with roles (`Debug` redacts the secrets).
#[derive(Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Kind.
    pub kind: UserKind,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Base32 TOTP secret.
    pub totp_secret: Option<String>,
    /// RPPS.
    pub rpps: Option<String>,
    /// Profession label.
    pub profession: Option<String>,
    /// Portal account's patient.
    pub patient: Option<PatientId>,
    /// Roles.
    pub roles: Vec<(EstablishmentId, Role)>,
}

const REDACTED: &str = "<masqué>";

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("kind", &self.kind)
            .field("password_hash", &REDACTED)
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| REDACTED))
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("kind", &self.kind)
            .field("password_hash", &REDACTED)
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| REDACTED))
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("secret_hash", &REDACTED)
            .field("establishment", &self.establishment)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token_hash", &REDACTED)
            .field("user", &self.user)
            .field("csrf_token", &REDACTED)
            .field("mfa_done", &self.mfa_done)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

db_row! {
    struct UserRow {
        id: String,
        username: String,
        display_name: String,
        kind: String,
        password_hash: String,
        totp_secret: Option<String>,
        rpps: Option<String>,
        profession: Option<String>,
        patient_id: Option<String>,
        failed_logins: i64,
        locked_until_ms: Option<i64>,
        active: bool,
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self> {
        Ok(User {
            id: parse_id(&r.id)?,
            username: r.username,
            display_name: r.display_name,
            kind: match r.kind.as_str() {
                "patient" => UserKind::Patient,
                "professional" => UserKind::Professional,
                other => return Err(StoreError::Corrupt(format!("type d'utilisateur {other:?}"))),
            },
            password_hash: r.password_hash,
            totp_secret: r.totp_secret,
            rpps: r.rpps,
            profession: r.profession,
            patient: r.patient_id.as_deref().map(parse_id).transpose()?,
            failed_logins: r.failed_logins,
            locked_until_ms: r.locked_until_ms,
            active: r.active,
        })
    }
}

db_row! { struct GrantRow { establishment_id: String, territory_id: String, role: String } }

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self> {
        Ok(Grant {
            establishment: parse_id(&r.establishment_id)?,
            territory: parse_id(&r.territory_id)?,
            role: Role::from_code(&r.role)
                .ok_or_else(|| StoreError::Corrupt(format!("rôle {:?}", r.role)))?,
        })
    }
}

/// A login session (the cookie holds the token; the store only its hash).
/// `Debug` shows neither the hash nor the CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Who.
    pub user: UserId,
    /// Synchroniser token for forms.
    pub csrf_token: String,
    /// Whether the second factor was given.
    pub mfa_done: bool,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
}

db_row! {
    struct SessionRow { token_hash: String, user_id: String, csrf_token: String, mfa_done: bool, expires_at_ms: i64 }
}

/// An OAuth2 client (client credentials), bound to one establishment and role.
/// `Debug` does not show the secret's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiClient {
    /// Internal id.
    pub id: ApiClientId,
    /// Public client_id.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Argon2id hash of the secret.
    pub secret_hash: String,
    /// Establishment it acts for.
    pub establishment: EstablishmentId,
    /// Its territory.
    pub territory: TerritoryId,
    /// Role it acts with.
    pub role: Role,
    /// Whether it may get tokens.
    pub active: bool,
}

db_row! {
    struct ClientRow {
        id: String,
        client_id: String,
        name: String,
        secret_hash: String,
        establishment_id: String,
        territory_id: String,
        role: String,
        active: bool,
    }
}

impl TryFrom<ClientRow> for ApiClient {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self> {
        Ok(ApiClient {
            id: parse_id(&r.id)?,
            client_id: r.client_id,
            name: r.name,
            secret_hash: r.secret_hash,
            establishment: parse_id(&r.establishment_id)?,
            territory: parse_id(&r.territory_id)?,
            role: Role::from_code(&r.role)
                .ok_or_else(|| StoreError::Corrupt(format!("rôle {:?}", r.role)))?,
            active: r.active,
        })
    }
}

const USER_COLUMNS: &str = "id, username, display_name, kind, password_hash, totp_secret, rpps, profession, patient_id, failed_logins, locked_until_ms, active";
macro_rules! client_columns {
    () => {
        "SELECT c.id, c.client_id, c.name, c.secret_hash, c.establishment_id, e.territory_id, c.role, c.active"
    };
}
const CLIENT_COLUMNS: &str = client_columns!();
const CLIENT_SELECT: &str = concat!(
    client_columns!(),
    " FROM api_clients c JOIN establishments e ON e.id = c.establishment_id"
);

fn first<T>(v: Vec<T>) -> Option<T> {
    v.into_iter().next()
}

impl Store {
    /// Seals a secret for storage with the key ring, when one is loaded.
    pub(crate) fn seal(&self, plain: &str) -> Result<String> {
        match self.key_ring() {
            Some(ring) => ring
                .seal(plain)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(plain.to_owned()),
        }
    }

    /// Opens a stored secret (a sealed one needs the key ring).
    pub(crate) fn open(&self, stored: &str) -> Result<String> {
        match self.key_ring() {
            Some(ring) => ring
                .open(stored)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None if crate::secrets::is_sealed(stored) => Err(StoreError::Corrupt(
                crate::secrets::SecretError::NoKey.to_string(),
            )),
            None => Ok(stored.to_owned()),
        }
    }

    fn user_from(&self, row: UserRow) -> Result<User> {
        let mut u = User::try_from(row)?;
        u.totp_secret = u.totp_secret.as_deref().map(|t| self.open(t)).transpose()?;
        Ok(u)
    }

    /// Seals every TOTP seed under the current key: those stored in clear
    /// (before encryption) and those sealed under an older key (after a
    /// rotation), in one transaction; how many were rewritten. Needs the ring.
    pub async fn reseal_totp_secrets(&self) -> Result<usize> {
        self.reseal(
            "SELECT id, totp_secret AS secret FROM users WHERE totp_secret IS NOT NULL",
            "UPDATE users SET totp_secret = $1 WHERE id = $2",
        )
        .await
    }

    /// Seals the secrets `select` lists (`id`, `secret`) under the current key
    /// with `update` (`$1` the sealed value, `$2` the id), in one transaction;
    /// how many were rewritten.
    pub(crate) async fn reseal(&self, select: &'static str, update: &'static str) -> Result<usize> {
        let Some(ring) = self.key_ring() else {
            return Err(StoreError::Corrupt(
                crate::secrets::SecretError::NoKey.to_string(),
            ));
        };
        on_pool!(self, write, |pool| {
            use sqlx::Row;
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query(select).fetch_all(&mut *tx).await?;
            let mut done = 0;
            for r in rows {
                let id: String = r.try_get("id")?;
                let stored: String = r.try_get("secret")?;
                if ring.is_current(&stored) {
                    continue;
                }
                let plain = ring
                    .open(&stored)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let sealed = ring
                    .seal(&plain)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(update)
                    .bind(sealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                done += 1;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The TOTP seeds as stored (sealed), for checks and tests.
    pub async fn stored_totp_secrets(&self) -> Result<Vec<String>> {
        on_pool!(self, read, |pool| {
            Ok(
                sqlx::query_scalar("SELECT totp_secret FROM users WHERE totp_secret IS NOT NULL")
                    .fetch_all(pool)
                    .await?,
            )
        })
    }

    /// Creates a user and its roles in one transaction.
    pub async fn create_user(&self, u: &NewUser, now_ms: i64) -> Result<UserId> {
        let id = UserId::new();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, username, display_name, kind, password_hash, totp_secret, rpps, profession, patient_id, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id.to_string())
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(u.kind.code())
            .bind(&u.password_hash)
            .bind(u.totp_secret.as_deref().map(|t| self.seal(t)).transpose()?)
            .bind(&u.rpps)
            .bind(&u.profession)
            .bind(u.patient.map(|p| p.to_string()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            for (e, role) in &u.roles {
                sqlx::query(
                    "INSERT INTO user_roles (user_id, establishment_id, role) VALUES ($1, $2, $3)",
                )
                .bind(id.to_string())
                .bind(e.to_string())
                .bind(role.code())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Finds a user by login name.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(username)
                .fetch_all(pool)
                .await?;
            first(rows_to::<_, UserRow>(&rows)?)
                .map(|r| self.user_from(r))
                .transpose()
        })
    }

    /// Reads a user.
    pub async fn user(&self, id: UserId) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            first(rows_to::<_, UserRow>(&rows)?)
                .map(|r| self.user_from(r))
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// Professionals holding at least one role in the territory, with their grants there.
    pub async fn professionals(&self, territory: TerritoryId) -> Result<Vec<(User, Vec<Grant>)>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE kind = 'professional' AND id IN \
             (SELECT r.user_id FROM user_roles r JOIN establishments e ON e.id = r.establishment_id WHERE e.territory_id = $1) \
             ORDER BY display_name"
        );
        let users: Vec<User> = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(territory.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, UserRow>(&rows)?
                .into_iter()
                .map(|r| self.user_from(r))
                .collect::<Result<_>>()?
        });
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let grants = self
                .grants(u.id)
                .await?
                .into_iter()
                .filter(|g| g.territory == territory)
                .collect();
            out.push((u, grants));
        }
        Ok(out)
    }

    /// The roles a user holds, with each establishment's territory.
    pub async fn grants(&self, user: UserId) -> Result<Vec<Grant>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT r.establishment_id, e.territory_id, r.role FROM user_roles r \
                 JOIN establishments e ON e.id = r.establishment_id WHERE r.user_id = $1 ORDER BY e.name, r.role",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await?;
            rows_to::<_, GrantRow>(&rows)?
                .into_iter()
                .map(Grant::try_from)
                .collect()
        })
    }

    /// Enables or disables an account (a disabled one cannot log in, and its
    /// open sessions' sockets close at their next check).
    pub async fn set_user_active(&self, user: UserId, active: bool) -> Result<()> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
                .bind(active)
                .bind(user.to_string())
                .execute(pool)
                .await?;
            if r.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    /// Sets (or replaces) a user's TOTP secret.
    pub async fn set_totp_secret(&self, user: UserId, secret: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2")
                .bind(self.seal(secret)?)
                .bind(user.to_string())
                .execute(pool)
                .await?;
            if r.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    /// Records that the TOTP time step `step` was used; refuses a step already used
    /// or older (a code seen once cannot be replayed).
    pub async fn consume_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)")
                .bind(step)
                .bind(user.to_string())
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Counts a failed login; after `max_failures` in a row the account is locked
    /// until `now_ms + lock_ms` and the counter starts again. Returns the lock end if
    /// this failure locked the account.
    pub async fn record_login_failure(
        &self,
        user: UserId,
        now_ms: i64,
        max_failures: i64,
        lock_ms: i64,
    ) -> Result<Option<i64>> {
        on_pool!(self, write, |pool| {
            use sqlx::Row;
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
                .bind(user.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let failures: i64 = row.try_get("failed_logins")?;
            let locked = if failures >= max_failures {
                let until = now_ms + lock_ms;
                sqlx::query(
                    "UPDATE users SET failed_logins = 0, locked_until_ms = $1 WHERE id = $2",
                )
                .bind(until)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await?;
                Some(until)
            } else {
                None
            };
            tx.commit().await?;
            Ok(locked)
        })
    }

    /// Clears the failure counter and any lock (after a full successful login).
    pub async fn reset_login_failures(&self, user: UserId) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1")
                .bind(user.to_string())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Stores a new session.
    pub async fn create_session(&self, s: &Session, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, mfa_done, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.token_hash)
            .bind(s.user.to_string())
            .bind(&s.csrf_token)
            .bind(s.mfa_done)
            .bind(now_ms)
            .bind(s.expires_at_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Reads a session that has not expired at `now_ms`.
    pub async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT token_hash, user_id, csrf_token, mfa_done, expires_at_ms FROM sessions WHERE token_hash = $1 AND expires_at_ms > $2",
            )
            .bind(token_hash)
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            first(rows_to::<_, SessionRow>(&rows)?)
                .map(|r| {
                    Ok(Session {
                        user: parse_id(&r.user_id)?,
                        token_hash: r.token_hash,
                        csrf_token: r.csrf_token,
                        mfa_done: r.mfa_done,
                        expires_at_ms: r.expires_at_ms,
                    })
                })
                .transpose()
        })
    }

    /// Replaces a half-logged-in session (password only) by a full one: a new token
    /// after the second factor, so a token seen before it is worthless (fixation).
    pub async fn upgrade_session(&self, old_hash: &str, new: &Session, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(old_hash)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, mfa_done, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&new.token_hash)
            .bind(new.user.to_string())
            .bind(&new.csrf_token)
            .bind(new.mfa_done)
            .bind(now_ms)
            .bind(new.expires_at_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Removes expired sessions and access tokens; returns how many rows went.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64> {
        on_pool!(self, write, |pool| {
            let a = sqlx::query("DELETE FROM sessions WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            let b = sqlx::query("DELETE FROM access_tokens WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(a.rows_affected() + b.rows_affected())
        })
    }

    /// Creates an API client.
    pub async fn create_client(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: &str,
        establishment: EstablishmentId,
        role: Role,
        now_ms: i64,
    ) -> Result<ApiClientId> {
        let id = ApiClientId::new();
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO api_clients (id, client_id, name, secret_hash, establishment_id, role, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_string())
            .bind(client_id)
            .bind(name)
            .bind(secret_hash)
            .bind(establishment.to_string())
            .bind(role.code())
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(id)
        })
    }

    /// Finds a client by its public client_id.
    pub async fn client_by_client_id(&self, client_id: &str) -> Result<Option<ApiClient>> {
        let sql = format!("{CLIENT_SELECT} WHERE c.client_id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(client_id)
                .fetch_all(pool)
                .await?;
            first(rows_to::<_, ClientRow>(&rows)?)
                .map(ApiClient::try_from)
                .transpose()
        })
    }

    /// Stores an access token (its hash) for a client.
    pub async fn create_access_token(
        &self,
        token_hash: &str,
        client: ApiClientId,
        now_ms: i64,
        expires_at_ms: i64,
        scopes: Option<&str>,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("INSERT INTO access_tokens (token_hash, client_pk, expires_at_ms, created_at_ms, scopes) VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash)
                .bind(client.to_string())
                .bind(expires_at_ms)
                .bind(now_ms)
                .bind(scopes)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The active client holding an unexpired token with this hash.
    pub async fn client_for_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<ApiClient>> {
        Ok(self
            .client_and_scopes_for_token(token_hash, now_ms)
            .await?
            .map(|(c, _)| c))
    }

    /// The same, with the scopes the token was granted (`None`: asked
    /// without scopes). A token found is kept for [`TOKEN_KEPT_FOR`] (see
    /// [`TokenCache`]); its expiry is checked at every call.
    pub async fn client_and_scopes_for_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(ApiClient, Option<String>)>> {
        if let Some(found) = self.tokens.get(token_hash, now_ms) {
            return Ok(Some(found));
        }
        // Taken before the read: a revocation that clears the cache while
        // the read runs (whose answer may predate it) keeps that answer out.
        let generation = self.tokens.generation();
        let sql = format!(
            "{CLIENT_COLUMNS}, t.scopes, t.expires_at_ms AS token_expires_at_ms \
             FROM api_clients c JOIN establishments e ON e.id = c.establishment_id \
             JOIN access_tokens t ON t.client_pk = c.id WHERE t.token_hash = $1 AND t.expires_at_ms > $2 AND c.active = $3"
        );
        let found = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(token_hash)
                .bind(now_ms)
                .bind(true)
                .fetch_all(pool)
                .await?;
            let token: Option<(Option<String>, i64)> = rows
                .first()
                .map(|r| {
                    Ok::<_, sqlx::Error>((
                        sqlx::Row::try_get(r, "scopes")?,
                        sqlx::Row::try_get(r, "token_expires_at_ms")?,
                    ))
                })
                .transpose()?;
            let client = first(rows_to::<_, ClientRow>(&rows)?)
                .map(ApiClient::try_from)
                .transpose()?;
            client.zip(token)
        });
        Ok(found.map(|(client, (scopes, expires_at_ms))| {
            self.tokens.keep(
                token_hash,
                generation,
                TokenEntry {
                    client: client.clone(),
                    scopes: scopes.clone(),
                    expires_at_ms,
                    read_at: std::time::Instant::now(),
                },
            );
            (client, scopes)
        }))
    }
}

/// How long a bearer token found in the database is taken as valid without
/// reading it again (its expiry is checked each time). A revocation (a
/// client revoked, its secret rotated: `crate::accounts`) clears this node's
/// cache at once; another node of a cluster sees it within this time. Under
/// an integrator's load (thousands of requests a second with one token) it
/// spares every request but one a second its read of three tables.
pub const TOKEN_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Most tokens kept at once; past it the cache starts over (a flood of
/// distinct tokens costs their reads, not memory).
const TOKENS_KEPT: usize = 4_096;

/// A token found valid, and when it was read.
#[derive(Debug)]
struct TokenEntry {
    client: ApiClient,
    scopes: Option<String>,
    expires_at_ms: i64,
    read_at: std::time::Instant,
}

/// Bearer tokens found valid lately, by hash, shared by every clone of the
/// store (see [`Store::client_and_scopes_for_token`]). Only tokens found are
/// kept (an unknown one is read each time).
#[derive(Debug, Default)]
pub(crate) struct TokenCache(std::sync::Mutex<KeptTokens>);

#[derive(Debug, Default)]
struct KeptTokens {
    /// How many times the cache was cleared: a read begun before a clearing
    /// is not kept after it.
    generation: u64,
    by_hash: std::collections::HashMap<String, TokenEntry>,
}

impl TokenCache {
    fn locked(&self) -> std::sync::MutexGuard<'_, KeptTokens> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &str, now_ms: i64) -> Option<(ApiClient, Option<String>)> {
        let kept = self.locked();
        let e = kept.by_hash.get(hash)?;
        (e.read_at.elapsed() < TOKEN_KEPT_FOR && e.expires_at_ms > now_ms)
            .then(|| (e.client.clone(), e.scopes.clone()))
    }

    fn generation(&self) -> u64 {
        self.locked().generation
    }

    fn keep(&self, hash: &str, generation: u64, entry: TokenEntry) {
        let mut kept = self.locked();
        if kept.generation != generation {
            return;
        }
        if kept.by_hash.len() >= TOKENS_KEPT {
            kept.by_hash.clear();
        }
        kept.by_hash.insert(hash.to_owned(), entry);
    }

    /// Forgets every token (a client revoked or its secret rotated).
    pub(crate) fn clear(&self) {
        let mut kept = self.locked();
        kept.generation += 1;
        kept.by_hash.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let user = User {
            id: UserId::new(),
            username: "dr.martin".into(),
            display_name: "Dr Martin".into(),
            kind: UserKind::Professional,
            password_hash: "$argon2id$v=19$SECRET-HASH".into(),
            totp_secret: Some("TOTPSEEDBASE32".into()),
            rpps: None,
            profession: None,
            patient: None,
            failed_logins: 0,
            locked_until_ms: None,
            active: true,
        };
        let new = NewUser {
            username: "x".into(),
            display_name: "X".into(),
            kind: UserKind::Professional,
            password_hash: "$argon2id$v=19$SECRET-HASH".into(),
            totp_secret: Some("TOTPSEEDBASE32".into()),
            rpps: None,
            profession: None,
            patient: None,
            roles: vec![],
        };
        let session = Session {
            token_hash: "TOKEN-HASH".into(),
            user: user.id,
            csrf_token: "CSRF-TOKEN".into(),
            mfa_done: true,
            expires_at_ms: 0,
        };
        let client = ApiClient {
            id: ApiClientId::new(),
            client_id: "feed".into(),
            name: "Flux".into(),
            secret_hash: "$argon2id$v=19$SECRET-HASH".into(),
            establishment: EstablishmentId::new(),
            territory: TerritoryId::new(),
            role: Role::Integration,
            active: true,
        };
        let text = format!("{user:?} {new:?} {session:?} {client:?}");
        for secret in ["SECRET-HASH", "TOTPSEEDBASE32", "TOKEN-HASH", "CSRF-TOKEN"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("dr.martin") && text.contains("feed"),
            "{text}"
        );
    }
}
