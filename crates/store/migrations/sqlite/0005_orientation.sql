-- Orientation requests (acute care to SSR or HAD), their recipients and timeline.
CREATE TABLE orientation_requests (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    territory_id TEXT NOT NULL REFERENCES territories(id),
    from_establishment_id TEXT NOT NULL REFERENCES establishments(id),
    created_by TEXT NOT NULL,
    target TEXT NOT NULL,
    needs TEXT NOT NULL,
    wished_date TEXT NOT NULL,
    urgent BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER
);
CREATE INDEX orientation_from ON orientation_requests(from_establishment_id, created_at_ms);
CREATE TABLE orientation_recipients (
    request_id TEXT NOT NULL REFERENCES orientation_requests(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    responded_at_ms INTEGER,
    PRIMARY KEY (request_id, establishment_id)
);
CREATE INDEX orientation_to ON orientation_recipients(establishment_id);
CREATE TABLE orientation_events (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES orientation_requests(id),
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    establishment_id TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX orientation_events_request ON orientation_events(request_id, at_ms);
