//! SIU from the establishment's own agenda (S12 new, S13 rescheduled, S14
//! modified, S15 cancelled), so that a booking made there shows in Parcours. The
//! external agenda is the authority on its times (no check against our
//! openings), but one practitioner cannot be booked twice at the same time.
//! The patient is found by IPP, the practitioner by RPPS (AIP-3), the
//! appointment again by the agenda's id (SCH-2, else SCH-1). Nothing is echoed
//! back as SIU. The effect is committed, then the message logged with its ACK.

use domain::audit::AuditActor;
use domain::schedule::{Appointment, Mode};
use domain::{EstablishmentId, TerritoryId};
use hl7v2::Message;
use hl7v2::ack::{AckCode, AckError};
use store::hl7::NewHl7Message;
use store::patients::PatientQuery;
use store::schedule::NewAppointment;

use crate::services::ctx::Ctx;
use crate::services::hl7::reply::{Outcome, err, finish_without_effect};
use crate::services::hl7::senders::ipp_authority_ok;
use interop::pam::parse_dtm;

/// Where the message comes from.
#[derive(Debug, Clone)]
pub struct Context {
    /// The sender's establishment.
    pub establishment: EstablishmentId,
    /// Its identity domain.
    pub territory: TerritoryId,
    /// `APP|FACILITY`.
    pub sender: String,
    /// The declared sender (its IPP authority).
    pub declared: store::hl7::Hl7Sender,
}

fn text(m: &Message, path: &str) -> String {
    m.get(path)
        .ok()
        .flatten()
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// What the message asks, read and checked; AE errors otherwise.
struct Request {
    external: String,
    patient: domain::PatientId,
    practitioner: domain::UserId,
    start_ms: i64,
    minutes: i64,
    mode: Mode,
}

/// The IPP: the PID-3 repetition typed PI, else the first; refused when it
/// is of another domain (it would name someone else here).
fn ipp_of(m: &Message, from: &Context) -> Result<String, Vec<AckError>> {
    let mut ipp = String::new();
    let mut chosen = 1;
    for rep in 1..=5 {
        let id = text(m, &format!("PID-3({rep}).1"));
        if id.is_empty() {
            break;
        }
        if ipp.is_empty() || text(m, &format!("PID-3({rep}).5")) == "PI" {
            ipp = id;
            chosen = rep;
        }
    }
    let namespace = text(m, &format!("PID-3({chosen}).4.1"));
    let universal = text(m, &format!("PID-3({chosen}).4.2"));
    if !ipp.is_empty() && !ipp_authority_ok(&from.declared, &namespace, &universal) {
        return Err(vec![err(
            "PID",
            Some(3),
            Some(chosen),
            Some(4),
            102,
            format!(
                "IPP d'une autre autorité d'affectation ({namespace}&{universal}): attendu {} ou l'autorité déclarée pour l'émetteur",
                from.declared.territory_oid
            ),
        )]);
    }
    Ok(ipp)
}

async fn read(ctx: Ctx<'_>, m: &Message, from: &Context) -> Result<Request, Vec<AckError>> {
    let external = Some(text(m, "SCH-2.1"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| text(m, "SCH-1.1"));
    if external.is_empty() {
        return Err(vec![err(
            "SCH",
            Some(2),
            None,
            None,
            101,
            "identifiant du rendez-vous absent (SCH-2 ou SCH-1)".into(),
        )]);
    }
    let ipp = ipp_of(m, from)?;
    let q = PatientQuery {
        ipp: Some(ipp.clone()),
        limit: 1,
        ..Default::default()
    };
    let patient = match ctx.store.search_patients(from.territory, &q).await {
        Ok(found) => found.first().map(|p| p.id),
        Err(_) => None,
    }
    .ok_or_else(|| {
        vec![err(
            "PID",
            Some(3),
            None,
            None,
            204,
            format!("patient inconnu (IPP {ipp})"),
        )]
    })?;
    let rpps = text(m, "AIP-3.1");
    let practitioner = ctx
        .store
        .user_by_rpps(&rpps)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            vec![err(
                "AIP",
                Some(3),
                None,
                None,
                204,
                format!("praticien inconnu (RPPS {rpps:?})"),
            )]
        })?;
    let start_text = Some(text(m, "SCH-11.4"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| text(m, "AIP-6"));
    let start_ms = parse_dtm(&start_text).ok_or_else(|| {
        vec![err(
            "SCH",
            Some(11),
            None,
            Some(4),
            102,
            format!("début du rendez-vous illisible {start_text:?}"),
        )]
    })?;
    let minutes = text(m, "SCH-9")
        .parse::<i64>()
        .ok()
        .filter(|n| (5..=240).contains(n))
        .unwrap_or(20);
    let mode = if text(m, "SCH-7.1") == Mode::Tele.code() {
        Mode::Tele
    } else {
        Mode::InPerson
    };
    Ok(Request {
        external,
        patient,
        practitioner,
        start_ms,
        minutes,
        mode,
    })
}

/// Applies one SIU message and answers it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn intake(
    ctx: Ctx<'_>,
    m: &Message,
    event: &str,
    from: &Context,
    log: NewHl7Message,
    control: &str,
    ts: &str,
) -> Outcome {
    // A repeated message gets its first answer and changes nothing.
    if let Ok(Some(first)) = ctx.store.hl7_message_for(&from.sender, control).await {
        return Outcome::Ack(first.ack);
    }
    if !matches!(event, "S12" | "S13" | "S14" | "S15") {
        let e = [err(
            "MSH",
            Some(9),
            None,
            None,
            201,
            format!("événement SIU {event:?} non pris en charge (S12 à S15)"),
        )];
        return finish_without_effect(ctx, Some(m), AckCode::Reject, &e, log, ts).await;
    }
    let r = match read(ctx, m, from).await {
        Ok(r) => r,
        Err(e) => return finish_without_effect(ctx, Some(m), AckCode::Error, &e, log, ts).await,
    };
    let who = AuditActor {
        kind: "system",
        id: format!("mllp:{}", from.sender),
        role: Some(domain::org::Role::Integration.code()),
        establishment: Some(from.establishment.to_string()),
    };
    let existing = ctx
        .store
        .appointment_by_external(from.establishment, &r.external)
        .await;
    let existing = match existing {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "siu: lookup failed");
            return Outcome::NoAck;
        }
    };
    let outcome = apply(ctx, event, existing.as_ref(), &r, from, &who).await;
    match outcome {
        Ok(()) => finish_without_effect(ctx, Some(m), AckCode::Accept, &[], log, ts).await,
        Err(e) => finish_without_effect(ctx, Some(m), AckCode::Error, &e, log, ts).await,
    }
}

/// What SIU `event` does to the appointment `existing` (found by its
/// external id): S15 cancels it; S12 books a new one; S13 and S14 move it
/// (cancel, then book at the new time). The ERR segments when refused.
async fn apply(
    ctx: Ctx<'_>,
    event: &str,
    existing: Option<&Appointment>,
    r: &Request,
    from: &Context,
    who: &AuditActor,
) -> Result<(), Vec<AckError>> {
    let now = ctx.now_ms();
    let cancel = async |a: &Appointment, reason: &str| -> Result<(), store::StoreError> {
        let n = as_new(a, String::new());
        let notice = crate::services::schedule::notice(
            ctx,
            a.id,
            &n,
            crate::services::schedule::Notice::Cancellation,
        )
        .await
        .ok();
        ctx.store
            .cancel_appointment(a, reason, notice.as_slice(), who, now)
            .await
            .map(|_| ())
    };
    let unknown = |code: u16, what: String| vec![err("SCH", Some(2), None, None, code, what)];
    match (event, existing) {
        ("S15", Some(a)) => cancel(a, "annulé par l'agenda de l'établissement")
            .await
            .map_err(|e| store_error(&e)),
        ("S15", None) | ("S13" | "S14", None) => Err(unknown(
            204,
            format!("rendez-vous inconnu {:?}", r.external),
        )),
        ("S12", Some(_)) => Err(unknown(
            205,
            format!("rendez-vous {:?} déjà connu", r.external),
        )),
        (_, old) => {
            // A move to a time already taken is refused before the old one is
            // cancelled: the patient never ends up with no appointment.
            let taken = ctx
                .store
                .agenda(r.practitioner, r.start_ms, r.start_ms + 1)
                .await
                .map(|list| list.iter().any(|x| old.is_none_or(|o| o.id != x.id)))
                .unwrap_or(false);
            if taken {
                return Err(store_error(&store::StoreError::Conflict(
                    store::Conflict::Duplicate("appointments_one_per_slot".into()),
                )));
            }
            if let Some(a) = old {
                cancel(a, "déplacé par l'agenda de l'établissement")
                    .await
                    .map_err(|e| store_error(&e))?;
            }
            book(ctx, from, r, who, now).await
        }
    }
}

fn as_new(a: &Appointment, booked_by: String) -> NewAppointment {
    NewAppointment {
        practitioner: a.practitioner,
        establishment: a.establishment,
        patient: a.patient,
        start_ms: a.start_ms,
        end_ms: a.end_ms,
        mode: a.mode,
        booked_by,
    }
}

fn store_error(e: &store::StoreError) -> Vec<AckError> {
    let (code, message) = match e {
        store::StoreError::Conflict(_) => (
            205,
            "le praticien a déjà un rendez-vous à cette heure".to_owned(),
        ),
        other => (207, format!("enregistrement impossible : {other}")),
    };
    vec![err("SCH", Some(11), None, None, code, message)]
}

async fn book(
    ctx: Ctx<'_>,
    from: &Context,
    r: &Request,
    who: &AuditActor,
    now: i64,
) -> Result<(), Vec<AckError>> {
    let n = NewAppointment {
        practitioner: r.practitioner,
        establishment: from.establishment,
        patient: r.patient,
        start_ms: r.start_ms,
        end_ms: r.start_ms + r.minutes * 60_000,
        mode: r.mode,
        booked_by: format!("siu:{}", from.sender),
    };
    let id = domain::AppointmentId::new();
    let notice = crate::services::schedule::notice(
        ctx,
        id,
        &n,
        crate::services::schedule::Notice::Confirmation,
    )
    .await
    .map_err(|e| vec![err("SCH", None, None, None, 207, e.to_string())])?;
    ctx.store
        .book_as(id, &n, std::slice::from_ref(&notice), who, now)
        .await
        .map_err(|e| store_error(&e))?;
    ctx.store
        .set_external_id(id, &r.external)
        .await
        .map_err(|e| store_error(&e))
}
