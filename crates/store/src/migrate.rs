//! Migrations, embedded in the binary, one list per backend, applied in order at
//! start. Append-only: a released migration is never edited; a change is a new file.

use sqlx::Row;

use crate::tx::WritePool as _;
use crate::{Result, Store, StoreError};

/// One migration: version, name, SQL text.
pub struct Migration {
    /// Strictly increasing version.
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// SQL (several statements).
    pub sql: &'static str,
}

/// SQLite migrations.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../migrations/sqlite/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "hl7",
        sql: include_str!("../migrations/sqlite/0002_hl7.sql"),
    },
    Migration {
        version: 3,
        name: "encounters",
        sql: include_str!("../migrations/sqlite/0003_encounters.sql"),
    },
    Migration {
        version: 4,
        name: "beds",
        sql: include_str!("../migrations/sqlite/0004_beds.sql"),
    },
    Migration {
        version: 5,
        name: "orientation",
        sql: include_str!("../migrations/sqlite/0005_orientation.sql"),
    },
    Migration {
        version: 6,
        name: "bed_history",
        sql: include_str!("../migrations/sqlite/0006_bed_history.sql"),
    },
    Migration {
        version: 7,
        name: "monitoring",
        sql: include_str!("../migrations/sqlite/0007_monitoring.sql"),
    },
    Migration {
        version: 8,
        name: "monitoring_patient",
        sql: include_str!("../migrations/sqlite/0008_monitoring_patient.sql"),
    },
    Migration {
        version: 9,
        name: "schedule",
        sql: include_str!("../migrations/sqlite/0009_schedule.sql"),
    },
    Migration {
        version: 10,
        name: "appointment_external",
        sql: include_str!("../migrations/sqlite/0010_appointment_external.sql"),
    },
    Migration {
        version: 11,
        name: "consultations",
        sql: include_str!("../migrations/sqlite/0011_consultations.sql"),
    },
    Migration {
        version: 12,
        name: "documents",
        sql: include_str!("../migrations/sqlite/0012_documents.sql"),
    },
    Migration {
        version: 13,
        name: "patient_contacts",
        sql: include_str!("../migrations/sqlite/0013_patient_contacts.sql"),
    },
    Migration {
        version: 14,
        name: "incoming_documents",
        sql: include_str!("../migrations/sqlite/0014_incoming_documents.sql"),
    },
    Migration {
        version: 15,
        name: "security",
        sql: include_str!("../migrations/sqlite/0015_security.sql"),
    },
    Migration {
        version: 16,
        name: "administration",
        sql: include_str!("../migrations/sqlite/0016_administration.sql"),
    },
    Migration {
        version: 17,
        name: "delivery_and_confirmation",
        sql: include_str!("../migrations/sqlite/0017_delivery_and_confirmation.sql"),
    },
    Migration {
        version: 18,
        name: "federated_sign_in",
        sql: include_str!("../migrations/sqlite/0018_federated_sign_in.sql"),
    },
    Migration {
        version: 19,
        name: "several_nodes",
        sql: include_str!("../migrations/sqlite/0019_several_nodes.sql"),
    },
    Migration {
        version: 20,
        name: "patient_demographics",
        sql: include_str!("../migrations/sqlite/0020_patient_demographics.sql"),
    },
    Migration {
        version: 21,
        name: "dmp_consultation_consent",
        sql: include_str!("../migrations/sqlite/0021_dmp_consultation_consent.sql"),
    },
    Migration {
        version: 22,
        name: "fhir_subscriptions",
        sql: include_str!("../migrations/sqlite/0022_fhir_subscriptions.sql"),
    },
    Migration {
        version: 23,
        name: "measures_from_devices",
        sql: include_str!("../migrations/sqlite/0023_measures_from_devices.sql"),
    },
    Migration {
        version: 24,
        name: "operations",
        sql: include_str!("../migrations/sqlite/0024_operations.sql"),
    },
    Migration {
        version: 25,
        name: "care_team",
        sql: include_str!("../migrations/sqlite/0025_care_team.sql"),
    },
    Migration {
        version: 26,
        name: "patient_words",
        sql: include_str!("../migrations/sqlite/0026_patient_words.sql"),
    },
    Migration {
        version: 27,
        name: "document_digest",
        sql: include_str!("../migrations/sqlite/0027_document_digest.sql"),
    },
    Migration {
        version: 28,
        name: "patient_words_order",
        sql: include_str!("../migrations/sqlite/0028_patient_words_order.sql"),
    },
    Migration {
        version: 29,
        name: "drop_patients_search",
        sql: include_str!("../migrations/sqlite/0029_drop_patients_search.sql"),
    },
    Migration {
        version: 30,
        name: "patient_words_updated",
        sql: include_str!("../migrations/sqlite/0030_patient_words_updated.sql"),
    },
    Migration {
        version: 31,
        name: "patient_words_names",
        sql: include_str!("../migrations/sqlite/0031_patient_words_names.sql"),
    },
    Migration {
        version: 32,
        name: "patient_words_shared",
        sql: include_str!("../migrations/sqlite/0032_patient_words_shared.sql"),
    },
    Migration {
        version: 33,
        name: "patient_words_prefix",
        sql: include_str!("../migrations/sqlite/0033_patient_words_prefix.sql"),
    },
];

/// PostgreSQL migrations.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "hl7",
        sql: include_str!("../migrations/postgres/0002_hl7.sql"),
    },
    Migration {
        version: 3,
        name: "encounters",
        sql: include_str!("../migrations/postgres/0003_encounters.sql"),
    },
    Migration {
        version: 4,
        name: "beds",
        sql: include_str!("../migrations/postgres/0004_beds.sql"),
    },
    Migration {
        version: 5,
        name: "orientation",
        sql: include_str!("../migrations/postgres/0005_orientation.sql"),
    },
    Migration {
        version: 6,
        name: "bed_history",
        sql: include_str!("../migrations/postgres/0006_bed_history.sql"),
    },
    Migration {
        version: 7,
        name: "monitoring",
        sql: include_str!("../migrations/postgres/0007_monitoring.sql"),
    },
    Migration {
        version: 8,
        name: "monitoring_patient",
        sql: include_str!("../migrations/postgres/0008_monitoring_patient.sql"),
    },
    Migration {
        version: 9,
        name: "schedule",
        sql: include_str!("../migrations/postgres/0009_schedule.sql"),
    },
    Migration {
        version: 10,
        name: "appointment_external",
        sql: include_str!("../migrations/postgres/0010_appointment_external.sql"),
    },
    Migration {
        version: 11,
        name: "consultations",
        sql: include_str!("../migrations/postgres/0011_consultations.sql"),
    },
    Migration {
        version: 12,
        name: "documents",
        sql: include_str!("../migrations/postgres/0012_documents.sql"),
    },
    Migration {
        version: 13,
        name: "patient_contacts",
        sql: include_str!("../migrations/postgres/0013_patient_contacts.sql"),
    },
    Migration {
        version: 14,
        name: "incoming_documents",
        sql: include_str!("../migrations/postgres/0014_incoming_documents.sql"),
    },
    Migration {
        version: 15,
        name: "security",
        sql: include_str!("../migrations/postgres/0015_security.sql"),
    },
    Migration {
        version: 16,
        name: "administration",
        sql: include_str!("../migrations/postgres/0016_administration.sql"),
    },
    Migration {
        version: 17,
        name: "delivery_and_confirmation",
        sql: include_str!("../migrations/postgres/0017_delivery_and_confirmation.sql"),
    },
    Migration {
        version: 18,
        name: "federated_sign_in",
        sql: include_str!("../migrations/postgres/0018_federated_sign_in.sql"),
    },
    Migration {
        version: 19,
        name: "several_nodes",
        sql: include_str!("../migrations/postgres/0019_several_nodes.sql"),
    },
    Migration {
        version: 20,
        name: "patient_demographics",
        sql: include_str!("../migrations/postgres/0020_patient_demographics.sql"),
    },
    Migration {
        version: 21,
        name: "dmp_consultation_consent",
        sql: include_str!("../migrations/postgres/0021_dmp_consultation_consent.sql"),
    },
    Migration {
        version: 22,
        name: "fhir_subscriptions",
        sql: include_str!("../migrations/postgres/0022_fhir_subscriptions.sql"),
    },
    Migration {
        version: 23,
        name: "measures_from_devices",
        sql: include_str!("../migrations/postgres/0023_measures_from_devices.sql"),
    },
    Migration {
        version: 24,
        name: "operations",
        sql: include_str!("../migrations/postgres/0024_operations.sql"),
    },
    Migration {
        version: 25,
        name: "care_team",
        sql: include_str!("../migrations/postgres/0025_care_team.sql"),
    },
    Migration {
        version: 26,
        name: "patient_words",
        sql: include_str!("../migrations/postgres/0026_patient_words.sql"),
    },
    Migration {
        version: 27,
        name: "document_digest",
        sql: include_str!("../migrations/postgres/0027_document_digest.sql"),
    },
    Migration {
        version: 28,
        name: "patient_words_order",
        sql: include_str!("../migrations/postgres/0028_patient_words_order.sql"),
    },
    Migration {
        version: 29,
        name: "drop_patients_search",
        sql: include_str!("../migrations/postgres/0029_drop_patients_search.sql"),
    },
    Migration {
        version: 30,
        name: "patient_words_updated",
        sql: include_str!("../migrations/postgres/0030_patient_words_updated.sql"),
    },
    Migration {
        version: 31,
        name: "patient_words_names",
        sql: include_str!("../migrations/postgres/0031_patient_words_names.sql"),
    },
    Migration {
        version: 32,
        name: "patient_words_shared",
        sql: include_str!("../migrations/postgres/0032_patient_words_shared.sql"),
    },
    Migration {
        version: 33,
        name: "patient_words_prefix",
        sql: include_str!("../migrations/postgres/0033_patient_words_prefix.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

impl Store {
    /// Applies the migrations not yet applied, each in its own transaction. Returns
    /// the versions applied now. Safe to run at every start.
    pub async fn migrate(&self, now_ms: i64) -> Result<Vec<i64>> {
        let list = match self.engine() {
            crate::Engine::Sqlite => SQLITE,
            crate::Engine::Postgres => POSTGRES,
        };
        // Before the first table, so that a new SQLite file can give space
        // back after pruning (an existing one is converted once).
        if self.enable_incremental_vacuum().await? {
            tracing::info!("SQLite: auto_vacuum incrémental activé (fichier réécrit une fois)");
        }
        let applied = on_pool!(self, write, |pool| {
            sqlx::query(CREATE_TABLE).execute(pool).await?;
            let mut applied_now = Vec::new();
            for m in list {
                let mut tx = pool.begin_write().await?;
                // Serialise concurrent starters on PostgreSQL; a no-op cost on SQLite,
                // whose single writer already serialises.
                if self.engine() == crate::Engine::Postgres {
                    sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                        .execute(&mut *tx)
                        .await?;
                }
                let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_some() {
                    continue;
                }
                sqlx::raw_sql(m.sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StoreError::Migration {
                        version: m.version,
                        source,
                    })?;
                sqlx::query("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                applied_now.push(m.version);
            }
            applied_now
        });
        // Documents stored before their digest was: filled in now (nothing
        // to do, through a partial index, once they are).
        let filled = self.fill_document_digests().await?;
        if filled > 0 {
            tracing::info!(
                documents = filled,
                "taille et empreinte des documents renseignées"
            );
        }
        Ok(applied)
    }

    /// The versions recorded as applied.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<i64, _>("version").map_err(StoreError::from))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of each engine's migrations folder is in its list, under
    /// its number and name, in order: a file left out would never run (0029
    /// was, for a day).
    #[test]
    fn every_migration_file_is_listed() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".sql"))
                .collect();
            files.sort();
            let listed: Vec<String> = list
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.name))
                .collect();
            assert_eq!(listed, files, "{dir}");
            for (m, file) in list.iter().zip(&files) {
                let text = std::fs::read_to_string(path.join(file)).unwrap();
                assert_eq!(m.sql, text, "{dir}/{file}");
            }
        }
    }
}
