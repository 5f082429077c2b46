//! Orientation requests: creation with recipients, answers, confirmation and
//! cancellation under the domain's rules, each step in the request's timeline and
//! the audit trail (a request carries patient data).

use domain::audit::AuditActor;
use domain::orientation::{
    self as rules, Answer, OrientationError, RequestStatus, ResponseStatus, TargetType,
};
use domain::{EstablishmentId, OrientationId, PatientId, TerritoryId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::AsTx;
use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

/// A request to create.
#[derive(Debug, Clone)]
pub struct NewOrientation {
    /// The patient.
    pub patient: PatientId,
    /// Identity domain.
    pub territory: TerritoryId,
    /// The requesting establishment.
    pub from: EstablishmentId,
    /// SSR or HAD.
    pub target: TargetType,
    /// Clinical needs (free text).
    pub needs: String,
    /// Wished date (YYYY-MM-DD).
    pub wished_date: String,
    /// Urgent or not.
    pub urgent: bool,
    /// Establishments asked, in order.
    pub recipients: Vec<EstablishmentId>,
}

/// A recipient's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Establishment.
    pub establishment: EstablishmentId,
    /// Answer.
    pub status: ResponseStatus,
    /// Refusal reason.
    pub reason: Option<String>,
    /// When it answered.
    pub responded_at_ms: Option<i64>,
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrientationEvent {
    /// When.
    pub at_ms: i64,
    /// Who (user id).
    pub actor: String,
    /// For which establishment.
    pub establishment: EstablishmentId,
    /// `created`, `accepted`, `refused`, `confirmed`, `cancelled`.
    pub action: String,
    /// Details (reason...).
    pub detail: String,
}

/// A request with its recipients and timeline.
#[derive(Debug, Clone)]
pub struct Orientation {
    /// Id.
    pub id: OrientationId,
    /// Patient.
    pub patient: PatientId,
    /// Requesting establishment.
    pub from: EstablishmentId,
    /// SSR or HAD.
    pub target: TargetType,
    /// Needs.
    pub needs: String,
    /// Wished date.
    pub wished_date: String,
    /// Urgent.
    pub urgent: bool,
    /// State.
    pub status: RequestStatus,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Confirmed or cancelled (Unix ms).
    pub closed_at_ms: Option<i64>,
    /// Recipients in order.
    pub recipients: Vec<Recipient>,
    /// Timeline, oldest first.
    pub events: Vec<OrientationEvent>,
}

db_row! {
    struct RequestRow {
        id: String,
        patient_id: String,
        from_establishment_id: String,
        target: String,
        needs: String,
        wished_date: String,
        urgent: bool,
        status: String,
        created_at_ms: i64,
        closed_at_ms: Option<i64>,
    }
}
db_row! { struct RecipientRow { establishment_id: String, status: String, reason: Option<String>, responded_at_ms: Option<i64> } }
db_row! { struct EventRow { at_ms: i64, actor: String, establishment_id: String, action: String, detail: String } }

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// What a step changes, for [`Store::orientation_step`].
#[derive(Debug, Clone)]
pub enum Step {
    /// A recipient answers.
    Answer(EstablishmentId, Answer),
    /// The requester confirms this recipient.
    Confirm(EstablishmentId),
    /// The requester withdraws the request.
    Cancel,
}

/// What a step changes, decided by the rules (`domain::orientation`) before
/// anything is written.
struct Planned {
    /// Each recipient's status after the step.
    statuses: Vec<ResponseStatus>,
    /// The request's status after the step.
    request: RequestStatus,
    /// The timeline's action.
    action: &'static str,
    /// Whose step it is.
    establishment: EstablishmentId,
    /// The timeline's detail.
    detail: String,
    /// A refusal's reason.
    reason: Option<String>,
}

fn plan(current: &Orientation, step: &Step) -> Result<Planned> {
    let rule = |e: OrientationError| StoreError::Rule(domain::DomainError::from(e));
    let statuses: Vec<ResponseStatus> = current.recipients.iter().map(|r| r.status).collect();
    let position = |e: &EstablishmentId| {
        current
            .recipients
            .iter()
            .position(|r| r.establishment == *e)
            .ok_or_else(|| rule(OrientationError::Recipients))
    };
    Ok(match step {
        Step::Answer(e, a) => {
            let i = position(e)?;
            let was = statuses.get(i).copied().unwrap_or(ResponseStatus::Closed);
            let next = rules::answer(current.status, was, a).map_err(rule)?;
            let mut v = statuses.clone();
            if let Some(s) = v.get_mut(i) {
                *s = next;
            }
            let (action, reason) = match a {
                Answer::Accept => ("accepted", None),
                Answer::Refuse(r) => ("refused", Some(r.clone())),
            };
            Planned {
                statuses: v,
                request: RequestStatus::Open,
                action,
                establishment: *e,
                detail: reason.clone().unwrap_or_default(),
                reason,
            }
        }
        Step::Confirm(e) => Planned {
            statuses: rules::confirm(current.status, &statuses, position(e)?).map_err(rule)?,
            request: RequestStatus::Confirmed,
            action: "confirmed",
            establishment: *e,
            detail: String::new(),
            reason: None,
        },
        Step::Cancel => Planned {
            statuses: rules::cancel(current.status, &statuses).map_err(rule)?,
            request: RequestStatus::Cancelled,
            action: "cancelled",
            establishment: current.from,
            detail: String::new(),
            reason: None,
        },
    })
}

impl Store {
    /// Creates a request, its recipients and the first timeline step; audited as a
    /// clinical write on the patient.
    pub async fn create_orientation(
        &self,
        n: &NewOrientation,
        who: &AuditActor,
        actor: &str,
        now_ms: i64,
    ) -> Result<OrientationId> {
        if let Err(e) = rules::check_recipients(&n.recipients) {
            return Err(StoreError::Rule(domain::DomainError::from(e)));
        }
        let oid = OrientationId::new();
        let id = oid.to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO orientation_requests (id, patient_id, territory_id, from_establishment_id, created_by, target, needs, wished_date, urgent, status, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10)",
            )
            .bind(&id)
            .bind(n.patient.to_string())
            .bind(n.territory.to_string())
            .bind(n.from.to_string())
            .bind(actor)
            .bind(n.target.code())
            .bind(&n.needs)
            .bind(&n.wished_date)
            .bind(n.urgent)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            for (i, e) in n.recipients.iter().enumerate() {
                sqlx::query("INSERT INTO orientation_recipients (request_id, establishment_id, position, status) VALUES ($1, $2, $3, 'pending')")
                    .bind(&id)
                    .bind(e.to_string())
                    .bind(i as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("INSERT INTO orientation_events (id, request_id, at_ms, actor, establishment_id, action, detail) VALUES ($1, $2, $3, $4, $5, 'created', $6)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&id)
                .bind(now_ms)
                .bind(actor)
                .bind(n.from.to_string())
                .bind(format!("{} destinataire(s)", n.recipients.len()))
                .execute(&mut *tx)
                .await?;
            let audit = NewAudit {
                at_ms: now_ms,
                actor: who.clone(),
                patient: Some(n.patient.to_string()),
                action: "write-clinical".into(),
                resource: format!("ServiceRequest/{id}"),
                outcome: "success".into(),
            };
            crate::audit::append_audit(&mut tx.as_tx(), &audit).await?;
            tx.commit().await?;
            Ok(oid)
        })
    }

    /// One request with its recipients and timeline.
    pub async fn orientation(&self, id: OrientationId) -> Result<Orientation> {
        let id = id.to_string();
        let id = id.as_str();
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, patient_id, from_establishment_id, target, needs, wished_date, urgent, status, created_at_ms, closed_at_ms FROM orientation_requests WHERE id = $1",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let r = rows_to::<_, RequestRow>(&rows)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)?;
            let rec = sqlx::query("SELECT establishment_id, status, reason, responded_at_ms FROM orientation_recipients WHERE request_id = $1 ORDER BY position")
                .bind(id)
                .fetch_all(pool)
                .await?;
            let ev = sqlx::query("SELECT at_ms, actor, establishment_id, action, detail FROM orientation_events WHERE request_id = $1 ORDER BY at_ms, id")
                .bind(id)
                .fetch_all(pool)
                .await?;
            let recipients = rows_to::<_, RecipientRow>(&rec)?
                .into_iter()
                .map(|x| {
                    Ok(Recipient {
                        establishment: parse_id(&x.establishment_id)?,
                        status: ResponseStatus::from_code(&x.status)
                            .ok_or_else(|| corrupt("réponse"))?,
                        reason: x.reason,
                        responded_at_ms: x.responded_at_ms,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let events = rows_to::<_, EventRow>(&ev)?
                .into_iter()
                .map(|x| {
                    Ok(OrientationEvent {
                        at_ms: x.at_ms,
                        actor: x.actor,
                        establishment: parse_id(&x.establishment_id)?,
                        action: x.action,
                        detail: x.detail,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Orientation {
                id: parse_id(&r.id)?,
                patient: parse_id(&r.patient_id)?,
                from: parse_id(&r.from_establishment_id)?,
                target: TargetType::from_code(&r.target).ok_or_else(|| corrupt("cible"))?,
                needs: r.needs,
                wished_date: r.wished_date,
                urgent: r.urgent,
                status: RequestStatus::from_code(&r.status).ok_or_else(|| corrupt("statut"))?,
                created_at_ms: r.created_at_ms,
                closed_at_ms: r.closed_at_ms,
                recipients,
                events,
            })
        })
    }

    /// Ids of the requests sent by or addressed to these establishments, newest first.
    pub async fn orientations_of(
        &self,
        establishments: &[EstablishmentId],
    ) -> Result<Vec<OrientationId>> {
        let mut ids: Vec<(i64, String)> = Vec::new();
        for e in establishments {
            let found: Vec<(i64, String)> = on_pool!(self, read, |pool| {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT r.id, r.created_at_ms FROM orientation_requests r WHERE r.from_establishment_id = $1 \
                     OR r.id IN (SELECT request_id FROM orientation_recipients WHERE establishment_id = $1)",
                )
                .bind(e.to_string())
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<i64, _>("created_at_ms")?,
                            r.try_get::<String, _>("id")?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?
            });
            ids.extend(found);
        }
        ids.sort_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.into_iter().map(|(_, id)| parse_id(&id)).collect()
    }

    /// Applies a step under the rules, in one transaction that locks the request
    /// first; `Ok(Err(_))` is a refusal by the rules (nothing written).
    pub async fn orientation_step(
        &self,
        id: OrientationId,
        step: &Step,
        who: &AuditActor,
        actor: &str,
        now_ms: i64,
    ) -> Result<()> {
        let current = self.orientation(id).await?;
        let id = id.to_string();
        let id = id.as_str();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let lock = sqlx::query(
                "UPDATE orientation_requests SET status = status WHERE id = $1 AND status = $2",
            )
            .bind(id)
            .bind(current.status.code())
            .execute(&mut *tx)
            .await?;
            if lock.rows_affected() == 0 {
                return Err(StoreError::Rule(domain::DomainError::from(
                    OrientationError::NotOpen,
                )));
            }
            let Planned {
                statuses: new_statuses,
                request: request_status,
                action,
                establishment,
                detail,
                reason,
            } = plan(&current, step)?;
            for (r, s) in current.recipients.iter().zip(&new_statuses) {
                if *s != r.status {
                    let answered = matches!(step, Step::Answer(e, _) if *e == r.establishment);
                    sqlx::query(
                        "UPDATE orientation_recipients SET status = $1, reason = CASE WHEN $2 THEN $3 ELSE reason END, \
                         responded_at_ms = CASE WHEN $2 THEN $4 ELSE responded_at_ms END WHERE request_id = $5 AND establishment_id = $6",
                    )
                    .bind(s.code())
                    .bind(answered)
                    .bind(&reason)
                    .bind(now_ms)
                    .bind(id)
                    .bind(r.establishment.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if request_status != current.status {
                sqlx::query(
                    "UPDATE orientation_requests SET status = $1, closed_at_ms = $2 WHERE id = $3",
                )
                .bind(request_status.code())
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("INSERT INTO orientation_events (id, request_id, at_ms, actor, establishment_id, action, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(id)
                .bind(now_ms)
                .bind(actor)
                .bind(establishment.to_string())
                .bind(action)
                .bind(&detail)
                .execute(&mut *tx)
                .await?;
            let audit = NewAudit {
                at_ms: now_ms,
                actor: who.clone(),
                patient: Some(current.patient.to_string()),
                action: "write-clinical".into(),
                resource: format!("ServiceRequest/{id}"),
                outcome: "success".into(),
            };
            crate::audit::append_audit(&mut tx.as_tx(), &audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
