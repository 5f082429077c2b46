//! Patient identities: IPP per domain, INS uniqueness, search, versions, merge.

use domain::identity::IdentityStatus;
use domain::ins::{Ins, InsKind};
use store::StoreError;
use store::audit::AuditFilter;
use store::patients::{PatientQuery, PatientSort};

use crate::support::*;

fn q() -> PatientQuery {
    PatientQuery {
        limit: 50,
        ..Default::default()
    }
}

#[tokio::test]
async fn ipp_is_assigned_per_domain_and_unique() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let a = s
            .create_patient(&new_patient(w.t1.id, "Martin", "Marie"), &who(), NOW)
            .await
            .unwrap();
        let b = s
            .create_patient(&new_patient(w.t1.id, "Durand", "Paul"), &who(), NOW)
            .await
            .unwrap();
        let c = s
            .create_patient(&new_patient(w.t2.id, "Petit", "Anne"), &who(), NOW)
            .await
            .unwrap();
        assert_eq!(
            (a.ipp.as_str(), b.ipp.as_str(), c.ipp.as_str()),
            ("000000001", "000000002", "000000001"),
            "{name}"
        );
        assert_eq!(a.version, 1);
        assert_eq!(a.status, IdentityStatus::Provisional);
        // An IPP given by a feed is kept; the counter skips it when it comes up.
        let mut given = new_patient(w.t1.id, "Leroy", "Jean");
        given.ipp = Some("000000003".into());
        s.create_patient(&given, &who(), NOW).await.unwrap();
        let d = s
            .create_patient(&new_patient(w.t1.id, "Moreau", "Luc"), &who(), NOW)
            .await
            .unwrap();
        assert_eq!(d.ipp, "000000004", "{name}");
        assert!(
            matches!(
                s.create_patient(&given, &who(), NOW).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}: IPP unique"
        );
        assert_eq!(s.count_patients(w.t1.id).await.unwrap(), 4);
    }
}

#[tokio::test]
async fn one_active_record_per_ins_in_a_domain() {
    let ins = Ins::parse(InsKind::Nir, "279035121518989").unwrap();
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut p = new_patient(w.t1.id, "Martin", "Marie");
        p.ins = Some(ins.clone());
        p.status = IdentityStatus::Recovered;
        p.establishment = Some(w.e1);
        let a = s.create_patient(&p, &who(), NOW).await.unwrap();
        assert_eq!(a.ins, Some(ins.clone()));
        assert_eq!(s.patient_establishments(a.id).await.unwrap(), vec![w.e1]);
        assert!(
            matches!(
                s.create_patient(&p, &who(), NOW).await,
                Err(StoreError::Conflict(_))
            ),
            "{name}: same INS twice"
        );
        let other_domain = store::patients::NewPatient {
            territory: w.t2.id,
            establishment: Some(w.e3),
            ..p.clone()
        };
        s.create_patient(&other_domain, &who(), NOW)
            .await
            .expect("another domain may hold the same person");
        let found = s
            .search_patients(
                w.t1.id,
                &PatientQuery {
                    ins: Some(ins.value()),
                    ..q()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![a.id],
            "{name}"
        );
    }
}

#[tokio::test]
async fn search_by_names_date_and_identifiers() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut p = new_patient(w.t1.id, "Hélène-Dupré", "Marie Louise");
        p.traits.used_name = Some("Lefèvre".into());
        let a = s.create_patient(&p, &who(), NOW).await.unwrap();
        let mut other = new_patient(w.t1.id, "Dubois", "Louis");
        other.traits.birth_date = jiff::civil::date(1970, 1, 2);
        let b = s.create_patient(&other, &who(), NOW).await.unwrap();
        s.create_patient(&new_patient(w.t2.id, "Helene", "Marie"), &who(), NOW)
            .await
            .unwrap();
        let ids = |v: Vec<domain::identity::PatientRecord>| {
            v.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        let family = |f: &str| PatientQuery {
            family: Some(f.into()),
            ..q()
        };
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("helene")).await.unwrap()),
            vec![a.id],
            "{name}: accents ignored"
        );
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("DUPR")).await.unwrap()),
            vec![a.id],
            "{name}: second word"
        );
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("lefe")).await.unwrap()),
            vec![a.id],
            "{name}: used name"
        );
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("elene")).await.unwrap()),
            vec![],
            "{name}: prefix only"
        );
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("d")).await.unwrap()).len(),
            2,
            "{name}"
        );
        assert_eq!(
            ids(s.search_patients(w.t1.id, &family("100%")).await.unwrap()),
            vec![],
            "{name}: wildcards are inert"
        );
        let given = PatientQuery {
            given: Some("louis".into()),
            ..q()
        };
        let mut both = ids(s.search_patients(w.t1.id, &given).await.unwrap());
        both.sort();
        assert_eq!(
            both,
            {
                let mut v = vec![a.id, b.id];
                v.sort();
                v
            },
            "{name}: Louise and Louis start with Louis"
        );
        let by_date = PatientQuery {
            birth_date: Some(jiff::civil::date(1970, 1, 2)),
            ..q()
        };
        assert_eq!(
            ids(s.search_patients(w.t1.id, &by_date).await.unwrap()),
            vec![b.id]
        );
        let by_ipp = PatientQuery {
            ipp: Some(b.ipp.clone()),
            ..q()
        };
        assert_eq!(
            ids(s.search_patients(w.t1.id, &by_ipp).await.unwrap()),
            vec![b.id]
        );
        let page = PatientQuery {
            limit: 1,
            offset: 1,
            ..q()
        };
        assert_eq!(s.search_patients(w.t1.id, &page).await.unwrap().len(), 1);
    }
}

/// The SQL of this engine's migration `name` from the line `marker` on (the
/// part that fills rows already there, to run again in a test).
fn migration_from(s: &store::Store, name: &str, marker: &str) -> &'static str {
    let sql = match s.engine() {
        store::Engine::Sqlite => store::migrate::SQLITE,
        store::Engine::Postgres => store::migrate::POSTGRES,
    }
    .iter()
    .find(|m| m.name == name)
    .unwrap_or_else(|| panic!("no migration {name}"))
    .sql;
    &sql[sql
        .find(marker)
        .unwrap_or_else(|| panic!("{name}: no line {marker}"))..]
}

/// Runs again the part of this engine's migration `name` that fills the rows
/// already there (from its line "-- The rows already there").
async fn fill_again(s: &store::Store, name: &str) {
    store::testing::raw_sql(s, migration_from(s, name, "-- The rows already there"))
        .await
        .unwrap();
}

/// Name searches read the words index (`patient_words`): it follows a change
/// of name, a criterion of several words, a prefix ending in the last letter,
/// and the migration fills it for the records already there.
#[tokio::test]
async fn name_search_follows_the_words_index() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let ids = |v: Vec<domain::identity::PatientRecord>| {
            let mut v: Vec<_> = v.into_iter().map(|r| r.id).collect();
            v.sort();
            v
        };
        let family = |f: &str| PatientQuery {
            family: Some(f.into()),
            ..q()
        };
        let a = s
            .create_patient(&new_patient(w.t1.id, "Hélène-Dupré", "Marie"), &who(), NOW)
            .await
            .unwrap();
        let b = s
            .create_patient(&new_patient(w.t1.id, "Lenz", "Zoé"), &who(), NOW)
            .await
            .unwrap();
        s.create_patient(&new_patient(w.t1.id, "Lenoir", "Paul"), &who(), NOW)
            .await
            .unwrap();
        let found = |f: &'static str| {
            let s = s.clone();
            async move { ids(s.search_patients(w.t1.id, &family(f)).await.unwrap()) }
        };
        assert_eq!(
            found("helene dup").await,
            vec![a.id],
            "{name}: two words in a row"
        );
        assert_eq!(
            found("dupre helene").await,
            vec![],
            "{name}: words in another order"
        );
        assert_eq!(
            found("lenz").await,
            vec![b.id],
            "{name}: a whole word ending in Z"
        );
        assert_eq!(found("lenzz").await, vec![], "{name}");
        assert_eq!(found("len").await.len(), 2, "{name}");
        let zoe = PatientQuery {
            given: Some("zo".into()),
            family: Some("le".into()),
            ..q()
        };
        assert_eq!(
            ids(s.search_patients(w.t1.id, &zoe).await.unwrap()),
            vec![b.id],
            "{name}"
        );

        // A new name is found by its first letters, the old one no longer.
        let mut renamed = a.clone();
        renamed.traits.used_name = Some("Morel".into());
        renamed.traits.birth_name = "Hélène".into();
        s.update_patient(&renamed, &Default::default(), &who(), NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            found("mor").await,
            vec![a.id],
            "{name}: used name after the change"
        );
        assert_eq!(found("dupre").await, vec![], "{name}: the old word is gone");
        assert_eq!(found("helene").await, vec![a.id], "{name}");
        // A refused change (stale version) leaves the words as they were.
        let mut stale = a.clone();
        stale.traits.birth_name = "Garnier".into();
        assert!(
            s.update_patient(&stale, &Default::default(), &who(), NOW + 2)
                .await
                .is_err()
        );
        assert_eq!(found("garn").await, vec![], "{name}");
        assert_eq!(found("mor").await, vec![a.id], "{name}");

        // The migration's backfill writes the same rows the store writes.
        let backfill = migration_from(&s, "patient_words", "-- The records already there");
        let removed = store::testing::raw_sql(&s, "DELETE FROM patient_words")
            .await
            .unwrap();
        assert_eq!(found("len").await, vec![], "{name}: no words, no match");
        let written = store::testing::raw_sql(&s, backfill).await.unwrap();
        assert_eq!(written, removed, "{name}: one row per word and record");
        // The later migrations fill their columns of those rows, in order.
        for later in [
            "patient_words_order",
            "patient_words_updated",
            "patient_words_names",
            "patient_words_shared",
        ] {
            fill_again(&s, later).await;
        }
        assert_eq!(found("mor").await, vec![a.id], "{name}");
        assert_eq!(found("len").await.len(), 2, "{name}");
        assert_eq!(
            ids(s.search_patients(w.t1.id, &zoe).await.unwrap()),
            vec![b.id],
            "{name}"
        );
    }
}

/// A search whose one criterion is a name of one word is paged from the words
/// range (each word row carries its record's sort key): its pages and count
/// are those of the general search, in name order, each record once.
#[tokio::test]
async fn a_lone_word_is_paged_from_the_words_in_name_order() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut made = Vec::new();
        for (family, given, used) in [
            ("Martin", "Paul", None),
            ("Martin", "Anne", None),
            ("Marchand", "Zoé", None),
            // Two given names in the range of MA and of MAR: the record once.
            ("Lenoir", "Marie Marthe", None),
            ("Dupont", "Jean", Some("Marais")),
            ("Martin", "Anne", Some("Martel")),
            ("Mas", "Luc", None),
            ("Bernard", "Marc", None),
            ("Mar", "Eve", None),
        ] {
            let mut p = new_patient(w.t1.id, family, given);
            p.traits.used_name = used.map(str::to_owned);
            made.push(s.create_patient(&p, &who(), NOW).await.unwrap());
        }
        // The same name in the other domain is not found.
        s.create_patient(&new_patient(w.t2.id, "Martin", "Paul"), &who(), NOW)
            .await
            .unwrap();
        let names = |v: Vec<domain::identity::PatientRecord>| -> Vec<String> {
            v.into_iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r.traits.birth_name,
                        r.traits.birth_given_names.join(" ")
                    )
                })
                .collect()
        };
        let lone =
            |family: Option<&str>, given: Option<&str>, offset: i64, limit: i64| PatientQuery {
                family: family.map(str::to_owned),
                given: given.map(str::to_owned),
                offset,
                limit,
                ..q()
            };
        // In name order (birth name, given names, then id), "Martin Anne" and
        // "Martin Anne" (with a used name in the range too) once each.
        let all = s
            .search_patients(w.t1.id, &lone(Some("mar"), None, 0, 50))
            .await
            .unwrap();
        assert_eq!(
            names(all.clone()),
            [
                "Dupont Jean",
                "Mar Eve",
                "Marchand Zoé",
                "Martin Anne",
                "Martin Anne",
                "Martin Paul"
            ],
            "{name}"
        );
        let twins = [made[1].id, made[5].id];
        assert_eq!(
            [all[3].id, all[4].id],
            [twins[0].min(twins[1]), twins[0].max(twins[1])],
            "{name}: ties by id"
        );
        assert_eq!(
            s.count_search_patients(w.t1.id, &lone(Some("mar"), None, 0, 50))
                .await
                .unwrap(),
            6,
            "{name}"
        );
        assert_eq!(
            names(
                s.search_patients(w.t1.id, &lone(None, Some("MAR"), 0, 50))
                    .await
                    .unwrap()
            ),
            ["Bernard Marc", "Lenoir Marie Marthe"],
            "{name}: given names"
        );
        assert_eq!(
            s.count_search_patients(w.t1.id, &lone(None, Some("marc"), 0, 50))
                .await
                .unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            s.count_search_patients(w.t1.id, &lone(Some("xyz"), None, 0, 50))
                .await
                .unwrap(),
            0,
            "{name}"
        );

        // Every page and count is the general search's (a criterion that
        // keeps every record sends the same search through it).
        let general = |mut q: PatientQuery| {
            q.updated_min_ms = Some(0);
            q
        };
        for (family, given) in [
            (Some("mar"), None),
            (Some("m"), None),
            (Some("MARTI"), None),
            // Martel and Martin, one record's, share four letters: both are
            // in the range of MART (the record once), one in that of MARTE.
            (Some("mart"), None),
            (Some("marte"), None),
            (None, Some("ma")),
            (Some("lenoir"), None),
            // A one-word name and the other kind of name: the first's range,
            // the second matched on the word rows.
            (Some("mar"), Some("an")),
            (Some("mar"), Some("zz")),
            (Some("dupont marais"), Some("jean")),
            (Some("dupont marais"), Some("jean paul")),
        ] {
            let whole = lone(family, given, 0, 50);
            assert_eq!(
                s.count_search_patients(w.t1.id, &whole).await.unwrap(),
                s.count_search_patients(w.t1.id, &general(whole.clone()))
                    .await
                    .unwrap(),
                "{name}: {family:?} {given:?}"
            );
            for (offset, limit) in [(0, 2), (2, 2), (4, 2), (1, 3), (5, 50), (40, 5)] {
                let page = lone(family, given, offset, limit);
                assert_eq!(
                    s.search_patients(w.t1.id, &page).await.unwrap(),
                    s.search_patients(w.t1.id, &general(page.clone()))
                        .await
                        .unwrap(),
                    "{name}: {family:?} {given:?} at {offset}, {limit}"
                );
            }
        }

        // A renamed record moves to its new place: the words carry the new key.
        let mut renamed = made[0].clone();
        renamed.traits.birth_name = "Marbot".into();
        s.update_patient(&renamed, &Default::default(), &who(), NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            names(
                s.search_patients(w.t1.id, &lone(Some("mar"), None, 0, 3))
                    .await
                    .unwrap()
            ),
            ["Dupont Jean", "Mar Eve", "Marbot Paul"],
            "{name}"
        );

        // Each order is read from the words too, and follows every change of
        // a record: a rename (above, NOW + 1, words written again), a merge
        // (NOW + 2: both records changed by a statement that does not touch
        // the words; the trigger carries the change) and an edit (NOW + 3).
        s.merge_patients(made[8].id, made[4].id, &who(), NOW + 2)
            .await
            .unwrap();
        let mut edited = s.patient(made[2].id).await.unwrap();
        edited.traits.used_name = Some("Martinez".into());
        s.update_patient(&edited, &Default::default(), &who(), NOW + 3)
            .await
            .unwrap();
        let latest = |sort| PatientQuery {
            sort,
            ..lone(Some("mar"), None, 0, 4)
        };
        let first = names(
            s.search_patients(w.t1.id, &latest(PatientSort::LastUpdatedDesc))
                .await
                .unwrap(),
        );
        assert_eq!(
            first.first().map(String::as_str),
            Some("Marchand Zoé"),
            "{name}"
        );
        assert_eq!(
            first.get(3).map(String::as_str),
            Some("Marbot Paul"),
            "{name}"
        );
        let mut merged_pair = first[1..3].to_vec();
        merged_pair.sort();
        assert_eq!(
            merged_pair,
            ["Dupont Jean", "Mar Eve"],
            "{name}: merged at NOW + 2"
        );
        for sort in [
            PatientSort::Name,
            PatientSort::LastUpdated,
            PatientSort::LastUpdatedDesc,
            PatientSort::Id,
            PatientSort::IdDesc,
        ] {
            for (family, given) in [
                (Some("mar"), None),
                (None, Some("ma")),
                (Some("m"), None),
                (Some("mar"), Some("a")),
            ] {
                for (offset, limit) in [(0, 2), (2, 3), (1, 50), (40, 5)] {
                    let page = PatientQuery {
                        sort,
                        ..lone(family, given, offset, limit)
                    };
                    assert_eq!(
                        s.search_patients(w.t1.id, &page).await.unwrap(),
                        s.search_patients(w.t1.id, &general(page.clone()))
                            .await
                            .unwrap(),
                        "{name}: {sort:?} {family:?} {given:?} at {offset}, {limit}"
                    );
                }
            }
        }
        // Two names: the records of both, in each order; the migration fills
        // the words' copy of the names of the rows written before it.
        let both = lone(Some("mar"), Some("an"), 0, 50);
        assert_eq!(
            names(s.search_patients(w.t1.id, &both).await.unwrap()),
            ["Martin Anne", "Martin Anne"],
            "{name}"
        );
        assert_eq!(
            s.count_search_patients(w.t1.id, &both).await.unwrap(),
            2,
            "{name}"
        );
        store::testing::raw_sql(
            &s,
            "UPDATE patient_words SET search_name = '', search_given = ''",
        )
        .await
        .unwrap();
        assert!(
            s.search_patients(w.t1.id, &both).await.unwrap().is_empty(),
            "{name}: the other name is matched on the word rows"
        );
        fill_again(&s, "patient_words_names").await;
        assert_eq!(
            s.search_patients(w.t1.id, &both).await.unwrap(),
            s.search_patients(w.t1.id, &general(both.clone()))
                .await
                .unwrap(),
            "{name}"
        );
        assert_eq!(
            s.search_patients(w.t1.id, &both).await.unwrap().len(),
            2,
            "{name}"
        );

        // The count tells records apart only among the rows whose word shares
        // at least the criterion's length with another of the record's: with
        // that blanked, the records of Martin (Martel) and Marchand (Martinez)
        // count twice, and once again when migration 32 fills it.
        let mar = lone(Some("mar"), None, 0, 50);
        let before = s.count_search_patients(w.t1.id, &mar).await.unwrap();
        assert_eq!(
            before,
            s.count_search_patients(w.t1.id, &general(mar.clone()))
                .await
                .unwrap(),
            "{name}"
        );
        store::testing::raw_sql(&s, "UPDATE patient_words SET shared = 0")
            .await
            .unwrap();
        assert_eq!(
            s.count_search_patients(w.t1.id, &mar).await.unwrap(),
            before + 2,
            "{name}: two records counted by both their words"
        );
        fill_again(&s, "patient_words_shared").await;
        assert_eq!(
            s.count_search_patients(w.t1.id, &mar).await.unwrap(),
            before,
            "{name}"
        );

        // Each migration fills its key of the rows written before it: the
        // page cut in the words' order goes wrong with the key blanked, and
        // comes back once the migration's fill runs again.
        for (blank, migration, page) in [
            (
                "UPDATE patient_words SET updated_at_ms = 0",
                "patient_words_updated",
                latest(PatientSort::LastUpdatedDesc),
            ),
            (
                "UPDATE patient_words SET birth_name = '', given_names = ''",
                "patient_words_order",
                lone(Some("mar"), None, 0, 3),
            ),
        ] {
            let before = s.search_patients(w.t1.id, &page).await.unwrap();
            store::testing::raw_sql(&s, blank).await.unwrap();
            assert_ne!(
                s.search_patients(w.t1.id, &page).await.unwrap(),
                before,
                "{name}: {migration}: the page is cut in the words' order"
            );
            fill_again(&s, migration).await;
            assert_eq!(
                s.search_patients(w.t1.id, &page).await.unwrap(),
                before,
                "{name}: {migration}"
            );
        }
    }
}

/// Creations at the same time each get their own IPP (on PostgreSQL taken
/// from the counter before the transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_get_distinct_ipps() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let s = s.clone();
                let p = new_patient(w.t1.id, "Martin", &format!("Marie{}", "e".repeat(i)));
                tokio::spawn(async move { s.create_patient(&p, &who(), NOW).await.unwrap().ipp })
            })
            .collect();
        let mut ipps = Vec::new();
        for t in tasks {
            ipps.push(t.await.unwrap());
        }
        ipps.sort();
        ipps.dedup();
        assert_eq!(ipps.len(), 12, "{name}: {ipps:?}");
        assert!(
            ipps.iter()
                .all(|i| i.len() == 9 && i.bytes().all(|b| b.is_ascii_digit())),
            "{name}"
        );
    }
}

/// A page that names many patients reads them and their links at once.
#[tokio::test]
async fn many_records_are_read_with_their_links() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut linked = new_patient(w.t1.id, "Martin", "Marie");
        linked.establishment = Some(w.e2);
        let a = s.create_patient(&linked, &who(), NOW).await.unwrap();
        s.link_patient(a.id, w.e1, NOW + 1).await.unwrap();
        let mut alone = new_patient(w.t1.id, "Durand", "Paul");
        alone.establishment = None;
        let b = s.create_patient(&alone, &who(), NOW).await.unwrap();
        let unknown = domain::PatientId::new();
        let mut got = s.patients_with_links(&[b.id, unknown, a.id]).await.unwrap();
        got.sort_by_key(|(p, _)| p.traits.birth_name.clone());
        assert_eq!(
            got.iter()
                .map(|(p, l)| (p.id, p.traits.birth_name.as_str(), l.clone()))
                .collect::<Vec<_>>(),
            vec![(b.id, "Durand", vec![]), (a.id, "Martin", vec![w.e2, w.e1])],
            "{name}: the unknown id is left out, links in order"
        );
        assert!(
            s.patients_with_links(&[]).await.unwrap().is_empty(),
            "{name}"
        );
        // One record with its links, in one statement: the same answers.
        let (p, links) = s.patient_with_links(a.id).await.unwrap();
        assert_eq!((p.id, links), (a.id, vec![w.e2, w.e1]), "{name}");
        let (p, links) = s.patient_with_links(b.id).await.unwrap();
        assert_eq!((p.id, links), (b.id, vec![]), "{name}: no link");
        assert!(
            matches!(
                s.patient_with_links(unknown).await,
                Err(StoreError::NotFound)
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn updates_use_versions_and_are_audited() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let a = s
            .create_patient(&new_patient(w.t1.id, "Martin", "Marie"), &who(), NOW)
            .await
            .unwrap();
        let mut changed = a.clone();
        changed.traits.used_name = Some("Bernard".into());
        changed.status = IdentityStatus::Validated;
        let b = s
            .update_patient(&changed, &Default::default(), &who(), NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            (b.version, b.status, b.updated_at_ms),
            (2, IdentityStatus::Validated, NOW + 1),
            "{name}"
        );
        assert_eq!(b.traits.used_name.as_deref(), Some("Bernard"));
        // Writing from the old version is refused.
        assert!(
            matches!(
                s.update_patient(&changed, &Default::default(), &who(), NOW)
                    .await,
                Err(StoreError::Stale { current: 2 })
            ),
            "{name}"
        );
        let trail = s
            .list_audit(&AuditFilter {
                patient: Some(a.id.to_string()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, vec!["update", "create"], "{name}");
        assert!(matches!(
            s.patient(domain::PatientId::new()).await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn merge_links_the_merged_away_record_to_the_survivor() {
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut p1 = new_patient(w.t1.id, "Martin", "Marie");
        p1.establishment = Some(w.e1);
        let mut p2 = p1.clone();
        p2.establishment = Some(w.e2);
        let survivor = s.create_patient(&p1, &who(), NOW).await.unwrap();
        let dup = s.create_patient(&p2, &who(), NOW).await.unwrap();
        let bare = s.create_patient(&p2, &who(), NOW).await.unwrap();
        let foreign = s
            .create_patient(&new_patient(w.t2.id, "Martin", "Marie"), &who(), NOW)
            .await
            .unwrap();
        // A record only created at e2 (no care there) brings no link with it.
        s.merge_patients(survivor.id, bare.id, &who(), NOW)
            .await
            .unwrap();
        assert_eq!(
            s.patient_establishments(survivor.id).await.unwrap(),
            vec![w.e1],
            "{name}: creation is not care"
        );
        // One with an appointment at e2 (real care) brings e2.
        let doctor = s
            .create_user(
                &store::users::NewUser {
                    username: format!("dr-merge-{}", rand_suffix()),
                    display_name: "Dr Test".into(),
                    kind: store::users::UserKind::Professional,
                    password_hash: "$argon2id$fake".into(),
                    totp_secret: None,
                    rpps: None,
                    profession: None,
                    patient: None,
                    roles: vec![(w.e2, domain::org::Role::Doctor)],
                },
                NOW,
            )
            .await
            .unwrap();
        s.book(
            &store::schedule::NewAppointment {
                practitioner: doctor,
                establishment: w.e2,
                patient: dup.id,
                start_ms: NOW,
                end_ms: NOW + 900_000,
                mode: domain::schedule::Mode::InPerson,
                booked_by: "test".into(),
            },
            &[],
            &who(),
            NOW,
        )
        .await
        .unwrap();
        s.merge_patients(survivor.id, dup.id, &who(), NOW)
            .await
            .unwrap();
        let merged = s.patient(dup.id).await.unwrap();
        assert_eq!(merged.merged_into, Some(survivor.id), "{name}");
        assert!(!merged.active());
        assert_eq!(merged.ipp, dup.ipp, "{name}: the old IPP still resolves");
        let mut links = s.patient_establishments(survivor.id).await.unwrap();
        links.sort();
        let mut expected = vec![w.e1, w.e2];
        expected.sort();
        assert_eq!(
            links, expected,
            "{name}: the link of real care moved to the survivor"
        );
        assert_eq!(s.patient(survivor.id).await.unwrap().version, 3);
        for (a, b) in [
            (survivor.id, dup.id),
            (dup.id, survivor.id),
            (survivor.id, survivor.id),
            (survivor.id, foreign.id),
        ] {
            assert!(
                matches!(
                    s.merge_patients(a, b, &who(), NOW).await,
                    Err(StoreError::Conflict(_))
                ),
                "{name}: {a} <- {b}"
            );
        }
        let mut stale = merged.clone();
        stale.traits.birth_name = "X".into();
        assert!(
            matches!(
                s.update_patient(&stale, &Default::default(), &who(), NOW)
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "{name}: merged is frozen"
        );
    }
}

#[tokio::test]
async fn demographics_are_kept_patched_and_their_changes_audited() {
    use domain::demographics::*;
    for (name, s) in backends().await {
        let w = world(&s).await;
        let mut p = new_patient(w.t1.id, "Martin", "Marie");
        p.demographics = Demographics {
            addresses: vec![
                Address {
                    use_: AddressUse::Home,
                    lines: vec!["12 rue de l'Église".into(), "Bât. B".into()],
                    postal_code: Some("69002".into()),
                    city: Some("Lyon".into()),
                    country: Some("FRA".into()),
                },
                Address {
                    use_: AddressUse::Temporary,
                    lines: vec![],
                    postal_code: None,
                    city: Some("Vienne".into()),
                    country: None,
                },
            ],
            birth_place: Some(BirthPlace {
                city: Some("Orléans".into()),
                country: None,
            }),
            telecoms: vec![
                Telecom::parse(TelecomKind::Mobile, "0612345678").unwrap(),
                Telecom::parse(TelecomKind::Email, "marie@example.fr").unwrap(),
            ],
            contacts: vec![
                Contact {
                    role: ContactRole::Trusted,
                    relationship: Some(Relationship::Child),
                    family: "Martin".into(),
                    given: None,
                    phone: Some("0712345678".into()),
                },
                Contact {
                    role: ContactRole::Emergency,
                    relationship: None,
                    family: "Bernard".into(),
                    given: Some("Luc".into()),
                    phone: None,
                },
            ],
            gp: Some(Gp {
                rpps: domain::org::Rpps::parse("10000023084").unwrap(),
                family: Some("AGNES".into()),
                given: None,
            }),
            language: Some("fr".into()),
            deceased: None,
        };
        let a = s.create_patient(&p, &who(), NOW).await.unwrap();
        assert_eq!(
            s.demographics(a.id).await.unwrap(),
            p.demographics,
            "{name}"
        );
        let other = s
            .create_patient(&new_patient(w.t1.id, "Autre", "Anne"), &who(), NOW)
            .await
            .unwrap();
        assert_eq!(
            s.demographics(other.id).await.unwrap(),
            Demographics::default(),
            "{name}: none written, none read"
        );
        // A page of records: each its own, keyed by record, in one statement.
        let mut many = s
            .demographics_of(&[other.id, a.id, other.id])
            .await
            .unwrap();
        assert_eq!(many.len(), 2, "{name}");
        assert_eq!(many.remove(&a.id), Some(p.demographics.clone()), "{name}");
        assert_eq!(
            many.remove(&other.id),
            Some(Demographics::default()),
            "{name}"
        );
        assert!(s.demographics_of(&[]).await.unwrap().is_empty(), "{name}");

        // A patch replaces what it says, keeps the rest, bumps the version.
        let patch = DemographicsPatch {
            telecoms: Some(vec![]),
            deceased: Some(Some(jiff::civil::date(2026, 11, 30))),
            gp: Some(None),
            ..Default::default()
        };
        let b = s.update_patient(&a, &patch, &who(), NOW + 1).await.unwrap();
        assert_eq!(b.version, 2, "{name}");
        let d = s.demographics(a.id).await.unwrap();
        assert!(d.telecoms.is_empty() && d.gp.is_none(), "{name}");
        assert_eq!(d.deceased, Some(jiff::civil::date(2026, 11, 30)));
        assert_eq!(d.addresses, p.demographics.addresses, "{name}: kept");
        assert_eq!(d.contacts, p.demographics.contacts, "{name}: kept");
        // The same patch again changes nothing the audit would name.
        s.update_patient(&b, &patch, &who(), NOW + 2).await.unwrap();
        let trail = s
            .list_audit(&AuditFilter {
                patient: Some(a.id.to_string()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let entries: Vec<(&str, &str)> = trail
            .iter()
            .map(|e| (e.action.as_str(), e.resource.as_str()))
            .collect();
        let res = format!("Patient/{}", a.id);
        let parts = format!("{res}#telecom,general-practitioner,deceased");
        assert_eq!(
            entries,
            vec![
                ("update", res.as_str()),
                ("update-demographics", parts.as_str()),
                ("update", res.as_str()),
                ("create", res.as_str()),
            ],
            "{name}"
        );
        // A stale write leaves the demographics as they were.
        let stale = DemographicsPatch {
            language: Some(None),
            ..Default::default()
        };
        assert!(matches!(
            s.update_patient(&b, &stale, &who(), NOW + 3).await,
            Err(StoreError::Stale { current: 3 })
        ));
        assert_eq!(
            s.demographics(a.id).await.unwrap().language.as_deref(),
            Some("fr")
        );
    }
}

/// `count` letters of four bytes each, all different (so that PostgreSQL's
/// compression of wide index entries gains nothing on them).
fn wide_letters(from: u32, count: u32) -> String {
    (from..from + count).filter_map(char::from_u32).collect()
}

#[tokio::test]
async fn names_at_their_size_limit_are_stored_and_found() {
    // The most `Traits::check` accepts: 600 bytes of names, in four-byte
    // letters, the birth name one word of 100 of them. Each of the record's
    // word rows copies its names raw and normalised; on PostgreSQL they are in
    // a B-tree entry, which holds 2,704 bytes at most.
    let birth = wide_letters(0x20000, 100);
    let given = [wide_letters(0x21000, 25), wide_letters(0x22000, 25)].join(" ");
    let today = jiff::civil::date(2026, 12, 5);
    let t = traits(&birth, &given);
    assert_eq!(t.check(today), Ok(()));
    let mut over = t.clone();
    over.birth_given_names.push("A".into());
    assert!(over.check(today).is_err(), "600 bytes is the limit");
    for (name, s) in backends().await {
        let w = world(&s).await;
        let p = s
            .create_patient(&new_patient(w.t1.id, &birth, &given), &who(), NOW)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for query in [
            PatientQuery {
                family: Some(wide_letters(0x20000, 3)),
                ..q()
            },
            PatientQuery {
                given: Some(wide_letters(0x22000, 2)),
                ..q()
            },
        ] {
            let found = s.search_patients(w.t1.id, &query).await.unwrap();
            assert_eq!(
                found.iter().map(|r| r.id).collect::<Vec<_>>(),
                vec![p.id],
                "{name}"
            );
        }
    }
}
