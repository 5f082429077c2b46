//! The HL7 intake's group commit (`Store::apply_feeds`): a group applies
//! whole with its records created together, or, when one message fails, one
//! savepoint each, so that only that message is refused. On both engines.

use domain::PatientId;
use domain::audit::AuditActor;
use domain::demographics::{Address, AddressUse, DemographicsPatch, Telecom, TelecomKind};
use domain::encounter::{Location, MovementKind};
use domain::identity::IdentityStatus;
use store::encounters::MovementFeed;
use store::hl7::{FeedJob, IdentityFeed, NewHl7Message, is_duplicate_message};
use store::patients::PatientSort;
use store::{Conflict, StoreError};

use crate::support::*;

fn job(w: &World, control: &str, feed: IdentityFeed) -> FeedJob {
    FeedJob {
        feed,
        movement: None,
        who: AuditActor::system("mllp:GAM|X"),
        log: NewHl7Message {
            received_at_ms: NOW,
            sender: "GAM|X".into(),
            control_id: Some(control.into()),
            message_type: "ADT^A28".into(),
            status: "accepted".into(),
            errors: String::new(),
            ack: format!("MSA|AA|{control}"),
            raw: b"MSH".to_vec(),
            replay_of: None,
            establishment: Some(w.e1),
        },
    }
}

fn upsert(w: &World, ipp: &str, name: &str, demographics: DemographicsPatch) -> IdentityFeed {
    IdentityFeed::Upsert {
        territory: w.t1.id,
        establishment: w.e1,
        ipp: ipp.into(),
        traits: traits(name, "Anne"),
        ins: None,
        status: IdentityStatus::Provisional,
        dmp: None,
        demographics: Box::new(demographics),
    }
}

fn home(city: &str) -> DemographicsPatch {
    DemographicsPatch {
        addresses: Some(vec![Address {
            use_: AddressUse::Home,
            lines: vec!["1 rue de la Paix".into()],
            postal_code: Some("75002".into()),
            city: Some(city.into()),
            country: Some("FRA".into()),
        }]),
        telecoms: Some(vec![Telecom {
            kind: TelecomKind::Mobile,
            value: "0600000001".into(),
        }]),
        ..Default::default()
    }
}

/// The audit actions written for `patient`, in chain order.
async fn actions(s: &store::Store, patient: PatientId) -> Vec<String> {
    s.audit_entries(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.patient.as_deref() == Some(patient.to_string().as_str()))
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn a_group_creates_its_new_records_together_and_updates_the_others() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let first = s
            .apply_feeds(
                &[job(&w, "c0", upsert(&w, "OLD", "Avant", home("Lyon")))],
                NOW,
            )
            .await
            .unwrap();
        let old = *first[0].as_ref().unwrap();
        let group = [
            job(&w, "c1", upsert(&w, "N1", "Premier", home("Paris"))),
            job(&w, "c2", upsert(&w, "OLD", "Apres", home("Nice"))),
            job(
                &w,
                "c3",
                upsert(&w, "N2", "Second", DemographicsPatch::default()),
            ),
        ];
        let results = s.apply_feeds(&group, NOW + 1).await.unwrap();
        let ids: Vec<PatientId> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(ids[1], old, "{name}: the known IPP updates its record");
        assert_ne!(ids[0], ids[2], "{name}");
        for (id, ipp, family) in [
            (ids[0], "N1", "PREMIER"),
            (ids[1], "OLD", "APRES"),
            (ids[2], "N2", "SECOND"),
        ] {
            let p = s.patient(id).await.unwrap();
            assert_eq!(
                (p.ipp.as_str(), p.traits.birth_name.to_uppercase()),
                (ipp, family.to_owned()),
                "{name}"
            );
        }
        let d = s.demographics(ids[0]).await.unwrap();
        assert_eq!(d.addresses.len(), 1, "{name}");
        assert_eq!(d.addresses[0].city.as_deref(), Some("Paris"), "{name}");
        assert_eq!(d.telecoms[0].value, "0600000001", "{name}");
        assert!(
            s.demographics(ids[2]).await.unwrap().addresses.is_empty(),
            "{name}"
        );
        assert_eq!(
            s.demographics(old).await.unwrap().addresses[0]
                .city
                .as_deref(),
            Some("Nice"),
            "{name}"
        );
        // Each message logged with its record.
        for (control, id) in [("c1", ids[0]), ("c2", ids[1]), ("c3", ids[2])] {
            let logged = s.hl7_message_for("GAM|X", control).await.unwrap().unwrap();
            assert_eq!(
                logged.patient_id.as_deref(),
                Some(id.to_string().as_str()),
                "{name}"
            );
            assert_eq!(logged.ack, format!("MSA|AA|{control}"), "{name}");
        }
        // A creation audited as such (its demographics with it), an update
        // with the parts that changed; the chain holds.
        assert_eq!(actions(&s, ids[0]).await, ["create"], "{name}");
        assert_eq!(
            actions(&s, old).await,
            ["create", "update", "update-demographics"],
            "{name}"
        );
        let report = s.verify_audit().await.unwrap();
        assert_eq!(report.error, None, "{name}");
    }
}

#[tokio::test]
async fn a_failing_message_is_refused_alone() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let group = [
            job(&w, "f1", upsert(&w, "A1", "Un", home("Paris"))),
            job(
                &w,
                "f2",
                IdentityFeed::ChangeIpp {
                    territory: w.t1.id,
                    old_ipp: "NOBODY".into(),
                    new_ipp: "NEW".into(),
                },
            ),
            job(
                &w,
                "f3",
                upsert(&w, "A3", "Trois", DemographicsPatch::default()),
            ),
        ];
        let results = s.apply_feeds(&group, NOW).await.unwrap();
        assert!(
            matches!(&results[1], Err(StoreError::Conflict(Conflict::UnknownIpp(ipp))) if ipp == "NOBODY"),
            "{name}: {:?}",
            results[1]
        );
        let a1 = *results[0].as_ref().unwrap();
        let a3 = *results[2].as_ref().unwrap();
        assert_eq!(s.patient(a1).await.unwrap().ipp, "A1", "{name}");
        assert_eq!(s.patient(a3).await.unwrap().ipp, "A3", "{name}");
        assert_eq!(
            s.demographics(a1).await.unwrap().addresses.len(),
            1,
            "{name}"
        );
        // The refused message is not logged here (its caller logs it with
        // its AE); the others are, once.
        assert!(
            s.hl7_message_for("GAM|X", "f2").await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            s.hl7_message_for("GAM|X", "f1").await.unwrap().is_some(),
            "{name}"
        );
        assert_eq!(actions(&s, a1).await, ["create"], "{name}");
        assert_eq!(s.verify_audit().await.unwrap().error, None, "{name}");
    }
}

#[tokio::test]
async fn a_control_id_repeated_in_a_group_or_after_it_is_a_duplicate() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let group = [
            job(
                &w,
                "d1",
                upsert(&w, "D1", "Un", DemographicsPatch::default()),
            ),
            job(
                &w,
                "d1",
                upsert(&w, "D2", "Deux", DemographicsPatch::default()),
            ),
        ];
        let results = s.apply_feeds(&group, NOW).await.unwrap();
        assert!(results[0].is_ok(), "{name}");
        assert!(
            results[1].as_ref().is_err_and(is_duplicate_message),
            "{name}: {:?}",
            results[1]
        );
        // The repeated message changed nothing.
        let by_ipp = store::patients::PatientQuery {
            ipp: Some("D2".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(
            s.search_patients(w.t1.id, &by_ipp)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        // Sent again in a later group, beside a new message.
        let later = [
            job(
                &w,
                "d3",
                upsert(&w, "D3", "Trois", DemographicsPatch::default()),
            ),
            job(
                &w,
                "d1",
                upsert(&w, "D1", "Un", DemographicsPatch::default()),
            ),
        ];
        let results = s.apply_feeds(&later, NOW + 1).await.unwrap();
        assert!(results[0].is_ok(), "{name}");
        assert!(
            results[1].as_ref().is_err_and(is_duplicate_message),
            "{name}"
        );
        assert_eq!(s.verify_audit().await.unwrap().error, None, "{name}");
    }
}

#[tokio::test]
async fn an_ipp_named_twice_in_a_group_is_created_then_updated_in_order() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let group = [
            job(&w, "t1", upsert(&w, "TWICE", "Premier", home("Paris"))),
            job(&w, "t2", upsert(&w, "TWICE", "Dernier", home("Brest"))),
        ];
        let results = s.apply_feeds(&group, NOW).await.unwrap();
        let (a, b) = (*results[0].as_ref().unwrap(), *results[1].as_ref().unwrap());
        assert_eq!(a, b, "{name}: one record");
        let p = s.patient(a).await.unwrap();
        assert_eq!(p.traits.birth_name.to_uppercase(), "DERNIER", "{name}");
        assert_eq!(
            s.demographics(a).await.unwrap().addresses[0]
                .city
                .as_deref(),
            Some("Brest"),
            "{name}"
        );
        assert_eq!(
            actions(&s, a).await,
            ["create", "update", "update-demographics"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_group_of_new_records_is_written_whole_or_taken_again_one_by_one() {
    // Only new records, no stay: their rows and the log's go together (one
    // statement on PostgreSQL).
    for (name, s) in backends().await {
        let w = world(&s).await;
        let group = [
            job(&w, "n1", upsert(&w, "N1", "Neuf Un", home("Lyon"))),
            job(
                &w,
                "n2",
                upsert(&w, "N2", "Neuf Deux", DemographicsPatch::default()),
            ),
            job(&w, "n3", upsert(&w, "N3", "Neuf Trois", home("Brest"))),
        ];
        let ids: Vec<PatientId> = s
            .apply_feeds(&group, NOW)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.expect("created"))
            .collect();
        let d = s.demographics(ids[0]).await.unwrap();
        assert_eq!(d.addresses[0].city.as_deref(), Some("Lyon"), "{name}");
        assert_eq!(d.telecoms.len(), 1, "{name}");
        assert!(
            s.demographics(ids[1]).await.unwrap().addresses.is_empty(),
            "{name}"
        );
        assert_eq!(
            s.demographics(ids[2]).await.unwrap().addresses[0]
                .city
                .as_deref(),
            Some("Brest"),
            "{name}"
        );
        // Found by a word of the name (its words written with it), linked to
        // the establishment, its message logged with it.
        let by_name = store::patients::PatientQuery {
            family: Some("neu".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            s.search_patients(w.t1.id, &by_name).await.unwrap().len(),
            3,
            "{name}"
        );
        for id in &ids {
            let (_, links) = s.patient_with_links(*id).await.unwrap();
            assert_eq!(links, vec![w.e1], "{name}");
            assert_eq!(actions(&s, *id).await, ["create"], "{name}");
        }
        let logged = s.hl7_messages(None, 100).await.unwrap();
        for (control, id) in ["n1", "n2", "n3"].iter().zip(&ids) {
            let entry = logged
                .iter()
                .find(|m| m.control_id.as_deref() == Some(*control))
                .unwrap_or_else(|| panic!("{name}: {control} logged"));
            assert_eq!(entry.patient_id, Some(id.to_string()), "{name}");
        }

        // A new record beside a message already logged: the group's one
        // write fails on the log's unique index, the group is taken again
        // one message at a time, and only the repeated one is refused.
        let again = [
            job(&w, "n4", upsert(&w, "N4", "Neuf Quatre", home("Nice"))),
            job(
                &w,
                "n1",
                upsert(&w, "N5", "Neuf Cinq", DemographicsPatch::default()),
            ),
        ];
        let results = s.apply_feeds(&again, NOW + 1).await.unwrap();
        let n4 = *results[0].as_ref().expect("the new one is kept");
        assert!(
            results[1].as_ref().is_err_and(is_duplicate_message),
            "{name}: {:?}",
            results[1]
        );
        assert_eq!(
            s.demographics(n4).await.unwrap().addresses[0]
                .city
                .as_deref(),
            Some("Nice"),
            "{name}"
        );
        let by_ipp = store::patients::PatientQuery {
            ipp: Some("N5".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(
            s.search_patients(w.t1.id, &by_ipp)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(s.verify_audit().await.unwrap().error, None, "{name}");
    }
}

#[tokio::test]
async fn a_group_updates_its_known_records_together() {
    // Known IPPs alone in their group are updated together (their lookup,
    // their updates, their words and demographics one statement each): each
    // as it would be alone.
    for (name, s) in backends().await {
        let w = world(&s).await;
        let first = [
            job(&w, "k1", upsert(&w, "K1", "Avant", home("Lyon"))),
            job(&w, "k2", upsert(&w, "K2", "Garde", home("Lyon"))),
            job(&w, "k3", upsert(&w, "K3", "Meme", home("Lyon"))),
            job(&w, "k4", upsert(&w, "K4", "Fusion", home("Lyon"))),
            job(&w, "k5", upsert(&w, "K5", "Reste", home("Lyon"))),
            job(&w, "k7", upsert(&w, "K7", "Date", home("Lyon"))),
        ];
        let ids: Vec<PatientId> = s
            .apply_feeds(&first, NOW)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.expect("created"))
            .collect();
        let versions: Vec<i64> = {
            let mut v = Vec::new();
            for id in &ids {
                v.push(s.patient(*id).await.unwrap().version);
            }
            v
        };
        let from_e2 = |mut j: FeedJob| {
            if let IdentityFeed::Upsert { establishment, .. } = &mut j.feed {
                *establishment = w.e2;
            }
            j
        };
        let group = [
            // A new name and a new address.
            from_e2(job(&w, "u1", upsert(&w, "K1", "Apres", home("Nice")))),
            // The same name, nothing said of the demographics.
            job(
                &w,
                "u2",
                upsert(&w, "K2", "Garde", DemographicsPatch::default()),
            ),
            // The same name and the same demographics.
            job(&w, "u3", upsert(&w, "K3", "Meme", home("Lyon"))),
            // A new record beside them.
            job(&w, "u4", upsert(&w, "K6", "Nouveau", home("Brest"))),
            // The same name, a new address.
            job(&w, "u5", upsert(&w, "K5", "Reste", home("Brest"))),
            // The same names, another birth date.
            job(&w, "u6", {
                let mut feed = upsert(&w, "K7", "Date", home("Lyon"));
                if let IdentityFeed::Upsert { traits, .. } = &mut feed {
                    traits.birth_date = jiff::civil::date(1958, 4, 13);
                }
                feed
            }),
        ];
        let taken_again = s.intake_groups_taken_again();
        let results: Vec<PatientId> = s
            .apply_feeds(&group, NOW + 1)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.expect("applied"))
            .collect();
        assert_eq!(
            s.intake_groups_taken_again(),
            taken_again,
            "{name}: the group applied whole, not taken again one by one"
        );
        assert_eq!(&results[..3], &ids[..3], "{name}: the known records");
        assert!(!ids.contains(&results[3]), "{name}: a new record");
        // A new identity or new demographics make a new version; both
        // repeated (the same name, birth, sex, status, address), the record
        // keeps its version and time.
        for (i, family, changed) in [
            (0, "APRES", 1),
            (1, "GARDE", 0),
            (2, "MEME", 0),
            (4, "RESTE", 1),
            (5, "DATE", 1),
        ] {
            let p = s.patient(ids[i]).await.unwrap();
            assert_eq!(p.traits.birth_name.to_uppercase(), family, "{name}");
            assert_eq!(p.version, versions[i] + changed, "{name}: {family}");
            assert_eq!(p.updated_at_ms, NOW + changed, "{name}: {family}");
        }
        // The words follow the names: the old one is gone, the new one found.
        let by_family = |family: &str| store::patients::PatientQuery {
            family: Some(family.into()),
            limit: 10,
            ..Default::default()
        };
        assert!(
            s.search_patients(w.t1.id, &by_family("avant"))
                .await
                .unwrap()
                .is_empty(),
            "{name}: the old name's words removed"
        );
        let found = s
            .search_patients(w.t1.id, &by_family("apres"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{name}");
        assert_eq!(found[0].id, ids[0], "{name}");
        assert_eq!(
            s.search_patients(w.t1.id, &by_family("garde"))
                .await
                .unwrap()
                .len(),
            1,
            "{name}: a name kept is still found"
        );
        assert_eq!(
            s.patient(ids[5]).await.unwrap().traits.birth_date,
            jiff::civil::date(1958, 4, 13),
            "{name}"
        );
        // The records whose names did not change keep their words, which
        // carry the new time (a new version with a new address or a new
        // birth date): each order read from the words is the general
        // search's (which reads `patients`).
        for family in ["date", "reste", "garde", "apres", "a", "r", "d"] {
            for sort in [
                PatientSort::Name,
                PatientSort::LastUpdated,
                PatientSort::LastUpdatedDesc,
            ] {
                let from_words = store::patients::PatientQuery {
                    sort,
                    ..by_family(family)
                };
                let general = store::patients::PatientQuery {
                    updated_min_ms: Some(0),
                    ..from_words.clone()
                };
                let page = s.search_patients(w.t1.id, &from_words).await.unwrap();
                assert!(!page.is_empty(), "{name}: {family} found");
                assert_eq!(
                    page,
                    s.search_patients(w.t1.id, &general).await.unwrap(),
                    "{name}: {family} {sort:?}"
                );
            }
        }
        // Demographics: replaced where the patch changed them, else kept.
        let city = |d: domain::demographics::Demographics| {
            d.addresses.first().and_then(|a| a.city.clone())
        };
        assert_eq!(
            city(s.demographics(ids[0]).await.unwrap()).as_deref(),
            Some("Nice"),
            "{name}"
        );
        assert_eq!(
            s.demographics(ids[0]).await.unwrap().addresses.len(),
            1,
            "{name}: the old address replaced, not kept beside"
        );
        for i in [1, 2] {
            assert_eq!(
                city(s.demographics(ids[i]).await.unwrap()).as_deref(),
                Some("Lyon"),
                "{name}"
            );
        }
        // The sender's establishment linked, the first one kept.
        let (_, mut links) = s.patient_with_links(ids[0]).await.unwrap();
        links.sort();
        let mut both = vec![w.e1, w.e2];
        both.sort();
        assert_eq!(links, both, "{name}");
        // Audited as each would be alone: the demographics' entry only where
        // they changed.
        assert_eq!(
            actions(&s, ids[0]).await,
            ["create", "update", "update-demographics"],
            "{name}"
        );
        assert_eq!(actions(&s, ids[1]).await, ["create", "update"], "{name}");
        assert_eq!(actions(&s, ids[2]).await, ["create", "update"], "{name}");
        assert_eq!(actions(&s, results[3]).await, ["create"], "{name}");
        for control in ["u1", "u2", "u3", "u4"] {
            assert!(
                s.hl7_message_for("GAM|X", control).await.unwrap().is_some(),
                "{name}: {control} logged"
            );
        }

        // A message for a merged-away record in a group of updates: refused
        // alone, the others applied.
        let merge = [job(
            &w,
            "m1",
            IdentityFeed::Merge {
                territory: w.t1.id,
                survivor_ipp: "K5".into(),
                merged_ipp: "K4".into(),
            },
        )];
        assert!(s.apply_feeds(&merge, NOW + 2).await.unwrap()[0].is_ok());
        let group = [
            job(&w, "v1", upsert(&w, "K1", "Encore", home("Nice"))),
            job(
                &w,
                "v2",
                upsert(&w, "K4", "Fusion", DemographicsPatch::default()),
            ),
            // Applied alone too: the identity and demographics repeated
            // (the version kept), the identity repeated and the address new
            // (a new version).
            job(&w, "v3", upsert(&w, "K2", "Garde", home("Lyon"))),
            job(&w, "v4", upsert(&w, "K3", "Meme", home("Nice"))),
        ];
        let results = s.apply_feeds(&group, NOW + 3).await.unwrap();
        assert_eq!(
            s.intake_groups_taken_again(),
            taken_again + 1,
            "{name}: taken again one by one"
        );
        assert!(
            matches!(&results[1], Err(StoreError::Conflict(Conflict::MergedIpp(ipp))) if ipp == "K4"),
            "{name}: {:?}",
            results[1]
        );
        assert_eq!(results[0].as_ref().ok(), Some(&ids[0]), "{name}");
        assert_eq!(results[2].as_ref().ok(), Some(&ids[1]), "{name}");
        assert_eq!(results[3].as_ref().ok(), Some(&ids[2]), "{name}");
        let kept = s.patient(ids[1]).await.unwrap();
        assert_eq!(
            (kept.version, kept.updated_at_ms),
            (versions[1], NOW),
            "{name}: applied alone, all repeated: the version kept"
        );
        let moved = s.patient(ids[2]).await.unwrap();
        assert_eq!(
            (moved.version, moved.updated_at_ms),
            (versions[2] + 1, NOW + 3),
            "{name}: applied alone, a new address: a new version"
        );
        assert_eq!(
            city(s.demographics(ids[2]).await.unwrap()).as_deref(),
            Some("Nice"),
            "{name}"
        );
        assert_eq!(
            s.patient(ids[0]).await.unwrap().version,
            versions[0] + 2,
            "{name}: a new name applied alone, a new version"
        );
        assert_eq!(
            s.patient(ids[0])
                .await
                .unwrap()
                .traits
                .birth_name
                .to_uppercase(),
            "ENCORE",
            "{name}"
        );
        assert_eq!(s.verify_audit().await.unwrap().error, None, "{name}");
    }
}

/// A movement of stay `visit` in `unit` (bed `bed`) at `start`.
fn movement(
    w: &World,
    visit: &str,
    kind: MovementKind,
    trigger: &str,
    unit: &str,
    bed: &str,
    start: i64,
) -> MovementFeed {
    MovementFeed {
        establishment: w.e1,
        visit_number: visit.into(),
        kind,
        cancel: false,
        movement_id: None,
        trigger: trigger.into(),
        start_ms: start,
        location: Location {
            unit: Some(unit.into()),
            room: Some("1".into()),
            bed: Some(bed.into()),
        },
        class: Some("I".into()),
    }
}

/// A message of `ipp` carrying `mv`.
fn moving(w: &World, control: &str, ipp: &str, mv: MovementFeed) -> FeedJob {
    FeedJob {
        movement: Some(mv),
        ..job(
            w,
            control,
            upsert(w, ipp, "Sejour", DemographicsPatch::default()),
        )
    }
}

/// A stay as the test reads it: (status, unit, bed, start, end, version).
type Stay = (String, String, String, i64, Option<i64>, i64);

/// The one stay of `patient`.
async fn stay(s: &store::Store, patient: PatientId) -> Stay {
    let list = s.encounters_of(patient).await.unwrap();
    assert_eq!(list.len(), 1, "one stay");
    let e = &list[0];
    (
        e.status.code().to_owned(),
        e.location.unit.clone().unwrap_or_default(),
        e.location.bed.clone().unwrap_or_default(),
        e.started_at_ms.unwrap_or_default(),
        e.ended_at_ms,
        e.version,
    )
}

/// A stay expected.
fn expect(status: &str, unit: &str, bed: &str, start: i64, end: Option<i64>, version: i64) -> Stay {
    (status.into(), unit.into(), bed.into(), start, end, version)
}

#[tokio::test]
async fn a_group_moves_its_stays_together() {
    // The movements of a group's records alone in it are applied together
    // (one lookup of their stays and movements, the stays folded, one update
    // of those moved, the new stays and movements with the group's inserts,
    // the enrolments proposed): each stay as one message alone leaves it.
    for (name, s) in backends().await {
        let w = world(&s).await;
        let unit = |code: &str| store::orgs::Unit {
            id: domain::UnitId::new(),
            establishment: w.e1,
            code: code.into(),
            name: code.into(),
            kind: "mco".into(),
        };
        let (onc, rea) = (unit("ONC"), unit("REA"));
        s.create_unit(&onc).await.unwrap();
        s.create_unit(&rea).await.unwrap();
        s.apply_org_changes(
            &[store::orgs::OrgChange::UnitMonitoring {
                unit: onc.id,
                trigger: Some(("oral-oncology".into(), "A01".into())),
            }],
            NOW,
            "test",
        )
        .await
        .unwrap();
        let a01 = |visit: &str, unit: &str, bed: &str, at: i64| {
            movement(&w, visit, MovementKind::Admission, "A01", unit, bed, at)
        };
        // New records admitted: their stays opened together.
        let first = [
            moving(&w, "a1", "S1", a01("V1", "ONC", "1", NOW)),
            moving(&w, "a2", "S2", a01("V2", "REA", "2", NOW)),
            moving(&w, "a3", "S3", a01("V3", "REA", "3", NOW)),
        ];
        let taken_again = s.intake_groups_taken_again();
        let ids: Vec<PatientId> = s
            .apply_feeds(&first, NOW)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.expect("admitted"))
            .collect();
        assert_eq!(s.intake_groups_taken_again(), taken_again, "{name}");
        assert_eq!(
            stay(&s, ids[0]).await,
            expect("in-progress", "ONC", "1", NOW, None, 1),
            "{name}: opened and computed once, as alone"
        );
        assert_eq!(stay(&s, ids[1]).await.1, "REA", "{name}");
        // The unit configured for A01 proposes an enrolment; the other none.
        let proposals = s.proposals(w.e1).await.unwrap();
        assert_eq!(proposals.len(), 1, "{name}");
        assert_eq!(
            (proposals[0].patient, proposals[0].reason.as_str()),
            (ids[0], "Admission en ONC (A01)"),
            "{name}"
        );

        // Known stays moved, a new one opened, a transfer sent late (its
        // time before the stay's latest movement) and a cancellation (applied
        // alone) in one group.
        let s3_transfer = movement(&w, "V3", MovementKind::Transfer, "A02", "ONC", "9", NOW + 5);
        s.apply_feeds(&[moving(&w, "b0", "S3", s3_transfer)], NOW + 5)
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        let cancel = MovementFeed {
            cancel: true,
            trigger: "A12".into(),
            ..movement(&w, "V3", MovementKind::Transfer, "A12", "REA", "3", NOW + 6)
        };
        let second = [
            moving(
                &w,
                "b1",
                "S1",
                movement(
                    &w,
                    "V1",
                    MovementKind::Transfer,
                    "A02",
                    "REA",
                    "4",
                    NOW + 10,
                ),
            ),
            moving(
                &w,
                "b2",
                "S2",
                movement(
                    &w,
                    "V2",
                    MovementKind::Discharge,
                    "A03",
                    "REA",
                    "2",
                    NOW + 10,
                ),
            ),
            moving(&w, "b3", "S4", a01("V4", "ONC", "5", NOW + 10)),
            moving(&w, "b4", "S3", cancel),
        ];
        let results: Vec<PatientId> = s
            .apply_feeds(&second, NOW + 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.expect("moved"))
            .collect();
        assert_eq!(s.intake_groups_taken_again(), taken_again, "{name}");
        assert_eq!(&results[..2], &ids[..2], "{name}");
        assert_eq!(results[3], ids[2], "{name}");
        assert_eq!(
            stay(&s, ids[0]).await,
            expect("in-progress", "REA", "4", NOW, None, 2),
            "{name}: transferred"
        );
        assert_eq!(
            stay(&s, ids[1]).await,
            expect("finished", "REA", "2", NOW, Some(NOW + 10), 2),
            "{name}: discharged"
        );
        assert_eq!(
            stay(&s, ids[2]).await,
            expect("in-progress", "REA", "3", NOW, None, 3),
            "{name}: the transfer cancelled, back where admitted"
        );
        assert_eq!(
            stay(&s, results[2]).await,
            expect("in-progress", "ONC", "5", NOW + 10, None, 1),
            "{name}"
        );
        assert_eq!(s.proposals(w.e1).await.unwrap().len(), 2, "{name}");
        // A movement dated before the stay's latest one is folded in time
        // order, not arrival order: the stay stays where the later one put it.
        let late = [moving(
            &w,
            "c1",
            "S1",
            movement(&w, "V1", MovementKind::Transfer, "A02", "ONC", "7", NOW + 3),
        )];
        s.apply_feeds(&late, NOW + 20).await.unwrap()[0]
            .as_ref()
            .unwrap();
        assert_eq!(
            stay(&s, ids[0]).await,
            expect("in-progress", "REA", "4", NOW, None, 3),
            "{name}: folded in time order"
        );
        // Movements at one time keep their arrival order: two transfers at
        // one time, then a leave (no place) folded after them.
        let s4 = results[2];
        for (control, bed, kind, trigger) in [
            ("t1", "6", MovementKind::Transfer, "A02"),
            ("t2", "7", MovementKind::Transfer, "A02"),
            ("t3", "7", MovementKind::Leave, "A21"),
        ] {
            let mut mv = movement(&w, "V4", kind, trigger, "ONC", bed, NOW + 40);
            if kind == MovementKind::Leave {
                mv.location = Location::default();
            }
            s.apply_feeds(&[moving(&w, control, "S4", mv)], NOW + 40)
                .await
                .unwrap()[0]
                .as_ref()
                .unwrap();
        }
        assert_eq!(
            stay(&s, s4).await,
            expect("onleave", "ONC", "7", NOW + 10, None, 4),
            "{name}: ties in arrival order"
        );
        // Each movement audited on its stay, after the record's entry.
        let entries = s.audit_entries(0, 10_000).await.unwrap();
        let of = |p: PatientId| {
            entries
                .iter()
                .filter(|e| e.patient.as_deref() == Some(p.to_string().as_str()))
                .map(|e| (e.action.as_str(), e.resource.starts_with("Encounter/")))
                .collect::<Vec<_>>()
        };
        let encounter = s.encounters_of(ids[0]).await.unwrap()[0].id;
        assert_eq!(
            of(ids[0]),
            [
                ("create", false),
                ("write-clinical", true),
                ("update", false),
                ("write-clinical", true),
                ("update", false),
                ("write-clinical", true)
            ],
            "{name}"
        );
        assert!(
            entries
                .iter()
                .any(|e| e.resource == format!("Encounter/{encounter}")),
            "{name}: the entry names the stay"
        );

        // A visit number of another patient's stay in a group: that message
        // refused alone (the group taken again), the other applied.
        let group = [
            moving(
                &w,
                "d1",
                "S2",
                movement(
                    &w,
                    "V1",
                    MovementKind::Transfer,
                    "A02",
                    "ONC",
                    "8",
                    NOW + 30,
                ),
            ),
            moving(&w, "d2", "S5", a01("V5", "REA", "6", NOW + 30)),
        ];
        let results = s.apply_feeds(&group, NOW + 30).await.unwrap();
        assert_eq!(
            s.intake_groups_taken_again(),
            taken_again + 1,
            "{name}: taken again one by one"
        );
        assert!(
            matches!(&results[0], Err(StoreError::Conflict(Conflict::VisitOfAnotherPatient(v))) if v == "V1"),
            "{name}: {:?}",
            results[0]
        );
        let s5 = *results[1].as_ref().unwrap();
        assert_eq!(stay(&s, s5).await.1, "REA", "{name}");
        assert_eq!(
            stay(&s, ids[0]).await.2,
            "4",
            "{name}: the other patient's stay untouched"
        );
        assert_eq!(s.verify_audit().await.unwrap().error, None, "{name}");
    }
}
