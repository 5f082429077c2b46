//! Retention on both backends: each kind leaves in batches after its
//! cut-off, space comes back (SQLite), and SQLite's online backup.

use domain::UserId;
use store::retention::Prunable;
use store::users::{NewUser, Session, UserKind};

use crate::support::*;

async fn new_user(s: &store::Store, _w: &World, username: &str) -> UserId {
    s.create_user(
        &NewUser {
            username: username.into(),
            display_name: "Dr Test".into(),
            kind: UserKind::Professional,
            password_hash: "$argon2id$fake".into(),
            totp_secret: None,
            rpps: None,
            profession: None,
            patient: None,
            roles: vec![],
        },
        NOW,
    )
    .await
    .unwrap()
}

async fn session(s: &store::Store, hash: &str, user: UserId, csrf: &str, expires_at_ms: i64) {
    s.create_session(
        &Session {
            token_hash: hash.into(),
            user,
            csrf_token: csrf.into(),
            mfa_done: true,
            expires_at_ms,
        },
        NOW,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn expired_sessions_and_tokens_leave_in_batches() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let user = new_user(&s, &w, "retenu").await;
        for i in 0..5 {
            session(&s, &format!("h{i}"), user, "csrf", NOW + i * 1_000).await;
        }
        // Cut-off between the third and fourth expiry: three leave, two at a time.
        assert_eq!(
            s.prune_batch(Prunable::Sessions, NOW + 2_500, 2)
                .await
                .unwrap(),
            2,
            "{name}"
        );
        assert_eq!(
            s.prune_batch(Prunable::Sessions, NOW + 2_500, 2)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.prune_batch(Prunable::Sessions, NOW + 2_500, 2)
                .await
                .unwrap(),
            0
        );
        assert!(s.session("h0", NOW - 1).await.unwrap().is_none());
        assert!(s.session("h2", NOW - 1).await.unwrap().is_none());
        assert!(s.session("h3", NOW - 1).await.unwrap().is_some());
        // Every kind runs on an empty table without error, and the space of
        // each is made usable again (PostgreSQL: VACUUM of its tables).
        for kind in Prunable::ALL {
            s.prune_batch(kind, NOW, 10).await.unwrap();
        }
        s.reclaim_space(10, &Prunable::ALL, true).await.unwrap();
        assert!(s.database_size().await.unwrap().bytes > 0);
        let (size, _) = s.pool_stats();
        assert!(size >= 1);
    }
}

#[tokio::test]
async fn sqlite_gives_space_back_and_backs_up_online() {
    let url = store::testing::fresh_sqlite_url();
    let s = store::Store::connect(&url).await.unwrap();
    s.migrate(NOW).await.unwrap();
    let w = world(&s).await;
    let user = new_user(&s, &w, "volumineux").await;
    let csrf = "x".repeat(2_000);
    for i in 0..2_000 {
        session(&s, &format!("s{i}"), user, &csrf, NOW).await;
    }
    let full = s.database_size().await.unwrap();
    while s
        .prune_batch(Prunable::Sessions, NOW + 1, 500)
        .await
        .unwrap()
        > 0
    {}
    let freed = s.database_size().await.unwrap();
    assert!(freed.free_bytes > 1_000_000, "{freed:?}");
    let back = s
        .reclaim_space(100_000, &[Prunable::Sessions], false)
        .await
        .unwrap();
    assert!(back.bytes < full.bytes / 2, "{full:?} -> {back:?}");
    assert_eq!(back.free_bytes, 0);
    // A file made before (no incremental vacuum) is converted once.
    store::testing::raw_sql(&s, "PRAGMA auto_vacuum = NONE; VACUUM;")
        .await
        .unwrap();
    assert!(
        s.enable_incremental_vacuum().await.unwrap(),
        "rewritten once"
    );
    assert!(
        !s.enable_incremental_vacuum().await.unwrap(),
        "then left alone"
    );
    // A backup while a writer writes: a consistent copy, never over a file.
    let file =
        std::env::temp_dir().join(format!("parcours-store-backup-{}.db", uuid::Uuid::now_v7()));
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                session(&s, &format!("w{i}"), user, "c", NOW + 10).await;
            }
        })
    };
    s.backup_to(&file).await.unwrap();
    writer.await.unwrap();
    assert!(matches!(
        s.backup_to(&file).await,
        Err(store::StoreError::Refused(_))
    ));
    let copy = store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert!(copy.integrity_ok().await.unwrap());
    assert!(!copy.is_empty().await.unwrap());
    assert_eq!(copy.verify_audit().await.unwrap().error, None);
    copy.close().await;
    let _ = std::fs::remove_file(&file);
    // PostgreSQL is backed up by pg_dump, not here.
    let pg = store::Store::connect(&store::testing::fresh_postgres_url().await.unwrap())
        .await
        .unwrap();
    assert!(pg.is_empty().await.unwrap());
    assert!(matches!(
        pg.backup_to(&file).await,
        Err(store::StoreError::Refused(_))
    ));
}
