-- Operations: the audit trail's cut, proved by checkpoints; views of a live
-- page audited once per session and patient; indexes the pruning reads.

-- A checkpoint is written when the oldest audit entries leave (after their
-- export): the last removed entry, its hash (the kept chain's first prev_hash)
-- and the export's digest. Checkpoints are chained themselves and append-only.
CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    from_seq INTEGER NOT NULL,
    through_seq INTEGER NOT NULL,
    through_hash TEXT NOT NULL,
    first_at_ms INTEGER NOT NULL,
    last_at_ms INTEGER NOT NULL,
    archive TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
-- Entries may leave only once a checkpoint covers them.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_checkpoints), 0)
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE audit_views (
    session_hash TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (session_hash, patient_id)
);
CREATE INDEX audit_views_at ON audit_views(at_ms);

CREATE INDEX document_recipients_outbox ON document_recipients(outbox_key) WHERE outbox_key IS NOT NULL;
CREATE INDEX outbox_delivered ON outbox(delivered_at_ms) WHERE delivered_at_ms IS NOT NULL;
CREATE INDEX outbox_dead ON outbox(dead_at_ms) WHERE dead_at_ms IS NOT NULL;
CREATE INDEX sessions_expiry ON sessions(expires_at_ms);
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at_ms);
CREATE INDEX hl7_messages_replay ON hl7_messages(replay_of) WHERE replay_of IS NOT NULL;
