-- A subject revocation answers as soon as it is recorded; its ID-JAG and access-token records
-- are marked afterwards in small transactions. `pending` stays 1 until they all are.
ALTER TABLE subject_revocations ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
