//! Documents received by secure messaging: each document of each mail is
//! recorded once (establishment, Message-ID, part) as filed, queued for a human
//! or rejected. Filing writes the document, its recipients (the DMP), their
//! outbox messages and this record in one transaction.

use domain::audit::AuditActor;
use domain::{EstablishmentId, PatientId};

use crate::documents::{ReceivedDocument, RecipientPlan};
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Result, Store, StoreError};

/// What became of a received document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingState {
    /// Filed on a patient.
    Filed,
    /// Waiting for a human to say whose it is.
    Queued,
    /// Not usable (no document, unreadable), with why.
    Rejected,
    /// Already filed (the same document sent twice).
    Duplicate,
}

impl IncomingState {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            IncomingState::Filed => "filed",
            IncomingState::Queued => "queued",
            IncomingState::Rejected => "rejected",
            IncomingState::Duplicate => "duplicate",
        }
    }

    /// From its code.
    pub fn from_code(c: &str) -> Option<Self> {
        [
            IncomingState::Filed,
            IncomingState::Queued,
            IncomingState::Rejected,
            IncomingState::Duplicate,
        ]
        .into_iter()
        .find(|s| s.code() == c)
    }

    /// In French, for the lists.
    pub fn label_fr(self) -> &'static str {
        match self {
            IncomingState::Filed => "classé",
            IncomingState::Queued => "à rattacher",
            IncomingState::Rejected => "refusé",
            IncomingState::Duplicate => "déjà reçu",
        }
    }
}

/// A received document to record.
#[derive(Debug, Clone)]
pub struct NewIncoming {
    /// The mailbox's establishment.
    pub establishment: EstablishmentId,
    /// The mail's Message-ID.
    pub message_id: String,
    /// Which document of the mail (0 for a mail without any).
    pub part: i64,
    /// Sender address.
    pub sender: String,
    /// Subject.
    pub subject: String,
    /// What became of it.
    pub state: IncomingState,
    /// How it was matched, or why it waits or was refused.
    pub detail: String,
    /// The CDA's unique id, when read.
    pub unique_id: Option<String>,
    /// Title.
    pub title: String,
    /// LOINC type code.
    pub type_code: String,
    /// The patient as the document names them (for the human who matches).
    pub traits: String,
    /// The CDA.
    pub content: Option<Vec<u8>>,
    /// Whose, when known.
    pub patient: Option<PatientId>,
    /// The filed document, when filed or already there.
    pub document_id: Option<String>,
}

/// A received document as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Id.
    pub id: String,
    /// The mailbox's establishment.
    pub establishment: EstablishmentId,
    /// Message-ID.
    pub message_id: String,
    /// Part.
    pub part: i64,
    /// Sender.
    pub sender: String,
    /// Subject.
    pub subject: String,
    /// When read.
    pub received_at_ms: i64,
    /// State.
    pub state: IncomingState,
    /// How matched, or why not.
    pub detail: String,
    /// CDA unique id.
    pub unique_id: Option<String>,
    /// Title.
    pub title: String,
    /// LOINC type code.
    pub type_code: String,
    /// The patient as the document names them.
    pub traits: String,
    /// Whose.
    pub patient: Option<PatientId>,
    /// The filed document.
    pub document_id: Option<String>,
    /// Last change.
    pub updated_at_ms: i64,
}

db_row! {
    struct IncomingRow {
        id: String, establishment_id: String, message_id: String, part: i64, sender: String,
        subject: String, received_at_ms: i64, state: String, detail: String, unique_id: Option<String>,
        title: String, type_code: String, traits: String, patient_id: Option<String>,
        document_id: Option<String>, updated_at_ms: i64,
    }
}

const COLUMNS: &str = "id, establishment_id, message_id, part, sender, subject, received_at_ms, state, detail, unique_id, title, type_code, traits, patient_id, document_id, updated_at_ms";

impl TryFrom<IncomingRow> for Incoming {
    type Error = StoreError;
    fn try_from(r: IncomingRow) -> Result<Self> {
        Ok(Incoming {
            establishment: parse_id(&r.establishment_id)?,
            state: IncomingState::from_code(&r.state)
                .ok_or_else(|| StoreError::Corrupt("incoming state".into()))?,
            patient: r.patient_id.as_deref().map(parse_id).transpose()?,
            id: r.id,
            message_id: r.message_id,
            part: r.part,
            sender: r.sender,
            subject: r.subject,
            received_at_ms: r.received_at_ms,
            detail: r.detail,
            unique_id: r.unique_id,
            title: r.title,
            type_code: r.type_code,
            traits: r.traits,
            document_id: r.document_id,
            updated_at_ms: r.updated_at_ms,
        })
    }
}

/// Inserts `n` under `id` unless its (establishment, message, part) is
/// recorded already; whether it was new.
pub(crate) async fn insert_incoming(
    tx: &mut Tx<'_>,
    id: &str,
    n: &NewIncoming,
    now_ms: i64,
) -> Result<bool> {
    let new = q(
        "INSERT INTO incoming_documents (id, establishment_id, message_id, part, sender, subject, received_at_ms, state, detail, unique_id, title, type_code, traits, content, patient_id, document_id, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $7) \
         ON CONFLICT (establishment_id, message_id, part) DO NOTHING",
    )
    .bind(id)
    .bind(n.establishment.to_string())
    .bind(&n.message_id)
    .bind(n.part)
    .bind(&n.sender)
    .bind(&n.subject)
    .bind(now_ms)
    .bind(n.state.code())
    .bind(&n.detail)
    .bind(&n.unique_id)
    .bind(&n.title)
    .bind(&n.type_code)
    .bind(&n.traits)
    .bind(&n.content)
    .bind(n.patient.map(|p| p.to_string()))
    .bind(&n.document_id)
    .execute(tx)
    .await?;
    Ok(new == 1)
}

impl Store {
    /// Whether this part of this mail is recorded already.
    pub async fn incoming_seen(
        &self,
        establishment: EstablishmentId,
        message_id: &str,
        part: i64,
    ) -> Result<bool> {
        on_pool!(self, read, |pool| {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM incoming_documents WHERE establishment_id = $1 AND message_id = $2 AND part = $3",
            )
            .bind(establishment.to_string())
            .bind(message_id)
            .bind(part)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// Records a received document that is not filed now (queued, rejected,
    /// duplicate); `false` when that part of that mail is recorded already.
    pub async fn record_incoming(&self, n: &NewIncoming, now_ms: i64) -> Result<bool> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let new = crate::incoming::insert_incoming(&mut tx.as_tx(), &id, n, now_ms).await?;
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Records a received document and files it on its patient with the
    /// recipients it is forwarded to, in one transaction (audited). `None`
    /// when that part of that mail is recorded already; a document filed
    /// under the same unique id meanwhile is a [`StoreError::Conflict`].
    pub async fn file_incoming(
        &self,
        n: &NewIncoming,
        doc: &ReceivedDocument,
        recipients: &[RecipientPlan],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<Option<String>> {
        let id = uuid::Uuid::now_v7().to_string();
        let doc_id = uuid::Uuid::now_v7().to_string();
        let mut n = n.clone();
        n.document_id = None;
        n.patient = Some(doc.patient);
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            if !crate::incoming::insert_incoming(&mut tx.as_tx(), &id, &n, now_ms).await? {
                return Ok(None);
            }
            crate::documents::insert_received(&mut tx.as_tx(), &doc_id, doc, now_ms).await?;
            sqlx::query("UPDATE incoming_documents SET document_id = $1 WHERE id = $2")
                .bind(&doc_id)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            crate::documents::insert_recipients(&mut tx.as_tx(), &doc_id, recipients, now_ms)
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &crate::documents::audit(who, doc.patient, &doc_id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(Some(doc_id))
        })
    }

    /// Files a queued document on the patient a human chose (audited): the
    /// document, its recipients and outbox messages, and the record's new
    /// state, in one transaction. The filed document's id; `None` when it was
    /// no longer queued.
    pub async fn attach_incoming(
        &self,
        incoming_id: &str,
        detail: &str,
        doc: &ReceivedDocument,
        recipients: &[RecipientPlan],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<Option<String>> {
        let doc_id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE incoming_documents SET state = 'filed', detail = $1, patient_id = $2, updated_at_ms = $3 \
                 WHERE id = $4 AND state = 'queued'",
            )
            .bind(detail)
            .bind(doc.patient.to_string())
            .bind(now_ms)
            .bind(incoming_id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(None);
            }
            crate::documents::insert_received(&mut tx.as_tx(), &doc_id, doc, now_ms).await?;
            sqlx::query("UPDATE incoming_documents SET document_id = $1 WHERE id = $2")
                .bind(&doc_id)
                .bind(incoming_id)
                .execute(&mut *tx)
                .await?;
            crate::documents::insert_recipients(&mut tx.as_tx(), &doc_id, recipients, now_ms)
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &crate::documents::audit(who, doc.patient, &doc_id, now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(Some(doc_id))
        })
    }

    /// An establishment's received documents, newest first.
    pub async fn incoming_documents(
        &self,
        establishment: EstablishmentId,
        limit: i64,
    ) -> Result<Vec<Incoming>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incoming_documents WHERE establishment_id = $1 ORDER BY received_at_ms DESC, id DESC LIMIT +$2"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.to_string())
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows_to::<_, IncomingRow>(&rows)?
                .into_iter()
                .map(Incoming::try_from)
                .collect()
        })
    }

    /// One received document and its content.
    pub async fn incoming(&self, id: &str) -> Result<(Incoming, Option<Vec<u8>>)> {
        let sql = format!("SELECT {COLUMNS} FROM incoming_documents WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            let row = rows_to::<_, IncomingRow>(&rows)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)?;
            let content: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT content FROM incoming_documents WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
            Ok((Incoming::try_from(row)?, content))
        })
    }
}
