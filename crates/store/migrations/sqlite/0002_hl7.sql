-- HL7 v2 intake: known senders and the message log (every raw message, its ACK).
CREATE TABLE hl7_senders (
    id TEXT PRIMARY KEY,
    sending_application TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    created_at_ms INTEGER NOT NULL,
    UNIQUE (sending_application, sending_facility)
);
CREATE TABLE hl7_messages (
    id TEXT PRIMARY KEY,
    received_at_ms INTEGER NOT NULL,
    sender TEXT NOT NULL,
    control_id TEXT,
    message_type TEXT NOT NULL,
    status TEXT NOT NULL,
    errors TEXT NOT NULL,
    ack TEXT NOT NULL,
    raw BLOB NOT NULL,
    patient_id TEXT,
    establishment_id TEXT REFERENCES establishments(id),
    replay_of TEXT REFERENCES hl7_messages(id)
);
CREATE UNIQUE INDEX hl7_messages_dedup ON hl7_messages(sender, control_id) WHERE control_id IS NOT NULL AND replay_of IS NULL;
CREATE INDEX hl7_messages_received ON hl7_messages(received_at_ms);
CREATE INDEX hl7_messages_establishment ON hl7_messages(establishment_id, received_at_ms);
