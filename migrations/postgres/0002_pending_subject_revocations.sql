-- A subject revocation answers as soon as it is recorded; its ID-JAG and access-token records
-- are marked afterwards in small transactions. `pending` stays true until they all are.
ALTER TABLE subject_revocations ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;

-- Marking walks a subject's records in id order; with the id in the key, each chunk reads
-- only the entries after the previous one instead of sorting them all.
DROP INDEX id_jag_tokens_subject;
CREATE INDEX id_jag_tokens_subject ON id_jag_tokens (idp_provider_id, subject, id);

-- Access tokens are marked through their ID-JAG record (id_jag_id), so nothing looks them up
-- by subject any more, and this index cost a write to a random page on every exchange.
DROP INDEX access_tokens_subject;
