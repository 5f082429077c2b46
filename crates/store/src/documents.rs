//! Clinical documents in storage: drafts, validation with its recipients and
//! their outbox messages in one transaction, documents received (MHD, mail),
//! and what the hospital knows of each patient's shared record (DMP).

use domain::audit::AuditActor;
use domain::documents::{DmpState, Kind, Recipient, Status};
use domain::{DocumentId, EstablishmentId, PatientId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::outbox::NewMessage;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Result, Store, StoreError};

/// A document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Id (a UUID; the FHIR DocumentReference id).
    pub id: DocumentId,
    /// Shared by its versions.
    pub set_id: String,
    /// Version (1 first).
    pub version: i64,
    /// Its unique id in the sharing world (CDA id, XDS uniqueId: `urn:uuid:…` or an OID).
    pub unique_id: String,
    /// Whose.
    pub patient: PatientId,
    /// Where written or filed.
    pub establishment: EstablishmentId,
    /// Type.
    pub kind: Kind,
    /// Title.
    pub title: String,
    /// Text (drafts; empty for received documents).
    pub body: String,
    /// Draft or validated.
    pub status: Status,
    /// `local`, `mhd` or `mail`.
    pub source: String,
    /// Who drafted it (user id or sender).
    pub created_by: String,
    /// When.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// The doctor who validated it.
    pub validated_by: Option<String>,
    /// When.
    pub validated_at_ms: Option<i64>,
    /// The stored content's media type (the CDA, or what was received).
    pub content_type: Option<String>,
    /// The unit it was written for (code), if any.
    pub unit: Option<String>,
    /// The id of the version it replaces, if any.
    pub replaces: Option<DocumentId>,
    /// The id of the version that replaced it, once validated (or received).
    pub superseded_by: Option<DocumentId>,
    /// The stored content's size and hash, when there is content (`None`
    /// also for a row stored before they were, until the next start fills
    /// them in).
    pub digest: Option<Digest>,
}

db_row! {
    struct DocRow {
        id: String, set_id: String, version: i64, unique_id: String, patient_id: String,
        establishment_id: String, kind: String, title: String, body: String, status: String,
        source: String, created_by: String, created_at_ms: i64, updated_at_ms: i64,
        validated_by: Option<String>, validated_at_ms: Option<i64>, content_type: Option<String>,
        unit: Option<String>, replaces: Option<String>, superseded_by: Option<String>,
        content_size: Option<i64>, content_sha1: Option<String>,
    }
}

const COLUMNS: &str = "id, set_id, version, unique_id, patient_id, establishment_id, kind, title, body, status, source, created_by, created_at_ms, updated_at_ms, validated_by, validated_at_ms, content_type, unit, replaces, superseded_by, content_size, content_sha1";

impl TryFrom<DocRow> for Document {
    type Error = StoreError;
    fn try_from(r: DocRow) -> Result<Self> {
        Ok(Document {
            patient: parse_id(&r.patient_id)?,
            establishment: parse_id(&r.establishment_id)?,
            kind: Kind::from_code(&r.kind).ok_or_else(|| StoreError::Corrupt("kind".into()))?,
            status: Status::from_code(&r.status)
                .ok_or_else(|| StoreError::Corrupt("status".into()))?,
            id: parse_id(&r.id)?,
            set_id: r.set_id,
            version: r.version,
            unique_id: r.unique_id,
            title: r.title,
            body: r.body,
            source: r.source,
            created_by: r.created_by,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
            validated_by: r.validated_by,
            validated_at_ms: r.validated_at_ms,
            content_type: r.content_type,
            unit: r.unit,
            replaces: r.replaces.as_deref().map(parse_id).transpose()?,
            superseded_by: r.superseded_by.as_deref().map(parse_id).transpose()?,
            digest: match (r.content_size, r.content_sha1) {
                (Some(size), Some(sha1)) => Some(Digest {
                    size: u64::try_from(size)
                        .map_err(|_| StoreError::Corrupt("content_size".into()))?,
                    sha1,
                }),
                _ => None,
            },
        })
    }
}

/// The size and SHA-1 of a document's stored content, written with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Bytes.
    pub size: u64,
    /// SHA-1, in standard base64 (FHIR `Attachment.hash`).
    pub sha1: String,
}

impl Digest {
    /// The digest of `content`.
    pub fn of(content: &[u8]) -> Self {
        use base64::Engine as _;
        use sha1::Digest as _;
        Digest {
            size: content.len() as u64,
            sha1: base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(content)),
        }
    }

    /// The size as stored (a column of 64-bit integers).
    fn size_column(&self) -> i64 {
        i64::try_from(self.size).unwrap_or(i64::MAX)
    }
}

/// A draft to create.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Whose.
    pub patient: PatientId,
    /// Where.
    pub establishment: EstablishmentId,
    /// Type.
    pub kind: Kind,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Who drafts.
    pub created_by: String,
    /// For which unit (code), if any.
    pub unit: Option<String>,
}

/// A document received from elsewhere, filed as it came.
#[derive(Debug, Clone)]
pub struct ReceivedDocument {
    /// Its unique id where it was written.
    pub unique_id: String,
    /// Whose.
    pub patient: PatientId,
    /// Filed at.
    pub establishment: EstablishmentId,
    /// Type.
    pub kind: Kind,
    /// Title.
    pub title: String,
    /// `mhd` or `mail`.
    pub source: String,
    /// Who sent it.
    pub sender: String,
    /// Media type.
    pub content_type: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// The unique id of the version it replaces (a correction), if any.
    pub replaces: Option<String>,
}

/// One recipient of a validated document, as planned at validation.
#[derive(Debug, Clone)]
pub struct RecipientPlan {
    /// Who.
    pub recipient: Recipient,
    /// Where (a portal, a mail address, an MHD endpoint).
    pub address: String,
    /// The outbox message that carries it, if one does.
    pub message: Option<NewMessage>,
    /// `delivered` (the portal, at once), `pending` (an outbox message), or
    /// `skipped` / `waiting` with the reason in `detail`.
    pub state: &'static str,
    /// Why, when skipped or waiting.
    pub detail: Option<String>,
}

/// A recipient as it stands, its outbox message's fate folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    /// The document.
    pub document_id: String,
    /// Who.
    pub recipient: Recipient,
    /// Where.
    pub address: String,
    /// `delivered`, `pending`, `failed`, `skipped` or `waiting`.
    pub state: String,
    /// Why (the last error, the reason skipped).
    pub detail: Option<String>,
    /// Attempts made by the outbox.
    pub attempts: i64,
    /// Last change (delivery time when delivered).
    pub updated_at_ms: i64,
}

db_row! {
    struct RecipientRow {
        document_id: String, recipient: String, address: String, state: String, detail: Option<String>,
        updated_at_ms: i64, attempts: Option<i64>, delivered_at_ms: Option<i64>, dead_at_ms: Option<i64>,
        last_error: Option<String>, outbox_key: Option<String>,
    }
}

impl TryFrom<RecipientRow> for RecipientState {
    type Error = StoreError;
    fn try_from(r: RecipientRow) -> Result<Self> {
        let recipient = Recipient::from_code(&r.recipient)
            .ok_or_else(|| StoreError::Corrupt("recipient".into()))?;
        let (state, detail, at) = match (&r.outbox_key, r.delivered_at_ms, r.dead_at_ms) {
            (None, _, _) => (r.state, r.detail, r.updated_at_ms),
            (Some(_), Some(at), _) => ("delivered".to_owned(), None, at),
            (Some(_), None, Some(at)) => ("failed".to_owned(), r.last_error, at),
            (Some(_), None, None) => ("pending".to_owned(), r.last_error, r.updated_at_ms),
        };
        Ok(RecipientState {
            document_id: r.document_id,
            recipient,
            address: r.address,
            state,
            detail,
            attempts: r.attempts.unwrap_or(0),
            updated_at_ms: at,
        })
    }
}

/// Recipients with their outbox message's fate (`r`; add joins and a WHERE).
const RECIPIENTS: &str = "SELECT r.document_id, r.recipient, r.address, r.state, r.detail, r.updated_at_ms, r.outbox_key, \
     o.attempts, o.delivered_at_ms, o.dead_at_ms, o.last_error \
     FROM document_recipients r LEFT JOIN outbox o ON o.idempotency_key = r.outbox_key";

/// Writes the recipients of document `id` and their outbox messages in `tx`.
pub(crate) async fn insert_recipients(
    tx: &mut Tx<'_>,
    id: &str,
    recipients: &[RecipientPlan],
    now_ms: i64,
) -> Result<()> {
    for p in recipients {
        q(
            "INSERT INTO document_recipients (document_id, recipient, address, outbox_key, state, detail, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(p.recipient.code())
        .bind(&p.address)
        .bind(p.message.as_ref().map(|m| m.idempotency_key.clone()))
        .bind(p.state)
        .bind(&p.detail)
        .bind(now_ms)
        .execute(tx)
        .await?;
        if let Some(m) = &p.message {
            let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
        }
    }
    Ok(())
}

/// Inserts received document `r` under id `id` in `tx`. A correction
/// (`r.replaces`) of a document held here joins its set as the next version
/// and marks it superseded, in the same transaction, but only under
/// `domain::documents::may_replace` (same patient, same establishment, not
/// replaced yet): otherwise [`crate::StoreError::Refused`] and nothing is
/// written. A correction of a document not held here starts its own set.
pub(crate) async fn insert_received(
    tx: &mut Tx<'_>,
    id: &str,
    r: &ReceivedDocument,
    now_ms: i64,
) -> Result<()> {
    let digest = Digest::of(&r.content);
    let mut set_id = r.unique_id.clone();
    let mut version: i64 = 1;
    let mut replaced: Option<String> = None;
    if let Some(old) = &r.replaces {
        let row = q(
            "SELECT id, set_id, version, patient_id, establishment_id, superseded_by FROM documents WHERE unique_id = $1",
        )
        .bind(old)
        .fetch_optional(tx)
        .await?;
        if let Some(row) = row {
            let held = domain::documents::Replaced {
                patient: crate::orgs::parse_id(&row.get::<String>("patient_id")?)?,
                establishment: crate::orgs::parse_id(&row.get::<String>("establishment_id")?)?,
                superseded: row.get::<Option<String>>("superseded_by")?.is_some(),
            };
            if let Err(why) = domain::documents::may_replace(&held, r.patient, r.establishment) {
                return Err(crate::StoreError::Refused(format!(
                    "remplacement refusé: {why}"
                )));
            }
            set_id = row.get("set_id")?;
            version = row.get::<i64>("version")? + 1;
            replaced = Some(row.get("id")?);
        }
    }
    q(
        "INSERT INTO documents (id, set_id, version, unique_id, patient_id, establishment_id, kind, title, body, status, source, created_by, created_at_ms, updated_at_ms, validated_at_ms, content_type, content, replaces, content_size, content_sha1) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', 'validated', $9, $10, $11, $11, $11, $12, $13, $14, $15, $16)",
    )
    .bind(id)
    .bind(&set_id)
    .bind(version)
    .bind(&r.unique_id)
    .bind(r.patient.to_string())
    .bind(r.establishment.to_string())
    .bind(r.kind.code())
    .bind(&r.title)
    .bind(&r.source)
    .bind(&r.sender)
    .bind(now_ms)
    .bind(&r.content_type)
    .bind(&r.content)
    .bind(&replaced)
    .bind(digest.size_column())
    .bind(&digest.sha1)
    .execute(tx)
    .await?;
    if let Some(old_id) = &replaced {
        let done = q(
            "UPDATE documents SET superseded_by = $1, updated_at_ms = $2 WHERE id = $3 AND superseded_by IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .bind(old_id)
        .execute(tx)
        .await?;
        if done != 1 {
            return Err(crate::StoreError::Refused(
                "remplacement refusé: le document remplacé l'est déjà par une autre version"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn audit(who: &AuditActor, patient: PatientId, id: &str, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: "write-clinical".into(),
        resource: format!("DocumentReference/{id}"),
        outcome: "success".into(),
    }
}

impl Store {
    /// Creates a draft (audited); its id.
    pub async fn create_document(
        &self,
        n: &NewDocument,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<DocumentId> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO documents (id, set_id, version, unique_id, patient_id, establishment_id, kind, title, body, status, source, created_by, created_at_ms, updated_at_ms, unit) \
                 VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, 'draft', 'local', $9, $10, $10, $11)",
            )
            .bind(&id)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(format!("urn:uuid:{}", uuid::Uuid::new_v4()))
            .bind(n.patient.to_string())
            .bind(n.establishment.to_string())
            .bind(n.kind.code())
            .bind(&n.title)
            .bind(&n.body)
            .bind(&n.created_by)
            .bind(now_ms)
            .bind(&n.unit)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit(who, n.patient, &id, now_ms))
                .await?;
            tx.commit().await?;
            parse_id(&id)
        })
    }

    /// Changes a draft's title and text (audited); `Ok(false)` if it is no
    /// longer a draft.
    pub async fn update_draft(
        &self,
        d: &Document,
        title: &str,
        body: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE documents SET title = $1, body = $2, updated_at_ms = $3 WHERE id = $4 AND status = 'draft'",
            )
            .bind(title)
            .bind(body)
            .bind(now_ms)
            .bind(d.id.to_string())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, d.patient, &d.id.to_string(), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Validates a draft: stores its content (the CDA), its recipients and their
    /// outbox messages, audited, in one transaction; `Ok(false)` if it was no
    /// longer a draft (validated meanwhile: nothing sent twice).
    #[allow(clippy::too_many_arguments)]
    pub async fn validate_document(
        &self,
        d: &Document,
        validated_by: &str,
        content_type: &str,
        content: &[u8],
        recipients: &[RecipientPlan],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        let digest = Digest::of(content);
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE documents SET status = 'validated', validated_by = $1, validated_at_ms = $2, updated_at_ms = $2, content_type = $3, content = $4, \
                 content_size = $6, content_sha1 = $7 WHERE id = $5 AND status = 'draft'",
            )
            .bind(validated_by)
            .bind(now_ms)
            .bind(content_type)
            .bind(content)
            .bind(d.id.to_string())
            .bind(digest.size_column())
            .bind(&digest.sha1)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            if let Some(old) = &d.replaces {
                sqlx::query("UPDATE documents SET superseded_by = $1, updated_at_ms = $2 WHERE id = $3 AND superseded_by IS NULL")
                    .bind(d.id.to_string())
                    .bind(now_ms)
                    .bind(old.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            crate::documents::insert_recipients(
                &mut tx.as_tx(),
                &d.id.to_string(),
                recipients,
                now_ms,
            )
            .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, d.patient, &d.id.to_string(), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Files a document received from elsewhere (audited) with the recipients
    /// it is forwarded to and their outbox messages; a document already filed
    /// under the same unique id is a [`StoreError::Conflict`]. Its id.
    pub async fn file_document(
        &self,
        r: &ReceivedDocument,
        recipients: &[RecipientPlan],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<DocumentId> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            crate::documents::insert_received(&mut tx.as_tx(), &id, r, now_ms).await?;
            crate::documents::insert_recipients(&mut tx.as_tx(), &id, recipients, now_ms).await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit(who, r.patient, &id, now_ms))
                .await?;
            tx.commit().await?;
            parse_id(&id)
        })
    }

    /// Starts the next version of a validated document, as a draft with its
    /// title, text and unit (audited); the draft already started when there is
    /// one. `None` when it was replaced already.
    pub async fn revise_document(
        &self,
        old: &Document,
        created_by: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<Option<DocumentId>> {
        if old.superseded_by.is_some() {
            return Ok(None);
        }
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM documents WHERE replaces = $1 AND status = 'draft' ORDER BY created_at_ms LIMIT 1",
            )
            .bind(old.id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = existing {
                return Ok(Some(parse_id(&existing)?));
            }
            sqlx::query(
                "INSERT INTO documents (id, set_id, version, unique_id, patient_id, establishment_id, kind, title, body, status, source, created_by, created_at_ms, updated_at_ms, unit, replaces) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', 'local', $10, $11, $11, $12, $13)",
            )
            .bind(&id)
            .bind(&old.set_id)
            .bind(old.version + 1)
            .bind(format!("urn:uuid:{}", uuid::Uuid::new_v4()))
            .bind(old.patient.to_string())
            .bind(old.establishment.to_string())
            .bind(old.kind.code())
            .bind(&old.title)
            .bind(&old.body)
            .bind(created_by)
            .bind(now_ms)
            .bind(&old.unit)
            .bind(old.id.to_string())
            .execute(&mut *tx)
            .await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit(who, old.patient, &id, now_ms))
                .await?;
            tx.commit().await?;
            Ok(Some(parse_id(&id)?))
        })
    }

    async fn documents_where(&self, clause: &str, value: &str) -> Result<Vec<Document>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM documents WHERE {clause} = $1 ORDER BY created_at_ms DESC, id DESC"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(value)
                .fetch_all(pool)
                .await?;
            rows_to::<_, DocRow>(&rows)?
                .into_iter()
                .map(Document::try_from)
                .collect()
        })
    }

    /// One document.
    pub async fn document(&self, id: DocumentId) -> Result<Document> {
        let id = id.to_string();
        let id = id.as_str();
        self.documents_where("id", id)
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// The document filed under a unique id.
    pub async fn document_by_unique_id(&self, unique_id: &str) -> Result<Option<Document>> {
        Ok(self
            .documents_where("unique_id", unique_id)
            .await?
            .into_iter()
            .next())
    }

    /// A patient's documents, newest first.
    pub async fn documents_of_patient(&self, patient: PatientId) -> Result<Vec<Document>> {
        self.documents_where("patient_id", &patient.to_string())
            .await
    }

    /// An establishment's documents validated since `since_ms`, newest first.
    pub async fn validated_documents(
        &self,
        establishment: EstablishmentId,
        since_ms: i64,
    ) -> Result<Vec<Document>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM documents WHERE establishment_id = $1 AND status = 'validated' AND source = 'local' AND validated_at_ms >= $2 ORDER BY validated_at_ms DESC, id DESC"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.to_string())
                .bind(since_ms)
                .fetch_all(pool)
                .await?;
            rows_to::<_, DocRow>(&rows)?
                .into_iter()
                .map(Document::try_from)
                .collect()
        })
    }

    /// The stored content of a document: media type and bytes.
    pub async fn document_content(&self, id: DocumentId) -> Result<Option<(String, Vec<u8>)>> {
        let id = id.to_string();
        let id = id.as_str();
        on_pool!(self, read, |pool| {
            let row: Option<(Option<String>, Option<Vec<u8>>)> =
                sqlx::query_as("SELECT content_type, content FROM documents WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(match row {
                Some((Some(t), Some(c))) => Some((t, c)),
                _ => None,
            })
        })
    }

    /// Fills in the size and SHA-1 of the documents stored before they were
    /// written with the content, a hundred per transaction; how many. Found
    /// through a partial index, so that nothing to do costs nothing.
    pub async fn fill_document_digests(&self) -> Result<u64> {
        let mut filled = 0u64;
        loop {
            let done = on_pool!(self, write, |pool| {
                let mut tx = pool.begin_write().await?;
                let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, content FROM documents WHERE content IS NOT NULL AND content_sha1 IS NULL LIMIT 100",
                )
                .fetch_all(&mut *tx)
                .await?;
                for (id, content) in &rows {
                    let d = Digest::of(content);
                    sqlx::query(
                        "UPDATE documents SET content_size = $1, content_sha1 = $2 WHERE id = $3",
                    )
                    .bind(d.size_column())
                    .bind(&d.sha1)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                rows.len() as u64
            });
            if done == 0 {
                return Ok(filled);
            }
            filled += done;
        }
    }

    /// The recipients of documents of an establishment validated since
    /// `since_ms`, with their outbox messages' fate.
    pub async fn document_recipients(
        &self,
        establishment: EstablishmentId,
        since_ms: i64,
    ) -> Result<Vec<RecipientState>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                sqlx::AssertSqlSafe(format!(
                "{RECIPIENTS} JOIN documents d ON d.id = r.document_id \
                 WHERE d.establishment_id = $1 AND d.validated_at_ms >= $2 ORDER BY r.document_id, r.recipient"
            )),
            )
            .bind(establishment.to_string())
            .bind(since_ms)
            .fetch_all(pool)
            .await?;
            rows_to::<_, RecipientRow>(&rows)?
                .into_iter()
                .map(RecipientState::try_from)
                .collect()
        })
    }

    /// The recipients of one document.
    pub async fn recipients_of(&self, document_id: DocumentId) -> Result<Vec<RecipientState>> {
        let document_id = document_id.to_string();
        let document_id = document_id.as_str();
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{RECIPIENTS} WHERE r.document_id = $1 ORDER BY r.recipient"
            )))
            .bind(document_id)
            .fetch_all(pool)
            .await?;
            rows_to::<_, RecipientRow>(&rows)?
                .into_iter()
                .map(RecipientState::try_from)
                .collect()
        })
    }

    /// The recipients of several documents with one query per 256 documents
    /// (a list page shows each row's delivery state), by document then
    /// recipient.
    pub async fn recipients_of_documents(
        &self,
        documents: &[DocumentId],
    ) -> Result<Vec<RecipientState>> {
        let mut out = Vec::new();
        for chunk in documents.chunks(crate::tx::MAX_ROWS_PER_INSERT) {
            let list = crate::tx::in_list(chunk.len());
            let query = chunk.iter().fold(
                crate::tx::q_built(format!(
                    "{RECIPIENTS} WHERE r.document_id IN ({list}) ORDER BY r.document_id, r.recipient"
                )),
                |q, d| q.bind(d.to_string()),
            );
            let rows = on_pool!(self, read, |pool| {
                let mut conn = pool.acquire().await?;
                query.fetch_all(&mut conn.as_tx()).await?
            });
            for r in &rows {
                out.push(RecipientState::try_from(r.to::<RecipientRow>()?)?);
            }
        }
        Ok(out)
    }

    /// What is known of a patient's DMP (unknown, no opposition, when nothing is).
    pub async fn dmp_of(&self, patient: PatientId) -> Result<(DmpState, bool)> {
        on_pool!(self, read, |pool| {
            let row: Option<(String, i64)> =
                sqlx::query_as("SELECT state, opposition FROM patient_dmp WHERE patient_id = $1")
                    .bind(patient.to_string())
                    .fetch_optional(pool)
                    .await?;
            Ok(match row {
                Some((s, o)) => (DmpState::from_code(&s).unwrap_or(DmpState::Unknown), o != 0),
                None => (DmpState::Unknown, false),
            })
        })
    }

    /// The patient's consent to professionals consulting their DMP (PAM France
    /// ZFA-11): `None` when never collected.
    pub async fn dmp_consultation_consent(&self, patient: PatientId) -> Result<Option<bool>> {
        on_pool!(self, read, |pool| {
            let row: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT consultation_consent FROM patient_dmp WHERE patient_id = $1",
            )
            .bind(patient.to_string())
            .fetch_optional(pool)
            .await?;
            Ok(row.and_then(|r| r.0).map(|v| v != 0))
        })
    }

    /// Records a patient's DMP status and opposition.
    pub async fn set_dmp(
        &self,
        patient: PatientId,
        state: DmpState,
        opposition: bool,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO patient_dmp (patient_id, state, opposition, updated_at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (patient_id) DO UPDATE SET state = excluded.state, opposition = excluded.opposition, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(patient.to_string())
            .bind(state.code())
            .bind(i64::from(opposition))
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
