//! Migrations, organisations, users, sessions, lockout, API clients and tokens.

use domain::org::Role;
use domain::policy::Grant;
use store::StoreError;
use store::orgs::Unit;
use store::users::{NewUser, Session, UserKind};

use crate::support::*;

#[tokio::test]
async fn migrations_apply_once_and_are_recorded() {
    for (name, s) in backends().await {
        assert_eq!(
            s.applied_migrations().await.unwrap(),
            vec![
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25, 26, 27, 28, 29, 30, 31, 32, 33
            ],
            "{name}"
        );
        assert!(
            s.migrate(NOW).await.unwrap().is_empty(),
            "{name}: second run applies nothing"
        );
        s.ping().await.unwrap();
    }
}

#[tokio::test]
async fn establishments_and_units() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let e = s.establishment(w.e1).await.unwrap();
        assert_eq!(e.territory, w.t1.id, "{name}");
        assert_eq!(s.establishments(w.t1.id).await.unwrap().len(), 2, "{name}");
        assert_eq!(s.establishments(w.t2.id).await.unwrap().len(), 1, "{name}");
        assert_eq!(
            s.establishment_by_finess("130000003")
                .await
                .unwrap()
                .unwrap()
                .id,
            w.e3
        );
        assert!(
            s.establishment_by_finess("000000000")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.territory_by_oid(&w.t1.oid).await.unwrap().unwrap(), w.t1);
        assert_eq!(s.territory(w.t2.id).await.unwrap(), w.t2);
        let mut dup = e.clone();
        dup.id = domain::EstablishmentId::new();
        assert!(
            matches!(
                s.create_establishment(&dup, NOW).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}: FINESS unique"
        );
        let u = Unit {
            id: domain::UnitId::new(),
            establishment: w.e1,
            code: "ICU".into(),
            name: "Réanimation".into(),
            kind: "icu".into(),
        };
        s.create_unit(&u).await.unwrap();
        assert_eq!(s.units(w.e1).await.unwrap(), vec![u.clone()]);
        let again = Unit {
            id: domain::UnitId::new(),
            ..u
        };
        assert!(
            matches!(s.create_unit(&again).await, Err(StoreError::Conflict(_))),
            "{name}: unit code unique"
        );
    }
}

fn user(username: &str, roles: Vec<(domain::EstablishmentId, Role)>) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: "Dr Test".into(),
        kind: UserKind::Professional,
        password_hash: "$argon2id$fake".into(),
        totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
        rpps: Some("10000012345".into()),
        profession: Some("Médecin".into()),
        patient: None,
        roles,
    }
}

#[tokio::test]
async fn users_roles_and_lockout() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let id = s
            .create_user(
                &user("dr.a", vec![(w.e1, Role::Doctor), (w.e3, Role::Admin)]),
                NOW,
            )
            .await
            .unwrap();
        let u = s.user_by_username("dr.a").await.unwrap().unwrap();
        assert_eq!(u.id, id);
        assert_eq!(u.kind, UserKind::Professional);
        assert!(u.active);
        let mut grants = s.grants(id).await.unwrap();
        grants.sort_by_key(|g| g.role.code());
        assert_eq!(
            grants,
            vec![
                Grant {
                    establishment: w.e3,
                    territory: w.t2.id,
                    role: Role::Admin
                },
                Grant {
                    establishment: w.e1,
                    territory: w.t1.id,
                    role: Role::Doctor
                },
            ],
            "{name}"
        );
        let pros = s.professionals(w.t1.id).await.unwrap();
        assert_eq!(pros.len(), 1);
        assert_eq!(pros[0].1.len(), 1, "{name}: only grants of that territory");
        assert!(
            matches!(
                s.create_user(&user("dr.a", vec![]), NOW).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}"
        );
        assert!(s.user_by_username("nobody").await.unwrap().is_none());

        // Lockout after 3 failures, counter reset by a lock and by a success.
        assert_eq!(
            s.record_login_failure(id, NOW, 3, 60_000).await.unwrap(),
            None
        );
        assert_eq!(
            s.record_login_failure(id, NOW, 3, 60_000).await.unwrap(),
            None
        );
        assert_eq!(
            s.record_login_failure(id, NOW, 3, 60_000).await.unwrap(),
            Some(NOW + 60_000),
            "{name}"
        );
        let u = s.user(id).await.unwrap();
        assert_eq!(
            (u.failed_logins, u.locked_until_ms),
            (0, Some(NOW + 60_000))
        );
        s.record_login_failure(id, NOW, 3, 60_000).await.unwrap();
        s.reset_login_failures(id).await.unwrap();
        let u = s.user(id).await.unwrap();
        assert_eq!((u.failed_logins, u.locked_until_ms), (0, None), "{name}");
        assert!(s.consume_totp_step(id, 100).await.unwrap(), "{name}");
        assert!(
            !s.consume_totp_step(id, 100).await.unwrap(),
            "{name}: replay"
        );
        assert!(
            !s.consume_totp_step(id, 99).await.unwrap(),
            "{name}: older step"
        );
        assert!(s.consume_totp_step(id, 101).await.unwrap());
        s.set_totp_secret(id, "NEWSECRET").await.unwrap();
        assert_eq!(
            s.user(id).await.unwrap().totp_secret.as_deref(),
            Some("NEWSECRET")
        );
        assert!(matches!(
            s.set_totp_secret(domain::UserId::new(), "x").await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn sessions_expire_upgrade_and_end() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let uid = s
            .create_user(&user("dr.s", vec![(w.e1, Role::Doctor)]), NOW)
            .await
            .unwrap();
        let half = Session {
            token_hash: "h1".into(),
            user: uid,
            csrf_token: "c1".into(),
            mfa_done: false,
            expires_at_ms: NOW + 1_000,
        };
        s.create_session(&half, NOW).await.unwrap();
        assert_eq!(
            s.session("h1", NOW).await.unwrap(),
            Some(half.clone()),
            "{name}"
        );
        assert_eq!(
            s.session("h1", NOW + 1_000).await.unwrap(),
            None,
            "{name}: expired"
        );
        let full = Session {
            token_hash: "h2".into(),
            mfa_done: true,
            csrf_token: "c2".into(),
            ..half.clone()
        };
        s.upgrade_session("h1", &full, NOW).await.unwrap();
        assert_eq!(
            s.session("h1", NOW).await.unwrap(),
            None,
            "{name}: old token is gone"
        );
        assert!(s.session("h2", NOW).await.unwrap().unwrap().mfa_done);
        assert!(
            matches!(
                s.upgrade_session("h1", &full, NOW).await,
                Err(StoreError::NotFound)
            ),
            "{name}"
        );
        s.delete_session("h2").await.unwrap();
        assert_eq!(s.session("h2", NOW).await.unwrap(), None);
        s.create_session(&half, NOW).await.unwrap();
        assert_eq!(s.purge_expired(NOW + 5_000).await.unwrap(), 1, "{name}");
    }
}

#[tokio::test]
async fn api_clients_and_tokens() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let cid = s
            .create_client(
                "feed",
                "Flux GAM",
                "$argon2id$x",
                w.e2,
                Role::Integration,
                NOW,
            )
            .await
            .unwrap();
        let c = s.client_by_client_id("feed").await.unwrap().unwrap();
        assert_eq!(
            (c.id, c.territory, c.role),
            (cid, w.t1.id, Role::Integration),
            "{name}"
        );
        assert!(s.client_by_client_id("other").await.unwrap().is_none());
        s.create_access_token("tok", cid, NOW, NOW + 3_600_000, None)
            .await
            .unwrap();
        assert_eq!(
            s.client_for_token("tok", NOW).await.unwrap().map(|c| c.id),
            Some(cid),
            "{name}"
        );
        assert!(
            s.client_for_token("tok", NOW + 3_600_000)
                .await
                .unwrap()
                .is_none(),
            "{name}: expired"
        );
        assert!(s.client_for_token("forged", NOW).await.unwrap().is_none());
        assert!(matches!(
            s.create_client("feed", "x", "y", w.e1, Role::Integration, NOW)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
}

/// A token found is kept for `TOKEN_KEPT_FOR` (its expiry still checked at
/// each call); a revocation or a rotation on this store forgets it at once,
/// one made by another node (here, SQL behind the store's back) is seen once
/// that time is up.
#[tokio::test]
async fn a_token_found_is_kept_briefly_and_forgotten_when_revoked() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let client = |id: &'static str| {
            let s = s.clone();
            async move {
                s.create_client(id, id, "$argon2id$x", w.e2, Role::Integration, NOW)
                    .await
                    .unwrap()
            }
        };
        let (elsewhere, revoked, rotated) =
            (client("a").await, client("b").await, client("c").await);
        for (token, cid) in [("t-a", elsewhere), ("t-b", revoked), ("t-c", rotated)] {
            s.create_access_token(token, cid, NOW, NOW + 60_000, Some("system/Patient.r"))
                .await
                .unwrap();
            assert_eq!(
                s.client_and_scopes_for_token(token, NOW).await.unwrap(),
                Some((
                    s.client_by_client_id(&token[2..]).await.unwrap().unwrap(),
                    Some("system/Patient.r".into())
                )),
                "{name}: {token}"
            );
        }
        // Kept: found again without the database.
        store::testing::raw_sql(&s, "DELETE FROM access_tokens WHERE token_hash = 't-a'")
            .await
            .unwrap();
        assert!(
            s.client_for_token("t-a", NOW).await.unwrap().is_some(),
            "{name}: kept"
        );
        // Its expiry still holds.
        assert!(
            s.client_for_token("t-a", NOW + 60_000)
                .await
                .unwrap()
                .is_none(),
            "{name}: expired while kept"
        );
        // This store's revocation and rotation are seen at once.
        s.set_client_active(revoked, false).await.unwrap();
        assert!(
            s.client_for_token("t-b", NOW).await.unwrap().is_none(),
            "{name}: revoked"
        );
        s.rotate_client_secret(rotated, "$argon2id$y")
            .await
            .unwrap();
        assert!(
            s.client_for_token("t-c", NOW).await.unwrap().is_none(),
            "{name}: rotated"
        );
        // Another node's, once the time is up.
        s.create_access_token("t-a2", elsewhere, NOW, NOW + 60_000, None)
            .await
            .unwrap();
        assert!(s.client_for_token("t-a2", NOW).await.unwrap().is_some());
        store::testing::raw_sql(
            &s,
            "UPDATE api_clients SET active = FALSE WHERE client_id = 'a'",
        )
        .await
        .unwrap();
        assert!(
            s.client_for_token("t-a2", NOW).await.unwrap().is_some(),
            "{name}: kept"
        );
        tokio::time::sleep(store::users::TOKEN_KEPT_FOR).await;
        assert!(
            s.client_for_token("t-a2", NOW).await.unwrap().is_none(),
            "{name}: read again"
        );
        assert!(
            s.client_for_token("t-a", NOW).await.unwrap().is_none(),
            "{name}: read again"
        );
    }
}

#[tokio::test]
async fn a_link_confirms_a_patients_address_without_ending_sessions() {
    use store::accounts::{Link, LinkCompletion, LinkPurpose};
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Martin", "Marie"), &who(), NOW)
            .await
            .unwrap()
            .id;
        let uid = s
            .create_user(
                &NewUser {
                    username: format!("patient.{}", rand_suffix()),
                    kind: UserKind::Patient,
                    totp_secret: None,
                    rpps: None,
                    profession: None,
                    patient: Some(p),
                    ..user("x", vec![])
                },
                NOW,
            )
            .await
            .unwrap();
        let session = Session {
            token_hash: format!("s-{name}"),
            user: uid,
            csrf_token: "c".into(),
            mfa_done: true,
            expires_at_ms: NOW + 60_000,
        };
        s.create_session(&session, NOW).await.unwrap();
        let link = |purpose, email: Option<&str>| Link {
            user: uid,
            purpose,
            created_by: "self".into(),
            expires_at_ms: NOW + 1_000,
            used_at_ms: None,
            email: email.map(str::to_owned),
        };
        let confirm = link(LinkPurpose::EmailConfirmation, Some("marie@exemple.fr"));
        s.create_link("l1", &confirm, NOW).await.unwrap();
        assert_eq!(s.link("l1").await.unwrap(), Some(confirm), "{name}");
        assert_eq!(s.patient_email(p).await.unwrap(), None, "{name}: not yet");
        let nothing = LinkCompletion {
            password_hash: None,
            totp_secret: None,
            recovery_code_hashes: &[],
        };
        assert!(
            matches!(
                s.complete_link("l1", &nothing, NOW + 1_000).await,
                Err(StoreError::NotFound)
            ),
            "{name}: expired, nothing written"
        );
        assert_eq!(s.patient_email(p).await.unwrap(), None, "{name}");
        s.create_link(
            "l2",
            &link(LinkPurpose::EmailConfirmation, Some("marie@exemple.fr")),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(s.complete_link("l2", &nothing, NOW).await.unwrap(), uid);
        assert_eq!(
            s.patient_email(p).await.unwrap().as_deref(),
            Some("marie@exemple.fr"),
            "{name}"
        );
        assert!(
            s.session(&session.token_hash, NOW).await.unwrap().is_some(),
            "{name}: no credential changed, the session goes on"
        );
        // A password set by an invitation carrying an address: both written,
        // and the other sessions end.
        s.create_link(
            "l3",
            &link(LinkPurpose::PatientInvitation, Some("m.martin@exemple.fr")),
            NOW,
        )
        .await
        .unwrap();
        let password = LinkCompletion {
            password_hash: Some("$argon2id$new"),
            ..nothing
        };
        s.complete_link("l3", &password, NOW).await.unwrap();
        assert_eq!(
            s.patient_email(p).await.unwrap().as_deref(),
            Some("m.martin@exemple.fr"),
            "{name}"
        );
        assert!(
            s.session(&session.token_hash, NOW).await.unwrap().is_none(),
            "{name}"
        );
        // A link without an address leaves the one confirmed.
        s.create_link("l4", &link(LinkPurpose::PasswordReset, None), NOW)
            .await
            .unwrap();
        s.complete_link("l4", &password, NOW).await.unwrap();
        assert_eq!(
            s.patient_email(p).await.unwrap().as_deref(),
            Some("m.martin@exemple.fr"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn settings_are_found_by_name_across_establishments() {
    use store::orgs::OrgChange;
    for (name, s) in backends().await {
        let w = world(&s).await;
        let set = |e, v: &str| OrgChange::Setting {
            establishment: e,
            name: "imap_url".into(),
            value: Some(v.into()),
        };
        s.apply_org_changes(
            &[
                set(w.e1, "imaps://a@mss.example"),
                set(w.e3, "imaps://c@mss.example"),
            ],
            NOW,
            "test",
        )
        .await
        .unwrap();
        let mut found = s.settings_named("imap_url").await.unwrap();
        found.retain(|(e, _)| [w.e1, w.e2, w.e3].contains(e));
        found.sort_by_key(|(_, v)| v.clone());
        assert_eq!(
            found,
            vec![
                (w.e1, "imaps://a@mss.example".to_owned()),
                (w.e3, "imaps://c@mss.example".to_owned())
            ],
            "{name}"
        );
        assert!(s.settings_named("nothing").await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn federated_logins_are_taken_once_and_assertions_used_once() {
    use store::sso::{ClientKeys, PendingLogin};
    for (name, s) in backends().await {
        let w = world(&s).await;
        let uid = s
            .create_user(
                &user(
                    &format!("dr.f{}", rand_suffix()),
                    vec![(w.e1, Role::Doctor)],
                ),
                NOW,
            )
            .await
            .unwrap();
        let login = PendingLogin {
            browser_hash: "b".into(),
            provider: "psc".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            link_user: Some(uid),
            expires_at_ms: NOW + 600_000,
        };
        s.begin_oidc_login("st", &login).await.unwrap();
        assert_eq!(
            s.take_oidc_login("st", NOW).await.unwrap(),
            Some(login.clone()),
            "{name}"
        );
        assert_eq!(
            s.take_oidc_login("st", NOW).await.unwrap(),
            None,
            "{name}: once"
        );
        s.begin_oidc_login("late", &login).await.unwrap();
        assert_eq!(
            s.take_oidc_login("late", NOW + 600_000).await.unwrap(),
            None,
            "{name}: expired"
        );
        // A subject links to one account only.
        s.link_oidc_identity("psc", "sub-1", uid, "t", NOW)
            .await
            .unwrap();
        s.link_oidc_identity("psc", "sub-1", uid, "t", NOW)
            .await
            .unwrap();
        assert_eq!(s.oidc_identity("psc", "sub-1").await.unwrap(), Some(uid));
        assert_eq!(s.oidc_identity("autre", "sub-1").await.unwrap(), None);
        let other = s
            .create_user(&user(&format!("dr.g{}", rand_suffix()), vec![]), NOW)
            .await
            .unwrap();
        assert!(matches!(
            s.link_oidc_identity("psc", "sub-1", other, "t", NOW).await,
            Err(StoreError::Refused(_))
        ));
        // The session's ID token, taken once at sign-out.
        s.set_oidc_session("sh", "psc", "idt", NOW + 1000)
            .await
            .unwrap();
        assert_eq!(
            s.take_oidc_session("sh").await.unwrap(),
            Some(("psc".to_owned(), "idt".to_owned()))
        );
        assert_eq!(s.take_oidc_session("sh").await.unwrap(), None);
        // An API client's keys, scopes, tokens and assertions.
        let cid = s
            .create_client(
                &format!("c{}", rand_suffix()),
                "C",
                "h",
                w.e1,
                Role::Integration,
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(s.client_keys(cid).await.unwrap(), ClientKeys::default());
        let k = ClientKeys {
            jwks: Some("{\"keys\":[]}".into()),
            jwks_url: None,
            scopes: Some("system/Patient.rs".into()),
        };
        s.set_client_keys(cid, &k).await.unwrap();
        assert_eq!(s.client_keys(cid).await.unwrap(), k, "{name}");
        s.create_access_token("scoped", cid, NOW, NOW + 1000, Some("system/Patient.r"))
            .await
            .unwrap();
        let (c, scopes) = s
            .client_and_scopes_for_token("scoped", NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.id, scopes.as_deref()),
            (cid, Some("system/Patient.r")),
            "{name}"
        );
        assert!(
            s.use_client_assertion(cid, "j1", NOW + 300_000, NOW)
                .await
                .unwrap()
        );
        assert!(
            !s.use_client_assertion(cid, "j1", NOW + 300_000, NOW + 1)
                .await
                .unwrap(),
            "{name}: a replay"
        );
        // Once expired it is forgotten (and would be refused as expired anyway).
        assert!(
            s.use_client_assertion(cid, "j1", NOW + 900_000, NOW + 300_001)
                .await
                .unwrap()
        );
        // Two accounts with the same RPPS (the helper gives it to both): no
        // guess, nobody is signed in by it.
        assert_eq!(
            s.professional_by_rpps("10000012345").await.unwrap(),
            None,
            "{name}"
        );
        s.set_account_enabled(other, false).await.unwrap();
        assert_eq!(
            s.professional_by_rpps("10000012345").await.unwrap(),
            Some(uid),
            "{name}: the one active account"
        );
    }
}

/// A territory read is kept by the store (its name and OID never change),
/// but one not found is not: created afterwards, by this node or another, it
/// is found.
#[tokio::test]
async fn a_territory_not_found_yet_is_found_once_created() {
    for (name, s) in backends().await {
        let t = store::orgs::Territory {
            id: domain::TerritoryId::new(),
            name: "GHT Plus tard".into(),
            oid: format!("1.2.250.1.997.{}", rand_suffix()),
        };
        assert!(
            matches!(s.territory(t.id).await, Err(StoreError::NotFound)),
            "{name}"
        );
        s.create_territory(&t, NOW).await.unwrap();
        assert_eq!(s.territory(t.id).await.unwrap(), t, "{name}");
        assert_eq!(s.territory(t.id).await.unwrap(), t, "{name}: kept");
    }
}
