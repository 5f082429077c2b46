//! Document dispatch load for `scripts/bench-documents`. Two commands:
//!
//! - `documents-load validate SENDER_URL COUNT CONCURRENCY`: logs in as the
//!   demo oncologist, drafts COUNT discharge letters for Mme Lambert and
//!   validates each in one click (CDA built, outbox written); prints JSON with
//!   the time taken.
//! - `documents-load wait RECEIVER_URL CLIENT_SECRET EXPECTED TIMEOUT_S [OTHERS]`:
//!   polls the MHD recipient (ITI-67 by INS) until it holds EXPECTED letters
//!   for her (the search's total less OTHERS, her documents that are not
//!   letters: counted when the wait starts unless given); prints JSON with the
//!   time it took, the count and OTHERS.
//! - `documents-load post RECEIVER_URL CLIENT_SECRET COUNT CONCURRENCY`: the
//!   peer: posts COUNT ready-made ITI-65 bundles straight to the recipient (no
//!   CDA to build, no outbox), the ceiling the dispatch is compared with.
//!
//! - `documents-load search RECEIVER_URL CLIENT_SECRET COUNT`: COUNT searches
//!   of her DocumentReferences (`_count=1`, as the wait polls), one after the
//!   other; prints JSON with their latency percentiles and the total found.
//!
//! Loopback only, bounded in count and time.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use parcours_benches::{Error, client_token, csrf, session};

const DOCTOR: &str = "dr.martin";
/// Mme Lambert's INS (the demo's, qualified).
const INS: &str = "261044523410185";
/// The API client the script creates on the recipient.
const CLIENT: &str = "dmp-feed";

fn loopback(base: &str) -> Result<String, Error> {
    let base = base.trim_end_matches('/').to_owned();
    if base.starts_with("http://127.0.0.1:") || base.starts_with("http://[::1]:") {
        Ok(base)
    } else {
        Err("loopback only (http://127.0.0.1:PORT)".into())
    }
}

/// Logs the doctor in; a TOTP code is accepted once, so a second run within the
/// same 30-second step waits for the next one.
async fn doctor_session(http: &reqwest::Client, base: &str) -> Result<String, Error> {
    match session(http, base, DOCTOR, true).await {
        Ok(s) => Ok(s),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            tokio::time::sleep(Duration::from_secs(31 - now % 30)).await;
            session(http, base, DOCTOR, true).await
        }
    }
}

async fn validate(base: &str, count: usize, concurrency: usize) -> Result<(), Error> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = doctor_session(&http, base).await?;
    let c = format!("parcours_session={session}");
    let search = http
        .get(format!("{base}/patients?nom=Lambert"))
        .header("cookie", &c)
        .send()
        .await?
        .text()
        .await?;
    let token = csrf(&search).ok_or("no csrf")?;
    let patient = search
        .split("href=\"/patients/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("Mme Lambert not found")?
        .to_owned();
    let started = Instant::now();
    let results: Vec<Result<(), Error>> = stream::iter(0..count)
        .map(|i| {
            let (http, c, token, patient) =
                (http.clone(), c.clone(), token.clone(), patient.clone());
            let base = base.to_owned();
            async move {
                let r = http
                    .post(format!("{base}/patients/{patient}/documents"))
                    .header("cookie", &c)
                    .form(&[("csrf", token.as_str()), ("type", "lettre-liaison")])
                    .send()
                    .await?;
                let id = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| l.strip_prefix("/documents/"))
                    .ok_or("draft refused")?
                    .to_owned();
                let text =
                    format!("Lettre de liaison n° {i}\nSortie le jour même. Revoir dans un mois.");
                let r = http
                    .post(format!("{base}/documents/{id}/valider"))
                    .header("cookie", &c)
                    .form(&[
                        ("csrf", token.as_str()),
                        ("titre", "Lettre de liaison à la sortie"),
                        ("texte", text.as_str()),
                        ("dest_patient", "1"),
                        ("dest_dmp", "1"),
                    ])
                    .send()
                    .await?;
                if r.status() != 303 {
                    return Err(format!("validation refused: {}", r.status()).into());
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency.clamp(1, 64))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(ToString::to_string));
    println!(
        "{}",
        serde_json::json!({"validated": count - failed, "failed": failed, "seconds": seconds,
            "per_second": (count - failed) as f64 / seconds, "first_error": first_error})
    );
    Ok(())
}

/// The patient's DocumentReference search on the recipient, `query` added.
async fn search(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<serde_json::Value, Error> {
    let r = http.get(url).bearer_auth(token).send().await?;
    if !r.status().is_success() {
        return Err(format!("ITI-67: {}", r.status()).into());
    }
    Ok(r.json().await?)
}

fn search_url(base: &str, query: &str) -> String {
    format!(
        "{base}/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{INS}&{query}"
    )
}

/// How many documents of the patient are not letters (LOINC 11490-0), read
/// page by page: a search answers 200 entries at most.
async fn others(http: &reqwest::Client, base: &str, token: &str) -> Result<usize, Error> {
    let mut n = 0;
    for page in 0..1000 {
        let url = search_url(base, &format!("_count=200&_offset={}", page * 200));
        let v = search(http, &url, token).await?;
        let entries = v["entry"].as_array().cloned().unwrap_or_default();
        n += entries
            .iter()
            .filter(|x| x["resource"]["type"]["coding"][0]["code"] != "11490-0")
            .count();
        if entries.len() < 200 {
            return Ok(n);
        }
    }
    Err("ITI-67: more than 1,000 pages".into())
}

/// The letters the recipient holds for the patient: the search's total less
/// the other documents (counted once: only letters arrive during a run).
async fn count(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    others: usize,
) -> Result<usize, Error> {
    let v = search(http, &search_url(base, "_count=1"), token).await?;
    let total = v["total"]
        .as_u64()
        .ok_or("ITI-67: the Bundle has no total")?;
    Ok(usize::try_from(total)?.saturating_sub(others))
}

async fn wait(
    base: &str,
    secret: &str,
    expected: usize,
    timeout_s: u64,
    others_known: Option<usize>,
) -> Result<(), Error> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(timeout_s.min(3600));
    let mut last = 0;
    let mut tok: Option<String> = None;
    let mut other: Option<usize> = others_known;
    while Instant::now() < deadline {
        // The recipient may be down (an outage): try again.
        if tok.is_none() {
            tok = client_token(&http, base, CLIENT, secret).await.ok();
        }
        if let Some(t) = &tok {
            if other.is_none() {
                other = others(&http, base, t).await.ok();
            }
            match other {
                Some(o) => match count(&http, base, t, o).await {
                    Ok(n) => {
                        last = n;
                        if n >= expected {
                            break;
                        }
                    }
                    Err(_) => tok = None,
                },
                None => tok = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{}",
        serde_json::json!({"expected": expected, "received": last, "seconds": started.elapsed().as_secs_f64(), "others": other})
    );
    Ok(())
}

/// `n` searches one after the other: their latencies.
async fn searches(base: &str, secret: &str, n: usize) -> Result<(), Error> {
    let http = reqwest::Client::new();
    let t = client_token(&http, base, CLIENT, secret).await?;
    let url = search_url(base, "_count=1");
    let mut ms = Vec::with_capacity(n);
    let mut total = serde_json::Value::Null;
    for _ in 0..n {
        let started = Instant::now();
        let v = search(&http, &url, &t).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        total = v["total"].clone();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        serde_json::json!({"searches": n, "total": total, "p50_ms": at(0.5), "p99_ms": at(0.99)})
    );
    Ok(())
}

async fn post(base: &str, secret: &str, n: usize, concurrency: usize) -> Result<(), Error> {
    let http = reqwest::Client::new();
    let t = client_token(&http, base, CLIENT, secret).await?;
    let cda = format!(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">{}</ClinicalDocument>",
        "x".repeat(4000)
    );
    let now = 1_795_000_000_000i64;
    let started = Instant::now();
    let results: Vec<bool> = stream::iter(0..n)
        .map(|i| {
            let (http, t, cda) = (http.clone(), t.clone(), cda.clone());
            let base = base.to_owned();
            async move {
                let unique = format!("urn:uuid:00000000-0000-4000-8000-{i:012}");
                let sub = format!("10000000-0000-4000-8000-{i:012}");
                let bundle = interop::fhir::mhd::provide_bundle(&interop::fhir::mhd::Submission {
                    unique_id: &unique,
                    submission_id: &sub,
                    ins: (INS, "1.2.250.1.213.1.4.8"),
                    author: (Some("10000012345"), "Dr Pair"),
                    custodian: ("450000013", "Clinique"),
                    type_code: ("34874-8", "CR opératoire"),
                    class_code: ("10", "Compte rendu"),
                    title: "CR opératoire",
                    date_ms: now,
                    period_start_ms: now,
                    cda: cda.as_bytes(),
                    replaces: None,
                });
                http.post(format!("{base}/fhir"))
                    .bearer_auth(&t)
                    .header("content-type", "application/fhir+json")
                    .body(bundle.to_string())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(concurrency.clamp(1, 64))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let ok = results.iter().filter(|r| **r).count();
    println!(
        "{}",
        serde_json::json!({"posted": ok, "failed": n - ok, "seconds": seconds, "per_second": ok as f64 / seconds})
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize| a.get(i).map(String::as_str).unwrap_or_default();
    match arg(1) {
        "validate" => {
            validate(
                &loopback(arg(2))?,
                arg(3).parse::<usize>()?.min(10_000),
                arg(4).parse()?,
            )
            .await
        }
        "wait" => {
            wait(
                &loopback(arg(2))?,
                arg(3),
                arg(4).parse()?,
                arg(5).parse()?,
                a.get(6).map(|o| o.parse()).transpose()?,
            )
            .await
        }
        "post" => {
            post(
                &loopback(arg(2))?,
                arg(3),
                arg(4).parse::<usize>()?.min(10_000),
                arg(5).parse()?,
            )
            .await
        }
        "search" => {
            searches(
                &loopback(arg(2))?,
                arg(3),
                arg(4).parse::<usize>()?.min(1000),
            )
            .await
        }
        _ => Err("usage: documents-load validate|wait|post|search …".into()),
    }
}
