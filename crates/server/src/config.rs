//! Configuration: one typed struct. Defaults that run; then `parcours.toml` (or the
//! file named by `PARCOURS_CONFIG`); then `PARCOURS_*` environment variables, last
//! wins. Unknown keys are refused; the database URL is redacted in `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the server needs to start.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listen address.
    pub listen: String,
    /// MLLP (HL7 v2) listen address.
    pub mllp_listen: String,
    /// Where the embedded database and files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `parcours.db` in the data dir.
    pub database_url: Option<String>,
    /// NATS server (`nats://127.0.0.1:4222`) carrying live events between the
    /// nodes of a cluster; unset: one node, live events stay in the process.
    pub nats_url: Option<String>,
    /// This node's name in logs, job runs and NATS (default: a random one).
    pub node_id: Option<String>,
    /// The URL users reach (for links and FHIR fullUrl); default `http://` + listen.
    /// Cookies are marked `Secure` when it starts with `https://`.
    pub public_url: Option<String>,
    /// Lifetime of a logged-in session, in minutes.
    pub session_ttl_minutes: i64,
    /// How often (seconds) an open WebSocket checks that its session is still
    /// valid in the store (an account disabled elsewhere); logout closes it at once.
    pub session_check_seconds: u64,
    /// Lifetime of an OAuth2 access token, in seconds.
    pub token_ttl_seconds: i64,
    /// Failed logins in a row before the account is locked.
    pub login_max_failures: i64,
    /// How long a locked account stays locked, in minutes.
    pub login_lock_minutes: i64,
    /// Login and token attempts allowed per client address and minute.
    pub login_attempts_per_minute: u32,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// OpenID Connect providers professionals (or patients) may sign in with
    /// (`[[oidc]]` tables: Pro Santé Connect, the GHT's own).
    pub oidc: Vec<crate::oidc::ProviderConfig>,
    /// Where ORU^R01 results go (`HOST:PORT`, MLLP), if anywhere.
    pub oru_destination: Option<String>,
    /// Where SIU messages go (`HOST:PORT`, MLLP): the clinic's own agenda, told of
    /// each booking (S12) and cancellation (S15) made here.
    pub siu_destination: Option<String>,
    /// WebRTC ICE servers for the consultation room, as the JSON array the
    /// browser's `RTCPeerConnection` takes (STUN, TURN with credentials); none
    /// by default (enough on one network).
    pub ice_servers: Option<String>,
    /// A folder of monitoring programme files (`*.json`) that add to or replace
    /// (same id) the shipped ones; read at start, a bad file stops the start.
    pub programmes_dir: Option<PathBuf>,
    /// The SMTP server notices and documents go through: `smtp://host:port`
    /// (plain, a relay of the establishment), `smtp://host:587?tls=required`
    /// (STARTTLS, as MSSanté operators ask) or `smtps://host:465`; none:
    /// notices stay on the portal and documents wait.
    pub smtp_url: Option<String>,
    /// The sender of those mails.
    pub smtp_from: String,
    /// The SMS centre (SMPP 3.4): `smpp://host:port`; none: no SMS.
    pub smpp_url: Option<String>,
    /// The SMS account's system id (from the environment).
    pub smpp_system_id: Option<String>,
    /// Its password (from the environment, never the file).
    pub smpp_password: Option<String>,
    /// The sender shown on phones (11 characters at most).
    pub smpp_source: String,
    /// The CA certificates (PEM) the SMTP server's certificate must chain to,
    /// e.g. the IGC-Santé chain of an MSSanté operator; none: the system's.
    pub smtp_ca: Option<PathBuf>,
    /// The establishment's certificate (PEM) presented to the SMTP server
    /// after STARTTLS (MSSanté: the organisation's software certificate).
    pub smtp_cert: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8 or PKCS#1). Keep it out of the repository.
    pub smtp_key: Option<PathBuf>,
    /// The establishment's secure-messaging mailbox documents arrive in, read
    /// by IMAP polling: `imap://user@host:port/INBOX` (plain, a local server)
    /// or `imaps://user@host:993/INBOX` (TLS); the password apart, in
    /// `imap_password`; none: no mail intake.
    pub imap_url: Option<String>,
    /// Its password (give it through `PARCOURS_IMAP_PASSWORD`, never in a file
    /// under version control).
    pub imap_password: Option<String>,
    /// With `imaps://`: the CA certificates (PEM) the server's certificate must
    /// chain to (an MSSanté operator: IGC-Santé); none: the system's.
    pub imap_ca: Option<PathBuf>,
    /// With `imaps://`: the establishment's certificate (PEM) and its key.
    pub imap_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub imap_key: Option<PathBuf>,
    /// The FINESS of the establishment the mailbox belongs to: documents are
    /// filed there.
    pub imap_finess: Option<String>,
    /// Seconds between two looks at the mailbox.
    pub imap_poll_seconds: u64,
    /// The MHD Document Recipient documents go to (the DMP, or a territory's
    /// repository): its FHIR base, e.g. `https://dmp.example.fr/fhir`.
    pub mhd_destination: Option<String>,
    /// Its OAuth2 token endpoint (client credentials), if it wants a token.
    pub mhd_token_url: Option<String>,
    /// The client id there.
    pub mhd_client_id: Option<String>,
    /// The client secret there (environment only, never written out).
    #[serde(skip_serializing)]
    pub mhd_client_secret: Option<String>,
    /// The teleconsultation fee, in euro cents.
    pub teleconsultation_fee_cents: i64,
    /// The file of the key that seals secrets at rest (TOTP seeds); created on
    /// first start; default `secret.key` in the data folder. Keep it out of
    /// the database's backups and of the repository.
    pub secret_key_file: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are
    /// believed (addresses or CIDR blocks); from anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Largest MLLP frame accepted, in bytes.
    pub mllp_max_frame_bytes: usize,
    /// MLLP connections served at once (beyond: the oldest connection that has
    /// not yet sent a message from a declared sender is closed, or the new one
    /// refused).
    pub mllp_max_connections: usize,
    /// Seconds an MLLP connection may stay silent (or a frame may take to
    /// arrive whole) before it is closed.
    pub mllp_idle_seconds: u64,
    /// MLLP over TLS (client certificates required) listen address, if any.
    pub mllp_tls_listen: Option<String>,
    /// The listener's certificate chain (PEM).
    pub mllp_tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub mllp_tls_key: Option<PathBuf>,
    /// The CA (PEM) senders' client certificates must chain to.
    pub mllp_tls_client_ca: Option<PathBuf>,
    /// For `mllps://` destinations (ORU, SIU): the CA (PEM) the receiver's
    /// certificate must chain to; none: the system's.
    pub mllp_out_ca: Option<PathBuf>,
    /// For `mllps://` destinations: our client certificate (PEM).
    pub mllp_out_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub mllp_out_key: Option<PathBuf>,
    /// The payment provider's API (Stripe or a Stripe-compatible one), e.g.
    /// `https://api.stripe.com`; online payment is off without it.
    pub payment_api_url: Option<String>,
    /// The provider's secret API key (environment only, never written out).
    #[serde(skip_serializing)]
    pub payment_secret_key: Option<String>,
    /// The secret the provider signs webhooks with (`whsec_…`; environment only).
    #[serde(skip_serializing)]
    pub payment_webhook_secret: Option<String>,
    /// How long each kind of record is kept (`[retention]`).
    pub retention: Retention,
    /// The bearer token `/metrics` asks for (environment only, never written
    /// out); without it, `/metrics` answers only on `metrics_listen`.
    #[serde(skip_serializing)]
    pub metrics_token: Option<String>,
    /// A separate address serving only `/metrics` (e.g. `127.0.0.1:9464`,
    /// reachable by the monitoring network alone), without a token.
    pub metrics_listen: Option<String>,
    /// `text` (default) or `json`: one JSON object per line, with the request
    /// id of each HTTP request in its span.
    pub log_format: String,
}

/// How long each kind of record stays, as a duration (`90d`, `12h`, `30m`,
/// `45s`) or `off` (kept for good). Pruning runs every `every`, once across
/// the nodes, in batches of `batch` rows.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// HL7 messages accepted (AA) and their ACKs.
    pub hl7_messages: String,
    /// HL7 messages in error or refused (AE, AR): kept longer, for review;
    /// an administrator may purge one sooner from the message's page.
    pub hl7_errors: String,
    /// Outbox messages delivered (dead letters stay until revived or discarded).
    pub outbox_delivered: String,
    /// Sessions, API tokens, one-time links and sign-ins under way, this long
    /// after they expired.
    pub expired: String,
    /// The audit trail: entries older than this are exported to
    /// `audit_archive_dir`, a checkpoint proves the cut, then they leave.
    /// Access logs of health data are kept for years: `off` by default.
    pub audit: String,
    /// Where audit archives are written (default: `audit-archive` in the data
    /// folder). Keep them with the backups.
    pub audit_archive_dir: Option<PathBuf>,
    /// How often pruning runs.
    pub every: String,
    /// Rows removed per transaction.
    pub batch: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            hl7_messages: "90d".into(),
            hl7_errors: "365d".into(),
            outbox_delivered: "30d".into(),
            expired: "1d".into(),
            audit: "off".into(),
            audit_archive_dir: None,
            every: "5m".into(),
            batch: 500,
        }
    }
}

/// A duration the configuration cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("durée invalide (attendu : 90d, 12h, 30m, 45s ou off)")]
pub struct BadSpan;

/// A duration as the configuration writes it: `90d`, `12h`, `30m`, `45s`, in
/// milliseconds; `off` is `None`.
pub fn parse_span(text: &str) -> Result<Option<i64>, BadSpan> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = t.len().checked_sub(1).ok_or(BadSpan)?;
    let (n, unit) = (
        t.get(..split).ok_or(BadSpan)?,
        t.get(split..).ok_or(BadSpan)?,
    );
    let n: i64 = n.parse().map_err(|_| BadSpan)?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => return Err(BadSpan),
    };
    if n <= 0 {
        return Err(BadSpan);
    }
    n.checked_mul(ms).map(Some).ok_or(BadSpan)
}

impl Retention {
    /// Each duration setting's name and value, for the checks at load.
    fn spans(&self) -> [(&'static str, &str); 6] {
        [
            ("retention.hl7_messages", &self.hl7_messages),
            ("retention.hl7_errors", &self.hl7_errors),
            ("retention.outbox_delivered", &self.outbox_delivered),
            ("retention.expired", &self.expired),
            ("retention.audit", &self.audit),
            ("retention.every", &self.every),
        ]
    }

    /// How long `setting` (one of the fields) keeps records, `None` for `off`
    /// (values are checked when the configuration loads).
    pub fn span_ms(&self, value: &str) -> Option<i64> {
        parse_span(value).ok().flatten()
    }

    /// The pruning period (default five minutes).
    pub fn every_ms(&self) -> i64 {
        self.span_ms(&self.every).unwrap_or(300_000)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            mllp_listen: "127.0.0.1:2575".into(),
            data_dir: PathBuf::from("./parcours-data"),
            database_url: None,
            nats_url: None,
            node_id: None,
            public_url: None,
            session_ttl_minutes: 8 * 60,
            session_check_seconds: 60,
            token_ttl_seconds: 3600,
            login_max_failures: 5,
            login_lock_minutes: 15,
            login_attempts_per_minute: 30,
            max_body_bytes: 1024 * 1024,
            oidc: Vec::new(),
            oru_destination: None,
            programmes_dir: None,
            siu_destination: None,
            ice_servers: None,
            teleconsultation_fee_cents: 3000,
            secret_key_file: None,
            trusted_proxies: Vec::new(),
            mllp_max_frame_bytes: 4 * 1024 * 1024,
            mllp_max_connections: 512,
            mllp_idle_seconds: 300,
            mllp_tls_listen: None,
            mllp_tls_cert: None,
            mllp_tls_key: None,
            mllp_tls_client_ca: None,
            mllp_out_ca: None,
            mllp_out_cert: None,
            mllp_out_key: None,
            smtp_url: None,
            smtp_from: "Parcours <ne-pas-repondre@parcours.invalid>".into(),
            smpp_url: None,
            smpp_system_id: None,
            smpp_password: None,
            smpp_source: "Parcours".into(),
            smtp_ca: None,
            smtp_cert: None,
            smtp_key: None,
            mhd_destination: None,
            mhd_token_url: None,
            mhd_client_id: None,
            mhd_client_secret: None,
            imap_url: None,
            imap_password: None,
            imap_ca: None,
            imap_cert: None,
            imap_key: None,
            imap_finess: None,
            imap_poll_seconds: 30,
            payment_api_url: None,
            payment_secret_key: None,
            payment_webhook_secret: None,
            retention: Retention::default(),
            metrics_token: None,
            metrics_listen: None,
            log_format: "text".into(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("mllp_listen", &self.mllp_listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(store::redact_url),
            )
            .field("nats_url", &self.nats_url.as_deref().map(store::redact_url))
            .field("node_id", &self.node_id)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("lecture de {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A setting (file or environment) has a bad value.
    #[error("{name} : valeur invalide {value:?} (attendu : {expected})")]
    Setting {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// An environment variable has a bad value.
    #[error("variable {name}: valeur invalide {value:?}")]
    Env {
        /// Variable.
        name: &'static str,
        /// Value.
        value: String,
    },
}

impl Config {
    /// Loads defaults, then the file (if `file` is given and exists, or
    /// `./parcours.toml` exists), then the environment read through `env`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let explicit = file
            .map(Path::to_path_buf)
            .or_else(|| env("PARCOURS_CONFIG").map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("parcours.toml"));
        let mut cfg = if path.exists() || explicit.is_some() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?
        } else {
            Config::default()
        };
        let text = |name: &str| env(name).filter(|v| !v.is_empty());
        cfg.overlay_texts(&text);
        cfg.overlay_paths(&text);
        cfg.overlay_numbers(&text)?;
        cfg.overlay_operations(&text)?;
        Ok(cfg)
    }

    /// The text settings the environment overrides.
    fn overlay_texts(&mut self, text: &dyn Fn(&str) -> Option<String>) {
        for (name, slot) in [
            ("PARCOURS_LISTEN", &mut self.listen),
            ("PARCOURS_MLLP_LISTEN", &mut self.mllp_listen),
            ("PARCOURS_SMTP_FROM", &mut self.smtp_from),
            ("PARCOURS_SMPP_SOURCE", &mut self.smpp_source),
            ("PARCOURS_LOG_FORMAT", &mut self.log_format),
            (
                "PARCOURS_RETENTION_HL7_MESSAGES",
                &mut self.retention.hl7_messages,
            ),
            (
                "PARCOURS_RETENTION_HL7_ERRORS",
                &mut self.retention.hl7_errors,
            ),
            (
                "PARCOURS_RETENTION_OUTBOX_DELIVERED",
                &mut self.retention.outbox_delivered,
            ),
            ("PARCOURS_RETENTION_EXPIRED", &mut self.retention.expired),
            ("PARCOURS_RETENTION_AUDIT", &mut self.retention.audit),
            ("PARCOURS_RETENTION_EVERY", &mut self.retention.every),
        ] {
            if let Some(v) = text(name) {
                *slot = v;
            }
        }
        for (name, slot) in [
            ("PARCOURS_DATABASE_URL", &mut self.database_url),
            ("PARCOURS_PUBLIC_URL", &mut self.public_url),
            ("PARCOURS_NATS_URL", &mut self.nats_url),
            ("PARCOURS_NODE_ID", &mut self.node_id),
            ("PARCOURS_ORU_DESTINATION", &mut self.oru_destination),
            ("PARCOURS_ICE_SERVERS", &mut self.ice_servers),
            ("PARCOURS_SIU_DESTINATION", &mut self.siu_destination),
            ("PARCOURS_SMTP_URL", &mut self.smtp_url),
            ("PARCOURS_SMPP_URL", &mut self.smpp_url),
            ("PARCOURS_SMPP_SYSTEM_ID", &mut self.smpp_system_id),
            ("PARCOURS_SMPP_PASSWORD", &mut self.smpp_password),
            ("PARCOURS_IMAP_URL", &mut self.imap_url),
            ("PARCOURS_IMAP_PASSWORD", &mut self.imap_password),
            ("PARCOURS_IMAP_FINESS", &mut self.imap_finess),
            ("PARCOURS_MHD_TOKEN_URL", &mut self.mhd_token_url),
            ("PARCOURS_MHD_CLIENT_ID", &mut self.mhd_client_id),
            ("PARCOURS_MHD_CLIENT_SECRET", &mut self.mhd_client_secret),
            ("PARCOURS_PAYMENT_API_URL", &mut self.payment_api_url),
            ("PARCOURS_PAYMENT_SECRET_KEY", &mut self.payment_secret_key),
            (
                "PARCOURS_PAYMENT_WEBHOOK_SECRET",
                &mut self.payment_webhook_secret,
            ),
            ("PARCOURS_MLLP_TLS_LISTEN", &mut self.mllp_tls_listen),
            ("PARCOURS_METRICS_TOKEN", &mut self.metrics_token),
            ("PARCOURS_METRICS_LISTEN", &mut self.metrics_listen),
        ] {
            if let Some(v) = text(name) {
                *slot = Some(v);
            }
        }
        if let Some(v) = text("PARCOURS_MHD_DESTINATION") {
            self.mhd_destination = Some(v.trim_end_matches('/').to_owned());
        }
        if let Some(v) = text("PARCOURS_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
        }
    }

    /// The file paths the environment overrides.
    fn overlay_paths(&mut self, text: &dyn Fn(&str) -> Option<String>) {
        if let Some(v) = text("PARCOURS_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        for (name, slot) in [
            ("PARCOURS_PROGRAMMES_DIR", &mut self.programmes_dir),
            (
                "PARCOURS_AUDIT_ARCHIVE_DIR",
                &mut self.retention.audit_archive_dir,
            ),
            ("PARCOURS_SMTP_CA", &mut self.smtp_ca),
            ("PARCOURS_SMTP_CERT", &mut self.smtp_cert),
            ("PARCOURS_SMTP_KEY", &mut self.smtp_key),
            ("PARCOURS_IMAP_CA", &mut self.imap_ca),
            ("PARCOURS_IMAP_CERT", &mut self.imap_cert),
            ("PARCOURS_IMAP_KEY", &mut self.imap_key),
            ("PARCOURS_SECRET_KEY_FILE", &mut self.secret_key_file),
            ("PARCOURS_MLLP_TLS_CERT", &mut self.mllp_tls_cert),
            ("PARCOURS_MLLP_TLS_KEY", &mut self.mllp_tls_key),
            ("PARCOURS_MLLP_TLS_CLIENT_CA", &mut self.mllp_tls_client_ca),
            ("PARCOURS_MLLP_OUT_CA", &mut self.mllp_out_ca),
            ("PARCOURS_MLLP_OUT_CERT", &mut self.mllp_out_cert),
            ("PARCOURS_MLLP_OUT_KEY", &mut self.mllp_out_key),
        ] {
            if let Some(v) = text(name) {
                *slot = Some(PathBuf::from(v));
            }
        }
    }

    /// The numbers the environment overrides; a value out of range is an error
    /// naming the setting.
    fn overlay_numbers(
        &mut self,
        text: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let number = |name: &'static str, min: i64| -> Result<Option<i64>, ConfigError> {
            match text(name) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= min)
                    .map(Some)
                    .ok_or(ConfigError::Env { name, value: v }),
            }
        };
        let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
        if let Some(n) = number("PARCOURS_IMAP_POLL_SECONDS", 1)? {
            self.imap_poll_seconds = n.try_into().unwrap_or(u64::MAX);
        }
        if let Some(n) = number("PARCOURS_TELECONSULTATION_FEE_CENTS", 0)? {
            self.teleconsultation_fee_cents = n;
        }
        if let Some(n) = number("PARCOURS_MLLP_MAX_FRAME_BYTES", 1024)? {
            self.mllp_max_frame_bytes = size(n);
        }
        if let Some(n) = number("PARCOURS_MLLP_MAX_CONNECTIONS", 1)? {
            self.mllp_max_connections = size(n);
        }
        if let Some(n) = number("PARCOURS_MLLP_IDLE_SECONDS", 1)? {
            self.mllp_idle_seconds = n.try_into().unwrap_or(u64::MAX);
        }
        if let Some(n) = number("PARCOURS_SESSION_TTL_MINUTES", i64::MIN)? {
            self.session_ttl_minutes = n;
        }
        Ok(())
    }

    /// The retention batch from the environment, then the operations
    /// settings checked whatever their source (file or environment): every
    /// duration, the batch, the log format; a bad one names its setting.
    fn overlay_operations(
        &mut self,
        text: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = text("PARCOURS_RETENTION_BATCH") {
            self.retention.batch = v.parse().map_err(|_| ConfigError::Env {
                name: "PARCOURS_RETENTION_BATCH",
                value: v,
            })?;
        }
        if !(1..=100_000).contains(&self.retention.batch) {
            return Err(ConfigError::Setting {
                name: "retention.batch",
                value: self.retention.batch.to_string(),
                expected: "de 1 à 100000 lignes",
            });
        }
        for (name, value) in self.retention.spans() {
            if parse_span(value).is_err() || (name == "retention.every" && value.trim() == "off") {
                return Err(ConfigError::Setting {
                    name,
                    value: value.to_owned(),
                    expected: "une durée : 90d, 12h, 30m, 45s, ou off",
                });
            }
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Setting {
                name: "log_format",
                value: self.log_format.clone(),
                expected: "text ou json",
            });
        }
        Ok(())
    }

    /// Where audit archives go.
    pub fn audit_archive_dir(&self) -> PathBuf {
        self.retention
            .audit_archive_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-archive"))
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("parcours.db").display()))
    }

    /// The public base URL, without trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The secret key file in force.
    pub fn secret_key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// Whether cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// An example file with every key and its default.
    pub fn example_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# parcours.toml — every key is optional; PARCOURS_* environment variables override it.\n\
             # database_url = \"postgres://parcours@127.0.0.1:5432/parcours\"  # default: SQLite in data_dir\n\
             # nats_url = \"nats://127.0.0.1:4222\"  # several nodes: live events between them\n\
             # public_url = \"https://parcours.example.fr\"\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_run_without_a_file() {
        let c = Config::load(Some(Path::new("/nonexistent/parcours.toml")), &no_env);
        assert!(
            matches!(c, Err(ConfigError::Read { .. })),
            "an explicit missing file is an error"
        );
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.mllp_listen, "127.0.0.1:2575");
        assert_eq!(c.database_url(), "sqlite://./parcours-data/parcours.db");
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert!(!c.secure_cookies());
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("parcours-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("parcours.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\npublic_url = \"https://p.example/\"\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "PARCOURS_DATABASE_URL" => Some("postgres://u:pw@h/db".to_owned()),
            "PARCOURS_DATA_DIR" => Some("/var/lib/parcours".to_owned()),
            _ => None,
        };
        let c = Config::load(Some(&file), &env).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.public_url(), "https://p.example");
        assert!(c.secure_cookies());
        assert_eq!(c.database_url(), "postgres://u:pw@h/db");
        assert!(
            !format!("{c:?}").contains("pw"),
            "secrets are redacted in Debug"
        );
        let env = |k: &str| (k == "PARCOURS_LISTEN").then(|| "127.0.0.1:1".to_owned());
        assert_eq!(
            Config::load(Some(&file), &env).unwrap().listen,
            "127.0.0.1:1"
        );
        std::fs::write(&file, "lisen = \"typo\"\n").unwrap();
        let err = Config::load(Some(&file), &no_env).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        let env = |k: &str| (k == "PARCOURS_SESSION_TTL_MINUTES").then(|| "soon".to_owned());
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(
            Config::load(None, &env),
            Err(ConfigError::Env { .. })
        ));
    }

    #[test]
    fn example_parses_back() {
        let text = Config::example_toml();
        let c: Config = toml::from_str(&text).unwrap();
        assert_eq!(c.listen, Config::default().listen);
    }
}
