"""Postgres and S3: the repository (all SQL), the blob store, the one blob life cycle,
the collector, the check, migrations and the download relay. Knows nothing of HTTP."""
