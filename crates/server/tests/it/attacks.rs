//! The attack suite (issue 13): each hole a review and an attack run found,
//! tried as an attacker would, on SQLite and PostgreSQL. Each test failed
//! before its fix.

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

fn valid_ins(order: u32) -> String {
    let m = format!("2790375{order:06}");
    format!("{m}{:02}", domain::ins::key_for(&m).unwrap())
}

/// An ADT from `app^facility` with an IPP of `authority` (PID-3.4).
fn adt_from(
    sender: (&str, &str),
    event: &str,
    control: &str,
    ipp: &str,
    authority: &str,
    extra: &str,
) -> String {
    let structure = match event {
        "A28" | "A31" => "ADT_A05",
        "A40" => "ADT_A39",
        _ => "ADT_A01",
    };
    format!(
        "MSH|^~\\&|{}|{}|PARCOURS|GHT|20261123101500||ADT^{event}^{structure}|{control}|P|2.5^FRA^2.11\r\
         EVN||20261123101500\r\
         PID|1||{ipp}^^^{authority}^PI||Attaque^Anne^^^^^L||19700101|F\r\
         PV1|1|N\r{extra}",
        sender.0, sender.1
    )
}

const CHVL: &str = "CHVL&450000021&M";

/// The stays of `patient` as `token` sees them: the HTTP status.
async fn encounters_status(app: &TestApp, token: &str, patient: &str) -> u16 {
    app.get(
        &format!("/fhir/Encounter?patient=Patient/{patient}"),
        Some(token),
    )
    .await
    .status
}

async fn create_patient(app: &TestApp, token: &str, order: u32) -> String {
    let mut body = patient_body(order, "PROV");
    body["identifier"] = json!([]);
    let suffix: String = order
        .to_string()
        .chars()
        .map(|d| char::from(b'A' + d.to_digit(10).unwrap() as u8))
        .collect();
    body["name"][0]["family"] = json!(format!("Jetable-{suffix}"));
    let r = app
        .send_json(Method::POST, "/fhir/Patient", token, &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

fn merge_params(source: &str, target: &str) -> serde_json::Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": format!("Patient/{source}")}},
        {"name": "target-patient", "valueReference": {"reference": format!("Patient/{target}")}}
    ]})
}

// ------------------------------------------------------------- 1. merges

#[tokio::test]
async fn a_merge_does_not_open_another_establishments_patient() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app
            .client_token("clinic-feed", server::demo::CLINIC_FINESS)
            .await;
        let hospital = app
            .client_token("hospital-feed", server::demo::HOSPITAL_FINESS)
            .await;
        // A patient cared for only at the clinic; a throwaway made by the hospital.
        let victim = create_patient(&app, &clinic, 901).await;
        let throwaway = create_patient(&app, &hospital, 902).await;
        assert_eq!(
            encounters_status(&app, &hospital, &victim).await,
            403,
            "{backend}"
        );
        // FHIR $merge of the throwaway into the victim: refused, nothing merged.
        let r = app
            .send_json(
                Method::POST,
                "/fhir/Patient/$merge",
                &hospital,
                &merge_params(&throwaway, &victim),
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = app
            .send_json(
                Method::POST,
                "/fhir/Patient/$merge",
                &hospital,
                &merge_params(&victim, &throwaway),
            )
            .await;
        assert_eq!(
            r.status, 403,
            "{backend}: the other way round too: {}",
            r.text
        );
        assert_eq!(
            encounters_status(&app, &hospital, &victim).await,
            403,
            "{backend}"
        );
        let t: domain::PatientId = throwaway.parse().unwrap();
        assert!(
            app.store.patient(t).await.unwrap().active(),
            "{backend}: not merged"
        );

        // HL7 A40 from the hospital's GAM naming the clinic patient's IPP as
        // survivor: AE on MRG, nothing merged.
        let victim_ipp = app
            .store
            .patient(victim.parse().unwrap())
            .await
            .unwrap()
            .ipp;
        let throwaway_ipp = app.store.patient(t).await.unwrap().ipp;
        let mut c = Mllp::connect(&app).await;
        let a40 = adt_from(
            ("GAM", "CHVL"),
            "A40",
            "merge-attack",
            &victim_ipp,
            server::demo::DEMO_DOMAIN_OID,
            &format!(
                "MRG|{throwaway_ipp}^^^{}^PI\r",
                server::demo::DEMO_DOMAIN_OID
            ),
        );
        let ack = c.send(a40.as_bytes()).await;
        let (code, _, location) = ack_code(&ack);
        assert_eq!(code, "AE", "{backend}: {ack}");
        assert!(location.unwrap_or_default().starts_with("MRG"), "{ack}");
        assert!(ack.contains("fusion refusée"), "{ack}");
        assert!(
            app.store.patient(t).await.unwrap().active(),
            "{backend}: not merged"
        );
        assert_eq!(
            encounters_status(&app, &hospital, &victim).await,
            403,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_merge_carries_only_the_links_of_real_care() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app
            .client_token("clinic-feed", server::demo::CLINIC_FINESS)
            .await;
        let hospital = app
            .client_token("hospital-feed", server::demo::HOSPITAL_FINESS)
            .await;
        // The clinic's agenda feed as a second sender (for a stay at the clinic).
        app.declare_sender(
            ("GAM", "STROCH"),
            server::demo::CLINIC_FINESS,
            None,
            &[],
            None,
        )
        .await;
        let oid = server::demo::DEMO_DOMAIN_OID;
        let mut c = Mllp::connect(&app).await;
        let mut send = async |m: String| {
            let ack = c.send(m.as_bytes()).await;
            assert_eq!(ack_code(&ack).0, "AA", "{ack}");
        };
        // S: the hospital's. M1: known to the clinic by name only (created
        // there), then seen at the hospital. M2: had a stay at the clinic.
        let s = create_patient(&app, &hospital, 911).await;
        let m1 = create_patient(&app, &clinic, 912).await;
        let m2 = create_patient(&app, &clinic, 913).await;
        let ipp = async |id: &str| app.store.patient(id.parse().unwrap()).await.unwrap().ipp;
        let (s_ipp, m1_ipp, m2_ipp) = (ipp(&s).await, ipp(&m1).await, ipp(&m2).await);
        send(adt_from(("GAM", "CHVL"), "A31", "l1", &m1_ipp, oid, "")).await;
        send(adt_from(("GAM", "CHVL"), "A31", "l2", &m2_ipp, oid, "")).await;
        send(
            adt_from(
                ("GAM", "STROCH"),
                "A01",
                "stay",
                &m2_ipp,
                oid,
                "ZBE|MV1^CLIN|20261123101500||INSERT|N\r",
            )
            .replace(
                "PV1|1|N\r",
                &format!("PV1|1|I|MED^1^1{}V-CLIN-1\r", "|".repeat(16)),
            ),
        )
        .await;
        assert_eq!(encounters_status(&app, &clinic, &s).await, 403, "{backend}");
        // The hospital merges M1 into S: no stay of M1 at the clinic, no link.
        send(adt_from(
            ("GAM", "CHVL"),
            "A40",
            "mg1",
            &s_ipp,
            oid,
            &format!("MRG|{m1_ipp}^^^{oid}^PI\r"),
        ))
        .await;
        assert_eq!(
            encounters_status(&app, &clinic, &s).await,
            403,
            "{backend}: creation is not care"
        );
        // Then M2 into S: M2's stay at the clinic is real care, the clinic sees S.
        send(adt_from(
            ("GAM", "CHVL"),
            "A40",
            "mg2",
            &s_ipp,
            oid,
            &format!("MRG|{m2_ipp}^^^{oid}^PI\r"),
        ))
        .await;
        assert_eq!(
            encounters_status(&app, &clinic, &s).await,
            200,
            "{backend}: care is carried"
        );
    }
}

// ------------------------------------------------------------- 2. corrections

#[tokio::test]
async fn a_submission_cannot_replace_someone_elses_document() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let victim = app
            .store
            .documents_of_patient(lambert.id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.status == domain::documents::Status::Validated)
            .expect("the demo's validated report");
        // The hospital files, for a patient of its own (qualified by its GAM),
        // a "correction" naming Mme Lambert's report.
        let ins = valid_ins(931);
        let mut c = Mllp::connect(&app).await;
        let a28 = adt_from(("GAM", "CHVL"), "A28", "own-1", "OWN931", CHVL, "")
            .replace(
                "^PI||",
                &format!("^PI~{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||"),
            )
            .replace(
                "|19700101|F\r",
                &format!("|19700101|F{}VALI\r", "|".repeat(24)),
            );
        assert_eq!(ack_code(&c.send(a28.as_bytes()).await).0, "AA");
        let hospital = app
            .client_token("hospital-feed", server::demo::HOSPITAL_FINESS)
            .await;
        let cda = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
        let bundle = interop::fhir::mhd::provide_bundle(&interop::fhir::mhd::Submission {
            unique_id: "urn:uuid:21111111-2222-4333-8444-555555555555",
            submission_id: "31111111-2222-4333-8444-555555555555",
            ins: (&ins, "1.2.250.1.213.1.4.8"),
            author: (Some("10000012345"), "Dr Externe"),
            custodian: ("450000021", "Hôpital"),
            type_code: ("11490-0", "Lettre de liaison"),
            class_code: ("10", "Compte rendu"),
            title: "Lettre",
            date_ms: app.clock.now_ms(),
            period_start_ms: app.clock.now_ms(),
            cda,
            replaces: Some(&victim.unique_id),
        });
        let r = read(
            app.http
                .post(app.url("/fhir"))
                .bearer_auth(&hospital)
                .header("content-type", "application/fhir+json")
                .body(bundle.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.outcome().contains("autre patient"), "{}", r.text);
        let after = app.store.document(victim.id).await.unwrap();
        assert_eq!(
            after.superseded_by, None,
            "{backend}: the victim's report stands"
        );
        assert!(
            app.store
                .document_by_unique_id("urn:uuid:21111111-2222-4333-8444-555555555555")
                .await
                .unwrap()
                .is_none(),
            "{backend}: nothing filed"
        );
        // Her portal still lists it.
        let portal = app.login(server::demo::PATIENT_LOGIN).await;
        let page = app.get_page("/mes-documents", &portal).await;
        assert!(
            page.page().contains(&victim.title),
            "{backend}: {}",
            page.text
        );
    }
}

#[tokio::test]
async fn a_mailed_correction_naming_another_patients_document_is_refused() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let mercier = app.demo_patient("Mercier").await;
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
        let first = format!(
            "1.2.250.1.999.77.8.{}",
            uuid::Uuid::new_v4().as_u128() % 1_000_000
        );
        let take = async |mid: &str, cda: String| {
            server::services::intake::take_mail(
                app.state.ctx(),
                &clinic,
                &crate::intake::surgeon_mail(mid, Some(&cda)),
            )
            .await
            .unwrap()
        };
        let r = take("a1@cabinet", crate::intake::surgeon_cda(&lambert, &first)).await;
        assert_eq!(r.filed, 1, "{backend}");
        // A report about M. Mercier claiming to replace Mme Lambert's.
        let second = format!("{first}.2");
        let r = take(
            "a2@cabinet",
            crate::intake::surgeon_cda_replacing(&mercier, &second, Some(&first)),
        )
        .await;
        assert_eq!((r.filed, r.rejected), (0, 1), "{backend}");
        let refused = app
            .store
            .incoming_documents(clinic.id, 10)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.message_id == "a2@cabinet")
            .unwrap();
        assert!(
            refused.detail.contains("autre patient"),
            "{}",
            refused.detail
        );
        let held = app
            .store
            .document_by_unique_id(&format!("urn:oid:{first}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.superseded_by, None, "{backend}");
    }
}

// ------------------------------------------------------------- 3. MLLP

/// A frame from `app`'s GAM: a valid A28.
fn a28(control: &str) -> String {
    adt_from(
        ("GAM", "CHVL"),
        "A28",
        control,
        &format!("IPP-{control}"),
        CHVL,
        "",
    )
}

#[tokio::test]
async fn idle_sockets_cannot_keep_a_known_sender_out() {
    let app = spawn_app_with("sqlite", |c| c.mllp_max_connections = 40).await;
    // An attacker holds more sockets than there are slots, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = tokio::net::TcpStream::connect(app.mllp).await {
            idle.push(s);
        }
    }
    // The hospital's GAM still gets its ACK at once.
    let started = std::time::Instant::now();
    let mut c = Mllp::connect(&app).await;
    let ack = c.send(a28("flood-1").as_bytes()).await;
    assert_eq!(ack_code(&ack).0, "AA", "{ack}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Its connection proved itself: more idle sockets do not close it.
    for _ in 0..60 {
        if let Ok(s) = tokio::net::TcpStream::connect(app.mllp).await {
            idle.push(s);
        }
    }
    assert_eq!(ack_code(&c.send(a28("flood-2").as_bytes()).await).0, "AA");
    // The evicted idle sockets were closed by the server.
    let mut closed = 0;
    for s in idle.iter_mut().take(20) {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(closed > 0, "evicted sockets are closed");
}

#[tokio::test]
async fn silent_dripping_and_oversized_connections_are_closed() {
    let app = spawn_app_with("sqlite", |c| {
        c.mllp_idle_seconds = 1;
        c.mllp_max_frame_bytes = 4096;
    })
    .await;
    let closed_within = async |s: &mut tokio::net::TcpStream, secs: u64| {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(secs), s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };
    // Silent.
    let mut s = tokio::net::TcpStream::connect(app.mllp).await.unwrap();
    assert!(closed_within(&mut s, 4).await, "an idle socket is closed");
    // A frame dripped a byte at a time, never whole within the idle time.
    let mut s = tokio::net::TcpStream::connect(app.mllp).await.unwrap();
    s.write_all(b"\x0bMSH|").await.unwrap();
    let drip = async {
        for _ in 0..40 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    drip.await;
    assert!(closed_within(&mut s, 2).await, "a dripping frame is cut");
    // A frame over the cap.
    let mut s = tokio::net::TcpStream::connect(app.mllp).await.unwrap();
    let mut big = b"\x0bMSH|".to_vec();
    big.extend(std::iter::repeat_n(b'a', 8192));
    let _ = s.write_all(&big).await;
    assert!(
        closed_within(&mut s, 2).await,
        "an oversized frame closes the connection"
    );
    // A normal sender is served.
    let mut c = Mllp::connect(&app).await;
    assert_eq!(ack_code(&c.send(a28("ok").as_bytes()).await).0, "AA");
}

#[tokio::test]
async fn a_sender_speaks_only_from_its_declared_address_and_unknown_bytes_are_not_kept() {
    use server::services::hl7::Peer;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        // The demo's GAM declared no address: from the network, refused (AR).
        let ack = ack_from_peer(&app, &a28("net-1"), &tcp("192.0.2.10")).await;
        assert_eq!(ack_code(&ack).0, "AR", "{backend}: {ack}");
        assert!(ack.contains("192.0.2.10"), "{ack}");
        // Loopback is always allowed.
        let ack = ack_from_peer(&app, &a28("lo-1"), &tcp("127.0.0.1")).await;
        assert_eq!(ack_code(&ack).0, "AA", "{backend}: {ack}");
        // A sender declared with its network: allowed from there only.
        declare_clinic_dpi(&app).await;
        let ack = ack_from_peer(&app, &dpi_a28("n1"), &tcp("192.0.2.77")).await;
        assert_eq!(ack_code(&ack).0, "AA", "{backend}: {ack}");
        let ack = ack_from_peer(&app, &dpi_a28("n2"), &tcp("198.51.100.1")).await;
        assert_eq!(ack_code(&ack).0, "AR", "{backend}: {ack}");
        // Over TLS, the certificate's subject must be the declared one.
        let tls = |cn: &str| Peer::Tls {
            addr: "198.51.100.1".parse().unwrap(),
            subject: cn.into(),
        };
        let ack = ack_from_peer(&app, &dpi_a28("t1"), &tls("Intrus")).await;
        assert_eq!(ack_code(&ack).0, "AR", "{backend}: {ack}");
        // An unknown sender's 4 KiB message: only a short prefix is logged;
        // so is a refused peer's.
        let mut big = adt_from(("INCONNU", "X"), "A28", "u1", "U1", CHVL, "");
        big.push_str(&"NTE|1||".repeat(600));
        let ack = ack_from_peer(&app, &big, &tcp("127.0.0.1")).await;
        assert_eq!(ack_code(&ack).0, "AR");
        let logged = app
            .store
            .hl7_message_for("INCONNU|X", "u1")
            .await
            .unwrap()
            .unwrap();
        assert!(
            logged.raw.len() <= server::services::hl7::UNKNOWN_SENDER_PREFIX,
            "{backend}"
        );
        let logged = app
            .store
            .hl7_message_for("DPI|CLIN", "n2")
            .await
            .unwrap()
            .unwrap();
        assert!(
            logged.raw.len() <= server::services::hl7::UNKNOWN_SENDER_PREFIX,
            "{backend}"
        );
    }
}

/// The ACK the HL7 intake answers to `message` from `peer` (one is expected).
async fn ack_from_peer(app: &TestApp, message: &str, peer: &server::services::hl7::Peer) -> String {
    match server::services::hl7::ingest(app.state.ctx(), message.as_bytes(), None, peer).await {
        server::services::hl7::Outcome::Ack(a) => a,
        server::services::hl7::Outcome::NoAck => panic!("no ACK"),
    }
}

/// A plain MLLP peer at `ip`.
fn tcp(ip: &str) -> server::services::hl7::Peer {
    server::services::hl7::Peer::Tcp(ip.parse().unwrap())
}

/// The clinic's DPI, declared as a sender from 192.0.2.0/24 with its own IPP
/// authority.
async fn declare_clinic_dpi(app: &TestApp) {
    app.declare_sender(
        ("DPI", "CLIN"),
        server::demo::CLINIC_FINESS,
        Some("CLIN"),
        &["192.0.2.0/24"],
        None,
    )
    .await;
}

/// An A28 from the clinic's DPI.
fn dpi_a28(control: &str) -> String {
    adt_from(
        ("DPI", "CLIN"),
        "A28",
        control,
        &format!("D{control}"),
        "CLIN",
        "",
    )
}

#[tokio::test]
async fn mllp_over_tls_binds_the_certificate_to_the_sender_both_ways() {
    let pki = Pki::new();
    let app = spawn_app_with("sqlite", |c| {
        c.mllp_tls_listen = Some("127.0.0.1:0".into());
        c.mllp_tls_cert = Some(pki.path("server.pem"));
        c.mllp_tls_key = Some(pki.path("server.key"));
        c.mllp_tls_client_ca = Some(pki.path("ca.pem"));
    })
    .await;
    let addr = app.mllp_tls.expect("the TLS listener");
    app.declare_sender(
        ("DPI", "CLIN"),
        server::demo::CLINIC_FINESS,
        Some("CLIN"),
        &[],
        Some("Clinique du Val 450000013"),
    )
    .await;
    let client = |cert: Option<&str>| {
        let mut c = server::Config {
            mllp_out_ca: Some(pki.path("ca.pem")),
            ..server::Config::default()
        };
        if let Some(name) = cert {
            c.mllp_out_cert = Some(pki.path(&format!("{name}.pem")));
            c.mllp_out_key = Some(pki.path(&format!("{name}.key")));
        }
        server::tls::client_config(&c).unwrap()
    };
    let dest = format!("mllps://127.0.0.1:{}", addr.port());
    let dpi = |control: &str| {
        adt_from(
            ("DPI", "CLIN"),
            "A28",
            control,
            &format!("T{control}"),
            "CLIN",
            "",
        )
    };
    // Our outbound client with the clinic's certificate: accepted (AA).
    let ours = client(Some("client"));
    server::delivery::send_mllp(&dest, dpi("tls-1").as_bytes(), Some(&ours))
        .await
        .expect("AA over TLS");
    assert!(
        app.store
            .hl7_message_for("DPI|CLIN", "tls-1")
            .await
            .unwrap()
            .is_some()
    );
    // The demo GAM's messages with the clinic's certificate: not its subject (AR).
    let r = server::delivery::send_mllp(&dest, a28("tls-2").as_bytes(), Some(&ours)).await;
    assert!(
        matches!(r, Err(server::delivery::DeliveryError::Refused(ref m)) if m.starts_with("AR")),
        "{r:?}"
    );
    // No client certificate, or one from another CA: the handshake fails.
    for who in [None, Some("intruder")] {
        let r =
            server::delivery::send_mllp(&dest, dpi("tls-3").as_bytes(), Some(&client(who))).await;
        assert!(
            matches!(r, Err(server::delivery::DeliveryError::Transient(_))),
            "{who:?}: {r:?}"
        );
    }
    // A server whose certificate does not chain to the CA we trust: refused.
    let foreign = server::tls::client_config(&server::Config {
        mllp_out_ca: Some(pki.path("rogue.pem")),
        mllp_out_cert: Some(pki.path("client.pem")),
        mllp_out_key: Some(pki.path("client.key")),
        ..server::Config::default()
    })
    .unwrap();
    let r = server::delivery::send_mllp(&dest, dpi("tls-4").as_bytes(), Some(&foreign)).await;
    assert!(
        matches!(r, Err(server::delivery::DeliveryError::Transient(_))),
        "{r:?}"
    );
    // Plain MLLP is unaffected on its own port.
    let mut c = Mllp::connect(&app).await;
    assert_eq!(ack_code(&c.send(a28("plain").as_bytes()).await).0, "AA");
}

#[test]
fn the_common_name_is_read_from_real_certificates() {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pki = Pki::new();
    let cn = |f: &str| {
        let der = CertificateDer::from_pem_file(pki.path(f)).unwrap();
        server::tls::common_name(&der)
    };
    assert_eq!(
        cn("client.pem").as_deref(),
        Some("Clinique du Val 450000013")
    );
    assert_eq!(cn("intruder.pem").as_deref(), Some("Intrus"));
    assert_eq!(cn("ca.pem").as_deref(), Some("IGC-Sante TEST"));
}

// ------------------------------------------------------------- 4. login limits

#[tokio::test]
async fn one_client_cannot_lock_everybody_out_of_login() {
    let app = spawn_app_with("sqlite", |c| {
        c.login_attempts_per_minute = 5;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let token_from = async |xff: &str, client: &str| {
        read(
            app.http
                .post(app.url("/oauth/token"))
                .header("x-forwarded-for", xff)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client),
                    ("client_secret", "faux"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await
        .status
    };
    // One address behind the proxy floods the token endpoint…
    for i in 0..5 {
        assert_eq!(token_from("203.0.113.7", &format!("c{i}")).await, 401);
    }
    assert_eq!(token_from("203.0.113.7", "c9").await, 429);
    // …others behind the same proxy are not held back, nor is the login page.
    assert_eq!(token_from("198.51.100.2", "c10").await, 401);
    let page = read(
        app.http
            .get(app.url("/login"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cookie = page.set_cookie("parcours_login_csrf").unwrap();
    let csrf = csrf_field(&page.text);
    let login = async |xff: &str, user: &str| {
        read(
            app.http
                .post(app.url("/login"))
                .header("x-forwarded-for", xff)
                .header("cookie", format!("parcours_login_csrf={cookie}"))
                .form(&[
                    ("username", user),
                    ("password", "mauvais"),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await
        .status
    };
    assert_eq!(
        login("203.0.113.7", "inconnu").await,
        401,
        "another endpoint's bucket"
    );
    // One account aimed at from many addresses is limited too.
    for i in 0..5 {
        assert_ne!(
            login(&format!("192.0.2.{i}"), "sec.durand").await,
            429,
            "attempt {i}"
        );
    }
    assert_eq!(login("192.0.2.50", "sec.durand").await, 429);
    assert_eq!(
        login("192.0.2.51", "ide.petit").await,
        401,
        "other accounts are not"
    );
    // Without a trusted proxy, the header is the client's own word: ignored.
    let plain = spawn_app_with("sqlite", |c| c.login_attempts_per_minute = 2).await;
    for (i, want) in [(1, 401), (2, 401), (3, 429)] {
        let s = read(
            plain
                .http
                .post(plain.url("/oauth/token"))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &format!("x{i}")),
                    ("client_secret", "y"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await
        .status;
        assert_eq!(s, want, "attempt {i}");
    }
}

// ------------------------------------------------------------- 5, 6. the room

async fn video_appointments(app: &TestApp, n: usize) -> Vec<String> {
    let lambert = app.demo_patient("Lambert").await;
    let mut ids: Vec<String> = app
        .store
        .appointments_of_patient(lambert.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.mode == domain::schedule::Mode::Tele && a.status == "booked")
        .map(|a| a.id.to_string())
        .collect();
    let a = app
        .store
        .appointment(ids[0].parse::<domain::AppointmentId>().unwrap())
        .await
        .unwrap();
    while ids.len() < n {
        // Another booked video slot with the same doctor, a day later each.
        let shift = 86_400_000 * i64::try_from(ids.len()).unwrap();
        let who = domain::audit::AuditActor {
            kind: "system",
            id: "test".into(),
            role: None,
            establishment: None,
        };
        let id = app
            .store
            .book(
                &store::schedule::NewAppointment {
                    practitioner: a.practitioner,
                    establishment: a.establishment,
                    patient: a.patient,
                    start_ms: a.start_ms + shift,
                    end_ms: a.end_ms + shift,
                    mode: domain::schedule::Mode::Tele,
                    booked_by: "test".into(),
                },
                &[],
                &who,
                app.clock.now_ms(),
            )
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    ids
}

async fn next_text(s: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(3), s.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("nothing within 3 s"),
        }
    }
}

#[tokio::test]
async fn the_room_stays_locked_until_the_doctor_lets_the_patient_in() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let id = video_appointments(&app, 1).await.remove(0);
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        let doctor = app.login("dr.martin").await;
        let page = app.get_page(&format!("/consultation/{id}"), &patient).await;
        assert_eq!(page.status, 403, "{backend}: {}", page.text);
        assert!(page.page().contains("pas encore fait entrer"));
        assert!(
            app.ws(&format!("/consultation/{id}/ws"), &patient)
                .await
                .is_err(),
            "{backend}"
        );
        // The doctor may open it before.
        assert_eq!(
            app.get_page(&format!("/consultation/{id}"), &doctor)
                .await
                .status,
            200
        );
        app.let_in(&doctor, &id).await;
        assert_eq!(
            app.get_page(&format!("/consultation/{id}"), &patient)
                .await
                .status,
            200
        );
        assert!(
            app.ws(&format!("/consultation/{id}/ws"), &patient)
                .await
                .is_ok(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn one_rooms_flood_does_not_reach_another_and_sockets_close_with_their_session() {
    let app = spawn_app("sqlite").await;
    let ids = video_appointments(&app, 2).await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let doctor = app.login("dr.martin").await;
    for id in &ids {
        app.let_in(&doctor, id).await;
    }
    let (a, b) = (&ids[0], &ids[1]);
    let mut doc_b = app
        .ws(&format!("/consultation/{b}/ws"), &doctor)
        .await
        .unwrap();
    let mut pat_b = app
        .ws(&format!("/consultation/{b}/ws"), &patient)
        .await
        .unwrap();
    // The room now names who joined (a mesh of up to four needs it).
    assert_eq!(
        next_text(&mut doc_b).await.unwrap(),
        r#"{"event":"joined","from":"patient","type":"peer"}"#
    );
    let mut pat_a = app
        .ws(&format!("/consultation/{a}/ws"), &patient)
        .await
        .unwrap();
    // Room A's patient floods 64 KiB messages: its socket is closed.
    let blob = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(60 * 1024));
    let mut sent = 0;
    for _ in 0..200 {
        if pat_a
            .send(Message::Text(blob.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let closed = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(3), pat_a.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(None) | Ok(Some(Err(_))) => break None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the flooding socket stays open after {sent} messages"),
        }
    };
    if let Some(code) = closed {
        assert_eq!(code, 1008);
    }
    // Room B goes on: its offer and ICE candidates all arrive.
    for i in 0..30 {
        pat_b
            .send(Message::Text(format!(r#"{{"type":"ice","n":{i}}}"#).into()))
            .await
            .unwrap();
    }
    for i in 0..30 {
        assert_eq!(
            next_text(&mut doc_b).await.unwrap(),
            format!(r#"{{"type":"ice","n":{i}}}"#)
        );
    }
    // A page of another site cannot open the socket with the user's cookie.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = app
        .url(&format!("/consultation/{b}/ws"))
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "cookie",
        format!("parcours_session={doctor}").parse().unwrap(),
    );
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_err(),
        "foreign Origin refused"
    );
    // The doctor logs out: the open socket closes at once.
    let home = app.get_page("/", &doctor).await;
    let r = app
        .post_form(
            "/logout",
            &format!("parcours_session={doctor}"),
            &[("csrf", &csrf_field(&home.text))],
        )
        .await;
    assert_eq!(r.status, 303);
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(3), doc_b.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the logged-out socket stays open"),
        }
    }
}

#[tokio::test]
async fn a_socket_closes_when_its_session_expires_or_its_account_is_disabled() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |c| c.session_check_seconds = 1).await;
        let closes = async |ws: &mut Ws| {
            tokio::time::timeout(std::time::Duration::from_secs(8), async {
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => {}
                    }
                }
            })
            .await
            .is_ok()
        };
        // The account is disabled: its open socket closes at the next check.
        let doctor = app.login("dr.martin").await;
        let mut list = app.ws("/salle-attente/ws", &doctor).await.unwrap();
        let id = app.user_id("dr.martin").await;
        app.store.set_user_active(id, false).await.unwrap();
        assert!(
            closes(&mut list).await,
            "{backend}: disabled account's socket closed"
        );
        // The session expires (by the application's clock).
        let nurse = app.login("ide.petit").await;
        let mut ws = app.ws("/alertes/ws", &nurse).await.unwrap();
        app.clock.advance_secs(9 * 3600);
        assert!(
            closes(&mut ws).await,
            "{backend}: expired session's socket closed"
        );
    }
}

// ------------------------------------------------------------- 7. identity look-ups

#[tokio::test]
async fn identity_lookups_go_through_the_policy_and_the_audit() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app
            .client_token("clinic-feed", server::demo::CLINIC_FINESS)
            .await;
        let lambert = app.demo_patient("Lambert").await;
        let her_ins = lambert.ins.as_ref().unwrap().value();
        let hospital = app
            .client_token("hospital-feed", server::demo::HOSPITAL_FINESS)
            .await;
        let ask = async |token: &str, ins: &str| {
            app.get(
                &format!(
                    "/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8%7C{ins}"
                ),
                Some(token),
            )
            .await
        };
        // An INS nobody carries and one carried by a patient the client has
        // nothing of: the same empty Bundle (existence is not told).
        let none = ask(&hospital, &valid_ins(999)).await;
        let hers = ask(&hospital, &her_ins).await;
        assert_eq!(
            (none.status, hers.status),
            (200, 200),
            "{backend}: {} {}",
            none.text,
            hers.text
        );
        let entries = |r: &Resp| r.json()["entry"].as_array().map_or(0, Vec::len);
        assert_eq!((entries(&none), entries(&hers)), (0, 0), "{backend}");
        assert_eq!(none.json()["type"], hers.json()["type"]);
        // The clinic finds her documents; every look-up is in the audit trail.
        let found = ask(&clinic, &her_ins).await;
        assert!(entries(&found) >= 1, "{}", found.text);
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(lambert.id.to_string()),
                limit: 200,
                ..Default::default()
            })
            .await
            .unwrap();
        let searches = trail.iter().filter(|e| e.action == "search").count();
        assert!(
            searches >= 2,
            "{backend}: hospital and clinic look-ups audited ({searches})"
        );

        // The queue of received documents: the candidates it lists are audited.
        let secretary = app.login("sec.durand").await;
        let queued = app
            .store
            .incoming_documents(app.establishment_id(server::demo::CLINIC_FINESS).await, 20)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.state == store::incoming::IncomingState::Queued)
            .expect("the demo's unmatched report");
        let recent = async || {
            app.store
                .list_audit(&store::audit::AuditFilter {
                    limit: 500,
                    ..Default::default()
                })
                .await
                .unwrap()
        };
        let before = recent().await.first().map(|e| e.seq).unwrap_or(0);
        let page = app
            .get_page(&format!("/documents/recus/{}", queued.id), &secretary)
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let listed = recent()
            .await
            .into_iter()
            .filter(|e| e.seq > before && e.action == "search" && e.actor_kind == "user")
            .count();
        assert!(listed >= 1, "{backend}: the listing is audited");
    }
}

// ------------------------------------------------------------- 8. secrets

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_never_in_debug() {
    for backend in BACKENDS {
        let dir = std::env::temp_dir().join(format!("parcours-keys-{}", uuid::Uuid::new_v4()));
        let key = dir.join("secret.key");
        let app = spawn_app_with(backend, |c| c.secret_key_file = Some(key.clone())).await;
        // The demo seed ran after the start: everything it wrote is sealed.
        let stored = app.store.stored_totp_secrets().await.unwrap();
        assert!(!stored.is_empty());
        assert!(
            stored
                .iter()
                .all(|s| s.starts_with("enc1:") && !s.contains(server::demo::DEMO_TOTP_SECRET)),
            "{backend}: {stored:?}"
        );
        // A seed written in clear before encryption existed is sealed at the next start.
        let u = app
            .store
            .user_by_username("dr.martin")
            .await
            .unwrap()
            .unwrap();
        let text = format!("{u:?} {:?}", app.store.session("x", 0).await.unwrap());
        assert!(
            !text.contains(&u.password_hash) && !text.contains(server::demo::DEMO_TOTP_SECRET),
            "{text}"
        );
        // Login with the second factor still works; then the key is rotated.
        let s = app.login("dr.martin").await;
        assert_eq!(app.get_page("/", &s).await.status, 200);
        let new_id = server::secrets::rotate(&app.store, &key).await.unwrap();
        let stored = app.store.stored_totp_secrets().await.unwrap();
        assert!(
            stored
                .iter()
                .all(|s| s.starts_with(&format!("enc1:{new_id}:"))),
            "{backend}"
        );
        assert!(dir.join("secret.key.previous").exists());
        let s = app.login("ide.petit").await;
        assert_eq!(
            app.get_page("/", &s).await.status,
            200,
            "{backend}: login after rotation"
        );
        // Another key opens nothing: the wrong file is said, not a wrong code.
        let other =
            std::env::temp_dir().join(format!("parcours-other-{}.key", uuid::Uuid::new_v4()));
        app.store
            .set_key_ring(server::secrets::load_or_create(&other).unwrap());
        assert!(
            app.store.user_by_username("dr.martin").await.is_err(),
            "{backend}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&other);
    }
}

// ------------------------------------------------------------- 9. IPP authority

#[tokio::test]
async fn an_ipp_of_another_assigning_authority_is_refused() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let mut c = Mllp::connect(&app).await;
        for (n, authority) in [
            (1, "AUTRE&1.2.250.1.999.1&ISO"),
            (2, ""),
            (3, "CHVL&450000099&M"),
        ] {
            let ipp = format!("FOREIGN{n}");
            let ack = c
                .send(
                    adt_from(
                        ("GAM", "CHVL"),
                        "A28",
                        &format!("auth-{n}"),
                        &ipp,
                        authority,
                        "",
                    )
                    .as_bytes(),
                )
                .await;
            let (code, err, location) = ack_code(&ack);
            assert_eq!(code, "AE", "{backend} {authority:?}: {ack}");
            assert_eq!(err.as_deref(), Some("102"), "{ack}");
            assert!(location.unwrap_or_default().starts_with("PID^1^3"), "{ack}");
            let t = app
                .store
                .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
                .await
                .unwrap()
                .unwrap();
            let q = store::patients::PatientQuery {
                ipp: Some(ipp),
                limit: 2,
                ..Default::default()
            };
            assert!(
                app.store
                    .search_patients(t.id, &q)
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend}: nothing written"
            );
        }
        // The territory's own OID, and the authority declared for the sender, are accepted.
        for (n, authority) in [
            (4, format!("GHT&{}&ISO", server::demo::DEMO_DOMAIN_OID)),
            (5, CHVL.to_owned()),
            (6, server::demo::DEMO_DOMAIN_OID.to_owned()),
        ] {
            let ack = c
                .send(
                    adt_from(
                        ("GAM", "CHVL"),
                        "A28",
                        &format!("auth-{n}"),
                        &format!("OWN{n}"),
                        &authority,
                        "",
                    )
                    .as_bytes(),
                )
                .await;
            assert_eq!(ack_code(&ack).0, "AA", "{backend} {authority}: {ack}");
        }
        // An agenda's SIU naming an IPP of another domain books nobody.
        let muller = app.demo_patient("Muller").await;
        let rpps = app
            .store
            .user_by_username("dr.bernard")
            .await
            .unwrap()
            .unwrap()
            .rpps
            .unwrap();
        let before = app
            .store
            .appointments_of_patient(muller.id)
            .await
            .unwrap()
            .len();
        let foreign = crate::schedule::siu(
            "S12",
            "siu-auth",
            "EXT-A",
            &muller.ipp,
            &rpps,
            "20261201143000",
        )
        .replace("CHVL&450000021&M", "AUTRE&1.2.250.1.999.1&ISO");
        let ack = c.send(foreign.as_bytes()).await;
        let (code, err, location) = ack_code(&ack);
        assert_eq!(
            (code.as_str(), err.as_deref()),
            ("AE", Some("102")),
            "{backend}: {ack}"
        );
        assert!(location.unwrap_or_default().starts_with("PID^1^3"), "{ack}");
        assert_eq!(
            app.store
                .appointments_of_patient(muller.id)
                .await
                .unwrap()
                .len(),
            before
        );
    }
}

#[tokio::test]
async fn a_sender_rebound_by_another_process_is_bound_within_a_minute() {
    use server::services::hl7::senders::SENDER_CACHE_MS;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        declare_clinic_dpi(&app).await;
        let send = async |control: &str, ip: &str| {
            ack_code(&ack_from_peer(&app, &dpi_a28(control), &tcp(ip)).await).0
        };
        assert_eq!(send("r1", "192.0.2.77").await, "AA", "{backend}");
        // `parcours org apply`, run elsewhere, moves the sender to another network:
        // no live event reaches this node.
        store::testing::raw_sql(
            &app.store,
            "UPDATE hl7_senders SET allowed_addresses = '203.0.113.0/24' \
             WHERE sending_application = 'DPI'",
        )
        .await
        .unwrap();
        // Its copy is trusted a minute at most: then the old network is refused
        // and the new one accepted.
        app.clock.advance_secs(SENDER_CACHE_MS / 1000 + 1);
        assert_eq!(send("r2", "192.0.2.77").await, "AR", "{backend}");
        assert_eq!(send("r3", "203.0.113.5").await, "AA", "{backend}");
    }
}
