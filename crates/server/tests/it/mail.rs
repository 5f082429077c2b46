//! Notices by e-mail: with an SMTP relay configured and an address given on the
//! portal, a booking's confirmation reaches the patient's mailbox with its
//! iCalendar event attached. The relay is aiosmtpd (aio-libs), writing a Maildir.

use crate::helpers::*;

/// aiosmtpd on a free port writing to a Maildir; stopped on drop.
pub(crate) struct Relay {
    _server: Service,
    pub(crate) port: u16,
    pub(crate) dir: std::path::PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn relay() -> Relay {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("parcours-mail-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Service::start(
        "the SMTP relay (python3 with aiosmtpd)",
        std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(dir.join("Maildir")),
        port,
    )
    .await;
    Relay {
        _server: server,
        port,
        dir,
    }
}

pub(crate) fn mails(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("Maildir").join("new"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_confirmation_reaches_the_patients_mailbox_with_its_calendar_event() {
    let r = relay().await;
    let port = r.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let pcookie = format!("parcours_session={patient}");
    // A bad address is said; a good one is kept once she follows the link
    // mailed to it.
    let page = app.get_page("/mon-compte", &patient).await;
    assert_eq!(page.status, 200);
    let csrf = csrf_field(&page.text);
    let r1 = app
        .post_form(
            "/mon-compte",
            &pcookie,
            &[("csrf", &csrf), ("email", "monique@")],
        )
        .await;
    assert_eq!(r1.status, 422);
    assert!(r1.page().contains("pas valide"));
    let r1 = app
        .post_form(
            "/mon-compte",
            &pcookie,
            &[("csrf", &csrf), ("email", "monique.lambert@exemple.fr")],
        )
        .await;
    assert_eq!(r1.status, 200);
    let lambert = app.demo_patient("Lambert").await.id;
    assert_eq!(app.store.patient_email(lambert).await.unwrap(), None);
    let flat = |m: &String| m.replace("=\r\n", "").replace("=\n", "");
    let dir = r.dir.clone();
    let confirmation_link = || {
        mails(&dir).iter().map(flat).find_map(|m| {
            let i = m.find("/lien/")?;
            Some(m[i..].chars().take(6 + 64).collect::<String>())
        })
    };
    eventually("the address confirmation", async || {
        confirmation_link().is_some()
    })
    .await;
    let link = confirmation_link().unwrap();
    let r1 = read(
        app.http
            .post(app.url(&link))
            .form::<[(&str, &str)]>(&[])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    assert_eq!(
        app.store.patient_email(lambert).await.unwrap().as_deref(),
        Some("monique.lambert@exemple.fr")
    );
    // Staff have no such page.
    let doctor = app.login("dr.martin").await;
    assert_eq!(app.get_page("/mon-compte", &doctor).await.status, 404);

    // She books: the confirmation is mailed with the event.
    let martin = app.user_id("dr.martin").await;
    let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
    let page = app
        .get_page(
            &format!("/rdv/prendre?praticien={martin}&etablissement={clinic}"),
            &patient,
        )
        .await;
    let start = page
        .text
        .split("name=\"debut\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r2 = app
        .post_form(
            "/rdv/prendre",
            &pcookie,
            &[
                ("csrf", &csrf_field(&page.text)),
                ("praticien", &martin.to_string()),
                ("etablissement", &clinic.to_string()),
                ("debut", &start),
            ],
        )
        .await;
    assert_eq!(r2.status, 303, "{}", r2.text);
    let dir = r.dir.clone();
    // Reminders of her demo appointments may reach the box too: the confirmation is the one.
    let confirmation = || {
        mails(&dir)
            .into_iter()
            .find(|m| m.contains("Rendez-vous confirm=C3=A9 le"))
    };
    eventually("the confirmation arrives", async || {
        confirmation().is_some()
    })
    .await;
    let mail = confirmation().unwrap();
    for expected in [
        "To: monique.lambert@exemple.fr",
        "From: Parcours <ne-pas-repondre@parcours.invalid>",
        "Subject: Parcours : un message de votre",
        "Content-Disposition: attachment; filename=\"rendez-vous.ics\"",
        "Content-Type: text/calendar; method=PUBLISH; charset=utf-8",
        "BEGIN:VCALENDAR",
        "METHOD:PUBLISH",
    ] {
        assert!(mail.contains(expected), "{expected:?} in {mail}");
    }
    let id = r2
        .header("location")
        .unwrap()
        .trim_start_matches("/rdv/")
        .to_owned();
    // The relay has the mail before the worker records the delivery: wait
    // for the record (the same fact, checked once it can be true).
    let key = format!("rdv:{id}:confirmation");
    eventually("the confirmation is recorded as delivered", async || {
        let m = app.store.outbox_message(&key).await.unwrap().unwrap();
        m.delivered_at_ms.is_some()
    })
    .await;

    // The relay gone: the next notice waits and retries, nothing lost.
    drop(r);
    let r3 = app
        .post_form(
            &format!("/rdv/{id}/annuler"),
            &pcookie,
            &[("csrf", &csrf), ("motif", "empêchement")],
        )
        .await;
    assert_eq!(r3.status, 303, "{}", r3.text);
    eventually("the failure is recorded", async || {
        let m = app
            .store
            .outbox_message(&format!("rdv:{id}:annulation"))
            .await
            .unwrap()
            .unwrap();
        m.attempts >= 1 && m.delivered_at_ms.is_none() && m.dead_at_ms.is_none()
    })
    .await;
    let m = app
        .store
        .outbox_message(&format!("rdv:{id}:annulation"))
        .await
        .unwrap()
        .unwrap();
    assert!(m.last_error.unwrap().starts_with("SMTP"), "retried later");
}

#[tokio::test]
async fn without_an_address_the_notice_stays_on_the_portal() {
    let r = relay().await;
    let port = r.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await.id;
    app.store
        .enqueue(
            &store::outbox::NewMessage {
                idempotency_key: "test:notice".into(),
                topic: server::delivery::NOTIFY_TOPIC.into(),
                destination: format!("portail:{lambert}"),
                payload: "Un message".into(),
                establishment: None,
            },
            app.clock.now_ms(),
        )
        .await
        .unwrap();
    eventually("delivered to the portal", async || {
        app.store
            .outbox_message("test:notice")
            .await
            .unwrap()
            .unwrap()
            .delivered_at_ms
            .is_some()
    })
    .await;
    assert!(mails(&r.dir).is_empty(), "no mail without an address");
}

#[test]
fn a_bad_smtp_configuration_stops_the_start_with_the_reason() {
    let mut c = server::config::Config::default();
    assert!(server::mail::Mailer::from_config(&c).unwrap().is_none());
    c.smtp_url = Some("mail.example.fr:25".into());
    assert!(
        server::mail::Mailer::from_config(&c)
            .unwrap_err()
            .contains("smtp://")
    );
    c.smtp_url = Some("smtp://relay:port".into());
    assert!(
        server::mail::Mailer::from_config(&c)
            .unwrap_err()
            .contains("port")
    );
    c.smtp_url = Some("smtp://relay.example.fr".into());
    c.smtp_from = "pas une adresse".into();
    assert!(
        server::mail::Mailer::from_config(&c)
            .unwrap_err()
            .contains("PARCOURS_SMTP_FROM")
    );
}

#[tokio::test]
async fn a_validated_letter_reaches_the_gp_as_an_xdm_mail() {
    let r = relay().await;
    let port = r.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await.id;
    let doctor = app.login("dr.martin").await;
    let dcookie = format!("parcours_session={doctor}");
    let page = app
        .get_page(&format!("/patients/{lambert}/documents"), &doctor)
        .await;
    let created = app
        .post_form(
            &format!("/patients/{lambert}/documents"),
            &dcookie,
            &[
                ("csrf", &csrf_field(&page.text)),
                ("type", "lettre-liaison"),
            ],
        )
        .await;
    let id = created
        .header("location")
        .unwrap()
        .trim_start_matches("/documents/")
        .to_owned();
    let r2 = app
        .post_form(
            &format!("/documents/{id}/valider"),
            &dcookie,
            &[
                ("csrf", &csrf_field(&page.text)),
                ("titre", "Lettre de liaison à la sortie"),
                ("texte", "Sortie ce jour. Revoir dans un mois."),
                ("dest_gp", "1"),
                ("adresse_gp", "dr.generaliste@medecin.mssante.fr"),
            ],
        )
        .await;
    assert_eq!(r2.status, 303, "{}", r2.text);
    let dir = r.dir.clone();
    eventually("the XDM mail arrives", async || !mails(&dir).is_empty()).await;
    let file = std::fs::read_dir(dir.join("Maildir").join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // An independent reader: Python's email and zipfile modules.
    let out_dir = dir.join("xdm");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, email, zipfile, io, os\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
             print(m['To']); print(m['Subject'])\n\
             parts = {p.get_filename(): p.get_payload(decode=True) for p in m.walk() if p.get_filename()}\n\
             z = zipfile.ZipFile(io.BytesIO(parts['IHE_XDM.zip'])); assert z.testzip() is None\n\
             print(','.join(z.namelist())); print(parts['document.pdf'][:5].decode())\n\
             os.makedirs(sys.argv[2], exist_ok=True)\n\
             open(os.path.join(sys.argv[2], 'cda.xml'), 'wb').write(z.read('IHE_XDM/SUBSET01/DOCUMENT_01.XML'))\n",
        )
        .arg(&file)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "dr.generaliste@medecin.mssante.fr",
            "XDM/1.0/DDM",
            "README.TXT,INDEX.HTM,IHE_XDM/SUBSET01/METADATA.XML,IHE_XDM/SUBSET01/DOCUMENT_01.XML",
            "%PDF-",
        ]
    );
    validate_cda(&std::fs::read(out_dir.join("cda.xml")).unwrap());
    // The relay accepted it: recorded delivered just after.
    eventually("the GP's copy delivered", async || {
        app.store
            .recipients_of(id.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap()
            .iter()
            .any(|x| x.recipient == domain::documents::Recipient::Gp && x.state == "delivered")
    })
    .await;
}

/// An operator's SMTP server (scripts/smtpd-tls: STARTTLS and a client
/// certificate from the CA required); stopped on drop.
struct Operator {
    _server: Service,
    port: u16,
    maildir: std::path::PathBuf,
}

async fn operator(pki: &Pki) -> Operator {
    let port = free_port();
    let maildir = pki.path("Maildir");
    let server = Service::start(
        "the operator's SMTP server (scripts/smtpd-tls, aiosmtpd)",
        std::process::Command::new(format!(
            "{}/../../scripts/smtpd-tls",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(port.to_string())
        .arg(&maildir)
        .arg(pki.path("server.pem"))
        .arg(pki.path("server.key"))
        .arg(pki.path("ca.pem"))
        .stderr(std::process::Stdio::null()),
        port,
    )
    .await;
    Operator {
        _server: server,
        port,
        maildir,
    }
}

fn mailer(
    url: String,
    ca: Option<std::path::PathBuf>,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<Option<server::mail::Mailer>, String> {
    let mut c = server::Config {
        smtp_url: Some(url),
        smtp_ca: ca,
        ..Default::default()
    };
    if let Some((cert, key)) = identity {
        c.smtp_cert = Some(cert);
        c.smtp_key = Some(key);
    }
    server::mail::Mailer::from_config(&c)
}

#[tokio::test]
async fn documents_go_to_an_mssante_operator_over_starttls_with_the_establishments_certificate() {
    let pki = Pki::new();
    let op = operator(&pki).await;
    let url = format!("smtp://127.0.0.1:{}?tls=required", op.port);
    let ours = Some((pki.path("client.pem"), pki.path("client.key")));
    let send = async |m: &server::mail::Mailer| {
        m.send_document(
            None,
            "dr.generaliste@medecin.mssante.fr",
            "Lettre de liaison",
            b"PK\x05\x06".to_vec(),
            b"%PDF-1.4".to_vec(),
        )
        .await
    };
    let m = mailer(url.clone(), Some(pki.path("ca.pem")), ours.clone())
        .unwrap()
        .unwrap();
    send(&m).await.unwrap();
    let got = std::fs::read_dir(op.maildir.join("new"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("X-Peer-Certificate: Clinique du Val 450000013")
            && got[0].contains("Subject: XDM/1.0/DDM"),
        "{}",
        &got[0][..300.min(got[0].len())]
    );

    // No certificate, or one from a CA the operator does not trust: no mail.
    let bare = mailer(url.clone(), Some(pki.path("ca.pem")), None)
        .unwrap()
        .unwrap();
    assert!(send(&bare).await.is_err());
    let intruder = mailer(
        url.clone(),
        Some(pki.path("ca.pem")),
        Some((pki.path("intruder.pem"), pki.path("intruder.key"))),
    )
    .unwrap()
    .unwrap();
    assert!(send(&intruder).await.is_err());
    // The server's certificate is checked too: a CA that did not sign it fails.
    let wrong_ca = mailer(url.clone(), Some(pki.path("rogue.pem")), ours.clone())
        .unwrap()
        .unwrap();
    let e = send(&wrong_ca).await.unwrap_err();
    assert!(
        format!("{e:?}").contains("certificate") || format!("{e:?}").contains("Certificate"),
        "{e:?}"
    );
    // Without STARTTLS the operator refuses (530), for good.
    let plain = mailer(format!("smtp://127.0.0.1:{}", op.port), None, None)
        .unwrap()
        .unwrap();
    assert!(
        matches!(send(&plain).await, Err(server::delivery::DeliveryError::Refused(ref e)) if e.contains("530")),
    );
    assert_eq!(
        std::fs::read_dir(op.maildir.join("new")).unwrap().count(),
        1,
        "only the good one"
    );
}

#[test]
fn smtp_settings_that_cannot_work_stop_the_start_with_why() {
    let pki_less = std::path::PathBuf::from("/nonexistent/ca.pem");
    let err = |url: &str,
               ca: Option<std::path::PathBuf>,
               id: Option<(std::path::PathBuf, std::path::PathBuf)>| {
        mailer(url.to_owned(), ca, id).err().unwrap()
    };
    assert!(err("http://x", None, None).contains("smtp:// ou smtps://"));
    assert!(err("smtp://x:25?tls=maybe", None, None).contains("option inconnue"));
    assert!(err("smtp://x:abc", None, None).contains("port illisible"));
    assert!(
        err("smtp://x:587?tls=required", Some(pki_less.clone()), None)
            .contains("PARCOURS_SMTP_CA (/nonexistent/ca.pem) illisible")
    );
    assert!(err("smtp://x:25", Some(pki_less), None).contains("sans TLS"));
    let mut c = server::Config {
        smtp_url: Some("smtp://x:587?tls=required".into()),
        smtp_cert: Some("/tmp/c.pem".into()),
        ..Default::default()
    };
    assert!(
        server::mail::Mailer::from_config(&c)
            .err()
            .unwrap()
            .contains("vont ensemble")
    );
    c.smtp_url = None;
    assert!(server::mail::Mailer::from_config(&c).unwrap().is_none());
    assert!(
        mailer("smtps://x".into(), None, None).unwrap().is_some(),
        "implicit TLS, system roots"
    );
}

#[tokio::test]
async fn an_establishments_mail_leaves_from_its_own_address() {
    let r = relay().await;
    let port = r.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await.id;
    app.store
        .set_patient_email(lambert, Some("monique@exemple.fr"), app.clock.now_ms())
        .await
        .unwrap();
    app.set_setting(
        server::demo::CLINIC_FINESS,
        "smtp_from",
        Some("secretariat@saint-roch.example"),
    )
    .await;
    let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
    let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
    for (key, establishment) in [
        ("test:clinique", Some(clinic)),
        ("test:hopital", Some(hospital)),
        ("test:plateforme", None),
    ] {
        app.store
            .enqueue(
                &store::outbox::NewMessage {
                    idempotency_key: key.into(),
                    topic: server::delivery::NOTIFY_TOPIC.into(),
                    destination: format!("portail:{lambert}"),
                    payload: format!("Message {key}"),
                    establishment,
                },
                app.clock.now_ms(),
            )
            .await
            .unwrap();
    }
    let dir = r.dir.clone();
    let from_of = |key: &str| {
        mails(&dir)
            .into_iter()
            .find(|m| m.contains(&format!("Message {key}")))
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("From: "))
                    .map(str::to_owned)
            })
    };
    eventually("the three mails", async || {
        ["test:clinique", "test:hopital", "test:plateforme"]
            .iter()
            .all(|k| from_of(k).is_some())
    })
    .await;
    assert_eq!(
        from_of("test:clinique").as_deref(),
        Some("From: secretariat@saint-roch.example")
    );
    // The hospital sets none: the instance's sender, as for the platform's own.
    let instance = "From: Parcours <ne-pas-repondre@parcours.invalid>";
    assert_eq!(from_of("test:hopital").as_deref(), Some(instance));
    assert_eq!(from_of("test:plateforme").as_deref(), Some(instance));
}
