//! Documents: the secretary drafts from a template, the doctor validates in one
//! click and the document goes to each recipient; the DMP is another Parcours
//! instance acting as MHD Document Recipient (ITI-65 in, ITI-67/68 out); every
//! CDA validates against the schema; the dashboard shows the feed rate and the
//! stragglers with why; an outage of the recipient loses nothing and sends
//! nothing twice.

use std::sync::{Arc, Mutex};

use crate::helpers::*;

/// Lambert's INS (the demo's first patient, qualified, the same on every instance).
async fn ins_of(app: &TestApp) -> String {
    app.demo_patient("Lambert").await.ins.unwrap().value()
}

/// A letter (`fixture`, one of `shared/fixtures/cda/examples`) for Mme Lambert
/// submitted by ITI-65 to `to` with `token`, titled `title`: the CDA, its header
/// and the answer.
async fn submit_letter(
    to: &TestApp,
    token: &str,
    fixture: &str,
    title: &str,
) -> (Vec<u8>, interop::cda::CdaHeader, Resp) {
    let ins = ins_of(to).await;
    let cda = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/cda/examples")
            .join(fixture),
    )
    .unwrap();
    let header = interop::cda::read_header(&cda).unwrap();
    let submission = uuid::Uuid::new_v4().to_string();
    let bundle = interop::fhir::mhd::provide_bundle(&interop::fhir::mhd::Submission {
        unique_id: &header.unique_id,
        submission_id: &submission,
        ins: (&ins, "1.2.250.1.213.1.4.8"),
        author: (Some("10000012345"), "Dr Externe"),
        custodian: ("450000013", "Clinique"),
        type_code: ("11490-0", "Lettre de liaison"),
        class_code: ("11", "Synthèse"),
        title,
        date_ms: to.clock.now_ms(),
        period_start_ms: to.clock.now_ms(),
        cda: &cda,
        replaces: None,
    });
    let r = to
        .http
        .post(to.url("/fhir"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap();
    (cda, header, read(r).await)
}

/// Drafts a lettre de liaison for Lambert as the clinic's secretary; its id.
async fn draft(app: &TestApp) -> String {
    let lambert = app.demo_patient("Lambert").await.id;
    let desk = app.login("sec.durand").await;
    let page = app
        .get_page(&format!("/patients/{lambert}/documents"), &desk)
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let r = app
        .post_form(
            &format!("/patients/{lambert}/documents"),
            &format!("parcours_session={desk}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("type", "lettre-liaison"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    r.header("location")
        .unwrap()
        .trim_start_matches("/documents/")
        .to_owned()
}

/// Validates as Dr Martin with the default recipients and a GP address.
async fn validate(app: &TestApp, doctor: &str, id: &str) -> Resp {
    let page = app.get_page(&format!("/documents/{id}"), doctor).await;
    app.post_form(
        &format!("/documents/{id}/valider"),
        &format!("parcours_session={doctor}"),
        &[
            ("csrf", &csrf_field(&page.text)),
            ("titre", "Lettre de liaison à la sortie"),
            (
                "texte",
                "Motif : chimiothérapie orale.\nSuites : revoir dans un mois.",
            ),
            ("dest_patient", "1"),
            ("dest_gp", "1"),
            ("dest_dmp", "1"),
            ("adresse_gp", "dr.generaliste@medecin.mssante.fr"),
        ],
    )
    .await
}

#[test]
fn the_validator_workaround_is_only_about_urn_uuid_attachment_urls() {
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../../shared/fixtures/fhir/pdsm/Bundle-example-td2-iti65-lot-soumission.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    // The ANS example passes once its urn:uuid attachment URL is spelled as a URL.
    validate_fhir(&[for_validator(&sample)]);
}

async fn recipient_state(
    app: &TestApp,
    id: &str,
    r: domain::documents::Recipient,
) -> (String, Option<String>, i64) {
    let all = app
        .store
        .recipients_of(id.parse::<domain::DocumentId>().unwrap())
        .await
        .unwrap();
    let x = all.into_iter().find(|x| x.recipient == r).unwrap();
    (x.state, x.detail, x.attempts)
}

#[tokio::test]
async fn drafted_validated_and_delivered_to_another_instance_as_dmp() {
    use domain::documents::Recipient;
    for backend in BACKENDS {
        // The DMP stand-in: another Parcours, its clinic client for the sender.
        let (dmp, app) = spawn_with_dmp(backend, |_| {}).await;
        let id = draft(&app).await;
        let doctor = app.login("dr.martin").await;
        let desk = app.login("sec.durand").await;
        // The draft starts from the template, filled from the record.
        let page = app
            .get_page(&format!("/documents/{id}"), &desk)
            .await
            .page();
        assert!(
            page.contains("LAMBERT Monique")
                && page.contains("Suites à donner :")
                && page.contains("Un médecin validera"),
            "{backend}: {page}"
        );
        assert!(
            !page.contains("Valider et envoyer"),
            "{backend}: the secretary does not validate"
        );
        let r = app
            .post_form(
                &format!("/documents/{id}/valider"),
                &format!("parcours_session={desk}"),
                &[
                    ("csrf", &csrf_field(&page)),
                    ("titre", "x"),
                    ("texte", "y"),
                    ("dest_dmp", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        // No recipient, or a bad address: said, nothing sent.
        let dpage = app.get_page(&format!("/documents/{id}"), &doctor).await;
        let r = app
            .post_form(
                &format!("/documents/{id}/valider"),
                &format!("parcours_session={doctor}"),
                &[
                    ("csrf", &csrf_field(&dpage.text)),
                    ("titre", "Lettre"),
                    ("texte", "Texte"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("au moins un destinataire"));
        let r = app
            .post_form(
                &format!("/documents/{id}/valider"),
                &format!("parcours_session={doctor}"),
                &[
                    ("csrf", &csrf_field(&dpage.text)),
                    ("titre", "Lettre"),
                    ("texte", "Texte gardé"),
                    ("dest_gp", "1"),
                    ("adresse_gp", "pas une adresse"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(
            r.page().contains("adresse de messagerie invalide") && r.page().contains("Texte gardé")
        );

        // One click: validated and sent.
        let r = validate(&app, &doctor, &id).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        assert_eq!(
            validate(&app, &doctor, &id).await.status,
            409,
            "{backend}: once"
        );
        let cda = app
            .store
            .document_content(id.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cda.0, "text/xml");
        validate_cda(&cda.1);
        let bundle: serde_json::Value = serde_json::from_str(
            &app.store
                .outbox_message(&format!("doc:{id}:dmp"))
                .await
                .unwrap()
                .unwrap()
                .payload,
        )
        .unwrap();
        validate_fhir(&[for_validator(&bundle)]);
        eventually("the DMP stand-in acknowledges", async || {
            recipient_state(&app, &id, Recipient::Dmp).await.0 == "delivered"
        })
        .await;
        eventually("the patient's notice leaves", async || {
            recipient_state(&app, &id, Recipient::Patient).await.0 == "delivered"
        })
        .await;
        assert_eq!(
            recipient_state(&app, &id, Recipient::Gp).await,
            (
                "waiting".into(),
                Some("messagerie non configurée (PARCOURS_SMTP_URL)".into()),
                0
            ),
            "{backend}"
        );

        // On the DMP side: ITI-67 finds it by INS, ITI-68 gives the CDA back.
        let token = dmp
            .token_for("hospital-feed", "hospital-feed-secret")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let ins = ins_of(&dmp).await;
        let found = dmp
            .get(
                &format!(
                    "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"
                ),
                Some(&token),
            )
            .await;
        assert_eq!(found.status, 200, "{backend}: {}", found.text);
        let found = found.json();
        let entry = found["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["type"]["coding"][0]["code"] == "11490-0")
            .expect("the letter is in the DMP")["resource"]
            .clone();
        validate_fhir(std::slice::from_ref(&found));
        let url = entry["content"][0]["attachment"]["url"].as_str().unwrap();
        // The test servers listen on port 0 (their public URL says so): the path.
        assert!(
            url.ends_with(&format!("/fhir/Binary/{}", entry["id"].as_str().unwrap())),
            "{url}"
        );
        let path = url.get(url.find("/fhir/").unwrap()..).unwrap();
        let binary = dmp.get(path, Some(&token)).await;
        assert_eq!(binary.status, 200, "{backend}: {url}");
        assert_eq!(binary.bytes, cda.1, "{backend}: the CDA as sent");
        // The search gives the size and hash stored with the content (the
        // digest's own test checks it against known SHA-1 values).
        let digest = store::documents::Digest::of(&binary.bytes);
        assert_eq!(
            (
                &entry["content"][0]["attachment"]["size"],
                &entry["content"][0]["attachment"]["hash"]
            ),
            (
                &serde_json::json!(digest.size),
                &serde_json::json!(digest.sha1)
            ),
            "{backend}"
        );
        // Resending the same bundle files nothing twice.
        let again = dmp
            .http
            .post(dmp.url("/fhir"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .unwrap();
        let again = read(again).await;
        assert_eq!(again.status, 200, "{backend}: {}", again.text);
        let lambert_there = dmp.demo_patient("Lambert").await.id;
        let received: Vec<_> = dmp
            .store
            .documents_of_patient(lambert_there)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.source == "mhd")
            .collect();
        assert_eq!(received.len(), 1, "{backend}");

        // The patient downloads it from the portal.
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let mine = app.get_page("/mes-documents", &patient).await.page();
        assert!(
            mine.contains("Lettre de liaison à la sortie"),
            "{backend}: {mine}"
        );
        let pdf = app
            .get_page(&format!("/documents/{id}/pdf"), &patient)
            .await;
        assert_eq!(pdf.status, 200, "{backend}");
        assert!(pdf_text(&pdf.bytes).contains("revoir dans un mois"));
        assert_eq!(
            app.get_page(&format!("/documents/{id}/cda"), &patient)
                .await
                .status,
            404
        );

        // The dashboard: this letter pushed, the demo's report still waiting for
        // an MHD recipient (validated before one was configured): 1 of 2
        // eligible, under the target; the GP's copy waiting, with why.
        let board = app.get_page("/documents", &desk).await.page();
        assert!(
            board.contains("50,0 %")
                && board.contains("1 envoyés sur 2 éligibles")
                && board.contains("non atteint")
                && board.contains("messagerie non configurée")
                && board.contains("aucun destinataire MHD configuré"),
            "{backend}: {board}"
        );
        // A validated document is not edited any more.
        let r = app
            .post_form(
                &format!("/documents/{id}"),
                &format!("parcours_session={desk}"),
                &[
                    ("csrf", &csrf_field(&board)),
                    ("titre", "x"),
                    ("texte", "y"),
                ],
            )
            .await;
        assert_eq!(r.status, 409, "{backend}");
    }
}

#[tokio::test]
async fn the_dmp_is_skipped_with_the_reason_when_the_patient_opposes() {
    use domain::documents::Recipient;
    let app = spawn_app_with("sqlite", |c| {
        c.mhd_destination = Some("http://127.0.0.1:9/fhir".into())
    })
    .await;
    let lambert = app.demo_patient("Lambert").await.id;
    let doctor = app.login("dr.martin").await;
    // The doctor records the opposition on the patient's documents page.
    let page = app
        .get_page(&format!("/patients/{lambert}/documents"), &doctor)
        .await;
    let r = app
        .post_form(
            &format!("/patients/{lambert}/dmp"),
            &format!("parcours_session={doctor}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("etat", "active"),
                ("opposition", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = app
        .get_page(&format!("/patients/{lambert}/documents"), &doctor)
        .await
        .page();
    assert!(
        page.contains("DMP ouvert — opposition à l'alimentation"),
        "{page}"
    );
    let banner = app
        .get_page(&format!("/patients/{lambert}"), &doctor)
        .await
        .page();
    assert!(
        banner.contains("DMP ouvert (opposition à l'alimentation)"),
        "{banner}"
    );
    let id = draft(&app).await;
    assert_eq!(validate(&app, &doctor, &id).await.status, 303);
    let (state, why, _) = recipient_state(&app, &id, Recipient::Dmp).await;
    assert_eq!(
        (state.as_str(), why.as_deref()),
        (
            "skipped",
            Some("le patient s'est opposé à l'alimentation de son DMP")
        )
    );
    assert!(
        app.store
            .outbox_message(&format!("doc:{id}:dmp"))
            .await
            .unwrap()
            .is_none(),
        "nothing sent"
    );
    let desk = app.login("sec.durand").await;
    let board = app.get_page("/documents", &desk).await.page();
    assert!(
        // Not eligible, so not counted: only the demo's report (waiting) is.
        board.contains("opposé") && board.contains("0 envoyés sur 1 éligibles"),
        "{board}"
    );
}

#[tokio::test]
async fn a_recipient_outage_loses_nothing_and_sends_nothing_twice() {
    use axum::routing::post;
    use domain::documents::Recipient;
    // A recipient that fails with 503 until told to come back, counting POSTs.
    let up = Arc::new(Mutex::new(false));
    let posts = Arc::new(Mutex::new(0usize));
    let (u, p) = (up.clone(), posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let recipient = axum::Router::new().route(
        "/fhir",
        post(async move || {
            *p.lock().unwrap() += 1;
            if *u.lock().unwrap() {
                (axum::http::StatusCode::OK, r#"{"resourceType":"Bundle","type":"transaction-response"}"#)
            } else {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"maintenance"}]}"#)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, recipient).await.unwrap() });
    let app = spawn_app_with("sqlite", move |c| {
        c.mhd_destination = Some(format!("{base}/fhir"))
    })
    .await;
    let doctor = app.login("dr.martin").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = draft(&app).await;
        assert_eq!(validate(&app, &doctor, &id).await.status, 303);
        ids.push(id);
    }
    // Down: each is tried, fails, waits (backoff on the app's clock).
    eventually("three failed attempts", async || {
        *posts.lock().unwrap() >= 3
    })
    .await;
    for id in &ids {
        // The worker records the failure just after the recipient answers.
        eventually("the failure recorded", async || {
            recipient_state(&app, id, Recipient::Dmp).await.2 >= 1
        })
        .await;
        let (state, why, _) = recipient_state(&app, id, Recipient::Dmp).await;
        assert_eq!(
            (state.as_str(), why.as_deref()),
            ("pending", Some("HTTP 503 : maintenance"))
        );
    }
    // Several minutes later it is back: everything goes, once.
    *up.lock().unwrap() = true;
    app.clock.advance_secs(600);
    for id in &ids {
        eventually("delivered after the outage", async || {
            recipient_state(&app, id, Recipient::Dmp).await.0 == "delivered"
        })
        .await;
    }
    let after = *posts.lock().unwrap();
    app.clock.advance_secs(3600);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        *posts.lock().unwrap(),
        after,
        "nothing sent again once delivered"
    );
    assert!(app.store.outbox_dead(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_mhd_recipient_refuses_what_it_cannot_file() {
    let app = spawn_app("sqlite").await;
    let token = app.client_token("feed", server::demo::CLINIC_FINESS).await;
    let ins = ins_of(&app).await;
    let cda = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
    let bundle = |ins: &str| {
        interop::fhir::mhd::provide_bundle(&interop::fhir::mhd::Submission {
            unique_id: "urn:uuid:11111111-2222-4333-8444-555555555555",
            submission_id: "21111111-2222-4333-8444-555555555555",
            ins: (ins, "1.2.250.1.213.1.4.8"),
            author: (Some("10000012345"), "Dr Externe"),
            custodian: ("450000013", "Clinique"),
            type_code: ("34874-8", "CR opératoire"),
            class_code: ("10", "Compte rendu"),
            title: "CR opératoire",
            date_ms: app.clock.now_ms(),
            period_start_ms: app.clock.now_ms(),
            cda,
            replaces: None,
        })
    };
    let post = async |body: String, token: Option<&str>| {
        let mut r = app
            .http
            .post(app.url("/fhir"))
            .header("content-type", "application/fhir+json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        read(r.send().await.unwrap()).await
    };
    assert_eq!(post(bundle(&ins).to_string(), None).await.status, 401);
    let unknown = post(bundle("279035121518989").to_string(), Some(&token)).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert!(unknown.text.contains("aucune identité qualifiée"));
    let mut tampered = bundle(&ins);
    tampered["entry"][1]["resource"]["content"][0]["attachment"]["hash"] =
        serde_json::json!("AAAA");
    let r = post(tampered.to_string(), Some(&token)).await;
    assert_eq!(r.status, 422);
    assert!(r.text.contains("SHA-1"));
    assert_eq!(post("{".into(), Some(&token)).await.status, 400);
    let ok = post(bundle(&ins).to_string(), Some(&token)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ok = ok.json();
    assert_eq!(ok["type"], "transaction-response");
    let filed = ok["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = post(bundle(&ins).to_string(), Some(&token)).await.json();
    assert_eq!(
        again["entry"][0]["response"]["location"],
        filed.as_str(),
        "filed once"
    );
    // The hospital's client (another establishment) cannot read it.
    let hospital = app.token().await;
    let r = app.get(&format!("/fhir/{filed}"), Some(&hospital)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app.get(&format!("/fhir/{filed}"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    validate_fhir(&[r.json()]);
}

#[tokio::test]
async fn fhir_document_reference_search_returns_the_demo_documents() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app
            .client_token("clinic-feed", server::demo::CLINIC_FINESS)
            .await;
        let lambert = app.demo_patient("Lambert").await.id;
        let r = app
            .get(
                &format!("/fhir/DocumentReference?patient=Patient/{lambert}"),
                Some(&token),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let b = r.json();
        let docs: Vec<&serde_json::Value> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .collect();
        assert_eq!(
            docs.len(),
            1,
            "{backend}: the validated report, not the draft: {b}"
        );
        assert_eq!(docs[0]["type"]["coding"][0]["code"], "11488-4");
        assert_eq!(docs[0]["docStatus"], "final");
        validate_fhir(std::slice::from_ref(&b));
        let id = docs[0]["id"].as_str().unwrap();
        // ITI-66: its submission set points at it.
        let sets = app
            .get(
                &format!("/fhir/List?patient=Patient/{lambert}"),
                Some(&token),
            )
            .await;
        assert_eq!(sets.status, 200, "{backend}: {}", sets.text);
        let sets = sets.json();
        assert_eq!(
            sets["entry"][0]["resource"]["entry"][0]["item"]["reference"],
            format!("DocumentReference/{id}"),
            "{backend}: {sets}"
        );
        assert_eq!(
            sets["entry"][0]["resource"]["code"]["coding"][0]["code"],
            "submissionset"
        );
        validate_fhir(std::slice::from_ref(&sets));
        // Read by its id (ss-{document}): the same set; the hospital's client
        // is not told it exists.
        let set = &sets["entry"][0]["resource"];
        let path = format!("/fhir/List/{}", set["id"].as_str().unwrap());
        let one = app.get(&path, Some(&token)).await;
        assert_eq!(one.status, 200, "{backend}: {}", one.text);
        assert_eq!(&one.json(), set);
        let hospital = app.token().await;
        assert_eq!(
            app.get(&path, Some(&hospital)).await.status,
            404,
            "{backend}"
        );
        assert_eq!(app.get("/fhir/List/nope", Some(&token)).await.status, 404);
        let none = app
            .get(
                &format!("/fhir/List?patient=Patient/{lambert}"),
                Some(&hospital),
            )
            .await
            .json();
        assert!(
            none["entry"].as_array().is_none_or(|e| e.is_empty()),
            "{backend}: {none}"
        );
        let cda = app.get(&format!("/fhir/Binary/{id}"), Some(&token)).await;
        assert_eq!(cda.status, 200);
        validate_cda(&cda.bytes);
        // The patient sees it on the portal; the draft is not hers to see.
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let mine = app.get_page("/mes-documents", &patient).await.page();
        assert!(
            mine.contains("Compte rendu de consultation") && !mine.contains("Lettre de liaison"),
            "{backend}: {mine}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_shows_each_units_documents_and_feed_rate() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let desk = app.login("sec.durand").await;
        let cookie = format!("parcours_session={desk}");
        let page = app
            .get_page(&format!("/patients/{lambert}/documents"), &desk)
            .await
            .page();
        assert!(
            page.contains("<option value=\"CHIR\">Chirurgie</option>"),
            "{page}"
        );
        // A unit the clinic does not have is refused, with why.
        let r = app
            .post_form(
                &format!("/patients/{lambert}/documents"),
                &cookie,
                &[
                    ("csrf", &csrf_field(&page)),
                    ("type", "cr-operatoire"),
                    ("unite", "CARDIO"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(
            r.page()
                .contains("unité inconnue dans cet établissement : CARDIO")
        );
        // Written for surgery, validated: surgery's board shows it, oncology's does not.
        let r = app
            .post_form(
                &format!("/patients/{lambert}/documents"),
                &cookie,
                &[
                    ("csrf", &csrf_field(&page)),
                    ("type", "cr-operatoire"),
                    ("unite", "CHIR"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let id = r
            .header("location")
            .unwrap()
            .trim_start_matches("/documents/")
            .to_owned();
        assert_eq!(
            app.store
                .document(id.parse::<domain::DocumentId>().unwrap())
                .await
                .unwrap()
                .unit
                .as_deref(),
            Some("CHIR")
        );
        let doctor = app.login("dr.martin").await;
        assert_eq!(validate(&app, &doctor, &id).await.status, 303, "{backend}");
        let chir = app.get_page("/documents?unite=CHIR", &desk).await.page();
        assert!(
            chir.contains(&format!("/documents/{id}")),
            "{backend}: {chir}"
        );
        assert!(chir.contains("<option value=\"CHIR\" selected>"), "{chir}");
        // No MHD recipient configured here: eligible, not pushed.
        assert!(chir.contains("0 envoyés sur 1 éligibles"), "{chir}");
        let onco = app
            .get_page("/documents?unite=HDJ-ONCO", &desk)
            .await
            .page();
        assert!(!onco.contains(&format!("/documents/{id}")), "{backend}");
        // The demo's consultation report is oncology's.
        assert!(onco.contains("Compte rendu de consultation"), "{onco}");
        let all = app.get_page("/documents", &desk).await.page();
        assert!(
            all.contains(&format!("/documents/{id}"))
                && all.contains("Compte rendu de consultation")
        );
        assert_eq!(
            app.get_page("/documents?unite=CARDIO", &desk).await.status,
            404
        );
    }
}

#[tokio::test]
async fn a_correction_replaces_the_validated_version_everywhere_it_went() {
    for backend in BACKENDS {
        let (dmp, app) = spawn_with_dmp(backend, |_| {}).await;
        let v1 = draft(&app).await;
        let doctor = app.login("dr.martin").await;
        let desk = app.login("sec.durand").await;
        assert_eq!(validate(&app, &doctor, &v1).await.status, 303);
        let first = app
            .store
            .document(v1.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap();
        eventually("the DMP has version 1", async || {
            dmp.store
                .document_by_unique_id(&first.unique_id)
                .await
                .unwrap()
                .is_some()
        })
        .await;

        // Only a doctor corrects; twice gives the same draft.
        let page = app
            .get_page(&format!("/documents/{v1}"), &doctor)
            .await
            .page();
        assert!(page.contains("Corriger (nouvelle version)"), "{backend}");
        let dpage = app
            .get_page(&format!("/documents/{v1}"), &desk)
            .await
            .page();
        assert!(!dpage.contains("Corriger (nouvelle version)"));
        let r = app
            .post_form(
                &format!("/documents/{v1}/corriger"),
                &format!("parcours_session={desk}"),
                &[("csrf", &csrf_field(&dpage))],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}");
        let correct = async || {
            app.post_form(
                &format!("/documents/{v1}/corriger"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf_field(&page))],
            )
            .await
        };
        let r = correct().await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let v2 = r
            .header("location")
            .unwrap()
            .trim_start_matches("/documents/")
            .to_owned();
        assert_eq!(
            correct().await.header("location").unwrap(),
            format!("/documents/{v2}"),
            "the draft already started"
        );
        let second = app
            .store
            .document(v2.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap();
        assert_eq!(
            (
                second.set_id.as_str(),
                second.version,
                second.replaces.map(|d| d.to_string())
            ),
            (first.set_id.as_str(), 2, Some(v1.clone()))
        );
        assert_ne!(second.unique_id, first.unique_id);
        assert!(
            app.get_page(&format!("/documents/{v2}"), &doctor)
                .await
                .page()
                .contains("version 2")
        );

        // Validated: the CDA names what it replaces, the bundle says so, the DMP marks it.
        assert_eq!(validate(&app, &doctor, &v2).await.status, 303, "{backend}");
        let (_, cda) = app
            .store
            .document_content(v2.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap()
            .unwrap();
        validate_cda(&cda);
        let text = String::from_utf8(cda).unwrap();
        assert!(
            text.contains(&format!(
                "<relatedDocument typeCode=\"RPLC\"><parentDocument><id root=\"{}\"/>",
                first.unique_id.trim_start_matches("urn:uuid:")
            )) && text.contains("<versionNumber value=\"2\"/>"),
            "{backend}"
        );
        let bundle: serde_json::Value = serde_json::from_str(
            &app.store
                .outbox_message(&format!("doc:{v2}:dmp"))
                .await
                .unwrap()
                .unwrap()
                .payload,
        )
        .unwrap();
        validate_fhir(&[for_validator(&bundle)]);
        assert_eq!(
            bundle["entry"][1]["resource"]["relatesTo"][0]["code"],
            "replaces"
        );
        assert_eq!(
            bundle["entry"][1]["resource"]["relatesTo"][0]["target"]["identifier"]["value"],
            first.unique_id.as_str()
        );
        assert_eq!(
            app.store
                .document(v1.parse::<domain::DocumentId>().unwrap())
                .await
                .unwrap()
                .superseded_by
                .map(|d| d.to_string()),
            Some(v2.clone())
        );
        eventually("the DMP replaces version 1", async || {
            dmp.store
                .document_by_unique_id(&first.unique_id)
                .await
                .unwrap()
                .is_some_and(|d| d.superseded_by.is_some())
        })
        .await;
        let token = dmp
            .token_for("hospital-feed", "hospital-feed-secret")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let ins = ins_of(&dmp).await;
        let found = dmp
            .get(
                &format!(
                    "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"
                ),
                Some(&token),
            )
            .await
            .json();
        validate_fhir(std::slice::from_ref(&found));
        let status_of = |uid: &str| {
            found["entry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["resource"]["masterIdentifier"]["value"] == uid)
                .map(|e| e["resource"]["status"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            status_of(&first.unique_id).as_deref(),
            Some("superseded"),
            "{backend}"
        );
        assert_eq!(
            status_of(&second.unique_id).as_deref(),
            Some("current"),
            "{backend}"
        );
        // Its one change is its version: 2 once superseded.
        let version_of = |uid: &str| {
            found["entry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["resource"]["masterIdentifier"]["value"] == uid)
                .map(|e| e["resource"]["meta"]["versionId"].clone())
        };
        assert_eq!(
            version_of(&first.unique_id),
            Some(serde_json::json!("2")),
            "{backend}"
        );
        assert_eq!(
            version_of(&second.unique_id),
            Some(serde_json::json!("1")),
            "{backend}"
        );

        // Replaced once: no second correction of version 1; its page says where the new one is.
        assert_eq!(correct().await.status, 409, "{backend}");
        let old = app
            .get_page(&format!("/documents/{v1}"), &doctor)
            .await
            .page();
        assert!(old.contains(&format!(
            "<a href=\"/documents/{v2}\">une version corrigée</a>"
        )));
        // The patient sees the current version only.
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let mine = app.get_page("/mes-documents", &patient).await.page();
        assert!(
            mine.contains(&format!("/documents/{v2}/pdf")),
            "{backend}: {mine}"
        );
        assert!(!mine.contains(&format!("/documents/{v1}/pdf")), "{backend}");
    }
}

#[tokio::test]
async fn each_establishment_sends_to_its_own_mhd_recipient_with_its_own_client() {
    use axum::routing::post;
    use domain::documents::Recipient;
    // The clinic's DMP gateway: a token endpoint that knows one client, and
    // a recipient that files what bears its token.
    type Seen = Arc<Mutex<Vec<String>>>;
    let (tokens, bearers): (Seen, Seen) = Default::default();
    let (t, b) = (tokens.clone(), bearers.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let gateway = axum::Router::new()
        .route(
            "/token",
            post(async move |body: String| {
                let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
                let get = |k: &str| {
                    form.iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                t.lock()
                    .unwrap()
                    .push(format!("{}:{}", get("client_id"), get("client_secret")));
                if (get("client_id"), get("client_secret"))
                    == ("clinique-dmp".into(), "le-secret-de-la-clinique".into())
                {
                    (
                        axum::http::StatusCode::OK,
                        r#"{"access_token":"tok-clinique","token_type":"Bearer","expires_in":3600}"#,
                    )
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#)
                }
            }),
        )
        .route(
            "/fhir",
            post(async move |headers: axum::http::HeaderMap| {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let ok = auth == "Bearer tok-clinique";
                b.lock().unwrap().push(auth);
                if ok {
                    (axum::http::StatusCode::OK, r#"{"resourceType":"Bundle","type":"transaction-response"}"#)
                } else {
                    (axum::http::StatusCode::UNAUTHORIZED, r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"security","diagnostics":"jeton"}]}"#)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, gateway).await.unwrap() });
    // The instance has no MHD recipient of its own.
    let app = spawn_app("sqlite").await;
    let doctor = app.login("dr.martin").await;
    let first = draft(&app).await;
    assert_eq!(validate(&app, &doctor, &first).await.status, 303);
    let (state, why, _) = recipient_state(&app, &first, Recipient::Dmp).await;
    assert_eq!(state, "waiting");
    assert!(why.unwrap().contains("aucun destinataire MHD configuré"));

    // The clinic's file names its recipient and token endpoint but not yet
    // its client: the submission waits, with what is missing.
    let clinic = server::demo::CLINIC_FINESS;
    app.set_setting(clinic, "mhd_recipient", Some(&format!("{base}/fhir")))
        .await;
    app.set_setting(clinic, "mhd_token_url", Some(&format!("{base}/token")))
        .await;
    let second = draft(&app).await;
    assert_eq!(validate(&app, &doctor, &second).await.status, 303);
    eventually("the attempt recorded", async || {
        recipient_state(&app, &second, Recipient::Dmp).await.2 >= 1
    })
    .await;
    let (state, why, _) = recipient_state(&app, &second, Recipient::Dmp).await;
    assert_eq!(state, "pending");
    assert!(
        why.as_deref()
            .unwrap()
            .contains("mhd_client_id et mhd_client_secret_file manquent"),
        "{why:?}"
    );
    assert!(
        bearers.lock().unwrap().is_empty(),
        "nothing sent unauthenticated"
    );

    // Completed (the secret read from its file): the retry goes with the
    // clinic's token, fetched once for both documents.
    let secret = std::env::temp_dir().join(format!("parcours-mhd-{}", uuid::Uuid::new_v4()));
    std::fs::write(&secret, "le-secret-de-la-clinique\n").unwrap();
    app.set_setting(clinic, "mhd_client_id", Some("clinique-dmp"))
        .await;
    app.set_setting(
        clinic,
        "mhd_client_secret_file",
        Some(secret.to_str().unwrap()),
    )
    .await;
    let third = draft(&app).await;
    assert_eq!(validate(&app, &doctor, &third).await.status, 303);
    app.clock.advance_secs(600);
    for id in [&second, &third] {
        eventually("delivered to the clinic's recipient", async || {
            recipient_state(&app, id, Recipient::Dmp).await.0 == "delivered"
        })
        .await;
    }
    assert_eq!(
        *tokens.lock().unwrap(),
        ["clinique-dmp:le-secret-de-la-clinique"],
        "one token for both"
    );
    assert_eq!(
        *bearers.lock().unwrap(),
        ["Bearer tok-clinique", "Bearer tok-clinique"]
    );
    let _ = std::fs::remove_file(secret);
}

/// A CDA received by MHD on Parcours's own recipient goes on to the patient's
/// DMP when it is fed (as a mailed one does); a PDF alone is filed, not sent.
#[tokio::test]
async fn a_document_received_by_mhd_is_forwarded_to_the_dmp() {
    use domain::documents::Recipient;
    for backend in BACKENDS {
        let (dmp, app) = spawn_with_dmp(backend, |_| {}).await;
        let token = app.client_token("feed", server::demo::CLINIC_FINESS).await;
        let (_, header, r) = submit_letter(
            &app,
            &token,
            "DOC_NON_STRUCTURE_CDA-R2-N1.xml",
            "Lettre de liaison reçue",
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let location = r.json()["entry"][0]["response"]["location"]
            .as_str()
            .unwrap()
            .to_owned();
        let id = location.trim_start_matches("DocumentReference/").to_owned();
        eventually("the received CDA reaches the DMP", async || {
            recipient_state(&app, &id, Recipient::Dmp).await.0 == "delivered"
        })
        .await;
        let there = dmp
            .store
            .document_by_unique_id(&header.unique_id)
            .await
            .unwrap()
            .expect("filed in the DMP stand-in");
        assert_eq!(there.title, "Lettre de liaison reçue", "{backend}");
        let payload = app
            .store
            .outbox_message(&format!("mhd:{}:dmp", header.unique_id))
            .await
            .unwrap()
            .unwrap()
            .payload;
        assert!(
            payload.contains(&header.author),
            "{backend}: the author read from the CDA header"
        );
    }
}

/// D9: from the patient's page a doctor lists what the DMP (here another
/// Parcours as MHD responder) holds for the patient, opens a structured CDA as
/// text, files a copy in the record; every consultation audited. A patient
/// whose identity is not qualified cannot be looked up by INS.
#[tokio::test]
async fn a_doctor_reads_the_dmp_from_the_record_and_files_a_copy() {
    for backend in BACKENDS {
        // The DMP stand-in: its links must name its real address (ITI-68).
        let port = free_port();
        let dmp = spawn_app_with(backend, move |c| c.listen = format!("127.0.0.1:{port}")).await;
        let feed = dmp
            .client_token("hospital-feed", server::demo::CLINIC_FINESS)
            .await;
        let base = dmp.base.clone();
        let app = spawn_app_with(backend, move |c| {
            c.mhd_destination = Some(format!("{base}/fhir"));
            c.mhd_token_url = Some(format!("{base}/oauth/token"));
            c.mhd_client_id = Some("hospital-feed".into());
            c.mhd_client_secret = Some("hospital-feed-secret".into());
        })
        .await;
        // Someone else's letter in her DMP.
        let (cda, header, r) = submit_letter(
            &dmp,
            &feed,
            "LDL-SES_2022.01.xml",
            "Lettre de liaison d'un autre hôpital",
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);

        let lambert = app.demo_patient("Lambert").await.id;
        let doctor = app.login("dr.martin").await;
        let record = app.get_page(&format!("/patients/{lambert}"), &doctor).await;
        assert!(
            record.text.contains(&format!("/patients/{lambert}/dmp")),
            "{backend}: linked"
        );
        let page = app
            .get_page(&format!("/patients/{lambert}/dmp"), &doctor)
            .await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let title = "Lettre de liaison d&#39;un autre hôpital";
        let at = page.text.find(title).expect("the letter listed");
        let marker = format!("/patients/{lambert}/dmp/");
        let from = at + page.text[at..].find(&marker).unwrap() + marker.len();
        let doc: String = page.text[from..]
            .chars()
            .take_while(|c| *c != '"' && *c != '/')
            .collect();
        let opened = app
            .get_page(&format!("/patients/{lambert}/dmp/{doc}"), &doctor)
            .await;
        assert_eq!(opened.status, 200, "{backend}: {}", opened.text);
        let lines = interop::cda::readable_text(&cda).unwrap();
        assert!(
            opened.text.contains(lines[0].as_str()),
            "{backend}: the CDA shown as text"
        );
        let csrf = csrf_field(&opened.text);
        let r = app
            .post_form(
                &format!("/patients/{lambert}/dmp/{doc}/copier"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let copy = app
            .store
            .document_by_unique_id(&header.unique_id)
            .await
            .unwrap()
            .expect("the copy in the record");
        assert_eq!(copy.patient, lambert);
        assert_eq!(
            r.header("location"),
            Some(format!("/documents/{}", copy.id))
        );
        // Again: the same copy, not a second one.
        let again = app
            .post_form(
                &format!("/patients/{lambert}/dmp/{doc}/copier"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(again.header("location"), r.header("location"), "{backend}");
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(lambert.to_string()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let dmp_reads = trail.iter().filter(|e| e.action == "read-dmp").count();
        assert!(
            dmp_reads >= 3,
            "{backend}: list, open and copy are audited ({dmp_reads})"
        );

        // Her GAM says she refuses consultation (PAM France ZFA-11 INC): the DMP
        // is not asked any more, and the page says why.
        let record = app.store.patient(lambert).await.unwrap();
        let clinic_id = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let feed = store::hl7::IdentityFeed::Upsert {
            territory: record.territory,
            establishment: clinic_id,
            ipp: record.ipp.clone(),
            traits: record.traits.clone(),
            ins: record.ins.clone(),
            status: record.status,
            dmp: Some(store::hl7::DmpFeed {
                state: domain::documents::DmpState::Active,
                opposition: None,
                consultation: Some(false),
            }),
            demographics: Default::default(),
        };
        let log = store::hl7::NewHl7Message {
            received_at_ms: app.clock.now_ms(),
            sender: "GAM|CLINIQUE".into(),
            control_id: Some("zfa-inc".into()),
            message_type: "ADT^A31".into(),
            status: "accepted".into(),
            errors: String::new(),
            ack: "MSA|AA".into(),
            raw: b"MSH".to_vec(),
            replay_of: None,
            establishment: Some(clinic_id),
        };
        app.store
            .apply_identity_feed(
                &feed,
                None,
                &domain::audit::AuditActor::system("test"),
                &log,
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(
            app.store.dmp_consultation_consent(lambert).await.unwrap(),
            Some(false)
        );
        let refused = app
            .get_page(&format!("/patients/{lambert}/dmp"), &doctor)
            .await;
        assert!(
            refused.text.contains("pas consenti à la consultation"),
            "{backend}: {}",
            refused.text
        );
        assert!(
            !refused.text.contains("Ouvrir"),
            "{backend}: nothing listed"
        );

        // A provisional identity cannot be looked up by INS: said on the page.
        let clinic = app
            .client_token("desk-api", server::demo::CLINIC_FINESS)
            .await;
        let mut body = patient_body(41, "PROV");
        body["identifier"] = serde_json::json!([]);
        let r = app
            .send_json(reqwest::Method::POST, "/fhir/Patient", &clinic, &body)
            .await;
        let prov = r.json()["id"].as_str().unwrap().to_owned();
        let page = app
            .get_page(&format!("/patients/{prov}/dmp"), &doctor)
            .await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(
            page.text.contains("identité non qualifiée"),
            "{backend}: {}",
            page.text
        );
        // The bed manager has no clinical access to her record.
        let beds = app.login("lits.moreau").await;
        assert_ne!(
            app.get_page(&format!("/patients/{lambert}/dmp"), &beds)
                .await
                .status,
            200,
            "{backend}"
        );
    }
}
