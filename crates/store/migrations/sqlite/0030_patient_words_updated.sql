-- Each word row carries its record's last change too, so that a one-word name
-- search sorted by _lastUpdated (or by id) is paged from the words range like
-- the name order (store/src/patients.rs::word_page) instead of reading every
-- match's record: `family=bou&_sort=-_lastUpdated` read 2,760 records for a
-- page of 20. Written with the words (patients.rs::words_in); kept equal to the
-- record's by the trigger below, whatever statement changes the record.
ALTER TABLE patient_words ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER patient_words_updated AFTER UPDATE OF updated_at_ms ON patients
BEGIN
    UPDATE patient_words SET updated_at_ms = NEW.updated_at_ms WHERE patient_id = NEW.id;
END;

-- The rows already there.
UPDATE patient_words SET
    updated_at_ms = (SELECT p.updated_at_ms FROM patients p WHERE p.id = patient_words.patient_id);
