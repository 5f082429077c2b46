-- Stays (venues) and their movements, fed by IHE PAM France ADT.
CREATE TABLE encounters (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    visit_number TEXT NOT NULL,
    status TEXT NOT NULL,
    class TEXT,
    unit TEXT,
    room TEXT,
    bed TEXT,
    started_at_ms BIGINT,
    ended_at_ms BIGINT,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (establishment_id, visit_number)
);
CREATE INDEX encounters_patient ON encounters(patient_id);
CREATE INDEX encounters_occupancy ON encounters(establishment_id, status);
CREATE TABLE movements (
    id TEXT PRIMARY KEY,
    encounter_id TEXT NOT NULL REFERENCES encounters(id),
    movement_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    trigger_event TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    unit TEXT,
    room TEXT,
    bed TEXT,
    class TEXT,
    cancelled BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (encounter_id, movement_id)
);
