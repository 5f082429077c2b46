//! Orientation requests: the first confirmed acceptance closes the others; every
//! step is in the timeline and the audit trail.

use domain::orientation::{Answer, OrientationError, RequestStatus, ResponseStatus, TargetType};
use store::orientation::{NewOrientation, Step};

use crate::support::*;

#[tokio::test]
async fn a_request_from_creation_to_confirmation() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Orient", "Anne"), &who(), NOW)
            .await
            .unwrap();
        // e2 and e3 are asked (e3 is another territory's, fine for the store).
        let n = NewOrientation {
            patient: p.id,
            territory: w.t1.id,
            from: w.e1,
            target: TargetType::Ssr,
            needs: "rééducation après prothèse de hanche".into(),
            wished_date: "2026-11-30".into(),
            urgent: false,
            recipients: vec![w.e2, w.e3],
        };
        let bad = NewOrientation {
            recipients: vec![],
            ..n.clone()
        };
        assert_eq!(
            s.create_orientation(&bad, &who(), "u", NOW)
                .await
                .refusal::<OrientationError>(),
            Err(OrientationError::Recipients)
        );
        let id = s.create_orientation(&n, &who(), "u", NOW).await.unwrap();
        let step = |st: Step, at: i64| {
            let s = s.clone();
            async move {
                s.orientation_step(id, &st, &who(), "u2", NOW + at)
                    .await
                    .refusal::<OrientationError>()
            }
        };
        assert_eq!(
            step(Step::Answer(w.e2, Answer::Refuse("".into())), 1).await,
            Err(OrientationError::ReasonRequired),
            "{name}"
        );
        assert_eq!(
            step(Step::Answer(w.e2, Answer::Refuse("pas de lit".into())), 2).await,
            Ok(())
        );
        assert_eq!(
            step(Step::Answer(w.e2, Answer::Accept), 3).await,
            Err(OrientationError::AlreadyAnswered)
        );
        assert_eq!(
            step(Step::Confirm(w.e3), 4).await,
            Err(OrientationError::NotAccepted),
            "{name}"
        );
        assert_eq!(step(Step::Answer(w.e3, Answer::Accept), 5).await, Ok(()));
        assert_eq!(
            step(Step::Answer(w.e1, Answer::Accept), 5).await,
            Err(OrientationError::Recipients),
            "not a recipient"
        );
        assert_eq!(step(Step::Confirm(w.e3), 6).await, Ok(()));
        assert_eq!(
            step(Step::Cancel, 7).await,
            Err(OrientationError::NotOpen),
            "{name}"
        );
        let o = s.orientation(id).await.unwrap();
        assert_eq!(
            (o.status, o.closed_at_ms),
            (RequestStatus::Confirmed, Some(NOW + 6))
        );
        let st: Vec<_> = o
            .recipients
            .iter()
            .map(|r| (r.status, r.reason.clone()))
            .collect();
        assert_eq!(
            st,
            vec![
                (ResponseStatus::Refused, Some("pas de lit".into())),
                (ResponseStatus::Chosen, None)
            ],
            "{name}"
        );
        let steps: Vec<_> = o.events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            steps,
            vec!["created", "refused", "accepted", "confirmed"],
            "{name}"
        );
        assert_eq!(s.orientations_of(&[w.e3]).await.unwrap(), vec![id]);
        assert_eq!(
            s.orientations_of(&[w.e1, w.e2]).await.unwrap(),
            vec![id],
            "{name}: sent and received, once"
        );
        let trail = s
            .list_audit(&store::audit::AuditFilter {
                patient: Some(p.id.to_string()),
                limit: 20,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            trail
                .iter()
                .filter(|e| e.resource == format!("ServiceRequest/{id}"))
                .count(),
            4,
            "{name}"
        );
        assert!(matches!(
            s.orientation(domain::OrientationId::new()).await,
            Err(store::StoreError::NotFound)
        ));
    }
}
