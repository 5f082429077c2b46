//! Bed pages: the bed manager's screen, the regional view with its fragment for
//! live refresh, the CSV; occupancy moved by ADT with no double entry.

use crate::helpers::*;

fn admission(control: &str, visit: &str, bed: &str) -> String {
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|202611231000||ADT^A01^ADT_A01|{control}|P|2.5\r\
         EVN||202611231000\r\
         PID|1||B{visit}^^^CHVL&450000021&M^PI||Lit^Anne^^^^^L||19600101|F\r\
         PV1|1|I|REA^1^{bed}||||||||||||||||{visit}\r\
         ZBE|{visit}-1^CHVL|202611231000||INSERT|N\r"
    )
}

async fn form(app: &TestApp, session: &str, path: &str, fields: &[(&str, &str)]) -> Resp {
    let page = app.get_page("/lits", session).await;
    let csrf = csrf_field(&page.text);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    app.post_form(path, &format!("parcours_session={session}"), &all)
        .await
}

#[tokio::test]
async fn bed_manager_and_regional_view() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap();
        let units = app.store.units(hospital.id).await.unwrap();
        let rea = units.iter().find(|u| u.code == "REA").unwrap().id;
        let urg = units.iter().find(|u| u.code == "URG").unwrap().id;
        let beds = app.login("lits.moreau").await;
        let page = app.get_page("/lits", &beds).await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(
            page.page().contains("12 libre(s)</strong> sur 12"),
            "{backend}: {}",
            page.text
        );

        // An ADT admission to the ICU lowers the free beds, no typing.
        let mut c = Mllp::connect(&app).await;
        assert_eq!(
            ack_code(&c.send(admission("b1", "V1", "1").as_bytes()).await).0,
            "AA"
        );
        assert!(
            app.get_page("/lits", &beds)
                .await
                .page()
                .contains("11 libre(s)</strong> sur 12"),
            "{backend}"
        );

        // Close two beds with a reason, then too many.
        let r = form(
            &app,
            &beds,
            &format!("/lits/{rea}/fermer"),
            &[("nombre", "2"), ("motif", "Travaux")],
        )
        .await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/lits")),
            "{backend}: {}",
            r.text
        );
        let page = app.get_page("/lits", &beds).await.page();
        assert!(
            page.contains("9 libre(s)</strong> sur 12") && page.contains("2 fermé(s) : Travaux"),
            "{backend}: {page}"
        );
        let r = form(
            &app,
            &beds,
            &format!("/lits/{rea}/fermer"),
            &[("nombre", "20")],
        )
        .await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.page().contains("impossible"));
        // An ADT-fed unit's occupancy is not typed; a manual one is.
        let r = form(
            &app,
            &beds,
            &format!("/lits/{rea}/occupation"),
            &[("delta", "1")],
        )
        .await;
        assert_eq!(r.status, 422);
        assert!(r.page().contains("flux ADT"));
        assert_eq!(
            form(
                &app,
                &beds,
                &format!("/lits/{urg}/occupation"),
                &[("delta", "1")]
            )
            .await
            .status,
            303
        );
        assert!(
            app.get_page("/lits", &beds)
                .await
                .page()
                .contains("9 libre(s)</strong> sur 10")
        );
        assert_eq!(
            form(
                &app,
                &beds,
                &format!("/lits/{rea}/rouvrir"),
                &[("nombre", "1")]
            )
            .await
            .status,
            303
        );
        // Bad input, CSRF and another establishment's unit.
        assert_eq!(
            form(
                &app,
                &beds,
                &format!("/lits/{rea}/fermer"),
                &[("nombre", "deux")]
            )
            .await
            .status,
            400
        );
        let cookie = format!("parcours_session={beds}");
        assert_eq!(
            app.post_form(&format!("/lits/{rea}/fermer"), &cookie, &[("nombre", "1")])
                .await
                .status,
            403,
            "no CSRF token"
        );
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
        let clinic_rea = app
            .store
            .units(clinic.id)
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.code == "REA")
            .unwrap()
            .id;
        assert_eq!(
            form(
                &app,
                &beds,
                &format!("/lits/{clinic_rea}/fermer"),
                &[("nombre", "1")]
            )
            .await
            .status,
            403
        );
        assert_eq!(
            form(&app, &beds, "/lits/nope/fermer", &[("nombre", "1")])
                .await
                .status,
            404
        );

        // The coordinator's regional view: both establishments, totals, filters.
        let coord = app.login("coord.garnier").await;
        let region = app.get_page("/region", &coord).await;
        assert_eq!(region.status, 200);
        let text = region.page();
        assert!(
            text.contains("Clinique Saint-Roch")
                && text.contains("Centre hospitalier du Val de Loire"),
            "{backend}"
        );
        assert!(
            text.contains("<strong>16</strong> libre(s) sur 18 — Réanimation"),
            "{backend}: 10 free of 12 at the hospital + 6 of 6: {text}"
        );
        let rea_only = app
            .get_page("/region/table?categorie=rea", &coord)
            .await
            .page();
        assert!(
            rea_only.contains("10/12") && !rea_only.contains("Chirurgie"),
            "{backend}: {rea_only}"
        );
        assert!(
            !rea_only.contains("<html"),
            "a fragment for the live refresh"
        );
        let csv = app
            .get_page(
                &format!("/region.csv?categorie=rea&etablissement={}", hospital.id),
                &coord,
            )
            .await;
        assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
        let lines: Vec<&str> = csv.text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", csv.text);
        assert!(lines[1].starts_with("Centre hospitalier du Val de Loire (démo);450000021;Réanimation;REA;rea;12;1;1;10;adt;"), "{}", lines[1]);
        assert_eq!(
            app.get_page("/region?categorie=xyz", &coord).await.status,
            400
        );
        assert_eq!(
            app.get_page("/lits", &coord).await.status,
            403,
            "coordinators do not manage beds"
        );
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        assert_eq!(app.get_page("/region", &patient).await.status, 403);
        let js = read(
            app.http
                .get(app.url("/static/live.js"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            js.header("content-type")
                .unwrap()
                .starts_with("text/javascript")
        );
    }
}

#[tokio::test]
async fn the_ror_shaped_fhir_export() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut c = Mllp::connect(&app).await;
        assert_eq!(
            ack_code(&c.send(admission("f1", "V7", "3").as_bytes()).await).0,
            "AA"
        );
        let b = app.get("/fhir/Location", Some(&token)).await.json();
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(
            entries.len(),
            11,
            "{backend}: 4 units in each acute establishment, 2 SSR units, 1 HAD"
        );
        let rea = entries
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["identifier"][0]["value"] == "1450000021/REA")
            .expect("the hospital's ICU")
            .clone();
        let ext = rea["extension"].as_array().unwrap();
        let count = |status: &str| {
            ext.iter()
                .find(|e| e["extension"][1]["valueCoding"]["code"] == status)
                .map(|e| e["extension"][3]["valueInteger"].as_i64().unwrap())
                .unwrap()
        };
        assert_eq!(
            (count("02"), count("05")),
            (11, 0),
            "{backend}: 12 beds, one admission"
        );
        let one = app
            .get(
                &format!("/fhir/Location/{}", rea["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(one.status, 200);
        assert_eq!(
            app.get("/fhir/Location/nope", Some(&token)).await.status,
            404
        );
        let s = app
            .get(
                "/fhir/HealthcareService?_include=HealthcareService:location",
                Some(&token),
            )
            .await
            .json();
        let modes: Vec<&str> = s["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["search"]["mode"].as_str().unwrap())
            .collect();
        assert_eq!(modes.iter().filter(|m| **m == "include").count(), 11);
        assert_eq!(
            app.get("/fhir/HealthcareService?_include=Foo:bar", Some(&token))
                .await
                .status,
            400
        );
        validate_fhir(&[b, one.json(), s]);
    }
}

/// A day of ADT traffic at the hospital, generated with a simple independent model
/// of where each patient is; the occupancy Parcours computes must match it.
#[tokio::test]
async fn occupancy_after_a_replayed_day_of_adt_matches_the_expected_counts() {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        In(&'static str),
        Out,
        Cancelled,
    }
    struct Stay {
        st: St,
        next_mv: usize,
        history: Vec<(&'static str, String, St)>, // (event, movement id, state before)
    }
    let app = spawn_app("postgres").await;
    let mut c = Mllp::connect(&app).await;
    let mut seed: u64 = 42;
    let mut rnd = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut stays: Vec<Stay> = Vec::new();
    let mut minute = 0u32;
    let mut sent = 0;
    let send = async |c: &mut Mllp,
                      event: &str,
                      v: usize,
                      mv: &str,
                      action: &str,
                      unit: &str,
                      minute: u32| {
        let when = format!("20261123{:02}{:02}", 6 + minute / 60, minute % 60);
        let msg = format!(
            "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|{when}||ADT^{event}^ADT_A01|day-{event}-{v}-{mv}-{action}|P|2.5\r\
             EVN||{when}\r\
             PID|1||D{v}^^^CHVL&450000021&M^PI||Jour^Anne^^^^^L||19600101|F\r\
             PV1|1|I|{unit}^1^{v}||||||||||||||||DAY{v}\r\
             ZBE|{mv}^CHVL|{when}||{action}|N\r"
        );
        let ack = c.send(msg.as_bytes()).await;
        assert_eq!(ack_code(&ack).0, "AA", "{msg:?}: {ack}");
    };
    for _ in 0..300 {
        minute += 2;
        let choice = rnd(10);
        let open: Vec<usize> = (0..stays.len())
            .filter(|&i| matches!(stays[i].st, St::In(_)))
            .collect();
        if choice < 4 || open.is_empty() {
            let unit = if rnd(2) == 0 { "REA" } else { "CHIR" };
            let v = stays.len();
            send(&mut c, "A01", v, "M0", "INSERT", unit, minute).await;
            stays.push(Stay {
                st: St::In(unit),
                next_mv: 1,
                history: vec![("A01", "M0".into(), St::Cancelled)],
            });
        } else {
            let v = open[rnd(open.len() as u64) as usize];
            let St::In(unit) = stays[v].st else {
                unreachable!()
            };
            // Movement ids are never reused, even after a cancel.
            let mv = format!("M{}", stays[v].next_mv);
            stays[v].next_mv += 1;
            match choice {
                4..=5 => {
                    let to = if unit == "REA" { "CHIR" } else { "REA" };
                    send(&mut c, "A02", v, &mv, "INSERT", to, minute).await;
                    let before = stays[v].st;
                    stays[v].history.push(("A02", mv, before));
                    stays[v].st = St::In(to);
                }
                6..=7 => {
                    send(&mut c, "A03", v, &mv, "INSERT", unit, minute).await;
                    let before = stays[v].st;
                    stays[v].history.push(("A03", mv, before));
                    stays[v].st = St::Out;
                }
                _ => {
                    // Cancel the last movement (A11 admission, A12 transfer).
                    let (ev, last_mv, before) = stays[v].history.pop().unwrap();
                    let cancel = if ev == "A01" { "A11" } else { "A12" };
                    send(&mut c, cancel, v, &last_mv, "CANCEL", unit, minute).await;
                    stays[v].st = before;
                }
            }
        }
        sent += 1;
    }
    // Some discharges cancelled (A13) at the end of the day.
    for (v, stay) in stays.iter_mut().enumerate() {
        if stay.st == St::Out && rnd(3) == 0 {
            let (ev, mv, before) = stay.history.pop().unwrap();
            assert_eq!(ev, "A03");
            minute += 1;
            send(&mut c, "A13", v, &mv, "CANCEL", "REA", minute).await;
            stay.st = before;
            sent += 1;
        }
    }
    let expected =
        |unit: &'static str| stays.iter().filter(|s| s.st == St::In(unit)).count() as i64;
    let hospital = app
        .store
        .establishment_by_finess(server::demo::HOSPITAL_FINESS)
        .await
        .unwrap()
        .unwrap();
    let t = app
        .store
        .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
        .await
        .unwrap()
        .unwrap();
    let beds = app.store.beds(t.id, Some(hospital.id)).await.unwrap();
    for unit in ["REA", "CHIR"] {
        let got = beds
            .iter()
            .find(|b| b.unit_code == unit)
            .unwrap()
            .counts
            .occupied;
        assert_eq!(got, expected(unit), "{unit} after {sent} messages");
    }
    assert!(
        expected("REA") + expected("CHIR") > 10,
        "a busy day, not an empty one"
    );
}

#[tokio::test]
async fn the_regional_view_charts_free_beds_over_a_day() {
    let app = spawn_app("sqlite").await;
    let coord = app.login("coord.garnier").await;
    // The application took a first snapshot when it started; one more a minute later.
    app.clock.advance_secs(60);
    server::snapshots::take(&app.state).await.unwrap();
    let mut c = Mllp::connect(&app).await;
    assert_eq!(
        ack_code(&c.send(admission("h1", "VH1", "2").as_bytes()).await).0,
        "AA"
    );
    app.clock.advance_secs(3600);
    server::snapshots::take(&app.state).await.unwrap();
    let page = app.get_page("/region?categorie=rea", &coord).await.page();
    assert!(page.contains("<svg"), "{page}");
    assert!(
        page.contains("Lits libres — Réanimation sur 24 heures : de 18 à 17 (sur 18)"),
        "{page}"
    );
    assert!(
        !page.contains("Chirurgie sur 24 heures"),
        "the filter applies to the charts"
    );
}
