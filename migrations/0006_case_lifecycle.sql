-- The CMMN life cycle of a case instance, as Camunda's: active -> completed or
-- terminated -> closed. A closed instance leaves every runtime route (404, not
-- listed) but keeps its row and its variables, read by the history routes, until
-- the history time to live (CASEVARS_HISTORY_TTL_SECONDS) after closed_at has passed;
-- then the collector deletes it, and its blobs become garbage through the trigger of
-- migrations/0003 like every other deletion. Existing instances are active.
ALTER TABLE case_instance
    ADD COLUMN state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'completed', 'terminated', 'closed')),
    ADD COLUMN closed_at timestamptz,
    ADD CONSTRAINT case_instance_closed_at_check CHECK ((state = 'closed') = (closed_at IS NOT NULL));

-- The collector finds the closed instances whose time to live has passed.
CREATE INDEX case_instance_closed_idx ON case_instance (closed_at) WHERE state = 'closed';
