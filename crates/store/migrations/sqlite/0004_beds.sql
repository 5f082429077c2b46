-- Beds per unit: category, capacity, where occupancy comes from, closures; and the
-- trace of every manual change (for history and accountability).
CREATE TABLE unit_beds (
    unit_id TEXT PRIMARY KEY REFERENCES units(id),
    category TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    source TEXT NOT NULL,
    manual_occupied INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    closed_reason TEXT,
    updated_at_ms INTEGER NOT NULL,
    updated_by TEXT
);
CREATE TABLE bed_events (
    id TEXT PRIMARY KEY,
    unit_id TEXT NOT NULL REFERENCES units(id),
    at_ms INTEGER NOT NULL,
    change TEXT NOT NULL,
    amount INTEGER NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    occupied INTEGER NOT NULL
);
CREATE INDEX bed_events_unit ON bed_events(unit_id, at_ms);
CREATE INDEX encounters_unit ON encounters(establishment_id, unit, status);
