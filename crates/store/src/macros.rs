//! Macros that let one piece of SQL-handling code run on both backends: the body is
//! expanded once per pool type, so sqlx's per-database types line up without
//! `sqlx::Any` (which lacks several types) and without pages of trait bounds.

/// Runs `$body` with `$pool` bound to the backend's pool: `read` uses the
/// readers, `write` the writers (SQLite's single writer), `search` the
/// readers on SQLite and PostgreSQL's pool for patient searches, whose
/// statements take their generic plan (`Store::connect` says why).
macro_rules! on_pool {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::Backend::Postgres { read: $pool, .. } => $body,
        }
    };
    ($store:expr, search, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::Backend::Postgres { search: $pool, .. } => $body,
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write: $pool, .. } => $body,
            $crate::Backend::Postgres { write: $pool, .. } => $body,
        }
    };
}

/// Declares a row struct readable from both backends' rows by column name.
macro_rules! db_row {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        $vis struct $name { $(pub $f: $t),* }

        impl $crate::macros::FromDbRow<sqlx::sqlite::SqliteRow> for $name {
            fn from_db_row(r: &sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(Self { $($f: r.try_get(stringify!($f))?),* })
            }
        }
        impl $crate::macros::FromDbRow<sqlx::postgres::PgRow> for $name {
            fn from_db_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok(Self { $($f: r.try_get(stringify!($f))?),* })
            }
        }
    };
}

/// A struct built from a row of backend `R`.
pub(crate) trait FromDbRow<R>: Sized {
    fn from_db_row(r: &R) -> Result<Self, sqlx::Error>;
}

/// Reads every row into `T`.
pub(crate) fn rows_to<R, T: FromDbRow<R>>(rows: &[R]) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(T::from_db_row).collect()
}
