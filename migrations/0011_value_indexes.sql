-- casevars: no transaction
-- Indexes for variable conditions (service/storage/conditions.py), built without
-- blocking writes: each statement runs on its own, outside a transaction (see
-- service/storage/migrate.py). Every index leads with lower(name), so that one index
-- serves names compared exactly (rechecked after) and ignoring case; text has a
-- second index for values compared ignoring case. Only rows of the index's kind are
-- in it. Dates are text (UTC, one format), so the text index orders them too. Text is
-- indexed by its first 200 characters: a btree entry holds at most 2704 bytes, and a
-- String can be longer (the conditions compare the start, then the whole text).
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_text_idx
    ON variable (lower(name), (left(casevars_text(value), 200) COLLATE "C"))
    WHERE casevars_text(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_text_folded_idx
    ON variable (lower(name), (left(lower(casevars_text(value)), 200) COLLATE "C"))
    WHERE casevars_text(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_number_idx
    ON variable (lower(name), casevars_number(value))
    WHERE casevars_number(value) IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS variable_boolean_idx
    ON variable (lower(name), casevars_boolean(value))
    WHERE casevars_boolean(value) IS NOT NULL;
