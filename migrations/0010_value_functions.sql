-- A variable's value as each kind of value the queries compare, NULL for a value of
-- any other JSON type: the keys of the indexes of migrations/0011 and what
-- service/storage/conditions.py compares. IMMUTABLE so that an index can hold them;
-- plain SQL expressions (no STRICT) so that the planner inlines them.
CREATE OR REPLACE FUNCTION casevars_text(value jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'string' THEN value #>> '{}' END $$;

CREATE OR REPLACE FUNCTION casevars_number(value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric END $$;

CREATE OR REPLACE FUNCTION casevars_boolean(value jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'boolean' THEN value::boolean END $$;
