//! Clinical documents and where they go: the document types (with their LOINC
//! type code, DMP class code and default recipients), the draft → validated life
//! cycle, whether a patient's shared record (DMP) may be fed, and the feed rate
//! against the 98 % target. Pure: the store keeps documents, the server builds
//! the CDA and sends it.

use crate::{EstablishmentId, PatientId};

/// The DMP feed-rate target (pushed / eligible).
pub const FEED_TARGET: f64 = 0.98;

/// A document type (a template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Lettre de liaison à la sortie.
    LettreLiaison,
    /// Compte rendu opératoire.
    CrOperatoire,
    /// Compte rendu de consultation.
    CrConsultation,
    /// Ordonnance.
    Ordonnance,
    /// Compte rendu d'examens biologiques.
    CrBiologie,
}

/// Who a document goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The patient's portal.
    Patient,
    /// The general practitioner (médecin traitant), by secure messaging.
    Gp,
    /// The referring doctor, by secure messaging.
    Referrer,
    /// The shared medical record (DMP), over IHE MHD.
    Dmp,
}

impl Recipient {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Recipient::Patient => "patient",
            Recipient::Gp => "gp",
            Recipient::Referrer => "referrer",
            Recipient::Dmp => "dmp",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Recipient> {
        ALL_RECIPIENTS.into_iter().find(|r| r.code() == c)
    }
    /// For people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Recipient::Patient => "Patient (portail)",
            Recipient::Gp => "Médecin traitant",
            Recipient::Referrer => "Médecin adresseur",
            Recipient::Dmp => "DMP (Mon Espace Santé)",
        }
    }
}

/// Every recipient kind.
pub const ALL_RECIPIENTS: [Recipient; 4] = [
    Recipient::Patient,
    Recipient::Gp,
    Recipient::Referrer,
    Recipient::Dmp,
];

/// Every document type.
pub const ALL_KINDS: [Kind; 5] = [
    Kind::LettreLiaison,
    Kind::CrOperatoire,
    Kind::CrConsultation,
    Kind::Ordonnance,
    Kind::CrBiologie,
];

impl Kind {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::LettreLiaison => "lettre-liaison",
            Kind::CrOperatoire => "cr-operatoire",
            Kind::CrConsultation => "cr-consultation",
            Kind::Ordonnance => "ordonnance",
            Kind::CrBiologie => "cr-biologie",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Kind> {
        ALL_KINDS.into_iter().find(|k| k.code() == c)
    }
    /// Title for people.
    pub fn label_fr(self) -> &'static str {
        match self {
            Kind::LettreLiaison => "Lettre de liaison à la sortie",
            Kind::CrOperatoire => "Compte rendu opératoire",
            Kind::CrConsultation => "Compte rendu de consultation",
            Kind::Ordonnance => "Ordonnance",
            Kind::CrBiologie => "Compte rendu d'examens biologiques",
        }
    }
    /// LOINC type code and its display (CDA `code`, XDS typeCode).
    pub fn loinc(self) -> (&'static str, &'static str) {
        match self {
            Kind::LettreLiaison => (
                "11490-0",
                "Lettre de liaison à la sortie d'un établissement de soins",
            ),
            Kind::CrOperatoire => ("34874-8", "CR opératoire"),
            Kind::CrConsultation => ("11488-4", "CR de consultation"),
            Kind::Ordonnance => ("57833-6", "Prescription de médicaments"),
            Kind::CrBiologie => ("11502-2", "CR d'examens biologiques"),
        }
    }
    /// DMP class code (TRE_A03-ClasseDocument) derived from the type.
    pub fn class(self) -> (&'static str, &'static str) {
        match self {
            Kind::LettreLiaison | Kind::CrConsultation => ("11", "Synthèse"),
            Kind::CrOperatoire | Kind::CrBiologie => ("10", "Compte rendu"),
            Kind::Ordonnance => ("13", "Traitement/Soins"),
        }
    }
    /// Who it goes to unless someone unticks them.
    pub fn default_recipients(self) -> &'static [Recipient] {
        match self {
            Kind::LettreLiaison | Kind::CrOperatoire => &[
                Recipient::Patient,
                Recipient::Gp,
                Recipient::Referrer,
                Recipient::Dmp,
            ],
            Kind::CrConsultation | Kind::CrBiologie => {
                &[Recipient::Patient, Recipient::Gp, Recipient::Dmp]
            }
            Kind::Ordonnance => &[Recipient::Patient, Recipient::Dmp],
        }
    }
    /// The sections a draft starts with (headings; the record fills what it can).
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            Kind::LettreLiaison => &[
                "Motif d'hospitalisation",
                "Synthèse du séjour",
                "Traitement de sortie",
                "Suites à donner",
            ],
            Kind::CrOperatoire => &[
                "Indication",
                "Description de l'intervention",
                "Suites opératoires",
            ],
            Kind::CrConsultation => &["Motif", "Examen", "Conclusion"],
            Kind::Ordonnance => &["Prescription"],
            Kind::CrBiologie => &["Résultats", "Commentaire"],
        }
    }
}

/// Where a document is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being written (secretary drafts, doctor edits).
    Draft,
    /// Validated by a doctor: sent, no longer editable.
    Validated,
}

impl Status {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Validated => "validated",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<Status> {
        [Status::Draft, Status::Validated]
            .into_iter()
            .find(|s| s.code() == c)
    }
}

/// Why a document cannot be edited or validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Validated documents are not edited (a new version would be).
    #[error("ce document est validé : il ne se modifie plus")]
    AlreadyValidated,
    /// Only a doctor validates.
    #[error("seul un médecin valide un document")]
    NotADoctor,
    /// Nothing written.
    #[error("le document est vide")]
    Empty,
    /// No recipient.
    #[error("choisissez au moins un destinataire")]
    NoRecipient,
}

/// Whether a draft may be edited.
pub fn may_edit(status: Status) -> Result<(), DocumentError> {
    match status {
        Status::Draft => Ok(()),
        Status::Validated => Err(DocumentError::AlreadyValidated),
    }
}

/// Whether a document may be validated by this person now.
pub fn may_validate(
    status: Status,
    is_doctor: bool,
    body: &str,
    recipients: &[Recipient],
) -> Result<(), DocumentError> {
    may_edit(status)?;
    if !is_doctor {
        return Err(DocumentError::NotADoctor);
    }
    if body.trim().is_empty() {
        return Err(DocumentError::Empty);
    }
    if recipients.is_empty() {
        return Err(DocumentError::NoRecipient);
    }
    Ok(())
}

/// The patient's shared record, as the hospital knows it (ZFA in PAM France).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmpState {
    /// Not known.
    Unknown,
    /// The patient has no DMP.
    None,
    /// Open (ACTIF).
    Active,
    /// Closed (FERME).
    Closed,
}

impl DmpState {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            DmpState::Unknown => "unknown",
            DmpState::None => "none",
            DmpState::Active => "active",
            DmpState::Closed => "closed",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<DmpState> {
        [
            DmpState::Unknown,
            DmpState::None,
            DmpState::Active,
            DmpState::Closed,
        ]
        .into_iter()
        .find(|s| s.code() == c)
    }
    /// From ZFA-1 (`ACTIF`, `FERME`, `INEXISTANT`).
    pub fn from_zfa(v: &str) -> DmpState {
        match v {
            "ACTIF" => DmpState::Active,
            "FERME" => DmpState::Closed,
            "INEXISTANT" => DmpState::None,
            _ => DmpState::Unknown,
        }
    }
    /// For the patient banner.
    pub fn label_fr(self) -> &'static str {
        match self {
            DmpState::Unknown => "DMP : statut inconnu",
            DmpState::None => "Pas de DMP",
            DmpState::Active => "DMP ouvert",
            DmpState::Closed => "DMP fermé",
        }
    }
}

/// Why a document does not go to the DMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotEligible {
    /// The INS may be exchanged only when the identity is qualified.
    #[error("identité non qualifiée : l'INS ne peut pas être transmise")]
    IdentityNotQualified,
    /// The patient has opposed the feeding of their record.
    #[error("le patient s'est opposé à l'alimentation de son DMP")]
    Opposition,
    /// No open DMP.
    #[error("pas de DMP ouvert pour ce patient")]
    NoDmp,
    /// The patient refused that professionals consult their DMP (ZFA-11 `INC`).
    #[error("le patient n'a pas consenti à la consultation de son DMP")]
    NoConsultationConsent,
}

/// Whether this patient's DMP may be fed: a qualified identity, no opposition,
/// an open DMP. An unknown status counts as open: the DMP itself answers (Mon
/// Espace Santé opens one for everyone unless they opposed).
pub fn dmp_eligibility(
    identity_qualified: bool,
    state: DmpState,
    opposition: bool,
) -> Result<(), NotEligible> {
    if !identity_qualified {
        return Err(NotEligible::IdentityNotQualified);
    }
    if opposition {
        return Err(NotEligible::Opposition);
    }
    match state {
        DmpState::Active | DmpState::Unknown => Ok(()),
        DmpState::None | DmpState::Closed => Err(NotEligible::NoDmp),
    }
}

/// Whether a professional may look this patient's DMP up: by INS, so only for
/// a qualified identity; not when the patient refused consultation (`consent`
/// `Some(false)`; not collected leaves it to the DMP, which enforces its own
/// rules); and only when a DMP may exist (not "none", not closed; unknown asks
/// the DMP, which answers). The opposition to *feeding* does not forbid reading.
pub fn dmp_consultable(
    identity_qualified: bool,
    state: DmpState,
    consent: Option<bool>,
) -> Result<(), NotEligible> {
    if !identity_qualified {
        return Err(NotEligible::IdentityNotQualified);
    }
    if consent == Some(false) {
        return Err(NotEligible::NoConsultationConsent);
    }
    match state {
        DmpState::Active | DmpState::Unknown => Ok(()),
        DmpState::None | DmpState::Closed => Err(NotEligible::NoDmp),
    }
}

/// The feed rate: documents pushed to the DMP among those eligible (`None` when
/// nothing was eligible), and whether it meets the target.
pub fn feed_rate(pushed: u64, eligible: u64) -> Option<(f64, bool)> {
    if eligible == 0 {
        return None;
    }
    let rate = pushed.min(eligible) as f64 / eligible as f64;
    Some((rate, rate >= FEED_TARGET))
}

/// How a patient is named in a document received from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPatient {
    /// The INS the document carries (matricule), if any.
    pub ins: Option<String>,
    /// Birth name.
    pub birth_name: String,
    /// First birth given name.
    pub given: String,
    /// Birth date.
    pub birth_date: jiff::civil::Date,
    /// Sex, when given.
    pub sex: Option<crate::identity::Sex>,
}

/// Whose a received document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The patient whose qualified INS the document carries.
    Ins(crate::PatientId),
    /// The one patient with the same birth name, first given name, birth date
    /// and sex (and no other INS).
    Traits(crate::PatientId),
    /// Nobody for sure: a human decides; why.
    Queue(String),
}

/// Whether the document's birth name and birth date are the record's (what
/// must agree with an INS before a document is filed by it).
pub fn ins_traits_agree(named: &NamedPatient, t: &crate::identity::Traits) -> bool {
    use crate::identity::normalize_name;
    normalize_name(&named.birth_name) == normalize_name(&t.birth_name)
        && named.birth_date == t.birth_date
}

/// Whether a record carries the document's traits: birth name and first given
/// name (accents, case, hyphens ignored), birth date, and sex when both say it.
pub fn same_traits(named: &NamedPatient, t: &crate::identity::Traits) -> bool {
    use crate::identity::{Sex, normalize_name};
    let first = t
        .birth_given_names
        .first()
        .map(String::as_str)
        .unwrap_or("");
    normalize_name(&named.birth_name) == normalize_name(&t.birth_name)
        && normalize_name(&named.given) == normalize_name(first)
        && named.birth_date == t.birth_date
        && match named.sex {
            Some(s) if s != Sex::Unknown && t.sex != Sex::Unknown => s == t.sex,
            _ => true,
        }
}

/// Decides whose a received document is (identity vigilance): the qualified
/// identity carrying its INS, when its birth name and birth date agree with
/// the document's; else the single record with its traits, unless that record
/// carries another INS; else nobody, and a human decides. `by_ins` is the
/// qualified record found by the document's INS with whether the birth name and
/// date agree; `candidates` the active records with the same traits, with
/// their INS.
pub fn match_received(
    named: &NamedPatient,
    by_ins: Option<(crate::PatientId, bool)>,
    candidates: &[(crate::PatientId, Option<String>)],
) -> Matched {
    match by_ins {
        Some((p, true)) => return Matched::Ins(p),
        Some((_, false)) => {
            return Matched::Queue(
                "l'INS du document désigne un patient dont le nom ou la date de naissance diffère"
                    .into(),
            );
        }
        None => {}
    }
    let compatible: Vec<_> = candidates
        .iter()
        .filter(|(_, ins)| match (&named.ins, ins) {
            (Some(doc), Some(rec)) => doc == rec,
            _ => true,
        })
        .collect();
    match compatible.as_slice() {
        [(p, _)] => Matched::Traits(*p),
        [] if candidates.is_empty() => Matched::Queue(
            if named.ins.is_some() {
                "aucune identité qualifiée ne porte cette INS et aucun patient ne porte ces traits"
            } else {
                "aucun patient ne porte ces traits"
            }
            .into(),
        ),
        [] => Matched::Queue("le patient qui porte ces traits a une autre INS".into()),
        _ => Matched::Queue(format!("{} patients portent ces traits", compatible.len())),
    }
}

/// The document a received correction names, as held here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// Whose it is.
    pub patient: PatientId,
    /// Where it was filed.
    pub establishment: EstablishmentId,
    /// Whether a later version already replaced it.
    pub superseded: bool,
}

/// May a document received for `patient` at `establishment` replace `old`
/// (the version it names)? Only a document of the same patient, filed by the
/// same establishment, and not already replaced: otherwise anyone able to
/// submit a document could hide someone else's. The reason is safe to show.
pub fn may_replace(
    old: &Replaced,
    patient: PatientId,
    establishment: EstablishmentId,
) -> Result<(), &'static str> {
    if old.patient != patient {
        return Err("le document remplacé concerne un autre patient");
    }
    if old.establishment != establishment {
        return Err("le document remplacé a été classé par un autre établissement");
    }
    if old.superseded {
        return Err("le document remplacé l'est déjà par une autre version");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_replaces_only_the_same_patients_document_filed_here() {
        let (p, q) = (PatientId::new(), PatientId::new());
        let (e, f) = (EstablishmentId::new(), EstablishmentId::new());
        let old = Replaced {
            patient: p,
            establishment: e,
            superseded: false,
        };
        assert_eq!(may_replace(&old, p, e), Ok(()));
        assert!(
            may_replace(&old, q, e)
                .unwrap_err()
                .contains("autre patient")
        );
        assert!(
            may_replace(&old, p, f)
                .unwrap_err()
                .contains("autre établissement")
        );
        let done = Replaced {
            superseded: true,
            ..old
        };
        assert!(may_replace(&done, p, e).unwrap_err().contains("déjà"));
    }

    #[test]
    fn codes_read_back_and_every_type_has_its_loinc_and_recipients() {
        for k in ALL_KINDS {
            assert_eq!(Kind::from_code(k.code()), Some(k));
            assert!(k.loinc().0.contains('-'));
            assert!(k.default_recipients().contains(&Recipient::Dmp), "{k:?}");
            assert!(k.default_recipients().contains(&Recipient::Patient));
            assert!(!k.sections().is_empty());
        }
        for r in ALL_RECIPIENTS {
            assert_eq!(Recipient::from_code(r.code()), Some(r));
        }
        assert_eq!(Kind::from_code("memo"), None);
        assert_eq!(Kind::LettreLiaison.loinc().0, "11490-0");
        assert_eq!(Kind::CrOperatoire.loinc().0, "34874-8");
        assert_eq!(Kind::CrBiologie.loinc().0, "11502-2");
        assert!(
            !Kind::Ordonnance
                .default_recipients()
                .contains(&Recipient::Gp)
        );
        for s in [Status::Draft, Status::Validated] {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn only_a_doctor_validates_a_written_draft_with_recipients() {
        let r = [Recipient::Dmp];
        assert_eq!(may_validate(Status::Draft, true, "Texte", &r), Ok(()));
        assert_eq!(
            may_validate(Status::Draft, false, "Texte", &r),
            Err(DocumentError::NotADoctor)
        );
        assert_eq!(
            may_validate(Status::Draft, true, "  ", &r),
            Err(DocumentError::Empty)
        );
        assert_eq!(
            may_validate(Status::Draft, true, "Texte", &[]),
            Err(DocumentError::NoRecipient)
        );
        assert_eq!(
            may_validate(Status::Validated, true, "Texte", &r),
            Err(DocumentError::AlreadyValidated)
        );
        assert_eq!(may_edit(Status::Draft), Ok(()));
        assert_eq!(
            may_edit(Status::Validated),
            Err(DocumentError::AlreadyValidated)
        );
    }

    #[test]
    fn the_dmp_is_fed_only_for_a_qualified_identity_without_opposition() {
        assert_eq!(dmp_eligibility(true, DmpState::Active, false), Ok(()));
        assert_eq!(dmp_eligibility(true, DmpState::Unknown, false), Ok(()));
        assert_eq!(
            dmp_eligibility(false, DmpState::Active, false),
            Err(NotEligible::IdentityNotQualified)
        );
        assert_eq!(
            dmp_eligibility(true, DmpState::Active, true),
            Err(NotEligible::Opposition)
        );
        assert_eq!(
            dmp_eligibility(true, DmpState::None, false),
            Err(NotEligible::NoDmp)
        );
        assert_eq!(
            dmp_eligibility(true, DmpState::Closed, false),
            Err(NotEligible::NoDmp)
        );
        assert_eq!(DmpState::from_zfa("ACTIF"), DmpState::Active);
        assert_eq!(DmpState::from_zfa("FERME"), DmpState::Closed);
        assert_eq!(DmpState::from_zfa("INEXISTANT"), DmpState::None);
        assert_eq!(DmpState::from_zfa(""), DmpState::Unknown);
        for s in [
            DmpState::Unknown,
            DmpState::None,
            DmpState::Active,
            DmpState::Closed,
        ] {
            assert_eq!(DmpState::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn the_feed_rate_is_measured_against_98_percent() {
        assert_eq!(feed_rate(0, 0), None);
        assert_eq!(feed_rate(98, 100), Some((0.98, true)));
        assert_eq!(feed_rate(97, 100), Some((0.97, false)));
        assert_eq!(feed_rate(5, 4), Some((1.0, true)), "capped at 100 %");
    }

    fn named(ins: Option<&str>) -> NamedPatient {
        NamedPatient {
            ins: ins.map(str::to_owned),
            birth_name: "Lambért".into(),
            given: "monique".into(),
            birth_date: jiff::civil::date(1961, 4, 12),
            sex: Some(crate::identity::Sex::Female),
        }
    }

    #[test]
    fn traits_match_ignoring_accents_and_case_but_not_the_date_or_sex() {
        use crate::identity::{Sex, Traits};
        let t = Traits {
            birth_name: "LAMBERT".into(),
            birth_given_names: vec!["Monique".into(), "Jeanne".into()],
            birth_date: jiff::civil::date(1961, 4, 12),
            sex: Sex::Female,
            birthplace_code: None,
            used_name: Some("DURAND".into()),
            used_given_name: None,
        };
        assert!(same_traits(&named(None), &t));
        let mut other = named(None);
        other.birth_date = jiff::civil::date(1961, 4, 13);
        assert!(!same_traits(&other, &t));
        let mut other = named(None);
        other.sex = Some(Sex::Male);
        assert!(!same_traits(&other, &t));
        let mut other = named(None);
        other.sex = None;
        assert!(same_traits(&other, &t), "sex unsaid: not held against");
        let mut other = named(None);
        other.given = "Jeanne".into();
        assert!(!same_traits(&other, &t), "the first given name, not any");
        let mut other = named(None);
        other.birth_name = "DURAND".into();
        assert!(!same_traits(&other, &t), "the birth name, not the used one");
    }

    #[test]
    fn a_received_document_goes_by_ins_then_traits_then_to_a_human() {
        let (a, b) = (crate::PatientId::new(), crate::PatientId::new());
        let ins = "279035121518989";
        assert_eq!(
            match_received(&named(Some(ins)), Some((a, true)), &[(b, None)]),
            Matched::Ins(a)
        );
        // The INS names someone else by name or birth date: a human looks.
        assert_eq!(
            match_received(&named(Some(ins)), Some((a, false)), &[]),
            Matched::Queue(
                "l'INS du document désigne un patient dont le nom ou la date de naissance diffère"
                    .into()
            )
        );
        assert_eq!(
            match_received(&named(None), None, &[(b, None)]),
            Matched::Traits(b)
        );
        // The same INS on the record found by traits (not qualified, say).
        assert_eq!(
            match_received(&named(Some(ins)), None, &[(b, Some(ins.into()))]),
            Matched::Traits(b)
        );
        assert_eq!(
            match_received(
                &named(Some(ins)),
                None,
                &[(b, Some("180000000000000".into()))]
            ),
            Matched::Queue("le patient qui porte ces traits a une autre INS".into())
        );
        assert_eq!(
            match_received(&named(None), None, &[(a, None), (b, None)]),
            Matched::Queue("2 patients portent ces traits".into())
        );
        assert_eq!(
            match_received(&named(None), None, &[]),
            Matched::Queue("aucun patient ne porte ces traits".into())
        );
        assert_eq!(
            match_received(&named(Some(ins)), None, &[]),
            Matched::Queue(
                "aucune identité qualifiée ne porte cette INS et aucun patient ne porte ces traits"
                    .into()
            )
        );
    }

    #[test]
    fn the_dmp_is_consulted_only_for_a_qualified_identity_with_a_dmp() {
        use DmpState::*;
        assert_eq!(dmp_consultable(true, Active, Some(true)), Ok(()));
        assert_eq!(
            dmp_consultable(true, Active, Option::None),
            Ok(()),
            "not collected"
        );
        assert_eq!(
            dmp_consultable(true, Unknown, Option::None),
            Ok(()),
            "the DMP answers"
        );
        assert_eq!(
            dmp_consultable(true, None, Option::None),
            Err(NotEligible::NoDmp)
        );
        assert_eq!(
            dmp_consultable(true, Closed, Some(true)),
            Err(NotEligible::NoDmp)
        );
        assert_eq!(
            dmp_consultable(true, Active, Some(false)),
            Err(NotEligible::NoConsultationConsent)
        );
        assert_eq!(
            dmp_consultable(false, Active, Some(true)),
            Err(NotEligible::IdentityNotQualified)
        );
    }
}
