-- The words of birth and used names in buckets of their first three letters,
-- each bucket in the default sort's order (birth name, given names, record):
-- a family name search of three letters, the most common, reads its first
-- page from the start of its bucket and stops there, instead of reading and
-- sorting every word of its range (4,450 rows for BER at 100,000 records).
-- Two words of one record in a bucket are next to each other, so that telling
-- records apart needs no temporary index either. The given names' copy
-- (search_given, 0031) is in it so that a family name with a given name is
-- answered from the index alone; the primary key's columns (word among them)
-- are in every index of this table. Given names' words are left out: each
-- word is one more row to place at every identity written, and a search by a
-- given name alone is rarer. `kind` is the index's condition, not one of its
-- columns, as on PostgreSQL (where a key column between the domain and the
-- bucket, taken out of the scan's keys, would make it read the whole domain).
-- Read by patients.rs::word_page.
CREATE INDEX patient_words_prefix ON patient_words
    (territory_id, substr(word, 1, 3), birth_name, given_names, patient_id, search_given)
    WHERE kind = 'F';
