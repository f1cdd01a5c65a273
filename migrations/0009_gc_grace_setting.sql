-- The garbage grace period where a connection carries none. Behind a pooler in
-- transaction mode (PgBouncer) a session setting cannot be relied on: the server
-- connection a transaction runs on is any of the pooler's. There `serve` keeps the
-- grace it was started with in this table (CASEVARS_DB_TRANSACTION_POOLING), and the
-- trigger of migrations/0003 falls back to it before its default of one hour.
CREATE TABLE casevars_setting (
    name  text PRIMARY KEY,
    value text NOT NULL
);

CREATE OR REPLACE FUNCTION casevars_release_blob() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.blob_key IS NOT NULL
       AND (TG_OP = 'DELETE' OR OLD.blob_key IS DISTINCT FROM NEW.blob_key) THEN
        UPDATE blob
        SET state = 'garbage',
            garbage_since = now(),
            delete_after = now() + make_interval(secs => coalesce(
                nullif(current_setting('casevars.gc_grace_seconds', true), '')::float8,
                (SELECT value::float8 FROM casevars_setting WHERE name = 'gc_grace_seconds'),
                3600))
        WHERE key = OLD.blob_key;
    END IF;
    RETURN NULL;
END;
$$;
