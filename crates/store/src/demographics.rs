//! A patient's demographics beyond the INS traits (`domain::demographics`):
//! written whole inside the transaction that changes the record (the identity
//! feed, a desk edit, a FHIR update), the record's version bumped and the parts
//! that changed named in the audit trail, so that the trail is their history.

use domain::PatientId;
use domain::audit::AuditActor;
use domain::demographics::{
    Address, AddressUse, BirthPlace, Contact, ContactRole, Demographics, DemographicsPatch, Gp,
    Part, Relationship, Telecom, TelecomKind,
};
use domain::org::Rpps;

use crate::audit::NewAudit;
use crate::tx::{AsTx, Tx};
use crate::{Result, Store, StoreError};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("coordonnées du patient: {what}"))
}

/// Separates the lines of an address in its one column.
const LINE_SEPARATOR: char = '\n';

/// The four parts of the demographics of the records in `$1`…`$n` (`list`)
/// in one statement (one round trip, not four per record): a row per part,
/// tagged and keyed by record, its values as text in `c1`…`c7`, each part's
/// rows in their rank.
fn read_sql(list: &str) -> String {
    format!(
        "SELECT patient_id, 'D' AS part, 0 AS rank, birth_city AS c1, birth_country AS c2, \
                gp_rpps AS c3, gp_family AS c4, gp_given AS c5, language AS c6, deceased_on AS c7 \
           FROM patient_details WHERE patient_id IN ({list}) \
         UNION ALL SELECT patient_id, 'A', rank, use_code, lines, postal_code, city, country, \
                CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
           FROM patient_addresses WHERE patient_id IN ({list}) \
         UNION ALL SELECT patient_id, 'T', rank, kind, value, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
                CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
           FROM patient_telecoms WHERE patient_id IN ({list}) \
         UNION ALL SELECT patient_id, 'R', rank, role, relationship, family, given, phone, \
                CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
           FROM patient_relations WHERE patient_id IN ({list}) \
         ORDER BY patient_id, part, rank"
    )
}

/// The demographics of `patient` as stored (empty when none were ever written).
pub(crate) async fn read(tx: &mut Tx<'_>, patient: PatientId) -> Result<Demographics> {
    Ok(read_many(tx, &[patient], false)
        .await?
        .remove(&patient)
        .unwrap_or_default())
}

/// The demographics of each of `patients` as stored, keyed by record (an
/// empty one for a record that has none), one statement per 256 records.
/// `replanned`: PostgreSQL plans it at each run (`Q::planned_each_time`) —
/// for a writer changing these tables as it reads them: a generic plan kept
/// from a run where `patient_addresses` was empty scanned all of it, 2.3 ms
/// a group of ten while an A08 feed filled it (0.14 ms planned for it).
pub(crate) async fn read_many(
    tx: &mut Tx<'_>,
    patients: &[PatientId],
    replanned: bool,
) -> Result<std::collections::HashMap<PatientId, Demographics>> {
    let mut out: std::collections::HashMap<PatientId, Demographics> = patients
        .iter()
        .map(|p| (*p, Demographics::default()))
        .collect();
    for chunk in patients.chunks(crate::tx::MAX_ROWS_PER_INSERT) {
        let read = crate::tx::q_built(read_sql(&crate::tx::in_list(chunk.len())));
        let read = if replanned {
            read.planned_each_time()
        } else {
            read
        };
        let rows = chunk
            .iter()
            .fold(read, |q, id| q.bind(id.to_string()))
            .fetch_all(&mut *tx)
            .await?;
        for r in &rows {
            let id: PatientId = crate::orgs::parse_id(&r.get::<String>("patient_id")?)?;
            let d = out.entry(id).or_default();
            add_part(d, r)?;
        }
    }
    Ok(out)
}

/// Adds one row of [`read_sql`] to `d`.
fn add_part(d: &mut Demographics, r: &crate::tx::Row) -> Result<()> {
    let text = |c: &str| r.get::<Option<String>>(c);
    let required = |c: &str, what: &str| text(c)?.ok_or_else(|| corrupt(what));
    match r.get::<String>("part")?.as_str() {
        "D" => {
            let (city, country) = (text("c1")?, text("c2")?);
            if city.is_some() || country.is_some() {
                d.birth_place = Some(BirthPlace { city, country });
            }
            if let Some(rpps) = text("c3")? {
                d.gp = Some(Gp {
                    rpps: Rpps::parse(&rpps).map_err(|_| corrupt("RPPS"))?,
                    family: text("c4")?,
                    given: text("c5")?,
                });
            }
            d.language = text("c6")?;
            d.deceased = text("c7")?
                .map(|s| s.parse().map_err(|_| corrupt("date de décès")))
                .transpose()?;
        }
        "A" => {
            let lines = required("c2", "lignes d'adresse")?;
            d.addresses.push(Address {
                use_: AddressUse::from_code(&required("c1", "usage d'adresse")?)
                    .ok_or_else(|| corrupt("usage d'adresse"))?,
                lines: lines
                    .split(LINE_SEPARATOR)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                postal_code: text("c3")?,
                city: text("c4")?,
                country: text("c5")?,
            });
        }
        "T" => d.telecoms.push(Telecom {
            kind: TelecomKind::from_code(&required("c1", "type de coordonnée")?)
                .ok_or_else(|| corrupt("type de coordonnée"))?,
            value: required("c2", "coordonnée")?,
        }),
        "R" => d.contacts.push(Contact {
            role: ContactRole::from_code(&required("c1", "rôle du proche")?)
                .ok_or_else(|| corrupt("rôle du proche"))?,
            relationship: text("c2")?
                .map(|c| Relationship::from_code(&c).ok_or_else(|| corrupt("lien de parenté")))
                .transpose()?,
            family: required("c3", "nom du proche")?,
            given: text("c4")?,
            phone: text("c5")?,
        }),
        other => return Err(corrupt(&format!("partie {other:?}"))),
    }
    Ok(())
}

/// [`apply`] for several records at once: their demographics read by one
/// statement; for those the patch changes, the rows cleared into `cleared`
/// (run first, one statement per table) and written into `writes`. The
/// parts changed of each record changed (its audit entry, [`audit`], is the
/// caller's).
pub(crate) async fn patched_in(
    tx: &mut Tx<'_>,
    cleared: &mut crate::tx::Writes,
    writes: &mut crate::tx::Writes,
    patches: &[(PatientId, &DemographicsPatch)],
    now_ms: i64,
) -> Result<std::collections::HashMap<PatientId, Vec<Part>>> {
    let wanted: Vec<PatientId> = patches
        .iter()
        .filter(|(_, patch)| !patch.is_empty())
        .map(|(id, _)| *id)
        .collect();
    let mut changed = std::collections::HashMap::new();
    if wanted.is_empty() {
        return Ok(changed);
    }
    let before = read_many(tx, &wanted, true).await?;
    let mut rows: Vec<(String, Demographics)> = Vec::with_capacity(wanted.len());
    for (id, patch) in patches {
        if patch.is_empty() {
            continue;
        }
        let was = before.get(id).cloned().unwrap_or_default();
        let after = was.patched((*patch).clone());
        let parts = was.changed(&after);
        if parts.is_empty() {
            continue;
        }
        rows.push((id.to_string(), after));
        changed.insert(*id, parts);
    }
    if rows.is_empty() {
        return Ok(changed);
    }
    for table in ["patient_addresses", "patient_telecoms", "patient_relations"] {
        cleared.push(rows.iter().fold(
            crate::tx::q_built(format!(
                "DELETE FROM {table} WHERE patient_id IN ({})",
                crate::tx::in_list(rows.len())
            )),
            |q, (id, _)| q.bind(id),
        ));
    }
    rows_in(writes, &rows, now_ms);
    Ok(changed)
}

/// Writes `patch` as the demographics of `patient`, a record created in the
/// open transaction: nothing to read or clear first (the identity feed's
/// creations: a read and a clearing fewer than [`apply`]). No audit entry:
/// the creation's covers the demographics it starts with.
pub(crate) async fn apply_new(
    tx: &mut Tx<'_>,
    patient: PatientId,
    patch: &DemographicsPatch,
    now_ms: i64,
) -> Result<()> {
    apply_new_many(tx, &[(patient, patch)], now_ms).await
}

/// [`apply_new`] for a group of records created together: one statement per
/// table for the group.
pub(crate) async fn apply_new_many(
    tx: &mut Tx<'_>,
    patients: &[(PatientId, &DemographicsPatch)],
    now_ms: i64,
) -> Result<()> {
    let mut writes = crate::tx::Writes::default();
    new_many_in(&mut writes, patients, now_ms);
    Ok(writes.execute(tx).await?)
}

/// The inserts of [`apply_new_many`], added to `writes`.
pub(crate) fn new_many_in(
    writes: &mut crate::tx::Writes,
    patients: &[(PatientId, &DemographicsPatch)],
    now_ms: i64,
) {
    let none = Demographics::default();
    let all: Vec<(String, Demographics)> = patients
        .iter()
        .filter(|(_, patch)| !patch.is_empty())
        .map(|(id, patch)| (id.to_string(), none.patched((*patch).clone())))
        .filter(|(_, after)| !none.changed(after).is_empty())
        .collect();
    rows_in(writes, &all, now_ms);
}

/// Adds to `writes` the inserts of each `(patient, demographics)` of records
/// whose address, telecom and relation rows are absent (cleared, or a record
/// created in this transaction), one statement per table.
pub(crate) fn rows_in<D: std::borrow::Borrow<Demographics>>(
    writes: &mut crate::tx::Writes,
    all: &[(String, D)],
    now_ms: i64,
) {
    writes.insert_many(
        "INSERT INTO patient_details (patient_id, birth_city, birth_country, gp_rpps, gp_family, gp_given, language, deceased_on, updated_at_ms) VALUES ",
        " ON CONFLICT (patient_id) DO UPDATE SET birth_city = excluded.birth_city, birth_country = excluded.birth_country, \
         gp_rpps = excluded.gp_rpps, gp_family = excluded.gp_family, gp_given = excluded.gp_given, language = excluded.language, \
         deceased_on = excluded.deceased_on, updated_at_ms = excluded.updated_at_ms",
        9,
        all,
        |q, (id, d)| {
            let d = d.borrow();
            q.bind(id)
                .bind(d.birth_place.as_ref().and_then(|b| b.city.clone()))
                .bind(d.birth_place.as_ref().and_then(|b| b.country.clone()))
                .bind(d.gp.as_ref().map(|g| g.rpps.as_str().to_owned()))
                .bind(d.gp.as_ref().and_then(|g| g.family.clone()))
                .bind(d.gp.as_ref().and_then(|g| g.given.clone()))
                .bind(d.language.clone())
                .bind(d.deceased.map(|x| x.to_string()))
                .bind(now_ms)
        },
    );
    // Each patient's addresses, phones and close ones, ranked in their order.
    fn ranked<'a, T: 'a, D: std::borrow::Borrow<Demographics>>(
        all: &'a [(String, D)],
        items: impl Fn(&'a Demographics) -> &'a [T],
    ) -> Vec<(&'a String, i64, &'a T)> {
        all.iter()
            .flat_map(|(id, d)| {
                (0_i64..)
                    .zip(items(d.borrow()))
                    .map(move |(rank, x)| (id, rank, x))
            })
            .collect()
    }
    writes.insert_many(
        "INSERT INTO patient_addresses (patient_id, rank, use_code, lines, postal_code, city, country) VALUES ",
        "",
        7,
        &ranked(all, |d| &d.addresses),
        |q, (id, rank, a): &(&String, i64, &Address)| {
            q.bind(*id)
                .bind(*rank)
                .bind(a.use_.code())
                .bind(a.lines.join(&LINE_SEPARATOR.to_string()))
                .bind(a.postal_code.clone())
                .bind(a.city.clone())
                .bind(a.country.clone())
        },
    );
    writes.insert_many(
        "INSERT INTO patient_telecoms (patient_id, rank, kind, value) VALUES ",
        "",
        4,
        &ranked(all, |d| &d.telecoms),
        |q, (id, rank, t): &(&String, i64, &Telecom)| {
            q.bind(*id).bind(*rank).bind(t.kind.code()).bind(&t.value)
        },
    );
    writes.insert_many(
        "INSERT INTO patient_relations (patient_id, rank, role, relationship, family, given, phone) VALUES ",
        "",
        7,
        &ranked(all, |d| &d.contacts),
        |q, (id, rank, c): &(&String, i64, &Contact)| {
            q.bind(*id)
                .bind(*rank)
                .bind(c.role.code())
                .bind(c.relationship.map(|r| r.code()))
                .bind(&c.family)
                .bind(c.given.clone())
                .bind(c.phone.clone())
        },
    );
}

/// Applies `patch` to `patient`'s demographics inside the open transaction: the
/// parts that change are written, and named in the audit entry returned
/// (`update-demographics`, resource `Patient/{id}#address,telecom`); nothing is
/// written and `None` returned when nothing changes. The caller bumps the
/// record's version (it usually writes the record in the same transaction).
pub(crate) async fn apply(
    tx: &mut Tx<'_>,
    patient: PatientId,
    patch: &DemographicsPatch,
    who: &AuditActor,
    now_ms: i64,
) -> Result<Option<NewAudit>> {
    let mut cleared = crate::tx::Writes::default();
    let mut writes = crate::tx::Writes::default();
    let changed = patched_in(tx, &mut cleared, &mut writes, &[(patient, patch)], now_ms).await?;
    let Some(parts) = changed.get(&patient) else {
        return Ok(None);
    };
    cleared.execute(tx).await?;
    writes.execute(tx).await?;
    Ok(Some(audit(who, patient, parts, now_ms)))
}

/// The audit entry of a change of `patient`'s demographics (the parts changed).
pub(crate) fn audit(
    who: &AuditActor,
    patient: PatientId,
    changed: &[Part],
    now_ms: i64,
) -> NewAudit {
    let parts: Vec<&str> = changed.iter().map(|p| p.code()).collect();
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: "update-demographics".to_owned(),
        resource: format!("Patient/{patient}#{}", parts.join(",")),
        outcome: "success".to_owned(),
    }
}

impl Store {
    /// A patient's demographics (no audit: the caller audits the read it serves).
    pub async fn demographics(&self, patient: PatientId) -> Result<Demographics> {
        on_pool!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            crate::demographics::read(&mut conn.as_tx(), patient).await
        })
    }

    /// The demographics of several patients, keyed by record, in one
    /// statement per 256 (a page of search results; no audit: the caller
    /// audits the reads it serves).
    pub async fn demographics_of(
        &self,
        patients: &[PatientId],
    ) -> Result<std::collections::HashMap<PatientId, Demographics>> {
        on_pool!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            crate::demographics::read_many(&mut conn.as_tx(), patients, false).await
        })
    }
}
