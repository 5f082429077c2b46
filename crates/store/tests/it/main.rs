//! Store story tests: every test runs on SQLite and on PostgreSQL (atuin's pattern).

mod audit;
mod orgs_users;
mod outbox;
mod patients;
mod support;
