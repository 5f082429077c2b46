-- The care team's side of remote monitoring: an item's alerts muted for one
-- patient, how an alert ended, the team's opening hours that SLAs count in,
-- and the doctors' on-call rota that escalated alerts reach.

CREATE TABLE alert_mutes (
    id TEXT PRIMARY KEY,
    enrolment_id TEXT NOT NULL REFERENCES enrolments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    item TEXT NOT NULL,
    max_grade BIGINT,
    max_level TEXT NOT NULL,
    reason TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    ended_at_ms BIGINT,
    ended_by TEXT,
    end_note TEXT
);
CREATE INDEX alert_mutes_enrolment ON alert_mutes(enrolment_id, starts_at_ms);
CREATE INDEX alert_mutes_running ON alert_mutes(until_ms) WHERE ended_at_ms IS NULL;
-- The muting a muted alert was silenced by.
ALTER TABLE alerts ADD COLUMN mute_id TEXT REFERENCES alert_mutes(id);
-- How a closed alert ended (advice, teleconsultation, emergency, orientation,
-- none): counted per programme, sent in the closing ORU.
ALTER TABLE alerts ADD COLUMN outcome_kind TEXT;

CREATE TABLE team_hours (
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    weekday BIGINT NOT NULL,
    start_min BIGINT NOT NULL,
    end_min BIGINT NOT NULL,
    PRIMARY KEY (establishment_id, weekday, start_min)
);
CREATE TABLE team_calendars (
    establishment_id TEXT PRIMARY KEY REFERENCES establishments(id),
    alsace_moselle BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE on_call (
    id TEXT PRIMARY KEY,
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX on_call_when ON on_call(establishment_id, ends_at_ms);

-- How each notice to a patient left (sms, email, portail) and, for an SMS,
-- the SMS centre's message id and the state its delivery receipt gave.
CREATE TABLE notices_sent (
    outbox_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    message_id TEXT,
    state TEXT,
    sent_at_ms BIGINT NOT NULL,
    state_at_ms BIGINT
);
CREATE UNIQUE INDEX notices_sent_message ON notices_sent(message_id) WHERE message_id IS NOT NULL;
-- The channel a patient chose on their account.
CREATE TABLE notice_preferences (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    channel TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
-- A patient's notices, for their portal page.
CREATE INDEX outbox_notices ON outbox(destination, created_at_ms) WHERE topic = 'notify';

-- Guests of a video consultation (an interpreter, a relative, a second
-- professional): a single-use link (kept as its SHA-256) bound to the first
-- browser that opens it, valid for that appointment only, revocable; the
-- doctor lets the guest in.
CREATE TABLE room_guests (
    id TEXT PRIMARY KEY,
    appointment_id TEXT NOT NULL REFERENCES appointments(id),
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    contact TEXT,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    browser_hash TEXT,
    ready_at_ms BIGINT,
    admitted_at_ms BIGINT,
    revoked_at_ms BIGINT
);
CREATE INDEX room_guests_appointment ON room_guests(appointment_id);
