//! The audit trail as a hash chain: each entry's hash covers its fields and the
//! previous entry's hash, so editing, removing or reordering an entry breaks the
//! chain from that point on. Pure computation; the store writes and reads entries.

use sha2::{Digest, Sha256};

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One access to patient data (or another security event): who, as what, where,
/// on which record, what, with which outcome, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (Unix milliseconds, UTC).
    pub at_ms: i64,
    /// `user`, `patient`, `client` or `system`.
    pub actor_kind: String,
    /// The actor's id (user, client) or a system component name.
    pub actor_id: String,
    /// Role used, if any.
    pub role: Option<String>,
    /// Establishment the role was held in, if any.
    pub establishment: Option<String>,
    /// Patient record concerned, if any.
    pub patient: Option<String>,
    /// What was done (`read`, `create`, `search`, `login`...).
    pub action: String,
    /// The resource touched (`Patient/…`, `session`...), never patient traits.
    pub resource: String,
    /// `success`, `denied`, `error`.
    pub outcome: String,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// Who acted, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    /// `user`, `patient`, `client` or `system`.
    pub kind: &'static str,
    /// User or client id, or a component name for `system`.
    pub id: String,
    /// The role used.
    pub role: Option<&'static str>,
    /// The establishment the role was held in.
    pub establishment: Option<String>,
}

impl AuditActor {
    /// The actor and the grant the policy allowed it through.
    pub fn new(actor: &crate::policy::Actor, grant: Option<crate::policy::Grant>) -> Self {
        use crate::policy::Principal;
        let (kind, id) = match actor.principal {
            Principal::Professional(u) => ("user", u.to_string()),
            Principal::Patient { user, .. } => ("patient", user.to_string()),
            Principal::Client(c) => ("client", c.to_string()),
        };
        Self {
            kind,
            id,
            role: grant.map(|g| g.role.code()),
            establishment: grant.map(|g| g.establishment.to_string()),
        }
    }

    /// The platform itself (seeding, migrations, workers).
    pub fn system(component: &str) -> Self {
        Self {
            kind: "system",
            id: component.to_owned(),
            role: None,
            establishment: None,
        }
    }
}

fn put(h: &mut Sha256, field: &str) {
    h.update((field.len() as u64).to_be_bytes());
    h.update(field.as_bytes());
}

fn put_opt(h: &mut Sha256, field: Option<&str>) {
    match field {
        None => h.update([0u8]),
        Some(f) => {
            h.update([1u8]);
            put(h, f);
        }
    }
}

impl AuditEntry {
    /// The hash of this entry's content chained to `prev_hash` (hex). Fields are
    /// length-prefixed so that no two different entries hash the same text.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.seq.to_be_bytes());
        h.update(self.at_ms.to_be_bytes());
        put(&mut h, &self.actor_kind);
        put(&mut h, &self.actor_id);
        put_opt(&mut h, self.role.as_deref());
        put_opt(&mut h, self.establishment.as_deref());
        put_opt(&mut h, self.patient.as_deref());
        put(&mut h, &self.action);
        put(&mut h, &self.resource);
        put(&mut h, &self.outcome);
        put(&mut h, &self.prev_hash);
        hex::encode(h.finalize())
    }

    /// Sets `prev_hash` and `hash` to seal this entry after `prev_hash`.
    pub fn seal(&mut self, prev_hash: &str) {
        self.prev_hash = prev_hash.to_owned();
        self.hash = self.compute_hash();
    }
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An entry's content does not match its hash: it was edited.
    #[error("entrée {seq}: contenu modifié (empreinte incohérente)")]
    Edited {
        /// The entry.
        seq: i64,
    },
    /// A sequence number is missing or out of order: an entry was removed or moved.
    #[error("entrée {expected} manquante (trouvé {found})")]
    Missing {
        /// The number expected here.
        expected: i64,
        /// The number found instead.
        found: i64,
    },
    /// An entry does not follow the previous entry's hash.
    #[error("entrée {seq}: chaînage rompu avec l'entrée précédente")]
    Broken {
        /// The entry.
        seq: i64,
    },
    /// The chain ends before the recorded head: the last entries were removed.
    #[error("fin de journal tronquée: {head_seq} entrées attendues, {found} trouvées")]
    Truncated {
        /// Entries the head records.
        head_seq: i64,
        /// Entries found.
        found: i64,
    },
}

/// Checks a chain incrementally, entry by entry, so that millions of entries are
/// verified in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }
}

impl ChainVerifier {
    /// Feeds the next entry (in `seq` order).
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainError> {
        if e.seq != self.next_seq {
            return Err(ChainError::Missing {
                expected: self.next_seq,
                found: e.seq,
            });
        }
        if e.compute_hash() != e.hash {
            return Err(ChainError::Edited { seq: e.seq });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainError::Broken { seq: e.seq });
        }
        self.next_seq += 1;
        self.prev_hash = e.hash.clone();
        Ok(())
    }

    /// Checks the end of the chain against the head recorded apart (last seq and hash).
    pub fn finish(self, head_seq: i64, head_hash: &str) -> Result<i64, ChainError> {
        let found = self.next_seq - 1;
        if found != head_seq || (found > 0 && self.prev_hash != head_hash) {
            return Err(ChainError::Truncated { head_seq, found });
        }
        Ok(found)
    }
}

impl ChainVerifier {
    /// A verifier of the chain kept after a cut: the next entry is
    /// `through_seq + 1` and chains to the last removed entry's hash.
    pub fn after(through_seq: i64, through_hash: &str) -> Self {
        Self {
            next_seq: through_seq + 1,
            prev_hash: through_hash.to_owned(),
        }
    }
}

/// The proof left when the oldest audit entries leave: which entries
/// (`from_seq..=through_seq`) were removed, the hash of the last one (the
/// kept chain's first `prev_hash`), when they were made, and the archive they
/// were exported to with its SHA-256. Checkpoints are chained like entries,
/// so removing or editing one breaks the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Position among checkpoints, from 1.
    pub seq: i64,
    /// First entry removed.
    pub from_seq: i64,
    /// Last entry removed.
    pub through_seq: i64,
    /// Its hash.
    pub through_hash: String,
    /// When the first removed entry was made (Unix ms).
    pub first_at_ms: i64,
    /// When the last removed entry was made (Unix ms).
    pub last_at_ms: i64,
    /// The archive's file name.
    pub archive: String,
    /// The archive's SHA-256 (hex).
    pub archive_sha256: String,
    /// When the cut was made (Unix ms).
    pub at_ms: i64,
    /// The previous checkpoint's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This checkpoint's hash.
    pub hash: String,
}

impl Checkpoint {
    /// SHA-256 over the fields and the previous checkpoint's hash.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        put(&mut h, "checkpoint");
        h.update(self.seq.to_be_bytes());
        h.update(self.from_seq.to_be_bytes());
        h.update(self.through_seq.to_be_bytes());
        put(&mut h, &self.through_hash);
        h.update(self.first_at_ms.to_be_bytes());
        h.update(self.last_at_ms.to_be_bytes());
        put(&mut h, &self.archive);
        put(&mut h, &self.archive_sha256);
        h.update(self.at_ms.to_be_bytes());
        put(&mut h, &self.prev_hash);
        hex::encode(h.finalize())
    }

    /// Sets `prev_hash` and computes `hash`.
    pub fn seal(&mut self, prev_hash: &str) {
        self.prev_hash = prev_hash.to_owned();
        self.hash = self.compute_hash();
    }
}

/// A break in the checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A checkpoint's fields do not match its hash.
    #[error("point de contrôle {seq} : contenu modifié (empreinte incohérente)")]
    Edited {
        /// Which.
        seq: i64,
    },
    /// A checkpoint is missing or out of order.
    #[error("point de contrôle {seq} : chaînage rompu avec le précédent")]
    Broken {
        /// Which.
        seq: i64,
    },
    /// The removed ranges do not follow each other from entry 1.
    #[error(
        "point de contrôle {seq} : entrées {from}..{through} ne suivent pas la coupe précédente"
    )]
    Gap {
        /// Which.
        seq: i64,
        /// Its first entry.
        from: i64,
        /// Its last entry.
        through: i64,
    },
}

/// Checks checkpoints in order: each sealed, chained to the previous, its
/// range following the previous one's from entry 1. Returns where the kept
/// chain starts (`through_seq`, `through_hash` of the last; `0`, [`GENESIS`]
/// without any).
pub fn verify_checkpoints(cps: &[Checkpoint]) -> Result<(i64, String), CheckpointError> {
    let mut prev = GENESIS.to_owned();
    let mut through = (0i64, GENESIS.to_owned());
    for (i, c) in cps.iter().enumerate() {
        if c.seq != i as i64 + 1 || c.prev_hash != prev {
            return Err(CheckpointError::Broken { seq: c.seq });
        }
        if c.compute_hash() != c.hash {
            return Err(CheckpointError::Edited { seq: c.seq });
        }
        if c.from_seq != through.0 + 1 || c.through_seq < c.from_seq {
            return Err(CheckpointError::Gap {
                seq: c.seq,
                from: c.from_seq,
                through: c.through_seq,
            });
        }
        prev = c.hash.clone();
        through = (c.through_seq, c.through_hash.clone());
    }
    Ok(through)
}

/// Checks an archive's entries against the checkpoint that removed them:
/// entries `from_seq..=through_seq` in order, chained from `prev_through_hash`
/// (the previous checkpoint's, or [`GENESIS`]) to `through_hash`.
pub fn verify_archive(
    cp: &Checkpoint,
    prev_through_hash: &str,
    entries: &[AuditEntry],
) -> Result<i64, ChainError> {
    let mut v = ChainVerifier::after(cp.from_seq - 1, prev_through_hash);
    for e in entries {
        v.push(e)?;
    }
    v.finish(cp.through_seq, &cp.through_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEntry {
                    seq,
                    at_ms: 1_700_000_000_000 + seq,
                    actor_kind: "user".into(),
                    actor_id: format!("u{seq}"),
                    role: Some("doctor".into()),
                    establishment: Some("e1".into()),
                    patient: (seq % 2 == 0).then(|| "p1".to_owned()),
                    action: "read".into(),
                    resource: "Patient/p1".into(),
                    outcome: "success".into(),
                    prev_hash: String::new(),
                    hash: String::new(),
                };
                e.seal(&prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry], head_seq: i64, head_hash: &str) -> Result<i64, ChainError> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head_seq, head_hash)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let last = c[4].hash.clone();
        assert_eq!(verify(&c, 5, &last), Ok(5));
        assert_eq!(verify(&[], 0, GENESIS), Ok(0));
    }

    #[test]
    fn an_edited_entry_is_found() {
        let mut c = chain(5);
        let last = c[4].hash.clone();
        c[2].outcome = "denied".into();
        assert_eq!(verify(&c, 5, &last), Err(ChainError::Edited { seq: 3 }));
    }

    #[test]
    fn an_edited_and_rehashed_entry_breaks_the_next_link() {
        let mut c = chain(5);
        let last = c[4].hash.clone();
        c[2].actor_id = "intruder".into();
        c[2].hash = c[2].compute_hash();
        assert_eq!(verify(&c, 5, &last), Err(ChainError::Broken { seq: 4 }));
    }

    #[test]
    fn a_removed_entry_is_found() {
        let mut c = chain(5);
        let last = c[4].hash.clone();
        c.remove(1);
        assert_eq!(
            verify(&c, 5, &last),
            Err(ChainError::Missing {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn a_truncated_tail_is_found() {
        let mut c = chain(5);
        let last = c[4].hash.clone();
        c.truncate(3);
        assert_eq!(
            verify(&c, 5, &last),
            Err(ChainError::Truncated {
                head_seq: 5,
                found: 3
            })
        );
    }

    #[test]
    fn none_and_empty_fields_hash_differently() {
        let mut a = chain(1).remove(0);
        let mut b = a.clone();
        a.role = None;
        b.role = Some(String::new());
        assert_ne!(a.compute_hash(), b.compute_hash());
    }

    /// Checkpoints cutting `c` after each of `cuts` (entry seqs).
    fn checkpoints(c: &[AuditEntry], cuts: &[i64]) -> Vec<Checkpoint> {
        let mut prev = GENESIS.to_owned();
        let mut from = 1;
        cuts.iter()
            .enumerate()
            .map(|(i, &through)| {
                let e = &c[usize::try_from(through - 1).unwrap()];
                let mut cp = Checkpoint {
                    seq: i as i64 + 1,
                    from_seq: from,
                    through_seq: through,
                    through_hash: e.hash.clone(),
                    first_at_ms: c[usize::try_from(from - 1).unwrap()].at_ms,
                    last_at_ms: e.at_ms,
                    archive: format!("a{through}"),
                    archive_sha256: "00".into(),
                    at_ms: 1,
                    prev_hash: String::new(),
                    hash: String::new(),
                };
                cp.seal(&prev);
                prev = cp.hash.clone();
                from = through + 1;
                cp
            })
            .collect()
    }

    #[test]
    fn the_kept_chain_verifies_from_the_last_cut() {
        let c = chain(8);
        let cps = checkpoints(&c, &[3, 5]);
        let (through, hash) = verify_checkpoints(&cps).unwrap();
        assert_eq!((through, hash.as_str()), (5, c[4].hash.as_str()));
        let mut v = ChainVerifier::after(through, &hash);
        for e in &c[5..] {
            v.push(e).unwrap();
        }
        assert_eq!(v.finish(8, &c[7].hash), Ok(8));
        // Kept entries that do not follow the cut are caught.
        let mut v = ChainVerifier::after(through, &hash);
        assert_eq!(
            v.push(&c[6]),
            Err(ChainError::Missing {
                expected: 6,
                found: 7
            })
        );
        assert_eq!(verify_checkpoints(&[]), Ok((0, GENESIS.to_owned())));
    }

    #[test]
    fn a_forged_missing_or_gapped_checkpoint_is_found() {
        let c = chain(8);
        let cps = checkpoints(&c, &[3, 5, 7]);
        let mut edited = cps.clone();
        edited[1].archive_sha256 = "ff".into();
        assert_eq!(
            verify_checkpoints(&edited),
            Err(CheckpointError::Edited { seq: 2 })
        );
        // Removing the middle one breaks the chain of the next.
        let removed = vec![cps[0].clone(), cps[2].clone()];
        assert_eq!(
            verify_checkpoints(&removed),
            Err(CheckpointError::Broken { seq: 3 })
        );
        // A range that skips entries, sealed as if honest.
        let mut gap = checkpoints(&c, &[3])[0].clone();
        gap.from_seq = 2;
        gap.seal(GENESIS);
        assert_eq!(
            verify_checkpoints(&[gap]),
            Err(CheckpointError::Gap {
                seq: 1,
                from: 2,
                through: 3
            })
        );
    }

    #[test]
    fn an_archive_is_checked_against_its_checkpoint() {
        let c = chain(8);
        let cps = checkpoints(&c, &[3, 6]);
        assert_eq!(verify_archive(&cps[0], GENESIS, &c[..3]), Ok(3));
        assert_eq!(
            verify_archive(&cps[1], &cps[0].through_hash, &c[3..6]),
            Ok(6)
        );
        // An entry left out, one edited, one too many: each refused.
        let short = [c[3].clone(), c[5].clone()];
        assert!(verify_archive(&cps[1], &cps[0].through_hash, &short).is_err());
        let mut edited = c[3..6].to_vec();
        edited[1].action = "write".into();
        assert_eq!(
            verify_archive(&cps[1], &cps[0].through_hash, &edited),
            Err(ChainError::Edited { seq: 5 })
        );
        assert!(verify_archive(&cps[1], &cps[0].through_hash, &c[3..7]).is_err());
        assert!(
            verify_archive(&cps[1], GENESIS, &c[3..6]).is_err(),
            "wrong predecessor"
        );
    }
}
