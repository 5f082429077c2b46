//! What is live between open pages and connections: events that pages refresh
//! on, the consultation rooms (the doctor letting the patient in, the messages
//! relayed between the two participants) and sessions that ended. Each node
//! delivers them to its own connections; with `nats_url` set, every event is
//! also carried over NATS to the other nodes, which deliver it to theirs.
//!
//! Subjects (core NATS, at most once; what is authoritative stays in the
//! database, and every live page also polls):
//! - `parcours.live.est.{establishment}.alerts`: an alert queue changed;
//! - `parcours.live.terr.{territory}.beds`: a territory's beds changed;
//! - `parcours.live.user.{practitioner}.waiting`: a waiting room changed;
//! - `parcours.live.room.{appointment}`: signalling and chat of one room, its
//!   opening and closing;
//! - `parcours.live.hl7.senders`: the declared HL7 senders changed;
//! - `parcours.live.sub.{subscription}`: a change fell under a FHIR
//!   subscription (the WebSockets bound to it ping).
//!
//! Session ends go through JetStream (`parcours.sessions.{user}`, stream
//! `PARCOURS_SESSIONS`), read by each node through its own durable consumer:
//! a revocation missed during a broken NATS connection would leave a
//! revoked session's WebSocket open, so it is the one event kept until read.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::state::AppState;

/// Something changed that open pages should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// The alert queue of this establishment changed.
    Alerts(domain::EstablishmentId),
    /// A questionnaire response (its id) raised alerts for this establishment.
    NewAlerts(domain::EstablishmentId, String),
    /// The virtual waiting room of this practitioner changed.
    WaitingRoom(domain::UserId),
    /// The beds of this territory changed (an admission, a bed manager's change).
    Beds(domain::TerritoryId),
    /// The declared HL7 senders changed (their cache is read again).
    Senders,
    /// A change fell under this FHIR subscription (its bound WebSockets ping).
    SubscriptionPing(domain::SubscriptionId),
}

/// A message of a consultation room, relayed to the other participant.
#[derive(Debug, Clone)]
pub struct RoomMessage {
    /// Appointment id.
    pub room: String,
    /// `doctor`, `patient`, `guest-ID` or `server`.
    pub from: String,
    /// The message (JSON text).
    pub text: String,
}

/// A session that ended before its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// Logged out: the session with this token hash, of this account.
    Session(String, domain::UserId),
    /// Every session of this account (disabled).
    User(domain::UserId),
}

impl SessionEnd {
    /// Whether it ends the session `token_hash` of account `user`.
    pub fn ends(&self, token_hash: &str, user: domain::UserId) -> bool {
        match self {
            SessionEnd::Session(h, _) => h == token_hash,
            SessionEnd::User(u) => *u == user,
        }
    }
}

/// The consultation rooms as this node's connections see them, by
/// appointment id.
#[derive(Debug, Default)]
pub struct Rooms {
    /// Whether the doctor has opened each appointment's room, as a watch each
    /// waiting patient's connection listens to (only its own: ten thousand
    /// idle patients are not woken by each other's events).
    open: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Messages relayed between the two participants of each room: one
    /// channel per room, so one room's flood never makes another drop.
    channels: Mutex<HashMap<String, broadcast::Sender<RoomMessage>>>,
}

impl Rooms {
    /// Listens to whether the room of appointment `id` is open; `open_now`
    /// is what the database says at the start.
    pub fn signal(&self, id: &str, open_now: bool) -> watch::Receiver<bool> {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = rooms
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0);
        if open_now {
            tx.send_replace(true);
        }
        tx.subscribe()
    }

    /// The message channel of the room of appointment `id` (made on first use).
    pub fn channel(&self, id: &str) -> broadcast::Sender<RoomMessage> {
        let mut rooms = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(64).0)
            .clone()
    }

    /// Hands `text` from `from` to this node's listeners of room `id`.
    fn deliver(&self, id: &str, from: &str, text: String) {
        let sender = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(s) = sender {
            let _ = s.send(RoomMessage {
                room: id.to_owned(),
                from: from.to_owned(),
                text,
            });
        }
    }

    /// Forgets room `id`'s channel once nobody listens any more.
    pub fn left(&self, id: &str) {
        let mut rooms = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms.get(id).is_some_and(|s| s.receiver_count() == 0) {
            rooms.remove(id);
        }
    }

    /// Tells this node's waiting patient of room `id` to go in.
    fn open(&self, id: &str) {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .send_replace(true);
    }

    /// Forgets the room of appointment `id` (consultation closed).
    fn close(&self, id: &str) {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        rooms.remove(id);
    }

    /// Forgets a room nobody waits in any more and that was never opened.
    pub fn forget_idle(&self, id: &str) {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if rooms
            .get(id)
            .is_some_and(|tx| tx.receiver_count() == 0 && !*tx.borrow())
        {
            rooms.remove(id);
        }
    }
}

/// An event as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    Alerts {
        establishment: String,
    },
    NewAlerts {
        establishment: String,
        response: String,
    },
    Waiting {
        practitioner: String,
    },
    Beds {
        territory: String,
    },
    Senders,
    SubscriptionPing {
        subscription: String,
    },
    Room {
        room: String,
        from: String,
        text: String,
    },
    RoomOpen {
        room: String,
    },
    RoomClosed {
        room: String,
    },
    Session {
        token_hash: String,
        user: String,
    },
    User {
        user: String,
    },
}

/// Who sent it, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(flatten)]
    wire: Wire,
}

impl Wire {
    fn subject(&self) -> String {
        match self {
            Wire::Alerts { establishment } | Wire::NewAlerts { establishment, .. } => {
                format!("parcours.live.est.{establishment}.alerts")
            }
            Wire::Waiting { practitioner } => format!("parcours.live.user.{practitioner}.waiting"),
            Wire::Beds { territory } => format!("parcours.live.terr.{territory}.beds"),
            Wire::Senders => SENDERS_SUBJECT.into(),
            Wire::SubscriptionPing { subscription } => {
                format!("parcours.live.sub.{subscription}")
            }
            Wire::Room { room, .. } | Wire::RoomOpen { room } | Wire::RoomClosed { room } => {
                format!("parcours.live.room.{room}")
            }
            Wire::Session { user, .. } | Wire::User { user } => format!("parcours.sessions.{user}"),
        }
    }

    fn of_event(e: &LiveEvent) -> Wire {
        match e {
            LiveEvent::Alerts(est) => Wire::Alerts {
                establishment: est.to_string(),
            },
            LiveEvent::NewAlerts(est, r) => Wire::NewAlerts {
                establishment: est.to_string(),
                response: r.clone(),
            },
            LiveEvent::WaitingRoom(u) => Wire::Waiting {
                practitioner: u.to_string(),
            },
            LiveEvent::Beds(t) => Wire::Beds {
                territory: t.to_string(),
            },
            LiveEvent::Senders => Wire::Senders,
            LiveEvent::SubscriptionPing(s) => Wire::SubscriptionPing {
                subscription: s.to_string(),
            },
        }
    }

    fn of_end(e: &SessionEnd) -> Wire {
        match e {
            SessionEnd::Session(h, u) => Wire::Session {
                token_hash: h.clone(),
                user: u.to_string(),
            },
            SessionEnd::User(u) => Wire::User {
                user: u.to_string(),
            },
        }
    }
}

/// The side of a room a message came from, if it is one: the doctor, the
/// patient, a guest (`guest-` and its id) or the server itself.
fn side(from: &str) -> Option<&str> {
    let known = [
        crate::services::room::DOCTOR,
        crate::services::room::PATIENT,
        "server",
    ]
    .contains(&from);
    let guest = from
        .strip_prefix("guest-")
        .is_some_and(|g| g.parse::<uuid::Uuid>().is_ok());
    (known || guest).then_some(from)
}

/// How many events may wait for the NATS connection before new ones are
/// dropped (pages poll as well; the database has the truth).
const OUTGOING: usize = 8192;

/// The live events of this node, and the way out to the other nodes.
#[derive(Debug)]
pub struct Live {
    node: String,
    events: broadcast::Sender<LiveEvent>,
    session_ends: broadcast::Sender<SessionEnd>,
    rooms: Rooms,
    out: Option<mpsc::Sender<Wire>>,
}

/// The receiving end of a clustered [`Live`]: what [`run`] sends over NATS.
#[derive(Debug)]
pub struct Outgoing(mpsc::Receiver<Wire>);

impl Live {
    /// Live events kept in this process (one node).
    pub fn local(node: String) -> Live {
        Live {
            node,
            events: broadcast::channel(256).0,
            session_ends: broadcast::channel(256).0,
            rooms: Rooms::default(),
            out: None,
        }
    }

    /// Live events also sent to the other nodes: [`run`] takes the
    /// [`Outgoing`] end.
    pub fn clustered(node: String) -> (Live, Outgoing) {
        let (tx, rx) = mpsc::channel(OUTGOING);
        let mut live = Live::local(node);
        live.out = Some(tx);
        (live, Outgoing(rx))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether events travel to other nodes.
    pub fn is_clustered(&self) -> bool {
        self.out.is_some()
    }

    /// Hands the event `wire` makes to the NATS forwarder; on one node,
    /// nothing is made.
    fn forward(&self, wire: impl FnOnce() -> Wire) {
        if let Some(out) = &self.out {
            match out.try_send(wire()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        "live events: NATS link saturated, one event not sent to other nodes"
                    );
                }
                // The link stopped (said once, when it did).
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Tells open pages, here and on every node, that something changed.
    pub fn publish(&self, event: LiveEvent) {
        self.forward(|| Wire::of_event(&event));
        let _ = self.events.send(event);
    }

    /// Ends a session (or every session of an account) for the open
    /// WebSockets here and on every node.
    pub fn end_session(&self, end: SessionEnd) {
        self.forward(|| Wire::of_end(&end));
        let _ = self.session_ends.send(end);
    }

    /// Listens to this node's page events.
    pub fn events(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// Listens to ended sessions.
    pub fn session_ends(&self) -> broadcast::Receiver<SessionEnd> {
        self.session_ends.subscribe()
    }

    /// This node's view of the consultation rooms.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Sends `text` from `from` to the other participant of room `id`,
    /// wherever their connection is.
    pub fn room_send(&self, id: &str, from: &str, text: String) {
        self.forward(|| Wire::Room {
            room: id.to_owned(),
            from: from.to_owned(),
            text: text.clone(),
        });
        self.rooms.deliver(id, from, text);
    }

    /// The room of appointment `id` is open (written in the database first):
    /// its waiting patient goes in, on whichever node they wait.
    pub fn room_opened(&self, id: &str) {
        self.forward(|| Wire::RoomOpen {
            room: id.to_owned(),
        });
        self.rooms.open(id);
    }

    /// The consultation of appointment `id` is closed.
    pub fn room_closed(&self, id: &str) {
        self.forward(|| Wire::RoomClosed {
            room: id.to_owned(),
        });
        self.rooms.close(id);
    }

    /// Delivers an event from another node to this node's connections.
    fn deliver(&self, wire: Wire) -> Result<(), String> {
        fn id<T: std::str::FromStr>(s: &str) -> Result<T, String> {
            s.parse().map_err(|_| format!("identifiant {s:?}"))
        }
        match wire {
            Wire::Alerts { establishment } => {
                let _ = self.events.send(LiveEvent::Alerts(id(&establishment)?));
            }
            Wire::NewAlerts {
                establishment,
                response,
            } => {
                let _ = self
                    .events
                    .send(LiveEvent::NewAlerts(id(&establishment)?, response));
            }
            Wire::Waiting { practitioner } => {
                let _ = self.events.send(LiveEvent::WaitingRoom(id(&practitioner)?));
            }
            Wire::Beds { territory } => {
                let _ = self.events.send(LiveEvent::Beds(id(&territory)?));
            }
            Wire::Senders => {
                let _ = self.events.send(LiveEvent::Senders);
            }
            Wire::SubscriptionPing { subscription } => {
                let _ = self
                    .events
                    .send(LiveEvent::SubscriptionPing(id(&subscription)?));
            }
            Wire::Room { room, from, text } => {
                let from = side(&from).ok_or_else(|| format!("côté {from:?}"))?;
                self.rooms.deliver(&room, from, text);
            }
            Wire::RoomOpen { room } => self.rooms.open(&room),
            Wire::RoomClosed { room } => self.rooms.close(&room),
            Wire::Session { token_hash, user } => {
                let _ = self
                    .session_ends
                    .send(SessionEnd::Session(token_hash, id(&user)?));
            }
            Wire::User { user } => {
                let _ = self.session_ends.send(SessionEnd::User(id(&user)?));
            }
        }
        Ok(())
    }

    /// Reads an envelope from NATS; events this node sent itself are skipped
    /// (it delivered them already).
    fn receive(&self, payload: &[u8]) {
        match serde_json::from_slice::<Envelope>(payload) {
            Ok(e) if e.node == self.node => {}
            Ok(e) => {
                if let Err(why) = self.deliver(e.wire) {
                    tracing::warn!(%why, "live events: an unreadable event from another node");
                }
            }
            Err(e) => tracing::warn!(error = %e, "live events: an unreadable NATS message"),
        }
    }
}

/// The subject of "the declared HL7 senders changed" (each node empties its
/// sender cache on it).
const SENDERS_SUBJECT: &str = "parcours.live.hl7.senders";

/// The JetStream stream of session ends.
const SESSIONS_STREAM: &str = "PARCOURS_SESSIONS";

/// Connects to the NATS server at `url`: a node that cannot reach it at
/// start does not start (it would serve without the others' events); once
/// connected, the client reconnects by itself as long as it takes.
pub async fn connect(url: &str, node: &str) -> anyhow::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("parcours {node}"))
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    Ok(client)
}

/// This node's subscriptions on the NATS server: made at start, so that a
/// server without JetStream (or refusing us) stops the node with a clear
/// error instead of leaving it deaf to the others.
pub struct Link {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    ends: async_nats::jetstream::consumer::pull::Stream,
    live: async_nats::Subscriber,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// Subscribes node `node` to the live subjects and to the session ends
/// (the stream made if missing, this node's durable consumer made or found).
pub async fn join(client: async_nats::Client, node: &str) -> anyhow::Result<Link> {
    let js = async_nats::jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: SESSIONS_STREAM.into(),
            subjects: vec!["parcours.sessions.>".into()],
            max_age: Duration::from_secs(86_400),
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            anyhow::anyhow!("flux JetStream {SESSIONS_STREAM} (JetStream activé ?) : {e}")
        })?;
    let consumer = stream
        .get_or_create_consumer(
            &format!("node-{node}"),
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(format!("node-{node}")),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                // A node gone for good leaves no consumer behind.
                inactive_threshold: Duration::from_secs(3_600),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("consommateur JetStream node-{node} : {e}"))?;
    let ends = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("lecture des fins de session : {e}"))?;
    let live = client
        .subscribe("parcours.live.>")
        .await
        .map_err(|e| anyhow::anyhow!("abonnement parcours.live.> : {e}"))?;
    Ok(Link {
        client,
        js,
        ends,
        live,
    })
}

/// Carries this node's live events to the other nodes and theirs to this
/// node's connections, until `shutdown`: the forwarder publishes in order
/// (a room's signalling must arrive as sent), the subscriber delivers, and
/// the session ends come from this node's durable JetStream consumer. An
/// event about HL7 senders also empties this node's sender cache.
pub async fn run(
    state: AppState,
    link: Link,
    outgoing: Outgoing,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let node = state.live.node().to_owned();
    let Link {
        client,
        js,
        mut ends,
        live: mut live_sub,
    } = link;
    let forward = forwarder(client.clone(), js, node.clone(), outgoing);
    tokio::pin!(forward);
    tracing::info!(%node, "live events joined the cluster over NATS");
    loop {
        tokio::select! {
            () = &mut forward => return Ok(()),
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
            m = live_sub.next() => match m {
                Some(m) => {
                    state.live.receive(&m.payload);
                    if m.subject.as_str() == SENDERS_SUBJECT
                        && let Ok(mut cache) = state.senders.write()
                    {
                        cache.clear();
                    }
                }
                None => anyhow::bail!("abonnement NATS fermé"),
            },
            m = ends.next() => match m {
                Some(Ok(m)) => {
                    state.live.receive(&m.payload);
                    if let Err(e) = m.ack().await {
                        tracing::warn!(error = %e, "live events: session end not acknowledged");
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "live events: session ends unreadable"),
                None => anyhow::bail!("consommateur JetStream fermé"),
            },
        }
    }
    // What was published before the shutdown still goes out.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    Ok(())
}

/// Publishes what this node's services hand to [`Live`], in order.
async fn forwarder(
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    node: String,
    Outgoing(mut rx): Outgoing,
) {
    while let Some(wire) = rx.recv().await {
        let subject = wire.subject();
        let session = matches!(wire, Wire::Session { .. } | Wire::User { .. });
        let payload = match serde_json::to_vec(&Envelope {
            node: node.clone(),
            wire,
        }) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "live events: not serialisable");
                continue;
            }
        };
        if session {
            // Kept by the stream until every node read it; the stream's
            // acknowledgement is awaited so a refusal is seen.
            match js.publish(subject, payload.into()).await {
                Ok(ack) => {
                    if let Err(e) = ack.await {
                        tracing::error!(error = %e, "live events: session end not stored by JetStream");
                    }
                }
                Err(e) => tracing::error!(error = %e, "live events: session end not published"),
            }
        } else if let Err(e) = client.publish(subject, payload.into()).await {
            tracing::warn!(error = %e, "live events: not published");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn envelope(node: &str, wire: Wire) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            node: node.into(),
            wire,
        })
        .unwrap()
    }

    #[test]
    fn subjects_name_the_establishment_territory_user_and_room() {
        let est = domain::EstablishmentId::new();
        let t = domain::TerritoryId::new();
        let u = domain::UserId::new();
        assert_eq!(
            Wire::of_event(&LiveEvent::Alerts(est)).subject(),
            format!("parcours.live.est.{est}.alerts")
        );
        assert_eq!(
            Wire::of_event(&LiveEvent::NewAlerts(est, "r".into())).subject(),
            format!("parcours.live.est.{est}.alerts")
        );
        assert_eq!(
            Wire::of_event(&LiveEvent::Beds(t)).subject(),
            format!("parcours.live.terr.{t}.beds")
        );
        assert_eq!(
            Wire::of_event(&LiveEvent::WaitingRoom(u)).subject(),
            format!("parcours.live.user.{u}.waiting")
        );
        assert_eq!(
            Wire::RoomOpen { room: "a1".into() }.subject(),
            "parcours.live.room.a1"
        );
        assert_eq!(
            Wire::of_end(&SessionEnd::User(u)).subject(),
            format!("parcours.sessions.{u}")
        );
    }

    #[tokio::test]
    async fn another_nodes_events_reach_this_nodes_listeners_and_its_own_do_not_twice() {
        let (live, mut out) = Live::clustered("a".into());
        let mut events = live.events();
        let mut ends = live.session_ends();
        let est = domain::EstablishmentId::new();
        let u = domain::UserId::new();

        // Published here: delivered here once, and handed to the forwarder.
        live.publish(LiveEvent::Alerts(est));
        assert_eq!(events.recv().await.unwrap(), LiveEvent::Alerts(est));
        let sent = out.0.recv().await.unwrap();
        // Coming back from NATS (our own subject subscription): skipped.
        live.receive(&envelope("a", sent));
        assert!(events.try_recv().is_err());

        // From node b: delivered.
        live.receive(&envelope("b", Wire::of_event(&LiveEvent::WaitingRoom(u))));
        assert_eq!(events.recv().await.unwrap(), LiveEvent::WaitingRoom(u));
        live.receive(&envelope(
            "b",
            Wire::of_end(&SessionEnd::Session("h".into(), u)),
        ));
        let end = ends.recv().await.unwrap();
        assert!(end.ends("h", u) && !end.ends("other", u));
        live.receive(&envelope("b", Wire::of_end(&SessionEnd::User(u))));
        assert!(ends.recv().await.unwrap().ends("any", u));

        // A room: the other side's message and the opening.
        let mut room = live.rooms().channel("r1").subscribe();
        let mut open = live.rooms().signal("r1", false);
        live.receive(&envelope(
            "b",
            Wire::Room {
                room: "r1".into(),
                from: "patient".into(),
                text: "{}".into(),
            },
        ));
        let m = room.recv().await.unwrap();
        assert_eq!((m.from.as_str(), m.text.as_str()), ("patient", "{}"));
        live.receive(&envelope("b", Wire::RoomOpen { room: "r1".into() }));
        open.changed().await.unwrap();
        assert!(*open.borrow());

        // Nonsense is refused without effect.
        live.receive(b"not json");
        live.receive(&envelope(
            "b",
            Wire::Room {
                room: "r1".into(),
                from: "attacker".into(),
                text: "{}".into(),
            },
        ));
        live.receive(&envelope(
            "b",
            Wire::Alerts {
                establishment: "x".into(),
            },
        ));
        assert!(room.try_recv().is_err());
        assert!(events.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_local_node_sends_nothing_out() {
        let live = Live::local("solo".into());
        assert!(!live.is_clustered());
        let mut events = live.events();
        live.publish(LiveEvent::Senders);
        assert_eq!(events.recv().await.unwrap(), LiveEvent::Senders);
    }
}
