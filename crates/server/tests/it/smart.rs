//! API clients as SMART Backend Services: a client registers its public keys
//! (made by openssl: EC P-384 and RSA) and gets tokens with signed assertions
//! (private_key_jwt, ES384 and RS384), scoped in SMART v2 form and held to
//! those scopes on every FHIR call; a wrong key, an expired or too long
//! assertion, a replayed jti, another audience, another algorithm and a
//! scope beyond the client's are refused; shared-secret clients keep working.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::*;

const CLIENT: &str = "svc-entrepot";

/// An EC P-384 key made by openssl: the private PEM and the public (x, y), base64url.
fn ec_key(dir: &std::path::Path, name: &str) -> (Vec<u8>, String, String) {
    let key = dir.join(format!("{name}.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey EC");
    let der = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap()
        .stdout;
    // The SubjectPublicKeyInfo ends with the point: 0x04, x (48 bytes), y (48 bytes).
    let point = &der[der.len() - 97..];
    assert_eq!(point[0], 4);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    (
        std::fs::read(&key).unwrap(),
        b64(&point[1..49]),
        b64(&point[49..]),
    )
}

struct Keys {
    ec: EncodingKey,
    rsa: EncodingKey,
    other_ec: EncodingKey,
    jwks: String,
    dir: std::path::PathBuf,
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keys() -> Keys {
    let dir = std::env::temp_dir().join(format!("parcours-smart-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ec_pem, x, y) = ec_key(&dir, "ec");
    let (other_pem, _, _) = ec_key(&dir, "other");
    let (rsa_pem, n) = crate::sso::rsa_key(&dir, "rsa");
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-384", "x": x, "y": y, "kid": "es1", "use": "sig", "alg": "ES384"},
        {"kty": "RSA", "n": n, "e": "AQAB", "kid": "rs1", "use": "sig", "alg": "RS384"},
    ]})
    .to_string();
    Keys {
        ec: EncodingKey::from_ec_pem(&ec_pem).unwrap(),
        rsa: EncodingKey::from_rsa_pem(&rsa_pem).unwrap(),
        other_ec: EncodingKey::from_ec_pem(&other_pem).unwrap(),
        jwks,
        dir,
    }
}

impl TestApp {
    /// The clinic's backend service `CLIENT` (its secret unused); its id.
    async fn backend_service(&self) -> domain::ApiClientId {
        let clinic = self.establishment_id(server::demo::CLINIC_FINESS).await;
        self.store
            .create_client(
                CLIENT,
                "Entrepôt de données",
                &server::auth::hash_secret("inutile".into()).await.unwrap(),
                clinic,
                domain::org::Role::Integration,
                self.clock.now_ms(),
            )
            .await
            .unwrap()
    }

    fn token_url(&self) -> String {
        format!(
            "{}/oauth/token",
            self.state.config.public_url().trim_end_matches('/')
        )
    }

    fn assertion(
        &self,
        alg: Algorithm,
        kid: &str,
        key: &EncodingKey,
        tune: impl FnOnce(&mut serde_json::Value),
    ) -> String {
        let now = self.clock.now_ms() / 1000;
        let mut claims = json!({
            "iss": CLIENT, "sub": CLIENT, "aud": self.token_url(),
            "exp": now + 240, "jti": uuid::Uuid::new_v4().to_string(),
        });
        tune(&mut claims);
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    }

    async fn token_with(&self, assertion: &str, scope: Option<&str>) -> Resp {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
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
}

#[tokio::test]
async fn a_backend_service_gets_scoped_tokens_with_signed_assertions() {
    for backend in BACKENDS {
        let k = keys();
        let app = spawn_app(backend).await;
        let id = app.backend_service().await;
        let registered = server::services::tokens::checked_keys(
            Some(k.jwks.clone()),
            None,
            Some("system/Patient.rs system/DocumentReference.rs".into()),
        )
        .unwrap();
        app.store.set_client_keys(id, &registered).await.unwrap();

        // ES384, asking for patients only: granted that, held to it.
        let a = app.assertion(Algorithm::ES384, "es1", &k.ec, |_| {});
        let r = app.token_with(&a, Some("system/Patient.rs")).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.json()["scope"], "system/Patient.rs");
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let lambert = app.demo_patient("Lambert").await.id;
        let search = app.get("/fhir/Patient?family=LAMBERT", Some(&token)).await;
        assert_eq!(search.status, 200, "{backend}: {}", search.text);
        let read = app
            .get(&format!("/fhir/Patient/{lambert}"), Some(&token))
            .await;
        assert_eq!(read.status, 200, "{backend}");
        let docs = app
            .get(
                &format!("/fhir/DocumentReference?patient=Patient/{lambert}"),
                Some(&token),
            )
            .await;
        assert_eq!(docs.status, 403, "{backend}: {}", docs.text);
        assert!(
            docs.outcome().contains("system/DocumentReference.s"),
            "{}",
            docs.text
        );
        let create = app
            .send_json(
                reqwest::Method::POST,
                "/fhir/Patient",
                &token,
                &patient_body(1, "PROV"),
            )
            .await;
        assert_eq!(create.status, 403, "{backend}: creating is not granted");
        // RS384, for documents.
        let a = app.assertion(Algorithm::RS384, "rs1", &k.rsa, |_| {});
        let r = app
            .token_with(&a, Some("system/DocumentReference.rs"))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let docs = app
            .get(
                &format!("/fhir/DocumentReference?patient=Patient/{lambert}"),
                Some(&token),
            )
            .await;
        assert_eq!(docs.status, 200, "{backend}: {}", docs.text);
    }
}

#[tokio::test]
async fn bad_assertions_and_scopes_are_refused_and_secrets_keep_working() {
    let k = keys();
    let app = spawn_app("sqlite").await;
    let id = app.backend_service().await;
    app.store
        .set_client_keys(
            id,
            &server::services::tokens::checked_keys(
                Some(k.jwks.clone()),
                None,
                Some("system/Patient.rs".into()),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let now = app.clock.now_ms() / 1000;
    let refused = async |a: String, said: &str| {
        let r = app.token_with(&a, None).await;
        assert_eq!(r.status, 401, "{said}: {}", r.text);
        assert_eq!(r.json()["error"], "invalid_client");
        assert!(
            r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains(said),
            "{said}: {}",
            r.text
        );
    };
    refused(
        app.assertion(Algorithm::ES384, "es1", &k.other_ec, |_| {}),
        "signature invalide",
    )
    .await;
    refused(
        app.assertion(Algorithm::ES384, "es1", &k.ec, |c| {
            c["exp"] = (now - 120).into()
        }),
        "assertion expirée",
    )
    .await;
    refused(
        app.assertion(Algorithm::ES384, "es1", &k.ec, |c| {
            c["exp"] = (now + 3600).into()
        }),
        "plus de cinq minutes",
    )
    .await;
    refused(
        app.assertion(Algorithm::ES384, "es1", &k.ec, |c| {
            c["aud"] = "https://ailleurs.example/token".into()
        }),
        "aud doit être",
    )
    .await;
    refused(
        app.assertion(Algorithm::RS256, "rs1", &k.rsa, |_| {}),
        "RS384 ou ES384",
    )
    .await;
    refused(
        app.assertion(Algorithm::ES384, "inconnue", &k.ec, |_| {}),
        "clé inconnue",
    )
    .await;
    // The same jti twice: the second is a replay.
    let once = app.assertion(Algorithm::ES384, "es1", &k.ec, |c| c["jti"] = "j-1".into());
    assert_eq!(app.token_with(&once, None).await.status, 200);
    let again = app.assertion(Algorithm::ES384, "es1", &k.ec, |c| c["jti"] = "j-1".into());
    refused(again, "déjà utilisée").await;
    // Scopes beyond the client's, or not SMART system scopes: invalid_scope.
    for (scope, said) in [
        (
            "system/Patient.cruds",
            "portée non accordée à ce client : system/Patient.cruds",
        ),
        ("system/*.rs", "portée non accordée"),
        ("patient/*.read", "seules les portées system/"),
    ] {
        let a = app.assertion(Algorithm::ES384, "es1", &k.ec, |_| {});
        let r = app.token_with(&a, Some(scope)).await;
        assert_eq!(r.status, 400, "{scope}: {}", r.text);
        assert_eq!(r.json()["error"], "invalid_scope");
        assert!(r.text.contains(said), "{scope}: {}", r.text);
    }
    // A shared-secret client works as before, and may ask for scopes too.
    let token = app
        .client_token("clinic-feed", server::demo::CLINIC_FINESS)
        .await;
    let lambert = app.demo_patient("Lambert").await.id;
    assert_eq!(
        app.get(
            &format!("/fhir/DocumentReference?patient=Patient/{lambert}"),
            Some(&token)
        )
        .await
        .status,
        200
    );
    let r = read(
        app.http
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "clinic-feed"),
                ("client_secret", "clinic-feed-secret"),
                ("scope", "system/Patient.r"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let scoped = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/fhir/Patient?family=LAMBERT", Some(&scoped))
            .await
            .status,
        403,
        "read by id only, no search"
    );
    // Keys that cannot be registered are refused with why.
    let check = |jwks: &str| {
        server::services::tokens::checked_keys(Some(jwks.into()), None, None).unwrap_err()
    };
    assert!(check("{").contains("JWKS illisible"));
    assert!(check(r#"{"keys": []}"#).contains("sans clé"));
    assert!(
        check(r#"{"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "c"}]}"#)
            .contains("clé privée")
    );
    assert!(
        server::services::tokens::checked_keys(None, Some("http://ailleurs".into()), None)
            .unwrap_err()
            .contains("https://")
    );
    assert!(
        server::services::tokens::checked_keys(None, None, Some("system/Patient.xyz".into()))
            .is_err()
    );
}

#[tokio::test]
async fn the_server_says_how_to_get_a_token() {
    let app = spawn_app("sqlite").await;
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        let c = r.json();
        assert_eq!(c["token_endpoint"], app.token_url());
        for (k, v) in [
            ("token_endpoint_auth_methods_supported", "private_key_jwt"),
            ("token_endpoint_auth_signing_alg_values_supported", "ES384"),
            ("token_endpoint_auth_signing_alg_values_supported", "RS384"),
            ("capabilities", "client-confidential-asymmetric"),
            ("capabilities", "permission-v2"),
            ("grant_types_supported", "client_credentials"),
        ] {
            assert!(
                c[k].as_array().unwrap().iter().any(|x| x == v),
                "{path}: {k} {v}"
            );
        }
    }
    let cs = app.get("/fhir/metadata", None).await.json();
    let sec = &cs["rest"][0]["security"];
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    assert_eq!(
        sec["extension"][0]["extension"][0]["valueUri"],
        app.token_url()
    );
    validate_fhir(&[cs]);
}

#[tokio::test]
async fn a_client_publishing_its_keys_at_a_url_is_read_there() {
    let k = keys();
    let jwks = k.jwks.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let served =
        axum::Router::new().route("/jwks.json", axum::routing::get(async move || jwks.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let app = spawn_app("sqlite").await;
    let id = app.backend_service().await;
    // Registered by URL (on this machine, plain http is allowed for the test;
    // the command line asks for https://).
    app.store
        .set_client_keys(
            id,
            &store::sso::ClientKeys {
                jwks: None,
                jwks_url: Some(url.clone()),
                scopes: None,
            },
        )
        .await
        .unwrap();
    let a = app.assertion(Algorithm::ES384, "es1", &k.ec, |_| {});
    let r = app.token_with(&a, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("scope").is_none(), "none asked, none said");
    // The keys' address down: refused, with where they were looked for.
    server.abort();
    let _ = server.await;
    let a = app.assertion(Algorithm::ES384, "es1", &k.ec, |_| {});
    let r = app.token_with(&a, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("clés du client ({url})")),
        "{}",
        r.text
    );
}
