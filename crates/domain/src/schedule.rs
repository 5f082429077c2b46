//! Practitioners' schedules: weekly opening hours cut into slots (in French time,
//! so that daylight saving moves nothing on the agenda), which slots are free,
//! and whether a requested time is bookable. Pure: the store keeps openings and
//! appointments, the clock is passed in.

use jiff::civil::{Date, Time};
use jiff::{Timestamp, ToSpan, tz::TimeZone};

use crate::{EstablishmentId, PatientId, UserId};

/// How the consultation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// In the practitioner's office.
    InPerson,
    /// By video (teleconsultation).
    Tele,
}

impl Mode {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Mode::InPerson => "presentiel",
            Mode::Tele => "teleconsultation",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Mode> {
        [Mode::InPerson, Mode::Tele]
            .into_iter()
            .find(|m| m.code() == c)
    }
    /// For people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Mode::InPerson => "au cabinet",
            Mode::Tele => "en téléconsultation",
        }
    }
}

/// A weekly opening: a weekday, hours, slot length, mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i8,
    /// Start, minutes after midnight (French time).
    pub start_min: i16,
    /// End, minutes after midnight.
    pub end_min: i16,
    /// Length of a slot, minutes.
    pub slot_minutes: i16,
    /// In person or by video.
    pub mode: Mode,
}

/// Why an opening is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not a weekday 1–7.
    #[error("jour de la semaine invalide (1 = lundi … 7 = dimanche)")]
    Weekday,
    /// Hours outside the day or reversed.
    #[error("horaires invalides : le début doit précéder la fin, dans la journée")]
    Hours,
    /// Slot length outside 5–120 minutes.
    #[error("durée de créneau invalide (5 à 120 minutes)")]
    SlotLength,
}

/// Checks an opening.
pub fn check(o: &Opening) -> Result<(), ScheduleError> {
    if !(1..=7).contains(&o.weekday) {
        return Err(ScheduleError::Weekday);
    }
    if o.start_min < 0 || o.end_min > 24 * 60 || o.start_min >= o.end_min {
        return Err(ScheduleError::Hours);
    }
    if !(5..=120).contains(&o.slot_minutes) || o.slot_minutes > o.end_min - o.start_min {
        return Err(ScheduleError::SlotLength);
    }
    Ok(())
}

/// A slot: start and end (Unix ms) and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Start (Unix ms).
    pub start_ms: i64,
    /// End (Unix ms).
    pub end_ms: i64,
    /// Mode.
    pub mode: Mode,
}

pub(crate) fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC)
}

pub(crate) fn at(date: Date, minutes: i16, tz: &TimeZone) -> Option<i64> {
    let t = Time::new(
        i8::try_from(minutes / 60).ok()?,
        i8::try_from(minutes % 60).ok()?,
        0,
        0,
    )
    .ok()?;
    Some(
        date.to_datetime(t)
            .to_zoned(tz.clone())
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

/// The slots of `days` days from the French day of `from_ms`, starting after
/// `from_ms`, in time order (whole slots only: one that would pass the closing
/// time is not offered).
pub fn slots(openings: &[Opening], from_ms: i64, days: i64) -> Vec<Slot> {
    let tz = paris();
    let Ok(from) = Timestamp::from_millisecond(from_ms) else {
        return vec![];
    };
    let first = from.to_zoned(tz.clone()).date();
    let mut out = Vec::new();
    for d in 0..days {
        let Ok(date) = first.checked_add(d.days()) else {
            break;
        };
        let weekday = date.weekday().to_monday_one_offset();
        for o in openings
            .iter()
            .filter(|o| o.weekday == weekday && check(o).is_ok())
        {
            let mut m = o.start_min;
            while m + o.slot_minutes <= o.end_min {
                if let (Some(s), Some(e)) = (at(date, m, &tz), at(date, m + o.slot_minutes, &tz))
                    && s > from_ms
                {
                    out.push(Slot {
                        start_ms: s,
                        end_ms: e,
                        mode: o.mode,
                    });
                }
                m += o.slot_minutes;
            }
        }
    }
    out.sort_by_key(|s| s.start_ms);
    out
}

/// The slot that starts at `start_ms`, if the openings have one and it is still
/// to come (it is then bookable unless already taken).
pub fn slot_at(openings: &[Opening], start_ms: i64, now_ms: i64) -> Option<Slot> {
    if start_ms <= now_ms {
        return None;
    }
    // Look from the start of that French day.
    slots(openings, start_ms - 24 * 3600 * 1000, 2)
        .into_iter()
        .find(|s| s.start_ms == start_ms)
}

/// Days a practitioner does not consult at an establishment (holidays, a
/// closed day), first and last day included, in French dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    /// First day off.
    pub first_day: Date,
    /// Last day off (the same as the first for one day).
    pub last_day: Date,
    /// Why (shown to the desk, never to patients).
    pub reason: String,
}

/// Why an absence is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AbsenceError {
    /// The last day is before the first.
    #[error("le dernier jour d'absence précède le premier")]
    Reversed,
    /// Longer than a year: surely a typing error.
    #[error("une absence dure au plus un an : vérifiez les dates")]
    TooLong,
    /// No reason given.
    #[error("indiquez le motif de l'absence (congés, formation…)")]
    NoReason,
    /// Entirely in the past.
    #[error("cette absence est entièrement passée")]
    Past,
}

/// Checks an absence entered on `today` (French date).
pub fn check_absence(a: &Absence, today: Date) -> Result<(), AbsenceError> {
    if a.last_day < a.first_day {
        return Err(AbsenceError::Reversed);
    }
    if a.first_day
        .checked_add(366.days())
        .is_ok_and(|limit| a.last_day > limit)
    {
        return Err(AbsenceError::TooLong);
    }
    if a.reason.trim().is_empty() {
        return Err(AbsenceError::NoReason);
    }
    if a.last_day < today {
        return Err(AbsenceError::Past);
    }
    Ok(())
}

/// The French date of an instant.
pub fn french_date(ms: i64) -> Option<Date> {
    Some(
        Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned(paris())
            .date(),
    )
}

/// Whether `start_ms` falls on a day of one of `absences`.
pub fn is_absent(absences: &[Absence], start_ms: i64) -> bool {
    french_date(start_ms)
        .is_some_and(|d| absences.iter().any(|a| a.first_day <= d && d <= a.last_day))
}

/// A one-off opening on a date outside the weekly pattern (its `weekday` is
/// the date's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraOpening {
    /// The date (French).
    pub day: Date,
    /// Hours, slot length and mode, as a weekly opening.
    pub opening: Opening,
}

impl ExtraOpening {
    /// An extra opening on `day` (the opening's weekday is set from it).
    pub fn on(day: Date, mut opening: Opening) -> Self {
        opening.weekday = day.weekday().to_monday_one_offset();
        ExtraOpening { day, opening }
    }
}

/// The slots of the extra openings falling in `days` days from `from_ms`,
/// after `from_ms`.
fn extra_slots(extras: &[ExtraOpening], from_ms: i64, days: i64) -> Vec<Slot> {
    let Some(first) = french_date(from_ms) else {
        return vec![];
    };
    let Ok(last) = first.checked_add((days - 1).max(0).days()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for x in extras.iter().filter(|x| first <= x.day && x.day <= last) {
        let Some(day_start) = at(x.day, 0, &paris()) else {
            continue;
        };
        out.extend(
            slots(std::slice::from_ref(&x.opening), day_start - 1, 2)
                .into_iter()
                .filter(|s| s.start_ms > from_ms && french_date(s.start_ms) == Some(x.day)),
        );
    }
    out
}

/// The slots of `days` days from `from_ms` (see [`slots`]) with the extra
/// openings, without those falling on an absence, in time order and each once.
pub fn available_slots(
    openings: &[Opening],
    extras: &[ExtraOpening],
    absences: &[Absence],
    from_ms: i64,
    days: i64,
) -> Vec<Slot> {
    let mut all = slots(openings, from_ms, days);
    all.extend(extra_slots(extras, from_ms, days));
    all.sort_by_key(|s| s.start_ms);
    all.dedup_by_key(|s| s.start_ms);
    all.into_iter()
        .filter(|s| !is_absent(absences, s.start_ms))
        .collect()
}

/// The bookable slot starting at `start_ms`: in the weekly pattern or an extra
/// opening, still to come, not on an absence.
pub fn bookable_slot(
    openings: &[Opening],
    extras: &[ExtraOpening],
    absences: &[Absence],
    start_ms: i64,
    now_ms: i64,
) -> Option<Slot> {
    if start_ms <= now_ms {
        return None;
    }
    available_slots(openings, extras, absences, start_ms - 24 * 3600 * 1000, 2)
        .into_iter()
        .find(|s| s.start_ms == start_ms)
}

/// An appointment (a FHIR Appointment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    /// Id.
    pub id: crate::AppointmentId,
    /// The practitioner (user).
    pub practitioner: UserId,
    /// Where.
    pub establishment: EstablishmentId,
    /// Who.
    pub patient: PatientId,
    /// Start (Unix ms).
    pub start_ms: i64,
    /// End (Unix ms).
    pub end_ms: i64,
    /// In person or by video.
    pub mode: Mode,
    /// `booked` or `cancelled`.
    pub status: String,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Zoned>()
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    const MONDAY_MORNING: Opening = Opening {
        weekday: 1,
        start_min: 9 * 60,
        end_min: 10 * 60 + 10,
        slot_minutes: 20,
        mode: Mode::Tele,
    };

    #[test]
    fn openings_are_checked() {
        assert_eq!(check(&MONDAY_MORNING), Ok(()));
        assert_eq!(
            check(&Opening {
                weekday: 0,
                ..MONDAY_MORNING
            }),
            Err(ScheduleError::Weekday)
        );
        assert_eq!(
            check(&Opening {
                start_min: 600,
                end_min: 540,
                ..MONDAY_MORNING
            }),
            Err(ScheduleError::Hours)
        );
        assert_eq!(
            check(&Opening {
                end_min: 1500,
                ..MONDAY_MORNING
            }),
            Err(ScheduleError::Hours)
        );
        assert_eq!(
            check(&Opening {
                slot_minutes: 3,
                ..MONDAY_MORNING
            }),
            Err(ScheduleError::SlotLength)
        );
        assert_eq!(
            check(&Opening {
                slot_minutes: 90,
                ..MONDAY_MORNING
            }),
            Err(ScheduleError::SlotLength)
        );
    }

    #[test]
    fn slots_are_cut_in_french_time_whole_and_after_now() {
        // Monday 23 November 2026, 09:30 in Paris (UTC+1).
        let now = ms("2026-11-23T09:30:00+01:00[Europe/Paris]");
        let s = slots(&[MONDAY_MORNING], now, 8);
        let starts: Vec<i64> = s.iter().map(|x| x.start_ms).collect();
        assert_eq!(
            starts,
            vec![
                ms("2026-11-23T09:40:00+01:00[Europe/Paris]"),
                // 10:00–10:20 would pass 10:10: not offered.
                ms("2026-11-30T09:00:00+01:00[Europe/Paris]"),
                ms("2026-11-30T09:20:00+01:00[Europe/Paris]"),
                ms("2026-11-30T09:40:00+01:00[Europe/Paris]"),
            ]
        );
        assert_eq!(s[0].end_ms - s[0].start_ms, 20 * 60 * 1000);
        assert_eq!(s[0].mode, Mode::Tele);
    }

    #[test]
    fn summer_time_keeps_the_hours_of_the_agenda() {
        // Monday 30 March 2026 is after the change to UTC+2: still 09:00 in Paris.
        let now = ms("2026-03-27T12:00:00+01:00[Europe/Paris]");
        let s = slots(&[MONDAY_MORNING], now, 4);
        assert_eq!(s[0].start_ms, ms("2026-03-30T09:00:00+02:00[Europe/Paris]"));
    }

    #[test]
    fn a_requested_time_is_bookable_only_on_a_slot_to_come() {
        let now = ms("2026-11-23T09:30:00+01:00[Europe/Paris]");
        let ok = ms("2026-11-30T09:20:00+01:00[Europe/Paris]");
        assert_eq!(
            slot_at(&[MONDAY_MORNING], ok, now).map(|s| s.end_ms),
            Some(ok + 20 * 60 * 1000)
        );
        assert_eq!(
            slot_at(&[MONDAY_MORNING], ok + 60_000, now),
            None,
            "not a slot start"
        );
        assert_eq!(
            slot_at(
                &[MONDAY_MORNING],
                ms("2026-11-23T09:00:00+01:00[Europe/Paris]"),
                now
            ),
            None,
            "past"
        );
        assert_eq!(
            slot_at(
                &[MONDAY_MORNING],
                ms("2026-12-01T09:00:00+01:00[Europe/Paris]"),
                now
            ),
            None,
            "Tuesday"
        );
        assert_eq!(Mode::from_code("teleconsultation"), Some(Mode::Tele));
        assert_eq!(Mode::from_code("x"), None);
    }

    #[test]
    fn absences_remove_their_days_and_are_checked() {
        let monday = Opening {
            weekday: 1,
            start_min: 9 * 60,
            end_min: 10 * 60,
            slot_minutes: 30,
            mode: Mode::Tele,
        };
        // Monday 2026-12-07 and 2026-12-14, from Sunday 2026-12-06 noon (UTC).
        let from = Timestamp::from_second(1_796_558_400)
            .unwrap()
            .as_millisecond();
        let all = slots(&[monday], from, 14);
        assert_eq!(all.len(), 4);
        let off = Absence {
            first_day: jiff::civil::date(2026, 12, 7),
            last_day: jiff::civil::date(2026, 12, 7),
            reason: "Formation".into(),
        };
        let left = available_slots(&[monday], &[], std::slice::from_ref(&off), from, 14);
        assert_eq!(left.len(), 2);
        assert!(
            left.iter()
                .all(|s| french_date(s.start_ms) == Some(jiff::civil::date(2026, 12, 14)))
        );
        assert!(is_absent(std::slice::from_ref(&off), all[0].start_ms));
        assert!(!is_absent(std::slice::from_ref(&off), all[3].start_ms));
        let today = jiff::civil::date(2026, 12, 3);
        assert_eq!(check_absence(&off, today), Ok(()));
        let reversed = Absence {
            last_day: jiff::civil::date(2026, 12, 6),
            ..off.clone()
        };
        assert_eq!(check_absence(&reversed, today), Err(AbsenceError::Reversed));
        let long = Absence {
            last_day: jiff::civil::date(2028, 1, 1),
            ..off.clone()
        };
        assert_eq!(check_absence(&long, today), Err(AbsenceError::TooLong));
        let silent = Absence {
            reason: " ".into(),
            ..off.clone()
        };
        assert_eq!(check_absence(&silent, today), Err(AbsenceError::NoReason));
        assert_eq!(
            check_absence(&off, jiff::civil::date(2026, 12, 8)),
            Err(AbsenceError::Past)
        );
    }

    #[test]
    fn an_extra_opening_adds_its_slots_and_is_bookable() {
        let weekly = Opening {
            weekday: 1,
            start_min: 9 * 60,
            end_min: 10 * 60,
            slot_minutes: 30,
            mode: Mode::Tele,
        };
        // From Sunday 2026-12-06 noon (UTC): Monday's two slots, then an extra
        // Saturday 2026-12-12 morning, 10:00–11:00 in 20-minute slots.
        let from = Timestamp::from_second(1_796_558_400)
            .unwrap()
            .as_millisecond();
        let saturday = jiff::civil::date(2026, 12, 12);
        let extra = ExtraOpening::on(
            saturday,
            Opening {
                weekday: 0,
                start_min: 10 * 60,
                end_min: 11 * 60,
                slot_minutes: 20,
                mode: Mode::InPerson,
            },
        );
        assert_eq!(extra.opening.weekday, 6);
        let all = available_slots(&[weekly], std::slice::from_ref(&extra), &[], from, 7);
        assert_eq!(all.len(), 5);
        let on_saturday: Vec<_> = all
            .iter()
            .filter(|s| french_date(s.start_ms) == Some(saturday))
            .collect();
        assert_eq!(on_saturday.len(), 3);
        assert!(on_saturday.iter().all(|s| s.mode == Mode::InPerson));
        // Out of the window: not offered.
        assert_eq!(
            available_slots(&[weekly], std::slice::from_ref(&extra), &[], from, 3).len(),
            2
        );
        // Bookable, unless an absence covers the day.
        let first = on_saturday[0].start_ms;
        assert!(bookable_slot(&[weekly], std::slice::from_ref(&extra), &[], first, from).is_some());
        let off = Absence {
            first_day: saturday,
            last_day: saturday,
            reason: "Fermeture".into(),
        };
        assert!(
            bookable_slot(&[weekly], std::slice::from_ref(&extra), &[off], first, from).is_none()
        );
        assert!(bookable_slot(&[weekly], &[], &[], first, from).is_none());
    }
}
