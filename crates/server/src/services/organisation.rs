//! What is in place in the establishments an admin administers: units and
//! beds, enrolment triggers, HL7 senders, integration settings and the
//! monitoring programmes offered (as `parcours org apply` set them).

use domain::policy::Actor;

use crate::error::AppError;
use crate::services::accounts::administered_establishments;
use crate::services::ctx::Ctx;

/// One establishment as the administration page shows it.
#[derive(Debug, Clone)]
pub struct EstablishmentView {
    /// Name.
    pub name: String,
    /// FINESS.
    pub finess: String,
    /// Activity code.
    pub activity: String,
    /// public / private.
    pub kind: String,
    /// (code, name, beds, trigger) per unit.
    pub units: Vec<(String, String, String, String)>,
    /// "MSH-3/MSH-4 (addresses)".
    pub senders: Vec<String>,
    /// (label, value) per setting.
    pub settings: Vec<(String, String)>,
    /// Programme ids, comma-separated.
    pub programmes: String,
}

/// The establishments `actor` administers, with what is configured in each.
pub async fn overview(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<EstablishmentView>, AppError> {
    let mut out = Vec::new();
    for e in administered_establishments(ctx, actor).await? {
        let mut units = Vec::new();
        for u in ctx.store.units(e.id).await? {
            let beds = match ctx.store.unit_beds(u.id).await {
                Ok(b) => format!(
                    "{} {} ({})",
                    b.counts.capacity,
                    b.category.label_fr(),
                    match b.source {
                        domain::beds::OccupancySource::Adt => "flux ADT",
                        domain::beds::OccupancySource::Manual => "comptés",
                    }
                ),
                Err(_) => "—".to_owned(),
            };
            let trigger = match ctx.store.unit_monitoring(u.id).await? {
                Some((p, on)) => format!("{p} sur {on}"),
                None => "—".to_owned(),
            };
            units.push((u.code, u.name, beds, trigger));
        }
        let senders = ctx
            .store
            .hl7_senders_of(e.id)
            .await?
            .into_iter()
            .map(|s| {
                let mut line = format!("{}/{}", s.application, s.facility);
                if !s.allowed_addresses.is_empty() {
                    line.push_str(&format!(" depuis {}", s.allowed_addresses.join(", ")));
                }
                line
            })
            .collect();
        let settings = ctx
            .store
            .establishment_settings(e.id)
            .await?
            .into_iter()
            .map(|(name, value)| {
                let label = crate::orgfile::SETTINGS
                    .iter()
                    .find(|s| s.0 == name)
                    .map_or(name.clone(), |s| s.2.to_owned());
                (label, value)
            })
            .collect();
        out.push(EstablishmentView {
            name: e.name,
            finess: e.finess,
            activity: e.activity.label_fr().to_owned(),
            kind: if e.kind == "public" {
                "public"
            } else {
                "privé"
            }
            .to_owned(),
            units,
            senders,
            settings,
            programmes: ctx.store.establishment_programmes(e.id).await?.join(", "),
        });
    }
    Ok(out)
}
