-- Each word row carries its record's words as patients holds them
-- (search_name, search_given), so that a search by a one-word name and the
-- other kind of name (`family=mar&given=jea`) is paged from the first's words
-- range, the second matched on the row by the general search's own LIKE,
-- instead of intersecting two ranges (the given names' held 12,502 rows for
-- MAR) and reading every match's record (store/src/patients.rs::lone_word).
-- Written with the words (patients.rs::words_in), which a change of names
-- writes again.
ALTER TABLE patient_words ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
ALTER TABLE patient_words ADD COLUMN search_given TEXT NOT NULL DEFAULT '';

-- The rows already there.
UPDATE patient_words SET
    search_name = (SELECT p.search_name FROM patients p WHERE p.id = patient_words.patient_id),
    search_given = (SELECT p.search_given FROM patients p WHERE p.id = patient_words.patient_id);
