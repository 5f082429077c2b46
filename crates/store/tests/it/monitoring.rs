//! Monitoring: a response records its measures and alerts at once; the queue is
//! ordered by level then age; triage follows the rules; overdue alerts escalate.

use domain::monitoring::{AlertLevel, AlertStatus, TriageAction, TriageError};
use store::monitoring::NewAlert;

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
            (e.id.as_str(), e.status.as_str(), e.programme.as_str()),
            (id.as_str(), "active", "oral-oncology"),
            "{name}"
        );
        let sla = 12 * 3600 * 1000;
        let warn = NewAlert {
            level: AlertLevel::Warning,
            item: "fatigue".into(),
            reason: "grade 2".into(),
            advice: "".into(),
        };
        let urgent = NewAlert {
            level: AlertLevel::Urgent,
            item: "diarrhoea".into(),
            reason: "grade 3".into(),
            advice: "Appelez".into(),
        };
        s.submit_response(
            &e,
            "{}",
            &[("weight".into(), 70.5)],
            std::slice::from_ref(&warn),
            sla,
            &who(),
            NOW,
        )
        .await
        .unwrap();
        let (_, ids) = s
            .submit_response(
                &e,
                "{}",
                &[("weight".into(), 66.0)],
                &[urgent],
                sla,
                &who(),
                NOW + 1000,
            )
            .await
            .unwrap();
        assert_eq!(
            s.measures(p.id, "weight", NOW).await.unwrap(),
            vec![(NOW, 70.5), (NOW + 1000, 66.0)],
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
        let a = &ids[0];
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Close("x".into()),
                &who(),
                "ide",
                None,
                NOW
            )
            .await
            .unwrap(),
            Err(TriageError::NotNow)
        );
        assert_eq!(
            s.triage_alert(a, &TriageAction::Take, &who(), "ide", None, NOW + 2000)
                .await
                .unwrap(),
            Ok(AlertStatus::Taken)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Escalate("".into()),
                &who(),
                "ide",
                None,
                NOW
            )
            .await
            .unwrap(),
            Err(TriageError::NoteRequired)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Escalate("avis".into()),
                &who(),
                "ide",
                None,
                NOW + 3000
            )
            .await
            .unwrap(),
            Ok(AlertStatus::Escalated)
        );
        assert_eq!(
            s.triage_alert(
                a,
                &TriageAction::Close("consultation demain".into()),
                &who(),
                "dr",
                None,
                NOW + 4000
            )
            .await
            .unwrap(),
            Ok(AlertStatus::Closed)
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
            s.alert(&late[0]).await.unwrap().status,
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
                .map(|(p, f)| (p.as_str(), f.level, f.handled_ms))
                .collect::<Vec<_>>(),
            vec![
                ("oral-oncology", AlertLevel::Warning, None),
                ("oral-oncology", AlertLevel::Urgent, Some(NOW + 2000)),
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
        assert!(s.end_enrolment(&e.id, "fin", &who(), NOW).await.unwrap());
        assert!(s.active_enrolments(w.e1).await.unwrap().is_empty());
    }
}
