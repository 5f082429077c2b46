//! SMS over SMPP 3.4 against a real SMS centre speaking the protocol (the npm
//! `smpp` package's server, `tests/smsc`): submissions, a refused one, a
//! dropped connection (retried, sent once), delivery receipts; and a patient
//! who chose SMS gets her notices so, each on her "Mes avis" page.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::helpers::*;

/// The SMS centre stand-in and what it said.
struct Smsc {
    port: u16,
    events: Arc<Mutex<Vec<Value>>>,
    _child: tokio::process::Child,
}

impl Smsc {
    fn count(&self, key: &str, dest: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e[key] == dest)
            .count()
    }

    fn accepted(&self, dest: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["accepted"] == dest)
            .cloned()
            .collect()
    }
}

/// Installs the stand-in's npm package on a fresh checkout, once even when
/// several tests start together (a lock file; the others wait for it). npm
/// writes `node_modules/.package-lock.json` once every package is in place:
/// the package's own files come earlier, before its dependencies'.
async fn install(dir: &std::path::Path) {
    let ready = || dir.join("node_modules/.package-lock.json").exists();
    let lock = dir.join(".installing");
    for _ in 0..1200 {
        if ready() {
            return;
        }
        if std::fs::File::create_new(&lock).is_ok() {
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(dir)
                .status()
                .expect("npm (Node.js) to install the SMS centre stand-in");
            let _ = std::fs::remove_file(&lock);
            assert!(ok.success(), "npm ci in tests/smsc");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the SMS centre stand-in was not installed within two minutes");
}

/// Starts the stand-in (installing its npm package on a fresh checkout).
async fn smsc(env: &[(&str, &str)]) -> Smsc {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smsc");
    install(&dir).await;
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("smsc.cjs"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("node");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .expect("the SMS centre listens")
        .unwrap()
        .unwrap();
    let port: u16 = serde_json::from_str::<Value>(&first).unwrap()["listening"]
        .as_u64()
        .unwrap()
        .try_into()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    Smsc {
        port,
        events,
        _child: child,
    }
}

fn config(port: u16) -> server::smpp::SmppConfig {
    server::smpp::SmppConfig {
        addr: format!("127.0.0.1:{port}"),
        system_id: "parcours".into(),
        password: "secret".into(),
        source: "Parcours".into(),
    }
}

#[tokio::test]
async fn the_sms_client_speaks_smpp_to_a_real_centre() {
    use server::smpp::SmsError;
    let centre = smsc(&[]).await;
    let (receipts_tx, mut receipts) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let client = server::smpp::spawn(config(centre.port), receipts_tx, stop_rx);

    // Accepted, in UCS-2 for the accents; its receipt follows.
    let text = "Parcours : votre rendez-vous est confirmé.";
    let id = client.submit("33612345678", text).await.unwrap();
    let accepted = centre.accepted("33612345678");
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        (
            accepted[0]["id"].as_str(),
            accepted[0]["text"].as_str(),
            accepted[0]["coding"].as_u64(),
            accepted[0]["source"].as_str()
        ),
        (Some(id.as_str()), Some(text), Some(8), Some("Parcours"))
    );
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), receipts.recv())
        .await
        .expect("a delivery receipt")
        .unwrap();
    assert_eq!(
        (r.message_id.as_str(), r.state.as_str()),
        (id.as_str(), "DELIVRD")
    );

    // A long text goes whole (message_payload).
    let long = "Rappel : ".to_owned() + &"questionnaire ".repeat(25);
    client.submit("33612345679", &long).await.unwrap();
    assert_eq!(
        centre.accepted("33612345679")[0]["text"].as_str(),
        Some(long.as_str())
    );

    // Refused: final.
    assert_eq!(
        client.submit("33600000000", "x").await,
        Err(SmsError::Refused(0x0B))
    );
    assert_eq!(centre.count("refused", "33600000000"), 1);

    // The connection drops before the answer: to retry; the retry binds
    // again and is sent, once.
    assert!(matches!(
        client.submit("33699999999", "y").await,
        Err(SmsError::Transient(_))
    ));
    client.submit("33699999999", "y").await.unwrap();
    assert_eq!(centre.count("dropped", "33699999999"), 1);
    assert_eq!(centre.accepted("33699999999").len(), 1, "sent once");
    assert!(
        centre.count("bound", "parcours") >= 2,
        "bound again after the drop"
    );
    stop_tx.send(true).unwrap();
}

#[tokio::test]
async fn a_patient_who_chose_sms_gets_her_notices_by_sms_with_receipts() {
    for backend in BACKENDS {
        // Her first notice meets a dropped connection.
        let probe = spawn_app(backend).await;
        let lambert = probe.demo_patient("Lambert").await.id;
        let mobile = probe
            .store
            .demographics(lambert)
            .await
            .unwrap()
            .telecoms
            .iter()
            .find_map(|t| domain::notice::sms_number(&t.value))
            .expect("the demo gives her a mobile");
        drop(probe);
        let centre = smsc(&[
            ("SMSC_DROP_ONCE", mobile.as_str()),
            ("SMSC_REFUSE", "33611111111"),
        ])
        .await;
        let port = centre.port;
        let app = spawn_app_with(backend, move |c| {
            c.smpp_url = Some(format!("smpp://127.0.0.1:{port}"));
            c.smpp_system_id = Some("parcours".into());
            c.smpp_password = Some("secret".into());
        })
        .await;
        let lambert = app.demo_patient("Lambert").await.id;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let account = app.get_page("/mon-compte", &patient).await;
        assert!(account.page().contains("par SMS (au 06"), "{backend}");
        let choose = async |canal: &str| {
            let csrf = csrf_field(&app.get_page("/mon-compte", &patient).await.text);
            app.post_form(
                "/mon-compte/avis",
                &format!("parcours_session={patient}"),
                &[("csrf", &csrf), ("canal", canal)],
            )
            .await
        };
        assert_eq!(choose("pigeon").await.status, 400, "{backend}");
        let r = choose("sms").await;
        assert_eq!(r.status, 200, "{backend}");
        assert!(r.page().contains("vos avis vous parviendront par SMS"));

        let notice = |key: &str, text: &str| store::outbox::NewMessage {
            idempotency_key: key.into(),
            topic: server::outbound::NOTIFY_TOPIC.into(),
            destination: format!("portail:{lambert}"),
            payload: text.into(),
            establishment: None,
        };
        let text = "Parcours : votre questionnaire de suivi est à remplir.";
        app.store
            .enqueue(&notice("test:sms:1", text), app.clock.now_ms())
            .await
            .unwrap();
        eventually("the dropped connection", async || {
            centre.count("dropped", &mobile) == 1
        })
        .await;
        // The outbox retries after its delay; each SMS leaves once (her
        // appointment reminder, due too, goes the same way).
        let with_text = |t: &str| {
            centre
                .accepted(&mobile)
                .iter()
                .filter(|e| e["text"] == t)
                .count()
        };
        for _ in 0..20 {
            if with_text(text) > 0 {
                break;
            }
            app.clock.advance_secs(60);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(with_text(text), 1, "{backend}: sent once");
        let mut texts: Vec<String> = centre
            .accepted(&mobile)
            .iter()
            .map(|e| e["text"].as_str().unwrap_or("").to_owned())
            .collect();
        let n = texts.len();
        texts.dedup();
        assert_eq!(texts.len(), n, "{backend}: nothing twice");
        // Its receipt is recorded; her page says so.
        eventually("the receipt recorded", async || {
            app.store.notices_of(lambert, 10).await.unwrap()[0]
                .state
                .as_deref()
                == Some("DELIVRD")
        })
        .await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let page = app.get_page("/mes-avis", &patient).await.page();
        assert!(
            page.contains(text) && page.contains("envoyé par SMS, reçu"),
            "{backend}: {page}"
        );

        // On the portal only, by her choice: nothing more leaves by SMS.
        let r = choose("portail").await;
        assert_eq!(r.status, 200, "{backend}");
        app.store
            .enqueue(
                &notice("test:sms:2", "Parcours : nouveau document."),
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        eventually("the notice left on the portal", async || {
            app.store.notices_of(lambert, 10).await.unwrap()[0]
                .channel
                .as_deref()
                == Some("portail")
        })
        .await;
        let before = centre.accepted(&mobile).len();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(centre.accepted(&mobile).len(), before, "{backend}");
        assert!(
            !centre
                .accepted(&mobile)
                .iter()
                .any(|e| e["text"] == "Parcours : nouveau document."),
            "{backend}: her choice"
        );
    }
}
