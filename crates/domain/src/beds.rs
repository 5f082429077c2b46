//! Bed availability: capacity, closed beds and occupied beds per unit, the rules
//! that keep them consistent, and how fresh a figure is. Occupancy comes from the
//! ADT feed where a unit has one (no double entry), otherwise from the bed manager.

/// Bed categories (the ROR distinguishes them; coordinators filter by them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BedCategory {
    /// Réanimation.
    Reanimation,
    /// Soins intensifs.
    SoinsIntensifs,
    /// Surveillance continue.
    SurveillanceContinue,
    /// Médecine.
    Medecine,
    /// Chirurgie.
    Chirurgie,
    /// Soins de suite et de réadaptation.
    Ssr,
    /// Hospitalisation à domicile (places).
    Had,
}

impl BedCategory {
    /// Every category, in display order.
    pub const ALL: [BedCategory; 7] = [
        BedCategory::Reanimation,
        BedCategory::SoinsIntensifs,
        BedCategory::SurveillanceContinue,
        BedCategory::Medecine,
        BedCategory::Chirurgie,
        BedCategory::Ssr,
        BedCategory::Had,
    ];

    /// Storage and URL code.
    pub fn code(self) -> &'static str {
        match self {
            BedCategory::Reanimation => "rea",
            BedCategory::SoinsIntensifs => "si",
            BedCategory::SurveillanceContinue => "sc",
            BedCategory::Medecine => "med",
            BedCategory::Chirurgie => "chir",
            BedCategory::Ssr => "ssr",
            BedCategory::Had => "had",
        }
    }

    /// Reads a code.
    pub fn from_code(code: &str) -> Option<BedCategory> {
        BedCategory::ALL.into_iter().find(|c| c.code() == code)
    }

    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            BedCategory::Reanimation => "Réanimation",
            BedCategory::SoinsIntensifs => "Soins intensifs",
            BedCategory::SurveillanceContinue => "Surveillance continue",
            BedCategory::Medecine => "Médecine",
            BedCategory::Chirurgie => "Chirurgie",
            BedCategory::Ssr => "SSR",
            BedCategory::Had => "HAD (places)",
        }
    }
}

/// Where the occupied count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccupancySource {
    /// Computed from stays fed by ADT messages.
    Adt,
    /// Entered by the bed manager.
    Manual,
}

impl OccupancySource {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            OccupancySource::Adt => "adt",
            OccupancySource::Manual => "manual",
        }
    }

    /// Reads a code.
    pub fn from_code(code: &str) -> Option<OccupancySource> {
        match code {
            "adt" => Some(OccupancySource::Adt),
            "manual" => Some(OccupancySource::Manual),
            _ => None,
        }
    }
}

/// A unit's beds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BedCounts {
    /// Beds the unit has.
    pub capacity: i64,
    /// Beds closed (staff, works, infection...).
    pub closed: i64,
    /// Beds occupied.
    pub occupied: i64,
}

/// A change the bed manager asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BedChange {
    /// Close `n` beds.
    Close(i64),
    /// Reopen `n` closed beds.
    Reopen(i64),
    /// Change the manual occupied count by `delta` (manual units only).
    Occupy(i64),
}

/// A change that would make the figures impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BedError {
    /// More closed and occupied beds than the unit has.
    #[error("impossible: {closed} lit(s) fermé(s) et {occupied} occupé(s) pour {capacity} lit(s)")]
    OverCapacity {
        /// Capacity.
        capacity: i64,
        /// Closed after the change.
        closed: i64,
        /// Occupied after the change.
        occupied: i64,
    },
    /// A count below zero.
    #[error("un nombre de lits ne peut pas être négatif")]
    Negative,
    /// Occupancy is fed by ADT: entering it by hand would count it twice.
    #[error("l'occupation de cette unité vient du flux ADT: elle ne se saisit pas à la main")]
    FedByAdt,
}

impl BedCounts {
    /// Free beds.
    pub fn available(&self) -> i64 {
        (self.capacity - self.closed - self.occupied).max(0)
    }

    /// Applies a change: closed and occupied beds never exceed the capacity, no count
    /// goes below zero, and an ADT-fed unit's occupancy is not entered by hand.
    pub fn apply(self, change: BedChange, source: OccupancySource) -> Result<BedCounts, BedError> {
        let next = match change {
            BedChange::Close(n) => BedCounts {
                closed: self.closed + n,
                ..self
            },
            BedChange::Reopen(n) => BedCounts {
                closed: self.closed - n,
                ..self
            },
            BedChange::Occupy(_) if source == OccupancySource::Adt => {
                return Err(BedError::FedByAdt);
            }
            BedChange::Occupy(d) => BedCounts {
                occupied: self.occupied + d,
                ..self
            },
        };
        if next.closed < 0 || next.occupied < 0 || next.capacity < 0 {
            return Err(BedError::Negative);
        }
        // Closing is refused beyond the free beds; an ADT feed may still report
        // more patients than beds (extra beds in a crisis): that is not refused.
        let grows = matches!(change, BedChange::Close(_) | BedChange::Occupy(1..));
        if grows && next.closed + next.occupied > next.capacity {
            return Err(BedError::OverCapacity {
                capacity: next.capacity,
                closed: next.closed,
                occupied: next.occupied,
            });
        }
        Ok(next)
    }
}

/// Whether a figure is recent enough to rely on: an ADT-fed unit is live; a
/// manual one is stale after `max_age_ms` without an update.
pub fn is_stale(
    source: OccupancySource,
    last_update_ms: i64,
    now_ms: i64,
    max_age_ms: i64,
) -> bool {
    source == OccupancySource::Manual && now_ms - last_update_ms > max_age_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use OccupancySource::*;

    const UNIT: BedCounts = BedCounts {
        capacity: 10,
        closed: 2,
        occupied: 6,
    };

    #[test]
    fn availability() {
        assert_eq!(UNIT.available(), 2);
        assert_eq!(
            BedCounts {
                capacity: 4,
                closed: 0,
                occupied: 6
            }
            .available(),
            0,
            "never negative"
        );
    }

    #[test]
    fn changes_follow_the_rules() {
        assert_eq!(
            UNIT.apply(BedChange::Close(2), Manual).unwrap().available(),
            0
        );
        assert_eq!(
            UNIT.apply(BedChange::Close(3), Manual),
            Err(BedError::OverCapacity {
                capacity: 10,
                closed: 5,
                occupied: 6
            })
        );
        assert_eq!(UNIT.apply(BedChange::Reopen(2), Adt).unwrap().closed, 0);
        assert_eq!(
            UNIT.apply(BedChange::Reopen(3), Adt),
            Err(BedError::Negative)
        );
        assert_eq!(
            UNIT.apply(BedChange::Occupy(1), Manual).unwrap().occupied,
            7
        );
        assert_eq!(
            UNIT.apply(BedChange::Occupy(-6), Manual).unwrap().occupied,
            0
        );
        assert_eq!(
            UNIT.apply(BedChange::Occupy(-7), Manual),
            Err(BedError::Negative)
        );
        assert!(UNIT.apply(BedChange::Occupy(3), Manual).is_err());
        assert_eq!(
            UNIT.apply(BedChange::Occupy(1), Adt),
            Err(BedError::FedByAdt)
        );
    }

    #[test]
    fn freshness_and_codes() {
        assert!(!is_stale(Adt, 0, 100_000_000, 1_000));
        assert!(is_stale(Manual, 0, 2_000, 1_000));
        assert!(!is_stale(Manual, 1_500, 2_000, 1_000));
        for c in BedCategory::ALL {
            assert_eq!(BedCategory::from_code(c.code()), Some(c));
        }
        assert_eq!(BedCategory::from_code("x"), None);
        assert_eq!(OccupancySource::from_code("adt"), Some(Adt));
        assert_eq!(OccupancySource::from_code("x"), None);
    }
}
