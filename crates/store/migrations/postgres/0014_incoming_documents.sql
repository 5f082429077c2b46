-- Documents received by secure messaging (IMAP), one row per document found in
-- a mail (part 0 stands for a mail without any): filed on the patient matched by
-- INS or traits, queued for a human when no single patient matches, or rejected
-- with why. The row is written in the transaction that files the document, so a
-- mail read twice is filed once.
CREATE TABLE incoming_documents (
    id TEXT PRIMARY KEY,
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    message_id TEXT NOT NULL,
    part BIGINT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    unique_id TEXT,
    title TEXT NOT NULL,
    type_code TEXT NOT NULL,
    traits TEXT NOT NULL,
    content BYTEA,
    patient_id TEXT REFERENCES patients(id),
    document_id TEXT REFERENCES documents(id),
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (establishment_id, message_id, part)
);
CREATE INDEX incoming_documents_establishment ON incoming_documents(establishment_id, received_at_ms);
-- The unit a document was written for (its establishment's unit code), so the
-- dispatch dashboard shows each unit's documents and DMP feed rate.
ALTER TABLE documents ADD COLUMN unit TEXT;
-- Corrections: a new version of a validated document names the one it replaces;
-- the replaced one is marked when the new one is validated (or received).
ALTER TABLE documents ADD COLUMN replaces TEXT;
ALTER TABLE documents ADD COLUMN superseded_by TEXT;
