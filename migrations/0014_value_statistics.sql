-- Statistics on the Boolean and number values the conditions of
-- service/storage/conditions.py compare. The indexes of migrations/0011 are partial,
-- and Postgres keeps no statistics for a partial index's expressions: without these it
-- guessed that `true` or a bound near the top matched thousands of the variables of a
-- name, and for a name compared ignoring case (no statistics on lower(name) either) it
-- then read every case instance into a hash instead of looking up the few that match
-- (175 ms instead of 1 ms at 1,000,000 case instances). Text and dates get none on
-- purpose: their values differ by name (dates are digits, other text mostly letters),
-- so statistics over all text made ranges on one name look common; the planner's
-- fixed guesses for text pick the lookups. CREATE STATISTICS locks the table only
-- against other DDL and VACUUM; ANALYZE reads a sample (about a second at 5,000,000
-- variables) and fills them.
CREATE STATISTICS IF NOT EXISTS variable_boolean_stats ON (casevars_boolean(value)) FROM variable;
CREATE STATISTICS IF NOT EXISTS variable_number_stats ON (casevars_number(value)) FROM variable;
ANALYZE variable;
