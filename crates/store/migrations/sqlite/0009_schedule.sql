-- Practitioners' weekly openings and the appointments booked on them. One booked
-- appointment per practitioner and start time: the database refuses a double booking.
CREATE TABLE openings (
    id TEXT PRIMARY KEY,
    practitioner_id TEXT NOT NULL REFERENCES users(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    weekday INTEGER NOT NULL,
    start_min INTEGER NOT NULL,
    end_min INTEGER NOT NULL,
    slot_minutes INTEGER NOT NULL,
    mode TEXT NOT NULL
);
CREATE INDEX openings_practitioner ON openings(practitioner_id);
CREATE TABLE appointments (
    id TEXT PRIMARY KEY,
    practitioner_id TEXT NOT NULL REFERENCES users(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    booked_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    cancelled_at_ms INTEGER,
    cancel_reason TEXT
);
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments(practitioner_id, start_ms) WHERE status = 'booked';
CREATE INDEX appointments_patient ON appointments(patient_id, start_ms);
