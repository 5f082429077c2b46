-- Foundation schema (PostgreSQL). Ids are UUID text, times are Unix milliseconds (UTC).
CREATE TABLE territories (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    oid TEXT NOT NULL UNIQUE,
    ipp_counter BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE establishments (
    id TEXT PRIMARY KEY,
    territory_id TEXT NOT NULL REFERENCES territories(id),
    name TEXT NOT NULL,
    finess TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX establishments_territory ON establishments(territory_id);
CREATE TABLE units (
    id TEXT PRIMARY KEY,
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (establishment_id, code)
);
CREATE TABLE patients (
    id TEXT PRIMARY KEY,
    territory_id TEXT NOT NULL REFERENCES territories(id),
    ipp TEXT NOT NULL,
    birth_name TEXT NOT NULL,
    given_names TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex TEXT NOT NULL,
    birthplace_code TEXT,
    used_name TEXT,
    used_given_name TEXT,
    search_name TEXT NOT NULL,
    search_given TEXT NOT NULL,
    ins_kind TEXT,
    ins_value TEXT,
    identity_status TEXT NOT NULL,
    merged_into TEXT REFERENCES patients(id),
    version BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (territory_id, ipp)
);
CREATE UNIQUE INDEX patients_active_ins ON patients(territory_id, ins_value) WHERE ins_value IS NOT NULL AND merged_into IS NULL;
CREATE INDEX patients_search ON patients(territory_id, search_name);
CREATE INDEX patients_birth ON patients(territory_id, birth_date);
CREATE TABLE patient_establishments (
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (patient_id, establishment_id)
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    totp_last_step BIGINT,
    rpps TEXT,
    profession TEXT,
    patient_id TEXT REFERENCES patients(id),
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, establishment_id, role)
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    mfa_done BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE api_clients (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    role TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    client_pk TEXT NOT NULL REFERENCES api_clients(id),
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    role TEXT,
    establishment_id TEXT,
    patient_id TEXT,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_patient ON audit_log(patient_id, seq);
CREATE INDEX audit_establishment ON audit_log(establishment_id, seq);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- Append-only: the application never updates or deletes audit entries.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    destination TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT,
    last_error TEXT,
    delivered_at_ms BIGINT,
    dead_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox(next_attempt_at_ms) WHERE delivered_at_ms IS NULL AND dead_at_ms IS NULL;
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
