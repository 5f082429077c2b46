-- Each word row carries `shared`: how many leading characters its word has in
-- common with another word of the same record and kind (0 when it has no
-- other). A search prefix longer than that cannot find the record by two of
-- its words, so a count takes those rows as they are (COUNT(*)) and tells
-- records apart (COUNT(DISTINCT)) only among the others
-- (store/src/patients.rs, count_search_patients). Written with the words
-- (patients.rs::words_in). In the primary key's INCLUDE, as the other copied
-- columns, so that a count stays an index-only scan.
ALTER TABLE patient_words ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;

ALTER TABLE patient_words DROP CONSTRAINT patient_words_pkey,
    ADD PRIMARY KEY (territory_id, kind, word, patient_id)
        INCLUDE (birth_name, given_names, updated_at_ms, search_name, search_given, shared);

-- The rows already there: for the records with two words of a kind, the
-- longest prefix each word shares with another.
UPDATE patient_words w SET shared = s.shared
FROM (
    SELECT w1.patient_id, w1.kind, w1.word, MAX(k) AS shared
    FROM patient_words w1
    JOIN patient_words w2
      ON w2.patient_id = w1.patient_id AND w2.kind = w1.kind AND w2.word <> w1.word
    CROSS JOIN LATERAL generate_series(1, length(w1.word)) AS k
    WHERE substr(w2.word, 1, k) = substr(w1.word, 1, k)
    GROUP BY w1.patient_id, w1.kind, w1.word
) s
WHERE w.patient_id = s.patient_id AND w.kind = s.kind AND w.word = s.word;
