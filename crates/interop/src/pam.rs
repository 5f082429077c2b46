//! IHE PAM France ADT, read: what a parsed HL7 v2 message says of an identity
//! (create or update, IPP change, merge) and of a stay (a movement), as domain
//! types, or the one error that keeps it from being applied, with its HL7
//! location and code for the ACK. Pure: no store and no sender lookup (the
//! caller says which IPP assigning authorities belong to its domain).
//!
//! Receiver policy: A08, not used in France, is read as an A31; the GAM is the
//! source of truth for identity, so its status is mirrored as sent (PID-32
//! `VALI` = qualified in PAM France; the INS is kept only then).

use domain::demographics::DemographicsPatch;
use domain::documents::DmpState;
use domain::encounter::{Location as BedLocation, MovementKind};
use domain::identity::{IdentityStatus, Sex, Traits};
use domain::ins::{Ins, InsKind};
use hl7v2::Message;
use hl7v2::ack::{AckError, Location, Severity};

pub mod details;

/// Events applied to identities (those with a movement also update the stay).
pub const UPSERT_EVENTS: [&str; 18] = [
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12", "A13", "A21", "A22",
    "A28", "A31", "A38", "A52", "A53",
];
/// Events applied as merges (A40) or identifier changes (A47).
pub const MERGE_EVENTS: [&str; 2] = ["A40", "A47"];

/// Why a message cannot be applied: the ERR of its AE (boxed: the error path
/// stays cheap for the `Result` every read returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtError(pub Box<AckError>);

impl AdtError {
    /// The refusal `e`.
    pub fn new(e: AckError) -> AdtError {
        AdtError(Box::new(e))
    }
}

/// What an ADT message says.
#[derive(Debug, Clone, PartialEq)]
pub struct AdtEvent {
    /// The identity change.
    pub identity: IdentityChange,
    /// The stay's movement, for movement events.
    pub movement: Option<Movement>,
    /// Parts refused while the rest applies (an INS with a wrong key): AE, with effect.
    pub warnings: Vec<AckError>,
}

/// An identity change.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityChange {
    /// Create or update the record with this IPP.
    Upsert {
        /// PID-3 (PI).
        ipp: String,
        /// The five traits and the used names.
        traits: Traits,
        /// The INS, only when valid and the identity qualified.
        ins: Option<Ins>,
        /// Qualified (PID-32 `VALI`) or provisional.
        status: IdentityStatus,
        /// What ZFA says of the patient's DMP, if present.
        dmp: Option<Dmp>,
        /// What PID-11/13/14/15/29/30, NK1 and ROL say of the addresses, phones,
        /// language, death, close ones and GP (a part not sent is kept).
        demographics: Box<DemographicsPatch>,
    },
    /// A47 with the old IPP in MRG-1.
    ChangeIpp {
        /// MRG-1.
        old_ipp: String,
        /// PID-3.
        new_ipp: String,
    },
    /// A40: the record with `merged_ipp` (MRG-1) merges into `survivor_ipp` (PID-3).
    Merge {
        /// PID-3.
        survivor_ipp: String,
        /// MRG-1.
        merged_ipp: String,
    },
}

/// PAM France ZFA: the DMP's state (ZFA-1), the opposition to feeding it (ZFA-9)
/// and the consent to professionals consulting it (ZFA-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dmp {
    /// The record's status.
    pub state: DmpState,
    /// Opposed (`IO`), not opposed (`INO`), or not collected (`None`).
    pub opposition: Option<bool>,
    /// Consent given (`IC`), refused (`INC`), or not collected (`NA`: `None`).
    pub consultation: Option<bool>,
}

/// A movement of a stay (PV1, ZBE, EVN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// PV1-19 visit number.
    pub visit_number: String,
    /// What it does (for a cancel: the kind it cancels).
    pub kind: MovementKind,
    /// Whether this cancels a movement.
    pub cancel: bool,
    /// ZBE-1 movement id, when sent.
    pub movement_id: Option<String>,
    /// The trigger event (`A02`).
    pub trigger: String,
    /// ZBE-2 (or EVN-6, EVN-2, MSH-7) time, Unix ms.
    pub start_ms: i64,
    /// PV1-3.
    pub location: BedLocation,
    /// PV1-2.
    pub class: Option<String>,
}

/// XPN-7, the name type (L birth, D used).
fn name_type<'a>(r: &hl7v2::Field<'a>) -> &'a str {
    r.component(7).map(|c| c.raw()).unwrap_or("")
}

/// An error-severity ERR at `segment`-`field`(`repetition`).`component`.
pub fn error_at(
    segment: &str,
    field: Option<usize>,
    repetition: Option<usize>,
    component: Option<usize>,
    code: u16,
    message: String,
) -> AckError {
    AckError {
        location: Some(Location {
            segment: segment.into(),
            sequence: 1,
            field,
            repetition,
            component,
            subcomponent: None,
        }),
        code,
        message,
        severity: Severity::Error,
    }
}

/// An HL7 DTM (`YYYYMMDD[HHMM[SS[.S…]]][+/-ZZZZ]`) as Unix ms; local French time
/// when no offset is given.
pub fn parse_dtm(text: &str) -> Option<i64> {
    let (main, offset) = match text.find(['+', '-']) {
        Some(i) => (text.get(..i)?, Some(text.get(i..)?)),
        None => (text, None),
    };
    let digits = main.split('.').next()?;
    if !(digits.len() == 8 || digits.len() == 12 || digits.len() == 14)
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n = |a: usize, b: usize| -> Option<i8> { digits.get(a..b).and_then(|d| d.parse().ok()) };
    let year: i16 = digits.get(0..4)?.parse().ok()?;
    let dt = jiff::civil::DateTime::new(
        year,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10).unwrap_or(0),
        n(10, 12).unwrap_or(0),
        n(12, 14).unwrap_or(0),
        0,
    )
    .ok()?;
    let ts = match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hh: i32 = o.get(1..3)?.parse().ok()?;
            let mm: i32 = o.get(3..5)?.parse().ok()?;
            let off = jiff::tz::Offset::from_seconds(sign * (hh * 3600 + mm * 60)).ok()?;
            off.to_timestamp(dt).ok()?
        }
        None => dt.in_tz("Europe/Paris").ok()?.timestamp(),
    };
    Some(ts.as_millisecond())
}

/// The movement carried by a movement event (PV1, ZBE, EVN); `None` for identity
/// events.
fn movement(m: &Message, event: &str) -> Result<Option<Movement>, AdtError> {
    let Some((kind, cancel)) = MovementKind::from_event(event) else {
        return Ok(None);
    };
    let get = |p: &str| {
        m.get(p)
            .ok()
            .flatten()
            .map(|v| v.into_owned())
            .filter(|v| !v.is_empty() && v != "\"\"")
    };
    let Some(visit_number) = get("PV1-19.1") else {
        return Err(AdtError::new(error_at(
            "PV1",
            Some(19),
            None,
            Some(1),
            101,
            "numéro de venue absent (PV1-19)".into(),
        )));
    };
    let when = ["ZBE-2", "EVN-6", "EVN-2", "MSH-7"]
        .iter()
        .find_map(|p| get(p));
    let Some(start_ms) = when.as_deref().and_then(parse_dtm) else {
        return Err(AdtError::new(error_at(
            "ZBE",
            Some(2),
            None,
            None,
            102,
            "date du mouvement absente ou illisible (ZBE-2)".into(),
        )));
    };
    if get("ZBE-4").as_deref() == Some("UPDATE") {
        return Err(AdtError::new(error_at(
            "ZBE",
            Some(4),
            None,
            None,
            207,
            "ZBE-4 UPDATE (Z99) non encore pris en charge".into(),
        )));
    }
    Ok(Some(Movement {
        visit_number,
        kind,
        cancel,
        movement_id: get("ZBE-1.1"),
        trigger: event.to_owned(),
        start_ms,
        location: BedLocation {
            unit: get("PV1-3.1"),
            room: get("PV1-3.2"),
            bed: get("PV1-3.3"),
        },
        class: get("PV1-2"),
    }))
}

/// Reads what an ADT message (`event`: A01, A28, A40…) says of an identity and
/// a stay. `authority_ok(namespace, universal_id)` says whether an IPP
/// assigned by that authority (PID-3.4) is an IPP of the receiving domain;
/// `today` bounds the birth date. `Err`: the message cannot be applied (AE).
pub fn read(
    m: &Message,
    event: &str,
    authority_ok: &dyn Fn(&str, &str) -> bool,
    today: jiff::civil::Date,
) -> Result<AdtEvent, AdtError> {
    let Some(pid) = m.segment("PID", 1) else {
        return Err(AdtError::new(error_at(
            "PID",
            None,
            None,
            None,
            100,
            "segment PID absent".into(),
        )));
    };
    let (ipp, ins, warnings) = identifiers(&pid, authority_ok)?;
    if let Some(identity) = merge_or_ipp_change(m, event, &ipp, authority_ok)? {
        return Ok(AdtEvent {
            identity,
            movement: None,
            warnings,
        });
    }
    let traits = traits(&pid, today)?;
    let mut warnings = warnings;
    let demographics = Box::new(details::read(
        m,
        &pid,
        traits.birth_date,
        today,
        &mut warnings,
    ));
    // PAM France: PID-32 VALI means qualified; the INS is kept only then.
    let reliability: Vec<&str> = pid
        .field(32)
        .iter()
        .flat_map(|f| f.repetitions())
        .map(|r| r.raw())
        .collect();
    let qualified = reliability.contains(&"VALI");
    let (ins, status) = match (ins, qualified) {
        (Some(ins), true) => (Some(ins), IdentityStatus::Qualified),
        _ => (None, IdentityStatus::Provisional),
    };
    let movement = movement(m, event)?;
    // ZFA (DMP): ZFA-1 status, ZFA-9 opposition to feeding (IO opposed, INO not,
    // NA not collected).
    let dmp = m.segment("ZFA", 1).map(|z| {
        let get = |n: usize| z.field(n).map(|f| f.raw().to_owned()).unwrap_or_default();
        Dmp {
            state: domain::documents::DmpState::from_zfa(&get(1)),
            opposition: match get(9).as_str() {
                "IO" => Some(true),
                "INO" => Some(false),
                _ => None,
            },
            consultation: match get(11).as_str() {
                "IC" => Some(true),
                "INC" => Some(false),
                _ => None,
            },
        }
    });
    Ok(AdtEvent {
        identity: IdentityChange::Upsert {
            ipp,
            traits,
            ins,
            status,
            dmp,
            demographics,
        },
        movement,
        warnings,
    })
}

/// PID-3: the IPP (type PI, of an authority `authority_ok` accepts) and the
/// INS (refused with a warning when its key is wrong).
fn identifiers(
    pid: &hl7v2::Segment<'_>,
    authority_ok: &dyn Fn(&str, &str) -> bool,
) -> Result<(String, Option<Ins>, Vec<AckError>), AdtError> {
    let mut ipp = None;
    let mut ins = None;
    let mut warnings = Vec::new();
    let pid3 = pid.field(3);
    for (i, rep) in pid3.iter().flat_map(|f| f.repetitions()).enumerate() {
        let id_type = rep.component(5).map(|c| c.raw()).unwrap_or("");
        let value = rep
            .component(1)
            .map(|c| c.decoded().into_owned())
            .unwrap_or_default();
        let oid = rep
            .component(4)
            .and_then(|c| c.subcomponent(2))
            .map(|s| s.raw())
            .unwrap_or("");
        match (id_type, InsKind::from_oid(oid)) {
            ("PI", _) if !value.is_empty() => {
                // The IPP of this domain only: PID-3.4 must name the territory's
                // authority (its OID) or the one declared for the sender.
                let namespace = rep
                    .component(4)
                    .and_then(|c| c.subcomponent(1))
                    .map(|s| s.raw())
                    .unwrap_or("");
                if !authority_ok(namespace, oid) {
                    return Err(AdtError::new(error_at(
                        "PID",
                        Some(3),
                        Some(i + 1),
                        Some(4),
                        102,
                        format!(
                            "IPP d'une autre autorité d'affectation ({namespace}&{oid}): attendu celle du domaine d'identification ou celle déclarée pour l'émetteur"
                        ),
                    )));
                }
                ipp = Some(value)
            }
            (_, Some(kind)) | ("INS", Some(kind)) if !value.is_empty() && value != "\"\"" => {
                match Ins::parse(kind, &value) {
                    Ok(v) => ins = Some(v),
                    Err(e) => warnings.push(error_at(
                        "PID",
                        Some(3),
                        Some(i + 1),
                        Some(1),
                        102,
                        format!("INS refusée ({e}); l'identité reste provisoire"),
                    )),
                }
            }
            _ => {}
        }
    }
    let Some(ipp) = ipp else {
        return Err(AdtError::new(error_at(
            "PID",
            Some(3),
            None,
            None,
            101,
            "IPP absent (PID-3 de type PI)".into(),
        )));
    };
    Ok((ipp, ins, warnings))
}

/// A40 and A47 (on the IPP): the change MRG-1 names; `None` for the other
/// events, and for an A47 on the INS (it carries the whole PID: an update).
fn merge_or_ipp_change(
    m: &Message,
    event: &str,
    ipp: &str,
    authority_ok: &dyn Fn(&str, &str) -> bool,
) -> Result<Option<IdentityChange>, AdtError> {
    if !MERGE_EVENTS.contains(&event) {
        return Ok(None);
    }
    let mrg: Vec<hl7v2::Field<'_>> = m
        .segment("MRG", 1)
        .and_then(|s| s.field(1))
        .into_iter()
        .flat_map(|f| f.repetitions())
        .collect();
    let id_type = |r: &hl7v2::Field<'_>| {
        r.component(5)
            .map(|c| c.raw().to_owned())
            .unwrap_or_default()
    };
    let old = mrg
        .iter()
        .enumerate()
        .find(|(_, r)| matches!(id_type(r).as_str(), "PI" | ""));
    // The old IPP must be of this domain too: another domain's would name
    // someone else here.
    if let Some((i, r)) = old {
        let part = |n: usize| {
            r.component(4)
                .and_then(|c| c.subcomponent(n))
                .map(|s| s.raw())
                .unwrap_or("")
        };
        let has_value = r.component(1).is_some_and(|c| !c.raw().is_empty());
        if has_value && !authority_ok(part(1), part(2)) {
            return Err(AdtError::new(error_at(
                "MRG",
                Some(1),
                Some(i + 1),
                Some(4),
                102,
                format!(
                    "ancien IPP d'une autre autorité d'affectation ({}&{})",
                    part(1),
                    part(2)
                ),
            )));
        }
    }
    let old_ipp = old
        .and_then(|(_, r)| r.component(1))
        .map(|c| c.decoded().into_owned())
        .filter(|v| !v.is_empty());
    let ins_change = event == "A47" && old_ipp.is_none() && mrg.iter().any(|r| id_type(r) == "INS");
    // An A47 on the INS (new, removed or downgraded) carries the whole PID: it
    // is applied below as an identity update.
    if !ins_change {
        let Some(old_ipp) = old_ipp else {
            return Err(AdtError::new(error_at(
                "MRG",
                Some(1),
                None,
                None,
                101,
                "ancien identifiant absent (MRG-1)".into(),
            )));
        };
        let identity = if event == "A40" {
            IdentityChange::Merge {
                survivor_ipp: ipp.to_owned(),
                merged_ipp: old_ipp,
            }
        } else {
            IdentityChange::ChangeIpp {
                old_ipp,
                new_ipp: ipp.to_owned(),
            }
        };
        return Ok(Some(identity));
    }
    Ok(None)
}

/// PID-5, 7, 8, 11: the traits (birth name and given names, used names,
/// birth date, sex, birthplace), checked.
fn traits(pid: &hl7v2::Segment<'_>, today: jiff::civil::Date) -> Result<Traits, AdtError> {
    // Names: the birth name (type L, or the first repetition), the used name (type D).
    let names: Vec<_> = pid.field(5).iter().flat_map(|f| f.repetitions()).collect();
    let birth = names
        .iter()
        .find(|r| name_type(r) == "L")
        .or_else(|| names.first());
    let used = names.iter().find(|r| name_type(r) == "D");
    let comp = |r: Option<&hl7v2::Field<'_>>, n: usize| -> Option<String> {
        r.and_then(|r| r.component(n))
            .map(|c| c.decoded().into_owned())
            .filter(|v| !v.is_empty() && v != "\"\"")
    };
    let Some(birth_name) = comp(birth, 1) else {
        return Err(AdtError::new(error_at(
            "PID",
            Some(5),
            None,
            Some(1),
            101,
            "nom de naissance absent (PID-5 de type L)".into(),
        )));
    };
    let first = comp(birth, 2);
    let all_given =
        comp(birth, 3).map(|g| g.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    let given = match (all_given, first) {
        (Some(list), _) if !list.is_empty() => list,
        (_, Some(f)) => vec![f],
        _ => {
            return Err(AdtError::new(error_at(
                "PID",
                Some(5),
                None,
                Some(2),
                101,
                "prénom de naissance absent (PID-5.2)".into(),
            )));
        }
    };
    let birth_date = pid
        .field(7)
        .map(|f| f.raw().get(..8).unwrap_or("").to_owned())
        .and_then(|d| {
            let (y, mo, da) = (
                d.get(..4)?.parse().ok()?,
                d.get(4..6)?.parse().ok()?,
                d.get(6..8)?.parse().ok()?,
            );
            jiff::civil::Date::new(y, mo, da).ok()
        });
    let Some(birth_date) = birth_date else {
        return Err(AdtError::new(error_at(
            "PID",
            Some(7),
            None,
            None,
            102,
            "date de naissance absente ou illisible (PID-7, AAAAMMJJ)".into(),
        )));
    };
    let sex = match pid.field(8).map(|f| f.raw()).unwrap_or("") {
        "M" => Sex::Male,
        "F" => Sex::Female,
        _ => Sex::Unknown,
    };
    let birthplace = pid
        .field(11)
        .into_iter()
        .flat_map(|f| f.repetitions())
        .find(|r| r.component(7).map(|c| c.raw()) == Some("BDL"))
        .and_then(|r| r.component(9))
        .map(|c| c.raw().to_owned())
        .filter(|c| !c.is_empty());
    let traits = Traits {
        birth_name,
        birth_given_names: given,
        birth_date,
        sex,
        birthplace_code: birthplace,
        used_name: comp(used, 1),
        used_given_name: comp(used, 2),
    };
    if let Err(e) = traits.check(today) {
        return Err(AdtError::new(error_at(
            "PID",
            Some(5),
            None,
            None,
            102,
            format!("traits d'identité refusés: {e}"),
        )));
    }
    Ok(traits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    const OID: &str = "1.2.250.1.999.42.1";

    fn ours(namespace: &str, universal: &str) -> bool {
        let named = if universal.is_empty() {
            namespace
        } else {
            universal
        };
        named == OID || named == "450000021"
    }

    fn msg(event: &str, pid: &str, extra: &str) -> Message {
        let text = format!(
            "MSH|^~\\&|GAM|CHVL|P|G|20261123101500||ADT^{event}|c1|P|2.5\rEVN||20261123101500\r{pid}\r{extra}"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 12, 1)
    }

    const PID: &str = "PID|1||IPP1^^^CHVL&450000021&M^PI||Dupont^Anne^Anne Marie^^^^L~Martin^Anne^^^^^D||19790315|F";

    fn code_at(e: AdtError) -> (u16, String) {
        let l = e.0.location.clone().unwrap();
        (
            e.0.code,
            format!("{}-{:?}-{:?}", l.segment, l.field, l.component),
        )
    }

    #[test]
    fn an_identity_is_read_with_its_traits_and_status() {
        let e = read(&msg("A28", PID, ""), "A28", &ours, today()).unwrap();
        let IdentityChange::Upsert {
            ipp,
            traits,
            ins,
            status,
            dmp,
            demographics,
        } = e.identity
        else {
            panic!("{e:?}")
        };
        assert!(
            demographics.is_empty(),
            "a PID with no demographics says nothing of them"
        );
        assert_eq!(ipp, "IPP1");
        assert_eq!(traits.birth_name, "Dupont");
        assert_eq!(traits.birth_given_names, vec!["Anne", "Marie"]);
        assert_eq!(traits.used_name.as_deref(), Some("Martin"));
        assert_eq!(
            (ins, status, dmp),
            (None, IdentityStatus::Provisional, None)
        );
        assert!(e.movement.is_none() && e.warnings.is_empty());
    }

    #[test]
    fn refusals_carry_their_place_and_code() {
        let cases: [(&str, &str, (u16, &str)); 5] = [
            ("A28", "NTE|1", (100, "PID-None-None")),
            (
                "A28",
                "PID|1||IPP1^^^AUTRE&1.2.3&ISO^PI||Dupont^Anne^^^^^L||19790315|F",
                (102, "PID-Some(3)-Some(4)"),
            ),
            (
                "A28",
                "PID|1||||Dupont^Anne^^^^^L||19790315|F",
                (101, "PID-Some(3)-None"),
            ),
            (
                "A28",
                "PID|1||IPP1^^^CHVL&450000021&M^PI||Dupont^Anne^^^^^L||1979|F",
                (102, "PID-Some(7)-None"),
            ),
            ("A40", PID, (101, "MRG-Some(1)-None")),
        ];
        for (event, pid, (code, place)) in cases {
            let e = read(&msg(event, pid, ""), event, &ours, today()).unwrap_err();
            assert_eq!(code_at(e), (code, place.to_owned()), "{pid}");
        }
    }

    #[test]
    fn merges_changes_of_ipp_and_movements() {
        let mrg = "MRG|OLD1^^^CHVL&450000021&M^PI";
        let e = read(&msg("A40", PID, mrg), "A40", &ours, today()).unwrap();
        assert_eq!(
            e.identity,
            IdentityChange::Merge {
                survivor_ipp: "IPP1".into(),
                merged_ipp: "OLD1".into()
            }
        );
        let e = read(&msg("A47", PID, mrg), "A47", &ours, today()).unwrap();
        assert_eq!(
            e.identity,
            IdentityChange::ChangeIpp {
                old_ipp: "OLD1".into(),
                new_ipp: "IPP1".into()
            }
        );
        let pv1 = format!(
            "PV1|1|I|CHIR^12^1{}V9\rZBE|MV1^CHVL|20261123103000||INSERT|N",
            "|".repeat(16)
        );
        let e = read(&msg("A01", PID, &pv1), "A01", &ours, today()).unwrap();
        let m = e.movement.unwrap();
        assert_eq!(
            (m.visit_number.as_str(), m.cancel, m.movement_id.as_deref()),
            ("V9", false, Some("MV1"))
        );
        assert_eq!(m.location.unit.as_deref(), Some("CHIR"));
        assert_eq!(m.start_ms, parse_dtm("20261123103000").unwrap());
        // An old IPP of another domain is refused on MRG-1.
        let foreign = "MRG|OLD1^^^AUTRE&1.2.3&ISO^PI";
        let e = read(&msg("A40", PID, foreign), "A40", &ours, today()).unwrap_err();
        assert_eq!(code_at(e), (102, "MRG-Some(1)-Some(4)".to_owned()));
        // A movement without its visit number is refused.
        let e = read(&msg("A01", PID, "PV1|1|I"), "A01", &ours, today()).unwrap_err();
        assert_eq!(code_at(e), (101, "PV1-Some(19)-Some(1)".to_owned()));
    }

    #[test]
    fn dtm_with_and_without_offset() {
        assert_eq!(
            parse_dtm("20261123101500+0100"),
            parse_dtm("20261123091500+0000")
        );
        // Without an offset: French time (UTC+1 in November).
        assert_eq!(
            parse_dtm("20261123101500"),
            parse_dtm("20261123091500+0000")
        );
        assert_eq!(parse_dtm("202611231015").map(|m| m % 60_000), Some(0));
        for bad in ["2026", "2026112X", "20261323", ""] {
            assert_eq!(parse_dtm(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_ans_zfa_samples_give_the_dmp_state_opposition_and_consent() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/hl7v2/ansforge");
        let cases = [
            (
                "ZFA_ConsentementConsultation_NonOppositionAlimentation.er7",
                Some(false),
                Some(true),
            ),
            (
                "ZFA_NonConsentementConsultation_NonOppositionAlimentation.er7",
                Some(false),
                Some(false),
            ),
            (
                "ZFA_NonConsentementConsultation_OppositionAlimentation.er7",
                Some(true),
                Some(false),
            ),
            (
                "ZFA_NonRecueillieConsentementConsultation_NonOppositionAlimentation.er7",
                Some(false),
                None,
            ),
            (
                "ZFA_NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7",
                None,
                None,
            ),
        ];
        for (file, opposition, consultation) in cases {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let m = Message::parse(&bytes).unwrap();
            let (_, event, _) = m.message_type();
            let event = event.unwrap();
            let e = read(&m, event, &|_, _| true, today()).unwrap();
            let IdentityChange::Upsert { dmp: Some(d), .. } = e.identity else {
                panic!("{file}: {e:?}")
            };
            assert_eq!(
                (d.opposition, d.consultation),
                (opposition, consultation),
                "{file}"
            );
        }
    }
}
