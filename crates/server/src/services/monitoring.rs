//! Remote monitoring use cases: the shipped programmes, and a patient's (or a
//! nurse's) questionnaire submission: answers checked against the questionnaire,
//! graded by the programme's rules with the patient's earlier measures for trends,
//! stored with the alerts in one transaction, and the advice to show at once.

use std::sync::OnceLock;

use domain::audit::AuditActor;
use domain::monitoring::{AnswerValue, Triggered, evaluate, immediate_advice};
use domain::policy::{Actor, Decision, PatientAction, authorize_patient};
use interop::programme::{ItemKind, Programme};
use store::monitoring::{Enrolment, NewAlert};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::patients;

static PROGRAMMES: OnceLock<Vec<Programme>> = OnceLock::new();

/// The programmes in force: the shipped ones, plus or replaced by those of the
/// configured folder once [`load_programmes`] ran (a broken shipped file is a
/// build defect: tests check them).
pub fn programmes() -> &'static [Programme] {
    PROGRAMMES.get_or_init(|| {
        interop::programme::builtin()
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    })
}

/// Reads the programme files of `dir` (`*.json`, each checked) over the shipped
/// ones, a file replacing the shipped programme of the same id. Call it at start,
/// before any use; every error names its file. Returns the programme ids in force.
pub fn load_programmes(dir: Option<&std::path::Path>) -> Result<Vec<String>, String> {
    let mut all: Vec<Programme> = interop::programme::builtin()
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if let Some(dir) = dir {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("dossier des programmes {} : {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{} : {e}", f.display()))?;
            let p =
                interop::programme::parse(&text).map_err(|e| format!("{} : {e}", f.display()))?;
            all.retain(|q| q.id != p.id);
            all.push(p);
        }
    }
    let ids: Vec<String> = all.iter().map(|p| p.id.clone()).collect();
    match PROGRAMMES.set(all) {
        Ok(()) => Ok(ids),
        // Already loaded in this process: fine if it is the same set.
        Err(_) if programmes().iter().map(|p| &p.id).eq(ids.iter()) => Ok(ids),
        Err(_) => Err("les programmes sont déjà chargés : chargez-les au démarrage".into()),
    }
}

/// A programme by id.
pub fn programme(id: &str) -> Option<&'static Programme> {
    programmes().iter().find(|p| p.id == id)
}

/// The short name of an item for people ("Diarrhée"), looked up in the shipped
/// programmes (an item id means the same thing in every programme); the id itself
/// if no programme has it.
pub fn item_label(link_id: &str) -> String {
    programmes()
        .iter()
        .flat_map(|p| &p.items)
        .find(|i| i.link_id == link_id)
        .map_or_else(|| link_id.to_owned(), |i| i.label.clone())
}

/// What a submission produced.
#[derive(Debug)]
pub struct Submitted {
    /// The stored QuestionnaireResponse's id.
    pub response: String,
    /// The alerts raised, most serious first.
    pub alerts: Vec<Triggered>,
    /// What to tell the patient at once (urgent alerts).
    pub advice: Option<String>,
}

/// Reads the form's answers against the questionnaire: every item answered, grades
/// within the scale, measures as numbers (comma or point), yes/no as `oui`/`non`.
pub fn read_answers(
    p: &Programme,
    form: &[(String, String)],
) -> Result<Vec<(String, AnswerValue)>, AppError> {
    let bad = |m: String| AppError::Unprocessable("business-rule", m);
    let mut out = Vec::with_capacity(p.items.len());
    for item in &p.items {
        let raw = form
            .iter()
            .find(|(k, _)| *k == item.link_id)
            .map(|(_, v)| v.trim())
            .unwrap_or("");
        if raw.is_empty() {
            return Err(bad(format!("répondez à la question « {} »", item.text)));
        }
        let value = match item.kind {
            ItemKind::Grade(max) => match raw.parse::<u8>() {
                Ok(g) if g <= max => AnswerValue::Grade(g),
                _ => return Err(bad(format!("réponse invalide à « {} »", item.text))),
            },
            ItemKind::Number => match raw.replace(',', ".").parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => AnswerValue::Number(v),
                _ => return Err(bad(format!("« {} » : un nombre est attendu", item.text))),
            },
            ItemKind::Bool => match raw {
                "oui" => AnswerValue::Bool(true),
                "non" => AnswerValue::Bool(false),
                _ => return Err(bad(format!("« {} » : oui ou non", item.text))),
            },
            ItemKind::Text => AnswerValue::Text(raw.chars().take(2000).collect()),
        };
        out.push((item.link_id.clone(), value));
    }
    Ok(out)
}

/// The answers as FHIR QuestionnaireResponse items (what is stored, and served back).
pub fn response_items(p: &Programme, answers: &[(String, AnswerValue)]) -> serde_json::Value {
    use serde_json::json;
    let items: Vec<serde_json::Value> = answers
        .iter()
        .map(|(link, v)| {
            let item = p.items.iter().find(|i| i.link_id == *link);
            let text = item.map(|i| i.text.clone()).unwrap_or_default();
            let answer = match v {
                AnswerValue::Grade(g) => {
                    let display = item.and_then(|i| i.options.get(usize::from(*g)).cloned()).unwrap_or_default();
                    json!({"valueCoding": {"system": interop::programme::GRADE_SYSTEM, "code": g.to_string(), "display": display}})
                }
                AnswerValue::Number(x) => json!({"valueDecimal": x}),
                AnswerValue::Bool(b) => json!({"valueBoolean": b}),
                AnswerValue::Text(t) => json!({"valueString": t}),
            };
            json!({"linkId": link, "text": text, "answer": [answer]})
        })
        .collect();
    serde_json::Value::Array(items)
}

/// Submits answers for an enrolment. The actor must be the patient (their own
/// record) or a carer allowed to write the patient's clinical data.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit(
    ctx: Ctx<'_>,
    actor: &Actor,
    enrolment: &Enrolment,
    form: &[(String, String)],
) -> Result<Submitted, AppError> {
    let p = programme(&enrolment.programme)
        .ok_or_else(|| AppError::NotFound("programme inconnu".into()))?;
    let (_, scope) = patients::with_scope(ctx, enrolment.patient).await?;
    let own = matches!(actor.principal, domain::policy::Principal::Patient { patient, .. } if patient == enrolment.patient);
    let grant = match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => g,
        Decision::Deny(_) if own => None,
        Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
    };
    if enrolment.status != "active" {
        return Err(AppError::Conflict("ce suivi est terminé".into()));
    }
    let answers = read_answers(p, form)?;
    let who = AuditActor::new(actor, grant);
    let target = report_target(ctx, enrolment.patient, enrolment.establishment).await?;
    let now = ctx.now_ms();
    let (response, kept) = record(
        ctx.store,
        p,
        enrolment,
        &answers,
        target.as_ref(),
        &who,
        now,
    )
    .await?;
    if !kept.is_empty() {
        // Open queues refresh now (no receiver is not an error).
        ctx.publish(crate::state::LiveEvent::NewAlerts(
            enrolment.establishment,
            response.clone(),
        ));
        crate::services::subscriptions::alerts_raised(
            ctx,
            enrolment.patient,
            enrolment.establishment,
            now,
        )
        .await;
    }
    let advice = immediate_advice(&kept).map(str::to_owned);
    Ok(Submitted {
        response,
        alerts: kept,
        advice,
    })
}

/// Grades checked answers with the programme's rules (the patient's earlier
/// measures give the trends) and stores the response, its measures and its alerts
/// in one audited transaction. Returns the response's id and the alerts raised: one
/// per item, the most serious rule that fired. No authorisation here: callers
/// decide who may submit.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn record(
    store: &store::Store,
    p: &Programme,
    enrolment: &Enrolment,
    answers: &[(String, AnswerValue)],
    report: Option<&ReportTarget>,
    who: &AuditActor,
    now: i64,
) -> Result<(String, Vec<Triggered>), AppError> {
    let g = grade(store, p, enrolment, answers, report, now).await?;
    let (response, _) = store
        .submit_response(&g.write(enrolment, None, who), now)
        .await?;
    Ok((response, g.kept))
}

/// Answers graded, ready to store: what [`record`] writes.
#[derive(Debug, Clone)]
pub struct Graded {
    /// The answers as QuestionnaireResponse items (JSON).
    pub json: String,
    /// The measures.
    pub measures: Vec<(String, f64)>,
    /// The alerts to raise.
    pub new_alerts: Vec<NewAlert>,
    /// When they are due: the programme's SLA counted in the team's hours.
    pub due_at_ms: i64,
    /// The results for the hospital.
    pub message: Option<store::outbox::NewMessage>,
    /// The alerts that reach the team (one per item, the most serious rule
    /// that fired), without those a muting silences.
    pub kept: Vec<Triggered>,
}

impl Graded {
    /// The store's write of these answers on `enrolment` (`measured`: a
    /// device's measure, its source and time).
    pub fn write<'a>(
        &'a self,
        enrolment: &'a Enrolment,
        measured: Option<store::monitoring::Measured<'a>>,
        who: &'a AuditActor,
    ) -> store::monitoring::ResponseWrite<'a> {
        store::monitoring::ResponseWrite {
            enrolment,
            answers_json: &self.json,
            measures: &self.measures,
            alerts: &self.new_alerts,
            due_at_ms: self.due_at_ms,
            report: self.message.as_ref(),
            measured,
            who,
        }
    }
}

/// The items `p`'s trend rules watch, each with its longest window in days.
fn trend_windows(p: &Programme) -> Vec<(&str, i64)> {
    let mut out: Vec<(&str, i64)> = Vec::new();
    for rule in &p.rules {
        if let domain::monitoring::Rule::Drop { item, days, .. } = rule {
            match out.iter_mut().find(|(i, _)| *i == item.as_str()) {
                Some(w) => w.1 = w.1.max(*days),
                None => out.push((item.as_str(), *days)),
            }
        }
    }
    out
}

/// Grades answers with the programme's rules (the patient's earlier measures
/// give the trends) and builds what is stored with them.
async fn grade(
    store: &store::Store,
    p: &Programme,
    enrolment: &Enrolment,
    answers: &[(String, AnswerValue)],
    report: Option<&ReportTarget>,
    now: i64,
) -> Result<Graded, AppError> {
    // Earlier measures, for trend rules only: each item a trend rule watches,
    // over its longest window (a programme without one reads none: a patient
    // who answers often does not make each answer slower).
    let mut history: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    for (item, days) in trend_windows(p) {
        history.push((
            item.to_owned(),
            store
                .measures(enrolment.patient, item, now - days * 24 * 3600 * 1000)
                .await?,
        ));
    }
    let lookup = |item: &str| {
        history
            .iter()
            .find(|(i, _)| i == item)
            .map(|(_, h)| h.clone())
            .unwrap_or_default()
    };
    let alerts = evaluate(&p.rules, answers, &lookup, now);
    // One alert per item: the most serious rule that fired.
    let mut kept: Vec<Triggered> = Vec::new();
    for t in &alerts {
        if !kept.iter().any(|k| k.item == t.item) {
            kept.push(t.clone());
        }
    }
    let measures: Vec<(String, f64)> = answers
        .iter()
        .filter_map(|(k, v)| {
            if let AnswerValue::Number(x) = v {
                Some((k.clone(), *x))
            } else {
                None
            }
        })
        .collect();
    let json = response_items(p, answers).to_string();
    // An item muted for this patient records its alert as muted, unless the
    // answer is worse than what was muted.
    // (Read only when something fired: most answers raise nothing.)
    let mutes: Vec<domain::monitoring::Mute> = if kept.is_empty() {
        Vec::new()
    } else {
        store.mutes_of(enrolment.id).await?
    }
    .into_iter()
    .map(|m| m.mute)
    .filter(|m| m.active(now))
    .collect();
    let new_alerts: Vec<NewAlert> = kept
        .iter()
        .map(|t| NewAlert {
            level: t.level,
            item: t.item.clone(),
            reason: t.reason.clone(),
            advice: t.advice.clone(),
            mute: domain::monitoring::muted_by(&mutes, t, answers, now).map(|m| m.id.clone()),
        })
        .collect();
    // The results leave for the hospital with the response (same transaction).
    let message = report
        .map(|t| {
            report_for(
                t,
                // Two measures of one transaction share `now`: the items tell them apart.
                &format!(
                    "oru:reponse:{}:{now}:{}",
                    enrolment.id,
                    answers
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join("+")
                ),
                ("TLSV-QUESTIONNAIRE", "Télésurveillance : questionnaire"),
                result_observations(p, answers, &kept),
            )
        })
        .transpose()?;
    // Only alerts have a due time.
    let due_at_ms = if new_alerts.is_empty() {
        now
    } else {
        due_at(store, enrolment.establishment, p, now).await?
    };
    let heard = kept
        .into_iter()
        .zip(&new_alerts)
        .filter(|(_, a)| a.mute.is_none())
        .map(|(t, _)| t)
        .collect();
    Ok(Graded {
        json,
        measures,
        new_alerts,
        due_at_ms,
        message,
        kept: heard,
    })
}

/// When an alert raised at `now` is due: the programme's SLA counted in the
/// establishment's team hours (round the clock when it has set none).
pub async fn due_at(
    store: &store::Store,
    establishment: domain::EstablishmentId,
    p: &Programme,
    now: i64,
) -> Result<i64, AppError> {
    Ok(store
        .team_hours(establishment)
        .await?
        .add_working_time(now, p.sla_hours * 3600 * 1000))
}

/// The ORU^R01 that tells the hospital how an alert ended, as an outbox message
/// for the configured destination (`None` when none is configured): the alert
/// (item, level, reason), the outcome, who closed it, and each step of its
/// timeline. The idempotency key is the alert's: a report leaves once.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn closing_report(
    ctx: Ctx<'_>,
    alert: &store::monitoring::Alert,
    kind: domain::monitoring::Outcome,
    outcome: &str,
    closed_by: &str,
) -> Result<Option<store::outbox::NewMessage>, AppError> {
    use interop::oru::{ObsValue, Observation};
    let item_text = item_label(&alert.item);
    let text = |code: &str, display: &str, value: String| Observation {
        code: code.into(),
        display: display.into(),
        system: "L".into(),
        value: ObsValue::Text(value),
        abnormal: None,
    };
    let mut observations = vec![
        Observation {
            code: "ALERTE".into(),
            display: "Alerte de télésurveillance".into(),
            system: "L".into(),
            value: ObsValue::Coded {
                code: alert.item.clone(),
                display: item_text,
                system: "L".into(),
            },
            // HL7 table 0078: AA critically abnormal, A abnormal.
            abnormal: Some(
                match alert.level {
                    domain::monitoring::AlertLevel::Urgent => "AA",
                    _ => "A",
                }
                .into(),
            ),
        },
        text("NIVEAU", "Niveau", alert.level.label_fr().into()),
        text("MOTIF", "Motif", alert.reason.clone()),
        Observation {
            code: "ISSUE".into(),
            display: "Issue".into(),
            system: "L".into(),
            value: ObsValue::Coded {
                code: kind.code().into(),
                display: kind.label_fr().into(),
                system: "L".into(),
            },
            abnormal: None,
        },
        text("DECISION", "Décision", format!("{outcome} ({closed_by})")),
    ];
    for (at, actor, action, note) in timeline(ctx, alert.id).await? {
        let mut step = format!("{at} {actor} : {action}");
        if !note.is_empty() {
            step.push_str(" — ");
            step.push_str(&note);
        }
        observations.push(text("ETAPE", "Étape du suivi", step));
    }
    report_message(
        ctx,
        alert.patient,
        alert.establishment,
        &format!("oru:alerte:{}", alert.id),
        ("TLSV-ALERTE", "Télésurveillance : issue d'une alerte"),
        observations,
    )
    .await
}

/// Where and about whom reports go: read once, before the transaction.
#[derive(Debug, Clone)]
pub struct ReportTarget {
    /// Where the ORU goes (the establishment's own destination, else the instance's).
    pub destination: String,
    establishment: domain::EstablishmentId,
    patient: domain::identity::PatientRecord,
    demographics: domain::demographics::Demographics,
    domain_oid: String,
    finess: String,
    timestamp: String,
}

/// The report target for a patient followed by an establishment; `None` when no
/// ORU destination is configured.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn report_target(
    ctx: Ctx<'_>,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
) -> Result<Option<ReportTarget>, AppError> {
    let Some(destination) = crate::services::directory::oru_destination(ctx, establishment).await?
    else {
        return Ok(None);
    };
    let demographics = ctx.store.demographics(patient).await?;
    let patient = ctx.store.patient(patient).await?;
    let domain_oid = ctx.store.territory(patient.territory).await?.oid;
    let finess = ctx.store.establishment(establishment).await?.finess;
    Ok(Some(ReportTarget {
        destination,
        establishment,
        patient,
        demographics,
        domain_oid,
        finess,
        timestamp: crate::fmt::hl7_now(ctx.clock.now()),
    }))
}

/// An ORU^R01 as an outbox message keyed `key`. MSH-10 and OBR-2 (20 characters
/// at most) are a digest of the key: stable across retries.
fn report_for(
    t: &ReportTarget,
    key: &str,
    service: (&str, &str),
    observations: Vec<interop::oru::Observation>,
) -> Result<store::outbox::NewMessage, AppError> {
    let digest = crate::auth::token_hash(key);
    let short_id = format!("PA{}", digest.get(..18).unwrap_or(&digest));
    let report = interop::oru::OruReport {
        control_id: short_id.clone(),
        timestamp: t.timestamp.clone(),
        receiver: ("DPI".into(), t.finess.clone()),
        patient: t.patient.clone(),
        demographics: t.demographics.clone(),
        domain_oid: t.domain_oid.clone(),
        order_id: short_id,
        service: (service.0.into(), service.1.into(), "L".into()),
        observations,
    };
    let payload = interop::oru::build(&report)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("ORU: {e}")))?;
    Ok(store::outbox::NewMessage {
        idempotency_key: key.to_owned(),
        topic: crate::outbound::ORU_TOPIC.into(),
        destination: t.destination.clone(),
        payload,
        establishment: Some(t.establishment),
    })
}

/// [`report_for`] when a destination is configured.
async fn report_message(
    ctx: Ctx<'_>,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
    key: &str,
    service: (&str, &str),
    observations: Vec<interop::oru::Observation>,
) -> Result<Option<store::outbox::NewMessage>, AppError> {
    match report_target(ctx, patient, establishment).await? {
        Some(t) => report_for(&t, key, service, observations).map(Some),
        None => Ok(None),
    }
}

/// OBX-3 of an item: its LOINC code when it has one, else a local code.
fn obx_code(item: &interop::programme::Item) -> (String, String, String) {
    match &item.code {
        Some((system, code, display)) if system == "http://loinc.org" => {
            (code.clone(), display.clone(), "LN".into())
        }
        _ => (item.link_id.clone(), item.label.clone(), "L".into()),
    }
}

/// The questionnaire's results as ORU observations: measures NM with their UCUM
/// unit, grades CWE with their label, yes/no and text ST; items that raised an
/// alert flagged `AA` (urgent) or `A`.
fn result_observations(
    p: &Programme,
    answers: &[(String, AnswerValue)],
    raised: &[Triggered],
) -> Vec<interop::oru::Observation> {
    use interop::oru::{ObsValue, Observation};
    answers
        .iter()
        .filter_map(|(link, v)| {
            let item = p.items.iter().find(|i| i.link_id == *link)?;
            let (code, display, system) = obx_code(item);
            let value = match v {
                AnswerValue::Number(x) => ObsValue::Numeric {
                    value: x.to_string(),
                    unit: item.unit.clone().unwrap_or_default(),
                },
                AnswerValue::Grade(g) => ObsValue::Coded {
                    code: g.to_string(),
                    display: item
                        .options
                        .get(usize::from(*g))
                        .cloned()
                        .unwrap_or_default(),
                    system: "L".into(),
                },
                AnswerValue::Bool(b) => ObsValue::Text(if *b { "oui" } else { "non" }.into()),
                AnswerValue::Text(t) => ObsValue::Text(t.clone()),
            };
            let abnormal = raised.iter().find(|t| t.item == *link).map(|t| {
                if t.level == domain::monitoring::AlertLevel::Urgent {
                    "AA".to_owned()
                } else {
                    "A".to_owned()
                }
            });
            Some(Observation {
                code,
                display,
                system,
                value,
                abnormal,
            })
        })
        .collect()
}

/// The end-of-monitoring summary: figures as observations and the same as a PDF.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn summary_report(
    ctx: Ctx<'_>,
    enrolment: &Enrolment,
    reason: &str,
) -> Result<Option<store::outbox::NewMessage>, AppError> {
    use interop::oru::{ObsValue, Observation};
    if crate::services::directory::oru_destination(ctx, enrolment.establishment)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let p = programme(&enrolment.programme);
    let title = p.map_or(enrolment.programme.clone(), |p| p.title.clone());
    let patient = ctx.store.patient(enrolment.patient).await?;
    let (responses, alerts) = enrolment_history(ctx, enrolment).await?;
    // Questionnaires answered, and measures sent by devices or laboratories.
    let answered = responses.iter().filter(|r| r.source.is_none()).count();
    let measured = responses.len() - answered;
    let now = ctx.now_ms();
    let period = format!(
        "du {} au {}",
        crate::fmt::paris_time(enrolment.started_at_ms),
        crate::fmt::paris_time(now)
    );
    let count = |l: domain::monitoring::AlertLevel| alerts.iter().filter(|a| a.level == l).count();
    let levels = format!(
        "{} urgente(s), {} à surveiller, {} pour information",
        count(domain::monitoring::AlertLevel::Urgent),
        count(domain::monitoring::AlertLevel::Warning),
        count(domain::monitoring::AlertLevel::Info)
    );
    let mut lines = vec![
        format!(
            "Patient : {} — né(e) le {} — IPP {}",
            patient.traits.display_name(),
            patient.traits.birth_date.strftime("%d/%m/%Y"),
            patient.ipp
        ),
        format!("Programme : {title}"),
        format!("Période : {period}"),
        format!("Motif de fin : {reason}"),
        format!("Questionnaires reçus : {answered}"),
        format!("Mesures reçues d'appareils ou de laboratoires : {measured}"),
        format!("Alertes : {} ({levels})", alerts.len()),
        String::new(),
    ];
    lines.extend(alerts.iter().map(alert_line));
    let pdf = interop::pdf::text_document(
        &format!("Synthèse de fin de télésurveillance — {title}"),
        &lines,
    );
    let text = |code: &str, display: &str, value: String| Observation {
        code: code.into(),
        display: display.into(),
        system: "L".into(),
        value: ObsValue::Text(value),
        abnormal: None,
    };
    let observations = vec![
        text("PROGRAMME", "Programme", title),
        text("PERIODE", "Période de suivi", period),
        text("FIN", "Motif de fin", reason.to_owned()),
        text(
            "QUESTIONNAIRES",
            "Questionnaires reçus",
            answered.to_string(),
        ),
        text(
            "MESURES",
            "Mesures reçues d'appareils ou de laboratoires",
            measured.to_string(),
        ),
        text("ALERTES", "Alertes", format!("{} ({levels})", alerts.len())),
        Observation {
            code: "11502-2".into(),
            display: "Synthèse de télésurveillance".into(),
            system: "LN".into(),
            value: ObsValue::Pdf(pdf),
            abnormal: None,
        },
    ];
    report_message(
        ctx,
        enrolment.patient,
        enrolment.establishment,
        &format!("oru:fin:{}", enrolment.id),
        (
            "TLSV-SYNTHESE",
            "Télésurveillance : synthèse de fin de suivi",
        ),
        observations,
    )
    .await
}

/// An alert as the summary report lists it.
fn alert_line(a: &store::monitoring::Alert) -> String {
    format!(
        "{} — {} — {} : {} — {}",
        crate::fmt::paris_time(a.raised_at_ms),
        a.level.label_fr(),
        item_label(&a.item),
        a.reason,
        a.outcome
            .as_deref()
            .map_or("non close".to_owned(), |o| format!("issue : {o}"))
    )
}

/// The patient's responses and alerts (oldest first) of one enrolment.
pub(crate) async fn enrolment_history(
    ctx: Ctx<'_>,
    enrolment: &Enrolment,
) -> Result<
    (
        Vec<store::monitoring::StoredResponse>,
        Vec<store::monitoring::Alert>,
    ),
    AppError,
> {
    let responses = ctx
        .store
        .responses_of(enrolment.patient)
        .await?
        .into_iter()
        .filter(|r| r.enrolment == enrolment.id)
        .collect();
    let mut alerts: Vec<_> = ctx
        .store
        .alerts_of(enrolment.patient)
        .await?
        .into_iter()
        .filter(|a| a.enrolment == enrolment.id)
        .collect();
    alerts.reverse();
    Ok((responses, alerts))
}

/// An alert's timeline for people: (French time, who, what in French, note), oldest first.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn timeline(
    ctx: Ctx<'_>,
    alert: domain::AlertId,
) -> Result<Vec<(String, String, String, String)>, AppError> {
    Ok(ctx
        .store
        .alert_events(alert)
        .await?
        .into_iter()
        .map(|(at, who, action, note)| {
            let action = match action.as_str() {
                "raised" => "alerte reçue",
                "taken" => "prise en charge",
                "called_back" => "patient rappelé",
                "advised" => "conseil donné",
                "escalated" => "transmise au médecin",
                "closed" => "close",
                "muted" => "en sourdine",
                "notified" => "médecin d'astreinte",
                other => other,
            };
            let who = if who == "system" {
                "Parcours".to_owned()
            } else {
                who
            };
            (crate::fmt::paris_time(at), who, action.to_owned(), note)
        })
        .collect())
}

/// One programme's figures at one establishment.
#[derive(Debug)]
pub struct DashboardFigures {
    /// The establishment's name.
    pub establishment: String,
    /// The programme.
    pub programme: &'static Programme,
    /// Patients followed now.
    pub followed: i64,
    /// Alerts per level and week, handling times, SLA.
    pub figures: domain::monitoring::Dashboard,
}

/// Per establishment of `actor` (nurses, doctors, administrators) and
/// programme, the figures of the last `weeks` weeks. Aggregates only: no
/// patient is named.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn dashboard(
    ctx: Ctx<'_>,
    actor: &Actor,
    weeks: usize,
) -> Result<Vec<DashboardFigures>, AppError> {
    use domain::org::Role;
    let mut establishments: Vec<domain::EstablishmentId> = actor
        .grants
        .iter()
        .filter(|g| matches!(g.role, Role::Nurse | Role::Doctor | Role::Admin))
        .map(|g| g.establishment)
        .collect();
    establishments.sort_by_key(ToString::to_string);
    establishments.dedup();
    if establishments.is_empty() {
        return Err(AppError::Forbidden(
            "tableau de bord réservé aux équipes de télésurveillance".into(),
        ));
    }
    let now = ctx.now_ms();
    let since = now - i64::try_from(weeks).unwrap_or(8) * 7 * 24 * 3600 * 1000;
    let mut out = Vec::new();
    for e in establishments {
        let name = ctx.store.establishment(e).await?.name;
        let facts = ctx.store.alert_facts(e, since).await?;
        let followed = ctx.store.active_enrolments(e).await?;
        for p in programmes() {
            let mine: Vec<domain::monitoring::AlertFact> = facts
                .iter()
                .filter(|(id, _)| *id == p.id)
                .map(|(_, f)| *f)
                .collect();
            let patients = followed
                .iter()
                .find(|(id, _)| *id == p.id)
                .map_or(0, |(_, n)| *n);
            if mine.is_empty() && patients == 0 {
                continue;
            }
            out.push(DashboardFigures {
                establishment: name.clone(),
                programme: p,
                followed: patients,
                figures: domain::monitoring::dashboard(&mine, now, weeks),
            });
        }
    }
    Ok(out)
}

/// What of a patient's monitoring record a search reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The alerts (FHIR Task and Flag).
    Alerts,
    /// The messages with the team, and the enrolments they belong to.
    Messages,
    /// The enrolments (CarePlan).
    Enrolments,
    /// The questionnaire responses (QuestionnaireResponse, Observation).
    Responses,
}

/// A patient's monitoring record, with only the asked part filled.
#[derive(Debug, Default)]
pub struct Record {
    /// Alerts.
    pub alerts: Vec<store::monitoring::Alert>,
    /// Enrolments.
    pub enrolments: Vec<Enrolment>,
    /// Messages.
    pub messages: Vec<store::monitoring::Message>,
    /// Responses.
    pub responses: Vec<store::monitoring::StoredResponse>,
}

/// `part` of `patient`'s monitoring record, read under the clinical-read
/// policy and audited as `resource`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn record_of(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: domain::PatientId,
    part: Part,
    resource: &str,
) -> Result<Record, AppError> {
    patients::clinical_read(ctx, actor, patient, resource).await?;
    let mut r = Record::default();
    match part {
        Part::Alerts => r.alerts = ctx.store.alerts_of(patient).await?,
        Part::Enrolments => r.enrolments = ctx.store.enrolments_of(patient).await?,
        Part::Messages => {
            r.enrolments = ctx.store.enrolments_of(patient).await?;
            r.messages = ctx.store.messages_of(patient).await?;
        }
        Part::Responses => r.responses = ctx.store.responses_of(patient).await?,
    }
    Ok(r)
}

/// A client (a patient app, a device gateway) submits `answers` for
/// `patient` in `programme`: the patient must be readable by the client and
/// followed in the programme; graded like the patient's own form. The
/// stored response.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_for(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: domain::PatientId,
    programme: &str,
    answers: &[(String, String)],
) -> Result<store::monitoring::StoredResponse, AppError> {
    // The patient must be readable by this client before anything else is said.
    patients::read(ctx, actor, patient).await?;
    let enrolment = ctx
        .store
        .enrolments_of(patient)
        .await?
        .into_iter()
        .find(|e| e.programme == programme && e.status == "active")
        .ok_or_else(|| {
            AppError::Unprocessable(
                "business-rule",
                format!("ce patient n'est pas suivi dans le programme {programme}"),
            )
        })?;
    let done = submit(ctx, actor, &enrolment, answers).await?;
    Ok(ctx.store.response(&done.response).await?)
}

/// A measure a device or a laboratory sends (a FHIR Observation).
#[derive(Debug, Clone)]
pub struct Measure<'a> {
    /// Whose.
    pub patient: domain::PatientId,
    /// Its LOINC code.
    pub loinc: &'a str,
    /// The value.
    pub value: f64,
    /// Its UCUM code, when given.
    pub unit: Option<&'a str>,
    /// When measured (Unix ms); now when not given.
    pub at_ms: Option<i64>,
    /// The device or laboratory (else the client's name).
    pub source: &'a str,
}

/// How far ahead of the clock a measure may be dated (devices' clocks drift).
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

/// Files a measure on the monitoring timeline of the patient's active
/// follow-up (at one of the actor's establishments) whose programme observes
/// its LOINC code, graded by the programme's rules like the same answer in
/// the questionnaire (alerts raised, results sent to the hospital). A code no
/// follow-up observes, a unit other than the item's, a measure dated in the
/// future: refused, saying why. Returns the stored response and the alerts.
pub async fn file_measure(
    ctx: Ctx<'_>,
    actor: &Actor,
    m: &Measure<'_>,
) -> Result<(store::monitoring::StoredResponse, Vec<Triggered>), AppError> {
    let prepared = prepare_measure(ctx, actor, m).await?;
    let (response, _) = ctx
        .store
        .submit_response(&prepared.write(), ctx.now_ms())
        .await?;
    measure_filed(ctx, &prepared).await;
    Ok((ctx.store.response(&response).await?, prepared.graded.kept))
}

/// A measure checked, allowed and graded, ready to store (alone, or with the
/// other writes of a transaction).
#[derive(Debug, Clone)]
pub struct PreparedMeasure {
    /// The follow-up it is filed on.
    pub enrolment: Enrolment,
    /// What grading made of it.
    pub graded: Graded,
    /// Who.
    pub who: AuditActor,
    /// Its source.
    pub source: String,
    /// When measured.
    pub at_ms: i64,
}

impl PreparedMeasure {
    /// The store's write.
    pub fn write(&self) -> store::monitoring::ResponseWrite<'_> {
        let measured = store::monitoring::Measured {
            source: &self.source,
            at_ms: self.at_ms,
        };
        self.graded
            .write(&self.enrolment, Some(measured), &self.who)
    }
}

/// Once a measure is stored: open queues refresh and subscribers are told of
/// the alerts it raised.
pub async fn measure_filed(ctx: Ctx<'_>, m: &PreparedMeasure) {
    if m.graded.kept.is_empty() {
        return;
    }
    ctx.publish(crate::state::LiveEvent::Alerts(m.enrolment.establishment));
    crate::services::subscriptions::alerts_raised(
        ctx,
        m.enrolment.patient,
        m.enrolment.establishment,
        ctx.now_ms(),
    )
    .await;
}

/// Checks, allows and grades a measure (see [`file_measure`]).
pub async fn prepare_measure(
    ctx: Ctx<'_>,
    actor: &Actor,
    m: &Measure<'_>,
) -> Result<PreparedMeasure, AppError> {
    let record_ = patients::read(ctx, actor, m.patient).await?;
    let scope = patients::scope_of(ctx, &record_).await?;
    let grant = match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
        Decision::Allow(g) => g,
        Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
    };
    let now = ctx.now_ms();
    let at = m.at_ms.unwrap_or(now);
    if at > now + FUTURE_SLACK_MS {
        return Err(AppError::Unprocessable(
            "business-rule",
            "effective : une mesure ne peut pas être datée dans le futur".into(),
        ));
    }
    let mine = crate::services::directory::grant_establishments(actor);
    let enrolments = ctx.store.enrolments_of(m.patient).await?;
    let found = enrolments
        .iter()
        .filter(|e| e.status == "active" && mine.contains(&e.establishment))
        .find_map(|e| {
            let p = programme(&e.programme)?;
            let item = p.items.iter().find(|i| {
                i.kind == ItemKind::Number
                    && i.code
                        .as_ref()
                        .is_some_and(|(s, c, _)| s == "http://loinc.org" && c == m.loinc)
            })?;
            Some((e, p, item))
        });
    let Some((enrolment, p, item)) = found else {
        return Err(AppError::Unprocessable(
            "business-rule",
            format!(
                "aucun suivi actif de ce patient dans votre établissement n'observe le code LOINC {} : mesure non classée",
                m.loinc.chars().take(20).collect::<String>()
            ),
        ));
    };
    if let (Some(expected), Some(given)) = (&item.unit, m.unit)
        && expected != given
    {
        return Err(AppError::Unprocessable(
            "business-rule",
            format!(
                "unité {:?} : {expected} attendue pour {}",
                given.chars().take(20).collect::<String>(),
                item.label
            ),
        ));
    }
    let answers = vec![(item.link_id.clone(), AnswerValue::Number(m.value))];
    let target = report_target(ctx, enrolment.patient, enrolment.establishment).await?;
    let graded = grade(ctx.store, p, enrolment, &answers, target.as_ref(), now).await?;
    Ok(PreparedMeasure {
        enrolment: enrolment.clone(),
        graded,
        who: AuditActor::new(actor, grant),
        source: m.source.to_owned(),
        at_ms: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_items_of_trend_rules_read_history_over_their_longest_window() {
        let oncology = programme("oral-oncology").unwrap();
        assert_eq!(trend_windows(oncology), vec![("weight", 14)]);
        // No trend rule: no history read for any answer.
        assert!(trend_windows(programme("infectious-home").unwrap()).is_empty());
        // Two windows on one item: the longer one.
        let mut p = oncology.clone();
        p.rules.push(domain::monitoring::Rule::Drop {
            item: "weight".into(),
            percent: 10.0,
            days: 30,
            level: domain::monitoring::AlertLevel::Urgent,
            advice: String::new(),
        });
        assert_eq!(trend_windows(&p), vec![("weight", 30)]);
    }
}
