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
