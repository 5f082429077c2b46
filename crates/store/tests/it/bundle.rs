//! Several writes in one transaction: all of them, or none, and the failed
//! one named (what a FHIR transaction Bundle relies on).

use domain::PatientId;
use domain::demographics::DemographicsPatch;
use store::StoreError;
use store::bundle::{Write, Written};

use crate::support::*;

#[tokio::test]
async fn writes_are_all_or_nothing_and_the_failed_one_is_named() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let existing = s
            .create_patient(&new_patient(w.t1.id, "Durand", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let before = s.count_patients(w.t1.id).await.unwrap();
        let (a, b) = (PatientId::new(), PatientId::new());
        let first = new_patient(w.t1.id, "Martin", "Paul");
        let second = new_patient(w.t1.id, "Martin", "Lise");
        let mut renamed = existing.clone();
        renamed.traits.used_name = Some("Durand-Roy".into());
        let stale = domain::identity::PatientRecord {
            version: existing.version + 5,
            ..renamed.clone()
        };
        let none = DemographicsPatch::default();
        let who = who();
        // The third write is stale: the two creations before it are undone.
        let e = s
            .apply_writes(
                &[
                    Write::CreatePatient {
                        id: a,
                        new: &first,
                        who: &who,
                    },
                    Write::CreatePatient {
                        id: b,
                        new: &second,
                        who: &who,
                    },
                    Write::UpdatePatient {
                        record: &stale,
                        demographics: &none,
                        who: &who,
                    },
                ],
                NOW + 1,
            )
            .await
            .unwrap_err();
        assert_eq!(e.entry, Some(2), "{name}");
        assert!(
            matches!(e.error, StoreError::Stale { current } if current == existing.version),
            "{name}: {e}"
        );
        assert_eq!(s.count_patients(w.t1.id).await.unwrap(), before, "{name}");
        assert!(matches!(s.patient(a).await, Err(StoreError::NotFound)));
        // All good: both kept, in order.
        let done = s
            .apply_writes(
                &[
                    Write::CreatePatient {
                        id: a,
                        new: &first,
                        who: &who,
                    },
                    Write::UpdatePatient {
                        record: &renamed,
                        demographics: &none,
                        who: &who,
                    },
                ],
                NOW + 2,
            )
            .await
            .unwrap();
        assert_eq!(
            done,
            vec![Written::Patient(a), Written::Patient(existing.id)],
            "{name}"
        );
        assert_eq!(s.count_patients(w.t1.id).await.unwrap(), before + 1);
        let again = s.patient(existing.id).await.unwrap();
        assert_eq!(
            (again.version, again.traits.used_name.as_deref()),
            (existing.version + 1, Some("Durand-Roy")),
            "{name}"
        );
    }
}
