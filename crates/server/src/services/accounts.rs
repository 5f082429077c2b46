//! The life of an account: the first administrator's set-up, invitations of
//! professionals and patients by a one-time link (password, second factor enrolled from a
//! QR code, recovery codes), roles granted and revoked per establishment,
//! accounts disabled and enabled again (their sessions and sockets end at
//! once), second factors reset, password-reset links ("mot de passe oublié"
//! too), a user's own sessions, and API clients
//! created, rotated and revoked. Every change is
//! decided by `policy::authorize_administration` and written to the audit trail.

use domain::audit::AuditActor;
use domain::org::{Role, Rpps};
use domain::policy::{Actor, Decision, Principal, authorize_administration};
use domain::{ApiClientId, EstablishmentId, PatientId, TerritoryId, UserId};
use store::accounts::{Link, LinkCompletion, LinkPurpose, SessionInfo};
use store::audit::NewAudit;
use store::users::{ApiClient, NewUser, User, UserKind};

use crate::auth;
use crate::error::AppError;
use crate::live::SessionEnd;
use crate::services::ctx::Ctx;

/// A professional's invitation or set-up link lasts three days.
pub const INVITATION_TTL_MS: i64 = 72 * 3600 * 1000;
/// A patient's invitation lasts a week (it may travel on paper).
pub const PATIENT_INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// A password-reset link lasts one hour.
pub const RESET_TTL_MS: i64 = 3600 * 1000;
/// How many recovery codes a professional gets.
pub const RECOVERY_CODES: usize = 10;
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// A password hash that no password matches (an invited account before it
/// chooses one).
const NO_PASSWORD: &str = "!";

/// A one-time link just made: shown once (and sent by mail when possible).
#[derive(Debug, Clone)]
pub struct IssuedLink {
    /// The address to open.
    pub url: String,
    /// Until when (Unix ms).
    pub expires_at_ms: i64,
    /// Whether it left by e-mail.
    pub mailed: bool,
}

/// The path of a link page for a token.
pub fn link_path(token: &str) -> String {
    format!("/lien/{token}")
}

fn audit_row(who: AuditActor, action: &str, resource: String, at_ms: i64) -> NewAudit {
    NewAudit {
        at_ms,
        actor: who,
        patient: None,
        action: action.into(),
        resource,
        outcome: "success".into(),
    }
}

async fn trace(
    ctx: Ctx<'_>,
    who: AuditActor,
    action: &str,
    resource: String,
) -> Result<(), AppError> {
    ctx.store
        .audit(&audit_row(who, action, resource, ctx.now_ms()))
        .await?;
    Ok(())
}

/// Makes a one-time link for `user`; mails it to `email` when a relay is
/// configured. Earlier unused links of the same purpose stop working. A
/// patient's invitation or an address confirmation that left by mail carries
/// the address: following it proves the patient reads it, and only then do
/// notices go there.
pub async fn issue_link(
    ctx: Ctx<'_>,
    user: UserId,
    purpose: LinkPurpose,
    created_by: &str,
    email: Option<&str>,
) -> Result<IssuedLink, AppError> {
    let ttl = match purpose {
        LinkPurpose::PatientInvitation => PATIENT_INVITATION_TTL_MS,
        LinkPurpose::PasswordReset => RESET_TTL_MS,
        _ => INVITATION_TTL_MS,
    };
    let token = auth::random_token();
    let now = ctx.now_ms();
    let url = format!(
        "{}{}",
        ctx.config.public_url().trim_end_matches('/'),
        link_path(&token)
    );
    // Mailed first: the address is confirmed by the link only if the link
    // went to it.
    let mut mailed = false;
    if let (Some(mailer), Some(to)) = (ctx.mailer, email) {
        let text = match purpose {
            LinkPurpose::PasswordReset => format!(
                "Pour choisir un nouveau mot de passe Parcours, ouvrez ce lien (valable une heure, une seule fois) :\n{url}\n\nSi vous n'avez rien demandé, ignorez ce message."
            ),
            LinkPurpose::EmailConfirmation => format!(
                "Pour recevoir vos avis Parcours (rendez-vous, rappels, nouveaux documents) à cette adresse, ouvrez ce lien et confirmez (valable 3 jours, une seule fois) :\n{url}\n\nSi vous n'avez rien demandé, ignorez ce message : rien ne vous sera envoyé."
            ),
            _ => format!(
                "Vous êtes invité(e) à utiliser Parcours. Ouvrez ce lien pour choisir votre mot de passe (valable une seule fois) :\n{url}"
            ),
        };
        match mailer.send_notice(None, to, &text).await {
            Ok(()) => mailed = true,
            Err(e) => tracing::warn!(error = ?e, "a one-time link could not be mailed"),
        }
    }
    let confirms = matches!(
        purpose,
        LinkPurpose::PatientInvitation | LinkPurpose::EmailConfirmation
    );
    let link = Link {
        user,
        purpose,
        created_by: created_by.to_owned(),
        expires_at_ms: now + ttl,
        used_at_ms: None,
        email: email.filter(|_| confirms && mailed).map(str::to_owned),
    };
    ctx.store
        .create_link(&auth::token_hash(&token), &link, now)
        .await?;
    Ok(IssuedLink {
        url,
        expires_at_ms: link.expires_at_ms,
        mailed,
    })
}

/// Why a link cannot be followed (French, safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Unknown, used or expired: one message for all, so that a guess learns nothing.
    #[error(
        "Ce lien n'est plus valable (déjà utilisé, expiré ou inconnu). Demandez-en un nouveau."
    )]
    Invalid,
    /// The password is too short.
    #[error("Le mot de passe doit compter au moins {MIN_PASSWORD_CHARS} caractères.")]
    ShortPassword,
    /// The two entries differ.
    #[error("Les deux mots de passe ne sont pas identiques.")]
    PasswordMismatch,
    /// The code does not match the QR code's secret.
    #[error(
        "Le code à 6 chiffres ne correspond pas : scannez le QR code, puis saisissez le code affiché par l'application."
    )]
    BadCode,
}

/// What a link page shows.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// Whose account (login name and name shown).
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// What the link does.
    pub purpose: LinkPurpose,
    /// The e-mail address following it confirms, if any.
    pub email: Option<String>,
}

/// The link a token opens, if it can still be followed.
pub async fn open_link(ctx: Ctx<'_>, token: &str) -> Result<LinkView, LinkError> {
    let link = ctx
        .store
        .link(&auth::token_hash(token))
        .await
        .ok()
        .flatten()
        .filter(|l| l.usable(ctx.now_ms()))
        .ok_or(LinkError::Invalid)?;
    let user = ctx
        .store
        .user(link.user)
        .await
        .map_err(|_| LinkError::Invalid)?;
    if !user.active {
        return Err(LinkError::Invalid);
    }
    Ok(LinkView {
        username: user.username,
        display_name: user.display_name,
        purpose: link.purpose,
        email: link.email,
    })
}

/// What the user typed on the link page.
pub struct LinkAnswer<'a> {
    /// New password.
    pub password: &'a str,
    /// Again.
    pub confirm: &'a str,
    /// The TOTP secret shown in the QR code (carried by the form).
    pub totp_secret: &'a str,
    /// The code the authenticator app shows.
    pub code: &'a str,
}

/// Follows a link: checks the answer, writes the password and second factor
/// with fresh recovery codes in one transaction, ends every other session.
/// The recovery codes to show once (none for a patient or a password reset).
pub async fn follow_link(
    ctx: Ctx<'_>,
    token: &str,
    answer: &LinkAnswer<'_>,
) -> Result<Result<Vec<String>, LinkError>, AppError> {
    let view = match open_link(ctx, token).await {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    if view.purpose.sets_password() {
        if answer.password.chars().count() < MIN_PASSWORD_CHARS {
            return Ok(Err(LinkError::ShortPassword));
        }
        if answer.password != answer.confirm {
            return Ok(Err(LinkError::PasswordMismatch));
        }
    }
    let enrol = view.purpose.enrols_second_factor();
    if enrol {
        let secs = u64::try_from(ctx.now_ms() / 1000).unwrap_or(0);
        if auth::totp_matching_step(answer.totp_secret, answer.code.trim(), secs).is_none() {
            return Ok(Err(LinkError::BadCode));
        }
    }
    let password_hash = if view.purpose.sets_password() {
        Some(auth::hash_secret(answer.password.to_owned()).await?)
    } else {
        None
    };
    let codes: Vec<String> = if enrol {
        (0..RECOVERY_CODES).map(|_| auth::recovery_code()).collect()
    } else {
        Vec::new()
    };
    let hashes: Vec<String> = codes.iter().map(|c| auth::token_hash(c)).collect();
    let done = LinkCompletion {
        password_hash: password_hash.as_deref(),
        totp_secret: enrol.then_some(answer.totp_secret),
        recovery_code_hashes: &hashes,
    };
    let user = match ctx
        .store
        .complete_link(&auth::token_hash(token), &done, ctx.now_ms())
        .await
    {
        Ok(u) => u,
        // Used by a concurrent request between the check and the write.
        Err(store::StoreError::NotFound) => return Ok(Err(LinkError::Invalid)),
        Err(e) => return Err(e.into()),
    };
    if view.purpose.sets_password() || enrol {
        ctx.live.end_session(SessionEnd::User(user));
    }
    let kind = if matches!(
        view.purpose,
        LinkPurpose::PatientInvitation | LinkPurpose::EmailConfirmation
    ) {
        "patient"
    } else {
        "user"
    };
    trace(
        ctx,
        AuditActor {
            kind,
            id: user.to_string(),
            role: None,
            establishment: None,
        },
        &format!("link.{}", view.purpose.code()),
        format!("User/{user}"),
    )
    .await?;
    Ok(Ok(codes))
}

/// The territories `actor` administers.
pub async fn administered(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<TerritoryId>, AppError> {
    match actor.principal {
        Principal::Professional(u) => Ok(ctx.store.administered_territories(u).await?),
        _ => Ok(Vec::new()),
    }
}

/// The establishments `actor` administers, by name.
pub async fn administered_establishments(
    ctx: Ctx<'_>,
    actor: &Actor,
) -> Result<Vec<store::orgs::Establishment>, AppError> {
    let territories = administered(ctx, actor).await?;
    let mut out: Vec<store::orgs::Establishment> = Vec::new();
    for t in &territories {
        out.extend(ctx.store.establishments(*t).await?);
    }
    for e in actor.establishments_as(&[Role::Admin]) {
        if !out.iter().any(|x| x.id == e) {
            out.push(ctx.store.establishment(e).await?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Checks that `actor` administers `establishment`; who to audit it as.
pub async fn administer(
    ctx: Ctx<'_>,
    actor: &Actor,
    establishment: EstablishmentId,
) -> Result<AuditActor, AppError> {
    let e = ctx
        .store
        .establishment(establishment)
        .await
        .map_err(|_| AppError::NotFound("établissement introuvable".into()))?;
    let territories = administered(ctx, actor).await?;
    match authorize_administration(actor, &territories, establishment, e.territory) {
        Decision::Allow(grant) => {
            let mut who = AuditActor::new(actor, grant);
            if grant.is_none() {
                who.role = Some("territory_admin");
                who.establishment = Some(establishment.to_string());
            }
            Ok(who)
        }
        Decision::Deny(why) => Err(AppError::Forbidden(why.into())),
    }
}

/// Checks that `actor` administers every establishment where `user` holds a
/// role (an account shared with another establishment is its territory
/// administrator's to disable), and that it is not the actor's own account.
async fn administer_account(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
) -> Result<(User, AuditActor), AppError> {
    if actor.principal == Principal::Professional(user) {
        return Err(AppError::Forbidden(
            "vous ne pouvez pas faire cela sur votre propre compte".into(),
        ));
    }
    let target = ctx
        .store
        .user(user)
        .await
        .map_err(|_| AppError::NotFound("compte introuvable".into()))?;
    if target.kind != UserKind::Professional {
        return Err(AppError::NotFound("compte introuvable".into()));
    }
    let grants = ctx.store.grants(user).await?;
    let mut who = None;
    for g in &grants {
        who = Some(administer(ctx, actor, g.establishment).await?);
    }
    match who {
        Some(w) => Ok((target, w)),
        // No role left anywhere: only a territory administrator sees it.
        None => Err(AppError::NotFound("compte introuvable".into())),
    }
}

/// One person on the people page.
#[derive(Debug, Clone)]
pub struct Person {
    /// The account.
    pub user: User,
    /// E-mail address.
    pub email: Option<String>,
    /// Roles in the establishments the admin administers: (establishment, name, role).
    pub roles: Vec<(EstablishmentId, String, Role)>,
    /// Whether they enrolled a second factor.
    pub enrolled: bool,
}

/// The professionals holding a role in an establishment `actor` administers.
pub async fn people(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Person>, AppError> {
    let ests = administered_establishments(ctx, actor).await?;
    let mut territories: Vec<TerritoryId> = ests.iter().map(|e| e.territory).collect();
    territories.dedup();
    let mut out: Vec<Person> = Vec::new();
    for t in territories {
        for (user, grants) in ctx.store.professionals(t).await? {
            let roles: Vec<(EstablishmentId, String, Role)> = grants
                .iter()
                .filter_map(|g| {
                    ests.iter()
                        .find(|e| e.id == g.establishment)
                        .map(|e| (e.id, e.name.clone(), g.role))
                })
                .collect();
            if roles.is_empty() || out.iter().any(|p| p.user.id == user.id) {
                continue;
            }
            let email = ctx.store.user_email(user.id).await?;
            out.push(Person {
                enrolled: user.totp_secret.is_some(),
                user,
                email,
                roles,
            });
        }
    }
    Ok(out)
}

/// A professional to invite.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// E-mail address (the link goes there).
    pub email: Option<String>,
    /// RPPS, for doctors and nurses.
    pub rpps: Option<String>,
    /// Profession label.
    pub profession: Option<String>,
    /// Where.
    pub establishment: EstablishmentId,
    /// First role.
    pub role: Role,
}

fn check_username(u: &str) -> Result<(), AppError> {
    let ok = (3..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "invalid",
            "identifiant : 3 à 64 caractères parmi a-z, 0-9, « . », « _ », « - », « @ »".into(),
        ))
    }
}

fn check_email(e: &str) -> Result<(), AppError> {
    let ok = e
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.contains(char::is_whitespace)
        && e.len() <= 254;
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "invalid",
            format!("adresse électronique invalide : {e:?}"),
        ))
    }
}

fn assignable(role: Role) -> Result<(), AppError> {
    if role == Role::Integration {
        return Err(AppError::BadRequest(
            "invalid",
            "le rôle « client d'intégration » est celui des clients API, pas d'une personne".into(),
        ));
    }
    Ok(())
}

/// Creates a professional's account (no password yet, no second factor) with
/// a first role, and the link that lets them choose both.
pub async fn invite(ctx: Ctx<'_>, actor: &Actor, inv: &Invitation) -> Result<IssuedLink, AppError> {
    let who = administer(ctx, actor, inv.establishment).await?;
    check_username(&inv.username)?;
    assignable(inv.role)?;
    if inv.display_name.trim().is_empty() {
        return Err(AppError::BadRequest(
            "invalid",
            "le nom est obligatoire".into(),
        ));
    }
    if let Some(e) = &inv.email {
        check_email(e)?;
    }
    let rpps = match inv.rpps.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            Rpps::parse(r)
                .map_err(|e| AppError::BadRequest("invalid", e.to_string()))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let new = NewUser {
        username: inv.username.clone(),
        display_name: inv.display_name.trim().to_owned(),
        kind: UserKind::Professional,
        password_hash: NO_PASSWORD.into(),
        totp_secret: None,
        rpps,
        profession: inv.profession.clone().filter(|p| !p.trim().is_empty()),
        patient: None,
        roles: vec![(inv.establishment, inv.role)],
    };
    let id = match ctx.store.create_user(&new, ctx.now_ms()).await {
        Ok(id) => id,
        Err(store::StoreError::Conflict(store::Conflict::DuplicateUsername)) => {
            return Err(AppError::Conflict(format!(
                "l'identifiant {} est déjà pris",
                inv.username
            )));
        }
        Err(e) => return Err(e.into()),
    };
    ctx.store.set_user_email(id, inv.email.as_deref()).await?;
    trace(ctx, who.clone(), "account.invite", format!("User/{id}")).await?;
    issue_link(
        ctx,
        id,
        LinkPurpose::Invitation,
        &who.id,
        inv.email.as_deref(),
    )
    .await
}

/// Gives a role in an establishment the actor administers.
pub async fn grant(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    establishment: EstablishmentId,
    role: Role,
) -> Result<(), AppError> {
    let who = administer(ctx, actor, establishment).await?;
    assignable(role)?;
    let target = ctx
        .store
        .user(user)
        .await
        .map_err(|_| AppError::NotFound("compte introuvable".into()))?;
    if target.kind != UserKind::Professional {
        return Err(AppError::NotFound("compte introuvable".into()));
    }
    ctx.store.grant_role(user, establishment, role).await?;
    ctx.live.end_session(SessionEnd::User(user));
    trace(
        ctx,
        who,
        "account.grant",
        format!("User/{user}/{}", role.code()),
    )
    .await
}

/// Takes a role back; the account's sessions end so that its pages reload
/// with what it still holds. One cannot take one's own admin role.
pub async fn revoke(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    establishment: EstablishmentId,
    role: Role,
) -> Result<(), AppError> {
    let who = administer(ctx, actor, establishment).await?;
    if actor.principal == Principal::Professional(user) && role == Role::Admin {
        return Err(AppError::Forbidden(
            "vous ne pouvez pas retirer votre propre rôle d'administrateur".into(),
        ));
    }
    if !ctx.store.revoke_role(user, establishment, role).await? {
        return Err(AppError::NotFound("ce rôle n'était pas attribué".into()));
    }
    ctx.live.end_session(SessionEnd::User(user));
    trace(
        ctx,
        who,
        "account.revoke",
        format!("User/{user}/{}", role.code()),
    )
    .await
}

/// Disables or enables an account. Disabling ends its sessions and its open
/// pages' sockets at once; its unused links stop working.
pub async fn set_enabled(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    enabled: bool,
) -> Result<(), AppError> {
    let (_, who) = administer_account(ctx, actor, user).await?;
    ctx.store.set_account_enabled(user, enabled).await?;
    if !enabled {
        ctx.live.end_session(SessionEnd::User(user));
    }
    let action = if enabled {
        "account.enable"
    } else {
        "account.disable"
    };
    trace(ctx, who, action, format!("User/{user}")).await
}

/// Resets a professional's second factor: the old one and the recovery codes
/// stop working, sessions end, and a link to enrol a new one is made.
pub async fn reset_second_factor(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
) -> Result<IssuedLink, AppError> {
    let (_, who) = administer_account(ctx, actor, user).await?;
    ctx.store.clear_second_factor(user).await?;
    ctx.live.end_session(SessionEnd::User(user));
    trace(
        ctx,
        who.clone(),
        "account.reset-totp",
        format!("User/{user}"),
    )
    .await?;
    let email = ctx.store.user_email(user).await?;
    issue_link(
        ctx,
        user,
        LinkPurpose::SecondFactorReset,
        &who.id,
        email.as_deref(),
    )
    .await
}

/// Links a professional's identity at an OpenID Connect provider (its
/// subject, as the provider's administrators give it) to their account, for
/// a provider that does not send the RPPS; audited. A subject already linked
/// to someone else is refused.
pub async fn link_provider_identity(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    provider: &str,
    subject: &str,
    known_provider: bool,
) -> Result<(), AppError> {
    let (_, who) = administer_account(ctx, actor, user).await?;
    let subject = subject.trim();
    if !known_provider {
        return Err(AppError::BadRequest(
            "invalid",
            "fournisseur d'identité inconnu".into(),
        ));
    }
    if subject.is_empty() || subject.len() > 255 {
        return Err(AppError::BadRequest(
            "invalid",
            "identifiant chez le fournisseur attendu (sub)".into(),
        ));
    }
    match ctx
        .store
        .link_oidc_identity(provider, subject, user, &who.id, ctx.now_ms())
        .await
    {
        Ok(()) => {}
        Err(store::StoreError::Refused(why)) => return Err(AppError::Conflict(why)),
        Err(e) => return Err(e.into()),
    }
    trace(ctx, who, "account.link-identity", format!("User/{user}")).await
}

/// Makes a password-reset link for a professional (sent by mail when
/// possible, shown to the admin otherwise).
pub async fn send_password_reset(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
) -> Result<IssuedLink, AppError> {
    let (_, who) = administer_account(ctx, actor, user).await?;
    trace(
        ctx,
        who.clone(),
        "account.reset-password",
        format!("User/{user}"),
    )
    .await?;
    let email = ctx.store.user_email(user).await?;
    issue_link(
        ctx,
        user,
        LinkPurpose::PasswordReset,
        &who.id,
        email.as_deref(),
    )
    .await
}

/// "Mot de passe oublié": when `login` names an active account with an
/// e-mail address and a relay is configured, a one-hour link leaves by mail.
/// The answer never says whether the account exists.
pub async fn forgotten_password(ctx: Ctx<'_>, login: &str) -> Result<(), AppError> {
    let Some(user) = ctx.store.user_by_username(login.trim()).await? else {
        return Ok(());
    };
    if !user.active || ctx.mailer.is_none() {
        return Ok(());
    }
    let email = match user.kind {
        UserKind::Professional => ctx.store.user_email(user.id).await?,
        UserKind::Patient => match user.patient {
            Some(p) => ctx.store.patient_email(p).await?,
            None => None,
        },
    };
    if let Some(to) = email {
        issue_link(ctx, user.id, LinkPurpose::PasswordReset, "self", Some(&to)).await?;
        trace(
            ctx,
            AuditActor::system("mot-de-passe-oublie"),
            "account.forgotten-password",
            format!("User/{}", user.id),
        )
        .await?;
    }
    Ok(())
}

/// A patient's portal invitation, made by the desk (secretary, admin, doctor,
/// nurse) for a record it may read: the account `patient.<ipp>` with no
/// password yet, and a week-long link (mailed when an address is given and a
/// relay is configured; printed otherwise). A patient who already chose a
/// password is sent to "mot de passe oublié" instead.
pub async fn invite_patient(
    ctx: Ctx<'_>,
    actor: &Actor,
    patient: PatientId,
    email: Option<&str>,
) -> Result<PatientInvited, AppError> {
    if !matches!(actor.principal, Principal::Professional(_))
        || actor
            .establishments_as(&[Role::Secretary, Role::Admin, Role::Doctor, Role::Nurse])
            .is_empty()
    {
        return Err(AppError::Forbidden(
            "l'invitation d'un patient est faite par l'accueil de l'établissement".into(),
        ));
    }
    // Clinical reach, not identity alone: the account opens the record's
    // clinical data to whoever holds the link, so only an establishment that
    // cares for the patient may hand one out.
    crate::services::patients::clinical_read(ctx, actor, patient, "portal-invitation").await?;
    let record = crate::services::patients::read(ctx, actor, patient).await?;
    if let Some(e) = email {
        check_email(e)?;
    }
    let username = format!("patient.{}", record.ipp.to_lowercase());
    let id = match ctx.store.user_by_username(&username).await? {
        Some(u) if u.password_hash != NO_PASSWORD => {
            return Err(AppError::Conflict(
                "ce patient a déjà un compte sur le portail : proposez-lui « mot de passe oublié »"
                    .into(),
            ));
        }
        Some(u) => u.id,
        None => {
            let new = NewUser {
                username: username.clone(),
                display_name: record.traits.display_name(),
                kind: UserKind::Patient,
                password_hash: NO_PASSWORD.into(),
                totp_secret: None,
                rpps: None,
                profession: None,
                patient: Some(patient),
                roles: vec![],
            };
            ctx.store.create_user(&new, ctx.now_ms()).await?
        }
    };
    let who = AuditActor::new(actor, None);
    ctx.store
        .audit(&NewAudit {
            at_ms: ctx.now_ms(),
            actor: who.clone(),
            patient: Some(patient.to_string()),
            action: "account.invite-patient".into(),
            resource: format!("User/{id}"),
            outcome: "success".into(),
        })
        .await?;
    let link = issue_link(ctx, id, LinkPurpose::PatientInvitation, &who.id, email).await?;
    Ok(PatientInvited {
        name: record.traits.display_name(),
        login: username,
        link,
    })
}

/// A patient's invitation, to print or as sent.
#[derive(Debug, Clone)]
pub struct PatientInvited {
    /// The patient's name.
    pub name: String,
    /// Their login name on the portal.
    pub login: String,
    /// The link.
    pub link: IssuedLink,
}

/// A user's own open sessions.
pub async fn my_sessions(ctx: Ctx<'_>, user: UserId) -> Result<Vec<SessionInfo>, AppError> {
    Ok(ctx.store.sessions_of(user, ctx.now_ms()).await?)
}

/// Ends one of the user's own sessions (its sockets close now).
pub async fn end_my_session(ctx: Ctx<'_>, user: UserId, token_hash: &str) -> Result<(), AppError> {
    if !ctx.store.end_session_of(user, token_hash).await? {
        return Err(AppError::NotFound(
            "session introuvable ou déjà fermée".into(),
        ));
    }
    ctx.live
        .end_session(SessionEnd::Session(token_hash.to_owned(), user));
    Ok(())
}

/// The API clients of the establishments `actor` administers.
pub async fn clients(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<ApiClient>, AppError> {
    let ests: Vec<EstablishmentId> = administered_establishments(ctx, actor)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    Ok(ctx.store.clients_of(&ests).await?)
}

async fn administer_client(
    ctx: Ctx<'_>,
    actor: &Actor,
    client: ApiClientId,
) -> Result<(ApiClient, AuditActor), AppError> {
    let c = clients(ctx, actor)
        .await?
        .into_iter()
        .find(|c| c.id == client)
        .ok_or_else(|| AppError::NotFound("client API introuvable".into()))?;
    let who = administer(ctx, actor, c.establishment).await?;
    Ok((c, who))
}

/// Creates an API client; its secret, shown once.
pub async fn create_client(
    ctx: Ctx<'_>,
    actor: &Actor,
    client_id: &str,
    name: &str,
    establishment: EstablishmentId,
    role: Role,
) -> Result<String, AppError> {
    let who = administer(ctx, actor, establishment).await?;
    if !matches!(role, Role::Integration | Role::Admin) {
        return Err(AppError::BadRequest(
            "invalid",
            "un client API a le rôle intégration ou administrateur (lecture de l'audit)".into(),
        ));
    }
    check_username(client_id)?;
    if name.trim().is_empty() {
        return Err(AppError::BadRequest(
            "invalid",
            "le nom est obligatoire".into(),
        ));
    }
    if ctx.store.client_by_client_id(client_id).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "le client {client_id} existe déjà"
        )));
    }
    let secret = auth::random_token();
    let id = ctx
        .store
        .create_client(
            client_id,
            name.trim(),
            &auth::hash_secret(secret.clone()).await?,
            establishment,
            role,
            ctx.now_ms(),
        )
        .await?;
    trace(ctx, who, "client.create", format!("Device/{id}")).await?;
    Ok(secret)
}

/// Gives a client a new secret (the old one and its tokens stop working); the
/// new secret, shown once.
pub async fn rotate_client(
    ctx: Ctx<'_>,
    actor: &Actor,
    client: ApiClientId,
) -> Result<String, AppError> {
    let (c, who) = administer_client(ctx, actor, client).await?;
    let secret = auth::random_token();
    ctx.store
        .rotate_client_secret(c.id, &auth::hash_secret(secret.clone()).await?)
        .await?;
    trace(ctx, who, "client.rotate", format!("Device/{}", c.id)).await?;
    Ok(secret)
}

/// Revokes a client: it gets no token any more, and its tokens stop now.
pub async fn revoke_client(
    ctx: Ctx<'_>,
    actor: &Actor,
    client: ApiClientId,
) -> Result<(), AppError> {
    let (c, who) = administer_client(ctx, actor, client).await?;
    ctx.store.set_client_active(c.id, false).await?;
    trace(ctx, who, "client.revoke", format!("Device/{}", c.id)).await
}

/// `parcours init`: the territory, its first administrator (no password yet)
/// and the set-up link. Refused when a territory with this OID exists.
pub async fn init(
    ctx: Ctx<'_>,
    territory_name: &str,
    oid: &str,
    admin_username: &str,
    admin_email: Option<&str>,
) -> Result<IssuedLink, AppError> {
    check_username(admin_username)?;
    if let Some(e) = admin_email {
        check_email(e)?;
    }
    if territory_name.trim().is_empty() {
        return Err(AppError::BadRequest(
            "invalid",
            "nom du territoire vide".into(),
        ));
    }
    if oid.is_empty()
        || !oid
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AppError::BadRequest(
            "invalid",
            format!("OID invalide {oid:?} : chiffres séparés par des points"),
        ));
    }
    if ctx.store.territory_by_oid(oid).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "le territoire d'OID {oid} existe déjà : rien n'a été changé"
        )));
    }
    if ctx.store.user_by_username(admin_username).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "l'identifiant {admin_username} est déjà pris"
        )));
    }
    let t = store::orgs::Territory {
        id: TerritoryId::new(),
        name: territory_name.trim().to_owned(),
        oid: oid.to_owned(),
    };
    ctx.store.create_territory(&t, ctx.now_ms()).await?;
    let new = NewUser {
        username: admin_username.to_owned(),
        display_name: format!("Administrateur {}", t.name),
        kind: UserKind::Professional,
        password_hash: NO_PASSWORD.into(),
        totp_secret: None,
        rpps: None,
        profession: Some("Administrateur du territoire".into()),
        patient: None,
        roles: vec![],
    };
    let id = ctx.store.create_user(&new, ctx.now_ms()).await?;
    ctx.store.set_user_email(id, admin_email).await?;
    ctx.store.add_territory_admin(id, t.id).await?;
    trace(
        ctx,
        AuditActor::system("init"),
        "territory.init",
        format!("Organization/{}", t.id),
    )
    .await?;
    issue_link(ctx, id, LinkPurpose::Setup, "init", admin_email).await
}
