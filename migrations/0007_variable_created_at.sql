-- When a variable was created: the createTime of Camunda's historic variable
-- instances. An upsert keeps it (the row, and so the variable instance, stays);
-- updated_at tells when the value last changed. Rows from before this migration take
-- their last change as the best time known.
ALTER TABLE variable ADD COLUMN created_at timestamptz;
UPDATE variable SET created_at = updated_at;
ALTER TABLE variable ALTER COLUMN created_at SET DEFAULT now(),
                     ALTER COLUMN created_at SET NOT NULL;
-- The variable-instance queries filter by name across case instances.
CREATE INDEX variable_name_idx ON variable (name);
