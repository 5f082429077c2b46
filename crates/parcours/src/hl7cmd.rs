//! `parcours hl7 stats FILE` and `parcours hl7 send FILE --to HOST:PORT`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hl7v2::Message;
use hl7v2::mllp::{self, Frame};

/// What `stats` found.
pub struct Stats {
    /// Messages read.
    pub total: usize,
    /// Count per "TYPE^EVENT".
    pub per_type: BTreeMap<String, usize>,
    /// (message number, control id, error) for every message that does not parse.
    pub errors: Vec<(usize, String, String)>,
    /// Bytes read.
    pub bytes: usize,
}

/// Parses every message of `input`.
pub fn stats(input: &[u8]) -> Stats {
    let mut s = Stats {
        total: 0,
        per_type: BTreeMap::new(),
        errors: Vec::new(),
        bytes: input.len(),
    };
    for (i, raw) in hl7v2::batch::split(input).into_iter().enumerate() {
        s.total += 1;
        match Message::parse(raw) {
            Ok(m) => {
                let (code, event, _) = m.message_type();
                let key = format!("{}^{}", code.unwrap_or("?"), event.unwrap_or("?"));
                *s.per_type.entry(key).or_default() += 1;
            }
            Err(e) => {
                let control = raw
                    .split(|&b| b == b'\r' || b == b'\n')
                    .next()
                    .map(control_id_guess)
                    .unwrap_or_default();
                s.errors.push((i + 1, control, e.to_string()));
            }
        }
    }
    s
}

/// MSH-10 read naively from a first line that does not parse, for error reports.
fn control_id_guess(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.split('|')
        .nth(9)
        .unwrap_or("")
        .chars()
        .take(40)
        .collect()
}

/// Runs `stats` on a file and prints the report; returns whether every message parsed.
pub fn run_stats(path: &std::path::Path) -> anyhow::Result<bool> {
    let started = Instant::now();
    let input = std::fs::read(path).with_context(|| format!("lecture de {}", path.display()))?;
    let s = stats(&input);
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{} messages, {} octets, analysés en {:.3} s ({:.0} messages/s, {:.1} Mo/s)",
        s.total,
        s.bytes,
        secs,
        s.total as f64 / secs,
        s.bytes as f64 / secs / 1e6
    );
    for (k, n) in &s.per_type {
        println!("  {k:<12} {n}");
    }
    if !s.errors.is_empty() {
        println!("{} message(s) en erreur:", s.errors.len());
        for (i, control, e) in &s.errors {
            println!("  message {i} (MSH-10 {control:?}): {e}");
        }
    }
    Ok(s.errors.is_empty())
}

fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    loop {
        match mllp::next_frame(buf) {
            Frame::Message {
                start,
                end,
                consumed,
            } => {
                let msg = buf.get(start..end).unwrap_or(&[]).to_vec();
                buf.drain(..consumed);
                return Ok(msg);
            }
            Frame::Incomplete { discard } => {
                buf.drain(..discard);
            }
        }
        let n = stream
            .read(&mut chunk)
            .context("lecture de l'acquittement")?;
        if n == 0 {
            bail!("connexion fermée par le destinataire avant l'acquittement");
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if buf.len() > 1 << 20 {
            bail!("acquittement de plus de 1 Mo: abandon");
        }
    }
}

/// Sends every message of a file over MLLP and prints each ACK; returns whether all
/// were accepted (AA or CA).
pub fn run_send(path: &std::path::Path, to: &str) -> anyhow::Result<bool> {
    let input = std::fs::read(path).with_context(|| format!("lecture de {}", path.display()))?;
    let messages = hl7v2::batch::split(&input);
    if messages.is_empty() {
        bail!("aucun message HL7 dans {}", path.display());
    }
    let mut stream = TcpStream::connect(to).with_context(|| format!("connexion à {to}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut all_ok = true;
    for (i, raw) in messages.iter().enumerate() {
        stream.write_all(&mllp::frame(raw)).context("envoi")?;
        let ack = read_frame(&mut stream, &mut buf)?;
        let (code, text) = match Message::parse(&ack) {
            Ok(m) => {
                let code = m
                    .get("MSA-1")
                    .ok()
                    .flatten()
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|| "?".into());
                let detail = m
                    .get("ERR-8")
                    .ok()
                    .flatten()
                    .or_else(|| m.get("MSA-3").ok().flatten())
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                (code, detail)
            }
            Err(e) => ("?".into(), format!("acquittement illisible: {e}")),
        };
        all_ok &= code == "AA" || code == "CA";
        println!("message {} : {code} {text}", i + 1);
    }
    Ok(all_ok)
}

/// Re-runs a logged message through the intake (as a replay: no deduplication)
/// and prints the ACK; returns whether it was accepted.
pub async fn replay(config: &server::Config, id: &str) -> anyhow::Result<bool> {
    let url = config.database_url();
    let store = store::Store::connect(&url)
        .await
        .with_context(|| format!("connexion à {}", store::redact_url(&url)))?;
    store
        .migrate(domain::Clock::now(&domain::SystemClock).as_millisecond())
        .await?;
    let original = store
        .hl7_message(id)
        .await
        .with_context(|| format!("message {id} introuvable dans le journal"))?;
    let state = server::AppState::new(
        store,
        std::sync::Arc::new(domain::SystemClock),
        config.clone(),
    );
    match server::services::hl7::ingest(
        state.ctx(),
        &original.raw,
        Some(original.id.clone()),
        &server::services::hl7::Peer::Internal,
    )
    .await
    {
        server::services::hl7::Outcome::Ack(ack) => {
            let code = Message::parse(ack.as_bytes())
                .ok()
                .and_then(|m| m.get("MSA-1").ok().flatten().map(|c| c.into_owned()))
                .unwrap_or_default();
            println!("{}", ack.replace('\r', "\n"));
            Ok(code == "AA")
        }
        server::services::hl7::Outcome::NoAck => {
            bail!("base de données indisponible: message non rejoué")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_types_and_locate_errors() {
        let input = b"MSH|^~\\&|A|B|C|D|1||ADT^A01|c1|P|2.5\rPID|1\nMSH|^~\\&|A|B|C|D|1||ADT^A01|c2|P|2.5\nMSH|^~\\&|A|B|C|D|1||ORU^R01|c3|P|2.5\nMSH|^~|bad|B|C|D|1||ADT^A01|c4|P|2.5\n";
        let s = stats(input);
        assert_eq!(s.total, 4);
        assert_eq!(s.per_type.get("ADT^A01"), Some(&2));
        assert_eq!(s.per_type.get("ORU^R01"), Some(&1));
        assert_eq!(
            s.errors,
            vec![(
                4,
                "c4".to_owned(),
                "séparateurs MSH-1/MSH-2 invalides".to_owned()
            )]
        );
    }
}
