//! What `/metrics` exposes, in the OpenMetrics text format Prometheus scrapes,
//! with the Prometheus project's own client (`prometheus-client`): HTTP
//! requests and their latency per route, logins, HL7 messages per type and
//! ACK code, the intake's latency and its groups taken again one by one, alert SLA breaches, WebSocket
//! connections, rows pruned, SQLite's write-ahead log checkpoints; and, read from the store at each scrape, the
//! outbox's backlog and dead letters per topic, the age of its oldest waiting
//! message, the database pool and size. Labels carry routes, types and codes,
//! never a patient or an id (a route is its pattern, `/patients/{id}`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, String); 1];
type Labels2 = [(&'static str, String); 2];
type Labels3 = [(&'static str, String); 3];

fn latency() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The instruments, shared by every request and task of the process.
#[derive(Debug)]
pub struct Metrics {
    http_requests: Family<Labels3, Counter>,
    http_latency: Family<Labels2, Histogram, fn() -> Histogram>,
    logins: Family<Labels1, Counter>,
    hl7_messages: Family<Labels2, Counter>,
    hl7_latency: Histogram,
    hl7_taken_again: Counter,
    sla_breaches: Counter,
    websockets: Family<Labels1, Gauge>,
    pruned: Family<Labels1, Counter>,
    // Read from the store at each scrape.
    outbox_waiting: Family<Labels1, Gauge>,
    outbox_oldest: Family<Labels1, Gauge>,
    outbox_dead: Family<Labels1, Gauge>,
    db_pool_size: Gauge,
    db_pool_idle: Gauge,
    db_size: Gauge,
    db_free: Gauge,
    websockets_open: Gauge,
    wal_checkpoints: Counter,
    wal_pages: Gauge,
    wal_copied: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency),
            logins: Family::default(),
            hl7_messages: Family::default(),
            hl7_latency: latency(),
            hl7_taken_again: Counter::default(),
            sla_breaches: Counter::default(),
            websockets: Family::default(),
            pruned: Family::default(),
            outbox_waiting: Family::default(),
            outbox_oldest: Family::default(),
            outbox_dead: Family::default(),
            db_pool_size: Gauge::default(),
            db_pool_idle: Gauge::default(),
            db_size: Gauge::default(),
            db_free: Gauge::default(),
            websockets_open: Gauge::default(),
            wal_checkpoints: Counter::default(),
            wal_pages: Gauge::default(),
            wal_copied: Gauge::default(),
            registry: Registry::with_prefix("parcours"),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status class",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern and method",
            m.http_latency.clone(),
        );
        r.register("logins", "Sign-in attempts, by outcome", m.logins.clone());
        r.register(
            "hl7_messages",
            "HL7 v2 messages received, by message type and ACK code",
            m.hl7_messages.clone(),
        );
        r.register(
            "hl7_ingest_duration_seconds",
            "Time from an HL7 message's arrival to its ACK",
            m.hl7_latency.clone(),
        );
        r.register(
            "alert_sla_breaches",
            "Monitoring alerts escalated for being left open past their SLA",
            m.sla_breaches.clone(),
        );
        r.register(
            "websocket_connections",
            "WebSocket connections open on this node, by kind",
            m.websockets.clone(),
        );
        r.register(
            "retention_rows_removed",
            "Rows removed by retention, by kind",
            m.pruned.clone(),
        );
        r.register(
            "outbox_waiting",
            "Outbound messages waiting for delivery, by topic",
            m.outbox_waiting.clone(),
        );
        r.register(
            "outbox_oldest_waiting_age_seconds",
            "Age of the oldest outbound message waiting, by topic",
            m.outbox_oldest.clone(),
        );
        r.register(
            "outbox_dead_letters",
            "Outbound messages that failed for good and wait for an administrator, by topic",
            m.outbox_dead.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database connections open in the pool (SQLite: writer and readers)",
            m.db_pool_size.clone(),
        );
        r.register(
            "db_pool_idle_connections",
            "Database connections idle in the pool",
            m.db_pool_idle.clone(),
        );
        r.register(
            "hl7_groups_taken_again",
            "HL7 intake groups taken again one message at a time (a message of the group failed: a duplicate, a merged IPP, a conflict)",
            m.hl7_taken_again.clone(),
        );
        r.register("db_size_bytes", "Database size on disk", m.db_size.clone());
        r.register(
            "sqlite_wal_checkpoints",
            "Checkpoints of SQLite's write-ahead log run by this node beside the writer",
            m.wal_checkpoints.clone(),
        );
        r.register(
            "sqlite_wal_pages",
            "Pages in SQLite's write-ahead log at this node's last checkpoint",
            m.wal_pages.clone(),
        );
        r.register(
            "sqlite_wal_copied_pages",
            "Pages of SQLite's write-ahead log in the database file after this node's last checkpoint",
            m.wal_copied.clone(),
        );
        r.register(
            "db_free_bytes",
            "Space free for reuse inside the database (SQLite)",
            m.db_free.clone(),
        );
        m
    }
}

fn class(status: u16) -> &'static str {
    match status {
        500.. => "5xx",
        400..=499 => "4xx",
        300..=399 => "3xx",
        _ => "2xx",
    }
}

impl Metrics {
    /// Counts an HTTP request answered with `status` after `seconds`.
    pub fn count_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&[
                ("route", route.to_owned()),
                ("method", method.to_owned()),
                ("status", class(status).to_owned()),
            ])
            .inc();
        self.http_latency
            .get_or_create(&[("route", route.to_owned()), ("method", method.to_owned())])
            .observe(seconds);
    }

    /// Counts a sign-in attempt.
    pub fn count_login(&self, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.logins
            .get_or_create(&[("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts an HL7 message of `kind` (`ADT^A01`; empty when unreadable)
    /// answered `ack` (`AA`, `AE`, `AR`, or `none`) after `seconds`.
    pub fn count_hl7(&self, kind: &str, ack: &str, seconds: f64) {
        let kind = if kind.is_empty() { "unreadable" } else { kind };
        self.hl7_messages
            .get_or_create(&[("type", kind.to_owned()), ("ack", ack.to_owned())])
            .inc();
        self.hl7_latency.observe(seconds);
    }

    /// Records a checkpoint of SQLite's write-ahead log.
    pub fn wal_checkpointed(&self, c: store::retention::WalCheckpoint) {
        self.wal_checkpoints.inc();
        self.wal_pages.set(c.log_pages);
        self.wal_copied.set(c.copied_pages);
    }

    /// Counts alerts escalated past their SLA.
    pub fn count_sla_breaches(&self, n: u64) {
        self.sla_breaches.inc_by(n);
    }

    /// Counts rows removed by retention.
    pub fn count_pruned(&self, kind: &str, n: u64) {
        self.pruned
            .get_or_create(&[("kind", kind.to_owned())])
            .inc_by(n);
    }

    /// A WebSocket of `kind` opened: the guard counts it until dropped.
    pub fn websocket(&self, kind: &'static str) -> WebSocketGuard {
        let g = self
            .websockets
            .get_or_create_owned(&[("kind", kind.to_owned())]);
        g.inc();
        self.websockets_open.inc();
        WebSocketGuard {
            gauge: g,
            all: self.websockets_open.clone(),
        }
    }

    /// WebSocket connections open on this node (shutdown waits for them to
    /// have told their clients to reconnect).
    pub fn open_websockets(&self) -> i64 {
        self.websockets_open.get()
    }

    /// The exposition, with the store's figures read now.
    pub async fn render(&self, store: &store::Store, now_ms: i64) -> String {
        match store.outbox_backlog().await {
            Ok(backlog) => {
                self.outbox_waiting.clear();
                self.outbox_oldest.clear();
                self.outbox_dead.clear();
                for b in backlog {
                    let l = [("topic", b.topic.clone())];
                    self.outbox_waiting.get_or_create(&l).set(b.waiting);
                    self.outbox_dead.get_or_create(&l).set(b.dead);
                    self.outbox_oldest
                        .get_or_create(&l)
                        .set(b.oldest_ms.map_or(0, |o| (now_ms - o).max(0) / 1000));
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: outbox not read"),
        }
        let taken_again = store.intake_groups_taken_again();
        let seen = self.hl7_taken_again.get();
        if taken_again > seen {
            self.hl7_taken_again.inc_by(taken_again - seen);
        }
        let (size, idle) = store.pool_stats();
        self.db_pool_size.set(i64::from(size));
        self.db_pool_idle
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
        if let Ok(s) = store.database_size().await {
            self.db_size.set(s.bytes);
            self.db_free.set(s.free_bytes);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        out
    }
}

/// Counts one open WebSocket until dropped.
#[derive(Debug)]
pub struct WebSocketGuard {
    gauge: Gauge,
    all: Gauge,
}

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.gauge.dec();
        self.all.dec();
    }
}
