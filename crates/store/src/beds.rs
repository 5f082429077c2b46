//! Beds per unit: configuration, the figures of a territory (occupancy counted
//! from the stays where a unit is fed by ADT), and manual changes, each traced.

use domain::beds::{BedCategory, BedChange, BedCounts, OccupancySource};
use domain::{EstablishmentId, TerritoryId, UnitId};

use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

/// One unit's beds, as the regional view and the export show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitBeds {
    /// Establishment.
    pub establishment: EstablishmentId,
    /// Its name.
    pub establishment_name: String,
    /// Its FINESS.
    pub finess: String,
    /// Unit.
    pub unit: UnitId,
    /// Unit code (as in PV1-3).
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// Category.
    pub category: BedCategory,
    /// Where occupancy comes from.
    pub source: OccupancySource,
    /// Capacity, closed, occupied.
    pub counts: BedCounts,
    /// Why beds are closed, if said.
    pub closed_reason: Option<String>,
    /// Last change of any figure (Unix ms): a manual change, or a stay's movement.
    pub last_update_ms: i64,
}

db_row! {
    struct UnitBedsRow {
        establishment_id: String,
        establishment_name: String,
        finess: String,
        unit_id: String,
        unit_code: String,
        unit_name: String,
        category: String,
        source: String,
        capacity: i64,
        closed: i64,
        manual_occupied: i64,
        adt_occupied: i64,
        closed_reason: Option<String>,
        updated_at_ms: i64,
        adt_last_ms: Option<i64>,
    }
}

impl TryFrom<UnitBedsRow> for UnitBeds {
    type Error = StoreError;
    fn try_from(r: UnitBedsRow) -> Result<Self> {
        let source = OccupancySource::from_code(&r.source)
            .ok_or_else(|| StoreError::Corrupt(format!("source {:?}", r.source)))?;
        let occupied = if source == OccupancySource::Adt {
            r.adt_occupied
        } else {
            r.manual_occupied
        };
        let last = match source {
            OccupancySource::Adt => r.updated_at_ms.max(r.adt_last_ms.unwrap_or(0)),
            OccupancySource::Manual => r.updated_at_ms,
        };
        Ok(UnitBeds {
            establishment: parse_id(&r.establishment_id)?,
            establishment_name: r.establishment_name,
            finess: r.finess,
            unit: parse_id(&r.unit_id)?,
            unit_code: r.unit_code,
            unit_name: r.unit_name,
            category: BedCategory::from_code(&r.category)
                .ok_or_else(|| StoreError::Corrupt(format!("catégorie {:?}", r.category)))?,
            source,
            counts: BedCounts {
                capacity: r.capacity,
                closed: r.closed,
                occupied,
            },
            closed_reason: r.closed_reason,
            last_update_ms: last,
        })
    }
}

const SELECT: &str = "SELECT e.id AS establishment_id, e.name AS establishment_name, e.finess, u.id AS unit_id, u.code AS unit_code, \
     u.name AS unit_name, b.category, b.source, b.capacity, b.closed, b.manual_occupied, b.closed_reason, b.updated_at_ms, \
     (SELECT COUNT(*) FROM encounters x WHERE x.establishment_id = e.id AND x.unit = u.code AND x.status IN ('in-progress', 'onleave')) AS adt_occupied, \
     (SELECT MAX(x.updated_at_ms) FROM encounters x WHERE x.establishment_id = e.id AND x.unit = u.code) AS adt_last_ms \
     FROM unit_beds b JOIN units u ON u.id = b.unit_id JOIN establishments e ON e.id = u.establishment_id";

impl Store {
    /// Sets (or replaces) a unit's bed configuration.
    pub async fn configure_beds(
        &self,
        unit: UnitId,
        category: BedCategory,
        capacity: i64,
        source: OccupancySource,
        now_ms: i64,
        actor: &str,
    ) -> Result<()> {
        let change = crate::orgs::OrgChange::Beds {
            unit,
            category,
            capacity,
            source,
        };
        self.apply_org_changes(&[change], now_ms, actor).await
    }

    /// The beds of every unit of a territory (or of one establishment).
    pub async fn beds(
        &self,
        territory: TerritoryId,
        establishment: Option<EstablishmentId>,
    ) -> Result<Vec<UnitBeds>> {
        let sql = format!(
            "{SELECT} WHERE e.territory_id = $1 AND ($2 IS NULL OR e.id = $2) ORDER BY e.name, u.code"
        );
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(territory.to_string())
                .bind(establishment.map(|e| e.to_string()))
                .fetch_all(pool)
                .await?;
            rows_to::<_, UnitBedsRow>(&rows)?
                .into_iter()
                .map(UnitBeds::try_from)
                .collect()
        })
    }

    /// One unit's beds.
    pub async fn unit_beds(&self, unit: UnitId) -> Result<UnitBeds> {
        let sql = format!("{SELECT} WHERE u.id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(unit.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, UnitBedsRow>(&rows)?
                .into_iter()
                .next()
                .map(UnitBeds::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// Applies a manual change: reads the unit's figures, checks the change with
    /// the domain rules and writes it with its trace, in one transaction that locks
    /// the unit's row first (two bed managers clicking at once cannot both close the
    /// last bed). `Ok(Err(_))` is a refusal by the rules; nothing is written then.
    pub async fn change_beds(
        &self,
        unit: UnitId,
        change: BedChange,
        reason: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<BedCounts> {
        let (name, amount) = match change {
            BedChange::Close(n) => ("close", n),
            BedChange::Reopen(n) => ("reopen", n),
            BedChange::Occupy(d) => ("occupy", d),
        };
        let sql = format!("{SELECT} WHERE u.id = $1");
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            let locked = sqlx::query(
                "UPDATE unit_beds SET updated_at_ms = updated_at_ms WHERE unit_id = $1",
            )
            .bind(unit.to_string())
            .execute(&mut *tx)
            .await?;
            if locked.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(unit.to_string())
                .fetch_all(&mut *tx)
                .await?;
            let current = rows_to::<_, UnitBedsRow>(&rows)?
                .into_iter()
                .next()
                .map(UnitBeds::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)?;
            let next = match current.counts.apply(change, current.source) {
                Ok(n) => n,
                Err(e) => return Err(StoreError::Rule(domain::DomainError::from(e))),
            };
            sqlx::query(
                "UPDATE unit_beds SET closed = $1, manual_occupied = CASE WHEN source = 'manual' THEN $2 ELSE manual_occupied END, \
                 closed_reason = CASE WHEN $1 = 0 THEN NULL WHEN $3 IS NULL THEN closed_reason ELSE $3 END, updated_at_ms = $4, updated_by = $5 \
                 WHERE unit_id = $6",
            )
            .bind(next.closed)
            .bind(next.occupied)
            .bind(reason)
            .bind(now_ms)
            .bind(actor)
            .bind(unit.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO bed_events (id, unit_id, at_ms, change, amount, reason, actor, capacity, closed, occupied) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(unit.to_string())
            .bind(now_ms)
            .bind(name)
            .bind(amount)
            .bind(reason)
            .bind(actor)
            .bind(next.capacity)
            .bind(next.closed)
            .bind(next.occupied)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(next)
        })
    }
}

impl Store {
    /// Records the availability of each category of a territory at `at_ms`
    /// (idempotent for the same instant).
    pub async fn snapshot_beds(&self, territory: TerritoryId, at_ms: i64) -> Result<usize> {
        let beds = self.beds(territory, None).await?;
        let mut totals: Vec<(BedCategory, i64, i64)> = Vec::new();
        for b in &beds {
            match totals.iter_mut().find(|(c, _, _)| *c == b.category) {
                Some(t) => {
                    t.1 += b.counts.available();
                    t.2 += b.counts.capacity;
                }
                None => totals.push((b.category, b.counts.available(), b.counts.capacity)),
            }
        }
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            for (c, available, capacity) in &totals {
                sqlx::query(
                    "INSERT INTO bed_snapshots (territory_id, category, at_ms, available, capacity) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(territory.to_string())
                .bind(c.code())
                .bind(at_ms)
                .bind(available)
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(totals.len())
        })
    }

    /// The snapshots of one category since `since_ms`, oldest first: (time, available, capacity).
    pub async fn bed_history(
        &self,
        territory: TerritoryId,
        category: BedCategory,
        since_ms: i64,
    ) -> Result<Vec<(i64, i64, i64)>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(
                "SELECT at_ms, available, capacity FROM bed_snapshots WHERE territory_id = $1 AND category = $2 AND at_ms >= $3 ORDER BY at_ms",
            )
            .bind(territory.to_string())
            .bind(category.code())
            .bind(since_ms)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("at_ms")?,
                        r.try_get("available")?,
                        r.try_get("capacity")?,
                    ))
                })
                .collect()
        })
    }
}
