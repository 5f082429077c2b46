//! What is in place in the establishments an admin administers: units and
//! beds, enrolment triggers, HL7 senders, integration settings and the
//! monitoring programmes offered (as `parcours org apply` set them).

use domain::EstablishmentId;
use domain::policy::Actor;
use store::audit::NewAudit;
use store::orgs::OrgChange;

use crate::orgfile::{self, FileError};

use crate::error::AppError;
use crate::services::accounts::administered_establishments;
use crate::services::ctx::Ctx;

/// One establishment as the administration page shows it.
#[derive(Debug, Clone)]
pub struct EstablishmentView {
    /// Id (for the edit link).
    pub id: String,
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
            id: e.id.to_string(),
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

/// One establishment in the organisation-file format, for its admin to edit.
pub async fn edit_text(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
) -> Result<String, AppError> {
    crate::services::accounts::administer(ctx, actor, establishment).await?;
    let e = ctx.store.establishment(establishment).await?;
    Ok(orgfile::export_of(ctx.store, e.territory, std::slice::from_ref(&e)).await?)
}

/// What an edit of an establishment's file gave.
#[derive(Debug)]
pub enum Edited {
    /// Refused whole: every error with its line (nothing written).
    Refused(Vec<FileError>),
    /// The changes (French lines); whether they were written.
    Planned {
        /// One line per change.
        lines: Vec<String>,
        /// Whether they were applied (else a preview).
        applied: bool,
    },
}

/// Checks an admin's edit of one establishment's file and, when `apply`,
/// writes it in one transaction (audited). The file must describe exactly
/// that establishment, in its territory; an HL7 sender declared for another
/// establishment is not taken from it.
pub async fn edit(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
    text: &str,
    apply: bool,
) -> Result<Edited, AppError> {
    let who = crate::services::accounts::administer(ctx, actor, establishment).await?;
    let e = ctx.store.establishment(establishment).await?;
    let t = ctx.store.territory(e.territory).await?;
    let programmes: Vec<&str> = crate::services::monitoring::programmes()
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    let file = match orgfile::parse(text, &programmes) {
        Ok(f) => f,
        Err(errors) => return Ok(Edited::Refused(errors.0)),
    };
    let refuse = |reason: String| Ok(Edited::Refused(vec![FileError { line: 1, reason }]));
    if file.territory_oid != t.oid {
        return refuse(format!("le territoire doit rester {}", t.oid));
    }
    if file.establishments.len() != 1
        || file.establishments.first().map(|s| s.finess.as_str()) != Some(e.finess.as_str())
    {
        return refuse(format!(
            "ce fichier décrit un seul établissement : FINESS {}",
            e.finess
        ));
    }
    let plan = orgfile::plan(ctx.store, &file)
        .await
        .map_err(|err| AppError::BadRequest("invalid", err.to_string()))?;
    for c in &plan.changes {
        if let OrgChange::Sender(s) = c
            && let Some(other) = ctx.store.hl7_sender(&s.application, &s.facility).await?
            && other.establishment != establishment
        {
            return refuse(format!(
                "l'émetteur {}/{} alimente un autre établissement",
                s.application, s.facility
            ));
        }
    }
    let lines: Vec<String> = plan
        .lines
        .into_iter()
        .filter(|l| !l.starts_with("! établissement"))
        .collect();
    if apply && !plan.changes.is_empty() {
        ctx.store
            .apply_org_changes(&plan.changes, ctx.now_ms(), &who.id)
            .await?;
        // Its HL7 senders may have changed: every node reads them again.
        if let Ok(mut cache) = ctx.senders.write() {
            cache.clear();
        }
        ctx.publish(crate::live::LiveEvent::Senders);
        ctx.store
            .audit(&NewAudit {
                at_ms: ctx.now_ms(),
                actor: who,
                patient: None,
                action: "organisation.edit".into(),
                resource: format!("Organization/{establishment}"),
                outcome: "success".into(),
            })
            .await?;
    }
    Ok(Edited::Planned {
        lines,
        applied: apply,
    })
}
