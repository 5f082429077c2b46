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

/// A triage step the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// Not from this state.
    #[error("action impossible dans l'état actuel de l'alerte")]
    NotNow,
    /// A note or outcome is needed.
    #[error("une note est nécessaire")]
    NoteRequired,
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
    pub id: String,
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
    pub id: String,
    /// Enrolment.
    pub enrolment: String,
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
    /// Outcome, once closed.
    pub outcome: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
