-- A case definition's history time to live in days, as Camunda keeps it per definition
-- (PUT /case-definition/{id}/history-time-to-live). NULL: none set, and the collector
-- removes the definition's closed instances CASEVARS_HISTORY_TTL_SECONDS after they
-- closed; otherwise this many days after. A nullable column without default: adding it
-- rewrites nothing, and code deployed before it never reads it.
ALTER TABLE case_definition ADD COLUMN history_ttl_days integer
    CHECK (history_ttl_days >= 0);
