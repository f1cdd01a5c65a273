-- Resumable uploads (tus 1.0.0): one row per upload, created for one variable of one
-- case instance. Everything an upload needs between requests is here or in S3, so any
-- replica continues an upload another began.
--
-- blob_key names a *pending* blob made at creation (the key is recorded before any byte
-- goes to S3); it is set to NULL in the transaction that commits the value. parts are
-- the S3 parts already uploaded ([{"PartNumber", "ETag", "Size"}], in order);
-- tail holds the bytes after the last full part, shorter than a part. The tail lives
-- in this row, not in an S3 object, so that one UPDATE checkpoints offset, parts, tail
-- and hash state together: they can never disagree after a crash.
-- sha256_state is the saved SHA-256 (service/storage/sha256state.py) of the bytes of
-- `parts`, that is of "offset" - length(tail) bytes; the tail is hashed with its part.
CREATE TABLE upload (
    id               text PRIMARY KEY,
    case_instance_id text NOT NULL REFERENCES case_instance (id) ON DELETE CASCADE,
    case_incarnation bigint NOT NULL,
    variable_name    text NOT NULL,
    value_type       text NOT NULL CHECK (value_type IN ('Bytes', 'File')),
    value_info       jsonb NOT NULL DEFAULT '{}',
    metadata         text,
    length           bigint CHECK (length >= 0),
    "offset"         bigint NOT NULL DEFAULT 0
        CHECK ("offset" >= 0 AND (length IS NULL OR "offset" <= length)),
    blob_key         text UNIQUE REFERENCES blob (key),
    s3_upload_id     text,
    parts            jsonb NOT NULL DEFAULT '[]',
    tail             bytea NOT NULL DEFAULT '',
    sha256_state     bytea,
    expected_sha256  bytea CHECK (octet_length(expected_sha256) = 32),
    lease_token      text,
    lease_until      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    committed_at     timestamptz,
    CHECK (committed_at IS NULL OR blob_key IS NULL)
);

-- The collector finds expired uploads by expires_at; deleting a case instance finds its
-- uploads by case_instance_id (the cascade).
CREATE INDEX upload_expires_idx ON upload (expires_at);
CREATE INDEX upload_case_idx ON upload (case_instance_id);

-- An upload row that goes (terminated, expired, discarded, or its case instance
-- deleted through the cascade) hands its still-pending blob to the collector in the
-- same transaction. The grace is the one of migrations/0009: a PATCH that is still
-- completing the object when the row goes cannot have it deleted under it.
CREATE FUNCTION casevars_release_upload_blob() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.blob_key IS NOT NULL THEN
        UPDATE blob
        SET state = 'garbage',
            garbage_since = now(),
            delete_after = now() + make_interval(secs => coalesce(
                nullif(current_setting('casevars.gc_grace_seconds', true), '')::float8,
                (SELECT value::float8 FROM casevars_setting WHERE name = 'gc_grace_seconds'),
                3600))
        WHERE key = OLD.blob_key AND state = 'pending';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER upload_release_blob
    AFTER DELETE ON upload
    FOR EACH ROW EXECUTE FUNCTION casevars_release_upload_blob();
