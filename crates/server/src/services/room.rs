//! The video consultation's room and its waiting room: who may be in a room
//! (the appointment's doctor, and its patient once let in), the doctor
//! letting the patient in, a file shared during the call (filed in the
//! patient's record, audited), and a patient's own video appointment for the
//! waiting room. The media never pass through Parcours; the signalling is
//! relayed by the routes over the room's channel.

use domain::UserId;
use domain::audit::AuditActor;
use domain::policy::{Actor, Decision, PatientAction, Principal, authorize_patient};
use domain::schedule::{Appointment, Mode};
use store::cluster::Presence;

use crate::error::AppError;
use crate::live::LiveEvent;
use crate::services::ctx::Ctx;
use crate::services::uploads::sniff_type;
use crate::services::{directory, patients};

/// The doctor's side of a room.
pub const DOCTOR: &str = "doctor";
/// The patient's side of a room.
pub const PATIENT: &str = "patient";

/// Whether the consultation of appointment `id` is closed.
pub async fn closed(ctx: Ctx<'_>, id: domain::AppointmentId) -> bool {
    ctx.store.consultation(id).await.is_ok()
}

/// Who `actor` (account `user`) is in the room of appointment `id`:
/// [`DOCTOR`] (its practitioner) or [`PATIENT`] (its patient, once let in or
/// once closed); anyone else gets 404.
pub async fn participant(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: domain::AppointmentId,
) -> Result<(Appointment, &'static str), AppError> {
    let not_found = || AppError::NotFound("consultation introuvable".into());
    let a = ctx.store.appointment(id).await.map_err(|_| not_found())?;
    if a.status != "booked" || a.mode != Mode::Tele {
        return Err(not_found());
    }
    match actor.principal {
        Principal::Patient { patient, .. } if patient == a.patient => {
            // Closed already: its page sends to what follows (payment, prescription).
            if !ctx.store.room_is_open(a.id).await? && !closed(ctx, a.id).await {
                return Err(AppError::Forbidden(
                    "le médecin ne vous a pas encore fait entrer : restez dans la salle d'attente"
                        .into(),
                ));
            }
            Ok((a, PATIENT))
        }
        _ if user == a.practitioner => Ok((a, DOCTOR)),
        _ => Err(not_found()),
    }
}

/// The doctor lets the patient of appointment `id` in: the patient's
/// waiting-room page moves to the room.
pub async fn let_in(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    id: domain::AppointmentId,
) -> Result<Appointment, AppError> {
    let (a, role) = participant(ctx, actor, user, id).await?;
    if role != DOCTOR {
        return Err(AppError::Forbidden(
            "c'est le médecin qui fait entrer".into(),
        ));
    }
    // In the database first: a patient reconnecting on any node finds it open.
    ctx.store.open_room(a.id, ctx.now_ms()).await?;
    ctx.live.room_opened(&a.id.to_string());
    Ok(a)
}

/// The name of the one on the other side: the patient for the doctor (an
/// audited read), the doctor for the patient.
pub async fn other_side(
    ctx: Ctx<'_>,
    actor: &Actor,
    a: &Appointment,
    role: &str,
) -> Result<String, AppError> {
    if role == DOCTOR {
        Ok(patients::read(ctx, actor, a.patient)
            .await?
            .traits
            .display_name())
    } else {
        directory::user_name(ctx, a.practitioner).await
    }
}

/// The largest file shared in a consultation.
pub const MAX_FILE: usize = 5 * 1024 * 1024;

/// A participant of appointment `a`'s room (as [`participant`] found them,
/// on `role`'s side) shares `bytes` (named `name`): a photo or a PDF, filed
/// in the patient's record (audited; the doctor must write the patient's
/// clinical data) and announced to the other side. The file's id and its cleaned name.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn share(
    ctx: Ctx<'_>,
    actor: &Actor,
    (a, role): (&Appointment, &'static str),
    name: &str,
    bytes: &[u8],
) -> Result<(String, String), AppError> {
    if bytes.is_empty() {
        return Err(AppError::Unprocessable(
            "business-rule",
            "choisissez un fichier".into(),
        ));
    }
    if bytes.len() > MAX_FILE {
        return Err(AppError::TooLarge(MAX_FILE));
    }
    let Some(content_type) = sniff_type(bytes) else {
        return Err(AppError::Unprocessable(
            "business-rule",
            "seuls les photos (JPEG, PNG) et les PDF sont acceptés".into(),
        ));
    };
    let grant = if role == DOCTOR {
        let (_, scope) = patients::with_scope(ctx, a.patient).await?;
        match authorize_patient(actor, PatientAction::WriteClinical, &scope) {
            Decision::Allow(g) => g,
            Decision::Deny(why) => return Err(AppError::Forbidden(why.into())),
        }
    } else {
        None
    };
    let who = AuditActor::new(actor, grant);
    let saved = ctx
        .store
        .save_attachment(a.patient, content_type, bytes, &who, ctx.now_ms())
        .await?;
    let name: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
    let message = serde_json::json!({"type": "file", "id": saved, "name": name}).to_string();
    ctx.live.room_send(&a.id.to_string(), role, message);
    Ok((saved, name))
}

/// The patient `actor`'s own booked video appointment `id` (their waiting room).
pub async fn own_video_appointment(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: domain::AppointmentId,
) -> Result<Appointment, AppError> {
    let not_found = || AppError::NotFound("rendez-vous introuvable".into());
    let Principal::Patient { patient, .. } = actor.principal else {
        return Err(AppError::Forbidden(
            "salle d'attente réservée au patient du rendez-vous".into(),
        ));
    };
    let a = ctx.store.appointment(id).await.map_err(|_| not_found())?;
    if a.patient != patient || a.status != "booked" || a.mode != Mode::Tele {
        return Err(not_found());
    }
    Ok(a)
}

/// Practitioner `me`'s video appointments from 3 hours ago to 12 hours
/// ahead, each with its patient's name (an audited identity read, once per
/// session and patient: the list refreshes every few seconds) and their
/// presence in the waiting room, if they came (whichever node holds it).
pub async fn todays_video(
    ctx: Ctx<'_>,
    actor: &Actor,
    session: &str,
    me: UserId,
) -> Result<Vec<(Appointment, String, Option<Presence>)>, AppError> {
    let now = ctx.now_ms();
    let list: Vec<Appointment> = ctx
        .store
        .agenda(me, now - 3 * 3600 * 1000, now + 12 * 3600 * 1000)
        .await?
        .into_iter()
        .filter(|a| a.mode == Mode::Tele)
        .collect();
    let ids: Vec<domain::AppointmentId> = list.iter().map(|a| a.id).collect();
    let presence = ctx.store.presence_of(&ids, now).await?;
    let wanted: Vec<domain::PatientId> = list.iter().map(|a| a.patient).collect();
    let names = patients::names_on_live_page(ctx, actor, session, &wanted).await?;
    Ok(list
        .into_iter()
        .map(|a| {
            let name = names.of(a.patient);
            let p = presence.get(&a.id).copied();
            (a, name, p)
        })
        .collect())
}

/// The waiting patient's page for appointment `a` connected (as
/// `connection`, on this node): they wait, their doctor's list is told.
/// Whether the doctor has let them in already (a reconnection).
pub async fn arrived(ctx: Ctx<'_>, a: &Appointment, connection: &str) -> Result<bool, AppError> {
    ctx.store
        .presence_enter(a.id, connection, ctx.live.node(), ctx.now_ms())
        .await?;
    ctx.publish(LiveEvent::WaitingRoom(a.practitioner));
    Ok(ctx.store.room_is_open(a.id).await?)
}

/// What the waiting patient's device check found.
pub async fn devices(
    ctx: Ctx<'_>,
    a: &Appointment,
    connection: &str,
    camera: bool,
    microphone: bool,
) -> Result<(), AppError> {
    ctx.store
        .presence_devices(a.id, connection, camera, microphone, ctx.now_ms())
        .await?;
    ctx.publish(LiveEvent::WaitingRoom(a.practitioner));
    Ok(())
}

/// The waiting patient's `connection` closed: shown disconnected (unless a
/// newer connection holds them), their doctor's list is told.
pub async fn left(ctx: Ctx<'_>, a: &Appointment, connection: &str) -> Result<(), AppError> {
    let r = ctx.store.presence_left(a.id, connection).await;
    ctx.publish(LiveEvent::WaitingRoom(a.practitioner));
    Ok(r?)
}

/// Whether the doctor has let the patient of appointment `id` in.
pub async fn is_open(ctx: Ctx<'_>, id: domain::AppointmentId) -> Result<bool, AppError> {
    Ok(ctx.store.room_is_open(id).await?)
}
