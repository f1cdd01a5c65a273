-- casevars: no transaction
-- Indexes for variable conditions (service/storage/conditions.py), built without
-- blocking writes: each statement runs on its own, outside a transaction (see
-- service/storage/migrate.py). Every index leads with lower(name), so that one index
-- serves names compared exactly (rechecked after) and ignoring case; text has a
-- second index for values compared ignoring case. Only rows of the index's kind are
-- in it. Dates are text (UTC, one format), so the text index orders them too.
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_text_idx
    ON variable (lower(name), casevars_text(value) COLLATE "C")
    WHERE casevars_text(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_text_folded_idx
    ON variable (lower(name), lower(casevars_text(value)) COLLATE "C")
    WHERE casevars_text(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_number_idx
    ON variable (lower(name), casevars_number(value))
    WHERE casevars_number(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_boolean_idx
    ON variable (lower(name), casevars_boolean(value))
    WHERE casevars_boolean(value) IS NOT NULL;
