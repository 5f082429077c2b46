//! Authorisation: the one place that answers "may this actor do this?".
//!
//! Territory (identity domain) > establishment > unit. Rules:
//! - A patient's **identity** (traits, INS, IPP) lives in the identity domain and is
//!   shared by design between the establishments of that domain: professionals with a
//!   care or administrative role in any establishment of the domain may search, read,
//!   create and update it, so that nobody creates a duplicate.
//! - A patient's **clinical data** is read and written only by establishments the
//!   patient is linked to (a stay, a consultation, an enrolment).
//! - A **merge** needs a merge role in an establishment linked to *each* record
//!   (an actor cannot pull a record it has no clinical right on into one it
//!   holds), and the survivor gains only the establishments where the merged
//!   record had real care ([`links_after_merge`]): a record created for the
//!   occasion brings no access with it.
//! - Nothing crosses territories. Coordinators see no patient data. A patient sees
//!   only their own record. Every decision names the grant used, for the audit trail.

use crate::ids::{ApiClientId, EstablishmentId, PatientId, TerritoryId, UserId};
use crate::org::Role;

/// A role held in one establishment (of one territory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Where.
    pub establishment: EstablishmentId,
    /// The establishment's territory.
    pub territory: TerritoryId,
    /// What.
    pub role: Role,
}

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A professional logged in with two factors.
    Professional(UserId),
    /// A patient logged in to the portal, bound to their record.
    Patient {
        /// The portal account.
        user: UserId,
        /// The record it belongs to.
        patient: PatientId,
    },
    /// A machine client with a bearer token.
    Client(ApiClientId),
}

/// An authenticated actor with the grants it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who.
    pub principal: Principal,
    /// Roles per establishment (empty for patients).
    pub grants: Vec<Grant>,
}

impl Actor {
    /// The establishments where this actor holds one of `roles`, in the order
    /// of their grants, each once.
    pub fn establishments_as(&self, roles: &[Role]) -> Vec<EstablishmentId> {
        let mut out: Vec<EstablishmentId> = Vec::new();
        for g in &self.grants {
            if roles.contains(&g.role) && !out.contains(&g.establishment) {
                out.push(g.establishment);
            }
        }
        out
    }
}

/// Why a page cannot show the establishment asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoEstablishment {
    /// The actor works in none with the roles the page needs.
    None,
    /// The one asked for is not theirs.
    NotTheirs,
}

/// Which of the actor's establishments (`mine`) a page shows: `wanted` when it
/// is one of them, else the first.
pub fn choose_establishment(
    mine: &[EstablishmentId],
    wanted: Option<EstablishmentId>,
) -> Result<EstablishmentId, NoEstablishment> {
    match (wanted, mine.first()) {
        (_, None) => Err(NoEstablishment::None),
        (Some(w), Some(_)) if mine.contains(&w) => Ok(w),
        (Some(_), Some(_)) => Err(NoEstablishment::NotTheirs),
        (None, Some(first)) => Ok(*first),
    }
}

/// What is done to a patient's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientAction {
    /// Search identities.
    Search,
    /// Read the identity (traits, INS, IPP).
    ReadIdentity,
    /// Create an identity.
    CreateIdentity,
    /// Update traits, INS or status.
    UpdateIdentity,
    /// Merge two identities (identity vigilance).
    Merge,
    /// Read clinical data (stays, documents, results).
    ReadClinical,
    /// Write clinical data.
    WriteClinical,
    /// Draft a document (letters, reports) for a carer to validate: the
    /// secretaries' part of writing.
    DraftDocument,
}

impl PatientAction {
    /// Audit code.
    pub fn code(self) -> &'static str {
        match self {
            PatientAction::Search => "search",
            PatientAction::ReadIdentity => "read",
            PatientAction::CreateIdentity => "create",
            PatientAction::UpdateIdentity => "update",
            PatientAction::Merge => "merge",
            PatientAction::ReadClinical => "read-clinical",
            PatientAction::WriteClinical => "write-clinical",
            PatientAction::DraftDocument => "draft-document",
        }
    }
}

/// Where a patient's record lives: its identity domain and the establishments it
/// is linked to. For a search or a creation, `patient` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientScope {
    /// The identity domain.
    pub territory: TerritoryId,
    /// Establishments with a care relationship.
    pub establishments: Vec<EstablishmentId>,
    /// The record, when one is targeted.
    pub patient: Option<PatientId>,
}

/// Actions on an establishment's own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstablishmentAction {
    /// Read the audit trail.
    ReadAudit,
    /// Create users and API clients, change roles.
    ManageUsers,
    /// Read the directory (establishments, units, practitioners).
    ReadDirectory,
    /// Browse the HL7 message log of the senders feeding the establishment.
    ReadMessages,
    /// Replay or purge (after review) an HL7 message of the establishment;
    /// revive or discard its outbound messages that failed for good.
    ManageMessages,
    /// Close, reopen and count beds of the establishment's units.
    ManageBeds,
    /// Book and cancel appointments on the establishment's agendas.
    ManageAppointments,
    /// Set the remote-monitoring team's opening hours and the doctors'
    /// on-call rota.
    ManageCareTeam,
    /// Read and export the monthly remote-monitoring statement (the billing
    /// office).
    ReadBilling,
}

/// The answer of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed through this grant (`None` for a patient acting on their own record).
    Allow(Option<Grant>),
    /// Refused, with the reason (French, safe to show).
    Deny(&'static str),
}

impl Decision {
    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

const IDENTITY_ROLES: [Role; 5] = [
    Role::Admin,
    Role::Doctor,
    Role::Nurse,
    Role::Secretary,
    Role::Integration,
];
const MERGE_ROLES: [Role; 3] = [Role::Admin, Role::Secretary, Role::Integration];
const CLINICAL_READ_ROLES: [Role; 4] = [
    Role::Doctor,
    Role::Nurse,
    Role::Secretary,
    Role::Integration,
];
const CLINICAL_WRITE_ROLES: [Role; 3] = [Role::Doctor, Role::Nurse, Role::Integration];
const DRAFT_ROLES: [Role; 3] = [Role::Doctor, Role::Nurse, Role::Secretary];

/// May `actor` do `action` on the patient record(s) described by `scope`?
pub fn authorize_patient(actor: &Actor, action: PatientAction, scope: &PatientScope) -> Decision {
    if let Principal::Patient { patient, .. } = actor.principal {
        let own = scope.patient == Some(patient);
        return match action {
            PatientAction::ReadIdentity | PatientAction::ReadClinical if own => {
                Decision::Allow(None)
            }
            _ => Decision::Deny("un patient n'accède qu'à son propre dossier, en lecture"),
        };
    }
    let linked = |g: &Grant| scope.establishments.contains(&g.establishment);
    let in_domain = |g: &Grant| g.territory == scope.territory;
    let pick = |roles: &[Role], place: &dyn Fn(&Grant) -> bool| {
        actor
            .grants
            .iter()
            .find(|g| roles.contains(&g.role) && place(g))
            .copied()
    };
    let found = match action {
        PatientAction::Search | PatientAction::CreateIdentity | PatientAction::UpdateIdentity => {
            pick(&IDENTITY_ROLES, &in_domain)
        }
        PatientAction::ReadIdentity => {
            pick(&IDENTITY_ROLES, &in_domain).or_else(|| pick(&[Role::BedManager], &linked))
        }
        PatientAction::Merge => pick(&MERGE_ROLES, &linked),
        PatientAction::ReadClinical => pick(&CLINICAL_READ_ROLES, &linked),
        PatientAction::WriteClinical => pick(&CLINICAL_WRITE_ROLES, &linked),
        PatientAction::DraftDocument => pick(&DRAFT_ROLES, &linked),
    };
    match found {
        Some(g) => Decision::Allow(Some(g)),
        None => Decision::Deny("aucun de vos rôles ne permet cette action sur ce dossier patient"),
    }
}

/// The establishments the survivor of a merge is linked to: its own links,
/// plus those of the merged record where it had real care (`merged_care`: a
/// stay, an appointment, an enrolment, a consultation or a document there).
/// A link the merged record got only by being created (or by an earlier
/// merge) does not widen who sees the survivor's clinical data.
pub fn links_after_merge(
    survivor: &[EstablishmentId],
    merged_links: &[EstablishmentId],
    merged_care: &[EstablishmentId],
) -> Vec<EstablishmentId> {
    let mut out = survivor.to_vec();
    for e in merged_links {
        if merged_care.contains(e) && !out.contains(e) {
            out.push(*e);
        }
    }
    out
}

/// May the integration feed (HL7 A40) of `establishment` merge two records
/// linked to `survivor_links` and `merged_links`? The rule of
/// [`PatientAction::Merge`] for a sender: its establishment must be linked to both.
pub fn feed_may_merge(
    establishment: EstablishmentId,
    survivor_links: &[EstablishmentId],
    merged_links: &[EstablishmentId],
) -> Result<(), &'static str> {
    if survivor_links.contains(&establishment) && merged_links.contains(&establishment) {
        Ok(())
    } else {
        Err("fusion refusée: l'établissement émetteur ne prend pas en charge les deux dossiers")
    }
}

/// Actions on an orientation request sent by `from` to `recipients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrientationAction {
    /// See the request (patient, needs, answers, timeline).
    View,
    /// Answer for this recipient establishment.
    Answer(EstablishmentId),
    /// Confirm a place or withdraw the request (the requesting side).
    Decide,
}

const ORIENTATION_ROLES: [Role; 5] = [
    Role::Doctor,
    Role::Nurse,
    Role::Secretary,
    Role::BedManager,
    Role::Admin,
];
const DECIDE_ROLES: [Role; 3] = [Role::Doctor, Role::Nurse, Role::Secretary];

/// May `actor` do `action` on a request from `from` to `recipients`? The request
/// shares the patient's identity and needs with the recipients by design: that is
/// what asking them for a place means.
pub fn authorize_orientation(
    actor: &Actor,
    action: OrientationAction,
    from: EstablishmentId,
    recipients: &[EstablishmentId],
) -> Decision {
    let found = actor.grants.iter().find(|g| match action {
        OrientationAction::View => {
            (ORIENTATION_ROLES.contains(&g.role) || g.role == Role::Integration)
                && (g.establishment == from || recipients.contains(&g.establishment))
        }
        OrientationAction::Answer(e) => {
            ORIENTATION_ROLES.contains(&g.role) && g.establishment == e && recipients.contains(&e)
        }
        OrientationAction::Decide => DECIDE_ROLES.contains(&g.role) && g.establishment == from,
    });
    match found {
        Some(g) => Decision::Allow(Some(*g)),
        None => Decision::Deny("action réservée aux établissements de la demande"),
    }
}

/// May `actor` administer `establishment` (of `territory`): its people, API
/// clients, units, senders and settings? An admin there may; so may an
/// administrator of its territory (`administered`: the territories the actor
/// administers), who needs no grant in the establishment (`Allow(None)`).
/// Patients and machine clients never administer.
pub fn authorize_administration(
    actor: &Actor,
    administered: &[TerritoryId],
    establishment: EstablishmentId,
    territory: TerritoryId,
) -> Decision {
    if !matches!(actor.principal, Principal::Professional(_)) {
        return Decision::Deny("administration réservée aux administrateurs");
    }
    if let Some(g) = actor
        .grants
        .iter()
        .find(|g| g.role == Role::Admin && g.establishment == establishment)
    {
        return Decision::Allow(Some(*g));
    }
    if administered.contains(&territory) {
        return Decision::Allow(None);
    }
    Decision::Deny(
        "administration réservée aux administrateurs de cet établissement ou du territoire",
    )
}

/// May `actor` do `action` in `establishment` (of `territory`)?
pub fn authorize_establishment(
    actor: &Actor,
    action: EstablishmentAction,
    establishment: EstablishmentId,
    territory: TerritoryId,
) -> Decision {
    let found = actor.grants.iter().find(|g| match action {
        EstablishmentAction::ReadAudit
        | EstablishmentAction::ManageUsers
        | EstablishmentAction::ReadMessages
        | EstablishmentAction::ManageMessages => {
            g.role == Role::Admin && g.establishment == establishment
        }
        EstablishmentAction::ReadDirectory => g.territory == territory,
        EstablishmentAction::ManageBeds => {
            matches!(g.role, Role::BedManager | Role::Admin) && g.establishment == establishment
        }
        EstablishmentAction::ReadBilling => {
            matches!(g.role, Role::Admin | Role::Secretary) && g.establishment == establishment
        }
        EstablishmentAction::ManageCareTeam => {
            matches!(g.role, Role::Admin | Role::Doctor | Role::Nurse)
                && g.establishment == establishment
        }
        EstablishmentAction::ManageAppointments => {
            matches!(
                g.role,
                Role::Secretary | Role::Doctor | Role::Nurse | Role::Admin | Role::Integration
            ) && g.establishment == establishment
        }
    });
    match found {
        Some(g) => Decision::Allow(Some(*g)),
        None => Decision::Deny("action réservée à un autre rôle ou un autre établissement"),
    }
}

#[cfg(test)]
mod tests {
    fn beds_manager_of(e: EstablishmentId, t: TerritoryId) -> Actor {
        pro(Role::BedManager, e, t)
    }

    use super::*;

    struct World {
        t1: TerritoryId,
        t2: TerritoryId,
        e1: EstablishmentId,
        e2: EstablishmentId,
        e3: EstablishmentId,
    }

    fn world() -> World {
        World {
            t1: TerritoryId::new(),
            t2: TerritoryId::new(),
            e1: EstablishmentId::new(),
            e2: EstablishmentId::new(),
            e3: EstablishmentId::new(),
        }
    }

    fn pro(role: Role, establishment: EstablishmentId, territory: TerritoryId) -> Actor {
        Actor {
            principal: Principal::Professional(UserId::new()),
            grants: vec![Grant {
                establishment,
                territory,
                role,
            }],
        }
    }

    const ACTIONS: [PatientAction; 8] = [
        PatientAction::Search,
        PatientAction::ReadIdentity,
        PatientAction::CreateIdentity,
        PatientAction::UpdateIdentity,
        PatientAction::Merge,
        PatientAction::ReadClinical,
        PatientAction::WriteClinical,
        PatientAction::DraftDocument,
    ];

    /// The expected answer for (role, action) when the actor's establishment is
    /// (linked, in the same domain). Written as a table so a change of rule shows.
    fn expected(role: Role, action: PatientAction, linked: bool, same_domain: bool) -> bool {
        use PatientAction::*;
        use Role::*;
        if !same_domain {
            return false;
        }
        match (role, action) {
            (Coordinator, _) => false,
            (BedManager, ReadIdentity) => linked,
            (BedManager, _) => false,
            // A merge pulls a record into another: clinical reach on each.
            (Admin | Secretary | Integration, Merge) => linked,
            (Doctor | Nurse, Merge) => false,
            (_, Search | ReadIdentity | CreateIdentity | UpdateIdentity) => true,
            (Admin, ReadClinical | WriteClinical) => false,
            (Secretary, ReadClinical) => linked,
            (Secretary, WriteClinical) => false,
            (Doctor | Nurse | Integration, ReadClinical | WriteClinical) => linked,
            (Doctor | Nurse | Secretary, DraftDocument) => linked,
            (Admin | Integration, DraftDocument) => false,
        }
    }

    #[test]
    fn matrix_of_roles_actions_and_places() {
        let w = world();
        // The patient lives in t1 and is linked to e1 only; e2 is another
        // establishment of the same domain, e3 is in another territory.
        let scope = PatientScope {
            territory: w.t1,
            establishments: vec![w.e1],
            patient: Some(PatientId::new()),
        };
        let places = [
            (w.e1, w.t1, true, true),
            (w.e2, w.t1, false, true),
            (w.e3, w.t2, false, false),
        ];
        let mut checked = 0;
        for role in Role::ALL {
            for action in ACTIONS {
                for (e, t, linked, same) in places {
                    let actor = pro(role, e, t);
                    let d = authorize_patient(&actor, action, &scope);
                    assert_eq!(
                        d.allowed(),
                        expected(role, action, linked, same),
                        "{role:?} {action:?} linked={linked} same_domain={same}"
                    );
                    if let Decision::Allow(Some(g)) = d {
                        assert_eq!(g.establishment, e);
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 7 * ACTIONS.len() * 3);
    }

    #[test]
    fn a_merge_brings_only_the_links_of_real_care() {
        let w = world();
        // The merged record was created at e2 (no care there) and had a stay at e3.
        let after = links_after_merge(&[w.e1], &[w.e2, w.e3, w.e1], &[w.e3, w.e1]);
        assert_eq!(after, vec![w.e1, w.e3]);
        // A throwaway record (created, never cared for) brings nothing.
        assert_eq!(links_after_merge(&[w.e1], &[w.e2], &[]), vec![w.e1]);
        // Care recorded somewhere the record is not linked to adds nothing either.
        assert_eq!(links_after_merge(&[w.e1], &[], &[w.e2]), vec![w.e1]);
    }

    #[test]
    fn a_feed_merges_only_records_its_establishment_cares_for() {
        let w = world();
        assert_eq!(feed_may_merge(w.e1, &[w.e1, w.e2], &[w.e1]), Ok(()));
        assert!(
            feed_may_merge(w.e1, &[w.e2], &[w.e1]).is_err(),
            "survivor not ours"
        );
        assert!(
            feed_may_merge(w.e1, &[w.e1], &[w.e2]).is_err(),
            "merged not ours"
        );
    }

    #[test]
    fn a_grant_in_another_territory_never_helps() {
        let w = world();
        let scope = PatientScope {
            territory: w.t1,
            establishments: vec![w.e3],
            patient: None,
        };
        // Even an establishment id listed as linked cannot be used from another domain
        // for identity work.
        let actor = pro(Role::Doctor, w.e3, w.t2);
        assert!(!authorize_patient(&actor, PatientAction::Search, &scope).allowed());
        assert!(!authorize_patient(&actor, PatientAction::UpdateIdentity, &scope).allowed());
    }

    #[test]
    fn the_decision_names_the_grant_that_allows() {
        let w = world();
        let actor = Actor {
            principal: Principal::Professional(UserId::new()),
            grants: vec![
                Grant {
                    establishment: w.e3,
                    territory: w.t2,
                    role: Role::Doctor,
                },
                Grant {
                    establishment: w.e2,
                    territory: w.t1,
                    role: Role::Nurse,
                },
            ],
        };
        let scope = PatientScope {
            territory: w.t1,
            establishments: vec![w.e2],
            patient: None,
        };
        assert_eq!(
            authorize_patient(&actor, PatientAction::WriteClinical, &scope),
            Decision::Allow(Some(Grant {
                establishment: w.e2,
                territory: w.t1,
                role: Role::Nurse
            }))
        );
    }

    #[test]
    fn patients_read_only_their_own_record() {
        let w = world();
        let me = PatientId::new();
        let actor = Actor {
            principal: Principal::Patient {
                user: UserId::new(),
                patient: me,
            },
            grants: vec![],
        };
        let mine = PatientScope {
            territory: w.t1,
            establishments: vec![w.e1],
            patient: Some(me),
        };
        let other = PatientScope {
            patient: Some(PatientId::new()),
            ..mine.clone()
        };
        for action in ACTIONS {
            let own_allowed = matches!(
                action,
                PatientAction::ReadIdentity | PatientAction::ReadClinical
            );
            assert_eq!(
                authorize_patient(&actor, action, &mine).allowed(),
                own_allowed,
                "{action:?}"
            );
            assert!(
                !authorize_patient(&actor, action, &other).allowed(),
                "{action:?}"
            );
        }
    }

    #[test]
    fn establishment_actions() {
        let w = world();
        let admin = pro(Role::Admin, w.e1, w.t1);
        let doctor = pro(Role::Doctor, w.e1, w.t1);
        assert!(
            authorize_establishment(&admin, EstablishmentAction::ReadAudit, w.e1, w.t1).allowed()
        );
        assert!(
            authorize_establishment(&admin, EstablishmentAction::ManageUsers, w.e1, w.t1).allowed()
        );
        assert!(
            !authorize_establishment(&admin, EstablishmentAction::ReadAudit, w.e2, w.t1).allowed()
        );
        assert!(
            !authorize_establishment(&doctor, EstablishmentAction::ReadAudit, w.e1, w.t1).allowed()
        );
        assert!(
            authorize_establishment(&admin, EstablishmentAction::ReadMessages, w.e1, w.t1)
                .allowed()
        );
        assert!(
            !authorize_establishment(&admin, EstablishmentAction::ReadMessages, w.e2, w.t1)
                .allowed()
        );
        assert!(
            !authorize_establishment(&doctor, EstablishmentAction::ReadMessages, w.e1, w.t1)
                .allowed()
        );
        assert!(
            authorize_establishment(&admin, EstablishmentAction::ManageMessages, w.e1, w.t1)
                .allowed()
        );
        assert!(
            !authorize_establishment(&admin, EstablishmentAction::ManageMessages, w.e2, w.t1)
                .allowed()
        );
        for who in [&doctor, &beds_manager_of(w.e1, w.t1)] {
            assert!(
                !authorize_establishment(who, EstablishmentAction::ManageMessages, w.e1, w.t1)
                    .allowed()
            );
        }
        let beds = pro(Role::BedManager, w.e1, w.t1);
        assert!(
            authorize_establishment(&beds, EstablishmentAction::ManageBeds, w.e1, w.t1).allowed()
        );
        assert!(
            authorize_establishment(&admin, EstablishmentAction::ManageBeds, w.e1, w.t1).allowed()
        );
        assert!(
            !authorize_establishment(&beds, EstablishmentAction::ManageBeds, w.e2, w.t1).allowed()
        );
        assert!(
            !authorize_establishment(&doctor, EstablishmentAction::ManageBeds, w.e1, w.t1)
                .allowed()
        );
        let coordinator = pro(Role::Coordinator, w.e1, w.t1);
        assert!(
            authorize_establishment(&coordinator, EstablishmentAction::ReadDirectory, w.e2, w.t1)
                .allowed()
        );
        assert!(
            !authorize_establishment(&coordinator, EstablishmentAction::ManageBeds, w.e1, w.t1)
                .allowed()
        );
        assert!(
            authorize_establishment(&doctor, EstablishmentAction::ReadDirectory, w.e2, w.t1)
                .allowed()
        );
        assert!(
            !authorize_establishment(&doctor, EstablishmentAction::ReadDirectory, w.e3, w.t2)
                .allowed()
        );
    }

    #[test]
    fn orientation_actions() {
        let w = world();
        let requester = pro(Role::Doctor, w.e1, w.t1);
        let recipient = pro(Role::Secretary, w.e2, w.t1);
        let outsider = pro(Role::Doctor, w.e3, w.t1);
        let coordinator = pro(Role::Coordinator, w.e2, w.t1);
        let to = [w.e2];
        use OrientationAction::*;
        assert!(authorize_orientation(&requester, View, w.e1, &to).allowed());
        assert!(authorize_orientation(&recipient, View, w.e1, &to).allowed());
        assert!(!authorize_orientation(&outsider, View, w.e1, &to).allowed());
        assert!(!authorize_orientation(&coordinator, View, w.e1, &to).allowed());
        let feed = pro(Role::Integration, w.e1, w.t1);
        assert!(
            authorize_orientation(&feed, View, w.e1, &to).allowed(),
            "the requester's integration client reads it"
        );
        assert!(!authorize_orientation(&feed, Decide, w.e1, &to).allowed());
        assert!(authorize_orientation(&recipient, Answer(w.e2), w.e1, &to).allowed());
        assert!(!authorize_orientation(&requester, Answer(w.e2), w.e1, &to).allowed());
        assert!(
            !authorize_orientation(&outsider, Answer(w.e3), w.e1, &to).allowed(),
            "not a recipient"
        );
        assert!(authorize_orientation(&requester, Decide, w.e1, &to).allowed());
        assert!(!authorize_orientation(&recipient, Decide, w.e1, &to).allowed());
        assert!(
            !authorize_orientation(&pro(Role::BedManager, w.e1, w.t1), Decide, w.e1, &to).allowed()
        );
    }

    #[test]
    fn action_codes_are_distinct() {
        let mut codes: Vec<_> = ACTIONS.iter().map(|a| a.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ACTIONS.len());
    }

    #[test]
    fn appointments_are_managed_by_the_establishment_s_care_and_desk_staff() {
        let w = world();
        for role in [
            Role::Secretary,
            Role::Doctor,
            Role::Nurse,
            Role::Admin,
            Role::Integration,
        ] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                authorize_establishment(&a, EstablishmentAction::ManageAppointments, w.e1, w.t1)
                    .allowed(),
                "{role:?}"
            );
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ManageAppointments, w.e2, w.t1)
                    .allowed(),
                "{role:?} elsewhere"
            );
        }
        for role in [Role::BedManager, Role::Coordinator] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ManageAppointments, w.e1, w.t1)
                    .allowed(),
                "{role:?}"
            );
        }
    }

    #[test]
    fn the_billing_statement_is_read_by_the_establishment_s_admin_and_desk() {
        let w = world();
        for role in [Role::Admin, Role::Secretary] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                authorize_establishment(&a, EstablishmentAction::ReadBilling, w.e1, w.t1).allowed(),
                "{role:?}"
            );
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ReadBilling, w.e2, w.t1)
                    .allowed(),
                "{role:?} elsewhere"
            );
        }
        for role in [
            Role::Doctor,
            Role::Nurse,
            Role::BedManager,
            Role::Coordinator,
            Role::Integration,
        ] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ReadBilling, w.e1, w.t1)
                    .allowed(),
                "{role:?}"
            );
        }
    }

    #[test]
    fn the_care_team_s_hours_and_rota_are_set_by_its_doctors_nurses_and_admin() {
        let w = world();
        for role in [Role::Doctor, Role::Nurse, Role::Admin] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                authorize_establishment(&a, EstablishmentAction::ManageCareTeam, w.e1, w.t1)
                    .allowed(),
                "{role:?}"
            );
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ManageCareTeam, w.e2, w.t1)
                    .allowed(),
                "{role:?} elsewhere"
            );
        }
        for role in [
            Role::Secretary,
            Role::BedManager,
            Role::Coordinator,
            Role::Integration,
        ] {
            let a = pro(role, w.e1, w.t1);
            assert!(
                !authorize_establishment(&a, EstablishmentAction::ManageCareTeam, w.e1, w.t1)
                    .allowed(),
                "{role:?}"
            );
        }
    }

    #[test]
    fn a_page_shows_the_establishment_asked_for_when_it_is_theirs_else_the_first() {
        let (a, b, c) = (
            EstablishmentId::new(),
            EstablishmentId::new(),
            EstablishmentId::new(),
        );
        let t = TerritoryId::new();
        let g = |establishment, role| Grant {
            establishment,
            territory: t,
            role,
        };
        let actor = Actor {
            principal: Principal::Professional(UserId::new()),
            grants: vec![
                g(a, Role::Secretary),
                g(b, Role::Admin),
                g(a, Role::Doctor),
                g(c, Role::Doctor),
            ],
        };
        assert_eq!(
            actor.establishments_as(&[Role::Doctor, Role::Secretary]),
            vec![a, c]
        );
        assert_eq!(actor.establishments_as(&[Role::Admin]), vec![b]);
        assert!(actor.establishments_as(&[Role::Nurse]).is_empty());
        let mine = [a, c];
        assert_eq!(choose_establishment(&mine, None), Ok(a));
        assert_eq!(choose_establishment(&mine, Some(c)), Ok(c));
        assert_eq!(
            choose_establishment(&mine, Some(b)),
            Err(NoEstablishment::NotTheirs)
        );
        assert_eq!(
            choose_establishment(&[], Some(a)),
            Err(NoEstablishment::None)
        );
    }

    #[test]
    fn administration_needs_an_admin_grant_there_or_the_territory() {
        let (t, other_t) = (TerritoryId::new(), TerritoryId::new());
        let (e, f) = (EstablishmentId::new(), EstablishmentId::new());
        let admin = pro(Role::Admin, e, t);
        assert_eq!(
            authorize_administration(&admin, &[], e, t),
            Decision::Allow(Some(admin.grants[0]))
        );
        // An admin of one establishment does not administer its neighbour.
        assert!(!authorize_administration(&admin, &[], f, t).allowed());
        // Other roles never administer, even where they work.
        for r in [
            Role::Doctor,
            Role::Nurse,
            Role::Secretary,
            Role::BedManager,
            Role::Coordinator,
        ] {
            assert!(
                !authorize_administration(&pro(r, e, t), &[], e, t).allowed(),
                "{r:?}"
            );
        }
        // A territory administrator administers every establishment of it, no other.
        let lone = Actor {
            principal: Principal::Professional(UserId::new()),
            grants: vec![],
        };
        assert_eq!(
            authorize_administration(&lone, &[t], f, t),
            Decision::Allow(None)
        );
        assert!(!authorize_administration(&lone, &[t], f, other_t).allowed());
        assert!(!authorize_administration(&lone, &[], f, t).allowed());
        // Machine clients and patients never, whatever they hold.
        let client = Actor {
            principal: Principal::Client(ApiClientId::new()),
            grants: admin.grants.clone(),
        };
        assert!(!authorize_administration(&client, &[t], e, t).allowed());
        let patient = Actor {
            principal: Principal::Patient {
                user: UserId::new(),
                patient: PatientId::new(),
            },
            grants: vec![],
        };
        assert!(!authorize_administration(&patient, &[t], e, t).allowed());
    }
}
