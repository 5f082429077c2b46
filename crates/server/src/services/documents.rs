//! Documents: a draft from a template, filled from the record and the last
//! stay; edited until a doctor validates it in one click; validation renders
//! the PDF and the CDA, decides each recipient (the portal at once, the DMP over
//! MHD when the patient is eligible, the GP and the referrer by secure
//! messaging) and writes everything with the outbox messages in one
//! transaction. Received documents (ITI-65) are filed on the patient found by
//! INS. Every read is audited.

use domain::DocumentId;
use domain::audit::AuditActor;
use domain::documents::{self as rules, Kind, Recipient, Status};
use domain::org::Role;
use domain::policy::{Actor, Decision, PatientAction, authorize_patient};
use domain::{EstablishmentId, PatientId};
use store::documents::{Document, NewDocument, ReceivedDocument, RecipientPlan};
use store::outbox::NewMessage;

use crate::error::AppError;
use crate::fmt::paris_date as date_fr;
use crate::services::ctx::Ctx;
use crate::services::patients;

pub use crate::outbound::{MHD_TOPIC, MSS_TOPIC};

fn not_found() -> AppError {
    AppError::NotFound("document introuvable".into())
}

/// Checks `action` on the patient; the grant used (for the audit and the
/// establishment).
async fn authorized(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    action: PatientAction,
) -> Result<Option<domain::policy::Grant>, AppError> {
    let (_, scope) = patients::with_scope(ctx, patient)
        .await
        .map_err(|_| not_found())?;
    match authorize_patient(actor, action, &scope) {
        Decision::Allow(g) => Ok(g),
        Decision::Deny(why) => Err(AppError::Forbidden(why.into())),
    }
}

/// Starts a draft of type `kind` for the patient (staff who may write in the
/// record), written for `unit` (a unit code of the establishment; by default
/// the unit of the patient's last stay there); its text starts with the
/// template's sections, the facts the record knows already filled in. Its id.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn draft(
    ctx: Ctx<'_>,
    actor: &Actor,
    drafted_by: &str,
    patient: PatientId,
    kind: Kind,
    unit: Option<&str>,
) -> Result<DocumentId, AppError> {
    let grant = authorized(ctx, actor, patient, PatientAction::DraftDocument)
        .await?
        .ok_or_else(|| {
            AppError::Forbidden("rédaction réservée aux soignants et au secrétariat".into())
        })?;
    let p = ctx.store.patient(patient).await?;
    let est = ctx.store.establishment(grant.establishment).await?;
    let stays = patients::encounters(ctx, actor, patient).await?;
    let last = stays
        .iter()
        .filter(|e| e.establishment == grant.establishment)
        .max_by_key(|e| e.started_at_ms.unwrap_or(0));
    let mut body = format!(
        "Patient : {}, né(e) le {}\nÉtablissement : {}\n",
        p.traits.display_name(),
        p.traits.birth_date.strftime("%d/%m/%Y"),
        est.name
    );
    if let Some(e) = last {
        body.push_str(&format!(
            "Séjour : du {}{}{}\n",
            e.started_at_ms.map(date_fr).unwrap_or_else(|| "?".into()),
            e.ended_at_ms
                .map(|m| format!(" au {}", date_fr(m)))
                .unwrap_or_default(),
            e.location
                .unit
                .as_deref()
                .map(|u| format!(", unité {u}"))
                .unwrap_or_default()
        ));
    }
    for s in kind.sections() {
        body.push_str(&format!("\n{s} :\n\n"));
    }
    let unit = match unit.map(str::trim).filter(|u| !u.is_empty()) {
        Some(code) => {
            let units = ctx.store.units(grant.establishment).await?;
            if !units.iter().any(|u| u.code == code) {
                return Err(AppError::Unprocessable(
                    "business-rule",
                    format!("unité inconnue dans cet établissement : {code}"),
                ));
            }
            Some(code.to_owned())
        }
        None => last.and_then(|e| e.location.unit.clone()),
    };
    Ok(ctx
        .store
        .create_document(
            &NewDocument {
                patient,
                establishment: grant.establishment,
                kind,
                title: kind.label_fr().to_owned(),
                body,
                created_by: drafted_by.to_owned(),
                unit,
            },
            &AuditActor::new(actor, Some(grant)),
            ctx.now_ms(),
        )
        .await?)
}

/// A document this actor may read (audited).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn read(ctx: Ctx<'_>, actor: &Actor, id: DocumentId) -> Result<Document, AppError> {
    let d = ctx.store.document(id).await.map_err(|_| not_found())?;
    patients::clinical_read(ctx, actor, d.patient, &format!("DocumentReference/{id}")).await?;
    Ok(d)
}

/// A patient's documents for this actor (one audited read): the staff who may
/// read the record see all of them, drafts included; the patient only those
/// sent to them.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn of_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
) -> Result<Vec<Document>, AppError> {
    patients::clinical_read(ctx, actor, patient, "DocumentReference").await?;
    let all = ctx.store.documents_of_patient(patient).await?;
    if !matches!(actor.principal, domain::policy::Principal::Patient { .. }) {
        return Ok(all);
    }
    let shown: Vec<DocumentId> = all
        .iter()
        .filter(|d| d.status == Status::Validated && d.superseded_by.is_none())
        .map(|d| d.id)
        .collect();
    // Only the shown documents are asked for: a recipient found is a shown one.
    let to_patient: std::collections::HashSet<String> = ctx
        .store
        .recipients_of_documents(&shown)
        .await?
        .into_iter()
        .filter(|r| r.recipient == Recipient::Patient)
        .map(|r| r.document_id)
        .collect();
    Ok(all
        .into_iter()
        .filter(|d| to_patient.contains(&d.id.to_string()))
        .collect())
}

/// Saves a draft's title and text.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn edit(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: DocumentId,
    title: &str,
    body: &str,
) -> Result<(), AppError> {
    let d = ctx.store.document(id).await.map_err(|_| not_found())?;
    let grant = authorized(ctx, actor, d.patient, PatientAction::DraftDocument).await?;
    rules::may_edit(d.status).map_err(|e| AppError::Conflict(e.to_string()))?;
    let title = title.trim();
    if title.is_empty() {
        return Err(AppError::Unprocessable(
            "business-rule",
            "le titre est vide".into(),
        ));
    }
    if !ctx
        .store
        .update_draft(
            &d,
            title,
            body,
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await?
    {
        return Err(AppError::Conflict(
            rules::DocumentError::AlreadyValidated.to_string(),
        ));
    }
    Ok(())
}

/// Starts the corrected next version of a validated document (a doctor of
/// its establishment); validating it replaces this one everywhere it went. Its
/// id (the draft already started, if any).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revise(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: &store::users::User,
    id: DocumentId,
) -> Result<DocumentId, AppError> {
    let d = ctx.store.document(id).await.map_err(|_| not_found())?;
    let grant = authorized(ctx, actor, d.patient, PatientAction::WriteClinical).await?;
    let is_doctor = actor
        .grants
        .iter()
        .any(|g| g.role == Role::Doctor && g.establishment == d.establishment);
    if !is_doctor {
        return Err(AppError::Forbidden(
            rules::DocumentError::NotADoctor.to_string(),
        ));
    }
    if d.status != Status::Validated || d.source != "local" {
        return Err(AppError::Conflict(
            "seul un document validé ici peut être corrigé".into(),
        ));
    }
    ctx.store
        .revise_document(
            &d,
            &user.id.to_string(),
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await?
        .ok_or_else(|| AppError::Conflict("ce document a déjà été remplacé".into()))
}

/// Where the GP's and the referrer's copies go.
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    /// The GP's secure-messaging address.
    pub gp: String,
    /// The referrer's.
    pub referrer: String,
}

/// The PDF rendition of a document.
fn pdf_of(d: &Document, author: &str, establishment: &str) -> Vec<u8> {
    let mut lines: Vec<String> = d.body.lines().map(str::to_owned).collect();
    lines.push(String::new());
    lines.push(format!("{author} — {establishment}"));
    interop::pdf::text_document(&d.title, &lines)
}

/// What the DMP copy of a document is made of.
pub(crate) struct ForDmp<'a> {
    /// The outbox idempotency key.
    pub key: String,
    /// Whose document: its MHD recipient and credentials send it.
    pub establishment: domain::EstablishmentId,
    pub unique_id: &'a str,
    /// RPPS and display name.
    pub author: (Option<&'a str>, &'a str),
    /// FINESS and name.
    pub custodian: (&'a str, &'a str),
    pub type_code: (&'a str, &'a str),
    pub class_code: (&'a str, &'a str),
    pub title: &'a str,
    pub date_ms: i64,
    pub period_start_ms: i64,
    pub cda: &'a [u8],
    /// The unique id of the version it replaces.
    pub replaces: Option<&'a str>,
}

/// The DMP recipient of a document: an ITI-65 submission through the outbox
/// when the patient is eligible and a recipient is configured; otherwise
/// skipped (the patient's reason) or waiting (ours), with why.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn dmp_plan(
    ctx: Ctx<'_>,
    p: &domain::identity::PatientRecord,
    f: &ForDmp<'_>,
) -> Result<RecipientPlan, AppError> {
    let (dmp, opposition) = ctx.store.dmp_of(p.id).await?;
    let mhd = crate::services::directory::setting(ctx, f.establishment, "mhd_recipient")
        .await?
        .or_else(|| ctx.config.mhd_destination.clone());
    let eligible = rules::dmp_eligibility(
        p.status.ins_exchangeable() && p.ins.is_some(),
        dmp,
        opposition,
    );
    let plan = |state: &'static str, detail: String| RecipientPlan {
        recipient: Recipient::Dmp,
        address: String::new(),
        message: None,
        state,
        detail: Some(detail),
    };
    Ok(match (eligible, mhd.as_deref(), p.ins.as_ref()) {
        (Err(why), _, _) => plan("skipped", why.to_string()),
        (Ok(()), None, _) | (Ok(()), _, None) => plan(
            "waiting",
            "aucun destinataire MHD configuré (PARCOURS_MHD_DESTINATION)".into(),
        ),
        (Ok(()), Some(dest), Some(ins)) => {
            let oid = ins.kind().oid();
            let value = ins.value();
            let submission = uuid::Uuid::new_v4().to_string();
            let bundle = interop::fhir::mhd::provide_bundle(&interop::fhir::mhd::Submission {
                unique_id: f.unique_id,
                submission_id: &submission,
                ins: (&value, oid),
                author: f.author,
                custodian: f.custodian,
                type_code: f.type_code,
                class_code: f.class_code,
                title: f.title,
                date_ms: f.date_ms,
                period_start_ms: f.period_start_ms,
                cda: f.cda,
                replaces: f.replaces,
            });
            RecipientPlan {
                recipient: Recipient::Dmp,
                address: dest.to_owned(),
                message: Some(NewMessage {
                    idempotency_key: f.key.clone(),
                    topic: MHD_TOPIC.into(),
                    destination: dest.to_owned(),
                    payload: bundle.to_string(),
                    establishment: Some(f.establishment),
                }),
                state: "pending",
                detail: None,
            }
        }
    })
}

/// Validates a draft (a doctor of its establishment) and sends it to each
/// chosen recipient. Returns how each was planned.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn validate(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: &store::users::User,
    id: DocumentId,
    chosen: &[Recipient],
    addresses: &Addresses,
) -> Result<Vec<RecipientPlan>, AppError> {
    let d = ctx.store.document(id).await.map_err(|_| not_found())?;
    let grant = authorized(ctx, actor, d.patient, PatientAction::WriteClinical).await?;
    let is_doctor = actor
        .grants
        .iter()
        .any(|g| g.role == Role::Doctor && g.establishment == d.establishment);
    rules::may_validate(d.status, is_doctor, &d.body, chosen).map_err(|e| match e {
        rules::DocumentError::AlreadyValidated => AppError::Conflict(e.to_string()),
        rules::DocumentError::NotADoctor => AppError::Forbidden(e.to_string()),
        _ => AppError::Unprocessable("business-rule", e.to_string()),
    })?;
    let p = ctx.store.patient(d.patient).await?;
    let est = ctx.store.establishment(d.establishment).await?;
    let now = ctx.now_ms();
    let built = build_cda(ctx, &d, user, &p, &est).await?;
    let mut plans = Vec::new();
    for r in chosen {
        let plan = match r {
            Recipient::Patient => RecipientPlan {
                recipient: *r,
                address: "portail Parcours".into(),
                message: Some(NewMessage {
                    idempotency_key: format!("doc:{}:patient", d.id),
                    topic: crate::outbound::NOTIFY_TOPIC.into(),
                    destination: format!("portail:{}", d.patient),
                    payload: format!(
                        "Un nouveau document est disponible dans votre espace Parcours : {}.",
                        d.title
                    ),
                    establishment: Some(d.establishment),
                }),
                state: "pending",
                detail: None,
            },
            Recipient::Dmp => {
                let for_dmp = ForDmp {
                    key: format!("doc:{}:dmp", d.id),
                    establishment: est.id,
                    unique_id: &d.unique_id,
                    author: (user.rpps.as_deref(), &user.display_name),
                    custodian: (&est.finess, &est.name),
                    type_code: d.kind.loinc(),
                    class_code: d.kind.class(),
                    title: &d.title,
                    date_ms: now,
                    period_start_ms: built.stay_start_ms.unwrap_or(now),
                    cda: built.cda.as_bytes(),
                    replaces: built.replaced.as_ref().map(|o| o.unique_id.as_str()),
                };
                dmp_plan(ctx, &p, &for_dmp).await?
            }
            Recipient::Gp | Recipient::Referrer => {
                let address = if *r == Recipient::Gp {
                    addresses.gp.trim()
                } else {
                    addresses.referrer.trim()
                };
                mail_plan(ctx, *r, address, &d, &p, &est, user, &built)?
            }
        };
        plans.push(plan);
    }
    if !ctx
        .store
        .validate_document(
            &d,
            &user.id.to_string(),
            "text/xml",
            built.cda.as_bytes(),
            &plans,
            &AuditActor::new(actor, grant),
            now,
        )
        .await?
    {
        return Err(AppError::Conflict(
            rules::DocumentError::AlreadyValidated.to_string(),
        ));
    }
    crate::services::subscriptions::document_filed(ctx, d.id, d.patient, d.establishment).await;
    Ok(plans)
}

/// A validated document as it leaves: its CDA (level 1, the PDF inside),
/// the PDF, when it took effect, and what it corrects.
struct Built {
    cda: String,
    pdf: Vec<u8>,
    /// HL7 DTM of the validation.
    effective: String,
    /// The start of the patient's latest stay at the establishment (Unix ms).
    stay_start_ms: Option<i64>,
    /// The version it replaces, for a correction.
    replaced: Option<Document>,
}

async fn build_cda(
    ctx: Ctx<'_>,
    d: &Document,
    user: &store::users::User,
    p: &domain::identity::PatientRecord,
    est: &store::orgs::Establishment,
) -> Result<Built, AppError> {
    let territory = ctx.store.territory(p.territory).await?;
    let (given, family) = user
        .display_name
        .trim_start_matches("Dr ")
        .split_once(' ')
        .map_or(("", user.display_name.as_str()), |(g, f)| (g, f));
    let pdf = pdf_of(d, &user.display_name, &est.name);
    let effective = crate::fmt::hl7_dtm(ctx.now_ms());
    let stays = ctx.store.encounters_of(d.patient).await?;
    let stay = stays
        .iter()
        .filter(|e| e.establishment == d.establishment)
        .max_by_key(|e| e.started_at_ms.unwrap_or(0));
    let (start, end) = (
        stay.and_then(|e| e.started_at_ms).map(crate::fmt::hl7_dtm),
        stay.and_then(|e| e.ended_at_ms).map(crate::fmt::hl7_dtm),
    );
    // A correction names the version it replaces.
    let replaced = match &d.replaces {
        Some(old) => Some(ctx.store.document(*old).await?),
        None => None,
    };
    let cda = interop::cda::build(&interop::cda::CdaInput {
        id: d.unique_id.trim_start_matches("urn:uuid:"),
        set_id: &d.set_id,
        version: u32::try_from(d.version).unwrap_or(1),
        kind: d.kind,
        title: &d.title,
        effective: &effective,
        patient: p,
        ipp_oid: &territory.oid,
        author: interop::cda::Professional {
            rpps: user.rpps.as_deref(),
            given,
            family,
        },
        establishment: (&est.finess, &est.name),
        encounter: start.as_deref().map(|s| (s, end.as_deref())),
        confidentiality: "N",
        pdf: &pdf,
        replaces: replaced.as_ref().map(|o| {
            (
                o.unique_id.trim_start_matches("urn:uuid:"),
                o.set_id.as_str(),
                u32::try_from(o.version).unwrap_or(1),
            )
        }),
    });
    Ok(Built {
        cda,
        pdf,
        effective,
        stay_start_ms: stay.and_then(|e| e.started_at_ms),
        replaced,
    })
}

/// The secure-messaging plan for the GP or the referrer at `address`:
/// skipped without an address, refused when it is not one, waiting when no
/// relay is configured, else an XDM archive (with the PDF) to send.
#[allow(clippy::too_many_arguments)]
fn mail_plan(
    ctx: Ctx<'_>,
    r: Recipient,
    address: &str,
    d: &Document,
    p: &domain::identity::PatientRecord,
    est: &store::orgs::Establishment,
    user: &store::users::User,
    built: &Built,
) -> Result<RecipientPlan, AppError> {
    let plan = |address: &str, message, state, detail: Option<&str>| RecipientPlan {
        recipient: r,
        address: address.to_owned(),
        message,
        state,
        detail: detail.map(str::to_owned),
    };
    if address.is_empty() {
        return Ok(plan(
            "",
            None,
            "skipped",
            Some("adresse de messagerie sécurisée non renseignée"),
        ));
    }
    if !address.contains('@') || address.contains(char::is_whitespace) {
        return Err(AppError::Unprocessable(
            "business-rule",
            format!("adresse de messagerie invalide : {address}"),
        ));
    }
    if ctx.mailer.is_none() {
        return Ok(plan(
            address,
            None,
            "waiting",
            Some("messagerie non configurée (PARCOURS_SMTP_URL)"),
        ));
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let ins = p.ins.as_ref().filter(|_| p.status.ins_exchangeable());
    let ins_value = ins.map(|i| (i.value(), i.kind().oid()));
    let effective = &built.effective;
    let zip = interop::xdm::zip(&interop::xdm::XdmDocument {
        unique_id: &d.unique_id,
        submission_id: &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        ins: ins_value.as_ref().map(|(v, oid)| (v.as_str(), *oid)),
        type_code: d.kind.loinc(),
        class_code: d.kind.class(),
        title: &d.title,
        created: effective.get(..14).unwrap_or(effective),
        author: &user.display_name,
        finess: &est.finess,
        recipient: address,
        cda: built.cda.as_bytes(),
    });
    let message = NewMessage {
        idempotency_key: format!("doc:{}:{}", d.id, r.code()),
        topic: MSS_TOPIC.into(),
        destination: address.to_owned(),
        payload: serde_json::json!({
            "title": d.title,
            "zip": b64.encode(&zip),
            "pdf": b64.encode(&built.pdf),
        })
        .to_string(),
        establishment: Some(est.id),
    };
    Ok(plan(address, Some(message), "pending", None))
}

/// The PDF carried in a level-1 CDA (or the content itself when it is a PDF).
pub fn pdf_in(content_type: &str, content: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if content.starts_with(b"%PDF") {
        return Some(content.to_vec());
    }
    if !content_type.contains("xml") {
        return None;
    }
    let text = std::str::from_utf8(content).ok()?;
    let start = text.find("representation=\"B64\"")?;
    let after = text.get(start..)?;
    let open = after.find('>')? + 1;
    let close = after.find("</text>")?;
    let b64: String = after
        .get(open..close)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A validated document's content for this actor (audited); the patient gets
/// only what was sent to them.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn content(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: DocumentId,
) -> Result<(Document, String, Vec<u8>), AppError> {
    let d = read(ctx, actor, id).await?;
    if d.status != Status::Validated {
        return Err(not_found());
    }
    if matches!(actor.principal, domain::policy::Principal::Patient { .. }) {
        let sent = ctx
            .store
            .recipients_of(id)
            .await?
            .iter()
            .any(|r| r.recipient == Recipient::Patient);
        if !sent {
            return Err(not_found());
        }
    }
    let (t, c) = ctx
        .store
        .document_content(id)
        .await?
        .ok_or_else(not_found)?;
    Ok((d, t, c))
}

/// Files the documents of an ITI-65 bundle received from an API client, each
/// on the patient found by INS in the client's identity domain, at the client's
/// establishment, and forwards each CDA to the DMP when the patient's is fed
/// (as a mailed one is: `dmp_plan`). A document already filed under its unique
/// id is not filed twice (the same bundle resent answers the same). Their ids.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn receive(
    ctx: Ctx<'_>,
    actor: &Actor,
    sender: &str,
    bundle: &serde_json::Value,
) -> Result<Vec<DocumentId>, AppError> {
    let docs = interop::fhir::mhd::read_provide_bundle(bundle)
        .map_err(|e| AppError::Unprocessable("invalid", e))?;
    let Some(grant) = actor.grants.first().copied() else {
        return Err(AppError::Forbidden("client sans établissement".into()));
    };
    let mut ids = Vec::new();
    for r in docs {
        let (system, value) = &r.patient;
        if system != &format!("urn:oid:{}", domain::ins::OID_INS_NIR)
            && system != &format!("urn:oid:{}", domain::ins::OID_INS_NIA)
        {
            return Err(AppError::Unprocessable(
                "business-rule",
                format!("patient identifié par {system} : l'INS (NIR ou NIA) est attendue"),
            ));
        }
        let Some(p) = ctx.store.qualified_by_ins(grant.territory, value).await? else {
            return Err(AppError::Unprocessable(
                "business-rule",
                "aucune identité qualifiée ne porte cette INS ici".into(),
            ));
        };
        authorized(ctx, actor, p.id, PatientAction::WriteClinical).await?;
        if let Some(existing) = ctx.store.document_by_unique_id(&r.unique_id).await? {
            ids.push(existing.id);
            continue;
        }
        let kind = domain::documents::ALL_KINDS
            .into_iter()
            .find(|k| k.loinc().0 == r.type_code)
            .unwrap_or(Kind::CrConsultation);
        let forward = forward_to_dmp(ctx, &p, grant.establishment, kind, &r).await?;
        let id = ctx
            .store
            .file_document(
                &ReceivedDocument {
                    unique_id: r.unique_id.clone(),
                    patient: p.id,
                    establishment: grant.establishment,
                    kind,
                    title: r.title.clone(),
                    source: "mhd".into(),
                    sender: sender.to_owned(),
                    content_type: r.content_type.clone(),
                    content: r.content.clone(),
                    replaces: r.replaces.clone(),
                },
                forward.as_slice(),
                &AuditActor::new(actor, Some(grant)),
                ctx.now_ms(),
            )
            .await;
        match id {
            // A correction replaced the version it names in the same
            // transaction (or was refused: someone else's document).
            Ok(id) => {
                crate::services::subscriptions::document_filed(ctx, id, p.id, grant.establishment)
                    .await;
                ids.push(id)
            }
            // Filed by a concurrent resend meanwhile.
            Err(store::StoreError::Conflict(_)) => {
                if let Some(existing) = ctx.store.document_by_unique_id(&r.unique_id).await? {
                    ids.push(existing.id);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ids)
}

/// The DMP copy of a document received by MHD: a CDA (its header names the
/// author) goes to the DMP when the patient's is fed, as a mailed one does;
/// another content (a PDF alone) is not a DMP document: no copy.
async fn forward_to_dmp(
    ctx: Ctx<'_>,
    p: &domain::identity::PatientRecord,
    establishment: EstablishmentId,
    kind: Kind,
    r: &interop::fhir::mhd::Received,
) -> Result<Option<RecipientPlan>, AppError> {
    if !r.content_type.contains("xml") {
        return Ok(None);
    }
    let Ok(h) = interop::cda::read_header(&r.content) else {
        return Ok(None);
    };
    let est = ctx.store.establishment(establishment).await?;
    let now = ctx.now_ms();
    let type_code = if h.type_code.0.is_empty() {
        kind.loinc()
    } else {
        (h.type_code.0.as_str(), h.type_code.1.as_str())
    };
    let plan = dmp_plan(
        ctx,
        p,
        &ForDmp {
            key: format!("mhd:{}:dmp", r.unique_id),
            establishment,
            unique_id: &r.unique_id,
            author: (h.author_rpps.as_deref(), &h.author),
            custodian: (&est.finess, &est.name),
            type_code,
            class_code: kind.class(),
            title: &r.title,
            date_ms: now,
            period_start_ms: now,
            cda: &r.content,
            replaces: r.replaces.as_deref(),
        },
    )
    .await?;
    Ok(Some(plan))
}

/// One establishment's dispatch dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Documents validated in the period.
    pub documents: Vec<(Document, Vec<store::documents::RecipientState>)>,
    /// Pushed to the DMP.
    pub dmp_pushed: u64,
    /// Eligible for the DMP.
    pub dmp_eligible: u64,
}

/// Documents validated at `establishment` (for `unit` when given) since
/// `since_ms` and where each went.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn dashboard(
    ctx: Ctx<'_>,
    establishment: EstablishmentId,
    unit: Option<&str>,
    since_ms: i64,
) -> Result<Dashboard, AppError> {
    let docs: Vec<Document> = ctx
        .store
        .validated_documents(establishment, since_ms)
        .await?
        .into_iter()
        .filter(|d| unit.is_none() || d.unit.as_deref() == unit)
        .collect();
    let recipients = ctx
        .store
        .document_recipients(establishment, since_ms)
        .await?;
    let mut out = Vec::new();
    let (mut pushed, mut eligible) = (0u64, 0u64);
    for d in docs {
        let mine: Vec<_> = recipients
            .iter()
            .filter(|r| r.document_id == d.id.to_string())
            .cloned()
            .collect();
        if let Some(dmp) = mine.iter().find(|r| r.recipient == Recipient::Dmp) {
            // Skipped for a reason of the patient's (no DMP, opposition, identity)
            // is not eligible; anything else counts.
            if dmp.state != "skipped" {
                eligible += 1;
                if dmp.state == "delivered" {
                    pushed += 1;
                }
            }
        }
        out.push((d, mine));
    }
    Ok(Dashboard {
        documents: out,
        dmp_pushed: pushed,
        dmp_eligible: eligible,
    })
}

/// The patient's validated documents at `actor`'s establishments; reading
/// them is reading the record (allowed and audited as `resource`, or
/// refused), nothing to read is nothing audited.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn validated_of_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    resource: &str,
) -> Result<Vec<Document>, AppError> {
    let mine = crate::services::directory::grant_establishments(actor);
    let docs: Vec<_> = ctx
        .store
        .documents_of_patient(patient)
        .await?
        .into_iter()
        .filter(|d| {
            d.status == domain::documents::Status::Validated && mine.contains(&d.establishment)
        })
        .collect();
    if !docs.is_empty() {
        patients::clinical_read(ctx, actor, patient, resource).await?;
    }
    Ok(docs)
}

/// The stored file of document `id` (type, bytes), once its read was
/// allowed and audited (by [`validated_of_patient`]).
pub async fn stored_file(
    ctx: Ctx<'_>,
    id: DocumentId,
) -> Result<Option<(String, Vec<u8>)>, AppError> {
    Ok(ctx.store.document_content(id).await?)
}

/// Whether document `id` belongs to one of `actor`'s establishments (else
/// 404: another establishment's documents are not even said to exist).
pub async fn visible(ctx: Ctx<'_>, actor: &Actor, id: DocumentId) -> Result<(), AppError> {
    let not_found = || AppError::NotFound("document introuvable".into());
    let d = ctx.store.document(id).await.map_err(|_| not_found())?;
    if crate::services::directory::grant_establishments(actor).contains(&d.establishment) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The units of the establishment where `actor` works (code, name).
pub async fn writer_units(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<(String, String)>, AppError> {
    let Some(g) = actor.grants.first() else {
        return Ok(Vec::new());
    };
    units_of(ctx, g.establishment).await
}

/// The units of `establishment` (code, name).
pub async fn units_of(
    ctx: Ctx<'_>,
    establishment: domain::EstablishmentId,
) -> Result<Vec<(String, String)>, AppError> {
    Ok(ctx
        .store
        .units(establishment)
        .await?
        .into_iter()
        .map(|u| (u.code, u.name))
        .collect())
}

/// What the hospital knows of the patient's DMP (whose record was read,
/// audited, by the caller), and whether they opposed feeding it.
pub async fn dmp_status(
    ctx: Ctx<'_>,
    patient: PatientId,
) -> Result<(domain::documents::DmpState, bool), AppError> {
    Ok(ctx.store.dmp_of(patient).await?)
}

/// Records what the hospital knows of the patient's DMP, for those who write
/// in the record (a read of the DMP status, audited, comes first).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn set_dmp(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    dmp: domain::documents::DmpState,
    opposition: bool,
) -> Result<(), AppError> {
    patients::clinical_read(ctx, actor, patient, "DMP").await?;
    let (_, scope) = patients::with_scope(ctx, patient).await?;
    if !authorize_patient(actor, PatientAction::DraftDocument, &scope).allowed() {
        return Err(AppError::Forbidden("réservé à l'équipe du patient".into()));
    }
    ctx.store
        .set_dmp(patient, dmp, opposition, ctx.now_ms())
        .await?;
    Ok(())
}

/// A document as its page shows it to a professional.
#[derive(Debug)]
pub struct Shown {
    /// The document (an audited read).
    pub document: Document,
    /// The patient's name.
    pub patient_name: String,
    /// Where it was sent and how that went.
    pub sent: Vec<store::documents::RecipientState>,
    /// Whether `actor` is a doctor of the document's establishment
    /// (validates, starts a corrected version).
    pub doctor: bool,
}

/// Document `id` for a professional (a patient reads theirs elsewhere: 404).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn show(ctx: Ctx<'_>, actor: &Actor, id: DocumentId) -> Result<Shown, AppError> {
    let d = read(ctx, actor, id).await?;
    if matches!(actor.principal, domain::policy::Principal::Patient { .. }) {
        return Err(AppError::NotFound("document introuvable".into()));
    }
    let p = ctx.store.patient(d.patient).await?;
    Ok(Shown {
        sent: ctx.store.recipients_of(id).await?,
        patient_name: p.traits.display_name(),
        doctor: actor
            .grants
            .iter()
            .any(|g| g.role == domain::org::Role::Doctor && g.establishment == d.establishment),
        document: d,
    })
}

/// Which of `actor`'s establishments the documents dashboard shows: the
/// one asked for (it must be theirs), else their only or first one.
pub fn dashboard_establishment(
    actor: &Actor,
    asked: Option<domain::EstablishmentId>,
) -> Result<domain::EstablishmentId, AppError> {
    use domain::org::Role;
    let mine = actor.establishments_as(&[Role::Doctor, Role::Nurse, Role::Secretary, Role::Admin]);
    domain::policy::choose_establishment(&mine, asked).map_err(|e| match e {
        domain::policy::NoEstablishment::None => {
            AppError::Forbidden("tableau réservé aux équipes des établissements".into())
        }
        domain::policy::NoEstablishment::NotTheirs => {
            AppError::Forbidden("vous n'exercez pas dans cet établissement".into())
        }
    })
}
