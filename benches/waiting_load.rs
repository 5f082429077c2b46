//! Waiting-room load for `scripts/bench-waiting`: opens CONNECTIONS idle
//! waiting-room WebSockets (`/rdv/{id}/salle/ws`, as patients waiting for their
//! doctor), reads the server's resident memory before and after, then measures
//! the presence broadcast: a probe patient says what its device check found,
//! and the time until the doctor's open list (`/salle-attente/ws`) is told.
//! Loopback only, bounded in count and time.
//!
//! `waiting-load BASE_URL SERVER_PID CONNECTIONS PROBES`
//!
//! With `WAITING_DOCTOR_BASE=http://127.0.0.1:PORT` the doctor's list is
//! opened on that node instead (`scripts/bench-cluster`: the presence event
//! crosses from one node to another over NATS).
//!
//! With `WAITING_PEER=1` it speaks to the Python peer (`benches/waiting/peer.py`):
//! no login, the session cookie `peer`, appointment `a1`.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use parcours_benches::{Error, percentile, session};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PATIENT: &str = "patient.lambert";
const DOCTOR: &str = "dr.martin";

/// The patient's video appointment (the one whose waiting room opens).
async fn video_appointment(http: &reqwest::Client, base: &str, s: &str) -> Result<String, Error> {
    let list = http
        .get(format!("{base}/rdv"))
        .header("cookie", format!("parcours_session={s}"))
        .send()
        .await?
        .text()
        .await?;
    for chunk in list.split("href=\"/rdv/").skip(1) {
        let id = chunk.split('"').next().unwrap_or_default();
        if id.is_empty() || id.contains('/') || id.contains('?') {
            continue;
        }
        let r = http
            .get(format!("{base}/rdv/{id}/salle"))
            .header("cookie", format!("parcours_session={s}"))
            .send()
            .await?;
        if r.status() == 200 {
            return Ok(id.to_owned());
        }
    }
    Err("no video appointment with a waiting room".into())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str, path: &str, session: &str) -> Result<Ws, Error> {
    let mut req =
        format!("{}{path}", base.replacen("http://", "ws://", 1)).into_client_request()?;
    req.headers_mut()
        .insert("cookie", format!("parcours_session={session}").parse()?);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(req),
    )
    .await??;
    Ok(ws)
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("no value")?.parse()?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(pid), Some(n), Some(probes)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        return Err("usage: waiting-load BASE_URL SERVER_PID CONNECTIONS PROBES".into());
    };
    let base = base.trim_end_matches('/').to_owned();
    if !base.starts_with("http://127.0.0.1:") && !base.starts_with("http://[::1]:") {
        return Err("loopback only (http://127.0.0.1:PORT)".into());
    }
    let n: usize = n.parse::<usize>()?.min(20_000);
    let probes: usize = probes.parse::<usize>()?.min(10_000);
    let peer = std::env::var("WAITING_PEER").is_ok_and(|v| v == "1");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (patient, doctor, appointment) = if peer {
        ("peer".to_owned(), "peer".to_owned(), "a1".to_owned())
    } else {
        let p = session(&http, &base, PATIENT, false).await?;
        let d = session(&http, &base, DOCTOR, true).await?;
        let a = video_appointment(&http, &base, &p).await?;
        (p, d, a)
    };
    let room = format!("/rdv/{appointment}/salle/ws");
    let doctor_base = std::env::var("WAITING_DOCTOR_BASE")
        .map(|b| b.trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| base.clone());
    if !doctor_base.starts_with("http://127.0.0.1:") && !doctor_base.starts_with("http://[::1]:") {
        return Err("loopback only (WAITING_DOCTOR_BASE)".into());
    }

    // The doctor's open list: each push timestamped.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut list = connect(&doctor_base, "/salle-attente/ws", &doctor).await?;
    let listener = tokio::spawn(async move {
        while let Some(Ok(m)) = list.next().await {
            if matches!(&m, Message::Text(t) if t.as_str() == "salle")
                && tx.send(Instant::now()).is_err()
            {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid)?;

    // The idle waiting patients, 200 handshakes at a time.
    let started = Instant::now();
    let results: Vec<Result<Ws, Error>> = stream::iter(0..n)
        .map(|_| connect(&base, &room, &patient))
        .buffer_unordered(200)
        .collect()
        .await;
    let connect_s = started.elapsed().as_secs_f64();
    let mut idle = Vec::with_capacity(n);
    let mut failed = 0usize;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(ws) => idle.push(ws),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Let the server settle (and the list's pushes of each arrival drain).
    tokio::time::sleep(Duration::from_secs(3)).await;
    while rx.try_recv().is_ok() {}
    let rss_after = rss_kib(pid)?;

    // Presence: the probe patient reports its devices; the doctor must hear of it.
    let mut probe = connect(&base, &room, &patient).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    let mut latencies = Vec::with_capacity(probes);
    let mut missing = 0usize;
    for i in 0..probes {
        let flag = i % 2 == 0;
        let sent = Instant::now();
        probe
            .send(Message::Text(
                format!("{{\"camera\":{flag},\"microphone\":true}}").into(),
            ))
            .await?;
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Some(at)) => latencies.push(at.saturating_duration_since(sent)),
            _ => missing += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        while rx.try_recv().is_ok() {}
    }
    latencies.sort();
    let still_open = idle.len();
    drop(probe);
    drop(idle);
    listener.abort();
    println!(
        "{}",
        serde_json::json!({
            "connections": still_open,
            "failed": failed,
            "first_error": first_error,
            "connect_seconds": connect_s,
            "rss_before_mib": rss_before as f64 / 1024.0,
            "rss_after_mib": rss_after as f64 / 1024.0,
            "kib_per_connection": (rss_after.saturating_sub(rss_before)) as f64 / still_open.max(1) as f64,
            "probes": latencies.len(),
            "missing": missing,
            "p50_ms": percentile(&latencies, 0.50),
            "p99_ms": percentile(&latencies, 0.99),
            "max_ms": latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        })
    );
    Ok(())
}
