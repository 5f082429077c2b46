//! Patient identity: the five INS traits, the RNIV identity statuses and their
//! allowed transitions, and the rule that the INS is exchanged only when the
//! identity is qualified.

use jiff::civil::Date;

use crate::ins::Ins;

/// Administrative sex as carried by the INS traits (`M`/`F`); `U` (unknown) is only
/// for provisional identities created before the sex is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Unknown (provisional identity only).
    Unknown,
}

impl Sex {
    /// Storage and HL7 code.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Unknown => "U",
        }
    }
    /// Reads a storage or HL7 code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "M" => Some(Sex::Male),
            "F" => Some(Sex::Female),
            "U" => Some(Sex::Unknown),
            _ => None,
        }
    }
}

/// RNIV identity status (FR Core `fr-core-cs-identity-status`). Two criteria: I, the
/// identity was obtained or checked through INSi; C, it was checked against a
/// high-trust identity document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityStatus {
    /// PROV: neither criterion.
    Provisional,
    /// RECUP: I only.
    Recovered,
    /// VALI: C only (in RNIV/FHIR; in HL7 PAM France `VALI` means qualified!).
    Validated,
    /// QUAL: both criteria. Only then may the INS be used and exchanged.
    Qualified,
}

/// A transition the RNIV does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("passage du statut d'identité {from} à {to} non autorisé")]
pub struct StatusTransitionError {
    /// Current status code.
    pub from: &'static str,
    /// Requested status code.
    pub to: &'static str,
}

impl IdentityStatus {
    /// The FR Core code (PROV, RECUP, VALI, QUAL).
    pub fn code(self) -> &'static str {
        match self {
            IdentityStatus::Provisional => "PROV",
            IdentityStatus::Recovered => "RECUP",
            IdentityStatus::Validated => "VALI",
            IdentityStatus::Qualified => "QUAL",
        }
    }

    /// Reads an FR Core code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "PROV" => Some(IdentityStatus::Provisional),
            "RECUP" => Some(IdentityStatus::Recovered),
            "VALI" => Some(IdentityStatus::Validated),
            "QUAL" => Some(IdentityStatus::Qualified),
            _ => None,
        }
    }

    /// French label shown to users.
    pub fn label_fr(self) -> &'static str {
        match self {
            IdentityStatus::Provisional => "provisoire",
            IdentityStatus::Recovered => "récupérée",
            IdentityStatus::Validated => "validée",
            IdentityStatus::Qualified => "qualifiée",
        }
    }

    /// The two criteria (INSi, identity document).
    fn criteria(self) -> (bool, bool) {
        match self {
            IdentityStatus::Provisional => (false, false),
            IdentityStatus::Recovered => (true, false),
            IdentityStatus::Validated => (false, true),
            IdentityStatus::Qualified => (true, true),
        }
    }

    /// Whether the identity was obtained or checked through INSi (criterion I).
    pub fn insi_checked(self) -> bool {
        self.criteria().0
    }

    /// Moves to `to` if the RNIV allows it: exactly one criterion is gained
    /// (PROV→RECUP, PROV→VALI, RECUP→QUAL, VALI→QUAL) or lost (the downgrades, which
    /// are then propagated to receivers). Gaining both at once is two transitions,
    /// recorded one after the other; staying put is not a transition.
    pub fn transition(self, to: IdentityStatus) -> Result<IdentityStatus, StatusTransitionError> {
        let (i0, c0) = self.criteria();
        let (i1, c1) = to.criteria();
        let changed = usize::from(i0 != i1) + usize::from(c0 != c1);
        if changed == 1 {
            Ok(to)
        } else {
            Err(StatusTransitionError {
                from: self.code(),
                to: to.code(),
            })
        }
    }

    /// Whether the INS may be used and exchanged with this status.
    pub fn ins_exchangeable(self) -> bool {
        self == IdentityStatus::Qualified
    }
}

/// The five identity traits (what INSi returns), plus the names in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traits {
    /// Nom de naissance.
    pub birth_name: String,
    /// Prénoms de naissance, in order; the first one is kept apart as the first name.
    pub birth_given_names: Vec<String>,
    /// Date de naissance.
    pub birth_date: Date,
    /// Sexe.
    pub sex: Sex,
    /// Lieu de naissance: INSEE COG code of the commune, or of the country (99xxx).
    pub birthplace_code: Option<String>,
    /// Nom utilisé, if it differs from the birth name.
    pub used_name: Option<String>,
    /// Prénom utilisé, if it differs from the first birth given name.
    pub used_given_name: Option<String>,
}

/// A trait value that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraitsError {
    /// The birth name is empty.
    #[error("le nom de naissance est obligatoire")]
    MissingBirthName,
    /// No given name.
    #[error("au moins un prénom de naissance est obligatoire")]
    MissingGivenName,
    /// A name with characters outside letters, spaces, hyphens and apostrophes.
    #[error("le nom ou prénom {0:?} contient des caractères non autorisés")]
    BadName(String),
    /// A birthplace code that is not 5 characters of the INSEE COG.
    #[error("le code du lieu de naissance doit compter 5 caractères (code INSEE)")]
    BadBirthplace,
    /// A birth date in the future.
    #[error("la date de naissance est dans le futur")]
    FutureBirthDate,
    /// All the names together (birth, given, used) over `NAMES_MAX_BYTES`.
    #[error(
        "les noms et prénoms réunis sont trop longs ({0} octets en UTF-8, {NAMES_MAX_BYTES} au plus)"
    )]
    NamesTooLong(usize),
}

/// Most bytes (UTF-8) of a record's names together. Each name holds 100
/// letters at most, but the given names are not counted; the store copies
/// the names, raw and normalised, into each of the record's word rows, which
/// PostgreSQL keeps in a B-tree whose entries hold 2,704 bytes at most: 600
/// bytes of names (even of 4-byte letters) stay well within it.
pub const NAMES_MAX_BYTES: usize = 600;

fn check_name(name: &str) -> Result<(), TraitsError> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 100
        && name
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\''));
    if ok {
        Ok(())
    } else {
        Err(TraitsError::BadName(name.chars().take(100).collect()))
    }
}

impl Traits {
    /// Checks the traits against the rules of the RNIV: names made of letters,
    /// spaces, hyphens and apostrophes; at least one given name; a 5-character
    /// birthplace code; a birth date not after `today`. And the names together
    /// within `NAMES_MAX_BYTES`.
    pub fn check(&self, today: Date) -> Result<(), TraitsError> {
        if self.birth_name.trim().is_empty() {
            return Err(TraitsError::MissingBirthName);
        }
        check_name(&self.birth_name)?;
        if self.birth_given_names.is_empty() {
            return Err(TraitsError::MissingGivenName);
        }
        for n in &self.birth_given_names {
            check_name(n)?;
        }
        for n in self.used_name.iter().chain(self.used_given_name.iter()) {
            check_name(n)?;
        }
        let bytes: usize = std::iter::once(&self.birth_name)
            .chain(&self.birth_given_names)
            .chain(&self.used_name)
            .chain(&self.used_given_name)
            .map(String::len)
            .sum();
        if bytes > NAMES_MAX_BYTES {
            return Err(TraitsError::NamesTooLong(bytes));
        }
        if let Some(code) = &self.birthplace_code {
            let ok = code.len() == 5 && code.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err(TraitsError::BadBirthplace);
            }
        }
        if self.birth_date > today {
            return Err(TraitsError::FutureBirthDate);
        }
        Ok(())
    }

    /// The first birth given name.
    pub fn first_given_name(&self) -> &str {
        self.birth_given_names
            .first()
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The name to address the patient by: used name if any, else birth name.
    pub fn display_name(&self) -> String {
        let family = self.used_name.as_deref().unwrap_or(&self.birth_name);
        let given = self
            .used_given_name
            .as_deref()
            .unwrap_or_else(|| self.first_given_name());
        format!("{} {}", family.to_uppercase(), given)
    }
}

/// A patient identity record in one identity domain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    /// Record id.
    pub id: crate::PatientId,
    /// Identity domain.
    pub territory: crate::TerritoryId,
    /// Identifiant permanent du patient in this domain.
    pub ipp: String,
    /// Identity traits.
    pub traits: Traits,
    /// INS, when known (exchanged only if qualified).
    pub ins: Option<Ins>,
    /// RNIV status.
    pub status: IdentityStatus,
    /// Set when this record was merged into another (the survivor).
    pub merged_into: Option<crate::PatientId>,
    /// Version, incremented on every change (FHIR versionId, optimistic locking).
    pub version: i64,
    /// Last change (Unix milliseconds).
    pub updated_at_ms: i64,
}

impl PatientRecord {
    /// Whether the record is still in use (not merged away).
    pub fn active(&self) -> bool {
        self.merged_into.is_none()
    }
}

/// Upper-cases and strips French diacritics so that searches match "Hélène" with
/// "HELENE" and "Œ" with "OE".
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_uppercase) {
        match c {
            'À' | 'Â' | 'Ä' | 'Á' | 'Ã' => out.push('A'),
            'Ç' => out.push('C'),
            'É' | 'È' | 'Ê' | 'Ë' => out.push('E'),
            'Î' | 'Ï' | 'Í' | 'Ì' => out.push('I'),
            'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' => out.push('O'),
            'Ù' | 'Û' | 'Ü' | 'Ú' => out.push('U'),
            'Ÿ' | 'Ý' => out.push('Y'),
            'Ñ' => out.push('N'),
            'Œ' => out.push_str("OE"),
            'Æ' => out.push_str("AE"),
            '\'' | '’' | '-' => out.push(' '),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A status that needs an INS (criterion I: obtained or checked through INSi).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("le statut {0} suppose une INS obtenue ou vérifiée par le téléservice INSi: INS absente")]
pub struct StatusNeedsIns(pub &'static str);

/// RECUP and QUAL mean the INS came from INSi: they cannot stand without an INS.
pub fn check_status_with_ins(
    status: IdentityStatus,
    ins: Option<&Ins>,
) -> Result<(), StatusNeedsIns> {
    if status.insi_checked() && ins.is_none() {
        Err(StatusNeedsIns(status.code()))
    } else {
        Ok(())
    }
}

/// The INS together with the status it is held at: only a qualified identity
/// lets it out.
pub fn exchangeable_ins(ins: Option<&Ins>, status: IdentityStatus) -> Option<&Ins> {
    ins.filter(|_| status.ins_exchangeable())
}

/// A desk or API edit that would change the INS traits of an identity whose
/// traits came from INSi (RECUP, QUAL) while keeping it at such a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "les traits d'une identité {0} viennent du téléservice INSi: ils ne changent que par une nouvelle qualification (ou après avoir rétrogradé l'identité)"
)]
pub struct TraitsLocked(pub &'static str);

/// The five INS traits of `a` and `b` agree (the used names may differ).
pub fn same_ins_traits(a: &Traits, b: &Traits) -> bool {
    a.birth_name == b.birth_name
        && a.birth_given_names == b.birth_given_names
        && a.birth_date == b.birth_date
        && a.sex == b.sex
        && a.birthplace_code == b.birthplace_code
}

/// The INS rule for an edit: the traits of an identity held at RECUP or QUAL are
/// those INSi returned; changing them by hand is refused unless the same edit
/// moves the identity to a status without the INSi criterion (VALI, PROV). Used
/// names are not INS traits and stay editable. (The GAM's HL7 feed is the source
/// of truth and is mirrored as sent: this rule is for the desk and the API.)
pub fn check_trait_edit(
    current_status: IdentityStatus,
    current: &Traits,
    next_status: IdentityStatus,
    next: &Traits,
) -> Result<(), TraitsLocked> {
    if current_status.insi_checked()
        && next_status.insi_checked()
        && !same_ins_traits(current, next)
    {
        Err(TraitsLocked(current_status.label_fr()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentityStatus::*;

    #[test]
    fn names_are_normalized_for_search() {
        assert_eq!(
            normalize_name("Hélène  d'Œuvray-Müller"),
            "HELENE D OEUVRAY MULLER"
        );
        assert_eq!(normalize_name("ÇA"), "CA");
    }

    #[test]
    fn transition_table() {
        let all = [Provisional, Recovered, Validated, Qualified];
        let allowed = [
            (Provisional, Recovered),
            (Provisional, Validated),
            (Recovered, Qualified),
            (Validated, Qualified),
            (Recovered, Provisional),
            (Validated, Provisional),
            (Qualified, Recovered),
            (Qualified, Validated),
        ];
        for from in all {
            for to in all {
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} -> {to:?}");
            }
        }
        assert_eq!(
            Provisional.transition(Qualified),
            Err(StatusTransitionError {
                from: "PROV",
                to: "QUAL"
            })
        );
    }

    #[test]
    fn only_qualified_identities_exchange_the_ins() {
        let ins = Ins::parse(crate::InsKind::Nir, "279035121518989").unwrap();
        assert!(exchangeable_ins(Some(&ins), Qualified).is_some());
        for s in [Provisional, Recovered, Validated] {
            assert!(exchangeable_ins(Some(&ins), s).is_none());
        }
    }

    #[test]
    fn insi_statuses_need_an_ins() {
        let ins = Ins::parse(crate::InsKind::Nir, "279035121518989").unwrap();
        assert_eq!(
            check_status_with_ins(Recovered, None),
            Err(StatusNeedsIns("RECUP"))
        );
        assert_eq!(
            check_status_with_ins(Qualified, None),
            Err(StatusNeedsIns("QUAL"))
        );
        assert_eq!(check_status_with_ins(Validated, None), Ok(()));
        assert_eq!(check_status_with_ins(Provisional, None), Ok(()));
        assert_eq!(check_status_with_ins(Qualified, Some(&ins)), Ok(()));
    }

    #[test]
    fn codes_round_trip() {
        for s in [Provisional, Recovered, Validated, Qualified] {
            assert_eq!(IdentityStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(IdentityStatus::from_code("FICT"), None);
        for s in [Sex::Male, Sex::Female, Sex::Unknown] {
            assert_eq!(Sex::from_code(s.code()), Some(s));
        }
        assert_eq!(Sex::from_code("X"), None);
        assert!(Recovered.insi_checked() && !Validated.insi_checked());
        assert_eq!(Qualified.label_fr(), "qualifiée");
    }

    fn traits() -> Traits {
        Traits {
            birth_name: "Martin".into(),
            birth_given_names: vec!["Marie".into(), "Louise".into()],
            birth_date: Date::new(1960, 3, 5).unwrap(),
            sex: Sex::Female,
            birthplace_code: Some("2A004".into()),
            used_name: Some("Dupont-L'Hôte".into()),
            used_given_name: None,
        }
    }

    #[test]
    fn traits_rules() {
        let today = Date::new(2026, 1, 1).unwrap();
        assert_eq!(traits().check(today), Ok(()));
        assert_eq!(traits().display_name(), "DUPONT-L'HÔTE Marie");
        let mut t = traits();
        t.birth_name = " ".into();
        assert_eq!(t.check(today), Err(TraitsError::MissingBirthName));
        let mut t = traits();
        t.birth_given_names.clear();
        assert_eq!(t.check(today), Err(TraitsError::MissingGivenName));
        let mut t = traits();
        t.birth_given_names.push("R2D2".into());
        assert_eq!(t.check(today), Err(TraitsError::BadName("R2D2".into())));
        let mut t = traits();
        t.birthplace_code = Some("750".into());
        assert_eq!(t.check(today), Err(TraitsError::BadBirthplace));
        let mut t = traits();
        t.birth_date = Date::new(2027, 1, 1).unwrap();
        assert_eq!(t.check(today), Err(TraitsError::FutureBirthDate));
    }

    #[test]
    fn the_names_together_have_a_size_limit() {
        let today = Date::new(2026, 1, 1).unwrap();
        // Six given names of 100 letters each: each name passes, not all.
        let mut t = traits();
        t.used_name = None;
        t.birth_given_names = vec!["A".repeat(100); 6];
        let own = t.birth_name.len();
        assert_eq!(t.check(today), Err(TraitsError::NamesTooLong(600 + own)));
        // At the limit exactly: accepted.
        t.birth_given_names = vec!["A".repeat(100); 5];
        t.birth_given_names.push("B".repeat(100 - own));
        assert_eq!(t.check(today), Ok(()));
        // Counted in bytes: 100 four-byte letters are 400 bytes, and the
        // used names count too.
        let wide = "\u{20000}".repeat(100);
        let mut t = traits();
        t.birth_name = wide.clone();
        t.used_name = Some(wide);
        let given: usize = t.birth_given_names.iter().map(String::len).sum();
        assert_eq!(t.check(today), Err(TraitsError::NamesTooLong(800 + given)));
        t.used_name = None;
        assert_eq!(t.check(today), Ok(()));
        assert!(
            TraitsError::NamesTooLong(800)
                .to_string()
                .contains("800 octets en UTF-8, 600 au plus")
        );
    }

    #[test]
    fn insi_traits_change_only_with_a_downgrade() {
        let t = traits();
        let mut used = traits();
        used.used_name = Some("Durand".into());
        let mut other = traits();
        other.birth_date = Date::new(1960, 3, 6).unwrap();
        for s in [Recovered, Qualified] {
            assert_eq!(
                check_trait_edit(s, &t, s, &used),
                Ok(()),
                "used names stay editable"
            );
            assert_eq!(
                check_trait_edit(s, &t, s, &other),
                Err(TraitsLocked(s.label_fr()))
            );
        }
        assert_eq!(
            check_trait_edit(Qualified, &t, Validated, &other),
            Ok(()),
            "with a downgrade"
        );
        assert_eq!(
            check_trait_edit(Provisional, &t, Provisional, &other),
            Ok(())
        );
        assert_eq!(check_trait_edit(Validated, &t, Validated, &other), Ok(()));
        for change in [
            |t: &mut Traits| t.birth_name = "Autre".into(),
            |t: &mut Traits| t.birth_given_names = vec!["Anne".into()],
            |t: &mut Traits| t.sex = Sex::Male,
            |t: &mut Traits| t.birthplace_code = None,
        ] {
            let mut x = traits();
            change(&mut x);
            assert!(!same_ins_traits(&t, &x));
        }
    }
}
