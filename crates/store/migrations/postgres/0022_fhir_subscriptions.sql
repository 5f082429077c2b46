-- FHIR R4 Subscriptions of API clients: what to watch (a resource type of the
-- client's establishment, optionally one patient's), and how to tell (a
-- rest-hook endpoint, signed with the sealed secret, or the WebSocket).
-- headers: one `Name: value` per line.
CREATE TABLE fhir_subscriptions (
    id TEXT PRIMARY KEY,
    client_pk TEXT NOT NULL REFERENCES api_clients(id),
    establishment_id TEXT NOT NULL REFERENCES establishments(id),
    resource_type TEXT NOT NULL,
    criteria TEXT NOT NULL,
    patient_id TEXT,
    channel TEXT NOT NULL,
    endpoint TEXT,
    payload TEXT,
    headers TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    end_ms BIGINT,
    error TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX fhir_subscriptions_client ON fhir_subscriptions (client_pk);
CREATE INDEX fhir_subscriptions_active ON fhir_subscriptions (status, resource_type);
