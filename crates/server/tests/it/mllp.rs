//! HL7 v2 over a real MLLP socket: ACK codes, deduplication, identity effects
//! visible through FHIR, every message logged.

use serde_json::Value;

use crate::helpers::*;

fn valid_ins(order: u32) -> String {
    let m = format!("2790375{order:06}");
    format!("{m}{:02}", domain::ins::key_for(&m).unwrap())
}

/// An IHE PAM France ADT from the demo hospital's GAM.
fn adt(
    event: &str,
    control: &str,
    ipp: &str,
    ins: Option<&str>,
    reliability: &str,
    family: &str,
) -> String {
    let structure = match event {
        "A28" | "A31" | "A05" => "ADT_A05",
        "A40" => "ADT_A39",
        _ => "ADT_A01",
    };
    let ins = ins
        .map(|i| format!("~{i}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"))
        .unwrap_or_default();
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123101500||ADT^{event}^{structure}|{control}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8|FR||2.11^IHE_FRANCE-2.11-PAM\r\
         EVN||20261123101500\r\
         PID|1||{ipp}^^^CHVL&450000021&M^PI{ins}||{family}^Hélène^Hélène Marie^^^^L~Dupont^Hélène^^^^^D||19790315|F|||^^^^^^BDL^^45234|||||||||||||||||||||{reliability}\r\
         PV1|1|I|REA^12^1\r"
    )
}

async fn fhir_patient_by_ipp(app: &TestApp, token: &str, ipp: &str) -> Option<Value> {
    let url = format!(
        "/fhir/Patient?identifier=urn:oid:{}%7C{ipp}",
        server::demo::DEMO_DOMAIN_OID
    );
    let b = app.get(&url, Some(token)).await.json();
    b["entry"]
        .as_array()
        .unwrap()
        .first()
        .map(|e| e["resource"].clone())
}

#[tokio::test]
async fn admissions_create_and_update_identities_on_both_backends() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut c = Mllp::connect(&app).await;
        let ins = valid_ins(501);
        let ack = c
            .send(adt("A28", "m1", "IPP501", Some(&ins), "VALI", "Lefèvre").as_bytes())
            .await;
        assert_eq!(ack_code(&ack).0, "AA", "{backend}: {ack}");
        assert!(ack.contains("ACK^A28^ACK"), "{ack}");
        let p = fhir_patient_by_ipp(&app, &token, "IPP501")
            .await
            .expect("created");
        assert_eq!(p["name"][0]["family"], "Lefèvre");
        assert_eq!(
            p["name"][0]["given"],
            serde_json::json!(["Hélène", "Marie"])
        );
        assert_eq!(p["name"][1]["family"], "Dupont");
        assert_eq!(
            p["identifier"][0]["value"],
            ins.as_str(),
            "{backend}: VALI in PID-32 = qualified"
        );
        assert_eq!(
            p["extension"][0]["extension"][0]["valueCoding"]["code"],
            "QUAL"
        );
        // An update (A31) and an A08 (accepted as an update).
        assert_eq!(
            ack_code(
                &c.send(
                    adt("A31", "m2", "IPP501", Some(&ins), "VALI", "Lefèvre-Martin").as_bytes()
                )
                .await
            )
            .0,
            "AA"
        );
        assert_eq!(
            ack_code(
                &c.send(
                    adt("A08", "m3", "IPP501", Some(&ins), "PROV", "Lefèvre-Martin").as_bytes()
                )
                .await
            )
            .0,
            "AA"
        );
        let p = fhir_patient_by_ipp(&app, &token, "IPP501").await.unwrap();
        assert_eq!(p["name"][0]["family"], "Lefèvre-Martin");
        assert_eq!(p["meta"]["versionId"], "3");
        assert_eq!(
            p["identifier"].as_array().unwrap().len(),
            1,
            "{backend}: not qualified any more: the INS is stripped"
        );
        // The admission links the patient to the hospital; every step is audited.
        let id = p["id"].as_str().unwrap();
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(id.into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(trail.iter().any(|e| e.action == "create"
            && e.actor_id == "mllp:GAM|CHVL"
            && e.role.as_deref() == Some("integration")));
        let log = app.store.hl7_messages(None, 10).await.unwrap();
        assert_eq!(log.len(), 3);
        assert!(
            log.iter()
                .all(|m| m.status == "accepted" && m.patient_id.as_deref() == Some(id))
        );
        validate_fhir(&[p]);
    }
}

#[tokio::test]
async fn a_repeated_control_id_gets_the_same_ack_and_no_second_effect() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let mut c = Mllp::connect(&app).await;
        let msg = adt(
            "A28",
            "dup-1",
            "IPP600",
            Some(&valid_ins(600)),
            "VALI",
            "Durand",
        );
        let first = c.send(msg.as_bytes()).await;
        let audit_before = app.store.verify_audit().await.unwrap().checked;
        let mut other = Mllp::connect(&app).await;
        let second = other.send(msg.as_bytes()).await;
        assert_eq!(first, second, "{backend}: byte for byte the same ACK");
        assert_eq!(
            app.store.verify_audit().await.unwrap().checked,
            audit_before,
            "{backend}: no second effect"
        );
        assert_eq!(app.store.hl7_messages(None, 10).await.unwrap().len(), 1);
        // Same control id from another sender is another message.
        // Its IPPs carry the same authority as the hospital's here.
        app.declare_sender(
            ("GAM", "STROCH"),
            server::demo::CLINIC_FINESS,
            Some("450000021"),
            &[],
            None,
        )
        .await;
        let from_clinic = msg
            .replace("|GAM|CHVL|", "|GAM|STROCH|")
            .replace("IPP600", "IPP601")
            .replace(&valid_ins(600), &valid_ins(601));
        assert_eq!(
            ack_code(&c.send(from_clinic.as_bytes()).await).0,
            "AA",
            "{backend}"
        );
        assert_eq!(app.store.hl7_messages(None, 10).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_wrong_ins_key_gets_ae_with_err_and_the_identity_stays_provisional() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut c = Mllp::connect(&app).await;
        let ack = c
            .send(
                adt(
                    "A28",
                    "bad-ins",
                    "IPP700",
                    Some("276037510669380"),
                    "VALI",
                    "Martin",
                )
                .as_bytes(),
            )
            .await;
        let (code, err_code, location) = ack_code(&ack);
        assert_eq!(
            (code.as_str(), err_code.as_deref()),
            ("AE", Some("102")),
            "{backend}: {ack}"
        );
        assert_eq!(
            location.as_deref(),
            Some("PID^1^3^2^1"),
            "{backend}: the second repetition of PID-3"
        );
        assert!(ack.contains("clé de contrôle"), "{ack}");
        let p = fhir_patient_by_ipp(&app, &token, "IPP700")
            .await
            .expect("the identity is stored");
        assert_eq!(
            p["extension"][0]["extension"][0]["valueCoding"]["code"], "PROV",
            "{backend}"
        );
        let stored = app
            .store
            .search_patients(
                app.store
                    .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                &store::patients::PatientQuery {
                    ipp: Some("IPP700".into()),
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(stored[0].ins, None, "{backend}: a wrong INS is not stored");
        let log = app.store.hl7_messages(None, 1).await.unwrap();
        assert_eq!(
            (log[0].status.as_str(), log[0].errors.contains("clé")),
            ("error", true)
        );
    }
}

#[tokio::test]
async fn a40_merges_and_unsupported_messages_are_rejected() {
    let app = spawn_app("sqlite").await;
    let token = app.token().await;
    let mut c = Mllp::connect(&app).await;
    assert_eq!(
        ack_code(
            &c.send(adt("A28", "a", "IPP800", None, "PROV", "Bernard").as_bytes())
                .await
        )
        .0,
        "AA"
    );
    assert_eq!(
        ack_code(
            &c.send(adt("A28", "b", "IPP801", None, "PROV", "Bernard").as_bytes())
                .await
        )
        .0,
        "AA"
    );
    let merge = format!(
        "{}MRG|IPP801^^^CHVL&450000021&M^PI\r",
        adt("A40", "c", "IPP800", None, "PROV", "Bernard")
    );
    assert_eq!(ack_code(&c.send(merge.as_bytes()).await).0, "AA");
    let merged = fhir_patient_by_ipp(&app, &token, "IPP801").await.unwrap();
    assert_eq!(merged["active"], false);
    let survivor = fhir_patient_by_ipp(&app, &token, "IPP800").await.unwrap();
    assert_eq!(
        merged["link"][0]["other"]["reference"],
        format!("Patient/{}", survivor["id"].as_str().unwrap())
    );
    // Merging again: AE (already merged), nothing changes.
    let again = merge.replace("|c|P|", "|d|P|");
    assert_eq!(ack_code(&c.send(again.as_bytes()).await).0, "AE");
    let unknown = format!(
        "{}MRG|IPP999^^^CHVL&450000021&M^PI\r",
        adt("A40", "e", "IPP800", None, "PROV", "Bernard")
    );
    let (code, err, _) = ack_code(&c.send(unknown.as_bytes()).await);
    assert_eq!((code.as_str(), err.as_deref()), ("AE", Some("204")));

    let base = adt("A28", "r", "IPP900", None, "PROV", "X");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            base.replace("ADT^A28^ADT_A05|r|", "ORU^R01^ORU_R01|r1|"),
            "AR",
            "200",
        ),
        (
            base.replace("ADT^A28^ADT_A05|r|", "ADT^A44^ADT_A43|r2|"),
            "AR",
            "201",
        ),
        (
            base.replace("|r|P|2.5^FRA^2.11|", "|r3|X|2.5^FRA^2.11|"),
            "AR",
            "202",
        ),
        (
            base.replace("|r|P|2.5^FRA^2.11|", "|r4|P|3.0|"),
            "AR",
            "203",
        ),
        (
            base.replace("|GAM|CHVL|", "|GAM|INCONNU|")
                .replace("|r|", "|r5|"),
            "AR",
            "207",
        ),
        (
            base.replace("|r|", "|r6|").replace("19790315", "1979"),
            "AE",
            "102",
        ),
        (
            base.replace("|r|", "|r7|").replace(
                "IPP900^^^CHVL&450000021&M^PI",
                "IPP900^^^CHVL&450000021&M^AN",
            ),
            "AE",
            "101",
        ),
        (base.replace("|r|", "||"), "AR", "101"),
        ("PID|1||garbage".to_owned(), "AR", "100"),
        ("MSH|^~|broken".to_owned(), "AR", "102"),
    ];
    for (msg, code, err) in cases {
        let ack = c.send(msg.as_bytes()).await;
        let (got, got_err, _) = ack_code(&ack);
        assert_eq!(
            (got.as_str(), got_err.as_deref()),
            (code, Some(err)),
            "{msg:?} -> {ack:?}"
        );
    }
    let log = app.store.hl7_messages(None, 100).await.unwrap();
    assert_eq!(log.len(), 15, "every message is logged, even garbage");
    // Every ACK sent (AA, AE with ERR, AR) is valid HL7 v2.5 for hl7apy.
    let acks: Vec<String> = log.iter().map(|m| m.ack.clone()).collect();
    validate_hl7(&acks);
    assert!(
        log.iter()
            .any(|m| m.raw == b"PID|1||garbage" && m.status == "rejected")
    );
}

#[tokio::test]
async fn latin1_messages_are_decoded() {
    let app = spawn_app("sqlite").await;
    let token = app.token().await;
    // Latin-1 bytes, and escapes: \X27\ (an apostrophe as hex), \XE8\ (a Latin-1 è).
    let text = adt("A28", "l1", "IPP950", None, "PROV", "Lefèvre")
        .replace("UNICODE UTF-8", "8859/1")
        .replace("~Dupont^", "~D\\X27\\Orl\\XE8\\ans^");
    let bytes: Vec<u8> = text
        .chars()
        .map(|ch| u8::try_from(u32::from(ch)).unwrap())
        .collect();
    let mut c = Mllp::connect(&app).await;
    assert_eq!(ack_code(&c.send(&bytes).await).0, "AA");
    let p = fhir_patient_by_ipp(&app, &token, "IPP950").await.unwrap();
    assert_eq!(p["name"][0]["family"], "Lefèvre");
    assert_eq!(p["name"][0]["given"][0], "Hélène");
    assert_eq!(p["name"][1]["family"], "D'Orlèans", "escapes decoded");
}

#[tokio::test]
async fn ten_concurrent_senders() {
    for backend in BACKENDS {
        let app = std::sync::Arc::new(spawn_app(backend).await);
        let mut tasks = Vec::new();
        for s in 0..10u32 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Mllp::connect(&app).await;
                for i in 0..20u32 {
                    let n = s * 100 + i;
                    let ack = c
                        .send(
                            adt(
                                "A28",
                                &format!("c{n}"),
                                &format!("IPPC{n}"),
                                Some(&valid_ins(1000 + n)),
                                "VALI",
                                "Concurrent",
                            )
                            .as_bytes(),
                        )
                        .await;
                    assert_eq!(ack_code(&ack).0, "AA", "{ack}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            app.store.hl7_messages(None, 500).await.unwrap().len(),
            200,
            "{backend}"
        );
        let t = app
            .store
            .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.store.count_patients(t.id).await.unwrap(),
            220,
            "{backend}: 20 demo patients + 200"
        );
        assert_eq!(app.store.verify_audit().await.unwrap().error, None);
    }
}

/// An ADT movement for patient IPP1000 in the demo hospital.
pub(crate) fn movement(
    event: &str,
    control: &str,
    zbe_id: &str,
    action: &str,
    place: &str,
    when: &str,
) -> String {
    let structure = if event == "A02" || event == "A12" {
        "ADT_A02"
    } else if event == "A03" || event == "A13" {
        "ADT_A03"
    } else {
        "ADT_A01"
    };
    format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|{when}||ADT^{event}^{structure}|{control}|P|2.5^FRA^2.11|||||FRA|UNICODE UTF-8\r\
         EVN||{when}\r\
         PID|1||IPP1000^^^CHVL&450000021&M^PI||Séjour^Anne^^^^^L||19600101|F\r\
         PV1|1|I|{place}||||||||||||||||V1000^^^CHVL&450000021&M^VN\r\
         ZBE|{zbe_id}^CHVL|{when}||{action}|N\r"
    )
}

#[tokio::test]
async fn movements_follow_the_stay_and_cancels_undo_them() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap()
            .id;
        let mut c = Mllp::connect(&app).await;
        let mut send = async |m: String| {
            let ack = c.send(m.as_bytes()).await;
            let (code, err, _) = ack_code(&ack);
            (code, err)
        };
        let beds = async |app: &TestApp| -> Vec<String> {
            app.store
                .occupancy(hospital)
                .await
                .unwrap()
                .into_iter()
                .map(|o| {
                    format!(
                        "{}/{}/{}",
                        o.location.unit.unwrap(),
                        o.location.room.unwrap(),
                        o.location.bed.unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(
            send(movement(
                "A01",
                "e1",
                "MV1",
                "INSERT",
                "REA^12^1",
                "202611230800"
            ))
            .await
            .0,
            "AA",
            "{backend}"
        );
        assert_eq!(beds(&app).await, vec!["REA/12/1"], "{backend}");
        let patient = fhir_patient_by_ipp(&app, &token, "IPP1000").await.unwrap();
        let pid = patient["id"].as_str().unwrap().to_owned();
        let encounters = async |app: &TestApp| -> Value {
            app.get(
                &format!("/fhir/Encounter?patient=Patient/{pid}"),
                Some(&token),
            )
            .await
            .json()
        };
        let b = encounters(&app).await;
        let e = &b["entry"][0]["resource"];
        assert_eq!(
            (e["status"].as_str(), e["class"]["code"].as_str()),
            (Some("in-progress"), Some("IMP")),
            "{backend}: {b}"
        );
        assert_eq!(
            e["location"][0]["location"]["display"],
            "REA, chambre 12, lit 1"
        );
        assert_eq!(
            e["period"]["start"], "2026-11-23T07:00:00Z",
            "08:00 in Paris is 07:00 UTC in November"
        );

        assert_eq!(
            send(movement(
                "A02",
                "e2",
                "MV2",
                "INSERT",
                "CHIR^3^2",
                "202611231000"
            ))
            .await
            .0,
            "AA"
        );
        assert_eq!(beds(&app).await, vec!["CHIR/3/2"], "{backend}: transfer");
        assert_eq!(
            send(movement(
                "A12",
                "e3",
                "MV2",
                "CANCEL",
                "CHIR^3^2",
                "202611231000"
            ))
            .await
            .0,
            "AA"
        );
        assert_eq!(
            beds(&app).await,
            vec!["REA/12/1"],
            "{backend}: the transfer is undone"
        );
        assert_eq!(
            send(movement(
                "A03",
                "e4",
                "MV3",
                "INSERT",
                "REA^12^1",
                "202611251200"
            ))
            .await
            .0,
            "AA"
        );
        assert!(beds(&app).await.is_empty(), "{backend}: discharged");
        let e = encounters(&app).await["entry"][0]["resource"].clone();
        assert_eq!(
            (e["status"].as_str(), e["period"]["end"].as_str()),
            (Some("finished"), Some("2026-11-25T11:00:00Z"))
        );
        assert_eq!(
            send(movement(
                "A13",
                "e5",
                "MV3",
                "CANCEL",
                "REA^12^1",
                "202611251200"
            ))
            .await
            .0,
            "AA"
        );
        assert_eq!(
            beds(&app).await,
            vec!["REA/12/1"],
            "{backend}: discharge undone"
        );
        // A cancel of something that is not there: AE 204, nothing changes.
        assert_eq!(
            send(movement(
                "A12",
                "e6",
                "MV9",
                "CANCEL",
                "CHIR^3^2",
                "202611231000"
            ))
            .await,
            ("AE".into(), Some("204".into()))
        );
        assert_eq!(
            send(movement(
                "A11",
                "e7",
                "MV1",
                "CANCEL",
                "REA^12^1",
                "202611230800"
            ))
            .await
            .0,
            "AA"
        );
        assert!(beds(&app).await.is_empty());
        let e = encounters(&app).await["entry"][0]["resource"].clone();
        assert_eq!(e["status"], "cancelled", "{backend}");
        // A movement needs a visit number; an UPDATE (Z99) is not handled yet.
        let no_visit = movement("A01", "e8", "MV8", "INSERT", "REA^1^1", "202611230800")
            .replace("V1000^^^CHVL&450000021&M^VN", "");
        assert_eq!(send(no_visit).await, ("AE".into(), Some("101".into())));
        let read = app
            .get(
                &format!("/fhir/Encounter/{}", e["id"].as_str().unwrap()),
                Some(&token),
            )
            .await;
        assert_eq!(read.status, 200);
        assert_eq!(
            read.header("etag"),
            Some(format!(
                "W/\"{}\"",
                e["meta"]["versionId"].as_str().unwrap()
            )),
            "{backend}: a versioned read carries its ETag"
        );
        validate_fhir(&[e, read.json()]);
        // The clinic's integration client may not read the hospital's stays.
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
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
        let other = app.token_for("clinic-feed", "s").await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.get(
                &format!("/fhir/Encounter?patient=Patient/{pid}"),
                Some(&other)
            )
            .await
            .status,
            403,
            "{backend}"
        );
        assert_eq!(
            app.get(&format!("/fhir/Patient/{pid}"), Some(&other))
                .await
                .status,
            200,
            "identity is shared in the GHT"
        );
    }
}

#[tokio::test]
async fn admins_browse_their_establishments_message_log() {
    let app = spawn_app("sqlite").await;
    let mut c = Mllp::connect(&app).await;
    c.send(
        adt(
            "A28",
            "log-1",
            "IPPL1",
            Some(&valid_ins(77)),
            "VALI",
            "Journal",
        )
        .as_bytes(),
    )
    .await;
    c.send(
        adt(
            "A28",
            "log-2",
            "IPPL2",
            Some("276037510669380"),
            "VALI",
            "Journal",
        )
        .as_bytes(),
    )
    .await;
    c.send(b"PID|garbage").await;
    let admin = app.login("admin.hopital").await;
    let r = app.get_page("/admin/hl7", &admin).await;
    assert_eq!(r.status, 200);
    let page = r.page();
    assert!(
        page.contains("log-1")
            && page.contains("log-2")
            && page.contains("accepté (AA)")
            && page.contains("erreur (AE)"),
        "{page}"
    );
    assert!(
        !page.contains("garbage"),
        "an unknown sender's message belongs to no establishment"
    );
    let entry = app
        .store
        .hl7_messages(None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.control_id.as_deref() == Some("log-2"))
        .unwrap();
    let r = app
        .get_page(&format!("/admin/hl7/{}", entry.id), &admin)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.page().contains("MSA|AE|log-2") && r.page().contains("PID|1||IPPL2"),
        "{}",
        r.text
    );
    let trail = app
        .store
        .list_audit(&store::audit::AuditFilter {
            patient: entry.patient_id.clone(),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        trail[0].resource,
        format!("Hl7Message/{}", entry.id),
        "reading a raw message is an audited read"
    );
    // Another establishment's admin sees none of it; a nurse has no access.
    let other = app.login("admin.clinique").await;
    assert!(
        !app.get_page("/admin/hl7", &other)
            .await
            .page()
            .contains("log-1")
    );
    assert_eq!(
        app.get_page(&format!("/admin/hl7/{}", entry.id), &other)
            .await
            .status,
        404
    );
    let nurse = app.login("ipa.robert").await;
    assert_eq!(app.get_page("/admin/hl7", &nurse).await.status, 403);
}

#[tokio::test]
async fn the_ans_samples_and_messages_written_by_hl7apy_and_python_hl7() {
    let app = spawn_app("sqlite").await;
    let token = app.token().await;
    // The ANS samples' IPPs are assigned by CHU-X (PID-3.4 CHU-X&000897406&N).
    app.declare_sender(
        ("GAM", "CHU-X"),
        server::demo::HOSPITAL_FINESS,
        Some("000897406"),
        &[],
        None,
    )
    .await;
    let mut c = Mllp::connect(&app).await;
    let dir = format!(
        "{}/../../../shared/fixtures/hl7v2/ansforge",
        env!("CARGO_MANIFEST_DIR")
    );
    // The admission then the discharge of the ANS samples (PID-32 VALI, INS on the test OID).
    for f in ["A01_admission.er7", "A03_sortie.er7"] {
        let bytes = std::fs::read(format!("{dir}/{f}")).unwrap();
        let ack = c.send(&bytes).await;
        assert_eq!(ack_code(&ack).0, "AA", "{f}: {ack}");
    }
    let p = fhir_patient_by_ipp(&app, &token, "000003")
        .await
        .expect("the ANS patient");
    assert_eq!(p["name"][0]["family"], "PAT-TROIS");
    assert_eq!(p["identifier"][0]["system"], "urn:oid:1.2.250.1.213.1.4.8");
    assert_eq!(p["identifier"][0]["value"], "279035121518989");
    let enc = app
        .get(
            &format!(
                "/fhir/Encounter?patient=Patient/{}",
                p["id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await
        .json();
    assert_eq!(enc["entry"][0]["resource"]["status"], "finished", "{enc}");
    // A second sample reusing control id 3975 from the same sender gets the first ACK.
    let first = app
        .store
        .hl7_message_for("GAM|CHU-X", "3975")
        .await
        .unwrap()
        .unwrap()
        .ack;
    let again = std::fs::read(format!(
        "{dir}/ZFA_ConsentementConsultation_NonOppositionAlimentation.er7"
    ))
    .unwrap();
    assert_eq!(c.send(&again).await, first);
    // ZFA: the DMP is open and the patient did not oppose its feeding (A01's
    // ZFA-9 INO); a later message says she opposes (IO); one where it was not
    // collected (NA) leaves that as it was.
    let pid: domain::PatientId = p["id"].as_str().unwrap().parse().unwrap();
    use domain::documents::DmpState;
    assert_eq!(
        app.store.dmp_of(pid).await.unwrap(),
        (DmpState::Active, false)
    );
    for (f, expected) in [
        (
            "ZFA_NonConsentementConsultation_OppositionAlimentation.er7",
            true,
        ),
        (
            "ZFA_NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7",
            true,
        ),
        (
            "ZFA_NonRecueillieConsentementConsultation_NonOppositionAlimentation.er7",
            false,
        ),
    ] {
        let ack = c.send(&std::fs::read(format!("{dir}/{f}")).unwrap()).await;
        assert_eq!(ack_code(&ack).0, "AA", "{f}: {ack}");
        assert_eq!(
            app.store.dmp_of(pid).await.unwrap(),
            (DmpState::Active, expected),
            "{f}: {ack}"
        );
    }

    let out = std::process::Command::new("python3")
        .arg(format!(
            "{}/../../scripts/peer_messages.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for m in &messages {
        let ack = c.send(m.as_bytes()).await;
        assert_eq!(ack_code(&ack).0, "AA", "{m:?}: {ack}");
    }
    let apy = fhir_patient_by_ipp(&app, &token, "APY1")
        .await
        .expect("hl7apy's patient");
    assert_eq!(apy["name"][0]["given"], serde_json::json!(["Apy", "Lib"]));
    let py = fhir_patient_by_ipp(&app, &token, "PY1")
        .await
        .expect("python-hl7's patient");
    assert_eq!(py["birthDate"], "1965-02-02");
}

#[tokio::test]
async fn a47_changes_the_ipp_or_the_ins() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut c = Mllp::connect(&app).await;
        let ins = valid_ins(470);
        assert_eq!(
            ack_code(
                &c.send(adt("A28", "x1", "IPPX1", Some(&ins), "VALI", "Change").as_bytes())
                    .await
            )
            .0,
            "AA"
        );
        assert_eq!(
            ack_code(
                &c.send(adt("A28", "x0", "IPPX0", None, "PROV", "Autre").as_bytes())
                    .await
            )
            .0,
            "AA"
        );
        // New IPP: PID-3 holds it, MRG-1 the old one.
        let change = format!(
            "{}MRG|IPPX1^^^CHVL&450000021&M^PI\r",
            adt("A47", "x2", "IPPX2", Some(&ins), "VALI", "Change")
        );
        assert_eq!(
            ack_code(&c.send(change.as_bytes()).await).0,
            "AA",
            "{backend}"
        );
        assert!(fhir_patient_by_ipp(&app, &token, "IPPX1").await.is_none());
        let p = fhir_patient_by_ipp(&app, &token, "IPPX2")
            .await
            .expect("found under the new IPP");
        assert_eq!(p["identifier"][0]["value"], ins.as_str());
        // To an IPP already used: AE 205, nothing changes.
        let clash = format!(
            "{}MRG|IPPX2^^^CHVL&450000021&M^PI\r",
            adt("A47", "x3", "IPPX0", None, "PROV", "Change")
        );
        assert_eq!(
            ack_code(&c.send(clash.as_bytes()).await),
            ("AE".into(), Some("205".into()), Some("PID^1^3".into())),
            "{backend}"
        );
        // INS removed: PID-3 carries "" for the INS, MRG-1 the old INS, PID-32 PROV.
        let removal = format!(
            "{}MRG|{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS\r",
            adt("A47", "x4", "IPPX2", Some("\"\""), "PROV", "Change")
        );
        assert_eq!(
            ack_code(&c.send(removal.as_bytes()).await).0,
            "AA",
            "{backend}"
        );
        let p = fhir_patient_by_ipp(&app, &token, "IPPX2").await.unwrap();
        assert_eq!(
            p["identifier"].as_array().unwrap().len(),
            1,
            "{backend}: only the IPP is left"
        );
        assert_eq!(
            p["extension"][0]["extension"][0]["valueCoding"]["code"],
            "PROV"
        );
        let no_mrg = adt("A47", "x5", "IPPX2", None, "PROV", "Change");
        assert_eq!(
            ack_code(&c.send(no_mrg.as_bytes()).await).1.as_deref(),
            Some("101")
        );
    }
}

/// PAM France demographics, sent in Latin-1 with escapes, read back over FHIR:
/// addresses, phones, e-mail, the personne de confiance, the GP, the language
/// and the death; an A31 changes the address and the audit names what changed;
/// a value that breaks a rule is answered AE (with effect) and left out.
#[tokio::test]
async fn demographics_travel_from_adt_to_fhir() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let to_latin1 = |text: String| -> Vec<u8> {
            text.replace("UNICODE UTF-8", "8859/1")
                .chars()
                .map(|ch| u8::try_from(u32::from(ch)).unwrap())
                .collect()
        };
        // PID-11: a home address with an escaped & (\T\) and Latin-1 letters, the
        // birth place (BDL); PID-13 mobile and e-mail; PID-14 work phone; PID-15
        // language; NK1 the personne de confiance (K); ROL the GP (ODRP).
        // PID-9 to PID-31 of `adt`'s message, replaced by these fields.
        let original = format!("|||^^^^^^BDL^^45234{}", "|".repeat(21));
        let fields = |set: &[(usize, &str)]| -> String {
            let mut out = String::new();
            for n in 9..=31 {
                out.push('|');
                out.push_str(set.iter().find(|(k, _)| *k == n).map_or("", |(_, v)| v));
            }
            out.push('|');
            out
        };
        let a28 = adt("A28", "d1", "IPP700", None, "PROV", "Lefèvre").replace(
            &original,
            &fields(&[
                (11, "Chemin des Prés \\T\\ Bois^Bât. B^Saint-Étienne^^42000^FRA^H~^^Orléans^^^FRA^BDL^^45234"),
                (13, "^PRN^CP^^^^^^^^^06 12 34 56 78~^NET^Internet^helene.lefevre@example.fr"),
                (14, "^WPN^PH^^^^^^^^^0477000000"),
                (15, "fre"),
            ]),
        );
        assert!(
            a28.contains("Orléans") && a28.ends_with("|PROV\rPV1|1|I|REA^12^1\r"),
            "{a28}"
        );
        let pid_end = a28.find("\rPV1").unwrap();
        let a28 = format!(
            "{}\rNK1|1|Lefèvre^Paul|CHD||^PRN^PH^^^^^^^^^0712345678||K\r\
             ROL||UC|ODRP|10000023084^AGNES^Isabelle^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS{}",
            &a28[..pid_end],
            &a28[pid_end..]
        );
        let mut c = Mllp::connect(&app).await;
        let ack = c.send(&to_latin1(a28)).await;
        assert_eq!(ack_code(&ack).0, "AA", "{backend}: {ack}");
        let p = fhir_patient_by_ipp(&app, &token, "IPP700").await.unwrap();
        assert_eq!(
            p["address"],
            serde_json::json!([{"use": "home", "line": ["Chemin des Prés & Bois", "Bât. B"], "postalCode": "42000", "city": "Saint-Étienne", "country": "FRA"}]),
            "{backend}"
        );
        let birth = p["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == interop::fhir::EXT_BIRTHPLACE)
            .unwrap();
        assert_eq!(birth["valueAddress"]["city"], "Orléans");
        assert_eq!(
            p["telecom"],
            serde_json::json!([
                {"system": "phone", "use": "mobile", "value": "0612345678"},
                {"system": "email", "use": "home", "value": "helene.lefevre@example.fr"},
                {"system": "phone", "use": "work", "value": "0477000000"}
            ]),
            "{backend}"
        );
        assert_eq!(p["contact"][0]["name"]["family"], "Lefèvre");
        assert_eq!(
            p["contact"][0]["relationship"][0]["coding"][0]["code"],
            "NOK"
        );
        assert_eq!(p["contact"][0]["telecom"][0]["value"], "0712345678");
        assert_eq!(
            p["generalPractitioner"][0]["identifier"]["value"],
            "810000023084"
        );
        assert_eq!(p["communication"][0]["language"]["coding"][0]["code"], "fr");
        validate_fhir(std::slice::from_ref(&p));

        // A31: a new address, a phone with a letter (refused: AE, the rest
        // applies), the death; no NK1, no ROL: the close one and the GP stay.
        let a31 = adt("A31", "d2", "IPP700", None, "PROV", "Lefèvre").replace(
            &original,
            &fields(&[
                (
                    11,
                    "3 place Bellecour^^Lyon^^69002^FRA^H~^^Orléans^^^FRA^BDL^^45234",
                ),
                (13, "^PRN^PH^^^^^^^^^04 78 0X"),
                (29, "20261110"),
                (30, "Y"),
            ]),
        );
        let ack = c.send(&to_latin1(a31)).await;
        assert_eq!(ack_code(&ack).0, "AE", "{backend}: {ack}");
        assert!(
            ack.contains("ERR|") && ack.contains("PID^1^13"),
            "{backend}: {ack}"
        );
        let p = fhir_patient_by_ipp(&app, &token, "IPP700").await.unwrap();
        assert_eq!(p["address"][0]["city"], "Lyon", "{backend}");
        assert_eq!(
            p["telecom"],
            Value::Null,
            "{backend}: PID-13 sent: replaced"
        );
        assert_eq!(p["deceasedDateTime"], "2026-11-10", "{backend}");
        assert_eq!(
            p["contact"][0]["name"]["family"], "Lefèvre",
            "{backend}: kept"
        );
        assert_eq!(
            p["generalPractitioner"][0]["display"],
            "Dr Isabelle AGNES (RPPS 10000023084)"
        );
        assert_eq!(p["meta"]["versionId"], "2");
        validate_fhir(std::slice::from_ref(&p));
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(p["id"].as_str().unwrap().into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let changed: Vec<&str> = trail
            .iter()
            .filter(|e| e.action == "update-demographics")
            .map(|e| e.resource.rsplit('#').next().unwrap())
            .collect();
        assert_eq!(changed, ["address,telecom,deceased"], "{backend}");
    }
}

/// What every FHIR search shares: unknown parameters under `Prefer`, paging
/// links, `_summary=count`, `_lastUpdated`, `_sort`, `_include` and
/// `_revinclude` for the common pairs; the Bundles pass fhir.resources.
#[tokio::test]
async fn fhir_searches_share_paging_sorting_and_includes() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.token().await;
        let mut c = Mllp::connect(&app).await;
        // Two stays for one patient (an admission, then another).
        for (control, visit) in [("s1", "V1"), ("s2", "V2")] {
            let msg = adt("A01", control, "IPP800", None, "PROV", "Searchy").replace(
                "PV1|1|I|REA^12^1",
                &format!("PV1|1|I|REA^12^1{}{visit}", "|".repeat(16)),
            );
            assert_eq!(ack_code(&c.send(msg.as_bytes()).await).0, "AA", "{backend}");
        }
        let p = fhir_patient_by_ipp(&app, &token, "IPP800").await.unwrap();
        let pid = p["id"].as_str().unwrap().to_owned();
        let get = |path: String| {
            let (app, token) = (&app, &token);
            async move {
                let r = app.get(&path, Some(token)).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
                r.json()
            }
        };
        let modes = |b: &Value| -> Vec<(String, String)> {
            b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["search"]["mode"].as_str().unwrap().to_owned(),
                        e["resource"]["resourceType"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let link = |b: &Value, rel: &str| -> Option<String> {
            b["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == rel)
                .map(|l| l["url"].as_str().unwrap().to_owned())
        };

        // Lenient by default: the unknown parameter is listed in an OperationOutcome.
        let b = get(format!("/fhir/Encounter?patient=Patient/{pid}&color=blue")).await;
        assert_eq!(
            modes(&b),
            [
                ("match".into(), "Encounter".into()),
                ("match".into(), "Encounter".into()),
                ("outcome".into(), "OperationOutcome".into())
            ],
            "{backend}"
        );
        assert!(b.to_string().contains("color"));
        let strict = app
            .http
            .get(app.url(&format!("/fhir/Encounter?patient=Patient/{pid}&color=blue")))
            .bearer_auth(&token)
            .header("prefer", "handling=strict")
            .send()
            .await
            .unwrap();
        let strict = read(strict).await;
        assert_eq!(strict.status, 400, "{backend}");
        assert!(strict.outcome().contains("color"));

        // _summary=count, paging, _sort.
        let b = get(format!(
            "/fhir/Encounter?patient=Patient/{pid}&_summary=count"
        ))
        .await;
        assert_eq!(
            (b["total"].as_u64(), b.get("entry")),
            (Some(2), None),
            "{backend}"
        );
        let b = get(format!(
            "/fhir/Encounter?patient=Patient/{pid}&_count=1&_sort=-_id"
        ))
        .await;
        assert_eq!(b["total"], 2);
        assert_eq!(b["entry"].as_array().unwrap().len(), 1);
        let first = b["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        let next = link(&b, "next").expect("a next page");
        assert!(next.contains("_offset=1"), "{next}");
        let path = next.split("/fhir/").nth(1).unwrap();
        let b2 = get(format!("/fhir/{path}")).await;
        let second = b2["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(second < first, "{backend}: sorted by id, descending");
        assert!(link(&b2, "previous").is_some() && link(&b2, "next").is_none());
        let b = get("/fhir/Patient?_summary=count".into()).await;
        assert_eq!(b["total"], 21, "{backend}: the 20 demo patients and ours");
        let b = get("/fhir/Patient?_lastUpdated=gt2100-01-01".into()).await;
        assert_eq!(b["entry"].as_array().unwrap().len(), 0, "{backend}");
        let b = get("/fhir/Patient?_lastUpdated=le2100-01-01&_sort=-_lastUpdated&_count=1".into())
            .await;
        assert_eq!(
            b["entry"][0]["resource"]["id"],
            pid.as_str(),
            "{backend}: the latest change first"
        );
        let b = get(format!(
            "/fhir/Encounter?patient=Patient/{pid}&_lastUpdated=gt2100-01-01"
        ))
        .await;
        assert_eq!(b["total"], 0, "{backend}");
        let b = get(format!(
            "/fhir/Encounter?patient=Patient/{pid}&_lastUpdated=le2100-01-01&_sort=-_lastUpdated"
        ))
        .await;
        assert_eq!(
            b["total"], 2,
            "{backend}: both stays carry meta.lastUpdated"
        );
        let r = app
            .get(
                &format!("/fhir/Appointment?patient=Patient/{pid}&_lastUpdated=ge2026-01-01"),
                Some(&token),
            )
            .await;
        assert_eq!(
            r.status, 400,
            "{backend}: refused where resources do not carry it"
        );

        // _include and _revinclude.
        let b = get(format!(
            "/fhir/Encounter?patient=Patient/{pid}&_include=Encounter:patient"
        ))
        .await;
        assert_eq!(
            modes(&b),
            [
                ("match".into(), "Encounter".into()),
                ("match".into(), "Encounter".into()),
                ("include".into(), "Patient".into())
            ],
            "{backend}: the patient once"
        );
        validate_fhir(std::slice::from_ref(&b));
        let b = get(format!(
            "/fhir/Patient?identifier=urn:oid:{}%7CIPP800&_revinclude=Encounter:patient&_revinclude=Appointment:patient",
            server::demo::DEMO_DOMAIN_OID
        ))
        .await;
        assert_eq!(
            modes(&b),
            [
                ("match".into(), "Patient".into()),
                ("include".into(), "Encounter".into()),
                ("include".into(), "Encounter".into())
            ],
            "{backend}"
        );
        validate_fhir(std::slice::from_ref(&b));
        // _count on an Appointment search (refused with 400 before).
        let b = get(format!("/fhir/Appointment?patient=Patient/{pid}&_count=10")).await;
        assert_eq!(b["total"], 0);
        // Every search took the common parameters: the audit has the reads.
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(pid.clone()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            trail
                .iter()
                .any(|e| e.action == "read" && e.resource.starts_with("Patient/")),
            "{backend}: the include is an audited read"
        );
    }
}
