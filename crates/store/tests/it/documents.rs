//! Documents: a draft is edited until validated; validation writes recipients and
//! their outbox messages once; a recipient's state follows its outbox message;
//! a received document is filed once per unique id; the DMP status is kept.

use domain::documents::{DmpState, Kind, Recipient, Status};
use store::StoreError;
use store::documents::{NewDocument, ReceivedDocument, RecipientPlan};
use store::outbox::{NewMessage, RetryPolicy};

use crate::support::*;

/// A discharge letter drafted by the secretary.
fn letter(patient: domain::PatientId, establishment: domain::EstablishmentId) -> NewDocument {
    NewDocument {
        patient,
        establishment,
        kind: Kind::LettreLiaison,
        title: "Lettre".into(),
        body: "Brouillon".into(),
        created_by: "sec".into(),
        unit: None,
    }
}

/// An operative report received over MHD.
fn report(
    unique_id: String,
    patient: domain::PatientId,
    establishment: domain::EstablishmentId,
) -> ReceivedDocument {
    ReceivedDocument {
        unique_id,
        patient,
        establishment,
        kind: Kind::CrOperatoire,
        title: "CR opératoire".into(),
        source: "mhd".into(),
        sender: "client".into(),
        content_type: "text/xml".into(),
        content: b"<ClinicalDocument/>".to_vec(),
        replaces: None,
    }
}

#[tokio::test]
async fn drafts_validation_recipients_and_received_documents() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Doc", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let id = s
            .create_document(&letter(p.id, w.e1), &who(), NOW)
            .await
            .unwrap();
        let d = s.document(id).await.unwrap();
        assert_eq!(
            (d.status, d.version, d.source.as_str()),
            (Status::Draft, 1, "local"),
            "{name}"
        );
        assert!(d.unique_id.starts_with("urn:uuid:"));
        assert!(
            s.update_draft(&d, "Lettre de liaison", "Texte final", &who(), NOW + 1)
                .await
                .unwrap()
        );
        let key = format!("doc:{id}:dmp:{name}");
        let plans = vec![
            RecipientPlan {
                recipient: Recipient::Patient,
                address: "portail".into(),
                message: None,
                state: "delivered",
                detail: None,
            },
            RecipientPlan {
                recipient: Recipient::Dmp,
                address: "http://dmp.test/fhir".into(),
                message: Some(NewMessage {
                    idempotency_key: key.clone(),
                    topic: "mhd".into(),
                    destination: "http://dmp.test/fhir".into(),
                    payload: "{}".into(),
                    establishment: None,
                }),
                state: "pending",
                detail: None,
            },
            RecipientPlan {
                recipient: Recipient::Gp,
                address: String::new(),
                message: None,
                state: "skipped",
                detail: Some("pas d'adresse".into()),
            },
        ];
        let d = s.document(id).await.unwrap();
        assert!(
            s.validate_document(&d, "dr", "text/xml", b"<cda/>", &plans, &who(), NOW + 2)
                .await
                .unwrap()
        );
        assert!(
            !s.validate_document(&d, "dr", "text/xml", b"<cda/>", &plans, &who(), NOW + 3)
                .await
                .unwrap(),
            "{name}: once"
        );
        assert!(
            !s.update_draft(&d, "x", "y", &who(), NOW + 4).await.unwrap(),
            "{name}: validated is final"
        );
        let d = s.document(id).await.unwrap();
        assert_eq!(
            (d.status, d.validated_at_ms, d.title.as_str()),
            (Status::Validated, Some(NOW + 2), "Lettre de liaison")
        );
        assert_eq!(
            s.document_content(id).await.unwrap(),
            Some(("text/xml".into(), b"<cda/>".to_vec()))
        );
        let states =
            |v: Vec<store::documents::RecipientState>| -> Vec<(Recipient, String, Option<String>)> {
                v.into_iter()
                    .map(|r| (r.recipient, r.state, r.detail))
                    .collect()
            };
        assert_eq!(
            states(s.recipients_of(id).await.unwrap()),
            vec![
                (Recipient::Dmp, "pending".into(), None),
                (
                    Recipient::Gp,
                    "skipped".into(),
                    Some("pas d'adresse".into())
                ),
                (Recipient::Patient, "delivered".into(), None),
            ],
            "{name}"
        );
        // The outbox fails once, then delivers: the recipient follows.
        let m = s.outbox_message(&key).await.unwrap().unwrap();
        s.outbox_failed(&m.id, "HTTP 503", NOW + 5, &RetryPolicy::default())
            .await
            .unwrap();
        let dmp = s.recipients_of(id).await.unwrap().remove(0);
        assert_eq!(
            (dmp.state.as_str(), dmp.detail.as_deref(), dmp.attempts),
            ("pending", Some("HTTP 503"), 1)
        );
        s.outbox_delivered(&m.id, NOW + 6).await.unwrap();
        let all = s.document_recipients(w.e1, NOW).await.unwrap();
        assert!(
            all.iter().any(|r| r.recipient == Recipient::Dmp
                && r.state == "delivered"
                && r.updated_at_ms == NOW + 6),
            "{name}: {all:?}"
        );
        assert!(s.document_recipients(w.e2, NOW).await.unwrap().is_empty());
        assert_eq!(s.validated_documents(w.e1, NOW).await.unwrap().len(), 1);

        // Received documents are filed once per unique id.
        let r = report(
            format!("urn:uuid:received-{name}-{}", rand_suffix()),
            p.id,
            w.e1,
        );
        let filed = s.file_document(&r, &[], &who(), NOW + 7).await.unwrap();
        assert!(
            matches!(
                s.file_document(&r, &[], &who(), NOW + 8).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}"
        );
        assert_eq!(
            s.document_by_unique_id(&r.unique_id)
                .await
                .unwrap()
                .unwrap()
                .id,
            filed
        );
        assert_eq!(s.documents_of_patient(p.id).await.unwrap().len(), 2);
        assert!(
            s.validated_documents(w.e1, NOW)
                .await
                .unwrap()
                .iter()
                .all(|d| d.source == "local"),
            "{name}: the dashboard counts what we wrote"
        );

        // A correction joins the set of the version it names and marks it
        // superseded, in the filing; one naming another patient's document,
        // or a document filed by another establishment, is refused and
        // nothing is written.
        let other = s
            .create_patient(&new_patient(w.t1.id, "Autre", "Paul"), &who(), NOW)
            .await
            .unwrap();
        let v2 = ReceivedDocument {
            unique_id: format!("{}-v2", r.unique_id),
            replaces: Some(r.unique_id.clone()),
            ..r.clone()
        };
        for (bad, why) in [
            (
                ReceivedDocument {
                    patient: other.id,
                    unique_id: format!("{}-x", r.unique_id),
                    ..v2.clone()
                },
                "autre patient",
            ),
            (
                ReceivedDocument {
                    establishment: w.e2,
                    unique_id: format!("{}-y", r.unique_id),
                    ..v2.clone()
                },
                "autre établissement",
            ),
        ] {
            match s.file_document(&bad, &[], &who(), NOW + 9).await {
                Err(StoreError::Refused(m)) => assert!(m.contains(why), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
            assert!(
                s.document_by_unique_id(&bad.unique_id)
                    .await
                    .unwrap()
                    .is_none(),
                "{name}"
            );
        }
        let old = s
            .document_by_unique_id(&r.unique_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.superseded_by, None, "{name}: the victim is untouched");
        let v2_id = s.file_document(&v2, &[], &who(), NOW + 10).await.unwrap();
        let old = s
            .document_by_unique_id(&r.unique_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.superseded_by, Some(v2_id), "{name}");
        let new = s
            .document_by_unique_id(&v2.unique_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (new.set_id.as_str(), new.version),
            (old.set_id.as_str(), old.version + 1),
            "{name}"
        );
        // A second correction of the same version is refused.
        let v2b = ReceivedDocument {
            unique_id: format!("{}-v2b", r.unique_id),
            ..v2.clone()
        };
        assert!(
            matches!(
                s.file_document(&v2b, &[], &who(), NOW + 11).await,
                Err(StoreError::Refused(_))
            ),
            "{name}"
        );

        // DMP status: unknown until told, then kept.
        assert_eq!(s.dmp_of(p.id).await.unwrap(), (DmpState::Unknown, false));
        s.set_dmp(p.id, DmpState::Active, true, NOW).await.unwrap();
        s.set_dmp(p.id, DmpState::Active, false, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            s.dmp_of(p.id).await.unwrap(),
            (DmpState::Active, false),
            "{name}"
        );
    }
}

/// A document's size and SHA-1 (FHIR `Attachment.hash`, base64) are written
/// with its content, validated or received; a row stored before they were is
/// filled in by `fill_document_digests` (run at every start), once.
#[tokio::test]
async fn content_digest_written_with_the_content_and_filled_in_for_older_rows() {
    use store::documents::Digest;
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Digest", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let draft = s
            .create_document(&letter(p.id, w.e1), &who(), NOW)
            .await
            .unwrap();
        let d = s.document(draft).await.unwrap();
        assert_eq!(d.digest, None, "{name}: a draft has no content yet");
        assert!(
            s.validate_document(&d, "dr", "text/xml", b"<cda/>", &[], &who(), NOW + 1)
                .await
                .unwrap()
        );
        // sha1 of the bytes, base64 (`python3 -c 'import hashlib,base64; …'`).
        let validated = Some(Digest {
            size: 6,
            sha1: "a3q0Bxc1AuuIBzza4YXUPAH/4EE=".into(),
        });
        assert_eq!(s.document(draft).await.unwrap().digest, validated, "{name}");
        let received = s
            .file_document(
                &report(
                    format!("urn:uuid:digest-{name}-{}", rand_suffix()),
                    p.id,
                    w.e1,
                ),
                &[],
                &who(),
                NOW + 2,
            )
            .await
            .unwrap();
        let filed = Some(Digest {
            size: 19,
            sha1: "yFJl5qw7LWRXPdv1k9Xow4QRta4=".into(),
        });
        assert_eq!(s.document(received).await.unwrap().digest, filed, "{name}");
        assert_eq!(Digest::of(b"<ClinicalDocument/>"), filed.clone().unwrap());

        // Rows as a version before the digest left them.
        store::testing::raw_sql(
            &s,
            "UPDATE documents SET content_size = NULL, content_sha1 = NULL",
        )
        .await
        .unwrap();
        assert_eq!(s.document(received).await.unwrap().digest, None);
        assert_eq!(s.fill_document_digests().await.unwrap(), 2, "{name}");
        assert_eq!(s.document(draft).await.unwrap().digest, validated, "{name}");
        assert_eq!(s.document(received).await.unwrap().digest, filed, "{name}");
        assert_eq!(s.fill_document_digests().await.unwrap(), 0, "{name}: once");
        // A start fills them in too.
        store::testing::raw_sql(&s, "UPDATE documents SET content_sha1 = NULL")
            .await
            .unwrap();
        s.migrate(NOW + 3).await.unwrap();
        assert_eq!(s.document(received).await.unwrap().digest, filed, "{name}");
    }
}
