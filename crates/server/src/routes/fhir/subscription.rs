//! Subscription (FHIR R4): create, read, search and delete one's own, and
//! the WebSocket channel (`bind {id}` → `bound {id}`, then `ping {id}` at
//! each change that falls under it).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use interop::fhir::subscription as fs;

use super::*;
use crate::services::subscriptions::{self as subs, Owner};

fn owner(api: &ApiActor) -> Owner<'_> {
    Owner {
        client: api.client.id,
        actor: &api.actor,
    }
}

fn resource(s: &store::subscriptions::Subscription, secret: Option<&str>) -> Value {
    fs::subscription(&fs::SubscriptionView {
        id: s.id.to_string(),
        status: s.status.code(),
        reason: &s.reason,
        criteria: &s.criteria_text,
        channel: s.channel.code(),
        endpoint: s.endpoint.as_deref(),
        payload: s.payload.as_deref(),
        headers: &s.headers,
        end_ms: s.end_ms,
        error: s.error.as_deref(),
        version: s.version,
        updated_ms: s.updated_at_ms,
        secret,
    })
}

/// `POST /fhir/Subscription`: 201 with the stored Subscription, its secret
/// in the `subscription-secret` extension (shown this once).
pub(super) async fn create_subscription(
    State(state): State<AppState>,
    api: ApiActor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body_bytes(body, &state, &headers)?;
    let posted = fs::parse_subscription(&bytes).map_err(input_error)?;
    let made = subs::create(state.ctx(), owner(&api), posted).await?;
    let s = &made.subscription;
    Ok(created(
        &state,
        &resource(s, Some(&made.secret)),
        &format!("Subscription/{}", s.id),
    ))
}

/// `GET /fhir/Subscription/{id}`: one of the client's own.
pub(super) async fn read_subscription(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    let s = subs::get(state.ctx(), owner(&api), &id).await?;
    Ok(fhir(StatusCode::OK, &resource(&s, None)))
}

/// `DELETE /fhir/Subscription/{id}`: no more notifications; 204.
pub(super) async fn delete_subscription(
    State(state): State<AppState>,
    api: ApiActor,
    Path(id): Path<String>,
) -> ApiResult {
    subs::delete(state.ctx(), owner(&api), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /fhir/Subscription`: the client's own (`status`, `type` filter).
pub(super) async fn search_subscriptions(
    State(state): State<AppState>,
    api: ApiActor,
    q: SearchQuery,
) -> ApiResult {
    let s = q.accept("Subscription", &["status", "type"])?;
    let status = param(&s.list, "status").map(str::to_owned);
    let channel = param(&s.list, "type").map(str::to_owned);
    let out = subs::list(state.ctx(), owner(&api))
        .await?
        .iter()
        .filter(|x| status.as_deref().is_none_or(|v| v == x.status.code()))
        .filter(|x| channel.as_deref().is_none_or(|v| v == x.channel.code()))
        .map(|x| resource(x, None))
        .collect();
    s.respond(&state, &api, out).await
}

/// Most subscriptions one socket may bind.
const MAX_BOUND: usize = 64;

/// `GET /fhir/Subscription/$websocket`: the R4 WebSocket channel.
pub(super) async fn subscription_ws(
    State(state): State<AppState>,
    api: ApiActor,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_message_size(1024)
        .on_upgrade(move |socket| bound_socket(socket, state, api))
}

async fn bound_socket(mut socket: WebSocket, state: AppState, api: ApiActor) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = state.live.events();
    let mut bound: Vec<domain::SubscriptionId> = Vec::new();
    let _open = state.metrics.websocket("fhir_subscription");
    let stopping = state.stopping();
    tokio::pin!(stopping);
    loop {
        let say = tokio::select! {
            () = &mut stopping => {
                crate::routes::kit::restart_close(&mut socket).await;
                return;
            }
            e = events.recv() => match e {
                Ok(crate::live::LiveEvent::SubscriptionPing(id)) if bound.contains(&id) => {
                    Some(format!("ping {id}"))
                }
                Ok(_) => None,
                // Missed events: say so for each bound subscription (the
                // client then searches what changed).
                Err(RecvError::Lagged(_)) => {
                    Some(bound.iter().map(|id| format!("ping {id}")).collect::<Vec<_>>().join("\n"))
                }
                Err(RecvError::Closed) => return,
            },
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => Some(bind(&state, &api, &mut bound, t.as_str()).await),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => None,
            },
        };
        if let Some(w) = say.filter(|w| !w.is_empty())
            && socket.send(Message::Text(w.into())).await.is_err()
        {
            return;
        }
    }
}

/// `bind {id}`: the client's own websocket subscription; the answer.
async fn bind(
    state: &AppState,
    api: &ApiActor,
    bound: &mut Vec<domain::SubscriptionId>,
    text: &str,
) -> String {
    let Some(id) = text.trim().strip_prefix("bind ").map(str::trim) else {
        return "error « bind {id} » attendu".into();
    };
    let s = match subs::get(state.ctx(), owner(api), id).await {
        Ok(s) => s,
        Err(e) => return format!("error {} {e}", id.chars().take(64).collect::<String>()),
    };
    if s.channel != domain::subscription::Channel::WebSocket {
        return format!("error {id} abonnement d'un autre canal que websocket");
    }
    if !bound.contains(&s.id) {
        if bound.len() >= MAX_BOUND {
            return format!("error {id} {MAX_BOUND} abonnements au plus par connexion");
        }
        bound.push(s.id);
    }
    format!("bound {}", s.id)
}

/// [`notified_resource`] as the application hands it to the outbox worker.
pub(crate) fn notified_resource_boxed<'a>(
    state: &'a AppState,
    actor: &'a Actor,
    topic: domain::subscription::Topic,
    id: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, AppError>> + Send + 'a>> {
    Box::pin(notified_resource(state, actor, topic, id))
}

/// The resource a rest-hook notification carries, read as the subscription's
/// owner reads it through the API (the same policy, the same audit).
pub(crate) async fn notified_resource(
    state: &AppState,
    actor: &Actor,
    topic: domain::subscription::Topic,
    id: &str,
) -> Result<Value, AppError> {
    use domain::subscription::Topic;
    match topic {
        Topic::Encounter => care::encounter_by_id(state, actor, id).await,
        Topic::DocumentReference => documents::document_reference_by_id(state, actor, id).await,
        Topic::Flag | Topic::Task => {
            monitoring::monitoring_by_id(state, actor, id, topic.code()).await
        }
    }
}
