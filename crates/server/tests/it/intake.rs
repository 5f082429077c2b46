//! Secure messaging in: a private surgeon's mails reach the clinic's mailbox on
//! a real IMAP server (Debian's Dovecot, started by `scripts/imap-server`);
//! Parcours polls it, files each CDA on the patient its header names (INS, else
//! the traits), pushes it to the DMP (another Parcours as MHD recipient), and
//! queues what it cannot match for a human, who attaches it from the web page.

use crate::helpers::*;

/// Dovecot on a free port serving one Maildir; stopped on drop.
struct Imap {
    server: Service,
    dir: std::path::PathBuf,
}

const USER: &str = "secretariat";
const PASSWORD: &str = "boite-de-test";

impl Drop for Imap {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Imap {
    async fn start() -> Imap {
        Imap::start_with(&[]).await
    }

    /// With `tls` (server certificate, key, client CA): IMAPS, a client
    /// certificate from that CA required.
    async fn start_with(tls: &[std::path::PathBuf]) -> Imap {
        let port = free_port();
        // Short: Dovecot's sockets live under it (108-byte limit).
        let dir = std::path::PathBuf::from(format!(
            "/tmp/pimap-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        let server = Service::start(
            "Dovecot (scripts/imap-server)",
            std::process::Command::new(format!(
                "{}/../../scripts/imap-server",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&dir)
            .arg(port.to_string())
            .args([USER, PASSWORD])
            .args(tls),
            port,
        )
        .await;
        Imap { server, dir }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// Delivers a mail the way an MDA does: a file in the Maildir's `new/`.
    fn deliver(&self, name: &str, raw: &[u8]) {
        let new = self.dir.join("mail").join(USER).join("new");
        let tmp = self.dir.join("mail").join(USER).join("tmp").join(name);
        std::fs::write(&tmp, raw).unwrap();
        std::fs::rename(&tmp, new.join(name)).unwrap();
    }

    /// The mails Dovecot has marked seen (`cur/…:2,S`).
    fn seen(&self) -> usize {
        std::fs::read_dir(self.dir.join("mail").join(USER).join("cur"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(",S"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// A surgeon's CDA about `p` (its header as `p`'s record says, INS when qualified).
pub(crate) fn surgeon_cda(p: &domain::identity::PatientRecord, id: &str) -> String {
    surgeon_cda_replacing(p, id, None)
}

/// The same, correcting the version whose id is `replaces`.
pub(crate) fn surgeon_cda_replacing(
    p: &domain::identity::PatientRecord,
    id: &str,
    replaces: Option<&str>,
) -> String {
    let pdf = interop::pdf::text_document(
        "Compte rendu opératoire",
        &["Cholécystectomie sous cœlioscopie.".to_owned()],
    );
    interop::cda::build(&interop::cda::CdaInput {
        id,
        set_id: id,
        version: 1,
        kind: domain::documents::Kind::CrOperatoire,
        title: "Compte rendu opératoire",
        effective: "20261120143000+0100",
        patient: p,
        ipp_oid: "1.2.250.1.999.77.1",
        author: interop::cda::Professional {
            rpps: Some("10101010101"),
            given: "Paul",
            family: "Bernard",
        },
        establishment: ("450099990", "Cabinet de chirurgie Bernard"),
        encounter: None,
        confidentiality: "N",
        pdf: &pdf,
        replaces: replaces.map(|r| (r, r, 1)),
    })
}

/// The surgeon's mail: subject XDM/1.0/DDM, the XDM archive attached.
pub(crate) fn surgeon_mail(message_id: &str, cda: Option<&str>) -> Vec<u8> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};
    let mut parts =
        MultiPart::mixed().singlepart(SinglePart::plain("Compte rendu ci-joint.".to_owned()));
    if let Some(cda) = cda {
        let zip = interop::xdm::zip(&interop::xdm::XdmDocument {
            unique_id: "x",
            submission_id: "urn:uuid:6b1f2a3c-aaaa-4bbb-8ccc-ddddeeeeffff",
            ins: None,
            type_code: ("34874-8", "CR opératoire"),
            class_code: ("11", "Synthèse"),
            title: "Compte rendu opératoire",
            created: "20261120143000",
            author: "Dr Paul Bernard",
            finess: "450099990",
            recipient: "secretariat@clinique.mssante.fr",
            cda: cda.as_bytes(),
        });
        parts = parts.singlepart(
            Attachment::new("IHE_XDM.zip".into())
                .body(zip, ContentType::parse("application/zip").unwrap()),
        );
    }
    lettre::Message::builder()
        .from(
            "Dr Paul Bernard <p.bernard@chirurgien.mssante.fr>"
                .parse()
                .unwrap(),
        )
        .to("secretariat@clinique.mssante.fr".parse().unwrap())
        .subject("XDM/1.0/DDM")
        .message_id(Some(format!("<{message_id}>")))
        .multipart(parts)
        .unwrap()
        .formatted()
}

#[tokio::test]
async fn surgeons_mails_are_filed_forwarded_queued_or_refused() {
    use domain::documents::Recipient;
    use store::incoming::IncomingState;
    for backend in BACKENDS {
        let imap = Imap::start().await;
        let port = imap.port();
        let (dmp, app) = spawn_with_dmp(backend, move |c| {
            c.imap_url = Some(format!("imap://{USER}@127.0.0.1:{port}/INBOX"));
            c.imap_password = Some(PASSWORD.into());
            c.imap_finess = Some(server::demo::CLINIC_FINESS.into());
            c.imap_poll_seconds = 1;
        })
        .await;
        let est = app.establishment_id(server::demo::CLINIC_FINESS).await;
        // The demo's waiting report is there already (checked before any mail
        // arrives: the mailbox is read every second).
        let demo = app.store.incoming_documents(est, 10).await.unwrap();
        assert_eq!(demo.len(), 1, "{backend}");
        assert_eq!(demo[0].state, IncomingState::Queued);
        let lambert = app.demo_patient("Lambert").await;
        // Mme Lambert's qualified INS: filed by INS, and on to the DMP.
        // The surgeon's mail number `n` about `who`: the document's id.
        let deliver_about = |n: u32, who: &domain::identity::PatientRecord| {
            let oid = format!("1.2.250.1.999.77.{n}.{}", rand());
            imap.deliver(
                &format!("{n}.mail"),
                &surgeon_mail(
                    &format!("m{n}-{oid}@cabinet"),
                    Some(&surgeon_cda(who, &oid)),
                ),
            );
            oid
        };
        let by_ins = deliver_about(1, &lambert);
        // M. Mercier's identity is validated, not qualified: no INS; filed by his traits.
        let mercier = app.demo_patient("Mercier").await;
        let by_traits = deliver_about(2, &mercier);
        // Someone nobody here knows: queued for a human.
        let mut stranger = lambert.clone();
        stranger.traits.birth_name = "INCONNU".into();
        stranger.ins = None;
        stranger.status = domain::identity::IdentityStatus::Provisional;
        let unknown = deliver_about(3, &stranger);
        // Mme Lambert's INS on someone else's name: a human looks.
        let mut wrong = lambert.clone();
        wrong.traits.birth_name = "DUPUIS".into();
        let discordant = deliver_about(5, &wrong);
        // A mail with no document: refused, with why.
        imap.deliver(
            "4.mail",
            &surgeon_mail(&format!("m4-{unknown}@cabinet"), None),
        );

        eventually("the five mails are taken in", async || {
            app.store.incoming_documents(est, 10).await.unwrap().len() == 6
        })
        .await;
        let all = app.store.incoming_documents(est, 10).await.unwrap();
        let of = |uid: &str| {
            let uid = format!("urn:oid:{uid}");
            all.iter()
                .find(|i| i.unique_id.as_deref() == Some(uid.as_str()))
                .unwrap()
                .clone()
        };
        let a = of(&by_ins);
        assert_eq!(
            (a.state, a.patient),
            (IncomingState::Filed, Some(lambert.id)),
            "{backend}: {a:?}"
        );
        assert_eq!(a.detail, "rattaché automatiquement (INS)");
        let b = of(&by_traits);
        assert_eq!(
            (b.state, b.patient),
            (IncomingState::Filed, Some(mercier.id)),
            "{backend}: {b:?}"
        );
        assert_eq!(b.detail, "rattaché automatiquement (traits)");
        let c = of(&unknown);
        assert_eq!(
            (c.state, c.patient),
            (IncomingState::Queued, None),
            "{backend}"
        );
        assert_eq!(c.detail, "aucun patient ne porte ces traits");
        assert!(
            c.traits
                .starts_with("INCONNU Monique, F, né(e) le 12/04/1961"),
            "{}",
            c.traits
        );
        let d = all.iter().find(|i| i.unique_id.is_none()).unwrap();
        assert_eq!(all.iter().filter(|i| i.unique_id.is_none()).count(), 1);
        assert_eq!(d.state, IncomingState::Rejected);
        assert_eq!(
            d.detail,
            "aucun document CDA joint (ni archive IHE_XDM.zip, ni fichier XML)"
        );
        let e = of(&discordant);
        assert_eq!(
            (e.state, e.patient),
            (IncomingState::Queued, None),
            "{backend}"
        );
        assert_eq!(
            e.detail,
            "l'INS du document désigne un patient dont le nom ou la date de naissance diffère"
        );
        eventually("every mail is marked seen", async || imap.seen() == 5).await;

        // Filed as received, the surgeon's CDA unchanged; Mme Lambert's pushed to the DMP.
        let doc = app
            .store
            .document(
                a.document_id
                    .as_deref()
                    .unwrap()
                    .parse::<domain::DocumentId>()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            (doc.source.as_str(), doc.patient, doc.kind),
            ("mail", lambert.id, domain::documents::Kind::CrOperatoire)
        );
        let (_, content) = app.store.document_content(doc.id).await.unwrap().unwrap();
        assert_eq!(content, surgeon_cda(&lambert, &by_ins).into_bytes());
        validate_cda(&content);
        eventually("the DMP has Mme Lambert's document", async || {
            dmp.store
                .document_by_unique_id(&format!("urn:oid:{by_ins}"))
                .await
                .unwrap()
                .is_some()
        })
        .await;
        // The bundle that carried it: valid FHIR (fhir.resources), the surgeon as author.
        let bundle: serde_json::Value = serde_json::from_str(
            &app.store
                .outbox_message(&format!("mail:urn:oid:{by_ins}:dmp"))
                .await
                .unwrap()
                .unwrap()
                .payload,
        )
        .unwrap();
        validate_fhir(&[for_validator(&bundle)]);
        assert!(
            bundle.to_string().contains("Paul Bernard"),
            "the CDA's author"
        );
        let dmp_recipient = app.store.recipients_of(doc.id).await.unwrap();
        assert_eq!(dmp_recipient[0].recipient, Recipient::Dmp);
        // M. Mercier's identity is not qualified: no DMP copy, and why.
        let r = app
            .store
            .recipients_of(
                b.document_id
                    .as_deref()
                    .unwrap()
                    .parse::<domain::DocumentId>()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            (r[0].state.as_str(), r[0].detail.as_deref()),
            (
                "skipped",
                Some("identité non qualifiée : l'INS ne peut pas être transmise")
            ),
            "{backend}"
        );

        // Read again (the mailbox restored, say): nothing more.
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
        // Takes in, as the mailbox would, mail `message_id` carrying `cda`.
        let take = async |est: &store::orgs::Establishment, message_id: String, cda: String| {
            server::services::intake::take_mail(
                app.state.ctx(),
                est,
                &surgeon_mail(&message_id, Some(&cda)),
            )
            .await
            .unwrap()
        };
        let again = take(
            &clinic,
            format!("m1-{by_ins}@cabinet"),
            surgeon_cda(&lambert, &by_ins),
        )
        .await;
        assert_eq!((again.seen, again.filed), (1, 0), "{backend}");
        // The same document in another mail: recorded as a duplicate, not filed twice.
        let dup = take(
            &clinic,
            format!("m5-{by_ins}@cabinet"),
            surgeon_cda(&lambert, &by_ins),
        )
        .await;
        assert_eq!((dup.duplicates, dup.filed), (1, 0), "{backend}");
        let linked = app
            .store
            .incoming_documents(est, 20)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.message_id == format!("m5-{by_ins}@cabinet"))
            .unwrap();
        assert_eq!(
            (linked.state, linked.patient),
            (IncomingState::Duplicate, Some(lambert.id))
        );
        // The surgeon's corrected version: filed, and it replaces the first.
        let v2 = format!("1.2.250.1.999.77.9.{}", rand());
        let corrected = take(
            &clinic,
            format!("m9-{v2}@cabinet"),
            surgeon_cda_replacing(&lambert, &v2, Some(&by_ins)),
        )
        .await;
        assert_eq!(corrected.filed, 1, "{backend}");
        let second = app
            .store
            .document_by_unique_id(&format!("urn:oid:{v2}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            app.store
                .document_by_unique_id(&format!("urn:oid:{by_ins}"))
                .await
                .unwrap()
                .unwrap()
                .superseded_by,
            Some(second.id),
            "{backend}"
        );
        eventually("the DMP replaces the first version too", async || {
            dmp.store
                .document_by_unique_id(&format!("urn:oid:{by_ins}"))
                .await
                .unwrap()
                .is_some_and(|d| d.superseded_by.is_some())
        })
        .await;
        // The same document reaching the hospital's mailbox: a duplicate there
        // too, but the clinic's filing is not shown to the hospital.
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap();
        let there = take(
            &hospital,
            format!("m5-{by_ins}@cabinet"),
            surgeon_cda(&lambert, &by_ins),
        )
        .await;
        assert_eq!(there.duplicates, 1);
        let at_hospital = app.store.incoming_documents(hospital.id, 5).await.unwrap();
        assert_eq!(at_hospital.len(), 1, "{backend}");
        assert_eq!(
            (
                at_hospital[0].patient,
                at_hospital[0].document_id.as_deref()
            ),
            (None, None)
        );
        assert_eq!(
            app.store
                .documents_of_patient(lambert.id)
                .await
                .unwrap()
                .iter()
                .filter(|d| d.unique_id == format!("urn:oid:{by_ins}"))
                .count(),
            1
        );

        // The page lists them; the secretary attaches the stranger's to Mme Lambert.
        let desk = app.login("sec.durand").await;
        let page = app.get_page("/documents/recus", &desk).await;
        assert_eq!(page.status, 200);
        let page = page.page();
        assert!(page.contains("3 documents à rattacher"), "{page}");
        assert!(page.contains("rattaché automatiquement (INS)") && page.contains("refusé"));
        let queue = app
            .get_page(&format!("/documents/recus/{}", c.id), &desk)
            .await
            .page();
        assert!(
            queue.contains("INCONNU Monique") && queue.contains(&lambert.id.to_string()),
            "{queue}"
        );
        let cookie = format!("parcours_session={desk}");
        let r = app
            .post_form(
                &format!("/documents/recus/{}", c.id),
                &cookie,
                &[("csrf", &csrf_field(&queue))],
            )
            .await;
        assert_eq!(r.status, 422, "no patient chosen");
        assert!(r.page().contains("choisissez un patient"));
        let r = app
            .post_form(
                &format!("/documents/recus/{}", c.id),
                &cookie,
                &[
                    ("csrf", &csrf_field(&queue)),
                    ("patient", &lambert.id.to_string()),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let (after, _) = app.store.incoming(&c.id).await.unwrap();
        assert_eq!(
            (after.state, after.patient),
            (IncomingState::Filed, Some(lambert.id))
        );
        assert!(
            after.detail.starts_with("rattaché par "),
            "{}",
            after.detail
        );
        eventually("the attached document reaches the DMP too", async || {
            dmp.store
                .document_by_unique_id(&format!("urn:oid:{unknown}"))
                .await
                .unwrap()
                .is_some()
        })
        .await;
        let r = app
            .post_form(
                &format!("/documents/recus/{}", c.id),
                &cookie,
                &[
                    ("csrf", &csrf_field(&queue)),
                    ("patient", &lambert.id.to_string()),
                ],
            )
            .await;
        assert_eq!(r.status, 409, "attached once");
        // The stranger's report corrected: queued too, attached by hand, it
        // replaces the version attached before.
        let fixed = format!("1.2.250.1.999.77.8.{}", rand());
        let r8 = take(
            &clinic,
            format!("m8-{fixed}@cabinet"),
            surgeon_cda_replacing(&stranger, &fixed, Some(&unknown)),
        )
        .await;
        assert_eq!(r8.queued, 1, "{backend}");
        let q8 = app
            .store
            .incoming_documents(est, 20)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.unique_id.as_deref() == Some(&format!("urn:oid:{fixed}")))
            .unwrap();
        let page8 = app
            .get_page(&format!("/documents/recus/{}", q8.id), &desk)
            .await
            .page();
        let r = app
            .post_form(
                &format!("/documents/recus/{}", q8.id),
                &cookie,
                &[
                    ("csrf", &csrf_field(&page8)),
                    ("patient", &lambert.id.to_string()),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let (filed8, _) = app.store.incoming(&q8.id).await.unwrap();
        assert_eq!(
            app.store
                .document_by_unique_id(&format!("urn:oid:{unknown}"))
                .await
                .unwrap()
                .unwrap()
                .superseded_by
                .map(|d| d.to_string()),
            filed8.document_id,
            "{backend}"
        );

        // The hospital's secretary sees only the hospital's own (the duplicate
        // above), none of the clinic's mail; a patient has no access.
        let other = app.login("sec.leroy").await;
        let page = app.get_page("/documents/recus", &other).await.page();
        assert!(
            page.contains("déjà reçu")
                && !page.contains("INCONNU")
                && !page.contains("rattaché automatiquement"),
            "{page}"
        );
        assert_eq!(
            app.get_page(&format!("/documents/recus/{}", c.id), &other)
                .await
                .status,
            404
        );
        let patient = app.login(server::demo::PATIENT_LOGIN).await;
        assert_eq!(app.get_page("/documents/recus", &patient).await.status, 403);
        assert_eq!(
            app.get_page(&format!("/documents/recus/{}", c.id), &patient)
                .await
                .status,
            403
        );
    }
}

#[tokio::test]
async fn an_unreachable_or_refusing_mailbox_is_said_and_nothing_is_lost() {
    let imap = Imap::start().await;
    let port = imap.port();
    let app = spawn_app("sqlite").await;
    let mut c = (*app.state.config).clone();
    c.imap_url = Some("imap://secretariat@127.0.0.1:9/INBOX".into());
    c.imap_password = Some(PASSWORD.into());
    c.imap_finess = Some(server::demo::CLINIC_FINESS.into());
    let closed = server::mailbox::MailboxConfig::from_config(&c)
        .unwrap()
        .unwrap();
    let e = server::mailbox::poll_once(&app.state, &closed)
        .await
        .unwrap_err();
    assert!(e.starts_with("connexion à 127.0.0.1:9"), "{e}");
    // A wrong password: the server's refusal, and the mail stays unread.
    imap.deliver("1.mail", &surgeon_mail("wrong-pw@cabinet", None));
    c.imap_url = Some(format!("imap://{USER}@127.0.0.1:{port}/INBOX"));
    c.imap_password = Some("pas le bon".into());
    let refused = server::mailbox::MailboxConfig::from_config(&c)
        .unwrap()
        .unwrap();
    let e = server::mailbox::poll_once(&app.state, &refused)
        .await
        .unwrap_err();
    assert!(e.starts_with("IMAP"), "{e}");
    // An unknown establishment: said before anything is read.
    c.imap_password = Some(PASSWORD.into());
    c.imap_finess = Some("999999999".into());
    let nowhere = server::mailbox::MailboxConfig::from_config(&c)
        .unwrap()
        .unwrap();
    let e = server::mailbox::poll_once(&app.state, &nowhere)
        .await
        .unwrap_err();
    assert_eq!(e, "aucun établissement de FINESS 999999999");
    assert_eq!(imap.seen(), 0);
    // Right at last: taken in (refused: it has no document) and marked seen.
    c.imap_finess = Some(server::demo::CLINIC_FINESS.into());
    let right = server::mailbox::MailboxConfig::from_config(&c)
        .unwrap()
        .unwrap();
    let r = server::mailbox::poll_once(&app.state, &right)
        .await
        .unwrap();
    assert_eq!(r.rejected, 1);
    assert_eq!(imap.seen(), 1);
    let again = server::mailbox::poll_once(&app.state, &right)
        .await
        .unwrap();
    assert_eq!(
        again,
        server::services::intake::Report::default(),
        "a seen mail is not read again"
    );
}

#[tokio::test]
async fn the_operators_mailbox_is_read_over_imaps_with_the_establishments_certificate() {
    let pki = Pki::new();
    let imap = Imap::start_with(&[
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    ])
    .await;
    imap.deliver("1.mail", &surgeon_mail("over-tls@cabinet", None));
    let app = spawn_app("sqlite").await;
    let config = |ca: &str, identity: Option<(&str, &str)>| {
        let mut c = (*app.state.config).clone();
        c.imap_url = Some(format!("imaps://{USER}@127.0.0.1:{}/INBOX", imap.port()));
        c.imap_password = Some(PASSWORD.into());
        c.imap_finess = Some(server::demo::CLINIC_FINESS.into());
        c.imap_ca = Some(pki.path(ca));
        if let Some((cert, key)) = identity {
            c.imap_cert = Some(pki.path(cert));
            c.imap_key = Some(pki.path(key));
        }
        server::mailbox::MailboxConfig::from_config(&c)
            .unwrap()
            .unwrap()
    };
    // A server certificate from a CA we do not trust: refused before anything is sent.
    let e = server::mailbox::poll_once(
        &app.state,
        &config("rogue.pem", Some(("client.pem", "client.key"))),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("TLS avec 127.0.0.1"), "{e}");
    // No certificate, or one from a CA the operator does not trust: no mail read.
    let e = server::mailbox::poll_once(&app.state, &config("ca.pem", None))
        .await
        .unwrap_err();
    assert!(
        e.contains("Client didn't present valid SSL certificate"),
        "{e}"
    );
    let e = server::mailbox::poll_once(
        &app.state,
        &config("ca.pem", Some(("intruder.pem", "intruder.key"))),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("Client didn't present valid SSL certificate"),
        "{e}"
    );
    assert_eq!(imap.seen(), 0);
    // Ours: read, taken in, marked seen.
    let r = server::mailbox::poll_once(
        &app.state,
        &config("ca.pem", Some(("client.pem", "client.key"))),
    )
    .await
    .unwrap();
    assert_eq!(
        r.rejected, 1,
        "the mail has no document: recorded as refused"
    );
    assert_eq!(imap.seen(), 1);
}

fn rand() -> String {
    uuid::Uuid::new_v4().as_u128().to_string()[..12].to_owned()
}

#[tokio::test]
async fn staff_of_two_establishments_choose_whose_documents_they_see() {
    use domain::org::Role;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let ssr = app
            .establishment_id(server::demo::SSR_TILLEULS_FINESS)
            .await;
        let user = store::users::NewUser {
            username: "sec.deux".into(),
            display_name: "Léa Deux".into(),
            kind: store::users::UserKind::Professional,
            password_hash: server::auth::hash_secret(server::demo::DEMO_PASSWORD.into())
                .await
                .unwrap(),
            totp_secret: Some(server::demo::DEMO_TOTP_SECRET.into()),
            rpps: None,
            profession: None,
            patient: None,
            roles: vec![(clinic, Role::Secretary), (hospital, Role::Secretary)],
        };
        app.store
            .create_user(&user, app.state.now_ms())
            .await
            .unwrap();
        let s = app.login("sec.deux").await;
        // Both offered; the clinic's shows the demo's waiting report, the hospital's does not.
        let page = app
            .get_page(&format!("/documents/recus?etablissement={clinic}"), &s)
            .await
            .page();
        assert!(
            page.contains(&format!("<option value=\"{clinic}\" selected>"))
                && page.contains(&format!("<option value=\"{hospital}\">"))
                && page.contains("Compte rendu opératoire")
                && page.contains("1 document à rattacher"),
            "{backend}: {page}"
        );
        let page = app
            .get_page(&format!("/documents/recus?etablissement={hospital}"), &s)
            .await
            .page();
        assert!(page.contains("Aucun document reçu"), "{backend}: {page}");
        // The clinic's waiting item opens for her whichever is shown.
        let item = app
            .store
            .incoming_documents(clinic, 5)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            app.get_page(&format!("/documents/recus/{}", item.id), &s)
                .await
                .status,
            200
        );
        // Not hers, or not an id: refused.
        let r = app
            .get_page(&format!("/documents/recus?etablissement={ssr}"), &s)
            .await;
        assert_eq!(r.status, 403, "{backend}");
        assert_eq!(
            app.get_page("/documents/recus?etablissement=abc", &s)
                .await
                .status,
            404
        );
        // The dispatch dashboard chooses the same way.
        let board = app
            .get_page(
                &format!("/documents?etablissement={clinic}&unite=HDJ-ONCO"),
                &s,
            )
            .await
            .page();
        assert!(
            board.contains("Compte rendu de consultation")
                && board.contains(&format!("<option value=\"{clinic}\" selected>")),
            "{backend}: {board}"
        );
        assert_eq!(
            app.get_page(&format!("/documents?etablissement={ssr}"), &s)
                .await
                .status,
            403
        );
    }
}

#[tokio::test]
async fn each_establishments_own_mailbox_is_read_as_its_file_names_it() {
    let imap = Imap::start().await;
    let port = imap.port();
    // No mailbox in the instance's configuration; the task runs anyway.
    let app = spawn_app_with("sqlite", |c| c.imap_poll_seconds = 1).await;
    assert!(server::mailbox::mailboxes(&app.state).await.is_empty());
    // The clinic's file names its mailbox and the file of its password.
    let secret = std::env::temp_dir().join(format!("parcours-imap-{}", rand()));
    std::fs::write(&secret, format!("{PASSWORD}\n")).unwrap();
    let clinic = server::demo::CLINIC_FINESS;
    app.set_setting(
        clinic,
        "imap_url",
        Some(&format!("imap://{USER}@127.0.0.1:{port}/INBOX")),
    )
    .await;
    app.set_setting(clinic, "imap_password_file", Some(secret.to_str().unwrap()))
        .await;
    // The hospital's names a mailbox without its password file: said and
    // skipped, the clinic's still read.
    app.set_setting(
        server::demo::HOSPITAL_FINESS,
        "imap_url",
        Some("imap://bal@127.0.0.1:9/INBOX"),
    )
    .await;
    let boxes = server::mailbox::mailboxes(&app.state).await;
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    assert!(format!("{boxes:?}").contains(clinic));
    assert!(
        !format!("{boxes:?}").contains(PASSWORD),
        "no password in Debug"
    );
    // The running task takes a surgeon's letter in for the clinic.
    let lambert = app.demo_patient("Lambert").await;
    let oid = format!("1.2.250.1.999.77.9.{}", rand());
    imap.deliver(
        "9.mail",
        &surgeon_mail(
            &format!("m9-{oid}@cabinet"),
            Some(&surgeon_cda(&lambert, &oid)),
        ),
    );
    eventually("the letter is read and marked seen", async || {
        imap.seen() == 1
    })
    .await;
    let est = app.establishment_id(clinic).await;
    let filed = app
        .store
        .document_by_unique_id(&format!("urn:oid:{oid}"))
        .await
        .unwrap()
        .expect("filed");
    assert_eq!((filed.patient, filed.establishment), (lambert.id, est));
    // Its password file gone: the mailbox is said unusable, nothing read.
    std::fs::remove_file(&secret).unwrap();
    assert!(server::mailbox::mailboxes(&app.state).await.is_empty());
}
