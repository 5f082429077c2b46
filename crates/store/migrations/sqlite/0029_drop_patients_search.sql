-- patients(territory_id, search_name) served no search: a name is searched
-- with LIKE '% WORD%' (a word anywhere in the name), which no B-tree on the
-- whole name can narrow; the words of patient_words do it (0026). Each new or
-- renamed record still wrote a page of it at random: dropped (the identity
-- feed over MLLP, 10 senders: SQLite 3,709-3,814 -> 3,960-4,050 messages/s,
-- PostgreSQL 2,933-2,937 -> 3,024-3,072/s). A domain's records are still
-- found by the other indexes that start with the territory.
DROP INDEX IF EXISTS patients_search;
