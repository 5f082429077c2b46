//! The MLLP listener (mini-redis's shape): an accept loop capped by a semaphore,
//! one task per connection reading into a buffer until a whole frame is there,
//! then the intake service, then the ACK, in order. Shutdown stops accepting and
//! lets each connection finish the message in hand.

use std::sync::Arc;
use std::time::Duration;

use hl7v2::mllp::{self, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::services::hl7::{Outcome, ingest};
use crate::state::AppState;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Largest frame accepted (a message with an embedded PDF stays far below).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Serves MLLP on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: AppState, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let state = state.clone();
                let stop = shutdown.clone();
                connections.spawn(async move {
                    if let Err(e) = connection(stream, &state, stop).await {
                        tracing::debug!(%peer, error = %e, "mllp connection closed");
                    }
                    drop(permit);
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

async fn connection(
    mut stream: TcpStream,
    state: &AppState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match mllp::next_frame(&buf) {
            Frame::Message {
                start,
                end,
                consumed,
            } => {
                let message = buf.get(start..end).unwrap_or(&[]).to_vec();
                buf.drain(..consumed);
                match ingest(state, &message, None).await {
                    Outcome::Ack(ack) => stream.write_all(&mllp::frame(ack.as_bytes())).await?,
                    // The store is unavailable: no ACK, close; the sender resends.
                    Outcome::NoAck => return Ok(()),
                }
                continue;
            }
            Frame::Incomplete { discard } => {
                buf.drain(..discard);
            }
        }
        if buf.len() > MAX_FRAME {
            tracing::warn!("mllp frame over {MAX_FRAME} bytes: connection closed");
            return Ok(());
        }
        let n = tokio::select! {
            n = stream.read(&mut chunk) => n?,
            _ = shutdown.changed() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}
