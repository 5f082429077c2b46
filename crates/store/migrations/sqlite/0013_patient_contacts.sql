-- Where a patient wants their notices (booking, reminders, new documents) by
-- e-mail, as they gave it on the portal. Only the address: never a health fact.
CREATE TABLE patient_contacts (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    email TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
