-- The record beyond the INS traits (domain::demographics): one row of single
-- values per patient, and the addresses, phones/e-mails and close ones in order.
CREATE TABLE patient_details (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    birth_city TEXT,
    birth_country TEXT,
    gp_rpps TEXT,
    gp_family TEXT,
    gp_given TEXT,
    language TEXT,
    deceased_on TEXT,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE patient_addresses (
    patient_id TEXT NOT NULL REFERENCES patients(id),
    rank BIGINT NOT NULL,
    use_code TEXT NOT NULL,
    lines TEXT NOT NULL,
    postal_code TEXT,
    city TEXT,
    country TEXT,
    PRIMARY KEY (patient_id, rank)
);

CREATE TABLE patient_telecoms (
    patient_id TEXT NOT NULL REFERENCES patients(id),
    rank BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (patient_id, rank)
);

CREATE TABLE patient_relations (
    patient_id TEXT NOT NULL REFERENCES patients(id),
    rank BIGINT NOT NULL,
    role TEXT NOT NULL,
    relationship TEXT,
    family TEXT NOT NULL,
    given TEXT,
    phone TEXT,
    PRIMARY KEY (patient_id, rank)
);
