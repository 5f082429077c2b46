//! The outbox: idempotent enqueue, leases, backoff, dead letters, revival.

use store::outbox::{NewMessage, RetryPolicy};

use crate::support::*;

fn msg(key: &str) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        topic: "hl7.oru".into(),
        destination: "mllp://127.0.0.1:2576".into(),
        payload: format!("MSH|{key}"),
        establishment: None,
    }
}

#[tokio::test]
async fn enqueue_is_idempotent_and_claims_are_leased() {
    for (name, s) in backends().await {
        assert!(s.enqueue(&msg("a"), NOW).await.unwrap(), "{name}");
        assert!(
            !s.enqueue(&msg("a"), NOW).await.unwrap(),
            "{name}: same key is one message"
        );
        assert!(s.enqueue(&msg("b"), NOW + 10).await.unwrap());
        assert!(
            s.claim_outbox("hl7.oru", NOW - 1, 1_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: nothing due yet"
        );
        let got = s
            .claim_outbox("hl7.oru", NOW + 10, 1_000, 10)
            .await
            .unwrap();
        assert_eq!(
            got.iter()
                .map(|m| m.idempotency_key.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "b"],
            "{name}"
        );
        assert!(
            s.claim_outbox("hl7.oru", NOW + 500, 1_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: leased"
        );
        assert!(
            s.claim_outbox("other", NOW + 5_000, 1_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: other topic"
        );
        // The lease ends: a crashed worker's messages come back.
        assert_eq!(
            s.claim_outbox("hl7.oru", NOW + 1_010, 1_000, 1)
                .await
                .unwrap()
                .len(),
            1
        );
        s.outbox_delivered(&got[0].id, NOW + 1_100).await.unwrap();
        s.outbox_delivered(&got[1].id, NOW + 1_100).await.unwrap();
        assert!(
            s.claim_outbox("hl7.oru", NOW + 100_000, 1_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}: delivered"
        );
        assert!(matches!(
            s.outbox_delivered("nope", NOW).await,
            Err(store::StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn failures_back_off_then_die_and_can_be_revived() {
    let policy = RetryPolicy {
        base_ms: 100,
        max_delay_ms: 1_000,
        max_attempts: 3,
    };
    for (name, s) in backends().await {
        s.enqueue(&msg("x"), NOW).await.unwrap();
        let m = s
            .claim_outbox("hl7.oru", NOW, 10_000, 1)
            .await
            .unwrap()
            .remove(0);
        assert!(
            !s.outbox_failed(&m.id, "refused", NOW, &policy)
                .await
                .unwrap()
        );
        assert!(
            s.claim_outbox("hl7.oru", NOW + 99, 10_000, 1)
                .await
                .unwrap()
                .is_empty(),
            "{name}: backing off"
        );
        let m = s
            .claim_outbox("hl7.oru", NOW + 100, 10_000, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            (m.attempts, m.last_error.as_deref()),
            (1, Some("refused")),
            "{name}"
        );
        assert!(
            !s.outbox_failed(&m.id, "refused", NOW + 100, &policy)
                .await
                .unwrap()
        );
        assert!(
            s.claim_outbox("hl7.oru", NOW + 299, 10_000, 1)
                .await
                .unwrap()
                .is_empty(),
            "{name}: 200 ms now"
        );
        let m = s
            .claim_outbox("hl7.oru", NOW + 300, 10_000, 1)
            .await
            .unwrap()
            .remove(0);
        assert!(
            s.outbox_failed(&m.id, "refused", NOW + 300, &policy)
                .await
                .unwrap(),
            "{name}: third failure is dead"
        );
        assert!(
            s.claim_outbox("hl7.oru", NOW + 100_000, 10_000, 1)
                .await
                .unwrap()
                .is_empty()
        );
        let dead = s.outbox_dead(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].dead_at_ms, Some(NOW + 300), "{name}");
        s.outbox_revive(&dead[0].id, NOW + 400).await.unwrap();
        let m = s
            .claim_outbox("hl7.oru", NOW + 400, 10_000, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(m.attempts, 0, "{name}");
        assert!(
            matches!(
                s.outbox_revive(&m.id, NOW).await,
                Err(store::StoreError::NotFound)
            ),
            "{name}: not dead"
        );
    }
}

#[tokio::test]
async fn concurrent_workers_never_share_a_message() {
    for (name, s) in backends().await {
        for i in 0..40 {
            s.enqueue(&msg(&format!("m{i}")), NOW).await.unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim_outbox("hl7.oru", NOW, 60_000, 3).await.unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|m| m.idempotency_key));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            (n, all.len()),
            (40, 40),
            "{name}: each message claimed exactly once"
        );
    }
}

#[tokio::test]
async fn a_message_keeps_whose_it_is() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let key = format!("whose-{}", rand_suffix());
        let m = NewMessage {
            idempotency_key: key.clone(),
            topic: "notify".into(),
            establishment: Some(w.e2),
            ..msg("x")
        };
        s.enqueue(&m, NOW).await.unwrap();
        let got = s.outbox_message(&key).await.unwrap().unwrap();
        assert_eq!(got.establishment(), Some(w.e2), "{name}");
        s.enqueue(&msg(&format!("plain-{key}")), NOW).await.unwrap();
        let plain = s
            .outbox_message(&format!("plain-{key}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(plain.establishment(), None, "{name}: the instance's");
    }
}

#[tokio::test]
async fn a_late_failure_leaves_a_dead_or_delivered_message_as_it_is() {
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    for (name, s) in backends().await {
        s.enqueue(&msg("refused"), NOW).await.unwrap();
        s.enqueue(&msg("done"), NOW).await.unwrap();
        let claimed = s.claim_outbox("hl7.oru", NOW, 10_000, 2).await.unwrap();
        let id = |k: &str| {
            claimed
                .iter()
                .find(|m| m.idempotency_key == k)
                .unwrap()
                .id
                .clone()
        };
        // The receiver's refusal kills it; a worker's late timeout says nothing more.
        assert!(
            s.outbox_failed(&id("refused"), "AR: patient inconnu", NOW, &once)
                .await
                .unwrap()
        );
        assert!(
            s.outbox_failed(
                &id("refused"),
                "délai dépassé",
                NOW + 5,
                &RetryPolicy::default()
            )
            .await
            .unwrap(),
            "{name}: still dead"
        );
        let m = s.outbox_message("refused").await.unwrap().unwrap();
        assert_eq!(
            (m.attempts, m.last_error.as_deref(), m.dead_at_ms),
            (1, Some("AR: patient inconnu"), Some(NOW)),
            "{name}"
        );
        // Delivered: a late failure neither counts nor schedules anything.
        s.outbox_delivered(&id("done"), NOW).await.unwrap();
        let before = s.outbox_message("done").await.unwrap().unwrap();
        assert!(
            !s.outbox_failed(&id("done"), "délai dépassé", NOW + 5, &once)
                .await
                .unwrap()
        );
        let m = s.outbox_message("done").await.unwrap().unwrap();
        assert_eq!(
            (m.attempts, m.last_error, m.dead_at_ms, m.delivered_at_ms),
            (before.attempts, None, None, Some(NOW)),
            "{name}"
        );
        assert!(matches!(
            s.outbox_failed("nope", "x", NOW, &once).await,
            Err(store::StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn dead_letters_by_establishment_backlog_and_discard() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let once = RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        };
        let mut theirs = msg("dead-e1");
        theirs.establishment = Some(w.e1);
        for m in [&theirs, &msg("dead-instance"), &msg("waiting")] {
            s.enqueue(m, NOW).await.unwrap();
        }
        for key in ["dead-e1", "dead-instance"] {
            let id = s.outbox_message(key).await.unwrap().unwrap().id;
            assert!(
                s.outbox_failed(&id, "refusé", NOW + 5, &once)
                    .await
                    .unwrap()
            );
        }
        let of_e1 = s.outbox_dead_of(Some(w.e1), 10).await.unwrap();
        assert_eq!(of_e1.len(), 1, "{name}");
        assert_eq!(of_e1[0].idempotency_key, "dead-e1");
        assert!(s.outbox_dead_of(Some(w.e2), 10).await.unwrap().is_empty());
        let instance = s.outbox_dead_of(None, 10).await.unwrap();
        assert_eq!(instance.len(), 1);
        assert_eq!(instance[0].idempotency_key, "dead-instance");
        // The backlog per topic: one waiting since NOW, two dead.
        let b = s.outbox_backlog().await.unwrap();
        assert_eq!(b.len(), 1, "{name}: {b:?}");
        assert_eq!(
            (b[0].topic.as_str(), b[0].waiting, b[0].oldest_ms, b[0].dead),
            ("hl7.oru", 1, Some(NOW), 2)
        );
        // Discard: only a dead letter, and it leaves.
        let waiting = s.outbox_message("waiting").await.unwrap().unwrap().id;
        assert!(matches!(
            s.outbox_discard(&waiting).await,
            Err(store::StoreError::NotFound)
        ));
        s.outbox_discard(&of_e1[0].id).await.unwrap();
        assert!(s.outbox_message("dead-e1").await.unwrap().is_none());
        assert!(matches!(
            s.outbox_discard(&of_e1[0].id).await,
            Err(store::StoreError::NotFound)
        ));
        assert_eq!(
            s.outbox_by_id(&waiting).await.unwrap().idempotency_key,
            "waiting"
        );
    }
}
