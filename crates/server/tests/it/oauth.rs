//! OAuth2 client credentials and bearer tokens.

use crate::helpers::*;

#[tokio::test]
async fn tokens_are_issued_checked_and_expire() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let r = app.token_for("demo-integration", "demo-secret").await;
        assert_eq!(r.status, 200, "{backend}");
        let v = r.json();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let token = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get("/fhir/Patient?family=lambert", Some(&token))
                .await
                .status,
            200,
            "{backend}"
        );
        app.clock.advance_secs(3600);
        let r = app.get("/fhir/Patient?family=lambert", Some(&token)).await;
        assert_eq!(r.status, 401, "{backend}: expired");
        assert!(r.outcome().contains("expiré"));
    }
}

#[tokio::test]
async fn bad_credentials_and_requests_are_refused_per_rfc6749() {
    let app = spawn_app("sqlite").await;
    let r = app.token_for("demo-integration", "wrong").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = app.token_for("nobody", "demo-secret").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let post = |body: &'static str| {
        app.http
            .post(app.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = read(
        post("grant_type=password&client_id=a&client_secret=b")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = read(post("client_id=a&client_secret=b").await.unwrap()).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = read(
        post("grant_type=client_credentials&client_id=demo-integration")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // HTTP Basic client authentication works too.
    let r = read(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth("demo-integration", Some("demo-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn forged_and_malformed_bearers_are_401() {
    let app = spawn_app("sqlite").await;
    for auth in ["Bearer 0000", "Bearer ", "Basic abc", "Token x"] {
        let r = read(
            app.http
                .get(app.url("/fhir/Patient"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 401, "{auth}");
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"parcours\"")
        );
        r.outcome();
    }
}

#[tokio::test]
async fn token_attempts_are_rate_limited() {
    let app = spawn_app_with("sqlite", |c| c.login_attempts_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(app.token_for("demo-integration", "wrong").await.status, 401);
    }
    let r = app.token_for("demo-integration", "demo-secret").await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    app.clock.advance_secs(61);
    assert_eq!(
        app.token_for("demo-integration", "demo-secret")
            .await
            .status,
        200
    );
}
