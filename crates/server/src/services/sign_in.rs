//! Signing in and out: a password (then a TOTP code for professionals and for
//! patients who enabled it), failed attempts counted per account until it
//! locks, sessions created, upgraded and ended (their WebSockets close), every
//! attempt audited. Throttling per address is the routes' (before the
//! password is even checked).

use domain::audit::AuditActor;
use store::audit::NewAudit;
use store::users::{Session, User, UserKind};

use crate::auth::{self, random_token, token_hash};
use crate::error::AppError;
use crate::fmt::paris_time;
use crate::live::SessionEnd;
use crate::services::ctx::Ctx;

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown account, wrong password or wrong code (one message for all).
    BadCredentials,
    /// The account is locked after failures.
    Locked,
    /// A professional's account without a second factor.
    NoSecondFactor,
}

/// What became of an attempt.
#[derive(Debug)]
pub enum SignIn {
    /// A session: its token (for the cookie), and whether the second factor
    /// is still to be given (a short, half session then).
    Session {
        /// The token.
        token: String,
        /// The TOTP code is asked next.
        second_factor: bool,
    },
    /// Refused: why, and the message for the page (French).
    Refused(Refusal, String),
}

const BAD_CREDENTIALS: &str = "Identifiant, mot de passe ou code incorrect.";
/// How long a half session (password given, code not yet) lasts.
const HALF_SESSION_MS: i64 = 5 * 60_000;

/// Signs in with a password.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn with_password(
    ctx: Ctx<'_>,
    username: &str,
    password: String,
) -> Result<SignIn, AppError> {
    let user = ctx.store.user_by_username(username).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(auth::dummy_hash);
    let password_ok = auth::verify_secret(hash, password).await;
    let Some(user) = user.filter(|u| u.active) else {
        ctx.metrics.count_login(false);
        audit(ctx, None, "login", "denied").await;
        return Ok(SignIn::Refused(
            Refusal::BadCredentials,
            BAD_CREDENTIALS.into(),
        ));
    };
    if let Some(msg) = locked_message(ctx, &user) {
        return Ok(SignIn::Refused(Refusal::Locked, msg));
    }
    if !password_ok {
        return failed_factor(ctx, &user).await;
    }
    let second_factor = user.kind == UserKind::Professional || user.totp_secret.is_some();
    if second_factor && user.totp_secret.is_none() {
        return Ok(SignIn::Refused(
            Refusal::NoSecondFactor,
            "Second facteur non configuré pour ce compte: demandez à votre administrateur de l'activer.".into(),
        ));
    }
    let token = random_token();
    let now = ctx.now_ms();
    let ttl = if second_factor {
        HALF_SESSION_MS
    } else {
        ctx.config.session_ttl_minutes * 60_000
    };
    let session = Session {
        token_hash: token_hash(&token),
        user: user.id,
        csrf_token: random_token(),
        mfa_done: !second_factor,
        expires_at_ms: now + ttl,
    };
    ctx.store.create_session(&session, now).await?;
    if !second_factor {
        succeeded(ctx, &user).await?;
    }
    Ok(SignIn::Session {
        token,
        second_factor,
    })
}

/// Completes the half session `half` with a TOTP `code`: a fresh full
/// session replaces it. A locked account loses the half session.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn with_code(ctx: Ctx<'_>, half: &Session, code: &str) -> Result<SignIn, AppError> {
    let user = ctx.store.user(half.user).await?;
    if let Some(msg) = locked_message(ctx, &user) {
        ctx.store.delete_session(&half.token_hash).await?;
        return Ok(SignIn::Refused(Refusal::Locked, msg));
    }
    let secs = u64::try_from(ctx.now_ms() / 1000).unwrap_or(0);
    let step = user
        .totp_secret
        .as_deref()
        .and_then(|s| auth::totp_matching_step(s, code, secs));
    let fresh = match step {
        Some(step) => ctx.store.consume_totp_step(user.id, step).await?,
        // A recovery code stands in for the code once (a lost phone).
        None => match auth::normalize_recovery_code(code) {
            Some(c) if user.totp_secret.is_some() => {
                ctx.store
                    .use_recovery_code(user.id, &token_hash(&c), ctx.now_ms())
                    .await?
            }
            _ => false,
        },
    };
    if !fresh {
        return failed_factor(ctx, &user).await;
    }
    let token = random_token();
    let now = ctx.now_ms();
    let full = Session {
        token_hash: token_hash(&token),
        user: user.id,
        csrf_token: random_token(),
        mfa_done: true,
        expires_at_ms: now + ctx.config.session_ttl_minutes * 60_000,
    };
    ctx.store
        .upgrade_session(&half.token_hash, &full, now)
        .await?;
    succeeded(ctx, &user).await?;
    Ok(SignIn::Session {
        token,
        second_factor: false,
    })
}

/// Signs in the person an OpenID Connect provider vouched for (its checks
/// passed: signature, audience, nonce, level): a professional by the RPPS in
/// their national id, or anyone by the provider's subject once linked to their
/// account. The provider's authentication counts as the strong one: the
/// session is full at once. An unknown person is refused, never created.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn with_identity(
    ctx: Ctx<'_>,
    provider: &crate::oidc::ProviderConfig,
    who: &crate::oidc::Identity,
) -> Result<SignIn, AppError> {
    let linked = ctx.store.oidc_identity(&provider.id, &who.subject).await?;
    let by_rpps = match (provider.for_patients, who.national_id.as_deref()) {
        (false, Some(n)) => match crate::oidc::rpps_of(n) {
            Some(rpps) => ctx.store.professional_by_rpps(rpps).await?,
            None => None,
        },
        _ => None,
    };
    let user = match linked.or(by_rpps) {
        Some(id) => Some(ctx.store.user(id).await?),
        None => None,
    };
    let Some(user) = user.filter(|u| u.active) else {
        ctx.metrics.count_login(false);
        audit(ctx, None, "login.oidc", "denied:unknown").await;
        let whom = match (provider.for_patients, who.national_id.as_deref()) {
            (false, Some(n)) => format!(" (identifiant national {n})"),
            _ => String::new(),
        };
        return Ok(SignIn::Refused(
            Refusal::BadCredentials,
            format!(
                "Aucun compte Parcours actif n'est associé à cette identité{whom}. Demandez à l'administrateur de votre établissement de créer ou de lier votre accès."
            ),
        ));
    };
    if (user.kind == UserKind::Patient) != provider.for_patients {
        audit(ctx, Some(&user), "login.oidc", "denied:kind").await;
        return Ok(SignIn::Refused(
            Refusal::BadCredentials,
            "Ce fournisseur d'identité ne sert pas à ce type de compte.".into(),
        ));
    }
    if let Some(msg) = locked_message(ctx, &user) {
        return Ok(SignIn::Refused(Refusal::Locked, msg));
    }
    let token = random_token();
    let now = ctx.now_ms();
    let session = Session {
        token_hash: token_hash(&token),
        user: user.id,
        csrf_token: random_token(),
        mfa_done: true,
        expires_at_ms: now + ctx.config.session_ttl_minutes * 60_000,
    };
    ctx.store.create_session(&session, now).await?;
    ctx.store
        .set_oidc_session(
            &session.token_hash,
            &provider.id,
            &who.id_token,
            session.expires_at_ms,
        )
        .await?;
    succeeded_as(ctx, &user, "login.oidc").await?;
    Ok(SignIn::Session {
        token,
        second_factor: false,
    })
}

/// Links the provider's subject to `user` (who started the link while signed
/// in); audited. A subject already linked to someone else is refused.
pub async fn link_identity(
    ctx: Ctx<'_>,
    provider: &crate::oidc::ProviderConfig,
    user: domain::UserId,
    who: &crate::oidc::Identity,
) -> Result<Result<(), String>, AppError> {
    let account = ctx.store.user(user).await?;
    if (account.kind == UserKind::Patient) != provider.for_patients {
        return Ok(Err(
            "Ce fournisseur d'identité ne sert pas à ce type de compte.".into(),
        ));
    }
    match ctx
        .store
        .link_oidc_identity(
            &provider.id,
            &who.subject,
            user,
            &user.to_string(),
            ctx.now_ms(),
        )
        .await
    {
        Ok(()) => {
            audit(ctx, Some(&account), "login.oidc-link", "success").await;
            Ok(Ok(()))
        }
        Err(store::StoreError::Refused(why)) => {
            audit(ctx, Some(&account), "login.oidc-link", "denied").await;
            Ok(Err(format!("Liaison refusée : {why}.")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Audits a refused federated sign-in (`code`: why, never a token).
pub async fn oidc_refused(ctx: Ctx<'_>, code: &str) {
    ctx.metrics.count_login(false);
    audit(ctx, None, "login.oidc", &format!("denied:{code}")).await;
}

/// Ends `user`'s `session`; its open WebSockets (room, queues) close now.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sign_out(ctx: Ctx<'_>, user: &User, session: &Session) -> Result<(), AppError> {
    ctx.store.delete_session(&session.token_hash).await?;
    ctx.live
        .end_session(SessionEnd::Session(session.token_hash.clone(), user.id));
    audit(ctx, Some(user), "logout", "success").await;
    Ok(())
}

async fn succeeded(ctx: Ctx<'_>, user: &User) -> Result<(), AppError> {
    succeeded_as(ctx, user, "login").await
}

/// A sign-in that worked (`action`: how, for the audit trail).
async fn succeeded_as(ctx: Ctx<'_>, user: &User, action: &str) -> Result<(), AppError> {
    ctx.store.reset_login_failures(user.id).await?;
    ctx.metrics.count_login(true);
    audit(ctx, Some(user), action, "success").await;
    Ok(())
}

/// Counts a failed factor; tells the user whether the account is now locked.
async fn failed_factor(ctx: Ctx<'_>, user: &User) -> Result<SignIn, AppError> {
    ctx.metrics.count_login(false);
    let c = ctx.config;
    let locked = ctx
        .store
        .record_login_failure(
            user.id,
            ctx.now_ms(),
            c.login_max_failures,
            c.login_lock_minutes * 60_000,
        )
        .await?;
    audit(ctx, Some(user), "login", "denied").await;
    Ok(SignIn::Refused(
        Refusal::BadCredentials,
        match locked {
            Some(until) => format!(
                "Trop d'échecs: compte verrouillé jusqu'à {} (heure de Paris).",
                paris_time(until)
            ),
            None => BAD_CREDENTIALS.into(),
        },
    ))
}

fn locked_message(ctx: Ctx<'_>, user: &User) -> Option<String> {
    user.locked_until_ms
        .filter(|until| *until > ctx.now_ms())
        .map(|until| {
            format!(
                "Compte verrouillé jusqu'à {} (heure de Paris) après plusieurs échecs.",
                paris_time(until)
            )
        })
}

/// Audits a sign-in or sign-out of `user` (`None`: no such active account).
async fn audit(ctx: Ctx<'_>, user: Option<&User>, action: &str, outcome: &str) {
    let (kind, id) = match user {
        Some(u) if u.kind == UserKind::Patient => ("patient", u.id.to_string()),
        Some(u) => ("user", u.id.to_string()),
        None => ("user", "inconnu".to_owned()),
    };
    let row = NewAudit {
        at_ms: ctx.now_ms(),
        actor: AuditActor {
            kind,
            id,
            role: None,
            establishment: None,
        },
        patient: None,
        action: action.into(),
        resource: "session".into(),
        outcome: outcome.into(),
    };
    if let Err(e) = ctx.store.audit(&row).await {
        tracing::error!(error = %e, "audit of a login failed");
    }
}
