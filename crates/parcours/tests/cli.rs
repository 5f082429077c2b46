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
            stdout(&again).contains("(0 éléments créés)"),
            "{backend}: {}",
            stdout(&again)
        );

        let o = parcours(&db, &["audit", "verify"], &[]);
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("intact: 20 entrées"),
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
    assert!(stdout(&o).contains("[1]"), "{}", stdout(&o));
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
