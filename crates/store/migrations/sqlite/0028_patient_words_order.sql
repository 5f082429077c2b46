-- Each word row carries its record's sort key (birth name, given names, as in
-- patients), so that a page of a one-word name search is read from the words
-- range and sorted there, and only the page's records are looked up, instead
-- of every match (store/src/patients.rs::word_page). The table is its primary
-- key's B-tree (WITHOUT ROWID): the range holds the new columns already.
-- Written with the words (patients.rs::words_in).
ALTER TABLE patient_words ADD COLUMN birth_name TEXT NOT NULL DEFAULT '';
ALTER TABLE patient_words ADD COLUMN given_names TEXT NOT NULL DEFAULT '';

-- The rows already there.
UPDATE patient_words SET
    birth_name = (SELECT p.birth_name FROM patients p WHERE p.id = patient_words.patient_id),
    given_names = (SELECT p.given_names FROM patients p WHERE p.id = patient_words.patient_id);
