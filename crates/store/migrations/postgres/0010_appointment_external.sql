-- The id an external agenda gives an appointment (SIU SCH-2 filler id, else SCH-1),
-- to find it again when that agenda moves or cancels it.
ALTER TABLE appointments ADD COLUMN external_id TEXT;
CREATE INDEX appointments_external ON appointments(establishment_id, external_id);
