//! Remote monitoring in storage: enrolments, questionnaire responses with their
//! measures and the alerts they raised (one transaction, audited), and the triage
//! of alerts under the domain's rules, each step in the alert's timeline.

use domain::audit::AuditActor;
use domain::monitoring::{self as rules, AlertLevel, AlertStatus, TriageAction, TriageError};
pub use domain::monitoring::{Alert, Enrolment, Message};
use domain::{AlertId, EnrolmentId, EstablishmentId, PatientId};

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Result, Store, StoreError};

db_row! {
    struct EnrolmentRow { id: String, patient_id: String, establishment_id: String, programme_id: String, status: String, started_at_ms: i64, end_reason: Option<String> }
}

impl TryFrom<EnrolmentRow> for Enrolment {
    type Error = StoreError;
    fn try_from(r: EnrolmentRow) -> Result<Self> {
        Ok(Enrolment {
            id: parse_id(&r.id)?,
            patient: parse_id(&r.patient_id)?,
            establishment: parse_id(&r.establishment_id)?,
            programme: r.programme_id,
            status: r.status,
            started_at_ms: r.started_at_ms,
            end_reason: r.end_reason,
        })
    }
}

/// An enrolment to create.
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    /// Patient.
    pub patient: PatientId,
    /// Establishment following the patient.
    pub establishment: EstablishmentId,
    /// Programme id.
    pub programme: String,
    /// When consent was given (Unix ms).
    pub consent_at_ms: i64,
    /// Who enrolled (user id).
    pub created_by: String,
}

/// An alert to record with a response.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Level.
    pub level: AlertLevel,
    /// Item.
    pub item: String,
    /// Why.
    pub reason: String,
    /// What the patient was told.
    pub advice: String,
    /// The muting that silences it (then recorded as muted, never queued).
    pub mute: Option<String>,
}

db_row! {
    struct AlertRow {
        id: String,
        enrolment_id: String,
        patient_id: String,
        establishment_id: String,
        level: String,
        item: String,
        reason: String,
        status: String,
        raised_at_ms: i64,
        due_at_ms: i64,
        outcome: Option<String>,
        outcome_kind: Option<String>,
    }
}

fn status_code(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Open => "open",
        AlertStatus::Taken => "taken",
        AlertStatus::Escalated => "escalated",
        AlertStatus::Closed => "closed",
        AlertStatus::Muted => "muted",
    }
}

/// Reads an alert status code.
pub fn status_from_code(c: &str) -> Option<AlertStatus> {
    [
        AlertStatus::Open,
        AlertStatus::Taken,
        AlertStatus::Escalated,
        AlertStatus::Closed,
        AlertStatus::Muted,
    ]
    .into_iter()
    .find(|s| status_code(*s) == c)
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> Result<Self> {
        Ok(Alert {
            id: parse_id(&r.id)?,
            enrolment: parse_id(&r.enrolment_id)?,
            patient: parse_id(&r.patient_id)?,
            establishment: parse_id(&r.establishment_id)?,
            level: AlertLevel::from_code(&r.level)
                .ok_or_else(|| StoreError::Corrupt("niveau".into()))?,
            item: r.item,
            reason: r.reason,
            status: status_from_code(&r.status)
                .ok_or_else(|| StoreError::Corrupt("statut d'alerte".into()))?,
            raised_at_ms: r.raised_at_ms,
            due_at_ms: r.due_at_ms,
            outcome: r.outcome,
            outcome_kind: r
                .outcome_kind
                .map(|c| {
                    rules::Outcome::from_code(&c).ok_or_else(|| StoreError::Corrupt("issue".into()))
                })
                .transpose()?,
        })
    }
}

const ALERT_COLUMNS: &str = "id, enrolment_id, patient_id, establishment_id, level, item, reason, status, raised_at_ms, due_at_ms, outcome, outcome_kind";

fn audit(who: &AuditActor, patient: PatientId, resource: String, now_ms: i64) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: "write-clinical".into(),
        resource,
        outcome: "success".into(),
    }
}

/// A response to record: its answers, measures, alerts, the report to the
/// hospital and, for a device's measure, its source and time.
#[derive(Debug, Clone, Copy)]
pub struct ResponseWrite<'a> {
    /// Whose follow-up.
    pub enrolment: &'a Enrolment,
    /// The answers as QuestionnaireResponse items (JSON).
    pub answers_json: &'a str,
    /// The measures (item, value).
    pub measures: &'a [(String, f64)],
    /// The alerts raised.
    pub alerts: &'a [NewAlert],
    /// When the alerts are due (their SLA counted in the team's hours).
    pub due_at_ms: i64,
    /// The results for the hospital, sent with it.
    pub report: Option<&'a crate::outbox::NewMessage>,
    /// A device's measure: its source and time.
    pub measured: Option<Measured<'a>>,
    /// Who.
    pub who: &'a AuditActor,
}

/// Inserts a response, its measures, alerts, report and audit entry inside an
/// open transaction; (response id, alert ids).
pub(crate) async fn insert_response(
    tx: &mut Tx<'_>,
    r: &ResponseWrite<'_>,
    now_ms: i64,
) -> Result<(String, Vec<AlertId>)> {
    let response = uuid::Uuid::now_v7().to_string();
    let at_ms = r.measured.map_or(now_ms, |m| m.at_ms);
    let e = r.enrolment;
    q("INSERT INTO questionnaire_responses (id, enrolment_id, patient_id, submitted_at_ms, answers, source, filed_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&response)
        .bind(e.id.to_string())
        .bind(e.patient.to_string())
        .bind(at_ms)
        .bind(r.answers_json)
        .bind(r.measured.map(|m| m.source))
        .bind(now_ms)
        .execute(tx)
        .await?;
    // The measures in one statement (a questionnaire gives several).
    let patient = e.patient.to_string();
    crate::tx::insert_many(
        tx,
        "INSERT INTO measures (patient_id, item, at_ms, value, response_id) VALUES ",
        "",
        5,
        r.measures,
        |query, (item, value)| {
            query
                .bind(patient.as_str())
                .bind(item.as_str())
                .bind(at_ms)
                .bind(*value)
                .bind(response.as_str())
        },
    )
    .await?;
    let mut ids = Vec::with_capacity(r.alerts.len());
    for a in r.alerts {
        let alert = AlertId::new();
        let id = alert.to_string();
        let status = if a.mute.is_some() { "muted" } else { "open" };
        q("INSERT INTO alerts (id, enrolment_id, patient_id, establishment_id, response_id, level, item, reason, advice, status, raised_at_ms, due_at_ms, mute_id) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(&id)
            .bind(e.id.to_string())
            .bind(e.patient.to_string())
            .bind(e.establishment.to_string())
            .bind(&response)
            .bind(a.level.code())
            .bind(&a.item)
            .bind(&a.reason)
            .bind(&a.advice)
            .bind(status)
            .bind(now_ms)
            .bind(r.due_at_ms)
            .bind(&a.mute)
            .execute(tx)
            .await?;
        q("INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) VALUES ($1, $2, $3, 'system', 'raised', $4)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&id)
            .bind(now_ms)
            .bind(&a.reason)
            .execute(tx)
            .await?;
        if let Some(mute) = &a.mute {
            q(
                "INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) \
               SELECT $1, $2, $3, 'system', 'muted', reason FROM alert_mutes WHERE id = $4",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&id)
            .bind(now_ms)
            .bind(mute)
            .execute(tx)
            .await?;
        }
        ids.push(alert);
    }
    let resource = match r.measured {
        None => format!("QuestionnaireResponse/{response}"),
        Some(_) => format!("Observation/{response}-0"),
    };
    crate::audit::append_audit(tx, &audit(r.who, e.patient, resource, now_ms)).await?;
    if let Some(m) = r.report {
        let _new = crate::outbox::enqueue_in(tx, m, now_ms).await?;
    }
    Ok((response, ids))
}

/// Inserts an enrolment and its audit entry inside an open transaction; its id.
pub(crate) async fn insert_enrolment(
    tx: &mut Tx<'_>,
    n: &NewEnrolment,
    who: &AuditActor,
    now_ms: i64,
) -> Result<EnrolmentId> {
    let enrolment = EnrolmentId::new();
    let id = enrolment.to_string();
    q(
        "INSERT INTO enrolments (id, patient_id, establishment_id, programme_id, status, consent_at_ms, started_at_ms, created_by) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)",
    )
    .bind(&id)
    .bind(n.patient.to_string())
    .bind(n.establishment.to_string())
    .bind(&n.programme)
    .bind(n.consent_at_ms)
    .bind(now_ms)
    .bind(&n.created_by)
    .execute(tx)
    .await?;
    crate::audit::append_audit(
        &mut tx.as_tx(),
        &audit(who, n.patient, format!("CarePlan/{id}"), now_ms),
    )
    .await?;
    Ok(enrolment)
}

impl Store {
    /// Enrols a patient in a programme, consent recorded.
    pub async fn enrol(
        &self,
        n: &NewEnrolment,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<EnrolmentId> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let id = crate::monitoring::insert_enrolment(&mut tx.as_tx(), n, who, now_ms).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A patient's enrolments, newest first.
    pub async fn enrolments_of(&self, patient: PatientId) -> Result<Vec<Enrolment>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, patient_id, establishment_id, programme_id, status, started_at_ms, end_reason FROM enrolments WHERE patient_id = $1 ORDER BY started_at_ms DESC",
            )
            .bind(patient.to_string())
            .fetch_all(pool)
            .await?;
            rows_to::<_, EnrolmentRow>(&rows)?
                .into_iter()
                .map(Enrolment::try_from)
                .collect()
        })
    }

    /// Earlier measures of an item for a patient since `since_ms`, oldest first.
    pub async fn measures(
        &self,
        patient: PatientId,
        item: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, f64)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query("SELECT at_ms, value FROM measures WHERE patient_id = $1 AND item = $2 AND at_ms >= $3 ORDER BY at_ms")
                .bind(patient.to_string())
                .bind(item)
                .bind(since_ms)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("at_ms")?, r.try_get("value")?)))
                .collect()
        })
    }

    /// Records a response, its measures and the alerts it raised, in one transaction
    /// (audited). Alerts are due at `due_at_ms`. A measure sent by a device
    /// (`measured`) is dated when it was measured. Returns (response id, alert ids).
    pub async fn submit_response(
        &self,
        r: &ResponseWrite<'_>,
        now_ms: i64,
    ) -> Result<(String, Vec<AlertId>)> {
        match self
            .apply_writes(&[crate::bundle::Write::Response(*r)], now_ms)
            .await
            .map_err(|e| e.error)?
            .pop()
        {
            Some(crate::bundle::Written::Response(id, alerts)) => Ok((id, alerts)),
            _ => Err(StoreError::Corrupt("réponse non enregistrée".into())),
        }
    }

    /// The alerts of establishments not yet closed (nor muted): most serious first, then oldest.
    pub async fn alert_queue(&self, establishment: EstablishmentId) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE establishment_id = $1 AND status NOT IN ('closed', 'muted') ORDER BY raised_at_ms"
        );
        let mut list: Vec<Alert> = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, AlertRow>(&rows)?
                .into_iter()
                .map(Alert::try_from)
                .collect::<Result<Vec<_>>>()?
        });
        list.sort_by_key(|a| (std::cmp::Reverse(a.level), a.raised_at_ms));
        Ok(list)
    }

    /// A page of the queue of `establishments` (the alerts not yet closed
    /// nor muted, most serious first, then oldest, as [`Store::alert_queue`]
    /// orders each establishment's): at most `limit` alerts from rank
    /// `offset`, and how many the whole queue holds. The database sorts and
    /// pages: read whole, a queue of 1,000 alerts cost its 1,000 rows at
    /// each refresh of a page that shows fifty.
    pub async fn alert_queue_page(
        &self,
        establishments: &[EstablishmentId],
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Alert>, usize)> {
        if establishments.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let list = crate::tx::in_list(establishments.len());
        let open = format!("establishment_id IN ({list}) AND status NOT IN ('closed', 'muted')");
        let n = establishments.len();
        let page = crate::tx::q_built(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {open} \
             ORDER BY CASE level WHEN 'urgent' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, raised_at_ms, id \
             LIMIT +${} OFFSET +${}",
            n + 1,
            n + 2
        ));
        let count = crate::tx::q_built(format!("SELECT COUNT(*) AS n FROM alerts WHERE {open}"));
        let bind = |q: crate::tx::Q| establishments.iter().fold(q, |q, e| q.bind(e.to_string()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (rows, total) = on_pool!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            let rows = bind(page)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut conn.as_tx())
                .await?;
            let total = bind(count)
                .fetch_one(&mut conn.as_tx())
                .await?
                .get::<i64>("n")?;
            (rows, total)
        });
        let alerts = crate::tx::rows_to::<AlertRow>(&rows)?
            .into_iter()
            .map(Alert::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((alerts, usize::try_from(total).unwrap_or(0)))
    }

    /// A patient's alerts, newest first (open and closed).
    pub async fn alerts_of(&self, patient: PatientId) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE patient_id = $1 ORDER BY raised_at_ms DESC, id DESC"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, AlertRow>(&rows)?
                .into_iter()
                .map(Alert::try_from)
                .collect::<Result<Vec<_>>>()
        })
    }

    /// One alert.
    pub async fn alert(&self, id: AlertId) -> Result<Alert> {
        let id = id.to_string();
        let id = id.as_str();
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows_to::<_, AlertRow>(&rows)?
                .into_iter()
                .next()
                .map(Alert::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// An alert's timeline: (time, actor, action, note), oldest first.
    pub async fn alert_events(&self, id: AlertId) -> Result<Vec<(i64, String, String, String)>> {
        let id = id.to_string();
        let id = id.as_str();
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query("SELECT at_ms, actor, action, note FROM alert_events WHERE alert_id = $1 ORDER BY at_ms, id")
                .bind(id)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("at_ms")?,
                        r.try_get("actor")?,
                        r.try_get("action")?,
                        r.try_get("note")?,
                    ))
                })
                .collect()
        })
    }

    /// Applies a triage action under the rules (the alert must still be in the state
    /// read, else the step is refused; closing needs its `outcome`), traced and
    /// audited. `report`, if any, is enqueued in the outbox in the same
    /// transaction (the ORU sent on closing: it leaves if and only if the alert
    /// is closed).
    #[allow(clippy::too_many_arguments)]
    pub async fn triage_alert(
        &self,
        id: AlertId,
        action: &TriageAction,
        outcome: Option<rules::Outcome>,
        who: &AuditActor,
        actor: &str,
        report: Option<&crate::outbox::NewMessage>,
        now_ms: i64,
    ) -> Result<AlertStatus> {
        let current = self.alert(id).await?;
        let id = id.to_string();
        let id = id.as_str();
        let next = match rules::check_outcome(action, outcome)
            .and_then(|()| rules::triage(current.status, action))
        {
            Ok(n) => n,
            Err(e) => return Err(StoreError::Rule(domain::DomainError::from(e))),
        };
        let (name, note) = match action {
            TriageAction::Take => ("taken", String::new()),
            TriageAction::CallBack(n) => ("called_back", n.clone()),
            TriageAction::Advise(n) => ("advised", n.clone()),
            TriageAction::Escalate(n) => ("escalated", n.clone()),
            TriageAction::Close(n) => ("closed", n.clone()),
        };
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query(
                "UPDATE alerts SET status = $1, closed_at_ms = CASE WHEN $1 = 'closed' THEN $2 ELSE closed_at_ms END, \
                 outcome = CASE WHEN $1 = 'closed' THEN $3 ELSE outcome END, \
                 outcome_kind = CASE WHEN $1 = 'closed' THEN $6 ELSE outcome_kind END WHERE id = $4 AND status = $5",
            )
            .bind(status_code(next))
            .bind(now_ms)
            .bind(&note)
            .bind(id)
            .bind(status_code(current.status))
            .bind(outcome.map(rules::Outcome::code))
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::Rule(domain::DomainError::from(
                    TriageError::NotNow,
                )));
            }
            sqlx::query("INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(id)
                .bind(now_ms)
                .bind(actor)
                .bind(name)
                .bind(&note)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, current.patient, format!("Task/{id}"), now_ms),
            )
            .await?;
            if let Some(m) = report {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            tx.commit().await?;
            Ok(next)
        })
    }

    /// Adds a step by the system to an alert's timeline (`notified`: who was
    /// told of an escalation, and how), with the notice to send, if any, in
    /// the same transaction.
    pub async fn note_alert(
        &self,
        id: AlertId,
        action: &str,
        note: &str,
        notice: Option<&crate::outbox::NewMessage>,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            q("INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) VALUES ($1, $2, $3, 'system', $4, $5)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(id.to_string())
                .bind(now_ms)
                .bind(action)
                .bind(note)
                .execute(&mut tx.as_tx())
                .await?;
            if let Some(m) = notice {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Escalates every open alert past its due time (the SLA); returns their ids.
    pub async fn escalate_overdue(&self, now_ms: i64) -> Result<Vec<AlertId>> {
        on_pool!(self, write, |pool| {
            use sqlx::Row;
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query("UPDATE alerts SET status = 'escalated' WHERE status = 'open' AND due_at_ms < $1 RETURNING id")
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?;
            let ids: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<std::result::Result<_, _>>()?;
            for id in &ids {
                sqlx::query(
                    "INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) VALUES ($1, $2, $3, 'system', 'escalated', 'délai de traitement dépassé')",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            ids.iter().map(|s| parse_id(s)).collect()
        })
    }
}

/// A stored questionnaire response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Id.
    pub id: String,
    /// Enrolment.
    pub enrolment: EnrolmentId,
    /// Programme id.
    pub programme: String,
    /// Submitted (Unix ms).
    pub submitted_at_ms: i64,
    /// The answers (FHIR QuestionnaireResponse items, JSON).
    pub answers: String,
    /// The device or laboratory that sent it as an Observation (`None`: a
    /// questionnaire answered).
    pub source: Option<String>,
    /// When Parcours stored it (Unix ms).
    pub filed_at_ms: i64,
}

/// A measure sent by a device or a laboratory (not a questionnaire answered).
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// Who sent it (the device's or laboratory's name, or the client's).
    pub source: &'a str,
    /// When it was measured (Unix ms).
    pub at_ms: i64,
}

db_row! { struct ResponseRow { id: String, enrolment_id: String, programme_id: String, submitted_at_ms: i64, answers: String, source: Option<String>, filed_at_ms: i64 } }

fn stored_response(r: ResponseRow) -> Result<StoredResponse> {
    Ok(StoredResponse {
        id: r.id,
        enrolment: parse_id(&r.enrolment_id)?,
        programme: r.programme_id,
        submitted_at_ms: r.submitted_at_ms,
        answers: r.answers,
        source: r.source,
        filed_at_ms: r.filed_at_ms,
    })
}

impl Store {
    /// One questionnaire response.
    pub async fn response(&self, id: &str) -> Result<StoredResponse> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT r.id, r.enrolment_id, e.programme_id, r.submitted_at_ms, r.answers, r.source, COALESCE(r.filed_at_ms, r.submitted_at_ms) AS filed_at_ms FROM questionnaire_responses r \
                 JOIN enrolments e ON e.id = r.enrolment_id WHERE r.id = $1",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            rows_to::<_, ResponseRow>(&rows)?
                .into_iter()
                .next()
                .map(stored_response)
                .ok_or(StoreError::NotFound)?
        })
    }

    /// One enrolment.
    pub async fn enrolment(&self, id: EnrolmentId) -> Result<Enrolment> {
        let id = id.to_string();
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, patient_id, establishment_id, programme_id, status, started_at_ms, end_reason FROM enrolments WHERE id = $1",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            rows_to::<_, EnrolmentRow>(&rows)?
                .into_iter()
                .next()
                .map(Enrolment::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// A patient's questionnaire responses, newest first.
    pub async fn responses_of(&self, patient: PatientId) -> Result<Vec<StoredResponse>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT r.id, r.enrolment_id, e.programme_id, r.submitted_at_ms, r.answers, r.source, COALESCE(r.filed_at_ms, r.submitted_at_ms) AS filed_at_ms FROM questionnaire_responses r \
                 JOIN enrolments e ON e.id = r.enrolment_id WHERE r.patient_id = $1 ORDER BY r.submitted_at_ms DESC, r.id DESC",
            )
            .bind(patient.to_string())
            .fetch_all(pool)
            .await?;
            Ok(rows_to::<_, ResponseRow>(&rows)?
                .into_iter()
                .map(stored_response)
                .collect::<Result<Vec<_>>>()?)
        })
    }
}

impl Store {
    /// Ends an active enrolment with a reason (audited); `Ok(false)` if it was not active.
    pub async fn end_enrolment(
        &self,
        id: EnrolmentId,
        reason: &str,
        report: Option<&crate::outbox::NewMessage>,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            use sqlx::Row;
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query("UPDATE enrolments SET status = 'ended', ended_at_ms = $1, end_reason = $2 WHERE id = $3 AND status = 'active' RETURNING patient_id")
                .bind(now_ms)
                .bind(reason)
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else { return Ok(false) };
            let patient: PatientId = parse_id(&row.try_get::<String, _>("patient_id")?)?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, patient, format!("CarePlan/{id}"), now_ms),
            )
            .await?;
            if let Some(m) = report {
                let _new = crate::outbox::enqueue_in(&mut tx.as_tx(), m, now_ms).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

impl Store {
    /// An establishment's alerts raised since `since_ms`, with their programme and
    /// the time of the first action by a person (the dashboard's raw facts).
    pub async fn alert_facts(
        &self,
        establishment: EstablishmentId,
        since_ms: i64,
    ) -> Result<Vec<(String, rules::AlertFact)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT e.programme_id, a.level, a.raised_at_ms, a.due_at_ms, a.outcome_kind, \
                 (SELECT MIN(v.at_ms) FROM alert_events v WHERE v.alert_id = a.id AND v.action <> 'raised' AND v.actor <> 'system') AS handled_at_ms \
                 FROM alerts a JOIN enrolments e ON e.id = a.enrolment_id \
                 WHERE a.establishment_id = $1 AND a.raised_at_ms >= $2 AND a.status <> 'muted'",
            )
            .bind(establishment.to_string())
            .bind(since_ms)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let level: String = r.try_get("level")?;
                    Ok((
                        r.try_get("programme_id")?,
                        rules::AlertFact {
                            level: AlertLevel::from_code(&level)
                                .ok_or_else(|| StoreError::Corrupt("niveau".into()))?,
                            raised_ms: r.try_get("raised_at_ms")?,
                            due_ms: r.try_get("due_at_ms")?,
                            handled_ms: r.try_get("handled_at_ms")?,
                            outcome: r
                                .try_get::<Option<String>, _>("outcome_kind")?
                                .and_then(|c| rules::Outcome::from_code(&c)),
                        },
                    ))
                })
                .collect()
        })
    }

    /// Patients followed now by an establishment, per programme.
    pub async fn active_enrolments(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<(String, i64)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT programme_id, COUNT(DISTINCT patient_id) AS n FROM enrolments \
                 WHERE establishment_id = $1 AND status = 'active' GROUP BY programme_id ORDER BY programme_id",
            )
            .bind(establishment.to_string())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("programme_id")?, r.try_get("n")?)))
                .collect()
        })
    }
}

/// An enrolment proposed by an ADT event in a configured unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Id.
    pub id: String,
    /// Patient.
    pub patient: PatientId,
    /// Establishment.
    pub establishment: EstablishmentId,
    /// Programme id.
    pub programme: String,
    /// Why ("Sortie en HDJ-ONCO (A03)").
    pub reason: String,
    /// When (Unix ms).
    pub created_at_ms: i64,
}

db_row! { struct ProposalRow { id: String, patient_id: String, establishment_id: String, programme_id: String, reason: String, created_at_ms: i64 } }

impl Store {
    /// An establishment's open proposals, oldest first.
    pub async fn proposals(&self, establishment: EstablishmentId) -> Result<Vec<Proposal>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, patient_id, establishment_id, programme_id, reason, created_at_ms FROM enrolment_proposals \
                 WHERE establishment_id = $1 AND status = 'proposed' ORDER BY created_at_ms, id",
            )
            .bind(establishment.to_string())
            .fetch_all(pool)
            .await?;
            rows_to::<_, ProposalRow>(&rows)?
                .into_iter()
                .map(|r| {
                    Ok(Proposal {
                        id: r.id,
                        patient: parse_id(&r.patient_id)?,
                        establishment: parse_id(&r.establishment_id)?,
                        programme: r.programme_id,
                        reason: r.reason,
                        created_at_ms: r.created_at_ms,
                    })
                })
                .collect()
        })
    }

    /// Decides an open proposal: accepted, the patient is enrolled (consent given
    /// now) in the same transaction; declined, it is closed. `Ok(None)` if it was
    /// no longer open; else the enrolment's id when accepted.
    pub async fn decide_proposal(
        &self,
        p: &Proposal,
        accept: bool,
        by: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<Option<Option<EnrolmentId>>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let r = sqlx::query("UPDATE enrolment_proposals SET status = $1, decided_at_ms = $2, decided_by = $3 WHERE id = $4 AND status = 'proposed'")
                .bind(if accept { "accepted" } else { "declined" })
                .bind(now_ms)
                .bind(by)
                .bind(&p.id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(None);
            }
            let enrolment = if accept {
                let n = NewEnrolment {
                    patient: p.patient,
                    establishment: p.establishment,
                    programme: p.programme.clone(),
                    consent_at_ms: now_ms,
                    created_by: by.to_owned(),
                };
                Some(crate::monitoring::insert_enrolment(&mut tx.as_tx(), &n, who, now_ms).await?)
            } else {
                None
            };
            tx.commit().await?;
            Ok(Some(enrolment))
        })
    }
}

/// A file a patient sent (a photo with an alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Id.
    pub id: String,
    /// Whose record it belongs to.
    pub patient: PatientId,
    /// `image/jpeg`, `image/png`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

db_row! { struct MessageRow { id: String, enrolment_id: String, patient_id: String, from_patient: bool, author: String, body: String, at_ms: i64, read_at_ms: Option<i64> } }

impl Store {
    /// An alert raised by the patient (symptom, their words, an optional photo),
    /// with its first timeline step, in one audited transaction; its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_patient_alert(
        &self,
        enrolment: &Enrolment,
        alert: &NewAlert,
        photo: Option<(&str, &[u8])>,
        author: &str,
        due_at_ms: i64,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<AlertId> {
        let alert_id = AlertId::new();
        let id = alert_id.to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let attachment = match photo {
                Some((content_type, bytes)) => {
                    let a = uuid::Uuid::now_v7().to_string();
                    sqlx::query("INSERT INTO attachments (id, patient_id, content_type, size, bytes, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(&a)
                        .bind(enrolment.patient.to_string())
                        .bind(content_type)
                        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
                        .bind(bytes)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    Some(a)
                }
                None => None,
            };
            sqlx::query(
                "INSERT INTO alerts (id, enrolment_id, patient_id, establishment_id, level, item, reason, advice, status, raised_at_ms, due_at_ms, attachment_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10, $11)",
            )
            .bind(&id)
            .bind(enrolment.id.to_string())
            .bind(enrolment.patient.to_string())
            .bind(enrolment.establishment.to_string())
            .bind(alert.level.code())
            .bind(&alert.item)
            .bind(&alert.reason)
            .bind(&alert.advice)
            .bind(now_ms)
            .bind(due_at_ms)
            .bind(&attachment)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO alert_events (id, alert_id, at_ms, actor, action, note) VALUES ($1, $2, $3, $4, 'raised', $5)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&id)
                .bind(now_ms)
                .bind(author)
                .bind(&alert.reason)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, enrolment.patient, format!("Flag/{id}"), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(alert_id)
        })
    }

    /// Keeps a file of a patient's record (a photo or PDF shared in a
    /// consultation), audited; its id.
    pub async fn save_attachment(
        &self,
        patient: PatientId,
        content_type: &str,
        bytes: &[u8],
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("INSERT INTO attachments (id, patient_id, content_type, size, bytes, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(patient.to_string())
                .bind(content_type)
                .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
                .bind(bytes)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(who, patient, format!("Binary/{id}"), now_ms),
            )
            .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The photo sent with an alert, if any (its id).
    pub async fn alert_attachment(&self, alert: AlertId) -> Result<Option<String>> {
        let alert = alert.to_string();
        on_pool!(self, read, |pool| {
            let id: Option<Option<String>> =
                sqlx::query_scalar("SELECT attachment_id FROM alerts WHERE id = $1")
                    .bind(&alert)
                    .fetch_optional(pool)
                    .await?;
            Ok(id.flatten())
        })
    }

    /// One attachment.
    pub async fn attachment(&self, id: &str) -> Result<Attachment> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let row = sqlx::query(
                "SELECT id, patient_id, content_type, bytes FROM attachments WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(Attachment {
                id: row.try_get("id")?,
                patient: parse_id(&row.try_get::<String, _>("patient_id")?)?,
                content_type: row.try_get("content_type")?,
                bytes: row.try_get("bytes")?,
            })
        })
    }

    /// Adds a message to an enrolment's thread (audited as a clinical write).
    pub async fn post_message(
        &self,
        enrolment: &Enrolment,
        from_patient: bool,
        author: &str,
        body: &str,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<String> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO messages (id, enrolment_id, patient_id, establishment_id, from_patient, author, body, at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&id)
            .bind(enrolment.id.to_string())
            .bind(enrolment.patient.to_string())
            .bind(enrolment.establishment.to_string())
            .bind(from_patient)
            .bind(author)
            .bind(body)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_audit(
                &mut tx.as_tx(),
                &audit(
                    who,
                    enrolment.patient,
                    format!("Communication/{id}"),
                    now_ms,
                ),
            )
            .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Whose record a message belongs to.
    pub async fn message_patient(&self, id: &str) -> Result<PatientId> {
        let found: Option<String> = on_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT patient_id FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        parse_id(&found.ok_or(StoreError::NotFound)?)
    }

    /// The messages of a patient (every thread), oldest first.
    pub async fn messages_of(&self, patient: PatientId) -> Result<Vec<Message>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, enrolment_id, patient_id, from_patient, author, body, at_ms, read_at_ms FROM messages \
                 WHERE patient_id = $1 ORDER BY at_ms, id",
            )
            .bind(patient.to_string())
            .fetch_all(pool)
            .await?;
            rows_to::<_, MessageRow>(&rows)?
                .into_iter()
                .map(|r| {
                    Ok(Message {
                        id: r.id,
                        enrolment: parse_id(&r.enrolment_id)?,
                        patient: parse_id(&r.patient_id)?,
                        from_patient: r.from_patient,
                        author: r.author,
                        body: r.body,
                        at_ms: r.at_ms,
                        read_at_ms: r.read_at_ms,
                    })
                })
                .collect()
        })
    }

    /// Marks read the messages of a thread written by the other side.
    pub async fn mark_read(
        &self,
        enrolment: EnrolmentId,
        written_by_patient: bool,
        now_ms: i64,
    ) -> Result<()> {
        let enrolment = enrolment.to_string();
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE messages SET read_at_ms = $1 WHERE enrolment_id = $2 AND from_patient = $3 AND read_at_ms IS NULL")
                .bind(now_ms)
                .bind(&enrolment)
                .bind(written_by_patient)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Threads of an establishment with patients' messages not yet read by the
    /// team: (enrolment, patient, unread count, last message time), oldest first.
    pub async fn unread_threads(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<(EnrolmentId, PatientId, i64, i64)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT enrolment_id, patient_id, COUNT(*) AS n, MAX(at_ms) AS last_at FROM messages \
                 WHERE establishment_id = $1 AND from_patient = $2 AND read_at_ms IS NULL \
                 GROUP BY enrolment_id, patient_id ORDER BY MIN(at_ms)",
            )
            .bind(establishment.to_string())
            .bind(true)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        parse_id(&r.try_get::<String, _>("enrolment_id")?)?,
                        parse_id(&r.try_get::<String, _>("patient_id")?)?,
                        r.try_get("n")?,
                        r.try_get("last_at")?,
                    ))
                })
                .collect()
        })
    }
}

impl Store {
    /// Every active enrolment with the time of its last response.
    pub async fn active_enrolments_with_last_response(
        &self,
    ) -> Result<Vec<(Enrolment, Option<i64>)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT e.id, e.patient_id, e.establishment_id, e.programme_id, e.status, e.started_at_ms, e.end_reason, \
                 (SELECT MAX(r.submitted_at_ms) FROM questionnaire_responses r WHERE r.enrolment_id = e.id AND r.source IS NULL) AS last_ms \
                 FROM enrolments e WHERE e.status = 'active' ORDER BY e.id",
            )
            .fetch_all(pool)
            .await?;
            let last: Vec<Option<i64>> = rows
                .iter()
                .map(|r| r.try_get("last_ms"))
                .collect::<std::result::Result<_, _>>()?;
            rows_to::<_, EnrolmentRow>(&rows)?
                .into_iter()
                .zip(last)
                .map(|(r, l)| Ok((Enrolment::try_from(r)?, l)))
                .collect()
        })
    }
}
