//! Patient identities: creation with an IPP per identity domain, reads, searches,
//! updates with optimistic locking, links to establishments, merges. Every write
//! appends its audit entry in the same transaction.

use domain::audit::AuditActor;
use domain::demographics::DemographicsPatch;
use domain::identity::{IdentityStatus, PatientRecord, Sex, Traits, normalize_name};
use domain::ins::{Ins, InsKind};
use domain::{EstablishmentId, PatientId, TerritoryId};
use jiff::civil::Date;

use crate::audit::NewAudit;
use crate::macros::rows_to;
use crate::orgs::parse_id;
use crate::tx::WritePool as _;
use crate::tx::{AsTx, Tx, q};
use crate::{Conflict, Result, Store, StoreError};

/// A patient identity to create.
#[derive(Debug, Clone)]
pub struct NewPatient {
    /// Identity domain.
    pub territory: TerritoryId,
    /// IPP given by the sender; `None` to have the domain assign the next one.
    pub ipp: Option<String>,
    /// Traits.
    pub traits: Traits,
    /// INS.
    pub ins: Option<Ins>,
    /// Status.
    pub status: IdentityStatus,
    /// Establishment to link the patient to (where they are being seen).
    pub establishment: Option<EstablishmentId>,
    /// Addresses, phones, close ones, GP… (written by `create_patient`; the
    /// identity feed applies its own patch).
    pub demographics: domain::demographics::Demographics,
}

/// What to search for; empty criteria are ignored, all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct PatientQuery {
    /// INS value (15 characters).
    pub ins: Option<String>,
    /// IPP in this domain.
    pub ipp: Option<String>,
    /// Start of any word of the birth or used name (accents and case ignored).
    pub family: Option<String>,
    /// Start of any given name.
    pub given: Option<String>,
    /// Exact birth date.
    pub birth_date: Option<Date>,
    /// Last changed at or after (Unix ms).
    pub updated_min_ms: Option<i64>,
    /// Last changed at or before (Unix ms).
    pub updated_max_ms: Option<i64>,
    /// The order of the results.
    pub sort: PatientSort,
    /// Page size (capped at 200).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// How search results are ordered (each ends with the id, so pages are stable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatientSort {
    /// Birth name, given names (the default).
    #[default]
    Name,
    /// Last change, oldest first.
    LastUpdated,
    /// Last change, latest first.
    LastUpdatedDesc,
    /// Record id.
    Id,
    /// Record id, descending.
    IdDesc,
}

impl PatientSort {
    /// The columns it sorts on before the record's id, and whether it runs
    /// descending.
    fn columns(self) -> (&'static [&'static str], bool) {
        match self {
            PatientSort::Name => (&["birth_name", "given_names"], false),
            PatientSort::LastUpdated => (&["updated_at_ms"], false),
            PatientSort::LastUpdatedDesc => (&["updated_at_ms"], true),
            PatientSort::Id => (&[], false),
            PatientSort::IdDesc => (&[], true),
        }
    }

    /// Its sort key, the record's id (last) named `id`: the columns of
    /// [`PatientSort::order_by`] without their direction.
    fn key(self, id: &str) -> String {
        self.listed(id, false)
    }

    /// Its ORDER BY list, the record's id (last) named `id`.
    fn order_by(self, id: &str) -> String {
        self.listed(id, true)
    }

    /// Its columns, then `id`, each with its direction if `directed`.
    fn listed(self, id: &str, directed: bool) -> String {
        let (columns, descending) = self.columns();
        columns
            .iter()
            .copied()
            .chain([id])
            .map(|c| {
                if directed && descending {
                    format!("{c} DESC")
                } else {
                    c.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A search's SQL: `select`, then the WHERE clause of the criteria given, then
/// `tail` (given the next placeholder's number), with the values bound in order.
/// A name criterion reads the range of `patient_words` its first word starts
/// (an index), then LIKE on the record's words keeps the exact matches.
fn search_query(
    select: &str,
    territory: TerritoryId,
    q: &PatientQuery,
    tail: impl FnOnce(usize) -> String,
) -> crate::tx::Q {
    // With a name criterion alone, the domain is the words index's: the planner
    // then reads that range and looks each record up, instead of reading
    // every record of the domain (SQLite without statistics takes the domain's
    // index otherwise). A record's words are in its own domain.
    // An INS, an IPP or a birth date has its own index, narrower than any
    // name's words: then the words are not read.
    let selective = q.ins.is_some() || q.ipp.is_some() || q.birth_date.is_some();
    // Each name criterion given: its kind of word, its column, its LIKE
    // pattern and its range of the words index (if its first word has one).
    let names: Vec<_> = [
        ("F", "search_name", &q.family),
        ("G", "search_given", &q.given),
    ]
    .into_iter()
    .filter_map(|(kind, column, value)| {
        let pattern = like(value)?;
        Some((kind, column, pattern, value.as_deref().and_then(word_range)))
    })
    .collect();
    let by_words = !selective && names.iter().any(|(.., range)| range.is_some());
    let mut sql = if by_words {
        format!("{select} WHERE TRUE")
    } else {
        format!("{select} WHERE territory_id = $1")
    };
    let mut args: Vec<crate::tx::Arg> = vec![territory.to_string().into()];
    let mut clause = |text: &str, values: Vec<crate::tx::Arg>| {
        let mut text = text.to_owned();
        for v in values {
            args.push(v);
            text = text.replacen('?', &format!("${}", args.len()), 1);
        }
        sql.push_str(" AND ");
        sql.push_str(&text);
    };
    if let Some(ins) = &q.ins {
        clause("ins_value = ?", vec![ins.into()]);
    }
    if let Some(ipp) = &q.ipp {
        clause("ipp = ?", vec![ipp.into()]);
    }
    // Each name's range of the words index is read once, and the records in
    // all of them are the candidates: the ranges' ids intersected (from the
    // index alone), not the family name's records read one by one to test
    // the given name (a tenth of a territory for three letters). One IN list
    // per range would be worse: estimated at one row by a planner without
    // statistics, the second would be read again for every row of the first.
    if by_words {
        let mut ranges = Vec::new();
        let mut bounds = Vec::new();
        for (kind, _, _, range) in &names {
            let Some((low, high)) = range else { continue };
            ranges.push(format!(
                "SELECT patient_id FROM patient_words WHERE territory_id = $1 AND kind = '{kind}' AND word >= ?{}",
                if high.is_some() { " AND word < ?" } else { "" }
            ));
            bounds.push(low.into());
            bounds.extend(high.as_ref().map(Into::into));
        }
        clause(&format!("id IN ({})", ranges.join(" INTERSECT ")), bounds);
    }
    for (_, column, pattern, _) in names {
        clause(&format!("{column} LIKE ?"), vec![pattern.into()]);
    }
    if let Some(d) = q.birth_date {
        clause("birth_date = ?", vec![d.to_string().into()]);
    }
    if let Some(ms) = q.updated_min_ms {
        clause("updated_at_ms >= ?", vec![ms.into()]);
    }
    if let Some(ms) = q.updated_max_ms {
        clause("updated_at_ms <= ?", vec![ms.into()]);
    }
    sql.push_str(&tail(args.len() + 1));
    args.into_iter()
        .fold(crate::tx::q_built(sql), crate::tx::Q::bind)
}

/// The LIKE pattern of a name criterion: a word of the record starts with it.
fn like(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(normalize_name)
        .filter(|n| !n.is_empty())
        .map(|n| format!("% {}%", n.replace(['%', '_'], "")))
}

/// A name criterion as its words are searched: normalised, without the LIKE
/// wildcards.
fn searched_words(criterion: &str) -> String {
    normalize_name(criterion).replace(['%', '_'], "")
}

/// The range of `patient_words` holding every word that starts with the first
/// word of a name criterion: from that word (included) to the word made by
/// raising its last character (excluded; `None`, no upper bound, when it
/// cannot be raised). `None` when the criterion has no word.
fn word_range(criterion: &str) -> Option<(String, Option<String>)> {
    let first = searched_words(criterion)
        .split_whitespace()
        .next()?
        .to_owned();
    let mut chars: Vec<char> = first.chars().collect();
    let high = chars
        .pop()
        .and_then(|last| char::from_u32(u32::from(last) + 1))
        .map(|next| chars.iter().chain(std::iter::once(&next)).collect());
    Some((first, high))
}

/// A words range that answers a search: its name criteria are a name of one
/// word (kind 'F' or 'G', the range of the words it starts), so that the
/// range's rows are exactly that criterion's matches (`LIKE '% WORD%'` on the
/// record's words holds for them and them only), and at most the other kind
/// of name, which the rows' copy of the record's words (`search_name`,
/// `search_given`, migration 31) must match by the general search's own LIKE.
/// `None` for any other criterion.
struct WordRange {
    kind: &'static str,
    low: String,
    high: String,
    /// The other name's column of the word rows and its LIKE pattern.
    other: Option<(&'static str, String)>,
}

fn lone_word(q: &PatientQuery) -> Option<WordRange> {
    if q.ins.is_some()
        || q.ipp.is_some()
        || q.birth_date.is_some()
        || q.updated_min_ms.is_some()
        || q.updated_max_ms.is_some()
    {
        return None;
    }
    let one_word = |value: &Option<String>| {
        value
            .as_deref()
            .filter(|v| searched_words(v).split_whitespace().count() == 1)
            .and_then(word_range)
            .and_then(|(low, high)| Some((low, high?)))
    };
    let ((low, high), kind, other) = match (like(&q.family), like(&q.given)) {
        (Some(_), None) => (one_word(&q.family)?, "F", None),
        (None, Some(_)) => (one_word(&q.given)?, "G", None),
        (Some(family), Some(given)) => match one_word(&q.family) {
            Some(range) => (range, "F", Some(("search_given", given))),
            None => (one_word(&q.given)?, "G", Some(("search_name", family))),
        },
        (None, None) => return None,
    };
    Some(WordRange {
        kind,
        low,
        high,
        other,
    })
}

/// How many leading characters of a family name's word name its bucket in
/// the `patient_words_prefix` index (migration 33, `substr(word, 1, 3)`
/// there).
const BUCKET_CHARS: usize = 3;

impl WordRange {
    /// Whether the range is exactly one bucket of `patient_words_prefix`:
    /// a family name's (the index holds those words only) whose first word
    /// has as many characters as a bucket's name.
    fn is_bucket(&self) -> bool {
        self.kind == "F" && self.low.chars().count() == BUCKET_CHARS
    }

    /// How many characters the criterion's word has (as SQL counts them),
    /// which a word row's `shared` is compared with (migration 32).
    fn length(&self) -> i64 {
        i64::try_from(self.low.chars().count()).unwrap_or(i64::MAX)
    }

    /// The condition that keeps one row of each record among the range's
    /// rows of `patient_words AS w`, without telling records apart in a
    /// temporary index, given the placeholder `length` binds
    /// ([`WordRange::length`]): a row whose word shares fewer leading
    /// characters with its record's other words than the criterion has is
    /// its record's only row in the range (two words that start with the
    /// criterion share all of it, migration 32); of the others, the one with
    /// the least word (its record's words looked up for those rows only).
    fn one_row_per_record(&self, length: &str) -> String {
        format!(
            "(w.shared < {length} OR NOT EXISTS (SELECT 1 FROM patient_words AS o \
               WHERE o.patient_id = w.patient_id AND o.territory_id = $1 \
               AND o.kind = '{}' AND o.word >= $2 AND o.word < w.word))",
            self.kind
        )
    }

    /// The query `sql` makes of the condition on the range's rows of
    /// `patient_words`, with the values bound in their placeholders' order:
    /// the domain `$1`, the range's first word `$2`, `between` from `$3` on
    /// (which `sql` places), then the word that ends the range (excluded) and
    /// the other name's pattern. With `bucket`, a range that is one bucket
    /// is asked as the bucket alone (`substr(word, 1, 3) = $2`, the same
    /// rows: a word starts with `$2` exactly when it lies in the range), so
    /// that its rows are read from `patient_words_prefix` in name order, a
    /// planner without statistics not being offered the primary key's range
    /// instead.
    fn query(
        self,
        territory: TerritoryId,
        between: &[i64],
        bucket: bool,
        sql: impl FnOnce(&str) -> String,
    ) -> crate::tx::Q {
        let mut next = 3 + between.len();
        let mut rows = format!("territory_id = $1 AND kind = '{}' AND ", self.kind);
        let high = if bucket && self.is_bucket() {
            // The index's expression, as migration 33 writes it (the
            // planner matches it as text).
            rows.push_str(&format!("substr(word, 1, {BUCKET_CHARS}) = $2"));
            None
        } else {
            rows.push_str(&format!("word >= $2 AND word < ${next}"));
            next += 1;
            Some(self.high)
        };
        if let Some((column, _)) = &self.other {
            rows.push_str(&format!(" AND {column} LIKE ${next}"));
        }
        let q = between.iter().fold(
            crate::tx::q_built(sql(&rows))
                .bind(territory.to_string())
                .bind(self.low),
            |q, v| q.bind(*v),
        );
        let q = match high {
            Some(high) => q.bind(high),
            None => q,
        };
        match self.other {
            Some((_, pattern)) => q.bind(pattern),
            None => q,
        }
    }
}

/// A page of a lone word's matches in `sort`'s order (see [`lone_word`]):
/// the page's ids are taken from the words range, sorted on the sort key each
/// word row carries (the record's names, its last change, its id), and only
/// their records are read. A record with two words in the range (a birth and
/// a used name alike) is counted once. In name order, a range that is one
/// bucket of `patient_words_prefix` (a family name of three letters, with or
/// without a given name matched on the rows) is read from that index already
/// sorted, up to the page's end, and `DISTINCT` keeps one of a record's rows,
/// which lie side by side there. Any other range keeps one row of each
/// record by [`WordRange::one_row_per_record`] (`DISTINCT` there would put
/// every row of the range into a temporary index, most of the page's time).
fn word_page(
    territory: TerritoryId,
    range: WordRange,
    sort: PatientSort,
    limit: i64,
    offset: i64,
) -> crate::tx::Q {
    let select = |rows: &str, distinct: &str| {
        format!(
            "SELECT {COLUMNS} FROM patients WHERE id IN (SELECT patient_id FROM ( \
               SELECT {distinct}{} FROM patient_words AS w WHERE {rows} \
               ORDER BY {} LIMIT +$3 OFFSET +$4) AS page) \
             ORDER BY {}",
            sort.key("patient_id"),
            sort.order_by("patient_id"),
            sort.order_by("id")
        )
    };
    if sort == PatientSort::Name && range.is_bucket() {
        return range.query(territory, &[limit, offset], true, |rows| {
            select(rows, "DISTINCT ")
        });
    }
    let one_row = range.one_row_per_record("$5");
    let length = range.length();
    range.query(territory, &[limit, offset, length], false, |rows| {
        select(&format!("{rows} AND {one_row}"), "")
    })
}

/// The query of a search's page: a lone word's from the words range, any
/// other from the general search. Its `LIMIT` and `OFFSET` are bound behind a
/// unary plus (see [`crate::tx::q_built`]).
fn page_query(territory: TerritoryId, q: &PatientQuery) -> crate::tx::Q {
    let (limit, offset) = (q.limit.clamp(1, 200), q.offset.max(0));
    match lone_word(q) {
        Some(word) => word_page(territory, word, q.sort, limit, offset),
        None => {
            let order = q.sort.order_by("id");
            search_query(
                &format!("SELECT {COLUMNS} FROM patients"),
                territory,
                q,
                |n| format!(" ORDER BY {order} LIMIT +${n} OFFSET +${}", n + 1),
            )
            .bind(limit)
            .bind(offset)
        }
    }
}

db_row! {
    struct PatientRow {
        id: String,
        territory_id: String,
        ipp: String,
        birth_name: String,
        given_names: String,
        birth_date: String,
        sex: String,
        birthplace_code: Option<String>,
        used_name: Option<String>,
        used_given_name: Option<String>,
        ins_kind: Option<String>,
        ins_value: Option<String>,
        identity_status: String,
        merged_into: Option<String>,
        version: i64,
        updated_at_ms: i64,
    }
}

const COLUMNS: &str = "id, territory_id, ipp, birth_name, given_names, birth_date, sex, birthplace_code, used_name, \
     used_given_name, ins_kind, ins_value, identity_status, merged_into, version, updated_at_ms";

pub(crate) const GIVEN_SEPARATOR: char = '|';

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

impl TryFrom<PatientRow> for PatientRecord {
    type Error = StoreError;
    fn try_from(r: PatientRow) -> Result<Self> {
        let ins = match (r.ins_kind.as_deref(), r.ins_value.as_deref()) {
            (Some(k), Some(v)) => {
                let kind = InsKind::from_code(k).ok_or_else(|| corrupt("type d'INS"))?;
                Some(Ins::parse(kind, v).map_err(|_| corrupt("INS"))?)
            }
            _ => None,
        };
        Ok(PatientRecord {
            id: parse_id(&r.id)?,
            territory: parse_id(&r.territory_id)?,
            ipp: r.ipp,
            traits: Traits {
                birth_name: r.birth_name,
                birth_given_names: r
                    .given_names
                    .split(GIVEN_SEPARATOR)
                    .map(str::to_owned)
                    .collect(),
                birth_date: r
                    .birth_date
                    .parse()
                    .map_err(|_| corrupt("date de naissance"))?,
                sex: Sex::from_code(&r.sex).ok_or_else(|| corrupt("sexe"))?,
                birthplace_code: r.birthplace_code,
                used_name: r.used_name,
                used_given_name: r.used_given_name,
            },
            ins,
            status: IdentityStatus::from_code(&r.identity_status)
                .ok_or_else(|| corrupt("statut d'identité"))?,
            merged_into: r.merged_into.as_deref().map(parse_id).transpose()?,
            version: r.version,
            updated_at_ms: r.updated_at_ms,
        })
    }
}

/// Words to match name searches against: " WORD WORD ", so that `LIKE '% X%'`
/// finds a prefix of any word.
fn search_words<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let joined: Vec<String> = names
        .into_iter()
        .map(normalize_name)
        .filter(|s| !s.is_empty())
        .collect();
    format!(" {} ", joined.join(" "))
}

pub(crate) fn search_name(t: &Traits) -> String {
    search_words(std::iter::once(t.birth_name.as_str()).chain(t.used_name.as_deref()))
}

pub(crate) fn search_given(t: &Traits) -> String {
    search_words(
        t.birth_given_names
            .iter()
            .map(String::as_str)
            .chain(t.used_given_name.as_deref()),
    )
}

pub(crate) fn audit_for(
    who: &AuditActor,
    patient: PatientId,
    action: &str,
    now_ms: i64,
) -> NewAudit {
    NewAudit {
        at_ms: now_ms,
        actor: who.clone(),
        patient: Some(patient.to_string()),
        action: action.to_owned(),
        resource: format!("Patient/{patient}"),
        outcome: "success".to_owned(),
    }
}

/// A record to create: its id, its identity, who creates it and when.
pub(crate) type Creation<'a> = (PatientId, &'a NewPatient, &'a AuditActor, i64);

/// Creates records inside the open transaction: their IPPs (from each
/// domain's counter, for those without one), the records and their links to
/// their establishments, their demographics and each creation's audit entry,
/// which covers the demographics it starts with. Besides the IPPs, one round
/// trip for the chain's head and one for everything else (a script on
/// SQLite, a statement on PostgreSQL), however many records: a new record
/// has no demographics to read or clear first. The records as stored, in
/// order, without reading them back.
pub(crate) async fn create_in(
    tx: &mut Tx<'_>,
    creations: &[Creation<'_>],
) -> Result<Vec<PatientRecord>> {
    // Each domain's numbers, taken once for all its records without an IPP.
    let mut numbers: Vec<(TerritoryId, std::vec::IntoIter<String>)> = Vec::new();
    for (_, p, _, _) in creations.iter().filter(|(_, p, _, _)| p.ipp.is_none()) {
        if !numbers.iter().any(|(t, _)| *t == p.territory) {
            let wanted = creations
                .iter()
                .filter(|(_, o, _, _)| o.ipp.is_none() && o.territory == p.territory)
                .count();
            let taken = next_ipps(tx, p.territory, wanted).await?;
            numbers.push((p.territory, taken.into_iter()));
        }
    }
    let mut news = Vec::with_capacity(creations.len());
    for (_, p, _, _) in creations {
        let ipp = match &p.ipp {
            Some(ipp) => ipp.clone(),
            None => numbers
                .iter_mut()
                .find(|(t, _)| *t == p.territory)
                .and_then(|(_, n)| n.next())
                .ok_or_else(|| corrupt("compteur d'IPP"))?,
        };
        news.push(NewPatient {
            ipp: Some(ipp),
            ..(*p).clone()
        });
    }
    let mut writes = crate::tx::Writes::default();
    // One insert per table for the records created at the same instant.
    let rows: Vec<(PatientId, &NewPatient, i64)> = creations
        .iter()
        .zip(&news)
        .map(|((id, _, _, now_ms), p)| (*id, p, *now_ms))
        .collect();
    for run in rows.chunk_by(|a, b| a.2 == b.2) {
        let Some((_, _, now_ms)) = run.first() else {
            continue;
        };
        let these: Vec<(PatientId, &NewPatient)> = run.iter().map(|(id, p, _)| (*id, *p)).collect();
        patients_in(&mut writes, &these, *now_ms);
        let patches: Vec<(PatientId, DemographicsPatch)> = run
            .iter()
            .map(|(id, p, _)| (*id, DemographicsPatch::all(p.demographics.clone())))
            .collect();
        let patches: Vec<(PatientId, &DemographicsPatch)> =
            patches.iter().map(|(id, d)| (*id, d)).collect();
        crate::demographics::new_many_in(&mut writes, &patches, *now_ms);
    }
    let entries: Vec<NewAudit> = creations
        .iter()
        .map(|(id, _, who, now_ms)| audit_for(who, *id, "create", *now_ms))
        .collect();
    // Last: the chain's head stays locked from here to the commit.
    crate::audit::audits_into(tx, &mut writes, &entries).await?;
    writes.execute(tx).await?;
    Ok(creations
        .iter()
        .zip(news)
        .map(|((id, _, _, now_ms), p)| PatientRecord {
            id: *id,
            territory: p.territory,
            ipp: p.ipp.unwrap_or_default(),
            traits: p.traits,
            ins: p.ins,
            status: p.status,
            merged_into: None,
            version: 1,
            updated_at_ms: *now_ms,
        })
        .collect())
}

/// Inserts a patient inside the open transaction (IPP assigned from the
/// domain's counter when `p.ipp` is `None`), linked to `p.establishment`. No
/// audit: the caller appends it. Shared by the API path and the HL7 feed.
pub(crate) async fn insert_patient(
    tx: &mut Tx<'_>,
    id: PatientId,
    p: &NewPatient,
    now_ms: i64,
) -> Result<()> {
    let ipp = match &p.ipp {
        Some(ipp) => ipp.clone(),
        None => next_ipp(tx, p.territory).await?,
    };
    let p = NewPatient {
        ipp: Some(ipp),
        ..p.clone()
    };
    insert_patients(tx, &[(id, &p)], now_ms).await
}

/// The next free IPP of `territory` from its counter (skipping the ones a
/// feed gave already), in the open transaction: [`next_ipps`] of one.
async fn next_ipp(tx: &mut Tx<'_>, territory: TerritoryId) -> Result<String> {
    next_ipps(tx, territory, 1)
        .await?
        .pop()
        .ok_or_else(|| corrupt("compteur d'IPP"))
}

/// The next `n` free IPPs of `territory` from its counter, in order: the
/// counter raised by `n` at once, the numbers a feed gave already skipped
/// (and as many more taken), in the open transaction. The counter's row stays
/// locked to its commit (creations go through the one writer of
/// [`Store::apply_writes`], which waits for it anyway); a creation rolled
/// back gives its numbers back.
async fn next_ipps(tx: &mut Tx<'_>, territory: TerritoryId, n: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let wanted = (n - out.len()).min(crate::tx::MAX_ROWS_PER_INSERT);
        let r = q("UPDATE territories SET ipp_counter = ipp_counter + $2 WHERE id = $1 RETURNING ipp_counter")
            .bind(territory.to_string())
            .bind(wanted as i64)
            .fetch_one(tx)
            .await?;
        let last = r.get::<i64>("ipp_counter")?;
        let candidates: Vec<String> = (last - wanted as i64 + 1..=last)
            .map(|k| format!("{k:09}"))
            .collect();
        let sql = format!(
            "SELECT ipp FROM patients WHERE ipp IN ({}) AND territory_id = ${}",
            crate::tx::in_list(wanted),
            wanted + 1
        );
        let query = candidates
            .iter()
            .fold(crate::tx::q_built(sql).planned_each_time(), |q, c| {
                q.bind(c.as_str())
            })
            .bind(territory.to_string());
        let taken = query
            .fetch_all(tx)
            .await?
            .iter()
            .map(|row| row.get::<String>("ipp"))
            .collect::<std::result::Result<std::collections::HashSet<String>, _>>()?;
        out.extend(candidates.into_iter().filter(|c| !taken.contains(c)));
    }
    Ok(out)
}

/// Inserts records whose IPP is given (a group of the identity feed's
/// creations), each linked to its establishment, with one statement per
/// table: what [`insert_patient`] does for one.
pub(crate) async fn insert_patients(
    tx: &mut Tx<'_>,
    patients: &[(PatientId, &NewPatient)],
    now_ms: i64,
) -> Result<()> {
    let mut writes = crate::tx::Writes::default();
    patients_in(&mut writes, patients, now_ms);
    Ok(writes.execute(tx).await?)
}

/// The inserts of [`insert_patients`], added to `writes`.
pub(crate) fn patients_in(
    writes: &mut crate::tx::Writes,
    patients: &[(PatientId, &NewPatient)],
    now_ms: i64,
) {
    writes.insert_many(
        "INSERT INTO patients (id, territory_id, ipp, birth_name, given_names, birth_date, sex, birthplace_code, used_name, \
         used_given_name, search_name, search_given, ins_kind, ins_value, identity_status, version, created_at_ms, updated_at_ms) VALUES ",
        "",
        18,
        patients,
        |query, (id, p)| {
            query
                .bind(id.to_string())
                .bind(p.territory.to_string())
                .bind(p.ipp.clone().unwrap_or_default())
                .bind(&p.traits.birth_name)
                .bind(
                    p.traits
                        .birth_given_names
                        .join(&GIVEN_SEPARATOR.to_string()),
                )
                .bind(p.traits.birth_date.to_string())
                .bind(p.traits.sex.code())
                .bind(&p.traits.birthplace_code)
                .bind(&p.traits.used_name)
                .bind(&p.traits.used_given_name)
                .bind(search_name(&p.traits))
                .bind(search_given(&p.traits))
                .bind(p.ins.as_ref().map(|i| i.kind().code()))
                .bind(p.ins.as_ref().map(domain::ins::Ins::value))
                .bind(p.status.code())
                .bind(1_i64)
                .bind(now_ms)
                .bind(now_ms)
        },
    );
    let words: Vec<NameWord> = patients
        .iter()
        .flat_map(|(id, p)| name_words(id, p.territory, &p.traits, now_ms))
        .collect();
    words_in(writes, &words);
    let links: Vec<(PatientId, EstablishmentId)> = patients
        .iter()
        .filter_map(|(id, p)| p.establishment.map(|e| (*id, e)))
        .collect();
    writes.insert_many(
        "INSERT INTO patient_establishments (patient_id, establishment_id, since_ms) VALUES ",
        "",
        3,
        &links,
        |query, (id, e)| query.bind(id.to_string()).bind(e.to_string()).bind(now_ms),
    );
}

/// The columns of a record's identity in `patients` (its traits, the words
/// searched, its INS and status), in the order of [`identity_of`] and of
/// [`UPDATE_PATIENT`]'s first placeholders.
pub(crate) const IDENTITY_COLUMNS: [&str; 12] = [
    "birth_name",
    "given_names",
    "birth_date",
    "sex",
    "birthplace_code",
    "used_name",
    "used_given_name",
    "search_name",
    "search_given",
    "ins_kind",
    "ins_value",
    "identity_status",
];

/// A record's identity as `patients` holds it (see [`IDENTITY_COLUMNS`]):
/// equal to what a row holds when writing `record` would change none of it.
pub(crate) fn identity_of(record: &domain::identity::PatientRecord) -> [Option<String>; 12] {
    let t = &record.traits;
    [
        Some(t.birth_name.clone()),
        Some(t.birth_given_names.join(&GIVEN_SEPARATOR.to_string())),
        Some(t.birth_date.to_string()),
        Some(t.sex.code().to_owned()),
        t.birthplace_code.clone(),
        t.used_name.clone(),
        t.used_given_name.clone(),
        Some(search_name(t)),
        Some(search_given(t)),
        record.ins.as_ref().map(|i| i.kind().code().to_owned()),
        record.ins.as_ref().map(domain::ins::Ins::value),
        Some(record.status.code().to_owned()),
    ]
}

/// [`UPDATE_PATIENT`] of `record`.
fn update_of(record: &domain::identity::PatientRecord, now_ms: i64) -> crate::tx::Q {
    identity_of(record)
        .into_iter()
        .fold(q(UPDATE_PATIENT), crate::tx::Q::bind)
        .bind(now_ms)
        .bind(record.id.to_string())
        .bind(record.version)
}

/// A new version of a record whose own row is otherwise unchanged (its
/// demographics changed, or another record merged into it): its version one
/// more, its time `now_ms`.
pub(crate) async fn touch(tx: &mut Tx<'_>, id: PatientId, now_ms: i64) -> Result<()> {
    let mut writes = crate::tx::Writes::default();
    touches_in(&mut writes, &[id], now_ms, matches!(tx, Tx::Pg(_)));
    Ok(writes.execute(tx).await?)
}

/// [`touch`] for several records, one statement, into `writes` (the words'
/// trigger gives their rows the new time: the words stay).
pub(crate) fn touches_in(writes: &mut crate::tx::Writes, ids: &[PatientId], now_ms: i64, pg: bool) {
    use crate::tx::{Arg, Column};
    if ids.is_empty() {
        return;
    }
    writes.push(if pg {
        q("UPDATE patients SET version = version + 1, updated_at_ms = $1 WHERE id = ANY($2::text[])")
            .bind(now_ms)
            .bind(Arg::Column(Column::Text(
                ids.iter().map(|id| Some(id.to_string())).collect(),
            )))
    } else {
        ids.iter()
            .fold(
                crate::tx::q_built(format!(
                    "UPDATE patients SET version = version + 1, updated_at_ms = ${} WHERE id IN ({})",
                    ids.len() + 1,
                    crate::tx::in_list(ids.len())
                )),
                |q, id| q.bind(id.to_string()),
            )
            .bind(now_ms)
    });
}

/// The columns of [`IDENTITY_COLUMNS`] a record's words (`patient_words`,
/// [`name_words`]) are made of.
const NAME_COLUMNS: [&str; 6] = [
    "birth_name",
    "given_names",
    "used_name",
    "used_given_name",
    "search_name",
    "search_given",
];

/// What writing `record` over its stored identity changes.
pub(crate) enum IdentityChange {
    /// Nothing: the row (and its version) can stay as it is.
    Same,
    /// The row; `renamed`: its names too (its words are written again).
    Changed { renamed: bool },
}

/// What writing `record` over `stored` (its row's identity, as
/// [`identity_of`] gives it) changes: the rule of an update by the HL7
/// intake, in a group and alone.
pub(crate) fn identity_change(
    record: &domain::identity::PatientRecord,
    stored: &[Option<String>; 12],
) -> IdentityChange {
    let identity = identity_of(record);
    if identity == *stored {
        IdentityChange::Same
    } else {
        IdentityChange::Changed {
            renamed: names_differ(&identity, stored),
        }
    }
}

/// Whether two identities (as [`identity_of`] gives them) name the record
/// differently: its words are made of its names alone.
fn names_differ(a: &[Option<String>; 12], b: &[Option<String>; 12]) -> bool {
    IDENTITY_COLUMNS
        .iter()
        .zip(a.iter().zip(b))
        .any(|(column, (x, y))| NAME_COLUMNS.contains(column) && x != y)
}

/// The update of a record's traits, INS and status, at the version read.
const UPDATE_PATIENT: &str = "UPDATE patients SET birth_name = $1, given_names = $2, birth_date = $3, sex = $4, birthplace_code = $5, used_name = $6, \
    used_given_name = $7, search_name = $8, search_given = $9, ins_kind = $10, ins_value = $11, identity_status = $12, \
    version = version + 1, updated_at_ms = $13 WHERE id = $14 AND version = $15 AND merged_into IS NULL";

/// Updates a patient's traits, INS and status inside the open transaction if
/// its version is still `record.version` and it is not merged; its words
/// written again when `renamed` (its names may have changed); the rows
/// changed (0 or 1).
pub(crate) async fn update_patient(
    tx: &mut Tx<'_>,
    record: &domain::identity::PatientRecord,
    renamed: bool,
    now_ms: i64,
) -> Result<u64> {
    let t = &record.traits;
    let changed = update_of(record, now_ms).execute(tx).await?;
    if changed == 1 && renamed {
        q("DELETE FROM patient_words WHERE patient_id = $1")
            .bind(record.id.to_string())
            .execute(tx)
            .await?;
        insert_words(tx, &name_words(&record.id, record.territory, t, now_ms)).await?;
    }
    Ok(changed)
}

/// The writes of [`update_patient`] for several records that the caller has
/// locked (the version each holds is the one read), each with whether it is
/// renamed: into `cleared`, run first, the removal of the renamed ones' words
/// and the updates; into `writes` their new words (one insert). On
/// PostgreSQL the updates are one statement, the records' values bound as
/// one array per column; on SQLite one per record.
pub(crate) fn updates_in(
    cleared: &mut crate::tx::Writes,
    writes: &mut crate::tx::Writes,
    records: &[(&domain::identity::PatientRecord, bool)],
    now_ms: i64,
    pg: bool,
) {
    use crate::tx::{Arg, Column};
    if records.is_empty() {
        return;
    }
    let renamed: Vec<&domain::identity::PatientRecord> = records
        .iter()
        .filter(|(_, renamed)| *renamed)
        .map(|(r, _)| *r)
        .collect();
    if !renamed.is_empty() {
        cleared.push(renamed.iter().fold(
            crate::tx::q_built(format!(
                "DELETE FROM patient_words WHERE patient_id IN ({})",
                crate::tx::in_list(renamed.len())
            )),
            |q, r| q.bind(r.id.to_string()),
        ));
    }
    if pg {
        let identities: Vec<[Option<String>; 12]> =
            records.iter().map(|(r, _)| identity_of(r)).collect();
        let columns = (0..IDENTITY_COLUMNS.len()).map(|c| {
            Arg::Column(Column::Text(
                identities
                    .iter()
                    .map(|i| i.get(c).cloned().flatten())
                    .collect(),
            ))
        });
        cleared.push(
            columns
                // Planned at each run: a generic plan made while `patients`
                // was small would read all of it (see `Q::planned_each_time`).
                .fold(q(UPDATE_PATIENTS).planned_each_time(), crate::tx::Q::bind)
                .bind(now_ms)
                .bind(Arg::Column(Column::Text(
                    records
                        .iter()
                        .map(|(r, _)| Some(r.id.to_string()))
                        .collect(),
                )))
                .bind(Arg::Column(Column::Int(
                    records.iter().map(|(r, _)| Some(r.version)).collect(),
                ))),
        );
    } else {
        for (record, _) in records {
            cleared.push(update_of(record, now_ms));
        }
    }
    let words: Vec<NameWord> = renamed
        .iter()
        .flat_map(|r| name_words(&r.id, r.territory, &r.traits, now_ms))
        .collect();
    words_in(writes, &words);
}

/// [`UPDATE_PATIENT`] for several records, one array per column (PostgreSQL).
const UPDATE_PATIENTS: &str = "UPDATE patients AS p SET birth_name = u.birth_name, given_names = u.given_names, birth_date = u.birth_date, \
    sex = u.sex, birthplace_code = u.birthplace_code, used_name = u.used_name, used_given_name = u.used_given_name, \
    search_name = u.search_name, search_given = u.search_given, ins_kind = u.ins_kind, ins_value = u.ins_value, \
    identity_status = u.identity_status, version = p.version + 1, updated_at_ms = $13 \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
    $10::text[], $11::text[], $12::text[], $14::text[], $15::bigint[]) \
    AS u(birth_name, given_names, birth_date, sex, birthplace_code, used_name, used_given_name, search_name, search_given, \
    ins_kind, ins_value, identity_status, id, version) \
    WHERE p.id = u.id AND p.version = u.version AND p.merged_into IS NULL";

/// A row of `patient_words`: one word of a record's names, with the record's
/// sort key (its birth name and given names as `patients` holds them).
struct NameWord {
    patient: String,
    kind: &'static str,
    word: String,
    territory: String,
    birth_name: String,
    given_names: String,
    /// The record's last change (kept equal to it by a trigger, migration 30).
    updated_at_ms: i64,
    /// The record's words as `patients` holds them (migration 31).
    search_name: String,
    search_given: String,
    /// How many leading characters the word has in common with another word
    /// of the record and kind (migration 32, [`shared_prefix`]).
    shared: i64,
}

/// For each of a record's words of one kind: how many leading characters
/// (Unicode scalar values, as SQL's `length` and `substr` count them) it has
/// in common with another of them, 0 when it is alone.
fn shared_prefix(words: &[String]) -> Vec<i64> {
    let common = |a: &str, b: &str| a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let most = words
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| common(w, o))
                .max()
                .unwrap_or(0);
            i64::try_from(most).unwrap_or(i64::MAX)
        })
        .collect()
}

/// The words of a record's names for `patient_words`: kind 'F' for the birth
/// and used names, 'G' for the given names, each word once; `updated_at_ms`
/// the record's last change as written.
fn name_words(
    id: &PatientId,
    territory: TerritoryId,
    t: &Traits,
    updated_at_ms: i64,
) -> Vec<NameWord> {
    let given_names = t.birth_given_names.join(&GIVEN_SEPARATOR.to_string());
    let (all_names, all_given) = (search_name(t), search_given(t));
    let words = |kind: &'static str, text: &str| {
        let set: std::collections::BTreeSet<String> =
            text.split_whitespace().map(str::to_owned).collect();
        let set: Vec<String> = set.into_iter().collect();
        let shared = shared_prefix(&set);
        let (given_names, all_names, all_given) = (&given_names, &all_names, &all_given);
        set.into_iter()
            .zip(shared)
            .map(move |(word, shared)| NameWord {
                patient: id.to_string(),
                kind,
                word,
                territory: territory.to_string(),
                birth_name: t.birth_name.clone(),
                given_names: given_names.clone(),
                updated_at_ms,
                search_name: all_names.clone(),
                search_given: all_given.clone(),
                shared,
            })
    };
    words("F", &all_names)
        .chain(words("G", &all_given))
        .collect()
}

async fn insert_words(tx: &mut Tx<'_>, words: &[NameWord]) -> Result<()> {
    let mut writes = crate::tx::Writes::default();
    words_in(&mut writes, words);
    Ok(writes.execute(tx).await?)
}

/// The inserts of [`insert_words`], added to `writes`. A record's words are
/// new rows: [`name_words`] gives each once, and a record's words are
/// removed before they are written again; a duplicate is a fault, not a
/// row to skip (and on PostgreSQL `ON CONFLICT` probed the index before each
/// row).
fn words_in(writes: &mut crate::tx::Writes, words: &[NameWord]) {
    writes.insert_many(
        "INSERT INTO patient_words (patient_id, kind, word, territory_id, birth_name, given_names, updated_at_ms, \
         search_name, search_given, shared) VALUES ",
        "",
        10,
        words,
        |query, w| {
            query
                .bind(w.patient.as_str())
                .bind(w.kind)
                .bind(w.word.as_str())
                .bind(w.territory.as_str())
                .bind(w.birth_name.as_str())
                .bind(w.given_names.as_str())
                .bind(w.updated_at_ms)
                .bind(w.search_name.as_str())
                .bind(w.search_given.as_str())
                .bind(w.shared)
        },
    );
}

/// Marks `merged` as merged into `survivor` inside the open transaction,
/// gives the survivor the merged record's links of real care and bumps its
/// version; a conflict when the merged record is merged already. No audit:
/// the caller appends it.
pub(crate) async fn merge(
    tx: &mut Tx<'_>,
    survivor: PatientId,
    merged: PatientId,
    now_ms: i64,
) -> Result<()> {
    let changed = q("UPDATE patients SET merged_into = $1, version = version + 1, updated_at_ms = $2 WHERE id = $3 AND merged_into IS NULL")
        .bind(survivor.to_string())
        .bind(now_ms)
        .bind(merged.to_string())
        .execute(tx)
        .await?;
    if changed == 0 {
        return Err(StoreError::Conflict(crate::Conflict::AlreadyMerged));
    }
    // The survivor gains only the establishments where the merged record had
    // real care (domain::policy::links_after_merge).
    let ids = |v: Vec<String>| -> Result<Vec<EstablishmentId>> {
        v.iter().map(|s| crate::orgs::parse_id(s)).collect()
    };
    let links = "SELECT establishment_id FROM patient_establishments WHERE patient_id = $1";
    let survivor_links = ids(q(links).bind(survivor.to_string()).fetch_column(tx).await?)?;
    let merged_links = ids(q(links).bind(merged.to_string()).fetch_column(tx).await?)?;
    let merged_care = ids(q(
        "SELECT establishment_id FROM encounters WHERE patient_id = $1 \
           UNION SELECT establishment_id FROM appointments WHERE patient_id = $1 \
           UNION SELECT establishment_id FROM enrolments WHERE patient_id = $1 \
           UNION SELECT establishment_id FROM consultations WHERE patient_id = $1 \
           UNION SELECT establishment_id FROM documents WHERE patient_id = $1",
    )
    .bind(merged.to_string())
    .fetch_column(tx)
    .await?)?;
    for e in domain::policy::links_after_merge(&survivor_links, &merged_links, &merged_care) {
        if survivor_links.contains(&e) {
            continue;
        }
        q("INSERT INTO patient_establishments (patient_id, establishment_id, since_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(survivor.to_string())
            .bind(e.to_string())
            .bind(now_ms)
            .execute(tx)
            .await?;
    }
    touch(tx, survivor, now_ms).await
}

impl Store {
    /// Creates an identity, assigning the next IPP of the domain when none is given,
    /// links it to the establishment and records the creation in the audit trail.
    pub async fn create_patient(
        &self,
        p: &NewPatient,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<PatientRecord> {
        let id = PatientId::new();
        // The creation's entry covers the demographics it starts with.
        let w = crate::bundle::Write::CreatePatient { id, new: p, who };
        match self
            .apply_writes(&[w], now_ms)
            .await
            .map_err(|e| e.error)?
            .pop()
        {
            Some(crate::bundle::Written::Created(record)) => Ok(*record),
            _ => Err(StoreError::Corrupt(
                "création : l'identité écrite n'est pas rendue".into(),
            )),
        }
    }

    /// Reads an identity (no audit: the caller audits the access it serves).
    pub async fn patient(&self, id: PatientId) -> Result<PatientRecord> {
        let sql = format!("SELECT {COLUMNS} FROM patients WHERE id = $1");
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            rows_to::<_, PatientRow>(&rows)?
                .into_iter()
                .next()
                .map(PatientRecord::try_from)
                .transpose()?
                .ok_or(StoreError::NotFound)
        })
    }

    /// An identity with the establishments it is linked to (in the order it
    /// was linked), in one statement: what authorising a read needs.
    pub async fn patient_with_links(
        &self,
        id: PatientId,
    ) -> Result<(PatientRecord, Vec<EstablishmentId>)> {
        let sql = format!(
            "SELECT {COLUMNS}, establishment_id FROM patients \
             LEFT JOIN patient_establishments ON patient_id = id WHERE id = $1 ORDER BY since_ms"
        );
        let rows = on_pool!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            crate::tx::q_built(sql)
                .bind(id.to_string())
                .fetch_all(&mut conn.as_tx())
                .await?
        });
        let Some(first) = rows.first() else {
            return Err(StoreError::NotFound);
        };
        let record = PatientRecord::try_from(first.to::<PatientRow>()?)?;
        let links = rows
            .iter()
            .filter_map(|r| r.get::<Option<String>>("establishment_id").transpose())
            .map(|e| parse_id(&e?))
            .collect::<Result<Vec<_>>>()?;
        Ok((record, links))
    }

    /// The establishments a patient is linked to.
    pub async fn patient_establishments(&self, id: PatientId) -> Result<Vec<EstablishmentId>> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let rows = sqlx::query("SELECT establishment_id FROM patient_establishments WHERE patient_id = $1 ORDER BY since_ms")
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| parse_id(&r.try_get::<String, _>("establishment_id")?))
                .collect()
        })
    }

    /// Several identities with the establishments each is linked to, one
    /// query per table and 256 records (a page that names many patients);
    /// the ones not found are left out.
    pub async fn patients_with_links(
        &self,
        ids: &[PatientId],
    ) -> Result<Vec<(PatientRecord, Vec<EstablishmentId>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::tx::MAX_ROWS_PER_INSERT) {
            let list = crate::tx::in_list(chunk.len());
            let bind = |sql: String| {
                chunk
                    .iter()
                    .fold(crate::tx::q_built(sql), |q, id| q.bind(id.to_string()))
            };
            let records = bind(format!(
                "SELECT {COLUMNS} FROM patients WHERE id IN ({list})"
            ));
            let links = bind(format!(
                "SELECT patient_id, establishment_id FROM patient_establishments WHERE patient_id IN ({list}) ORDER BY since_ms"
            ));
            let (records, links) = on_pool!(self, read, |pool| {
                let mut conn = pool.acquire().await?;
                let r = records.fetch_all(&mut conn.as_tx()).await?;
                let l = links.fetch_all(&mut conn.as_tx()).await?;
                (r, l)
            });
            let mut by_patient: std::collections::HashMap<String, Vec<EstablishmentId>> =
                std::collections::HashMap::new();
            for l in &links {
                by_patient
                    .entry(l.get::<String>("patient_id")?)
                    .or_default()
                    .push(parse_id(&l.get::<String>("establishment_id")?)?);
            }
            for r in &records {
                let row = r.to::<PatientRow>()?;
                let links = by_patient.remove(&row.id).unwrap_or_default();
                out.push((PatientRecord::try_from(row)?, links));
            }
        }
        Ok(out)
    }

    /// Links a patient to an establishment (idempotent).
    pub async fn link_patient(
        &self,
        id: PatientId,
        establishment: EstablishmentId,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO patient_establishments (patient_id, establishment_id, since_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id.to_string())
            .bind(establishment.to_string())
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The active record of a qualified identity (its INS exchangeable) that
    /// carries this INS in the domain: whose a document naming that INS is.
    pub async fn qualified_by_ins(
        &self,
        territory: TerritoryId,
        ins: &str,
    ) -> Result<Option<PatientRecord>> {
        let q = PatientQuery {
            ins: Some(ins.to_owned()),
            limit: 5,
            ..Default::default()
        };
        Ok(self
            .search_patients(territory, &q)
            .await?
            .into_iter()
            .find(|p| p.active() && p.status.ins_exchangeable()))
    }

    /// Searches the identities of one domain.
    pub async fn search_patients(
        &self,
        territory: TerritoryId,
        q: &PatientQuery,
    ) -> Result<Vec<PatientRecord>> {
        let query = page_query(territory, q);
        let rows = on_pool!(self, search, |pool| {
            let mut conn = pool.acquire().await?;
            query.fetch_all(&mut conn.as_tx()).await?
        });
        rows.iter()
            .map(|r| PatientRecord::try_from(r.to::<PatientRow>()?))
            .collect()
    }

    /// Replaces traits, INS and status, and applies `demographics`, if the stored
    /// version is `record.version` (optimistic locking); returns the stored record
    /// with its new version. The audit names the demographic parts that changed.
    pub async fn update_patient(
        &self,
        record: &PatientRecord,
        demographics: &DemographicsPatch,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<PatientRecord> {
        let w = crate::bundle::Write::UpdatePatient {
            record,
            demographics,
            who,
        };
        self.apply_writes(&[w], now_ms).await.map_err(|e| e.error)?;
        self.patient(record.id).await
    }

    /// Merges `merged` into `survivor` (same domain, both active, distinct): the
    /// merged-away record points at the survivor and keeps its IPP for look-ups, and
    /// its establishment links move to the survivor. Audited for both records.
    pub async fn merge_patients(
        &self,
        survivor: PatientId,
        merged: PatientId,
        who: &AuditActor,
        now_ms: i64,
    ) -> Result<()> {
        if survivor == merged {
            return Err(StoreError::Conflict(Conflict::SelfMerge));
        }
        let (s, m) = (self.patient(survivor).await?, self.patient(merged).await?);
        if s.territory != m.territory {
            return Err(StoreError::Conflict(Conflict::OtherDomains));
        }
        if !s.active() || !m.active() {
            return Err(StoreError::Conflict(Conflict::AlreadyMerged));
        }
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin_write().await?;
            crate::patients::merge(&mut tx.as_tx(), survivor, merged, now_ms).await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit_for(who, merged, "merge", now_ms))
                .await?;
            crate::audit::append_audit(&mut tx.as_tx(), &audit_for(who, survivor, "merge", now_ms))
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// How many identities of one domain a search matches (paging aside).
    pub async fn count_search_patients(
        &self,
        territory: TerritoryId,
        q: &PatientQuery,
    ) -> Result<i64> {
        // A lone word's matches are counted in the words range alone, one
        // row of each record (the page's own condition).
        let query = match lone_word(q) {
            Some(range) => {
                let one_row = range.one_row_per_record("$3");
                let length = range.length();
                range.query(territory, &[length], false, |rows| {
                    format!(
                        "SELECT COUNT(*) AS n FROM patient_words AS w WHERE {rows} AND {one_row}"
                    )
                })
            }
            None => search_query("SELECT COUNT(*) AS n FROM patients", territory, q, |_| {
                String::new()
            }),
        };
        let row = on_pool!(self, search, |pool| {
            let mut conn = pool.acquire().await?;
            query.fetch_one(&mut conn.as_tx()).await?
        });
        Ok(row.get::<i64>("n")?)
    }

    /// How many identities a domain holds (for dashboards and seeding).
    pub async fn count_patients(&self, territory: TerritoryId) -> Result<i64> {
        on_pool!(self, read, |pool| {
            use sqlx::Row;
            let r = sqlx::query("SELECT COUNT(*) AS n FROM patients WHERE territory_id = $1")
                .bind(territory.to_string())
                .fetch_one(pool)
                .await?;
            Ok(r.try_get::<i64, _>("n")?)
        })
    }
}

impl Store {
    /// The e-mail address a patient gave for their notices, if any.
    pub async fn patient_email(&self, patient: PatientId) -> Result<Option<String>> {
        on_pool!(self, read, |pool| {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT email FROM patient_contacts WHERE patient_id = $1")
                    .bind(patient.to_string())
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|r| r.0))
        })
    }

    /// Records (or, with `None`, forgets) the patient's e-mail address.
    pub async fn set_patient_email(
        &self,
        patient: PatientId,
        email: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        on_pool!(self, write, |pool| {
            match email {
                Some(e) => {
                    sqlx::query(
                        "INSERT INTO patient_contacts (patient_id, email, updated_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (patient_id) DO UPDATE SET email = excluded.email, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(patient.to_string())
                    .bind(e)
                    .bind(now_ms)
                    .execute(pool)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM patient_contacts WHERE patient_id = $1")
                        .bind(patient.to_string())
                        .execute(pool)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{
        IDENTITY_COLUMNS, NAME_COLUMNS, PatientQuery, PatientSort, names_differ, page_query,
        shared_prefix, word_range,
    };
    use crate::tx::{AsTx as _, Q, q, q_built};
    use crate::{Engine, Store};

    #[test]
    fn each_word_counts_the_leading_characters_it_shares_with_another() {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(shared_prefix(&words(&["MARTIN"])), [0], "alone");
        assert_eq!(shared_prefix(&words(&[])), Vec::<i64>::new());
        assert_eq!(
            shared_prefix(&words(&["MARAIS", "MARTEL", "MARTIN", "DUPONT"])),
            [3, 4, 4, 0],
            "the longest of its prefixes shared, with any other word"
        );
        assert_eq!(
            shared_prefix(&words(&["JEAN", "JEANNE"])),
            [4, 4],
            "a word that starts another shares all of it"
        );
        assert_eq!(
            shared_prefix(&words(&["ÉLODIE", "ÉLISE"])),
            [2, 2],
            "characters, not bytes (SQL's length)"
        );
    }

    /// Each instruction of a query's SQLite program (opcode, P1), compiled
    /// with its values bound, as it runs.
    async fn program(store: &Store, query: Q) -> Vec<(String, i64)> {
        let rows = on_pool!(store, read, |pool| {
            let mut conn = pool.acquire().await.unwrap();
            query
                .explained("EXPLAIN")
                .fetch_all(&mut conn.as_tx())
                .await
                .unwrap()
        });
        rows.iter()
            .map(|r| (r.get("opcode").unwrap(), r.get("p1").unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn a_page_reads_its_limit_and_offset_as_it_runs_so_sqlite_keeps_it_prepared() {
        let store = Store::connect(&crate::testing::fresh_sqlite_url())
            .await
            .unwrap();
        assert_eq!(store.engine(), Engine::Sqlite);
        store.migrate(0).await.unwrap();
        // A value bound SQLite compiled into the program: the statement is
        // then prepared again for each value bound to it.
        let compiled = |program: &[(String, i64)], v: i64| {
            program.iter().any(|(op, p1)| op == "Integer" && *p1 == v)
        };
        // The check sees a bare LIMIT's value compiled in (the SQL in pieces:
        // `tx::tests` refuses a bare one in the store's sources).
        let bare = program(
            &store,
            q_built(concat!("SELECT 1 LIMIT ", "$1 OFFSET ", "$2").into())
                .bind(137_i64)
                .bind(59_i64),
        )
        .await;
        assert!(compiled(&bare, 137), "{bare:?}");
        let territory = domain::TerritoryId::new();
        let page = |family: Option<&str>, given: Option<&str>, born: bool, sort| PatientQuery {
            family: family.map(str::to_owned),
            given: given.map(str::to_owned),
            birth_date: born.then(|| jiff::civil::date(1950, 3, 12)),
            sort,
            limit: 137,
            offset: 59,
            ..PatientQuery::default()
        };
        // Each way a page is read: a lone word's (by name, by last change,
        // with a given name), and the general search's.
        for query in [
            page(Some("mar"), None, false, PatientSort::Name),
            page(Some("mar"), None, false, PatientSort::LastUpdatedDesc),
            page(Some("mar"), Some("jea"), false, PatientSort::Name),
            page(None, None, true, PatientSort::Name),
            page(Some("mar"), None, true, PatientSort::Id),
        ] {
            let p = program(&store, page_query(territory, &query)).await;
            assert!(
                p.iter().any(|(op, _)| op == "ResultRow"),
                "{query:?}: {p:?}"
            );
            assert!(
                !compiled(&p, 137) && !compiled(&p, 59),
                "{query:?}: limit or offset compiled in: {p:?}"
            );
        }
    }

    /// A query's plan, its lines joined: SQLite's `EXPLAIN QUERY PLAN`;
    /// PostgreSQL's `EXPLAIN` with sequential scans priced out, so that the
    /// plan shows what the indexes can serve whatever the table's size (a
    /// test's few rows would be read whole).
    async fn plan(store: &Store, query: Q) -> String {
        let (explain, column, setting) = match store.engine() {
            Engine::Sqlite => ("EXPLAIN QUERY PLAN", "detail", None),
            Engine::Postgres => ("EXPLAIN", "QUERY PLAN", Some("enable_seqscan")),
        };
        let rows = on_pool!(store, read, |pool| {
            let mut conn = pool.acquire().await.unwrap();
            if let Some(name) = setting {
                q_built(format!("SET {name} = off"))
                    .execute(&mut conn.as_tx())
                    .await
                    .unwrap();
            }
            let rows = query
                .explained(explain)
                .fetch_all(&mut conn.as_tx())
                .await
                .unwrap();
            if let Some(name) = setting {
                q_built(format!("RESET {name}"))
                    .execute(&mut conn.as_tx())
                    .await
                    .unwrap();
            }
            rows
        });
        rows.iter()
            .map(|r| r.get::<String>(column).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// On PostgreSQL a search's page takes its generic plan on the search
    /// pool from its first run, where a reader (`auto`) plans it for its
    /// values (five times at least, then as it finds cheaper), and
    /// `search_patients` runs it there (`count_search_patients` uses the
    /// same pool; its answer is checked here, its pool by reading it).
    #[tokio::test]
    async fn a_search_takes_its_generic_plan_on_the_postgres_search_pool() {
        let store = Store::connect(&crate::testing::fresh_postgres_url().await.unwrap())
            .await
            .unwrap();
        store.migrate(0).await.unwrap();
        let territory = domain::TerritoryId::new();
        let query = |family: &str| PatientQuery {
            family: Some(family.into()),
            limit: 20,
            ..PatientQuery::default()
        };
        // (generic, custom) plans of the page on one connection of `pool`,
        // after six pages of six names.
        let plans = |pool: &sqlx::PgPool| {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.unwrap();
                for family in ["mar", "ber", "dub", "lam", "gar", "pet"] {
                    page_query(territory, &query(family))
                        .fetch_all(&mut conn.as_tx())
                        .await
                        .unwrap();
                }
                plan_counts(&mut conn, &page_query(territory, &query("mar"))).await
            }
        };
        let crate::Backend::Postgres { read, search, .. } = &store.backend else {
            panic!("a PostgreSQL URL gives the PostgreSQL backend");
        };
        assert_eq!(plans(search).await, (6, 0), "the search pool");
        let (_, custom) = plans(read).await;
        assert!(custom >= 5, "a reader plans it for its values: {custom}");
        // The store's own search runs there: its page once more on one of
        // the pool's connections.
        let before = prepared_runs(search, &page_query(territory, &query("mar"))).await;
        store
            .search_patients(territory, &query("mar"))
            .await
            .unwrap();
        assert_eq!(
            store
                .count_search_patients(territory, &query("mar"))
                .await
                .unwrap(),
            0
        );
        let after = prepared_runs(search, &page_query(territory, &query("mar"))).await;
        assert_eq!(after, before + 1, "the page ran on the search pool");
        store.close().await;
    }

    /// How many times the search pool's connections have run `query`
    /// (generic and custom plans, over all its connections).
    async fn prepared_runs(pool: &sqlx::PgPool, query: &Q) -> i64 {
        let mut total = 0;
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            let mut conn = pool.acquire().await.unwrap();
            let (generic, custom) = plan_counts(&mut conn, query).await;
            total += generic + custom;
            held.push(conn);
        }
        total
    }

    /// The generic and custom plans `query` has had on `conn` (none if it
    /// was never prepared there).
    async fn plan_counts(
        conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
        query: &Q,
    ) -> (i64, i64) {
        let row = q("SELECT COALESCE(SUM(generic_plans), 0)::int8 AS generic, \
               COALESCE(SUM(custom_plans), 0)::int8 AS custom \
             FROM pg_prepared_statements WHERE statement = $1")
        .bind(query.sql().to_owned())
        .fetch_one(&mut conn.as_tx())
        .await
        .unwrap();
        (
            row.get::<i64>("generic").unwrap(),
            row.get::<i64>("custom").unwrap(),
        )
    }

    #[tokio::test]
    async fn a_three_letter_name_is_paged_from_its_bucket_without_a_sort() {
        for (engine, store) in crate::testing::both_backends(0).await.unwrap() {
            let territory = domain::TerritoryId::new();
            store
                .create_territory(
                    &crate::orgs::Territory {
                        id: territory,
                        name: "GHT".into(),
                        oid: "1.2.250.1.999.33".into(),
                    },
                    0,
                )
                .await
                .unwrap();
            // Names spread over a few buckets, as a domain's are.
            for i in 0..240_u32 {
                let stem = ["MAR", "BER", "DUB", "LAM", "GAR", "PET"][(i % 6) as usize];
                let suffix: String = [i / 6 % 26, i / 156 % 26]
                    .iter()
                    .filter_map(|n| char::from_u32(u32::from(b'A') + n))
                    .collect();
                let p = crate::patients::NewPatient {
                    territory,
                    ipp: None,
                    traits: domain::identity::Traits {
                        birth_name: format!("{stem}{suffix}"),
                        birth_given_names: vec![["ANNE", "JEAN", "LUC"][(i % 3) as usize].into()],
                        birth_date: jiff::civil::date(1950, 1, 1),
                        sex: domain::identity::Sex::Female,
                        birthplace_code: None,
                        used_name: None,
                        used_given_name: None,
                    },
                    ins: None,
                    status: domain::identity::IdentityStatus::Provisional,
                    establishment: None,
                    demographics: Default::default(),
                };
                store
                    .create_patient(
                        &p,
                        &domain::audit::AuditActor {
                            kind: "system",
                            id: "test".into(),
                            role: None,
                            establishment: None,
                        },
                        0,
                    )
                    .await
                    .unwrap();
            }
            let page = |given: Option<&str>| PatientQuery {
                family: Some("mar".into()),
                given: given.map(str::to_owned),
                limit: 20,
                ..PatientQuery::default()
            };
            for query in [page(None), page(Some("jea"))] {
                let p = plan(&store, page_query(territory, &query)).await;
                assert!(
                    p.contains("patient_words_prefix"),
                    "{engine} {query:?}: {p}"
                );
                // SQLite has no statistics: the bucket is what keeps it off
                // the primary key's range and its temporary index. (On
                // PostgreSQL, whether the index is read in order or its
                // rows sorted after a bitmap scan is its statistics' choice;
                // at 100,000 records it is read in order, benches/README.md.)
                if engine == "sqlite" {
                    assert!(
                        !p.contains("FOR DISTINCT") && !p.contains("PRIMARY KEY"),
                        "{engine} {query:?}: {p}"
                    );
                }
            }
            // A given name alone has no bucket (the index holds family
            // names' words): its range is read and sorted.
            let given = PatientQuery {
                family: None,
                ..page(Some("jea"))
            };
            let p = plan(&store, page_query(territory, &given)).await;
            assert!(!p.contains("patient_words_prefix"), "{engine}: {p}");
            // Any other range (a given name, another order, a longer name)
            // keeps one row of each record without telling them apart in a
            // temporary index.
            let others = [
                given,
                PatientQuery {
                    sort: PatientSort::LastUpdatedDesc,
                    offset: 20,
                    ..page(None)
                },
                PatientQuery {
                    family: Some("mara".into()),
                    ..page(None)
                },
            ];
            for query in others {
                let p = plan(&store, page_query(territory, &query)).await;
                if engine == "sqlite" {
                    assert!(
                        !p.contains("FOR DISTINCT") && p.contains("PRIMARY KEY"),
                        "{engine} {query:?}: {p}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_a_change_of_names_rewrites_the_words() {
        let same: [Option<String>; 12] = std::array::from_fn(|c| Some(format!("v{c}")));
        assert!(!names_differ(&same, &same.clone()));
        for (c, column) in IDENTITY_COLUMNS.iter().enumerate() {
            let mut other = same.clone();
            other[c] = Some("autre".into());
            assert_eq!(
                names_differ(&same, &other),
                NAME_COLUMNS.contains(column),
                "{column}"
            );
            // A name removed is a change too.
            other[c] = None;
            assert_eq!(
                names_differ(&same, &other),
                NAME_COLUMNS.contains(column),
                "{column}"
            );
        }
        // Every name column is one of the identity's.
        assert!(NAME_COLUMNS.iter().all(|c| IDENTITY_COLUMNS.contains(c)));
    }

    #[test]
    fn a_name_criterion_reads_the_range_its_first_word_starts() {
        assert_eq!(
            word_range("Mar"),
            Some(("MAR".to_owned(), Some("MAS".to_owned())))
        );
        // Accents, case and hyphens as the stored words have them; the
        // first word only (LIKE keeps the exact matches).
        assert_eq!(
            word_range("hélène-dup"),
            Some(("HELENE".to_owned(), Some("HELENF".to_owned())))
        );
        assert_eq!(
            word_range("lenz"),
            Some(("LENZ".to_owned(), Some("LEN[".to_owned())))
        );
        // Wildcards are not letters of a word.
        assert_eq!(
            word_range("ma%_"),
            Some(("MA".to_owned(), Some("MB".to_owned())))
        );
        assert_eq!(word_range("%"), None);
        assert_eq!(word_range("  "), None);
        // A last character that cannot be raised leaves the range open above.
        assert_eq!(
            word_range("A\u{10FFFF}"),
            Some(("A\u{10FFFF}".to_owned(), None))
        );
    }
}
