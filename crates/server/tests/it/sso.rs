//! Sign-in through an OpenID Connect provider configured like Pro Santé
//! Connect: a local provider that speaks the protocol (discovery, JWKS, the
//! authorization code with PKCE, token with client_secret_basic, userinfo,
//! end session), its RSA keys made by openssl. A doctor signs in without a
//! second factor; every refusal (replayed code or callback, wrong nonce,
//! another key, expired, wrong audience, lower level, unknown RPPS, another
//! browser) is said on a page and audited; a patient links the provider
//! once after a password sign-in, then signs in with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use server::oidc::ProviderConfig;

use crate::helpers::*;

const CLIENT_ID: &str = "parcours-test";
const CLIENT_SECRET: &str = "le-secret-du-client";

/// What the provider's next token will be like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Good,
    WrongNonce,
    OtherKey,
    Expired,
    WrongAudience,
    LowerLevel,
}

/// A code the provider issued.
struct Issued {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    used: bool,
}

struct Op {
    now: i64,
    mode: Mode,
    subject: String,
    national_id: Option<String>,
    /// The national id in userinfo only (not in the ID token).
    in_userinfo: bool,
    codes: HashMap<String, Issued>,
    authorize: Vec<HashMap<String, String>>,
    key: EncodingKey,
    other: EncodingKey,
    /// The published keys and the kid tokens are signed under.
    jwks: serde_json::Value,
    kid: String,
    /// The key set after a rotation: (jwks, kid, key).
    rotated: Option<(serde_json::Value, String, EncodingKey)>,
    /// How many times the keys were read.
    jwks_reads: usize,
}

type Shared = Arc<Mutex<Op>>;

/// An RSA key made by openssl: the private PEM and the public modulus (base64url).
pub(crate) fn rsa_key(dir: &std::path::Path, name: &str) -> (Vec<u8>, String) {
    let key = dir.join(format!("{name}.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let hexa = text.trim().trim_start_matches("Modulus=");
    let n = hex::decode(hexa).unwrap();
    (
        std::fs::read(&key).unwrap(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n),
    )
}

struct Provider {
    base: String,
    op: Shared,
    dir: std::path::PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Provider {
    async fn start(now: i64) -> Provider {
        let dir = std::env::temp_dir().join(format!("parcours-op-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pem, n) = rsa_key(&dir, "op");
        let (other_pem, _) = rsa_key(&dir, "other");
        let (next_pem, next_n) = rsa_key(&dir, "next");
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"}]});
        let next = json!({"keys": [{"kty": "RSA", "kid": "k2", "use": "sig", "alg": "RS256", "n": next_n, "e": "AQAB"}]});
        let op: Shared = Arc::new(Mutex::new(Op {
            now,
            mode: Mode::Good,
            subject: "psc-f1e2d3".into(),
            national_id: None,
            in_userinfo: false,
            codes: HashMap::new(),
            authorize: Vec::new(),
            key: EncodingKey::from_rsa_pem(&pem).unwrap(),
            other: EncodingKey::from_rsa_pem(&other_pem).unwrap(),
            jwks,
            kid: "k1".into(),
            rotated: Some((
                next,
                "k2".into(),
                EncodingKey::from_rsa_pem(&next_pem).unwrap(),
            )),
            jwks_reads: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = base.clone();
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "end_session_endpoint": format!("{base}/logout"),
            "code_challenge_methods_supported": ["S256"],
        });
        let iss = base.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(async move || axum::Json(discovery.clone())),
            )
            .route(
                "/jwks",
                get(async |State(op): State<Shared>| {
                    let mut op = op.lock().unwrap();
                    op.jwks_reads += 1;
                    axum::Json(op.jwks.clone())
                }),
            )
            .route(
                "/authorize",
                get(
                    async |State(op): State<Shared>, Query(q): Query<HashMap<String, String>>| {
                        let code = uuid::Uuid::new_v4().simple().to_string();
                        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
                        let to = format!(
                            "{}?code={code}&state={}",
                            get("redirect_uri"),
                            get("state")
                        );
                        let mut op = op.lock().unwrap();
                        op.codes.insert(
                            code,
                            Issued {
                                nonce: get("nonce"),
                                challenge: get("code_challenge"),
                                redirect_uri: get("redirect_uri"),
                                used: false,
                            },
                        );
                        op.authorize.push(q);
                        Redirect::to(&to)
                    },
                ),
            )
            .route(
                "/token",
                post(
                    async move |State(op): State<Shared>,
                                headers: HeaderMap,
                                Form(f): Form<HashMap<String, String>>| {
                        let basic = base64::engine::general_purpose::STANDARD
                            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
                        let refuse = |why: &str| {
                            (
                                StatusCode::BAD_REQUEST,
                                axum::Json(json!({"error": "invalid_grant", "error_description": why})),
                            )
                        };
                        if headers.get("authorization").and_then(|v| v.to_str().ok())
                            != Some(&format!("Basic {basic}"))
                        {
                            return (
                                StatusCode::UNAUTHORIZED,
                                axum::Json(json!({"error": "invalid_client"})),
                            );
                        }
                        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
                        let mut op = op.lock().unwrap();
                        let Some(issued) = op.codes.get_mut(&get("code")) else {
                            return refuse("code inconnu");
                        };
                        if issued.used {
                            return refuse("code déjà utilisé");
                        }
                        issued.used = true;
                        if issued.redirect_uri != get("redirect_uri") {
                            return refuse("redirect_uri");
                        }
                        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
                            <sha2::Sha256 as sha2::Digest>::digest(get("code_verifier")),
                        );
                        if challenge != issued.challenge {
                            return refuse("PKCE");
                        }
                        let nonce = issued.nonce.clone();
                        let (mode, now) = (op.mode, op.now);
                        let mut claims = json!({
                            "iss": iss,
                            "sub": op.subject,
                            "aud": if mode == Mode::WrongAudience { "autre-appli" } else { CLIENT_ID },
                            "iat": now,
                            "exp": if mode == Mode::Expired { now - 600 } else { now + 300 },
                            "nonce": if mode == Mode::WrongNonce { "un-autre" } else { nonce.as_str() },
                            "acr": if mode == Mode::LowerLevel { "eidas0" } else { "eidas1" },
                        });
                        if let (Some(n), false) = (&op.national_id, op.in_userinfo) {
                            claims["SubjectNameID"] = n.clone().into();
                        }
                        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
                        header.kid = Some(op.kid.clone());
                        let key = if mode == Mode::OtherKey { &op.other } else { &op.key };
                        let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
                        (
                            StatusCode::OK,
                            axum::Json(json!({
                                "access_token": "at-1", "token_type": "Bearer",
                                "expires_in": 300, "id_token": id_token,
                            })),
                        )
                    },
                ),
            )
            .route(
                "/userinfo",
                get(async |State(op): State<Shared>, headers: HeaderMap| {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer at-1")
                    {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let op = op.lock().unwrap();
                    axum::Json(json!({"sub": op.subject, "SubjectNameID": op.national_id}))
                        .into_response()
                }),
            )
            .with_state(op.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { base, op, dir }
    }

    fn config(&self, id: &str, for_patients: bool) -> ProviderConfig {
        let secret = self.dir.join(format!("{id}.secret"));
        std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
        ProviderConfig {
            id: id.into(),
            label: if for_patients {
                "FranceConnect (test)".into()
            } else {
                "Pro Santé Connect".into()
            },
            issuer: self.base.clone(),
            client_id: CLIENT_ID.into(),
            client_secret_file: secret,
            scopes: "openid scope_all".into(),
            acr: (!for_patients).then(|| "eidas1".to_owned()),
            national_id_claim: "SubjectNameID".into(),
            for_patients,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Op)) {
        f(&mut self.op.lock().unwrap());
    }

    /// The provider rotates its keys: a new key under a new kid, the old one gone.
    fn rotate(&self) {
        let mut op = self.op.lock().unwrap();
        let (jwks, kid, key) = op.rotated.take().unwrap();
        op.jwks = jwks;
        op.kid = kid;
        op.key = key;
    }
}

/// A login started at the app: the provider's authorize URL and the browser cookie.
struct Started {
    authorize: String,
    browser: String,
}

impl TestApp {
    async fn start_sso(&self, id: &str) -> Started {
        let r = self.get(&format!("/connexion/oidc/{id}"), None).await;
        assert_eq!(r.status, 303, "{}", r.text);
        Started {
            authorize: r.header("location").unwrap(),
            browser: r.set_cookie("parcours_oidc").unwrap(),
        }
    }

    /// The browser at the provider, which sends it back: the callback path.
    async fn at_provider(&self, s: &Started) -> String {
        let r = self.http.get(&s.authorize).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let back = r.headers()["location"].to_str().unwrap().to_owned();
        let i = back.find("/connexion/oidc/").unwrap();
        back[i..].to_owned()
    }

    async fn callback(&self, path: &str, browser: &str) -> Resp {
        read(
            self.http
                .get(self.url(path))
                .header("cookie", format!("parcours_oidc={browser}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn sso(&self, id: &str) -> Resp {
        let s = self.start_sso(id).await;
        let back = self.at_provider(&s).await;
        self.callback(&back, &s.browser).await
    }
}

async fn denied(store: &store::Store, outcome: &str) -> usize {
    let f = store::audit::AuditFilter {
        limit: 500,
        ..Default::default()
    };
    store
        .list_audit(&f)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "login.oidc" && e.outcome == outcome)
        .count()
}

#[tokio::test]
async fn a_doctor_signs_in_with_pro_sante_connect_without_a_second_factor() {
    for backend in BACKENDS {
        let op = Provider::start(0).await;
        let psc = op.config("psc", false);
        let app = spawn_app_with(backend, move |c| c.oidc = vec![psc]).await;
        op.set(|o| o.now = app.clock.now_ms() / 1000);
        let rpps = app
            .store
            .user_by_username("dr.martin")
            .await
            .unwrap()
            .unwrap()
            .rpps
            .unwrap();
        op.set(|o| o.national_id = Some(format!("8{rpps}")));
        let login = app.get("/login", None).await;
        assert!(
            login.text.contains("href=\"/connexion/oidc/psc\"")
                && login.text.contains("Se connecter avec Pro Santé Connect"),
            "{backend}"
        );
        // The request: code flow, PKCE S256, state, nonce, the level PSC requires.
        let s = app.start_sso("psc").await;
        let back = app.at_provider(&s).await;
        let asked = op.op.lock().unwrap().authorize.last().cloned().unwrap();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("code_challenge_method", "S256"),
            ("acr_values", "eidas1"),
            ("scope", "openid scope_all"),
        ] {
            assert_eq!(asked.get(k).map(String::as_str), Some(v), "{backend}: {k}");
        }
        assert!(asked["redirect_uri"].ends_with("/connexion/oidc/psc/retour"));
        assert!(asked["nonce"].len() >= 32 && asked["state"].len() >= 32);
        // Back: a full session at once (no TOTP), the page goes on to `/`.
        let r = app.callback(&back, &s.browser).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.text
                .contains("http-equiv=\"refresh\" content=\"0;url=/\"")
        );
        let session = r.set_cookie("parcours_session").unwrap();
        let home = app.get_page("/", &session).await;
        assert_eq!(home.status, 200, "{backend}");
        assert!(home.page().contains("Claire Martin"), "{backend}");
        assert_eq!(
            app.get_page("/patients", &session).await.status,
            200,
            "{backend}: clinical pages open"
        );
        let f = store::audit::AuditFilter {
            limit: 500,
            ..Default::default()
        };
        assert!(
            app.store
                .list_audit(&f)
                .await
                .unwrap()
                .iter()
                .any(|e| e.action == "login.oidc" && e.outcome == "success"),
            "{backend}"
        );
        // The callback again (a replay): refused, audited.
        let again = app.callback(&back, &s.browser).await;
        assert_eq!(again.status, 400, "{backend}");
        assert!(again.page().contains("déjà utilisée"));
        assert_eq!(denied(&app.store, "denied:state").await, 1, "{backend}");
        // The national id in userinfo only: read there.
        op.set(|o| o.in_userinfo = true);
        let r = app.sso("psc").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        // The provider rotates its keys: the unknown kid has them read again, once.
        let reads = op.op.lock().unwrap().jwks_reads;
        op.rotate();
        let r = app.sso("psc").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(op.op.lock().unwrap().jwks_reads, reads + 1, "{backend}");
        // Sign-out goes through the provider's end-session endpoint.
        let session = r.set_cookie("parcours_session").unwrap();
        let page = app.get_page("/", &session).await;
        let out = app
            .post_form(
                "/logout",
                &format!("parcours_session={session}"),
                &[("csrf", &csrf_field(&page.text))],
            )
            .await;
        assert_eq!(out.status, 303, "{backend}: {}", out.text);
        let to = out.header("location").unwrap();
        assert!(
            to.starts_with(&format!("{}/logout?id_token_hint=", op.base))
                && to.contains("post_logout_redirect_uri="),
            "{backend}: {to}"
        );
        assert_eq!(app.get_page("/", &session).await.status, 303, "{backend}");
    }
}

#[tokio::test]
async fn every_bad_answer_of_the_provider_is_refused_with_a_page_and_an_audit_entry() {
    let op = Provider::start(0).await;
    let psc = op.config("psc", false);
    let app = spawn_app_with("sqlite", move |c| c.oidc = vec![psc]).await;
    op.set(|o| o.now = app.clock.now_ms() / 1000);
    let rpps = app
        .store
        .user_by_username("dr.martin")
        .await
        .unwrap()
        .unwrap()
        .rpps
        .unwrap();
    op.set(|o| o.national_id = Some(format!("8{rpps}")));
    for (mode, said, code) in [
        (
            Mode::WrongNonce,
            "sans le nonce de la demande",
            "denied:nonce",
        ),
        (Mode::OtherKey, "signature invalide", "denied:signature"),
        (Mode::Expired, "jeton d'identité expiré", "denied:expired"),
        (
            Mode::WrongAudience,
            "destiné à une autre application",
            "denied:audience",
        ),
        (
            Mode::LowerLevel,
            "niveau d'authentification insuffisant (eidas0) : eidas1 est exigé",
            "denied:acr",
        ),
    ] {
        op.set(|o| o.mode = mode);
        let r = app.sso("psc").await;
        assert_eq!(r.status, 403, "{mode:?}: {}", r.text);
        assert!(r.page().contains(said), "{mode:?}: {}", r.text);
        assert!(r.set_cookie("parcours_session").is_none(), "{mode:?}");
        assert_eq!(denied(&app.store, code).await, 1, "{mode:?}");
    }
    op.set(|o| o.mode = Mode::Good);
    // A code used once, sent again with another login's state: the provider refuses it.
    let first = app.start_sso("psc").await;
    let second = app.start_sso("psc").await;
    let back = app.at_provider(&first).await;
    assert_eq!(app.callback(&back, &first.browser).await.status, 200);
    let code = back
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let state2 = second
        .authorize
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let replay = format!("/connexion/oidc/psc/retour?code={code}&state={state2}");
    let r = app.callback(&replay, &second.browser).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.page().contains("code déjà utilisé"), "{}", r.text);
    assert_eq!(denied(&app.store, "denied:code-refused").await, 1);
    // Finished in another browser (not the cookie that started it): refused.
    let s = app.start_sso("psc").await;
    let back = app.at_provider(&s).await;
    let r = app.callback(&back, "un-autre-navigateur").await;
    assert_eq!(r.status, 400);
    // An RPPS nobody has here: refused with what to do, never created.
    op.set(|o| o.national_id = Some("899999999999".into()));
    let r = app.sso("psc").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.page().contains("Aucun compte Parcours actif")
            && r.page().contains("identifiant national 899999999999"),
        "{}",
        r.text
    );
    assert_eq!(
        app.store.professional_by_rpps("99999999999").await.unwrap(),
        None,
        "never created"
    );
    assert_eq!(denied(&app.store, "denied:unknown").await, 1);
    // A disabled account: refused the same way.
    op.set(|o| o.national_id = Some(format!("8{rpps}")));
    let martin = app.user_id("dr.martin").await;
    app.store.set_account_enabled(martin, false).await.unwrap();
    assert_eq!(app.sso("psc").await.status, 403);
    // The provider says no itself: its reason shown.
    let r = app
        .callback(
            "/connexion/oidc/psc/retour?error=access_denied&error_description=carte%20retir%C3%A9e",
            "x",
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.page().contains("carte retirée"), "{}", r.text);
    // An unknown provider: 404.
    assert_eq!(app.get("/connexion/oidc/autre", None).await.status, 404);
    // Starts are counted per address like password attempts: each is stored.
    let limit = app.state.config.login_attempts_per_minute as usize;
    let mut statuses = Vec::new();
    for _ in 0..=limit {
        statuses.push(app.get("/connexion/oidc/psc", None).await.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn a_patient_links_a_provider_once_then_signs_in_with_it() {
    let op = Provider::start(0).await;
    let fc = op.config("fc", true);
    let app = spawn_app_with("sqlite", move |c| c.oidc = vec![fc]).await;
    op.set(|o| {
        o.now = app.clock.now_ms() / 1000;
        o.subject = "fc-patient-42".into();
    });
    // Not linked yet: refused.
    let r = app.sso("fc").await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Signed in with her password, she links it from her sessions page.
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let page = app.get_page("/mes-connexions", &patient).await;
    assert!(page.text.contains("Lier mon compte à FranceConnect (test)"));
    let r = app
        .post_form(
            "/connexion/oidc/fc/lier",
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&page.text))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let s = Started {
        authorize: r.header("location").unwrap(),
        browser: r.set_cookie("parcours_oidc").unwrap(),
    };
    let back = app.at_provider(&s).await;
    let r = app.callback(&back, &s.browser).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.page().contains("Identité liée"));
    // Now the provider signs her in, to her own account.
    let r = app.sso("fc").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let session = r.set_cookie("parcours_session").unwrap();
    let mine = app.get_page("/mes-documents", &session).await;
    assert_eq!(mine.status, 200);
    // A professional cannot use the patients' provider, even linked.
    let doctor = app.login("dr.martin").await;
    let page = app.get_page("/mes-connexions", &doctor).await;
    assert!(!page.text.contains("FranceConnect"));
    let lambert_user = app.user_id(server::demo::PATIENT_LOGIN).await;
    assert_eq!(
        app.store
            .oidc_identity("fc", "fc-patient-42")
            .await
            .unwrap(),
        Some(lambert_user)
    );
    // The same identity cannot be linked to a second account.
    let r = app
        .store
        .link_oidc_identity(
            "fc",
            "fc-patient-42",
            app.user_id("dr.martin").await,
            "t",
            0,
        )
        .await;
    assert!(matches!(r, Err(store::StoreError::Refused(_))), "{r:?}");
}

#[tokio::test]
async fn an_admin_links_an_identity_for_a_provider_that_sends_no_rpps() {
    let op = Provider::start(0).await;
    let mut ght = op.config("ght", false);
    ght.label = "Annuaire du GHT".into();
    ght.acr = None;
    let app = spawn_app_with("sqlite", move |c| c.oidc = vec![ght]).await;
    op.set(|o| {
        o.now = app.clock.now_ms() / 1000;
        o.subject = "ght-0042".into();
        o.national_id = None;
    });
    // Not linked, no RPPS: refused.
    assert_eq!(app.sso("ght").await.status, 403);
    let admin = app.login("admin.clinique").await;
    let cookie = format!("parcours_session={admin}");
    let page = app.get_page("/admin/personnes", &admin).await;
    assert!(
        page.text
            .contains("<option value=\"ght\">Annuaire du GHT</option>")
    );
    let martin = app.user_id("dr.martin").await;
    let link = async |subject: &str, provider: &str| {
        app.post_form(
            &format!("/admin/personnes/{martin}/identite"),
            &cookie,
            &[
                ("csrf", &csrf_field(&page.text)),
                ("provider", provider),
                ("subject", subject),
            ],
        )
        .await
    };
    assert_eq!(link("", "ght").await.status, 400);
    assert_eq!(link("ght-0042", "inconnu").await.status, 400);
    let r = link("ght-0042", "ght").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.page().contains("Identité liée"));
    // Now the GHT's provider signs her in (no level required there).
    let r = app.sso("ght").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let home = app
        .get_page("/", &r.set_cookie("parcours_session").unwrap())
        .await;
    assert!(home.page().contains("Claire Martin"));
    // The same subject for someone else: refused, said.
    let bernard = app.user_id("dr.bernard").await;
    let hospital_admin = app.login("admin.hopital").await;
    let page = app.get_page("/admin/personnes", &hospital_admin).await;
    let r = app
        .post_form(
            &format!("/admin/personnes/{bernard}/identite"),
            &format!("parcours_session={hospital_admin}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("provider", "ght"),
                ("subject", "ght-0042"),
            ],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    // An admin of another establishment may not link the clinic's doctor.
    let r = app
        .post_form(
            &format!("/admin/personnes/{martin}/identite"),
            &format!("parcours_session={hospital_admin}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("provider", "ght"),
                ("subject", "ght-0043"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let f = store::audit::AuditFilter {
        limit: 500,
        ..Default::default()
    };
    assert_eq!(
        app.store
            .list_audit(&f)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "account.link-identity")
            .count(),
        1
    );
}
