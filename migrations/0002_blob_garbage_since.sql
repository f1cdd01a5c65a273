-- When a blob became garbage. delete_after (= garbage_since + the grace in force then)
-- still decides when the collector deletes it; garbage_since lets
-- `casevars collect --grace SECONDS` apply another grace. Rows marked garbage by code
-- older than this migration have it NULL: the collector then takes
-- delete_after - CASEVARS_GC_GRACE_SECONDS instead.
ALTER TABLE blob ADD COLUMN garbage_since timestamptz;
ALTER TABLE blob ADD CONSTRAINT blob_garbage_since_check
    CHECK (state = 'garbage' OR garbage_since IS NULL);

-- `casevars check` reads blob rows in the order S3 lists keys (UTF-8 bytes, which is
-- COLLATE "C"), in keyset pages; this index serves each page without a sort, whatever
-- the database's default collation.
CREATE INDEX blob_key_c_idx ON blob (key COLLATE "C");
