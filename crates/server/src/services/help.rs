//! The help page: each establishment's support cell (phone and hours, set in
//! the organisation file as `support_phone` and `support_hours`), and the
//! answers to common questions. Open to everyone: who cannot log in needs it.

use domain::UserId;
use store::users::UserKind;

use crate::error::AppError;
use crate::services::ctx::Ctx;

/// One establishment's support cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportCell {
    /// The establishment.
    pub establishment: String,
    /// Its FINESS.
    pub finess: String,
    /// Phone, if set.
    pub phone: Option<String>,
    /// Hours, if set.
    pub hours: Option<String>,
}

/// Common questions and their answers (plain French).
pub const FAQ: &[(&str, &str)] = &[
    (
        "Je n'arrive pas à me connecter.",
        "Vérifiez votre identifiant (il est écrit sur votre invitation). Après plusieurs erreurs, le compte est bloqué quelques minutes : patientez puis réessayez. Mot de passe perdu : utilisez « Mot de passe oublié ? » sur la page de connexion.",
    ),
    (
        "J'ai perdu mon téléphone (code à 6 chiffres).",
        "Professionnels : saisissez l'un de vos codes de secours à la place du code, puis demandez à votre administrateur de réinitialiser votre second facteur.",
    ),
    (
        "La vidéo ne marche pas pendant la téléconsultation.",
        "Lancez la vérification ci-dessous : elle teste la caméra, le micro et la connexion. Autorisez l'accès à la caméra et au micro quand le navigateur le demande. Un ordinateur ou un téléphone récent avec Chrome, Firefox, Edge ou Safari convient.",
    ),
    (
        "Je ne reçois pas les courriels.",
        "Regardez dans les courriers indésirables. Patients : vérifiez votre adresse dans « Mes coordonnées ». Tout reste aussi visible dans votre espace Parcours.",
    ),
    (
        "Qui voit mon dossier ?",
        "Seuls les professionnels des établissements qui vous soignent. Chaque accès est enregistré dans un journal que l'établissement contrôle.",
    ),
];

/// The support cells to show: the establishment named by `finess`, else the
/// signed-in `user`'s establishments (a professional's grants, a patient's
/// care places), else none (the page then gives the general help).
pub async fn support_cells(
    ctx: Ctx<'_>,
    user: Option<UserId>,
    finess: &str,
) -> Result<Vec<SupportCell>, AppError> {
    let mut ests = Vec::new();
    if !finess.is_empty() {
        if let Some(e) = ctx.store.establishment_by_finess(finess).await? {
            ests.push(e);
        }
    } else if let Some(u) = user {
        let user = ctx.store.user(u).await?;
        let ids = match (user.kind, user.patient) {
            (UserKind::Patient, Some(p)) => ctx.store.patient_establishments(p).await?,
            _ => ctx
                .store
                .grants(u)
                .await?
                .into_iter()
                .map(|g| g.establishment)
                .collect(),
        };
        for id in ids {
            if !ests.iter().any(|e: &store::orgs::Establishment| e.id == id) {
                ests.push(ctx.store.establishment(id).await?);
            }
        }
    }
    let mut out = Vec::new();
    for e in ests {
        let settings = ctx.store.establishment_settings(e.id).await?;
        let get = |k: &str| {
            settings
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        out.push(SupportCell {
            phone: get("support_phone"),
            hours: get("support_hours"),
            establishment: e.name,
            finess: e.finess,
        });
    }
    Ok(out)
}
