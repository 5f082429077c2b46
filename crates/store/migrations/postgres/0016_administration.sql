-- Set-up and administration without the demo seed.
-- What an establishment does (MCO, SSR, HAD, PSY, SLD), beside its legal kind.
ALTER TABLE establishments ADD COLUMN activity TEXT NOT NULL DEFAULT 'MCO';
-- A professional's e-mail address, where invitations and reset links go.
ALTER TABLE users ADD COLUMN email TEXT;
-- Territory administrators: create establishments, administer every one of them.
CREATE TABLE territory_admins (
    user_id TEXT NOT NULL REFERENCES users(id),
    territory_id TEXT NOT NULL REFERENCES territories(id),
    PRIMARY KEY (user_id, territory_id)
);
-- One-time links: first set-up, an invitation, a password or second-factor
-- reset. Only the token's SHA-256 is kept; a link works once, before it expires.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    purpose TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT
);
CREATE INDEX invitations_user ON invitations(user_id);
-- Second-factor recovery codes (SHA-256 of each), each usable once.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
-- Each establishment's integration endpoints (ORU, SIU, MHD, SMTP sender, IMAP
-- mailbox, payment account, fee). Secrets are never values here: a setting
-- names the file or the environment variable that holds one.
CREATE TABLE establishment_settings (
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (establishment_id, name)
);
-- Monitoring programmes an establishment offers.
CREATE TABLE establishment_programmes (
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    programme_id TEXT NOT NULL,
    PRIMARY KEY (establishment_id, programme_id)
);
-- A practitioner's absences at an establishment (holidays, a closed day): no
-- slot is offered nor bookable from the first to the last day (French dates).
CREATE TABLE absences (
    id TEXT PRIMARY KEY,
    practitioner_id TEXT NOT NULL REFERENCES users(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX absences_practitioner ON absences(practitioner_id, establishment_id);
-- A practitioner's one-off openings at an establishment, on a date outside the
-- weekly pattern (an extra Saturday morning).
CREATE TABLE extra_openings (
    id TEXT PRIMARY KEY,
    practitioner_id TEXT NOT NULL REFERENCES users(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    day TEXT NOT NULL,
    start_min BIGINT NOT NULL,
    end_min BIGINT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    mode TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX extra_openings_practitioner ON extra_openings(practitioner_id, establishment_id);
