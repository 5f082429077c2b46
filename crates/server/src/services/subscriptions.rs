//! FHIR Subscriptions of API clients: creation under the policy (a client
//! watches its own establishment, with a role that may read clinical data),
//! and the notification of changes. A change of a watched type (a stay, a
//! document, an alert and its triage) is matched against the subscriptions
//! that are on (a cache read again every two seconds, and at once on this
//! node after a change), authorised as the owner's read would be, then sent:
//! a rest-hook call through the outbox (signed, retried, dead-lettered), or a
//! `ping` to the WebSockets bound to it, on every node.

use std::sync::{Arc, Mutex, PoisonError};

use domain::audit::AuditActor;
use domain::policy::{Actor, Decision, Grant, PatientAction, PatientScope, Principal};
use domain::subscription::{Change, Channel, Criteria, Status};
use domain::{ApiClientId, SubscriptionId};
use store::audit::NewAudit;
use store::outbox::NewMessage;
use store::subscriptions::{NewSubscription, Subscription};

use super::ctx::Ctx;
use crate::error::AppError;
use crate::live::LiveEvent;

/// Outbox topic of rest-hook notifications.
pub const TOPIC: &str = "fhir-subscription";

/// How long the list of subscriptions is trusted before it is read again (a
/// subscription made on another node starts matching within this delay).
const CACHE_MS: i64 = 2_000;

/// The subscriptions that are on, as last read, and when.
#[derive(Debug, Default)]
pub struct Cache(Mutex<Option<(i64, Arc<Vec<Subscription>>)>>);

impl Cache {
    fn get(&self, now_ms: i64) -> Option<Arc<Vec<Subscription>>> {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.as_ref()
            .filter(|(at, _)| now_ms - at < CACHE_MS && *at <= now_ms)
            .map(|(_, l)| l.clone())
    }

    fn put(&self, now_ms: i64, list: Arc<Vec<Subscription>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((now_ms, list));
    }

    /// Forgets the list (a subscription was made, stopped or removed here).
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The API client acting, as the subscription services need it.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// The client.
    pub client: ApiClientId,
    /// Its actor (one grant: its establishment and role).
    pub actor: &'a Actor,
}

/// The owner's grant (a client holds exactly one).
fn grant(owner: Owner<'_>) -> Result<Grant, AppError> {
    owner
        .actor
        .grants
        .first()
        .copied()
        .ok_or_else(|| AppError::Forbidden("client sans établissement".into()))
}

/// Whether the owner may read what a change of this patient at this
/// establishment shows (its clinical data there).
fn may_read(actor: &Actor, grant: Grant, patient: Option<domain::PatientId>) -> Decision {
    domain::policy::authorize_patient(
        actor,
        PatientAction::ReadClinical,
        &PatientScope {
            territory: grant.territory,
            establishments: vec![grant.establishment],
            patient,
        },
    )
}

/// A new subscription: 201 with its secret (the only time it is shown).
#[derive(Debug)]
pub struct Created {
    /// As stored.
    pub subscription: Subscription,
    /// The signing secret (rest-hook).
    pub secret: String,
}

/// Creates a subscription for the owner's establishment; audited.
pub async fn create(
    ctx: Ctx<'_>,
    owner: Owner<'_>,
    posted: interop::fhir::subscription::ParsedSubscription,
) -> Result<Created, AppError> {
    let g = grant(owner)?;
    let criteria = Criteria::parse(&posted.criteria)
        .map_err(|e| AppError::Unprocessable("not-supported", e.to_string()))?;
    if let Decision::Deny(why) = may_read(owner.actor, g, criteria.patient) {
        return Err(AppError::Forbidden(format!(
            "abonnement refusé : {why} (lecture des données cliniques de l'établissement)"
        )));
    }
    if let Some(pid) = criteria.patient {
        // A patient of another territory, or none: the same answer.
        let known = match ctx.store.patient(pid).await {
            Ok(p) => p.territory == g.territory,
            Err(store::StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if !known {
            return Err(AppError::Unprocessable(
                "not-found",
                format!("critères : Patient/{pid} introuvable"),
            ));
        }
    }
    let channel = Channel::parse(&posted.channel).ok_or_else(|| {
        AppError::Unprocessable("not-supported", "channel.type non pris en charge".into())
    })?;
    let status = Status::parse(&posted.status).unwrap_or(Status::Active);
    let secret = posted
        .secret
        .clone()
        .unwrap_or_else(crate::auth::random_token);
    let now = ctx.now_ms();
    let new = NewSubscription {
        id: SubscriptionId::new(),
        client: owner.client,
        establishment: g.establishment,
        criteria,
        criteria_text: posted.criteria.trim().to_owned(),
        channel,
        endpoint: posted.endpoint,
        payload: posted.payload,
        headers: posted.headers,
        secret: secret.clone(),
        status,
        reason: posted.reason,
        end_ms: posted.end_ms,
    };
    ctx.store.create_subscription(&new, now).await?;
    ctx.subscriptions.clear();
    audit(
        ctx,
        owner.actor,
        g,
        None,
        "create",
        format!("Subscription/{}", new.id),
    )
    .await?;
    Ok(Created {
        subscription: ctx.store.subscription(new.id).await?,
        secret,
    })
}

/// One of the owner's subscriptions (another's is not found).
pub async fn get(ctx: Ctx<'_>, owner: Owner<'_>, id: &str) -> Result<Subscription, AppError> {
    let not_found = || AppError::NotFound("Subscription introuvable".into());
    let id: SubscriptionId = id.parse().map_err(|_| not_found())?;
    match ctx.store.subscription(id).await {
        Ok(s) if s.client == owner.client => Ok(s),
        Ok(_) | Err(store::StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// The owner's subscriptions.
pub async fn list(ctx: Ctx<'_>, owner: Owner<'_>) -> Result<Vec<Subscription>, AppError> {
    Ok(ctx.store.subscriptions_of(owner.client).await?)
}

/// Removes one of the owner's subscriptions; audited.
pub async fn delete(ctx: Ctx<'_>, owner: Owner<'_>, id: &str) -> Result<(), AppError> {
    let s = get(ctx, owner, id).await?;
    ctx.store.delete_subscription(s.id, owner.client).await?;
    ctx.subscriptions.clear();
    let g = grant(owner)?;
    audit(
        ctx,
        owner.actor,
        g,
        None,
        "delete",
        format!("Subscription/{}", s.id),
    )
    .await
}

async fn audit(
    ctx: Ctx<'_>,
    actor: &Actor,
    g: Grant,
    patient: Option<domain::PatientId>,
    action: &str,
    resource: String,
) -> Result<(), AppError> {
    ctx.store
        .audit(&NewAudit {
            at_ms: ctx.now_ms(),
            actor: AuditActor::new(actor, Some(g)),
            patient: patient.map(|p| p.to_string()),
            action: action.into(),
            resource,
            outcome: "success".into(),
        })
        .await?;
    Ok(())
}

/// The subscriptions that are on (the cache, read again when stale).
async fn on(ctx: Ctx<'_>) -> Result<Arc<Vec<Subscription>>, AppError> {
    let now = ctx.now_ms();
    if let Some(l) = ctx.subscriptions.get(now) {
        return Ok(l);
    }
    let list = Arc::new(ctx.store.subscriptions_on().await?);
    ctx.subscriptions.put(now, list.clone());
    Ok(list)
}

/// The owner of a subscription as an actor (its role at its establishment).
pub fn owner_actor(s: &Subscription) -> Actor {
    Actor {
        principal: Principal::Client(s.client),
        grants: vec![Grant {
            establishment: s.establishment,
            territory: s.territory,
            role: s.role,
        }],
    }
}

/// Tells the subscriptions a change falls under; returns how many were told.
/// Never fails the change itself: an error is logged (without patient data).
pub async fn notify(ctx: Ctx<'_>, change: &Change) -> usize {
    match try_notify(ctx, change).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, topic = change.topic.code(), "subscription notification");
            0
        }
    }
}

async fn try_notify(ctx: Ctx<'_>, change: &Change) -> Result<usize, AppError> {
    let now = ctx.now_ms();
    let list = on(ctx).await?;
    let mut told = 0;
    for s in list.iter().filter(|s| {
        s.live(now)
            && store::subscriptions::sees(s, change.topic, change.patient, change.establishment)
    }) {
        let actor = owner_actor(s);
        let Some(g) = actor.grants.first().copied() else {
            continue;
        };
        if !may_read(&actor, g, Some(change.patient)).allowed() {
            continue;
        }
        match s.channel {
            Channel::WebSocket => ctx.publish(LiveEvent::SubscriptionPing(s.id)),
            Channel::RestHook => {
                let Some(endpoint) = &s.endpoint else {
                    continue;
                };
                let payload = serde_json::json!({
                    "subscription": s.id.to_string(),
                    "type": change.topic.code(),
                    "id": change.id,
                    "patient": change.patient.to_string(),
                });
                ctx.store
                    .enqueue(
                        &NewMessage {
                            idempotency_key: format!(
                                "sub:{}:{}:{}:{}",
                                s.id,
                                change.topic.code(),
                                change.id,
                                uuid::Uuid::now_v7()
                            ),
                            topic: TOPIC.into(),
                            destination: endpoint.clone(),
                            payload: payload.to_string(),
                            establishment: Some(s.establishment),
                        },
                        now,
                    )
                    .await?;
            }
        }
        told += 1;
    }
    Ok(told)
}

/// What a rest-hook notification in the outbox names.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Notice {
    /// The subscription.
    pub subscription: String,
    /// The changed resource's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Whose.
    pub patient: String,
}

/// Audits that a notification carried a patient's resource to its owner.
pub async fn audit_delivery(ctx: Ctx<'_>, s: &Subscription, n: &Notice) -> Result<(), AppError> {
    let actor = owner_actor(s);
    let g = grant(Owner {
        client: s.client,
        actor: &actor,
    })?;
    let patient = n.patient.parse().ok();
    audit(
        ctx,
        &actor,
        g,
        patient,
        "notify",
        format!("{}/{}", n.kind, n.id),
    )
    .await
}

/// Whether any subscription that is on watches `topic` at `establishment`
/// (a change nobody watches costs no read).
pub async fn watched(
    ctx: Ctx<'_>,
    topic: domain::subscription::Topic,
    establishment: domain::EstablishmentId,
) -> bool {
    match on(ctx).await {
        Ok(list) => list
            .iter()
            .any(|s| s.establishment == establishment && s.criteria.topic == topic),
        Err(e) => {
            tracing::error!(error = %e, "subscriptions read");
            false
        }
    }
}

/// A stay fed by ADT moved (`visit_number` at `establishment`).
pub async fn stay_changed(
    ctx: Ctx<'_>,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
    visit_number: &str,
) {
    use domain::subscription::Topic;
    if !watched(ctx, Topic::Encounter, establishment).await {
        return;
    }
    let stays = match ctx.store.encounters_of(patient).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "subscriptions: stay read");
            return;
        }
    };
    for e in stays
        .iter()
        .filter(|e| e.establishment == establishment && e.visit_number == visit_number)
    {
        let change = Change {
            topic: Topic::Encounter,
            id: e.id.to_string(),
            patient,
            establishment,
        };
        notify(ctx, &change).await;
    }
}

/// An alert was raised or moved in its triage: its Flag and its Task changed.
pub async fn alert_changed(ctx: Ctx<'_>, a: &domain::monitoring::Alert) {
    use domain::subscription::Topic;
    for topic in [Topic::Flag, Topic::Task] {
        let change = Change {
            topic,
            id: a.id.to_string(),
            patient: a.patient,
            establishment: a.establishment,
        };
        notify(ctx, &change).await;
    }
}

/// Alerts raised for `patient` at `establishment` since `since_ms`.
pub async fn alerts_raised(
    ctx: Ctx<'_>,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
    since_ms: i64,
) {
    use domain::subscription::Topic;
    if !watched(ctx, Topic::Flag, establishment).await
        && !watched(ctx, Topic::Task, establishment).await
    {
        return;
    }
    match ctx.store.alerts_of(patient).await {
        Ok(list) => {
            for a in list
                .iter()
                .filter(|a| a.establishment == establishment && a.raised_at_ms >= since_ms)
            {
                alert_changed(ctx, a).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "subscriptions: alerts read"),
    }
}

/// A document was filed (received, or validated) in the record.
pub async fn document_filed(
    ctx: Ctx<'_>,
    id: domain::DocumentId,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
) {
    let change = Change {
        topic: domain::subscription::Topic::DocumentReference,
        id: id.to_string(),
        patient,
        establishment,
    };
    notify(ctx, &change).await;
}

/// A teleconsultation closed: an Encounter (under its appointment's id).
pub async fn consultation_closed(ctx: Ctx<'_>, a: &domain::schedule::Appointment) {
    let change = Change {
        topic: domain::subscription::Topic::Encounter,
        id: a.id.to_string(),
        patient: a.patient,
        establishment: a.establishment,
    };
    notify(ctx, &change).await;
}
