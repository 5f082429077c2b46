//! Closed consultations: the prescription's lines come back in order; the
//! approval and the settlement are written once each; a card settlement must
//! name the checkout session recorded for it.

use domain::consultation::{Closing, Line, Method};
use store::StoreError;

use crate::support::*;

#[tokio::test]
async fn close_approve_and_settle_once() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let n = video_appointment(&s, &w, "Visio", "Paul").await;
        let id = s.book(&n, &[], &who(), NOW).await.unwrap();
        let a = s.appointment(id).await.unwrap();
        assert!(
            matches!(s.consultation(id).await, Err(StoreError::NotFound)),
            "{name}"
        );
        let line = |m: &str| Line {
            medication: m.into(),
            dose: "1 cp".into(),
            frequency: "2 fois par jour".into(),
            duration: "5 jours".into(),
        };
        let closing = Closing {
            note: "Revu en visio.".into(),
            lines: vec![line("Zeta"), line("Alpha"), line("Mu")],
            free_text: "Repos".into(),
        };
        let number = format!("ORD-TEST-{}", rand_suffix());
        s.close_consultation(&a, &closing, &number, 3000, &[], &who(), NOW + 1)
            .await
            .unwrap();
        let again = s
            .close_consultation(&a, &closing, "ORD-OTHER", 3000, &[], &who(), NOW + 2)
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict(_))),
            "{name}: {again:?}"
        );
        let c = s.consultation(id).await.unwrap();
        assert_eq!(c.closing, closing, "{name}: lines in the order written");
        assert_eq!(
            (
                c.number.as_str(),
                c.fee_cents,
                c.settled,
                c.approved_at_ms,
                c.closed_at_ms
            ),
            (number.as_str(), 3000, None, None, NOW + 1),
            "{name}"
        );
        assert_eq!(
            s.consultation_by_number(&number).await.unwrap(),
            c,
            "{name}"
        );
        assert_eq!(
            s.consultations_of_patient(n.patient).await.unwrap(),
            vec![c.clone()]
        );

        assert!(s.approve_consultation(&c, &who(), NOW + 5).await.unwrap());
        assert!(
            !s.approve_consultation(&c, &who(), NOW + 6).await.unwrap(),
            "{name}: approved once"
        );
        assert_eq!(
            s.consultation(id).await.unwrap().approved_at_ms,
            Some(NOW + 5)
        );

        // The patient opened two sessions (two tabs) and paid the first: the
        // payment is recorded with the session actually paid.
        assert!(s.set_checkout(id, &format!("cs_{name}_1")).await.unwrap());
        assert!(s.set_checkout(id, &format!("cs_{name}_2")).await.unwrap());
        assert_eq!(
            s.consultation_by_checkout(&format!("cs_{name}_2"))
                .await
                .unwrap()
                .appointment_id,
            id
        );
        assert!(
            s.settle_consultation(
                &c,
                Method::Card,
                Some(&format!("cs_{name}_1")),
                &who(),
                NOW + 8
            )
            .await
            .unwrap()
        );
        // Settled once: neither a replay nor the desk settles it again, and no new
        // checkout session can be attached.
        assert!(
            !s.settle_consultation(&c, Method::Desk, None, &who(), NOW + 9)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(!s.set_checkout(id, "cs_late").await.unwrap(), "{name}");
        let c = s.consultation(id).await.unwrap();
        assert_eq!(
            (c.settled, c.settled_at_ms, c.checkout_id.as_deref()),
            (
                Some(Method::Card),
                Some(NOW + 8),
                Some(format!("cs_{name}_1").as_str())
            ),
            "{name}"
        );
    }
}
