-- Each word row carries its record's sort key (birth name, given names, as in
-- patients), so that a page of a one-word name search is read from the words
-- range and sorted there, and only the page's records are looked up, instead
-- of every match (store/src/patients.rs::word_page). The primary key includes
-- the new columns, so that the range is read from the index alone once the
-- table is vacuumed. Written with the words (patients.rs::words_in).
ALTER TABLE patient_words ADD COLUMN birth_name TEXT NOT NULL DEFAULT '';
ALTER TABLE patient_words ADD COLUMN given_names TEXT NOT NULL DEFAULT '';

-- The rows already there.
UPDATE patient_words w SET birth_name = p.birth_name, given_names = p.given_names
FROM patients p WHERE p.id = w.patient_id;

ALTER TABLE patient_words DROP CONSTRAINT patient_words_pkey,
    ADD PRIMARY KEY (territory_id, kind, word, patient_id) INCLUDE (birth_name, given_names);
