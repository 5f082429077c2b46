//! Remote-monitoring billing (French common law since 1 July 2023): per
//! patient and month, flat fees — the operator's (the medical team) and the
//! provider's (the solution) — each due under conditions on the patient's
//! month (followed that month, data transmitted, alerts handled). The fees
//! and their conditions are data, read with the programme; this module says
//! what a month gives right to, and why not when it does not.

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

use crate::schedule::{at, paris};

/// A condition a fee puts on the patient's month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Followed (enrolled) at least this many days of the month.
    Enrolled {
        /// Days.
        min_days: u32,
    },
    /// Data transmitted on at least this many distinct days of the month.
    Transmitted {
        /// Days.
        min_days: u32,
    },
    /// Every alert raised in the month was handled by the team.
    AlertsHandled,
}

/// A monthly flat fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    /// Code (the billing office's).
    pub code: String,
    /// Label.
    pub label: String,
    /// Amount, euro cents.
    pub amount_cents: i64,
    /// What the month must meet.
    pub conditions: Vec<Condition>,
}

/// What happened in one patient's month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatientMonth {
    /// Days of the month the patient was followed.
    pub enrolled_days: u32,
    /// Distinct days with data transmitted.
    pub transmission_days: u32,
    /// Alerts raised in the month (muted ones aside).
    pub alerts: u32,
    /// Of those, not handled by the team.
    pub unhandled: u32,
}

/// One fee of a patient's month: due, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The fee.
    pub fee: &'a Fee,
    /// Why it is not due (empty: due).
    pub why_not: Vec<String>,
}

impl Line<'_> {
    /// Whether the month gives right to the fee.
    pub fn due(&self) -> bool {
        self.why_not.is_empty()
    }
}

fn plural(n: u32, one: &str) -> String {
    if n > 1 {
        format!("{n} {one}s")
    } else {
        format!("{n} {one}")
    }
}

/// Why `m` fails `c`, in French, if it does.
pub fn unmet(c: Condition, m: &PatientMonth) -> Option<String> {
    match c {
        Condition::Enrolled { min_days } if m.enrolled_days < min_days => Some(format!(
            "suivi {} dans le mois, {} requis",
            plural(m.enrolled_days, "jour"),
            plural(min_days, "jour")
        )),
        Condition::Transmitted { min_days } if m.transmission_days < min_days => Some(format!(
            "données transmises {} dans le mois, {} requis",
            plural(m.transmission_days, "jour"),
            plural(min_days, "jour")
        )),
        Condition::AlertsHandled if m.unhandled > 0 => Some(format!(
            "{} sur {} non traitée(s) par l'équipe",
            plural(m.unhandled, "alerte"),
            m.alerts
        )),
        _ => None,
    }
}

/// The fees of one patient's month.
pub fn statement<'a>(fees: &'a [Fee], m: &PatientMonth) -> Vec<Line<'a>> {
    fees.iter()
        .map(|fee| Line {
            fee,
            why_not: fee.conditions.iter().filter_map(|c| unmet(*c, m)).collect(),
        })
        .collect()
}

/// A calendar month (French time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    /// Its first day.
    first: Date,
}

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

impl Month {
    /// Reads `2026-11`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        let first = Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()?;
        Some(Month { first })
    }

    /// The month of an instant, in French time.
    pub fn of(ms: i64) -> Option<Month> {
        let d = Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned(paris())
            .date();
        Some(Month {
            first: d.first_of_month(),
        })
    }

    /// The month before.
    pub fn previous(self) -> Option<Month> {
        Some(Month {
            first: self.first.checked_sub(1.month()).ok()?,
        })
    }

    /// `2026-11`.
    pub fn code(self) -> String {
        self.first.strftime("%Y-%m").to_string()
    }

    /// `novembre 2026`.
    pub fn label_fr(self) -> String {
        let m = usize::try_from(self.first.month() - 1).unwrap_or(0);
        format!("{} {}", MONTHS_FR.get(m).unwrap_or(&""), self.first.year())
    }

    /// Its days.
    pub fn days(self) -> u32 {
        u32::try_from(self.first.days_in_month()).unwrap_or(0)
    }

    /// Start and end (excluded), Unix ms.
    pub fn bounds(self) -> Option<(i64, i64)> {
        let tz = paris();
        let next = self.first.checked_add(1.month()).ok()?;
        Some((at(self.first, 0, &tz)?, at(next, 0, &tz)?))
    }

    /// The day of the month (1-based) of an instant in it.
    fn day_of(self, ms: i64) -> Option<i8> {
        let d = Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned(paris())
            .date();
        (d.first_of_month() == self.first).then_some(d.day())
    }

    /// Distinct days of this month among `instants`.
    pub fn distinct_days(self, instants: &[i64]) -> u32 {
        let mut days: Vec<i8> = instants.iter().filter_map(|t| self.day_of(*t)).collect();
        days.sort_unstable();
        days.dedup();
        u32::try_from(days.len()).unwrap_or(0)
    }

    /// Days of this month covered by a follow-up from `start_ms` to
    /// `end_ms` (`None`: still running), both days counted.
    pub fn covered_days(self, start_ms: i64, end_ms: Option<i64>) -> u32 {
        let Some((from, to)) = self.bounds() else {
            return 0;
        };
        let end = end_ms.unwrap_or(i64::MAX);
        if start_ms >= to || end < from {
            return 0;
        }
        let first = if start_ms < from {
            1
        } else {
            self.day_of(start_ms).unwrap_or(1)
        };
        let last = if end >= to {
            i8::try_from(self.days()).unwrap_or(31)
        } else {
            self.day_of(end).unwrap_or(first)
        };
        u32::try_from(last - first + 1).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn ms(d: Date, h: i8) -> i64 {
        d.to_datetime(time(h, 0, 0, 0))
            .to_zoned(paris())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    fn fees() -> Vec<Fee> {
        vec![
            Fee {
                code: "TLS-OPE".into(),
                label: "Forfait opérateur".into(),
                amount_cents: 2800,
                conditions: vec![
                    Condition::Enrolled { min_days: 1 },
                    Condition::Transmitted { min_days: 2 },
                    Condition::AlertsHandled,
                ],
            },
            Fee {
                code: "TLS-TEC".into(),
                label: "Forfait technique".into(),
                amount_cents: 7333,
                conditions: vec![
                    Condition::Enrolled { min_days: 1 },
                    Condition::Transmitted { min_days: 2 },
                ],
            },
        ]
    }

    #[test]
    fn a_month_gives_right_to_each_fee_or_says_why_not() {
        let f = fees();
        let full = PatientMonth {
            enrolled_days: 30,
            transmission_days: 4,
            alerts: 2,
            unhandled: 0,
        };
        assert!(statement(&f, &full).iter().all(Line::due));
        let late = PatientMonth {
            unhandled: 1,
            ..full
        };
        let lines = statement(&f, &late);
        assert_eq!(
            lines[0].why_not,
            vec!["1 alerte sur 2 non traitée(s) par l'équipe"]
        );
        assert!(
            lines[1].due(),
            "the provider's fee does not depend on the team"
        );
        let silent = PatientMonth {
            enrolled_days: 1,
            transmission_days: 1,
            alerts: 0,
            unhandled: 0,
        };
        let lines = statement(&f, &silent);
        assert_eq!(
            lines[1].why_not,
            vec!["données transmises 1 jour dans le mois, 2 jours requis"]
        );
        let absent = PatientMonth::default();
        assert_eq!(
            statement(&f, &absent)[0].why_not,
            vec![
                "suivi 0 jour dans le mois, 1 jour requis",
                "données transmises 0 jour dans le mois, 2 jours requis"
            ]
        );
    }

    #[test]
    fn months_in_french_time() {
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!(
            (nov.code(), nov.label_fr(), nov.days()),
            ("2026-11".into(), "novembre 2026".into(), 30)
        );
        assert_eq!(Month::parse("2026-13"), None);
        assert_eq!(Month::parse("novembre"), None);
        assert_eq!(nov.previous().unwrap().code(), "2026-10");
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().unwrap().code(),
            "2025-12"
        );
        let (from, to) = nov.bounds().unwrap();
        assert_eq!(from, ms(date(2026, 11, 1), 0));
        assert_eq!(to, ms(date(2026, 12, 1), 0));
        // 30 November 23:30 in Paris is 22:30 UTC, still November.
        let late = ms(date(2026, 11, 30), 23) + 30 * 60 * 1000;
        assert_eq!(Month::of(late), Some(nov));
        assert_eq!(Month::of(to), Month::parse("2026-12"));
        assert_eq!(
            nov.distinct_days(&[
                ms(date(2026, 11, 3), 9),
                ms(date(2026, 11, 3), 20),
                ms(date(2026, 11, 10), 9),
                late,
                ms(date(2026, 12, 1), 9),
            ]),
            3
        );
        // Followed from the 10th, still running: 21 days; ended on the 12th: 3.
        assert_eq!(nov.covered_days(ms(date(2026, 11, 10), 15), None), 21);
        assert_eq!(
            nov.covered_days(ms(date(2026, 11, 10), 15), Some(ms(date(2026, 11, 12), 8))),
            3
        );
        assert_eq!(nov.covered_days(ms(date(2026, 9, 1), 8), None), 30);
        assert_eq!(
            nov.covered_days(ms(date(2026, 9, 1), 8), Some(ms(date(2026, 10, 31), 8))),
            0
        );
        assert_eq!(nov.covered_days(ms(date(2026, 12, 2), 8), None), 0);
    }
}
