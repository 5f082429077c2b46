//! Territories (identity domains), establishments and units.

use domain::{EstablishmentId, TerritoryId, UnitId};

use crate::macros::rows_to;
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
db_row! { struct EstablishmentRow { id: String, territory_id: String, name: String, finess: String, kind: String } }
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
    pub async fn territory(&self, id: TerritoryId) -> Result<Territory> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT id, name, oid FROM territories WHERE id = $1")
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            convert(rows_to::<_, TerritoryRow>(&rows)?)?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)
        })
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
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO establishments (id, territory_id, name, finess, kind, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.id.to_string())
            .bind(e.territory.to_string())
            .bind(&e.name)
            .bind(&e.finess)
            .bind(&e.kind)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Reads an establishment.
    pub async fn establishment(&self, id: EstablishmentId) -> Result<Establishment> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT id, territory_id, name, finess, kind FROM establishments WHERE id = $1",
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
                "SELECT id, territory_id, name, finess, kind FROM establishments WHERE finess = $1",
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
                sqlx::query("SELECT id, territory_id, name, finess, kind FROM establishments WHERE territory_id = $1 ORDER BY name")
                    .bind(territory.to_string())
                    .fetch_all(pool)
                    .await?;
            convert(rows_to::<_, EstablishmentRow>(&rows)?)
        })
    }

    /// Creates a unit.
    pub async fn create_unit(&self, u: &Unit) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("INSERT INTO units (id, establishment_id, code, name, kind) VALUES ($1, $2, $3, $4, $5)")
                .bind(u.id.to_string())
                .bind(u.establishment.to_string())
                .bind(&u.code)
                .bind(&u.name)
                .bind(&u.kind)
                .execute(pool)
                .await?;
            Ok(())
        })
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
}
