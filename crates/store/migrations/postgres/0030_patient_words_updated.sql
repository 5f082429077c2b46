-- Each word row carries its record's last change too, so that a one-word name
-- search sorted by _lastUpdated (or by id) is paged from the words range like
-- the name order (store/src/patients.rs::word_page) instead of reading every
-- match's record: `family=bou&_sort=-_lastUpdated` read 2,760 records for a
-- page of 20. Written with the words (patients.rs::words_in); kept equal to the
-- record's by the trigger below, whatever statement changes the record. The
-- primary key includes it, as it does the name order's columns (0028).
ALTER TABLE patient_words ADD COLUMN updated_at_ms BIGINT NOT NULL DEFAULT 0;

ALTER TABLE patient_words DROP CONSTRAINT patient_words_pkey,
    ADD PRIMARY KEY (territory_id, kind, word, patient_id) INCLUDE (birth_name, given_names, updated_at_ms);

CREATE FUNCTION patient_words_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE patient_words SET updated_at_ms = NEW.updated_at_ms WHERE patient_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER patient_words_updated AFTER UPDATE OF updated_at_ms ON patients
    FOR EACH ROW EXECUTE FUNCTION patient_words_updated();

-- The rows already there.
UPDATE patient_words w SET updated_at_ms = p.updated_at_ms
FROM patients p WHERE p.id = w.patient_id;
