//! The establishment's secure-messaging mailbox, read by IMAP polling: every
//! unread mail is fetched without marking it (`BODY.PEEK[]`), taken in
//! (`services::intake`), and only then marked `\Seen`; a mail whose intake
//! failed stays unread and is tried at the next look. Logs say counts, never
//! a patient. Plain IMAP to a local mail server (`imap://`); TLS to an
//! operator's server would wrap the same stream.

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
    user: String,
    password: String,
    mailbox: String,
    finess: String,
    every: Duration,
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
        let rest = url
            .strip_prefix("imap://")
            .ok_or_else(|| format!("PARCOURS_IMAP_URL doit commencer par imap:// : {url}"))?;
        let (authority, mailbox) = rest.split_once('/').unwrap_or((rest, "INBOX"));
        let (user, hostport) = authority.rsplit_once('@').ok_or_else(|| {
            "PARCOURS_IMAP_URL : l'utilisateur manque (imap://utilisateur@hôte:port/INBOX)"
                .to_owned()
        })?;
        if user.contains(':') {
            return Err(
                "PARCOURS_IMAP_URL : le mot de passe se donne à part (PARCOURS_IMAP_PASSWORD)"
                    .into(),
            );
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| "PARCOURS_IMAP_URL : port illisible".to_owned())?,
            ),
            None => (hostport.to_owned(), 143),
        };
        let password = c
            .imap_password
            .clone()
            .ok_or_else(|| "PARCOURS_IMAP_PASSWORD manque".to_owned())?;
        let finess = c.imap_finess.clone().ok_or_else(|| {
            "PARCOURS_IMAP_FINESS manque : à quel établissement est cette boîte ?".to_owned()
        })?;
        Ok(Some(MailboxConfig {
            host,
            port,
            user: user.to_owned(),
            password,
            mailbox: if mailbox.is_empty() { "INBOX" } else { mailbox }.to_owned(),
            finess,
            every: Duration::from_secs(c.imap_poll_seconds.max(1)),
        }))
    }
}

fn imap_error(e: impl std::fmt::Display) -> String {
    format!("IMAP : {e}")
}

/// One look at the mailbox: what the unread mails brought.
pub async fn poll_once(state: &AppState, cfg: &MailboxConfig) -> Result<Report, String> {
    let est = state
        .store
        .establishment_by_finess(&cfg.finess)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("aucun établissement de FINESS {}", cfg.finess))?;
    let stream = tokio::net::TcpStream::connect((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| format!("connexion à {}:{} : {e}", cfg.host, cfg.port))?;
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
        match crate::services::intake::take_mail(state, &est, &raw).await {
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

/// Looks at the mailbox every `imap_poll_seconds` until shutdown.
pub async fn run(state: AppState, cfg: MailboxConfig, mut shutdown: watch::Receiver<bool>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(300), poll_once(&state, &cfg)).await {
            Ok(Ok(r)) if r != Report::default() => tracing::info!(
                filed = r.filed,
                queued = r.queued,
                rejected = r.rejected,
                duplicates = r.duplicates,
                "mail intake"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "mail intake: mailbox unavailable"),
            Err(_) => tracing::warn!("mail intake: the mailbox took over 5 minutes"),
        }
        tokio::select! {
            () = tokio::time::sleep(cfg.every) => {}
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
            Some("imap://boite@mail.local"),
            Some("s"),
            Some("450000013"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.host.as_str(), m.port, m.user.as_str(), m.mailbox.as_str()),
            ("mail.local", 143, "boite", "INBOX")
        );
        assert_eq!(m.every, Duration::from_secs(30));
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
        assert!(
            !format!("{m:?}").contains('s') || !format!("{m:?}").contains("password"),
            "no password in Debug"
        );
        let err = |u: &str, p: Option<&str>, f: Option<&str>| {
            MailboxConfig::from_config(&cfg(Some(u), p, f)).unwrap_err()
        };
        assert!(err("imaps://x@h", Some("s"), Some("1")).contains("imap://"));
        assert!(err("imap://h:143", Some("s"), Some("1")).contains("l'utilisateur manque"));
        assert!(err("imap://u:pw@h", Some("s"), Some("1")).contains("PARCOURS_IMAP_PASSWORD"));
        assert!(err("imap://u@h:x", Some("s"), Some("1")).contains("port illisible"));
        assert_eq!(
            err("imap://u@h", None, Some("1")),
            "PARCOURS_IMAP_PASSWORD manque"
        );
        assert!(err("imap://u@h", Some("s"), None).contains("PARCOURS_IMAP_FINESS manque"));
    }
}
