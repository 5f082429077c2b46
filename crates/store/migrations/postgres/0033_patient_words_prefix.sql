-- The words of birth and used names in buckets of their first three letters,
-- each bucket in the default sort's order (birth name, given names, record):
-- a family name search of three letters, the most common, reads its first
-- page from the start of its bucket and stops there, instead of reading and
-- sorting every word of its range (4,450 rows for BER at 100,000 records).
-- Two words of one record in a bucket are next to each other, so that telling
-- records apart needs no sort either. The word and the given names' copy
-- (search_given, 0031) are included so that a family name with a given name
-- is answered by an index-only scan. Given names' words are left out: each
-- word is one more entry to place at every identity written, and a search by
-- a given name alone is rarer. `kind` is the index's condition, not one of
-- its columns: PostgreSQL takes a condition the index's own implies out of
-- the scan's keys, and without a key on the column between them it would read
-- every entry of the domain to find the bucket (12 ms for TEL at 100,000
-- records, against 0.1 ms). Read by patients.rs::word_page.
CREATE INDEX patient_words_prefix ON patient_words
    (territory_id, substr(word, 1, 3), birth_name, given_names, patient_id)
    INCLUDE (word, search_given)
    WHERE kind = 'F';
