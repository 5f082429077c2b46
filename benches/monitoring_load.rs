//! Remote-monitoring load for `scripts/bench-monitoring`: questionnaire
//! submissions at a fixed rate through `POST /fhir/QuestionnaireResponse` (graded
//! by the rules, every one raising an urgent alert), while a nurse's queue is
//! open on `/alertes/ws`. Measures the submission's HTTP time and the time from
//! sending it to the push that names it on the nurse's socket. Loopback only,
//! bounded in count and time.
//!
//! `monitoring-load BASE_URL RATE_PER_S SECONDS`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parcours_benches::{DEMO_CLIENT, Error, client_token, csrf, percentile, session};
use serde_json::{Value, json};

const NURSE: &str = "ipa.robert";
/// The hospital's demo patients (the integration client's establishment); the
/// search ignores accents.
const PATIENTS: &[&str] = &[
    "Muller", "Faure", "Mercier", "Guerin", "Garnier", "Francois", "Gauthier", "Morin", "Clement",
];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(rate), Some(seconds)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: monitoring-load BASE_URL RATE_PER_S SECONDS".into());
    };
    let base = base.trim_end_matches('/').to_owned();
    if !base.starts_with("http://127.0.0.1:") && !base.starts_with("http://[::1]:") {
        return Err("loopback only (http://127.0.0.1:PORT)".into());
    }
    let rate: u64 = rate.parse()?;
    let seconds: u64 = seconds.parse()?;
    let total = (rate * seconds).min(100_000);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let token = client_token(&http, &base, DEMO_CLIENT.0, DEMO_CLIENT.1).await?;
    let session = session(&http, &base, NURSE, true).await?;

    // Enrol the hospital's patients in home follow-up (once; the demo enrolled one).
    let page = http
        .get(format!("{base}/alertes"))
        .header("cookie", format!("parcours_session={session}"))
        .send()
        .await?;
    let form_csrf = csrf(&page.text().await?).ok_or("no csrf on /alertes")?;
    let mut patients = Vec::new();
    for family in PATIENTS {
        let found: Value = http
            .get(format!("{base}/fhir/Patient?family={family}"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let Some(id) = found["entry"][0]["resource"]["id"].as_str() else {
            return Err(format!("patient de démo {family} introuvable").into());
        };
        let plans: Value = http
            .get(format!("{base}/fhir/CarePlan?patient=Patient/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if plans["entry"].as_array().is_none_or(|e| e.is_empty()) {
            let r = http
                .post(format!("{base}/patients/{id}/suivi"))
                .header("cookie", format!("parcours_session={session}"))
                .form(&[
                    ("csrf", form_csrf.as_str()),
                    ("programme", "infectious-home"),
                    ("consentement", "1"),
                ])
                .send()
                .await?;
            if r.status() != reqwest::StatusCode::SEE_OTHER {
                return Err(format!("inclusion de {family} refusée: {}", r.status()).into());
            }
        }
        patients.push(id.to_owned());
    }

    // The nurse's open queue.
    let ws_url = format!("{}/alertes/ws", base.replacen("http://", "ws://", 1));
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        ws_url.as_str(),
    )?;
    req.headers_mut()
        .insert("cookie", format!("parcours_session={session}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let pushed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen = pushed.clone();
    let listener = tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Ok(text) = m.into_text()
                && let Some(id) = text.strip_prefix("alertes:")
            {
                seen.lock()
                    .map(|mut s| s.insert(id.to_owned(), Instant::now()))
                    .ok();
            }
        }
    });

    // Submissions at a fixed rate (open loop), every one an urgent SpO2.
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds + 30);
    let mut tasks = Vec::with_capacity(total as usize);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for i in 0..total {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at.into()).await;
        let body = json!({
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "urn:parcours:questionnaire:infectious-home",
            "status": "completed",
            "subject": {"reference": format!("Patient/{}", patients[i as usize % patients.len()])},
            "item": [
                {"linkId": "temperature", "answer": [{"valueDecimal": 37.4}]},
                {"linkId": "spo2", "answer": [{"valueInteger": 90}]},
                {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "1"}}]},
                {"linkId": "worse", "answer": [{"valueBoolean": false}]}
            ]
        });
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = tokio::time::timeout_at(
                deadline.into(),
                http.post(format!("{base}/fhir/QuestionnaireResponse"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send(),
            )
            .await;
            let done = t0.elapsed();
            match r {
                Ok(Ok(r)) if r.status() == reqwest::StatusCode::CREATED => {
                    let v: Value = r.json().await.unwrap_or_default();
                    v["id"].as_str().map(|id| (id.to_owned(), t0, done))
                }
                _ => None,
            }
        }));
    }
    let mut sent = Vec::new();
    let mut failed = 0usize;
    for t in tasks {
        match t.await {
            Ok(Some(s)) => sent.push(s),
            _ => failed += 1,
        }
    }
    let elapsed = start.elapsed();
    // Pushes still in flight: wait a little (bounded).
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle {
        let n = pushed.lock().map(|p| p.len()).unwrap_or(0);
        if n >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    listener.abort();
    let pushed = pushed.lock().map(|p| p.clone()).unwrap_or_default();
    let mut http_ms: Vec<Duration> = sent.iter().map(|(_, _, d)| *d).collect();
    let mut push_ms: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, t0, _)| pushed.get(id).map(|t| t.saturating_duration_since(*t0)))
        .collect();
    let missing = sent.len() - push_ms.len();
    http_ms.sort();
    push_ms.sort();
    println!(
        "{}",
        json!({
            "submissions": sent.len(),
            "failed": failed,
            "per_second": sent.len() as f64 / elapsed.as_secs_f64(),
            "http_p50_ms": percentile(&http_ms, 0.5),
            "http_p99_ms": percentile(&http_ms, 0.99),
            "push_p50_ms": percentile(&push_ms, 0.5),
            "push_p99_ms": percentile(&push_ms, 0.99),
            "push_max_ms": percentile(&push_ms, 1.0),
            "missing_pushes": missing,
        })
    );
    Ok(())
}
