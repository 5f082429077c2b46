//! MLLP load generator for `scripts/bench-mllp`: N concurrent senders, each on its
//! own connection, each waiting for the ACK before sending the next message (as an
//! HL7 sender does). Prints messages/s and ACK latency percentiles. Loopback only,
//! bounded in messages and in time. An ACK counts as `not_aa` unless it
//! accepts (AA) the very message sent (MSA-2, its control id).
//!
//! `mllp-load ADDR SENDERS MESSAGES_PER_SENDER [RUN_ID]`; with
//! `MLLP_LOAD_RECONNECT` set, each message goes on a new connection (the
//! connect counted in its time), for receivers that serve one message per
//! connection; with `MLLP_LOAD_UPDATES_OF=RUN`, each message updates (A08)
//! the record the same sender's same message of run `RUN` created, and with
//! `MLLP_LOAD_STAYS` also set, admits it (A01: a stay, its movement, a bed);
//! with `MLLP_LOAD_MOVES_OF=RUN2` instead, transfers it (A02) from the stay
//! run `RUN2` admitted it to (another bed). A flag set to the empty string
//! counts as not set.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// What each message does.
#[derive(Debug, Clone)]
enum Kind {
    /// Creates a record (A28).
    New,
    /// Updates the record that run created (A08).
    Update(String),
    /// Admits the record that run created (A01, a stay).
    Admit(String),
    /// Transfers the record that run created (A02) within the stay the
    /// second run opened.
    Transfer(String, String),
}

async fn sender(
    addr: String,
    run: String,
    id: usize,
    count: usize,
    deadline: Instant,
    reconnect: bool,
    kind: Kind,
) -> Result<(Vec<Duration>, usize), String> {
    let connect = || async {
        let stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok::<_, String>(stream)
    };
    let mut stream = connect().await?;
    let mut buf = Vec::with_capacity(4096);
    let mut latencies = Vec::with_capacity(count);
    let mut not_aa = 0;
    for i in 0..count {
        if Instant::now() > deadline {
            break;
        }
        let message = match &kind {
            Kind::Admit(of) => parcours_benches::admission(&run, of, id, i),
            Kind::Transfer(of, stay) => parcours_benches::transfer(&run, (of, stay), id, i),
            Kind::Update(of) => parcours_benches::identity_update(&run, of, id, i),
            Kind::New => parcours_benches::identity_feed(&run, id, i),
        };
        let frame = hl7v2::mllp::frame(message.as_bytes());
        let control = format!("{run}-{id}-{i}");
        let t0 = Instant::now();
        if reconnect && i > 0 {
            stream = connect().await?;
            buf.clear();
        }
        let ack =
            parcours_benches::exchange(&mut stream, &mut buf, &frame, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string())?;
        latencies.push(t0.elapsed());
        // Accepted, and the ACK of this message (MSA-2 is its control id),
        // not of another.
        let ack = String::from_utf8_lossy(&ack);
        let msa = ack
            .split(['\r', '\n'])
            .find_map(|s| s.strip_prefix("MSA|"))
            .unwrap_or("");
        let mut fields = msa.split('|');
        if fields.next() != Some("AA") || fields.next() != Some(control.as_str()) {
            not_aa += 1;
        }
    }
    Ok((latencies, not_aa))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(senders), Some(per)) = (
        args.get(1),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
        args.get(3).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: mllp-load ADDR SENDERS MESSAGES_PER_SENDER [RUN_ID]");
        std::process::exit(2);
    };
    let run = args
        .get(4)
        .cloned()
        .unwrap_or_else(|| format!("{}", std::process::id()));
    // A flag set to nothing is a flag not set (`X=$empty cmd` in a script).
    let flag = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let reconnect = flag("MLLP_LOAD_RECONNECT");
    let kind = match std::env::var("MLLP_LOAD_UPDATES_OF") {
        Ok(of) if flag("MLLP_LOAD_STAYS") => Kind::Admit(of),
        Ok(of) => match std::env::var("MLLP_LOAD_MOVES_OF") {
            Ok(stay) => Kind::Transfer(of, stay),
            Err(_) => Kind::Update(of),
        },
        Err(_) => Kind::New,
    };
    let limit = std::env::var("MLLP_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let deadline = Instant::now() + Duration::from_secs(limit);
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            tokio::spawn(sender(
                addr.clone(),
                run.clone(),
                s,
                per,
                deadline,
                reconnect,
                kind.clone(),
            ))
        })
        .collect();
    let mut all = Vec::with_capacity(senders * per);
    let mut not_aa = 0;
    for t in tasks {
        match t.await {
            Ok(Ok((l, n))) => {
                all.extend(l);
                not_aa += n;
            }
            Ok(Err(e)) => eprintln!("sender failed: {e}"),
            Err(e) => eprintln!("sender task failed: {e}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{{\"messages\": {}, \"seconds\": {elapsed:.3}, \"per_second\": {:.0}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"not_aa\": {not_aa}}}",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
