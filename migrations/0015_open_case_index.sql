-- casevars: no transaction
-- The ids of the case instances the runtime routes list (closed ones are history), in
-- order: a page far down GET /case-instance?firstResult=... is found by skipping
-- entries of this index alone (an index-only scan) rather than reading every row
-- before it (service/storage/case_query.py). Built without blocking writes, as
-- migrations/0011 builds its indexes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS case_instance_open_id_idx
    ON case_instance (id) WHERE state <> 'closed';
