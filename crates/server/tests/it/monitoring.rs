//! A patient answers the weekly questionnaire from the portal: serious answers show
//! what to do at once and raise alerts for the clinic's nurses.

use crate::helpers::*;

fn answers(diarrhoea: &str, weight: &str) -> Vec<(&'static str, String)> {
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
        // Another patient's follow-up is not reachable; professionals have no /suivi.
        let doctor = app.login("dr.martin").await;
        assert_eq!(app.get_page("/suivi", &doctor).await.status, 403);
        assert_eq!(app.get_page("/suivi/nope", &patient).await.status, 404);
    }
}
