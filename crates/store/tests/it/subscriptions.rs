//! FHIR Subscriptions as stored: with their owner's role and establishment,
//! the secret sealed at rest (and resealed after a rotation), the status a
//! delivery leaves, removal by their owner only.

use domain::org::Role;
use domain::subscription::{Channel, Criteria, Status, Topic};
use domain::{PatientId, SubscriptionId};
use store::secrets::KeyRing;
use store::subscriptions::{NewSubscription, sees};

use crate::support::*;

#[tokio::test]
async fn a_subscription_is_kept_sealed_and_removed_by_its_owner() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        s.set_key_ring(KeyRing::new(&[7u8; 32], &[]).unwrap());
        let client = s
            .create_client(
                &format!("dpi-{name}"),
                "DPI",
                "hash",
                w.e1,
                Role::Integration,
                NOW,
            )
            .await
            .unwrap();
        let other = s
            .create_client(
                &format!("autre-{name}"),
                "Autre",
                "hash",
                w.e2,
                Role::Integration,
                NOW,
            )
            .await
            .unwrap();
        let patient = PatientId::new();
        let new = NewSubscription {
            id: SubscriptionId::new(),
            client,
            establishment: w.e1,
            criteria: Criteria::parse(&format!("Flag?patient=Patient/{patient}")).unwrap(),
            criteria_text: format!("Flag?patient=Patient/{patient}"),
            channel: Channel::RestHook,
            endpoint: Some("https://dpi.example/hook".into()),
            payload: None,
            headers: vec!["Authorization: Bearer t".into(), "X-Site: 1".into()],
            secret: "the-signing-secret-0001".into(),
            status: Status::Active,
            reason: "Alertes".into(),
            end_ms: Some(NOW + 1000),
        };
        s.create_subscription(&new, NOW).await.unwrap();
        let got = s.subscription(new.id).await.unwrap();
        assert_eq!(
            (got.client, got.role, got.establishment, got.territory),
            (client, Role::Integration, w.e1, w.t1.id),
            "{name}"
        );
        assert_eq!(got.secret, "the-signing-secret-0001", "{name}: opened");
        assert_eq!(got.headers, new.headers, "{name}");
        assert_eq!((got.version, got.criteria.topic), (1, Topic::Flag));
        // Sealed at rest, resealed under a new key, still readable.
        let raw = s.stored_subscription_secrets().await.unwrap();
        assert!(
            raw.iter()
                .all(|v| v.starts_with("enc1:") && !v.contains("signing")),
            "{name}: {raw:?}"
        );
        s.set_key_ring(KeyRing::new(&[8u8; 32], &[[7u8; 32]]).unwrap());
        assert_eq!(s.reseal_subscription_secrets().await.unwrap(), 1, "{name}");
        assert_eq!(
            s.reseal_subscription_secrets().await.unwrap(),
            0,
            "{name}: done"
        );
        s.set_key_ring(KeyRing::new(&[8u8; 32], &[]).unwrap());
        assert_eq!(
            s.subscription(new.id).await.unwrap().secret,
            "the-signing-secret-0001"
        );

        // Live until its end; what it sees.
        assert!(got.live(NOW) && !got.live(NOW + 1000), "{name}");
        assert!(sees(&got, Topic::Flag, patient, w.e1));
        assert!(
            !sees(&got, Topic::Flag, patient, w.e2),
            "another establishment"
        );
        assert!(
            !sees(&got, Topic::Flag, PatientId::new(), w.e1),
            "another patient"
        );
        assert!(!sees(&got, Topic::Task, patient, w.e1), "another type");

        // A delivery error, then a success: the status and the version follow.
        s.set_subscription_status(new.id, Status::Error, Some("HTTP 503"), NOW + 1)
            .await
            .unwrap();
        let e = s.subscription(new.id).await.unwrap();
        assert_eq!(
            (e.status, e.error.as_deref(), e.version),
            (Status::Error, Some("HTTP 503"), 2)
        );
        // The same state again changes nothing (no version bump per retry).
        s.set_subscription_status(new.id, Status::Error, Some("HTTP 503"), NOW + 2)
            .await
            .unwrap();
        assert_eq!(s.subscription(new.id).await.unwrap().version, 2, "{name}");
        s.set_subscription_status(new.id, Status::Active, None, NOW + 3)
            .await
            .unwrap();
        let a = s.subscription(new.id).await.unwrap();
        assert_eq!((a.status, a.error, a.version), (Status::Active, None, 3));
        assert_eq!(s.subscriptions_on().await.unwrap().len(), 1);
        assert_eq!(s.subscriptions_of(client).await.unwrap().len(), 1);
        assert!(s.subscriptions_of(other).await.unwrap().is_empty());

        // Only its owner removes it.
        assert!(
            !s.delete_subscription(new.id, other).await.unwrap(),
            "{name}"
        );
        assert!(s.delete_subscription(new.id, client).await.unwrap());
        assert!(matches!(
            s.subscription(new.id).await,
            Err(store::StoreError::NotFound)
        ));
        assert!(s.subscriptions_on().await.unwrap().is_empty());
    }
}
