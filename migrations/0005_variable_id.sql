-- Every variable gets an id of its own: Camunda's variable-instance routes address a
-- variable by it (GET /variable-instance/{id}). An upsert keeps the row, and so the
-- id, as Camunda keeps a variable instance's id when its value is replaced; a
-- variable deleted and set again is a new row with a new id.
-- gen_random_uuid() is built into Postgres 13 and later.
ALTER TABLE variable ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX variable_id_idx ON variable (id);
