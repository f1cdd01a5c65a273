-- The case definitions that instances are created from (POST /case-definition/key/{key}
-- and /key/{key}/tenant-id/{tenantId}/create): one per key and tenant, its id of
-- Camunda's shape (service/camunda/definitions.py), so that POST
-- /case-definition/{id}/create with an id a response showed finds its key and tenant.
-- casevars has no CMMN models: a definition is a key, recorded on first use and kept.
CREATE TABLE case_definition (
    id         text PRIMARY KEY,
    key        text NOT NULL,
    tenant_id  text,
    created_at timestamptz NOT NULL DEFAULT now()
);
