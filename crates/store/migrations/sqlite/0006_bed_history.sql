-- Bed availability over time, per territory and category (snapshots).
CREATE TABLE bed_snapshots (
    territory_id TEXT NOT NULL REFERENCES territories(id),
    category TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    available INTEGER NOT NULL,
    capacity INTEGER NOT NULL,
    PRIMARY KEY (territory_id, category, at_ms)
);
