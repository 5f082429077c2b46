//! A patient answers the weekly questionnaire from the portal: serious answers show
//! what to do at once and raise alerts for the clinic's nurses.

use crate::helpers::*;

pub fn answers(diarrhoea: &str, weight: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = [
        "fever",
        "nausea",
        "mucositis",
        "hand_foot",
        "fatigue",
        "pain",
        "dyspnoea",
        "rash",
    ]
    .iter()
    .map(|k| (*k, "0".to_owned()))
    .collect();
    v.push(("diarrhoea", diarrhoea.to_owned()));
    v.push(("weight", weight.to_owned()));
    v.push(("temperature", "37,2".to_owned()));
    v
}

#[tokio::test]
async fn the_weekly_questionnaire_from_the_portal() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let home = app.get_page("/", &patient).await.page();
        assert!(home.contains("Mon suivi"), "{backend}");
        let list = app.get_page("/suivi", &patient).await.page();
        assert!(
            list.contains("Suivi des thérapies orales en oncologie"),
            "{backend}: {list}"
        );
        let e = app
            .store
            .enrolments_of(app.demo_patient("Lambert").await.id)
            .await
            .unwrap()
            .remove(0);
        let url = format!("/suivi/{}", e.id);
        let form = app.get_page(&url, &patient).await;
        assert!(
            form.page().contains("Avez-vous eu la diarrhée ?"),
            "{backend}"
        );
        let csrf = csrf_field(&form.text);
        let send = |fields: Vec<(&'static str, String)>| {
            let mut all: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
            all.extend(fields);
            let cookie = format!("parcours_session={patient}");
            let url = url.clone();
            let app = &app;
            async move {
                let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
                app.post_form(&url, &cookie, &refs).await
            }
        };
        // Nothing worrying.
        let r = send(answers("0", "70")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.page().contains("Rien d'inquiétant"), "{}", r.text);
        // A missing answer is asked for again.
        let mut missing = answers("0", "70");
        missing.retain(|(k, _)| *k != "pain");
        let r = send(missing).await;
        assert_eq!(r.status, 422);
        assert!(r.page().contains("Avez-vous des douleurs ?"));
        // Grade 3 diarrhoea: what to do now, before any nurse reads it.
        let r = send(answers("3", "66")).await;
        let page = r.page();
        assert!(
            page.contains("À faire maintenant")
                && page.contains("Appelez tout de suite l'hôpital de jour"),
            "{backend}: {page}"
        );
        assert!(page.contains("href=\"tel:15\""));
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
        let queue = app.store.alert_queue(clinic.id).await.unwrap();
        let items: Vec<(&str, &str)> = queue
            .iter()
            .map(|a| (a.level.code(), a.item.as_str()))
            .collect();
        assert_eq!(
            items,
            vec![("urgent", "diarrhoea"), ("warning", "weight")],
            "{backend}: 70 → 66 kg is a 5.7 % drop"
        );
        // FHIR: the questionnaires, and the responses for the clinic's client only.
        let token = app.token().await;
        let qs = app.get("/fhir/Questionnaire", Some(&token)).await.json();
        assert_eq!(qs["entry"].as_array().unwrap().len(), 2, "{backend}");
        let q = app
            .get("/fhir/Questionnaire/oral-oncology", Some(&token))
            .await;
        assert_eq!(q.status, 200);
        let lambert = app.demo_patient("Lambert").await.id;
        let url_qr = format!("/fhir/QuestionnaireResponse?patient=Patient/{lambert}");
        assert_eq!(
            app.get(&url_qr, Some(&token)).await.status,
            403,
            "{backend}: the hospital does not follow her"
        );
        let hash = server::auth::hash_secret("s".into()).await.unwrap();
        app.store
            .create_client(
                "clinic-feed",
                "c",
                &hash,
                clinic.id,
                domain::org::Role::Integration,
                0,
            )
            .await
            .unwrap();
        let clinic_token = app.token_for("clinic-feed", "s").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let qr = app.get(&url_qr, Some(&clinic_token)).await.json();
        assert_eq!(
            qr["entry"].as_array().unwrap().len(),
            2,
            "{backend}: two accepted submissions"
        );
        let diarrhoea = qr["entry"][0]["resource"]["item"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["linkId"] == "diarrhoea")
            .unwrap()
            .clone();
        assert_eq!(
            diarrhoea["answer"][0]["valueCoding"]["code"], "3",
            "{backend}: newest first"
        );
        // The same answers as Observations, the alerts as triage Tasks and Flags, the
        // enrolment as a CarePlan; fhir.resources accepts them all.
        let search = async |kind: &str, patient: domain::PatientId| {
            let r = app
                .get(
                    &format!("/fhir/{kind}?patient=Patient/{patient}"),
                    Some(&clinic_token),
                )
                .await;
            assert_eq!(r.status, 200, "{backend} {kind}: {}", r.text);
            r.json()
        };
        let obs = search("Observation", lambert).await;
        let entries = obs["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 22, "{backend}: 11 answers twice");
        let weight = entries
            .iter()
            .map(|e| &e["resource"])
            .find(|o| o["code"]["coding"][0]["code"] == "29463-7")
            .unwrap();
        assert_eq!(
            weight["valueQuantity"]["value"], 66.0,
            "{backend}: newest first"
        );
        assert_eq!(weight["valueQuantity"]["code"], "kg");
        assert_eq!(weight["category"][0]["coding"][0]["code"], "vital-signs");
        let tasks = search("Task", lambert).await;
        let priorities: Vec<(&str, &str)> = tasks["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["resource"]["priority"].as_str().unwrap(),
                    e["resource"]["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(priorities.len(), 2, "{backend}: {tasks}");
        assert!(
            priorities.contains(&("stat", "requested"))
                && priorities.contains(&("urgent", "requested"))
        );
        let flags = search("Flag", lambert).await;
        assert!(
            flags["entry"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["resource"]["status"] == "active")
                && flags.to_string().contains("Diarrhée"),
            "{backend}: {flags}"
        );
        let plans = search("CarePlan", lambert).await;
        assert_eq!(plans["entry"][0]["resource"]["status"], "active");
        // The demo's history: Rousseau's weight alert was handled and closed.
        let rousseau = app.demo_patient("Rousseau").await.id;
        let done = search("Task", rousseau).await;
        assert_eq!(
            done["entry"][0]["resource"]["status"], "completed",
            "{backend}: {done}"
        );
        assert_eq!(
            done["entry"][0]["resource"]["output"][0]["valueString"],
            "Consultation diététique programmée jeudi"
        );
        let rousseau_qr = search("QuestionnaireResponse", rousseau).await;
        assert_eq!(
            rousseau_qr["entry"].as_array().unwrap().len(),
            4,
            "{backend}"
        );
        // Each one read by its id, as its search gives it; not by the hospital's
        // client, which does not follow her.
        for (kind, bundle) in [
            ("Observation", &obs),
            ("Task", &tasks),
            ("Flag", &flags),
            ("CarePlan", &plans),
            ("QuestionnaireResponse", &qr),
        ] {
            let one = &bundle["entry"][0]["resource"];
            let path = format!("/fhir/{kind}/{}", one["id"].as_str().unwrap());
            let r = app.get(&path, Some(&clinic_token)).await;
            assert_eq!(r.status, 200, "{backend} {path}: {}", r.text);
            assert_eq!(&r.json(), one, "{backend}: {kind} read as searched");
            assert_eq!(
                app.get(&path, Some(&token)).await.status,
                403,
                "{backend}: {path} for the hospital"
            );
        }
        let r = app
            .get(
                "/fhir/Flag/01900000-0000-7000-8000-000000000000",
                Some(&clinic_token),
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");
        validate_fhir(&[
            qs,
            q.json(),
            qr,
            obs,
            tasks,
            flags,
            plans,
            done,
            rousseau_qr,
        ]);
        // Another patient's follow-up is not reachable; professionals have no /suivi.
        let doctor = app.login("dr.martin").await;
        assert_eq!(app.get_page("/suivi", &doctor).await.status, 403);
        assert_eq!(app.get_page("/suivi/nope", &patient).await.status, 404);
    }
}

#[tokio::test]
async fn nurses_triage_doctors_close_and_overdue_alerts_escalate() {
    let (hospital, received) = receiver("AA").await;
    let app = spawn_app_with("postgres", |c| {
        c.oru_destination = Some(format!("mllp://{hospital}"))
    })
    .await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let e = app
        .store
        .enrolments_of(app.demo_patient("Lambert").await.id)
        .await
        .unwrap()
        .remove(0);
    let url = format!("/suivi/{}", e.id);
    let csrf = csrf_field(&app.get_page(&url, &patient).await.text);
    let mut fields: Vec<(&str, String)> = vec![("csrf", csrf)];
    fields.extend(answers("3", "70"));
    fields.retain(|(k, _)| *k != "fatigue");
    fields.push(("fatigue", "2".into()));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        app.post_form(&url, &format!("parcours_session={patient}"), &refs)
            .await
            .status,
        200
    );

    // The clinic's nurse sees both alerts, urgent first, in the live fragment.
    let nurse = app.login("ide.petit").await;
    let table = app.get_page("/alertes/table", &nurse).await.page();
    let urgent_at = table
        .find("data-item=\"diarrhoea\"")
        .expect("diarrhoea alert");
    let warning_at = table.find("data-item=\"fatigue\"").expect("fatigue alert");
    assert!(urgent_at < warning_at, "urgent first: {table}");
    assert!(table.contains("LAMBERT Monique") && !table.contains("<html"));
    let urgent = app
        .store
        .alert_queue(e.establishment)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.item == "diarrhoea")
        .unwrap();
    let alert_url = format!("/alertes/{}", urgent.id);
    let act = |who: String, fields: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let alert_url = alert_url.clone();
        async move {
            let csrf = csrf_field(&app.get_page(&alert_url, &who).await.text);
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(fields);
            app.post_form(&alert_url, &format!("parcours_session={who}"), &all)
                .await
        }
    };
    assert_eq!(
        act(nurse.clone(), vec![("action", "take")]).await.status,
        303
    );
    assert_eq!(
        act(nurse.clone(), vec![("action", "escalate"), ("note", "")])
            .await
            .status,
        422,
        "a note is needed"
    );
    assert_eq!(
        act(
            nurse.clone(),
            vec![
                ("action", "escalate"),
                ("note", "Diarrhée grade 3 sous capécitabine")
            ]
        )
        .await
        .status,
        303
    );
    assert_eq!(
        act(nurse.clone(), vec![("action", "close"), ("note", "x")])
            .await
            .status,
        403,
        "the doctor closes an escalated alert"
    );
    let doctor = app.login("dr.martin").await;
    let refused = act(
        doctor.clone(),
        vec![
            ("action", "close"),
            ("note", "Arrêt du traitement 48 h, consultation demain"),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "closing says how it ended");
    assert!(refused.page().contains("choisissez l'issue de l'alerte"));
    assert_eq!(
        act(
            doctor.clone(),
            vec![
                ("action", "close"),
                ("issue", "bientôt"),
                ("note", "Arrêt du traitement 48 h, consultation demain")
            ]
        )
        .await
        .status,
        400,
        "an unknown outcome"
    );
    assert_eq!(
        act(
            doctor.clone(),
            vec![
                ("action", "close"),
                ("issue", "teleconsultation"),
                ("note", "Arrêt du traitement 48 h, consultation demain")
            ]
        )
        .await
        .status,
        303
    );
    let page = app.get_page(&alert_url, &doctor).await.page();
    // The hospital receives one ORU^R01 telling how the alert ended, valid for hl7apy.
    // Two reports: the questionnaire's results (with the submission), then the
    // alert's outcome (with the closing).
    eventually("ORU delivered", async || {
        received.lock().unwrap().len() == 2
    })
    .await;
    let all = received.lock().unwrap().clone();
    validate_hl7(&all);
    let results = all
        .iter()
        .find(|m| m.contains("TLSV-QUESTIONNAIRE"))
        .expect("results ORU");
    let r = hl7v2::Message::parse(results.as_bytes()).unwrap();
    let weight = (1..=11)
        .find(|i| r.get(&format!("OBX({i})-3.1")).unwrap().as_deref() == Some("29463-7"))
        .expect("weight in LOINC");
    let obx = |f: &str| {
        r.get(&format!("OBX({weight})-{f}"))
            .unwrap()
            .map(|v| v.into_owned())
    };
    assert_eq!(
        (
            obx("2").as_deref(),
            obx("5").as_deref(),
            obx("6.1").as_deref()
        ),
        (Some("NM"), Some("70"), Some("kg"))
    );
    assert!(
        results.contains("|diarrhoea^Diarrhée^L||3^") && results.contains("||AA|"),
        "{results}"
    );
    let oru = all
        .iter()
        .find(|m| m.contains("TLSV-ALERTE"))
        .expect("alert ORU")
        .clone();
    let m = hl7v2::Message::parse(oru.as_bytes()).unwrap();
    let get = |path: &str| m.get(path).unwrap().map(|v| v.into_owned());
    assert_eq!(get("MSH-9.2").as_deref(), Some("R01"));
    assert_eq!(get("OBX(1)-5.1").as_deref(), Some("diarrhoea"));
    assert_eq!(get("OBX(1)-8").as_deref(), Some("AA"));
    assert_eq!(
        get("OBX(4)-3.1").as_deref(),
        Some("ISSUE"),
        "the outcome, coded"
    );
    assert_eq!(get("OBX(4)-5.1").as_deref(), Some("teleconsultation"));
    assert_eq!(
        get("OBX(4)-5.2").as_deref(),
        Some("téléconsultation programmée")
    );
    for text in [
        "Arrêt du traitement 48 h, consultation demain (Dr Claire Martin)",
        "transmise au médecin",
        "Diarrhée grade 3 sous capécitabine",
    ] {
        assert!(oru.contains(text), "ORU lacks {text}: {oru}");
    }
    for step in [
        "alerte reçue",
        "prise en charge",
        "transmise au médecin",
        "Diarrhée grade 3 sous capécitabine",
        "close",
        "Arrêt du traitement 48 h",
    ] {
        assert!(page.contains(step), "timeline lacks {step}: {page}");
    }
    // Other establishments' staff do not see it; patients have no queue.
    let other = app.login("ipa.robert").await; // hospital nurse
    assert!(
        !app.get_page("/alertes/table", &other)
            .await
            .page()
            .contains("LAMBERT")
    );
    assert_eq!(app.get_page(&alert_url, &other).await.status, 404);
    assert_eq!(app.get_page("/alertes", &patient).await.status, 403);

    // The fatigue alert, left open, escalates by itself after the half-day SLA.
    assert_eq!(server::snapshots::escalate(&app.state).await.unwrap(), 0);
    app.clock.advance_secs(12 * 3600 + 1);
    assert_eq!(server::snapshots::escalate(&app.state).await.unwrap(), 1);
    let nurse = app.login("ide.petit").await; // the morning session has expired
    let table = app.get_page("/alertes/table", &nurse).await.page();
    assert!(
        table.contains("transmise au médecin") && table.contains("en retard"),
        "{table}"
    );
}

#[tokio::test]
async fn the_nurse_queue_is_pushed_over_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app("sqlite").await;
    let nurse = app.login("ide.petit").await;
    let ws_url = app.url("/alertes/ws").replace("http://", "ws://");
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("parcours_session={nurse}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the WebSocket opens for a nurse");
    // Without a session, no socket.
    assert!(
        tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .is_err()
    );

    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let e = app
        .store
        .enrolments_of(app.demo_patient("Lambert").await.id)
        .await
        .unwrap()
        .remove(0);
    let url = format!("/suivi/{}", e.id);
    let csrf = csrf_field(&app.get_page(&url, &patient).await.text);
    let mut fields: Vec<(&str, String)> = vec![("csrf", csrf)];
    fields.extend(answers("3", "70"));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = std::time::Instant::now();
    assert_eq!(
        app.post_form(&url, &format!("parcours_session={patient}"), &refs)
            .await
            .status,
        200
    );
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next())
        .await
        .expect("pushed within 2 s")
        .unwrap()
        .unwrap();
    let text = msg.into_text().unwrap();
    let response = text
        .strip_prefix("alertes:")
        .expect("the response that raised them");
    assert!(
        app.store
            .responses_of(e.patient)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == response),
        "{text}"
    );
    assert!(sent.elapsed() < std::time::Duration::from_secs(2));
    // A hospital nurse's socket hears nothing of the clinic's alerts.
    let other = app.login("ipa.robert").await;
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("parcours_session={other}").parse().unwrap(),
    );
    let (mut ws2, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let csrf = csrf_field(&app.get_page(&url, &patient).await.text);
    let mut fields: Vec<(&str, String)> = vec![("csrf", csrf)];
    fields.extend(answers("3", "70"));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post_form(&url, &format!("parcours_session={patient}"), &refs)
        .await;
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), ws2.next())
            .await
            .is_err(),
        "nothing for another establishment"
    );
    assert_eq!(
        ws.next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str()
            .split(':')
            .next(),
        Some("alertes")
    );
}

#[tokio::test]
async fn a_carer_enrols_a_patient_and_ends_the_follow_up() {
    let app = spawn_app("postgres").await;
    let muller = app.demo_patient("Muller").await; // hospital patient
    let doctor = app.login("dr.bernard").await; // hospital
    let page_url = format!("/patients/{}", muller.id);
    let page = app.get_page(&page_url, &doctor).await;
    assert!(page.page().contains("Télésurveillance"));
    let csrf = csrf_field(&page.text);
    let cookie = format!("parcours_session={doctor}");
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        async move {
            let mut all: Vec<(&str, String)> = vec![("csrf", csrf)];
            all.extend(fields);
            let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form(&path, &cookie, &refs).await
        }
    };
    let enrol = format!("{page_url}/suivi");
    assert_eq!(
        post(enrol.clone(), vec![("programme", "infectious-home".into())])
            .await
            .status,
        422,
        "consent required"
    );
    assert_eq!(
        post(
            enrol.clone(),
            vec![("programme", "nope".into()), ("consentement", "1".into())]
        )
        .await
        .status,
        422
    );
    assert_eq!(
        post(
            enrol.clone(),
            vec![
                ("programme", "infectious-home".into()),
                ("consentement", "1".into())
            ]
        )
        .await
        .status,
        303
    );
    let e = app.store.enrolments_of(muller.id).await.unwrap().remove(0);
    assert_eq!(
        (e.programme.as_str(), e.status.as_str()),
        ("infectious-home", "active")
    );
    assert!(
        app.get_page(&page_url, &doctor)
            .await
            .page()
            .contains("Suivi à domicile d'une maladie infectieuse")
    );
    // The clinic's doctor may not enrol the hospital's patient.
    let clinic_doctor = app.login("dr.martin").await;
    let csrf2 = csrf_field(&app.get_page("/", &clinic_doctor).await.text);
    let r = app
        .post_form(
            &enrol,
            &format!("parcours_session={clinic_doctor}"),
            &[
                ("csrf", &csrf2),
                ("programme", "infectious-home"),
                ("consentement", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let end = format!("{page_url}/suivi/{}/terminer", e.id);
    assert_eq!(
        post(end.clone(), vec![("motif", "".into())]).await.status,
        422
    );
    assert_eq!(
        post(end.clone(), vec![("motif", "Guérison".into())])
            .await
            .status,
        303
    );
    assert_eq!(
        post(end, vec![("motif", "Guérison".into())]).await.status,
        409,
        "already ended"
    );
    let e = app.store.enrolments_of(muller.id).await.unwrap().remove(0);
    assert_eq!(
        (e.status.as_str(), e.end_reason.as_deref()),
        ("ended", Some("Guérison"))
    );
    assert!(
        app.get_page(&page_url, &doctor)
            .await
            .page()
            .contains("terminé : Guérison")
    );
}

#[tokio::test]
async fn the_dashboard_shows_each_programme_s_figures() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        // The clinic: Lambert, Rousseau and Lefèvre followed; two demo alerts, handled
        // 2 h and 1 h after they were raised, both within the 12 h SLA.
        let nurse = app.login("ide.petit").await;
        let page = app.get_page("/telesurveillance", &nurse).await;
        assert_eq!(page.status, 200, "{backend}");
        let html = page.page();
        let figure = |html: &str, name: &str| {
            let at = html
                .find(&format!("data-figure=\"{name}\">"))
                .unwrap_or_else(|| panic!("{name}: {html}"));
            let rest = &html[at..];
            let start = rest.find('>').unwrap() + 1;
            rest[start..start + rest[start..].find('<').unwrap()].to_owned()
        };
        assert!(
            html.contains("Suivi des thérapies orales en oncologie"),
            "{backend}: {html}"
        );
        assert_eq!(figure(&html, "followed"), "3", "{backend}");
        assert_eq!(figure(&html, "warning"), "2", "{backend}");
        assert_eq!(figure(&html, "urgent"), "0", "{backend}");
        assert_eq!(figure(&html, "median"), "1 h 30", "{backend}");
        assert_eq!(figure(&html, "sla"), "100 % (2 sur 2)", "{backend}");
        assert!(
            !html.contains("LAMBERT") && !html.contains("ROUSSEAU"),
            "aggregates only"
        );
        // The hospital: Muller's alert was taken after 14 h, past the SLA.
        let ipa = app.login("ipa.robert").await;
        let html = app.get_page("/telesurveillance", &ipa).await.page();
        assert!(
            html.contains("Suivi à domicile d'une maladie infectieuse"),
            "{backend}: {html}"
        );
        assert!(
            !html.contains("thérapies orales"),
            "{backend}: another establishment's programme"
        );
        assert_eq!(figure(&html, "sla"), "0 % (0 sur 1)", "{backend}");
        assert_eq!(figure(&html, "median"), "14 h 00", "{backend}");
        // Patients and staff without a care role have no dashboard.
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        assert_eq!(
            app.get_page("/telesurveillance", &patient).await.status,
            403
        );
        let beds = app.login("lits.moreau").await;
        assert_eq!(app.get_page("/telesurveillance", &beds).await.status, 403);
    }
}

#[tokio::test]
async fn a_client_posts_a_questionnaire_response_graded_like_the_form() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's integration client
        let muller = app.demo_patient("Muller").await.id;
        let lambert = app.demo_patient("Lambert").await.id;
        let body = |patient: domain::PatientId, programme: &str, spo2: i64| {
            serde_json::json!({
                "resourceType": "QuestionnaireResponse",
                "questionnaire": format!("urn:parcours:questionnaire:{programme}"),
                "status": "completed",
                "subject": {"reference": format!("Patient/{patient}")},
                "item": [
                    {"linkId": "temperature", "answer": [{"valueDecimal": 37.9}]},
                    {"linkId": "spo2", "answer": [{"valueInteger": spo2}]},
                    {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "1"}}]},
                    {"linkId": "worse", "answer": [{"valueBoolean": false}]}
                ]
            })
        };
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &body(muller, "infectious-home", 90),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let created = r.json();
        assert!(r.header("location").unwrap().ends_with(&format!(
            "/QuestionnaireResponse/{}",
            created["id"].as_str().unwrap()
        )));
        let tasks = app
            .get(
                &format!("/fhir/Task?patient=Patient/{muller}"),
                Some(&token),
            )
            .await
            .json();
        let open: Vec<&serde_json::Value> = tasks["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|t| t["status"] == "requested")
            .collect();
        assert_eq!(open.len(), 1, "{backend}: {tasks}");
        assert_eq!(open[0]["priority"], "stat", "SpO2 90 % is urgent");
        validate_fhir(&[created, tasks]);
        // Not followed in that programme: 422; followed elsewhere by another
        // establishment: the hospital may not write her clinical data (403).
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &body(lambert, "infectious-home", 97),
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.outcome().contains("pas suivi"));
        let mut other = body(lambert, "oral-oncology", 97);
        other["item"] = serde_json::json!([]);
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &other,
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        // Answers are checked like the form's: a missing item, a value off the scale.
        let mut missing = body(muller, "infectious-home", 97);
        missing["item"].as_array_mut().unwrap().pop();
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &missing,
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(
            r.outcome().contains("Vous sentez-vous plus mal"),
            "{}",
            r.outcome()
        );
        let mut unknown = body(muller, "infectious-home", 97);
        unknown["encounter"] = serde_json::json!({"reference": "Encounter/x"});
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &unknown,
            )
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert!(r.outcome().contains("encounter"));
        // A wrong token: 401.
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/QuestionnaireResponse",
                "nope",
                &body(muller, "infectious-home", 97),
            )
            .await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn a_discharge_from_a_configured_unit_proposes_an_enrolment() {
    use crate::mllp::movement;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap()
            .id;
        let mut c = Mllp::connect(&app).await;
        let mut send = async |m: String| ack_code(&c.send(m.as_bytes()).await).0;
        // Admission to the oncology day unit: the unit proposes on discharge only.
        assert_eq!(
            send(movement(
                "A01",
                "p1",
                "M1",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261123080000"
            ))
            .await,
            "AA"
        );
        assert!(
            app.store.proposals(hospital).await.unwrap().is_empty(),
            "{backend}"
        );
        assert_eq!(
            send(movement(
                "A03",
                "p2",
                "M2",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261123170000"
            ))
            .await,
            "AA"
        );
        let list = app.store.proposals(hospital).await.unwrap();
        assert_eq!(list.len(), 1, "{backend}");
        assert_eq!(
            (list[0].programme.as_str(), list[0].reason.as_str()),
            ("oral-oncology", "Sortie en HDJ-ONCO (A03)")
        );
        // A repeated discharge does not propose twice.
        assert_eq!(
            send(movement(
                "A01",
                "p3",
                "M3",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261124080000"
            ))
            .await,
            "AA"
        );
        assert_eq!(
            send(movement(
                "A03",
                "p4",
                "M4",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261124170000"
            ))
            .await,
            "AA"
        );
        assert_eq!(
            app.store.proposals(hospital).await.unwrap().len(),
            1,
            "{backend}"
        );

        // The hospital's nurse sees it and decides; consent first.
        let nurse = app.login("ipa.robert").await;
        let page = app.get_page("/alertes", &nurse).await;
        assert!(
            page.page().contains("Propositions d'inclusion") && page.page().contains("SÉJOUR Anne"),
            "{backend}: {}",
            page.text
        );
        let csrf = csrf_field(&page.text);
        let url = format!("/propositions/{}", list[0].id);
        let cookie = format!("parcours_session={nurse}");
        let clinic_nurse = app.login("ide.petit").await;
        let r = app
            .post_form(
                &url,
                &format!("parcours_session={clinic_nurse}"),
                &[
                    (
                        "csrf",
                        &csrf_field(&app.get_page("/alertes", &clinic_nurse).await.text),
                    ),
                    ("action", "accept"),
                    ("consentement", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}: another establishment's proposal");
        let r = app
            .post_form(&url, &cookie, &[("csrf", &csrf), ("action", "accept")])
            .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("consentement"));
        let r = app
            .post_form(
                &url,
                &cookie,
                &[("csrf", &csrf), ("action", "accept"), ("consentement", "1")],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        assert!(app.store.proposals(hospital).await.unwrap().is_empty());
        let patient = list[0].patient;
        let enrolled = app.store.enrolments_of(patient).await.unwrap();
        assert_eq!(enrolled.len(), 1);
        assert_eq!(
            (
                enrolled[0].programme.as_str(),
                enrolled[0].status.as_str(),
                enrolled[0].establishment
            ),
            ("oral-oncology", "active", hospital)
        );
        let r = app
            .post_form(&url, &cookie, &[("csrf", &csrf), ("action", "decline")])
            .await;
        assert_eq!(r.status, 404, "{backend}: already decided");
        // Followed already: a new discharge proposes nothing.
        assert_eq!(
            send(movement(
                "A01",
                "p5",
                "M5",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261125080000"
            ))
            .await,
            "AA"
        );
        assert_eq!(
            send(movement(
                "A03",
                "p6",
                "M6",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261125170000"
            ))
            .await,
            "AA"
        );
        assert!(
            app.store.proposals(hospital).await.unwrap().is_empty(),
            "{backend}"
        );
        // Once the follow-up has ended, the next discharge proposes again; declined,
        // nothing is created.
        let who = domain::audit::AuditActor::system("test");
        assert!(
            app.store
                .end_enrolment(enrolled[0].id, "fin du traitement", None, &who, 0)
                .await
                .unwrap()
        );
        assert_eq!(
            send(movement(
                "A01",
                "p7",
                "M7",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261126080000"
            ))
            .await,
            "AA"
        );
        assert_eq!(
            send(movement(
                "A03",
                "p8",
                "M8",
                "INSERT",
                "HDJ-ONCO^1^1",
                "20261126170000"
            ))
            .await,
            "AA"
        );
        let again = app.store.proposals(hospital).await.unwrap();
        assert_eq!(again.len(), 1, "{backend}");
        let r = app
            .post_form(
                &format!("/propositions/{}", again[0].id),
                &cookie,
                &[("csrf", &csrf), ("action", "decline")],
            )
            .await;
        assert_eq!(r.status, 303);
        assert!(app.store.proposals(hospital).await.unwrap().is_empty());
        assert_eq!(
            app.store
                .enrolments_of(patient)
                .await
                .unwrap()
                .iter()
                .filter(|e| e.status == "active")
                .count(),
            0
        );
    }
}

/// One part of a multipart form: name, file name and type for files, bytes.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart/form-data body and its content type.
fn multipart(fields: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----parcours-test-boundary";
    let mut body = Vec::new();
    for (name, file, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, ctype)) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_patient_raises_an_alert_with_a_photo_and_writes_to_the_team() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let e = app.store.enrolments_of(lambert).await.unwrap().remove(0);
        assert!(
            app.get_page("/suivi", &patient)
                .await
                .page()
                .contains("Signaler un problème")
        );
        let url = format!("/suivi/{}/alerte", e.id);
        let form = app.get_page(&url, &patient).await;
        assert!(form.page().contains("Éruption cutanée"), "{backend}");
        let csrf = csrf_field(&form.text);
        let post = async |fields: &[Part<'_>]| {
            let (ctype, body) = multipart(fields);
            read(
                app.http
                    .post(app.url(&url))
                    .header("cookie", format!("parcours_session={patient}"))
                    .header("content-type", ctype)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        };
        let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let r = post(&[
            ("csrf", None, csrf.as_bytes()),
            ("symptome", None, b"rash"),
            ("texte", None, b""),
        ])
        .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.page().contains("décrivez"));
        let r = post(&[
            ("csrf", None, csrf.as_bytes()),
            ("symptome", None, b"rash"),
            ("texte", None, b"Plaques"),
            ("photo", Some(("x.gif", "image/png")), b"GIF89a..."),
        ])
        .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("JPEG ou PNG"));
        let r = post(&[
            ("csrf", None, csrf.as_bytes()),
            ("symptome", None, b"nope"),
            ("texte", None, b"x"),
        ])
        .await;
        assert_eq!(r.status, 422);
        let r = post(&[
            ("csrf", None, b"forged"),
            ("symptome", None, b"rash"),
            ("texte", None, b"x"),
        ])
        .await;
        assert_eq!(r.status, 403, "{backend}: CSRF checked");
        let big = vec![0xFFu8; 6 * 1024 * 1024];
        let r = post(&[
            ("csrf", None, csrf.as_bytes()),
            ("symptome", None, b"rash"),
            ("texte", None, b"x"),
            ("photo", Some(("big.jpg", "image/jpeg")), &big),
        ])
        .await;
        assert_eq!(r.status, 413, "{backend}");
        assert!(
            app.store
                .alert_queue(e.establishment)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: nothing stored so far"
        );
        let r = post(&[
            ("csrf", None, csrf.as_bytes()),
            ("symptome", None, b"rash"),
            (
                "texte",
                None,
                "Plaques rouges sur les bras depuis hier".as_bytes(),
            ),
            ("photo", Some(("bras.png", "image/png")), png),
        ])
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.page().contains("Votre alerte est envoyée") && r.page().contains("href=\"tel:15\"")
        );

        // The nurse sees it, with the photo, served safely and only to carers.
        let nurse = app.login("ide.petit").await;
        let table = app.get_page("/alertes/table", &nurse).await.page();
        assert!(
            table.contains("Éruption cutanée : signalé par le patient"),
            "{backend}: {table}"
        );
        let a = app
            .store
            .alert_queue(e.establishment)
            .await
            .unwrap()
            .remove(0);
        let page = app
            .get_page(&format!("/alertes/{}", a.id), &nurse)
            .await
            .page();
        let photo = app.store.alert_attachment(a.id).await.unwrap().unwrap();
        assert!(
            page.contains(&format!("src=\"/pieces/{photo}\"")),
            "{backend}: {page}"
        );
        let piece = format!("/pieces/{photo}");
        let r = app.get_page(&piece, &nurse).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type").as_deref(), Some("image/png"));
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(r.bytes.as_slice(), png, "{backend}: the bytes sent");
        assert_eq!(app.get_page(&piece, &patient).await.status, 200);
        let other = app.login("ipa.robert").await;
        assert_eq!(
            app.get_page(&piece, &other).await.status,
            404,
            "{backend}: another establishment"
        );

        // Messages both ways; unread ones stand out on each side.
        let thread = format!("/suivi/{}/messages", e.id);
        let pcsrf = csrf_field(&app.get_page(&thread, &patient).await.text);
        let pcookie = format!("parcours_session={patient}");
        assert_eq!(
            app.post_form(&thread, &pcookie, &[("csrf", &pcsrf), ("message", "  ")])
                .await
                .status,
            422
        );
        assert_eq!(
            app.post_form(
                &thread,
                &pcookie,
                &[("csrf", &pcsrf), ("message", "Puis-je prendre un bain ?")]
            )
            .await
            .status,
            303
        );
        let table = app.get_page("/alertes/table", &nurse).await.page();
        assert!(
            table.contains("Messages des patients") && table.contains("1 message(s) non lu(s)"),
            "{backend}: {table}"
        );
        let view = app.get_page(&thread, &nurse).await;
        assert!(
            view.page().contains("Puis-je prendre un bain ?")
                && view.page().contains("Messages — LAMBERT Monique")
        );
        let ncookie = format!("parcours_session={nurse}");
        assert_eq!(
            app.post_form(
                &thread,
                &ncookie,
                &[
                    ("csrf", &csrf_field(&view.text)),
                    ("message", "Oui, un bain tiède.")
                ]
            )
            .await
            .status,
            303
        );
        assert!(
            !app.get_page("/alertes/table", &nurse)
                .await
                .page()
                .contains("Messages des patients"),
            "{backend}: read"
        );
        assert!(
            app.get_page("/suivi", &patient)
                .await
                .page()
                .contains("(1 nouveau(x))")
        );
        assert!(
            app.get_page(&thread, &patient)
                .await
                .page()
                .contains("Oui, un bain tiède.")
        );
        assert!(
            !app.get_page("/suivi", &patient)
                .await
                .page()
                .contains("nouveau(x)")
        );
        assert_eq!(app.get_page(&thread, &other).await.status, 404, "{backend}");
        // FHIR: the thread as Communications, for the clinic's carers only.
        let hash = server::auth::hash_secret("s".into()).await.unwrap();
        app.store
            .create_client(
                "clinic-feed",
                "c",
                &hash,
                e.establishment,
                domain::org::Role::Integration,
                0,
            )
            .await
            .unwrap();
        let token = app.token_for("clinic-feed", "s").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let comms = app
            .get(
                &format!("/fhir/Communication?patient=Patient/{lambert}"),
                Some(&token),
            )
            .await
            .json();
        let texts: Vec<&str> = comms["entry"]
            .as_array()
            .unwrap_or_else(|| panic!("{comms}"))
            .iter()
            .map(|e| {
                e["resource"]["payload"][0]["contentString"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            texts,
            vec!["Puis-je prendre un bain ?", "Oui, un bain tiède."],
            "{backend}"
        );
        assert_eq!(
            comms["entry"][0]["resource"]["sender"]["reference"],
            format!("Patient/{lambert}")
        );
        // One message read by its id; the hospital's client finds none.
        let first = &comms["entry"][0]["resource"];
        let path = format!("/fhir/Communication/{}", first["id"].as_str().unwrap());
        let one = app.get(&path, Some(&token)).await;
        assert_eq!(one.status, 200, "{backend}: {}", one.text);
        assert_eq!(&one.json(), first);
        let hospital = app.token().await;
        assert_eq!(
            app.get(&path, Some(&hospital)).await.status,
            403,
            "{backend}"
        );
        assert_eq!(
            app.get("/fhir/Communication/nope", Some(&token))
                .await
                .status,
            404
        );
        validate_fhir(&[comms]);
    }
}

#[tokio::test]
async fn a_due_questionnaire_is_reminded_once_through_the_outbox() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let e = app.store.enrolments_of(lambert).await.unwrap().remove(0);
        let key = format!("rappel:{}:{}", e.id, e.started_at_ms + 7 * 24 * 3600 * 1000);
        server::snapshots::remind(&app.state).await.unwrap();
        assert!(
            app.store.outbox_message(&key).await.unwrap().is_none(),
            "{backend}: enrolled today, nothing due"
        );
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        assert!(
            !app.get_page("/suivi", &patient)
                .await
                .page()
                .contains("à remplir")
        );
        app.clock.advance_secs(7 * 24 * 3600 + 60);
        // (The server's own timer may also run now: what counts is the message.)
        server::snapshots::remind(&app.state).await.unwrap();
        let m = app
            .store
            .outbox_message(&key)
            .await
            .unwrap()
            .expect("reminder queued");
        assert_eq!(m.destination, format!("portail:{lambert}"));
        assert!(
            m.payload.ends_with(&format!("/suivi/{}", e.id)) && !m.payload.contains("LAMBERT"),
            "{}",
            m.payload
        );
        // Once per due period, however often the job runs.
        assert_eq!(
            server::snapshots::remind(&app.state).await.unwrap(),
            0,
            "{backend}"
        );
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        assert!(
            app.get_page("/suivi", &patient)
                .await
                .page()
                .contains("Votre questionnaire est à remplir"),
            "{backend}"
        );
        // The log sender (the outbox worker) delivers it.
        eventually("reminder delivered", async || {
            app.store
                .outbox_message(&key)
                .await
                .unwrap()
                .is_some_and(|m| m.delivered_at_ms.is_some())
        })
        .await;
    }
}

#[tokio::test]
async fn the_end_of_monitoring_summary_leaves_with_a_pdf() {
    let (hospital, received) = receiver("AA").await;
    let app = spawn_app_with("sqlite", |c| {
        c.oru_destination = Some(format!("mllp://{hospital}"))
    })
    .await;
    let muller = app.demo_patient("Muller").await; // followed at home by the hospital (demo)
    let e = app.store.enrolments_of(muller.id).await.unwrap().remove(0);
    // An oximeter's measure on her timeline: counted apart from the questionnaires.
    let token = app.token().await;
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/fhir/Observation",
            &token,
            &serde_json::json!({
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                "subject": {"reference": format!("Patient/{}", muller.id)},
                "valueQuantity": {"value": 96, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let doctor = app.login("dr.bernard").await;
    let page_url = format!("/patients/{}", muller.id);
    let csrf = csrf_field(&app.get_page(&page_url, &doctor).await.text);
    let r = app
        .post_form(
            &format!("{page_url}/suivi/{}/terminer", e.id),
            &format!("parcours_session={doctor}"),
            &[
                ("csrf", &csrf),
                ("motif", "Guérison, fin de l'antibiothérapie"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let summary = || {
        received
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.contains("TLSV-SYNTHESE"))
            .cloned()
    };
    eventually("summary delivered", async || summary().is_some()).await;
    let oru = summary().unwrap();
    validate_hl7(std::slice::from_ref(&oru));
    assert!(oru.contains("TLSV-SYNTHESE") && oru.contains("Guérison, fin de l'antibiothérapie"));
    let m = hl7v2::Message::parse(oru.as_bytes()).unwrap();
    let pdf_at = (1..=8)
        .find(|i| m.get(&format!("OBX({i})-2")).unwrap().as_deref() == Some("ED"))
        .expect("the PDF");
    let b64 = m
        .get(&format!("OBX({pdf_at})-5.5"))
        .unwrap()
        .unwrap()
        .into_owned();
    use base64::Engine as _;
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // Read back by pypdf (written by others): the text is there.
    let text = pdf_text(&pdf);
    for needle in [
        "Synthèse de fin de télésurveillance",
        "MULLER",
        "Motif de fin : Guérison",
        "Questionnaires reçus : 2",
        "Mesures reçues d'appareils ou de laboratoires : 1",
        "Saturation en oxygène (oxymètre) : 93 <= 94",
    ] {
        assert!(text.contains(needle), "PDF lacks {needle}: {text}");
    }
}

#[tokio::test]
async fn an_admin_adds_a_programme_by_file() {
    let dir = std::env::temp_dir().join(format!("parcours-programmes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = include_str!("../../../../programmes/infectious-home.json");
    let mut v: serde_json::Value = serde_json::from_str(shipped).unwrap();
    v["id"] = "post-op-home".into();
    v["title"] = "Retour à domicile après chirurgie".into();
    v["slaHours"] = 6.into();
    v["questionnaire"]["id"] = "post-op-home".into();
    v["questionnaire"]["url"] = "urn:parcours:questionnaire:post-op-home".into();
    std::fs::write(dir.join("post-op-home.json"), v.to_string()).unwrap();
    let folder = dir.clone();
    let app = spawn_app_with("sqlite", move |c| c.programmes_dir = Some(folder)).await;
    let token = app.token().await;
    let qs = app.get("/fhir/Questionnaire", Some(&token)).await.json();
    let ids: Vec<&str> = qs["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["oral-oncology", "infectious-home", "post-op-home"]
    );
    // A carer can enrol a patient in it; its SLA applies.
    let doctor = app.login("dr.bernard").await;
    let faure = app.demo_patient("Faure").await;
    let page_url = format!("/patients/{}", faure.id);
    let page = app.get_page(&page_url, &doctor).await;
    assert!(
        page.page().contains("Retour à domicile après chirurgie"),
        "{}",
        page.text
    );
    let enrol = async || {
        app.post_form(
            &format!("{page_url}/suivi"),
            &format!("parcours_session={doctor}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("programme", "post-op-home"),
                ("consentement", "1"),
            ],
        )
        .await
    };
    // Known to the platform, but the hospital does not offer it yet.
    let r = enrol().await;
    assert_eq!(r.status, 422, "{}", r.text);
    // Its administrator adds it to the establishment's programmes.
    let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
    app.store
        .apply_org_changes(
            &[store::orgs::OrgChange::Programmes {
                establishment: hospital,
                programmes: vec![
                    "infectious-home".into(),
                    "oral-oncology".into(),
                    "post-op-home".into(),
                ],
            }],
            app.clock.now_ms(),
            "test",
        )
        .await
        .unwrap();
    let r = enrol().await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        server::services::monitoring::programme("post-op-home")
            .unwrap()
            .sla_hours,
        6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A device gateway posts measures as FHIR Observations: filed on the
/// timeline of the follow-up that observes the LOINC code, graded by its
/// rules (an oximeter's low SpO2 raises an urgent alert), shown as
/// Observations (not as questionnaires answered); what cannot be filed is
/// refused, saying why.
#[tokio::test]
async fn a_device_posts_measures_graded_like_the_questionnaire() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's integration client
        let muller = app.demo_patient("Muller").await.id;
        let lambert = app.demo_patient("Lambert").await.id;
        let measure = |patient: domain::PatientId, code: &str, value: f64, unit: &str| {
            serde_json::json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{patient}")},
                "effectiveDateTime": "2026-11-18T07:30:00Z",
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                "device": {"display": "Oxymètre Nonin 3230"}
            })
        };
        let post = async |body: &serde_json::Value| {
            app.send_json(reqwest::Method::POST, "/fhir/Observation", &token, body)
                .await
        };
        let open_tasks = async || {
            let tasks = app
                .get(
                    &format!("/fhir/Task?patient=Patient/{muller}"),
                    Some(&token),
                )
                .await
                .json();
            tasks["entry"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter(|e| e["resource"]["status"] == "requested")
                        .count()
                })
                .unwrap_or(0)
        };
        let before = open_tasks().await;

        // SpO2 89 % from the oximeter: 201, the Observation as stored, an urgent alert.
        let r = post(&measure(muller, "59408-5", 89.0, "%")).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let created = r.json();
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(
            r.header("location")
                .unwrap()
                .ends_with(&format!("/Observation/{id}"))
        );
        assert_eq!(created["valueQuantity"]["value"], 89.0);
        assert_eq!(created["effectiveDateTime"], "2026-11-18T07:30:00Z");
        assert_eq!(created["device"]["display"], "Oxymètre Nonin 3230");
        assert!(
            created.get("derivedFrom").is_none(),
            "not from a questionnaire"
        );
        assert_eq!(
            open_tasks().await,
            before + 1,
            "{backend}: graded, alert raised"
        );
        let read = app
            .get(&format!("/fhir/Observation/{id}"), Some(&token))
            .await;
        assert_eq!(read.status, 200, "{backend}: {}", read.text);
        assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
        assert_eq!(read.json(), created);
        // Measured at 07:30, received at 11:06: an integrator polling what
        // changed since 10:00 gets it (meta.lastUpdated is when it was filed).
        assert_eq!(created["meta"]["lastUpdated"], "2026-11-18T11:06:40Z");
        let since = app
            .get(
                &format!(
                    "/fhir/Observation?patient=Patient/{muller}&_lastUpdated=gt2026-11-18T10:00:00Z"
                ),
                Some(&token),
            )
            .await
            .json();
        assert!(
            since["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["id"] == id.as_str()),
            "{backend}: {since}"
        );
        let later = app
            .get(
                &format!(
                    "/fhir/Observation?patient=Patient/{muller}&_lastUpdated=gt2026-11-18T12:00:00Z"
                ),
                Some(&token),
            )
            .await
            .json();
        assert_eq!(later["total"], 0, "{backend}: {later}");
        // The usual parameters: by LOINC code, by the time measured.
        let spo2 = app
            .get(
                &format!(
                    "/fhir/Observation?patient=Patient/{muller}&code=http://loinc.org|59408-5"
                ),
                Some(&token),
            )
            .await
            .json();
        let entries = spo2["entry"].as_array().unwrap();
        assert!(!entries.is_empty(), "{backend}: {spo2}");
        assert!(
            entries
                .iter()
                .all(|e| e["resource"]["code"]["coding"][0]["code"] == "59408-5"),
            "{backend}: {spo2}"
        );
        let at_7 = app
            .get(
                &format!("/fhir/Observation?patient=Patient/{muller}&date=ge2026-11-18T07:00:00Z&date=lt2026-11-18T08:00:00Z"),
                Some(&token),
            )
            .await
            .json();
        assert_eq!(
            at_7["total"], 1,
            "{backend}: the oximeter's, so far: {at_7}"
        );
        // A normal temperature: filed, no alert.
        let r = post(&measure(muller, "8310-5", 37.2, "Cel")).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(open_tasks().await, before + 1, "{backend}");
        // Observations list both; no QuestionnaireResponse was answered.
        let obs = app
            .get(
                &format!("/fhir/Observation?patient=Patient/{muller}"),
                Some(&token),
            )
            .await
            .json();
        let from_device = obs["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["device"]["display"] == "Oxymètre Nonin 3230")
            .count();
        assert_eq!(from_device, 2, "{backend}: {obs}");
        let qr = app
            .get(
                &format!("/fhir/QuestionnaireResponse?patient=Patient/{muller}"),
                Some(&token),
            )
            .await
            .json();
        assert!(
            !qr.to_string().contains(&id[..id.len() - 2]),
            "{backend}: a measure is not a questionnaire answered"
        );
        let total = obs["total"].clone();
        validate_fhir(&[created, obs]);

        // Refusals, each saying why; nothing filed.
        for (body, status, says) in [
            (measure(muller, "8867-4", 80.0, "/min"), 422, "8867-4"),
            (
                measure(muller, "8310-5", 101.0, "[degF]"),
                422,
                "Cel attendue",
            ),
            (
                {
                    let mut b = measure(muller, "8310-5", 37.0, "Cel");
                    b["effectiveDateTime"] = serde_json::json!("2027-06-01T00:00:00Z");
                    b
                },
                422,
                "futur",
            ),
            (measure(lambert, "29463-7", 60.0, "kg"), 403, ""),
            (
                measure(domain::PatientId::new(), "8310-5", 37.0, "Cel"),
                404,
                "",
            ),
        ] {
            let r = post(&body).await;
            assert_eq!(r.status, status, "{backend}: {}", r.text);
            assert!(r.outcome().contains(says), "{says}: {}", r.text);
        }
        let after = app
            .get(
                &format!("/fhir/Observation?patient=Patient/{muller}"),
                Some(&token),
            )
            .await
            .json();
        assert_eq!(after["total"], total, "{backend}: nothing more filed");
    }
}

/// The alert queue shows fifty alerts a page, the most serious then the
/// oldest first, tells where the page stands, and reads (and audits) only
/// the names of the patients it shows.
#[tokio::test]
async fn the_alert_queue_is_paged_and_names_only_the_patients_shown() {
    use domain::monitoring::AlertLevel;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let rousseau = app.demo_patient("Rousseau").await.id;
        let enrolment = async |p| app.store.enrolments_of(p).await.unwrap().remove(0);
        let (el, er) = (enrolment(lambert).await, enrolment(rousseau).await);
        assert_eq!(el.establishment, er.establishment, "{backend}: the clinic");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let raise = async |e: &store::monitoring::Enrolment, level, i: i64| {
            let alert = store::monitoring::NewAlert {
                level,
                item: format!("item{i}"),
                reason: format!("motif {i}"),
                advice: String::new(),
                mute: None,
            };
            app.store
                .raise_patient_alert(
                    e,
                    &alert,
                    None,
                    "test",
                    now + 12 * 3_600_000,
                    &domain::audit::AuditActor::system("test"),
                    now + i,
                )
                .await
                .unwrap();
        };
        // Lambert: sixty urgent alerts; Rousseau: thirty for the record.
        for i in 0..60 {
            raise(&el, AlertLevel::Urgent, i).await;
        }
        for i in 60..90 {
            raise(&er, AlertLevel::Info, i).await;
        }
        let mut queue = app.store.alert_queue(el.establishment).await.unwrap();
        queue.sort_by_key(|a| (std::cmp::Reverse(a.level), a.raised_at_ms));
        let total = queue.len();
        let pages = total.div_ceil(50);
        let first_rousseau = queue.iter().position(|a| a.patient == rousseau).unwrap();
        assert!(
            first_rousseau >= 50,
            "{backend}: Rousseau past the first page"
        );

        let nurse = app.login("ide.petit").await;
        let last_seq = async || {
            app.store
                .list_audit(&store::audit::AuditFilter {
                    limit: 1,
                    ..Default::default()
                })
                .await
                .unwrap()
                .first()
                .map_or(0, |e| e.seq)
        };
        let rousseau_reads = async |after: i64| {
            app.store
                .list_audit(&store::audit::AuditFilter {
                    patient: Some(rousseau.to_string()),
                    limit: 500,
                    ..Default::default()
                })
                .await
                .unwrap()
                .iter()
                .filter(|e| e.seq > after && e.action == "read")
                .count()
        };
        let rows = |html: &str| html.matches("<tr class=\"alert-row").count();

        let before = last_seq().await;
        let page = app.get_page("/alertes", &nurse).await;
        assert_eq!(page.status, 200, "{backend}");
        let html = page.page();
        assert_eq!(rows(&html), 50, "{backend}");
        assert!(
            html.contains(&format!("Alertes 1 à 50 sur {total}, page 1 sur {pages}.")),
            "{backend}: {html}"
        );
        assert!(html.contains("href=\"/alertes?page=2\" rel=\"next\""));
        assert!(!html.contains("rel=\"prev\""));
        assert!(!html.contains("level-info") && !html.contains("ROUSSEAU"));
        assert_eq!(
            rousseau_reads(before).await,
            0,
            "{backend}: not shown, not read"
        );

        // The page holding Rousseau's first alert names him, and audits it.
        let his = first_rousseau / 50 + 1;
        let before = last_seq().await;
        let table = app
            .get_page(&format!("/alertes/table?page={his}"), &nurse)
            .await
            .page();
        assert!(table.contains("ROUSSEAU"), "{backend}: {table}");
        assert!(table.contains(&format!("href=\"/alertes?page={}\" rel=\"prev\"", his - 1)));
        assert_eq!(
            rousseau_reads(before).await,
            1,
            "{backend}: shown, read once"
        );

        // The last page holds what is left; a number past it gives it too.
        let left = total - (pages - 1) * 50;
        for asked in [pages, pages + 7] {
            let table = app
                .get_page(&format!("/alertes/table?page={asked}"), &nurse)
                .await
                .page();
            assert_eq!(rows(&table), left, "{backend}: page {asked}");
            assert!(
                table.contains(&format!(
                    "Alertes {} à {total} sur {total}, page {pages} sur {pages}.",
                    (pages - 1) * 50 + 1
                )),
                "{backend}: {table}"
            );
            assert!(!table.contains("rel=\"next\""));
        }
        // A page that is not a number from 1 is refused, in French.
        for bad in ["0", "-1", "deux", "1.5"] {
            let r = app.get_page(&format!("/alertes?page={bad}"), &nurse).await;
            assert_eq!(r.status, 400, "{backend}: {bad}");
            assert!(
                r.text.contains("numéro de page invalide"),
                "{backend}: {}",
                r.text
            );
        }
        // A page given twice too (axum's own extractor answered in English).
        let r = app.get_page("/alertes?page=1&page=2", &nurse).await;
        assert_eq!(r.status, 400, "{backend}");
        assert!(
            r.text.contains("« page » est donné plus d"),
            "{backend}: {}",
            r.text
        );
    }
}
