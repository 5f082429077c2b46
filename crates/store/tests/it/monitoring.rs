//! Monitoring: a response records its measures and alerts at once; the queue is
//! ordered by level then age; triage follows the rules; overdue alerts escalate.

use domain::monitoring::{AlertLevel, AlertStatus, Outcome, TriageAction, TriageError};
use store::monitoring::{NewAlert, ResponseWrite};

use crate::support::*;

#[tokio::test]
async fn responses_alerts_triage_and_escalation() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Suivi", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let id = s
            .enrol(
                &store::monitoring::NewEnrolment {
                    patient: p.id,
                    establishment: w.e1,
                    programme: "oral-oncology".into(),
                    consent_at_ms: NOW,
                    created_by: "ide".into(),
                },
                &who(),
                NOW,
            )
            .await
            .unwrap();
        let e = s.enrolments_of(p.id).await.unwrap().remove(0);
        assert_eq!(
            (e.id, e.status.as_str(), e.programme.as_str()),
            (id, "active", "oral-oncology"),
            "{name}"
        );
        let sla = 12 * 3600 * 1000;
        let warn = NewAlert {
            level: AlertLevel::Warning,
            item: "fatigue".into(),
            reason: "grade 2".into(),
            advice: "".into(),
            mute: None,
        };
        let urgent = NewAlert {
            level: AlertLevel::Urgent,
            item: "diarrhoea".into(),
            reason: "grade 3".into(),
            advice: "Appelez".into(),
            mute: None,
        };
        let author = who();
        let (first, second, scale_weight) = (
            [("weight".to_owned(), 70.5)],
            [("weight".to_owned(), 66.0)],
            [("weight".to_owned(), 65.0)],
        );
        let urgent = [urgent];
        let response = |answers_json, measures, alerts, measured| ResponseWrite {
            enrolment: &e,
            answers_json,
            measures,
            alerts,
            due_at_ms: NOW + sla,
            report: None,
            measured,
            who: &author,
        };
        s.submit_response(
            &response("{}", &first, std::slice::from_ref(&warn), None),
            NOW,
        )
        .await
        .unwrap();
        let (_, ids) = s
            .submit_response(&response("{}", &second, &urgent, None), NOW + 1000)
            .await
            .unwrap();
        assert_eq!(
            s.measures(p.id, "weight", NOW).await.unwrap(),
            vec![(NOW, 70.5), (NOW + 1000, 66.0)],
            "{name}"
        );
        // A scale's measure, sent later: dated when measured, with its source,
        // and not a questionnaire answered (the reminders ignore it).
        let last_answered = |list: Vec<(store::monitoring::Enrolment, Option<i64>)>| {
            list.into_iter()
                .find(|(x, _)| x.id == e.id)
                .map(|(_, l)| l)
                .unwrap()
        };
        let before = last_answered(s.active_enrolments_with_last_response().await.unwrap());
        let (scale, _) = s
            .submit_response(
                &response(
                    "[]",
                    &scale_weight,
                    &[],
                    Some(store::monitoring::Measured {
                        source: "Balance Withings",
                        at_ms: NOW + 500,
                    }),
                ),
                NOW + 5000,
            )
            .await
            .unwrap();
        let stored = s.response(&scale).await.unwrap();
        assert_eq!(
            (
                stored.submitted_at_ms,
                stored.source.as_deref(),
                stored.filed_at_ms
            ),
            (NOW + 500, Some("Balance Withings"), NOW + 5000),
            "{name}: dated when measured, filed when received"
        );
        assert_eq!(
            s.measures(p.id, "weight", NOW).await.unwrap(),
            vec![(NOW, 70.5), (NOW + 500, 65.0), (NOW + 1000, 66.0)],
            "{name}"
        );
        assert_eq!(
            last_answered(s.active_enrolments_with_last_response().await.unwrap()),
            before,
            "{name}"
        );
        let q = s.alert_queue(w.e1).await.unwrap();
        assert_eq!(
            q.iter().map(|a| a.level).collect::<Vec<_>>(),
            vec![AlertLevel::Urgent, AlertLevel::Warning],
            "{name}: urgent first"
        );
        assert!(s.alert_queue(w.e2).await.unwrap().is_empty());
        // Triage of the urgent alert.
        let a = ids[0];
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Close("x".into()),
                Some(Outcome::Advice),
                &who(),
                "ide",
                None,
                NOW
            )
            .await
            .refusal::<TriageError>(),
            Err(TriageError::NotNow)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Take,
                None,
                &who(),
                "ide",
                None,
                NOW + 2000
            )
            .await
            .refusal::<TriageError>(),
            Ok(AlertStatus::Taken)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Escalate("".into()),
                None,
                &who(),
                "ide",
                None,
                NOW
            )
            .await
            .refusal::<TriageError>(),
            Err(TriageError::NoteRequired)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Escalate("avis".into()),
                None,
                &who(),
                "ide",
                None,
                NOW + 3000
            )
            .await
            .refusal::<TriageError>(),
            Ok(AlertStatus::Escalated)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Close("consultation demain".into()),
                None,
                &who(),
                "dr",
                None,
                NOW + 4000
            )
            .await
            .refusal::<TriageError>(),
            Err(TriageError::OutcomeRequired),
            "{name}: closing says how it ended"
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Close("consultation demain".into()),
                Some(Outcome::Consultation),
                &who(),
                "dr",
                None,
                NOW + 4000
            )
            .await
            .refusal::<TriageError>(),
            Ok(AlertStatus::Closed)
        );
        assert_eq!(
            s.alert(a).await.unwrap().outcome_kind,
            Some(Outcome::Consultation),
            "{name}"
        );
        let steps: Vec<String> = s
            .alert_events(a)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, who, action, _)| format!("{who}:{action}"))
            .collect();
        assert_eq!(
            steps,
            vec!["system:raised", "ide:taken", "ide:escalated", "dr:closed"],
            "{name}"
        );
        assert_eq!(
            s.alert(a).await.unwrap().outcome.as_deref(),
            Some("consultation demain")
        );
        // The warning, still open, escalates by itself once overdue.
        assert!(
            s.escalate_overdue(NOW + sla).await.unwrap().is_empty(),
            "{name}: not yet"
        );
        let late = s.escalate_overdue(NOW + sla + 1).await.unwrap();
        assert_eq!(late.len(), 1, "{name}");
        assert_eq!(
            s.alert(late[0]).await.unwrap().status,
            AlertStatus::Escalated
        );
        assert!(
            s.alert_queue(w.e1)
                .await
                .unwrap()
                .iter()
                .all(|a| a.status == AlertStatus::Escalated)
        );
        // The dashboard's facts: the urgent alert handled 2 s after it was raised by
        // a person; the warning only escalated by the system, so not handled.
        let mut facts = s.alert_facts(w.e1, NOW).await.unwrap();
        facts.sort_by_key(|(_, f)| f.raised_ms);
        assert_eq!(
            facts
                .iter()
                .map(|(p, f)| (p.as_str(), f.level, f.handled_ms, f.outcome))
                .collect::<Vec<_>>(),
            vec![
                ("oral-oncology", AlertLevel::Warning, None, None),
                (
                    "oral-oncology",
                    AlertLevel::Urgent,
                    Some(NOW + 2000),
                    Some(Outcome::Consultation)
                ),
            ],
            "{name}"
        );
        assert!(s.alert_facts(w.e1, NOW + 2000).await.unwrap().is_empty());
        assert!(s.alert_facts(w.e2, 0).await.unwrap().is_empty());
        assert_eq!(
            s.active_enrolments(w.e1).await.unwrap(),
            vec![("oral-oncology".to_owned(), 1)],
            "{name}"
        );
        assert!(
            s.end_enrolment(e.id, "fin", None, &who(), NOW)
                .await
                .unwrap()
        );
        assert!(s.active_enrolments(w.e1).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn patient_alerts_with_a_photo_and_messages() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Photo", "Paul"), &who(), NOW)
            .await
            .unwrap();
        let n = store::monitoring::NewEnrolment {
            patient: p.id,
            establishment: w.e1,
            programme: "oral-oncology".into(),
            consent_at_ms: NOW,
            created_by: "ide".into(),
        };
        s.enrol(&n, &who(), NOW).await.unwrap();
        let e = s.enrolments_of(p.id).await.unwrap().remove(0);
        let photo: &[u8] = b"\x89PNG\r\n\x1a\nfake";
        let alert = NewAlert {
            level: AlertLevel::Warning,
            item: "rash".into(),
            reason: "Plaques rouges sur les bras".into(),
            advice: "".into(),
            mute: None,
        };
        let id = s
            .raise_patient_alert(
                &e,
                &alert,
                Some(("image/png", photo)),
                "Paul Photo",
                NOW + 1000,
                &who(),
                NOW,
            )
            .await
            .unwrap();
        let a = s.alert(id).await.unwrap();
        assert_eq!(
            (a.status, a.due_at_ms, a.item.as_str()),
            (AlertStatus::Open, NOW + 1000, "rash"),
            "{name}"
        );
        let att = s.alert_attachment(id).await.unwrap().expect("photo kept");
        let got = s.attachment(&att).await.unwrap();
        assert_eq!(
            (got.patient, got.content_type.as_str(), got.bytes.as_slice()),
            (p.id, "image/png", photo),
            "{name}"
        );
        assert_eq!(s.alert_events(id).await.unwrap()[0].1, "Paul Photo");
        let none = s
            .raise_patient_alert(&e, &alert, None, "Paul Photo", 1000, &who(), NOW)
            .await
            .unwrap();
        assert_eq!(s.alert_attachment(none).await.unwrap(), None);
        assert!(matches!(
            s.attachment("nope").await,
            Err(store::StoreError::NotFound)
        ));

        // Messages: unread by the team until they open the thread.
        s.post_message(
            &e,
            true,
            "Paul Photo",
            "Puis-je prendre un bain ?",
            &who(),
            NOW,
        )
        .await
        .unwrap();
        s.post_message(&e, true, "Paul Photo", "Merci", &who(), NOW + 5)
            .await
            .unwrap();
        assert_eq!(
            s.unread_threads(w.e1).await.unwrap(),
            vec![(e.id, p.id, 2, NOW + 5)],
            "{name}"
        );
        assert!(s.unread_threads(w.e2).await.unwrap().is_empty());
        s.post_message(&e, false, "Julie Petit", "Oui, tiède.", &who(), NOW + 9)
            .await
            .unwrap();
        s.mark_read(e.id, true, NOW + 10).await.unwrap();
        assert!(s.unread_threads(w.e1).await.unwrap().is_empty(), "{name}");
        let thread = s.messages_of(p.id).await.unwrap();
        assert_eq!(
            thread
                .iter()
                .map(|m| (m.from_patient, m.body.as_str(), m.read_at_ms))
                .collect::<Vec<_>>(),
            vec![
                (true, "Puis-je prendre un bain ?", Some(NOW + 10)),
                (true, "Merci", Some(NOW + 10)),
                (false, "Oui, tiède.", None)
            ],
            "{name}"
        );
    }
}

/// A page of the queue of several establishments: the database orders it
/// as `alert_queue` does (most serious, then oldest) across them, cuts it
/// at the rank asked, and counts the whole queue; closed alerts and other
/// establishments' stay out.
#[tokio::test]
async fn the_queue_is_paged_across_establishments() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut enrolments = Vec::new();
        for (i, est) in [w.e1, w.e2, w.e3].into_iter().enumerate() {
            let p = s
                .create_patient(
                    &new_patient(w.t1.id, &format!("Page{i}"), "Anne"),
                    &who(),
                    NOW,
                )
                .await
                .unwrap();
            let n = store::monitoring::NewEnrolment {
                patient: p.id,
                establishment: est,
                programme: "oral-oncology".into(),
                consent_at_ms: NOW,
                created_by: "ide".into(),
            };
            s.enrol(&n, &who(), NOW).await.unwrap();
            enrolments.push(s.enrolments_of(p.id).await.unwrap().remove(0));
        }
        // (enrolment, level, raised at): raised out of order, levels mixed.
        let raised = [
            (0, AlertLevel::Info, 1),
            (1, AlertLevel::Urgent, 9),
            (0, AlertLevel::Warning, 3),
            (0, AlertLevel::Urgent, 5),
            (1, AlertLevel::Warning, 2),
            (2, AlertLevel::Urgent, 0),
            (0, AlertLevel::Urgent, 7),
        ];
        let mut ids = Vec::new();
        for (i, (e, level, at)) in raised.iter().enumerate() {
            let alert = NewAlert {
                level: *level,
                item: format!("item{i}"),
                reason: "r".into(),
                advice: "".into(),
                mute: None,
            };
            ids.push(
                s.raise_patient_alert(
                    &enrolments[*e],
                    &alert,
                    None,
                    "x",
                    NOW + 1000,
                    &who(),
                    NOW + at,
                )
                .await
                .unwrap(),
            );
        }
        // One closed: out of the queue.
        store::testing::raw_sql(
            &s,
            &format!(
                "UPDATE alerts SET status = 'closed' WHERE id = '{}'",
                ids[6]
            ),
        )
        .await
        .unwrap();
        let items = |page: &[store::monitoring::Alert]| {
            page.iter().map(|a| a.item.clone()).collect::<Vec<_>>()
        };
        let both = [w.e1, w.e2];
        let (all, total) = s.alert_queue_page(&both, 10, 0).await.unwrap();
        assert_eq!(
            items(&all),
            ["item3", "item1", "item4", "item2", "item0"],
            "{name}: urgent by age, then warnings, then info"
        );
        assert_eq!(total, 5, "{name}");
        let (second, total) = s.alert_queue_page(&both, 2, 2).await.unwrap();
        assert_eq!(
            (items(&second), total),
            (vec!["item4".to_owned(), "item2".to_owned()], 5),
            "{name}"
        );
        let (past, total) = s.alert_queue_page(&both, 2, 6).await.unwrap();
        assert_eq!((past.len(), total), (0, 5), "{name}: past the end");
        let (third, total) = s.alert_queue_page(&[w.e3], 10, 0).await.unwrap();
        assert_eq!(
            (items(&third), total),
            (vec!["item5".to_owned()], 1),
            "{name}"
        );
        assert_eq!(s.alert_queue_page(&[], 10, 0).await.unwrap().1, 0, "{name}");
        // The same order as each establishment's whole queue.
        let whole: Vec<String> = s
            .alert_queue(w.e1)
            .await
            .unwrap()
            .iter()
            .map(|a| a.item.clone())
            .collect();
        let (e1, _) = s.alert_queue_page(&[w.e1], 10, 0).await.unwrap();
        assert_eq!(items(&e1), whole, "{name}");
    }
}
