//! Closing a teleconsultation: the note and prescription, the PDF ordonnance,
//! payment through a Stripe-compatible provider (a local stand-in that speaks
//! its API) or at the desk, and the release rule — the patient gets the
//! prescription only once paid (or waived) and approved, on every route.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

use crate::helpers::*;

const SECRET_KEY: &str = "sk_test_parcours";
const WEBHOOK_SECRET: &str = "whsec_parcours_test";

/// A local stand-in for the provider's `POST /v1/checkout/sessions`: checks the
/// bearer key, records the form, answers a session like Stripe does.
struct StandIn {
    base: String,
    requests: Seen,
}

/// What the stand-in was sent: headers and form of each request.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<(String, String)>)>>>;

async fn stand_in() -> StandIn {
    let requests: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let page_base = base.clone();
    let app = axum::Router::new()
        .route(
            "/v1/checkout/sessions",
            post(
                async move |State(seen): State<Seen>, headers: HeaderMap, body: String| {
                    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let mut all = seen.lock().unwrap();
                    all.push((headers, form));
                    if auth != format!("Bearer {SECRET_KEY}") {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(serde_json::json!({"error": {"message": "Invalid API Key provided", "type": "invalid_request_error"}})),
                        );
                    }
                    let id = format!("cs_test_{}", all.len());
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(serde_json::json!({
                            "id": id, "object": "checkout.session",
                            "url": format!("{page_base}/c/pay/{id}"),
                            "payment_status": "unpaid",
                        })),
                    )
                },
            ),
        )
        .with_state(requests.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    StandIn { base, requests }
}

fn form_value<'a>(form: &'a [(String, String)], k: &str) -> &'a str {
    form.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

fn paid_event(session: &str, reference: &str, amount: i64) -> String {
    serde_json::json!({
        "id": format!("evt_{session}_{amount}"), "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": session, "object": "checkout.session",
            "client_reference_id": reference,
            "payment_status": "paid", "amount_total": amount, "currency": "eur",
        }},
    })
    .to_string()
}

impl TestApp {
    async fn webhook(&self, body: &str, signature: &str) -> Resp {
        let r = self
            .http
            .post(self.url("/paiement/webhook"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        read(r).await
    }

    fn sign_now(&self, body: &str) -> String {
        let t = self.clock.now_ms() / 1000;
        format!(
            "t={t},v1={}",
            server::payment::sign(WEBHOOK_SECRET, t, body.as_bytes())
        )
    }
}

async fn app_with_provider(backend: &'static str, api: &str) -> TestApp {
    let api = api.to_owned();
    spawn_app_with(backend, move |c| {
        c.payment_api_url = Some(api);
        c.payment_secret_key = Some(SECRET_KEY.into());
        c.payment_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await
}

/// The demo's video appointment of Mme Lambert with Dr Martin.
async fn video_appointment(app: &TestApp) -> String {
    let lambert = app.demo_patient("Lambert").await;
    app.store
        .appointments_of_patient(lambert.id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.mode == domain::schedule::Mode::Tele)
        .unwrap()
        .id
        .to_string()
}

/// Closes it as Dr Martin with one medication; the closing page's text first.
async fn close_it(app: &TestApp, doctor: &str, id: &str) {
    let form = app
        .get_page(&format!("/consultation/{id}/cloture"), doctor)
        .await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = csrf_field(&form.text);
    let r = app
        .post_form(
            &format!("/consultation/{id}/cloture"),
            &format!("parcours_session={doctor}"),
            &[
                ("csrf", &csrf),
                ("note", "Nausées grade 1, bonne tolérance."),
                ("medicament_1", "Ondansétron 8 mg comprimé"),
                ("dose_1", "1 comprimé"),
                ("frequence_1", "2 fois par jour"),
                ("duree_1", "5 jours"),
                ("texte", "Boire 1,5 litre d'eau par jour."),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(r.header("location").unwrap(), format!("/rdv/{id}"));
}

#[tokio::test]
async fn the_prescription_is_released_after_online_payment_and_approval() {
    use futures_util::StreamExt;
    for backend in BACKENDS {
        let provider = stand_in().await;
        let app = app_with_provider(backend, &provider.base).await;
        let id = video_appointment(&app).await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let doctor = app.login("dr.martin").await;
        let dcookie = format!("parcours_session={doctor}");
        let pcookie = format!("parcours_session={patient}");
        // The room opens to the patient once the doctor lets her in.
        app.let_in(&doctor, &id).await;

        // Only the doctor closes; a partly filled line comes back with what was typed.
        let r = app
            .get_page(&format!("/consultation/{id}/cloture"), &patient)
            .await;
        assert_eq!(r.status, 404, "{backend}");
        let form = app
            .get_page(&format!("/consultation/{id}/cloture"), &doctor)
            .await;
        let csrf = csrf_field(&form.text);
        let r = app
            .post_form(
                &format!("/consultation/{id}/cloture"),
                &dcookie,
                &[
                    ("csrf", &csrf),
                    ("note", "Revue"),
                    ("medicament_1", "Amoxicilline 1 g"),
                    ("dose_1", "1 g"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(
            r.page().contains("ligne 1 : indiquez") && r.page().contains("Amoxicilline 1 g"),
            "{backend}: {}",
            r.text
        );
        assert!(
            app.store
                .consultation(id.parse::<domain::AppointmentId>().unwrap())
                .await
                .is_err(),
            "{backend}: nothing recorded"
        );

        // The patient in the room is told when the doctor closes.
        let mut room = app
            .ws(&format!("/consultation/{id}/ws"), &patient)
            .await
            .unwrap();
        close_it(&app, &doctor, &id).await;
        let closed = loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(2), room.next())
                .await
                .expect("within 2 s")
                .unwrap()
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m
                && t.contains("closed")
            {
                break t.to_string();
            }
        };
        assert_eq!(closed, r#"{"type":"closed"}"#);
        let r = app.get_page(&format!("/consultation/{id}"), &patient).await;
        assert_eq!(
            r.status, 303,
            "{backend}: the room sends to the appointment page"
        );
        let r = app
            .post_form(
                &format!("/consultation/{id}/cloture"),
                &dcookie,
                &[("csrf", &csrf), ("note", "encore")],
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: closed once");

        // Neither paid nor approved: the patient sees neither the lines nor the PDF.
        let page = app.get_page(&format!("/rdv/{id}"), &patient).await.page();
        assert!(
            page.contains("à régler")
                && page
                    .contains("après le règlement de la consultation et la validation du médecin")
                && !page.contains("Ondansétron")
                && !page.contains("Nausées")
                && page.contains("Payer 30,00 € en ligne"),
            "{backend}: {page}"
        );
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
            .await;
        assert_eq!(r.status, 403, "{backend}");
        assert!(r.page().contains("après le règlement"), "{backend}");

        // The doctor has it at once: the PDF carries everything an ordonnance must.
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &doctor)
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.header("content-type").as_deref(), Some("application/pdf"));
        let c = app
            .store
            .consultation(id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap();
        let text = pdf_text(&r.bytes);
        for expected in [
            "Dr Claire Martin",
            "RPPS : ",
            "Clinique Saint-Roch",
            "FINESS : 450000013",
            "LAMBERT",
            "Né(e) le",
            "ORDONNANCE",
            "Ondansétron 8 mg comprimé",
            "1 comprimé — 2 fois par jour — pendant 5 jours",
            "Boire 1,5 litre",
            &format!("N° {}", c.number),
            &format!("/ordonnance/verifier/{}", c.number),
        ] {
            assert!(text.contains(expected), "{backend}: {expected:?} in {text}");
        }
        assert!(
            !text.contains("Nausées"),
            "{backend}: the note stays in the record"
        );

        // Approved but unpaid: still withheld, for the payment now.
        let show = app.get_page(&format!("/rdv/{id}"), &doctor).await;
        let r = app
            .post_form(
                &format!("/rdv/{id}/valider"),
                &dcookie,
                &[("csrf", &csrf_field(&show.text))],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
            .await;
        assert_eq!(r.status, 403, "{backend}");
        assert!(
            r.page().contains("après le règlement de la consultation")
                && !r.page().contains("validation"),
            "{backend}: {}",
            r.text
        );
        // The patient cannot approve it themselves.
        let pshow = app.get_page(&format!("/rdv/{id}"), &patient).await;
        let r = app
            .post_form(
                &format!("/rdv/{id}/valider"),
                &pcookie,
                &[("csrf", &csrf_field(&pshow.text))],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");

        // She pays: a checkout session is opened with the fee, the key, our reference.
        let r = app
            .post_form(
                &format!("/rdv/{id}/paiement"),
                &pcookie,
                &[("csrf", &csrf_field(&pshow.text))],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.page()
                .contains(&format!("href=\"{}/c/pay/cs_test_1\"", provider.base)),
            "{backend}: {}",
            r.text
        );
        {
            let seen = provider.requests.lock().unwrap();
            let (headers, form) = seen.last().unwrap();
            assert_eq!(
                headers.get("authorization").unwrap(),
                &format!("Bearer {SECRET_KEY}")
            );
            assert!(headers.get("idempotency-key").is_some());
            assert!(
                headers.get("stripe-account").is_none(),
                "no account of its own: the platform's"
            );
            assert_eq!(form_value(form, "mode"), "payment");
            assert_eq!(form_value(form, "client_reference_id"), id);
            assert_eq!(
                form_value(form, "line_items[0][price_data][unit_amount]"),
                "3000"
            );
            assert_eq!(
                form_value(form, "line_items[0][price_data][currency]"),
                "eur"
            );
            assert!(
                form_value(form, "success_url").ends_with(&format!("/rdv/{id}?paiement=retour"))
            );
        }
        assert_eq!(
            app.store
                .consultation(id.parse::<domain::AppointmentId>().unwrap())
                .await
                .unwrap()
                .checkout_id
                .as_deref(),
            Some("cs_test_1")
        );
        // Coming back without the webhook proves nothing.
        let back = app
            .get_page(&format!("/rdv/{id}?paiement=retour"), &patient)
            .await
            .page();
        assert!(
            back.contains("en cours de confirmation"),
            "{backend}: {back}"
        );
        assert_eq!(
            app.get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
                .await
                .status,
            403
        );

        // Forged, stale or tampered webhooks settle nothing.
        let body = paid_event("cs_test_1", &id, 3000);
        let r = app.webhook(&body, "t=1,v1=00").await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let stale_t = app.clock.now_ms() / 1000 - 600;
        let stale = format!(
            "t={stale_t},v1={}",
            server::payment::sign(WEBHOOK_SECRET, stale_t, body.as_bytes())
        );
        assert_eq!(app.webhook(&body, &stale).await.status, 400);
        let signature = app.sign_now(&body);
        let cheaper = paid_event("cs_test_1", &id, 100);
        assert_eq!(
            app.webhook(&cheaper, &signature).await.status,
            400,
            "{backend}: signed for another body"
        );
        let r = app.webhook(&cheaper, &app.sign_now(&cheaper)).await;
        assert_eq!(r.status, 422, "{backend}: a payment of 1 € for a 30 € fee");
        assert_eq!(
            app.store
                .consultation(id.parse::<domain::AppointmentId>().unwrap())
                .await
                .unwrap()
                .settled,
            None
        );

        // The provider's genuine confirmation settles it; its retry changes nothing.
        let r = app.webhook(&body, &signature).await;
        assert_eq!(
            (r.status, r.json()["outcome"].as_str()),
            (200, Some("settled")),
            "{backend}"
        );
        let r = app.webhook(&body, &app.sign_now(&body)).await;
        assert_eq!(r.json()["outcome"], "already-settled", "{backend}");
        let other = paid_event("cs_test_9", &id, 3000);
        let r = app.webhook(&other, &app.sign_now(&other)).await;
        assert_eq!(
            r.json()["outcome"],
            "duplicate",
            "{backend}: a second payment, to refund"
        );
        let c = app
            .store
            .consultation(id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap();
        assert_eq!(c.settled, Some(domain::consultation::Method::Card));

        // Paid and approved: the lines and the PDF are hers now.
        let page = app.get_page(&format!("/rdv/{id}"), &patient).await.page();
        assert!(
            page.contains("payé en ligne par carte")
                && page.contains("Ondansétron")
                && page.contains("Télécharger l'ordonnance")
                && !page.contains("Nausées"),
            "{backend}: {page}"
        );
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
            .await;
        assert_eq!(r.status, 200, "{backend}");
        assert!(pdf_text(&r.bytes).contains("Validée par le prescripteur le"));
        // Paying again is refused.
        let r = app
            .post_form(
                &format!("/rdv/{id}/paiement"),
                &pcookie,
                &[("csrf", &csrf_field(&pshow.text))],
            )
            .await;
        assert_eq!(r.status, 409, "{backend}");
        // Every step is in the audit trail under the patient.
        let lambert = app.demo_patient("Lambert").await;
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                establishment: None,
                patient: Some(lambert.id.to_string()),
                before_seq: None,
                limit: 500,
            })
            .await
            .unwrap();
        let on_it: Vec<_> = trail
            .iter()
            .filter(|e| e.resource == format!("Consultation/{id}"))
            .collect();
        assert!(
            on_it
                .iter()
                .any(|e| e.action == "write-clinical" && e.actor_kind == "system"),
            "{backend}: the webhook's settlement"
        );
        assert!(
            on_it
                .iter()
                .filter(|e| e.action == "write-clinical")
                .count()
                >= 3,
            "{backend}: close, approve, settle"
        );
        assert!(
            on_it
                .iter()
                .any(|e| e.action == "read-clinical" && e.actor_kind == "patient"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_desk_settles_and_the_rule_holds_whatever_the_order() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await; // no online payment configured
        let id = video_appointment(&app).await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let doctor = app.login("dr.martin").await;
        let desk = app.login("sec.durand").await;
        close_it(&app, &doctor, &id).await;
        let page = app.get_page(&format!("/rdv/{id}"), &patient).await.page();
        assert!(
            page.contains("Réglez la consultation auprès du secrétariat")
                && !page.contains("en ligne</button>"),
            "{backend}: {page}"
        );
        let pshow = app.get_page(&format!("/rdv/{id}"), &patient).await;
        let r = app
            .post_form(
                &format!("/rdv/{id}/paiement"),
                &format!("parcours_session={patient}"),
                &[("csrf", &csrf_field(&pshow.text))],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: no provider configured");
        // The webhook answers nothing without a provider.
        assert_eq!(app.webhook("{}", "t=1,v1=00").await.status, 404);

        // The desk reaches booking from the patient's page and its agendas from the menu.
        let lambert = app.demo_patient("Lambert").await.id;
        let record = app
            .get_page(&format!("/patients/{lambert}"), &desk)
            .await
            .page();
        assert!(
            record.contains(&format!("href=\"/rdv/prendre?patient={lambert}\""))
                && record.contains("<a href=\"/rdv\">Rendez-vous</a>"),
            "{backend}: {record}"
        );
        let dshow = app.get_page(&format!("/rdv/{id}"), &desk).await;
        assert!(
            dshow.page().contains("Enregistrer le règlement"),
            "{backend}"
        );
        let dcsrf = csrf_field(&dshow.text);
        let settle = async |who: &str, csrf: &str, mode: &str| {
            app.post_form(
                &format!("/rdv/{id}/reglement"),
                &format!("parcours_session={who}"),
                &[("csrf", csrf), ("mode", mode)],
            )
            .await
        };
        assert_eq!(
            settle(&desk, &dcsrf, "card").await.status,
            422,
            "{backend}: a card payment is the provider's word only"
        );
        assert_eq!(settle(&desk, &dcsrf, "cash").await.status, 400);
        // Neither the patient nor the hospital's desk record it.
        assert_eq!(
            settle(&patient, &csrf_field(&pshow.text), "waived")
                .await
                .status,
            404,
            "{backend}"
        );
        let other_desk = app.login("sec.leroy").await;
        let oshow = app.get_page("/rdv", &other_desk).await;
        let r = settle(&other_desk, &csrf_field(&oshow.text), "waived").await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);

        // Paid under tiers payant, not yet approved: withheld for the approval.
        assert_eq!(settle(&desk, &dcsrf, "tiers-payant").await.status, 303);
        assert_eq!(
            settle(&desk, &dcsrf, "desk").await.status,
            409,
            "{backend}: once"
        );
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
            .await;
        assert_eq!(r.status, 403, "{backend}");
        assert!(
            r.page().contains("dès que le médecin l'aura validée"),
            "{backend}: {}",
            r.text
        );
        let page = app.get_page(&format!("/rdv/{id}"), &patient).await.page();
        assert!(
            page.contains("tiers payant") && !page.contains("Ondansétron"),
            "{backend}"
        );
        // The desk sees the state but the doctor alone approves.
        let r = app
            .post_form(
                &format!("/rdv/{id}/valider"),
                &format!("parcours_session={desk}"),
                &[("csrf", &dcsrf)],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");
        let show = app.get_page(&format!("/rdv/{id}"), &doctor).await;
        let r = app
            .post_form(
                &format!("/rdv/{id}/valider"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf_field(&show.text))],
            )
            .await;
        assert_eq!(r.status, 303);
        let r = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &patient)
            .await;
        assert_eq!(r.status, 200, "{backend}");
        // Another patient's account cannot reach it at all.
        let other = app
            .get_page(&format!("/rdv/{id}/ordonnance.pdf"), &desk)
            .await;
        assert_eq!(
            other.status, 200,
            "{backend}: staff who may read the record"
        );
    }
}

#[tokio::test]
async fn a_provider_that_does_not_answer_or_refuses_is_said_plainly() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = app_with_provider("sqlite", &dead).await;
    let id = video_appointment(&app).await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let doctor = app.login("dr.martin").await;
    close_it(&app, &doctor, &id).await;
    let pshow = app.get_page(&format!("/rdv/{id}"), &patient).await;
    let r = app
        .post_form(
            &format!("/rdv/{id}/paiement"),
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&pshow.text))],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.page().contains("momentanément indisponible"));
    assert_eq!(
        app.store
            .consultation(id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap()
            .checkout_id,
        None
    );

    // A provider that refuses the key: its message is shown, nothing recorded.
    let provider = stand_in().await;
    let app = spawn_app_with("sqlite", |c| {
        c.payment_api_url = Some(provider.base.clone());
        c.payment_secret_key = Some("sk_test_wrong".into());
        c.payment_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    let id = video_appointment(&app).await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let doctor = app.login("dr.martin").await;
    close_it(&app, &doctor, &id).await;
    let pshow = app.get_page(&format!("/rdv/{id}"), &patient).await;
    let r = app
        .post_form(
            &format!("/rdv/{id}/paiement"),
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&pshow.text))],
        )
        .await;
    assert_eq!(r.status, 503);
    assert!(
        r.page().contains("HTTP 401") && r.page().contains("Invalid API Key"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_payment_goes_to_the_establishments_own_account_and_only_it_settles() {
    let provider = stand_in().await;
    let app = app_with_provider("sqlite", &provider.base).await;
    app.set_setting(
        server::demo::CLINIC_FINESS,
        "payment_account",
        Some("acct_saintroch"),
    )
    .await;
    let id = video_appointment(&app).await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let doctor = app.login("dr.martin").await;
    close_it(&app, &doctor, &id).await;
    let pshow = app.get_page(&format!("/rdv/{id}"), &patient).await;
    let r = app
        .post_form(
            &format!("/rdv/{id}/paiement"),
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&pshow.text))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    {
        let seen = provider.requests.lock().unwrap();
        let (headers, _) = seen.last().unwrap();
        assert_eq!(
            headers.get("stripe-account").unwrap(),
            "acct_saintroch",
            "opened on the clinic's connected account"
        );
    }
    let settled = async || {
        app.store
            .consultation(id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap()
            .settled
    };
    // Paid on the platform's own account, or another establishment's: not ours.
    let on = |account: Option<&str>| {
        let mut v: serde_json::Value =
            serde_json::from_str(&paid_event("cs_test_1", &id, 3000)).unwrap();
        if let Some(a) = account {
            v["account"] = a.into();
        }
        v.to_string()
    };
    for wrong in [None, Some("acct_autre")] {
        let body = on(wrong);
        let r = app.webhook(&body, &app.sign_now(&body)).await;
        assert_eq!(r.status, 422, "{wrong:?}: {}", r.text);
        assert!(r.text.contains("compte de l'établissement"), "{}", r.text);
        assert_eq!(settled().await, None);
    }
    let body = on(Some("acct_saintroch"));
    let r = app.webhook(&body, &app.sign_now(&body)).await;
    assert_eq!(
        (r.status, r.json()["outcome"].as_str()),
        (200, Some("settled")),
        "{}",
        r.text
    );
    assert!(settled().await.is_some());
}

#[tokio::test]
async fn pharmacists_verify_a_number_without_seeing_the_patient() {
    let app = spawn_app("sqlite").await;
    let id = video_appointment(&app).await;
    let doctor = app.login("dr.martin").await;
    close_it(&app, &doctor, &id).await;
    let c = app
        .store
        .consultation(id.parse::<domain::AppointmentId>().unwrap())
        .await
        .unwrap();
    let anonymous = app
        .get(&format!("/ordonnance/verifier/{}", c.number), None)
        .await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text);
    let page = anonymous.page();
    assert!(
        page.contains("Ordonnance authentique")
            && page.contains("Dr Claire Martin")
            && page.contains("RPPS")
            && page.contains("en attente de validation")
            && !page.contains("Lambert")
            && !page.contains("LAMBERT"),
        "{page}"
    );
    // Typed by hand, in lower case with spaces: found; a wrong number: 404.
    let typed = c.number.to_lowercase().replace('-', " ");
    let r = app
        .get(
            &format!("/ordonnance/verifier?numero={}", typed.replace(' ', "+")),
            None,
        )
        .await;
    assert!(r.page().contains("Ordonnance authentique"), "{}", r.text);
    let r = app
        .get("/ordonnance/verifier/ORD-0000-0000-0000-0000", None)
        .await;
    assert_eq!(r.status, 404);
    assert!(r.page().contains("Aucune ordonnance ne porte ce numéro"));
    let r = app
        .get("/ordonnance/verifier?numero=n'importe+quoi", None)
        .await;
    assert_eq!(r.status, 404);
    let r = app.get("/ordonnance/verifier", None).await;
    assert_eq!(r.status, 200);
    // The lookup is in the patient's audit trail.
    let lambert = app.demo_patient("Lambert").await;
    let trail = app
        .store
        .list_audit(&store::audit::AuditFilter {
            establishment: None,
            patient: Some(lambert.id.to_string()),
            before_seq: None,
            limit: 500,
        })
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.actor_id == "verification-ordonnance")
    );
}

#[tokio::test]
async fn fhir_encounter_medication_request_and_document_reference() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let id = video_appointment(&app).await;
        let doctor = app.login("dr.martin").await;
        close_it(&app, &doctor, &id).await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        app.store
            .create_client(
                "clinic-feed",
                "Flux clinique",
                &server::auth::hash_secret("clinic-secret".into())
                    .await
                    .unwrap(),
                clinic,
                domain::org::Role::Integration,
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        let r = app.token_for("clinic-feed", "clinic-secret").await;
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let lambert = app.demo_patient("Lambert").await.id;
        let get = async |path: String, token: &str| {
            let r = app.get(&path, Some(token)).await;
            assert_eq!(r.status, 200, "{backend} {path}: {}", r.text);
            r.json()
        };
        let enc = get(format!("/fhir/Encounter?patient=Patient/{lambert}"), &token).await;
        let virtual_ = enc["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["class"]["code"] == "VR")
            .expect("a virtual encounter")["resource"]
            .clone();
        assert_eq!(virtual_["id"], id.as_str());
        assert_eq!(virtual_["status"], "finished");
        let read = get(format!("/fhir/Encounter/{id}"), &token).await;
        assert_eq!(read["class"]["code"], "VR");
        let meds = get(
            format!("/fhir/MedicationRequest?patient=Patient/{lambert}"),
            &token,
        )
        .await;
        let m = &meds["entry"][0]["resource"];
        // Read by its id, the same line; the Encounter follows FR Core.
        let one = get(
            format!("/fhir/MedicationRequest/{}", m["id"].as_str().unwrap()),
            &token,
        )
        .await;
        assert_eq!(&one, m, "{backend}");
        assert_eq!(
            read["meta"]["profile"][0],
            "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-encounter"
        );
        let c = app
            .store
            .consultation(id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap();
        assert_eq!(
            (
                m["status"].as_str(),
                m["medicationCodeableConcept"]["text"].as_str(),
                m["groupIdentifier"]["value"].as_str()
            ),
            (
                Some("draft"),
                Some("Ondansétron 8 mg comprimé"),
                Some(c.number.as_str())
            ),
            "{backend}: {meds}"
        );
        let docs = get(
            format!("/fhir/DocumentReference?patient=Patient/{lambert}"),
            &token,
        )
        .await;
        let d = docs["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["type"]["coding"][0]["code"] == "57833-6")
            .expect("the prescription among the documents");
        assert_eq!(d["type"]["coding"][0]["code"], "57833-6");
        use base64::Engine as _;
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(d["content"][0]["attachment"]["data"].as_str().unwrap())
            .unwrap();
        assert!(pdf_text(&pdf).contains("Ondansétron"), "{backend}");
        validate_fhir(&[enc.clone(), read, meds, docs]);
        // The hospital's client sees none of the clinic's consultations.
        let hospital = app.token().await;
        for kind in ["MedicationRequest", "DocumentReference"] {
            let other = get(format!("/fhir/{kind}?patient=Patient/{lambert}"), &hospital).await;
            assert!(
                other["entry"].as_array().is_none_or(|e| e.is_empty()),
                "{backend}: {other}"
            );
        }
        let r = app
            .get(&format!("/fhir/Encounter/{id}"), Some(&hospital))
            .await;
        assert_eq!(r.status, 404, "{backend}");
    }
}
