//! Page render times for `scripts/bench-pages`: the pages a care team keeps
//! open, each requested by the account that uses it, one after another on
//! `CONCURRENCY` connections at once, `COUNT` times. Prints one JSON line per
//! page: requests, requests/s, p50, p99 and max (ms), failures (any status
//! but 200). Loopback only, bounded in count and time.
//!
//! `pages-load BASE_URL COUNT CONCURRENCY`

use std::time::{Duration, Instant};

use parcours_benches::{Error, percentile, session};

/// (label, account, path): the nurse's alert queue (page and the table it
/// refreshes), the coordinator's regional beds view (page and table), the bed
/// manager's beds, a secretary's patient search (first letters of a name, then
/// with a birth date), the documents received at the hospital's desk.
const PAGES: &[(&str, &str, &str)] = &[
    ("alert queue", "ipa.robert", "/alertes"),
    ("alert table", "ipa.robert", "/alertes/table"),
    ("regional beds", "coord.garnier", "/region"),
    ("regional beds table", "coord.garnier", "/region/table"),
    ("beds (hospital)", "lits.moreau", "/lits"),
    ("patient search", "sec.durand", "/patients?nom=mar"),
    (
        "patient search + date",
        "sec.durand",
        "/patients?nom=ber&naissance=1961-04-12",
    ),
    ("documents received", "sec.durand", "/documents/recus"),
];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(count), Some(concurrency)) = (
        args.get(1),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
        args.get(3).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        return Err("usage: pages-load BASE_URL COUNT CONCURRENCY".into());
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut sessions: std::collections::HashMap<&str, String> = Default::default();
    for (label, user, path) in PAGES {
        if !sessions.contains_key(user) {
            sessions.insert(
                user,
                format!("parcours_session={}", sign_in(&http, base, user).await?),
            );
        }
        let cookie = sessions.get(user).cloned().unwrap_or_default();
        let url = format!("{base}{path}");
        // One request first, so that a page that does not render stops the run.
        let first = http.get(&url).header("cookie", &cookie).send().await?;
        if first.status() != 200 {
            return Err(format!("{label}: {path} answers {}", first.status()).into());
        }
        let started = Instant::now();
        let per = count.div_ceil(concurrency.max(1));
        let tasks: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (http, url, cookie) = (http.clone(), url.clone(), cookie.clone());
                tokio::spawn(async move {
                    let mut times = Vec::with_capacity(per);
                    let mut failed = 0;
                    for _ in 0..per {
                        if Instant::now() > deadline {
                            break;
                        }
                        let t0 = Instant::now();
                        match http.get(&url).header("cookie", &cookie).send().await {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.bytes().await;
                            }
                            _ => failed += 1,
                        }
                        times.push(t0.elapsed());
                    }
                    (times, failed)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut failed = 0;
        for t in tasks {
            let (times, f) = t.await?;
            all.extend(times);
            failed += f;
        }
        let seconds = started.elapsed().as_secs_f64();
        all.sort();
        println!(
            "{{\"page\": \"{label}\", \"path\": \"{path}\", \"requests\": {}, \"per_second\": {:.0}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}, \"failed\": {failed}}}",
            all.len(),
            all.len() as f64 / seconds,
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            percentile(&all, 1.0),
        );
    }
    Ok(())
}

/// Signs `user` in; a TOTP code is accepted once, so when the account signed
/// in during the same 30 s (the monitoring load client, before), waits for
/// the next code and tries again.
async fn sign_in(http: &reqwest::Client, base: &str, user: &str) -> Result<String, Error> {
    match session(http, base, user, true).await {
        Ok(s) => Ok(s),
        Err(_) => {
            tokio::time::sleep(Duration::from_secs(31)).await;
            session(http, base, user, true).await
        }
    }
}
