//! ORU^R01 results leave through the outbox over a real MLLP socket: delivered on
//! AA, dead letter on AE, retried with backoff when nobody answers.

use crate::helpers::*;

async fn report(app: &TestApp, control: &str) -> interop::oru::OruReport {
    let patient = app.demo_patient("Muller").await;
    interop::oru::OruReport {
        control_id: control.into(),
        timestamp: "20261123101500+0100".into(),
        receiver: ("DPI".into(), "CHVL".into()),
        patient,
        demographics: Default::default(),
        domain_oid: server::demo::DEMO_DOMAIN_OID.into(),
        order_id: "Q1".into(),
        service: ("TLSV".into(), "Télésurveillance".into(), "L".into()),
        observations: vec![
            interop::oru::Observation {
                code: "8310-5".into(),
                display: "Température".into(),
                system: "LN".into(),
                value: interop::oru::ObsValue::Numeric {
                    value: "38.5".into(),
                    unit: "Cel".into(),
                },
                abnormal: Some("H".into()),
            },
            interop::oru::Observation {
                code: "11502-2".into(),
                display: "Compte rendu".into(),
                system: "LN".into(),
                value: interop::oru::ObsValue::Pdf(b"%PDF-1.4\n%fin".to_vec()),
                abnormal: None,
            },
        ],
    }
}

async fn pending(app: &TestApp) -> Vec<store::outbox::OutboxMessage> {
    app.store
        .outbox_pending(server::delivery::ORU_TOPIC, 10)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oru_is_delivered_once_and_valid_for_hl7apy() {
    for backend in BACKENDS {
        let (addr, got) = receiver("AA").await;
        let app = spawn_app_with(backend, |c| c.oru_destination = Some(addr.to_string())).await;
        let r = report(&app, "ORU-1").await;
        assert!(
            server::services::oru::enqueue(app.state.ctx(), &r)
                .await
                .unwrap()
        );
        assert!(
            !server::services::oru::enqueue(app.state.ctx(), &r)
                .await
                .unwrap(),
            "{backend}: same report, one message"
        );
        eventually("delivery", async || got.lock().unwrap().len() == 1).await;
        eventually("delivered in the outbox", async || {
            pending(&app).await.is_empty()
        })
        .await;
        let received = got.lock().unwrap().clone();
        assert!(received[0].contains("ORU^R01^ORU_R01|ORU-1|"), "{backend}");
        validate_hl7(&received);
    }
}

#[tokio::test]
async fn a_refusal_is_a_dead_letter_and_silence_is_retried() {
    let (addr, got) = receiver("AE").await;
    let app = spawn_app_with("sqlite", |c| c.oru_destination = Some(addr.to_string())).await;
    server::services::oru::enqueue(app.state.ctx(), &report(&app, "ORU-AE").await)
        .await
        .unwrap();
    eventually("dead letter", async || {
        !app.store.outbox_dead(10).await.unwrap().is_empty()
    })
    .await;
    let dead = app.store.outbox_dead(10).await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 1, "sent once, not retried");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("AE: patient inconnu"),
        "{:?}",
        dead[0].last_error
    );

    // Nobody listening: the attempt fails and is scheduled later (the clock is
    // frozen, so it stays scheduled), not dead.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn_app_with("sqlite", |c| c.oru_destination = Some(closed.to_string())).await;
    server::services::oru::enqueue(app.state.ctx(), &report(&app, "ORU-DOWN").await)
        .await
        .unwrap();

    eventually("a failed attempt", async || {
        pending(&app).await.first().is_some_and(|m| m.attempts == 1)
    })
    .await;
    let m = pending(&app).await.remove(0);
    assert!(
        m.last_error.as_deref().unwrap().contains("connexion"),
        "{:?}",
        m.last_error
    );
    assert!(m.next_attempt_at_ms > app.clock.now_ms(), "backoff");
    assert!(app.store.outbox_dead(10).await.unwrap().is_empty());
    // Without a destination, enqueuing is refused clearly.
    let bare = spawn_app("sqlite").await;
    let e = server::services::oru::enqueue(bare.state.ctx(), &report(&bare, "X").await)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("PARCOURS_ORU_DESTINATION"));
}
