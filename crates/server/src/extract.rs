//! Who is calling: a professional or patient with a web session (cookie), or an
//! API client with a bearer token. Each extractor resolves the actor and its grants
//! once per request; the policy module decides what it may do.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use domain::policy::{Actor, Grant, Principal};
use store::users::{ApiClient, Session, User, UserKind};

use crate::auth::token_hash;
use crate::error::{ApiError, AppError, PageError};
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "parcours_session";
/// Name of the pre-login CSRF cookie (double-submit).
pub const LOGIN_CSRF_COOKIE: &str = "parcours_login_csrf";

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The client address: the TCP peer, or the address a trusted reverse proxy
/// forwards (loopback when the server runs without connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        Ok(ClientAddr(crate::addr::client(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// Resolves when `session` ends, for WebSockets to close with it: logged out
/// or its account disabled (told at once through `state.session_ends`),
/// expired (by the application's clock, looked at every few seconds), or gone
/// from the store (looked at every `session_check_seconds`).
pub async fn session_ended(state: AppState, session: Session) {
    let mut ends = state.live.session_ends();
    let check = std::time::Duration::from_secs(state.config.session_check_seconds.max(1));
    let tick = std::time::Duration::from_secs(5).min(check);
    let mut last_check = std::time::Instant::now();
    loop {
        tokio::select! {
            e = ends.recv() => match e {
                Ok(end) if end.ends(&session.token_hash, session.user) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(tick) => {
                let now = state.now_ms();
                if now >= session.expires_at_ms {
                    return;
                }
                if last_check.elapsed() >= check {
                    last_check = std::time::Instant::now();
                    let valid = match state.store.session(&session.token_hash, now).await {
                        Ok(Some(_)) => state.store.user(session.user).await.is_ok_and(|u| u.active),
                        Ok(None) => false,
                        // The store is briefly away: keep the socket, look again.
                        Err(_) => true,
                    };
                    if !valid {
                        return;
                    }
                }
            }
        }
    }
}

/// A fully logged-in web user (password and, for professionals, TOTP).
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The account.
    pub user: User,
    /// Principal and grants.
    pub actor: Actor,
    /// The session (for its CSRF token).
    pub session: Session,
}

/// Builds the actor of a user.
pub async fn actor_for_user(state: &AppState, user: &User) -> Result<Actor, AppError> {
    match (user.kind, user.patient) {
        (UserKind::Patient, Some(patient)) => Ok(Actor {
            principal: Principal::Patient {
                user: user.id,
                patient,
            },
            grants: vec![],
        }),
        (UserKind::Patient, None) => Err(AppError::Forbidden(
            "compte patient sans dossier associé".into(),
        )),
        (UserKind::Professional, _) => Ok(Actor {
            principal: Principal::Professional(user.id),
            grants: state.store.grants(user.id).await?,
        }),
    }
}

/// The session behind the cookie, whether or not the second factor was given.
pub async fn any_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, AppError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store
        .session(&token_hash(&token), state.now_ms())
        .await?)
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let not_logged = || PageError(AppError::Unauthenticated("connexion requise".into()));
        let session = any_session(state, &parts.headers)
            .await?
            .ok_or_else(not_logged)?;
        if !session.mfa_done {
            return Err(not_logged());
        }
        let user = state.store.user(session.user).await?;
        if !user.active {
            return Err(not_logged());
        }
        let actor = actor_for_user(state, &user).await?;
        Ok(WebUser {
            user,
            actor,
            session,
        })
    }
}

/// The resource type and SMART interaction of a FHIR request: `GET
/// /Patient/1` reads, `GET /Patient` searches, `POST /Patient` creates,
/// `PUT` updates, `DELETE` deletes, an operation (`/Patient/$merge`) updates;
/// a transaction at the base (an MHD submission) creates DocumentReferences.
pub fn fhir_interaction(
    method: &axum::http::Method,
    path: &str,
) -> (&'static str, domain::smart::Interaction) {
    use domain::smart::Interaction;
    let path = path.strip_prefix("/fhir").unwrap_or(path);
    let mut parts = path.trim_matches('/').split('/');
    let resource = parts.next().unwrap_or_default();
    let rest = parts.next();
    let resource: &'static str = RESOURCE_TYPES
        .iter()
        .find(|r| **r == resource)
        .copied()
        .unwrap_or("DocumentReference");
    let interaction = match (method.as_str(), rest) {
        ("GET", Some(_)) => Interaction::Read,
        ("GET", None) => Interaction::Search,
        ("POST", Some(op)) if op.starts_with('$') => Interaction::Update,
        ("POST", _) => Interaction::Create,
        ("PUT" | "PATCH", _) => Interaction::Update,
        ("DELETE", _) => Interaction::Delete,
        _ => Interaction::Read,
    };
    (resource, interaction)
}

/// The resource types the API serves (others fall back to the base's).
const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "Location",
    "HealthcareService",
    "ServiceRequest",
    "Task",
    "Flag",
    "Observation",
    "QuestionnaireResponse",
    "Questionnaire",
    "CarePlan",
    "Appointment",
    "MedicationRequest",
    "DocumentReference",
    "Binary",
    "List",
    "Schedule",
    "Slot",
    "Practitioner",
    "Organization",
    "AuditEvent",
    "Communication",
    "Subscription",
];

/// An API client authenticated by a bearer token.
#[derive(Debug, Clone)]
pub struct ApiActor {
    /// The client.
    pub client: ApiClient,
    /// Principal and its single grant.
    pub actor: Actor,
}

/// The token of an `Authorization: Bearer …` header (the scheme in either
/// case, the token trimmed), if that is what it holds.
pub(crate) fn bearer(header: &axum::http::HeaderValue) -> Option<&str> {
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            AppError::Unauthenticated(
                "jeton d'accès requis (Authorization: Bearer …, voir POST /oauth/token)".into(),
            )
        })?;
        let token = bearer(header).ok_or_else(|| {
            AppError::Unauthenticated("en-tête Authorization: schéma Bearer attendu".into())
        })?;
        let (client, scopes) = state
            .store
            .client_and_scopes_for_token(&token_hash(token), state.now_ms())
            .await?
            .ok_or_else(|| AppError::Unauthenticated("jeton d'accès invalide ou expiré".into()))?;
        // A token granted scopes is held to them, on top of the policy.
        if let Some(scopes) = scopes {
            let granted = domain::smart::Scopes::parse(&scopes).unwrap_or_default();
            let (resource, interaction) = fhir_interaction(&parts.method, parts.uri.path());
            if !granted.allows(resource, interaction) {
                return Err(AppError::Forbidden(format!(
                    "portée insuffisante : system/{resource}.{} requise",
                    interaction.letter()
                ))
                .into());
            }
        }
        let actor = Actor {
            principal: Principal::Client(client.id),
            grants: vec![Grant {
                establishment: client.establishment,
                territory: client.territory,
                role: client.role,
            }],
        };
        Ok(ApiActor { client, actor })
    }
}

/// The query string read as `T`. A malformed one (a parameter given twice, a
/// field of the wrong kind) is answered with a 400 page in French, where
/// axum's own extractor answers in English ("Failed to deserialize query
/// string: …").
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Query)
            .map_err(|e| PageError(bad_fields(&e.to_string())))
    }
}

/// A form body (`application/x-www-form-urlencoded`) read as `T`, its errors
/// in French as for [`Query`]; a body over the limit is a 413 that names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T> axum::extract::FromRequest<AppState> for Form<T>
where
    T: serde::de::DeserializeOwned,
{
    type Rejection = PageError;
    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::FormRejection;
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(t)) => Ok(Form(t)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(PageError(AppError::BadRequest(
                "structure",
                "le formulaire doit être envoyé en application/x-www-form-urlencoded".into(),
            ))),
            Err(FormRejection::FailedToDeserializeForm(e)) => {
                Err(PageError(bad_fields(&e.body_text())))
            }
            Err(FormRejection::FailedToDeserializeFormBody(e)) => {
                Err(PageError(bad_fields(&e.body_text())))
            }
            Err(FormRejection::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(PageError(AppError::TooLarge(state.config.max_body_bytes)))
            }
            Err(_) => Err(PageError(AppError::BadRequest(
                "structure",
                "formulaire illisible".into(),
            ))),
        }
    }
}

/// A 400 in French for serde's message about fields: a field given twice, a
/// field missing, or any other flaw (serde's English text is not shown).
fn bad_fields(serde_message: &str) -> AppError {
    let named = |what: &str| {
        let rest = serde_message.split_once(what)?.1;
        let name = rest.strip_prefix('`')?.split_once('`')?.0;
        Some(name.to_owned())
    };
    let why = if let Some(name) = named("duplicate field ") {
        format!("le paramètre « {name} » est donné plus d'une fois")
    } else if let Some(name) = named("missing field ") {
        format!("le champ « {name} » manque")
    } else {
        "paramètres invalides dans la requête".to_owned()
    };
    AppError::BadRequest("invalid", why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; parcours_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    fn why(e: AppError) -> String {
        e.to_string()
    }

    #[test]
    fn serde_messages_become_french() {
        assert_eq!(
            why(bad_fields("duplicate field `page`")),
            "le paramètre « page » est donné plus d'une fois"
        );
        assert_eq!(
            why(bad_fields(
                "Failed to deserialize form body: missing field `csrf`"
            )),
            "le champ « csrf » manque"
        );
        assert_eq!(
            why(bad_fields("invalid digit found in string")),
            "paramètres invalides dans la requête"
        );
        // A name without its closing quote is not trusted.
        assert_eq!(
            why(bad_fields("duplicate field `pa")),
            "paramètres invalides dans la requête"
        );
    }

    #[derive(serde::Deserialize, Debug)]
    struct Q {
        #[serde(default)]
        page: String,
    }

    async fn query(uri: &str) -> Result<Q, String> {
        let (mut parts, ()) = axum::http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts();
        Query::<Q>::from_request_parts(&mut parts, &())
            .await
            .map(|Query(q)| q)
            .map_err(|e| e.0.to_string())
    }

    #[tokio::test]
    async fn a_query_twice_is_refused_in_french() {
        assert_eq!(query("/a?page=2").await.unwrap().page, "2");
        assert_eq!(query("/a").await.unwrap().page, "");
        assert_eq!(
            query("/a?page=1&page=2").await.unwrap_err(),
            "le paramètre « page » est donné plus d'une fois"
        );
    }
}
