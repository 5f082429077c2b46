-- Each word row carries `shared`: how many leading characters its word has in
-- common with another word of the same record and kind (0 when it has no
-- other). A search prefix longer than that cannot find the record by two of
-- its words, so a count takes those rows as they are (COUNT(*)) and tells
-- records apart (COUNT(DISTINCT), a temporary index of their ids, most of a
-- count's time) only among the others (store/src/patients.rs,
-- count_search_patients). Written with the words (patients.rs::words_in).
ALTER TABLE patient_words ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;

-- The rows already there: for the records with two words of a kind, the
-- longest prefix each word shares with another.
WITH RECURSIVE n(k) AS (
    SELECT 1
    UNION ALL
    SELECT k + 1 FROM n WHERE k < (SELECT MAX(length(word)) FROM patient_words)
)
UPDATE patient_words SET shared = (
    SELECT COALESCE(MAX(n.k), 0) FROM patient_words o, n
    WHERE o.patient_id = patient_words.patient_id AND o.kind = patient_words.kind
      AND o.word <> patient_words.word AND n.k <= length(patient_words.word)
      AND substr(o.word, 1, n.k) = substr(patient_words.word, 1, n.k))
WHERE patient_id IN (
    SELECT patient_id FROM patient_words GROUP BY patient_id, kind HAVING COUNT(*) > 1);
