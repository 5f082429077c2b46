//! Patient identity use cases: search, read, create, update, merge.

use domain::audit::AuditActor;
use domain::demographics::{Demographics, DemographicsPatch};
use domain::identity::{PatientRecord, check_status_with_ins, check_trait_edit};
use domain::policy::{Actor, Decision, PatientAction, PatientScope, Principal, authorize_patient};
use domain::{EstablishmentId, PatientId, TerritoryId};
use interop::fhir::ParsedPatient;
use store::audit::NewAudit;
use store::patients::{NewPatient, PatientQuery};

use crate::error::AppError;
use crate::services::ctx::Ctx;

fn audit_row(
    ctx: Ctx<'_>,
    who: AuditActor,
    patient: Option<PatientId>,
    action: &str,
    outcome: &str,
) -> NewAudit {
    NewAudit {
        at_ms: ctx.now_ms(),
        actor: who,
        patient: patient.map(|p| p.to_string()),
        action: action.to_owned(),
        resource: patient
            .map(|p| format!("Patient/{p}"))
            .unwrap_or_else(|| "Patient".to_owned()),
        outcome: outcome.to_owned(),
    }
}

/// Records a refusal and turns it into the error to answer.
async fn deny(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: Option<PatientId>,
    action: PatientAction,
    why: &str,
    visible: bool,
) -> AppError {
    let row = audit_row(
        ctx,
        AuditActor::new(actor, None),
        patient,
        action.code(),
        "denied",
    );
    if let Err(e) = ctx.store.audit(&row).await {
        return e.into();
    }
    if visible {
        AppError::Forbidden(why.to_owned())
    } else {
        AppError::NotFound("patient introuvable".into())
    }
}

/// A patient's display name, for a line about a record whose read is
/// audited already ("?" when it cannot be read).
pub async fn display_name(ctx: Ctx<'_>, id: domain::PatientId) -> String {
    ctx.store
        .patient(id)
        .await
        .map(|p| p.traits.display_name())
        .unwrap_or_else(|_| "?".into())
}

/// A record and its scope, read in one statement (the record with its
/// establishments' links), for the policy to decide on.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn with_scope(
    ctx: Ctx<'_>,
    id: PatientId,
) -> Result<(PatientRecord, PatientScope), store::StoreError> {
    let (p, establishments) = ctx.store.patient_with_links(id).await?;
    let scope = PatientScope {
        territory: p.territory,
        establishments,
        patient: Some(p.id),
    };
    Ok((p, scope))
}

/// The scope of a record already read.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn scope_of(ctx: Ctx<'_>, p: &PatientRecord) -> Result<PatientScope, AppError> {
    Ok(PatientScope {
        territory: p.territory,
        establishments: ctx.store.patient_establishments(p.id).await?,
        patient: Some(p.id),
    })
}

/// Territories where the actor may do `action` on identities (search, create).
fn territories_for(
    actor: &Actor,
    action: PatientAction,
) -> Vec<(TerritoryId, domain::policy::Grant)> {
    let mut out: Vec<(TerritoryId, domain::policy::Grant)> = Vec::new();
    for g in &actor.grants {
        if out.iter().any(|(t, _)| *t == g.territory) {
            continue;
        }
        let scope = PatientScope {
            territory: g.territory,
            establishments: vec![],
            patient: None,
        };
        if let Decision::Allow(Some(grant)) = authorize_patient(actor, action, &scope) {
            out.push((g.territory, grant));
        }
    }
    out
}

/// Loads a record and checks `action` on it; the audit trail gets the refusal.
/// A record outside every territory of the actor answers 404, not 403, so that
/// other tenants' records are not revealed.
async fn load_authorized(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
    action: PatientAction,
) -> Result<(PatientRecord, Option<domain::policy::Grant>), AppError> {
    let (p, scope) = match with_scope(ctx, id).await {
        Ok(found) => found,
        Err(store::StoreError::NotFound) => {
            return Err(AppError::NotFound("patient introuvable".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let grant = authorize_loaded(ctx, actor, &p, &scope, action).await?;
    Ok((p, grant))
}

/// Checks `action` on a loaded record in `scope`; the audit trail gets the
/// refusal, answered 404 outside every territory of the actor.
async fn authorize_loaded(
    ctx: Ctx<'_>,
    actor: &Actor,
    p: &PatientRecord,
    scope: &PatientScope,
    action: PatientAction,
) -> Result<Option<domain::policy::Grant>, AppError> {
    match authorize_patient(actor, action, scope) {
        Decision::Allow(g) => Ok(g),
        Decision::Deny(why) => {
            let visible = matches!(actor.principal, Principal::Patient { .. })
                || actor.grants.iter().any(|g| g.territory == p.territory);
            Err(deny(ctx, actor, Some(p.id), action, why, visible).await)
        }
    }
}

/// Reads one identity (audited).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn read(ctx: Ctx<'_>, actor: &Actor, id: PatientId) -> Result<PatientRecord, AppError> {
    let (p, entry) = identity_read(ctx, actor, id).await?;
    ctx.store.audit(&entry).await?;
    Ok(p)
}

/// The identities a live page names (a queue of a thousand alerts, refreshed
/// every few seconds), authorised like [`read`] at every refresh and audited
/// once per session (`session`: the session's token hash) and patient: the
/// records and their links read in one query each, the new views audited in
/// one transaction. Any refusal refuses the page, as one read would. Keyed by
/// record.
async fn read_many_on_live_page(
    ctx: Ctx<'_>,
    actor: &Actor,
    session: &str,
    ids: &[PatientId],
) -> Result<std::collections::HashMap<PatientId, PatientRecord>, AppError> {
    let mut wanted = ids.to_vec();
    wanted.sort();
    wanted.dedup();
    let found = ctx.store.patients_with_links(&wanted).await?;
    if found.len() < wanted.len() {
        return Err(AppError::NotFound("patient introuvable".into()));
    }
    let mut entries = Vec::with_capacity(found.len());
    let mut out = std::collections::HashMap::with_capacity(found.len());
    for (p, establishments) in found {
        let scope = PatientScope {
            territory: p.territory,
            establishments,
            patient: Some(p.id),
        };
        let grant = authorize_loaded(ctx, actor, &p, &scope, PatientAction::ReadIdentity).await?;
        entries.push(audit_row(
            ctx,
            AuditActor::new(actor, grant),
            Some(p.id),
            "read",
            "success",
        ));
        out.insert(p.id, p);
    }
    ctx.store.audit_views_once(session, &entries).await?;
    Ok(out)
}

/// The names a live page shows for its patients, read by
/// [`read_many_on_live_page`].
#[derive(Debug)]
pub struct LiveNames(std::collections::HashMap<PatientId, String>);

impl LiveNames {
    /// The display name of `id` ("?" if the page did not ask for it).
    pub fn of(&self, id: PatientId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| "?".to_owned())
    }
}

/// The display names of the patients a live page names, read, authorised and
/// audited as [`read_many_on_live_page`] does.
pub async fn names_on_live_page(
    ctx: Ctx<'_>,
    actor: &Actor,
    session: &str,
    ids: &[PatientId],
) -> Result<LiveNames, AppError> {
    Ok(LiveNames(
        read_many_on_live_page(ctx, actor, session, ids)
            .await?
            .into_iter()
            .map(|(id, p)| (id, p.traits.display_name()))
            .collect(),
    ))
}

/// Identity `id` if `actor` may read it, with the audit entry of the read.
async fn identity_read(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
) -> Result<(PatientRecord, NewAudit), AppError> {
    let (p, grant) = load_authorized(ctx, actor, id, PatientAction::ReadIdentity).await?;
    let entry = audit_row(
        ctx,
        AuditActor::new(actor, grant),
        Some(id),
        "read",
        "success",
    );
    Ok((p, entry))
}

/// Searches identities in every domain where the actor may search; every record
/// returned is audited as read by a search.
/// `only` restricts the search to one domain (an IPP is only meaningful in its own).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn search(
    ctx: Ctx<'_>,
    actor: &Actor,
    q: &PatientQuery,
    only: Option<TerritoryId>,
) -> Result<Vec<(PatientRecord, String)>, AppError> {
    let domains = search_domains(ctx, actor, only).await?;
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for (territory, grant) in domains {
        let oid = ctx.store.territory(territory).await?.oid;
        let found = ctx.store.search_patients(territory, q).await?;
        rows.push(audit_row(
            ctx,
            AuditActor::new(actor, Some(grant)),
            None,
            "search",
            "success",
        ));
        for p in found {
            rows.push(audit_row(
                ctx,
                AuditActor::new(actor, Some(grant)),
                Some(p.id),
                "search",
                "success",
            ));
            out.push((p, oid.clone()));
        }
    }
    ctx.store.audit_many(&rows).await?;
    out.truncate(usize::try_from(q.limit.clamp(1, 200)).unwrap_or(200));
    Ok(out)
}

/// The domains where `actor` may search (only `only`, when given); none is a
/// refusal, audited.
async fn search_domains(
    ctx: Ctx<'_>,
    actor: &Actor,
    only: Option<TerritoryId>,
) -> Result<Vec<(TerritoryId, domain::policy::Grant)>, AppError> {
    let mut domains = territories_for(actor, PatientAction::Search);
    if let Some(t) = only {
        domains.retain(|(d, _)| *d == t);
    }
    if domains.is_empty() {
        return Err(deny(
            ctx,
            actor,
            None,
            PatientAction::Search,
            "recherche de patients non autorisée pour vos rôles",
            true,
        )
        .await);
    }
    Ok(domains)
}

/// How many identities a search matches in every domain where the actor may
/// search (`_summary=count`): no record is read, the search is audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count(
    ctx: Ctx<'_>,
    actor: &Actor,
    q: &PatientQuery,
    only: Option<TerritoryId>,
) -> Result<usize, AppError> {
    let domains = search_domains(ctx, actor, only).await?;
    let mut total = 0;
    let mut rows = Vec::new();
    for (territory, grant) in domains {
        total += ctx.store.count_search_patients(territory, q).await?;
        rows.push(audit_row(
            ctx,
            AuditActor::new(actor, Some(grant)),
            None,
            "search",
            "success",
        ));
    }
    ctx.store.audit_many(&rows).await?;
    Ok(usize::try_from(total).unwrap_or(0))
}

fn rule(e: impl ToString) -> AppError {
    AppError::Unprocessable("business-rule", e.to_string())
}

/// Creates an identity in the actor's domain, linked to the actor's
/// establishment: the record and its demographics, as stored (not read back).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: ParsedPatient,
) -> Result<(PatientRecord, Demographics), AppError> {
    let (new, who) = prepare_create(ctx, actor, input).await?;
    let record = ctx.store.create_patient(&new, &who, ctx.now_ms()).await?;
    Ok((record, new.demographics))
}

/// The identity [`create`] would store, checked and allowed (a refusal
/// audited), and who creates it: for a transaction that stores it with others.
pub async fn prepare_create(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: ParsedPatient,
) -> Result<(NewPatient, AuditActor), AppError> {
    let Some((territory, grant)) = territories_for(actor, PatientAction::CreateIdentity)
        .into_iter()
        .next()
    else {
        return Err(deny(
            ctx,
            actor,
            None,
            PatientAction::CreateIdentity,
            "création d'identité non autorisée pour vos rôles",
            true,
        )
        .await);
    };
    let status = input
        .status
        .unwrap_or(domain::identity::IdentityStatus::Provisional);
    check_status_with_ins(status, input.ins.as_ref()).map_err(rule)?;
    let new = NewPatient {
        territory,
        ipp: input.ipp,
        traits: input.traits,
        ins: input.ins,
        status,
        establishment: Some(grant.establishment),
        demographics: input.demographics,
    };
    Ok((new, AuditActor::new(actor, Some(grant))))
}

/// Replaces an identity's traits, INS, status and demographics (a FHIR PUT). The
/// IPP never changes; a status change must be an RNIV transition; the INS traits
/// of an identity from INSi change only with it (`check_trait_edit`);
/// `expected_version` (If-Match) guards against lost updates.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn update(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
    expected_version: Option<i64>,
    input: ParsedPatient,
) -> Result<PatientRecord, AppError> {
    let (next, patch, who) = prepare_update(ctx, actor, id, expected_version, input).await?;
    Ok(ctx
        .store
        .update_patient(&next, &patch, &who, ctx.now_ms())
        .await?)
}

/// The record [`update`] would store (with the version it replaces), checked
/// and allowed, its demographics and who: for a transaction.
pub async fn prepare_update(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
    expected_version: Option<i64>,
    input: ParsedPatient,
) -> Result<(PatientRecord, DemographicsPatch, AuditActor), AppError> {
    let (current, grant) = load_authorized(ctx, actor, id, PatientAction::UpdateIdentity).await?;
    if !current.active() {
        return Err(AppError::Conflict(
            "ce dossier a été fusionné: modifiez le dossier survivant".into(),
        ));
    }
    if let Some(v) = expected_version
        && v != current.version
    {
        return Err(AppError::PreconditionFailed(format!(
            "version {v} attendue, version actuelle {}",
            current.version
        )));
    }
    if let Some(ipp) = &input.ipp
        && *ipp != current.ipp
    {
        return Err(rule("l'IPP d'un dossier ne change pas"));
    }
    let status = match input.status {
        Some(s) if s != current.status => current.status.transition(s).map_err(rule)?,
        _ => current.status,
    };
    check_status_with_ins(status, input.ins.as_ref()).map_err(rule)?;
    check_trait_edit(current.status, &current.traits, status, &input.traits).map_err(rule)?;
    let next = PatientRecord {
        traits: input.traits,
        ins: input.ins,
        status,
        ..current
    };
    Ok((
        next,
        DemographicsPatch::all(input.demographics),
        AuditActor::new(actor, grant),
    ))
}

/// Loads a record and checks `action` on it for another area's use case (the
/// DMP read): the refusal audited, the grant it was allowed under.
pub async fn authorized_record(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
    action: PatientAction,
) -> Result<(PatientRecord, Option<domain::policy::Grant>), AppError> {
    load_authorized(ctx, actor, id, action).await
}

/// A record's demographics, after an audited read of it (`read`, `overview`).
pub async fn demographics(ctx: Ctx<'_>, id: PatientId) -> Result<Demographics, AppError> {
    Ok(ctx.store.demographics(id).await?)
}

/// The demographics of several records whose reads are audited already (a
/// page of search results), keyed by record, read at once.
pub async fn demographics_of(
    ctx: Ctx<'_>,
    ids: &[PatientId],
) -> Result<std::collections::HashMap<PatientId, Demographics>, AppError> {
    Ok(ctx.store.demographics_of(ids).await?)
}

/// Whether `actor` may edit `record` from the desk (the page shows the link).
pub async fn may_edit(
    ctx: Ctx<'_>,
    actor: &Actor,
    record: &PatientRecord,
) -> Result<bool, AppError> {
    let scope = scope_of(ctx, record).await?;
    Ok(
        authorize_patient(actor, PatientAction::UpdateIdentity, &scope).allowed()
            && record.active(),
    )
}

/// The desk edits a record: its traits (`traits`: the INS traits of an identity
/// from INSi only change with a new qualification, `check_trait_edit`; used
/// names always) and part of its demographics (`patch`), checked against the
/// rules and written with the record's version bumped, the demographic parts
/// that changed named in the audit trail. `expected_version` guards against a
/// form filled while someone else (or the GAM's feed) changed the record.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn edit(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: PatientId,
    expected_version: i64,
    traits: domain::identity::Traits,
    patch: DemographicsPatch,
) -> Result<PatientRecord, AppError> {
    let (current, grant) = load_authorized(ctx, actor, id, PatientAction::UpdateIdentity).await?;
    if !current.active() {
        return Err(AppError::Conflict(
            "ce dossier a été fusionné: modifiez le dossier survivant".into(),
        ));
    }
    if expected_version != current.version {
        return Err(AppError::Conflict(
            "le dossier a été modifié entre-temps: rechargez la page et recommencez".into(),
        ));
    }
    let today = crate::fmt::paris_today(ctx.clock.now());
    check_trait_edit(current.status, &current.traits, current.status, &traits).map_err(rule)?;
    traits.check(today).map_err(rule)?;
    let next_details = ctx.store.demographics(id).await?.patched(patch.clone());
    next_details.check(traits.birth_date, today).map_err(rule)?;
    let next = PatientRecord { traits, ..current };
    Ok(ctx
        .store
        .update_patient(&next, &patch, &AuditActor::new(actor, grant), ctx.now_ms())
        .await?)
}

/// Merges `merged` into `survivor` (identity vigilance).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn merge(
    ctx: Ctx<'_>,
    actor: &Actor,
    survivor: PatientId,
    merged: PatientId,
) -> Result<PatientRecord, AppError> {
    let (_, grant) = load_authorized(ctx, actor, survivor, PatientAction::Merge).await?;
    load_authorized(ctx, actor, merged, PatientAction::Merge).await?;
    ctx.store
        .merge_patients(
            survivor,
            merged,
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await?;
    Ok(ctx.store.patient(merged).await?)
}

/// The establishments of a record, for display.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn establishments(ctx: Ctx<'_>, id: PatientId) -> Result<Vec<EstablishmentId>, AppError> {
    Ok(ctx.store.patient_establishments(id).await?)
}

/// The stays of a patient (clinical data: only establishments caring for the
/// patient), audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn encounters(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
) -> Result<Vec<store::encounters::EncounterRecord>, AppError> {
    let (_, grant) = load_authorized(ctx, actor, patient, PatientAction::ReadClinical).await?;
    let list = ctx.store.encounters_of(patient).await?;
    let rows: Vec<NewAudit> = list
        .iter()
        .map(|e| NewAudit {
            resource: format!("Encounter/{}", e.id),
            ..audit_row(
                ctx,
                AuditActor::new(actor, grant),
                Some(patient),
                "read-clinical",
                "success",
            )
        })
        .collect();
    if !rows.is_empty() {
        ctx.store.audit_many(&rows).await?;
    }
    Ok(list)
}

/// One stay, audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn encounter(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::EncounterId,
) -> Result<store::encounters::EncounterRecord, AppError> {
    let e = match ctx.store.encounter(id).await {
        Ok(e) => e,
        Err(store::StoreError::NotFound) => {
            return Err(AppError::NotFound("séjour introuvable".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let (_, grant) = load_authorized(ctx, actor, e.patient, PatientAction::ReadClinical).await?;
    let row = NewAudit {
        resource: format!("Encounter/{}", e.id),
        ..audit_row(
            ctx,
            AuditActor::new(actor, grant),
            Some(e.patient),
            "read-clinical",
            "success",
        )
    };
    ctx.store.audit(&row).await?;
    Ok(e)
}

/// Checks that `actor` may read `patient`'s clinical data and audits the read of
/// `resource` (for reads that have no dedicated use case yet).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn clinical_read(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    resource: &str,
) -> Result<(), AppError> {
    let (_, grant) = load_authorized(ctx, actor, patient, PatientAction::ReadClinical).await?;
    let row = NewAudit {
        resource: resource.to_owned(),
        ..audit_row(
            ctx,
            AuditActor::new(actor, grant),
            Some(patient),
            "read-clinical",
            "success",
        )
    };
    ctx.store.audit(&row).await?;
    Ok(())
}

/// A patient's page as a professional sees it.
#[derive(Debug)]
pub struct Overview {
    /// The record (an audited read).
    pub record: PatientRecord,
    /// The names of the establishments that know the patient.
    pub establishments: Vec<String>,
    /// Whether `actor` writes the patient's clinical data (orient, enrol).
    pub carer: bool,
    /// Whether `actor` may draft documents for the patient.
    pub documents: bool,
    /// The enrolments, when `actor` is a carer.
    pub enrolments: Vec<store::monitoring::Enrolment>,
    /// The patient's DMP and whether they opposed feeding it.
    pub dmp: (domain::documents::DmpState, bool),
    /// Addresses, phones, close ones, GP, language, death.
    pub demographics: Demographics,
    /// Whether `actor` may edit the record from the desk.
    pub editable: bool,
}

/// Patient `id`'s page for `actor`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn overview(ctx: Ctx<'_>, actor: &Actor, id: PatientId) -> Result<Overview, AppError> {
    let record = read(ctx, actor, id).await?;
    let mut establishments = Vec::new();
    for e in ctx.store.patient_establishments(id).await? {
        establishments.push(crate::services::directory::establishment_name(ctx, e).await);
    }
    let scope = scope_of(ctx, &record).await?;
    let carer = authorize_patient(actor, PatientAction::WriteClinical, &scope).allowed();
    let enrolments = if carer {
        ctx.store.enrolments_of(id).await?
    } else {
        vec![]
    };
    Ok(Overview {
        documents: authorize_patient(actor, PatientAction::DraftDocument, &scope).allowed(),
        dmp: ctx.store.dmp_of(id).await?,
        demographics: ctx.store.demographics(id).await?,
        editable: authorize_patient(actor, PatientAction::UpdateIdentity, &scope).allowed()
            && record.active(),
        record,
        establishments,
        carer,
        enrolments,
    })
}

/// The patient `actor` is, for their own account page.
pub fn own(actor: &Actor) -> Result<PatientId, AppError> {
    match actor.principal {
        Principal::Patient { patient, .. } => Ok(patient),
        _ => Err(AppError::NotFound("page réservée aux patients".into())),
    }
}

/// The e-mail address the patient `actor` gave for notices.
pub async fn own_email(ctx: Ctx<'_>, actor: &Actor) -> Result<Option<String>, AppError> {
    Ok(ctx.store.patient_email(own(actor)?).await?)
}

/// What became of an address a patient gave on the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChange {
    /// Empty: forgotten at once, nothing goes by e-mail any more.
    Forgotten,
    /// The address notices already go to.
    Unchanged,
    /// A confirmation link left for it: notices go there once it is followed.
    ConfirmationSent,
    /// Not an e-mail address (nothing written).
    Invalid,
    /// No relay, or the relay refused: it cannot be confirmed now (nothing written).
    CannotMail,
}

/// The patient `actor` gives (or, empty, forgets) their e-mail address. A
/// new address is not used before the patient follows the link mailed to it:
/// a typo must not send someone else their appointments.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn set_own_email(
    ctx: Ctx<'_>,
    actor: &Actor,
    email: &str,
) -> Result<EmailChange, AppError> {
    let p = own(actor)?;
    let Principal::Patient { user, .. } = actor.principal else {
        return Err(AppError::NotFound("page réservée aux patients".into()));
    };
    let email = email.trim();
    if email.is_empty() {
        ctx.store.set_patient_email(p, None, ctx.now_ms()).await?;
        return Ok(EmailChange::Forgotten);
    }
    if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return Ok(EmailChange::Invalid);
    }
    if ctx.store.patient_email(p).await?.as_deref() == Some(email) {
        return Ok(EmailChange::Unchanged);
    }
    if ctx.mailer.is_none() {
        return Ok(EmailChange::CannotMail);
    }
    let link = crate::services::accounts::issue_link(
        ctx,
        user,
        store::accounts::LinkPurpose::EmailConfirmation,
        "self",
        Some(email),
    )
    .await?;
    Ok(if link.mailed {
        EmailChange::ConfirmationSent
    } else {
        EmailChange::CannotMail
    })
}
