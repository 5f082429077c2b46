//! The audit trail: appended, filtered, verified, and tampering found.

use domain::audit::{AuditActor, ChainError};
use store::Engine;
use store::audit::{AuditFilter, NewAudit};

use crate::support::*;

fn entry(patient: &str, establishment: &str, action: &str) -> NewAudit {
    NewAudit {
        at_ms: NOW,
        actor: AuditActor {
            kind: "user",
            id: "u1".into(),
            role: Some("doctor"),
            establishment: Some(establishment.into()),
        },
        patient: Some(patient.into()),
        action: action.into(),
        resource: format!("Patient/{patient}"),
        outcome: "success".into(),
    }
}

async fn seed(s: &store::Store) {
    for i in 0..6 {
        let e = entry(
            &format!("p{}", i % 2),
            if i < 3 { "e1" } else { "e2" },
            "read",
        );
        let stored = s.audit(&e).await.unwrap();
        assert_eq!(stored.seq, i + 1);
    }
}

#[tokio::test]
async fn entries_are_chained_and_filtered() {
    for (name, s) in backends().await {
        seed(&s).await;
        let all = s
            .list_audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![6, 5, 4, 3, 2, 1],
            "{name}"
        );
        assert_eq!(all[0].prev_hash, all[1].hash);
        let e1 = s
            .list_audit(&AuditFilter {
                establishment: Some("e1".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(e1.len(), 3, "{name}");
        let p0 = s
            .list_audit(&AuditFilter {
                patient: Some("p0".into()),
                establishment: Some("e2".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            p0.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![5],
            "{name}"
        );
        let page = s
            .list_audit(&AuditFilter {
                before_seq: Some(3),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page[0].seq, 2);
        assert_eq!(s.get_audit(4).await.unwrap(), all[2]);
        let report = s.verify_audit().await.unwrap();
        assert_eq!((report.checked, report.error), (6, None), "{name}");
    }
}

#[tokio::test]
async fn the_application_cannot_edit_or_delete_entries() {
    for (name, s) in backends().await {
        seed(&s).await;
        assert!(
            store::testing::raw_sql(&s, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
                .await
                .is_err(),
            "{name}"
        );
        assert!(
            store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq = 2")
                .await
                .is_err(),
            "{name}"
        );
        assert_eq!(s.verify_audit().await.unwrap().error, None);
    }
}

/// An intruder with database access drops the guard triggers first.
async fn disable_guards(s: &store::Store) {
    let sql = match s.engine() {
        Engine::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Engine::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER USER;",
    };
    store::testing::raw_sql(s, sql).await.unwrap();
}

#[tokio::test]
async fn verify_finds_an_edited_entry() {
    for (name, s) in backends().await {
        seed(&s).await;
        disable_guards(&s).await;
        store::testing::raw_sql(&s, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 4")
            .await
            .unwrap();
        let r = s.verify_audit().await.unwrap();
        assert_eq!(
            (r.checked, r.error),
            (3, Some(ChainError::Edited { seq: 4 })),
            "{name}"
        );
    }
}

#[tokio::test]
async fn verify_finds_a_removed_entry_and_a_cut_tail() {
    for (name, s) in backends().await {
        seed(&s).await;
        disable_guards(&s).await;
        store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq = 2")
            .await
            .unwrap();
        assert_eq!(
            s.verify_audit().await.unwrap().error,
            Some(ChainError::Missing {
                expected: 2,
                found: 3
            }),
            "{name}"
        );
    }
    for (name, s) in backends().await {
        seed(&s).await;
        disable_guards(&s).await;
        store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq >= 5")
            .await
            .unwrap();
        assert_eq!(
            s.verify_audit().await.unwrap().error,
            Some(ChainError::Truncated {
                head_seq: 6,
                found: 4
            }),
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_appends_keep_one_chain() {
    for (name, s) in backends().await {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..10 {
                    s.audit(&entry(&format!("p{i}"), "e1", &format!("read{j}")))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let batch: Vec<NewAudit> = (0..5)
            .map(|i| entry(&format!("b{i}"), "e2", "search"))
            .collect();
        assert_eq!(s.audit_many(&batch).await.unwrap(), 5);
        let r = s.verify_audit().await.unwrap();
        assert_eq!((r.checked, r.error), (85, None), "{name}");
    }
}
