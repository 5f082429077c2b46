//! A guest in a video consultation (an interpreter, a relative, a second
//! professional): the doctor invites them with a single-use link — sent by
//! e-mail or SMS through the outbox, or handed over — valid for that
//! appointment only and revocable; the guest checks camera and microphone,
//! waits, and the doctor lets them in. A guest has no account and sees no
//! record: only the call. Every step is in the audit trail, with the patient.

use domain::AppointmentId;
use domain::audit::AuditActor;
use domain::policy::Actor;
use domain::schedule::Appointment;
use store::audit::NewAudit;
use store::guests::{Guest, GuestStep, NewGuest};

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::room::{self, DOCTOR};

/// Guests at most in one room: with the doctor and the patient, a mesh of
/// four (each browser sends its video to each other one; beyond, a selective
/// forwarding unit would be needed — see the README).
pub const MAX_GUESTS: usize = 2;

/// The kinds of guest: (code, label).
pub const KINDS: [(&str, &str); 3] = [
    ("interprete", "Interprète"),
    ("proche", "Proche du patient"),
    ("professionnel", "Second professionnel"),
];

/// A guest's side of the room, as the relay names it.
pub fn side(guest: &str) -> String {
    format!("guest-{guest}")
}

async fn trace(
    ctx: Ctx<'_>,
    who: AuditActor,
    a: &Appointment,
    action: &str,
) -> Result<(), AppError> {
    ctx.store
        .audit(&NewAudit {
            at_ms: ctx.now_ms(),
            actor: who,
            patient: Some(a.patient.to_string()),
            action: action.into(),
            resource: format!("Appointment/{}", a.id),
            outcome: "success".into(),
        })
        .await?;
    Ok(())
}

/// The appointment `id` if `actor` is its doctor and its consultation is not
/// closed.
async fn doctor_of(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: domain::UserId,
    id: AppointmentId,
) -> Result<Appointment, AppError> {
    let (a, role) = room::participant(ctx, actor, user, id).await?;
    if role != DOCTOR {
        return Err(AppError::Forbidden(
            "c'est le médecin qui invite et fait entrer".into(),
        ));
    }
    if room::closed(ctx, a.id).await {
        return Err(AppError::Conflict("la consultation est terminée".into()));
    }
    Ok(a)
}

/// An invitation made.
#[derive(Debug, Clone)]
pub struct Invited {
    /// The guest.
    pub guest: String,
    /// The link (shown once to the doctor).
    pub url: String,
    /// Where it was sent (`e-mail`, `SMS`), if it was.
    pub sent: Option<&'static str>,
}

/// The doctor of appointment `id` invites `name` (`kind`, one of [`KINDS`]);
/// `contact` (an e-mail address or a mobile number, or empty) gets the link.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn invite(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: domain::UserId,
    id: AppointmentId,
    (name, kind, contact): (&str, &str, &str),
) -> Result<Invited, AppError> {
    let a = doctor_of(ctx, actor, user, id).await?;
    let refuse = |m: &str| Err(AppError::Unprocessable("business-rule", m.to_owned()));
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return refuse("indiquez qui vous invitez (80 caractères au plus)");
    }
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        return refuse("choisissez interprète, proche ou second professionnel");
    }
    let active = ctx
        .store
        .guests_of(a.id)
        .await?
        .iter()
        .filter(|g| g.revoked_at_ms.is_none())
        .count();
    if active >= MAX_GUESTS {
        return refuse("deux invités au plus : retirez d'abord une invitation");
    }
    let contact = contact.trim();
    let (contact, sent) = if contact.is_empty() {
        (None, None)
    } else if contact.contains('@') {
        // The record's own rule for an address.
        match domain::demographics::Telecom::parse(
            domain::demographics::TelecomKind::Email,
            contact,
        ) {
            Ok(t) => (Some(t.value), Some("e-mail")),
            Err(_) => return refuse("adresse e-mail invalide"),
        }
    } else {
        match domain::demographics::normalize_phone(contact)
            .as_deref()
            .and_then(domain::notice::sms_number)
        {
            Some(n) => (Some(n), Some("SMS")),
            None => return refuse("numéro de portable invalide (06…, 07… ou +33…)"),
        }
    };
    let token = crate::auth::random_token();
    let now = ctx.now_ms();
    let guest = ctx
        .store
        .add_guest(
            &NewGuest {
                appointment: a.id,
                token_hash: &crate::auth::token_hash(&token),
                name,
                kind,
                contact: contact.as_deref(),
                created_by: &user.to_string(),
                // For this appointment only: an hour after its end at most.
                expires_at_ms: a.end_ms + 3600 * 1000,
            },
            now,
        )
        .await?;
    trace(ctx, AuditActor::new(actor, None), &a, "guest-invited").await?;
    let url = format!(
        "{}/invite/{token}",
        ctx.config.public_url().trim_end_matches('/')
    );
    if contact.is_some() {
        let m = store::outbox::NewMessage {
            idempotency_key: format!("invite:{guest}"),
            topic: crate::outbound::NOTIFY_TOPIC.into(),
            destination: format!("invite:{guest}"),
            payload: format!(
                "Parcours : vous êtes invité(e) à une téléconsultation le {}. Votre lien personnel, pour ce rendez-vous seulement : {url}",
                crate::fmt::paris_time(a.start_ms)
            ),
            establishment: Some(a.establishment),
        };
        ctx.store.enqueue(&m, now).await?;
    }
    Ok(Invited { guest, url, sent })
}

/// The guests of appointment `id`, for its doctor.
pub async fn list(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: domain::UserId,
    id: AppointmentId,
) -> Result<Vec<Guest>, AppError> {
    let (a, role) = room::participant(ctx, actor, user, id).await?;
    if role != DOCTOR {
        return Ok(Vec::new());
    }
    Ok(ctx.store.guests_of(a.id).await?)
}

async fn guest_of(ctx: Ctx<'_>, a: &Appointment, guest: &str) -> Result<Guest, AppError> {
    match ctx.store.guest(guest).await {
        Ok(g) if g.appointment == a.id => Ok(g),
        _ => Err(AppError::NotFound("invité introuvable".into())),
    }
}

/// The doctor lets a ready guest in.
pub async fn admit(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: domain::UserId,
    id: AppointmentId,
    guest: &str,
) -> Result<(), AppError> {
    let a = doctor_of(ctx, actor, user, id).await?;
    let g = guest_of(ctx, &a, guest).await?;
    if !ctx
        .store
        .guest_step(&g.id, GuestStep::Admit, ctx.now_ms())
        .await?
    {
        return Err(AppError::Conflict(
            "l'invité n'attend pas (pas encore prêt, ou invitation retirée)".into(),
        ));
    }
    trace(ctx, AuditActor::new(actor, None), &a, "guest-admitted").await?;
    ctx.live.room_send(
        &a.id.to_string(),
        "server",
        serde_json::json!({"type": "guest-admitted", "guest": g.id}).to_string(),
    );
    Ok(())
}

/// The doctor withdraws an invitation: the link stops working and a guest
/// in the room is put out.
pub async fn revoke(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: domain::UserId,
    id: AppointmentId,
    guest: &str,
) -> Result<(), AppError> {
    let (a, role) = room::participant(ctx, actor, user, id).await?;
    if role != DOCTOR {
        return Err(AppError::Forbidden(
            "c'est le médecin qui retire une invitation".into(),
        ));
    }
    let g = guest_of(ctx, &a, guest).await?;
    if !ctx
        .store
        .guest_step(&g.id, GuestStep::Revoke, ctx.now_ms())
        .await?
    {
        return Err(AppError::Conflict("invitation déjà retirée".into()));
    }
    trace(ctx, AuditActor::new(actor, None), &a, "guest-revoked").await?;
    ctx.live.room_send(
        &a.id.to_string(),
        "server",
        serde_json::json!({"type": "revoked", "guest": g.id}).to_string(),
    );
    Ok(())
}

/// Where a guest's link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opened, devices to check.
    Opened,
    /// Ready, waiting for the doctor.
    Waiting,
    /// Let in.
    Admitted,
}

/// The guest a link names, opened in `browser` (a hash of the browser's
/// cookie): the first browser to open it keeps it; refused once revoked,
/// past its appointment, or once the consultation is closed.
pub async fn open(
    ctx: Ctx<'_>,
    token: &str,
    browser: &str,
) -> Result<(Guest, Appointment, Stage), AppError> {
    let Some(g) = ctx
        .store
        .guest_by_token(&crate::auth::token_hash(token))
        .await?
    else {
        return Err(AppError::NotFound("lien d'invitation inconnu".into()));
    };
    let now = ctx.now_ms();
    if g.revoked_at_ms.is_some() {
        return Err(AppError::Forbidden(
            "cette invitation a été retirée par le médecin".into(),
        ));
    }
    if now >= g.expires_at_ms {
        return Err(AppError::Forbidden("cette invitation a expiré".into()));
    }
    let a = ctx.store.appointment(g.appointment).await?;
    if a.status != "booked" || room::closed(ctx, a.id).await {
        return Err(AppError::Forbidden("la consultation est terminée".into()));
    }
    let first = g.browser_hash.is_none();
    if !ctx
        .store
        .guest_step(&g.id, GuestStep::Claim(browser), now)
        .await?
    {
        return Err(AppError::Forbidden(
            "ce lien a déjà été ouvert sur un autre appareil : il ne sert qu'une fois. Demandez une nouvelle invitation au médecin.".into(),
        ));
    }
    if first {
        trace(
            ctx,
            AuditActor::system(&format!("invite-{}", g.id)),
            &a,
            "guest-opened",
        )
        .await?;
    }
    let stage = match (g.ready_at_ms, g.admitted_at_ms) {
        (_, Some(_)) => Stage::Admitted,
        (Some(_), None) => Stage::Waiting,
        _ => Stage::Opened,
    };
    Ok((g, a, stage))
}

/// The guest says their devices work: the doctor's room shows them waiting.
pub async fn ready(ctx: Ctx<'_>, token: &str, browser: &str) -> Result<(), AppError> {
    let (g, a, _) = open(ctx, token, browser).await?;
    ctx.store
        .guest_step(&g.id, GuestStep::Ready, ctx.now_ms())
        .await?;
    ctx.live.room_send(
        &a.id.to_string(),
        "server",
        serde_json::json!({"type": "guest-waiting", "guest": g.id, "name": g.name}).to_string(),
    );
    Ok(())
}

/// A guest's presence in the room, traced: `joined` or `left`.
pub async fn presence(
    ctx: Ctx<'_>,
    g: &Guest,
    a: &Appointment,
    joined: bool,
) -> Result<(), AppError> {
    let action = if joined { "guest-joined" } else { "guest-left" };
    trace(
        ctx,
        AuditActor::system(&format!("invite-{}", g.id)),
        a,
        action,
    )
    .await
}

/// The label of a kind.
pub fn kind_label(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("Invité", |(_, l)| *l)
}
