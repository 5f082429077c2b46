//! Tenant isolation over HTTP: nothing crosses territories; identities are shared
//! inside one identity domain by design; roles limit what each actor sees.

use domain::org::Role;
use domain::{EstablishmentId, TerritoryId};
use reqwest::Method;
use store::audit::AuditFilter;
use store::orgs::{Establishment, Territory};
use store::users::{NewUser, UserKind};

use crate::helpers::*;

/// A second territory with one establishment, an integration client and a doctor.
async fn other_region(app: &TestApp) -> (String, EstablishmentId) {
    let now = app.clock.now_ms();
    let t = Territory {
        id: TerritoryId::new(),
        name: "Autre région".into(),
        oid: "1.2.250.1.999.77.1".into(),
    };
    app.store.create_territory(&t, now).await.unwrap();
    let e = Establishment {
        id: EstablishmentId::new(),
        territory: t.id,
        name: "CHU Ailleurs".into(),
        finess: "130000099".into(),
        kind: "public".into(),
        activity: domain::org::Activity::Mco,
    };
    app.store.create_establishment(&e, now).await.unwrap();
    let hash = server::auth::hash_secret("other-secret".into())
        .await
        .unwrap();
    app.store
        .create_client(
            "other-feed",
            "Autre flux",
            &hash,
            e.id,
            Role::Integration,
            now,
        )
        .await
        .unwrap();
    let user = NewUser {
        username: "dr.ailleurs".into(),
        display_name: "Dr Ailleurs".into(),
        kind: UserKind::Professional,
        password_hash: server::auth::hash_secret(server::demo::DEMO_PASSWORD.into())
            .await
            .unwrap(),
        totp_secret: Some(server::demo::DEMO_TOTP_SECRET.into()),
        rpps: None,
        profession: None,
        patient: None,
        roles: vec![(e.id, Role::Doctor)],
    };
    app.store.create_user(&user, now).await.unwrap();
    let token = app.token_for("other-feed", "other-secret").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, e.id)
}

#[tokio::test]
async fn api_clients_never_cross_territories() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (other, _) = other_region(&app).await;
        let ours = app.token().await;
        let lambert = app.demo_patient("Lambert").await;
        // Read across territories: 404 (existence not revealed), and audited as denied.
        let r = app
            .get(&format!("/fhir/Patient/{}", lambert.id), Some(&other))
            .await;
        assert_eq!(r.status, 404, "{backend}");
        let denied = app
            .store
            .list_audit(&AuditFilter {
                patient: Some(lambert.id.to_string()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (denied[0].action.as_str(), denied[0].outcome.as_str()),
            ("read", "denied"),
            "{backend}"
        );
        // Search sees only its own domain, even with the other's INS or IPP.
        let b = app
            .get("/fhir/Patient?family=lambert", Some(&other))
            .await
            .json();
        assert_eq!(b["entry"].as_array().unwrap().len(), 0, "{backend}");
        let ins = lambert.ins.as_ref().unwrap().value();
        let b = app
            .get(
                &format!("/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8%7C{ins}"),
                Some(&other),
            )
            .await
            .json();
        assert_eq!(b["entry"].as_array().unwrap().len(), 0);
        let b = app
            .get(
                &format!(
                    "/fhir/Patient?identifier=urn:oid:{}%7C{}",
                    server::demo::DEMO_DOMAIN_OID,
                    lambert.ipp
                ),
                Some(&other),
            )
            .await
            .json();
        assert_eq!(b["entry"].as_array().unwrap().len(), 0);
        // Writes: the other region creates in its own domain; the same person may
        // exist in both, each with its own IPP; neither side can update the other's.
        let mut body = patient_body(11, "QUAL");
        body["identifier"][0]["value"] = serde_json::json!(ins);
        let r = app
            .send_json(Method::POST, "/fhir/Patient", &other, &body)
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let theirs = r.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get(&format!("/fhir/Patient/{theirs}"), Some(&ours))
                .await
                .status,
            404
        );
        let mut update = r.json();
        update["name"][0]["family"] = serde_json::json!("Pirate");
        let r = app
            .send_json(
                Method::PUT,
                &format!("/fhir/Patient/{theirs}"),
                &ours,
                &update,
            )
            .await;
        assert_eq!(r.status, 404, "{backend}: no update across territories");
        // Directory and audit stay home too.
        let orgs = app.get("/fhir/Organization", Some(&other)).await.json();
        assert_eq!(
            orgs["entry"].as_array().unwrap().len(),
            2,
            "its territory and its establishment"
        );
        assert_eq!(app.get("/fhir/AuditEvent", Some(&other)).await.status, 403);
        let pracs = app.get("/fhir/Practitioner", Some(&other)).await.json();
        let names: Vec<&str> = pracs["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["name"][0]["text"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Dr Ailleurs"]);
    }
}

#[tokio::test]
async fn a_shared_identity_domain_shares_identities_by_design() {
    let app = spawn_app("sqlite").await;
    // Lambert is linked to the clinic only; the hospital's integration client reads her identity.
    let lambert = app.demo_patient("Lambert").await;
    let hospital = app
        .store
        .establishment_by_finess(server::demo::HOSPITAL_FINESS)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !app.store
            .patient_establishments(lambert.id)
            .await
            .unwrap()
            .contains(&hospital.id)
    );
    let token = app.token().await;
    assert_eq!(
        app.get(&format!("/fhir/Patient/{}", lambert.id), Some(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn web_pages_apply_the_same_policy() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        other_region(&app).await;
        let lambert = app.demo_patient("Lambert").await; // clinic only
        let muller = app.demo_patient("Muller").await; // hospital only
        let page = |p: &domain::identity::PatientRecord| format!("/patients/{}", p.id);

        let doctor = app.login("dr.martin").await; // clinic
        assert_eq!(
            app.get_page(&page(&muller), &doctor).await.status,
            200,
            "{backend}: same GHT"
        );
        let foreign = app.login("dr.ailleurs").await;
        assert_eq!(
            app.get_page(&page(&lambert), &foreign).await.status,
            404,
            "{backend}: other territory"
        );
        let r = app.get_page("/patients?nom=lambert", &foreign).await;
        assert!(r.text.contains("0 résultat"), "{backend}");

        let beds = app.login("lits.moreau").await; // hospital
        assert_eq!(
            app.get_page(&page(&muller), &beds).await.status,
            200,
            "{backend}: linked to the hospital"
        );
        assert_eq!(
            app.get_page(&page(&lambert), &beds).await.status,
            403,
            "{backend}: not linked"
        );
        assert_eq!(
            app.get_page("/patients?nom=a", &beds).await.status,
            403,
            "{backend}: no search"
        );

        let coord = app.login("coord.garnier").await;
        assert_eq!(
            app.get_page(&page(&muller), &coord).await.status,
            403,
            "{backend}: coordinators see no patient"
        );
        assert_eq!(app.get_page("/admin/audit", &coord).await.status, 403);

        let patient = app.login(server::demo::PATIENT_LOGIN).await; // Lambert, no TOTP
        let r = app.get_page(&page(&lambert), &patient).await;
        assert_eq!(r.status, 200, "{backend}: own record");
        assert!(r.text.contains("LAMBERT Monique"));
        assert_eq!(
            app.get_page(&page(&muller), &patient).await.status,
            403,
            "{backend}: another patient"
        );
        assert_eq!(app.get_page("/patients?nom=m", &patient).await.status, 403);
    }
}
