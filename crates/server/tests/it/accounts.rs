//! Set-up and the life of accounts, over HTTP on both backends: the first
//! administrator's set-up link, invitations, second factor from the QR code's
//! secret, recovery codes, disabling (sessions and sockets end at once), roles,
//! API clients rotated and revoked, and the organisation file applied.

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

/// The path of a link URL.
fn path_of(url: &str) -> String {
    let i = url.find("/lien/").expect("a link path");
    url[i..].to_owned()
}

/// The TOTP secret a link page shows (and carries in its form).
fn shown_secret(html: &str) -> String {
    let marker = "name=\"secret\" value=\"";
    let i = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("secret field");
    html[i..].split('"').next().unwrap().to_owned()
}

/// How many of the latest audit entries have one of `actions`.
async fn audited(store: &store::Store, actions: &[&str]) -> usize {
    let f = store::audit::AuditFilter {
        limit: 500,
        ..Default::default()
    };
    store
        .list_audit(&f)
        .await
        .unwrap()
        .iter()
        .filter(|e| actions.contains(&e.action.as_str()))
        .count()
}

fn recovery_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

fn link_in(html: &str) -> String {
    let marker = "<code data-link>";
    let i = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("link shown");
    path_of(html[i..].split('<').next().unwrap())
}

impl TestApp {
    async fn follow(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.post_form(path, "", form).await
    }

    /// Follows a professional's link with a good password and the code of the
    /// secret its page shows; the recovery codes and the secret.
    async fn enrol(&self, path: &str, password: &str) -> (Vec<String>, String) {
        let page = self.get(path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.text.contains("<svg"), "a QR code is drawn");
        let secret = shown_secret(&page.text);
        let code = server::auth::totp_code(&secret, self.clock.secs()).unwrap();
        let r = self
            .follow(
                path,
                &[
                    ("password", password),
                    ("confirm", password),
                    ("secret", &secret),
                    ("code", &code),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        (recovery_codes(&r.text), secret)
    }

    /// Password + TOTP login with a given secret; the session.
    async fn login_with(&self, username: &str, password: &str, secret: &str) -> String {
        let r = self.password_step(username, password).await;
        assert_eq!(r.status, 303, "{username}: {}", r.text);
        let half = r.set_cookie("parcours_session").unwrap();
        self.clock.advance_secs(30);
        let code = server::auth::totp_code(secret, self.clock.secs()).unwrap();
        let r = self.totp_step(&half, &code).await;
        assert_eq!(r.header("location").as_deref(), Some("/"), "{}", r.text);
        r.set_cookie("parcours_session").unwrap()
    }
}

#[tokio::test]
async fn init_makes_a_territory_and_a_set_up_link_that_works_once() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let link = server::services::accounts::init(
            app.state.ctx(),
            "GHT Nouveau",
            "1.2.250.1.999.77",
            "admin.ght",
            None,
        )
        .await
        .unwrap();
        let path = path_of(&link.url);
        // Twice: refused, nothing changed.
        let again = server::services::accounts::init(
            app.state.ctx(),
            "GHT Nouveau",
            "1.2.250.1.999.77",
            "admin.autre",
            None,
        )
        .await;
        assert!(again.is_err(), "{backend}");
        assert!(
            app.store
                .user_by_username("admin.autre")
                .await
                .unwrap()
                .is_none()
        );
        // Before following the link nobody can log in as the admin.
        let r = app.password_step("admin.ght", "").await;
        assert_eq!(r.status, 401, "{backend}: {}", r.text);

        let page = app.get(&path, None).await;
        let secret = shown_secret(&page.text);
        let good = "un mot de passe solide";
        let code = server::auth::totp_code(&secret, app.clock.secs()).unwrap();
        // A short password, two different ones, a wrong code: refused, link kept.
        for (pw, confirm, c, why) in [
            ("court", "court", code.as_str(), "12 caractères"),
            (good, "autre chose encore", code.as_str(), "pas identiques"),
            (good, good, "000000", "ne correspond pas"),
        ] {
            let r = app
                .follow(
                    &path,
                    &[
                        ("password", pw),
                        ("confirm", confirm),
                        ("secret", &secret),
                        ("code", c),
                    ],
                )
                .await;
            assert_eq!(r.status, 422, "{backend}: {}", r.text);
            assert!(r.text.contains(why), "{backend}: {why}: {}", r.text);
        }
        let (codes, secret) = app.enrol(&path, good).await;
        assert_eq!(codes.len(), 10, "{backend}");
        // The link works once.
        let r = app.get(&path, None).await;
        assert_eq!(r.status, 404, "{backend}");
        assert!(r.text.contains("plus valable"), "{backend}");
        let r = app
            .follow(
                &path,
                &[
                    ("password", good),
                    ("confirm", good),
                    ("secret", &secret),
                    ("code", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");
        // The admin logs in and sees the administration.
        let session = app.login_with("admin.ght", good, &secret).await;
        let home = app.get_page("/", &session).await;
        assert!(home.text.contains("href=\"/admin\""), "{backend}");
        let admin = app.get_page("/admin", &session).await;
        assert_eq!(admin.status, 200, "{backend}: {}", admin.text);
        assert!(
            admin.text.contains("parcours org apply"),
            "{backend}: no establishment yet"
        );
        // A recovery code replaces the TOTP code once.
        let use_code = async |code: &str| {
            let r = app.password_step("admin.ght", good).await;
            let half = r.set_cookie("parcours_session").unwrap();
            app.totp_step(&half, code).await
        };
        let r = use_code(&codes[0].to_uppercase()).await;
        assert_eq!(
            r.header("location").as_deref(),
            Some("/"),
            "{backend}: {}",
            r.text
        );
        let r = use_code(&codes[0]).await;
        assert_eq!(r.status, 401, "{backend}: a recovery code works once");
        // The set-up is in the audit trail.
        let trail = audited(&app.store, &["territory.init", "link.setup"]).await;
        assert_eq!(trail, 2, "{backend}");
    }
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let link = server::services::accounts::init(
            app.state.ctx(),
            "GHT Lent",
            "1.2.250.1.999.78",
            "admin.lent",
            None,
        )
        .await
        .unwrap();
        app.clock.advance_secs(72 * 3600 + 1);
        let r = app.get(&path_of(&link.url), None).await;
        assert_eq!(r.status, 404, "{backend}");
        assert!(r.text.contains("plus valable"), "{backend}");
    }
}

#[tokio::test]
async fn an_admin_invites_a_doctor_then_disables_them_and_their_socket_closes() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let admin = app.login("admin.clinique").await;
        let page = app.get_page("/admin/personnes", &admin).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let csrf = csrf_field(&page.text);
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let cookie = format!("parcours_session={admin}");
        let invite = async |username: &str, role: &str| {
            app.post_form(
                "/admin/personnes",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("display_name", "Dr Alice Nouvelle"),
                    ("email", "alice@clinique.example"),
                    ("role", role),
                    ("establishment", &clinic.to_string()),
                ],
            )
            .await
        };
        let r = invite("dr.nouvelle", "doctor").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let path = link_in(&r.text);
        // Refusals the admin can fix: a taken username, a machine role.
        let r = invite("dr.martin", "doctor").await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert!(r.text.contains("déjà pris"), "{backend}");
        let r = invite("robot", "integration").await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        let password = "le mot de passe d'Alice";
        let (_, secret) = app.enrol(&path, password).await;
        let doctor = app.login_with("dr.nouvelle", password, &secret).await;
        assert_eq!(
            app.get_page("/patients", &doctor).await.status,
            200,
            "{backend}"
        );
        let mut ws = app.ws("/salle-attente/ws", &doctor).await.unwrap();

        let id = app.user_id("dr.nouvelle").await;
        let r = app
            .post_form(
                &format!("/admin/personnes/{id}/desactiver"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        // The socket closes at once (not at the next periodic check).
        let closed = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .is_ok();
        assert!(closed, "{backend}: the disabled doctor's socket closed");
        // Their open page is logged out, and they cannot log in again.
        let r = app.get_page("/patients", &doctor).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.text);
        let r = app.password_step("dr.nouvelle", password).await;
        assert_eq!(r.status, 401, "{backend}");
        // Enabled again: the password works again (a new login is needed).
        let r = app
            .post_form(
                &format!("/admin/personnes/{id}/reactiver"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        app.login_with("dr.nouvelle", password, &secret).await;
        // The audit trail has the invitation, the disabling and the enabling.
        let n = audited(
            &app.store,
            &["account.invite", "account.disable", "account.enable"],
        )
        .await;
        assert_eq!(n, 3, "{backend}");
    }
}

#[tokio::test]
async fn admins_act_only_on_their_own_establishments() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let admin = app.login("admin.clinique").await;
        let page = app.get_page("/admin/personnes", &admin).await;
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={admin}");
        // The hospital's doctor is not the clinic admin's to disable or reset.
        let bernard = app.user_id("dr.bernard").await;
        for action in ["desactiver", "second-facteur", "mot-de-passe"] {
            let r = app
                .post_form(
                    &format!("/admin/personnes/{bernard}/{action}"),
                    &cookie,
                    &[("csrf", &csrf)],
                )
                .await;
            assert_eq!(r.status, 403, "{backend}: {action}: {}", r.text);
        }
        assert!(app.store.user(bernard).await.unwrap().active, "{backend}");
        // Nor may it grant a role at the hospital.
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let martin = app.user_id("dr.martin").await;
        let r = app
            .post_form(
                &format!("/admin/personnes/{martin}/roles"),
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("establishment", &hospital.to_string()),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        // Its own account is not its to disable.
        let own = app.user_id("admin.clinique").await;
        let r = app
            .post_form(
                &format!("/admin/personnes/{own}/desactiver"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}");
        // Without the page's CSRF token nothing happens.
        let r = app
            .post_form(
                &format!("/admin/personnes/{martin}/desactiver"),
                &cookie,
                &[("csrf", "x")],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}");
        assert!(app.store.user(martin).await.unwrap().active, "{backend}");
        // A nurse has no administration.
        let nurse = app.login("ide.petit").await;
        for path in [
            "/admin",
            "/admin/personnes",
            "/admin/clients",
            "/admin/etablissements",
        ] {
            assert_eq!(
                app.get_page(path, &nurse).await.status,
                403,
                "{backend}: {path}"
            );
        }
        // Resetting the clinic doctor's second factor ends their session and
        // gives a link to enrol a new one; the old code no longer works.
        let doctor = app.login("dr.martin").await;
        let r = app
            .post_form(
                &format!("/admin/personnes/{martin}/second-facteur"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let path = link_in(&r.text);
        assert_eq!(
            app.get_page("/patients", &doctor).await.status,
            303,
            "{backend}"
        );
        let r = app
            .password_step("dr.martin", server::demo::DEMO_PASSWORD)
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        assert!(
            r.text.contains("Second facteur non configuré"),
            "{backend}: no second factor until enrolled: {}",
            r.text
        );
        let page = app.get(&path, None).await;
        assert!(
            !page.text.contains("name=\"password\""),
            "{backend}: only the second factor"
        );
        let secret = shown_secret(&page.text);
        let code = server::auth::totp_code(&secret, app.clock.secs()).unwrap();
        let r = app
            .follow(&path, &[("secret", &secret), ("code", &code)])
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        app.login_with("dr.martin", server::demo::DEMO_PASSWORD, &secret)
            .await;
    }
}

#[tokio::test]
async fn a_rotated_or_revoked_client_loses_its_tokens() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let admin = app.login("admin.hopital").await;
        let page = app.get_page("/admin/clients", &admin).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={admin}");
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let secret_in = |html: &str| {
            let marker = "<code data-secret>";
            let i = html
                .find(marker)
                .map(|i| i + marker.len())
                .expect("secret shown");
            html[i..].split('<').next().unwrap().to_owned()
        };
        let r = app
            .post_form(
                "/admin/clients",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("client_id", "labo-feed"),
                    ("name", "Laboratoire"),
                    ("establishment", &hospital.to_string()),
                    ("role", "integration"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let first = secret_in(&r.text);
        let token = app.token_for("labo-feed", &first).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.get("/fhir/Organization", Some(&token)).await.status,
            200,
            "{backend}"
        );
        let id = app
            .store
            .client_by_client_id("labo-feed")
            .await
            .unwrap()
            .unwrap()
            .id;
        let r = app
            .post_form(
                &format!("/admin/clients/{id}/renouveler"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        let second = secret_in(&r.text);
        assert_ne!(first, second);
        assert_eq!(
            app.get("/fhir/Organization", Some(&token)).await.status,
            401,
            "{backend}: old token"
        );
        assert_eq!(
            app.token_for("labo-feed", &first).await.status,
            401,
            "{backend}: old secret"
        );
        let token = app.token_for("labo-feed", &second).await.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .post_form(
                &format!("/admin/clients/{id}/revoquer"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        assert_eq!(
            app.get("/fhir/Organization", Some(&token)).await.status,
            401,
            "{backend}: revoked"
        );
        assert_eq!(
            app.token_for("labo-feed", &second).await.status,
            401,
            "{backend}"
        );
        // The clinic's admin does not see nor touch the hospital's clients.
        let other = app.login("admin.clinique").await;
        let page = app.get_page("/admin/clients", &other).await;
        assert!(!page.text.contains("labo-feed"), "{backend}");
        let csrf = csrf_field(&page.text);
        let r = app
            .post_form(
                &format!("/admin/clients/{id}/renouveler"),
                &format!("parcours_session={other}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");
    }
}

const ORG: &str = include_str!("../../../../examples/org-clinique.toml");

#[tokio::test]
async fn the_organisation_file_applies_once_exports_and_refuses_another_territory() {
    use server::orgfile;
    let programmes = ["oral-oncology", "home-infection"];
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        server::services::accounts::init(
            app.state.ctx(),
            "GHT Exemple",
            "1.2.250.1.999.7",
            "admin.ex",
            None,
        )
        .await
        .unwrap();
        let file = orgfile::parse(ORG, &programmes).unwrap();
        let plan = orgfile::plan(&app.store, &file).await.unwrap();
        assert_eq!(plan.changes.len(), 16, "{backend}: {:#?}", plan.lines);
        app.store
            .apply_org_changes(&plan.changes, app.clock.now_ms(), "test")
            .await
            .unwrap();
        let again = orgfile::plan(&app.store, &file).await.unwrap();
        assert!(again.changes.is_empty(), "{backend}: {:?}", again.lines);
        let est = app
            .store
            .establishment_by_finess("450000062")
            .await
            .unwrap()
            .unwrap();
        let units = app.store.units(est.id).await.unwrap();
        assert_eq!(units.len(), 2, "{backend}");
        let hdj = units.iter().find(|u| u.code == "HDJ-ONCO").unwrap();
        let beds = app.store.unit_beds(hdj.id).await.unwrap();
        assert_eq!(beds.counts.capacity, 8, "{backend}");
        assert_eq!(
            app.store.unit_monitoring(hdj.id).await.unwrap(),
            Some(("oral-oncology".into(), "A03".into()))
        );
        assert_eq!(
            app.store
                .establishment_setting(est.id, "teleconsultation_fee_cents")
                .await
                .unwrap()
                .as_deref(),
            Some("2500")
        );
        let sender = app
            .store
            .hl7_sender("GAM", "ACACIAS")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sender.establishment, est.id, "{backend}");
        // Export, then apply the export: nothing to do.
        let exported = orgfile::export(&app.store, est.territory).await.unwrap();
        let back = orgfile::parse(&exported, &programmes).unwrap();
        assert!(
            orgfile::plan(&app.store, &back)
                .await
                .unwrap()
                .changes
                .is_empty(),
            "{backend}"
        );
        // A change shows as one line and one change; a removed setting is removed.
        let changed = ORG
            .replace("count = 12", "count = 14")
            .replace("payment_account = \"acct_acacias\"\n", "");
        let plan = orgfile::plan(&app.store, &orgfile::parse(&changed, &programmes).unwrap())
            .await
            .unwrap();
        assert_eq!(plan.changes.len(), 2, "{backend}: {:?}", plan.lines);
        assert!(
            plan.lines
                .iter()
                .any(|l| l.starts_with("~ lits de CHIR") && l.contains("14")),
            "{:?}",
            plan.lines
        );
        assert!(
            plan.lines
                .iter()
                .any(|l| l.starts_with("- réglage payment_account")),
            "{:?}",
            plan.lines
        );
        // The demo's clinic belongs to the demo territory: this file may not take it.
        let stolen = ORG.replace("450000062", server::demo::CLINIC_FINESS);
        let r = orgfile::plan(&app.store, &orgfile::parse(&stolen, &programmes).unwrap()).await;
        assert!(
            matches!(r, Err(orgfile::PlanError::OtherTerritory(_))),
            "{backend}: {r:?}"
        );
        // An unknown territory is refused with what to do.
        let r = orgfile::plan(
            &app.store,
            &orgfile::parse(&ORG.replace("1.2.250.1.999.7", "1.2.3"), &programmes).unwrap(),
        )
        .await;
        assert!(
            r.unwrap_err().to_string().contains("parcours init"),
            "{backend}"
        );
        // The admin pages show it to the territory's administrator's peers: the
        // clinic admin of the demo sees none of it.
        let admin = app.login("admin.clinique").await;
        let page = app.get_page("/admin/etablissements", &admin).await;
        assert!(!page.text.contains("Acacias"), "{backend}");
    }
}

#[tokio::test]
async fn a_failing_change_leaves_nothing_written() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        server::services::accounts::init(
            app.state.ctx(),
            "GHT Atomique",
            "1.2.250.1.999.9",
            "admin.at",
            None,
        )
        .await
        .unwrap();
        let t = app
            .store
            .territory_by_oid("1.2.250.1.999.9")
            .await
            .unwrap()
            .unwrap();
        let new = store::orgs::Establishment {
            id: domain::EstablishmentId::new(),
            territory: t.id,
            name: "Nouvelle".into(),
            finess: "450000070".into(),
            kind: "private".into(),
            activity: domain::org::Activity::Ssr,
        };
        // The second change reuses the demo clinic's FINESS: unique violation.
        let clash = store::orgs::Establishment {
            id: domain::EstablishmentId::new(),
            finess: server::demo::CLINIC_FINESS.into(),
            ..new.clone()
        };
        let r = app
            .store
            .apply_org_changes(
                &[
                    store::orgs::OrgChange::CreateEstablishment(new.clone()),
                    store::orgs::OrgChange::CreateEstablishment(clash),
                ],
                app.clock.now_ms(),
                "test",
            )
            .await;
        assert!(r.is_err(), "{backend}");
        assert!(
            app.store
                .establishment_by_finess("450000070")
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
    }
}

/// The one-time link path in a mail (quoted-printable soft breaks undone).
fn link_in_mail(mail: &str) -> String {
    let flat = mail.replace("=\r\n", "").replace("=\n", "");
    let i = flat.find("/lien/").expect("a link in the mail");
    flat[i..].chars().take(6 + 64).collect()
}

#[tokio::test]
async fn the_desk_invites_a_patient_who_chooses_a_password_and_logs_in() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let desk = app.login("sec.durand").await;
        let rousseau = app.demo_patient("Rousseau").await;
        let page = app
            .get_page(&format!("/patients/{}", rousseau.id), &desk)
            .await;
        assert!(page.text.contains("Inviter sur le portail"), "{backend}");
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={desk}");
        let path = format!("/patients/{}/portail", rousseau.id);
        let r = app
            .post_form(&path, &cookie, &[("csrf", &csrf), ("email", "")])
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.text.contains("<svg"),
            "{backend}: a QR code of the link to print"
        );
        let marker = "<strong data-login>";
        let i = r.text.find(marker).unwrap() + marker.len();
        let login = r.text[i..].split('<').next().unwrap().to_owned();
        assert_eq!(login, format!("patient.{}", rousseau.ipp.to_lowercase()));
        let link = link_in(&r.text);
        // The patient's page asks for a password only, no second factor.
        let page = app.get(&link, None).await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(!page.text.contains("name=\"secret\""), "{backend}");
        let pw = "mon mot de passe à moi";
        let r = app
            .follow(&link, &[("password", pw), ("confirm", pw)])
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(!r.text.contains("data-recovery-codes"), "{backend}");
        let r = app.password_step(&login, pw).await;
        assert_eq!(
            r.header("location").as_deref(),
            Some("/"),
            "{backend}: {}",
            r.text
        );
        // Invited again once the account works: refused, with what to do.
        let r = app
            .post_form(&path, &cookie, &[("csrf", &csrf), ("email", "")])
            .await;
        assert_eq!(r.status, 409, "{backend}");
        assert!(r.text.contains("mot de passe oublié"), "{backend}");
        // The hospital's desk has the identity but not the care: no invitation
        // (it would open the clinic's record to whoever gets the link).
        let other = app.login("sec.leroy").await;
        let page = app.get_page("/", &other).await;
        let csrf = csrf_field(&page.text);
        let lambert = app.demo_patient("Lambert").await;
        let r = app
            .post_form(
                &format!("/patients/{}/portail", lambert.id),
                &format!("parcours_session={other}"),
                &[("csrf", &csrf), ("email", "pirate@example.com")],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        // A nurse's invitation of a patient is audited on the record.
        let f = store::audit::AuditFilter {
            patient: Some(rousseau.id.to_string()),
            limit: 50,
            ..Default::default()
        };
        let trail = app.store.list_audit(&f).await.unwrap();
        assert!(
            trail.iter().any(|e| e.action == "account.invite-patient"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_forgotten_password_is_mailed_to_the_known_address_only() {
    let relay = crate::mail::relay().await;
    let port = relay.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await;
    app.store
        .set_patient_email(lambert.id, Some("monique@example.fr"), app.clock.now_ms())
        .await
        .unwrap();
    let ask = async |login: &str| {
        let page = app.get("/mot-de-passe-oublie", None).await;
        assert_eq!(page.status, 200);
        app.follow("/mot-de-passe-oublie", &[("login", login)])
            .await
    };
    // An unknown login and a known one get the same answer.
    let unknown = ask("personne").await;
    let known = ask(server::demo::PATIENT_LOGIN).await;
    assert_eq!((unknown.status, known.status), (200, 200));
    assert_eq!(unknown.text, known.text);
    assert_eq!(
        audited(&app.store, &["account.forgotten-password"]).await,
        1
    );
    // Only the known one gets a link (her appointment notices may arrive too,
    // now that she has an address).
    let links = || {
        crate::mail::mails(&relay.dir)
            .into_iter()
            .filter(|m| m.replace("=\r\n", "").replace("=\n", "").contains("/lien/"))
            .collect::<Vec<_>>()
    };
    eventually("the reset mail", async || !links().is_empty()).await;
    let mut found = links();
    assert_eq!(found.len(), 1);
    let mail = found.remove(0);
    assert!(mail.contains("monique@example.fr"));
    let link = link_in_mail(&mail);
    let pw = "un tout nouveau mot de passe";
    let r = app
        .follow(&link, &[("password", pw), ("confirm", pw)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.password_step(server::demo::PATIENT_LOGIN, pw).await;
    assert_eq!(r.header("location").as_deref(), Some("/"), "{}", r.text);
    let r = app
        .password_step(server::demo::PATIENT_LOGIN, server::demo::DEMO_PASSWORD)
        .await;
    assert_eq!(r.status, 401, "the old password is gone");
    // The link lasts an hour and works once.
    assert_eq!(app.get(&link, None).await.status, 404);
    // Asking too often from one address is slowed down.
    let limit = app.state.config.login_attempts_per_minute;
    let mut statuses = Vec::new();
    for _ in 0..=limit {
        statuses.push(ask("personne").await.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn one_sees_and_closes_ones_own_sessions() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let phone = app.login("dr.martin").await;
        let desk = app.login("dr.martin").await;
        let other = app.login("ide.petit").await;
        let page = app.get_page("/mes-connexions", &desk).await;
        assert_eq!(page.status, 200, "{backend}");
        assert_eq!(
            page.text.matches("Fermer cette connexion").count(),
            2,
            "{backend}"
        );
        assert_eq!(page.text.matches("cet appareil").count(), 1, "{backend}");
        let csrf = csrf_field(&page.text);
        let hash = server::auth::token_hash(&phone);
        let cookie = format!("parcours_session={desk}");
        let r = app
            .post_form(
                "/mes-connexions/fermer",
                &cookie,
                &[("csrf", &csrf), ("session", &hash)],
            )
            .await;
        assert_eq!(
            r.header("location").as_deref(),
            Some("/mes-connexions"),
            "{backend}"
        );
        assert_eq!(
            app.get_page("/patients", &phone).await.status,
            303,
            "{backend}: closed"
        );
        assert_eq!(
            app.get_page("/patients", &desk).await.status,
            200,
            "{backend}: kept"
        );
        // Someone else's session is not one's own to close.
        let r = app
            .post_form(
                "/mes-connexions/fermer",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("session", &server::auth::token_hash(&other)),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "{backend}");
        assert_eq!(
            app.get_page("/patients", &other).await.status,
            200,
            "{backend}"
        );
        // Closing this one logs out.
        let r = app
            .post_form(
                "/mes-connexions/fermer",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("session", &server::auth::token_hash(&desk)),
                ],
            )
            .await;
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{backend}");
    }
}

#[tokio::test]
async fn the_help_page_gives_each_establishments_support_cell() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        app.store
            .apply_org_changes(
                &[
                    store::orgs::OrgChange::Setting {
                        establishment: clinic,
                        name: "support_phone".into(),
                        value: Some("02 38 00 00 00".into()),
                    },
                    store::orgs::OrgChange::Setting {
                        establishment: clinic,
                        name: "support_hours".into(),
                        value: Some("du lundi au vendredi, 8 h – 18 h".into()),
                    },
                ],
                app.clock.now_ms(),
                "test",
            )
            .await
            .unwrap();
        // Anonymous: the general help, the questions and the device check.
        let page = app.get("/aide", None).await;
        assert_eq!(page.status, 200, "{backend}");
        assert!(page.text.contains("Questions fréquentes") && page.text.contains("check.js"));
        assert!(!page.text.contains("02 38 00 00 00"), "{backend}");
        let page = app
            .get(
                &format!("/aide?finess={}", server::demo::CLINIC_FINESS),
                None,
            )
            .await;
        assert!(page.text.contains("02 38 00 00 00"), "{backend}");
        assert!(page.text.contains("8 h – 18 h"), "{backend}");
        // Signed in: one's own establishments (the clinic's nurse; the
        // hospital's, whose cell the demo's organisation file sets).
        let nurse = app.login("ide.petit").await;
        assert!(
            app.get_page("/aide", &nurse)
                .await
                .text
                .contains("02 38 00 00 00"),
            "{backend}"
        );
        let other = app.login("ipa.robert").await;
        let page = app.get_page("/aide", &other).await;
        assert!(!page.text.contains("02 38 00 00 00"), "{backend}");
        assert!(page.text.contains("02 38 00 00 21"), "{backend}");
        // An establishment with no cell set: call the desk.
        let page = app
            .get(
                &format!("/aide?finess={}", server::demo::SSR_TILLEULS_FINESS),
                None,
            )
            .await;
        assert!(page.text.contains("Appelez l'accueil"), "{backend}");
        // Linked from every page and from error pages.
        assert!(
            app.get_page("/patients", &nurse)
                .await
                .text
                .contains("href=\"/aide\"")
        );
        assert!(
            app.get("/nulle-part", None)
                .await
                .text
                .contains("href=\"/aide\"")
        );
        assert_eq!(app.get("/static/check.js", None).await.status, 200);
    }
}

#[tokio::test]
async fn the_demo_is_one_more_organisation_file_applied_once() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        // The seed ran once (spawn_app); again, it changes nothing.
        let again = server::demo::seed(&app.store, app.clock.now_ms())
            .await
            .unwrap();
        assert_eq!(again.created, 0, "{backend}");
        // What it made is what the file says, and exports back to a file that
        // applies with no change.
        let t = app
            .store
            .territory_by_oid(server::demo::DEMO_DOMAIN_OID)
            .await
            .unwrap()
            .unwrap();
        let exported = server::orgfile::export(&app.store, t.id).await.unwrap();
        let programmes = ["oral-oncology", "infectious-home"];
        let back = server::orgfile::parse(&exported, &programmes).unwrap();
        let plan = server::orgfile::plan(&app.store, &back).await.unwrap();
        assert!(plan.changes.is_empty(), "{backend}: {:?}", plan.lines);
        let demo = server::orgfile::parse(server::demo::ORGANISATION, &programmes).unwrap();
        // Same content; the export lists establishments by name and programmes sorted.
        let normal = |mut f: server::orgfile::OrgFile| {
            f.establishments.sort_by(|a, b| a.finess.cmp(&b.finess));
            for e in &mut f.establishments {
                e.programmes.sort();
            }
            f
        };
        assert_eq!(normal(back), normal(demo), "{backend}");
    }
}

#[tokio::test]
async fn the_demo_looks_alive_with_a_day_of_adt_and_open_alerts() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let fed = server::demo::animate(&app.store, &app.state.config, app.clock.now_ms())
            .await
            .unwrap();
        // 23 admissions and 8 discharges, every one acknowledged AA.
        assert_eq!(fed, 31, "{backend}");
        let again = server::demo::animate(&app.store, &app.state.config, app.clock.now_ms())
            .await
            .unwrap();
        assert_eq!(again, 0, "{backend}: once");
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let units = app.store.units(hospital).await.unwrap();
        let occupied = async |code: &str| {
            let u = units.iter().find(|u| u.code == code).unwrap();
            app.store.unit_beds(u.id).await.unwrap().counts.occupied
        };
        assert_eq!(
            occupied("REA").await,
            6,
            "{backend}: 9 admitted, 3 discharged"
        );
        assert_eq!(
            occupied("CHIR").await,
            9,
            "{backend}: 14 admitted, 5 discharged"
        );
        // The regional chart has the day's hourly points.
        let coord = app.login("coord.garnier").await;
        let page = app.get_page("/region", &coord).await;
        assert_eq!(page.status, 200, "{backend}");
        // Open alerts wait in the clinic's nurses' queue.
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let queue = app.store.alert_queue(clinic).await.unwrap();
        assert_eq!(queue.len(), 2, "{backend}: open alerts in the queue");
        // The clinic's dispatch dashboard has documents in every state.
        let desk = app.login("sec.durand").await;
        let board = app.get_page("/documents", &desk).await.page();
        for state in [
            "DMP (Mon Espace Santé) : remis",
            "Médecin traitant : en cours d'envoi",
            "DMP (Mon Espace Santé) : échec",
            "DMP (Mon Espace Santé) : non envoyé",
            "Médecin traitant : en attente",
            "INS inconnue du téléservice DMP",
            "le patient s'est opposé à l'alimentation de son DMP",
        ] {
            assert!(board.contains(state), "{backend}: {state:?} in {board}");
        }
        // Eligible: the seed's report, the letter (pushed), the refused
        // report and both versions of the corrected one.
        assert!(
            board.contains("20,0 %") && board.contains("1 envoyés sur 5 éligibles"),
            "{backend}: {board}"
        );
        // The corrected report replaced its first version.
        let blanc = app.demo_patient("Blanc").await;
        let docs = app.store.documents_of_patient(blanc.id).await.unwrap();
        let first = docs.iter().find(|d| d.version == 1).unwrap();
        let second = docs.iter().find(|d| d.version == 2).unwrap();
        assert_eq!(
            (first.superseded_by, second.replaces),
            (Some(second.id), Some(first.id)),
            "{backend}"
        );
        // The refused copy is a dead letter the DSI can see and replay.
        assert_eq!(
            app.store.outbox_dead(10).await.unwrap().len(),
            1,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn an_establishments_own_endpoints_and_fee_win_over_the_instances() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |c| {
            c.oru_destination = Some("mllp://127.0.0.1:2999".into());
            c.teleconsultation_fee_cents = 3000;
        })
        .await;
        let ctx = app.state.ctx();
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let lambert = app.demo_patient("Lambert").await;
        use server::services::directory;
        // Nothing set: the instance's.
        assert_eq!(
            directory::oru_destination(ctx, clinic)
                .await
                .unwrap()
                .as_deref(),
            Some("mllp://127.0.0.1:2999")
        );
        assert_eq!(directory::siu_destination(ctx, clinic).await.unwrap(), None);
        assert_eq!(
            directory::teleconsultation_fee_cents(ctx, clinic)
                .await
                .unwrap(),
            3000
        );
        // The clinic's organisation file sets its own.
        let set = |name: &str, value: &str| store::orgs::OrgChange::Setting {
            establishment: clinic,
            name: name.into(),
            value: Some(value.into()),
        };
        app.store
            .apply_org_changes(
                &[
                    set("oru_destination", "mllp://127.0.0.1:2576"),
                    set("siu_destination", "mllp://127.0.0.1:2577"),
                    set("teleconsultation_fee_cents", "2500"),
                ],
                app.clock.now_ms(),
                "test",
            )
            .await
            .unwrap();
        let target = server::services::monitoring::report_target(ctx, lambert.id, clinic)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(target.destination, "mllp://127.0.0.1:2576", "{backend}");
        assert_eq!(
            directory::siu_destination(ctx, clinic)
                .await
                .unwrap()
                .as_deref(),
            Some("mllp://127.0.0.1:2577")
        );
        assert_eq!(
            directory::teleconsultation_fee_cents(ctx, clinic)
                .await
                .unwrap(),
            2500
        );
        // The hospital keeps the instance's.
        let target = server::services::monitoring::report_target(ctx, lambert.id, hospital)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(target.destination, "mllp://127.0.0.1:2999", "{backend}");
        assert_eq!(
            directory::teleconsultation_fee_cents(ctx, hospital)
                .await
                .unwrap(),
            3000
        );
    }
}

#[tokio::test]
async fn an_admin_edits_their_establishment_as_a_file_on_the_page() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let hospital = app
            .store
            .establishment_by_finess(server::demo::HOSPITAL_FINESS)
            .await
            .unwrap()
            .unwrap();
        let admin = app.login("admin.hopital").await;
        let path = format!("/admin/etablissements/{}/modifier", hospital.id);
        let page = app.get_page(&path, &admin).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        assert!(page.text.contains("450000021"), "{backend}");
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={admin}");
        let text = server::orgfile::export_of(
            &app.store,
            hospital.territory,
            std::slice::from_ref(&hospital),
        )
        .await
        .unwrap();
        let post = async |text: &str, action: &str| {
            app.post_form(
                &path,
                &cookie,
                &[("csrf", &csrf), ("fichier", text), ("action", action)],
            )
            .await
        };
        let rea = app
            .store
            .units(hospital.id)
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.code == "REA")
            .unwrap();
        let capacity = async || app.store.unit_beds(rea.id).await.unwrap().counts.capacity;
        let bigger = text.replace(
            "category = \"rea\", count = 12",
            "category = \"rea\", count = 14",
        );
        assert_ne!(bigger, text);
        // Preview: the change is listed, nothing is written.
        let r = post(&bigger, "preview").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.text.contains("~ lits de REA"), "{backend}: {}", r.text);
        assert_eq!(capacity().await, 12, "{backend}");
        // Apply: written, audited; the page shows what is in place.
        let r = post(&bigger, "apply").await;
        assert_eq!(r.status, 200, "{backend}");
        assert_eq!(capacity().await, 14, "{backend}");
        assert_eq!(
            audited(&app.store, &["organisation.edit"]).await,
            1,
            "{backend}"
        );
        // A bad file is refused whole with its line.
        let bad = bigger
            .replace("count = 14", "count = -1")
            .replace("\"chir\"", "\"cuisine\"");
        let r = post(&bad, "apply").await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(
            r.text.contains("ligne ") && r.text.contains("cuisine"),
            "{backend}"
        );
        assert_eq!(capacity().await, 14, "{backend}");
        // Only this establishment: not another one, not another's sender.
        let clinic = app
            .store
            .establishment_by_finess(server::demo::CLINIC_FINESS)
            .await
            .unwrap()
            .unwrap();
        let both = server::orgfile::export_of(
            &app.store,
            hospital.territory,
            &[hospital.clone(), clinic.clone()],
        )
        .await
        .unwrap();
        let r = post(&both, "apply").await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.text.contains("un seul établissement"), "{backend}");
        let other = app.login("admin.clinique").await;
        let cpath = format!("/admin/etablissements/{}/modifier", clinic.id);
        let cpage = app.get_page(&cpath, &other).await;
        let ccsrf = csrf_field(&cpage.text);
        let ctext =
            server::orgfile::export_of(&app.store, clinic.territory, std::slice::from_ref(&clinic))
                .await
                .unwrap();
        let steal = format!(
            "{ctext}\n[[establishment.hl7_sender]]\napplication = \"GAM\"\nfacility = \"CHVL\"\n"
        );
        let r = app
            .post_form(
                &cpath,
                &format!("parcours_session={other}"),
                &[("csrf", &ccsrf), ("fichier", &steal), ("action", "apply")],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.text.contains("autre établissement"), "{backend}");
        let sender = app.store.hl7_sender("GAM", "CHVL").await.unwrap().unwrap();
        assert_eq!(sender.establishment, hospital.id, "{backend}");
        // The clinic's admin may not open the hospital's.
        assert_eq!(app.get_page(&path, &other).await.status, 403, "{backend}");
    }
}

#[tokio::test]
async fn an_establishment_enrols_only_in_the_programmes_it_offers() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        app.store
            .apply_org_changes(
                &[store::orgs::OrgChange::Programmes {
                    establishment: clinic,
                    programmes: vec!["infectious-home".into()],
                }],
                app.clock.now_ms(),
                "test",
            )
            .await
            .unwrap();
        let nurse = app.login("ide.petit").await;
        let rousseau = app.demo_patient("Rousseau").await;
        let page = app
            .get_page(&format!("/patients/{}", rousseau.id), &nurse)
            .await;
        let csrf = csrf_field(&page.text);
        let enrol = async |programme: &str| {
            app.post_form(
                &format!("/patients/{}/suivi", rousseau.id),
                &format!("parcours_session={nurse}"),
                &[
                    ("csrf", &csrf),
                    ("programme", programme),
                    ("consentement", "1"),
                ],
            )
            .await
        };
        let r = enrol("oral-oncology").await;
        assert_eq!(r.status, 422, "{backend}: {}", r.text);
        assert!(r.text.contains("ne propose pas"), "{backend}: {}", r.text);
        let before = app.store.enrolments_of(rousseau.id).await.unwrap().len();
        let r = enrol("infectious-home").await;
        assert!(
            r.status == 303 || r.status == 200,
            "{backend}: {} {}",
            r.status,
            r.text
        );
        let after = app.store.enrolments_of(rousseau.id).await.unwrap().len();
        assert_eq!(after, before + 1, "{backend}");
    }
}

/// The mails in the relay's box that carry a one-time link, to `to`.
fn link_mails(relay: &crate::mail::Relay, to: &str) -> Vec<String> {
    crate::mail::mails(&relay.dir)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .filter(|m| m.replace("=\r\n", "").replace("=\n", "").contains("/lien/"))
        .collect()
}

#[tokio::test]
async fn a_patients_address_is_used_only_once_the_patient_confirms_it() {
    let relay = crate::mail::relay().await;
    let port = relay.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let lambert = app.demo_patient("Lambert").await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let pcookie = format!("parcours_session={patient}");
    let page = app.get_page("/mon-compte", &patient).await;
    let csrf = csrf_field(&page.text);
    let give = async |email: &str| {
        app.post_form(
            "/mon-compte",
            &pcookie,
            &[("csrf", csrf.as_str()), ("email", email)],
        )
        .await
    };
    // Given: a confirmation leaves, and nothing is used yet.
    let r = give("monique.l@exemple.fr").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.page()
            .contains("Un message vient d'être envoyé à monique.l@exemple.fr"),
        "{}",
        r.text
    );
    assert_eq!(app.store.patient_email(lambert.id).await.unwrap(), None);
    eventually("the confirmation mail", async || {
        !link_mails(&relay, "monique.l@exemple.fr").is_empty()
    })
    .await;
    let mail = link_mails(&relay, "monique.l@exemple.fr").remove(0);
    assert!(
        mail.contains("From: Parcours <ne-pas-repondre@parcours.invalid>"),
        "the platform's own sender: {mail}"
    );
    let link = link_in_mail(&mail);
    // Its page names the address; following it confirms, and the patient's
    // session goes on (no credential changed).
    let page = app.get(&link, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text
            .contains("<strong data-email>monique.l@exemple.fr</strong>"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("name=\"password\""));
    let r = app.follow(&link, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.page().contains("Votre adresse e-mail est confirmée"));
    assert_eq!(
        app.store
            .patient_email(lambert.id)
            .await
            .unwrap()
            .as_deref(),
        Some("monique.l@exemple.fr")
    );
    assert_eq!(app.get_page("/mon-compte", &patient).await.status, 200);
    assert_eq!(app.get(&link, None).await.status, 404, "once only");
    assert_eq!(audited(&app.store, &["link.email_confirmation"]).await, 1);
    // The same address again: nothing to confirm.
    let r = give("monique.l@exemple.fr").await;
    assert!(r.page().contains("déjà celle de vos avis"), "{}", r.text);
    // A new address: the confirmed one stays in use until the new one is
    // confirmed; an unconfirmed link changes nothing when it expires.
    let r = give("autre@exemple.fr").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.store
            .patient_email(lambert.id)
            .await
            .unwrap()
            .as_deref(),
        Some("monique.l@exemple.fr")
    );
    eventually("the second confirmation mail", async || {
        !link_mails(&relay, "autre@exemple.fr").is_empty()
    })
    .await;
    let late = link_in_mail(&link_mails(&relay, "autre@exemple.fr").remove(0));
    app.clock.advance_secs(4 * 24 * 3600);
    assert_eq!(app.follow(&late, &[]).await.status, 404, "expired");
    assert_eq!(
        app.store
            .patient_email(lambert.id)
            .await
            .unwrap()
            .as_deref(),
        Some("monique.l@exemple.fr")
    );
    // Empty: forgotten at once.
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let page = app.get_page("/mon-compte", &patient).await;
    let r = app
        .post_form(
            "/mon-compte",
            &format!("parcours_session={patient}"),
            &[("csrf", &csrf_field(&page.text)), ("email", "")],
        )
        .await;
    assert!(r.page().contains("plus rien ne vous sera envoyé"));
    assert_eq!(app.store.patient_email(lambert.id).await.unwrap(), None);
}

#[tokio::test]
async fn without_a_relay_no_address_is_kept_unconfirmed() {
    let app = spawn_app("sqlite").await;
    let lambert = app.demo_patient("Lambert").await;
    let patient = app.login(server::demo::PATIENT_LOGIN).await;
    let page = app.get_page("/mon-compte", &patient).await;
    let r = app
        .post_form(
            "/mon-compte",
            &format!("parcours_session={patient}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("email", "monique.l@exemple.fr"),
            ],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.page().contains("l'adresse n'est pas enregistrée"));
    assert_eq!(app.store.patient_email(lambert.id).await.unwrap(), None);
    // The desk's invitation with an address it cannot mail: printed, and the
    // address is said not kept, even once the patient follows the link.
    let desk = app.login("sec.durand").await;
    let rousseau = app.demo_patient("Rousseau").await;
    let page = app
        .get_page(&format!("/patients/{}", rousseau.id), &desk)
        .await;
    let r = app
        .post_form(
            &format!("/patients/{}/portail", rousseau.id),
            &format!("parcours_session={desk}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("email", "rousseau@exemple.fr"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.page().contains("l'adresse saisie n'est pas enregistrée"));
    let link = link_in(&r.text);
    let pw = "mon mot de passe à moi";
    let r = app
        .follow(&link, &[("password", pw), ("confirm", pw)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.store.patient_email(rousseau.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_mailed_invitation_confirms_the_address_when_followed() {
    let relay = crate::mail::relay().await;
    let port = relay.port;
    let app = spawn_app_with("sqlite", move |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let desk = app.login("sec.durand").await;
    let rousseau = app.demo_patient("Rousseau").await;
    let page = app
        .get_page(&format!("/patients/{}", rousseau.id), &desk)
        .await;
    let r = app
        .post_form(
            &format!("/patients/{}/portail", rousseau.id),
            &format!("parcours_session={desk}"),
            &[
                ("csrf", &csrf_field(&page.text)),
                ("email", "rousseau@exemple.fr"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.page()
            .contains("en l'ouvrant, le patient confirme son adresse")
    );
    assert!(!r.page().contains("n'est pas enregistrée"));
    assert_eq!(app.store.patient_email(rousseau.id).await.unwrap(), None);
    eventually("the invitation mail", async || {
        !link_mails(&relay, "rousseau@exemple.fr").is_empty()
    })
    .await;
    let link = link_in_mail(&link_mails(&relay, "rousseau@exemple.fr").remove(0));
    let pw = "mon mot de passe à moi";
    let r = app
        .follow(&link, &[("password", pw), ("confirm", pw)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.store
            .patient_email(rousseau.id)
            .await
            .unwrap()
            .as_deref(),
        Some("rousseau@exemple.fr")
    );
}
