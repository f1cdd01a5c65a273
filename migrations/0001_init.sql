-- Case instances, their variables, and the S3 objects that hold binary values.

CREATE TABLE case_instance (
    id                  text PRIMARY KEY,
    business_key        text,
    case_definition_key text,
    case_definition_id  text,
    tenant_id           text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX case_instance_business_key_idx ON case_instance (business_key);
CREATE INDEX case_instance_definition_key_idx ON case_instance (case_definition_key);

-- Every object the service writes under S3_PREFIX has a row here first.
--   pending: an upload is (or was, if the process died) streaming into it;
--   live:    a variable points at it;
--   garbage: to be deleted from S3 once delete_after has passed.
CREATE TABLE blob (
    key          text PRIMARY KEY,
    state        text NOT NULL CHECK (state IN ('pending', 'live', 'garbage')),
    size         bigint CHECK (size >= 0),
    sha256       bytea CHECK (octet_length(sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    delete_after timestamptz,
    CHECK ((state = 'garbage') = (delete_after IS NOT NULL)),
    CHECK (state <> 'live' OR (size IS NOT NULL AND sha256 IS NOT NULL))
);

CREATE INDEX blob_garbage_idx ON blob (delete_after) WHERE state = 'garbage';
CREATE INDEX blob_pending_idx ON blob (created_at) WHERE state = 'pending';

-- type is Camunda's type name as GET answers it (String, Bytes, File, Object, ...).
-- value holds the JSON form of non-binary values; Bytes and File content is in
-- the blob named by blob_key.
CREATE TABLE variable (
    case_instance_id text NOT NULL REFERENCES case_instance (id) ON DELETE CASCADE,
    name             text NOT NULL,
    type             text NOT NULL,
    value            jsonb,
    value_info       jsonb NOT NULL DEFAULT '{}',
    blob_key         text UNIQUE REFERENCES blob (key),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_instance_id, name)
);
