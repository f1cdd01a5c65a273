-- A variable that stops pointing at a blob (its value replaced, the variable deleted,
-- or its case instance deleted through the cascade) hands that blob to the collector
-- in the same transaction. A trigger sees the row as it really was, so this holds for
-- every write path and every race between writers, not only the ones the service
-- reads before it writes.
--
-- The grace period comes from the session setting casevars.gc_grace_seconds, which
-- the service sets on each connection (CASEVARS_GC_GRACE_SECONDS); one hour otherwise.
CREATE FUNCTION casevars_release_blob() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.blob_key IS NOT NULL
       AND (TG_OP = 'DELETE' OR OLD.blob_key IS DISTINCT FROM NEW.blob_key) THEN
        UPDATE blob
        SET state = 'garbage',
            garbage_since = now(),
            delete_after = now() + make_interval(secs => coalesce(
                nullif(current_setting('casevars.gc_grace_seconds', true), '')::float8,
                3600))
        WHERE key = OLD.blob_key;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER variable_release_blob
    AFTER UPDATE OF blob_key OR DELETE ON variable
    FOR EACH ROW EXECUTE FUNCTION casevars_release_blob();
