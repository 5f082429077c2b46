//! What a patient's record holds beyond the INS traits: where the patient lives,
//! how to reach them and their close ones (the *personne de confiance*, the
//! person to call), their GP (*médecin traitant*), their language and their
//! death. Nurses call patients back and HAD teams visit them: these are kept,
//! checked and exchanged both ways (HL7 PID/NK1/ROL, FHIR Patient).
//!
//! Not here: the five traits and the INS (`identity`), which follow the RNIV
//! rules; the e-mail a patient confirmed for their notices (the portal's own).

use jiff::civil::Date;

use crate::org::Rpps;

/// What an address is for (HL7 XAD-7, FHIR `Address.use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressUse {
    /// Domicile (XAD-7 `H`, FHIR `home`).
    Home,
    /// Adresse temporaire, e.g. a stay at a relative's (XAD-7 `C`, FHIR `temp`).
    Temporary,
    /// Adresse professionnelle (XAD-7 `O`, FHIR `work`).
    Work,
}

impl AddressUse {
    /// Every use, in the order the page shows them.
    pub const ALL: [AddressUse; 3] = [AddressUse::Home, AddressUse::Temporary, AddressUse::Work];

    /// Storage code (the FHIR one).
    pub fn code(self) -> &'static str {
        match self {
            AddressUse::Home => "home",
            AddressUse::Temporary => "temp",
            AddressUse::Work => "work",
        }
    }
    /// Reads a storage (FHIR) code.
    pub fn from_code(code: &str) -> Option<Self> {
        AddressUse::ALL.into_iter().find(|u| u.code() == code)
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            AddressUse::Home => "Domicile",
            AddressUse::Temporary => "Adresse temporaire",
            AddressUse::Work => "Adresse professionnelle",
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// What it is for.
    pub use_: AddressUse,
    /// Street lines (number and street, building, lieu-dit), three at most.
    pub lines: Vec<String>,
    /// Code postal.
    pub postal_code: Option<String>,
    /// Commune.
    pub city: Option<String>,
    /// Country, ISO 3166-1 alpha-3 (`FRA`); `None` read as France.
    pub country: Option<String>,
}

/// The place of birth as shown (its INSEE code is a trait: `Traits::birthplace_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthPlace {
    /// Commune of birth.
    pub city: Option<String>,
    /// Country of birth, ISO 3166-1 alpha-3.
    pub country: Option<String>,
}

/// How a patient or a contact is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelecomKind {
    /// Téléphone fixe du domicile (HL7 `PRN^PH`, FHIR phone/home).
    HomePhone,
    /// Téléphone portable (HL7 `PRN^CP`, FHIR phone/mobile).
    Mobile,
    /// Téléphone professionnel (HL7 `WPN^PH`, FHIR phone/work).
    WorkPhone,
    /// Adresse e-mail (HL7 `NET^Internet`, FHIR email).
    Email,
}

impl TelecomKind {
    /// Every kind, in the order the page shows them.
    pub const ALL: [TelecomKind; 4] = [
        TelecomKind::Mobile,
        TelecomKind::HomePhone,
        TelecomKind::WorkPhone,
        TelecomKind::Email,
    ];
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            TelecomKind::HomePhone => "home-phone",
            TelecomKind::Mobile => "mobile",
            TelecomKind::WorkPhone => "work-phone",
            TelecomKind::Email => "email",
        }
    }
    /// Reads a storage code.
    pub fn from_code(code: &str) -> Option<Self> {
        TelecomKind::ALL.into_iter().find(|k| k.code() == code)
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            TelecomKind::HomePhone => "Téléphone fixe",
            TelecomKind::Mobile => "Téléphone portable",
            TelecomKind::WorkPhone => "Téléphone professionnel",
            TelecomKind::Email => "E-mail",
        }
    }
}

/// A phone number or an e-mail address, checked and normalised by [`Telecom::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telecom {
    /// Its kind.
    pub kind: TelecomKind,
    /// The number (digits, with a leading `+` when international) or the address.
    pub value: String,
}

impl Telecom {
    /// Checks and normalises `value` for `kind`: a phone number keeps its digits
    /// (a French number has ten, starting with 0; an international one starts with
    /// `+` and has 8 to 15 digits), an e-mail address is trimmed.
    pub fn parse(kind: TelecomKind, value: &str) -> Result<Telecom, DemographicsError> {
        let value = match kind {
            TelecomKind::Email => check_email(value)?,
            _ => {
                normalize_phone(value).ok_or_else(|| DemographicsError::BadPhone(shorten(value)))?
            }
        };
        Ok(Telecom { kind, value })
    }

    /// The value as shown: a French number in pairs (`06 12 34 56 78`).
    pub fn display(&self) -> String {
        if self.kind == TelecomKind::Email || self.value.len() != 10 {
            return self.value.clone();
        }
        let digits: Vec<char> = self.value.chars().collect();
        digits
            .chunks(2)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A phone number's digits: `06 12-34.56 78` → `0612345678`, `+33 6 12…` →
/// `+33612…`; `None` when it is not one.
pub fn normalize_phone(text: &str) -> Option<String> {
    let t = text.trim();
    let (plus, rest) = match t.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    let ok = if plus {
        (8..=15).contains(&digits.len())
    } else {
        digits.len() == 10 && digits.starts_with('0')
    };
    ok.then(|| if plus { format!("+{digits}") } else { digits })
}

fn check_email(text: &str) -> Result<String, DemographicsError> {
    let t = text.trim();
    let bad = || DemographicsError::BadEmail(shorten(t));
    let (local, domain) = t.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && t.len() <= 254
        && !t.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(t.to_owned()) } else { Err(bad()) }
}

/// Why a close one is on the record (HL7 NK1-7, table 0131 with PAM France's `K`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactRole {
    /// Personne de confiance (Code de la santé publique L1111-6): one at most.
    Trusted,
    /// Personne à prévenir (0131 `C`, emergency contact).
    Emergency,
    /// Proche, next of kin (0131 `N`).
    NextOfKin,
}

impl ContactRole {
    /// Every role.
    pub const ALL: [ContactRole; 3] = [
        ContactRole::Trusted,
        ContactRole::Emergency,
        ContactRole::NextOfKin,
    ];
    /// HL7 v2 table 0131 code (`K` is PAM France's *personne de confiance*); also the storage code.
    pub fn code(self) -> &'static str {
        match self {
            ContactRole::Trusted => "K",
            ContactRole::Emergency => "C",
            ContactRole::NextOfKin => "N",
        }
    }
    /// Reads a table 0131 code.
    pub fn from_code(code: &str) -> Option<Self> {
        ContactRole::ALL.into_iter().find(|r| r.code() == code)
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            ContactRole::Trusted => "Personne de confiance",
            ContactRole::Emergency => "Personne à prévenir",
            ContactRole::NextOfKin => "Proche",
        }
    }
}

/// How a close one is related to the patient (HL7 table 0063, a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    /// Conjoint(e).
    Spouse,
    /// Enfant.
    Child,
    /// Parent.
    Parent,
    /// Frère ou sœur.
    Sibling,
    /// Autre membre de la famille.
    Family,
    /// Ami(e).
    Friend,
    /// Tuteur ou curateur.
    Guardian,
    /// Autre.
    Other,
}

impl Relationship {
    /// Every relationship, in the order the page shows them.
    pub const ALL: [Relationship; 8] = [
        Relationship::Spouse,
        Relationship::Child,
        Relationship::Parent,
        Relationship::Sibling,
        Relationship::Family,
        Relationship::Friend,
        Relationship::Guardian,
        Relationship::Other,
    ];
    /// HL7 v2 table 0063 code, also the storage code.
    pub fn code(self) -> &'static str {
        match self {
            Relationship::Spouse => "SPO",
            Relationship::Child => "CHD",
            Relationship::Parent => "PAR",
            Relationship::Sibling => "SIB",
            Relationship::Family => "EXF",
            Relationship::Friend => "FND",
            Relationship::Guardian => "GRD",
            Relationship::Other => "OTH",
        }
    }
    /// Reads a table 0063 code.
    pub fn from_code(code: &str) -> Option<Self> {
        Relationship::ALL.into_iter().find(|r| r.code() == code)
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            Relationship::Spouse => "Conjoint(e)",
            Relationship::Child => "Enfant",
            Relationship::Parent => "Parent",
            Relationship::Sibling => "Frère ou sœur",
            Relationship::Family => "Autre membre de la famille",
            Relationship::Friend => "Ami(e)",
            Relationship::Guardian => "Tuteur ou curateur",
            Relationship::Other => "Autre",
        }
    }
}

/// A close one on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Why they are on the record.
    pub role: ContactRole,
    /// Relationship to the patient, when known.
    pub relationship: Option<Relationship>,
    /// Family name.
    pub family: String,
    /// Given name.
    pub given: Option<String>,
    /// Phone number (normalised, see [`normalize_phone`]).
    pub phone: Option<String>,
}

/// The patient's GP (*médecin traitant*), by RPPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gp {
    /// RPPS number.
    pub rpps: Rpps,
    /// Family name, as sent.
    pub family: Option<String>,
    /// Given name, as sent.
    pub given: Option<String>,
}

impl Gp {
    /// "Dr Isabelle AGNES (RPPS 10000023084)" or the RPPS alone.
    pub fn display(&self) -> String {
        let name = [self.given.as_deref(), self.family.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            format!("RPPS {}", self.rpps.as_str())
        } else {
            format!("Dr {name} (RPPS {})", self.rpps.as_str())
        }
    }
}

/// Everything the record holds beyond the traits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Demographics {
    /// Postal addresses.
    pub addresses: Vec<Address>,
    /// Where the patient was born, as shown.
    pub birth_place: Option<BirthPlace>,
    /// Phones and e-mail addresses.
    pub telecoms: Vec<Telecom>,
    /// Close ones.
    pub contacts: Vec<Contact>,
    /// Médecin traitant.
    pub gp: Option<Gp>,
    /// Preferred language, an ISO 639 code (`fr`, `ar`, `pt-BR`).
    pub language: Option<String>,
    /// Date of death.
    pub deceased: Option<Date>,
}

/// What a message or a form says of the demographics: each part is `None` when not
/// said (kept as it is), `Some` when replaced (an empty list or `Some(None)` clears it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DemographicsPatch {
    /// Replaces the addresses.
    pub addresses: Option<Vec<Address>>,
    /// Replaces the birth place.
    pub birth_place: Option<Option<BirthPlace>>,
    /// Replaces the phones and e-mail addresses.
    pub telecoms: Option<Vec<Telecom>>,
    /// Replaces the close ones.
    pub contacts: Option<Vec<Contact>>,
    /// Replaces the GP.
    pub gp: Option<Option<Gp>>,
    /// Replaces the language.
    pub language: Option<Option<String>>,
    /// Replaces the date of death.
    pub deceased: Option<Option<Date>>,
}

impl DemographicsPatch {
    /// A patch that says everything `d` holds (a full replacement).
    pub fn all(d: Demographics) -> DemographicsPatch {
        DemographicsPatch {
            addresses: Some(d.addresses),
            birth_place: Some(d.birth_place),
            telecoms: Some(d.telecoms),
            contacts: Some(d.contacts),
            gp: Some(d.gp),
            language: Some(d.language),
            deceased: Some(d.deceased),
        }
    }

    /// Whether it says nothing.
    pub fn is_empty(&self) -> bool {
        *self == DemographicsPatch::default()
    }
}

/// A part of the demographics, as the audit trail names what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Addresses.
    Addresses,
    /// Birth place.
    BirthPlace,
    /// Phones and e-mail.
    Telecoms,
    /// Close ones.
    Contacts,
    /// GP.
    Gp,
    /// Language.
    Language,
    /// Date of death.
    Deceased,
}

impl Part {
    /// The audit code.
    pub fn code(self) -> &'static str {
        match self {
            Part::Addresses => "address",
            Part::BirthPlace => "birth-place",
            Part::Telecoms => "telecom",
            Part::Contacts => "contact",
            Part::Gp => "general-practitioner",
            Part::Language => "language",
            Part::Deceased => "deceased",
        }
    }
}

impl Demographics {
    /// `self` with `patch` applied.
    pub fn patched(&self, patch: DemographicsPatch) -> Demographics {
        let d = self.clone();
        Demographics {
            addresses: patch.addresses.unwrap_or(d.addresses),
            birth_place: patch.birth_place.unwrap_or(d.birth_place),
            telecoms: patch.telecoms.unwrap_or(d.telecoms),
            contacts: patch.contacts.unwrap_or(d.contacts),
            gp: patch.gp.unwrap_or(d.gp),
            language: patch.language.unwrap_or(d.language),
            deceased: patch.deceased.unwrap_or(d.deceased),
        }
    }

    /// The parts that differ between `self` and `next` (what the audit records).
    pub fn changed(&self, next: &Demographics) -> Vec<Part> {
        let mut out = Vec::new();
        let mut diff = |changed: bool, p: Part| {
            if changed {
                out.push(p);
            }
        };
        diff(self.addresses != next.addresses, Part::Addresses);
        diff(self.birth_place != next.birth_place, Part::BirthPlace);
        diff(self.telecoms != next.telecoms, Part::Telecoms);
        diff(self.contacts != next.contacts, Part::Contacts);
        diff(self.gp != next.gp, Part::Gp);
        diff(self.language != next.language, Part::Language);
        diff(self.deceased != next.deceased, Part::Deceased);
        out
    }

    /// The first telecom of `kind`.
    pub fn telecom(&self, kind: TelecomKind) -> Option<&Telecom> {
        self.telecoms.iter().find(|t| t.kind == kind)
    }

    /// The address of `use_`, if any.
    pub fn address(&self, use_: AddressUse) -> Option<&Address> {
        self.addresses.iter().find(|a| a.use_ == use_)
    }

    /// The *personne de confiance*, if designated.
    pub fn trusted_person(&self) -> Option<&Contact> {
        self.contacts
            .iter()
            .find(|c| c.role == ContactRole::Trusted)
    }

    /// Checks the rules: at most 10 addresses, telecoms and contacts; an address
    /// says something, with at most three lines of 100 characters, a French postal
    /// code of five digits, a country of three capital letters; phones and e-mail
    /// addresses well formed (see [`Telecom::parse`]); a close one has a family name
    /// and at most one is the *personne de confiance*; a language is an ISO 639
    /// code; a death neither before the birth (`birth_date`) nor after `today`.
    pub fn check(&self, birth_date: Date, today: Date) -> Result<(), DemographicsError> {
        if self.addresses.len() > MAX_ITEMS
            || self.telecoms.len() > MAX_ITEMS
            || self.contacts.len() > MAX_ITEMS
        {
            return Err(DemographicsError::TooMany);
        }
        for a in &self.addresses {
            check_address(a)?;
        }
        if let Some(b) = &self.birth_place {
            check_text(b.city.as_deref(), "commune de naissance")?;
            check_country(b.country.as_deref())?;
        }
        for t in &self.telecoms {
            let again = Telecom::parse(t.kind, &t.value)?;
            if again.value != t.value {
                return Err(DemographicsError::BadPhone(shorten(&t.value)));
            }
        }
        let trusted = self
            .contacts
            .iter()
            .filter(|c| c.role == ContactRole::Trusted)
            .count();
        if trusted > 1 {
            return Err(DemographicsError::SeveralTrustedPersons);
        }
        for c in &self.contacts {
            if c.family.trim().is_empty() {
                return Err(DemographicsError::ContactWithoutName);
            }
            check_text(Some(&c.family), "nom du proche")?;
            check_text(c.given.as_deref(), "prénom du proche")?;
            if let Some(p) = &c.phone
                && normalize_phone(p).as_deref() != Some(p.as_str())
            {
                return Err(DemographicsError::BadPhone(shorten(p)));
            }
        }
        if let Some(g) = &self.gp {
            check_text(g.family.as_deref(), "nom du médecin traitant")?;
            check_text(g.given.as_deref(), "prénom du médecin traitant")?;
        }
        if let Some(l) = &self.language
            && !is_language(l)
        {
            return Err(DemographicsError::BadLanguage(shorten(l)));
        }
        if let Some(d) = self.deceased {
            if d > today {
                return Err(DemographicsError::DeathInFuture);
            }
            if d < birth_date {
                return Err(DemographicsError::DeathBeforeBirth);
            }
        }
        Ok(())
    }
}

const MAX_ITEMS: usize = 10;
const MAX_TEXT: usize = 100;

fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}

fn check_text(t: Option<&str>, what: &'static str) -> Result<(), DemographicsError> {
    match t {
        Some(t) if t.chars().count() > MAX_TEXT || t.chars().any(char::is_control) => {
            Err(DemographicsError::BadText(what))
        }
        _ => Ok(()),
    }
}

fn check_country(c: Option<&str>) -> Result<(), DemographicsError> {
    match c {
        Some(c) if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(DemographicsError::BadCountry(shorten(c)))
        }
        _ => Ok(()),
    }
}

fn check_address(a: &Address) -> Result<(), DemographicsError> {
    let empty = a.lines.iter().all(|l| l.trim().is_empty())
        && a.city.as_deref().is_none_or(|c| c.trim().is_empty())
        && a.postal_code.is_none();
    if empty {
        return Err(DemographicsError::EmptyAddress);
    }
    if a.lines.len() > 3 {
        return Err(DemographicsError::BadText("adresse (trois lignes au plus)"));
    }
    for l in &a.lines {
        check_text(Some(l), "ligne d'adresse")?;
    }
    check_text(a.city.as_deref(), "commune")?;
    check_country(a.country.as_deref())?;
    if let Some(pc) = &a.postal_code {
        let french = a.country.as_deref().is_none_or(|c| c == "FRA");
        let ok = if french {
            pc.len() == 5 && pc.bytes().all(|b| b.is_ascii_digit())
        } else {
            !pc.trim().is_empty() && pc.len() <= 12
        };
        if !ok {
            return Err(DemographicsError::BadPostalCode(shorten(pc)));
        }
    }
    Ok(())
}

/// A language as FHIR wants it (BCP 47: `fr`, `pt-BR`) from what HL7 senders
/// write (`FR`, `fre`, `fra`, `pt_BR`): the ISO 639-2 codes of the languages
/// most spoken by patients in France become their two-letter code; `None` when
/// it is not a language code.
pub fn normalize_language(text: &str) -> Option<String> {
    let t = text.trim().replace('_', "-");
    let (lang, region) = match t.split_once('-') {
        Some((l, r)) => (l.to_ascii_lowercase(), Some(r.to_ascii_uppercase())),
        None => (t.to_ascii_lowercase(), None),
    };
    let lang = match lang.as_str() {
        "fre" | "fra" => "fr",
        "eng" => "en",
        "ger" | "deu" => "de",
        "spa" => "es",
        "ita" => "it",
        "por" => "pt",
        "ara" => "ar",
        "tur" => "tr",
        "chi" | "zho" => "zh",
        "rus" => "ru",
        "pol" => "pl",
        "rum" | "ron" => "ro",
        "dut" | "nld" => "nl",
        "vie" => "vi",
        other => other,
    };
    let code = match region {
        Some(r) => format!("{lang}-{r}"),
        None => lang.to_owned(),
    };
    is_language(&code).then_some(code)
}

/// `fr`, `fra`, `pt-BR`: an ISO 639 code, with a region.
fn is_language(l: &str) -> bool {
    let mut parts = l.split('-');
    let lang = parts.next().unwrap_or("");
    let region = parts.next();
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
        && parts.next().is_none()
}

/// A demographic value that cannot be accepted (French, safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemographicsError {
    /// More than ten addresses, telecoms or contacts.
    #[error("dix adresses, téléphones ou proches au plus")]
    TooMany,
    /// An address with neither a line, a commune nor a postal code.
    #[error("une adresse doit indiquer au moins une rue, une commune ou un code postal")]
    EmptyAddress,
    /// A postal code that is not five digits (France).
    #[error("code postal {0:?} invalide (cinq chiffres en France)")]
    BadPostalCode(String),
    /// A country that is not an ISO 3166-1 alpha-3 code.
    #[error("pays {0:?}: code ISO à trois lettres attendu (FRA, BEL…)")]
    BadCountry(String),
    /// A text too long or with control characters.
    #[error("{0}: 100 caractères au plus, sans caractère de contrôle")]
    BadText(&'static str),
    /// Not a phone number.
    #[error("numéro de téléphone {0:?} invalide (dix chiffres commençant par 0, ou +indicatif)")]
    BadPhone(String),
    /// Not an e-mail address.
    #[error("adresse e-mail {0:?} invalide")]
    BadEmail(String),
    /// A contact without a family name.
    #[error("le nom d'un proche est obligatoire")]
    ContactWithoutName,
    /// Two *personnes de confiance*.
    #[error("une seule personne de confiance peut être désignée")]
    SeveralTrustedPersons,
    /// Not an ISO 639 code.
    #[error("langue {0:?}: code ISO 639 attendu (fr, en, ar…)")]
    BadLanguage(String),
    /// A death date after today.
    #[error("la date de décès est dans le futur")]
    DeathInFuture,
    /// A death date before the birth.
    #[error("la date de décès précède la date de naissance")]
    DeathBeforeBirth,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    fn full() -> Demographics {
        Demographics {
            addresses: vec![Address {
                use_: AddressUse::Home,
                lines: vec!["28 avenue de Breteuil".into()],
                postal_code: Some("75007".into()),
                city: Some("Paris".into()),
                country: Some("FRA".into()),
            }],
            birth_place: Some(BirthPlace {
                city: Some("Clermont-Ferrand".into()),
                country: Some("FRA".into()),
            }),
            telecoms: vec![
                Telecom::parse(TelecomKind::Mobile, "06 12 34 56 78").unwrap(),
                Telecom::parse(TelecomKind::Email, " marie@example.fr ").unwrap(),
            ],
            contacts: vec![Contact {
                role: ContactRole::Trusted,
                relationship: Some(Relationship::Child),
                family: "Martin".into(),
                given: Some("Paul".into()),
                phone: Some("0712345678".into()),
            }],
            gp: Some(Gp {
                rpps: Rpps::parse("10000023084").unwrap(),
                family: Some("AGNES".into()),
                given: Some("Isabelle".into()),
            }),
            language: Some("fr".into()),
            deceased: None,
        }
    }

    #[test]
    fn phones_are_normalised_or_refused() {
        let cases = [
            ("06 12 34 56 78", Some("0612345678")),
            ("06.12.34.56.78", Some("0612345678")),
            ("+33 6 12 34 56 78", Some("+33612345678")),
            ("+1 (212) 555-0100", Some("+12125550100")),
            ("612345678", None),
            ("16 12 34 56 78", None),
            ("06 12 34 56 7x", None),
            ("+33 12", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_phone(input).as_deref(), want, "{input:?}");
        }
        let t = Telecom::parse(TelecomKind::Mobile, "0612345678").unwrap();
        assert_eq!(t.display(), "06 12 34 56 78");
        assert_eq!(
            Telecom::parse(TelecomKind::HomePhone, "12"),
            Err(DemographicsError::BadPhone("12".into()))
        );
    }

    #[test]
    fn languages_are_read_as_bcp47() {
        for (input, want) in [
            ("fr", Some("fr")),
            ("FR", Some("fr")),
            ("fre", Some("fr")),
            ("fra", Some("fr")),
            ("ara", Some("ar")),
            ("pt_br", Some("pt-BR")),
            ("wol", Some("wol")),
            ("", None),
            ("français", None),
            ("fr-FRA", None),
        ] {
            assert_eq!(normalize_language(input).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn emails_are_checked() {
        for ok in ["a@b.fr", "prenom.nom+tag@chu-x.fr"] {
            assert!(Telecom::parse(TelecomKind::Email, ok).is_ok(), "{ok}");
        }
        for bad in [
            "a@b", "@b.fr", "a b@c.fr", "a@.fr", "a@b.fr.", "a@b@c.fr", "ab.fr",
        ] {
            assert!(
                matches!(
                    Telecom::parse(TelecomKind::Email, bad),
                    Err(DemographicsError::BadEmail(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_full_record_passes_and_every_rule_refuses() {
        let (birth, today) = (d(1960, 3, 5), d(2026, 12, 4));
        assert_eq!(full().check(birth, today), Ok(()));

        let mut x = full();
        x.contacts.push(x.contacts[0].clone());
        assert_eq!(
            x.check(birth, today),
            Err(DemographicsError::SeveralTrustedPersons)
        );
        let mut x = full();
        x.contacts[0].family = " ".into();
        assert_eq!(
            x.check(birth, today),
            Err(DemographicsError::ContactWithoutName)
        );
        let mut x = full();
        x.contacts[0].phone = Some("06 12".into());
        assert!(matches!(
            x.check(birth, today),
            Err(DemographicsError::BadPhone(_))
        ));
        let mut x = full();
        x.addresses[0].postal_code = Some("7500".into());
        assert_eq!(
            x.check(birth, today),
            Err(DemographicsError::BadPostalCode("7500".into()))
        );
        let mut x = full();
        x.addresses[0].country = Some("BEL".into());
        x.addresses[0].postal_code = Some("1000".into());
        assert_eq!(x.check(birth, today), Ok(()), "a Belgian postal code");
        let mut x = full();
        x.addresses[0].country = Some("fr".into());
        assert!(matches!(
            x.check(birth, today),
            Err(DemographicsError::BadCountry(_))
        ));
        let mut x = full();
        x.addresses[0] = Address {
            use_: AddressUse::Home,
            lines: vec![" ".into()],
            postal_code: None,
            city: None,
            country: None,
        };
        assert_eq!(x.check(birth, today), Err(DemographicsError::EmptyAddress));
        let mut x = full();
        x.addresses[0].lines = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        assert!(matches!(
            x.check(birth, today),
            Err(DemographicsError::BadText(_))
        ));
        let mut x = full();
        x.addresses[0].city = Some("x".repeat(101));
        assert_eq!(
            x.check(birth, today),
            Err(DemographicsError::BadText("commune"))
        );
        let mut x = full();
        x.telecoms[0].value = "06 12 34 56 78".into();
        assert!(
            matches!(x.check(birth, today), Err(DemographicsError::BadPhone(_))),
            "a telecom not built by parse is checked again"
        );
        let mut x = full();
        x.telecoms = vec![x.telecoms[0].clone(); 11];
        assert_eq!(x.check(birth, today), Err(DemographicsError::TooMany));
        for (lang, ok) in [
            ("fr", true),
            ("pt-BR", true),
            ("fra", true),
            ("FR", false),
            ("fr-", false),
            ("français", false),
        ] {
            let mut x = full();
            x.language = Some(lang.into());
            assert_eq!(x.check(birth, today).is_ok(), ok, "{lang}");
        }
        let mut x = full();
        x.deceased = Some(d(2026, 12, 5));
        assert_eq!(x.check(birth, today), Err(DemographicsError::DeathInFuture));
        x.deceased = Some(d(1960, 3, 4));
        assert_eq!(
            x.check(birth, today),
            Err(DemographicsError::DeathBeforeBirth)
        );
        x.deceased = Some(d(2026, 12, 4));
        assert_eq!(x.check(birth, today), Ok(()));
    }

    #[test]
    fn a_patch_replaces_what_it_says_and_the_audit_names_it() {
        let before = full();
        let patch = DemographicsPatch {
            telecoms: Some(vec![]),
            gp: Some(None),
            ..Default::default()
        };
        assert!(!patch.is_empty());
        let after = before.patched(patch);
        assert!(after.telecoms.is_empty() && after.gp.is_none());
        assert_eq!(after.addresses, before.addresses, "not said: kept");
        assert_eq!(after.contacts, before.contacts);
        assert_eq!(before.changed(&after), vec![Part::Telecoms, Part::Gp]);
        assert_eq!(
            before
                .changed(&after)
                .iter()
                .map(|p| p.code())
                .collect::<Vec<_>>(),
            ["telecom", "general-practitioner"]
        );
        assert!(before.changed(&before).is_empty());
        assert_eq!(
            before.patched(DemographicsPatch::all(Demographics::default())),
            Demographics::default()
        );
        assert!(DemographicsPatch::default().is_empty());
    }

    #[test]
    fn codes_round_trip_and_labels_read_well() {
        for u in AddressUse::ALL {
            assert_eq!(AddressUse::from_code(u.code()), Some(u));
        }
        for k in TelecomKind::ALL {
            assert_eq!(TelecomKind::from_code(k.code()), Some(k));
        }
        for r in ContactRole::ALL {
            assert_eq!(ContactRole::from_code(r.code()), Some(r));
        }
        for r in Relationship::ALL {
            assert_eq!(Relationship::from_code(r.code()), Some(r));
        }
        assert_eq!(AddressUse::from_code("old"), None);
        assert_eq!(ContactRole::from_code("E"), None);
        assert_eq!(
            full().trusted_person().map(|c| c.family.as_str()),
            Some("Martin")
        );
        assert_eq!(
            full().gp.unwrap().display(),
            "Dr Isabelle AGNES (RPPS 10000023084)"
        );
        assert_eq!(
            full().telecom(TelecomKind::Email).unwrap().value,
            "marie@example.fr"
        );
        assert_eq!(
            full().address(AddressUse::Home).unwrap().city.as_deref(),
            Some("Paris")
        );
    }
}
