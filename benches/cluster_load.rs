//! Load for `scripts/bench-cluster`, through the load balancer in front of
//! one or three nodes. Loopback only, bounded in count and time.
//!
//! `cluster-load fhir BASE CLIENTS SECONDS`: CLIENTS concurrent API clients
//! (the demo's integration client, one token) read patients
//! (`GET /fhir/Patient/{id}`, each read audited) for SECONDS; prints reads/s
//! and latency percentiles.
//!
//! `cluster-load mllp ADDR SENDERS PER RUN ACKED_FILE`: SENDERS HL7 senders,
//! each sending PER admissions-of-identity one at a time and waiting for the
//! ACK, as a hospital's interface engine does: when the connection breaks or
//! the ACK does not come (a node killed under it), it connects again (the load
//! balancer picks a live node) and sends the same message again, same control
//! id. Every control id answered AA is written to ACKED_FILE, one per line;
//! prints messages/s, latency percentiles and how many were sent again.

use std::time::{Duration, Instant};

use parcours_benches::{DEMO_CLIENT, Error, client_token, exchange, percentile};
use tokio::net::TcpStream;

fn loopback(base: &str) -> Result<(), Error> {
    let host = base
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or_default();
    if host == "127.0.0.1" || host == "[::1]" {
        Ok(())
    } else {
        Err(format!("loopback only, not {base}").into())
    }
}

async fn fhir(base: &str, clients: usize, seconds: u64) -> Result<serde_json::Value, Error> {
    loopback(base)?;
    let http = reqwest::Client::new();
    let token = client_token(&http, base, DEMO_CLIENT.0, DEMO_CLIENT.1).await?;
    let bundle: serde_json::Value = http
        .get(format!("{base}/fhir/Patient?_count=50"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<String> = bundle["entry"]
        .as_array()
        .ok_or("no patients")?
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        return Err("no patients to read".into());
    }
    let until = Instant::now() + Duration::from_secs(seconds.min(120));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients.min(256))
        .map(|c| {
            let (http, token, ids, base) =
                (http.clone(), token.clone(), ids.clone(), base.to_owned());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut i = c;
                while Instant::now() < until {
                    let id = &ids[i % ids.len()];
                    i += 1;
                    let t0 = Instant::now();
                    match http
                        .get(format!("{base}/fhir/Patient/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            lat.push(t0.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok(serde_json::json!({
        "reads": all.len(),
        "errors": errors,
        "per_second": all.len() as f64 / elapsed,
        "p50_ms": percentile(&all, 0.50),
        "p99_ms": percentile(&all, 0.99),
    }))
}

struct Sent {
    latencies: Vec<Duration>,
    acked: Vec<String>,
    resent: usize,
    not_aa: usize,
}

async fn sender(addr: String, run: String, id: usize, count: usize, deadline: Instant) -> Sent {
    let mut out = Sent {
        latencies: Vec::with_capacity(count),
        acked: Vec::with_capacity(count),
        resent: 0,
        not_aa: 0,
    };
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    for i in 0..count {
        let control = format!("{run}-{id}-{i}");
        let frame = hl7v2::mllp::frame(parcours_benches::identity_feed(&run, id, i).as_bytes());
        let t0 = Instant::now();
        let mut tries = 0;
        loop {
            if Instant::now() > deadline {
                return out;
            }
            if conn.is_none() {
                buf.clear();
                match TcpStream::connect(&addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        conn = Some(s);
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some(stream) = conn.as_mut() else {
                continue;
            };
            match exchange(stream, &mut buf, &frame, Duration::from_secs(5)).await {
                Ok(ack) => {
                    out.latencies.push(t0.elapsed());
                    if ack.windows(7).any(|w| w == b"MSA|AA|") {
                        out.acked.push(control);
                    } else {
                        out.not_aa += 1;
                    }
                    break;
                }
                Err(_) => {
                    // The node went away under this connection: another one
                    // gets the same message (same control id).
                    conn = None;
                    tries += 1;
                    out.resent += 1;
                    if tries > 20 {
                        return out;
                    }
                }
            }
        }
    }
    out
}

async fn mllp(
    addr: &str,
    senders: usize,
    per: usize,
    run: &str,
    acked_file: &str,
) -> Result<serde_json::Value, Error> {
    loopback(&format!("http://{addr}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders.min(64))
        .map(|s| {
            tokio::spawn(sender(
                addr.to_owned(),
                run.to_owned(),
                s,
                per.min(100_000),
                deadline,
            ))
        })
        .collect();
    let (mut lat, mut acked, mut resent, mut not_aa) = (Vec::new(), Vec::new(), 0, 0);
    for t in tasks {
        let s = t.await?;
        lat.extend(s.latencies);
        acked.extend(s.acked);
        resent += s.resent;
        not_aa += s.not_aa;
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    std::fs::write(acked_file, acked.join("\n"))?;
    Ok(serde_json::json!({
        "messages": lat.len(),
        "acked": acked.len(),
        "expected": senders * per,
        "not_aa": not_aa,
        "resent": resent,
        "per_second": lat.len() as f64 / elapsed,
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let result = match arg(1) {
        "fhir" => fhir(arg(2), arg(3).parse()?, arg(4).parse()?).await?,
        "mllp" => mllp(arg(2), arg(3).parse()?, arg(4).parse()?, arg(5), arg(6)).await?,
        _ => {
            return Err("usage: cluster-load fhir BASE CLIENTS SECONDS | mllp ADDR SENDERS PER RUN ACKED_FILE".into());
        }
    };
    println!("{result}");
    Ok(())
}
