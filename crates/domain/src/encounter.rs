//! Stays (encounters) and their movements, as IHE PAM France describes them: an
//! encounter's state is the fold of its movements that are not cancelled, in
//! time order. A cancel event (A11, A12, A13) only marks the movement it cancels;
//! the state is recomputed, so that "undo" is exact whatever came before.

/// What a movement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// A05: pre-admission.
    PreAdmission,
    /// A01 (inpatient) or A04 (outpatient registration).
    Admission,
    /// A02.
    Transfer,
    /// A03.
    Discharge,
    /// A06: outpatient becomes inpatient.
    ToInpatient,
    /// A07: inpatient becomes outpatient.
    ToOutpatient,
    /// A21: leave of absence.
    Leave,
    /// A22: return from leave.
    Return,
}

impl MovementKind {
    /// The movement an ADT trigger event inserts, and for cancel events the kind of
    /// movement they cancel: `(kind, is_cancel)`.
    pub fn from_event(event: &str) -> Option<(MovementKind, bool)> {
        use MovementKind::*;
        Some(match event {
            "A05" => (PreAdmission, false),
            "A01" | "A04" => (Admission, false),
            "A02" => (Transfer, false),
            "A03" => (Discharge, false),
            "A06" => (ToInpatient, false),
            "A07" => (ToOutpatient, false),
            "A21" => (Leave, false),
            "A22" => (Return, false),
            "A38" => (PreAdmission, true),
            "A11" => (Admission, true),
            "A12" => (Transfer, true),
            "A13" => (Discharge, true),
            "A52" => (Leave, true),
            "A53" => (Return, true),
            _ => return None,
        })
    }

    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            MovementKind::PreAdmission => "preadmission",
            MovementKind::Admission => "admission",
            MovementKind::Transfer => "transfer",
            MovementKind::Discharge => "discharge",
            MovementKind::ToInpatient => "to_inpatient",
            MovementKind::ToOutpatient => "to_outpatient",
            MovementKind::Leave => "leave",
            MovementKind::Return => "return",
        }
    }

    /// Reads a storage code.
    pub fn from_code(code: &str) -> Option<MovementKind> {
        use MovementKind::*;
        [
            PreAdmission,
            Admission,
            Transfer,
            Discharge,
            ToInpatient,
            ToOutpatient,
            Leave,
            Return,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// Where the patient is: unit (point of care), room, bed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Unit code (PV1-3.1).
    pub unit: Option<String>,
    /// Room (PV1-3.2).
    pub room: Option<String>,
    /// Bed (PV1-3.3).
    pub bed: Option<String>,
}

/// One movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// What it does.
    pub kind: MovementKind,
    /// When it happens (Unix ms).
    pub start_ms: i64,
    /// Where to (for admissions, transfers; others may repeat the current place).
    pub location: Location,
    /// Patient class carried by the message, if any.
    pub class: Option<String>,
    /// Cancelled by a later cancel event.
    pub cancelled: bool,
}

/// An encounter's status (FHIR Encounter.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncounterStatus {
    /// Pre-admitted.
    Planned,
    /// Admitted, in the establishment.
    InProgress,
    /// On leave of absence (the bed stays reserved).
    OnLeave,
    /// Discharged.
    Finished,
    /// Every movement cancelled.
    Cancelled,
}

impl EncounterStatus {
    /// FHIR code, also the storage code.
    pub fn code(self) -> &'static str {
        match self {
            EncounterStatus::Planned => "planned",
            EncounterStatus::InProgress => "in-progress",
            EncounterStatus::OnLeave => "onleave",
            EncounterStatus::Finished => "finished",
            EncounterStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a code.
    pub fn from_code(code: &str) -> Option<EncounterStatus> {
        use EncounterStatus::*;
        [Planned, InProgress, OnLeave, Finished, Cancelled]
            .into_iter()
            .find(|s| s.code() == code)
    }

    /// Whether the patient holds a bed.
    pub fn occupies_bed(self) -> bool {
        matches!(self, EncounterStatus::InProgress | EncounterStatus::OnLeave)
    }
}

/// An encounter's state, derived from its movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterState {
    /// Status.
    pub status: EncounterStatus,
    /// I, O, E...
    pub class: Option<String>,
    /// Current (or last) location.
    pub location: Location,
    /// First admission (or pre-admission) time.
    pub started_ms: Option<i64>,
    /// Discharge time.
    pub ended_ms: Option<i64>,
}

/// The state after the movements that are not cancelled, in time order (ties keep
/// the order given, i.e. arrival order).
pub fn fold(movements: &[Movement]) -> EncounterState {
    let mut active: Vec<&Movement> = movements.iter().filter(|m| !m.cancelled).collect();
    active.sort_by_key(|m| m.start_ms);
    let mut s = EncounterState {
        status: EncounterStatus::Cancelled,
        class: None,
        location: Location::default(),
        started_ms: None,
        ended_ms: None,
    };
    let merge_location = |current: &mut Location, new: &Location| {
        if new.unit.is_some() {
            *current = new.clone();
        }
    };
    for m in active {
        if let Some(c) = &m.class {
            s.class = Some(c.clone());
        }
        match m.kind {
            MovementKind::PreAdmission => {
                s.status = EncounterStatus::Planned;
                s.started_ms.get_or_insert(m.start_ms);
                merge_location(&mut s.location, &m.location);
            }
            MovementKind::Admission => {
                s.status = EncounterStatus::InProgress;
                s.started_ms = Some(m.start_ms);
                s.ended_ms = None;
                merge_location(&mut s.location, &m.location);
            }
            MovementKind::Transfer => merge_location(&mut s.location, &m.location),
            MovementKind::Discharge => {
                s.status = EncounterStatus::Finished;
                s.ended_ms = Some(m.start_ms);
            }
            MovementKind::ToInpatient => s.class = Some("I".into()),
            MovementKind::ToOutpatient => s.class = Some("O".into()),
            MovementKind::Leave => s.status = EncounterStatus::OnLeave,
            MovementKind::Return => s.status = EncounterStatus::InProgress,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use MovementKind::*;

    fn at(unit: &str, bed: &str) -> Location {
        Location {
            unit: Some(unit.into()),
            room: Some("1".into()),
            bed: Some(bed.into()),
        }
    }

    fn mv(kind: MovementKind, t: i64, loc: Location) -> Movement {
        Movement {
            kind,
            start_ms: t,
            location: loc,
            class: None,
            cancelled: false,
        }
    }

    #[test]
    fn a_stay_from_admission_to_discharge() {
        let mut ms = vec![mv(Admission, 10, at("URG", "1"))];
        ms[0].class = Some("E".into());
        let s = fold(&ms);
        assert_eq!(
            (s.status, s.location.unit.as_deref(), s.class.as_deref()),
            (EncounterStatus::InProgress, Some("URG"), Some("E"))
        );
        ms.push(mv(ToInpatient, 15, Location::default()));
        ms.push(mv(Transfer, 20, at("REA", "4")));
        let s = fold(&ms);
        assert_eq!(
            (s.location.bed.as_deref(), s.class.as_deref()),
            (Some("4"), Some("I"))
        );
        ms.push(mv(Leave, 25, Location::default()));
        assert_eq!(fold(&ms).status, EncounterStatus::OnLeave);
        assert!(fold(&ms).status.occupies_bed());
        ms.push(mv(Return, 27, Location::default()));
        ms.push(mv(Discharge, 30, Location::default()));
        let s = fold(&ms);
        assert_eq!(
            (s.status, s.started_ms, s.ended_ms),
            (EncounterStatus::Finished, Some(10), Some(30))
        );
        assert!(!s.status.occupies_bed());
        assert_eq!(
            s.location.unit.as_deref(),
            Some("REA"),
            "the last place is kept"
        );
    }

    #[test]
    fn cancels_undo_exactly_what_they_cancel() {
        let mut ms = vec![
            mv(Admission, 10, at("CHIR", "2")),
            mv(Transfer, 20, at("REA", "4")),
            mv(Discharge, 30, Location::default()),
        ];
        ms[2].cancelled = true; // A13
        let s = fold(&ms);
        assert_eq!(
            (s.status, s.location.unit.as_deref(), s.ended_ms),
            (EncounterStatus::InProgress, Some("REA"), None)
        );
        ms[1].cancelled = true; // A12
        assert_eq!(fold(&ms).location.unit.as_deref(), Some("CHIR"));
        ms[0].cancelled = true; // A11
        assert_eq!(fold(&ms).status, EncounterStatus::Cancelled);
    }

    #[test]
    fn movements_apply_in_time_order_and_preadmission_plans() {
        let ms = vec![
            mv(Transfer, 20, at("REA", "4")),
            mv(PreAdmission, 5, at("CHIR", "1")),
            mv(Admission, 10, at("CHIR", "2")),
        ];
        let s = fold(&ms);
        assert_eq!(
            (s.status, s.location.bed.as_deref(), s.started_ms),
            (EncounterStatus::InProgress, Some("4"), Some(10))
        );
        assert_eq!(fold(&ms[1..2]).status, EncounterStatus::Planned);
        assert_eq!(fold(&[]).status, EncounterStatus::Cancelled);
    }

    #[test]
    fn events_and_codes() {
        assert_eq!(MovementKind::from_event("A11"), Some((Admission, true)));
        assert_eq!(MovementKind::from_event("A04"), Some((Admission, false)));
        assert_eq!(MovementKind::from_event("A31"), None);
        for k in [
            PreAdmission,
            Admission,
            Transfer,
            Discharge,
            ToInpatient,
            ToOutpatient,
            Leave,
            Return,
        ] {
            assert_eq!(MovementKind::from_code(k.code()), Some(k));
        }
        for s in [
            EncounterStatus::Planned,
            EncounterStatus::InProgress,
            EncounterStatus::OnLeave,
            EncounterStatus::Finished,
            EncounterStatus::Cancelled,
        ] {
            assert_eq!(EncounterStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(MovementKind::from_code("x"), None);
    }
}
