//! A doctor's hours set on the page by the doctor or the secretariat: the
//! weekly pattern (checked, no overlap), absences that remove their days from
//! the free slots and from booking, and who may touch them.

use crate::helpers::*;

#[tokio::test]
async fn hours_and_absences_shape_the_free_slots() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let martin = app.user_id("dr.martin").await;
        let clinic = app.establishment_id(server::demo::CLINIC_FINESS).await;
        let doctor = app.login("dr.martin").await;
        let page = app.get_page("/agenda/horaires", &doctor).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={doctor}");
        let q = format!("?praticien={martin}&etablissement={clinic}");
        let week = async |rows: &[(&str, &str, &str, &str)]| {
            let mut form = vec![("csrf", csrf.as_str())];
            for (d, s, e, n) in rows {
                form.extend([
                    ("jour", *d),
                    ("debut", *s),
                    ("fin", *e),
                    ("duree", *n),
                    ("mode", "teleconsultation"),
                ]);
            }
            app.post_form(&format!("/agenda/horaires{q}"), &cookie, &form)
                .await
        };
        // Every weekday, 09:00–10:00, 20-minute slots; an empty row is ignored.
        let all: Vec<(&str, &str, &str, &str)> = ["1", "2", "3", "4", "5"]
            .iter()
            .map(|d| (*d, "09:00", "10:00", "20"))
            .chain([("", "", "", "20")])
            .collect();
        let r = week(&all).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.text.contains("5 plage(s)"), "{backend}");
        // Overlapping rows, a reversed one, an unreadable time: refused, kept as it was.
        for (rows, why) in [
            (
                vec![("1", "09:00", "10:00", "20"), ("1", "09:40", "11:00", "20")],
                "chevauche",
            ),
            (vec![("2", "10:00", "09:00", "20")], "horaires invalides"),
            (vec![("3", "neuf", "10:00", "20")], "heure de début"),
        ] {
            let r = week(&rows).await;
            assert_eq!(r.status, 400, "{backend}: {why}: {}", r.text);
            assert!(r.text.contains(why), "{backend}: {why}: {}", r.text);
        }
        let ctx = app.state.ctx();
        let slots = server::services::schedule::free_slots(ctx, martin, clinic, 14)
            .await
            .unwrap();
        let day_of = |ms: i64| domain::schedule::french_date(ms).unwrap();
        // The last day of the fortnight: no demo booking there yet.
        let first_day = day_of(slots.last().unwrap().start_ms);
        let on_first = slots
            .iter()
            .filter(|s| day_of(s.start_ms) == first_day)
            .count();
        assert_eq!(on_first, 3, "{backend}: three 20-minute slots an hour");
        // An absence on that day removes its slots and its booking.
        let r = app
            .post_form(
                &format!("/agenda/absences{q}"),
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("du", &first_day.to_string()),
                    ("au", &first_day.to_string()),
                    ("motif", "Formation"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.text.contains("Formation"), "{backend}");
        let after = server::services::schedule::free_slots(ctx, martin, clinic, 14)
            .await
            .unwrap();
        assert_eq!(after.len(), slots.len() - on_first, "{backend}");
        assert!(
            after.iter().all(|s| day_of(s.start_ms) != first_day),
            "{backend}"
        );
        let lambert = app.demo_patient("Lambert").await;
        let desk = app.login("sec.durand").await;
        let wd = app.state.ctx();
        let sec = server::extract::actor_for_user(
            &app.state,
            &app.store
                .user_by_username("sec.durand")
                .await
                .unwrap()
                .unwrap(),
        )
        .await
        .unwrap();
        let r = server::services::schedule::book(
            wd,
            &sec,
            "sec.durand",
            lambert.id,
            martin,
            clinic,
            slots.last().unwrap().start_ms,
        )
        .await;
        assert!(
            matches!(r, Err(server::error::AppError::Unprocessable(..))),
            "{backend}: {r:?}"
        );
        // An absence in the past or reversed is refused.
        let r = app
            .post_form(
                &format!("/agenda/absences{q}"),
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("du", "2020-01-01"),
                    ("au", "2020-01-02"),
                    ("motif", "Congés"),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{backend}");
        assert!(r.text.contains("passée"), "{backend}");
        // The secretariat of the clinic sets them too and removes the absence.
        let page = app.get_page(&format!("/agenda/horaires{q}"), &desk).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let id = page
            .text
            .split("/agenda/absences/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let r = app
            .post_form(
                &format!("/agenda/absences/{id}/supprimer{q}"),
                &format!("parcours_session={desk}"),
                &[("csrf", &csrf_field(&page.text))],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        let back = server::services::schedule::free_slots(ctx, martin, clinic, 14)
            .await
            .unwrap();
        assert_eq!(back.len(), slots.len(), "{backend}");
        // The hospital's secretary and the clinic's nurse may not.
        let other = app.login("sec.leroy").await;
        let page = app.get_page("/agenda/horaires", &other).await;
        let r = app
            .post_form(
                &format!("/agenda/horaires{q}"),
                &format!("parcours_session={other}"),
                &[
                    ("csrf", &csrf_field(&page.text)),
                    ("jour", "1"),
                    ("debut", "08:00"),
                    ("fin", "09:00"),
                    ("duree", "20"),
                    ("mode", "teleconsultation"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let nurse = app.login("ide.petit").await;
        assert_eq!(
            app.get_page("/agenda/horaires", &nurse).await.status,
            403,
            "{backend}"
        );
        let n = server::services::schedule::free_slots(ctx, martin, clinic, 14)
            .await
            .unwrap();
        assert_eq!(n.len(), slots.len(), "{backend}: nothing changed");
    }
}

#[tokio::test]
async fn a_one_off_opening_adds_bookable_slots_on_its_date() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let bernard = app.user_id("dr.bernard").await;
        let hospital = app.establishment_id(server::demo::HOSPITAL_FINESS).await;
        let desk = app.login("sec.leroy").await;
        let q = format!("?praticien={bernard}&etablissement={hospital}");
        let page = app.get_page(&format!("/agenda/horaires{q}"), &desk).await;
        assert_eq!(page.status, 200, "{backend}: {}", page.text);
        let csrf = csrf_field(&page.text);
        let cookie = format!("parcours_session={desk}");
        let ctx = app.state.ctx();
        let before = server::services::schedule::free_slots(ctx, bernard, hospital, 14)
            .await
            .unwrap();
        // A date ten days on, 07:00–08:00 (outside any weekly afternoon), in person.
        let day =
            domain::schedule::french_date(app.clock.now_ms() + 10 * 24 * 3600 * 1000).unwrap();
        let add = async |day: &str, start: &str| {
            app.post_form(
                &format!("/agenda/ouvertures{q}"),
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("jour", day),
                    ("debut", start),
                    ("fin", "08:00"),
                    ("duree", "30"),
                    ("mode", "presentiel"),
                ],
            )
            .await
        };
        let r = add(&day.to_string(), "07:00").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(
            r.text.contains("Ouverture exceptionnelle ajoutée"),
            "{backend}"
        );
        let after = server::services::schedule::free_slots(ctx, bernard, hospital, 14)
            .await
            .unwrap();
        assert_eq!(after.len(), before.len() + 2, "{backend}");
        let extra: Vec<_> = after
            .iter()
            .filter(|s| !before.iter().any(|b| b.start_ms == s.start_ms))
            .collect();
        assert!(
            extra
                .iter()
                .all(|s| s.mode == domain::schedule::Mode::InPerson)
        );
        assert!(
            extra
                .iter()
                .all(|s| domain::schedule::french_date(s.start_ms) == Some(day))
        );
        // Bookable by the desk for a patient of the hospital.
        let leroy = app
            .store
            .user_by_username("sec.leroy")
            .await
            .unwrap()
            .unwrap();
        let actor = server::extract::actor_for_user(&app.state, &leroy)
            .await
            .unwrap();
        let faure = app.demo_patient("Faure").await;
        server::services::schedule::book(
            ctx,
            &actor,
            "sec.leroy",
            faure.id,
            bernard,
            hospital,
            extra[0].start_ms,
        )
        .await
        .unwrap();
        // A past date and reversed hours are refused.
        let r = add("2020-01-06", "07:00").await;
        assert_eq!(r.status, 400, "{backend}");
        assert!(r.text.contains("passée"), "{backend}");
        let r = add(&day.to_string(), "09:00").await;
        assert_eq!(r.status, 400, "{backend}");
        // Removed: its free slot goes; the booked appointment stays.
        let page = app.get_page(&format!("/agenda/horaires{q}"), &desk).await;
        let id = page
            .text
            .split("/agenda/ouvertures/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let r = app
            .post_form(
                &format!("/agenda/ouvertures/{id}/supprimer{q}"),
                &cookie,
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        let last = server::services::schedule::free_slots(ctx, bernard, hospital, 14)
            .await
            .unwrap();
        assert_eq!(last.len(), before.len(), "{backend}");
        let booked = app
            .store
            .agenda(bernard, extra[0].start_ms - 1, extra[0].start_ms + 1)
            .await
            .unwrap();
        assert_eq!(booked.len(), 1, "{backend}");
    }
}
