//! A care team's calendar: its opening hours (weekly windows in French time),
//! the French public holidays it is closed on, the time an SLA gives counted in
//! those hours only, and the doctor on call when an alert is escalated. Pure:
//! the store keeps the hours and the rota, the clock is passed in.

use jiff::civil::{Date, date};
use jiff::{Timestamp, ToSpan};

use crate::UserId;
use crate::schedule::{at, paris};

/// A weekly window when the team works: a weekday and hours, French time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i8,
    /// Opening, minutes after midnight.
    pub start_min: i16,
    /// Closing, minutes after midnight (24 × 60 at most).
    pub end_min: i16,
}

/// Why team hours are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// Not a weekday 1–7.
    #[error("jour de la semaine invalide (1 = lundi … 7 = dimanche)")]
    Weekday,
    /// Reversed or outside the day.
    #[error("horaires invalides : l'ouverture doit précéder la fermeture, dans la journée")]
    Hours,
    /// Two windows of one day overlap.
    #[error("deux plages du même jour se chevauchent")]
    Overlap,
}

/// A team's hours. No window at all means round the clock (every hour counts,
/// holidays too): an establishment that has not set hours keeps wall-clock SLAs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TeamHours {
    /// The weekly windows.
    pub windows: Vec<Window>,
    /// Closed on the two extra public holidays of Alsace and Moselle (Good
    /// Friday, 26 December).
    pub alsace_moselle: bool,
}

/// Checks a team's windows.
pub fn check_hours(h: &TeamHours) -> Result<(), HoursError> {
    for w in &h.windows {
        if !(1..=7).contains(&w.weekday) {
            return Err(HoursError::Weekday);
        }
        if w.start_min < 0 || w.end_min > 24 * 60 || w.start_min >= w.end_min {
            return Err(HoursError::Hours);
        }
    }
    for (i, a) in h.windows.iter().enumerate() {
        for b in h.windows.iter().skip(i + 1) {
            if a.weekday == b.weekday && a.start_min < b.end_min && b.start_min < a.end_min {
                return Err(HoursError::Overlap);
            }
        }
    }
    Ok(())
}

/// Easter Sunday of `year` (Gregorian calendar; anonymous algorithm of
/// Meeus, Jones and Butcher).
pub fn easter(year: i16) -> Option<Date> {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

/// The French public holidays of `year` (Code du travail, L3133-1): 1 January,
/// Easter Monday, 1 May, 8 May, Ascension, Whit Monday, 14 July, 15 August,
/// 1 November, 11 November, 25 December; with Good Friday and 26 December in
/// Alsace and Moselle (L3134-13). Sorted.
pub fn public_holidays(year: i16, alsace_moselle: bool) -> Vec<Date> {
    let mut days: Vec<Date> = [
        (1, 1),
        (5, 1),
        (5, 8),
        (7, 14),
        (8, 15),
        (11, 1),
        (11, 11),
        (12, 25),
    ]
    .into_iter()
    .filter_map(|(m, d)| Date::new(year, m, d).ok())
    .collect();
    if let Some(e) = easter(year) {
        let mut movable = vec![1, 39, 50];
        if alsace_moselle {
            movable.push(-2);
        }
        days.extend(
            movable
                .into_iter()
                .filter_map(|n: i64| e.checked_add(n.days()).ok()),
        );
    }
    if alsace_moselle {
        days.push(date(year, 12, 26));
    }
    days.sort();
    days
}

/// Whether `day` is a public holiday.
pub fn is_holiday(day: Date, alsace_moselle: bool) -> bool {
    public_holidays(day.year(), alsace_moselle).contains(&day)
}

/// How far ahead a due time is looked for: two years of French days.
const HORIZON_DAYS: i64 = 2 * 366;

impl TeamHours {
    /// Whether the team works at `ms`.
    pub fn is_open(&self, ms: i64) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        self.open_intervals(ms, 1)
            .into_iter()
            .any(|(s, e)| s <= ms && ms < e)
    }

    /// The team's working intervals (Unix ms) of `days` French days from
    /// the day of `from_ms`, in time order, holidays left out.
    fn open_intervals(&self, from_ms: i64, days: i64) -> Vec<(i64, i64)> {
        let tz = paris();
        let Ok(from) = Timestamp::from_millisecond(from_ms) else {
            return vec![];
        };
        let first = from.to_zoned(tz.clone()).date();
        let mut out = Vec::new();
        let mut holidays: Option<(i16, Vec<Date>)> = None;
        for n in 0..days {
            let Ok(day) = first.checked_add(n.days()) else {
                break;
            };
            if holidays.as_ref().is_none_or(|(y, _)| *y != day.year()) {
                holidays = Some((day.year(), public_holidays(day.year(), self.alsace_moselle)));
            }
            if holidays.as_ref().is_some_and(|(_, h)| h.contains(&day)) {
                continue;
            }
            let weekday = day.weekday().to_monday_one_offset();
            let mut today: Vec<(i64, i64)> = self
                .windows
                .iter()
                .filter(|w| w.weekday == weekday)
                .filter_map(|w| Some((at(day, w.start_min, &tz)?, end_of(day, w.end_min, &tz)?)))
                .collect();
            today.sort_unstable();
            out.extend(today);
        }
        out
    }

    /// When `span_ms` of the team's working time have passed after `from_ms`:
    /// the due time of an SLA counted in opening hours. Round the clock
    /// (no window) it is `from_ms + span_ms`; a team with windows that never
    /// open in two years (all on holidays) falls back to the same.
    pub fn add_working_time(&self, from_ms: i64, span_ms: i64) -> i64 {
        let wall = from_ms.saturating_add(span_ms);
        if self.windows.is_empty() || span_ms <= 0 {
            return wall;
        }
        let mut left = span_ms;
        for (s, e) in self.open_intervals(from_ms, HORIZON_DAYS) {
            let start = s.max(from_ms);
            if start >= e {
                continue;
            }
            if left <= e - start {
                return start + left;
            }
            left -= e - start;
        }
        wall
    }
}

/// The instant a window closes: minutes after midnight, 24 h being the next
/// day's midnight.
fn end_of(day: Date, minutes: i16, tz: &jiff::tz::TimeZone) -> Option<i64> {
    if minutes >= 24 * 60 {
        at(day.checked_add(1.days()).ok()?, 0, tz)
    } else {
        at(day, minutes, tz)
    }
}

/// A period when a doctor is on call for a team's escalated alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// Id.
    pub id: String,
    /// The doctor.
    pub doctor: UserId,
    /// Start (Unix ms).
    pub starts_at_ms: i64,
    /// End (Unix ms, excluded).
    pub ends_at_ms: i64,
}

/// Why an on-call period is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OnCallError {
    /// The end is not after the start.
    #[error("la fin de l'astreinte doit suivre son début")]
    Reversed,
    /// Longer than a month: surely a typing error.
    #[error("une période d'astreinte dure au plus 31 jours")]
    TooLong,
    /// Over already.
    #[error("cette période d'astreinte est déjà passée")]
    Past,
}

/// Checks a period entered at `now_ms`.
pub fn check_on_call(starts_at_ms: i64, ends_at_ms: i64, now_ms: i64) -> Result<(), OnCallError> {
    if ends_at_ms <= starts_at_ms {
        return Err(OnCallError::Reversed);
    }
    if ends_at_ms - starts_at_ms > 31 * 24 * 3600 * 1000 {
        return Err(OnCallError::TooLong);
    }
    if ends_at_ms <= now_ms {
        return Err(OnCallError::Past);
    }
    Ok(())
}

/// The doctor on call at `now_ms`: of the periods covering it, the one that
/// began last (a replacement entered over a longer period wins).
pub fn on_call_at(rota: &[OnCall], now_ms: i64) -> Option<&OnCall> {
    rota.iter()
        .filter(|p| p.starts_at_ms <= now_ms && now_ms < p.ends_at_ms)
        .max_by_key(|p| (p.starts_at_ms, p.id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    const H: i64 = 3600 * 1000;
    const M: i64 = 60 * 1000;

    fn paris_ms(d: Date, h: i8, m: i8) -> i64 {
        d.to_datetime(time(h, m, 0, 0))
            .to_zoned(paris())
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    /// Monday to Friday, 8:30–12:30 and 13:30–18:00.
    fn office() -> TeamHours {
        let mut windows = Vec::new();
        for d in 1..=5 {
            windows.push(Window {
                weekday: d,
                start_min: 8 * 60 + 30,
                end_min: 12 * 60 + 30,
            });
            windows.push(Window {
                weekday: d,
                start_min: 13 * 60 + 30,
                end_min: 18 * 60,
            });
        }
        TeamHours {
            windows,
            alsace_moselle: false,
        }
    }

    #[test]
    fn easter_and_the_holidays_it_moves() {
        assert_eq!(easter(2026), Some(date(2026, 4, 5)));
        assert_eq!(easter(2027), Some(date(2027, 3, 28)));
        assert_eq!(easter(2024), Some(date(2024, 3, 31)));
        assert_eq!(easter(2038), Some(date(2038, 4, 25)), "the latest possible");
        let h = public_holidays(2026, false);
        assert_eq!(h.len(), 11);
        for d in [
            date(2026, 1, 1),
            date(2026, 4, 6),  // Easter Monday
            date(2026, 5, 14), // Ascension
            date(2026, 5, 25), // Whit Monday
            date(2026, 7, 14),
            date(2026, 11, 11),
            date(2026, 12, 25),
        ] {
            assert!(h.contains(&d), "{d}");
        }
        assert!(!is_holiday(date(2026, 4, 3), false), "Good Friday");
        assert!(is_holiday(date(2026, 4, 3), true), "Good Friday in Alsace");
        assert!(is_holiday(date(2026, 12, 26), true));
        assert!(!is_holiday(date(2026, 12, 26), false));
        assert_eq!(public_holidays(2026, true).len(), 13);
        assert!(h.windows(2).all(|w| w[0] < w[1]), "sorted");
    }

    #[test]
    fn an_sla_counts_in_opening_hours_only() {
        let o = office();
        // Tuesday 1 December 2026, 10:00: 12 h of work end Wednesday 13:30 + 2 h = …
        let tue = date(2026, 12, 1);
        // Tue: 2h30 until 12:30, 4h30 in the afternoon = 7 h; Wed: 4 h morning = 11 h,
        // then 1 h after 13:30.
        assert_eq!(
            o.add_working_time(paris_ms(tue, 10, 0), 12 * H),
            paris_ms(date(2026, 12, 2), 14, 30)
        );
        // Raised Friday 17:00: 1 h on Friday, the rest from Monday 8:30.
        let fri = date(2026, 12, 4);
        assert_eq!(
            o.add_working_time(paris_ms(fri, 17, 0), 2 * H),
            paris_ms(date(2026, 12, 7), 9, 30)
        );
        // Raised during lunch: counts from 13:30.
        assert_eq!(
            o.add_working_time(paris_ms(tue, 12, 45), 30 * M),
            paris_ms(tue, 14, 0)
        );
        // Exactly the rest of a window: due at its closing.
        assert_eq!(
            o.add_working_time(paris_ms(tue, 17, 0), H),
            paris_ms(tue, 18, 0)
        );
        // Raised Thursday 24 December at 17:00: Christmas is closed, then the weekend.
        assert_eq!(
            o.add_working_time(paris_ms(date(2026, 12, 24), 17, 0), 2 * H),
            paris_ms(date(2026, 12, 28), 9, 30)
        );
        // Round the clock without hours.
        let always = TeamHours::default();
        assert_eq!(always.add_working_time(1_000, 12 * H), 1_000 + 12 * H);
        assert!(always.is_open(0));
    }

    #[test]
    fn alsace_closes_on_good_friday_and_hours_cross_daylight_saving() {
        let mut o = office();
        let thursday = date(2026, 4, 2);
        let before = o.add_working_time(paris_ms(thursday, 17, 0), 2 * H);
        assert_eq!(before, paris_ms(date(2026, 4, 3), 9, 30), "Friday works");
        o.alsace_moselle = true;
        assert_eq!(
            o.add_working_time(paris_ms(thursday, 17, 0), 2 * H),
            paris_ms(date(2026, 4, 7), 9, 30),
            "Good Friday, the weekend, Easter Monday"
        );
        // Summer time begins Sunday 29 March 2026: Friday 17:00 + 2 h is Monday
        // 9:30 in French time whatever the offset.
        let sat = o.add_working_time(paris_ms(date(2026, 3, 27), 17, 0), 2 * H);
        assert_eq!(sat, paris_ms(date(2026, 3, 30), 9, 30));
        // Round the clock on one day, 24 h written as 24:00.
        let nights = TeamHours {
            windows: vec![Window {
                weekday: 3,
                start_min: 0,
                end_min: 24 * 60,
            }],
            alsace_moselle: false,
        };
        let wed = date(2026, 12, 2);
        assert_eq!(
            nights.add_working_time(paris_ms(wed, 23, 0), 2 * H),
            paris_ms(date(2026, 12, 9), 1, 0)
        );
        assert!(nights.is_open(paris_ms(wed, 23, 59)));
        assert!(!nights.is_open(paris_ms(date(2026, 12, 3), 0, 0)));
    }

    #[test]
    fn hours_are_checked() {
        let w = |weekday, s, e| TeamHours {
            windows: vec![Window {
                weekday,
                start_min: s,
                end_min: e,
            }],
            alsace_moselle: false,
        };
        assert_eq!(check_hours(&office()), Ok(()));
        assert_eq!(check_hours(&w(0, 60, 120)), Err(HoursError::Weekday));
        assert_eq!(check_hours(&w(8, 60, 120)), Err(HoursError::Weekday));
        assert_eq!(check_hours(&w(1, 120, 60)), Err(HoursError::Hours));
        assert_eq!(check_hours(&w(1, 60, 24 * 60 + 1)), Err(HoursError::Hours));
        let mut two = w(2, 8 * 60, 12 * 60);
        two.windows.push(Window {
            weekday: 2,
            start_min: 11 * 60,
            end_min: 14 * 60,
        });
        assert_eq!(check_hours(&two), Err(HoursError::Overlap));
        two.windows[1].weekday = 3;
        assert_eq!(check_hours(&two), Ok(()));
    }

    #[test]
    fn the_doctor_on_call_is_the_latest_period_covering_now() {
        let a = UserId::new();
        let b = UserId::new();
        let rota = vec![
            OnCall {
                id: "1".into(),
                doctor: a,
                starts_at_ms: 0,
                ends_at_ms: 7 * 24 * H,
            },
            OnCall {
                id: "2".into(),
                doctor: b,
                starts_at_ms: 2 * 24 * H,
                ends_at_ms: 3 * 24 * H,
            },
        ];
        assert_eq!(on_call_at(&rota, H).map(|p| p.doctor), Some(a));
        assert_eq!(on_call_at(&rota, 2 * 24 * H).map(|p| p.doctor), Some(b));
        assert_eq!(
            on_call_at(&rota, 3 * 24 * H).map(|p| p.doctor),
            Some(a),
            "end excluded"
        );
        assert_eq!(on_call_at(&rota, 7 * 24 * H), None);
        assert_eq!(check_on_call(10, 10, 0), Err(OnCallError::Reversed));
        assert_eq!(check_on_call(0, 32 * 24 * H, 0), Err(OnCallError::TooLong));
        assert_eq!(check_on_call(0, H, 2 * H), Err(OnCallError::Past));
        assert_eq!(check_on_call(0, H, 0), Ok(()));
    }
}
