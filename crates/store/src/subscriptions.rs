//! FHIR Subscriptions of API clients (`fhir_subscriptions`): kept with the
//! client's role and establishment so that a notification is authorised as the
//! client's own read would be; the signing secret is sealed with the key ring.

use domain::org::Role;
use domain::subscription::{Channel, Criteria, Status, Topic};
use domain::{ApiClientId, EstablishmentId, PatientId, SubscriptionId, TerritoryId};

use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::{Result, Store, StoreError};

/// A subscription to store.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The client that owns it.
    pub client: ApiClientId,
    /// The client's establishment: only its changes are notified.
    pub establishment: EstablishmentId,
    /// What is watched.
    pub criteria: Criteria,
    /// The criteria as the client wrote them.
    pub criteria_text: String,
    /// How notifications go out.
    pub channel: Channel,
    /// The rest-hook endpoint.
    pub endpoint: Option<String>,
    /// `application/fhir+json` (the resource is sent), or none (an empty POST).
    pub payload: Option<String>,
    /// Headers the client wants on each call (`Name: value`).
    pub headers: Vec<String>,
    /// The HMAC secret the calls are signed with.
    pub secret: String,
    /// Starting status.
    pub status: Status,
    /// Why (FHIR `reason`).
    pub reason: String,
    /// When it stops (Unix ms).
    pub end_ms: Option<i64>,
}

/// A stored subscription, with its owner as the policy needs it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Id.
    pub id: SubscriptionId,
    /// Owner.
    pub client: ApiClientId,
    /// Owner's role.
    pub role: Role,
    /// Whether the owner is still active.
    pub client_active: bool,
    /// Owner's establishment (the scope of the changes notified).
    pub establishment: EstablishmentId,
    /// Its territory.
    pub territory: TerritoryId,
    /// What is watched.
    pub criteria: Criteria,
    /// The criteria as written.
    pub criteria_text: String,
    /// Channel.
    pub channel: Channel,
    /// Endpoint (rest-hook).
    pub endpoint: Option<String>,
    /// Payload MIME type.
    pub payload: Option<String>,
    /// Extra headers.
    pub headers: Vec<String>,
    /// The signing secret (opened).
    pub secret: String,
    /// Status.
    pub status: Status,
    /// Reason.
    pub reason: String,
    /// End (Unix ms).
    pub end_ms: Option<i64>,
    /// Last delivery error.
    pub error: Option<String>,
    /// Version.
    pub version: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl Subscription {
    /// Whether changes are notified now.
    pub fn live(&self, now_ms: i64) -> bool {
        self.client_active
            && self.status != Status::Off
            && self.end_ms.is_none_or(|end| end > now_ms)
    }
}

db_row! {
    struct SubscriptionRow {
        id: String,
        client_pk: String,
        role: String,
        active: bool,
        establishment_id: String,
        territory_id: String,
        criteria: String,
        channel: String,
        endpoint: Option<String>,
        payload: Option<String>,
        headers: String,
        secret: String,
        status: String,
        reason: String,
        end_ms: Option<i64>,
        error: Option<String>,
        version: i64,
        updated_at_ms: i64,
    }
}

const SELECT: &str = "SELECT s.id, s.client_pk, c.role, c.active, s.establishment_id, e.territory_id, s.criteria, s.channel, \
     s.endpoint, s.payload, s.headers, s.secret, s.status, s.reason, s.end_ms, s.error, s.version, s.updated_at_ms \
     FROM fhir_subscriptions s JOIN api_clients c ON c.id = s.client_pk JOIN establishments e ON e.id = s.establishment_id";

impl Store {
    fn subscription_from(&self, r: SubscriptionRow) -> Result<Subscription> {
        let corrupt = |what: &str, v: &str| StoreError::Corrupt(format!("{what} {v:?}"));
        let criteria =
            Criteria::parse(&r.criteria).map_err(|e| corrupt("critères", &e.to_string()))?;
        Ok(Subscription {
            id: parse_id(&r.id)?,
            client: parse_id(&r.client_pk)?,
            role: Role::from_code(&r.role).ok_or_else(|| corrupt("rôle", &r.role))?,
            client_active: r.active,
            establishment: parse_id(&r.establishment_id)?,
            territory: parse_id(&r.territory_id)?,
            criteria,
            criteria_text: r.criteria,
            channel: Channel::parse(&r.channel).ok_or_else(|| corrupt("canal", &r.channel))?,
            endpoint: r.endpoint,
            payload: r.payload,
            headers: r
                .headers
                .split('\n')
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            secret: self.open(&r.secret)?,
            status: Status::parse(&r.status).ok_or_else(|| corrupt("statut", &r.status))?,
            reason: r.reason,
            end_ms: r.end_ms,
            error: r.error,
            version: r.version,
            updated_at_ms: r.updated_at_ms,
        })
    }

    async fn subscriptions_where(
        &self,
        clause: &str,
        bind: Option<String>,
    ) -> Result<Vec<Subscription>> {
        let sql = format!("{SELECT} {clause} ORDER BY s.id");
        let rows = on_pool!(self, read, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(b) = bind {
                q = q.bind(b);
            }
            rows_to::<_, SubscriptionRow>(&q.fetch_all(pool).await?)?
        });
        rows.into_iter()
            .map(|r| self.subscription_from(r))
            .collect()
    }

    /// Stores a new subscription (its secret sealed).
    pub async fn create_subscription(&self, s: &NewSubscription, now_ms: i64) -> Result<()> {
        // One per line (a header holds no line break: the service refuses those).
        let headers = s.headers.join("\n");
        let secret = self.seal(&s.secret)?;
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO fhir_subscriptions (id, client_pk, establishment_id, resource_type, criteria, patient_id, channel, endpoint, payload, headers, secret, status, reason, end_ms, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
            )
            .bind(s.id.to_string())
            .bind(s.client.to_string())
            .bind(s.establishment.to_string())
            .bind(s.criteria.topic.code())
            .bind(&s.criteria_text)
            .bind(s.criteria.patient.map(|p| p.to_string()))
            .bind(s.channel.code())
            .bind(&s.endpoint)
            .bind(&s.payload)
            .bind(headers)
            .bind(secret)
            .bind(s.status.code())
            .bind(&s.reason)
            .bind(s.end_ms)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// One subscription.
    pub async fn subscription(&self, id: SubscriptionId) -> Result<Subscription> {
        self.subscriptions_where("WHERE s.id = $1", Some(id.to_string()))
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// A client's subscriptions.
    pub async fn subscriptions_of(&self, client: ApiClientId) -> Result<Vec<Subscription>> {
        self.subscriptions_where("WHERE s.client_pk = $1", Some(client.to_string()))
            .await
    }

    /// Every subscription that is not off (what notifications are matched against).
    pub async fn subscriptions_on(&self) -> Result<Vec<Subscription>> {
        self.subscriptions_where("WHERE s.status <> 'off'", None)
            .await
    }

    /// Records a subscription's state after a delivery or a client's change
    /// (`error` kept when the status is `error`); bumps its version.
    pub async fn set_subscription_status(
        &self,
        id: SubscriptionId,
        status: Status,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE fhir_subscriptions SET status = $1, error = $2, version = version + 1, updated_at_ms = $3 WHERE id = $4 \
                 AND (status <> $1 OR COALESCE(error, '') <> COALESCE($2, ''))",
            )
            .bind(status.code())
            .bind(error)
            .bind(now_ms)
            .bind(id.to_string())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deletes a client's subscription; whether there was one.
    pub async fn delete_subscription(
        &self,
        id: SubscriptionId,
        client: ApiClientId,
    ) -> Result<bool> {
        on_pool!(self, write, |pool| {
            let r = sqlx::query("DELETE FROM fhir_subscriptions WHERE id = $1 AND client_pk = $2")
                .bind(id.to_string())
                .bind(client.to_string())
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// The subscription secrets as stored (sealed), for checks and tests.
    pub async fn stored_subscription_secrets(&self) -> Result<Vec<String>> {
        on_pool!(self, read, |pool| {
            Ok(sqlx::query_scalar("SELECT secret FROM fhir_subscriptions")
                .fetch_all(pool)
                .await?)
        })
    }

    /// Seals every subscription secret under the current key (after a
    /// rotation, or those stored before encryption); how many were rewritten.
    pub async fn reseal_subscription_secrets(&self) -> Result<usize> {
        self.reseal(
            "SELECT id, secret FROM fhir_subscriptions",
            "UPDATE fhir_subscriptions SET secret = $1 WHERE id = $2",
        )
        .await
    }
}

/// Whose change a subscription would see: its establishment's, its patient's.
pub fn sees(
    s: &Subscription,
    topic: Topic,
    patient: PatientId,
    establishment: EstablishmentId,
) -> bool {
    s.establishment == establishment && s.criteria.matches(topic, patient)
}
