-- Clinical documents: drafted from a template, validated by a doctor, then sent
-- to each recipient (the patient's portal, the GP, the referrer, the DMP); or
-- received (an MHD submission, a mail) and filed. Content is kept as sent.
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    set_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    unique_id TEXT NOT NULL UNIQUE,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    validated_by TEXT,
    validated_at_ms BIGINT,
    content_type TEXT,
    content BYTEA
);
CREATE INDEX documents_patient ON documents(patient_id, created_at_ms);
CREATE INDEX documents_establishment ON documents(establishment_id, validated_at_ms);
CREATE TABLE document_recipients (
    document_id TEXT NOT NULL REFERENCES documents(id),
    recipient TEXT NOT NULL,
    address TEXT NOT NULL,
    outbox_key TEXT,
    state TEXT NOT NULL,
    detail TEXT,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (document_id, recipient)
);
-- What the hospital knows of each patient's shared record (PAM France ZFA, or typed).
CREATE TABLE patient_dmp (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    state TEXT NOT NULL,
    opposition BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
