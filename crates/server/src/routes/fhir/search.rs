//! What every FHIR search shares, in one place: the common parameters
//! (`_count`, `_offset`, `_sort`, `_lastUpdated`, `_summary=count`,
//! `_include`, `_revinclude`), unknown parameters under
//! `Prefer: handling=strict|lenient` (lenient by default: ignored and listed
//! in the Bundle's OperationOutcome), and the searchset Bundle itself
//! (`total`, paging links, included resources in `search.mode = include`).
//!
//! A handler accepts its own parameters with [`SearchQuery::accept`], finds
//! the matches, and answers with [`Search::respond`]; the Patient search pages
//! in the store instead ([`Search::respond_page`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jiff::Timestamp;
use serde_json::json;

use super::*;

/// The parameters every type takes.
pub(super) const COMMON: [&str; 8] = [
    "_count",
    "_offset",
    "_sort",
    "_lastUpdated",
    "_summary",
    "_include",
    "_revinclude",
    "_format",
];

/// Default and largest page.
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 200;

/// The pairs `_include` follows (on the searched type) and `_revinclude`
/// brings back (on a Patient search): `Type:parameter`.
pub(super) const INCLUDES: [&str; 8] = [
    "HealthcareService:location",
    "Encounter:patient",
    "Encounter:subject",
    "DocumentReference:patient",
    "DocumentReference:subject",
    "Appointment:patient",
    "Appointment:actor",
    "Appointment:practitioner",
];

/// A search request as it came: its query string and the `Prefer` handling.
pub(super) struct SearchQuery {
    raw: String,
    strict: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for SearchQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let strict = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"));
        Ok(SearchQuery {
            raw: parts.uri.query().unwrap_or("").to_owned(),
            strict,
        })
    }
}

/// `_lastUpdated` comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One `_lastUpdated` bound: the instant range `[from, to)` its value covers
/// (a day for a date, a second for an instant), compared as `cmp`.
#[derive(Debug, Clone, Copy)]
struct Bound {
    cmp: Cmp,
    from_ms: i64,
    to_ms: i64,
}

impl Bound {
    fn parse(v: &str) -> Result<Bound, AppError> {
        let (cmp, rest) = match v.get(..2) {
            Some("eq") => (Cmp::Eq, &v[2..]),
            Some("gt") => (Cmp::Gt, &v[2..]),
            Some("ge") => (Cmp::Ge, &v[2..]),
            Some("lt") => (Cmp::Lt, &v[2..]),
            Some("le") => (Cmp::Le, &v[2..]),
            _ => (Cmp::Eq, v),
        };
        let bad = || {
            AppError::BadRequest(
                "invalid",
                format!(
                    "_lastUpdated {v:?}: [eq|gt|ge|lt|le]AAAA-MM-JJ ou un instant (2026-11-30T10:00:00Z) attendu"
                ),
            )
        };
        if let Ok(d) = rest.parse::<jiff::civil::Date>() {
            let start = d
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(|_| bad())?
                .timestamp()
                .as_millisecond();
            return Ok(Bound {
                cmp,
                from_ms: start,
                to_ms: start + 86_400_000,
            });
        }
        let t: Timestamp = rest.parse().map_err(|_| bad())?;
        let ms = t.as_millisecond();
        Ok(Bound {
            cmp,
            from_ms: ms,
            to_ms: ms + 1000,
        })
    }

    fn matches(&self, ms: i64) -> bool {
        match self.cmp {
            Cmp::Eq => self.from_ms <= ms && ms < self.to_ms,
            Cmp::Gt => ms >= self.to_ms,
            Cmp::Ge => ms >= self.from_ms,
            Cmp::Lt => ms < self.from_ms,
            Cmp::Le => ms < self.to_ms,
        }
    }
}

/// What `_sort` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    LastUpdated,
    Id,
    Date,
}

/// An accepted search: the type's own parameters in `list`, the common ones read.
pub(super) struct Search {
    resource: &'static str,
    /// The parameters (the type's own and the common ones; ignored ones left out).
    pub(super) list: Vec<(String, String)>,
    ignored: Vec<String>,
    count: usize,
    offset: usize,
    sort: Vec<(SortKey, bool)>,
    last_updated: Vec<Bound>,
    summary_count: bool,
    include: Vec<String>,
    revinclude: Vec<String>,
    /// Resources the handler includes itself.
    extra: Vec<Value>,
    /// The type's usual parameters, matched on what the handler found.
    matchers: Vec<Matcher>,
}

/// A usual parameter as given.
#[derive(Debug, Clone)]
enum Matcher {
    Token(&'static [&'static str], String),
    Date(&'static [&'static str], Bound),
}

impl Matcher {
    fn matches(&self, r: &Value) -> bool {
        match self {
            Matcher::Token(path, wanted) => token_matches(r, path, wanted),
            Matcher::Date(path, b) => instant_at(r, path).is_some_and(|ms| b.matches(ms)),
        }
    }
}

/// The types whose resources carry `meta.lastUpdated` (`_lastUpdated` and
/// `_sort=_lastUpdated` are refused elsewhere rather than answering nothing).
const LAST_UPDATED: [&str; 9] = [
    "AuditEvent",
    "List",
    "Patient",
    "Encounter",
    "Observation",
    "QuestionnaireResponse",
    "Communication",
    "Location",
    "Subscription",
];

/// Every value at `path`, arrays flattened at each step.
fn values_at<'a>(r: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut here = vec![r];
    for key in path {
        let mut next = Vec::new();
        for v in here {
            match v.get(key) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(x) => next.push(x),
                None => {}
            }
        }
        here = next;
    }
    here
}

/// Whether a token parameter's value (`a,b`: either) matches one of the
/// codes at `path` (a plain code, or Codings with their system).
fn token_matches(r: &Value, path: &[&str], wanted: &str) -> bool {
    let found: Vec<(Option<&str>, &str)> = values_at(r, path)
        .into_iter()
        .filter_map(|v| match v {
            Value::String(code) => Some((None, code.as_str())),
            Value::Object(_) => Some((
                v.get("system").and_then(Value::as_str),
                v.get("code").and_then(Value::as_str)?,
            )),
            _ => None,
        })
        .collect();
    wanted.split(',').any(|w| {
        let (system, code) = match w.split_once('|') {
            Some((s, c)) => (Some(s), c),
            None => (None, w),
        };
        found.iter().any(|(s, c)| {
            *c == code
                && match system {
                    None => true,
                    Some("") => s.is_none(),
                    Some(sys) => *s == Some(sys),
                }
        })
    })
}

/// Where a type's `date` is, for `_sort=date`.
fn date_path(resource: &str) -> Option<&'static [&'static str]> {
    match resource {
        "Encounter" => Some(&["period", "start"]),
        "Appointment" => Some(&["start"]),
        "DocumentReference" => Some(&["date"]),
        "Observation" => Some(&["effectiveDateTime"]),
        "QuestionnaireResponse" => Some(&["authored"]),
        "Communication" => Some(&["sent"]),
        "Flag" => Some(&["period", "start"]),
        "Task" => Some(&["authoredOn"]),
        "AuditEvent" => Some(&["recorded"]),
        "MedicationRequest" => Some(&["authoredOn"]),
        _ => None,
    }
}

fn invalid(msg: String) -> AppError {
    AppError::BadRequest("invalid", msg)
}

impl SearchQuery {
    /// Reads the query of a `resource` search whose own parameters are `own`:
    /// the common parameters are checked; an unknown one is refused under
    /// `Prefer: handling=strict`, else ignored and reported.
    pub(super) fn accept(self, resource: &'static str, own: &[&str]) -> Result<Search, AppError> {
        let all: Vec<(String, String)> = serde_urlencoded::from_str(&self.raw)
            .map_err(|_| invalid("chaîne de requête illisible".into()))?;
        let mut list = Vec::with_capacity(all.len());
        let mut ignored = Vec::new();
        // The type's usual parameters (the table the CapabilityStatement lists).
        let usual = interop::fhir::usual_params(resource);
        for (k, v) in all {
            // A modifier (`family:exact`) is a parameter this server does not know.
            let is_usual = usual.iter().any(|(n, _, _)| *n == k);
            if own.contains(&k.as_str()) || COMMON.contains(&k.as_str()) || is_usual {
                list.push((k, v));
            } else if self.strict {
                return Err(AppError::BadRequest(
                    "not-supported",
                    format!(
                        "paramètre de recherche non pris en charge pour {resource}: {k} (acceptés: {}, et {})",
                        own.iter()
                            .copied()
                            .chain(usual.iter().map(|(n, _, _)| *n))
                            .collect::<Vec<_>>()
                            .join(", "),
                        COMMON.join(", ")
                    ),
                ));
            } else if !ignored.contains(&k) {
                ignored.push(k);
            }
        }
        let number = |name: &str, default: usize| -> Result<usize, AppError> {
            match param(&list, name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("{name}: entier positif attendu"))),
            }
        };
        let count = number("_count", DEFAULT_COUNT)?.min(MAX_COUNT);
        let offset = number("_offset", 0)?;
        let mut sort = Vec::new();
        for v in list.iter().filter(|(k, _)| k == "_sort").map(|(_, v)| v) {
            for key in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                let (desc, name) = match key.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, key),
                };
                let k = match name {
                    "_lastUpdated" if LAST_UPDATED.contains(&resource) => SortKey::LastUpdated,
                    "_id" => SortKey::Id,
                    "date" if date_path(resource).is_some() => SortKey::Date,
                    other => {
                        return Err(AppError::BadRequest(
                            "not-supported",
                            format!(
                                "_sort={other} non pris en charge pour {resource} (_id{}{})",
                                if LAST_UPDATED.contains(&resource) {
                                    ", _lastUpdated"
                                } else {
                                    ""
                                },
                                if date_path(resource).is_some() {
                                    ", date"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                };
                sort.push((k, desc));
            }
        }
        let last_updated = list
            .iter()
            .filter(|(k, _)| k == "_lastUpdated")
            .map(|(_, v)| Bound::parse(v))
            .collect::<Result<Vec<_>, _>>()?;
        // The usual parameters, read now (a bad date is a 400 before any read).
        let mut matchers = Vec::new();
        for (name, kind, path) in usual {
            for v in list.iter().filter(|(k, _)| k == name).map(|(_, v)| v) {
                matchers.push(match kind {
                    interop::fhir::ParamKind::Token => Matcher::Token(path, v.clone()),
                    interop::fhir::ParamKind::Date => Matcher::Date(
                        path,
                        Bound::parse(v).map_err(|_| {
                            invalid(format!(
                                "{name} {v:?}: [eq|gt|ge|lt|le]AAAA-MM-JJ ou un instant attendu"
                            ))
                        })?,
                    ),
                });
            }
        }
        if !last_updated.is_empty() && !LAST_UPDATED.contains(&resource) {
            return Err(AppError::BadRequest(
                "not-supported",
                format!(
                    "_lastUpdated non pris en charge pour {resource} (ses ressources ne portent pas meta.lastUpdated ; {})",
                    LAST_UPDATED.join(", ")
                ),
            ));
        }
        // `_count=0` asks for the total alone, as `_summary=count` does.
        let summary_count = match param(&list, "_summary") {
            None | Some("false") => count == 0,
            Some("count") => true,
            Some(other) => {
                return Err(AppError::BadRequest(
                    "not-supported",
                    format!("_summary={other} non pris en charge (count ou false)"),
                ));
            }
        };
        let pairs = |name: &str, on: &dyn Fn(&str) -> bool| -> Result<Vec<String>, AppError> {
            let mut out = Vec::new();
            for v in list.iter().filter(|(k, _)| k == name).map(|(_, v)| v) {
                if !INCLUDES.contains(&v.as_str()) || !on(v) {
                    return Err(AppError::BadRequest(
                        "not-supported",
                        format!(
                            "{name}={v} non pris en charge pour {resource} (pris en charge: {})",
                            INCLUDES.join(", ")
                        ),
                    ));
                }
                out.push(v.clone());
            }
            Ok(out)
        };
        let include = pairs("_include", &|v: &str| v.split(':').next() == Some(resource))?;
        let revinclude = pairs("_revinclude", &|_: &str| resource == "Patient")?;
        Ok(Search {
            resource,
            list,
            ignored,
            count,
            offset,
            sort,
            last_updated,
            summary_count,
            include,
            revinclude,
            extra: Vec::new(),
            matchers,
        })
    }
}

/// `{base}/{resourceType}/{id}`: a searchset entry's fullUrl.
pub(super) fn full_url(base: &str, r: &Value) -> String {
    format!(
        "{base}/{}/{}",
        r.get("resourceType").and_then(Value::as_str).unwrap_or(""),
        r.get("id").and_then(Value::as_str).unwrap_or("")
    )
}

/// A searchset entry of `r` in `mode` (match, include). `r` is moved in:
/// `json!` would copy a `Value` given to it, member by member.
pub(super) fn entry(base: &str, r: Value, mode: &str) -> Value {
    let mut e = json!({"fullUrl": full_url(base, &r), "search": {"mode": mode}});
    if let Some(o) = e.as_object_mut() {
        o.insert("resource".into(), r);
    }
    e
}

/// A searchset Bundle of `entries` with its `links`, both moved in (see
/// [`entry`]).
pub(super) fn searchset(links: Vec<Value>, entries: Vec<Value>, total: Option<usize>) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("resourceType".into(), "Bundle".into());
    o.insert("type".into(), "searchset".into());
    if let Some(t) = total {
        o.insert("total".into(), t.into());
    }
    o.insert("link".into(), Value::Array(links));
    o.insert("entry".into(), Value::Array(entries));
    Value::Object(o)
}

/// `meta.lastUpdated` (or the type's date) in Unix ms.
fn instant_at(r: &Value, path: &[&str]) -> Option<i64> {
    let v = interop::json_at(r, path).as_str()?;
    if let Ok(t) = v.parse::<Timestamp>() {
        return Some(t.as_millisecond());
    }
    let d: jiff::civil::Date = v.get(..10)?.parse().ok()?;
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

impl Search {
    /// The page size asked (`_count`, 50 by default, 200 at most).
    pub(super) fn count(&self) -> usize {
        self.count
    }
    /// The matches to skip (`_offset`).
    pub(super) fn offset(&self) -> usize {
        self.offset
    }
    /// Whether only the total is asked (`_summary=count`).
    pub(super) fn summary_count(&self) -> bool {
        self.summary_count
    }
    /// The `_lastUpdated` bounds as an inclusive range of Unix ms (for a store
    /// that filters itself).
    pub(super) fn last_updated_range(&self) -> (Option<i64>, Option<i64>) {
        let (mut min, mut max): (Option<i64>, Option<i64>) = (None, None);
        for b in &self.last_updated {
            let (lo, hi) = match b.cmp {
                Cmp::Eq => (Some(b.from_ms), Some(b.to_ms - 1)),
                Cmp::Gt => (Some(b.to_ms), None),
                Cmp::Ge => (Some(b.from_ms), None),
                Cmp::Lt => (None, Some(b.from_ms - 1)),
                Cmp::Le => (None, Some(b.to_ms - 1)),
            };
            if let Some(lo) = lo {
                min = Some(min.map_or(lo, |m| m.max(lo)));
            }
            if let Some(hi) = hi {
                max = Some(max.map_or(hi, |m| m.min(hi)));
            }
        }
        (min, max)
    }
    /// Whether `_include` names `pair` (for the pairs a handler includes itself).
    pub(super) fn wants_include(&self, pair: &str) -> bool {
        self.include.iter().any(|i| i == pair)
    }
    /// Adds resources the handler includes itself (`search.mode = include`).
    pub(super) fn with_included(mut self, resources: Vec<Value>) -> Self {
        self.extra.extend(resources);
        self
    }
    /// The `_sort` keys (`_lastUpdated`, `_id`, `date`) and whether descending.
    pub(super) fn sort_names(&self) -> Vec<(&'static str, bool)> {
        self.sort
            .iter()
            .map(|(k, desc)| {
                let name = match k {
                    SortKey::LastUpdated => "_lastUpdated",
                    SortKey::Id => "_id",
                    SortKey::Date => "date",
                };
                (name, *desc)
            })
            .collect()
    }
    /// Whether `_sort` asks for anything.
    pub(super) fn sorted(&self) -> bool {
        !self.sort.is_empty()
    }

    /// The matches filtered by `_lastUpdated`, sorted by `_sort`, paged, with
    /// the resources `_include` / `_revinclude` name.
    pub(super) async fn respond(
        self,
        state: &AppState,
        api: &ApiActor,
        mut matches: Vec<Value>,
    ) -> ApiResult {
        matches.retain(|r| self.matchers.iter().all(|m| m.matches(r)));
        if !self.last_updated.is_empty() {
            matches.retain(|r| {
                instant_at(r, &["meta", "lastUpdated"])
                    .is_some_and(|ms| self.last_updated.iter().all(|b| b.matches(ms)))
            });
        }
        for (key, desc) in self.sort.iter().rev() {
            let path: &[&str] = match key {
                SortKey::LastUpdated => &["meta", "lastUpdated"],
                SortKey::Id => &["id"],
                SortKey::Date => date_path(self.resource).unwrap_or(&[]),
            };
            // Stable: the earlier keys, applied last, win.
            matches.sort_by(|a, b| {
                let o = if *key == SortKey::Id {
                    interop::json_at(a, path)
                        .as_str()
                        .cmp(&interop::json_at(b, path).as_str())
                } else {
                    instant_at(a, path).cmp(&instant_at(b, path))
                };
                if *desc { o.reverse() } else { o }
            });
        }
        let total = matches.len();
        let page: Vec<Value> = matches
            .into_iter()
            .skip(self.offset)
            .take(self.count)
            .collect();
        let has_more = self.offset + page.len() < total;
        self.respond_page(state, api, page, Some(total), has_more)
            .await
    }

    /// Only the total (`_summary=count`).
    pub(super) fn respond_count(self, state: &AppState, total: usize) -> ApiResult {
        let b = base(state);
        let mut bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": [{"relation": "self", "url": self.url(&b, None)}],
        });
        if let (Some(o), Some(obj)) = (self.outcome(), bundle.as_object_mut()) {
            obj.insert(
                "entry".into(),
                json!([{"resource": o, "search": {"mode": "outcome"}}]),
            );
        }
        Ok(fhir(StatusCode::OK, &bundle))
    }

    fn url(&self, base: &str, offset: Option<usize>) -> String {
        let mut kept: Vec<(String, String)> = self
            .list
            .iter()
            .filter(|(k, _)| k != "_offset" || offset.is_none())
            .cloned()
            .collect();
        if let Some(o) = offset {
            kept.push(("_offset".into(), o.to_string()));
        }
        let qs = serde_urlencoded::to_string(&kept).unwrap_or_default();
        if qs.is_empty() {
            format!("{base}/{}", self.resource)
        } else {
            format!("{base}/{}?{qs}", self.resource)
        }
    }

    /// What was ignored, said once for the OperationOutcomes, if anything.
    fn ignored_note(&self) -> Option<String> {
        (!self.ignored.is_empty()).then(|| {
            format!(
                "paramètres ignorés (Prefer: handling=lenient): {}",
                self.ignored.join(", ")
            )
        })
    }

    /// The OperationOutcome listing what was ignored, if anything.
    fn outcome(&self) -> Option<Value> {
        self.ignored_note()
            .map(|n| f::operation_outcome("warning", "not-supported", &n))
    }

    /// A page the store already filtered, sorted and cut (`has_more`: a next
    /// page), with its links and includes.
    pub(super) async fn respond_page(
        mut self,
        state: &AppState,
        api: &ApiActor,
        page: Vec<Value>,
        total: Option<usize>,
        has_more: bool,
    ) -> ApiResult {
        if self.summary_count {
            return self.respond_count(state, total.unwrap_or(page.len()));
        }
        let b = base(state);
        let mut links = vec![json!({"relation": "self", "url": self.url(&b, None)})];
        links.push(json!({"relation": "first", "url": self.url(&b, Some(0))}));
        if self.offset > 0 {
            let prev = self.offset.saturating_sub(self.count);
            links.push(json!({"relation": "previous", "url": self.url(&b, Some(prev))}));
        }
        if has_more {
            links.push(
                json!({"relation": "next", "url": self.url(&b, Some(self.offset + self.count))}),
            );
        }
        let mut omitted = Vec::new();
        let mut more = self.included(state, api, &page, &mut omitted).await?;
        more.extend(std::mem::take(&mut self.extra));
        let mut entries: Vec<Value> = page.into_iter().map(|r| entry(&b, r, "match")).collect();
        let mut seen: Vec<String> = entries
            .iter()
            .filter_map(|e| e["fullUrl"].as_str().map(str::to_owned))
            .collect();
        for extra in more {
            let url = full_url(&b, &extra);
            if !seen.contains(&url) {
                entries.push(entry(&b, extra, "include"));
                seen.push(url);
            }
        }
        let mut notes: Vec<String> = self.ignored_note().into_iter().collect();
        if !omitted.is_empty() {
            notes.push(format!(
                "ressources incluses omises (hors de vos droits ou introuvables): {}",
                omitted.join(", ")
            ));
        }
        if !notes.is_empty() {
            entries.push(json!({
                "resource": f::operation_outcome("warning", "informational", &notes.join("; ")),
                "search": {"mode": "outcome"},
            }));
        }
        Ok(fhir(StatusCode::OK, &searchset(links, entries, total)))
    }

    /// The resources `_include` and `_revinclude` add to `page`; the references
    /// that could not be read are named in `omitted`.
    async fn included(
        &self,
        state: &AppState,
        api: &ApiActor,
        page: &[Value],
        omitted: &mut Vec<String>,
    ) -> Result<Vec<Value>, AppError> {
        let mut out = Vec::new();
        let mut refs: Vec<String> = Vec::new();
        for inc in &self.include {
            let param = inc.split(':').nth(1).unwrap_or("");
            for r in page {
                match (self.resource, param) {
                    ("Encounter" | "DocumentReference", "patient" | "subject") => {
                        if let Some(x) = interop::json_at(r, &["subject", "reference"]).as_str() {
                            refs.push(x.to_owned());
                        }
                    }
                    ("Appointment", _) => {
                        let want = match param {
                            "patient" => "Patient/",
                            "practitioner" => "Practitioner/",
                            _ => "",
                        };
                        for p in interop::json_at(r, &["participant"])
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            if let Some(x) = interop::json_at(p, &["actor", "reference"]).as_str()
                                && x.starts_with(want)
                            {
                                refs.push(x.to_owned());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        refs.dedup();
        let mut done: Vec<String> = Vec::new();
        for reference in refs {
            if done.contains(&reference) {
                continue;
            }
            done.push(reference.clone());
            match resolve(state, api, &reference).await {
                Ok(Some(v)) => out.push(v),
                Ok(None) => omitted.push(reference),
                Err(AppError::Forbidden(_) | AppError::NotFound(_)) => omitted.push(reference),
                Err(e) => return Err(e),
            }
        }
        for rev in &self.revinclude {
            let kind = rev.split(':').next().unwrap_or("");
            for p in page {
                let Some(pid) = p
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|i| i.parse::<PatientId>().ok())
                else {
                    continue;
                };
                let found = match kind {
                    "Encounter" => care::encounters_json(state, &api.actor, pid).await,
                    "DocumentReference" => {
                        documents::document_references_json(state, &api.actor, pid).await
                    }
                    "Appointment" => schedule::appointments_json(state, &api.actor, pid).await,
                    _ => Ok(Vec::new()),
                };
                match found {
                    Ok(list) => out.extend(list),
                    Err(AppError::Forbidden(_) | AppError::NotFound(_)) => {
                        omitted.push(format!("{kind}?patient={pid}"));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}

/// The resource a reference names (Patient and Practitioner), as the client
/// may read it; `None` for another kind.
async fn resolve(
    state: &AppState,
    api: &ApiActor,
    reference: &str,
) -> Result<Option<Value>, AppError> {
    let Some((kind, id)) = reference.split_once('/') else {
        return Ok(None);
    };
    match kind {
        "Patient" => {
            let p = patients::read(state.ctx(), &api.actor, patient_id(id)?).await?;
            let oid = domain_oid(state, p.territory).await?;
            Ok(Some(patient_resource(state, &p, &oid).await?))
        }
        "Practitioner" => {
            let Ok(uid) = id.parse::<UserId>() else {
                return Ok(None);
            };
            Ok(directory::practitioner_json(state, api, uid).await?)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn last_updated_bounds() {
        let cases = [
            ("2026-11-30", "2026-11-30T12:00:00Z", true),
            ("2026-11-30", "2026-12-01T00:00:00Z", false),
            ("ge2026-11-30", "2026-11-30T00:00:00Z", true),
            ("gt2026-11-30", "2026-11-30T23:59:59Z", false),
            ("gt2026-11-30", "2026-12-01T00:00:00Z", true),
            ("lt2026-11-30", "2026-11-29T23:59:59Z", true),
            ("lt2026-11-30", "2026-11-30T00:00:00Z", false),
            ("le2026-11-30", "2026-11-30T23:59:59Z", true),
            ("ge2026-11-30T10:00:00Z", "2026-11-30T09:59:59Z", false),
            ("ge2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z", true),
        ];
        for (bound, instant, want) in cases {
            let b = Bound::parse(bound).unwrap();
            assert_eq!(b.matches(at(instant)), want, "{bound} vs {instant}");
        }
        for bad in ["yesterday", "ge2026-13-01", "ne2026-11-30"] {
            assert!(Bound::parse(bad).is_err(), "{bad}");
        }
    }

    fn q(raw: &str, strict: bool) -> SearchQuery {
        SearchQuery {
            raw: raw.into(),
            strict,
        }
    }

    #[test]
    fn usual_parameters_match_codes_codings_and_dates() {
        let obs = json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}, {"code": "spo2"}]},
            "effectiveDateTime": "2026-11-18T07:30:00Z"
        });
        let ok = |raw: &str| {
            let s = q(raw, true).accept("Observation", &["patient"]).unwrap();
            s.matchers.iter().all(|m| m.matches(&obs))
        };
        assert!(ok("code=http://loinc.org|59408-5"));
        assert!(ok("code=59408-5"));
        assert!(ok("code=|spo2"), "a Coding without system");
        assert!(!ok("code=|59408-5"), "it has a system");
        assert!(!ok("code=http://snomed.info/sct|59408-5"));
        assert!(ok("code=8310-5,59408-5"), "a comma is an or");
        assert!(ok("category=vital-signs&status=final"));
        assert!(!ok("status=amended"));
        assert!(ok("date=2026-11-18"));
        assert!(ok(
            "date=ge2026-11-18T07:00:00Z&date=lt2026-11-18T08:00:00Z"
        ));
        assert!(!ok("date=gt2026-11-18"));
        assert!(!ok("date=lt2026-11-18T07:30:00Z"));
        // A bad date is refused before any read; a parameter of another type is unknown.
        match q("date=hier", false).accept("Observation", &[]) {
            Err(AppError::BadRequest(_, m)) => assert!(m.contains("date"), "{m}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        match q("priority=stat", true).accept("Observation", &["patient"]) {
            Err(AppError::BadRequest(_, m)) => assert!(m.contains("code, category"), "{m}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // A plain code (a Task's priority), a Coding (an Encounter's class).
        let task = json!({"status": "requested", "priority": "stat"});
        let s = q("priority=stat&status=requested", true)
            .accept("Task", &[])
            .unwrap();
        assert!(s.matchers.iter().all(|m| m.matches(&task)));
        let enc = json!({"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}});
        let s = q("class=VR", true).accept("Encounter", &[]).unwrap();
        assert!(s.matchers.iter().all(|m| m.matches(&enc)));
        let s = q("class=IMP", true).accept("Encounter", &[]).unwrap();
        assert!(!s.matchers.iter().all(|m| m.matches(&enc)));
    }

    #[test]
    fn unknown_parameters_follow_prefer_handling() {
        let s = q("patient=1&foo=2&foo=3&family:exact=x", false)
            .accept("Encounter", &["patient"])
            .unwrap();
        assert_eq!(s.ignored, ["foo", "family:exact"]);
        assert_eq!(s.list, [("patient".to_owned(), "1".to_owned())]);
        let Err(AppError::BadRequest(code, msg)) =
            q("patient=1&foo=2", true).accept("Encounter", &["patient"])
        else {
            panic!("strict refuses")
        };
        assert_eq!(code, "not-supported");
        assert!(msg.contains("foo"), "{msg}");
    }

    #[test]
    fn common_parameters_are_checked() {
        let s = q(
            "_count=500&_offset=10&_sort=-date,_id&_summary=count",
            false,
        )
        .accept("Encounter", &[])
        .unwrap();
        assert_eq!((s.count(), s.offset(), s.summary_count()), (200, 10, true));
        assert_eq!(s.sort, [(SortKey::Date, true), (SortKey::Id, false)]);
        let s = q("_lastUpdated=ge2026-11-01&_lastUpdated=lt2026-12-01", false)
            .accept("Patient", &[])
            .unwrap();
        let (lo, hi) = s.last_updated_range();
        assert_eq!(lo, Some(at("2026-11-01T00:00:00Z")));
        assert_eq!(hi, Some(at("2026-12-01T00:00:00Z") - 1));
        for (raw, resource, needle) in [
            ("_count=-1", "Encounter", "_count"),
            ("_sort=date", "Patient", "_sort=date"),
            ("_sort=family", "Encounter", "_sort=family"),
            ("_summary=true", "Encounter", "_summary=true"),
            (
                "_include=Encounter:location",
                "Encounter",
                "_include=Encounter:location",
            ),
            (
                "_include=Appointment:patient",
                "Encounter",
                "_include=Appointment:patient",
            ),
            ("_revinclude=Encounter:patient", "Encounter", "_revinclude"),
            ("_lastUpdated=hier", "Encounter", "_lastUpdated"),
            ("_lastUpdated=ge2026-01-01", "Flag", "meta.lastUpdated"),
            ("_sort=-_lastUpdated", "Appointment", "_sort=_lastUpdated"),
        ] {
            match q(raw, false).accept(resource, &[]) {
                Err(AppError::BadRequest(_, m)) => assert!(m.contains(needle), "{raw}: {m}"),
                Err(e) => panic!("{raw}: {e:?}"),
                Ok(_) => panic!("{raw}: accepted"),
            }
        }
        let s = q("_revinclude=Encounter:patient&_include=Patient:x", false).accept("Patient", &[]);
        assert!(s.is_err(), "Patient:x is not a pair");
        let s = q(
            "_revinclude=Encounter:patient&_revinclude=Appointment:patient",
            false,
        )
        .accept("Patient", &[])
        .unwrap();
        assert_eq!(s.revinclude.len(), 2);
    }
}
