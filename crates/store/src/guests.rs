//! Guests of a video consultation: invited by the doctor with a single-use
//! link (its SHA-256 kept), bound to the first browser that opens it, ready
//! once their devices are checked, let in by the doctor, revocable.

use domain::AppointmentId;

use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::{Result, Store};

db_row! {
    struct GuestRow {
        id: String,
        appointment_id: String,
        name: String,
        kind: String,
        contact: Option<String>,
        created_at_ms: i64,
        expires_at_ms: i64,
        browser_hash: Option<String>,
        ready_at_ms: Option<i64>,
        admitted_at_ms: Option<i64>,
        revoked_at_ms: Option<i64>,
    }
}

const COLUMNS: &str = "id, appointment_id, name, kind, contact, created_at_ms, expires_at_ms, browser_hash, ready_at_ms, admitted_at_ms, revoked_at_ms";

/// A guest as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// Id.
    pub id: String,
    /// The appointment.
    pub appointment: AppointmentId,
    /// Name as the doctor typed it.
    pub name: String,
    /// `interprete`, `proche` or `professionnel`.
    pub kind: String,
    /// Where the link was sent (an address or a number), if it was.
    pub contact: Option<String>,
    /// Invited (Unix ms).
    pub created_at_ms: i64,
    /// The link works until (Unix ms).
    pub expires_at_ms: i64,
    /// The browser the link was opened in (a hash), once opened.
    pub browser_hash: Option<String>,
    /// Devices checked, waiting to be let in.
    pub ready_at_ms: Option<i64>,
    /// Let in by the doctor.
    pub admitted_at_ms: Option<i64>,
    /// Revoked.
    pub revoked_at_ms: Option<i64>,
}

impl TryFrom<GuestRow> for Guest {
    type Error = crate::StoreError;
    fn try_from(r: GuestRow) -> Result<Self> {
        Ok(Guest {
            id: r.id,
            appointment: parse_id(&r.appointment_id)?,
            name: r.name,
            kind: r.kind,
            contact: r.contact,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            browser_hash: r.browser_hash,
            ready_at_ms: r.ready_at_ms,
            admitted_at_ms: r.admitted_at_ms,
            revoked_at_ms: r.revoked_at_ms,
        })
    }
}

/// A guest to invite.
#[derive(Debug, Clone)]
pub struct NewGuest<'a> {
    /// The appointment.
    pub appointment: AppointmentId,
    /// The link's SHA-256.
    pub token_hash: &'a str,
    /// Name.
    pub name: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Where the link goes, if anywhere.
    pub contact: Option<&'a str>,
    /// Who invited (user id).
    pub created_by: &'a str,
    /// Until when the link works.
    pub expires_at_ms: i64,
}

impl Store {
    /// Invites a guest; its id.
    pub async fn add_guest(&self, g: &NewGuest<'_>, now_ms: i64) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO room_guests (id, appointment_id, token_hash, name, kind, contact, created_by, created_at_ms, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(g.appointment.to_string())
            .bind(g.token_hash)
            .bind(g.name)
            .bind(g.kind)
            .bind(g.contact)
            .bind(g.created_by)
            .bind(now_ms)
            .bind(g.expires_at_ms)
            .execute(pool)
            .await?;
            Ok(id.clone())
        })
    }

    /// The guests of an appointment, in the order invited.
    pub async fn guests_of(&self, appointment: AppointmentId) -> Result<Vec<Guest>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM room_guests WHERE appointment_id = $1 ORDER BY created_at_ms, id"
        );
        let a = appointment.to_string();
        let a = a.as_str();
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(a)
                .fetch_all(pool)
                .await?;
            rows_to::<_, GuestRow>(&rows)?
                .into_iter()
                .map(Guest::try_from)
                .collect()
        })
    }

    /// The guest a link's SHA-256 names, if any.
    pub async fn guest_by_token(&self, token_hash: &str) -> Result<Option<Guest>> {
        let sql = format!("SELECT {COLUMNS} FROM room_guests WHERE token_hash = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(token_hash)
                .fetch_all(pool)
                .await?;
            rows_to::<_, GuestRow>(&rows)?
                .into_iter()
                .next()
                .map(Guest::try_from)
                .transpose()
        })
    }

    /// One step of a guest, each once: `claim` binds the link to a browser
    /// (again from the same browser is fine), `ready`, `admit`, `revoke`.
    /// `false` when the step does not apply (another browser, revoked…).
    pub async fn guest_step(&self, id: &str, step: GuestStep<'_>, now_ms: i64) -> Result<bool> {
        let sql = match step {
            GuestStep::Claim(_) => {
                "UPDATE room_guests SET browser_hash = $3 WHERE id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 \
                 AND (browser_hash IS NULL OR browser_hash = $3)"
            }
            GuestStep::Ready => {
                "UPDATE room_guests SET ready_at_ms = COALESCE(ready_at_ms, $2) WHERE id = $1 AND revoked_at_ms IS NULL AND browser_hash IS NOT NULL"
            }
            GuestStep::Admit => {
                "UPDATE room_guests SET admitted_at_ms = COALESCE(admitted_at_ms, $2) WHERE id = $1 AND revoked_at_ms IS NULL AND ready_at_ms IS NOT NULL"
            }
            GuestStep::Revoke => {
                "UPDATE room_guests SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL"
            }
        };
        on_pool!(self, write, |pool| {
            let mut q = sqlx::query(sql).bind(id).bind(now_ms);
            if let GuestStep::Claim(browser) = step {
                q = q.bind(browser);
            }
            let r = q.execute(pool).await?;
            Ok(r.rows_affected() > 0)
        })
    }
}

/// A step of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStep<'a> {
    /// The link is opened in this browser (its hash).
    Claim(&'a str),
    /// Devices checked.
    Ready,
    /// Let in by the doctor.
    Admit,
    /// Revoked by the doctor.
    Revoke,
}

impl Store {
    /// One guest.
    pub async fn guest(&self, id: &str) -> Result<Guest> {
        let sql = format!("SELECT {COLUMNS} FROM room_guests WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, GuestRow>(&rows)?
                .into_iter()
                .next()
                .map(Guest::try_from)
                .transpose()?
                .ok_or(crate::StoreError::NotFound)
        })
    }
}
