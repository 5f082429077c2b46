-- Remote monitoring, continued: units that propose an enrolment when ADT admits or
-- discharges a patient there; the proposals; photos and files sent by patients;
-- messages between a patient and the care team; reminders already sent.
ALTER TABLE units ADD COLUMN monitoring_programme TEXT;
ALTER TABLE units ADD COLUMN monitoring_trigger TEXT;
CREATE TABLE enrolment_proposals (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    programme_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    decided_at_ms BIGINT,
    decided_by TEXT
);
CREATE UNIQUE INDEX enrolment_proposals_open ON enrolment_proposals(patient_id, establishment_id, programme_id) WHERE status = 'proposed';
CREATE INDEX enrolment_proposals_queue ON enrolment_proposals(establishment_id, status);
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL
);
ALTER TABLE alerts ADD COLUMN attachment_id TEXT REFERENCES attachments(id);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    enrolment_id TEXT NOT NULL REFERENCES enrolments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    from_patient BOOLEAN NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    read_at_ms BIGINT
);
CREATE INDEX messages_enrolment ON messages(enrolment_id, at_ms);
CREATE INDEX messages_unread ON messages(establishment_id, from_patient, read_at_ms);
