//! Documents arriving by secure messaging: each CDA a mail carries (in its
//! XDM archive or attached as it is) is filed on the patient its header names
//! — by INS, else by the traits when exactly one record carries them — and
//! pushed to the DMP at once when the patient's is fed; otherwise it waits in
//! a queue for a human, who attaches it to a patient. Mails without a usable
//! document are recorded as refused, with why: nothing is dropped silently.

use domain::audit::AuditActor;
use domain::documents::{Kind, Matched, NamedPatient};
use domain::org::Role;
use domain::policy::{Actor, Decision, PatientAction, authorize_patient};
use domain::{EstablishmentId, PatientId};
use store::documents::{ReceivedDocument, RecipientPlan, RecipientState};
use store::incoming::{Incoming, IncomingState, NewIncoming};
use store::orgs::Establishment;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::documents::{ForDmp, dmp_plan};
use crate::services::patients;

/// What one mail brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Documents filed on a patient.
    pub filed: usize,
    /// Documents waiting for a human.
    pub queued: usize,
    /// Parts refused (no document, unreadable).
    pub rejected: usize,
    /// Documents filed already (sent twice).
    pub duplicates: usize,
    /// Parts recorded before (the mail read again).
    pub seen: usize,
}

/// The kind of a received document by its LOINC type (a consultation report
/// when the type is none of ours).
fn kind_of(type_code: &str) -> Kind {
    domain::documents::ALL_KINDS
        .into_iter()
        .find(|k| k.loinc().0 == type_code)
        .unwrap_or(Kind::CrConsultation)
}

/// How the document names its patient, for the human who matches.
fn traits_line(h: &interop::cda::CdaHeader) -> String {
    let date = h
        .birth_date
        .as_deref()
        .and_then(|d| jiff::civil::Date::strptime("%Y%m%d", d).ok())
        .map(|d| d.strftime("%d/%m/%Y").to_string())
        .unwrap_or_else(|| "date de naissance absente".into());
    format!(
        "{} {}, {}, né(e) le {}{}",
        h.birth_name.as_deref().unwrap_or("(nom absent)"),
        h.given.as_deref().unwrap_or("(prénom absent)"),
        h.sex.as_deref().unwrap_or("sexe absent"),
        date,
        h.ins
            .as_ref()
            .map(|(v, _)| format!(", INS {v}"))
            .unwrap_or_default()
    )
}

/// The patient the header names, or why nobody for sure.
async fn match_patient(
    ctx: Ctx<'_>,
    est: &Establishment,
    h: &interop::cda::CdaHeader,
) -> Result<Result<(PatientId, &'static str), String>, AppError> {
    let territory = est.territory;
    let by_ins = match &h.ins {
        Some((value, _)) => ctx.store.qualified_by_ins(territory, value).await?,
        None => None,
    };
    let birth_date = h
        .birth_date
        .as_deref()
        .and_then(|d| jiff::civil::Date::strptime("%Y%m%d", d).ok());
    let (Some(birth_name), Some(given), Some(birth_date)) =
        (h.birth_name.clone(), h.given.clone(), birth_date)
    else {
        return Ok(Err(
            "identité incomplète dans le document (nom, prénom, date de naissance)".into(),
        ));
    };
    let named = NamedPatient {
        ins: h.ins.as_ref().map(|(v, _)| v.clone()),
        birth_name: birth_name.clone(),
        given: given.clone(),
        birth_date,
        sex: h.sex.as_deref().and_then(domain::identity::Sex::from_code),
    };
    let by_ins = by_ins.map(|p| (p.id, domain::documents::ins_traits_agree(&named, &p.traits)));
    let candidates: Vec<_> = if by_ins.is_some() {
        Vec::new()
    } else {
        ctx.store
            .search_patients(
                territory,
                &store::patients::PatientQuery {
                    family: Some(birth_name),
                    given: Some(given),
                    birth_date: Some(birth_date),
                    limit: 20,
                    ..Default::default()
                },
            )
            .await?
            .into_iter()
            .filter(|p| p.active() && domain::documents::same_traits(&named, &p.traits))
            .map(|p| (p.id, p.ins.as_ref().map(|i| i.value())))
            .collect()
    };
    Ok(
        match domain::documents::match_received(&named, by_ins, &candidates) {
            Matched::Ins(p) => Ok((p, "INS")),
            Matched::Traits(p) => Ok((p, "traits")),
            Matched::Queue(why) => Err(why),
        },
    )
}

/// The document to file and where it is forwarded (the DMP when fed).
async fn filing(
    ctx: Ctx<'_>,
    est: &Establishment,
    patient: PatientId,
    h: &interop::cda::CdaHeader,
    sender: &str,
    cda: &[u8],
) -> Result<(ReceivedDocument, Vec<RecipientPlan>), AppError> {
    let p = ctx.store.patient(patient).await?;
    let kind = kind_of(&h.type_code.0);
    let now = ctx.now_ms();
    let type_code = if h.type_code.0.is_empty() {
        kind.loinc()
    } else {
        (h.type_code.0.as_str(), h.type_code.1.as_str())
    };
    let dmp = dmp_plan(
        ctx,
        &p,
        &ForDmp {
            key: format!("mail:{}:dmp", h.unique_id),
            establishment: est.id,
            unique_id: &h.unique_id,
            author: (h.author_rpps.as_deref(), &h.author),
            custodian: (&est.finess, &est.name),
            type_code,
            class_code: kind.class(),
            title: &h.title,
            date_ms: now,
            period_start_ms: now,
            cda,
            replaces: h.replaces.as_deref(),
        },
    )
    .await?;
    Ok((
        ReceivedDocument {
            unique_id: h.unique_id.clone(),
            patient,
            establishment: est.id,
            kind,
            title: h.title.clone(),
            source: "mail".into(),
            sender: sender.to_owned(),
            content_type: "text/xml".into(),
            content: cda.to_vec(),
            replaces: h.replaces.clone(),
        },
        vec![dmp],
    ))
}

/// Takes in one mail received in `est`'s mailbox. Reading it again changes
/// nothing. An error (the store) leaves it to be read again.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn take_mail(ctx: Ctx<'_>, est: &Establishment, raw: &[u8]) -> Result<Report, AppError> {
    let mut report = Report::default();
    let now = ctx.now_ms();
    let blank = |message_id: String, from: String, subject: String| NewIncoming {
        establishment: est.id,
        message_id,
        part: 0,
        sender: from,
        subject,
        state: IncomingState::Rejected,
        detail: String::new(),
        unique_id: None,
        title: String::new(),
        type_code: String::new(),
        traits: String::new(),
        content: None,
        patient: None,
        document_id: None,
    };
    let mail = match interop::mss::read_mail(raw) {
        Ok(m) => m,
        Err(why) => {
            let mut n = blank(interop::mss::digest_id(raw), String::new(), String::new());
            n.detail = why;
            if ctx.store.record_incoming(&n, now).await? {
                report.rejected += 1;
            } else {
                report.seen += 1;
            }
            return Ok(report);
        }
    };
    let base = blank(
        mail.message_id.clone(),
        mail.from.clone(),
        mail.subject.clone(),
    );
    if mail.documents.is_empty() {
        let mut n = base;
        n.detail = mail.problems.join(" ; ");
        if ctx.store.record_incoming(&n, now).await? {
            report.rejected += 1;
        } else {
            report.seen += 1;
        }
        return Ok(report);
    }
    for (i, cda) in mail.documents.iter().enumerate() {
        let part = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if ctx
            .store
            .incoming_seen(est.id, &mail.message_id, part)
            .await?
        {
            report.seen += 1;
            continue;
        }
        let mut n = base.clone();
        n.part = part;
        n.content = Some(cda.clone());
        take_part(ctx, est, n, cda, &mail.from, &mut report).await?;
    }
    Ok(report)
}

/// One CDA of a mail, recorded as `n`: rejected when unreadable, a
/// duplicate when filed already, filed on the patient it names when the
/// match is certain, else queued for a human.
async fn take_part(
    ctx: Ctx<'_>,
    est: &Establishment,
    mut n: NewIncoming,
    cda: &[u8],
    from: &str,
    report: &mut Report,
) -> Result<(), AppError> {
    let now = ctx.now_ms();
    let h = match interop::cda::read_header(cda) {
        Ok(h) => h,
        Err(why) => {
            n.detail = why;
            ctx.store.record_incoming(&n, now).await?;
            report.rejected += 1;
            return Ok(());
        }
    };
    n.unique_id = Some(h.unique_id.clone());
    n.title = h.title.clone();
    n.type_code = h.type_code.0.clone();
    n.traits = traits_line(&h);
    if let Some(existing) = ctx.store.document_by_unique_id(&h.unique_id).await? {
        n.state = IncomingState::Duplicate;
        n.detail = "document déjà classé (même identifiant)".into();
        // Linked only when filed here: another establishment's filing is not ours to show.
        if existing.establishment == est.id {
            n.patient = Some(existing.patient);
            n.document_id = Some(existing.id.to_string());
        }
        ctx.store.record_incoming(&n, now).await?;
        report.duplicates += 1;
        return Ok(());
    }
    let (patient, how) = match match_patient(ctx, est, &h).await? {
        Ok(found) => found,
        Err(why) => {
            n.state = IncomingState::Queued;
            n.detail = why;
            ctx.store.record_incoming(&n, now).await?;
            report.queued += 1;
            return Ok(());
        }
    };
    let (doc, plans) = filing(ctx, est, patient, &h, from, cda).await?;
    n.state = IncomingState::Filed;
    n.detail = format!("rattaché automatiquement ({how})");
    let system = AuditActor::system("messagerie");
    match ctx
        .store
        .file_incoming(&n, &doc, &plans, &system, now)
        .await
    {
        // A corrected version replaced the one it names (when held
        // here, of the same patient and establishment) in the filing.
        Ok(Some(id)) => {
            if let Ok(id) = id.parse() {
                crate::services::subscriptions::document_filed(ctx, id, doc.patient, est.id).await;
            }
            report.filed += 1
        }
        // It names someone else's document: refused, nothing filed.
        Err(store::StoreError::Refused(why)) => {
            n.state = IncomingState::Rejected;
            n.patient = None;
            n.detail = why;
            ctx.store.record_incoming(&n, now).await?;
            report.rejected += 1;
        }
        Ok(None) => report.seen += 1,
        // Filed from another mail meanwhile: read again, it is a duplicate.
        Err(store::StoreError::Conflict(e)) => {
            return Err(AppError::Conflict(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The roles that handle received documents.
const DESK_ROLES: [Role; 3] = [Role::Doctor, Role::Nurse, Role::Secretary];

/// The establishments where this actor handles received documents (doctor,
/// nurse or secretary there), in the order of their grants.
pub fn desks(actor: &Actor) -> Vec<EstablishmentId> {
    actor.establishments_as(&DESK_ROLES)
}

/// The establishment whose received documents this actor looks at: `wanted`
/// when it is one of theirs, else their first.
pub fn desk(actor: &Actor, wanted: Option<EstablishmentId>) -> Result<EstablishmentId, AppError> {
    domain::policy::choose_establishment(&desks(actor), wanted).map_err(|e| match e {
        domain::policy::NoEstablishment::None => {
            AppError::Forbidden("documents reçus réservés aux équipes des établissements".into())
        }
        domain::policy::NoEstablishment::NotTheirs => {
            AppError::Forbidden("vous n'exercez pas dans cet établissement".into())
        }
    })
}

/// An establishment's received documents (one of the actor's desks), newest
/// first, each with its DMP copy's state when it has one.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    ctx: Ctx<'_>,
    actor: &Actor,
    est: EstablishmentId,
) -> Result<Vec<(Incoming, Option<RecipientState>)>, AppError> {
    let est = desk(actor, Some(est))?;
    let list = ctx.store.incoming_documents(est, 200).await?;
    let filed: Vec<domain::DocumentId> = list
        .iter()
        .filter(|i| i.state == IncomingState::Filed)
        .filter_map(|i| i.document_id.as_deref()?.parse().ok())
        .collect();
    let mut dmp: std::collections::HashMap<String, RecipientState> = ctx
        .store
        .recipients_of_documents(&filed)
        .await?
        .into_iter()
        .filter(|r| r.recipient == domain::documents::Recipient::Dmp)
        .map(|r| (r.document_id.clone(), r))
        .collect();
    Ok(list
        .into_iter()
        .map(|i| {
            let state = match (&i.document_id, i.state) {
                (Some(d), IncomingState::Filed) => dmp.remove(d),
                _ => None,
            };
            (i, state)
        })
        .collect())
}

/// A queued document, for the human who matches it (any of their
/// establishments').
#[tracing::instrument(level = "debug", skip_all)]
pub async fn queued(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<Incoming, AppError> {
    Ok(queued_with_content(ctx, actor, id).await?.0)
}

/// A queued document of one of `actor`'s desks, with its content when kept.
pub async fn queued_with_content(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(Incoming, Option<Vec<u8>>), AppError> {
    let mine = desks(actor);
    if mine.is_empty() {
        return Err(AppError::Forbidden(
            "documents reçus réservés aux équipes des établissements".into(),
        ));
    }
    let (i, content) = ctx
        .store
        .incoming(id)
        .await
        .map_err(|_| AppError::NotFound("document reçu introuvable".into()))?;
    if !mine.contains(&i.establishment) {
        return Err(AppError::NotFound("document reçu introuvable".into()));
    }
    Ok((i, content))
}

/// Files a queued document on the patient a human chose (who may write in
/// that patient's record), and forwards it to the DMP when fed.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn attach(
    ctx: Ctx<'_>,
    actor: &Actor,
    who: &str,
    id: &str,
    patient: PatientId,
) -> Result<String, AppError> {
    let i = queued(ctx, actor, id).await?;
    if i.state != IncomingState::Queued {
        return Err(AppError::Conflict("ce document est déjà traité".into()));
    }
    let p = ctx
        .store
        .patient(patient)
        .await
        .map_err(|_| AppError::NotFound("patient introuvable".into()))?;
    let scope = patients::scope_of(ctx, &p).await?;
    let grant = match authorize_patient(actor, PatientAction::DraftDocument, &scope) {
        Decision::Allow(g) => g,
        Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
    };
    let (_, content) = ctx.store.incoming(id).await?;
    let cda = content.ok_or_else(|| AppError::Conflict("document reçu sans contenu".into()))?;
    let h = interop::cda::read_header(&cda).map_err(|e| AppError::Unprocessable("invalid", e))?;
    let est = ctx.store.establishment(i.establishment).await?;
    let (doc, plans) = filing(ctx, &est, p.id, &h, &i.sender, &cda).await?;
    let attached = ctx
        .store
        .attach_incoming(
            id,
            &format!("rattaché par {who}"),
            &doc,
            &plans,
            &AuditActor::new(actor, grant),
            ctx.now_ms(),
        )
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => {
                AppError::Conflict("un document de même identifiant est déjà classé".into())
            }
            e => e.into(),
        })?;
    // A corrected version replaced the one it names in the same transaction.
    if attached.is_none() {
        return Err(AppError::Conflict("ce document est déjà traité".into()));
    }
    Ok(p.id.to_string())
}
