//! The care team's settings: a muted item's alerts are recorded as muted and
//! never queued nor counted against the SLA; a muting is lifted or ends by
//! itself, traced; team hours and the on-call rota round-trip per
//! establishment.

use domain::calendar::{TeamHours, Window};
use domain::monitoring::{AlertLevel, AlertStatus};
use domain::org::Role;
use store::care_team::NewMute;
use store::monitoring::{NewAlert, ResponseWrite};
use store::users::{NewUser, UserKind};

use crate::support::*;

const DAY: i64 = 24 * 3600 * 1000;

#[tokio::test]
async fn a_muted_item_records_its_alerts_without_queueing_them() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Sourdine", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let n = store::monitoring::NewEnrolment {
            patient: p.id,
            establishment: w.e1,
            programme: "oral-oncology".into(),
            consent_at_ms: NOW,
            created_by: "ide".into(),
        };
        s.enrol(&n, &who(), NOW).await.unwrap();
        let e = s.enrolments_of(p.id).await.unwrap().remove(0);
        let new = NewMute {
            enrolment: e.id,
            patient: p.id,
            item: "neuropathy",
            max_grade: Some(2),
            max_level: AlertLevel::Warning,
            reason: "neuropathie de grade 2 connue",
            until_ms: NOW + 14 * DAY,
            created_by: "IDE Petit",
        };
        let mute = s.add_mute(&new, &who(), NOW).await.unwrap();
        assert!(
            matches!(
                s.add_mute(&new, &who(), NOW + 1).await,
                Err(store::StoreError::Refused(_))
            ),
            "{name}: one running muting per item"
        );
        let other = NewMute {
            item: "diarrhoea",
            ..new.clone()
        };
        let other = s.add_mute(&other, &who(), NOW).await.unwrap();
        let alert = |mute: Option<String>| NewAlert {
            level: AlertLevel::Warning,
            item: "neuropathy".into(),
            reason: "grade 2 (seuil 2)".into(),
            advice: String::new(),
            mute,
        };
        let author = who();
        let write = |alerts| ResponseWrite {
            enrolment: &e,
            answers_json: "{}",
            measures: &[],
            alerts,
            due_at_ms: NOW + DAY,
            report: None,
            measured: None,
            who: &author,
        };
        let (silenced, heard) = ([alert(Some(mute.clone()))], [alert(None)]);
        let (_, muted) = s
            .submit_response(&write(&silenced), NOW + 10)
            .await
            .unwrap();
        let (_, open) = s.submit_response(&write(&heard), NOW + 20).await.unwrap();
        let a = s.alert(muted[0]).await.unwrap();
        assert_eq!(a.status, AlertStatus::Muted, "{name}");
        let steps: Vec<(String, String)> = s
            .alert_events(muted[0])
            .await
            .unwrap()
            .into_iter()
            .map(|(_, _, action, note)| (action, note))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("raised".into(), "grade 2 (seuil 2)".into()),
                ("muted".into(), "neuropathie de grade 2 connue".into())
            ],
            "{name}: the timeline says why"
        );
        let queue: Vec<_> = s
            .alert_queue(w.e1)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(
            queue,
            vec![open[0]],
            "{name}: the muted alert is not queued"
        );
        assert_eq!(
            s.alert_facts(w.e1, NOW).await.unwrap().len(),
            1,
            "{name}: nor counted against the SLA"
        );
        assert_eq!(
            s.alerts_of(p.id).await.unwrap().len(),
            2,
            "{name}: but on record"
        );
        assert!(
            s.escalate_overdue(NOW + 2 * DAY).await.unwrap() == vec![open[0]],
            "{name}: a muted alert never escalates"
        );

        // Lifted by hand: once.
        assert!(
            s.lift_mute(&other, "Dr Martin", "diarrhée résolue", &who(), NOW + DAY)
                .await
                .unwrap()
        );
        assert!(
            !s.lift_mute(&other, "Dr Martin", "encore", &who(), NOW + DAY)
                .await
                .unwrap(),
            "{name}: already lifted"
        );
        // Ends by itself: recorded once, by the system, at its end.
        assert!(
            s.end_expired_mutes(NOW + 14 * DAY - 1)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.end_expired_mutes(NOW + 15 * DAY).await.unwrap(),
            vec![mute.clone()],
            "{name}"
        );
        assert!(
            s.end_expired_mutes(NOW + 16 * DAY)
                .await
                .unwrap()
                .is_empty()
        );
        let list = s.mutes_of(e.id).await.unwrap();
        assert_eq!(list.len(), 2, "{name}");
        let ended = list.iter().find(|m| m.mute.id == mute).unwrap();
        assert_eq!(
            (
                ended.mute.ended_at_ms,
                ended.ended_by.as_deref(),
                ended.mute.max_grade
            ),
            (Some(NOW + 14 * DAY), Some("système"), Some(2)),
            "{name}"
        );
        let lifted = list.iter().find(|m| m.mute.id == other).unwrap();
        assert_eq!(
            (lifted.ended_by.as_deref(), lifted.end_note.as_deref()),
            (Some("Dr Martin"), Some("diarrhée résolue")),
            "{name}"
        );
        // Once ended, the item may be muted again.
        s.add_mute(&new, &who(), NOW + 15 * DAY).await.unwrap();
        // Every step is in the audit trail, with the patient.
        let trail = s.audit_entries(0, 10_000).await.unwrap();
        let actions: Vec<(&str, &str)> = trail
            .iter()
            .filter(|a| a.patient.as_deref() == Some(p.id.to_string().as_str()))
            .filter(|a| a.action.contains("mute"))
            .map(|a| (a.action.as_str(), a.actor_kind.as_str()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("mute-alerts", "user"),
                ("mute-alerts", "user"),
                ("unmute-alerts", "user"),
                ("unmute-alerts", "system"),
                ("mute-alerts", "user"),
            ],
            "{name}"
        );
        assert_eq!(
            trail.iter().filter(|a| a.actor_id == "sourdine").count(),
            1,
            "{name}: the end by itself is the system's"
        );
    }
}

#[tokio::test]
async fn team_hours_and_the_on_call_rota_belong_to_their_establishment() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        assert_eq!(
            s.team_hours(w.e1).await.unwrap(),
            TeamHours::default(),
            "{name}"
        );
        let hours = TeamHours {
            windows: vec![
                Window {
                    weekday: 1,
                    start_min: 510,
                    end_min: 1080,
                },
                Window {
                    weekday: 6,
                    start_min: 540,
                    end_min: 720,
                },
            ],
            alsace_moselle: true,
        };
        s.set_team_hours(w.e1, &hours, &who(), NOW).await.unwrap();
        assert_eq!(s.team_hours(w.e1).await.unwrap(), hours, "{name}");
        assert_eq!(
            s.team_hours(w.e2).await.unwrap(),
            TeamHours::default(),
            "{name}"
        );
        let fewer = TeamHours {
            windows: hours.windows[..1].to_vec(),
            alsace_moselle: false,
        };
        s.set_team_hours(w.e1, &fewer, &who(), NOW).await.unwrap();
        assert_eq!(s.team_hours(w.e1).await.unwrap(), fewer, "{name}: replaced");

        let doctor = s
            .create_user(
                &NewUser {
                    username: format!("dr.astreinte.{}", rand_suffix()),
                    display_name: "Dr Astreinte".into(),
                    kind: UserKind::Professional,
                    password_hash: "$argon2id$fake".into(),
                    totp_secret: None,
                    rpps: Some("10000012345".into()),
                    profession: Some("Médecin".into()),
                    patient: None,
                    roles: vec![(w.e1, Role::Doctor)],
                },
                NOW,
            )
            .await
            .unwrap();
        let past = s
            .add_on_call(
                w.e1,
                doctor,
                (NOW - 2 * DAY, NOW - DAY),
                &who(),
                "admin",
                NOW,
            )
            .await
            .unwrap();
        let week = s
            .add_on_call(w.e1, doctor, (NOW, NOW + 7 * DAY), &who(), "admin", NOW)
            .await
            .unwrap();
        let rota = s.on_call_rota(w.e1, NOW).await.unwrap();
        assert_eq!(
            rota.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            vec![week.as_str()],
            "{name}: periods over are not listed"
        );
        assert_eq!(rota[0].doctor, doctor, "{name}");
        assert!(
            s.on_call_rota(w.e2, NOW).await.unwrap().is_empty(),
            "{name}"
        );
        assert!(
            !s.remove_on_call(w.e2, &week, &who(), NOW).await.unwrap(),
            "{name}: another establishment's period"
        );
        assert!(s.remove_on_call(w.e1, &week, &who(), NOW).await.unwrap());
        assert!(
            s.on_call_rota(w.e1, NOW).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            s.on_call_rota(w.e1, NOW - 3 * DAY).await.unwrap()[0].id,
            past,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_month_s_billing_facts_per_follow_up() {
    use domain::monitoring::TriageAction;
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, "Facture", "Anne"), &who(), NOW)
            .await
            .unwrap();
        let n = store::monitoring::NewEnrolment {
            patient: p.id,
            establishment: w.e1,
            programme: "oral-oncology".into(),
            consent_at_ms: NOW,
            created_by: "ide".into(),
        };
        let id = s.enrol(&n, &who(), NOW).await.unwrap();
        let e = s.enrolment(id).await.unwrap();
        let author = who();
        let alert = |item: &str, mute: Option<String>| NewAlert {
            level: AlertLevel::Warning,
            item: item.into(),
            reason: "grade 2".into(),
            advice: String::new(),
            mute,
        };
        let mute = s
            .add_mute(
                &NewMute {
                    enrolment: e.id,
                    patient: p.id,
                    item: "rash",
                    max_grade: Some(2),
                    max_level: AlertLevel::Warning,
                    reason: "connu",
                    until_ms: NOW + 30 * DAY,
                    created_by: "IDE",
                },
                &who(),
                NOW,
            )
            .await
            .unwrap();
        let submit = |at: i64, alerts: Vec<NewAlert>| {
            let (s, e, author) = (&s, &e, &author);
            async move {
                let w = ResponseWrite {
                    enrolment: e,
                    answers_json: "[]",
                    measures: &[],
                    alerts: &alerts,
                    due_at_ms: at + DAY,
                    report: None,
                    measured: None,
                    who: author,
                };
                s.submit_response(&w, at).await.unwrap().1
            }
        };
        submit(NOW + DAY, vec![alert("fatigue", None)]).await;
        let handled = submit(NOW + 2 * DAY, vec![alert("nausea", None)]).await;
        submit(NOW + 3 * DAY, vec![alert("rash", Some(mute))]).await;
        submit(NOW + 40 * DAY, vec![]).await; // after the period
        s.triage_alert(
            handled[0],
            &TriageAction::Take,
            None,
            &who(),
            "ide",
            None,
            NOW + 2 * DAY + 1,
        )
        .await
        .unwrap();
        let facts = s
            .billing_facts(w.e1, "oral-oncology", NOW, NOW + 30 * DAY)
            .await
            .unwrap();
        assert_eq!(facts.len(), 1, "{name}");
        let f = &facts[0];
        assert_eq!(
            (f.enrolment, f.patient, f.started_at_ms, f.ended_at_ms),
            (e.id, p.id, NOW, None),
            "{name}"
        );
        assert_eq!(
            f.transmissions,
            vec![NOW + DAY, NOW + 2 * DAY, NOW + 3 * DAY],
            "{name}"
        );
        assert_eq!(
            (f.alerts, f.unhandled),
            (2, 1),
            "{name}: the muted one aside"
        );
        // Another programme, another establishment, a period before: nothing.
        assert!(
            s.billing_facts(w.e1, "infectious-home", NOW, NOW + DAY)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.billing_facts(w.e2, "oral-oncology", NOW, NOW + DAY)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.billing_facts(w.e1, "oral-oncology", 0, NOW)
                .await
                .unwrap()
                .is_empty()
        );
        // Ended before the period: not billed then.
        s.end_enrolment(e.id, "fin", None, &who(), NOW + 35 * DAY)
            .await
            .unwrap();
        let later = s
            .billing_facts(w.e1, "oral-oncology", NOW + 36 * DAY, NOW + 60 * DAY)
            .await
            .unwrap();
        assert!(later.is_empty(), "{name}");
        let ended = s
            .billing_facts(w.e1, "oral-oncology", NOW + 30 * DAY, NOW + 60 * DAY)
            .await
            .unwrap();
        assert_eq!(ended[0].ended_at_ms, Some(NOW + 35 * DAY), "{name}");
        assert_eq!(ended[0].transmissions, vec![NOW + 40 * DAY], "{name}");
    }
}
