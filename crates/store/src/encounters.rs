//! Stays and movements. A movement is applied inside the transaction of the ADT
//! message that carries it (see `apply_movement_tx!`, used by the HL7 feed); the
//! encounter row is then recomputed from all its movements with
//! [`domain::encounter::fold`], so that cancellations undo exactly.

use domain::encounter::{EncounterStatus, Location, MovementKind};
use domain::{EncounterId, EstablishmentId, PatientId};

use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::{Tx, q};
use crate::{Result, Store, StoreError};

/// A movement carried by an ADT message.
#[derive(Debug, Clone)]
pub struct MovementFeed {
    /// Establishment of the stay.
    pub establishment: EstablishmentId,
    /// PV1-19 visit number.
    pub visit_number: String,
    /// What it does (for a cancel: the kind it cancels).
    pub kind: MovementKind,
    /// Whether this cancels a movement.
    pub cancel: bool,
    /// ZBE-1 movement id (for a cancel: the movement cancelled), when sent.
    pub movement_id: Option<String>,
    /// The trigger event (`A02`).
    pub trigger: String,
    /// ZBE-2 (or EVN) time, Unix ms.
    pub start_ms: i64,
    /// PV1-3.
    pub location: Location,
    /// PV1-2.
    pub class: Option<String>,
}

/// A stay as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterRecord {
    /// Id.
    pub id: EncounterId,
    /// Patient.
    pub patient: PatientId,
    /// Establishment.
    pub establishment: EstablishmentId,
    /// Visit number.
    pub visit_number: String,
    /// Status.
    pub status: EncounterStatus,
    /// Patient class.
    pub class: Option<String>,
    /// Current location.
    pub location: Location,
    /// Start (Unix ms).
    pub started_at_ms: Option<i64>,
    /// End (Unix ms).
    pub ended_at_ms: Option<i64>,
    /// Version.
    pub version: i64,
    /// Last change (Unix ms): FHIR `meta.lastUpdated`.
    pub updated_at_ms: i64,
}

db_row! {
    pub(crate) struct MovementRow {
        kind: String,
        start_ms: i64,
        unit: Option<String>,
        room: Option<String>,
        bed: Option<String>,
        class: Option<String>,
        cancelled: bool,
    }
}

impl TryFrom<MovementRow> for domain::encounter::Movement {
    type Error = StoreError;
    fn try_from(r: MovementRow) -> Result<Self> {
        Ok(domain::encounter::Movement {
            kind: MovementKind::from_code(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("mouvement {:?}", r.kind)))?,
            start_ms: r.start_ms,
            location: Location {
                unit: r.unit,
                room: r.room,
                bed: r.bed,
            },
            class: r.class,
            cancelled: r.cancelled,
        })
    }
}

db_row! {
    struct EncounterRow {
        id: String,
        patient_id: String,
        establishment_id: String,
        visit_number: String,
        status: String,
        class: Option<String>,
        unit: Option<String>,
        room: Option<String>,
        bed: Option<String>,
        started_at_ms: Option<i64>,
        ended_at_ms: Option<i64>,
        version: i64,
        updated_at_ms: i64,
    }
}

impl TryFrom<EncounterRow> for EncounterRecord {
    type Error = StoreError;
    fn try_from(r: EncounterRow) -> Result<Self> {
        Ok(EncounterRecord {
            id: parse_id(&r.id)?,
            patient: parse_id(&r.patient_id)?,
            establishment: parse_id(&r.establishment_id)?,
            visit_number: r.visit_number,
            status: EncounterStatus::from_code(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("statut {:?}", r.status)))?,
            class: r.class,
            location: Location {
                unit: r.unit,
                room: r.room,
                bed: r.bed,
            },
            started_at_ms: r.started_at_ms,
            ended_at_ms: r.ended_at_ms,
            version: r.version,
            updated_at_ms: r.updated_at_ms,
        })
    }
}

const ENCOUNTER_COLUMNS: &str = "id, patient_id, establishment_id, visit_number, status, class, unit, room, bed, started_at_ms, ended_at_ms, version, updated_at_ms";

/// The stay of `mv`'s visit number: found (it must be `patient`'s), or
/// opened (not for a cancellation). Its id.
async fn stay_of(
    tx: &mut Tx<'_>,
    patient: domain::PatientId,
    mv: &MovementFeed,
    now_ms: i64,
) -> Result<String> {
    let found = q(
        "SELECT id, patient_id FROM encounters WHERE establishment_id = $1 AND visit_number = $2",
    )
    .bind(mv.establishment.to_string())
    .bind(&mv.visit_number)
    .fetch_optional(tx)
    .await?;
    Ok(match found {
        Some(row) => {
            if row.get::<String>("patient_id")? != patient.to_string() {
                return Err(crate::StoreError::Conflict(
                    crate::Conflict::VisitOfAnotherPatient(mv.visit_number.clone()),
                ));
            }
            row.get("id")?
        }
        None if mv.cancel => {
            return Err(crate::StoreError::Conflict(crate::Conflict::UnknownVisit(
                mv.visit_number.clone(),
            )));
        }
        None => {
            let id = domain::EncounterId::new().to_string();
            q(
                "INSERT INTO encounters (id, patient_id, establishment_id, visit_number, status, version, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, 'planned', 0, $5)",
            )
            .bind(&id)
            .bind(patient.to_string())
            .bind(mv.establishment.to_string())
            .bind(&mv.visit_number)
            .bind(now_ms)
            .execute(tx)
            .await?;
            id
        }
    })
}

/// Recomputes a stay from its movements (`domain::encounter::fold`).
async fn recompute(tx: &mut Tx<'_>, encounter: &str, now_ms: i64) -> Result<()> {
    let rows = q(
        "SELECT kind, start_ms, unit, room, bed, class, cancelled FROM movements WHERE encounter_id = $1 ORDER BY start_ms, created_at_ms, id",
    )
    .bind(encounter)
    .fetch_all(tx)
    .await?;
    let movements = crate::tx::rows_to::<crate::encounters::MovementRow>(&rows)?
        .into_iter()
        .map(domain::encounter::Movement::try_from)
        .collect::<Result<Vec<_>, crate::StoreError>>()?;
    let state = domain::encounter::fold(&movements);
    q(
        "UPDATE encounters SET status = $1, class = $2, unit = $3, room = $4, bed = $5, started_at_ms = $6, ended_at_ms = $7, \
         version = version + 1, updated_at_ms = $8 WHERE id = $9",
    )
    .bind(state.status.code())
    .bind(&state.class)
    .bind(&state.location.unit)
    .bind(&state.location.room)
    .bind(&state.location.bed)
    .bind(state.started_ms)
    .bind(state.ended_ms)
    .bind(now_ms)
    .bind(encounter)
    .execute(tx)
    .await?;
    Ok(())
}

/// Applies a movement for `patient` inside `tx`: finds or opens the stay, inserts
/// or cancels the movement, recomputes the stay. Evaluates to the encounter id;
/// returns early with a conflict when the stay belongs to another patient, or the
/// movement to cancel does not exist, or a movement id is reused.
pub(crate) async fn apply_movement(
    tx: &mut Tx<'_>,
    patient: domain::PatientId,
    mv: &MovementFeed,
    now_ms: i64,
) -> Result<EncounterId> {
    let encounter = stay_of(tx, patient, mv, now_ms).await?;
    if mv.cancel {
        let r = q(
            "UPDATE movements SET cancelled = $1 WHERE id = (SELECT id FROM movements WHERE encounter_id = $2 AND kind = $3 \
             AND cancelled = $4 AND ($5 IS NULL OR movement_id = $5) ORDER BY start_ms DESC, created_at_ms DESC LIMIT 1)",
        )
        .bind(true)
        .bind(&encounter)
        .bind(mv.kind.code())
        .bind(false)
        .bind(&mv.movement_id)
        .execute(tx)
        .await?;
        if r == 0 {
            return Err(crate::StoreError::Conflict(
                crate::Conflict::UnknownMovement(mv.visit_number.clone()),
            ));
        }
    } else {
        let movement_id = mv
            .movement_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        q(
            "INSERT INTO movements (id, encounter_id, movement_id, kind, trigger_event, start_ms, unit, room, bed, class, cancelled, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&encounter)
        .bind(&movement_id)
        .bind(mv.kind.code())
        .bind(&mv.trigger)
        .bind(mv.start_ms)
        .bind(&mv.location.unit)
        .bind(&mv.location.room)
        .bind(&mv.location.bed)
        .bind(&mv.class)
        .bind(false)
        .bind(now_ms)
        .execute(tx)
        .await?;
    }
    recompute(tx, &encounter, now_ms).await?;
    crate::orgs::parse_id::<domain::EncounterId>(&encounter)
}

/// A bed held by a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedOccupancy {
    /// The stay.
    pub encounter: EncounterId,
    /// The patient.
    pub patient: PatientId,
    /// Where.
    pub location: Location,
    /// In progress or on leave.
    pub status: EncounterStatus,
}

impl Store {
    /// The stays of a patient, newest first.
    pub async fn encounters_of(&self, patient: PatientId) -> Result<Vec<EncounterRecord>> {
        let sql = format!(
            "SELECT {ENCOUNTER_COLUMNS} FROM encounters WHERE patient_id = $1 ORDER BY started_at_ms DESC, id DESC"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, EncounterRow>(&rows)?
                .into_iter()
                .map(EncounterRecord::try_from)
                .collect()
        })
    }

    /// One stay.
    pub async fn encounter(&self, id: EncounterId) -> Result<EncounterRecord> {
        let sql = format!("SELECT {ENCOUNTER_COLUMNS} FROM encounters WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, EncounterRow>(&rows)?
                .into_iter()
                .next()
                .map(EncounterRecord::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// The beds held now in an establishment (stays in progress or on leave with a bed).
    pub async fn occupancy(&self, establishment: EstablishmentId) -> Result<Vec<BedOccupancy>> {
        let sql = format!(
            "SELECT {ENCOUNTER_COLUMNS} FROM encounters WHERE establishment_id = $1 AND status IN ('in-progress', 'onleave') \
             AND bed IS NOT NULL ORDER BY unit, room, bed"
        );
        let list: Vec<EncounterRecord> = on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(establishment.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, EncounterRow>(&rows)?
                .into_iter()
                .map(EncounterRecord::try_from)
                .collect::<Result<_>>()?
        });
        Ok(list
            .into_iter()
            .map(|e| BedOccupancy {
                encounter: e.id,
                patient: e.patient,
                location: e.location,
                status: e.status,
            })
            .collect())
    }
}
