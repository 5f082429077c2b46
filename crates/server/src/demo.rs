//! The demo territory, seeded idempotently by `parcours demo`: one GHT (identity
//! domain) with a private clinic and a public hospital, their units, professionals
//! of every role, twenty patients with valid INS, a portal account and API clients.
//! Every name and number here is fictitious; the OIDs and FINESS are made up.

use domain::audit::AuditActor;
use domain::identity::{IdentityStatus, Sex, Traits};
use domain::ins::{Ins, InsKind, key_for};
use domain::org::{Role, luhn_digit};
use domain::{EstablishmentId, PatientId, TerritoryId};
use store::Store;
use store::orgs::Territory;
use store::patients::{NewPatient, PatientQuery};
use store::users::{NewUser, UserKind};

use crate::auth::hash_secret;

/// Password of every demo account.
pub const DEMO_PASSWORD: &str = "parcours-demo";
/// TOTP secret (base32) of every demo professional.
pub const DEMO_TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
/// OID of the demo identity domain (IPP assigning authority), fictitious.
pub const DEMO_DOMAIN_OID: &str = "1.2.250.1.999.42.1";
/// FINESS of the demo clinic.
pub const CLINIC_FINESS: &str = "450000013";
/// FINESS of the demo hospital.
pub const HOSPITAL_FINESS: &str = "450000021";
/// MSH-3 of the demo hospital's patient administration system (GAM).
pub const HL7_APPLICATION: &str = "GAM";
/// MSH-4 of the demo hospital.
pub const HL7_FACILITY: &str = "CHVL";

/// FINESS of the demo rehabilitation centres and home hospitalisation.
pub const SSR_TILLEULS_FINESS: &str = "450000039";
/// Second SSR.
pub const SSR_LOIRE_FINESS: &str = "450000047";
/// HAD.
pub const HAD_FINESS: &str = "450000054";

/// The demo API client.
pub const DEMO_CLIENT_ID: &str = "demo-integration";
/// Its secret.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";

/// One demo login, for the README and the start-up banner.
pub struct DemoLogin {
    /// Login name.
    pub username: &'static str,
    /// Who.
    pub display_name: &'static str,
    /// Roles: (role, establishment FINESS).
    pub roles: &'static [(Role, &'static str)],
    /// RPPS body (10 digits, Luhn key added) for doctors and nurses.
    pub rpps_body: Option<&'static str>,
    /// Profession label.
    pub profession: &'static str,
}

/// Every professional of the demo.
pub const LOGINS: &[DemoLogin] = &[
    DemoLogin {
        username: "dr.martin",
        display_name: "Dr Claire Martin",
        roles: &[(Role::Doctor, CLINIC_FINESS)],
        rpps_body: Some("1000001001"),
        profession: "Oncologue",
    },
    DemoLogin {
        username: "dr.bernard",
        display_name: "Dr Hugo Bernard",
        roles: &[(Role::Doctor, HOSPITAL_FINESS)],
        rpps_body: Some("1000001002"),
        profession: "Anesthésiste-réanimateur",
    },
    DemoLogin {
        username: "ide.petit",
        display_name: "Julie Petit",
        roles: &[(Role::Nurse, CLINIC_FINESS)],
        rpps_body: Some("2000001003"),
        profession: "Infirmière (IDE)",
    },
    DemoLogin {
        username: "ipa.robert",
        display_name: "Marc Robert",
        roles: &[(Role::Nurse, HOSPITAL_FINESS)],
        rpps_body: Some("2000001004"),
        profession: "Infirmier en pratique avancée (IPA)",
    },
    DemoLogin {
        username: "sec.durand",
        display_name: "Sophie Durand",
        roles: &[(Role::Secretary, CLINIC_FINESS)],
        rpps_body: None,
        profession: "Secrétaire médicale",
    },
    DemoLogin {
        username: "sec.leroy",
        display_name: "Nadia Leroy",
        roles: &[(Role::Secretary, HOSPITAL_FINESS)],
        rpps_body: None,
        profession: "Secrétaire médicale",
    },
    DemoLogin {
        username: "admin.clinique",
        display_name: "Paul Fournier",
        roles: &[(Role::Admin, CLINIC_FINESS)],
        rpps_body: None,
        profession: "Administrateur",
    },
    DemoLogin {
        username: "admin.hopital",
        display_name: "Inès Girard",
        roles: &[(Role::Admin, HOSPITAL_FINESS)],
        rpps_body: None,
        profession: "Administratrice",
    },
    DemoLogin {
        username: "lits.moreau",
        display_name: "Luc Moreau",
        roles: &[(Role::BedManager, HOSPITAL_FINESS)],
        rpps_body: None,
        profession: "Gestionnaire de lits",
    },
    DemoLogin {
        username: "med.tilleuls",
        display_name: "Dr Léa Simon",
        roles: &[(Role::Doctor, SSR_TILLEULS_FINESS)],
        rpps_body: Some("1000001005"),
        profession: "Médecin de médecine physique et de réadaptation",
    },
    DemoLogin {
        username: "med.loire",
        display_name: "Dr Paul Roux",
        roles: &[(Role::Doctor, SSR_LOIRE_FINESS)],
        rpps_body: Some("1000001006"),
        profession: "Médecin de médecine physique et de réadaptation",
    },
    DemoLogin {
        username: "med.had",
        display_name: "Dr Emma Blanc",
        roles: &[(Role::Doctor, HAD_FINESS)],
        rpps_body: Some("1000001007"),
        profession: "Médecin coordonnateur d'HAD",
    },
    DemoLogin {
        username: "coord.garnier",
        display_name: "Anne Garnier",
        roles: &[
            (Role::Coordinator, CLINIC_FINESS),
            (Role::Coordinator, HOSPITAL_FINESS),
        ],
        rpps_body: None,
        profession: "Coordinatrice régionale",
    },
];

/// The patient portal login (linked to the first demo patient).
pub const PATIENT_LOGIN: &str = "patient.lambert";

/// (birth name, given names, sex, birth yyyy-mm-dd, birthplace INSEE code, order, status, clinic?, hospital?)
type PatientSeed = (
    &'static str,
    &'static str,
    Sex,
    (i16, i8, i8),
    &'static str,
    u16,
    IdentityStatus,
    bool,
    bool,
);

const PATIENTS: [PatientSeed; 20] = [
    (
        "Lambert",
        "Monique Jeanne",
        Sex::Female,
        (1961, 4, 12),
        "45234",
        101,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Rousseau",
        "Bernard",
        Sex::Male,
        (1956, 9, 3),
        "45234",
        102,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Vincent",
        "Françoise Marie",
        Sex::Female,
        (1964, 1, 27),
        "45208",
        103,
        IdentityStatus::Qualified,
        true,
        true,
    ),
    (
        "Muller",
        "Jean-Pierre",
        Sex::Male,
        (1958, 11, 15),
        "45155",
        104,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "Lefèvre",
        "Nathalie",
        Sex::Female,
        (1970, 6, 8),
        "45234",
        105,
        IdentityStatus::Recovered,
        true,
        false,
    ),
    (
        "Faure",
        "Michel André",
        Sex::Male,
        (1949, 2, 19),
        "45302",
        106,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "André",
        "Sylvie",
        Sex::Female,
        (1967, 12, 1),
        "45234",
        107,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Mercier",
        "Alain",
        Sex::Male,
        (1953, 7, 22),
        "45208",
        108,
        IdentityStatus::Validated,
        false,
        true,
    ),
    (
        "Blanc",
        "Christine",
        Sex::Female,
        (1962, 3, 30),
        "45155",
        109,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Guérin",
        "Patrick",
        Sex::Male,
        (1959, 10, 5),
        "45234",
        110,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "Boyer",
        "Isabelle",
        Sex::Female,
        (1972, 5, 17),
        "45302",
        111,
        IdentityStatus::Recovered,
        true,
        true,
    ),
    (
        "Garnier",
        "Gérard",
        Sex::Male,
        (1946, 8, 9),
        "45234",
        112,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "Chevalier",
        "Catherine",
        Sex::Female,
        (1955, 2, 2),
        "45208",
        113,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "François",
        "Daniel",
        Sex::Male,
        (1963, 4, 25),
        "45155",
        114,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "Legrand",
        "Martine",
        Sex::Female,
        (1951, 11, 11),
        "45234",
        115,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Gauthier",
        "Philippe",
        Sex::Male,
        (1966, 9, 14),
        "45302",
        116,
        IdentityStatus::Validated,
        false,
        true,
    ),
    (
        "Perrin",
        "Brigitte",
        Sex::Female,
        (1960, 7, 7),
        "45234",
        117,
        IdentityStatus::Qualified,
        true,
        false,
    ),
    (
        "Morin",
        "Jacques",
        Sex::Male,
        (1950, 1, 20),
        "45208",
        118,
        IdentityStatus::Qualified,
        false,
        true,
    ),
    (
        "Santoni",
        "Marie-Dominique",
        Sex::Female,
        (1965, 3, 18),
        "2A004",
        119,
        IdentityStatus::Qualified,
        true,
        true,
    ),
    (
        "Clément",
        "Thierry",
        Sex::Male,
        (1957, 12, 28),
        "45155",
        120,
        IdentityStatus::Recovered,
        false,
        true,
    ),
];

/// The NIR of a demo patient: sex, year, month, birthplace, order, key.
fn demo_ins(sex: Sex, (y, m, _): (i16, i8, i8), place: &str, order: u16) -> Option<Ins> {
    let s = if sex == Sex::Male { 1 } else { 2 };
    let matricule = format!("{s}{:02}{:02}{place}{order:03}", y % 100, m);
    let key = key_for(&matricule)?;
    Ins::parse(InsKind::Nir, &format!("{matricule}{key:02}")).ok()
}

/// What the seeding did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Rows created now (0 on a second run).
    pub created: usize,
}

/// The demo organisation as a file, the same format as `parcours org apply`.
pub const ORGANISATION: &str = include_str!("../demo/org.toml");

/// Applies [`ORGANISATION`] (establishments, units, beds, the GAM, support
/// cells, programmes, the unit that proposes monitoring) the way `parcours org
/// apply` does; how many changes it made (none the second time).
async fn apply_organisation(store: &Store, now_ms: i64) -> anyhow::Result<usize> {
    let programmes: Vec<&str> = crate::services::monitoring::programmes()
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let file = crate::orgfile::parse(ORGANISATION, &programmes)
        .map_err(|e| anyhow::anyhow!("organisation de démo invalide :\n{e}"))?;
    let plan = crate::orgfile::plan(store, &file).await?;
    store
        .apply_org_changes(&plan.changes, now_ms, "demo-seed")
        .await?;
    Ok(plan.changes.len())
}

/// Seeds the demo territory; running it again creates nothing.
pub async fn seed(store: &Store, now_ms: i64) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    let territory = match store.territory_by_oid(DEMO_DOMAIN_OID).await? {
        Some(t) => t,
        None => {
            let t = Territory {
                id: TerritoryId::new(),
                name: "GHT Loiret Démo".into(),
                oid: DEMO_DOMAIN_OID.into(),
            };
            store.create_territory(&t, now_ms).await?;
            report.created += 1;
            t
        }
    };
    report.created += apply_organisation(store, now_ms).await?;
    let mut ids = Vec::new();
    for finess in [
        CLINIC_FINESS,
        HOSPITAL_FINESS,
        SSR_TILLEULS_FINESS,
        SSR_LOIRE_FINESS,
        HAD_FINESS,
    ] {
        if let Some(e) = store.establishment_by_finess(finess).await? {
            ids.push((finess, e.id));
        }
    }
    let est_id = |finess: &str| ids.iter().find(|(f, _)| *f == finess).map(|(_, id)| *id);
    let (clinic, hospital) = (est_id(CLINIC_FINESS), est_id(HOSPITAL_FINESS));
    let password_hash = hash_secret(DEMO_PASSWORD.into()).await?;
    for l in LOGINS {
        if store.user_by_username(l.username).await?.is_some() {
            continue;
        }
        let roles = l
            .roles
            .iter()
            .filter_map(|(r, f)| est_id(f).map(|e| (e, *r)))
            .collect();
        let rpps = l
            .rpps_body
            .and_then(|b| luhn_digit(b).map(|d| format!("{b}{d}")));
        let u = NewUser {
            username: l.username.into(),
            display_name: l.display_name.into(),
            kind: UserKind::Professional,
            password_hash: password_hash.clone(),
            totp_secret: Some(DEMO_TOTP_SECRET.into()),
            rpps,
            profession: Some(l.profession.into()),
            patient: None,
            roles,
        };
        store.create_user(&u, now_ms).await?;
        report.created += 1;
    }
    let who = AuditActor::system("demo-seed");
    let mut first_patient = None;
    let mut patient_ids = Vec::new();
    for (name, given, sex, date, place, order, status, at_clinic, at_hospital) in PATIENTS {
        let Some(ins) = demo_ins(sex, date, place, order) else {
            anyhow::bail!("INS de démo invalide pour {name}")
        };
        let existing = store
            .search_patients(
                territory.id,
                &PatientQuery {
                    ins: Some(ins.value()),
                    limit: 1,
                    ..Default::default()
                },
            )
            .await?;
        let id = match existing.first() {
            Some(p) => p.id,
            None => {
                let traits = Traits {
                    birth_name: name.into(),
                    birth_given_names: given.split(' ').map(str::to_owned).collect(),
                    birth_date: jiff::civil::date(date.0, date.1, date.2),
                    sex,
                    birthplace_code: Some(place.into()),
                    used_name: None,
                    used_given_name: None,
                };
                let establishment = if at_clinic { clinic } else { hospital };
                let p = NewPatient {
                    territory: territory.id,
                    ipp: None,
                    traits,
                    ins: Some(ins),
                    status,
                    establishment,
                    demographics: demo_demographics(patient_ids.len(), first_patient.is_none()),
                };
                let created = store.create_patient(&p, &who, now_ms).await?;
                if at_clinic
                    && at_hospital
                    && let Some(h) = hospital
                {
                    store.link_patient(created.id, h, now_ms).await?;
                }
                report.created += 1;
                created.id
            }
        };
        first_patient.get_or_insert(id);
        patient_ids.push(id);
    }
    // The portal patient is followed at home by the clinic's oncology day hospital.
    if let (Some(p), Some(c)) = (first_patient, clinic)
        && store.enrolments_of(p).await?.is_empty()
    {
        let n = store::monitoring::NewEnrolment {
            patient: p,
            establishment: c,
            programme: "oral-oncology".into(),
            consent_at_ms: now_ms,
            created_by: "demo-seed".into(),
        };
        store.enrol(&n, &who, now_ms).await?;
        report.created += 1;
    }
    if let (Some(c), Some(h)) = (clinic, hospital) {
        report.created += seed_monitoring(store, &patient_ids, c, h, now_ms).await?;
        report.created += seed_agendas(store, &patient_ids, c, h, now_ms).await?;
        report.created += seed_documents(store, &patient_ids, c, now_ms).await?;
    }
    if store.user_by_username(PATIENT_LOGIN).await?.is_none() {
        let u = NewUser {
            username: PATIENT_LOGIN.into(),
            display_name: "Monique Lambert".into(),
            kind: UserKind::Patient,
            password_hash: password_hash.clone(),
            totp_secret: None,
            rpps: None,
            profession: None,
            patient: first_patient,
            roles: vec![],
        };
        store.create_user(&u, now_ms).await?;
        report.created += 1;
    }
    for (client_id, secret, name, role) in [
        (
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "Flux d'intégration de démonstration",
            Role::Integration,
        ),
        (
            "demo-audit",
            "demo-audit-secret",
            "Lecture du journal d'audit (démo)",
            Role::Admin,
        ),
    ] {
        if store.client_by_client_id(client_id).await?.is_some() {
            continue;
        }
        let Some(h) = hospital else {
            anyhow::bail!("établissement de démo manquant")
        };
        store
            .create_client(
                client_id,
                name,
                &hash_secret(secret.into()).await?,
                h,
                role,
                now_ms,
            )
            .await?;
        report.created += 1;
    }
    Ok(report)
}

/// Names for the stays the demo's GAM feeds (fictitious).
const STAY_NAMES: [(&str, &str, char); 12] = [
    ("Bertin", "Louis", 'M'),
    ("Carpentier", "Odette", 'F'),
    ("Delorme", "André", 'M'),
    ("Esnault", "Josiane", 'F'),
    ("Fabre", "Gérard", 'M'),
    ("Guérin", "Colette", 'F'),
    ("Hervé", "Marcel", 'M'),
    ("Imbert", "Yvette", 'F'),
    ("Jacquet", "Roger", 'M'),
    ("Lacroix", "Simone", 'F'),
    ("Marchand", "René", 'M'),
    ("Noël", "Ginette", 'F'),
];

/// The ADT message the demo's GAM sends for stay `n` (A01 admission, A03
/// discharge) at `when` (HL7 time).
fn demo_adt(event: &str, n: usize, unit: &str, when: &str) -> String {
    let (family, given, sex) = STAY_NAMES
        .get(n % STAY_NAMES.len())
        .copied()
        .unwrap_or(("Martin", "Jean", 'M'));
    let (structure, movement) = if event == "A03" {
        ("ADT_A03", 2)
    } else {
        ("ADT_A01", 1)
    };
    let year = 1940 + (n * 7) % 40;
    format!(
        "MSH|^~\\&|{HL7_APPLICATION}|{HL7_FACILITY}|PARCOURS|GHT|{when}||ADT^{event}^{structure}|DEMO-{event}-{n}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8\r\
         EVN||{when}\r\
         PID|1||DEMO{n}^^^{HL7_FACILITY}&{HOSPITAL_FINESS}&M^PI||{family}^{given}^^^^^L||{year}0615|{sex}\r\
         PV1|1|I|{unit}^{room}^1||||||||||||||||VDEMO{n}\r\
         ZBE|VDEMO{n}-{movement}^{HL7_FACILITY}|{when}||INSERT|N\r",
        room = n + 1
    )
}

/// Makes the demo look alive, once: the hospital's GAM has fed its ICU and
/// surgery over the last day (admissions, some discharges, through the same
/// HL7 intake as a real feed), with the hourly bed snapshots the regional
/// chart draws. `parcours demo` calls it after [`seed`]; the tests' seed does
/// not, so that their bed counts start empty. How many messages it applied
/// (none the second time).
pub async fn animate(store: &Store, config: &crate::Config, now_ms: i64) -> anyhow::Result<usize> {
    if !store.hl7_messages(None, 1).await?.is_empty() {
        return Ok(0);
    }
    const HOUR: i64 = 3600 * 1000;
    let start = now_ms - 24 * HOUR;
    let clock = std::sync::Arc::new(domain::ManualClock::new(jiff::Timestamp::from_millisecond(
        start,
    )?));
    let state = crate::AppState::new(store.clone(), clock.clone(), config.clone());
    let mut applied = 0;
    // (hour after start, event, stay, unit): 9 admitted to the ICU and 14 to
    // surgery, 3 and 5 of them discharged, across the day.
    let mut events: Vec<(i64, &str, usize, &str)> = Vec::new();
    for n in 0..23 {
        let unit = if n < 9 { "REA" } else { "CHIR" };
        let at = i64::try_from(n).unwrap_or(0);
        events.push((at, "A01", n, unit));
        if n % 3 == 0 {
            events.push((at + 2, "A03", n, unit));
        }
    }
    events.sort_by_key(|e| e.0);
    for hour in 0..24 {
        let at = start + hour * HOUR;
        if hour > 0 {
            clock.advance_secs(3600);
        }
        for (_, event, n, unit) in events.iter().filter(|e| e.0 == hour) {
            let when = crate::fmt::hl7_dtm(at);
            let raw = demo_adt(event, *n, unit, &when);
            match crate::services::hl7::ingest(
                state.ctx(),
                raw.as_bytes(),
                None,
                &crate::services::hl7::Peer::Internal,
            )
            .await
            {
                crate::services::hl7::Outcome::Ack(ack) if ack.contains("MSA|AA") => applied += 1,
                crate::services::hl7::Outcome::Ack(ack) => {
                    anyhow::bail!("flux ADT de démo refusé : {}", ack.replace('\r', " / "))
                }
                crate::services::hl7::Outcome::NoAck => {
                    anyhow::bail!("flux ADT de démo : base indisponible")
                }
            }
        }
        crate::snapshots::take(&state).await?;
    }
    // Two patients followed at home raised an alert this morning: the nurses'
    // queue has work waiting.
    for (index, item, text) in [
        (0, "other", "Je me sens très fatiguée depuis deux jours."),
        (4, "fever", "J'ai 38,4 ce matin et des frissons."),
    ] {
        let Some(patient) = demo_patient(store, index).await? else {
            continue;
        };
        let Some(e) = store
            .enrolments_of(patient)
            .await?
            .into_iter()
            .find(|e| e.status == "active")
        else {
            continue;
        };
        let alert = store::monitoring::NewAlert {
            level: domain::monitoring::AlertLevel::Warning,
            item: item.into(),
            reason: format!("signalé par le patient : {text}"),
            advice: "Une infirmière vous rappellera dans la demi-journée.".into(),
            mute: None,
        };
        let sla =
            crate::services::monitoring::programme(&e.programme).map_or(12, |p| p.sla_hours) * HOUR;
        store
            .raise_patient_alert(
                &e,
                &alert,
                None,
                "patient",
                now_ms - HOUR + sla,
                &AuditActor::system("demo-seed"),
                now_ms - HOUR,
            )
            .await?;
    }
    documents_of_the_week(store, now_ms).await?;
    Ok(applied)
}

/// A validated document of the demo's week at the clinic, by Dr Martin.
struct WeekDocument {
    /// Index in the seed's patient list.
    patient: usize,
    kind: domain::documents::Kind,
    unit: &'static str,
    body: &'static str,
    hours_ago: i64,
}

/// What became of one recipient, as the dispatch dashboard says it.
#[derive(Clone, Copy)]
enum Fate {
    /// Remis.
    Delivered,
    /// Waiting for a setting of ours, with why.
    Waiting(&'static str),
    /// Not sent for a reason of the patient's.
    Skipped(domain::documents::NotEligible),
    /// In the outbox, retried by the worker (the GP's mail: without a relay
    /// it waits with why; with one it leaves).
    Queued,
    /// Refused by the receiver: a dead letter, with its reason.
    Refused(&'static str),
}

const GP_ADDRESS: &str = "dr.generaliste@medecin.mssante.fr";

/// The clinic's dispatch dashboard over the last days: documents whose
/// recipients are in every state (delivered, waiting for a setting, not sent
/// because of the patient, being retried, refused), and a corrected report
/// whose first version is replaced. Once (nothing if the clinic already has
/// documents other than the seed's).
async fn documents_of_the_week(store: &Store, now_ms: i64) -> anyhow::Result<usize> {
    use domain::documents::{Kind, NotEligible, Recipient};
    const HOUR: i64 = 3600 * 1000;
    let (Some(clinic), Some(martin)) = (
        store.establishment_by_finess(CLINIC_FINESS).await?,
        store.user_by_username("dr.martin").await?,
    ) else {
        return Ok(0);
    };
    if store.validated_documents(clinic.id, 0).await?.len() > 1 {
        return Ok(0);
    }
    let week = [
        (
            WeekDocument {
                patient: 1,
                kind: Kind::LettreLiaison,
                unit: "CHIR",
                body: "Motif : cholécystectomie programmée.\n\nSuites : simples, sortie à J2.\n\nÀ revoir en consultation dans un mois.",
                hours_ago: 30,
            },
            [
                (Recipient::Patient, Fate::Delivered),
                (Recipient::Dmp, Fate::Delivered),
                (Recipient::Gp, Fate::Queued),
            ],
        ),
        (
            WeekDocument {
                patient: 2,
                kind: Kind::CrOperatoire,
                unit: "CHIR",
                body: "Intervention : hernioplastie inguinale droite sous cœlioscopie.\n\nSuites opératoires simples.",
                hours_ago: 20,
            },
            [
                (Recipient::Patient, Fate::Delivered),
                (
                    Recipient::Dmp,
                    Fate::Refused(
                        "HTTP 422 : INS inconnue du téléservice DMP, vérifiez l'identité",
                    ),
                ),
                (Recipient::Gp, Fate::Delivered),
            ],
        ),
        (
            WeekDocument {
                patient: 4,
                kind: Kind::CrConsultation,
                unit: "HDJ-ONCO",
                body: "Motif : bilan avant chimiothérapie.\n\nConclusion : traitement possible, à débuter lundi.",
                hours_ago: 8,
            },
            [
                (Recipient::Patient, Fate::Delivered),
                (
                    Recipient::Dmp,
                    Fate::Skipped(NotEligible::IdentityNotQualified),
                ),
                (Recipient::Gp, Fate::Delivered),
            ],
        ),
        (
            WeekDocument {
                patient: 6,
                kind: Kind::CrBiologie,
                unit: "HDJ-ONCO",
                body: "Numération formule sanguine : polynucléaires neutrophiles 2,1 G/L.\n\nConclusion : cure possible.",
                hours_ago: 3,
            },
            [
                (Recipient::Patient, Fate::Delivered),
                (Recipient::Dmp, Fate::Skipped(NotEligible::Opposition)),
                (
                    Recipient::Gp,
                    Fate::Waiting("adresse de messagerie sécurisée non renseignée"),
                ),
            ],
        ),
    ];
    let who = AuditActor::system("demo-seed");
    let mut made = 0;
    for (doc, fates) in week {
        let Some(patient) = demo_patient(store, doc.patient).await? else {
            continue;
        };
        if fates
            .iter()
            .any(|(_, f)| matches!(f, Fate::Skipped(NotEligible::Opposition)))
        {
            store
                .set_dmp(
                    patient,
                    domain::documents::DmpState::Active,
                    true,
                    now_ms - doc.hours_ago * HOUR,
                )
                .await?;
        }
        let at = now_ms - doc.hours_ago * HOUR;
        let id = store
            .create_document(
                &store::documents::NewDocument {
                    patient,
                    establishment: clinic.id,
                    kind: doc.kind,
                    title: doc.kind.label_fr().into(),
                    body: doc.body.into(),
                    created_by: martin.id.to_string(),
                    unit: Some(doc.unit.into()),
                },
                &who,
                at - HOUR,
            )
            .await?;
        let d = store.document(id).await?;
        validate_demo_document(store, &d, &martin, &clinic, &fates, at).await?;
        made += 1;
    }
    // A report corrected after it went out: the first version is replaced
    // on the portal and wherever it went.
    if let Some(blanc) = demo_patient(store, 8).await? {
        let fates = [
            (Recipient::Patient, Fate::Delivered),
            (
                Recipient::Dmp,
                Fate::Waiting("aucun destinataire MHD configuré (PARCOURS_MHD_DESTINATION)"),
            ),
        ];
        let kind = Kind::CrConsultation;
        let id = store
            .create_document(
                &store::documents::NewDocument {
                    patient: blanc,
                    establishment: clinic.id,
                    kind,
                    title: kind.label_fr().into(),
                    body: "Conclusion : poursuite du traitement à 1000 mg/m².".into(),
                    created_by: martin.id.to_string(),
                    unit: Some("HDJ-ONCO".into()),
                },
                &who,
                now_ms - 50 * HOUR,
            )
            .await?;
        let first = store.document(id).await?;
        validate_demo_document(store, &first, &martin, &clinic, &fates, now_ms - 48 * HOUR).await?;
        if let Some(next) = store
            .revise_document(&first, &martin.id.to_string(), &who, now_ms - 26 * HOUR)
            .await?
        {
            let draft = store.document(next).await?;
            store
                .update_draft(
                    &draft,
                    &draft.title,
                    "Conclusion : poursuite du traitement à 800 mg/m² (dose corrigée).",
                    &who,
                    now_ms - 25 * HOUR,
                )
                .await?;
            let second = store.document(next).await?;
            validate_demo_document(store, &second, &martin, &clinic, &fates, now_ms - 24 * HOUR)
                .await?;
            made += 2;
        }
    }
    Ok(made)
}

/// Validates a demo document at `at_ms` as a validation does (its PDF and
/// CDA, naming the version it replaces), each recipient in its `fates`.
async fn validate_demo_document(
    store: &Store,
    d: &store::documents::Document,
    martin: &store::users::User,
    clinic: &store::orgs::Establishment,
    fates: &[(domain::documents::Recipient, Fate)],
    at_ms: i64,
) -> anyhow::Result<()> {
    use domain::documents::Recipient;
    let p = store.patient(d.patient).await?;
    let oid = store.territory(p.territory).await?.oid;
    let lines: Vec<String> = d.body.lines().map(str::to_owned).collect();
    let pdf = interop::pdf::text_document(&d.title, &lines);
    let when = crate::fmt::hl7_dtm(at_ms);
    let replaced = match d.replaces {
        Some(old) => Some(store.document(old).await?),
        None => None,
    };
    let cda = interop::cda::build(&interop::cda::CdaInput {
        id: d.unique_id.trim_start_matches("urn:uuid:"),
        set_id: &d.set_id,
        version: u32::try_from(d.version).unwrap_or(1),
        kind: d.kind,
        title: &d.title,
        effective: &when,
        patient: &p,
        ipp_oid: &oid,
        author: interop::cda::Professional {
            rpps: martin.rpps.as_deref(),
            given: "Claire",
            family: "Martin",
        },
        establishment: (&clinic.finess, &clinic.name),
        encounter: None,
        confidentiality: "N",
        pdf: &pdf,
        replaces: replaced.as_ref().map(|o| {
            (
                o.unique_id.trim_start_matches("urn:uuid:"),
                o.set_id.as_str(),
                u32::try_from(o.version).unwrap_or(1),
            )
        }),
    });
    let address = |r: Recipient| match r {
        Recipient::Patient => "portail Parcours".to_owned(),
        Recipient::Gp => GP_ADDRESS.to_owned(),
        _ => String::new(),
    };
    let mut dead = Vec::new();
    let mut plans = Vec::new();
    for &(r, fate) in fates {
        let key = format!("doc:{}:{}", d.id, r.code());
        let (state, detail, message) = match fate {
            Fate::Delivered => ("delivered", None, None),
            Fate::Waiting(why) => ("waiting", Some(why.to_owned()), None),
            Fate::Skipped(why) => ("skipped", Some(why.to_string()), None),
            Fate::Queued | Fate::Refused(_) => {
                if let Fate::Refused(why) = fate {
                    dead.push((key.clone(), why));
                }
                let message = if r == Recipient::Gp {
                    demo_mail(d, &p, &clinic.finess, cda.as_bytes(), &pdf, &key)
                } else {
                    store::outbox::NewMessage {
                        idempotency_key: key,
                        topic: crate::outbound::MHD_TOPIC.into(),
                        destination: "https://dmp.invalid/fhir".into(),
                        payload: "{}".into(),
                        establishment: Some(clinic.id),
                    }
                };
                ("pending", None, Some(message))
            }
        };
        plans.push(store::documents::RecipientPlan {
            recipient: r,
            address: address(r),
            message,
            state,
            detail,
        });
    }
    store
        .validate_document(
            d,
            &martin.id.to_string(),
            "text/xml",
            cda.as_bytes(),
            &plans,
            &AuditActor::system("demo-seed"),
            at_ms,
        )
        .await?;
    // The receiver's refusal, as the worker records it: a dead letter.
    for (key, why) in dead {
        if let Some(m) = store.outbox_message(&key).await? {
            let once = store::outbox::RetryPolicy {
                max_attempts: 1,
                ..Default::default()
            };
            store.outbox_failed(&m.id, why, at_ms, &once).await?;
        }
    }
    Ok(())
}

/// The GP's copy by secure messaging, as a validation queues it (the XDM
/// archive and the PDF).
fn demo_mail(
    d: &store::documents::Document,
    p: &domain::identity::PatientRecord,
    finess: &str,
    cda: &[u8],
    pdf: &[u8],
    key: &str,
) -> store::outbox::NewMessage {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ins = p.ins.as_ref().filter(|_| p.status.ins_exchangeable());
    let ins_value = ins.map(|i| (i.value(), i.kind().oid()));
    let zip = interop::xdm::zip(&interop::xdm::XdmDocument {
        unique_id: &d.unique_id,
        submission_id: &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        ins: ins_value.as_ref().map(|(v, oid)| (v.as_str(), *oid)),
        type_code: d.kind.loinc(),
        class_code: d.kind.class(),
        title: &d.title,
        created: "20261201120000",
        author: "Dr Claire Martin",
        finess,
        recipient: GP_ADDRESS,
        cda,
    });
    store::outbox::NewMessage {
        idempotency_key: key.to_owned(),
        topic: crate::outbound::MSS_TOPIC.into(),
        destination: GP_ADDRESS.into(),
        payload: serde_json::json!({
            "title": d.title,
            "zip": b64.encode(&zip),
            "pdf": b64.encode(pdf),
        })
        .to_string(),
        establishment: Some(d.establishment),
    }
}

/// The id of the demo patient at `index` in the seed's list, if seeded.
async fn demo_patient(store: &Store, index: usize) -> anyhow::Result<Option<PatientId>> {
    let Some((_, _, sex, date, place, order, ..)) = PATIENTS.get(index).copied() else {
        return Ok(None);
    };
    let Some(ins) = demo_ins(sex, date, place, order) else {
        return Ok(None);
    };
    let Some(t) = store.territory_by_oid(DEMO_DOMAIN_OID).await? else {
        return Ok(None);
    };
    let found = store
        .search_patients(
            t.id,
            &PatientQuery {
                ins: Some(ins.value()),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    Ok(found.first().map(|p| p.id))
}

/// Two documents in Mme Lambert's record at the clinic: a consultation report
/// validated by her oncologist (given to her portal; the DMP copy waits for an
/// MHD recipient to be configured) and a discharge letter still in draft; and a
/// surgeon's report received by mail waiting to be attached; once.
async fn seed_documents(
    store: &Store,
    patients: &[PatientId],
    clinic: EstablishmentId,
    now_ms: i64,
) -> anyhow::Result<usize> {
    use domain::documents::{Kind, Recipient};
    let (Some(&lambert), Some(martin)) =
        (patients.first(), store.user_by_username("dr.martin").await?)
    else {
        return Ok(0);
    };
    if !store.documents_of_patient(lambert).await?.is_empty() {
        return Ok(0);
    }
    let who = AuditActor::system("demo-seed");
    let report = Kind::CrConsultation;
    let body = "Motif : suivi de chimiothérapie orale (capécitabine).\n\nExamen : bon état général, \
                pas de syndrome main-pied, poids stable.\n\nConclusion : poursuite du traitement, \
                prochaine consultation dans un mois.";
    let id = store
        .create_document(
            &store::documents::NewDocument {
                patient: lambert,
                establishment: clinic,
                kind: report,
                title: report.label_fr().into(),
                body: body.into(),
                created_by: martin.id.to_string(),
                unit: Some("HDJ-ONCO".into()),
            },
            &who,
            now_ms - 7 * 24 * 3600 * 1000,
        )
        .await?;
    let d = store.document(id).await?;
    let p = store.patient(lambert).await?;
    let oid = store.territory(p.territory).await?.oid;
    let est = store.establishment(clinic).await?;
    let lines: Vec<String> = body.lines().map(str::to_owned).collect();
    let pdf = interop::pdf::text_document(&d.title, &lines);
    let when = crate::fmt::hl7_dtm(now_ms);
    let cda = interop::cda::build(&interop::cda::CdaInput {
        id: d.unique_id.trim_start_matches("urn:uuid:"),
        set_id: &d.set_id,
        version: 1,
        kind: report,
        title: &d.title,
        effective: &when,
        patient: &p,
        ipp_oid: &oid,
        author: interop::cda::Professional {
            rpps: martin.rpps.as_deref(),
            given: "Claire",
            family: "Martin",
        },
        establishment: (&est.finess, &est.name),
        encounter: None,
        confidentiality: "N",
        pdf: &pdf,
        replaces: None,
    });
    let plans = [
        store::documents::RecipientPlan {
            recipient: Recipient::Patient,
            address: "portail Parcours".into(),
            message: None,
            state: "delivered",
            detail: None,
        },
        store::documents::RecipientPlan {
            recipient: Recipient::Dmp,
            address: String::new(),
            message: None,
            state: "waiting",
            detail: Some("aucun destinataire MHD configuré (PARCOURS_MHD_DESTINATION)".into()),
        },
    ];
    store
        .validate_document(
            &d,
            &martin.id.to_string(),
            "text/xml",
            cda.as_bytes(),
            &plans,
            &who,
            now_ms,
        )
        .await?;
    let letter = Kind::LettreLiaison;
    store
        .create_document(
            &store::documents::NewDocument {
                patient: lambert,
                establishment: clinic,
                kind: letter,
                title: letter.label_fr().into(),
                body: "Motif d'hospitalisation :\n\nSynthèse du séjour :\n".into(),
                created_by: "demo-seed".into(),
                unit: Some("HDJ-ONCO".into()),
            },
            &who,
            now_ms,
        )
        .await?;
    // A surgeon's report that came by secure messaging about someone the
    // clinic does not know yet: it waits at /documents/recus for a human.
    let mut stranger = p.clone();
    stranger.traits.birth_name = "GARNIER".into();
    stranger.traits.birth_given_names = vec!["Hélène".into()];
    stranger.traits.birth_date = jiff::civil::date(1957, 3, 9);
    stranger.ins = None;
    stranger.status = domain::identity::IdentityStatus::Provisional;
    let op = Kind::CrOperatoire;
    let op_id = uuid::Uuid::new_v4().to_string();
    let op_pdf = interop::pdf::text_document(
        op.label_fr(),
        &["Cholécystectomie sous cœlioscopie, suites simples.".to_owned()],
    );
    let op_cda = interop::cda::build(&interop::cda::CdaInput {
        id: &op_id,
        set_id: &op_id,
        version: 1,
        kind: op,
        title: op.label_fr(),
        effective: &when,
        patient: &stranger,
        ipp_oid: "1.2.250.1.999.77.1",
        author: interop::cda::Professional {
            rpps: Some("10101010101"),
            given: "Paul",
            family: "Bernard",
        },
        establishment: ("450099990", "Cabinet de chirurgie Bernard"),
        encounter: None,
        confidentiality: "N",
        pdf: &op_pdf,
        replaces: None,
    });
    store
        .record_incoming(
            &store::incoming::NewIncoming {
                establishment: clinic,
                message_id: format!("demo-{op_id}@chirurgien.mssante.fr"),
                part: 1,
                sender: "p.bernard@chirurgien.mssante.fr".into(),
                subject: "XDM/1.0/DDM".into(),
                state: store::incoming::IncomingState::Queued,
                detail: "aucun patient ne porte ces traits".into(),
                unique_id: Some(format!("urn:uuid:{op_id}")),
                title: op.label_fr().into(),
                type_code: op.loinc().0.into(),
                traits: "GARNIER Hélène, F, né(e) le 09/03/1957".into(),
                content: Some(op_cda.into_bytes()),
                patient: None,
                document_id: None,
            },
            now_ms,
        )
        .await?;
    Ok(3)
}

/// Opening hours for two doctors (the clinic's oncologist by video on weekday
/// mornings, the hospital's anaesthetist in person on Tuesday and Thursday
/// afternoons) and two appointments; once (nothing if openings exist).
async fn seed_agendas(
    store: &Store,
    patients: &[PatientId],
    clinic: EstablishmentId,
    hospital: EstablishmentId,
    now_ms: i64,
) -> anyhow::Result<usize> {
    use domain::schedule::{Mode, Opening};
    let (Some(martin), Some(bernard)) = (
        store.user_by_username("dr.martin").await?,
        store.user_by_username("dr.bernard").await?,
    ) else {
        return Ok(0);
    };
    if !store.openings(martin.id).await?.is_empty() {
        return Ok(0);
    }
    let mornings: Vec<Opening> = (1..=5)
        .map(|d| Opening {
            weekday: d,
            start_min: 9 * 60,
            end_min: 12 * 60,
            slot_minutes: 20,
            mode: Mode::Tele,
        })
        .collect();
    store.set_openings(martin.id, clinic, &mornings).await?;
    let afternoons: Vec<Opening> = [2, 4]
        .into_iter()
        .map(|d| Opening {
            weekday: d,
            start_min: 14 * 60,
            end_min: 17 * 60,
            slot_minutes: 30,
            mode: Mode::InPerson,
        })
        .collect();
    store
        .set_openings(bernard.id, hospital, &afternoons)
        .await?;
    let who = AuditActor::system("demo-seed");
    // Lambert sees her oncologist by video at the second free slot; Muller his
    // anaesthetist at the first one.
    for (doctor, est, hours, patient, nth) in [
        (martin.id, clinic, &mornings, 0usize, 1usize),
        (bernard.id, hospital, &afternoons, 3, 0),
    ] {
        let (Some(slot), Some(&patient)) = (
            domain::schedule::slots(hours, now_ms, 14).get(nth).copied(),
            patients.get(patient),
        ) else {
            continue;
        };
        let n = store::schedule::NewAppointment {
            practitioner: doctor,
            establishment: est,
            patient,
            start_ms: slot.start_ms,
            end_ms: slot.end_ms,
            mode: slot.mode,
            booked_by: "demo-seed".into(),
        };
        store.book(&n, &[], &who, now_ms).await?;
    }
    Ok(4)
}

/// Three patients with a few weeks of remote monitoring behind them, so that the
/// dashboard, the FHIR searches and the timelines have something to show: every
/// seeded alert has been handled (the live queues start empty), one of them late.
/// Returns how many enrolments were created (none if they exist).
async fn seed_monitoring(
    store: &Store,
    patients: &[PatientId],
    clinic: EstablishmentId,
    hospital: EstablishmentId,
    now_ms: i64,
) -> anyhow::Result<usize> {
    use domain::monitoring::{AnswerValue, TriageAction};
    const HOUR: i64 = 3600 * 1000;
    const DAY: i64 = 24 * HOUR;
    type Answers = &'static [(&'static str, &'static str)];
    // (patient index, establishment is the clinic, programme, [(days ago, answers
    // that differ from "nothing to report")], triage steps of the last alert
    // [(hours after it, actor, action, note)]).
    type Case = (
        usize,
        bool,
        &'static str,
        &'static [(i64, Answers)],
        &'static [(i64, &'static str, &'static str, &'static str)],
    );
    const CASES: &[Case] = &[
        (
            1,
            true,
            "oral-oncology",
            &[
                (21, &[("weight", "74")]),
                (14, &[("weight", "73.5")]),
                (7, &[("weight", "71.8")]),
                (1, &[("weight", "69.4")]),
            ],
            &[
                (2, "Julie Petit", "take", ""),
                (
                    3,
                    "Julie Petit",
                    "callback",
                    "Perte d'appétit depuis dix jours, pas de vomissement",
                ),
                (
                    3,
                    "Julie Petit",
                    "close:teleconsultation",
                    "Consultation diététique programmée jeudi",
                ),
            ],
        ),
        (
            4,
            true,
            "oral-oncology",
            &[(10, &[("fever", "2"), ("temperature", "38.1")]), (3, &[])],
            &[
                (1, "Julie Petit", "take", ""),
                (
                    1,
                    "Julie Petit",
                    "advise",
                    "Paracétamol, reprendre la température ce soir",
                ),
                (
                    2,
                    "Julie Petit",
                    "close:advice",
                    "Fièvre résolue au rappel du soir",
                ),
            ],
        ),
        (
            3,
            false,
            "infectious-home",
            &[(6, &[]), (4, &[("spo2", "93"), ("dyspnoea", "2")])],
            &[
                (14, "Marc Robert", "take", ""),
                (
                    14,
                    "Marc Robert",
                    "escalate",
                    "SpO2 93 % et essoufflement en marchant",
                ),
                (
                    15,
                    "Dr Hugo Bernard",
                    "close:advice",
                    "Radio de thorax demain, pas de signe de gravité",
                ),
            ],
        ),
    ];
    let who = AuditActor::system("demo-seed");
    let mut created = 0;
    for (index, at_clinic, programme_id, submissions, steps) in CASES {
        let Some(&patient) = patients.get(*index) else {
            continue;
        };
        if !store.enrolments_of(patient).await?.is_empty() {
            continue;
        }
        let Some(programme) = crate::services::monitoring::programme(programme_id) else {
            anyhow::bail!("programme de démo absent: {programme_id}");
        };
        let start = now_ms - 22 * DAY;
        let n = store::monitoring::NewEnrolment {
            patient,
            establishment: if *at_clinic { clinic } else { hospital },
            programme: (*programme_id).into(),
            consent_at_ms: start,
            created_by: "demo-seed".into(),
        };
        let enrolment_id = store.enrol(&n, &who, start).await?;
        created += 1;
        let enrolment = store
            .enrolments_of(patient)
            .await?
            .into_iter()
            .find(|e| e.id == enrolment_id)
            .ok_or_else(|| anyhow::anyhow!("inclusion de démo introuvable"))?;
        for (days_ago, differs) in *submissions {
            let at = now_ms - days_ago * DAY;
            let answers: Vec<(String, AnswerValue)> = programme
                .items
                .iter()
                .map(|item| {
                    let given = differs
                        .iter()
                        .find(|(k, _)| *k == item.link_id)
                        .map(|(_, v)| *v);
                    let value = match (item.kind, given) {
                        (interop::programme::ItemKind::Grade(_), g) => {
                            AnswerValue::Grade(g.and_then(|g| g.parse().ok()).unwrap_or(0))
                        }
                        (interop::programme::ItemKind::Number, v) => AnswerValue::Number(
                            v.and_then(|v| v.parse().ok())
                                .unwrap_or(match item.link_id.as_str() {
                                    "temperature" => 36.8,
                                    "spo2" => 97.0,
                                    _ => 70.0,
                                }),
                        ),
                        (interop::programme::ItemKind::Bool, v) => {
                            AnswerValue::Bool(v == Some("oui"))
                        }
                        (interop::programme::ItemKind::Text, v) => {
                            AnswerValue::Text(v.unwrap_or("").into())
                        }
                    };
                    (item.link_id.clone(), value)
                })
                .collect();
            crate::services::monitoring::record(
                store, programme, &enrolment, &answers, None, &who, at,
            )
            .await
            .map_err(|e| anyhow::anyhow!("réponse de démo: {e}"))?;
        }
        let Some(alert) = store.alerts_of(patient).await?.into_iter().next() else {
            anyhow::bail!("la démo attendait une alerte pour le patient n° {index}");
        };
        for (hours, actor, action, note) in *steps {
            let outcome = action
                .strip_prefix("close:")
                .and_then(domain::monitoring::Outcome::from_code);
            let action = match *action {
                "take" => TriageAction::Take,
                "callback" => TriageAction::CallBack((*note).into()),
                "advise" => TriageAction::Advise((*note).into()),
                "escalate" => TriageAction::Escalate((*note).into()),
                _ => TriageAction::Close((*note).into()),
            };
            let at = alert.raised_at_ms + hours * HOUR;
            match store
                .triage_alert(alert.id, &action, outcome, &who, actor, None, at)
                .await
            {
                Ok(_) => {}
                Err(store::StoreError::Rule(e)) => anyhow::bail!("triage de démo refusé: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(created)
}

/// Made-up contact details for the `n`th demo patient (the first one also has a
/// *personne de confiance* and a GP), so that the record page shows them.
fn demo_demographics(n: usize, first: bool) -> domain::demographics::Demographics {
    use domain::demographics::{
        Address, AddressUse, Contact, ContactRole, Demographics, Gp, Relationship, Telecom,
        TelecomKind,
    };
    let mut d = Demographics {
        addresses: vec![Address {
            use_: AddressUse::Home,
            lines: vec![format!("{} rue de la République", 10 + n)],
            postal_code: Some("69002".into()),
            city: Some("Lyon".into()),
            country: Some("FRA".into()),
        }],
        telecoms: Telecom::parse(TelecomKind::Mobile, &format!("06000000{:02}", n % 100))
            .into_iter()
            .collect(),
        language: Some("fr".into()),
        ..Default::default()
    };
    if first {
        d.contacts.push(Contact {
            role: ContactRole::Trusted,
            relationship: Some(Relationship::Child),
            family: "Dupont".into(),
            given: Some("Claire".into()),
            phone: Some("0700000001".into()),
        });
        d.gp = luhn_digit("1000000100")
            .and_then(|k| domain::org::Rpps::parse(&format!("1000000100{k}")).ok())
            .map(|rpps| Gp {
                rpps,
                family: Some("BERNARD".into()),
                given: Some("Luc".into()),
            });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_identities_are_valid() {
        for (name, _, sex, date, place, order, ..) in PATIENTS {
            let ins = demo_ins(sex, date, place, order).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(ins.value().len(), 15);
        }
        let corsica = demo_ins(Sex::Female, (1965, 3, 18), "2A004", 119).unwrap();
        assert!(corsica.value().contains("2A"));
    }

    #[test]
    fn demo_rpps_pass_luhn() {
        for l in LOGINS {
            if let Some(b) = l.rpps_body {
                let rpps = format!("{b}{}", luhn_digit(b).unwrap());
                assert!(domain::org::Rpps::parse(&rpps).is_ok(), "{}", l.username);
            }
        }
    }

    #[test]
    fn the_demo_organisation_file_is_valid_and_names_the_demo_establishments() {
        let file = crate::orgfile::parse(ORGANISATION, &["oral-oncology", "infectious-home"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.territory_oid, DEMO_DOMAIN_OID);
        let finess: Vec<&str> = file
            .establishments
            .iter()
            .map(|e| e.finess.as_str())
            .collect();
        assert_eq!(
            finess,
            [
                CLINIC_FINESS,
                HOSPITAL_FINESS,
                SSR_TILLEULS_FINESS,
                SSR_LOIRE_FINESS,
                HAD_FINESS
            ]
        );
        let hospital = &file.establishments[1];
        assert!(
            hospital
                .senders
                .iter()
                .any(|s| s.application == HL7_APPLICATION && s.facility == HL7_FACILITY)
        );
        assert_eq!(file.establishments[2].activity, domain::org::Activity::Ssr);
        assert_eq!(file.establishments[4].activity, domain::org::Activity::Had);
    }
}
