//! Remote monitoring (télésurveillance): what a programme asks, how answers are
//! graded into alerts (rules as data, evaluated here without I/O), what the patient
//! is told at once, and the nurse triage life cycle with its SLA.

use crate::{EstablishmentId, PatientId};
/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertLevel {
    /// For the record.
    Info,
    /// To handle within the SLA.
    Warning,
    /// To handle first; the patient is told what to do at once.
    Urgent,
}

impl AlertLevel {
    /// Code.
    pub fn code(self) -> &'static str {
        match self {
            AlertLevel::Info => "info",
            AlertLevel::Warning => "warning",
            AlertLevel::Urgent => "urgent",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<AlertLevel> {
        match c {
            "info" => Some(AlertLevel::Info),
            "warning" => Some(AlertLevel::Warning),
            "urgent" => Some(AlertLevel::Urgent),
            _ => None,
        }
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            AlertLevel::Info => "information",
            AlertLevel::Warning => "à traiter",
            AlertLevel::Urgent => "urgent",
        }
    }
}

/// One answer to a questionnaire item.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerValue {
    /// A CTCAE grade, 0 (none) to 5.
    Grade(u8),
    /// A measure (temperature, weight, SpO2).
    Number(f64),
    /// Yes or no.
    Bool(bool),
    /// Free text.
    Text(String),
}

/// A rule of a programme, as written in its file.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// A grade at or above `min_grade` on `item`.
    Grade {
        /// Questionnaire item (linkId).
        item: String,
        /// Lowest grade that triggers.
        min_grade: u8,
        /// Level of the alert.
        level: AlertLevel,
        /// What to tell the patient at once (for urgent alerts).
        advice: String,
    },
    /// A measure at or above `threshold`.
    Above {
        /// Item.
        item: String,
        /// Threshold.
        threshold: f64,
        /// Level.
        level: AlertLevel,
        /// Advice.
        advice: String,
    },
    /// A measure at or below `threshold`.
    Below {
        /// Item.
        item: String,
        /// Threshold.
        threshold: f64,
        /// Level.
        level: AlertLevel,
        /// Advice.
        advice: String,
    },
    /// A yes on `item`.
    Yes {
        /// Item.
        item: String,
        /// Level.
        level: AlertLevel,
        /// Advice.
        advice: String,
    },
    /// The measure fell by `percent` % or more against the highest value of the last
    /// `days` days (weight loss).
    Drop {
        /// Item.
        item: String,
        /// Percentage.
        percent: f64,
        /// Window in days.
        days: i64,
        /// Level.
        level: AlertLevel,
        /// Advice.
        advice: String,
    },
}

/// An alert a rule raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    /// Level.
    pub level: AlertLevel,
    /// Item.
    pub item: String,
    /// Why, in French, for the nurse.
    pub reason: String,
    /// What the patient is told.
    pub advice: String,
}

/// A past measure of an item: (time in Unix ms, value).
pub type Measure = (i64, f64);

/// Applies the rules to one submission. `history(item)` gives the earlier measures
/// of an item (for trends). Returns every alert raised, most serious first.
pub fn evaluate(
    rules: &[Rule],
    answers: &[(String, AnswerValue)],
    history: &dyn Fn(&str) -> Vec<Measure>,
    now_ms: i64,
) -> Vec<Triggered> {
    let value = |item: &str| answers.iter().find(|(i, _)| i == item).map(|(_, v)| v);
    let mut out = Vec::new();
    for rule in rules {
        let hit = match rule {
            Rule::Grade {
                item,
                min_grade,
                level,
                advice,
            } => match value(item) {
                Some(AnswerValue::Grade(g)) if g >= min_grade => Some((
                    item,
                    *level,
                    format!("grade {g} (seuil {min_grade})"),
                    advice,
                )),
                _ => None,
            },
            Rule::Above {
                item,
                threshold,
                level,
                advice,
            } => match value(item) {
                Some(AnswerValue::Number(v)) if v >= threshold => {
                    Some((item, *level, format!("{v} ≥ {threshold}"), advice))
                }
                _ => None,
            },
            Rule::Below {
                item,
                threshold,
                level,
                advice,
            } => match value(item) {
                Some(AnswerValue::Number(v)) if v <= threshold => {
                    Some((item, *level, format!("{v} ≤ {threshold}"), advice))
                }
                _ => None,
            },
            Rule::Yes {
                item,
                level,
                advice,
            } => match value(item) {
                Some(AnswerValue::Bool(true)) => Some((item, *level, "oui".to_owned(), advice)),
                _ => None,
            },
            Rule::Drop {
                item,
                percent,
                days,
                level,
                advice,
            } => match value(item) {
                Some(AnswerValue::Number(v)) => {
                    let since = now_ms - days * 24 * 3600 * 1000;
                    let max = history(item)
                        .into_iter()
                        .filter(|(t, _)| *t >= since)
                        .map(|(_, x)| x)
                        .fold(f64::NAN, f64::max);
                    let fall = if max > 0.0 {
                        (max - v) / max * 100.0
                    } else {
                        0.0
                    };
                    (fall >= *percent).then(|| {
                        (
                            item,
                            *level,
                            format!("baisse de {fall:.1} % en {days} jours ({max} → {v})"),
                            advice,
                        )
                    })
                }
                _ => None,
            },
        };
        if let Some((item, level, reason, advice)) = hit {
            out.push(Triggered {
                level,
                item: item.clone(),
                reason,
                advice: advice.clone(),
            });
        }
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.level));
    out
}

/// What the patient is told at once: the advice of the most serious urgent alert.
pub fn immediate_advice(triggered: &[Triggered]) -> Option<&str> {
    triggered
        .iter()
        .find(|t| t.level == AlertLevel::Urgent)
        .map(|t| t.advice.as_str())
}

/// Where an alert is in the nurses' triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    /// Waiting for a nurse.
    Open,
    /// A nurse has it.
    Taken,
    /// Sent to the doctor (by a nurse, or by itself when overdue).
    Escalated,
    /// Closed with an outcome.
    Closed,
    /// Raised while its item was muted for the patient: recorded and graded,
    /// shown on the timeline, never queued.
    Muted,
}

impl AlertStatus {
    /// French label, as pages and FHIR's business status show it.
    pub fn label_fr(self) -> &'static str {
        match self {
            AlertStatus::Open => "à prendre",
            AlertStatus::Taken => "prise en charge",
            AlertStatus::Escalated => "transmise au médecin",
            AlertStatus::Closed => "close",
            AlertStatus::Muted => "en sourdine",
        }
    }
}

/// A muting of one questionnaire item's alerts for one enrolled patient: a
/// chronic, known symptom (a grade-2 neuropathy) stops alerting for a while,
/// but a worsening above what was muted alerts anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    /// Id.
    pub id: String,
    /// The item (linkId).
    pub item: String,
    /// For a graded item, the highest grade muted: a higher grade alerts.
    pub max_grade: Option<u8>,
    /// The highest alert level muted (never urgent).
    pub max_level: AlertLevel,
    /// Why (shown to the team).
    pub reason: String,
    /// Start (Unix ms).
    pub starts_at_ms: i64,
    /// End (Unix ms, excluded): the muting ends by itself.
    pub until_ms: i64,
    /// When it was lifted by hand or recorded as ended.
    pub ended_at_ms: Option<i64>,
}

/// Shortest muting, in days.
pub const MUTE_MIN_DAYS: i64 = 7;
/// Longest muting, in days (three months).
pub const MUTE_MAX_DAYS: i64 = 92;

/// Why a muting is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MuteError {
    /// Outside one week to three months.
    #[error("une mise en sourdine dure d'une semaine à trois mois")]
    Duration,
    /// No reason given.
    #[error("indiquez pourquoi ce symptôme est mis en sourdine")]
    Reason,
    /// Urgent alerts always reach the team.
    #[error("une alerte urgente ne peut pas être mise en sourdine")]
    Urgent,
    /// A grade outside 1–4 (grade 5 is death).
    #[error("le grade mis en sourdine va de 1 à 4")]
    Grade,
    /// This item raises no alert, or is already muted.
    #[error("cet item ne peut pas être mis en sourdine (sans règle d'alerte, ou déjà en sourdine)")]
    Item,
}

/// Checks a muting asked for `days` days.
pub fn check_mute(
    days: i64,
    reason: &str,
    max_level: AlertLevel,
    max_grade: Option<u8>,
) -> Result<(), MuteError> {
    if !(MUTE_MIN_DAYS..=MUTE_MAX_DAYS).contains(&days) {
        return Err(MuteError::Duration);
    }
    if reason.trim().is_empty() {
        return Err(MuteError::Reason);
    }
    if max_level == AlertLevel::Urgent {
        return Err(MuteError::Urgent);
    }
    if max_grade.is_some_and(|g| !(1..=4).contains(&g)) {
        return Err(MuteError::Grade);
    }
    Ok(())
}

impl Mute {
    /// Whether it mutes at `now_ms`: started, not past its end, not lifted.
    pub fn active(&self, now_ms: i64) -> bool {
        self.ended_at_ms.is_none() && self.starts_at_ms <= now_ms && now_ms < self.until_ms
    }

    /// Whether it mutes alert `t` raised by `answer` at `now_ms`: same item,
    /// level at most the muted one, and for a graded answer a grade at most
    /// the muted one. Anything worse alerts.
    pub fn covers(&self, t: &Triggered, answer: Option<&AnswerValue>, now_ms: i64) -> bool {
        if !self.active(now_ms) || t.item != self.item || t.level > self.max_level {
            return false;
        }
        match (self.max_grade, answer) {
            (Some(max), Some(AnswerValue::Grade(g))) => *g <= max,
            (Some(_), _) => false,
            (None, _) => true,
        }
    }
}

/// The muting that silences `t`, if any.
pub fn muted_by<'a>(
    mutes: &'a [Mute],
    t: &Triggered,
    answers: &[(String, AnswerValue)],
    now_ms: i64,
) -> Option<&'a Mute> {
    let answer = answers.iter().find(|(i, _)| *i == t.item).map(|(_, v)| v);
    mutes.iter().find(|m| m.covers(t, answer, now_ms))
}

/// The mutings past their end and not yet recorded as ended.
pub fn expired(mutes: &[Mute], now_ms: i64) -> impl Iterator<Item = &Mute> {
    mutes
        .iter()
        .filter(move |m| m.ended_at_ms.is_none() && now_ms >= m.until_ms)
}

/// A triage action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriageAction {
    /// A nurse takes the alert.
    Take,
    /// The patient was called back (note).
    CallBack(String),
    /// Advice given (note).
    Advise(String),
    /// Sent to the doctor (note).
    Escalate(String),
    /// Closed with an outcome.
    Close(String),
}

/// How an alert ended: the level of care it led to (counted on the
/// programme's dashboard, sent to the hospital in the closing ORU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Advice given to the patient, nothing more.
    Advice,
    /// A teleconsultation was booked.
    Consultation,
    /// Sent to the emergency department.
    Emergency,
    /// An orientation request (SSR, HAD) was sent.
    Orientation,
    /// Nothing to do (a false alarm, already handled elsewhere).
    NoAction,
}

impl Outcome {
    /// Every outcome, in the order forms and dashboards list them.
    pub const ALL: [Outcome; 5] = [
        Outcome::Advice,
        Outcome::Consultation,
        Outcome::Emergency,
        Outcome::Orientation,
        Outcome::NoAction,
    ];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Advice => "advice",
            Outcome::Consultation => "teleconsultation",
            Outcome::Emergency => "emergency",
            Outcome::Orientation => "orientation",
            Outcome::NoAction => "none",
        }
    }

    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.code() == c)
    }

    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            Outcome::Advice => "conseil donné",
            Outcome::Consultation => "téléconsultation programmée",
            Outcome::Emergency => "adressé(e) aux urgences",
            Outcome::Orientation => "orientation demandée (SSR, HAD)",
            Outcome::NoAction => "sans suite",
        }
    }

    fn index(self) -> usize {
        match self {
            Outcome::Advice => 0,
            Outcome::Consultation => 1,
            Outcome::Emergency => 2,
            Outcome::Orientation => 3,
            Outcome::NoAction => 4,
        }
    }
}

/// Closing needs an outcome; no other step takes one.
pub fn check_outcome(action: &TriageAction, outcome: Option<Outcome>) -> Result<(), TriageError> {
    match (action, outcome) {
        (TriageAction::Close(_), None) => Err(TriageError::OutcomeRequired),
        (TriageAction::Close(_), Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(TriageError::NotNow),
    }
}

/// A triage step the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// Not from this state.
    #[error("action impossible dans l'état actuel de l'alerte")]
    NotNow,
    /// A note or outcome is needed.
    #[error("une note est nécessaire")]
    NoteRequired,
    /// An escalated alert is the doctor's.
    #[error("une alerte transmise est close par le médecin")]
    DoctorOnly,
    /// Closing says how the alert ended.
    #[error(
        "choisissez l'issue de l'alerte (conseil, téléconsultation, urgences, orientation, sans suite)"
    )]
    OutcomeRequired,
}

/// Who triages: a nurse, or a doctor of the alert's establishment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triager {
    /// A nurse (IDE, IPA).
    Nurse,
    /// A doctor.
    Doctor,
}

/// Whether `who` may act on an alert in `status` at all: once escalated, an
/// alert is the doctor's, and only the doctor closes it.
pub fn may_triage(status: AlertStatus, who: Triager) -> Result<(), TriageError> {
    match (status, who) {
        (AlertStatus::Escalated, Triager::Nurse) => Err(TriageError::DoctorOnly),
        _ => Ok(()),
    }
}

/// The steps `who` may offer on an alert in `status`, in the order a page
/// lists them.
pub fn triage_steps(status: AlertStatus, who: Triager) -> &'static [TriageStep] {
    use TriageStep::*;
    match (status, who) {
        (AlertStatus::Open, _) => &[Take, Escalate],
        (AlertStatus::Taken, _) => &[CallBack, Advise, Escalate, Close],
        (AlertStatus::Escalated, Triager::Doctor) => &[Close],
        _ => &[],
    }
}

/// A kind of triage step, without its note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriageStep {
    /// Take the alert.
    Take,
    /// The patient was called back.
    CallBack,
    /// Advice given.
    Advise,
    /// Sent to the doctor.
    Escalate,
    /// Closed with an outcome.
    Close,
}

impl TriageStep {
    /// The form's code.
    pub fn code(self) -> &'static str {
        match self {
            TriageStep::Take => "take",
            TriageStep::CallBack => "callback",
            TriageStep::Advise => "advise",
            TriageStep::Escalate => "escalate",
            TriageStep::Close => "close",
        }
    }

    /// The step of a form's code.
    pub fn from_code(c: &str) -> Option<TriageStep> {
        [
            TriageStep::Take,
            TriageStep::CallBack,
            TriageStep::Advise,
            TriageStep::Escalate,
            TriageStep::Close,
        ]
        .into_iter()
        .find(|s| s.code() == c)
    }

    /// The action, with its note.
    pub fn with_note(self, note: String) -> TriageAction {
        match self {
            TriageStep::Take => TriageAction::Take,
            TriageStep::CallBack => TriageAction::CallBack(note),
            TriageStep::Advise => TriageAction::Advise(note),
            TriageStep::Escalate => TriageAction::Escalate(note),
            TriageStep::Close => TriageAction::Close(note),
        }
    }
}

/// The state after `action`. Nurses take an open alert, call back or advise while
/// they hold it, escalate it to the doctor with a note, or close it with an
/// outcome; the doctor closes an escalated alert.
pub fn triage(status: AlertStatus, action: &TriageAction) -> Result<AlertStatus, TriageError> {
    use AlertStatus::*;
    let note = |n: &str| {
        if n.trim().is_empty() {
            Err(TriageError::NoteRequired)
        } else {
            Ok(())
        }
    };
    match (status, action) {
        (Open, TriageAction::Take) => Ok(Taken),
        (Taken, TriageAction::CallBack(n) | TriageAction::Advise(n)) => note(n).map(|()| Taken),
        (Open | Taken, TriageAction::Escalate(n)) => note(n).map(|()| Escalated),
        (Taken | Escalated, TriageAction::Close(n)) => note(n).map(|()| Closed),
        _ => Err(TriageError::NotNow),
    }
}

/// Whether an alert still open was raised more than `sla_ms` ago: it then escalates
/// by itself.
pub fn overdue(status: AlertStatus, raised_ms: i64, now_ms: i64, sla_ms: i64) -> bool {
    status == AlertStatus::Open && now_ms - raised_ms > sla_ms
}

/// An enrolment of a patient in a programme (a FHIR CarePlan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Id.
    pub id: crate::EnrolmentId,
    /// Patient.
    pub patient: PatientId,
    /// Establishment following the patient.
    pub establishment: EstablishmentId,
    /// Programme id.
    pub programme: String,
    /// `active` or `ended`.
    pub status: String,
    /// Start (Unix ms).
    pub started_at_ms: i64,
    /// End reason, once ended.
    pub end_reason: Option<String>,
}

/// An alert raised by the rules (a FHIR Task for its triage, a Flag while open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Id.
    pub id: crate::AlertId,
    /// Enrolment.
    pub enrolment: crate::EnrolmentId,
    /// Patient.
    pub patient: PatientId,
    /// Establishment whose nurses handle it.
    pub establishment: EstablishmentId,
    /// Level.
    pub level: AlertLevel,
    /// Item.
    pub item: String,
    /// Why.
    pub reason: String,
    /// Triage state.
    pub status: AlertStatus,
    /// Raised (Unix ms).
    pub raised_at_ms: i64,
    /// To handle before (Unix ms).
    pub due_at_ms: i64,
    /// Outcome, once closed: the note.
    pub outcome: Option<String>,
    /// The level of care it led to, once closed.
    pub outcome_kind: Option<Outcome>,
}

/// A message between a patient and the care team (a FHIR Communication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Id.
    pub id: String,
    /// Enrolment (the thread).
    pub enrolment: crate::EnrolmentId,
    /// Patient.
    pub patient: PatientId,
    /// Whether the patient wrote it (else the team).
    pub from_patient: bool,
    /// Who wrote it (display name).
    pub author: String,
    /// Text.
    pub body: String,
    /// Sent (Unix ms).
    pub at_ms: i64,
    /// Read by the other side (Unix ms).
    pub read_at_ms: Option<i64>,
}

/// When the next questionnaire was due, if it is due now: a period after the last
/// response (or after the start, before any), every `frequency_days`.
pub fn questionnaire_due(
    started_ms: i64,
    last_response_ms: Option<i64>,
    frequency_days: i64,
    now_ms: i64,
) -> Option<i64> {
    let due = last_response_ms
        .unwrap_or(started_ms)
        .saturating_add(frequency_days.saturating_mul(24 * 3600 * 1000));
    (now_ms >= due).then_some(due)
}

/// One alert as the dashboard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertFact {
    /// Level.
    pub level: AlertLevel,
    /// Raised (Unix ms).
    pub raised_ms: i64,
    /// Due (Unix ms): raised + the SLA.
    pub due_ms: i64,
    /// First action by a person (taken, called back, advised, escalated, closed).
    pub handled_ms: Option<i64>,
    /// How it ended, once closed.
    pub outcome: Option<Outcome>,
}

/// A programme's figures over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Alerts raised, per level: info, warning, urgent.
    pub by_level: [usize; 3],
    /// Alerts a person has acted on.
    pub handled: usize,
    /// Median time from raising to the first action, over the handled alerts.
    pub median_handle_ms: Option<i64>,
    /// Alerts handled within their SLA.
    pub within_sla: usize,
    /// Alerts whose SLA is decided: handled, or not handled and past due.
    pub sla_decided: usize,
    /// Alerts per week (oldest first), per level.
    pub weeks: Vec<[usize; 3]>,
    /// Closed alerts per outcome, in the order of [`Outcome::ALL`].
    pub outcomes: [usize; 5],
}

impl Dashboard {
    /// Share of decided alerts handled within the SLA, in percent.
    pub fn sla_percent(&self) -> Option<f64> {
        (self.sla_decided > 0).then(|| self.within_sla as f64 * 100.0 / self.sla_decided as f64)
    }
}

fn level_index(l: AlertLevel) -> usize {
    match l {
        AlertLevel::Info => 0,
        AlertLevel::Warning => 1,
        AlertLevel::Urgent => 2,
    }
}

/// The figures of the alerts raised in the `weeks` weeks before `now_ms`. An alert
/// still waiting counts against the SLA only once it is past due.
pub fn dashboard(facts: &[AlertFact], now_ms: i64, weeks: usize) -> Dashboard {
    const WEEK: i64 = 7 * 24 * 3600 * 1000;
    let span = i64::try_from(weeks).unwrap_or(0).saturating_mul(WEEK);
    let since = now_ms - span;
    let mut d = Dashboard {
        by_level: [0; 3],
        handled: 0,
        median_handle_ms: None,
        within_sla: 0,
        sla_decided: 0,
        weeks: vec![[0; 3]; weeks],
        outcomes: [0; 5],
    };
    let mut delays = Vec::new();
    for f in facts
        .iter()
        .filter(|f| f.raised_ms >= since && f.raised_ms <= now_ms)
    {
        let l = level_index(f.level);
        if let Some(n) = d.by_level.get_mut(l) {
            *n += 1;
        }
        if let Some(n) = f.outcome.and_then(|o| d.outcomes.get_mut(o.index())) {
            *n += 1;
        }
        let week = usize::try_from((f.raised_ms - since) / WEEK).unwrap_or(0);
        if let Some(n) = d.weeks.get_mut(week).and_then(|w| w.get_mut(l)) {
            *n += 1;
        }
        match f.handled_ms {
            Some(h) => {
                d.handled += 1;
                d.sla_decided += 1;
                delays.push(h - f.raised_ms);
                if h <= f.due_ms {
                    d.within_sla += 1;
                }
            }
            None if now_ms > f.due_ms => d.sla_decided += 1,
            None => {}
        }
    }
    delays.sort_unstable();
    let n = delays.len();
    let mid = delays.get(n / 2).copied();
    d.median_handle_ms = if n % 2 == 1 {
        mid
    } else {
        let below = n
            .checked_sub(1)
            .map(|_| n / 2 - 1)
            .and_then(|i| delays.get(i).copied());
        below.zip(mid).map(|(a, b)| (a + b) / 2)
    };
    d
}

/// The enrolment a movement proposes to the nurses, as the reason shown: a
/// unit configured for remote monitoring on `configured` (A01 admission, A03
/// discharge…) proposes one when that event happens there; a cancel never
/// does. The nurse decides (consent is asked then).
pub fn enrolment_proposal(
    trigger: &str,
    configured: Option<&str>,
    cancel: bool,
    unit: &str,
) -> Option<String> {
    if cancel || configured != Some(trigger) {
        return None;
    }
    let event = if trigger == "A03" {
        "Sortie"
    } else {
        "Admission"
    };
    Some(format!("{event} en {unit} ({trigger})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    fn neuropathy(max_grade: Option<u8>) -> Mute {
        Mute {
            id: "m".into(),
            item: "neuropathy".into(),
            max_grade,
            max_level: AlertLevel::Warning,
            reason: "neuropathie connue".into(),
            starts_at_ms: 0,
            until_ms: 14 * DAY,
            ended_at_ms: None,
        }
    }

    fn hit(level: AlertLevel) -> Triggered {
        Triggered {
            level,
            item: "neuropathy".into(),
            reason: "grade".into(),
            advice: String::new(),
        }
    }

    #[test]
    fn a_mute_silences_its_grade_and_no_worse() {
        let m = neuropathy(Some(2));
        let g = |n| vec![("neuropathy".to_owned(), AnswerValue::Grade(n))];
        let warn = hit(AlertLevel::Warning);
        assert!(muted_by(std::slice::from_ref(&m), &warn, &g(2), DAY).is_some());
        assert!(muted_by(std::slice::from_ref(&m), &warn, &g(1), DAY).is_some());
        assert!(
            muted_by(std::slice::from_ref(&m), &warn, &g(3), DAY).is_none(),
            "a worse grade alerts"
        );
        assert!(
            muted_by(
                std::slice::from_ref(&m),
                &hit(AlertLevel::Urgent),
                &g(2),
                DAY
            )
            .is_none(),
            "a more serious level alerts"
        );
        let mut other = warn.clone();
        other.item = "diarrhoea".into();
        assert!(
            !m.covers(&other, Some(&AnswerValue::Grade(2)), DAY),
            "other item"
        );
        assert!(
            !m.covers(&warn, Some(&AnswerValue::Grade(2)), 14 * DAY),
            "ended by itself"
        );
        assert!(
            !m.covers(&warn, Some(&AnswerValue::Grade(2)), -1),
            "not started"
        );
        assert!(!m.covers(&warn, None, DAY), "a graded mute needs a grade");
        let mut lifted = m.clone();
        lifted.ended_at_ms = Some(DAY);
        assert!(
            !lifted.covers(&warn, Some(&AnswerValue::Grade(2)), DAY),
            "lifted"
        );
        // Without a grade (a measure), the level decides.
        let any = neuropathy(None);
        assert!(any.covers(&warn, Some(&AnswerValue::Number(38.0)), DAY));
        assert!(!any.covers(&hit(AlertLevel::Urgent), None, DAY));
        assert_eq!(expired(&[m.clone(), lifted], 14 * DAY).count(), 1);
        assert_eq!(expired(std::slice::from_ref(&m), 14 * DAY - 1).count(), 0);
    }

    #[test]
    fn a_mute_lasts_one_week_to_three_months_with_a_reason() {
        use AlertLevel::*;
        assert_eq!(check_mute(7, "connu", Warning, Some(2)), Ok(()));
        assert_eq!(check_mute(92, "connu", Info, None), Ok(()));
        assert_eq!(
            check_mute(6, "connu", Warning, None),
            Err(MuteError::Duration)
        );
        assert_eq!(
            check_mute(93, "connu", Warning, None),
            Err(MuteError::Duration)
        );
        assert_eq!(check_mute(7, "  ", Warning, None), Err(MuteError::Reason));
        assert_eq!(check_mute(7, "connu", Urgent, None), Err(MuteError::Urgent));
        assert_eq!(
            check_mute(7, "connu", Warning, Some(0)),
            Err(MuteError::Grade)
        );
        assert_eq!(
            check_mute(7, "connu", Warning, Some(5)),
            Err(MuteError::Grade)
        );
    }

    #[test]
    fn closing_says_how_the_alert_ended_and_only_closing() {
        let close = TriageAction::Close("rappel demain".into());
        assert_eq!(
            check_outcome(&close, None),
            Err(TriageError::OutcomeRequired)
        );
        assert_eq!(check_outcome(&close, Some(Outcome::Advice)), Ok(()));
        assert_eq!(check_outcome(&TriageAction::Take, None), Ok(()));
        assert_eq!(
            check_outcome(&TriageAction::Take, Some(Outcome::Emergency)),
            Err(TriageError::NotNow)
        );
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(Outcome::from_code("maybe"), None);
    }

    #[test]
    fn a_muted_alert_takes_no_triage_step() {
        assert_eq!(
            triage(AlertStatus::Muted, &TriageAction::Take),
            Err(TriageError::NotNow)
        );
        assert!(triage_steps(AlertStatus::Muted, Triager::Doctor).is_empty());
        assert!(!overdue(AlertStatus::Muted, 0, i64::MAX / 2, 1));
    }

    #[test]
    fn movements_propose_enrolments_where_configured() {
        assert_eq!(
            enrolment_proposal("A03", Some("A03"), false, "HDJ-ONCO").as_deref(),
            Some("Sortie en HDJ-ONCO (A03)")
        );
        assert_eq!(
            enrolment_proposal("A01", Some("A01"), false, "MED").as_deref(),
            Some("Admission en MED (A01)")
        );
        assert_eq!(
            enrolment_proposal("A01", Some("A03"), false, "MED"),
            None,
            "other event"
        );
        assert_eq!(
            enrolment_proposal("A03", None, false, "MED"),
            None,
            "not configured"
        );
        assert_eq!(
            enrolment_proposal("A03", Some("A03"), true, "MED"),
            None,
            "a cancel"
        );
    }
    use AlertLevel::*;

    fn rules() -> Vec<Rule> {
        vec![
            Rule::Grade {
                item: "diarrhoea".into(),
                min_grade: 3,
                level: Urgent,
                advice: "Appelez le 15".into(),
            },
            Rule::Grade {
                item: "diarrhoea".into(),
                min_grade: 2,
                level: Warning,
                advice: "Buvez".into(),
            },
            Rule::Above {
                item: "temperature".into(),
                threshold: 38.5,
                level: Urgent,
                advice: "Fièvre".into(),
            },
            Rule::Below {
                item: "spo2".into(),
                threshold: 92.0,
                level: Urgent,
                advice: "Appelez le 15".into(),
            },
            Rule::Yes {
                item: "bleeding".into(),
                level: Warning,
                advice: "".into(),
            },
            Rule::Drop {
                item: "weight".into(),
                percent: 5.0,
                days: 14,
                level: Warning,
                advice: "".into(),
            },
        ]
    }

    fn eval(answers: Vec<(&str, AnswerValue)>) -> Vec<Triggered> {
        let a: Vec<(String, AnswerValue)> = answers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let day = 24 * 3600 * 1000;
        let history = |item: &str| {
            if item == "weight" {
                vec![(0, 70.0), (10 * day, 72.0)]
            } else {
                vec![]
            }
        };
        evaluate(&rules(), &a, &history, 20 * day)
    }

    #[test]
    fn grades_rule_by_rule() {
        assert!(eval(vec![("diarrhoea", AnswerValue::Grade(1))]).is_empty());
        let t = eval(vec![("diarrhoea", AnswerValue::Grade(2))]);
        assert_eq!(t.iter().map(|t| t.level).collect::<Vec<_>>(), vec![Warning]);
        let t = eval(vec![("diarrhoea", AnswerValue::Grade(3))]);
        assert_eq!(
            t.iter().map(|t| t.level).collect::<Vec<_>>(),
            vec![Urgent, Warning],
            "most serious first"
        );
        assert_eq!(immediate_advice(&t), Some("Appelez le 15"));
        assert_eq!(
            immediate_advice(&eval(vec![("diarrhoea", AnswerValue::Grade(2))])),
            None
        );
    }

    #[test]
    fn thresholds_flags_and_trends() {
        assert_eq!(
            eval(vec![("temperature", AnswerValue::Number(38.5))])[0].level,
            Urgent
        );
        assert!(eval(vec![("temperature", AnswerValue::Number(38.4))]).is_empty());
        assert_eq!(
            eval(vec![("spo2", AnswerValue::Number(91.0))])[0].reason,
            "91 ≤ 92"
        );
        assert!(eval(vec![("spo2", AnswerValue::Number(95.0))]).is_empty());
        assert_eq!(eval(vec![("bleeding", AnswerValue::Bool(true))]).len(), 1);
        assert!(eval(vec![("bleeding", AnswerValue::Bool(false))]).is_empty());
        // 72 kg eight days ago, 68 now: 5.6 % in 14 days. The 70 kg of day 0 is outside.
        let t = eval(vec![("weight", AnswerValue::Number(68.0))]);
        assert_eq!(t[0].reason, "baisse de 5.6 % en 14 jours (72 → 68)");
        assert!(eval(vec![("weight", AnswerValue::Number(69.0))]).is_empty());
        // A wrong type never triggers.
        assert!(eval(vec![("temperature", AnswerValue::Text("chaud".into()))]).is_empty());
    }

    #[test]
    fn triage_life_cycle() {
        use AlertStatus::*;
        assert_eq!(triage(Open, &TriageAction::Take), Ok(Taken));
        assert_eq!(
            triage(Taken, &TriageAction::CallBack("rappelée".into())),
            Ok(Taken)
        );
        assert_eq!(
            triage(Taken, &TriageAction::Advise("".into())),
            Err(TriageError::NoteRequired)
        );
        assert_eq!(
            triage(Taken, &TriageAction::Escalate("avis médical".into())),
            Ok(Escalated)
        );
        assert_eq!(
            triage(Open, &TriageAction::Escalate("direct".into())),
            Ok(Escalated)
        );
        assert_eq!(
            triage(Escalated, &TriageAction::Close("hospitalisation".into())),
            Ok(Closed)
        );
        assert_eq!(
            triage(Open, &TriageAction::Close("x".into())),
            Err(TriageError::NotNow)
        );
        assert_eq!(
            triage(Closed, &TriageAction::Take),
            Err(TriageError::NotNow)
        );
        assert_eq!(
            triage(Escalated, &TriageAction::Take),
            Err(TriageError::NotNow)
        );
        assert!(overdue(Open, 0, 12 * 3600 * 1000 + 1, 12 * 3600 * 1000));
        assert!(!overdue(Open, 0, 12 * 3600 * 1000, 12 * 3600 * 1000));
        assert!(!overdue(Taken, 0, i64::MAX / 2, 1));
        for l in [Info, Warning, Urgent] {
            assert_eq!(AlertLevel::from_code(l.code()), Some(l));
        }
    }

    #[test]
    fn the_dashboard_counts_levels_weeks_median_and_sla() {
        const H: i64 = 3600 * 1000;
        const W: i64 = 7 * 24 * H;
        let now = 100 * W;
        let fact = |level, raised_ms: i64, handled_after_h: Option<i64>| AlertFact {
            level,
            raised_ms,
            due_ms: raised_ms + 12 * H,
            handled_ms: handled_after_h.map(|h| raised_ms + h * H),
            outcome: None,
        };
        let facts = [
            fact(AlertLevel::Urgent, now - W / 2, Some(1)), // this week, in time
            fact(AlertLevel::Warning, now - W - H, Some(14)), // last week, late
            fact(AlertLevel::Warning, now - 2 * W - H, Some(3)), // two weeks ago
            fact(AlertLevel::Info, now - 13 * H, None),     // waiting, past due
            fact(AlertLevel::Urgent, now - H, None),        // waiting, not yet due
            fact(AlertLevel::Urgent, now - 5 * W, Some(1)), // outside the period
            fact(AlertLevel::Urgent, now + H, Some(1)),     // in the future: ignored
        ];
        let d = dashboard(&facts, now, 4);
        assert_eq!(d.by_level, [1, 2, 2]);
        assert_eq!(d.handled, 3);
        assert_eq!(d.median_handle_ms, Some(3 * H));
        assert_eq!((d.within_sla, d.sla_decided), (2, 4));
        assert_eq!(d.sla_percent(), Some(50.0));
        assert_eq!(d.weeks, vec![[0, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 2]]);
        assert_eq!(d.outcomes, [0; 5], "nothing closed");
        let mut closed = facts.to_vec();
        closed[0].outcome = Some(Outcome::Consultation);
        closed[1].outcome = Some(Outcome::Consultation);
        closed[2].outcome = Some(Outcome::Orientation);
        closed[5].outcome = Some(Outcome::Emergency); // outside the period
        assert_eq!(dashboard(&closed, now, 4).outcomes, [0, 2, 0, 1, 0]);
        // An even count takes the mean of the middle two; nothing gives nothing.
        let two = dashboard(&facts[..2], now, 4);
        assert_eq!(two.median_handle_ms, Some((H + 14 * H) / 2));
        let none = dashboard(&[], now, 4);
        assert_eq!((none.median_handle_ms, none.sla_percent()), (None, None));
        assert_eq!(none.weeks.len(), 4);
    }

    #[test]
    fn a_questionnaire_is_due_one_period_after_the_last_answer() {
        const D: i64 = 24 * 3600 * 1000;
        assert_eq!(questionnaire_due(0, None, 7, 7 * D - 1), None);
        assert_eq!(questionnaire_due(0, None, 7, 7 * D), Some(7 * D));
        assert_eq!(questionnaire_due(0, Some(5 * D), 7, 8 * D), None);
        assert_eq!(questionnaire_due(0, Some(5 * D), 7, 20 * D), Some(12 * D));
        assert_eq!(questionnaire_due(0, Some(5 * D), 1, 6 * D), Some(6 * D));
    }

    #[test]
    fn only_the_doctor_acts_on_an_escalated_alert() {
        use super::{AlertStatus::*, TriageStep, Triager, may_triage, triage_steps};
        assert_eq!(
            may_triage(Escalated, Triager::Nurse),
            Err(TriageError::DoctorOnly)
        );
        assert_eq!(may_triage(Escalated, Triager::Doctor), Ok(()));
        assert_eq!(may_triage(Taken, Triager::Nurse), Ok(()));
        assert_eq!(may_triage(Open, Triager::Nurse), Ok(()));
        assert_eq!(
            triage_steps(Escalated, Triager::Doctor),
            &[TriageStep::Close]
        );
        assert!(triage_steps(Escalated, Triager::Nurse).is_empty());
        assert!(triage_steps(Closed, Triager::Doctor).is_empty());
        assert_eq!(
            triage_steps(Open, Triager::Nurse),
            &[TriageStep::Take, TriageStep::Escalate]
        );
        assert_eq!(triage_steps(Taken, Triager::Nurse).len(), 4);
    }

    #[test]
    fn triage_steps_read_back_from_their_codes() {
        use super::TriageStep;
        for s in [
            TriageStep::Take,
            TriageStep::CallBack,
            TriageStep::Advise,
            TriageStep::Escalate,
            TriageStep::Close,
        ] {
            assert_eq!(TriageStep::from_code(s.code()), Some(s));
        }
        assert_eq!(TriageStep::from_code("delete"), None);
        assert_eq!(
            TriageStep::Close.with_note("rappel".into()),
            TriageAction::Close("rappel".into())
        );
        assert_eq!(TriageStep::Take.with_note("x".into()), TriageAction::Take);
    }
}
