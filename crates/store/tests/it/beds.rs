//! Beds: configuration, ADT-fed occupancy, manual changes under the domain rules.

use domain::audit::AuditActor;
use domain::beds::{BedCategory, BedChange, BedCounts, BedError, OccupancySource};
use domain::encounter::{Location, MovementKind};
use domain::identity::IdentityStatus;
use store::encounters::MovementFeed;
use store::hl7::{IdentityFeed, NewHl7Message};
use store::orgs::Unit;

use crate::support::*;

fn log(control: &str) -> NewHl7Message {
    NewHl7Message {
        received_at_ms: NOW,
        sender: "GAM|X".into(),
        control_id: Some(control.into()),
        message_type: "ADT^A01".into(),
        status: "accepted".into(),
        errors: String::new(),
        ack: "MSA|AA".into(),
        raw: b"MSH".to_vec(),
        replay_of: None,
        establishment: None,
    }
}

#[tokio::test]
async fn occupancy_from_adt_and_manual_changes() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let rea = Unit {
            id: domain::UnitId::new(),
            establishment: w.e1,
            code: "REA".into(),
            name: "Réanimation".into(),
            kind: "icu".into(),
        };
        let ssr = Unit {
            id: domain::UnitId::new(),
            establishment: w.e2,
            code: "SSR".into(),
            name: "SSR".into(),
            kind: "ssr".into(),
        };
        s.create_unit(&rea).await.unwrap();
        s.create_unit(&ssr).await.unwrap();
        s.configure_beds(
            rea.id,
            BedCategory::Reanimation,
            4,
            OccupancySource::Adt,
            NOW,
            "test",
        )
        .await
        .unwrap();
        s.configure_beds(
            ssr.id,
            BedCategory::Ssr,
            10,
            OccupancySource::Manual,
            NOW,
            "test",
        )
        .await
        .unwrap();
        // Two admissions to REA through the ADT feed, one discharged.
        let who = AuditActor::system("test");
        for (i, kind) in [(1, MovementKind::Admission), (2, MovementKind::Admission)] {
            let traits = traits("Lit", "Anne");
            let feed = IdentityFeed::Upsert {
                territory: w.t1.id,
                establishment: w.e1,
                ipp: format!("B{i}"),
                traits,
                ins: None,
                status: IdentityStatus::Provisional,
                dmp: None,
                demographics: Default::default(),
            };
            let mv = MovementFeed {
                establishment: w.e1,
                visit_number: format!("V{i}"),
                kind,
                cancel: false,
                movement_id: None,
                trigger: "A01".into(),
                start_ms: NOW + i,
                location: Location {
                    unit: Some("REA".into()),
                    room: Some("1".into()),
                    bed: Some(i.to_string()),
                },
                class: Some("I".into()),
            };
            s.apply_identity_feed(&feed, Some(&mv), &who, &log(&format!("c{i}")), NOW + i)
                .await
                .unwrap();
        }
        let all = s.beds(w.t1.id, None).await.unwrap();
        assert_eq!(all.len(), 2, "{name}");
        let r = all.iter().find(|b| b.unit_code == "REA").unwrap();
        assert_eq!(
            r.counts,
            BedCounts {
                capacity: 4,
                closed: 0,
                occupied: 2
            },
            "{name}: from the stays"
        );
        assert_eq!(r.last_update_ms, NOW + 2, "{name}: the latest movement");
        assert_eq!(s.beds(w.t1.id, Some(w.e2)).await.unwrap().len(), 1);
        assert!(
            s.beds(w.t2.id, None).await.unwrap().is_empty(),
            "{name}: other territory"
        );
        // Manual changes, checked by the rules, traced.
        assert_eq!(
            s.change_beds(
                rea.id,
                BedChange::Close(2),
                Some("travaux"),
                "lits",
                NOW + 10
            )
            .await
            .refusal::<BedError>(),
            Ok(BedCounts {
                capacity: 4,
                closed: 2,
                occupied: 2
            })
        );
        assert!(
            matches!(
                s.change_beds(rea.id, BedChange::Close(1), None, "lits", NOW)
                    .await
                    .refusal::<BedError>(),
                Err(BedError::OverCapacity { .. })
            ),
            "{name}"
        );
        assert_eq!(
            s.change_beds(rea.id, BedChange::Occupy(1), None, "lits", NOW)
                .await
                .refusal::<BedError>(),
            Err(BedError::FedByAdt)
        );
        let r = s.unit_beds(rea.id).await.unwrap();
        assert_eq!(
            (
                r.counts.available(),
                r.closed_reason.as_deref(),
                r.last_update_ms
            ),
            (0, Some("travaux"), NOW + 10),
            "{name}"
        );
        s.change_beds(rea.id, BedChange::Reopen(2), None, "lits", NOW + 11)
            .await
            .unwrap();
        assert_eq!(
            s.unit_beds(rea.id).await.unwrap().closed_reason,
            None,
            "{name}: no closed bed, no reason"
        );
        assert_eq!(
            s.change_beds(ssr.id, BedChange::Occupy(7), None, "lits", NOW)
                .await
                .unwrap()
                .occupied,
            7
        );
        assert_eq!(
            s.unit_beds(ssr.id).await.unwrap().counts.available(),
            3,
            "{name}"
        );
        assert!(matches!(
            s.change_beds(domain::UnitId::new(), BedChange::Close(1), None, "x", NOW)
                .await,
            Err(store::StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn snapshots_give_the_history_per_category() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let u = Unit {
            id: domain::UnitId::new(),
            establishment: w.e1,
            code: "REA".into(),
            name: "Réa".into(),
            kind: "icu".into(),
        };
        s.create_unit(&u).await.unwrap();
        s.configure_beds(
            u.id,
            BedCategory::Reanimation,
            5,
            OccupancySource::Manual,
            NOW,
            "t",
        )
        .await
        .unwrap();
        assert_eq!(s.snapshot_beds(w.t1.id, NOW).await.unwrap(), 1);
        s.change_beds(u.id, BedChange::Occupy(2), None, "t", NOW + 1)
            .await
            .unwrap();
        s.snapshot_beds(w.t1.id, NOW + 60_000).await.unwrap();
        s.snapshot_beds(w.t1.id, NOW + 60_000).await.unwrap();
        let h = s
            .bed_history(w.t1.id, BedCategory::Reanimation, NOW)
            .await
            .unwrap();
        assert_eq!(h, vec![(NOW, 5, 5), (NOW + 60_000, 3, 5)], "{name}");
        assert!(
            s.bed_history(w.t1.id, BedCategory::Ssr, NOW)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.snapshot_beds(w.t2.id, NOW).await.unwrap(),
            0,
            "{name}: nothing to record"
        );
    }
}
