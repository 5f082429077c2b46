//! The MLLP listeners (mini-redis's shape): plain MLLP and, when configured,
//! MLLP over TLS with client certificates. One task per connection reads into
//! a buffer until a whole frame is there (scanned incrementally), then the
//! intake service, then the ACK, in order. Shutdown stops accepting and lets
//! each connection finish the message in hand.
//!
//! Against a sender that holds sockets open or drips bytes: a connection
//! silent for `mllp_idle_seconds`, or whose frame is not whole within that
//! time, is closed; frames over `mllp_max_frame_bytes` close the connection;
//! at `mllp_max_connections`, the oldest connection that has not yet had a
//! message accepted (a flood of idle sockets) is closed to make room, and when
//! every connection has proved itself the new one is refused at once. So idle
//! sockets cannot keep a known sender out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hl7v2::mllp::{self, Frame, Scanner};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::services::hl7::{Outcome, Peer, ingest};
use crate::state::AppState;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The connections of one listener: how many, and how to close those that
/// have not proved themselves yet (oldest first).
#[derive(Default)]
struct Slots {
    active: AtomicUsize,
    next_id: AtomicU64,
    unproven: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
}

impl Slots {
    /// Makes room for a new connection: `Some(id, evicted)` when it may be
    /// served; `None` when it must be refused.
    fn admit(&self, max: usize) -> Option<(u64, oneshot::Receiver<()>)> {
        if self.active.load(Ordering::Acquire) >= max {
            let oldest = self.unproven.lock().ok().and_then(|mut u| u.pop_first());
            match oldest {
                // Its task ends and frees its slot; the newcomer takes it.
                Some((_, close)) => {
                    let _ = close.send(());
                }
                None => return None,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut u) = self.unproven.lock() {
            u.insert(id, tx);
        }
        self.active.fetch_add(1, Ordering::AcqRel);
        Some((id, rx))
    }

    /// A message of this connection was accepted: it is no longer evictable.
    fn prove(&self, id: u64) {
        if let Ok(mut u) = self.unproven.lock() {
            u.remove(&id);
        }
    }

    fn release(&self, id: u64) {
        self.prove(id);
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves plain MLLP on `listener`, and MLLP/TLS on `tls` when given, until
/// `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) {
    let plain = accept_loop(listener, None, state.clone(), shutdown.clone());
    match tls {
        Some((l, config)) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            tokio::join!(plain, accept_loop(l, Some(acceptor), state, shutdown));
        }
        None => plain.await,
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::default());
    let max = state.config.mllp_max_connections.max(1);
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let Some((id, evicted)) = slots.admit(max) else {
                    tracing::warn!(
                        "mllp: every connection in use by known senders; new one refused"
                    );
                    drop(stream);
                    continue;
                };
                let state = state.clone();
                let stop = shutdown.clone();
                let slots = slots.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let result = tokio::select! {
                        r = open(stream, peer, tls, &state, stop, &slots, id) => r,
                        // Told to make room (a sender dropped from the map on
                        // proving itself is not a close).
                        Ok(()) = evicted => Ok(()),
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "mllp connection closed");
                    }
                    slots.release(id);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, then try again.
                tracing::warn!(error = %e, "mllp accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Completes the TLS handshake when there is one, then serves the connection.
async fn open(
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: &AppState,
    shutdown: watch::Receiver<bool>,
    slots: &Slots,
    id: u64,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let Some(acceptor) = tls else {
        return connection(stream, Peer::Tcp(addr.ip()), state, shutdown, slots, id).await;
    };
    let stream = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
    let subject = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(crate::tls::common_name)
        .ok_or_else(|| std::io::Error::other("client certificate without a common name"))?;
    let peer = Peer::Tls {
        addr: addr.ip(),
        subject,
    };
    connection(stream, peer, state, shutdown, slots, id).await
}

/// Whether an ACK accepts the message (MSA-1 AA or AE: the sender is known
/// and bound to this peer).
fn accepted(ack: &str) -> bool {
    ack.split('\r')
        .find(|s| s.starts_with("MSA|"))
        .and_then(|s| s.get(4..6))
        .is_some_and(|code| code == "AA" || code == "AE")
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: Peer,
    state: &AppState,
    mut shutdown: watch::Receiver<bool>,
    slots: &Slots,
    id: u64,
) -> std::io::Result<()> {
    let idle = Duration::from_secs(state.config.mllp_idle_seconds.max(1));
    let max_frame = state.config.mllp_max_frame_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanner = Scanner::default();
    // When the frame in the buffer began to arrive.
    let mut frame_since: Option<Instant> = None;
    loop {
        match scanner.next(&buf) {
            Frame::Message {
                start,
                end,
                consumed,
            } => {
                let message = buf.get(start..end).unwrap_or(&[]).to_vec();
                buf.drain(..consumed);
                frame_since = None;
                // Logs of the message carry its connection (as an HTTP
                // request's carry its id), never its content.
                let span = tracing::info_span!("mllp", connection = id);
                match tracing::Instrument::instrument(
                    ingest(state.ctx(), &message, None, &peer),
                    span,
                )
                .await
                {
                    Outcome::Ack(ack) => {
                        if accepted(&ack) {
                            slots.prove(id);
                        }
                        stream.write_all(&mllp::frame(ack.as_bytes())).await?;
                    }
                    // The store is unavailable: no ACK, close; the sender resends.
                    Outcome::NoAck => return Ok(()),
                }
                continue;
            }
            Frame::Incomplete { discard } => {
                buf.drain(..discard);
                if discard > 0 {
                    // A cut frame was dropped: the next may be whole already.
                    continue;
                }
            }
        }
        if buf.len() > max_frame {
            tracing::warn!("mllp frame over {max_frame} bytes: connection closed");
            return Ok(());
        }
        let wait = match frame_since {
            Some(t) if !buf.is_empty() => idle.saturating_sub(t.elapsed()),
            _ => idle,
        };
        let read = tokio::select! {
            r = tokio::time::timeout(wait, stream.read(&mut chunk)) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        let n = match read {
            Ok(n) => n?,
            Err(_) => {
                tracing::debug!("mllp connection idle or frame too slow: closed");
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        if buf.is_empty() {
            frame_since = Some(Instant::now());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slots_evict_the_oldest_unproven_then_refuse() {
        let s = Slots::default();
        let (a, mut a_rx) = s.admit(2).unwrap();
        let (b, mut b_rx) = s.admit(2).unwrap();
        s.prove(b);
        // Full: the oldest unproven (a) is told to close; the newcomer gets in.
        let (c, _c_rx) = s.admit(2).unwrap();
        assert!(a_rx.try_recv().is_ok(), "a evicted");
        assert!(b_rx.try_recv().is_err(), "b kept: it proved itself");
        s.release(a);
        s.prove(c);
        // Full of proven connections: refused at once.
        assert!(s.admit(2).is_none());
        s.release(b);
        assert!(s.admit(2).is_some());
    }

    #[test]
    fn acks_that_prove_a_sender() {
        assert!(accepted("MSH|^~\\&|P\rMSA|AA|1"));
        assert!(accepted("MSH|^~\\&|P\rMSA|AE|1\rERR|"));
        assert!(!accepted("MSH|^~\\&|P\rMSA|AR|1"));
        assert!(!accepted("garbage"));
    }
}
