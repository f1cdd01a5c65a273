-- Which life of its id a case instance row is: an instance deleted and created again
-- with the same id is another instance, with another incarnation. An upload remembers
-- the incarnation it started in and commits only into that one, so an upload to an
-- instance deleted meanwhile fails (404) even when the id has been taken again.
-- Existing rows are numbered as the column is added.
ALTER TABLE case_instance ADD COLUMN incarnation bigint GENERATED ALWAYS AS IDENTITY;
