//! Booking: the patient on the portal, the desk for a patient; one slot, one
//! appointment (a double booking is refused); cancellation with a reason; a
//! confirmation with an iCalendar event leaves through the outbox each time.

use crate::helpers::*;

/// The booking forms of a page: (praticien, etablissement, debut) of each slot.
fn slots_of(html: &str) -> Vec<(String, String, String)> {
    let value = |chunk: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        chunk.find(&marker).map(|i| {
            chunk[i + marker.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
    };
    html.split("<form method=\"post\" action=\"/rdv/prendre\"")
        .skip(1)
        .filter_map(|chunk| {
            Some((
                value(chunk, "praticien")?,
                value(chunk, "etablissement")?,
                value(chunk, "debut")?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn patients_and_the_desk_book_and_cancel() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let pcookie = format!("parcours_session={patient}");
        // The demo booked her a video consultation with her oncologist.
        let mine = app.get_page("/rdv", &patient).await.page();
        assert!(
            mine.contains("Dr Claire Martin")
                && mine.contains("en téléconsultation")
                && mine.contains("confirmé"),
            "{backend}: {mine}"
        );
        // She picks the oncologist, sees the free slots, books the first.
        let choose = app.get_page("/rdv/prendre", &patient).await.page();
        assert!(
            choose.contains("Dr Claire Martin, Oncologue — Clinique Saint-Roch"),
            "{backend}: {choose}"
        );
        let martin = app.user_id("dr.martin").await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let page = app
            .get_page(
                &format!("/rdv/prendre?praticien={martin}&etablissement={clinic}"),
                &patient,
            )
            .await;
        let slots = slots_of(&page.text);
        assert!(slots.len() > 10, "{backend}: {}", page.text);
        let booked = app.store.appointments_of_patient(lambert.id).await.unwrap();
        assert!(
            !slots.iter().any(|s| s.2 == booked[0].start_ms.to_string()),
            "{backend}: a booked slot is not offered"
        );
        let csrf = csrf_field(&page.text);
        let (p, e, start) = slots[0].clone();
        let form = |start: &str| {
            vec![
                ("csrf", csrf.clone()),
                ("praticien", p.clone()),
                ("etablissement", e.clone()),
                ("debut", start.to_owned()),
            ]
        };
        let post = async |cookie: &str, f: Vec<(&str, String)>| {
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form("/rdv/prendre", cookie, &refs).await
        };
        let r = post(&pcookie, form(&start)).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let url = r.header("location").unwrap();
        let id = url.trim_start_matches("/rdv/").to_owned();
        // The same slot again: taken. A time that is no slot: refused.
        let r = post(&pcookie, form(&start)).await;
        assert_eq!(r.status, 409, "{backend}");
        assert!(r.page().contains("vient d'être pris"));
        let off: i64 = start.parse::<i64>().unwrap() + 60_000;
        assert_eq!(post(&pcookie, form(&off.to_string())).await.status, 422);
        // The confirmation left with an iCalendar event.
        let confirmation = app
            .store
            .outbox_message(&format!("rdv:{id}:confirmation"))
            .await
            .unwrap()
            .expect("confirmation");
        assert_eq!(confirmation.destination, format!("portail:{}", lambert.id));
        assert!(
            confirmation.payload.contains("BEGIN:VCALENDAR")
                && confirmation.payload.contains("METHOD:PUBLISH")
        );

        // The desk books for a patient it found; the clinic's desk cannot book on
        // the hospital's agendas.
        let desk = app.login("sec.durand").await;
        let dcookie = format!("parcours_session={desk}");
        let page = app
            .get_page(
                &format!(
                    "/rdv/prendre?patient={}&praticien={martin}&etablissement={clinic}",
                    lambert.id
                ),
                &desk,
            )
            .await;
        assert!(
            page.page()
                .contains("Prendre rendez-vous pour LAMBERT Monique"),
            "{backend}: {}",
            page.text
        );
        let slots = slots_of(&page.text);
        assert!(
            !slots.iter().any(|s| s.2 == start),
            "{backend}: taken slots are gone"
        );
        let mut f = vec![
            ("csrf", csrf_field(&page.text)),
            ("patient", lambert.id.to_string()),
        ];
        f.extend([
            ("praticien", slots[0].0.clone()),
            ("etablissement", slots[0].1.clone()),
            ("debut", slots[0].2.clone()),
        ]);
        assert_eq!(post(&dcookie, f.clone()).await.status, 303, "{backend}");
        let agenda = app.get_page("/rdv", &desk).await.page();
        assert!(
            agenda.contains("LAMBERT Monique") && agenda.contains("Agendas"),
            "{backend}: {agenda}"
        );
        let bernard = app.user_id("dr.bernard").await;
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let hospital_slot =
            server::services::schedule::free_slots(app.state.ctx(), bernard, hospital, 14)
                .await
                .unwrap()[0];
        let mut other = f.clone();
        other.truncate(2);
        other.extend([
            ("praticien", bernard.to_string()),
            ("etablissement", hospital.to_string()),
            ("debut", hospital_slot.start_ms.to_string()),
        ]);
        assert_eq!(
            post(&dcookie, other).await.status,
            403,
            "{backend}: another establishment's agenda"
        );

        // Cancel: a reason is asked; the patient sees it cancelled; the slot is free again.
        let show = app.get_page(&url, &patient).await;
        let c = csrf_field(&show.text);
        assert_eq!(
            app.post_form(
                &format!("{url}/annuler"),
                &pcookie,
                &[("csrf", &c), ("motif", "")]
            )
            .await
            .status,
            422
        );
        assert_eq!(
            app.post_form(
                &format!("{url}/annuler"),
                &pcookie,
                &[("csrf", &c), ("motif", "Empêchement")]
            )
            .await
            .status,
            303
        );
        assert!(
            app.get_page(&url, &patient)
                .await
                .page()
                .contains("annulé (Empêchement)")
        );
        assert_eq!(
            app.post_form(
                &format!("{url}/annuler"),
                &pcookie,
                &[("csrf", &c), ("motif", "encore")]
            )
            .await
            .status,
            409
        );
        let notice = app
            .store
            .outbox_message(&format!("rdv:{id}:annulation"))
            .await
            .unwrap()
            .expect("notice");
        assert!(notice.payload.contains("METHOD:CANCEL"));
        let again = slots_of(
            &app.get_page(
                &format!("/rdv/prendre?praticien={martin}&etablissement={clinic}"),
                &patient,
            )
            .await
            .text,
        );
        assert!(
            again.iter().any(|s| s.2 == start),
            "{backend}: the slot is free again"
        );
        // Someone else's appointment is not found; a hospital nurse sees nothing of it.
        let nurse = app.login("ipa.robert").await;
        assert_eq!(app.get_page(&url, &nurse).await.status, 404);
        let other_patient = app.login("lits.moreau").await;
        assert_eq!(app.get_page("/rdv", &other_patient).await.status, 403);
    }
}

#[tokio::test]
async fn fhir_appointment_schedule_and_slot_return_the_demo_agendas() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's integration client
        let muller = app.demo_patient("Muller").await.id;
        let lambert = app.demo_patient("Lambert").await.id;
        let bernard = app.user_id("dr.bernard").await;
        let get = async |path: String| {
            let r = app.get(&path, Some(&token)).await;
            assert_eq!(r.status, 200, "{backend} {path}: {}", r.text);
            r.json()
        };
        let by_patient = get(format!("/fhir/Appointment?patient=Patient/{muller}")).await;
        let a = &by_patient["entry"][0]["resource"];
        assert_eq!(
            (
                a["status"].as_str(),
                a["serviceType"][0]["coding"][0]["code"].as_str()
            ),
            (Some("booked"), Some("presentiel")),
            "{backend}: {by_patient}"
        );
        assert_eq!(a["participant"][1]["actor"]["display"], "Dr Hugo Bernard");
        let by_practitioner = get(format!(
            "/fhir/Appointment?practitioner=Practitioner/{bernard}"
        ))
        .await;
        assert_eq!(
            by_practitioner["entry"].as_array().unwrap().len(),
            1,
            "{backend}"
        );
        // The clinic's appointments are not the hospital client's business.
        let other = get(format!("/fhir/Appointment?patient=Patient/{lambert}")).await;
        assert!(
            other["entry"].as_array().is_none_or(|e| e.is_empty()),
            "{backend}: {other}"
        );
        let schedules = get("/fhir/Schedule".into()).await;
        assert_eq!(
            schedules["entry"].as_array().unwrap().len(),
            1,
            "{backend}: Dr Bernard only"
        );
        assert_eq!(schedules["entry"][0]["resource"]["id"], bernard.to_string());
        let slots = get(format!("/fhir/Slot?schedule=Schedule/{bernard}")).await;
        let free = slots["entry"].as_array().unwrap();
        assert!(
            free.len() >= 20,
            "{backend}: two afternoons a week, 6 slots each, over two weeks"
        );
        assert!(
            !free.iter().any(|s| s["resource"]["start"] == a["start"]),
            "{backend}: the booked slot is not free"
        );
        let r = app.get("/fhir/Slot", Some(&token)).await;
        assert_eq!(r.status, 400);
        let r = app.get("/fhir/Appointment", Some(&token)).await;
        assert_eq!(r.status, 400);
        validate_fhir(&[by_patient, by_practitioner, schedules, slots]);
    }
}

#[tokio::test]
async fn the_clinic_agenda_hears_of_bookings_and_cancellations_over_siu() {
    let (agenda, received) = receiver("AA").await;
    let app = spawn_app_with("postgres", |c| {
        c.siu_destination = Some(format!("mllp://{agenda}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await;
    let martin = app.user_id("dr.martin").await;
    let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
    let desk = app.login("sec.durand").await;
    let page = app
        .get_page(
            &format!(
                "/rdv/prendre?patient={}&praticien={martin}&etablissement={clinic}",
                lambert.id
            ),
            &desk,
        )
        .await;
    let slot = slots_of(&page.text).remove(0);
    let cookie = format!("parcours_session={desk}");
    let r = app
        .post_form(
            "/rdv/prendre",
            &cookie,
            &[
                ("csrf", &csrf_field(&page.text)),
                ("patient", &lambert.id.to_string()),
                ("praticien", &slot.0),
                ("etablissement", &slot.1),
                ("debut", &slot.2),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let url = r.header("location").unwrap();
    eventually("S12 delivered", async || {
        received.lock().unwrap().len() == 1
    })
    .await;
    let show = app.get_page(&url, &desk).await;
    assert_eq!(
        app.post_form(
            &format!("{url}/annuler"),
            &cookie,
            &[
                ("csrf", &csrf_field(&show.text)),
                ("motif", "Patiente hospitalisée")
            ]
        )
        .await
        .status,
        303
    );
    eventually("S15 delivered", async || {
        received.lock().unwrap().len() == 2
    })
    .await;
    let all = received.lock().unwrap().clone();
    validate_hl7(&all);
    let id = url.trim_start_matches("/rdv/");
    assert!(
        all[0].contains("SIU^S12^SIU_S12") && all[0].contains(&format!("SCH|{id}^PARCOURS")),
        "{}",
        all[0]
    );
    assert!(
        all[0].contains("AIP|1||1000001001") && all[0].contains("^Dr Claire Martin^"),
        "{}",
        all[0]
    );
    assert!(
        all[1].contains("SIU^S15^SIU_S12") && all[1].contains("Cancelled"),
        "{}",
        all[1]
    );
}

/// An SIU from the hospital's agenda (the demo's GAM sender).
pub(crate) fn siu(
    event: &str,
    control: &str,
    external: &str,
    ipp: &str,
    rpps: &str,
    start: &str,
) -> String {
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123101500||SIU^{event}^SIU_S12|{control}|P|2.5|||||FRA|UNICODE UTF-8\r\
         SCH||{external}^AGENDA||||BOOK|presentiel^Consultation||30|min|^^30^{start}||||||||||||||Booked\r\
         PID|1||{ipp}^^^CHVL&450000021&M^PI||Muller^Jean-Pierre||19581115|M\r\
         RGS|1\r\
         AIP|1||{rpps}^Bernard|||{start}\r"
    )
}

#[tokio::test]
async fn bookings_made_in_the_hospital_agenda_arrive_over_siu() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let muller = app.demo_patient("Muller").await;
        let bernard = app
            .store
            .user_by_username("dr.bernard")
            .await
            .unwrap()
            .unwrap();
        let rpps = bernard.rpps.clone().unwrap();
        let mut c = Mllp::connect(&app).await;
        let mut send = async |m: String| ack_code(&c.send(m.as_bytes()).await);
        let before = app
            .store
            .appointments_of_patient(muller.id)
            .await
            .unwrap()
            .len();
        let (code, _, _) = send(siu(
            "S12",
            "s1",
            "EXT-1",
            &muller.ipp,
            &rpps,
            "20261201143000",
        ))
        .await;
        assert_eq!(code, "AA", "{backend}");
        let list = app.store.appointments_of_patient(muller.id).await.unwrap();
        assert_eq!(list.len(), before + 1, "{backend}");
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let a = app
            .store
            .appointment_by_external(hospital, "EXT-1")
            .await
            .unwrap()
            .expect("found by the agenda's id");
        assert_eq!(
            (a.practitioner, a.end_ms - a.start_ms),
            (bernard.id, 30 * 60_000)
        );
        assert_eq!(
            a.start_ms,
            server::services::hl7::parse_dtm("20261201143000").unwrap()
        );
        // The same message again: the same answer, no second appointment.
        assert_eq!(
            send(siu(
                "S12",
                "s1",
                "EXT-1",
                &muller.ipp,
                &rpps,
                "20261201143000"
            ))
            .await
            .0,
            "AA"
        );
        assert_eq!(
            app.store
                .appointments_of_patient(muller.id)
                .await
                .unwrap()
                .len(),
            before + 1
        );
        // Moved (S13): the old one is cancelled, the new time booked.
        assert_eq!(
            send(siu(
                "S13",
                "s2",
                "EXT-1",
                &muller.ipp,
                &rpps,
                "20261202100000"
            ))
            .await
            .0,
            "AA",
            "{backend}"
        );
        let list = app.store.appointments_of_patient(muller.id).await.unwrap();
        assert_eq!(
            app.store.appointment(a.id).await.unwrap().status,
            "cancelled"
        );
        assert!(list.iter().any(|x| x.status == "booked"
            && x.start_ms == server::services::hl7::parse_dtm("20261202100000").unwrap()));
        // Cancelled (S15).
        assert_eq!(
            send(siu(
                "S15",
                "s3",
                "EXT-1",
                &muller.ipp,
                &rpps,
                "20261202100000"
            ))
            .await
            .0,
            "AA"
        );
        assert!(
            app.store
                .appointment_by_external(hospital, "EXT-1")
                .await
                .unwrap()
                .is_none()
        );
        // Errors: unknown patient, unknown practitioner, unknown appointment (AE);
        // an event not handled (AR); a double booking (AE).
        let (code, err, at) =
            send(siu("S12", "s4", "EXT-2", "NOPE", &rpps, "20261203100000")).await;
        assert_eq!(
            (code.as_str(), err.as_deref()),
            ("AE", Some("204")),
            "{backend}: patient unknown"
        );
        assert!(at.unwrap_or_default().starts_with("PID^1^3"));
        assert_eq!(
            send(siu(
                "S12",
                "s5",
                "EXT-3",
                &muller.ipp,
                "99999999999",
                "20261203100000"
            ))
            .await
            .0,
            "AE"
        );
        assert_eq!(
            send(siu(
                "S15",
                "s6",
                "EXT-404",
                &muller.ipp,
                &rpps,
                "20261203100000"
            ))
            .await
            .0,
            "AE"
        );
        assert_eq!(
            send(siu(
                "S26",
                "s7",
                "EXT-1",
                &muller.ipp,
                &rpps,
                "20261203100000"
            ))
            .await
            .0,
            "AR"
        );
        assert_eq!(
            send(siu(
                "S12",
                "s8",
                "EXT-4",
                &muller.ipp,
                &rpps,
                "20261204100000"
            ))
            .await
            .0,
            "AA"
        );
        let (code, err, _) = send(siu(
            "S12",
            "s9",
            "EXT-5",
            &muller.ipp,
            &rpps,
            "20261204100000",
        ))
        .await;
        assert_eq!(
            (code.as_str(), err.as_deref()),
            ("AE", Some("205")),
            "{backend}: the practitioner is taken then"
        );
        // Moving EXT-4 onto the time EXT-6 holds is refused, and EXT-4 stays booked.
        let (code, _, _) = send(siu(
            "S12",
            "s10",
            "EXT-6",
            &muller.ipp,
            &rpps,
            "20261205100000",
        ))
        .await;
        assert_eq!(code, "AA");
        let (code, err, _) = send(siu(
            "S13",
            "s11",
            "EXT-4",
            &muller.ipp,
            &rpps,
            "20261205100000",
        ))
        .await;
        assert_eq!(
            (code.as_str(), err.as_deref()),
            ("AE", Some("205")),
            "{backend}"
        );
        assert!(
            app.store
                .appointment_by_external(hospital, "EXT-4")
                .await
                .unwrap()
                .is_some(),
            "{backend}: still booked"
        );
        // Every message is in the log.
        assert!(
            app.store
                .hl7_message_for("GAM|CHVL", "s9")
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn the_doctor_sees_the_patient_arrive_in_the_waiting_room_live() {
    use futures_util::{SinkExt, StreamExt};
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let a = app
            .store
            .appointments_of_patient(lambert.id)
            .await
            .unwrap()
            .remove(0); // the demo's video consultation
        // Tomorrow morning's consultation is within the doctor's list once its day comes.
        app.clock
            .advance_secs(((a.start_ms - app.state.now_ms()) / 1000 - 3600).max(0));
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let doctor = app.login("dr.martin").await;
        let table = app.get_page("/salle-attente/table", &doctor).await.page();
        assert!(
            table.contains("LAMBERT Monique") && table.contains("pas encore arrivé(e)"),
            "{backend}: {table}"
        );
        let mut list = app.ws("/salle-attente/ws", &doctor).await.unwrap();
        // The patient's room: the page, then presence over the socket.
        let room = app
            .get_page(&format!("/rdv/{}/salle", a.id), &patient)
            .await;
        assert!(room.page().contains("Je suis prêt(e)"), "{backend}");
        let mut presence = app
            .ws(&format!("/rdv/{}/salle/ws", a.id), &patient)
            .await
            .unwrap();
        presence
            .send(tokio_tungstenite::tungstenite::Message::Text(
                "{\"camera\":true,\"microphone\":true}".into(),
            ))
            .await
            .unwrap();
        let pushed = tokio::time::timeout(std::time::Duration::from_secs(2), list.next())
            .await
            .expect("pushed within 2 s")
            .unwrap()
            .unwrap();
        assert_eq!(pushed.into_text().unwrap().as_str(), "salle");
        let mut seen = String::new();
        for _ in 0..50 {
            seen = app.get_page("/salle-attente/table", &doctor).await.page();
            if seen.contains("caméra ok, micro ok") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            seen.contains("data-presence=\"en attente\"") && seen.contains("caméra ok, micro ok"),
            "{backend}: {seen}"
        );
        // The network is cut: still in the list, shown disconnected.
        drop(presence);
        for _ in 0..50 {
            seen = app.get_page("/salle-attente/table", &doctor).await.page();
            if seen.contains("déconnecté(e)") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(seen.contains("déconnecté(e)"), "{backend}: {seen}");
        // Refreshed again and again, the list read the record once for the session.
        let reads = app.audited(lambert.id, "dr.martin", "read").await;
        assert_eq!(reads, 1, "{backend}: once for the session, not per refresh");
        // Others: another doctor sees nothing of it; a non-doctor has no list; a
        // patient cannot enter someone else's room.
        let other = app.login("dr.bernard").await;
        assert!(
            !app.get_page("/salle-attente/table", &other)
                .await
                .page()
                .contains("LAMBERT")
        );
        let nurse = app.login("ide.petit").await;
        assert_eq!(app.get_page("/salle-attente", &nurse).await.status, 403);
        assert_eq!(
            app.get_page(&format!("/rdv/{}/salle", a.id), &doctor)
                .await
                .status,
            403
        );
    }
}

#[tokio::test]
async fn the_doctor_lets_the_patient_in_and_the_room_relays_between_them() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app("sqlite").await;
    let lambert = app.demo_patient("Lambert").await;
    let a = app
        .store
        .appointments_of_patient(lambert.id)
        .await
        .unwrap()
        .remove(0);
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let doctor = app.login("dr.martin").await;
    let next_text = async |s: &mut Ws| {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(2), s.next())
                .await
                .expect("within 2 s")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return t.to_string();
            }
        }
    };
    // The patient waits; the doctor lets them in; their page is told to enter.
    let mut waiting = app
        .ws(&format!("/rdv/{}/salle/ws", a.id), &patient)
        .await
        .unwrap();
    let show = app.get_page(&format!("/rdv/{}", a.id), &doctor).await;
    assert!(
        show.page().contains("Faire entrer le patient"),
        "{}",
        show.text
    );
    let r = app
        .post_form(
            &format!("/rdv/{}/entrer", a.id),
            &format!("parcours_session={doctor}"),
            &[("csrf", &csrf_field(&show.text))],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/consultation/{}", a.id)
    );
    assert_eq!(next_text(&mut waiting).await, "entrer");
    // A patient whose connection dropped and comes back is let in at once.
    drop(waiting);
    let mut again = app
        .ws(&format!("/rdv/{}/salle/ws", a.id), &patient)
        .await
        .unwrap();
    assert_eq!(next_text(&mut again).await, "entrer");
    drop(again);
    // The patient may not let themselves in.
    let pshow = app.get_page(&format!("/rdv/{}", a.id), &patient).await;
    assert!(!pshow.page().contains("Faire entrer"));
    let r = app
        .post_form(
            &format!("/rdv/{}/entrer", a.id),
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&pshow.text))],
        )
        .await;
    assert_eq!(r.status, 403);
    // Both in the room: each hears the other join, messages cross, never echo.
    assert!(
        app.get_page(&format!("/consultation/{}", a.id), &patient)
            .await
            .page()
            .contains("Téléconsultation avec Dr Claire Martin")
    );
    let mut d = app
        .ws(&format!("/consultation/{}/ws", a.id), &doctor)
        .await
        .unwrap();
    let mut p = app
        .ws(&format!("/consultation/{}/ws", a.id), &patient)
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut d).await,
        r#"{"event":"joined","from":"patient","type":"peer"}"#,
        "the room names who joined"
    );
    p.send(Message::Text(r#"{"type":"offer","sdp":"x"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut d).await, r#"{"type":"offer","sdp":"x"}"#);
    d.send(Message::Text(r#"{"type":"chat","text":"Bonjour"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut p).await,
        r#"{"type":"chat","text":"Bonjour"}"#
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), d.next())
            .await
            .is_err(),
        "nothing echoed"
    );
    drop(p);
    assert_eq!(
        next_text(&mut d).await,
        r#"{"event":"left","from":"patient","type":"peer"}"#
    );
    // Nobody else enters: another doctor, a nurse, another patient's account.
    for who in ["dr.bernard", "ide.petit"] {
        let s = app.login(who).await;
        assert_eq!(
            app.get_page(&format!("/consultation/{}", a.id), &s)
                .await
                .status,
            404,
            "{who}"
        );
        assert!(
            app.ws(&format!("/consultation/{}/ws", a.id), &s)
                .await
                .is_err(),
            "{who}"
        );
    }
}

#[tokio::test]
async fn appointments_are_reminded_the_day_before_once() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let martin = app.user_id("dr.martin").await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        // A slot more than two days ahead.
        let now = app.state.now_ms();
        let slot = server::services::schedule::free_slots(app.state.ctx(), martin, clinic, 14)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.start_ms > now + 48 * 3600 * 1000)
            .unwrap();
        let n = store::schedule::NewAppointment {
            practitioner: martin,
            establishment: clinic,
            patient: lambert.id,
            start_ms: slot.start_ms,
            end_ms: slot.end_ms,
            mode: slot.mode,
            booked_by: "test".into(),
        };
        let id = app
            .store
            .book(&n, &[], &domain::audit::AuditActor::system("test"), now)
            .await
            .unwrap();
        let key = format!("rdv:{id}:rappel");
        server::services::schedule::remind_appointments(app.state.ctx())
            .await
            .unwrap();
        assert!(
            app.store.outbox_message(&key).await.unwrap().is_none(),
            "{backend}: two days before, nothing"
        );
        app.clock
            .advance_secs((slot.start_ms - now - 23 * 3600 * 1000) / 1000);
        // (The server's own timer may also run now: what counts is the message.)
        server::services::schedule::remind_appointments(app.state.ctx())
            .await
            .unwrap();
        let m = app
            .store
            .outbox_message(&key)
            .await
            .unwrap()
            .expect("reminder");
        assert!(
            m.payload.starts_with("Rappel : rendez-vous le") && m.payload.contains("BEGIN:VEVENT"),
            "{}",
            m.payload
        );
        assert_eq!(
            server::services::schedule::remind_appointments(app.state.ctx())
                .await
                .unwrap(),
            0,
            "{backend}: once"
        );
    }
}

#[tokio::test]
async fn files_shared_in_the_room_reach_the_other_side_and_the_record() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let a = app
            .store
            .appointments_of_patient(lambert.id)
            .await
            .unwrap()
            .remove(0);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let doctor = app.login("dr.martin").await;
        app.let_in(&doctor, &a.id.to_string()).await;
        let mut d = app
            .ws(&format!("/consultation/{}/ws", a.id), &doctor)
            .await
            .unwrap();
        let room = app
            .get_page(&format!("/consultation/{}", a.id), &patient)
            .await;
        let csrf = csrf_field(&room.text);
        let upload = async |session: &str, name: &str, bytes: &[u8]| {
            let boundary = "----room";
            let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
            body.extend_from_slice(bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            read(
                app.http
                    .post(app.url(&format!("/consultation/{}/fichier", a.id)))
                    .header("cookie", format!("parcours_session={session}"))
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        };
        let pdf = b"%PDF-1.4\n% compte rendu de biologie\n%%EOF\n";
        let r = upload(&patient, "biologie.pdf", pdf).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        // The doctor's side is told at once.
        let told = loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(2), d.next())
                .await
                .expect("within 2 s")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m
                && t.contains("\"file\"")
            {
                break t.to_string();
            }
        };
        assert!(
            told.contains(&id) && told.contains("biologie.pdf"),
            "{told}"
        );
        let got = app.get_page(&format!("/pieces/{id}"), &doctor).await;
        assert_eq!(
            (got.status, got.header("content-type").as_deref()),
            (200, Some("application/pdf")),
            "{backend}"
        );
        assert_eq!(got.bytes.as_slice(), pdf);
        // Only photos and PDFs; only the two participants.
        assert_eq!(
            upload(&patient, "x.exe", b"MZ\x90\0").await.status,
            422,
            "{backend}"
        );
        let other = app.login("dr.bernard").await;
        assert_eq!(upload(&other, "x.pdf", pdf).await.status, 404, "{backend}");
        assert_eq!(
            app.get_page(&format!("/pieces/{id}"), &other).await.status,
            404,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn an_appointment_is_moved_new_slot_first_then_the_old_one_cancelled() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let old = app
            .store
            .appointments_of_patient(lambert.id)
            .await
            .unwrap()
            .remove(0);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let pcookie = format!("parcours_session={patient}");
        let show = app
            .get_page(&format!("/rdv/{}", old.id), &patient)
            .await
            .page();
        let link = show
            .split("id=\"move\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&#38;", "&");
        assert!(
            link.contains(&format!("deplacer={}", old.id)),
            "{backend}: {link}"
        );
        let page = app.get_page(&link, &patient).await;
        assert!(
            page.page().contains("Changer l'horaire"),
            "{backend} {link}: {} {}",
            page.status,
            page.text
        );
        let slots = slots_of(&page.text);
        let csrf = csrf_field(&page.text);
        let post = async |start: &str, moving: &str| {
            let (p, e, _) = slots[0].clone();
            app.post_form(
                "/rdv/prendre",
                &pcookie,
                &[
                    ("csrf", &csrf),
                    ("praticien", &p),
                    ("etablissement", &e),
                    ("debut", start),
                    ("deplacer", moving),
                ],
            )
            .await
        };
        // A slot taken meanwhile: refused, the old appointment untouched.
        let (martin, clinic, taken) = slots[0].clone();
        let muller = app.demo_patient("Muller").await;
        app.store
            .book(
                &store::schedule::NewAppointment {
                    practitioner: martin.parse().unwrap(),
                    establishment: clinic.parse().unwrap(),
                    patient: muller.id,
                    start_ms: taken.parse().unwrap(),
                    end_ms: taken.parse::<i64>().unwrap() + 20 * 60_000,
                    mode: domain::schedule::Mode::Tele,
                    booked_by: "test".into(),
                },
                &[],
                &domain::audit::AuditActor::system("test"),
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        let r = post(&taken, &old.id.to_string()).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(
            app.store.appointment(old.id).await.unwrap().status,
            "booked"
        );
        // Its own time: nothing to move.
        assert_eq!(
            post(&old.start_ms.to_string(), &old.id.to_string())
                .await
                .status,
            422
        );
        // A free slot: booked, the old one cancelled with the new time as reason.
        let r = post(&slots[1].2, &old.id.to_string()).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let new_id = r
            .header("location")
            .unwrap()
            .trim_start_matches("/rdv/")
            .to_owned();
        let new = app
            .store
            .appointment(new_id.parse::<domain::AppointmentId>().unwrap())
            .await
            .unwrap();
        assert_eq!(
            (new.status.as_str(), new.start_ms.to_string()),
            ("booked", slots[1].2.clone())
        );
        let moved = app.store.appointment(old.id).await.unwrap();
        assert_eq!(moved.status, "cancelled", "{backend}");
        assert!(
            moved.cancel_reason.unwrap().starts_with("déplacé au "),
            "{backend}"
        );
        for key in [
            format!("rdv:{new_id}:confirmation"),
            format!("rdv:{}:annulation", old.id),
        ] {
            assert!(
                app.store.outbox_message(&key).await.unwrap().is_some(),
                "{backend}: {key}"
            );
        }
        // A cancelled appointment is not moved again; nor is another's.
        assert_eq!(
            post(&slots[2].2, &old.id.to_string()).await.status,
            422,
            "{backend}"
        );
        let other = app.store.appointments_of_patient(muller.id).await.unwrap();
        let r = post(&slots[2].2, &other[0].id.to_string()).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
    }
}
