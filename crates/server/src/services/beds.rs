//! Beds: which establishments an actor manages the beds of, and a bed
//! manager's change (close, reopen, count) under the policy and the rules.
//! The rules (`domain::beds`) are checked in the store's transaction; a
//! refusal comes back as [`Changed::Refused`] for the page to show.

use domain::beds::{BedChange, BedCounts};
use domain::policy::{Actor, EstablishmentAction, authorize_establishment};
use domain::{EstablishmentId, TerritoryId, UnitId};

use store::beds::UnitBeds;

use crate::error::AppError;
use crate::services::ctx::Ctx;

/// Establishments whose beds `actor` manages (the policy decides), each once.
pub fn managed(actor: &Actor) -> Vec<(EstablishmentId, TerritoryId)> {
    let mut v: Vec<(EstablishmentId, TerritoryId)> = actor
        .grants
        .iter()
        .filter(|g| {
            authorize_establishment(
                actor,
                EstablishmentAction::ManageBeds,
                g.establishment,
                g.territory,
            )
            .allowed()
        })
        .map(|g| (g.establishment, g.territory))
        .collect();
    v.dedup();
    v
}

/// What became of a change.
#[derive(Debug)]
pub enum Changed {
    /// Applied: the unit's figures now.
    Done(BedCounts),
    /// Refused by the rules (nothing written): the unit's name and why.
    Refused {
        /// The unit.
        unit_name: String,
        /// Why (French, safe to show).
        why: domain::DomainError,
    },
}

/// Applies `change` to `unit`'s beds for `actor` (who must manage the unit's
/// establishment); `reason` goes with a closing. Traced in the store under `by`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn change(
    ctx: Ctx<'_>,
    actor: &Actor,
    by: &str,
    unit: UnitId,
    change: BedChange,
    reason: Option<&str>,
) -> Result<Changed, AppError> {
    let current = ctx
        .store
        .unit_beds(unit)
        .await
        .map_err(|_| AppError::NotFound("unité introuvable".into()))?;
    if !managed(actor)
        .iter()
        .any(|(e, _)| *e == current.establishment)
    {
        return Err(AppError::Forbidden(
            "cette unité relève d'un autre établissement".into(),
        ));
    }
    match ctx
        .store
        .change_beds(unit, change, reason, by, ctx.now_ms())
        .await
    {
        Ok(counts) => {
            if let Ok(e) = ctx.store.establishment(current.establishment).await {
                ctx.publish(crate::live::LiveEvent::Beds(e.territory));
            }
            Ok(Changed::Done(counts))
        }
        Err(store::StoreError::Rule(why)) => Ok(Changed::Refused {
            unit_name: current.unit_name,
            why,
        }),
        Err(e) => Err(e.into()),
    }
}

/// The beds of every unit of territory `t`.
pub async fn of_territory(ctx: Ctx<'_>, t: TerritoryId) -> Result<Vec<UnitBeds>, AppError> {
    Ok(ctx.store.beds(t, None).await?)
}

/// Unit `unit`'s beds, if the unit is in territory `t`.
pub async fn unit_in_territory(
    ctx: Ctx<'_>,
    t: TerritoryId,
    unit: UnitId,
) -> Result<Option<UnitBeds>, AppError> {
    let Ok(b) = ctx.store.unit_beds(unit).await else {
        return Ok(None);
    };
    let est = ctx.store.establishment(b.establishment).await?;
    Ok((est.territory == t).then_some(b))
}

/// The beds of `establishment` (in territory `t`), for its bed manager.
pub async fn of_establishment(
    ctx: Ctx<'_>,
    t: TerritoryId,
    establishment: EstablishmentId,
) -> Result<Vec<UnitBeds>, AppError> {
    Ok(ctx.store.beds(t, Some(establishment)).await?)
}

/// The territory `actor` views the beds of (any grant there where the
/// directory is readable: bed counts are not patient data).
pub fn region_of(actor: &Actor) -> Result<TerritoryId, AppError> {
    actor
        .grants
        .iter()
        .find(|g| {
            authorize_establishment(
                actor,
                EstablishmentAction::ReadDirectory,
                g.establishment,
                g.territory,
            )
            .allowed()
        })
        .map(|g| g.territory)
        .ok_or_else(|| {
            AppError::Forbidden("vue régionale réservée aux professionnels du territoire".into())
        })
}

/// The region's beds for `actor`, of one establishment and one category
/// when given.
pub async fn region(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: Option<EstablishmentId>,
    category: Option<domain::beds::BedCategory>,
) -> Result<(TerritoryId, Vec<UnitBeds>), AppError> {
    let t = region_of(actor)?;
    let mut beds = ctx.store.beds(t, establishment).await?;
    if let Some(c) = category {
        beds.retain(|b| b.category == c);
    }
    Ok((t, beds))
}

/// The available beds of `category` in territory `t` over the last day:
/// (Unix ms, available, capacity).
pub async fn history(
    ctx: Ctx<'_>,
    t: TerritoryId,
    category: domain::beds::BedCategory,
) -> Result<Vec<(i64, i64, i64)>, AppError> {
    let since = ctx.now_ms() - 24 * 3600 * 1000;
    Ok(ctx.store.bed_history(t, category, since).await?)
}
