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

/// Concurrent callers share one commit on SQLite, each all or nothing on its
/// own: in a group where one caller's write is stale, that caller alone is
/// rolled back (its earlier write too) and told which write failed; the
/// others are kept and the audit chain holds. On PostgreSQL each caller has
/// its transaction (none waits for a group), with the same outcomes.
#[tokio::test]
async fn callers_grouped_in_one_commit_fail_or_succeed_each_on_their_own() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let existing = s
            .create_patient(&new_patient(w.t1.id, "Durand", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let before = s.count_patients(w.t1.id).await.unwrap();
        let audited = s.verify_audit().await.unwrap().checked;
        // A group is being written: the callers below wait together.
        let held = store::testing::hold_writes(&s).await;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (s, t) = (s.clone(), w.t1.id);
            let stale = (i == 3).then(|| domain::identity::PatientRecord {
                version: existing.version + 5,
                ..existing.clone()
            });
            tasks.push(tokio::spawn(async move {
                let id = PatientId::new();
                let new = new_patient(t, "Groupe", &format!("Membre {i}"));
                let who = who();
                let none = DemographicsPatch::default();
                let mut writes = vec![Write::CreatePatient {
                    id,
                    new: &new,
                    who: &who,
                }];
                if let Some(record) = &stale {
                    writes.push(Write::UpdatePatient {
                        record,
                        demographics: &none,
                        who: &who,
                    });
                }
                (id, s.apply_writes(&writes, NOW + 1).await)
            }));
        }
        let grouped = s.engine() == store::Engine::Sqlite;
        let expected = if grouped { 6 } else { 0 };
        for _ in 0..500 {
            if store::testing::waiting_writes(&s) == expected
                && (grouped || tasks.iter().all(|t| t.is_finished()))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(
            store::testing::waiting_writes(&s),
            expected,
            "{name}: on SQLite all six wait for the group"
        );
        drop(held);
        let mut kept = 0;
        for (i, task) in tasks.into_iter().enumerate() {
            let (id, outcome) = task.await.unwrap();
            if i == 3 {
                let e = outcome.unwrap_err();
                assert_eq!(e.entry, Some(1), "{name}");
                assert!(
                    matches!(e.error, StoreError::Stale { current } if current == existing.version),
                    "{name}: {e}"
                );
                assert!(
                    matches!(s.patient(id).await, Err(StoreError::NotFound)),
                    "{name}: its creation is undone with it"
                );
            } else {
                assert_eq!(outcome.unwrap(), vec![Written::Patient(id)], "{name}");
                assert_eq!(s.patient(id).await.unwrap().id, id);
                kept += 1;
            }
        }
        assert_eq!(kept, 5);
        assert_eq!(
            s.count_patients(w.t1.id).await.unwrap(),
            before + 5,
            "{name}"
        );
        assert_eq!(store::testing::waiting_writes(&s), 0);
        // One entry per creation kept, none for the caller rolled back.
        let report = s.verify_audit().await.unwrap();
        assert_eq!(report.checked, audited + 5, "{name}");
        assert_eq!(report.error, None, "{name}");
    }
}
