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
        // The created record is rendered as stored, without reading it back.
        assert_eq!(
            done,
            vec![
                Written::Created(Box::new(s.patient(a).await.unwrap())),
                Written::Patient(existing.id)
            ],
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

/// Concurrent callers share one commit, on both engines, each all or nothing
/// on its own: in a group where one caller's write is stale, that caller
/// alone is rolled back (its earlier write too) and told which write failed;
/// the others are kept and the audit chain holds.
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
        wait_for_group(&s, 6).await;
        assert_eq!(
            store::testing::waiting_writes(&s),
            6,
            "{name}: all six wait for the group"
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
                assert_eq!(
                    outcome.unwrap(),
                    vec![Written::Created(Box::new(s.patient(id).await.unwrap()))],
                    "{name}"
                );
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

/// Waits (up to 5 s) until `n` callers wait for the group being written.
async fn wait_for_group(s: &store::Store, n: usize) {
    for _ in 0..500 {
        if store::testing::waiting_writes(s) == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Callers that each create a record, grouped: the records without an IPP
/// are numbered from the domain's counter in order, the numbers a feed gave
/// already skipped; each record is answered as stored, with its caller's
/// instant, and has its own audit entry. A caller whose IPP is taken fails
/// alone, told which write failed, and gives its number back.
#[tokio::test]
async fn grouped_creations_are_numbered_together_and_fail_each_on_their_own() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        // A feed gave 000000002 and 000000004 already.
        for ipp in ["000000002", "000000004"] {
            let mut p = new_patient(w.t1.id, "Flux", "Donné");
            p.ipp = Some(ipp.into());
            s.create_patient(&p, &who(), NOW).await.unwrap();
        }
        let audited = s.verify_audit().await.unwrap().checked;
        // Two groups: five callers, then five with one IPP taken among them.
        let mut ipps = Vec::new();
        for (round, duplicate) in [(0_i64, None), (1, Some(2))] {
            let held = store::testing::hold_writes(&s).await;
            let mut tasks = Vec::new();
            for i in 0..5_i64 {
                let (s, t) = (s.clone(), w.t1.id);
                let mut new = new_patient(t, "Groupe", &format!("Membre {round} {i}"));
                if duplicate == Some(i) {
                    new.ipp = Some("000000002".into());
                }
                // Two callers at each instant, one alone.
                let at = NOW + 10 * round + i / 2;
                tasks.push(tokio::spawn(async move {
                    let id = PatientId::new();
                    let who = who();
                    let w = Write::CreatePatient {
                        id,
                        new: &new,
                        who: &who,
                    };
                    (id, at, s.apply_writes(&[w], at).await)
                }));
            }
            wait_for_group(&s, 5).await;
            assert_eq!(store::testing::waiting_writes(&s), 5, "{name}");
            drop(held);
            for (i, task) in tasks.into_iter().enumerate() {
                let (id, at, outcome) = task.await.unwrap();
                if duplicate == Some(i as i64) {
                    let e = outcome.unwrap_err();
                    assert_eq!(e.entry, Some(0), "{name}");
                    assert!(matches!(e.error, StoreError::Conflict(_)), "{name}: {e}");
                    assert!(matches!(s.patient(id).await, Err(StoreError::NotFound)));
                    continue;
                }
                let stored = s.patient(id).await.unwrap();
                assert_eq!(stored.updated_at_ms, at, "{name}: its caller's instant");
                assert_eq!(stored.version, 1);
                assert_eq!(
                    outcome.unwrap(),
                    vec![Written::Created(Box::new(stored.clone()))],
                    "{name}"
                );
                ipps.push(stored.ipp);
            }
        }
        ipps.sort();
        assert_eq!(
            ipps,
            [
                "000000001",
                "000000003",
                "000000005",
                "000000006",
                "000000007",
                "000000008",
                "000000009",
                "000000010",
                "000000011"
            ],
            "{name}: in order, the feed's numbers skipped, none lost to the failed caller"
        );
        let report = s.verify_audit().await.unwrap();
        assert_eq!(report.checked, audited + 9, "{name}");
        assert_eq!(report.error, None, "{name}");
    }
}
