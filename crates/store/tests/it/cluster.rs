//! What several nodes agree on through the database: a job's period claimed
//! once, leases, attempts counted in windows, waiting-room presence and open
//! rooms.

use store::cluster::PRESENCE_STALE_MS;
use store::schedule::NewAppointment;

use crate::support::*;

#[tokio::test]
async fn a_period_is_claimed_once_and_leases_have_one_holder() {
    for (name, s) in backends().await {
        let job = format!("job-{}", rand_suffix());
        assert!(
            s.claim_job_run(&job, 7, "node-a", NOW).await.unwrap(),
            "{name}"
        );
        assert!(
            !s.claim_job_run(&job, 7, "node-b", NOW).await.unwrap(),
            "{name}: taken"
        );
        assert!(
            !s.claim_job_run(&job, 7, "node-a", NOW).await.unwrap(),
            "{name}: even by the same node"
        );
        assert!(
            s.claim_job_run(&job, 8, "node-b", NOW + 1).await.unwrap(),
            "{name}: next period"
        );
        assert_eq!(
            s.job_runs(&job, NOW).await.unwrap(),
            [(7, "node-a".to_owned()), (8, "node-b".to_owned())],
            "{name}"
        );

        let lease = format!("lease-{}", rand_suffix());
        assert!(
            s.take_lease(&lease, "a", NOW, 1_000).await.unwrap(),
            "{name}: free"
        );
        assert!(
            !s.take_lease(&lease, "b", NOW + 999, 1_000).await.unwrap(),
            "{name}: held"
        );
        assert!(
            s.take_lease(&lease, "a", NOW + 500, 1_000).await.unwrap(),
            "{name}: renewed by its holder"
        );
        assert!(
            !s.take_lease(&lease, "b", NOW + 1_400, 1_000).await.unwrap(),
            "{name}: renewal counts"
        );
        assert!(
            s.take_lease(&lease, "b", NOW + 1_500, 1_000).await.unwrap(),
            "{name}: expired, taken over"
        );
        s.release_lease(&lease, "a").await.unwrap();
        assert!(
            !s.take_lease(&lease, "a", NOW + 1_600, 1_000).await.unwrap(),
            "{name}: only the holder gives it back"
        );
        s.release_lease(&lease, "b").await.unwrap();
        assert!(
            s.take_lease(&lease, "a", NOW + 1_600, 1_000).await.unwrap(),
            "{name}: given back"
        );
    }
}

#[tokio::test]
async fn attempts_are_counted_per_window() {
    for (name, s) in backends().await {
        let b = format!("login:ip:{}", rand_suffix());
        assert_eq!(
            s.count_attempt(&b, NOW, 60_000, 2).await.unwrap(),
            Ok(()),
            "{name}"
        );
        assert_eq!(
            s.count_attempt(&b, NOW + 1_000, 60_000, 2).await.unwrap(),
            Ok(()),
            "{name}"
        );
        assert_eq!(
            s.count_attempt(&b, NOW + 2_000, 60_000, 2).await.unwrap(),
            Err(58_000),
            "{name}: third in the window"
        );
        let other = format!("login:ip:{}", rand_suffix());
        assert_eq!(
            s.count_attempt(&other, NOW + 2_000, 60_000, 2)
                .await
                .unwrap(),
            Ok(()),
            "{name}: own bucket"
        );
        assert_eq!(
            s.count_attempt(&b, NOW + 60_000, 60_000, 2).await.unwrap(),
            Ok(()),
            "{name}: a new window"
        );
        // Pruning forgets the window that is over (the other bucket's, from
        // NOW + 2 s), not the current one (from NOW + 60 s).
        assert_eq!(
            s.prune_cluster_state(NOW + 62_000, 60_000).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            s.count_attempt(&b, NOW + 62_000, 60_000, 2).await.unwrap(),
            Ok(()),
            "{name}"
        );
        assert!(
            s.count_attempt(&b, NOW + 62_000, 60_000, 2)
                .await
                .unwrap()
                .is_err(),
            "{name}: kept"
        );
    }
}

#[tokio::test]
async fn attempts_from_many_connections_at_once_all_count() {
    for (name, s) in backends().await {
        let b = format!("token:ip:{}", rand_suffix());
        let tries = (0..20).map(|_| {
            let s = s.clone();
            let b = b.clone();
            tokio::spawn(async move { s.count_attempt(&b, NOW, 60_000, 5).await.unwrap() })
        });
        let mut allowed = 0;
        for t in tries {
            if t.await.unwrap().is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5, "{name}");
    }
}

#[tokio::test]
async fn presence_follows_its_latest_connection_and_goes_stale() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let n = video_appointment(&s, &w, "Salle", "Rose").await;
        let id = s.book(&n, &[], &who(), NOW).await.unwrap();
        let other = s
            .book(
                &NewAppointment {
                    start_ms: NOW + 900_000,
                    end_ms: NOW + 1_800_000,
                    ..n.clone()
                },
                &[],
                &who(),
                NOW,
            )
            .await
            .unwrap();
        assert!(
            s.presence_of(&[id, other], NOW).await.unwrap().is_empty(),
            "{name}"
        );

        s.presence_enter(id, "conn-1", "node-a", NOW).await.unwrap();
        s.presence_devices(id, "conn-1", true, false, NOW + 10)
            .await
            .unwrap();
        let p1 = s.presence_of(&[id, other], NOW + 20).await.unwrap();
        assert_eq!(p1.len(), 1, "{name}");
        let got = p1[&id];
        assert!(
            got.connected && got.camera && !got.microphone,
            "{name}: {got:?}"
        );
        assert_eq!(got.since_ms, NOW, "{name}");

        // A reconnection on another node before the first one noticed the cut.
        s.presence_enter(id, "conn-2", "node-b", NOW + 5_000)
            .await
            .unwrap();
        s.presence_left(id, "conn-1").await.unwrap();
        let got = s.presence_of(&[id], NOW + 5_000).await.unwrap()[&id];
        assert!(got.connected, "{name}: the newer connection holds it");
        assert_eq!(got.since_ms, NOW, "{name}: waiting since the first arrival");
        // A stale device report from the old connection changes nothing.
        s.presence_devices(id, "conn-1", false, false, NOW + 5_001)
            .await
            .unwrap();
        assert!(
            s.presence_of(&[id], NOW + 5_002).await.unwrap()[&id].camera,
            "{name}"
        );

        // Its node is lost: nobody says it is alive, it shows gone.
        assert_eq!(
            s.presence_beat("node-b", NOW + 10_000).await.unwrap(),
            1,
            "{name}"
        );
        // Another node's beat does not keep it alive.
        assert_eq!(
            s.presence_beat("node-a", NOW + 30_000).await.unwrap(),
            0,
            "{name}"
        );
        assert!(
            s.presence_of(&[id], NOW + 10_000 + PRESENCE_STALE_MS - 1)
                .await
                .unwrap()[&id]
                .connected,
            "{name}"
        );
        assert!(
            !s.presence_of(&[id], NOW + 10_000 + PRESENCE_STALE_MS)
                .await
                .unwrap()[&id]
                .connected,
            "{name}"
        );
        s.presence_left(id, "conn-2").await.unwrap();
        assert!(
            !s.presence_of(&[id], NOW + 10_001).await.unwrap()[&id].connected,
            "{name}: closed"
        );

        assert!(!s.room_is_open(id).await.unwrap(), "{name}");
        s.open_room(id, NOW).await.unwrap();
        s.open_room(id, NOW + 1).await.unwrap();
        assert!(s.room_is_open(id).await.unwrap(), "{name}");
        assert!(!s.room_is_open(other).await.unwrap(), "{name}");
        s.close_room(id).await.unwrap();
        assert!(!s.room_is_open(id).await.unwrap(), "{name}");
        assert!(
            s.presence_of(&[id], NOW).await.unwrap().is_empty(),
            "{name}: presence gone with the room"
        );
    }
}
