//! What is live between open pages and connections, on this node: events that
//! pages refresh on, who waits in the virtual waiting rooms, and the
//! consultation rooms (open or not, and the messages relayed between their two
//! participants). Several nodes would carry these over NATS (issue 17).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{broadcast, watch};

/// Something changed that open pages should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// The alert queue of this establishment changed.
    Alerts(domain::EstablishmentId),
    /// A questionnaire response (its id) raised alerts for this establishment.
    NewAlerts(domain::EstablishmentId, String),
    /// The virtual waiting room of this practitioner changed.
    WaitingRoom(domain::UserId),
}

/// A message of a consultation room, relayed to the other participant.
#[derive(Debug, Clone)]
pub struct RoomMessage {
    /// Appointment id.
    pub room: String,
    /// `doctor` or `patient`.
    pub from: &'static str,
    /// The message (JSON text).
    pub text: String,
}

/// A session that ended before its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// Logged out: the session with this token hash.
    Session(String),
    /// Every session of this account (disabled).
    User(domain::UserId),
}

/// A patient in a virtual waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Since when they wait (Unix ms).
    pub since_ms: i64,
    /// Whether their page is connected now.
    pub connected: bool,
    /// Camera and microphone found working by the device check.
    pub camera: bool,
    /// Microphone.
    pub microphone: bool,
}

/// The consultation rooms of this node, by appointment id.
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
    /// Listens to whether the room of appointment `id` is open.
    pub fn signal(&self, id: &str) -> watch::Receiver<bool> {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// The message channel of the room of appointment `id` (made on first use).
    pub fn channel(&self, id: &str) -> broadcast::Sender<RoomMessage> {
        let mut rooms = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(64).0)
            .clone()
    }

    /// Sends `text` from `from` to the other participant of room `id`, if
    /// anyone listens.
    pub fn send(&self, id: &str, from: &'static str, text: String) {
        let sender = self
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(s) = sender {
            let _ = s.send(RoomMessage {
                room: id.to_owned(),
                from,
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

    /// Whether the doctor has let the patient into room `id`.
    pub fn is_open(&self, id: &str) -> bool {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|s| *s.borrow())
    }

    /// Opens the room of appointment `id`: its waiting patient goes in.
    pub fn open(&self, id: &str) {
        let mut rooms = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .send_replace(true);
    }

    /// Forgets the room of appointment `id` (consultation closed).
    pub fn close(&self, id: &str) {
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
