-- The size and SHA-1 (base64, as FHIR Attachment.hash gives it) of a
-- document's stored content, written with the content
-- (store/src/documents.rs), so that listing a patient's DocumentReferences
-- does not read every document's bytes. The rows already there are filled in
-- by the start that applies this (Store::fill_document_digests), found through
-- the partial index below.
ALTER TABLE documents ADD COLUMN content_size BIGINT;
ALTER TABLE documents ADD COLUMN content_sha1 TEXT;
CREATE INDEX documents_digest_missing ON documents(id) WHERE content IS NOT NULL AND content_sha1 IS NULL;
