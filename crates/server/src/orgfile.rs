//! The organisation as a file: `parcours org apply FILE.toml` creates or
//! updates establishments, their units and beds, HL7 senders, integration
//! endpoints, monitoring programmes and enrolment triggers; `parcours org
//! export` writes the current state in the same format.
//!
//! Three steps, each testable alone: [`parse`] reads and checks the whole file
//! (every error with its line, nothing half-read), [`plan`] compares it with
//! the store and lists the changes in French, and the store applies them in one
//! transaction (`Store::apply_org_changes`). Applying the same file twice
//! changes nothing the second time. Units, senders and establishments missing
//! from the file are never deleted (a unit has history); the plan says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use domain::beds::{BedCategory, OccupancySource};
use domain::org::{Activity, Finess};
use domain::{EstablishmentId, TerritoryId, UnitId};
use serde::Deserialize;
use store::Store;
use store::hl7::NewHl7Sender;
use store::orgs::{Establishment, OrgChange, Unit};
use toml::Spanned;

/// An integration setting an establishment may have: its name and what its
/// value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// `host:port` of an MLLP peer.
    HostPort,
    /// An `http(s)://` address.
    Url,
    /// An `imap://` or `imaps://` address.
    ImapUrl,
    /// An e-mail address.
    Email,
    /// A path to a file holding a secret (never the secret itself).
    SecretFile,
    /// Free text (an account id).
    Text,
    /// An amount in euro cents.
    Cents,
    /// The establishment's connected account at the payment provider
    /// (`acct_…`): checkouts are opened on its behalf.
    PaymentAccount,
}

/// Every integration setting, with its kind and French label.
pub const SETTINGS: &[(&str, SettingKind, &str)] = &[
    (
        "oru_destination",
        SettingKind::HostPort,
        "Résultats ORU^R01 vers (hôte:port MLLP)",
    ),
    (
        "siu_destination",
        SettingKind::HostPort,
        "Agenda SIU vers (hôte:port MLLP)",
    ),
    ("mhd_recipient", SettingKind::Url, "Destinataire MHD (DMP)"),
    (
        "mhd_token_url",
        SettingKind::Url,
        "Jeton OAuth2 du destinataire MHD",
    ),
    ("mhd_client_id", SettingKind::Text, "Identifiant client MHD"),
    (
        "mhd_client_secret_file",
        SettingKind::SecretFile,
        "Fichier du secret client MHD",
    ),
    (
        "smtp_from",
        SettingKind::Email,
        "Adresse d'expédition des courriels",
    ),
    ("imap_url", SettingKind::ImapUrl, "Boîte MSSanté (IMAP)"),
    (
        "imap_password_file",
        SettingKind::SecretFile,
        "Fichier du mot de passe IMAP",
    ),
    (
        "payment_account",
        SettingKind::PaymentAccount,
        "Compte de paiement (acct_…)",
    ),
    (
        "teleconsultation_fee_cents",
        SettingKind::Cents,
        "Tarif d'une téléconsultation (centimes)",
    ),
    (
        "support_phone",
        SettingKind::Text,
        "Téléphone de la cellule d'assistance",
    ),
    (
        "support_hours",
        SettingKind::Text,
        "Horaires de la cellule d'assistance",
    ),
];

/// The ADT events that may propose an enrolment when a unit sees them.
pub const TRIGGER_EVENTS: &[&str] = &["A01", "A03", "A04", "A06", "A07"];

/// A checked organisation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgFile {
    /// The territory (identity domain) it describes, by OID.
    pub territory_oid: String,
    /// Its establishments.
    pub establishments: Vec<EstablishmentSpec>,
}

/// One establishment of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishmentSpec {
    /// FINESS (checked).
    pub finess: String,
    /// Name.
    pub name: String,
    /// `public` or `private`.
    pub kind: String,
    /// Activity.
    pub activity: Activity,
    /// Monitoring programmes offered.
    pub programmes: Vec<String>,
    /// Integration settings, by name.
    pub settings: BTreeMap<String, String>,
    /// Units.
    pub units: Vec<UnitSpec>,
    /// HL7 senders feeding it.
    pub senders: Vec<SenderSpec>,
}

/// One unit of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// Code (unique in its establishment; HL7 feeds use it).
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind (free text: `surgery`, `icu`…).
    pub kind: String,
    /// Beds: category, count, source.
    pub beds: Option<(BedCategory, i64, OccupancySource)>,
    /// Enrolment trigger: (programme, ADT event).
    pub monitoring: Option<(String, String)>,
}

/// One HL7 sender of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSpec {
    /// MSH-3.
    pub application: String,
    /// MSH-4.
    pub facility: String,
    /// Extra IPP authority.
    pub ipp_authority: Option<String>,
    /// Allowed source addresses or blocks.
    pub allowed_addresses: Vec<String>,
    /// TLS client certificate subject.
    pub tls_subject: Option<String>,
}

/// One refusal in a file: where and why (French).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// Line (1-based).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Every refusal of a file, in line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(|e| format!("ligne {} : {}", e.line, e.reason)).collect::<Vec<_>>().join("\n"))]
pub struct FileErrors(pub Vec<FileError>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    territory: RawTerritory,
    #[serde(default, rename = "establishment")]
    establishments: Vec<RawEstablishment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerritory {
    oid: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEstablishment {
    finess: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    activity: Option<Spanned<String>>,
    #[serde(default)]
    programmes: Vec<Spanned<String>>,
    #[serde(default)]
    integration: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default, rename = "unit")]
    units: Vec<RawUnit>,
    #[serde(default, rename = "hl7_sender")]
    senders: Vec<RawSender>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    beds: Option<RawBeds>,
    #[serde(default)]
    monitoring: Option<RawMonitoring>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBeds {
    category: Spanned<String>,
    count: Spanned<i64>,
    #[serde(default)]
    source: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitoring {
    programme: Spanned<String>,
    on: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    application: Spanned<String>,
    facility: Spanned<String>,
    #[serde(default)]
    ipp_authority: Option<String>,
    #[serde(default)]
    allowed_addresses: Vec<Spanned<String>>,
    #[serde(default)]
    tls_subject: Option<String>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

struct Checker<'a> {
    text: &'a str,
    errors: Vec<FileError>,
}

impl Checker<'_> {
    fn at<T>(&mut self, s: &Spanned<T>, reason: impl Into<String>) {
        self.errors.push(FileError {
            line: line_of(self.text, s.span().start),
            reason: reason.into(),
        });
    }
}

/// Whether `a` is an IP address or a CIDR block.
pub fn is_address_or_block(a: &str) -> bool {
    let (base, bits) = match a.split_once('/') {
        Some((b, n)) => (b, Some(n)),
        None => (a, None),
    };
    let Ok(ip) = base.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|n| n.parse::<u8>().is_ok_and(|n| n <= max))
}

/// Checks one setting's value; the reason when it is refused.
pub fn check_setting(kind: SettingKind, value: &toml::Value) -> Result<String, String> {
    if kind == SettingKind::Cents {
        return match value.as_integer() {
            Some(c) if (0..=100_000).contains(&c) => Ok(c.to_string()),
            _ => Err("un montant en centimes entre 0 et 100000 est attendu".into()),
        };
    }
    let Some(v) = value.as_str().map(str::trim) else {
        return Err("une chaîne de caractères est attendue".into());
    };
    let ok = match kind {
        SettingKind::HostPort => v
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)),
        SettingKind::Url => v.starts_with("https://") || v.starts_with("http://"),
        SettingKind::ImapUrl => v.starts_with("imaps://") || v.starts_with("imap://"),
        SettingKind::Email => {
            v.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !v.contains(char::is_whitespace)
        }
        SettingKind::SecretFile => v.starts_with('/'),
        SettingKind::Text => !v.is_empty(),
        SettingKind::PaymentAccount => v
            .strip_prefix("acct_")
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric())),
        SettingKind::Cents => unreachable!("handled above"),
    };
    if ok {
        Ok(v.to_owned())
    } else {
        Err(match kind {
            SettingKind::HostPort => "hôte:port attendu (ex. 10.0.0.5:2575)",
            SettingKind::Url => "adresse http(s):// attendue",
            SettingKind::ImapUrl => "adresse imaps:// attendue",
            SettingKind::Email => "adresse électronique attendue",
            SettingKind::SecretFile => {
                "chemin absolu d'un fichier attendu (jamais le secret lui-même)"
            }
            SettingKind::PaymentAccount => "identifiant de compte acct_… attendu",
            SettingKind::Text | SettingKind::Cents => "valeur attendue",
        }
        .into())
    }
}

/// Reads and checks a whole organisation file. `programmes` are the known
/// monitoring programme ids. Every error is reported, each with its line;
/// a file with one error is refused whole.
pub fn parse(text: &str, programmes: &[&str]) -> Result<OrgFile, FileErrors> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        FileErrors(vec![FileError {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            reason: e.message().to_owned(),
        }])
    })?;
    let mut c = Checker {
        text,
        errors: Vec::new(),
    };
    let oid = raw.territory.oid.get_ref().trim().to_owned();
    if oid.is_empty()
        || !oid
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        c.at(
            &raw.territory.oid,
            "OID attendu (chiffres séparés par des points)",
        );
    }
    let mut seen_finess = BTreeSet::new();
    let mut seen_senders = BTreeSet::new();
    let mut establishments = Vec::new();
    for e in raw.establishments {
        establishments.push(check_establishment(
            &mut c,
            e,
            programmes,
            &mut seen_finess,
            &mut seen_senders,
        ));
    }
    if c.errors.is_empty() {
        Ok(OrgFile {
            territory_oid: oid,
            establishments,
        })
    } else {
        c.errors.sort_by_key(|e| e.line);
        Err(FileErrors(c.errors))
    }
}

fn check_establishment(
    c: &mut Checker<'_>,
    e: RawEstablishment,
    programmes: &[&str],
    seen_finess: &mut BTreeSet<String>,
    seen_senders: &mut BTreeSet<(String, String)>,
) -> EstablishmentSpec {
    let finess = match Finess::parse(e.finess.get_ref()) {
        Ok(f) => f.as_str().to_owned(),
        Err(err) => {
            c.at(&e.finess, format!("{err} ({:?})", e.finess.get_ref()));
            e.finess.get_ref().clone()
        }
    };
    if !seen_finess.insert(finess.clone()) {
        c.at(&e.finess, format!("FINESS {finess} décrit deux fois"));
    }
    if e.name.get_ref().trim().is_empty() {
        c.at(&e.name, "nom vide");
    }
    let kind = match &e.kind {
        None => "private".to_owned(),
        Some(k) if matches!(k.get_ref().as_str(), "public" | "private") => k.get_ref().clone(),
        Some(k) => {
            c.at(
                k,
                format!("statut {:?} inconnu (public ou private)", k.get_ref()),
            );
            k.get_ref().clone()
        }
    };
    let activity = match &e.activity {
        None => Activity::Mco,
        Some(a) => Activity::from_code(a.get_ref()).unwrap_or_else(|| {
            let all: Vec<&str> = Activity::ALL.iter().map(|a| a.code()).collect();
            c.at(
                a,
                format!("activité {:?} inconnue ({})", a.get_ref(), all.join(", ")),
            );
            Activity::Mco
        }),
    };
    let mut offered = Vec::new();
    for p in &e.programmes {
        if !programmes.contains(&p.get_ref().as_str()) {
            c.at(
                p,
                format!("programme de télésurveillance {:?} inconnu", p.get_ref()),
            );
        } else if offered.contains(p.get_ref()) {
            c.at(p, format!("programme {:?} cité deux fois", p.get_ref()));
        } else {
            offered.push(p.get_ref().clone());
        }
    }
    let mut settings = BTreeMap::new();
    for (name, value) in &e.integration {
        match SETTINGS.iter().find(|(n, _, _)| n == name.get_ref()) {
            None => {
                let all: Vec<&str> = SETTINGS.iter().map(|s| s.0).collect();
                c.at(
                    name,
                    format!("réglage {:?} inconnu ({})", name.get_ref(), all.join(", ")),
                );
            }
            Some((n, kind, _)) => match check_setting(*kind, value.get_ref()) {
                Ok(v) => {
                    settings.insert((*n).to_owned(), v);
                }
                Err(why) => c.at(value, format!("{n} : {why}")),
            },
        }
    }
    let mut codes = BTreeSet::new();
    let units: Vec<UnitSpec> = e
        .units
        .into_iter()
        .map(|u| check_unit(c, u, programmes, &mut codes))
        .collect();
    for u in &units {
        if let Some((p, _)) = &u.monitoring
            && programmes.contains(&p.as_str())
            && !offered.contains(p)
        {
            c.at(
                &e.finess,
                format!(
                    "l'unité {} propose le programme {p:?}, que l'établissement ne liste pas dans programmes",
                    u.code
                ),
            );
        }
    }
    let senders = e
        .senders
        .into_iter()
        .map(|s| check_sender(c, s, seen_senders))
        .collect();
    EstablishmentSpec {
        finess,
        name: e.name.into_inner().trim().to_owned(),
        kind,
        activity,
        programmes: offered,
        settings,
        units,
        senders,
    }
}

fn check_unit(
    c: &mut Checker<'_>,
    u: RawUnit,
    programmes: &[&str],
    codes: &mut BTreeSet<String>,
) -> UnitSpec {
    let code = u.code.get_ref().trim().to_owned();
    if code.is_empty() || code.len() > 20 || code.contains(['^', '&', '|', '~', '\\']) {
        c.at(
            &u.code,
            "code d'unité attendu (1 à 20 caractères, sans séparateur HL7)",
        );
    } else if !codes.insert(code.clone()) {
        c.at(&u.code, format!("code d'unité {code} en double"));
    }
    if u.name.get_ref().trim().is_empty() {
        c.at(&u.name, "nom d'unité vide");
    }
    let beds = u.beds.map(|b| {
        let category = BedCategory::from_code(b.category.get_ref()).unwrap_or_else(|| {
            let all: Vec<&str> = BedCategory::ALL.iter().map(|c| c.code()).collect();
            c.at(
                &b.category,
                format!(
                    "catégorie de lits {:?} inconnue ({})",
                    b.category.get_ref(),
                    all.join(", ")
                ),
            );
            BedCategory::Medecine
        });
        let count = *b.count.get_ref();
        if !(0..=5000).contains(&count) {
            c.at(&b.count, "nombre de lits entre 0 et 5000 attendu");
        }
        let source = match b.source.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("counted") => OccupancySource::Manual,
            Some("adt") => OccupancySource::Adt,
            Some(other) => {
                if let Some(s) = &b.source {
                    c.at(s, format!("source {other:?} inconnue (adt ou counted)"));
                }
                OccupancySource::Manual
            }
        };
        (category, count, source)
    });
    let monitoring = u.monitoring.map(|m| {
        if !programmes.contains(&m.programme.get_ref().as_str()) {
            c.at(
                &m.programme,
                format!(
                    "programme de télésurveillance {:?} inconnu",
                    m.programme.get_ref()
                ),
            );
        }
        if !TRIGGER_EVENTS.contains(&m.on.get_ref().as_str()) {
            c.at(
                &m.on,
                format!(
                    "événement {:?} non pris en charge ({})",
                    m.on.get_ref(),
                    TRIGGER_EVENTS.join(", ")
                ),
            );
        }
        (m.programme.into_inner(), m.on.into_inner())
    });
    UnitSpec {
        code,
        name: u.name.into_inner().trim().to_owned(),
        kind: u.kind.unwrap_or_default(),
        beds,
        monitoring,
    }
}

fn check_sender(
    c: &mut Checker<'_>,
    s: RawSender,
    seen: &mut BTreeSet<(String, String)>,
) -> SenderSpec {
    let (app, fac) = (
        s.application.get_ref().trim().to_owned(),
        s.facility.get_ref().trim().to_owned(),
    );
    if app.is_empty() {
        c.at(&s.application, "MSH-3 (application) vide");
    }
    if fac.is_empty() {
        c.at(&s.facility, "MSH-4 (établissement émetteur) vide");
    }
    if !seen.insert((app.clone(), fac.clone())) {
        c.at(
            &s.application,
            format!("émetteur {app}/{fac} décrit deux fois"),
        );
    }
    let mut allowed = Vec::new();
    for a in &s.allowed_addresses {
        if is_address_or_block(a.get_ref().trim()) {
            allowed.push(a.get_ref().trim().to_owned());
        } else {
            c.at(
                a,
                format!("{:?} : adresse IP ou bloc CIDR attendu", a.get_ref()),
            );
        }
    }
    SenderSpec {
        application: app,
        facility: fac,
        ipp_authority: s.ipp_authority.filter(|a| !a.trim().is_empty()),
        allowed_addresses: allowed,
        tls_subject: s.tls_subject.filter(|a| !a.trim().is_empty()),
    }
}

/// What applying a file would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// The changes, in the order to apply them.
    pub changes: Vec<OrgChange>,
    /// One French line per change (`+` created, `~` changed, `-` removed) and
    /// per thing left alone (`!`).
    pub lines: Vec<String>,
}

/// Why a file cannot be applied to this database.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The territory is not there.
    #[error(
        "territoire d'OID {0} inconnu : créez-le d'abord avec `parcours init --territory … --ipp-oid {0} --admin …`"
    )]
    UnknownTerritory(String),
    /// A FINESS belongs to another territory.
    #[error("l'établissement FINESS {0} appartient à un autre territoire")]
    OtherTerritory(String),
    /// A sender is bound to an establishment of another territory.
    #[error("l'émetteur HL7 {0} alimente un établissement d'un autre territoire")]
    SenderElsewhere(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn source_code(s: OccupancySource) -> &'static str {
    match s {
        OccupancySource::Adt => "adt",
        OccupancySource::Manual => "counted",
    }
}

/// Compares the file with the store: the changes that make the store say
/// what the file says.
pub async fn plan(store: &Store, file: &OrgFile) -> Result<Plan, PlanError> {
    let territory = store
        .territory_by_oid(&file.territory_oid)
        .await?
        .ok_or_else(|| PlanError::UnknownTerritory(file.territory_oid.clone()))?;
    let mut plan = Plan::default();
    let known: Vec<EstablishmentId> = store
        .establishments(territory.id)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    for spec in &file.establishments {
        plan_establishment(store, territory.id, &known, spec, &mut plan).await?;
    }
    for e in store.establishments(territory.id).await? {
        if !file.establishments.iter().any(|s| s.finess == e.finess) {
            plan.lines.push(format!(
                "! établissement {} ({}) absent du fichier : laissé tel quel",
                e.finess, e.name
            ));
        }
    }
    Ok(plan)
}

async fn plan_establishment(
    store: &Store,
    territory: TerritoryId,
    known: &[EstablishmentId],
    spec: &EstablishmentSpec,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let wanted = |id| Establishment {
        id,
        territory,
        name: spec.name.clone(),
        finess: spec.finess.clone(),
        kind: spec.kind.clone(),
        activity: spec.activity,
    };
    let (est, existed) = match store.establishment_by_finess(&spec.finess).await? {
        Some(e) if e.territory != territory => {
            return Err(PlanError::OtherTerritory(spec.finess.clone()));
        }
        Some(e) => {
            let w = wanted(e.id);
            if w != e {
                plan.lines.push(format!(
                    "~ établissement {} : {} ({}, {})",
                    spec.finess,
                    spec.name,
                    spec.kind,
                    spec.activity.code()
                ));
                plan.changes.push(OrgChange::UpdateEstablishment(w));
            }
            (e.id, true)
        }
        None => {
            let w = wanted(EstablishmentId::new());
            plan.lines.push(format!(
                "+ établissement {} : {} ({}, {})",
                spec.finess,
                spec.name,
                spec.kind,
                spec.activity.code()
            ));
            plan.changes.push(OrgChange::CreateEstablishment(w.clone()));
            (w.id, false)
        }
    };
    let units = if existed {
        store.units(est).await?
    } else {
        Vec::new()
    };
    for u in &spec.units {
        plan_unit(store, est, &spec.finess, &units, u, plan).await?;
    }
    for u in &units {
        if !spec.units.iter().any(|s| s.code == u.code) {
            plan.lines.push(format!(
                "! unité {} de {} absente du fichier : laissée telle quelle",
                u.code, spec.finess
            ));
        }
    }
    let senders = if existed {
        store.hl7_senders_of(est).await?
    } else {
        Vec::new()
    };
    for s in &spec.senders {
        let new = NewHl7Sender {
            application: s.application.clone(),
            facility: s.facility.clone(),
            establishment: est,
            ipp_authority: s.ipp_authority.clone(),
            allowed_addresses: s.allowed_addresses.clone(),
            tls_subject: s.tls_subject.clone(),
        };
        if senders.contains(&new) {
            continue;
        }
        if let Some(other) = store.hl7_sender(&s.application, &s.facility).await?
            && other.establishment != est
            && !known.contains(&other.establishment)
        {
            return Err(PlanError::SenderElsewhere(format!(
                "{}/{}",
                s.application, s.facility
            )));
        }
        let sign = if senders
            .iter()
            .any(|o| o.application == s.application && o.facility == s.facility)
        {
            '~'
        } else {
            '+'
        };
        plan.lines.push(format!(
            "{sign} émetteur HL7 {}/{} pour {}",
            s.application, s.facility, spec.finess
        ));
        plan.changes.push(OrgChange::Sender(new));
    }
    let current: BTreeMap<String, String> = if existed {
        store
            .establishment_settings(est)
            .await?
            .into_iter()
            .collect()
    } else {
        BTreeMap::new()
    };
    for (name, value) in &spec.settings {
        if current.get(name) != Some(value) {
            let sign = if current.contains_key(name) { '~' } else { '+' };
            plan.lines.push(format!(
                "{sign} réglage {name} de {} = {value}",
                spec.finess
            ));
            plan.changes.push(OrgChange::Setting {
                establishment: est,
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for name in current.keys() {
        if !spec.settings.contains_key(name) {
            plan.lines
                .push(format!("- réglage {name} de {} retiré", spec.finess));
            plan.changes.push(OrgChange::Setting {
                establishment: est,
                name: name.clone(),
                value: None,
            });
        }
    }
    let offered = if existed {
        store.establishment_programmes(est).await?
    } else {
        Vec::new()
    };
    let mut wanted_programmes = spec.programmes.clone();
    wanted_programmes.sort();
    if offered != wanted_programmes {
        plan.lines.push(format!(
            "~ programmes de {} : {}",
            spec.finess,
            if wanted_programmes.is_empty() {
                "aucun".to_owned()
            } else {
                wanted_programmes.join(", ")
            }
        ));
        plan.changes.push(OrgChange::Programmes {
            establishment: est,
            programmes: wanted_programmes,
        });
    }
    Ok(())
}

async fn plan_unit(
    store: &Store,
    est: EstablishmentId,
    finess: &str,
    units: &[Unit],
    u: &UnitSpec,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let (id, beds, monitoring) = match units.iter().find(|x| x.code == u.code) {
        Some(x) => {
            if x.name != u.name || x.kind != u.kind {
                plan.lines
                    .push(format!("~ unité {} de {} : {}", u.code, finess, u.name));
                plan.changes.push(OrgChange::UpdateUnit(Unit {
                    name: u.name.clone(),
                    kind: u.kind.clone(),
                    ..x.clone()
                }));
            }
            let beds = store
                .unit_beds(x.id)
                .await
                .ok()
                .map(|b| (b.category, b.counts.capacity, b.source));
            (x.id, beds, store.unit_monitoring(x.id).await?)
        }
        None => {
            let id = UnitId::new();
            plan.lines
                .push(format!("+ unité {} de {} : {}", u.code, finess, u.name));
            plan.changes.push(OrgChange::CreateUnit(Unit {
                id,
                establishment: est,
                code: u.code.clone(),
                name: u.name.clone(),
                kind: u.kind.clone(),
            }));
            (id, None, None)
        }
    };
    if let Some((category, capacity, source)) = u.beds
        && beds != Some((category, capacity, source))
    {
        plan.lines.push(format!(
            "{} lits de {} ({}) : {} {} ({})",
            if beds.is_some() { '~' } else { '+' },
            u.code,
            finess,
            capacity,
            category.code(),
            source_code(source)
        ));
        plan.changes.push(OrgChange::Beds {
            unit: id,
            category,
            capacity,
            source,
        });
    }
    if u.monitoring != monitoring {
        plan.lines.push(match &u.monitoring {
            Some((p, on)) => format!(
                "{} unité {} de {} : proposer {p} sur {on}",
                if monitoring.is_some() { '~' } else { '+' },
                u.code,
                finess
            ),
            None => format!(
                "- unité {} de {} : plus de proposition d'inclusion",
                u.code, finess
            ),
        });
        plan.changes.push(OrgChange::UnitMonitoring {
            unit: id,
            trigger: u.monitoring.clone(),
        });
    }
    Ok(())
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The territory's organisation in the file format (what `parcours org
/// export` prints); applying it to the same database changes nothing.
pub async fn export(store: &Store, territory: TerritoryId) -> Result<String, store::StoreError> {
    let establishments = store.establishments(territory).await?;
    export_of(store, territory, &establishments).await
}

/// The file of some establishments of a territory (an admin's page edits the
/// establishments it administers this way).
pub async fn export_of(
    store: &Store,
    territory: TerritoryId,
    establishments: &[Establishment],
) -> Result<String, store::StoreError> {
    let t = store.territory(territory).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Organisation de {} — `parcours org apply` de ce fichier ne change rien.\n\n[territory]\noid = {}",
        t.name,
        quoted(&t.oid)
    );
    for e in establishments {
        let _ = writeln!(
            out,
            "\n[[establishment]]\nfiness = {}\nname = {}\nkind = {}\nactivity = {}",
            quoted(&e.finess),
            quoted(&e.name),
            quoted(&e.kind),
            quoted(e.activity.code())
        );
        let programmes = store.establishment_programmes(e.id).await?;
        let list: Vec<String> = programmes.iter().map(|p| quoted(p)).collect();
        let _ = writeln!(out, "programmes = [{}]", list.join(", "));
        let settings = store.establishment_settings(e.id).await?;
        if !settings.is_empty() {
            let _ = writeln!(out, "\n[establishment.integration]");
            for (name, value) in settings {
                let kind = SETTINGS.iter().find(|s| s.0 == name).map(|s| s.1);
                if kind == Some(SettingKind::Cents) {
                    let _ = writeln!(out, "{name} = {value}");
                } else {
                    let _ = writeln!(out, "{name} = {}", quoted(&value));
                }
            }
        }
        for u in store.units(e.id).await? {
            let _ = writeln!(
                out,
                "\n[[establishment.unit]]\ncode = {}\nname = {}\nkind = {}",
                quoted(&u.code),
                quoted(&u.name),
                quoted(&u.kind)
            );
            if let Ok(b) = store.unit_beds(u.id).await {
                let _ = writeln!(
                    out,
                    "beds = {{ category = {}, count = {}, source = {} }}",
                    quoted(b.category.code()),
                    b.counts.capacity,
                    quoted(source_code(b.source))
                );
            }
            if let Some((p, on)) = store.unit_monitoring(u.id).await? {
                let _ = writeln!(
                    out,
                    "monitoring = {{ programme = {}, on = {} }}",
                    quoted(&p),
                    quoted(&on)
                );
            }
        }
        for s in store.hl7_senders_of(e.id).await? {
            let _ = writeln!(
                out,
                "\n[[establishment.hl7_sender]]\napplication = {}\nfacility = {}",
                quoted(&s.application),
                quoted(&s.facility)
            );
            if let Some(a) = &s.ipp_authority {
                let _ = writeln!(out, "ipp_authority = {}", quoted(a));
            }
            let list: Vec<String> = s.allowed_addresses.iter().map(|a| quoted(a)).collect();
            let _ = writeln!(out, "allowed_addresses = [{}]", list.join(", "));
            if let Some(a) = &s.tls_subject {
                let _ = writeln!(out, "tls_subject = {}", quoted(a));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAMMES: &[&str] = &["oral-oncology", "home-infection"];

    const GOOD: &str = r#"
[territory]
oid = "1.2.250.1.999.1"

[[establishment]]
finess = "450000013"
name = "Clinique"
activity = "mco"
programmes = ["oral-oncology"]

[establishment.integration]
oru_destination = "10.0.0.5:2575"
teleconsultation_fee_cents = 2500
smtp_from = "noreply@clinique.example"

[[establishment.unit]]
code = "CHIR"
name = "Chirurgie"
beds = { category = "chir", count = 24 }

[[establishment.unit]]
code = "HDJ"
name = "Hôpital de jour"
beds = { category = "med", count = 10, source = "adt" }
monitoring = { programme = "oral-oncology", on = "A03" }

[[establishment.hl7_sender]]
application = "GAM"
facility = "CLIN"
allowed_addresses = ["10.0.0.0/8", "::1"]
"#;

    #[test]
    fn a_good_file_reads_whole() {
        let f = parse(GOOD, PROGRAMMES).unwrap();
        assert_eq!(f.territory_oid, "1.2.250.1.999.1");
        let e = &f.establishments[0];
        assert_eq!(e.kind, "private");
        assert_eq!(e.activity, Activity::Mco);
        assert_eq!(e.settings["teleconsultation_fee_cents"], "2500");
        assert_eq!(e.settings["oru_destination"], "10.0.0.5:2575");
        assert_eq!(
            e.units[0].beds,
            Some((BedCategory::Chirurgie, 24, OccupancySource::Manual))
        );
        assert_eq!(
            e.units[1].beds,
            Some((BedCategory::Medecine, 10, OccupancySource::Adt))
        );
        assert_eq!(
            e.units[1].monitoring,
            Some(("oral-oncology".into(), "A03".into()))
        );
        assert_eq!(e.senders[0].allowed_addresses, ["10.0.0.0/8", "::1"]);
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        parse(text, PROGRAMMES)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.line, e.reason))
            .collect()
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let bad = GOOD
            .replace("450000013", "450000014")
            .replace("\"chir\"", "\"cuisine\"")
            .replace("code = \"HDJ\"", "code = \"CHIR\"")
            .replace("10.0.0.5:2575", "10.0.0.5")
            .replace("\"::1\"", "\"pas-une-adresse\"")
            .replace("on = \"A03\"", "on = \"A99\"");
        let errs = errors(&bad);
        let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, [6, 12, 19, 22, 25, 30], "{errs:?}");
        assert!(errs[0].1.contains("clé de contrôle"), "{errs:?}");
        assert!(errs[1].1.contains("oru_destination"), "{errs:?}");
        assert!(errs[2].1.contains("\"cuisine\" inconnue"), "{errs:?}");
        assert!(errs[3].1.contains("CHIR en double"), "{errs:?}");
        assert!(errs[4].1.contains("A99"), "{errs:?}");
        assert!(errs[5].1.contains("pas-une-adresse"), "{errs:?}");
    }

    #[test]
    fn structural_errors_name_their_line() {
        let errs =
            errors("[territory]\noid = \"1.2\"\n\n[[establishment]]\nfiness = \"450000013\"\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, 4, "{errs:?}");
        assert!(errs[0].1.contains("name"), "{errs:?}");
        let errs = errors("[territory]\noid = \"1.2\"\ncolor = \"blue\"\n");
        assert_eq!(errs[0].0, 3, "{errs:?}");
        let errs = errors("[territory\n");
        assert_eq!(errs[0].0, 1, "{errs:?}");
    }

    #[test]
    fn duplicates_unknown_names_and_values_are_refused() {
        let two = format!(
            "{GOOD}\n[[establishment]]\nfiness = \"450000013\"\nname = \"Encore\"\nkind = \"mixte\"\nprogrammes = [\"yoga\"]\n[establishment.integration]\nfax = \"x\"\nimap_password_file = \"secret\"\n"
        );
        let errs = errors(&two);
        let reasons: Vec<&str> = errs.iter().map(|e| e.1.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("décrit deux fois")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("\"mixte\" inconnu")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("\"yoga\" inconnu")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("\"fax\" inconnu")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("jamais le secret")),
            "{reasons:?}"
        );
        let bad_oid = GOOD.replace("1.2.250.1.999.1", "1..2");
        assert_eq!(errors(&bad_oid)[0].0, 3);
    }

    #[test]
    fn a_unit_proposes_only_a_programme_its_establishment_offers() {
        let errs = errors(&GOOD.replace("programmes = [\"oral-oncology\"]", "programmes = []"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, 6, "{errs:?}");
        assert!(
            errs[0].1.contains("HDJ") && errs[0].1.contains("ne liste pas"),
            "{errs:?}"
        );
    }

    #[test]
    fn addresses_and_settings_are_checked_by_kind() {
        assert!(is_address_or_block("10.0.0.0/8"));
        assert!(is_address_or_block("::1"));
        assert!(is_address_or_block("2001:db8::/32"));
        assert!(!is_address_or_block("10.0.0.0/33"));
        assert!(!is_address_or_block("10.0.0"));
        let s = |k, v: &str| check_setting(k, &toml::Value::String(v.into()));
        assert!(s(SettingKind::HostPort, "h:2575").is_ok());
        assert!(s(SettingKind::HostPort, "h:0").is_err());
        assert!(s(SettingKind::Url, "ftp://x").is_err());
        assert!(s(SettingKind::ImapUrl, "imaps://mss.example:993").is_ok());
        assert!(s(SettingKind::Email, "a b@c.fr").is_err());
        assert!(s(SettingKind::Text, " ").is_err());
        assert!(s(SettingKind::PaymentAccount, "acct_1Nv0FGQ9RKHgCVdK").is_ok());
        assert_eq!(
            s(SettingKind::PaymentAccount, "acct_").unwrap_err(),
            "identifiant de compte acct_… attendu"
        );
        assert!(s(SettingKind::PaymentAccount, "FR76 3000 1007").is_err());
        assert!(s(SettingKind::PaymentAccount, "acct_a;b").is_err());
        assert!(check_setting(SettingKind::Cents, &toml::Value::Integer(-1)).is_err());
        assert!(check_setting(SettingKind::Cents, &toml::Value::String("25".into())).is_err());
        assert_eq!(
            check_setting(SettingKind::Cents, &toml::Value::Integer(2500)).unwrap(),
            "2500"
        );
    }
}
