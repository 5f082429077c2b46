//! Building and running the application: connect and migrate the store, bind the
//! HTTP listener (port 0 works: tests read the bound port), serve until a shutdown
//! signal, then close the pools. Every task the server starts is owned here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use domain::Clock;
use store::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// A built, bound, not yet running application.
pub struct Application {
    listener: TcpListener,
    mllp: TcpListener,
    mllp_tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    state: AppState,
    ingest_rx: tokio::sync::mpsc::Receiver<crate::ingest::Job>,
    /// The NATS link of a cluster node.
    nats: Option<(crate::live::Link, crate::live::Outgoing)>,
    /// The address serving `/metrics` alone, when configured.
    metrics_listener: Option<TcpListener>,
}

impl Application {
    /// Connects to the configured database, applies migrations and binds.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "création du dossier de données {}",
                    config.data_dir.display()
                )
            })?;
        }
        let store = Store::connect(&url)
            .await
            .with_context(|| format!("connexion à {}", store::redact_url(&url)))?;
        Self::build_with_store(config, store, clock).await
    }

    /// Same, on a store the caller opened.
    pub async fn build_with_store(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let programmes =
            crate::services::monitoring::load_programmes(config.programmes_dir.as_deref())
                .map_err(|e| anyhow::anyhow!("programmes de télésurveillance : {e}"))?;
        tracing::info!(?programmes, "monitoring programmes");
        let payment = crate::payment::Provider::from_config(&config)
            .map_err(|e| anyhow::anyhow!("configuration du paiement : {e}"))?;
        let oidc = crate::oidc::Providers::from_config(&config.oidc)
            .map_err(|e| anyhow::anyhow!("connexion fédérée : {e}"))?;
        let mailer = crate::mail::Mailer::from_config(&config)
            .map_err(|e| anyhow::anyhow!("configuration de la messagerie : {e}"))?;
        let smpp = crate::smpp::SmppConfig::from_config(&config)
            .map_err(|e| anyhow::anyhow!("configuration des SMS : {e}"))?;
        // The instance's mailbox is checked at start (a bad setting stops it);
        // establishments' are read at each round by the intake task.
        crate::mailbox::MailboxConfig::from_config(&config)
            .map_err(|e| anyhow::anyhow!("configuration de la boîte de réception : {e}"))?;
        let applied = store
            .migrate(clock.now().as_millisecond())
            .await
            .context("migrations")?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        crate::secrets::install(&store, &config.secret_key_file())
            .await
            .context("clé secrète")?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("écoute sur {}", config.listen))?;
        let mllp = TcpListener::bind(&config.mllp_listen)
            .await
            .with_context(|| format!("écoute MLLP sur {}", config.mllp_listen))?;
        let mllp_tls = match crate::tls::server_config(&config)
            .map_err(|e| anyhow::anyhow!("MLLP/TLS : {e}"))?
        {
            Some(tls) => {
                let addr = config.mllp_tls_listen.clone().unwrap_or_default();
                let l = TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("écoute MLLP/TLS sur {addr}"))?;
                Some((l, tls))
            }
            None => None,
        };
        let metrics_listener = match &config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("écoute des métriques sur {addr}"))?,
            ),
            None => None,
        };
        let mllp_client = crate::tls::client_config(&config)
            .map_err(|e| anyhow::anyhow!("MLLP/TLS sortant : {e}"))?;
        let nats_url = config.nats_url.clone();
        let mut state = AppState::new(store, clock, config);
        let nats = match nats_url {
            Some(url) => {
                let node = state.live.node().to_owned();
                let client = crate::live::connect(&url, &node)
                    .await
                    .with_context(|| format!("connexion à NATS ({})", store::redact_url(&url)))?;
                let link = crate::live::join(client, &node).await?;
                let (live, out) = crate::live::Live::clustered(node);
                state.live = Arc::new(live);
                Some((link, out))
            }
            None => None,
        };
        state.mllp_client_tls = Some(mllp_client);
        let (ingest_tx, ingest_rx) = crate::ingest::queue();
        state.ingest = Some(ingest_tx);
        state.payment = payment;
        state.oidc = Arc::new(oidc);
        state.mailer = mailer;
        if let Some(smpp) = smpp {
            // One session to the SMS centre; its delivery receipts are
            // recorded against the notices they are about.
            let (receipts_tx, mut receipts) = tokio::sync::mpsc::unbounded_channel();
            state.sms = Some(crate::smpp::spawn(
                smpp,
                receipts_tx,
                state.stopping.subscribe(),
            ));
            let (store, clock) = (state.store.clone(), state.clock.clone());
            tokio::spawn(async move {
                while let Some(r) = receipts.recv().await {
                    let now = clock.now().as_millisecond();
                    match store.record_sms_receipt(&r.message_id, &r.state, now).await {
                        Ok(true) => tracing::info!(state = %r.state, "SMS delivery receipt"),
                        Ok(false) => tracing::info!("SMS receipt for an unknown message"),
                        Err(e) => tracing::warn!(error = %e, "SMS receipt not recorded"),
                    }
                }
            });
        }
        // The outbox worker reads what a rest-hook carries through the FHIR
        // routes' own reads (wired here: nothing below `routes` imports it).
        state.notified_resource = Some(crate::routes::fhir::notified_resource_boxed);
        Ok(Application {
            listener,
            mllp,
            mllp_tls,
            state,
            ingest_rx,
            nats,
            metrics_listener,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound MLLP address.
    pub fn mllp_addr(&self) -> std::io::Result<SocketAddr> {
        self.mllp.local_addr()
    }

    /// The bound MLLP/TLS address, when configured.
    pub fn mllp_tls_addr(&self) -> Option<SocketAddr> {
        self.mllp_tls
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// The bound metrics address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state (tests use its store and clock).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and MLLP until `shutdown` completes, then lets both drain and
    /// closes the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mllp = tokio::spawn(crate::mllp::serve(
            self.mllp,
            self.mllp_tls,
            self.state.clone(),
            stop_rx.clone(),
        ));
        let outbox = tokio::spawn(crate::delivery::run(self.state.clone(), stop_rx.clone()));
        let snapshots = tokio::spawn(crate::snapshots::run(self.state.clone(), stop_rx.clone()));
        let mailbox = tokio::spawn(crate::mailbox::run(self.state.clone(), stop_rx.clone()));
        let live = self.nats.map(|(link, out)| {
            let (state, stop) = (self.state.clone(), stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::live::run(state, link, out, stop).await {
                    tracing::error!(error = %e, "live events over NATS stopped: other nodes' events no longer arrive");
                }
            })
        });
        // The intake writer stops only after the MLLP connections are done.
        let (writer_stop_tx, writer_stop_rx) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(crate::ingest::run(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.ingest_rx,
            writer_stop_rx,
        ));
        let stopping = self.state.stopping.clone();
        let metrics = self.state.metrics.clone();
        let metrics_server = self.metrics_listener.map(|l| {
            let app = crate::routes::health::metrics_only(self.state.clone());
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let served = axum::serve(l, app).with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            })
        });
        let app =
            crate::routes::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let mut http_stop = stop_rx;
        let http = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: WebSockets told to reconnect, HTTP and MLLP drained");
            // WebSockets first: each tells its page to reconnect (1012), given
            // two seconds at most; then no new connection, in-flight requests
            // and MLLP messages finish (ACKed, or the connection closed).
            let _ = stopping.send(true);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while metrics.open_websockets() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let _ = stop_tx.send(true);
        };
        let (served, ()) = tokio::join!(http, signal);
        served.context("serveur HTTP")?;
        if let Some(m) = metrics_server
            && let Err(e) = m.await
        {
            tracing::error!(error = %e, "metrics listener task failed");
        }
        if let Err(e) = mllp.await {
            tracing::error!(error = %e, "mllp listener task failed");
        }
        let _ = writer_stop_tx.send(true);
        if let Err(e) = writer.await {
            tracing::error!(error = %e, "hl7 intake writer task failed");
        }
        if let Err(e) = snapshots.await {
            tracing::error!(error = %e, "bed snapshot task failed");
        }
        if let Err(e) = mailbox.await {
            tracing::error!(error = %e, "mailbox task failed");
        }
        if let Err(e) = outbox.await {
            tracing::error!(error = %e, "outbox worker task failed");
        }
        if let Some(live) = live
            && let Err(e) = live.await
        {
            tracing::error!(error = %e, "live events task failed");
        }
        store.close().await;
        Ok(())
    }
}
