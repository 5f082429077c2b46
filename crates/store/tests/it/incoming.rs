//! Documents received by mail: each part of each mail is recorded once; filing
//! writes the document, its recipients and outbox messages with the record; a
//! queued document is attached to a patient once.

use domain::documents::{Kind, Recipient};
use store::StoreError;
use store::documents::{ReceivedDocument, RecipientPlan};
use store::incoming::{IncomingState, NewIncoming};
use store::outbox::NewMessage;

use crate::support::*;

fn incoming(w: &World, message_id: &str, part: i64, state: IncomingState) -> NewIncoming {
    NewIncoming {
        establishment: w.e1,
        message_id: message_id.into(),
        part,
        sender: "chirurgien@test.mssante.fr".into(),
        subject: "XDM/1.0/DDM".into(),
        state,
        detail: "INS".into(),
        unique_id: Some(format!("1.2.3.{message_id}.{part}")),
        title: "CR opératoire".into(),
        type_code: "34874-8".into(),
        traits: "DOC Anne, F, 01/02/1960".into(),
        content: Some(b"<ClinicalDocument/>".to_vec()),
        patient: None,
        document_id: None,
    }
}

fn received(w: &World, patient: domain::PatientId, unique_id: &str) -> ReceivedDocument {
    ReceivedDocument {
        unique_id: unique_id.into(),
        patient,
        establishment: w.e1,
        kind: Kind::CrOperatoire,
        title: "CR opératoire".into(),
        source: "mail".into(),
        sender: "chirurgien@test.mssante.fr".into(),
        content_type: "text/xml".into(),
        content: b"<ClinicalDocument/>".to_vec(),
        replaces: None,
    }
}

#[tokio::test]
async fn a_mail_is_filed_once_and_a_queued_one_attached_once() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Doc", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let mid = format!("m1-{name}-{}", rand_suffix());
        let n = incoming(&w, &mid, 1, IncomingState::Filed);
        let dmp = |key: &str| {
            vec![RecipientPlan {
                recipient: Recipient::Dmp,
                address: "http://dmp.test/fhir".into(),
                message: Some(NewMessage {
                    idempotency_key: key.into(),
                    topic: "mhd".into(),
                    destination: "http://dmp.test/fhir".into(),
                    payload: "{}".into(),
                    establishment: None,
                }),
                state: "pending",
                detail: None,
            }]
        };
        assert!(!s.incoming_seen(w.e1, &mid, 1).await.unwrap());
        let doc = received(&w, p.id, n.unique_id.as_deref().unwrap());
        let key = format!("mail:{mid}:dmp");
        let filed = s
            .file_incoming(&n, &doc, &dmp(&key), &who(), NOW)
            .await
            .unwrap()
            .expect("filed");
        assert!(s.incoming_seen(w.e1, &mid, 1).await.unwrap(), "{name}");
        // The same part of the same mail, read again: nothing more.
        assert_eq!(
            s.file_incoming(&n, &doc, &dmp(&key), &who(), NOW + 1)
                .await
                .unwrap(),
            None,
            "{name}"
        );
        let d = s
            .document(filed.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap();
        assert_eq!((d.patient, d.source.as_str()), (p.id, "mail"));
        let r = s
            .recipients_of(filed.parse::<domain::DocumentId>().unwrap())
            .await
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].recipient, r[0].state.as_str()),
            (Recipient::Dmp, "pending")
        );
        let list = s.incoming_documents(w.e1, 10).await.unwrap();
        assert_eq!(list.len(), 1, "{name}");
        assert_eq!(list[0].state, IncomingState::Filed);
        assert_eq!(list[0].document_id.as_deref(), Some(filed.as_str()));
        assert_eq!(list[0].patient, Some(p.id));
        assert!(s.incoming_documents(w.e2, 10).await.unwrap().is_empty());

        // Another mail carrying the same document: its filing is a conflict.
        let again = incoming(&w, &format!("{mid}-bis"), 1, IncomingState::Filed);
        assert!(
            matches!(
                s.file_incoming(&again, &doc, &[], &who(), NOW + 2).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}"
        );
        assert!(
            !s.incoming_seen(w.e1, &format!("{mid}-bis"), 1)
                .await
                .unwrap(),
            "rolled back"
        );

        // Queued, then attached by a human once.
        let q = incoming(&w, &format!("{mid}-q"), 1, IncomingState::Queued);
        assert!(s.record_incoming(&q, NOW + 3).await.unwrap());
        assert!(
            !s.record_incoming(&q, NOW + 4).await.unwrap(),
            "recorded once"
        );
        let queued = s
            .incoming_documents(w.e1, 10)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.state == IncomingState::Queued)
            .unwrap();
        let (one, content) = s.incoming(&queued.id).await.unwrap();
        assert_eq!(one, queued);
        assert_eq!(content.as_deref(), Some(&b"<ClinicalDocument/>"[..]));
        let doc2 = received(&w, p.id, q.unique_id.as_deref().unwrap());
        let attached = s
            .attach_incoming(
                &queued.id,
                "rattaché par sec",
                &doc2,
                &dmp(&format!("{key}-q")),
                &who(),
                NOW + 5,
            )
            .await
            .unwrap()
            .expect("attached");
        assert_eq!(
            s.attach_incoming(&queued.id, "rattaché par sec", &doc2, &[], &who(), NOW + 6)
                .await
                .unwrap(),
            None,
            "{name}: attached once"
        );
        let (after, _) = s.incoming(&queued.id).await.unwrap();
        assert_eq!(after.state, IncomingState::Filed);
        assert_eq!(after.detail, "rattaché par sec");
        assert_eq!(after.patient, Some(p.id));
        assert_eq!(after.document_id.as_deref(), Some(attached.as_str()));
        let d2 = s
            .document(
                after
                    .document_id
                    .as_deref()
                    .unwrap()
                    .parse::<domain::DocumentId>()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(d2.unique_id, q.unique_id.unwrap());
        assert!(matches!(
            s.incoming("nope").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[test]
fn states_read_back() {
    for st in [
        IncomingState::Filed,
        IncomingState::Queued,
        IncomingState::Rejected,
        IncomingState::Duplicate,
    ] {
        assert_eq!(IncomingState::from_code(st.code()), Some(st));
        assert!(!st.label_fr().is_empty());
    }
    assert_eq!(IncomingState::from_code("x"), None);
}

#[tokio::test]
async fn a_document_is_whose_qualified_identity_carries_its_ins() {
    use domain::identity::IdentityStatus;
    for (name, s) in backends().await {
        let w = world(&s).await;
        let ins = domain::Ins::parse(domain::InsKind::Nir, "279035121518989").unwrap();
        let mut provisional = new_patient(w.t1.id, "Ins", "Anne");
        provisional.ins = Some(ins.clone());
        provisional.status = IdentityStatus::Validated;
        let p = s.create_patient(&provisional, &who(), NOW).await.unwrap();
        assert_eq!(
            s.qualified_by_ins(w.t1.id, &ins.value()).await.unwrap(),
            None,
            "{name}: an INS not qualified is not enough"
        );
        let ins = domain::Ins::parse(domain::InsKind::Nir, "261044523410185").unwrap();
        let mut qualified = new_patient(w.t1.id, "Ins", "Béa");
        qualified.ins = Some(ins.clone());
        qualified.status = IdentityStatus::Qualified;
        let q = s.create_patient(&qualified, &who(), NOW).await.unwrap();
        assert_eq!(
            s.qualified_by_ins(w.t1.id, &ins.value())
                .await
                .unwrap()
                .map(|r| r.id),
            Some(q.id),
            "{name}"
        );
        assert_ne!(p.id, q.id);
        assert_eq!(
            s.qualified_by_ins(w.t2.id, &ins.value()).await.unwrap(),
            None,
            "{name}: another domain"
        );
    }
}
