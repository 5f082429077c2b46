//! Several nodes on one PostgreSQL database and the NATS server (127.0.0.1:4222):
//! timer jobs run once across three nodes; a patient waiting on one node is seen
//! live by her doctor on another, let in, and the room relays between them; a
//! session ended on one node closes its sockets on the other; an admission on
//! one node refreshes the regional view on another; the same HL7 message sent
//! to two nodes is filed once and both answers are the first ACK; a FHIR
//! subscription's WebSocket on one node hears the change made on another.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use server::snapshots::{Timer, run_due};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

const NATS: &str = "nats://127.0.0.1:4222";

/// `n` nodes on one fresh PostgreSQL database (the first seeds the demo),
/// on one clock, each with its own name; with NATS when `nats`.
async fn cluster(n: usize, nats: bool) -> Vec<TestApp> {
    let url = store::testing::fresh_postgres_url()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    let clock = domain::ManualClock::new(jiff::Timestamp::from_second(1_795_000_000).unwrap());
    let mut nodes = Vec::new();
    for i in 0..n {
        let name = format!("node-{}-{}", i + 1, uuid::Uuid::new_v4().simple());
        nodes.push(
            spawn_node(&url, clock.clone(), i == 0, |c| {
                c.node_id = Some(name);
                if nats {
                    c.nats_url = Some(NATS.into());
                }
            })
            .await,
        );
    }
    nodes
}

async fn next_text(s: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .expect("readable");
        if let Message::Text(t) = m {
            return t.to_string();
        }
    }
}

/// Whether the socket is closed by the server within 5 s (messages before
/// the close are skipped).
async fn closes(s: &mut Ws) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, s.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test]
async fn timer_jobs_run_once_across_three_nodes() {
    let nodes = cluster(3, false).await;
    let store = &nodes[0].store;
    let since = nodes[0].clock.now_ms() - 1;
    // Two alerts raised by a patient followed at home, due within 12 h.
    let lambert = nodes[0].demo_patient("Lambert").await;
    let enrolment = store
        .enrolments_of(lambert.id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.status == "active")
        .expect("Mme Lambert is followed at home");
    for item in ["fever", "other"] {
        let alert = store::monitoring::NewAlert {
            level: domain::monitoring::AlertLevel::Warning,
            item: item.into(),
            reason: "signalé par la patiente".into(),
            advice: "Une infirmière vous rappellera.".into(),
            mute: None,
        };
        store
            .raise_patient_alert(
                &enrolment,
                &alert,
                None,
                "patient",
                nodes[0].clock.now_ms() + 12 * 3_600_000,
                &domain::audit::AuditActor::system("test"),
                nodes[0].clock.now_ms(),
            )
            .await
            .unwrap();
    }
    // Every node's timers looked at start: each job ran once for this period.
    eventually("every job's first period", async || {
        let mut all = true;
        for job in Timer::ALL {
            all &= !store.job_runs(job.name(), since).await.unwrap().is_empty();
        }
        all
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for job in Timer::ALL {
        assert_eq!(
            store.job_runs(job.name(), since).await.unwrap().len(),
            1,
            "{}",
            job.name()
        );
    }
    // Then period after period, the three nodes all try every job at once:
    // one runs it, the others are told it was not theirs. The two alerts,
    // past their SLA once 12 h are over, are escalated once each in all.
    let mut escalated = 0;
    let mut ran_by = std::collections::HashSet::new();
    for round in 1..=13 {
        nodes[0].clock.advance_secs(3_600);
        for job in Timer::ALL {
            let (a, b, c) = tokio::join!(
                run_due(&nodes[0].state, job),
                run_due(&nodes[1].state, job),
                run_due(&nodes[2].state, job)
            );
            let ran: Vec<usize> = [a, b, c].into_iter().filter_map(Result::unwrap).collect();
            assert_eq!(ran.len(), 1, "{} in round {round}: {ran:?}", job.name());
            if job == Timer::Escalation {
                escalated += ran[0];
            }
        }
        // The same period asked again runs nothing.
        assert_eq!(
            run_due(&nodes[1].state, Timer::Escalation).await.unwrap(),
            None
        );
    }
    assert_eq!(escalated, 2, "the two alerts, once each");
    for job in Timer::ALL {
        let runs = store.job_runs(job.name(), since).await.unwrap();
        assert_eq!(runs.len(), 14, "{}: one run a period", job.name());
        let periods: std::collections::HashSet<i64> = runs.iter().map(|(p, _)| *p).collect();
        assert_eq!(periods.len(), 14, "{}", job.name());
        ran_by.extend(runs.into_iter().map(|(_, n)| n));
    }
    assert!(
        ran_by.len() >= 2,
        "the runs fall on several nodes: {ran_by:?}"
    );
}

#[tokio::test]
async fn live_events_cross_nodes_over_nats() {
    let nodes = cluster(2, true).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    assert!(a.state.live.is_clustered() && b.state.live.is_clustered());
    let lambert = a.demo_patient("Lambert").await;
    let appt = a
        .store
        .appointments_of_patient(lambert.id)
        .await
        .unwrap()
        .remove(0); // the demo's video consultation
    a.clock
        .advance_secs(((appt.start_ms - a.state.now_ms()) / 1000 - 3600).max(0));
    // One login serves every node (sessions are in the database).
    let doctor = a.login("dr.martin").await;
    let patient = b.login(server::demo::PATIENT_LOGIN).await;

    // The doctor's list on node A; the patient arrives on node B.
    let mut list = a.ws("/salle-attente/ws", &doctor).await.unwrap();
    let mut waiting = b
        .ws(&format!("/rdv/{}/salle/ws", appt.id), &patient)
        .await
        .unwrap();
    waiting
        .send(Message::Text(
            "{\"camera\":true,\"microphone\":true}".into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_text(&mut list).await, "salle");
    eventually(
        "the patient in the doctor's list on the other node",
        async || {
            let t = a.get_page("/salle-attente/table", &doctor).await.page();
            t.contains("data-presence=\"en attente\"") && t.contains("caméra ok, micro ok")
        },
    )
    .await;

    // Let in on node A: the page on node B is told to enter.
    a.let_in(&doctor, &appt.id.to_string()).await;
    assert_eq!(next_text(&mut waiting).await, "entrer");

    // The room: the doctor on A, the patient on B; messages cross both ways.
    let room = format!("/consultation/{}/ws", appt.id);
    let mut d = a.ws(&room, &doctor).await.unwrap();
    let mut p = b.ws(&room, &patient).await.unwrap();
    let joined = next_text(&mut d).await;
    assert!(joined.contains("joined"), "{joined}");
    p.send(Message::Text(r#"{"type":"chat","text":"bonjour"}"#.into()))
        .await
        .unwrap();
    let mut got = next_text(&mut d).await;
    while !got.contains("bonjour") {
        got = next_text(&mut d).await;
    }
    d.send(Message::Text(r#"{"type":"offer","sdp":"v=0"}"#.into()))
        .await
        .unwrap();
    let mut got = next_text(&mut p).await;
    while !got.contains("offer") {
        got = next_text(&mut p).await;
    }

    // Node B goes away: the patient reconnects to node A, the room is still
    // open there (the database says so) and the doctor hears her come back.
    drop(p);
    drop(waiting);
    let mut again = a
        .ws(&format!("/rdv/{}/salle/ws", appt.id), &patient)
        .await
        .unwrap();
    assert_eq!(next_text(&mut again).await, "entrer");
    let mut p = a.ws(&room, &patient).await.unwrap();
    let mut got = next_text(&mut d).await;
    while !got.contains("joined") {
        got = next_text(&mut d).await;
    }
    p.send(Message::Text(
        r#"{"type":"chat","text":"me revoilà"}"#.into(),
    ))
    .await
    .unwrap();
    let mut got = next_text(&mut d).await;
    while !got.contains("me revoil") {
        got = next_text(&mut d).await;
    }

    // The doctor signs out on node B: her sockets on node A close at once
    // (through JetStream), not at the next minute's check.
    let page = b.get_page("/", &doctor).await;
    let r = b
        .post_form(
            "/logout",
            &format!("parcours_session={doctor}"),
            &[("csrf", &csrf_field(&page.text))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(closes(&mut d).await, "the room socket closed");
    assert!(closes(&mut list).await, "the list socket closed");

    // An admission sent to node B refreshes the regional view open on node A.
    let coord = a.login("coord.garnier").await;
    let mut region = a.ws("/region/ws", &coord).await.unwrap();
    let mut mllp = Mllp::connect(b).await;
    let ack = mllp
        .send(
            "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|202611231000||ADT^A01^ADT_A01|cl-1|P|2.5\r\
             EVN||202611231000\r\
             PID|1||BCL1^^^CHVL&450000021&M^PI||Lit^Anne^^^^^L||19600101|F\r\
             PV1|1|I|REA^1^1||||||||||||||||CL1\r\
             ZBE|CL1-1^CHVL|202611231000||INSERT|N\r"
                .as_bytes(),
        )
        .await;
    assert_eq!(ack_code(&ack).0, "AA", "{ack}");
    assert_eq!(next_text(&mut region).await, "lits");
}

#[tokio::test]
async fn a_message_sent_to_two_nodes_at_once_is_filed_once() {
    let nodes = cluster(2, false).await;
    let message = |control: &str| {
        format!(
            "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|202611231000||ADT^A28^ADT_A05|{control}|P|2.5\r\
             EVN||202611231000\r\
             PID|1||DUP{control}^^^CHVL&450000021&M^PI||Double^Anne^^^^^L||19600101|F\r"
        )
    };
    let count = async || {
        let mut n = 0;
        for t in nodes[0].store.territories().await.unwrap() {
            n += nodes[0].store.count_patients(t.id).await.unwrap();
        }
        n
    };
    let before = count().await;
    for round in 0..10 {
        let control = format!("dup-{round}");
        let m = message(&control);
        let mut c1 = Mllp::connect(&nodes[0]).await;
        let mut c2 = Mllp::connect(&nodes[1]).await;
        let (ack1, ack2) = tokio::join!(c1.send(m.as_bytes()), c2.send(m.as_bytes()));
        assert_eq!(ack_code(&ack1).0, "AA", "{ack1}");
        assert_eq!(
            ack1, ack2,
            "round {round}: the second answer is the first ACK"
        );
        let logged = nodes[0]
            .store
            .hl7_message_for("GAM|CHVL", &control)
            .await
            .unwrap();
        assert!(logged.is_some(), "round {round}");
    }
    assert_eq!(
        count().await - before,
        10,
        "one record per message, none filed twice"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_counted_across_nodes() {
    let url = store::testing::fresh_postgres_url()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    let clock = domain::ManualClock::new(jiff::Timestamp::from_second(1_795_000_000).unwrap());
    let a = spawn_node(&url, clock.clone(), true, |c| {
        c.login_attempts_per_minute = 4
    })
    .await;
    let b = spawn_node(&url, clock.clone(), false, |c| {
        c.login_attempts_per_minute = 4
    })
    .await;
    // Wrong passwords for one account, alternately on each node: the fifth
    // is refused wherever it lands. The token endpoint has its own bucket,
    // shared by the nodes as well.
    let token = async |node: &TestApp| {
        read(
            node.http
                .post(node.url("/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "inconnu"),
                    ("client_secret", "mauvais"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await
        .status
    };
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        assert_eq!(
            node.password_step("sec.durand", "mauvais").await.status,
            401,
            "attempt {i}"
        );
    }
    assert_eq!(a.password_step("sec.durand", "mauvais").await.status, 429);
    assert_eq!(b.password_step("sec.durand", "mauvais").await.status, 429);
    for node in [&a, &b, &a, &b] {
        assert_eq!(token(node).await, 401);
    }
    assert_eq!(token(&b).await, 429, "the token bucket is shared too");
    // A new minute: allowed again, on both.
    clock.advance_secs(61);
    assert_eq!(b.password_step("ide.petit", "mauvais").await.status, 401);
}

#[tokio::test]
async fn a_node_that_cannot_reach_nats_does_not_start() {
    let url = store::testing::fresh_sqlite_url();
    let store = store::Store::connect(&url).await.unwrap();
    let port = free_port();
    let config = server::Config {
        listen: "127.0.0.1:0".into(),
        mllp_listen: "127.0.0.1:0".into(),
        nats_url: Some(format!("nats://127.0.0.1:{port}")),
        ..server::Config::default()
    };
    let clock = domain::ManualClock::new(jiff::Timestamp::from_second(1_795_000_000).unwrap());
    let err = server::Application::build_with_store(config, store, std::sync::Arc::new(clock))
        .await
        .err()
        .expect("no NATS, no node");
    let text = format!("{err:#}");
    assert!(text.contains("connexion à NATS"), "{text}");
}

/// A WebSocket bound on one node hears the ping of a change made on another
/// (the subscription made on a third's HTTP: the database holds it).
#[tokio::test]
async fn a_subscription_ping_crosses_nodes_over_nats() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let nodes = cluster(2, true).await;
    let token = nodes[0].token().await;
    let r = nodes[0]
        .send_json(
            reqwest::Method::POST,
            "/fhir/Subscription",
            &token,
            &serde_json::json!({"resourceType": "Subscription", "status": "requested", "reason": "r",
                                "criteria": "Flag", "channel": {"type": "websocket"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sid = r.json()["id"].as_str().unwrap().to_owned();
    let mut req = format!(
        "{}/fhir/Subscription/$websocket",
        nodes[1].base.replacen("http://", "ws://", 1)
    )
    .into_client_request()
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(format!("bind {sid}").into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, format!("bound {sid}"));
    // An alert raised through node 1.
    let muller = nodes[0].demo_patient("Muller").await.id;
    let r = nodes[0]
        .send_json(
            reqwest::Method::POST,
            "/fhir/QuestionnaireResponse",
            &token,
            &serde_json::json!({
                "resourceType": "QuestionnaireResponse",
                "questionnaire": "urn:parcours:questionnaire:infectious-home",
                "status": "completed",
                "subject": {"reference": format!("Patient/{muller}")},
                "item": [
                    {"linkId": "temperature", "answer": [{"valueDecimal": 37.0}]},
                    {"linkId": "spo2", "answer": [{"valueInteger": 90}]},
                    {"linkId": "dyspnoea", "answer": [{"valueCoding": {"system": "urn:parcours:ctcae-grade", "code": "0"}}]},
                    {"linkId": "worse", "answer": [{"valueBoolean": false}]}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(next_text(&mut ws).await, format!("ping {sid}"));
}
