//! The demographics of IHE PAM France messages, both ways: read from PID-11
//! (addresses, the birth place `BDL`), PID-13/14 (phones, e-mail), PID-15
//! (language), PID-29/30 (death), NK1 (close ones, NK1-7 `K` the *personne de
//! confiance*) and ROL (`ODRP`, the *médecin traitant*, by RPPS); written back
//! into the PID, NK1 and ROL of the messages Parcours sends.
//!
//! Reading follows the receiver's usual policy: a field left empty says nothing
//! (the record keeps its value), `""` clears it; NK1 segments, when sent,
//! replace the close ones. A value that breaks a rule (a phone with letters, a
//! GP without a valid RPPS) is left out with a warning in the ACK (AE with
//! effect): the identity itself still applies, and nothing is dropped silently.

use domain::demographics::{
    Address, AddressUse, BirthPlace, Contact, ContactRole, Demographics, DemographicsPatch, Gp,
    Relationship, Telecom, TelecomKind, normalize_language, normalize_phone,
};
use domain::identity::Traits;
use domain::org::Rpps;
use hl7v2::ack::AckError;
use hl7v2::{Builder, Field, Message, PathError, Segment};
use jiff::civil::Date;

use super::error_at;

/// HL7's "delete this value".
const NULL: &str = "\"\"";

fn text(f: Option<Field<'_>>) -> Option<String> {
    f.map(|c| c.decoded().trim().to_owned())
        .filter(|v| !v.is_empty() && v != NULL)
}

fn warn(segment: &str, field: usize, rep: Option<usize>, msg: String) -> AckError {
    error_at(segment, Some(field), rep, None, 102, msg)
}

/// What the message says of the demographics; the values refused are in `warnings`.
pub fn read(
    m: &Message,
    pid: &Segment<'_>,
    birth_date: Date,
    today: Date,
    warnings: &mut Vec<AckError>,
) -> DemographicsPatch {
    let mut patch = DemographicsPatch::default();
    // Checks one part alone against the domain's rules.
    let ok = |d: Demographics| d.check(birth_date, today);

    if let Some(f) = pid.field(11).filter(|f| !f.raw().is_empty()) {
        let mut addresses = Vec::new();
        let mut birth_place = None;
        if f.raw() != NULL {
            for (i, rep) in f.repetitions().enumerate() {
                let kind = rep.component(7).map(|c| c.raw()).unwrap_or("");
                let use_ = match kind {
                    "BDL" => {
                        let (city, country) = (text(rep.component(3)), text(rep.component(6)));
                        let b = BirthPlace { city, country };
                        if b.city.is_some() || b.country.is_some() {
                            match ok(Demographics {
                                birth_place: Some(b.clone()),
                                ..Default::default()
                            }) {
                                Ok(()) => birth_place = Some(b),
                                Err(e) => warnings.push(warn(
                                    "PID",
                                    11,
                                    Some(i + 1),
                                    format!("lieu de naissance non conservé: {e}"),
                                )),
                            }
                        }
                        continue;
                    }
                    "H" | "" => AddressUse::Home,
                    "C" => AddressUse::Temporary,
                    "O" | "B" => AddressUse::Work,
                    other => {
                        warnings.push(warn(
                            "PID",
                            11,
                            Some(i + 1),
                            format!("adresse de type {other:?} non conservée (H, C, O, BDL)"),
                        ));
                        continue;
                    }
                };
                let street = rep
                    .component(1)
                    .and_then(|c| text(c.subcomponent(1)).or_else(|| text(Some(c))));
                let a = Address {
                    use_,
                    lines: street.into_iter().chain(text(rep.component(2))).collect(),
                    postal_code: text(rep.component(5)),
                    city: text(rep.component(3)),
                    country: text(rep.component(6)).map(|c| c.to_ascii_uppercase()),
                };
                if a.lines.is_empty() && a.postal_code.is_none() && a.city.is_none() {
                    continue;
                }
                match ok(Demographics {
                    addresses: vec![a.clone()],
                    ..Default::default()
                }) {
                    Ok(()) => addresses.push(a),
                    Err(e) => warnings.push(warn(
                        "PID",
                        11,
                        Some(i + 1),
                        format!("adresse non conservée: {e}"),
                    )),
                }
            }
        }
        patch.addresses = Some(addresses);
        patch.birth_place = Some(birth_place);
    }

    let home = pid.field(13).filter(|f| !f.raw().is_empty());
    let work = pid.field(14).filter(|f| !f.raw().is_empty());
    if home.is_some() || work.is_some() {
        let mut telecoms = Vec::new();
        for (n, f, default) in [
            (13, home, TelecomKind::HomePhone),
            (14, work, TelecomKind::WorkPhone),
        ] {
            let Some(f) = f.filter(|f| f.raw() != NULL) else {
                continue;
            };
            for (i, rep) in f.repetitions().enumerate() {
                match read_xtn(&rep, default) {
                    Ok(Some(t)) if !telecoms.contains(&t) => telecoms.push(t),
                    Ok(_) => {}
                    Err(e) => warnings.push(warn("PID", n, Some(i + 1), e)),
                }
            }
        }
        patch.telecoms = Some(telecoms);
    }

    if let Some(f) = pid.field(15).filter(|f| !f.raw().is_empty()) {
        if f.raw() == NULL {
            patch.language = Some(None);
        } else {
            let code = text(f.component(1)).unwrap_or_default();
            match normalize_language(&code) {
                Some(l) => patch.language = Some(Some(l)),
                None => warnings.push(warn(
                    "PID",
                    15,
                    None,
                    format!("langue {code:?} non reconnue (code ISO 639 attendu): non conservée"),
                )),
            }
        }
    }

    read_death(pid, birth_date, today, &mut patch, warnings);
    read_contacts(m, &mut patch, warnings);
    read_gp(m, &mut patch, warnings);
    patch
}

/// One XTN: the phone (XTN-12 unformatted, else XTN-1, else XTN-6 + XTN-7) or
/// the e-mail (XTN-4), its kind from XTN-2 (use) and XTN-3 (equipment).
fn read_xtn(rep: &Field<'_>, default: TelecomKind) -> Result<Option<Telecom>, String> {
    let usage = rep.component(2).map(|c| c.raw()).unwrap_or("");
    let equipment = rep.component(3).map(|c| c.raw()).unwrap_or("");
    if usage == "NET" || equipment == "Internet" || equipment == "X.400" {
        let Some(address) = text(rep.component(4)).or_else(|| text(rep.component(1))) else {
            return Ok(None);
        };
        return Telecom::parse(TelecomKind::Email, &address)
            .map(Some)
            .map_err(|e| format!("{e}: non conservée"));
    }
    if equipment == "FX" || equipment == "BP" {
        return Err(format!(
            "équipement {equipment:?} (fax, bip) non conservé: téléphone ou e-mail seulement"
        ));
    }
    let number = text(rep.component(12))
        .or_else(|| text(rep.component(1)))
        .or_else(|| {
            let area = text(rep.component(6)).unwrap_or_default();
            text(rep.component(7)).map(|local| format!("{area}{local}"))
        });
    let Some(number) = number else {
        return Ok(None);
    };
    let kind = if equipment == "CP" {
        TelecomKind::Mobile
    } else if usage == "WPN" {
        TelecomKind::WorkPhone
    } else if usage == "PRN" || usage == "ORN" {
        TelecomKind::HomePhone
    } else {
        default
    };
    Telecom::parse(kind, &number)
        .map(Some)
        .map_err(|e| format!("{e}: non conservé"))
}

/// PID-29 (date of death) and PID-30 (death indicator).
fn read_death(
    pid: &Segment<'_>,
    birth_date: Date,
    today: Date,
    patch: &mut DemographicsPatch,
    warnings: &mut Vec<AckError>,
) {
    let date = pid.field(29).map(|f| f.raw()).unwrap_or("");
    let indicator = pid.field(30).map(|f| f.raw()).unwrap_or("");
    if date == NULL || indicator == "N" {
        patch.deceased = Some(None);
        return;
    }
    if date.is_empty() {
        if indicator == "Y" {
            warnings.push(warn(
                "PID",
                29,
                None,
                "décès indiqué (PID-30 = Y) sans date (PID-29): non conservé".into(),
            ));
        }
        return;
    }
    let parsed = date.get(..8).and_then(|d| {
        let y = d.get(..4)?.parse().ok()?;
        let mo = d.get(4..6)?.parse().ok()?;
        let da = d.get(6..8)?.parse().ok()?;
        Date::new(y, mo, da).ok()
    });
    let Some(day) = parsed else {
        warnings.push(warn(
            "PID",
            29,
            None,
            "date de décès illisible (AAAAMMJJ): non conservée".into(),
        ));
        return;
    };
    let d = Demographics {
        deceased: Some(day),
        ..Default::default()
    };
    match d.check(birth_date, today) {
        Ok(()) => patch.deceased = Some(Some(day)),
        Err(e) => warnings.push(warn("PID", 29, None, format!("{e}: non conservée"))),
    }
}

/// NK1 segments, when any is sent, replace the close ones (one without a
/// name is left out; `NK1|1|""` alone clears them).
fn read_contacts(m: &Message, patch: &mut DemographicsPatch, warnings: &mut Vec<AckError>) {
    let nk1: Vec<Segment<'_>> = m.segments().filter(|s| s.name() == "NK1").collect();
    if nk1.is_empty() {
        return;
    }
    let mut contacts = Vec::new();
    let today = Date::MAX;
    for (i, s) in nk1.iter().enumerate() {
        let name = s.field(2);
        let Some(family) = text(name.and_then(|n| n.component(1))) else {
            continue;
        };
        let role_code = s
            .field(7)
            .and_then(|f| text(f.component(1)))
            .unwrap_or_default();
        let role = ContactRole::from_code(&role_code).unwrap_or(ContactRole::NextOfKin);
        let relationship = s.field(3).and_then(|f| text(f.component(1))).map(|code| {
            Relationship::from_code(&code.to_ascii_uppercase()).unwrap_or(Relationship::Other)
        });
        let phone_raw = s.field(5).and_then(|f| {
            let rep = f.repetition(1)?;
            text(rep.component(12)).or_else(|| text(rep.component(1)))
        });
        let phone = match phone_raw {
            Some(p) => match normalize_phone(&p) {
                Some(n) => Some(n),
                None => {
                    warnings.push(warn(
                        "NK1",
                        5,
                        None,
                        format!("téléphone du proche {} illisible: non conservé", i + 1),
                    ));
                    None
                }
            },
            None => None,
        };
        let c = Contact {
            role,
            relationship,
            family,
            given: text(name.and_then(|n| n.component(2))),
            phone,
        };
        if role == ContactRole::Trusted && contacts.iter().any(|x: &Contact| x.role == role) {
            warnings.push(warn(
                "NK1",
                7,
                None,
                "une seule personne de confiance: la suivante est gardée comme proche".into(),
            ));
            contacts.push(Contact {
                role: ContactRole::NextOfKin,
                ..c
            });
            continue;
        }
        match (Demographics {
            contacts: vec![c.clone()],
            ..Default::default()
        })
        .check(Date::MIN, today)
        {
            Ok(()) => contacts.push(c),
            Err(e) => warnings.push(warn("NK1", 2, None, format!("proche non conservé: {e}"))),
        }
    }
    patch.contacts = Some(contacts);
}

/// ROL with role `ODRP`: the *médecin traitant* (ROL-2 `DE`/`UN` removes it).
fn read_gp(m: &Message, patch: &mut DemographicsPatch, warnings: &mut Vec<AckError>) {
    let Some(rol) = m.segments().filter(|s| s.name() == "ROL").find(|s| {
        s.field(3)
            .and_then(|f| f.component(1))
            .is_some_and(|c| c.raw() == "ODRP")
    }) else {
        return;
    };
    let action = rol.field(2).map(|f| f.raw()).unwrap_or("");
    if action == "DE" || action == "UN" {
        patch.gp = Some(None);
        return;
    }
    let person = rol.field(4).and_then(|f| f.repetition(1));
    let id = text(person.as_ref().and_then(|p| p.component(1))).unwrap_or_default();
    // The RPPS alone (11 digits), or as an IdNatPs (`8` + RPPS).
    let rpps = match id.strip_prefix('8') {
        Some(rest) if id.len() == 12 => rest.to_owned(),
        _ => id,
    };
    match Rpps::parse(&rpps) {
        Ok(rpps) => {
            patch.gp = Some(Some(Gp {
                rpps,
                family: text(person.as_ref().and_then(|p| p.component(2))),
                given: text(person.as_ref().and_then(|p| p.component(3))),
            }));
        }
        Err(e) => warnings.push(warn(
            "ROL",
            4,
            None,
            format!("médecin traitant non conservé: {e}"),
        )),
    }
}

/// Writes `d` (and the birthplace code of `t`) into the PID of `b`: PID-11,
/// 13, 14, 15, 29, 30 (every message with a PID may carry them).
pub fn write_pid(b: &mut Builder, t: &Traits, d: &Demographics) -> Result<(), PathError> {
    let mut rep = 0;
    for a in &d.addresses {
        rep += 1;
        let line = |n: usize| a.lines.get(n).map(String::as_str).unwrap_or("");
        b.set(&format!("PID-11({rep}).1"), line(0))?
            .set(&format!("PID-11({rep}).2"), line(1))?
            .set(&format!("PID-11({rep}).3"), a.city.as_deref().unwrap_or(""))?
            .set(
                &format!("PID-11({rep}).5"),
                a.postal_code.as_deref().unwrap_or(""),
            )?
            .set(
                &format!("PID-11({rep}).6"),
                a.country.as_deref().unwrap_or(""),
            )?
            .set(
                &format!("PID-11({rep}).7"),
                match a.use_ {
                    AddressUse::Home => "H",
                    AddressUse::Temporary => "C",
                    AddressUse::Work => "O",
                },
            )?;
    }
    if t.birthplace_code.is_some() || d.birth_place.is_some() {
        rep += 1;
        let bp = d.birth_place.as_ref();
        b.set(
            &format!("PID-11({rep}).3"),
            bp.and_then(|b| b.city.as_deref()).unwrap_or(""),
        )?
        .set(
            &format!("PID-11({rep}).6"),
            bp.and_then(|b| b.country.as_deref()).unwrap_or(""),
        )?
        .set(&format!("PID-11({rep}).7"), "BDL")?
        .set(
            &format!("PID-11({rep}).9"),
            t.birthplace_code.as_deref().unwrap_or(""),
        )?;
    }
    let (mut home, mut work) = (0, 0);
    for tc in &d.telecoms {
        let (field, n) = match tc.kind {
            TelecomKind::WorkPhone => {
                work += 1;
                (14, work)
            }
            _ => {
                home += 1;
                (13, home)
            }
        };
        let (usage, equipment) = match tc.kind {
            TelecomKind::HomePhone => ("PRN", "PH"),
            TelecomKind::Mobile => ("PRN", "CP"),
            TelecomKind::WorkPhone => ("WPN", "PH"),
            TelecomKind::Email => ("NET", "Internet"),
        };
        let at = |c: usize| format!("PID-{field}({n}).{c}");
        b.set(&at(2), usage)?.set(&at(3), equipment)?;
        if tc.kind == TelecomKind::Email {
            b.set(&at(4), &tc.value)?;
        } else {
            b.set(&at(12), &tc.value)?;
        }
    }
    if let Some(l) = &d.language {
        b.set("PID-15.1", l)?;
    }
    if let Some(day) = d.deceased {
        b.set("PID-29", &day.strftime("%Y%m%d").to_string())?
            .set("PID-30", "Y")?;
    }
    Ok(())
}

/// Appends the close ones of `d` as NK1 segments (call it right after the PID,
/// in the messages whose structure has them: ADT, ORU^R01).
pub fn write_nk1(b: &mut Builder, d: &Demographics) -> Result<(), PathError> {
    for (i, c) in d.contacts.iter().enumerate() {
        let seg = |f: &str| format!("NK1({})-{f}", i + 1);
        b.set(&seg("1"), &(i + 1).to_string())?
            .set(&seg("2.1"), &c.family)?
            .set(&seg("2.2"), c.given.as_deref().unwrap_or(""))?
            .set(&seg("3.1"), c.relationship.map(|r| r.code()).unwrap_or(""))?
            .set(&seg("7.1"), c.role.code())?;
        if let Some(p) = &c.phone {
            b.set(&seg("5.2"), "PRN")?
                .set(&seg("5.3"), "PH")?
                .set(&seg("5.12"), p)?;
        }
    }
    Ok(())
}

/// Appends the GP of `d` as a ROL segment (`ODRP`, in ADT messages).
pub fn write_rol(b: &mut Builder, d: &Demographics) -> Result<(), PathError> {
    if let Some(g) = &d.gp {
        b.set("ROL-2", "UC")?
            .set("ROL-3.1", "ODRP")?
            .set("ROL-4.1", g.rpps.as_str())?
            .set("ROL-4.2", g.family.as_deref().unwrap_or(""))?
            .set("ROL-4.3", g.given.as_deref().unwrap_or(""))?
            .set("ROL-4.9.1", "ASIP-SANTE-PS")?
            .set("ROL-4.9.2", "1.2.250.1.71.4.2.1")?
            .set("ROL-4.9.3", "ISO")?
            .set("ROL-4.13", "RPPS")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use domain::identity::Sex;

    fn today() -> Date {
        jiff::civil::date(2026, 12, 1)
    }
    const BIRTH: Date = jiff::civil::date(1979, 3, 28);

    fn read_text(text: &str) -> (DemographicsPatch, Vec<AckError>) {
        let m = Message::parse(text.as_bytes()).unwrap();
        let pid = m.segment("PID", 1).unwrap();
        let mut warnings = Vec::new();
        let p = read(&m, &pid, BIRTH, today(), &mut warnings);
        (p, warnings)
    }

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/hl7v2/ansforge")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_ans_sample_gives_its_address_and_gp() {
        let (p, warnings) = read_text(&fixture(
            "ZFA_ConsentementConsultation_NonOppositionAlimentation.er7",
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        let addresses = p.addresses.unwrap();
        assert_eq!(addresses.len(), 1);
        let a = &addresses[0];
        assert_eq!(a.use_, AddressUse::Home);
        assert_eq!(a.lines, ["28 Av de Breteuil"]);
        assert_eq!(
            (
                a.postal_code.as_deref(),
                a.city.as_deref(),
                a.country.as_deref()
            ),
            (Some("75007"), Some("PARIS"), Some("FRA"))
        );
        assert_eq!(p.birth_place, Some(None), "BDL with its INSEE code only");
        let gp = p.gp.unwrap().unwrap();
        assert_eq!(gp.rpps.as_str(), "10000023084");
        assert_eq!(
            (gp.family.as_deref(), gp.given.as_deref()),
            (Some("AGNES"), Some("Isabelle"))
        );
        assert_eq!(p.telecoms, None, "no PID-13/14: phones kept as they are");
        assert_eq!(p.contacts, None, "no NK1: close ones kept");
        assert_eq!(p.language, None);
        assert_eq!(p.deceased, Some(None), "PID-30 = N: not deceased");
    }

    const MSH: &str = "MSH|^~\\&|GAM|CHVL|P|G|20261123101500||ADT^A31^ADT_A05|c1|P|2.5\r";

    /// A PID with the traits and these fields (number, ER7 text).
    fn pid(fields: &[(usize, &str)]) -> String {
        let mut f = vec![String::new(); 33];
        f[1] = "1".into();
        f[3] = "IPP1^^^CHVL&450000021&M^PI".into();
        f[5] = "Dupont^Anne^^^^^L".into();
        f[7] = "19790328".into();
        f[8] = "F".into();
        for (n, v) in fields {
            f[*n] = (*v).into();
        }
        let last = f.iter().rposition(|x| !x.is_empty()).unwrap();
        format!("PID|{}\r", f[1..=last].join("|"))
    }

    #[test]
    fn every_part_is_read_with_escapes() {
        let text = format!(
            "{MSH}{}NK1|1|Dupont^Paul|CHD||^PRN^PH^^^^^^^^^0712345678||K\r\
             NK1|2|Martin^L\\XE9\\a|FND||||K\r\
             NK1|3|^Sans nom|||||C\r\
             ROL||UC|ODRP|810000023084^AGNES^Isabelle^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS\r",
            pid(&[
                (
                    11,
                    "Chemin des Pr\\XE9\\s \\T\\ Bois^B\\XE2\\t. B^Saint-\\XC9\\tienne^^42000^fra^H~^^Orl\\XE9\\ans^^^FRA^BDL^^45234~Poste restante^^Lyon^^69000^FRA^M"
                ),
                (
                    13,
                    "^PRN^CP^^^^^^^^^06 12 34 56 78~^NET^Internet^anne.dupont@example.fr~^PRN^FX^^^^^^^^^0478000001~^PRN^PH^^^^^^^^^12"
                ),
                (14, "^WPN^PH^^^^^^^^^0477000000"),
                (15, "FRE"),
                (29, "20261130"),
                (30, "Y"),
            ])
        );
        // As a sender in Latin-1 would write it (the escapes decode to UTF-8).
        let (p, warnings) = read_text(&text);
        let addresses = p.addresses.unwrap();
        assert_eq!(addresses[0].lines, ["Chemin des Prés & Bois", "Bât. B"]);
        assert_eq!(addresses[0].city.as_deref(), Some("Saint-Étienne"));
        assert_eq!(addresses[0].country.as_deref(), Some("FRA"));
        assert_eq!(addresses.len(), 1, "the mailing address (M) is left out");
        assert_eq!(
            p.birth_place,
            Some(Some(BirthPlace {
                city: Some("Orléans".into()),
                country: Some("FRA".into())
            }))
        );
        let telecoms = p.telecoms.unwrap();
        let kinds: Vec<(TelecomKind, &str)> = telecoms
            .iter()
            .map(|t| (t.kind, t.value.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (TelecomKind::Mobile, "0612345678"),
                (TelecomKind::Email, "anne.dupont@example.fr"),
                (TelecomKind::WorkPhone, "0477000000"),
            ]
        );
        assert_eq!(p.language, Some(Some("fr".into())));
        assert_eq!(p.deceased, Some(Some(jiff::civil::date(2026, 11, 30))));
        let contacts = p.contacts.unwrap();
        assert_eq!(contacts.len(), 2, "the nameless NK1 is left out");
        assert_eq!(contacts[0].role, ContactRole::Trusted);
        assert_eq!(contacts[0].relationship, Some(Relationship::Child));
        assert_eq!(contacts[0].phone.as_deref(), Some("0712345678"));
        assert_eq!(
            (contacts[1].role, contacts[1].given.as_deref()),
            (ContactRole::NextOfKin, Some("Léa")),
            "a second personne de confiance is kept as a close one"
        );
        assert_eq!(p.gp.unwrap().unwrap().rpps.as_str(), "10000023084");
        // Nothing dropped silently: each refusal is a warning at its place.
        let said: Vec<String> = warnings
            .iter()
            .map(|w| {
                let l = w.location.as_ref().unwrap();
                format!(
                    "{}-{}({})",
                    l.segment,
                    l.field.unwrap(),
                    l.repetition.unwrap_or(0)
                )
            })
            .collect();
        assert_eq!(
            said,
            ["PID-11(3)", "PID-13(3)", "PID-13(4)", "NK1-7(0)"],
            "{warnings:?}"
        );
        assert!(warnings.iter().all(|w| w.code == 102));
        assert!(
            warnings[1].message.contains("fax"),
            "{}",
            warnings[1].message
        );
    }

    #[test]
    fn nulls_clear_and_bad_values_keep_what_was_there() {
        let text = format!(
            "{MSH}{}NK1|1|\"\"\rROL||DE|ODRP|10000023084\r",
            pid(&[(11, "\"\""), (13, "\"\""), (15, "\"\""), (29, "\"\"")])
        );
        let (p, warnings) = read_text(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.addresses, Some(vec![]));
        assert_eq!(p.birth_place, Some(None));
        assert_eq!(p.telecoms, Some(vec![]));
        assert_eq!(p.language, Some(None));
        assert_eq!(p.deceased, Some(None));
        assert_eq!(p.contacts, Some(vec![]));
        assert_eq!(p.gp, Some(None));

        let text = format!(
            "{MSH}{}ROL||AD|ODRP|12345678901^X\r",
            pid(&[
                (11, "^^Lyon^^6900^FRA^H"),
                (15, "klingon"),
                (29, "19700101")
            ])
        );
        let (p, warnings) = read_text(&text);
        assert_eq!(
            p.addresses,
            Some(vec![]),
            "the address with a bad postal code is refused"
        );
        assert_eq!(p.language, None, "an unknown language keeps the record's");
        assert_eq!(
            p.deceased, None,
            "a death before the birth keeps the record's"
        );
        assert_eq!(p.gp, None, "a GP without a valid RPPS keeps the record's");
        let fields: Vec<usize> = warnings
            .iter()
            .map(|w| w.location.as_ref().unwrap().field.unwrap())
            .collect();
        assert_eq!(fields, [11, 15, 29, 4]);
        let text = format!("{MSH}{}", pid(&[(30, "Y")]));
        let (p, warnings) = read_text(&text);
        assert_eq!(p.deceased, None);
        assert!(warnings[0].message.contains("sans date"));
        let text = format!("{MSH}{}", pid(&[(29, "2026XX01")]));
        let (_, warnings) = read_text(&text);
        assert!(warnings[0].message.contains("illisible"));
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let d = Demographics {
            addresses: vec![Address {
                use_: AddressUse::Home,
                lines: vec!["12 rue de l'Église & fils".into(), "Bât. ^B".into()],
                postal_code: Some("42000".into()),
                city: Some("Saint-Étienne".into()),
                country: Some("FRA".into()),
            }],
            birth_place: Some(BirthPlace {
                city: Some("Orléans".into()),
                country: Some("FRA".into()),
            }),
            telecoms: vec![
                Telecom::parse(TelecomKind::Mobile, "0612345678").unwrap(),
                Telecom::parse(TelecomKind::HomePhone, "0478000000").unwrap(),
                Telecom::parse(TelecomKind::Email, "a|b@example.fr").unwrap(),
                Telecom::parse(TelecomKind::WorkPhone, "+41223334455").unwrap(),
            ],
            contacts: vec![Contact {
                role: ContactRole::Trusted,
                relationship: Some(Relationship::Spouse),
                family: "Dupont".into(),
                given: Some("Paul".into()),
                phone: Some("0712345678".into()),
            }],
            gp: Some(Gp {
                rpps: Rpps::parse("10000023084").unwrap(),
                family: Some("AGNES".into()),
                given: Some("Isabelle".into()),
            }),
            language: Some("fr".into()),
            deceased: Some(jiff::civil::date(2026, 11, 30)),
        };
        let t = Traits {
            birth_name: "Dupont".into(),
            birth_given_names: vec!["Anne".into()],
            birth_date: BIRTH,
            sex: Sex::Female,
            birthplace_code: Some("45234".into()),
            used_name: None,
            used_given_name: None,
        };
        let mut b = Builder::new();
        b.set("MSH-9.1", "ADT")
            .unwrap()
            .set("PID-3.1", "IPP1")
            .unwrap();
        write_pid(&mut b, &t, &d).unwrap();
        write_nk1(&mut b, &d).unwrap();
        write_rol(&mut b, &d).unwrap();
        let text = b.encode();
        assert!(text.contains("\rNK1|1|Dupont^Paul|SPO|"), "{text}");
        assert!(
            text.contains("\rROL||UC|ODRP|10000023084^AGNES^Isabelle"),
            "{text}"
        );
        let (p, warnings) = read_text(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(Demographics::default().patched(p), d);
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(m.get("PID-11(2).9").unwrap().as_deref(), Some("45234"));
    }
}
