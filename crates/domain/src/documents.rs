//! Clinical documents and where they go: the document types (with their LOINC
//! type code, DMP class code and default recipients), the draft → validated life
//! cycle, whether a patient's shared record (DMP) may be fed, and the feed rate
//! against the 98 % target. Pure: the store keeps documents, the server builds
//! the CDA and sends it.

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

/// The feed rate: documents pushed to the DMP among those eligible (`None` when
/// nothing was eligible), and whether it meets the target.
pub fn feed_rate(pushed: u64, eligible: u64) -> Option<(f64, bool)> {
    if eligible == 0 {
        return None;
    }
    let rate = pushed.min(eligible) as f64 / eligible as f64;
    Some((rate, rate >= FEED_TARGET))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
