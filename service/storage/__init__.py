"""Postgres and S3: the repository (all SQL), the blob store, the one blob life cycle,
the collector, the check, migrations and the download relay. Knows nothing of HTTP."""

from collections.abc import Callable

# Told of every call to Postgres or S3: (operation, seconds, failed), e.g.
# ("UploadPart", 0.4, False); the metrics count them.
CallObserver = Callable[[str, float, bool], None]
