//! The DMP read from the patient's record (D9): a professional with clinical
//! access lists what the DMP (or another Parcours acting as MHD Document
//! Responder) holds for the patient — ITI-67 by INS, only for a qualified
//! identity with a DMP —, opens one (ITI-68) and may file a copy in the local
//! record. Every consultation is audited (`read-dmp`); a copy is filed like a
//! received document (`source = dmp`).
//!
//! The patient's consent to consultation (PAM France ZFA-11, from the GAM) is
//! checked first: refused, nothing is asked of the DMP.

use domain::PatientId;
use domain::audit::AuditActor;
use domain::documents::{Kind, dmp_consultable};
use domain::policy::{Actor, PatientAction};
use interop::fhir::mhd::Found;
use store::audit::NewAudit;
use store::documents::ReceivedDocument;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::patients;

/// Where the patient's DMP is asked, and as whom.
struct Consult {
    /// The establishment whose MHD client asks (the professional's).
    establishment: domain::EstablishmentId,
    /// The responder's FHIR base.
    base: String,
    /// The `patient.identifier` token (`urn:oid:…|INS`).
    identifier: String,
    who: AuditActor,
}

/// The checks before any call: clinical access, a qualified identity with its
/// INS, a DMP that may exist, a responder configured.
async fn consult(ctx: Ctx<'_>, actor: &Actor, pid: PatientId) -> Result<Consult, AppError> {
    let (p, grant) =
        patients::authorized_record(ctx, actor, pid, PatientAction::ReadClinical).await?;
    let Some(grant) = grant else {
        return Err(AppError::Forbidden(
            "le DMP se consulte depuis un établissement".into(),
        ));
    };
    let (state, _) = ctx.store.dmp_of(pid).await?;
    let consent = ctx.store.dmp_consultation_consent(pid).await?;
    let ins = p.ins.as_ref().filter(|_| p.status.ins_exchangeable());
    dmp_consultable(ins.is_some(), state, consent)
        .map_err(|e| AppError::Unprocessable("business-rule", e.to_string()))?;
    let Some(ins) = ins else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "identité non qualifiée".into(),
        ));
    };
    let base = crate::services::directory::setting(ctx, grant.establishment, "mhd_recipient")
        .await?
        .or_else(|| ctx.config.mhd_destination.clone())
        .ok_or_else(|| {
            AppError::Unavailable(
                "aucun DMP configuré (PARCOURS_MHD_DESTINATION ou mhd_recipient)".into(),
            )
        })?;
    Ok(Consult {
        establishment: grant.establishment,
        base: base.trim_end_matches('/').to_owned(),
        identifier: format!("urn:oid:{}|{}", ins.kind().oid(), ins.value()),
        who: AuditActor::new(actor, Some(grant)),
    })
}

async fn audit(
    ctx: Ctx<'_>,
    c: &Consult,
    pid: PatientId,
    resource: String,
) -> Result<(), AppError> {
    ctx.store
        .audit(&NewAudit {
            at_ms: ctx.now_ms(),
            actor: c.who.clone(),
            patient: Some(pid.to_string()),
            action: "read-dmp".into(),
            resource,
            outcome: "success".into(),
        })
        .await?;
    Ok(())
}

async fn get(ctx: Ctx<'_>, c: &Consult, url: &str) -> Result<(String, Vec<u8>), AppError> {
    crate::delivery::mhd_get(ctx.store, ctx.config, ctx.mhd_tokens, c.establishment, url)
        .await
        .map_err(|e| {
            let (crate::outbound::DeliveryError::Transient(why)
            | crate::outbound::DeliveryError::Refused(why)) = e;
            AppError::Unavailable(format!("DMP injoignable ou refus : {why}"))
        })
}

/// The documents the DMP holds for `pid` (ITI-67), newest first; audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn documents(
    ctx: Ctx<'_>,
    actor: &Actor,
    pid: PatientId,
) -> Result<Vec<Found>, AppError> {
    let c = consult(ctx, actor, pid).await?;
    listed(ctx, &c, pid).await
}

/// ITI-67 for the consultation `c` has cleared; audited.
async fn listed(ctx: Ctx<'_>, c: &Consult, pid: PatientId) -> Result<Vec<Found>, AppError> {
    let query = serde_urlencoded::to_string([
        ("patient.identifier", c.identifier.as_str()),
        ("status", "current"),
    ])
    .unwrap_or_default();
    let url = format!("{}/DocumentReference?{query}", c.base);
    let (_, body) = get(ctx, c, &url).await?;
    let bundle: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| AppError::Unavailable("réponse du DMP illisible".into()))?;
    let mut found = interop::fhir::mhd::read_search(&bundle)
        .map_err(|e| AppError::Unavailable(format!("réponse du DMP : {e}")))?;
    found.sort_by(|a, b| b.date.cmp(&a.date));
    audit(
        ctx,
        c,
        pid,
        format!("DMP DocumentReference?patient.identifier={}", c.identifier),
    )
    .await?;
    Ok(found)
}

/// One document of the DMP as listed now (its id there), and its content
/// (ITI-68), fetched only from the DMP's own address; audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn open(
    ctx: Ctx<'_>,
    actor: &Actor,
    pid: PatientId,
    id: &str,
) -> Result<(Found, String, Vec<u8>), AppError> {
    let c = consult(ctx, actor, pid).await?;
    let doc = listed(ctx, &c, pid)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| AppError::NotFound("document introuvable dans le DMP".into()))?;
    // The content only from the DMP's own address: a listed URL elsewhere is
    // not followed (the server's network is not the DMP's to point at).
    if !doc.url.starts_with(&format!("{}/", c.base)) {
        return Err(AppError::Unprocessable(
            "business-rule",
            "le contenu de ce document n'est pas à l'adresse du DMP".into(),
        ));
    }
    let url = doc.url.clone();
    let (media, body) = get(ctx, &c, &url).await?;
    audit(ctx, &c, pid, format!("DMP {url}")).await?;
    let media = if media.is_empty() {
        doc.content_type.clone()
    } else {
        media
    };
    Ok((doc, media, body))
}

/// Files a copy of DMP document `id` in `pid`'s local record (its unique id
/// kept: filed once), at the professional's establishment. Its local id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn file_copy(
    ctx: Ctx<'_>,
    actor: &Actor,
    pid: PatientId,
    id: &str,
) -> Result<domain::DocumentId, AppError> {
    let (_, grant) =
        patients::authorized_record(ctx, actor, pid, PatientAction::WriteClinical).await?;
    let Some(grant) = grant else {
        return Err(AppError::Forbidden(
            "copie depuis un établissement seulement".into(),
        ));
    };
    let (doc, media, body) = open(ctx, actor, pid, id).await?;
    if let Some(existing) = ctx.store.document_by_unique_id(&doc.unique_id).await? {
        return Ok(existing.id);
    }
    let kind = domain::documents::ALL_KINDS
        .into_iter()
        .find(|k| k.loinc().0 == doc.type_code.0)
        .unwrap_or(Kind::CrConsultation);
    let filed = ctx
        .store
        .file_document(
            &ReceivedDocument {
                unique_id: doc.unique_id.clone(),
                patient: pid,
                establishment: grant.establishment,
                kind,
                title: doc.title.clone(),
                source: "dmp".into(),
                sender: "DMP".into(),
                content_type: media.split(';').next().unwrap_or("").trim().to_owned(),
                content: body,
                replaces: None,
            },
            &[],
            &AuditActor::new(actor, Some(grant)),
            ctx.now_ms(),
        )
        .await;
    match filed {
        Ok(id) => {
            crate::services::subscriptions::document_filed(ctx, id, pid, grant.establishment).await;
            Ok(id)
        }
        Err(store::StoreError::Conflict(_)) => ctx
            .store
            .document_by_unique_id(&doc.unique_id)
            .await?
            .map(|d| d.id)
            .ok_or_else(|| AppError::Conflict("copie en cours ailleurs".into())),
        Err(e) => Err(e.into()),
    }
}
