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

/// The desk edits a record: the page shows the demographics, the form saves
/// them (audited by part), a bad value shows the form again with what was typed
/// and why, a stale form is refused, and the INS traits of a qualified
/// identity cannot be changed from the page.
#[tokio::test]
async fn the_desk_edits_a_record_s_demographics() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let token = app.login("sec.leroy").await;
        let cookie = format!("parcours_session={token}");
        // Mercier: a validated identity (traits editable) at the hospital.
        let mercier = app.demo_patient("Mercier").await;
        let page = app
            .get_page(&format!("/patients/{}", mercier.id), &token)
            .await;
        assert!(
            page.text.contains("Coordonnées"),
            "{backend}: {} {}",
            page.status,
            page.text
        );
        assert!(
            page.text.contains("rue de la République"),
            "{backend}: demo address shown"
        );
        let form_path = format!("/patients/{}/coordonnees", mercier.id);
        assert!(
            page.text.contains(&form_path),
            "{backend}: the desk may edit"
        );
        let form = app.get_page(&form_path, &token).await;
        assert_eq!(form.status, 200, "{backend}");
        assert!(
            !form.text.contains("traits-locked"),
            "{backend}: VALI: not locked"
        );
        let csrf = csrf_field(&form.text);
        let version = mercier.version.to_string();
        let mut fields: Vec<(&str, &str)> = vec![
            ("csrf", &csrf),
            ("version", &version),
            ("birth_name", "Mercier"),
            ("given", "Alain"),
            ("birth_date", "1953-07-22"),
            ("sex", "M"),
            ("birthplace", "45208"),
            ("used_name", ""),
            ("used_given", ""),
            ("birth_city", "Gien"),
            ("birth_country", "fra"),
            ("line1", "4 impasse des Lilas"),
            ("line2", ""),
            ("postal_code", "45000"),
            ("city", "Orléans"),
            ("country", "FRA"),
            ("mobile", "06 11 22 33 44"),
            ("home_phone", ""),
            ("work_phone", ""),
            ("email", ""),
            ("language", "fr"),
            ("trusted_family", "Mercier"),
            ("trusted_given", "Jeanne"),
            ("trusted_relationship", "SPO"),
            ("trusted_phone", "07 11 22 33 44"),
            ("emergency_family", ""),
            ("emergency_given", ""),
            ("emergency_relationship", ""),
            ("emergency_phone", ""),
            ("gp_rpps", "12345678901"),
            ("gp_family", "Martin"),
            ("gp_given", ""),
            ("deceased", ""),
        ];
        // A bad RPPS: the form again (422), with what was typed and why.
        let r = app.post_form(&form_path, &cookie, &fields).await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.text.contains("RPPS invalide"), "{backend}: {}", r.text);
        assert!(
            r.text.contains("4 impasse des Lilas"),
            "{backend}: typed values kept"
        );
        assert_eq!(
            app.store.demographics(mercier.id).await.unwrap().addresses[0].lines,
            ["17 rue de la République"],
            "{backend}: nothing written"
        );
        let set = |fields: &mut Vec<(&str, &str)>, k: &'static str, v: &'static str| {
            fields.iter_mut().find(|(n, _)| *n == k).unwrap().1 = v;
        };
        set(&mut fields, "gp_rpps", "10000023084");
        set(&mut fields, "mobile", "06 11 22");
        let r = app.post_form(&form_path, &cookie, &fields).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(
            r.text.contains("numéro de téléphone"),
            "{backend}: {}",
            r.text
        );
        set(&mut fields, "mobile", "06 11 22 33 44");
        let r = app.post_form(&form_path, &cookie, &fields).await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some(format!("/patients/{}", mercier.id))),
            "{backend}: {}",
            r.text
        );
        let d = app.store.demographics(mercier.id).await.unwrap();
        assert_eq!(d.addresses[0].city.as_deref(), Some("Orléans"), "{backend}");
        assert_eq!(d.telecoms[0].value, "0611223344");
        assert_eq!(d.trusted_person().unwrap().given.as_deref(), Some("Jeanne"));
        assert_eq!(d.gp.as_ref().unwrap().rpps.as_str(), "10000023084");
        assert_eq!(
            d.birth_place.as_ref().unwrap().country.as_deref(),
            Some("FRA")
        );
        let page = app
            .get_page(&format!("/patients/{}", mercier.id), &token)
            .await;
        for shown in [
            "4 impasse des Lilas, 45000 Orléans",
            "06 11 22 33 44",
            "Jeanne MERCIER (conjoint(e))",
            "Personne de confiance",
            "Dr Martin (RPPS 10000023084)",
        ] {
            assert!(
                page.text.contains(shown),
                "{backend}: {shown} in {}",
                page.text
            );
        }
        let trail = app
            .store
            .list_audit(&store::audit::AuditFilter {
                patient: Some(mercier.id.to_string()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        let edit = trail
            .iter()
            .find(|e| e.action == "update-demographics")
            .unwrap();
        assert!(
            edit.resource
                .ends_with("#address,birth-place,telecom,contact,general-practitioner")
                && edit.role.as_deref() == Some("secretary"),
            "{backend}: {edit:?}"
        );
        // The same form again: its version is stale; shown again, it keeps that
        // version, so sending it once more cannot overwrite the change either.
        let r = app.post_form(&form_path, &cookie, &fields).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.text.contains("modifié entre-temps"), "{backend}");
        assert!(
            r.text
                .contains(&format!("name=\"version\" value=\"{version}\"")),
            "{backend}: the stale version kept"
        );
        assert_eq!(
            app.post_form(&form_path, &cookie, &fields).await.status,
            422,
            "{backend}"
        );

        // Lambert's identity is qualified: the traits are locked on the form,
        // and a birth name sent anyway is not taken.
        let token = app.login("sec.durand").await;
        let cookie = format!("parcours_session={token}");
        let lambert = app.demo_patient("Lambert").await;
        let path = format!("/patients/{}/coordonnees", lambert.id);
        let form = app.get_page(&path, &token).await;
        assert!(
            form.text.contains("traits-locked") && form.text.contains("INSi"),
            "{backend}"
        );
        let csrf = csrf_field(&form.text);
        let version = lambert.version.to_string();
        let r = app
            .post_form(
                &path,
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("version", &version),
                    ("birth_name", "Autre"),
                    ("used_name", "Lambert-Roy"),
                    ("city", "Orléans"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let after = app.store.patient(lambert.id).await.unwrap();
        assert_eq!(
            after.traits.birth_name, "Lambert",
            "{backend}: INS traits kept"
        );
        assert_eq!(after.traits.used_name.as_deref(), Some("Lambert-Roy"));
        // The bed manager reads the identity but does not edit it.
        let token = app.login("lits.moreau").await;
        let page = app
            .get_page(&format!("/patients/{}", mercier.id), &token)
            .await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(!page.text.contains(&form_path), "{backend}: no edit link");
        let r = app.get_page(&form_path, &token).await;
        assert_eq!(r.status, 403, "{backend}");
    }
}
