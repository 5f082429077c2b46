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
    recompute_of(encounter, &state, now_ms).execute(tx).await?;
    Ok(())
}

/// A stay's row set to `state`, its version one more.
const UPDATE_STAY: &str = "UPDATE encounters SET status = $1, class = $2, unit = $3, room = $4, bed = $5, started_at_ms = $6, \
    ended_at_ms = $7, version = version + 1, updated_at_ms = $8 WHERE id = $9";

/// [`UPDATE_STAY`] for one stay.
fn recompute_of(
    encounter: &str,
    state: &domain::encounter::EncounterState,
    now_ms: i64,
) -> crate::tx::Q {
    state_values(q(UPDATE_STAY), state)
        .bind(now_ms)
        .bind(encounter)
}

/// A stay's state as its row holds it: status, class, unit, room, bed,
/// start, end.
fn state_values(q: crate::tx::Q, state: &domain::encounter::EncounterState) -> crate::tx::Q {
    q.bind(state.status.code())
        .bind(&state.class)
        .bind(&state.location.unit)
        .bind(&state.location.room)
        .bind(&state.location.bed)
        .bind(state.started_ms)
        .bind(state.ended_ms)
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
        let row_id = uuid::Uuid::now_v7().to_string();
        crate::tx::insert_many(
            tx,
            INSERT_MOVEMENTS,
            "",
            MOVEMENT_COLUMNS,
            &[()],
            |q, ()| movement_values(q, &row_id, &encounter, mv, now_ms),
        )
        .await?;
    }
    recompute(tx, &encounter, now_ms).await?;
    crate::orgs::parse_id::<domain::EncounterId>(&encounter)
}

/// A stay found by its visit number with its movements, each with the key
/// [`recompute`] reads them in (start, arrival, id): see [`stays_of`].
struct FoundStay {
    id: String,
    patient: String,
    movements: Vec<((i64, i64, String), domain::encounter::Movement)>,
}

/// The stays of these (establishment, visit number) with their movements, by
/// (establishment, visit number); locked until the transaction ends on
/// PostgreSQL (see `crate::tx::fetch_pairs`).
async fn stays_of(
    tx: &mut Tx<'_>,
    keys: &[(EstablishmentId, &str)],
) -> Result<std::collections::HashMap<(String, String), FoundStay>> {
    let keys: Vec<(String, &str)> = keys
        .iter()
        .map(|(e, visit)| (e.to_string(), *visit))
        .collect();
    // On PostgreSQL the movements are read stay by stay (a lateral
    // subquery kept apart by `OFFSET 0`, so through their index): as a join,
    // a database without statistics (autovacuum off) estimated two hundred
    // movements a stay and hashed all of them, 15 ms a group at 80,000
    // movements and growing with them (0.3 ms this way). SQLite has no
    // LATERAL, and its join already takes the index.
    let movements = if matches!(tx, Tx::Pg(_)) {
        "LEFT JOIN LATERAL (SELECT * FROM movements WHERE encounter_id = e.id OFFSET 0) m ON true"
    } else {
        "LEFT JOIN movements m ON m.encounter_id = e.id"
    };
    let rows = crate::tx::fetch_pairs(
        tx,
        &format!(
            "SELECT e.id, e.patient_id, e.establishment_id, e.visit_number, m.id AS movement, m.kind, \
             m.start_ms, m.unit, m.room, m.bed, m.class, m.cancelled, m.created_at_ms \
             FROM encounters e {movements}"
        ),
        ("e.establishment_id", "e.visit_number"),
        "FOR UPDATE OF e",
        &keys,
    )
    .await?;
    let mut found: std::collections::HashMap<(String, String), FoundStay> =
        std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let key = (
            row.get::<String>("establishment_id")?,
            row.get::<String>("visit_number")?,
        );
        let stay = match found.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(FoundStay {
                id: row.get("id")?,
                patient: row.get("patient_id")?,
                movements: Vec::new(),
            }),
        };
        let Some(movement) = row.get::<Option<String>>("movement")? else {
            continue;
        };
        let m: MovementRow = row.to()?;
        let key = (m.start_ms, row.get::<i64>("created_at_ms")?, movement);
        stay.movements
            .push((key, domain::encounter::Movement::try_from(m)?));
    }
    Ok(found)
}

/// A group's movements applied together, as [`apply_movement`] applies each:
/// for each `(patient, movement)`, the stay of its visit number found (it
/// must be the patient's) or opened, the movement inserted, the stay
/// recomputed from all its movements. One lookup reads the stays and their
/// movements (and locks them on PostgreSQL); the stays are folded here; the
/// stays moved are updated by one statement run here (PostgreSQL: one
/// `UPDATE … FROM unnest`; SQLite: one update each in one script); the stays
/// opened and the movements go into `writes` (after the records', which they
/// refer to). A movement whose patient is `None` is applied by the caller
/// alone but counts among the group's visits. For each, its stay (`None`:
/// the caller applies it alone: no patient, a cancellation, a visit named
/// twice in the group); `Err` on a stay of another patient (the caller takes
/// the group again one message at a time, where that message is refused).
pub(crate) async fn movements_together(
    tx: &mut Tx<'_>,
    writes: &mut crate::tx::Writes,
    moves: &[(Option<PatientId>, &MovementFeed)],
    now_ms: i64,
) -> Result<Vec<Option<EncounterId>>> {
    let mut named: std::collections::HashMap<(EstablishmentId, &str), usize> =
        std::collections::HashMap::with_capacity(moves.len());
    for (_, mv) in moves {
        *named
            .entry((mv.establishment, mv.visit_number.as_str()))
            .or_default() += 1;
    }
    let taken = |(patient, mv): &(Option<PatientId>, &MovementFeed)| {
        patient.is_some()
            && !mv.cancel
            && named.get(&(mv.establishment, mv.visit_number.as_str())) == Some(&1)
    };
    let keys: Vec<(EstablishmentId, &str)> = moves
        .iter()
        .filter(|m| taken(m))
        .map(|(_, mv)| (mv.establishment, mv.visit_number.as_str()))
        .collect();
    let mut done = vec![None; moves.len()];
    if keys.is_empty() {
        return Ok(done);
    }
    let mut found = stays_of(tx, &keys).await?;
    let mut stays: Vec<Moved<'_>> = Vec::with_capacity(keys.len());
    for (i, m) in moves.iter().enumerate() {
        let (Some(patient), mv) = *m else { continue };
        if !taken(m) {
            continue;
        }
        let row_id = uuid::Uuid::now_v7().to_string();
        let new = domain::encounter::Movement {
            kind: mv.kind,
            start_ms: mv.start_ms,
            location: mv.location.clone(),
            class: mv.class.clone(),
            cancelled: false,
        };
        let key = (mv.establishment.to_string(), mv.visit_number.clone());
        let (id, mut movements, opened) = match found.remove(&key) {
            Some(stay) if stay.patient != patient.to_string() => {
                return Err(StoreError::Conflict(
                    crate::Conflict::VisitOfAnotherPatient(mv.visit_number.clone()),
                ));
            }
            Some(stay) => (parse_id::<EncounterId>(&stay.id)?, stay.movements, false),
            None => (EncounterId::new(), Vec::new(), true),
        };
        movements.push(((mv.start_ms, now_ms, row_id.clone()), new));
        movements.sort_by(|a, b| a.0.cmp(&b.0));
        let all: Vec<domain::encounter::Movement> = movements.into_iter().map(|(_, m)| m).collect();
        let state = domain::encounter::fold(&all);
        if let Some(slot) = done.get_mut(i) {
            *slot = Some(id);
        }
        stays.push(Moved {
            id,
            patient,
            mv,
            row_id,
            state,
            opened,
        });
    }
    let opened: Vec<&Moved<'_>> = stays.iter().filter(|s| s.opened).collect();
    writes.insert_many(
        "INSERT INTO encounters (id, patient_id, establishment_id, visit_number, status, class, unit, room, bed, \
         started_at_ms, ended_at_ms, version, updated_at_ms) VALUES ",
        "",
        13,
        &opened,
        |q, s| {
            let q = q
                .bind(s.id.to_string())
                .bind(s.patient.to_string())
                .bind(s.mv.establishment.to_string())
                .bind(&s.mv.visit_number);
            state_values(q, &s.state)
                // Opened at 0 and recomputed once, as one message alone does.
                .bind(1_i64)
                .bind(now_ms)
        },
    );
    let moved: Vec<(EncounterId, &domain::encounter::EncounterState)> = stays
        .iter()
        .filter(|s| !s.opened)
        .map(|s| (s.id, &s.state))
        .collect();
    if !moved.is_empty() {
        recomputed(&moved, now_ms, matches!(tx, Tx::Pg(_)))
            .execute(tx)
            .await?;
    }
    writes.insert_many(INSERT_MOVEMENTS, "", MOVEMENT_COLUMNS, &stays, |q, s| {
        movement_values(q, &s.row_id, &s.id.to_string(), s.mv, now_ms)
    });
    Ok(done)
}

/// A movement of [`movements_together`] and its stay.
struct Moved<'a> {
    /// The stay.
    id: EncounterId,
    patient: PatientId,
    mv: &'a MovementFeed,
    /// The movement's row.
    row_id: String,
    /// The stay's state with the movement.
    state: domain::encounter::EncounterState,
    /// Whether the movement opens the stay.
    opened: bool,
}

/// The multi-row insert of movements, up to its values.
const INSERT_MOVEMENTS: &str = "INSERT INTO movements (id, encounter_id, movement_id, kind, trigger_event, start_ms, unit, room, \
    bed, class, cancelled, created_at_ms) VALUES ";

/// The values of a row of [`INSERT_MOVEMENTS`].
const MOVEMENT_COLUMNS: usize = 12;

/// A new movement's row (`row_id`) of stay `encounter`: its ZBE id, or a
/// new one when the message sent none.
fn movement_values(
    q: crate::tx::Q,
    row_id: &str,
    encounter: &str,
    mv: &MovementFeed,
    now_ms: i64,
) -> crate::tx::Q {
    q.bind(row_id)
        .bind(encounter)
        .bind(
            mv.movement_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        )
        .bind(mv.kind.code())
        .bind(&mv.trigger)
        .bind(mv.start_ms)
        .bind(&mv.location.unit)
        .bind(&mv.location.room)
        .bind(&mv.location.bed)
        .bind(&mv.class)
        .bind(false)
        .bind(now_ms)
}

/// The updates of stays recomputed (`states`): on PostgreSQL one statement,
/// one array per column, planned at each run (a generic plan made while
/// `encounters` was small would read all of it); on SQLite one update each.
fn recomputed(
    states: &[(EncounterId, &domain::encounter::EncounterState)],
    now_ms: i64,
    pg: bool,
) -> crate::tx::Writes {
    use crate::tx::{Arg, Column};
    let mut writes = crate::tx::Writes::default();
    if pg {
        let text = |f: &dyn Fn(&domain::encounter::EncounterState) -> Option<String>| {
            Arg::Column(Column::Text(states.iter().map(|(_, s)| f(s)).collect()))
        };
        let int = |f: &dyn Fn(&domain::encounter::EncounterState) -> Option<i64>| {
            Arg::Column(Column::Int(states.iter().map(|(_, s)| f(s)).collect()))
        };
        writes.push(
            q(UPDATE_STAYS)
                .planned_each_time()
                .bind(text(&|s| Some(s.status.code().to_owned())))
                .bind(text(&|s| s.class.clone()))
                .bind(text(&|s| s.location.unit.clone()))
                .bind(text(&|s| s.location.room.clone()))
                .bind(text(&|s| s.location.bed.clone()))
                .bind(int(&|s| s.started_ms))
                .bind(int(&|s| s.ended_ms))
                .bind(now_ms)
                .bind(Arg::Column(Column::Text(
                    states.iter().map(|(id, _)| Some(id.to_string())).collect(),
                ))),
        );
    } else {
        for (id, s) in states {
            writes.push(recompute_of(&id.to_string(), s, now_ms));
        }
    }
    writes
}

/// [`UPDATE_STAY`] for several stays, one array per column (PostgreSQL).
const UPDATE_STAYS: &str = "UPDATE encounters AS e SET status = u.status, class = u.class, unit = u.unit, room = u.room, \
    bed = u.bed, started_at_ms = u.started_at_ms, ended_at_ms = u.ended_at_ms, version = e.version + 1, updated_at_ms = $8 \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $9::text[]) \
    AS u(status, class, unit, room, bed, started_at_ms, ended_at_ms, id) WHERE e.id = u.id";

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
