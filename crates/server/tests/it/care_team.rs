//! The care team: a nurse mutes a known symptom for one patient (recorded,
//! graded, shown as muted, never queued; a worsening alerts anyway; the
//! muting ends by itself, traced), the SLA counts in the team's opening
//! hours, and an escalated alert reaches the doctor on call by e-mail.

use crate::helpers::*;
use crate::monitoring::answers;

/// Posts the weekly questionnaire as the patient with `grade` on `item`.
async fn answer(app: &TestApp, patient: &str, enrolment: &str, item: &'static str, grade: &str) {
    let url = format!("/suivi/{enrolment}");
    let csrf = csrf_field(&app.get_page(&url, patient).await.text);
    let mut fields: Vec<(&str, String)> = vec![("csrf", csrf)];
    fields.extend(answers("0", "70"));
    fields.retain(|(k, _)| *k != item);
    fields.push((item, grade.to_owned()));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = app
        .post_form(&url, &format!("parcours_session={patient}"), &refs)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Posts `fields` (with the page's CSRF token) as `who`.
async fn post(app: &TestApp, who: &str, page: &str, to: &str, fields: &[(&str, &str)]) -> Resp {
    let csrf = csrf_field(&app.get_page(page, who).await.text);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    app.post_form(to, &format!("parcours_session={who}"), &all)
        .await
}

#[tokio::test]
async fn a_nurse_mutes_a_known_symptom_and_a_worsening_still_alerts() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let e = app.store.enrolments_of(lambert).await.unwrap().remove(0);
        let enrolment = e.id.to_string();
        let history = format!("/suivi/{enrolment}/historique");
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let nurse = app.login("ide.petit").await;
        let page = app.get_page(&history, &nurse).await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(
            page.page().contains("Aucun symptôme en sourdine"),
            "{backend}"
        );

        // Refusals say why, on the page.
        let mute = |fields: Vec<(&'static str, &'static str)>| {
            let (app, nurse, history) = (&app, nurse.clone(), history.clone());
            let to = format!("/suivi/{enrolment}/sourdines");
            async move { post(app, &nurse, &history, &to, &fields).await }
        };
        let base = vec![
            ("item", "hand_foot"),
            ("grade", "2"),
            ("niveau", "warning"),
            ("duree", "30"),
            ("motif", "syndrome main-pied de grade 2 connu, stable"),
        ];
        let with = |k: &'static str, v: &'static str| {
            let mut f = base.clone();
            f.retain(|(n, _)| *n != k);
            f.push((k, v));
            f
        };
        for (fields, says) in [
            (with("duree", "3"), "d'une semaine à trois mois"),
            (with("duree", "120"), "d'une semaine à trois mois"),
            (with("motif", " "), "indiquez pourquoi"),
            (with("grade", "5"), "de 1 à 4"),
            (with("item", "note"), "ne peut pas être mis en sourdine"),
        ] {
            let r = mute(fields).await;
            assert_eq!(r.status, 422, "{backend}: {says}");
            assert!(r.page().contains(says), "{backend}: {says}: {}", r.text);
        }
        assert_eq!(mute(with("duree", "sept")).await.status, 400, "{backend}");
        assert_eq!(mute(base.clone()).await.status, 303, "{backend}");
        let again = mute(base.clone()).await;
        assert_eq!(again.status, 422, "{backend}: one running muting per item");
        assert!(again.page().contains("déjà en sourdine"), "{backend}");
        let listed = app.get_page(&history, &nurse).await.page();
        assert!(
            listed.contains("jusqu'au grade 2") && listed.contains("Lever la sourdine"),
            "{backend}: {listed}"
        );

        // Nobody outside the clinic's care team reads or mutes.
        let other = app.login("ipa.robert").await;
        assert_eq!(
            app.get_page(&history, &other).await.status,
            404,
            "{backend}"
        );
        let secretary = app.login("sec.durand").await;
        assert_eq!(
            app.get_page(&history, &secretary).await.status,
            404,
            "{backend}"
        );
        assert_eq!(
            app.get_page(&history, &patient).await.status,
            404,
            "{backend}"
        );

        // Grade 2 is recorded and graded, muted: nothing reaches the queue.
        answer(&app, &patient, &enrolment, "hand_foot", "2").await;
        let queue = app.store.alert_queue(e.establishment).await.unwrap();
        assert!(
            queue.iter().all(|a| a.item != "hand_foot"),
            "{backend}: {queue:?}"
        );
        let muted: Vec<_> = app
            .store
            .alerts_of(lambert)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.item == "hand_foot")
            .collect();
        assert_eq!(muted.len(), 1, "{backend}");
        assert_eq!(muted[0].status, domain::monitoring::AlertStatus::Muted);
        let shown = app.get_page(&history, &nurse).await.page();
        assert!(
            shown.contains("data-muted=\"1\"") && shown.contains("en sourdine"),
            "{backend}: the timeline shows it muted"
        );
        let alert_page = app
            .get_page(&format!("/alertes/{}", muted[0].id), &nurse)
            .await
            .page();
        assert!(
            alert_page.contains("syndrome main-pied de grade 2 connu"),
            "{backend}: the alert's timeline says why it was muted"
        );

        // A worsening alerts anyway.
        answer(&app, &patient, &enrolment, "hand_foot", "3").await;
        let queue = app.store.alert_queue(e.establishment).await.unwrap();
        assert!(
            queue.iter().any(|a| a.item == "hand_foot"),
            "{backend}: grade 3 is above what was muted"
        );

        // The muting ends by itself after its month, traced by the system;
        // grade 2 alerts again.
        app.clock.advance_secs(30 * 24 * 3600 + 60);
        server::snapshots::escalate(&app.state).await.unwrap();
        // (Sessions do not last a month: sign in again.)
        let (nurse, patient) = (
            app.login("ide.petit").await,
            app.login(server::demo::PATIENT_LOGIN).await,
        );
        let other = app.login("ipa.robert").await;
        let mute = |fields: Vec<(&'static str, &'static str)>| {
            let (app, nurse, history) = (&app, nurse.clone(), history.clone());
            let to = format!("/suivi/{enrolment}/sourdines");
            async move { post(app, &nurse, &history, &to, &fields).await }
        };
        let ended = app.get_page(&history, &nurse).await.page();
        assert!(
            ended.contains("terminée le") && ended.contains("par système"),
            "{backend}: {ended}"
        );
        let trail = app.store.audit_entries(0, 1_000_000).await.unwrap();
        let steps: Vec<(&str, &str)> = trail
            .iter()
            .filter(|a| a.resource.starts_with("Flag/sourdine-"))
            .map(|a| (a.action.as_str(), a.actor_kind.as_str()))
            .collect();
        assert_eq!(
            steps,
            vec![("mute-alerts", "user"), ("unmute-alerts", "system")],
            "{backend}"
        );
        let before = app.store.alert_queue(e.establishment).await.unwrap().len();
        answer(&app, &patient, &enrolment, "hand_foot", "2").await;
        assert_eq!(
            app.store.alert_queue(e.establishment).await.unwrap().len(),
            before + 1,
            "{backend}: no longer muted"
        );

        // Lifted by hand, with a note; once.
        assert_eq!(mute(with("item", "fatigue")).await.status, 303, "{backend}");
        let running = app
            .store
            .mutes_of(e.id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.mute.item == "fatigue")
            .unwrap();
        let lift = format!("/sourdines/{}/lever", running.mute.id);
        let r = post(
            &app,
            &nurse,
            &history,
            &lift,
            &[("note", "fatigue résolue")],
        )
        .await;
        assert_eq!(r.status, 303, "{backend}");
        let r = post(&app, &nurse, &history, &lift, &[("note", "encore")]).await;
        assert_eq!(r.status, 409, "{backend}: already lifted");
        let r = post(&app, &other, "/alertes", &lift, &[("note", "x")]).await;
        assert_eq!(r.status, 404, "{backend}: another establishment's nurse");
        assert!(
            app.get_page(&history, &nurse)
                .await
                .page()
                .contains("par Julie Petit (fatigue résolue)"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_sla_counts_in_opening_hours_and_escalation_reaches_the_doctor_on_call() {
    for backend in BACKENDS {
        let relay = crate::mail::relay().await;
        let port = relay.port;
        let app = spawn_app_with(backend, move |c| {
            c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
        })
        .await;
        const H: i64 = 3600 * 1000;
        let team = "/telesurveillance/equipe";
        let nurse = app.login("ide.petit").await;
        // Only the team's doctors, nurses and admin set it.
        assert_eq!(
            app.get_page(team, &app.login("sec.durand").await)
                .await
                .status,
            403
        );
        assert_eq!(app.get_page(team, &nurse).await.status, 200, "{backend}");
        let mut hours: Vec<(&str, &str)> = Vec::new();
        for d in ["1", "2", "3", "4", "5"] {
            hours.extend([("jour", d), ("debut", "08:30"), ("fin", "18:00")]);
        }
        let bad = [("jour", "1"), ("debut", "18:00"), ("fin", "08:30")];
        let r = post(&app, &nurse, team, team, &bad).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("l'ouverture doit précéder la fermeture"));
        let r = post(&app, &nurse, team, team, &hours).await;
        assert_eq!(r.status, 200, "{backend}");
        assert!(
            r.page().contains("Horaires de l'équipe enregistrés"),
            "{backend}"
        );

        // Wednesday 18 November 2026, 12:06:40 in Paris (and the minutes the
        // sign-ins took): the half-day (12 h) of work ends Thursday 14:36:40,
        // 26.5 h later on the wall clock (the 14.5 h of the night closed).
        let now = app.clock.now_ms();
        assert!((1_795_000_000_000..1_795_000_000_000 + H).contains(&now));
        let lambert = app.demo_patient("Lambert").await.id;
        let e = app.store.enrolments_of(lambert).await.unwrap().remove(0);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        answer(&app, &patient, &e.id.to_string(), "nausea", "2").await;
        let alert = app
            .store
            .alert_queue(e.establishment)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.item == "nausea")
            .unwrap();
        assert_eq!(alert.due_at_ms - now, 26 * H + H / 2, "{backend}");

        // The doctor on call this week, with an address.
        let doctor = app
            .store
            .user_by_username("dr.martin")
            .await
            .unwrap()
            .unwrap();
        app.store
            .set_user_email(doctor.id, Some("claire.martin@clinique.example.fr"))
            .await
            .unwrap();
        let rota = "/telesurveillance/astreintes";
        let doctor_id = doctor.id.to_string();
        let r = post(
            &app,
            &nurse,
            team,
            rota,
            &[
                ("medecin", &doctor_id),
                ("debut", "2026-11-18T20:00"),
                ("fin", "2026-11-18T08:00"),
            ],
        )
        .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("doit suivre son début"));
        let bernard = app
            .store
            .user_by_username("dr.bernard")
            .await
            .unwrap()
            .unwrap();
        let r = post(
            &app,
            &nurse,
            team,
            rota,
            &[
                ("medecin", &bernard.id.to_string()),
                ("debut", "2026-11-18T08:00"),
                ("fin", "2026-11-25T08:00"),
            ],
        )
        .await;
        assert_eq!(
            r.status, 422,
            "{backend}: a doctor of another establishment"
        );
        let r = post(
            &app,
            &nurse,
            team,
            rota,
            &[
                ("medecin", &doctor_id),
                ("debut", "2026-11-18T08:00"),
                ("fin", "2026-11-25T08:00"),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.page()
                .contains("Dr Claire Martin : du 18/11/2026 08:00 au 25/11/2026 08:00")
        );

        // Not yet overdue at Thursday 14:36 minus a minute; overdue after.
        app.clock.advance_secs(26 * 3600 + 1800 - 60);
        assert_eq!(
            server::snapshots::escalate(&app.state).await.unwrap(),
            0,
            "{backend}"
        );
        app.clock.advance_secs(120);
        assert_eq!(
            server::snapshots::escalate(&app.state).await.unwrap(),
            1,
            "{backend}"
        );
        let steps = app.store.alert_events(alert.id).await.unwrap();
        let notified = steps
            .iter()
            .find(|(_, _, action, _)| action == "notified")
            .expect("the doctor on call was told");
        assert_eq!(
            notified.3,
            "Dr Claire Martin (astreinte) prévenu(e) par e-mail"
        );
        let mail = || {
            crate::mail::mails(&relay.dir)
                .into_iter()
                .find(|m| m.contains("claire.martin@clinique.example.fr"))
        };
        eventually("the on-call mail", async || mail().is_some()).await;
        let m = mail().unwrap().replace("=\r\n", "").replace("=\n", "");
        assert!(
            m.contains(&format!("/alertes/{}", alert.id)),
            "{backend}: {m}"
        );
        assert!(
            !m.contains("LAMBERT") && !m.contains("Monique") && !m.contains("naus"),
            "{backend}: no health data by mail: {m}"
        );

        // Without anyone on call, the timeline says so (signed in again: a
        // day has passed).
        let (nurse, patient) = (
            app.login("ide.petit").await,
            app.login(server::demo::PATIENT_LOGIN).await,
        );
        let period = app.store.on_call_rota(e.establishment, 0).await.unwrap()[0]
            .id
            .clone();
        let remove = format!("/telesurveillance/astreintes/{period}/supprimer");
        assert_eq!(post(&app, &nurse, team, &remove, &[]).await.status, 200);
        assert_eq!(post(&app, &nurse, team, &remove, &[]).await.status, 404);
        answer(&app, &patient, &e.id.to_string(), "mucositis", "2").await;
        let second = app
            .store
            .alert_queue(e.establishment)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.item == "mucositis")
            .unwrap();
        let url = format!("/alertes/{}", second.id);
        let r = post(
            &app,
            &nurse,
            &url,
            &url,
            &[("action", "escalate"), ("note", "avis médical")],
        )
        .await;
        assert_eq!(r.status, 303, "{backend}");
        let shown = app.get_page(&url, &nurse).await.page();
        assert!(
            shown.contains("médecin d'astreinte")
                && shown.contains("aucun médecin d'astreinte à cette heure"),
            "{backend}: {shown}"
        );
    }
}

/// The oral-oncology programme's closed alerts per outcome on the dashboard.
async fn outcomes(app: &TestApp, who: &str) -> [usize; 5] {
    let board = app.get_page("/telesurveillance", who).await.page();
    let section = board
        .split("<section")
        .find(|s| s.contains("data-programme=\"Suivi des thérapies orales"))
        .expect("the programme's section")
        .to_owned();
    domain::monitoring::Outcome::ALL.map(|o| {
        let marker = format!("data-outcome=\"{}\">", o.code());
        let at = section.find(&marker).expect("an outcome figure") + marker.len();
        section[at..]
            .split('<')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count")
    })
}

#[tokio::test]
async fn from_an_alert_the_team_books_a_teleconsultation_or_asks_for_an_orientation() {
    use domain::monitoring::{AlertStatus, Outcome};
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await.id;
        let e = app.store.enrolments_of(lambert).await.unwrap().remove(0);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        answer(&app, &patient, &e.id.to_string(), "nausea", "2").await;
        answer(&app, &patient, &e.id.to_string(), "mucositis", "2").await;
        let alert_of = async |item: &str| {
            app.store
                .alert_queue(e.establishment)
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.item == item)
                .unwrap()
        };
        let (nausea, mucositis) = (alert_of("nausea").await, alert_of("mucositis").await);
        let nurse = app.login("ide.petit").await;
        let baseline = outcomes(&app, &nurse).await;
        let page = format!("/alertes/{}", nausea.id);
        let tele = format!("/alertes/{}/teleconsultation", nausea.id);
        let martin = app
            .store
            .user_by_username("dr.martin")
            .await
            .unwrap()
            .unwrap()
            .id;
        let bernard = app
            .store
            .user_by_username("dr.bernard")
            .await
            .unwrap()
            .unwrap()
            .id;
        let (martin, bernard) = (martin.to_string(), bernard.to_string());

        // Not before the alert is taken.
        let open = app.get_page(&page, &nurse).await.page();
        assert!(
            !open.contains("Programmer une téléconsultation"),
            "{backend}"
        );
        let r = post(&app, &nurse, &page, &tele, &[("medecin", &martin)]).await;
        assert_eq!(r.status, 422, "{backend}");
        let r = post(&app, &nurse, &page, &page, &[("action", "take")]).await;
        assert_eq!(r.status, 303, "{backend}");
        let taken = app.get_page(&page, &nurse).await.page();
        assert!(
            taken.contains("Programmer une téléconsultation") && taken.contains("Dr Claire Martin"),
            "{backend}"
        );
        let r = post(&app, &nurse, &page, &tele, &[("medecin", &bernard)]).await;
        assert_eq!(
            r.status, 422,
            "{backend}: a doctor of another establishment"
        );
        assert!(
            r.page()
                .contains("choisissez un médecin de l'établissement")
        );
        let before = app.store.appointments_of_patient(lambert).await.unwrap();

        // One step: the first free video slot of her oncologist, and the alert closes.
        let r = post(&app, &nurse, &page, &tele, &[("medecin", &martin)]).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let mut booked = app.store.appointments_of_patient(lambert).await.unwrap();
        booked.retain(|a| !before.iter().any(|b| b.id == a.id));
        assert_eq!(booked.len(), 1, "{backend}: one more appointment");
        assert_eq!(booked[0].mode, domain::schedule::Mode::Tele);
        assert_eq!(booked[0].practitioner.to_string(), martin);
        let closed = app.store.alert(nausea.id).await.unwrap();
        assert_eq!(
            (closed.status, closed.outcome_kind),
            (AlertStatus::Closed, Some(Outcome::Consultation)),
            "{backend}"
        );
        let note = closed.outcome.unwrap();
        assert!(
            note.starts_with("Téléconsultation le ") && note.ends_with("avec Dr Claire Martin"),
            "{backend}: {note}"
        );
        assert!(
            app.get_page(&page, &nurse)
                .await
                .page()
                .contains("téléconsultation programmée")
        );

        // An orientation request, prefilled from the alert, closes the other one.
        let form = format!(
            "/orientation/nouvelle?patient={lambert}&alerte={}",
            mucositis.id
        );
        assert_eq!(
            app.get_page(&form, &nurse).await.status,
            409,
            "{backend}: not taken yet"
        );
        let mpage = format!("/alertes/{}", mucositis.id);
        assert_eq!(
            post(&app, &nurse, &mpage, &mpage, &[("action", "take")])
                .await
                .status,
            303
        );
        let prefilled = app.get_page(&form, &nurse).await.page();
        assert!(
            prefilled.contains("Alerte à traiter du") && prefilled.contains("Mucite"),
            "{backend}: {prefilled}"
        );
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string();
        let alert_id = mucositis.id.to_string();
        let lambert_id = lambert.to_string();
        let r = post(
            &app,
            &nurse,
            &form,
            "/orientation",
            &[
                ("patient", &lambert_id),
                ("alerte", &alert_id),
                ("cible", "had"),
                (
                    "besoins",
                    "Mucite de grade 2, alimentation difficile : soins de bouche à domicile",
                ),
                ("date", "2026-11-20"),
                ("destinataire", &hospital),
            ],
        )
        .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let oriented = app.store.alert(mucositis.id).await.unwrap();
        assert_eq!(
            (
                oriented.status,
                oriented.outcome_kind,
                oriented.outcome.as_deref()
            ),
            (
                AlertStatus::Closed,
                Some(Outcome::Orientation),
                Some("Demande d'orientation (HAD) envoyée")
            ),
            "{backend}"
        );

        // The programme's dashboard counts the outcomes (the demo's closed
        // alerts were there before).
        let after = outcomes(&app, &nurse).await;
        assert_eq!(
            after,
            [
                baseline[0],
                baseline[1] + 1,
                baseline[2],
                baseline[3] + 1,
                baseline[4]
            ],
            "{backend}"
        );
    }
}

/// Mme Lambert's lines of the clinic's November CSV: (code, due, reason).
async fn lambert_lines(app: &TestApp, who: &str, ipp: &str) -> Vec<(String, String, String)> {
    let r = app
        .get_page("/telesurveillance/facturation.csv?mois=2026-11", who)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "a CSV"
    );
    let text = r.text.trim_start_matches('\u{feff}');
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("mois;programme;ipp;patient;code;forfait;montant;du;motif")
    );
    lines
        .map(|l| l.split(';').map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.get(2).map(String::as_str) == Some(ipp))
        .map(|f| (f[4].clone(), f[7].clone(), f[8..].join(";")))
        .collect()
}

#[tokio::test]
async fn the_billing_office_reads_the_month_s_statement_and_exports_it() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let e = app.store.enrolments_of(lambert.id).await.unwrap().remove(0);
        let page = "/telesurveillance/facturation?mois=2026-11";
        // The establishment's desk and admin only.
        let desk = app.login("sec.durand").await;
        assert_eq!(app.get_page(page, &desk).await.status, 200, "{backend}");
        let nurse = app.login("ide.petit").await;
        assert_eq!(app.get_page(page, &nurse).await.status, 403, "{backend}");
        let other = app.login("admin.hopital").await;
        let theirs = format!("{page}&etablissement={}", e.establishment);
        assert_eq!(app.get_page(&theirs, &other).await.status, 403, "{backend}");
        assert_eq!(
            app.get_page("/telesurveillance/facturation?mois=2026-13", &desk)
                .await
                .status,
            400
        );
        let empty = app
            .get_page("/telesurveillance/facturation?mois=2020-01", &desk)
            .await
            .page();
        assert!(
            empty.contains("Aucun patient suivi ce mois-là"),
            "{backend}"
        );

        // Two days of answers this month, the first with an alert nobody
        // has handled yet: the provider's fee is due, not the team's.
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        answer(&app, &patient, &e.id.to_string(), "nausea", "2").await;
        app.clock.advance_secs(24 * 3600);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        answer(&app, &patient, &e.id.to_string(), "nausea", "0").await;
        let desk = app.login("sec.durand").await;
        let lines = lambert_lines(&app, &desk, &lambert.ipp).await;
        assert_eq!(lines.len(), 2, "{backend}: {lines:?}");
        assert_eq!(
            (lines[1].0.as_str(), lines[1].1.as_str()),
            ("TLS-TEC", "oui"),
            "{backend}"
        );
        assert_eq!(
            (lines[0].0.as_str(), lines[0].1.as_str()),
            ("TLS-OPE", "non")
        );
        assert!(
            lines[0].2.contains("non traitée(s) par l'équipe"),
            "{backend}: {lines:?}"
        );
        let shown = app.get_page(page, &desk).await.page();
        assert!(
            shown.contains("non dû : ") && shown.contains("Relevé de novembre 2026"),
            "{backend}"
        );

        // Once the nurse has acted on every alert, the team's fee is due.
        let nurse = app.login("ide.petit").await;
        for a in app.store.alert_queue(e.establishment).await.unwrap() {
            if a.patient == lambert.id {
                let url = format!("/alertes/{}", a.id);
                let r = post(&app, &nurse, &url, &url, &[("action", "take")]).await;
                assert_eq!(r.status, 303, "{backend}");
            }
        }
        let lines = lambert_lines(&app, &desk, &lambert.ipp).await;
        assert!(lines.iter().all(|l| l.1 == "oui"), "{backend}: {lines:?}");

        // The FHIR export: ChargeItems that fhir.resources accepts.
        let r = app
            .get_page("/telesurveillance/facturation.json?mois=2026-11", &desk)
            .await;
        assert_eq!(r.status, 200, "{backend}");
        let bundle = r.json();
        assert_eq!(bundle["type"], "collection");
        let items: Vec<serde_json::Value> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].clone())
            .collect();
        let hers: Vec<&serde_json::Value> = items
            .iter()
            .filter(|i| i["subject"]["reference"] == format!("Patient/{}", lambert.id))
            .collect();
        assert_eq!(hers.len(), 2, "{backend}");
        assert!(hers.iter().all(|i| i["status"] == "billable"), "{backend}");
        validate_fhir(&items);
        // Reading the statement is an audited read of each patient shown.
        let trail = app.store.audit_entries(0, 1_000_000).await.unwrap();
        let desk_user = app
            .store
            .user_by_username("sec.durand")
            .await
            .unwrap()
            .unwrap();
        assert!(
            trail.iter().any(|a| a.actor_id == desk_user.id.to_string()
                && a.patient.as_deref() == Some(lambert.id.to_string().as_str())),
            "{backend}"
        );
    }
}
