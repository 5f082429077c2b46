//! A transaction on either backend as one small type, so that a piece of a
//! transaction (insert a patient, merge two records, append to the audit
//! trail…) is an ordinary `async fn` the compiler and the editor follow,
//! rather than a macro expanded once per backend.
//!
//! A query is written once with `$n` placeholders (SQLite accepts them too),
//! its values bound as [`Arg`]s, and run on [`Tx`]: the borrowed connection of
//! an open SQLite or PostgreSQL transaction. Rows come back as [`Row`], read
//! by column name into any type both backends decode ([`Value`]).

use std::borrow::Cow;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row as _, Sqlite, SqliteConnection};

use crate::macros::FromDbRow;

/// The open transaction's connection, on either backend.
pub(crate) enum Tx<'t> {
    /// SQLite.
    Lite(&'t mut SqliteConnection),
    /// PostgreSQL.
    Pg(&'t mut PgConnection),
}

/// Borrows an open transaction as a [`Tx`].
pub(crate) trait AsTx {
    /// The transaction as a [`Tx`].
    fn as_tx(&mut self) -> Tx<'_>;
}

impl AsTx for sqlx::Transaction<'_, Sqlite> {
    fn as_tx(&mut self) -> Tx<'_> {
        Tx::Lite(self)
    }
}

/// A reborrow, for a piece of a transaction that calls another.
impl AsTx for Tx<'_> {
    fn as_tx(&mut self) -> Tx<'_> {
        match self {
            Tx::Lite(c) => Tx::Lite(c),
            Tx::Pg(c) => Tx::Pg(c),
        }
    }
}

impl AsTx for sqlx::Transaction<'_, Postgres> {
    fn as_tx(&mut self) -> Tx<'_> {
        Tx::Pg(self)
    }
}

/// A write pool of either backend, beginning transactions. On SQLite a write
/// transaction takes the write lock at once (`BEGIN IMMEDIATE`): a deferred
/// one that read first would fail without waiting (its snapshot stale) when
/// another process — an operator's `parcours` command while the server runs
/// — wrote in between; immediate, it waits its turn (the busy timeout).
pub(crate) trait WritePool {
    /// The backend.
    type Db: sqlx::Database;
    /// Begins a write transaction.
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send
    + '_;
}

impl WritePool for sqlx::SqlitePool {
    type Db = Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error>>
    + Send
    + '_ {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl WritePool for sqlx::PgPool {
    type Db = Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Postgres>, sqlx::Error>>
    + Send
    + '_ {
        self.begin()
    }
}

/// A pooled connection outside any transaction, for reads that need none
/// (no BEGIN and ROLLBACK around a few SELECTs).
impl AsTx for sqlx::pool::PoolConnection<Sqlite> {
    fn as_tx(&mut self) -> Tx<'_> {
        Tx::Lite(self)
    }
}

impl AsTx for sqlx::pool::PoolConnection<Postgres> {
    fn as_tx(&mut self) -> Tx<'_> {
        Tx::Pg(self)
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// An integer (or NULL).
    Int(Option<i64>),
    /// A text (or NULL).
    Text(Option<String>),
    /// A boolean (or NULL).
    Bool(Option<bool>),
    /// Bytes (or NULL).
    Blob(Option<Vec<u8>>),
    /// A real number (or NULL).
    Real(Option<f64>),
    /// A column of values, bound as one PostgreSQL array (see
    /// [`Writes::insert_many`]); never on SQLite.
    Column(Column),
}

/// A column of a multi-row insert's values, all of one kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    /// Integers.
    Int(Vec<Option<i64>>),
    /// Texts.
    Text(Vec<Option<String>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
    /// Bytes.
    Blob(Vec<Option<Vec<u8>>>),
    /// Real numbers.
    Real(Vec<Option<f64>>),
}

impl Column {
    /// The values of one column, if all are of one kind.
    fn of(values: Vec<Arg>) -> Option<Column> {
        macro_rules! of_kinds {
            ($($kind:ident),*) => {
                match values.first()? {
                    $(Arg::$kind(_) => Column::$kind(
                        values
                            .into_iter()
                            .map(|a| match a {
                                Arg::$kind(v) => Some(v),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>()?,
                    ),)*
                    Arg::Column(_) => return None,
                }
            };
        }
        Some(of_kinds!(Int, Text, Bool, Blob, Real))
    }

    /// Its PostgreSQL array type.
    fn array_type(&self) -> &'static str {
        match self {
            Column::Int(_) => "int8[]",
            Column::Text(_) => "text[]",
            Column::Bool(_) => "bool[]",
            Column::Blob(_) => "bytea[]",
            Column::Real(_) => "float8[]",
        }
    }
}

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Arg {
            fn from($v: $t) -> Arg {
                $e
            }
        })*
    };
}

arg_from! {
    i64 => |v| Arg::Int(Some(v)),
    f64 => |v| Arg::Real(Some(v)),
    Option<i64> => |v| Arg::Int(v),
    &Option<i64> => |v| Arg::Int(*v),
    bool => |v| Arg::Bool(Some(v)),
    Option<bool> => |v| Arg::Bool(v),
    &str => |v| Arg::Text(Some(v.to_owned())),
    String => |v| Arg::Text(Some(v)),
    &String => |v| Arg::Text(Some(v.clone())),
    Option<&str> => |v| Arg::Text(v.map(str::to_owned)),
    Option<String> => |v| Arg::Text(v),
    &Option<String> => |v| Arg::Text(v.clone()),
    Option<&String> => |v| Arg::Text(v.cloned()),
    &[u8] => |v| Arg::Blob(Some(v.to_vec())),
    Vec<u8> => |v| Arg::Blob(Some(v)),
    &Vec<u8> => |v| Arg::Blob(Some(v.clone())),
    Option<Vec<u8>> => |v| Arg::Blob(v),
    &Option<Vec<u8>> => |v| Arg::Blob(v.clone()),
}

/// A query and its bound values.
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until it is run on a transaction"]
pub(crate) struct Q {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
    /// Kept prepared on the connection (see [`Q::planned_each_time`]).
    persistent: bool,
}

/// A query of literal SQL.
pub(crate) fn q(sql: &'static str) -> Q {
    Q {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// A query of SQL built from literal pieces (a list of placeholders), never
/// from values: those are bound.
///
/// A bound `LIMIT` or `OFFSET` is written `LIMIT +$n`, here and in every
/// query of the store. SQLite (3.51, as bundled) compiles the value bound
/// to a bare `LIMIT` placeholder into the statement's program, so it marks the
/// statement expired each time a value is bound, and prepares it again on
/// each run: on a paged search that was a tenth of a reader's time. Behind
/// the unary plus the value is read when the statement runs, and the
/// statement stays prepared. PostgreSQL reads both forms alike.
pub(crate) fn q_built(sql: String) -> Q {
    Q {
        sql: Cow::Owned(sql),
        args: Vec::new(),
        persistent: true,
    }
}

/// The `VALUES` list of a multi-row insert of `rows` rows of `columns`
/// placeholders each: `($1, $2), ($3, $4)` (literal pieces only).
/// `$1, $2, … $n`: the placeholders of an `IN (…)` list of `n` values.
pub(crate) fn in_list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn values_rows(columns: usize, rows: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}${}", r * columns + c + 1);
        }
        out.push(')');
    }
    out
}

/// Most rows per multi-row insert: far under either engine's limit on
/// bound values (SQLite 32,766, PostgreSQL 65,535) for twenty columns.
pub(crate) const MAX_ROWS_PER_INSERT: usize = 256;

/// Most values bound in one statement of a multi-row insert on SQLite. sqlx
/// finds each value's place by the placeholder's name
/// (`sqlite3_bind_parameter_name`), which SQLite looks up by scanning the
/// statement's names from the first: binding a statement costs the square of
/// its values. 256 audit entries in one statement (3,072 values) put that
/// lookup at 17 % of a FHIR search run's samples; 128 values (ten entries) a
/// statement cost a 24th of it per row.
const LITE_BINDS_PER_INSERT: usize = 128;

/// Rows of `columns` values in one statement of a multi-row insert as SQLite
/// runs it (see [`LITE_BINDS_PER_INSERT`]): at least one.
fn lite_rows_per_insert(columns: usize) -> usize {
    (LITE_BINDS_PER_INSERT / columns.max(1)).clamp(1, MAX_ROWS_PER_INSERT)
}

/// The rows `select` finds whose columns (`a`, `b`) hold one of `keys`:
/// `select` ends where its `WHERE` clause begins, `lock` follows it on
/// PostgreSQL (`FOR UPDATE`: SQLite's writer is alone). On PostgreSQL one
/// query per first value, the second ones bound as one array (a `VALUES`
/// list made a join to plan at each run); on SQLite, which binds no arrays,
/// `VALUES` lists. Planned at each run: a generic plan made while the table
/// was small would read all of it (see [`Q::planned_each_time`]).
pub(crate) async fn fetch_pairs(
    tx: &mut Tx<'_>,
    select: &str,
    (a, b): (&str, &str),
    lock: &str,
    keys: &[(String, &str)],
) -> Result<Vec<Row>, sqlx::Error> {
    let mut rows = Vec::new();
    if matches!(tx, Tx::Pg(_)) {
        let mut firsts: Vec<(&str, Vec<Option<String>>)> = Vec::new();
        for (first, second) in keys {
            match firsts.iter_mut().find(|(f, _)| f == first) {
                Some((_, seconds)) => seconds.push(Some((*second).to_owned())),
                None => firsts.push((first, vec![Some((*second).to_owned())])),
            }
        }
        for (first, seconds) in firsts {
            rows.extend(
                q_built(format!("{select} WHERE {a} = $1 AND {b} = ANY($2) {lock}"))
                    .planned_each_time()
                    .bind(first)
                    .bind(Arg::Column(Column::Text(seconds)))
                    .fetch_all(tx)
                    .await?,
            );
        }
    } else {
        for chunk in keys.chunks(MAX_ROWS_PER_INSERT) {
            let sql = format!(
                "{select} WHERE ({a}, {b}) IN (VALUES {})",
                values_rows(2, chunk.len())
            );
            let query = chunk
                .iter()
                .fold(q_built(sql).planned_each_time(), |q, (f, s)| {
                    q.bind(f.as_str()).bind(*s)
                });
            rows.extend(query.fetch_all(tx).await?);
        }
    }
    Ok(rows)
}

/// Inserts `rows` with one statement per [`MAX_ROWS_PER_INSERT`]: `head` is
/// the statement up to `VALUES `, `tail` what follows the values (an
/// `ON CONFLICT` clause, or nothing), `bind` binds one row's `columns` values.
pub(crate) async fn insert_many<T>(
    tx: &mut Tx<'_>,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &[T],
    bind: impl Fn(Q, &T) -> Q,
) -> Result<(), sqlx::Error> {
    let mut writes = Writes::default();
    writes.insert_many(head, tail, columns, rows, bind);
    writes.execute(tx).await
}

/// Statements that change rows and return nothing, none reading what another
/// writes (inserts of new rows), run in their order. On PostgreSQL they go
/// as one statement (each but the last in a `WITH` clause: one round trip
/// instead of one each; a foreign key is checked at the statement's end,
/// against the rows its parts inserted); on SQLite as one script (the
/// statements one after the other, sent to the connection's thread at once:
/// one hand-over between threads instead of one each).
#[derive(Debug, Default)]
#[must_use = "writes do nothing until they are executed"]
pub(crate) struct Writes {
    parts: Vec<Part>,
}

/// A statement of [`Writes`].
#[derive(Debug)]
enum Part {
    /// As it is.
    One(Q),
    /// A multi-row insert: `head` up to `VALUES `, then `tail`; `args` the
    /// rows' values, `columns` a row.
    Rows {
        head: String,
        tail: String,
        columns: usize,
        args: Vec<Arg>,
    },
}

impl Part {
    /// As a `VALUES` list of `max_rows` rows at most per statement.
    fn values(self, max_rows: usize) -> Vec<Q> {
        match self {
            Part::One(q) => vec![q],
            Part::Rows {
                head,
                tail,
                columns,
                args,
            } => args
                .chunks(max_rows.max(1) * columns.max(1))
                .map(|chunk| Q {
                    sql: Cow::Owned(format!(
                        "{head}{}{tail}",
                        values_rows(columns, chunk.len() / columns.max(1))
                    )),
                    args: chunk.to_vec(),
                    persistent: true,
                })
                .collect(),
        }
    }

    /// As PostgreSQL runs it: the rows as one array per column
    /// ([`Part::arrays`]), or as a `VALUES` list when they cannot be.
    fn columns(self) -> Vec<Q> {
        match self.arrays() {
            Some(q) => vec![q],
            None => self.values(MAX_ROWS_PER_INSERT),
        }
    }

    /// The rows as `INSERT … SELECT * FROM unnest($1::text[], …)`, one array
    /// per column, whose text is the same however many rows (prepared and
    /// planned once, where a `VALUES` list made a statement of its own for
    /// each number of rows, parsed and planned anew). `None` for a statement
    /// as it is, for rows that are not whole (a binder that missed a value:
    /// as a `VALUES` list the database refuses it, where arrays would shift
    /// the columns) and for a column that mixes kinds of values.
    fn arrays(&self) -> Option<Q> {
        let Part::Rows {
            head,
            tail,
            columns,
            args,
        } = self
        else {
            return None;
        };
        let insert = head.strip_suffix("VALUES ")?;
        if *columns == 0 || args.len() % columns != 0 {
            return None;
        }
        let mut cells = vec![Vec::with_capacity(args.len() / columns); *columns];
        for (i, a) in args.iter().enumerate() {
            cells.get_mut(i % columns)?.push(a.clone());
        }
        let arrays = cells
            .into_iter()
            .map(Column::of)
            .collect::<Option<Vec<_>>>()?;
        let list = arrays
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.array_type()))
            .collect::<Vec<_>>()
            .join(", ");
        Some(Q {
            sql: Cow::Owned(format!("{insert}SELECT * FROM unnest({list}){tail}")),
            args: arrays.into_iter().map(Arg::Column).collect(),
            persistent: true,
        })
    }
}

/// Most values bound in one PostgreSQL statement.
const PG_MAX_BINDS: usize = 65_535;

/// Most values bound in one SQLite script: a placeholder's number may not
/// pass it, and a script's numbers run on across its statements.
const LITE_MAX_BINDS: usize = 32_766;

impl Writes {
    /// Adds the multi-row inserts of `rows`, as [`insert_many`] runs them.
    pub(crate) fn insert_many<T>(
        &mut self,
        head: &str,
        tail: &str,
        columns: usize,
        rows: &[T],
        bind: impl Fn(Q, &T) -> Q,
    ) {
        if rows.is_empty() {
            return;
        }
        let args = rows.iter().fold(q(""), &bind).args;
        self.parts.push(Part::Rows {
            head: head.to_owned(),
            tail: tail.to_owned(),
            columns,
            args,
        });
    }

    /// Adds one statement.
    pub(crate) fn push(&mut self, q: Q) {
        self.parts.push(Part::One(q));
    }

    /// The queries that run them on SQLite and on PostgreSQL.
    fn queries(self, pg: bool) -> Vec<Q> {
        if pg {
            let parts = self.parts.into_iter().flat_map(Part::columns).collect();
            combined(parts, PG_MAX_BINDS, one_statement)
        } else {
            let parts = self
                .parts
                .into_iter()
                .flat_map(|p| {
                    let rows = match &p {
                        Part::Rows { columns, .. } => lite_rows_per_insert(*columns),
                        Part::One(_) => 1,
                    };
                    p.values(rows)
                })
                .collect();
            combined(parts, LITE_MAX_BINDS, one_script)
                .into_iter()
                .map(|q| match anonymous(&q.sql, q.args.len()) {
                    Some(sql) => Q {
                        sql: Cow::Owned(sql),
                        ..q
                    },
                    None => q,
                })
                .collect()
        }
    }

    /// Runs them inside `tx`.
    pub(crate) async fn execute(self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        let sent = self.queries(matches!(tx, Tx::Pg(_)));
        for q in sent {
            q.execute(tx).await?;
        }
        Ok(())
    }
}

/// `parts` in as few queries as the engine takes, each made by `join` of
/// parts in a row, the placeholders of each renumbered after the previous
/// ones'; a new query when the next part would pass `max_binds` values.
fn combined(parts: Vec<Q>, max_binds: usize, join: fn(Vec<Q>) -> Option<Q>) -> Vec<Q> {
    let mut out: Vec<Vec<Q>> = Vec::new();
    let mut binds = 0;
    for q in parts {
        match out.last_mut() {
            Some(group) if binds + q.args.len() <= max_binds => {
                binds += q.args.len();
                group.push(q);
            }
            _ => {
                binds = q.args.len();
                out.push(vec![q]);
            }
        }
    }
    out.into_iter().filter_map(join).collect()
}

/// One SQLite script of `group` (see [`combined`]): its statements one after
/// the other, run in order by one call; none for no part.
fn one_script(group: Vec<Q>) -> Option<Q> {
    joined(group, |sql, i, _, part| {
        if i > 0 {
            sql.push_str(";\n");
        }
        sql.push_str(part);
    })
}

/// One PostgreSQL statement of `group` (see [`combined`]): `WITH w0 AS
/// (first), w1 AS (second) last`; none for no part.
fn one_statement(group: Vec<Q>) -> Option<Q> {
    joined(group, |sql, i, last, part| {
        use std::fmt::Write;
        if last {
            let _ = write!(sql, " {part}");
        } else {
            let lead = if i == 0 { "WITH " } else { ", " };
            let _ = write!(sql, "{lead}w{i} AS ({part})");
        }
    })
}

/// `group` as one query: `write(sql, i, last, part)` adds each part's text
/// in turn, its placeholders renumbered after the previous parts'; a part
/// alone is sent as it is, none for none. Planned at each run if any part is.
fn joined(group: Vec<Q>, write: impl Fn(&mut String, usize, bool, &str)) -> Option<Q> {
    if group.len() < 2 {
        return group.into_iter().next();
    }
    let n = group.len();
    let persistent = group.iter().all(|q| q.persistent);
    let mut sql = String::new();
    let mut args = Vec::new();
    for (i, part) in group.into_iter().enumerate() {
        write(&mut sql, i, i + 1 == n, &renumbered(&part.sql, args.len()));
        args.extend(part.args);
    }
    Some(Q {
        sql: Cow::Owned(sql),
        args,
        persistent,
    })
}

/// `sql` with each placeholder `$n` made `$(n + offset)` (the statements
/// given hold no `$` in a literal: theirs are built from literal pieces).
fn renumbered(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + sql.len() / 8);
    each_placeholder(sql, &mut out, |n, out| {
        match n {
            Some(n) => {
                use std::fmt::Write;
                let _ = write!(out, "${}", n + offset);
            }
            None => out.push('$'),
        }
        true
    });
    out
}

/// `sql` with its placeholders anonymous (`?`), when they are `$1`, `$2`, …
/// `$n` (`n` values) in the order they are written, each once; `None`
/// otherwise (a value used twice, or out of order), and for no value.
///
/// sqlx places each value of a SQLite statement by its placeholder's name,
/// which SQLite finds by scanning the statement's list of names from the
/// first (`sqlite3_bind_parameter_name`): binding a statement of `k` values
/// costs `k²/2` steps, 6 to 11 % of the writer thread's samples under MLLP
/// intake (multi-row inserts of 128 values). An anonymous `?` has no name:
/// sqlx binds it to the next value, SQLite looks nothing up. (The statements
/// hold no `$` in a literal: theirs are built from literal pieces.)
fn anonymous(sql: &str, n: usize) -> Option<String> {
    if n == 0 {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut next = 1;
    let whole = each_placeholder(sql, &mut out, |placeholder, out| {
        if placeholder != Some(next) {
            return false;
        }
        out.push('?');
        next += 1;
        true
    });
    (whole && next == n + 1).then_some(out)
}

/// Copies `sql` into `out`, each `$` and the digits after it written by
/// `write` instead (given their number, or `None` for a `$` without
/// digits); stops, returning false, where `write` does.
fn each_placeholder(
    sql: &str,
    out: &mut String,
    mut write: impl FnMut(Option<usize>, &mut String) -> bool,
) -> bool {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        let digits = after
            .get(1..)
            .unwrap_or("")
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let n = after.get(1..=digits).and_then(|d| d.parse::<usize>().ok());
        if !write(n, out) {
            return false;
        }
        rest = after.get(1 + digits..).unwrap_or("");
    }
    out.push_str(rest);
    true
}

macro_rules! bind_all {
    ($q:expr, $column:ident) => {{
        let Q {
            sql,
            args,
            persistent,
        } = $q;
        let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(persistent);
        for a in args {
            query = match a {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Blob(v) => query.bind(v),
                Arg::Real(v) => query.bind(v),
                Arg::Column(c) => $column!(query, c),
            };
        }
        query
    }};
}

/// Binds a column as a PostgreSQL array.
macro_rules! bind_pg_column {
    ($query:expr, $c:expr) => {
        match $c {
            Column::Int(v) => $query.bind(v),
            Column::Text(v) => $query.bind(v),
            Column::Bool(v) => $query.bind(v),
            Column::Blob(v) => $query.bind(v),
            Column::Real(v) => $query.bind(v),
        }
    };
}

/// SQLite has no arrays: a column is never bound there ([`Writes`] sends it
/// a `VALUES` list); [`Q::for_sqlite`] refuses a query holding one.
macro_rules! no_column {
    ($query:expr, $c:expr) => {{
        let _ = $c;
        $query
    }};
}

impl Q {
    /// Not kept prepared on PostgreSQL (SQLite keeps it: [`Q::for_sqlite`]):
    /// PostgreSQL plans it at each run for the values
    /// bound and the table as it is then, never with a generic plan kept
    /// from earlier runs. For a lookup whose best index depends on the
    /// values (a generic plan of the lookup by IPP, made while `patients`
    /// was small, read every patient of the territory once it was not).
    pub(crate) fn planned_each_time(mut self) -> Q {
        self.persistent = false;
        self
    }

    /// Itself as SQLite runs it, or an error if it binds a column (an
    /// array: PostgreSQL only). SQLite keeps every statement prepared,
    /// [`Q::planned_each_time`] or not: it plans a statement when it
    /// prepares it and has no generic plan to fall back on, and where
    /// statistics say a value bound may change the plan (`STAT4`, built in)
    /// it prepares the statement again itself. Preparing anew at each run
    /// only cost the writer the parse (the HL7 intake's lookup by IPP, each
    /// update group's script).
    fn for_sqlite(mut self) -> Result<Q, sqlx::Error> {
        self.persistent = true;
        if self.args.iter().any(|a| matches!(a, Arg::Column(_))) {
            return Err(sqlx::Error::Protocol(
                "une colonne de valeurs (tableau) ne se lie pas sur SQLite".into(),
            ));
        }
        Ok(self)
    }

    /// The same query under `explain` (`EXPLAIN`: its program on SQLite,
    /// its plan on PostgreSQL; `EXPLAIN QUERY PLAN`: SQLite's plan).
    #[cfg(test)]
    pub(crate) fn explained(mut self, explain: &str) -> Q {
        self.sql = Cow::Owned(format!("{explain} {}", self.sql));
        self
    }

    /// Its SQL, as sent (and as PostgreSQL lists it among a connection's
    /// prepared statements).
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, v: impl Into<Arg>) -> Q {
        self.args.push(v.into());
        self
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute(self, tx: &mut Tx<'_>) -> Result<u64, sqlx::Error> {
        Ok(match tx {
            Tx::Lite(c) => bind_all!(self.for_sqlite()?, no_column)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Tx::Pg(c) => bind_all!(self, bind_pg_column)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// The one row it returns (`RowNotFound` when none).
    pub(crate) async fn fetch_one(self, tx: &mut Tx<'_>) -> Result<Row, sqlx::Error> {
        Ok(match tx {
            Tx::Lite(c) => Row::Lite(
                bind_all!(self.for_sqlite()?, no_column)
                    .fetch_one(&mut **c)
                    .await?,
            ),
            Tx::Pg(c) => Row::Pg(bind_all!(self, bind_pg_column).fetch_one(&mut **c).await?),
        })
    }

    /// The row it returns, if any.
    pub(crate) async fn fetch_optional(self, tx: &mut Tx<'_>) -> Result<Option<Row>, sqlx::Error> {
        Ok(match tx {
            Tx::Lite(c) => bind_all!(self.for_sqlite()?, no_column)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Lite),
            Tx::Pg(c) => bind_all!(self, bind_pg_column)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Pg),
        })
    }

    /// Every row it returns.
    pub(crate) async fn fetch_all(self, tx: &mut Tx<'_>) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match tx {
            Tx::Lite(c) => bind_all!(self.for_sqlite()?, no_column)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Lite)
                .collect(),
            Tx::Pg(c) => bind_all!(self, bind_pg_column)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
        })
    }

    /// The first column of every row it returns.
    pub(crate) async fn fetch_column<T: Value>(
        self,
        tx: &mut Tx<'_>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.fetch_all(tx)
            .await?
            .iter()
            .map(|r| r.first())
            .collect()
    }
}

/// Every row as a [`db_row!`] struct.
pub(crate) fn rows_to<T: FromDbRow<SqliteRow> + FromDbRow<PgRow>>(
    rows: &[Row],
) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(Row::to).collect()
}

/// A type both backends decode.
pub(crate) trait Value:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A row from either backend.
pub(crate) enum Row {
    /// SQLite.
    Lite(SqliteRow),
    /// PostgreSQL.
    Pg(PgRow),
}

impl Row {
    /// Column `name`.
    pub(crate) fn get<T: Value>(&self, name: &str) -> Result<T, sqlx::Error> {
        match self {
            Row::Lite(r) => r.try_get(name),
            Row::Pg(r) => r.try_get(name),
        }
    }

    /// The first column.
    pub(crate) fn first<T: Value>(&self) -> Result<T, sqlx::Error> {
        match self {
            Row::Lite(r) => r.try_get(0),
            Row::Pg(r) => r.try_get(0),
        }
    }

    /// The row as a [`db_row!`] struct.
    pub(crate) fn to<T: FromDbRow<SqliteRow> + FromDbRow<PgRow>>(&self) -> Result<T, sqlx::Error> {
        match self {
            Row::Lite(r) => T::from_db_row(r),
            Row::Pg(r) => T::from_db_row(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_as_their_kind() {
        assert_eq!(Arg::from(3_i64), Arg::Int(Some(3)));
        assert_eq!(Arg::from(None::<i64>), Arg::Int(None));
        assert_eq!(Arg::from("x"), Arg::Text(Some("x".into())));
        assert_eq!(Arg::from(None::<&str>), Arg::Text(None));
        assert_eq!(
            Arg::from(&Some("y".to_owned())),
            Arg::Text(Some("y".into()))
        );
        assert_eq!(Arg::from(true), Arg::Bool(Some(true)));
        assert_eq!(Arg::from(&b"ab"[..]), Arg::Blob(Some(b"ab".to_vec())));
        let query = q("SELECT $1, $2").bind(1_i64).bind("a");
        assert_eq!(
            query.args,
            vec![Arg::Int(Some(1)), Arg::Text(Some("a".into()))]
        );
    }

    #[test]
    fn sqlite_gets_few_values_per_insert_statement() {
        // 25 rows of 12 values: on SQLite, statements of 10 rows (120 values,
        // under 128) in one script, the values in order, each placeholder
        // anonymous (bound to the next value).
        let rows: Vec<i64> = (0..25).collect();
        let writes = || {
            let mut w = Writes::default();
            w.insert_many("INSERT INTO a VALUES ", "", 12, &rows, |q, r| {
                (0..12).fold(q, |q, c| q.bind(r * 100 + c))
            });
            w
        };
        let lite = writes().queries(false);
        assert_eq!(lite.len(), 1);
        let script = lite.first().unwrap();
        let statements: Vec<&str> = script.sql.split(";\n").collect();
        assert_eq!(statements.len(), 3);
        let counts: Vec<usize> = statements.iter().map(|s| s.matches('(').count()).collect();
        assert_eq!(counts, vec![10, 10, 5]);
        let placeholders: Vec<usize> = statements.iter().map(|s| s.matches('?').count()).collect();
        assert_eq!(placeholders, vec![120, 120, 60]);
        assert!(!script.sql.contains('$'), "{}", script.sql);
        let expected: Vec<Arg> = rows
            .iter()
            .flat_map(|r| (0..12).map(move |c| Arg::Int(Some(r * 100 + c))))
            .collect();
        assert_eq!(script.args, expected);
        // One column: 128 rows a statement; more columns than 128: one row.
        assert_eq!(lite_rows_per_insert(1), 128);
        assert_eq!(lite_rows_per_insert(200), 1);
        assert_eq!(lite_rows_per_insert(0), 128);
        // PostgreSQL: still one statement of arrays, whatever the rows.
        let pg = writes().queries(true);
        assert_eq!(pg.len(), 1);
        assert_eq!(pg.first().unwrap().args.len(), 12);
    }

    #[test]
    fn rows_go_as_values_to_sqlite_and_as_arrays_to_postgres() {
        let rows = [(1_i64, Some("un")), (2, None)];
        let writes = || {
            let mut w = Writes::default();
            w.insert_many(
                "INSERT INTO a (x, y) VALUES ",
                " ON CONFLICT DO NOTHING",
                2,
                &rows,
                |q, (x, y)| q.bind(*x).bind(*y),
            );
            w.insert_many("INSERT INTO b (x) VALUES ", "", 1, &[] as &[i64], |q, x| {
                q.bind(*x)
            });
            w.push(q("DELETE FROM c WHERE x = $1").bind(9_i64));
            w
        };
        // SQLite: a VALUES list, the rows' values in order; no rows, no insert.
        let lite = writes().queries(false);
        assert_eq!(lite.len(), 1);
        let lite = lite.first().unwrap();
        assert_eq!(
            lite.sql,
            "INSERT INTO a (x, y) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING;\nDELETE FROM c WHERE x = ?"
        );
        assert_eq!(
            lite.args,
            vec![
                Arg::Int(Some(1)),
                Arg::Text(Some("un".into())),
                Arg::Int(Some(2)),
                Arg::Text(None),
                Arg::Int(Some(9)),
            ]
        );
        // PostgreSQL: one array per column, the same text for any number of rows.
        let pg = writes().queries(true);
        let pg = pg.first().unwrap();
        assert_eq!(
            pg.sql,
            "WITH w0 AS (INSERT INTO a (x, y) SELECT * FROM unnest($1::int8[], $2::text[]) ON CONFLICT DO NOTHING) \
             DELETE FROM c WHERE x = $3"
        );
        assert_eq!(
            pg.args,
            vec![
                Arg::Column(Column::Int(vec![Some(1), Some(2)])),
                Arg::Column(Column::Text(vec![Some("un".into()), None])),
                Arg::Int(Some(9)),
            ]
        );
        // Rows that are not whole go as a VALUES list (refused by the
        // database for its count of values), never as shifted columns.
        let mut short = Writes::default();
        short.insert_many(
            "INSERT INTO a (x, y) VALUES ",
            "",
            2,
            &[1_i64, 2, 3],
            |q, x| {
                if *x == 2 {
                    q.bind(*x)
                } else {
                    q.bind(*x).bind(*x)
                }
            },
        );
        let short = short.queries(true);
        assert!(short.first().unwrap().sql.contains(" VALUES ("));
        // On SQLite too they keep their numbers: two placeholders for three
        // values, which the database refuses (never bound one place over).
        let mut short = Writes::default();
        short.insert_many(
            "INSERT INTO a (x, y) VALUES ",
            "",
            2,
            &[1_i64, 2],
            |q, x| {
                if *x == 2 {
                    q.bind(*x)
                } else {
                    q.bind(*x).bind(*x)
                }
            },
        );
        assert_eq!(
            short.queries(false).first().unwrap().sql,
            "INSERT INTO a (x, y) VALUES ($1, $2)"
        );
        // A column mixing kinds of values goes as a VALUES list.
        let mut mixed = Writes::default();
        mixed.insert_many("INSERT INTO a (x) VALUES ", "", 1, &[0_i64, 1], |q, x| {
            if *x == 0 { q.bind(*x) } else { q.bind("un") }
        });
        let mixed = mixed.queries(true);
        assert_eq!(
            mixed.first().unwrap().sql,
            "INSERT INTO a (x) VALUES ($1), ($2)"
        );
        // SQLite has no arrays: a query binding one is refused, not run.
        assert!(pg.clone().for_sqlite().is_err());
        assert!(lite.clone().for_sqlite().is_ok());
    }

    #[tokio::test]
    async fn sqlite_keeps_a_statement_planned_each_time_prepared_and_postgres_does_not() {
        use sqlx::Connection;
        // Each run's value must come back: the cached statement is bound anew.
        async fn twice(tx: &mut Tx<'_>) {
            for v in [20_i64, 41] {
                let row = q("SELECT $1 + 1 AS n")
                    .planned_each_time()
                    .bind(v)
                    .fetch_one(tx)
                    .await
                    .unwrap();
                assert_eq!(row.get::<i64>("n").unwrap(), v + 1);
            }
        }
        let lite = crate::Store::connect(&crate::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let crate::Backend::Sqlite { write, .. } = &lite.backend else {
            panic!("a SQLite URL opens SQLite");
        };
        let mut tx = write.begin().await.unwrap();
        let before = tx.cached_statements_size();
        twice(&mut tx.as_tx()).await;
        assert_eq!(
            tx.cached_statements_size(),
            before + 1,
            "one statement kept, for both runs"
        );
        tx.rollback().await.unwrap();

        let pg = crate::Store::connect(&crate::testing::fresh_postgres_url().await.unwrap())
            .await
            .unwrap();
        let crate::Backend::Postgres { write, .. } = &pg.backend else {
            panic!("a PostgreSQL URL opens PostgreSQL");
        };
        let mut tx = write.begin().await.unwrap();
        let before = tx.cached_statements_size();
        twice(&mut tx.as_tx()).await;
        assert_eq!(tx.cached_statements_size(), before, "planned at each run");
        // The control: the same query kept prepared is cached there too.
        q("SELECT $1 + 1 AS n")
            .bind(1_i64)
            .fetch_one(&mut tx.as_tx())
            .await
            .unwrap();
        assert_eq!(tx.cached_statements_size(), before + 1);
        tx.rollback().await.unwrap();
        pg.close().await;
    }

    #[test]
    fn placeholders_in_their_order_each_once_are_made_anonymous() {
        assert_eq!(
            anonymous("VALUES ($1, $2), ($3, $4);\nUPDATE h SET v = $5", 5).as_deref(),
            Some("VALUES (?, ?), (?, ?);\nUPDATE h SET v = ?")
        );
        assert_eq!(anonymous("VALUES ($1, $10)", 2), None, "out of order");
        assert_eq!(anonymous("SET a = $1 WHERE b > $1", 1), None, "used twice");
        assert_eq!(anonymous("VALUES ($2, $1)", 2), None, "out of order");
        assert_eq!(anonymous("VALUES ($1, $2)", 3), None, "a value more");
        assert_eq!(anonymous("VALUES ($1, $2)", 1), None, "a value less");
        assert_eq!(anonymous("VALUES ($1, $ x)", 1), None, "a bare `$`");
        assert_eq!(anonymous("SELECT 1", 0), None, "nothing to bind");
    }

    #[tokio::test]
    async fn a_sqlite_script_binds_each_value_in_its_place_named_or_anonymous() {
        let store = crate::Store::connect(&crate::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let crate::Backend::Sqlite { write, .. } = &store.backend else {
            panic!("a SQLite URL opens SQLite");
        };
        let mut tx = write.begin().await.unwrap();
        sqlx::raw_sql("CREATE TABLE a (x INTEGER, y TEXT); CREATE TABLE h (n INTEGER)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let rows: Vec<i64> = (0..150).collect();
        // Anonymous: 150 rows over three statements (64 rows of 2 values
        // each at most), then an insert of one value. Named: the same, the
        // last insert using its value twice.
        for (twice, expected) in [(false, "?"), (true, "$")] {
            let mut w = Writes::default();
            w.push(q("DELETE FROM a"));
            w.insert_many("INSERT INTO a (x, y) VALUES ", "", 2, &rows, |q, r| {
                q.bind(*r).bind(format!("r{r}"))
            });
            w.push(if twice {
                q("INSERT INTO h (n) SELECT $1 WHERE $1 > 0").bind(7_i64)
            } else {
                q("INSERT INTO h (n) VALUES ($1)").bind(7_i64)
            });
            let sent = w.queries(false);
            assert_eq!(sent.len(), 1, "one script");
            assert_eq!(
                sent.first().unwrap().sql.matches("INSERT INTO a").count(),
                3
            );
            assert!(sent.iter().all(|q| q.sql.contains(expected)), "{sent:?}");
            for query in sent {
                query.execute(&mut Tx::Lite(&mut tx)).await.unwrap();
            }
            let got: Vec<(i64, String)> = sqlx::query_as("SELECT x, y FROM a ORDER BY x")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            let want: Vec<(i64, String)> = rows.iter().map(|r| (*r, format!("r{r}"))).collect();
            assert_eq!(got, want, "twice: {twice}");
        }
        let h: Vec<i64> = sqlx::query_scalar("SELECT n FROM h")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(h, vec![7, 7]);
        tx.rollback().await.unwrap();
        store.close().await;
    }

    #[test]
    fn placeholders_are_renumbered_after_an_offset() {
        assert_eq!(
            renumbered("VALUES ($1, $2), ($10, $11)", 0),
            "VALUES ($1, $2), ($10, $11)"
        );
        assert_eq!(
            renumbered("VALUES ($1, $2), ($10, $11)", 9),
            "VALUES ($10, $11), ($19, $20)"
        );
        // A `$` not followed by digits is kept as it is, as is the text after.
        assert_eq!(renumbered("a $ b $x $3 end", 2), "a $ b $x $5 end");
        assert_eq!(renumbered("ends with $", 1), "ends with $");
    }

    #[test]
    fn writes_go_as_one_statement_their_values_in_order() {
        let parts = vec![
            q("INSERT INTO a (x, y) VALUES ($1, $2)")
                .bind(1_i64)
                .bind("one"),
            q("INSERT INTO b (x) VALUES ($1), ($2)")
                .bind(2_i64)
                .bind(3_i64),
            q("INSERT INTO c (x) VALUES ($1) ON CONFLICT DO NOTHING").bind("four"),
        ];
        let out = combined(parts.clone(), PG_MAX_BINDS, one_statement);
        assert_eq!(out.len(), 1);
        let one = out.first().unwrap();
        assert_eq!(
            one.sql,
            "WITH w0 AS (INSERT INTO a (x, y) VALUES ($1, $2)), w1 AS (INSERT INTO b (x) VALUES ($3), ($4)) \
             INSERT INTO c (x) VALUES ($5) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            one.args,
            vec![
                Arg::Int(Some(1)),
                Arg::Text(Some("one".into())),
                Arg::Int(Some(2)),
                Arg::Int(Some(3)),
                Arg::Text(Some("four".into())),
            ]
        );
        // One statement alone is sent as it is; none, as nothing.
        // On SQLite, one script: the same statements one after the other,
        // numbered on.
        let script = combined(parts, LITE_MAX_BINDS, one_script);
        assert_eq!(script.len(), 1);
        let script = script.first().unwrap();
        assert_eq!(
            script.sql,
            "INSERT INTO a (x, y) VALUES ($1, $2);\nINSERT INTO b (x) VALUES ($3), ($4);\n\
             INSERT INTO c (x) VALUES ($5) ON CONFLICT DO NOTHING"
        );
        assert_eq!(script.args, one.args);
        assert!(one.persistent && script.persistent);
        // A part planned at each run makes the whole query so.
        for join in [one_statement as fn(Vec<Q>) -> Option<Q>, one_script] {
            let mixed = combined(
                vec![
                    q("INSERT INTO a (x) VALUES ($1)").bind(1_i64),
                    q("SELECT x FROM a WHERE x = $1")
                        .planned_each_time()
                        .bind(1_i64),
                ],
                10,
                join,
            );
            assert!(!mixed.first().unwrap().persistent);
        }
        // One statement alone is sent as it is; none, as nothing.
        for join in [one_statement as fn(Vec<Q>) -> Option<Q>, one_script] {
            let alone = combined(vec![q("DELETE FROM a WHERE x = $1").bind(1_i64)], 10, join);
            assert_eq!(
                alone.first().map(|q| q.sql.as_ref()),
                Some("DELETE FROM a WHERE x = $1")
            );
            assert!(combined(Vec::new(), 10, join).is_empty());
        }
    }

    #[test]
    fn writes_past_the_limit_of_bound_values_start_a_statement() {
        let big = |n: usize| {
            let sql = format!("INSERT INTO a (x) VALUES {}", values_rows(1, n));
            (0..n).fold(q_built(sql), |q, i| q.bind(i as i64))
        };
        let out = combined(
            vec![big(40_000), big(20_000), big(10_000)],
            PG_MAX_BINDS,
            one_statement,
        );
        let sizes: Vec<usize> = out.iter().map(|q| q.args.len()).collect();
        assert_eq!(sizes, vec![60_000, 10_000]);
        assert!(out.first().unwrap().sql.starts_with("WITH w0 AS ("));
        assert!(
            out.get(1)
                .unwrap()
                .sql
                .starts_with("INSERT INTO a (x) VALUES ($1)")
        );
        // SQLite's scripts stop at its own limit (its numbers run on).
        let out = combined(
            vec![big(20_000), big(10_000), big(5_000)],
            LITE_MAX_BINDS,
            one_script,
        );
        let sizes: Vec<usize> = out.iter().map(|q| q.args.len()).collect();
        assert_eq!(sizes, vec![30_000, 5_000]);
        assert!(
            out.first()
                .unwrap()
                .sql
                .contains(";\nINSERT INTO a (x) VALUES ($20001)")
        );
    }

    /// Every `LIMIT` and `OFFSET` the store binds is behind a unary plus
    /// (see [`super::q_built`]); `patients::tests` shows on SQLite's program
    /// what a bare one costs.
    #[test]
    fn no_query_of_the_store_binds_a_bare_limit_or_offset() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut read = 0;
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            read += 1;
            for (n, line) in text.lines().enumerate() {
                for word in ["LIMIT", "OFFSET"].map(|w| format!("{w} $")) {
                    assert!(
                        !line.contains(&word),
                        "{}:{}: {line}",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
        assert!(read > 20, "{read} files read in {}", src.display());
    }
}
