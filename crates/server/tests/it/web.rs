//! Login with password and TOTP, sessions, CSRF, lockout, logout, pages.

use crate::helpers::*;

#[tokio::test]
async fn a_doctor_logs_in_with_totp_and_reaches_a_patient() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let r = app
            .password_step("dr.martin", server::demo::DEMO_PASSWORD)
            .await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/login/totp")),
            "{backend}"
        );
        let cookie_line = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("parcours_session="))
            .unwrap();
        assert!(
            cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
            "{cookie_line}"
        );
        let half = r.set_cookie("parcours_session").unwrap();
        // Half a login opens nothing.
        let r = app.get_page("/", &half).await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/login")),
            "{backend}"
        );
        let r = app.totp_step(&half, "000000").await;
        assert_eq!(r.status, 401, "{backend}: wrong code");
        assert!(r.text.contains("incorrect"));
        let code = app.totp_now();
        let r = app.totp_step(&half, &code).await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/")),
            "{backend}: {}",
            r.text
        );
        let full = r.set_cookie("parcours_session").unwrap();
        assert_ne!(full, half, "a new session token after the second factor");
        assert_eq!(
            app.get_page("/login/totp", &half)
                .await
                .header("location")
                .as_deref(),
            Some("/login"),
            "old token is dead"
        );
        let home = app.get_page("/", &full).await;
        assert_eq!(home.status, 200);
        assert!(
            home.text.contains("Bonjour Dr Claire Martin") && home.text.contains("Médecin"),
            "{}",
            home.text
        );
        // Search, then open a patient: audited with the doctor's role.
        let r = app.get_page("/patients?nom=lamb", &full).await;
        assert!(r.text.contains("LAMBERT Monique"), "{}", r.text);
        let lambert = app.demo_patient("Lambert").await;
        let r = app
            .get_page(&format!("/patients/{}", lambert.id), &full)
            .await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains(&lambert.ipp) && r.text.contains("qualifiée"));
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(lambert.id.to_string()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (trail[0].action.as_str(), trail[0].role.as_deref()),
            ("read", Some("doctor"))
        );
        // The same code cannot be used twice (replay), even in a new login.
        let r = app
            .password_step("dr.martin", server::demo::DEMO_PASSWORD)
            .await;
        let half2 = r.set_cookie("parcours_session").unwrap();
        assert_eq!(
            app.totp_step(&half2, &code).await.status,
            401,
            "{backend}: replayed code"
        );
        // Logout needs the CSRF token, then ends the session.
        let page = app.get_page("/", &full).await;
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={full}");
        assert_eq!(
            app.post_form("/logout", &cookie, &[("csrf", "forged")])
                .await
                .status,
            403
        );
        assert_eq!(app.post_form("/logout", &cookie, &[]).await.status, 403);
        let r = app.post_form("/logout", &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(
            (r.status, r.header("location").as_deref()),
            (303, Some("/login"))
        );
        assert_eq!(
            app.get_page("/", &full).await.status,
            303,
            "{backend}: logged out"
        );
    }
}

#[tokio::test]
async fn login_posts_need_the_csrf_token_and_the_same_origin() {
    let app = spawn_app("sqlite").await;
    let form = [
        ("username", "dr.martin"),
        ("password", server::demo::DEMO_PASSWORD),
        ("csrf", "x"),
    ];
    assert_eq!(
        app.post_form("/login", "", &form).await.status,
        403,
        "no cookie"
    );
    assert_eq!(
        app.post_form("/login", "parcours_login_csrf=y", &form)
            .await
            .status,
        403,
        "mismatch"
    );
    let page = read(app.http.get(app.url("/login")).send().await.unwrap()).await;
    let cookie = page.set_cookie("parcours_login_csrf").unwrap();
    let csrf = csrf_field(&page.text);
    let from = |origin: &'static str| {
        app.http
            .post(app.url("/login"))
            .header("cookie", format!("parcours_login_csrf={cookie}"))
            .header("origin", origin)
            .form(&[
                ("username", "dr.martin"),
                ("password", server::demo::DEMO_PASSWORD),
                ("csrf", csrf.as_str()),
            ])
            .send()
    };
    let r = read(from("https://evil.example").await.unwrap()).await;
    assert_eq!(r.status, 403, "cross-origin");
    assert!(r.text.contains("autre origine"));
    assert!(r.text.contains("lang=\"fr\""));
    // Browsers send `Origin: null` from sandboxed or no-referrer contexts: refused too.
    let r = read(from("null").await.unwrap()).await;
    assert_eq!(r.status, 403, "Origin: null");
    let home = read(app.http.get(app.url("/login")).send().await.unwrap()).await;
    assert_eq!(
        home.header("referrer-policy").as_deref(),
        Some("same-origin")
    );
}

#[tokio::test]
async fn accounts_lock_after_repeated_failures_then_unlock() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        for i in 1..=4 {
            let r = app.password_step("sec.durand", "wrong").await;
            assert_eq!(r.status, 401, "{backend} attempt {i}");
            assert!(r.text.contains("incorrect"));
        }
        let r = app.password_step("sec.durand", "wrong").await;
        assert!(
            r.text.contains("verrouillé"),
            "{backend}: fifth failure locks"
        );
        let r = app
            .password_step("sec.durand", server::demo::DEMO_PASSWORD)
            .await;
        assert_eq!(
            r.status, 403,
            "{backend}: locked even with the right password"
        );
        assert!(r.text.contains("verrouillé"));
        // Unknown users get the same answer as a wrong password.
        let r = app.password_step("nobody", "x").await;
        assert_eq!(r.status, 401);
        assert!(
            r.text
                .contains("Identifiant, mot de passe ou code incorrect")
        );
        app.clock.advance_secs(15 * 60 + 1);
        app.login("sec.durand").await;
        let u = app
            .store
            .user_by_username("sec.durand")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.failed_logins, u.locked_until_ms),
            (0, None),
            "{backend}: a success clears the counter"
        );
    }
}

#[tokio::test]
async fn pages_per_role_and_the_audit_page() {
    let app = spawn_app("sqlite").await;
    let admin = app.login("admin.hopital").await;
    let home = app.get_page("/", &admin).await;
    assert!(home.page().contains("Consulter le journal d'audit"));
    let token = app.token().await;
    let muller = app.demo_patient("Muller").await;
    app.get(&format!("/fhir/Patient/{}", muller.id), Some(&token))
        .await;
    let r = app
        .get_page(
            &format!("/admin/audit?patient={}&verifier=1", muller.id),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("intacte"), "{}", r.text);
    assert!(r.page().contains("Client d'intégration"), "{}", r.text);
    let nurse = app.login("ide.petit").await;
    assert_eq!(app.get_page("/admin/audit", &nurse).await.status, 403);
    let beds = app.login("lits.moreau").await;
    assert!(
        app.get_page("/", &beds)
            .await
            .text
            .contains("Gérer les lits")
    );
    let r = app.get_page("/patients?naissance=12-04", &nurse).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("Date de naissance illisible"));
    assert_eq!(app.get_page("/nope", &nurse).await.status, 404);
    assert_eq!(
        app.get_page("/patients/not-an-id", &nurse).await.status,
        404
    );
    let css = read(
        app.http
            .get(app.url("/static/app.css"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    // Unauthenticated pages redirect to the login.
    let r = read(app.http.get(app.url("/patients")).send().await.unwrap()).await;
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (303, Some("/login"))
    );
}
