-- Several Parcours nodes on one database: what one process used to keep in
-- memory and every node must now agree on.
-- A timer job's run for one period, claimed by the first node that asks: a
-- period's job runs once across nodes, and the table says where and when.
CREATE TABLE job_runs (
    job TEXT NOT NULL,
    slot BIGINT NOT NULL,
    node TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    PRIMARY KEY (job, slot)
);
-- Work one node holds at a time (reading a mailbox), until its lease ends or
-- the holder gives it back.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
-- Attempts counted in fixed windows, per endpoint and key (an address or an
-- account): sign-in, second factor, tokens, password resets.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits(window_start_ms);
-- Who waits in a virtual waiting room: since when, the connection that holds
-- the presence now (NULL once it closed), the node that holds that connection
-- and when that node last said it was alive (one statement per node for all
-- its connections), so that a node lost with its connections shows them gone
-- within a minute.
CREATE TABLE waiting_presence (
    appointment_id TEXT PRIMARY KEY REFERENCES appointments(id),
    since_ms BIGINT NOT NULL,
    connection TEXT,
    node TEXT NOT NULL,
    seen_at_ms BIGINT NOT NULL,
    camera BOOLEAN NOT NULL DEFAULT 0,
    microphone BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX waiting_presence_node ON waiting_presence(node);
-- Consultation rooms the doctor has opened (the waiting patient goes in),
-- until the consultation is closed.
CREATE TABLE open_rooms (
    appointment_id TEXT PRIMARY KEY REFERENCES appointments(id),
    opened_at_ms BIGINT NOT NULL
);
