"""Case definition ids of Camunda's shape. Camunda names a deployed definition
`{key}:{version}:{generated id}`, or the generated id alone when that would pass the
64 characters of its id columns. casevars deploys nothing: each key (per tenant) is
one definition, version 1, and its id is derived from key and tenant, so every replica
names it alike without asking Postgres first."""

from __future__ import annotations

import uuid

# The version of every casevars case definition: there is one per key and tenant.
DEFINITION_VERSION = 1
# Camunda's id columns (ID_ varchar(64)): a longer `key:version:id` is the id alone.
MAX_COMPOSED_ID_LENGTH = 64
# Fixed, so that ids stay the same across replicas, restarts and versions.
_NAMESPACE = uuid.UUID("4f1f7a5e-9d0b-4f5e-8a55-2c3b6d0e7a91")


def case_definition_id(key: str, tenant_id: str | None) -> str:
    """The id of the case definition of key (for tenant_id, or no tenant)."""
    # A NUL cannot be in a key or tenant id (paths.py refuses it), so the two parts
    # cannot run into each other.
    name = key if tenant_id is None else f"{tenant_id}\x00{key}"
    generated = str(uuid.uuid5(_NAMESPACE, name))
    composed = f"{key}:{DEFINITION_VERSION}:{generated}"
    return composed if len(composed) <= MAX_COMPOSED_ID_LENGTH else generated
