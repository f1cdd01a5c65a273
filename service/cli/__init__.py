"""The `casevars` command: serve, migrate, collect, check, the people's client commands
(put, get, ls) and the embedded Postgres and SeaweedFS of the local default."""
