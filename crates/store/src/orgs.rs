//! Territories (identity domains), establishments and units.

use domain::{EstablishmentId, TerritoryId, UnitId};

use crate::macros::rows_to;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, q};
use crate::{Result, Store, StoreError};

/// A territory: a GHT or a region sharing one identity domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Territory {
    /// Id.
    pub id: TerritoryId,
    /// Name.
    pub name: String,
    /// OID of the IPP assigning authority of this identity domain.
    pub oid: String,
}

/// The territories a store has read, by id (they do not change once created).
#[derive(Debug, Default)]
pub(crate) struct TerritoryCache(
    std::sync::RwLock<std::collections::HashMap<TerritoryId, Territory>>,
);

impl TerritoryCache {
    fn get(&self, id: TerritoryId) -> Option<Territory> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn keep(&self, t: &Territory) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(t.id, t.clone());
    }
}

/// An establishment (FINESS géographique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Establishment {
    /// Id.
    pub id: EstablishmentId,
    /// Its territory.
    pub territory: TerritoryId,
    /// Name.
    pub name: String,
    /// FINESS number (9 characters).
    pub finess: String,
    /// `public` or `private`.
    pub kind: String,
    /// What it does (MCO, SSR, HAD…).
    pub activity: domain::org::Activity,
}

/// A care unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Id.
    pub id: UnitId,
    /// Its establishment.
    pub establishment: EstablishmentId,
    /// Short code, unique in the establishment (used by HL7 feeds).
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind (`oncology_day`, `surgery`, `emergency`, `icu`...).
    pub kind: String,
}

db_row! { struct TerritoryRow { id: String, name: String, oid: String } }
db_row! { struct EstablishmentRow { id: String, territory_id: String, name: String, finess: String, kind: String, activity: String } }
db_row! { struct UnitRow { id: String, establishment_id: String, code: String, name: String, kind: String } }

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("identifiant {s:?}")))
}

impl TryFrom<TerritoryRow> for Territory {
    type Error = StoreError;
    fn try_from(r: TerritoryRow) -> Result<Self> {
        Ok(Territory {
            id: parse_id(&r.id)?,
            name: r.name,
            oid: r.oid,
        })
    }
}
impl TryFrom<EstablishmentRow> for Establishment {
    type Error = StoreError;
    fn try_from(r: EstablishmentRow) -> Result<Self> {
        Ok(Establishment {
            id: parse_id(&r.id)?,
            territory: parse_id(&r.territory_id)?,
            name: r.name,
            activity: domain::org::Activity::from_code(&r.activity)
                .ok_or_else(|| StoreError::Corrupt(format!("activité {:?}", r.activity)))?,
            finess: r.finess,
            kind: r.kind,
        })
    }
}
impl TryFrom<UnitRow> for Unit {
    type Error = StoreError;
    fn try_from(r: UnitRow) -> Result<Self> {
        Ok(Unit {
            id: parse_id(&r.id)?,
            establishment: parse_id(&r.establishment_id)?,
            code: r.code,
            name: r.name,
            kind: r.kind,
        })
    }
}

fn convert<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// One change to an organisation, as `parcours org apply` and the admin pages
/// make them; [`Store::apply_org_changes`] writes a list in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgChange {
    /// A new establishment.
    CreateEstablishment(Establishment),
    /// New name, kind or activity.
    UpdateEstablishment(Establishment),
    /// A new unit.
    CreateUnit(Unit),
    /// New name or kind.
    UpdateUnit(Unit),
    /// A unit's beds: category, count and how occupancy is known.
    Beds {
        /// The unit.
        unit: UnitId,
        /// Category.
        category: domain::beds::BedCategory,
        /// Beds.
        capacity: i64,
        /// ADT-fed or counted.
        source: domain::beds::OccupancySource,
    },
    /// A unit's enrolment trigger: (programme, ADT event), or none.
    UnitMonitoring {
        /// The unit.
        unit: UnitId,
        /// The trigger.
        trigger: Option<(String, String)>,
    },
    /// Declare or rebind an HL7 sender.
    Sender(crate::hl7::NewHl7Sender),
    /// Set (`Some`) or remove (`None`) an integration setting.
    Setting {
        /// Where.
        establishment: EstablishmentId,
        /// Setting name.
        name: String,
        /// Value.
        value: Option<String>,
    },
    /// The monitoring programmes an establishment offers.
    Programmes {
        /// Where.
        establishment: EstablishmentId,
        /// Programme ids.
        programmes: Vec<String>,
    },
}

async fn apply_change(
    tx: &mut crate::tx::Tx<'_>,
    c: &OrgChange,
    now_ms: i64,
    actor: &str,
) -> std::result::Result<u64, sqlx::Error> {
    match c {
        OrgChange::CreateEstablishment(e) => {
            q("INSERT INTO establishments (id, territory_id, name, finess, kind, activity, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(e.id.to_string())
                .bind(e.territory.to_string())
                .bind(&e.name)
                .bind(&e.finess)
                .bind(&e.kind)
                .bind(e.activity.code())
                .bind(now_ms)
                .execute(tx)
                .await
        }
        OrgChange::UpdateEstablishment(e) => {
            q("UPDATE establishments SET name = $1, kind = $2, activity = $3 WHERE id = $4")
                .bind(&e.name)
                .bind(&e.kind)
                .bind(e.activity.code())
                .bind(e.id.to_string())
                .execute(tx)
                .await
        }
        OrgChange::CreateUnit(u) => {
            q("INSERT INTO units (id, establishment_id, code, name, kind) VALUES ($1, $2, $3, $4, $5)")
                .bind(u.id.to_string())
                .bind(u.establishment.to_string())
                .bind(&u.code)
                .bind(&u.name)
                .bind(&u.kind)
                .execute(tx)
                .await
        }
        OrgChange::UpdateUnit(u) => {
            q("UPDATE units SET name = $1, kind = $2 WHERE id = $3")
                .bind(&u.name)
                .bind(&u.kind)
                .bind(u.id.to_string())
                .execute(tx)
                .await
        }
        OrgChange::Beds {
            unit,
            category,
            capacity,
            source,
        } => {
            q("INSERT INTO unit_beds (unit_id, category, capacity, source, manual_occupied, closed, updated_at_ms, updated_by) \
               VALUES ($1, $2, $3, $4, 0, 0, $5, $6) \
               ON CONFLICT (unit_id) DO UPDATE SET category = $2, capacity = $3, source = $4, updated_at_ms = $5, updated_by = $6")
                .bind(unit.to_string())
                .bind(category.code())
                .bind(*capacity)
                .bind(source.code())
                .bind(now_ms)
                .bind(actor)
                .execute(tx)
                .await
        }
        OrgChange::UnitMonitoring { unit, trigger } => {
            q("UPDATE units SET monitoring_programme = $1, monitoring_trigger = $2 WHERE id = $3")
                .bind(trigger.as_ref().map(|t| t.0.clone()))
                .bind(trigger.as_ref().map(|t| t.1.clone()))
                .bind(unit.to_string())
                .execute(tx)
                .await
        }
        OrgChange::Sender(s) => {
            q("INSERT INTO hl7_senders (id, sending_application, sending_facility, establishment_id, created_at_ms, ipp_authority, allowed_addresses, tls_subject) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (sending_application, sending_facility) DO UPDATE SET establishment_id = $4, ipp_authority = $6, allowed_addresses = $7, tls_subject = $8")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&s.application)
                .bind(&s.facility)
                .bind(s.establishment.to_string())
                .bind(now_ms)
                .bind(&s.ipp_authority)
                .bind(s.allowed_addresses.join(","))
                .bind(&s.tls_subject)
                .execute(tx)
                .await
        }
        OrgChange::Setting {
            establishment,
            name,
            value: Some(v),
        } => {
            q("INSERT INTO establishment_settings (establishment_id, name, value) VALUES ($1, $2, $3) \
               ON CONFLICT (establishment_id, name) DO UPDATE SET value = $3")
                .bind(establishment.to_string())
                .bind(name)
                .bind(v)
                .execute(tx)
                .await
        }
        OrgChange::Setting {
            establishment,
            name,
            value: None,
        } => {
            q("DELETE FROM establishment_settings WHERE establishment_id = $1 AND name = $2")
                .bind(establishment.to_string())
                .bind(name)
                .execute(tx)
                .await
        }
        OrgChange::Programmes {
            establishment,
            programmes,
        } => {
            q("DELETE FROM establishment_programmes WHERE establishment_id = $1")
                .bind(establishment.to_string())
                .execute(tx)
                .await?;
            for p in programmes {
                q("INSERT INTO establishment_programmes (establishment_id, programme_id) VALUES ($1, $2)")
                    .bind(establishment.to_string())
                    .bind(p)
                    .execute(tx)
                    .await?;
            }
            Ok(1)
        }
    }
}

impl Store {
    /// Creates a territory.
    pub async fn create_territory(&self, t: &Territory, now_ms: i64) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO territories (id, name, oid, created_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(&t.oid)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Finds a territory by the OID of its identity domain.
    pub async fn territory_by_oid(&self, oid: &str) -> Result<Option<Territory>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT id, name, oid FROM territories WHERE oid = $1")
                .bind(oid)
                .fetch_all(pool)
                .await?;
            Ok(convert(rows_to::<_, TerritoryRow>(&rows)?)?
                .into_iter()
                .next())
        })
    }

    /// Reads a territory.
    ///
    /// A territory's name and OID never change once created (no statement
    /// updates them; its IPP counter is not part of it), so each store keeps
    /// the ones it has read: a FHIR read, search or create names the IPP's
    /// domain by its OID, and that was a round trip of its own. One not found
    /// is not kept (another node may create it).
    pub async fn territory(&self, id: TerritoryId) -> Result<Territory> {
        if let Some(t) = self.territories.get(id) {
            return Ok(t);
        }
        let found = on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT id, name, oid FROM territories WHERE id = $1")
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            convert(rows_to::<_, TerritoryRow>(&rows)?)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)?
        });
        self.territories.keep(&found);
        Ok(found)
    }

    /// Lists all territories.
    pub async fn territories(&self) -> Result<Vec<Territory>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT id, name, oid FROM territories ORDER BY name")
                .fetch_all(pool)
                .await?;
            convert(rows_to::<_, TerritoryRow>(&rows)?)
        })
    }

    /// Creates an establishment.
    pub async fn create_establishment(&self, e: &Establishment, now_ms: i64) -> Result<()> {
        self.apply_org_changes(&[OrgChange::CreateEstablishment(e.clone())], now_ms, "")
            .await
    }

    /// Reads an establishment.
    pub async fn establishment(&self, id: EstablishmentId) -> Result<Establishment> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, territory_id, name, finess, kind, activity FROM establishments WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await?;
            convert(rows_to::<_, EstablishmentRow>(&rows)?)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)
        })
    }

    /// Finds an establishment by FINESS.
    pub async fn establishment_by_finess(&self, finess: &str) -> Result<Option<Establishment>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, territory_id, name, finess, kind, activity FROM establishments WHERE finess = $1",
            )
            .bind(finess)
            .fetch_all(pool)
            .await?;
            Ok(convert(rows_to::<_, EstablishmentRow>(&rows)?)?
                .into_iter()
                .next())
        })
    }

    /// Lists the establishments of a territory.
    pub async fn establishments(&self, territory: TerritoryId) -> Result<Vec<Establishment>> {
        on_pool!(self, read, |pool| {
            let rows =
                sqlx::query("SELECT id, territory_id, name, finess, kind, activity FROM establishments WHERE territory_id = $1 ORDER BY name")
                    .bind(territory.to_string())
                    .fetch_all(pool)
                    .await?;
            convert(rows_to::<_, EstablishmentRow>(&rows)?)
        })
    }

    /// Creates a unit.
    pub async fn create_unit(&self, u: &Unit) -> Result<()> {
        self.apply_org_changes(&[OrgChange::CreateUnit(u.clone())], 0, "")
            .await
    }

    /// Lists the units of an establishment.
    pub async fn units(&self, establishment: EstablishmentId) -> Result<Vec<Unit>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT id, establishment_id, code, name, kind FROM units WHERE establishment_id = $1 ORDER BY code")
                .bind(establishment.to_string())
                .fetch_all(pool)
                .await?;
            convert(rows_to::<_, UnitRow>(&rows)?)
        })
    }

    /// Applies changes in one transaction: all of them or none. `actor` is
    /// recorded on bed figures it sets.
    pub async fn apply_org_changes(
        &self,
        changes: &[OrgChange],
        now_ms: i64,
        actor: &str,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            for c in changes {
                apply_change(&mut tx.as_tx(), c, now_ms, actor).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// A unit's monitoring trigger: (programme, ADT event), if configured.
    pub async fn unit_monitoring(&self, unit: UnitId) -> Result<Option<(String, String)>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = q("SELECT monitoring_programme, monitoring_trigger FROM units WHERE id = $1")
                .bind(unit.to_string())
                .fetch_optional(&mut tx.as_tx())
                .await?
                .ok_or(StoreError::NotFound)?;
            let p: Option<String> = row.get("monitoring_programme")?;
            let t: Option<String> = row.get("monitoring_trigger")?;
            Ok(p.zip(t))
        })
    }

    /// An establishment's integration settings, by name.
    pub async fn establishment_settings(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<(String, String)>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = q("SELECT name, value FROM establishment_settings WHERE establishment_id = $1 ORDER BY name")
                .bind(establishment.to_string())
                .fetch_all(&mut tx.as_tx())
                .await?;
            rows.iter()
                .map(|r| Ok((r.get("name")?, r.get("value")?)))
                .collect()
        })
    }

    /// Every establishment that sets integration setting `name`, with its value.
    pub async fn settings_named(&self, name: &str) -> Result<Vec<(EstablishmentId, String)>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            let rows = q("SELECT establishment_id, value FROM establishment_settings WHERE name = $1 ORDER BY establishment_id")
                .bind(name)
                .fetch_all(&mut tx.as_tx())
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        parse_id(&r.get::<String>("establishment_id")?)?,
                        r.get("value")?,
                    ))
                })
                .collect()
        })
    }

    /// One integration setting of an establishment.
    pub async fn establishment_setting(
        &self,
        establishment: EstablishmentId,
        name: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .establishment_settings(establishment)
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v))
    }

    /// The monitoring programmes an establishment offers.
    pub async fn establishment_programmes(
        &self,
        establishment: EstablishmentId,
    ) -> Result<Vec<String>> {
        on_pool!(self, read, |pool| {
            let mut tx = pool.begin_write().await?;
            Ok(q("SELECT programme_id FROM establishment_programmes WHERE establishment_id = $1 ORDER BY programme_id")
                .bind(establishment.to_string())
                .fetch_column(&mut tx.as_tx())
                .await?)
        })
    }
}
