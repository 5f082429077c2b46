//! Administration pages (territory and establishment admins) and the one-time
//! link page (set-up, invitation, password or second-factor reset). Every
//! decision is the accounts service's; these handlers read forms and render.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::org::Role;
use domain::{ApiClientId, EstablishmentId, UserId};
use store::accounts::LinkPurpose;

use super::kit::{
    Nav, field, form_fields, nav, path_id, posted_form, render, same_origin, see_other,
};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::services::accounts::{self, IssuedLink, LinkAnswer, LinkError};
use crate::services::organisation::{self, EstablishmentView};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/lien/{token}", get(link_page).post(link_post))
        .route("/admin", get(admin_home))
        .route("/admin/personnes", get(people_page).post(invite))
        .route("/admin/personnes/{id}/desactiver", post(disable))
        .route("/admin/personnes/{id}/reactiver", post(enable))
        .route("/admin/personnes/{id}/second-facteur", post(reset_totp))
        .route("/admin/personnes/{id}/identite", post(link_identity))
        .route("/admin/personnes/{id}/mot-de-passe", post(reset_password))
        .route("/admin/personnes/{id}/roles", post(grant))
        .route("/admin/personnes/{id}/roles/retirer", post(revoke))
        .route("/admin/clients", get(clients_page).post(create_client))
        .route("/admin/clients/{id}/renouveler", post(rotate_client))
        .route("/admin/clients/{id}/revoquer", post(revoke_client))
        .route("/admin/etablissements", get(establishments_page))
        .route(
            "/admin/etablissements/{id}/modifier",
            get(edit_page).post(edit_post),
        )
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    title: String,
    nav: Option<Nav>,
    heading: String,
    username: String,
    display_name: String,
    action: String,
    sets_password: bool,
    email: Option<String>,
    qr: Option<String>,
    secret: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "link_done.html")]
struct LinkDone {
    title: String,
    nav: Option<Nav>,
    message: String,
    codes: Vec<String>,
}

fn heading(p: LinkPurpose) -> &'static str {
    match p {
        LinkPurpose::Setup => "Mise en service : votre compte d'administrateur",
        LinkPurpose::Invitation => "Bienvenue : créez votre accès",
        LinkPurpose::PatientInvitation => "Bienvenue sur votre espace patient",
        LinkPurpose::PasswordReset => "Choisir un nouveau mot de passe",
        LinkPurpose::SecondFactorReset => "Enrôler un nouveau second facteur",
        LinkPurpose::EmailConfirmation => "Confirmer votre adresse e-mail",
    }
}

async fn show_link(
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let view = match accounts::open_link(state.ctx(), token).await {
        Ok(v) => v,
        Err(e) => return Err(AppError::NotFound(e.to_string()).into()),
    };
    let (qr, secret) = if view.purpose.enrols_second_factor() {
        let secret = crate::auth::new_totp_secret();
        let uri = crate::auth::otpauth_uri(&secret, &view.username);
        (crate::auth::qr_svg(&uri), secret)
    } else {
        (None, String::new())
    };
    let page = LinkPage {
        title: heading(view.purpose).into(),
        nav: None,
        heading: heading(view.purpose).into(),
        username: view.username,
        display_name: view.display_name,
        action: accounts::link_path(token),
        sets_password: view.purpose.sets_password(),
        email: view.email,
        qr,
        secret,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn link_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    show_link(&state, &token, StatusCode::OK, None).await
}

async fn link_post(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, PageError> {
    // The token in the path is the credential; the origin check stops another
    // site from posting a form at it.
    same_origin(&state, &headers)?;
    let f = form_fields(&body)?;
    let answer = LinkAnswer {
        password: field(&f, "password"),
        confirm: field(&f, "confirm"),
        totp_secret: field(&f, "secret"),
        code: field(&f, "code"),
    };
    let purpose = accounts::open_link(state.ctx(), &token)
        .await
        .map(|v| v.purpose)
        .ok();
    match accounts::follow_link(state.ctx(), &token, &answer).await? {
        Ok(codes) => {
            let (title, message) = if purpose == Some(LinkPurpose::EmailConfirmation) {
                (
                    "Adresse confirmée",
                    "Votre adresse e-mail est confirmée : vos avis y seront envoyés.",
                )
            } else {
                (
                    "Accès prêt",
                    "Votre accès est prêt : vous pouvez vous connecter.",
                )
            };
            let page = LinkDone {
                title: title.into(),
                nav: None,
                message: message.into(),
                codes,
            };
            Ok(render(&page)?.into_response())
        }
        Err(LinkError::Invalid) => Err(AppError::NotFound(LinkError::Invalid.to_string()).into()),
        Err(e) => {
            show_link(
                &state,
                &token,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_home.html")]
struct AdminHome {
    title: String,
    nav: Option<Nav>,
    establishments: Vec<(String, String)>,
}

async fn admin_home(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    let ests = accounts::administered_establishments(state.ctx(), &w.actor).await?;
    if ests.is_empty()
        && accounts::administered(state.ctx(), &w.actor)
            .await?
            .is_empty()
    {
        return Err(AppError::Forbidden("page réservée aux administrateurs".into()).into());
    }
    let page = AdminHome {
        title: "Administration".into(),
        nav: nav(&w),
        establishments: ests.into_iter().map(|e| (e.finess, e.name)).collect(),
    };
    Ok(render(&page)?.into_response())
}

struct PersonView {
    id: String,
    username: String,
    display_name: String,
    email: Option<String>,
    active: bool,
    enrolled: bool,
    /// (establishment id, establishment name, role label, role code)
    roles: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "admin_people.html")]
struct PeoplePage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    establishments: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    people: Vec<PersonView>,
    error: Option<String>,
    notice: Option<String>,
    link: Option<String>,
    /// Professionals' sign-in providers: (id, label).
    providers: Vec<(String, String)>,
}

fn person_roles() -> Vec<(String, String)> {
    Role::ALL
        .into_iter()
        .filter(|r| *r != Role::Integration)
        .map(|r| (r.code().to_owned(), r.label_fr().to_owned()))
        .collect()
}

async fn people_screen(
    state: &AppState,
    w: &WebUser,
    status: StatusCode,
    error: Option<String>,
    notice: Option<(String, Option<IssuedLink>)>,
) -> Result<Response, PageError> {
    let ests = accounts::administered_establishments(state.ctx(), &w.actor).await?;
    if ests.is_empty() {
        return Err(AppError::Forbidden(
            "page réservée aux administrateurs d'un établissement ou du territoire".into(),
        )
        .into());
    }
    let people = accounts::people(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|p| PersonView {
            id: p.user.id.to_string(),
            username: p.user.username,
            display_name: p.user.display_name,
            email: p.email,
            active: p.user.active,
            enrolled: p.enrolled,
            roles: p
                .roles
                .into_iter()
                .map(|(e, n, r)| {
                    (
                        e.to_string(),
                        n,
                        r.label_fr().to_owned(),
                        r.code().to_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    let (notice, link) = match notice {
        Some((n, Some(l))) => {
            let sent = if l.mailed {
                " Le lien a été envoyé par courriel."
            } else {
                ""
            };
            (
                Some(format!(
                    "{n}{sent} Il est valable jusqu'au {} (heure de Paris), une seule fois.",
                    crate::fmt::paris_time(l.expires_at_ms)
                )),
                Some(l.url),
            )
        }
        Some((n, None)) => (Some(n), None),
        None => (None, None),
    };
    let page = PeoplePage {
        title: "Personnes".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        establishments: ests
            .into_iter()
            .map(|e| (e.id.to_string(), e.name))
            .collect(),
        roles: person_roles(),
        people,
        error,
        notice,
        link,
        providers: state.oidc.for_accounts(false),
    };
    Ok((status, render(&page)?).into_response())
}

async fn people_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    people_screen(&state, &w, StatusCode::OK, None, None).await
}

/// Runs an admin action; a refusal the admin can fix (bad input, conflict)
/// is shown on the page with the form, anything else is an error page.
async fn on_people_page(
    state: &AppState,
    w: &WebUser,
    result: Result<(String, Option<IssuedLink>), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(notice) => people_screen(state, w, StatusCode::OK, None, Some(notice)).await,
        Err(e) => {
            let (status, why) = fixable(e)?;
            people_screen(state, w, status, Some(why), None).await
        }
    }
}

/// A refusal the admin can fix on the page (bad input 400, conflict 409):
/// its status and message; any other error stays an error page.
fn fixable(e: AppError) -> Result<(StatusCode, String), PageError> {
    match e {
        AppError::BadRequest(..) => Ok((StatusCode::BAD_REQUEST, e.to_string())),
        AppError::Conflict(_) => Ok((StatusCode::CONFLICT, e.to_string())),
        other => Err(other.into()),
    }
}

fn role_field(f: &[(String, String)]) -> Result<Role, AppError> {
    Role::from_code(field(f, "role"))
        .ok_or_else(|| AppError::BadRequest("invalid", "rôle inconnu".into()))
}

fn establishment_field(f: &[(String, String)]) -> Result<EstablishmentId, AppError> {
    field(f, "establishment")
        .parse()
        .map_err(|_| AppError::BadRequest("invalid", "établissement inconnu".into()))
}

fn optional(f: &[(String, String)], k: &str) -> Option<String> {
    Some(field(f, k).trim().to_owned()).filter(|v| !v.is_empty())
}

async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let result = async {
        let inv = accounts::Invitation {
            username: field(&f, "username").trim().to_owned(),
            display_name: field(&f, "display_name").trim().to_owned(),
            email: optional(&f, "email"),
            rpps: optional(&f, "rpps"),
            profession: optional(&f, "profession"),
            establishment: establishment_field(&f)?,
            role: role_field(&f)?,
        };
        let link = accounts::invite(state.ctx(), &w.actor, &inv).await?;
        Ok((format!("{} est invité(e).", inv.display_name), Some(link)))
    }
    .await;
    on_people_page(&state, &w, result).await
}

async fn disable(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    accounts::set_enabled(state.ctx(), &w.actor, user, false).await?;
    Ok(see_other("/admin/personnes"))
}

async fn enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    accounts::set_enabled(state.ctx(), &w.actor, user, true).await?;
    Ok(see_other("/admin/personnes"))
}

async fn reset_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    let result = accounts::reset_second_factor(state.ctx(), &w.actor, user)
        .await
        .map(|l| {
            (
                "Second facteur réinitialisé : ses sessions sont fermées.".to_owned(),
                Some(l),
            )
        });
    on_people_page(&state, &w, result).await
}

async fn link_identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    let provider = field(&f, "provider");
    let known = state
        .oidc
        .get(provider)
        .is_some_and(|p| !p.config.for_patients);
    let result = accounts::link_provider_identity(
        state.ctx(),
        &w.actor,
        user,
        provider,
        field(&f, "subject"),
        known,
    )
    .await
    .map(|()| {
        (
            "Identité liée : la personne peut se connecter par ce fournisseur.".to_owned(),
            None,
        )
    });
    on_people_page(&state, &w, result).await
}

async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    let result = accounts::send_password_reset(state.ctx(), &w.actor, user)
        .await
        .map(|l| ("Lien de choix du mot de passe créé.".to_owned(), Some(l)));
    on_people_page(&state, &w, result).await
}

async fn grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    let result = async {
        accounts::grant(
            state.ctx(),
            &w.actor,
            user,
            establishment_field(&f)?,
            role_field(&f)?,
        )
        .await?;
        Ok(("Rôle ajouté.".to_owned(), None))
    }
    .await;
    on_people_page(&state, &w, result).await
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let user: UserId = path_id(&id, "compte")?;
    let result = async {
        accounts::revoke(
            state.ctx(),
            &w.actor,
            user,
            establishment_field(&f)?,
            role_field(&f)?,
        )
        .await?;
        Ok(("Rôle retiré.".to_owned(), None))
    }
    .await;
    on_people_page(&state, &w, result).await
}

struct ClientView {
    id: String,
    client_id: String,
    name: String,
    role: String,
    establishment: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    establishments: Vec<(String, String)>,
    clients: Vec<ClientView>,
    error: Option<String>,
    notice: Option<String>,
    secret: Option<String>,
}

async fn clients_screen(
    state: &AppState,
    w: &WebUser,
    status: StatusCode,
    error: Option<String>,
    notice: Option<(String, Option<String>)>,
) -> Result<Response, PageError> {
    let ests = accounts::administered_establishments(state.ctx(), &w.actor).await?;
    if ests.is_empty() {
        return Err(AppError::Forbidden("page réservée aux administrateurs".into()).into());
    }
    let name_of = |id: EstablishmentId| {
        ests.iter()
            .find(|e| e.id == id)
            .map_or_else(|| id.to_string(), |e| e.name.clone())
    };
    let clients = accounts::clients(state.ctx(), &w.actor)
        .await?
        .into_iter()
        .map(|c| ClientView {
            id: c.id.to_string(),
            client_id: c.client_id,
            name: c.name,
            role: c.role.label_fr().to_owned(),
            establishment: name_of(c.establishment),
            active: c.active,
        })
        .collect();
    let (notice, secret) = match notice {
        Some((n, s)) => (Some(n), s),
        None => (None, None),
    };
    let page = ClientsPage {
        title: "Clients API".into(),
        nav: nav(w),
        csrf: w.session.csrf_token.clone(),
        establishments: ests
            .iter()
            .map(|e| (e.id.to_string(), e.name.clone()))
            .collect(),
        clients,
        error,
        notice,
        secret,
    };
    Ok((status, render(&page)?).into_response())
}

async fn clients_page(State(state): State<AppState>, w: WebUser) -> Result<Response, PageError> {
    clients_screen(&state, &w, StatusCode::OK, None, None).await
}

async fn on_clients_page(
    state: &AppState,
    w: &WebUser,
    result: Result<(String, Option<String>), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(notice) => clients_screen(state, w, StatusCode::OK, None, Some(notice)).await,
        Err(e) => {
            let (status, why) = fixable(e)?;
            clients_screen(state, w, status, Some(why), None).await
        }
    }
}

async fn create_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let result = async {
        let client_id = field(&f, "client_id").trim();
        let secret = accounts::create_client(
            state.ctx(),
            &w.actor,
            client_id,
            field(&f, "name"),
            establishment_field(&f)?,
            role_field(&f)?,
        )
        .await?;
        Ok((format!("Client {client_id} créé."), Some(secret)))
    }
    .await;
    on_clients_page(&state, &w, result).await
}

async fn rotate_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let client: ApiClientId = path_id(&id, "client API")?;
    let result = accounts::rotate_client(state.ctx(), &w.actor, client)
        .await
        .map(|s| {
            (
                "Nouveau secret : l'ancien et ses jetons ne marchent plus.".to_owned(),
                Some(s),
            )
        });
    on_clients_page(&state, &w, result).await
}

async fn revoke_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    posted_form(&state, &headers, &w, &body)?;
    let client: ApiClientId = path_id(&id, "client API")?;
    accounts::revoke_client(state.ctx(), &w.actor, client).await?;
    Ok(see_other("/admin/clients"))
}

#[derive(Template)]
#[template(path = "admin_establishments.html")]
struct EstablishmentsPage {
    title: String,
    nav: Option<Nav>,
    establishments: Vec<EstablishmentView>,
}

async fn establishments_page(
    State(state): State<AppState>,
    w: WebUser,
) -> Result<Response, PageError> {
    let establishments = organisation::overview(state.ctx(), &w.actor).await?;
    if establishments.is_empty()
        && accounts::administered(state.ctx(), &w.actor)
            .await?
            .is_empty()
    {
        return Err(AppError::Forbidden("page réservée aux administrateurs".into()).into());
    }
    let page = EstablishmentsPage {
        title: "Établissements".into(),
        nav: nav(&w),
        establishments,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Template)]
#[template(path = "admin_establishment_edit.html")]
struct EditPage {
    title: String,
    nav: Option<Nav>,
    csrf: String,
    id: String,
    name: String,
    text: String,
    errors: Vec<(usize, String)>,
    lines: Option<Vec<String>>,
    applied: bool,
}

async fn edit_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let est: EstablishmentId = path_id(&id, "établissement")?;
    let text = organisation::edit_text(state.ctx(), &w.actor, est).await?;
    let name = crate::services::directory::establishment_name(state.ctx(), est).await;
    let page = EditPage {
        title: format!("Modifier {name}"),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        id,
        name,
        text,
        errors: Vec::new(),
        lines: None,
        applied: false,
    };
    Ok(render(&page)?.into_response())
}

async fn edit_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let est: EstablishmentId = path_id(&id, "établissement")?;
    let text = field(&f, "fichier").replace("\r\n", "\n");
    let apply = field(&f, "action") == "apply";
    let name = crate::services::directory::establishment_name(state.ctx(), est).await;
    let mut page = EditPage {
        title: format!("Modifier {name}"),
        nav: nav(&w),
        csrf: w.session.csrf_token.clone(),
        id,
        name,
        text: text.clone(),
        errors: Vec::new(),
        lines: None,
        applied: false,
    };
    let status = match organisation::edit(state.ctx(), &w.actor, est, &text, apply).await? {
        organisation::Edited::Refused(errors) => {
            page.errors = errors.into_iter().map(|e| (e.line, e.reason)).collect();
            StatusCode::UNPROCESSABLE_ENTITY
        }
        organisation::Edited::Planned { lines, applied } => {
            page.lines = Some(lines);
            page.applied = applied;
            if applied {
                // Show what is in place now.
                page.text = organisation::edit_text(state.ctx(), &w.actor, est).await?;
            }
            StatusCode::OK
        }
    };
    Ok((status, render(&page)?).into_response())
}
