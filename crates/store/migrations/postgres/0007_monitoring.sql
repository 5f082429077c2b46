-- Remote monitoring: enrolments, questionnaire responses, measures (for trends),
-- alerts and their triage timeline.
CREATE TABLE enrolments (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    programme_id TEXT NOT NULL,
    status TEXT NOT NULL,
    consent_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    end_reason TEXT,
    created_by TEXT NOT NULL
);
CREATE INDEX enrolments_patient ON enrolments(patient_id);
CREATE TABLE questionnaire_responses (
    id TEXT PRIMARY KEY,
    enrolment_id TEXT NOT NULL REFERENCES enrolments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    submitted_at_ms BIGINT NOT NULL,
    answers TEXT NOT NULL
);
CREATE INDEX responses_enrolment ON questionnaire_responses(enrolment_id, submitted_at_ms);
CREATE TABLE measures (
    patient_id TEXT NOT NULL REFERENCES patients(id),
    item TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    response_id TEXT NOT NULL REFERENCES questionnaire_responses(id)
);
CREATE INDEX measures_patient ON measures(patient_id, item, at_ms);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    enrolment_id TEXT NOT NULL REFERENCES enrolments(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    response_id TEXT REFERENCES questionnaire_responses(id),
    level TEXT NOT NULL,
    item TEXT NOT NULL,
    reason TEXT NOT NULL,
    advice TEXT NOT NULL,
    status TEXT NOT NULL,
    raised_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    outcome TEXT
);
CREATE INDEX alerts_queue ON alerts(establishment_id, status, raised_at_ms);
CREATE TABLE alert_events (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX alert_events_alert ON alert_events(alert_id, at_ms);
