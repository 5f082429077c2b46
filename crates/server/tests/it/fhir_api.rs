//! The FHIR API: metadata, Patient create/read/search/update/merge, directory,
//! AuditEvent; every emitted resource validated with fhir.resources.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn metadata_is_public_and_valid() {
    let app = spawn_app("sqlite").await;
    let r = app.get("/fhir/metadata", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let cs = r.json();
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "Patient",
            "Encounter",
            "Location",
            "HealthcareService",
            "ServiceRequest",
            "Task",
            "Questionnaire",
            "QuestionnaireResponse",
            "Observation",
            "Flag",
            "CarePlan",
            "Communication",
            "Appointment",
            "MedicationRequest",
            "DocumentReference",
            "List",
            "Schedule",
            "Slot",
            "Practitioner",
            "Organization",
            "AuditEvent",
            "Subscription"
        ]
    );
    // The FR Core profiles each type follows, and the vital signs'.
    let profile = |ty: &str| {
        cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap()["profile"]
            .as_str()
            .map(str::to_owned)
    };
    for (ty, p) in [
        ("Patient", "fr-core-patient"),
        ("Practitioner", "fr-core-practitioner"),
        ("Organization", "fr-core-organization"),
        ("Encounter", "fr-core-encounter"),
        ("Location", "fr-core-location"),
        ("HealthcareService", "fr-core-healthcare-service"),
        ("Appointment", "fr-core-appointment"),
        ("Schedule", "fr-core-schedule"),
        ("Slot", "fr-core-slot"),
    ] {
        assert_eq!(
            profile(ty).as_deref(),
            Some(format!("https://hl7.fr/ig/fhir/core/StructureDefinition/{p}").as_str()),
            "{ty}"
        );
    }
    assert_eq!(profile("Flag"), None, "no FR Core profile claimed for Flag");
    let observation = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let supported: Vec<&str> = observation["supportedProfile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(supported.contains(
        &"https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-observation-body-weight"
    ));
    assert!(supported.contains(&"http://hl7.org/fhir/StructureDefinition/vitalsigns"));
    // Every type searched by patient or agenda is also read by id.
    for ty in [
        "Communication",
        "MedicationRequest",
        "List",
        "Schedule",
        "Slot",
        "HealthcareService",
    ] {
        let r = cs["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap();
        assert_eq!(r["interaction"][0]["code"], "read", "{ty}");
    }
    let common: Vec<&str> = cs["rest"][0]["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        common,
        [
            "_count",
            "_offset",
            "_sort",
            "_lastUpdated",
            "_summary",
            "_include",
            "_revinclude"
        ]
    );
    assert_eq!(
        cs["rest"][0]["resource"][0]["searchRevInclude"],
        json!([
            "Encounter:patient",
            "DocumentReference:patient",
            "Appointment:patient"
        ])
    );
    assert_eq!(
        cs["rest"][0]["resource"][1]["searchInclude"][0],
        "Encounter:patient"
    );
    // What it claims is true: every declared resource answers (not 404).
    let token = app.token().await;
    let muller = app.demo_patient("Muller").await.id;
    for t in [
        "Patient?family=x".to_owned(),
        format!("Encounter?patient=Patient/{muller}"),
        "Location".into(),
        "HealthcareService".into(),
        "Practitioner".into(),
        "Organization".into(),
    ] {
        assert_eq!(
            app.get(&format!("/fhir/{t}"), Some(&token)).await.status,
            200,
            "{t}"
        );
    }
    validate_fhir(&[cs]);
}

#[tokio::test]
async fn patient_lifecycle_on_both_backends() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut emitted: Vec<Value> = Vec::new();

        // Create: 201, Location, ETag, INS shown because qualified.
        let r = app
            .send_json(
                Method::POST,
                "/fhir/Patient",
                &token,
                &patient_body(1, "QUAL"),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let created = r.json();
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(
            r.header("location")
                .unwrap()
                .ends_with(&format!("/fhir/Patient/{id}/_history/1"))
        );
        assert_eq!(r.header("etag").as_deref(), Some("W/\"1\""));
        assert_eq!(
            created["identifier"][0]["system"],
            "urn:oid:1.2.250.1.213.1.4.8"
        );
        let ipp = created["identifier"][1]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        emitted.push(created.clone());

        // Read.
        let r = app.get(&format!("/fhir/Patient/{id}"), Some(&token)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["name"][0]["family"], "Testeur");
        emitted.push(r.json());

        // Search by INS, by IPP, by names and birth date.
        let ins = created["identifier"][0]["value"].as_str().unwrap();
        for q in [
            format!("identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"),
            format!("identifier=urn:oid:{}|{ipp}", server::demo::DEMO_DOMAIN_OID),
            "family=testeur&given=marc".to_owned(),
            "family=TEST&birthdate=1979-03-14".to_owned(),
            "birthdate=eq1979-03-14".to_owned(),
        ] {
            let r = app
                .get(
                    &format!("/fhir/Patient?{}", q.replace('|', "%7C")),
                    Some(&token),
                )
                .await;
            assert_eq!(r.status, 200, "{q}: {}", r.text);
            let b = r.json();
            let ids: Vec<&str> = b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, vec![id.as_str()], "{backend} {q}");
            emitted.push(b);
        }
        let r = app.get("/fhir/Patient?family=zzzz", Some(&token)).await;
        assert_eq!(r.json()["entry"].as_array().unwrap().len(), 0);
        // Paging: the demo has 20 patients.
        let b = app.get("/fhir/Patient?_count=5", Some(&token)).await.json();
        assert_eq!(b["entry"].as_array().unwrap().len(), 5);
        let next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .unwrap();
        assert!(next["url"].as_str().unwrap().contains("_offset=5"), "{b}");

        // Update with If-Match; a stale version is 412; status transitions follow RNIV.
        let mut body = created.clone();
        body["name"] = json!([{"use": "official", "family": "Testeur", "given": ["Jean", "Marc"]}, {"use": "usual", "family": "Durand"}]);
        let put = |b: &Value, etag: Option<&str>| {
            let mut r = app
                .http
                .put(app.url(&format!("/fhir/Patient/{id}")))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
            if let Some(e) = etag {
                r = r.header("if-match", e);
            }
            r.send()
        };
        let r = read(put(&body, Some("W/\"1\"")).await.unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["meta"]["versionId"], "2");
        assert_eq!(r.json()["name"][1]["family"], "Durand");
        emitted.push(r.json());
        let r = read(put(&body, Some("W/\"1\"")).await.unwrap()).await;
        assert_eq!(r.status, 412, "{backend}: stale");
        r.outcome();
        let mut downgrade = body.clone();
        downgrade["extension"][0]["extension"][0]["valueCoding"]["code"] = json!("PROV");
        let r = read(put(&downgrade, None).await.unwrap()).await;
        assert_eq!(r.status, 422, "QUAL -> PROV skips a step");
        assert!(r.outcome().contains("QUAL à PROV"));
        let mut recup = body.clone();
        recup["extension"][0]["extension"][0]["valueCoding"]["code"] = json!("RECUP");
        let r = read(put(&recup, None).await.unwrap()).await;
        assert_eq!(r.status, 200, "QUAL -> RECUP is a downgrade");
        let v = r.json();
        assert_eq!(
            v["identifier"].as_array().unwrap().len(),
            1,
            "the INS no longer leaves: {v}"
        );
        emitted.push(v);
        let mut other_id = body.clone();
        other_id["id"] = json!("someone-else");
        assert_eq!(read(put(&other_id, None).await.unwrap()).await.status, 400);

        // Merge: a duplicate (provisional, no INS) into the survivor.
        let mut dup = patient_body(2, "PROV");
        dup["identifier"] = json!([]);
        let r = app
            .send_json(Method::POST, "/fhir/Patient", &token, &dup)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let dup_id = r.json()["id"].as_str().unwrap().to_owned();
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": format!("Patient/{dup_id}")}},
            {"name": "target-patient", "valueReference": {"reference": format!("Patient/{id}")}}
        ]});
        let r = app
            .send_json(Method::POST, "/fhir/Patient/$merge", &token, &params)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let merged = r.json();
        assert_eq!(merged["active"], false);
        assert_eq!(
            merged["link"][0]["other"]["reference"],
            format!("Patient/{id}")
        );
        emitted.push(merged);
        let r = app
            .send_json(Method::POST, "/fhir/Patient/$merge", &token, &params)
            .await;
        assert_eq!(r.status, 409, "merging twice");
        let r = read(
            app.http
                .put(app.url(&format!("/fhir/Patient/{dup_id}")))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .body({
                    let mut b = dup.clone();
                    b["id"] = json!(dup_id);
                    b.to_string()
                })
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 409, "a merged record is frozen: {}", r.text);

        // Directory.
        let b = app.get("/fhir/Practitioner", Some(&token)).await.json();
        let rpps: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["resource"]["identifier"][0]["value"].as_str())
            .collect();
        assert_eq!(rpps.len(), 7, "five doctors and two nurses have an RPPS");
        let first = b["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        emitted.push(b);
        emitted.push(
            app.get(&format!("/fhir/Practitioner/{first}"), Some(&token))
                .await
                .json(),
        );
        let b = app.get("/fhir/Organization", Some(&token)).await.json();
        assert_eq!(
            b["entry"].as_array().unwrap().len(),
            6,
            "the GHT and its five establishments"
        );
        let org = b["entry"][1]["resource"]["id"].as_str().unwrap().to_owned();
        emitted.push(b);
        emitted.push(
            app.get(&format!("/fhir/Organization/{org}"), Some(&token))
                .await
                .json(),
        );
        assert_eq!(
            app.get("/fhir/Organization/nope", Some(&token))
                .await
                .status,
            404
        );
        assert_eq!(
            app.get("/fhir/Practitioner/nope", Some(&token))
                .await
                .status,
            404
        );

        // Audit: the integration client may not read it; the admin client may.
        assert_eq!(app.get("/fhir/AuditEvent", Some(&token)).await.status, 403);
        let admin = app
            .token_for("demo-audit", "demo-audit-secret")
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = app
            .get(
                &format!("/fhir/AuditEvent?patient=Patient/{id}"),
                Some(&admin),
            )
            .await
            .json();
        let actions: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"C")
                && actions.contains(&"R")
                && actions.contains(&"U")
                && actions.contains(&"E"),
            "{actions:?}"
        );
        let seq = b["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        emitted.push(b);
        let e = app
            .get(&format!("/fhir/AuditEvent/{seq}"), Some(&admin))
            .await;
        assert_eq!(e.status, 200);
        emitted.push(e.json());
        assert_eq!(
            app.get("/fhir/AuditEvent/999999", Some(&admin))
                .await
                .status,
            404
        );

        validate_fhir(&emitted);
        assert_eq!(
            app.store.verify_audit().await.unwrap().error,
            None,
            "{backend}"
        );
    }
}

async fn audit_len(app: &TestApp) -> usize {
    let all = store::audit::AuditFilter {
        limit: 500,
        ..Default::default()
    };
    app.store.list_audit(&all).await.unwrap().len()
}

#[tokio::test]
async fn every_read_and_write_is_audited() {
    let app = spawn_app("sqlite").await;
    let token = app.token().await;
    let before = audit_len(&app).await;
    let r = app
        .send_json(
            Method::POST,
            "/fhir/Patient",
            &token,
            &patient_body(7, "PROV"),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    app.get(&format!("/fhir/Patient/{id}"), Some(&token)).await;
    app.get("/fhir/Patient?family=testeur", Some(&token)).await;
    let trail = app
        .store
        .list_audit(&store::audit::AuditFilter {
            patient: Some(id.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = trail
        .iter()
        .map(|e| (e.action.as_str(), e.actor_kind.as_str(), e.role.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("search", "client", Some("integration")),
            ("read", "client", Some("integration")),
            ("create", "client", Some("integration"))
        ]
    );
    assert!(
        trail
            .iter()
            .all(|e| e.establishment.is_some() && e.outcome == "success")
    );
    let after = audit_len(&app).await;
    assert_eq!(
        after - before,
        4,
        "create, read, the search itself and its one result"
    );
}

/// A Patient's demographics over the API: kept on create, replaced by a PUT
/// (what the body leaves out is gone), read back the same; the INS traits of a
/// qualified identity change only with a downgrade.
#[tokio::test]
async fn patient_demographics_over_the_api() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut body = patient_body(7, "QUAL");
        body["address"] = json!([{"use": "home", "line": ["3 rue des Écoles\nBâtiment B", " "], "postalCode": "45000", "city": "Orléans", "country": "FRA"}]);
        body["telecom"] = json!([
            {"system": "phone", "use": "mobile", "value": "06 12 34 56 78"},
            {"system": "email", "value": "jean.testeur@example.fr"}
        ]);
        body["contact"] = json!([{
            "relationship": [{"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass", "code": "NOK"}]}],
            "name": {"family": "Testeur", "given": ["Anne"]},
            "telecom": [{"system": "phone", "value": "0712345678"}]
        }]);
        body["generalPractitioner"] = json!([{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000023084"}}]);
        body["communication"] =
            json!([{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}}]);
        let r = app
            .send_json(Method::POST, "/fhir/Patient", &token, &body)
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let created = r.json();
        let id = created["id"].as_str().unwrap().to_owned();
        // Conditional create: the same INS again is the same record (200), not a second one.
        let ins = created["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let conditional = |b: Value, cond: String| {
            app.http
                .post(app.url("/fhir/Patient"))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", cond)
                .body(b.to_string())
                .send()
        };
        let r = read(
            conditional(
                body.clone(),
                format!("identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}"),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.json()["id"], id.as_str());
        let r = read(
            conditional(body.clone(), "family=Testeur".into())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: only identifier");
        let mut other = patient_body(8, "PROV");
        other["identifier"] = json!([]);
        let cond = format!("identifier=urn:oid:{}|NOPE", server::demo::DEMO_DOMAIN_OID);
        let r = read(conditional(other, cond).await.unwrap()).await;
        assert_eq!(r.status, 201, "{backend}: nobody carries it: created");
        let read_back = app
            .get(&format!("/fhir/Patient/{id}"), Some(&token))
            .await
            .json();
        // The creation answers the record as stored: what a read gives.
        assert_eq!(read_back, created, "{backend}");
        assert_eq!(
            created["address"][0]["line"],
            json!(["3 rue des Écoles", "Bâtiment B"]),
            "{backend}: a line broken by a newline is two"
        );
        assert_eq!(read_back["telecom"][0]["value"], "0612345678", "{backend}");
        assert_eq!(read_back["contact"][0]["name"]["given"], json!(["Anne"]));
        assert_eq!(
            read_back["communication"][0]["language"]["coding"][0]["code"],
            "fr"
        );
        // A search answers the same resource, demographics read for the page at once.
        let family = read_back["name"][0]["family"].as_str().unwrap().to_owned();
        let page = app
            .get(&format!("/fhir/Patient?family={family}"), Some(&token))
            .await
            .json();
        let found = page["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["id"] == json!(id))
            .unwrap_or_else(|| panic!("{backend}: {page}"));
        for part in ["address", "telecom", "contact", "communication", "name"] {
            assert_eq!(
                found["resource"][part], read_back[part],
                "{backend}: {part}"
            );
        }
        let put = |b: Value, etag: &'static str| {
            app.http
                .put(app.url(&format!("/fhir/Patient/{id}")))
                .bearer_auth(&token)
                .header("content-type", "application/fhir+json")
                .header("if-match", etag)
                .body(b.to_string())
                .send()
        };
        // A PUT without telecom and with another address: replaced.
        let mut next = read_back.clone();
        next.as_object_mut().unwrap().remove("telecom");
        next["address"][0]["city"] = json!("Tours");
        next["address"][0]["postalCode"] = json!("37000");
        let r = read(put(next.clone(), "W/\"1\"").await.unwrap()).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let updated = r.json();
        assert_eq!(updated["meta"]["versionId"], "2");
        assert_eq!(
            updated["telecom"],
            Value::Null,
            "{backend}: left out, so gone"
        );
        assert_eq!(updated["address"][0]["city"], "Tours");
        assert_eq!(
            updated["generalPractitioner"],
            read_back["generalPractitioner"]
        );
        // The birth date of a qualified identity: only with a downgrade.
        let mut redated = updated.clone();
        redated["birthDate"] = json!("1979-03-15");
        let r = read(put(redated.clone(), "W/\"2\"").await.unwrap()).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.outcome().contains("INSi"), "{backend}");
        redated["extension"][0]["extension"][0]["valueCoding"]["code"] = json!("VALI");
        redated["identifier"] = json!([updated["identifier"][1].clone()]);
        let r = read(put(redated, "W/\"2\"").await.unwrap()).await;
        assert_eq!(r.status, 200, "{backend}: with the downgrade: {}", r.text);
        assert_eq!(r.json()["birthDate"], "1979-03-15");
        // A bad value in the demographics: 422, nothing written.
        let mut bad = r.json();
        bad["telecom"] = json!([{"system": "phone", "value": "06"}]);
        let r = read(put(bad, "W/\"3\"").await.unwrap()).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.outcome().contains("téléphone"));
        validate_fhir(&[created, read_back, updated]);
    }
}

/// A client library nobody here wrote (fhirpy, from PyPI) drives the API:
/// create, read, update, search, count, paging through the `next` links and
/// conditional create, on both backends.
#[tokio::test]
async fn a_real_fhir_client_library_drives_the_api() {
    for backend in BACKENDS {
        // The links the Bundles carry use the public address: give the node its port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let app = spawn_app_with(backend, |c| {
            c.listen = format!("127.0.0.1:{port}");
        })
        .await;
        let token = app.token().await;
        let script = format!(
            "{}/../../scripts/fhir_client.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let base = app.url("/fhir");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .arg(&script)
                .arg(&base)
                .arg(&token)
                .output()
                .expect("python3")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{backend}: fhirpy failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = seen["created_id"].as_str().unwrap();
        assert_eq!(seen["created_version"], "1", "{backend}");
        assert_eq!(seen["read_family"], "Clientpy");
        assert_eq!(seen["read_phone"], "0611111111", "{backend}: normalised");
        assert_eq!(
            (&seen["updated_version"], &seen["updated_city"]),
            (&json!("2"), &json!("Lyon")),
            "{backend}"
        );
        assert_eq!(seen["search_ids"], json!([id]));
        assert_eq!(seen["count"], 21, "{backend}: 20 demo patients and ours");
        let paged: Vec<&str> = seen["paged_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut unique = paged.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            (paged.len(), unique.len()),
            (21, 21),
            "{backend}: six pages of four, each record once"
        );
        assert!(paged.contains(&id));
        assert_eq!(
            seen["get_or_create"],
            json!([id, false]),
            "{backend}: found, not created"
        );
        assert_eq!(seen["raw_links"], json!(["self", "first"]));
        assert_eq!(
            seen["transaction"],
            json!(["201 Created", "200 OK"]),
            "{backend}: {seen}"
        );
        assert_eq!(seen["transaction_phone"], "0622222222");
        assert_eq!(
            app.store
                .count_patients(app.demo_patient("Lambert").await.territory)
                .await
                .unwrap(),
            22,
            "{backend}: ours and the transaction's, no duplicate"
        );
    }
}

/// `Patient/$everything` as a client may read it, and the patient's own export
/// from the portal (FHIR JSON and a readable PDF); both audited.
#[tokio::test]
async fn everything_for_a_client_and_the_patients_own_export() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let lambert = app.demo_patient("Lambert").await;
        let r = app
            .get(
                &format!("/fhir/Patient/{}/$everything", lambert.id),
                Some(&token),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let b = r.json();
        let kinds: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"Patient"), "{backend}: {kinds:?}");
        assert_eq!(
            kinds,
            ["Patient", "OperationOutcome"],
            "{backend}: her care is at the clinic, the client at the hospital: only her identity"
        );
        assert!(b.to_string().contains("hors de vos droits"), "{backend}");
        validate_fhir(std::slice::from_ref(&b));
        let r = app
            .get(
                "/fhir/Patient/01900000-0000-7000-8000-000000000000/$everything",
                Some(&token),
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");

        // The patient's own export.
        let session = app.login(server::demo::PATIENT_LOGIN).await;
        let home = app.get_page("/", &session).await;
        assert!(
            home.text.contains("/mes-donnees"),
            "{backend}: linked from home"
        );
        let page = app.get_page("/mes-donnees", &session).await;
        assert_eq!(page.status, 200, "{backend}");
        let json_export = app.get_page("/mes-donnees.json", &session).await;
        assert_eq!(json_export.status, 200);
        assert!(
            json_export
                .header("content-disposition")
                .unwrap()
                .contains("mes-donnees.json")
        );
        let export: Value = serde_json::from_str(&json_export.text).unwrap();
        assert_eq!(export["type"], "collection");
        let kinds: Vec<&str> = export["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds[0], "Patient");
        assert_eq!(export["entry"][0]["resource"]["id"], lambert.id.to_string());
        assert!(
            kinds.contains(&"CarePlan"),
            "{backend}: her monitoring in {kinds:?}"
        );
        assert!(
            !kinds.contains(&"OperationOutcome"),
            "{backend}: nothing of her own left out: {}",
            json_export.text
        );
        validate_fhir(std::slice::from_ref(&export));
        let pdf = app
            .http
            .get(app.url("/mes-donnees.pdf"))
            .header("cookie", format!("parcours_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(pdf.status(), 200);
        let text = pdf_text(&pdf.bytes().await.unwrap());
        for want in [
            "IDENTITÉ",
            "LAMBERT Monique",
            "COORDONNÉES",
            "Personne de confiance",
        ] {
            assert!(text.contains(want), "{backend}: {want} in {text}");
        }
        // A professional has no "Mes données".
        let doctor = app.login("dr.martin").await;
        assert_ne!(app.get_page("/mes-donnees.json", &doctor).await.status, 200);
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(lambert.id.to_string()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            trail
                .iter()
                .any(|e| e.actor_kind == "patient" && e.action == "read"),
            "{backend}: the patient's own reads are audited"
        );
    }
}

/// An integrator books a free slot through `POST /fhir/Appointment`: the same
/// rules as the desk (a taken slot is a conflict, a slot that does not exist is
/// refused), the Appointment answered and found again.
#[tokio::test]
async fn an_appointment_is_booked_over_the_api() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let schedules = app.get("/fhir/Schedule", Some(&token)).await.json();
        let mut booked = None;
        for e in schedules["entry"].as_array().unwrap() {
            let sid = e["resource"]["id"].as_str().unwrap();
            let slots = app
                .get(&format!("/fhir/Slot?schedule=Schedule/{sid}"), Some(&token))
                .await
                .json();
            if let Some(s) = slots["entry"].as_array().unwrap().first() {
                booked = Some((sid.to_owned(), s["resource"].clone()));
                break;
            }
        }
        let (practitioner, slot) = booked.expect("a free slot in the demo");
        let patient = app.demo_patient("Mercier").await.id;
        let body = json!({
            "resourceType": "Appointment",
            "status": "booked",
            "start": slot["start"],
            "serviceType": slot["serviceType"],
            "participant": [
                {"actor": {"reference": format!("Patient/{patient}")}},
                {"actor": {"reference": format!("Practitioner/{practitioner}")}}
            ]
        });
        let r = app
            .send_json(Method::POST, "/fhir/Appointment", &token, &body)
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let made = r.json();
        assert_eq!(made["status"], "booked");
        assert_eq!(made["start"], slot["start"]);
        assert!(
            r.header("location")
                .unwrap()
                .ends_with(made["id"].as_str().unwrap())
        );
        let again = app
            .send_json(Method::POST, "/fhir/Appointment", &token, &body)
            .await;
        assert_eq!(
            again.status, 409,
            "{backend}: the slot is taken: {}",
            again.text
        );
        let mut nowhere = body.clone();
        nowhere["start"] = json!("2026-11-18T03:07:00Z");
        let r = app
            .send_json(Method::POST, "/fhir/Appointment", &token, &nowhere)
            .await;
        assert_eq!(r.status, 422, "{backend}: not a slot");
        let read_back = app
            .get(
                &format!("/fhir/Appointment/{}", made["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(read_back.status, 200, "{backend}: {}", read_back.text);
        assert_eq!(read_back.json()["start"], made["start"]);
        let clinic = app.client_token("other", server::demo::CLINIC_FINESS).await;
        let elsewhere = app
            .get(
                &format!("/fhir/Appointment/{}", made["id"].as_str().unwrap()),
                Some(&clinic),
            )
            .await;
        assert_eq!(
            elsewhere.status, 404,
            "{backend}: another establishment's client"
        );
        let found = app
            .get(
                &format!("/fhir/Appointment?patient=Patient/{patient}"),
                Some(&token),
            )
            .await
            .json();
        assert!(
            found["entry"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["resource"]["id"] == made["id"]),
            "{backend}"
        );
        validate_fhir(&[made, found]);
    }
}

/// A `batch` Bundle: each entry answered on its own, through the same routes
/// and rules as a single request (conditional create, If-Match, refusals).
#[tokio::test]
async fn a_batch_answers_each_entry_on_its_own() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mercier = app.demo_patient("Mercier").await;
        let mut good = patient_body(31, "PROV");
        good["identifier"] = json!([]);
        good["telecom"] = json!([{"system": "phone", "use": "mobile", "value": "0612345678"}]);
        let mut bad = good.clone();
        bad["telecom"] = json!([{"system": "phone", "value": "06"}]);
        let current = app
            .get(&format!("/fhir/Patient/{}", mercier.id), Some(&token))
            .await
            .json();
        let batch = json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"resource": good, "request": {"method": "POST", "url": "Patient"}},
                {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
                {"request": {"method": "GET", "url": format!("Patient/{}", mercier.id)}},
                {"resource": current,
                 "request": {"method": "PUT", "url": format!("Patient/{}", mercier.id), "ifMatch": "W/\"99\""}},
                {"request": {"method": "DELETE", "url": "Patient/x"}},
                {"request": {"method": "GET", "url": "http://elsewhere.example/fhir/Patient"}}
            ]
        });
        let r = app.send_json(Method::POST, "/fhir", &token, &batch).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let b = r.json();
        assert_eq!(b["type"], "batch-response");
        let statuses: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "201 Created",
                "422 Unprocessable Entity",
                "200 OK",
                "412 Precondition Failed",
                "400 Bad Request",
                "400 Bad Request"
            ],
            "{backend}: {b}"
        );
        assert_eq!(
            b["entry"][0]["resource"]["telecom"][0]["value"],
            "0612345678"
        );
        assert!(
            b["entry"][0]["response"]["location"]
                .as_str()
                .unwrap()
                .contains("/Patient/")
        );
        assert!(
            b["entry"][1]["response"]["outcome"]
                .to_string()
                .contains("téléphone")
        );
        assert_eq!(b["entry"][2]["resource"]["id"], mercier.id.to_string());
        assert!(
            b["entry"][4]["response"]["outcome"]
                .to_string()
                .contains("DELETE")
        );
        validate_fhir(std::slice::from_ref(&b));
        // A transaction that is not a document submission is refused clearly.
        let t = json!({"resourceType": "Bundle", "type": "history", "entry": []});
        let r = app.send_json(Method::POST, "/fhir", &token, &t).await;
        assert_eq!(r.status, 400, "{backend}");
        assert!(r.outcome().contains("batch"));
        // Without a token, every entry is refused as its own request would be.
        let r = app
            .http
            .post(app.url("/fhir"))
            .header("content-type", "application/fhir+json")
            .body(batch.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            401,
            "{backend}: the batch itself needs the token"
        );
    }
}

/// Each type read by id answers what its search shows, and declares the FR
/// Core profile it follows (vital signs: FR Core's by LOINC code, else the
/// base vital-signs profile); fhir.resources validates them all.
#[tokio::test]
async fn every_type_reads_by_id_and_declares_its_profile() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's
        let get = async |path: &str| {
            let r = app.get(path, Some(&token)).await;
            assert_eq!(r.status, 200, "{backend} {path}: {}", r.text);
            r.json()
        };
        let profile_of = |r: &Value| r["meta"]["profile"][0].as_str().unwrap_or("").to_owned();
        let fr = |p: &str| format!("https://hl7.fr/ig/fhir/core/StructureDefinition/{p}");
        let mut emitted = Vec::new();
        // Search, then read the first by id: the same resource.
        for (search, profile) in [
            ("/fhir/HealthcareService", "fr-core-healthcare-service"),
            ("/fhir/Location", "fr-core-location"),
            ("/fhir/Schedule", "fr-core-schedule"),
            ("/fhir/Practitioner", "fr-core-practitioner"),
            ("/fhir/Organization", "fr-core-organization"),
        ] {
            let found = get(search).await;
            let first = found["entry"][0]["resource"].clone();
            assert_eq!(profile_of(&first), fr(profile), "{backend} {search}");
            let ty = first["resourceType"].as_str().unwrap();
            let read = get(&format!("/fhir/{ty}/{}", first["id"].as_str().unwrap())).await;
            assert_eq!(read, first, "{backend} {ty}");
            emitted.push(read);
        }
        // A free slot, read by its id (agenda and start); a made-up one is not found.
        let schedules = get("/fhir/Schedule").await;
        let mut slot = None;
        for e in schedules["entry"].as_array().unwrap() {
            let sid = e["resource"]["id"].as_str().unwrap();
            let slots = get(&format!("/fhir/Slot?schedule=Schedule/{sid}")).await;
            if let Some(s) = slots["entry"].as_array().unwrap().first() {
                slot = Some(s["resource"].clone());
                break;
            }
        }
        let slot = slot.expect("a free slot in the demo");
        assert_eq!(profile_of(&slot), fr("fr-core-slot"));
        let read = get(&format!("/fhir/Slot/{}", slot["id"].as_str().unwrap())).await;
        assert_eq!(read, slot, "{backend}");
        let sid = slot["schedule"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Schedule/");
        for missing in [
            format!("{sid}-1"),
            "nope".into(),
            format!("{}-0", domain::UserId::new()),
        ] {
            assert_eq!(
                app.get(&format!("/fhir/Slot/{missing}"), Some(&token))
                    .await
                    .status,
                404,
                "{missing}"
            );
        }
        emitted.push(read);

        // Measures from a posted questionnaire: FR Core's temperature profile,
        // the base vital-signs one for SpO2 (FR Core has none for 59408-5).
        let muller = app.demo_patient("Muller").await.id;
        let r = app
            .send_json(
                Method::POST,
                "/fhir/QuestionnaireResponse",
                &token,
                &json!({
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "urn:parcours:questionnaire:infectious-home",
                    "status": "completed",
                    "subject": {"reference": format!("Patient/{muller}")},
                    "item": [
                        {"linkId": "temperature", "answer": [{"valueDecimal": 38.4}]},
                        {"linkId": "spo2", "answer": [{"valueInteger": 96}]},
                        {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "0"}}]},
                        {"linkId": "worse", "answer": [{"valueBoolean": false}]}
                    ]
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let obs = get(&format!("/fhir/Observation?patient=Patient/{muller}")).await;
        let by_code = |code: &str| {
            obs["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"].clone())
                .find(|o| o["code"]["coding"][0]["code"] == code)
                .unwrap_or_else(|| panic!("{code} in {obs}"))
        };
        assert_eq!(
            profile_of(&by_code("8310-5")),
            fr("fr-core-observation-body-temperature")
        );
        assert_eq!(
            profile_of(&by_code("59408-5")),
            "http://hl7.org/fhir/StructureDefinition/vitalsigns"
        );
        let survey = obs["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .find(|o| o["category"][0]["coding"][0]["code"] == "survey")
            .unwrap();
        assert!(
            survey["meta"].get("profile").is_none(),
            "a survey answer claims no vital-sign profile"
        );
        emitted.push(obs);

        // An ADT stay: fr-core-encounter, with its version and last change kept.
        let mut c = Mllp::connect(&app).await;
        let adt = "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|202611231000||ADT^A01^ADT_A01|pr1|P|2.5\r\
                   EVN||202611231000\r\
                   PID|1||PROF1^^^CHVL&450000021&M^PI||Profil^Anne^^^^^L||19600101|F\r\
                   PV1|1|I|REA^1^3||||||||||||||||PV1\r\
                   ZBE|PV1-1^CHVL|202611231000||INSERT|N\r";
        assert_eq!(ack_code(&c.send(adt.as_bytes()).await).0, "AA");
        let found = get("/fhir/Patient?family=Profil").await;
        let pid = found["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let enc = get(&format!("/fhir/Encounter?patient=Patient/{pid}")).await;
        let e = &enc["entry"][0]["resource"];
        assert_eq!(profile_of(e), fr("fr-core-encounter"));
        assert_eq!(e["meta"]["versionId"], "1", "{backend}: {e}");
        emitted.push(enc);
        validate_fhir(&emitted);
    }
}

/// A transaction Bundle is all or nothing: identities created (conditionally)
/// and replaced, a device's measure filed, together; when one entry is
/// refused, before or while writing, nothing of the others is kept and the
/// answer names the entry.
#[tokio::test]
async fn a_transaction_is_all_or_nothing() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await; // the hospital's
        let muller = app.demo_patient("Muller").await;
        let territory = muller.territory;
        let count = async || app.store.count_patients(territory).await.unwrap();
        let before = count().await;
        let read = app
            .get(&format!("/fhir/Patient/{}", muller.id), Some(&token))
            .await
            .json();
        // Her identity is qualified: the desk's part (the phone) changes.
        let mut renamed = read.clone();
        renamed["telecom"] =
            json!([{"system": "phone", "use": "mobile", "value": "06 33 33 33 33"}]);
        let spo2 = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
            "subject": {"reference": format!("Patient/{}", muller.id)},
            "valueQuantity": {"value": 97, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        });
        let version = read["meta"]["versionId"].as_str().unwrap().to_owned();
        let entry = |method: &str, url: String, resource: &Value| json!({"request": {"method": method, "url": url}, "resource": resource});
        let bundle = |entries: Vec<Value>| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let observations = async || {
            app.get(
                &format!("/fhir/Observation?patient=Patient/{}", muller.id),
                Some(&token),
            )
            .await
            .json()["total"]
                .as_i64()
                .unwrap()
        };
        let obs_before = observations().await;

        // A stale ifMatch on the second entry: 412 naming it; the new identity
        // of the first entry is not kept, nor the measure.
        let mut stale = entry("PUT", format!("Patient/{}", muller.id), &renamed);
        stale["request"]["ifMatch"] = json!("W/\"99\"");
        let r = app
            .send_json(
                Method::POST,
                "/fhir",
                &token,
                &bundle(vec![
                    entry("POST", "Patient".into(), &patient_body(41, "VALI")),
                    stale,
                    entry("POST", "Observation".into(), &spo2),
                ]),
            )
            .await;
        assert_eq!(r.status, 412, "{backend}: {}", r.text);
        assert!(r.outcome().starts_with("entrée 2 :"), "{}", r.text);
        assert_eq!(count().await, before, "{backend}");
        assert_eq!(observations().await, obs_before, "{backend}");

        // Refused while writing: the same INS twice (the second insert breaks
        // the database's uniqueness): 409 on entry 2, the first rolled back.
        let r = app
            .send_json(
                Method::POST,
                "/fhir",
                &token,
                &bundle(vec![
                    entry("POST", "Patient".into(), &patient_body(42, "VALI")),
                    entry("POST", "Patient".into(), &patient_body(42, "VALI")),
                ]),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert!(r.outcome().starts_with("entrée 2 :"), "{}", r.text);
        assert_eq!(count().await, before, "{backend}: nothing kept");

        // An entry a transaction does not take: 422 before anything.
        let r = app
            .send_json(
                Method::POST,
                "/fhir",
                &token,
                &bundle(vec![
                    entry("POST", "Patient".into(), &patient_body(43, "VALI")),
                    json!({"request": {"method": "GET", "url": "Patient"}}),
                ]),
            )
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = app
            .send_json(
                Method::POST,
                "/fhir",
                &token,
                &bundle(vec![entry(
                    "POST",
                    "Flag".into(),
                    &json!({"resourceType": "Flag"}),
                )]),
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.outcome().contains("batch"), "{}", r.text);
        assert_eq!(count().await, before);

        // All good: created, found by its condition, replaced, filed.
        let mut conditional = entry("POST", "Patient".into(), &patient_body(44, "VALI"));
        conditional["request"]["ifNoneExist"] = json!(format!(
            "identifier=urn:oid:1.2.250.1.213.1.4.8|{}",
            patient_body(44, "VALI")["identifier"][0]["value"]
                .as_str()
                .unwrap()
        ));
        let mut fresh = entry("PUT", format!("Patient/{}", muller.id), &renamed);
        fresh["request"]["ifMatch"] = json!(format!("W/\"{version}\""));
        let r = app
            .send_json(
                Method::POST,
                "/fhir",
                &token,
                &bundle(vec![
                    conditional.clone(),
                    fresh,
                    entry("POST", "Observation".into(), &spo2),
                ]),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let b = r.json();
        assert_eq!(b["type"], "transaction-response");
        let statuses: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            ["201 Created", "200 OK", "201 Created"],
            "{backend}"
        );
        assert_eq!(
            b["entry"][1]["resource"]["telecom"][0]["value"],
            "0633333333"
        );
        assert_eq!(b["entry"][2]["resource"]["valueQuantity"]["value"], 97.0);
        assert_eq!(count().await, before + 1);
        assert_eq!(observations().await, obs_before + 1, "{backend}");
        validate_fhir(std::slice::from_ref(&b));
        // The same conditional create again: found, not created.
        let r = app
            .send_json(Method::POST, "/fhir", &token, &bundle(vec![conditional]))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.json()["entry"][0]["response"]["status"], "200 OK");
        assert_eq!(
            r.json()["entry"][0]["resource"]["id"],
            b["entry"][0]["resource"]["id"]
        );
        assert_eq!(count().await, before + 1, "{backend}: no duplicate");
    }
}
