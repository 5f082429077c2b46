//! `spawn_app()`: a running server seeded with the demo territory, and typed
//! helpers to talk to it.

use std::sync::Arc;

use domain::ManualClock;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;
use server::{Application, Config, auth, demo};
use store::Store;

pub const BACKENDS: [&str; 2] = ["sqlite", "postgres"];

pub struct TestApp {
    pub state: server::AppState,
    pub base: String,
    pub mllp: std::net::SocketAddr,
    pub mllp_tls: Option<std::net::SocketAddr>,
    pub store: Store,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    /// The metrics address, when configured.
    pub metrics: Option<std::net::SocketAddr>,
    /// The database's URL.
    pub url: String,

    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Asks the server to stop (as SIGTERM does) and waits until it has
    /// drained and returned.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.running.take() {
            Some(r) => r.await.unwrap(),
            None => Ok(()),
        }
    }
}

pub async fn spawn_app(backend: &'static str) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: &'static str, tune: impl FnOnce(&mut Config)) -> TestApp {
    let url = match backend {
        "sqlite" => store::testing::fresh_sqlite_url(),
        _ => store::testing::fresh_postgres_url()
            .await
            .expect("PostgreSQL on 127.0.0.1:5432"),
    };
    let clock = ManualClock::new(Timestamp::from_second(1_795_000_000).unwrap());
    spawn_node(&url, clock, true, tune).await
}

/// A Parcours on the database at `url`, on `clock`; `seed` puts the demo in
/// (the first node of a cluster does, the others find it).
pub async fn spawn_node(
    url: &str,
    clock: ManualClock,
    seed: bool,
    tune: impl FnOnce(&mut Config),
) -> TestApp {
    let store = Store::connect(url).await.unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        mllp_listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    tune(&mut config);
    let app = Application::build_with_store(config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    if seed {
        demo::seed(&store, clock.now_ms()).await.unwrap();
    }
    let addr = app.local_addr().unwrap();
    let mllp = app.mllp_addr().unwrap();
    let mllp_tls = app.mllp_tls_addr();
    let metrics = app.metrics_addr();
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        state,
        base: format!("http://{addr}"),
        mllp,
        mllp_tls,
        store,
        clock,
        http,
        metrics,
        url: url.to_owned(),
        shutdown: Some(tx),
        running: Some(running),
    }
}

pub trait ClockExt {
    fn now_ms(&self) -> i64;
    fn secs(&self) -> u64;
}

impl ClockExt for ManualClock {
    fn now_ms(&self) -> i64 {
        domain::Clock::now(self).as_millisecond()
    }
    fn secs(&self) -> u64 {
        (self.now_ms() / 1000) as u64
    }
}

/// A response read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// The body with HTML entities decoded (askama escapes apostrophes).
    pub fn page(&self) -> String {
        self.text
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// The value of a cookie set by this response.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }
    /// The OperationOutcome's first diagnostics, asserting the shape.
    pub fn outcome(&self) -> String {
        let v = self.json();
        assert_eq!(v["resourceType"], "OperationOutcome", "{}", self.text);
        assert!(
            self.header("content-type")
                .unwrap_or_default()
                .starts_with("application/fhir+json")
        );
        v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub async fn read(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        read(r.send().await.unwrap()).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Resp {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        read(r.send().await.unwrap()).await
    }

    pub async fn token_for(&self, client_id: &str, secret: &str) -> Resp {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ];
        read(
            self.http
                .post(self.url("/oauth/token"))
                .form(&form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn token(&self) -> String {
        let r = self
            .token_for(demo::DEMO_CLIENT_ID, demo::DEMO_CLIENT_SECRET)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub fn totp_now(&self) -> String {
        auth::totp_code(demo::DEMO_TOTP_SECRET, self.clock.secs()).unwrap()
    }
}

/// A valid Patient body with a fresh INS (key computed) and the given status.
pub fn patient_body(order: u32, status: &str) -> Value {
    let matricule = format!("1790375{order:06}");
    let key = domain::ins::key_for(&matricule).unwrap();
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": format!("{matricule}{key:02}")}],
        "extension": [{
            "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
            "extension": [{"url": "identityStatus", "valueCoding": {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status", "code": status}}]
        }],
        "name": [{"use": "official", "family": "Testeur", "given": ["Jean", "Marc"]}],
        "gender": "male",
        "birthDate": "1979-03-14"
    })
}

/// Validates HL7 v2.5 messages with hl7apy (strict); panics with its message.
pub fn validate_hl7(messages: &[String]) {
    run_validator(
        "validate_hl7.py",
        &serde_json::to_string(messages).unwrap(),
        "hl7apy",
    );
}

/// The text of a PDF as pypdf reads it (`scripts/pdf_text.py`); fails if pypdf
/// cannot read the file.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("parcours-pdf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("doc.pdf");
    std::fs::write(&file, pdf).unwrap();
    let script = format!("{}/../../scripts/pdf_text.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "pypdf refused the PDF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_validator(script: &str, json: &str, what: &str) {
    let dir = std::env::temp_dir().join(format!("parcours-validate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("input.json");
    std::fs::write(&file, json).unwrap();
    let script = format!("{}/../../scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{what} rejected a message:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Validates FHIR resources with fhir.resources (R4) in Python; panics with the
/// validator's message if one is invalid.
pub fn validate_fhir(resources: &[Value]) {
    run_validator(
        "validate_fhir.py",
        &serde_json::to_string(resources).unwrap(),
        "fhir.resources",
    );
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no csrf field in {html}"));
    html[start..].split('"').next().unwrap().to_owned()
}

impl TestApp {
    pub async fn get_page(&self, path: &str, session: &str) -> Resp {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", format!("parcours_session={session}"));
        read(r.send().await.unwrap()).await
    }

    pub async fn post_form(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Resp {
        read(
            self.http
                .post(self.url(path))
                .header("cookie", cookie)
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Password step: returns the response (303 to the TOTP page on success).
    pub async fn password_step(&self, username: &str, password: &str) -> Resp {
        let page = read(self.http.get(self.url("/login")).send().await.unwrap()).await;
        let cookie = page
            .set_cookie("parcours_login_csrf")
            .expect("login csrf cookie");
        let csrf = csrf_field(&page.text);
        self.post_form(
            "/login",
            &format!("parcours_login_csrf={cookie}"),
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    /// TOTP step with a half session; returns the response.
    pub async fn totp_step(&self, half: &str, code: &str) -> Resp {
        let page = self.get_page("/login/totp", half).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let csrf = csrf_field(&page.text);
        self.post_form(
            "/login/totp",
            &format!("parcours_session={half}"),
            &[("code", code), ("csrf", &csrf)],
        )
        .await
    }

    /// Full login of a demo account; returns the session cookie value. Moves the
    /// clock one TOTP step so that codes are never reused.
    pub async fn login(&self, username: &str) -> String {
        let r = self
            .password_step(username, server::demo::DEMO_PASSWORD)
            .await;
        let half = r
            .set_cookie("parcours_session")
            .unwrap_or_else(|| panic!("{username}: {} {}", r.status, r.text));
        if r.header("location").as_deref() == Some("/") {
            return half;
        }
        assert_eq!(r.header("location").as_deref(), Some("/login/totp"));
        self.clock.advance_secs(30);
        let code = self.totp_now();
        let r = self.totp_step(&half, &code).await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/")),
            "{}",
            r.text
        );
        r.set_cookie("parcours_session").unwrap()
    }

    /// The id of a demo patient by birth name.
    pub async fn demo_patient(&self, birth_name: &str) -> domain::identity::PatientRecord {
        let t = self
            .store
            .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
            .await
            .unwrap()
            .unwrap();
        let q = store::patients::PatientQuery {
            family: Some(birth_name.into()),
            limit: 5,
            ..Default::default()
        };
        self.store
            .search_patients(t.id, &q)
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap()
    }
}

/// One MLLP connection to the app.
pub struct Mllp {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Mllp {
    pub async fn connect(app: &TestApp) -> Mllp {
        Mllp {
            stream: tokio::net::TcpStream::connect(app.mllp).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends one message and waits for its ACK (10 s at most).
    pub async fn send(&mut self, message: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream
            .write_all(&hl7v2::mllp::frame(message))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let hl7v2::mllp::Frame::Message {
                start,
                end,
                consumed,
            } = hl7v2::mllp::next_frame(&self.buf)
            {
                let ack = String::from_utf8(self.buf[start..end].to_vec()).unwrap();
                self.buf.drain(..consumed);
                return ack;
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .expect("ACK within 10 s")
                .unwrap();
            assert!(n > 0, "connection closed without an ACK");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// MSA-1 and the first ERR of an ACK.
pub fn ack_code(ack: &str) -> (String, Option<String>, Option<String>) {
    let m = hl7v2::Message::parse(ack.as_bytes()).unwrap();
    let get = |p: &str| m.get(p).unwrap().map(|v| v.into_owned());
    (get("MSA-1").unwrap(), get("ERR-3.1"), get("ERR-2"))
}

/// A hospital's MLLP receiver on a free port: answers `code` and keeps what it gets.
pub async fn receiver(
    code: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    if let hl7v2::mllp::Frame::Message {
                        start,
                        end,
                        consumed,
                    } = hl7v2::mllp::next_frame(&buf)
                    {
                        let m = hl7v2::Message::parse(&buf[start..end]).unwrap();
                        keep.lock()
                            .unwrap()
                            .push(String::from_utf8(buf[start..end].to_vec()).unwrap());
                        let errors = if code == "AA" {
                            vec![]
                        } else {
                            vec![hl7v2::ack::AckError {
                                location: None,
                                code: 204,
                                message: "patient inconnu".into(),
                                severity: hl7v2::ack::Severity::Error,
                            }]
                        };
                        let ack = hl7v2::ack::build(
                            &m,
                            if code == "AA" {
                                hl7v2::ack::AckCode::Accept
                            } else {
                                hl7v2::ack::AckCode::Error
                            },
                            &errors,
                            "r",
                            "20261123",
                        );
                        s.write_all(&hl7v2::mllp::frame(ack.as_bytes()))
                            .await
                            .unwrap();
                        buf.drain(..consumed);
                        continue;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, got)
}

/// Waits (bounded) until the store shows what `done` looks for.
pub async fn eventually<F: AsyncFn() -> bool>(what: &str, done: F) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A WebSocket to the app.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens a WebSocket on `path` with a session cookie; the handshake's error
    /// when the server refuses it.
    pub async fn ws(
        &self,
        path: &str,
        session: &str,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("{}{path}", self.base.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "cookie",
            format!("parcours_session={session}").parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
    }

    /// The doctor (session `doctor`) lets the patient into the room of
    /// appointment `id` (the room is locked until then).
    pub async fn let_in(&self, doctor: &str, id: &str) {
        let show = self.get_page(&format!("/rdv/{id}"), doctor).await;
        let r = self
            .post_form(
                &format!("/rdv/{id}/entrer"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf_field(&show.text))],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text);
    }

    /// Declares an HL7 sender for the establishment `finess`: its IPP
    /// authority, the addresses allowed over plain MLLP, its TLS subject.
    pub async fn declare_sender(
        &self,
        (application, facility): (&str, &str),
        finess: &str,
        ipp_authority: Option<&str>,
        allowed_addresses: &[&str],
        tls_subject: Option<&str>,
    ) {
        let establishment = self.establishment_id(finess).await;
        self.store
            .declare_hl7_sender(
                &store::hl7::NewHl7Sender {
                    application: application.into(),
                    facility: facility.into(),
                    establishment,
                    ipp_authority: ipp_authority.map(str::to_owned),
                    allowed_addresses: allowed_addresses.iter().map(|a| (*a).to_owned()).collect(),
                    tls_subject: tls_subject.map(str::to_owned),
                },
                0,
            )
            .await
            .unwrap();
    }

    /// A demo account's user id.
    pub async fn user_id(&self, username: &str) -> domain::UserId {
        self.store
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// How many audit entries of `action` on patient `patient` the demo
    /// account `username` has (its last 500 on that record).
    pub async fn audited(&self, patient: domain::PatientId, username: &str, action: &str) -> usize {
        let actor = self.user_id(username).await.to_string();
        self.store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(patient.to_string()),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.actor_id == actor && e.action == action)
            .count()
    }

    /// Sets (or, `None`, removes) an integration setting of establishment
    /// `finess`, as its organisation file would.
    pub async fn set_setting(&self, finess: &str, name: &str, value: Option<&str>) {
        let establishment = self.establishment_id(finess).await;
        self.store
            .apply_org_changes(
                &[store::orgs::OrgChange::Setting {
                    establishment,
                    name: name.into(),
                    value: value.map(str::to_owned),
                }],
                self.clock.now_ms(),
                "test",
            )
            .await
            .unwrap();
    }

    /// A demo establishment's id.
    pub async fn establishment_id(&self, finess: &str) -> domain::EstablishmentId {
        self.store
            .establishment_by_finess(finess)
            .await
            .unwrap()
            .unwrap()
            .id
    }
}

/// Validates a CDA document with xmllint against the CDA R2 schema (the ANS
/// schema with French extensions, in `../shared/fixtures`).
pub fn validate_cda(xml: &[u8]) {
    let dir = std::env::temp_dir().join(format!("parcours-cda-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("doc.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = format!(
        "{}/../../../shared/fixtures/cda/schema/CDA_extended.xsd",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", &schema])
        .arg(&file)
        .output()
        .expect("xmllint (Debian libxml2-utils, installed by scripts/test)");
    assert!(
        out.status.success(),
        "xmllint rejected the CDA:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

impl TestApp {
    /// An API client of the establishment `finess` (integration role); its token.
    pub async fn client_token(&self, client_id: &str, finess: &str) -> String {
        let e = self.establishment_id(finess).await;
        self.store
            .create_client(
                client_id,
                client_id,
                &server::auth::hash_secret(format!("{client_id}-secret"))
                    .await
                    .unwrap(),
                e,
                domain::org::Role::Integration,
                self.clock.now_ms(),
            )
            .await
            .unwrap();
        let r = self
            .token_for(client_id, &format!("{client_id}-secret"))
            .await;
        r.json()["access_token"].as_str().unwrap().to_owned()
    }
}

/// A free TCP port on 127.0.0.1 (for a helper server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A helper server process of a test (a mail server, an IMAP server),
/// listening on `port` once started; stopped on drop (SIGTERM, then waited).
pub struct Service {
    child: std::process::Child,
    /// Where it listens (127.0.0.1).
    pub port: u16,
}

impl Service {
    /// Spawns `cmd` and waits until something listens on `port`.
    pub async fn start(what: &str, cmd: &mut std::process::Command, port: u16) -> Service {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what} (installed by scripts/test): {e}"));
        eventually(&format!("{what} listens"), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Service { child, port }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Certificates made with the openssl command for one test: a CA (the
/// IGC-Santé of the test), the server's certificate for 127.0.0.1, the
/// establishment's client certificate, and a client certificate from another
/// CA nobody trusts.
pub struct Pki {
    dir: std::path::PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("parcours-pki-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sh = |script: &str| {
            let out = std::process::Command::new("sh")
                .arg("-ec")
                .arg(script)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ca = |name: &str, cn: &str| {
            format!(
                "openssl req -x509 -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.pem -days 2 -subj '/CN={cn}' 2>/dev/null"
            )
        };
        let leaf = |name: &str, ca: &str, subj: &str, ext: &str| {
            format!(
                "openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj '{subj}' 2>/dev/null\n\
                 printf '{ext}' > {name}.ext\n\
                 openssl x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext 2>/dev/null"
            )
        };
        sh(&ca("ca", "IGC-Sante TEST"));
        sh(&ca("rogue", "Autorite inconnue"));
        sh(&leaf(
            "server",
            "ca",
            "/CN=mss.operateur.test",
            "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n",
        ));
        sh(&leaf(
            "client",
            "ca",
            "/O=Clinique du Val/CN=Clinique du Val 450000013",
            "extendedKeyUsage=clientAuth\\n",
        ));
        sh(&leaf(
            "intruder",
            "rogue",
            "/CN=Intrus",
            "extendedKeyUsage=clientAuth\\n",
        ));
        Pki { dir }
    }

    pub fn path(&self, f: &str) -> std::path::PathBuf {
        self.dir.join(f)
    }
}

/// fhir.resources 6.1.0 types `Attachment.url` as a URL with `scheme://`, so it
/// refuses the `urn:uuid:` references an MHD transaction uses between its
/// entries (FHIR R4 allows any URI there) — it refuses the ANS's own ITI-65
/// example for that alone. The bundle is validated with those references
/// spelled as URLs; everything else as sent.
pub fn for_validator(bundle: &serde_json::Value) -> serde_json::Value {
    let text = bundle
        .to_string()
        .replace("\"url\":\"urn:uuid:", "\"url\":\"http://bundle.invalid/");
    serde_json::from_str(&text).unwrap()
}

/// A second instance playing the DMP (an MHD Document Recipient with the
/// clinic's feed as API client), and the app under test sending to it; `tune`
/// adds to the app's configuration.
pub async fn spawn_with_dmp(
    backend: &'static str,
    tune: impl FnOnce(&mut Config),
) -> (TestApp, TestApp) {
    let dmp = spawn_app(backend).await;
    let _ = dmp
        .client_token("hospital-feed", server::demo::CLINIC_FINESS)
        .await;
    let base = dmp.base.clone();
    let app = spawn_app_with(backend, move |c| {
        c.mhd_destination = Some(format!("{base}/fhir"));
        c.mhd_token_url = Some(format!("{base}/oauth/token"));
        c.mhd_client_id = Some("hospital-feed".into());
        c.mhd_client_secret = Some("hospital-feed-secret".into());
        tune(c);
    })
    .await;
    (dmp, app)
}
