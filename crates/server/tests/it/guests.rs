//! A guest in a video consultation: invited by the doctor with a single-use
//! link bound to the first browser, ready after the devices check, let in by
//! the doctor, in the relay with messages addressed to them only, put out
//! when the invitation is withdrawn; sees no record; every step traced.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

async fn next_text(s: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .expect("readable");
        if let Message::Text(t) = m {
            return t.to_string();
        }
    }
}

/// The guest's WebSocket, with their browser's cookie.
async fn guest_ws(
    app: &TestApp,
    token: &str,
    cookie: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!(
        "{}/invite/{token}/ws",
        app.base.replacen("http://", "ws://", 1)
    )
    .into_client_request()
    .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

async fn get_as(app: &TestApp, path: &str, cookie: Option<&str>) -> Resp {
    let mut r = app.http.get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        bytes: text.clone().into_bytes(),
        text,
    }
}

#[tokio::test]
async fn a_guest_joins_by_a_single_use_link_and_sees_no_record() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let lambert = app.demo_patient("Lambert").await;
        let id = app
            .store
            .appointments_of_patient(lambert.id)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.mode == domain::schedule::Mode::Tele)
            .unwrap()
            .id
            .to_string();
        let show = format!("/rdv/{id}");
        let doctor = app.login("dr.martin").await;
        assert!(
            app.get_page(&show, &doctor)
                .await
                .page()
                .contains("Invités de la consultation"),
            "{backend}"
        );
        let invite = |fields: Vec<(&'static str, &'static str)>| {
            let (app, doctor, show) = (&app, doctor.clone(), show.clone());
            let to = format!("/rdv/{id}/invites");
            async move {
                let csrf = csrf_field(&app.get_page(&show, &doctor).await.text);
                let mut all = vec![("csrf", csrf.as_str())];
                all.extend(fields);
                app.post_form(&to, &format!("parcours_session={doctor}"), &all)
                    .await
            }
        };
        for (fields, says) in [
            (
                vec![("nom", " "), ("qualite", "interprete"), ("contact", "")],
                "indiquez qui vous invitez",
            ),
            (
                vec![("nom", "X"), ("qualite", "avocat"), ("contact", "")],
                "choisissez interprète",
            ),
            (
                vec![("nom", "X"), ("qualite", "proche"), ("contact", "123")],
                "numéro de portable invalide",
            ),
        ] {
            let r = invite(fields).await;
            assert_eq!(r.status, 422, "{backend}: {says}");
            assert!(r.text.contains(says), "{backend}: {says}");
        }
        let r = invite(vec![
            ("nom", "Mme Haddad"),
            ("qualite", "interprete"),
            ("contact", ""),
        ])
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let page = r.page();
        let at = page.find("/invite/").expect("the link");
        let token: String = page[at + 8..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let r = invite(vec![
            ("nom", "M. Lambert fils"),
            ("qualite", "proche"),
            ("contact", "06 12 34 56 78"),
        ])
        .await;
        assert_eq!(r.status, 200, "{backend}");
        assert!(r.page().contains("Le lien part par SMS"), "{backend}");
        let r = invite(vec![
            ("nom", "Dr Tiers"),
            ("qualite", "professionnel"),
            ("contact", ""),
        ])
        .await;
        assert_eq!(r.status, 422, "{backend}: two guests at most");
        assert!(r.text.contains("deux invités au plus"));
        // Not the patient's nor another doctor's to do.
        let other = app.login("dr.bernard").await;
        let r = app
            .post_form(
                &format!("/rdv/{id}/invites"),
                &format!("parcours_session={other}"),
                &[("csrf", "x"), ("nom", "Y"), ("qualite", "proche")],
            )
            .await;
        assert!(matches!(r.status, 403 | 404), "{backend}: {}", r.status);

        // The guest opens the link: their browser keeps it.
        let opened = get_as(&app, &format!("/invite/{token}"), None).await;
        assert_eq!(opened.status, 200, "{backend}: {}", opened.text);
        assert!(opened.text.contains("Vérifier mes appareils"));
        assert!(
            !opened.text.contains("LAMBERT") && !opened.text.contains("Monique"),
            "{backend}: no record"
        );
        let set = opened.headers["set-cookie"].to_str().unwrap().to_owned();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let cookie = set.split(';').next().unwrap().to_owned();
        let elsewhere = get_as(&app, &format!("/invite/{token}"), None).await;
        assert_eq!(elsewhere.status, 403, "{backend}: single use");
        assert!(
            elsewhere
                .text
                .contains("déjà été ouvert sur un autre appareil")
        );
        assert_eq!(get_as(&app, "/invite/inconnu", None).await.status, 404);
        assert_eq!(stage_of(&app, &token, &cookie).await, "opened", "{backend}");
        assert!(
            guest_ws(&app, &token, &cookie).await.is_err(),
            "{backend}: not in the room before being let in"
        );
        let r = app
            .http
            .post(format!("{}/invite/{token}/pret", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{backend}");
        assert_eq!(
            stage_of(&app, &token, &cookie).await,
            "waiting",
            "{backend}"
        );

        // The doctor's room shows the guest waiting and lets them in.
        app.let_in(&doctor, &id).await;
        let room = app.get_page(&format!("/consultation/{id}"), &doctor).await;
        assert!(room.page().contains("Mme Haddad"), "{backend}");
        let gid = app
            .store
            .guests_of(id.parse().unwrap())
            .await
            .unwrap()
            .into_iter()
            .find(|g| g.name == "Mme Haddad")
            .unwrap()
            .id;
        let mut d = app
            .ws(&format!("/consultation/{id}/ws"), &doctor)
            .await
            .unwrap();
        let admit = format!("/consultation/{id}/invites/{gid}/entrer");
        let r = app
            .post_form(
                &admit,
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf_field(&room.text))],
            )
            .await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        assert_eq!(
            stage_of(&app, &token, &cookie).await,
            "admitted",
            "{backend}"
        );
        let inside = get_as(&app, &format!("/invite/{token}/salle"), Some(&cookie)).await;
        assert_eq!(inside.status, 200, "{backend}");
        assert!(inside.text.contains(&format!("data-side=\"guest-{gid}\"")));
        assert!(
            !inside.text.contains("LAMBERT") && !inside.text.contains("file-form"),
            "{backend}: the call only"
        );

        // In the relay: the doctor hears them come; messages go where they are addressed.
        let mut g = guest_ws(&app, &token, &cookie).await.unwrap();
        let mut got = next_text(&mut d).await;
        while !got.contains("joined") {
            got = next_text(&mut d).await;
        }
        assert!(got.contains(&format!("guest-{gid}")), "{backend}: {got}");
        g.send(Message::Text(r#"{"type":"x","to":"patient"}"#.into()))
            .await
            .unwrap();
        g.send(Message::Text(r#"{"type":"y","to":"doctor"}"#.into()))
            .await
            .unwrap();
        let got = next_text(&mut d).await;
        assert!(
            got.contains("\"y\""),
            "{backend}: the patient's message is not the doctor's: {got}"
        );

        // Withdrawn: the guest is put out and the link stops working.
        let csrf = csrf_field(&app.get_page(&show, &doctor).await.text);
        let r = app
            .post_form(
                &format!("/rdv/{id}/invites/{gid}/retirer"),
                &format!("parcours_session={doctor}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        let mut put_out = false;
        for _ in 0..10 {
            match tokio::time::timeout(Duration::from_secs(5), g.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    put_out = true;
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Err(_) => break,
            }
        }
        assert!(put_out, "{backend}: the guest's socket closes");
        let gone = get_as(&app, &format!("/invite/{token}"), Some(&cookie)).await;
        assert_eq!(gone.status, 403, "{backend}");
        assert!(gone.text.contains("retirée"));

        // Every step is traced, with the patient.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let trail = app.store.audit_entries(0, 1_000_000).await.unwrap();
        let steps: Vec<&str> = trail
            .iter()
            .filter(|a| a.resource == format!("Appointment/{id}") && a.action.starts_with("guest-"))
            .map(|a| a.action.as_str())
            .collect();
        for step in [
            "guest-invited",
            "guest-opened",
            "guest-admitted",
            "guest-joined",
            "guest-revoked",
            "guest-left",
        ] {
            assert!(steps.contains(&step), "{backend}: {step} in {steps:?}");
        }
        assert!(
            trail
                .iter()
                .filter(|a| a.action.starts_with("guest-"))
                .all(|a| a.patient.as_deref() == Some(lambert.id.to_string().as_str())),
            "{backend}"
        );
    }
}

async fn stage_of(app: &TestApp, token: &str, cookie: &str) -> String {
    get_as(app, &format!("/invite/{token}/etat"), Some(cookie))
        .await
        .json()["stage"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}
