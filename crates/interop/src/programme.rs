//! Monitoring programmes as files: a FHIR Questionnaire plus frequency, duration,
//! SLA, care team and rules. Read here into the domain's rules and item kinds,
//! checked (every rule names an item of a compatible type), the questionnaire kept
//! as received for the FHIR API. Two programmes ship with Parcours (`programmes/`).

use domain::monitoring::{AlertLevel, Rule};
use serde::Deserialize;
use serde_json::Value;

/// The code system of CTCAE grades in the shipped questionnaires.
pub const GRADE_SYSTEM: &str = "urn:parcours:ctcae-grade";

/// What an item expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A CTCAE grade (choice in [`GRADE_SYSTEM`]), with its highest grade.
    Grade(u8),
    /// A measure (decimal or integer), with its UCUM unit if given.
    Number,
    /// Yes / no.
    Bool,
    /// Text.
    Text,
}

/// One question.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// linkId.
    pub link_id: String,
    /// The question, in French.
    pub text: String,
    /// What it expects.
    pub kind: ItemKind,
    /// The grades' labels (for graded items), index = grade.
    pub options: Vec<String>,
    /// UCUM unit (measures).
    pub unit: Option<String>,
    /// What it observes (`item.code[0]`: LOINC for measures, a local symptom code
    /// otherwise): system, code, display. Observations carry it.
    pub code: Option<(String, String, String)>,
    /// A short name for people (the code's display, else the question).
    pub label: String,
}

/// A programme read from its file.
#[derive(Debug, Clone)]
pub struct Programme {
    /// Id (also the Questionnaire id).
    pub id: String,
    /// Title.
    pub title: String,
    /// Days between questionnaires.
    pub frequency_days: i64,
    /// Length of the monitoring, in days.
    pub duration_days: i64,
    /// Hours within which an alert must be handled.
    pub sla_hours: i64,
    /// Roles of the care team (`nurse`, `doctor`).
    pub care_team: Vec<String>,
    /// The questions.
    pub items: Vec<Item>,
    /// The rules.
    pub rules: Vec<Rule>,
    /// The FHIR Questionnaire as in the file.
    pub questionnaire: Value,
    /// The monthly fees and their conditions (none: not billed).
    pub billing: Vec<domain::billing::Fee>,
    /// Where the fees come from (the text in force), shown with the statement.
    pub billing_reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    id: String,
    title: String,
    frequency_days: i64,
    duration_days: i64,
    sla_hours: i64,
    care_team: Vec<String>,
    questionnaire: Value,
    rules: Vec<RuleIn>,
    #[serde(default)]
    billing: Option<BillingIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BillingIn {
    reference: String,
    fees: Vec<FeeIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FeeIn {
    code: String,
    label: String,
    amount_cents: i64,
    conditions: Vec<ConditionIn>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
enum ConditionIn {
    #[serde(rename_all = "camelCase")]
    Enrolled {
        min_days: u32,
    },
    #[serde(rename_all = "camelCase")]
    Transmitted {
        min_days: u32,
    },
    AlertsHandled,
}

/// The fees of a billing block, checked: codes unique and given, amounts
/// positive, day counts within a month.
fn fees_of(b: BillingIn) -> Result<(Vec<domain::billing::Fee>, String), String> {
    use domain::billing::{Condition, Fee};
    let mut out: Vec<Fee> = Vec::new();
    for f in b.fees {
        if f.code.trim().is_empty() || out.iter().any(|o| o.code == f.code) {
            return Err(format!(
                "facturation : code de forfait vide ou répété ({})",
                f.code
            ));
        }
        if f.amount_cents <= 0 {
            return Err(format!(
                "facturation : montant du forfait {} non positif",
                f.code
            ));
        }
        let conditions = f
            .conditions
            .into_iter()
            .map(|c| match c {
                ConditionIn::Enrolled { min_days } if (1..=31).contains(&min_days) => {
                    Ok(Condition::Enrolled { min_days })
                }
                ConditionIn::Transmitted { min_days } if (1..=31).contains(&min_days) => {
                    Ok(Condition::Transmitted { min_days })
                }
                ConditionIn::AlertsHandled => Ok(Condition::AlertsHandled),
                _ => Err(format!(
                    "facturation : forfait {} : un nombre de jours va de 1 à 31",
                    f.code
                )),
            })
            .collect::<Result<Vec<_>, String>>()?;
        out.push(Fee {
            code: f.code,
            label: f.label,
            amount_cents: f.amount_cents,
            conditions,
        });
    }
    Ok((out, b.reference))
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
enum RuleIn {
    #[serde(rename_all = "camelCase")]
    Grade {
        item: String,
        min_grade: u8,
        level: String,
        advice: String,
    },
    Above {
        item: String,
        threshold: f64,
        level: String,
        advice: String,
    },
    Below {
        item: String,
        threshold: f64,
        level: String,
        advice: String,
    },
    Yes {
        item: String,
        level: String,
        advice: String,
    },
    Drop {
        item: String,
        percent: f64,
        days: i64,
        level: String,
        advice: String,
    },
}

/// Why a programme file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("programme {file}: {message}")]
pub struct ProgrammeError {
    /// The programme (id or file).
    pub file: String,
    /// What is wrong.
    pub message: String,
}

fn items(q: &Value) -> Result<Vec<Item>, String> {
    let list = q
        .get("item")
        .and_then(Value::as_array)
        .ok_or("le questionnaire n'a pas d'item")?;
    list.iter()
        .map(|it| {
            let link_id = it.get("linkId").and_then(Value::as_str).ok_or("item sans linkId")?.to_owned();
            let text = it.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
            let unit = it
                .get("extension")
                .and_then(Value::as_array)
                .and_then(|e| e.iter().find_map(|x| x.get("valueCoding").and_then(|c| c.get("code")).and_then(Value::as_str)))
                .map(str::to_owned);
            let code = it
                .get("code")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .map(|c| {
                    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    (s("system"), s("code"), s("display"))
                });
            if code.as_ref().is_some_and(|(s, c, _)| s.is_empty() || c.is_empty()) {
                return Err(format!("{link_id}: code sans system ou sans code"));
            }
            let label = code
                .as_ref()
                .map(|c| c.2.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| text.clone());
            let (kind, options) = match it.get("type").and_then(Value::as_str) {
                Some("choice") => {
                    let opts = it.get("answerOption").and_then(Value::as_array).ok_or(format!("{link_id}: choix sans answerOption"))?;
                    let mut labels = Vec::new();
                    for (i, o) in opts.iter().enumerate() {
                        let c = o.get("valueCoding").ok_or(format!("{link_id}: option sans valueCoding"))?;
                        let code_ok = c.get("system").and_then(Value::as_str) == Some(GRADE_SYSTEM)
                            && c.get("code").and_then(Value::as_str) == Some(i.to_string().as_str());
                        if !code_ok {
                            return Err(format!("{link_id}: les options doivent être les grades 0, 1, 2… du système {GRADE_SYSTEM}"));
                        }
                        labels.push(c.get("display").and_then(Value::as_str).unwrap_or("").to_owned());
                    }
                    let max = u8::try_from(labels.len().saturating_sub(1)).map_err(|_| format!("{link_id}: trop de grades"))?;
                    (ItemKind::Grade(max), labels)
                }
                Some("decimal" | "integer") => (ItemKind::Number, vec![]),
                Some("boolean") => (ItemKind::Bool, vec![]),
                Some("string" | "text") => (ItemKind::Text, vec![]),
                other => return Err(format!("{link_id}: type d'item non pris en charge {other:?}")),
            };
            Ok(Item { link_id, text, kind, options, unit, code, label })
        })
        .collect()
}

/// One rule of a programme file, checked against its questionnaire's items.
fn rule_of(r: RuleIn, items: &[Item]) -> Result<Rule, String> {
    let kind_of = |item: &str| items.iter().find(|i| i.link_id == item).map(|i| i.kind);
    let level =
        |l: &str| AlertLevel::from_code(l).ok_or_else(|| format!("niveau d'alerte inconnu {l:?}"));
    Ok(match r {
        RuleIn::Grade {
            item,
            min_grade,
            level: l,
            advice,
        } => match kind_of(&item) {
            Some(ItemKind::Grade(max)) if min_grade <= max => Rule::Grade {
                item,
                min_grade,
                level: level(&l)?,
                advice,
            },
            _ => {
                return Err(format!(
                    "règle de grade sur {item:?}: item gradé absent ou grade hors échelle"
                ));
            }
        },
        RuleIn::Above {
            item,
            threshold,
            level: l,
            advice,
        }
        | RuleIn::Below {
            item,
            threshold,
            level: l,
            advice,
        } if kind_of(&item) != Some(ItemKind::Number) => {
            let _ = (threshold, l, advice);
            return Err(format!(
                "règle de seuil sur {item:?}: item numérique absent"
            ));
        }
        RuleIn::Above {
            item,
            threshold,
            level: l,
            advice,
        } => Rule::Above {
            item,
            threshold,
            level: level(&l)?,
            advice,
        },
        RuleIn::Below {
            item,
            threshold,
            level: l,
            advice,
        } => Rule::Below {
            item,
            threshold,
            level: level(&l)?,
            advice,
        },
        RuleIn::Yes {
            item,
            level: l,
            advice,
        } => match kind_of(&item) {
            Some(ItemKind::Bool) => Rule::Yes {
                item,
                level: level(&l)?,
                advice,
            },
            _ => {
                return Err(format!("règle oui/non sur {item:?}: item booléen absent"));
            }
        },
        RuleIn::Drop {
            item,
            percent,
            days,
            level: l,
            advice,
        } => match kind_of(&item) {
            Some(ItemKind::Number) if percent > 0.0 && days > 0 => Rule::Drop {
                item,
                percent,
                days,
                level: level(&l)?,
                advice,
            },
            _ => {
                return Err(format!(
                    "règle de tendance sur {item:?}: item numérique absent ou paramètres invalides"
                ));
            }
        },
    })
}

/// Reads and checks a programme file.
pub fn parse(text: &str) -> Result<Programme, ProgrammeError> {
    let fail = |file: &str, message: String| ProgrammeError {
        file: file.to_owned(),
        message,
    };
    let f: File =
        serde_json::from_str(text).map_err(|e| fail("?", format!("JSON invalide: {e}")))?;
    if f.questionnaire.get("resourceType").and_then(Value::as_str) != Some("Questionnaire") {
        return Err(fail(
            &f.id,
            "le champ questionnaire doit être une ressource Questionnaire".into(),
        ));
    }
    if f.frequency_days < 1 || f.duration_days < f.frequency_days || f.sla_hours < 1 {
        return Err(fail(
            &f.id,
            "fréquence, durée et délai de traitement doivent être positifs".into(),
        ));
    }
    let items = items(&f.questionnaire).map_err(|m| fail(&f.id, m))?;
    let rules = f
        .rules
        .into_iter()
        .map(|r| rule_of(r, &items))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|m| fail(&f.id, m))?;
    let (billing, billing_reference) = match f.billing {
        Some(b) => {
            let (fees, reference) = fees_of(b).map_err(|m| fail(&f.id, m))?;
            (fees, Some(reference))
        }
        None => (Vec::new(), None),
    };
    Ok(Programme {
        id: f.id,
        title: f.title,
        frequency_days: f.frequency_days,
        duration_days: f.duration_days,
        sla_hours: f.sla_hours,
        care_team: f.care_team,
        items,
        rules,
        questionnaire: f.questionnaire,
        billing,
        billing_reference,
    })
}

/// The programmes shipped with Parcours.
pub fn builtin() -> Vec<Result<Programme, ProgrammeError>> {
    vec![
        parse(include_str!("../../../programmes/oral-oncology.json")),
        parse(include_str!("../../../programmes/infectious-home.json")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::monitoring::{AnswerValue, evaluate, immediate_advice};

    fn onco() -> Programme {
        builtin().remove(0).unwrap()
    }

    #[test]
    fn the_billing_block_is_read_and_checked() {
        use domain::billing::Condition;
        let p = onco();
        assert_eq!(
            p.billing
                .iter()
                .map(|f| (f.code.as_str(), f.amount_cents))
                .collect::<Vec<_>>(),
            vec![("TLS-OPE", 2800), ("TLS-TEC", 7333)]
        );
        assert_eq!(
            p.billing[0].conditions,
            vec![
                Condition::Enrolled { min_days: 1 },
                Condition::Transmitted { min_days: 2 },
                Condition::AlertsHandled
            ]
        );
        assert!(p.billing_reference.unwrap().contains("16 mai 2023"));
        let text = include_str!("../../../programmes/oral-oncology.json");
        let mut v: Value = serde_json::from_str(text).unwrap();
        let bad = |v: &Value, needle: &str| {
            let e = parse(&v.to_string()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        };
        v["billing"]["fees"][1]["code"] = "TLS-OPE".into();
        bad(&v, "répété");
        v["billing"]["fees"][1]["code"] = "TLS-TEC".into();
        v["billing"]["fees"][1]["amountCents"] = 0.into();
        bad(&v, "non positif");
        v["billing"]["fees"][1]["amountCents"] = 100.into();
        v["billing"]["fees"][1]["conditions"][1]["minDays"] = 40.into();
        bad(&v, "de 1 à 31");
        v["billing"]["fees"][1]["conditions"][1] = serde_json::json!({"kind": "paid"});
        bad(&v, "JSON invalide");
        v.as_object_mut().unwrap().remove("billing");
        let p = parse(&v.to_string()).unwrap();
        assert!(
            p.billing.is_empty() && p.billing_reference.is_none(),
            "billing is optional"
        );
    }

    #[test]
    fn the_shipped_programmes_read_and_check() {
        let all: Vec<Programme> = builtin().into_iter().map(Result::unwrap).collect();
        assert_eq!(
            all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            vec!["oral-oncology", "infectious-home"]
        );
        let o = &all[0];
        assert_eq!((o.frequency_days, o.sla_hours), (7, 12));
        let graded: Vec<&str> = o
            .items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Grade(_)))
            .map(|i| i.link_id.as_str())
            .collect();
        assert_eq!(
            graded,
            vec![
                "fever",
                "diarrhoea",
                "nausea",
                "mucositis",
                "hand_foot",
                "fatigue",
                "pain",
                "dyspnoea",
                "rash"
            ]
        );
        assert_eq!(
            o.items
                .iter()
                .find(|i| i.link_id == "temperature")
                .unwrap()
                .unit
                .as_deref(),
            Some("Cel")
        );
        assert_eq!(
            o.items
                .iter()
                .find(|i| i.link_id == "hand_foot")
                .unwrap()
                .kind,
            ItemKind::Grade(3)
        );
        // Every item says what it observes; measures in LOINC, with a short label.
        assert!(all.iter().flat_map(|p| &p.items).all(|i| i.code.is_some()));
        let weight = o.items.iter().find(|i| i.link_id == "weight").unwrap();
        assert_eq!(
            weight.code.as_ref().map(|c| (c.0.as_str(), c.1.as_str())),
            Some(("http://loinc.org", "29463-7"))
        );
        assert_eq!(weight.label, "Poids");
        assert_eq!(
            all[1]
                .items
                .iter()
                .find(|i| i.link_id == "spo2")
                .unwrap()
                .code
                .as_ref()
                .unwrap()
                .1,
            "59408-5"
        );
    }

    #[test]
    fn an_item_without_code_is_named_by_its_question() {
        let mut v: Value =
            serde_json::from_str(include_str!("../../../programmes/infectious-home.json")).unwrap();
        v["questionnaire"]["item"][0]
            .as_object_mut()
            .unwrap()
            .remove("code");
        let p = parse(&v.to_string()).unwrap();
        assert_eq!(p.items[0].code, None);
        assert_eq!(p.items[0].label, p.items[0].text);
    }

    /// Item by item: grade 3 is urgent with immediate advice, grade 2 a warning,
    /// grade 1 nothing.
    #[test]
    fn every_graded_item_of_the_oncology_programme() {
        let p = onco();
        let none = |_: &str| vec![];
        for item in p
            .items
            .iter()
            .filter(|i| matches!(i.kind, ItemKind::Grade(_)))
        {
            let eval = |g: u8| {
                evaluate(
                    &p.rules,
                    &[(item.link_id.clone(), AnswerValue::Grade(g))],
                    &none,
                    0,
                )
            };
            assert!(eval(1).is_empty(), "{}", item.link_id);
            assert_eq!(
                eval(2).iter().map(|t| t.level).collect::<Vec<_>>(),
                vec![AlertLevel::Warning],
                "{}",
                item.link_id
            );
            let three = eval(3);
            assert_eq!(three[0].level, AlertLevel::Urgent, "{}", item.link_id);
            let advice = immediate_advice(&three).unwrap();
            assert!(advice.contains("15"), "{}: {advice}", item.link_id);
        }
        let fever = evaluate(
            &p.rules,
            &[("temperature".into(), AnswerValue::Number(38.6))],
            &none,
            0,
        );
        assert_eq!(fever[0].level, AlertLevel::Urgent);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let good: Value =
            serde_json::from_str(include_str!("../../../programmes/infectious-home.json")).unwrap();
        let check = |mutate: &dyn Fn(&mut Value), needle: &str| {
            let mut v = good.clone();
            mutate(&mut v);
            let e = parse(&v.to_string()).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        };
        check(
            &|v| v["rules"][0]["item"] = "nope".into(),
            "item numérique absent",
        );
        check(
            &|v| v["rules"][2]["minGrade"] = 9.into(),
            "grade hors échelle",
        );
        check(
            &|v| v["rules"][0]["level"] = "panic".into(),
            "niveau d'alerte inconnu",
        );
        check(
            &|v| v["rules"][4]["item"] = "spo2".into(),
            "item booléen absent",
        );
        check(
            &|v| v["questionnaire"]["resourceType"] = "Patient".into(),
            "ressource Questionnaire",
        );
        check(&|v| v["frequencyDays"] = 0.into(), "positifs");
        check(
            &|v| v["questionnaire"]["item"][0]["type"] = "attachment".into(),
            "type d'item non pris en charge",
        );
        check(
            &|v| {
                v["questionnaire"]["item"][2]["answerOption"][1]["valueCoding"]["code"] = "7".into()
            },
            "grades 0, 1, 2",
        );
        check(&|v| v["extra"] = 1.into(), "JSON invalide");
        check(
            &|v| v["questionnaire"]["item"][0]["code"][0]["code"] = "".into(),
            "code sans system ou sans code",
        );
    }
}
