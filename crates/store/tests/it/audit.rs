//! The audit trail: appended, filtered, verified, and tampering found.

use domain::audit::{AuditActor, ChainError, CheckpointError};
use store::Engine;
use store::audit::{AuditFilter, NewAudit, NewCheckpoint};

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
            (3, Some(ChainError::Edited { seq: 4 }.into())),
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
            Some(
                ChainError::Missing {
                    expected: 2,
                    found: 3
                }
                .into()
            ),
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
            Some(
                ChainError::Truncated {
                    head_seq: 6,
                    found: 4
                }
                .into()
            ),
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

/// Concurrent calls share transactions (the group commit), and each call's
/// entries still come back sealed, in its order, one run of the chain; a
/// call dropped while its group is written does not take the others' entries
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_appends_keep_each_call_in_one_run() {
    for (name, s) in backends().await {
        let mut tasks = Vec::new();
        for i in 0..24 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let batch: Vec<NewAudit> = (0..1 + i % 4)
                    .map(|j| entry(&format!("p{i}"), "e1", &format!("search{j}")))
                    .collect();
                (i, s.audit_many(&batch).await.unwrap())
            }));
        }
        // A call given up at once (its client gone).
        let dropped = {
            let s = s.clone();
            tokio::spawn(async move { s.audit(&entry("gone", "e1", "read")).await })
        };
        dropped.abort();
        let mut expected = 0;
        for t in tasks {
            let (i, n) = t.await.unwrap();
            assert_eq!(n, 1 + i % 4, "{name}");
            expected += n;
        }
        let all = s
            .list_audit(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        // The dropped call's entry is written whole or not at all.
        let gone = all
            .iter()
            .filter(|e| e.patient.as_deref() == Some("gone"))
            .count();
        assert!(gone <= 1, "{name}");
        assert_eq!(all.len(), expected + gone, "{name}");
        for i in 0..24 {
            let mut mine: Vec<_> = all
                .iter()
                .filter(|e| e.patient.as_deref() == Some(format!("p{i}").as_str()))
                .collect();
            mine.sort_by_key(|e| e.seq);
            let seqs: Vec<i64> = mine.iter().map(|e| e.seq).collect();
            let first = seqs[0];
            assert_eq!(
                seqs,
                (first..first + seqs.len() as i64).collect::<Vec<_>>(),
                "{name}: call {i} in one run"
            );
            let actions: Vec<&str> = mine.iter().map(|e| e.action.as_str()).collect();
            let wanted: Vec<String> = (0..seqs.len()).map(|j| format!("search{j}")).collect();
            assert_eq!(actions, wanted, "{name}: call {i} in its order");
        }
        let r = s.verify_audit().await.unwrap();
        assert_eq!((r.checked as usize, r.error), (all.len(), None), "{name}");
        // A single call returns its entry sealed with its place in the chain.
        let last = s.audit(&entry("p0", "e2", "read")).await.unwrap();
        assert_eq!(last.seq as usize, all.len() + 1, "{name}");
        assert_eq!(last.prev_hash, all[0].hash, "{name}");
    }
}

/// A live page's views: one entry per session and patient, however often the
/// page is refreshed and however many rows name the patient; entries without
/// a patient are all appended; another session is audited again.
#[tokio::test]
async fn views_are_audited_once_per_session_and_patient() {
    for (name, s) in backends().await {
        let page = vec![
            entry("p1", "e1", "read"),
            entry("p2", "e1", "read"),
            entry("p1", "e1", "read"),
        ];
        assert_eq!(
            s.audit_views_once("sess-a", &page).await.unwrap(),
            2,
            "{name}"
        );
        // Refreshed: nothing new; a third patient appears.
        let mut again = page.clone();
        again.push(entry("p3", "e1", "read"));
        assert_eq!(
            s.audit_views_once("sess-a", &again).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            s.audit_views_once("sess-a", &[entry("p2", "e1", "read")])
                .await
                .unwrap(),
            0,
            "{name}"
        );
        // Another session sees them for the first time.
        assert_eq!(
            s.audit_views_once("sess-b", &again).await.unwrap(),
            3,
            "{name}"
        );
        // No patient: always appended.
        let mut login = entry("x", "e1", "login");
        login.patient = None;
        assert_eq!(
            s.audit_views_once("sess-a", &[login.clone(), login])
                .await
                .unwrap(),
            2,
            "{name}"
        );
        let all = s
            .list_audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let per = |p: &str| {
            all.iter()
                .filter(|e| e.patient.as_deref() == Some(p))
                .count()
        };
        assert_eq!(
            (per("p1"), per("p2"), per("p3"), all.len()),
            (2, 2, 2, 8),
            "{name}"
        );
        let r = s.verify_audit().await.unwrap();
        assert_eq!((r.checked, r.error), (8, None), "{name}");
    }
}

/// PostgreSQL refuses a NUL character in text: the call that carries one gets
/// the error, and the calls whose entries were in its group are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_entry_fails_only_its_own_call() {
    for (name, s) in backends().await {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let action = if i == 7 {
                    "read\0".to_owned()
                } else {
                    "read".to_owned()
                };
                s.audit(&entry(&format!("p{i}"), "e1", &action))
                    .await
                    .is_ok()
            }));
        }
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            let written = t.await.unwrap();
            if i != 7 {
                assert!(written, "{name}: call {i}");
            } else if s.engine() == Engine::Postgres {
                assert!(!written, "{name}: the NUL entry is refused");
            }
            ok += usize::from(written);
        }
        let r = s.verify_audit().await.unwrap();
        assert_eq!((r.checked as usize, r.error), (ok, None), "{name}");
    }
}

#[tokio::test]
async fn entries_leave_only_under_a_checkpoint_that_proves_the_cut() {
    for (name, s) in backends().await {
        seed(&s).await;
        let head = s.verify_audit().await.unwrap();
        assert_eq!((head.checked, head.error), (6, None), "{name}");
        // Before any checkpoint, no entry may leave.
        assert_eq!(s.remove_cut_audit(100).await.unwrap(), 0);
        assert!(
            store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq = 1")
                .await
                .is_err(),
            "{name}"
        );
        // A cut of entries 1..=3: the checkpoint reads their times and last hash.
        let third = s.get_audit(3).await.unwrap();
        let cp = s
            .add_audit_checkpoint(&NewCheckpoint {
                from_seq: 1,
                through_seq: 3,
                archive: "audit-1-3.jsonl".into(),
                archive_sha256: "ab".repeat(32),
                at_ms: NOW + 10,
            })
            .await
            .unwrap();
        assert_eq!((cp.seq, cp.through_hash.as_str()), (1, third.hash.as_str()));
        // Entries after the cut still may not leave, and the next cut must follow.
        assert!(
            store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq = 4")
                .await
                .is_err(),
            "{name}"
        );
        for (from, through) in [(1, 4), (5, 6), (4, 9)] {
            let r = s
                .add_audit_checkpoint(&NewCheckpoint {
                    from_seq: from,
                    through_seq: through,
                    archive: "x".into(),
                    archive_sha256: "0".into(),
                    at_ms: NOW,
                })
                .await;
            assert!(r.is_err(), "{name}: {from}..{through}");
        }
        // Removed in batches; the kept chain verifies from the cut.
        assert_eq!(s.remove_cut_audit(2).await.unwrap(), 2);
        assert_eq!(s.remove_cut_audit(2).await.unwrap(), 1);
        assert_eq!(s.remove_cut_audit(2).await.unwrap(), 0);
        let v = s.verify_audit().await.unwrap();
        assert_eq!(
            (v.checked, v.cut_through, v.checkpoints, v.error),
            (3, 3, 1, None),
            "{name}"
        );
        // Checkpoints are append-only.
        for sql in [
            "UPDATE audit_checkpoints SET through_seq = 4",
            "DELETE FROM audit_checkpoints",
        ] {
            assert!(
                store::testing::raw_sql(&s, sql).await.is_err(),
                "{name}: {sql}"
            );
        }
        // Forged by someone who drops the guards: the verification says so.
        let drop = match s.engine() {
            Engine::Sqlite => "DROP TRIGGER audit_checkpoints_no_update;",
            Engine::Postgres => "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;",
        };
        store::testing::raw_sql(&s, drop).await.unwrap();
        store::testing::raw_sql(&s, "UPDATE audit_checkpoints SET archive_sha256 = 'cd'")
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        assert_eq!(
            v.error,
            Some(CheckpointError::Edited { seq: 1 }.into()),
            "{name}"
        );
        // A cut range is found from the entries' times.
        assert_eq!(
            s.audit_cut_range(NOW + 1_000_000, 100).await.unwrap(),
            Some((4, 6))
        );
        assert_eq!(
            s.audit_cut_range(NOW + 1_000_000, 2).await.unwrap(),
            Some((4, 5))
        );
        assert_eq!(s.audit_cut_range(0, 100).await.unwrap(), None);
    }
}

/// A refresh that shows no one new is judged on a reader: it returns while
/// another connection holds the write lock, where a view new to the session
/// waits for it (the control), then is written once it is released.
#[tokio::test]
async fn known_views_do_not_wait_for_the_writer() {
    use sqlx::Connection;
    use std::time::Duration;
    let urls = [
        ("sqlite", store::testing::fresh_sqlite_url()),
        (
            "postgres",
            store::testing::fresh_postgres_url().await.unwrap(),
        ),
    ];
    for (name, url) in urls {
        let s = store::Store::connect(&url).await.unwrap();
        s.migrate(NOW).await.unwrap();
        assert_eq!(
            s.audit_views_once("sess-a", &[entry("p1", "e1", "read")])
                .await
                .unwrap(),
            1,
            "{name}"
        );
        // Another connection takes the write lock (SQLite) or keeps
        // writers off the views' table (PostgreSQL).
        let mut lite = None;
        let mut pg = None;
        if name == "sqlite" {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            lite = Some(c);
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE audit_views IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            pg = Some(c);
        }
        let known = tokio::time::timeout(
            Duration::from_secs(5),
            s.audit_views_once("sess-a", &[entry("p1", "e1", "read")]),
        )
        .await;
        assert_eq!(
            known.expect(name).unwrap(),
            0,
            "{name}: seen, nothing written"
        );
        let new = tokio::time::timeout(
            Duration::from_millis(500),
            s.audit_views_once("sess-a", &[entry("p2", "e1", "read")]),
        )
        .await;
        assert!(new.is_err(), "{name}: a new view waits for the writer");
        if let Some(mut c) = lite {
            sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
        }
        if let Some(mut c) = pg {
            sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
        }
        assert_eq!(
            s.audit_views_once(
                "sess-a",
                &[entry("p1", "e1", "read"), entry("p2", "e1", "read")]
            )
            .await
            .unwrap(),
            1,
            "{name}: the new view written once the lock is gone"
        );
        s.close().await;
    }
}
