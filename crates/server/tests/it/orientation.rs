//! Orientation from the hospital to two SSR centres: one refuses, one accepts, the
//! requester confirms; the timeline shows it all; outsiders see nothing.

use crate::helpers::*;

async fn post(
    app: &TestApp,
    session: &str,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Resp {
    let csrf = csrf_field(&app.get_page(page, session).await.text);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    app.post_form(path, &format!("parcours_session={session}"), &all)
        .await
}

#[tokio::test]
async fn a_request_refused_by_one_accepted_by_another_and_confirmed() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let muller = app.demo_patient("Muller").await; // hospital patient
        let est = |f: &'static str| {
            let s = app.store.clone();
            async move {
                s.establishment_by_finess(f)
                    .await
                    .unwrap()
                    .unwrap()
                    .id
                    .to_string()
            }
        };
        let (tilleuls, loire) = (
            est(server::demo::SSR_TILLEULS_FINESS).await,
            est(server::demo::SSR_LOIRE_FINESS).await,
        );
        let doctor = app.login("dr.bernard").await;
        let patient_page = app
            .get_page(&format!("/patients/{}", muller.id), &doctor)
            .await;
        assert!(
            patient_page.page().contains("Demander une orientation"),
            "{backend}"
        );
        let form_page = format!("/orientation/nouvelle?patient={}", muller.id);
        assert_eq!(app.get_page(&form_page, &doctor).await.status, 200);
        // Missing needs: refused with the form again.
        let r = post(
            &app,
            &doctor,
            &form_page,
            "/orientation",
            &[
                ("patient", &muller.id.to_string()),
                ("cible", "ssr"),
                ("besoins", " "),
                ("date", "2026-11-30"),
                ("destinataire", &tilleuls),
            ],
        )
        .await;
        assert_eq!(r.status, 422, "{backend}");
        let r = post(
            &app,
            &doctor,
            &form_page,
            "/orientation",
            &[
                ("patient", &muller.id.to_string()),
                ("cible", "ssr"),
                ("besoins", "Rééducation après fracture du col"),
                ("date", "2026-11-30"),
                ("urgent", "1"),
                ("destinataire", &tilleuls),
                ("destinataire", &loire),
            ],
        )
        .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let url = r.header("location").unwrap();
        // Outsiders see nothing; the clinic's doctor may not ask for the hospital's patient.
        let had = app.login("med.had").await;
        assert_eq!(
            app.get_page(&url, &had).await.status,
            404,
            "{backend}: not a recipient"
        );
        let coord = app.login("coord.garnier").await;
        assert_eq!(app.get_page(&url, &coord).await.status, 404);
        let lambert = app.demo_patient("Lambert").await; // clinic only
        assert_eq!(
            app.get_page(
                &format!("/orientation/nouvelle?patient={}", lambert.id),
                &doctor
            )
            .await
            .status,
            403
        );

        // Loire refuses (a reason is required), Tilleuls accepts.
        let loire_doc = app.login("med.loire").await;
        let page = app.get_page(&url, &loire_doc).await.page();
        assert!(
            page.contains("Rééducation après fracture du col")
                && page.contains("MULLER Jean-Pierre"),
            "{backend}: {page}"
        );
        let r = post(
            &app,
            &loire_doc,
            &url,
            &format!("{url}/repondre"),
            &[
                ("etablissement", &loire),
                ("reponse", "refuser"),
                ("motif", ""),
            ],
        )
        .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("un refus doit être motivé"));
        assert_eq!(
            post(
                &app,
                &loire_doc,
                &url,
                &format!("{url}/repondre"),
                &[
                    ("etablissement", &loire),
                    ("reponse", "refuser"),
                    ("motif", "Pas de lit avant 3 semaines")
                ]
            )
            .await
            .status,
            303
        );
        // Loire cannot answer for Tilleuls.
        assert_eq!(
            post(
                &app,
                &loire_doc,
                &url,
                &format!("{url}/repondre"),
                &[("etablissement", &tilleuls), ("reponse", "accepter")]
            )
            .await
            .status,
            403
        );
        let tilleuls_doc = app.login("med.tilleuls").await;
        assert_eq!(
            post(
                &app,
                &tilleuls_doc,
                &url,
                &format!("{url}/repondre"),
                &[("etablissement", &tilleuls), ("reponse", "accepter")]
            )
            .await
            .status,
            303
        );
        assert_eq!(
            post(
                &app,
                &tilleuls_doc,
                &url,
                &format!("{url}/confirmer"),
                &[("etablissement", &tilleuls)]
            )
            .await
            .status,
            403,
            "only the requester confirms"
        );
        // The requester confirms; the request is closed for everyone.
        assert_eq!(
            post(
                &app,
                &doctor,
                &url,
                &format!("{url}/confirmer"),
                &[("etablissement", &tilleuls)]
            )
            .await
            .status,
            303,
            "{backend}"
        );
        let page = app.get_page(&url, &doctor).await.page();
        assert!(
            page.contains("place confirmée</dd>") || page.contains(">place confirmée<"),
            "{backend}: {page}"
        );
        for step in [
            "demande envoyée",
            "refus",
            "Pas de lit avant 3 semaines",
            "place proposée",
            "place confirmée par le demandeur",
        ] {
            assert!(page.contains(step), "{backend}: timeline lacks {step}");
        }
        assert_eq!(
            post(&app, &doctor, &url, &format!("{url}/annuler"), &[])
                .await
                .status,
            422,
            "{backend}: closed"
        );
        let list = app.get_page("/orientation", &tilleuls_doc).await.page();
        assert!(
            list.contains("MULLER Jean-Pierre") && list.contains("place confirmée"),
            "{backend}"
        );
        assert_eq!(app.get_page("/orientation/nope", &doctor).await.status, 404);
        // The hospital's integration client reads it as FHIR ServiceRequest and Tasks.
        let token = app.token().await;
        let id = url.trim_start_matches("/orientation/");
        let sr = app
            .get(&format!("/fhir/ServiceRequest/{id}"), Some(&token))
            .await;
        assert_eq!(sr.status, 200, "{backend}: {}", sr.text);
        let sr = sr.json();
        assert_eq!(
            (sr["status"].as_str(), sr["priority"].as_str()),
            (Some("completed"), Some("urgent"))
        );
        let tasks = app
            .get(
                &format!("/fhir/Task?focus=ServiceRequest/{id}"),
                Some(&token),
            )
            .await
            .json();
        let states: Vec<(&str, &str)> = tasks["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["resource"]["status"].as_str().unwrap(),
                    e["resource"]["statusReason"]["text"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            states,
            vec![
                ("completed", ""),
                ("rejected", "Pas de lit avant 3 semaines")
            ],
            "{backend}"
        );
        assert_eq!(app.get("/fhir/Task", Some(&token)).await.status, 400);
        assert_eq!(
            app.get("/fhir/ServiceRequest/nope", Some(&token))
                .await
                .status,
            404
        );
        validate_fhir(&[sr, tasks]);
    }
}
