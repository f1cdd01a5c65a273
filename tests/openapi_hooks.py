"""Hooks the schemathesis CLI of tests/test_openapi.py loads (SCHEMATHESIS_HOOKS): a tus
PATCH body (application/offset+octet-stream) is bytes, sent as an
application/octet-stream body is."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
