-- A subject revocation answers as soon as it is recorded; its ID-JAG and access-token records
-- are marked afterwards in small transactions. `pending` stays 1 until they all are.
ALTER TABLE subject_revocations ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;

-- Access tokens are marked through their ID-JAG record (id_jag_id), so nothing looks them up
-- by subject any more, and this index cost a write to a random page on every exchange.
DROP INDEX access_tokens_subject;
