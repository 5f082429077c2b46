//! The binary's subcommands, run as a user would, on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

fn parcours(db: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("parcours-cli-{}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_parcours"));
    c.args(args)
        .env("PARCOURS_DATABASE_URL", db)
        .env("PARCOURS_DATA_DIR", &dir)
        .env("PARCOURS_LOG", "warn");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn databases() -> Vec<(&'static str, String)> {
    vec![
        ("sqlite", store::testing::fresh_sqlite_url()),
        (
            "postgres",
            store::testing::fresh_postgres_url()
                .await
                .expect("PostgreSQL on 127.0.0.1:5432"),
        ),
    ]
}

#[tokio::test]
async fn demo_seed_is_idempotent_and_audit_verify_catches_tampering() {
    for (backend, db) in databases().await {
        let o = parcours(&db, &["demo", "--seed-only"], &[]);
        assert!(
            o.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout(&o).contains("dr.martin") && stdout(&o).contains("demo-integration"),
            "{}",
            stdout(&o)
        );
        let again = parcours(&db, &["demo", "--seed-only"], &[]);
        assert!(
            stdout(&again).contains("(0 éléments créés, 0 messages ADT"),
            "{backend}: {}",
            stdout(&again)
        );

        let o = parcours(&db, &["audit", "verify"], &[]);
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stdout(&o));
        assert!(
            // 21 for the patients and the portal enrolment, 20 for the monitoring
            // history (3 enrolments, 8 responses, 9 triage steps), 2 appointments,
            // 3 for the documents (a report created and validated, a draft);
            // then the day of ADT the demo's GAM fed (`demo::animate`): 23
            // admissions and 8 discharges, two entries each (the identity and
            // the stay), the 2 alerts patients raised, and the week's documents
            // at the clinic: 4 created and validated, and a report validated,
            // revised, corrected and validated again (13).
            stdout(&o).contains("intact : 123 entrées"),
            "{backend}: {}",
            stdout(&o)
        );

        let s = store::Store::connect(&db).await.unwrap();
        let drop_guards = match s.engine() {
            store::Engine::Sqlite => {
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
            }
            store::Engine::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER USER;",
        };
        store::testing::raw_sql(&s, drop_guards).await.unwrap();
        store::testing::raw_sql(
            &s,
            "UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 7",
        )
        .await
        .unwrap();
        s.close().await;
        let o = parcours(&db, &["audit", "verify"], &[]);
        assert_eq!(o.status.code(), Some(1), "{backend}: an edited row");
        assert!(stdout(&o).contains("entrée 7"), "{backend}: {}", stdout(&o));

        let s = store::Store::connect(&db).await.unwrap();
        store::testing::raw_sql(
            &s,
            "UPDATE audit_log SET actor_id = 'demo-seed' WHERE seq = 7",
        )
        .await
        .unwrap();
        store::testing::raw_sql(&s, "DELETE FROM audit_log WHERE seq = 12")
            .await
            .unwrap();
        s.close().await;
        let o = parcours(&db, &["audit", "verify"], &[]);
        assert_eq!(o.status.code(), Some(1), "{backend}: a removed row");
        assert!(
            stdout(&o).contains("entrée 12 manquante"),
            "{backend}: {}",
            stdout(&o)
        );
    }
}

#[tokio::test]
async fn users_and_clients_are_added_from_the_command_line() {
    let db = store::testing::fresh_sqlite_url();
    assert!(
        parcours(&db, &["demo", "--seed-only"], &[])
            .status
            .success()
    );
    let args = [
        "user",
        "add",
        "--username",
        "dr.neuf",
        "--name",
        "Dr Neuf",
        "--role",
        "doctor@450000013",
    ];
    let o = parcours(&db, &args, &[]);
    assert_eq!(o.status.code(), Some(2), "no password given");
    assert!(String::from_utf8_lossy(&o.stderr).contains("PARCOURS_NEW_PASSWORD"));
    let o = parcours(&db, &args, &[("PARCOURS_NEW_PASSWORD", "court")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("trop court"));
    let o = parcours(
        &db,
        &args,
        &[("PARCOURS_NEW_PASSWORD", "un mot de passe long")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("otpauth://totp/Parcours:dr.neuf?secret="));
    let o = parcours(
        &db,
        &args,
        &[("PARCOURS_NEW_PASSWORD", "un mot de passe long")],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("existe déjà") || !o.status.success());
    let bad = [
        "user",
        "add",
        "--username",
        "x",
        "--name",
        "X",
        "--role",
        "surgeon@450000013",
    ];
    let o = parcours(
        &db,
        &bad,
        &[("PARCOURS_NEW_PASSWORD", "un mot de passe long")],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("rôle inconnu"));
    let bad = [
        "user",
        "add",
        "--username",
        "x",
        "--name",
        "X",
        "--role",
        "doctor@999999999",
    ];
    let o = parcours(
        &db,
        &bad,
        &[("PARCOURS_NEW_PASSWORD", "un mot de passe long")],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("FINESS 999999999 inconnu"));

    let o = parcours(
        &db,
        &[
            "client",
            "add",
            "--client-id",
            "gam",
            "--name",
            "GAM",
            "--establishment",
            "450000021",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("Secret (affiché une seule fois)"));
    let o = parcours(
        &db,
        &[
            "client",
            "add",
            "--client-id",
            "x",
            "--name",
            "X",
            "--establishment",
            "450000021",
            "--role",
            "doctor",
        ],
        &[],
    );
    assert!(!o.status.success());
}

#[test]
fn small_commands() {
    let db = store::testing::fresh_sqlite_url();
    let o = parcours(&db, &["migrate"], &[]);
    assert!(
        stdout(&o).contains(
            "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33]"
        ),
        "{}",
        stdout(&o)
    );
    let o = parcours(&db, &["default-config"], &[]);
    assert!(stdout(&o).contains("listen = \"127.0.0.1:8080\""));
    let o = parcours(
        &db,
        &["totp", "--secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"],
        &[],
    );
    assert_eq!(stdout(&o).trim().len(), 6);
    let o = parcours("mysql://x", &["migrate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("URL de base de données non reconnue"));
}

fn fixtures_file(extra: &[u8]) -> std::path::PathBuf {
    let dir = format!(
        "{}/../../../shared/fixtures/hl7v2/ansforge",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut all = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        all.extend(std::fs::read(&p).unwrap());
        all.push(b'\n');
    }
    all.extend_from_slice(extra);
    let path = std::env::temp_dir().join(format!("parcours-hl7-{}.txt", uuid_like()));
    std::fs::write(&path, all).unwrap();
    path
}

fn uuid_like() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn hl7_stats_counts_and_locates_errors() {
    let db = store::testing::fresh_sqlite_url();
    let good = fixtures_file(b"");
    let o = parcours(&db, &["hl7", "stats", good.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("ADT^A01") && out.contains("ORU^R01") && out.contains("MDM^T02"),
        "{out}"
    );
    let bad = fixtures_file(b"MSH|^~|GAM|X|||20240101||ADT^A01|broken-1|P|2.5\rPID|1\n");
    let o = parcours(&db, &["hl7", "stats", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("(MSH-10 \"broken-1\"): séparateurs MSH-1/MSH-2 invalides"),
        "{}",
        stdout(&o)
    );
    let o = parcours(&db, &["hl7", "stats", "/nonexistent"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn hl7_send_prints_each_ack_over_a_real_mllp_socket() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A minimal receiver: AA for ADT, AE with an ERR for anything else.
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut answered = 0;
        loop {
            match hl7v2::mllp::next_frame(&buf) {
                hl7v2::mllp::Frame::Message {
                    start,
                    end,
                    consumed,
                } => {
                    let m = hl7v2::Message::parse(&buf[start..end]).unwrap();
                    let (code, errors) = if m.message_type().0 == Some("ADT") {
                        (hl7v2::ack::AckCode::Accept, vec![])
                    } else {
                        let e = hl7v2::ack::AckError {
                            location: None,
                            code: 200,
                            message: "type non pris en charge".into(),
                            severity: hl7v2::ack::Severity::Error,
                        };
                        (hl7v2::ack::AckCode::Error, vec![e])
                    };
                    let ack = hl7v2::ack::build(&m, code, &errors, "ack", "20240101000000");
                    s.write_all(&hl7v2::mllp::frame(ack.as_bytes())).unwrap();
                    buf.drain(..consumed);
                    answered += 1;
                }
                hl7v2::mllp::Frame::Incomplete { discard } => {
                    buf.drain(..discard);
                    let n = s.read(&mut chunk).unwrap();
                    if n == 0 {
                        return answered;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    });
    let file = fixtures_file(b"");
    let db = store::testing::fresh_sqlite_url();
    let o = parcours(
        &db,
        &[
            "hl7",
            "send",
            file.to_str().unwrap(),
            "--to",
            &addr.to_string(),
        ],
        &[],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "some messages are not ADT: {out}");
    assert!(out.contains("message 1 : AA"), "{out}");
    assert!(out.contains(": AE type non pris en charge"), "{out}");
    let answered = peer.join().unwrap();
    assert_eq!(out.lines().count(), answered);
    let o = parcours(
        &db,
        &["hl7", "send", file.to_str().unwrap(), "--to", "127.0.0.1:1"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "nobody listening");
}

#[tokio::test]
async fn hl7_senders_log_and_replay() {
    let db = store::testing::fresh_sqlite_url();
    assert!(
        parcours(&db, &["demo", "--seed-only"], &[])
            .status
            .success()
    );
    let o = parcours(
        &db,
        &[
            "hl7",
            "sender-add",
            "--application",
            "GAM",
            "--facility",
            "STROCH",
            "--establishment",
            "450000013",
            "--ipp-authority",
            "X",
            "--allow-address",
            "10.1.0.0/16",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("Clinique Saint-Roch"));
    let o = parcours(
        &db,
        &[
            "hl7",
            "sender-add",
            "--application",
            "GAM",
            "--facility",
            "X",
            "--establishment",
            "000000000",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));

    // A message logged through the intake, then replayed from the log.
    let s = store::Store::connect(&db).await.unwrap();
    let state = server::AppState::new(
        s.clone(),
        std::sync::Arc::new(domain::SystemClock),
        server::Config::default(),
    );
    let msg = "MSH|^~\\&|GAM|STROCH|P|G|20261123||ADT^A28^ADT_A05|rp-1|P|2.5\rPID|1||R1^^^X^PI||Replay^Jean^^^^^L||19800101|M\r";
    let server::services::hl7::Outcome::Ack(ack) = server::services::hl7::ingest(
        state.ctx(),
        msg.as_bytes(),
        None,
        &server::services::hl7::Peer::Internal,
    )
    .await
    else {
        panic!()
    };
    assert!(ack.contains("MSA|AA|rp-1"), "{ack}");
    let id = s.hl7_messages(None, 1).await.unwrap()[0].id.clone();
    s.close().await;
    let o = parcours(&db, &["hl7", "log"], &[]);
    assert!(
        stdout(&o).contains("GAM|STROCH rp-1 ADT^A28 accepted"),
        "{}",
        stdout(&o)
    );
    let o = parcours(&db, &["hl7", "replay", &id], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{} {}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("MSA|AA|rp-1"), "{}", stdout(&o));
    let s = store::Store::connect(&db).await.unwrap();
    let log = s.hl7_messages(None, 100).await.unwrap();
    // (The demo's own GAM fed a day of ADT before: those are older.)
    let ours = log
        .iter()
        .filter(|m| m.control_id.as_deref() == Some("rp-1"))
        .count();
    assert_eq!(ours, 2, "the replay is logged too");
    assert_eq!(log[0].replay_of.as_deref(), Some(id.as_str()));
    let o = parcours(&db, &["hl7", "replay", "nope"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("introuvable"));
}

/// Starts `parcours serve` on free ports; returns the child and its MLLP address.
fn start_server(db: &str) -> (std::process::Child, std::net::SocketAddr) {
    let (child, _, addr, _) = start_logging_server(db, &[("PARCOURS_LOG", "warn")]);
    (child, addr)
}

/// Sends one framed message and reads one ACK frame (blocking).
fn send_one(
    stream: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    msg: &str,
) -> std::io::Result<String> {
    use std::io::{Read, Write};
    stream.write_all(&hl7v2::mllp::frame(msg.as_bytes()))?;
    loop {
        if let hl7v2::mllp::Frame::Message {
            start,
            end,
            consumed,
        } = hl7v2::mllp::next_frame(buf)
        {
            let ack = String::from_utf8_lossy(&buf[start..end]).into_owned();
            buf.drain(..consumed);
            return Ok(ack);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn crash_message(sender: usize, i: usize) -> (String, String) {
    let control = format!("crash-{sender}-{i}");
    let msg = format!(
        "MSH|^~\\&|GAM|CHVL|PARCOURS|GHT|20261123||ADT^A28^ADT_A05|{control}|P|2.5\rPID|1||K{sender}X{i}^^^CHVL&450000021&M^PI||Crash^Test^^^^^L||19700101|F\r"
    );
    (control, msg)
}

#[tokio::test]
async fn sigkill_during_ingest_loses_no_acknowledged_message() {
    for (backend, db) in databases().await {
        assert!(
            parcours(&db, &["demo", "--seed-only"], &[])
                .status
                .success()
        );
        let (mut child, addr) = start_server(&db);
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let senders: Vec<_> = (0..4)
            .map(|s| {
                let acked = acked.clone();
                std::thread::spawn(move || {
                    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
                        return;
                    };
                    stream
                        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let mut buf = Vec::new();
                    for i in 0..2_000 {
                        let (control, msg) = crash_message(s, i);
                        match send_one(&mut stream, &mut buf, &msg) {
                            Ok(ack) if ack.contains("MSA|AA|") => {
                                acked.lock().unwrap().push((control, ack))
                            }
                            Ok(ack) => panic!("unexpected ACK {ack}"),
                            Err(_) => return, // the server died
                        }
                    }
                })
            })
            .collect();
        // Kill the server (SIGKILL) in the middle of the ingest.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while acked.lock().unwrap().len() < 300 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for t in senders {
            t.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() >= 300 && acked.len() < 8_000,
            "{backend}: killed mid-ingest after {} ACKs",
            acked.len()
        );

        // After the crash every acknowledged message is there, with its effect.
        let s = store::Store::connect(&db).await.unwrap();
        for (control, ack) in &acked {
            let logged = s.hl7_message_for("GAM|CHVL", control).await.unwrap();
            let logged = logged.unwrap_or_else(|| panic!("{backend}: ACKed {control} lost"));
            assert_eq!(&logged.ack, ack, "{backend}");
            assert!(logged.patient_id.is_some());
        }
        assert_eq!(
            s.verify_audit().await.unwrap().error,
            None,
            "{backend}: the audit chain survived"
        );
        s.close().await;

        // After a restart, a repeated ACKed message gets the same ACK, no second effect.
        let (mut child, addr) = start_server(&db);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = Vec::new();
        let (control, ack) = &acked[acked.len() / 2];
        let (s_i, i): (usize, usize) = {
            let mut parts = control.trim_start_matches("crash-").split('-');
            (
                parts.next().unwrap().parse().unwrap(),
                parts.next().unwrap().parse().unwrap(),
            )
        };
        assert_eq!(
            &send_one(&mut stream, &mut buf, &crash_message(s_i, i).1).unwrap(),
            ack,
            "{backend}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn programme_files_are_checked_before_use() {
    let db = store::testing::fresh_sqlite_url();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let good = format!("{root}/programmes/oral-oncology.json");
    let o = parcours(&db, &["programme", &good], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("oral-oncology") && stdout(&o).contains("11 questions"),
        "{}",
        stdout(&o)
    );
    let dir = std::env::temp_dir().join(format!("parcours-prog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("\"slaHours\": 12", "\"slaHours\": 0");
    std::fs::write(&bad, text).unwrap();
    let o = parcours(&db, &["programme", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("positifs"), "{}", stdout(&o));
    // A bad file in the programmes folder stops the start, naming the file.
    let o = parcours(
        &db,
        &["demo", "--seed-only"],
        &[("PARCOURS_PROGRAMMES_DIR", dir.to_str().unwrap())],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.json"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_secret_key_is_made_once_and_rotated_by_command() {
    let dir = std::env::temp_dir().join(format!("parcours-cli-key-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("p.db").display());
    let key = dir.join("secret.key");
    let env = [("PARCOURS_SECRET_KEY_FILE", key.to_str().unwrap())];
    let o = parcours(&db, &["demo", "--seed-only"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = std::fs::read_to_string(&key).unwrap();
    assert_eq!(first.trim().len(), 64, "32 bytes in hex");
    // The log names the file, never the key.
    assert!(!String::from_utf8_lossy(&o.stderr).contains(first.trim()));
    let o = parcours(&db, &["secret-key", "rotate"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("Nouvelle clé"), "{}", stdout(&o));
    let second = std::fs::read_to_string(&key).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.key.previous")).unwrap(),
        first
    );
    // Seeding again reads the sealed seeds with the new key; without the key
    // file (moved away), the command stops with why.
    let o = parcours(&db, &["demo", "--seed-only"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&key, dir.join("elsewhere")).unwrap();
    std::fs::remove_file(dir.join("secret.key.previous")).unwrap();
    let o = parcours(&db, &["secret-key", "rotate"], &env);
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `parcours init` then `parcours org apply` on an empty database, on both
/// backends: the set-up link, a dry run that writes nothing, the apply, a
/// second apply that changes nothing, the export, and a bad file refused whole
/// with its lines (exit code 1).
#[tokio::test]
async fn init_and_org_apply_from_an_empty_database() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/org-clinique.toml"
    );
    for (backend, db) in databases().await {
        let o = parcours(
            &db,
            &[
                "init",
                "--territory",
                "GHT Exemple",
                "--ipp-oid",
                "1.2.250.1.999.7",
                "--admin",
                "admin.ght",
            ],
            &[],
        );
        assert!(o.status.success(), "{backend}: {}", stdout(&o));
        assert!(stdout(&o).contains("/lien/"), "{backend}: {}", stdout(&o));
        let o = parcours(
            &db,
            &[
                "init",
                "--territory",
                "GHT Exemple",
                "--ipp-oid",
                "1.2.250.1.999.7",
                "--admin",
                "x.y",
            ],
            &[],
        );
        assert_eq!(
            o.status.code(),
            Some(1),
            "{backend}: a second init is refused"
        );
        assert!(
            stdout(&o).contains("existe déjà"),
            "{backend}: {}",
            stdout(&o)
        );

        let o = parcours(&db, &["org", "apply", example, "--dry-run"], &[]);
        assert!(o.status.success(), "{backend}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("rien n'a été écrit"),
            "{backend}: {}",
            stdout(&o)
        );
        let o = parcours(&db, &["org", "export"], &[]);
        assert!(
            !stdout(&o).contains("450000062"),
            "{backend}: the dry run wrote nothing"
        );

        let o = parcours(&db, &["org", "apply", example], &[]);
        assert!(o.status.success(), "{backend}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("+ établissement 450000062"),
            "{backend}: {}",
            stdout(&o)
        );
        assert!(
            stdout(&o).contains("16 changement(s) appliqué(s)"),
            "{backend}: {}",
            stdout(&o)
        );
        let o = parcours(&db, &["org", "apply", example], &[]);
        assert!(
            stdout(&o).contains("Aucun changement"),
            "{backend}: {}",
            stdout(&o)
        );
        let o = parcours(&db, &["org", "export"], &[]);
        assert!(
            stdout(&o).contains("finess = \"450000062\""),
            "{backend}: {}",
            stdout(&o)
        );

        let bad =
            std::env::temp_dir().join(format!("org-bad-{}-{backend}.toml", std::process::id()));
        let text = std::fs::read_to_string(example)
            .unwrap()
            .replace(
                "450000062\"                  #",
                "450000063\"                  #",
            )
            .replace("code = \"HDJ-ONCO\"", "code = \"CHIR\"");
        std::fs::write(&bad, text).unwrap();
        let o = parcours(&db, &["org", "apply", bad.to_str().unwrap()], &[]);
        assert_eq!(o.status.code(), Some(1), "{backend}: {}", stdout(&o));
        let out = stdout(&o);
        assert!(
            out.contains("ligne 8 : numéro FINESS invalide"),
            "{backend}: {out}"
        );
        assert!(
            out.contains("code d'unité CHIR en double"),
            "{backend}: {out}"
        );
        let _ = std::fs::remove_file(bad);
    }
}

/// Starts `parcours serve` with `env` (logs on stderr, piped); returns the
/// child, its HTTP and MLLP addresses and the lines it logs.
fn start_logging_server(
    db: &str,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    let mut c = Command::new(env!("CARGO_BIN_EXE_parcours"));
    c.arg("serve")
        .env("PARCOURS_DATABASE_URL", db)
        .env(
            "PARCOURS_DATA_DIR",
            std::env::temp_dir().join(format!("parcours-cli-{}", std::process::id())),
        )
        .env("PARCOURS_LISTEN", "127.0.0.1:0")
        .env("PARCOURS_MLLP_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let err = child.stderr.take().unwrap();
    let l = logs.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut http = String::new();
    let mllp = loop {
        let line = lines
            .next()
            .expect("the server prints its addresses")
            .unwrap();
        if let Some(a) = line.strip_prefix("Parcours écoute sur ") {
            http = a.trim().to_owned();
        }
        if let Some(a) = line.strip_prefix("HL7 v2 (MLLP) sur ") {
            break a.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, http, mllp, logs)
}

/// A server killed if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM and waits (30 s at most) for the exit status.
fn terminate(KillOnDrop(child): &mut KillOnDrop) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_backup_taken_under_mllp_load_restores_every_acknowledged_message() {
    for (backend, db) in databases().await {
        assert!(
            parcours(&db, &["demo", "--seed-only"], &[])
                .status
                .success()
        );
        let (child, _, addr, logs) = start_logging_server(&db, &[("PARCOURS_LOG", "warn")]);
        let mut child = KillOnDrop(child);
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let senders: Vec<_> = (0..2)
            .map(|s| {
                let (acked, stop) = (acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let mut buf = Vec::new();
                    for i in 0..3_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return Ok(());
                        }
                        let (control, msg) = crash_message(10 + s, i);
                        let ack = send_one(&mut stream, &mut buf, &msg)
                            .map_err(|e| format!("{control}: {e}"))?;
                        if !ack.contains("MSA|AA|") {
                            return Err(format!("{control}: {ack}"));
                        }
                        acked.lock().unwrap().push((control, ack));
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while acked.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Everything ACKed before the backup starts must be in it.
        let before = acked.lock().unwrap().clone();
        let file =
            std::env::temp_dir().join(format!("parcours-backup-{}.bak", uuid::Uuid::now_v7()));
        let file = file.to_str().unwrap();
        let o = parcours(&db, &["backup", file], &[]);
        assert!(
            o.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(stdout(&o).contains("Sauvegarde écrite"), "{}", stdout(&o));
        let during = acked.lock().unwrap().len();
        assert!(
            during > before.len(),
            "{backend}: the intake went on during the backup"
        );
        // A backup never overwrites a file.
        let o = parcours(&db, &["backup", file], &[]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("existe déjà"));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in senders {
            if let Err(e) = t.join().unwrap() {
                panic!("{backend}: {e}\nserver: {:#?}", logs.lock().unwrap());
            }
        }
        // SIGTERM: the server drains and exits cleanly.
        assert!(terminate(&mut child).success(), "{backend}");

        // Restored into an empty database of the same engine.
        let target = match backend {
            "sqlite" => store::testing::fresh_sqlite_url(),
            _ => store::testing::fresh_postgres_url().await.unwrap(),
        };
        let o = parcours(&target, &["restore", file], &[]);
        assert!(
            o.status.success(),
            "{backend}: {} {}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout(&o).contains("Journal d'audit intact"),
            "{}",
            stdout(&o)
        );
        let s = store::Store::connect(&target).await.unwrap();
        for (control, ack) in &before {
            let logged = s.hl7_message_for("GAM|CHVL", control).await.unwrap();
            let logged =
                logged.unwrap_or_else(|| panic!("{backend}: ACKed {control} not in the backup"));
            assert_eq!(&logged.ack, ack);
            assert!(logged.patient_id.is_some());
        }
        s.close().await;
        let o = parcours(&target, &["audit", "verify"], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        // Not into a database that holds data.
        let o = parcours(&target, &["restore", file], &[]);
        assert_eq!(o.status.code(), Some(2), "{backend}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("base vide"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Not into the other engine.
        let other = match backend {
            "sqlite" => store::testing::fresh_postgres_url().await.unwrap(),
            _ => store::testing::fresh_sqlite_url(),
        };
        let o = parcours(&other, &["restore", file], &[]);
        assert_eq!(o.status.code(), Some(2), "{backend}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("n'est pas une sauvegarde"));
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_no_patient_data() {
    for (backend, db) in databases().await {
        assert!(
            parcours(&db, &["demo", "--seed-only"], &[])
                .status
                .success()
        );
        let (child, http, addr, logs) = start_logging_server(
            &db,
            &[
                ("PARCOURS_LOG_FORMAT", "json"),
                ("PARCOURS_LOG", "info,server=debug"),
            ],
        );
        let mut child = KillOnDrop(child);
        let client = reqwest::Client::new();
        // The demo's integration client reads a patient (a search that finds her).
        let token: serde_json::Value = client
            .post(format!("{http}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "demo-integration"),
                ("client_secret", "demo-secret"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = client
            .get(format!("{http}/fhir/Patient?family=Muller"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .header("x-request-id", "essai-journal-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let found: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            found["entry"].as_array().map(Vec::len),
            Some(1),
            "{backend}: {found}"
        );
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = Vec::new();
        let (_, msg) = crash_message(99, 1);
        assert!(
            send_one(&mut stream, &mut buf, &msg)
                .unwrap()
                .contains("MSA|AA")
        );
        assert!(terminate(&mut child).success());
        let logs = logs.lock().unwrap().clone();
        assert!(!logs.is_empty());
        for line in &logs {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(
                v["level"].is_string() && v["timestamp"].is_string(),
                "{line}"
            );
            // Names read (Muller found) or sent (Crash admitted) and the IPP
            // never reach the logs.
            for secret in ["Muller", "MULLER", "Crash", "K109X1"] {
                assert!(
                    !line.contains(secret),
                    "{backend}: patient data in logs: {line}"
                );
            }
        }
        assert!(
            logs.iter()
                .any(|l| l.contains("\"request_id\":\"essai-journal-1\"")
                    && l.contains("\"route\":\"/fhir/Patient\"")
                    && l.contains("\"status\":200")),
            "{backend}: {logs:#?}"
        );
    }
}

#[tokio::test]
async fn prune_cuts_the_audit_trail_and_verify_proves_the_cut_and_its_archive() {
    for (backend, db) in databases().await {
        assert!(
            parcours(&db, &["demo", "--seed-only"], &[])
                .status
                .success()
        );
        let archives =
            std::env::temp_dir().join(format!("parcours-archives-{}", uuid::Uuid::now_v7()));
        let dir = archives.to_str().unwrap();
        let env = [
            ("PARCOURS_RETENTION_AUDIT", "1s"),
            ("PARCOURS_AUDIT_ARCHIVE_DIR", dir),
        ];
        // The seed's entries become older than a second.
        std::thread::sleep(std::time::Duration::from_millis(1_200));
        let o = parcours(&db, &["prune"], &env);
        assert!(
            o.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout(&o).contains("journal d'audit : entrées 1.."),
            "{}",
            stdout(&o)
        );
        let o = parcours(&db, &["audit", "verify"], &env);
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("après la coupe de l'entrée"),
            "{}",
            stdout(&o)
        );
        assert!(stdout(&o).contains("intacte"), "{}", stdout(&o));
        // The archive altered: verify says so (exit 1); gone: the cut stays proved.
        let file = std::fs::read_dir(&archives)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            text.replacen("\"outcome\":\"success\"", "\"outcome\":\"denied\"", 1),
        )
        .unwrap();
        let o = parcours(&db, &["audit", "verify"], &env);
        assert_eq!(o.status.code(), Some(1), "{backend}: {}", stdout(&o));
        assert!(stdout(&o).contains("ALTÉRÉE"), "{}", stdout(&o));
        std::fs::remove_file(&file).unwrap();
        let o = parcours(&db, &["audit", "verify", "--archives", dir], &env);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert!(stdout(&o).contains("absente"), "{}", stdout(&o));
        // Export: the removed entries are gone; a bad range is refused.
        let out = archives.join("export.jsonl");
        let o = parcours(
            &db,
            &[
                "audit",
                "export",
                "--from",
                "1",
                "--through",
                "2",
                out.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(o.status.code(), Some(2), "{backend}");
        // The reason is given, and no partial file is left behind.
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("absente"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!out.exists() && !archives.join("export.jsonl.partiel").exists());
        let o = parcours(
            &db,
            &[
                "audit",
                "export",
                "--from",
                "5",
                "--through",
                "2",
                out.to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("intervalle invalide"));
        let _ = std::fs::remove_dir_all(&archives);
    }
}

/// `count` notices of the instance whose only attempt failed (`why`): dead
/// letters, due in a year so that a running worker leaves them; their ids.
async fn dead_letters(db: &str, prefix: &str, count: usize, why: &str) -> Vec<String> {
    let s = store::Store::connect(db).await.unwrap();
    let once = store::outbox::RetryPolicy {
        max_attempts: 1,
        ..Default::default()
    };
    let mut ids = Vec::new();
    for i in 0..count {
        let key = format!("{prefix}-{i}");
        s.enqueue(
            &store::outbox::NewMessage {
                idempotency_key: key.clone(),
                topic: "notify".into(),
                destination: "portail:x".into(),
                payload: "Bonjour".into(),
                establishment: None,
            },
            4_000_000_000_000,
        )
        .await
        .unwrap();
        let id = s.outbox_message(&key).await.unwrap().unwrap().id;
        assert!(s.outbox_failed(&id, why, 1, &once).await.unwrap());
        ids.push(id);
    }
    s.close().await;
    ids
}

#[tokio::test]
async fn outbox_dead_letters_from_the_command_line() {
    let db = store::testing::fresh_sqlite_url();
    assert!(
        parcours(&db, &["demo", "--seed-only"], &[])
            .status
            .success()
    );
    // Two messages of the instance whose only attempt failed.
    let ids = dead_letters(&db, "cli-dead", 2, "connexion refusée").await;
    let o = parcours(&db, &["outbox", "dead"], &[]);
    assert!(o.status.success());
    let listed = stdout(&o);
    for id in &ids {
        assert!(
            listed.contains(id.as_str()) && listed.contains("connexion refusée"),
            "{listed}"
        );
    }
    let id = ids[0].clone();
    let o = parcours(&db, &["outbox", "revive", &id], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("relancé"));
    // No longer dead: neither revived again nor discarded.
    for verb in ["revive", "discard"] {
        let o = parcours(&db, &["outbox", verb, &id], &[]);
        assert_eq!(o.status.code(), Some(2), "{verb}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("aucun envoi en échec"));
    }
    let o = parcours(&db, &["outbox", "discard", &ids[1]], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stdout(&parcours(&db, &["outbox", "dead"], &[])).contains(ids[1].as_str()));
    let s = store::Store::connect(&db).await.unwrap();
    let trail = s
        .list_audit(&store::audit::AuditFilter {
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(trail.iter().any(|e| e.action == "revive"
        && e.actor_id == "cli"
        && e.resource == format!("Outbox/{id}")));
    assert!(
        trail
            .iter()
            .any(|e| e.action == "discard" && e.resource == format!("Outbox/{}", ids[1]))
    );
}

#[tokio::test]
async fn commands_that_write_while_the_server_ingests_lose_no_message() {
    for (backend, db) in databases().await {
        assert!(
            parcours(&db, &["demo", "--seed-only"], &[])
                .status
                .success()
        );
        // Dead letters for an operator to revive while the intake runs.
        let ids = dead_letters(&db, "revive", 12, "refusé").await;
        let (child, _, addr, logs) = start_logging_server(&db, &[("PARCOURS_LOG", "warn")]);
        let mut child = KillOnDrop(child);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let senders: Vec<_> = (0..2)
            .map(|s| {
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    let mut buf = Vec::new();
                    let mut sent = 0;
                    for i in 0..20_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let (control, msg) = crash_message(30 + s, i);
                        let ack = send_one(&mut stream, &mut buf, &msg)
                            .map_err(|e| format!("{control}: {e}"))?;
                        if !ack.contains("MSA|AA|") {
                            return Err(format!("{control}: {ack}"));
                        }
                        sent += 1;
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok::<usize, String>(sent)
                })
            })
            .collect();
        // Once the intake runs, the operator revives each dead letter, one
        // command at a time.
        let count = || acked.load(std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while count() < 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let before = count();
        for id in &ids {
            let o = parcours(&db, &["outbox", "revive", id], &[]);
            assert!(
                o.status.success(),
                "{backend}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let during = count() - before;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut sent = 0;
        for t in senders {
            match t.join().unwrap() {
                Ok(n) => sent += n,
                Err(e) => panic!("{backend}: {e}\nserver: {:#?}", logs.lock().unwrap()),
            }
        }
        assert!(
            before >= 20 && during > 0 && sent >= before + during,
            "{backend}: the intake ran meanwhile ({before} before, {during} during)"
        );
        assert!(terminate(&mut child).success());
    }
}
