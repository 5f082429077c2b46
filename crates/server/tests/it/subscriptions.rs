//! FHIR Subscriptions: a rest-hook subscriber (a real HTTP server on
//! 127.0.0.1) gets signed notifications through the outbox, with the resource
//! or empty, retried on a 5xx and dead-lettered on a refusal; a WebSocket
//! client bound to its subscription is pinged; nobody hears another
//! establishment's changes, nor reads another client's subscriptions.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::*;

/// What the subscriber received: method, path, headers (lowercase), body.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber on 127.0.0.1 answering `status` (changeable) and keeping the calls.
async fn subscriber() -> (
    String,
    Arc<Mutex<Vec<Call>>>,
    Arc<std::sync::atomic::AtomicU16>,
) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let calls = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
    let (keep, answer) = (calls.clone(), status.clone());
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (keep, answer) = (keep.clone(), answer.clone());
            async move {
                keep.lock().unwrap().push(Call {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                    body: body.to_vec(),
                });
                StatusCode::from_u16(answer.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls, status)
}

/// HMAC-SHA256 of `t.body`, computed here with the `hmac` crate (not
/// Parcours's signing code).
fn expected_signature(secret: &str, t: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn check_signature(call: &Call, secret: &str) {
    let sig = call.header("x-parcours-signature").expect("signed");
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    assert_eq!(v1, expected_signature(secret, t, &call.body), "{sig}");
}

async fn subscribe(app: &TestApp, token: &str, body: Value) -> Resp {
    app.send_json(reqwest::Method::POST, "/fhir/Subscription", token, &body)
        .await
}

fn questionnaire(patient: domain::PatientId, spo2: i64) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:parcours:questionnaire:infectious-home",
        "status": "completed",
        "subject": {"reference": format!("Patient/{patient}")},
        "item": [
            {"linkId": "temperature", "answer": [{"valueDecimal": 37.9}]},
            {"linkId": "spo2", "answer": [{"valueInteger": spo2}]},
            {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "1"}}]},
            {"linkId": "worse", "answer": [{"valueBoolean": false}]}
        ]
    })
}

fn admission(control: &str, visit: &str) -> String {
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|202611231000||ADT^A01^ADT_A01|{control}|P|2.5\r\
         EVN||202611231000\r\
         PID|1||S{visit}^^^CHVL&450000021&M^PI||Abonne^Anne^^^^^L||19600101|F\r\
         PV1|1|I|REA^1^2||||||||||||||||{visit}\r\
         ZBE|{visit}-1^CHVL|202611231000||INSERT|N\r"
    )
}

#[tokio::test]
async fn a_rest_hook_gets_signed_resources_and_empty_notifications() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's integration client
        let (url, calls, _) = subscriber().await;

        // Stays, with the resource; the secret chosen by the client.
        let secret = "s3cret-for-the-hook-0001";
        let r = subscribe(
            &app,
            &token,
            json!({
                "resourceType": "Subscription", "status": "requested",
                "reason": "Séjours vers le DPI", "criteria": "Encounter",
                "channel": {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json",
                            "header": ["Authorization: Bearer dpi-token"]},
                "extension": [{"url": "urn:parcours:fhir:subscription-secret", "valueString": secret}]
            }),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let created = r.json();
        let sid = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["status"], "active");
        assert_eq!(created["channel"]["header"], json!(["Authorization: ***"]));
        assert!(
            r.header("location")
                .unwrap()
                .ends_with(&format!("/Subscription/{sid}"))
        );
        validate_fhir(std::slice::from_ref(&created));
        // Read back: no secret, header values masked.
        let read = app
            .get(&format!("/fhir/Subscription/{sid}"), Some(&token))
            .await;
        assert_eq!(read.status, 200);
        assert!(read.json().get("extension").is_none(), "{}", read.text);
        assert!(!read.text.contains("dpi-token") && !read.text.contains(secret));

        // An ADT admission: the subscriber gets the Encounter, PUT, signed.
        let mut c = Mllp::connect(&app).await;
        assert_eq!(
            ack_code(&c.send(admission("s1", "SV1").as_bytes()).await).0,
            "AA"
        );
        eventually("encounter notified", async || {
            !calls.lock().unwrap().is_empty()
        })
        .await;
        let call = calls.lock().unwrap()[0].clone();
        assert_eq!(call.method, "PUT", "{backend}");
        let body: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(body["resourceType"], "Encounter");
        assert_eq!(
            call.path,
            format!("/hook/Encounter/{}", body["id"].as_str().unwrap())
        );
        assert_eq!(call.header("authorization"), Some("Bearer dpi-token"));
        assert_eq!(call.header("x-parcours-subscription"), Some(sid.as_str()));
        assert_eq!(call.header("content-type"), Some("application/fhir+json"));
        check_signature(&call, secret);
        validate_fhir(std::slice::from_ref(&body));
        // The disclosure is in the audit trail, as the client's.
        let patient: domain::PatientId = body["subject"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/")
            .parse()
            .unwrap();
        let entries = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(patient.to_string()),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            entries.iter().any(|e| e.action == "notify"
                && e.resource == format!("Encounter/{}", body["id"].as_str().unwrap())
                && e.actor_kind == "client"),
            "{backend}: {entries:?}"
        );

        // Alerts of one patient, without payload: an empty POST; the secret
        // generated by Parcours is given once, in the 201.
        let muller = app.demo_patient("Muller").await.id;
        let r = subscribe(
            &app,
            &token,
            json!({
                "resourceType": "Subscription", "status": "requested", "reason": "Alertes",
                "criteria": format!("Flag?patient=Patient/{muller}"),
                "channel": {"type": "rest-hook", "endpoint": url}
            }),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let flag_sid = r.json()["id"].as_str().unwrap().to_owned();
        let generated = r.json()["extension"][0]["valueString"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(generated.len(), 64);
        let before = calls.lock().unwrap().len();
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &questionnaire(muller, 90),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        eventually("flag notified", async || {
            calls
                .lock()
                .unwrap()
                .iter()
                .skip(before)
                .any(|c| c.header("x-parcours-subscription") == Some(flag_sid.as_str()))
        })
        .await;
        let call = calls
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.header("x-parcours-subscription") == Some(flag_sid.as_str()))
            .cloned()
            .unwrap();
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("POST", "/hook")
        );
        assert!(call.body.is_empty(), "no payload asked, none sent");
        check_signature(&call, &generated);

        // Search: the client's own, filtered by status.
        let list = app
            .get("/fhir/Subscription?status=active", Some(&token))
            .await
            .json();
        assert_eq!(list["total"], 2, "{backend}: {list}");
        // Deleted: 204, then not found, and no more notifications.
        let r = app
            .send_json(
                reqwest::Method::DELETE,
                &format!("/fhir/Subscription/{sid}"),
                &token,
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        assert_eq!(
            app.get(&format!("/fhir/Subscription/{sid}"), Some(&token))
                .await
                .status,
            404
        );
        let before = calls.lock().unwrap().len();
        assert_eq!(
            ack_code(&c.send(admission("s2", "SV2").as_bytes()).await).0,
            "AA"
        );
        // The outbox is empty of new notifications (nothing was enqueued).
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(calls.lock().unwrap().len(), before, "{backend}");
        assert!(
            app.store
                .outbox_pending(server::services::subscriptions::TOPIC, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_then_a_refusal_is_dead() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let (url, calls, status) = subscriber().await;
        status.store(503, std::sync::atomic::Ordering::SeqCst);
        let r = subscribe(
            &app,
            &token,
            json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
                   "criteria": "Encounter", "channel": {"type": "rest-hook", "endpoint": url}}),
        )
        .await;
        let sid = r.json()["id"].as_str().unwrap().to_owned();
        let mut c = Mllp::connect(&app).await;
        assert_eq!(
            ack_code(&c.send(admission("f1", "FV1").as_bytes()).await).0,
            "AA"
        );
        eventually("first attempt", async || calls.lock().unwrap().len() == 1).await;
        // The subscription shows the error; the message waits for its retry.
        eventually("error recorded", async || {
            app.get(&format!("/fhir/Subscription/{sid}"), Some(&token))
                .await
                .json()["status"]
                == "error"
        })
        .await;
        let s = app
            .get(&format!("/fhir/Subscription/{sid}"), Some(&token))
            .await
            .json();
        assert_eq!(s["error"], "l'abonné a répondu HTTP 503", "{backend}: {s}");
        // The subscriber is back: the retry (after its delay) goes through.
        status.store(200, std::sync::atomic::Ordering::SeqCst);
        app.clock.advance_secs(5);
        eventually("retried", async || calls.lock().unwrap().len() == 2).await;
        eventually("active again", async || {
            app.get(&format!("/fhir/Subscription/{sid}"), Some(&token))
                .await
                .json()["status"]
                == "active"
        })
        .await;
        // A refusal (410) is not retried: a dead letter with its reason.
        status.store(410, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            ack_code(&c.send(admission("f2", "FV2").as_bytes()).await).0,
            "AA"
        );
        eventually("dead letter", async || {
            app.store.outbox_dead(10).await.unwrap().iter().any(|m| {
                m.topic == server::services::subscriptions::TOPIC
                    && m.last_error.as_deref() == Some("l'abonné a répondu HTTP 410")
            })
        })
        .await;
        assert_eq!(calls.lock().unwrap().len(), 3, "{backend}");
    }
}

#[tokio::test]
async fn a_websocket_bound_to_its_subscription_is_pinged() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let metadata = app.get("/fhir/metadata", None).await.json();
        let ws_url = metadata["rest"][0]["extension"][0]["valueUri"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ws_url.starts_with("ws://") && ws_url.ends_with("/fhir/Subscription/$websocket"));
        let r = subscribe(
            &app,
            &token,
            json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
                   "criteria": "Task", "channel": {"type": "websocket"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let sid = r.json()["id"].as_str().unwrap().to_owned();
        let hook = subscribe(
            &app,
            &token,
            json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
                   "criteria": "Flag", "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}}),
        )
        .await
        .json();

        // Without a token the upgrade is refused.
        let url = format!(
            "{}/fhir/Subscription/$websocket",
            app.base.replacen("http://", "ws://", 1)
        );
        assert!(tokio_tungstenite::connect_async(url.clone()).await.is_err());
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let say = async |ws: &mut Ws, t: String| ws.send(Message::Text(t.into())).await.unwrap();
        let hear = async |ws: &mut Ws| loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .expect("a message within 10 s")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return t.to_string();
            }
        };
        say(&mut ws, "hello".into()).await;
        assert!(hear(&mut ws).await.starts_with("error"));
        say(&mut ws, format!("bind {}", hook["id"].as_str().unwrap())).await;
        assert!(hear(&mut ws).await.contains("autre canal"), "{backend}");
        say(&mut ws, format!("bind {}", domain::SubscriptionId::new())).await;
        assert!(hear(&mut ws).await.contains("introuvable"));
        say(&mut ws, format!("bind {sid}")).await;
        assert_eq!(hear(&mut ws).await, format!("bound {sid}"));

        let muller = app.demo_patient("Muller").await.id;
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &questionnaire(muller, 90),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(hear(&mut ws).await, format!("ping {sid}"), "{backend}");
    }
}

#[tokio::test]
async fn subscriptions_stay_within_the_client_and_its_establishment() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let hospital = app.token().await;
        let clinic = app
            .client_token("dpi-clinique", server::demo::CLINIC_FINESS)
            .await;
        let (url, calls, _) = subscriber().await;
        let body = |criteria: String| {
            json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
                   "criteria": criteria, "channel": {"type": "rest-hook", "endpoint": url}})
        };
        // The clinic's client watches every stay and alert: of the clinic only.
        let r = subscribe(&app, &clinic, body("Encounter".into())).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let clinic_sid = r.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            subscribe(&app, &clinic, body("Flag".into())).await.status,
            201
        );
        // Another client's subscription is not found, nor deleted.
        assert_eq!(
            app.get(&format!("/fhir/Subscription/{clinic_sid}"), Some(&hospital))
                .await
                .status,
            404
        );
        let r = app
            .send_json(
                reqwest::Method::DELETE,
                &format!("/fhir/Subscription/{clinic_sid}"),
                &hospital,
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            app.get("/fhir/Subscription", Some(&hospital)).await.json()["total"],
            0
        );
        // The hospital's admission and alert reach nobody at the clinic.
        let mut c = Mllp::connect(&app).await;
        assert_eq!(
            ack_code(&c.send(admission("i1", "IV1").as_bytes()).await).0,
            "AA"
        );
        let muller = app.demo_patient("Muller").await.id;
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &hospital,
                &questionnaire(muller, 90),
            )
            .await;
        assert_eq!(r.status, 201);
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert!(calls.lock().unwrap().is_empty(), "{backend}");

        // Refusals, each saying why.
        for (criteria, status, says) in [
            ("Observation".to_owned(), 422, "non pris en charge"),
            ("Encounter?status=finished".to_owned(), 422, "paramètre"),
            (
                format!("Flag?patient=Patient/{}", domain::PatientId::new()),
                422,
                "introuvable",
            ),
        ] {
            let r = subscribe(&app, &hospital, body(criteria.clone())).await;
            assert_eq!(r.status, status, "{backend} {criteria}: {}", r.text);
            assert!(r.outcome().contains(says), "{criteria}: {}", r.text);
        }
        let mut bad = body("Encounter".into());
        bad["channel"]["endpoint"] = json!("file:///etc/passwd");
        assert_eq!(subscribe(&app, &hospital, bad).await.status, 422);
        // A client whose role reads no clinical data may not subscribe.
        let e = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        app.store
            .create_client(
                "lits-only",
                "lits-only",
                &server::auth::hash_secret("lits-only-secret".into())
                    .await
                    .unwrap(),
                e,
                domain::org::Role::BedManager,
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        let beds = app.token_for("lits-only", "lits-only-secret").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = subscribe(&app, &beds, body("Encounter".into())).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
    }
}
