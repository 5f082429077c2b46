//! The `parcours` binary: configuration, logging, and the subcommands (serve,
//! demo, migrate, user and client administration, audit verification).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use domain::org::Role;
use domain::{Clock, SystemClock};
use server::{Application, Config, auth, demo};
use store::Store;
use store::users::{NewUser, UserKind};

mod hl7cmd;
mod ops;

/// mimalloc rather than the system's allocator: a FHIR search builds and drops
/// thousands of small strings and JSON values, and glibc's malloc and free took
/// a fifth of its time (see benches/README.md). With the crate's `override`
/// feature (workspace `Cargo.toml`), SQLite allocates from it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "parcours",
    version,
    about = "Parcours — plateforme e-santé (téléconsultation, télésurveillance, DMP, EAI, identité, lits)"
)]
struct Cli {
    /// Configuration file (default: ./parcours.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web pages and the APIs.
    Serve,
    /// Seed the demo territory (idempotent), then serve.
    Demo {
        /// Seed and exit without serving.
        #[arg(long)]
        seed_only: bool,
    },
    /// First start of an organisation: create the territory (identity domain)
    /// and its first administrator, and print a one-time set-up link. Nothing
    /// else is created.
    Init {
        /// Name of the territory (e.g. "GHT Loire Sud").
        #[arg(long)]
        territory: String,
        /// OID of the territory's IPP assigning authority.
        #[arg(long)]
        ipp_oid: String,
        /// Login name of the first administrator.
        #[arg(long)]
        admin: String,
        /// The administrator's e-mail address (the link is also mailed when
        /// an SMTP relay is configured).
        #[arg(long)]
        email: Option<String>,
    },
    /// The organisation as a file (establishments, units, beds, HL7 senders,
    /// integration endpoints, monitoring programmes).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Print an example configuration file.
    DefaultConfig,
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API clients (OAuth2 client credentials).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// HL7 v2 tools.
    Hl7 {
        #[command(subcommand)]
        command: Hl7Command,
    },
    /// Back up the database: SQLite, a consistent snapshot while serving;
    /// PostgreSQL, `pg_dump` in custom format. The secret key file is not in
    /// it: keep it apart.
    Backup {
        /// The backup file to write (must not exist).
        file: PathBuf,
    },
    /// Restore a backup into an empty database (the configured one), then
    /// check the audit trail.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Run retention now (as the timer does every `retention.every`).
    Prune,
    /// Outbound messages that failed for good.
    Outbox {
        #[command(subcommand)]
        command: ops::OutboxCommand,
    },
    /// Check a monitoring programme file before putting it in the programmes
    /// folder (`PARCOURS_PROGRAMMES_DIR`); exit 1 with the reason if it is refused.
    Programme {
        /// The programme file (JSON).
        file: std::path::PathBuf,
    },
    /// The key that seals secrets at rest (PARCOURS_SECRET_KEY_FILE).
    SecretKey {
        #[command(subcommand)]
        command: SecretKeyCommand,
    },
    /// Print the current TOTP code for a base32 secret (demo and tests).
    Totp {
        /// Base32 secret; default: the demo professionals' secret.
        #[arg(long, default_value = demo::DEMO_TOTP_SECRET)]
        secret: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create or update what the file describes; prints every change. A file
    /// with one error is refused whole (each error with its line).
    Apply {
        /// The organisation file (TOML; see the README).
        file: PathBuf,
        /// Show the changes without writing them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the current organisation in the same format.
    Export {
        /// The territory's OID (needed when there are several).
        #[arg(long)]
        territory: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a professional (with roles) or a patient portal account.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Name shown.
        #[arg(long)]
        name: String,
        /// Role in an establishment, as ROLE@FINESS (admin, doctor, nurse, secretary,
        /// bed_manager, coordinator); repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// RPPS number (11 digits, Luhn key).
        #[arg(long)]
        rpps: Option<String>,
        /// Environment variable holding the password (never on the command line).
        #[arg(long, default_value = "PARCOURS_NEW_PASSWORD")]
        password_env: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create an API client; prints its secret once.
    Add {
        /// Public client_id.
        #[arg(long)]
        client_id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Establishment FINESS it acts for.
        #[arg(long)]
        establishment: String,
        /// Role: integration (default) or admin (audit reading).
        #[arg(long, default_value = "integration")]
        role: String,
    },
    /// Register a client's public keys (SMART Backend Services, private_key_jwt)
    /// and the system scopes it may be granted.
    Keys {
        /// Public client_id.
        #[arg(long)]
        client_id: String,
        /// A JWKS file with its public keys (RS384 or ES384).
        #[arg(long)]
        jwks: Option<std::path::PathBuf>,
        /// Or where it publishes them (https://).
        #[arg(long)]
        jwks_url: Option<String>,
        /// Scopes it may be granted, e.g. "system/Patient.rs system/DocumentReference.cruds".
        #[arg(long)]
        scopes: Option<String>,
    },
}

#[derive(Subcommand)]
enum Hl7Command {
    /// Parse a file of messages (one per line, \r-separated batches or MLLP frames):
    /// counts per type and event, every error; exit code 1 if any message fails.
    Stats {
        /// The file.
        file: PathBuf,
    },
    /// Declare a sender: messages with this MSH-3 and MSH-4 feed an establishment.
    SenderAdd {
        /// MSH-3 (sending application).
        #[arg(long)]
        application: String,
        /// MSH-4 (sending facility).
        #[arg(long)]
        facility: String,
        /// FINESS of the establishment fed.
        #[arg(long)]
        establishment: String,
        /// The IPP assigning authority it uses besides the territory's OID
        /// (PID-3.4: its namespace or universal id, e.g. the FINESS).
        #[arg(long)]
        ipp_authority: Option<String>,
        /// A source address or CIDR block allowed over plain MLLP (repeat;
        /// this machine is always allowed).
        #[arg(long = "allow-address")]
        allowed_addresses: Vec<String>,
        /// The subject (CN) of its client certificate over MLLP/TLS.
        #[arg(long)]
        tls_subject: Option<String>,
    },
    /// Re-run a logged message (by its id in the message log) and print the ACK.
    Replay {
        /// Message log id.
        id: String,
    },
    /// List the latest logged messages.
    Log {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Send a file's messages over MLLP and print each acknowledgement.
    Send {
        /// The file.
        file: PathBuf,
        /// Destination HOST:PORT.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum SecretKeyCommand {
    /// Make a new key and reseal every secret with it (the old key is kept as
    /// FILE.previous until you remove it).
    Rotate,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain from the last cut and check the checkpoints
    /// and the archives found; exit code 1 if an entry, a checkpoint or an
    /// archive was edited or removed.
    Verify {
        /// The folder of the archives (default: the configured one).
        #[arg(long)]
        archives: Option<PathBuf>,
    },
    /// Export entries FROM..=THROUGH as JSON lines.
    Export {
        /// First entry.
        #[arg(long)]
        from: i64,
        /// Last entry.
        #[arg(long)]
        through: i64,
        /// The file to write (must not exist).
        file: PathBuf,
    },
}

fn now_ms() -> i64 {
    SystemClock.now().as_millisecond()
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("dossier {}", config.data_dir.display()))?;
    }
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("connexion à {}", store::redact_url(&url)))?;
    store.migrate(now_ms()).await.context("migrations")?;
    server::secrets::install(&store, &config.secret_key_file())
        .await
        .context("clé secrète")?;
    Ok(store)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("arrêt demandé");
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    let addr = app.local_addr()?;
    let mllp = app.mllp_addr()?;
    tracing::info!(%addr, %mllp, "Parcours écoute");
    // A server must not die because whoever started it closed its stdout.
    say(&format!(
        "Parcours écoute sur http://{addr}\nHL7 v2 (MLLP) sur {mllp}"
    ));
    app.run_until(shutdown_signal()).await
}

/// Prints a line, ignoring a closed stdout (println! would panic on it).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn print_demo_logins() {
    println!(
        "Comptes de démonstration (mot de passe: {}):",
        demo::DEMO_PASSWORD
    );
    for l in demo::LOGINS {
        println!("  {:<16} {}", l.username, l.display_name);
    }
    println!(
        "  {:<16} compte patient (sans second facteur)",
        demo::PATIENT_LOGIN
    );
    println!(
        "Code TOTP des professionnels: `parcours totp` (secret {}).",
        demo::DEMO_TOTP_SECRET
    );
    println!(
        "Client API: {} / {}",
        demo::DEMO_CLIENT_ID,
        demo::DEMO_CLIENT_SECRET
    );
}

fn parse_role(code: &str) -> anyhow::Result<Role> {
    Role::from_code(code).with_context(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.code()).collect();
        format!("rôle inconnu {code:?} (valeurs: {})", all.join(", "))
    })
}

async fn user_add(
    config: &Config,
    username: String,
    name: String,
    roles: Vec<String>,
    rpps: Option<String>,
    password_env: String,
) -> anyhow::Result<()> {
    let password = std::env::var(&password_env)
        .with_context(|| format!("mot de passe attendu dans la variable {password_env}"))?;
    if password.chars().count() < 12 {
        bail!("mot de passe trop court: 12 caractères au moins");
    }
    if let Some(r) = &rpps {
        domain::org::Rpps::parse(r)?;
    }
    let store = open_store(config).await?;
    let mut grants = Vec::new();
    for spec in &roles {
        let (role, finess) = spec
            .split_once('@')
            .with_context(|| format!("{spec:?}: ROLE@FINESS attendu"))?;
        let e = store
            .establishment_by_finess(finess)
            .await?
            .with_context(|| format!("établissement FINESS {finess} inconnu"))?;
        grants.push((e.id, parse_role(role)?));
    }
    if grants.is_empty() {
        bail!("au moins un --role ROLE@FINESS est nécessaire pour un professionnel");
    }
    let secret = auth::new_totp_secret();
    let user = NewUser {
        username: username.clone(),
        display_name: name,
        kind: UserKind::Professional,
        password_hash: auth::hash_secret(password).await?,
        totp_secret: Some(secret.clone()),
        rpps,
        profession: None,
        patient: None,
        roles: grants,
    };
    store.create_user(&user, now_ms()).await?;
    println!("Utilisateur {username} créé.");
    println!("Secret TOTP à enregistrer dans l'application d'authentification: {secret}");
    println!("{}", auth::otpauth_uri(&secret, &username));
    Ok(())
}

async fn client_keys(
    config: &Config,
    client_id: &str,
    jwks: Option<std::path::PathBuf>,
    jwks_url: Option<String>,
    scopes: Option<String>,
) -> anyhow::Result<()> {
    let jwks = match jwks {
        Some(p) => Some(
            std::fs::read_to_string(&p).with_context(|| format!("lecture de {}", p.display()))?,
        ),
        None => None,
    };
    let keys = server::services::tokens::checked_keys(jwks, jwks_url, scopes)
        .map_err(|e| anyhow::anyhow!(e))?;
    let store = open_store(config).await?;
    let client = store
        .client_by_client_id(client_id)
        .await?
        .with_context(|| format!("client {client_id} inconnu"))?;
    store.set_client_keys(client.id, &keys).await?;
    println!(
        "Client {client_id} : clés {} ; portées {}.",
        match (&keys.jwks, &keys.jwks_url) {
            (Some(_), _) => "enregistrées".to_owned(),
            (None, Some(u)) => format!("lues à {u}"),
            (None, None) => "aucune (secret partagé seulement)".to_owned(),
        },
        keys.scopes
            .as_deref()
            .unwrap_or("toutes celles de la politique")
    );
    Ok(())
}

async fn client_add(
    config: &Config,
    client_id: String,
    name: String,
    finess: String,
    role: String,
) -> anyhow::Result<()> {
    let role = parse_role(&role)?;
    if !matches!(role, Role::Integration | Role::Admin) {
        bail!("un client API a le rôle integration ou admin");
    }
    let store = open_store(config).await?;
    let e = store
        .establishment_by_finess(&finess)
        .await?
        .with_context(|| format!("établissement FINESS {finess} inconnu"))?;
    let secret = auth::random_token();
    store
        .create_client(
            &client_id,
            &name,
            &auth::hash_secret(secret.clone()).await?,
            e.id,
            role,
            now_ms(),
        )
        .await?;
    println!("Client {client_id} créé. Secret (affiché une seule fois): {secret}");
    Ok(())
}

/// `parcours init`: the territory, its administrator and the set-up link.
async fn init(
    config: &Config,
    territory: &str,
    oid: &str,
    admin: &str,
    email: Option<&str>,
) -> anyhow::Result<bool> {
    let store = open_store(config).await?;
    let mut state =
        server::state::AppState::new(store.clone(), Arc::new(SystemClock), config.clone());
    state.mailer = server::mail::Mailer::from_config(config).map_err(|e| anyhow::anyhow!(e))?;
    match server::services::accounts::init(state.ctx(), territory, oid, admin, email).await {
        Ok(link) => {
            println!("Territoire « {territory} » créé (OID {oid}), administrateur {admin}.");
            println!(
                "Lien de mise en service, à ouvrir une seule fois avant le {} (heure de Paris) :",
                server::fmt::paris_time(link.expires_at_ms)
            );
            println!("{}", link.url);
            if link.mailed {
                println!("(envoyé aussi par courriel)");
            }
            store.close().await;
            Ok(true)
        }
        Err(e) => {
            println!("refusé : {e}");
            store.close().await;
            Ok(false)
        }
    }
}

/// `parcours org apply|export`.
async fn org(config: &Config, command: OrgCommand) -> anyhow::Result<bool> {
    use server::orgfile;
    let programmes: Vec<&str> = server::services::monitoring::programmes()
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    match command {
        OrgCommand::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("lecture de {}", file.display()))?;
            let parsed = match orgfile::parse(&text, &programmes) {
                Ok(f) => f,
                Err(errors) => {
                    println!("{} refusé, rien n'a été écrit :", file.display());
                    for e in errors.0 {
                        println!("  ligne {} : {}", e.line, e.reason);
                    }
                    return Ok(false);
                }
            };
            let store = open_store(config).await?;
            let plan = match orgfile::plan(&store, &parsed).await {
                Ok(p) => p,
                Err(e) => {
                    println!("refusé, rien n'a été écrit : {e}");
                    store.close().await;
                    return Ok(false);
                }
            };
            for line in &plan.lines {
                println!("{line}");
            }
            if plan.changes.is_empty() {
                println!("Aucun changement.");
            } else if dry_run {
                println!(
                    "{} changement(s) à appliquer (--dry-run : rien n'a été écrit).",
                    plan.changes.len()
                );
            } else {
                store
                    .apply_org_changes(&plan.changes, now_ms(), "org-apply")
                    .await?;
                println!("{} changement(s) appliqué(s).", plan.changes.len());
            }
            store.close().await;
            Ok(true)
        }
        OrgCommand::Export { territory } => {
            let store = open_store(config).await?;
            let all = store.territories().await?;
            let t = match territory {
                Some(oid) => all
                    .into_iter()
                    .find(|t| t.oid == oid)
                    .with_context(|| format!("territoire d'OID {oid} inconnu"))?,
                None if all.len() == 1 => all.into_iter().next().context("aucun territoire")?,
                None if all.is_empty() => {
                    bail!("aucun territoire : lancez d'abord `parcours init`")
                }
                None => bail!(
                    "plusieurs territoires : précisez --territory ({})",
                    all.iter()
                        .map(|t| t.oid.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            print!("{}", orgfile::export(&store, t.id).await?);
            store.close().await;
            Ok(true)
        }
    }
}

/// `parcours programme FILE`: checks a programme file; whether it is valid.
fn programme_check(file: &std::path::Path) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("lecture de {}", file.display()))?;
    match interop::programme::parse(&text) {
        Ok(p) => {
            println!(
                "Programme {} « {} » valide : {} questions, {} règles, un questionnaire tous les {} jour(s), alertes à traiter en {} h.",
                p.id,
                p.title,
                p.items.len(),
                p.rules.len(),
                p.frequency_days,
                p.sla_hours
            );
            Ok(true)
        }
        Err(e) => {
            println!("{}: {e}", file.display());
            Ok(false)
        }
    }
}

/// `parcours hl7 …`: declare a sender, replay, list the log, statistics of a
/// file, send a file.
async fn hl7(config: &Config, command: Hl7Command) -> anyhow::Result<bool> {
    match command {
        Hl7Command::SenderAdd {
            application,
            facility,
            establishment,
            ipp_authority,
            allowed_addresses,
            tls_subject,
        } => {
            let store = open_store(config).await?;
            let e = store
                .establishment_by_finess(&establishment)
                .await?
                .with_context(|| format!("établissement FINESS {establishment} inconnu"))?;
            for a in &allowed_addresses {
                let base = a.split('/').next().unwrap_or("");
                base.parse::<std::net::IpAddr>().with_context(|| {
                    format!("--allow-address {a:?}: adresse IP ou bloc CIDR attendu")
                })?;
            }
            let sender = store::hl7::NewHl7Sender {
                application: application.clone(),
                facility: facility.clone(),
                establishment: e.id,
                ipp_authority,
                allowed_addresses,
                tls_subject,
            };
            store.declare_hl7_sender(&sender, now_ms()).await?;
            println!("Émetteur {application}/{facility} déclaré pour {}.", e.name);
            Ok(true)
        }
        Hl7Command::Replay { id } => hl7cmd::replay(config, &id).await,
        Hl7Command::Log { limit } => {
            let store = open_store(config).await?;
            for m in store.hl7_messages(None, limit).await? {
                println!(
                    "{} {} {} {} {} {}",
                    m.id,
                    m.sender,
                    m.control_id.unwrap_or_default(),
                    m.message_type,
                    m.status,
                    m.errors.replace('\n', " / ")
                );
            }
            Ok(true)
        }
        Hl7Command::Stats { file } => hl7cmd::run_stats(&file),
        Hl7Command::Send { file, to } => {
            tokio::task::spawn_blocking(move || hl7cmd::run_send(&file, &to)).await?
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<bool> {
    if matches!(
        cli.command,
        Command::Serve | Command::Demo { .. } | Command::Org { .. }
    ) {
        // Before the demo's seed reads them.
        server::services::monitoring::load_programmes(config.programmes_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("programmes de télésurveillance : {e}"))?;
    }
    match cli.command {
        Command::Programme { file } => return programme_check(&file),
        Command::Init {
            territory,
            ipp_oid,
            admin,
            email,
        } => return init(&config, &territory, &ipp_oid, &admin, email.as_deref()).await,
        Command::Org { command } => return org(&config, command).await,
        Command::Serve => serve(config).await?,
        Command::Demo { seed_only } => {
            let store = open_store(&config).await?;
            let report = demo::seed(&store, now_ms()).await?;
            let fed = demo::animate(&store, &config, now_ms()).await?;
            println!(
                "Territoire de démonstration prêt ({} éléments créés, {fed} messages ADT des dernières 24 h appliqués).",
                report.created
            );
            store.close().await;
            print_demo_logins();
            if !seed_only {
                serve(config).await?;
            }
        }
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!(
                "Migrations appliquées: {:?}",
                store.applied_migrations().await?
            );
        }
        Command::DefaultConfig => print!("{}", Config::example_toml()),
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    name,
                    roles,
                    rpps,
                    password_env,
                },
        } => user_add(&config, username, name, roles, rpps, password_env).await?,
        Command::Client {
            command:
                ClientCommand::Add {
                    client_id,
                    name,
                    establishment,
                    role,
                },
        } => client_add(&config, client_id, name, establishment, role).await?,
        Command::Client {
            command:
                ClientCommand::Keys {
                    client_id,
                    jwks,
                    jwks_url,
                    scopes,
                },
        } => client_keys(&config, &client_id, jwks, jwks_url, scopes).await?,
        Command::Audit {
            command: AuditCommand::Verify { archives },
        } => return ops::audit_verify(&config, archives).await,
        Command::Audit {
            command:
                AuditCommand::Export {
                    from,
                    through,
                    file,
                },
        } => ops::audit_export(&config, from, through, &file).await?,
        Command::Backup { file } => ops::backup(&config, &file).await?,
        Command::Restore { file } => return ops::restore(&config, &file).await,
        Command::Prune => ops::prune(&config).await?,
        Command::Outbox { command } => ops::outbox(&config, command).await?,
        Command::Hl7 { command } => return hl7(&config, command).await,
        Command::SecretKey {
            command: SecretKeyCommand::Rotate,
        } => {
            let store = open_store(&config).await?;
            let path = config.secret_key_file();
            let id = server::secrets::rotate(&store, &path).await?;
            println!(
                "Nouvelle clé {id} en place dans {}; l'ancienne est gardée dans {}.previous.",
                path.display(),
                path.display()
            );
        }
        Command::Totp { secret } => {
            let secs = u64::try_from(SystemClock.now().as_second()).unwrap_or(0);
            println!(
                "{}",
                auth::totp_code(&secret, secs).context("secret base32 invalide")?
            );
        }
    }
    Ok(true)
}

/// Logs to stderr: text, or one JSON object per line (`log_format = "json"`)
/// with the fields of the spans around (an HTTP request's id, route and
/// method). Level from `PARCOURS_LOG` (default `info`).
fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARCOURS_LOG")
        .unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            init_logs("text");
            eprintln!("erreur: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(&config.log_format);
    match run(cli, config).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("erreur: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
