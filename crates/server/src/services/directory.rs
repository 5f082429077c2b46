//! The directory of the platform: territories and establishments as pages
//! name them.

use domain::{EstablishmentId, TerritoryId, UserId};

use crate::error::AppError;
use crate::services::ctx::Ctx;

/// An establishment's name (its id when it cannot be read).
pub async fn establishment_name(ctx: Ctx<'_>, id: EstablishmentId) -> String {
    ctx.store
        .establishment(id)
        .await
        .map(|e| e.name)
        .unwrap_or_else(|_| id.to_string())
}

/// An establishment.
pub async fn establishment(
    ctx: Ctx<'_>,
    id: EstablishmentId,
) -> Result<store::orgs::Establishment, AppError> {
    Ok(ctx.store.establishment(id).await?)
}

/// The establishments of a territory.
pub async fn establishments(
    ctx: Ctx<'_>,
    territory: TerritoryId,
) -> Result<Vec<store::orgs::Establishment>, AppError> {
    Ok(ctx.store.establishments(territory).await?)
}

/// A territory.
pub async fn territory(ctx: Ctx<'_>, id: TerritoryId) -> Result<store::orgs::Territory, AppError> {
    Ok(ctx.store.territory(id).await?)
}

/// The territory whose identity domain has this OID, if any.
pub async fn territory_by_oid(
    ctx: Ctx<'_>,
    oid: &str,
) -> Result<Option<store::orgs::Territory>, AppError> {
    Ok(ctx.store.territory_by_oid(oid).await?)
}

/// The name an account shows.
pub async fn user_name(ctx: Ctx<'_>, id: UserId) -> Result<String, AppError> {
    Ok(ctx.store.user(id).await?.display_name)
}

/// Where an API client belongs: its establishment and territory.
#[derive(Debug, Clone, Copy)]
pub struct Home {
    /// The establishment.
    pub establishment: EstablishmentId,
    /// Its territory.
    pub territory: TerritoryId,
}

/// Whether the policy lets `actor` do `action` at `home`; `why` when not.
pub fn may(
    actor: &domain::policy::Actor,
    home: Home,
    action: domain::policy::EstablishmentAction,
    why: &str,
) -> Result<(), AppError> {
    if domain::policy::authorize_establishment(actor, action, home.establishment, home.territory)
        .allowed()
    {
        Ok(())
    } else {
        Err(AppError::Forbidden(why.to_owned()))
    }
}

/// The territory whose directory `actor` reads from `home`.
pub fn readable_territory(
    actor: &domain::policy::Actor,
    home: Home,
) -> Result<TerritoryId, AppError> {
    may(
        actor,
        home,
        domain::policy::EstablishmentAction::ReadDirectory,
        "annuaire non accessible",
    )?;
    Ok(home.territory)
}

/// The professionals of `home`'s territory.
pub async fn practitioners(
    ctx: Ctx<'_>,
    actor: &domain::policy::Actor,
    home: Home,
) -> Result<Vec<store::users::User>, AppError> {
    let t = readable_territory(actor, home)?;
    Ok(ctx
        .store
        .professionals(t)
        .await?
        .into_iter()
        .map(|(u, _)| u)
        .collect())
}

/// Professional `id`, if they work in `home`'s territory.
pub async fn practitioner(
    ctx: Ctx<'_>,
    actor: &domain::policy::Actor,
    home: Home,
    id: UserId,
) -> Result<Option<store::users::User>, AppError> {
    let t = readable_territory(actor, home)?;
    let Ok(user) = ctx.store.user(id).await else {
        return Ok(None);
    };
    let in_territory = ctx.store.grants(id).await?.iter().any(|g| g.territory == t);
    Ok((user.kind == store::users::UserKind::Professional && in_territory).then_some(user))
}

/// `home`'s territory and its establishments.
pub async fn organizations(
    ctx: Ctx<'_>,
    actor: &domain::policy::Actor,
    home: Home,
) -> Result<(store::orgs::Territory, Vec<store::orgs::Establishment>), AppError> {
    let t = readable_territory(actor, home)?;
    Ok((
        ctx.store.territory(t).await?,
        ctx.store.establishments(t).await?,
    ))
}

/// The establishments `actor` holds a grant at, each once.
pub fn grant_establishments(actor: &domain::policy::Actor) -> Vec<EstablishmentId> {
    let mut v: Vec<EstablishmentId> = actor.grants.iter().map(|g| g.establishment).collect();
    v.sort_by_key(ToString::to_string);
    v.dedup();
    v
}

/// The establishments where the policy lets `actor` do `action`, in the
/// order of their grants (a repeated grant once).
pub fn establishments_for(
    actor: &domain::policy::Actor,
    action: domain::policy::EstablishmentAction,
) -> Vec<EstablishmentId> {
    let mut v: Vec<EstablishmentId> = actor
        .grants
        .iter()
        .filter(|g| {
            domain::policy::authorize_establishment(actor, action, g.establishment, g.territory)
                .allowed()
        })
        .map(|g| g.establishment)
        .collect();
    v.dedup();
    v
}

/// An establishment's integration setting (`oru_destination`,
/// `siu_destination`, `teleconsultation_fee_cents`…, as its organisation file
/// set it), or `None` to fall back on the instance's configuration.
pub async fn setting(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
    name: &str,
) -> Result<Option<String>, AppError> {
    Ok(ctx.store.establishment_setting(establishment, name).await?)
}

/// Where an establishment's results (ORU^R01) go: its own destination, else
/// the instance's.
pub async fn oru_destination(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
) -> Result<Option<String>, AppError> {
    Ok(setting(ctx, establishment, "oru_destination")
        .await?
        .or_else(|| ctx.config.oru_destination.clone()))
}

/// Where an establishment's agenda hears of bookings (SIU): its own, else the instance's.
pub async fn siu_destination(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
) -> Result<Option<String>, AppError> {
    Ok(setting(ctx, establishment, "siu_destination")
        .await?
        .or_else(|| ctx.config.siu_destination.clone()))
}

/// An establishment's teleconsultation fee in cents: its own, else the instance's.
pub async fn teleconsultation_fee_cents(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
) -> Result<i64, AppError> {
    Ok(setting(ctx, establishment, "teleconsultation_fee_cents")
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(ctx.config.teleconsultation_fee_cents))
}
