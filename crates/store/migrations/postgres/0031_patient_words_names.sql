-- Each word row carries its record's words as patients holds them
-- (search_name, search_given), so that a search by a one-word name and the
-- other kind of name (`family=mar&given=jea`) is paged from the first's words
-- range, the second matched on the row by the general search's own LIKE,
-- instead of intersecting two ranges (the given names' held 12,502 rows for
-- MAR) and reading every match's record (store/src/patients.rs::lone_word).
-- Written with the words (patients.rs::words_in), which a change of names
-- writes again. In the primary key's INCLUDE, as the other copied columns.
ALTER TABLE patient_words ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
ALTER TABLE patient_words ADD COLUMN search_given TEXT NOT NULL DEFAULT '';

ALTER TABLE patient_words DROP CONSTRAINT patient_words_pkey,
    ADD PRIMARY KEY (territory_id, kind, word, patient_id)
        INCLUDE (birth_name, given_names, updated_at_ms, search_name, search_given);

-- The rows already there.
UPDATE patient_words w SET search_name = p.search_name, search_given = p.search_given
FROM patients p WHERE p.id = w.patient_id;
