//! A patient's notices on the portal: the channel they choose (SMS, e-mail
//! or the portal only — `domain::notice` decides what is open), and the
//! notices themselves with how each left ("Mes avis"), for the patient only.

use domain::demographics::TelecomKind;
use domain::notice::{Channel, sms_number};
use domain::policy::Actor;
use store::notices::Notice;

use crate::error::AppError;
use crate::services::ctx::Ctx;
use crate::services::patients::own;

/// What the account page shows of the patient's notices.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The channel chosen (none yet: e-mail first, then SMS).
    pub chosen: Option<Channel>,
    /// The mobile number SMS go to, as shown (none known: no SMS).
    pub mobile: Option<String>,
}

/// The notice settings of the patient `actor`.
pub async fn settings(ctx: Ctx<'_>, actor: &Actor) -> Result<Settings, AppError> {
    let p = own(actor)?;
    let mobile = ctx
        .store
        .demographics(p)
        .await?
        .telecoms
        .into_iter()
        .find(|t| t.kind == TelecomKind::Mobile && sms_number(&t.value).is_some())
        .map(|t| t.display());
    Ok(Settings {
        chosen: ctx
            .store
            .notice_channel(p)
            .await?
            .and_then(|c| Channel::from_code(&c)),
        mobile,
    })
}

/// The patient `actor` chooses how notices reach them (a channel's code).
pub async fn choose(ctx: Ctx<'_>, actor: &Actor, code: &str) -> Result<Channel, AppError> {
    let p = own(actor)?;
    let c = Channel::from_code(code.trim()).ok_or_else(|| {
        AppError::BadRequest("invalid", "choisissez SMS, e-mail ou portail".into())
    })?;
    ctx.store
        .set_notice_channel(p, c.code(), ctx.now_ms())
        .await?;
    Ok(c)
}

/// The patient `actor`'s latest notices, newest first.
pub async fn mine(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Notice>, AppError> {
    Ok(ctx.store.notices_of(own(actor)?, 100).await?)
}
