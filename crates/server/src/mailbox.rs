//! The establishments' secure-messaging mailboxes (the instance's, and each
//! establishment's own from its organisation file), read by IMAP polling: every
//! unread mail is fetched without marking it (`BODY.PEEK[]`), taken in
//! (`services::intake`), and only then marked `\Seen`; a mail whose intake
//! failed stays unread and is tried at the next look. Logs say counts, never
//! a patient. Plain IMAP to a local mail server (`imap://`), or IMAPS
//! (`imaps://`, rustls) to an operator's, trusting its CA and presenting the
//! establishment's certificate.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;

use crate::services::intake::Report;
use crate::state::AppState;

/// Where and how to read the mailbox.
#[derive(Clone)]
pub struct MailboxConfig {
    host: String,
    port: u16,
    /// TLS from the first byte (`imaps://`), with whom to trust and who we are.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    user: String,
    password: String,
    mailbox: String,
    finess: String,
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .field("finess", &self.finess)
            .finish_non_exhaustive()
    }
}

impl MailboxConfig {
    /// From the configuration: `None` without `imap_url`; a clear error for
    /// anything that cannot be used.
    pub fn from_config(c: &crate::config::Config) -> Result<Option<MailboxConfig>, String> {
        let Some(url) = c.imap_url.as_deref() else {
            return Ok(None);
        };
        let password = c
            .imap_password
            .clone()
            .ok_or_else(|| "PARCOURS_IMAP_PASSWORD manque".to_owned());
        let finess = c.imap_finess.clone().ok_or_else(|| {
            "PARCOURS_IMAP_FINESS manque : à quel établissement est cette boîte ?".to_owned()
        });
        Self::parse(c, url, || password, || finess, "PARCOURS_IMAP_URL").map(Some)
    }

    /// An establishment's own mailbox, as its organisation file names it
    /// (`imap_url`, and `imap_password_file` read now); the instance's TLS
    /// files (CA, certificate) serve for it.
    pub fn for_establishment(
        c: &crate::config::Config,
        finess: &str,
        url: &str,
        password_file: Option<&str>,
    ) -> Result<MailboxConfig, String> {
        let password = || {
            let file = password_file.ok_or_else(|| "imap_password_file manque".to_owned())?;
            std::fs::read_to_string(file)
                .map(|p| p.trim().to_owned())
                .map_err(|e| format!("imap_password_file ({file}) illisible : {e}"))
        };
        Self::parse(c, url, password, || Ok(finess.to_owned()), "imap_url")
    }

    /// Reads `url` (named `what` in errors); the password and the FINESS are
    /// asked for only once the URL is known good.
    fn parse(
        c: &crate::config::Config,
        url: &str,
        password: impl FnOnce() -> Result<String, String>,
        finess: impl FnOnce() -> Result<String, String>,
        what: &str,
    ) -> Result<MailboxConfig, String> {
        let (secure, rest) = match (url.strip_prefix("imaps://"), url.strip_prefix("imap://")) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            (None, None) => {
                return Err(format!(
                    "{what} doit commencer par imap:// ou imaps:// : {url}"
                ));
            }
        };
        let (authority, mailbox) = rest.split_once('/').unwrap_or((rest, "INBOX"));
        let (user, hostport) = authority.rsplit_once('@').ok_or_else(|| {
            format!("{what} : l'utilisateur manque (imap://utilisateur@hôte:port/INBOX)")
        })?;
        if user.contains(':') {
            return Err(format!(
                "{what} : le mot de passe se donne à part (PARCOURS_IMAP_PASSWORD, imap_password_file)"
            ));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| format!("{what} : port illisible"))?,
            ),
            None => (hostport.to_owned(), if secure { 993 } else { 143 }),
        };
        let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]");
        if !secure && !loopback {
            return Err(format!(
                "{what} : le mot de passe ne part pas en clair vers {host} ; utilisez imaps://"
            ));
        }
        let tls = if secure {
            Some(std::sync::Arc::new(tls_config(c)?))
        } else if c.imap_ca.is_some() || c.imap_cert.is_some() {
            return Err(format!(
                "PARCOURS_IMAP_CA / PARCOURS_IMAP_CERT sans TLS : utilisez imaps:// dans {what}"
            ));
        } else {
            None
        };
        Ok(MailboxConfig {
            host,
            port,
            tls,
            user: user.to_owned(),
            password: password()?,
            mailbox: if mailbox.is_empty() { "INBOX" } else { mailbox }.to_owned(),
            finess: finess()?,
        })
    }
}

/// The TLS client of the mailbox: the configured CA (else the system's
/// roots), and the establishment's certificate when given.
fn tls_config(c: &crate::config::Config) -> Result<rustls::ClientConfig, String> {
    crate::tls::client(
        "PARCOURS_IMAP",
        c.imap_ca.as_deref(),
        c.imap_cert.as_deref(),
        c.imap_key.as_deref(),
    )
}

fn imap_error(e: impl std::fmt::Display) -> String {
    format!("IMAP : {e}")
}

/// One look at the mailbox: what the unread mails brought.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn poll_once(state: &AppState, cfg: &MailboxConfig) -> Result<Report, String> {
    let est = state
        .store
        .establishment_by_finess(&cfg.finess)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("aucun établissement de FINESS {}", cfg.finess))?;
    let tcp = tokio::net::TcpStream::connect((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| format!("connexion à {}:{} : {e}", cfg.host, cfg.port))?;
    match &cfg.tls {
        None => read_mailbox(state, cfg, &est, tcp).await,
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from(cfg.host.clone())
                .map_err(|e| format!("TLS : nom de serveur {} : {e}", cfg.host))?;
            let stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS avec {}:{} : {e}", cfg.host, cfg.port))?;
            read_mailbox(state, cfg, &est, stream).await
        }
    }
}

/// Logs in over `stream` and takes in every unread mail.
async fn read_mailbox<S>(
    state: &AppState,
    cfg: &MailboxConfig,
    est: &store::orgs::Establishment,
    stream: S,
) -> Result<Report, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await
        .map_err(imap_error)?
        .ok_or_else(|| "IMAP : pas de message d'accueil".to_owned())?;
    let mut session = client
        .login(&cfg.user, &cfg.password)
        .await
        .map_err(|(e, _)| imap_error(e))?;
    session.select(&cfg.mailbox).await.map_err(imap_error)?;
    let mut uids: Vec<u32> = session
        .uid_search("UNSEEN")
        .await
        .map_err(imap_error)?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut report = Report::default();
    for uid in uids {
        let mut body = None;
        {
            let mut fetches = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .map_err(imap_error)?;
            while let Some(f) = fetches.next().await {
                let f = f.map_err(imap_error)?;
                if let Some(b) = f.body() {
                    body = Some(b.to_vec());
                }
            }
        }
        let Some(raw) = body else { continue };
        match crate::services::intake::take_mail(state.ctx(), est, &raw).await {
            Ok(r) => {
                report.filed += r.filed;
                report.queued += r.queued;
                report.rejected += r.rejected;
                report.duplicates += r.duplicates;
                report.seen += r.seen;
                let mut stored = session
                    .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                    .await
                    .map_err(imap_error)?;
                while let Some(s) = stored.next().await {
                    s.map_err(imap_error)?;
                }
            }
            Err(e) => {
                tracing::warn!(uid, error = %e, "mail intake failed; the mail stays unread");
            }
        }
    }
    session.logout().await.map_err(imap_error)?;
    Ok(report)
}

/// The mailboxes to read now: the instance's (`PARCOURS_IMAP_URL`) and every
/// establishment's own (`imap_url` in its organisation file), read again at
/// each round so that an applied file takes effect without a restart. One
/// that cannot be used is said (its establishment, never a patient) and the
/// others are still read.
pub async fn mailboxes(state: &AppState) -> Vec<MailboxConfig> {
    let mut all = Vec::new();
    match MailboxConfig::from_config(&state.config) {
        Ok(Some(m)) => all.push(m),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "mail intake: instance mailbox unusable"),
    }
    let urls = match state.store.settings_named("imap_url").await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "mail intake: establishments' mailboxes unread");
            return all;
        }
    };
    for (establishment, url) in urls {
        let (est, password_file) = match (
            state.store.establishment(establishment).await,
            state
                .store
                .establishment_setting(establishment, "imap_password_file")
                .await,
        ) {
            (Ok(e), Ok(p)) => (e, p),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "mail intake: establishment unread");
                continue;
            }
        };
        match MailboxConfig::for_establishment(
            &state.config,
            &est.finess,
            &url,
            password_file.as_deref(),
        ) {
            // The instance's mailbox already reads this one.
            Ok(m) if all.iter().any(|o| o.same_box(&m)) => {}
            Ok(m) => all.push(m),
            Err(e) => {
                tracing::warn!(finess = %est.finess, error = %e, "mail intake: establishment's mailbox unusable");
            }
        }
    }
    all
}

impl MailboxConfig {
    fn same_box(&self, o: &MailboxConfig) -> bool {
        (&self.host, self.port, &self.user, &self.mailbox) == (&o.host, o.port, &o.user, &o.mailbox)
    }
}

/// Looks at every mailbox every `imap_poll_seconds` until shutdown.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.config.imap_poll_seconds.max(1));
    loop {
        for cfg in mailboxes(&state).await {
            // One node reads a mailbox at a time (the others skip it this
            // round); the lease outlives the five-minute cap of a round.
            let lease = format!("mailbox:{}", cfg.finess);
            let node = state.live.node().to_owned();
            match state
                .store
                .take_lease(&lease, &node, state.now_ms(), 360_000)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "mail intake: lease unavailable");
                    continue;
                }
            }
            let polled =
                tokio::time::timeout(Duration::from_secs(300), poll_once(&state, &cfg)).await;
            if let Err(e) = state.store.release_lease(&lease, &node).await {
                tracing::warn!(error = %e, "mail intake: lease not given back");
            }
            match polled {
                Ok(Ok(r)) if r != Report::default() => tracing::info!(
                    finess = %cfg.finess,
                    filed = r.filed,
                    queued = r.queued,
                    rejected = r.rejected,
                    duplicates = r.duplicates,
                    "mail intake"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(finess = %cfg.finess, error = %e, "mail intake: mailbox unavailable");
                }
                Err(_) => {
                    tracing::warn!(finess = %cfg.finess, "mail intake: the mailbox took over 5 minutes");
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(
        url: Option<&str>,
        password: Option<&str>,
        finess: Option<&str>,
    ) -> crate::config::Config {
        crate::config::Config {
            imap_url: url.map(str::to_owned),
            imap_password: password.map(str::to_owned),
            imap_finess: finess.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn the_mailbox_url_is_read_or_refused_with_why() {
        assert!(
            MailboxConfig::from_config(&cfg(None, None, None))
                .unwrap()
                .is_none()
        );
        let m = MailboxConfig::from_config(&cfg(
            Some("imap://boite@localhost"),
            Some("motdepasse-secret"),
            Some("450000013"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.user.as_str(), m.mailbox.as_str()),
            ("localhost", 143, "boite", "INBOX")
        );
        assert!(
            !format!("{m:?}").contains("motdepasse-secret"),
            "no password in Debug"
        );
        // Plain IMAP only on this machine: a password does not cross a network in clear.
        assert!(
            MailboxConfig::from_config(&cfg(Some("imap://boite@mail.local"), Some("s"), Some("1")))
                .unwrap_err()
                .contains("le mot de passe ne part pas en clair vers mail.local")
        );
        let m = MailboxConfig::from_config(&cfg(
            Some("imap://a.b@c@127.0.0.1:1143/Recus"),
            Some("s"),
            Some("1"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.user.as_str(), m.port, m.mailbox.as_str()),
            ("a.b@c", 1143, "Recus")
        );
        let err = |u: &str, p: Option<&str>, f: Option<&str>| {
            MailboxConfig::from_config(&cfg(Some(u), p, f)).unwrap_err()
        };
        assert!(err("pop3://x@h", Some("s"), Some("1")).contains("imap:// ou imaps://"));
        let m = MailboxConfig::from_config(&cfg(
            Some("imaps://boite@mss.operateur.fr"),
            Some("s"),
            Some("1"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(m.port, 993, "IMAPS by default on 993");
        assert!(m.tls.is_some());
        let mut c = cfg(Some("imaps://u@h"), Some("s"), Some("1"));
        c.imap_ca = Some("/nonexistent/ca.pem".into());
        assert!(
            MailboxConfig::from_config(&c)
                .unwrap_err()
                .contains("PARCOURS_IMAP_CA (/nonexistent/ca.pem) illisible")
        );
        c.imap_url = Some("imap://u@127.0.0.1".into());
        assert!(
            MailboxConfig::from_config(&c)
                .unwrap_err()
                .contains("sans TLS : utilisez imaps://")
        );
        let mut c = cfg(Some("imaps://u@h"), Some("s"), Some("1"));
        c.imap_cert = Some("/tmp/c.pem".into());
        assert!(
            MailboxConfig::from_config(&c)
                .unwrap_err()
                .contains("vont ensemble")
        );
        assert!(err("imap://h:143", Some("s"), Some("1")).contains("l'utilisateur manque"));
        assert!(err("imap://u:pw@h", Some("s"), Some("1")).contains("PARCOURS_IMAP_PASSWORD"));
        assert!(err("imap://u@h:x", Some("s"), Some("1")).contains("port illisible"));
        assert_eq!(
            err("imap://u@127.0.0.1", None, Some("1")),
            "PARCOURS_IMAP_PASSWORD manque"
        );
        assert!(err("imap://u@127.0.0.1", Some("s"), None).contains("PARCOURS_IMAP_FINESS manque"));
    }
}
