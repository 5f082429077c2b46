-- The words of each patient's names, so that a search by the first letters of
-- any word of a name reads an index range instead of every record of the
-- domain (LIKE '% MA%' on search_name cannot use an index). kind: 'F' birth or
-- used name, 'G' given names. Written with the record (store/src/patients.rs).

CREATE TABLE patient_words (
    territory_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    word TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    PRIMARY KEY (territory_id, kind, word, patient_id)
) WITHOUT ROWID;
CREATE INDEX patient_words_patient ON patient_words(patient_id);

-- The records already there: search_name and search_given are " WORD WORD ".
WITH RECURSIVE split(territory_id, kind, patient_id, rest, word) AS (
    SELECT territory_id, 'F', id, ltrim(search_name || ' '), '' FROM patients
    UNION ALL
    SELECT territory_id, 'G', id, ltrim(search_given || ' '), '' FROM patients
    UNION ALL
    SELECT territory_id, kind, patient_id,
           ltrim(substr(rest, instr(rest, ' '))),
           substr(rest, 1, instr(rest, ' ') - 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO patient_words (territory_id, kind, word, patient_id)
SELECT territory_id, kind, word, patient_id FROM split WHERE word <> '';
