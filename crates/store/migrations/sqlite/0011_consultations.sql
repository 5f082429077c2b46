-- A closed teleconsultation: the note, the prescription (its lines below), the
-- doctor's final approval and the fee's settlement. The patient is given the
-- prescription only once settled (paid or waived) and approved.
CREATE TABLE consultations (
    appointment_id TEXT PRIMARY KEY REFERENCES appointments(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    practitioner_id TEXT NOT NULL REFERENCES users(id),
    note TEXT NOT NULL,
    free_text TEXT NOT NULL,
    number TEXT NOT NULL UNIQUE,
    closed_at_ms INTEGER NOT NULL,
    approved_at_ms INTEGER,
    fee_cents INTEGER NOT NULL,
    settled_method TEXT,
    settled_at_ms INTEGER,
    settled_by TEXT,
    checkout_id TEXT UNIQUE
);
CREATE INDEX consultations_patient ON consultations(patient_id, closed_at_ms);
CREATE TABLE prescription_lines (
    appointment_id TEXT NOT NULL REFERENCES consultations(appointment_id),
    position INTEGER NOT NULL,
    medication TEXT NOT NULL,
    dose TEXT NOT NULL,
    frequency TEXT NOT NULL,
    duration TEXT NOT NULL,
    PRIMARY KEY (appointment_id, position)
);
