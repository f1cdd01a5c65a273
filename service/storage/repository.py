"""The SQL of case instances, variables and blob states (pending -> live -> garbage).

Every write that changes which blob a variable points at happens in one transaction
that also marks the replaced blob garbage, so Postgres always knows every object the
service put in S3. Parameters are always bound, never formatted in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from service.storage import CallObserver
from service.storage.blobstore import Blob
from service.storage.case_history import (
    HistoricCaseQuery,
    historic_count_sql,
    historic_query_sql,
)
from service.storage.case_query import (
    CASE_COLUMNS,
    LIFE_COLUMNS,
    CaseAttribute,
    CaseQuery,
    case_count_sql,
    case_query_sql,
)
from service.storage.db import observed_connection
from service.storage.variable_query import (
    DELETE_HISTORIC_SQL,
    VariableQuery,
    variable_by_id_sql,
    variable_count_sql,
    variable_query_sql,
    variable_uuid,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]


# A step a caller adds to a write's transaction (write_variables's `then`).
TransactionStep = Callable[["Connection"], Awaitable[None]]


class NoSuchCaseInstance(Exception):
    """The case instance does not exist, or is closed (and was not to be created)."""


class ClosedCaseInstance(Exception):
    """The id belongs to a closed case instance, kept for history: it cannot be taken
    again until the history time to live removes it."""


# Camunda's states of a case instance (migrations/0006). A closed one is history only.
CaseState = Literal["active", "completed", "terminated", "closed"]
# What each transition Camunda offers a case instance leads from and to.
TRANSITIONS: dict[str, tuple[tuple[CaseState, ...], CaseState]] = {
    "complete": (("active",), "completed"),
    "terminate": (("active",), "terminated"),
    "close": (("completed", "terminated"), "closed"),
}


class IllegalTransition(Exception):
    """The case instance is not in a state the transition leads from."""

    def __init__(self, state: CaseState) -> None:
        super().__init__(state)
        self.state: CaseState = state


class LostPendingBlob(Exception):
    """The pending blob of an upload was collected before the upload finished."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclasses.dataclass(frozen=True)
class CaseInstance:
    id: str
    business_key: str | None
    case_definition_key: str | None
    case_definition_id: str | None
    tenant_id: str | None
    state: CaseState = "active"
    created_at: datetime | None = None
    closed_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class StoredVariable:
    """A variable as Postgres holds it; binary content, if any, is in `blob`. id is the
    variable instance id Camunda's variable-instance routes use."""

    id: str
    name: str
    type: str
    value: Any
    value_info: dict[str, Any]
    blob: Blob | None


@dataclasses.dataclass(frozen=True)
class NewValue:
    """What a write stores for one variable. A blob must be pending; it becomes live."""

    type: str
    value: Any = None
    value_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    blob: Blob | None = None


_CASE_COLUMNS = ", ".join(CASE_COLUMNS.values())
# What a read of a case instance returns: its fields and its life cycle.
_CASE_READ = ", ".join((*CASE_COLUMNS.values(), *LIFE_COLUMNS))
# Runtime reads and writes see only instances that are not closed (history keeps those).
_OPEN = "state <> 'closed'"
# What PUT /case-instance/{id} may change, in the order of put_case_instance's SQL.
UPDATABLE = (
    CaseAttribute.BUSINESS_KEY,
    CaseAttribute.CASE_DEFINITION_KEY,
    CaseAttribute.CASE_DEFINITION_ID,
    CaseAttribute.TENANT_ID,
)
_VARIABLE_COLUMNS = """
    v.id, v.name, v.type, v.value, v.value_info, v.blob_key, b.size, b.sha256
"""


@dataclasses.dataclass(frozen=True)
class DefinitionQuery:
    """A query of the recorded case definitions (migrations/0008)."""

    ids: tuple[str, ...] | None = None
    key: str | None = None
    key_like: str | None = None
    tenant_ids: tuple[str, ...] | None = None
    without_tenant_id: bool = False
    include_without_tenant_id: bool = False
    # (column, descending?), applied in order: id, key or tenant_id.
    sorting: tuple[tuple[str, bool], ...] = ()


def _definition_where(query: DefinitionQuery) -> tuple[str, list[Any]]:
    clauses, arguments = ["TRUE"], []
    for clause, value in (
        ("id = ANY(${}::text[])", None if query.ids is None else list(query.ids)),
        ("key = ${}", query.key),
        ('key LIKE ${} COLLATE "C"', query.key_like),
    ):
        if value is not None:
            arguments.append(value)
            clauses.append(clause.format(len(arguments)))
    if query.tenant_ids is not None:
        arguments.append(list(query.tenant_ids))
        tenant = f"tenant_id = ANY(${len(arguments)}::text[])"
        clauses.append(
            f"({tenant} OR tenant_id IS NULL)" if query.include_without_tenant_id else tenant
        )
    if query.without_tenant_id:
        clauses.append("tenant_id IS NULL")
    return " AND ".join(clauses), arguments


def _case(row: asyncpg.Record) -> CaseInstance:
    return CaseInstance(
        id=row["id"],
        business_key=row["business_key"],
        case_definition_key=row["case_definition_key"],
        case_definition_id=row["case_definition_id"],
        tenant_id=row["tenant_id"],
        state=row["state"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
    )


def _variable(row: asyncpg.Record) -> StoredVariable:
    blob = None
    if row["blob_key"] is not None:
        blob = Blob(row["blob_key"], row["size"], bytes(row["sha256"]))
    return StoredVariable(
        str(row["id"]), row["name"], row["type"], row["value"], row["value_info"], blob
    )


class Repository:
    def __init__(self, pool: asyncpg.Pool, *, observe: CallObserver | None = None) -> None:
        self._pool = pool
        self._observe = observe

    def _connection(self, operation: str) -> contextlib.AbstractAsyncContextManager[Connection]:
        return observed_connection(self._pool, operation, self._observe)

    async def ping(self) -> None:
        async with self._connection("ping") as connection:
            await connection.fetchval("SELECT 1")

    # --- case instances -------------------------------------------------------

    async def get_case_instance(self, case_id: str) -> CaseInstance | None:
        """The case instance, None when it does not exist or is closed."""
        async with self._connection("get_case_instance") as connection:
            row = await connection.fetchrow(
                f"SELECT {_CASE_READ} FROM case_instance WHERE id = $1 AND {_OPEN}", case_id
            )
        return None if row is None else _case(row)

    async def get_historic_case_instance(self, case_id: str) -> CaseInstance | None:
        """The case instance in any state, closed included (history)."""
        async with self._connection("get_historic_case_instance") as connection:
            row = await connection.fetchrow(
                f"SELECT {_CASE_READ} FROM case_instance WHERE id = $1", case_id
            )
        return None if row is None else _case(row)

    async def put_case_instance(
        self, case_id: str, fields: Mapping[CaseAttribute, str | None]
    ) -> tuple[CaseInstance, bool]:
        """Create the case instance or update the given fields; (instance, created).
        ClosedCaseInstance when the id is a closed instance's."""
        columns = [CASE_COLUMNS[attribute] for attribute in UPDATABLE]
        values = [fields.get(attribute) for attribute in UPDATABLE]
        given = [attribute in fields for attribute in UPDATABLE]
        async with self._connection("put_case_instance") as connection:
            row = await connection.fetchrow(
                f"""
                INSERT INTO case_instance AS c (id, {", ".join(columns)})
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (id) DO UPDATE SET
                    business_key = CASE WHEN $6 THEN EXCLUDED.business_key
                                        ELSE c.business_key END,
                    case_definition_key = CASE WHEN $7 THEN EXCLUDED.case_definition_key
                                               ELSE c.case_definition_key END,
                    case_definition_id = CASE WHEN $8 THEN EXCLUDED.case_definition_id
                                              ELSE c.case_definition_id END,
                    tenant_id = CASE WHEN $9 THEN EXCLUDED.tenant_id ELSE c.tenant_id END
                WHERE c.state <> 'closed'
                RETURNING {_CASE_READ}, (xmax = 0) AS created
                """,
                case_id,
                *values,
                *given,
            )
        if row is None:
            raise ClosedCaseInstance(case_id)
        return _case(row), row["created"]

    async def create_case_instance(
        self, case: CaseInstance, variables: Mapping[str, NewValue]
    ) -> None:
        """Insert a new case instance with its first variables, all or nothing."""
        async with self._connection("create_case_instance") as connection, connection.transaction():
            await connection.execute(
                f"INSERT INTO case_instance ({_CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                case.id,
                case.business_key,
                case.case_definition_key,
                case.case_definition_id,
                case.tenant_id,
            )
            await self._write(connection, case.id, variables, ())

    async def record_case_definition(
        self, definition_id: str, key: str, tenant_id: str | None
    ) -> None:
        """Remember the case definition of key and tenant (a no-op once it is known)."""
        async with self._connection("record_case_definition") as connection:
            await connection.execute(
                """
                INSERT INTO case_definition (id, key, tenant_id) VALUES ($1, $2, $3)
                ON CONFLICT (id) DO NOTHING
                """,
                definition_id,
                key,
                tenant_id,
            )

    async def find_case_definition(self, definition_id: str) -> tuple[str, str | None] | None:
        """(key, tenant id) of a recorded case definition, None if there is none."""
        async with self._connection("find_case_definition") as connection:
            row = await connection.fetchrow(
                "SELECT key, tenant_id FROM case_definition WHERE id = $1", definition_id
            )
        return None if row is None else (row["key"], row["tenant_id"])

    async def case_definition(
        self, definition_id: str
    ) -> tuple[str, str | None, int | None] | None:
        """(key, tenant id, history time to live in days) of a recorded case definition,
        None if there is none."""
        async with self._connection("case_definition") as connection:
            row = await connection.fetchrow(
                "SELECT key, tenant_id, history_ttl_days FROM case_definition WHERE id = $1",
                definition_id,
            )
        return None if row is None else (row["key"], row["tenant_id"], row["history_ttl_days"])

    async def set_case_definition_history_ttl(self, definition_id: str, days: int | None) -> bool:
        """Give the recorded definition a history time to live in days (None: the
        service's default); False when no definition has the id."""
        async with self._connection("set_case_definition_history_ttl") as connection:
            updated = await connection.fetchval(
                "UPDATE case_definition SET history_ttl_days = $2 WHERE id = $1 RETURNING 1",
                definition_id,
                days,
            )
        return bool(updated)

    async def query_case_definitions(
        self, query: DefinitionQuery, *, first: int, limit: int | None
    ) -> list[tuple[str, str, str | None, int | None]]:
        """(id, key, tenant id, history time to live in days) of the recorded case
        definitions the query matches."""
        where, arguments = _definition_where(query)
        order = [
            f"{column} {'DESC' if descending else 'ASC'}" for column, descending in query.sorting
        ]
        arguments += [first, limit]
        sql = (
            f"SELECT id, key, tenant_id, history_ttl_days FROM case_definition WHERE {where} "
            f"ORDER BY {', '.join([*order, 'id ASC'])} "
            f"OFFSET ${len(arguments) - 1} LIMIT ${len(arguments)}"
        )
        async with self._connection("query_case_definitions") as connection:
            rows = await connection.fetch(sql, *arguments)
        return [(row["id"], row["key"], row["tenant_id"], row["history_ttl_days"]) for row in rows]

    async def count_case_definitions(self, query: DefinitionQuery) -> int:
        where, arguments = _definition_where(query)
        async with self._connection("count_case_definitions") as connection:
            count = await connection.fetchval(
                f"SELECT count(*) FROM case_definition WHERE {where}", *arguments
            )
        return int(count)

    async def delete_case_instance(self, case_id: str) -> bool:
        """Delete the instance and its variables (their blobs become garbage through the
        trigger of migrations/0003, in the same statement); a closed one is not found."""
        async with self._connection("delete_case_instance") as connection:
            deleted = await connection.fetchval(
                f"DELETE FROM case_instance WHERE id = $1 AND {_OPEN} RETURNING 1", case_id
            )
        return bool(deleted)

    async def transition_case_instance(
        self,
        case_id: str,
        transition: str,
        values: Mapping[str, NewValue],
        deletions: Sequence[str],
    ) -> None:
        """Apply deletions, then values, then Camunda's transition (TRANSITIONS), all in
        one transaction: a refused transition changes nothing. NoSuchCaseInstance when
        the instance does not exist or is closed; IllegalTransition with its state when
        the transition does not lead from it; LostPendingBlob as for write_variables."""
        sources, target = TRANSITIONS[transition]
        async with (
            self._connection("transition_case_instance") as connection,
            connection.transaction(),
        ):
            # Held until commit: variable writes (FOR SHARE) wait, then see the new state.
            state = await connection.fetchval(
                f"SELECT state FROM case_instance WHERE id = $1 AND {_OPEN} FOR NO KEY UPDATE",
                case_id,
            )
            if state is None:
                raise NoSuchCaseInstance(case_id)
            if state not in sources:
                raise IllegalTransition(state)
            if values or deletions:
                await self._write(connection, case_id, values, deletions)
            await connection.execute(
                """
                UPDATE case_instance
                SET state = $2, closed_at = CASE WHEN $2 = 'closed' THEN now() END
                WHERE id = $1
                """,
                case_id,
                target,
            )

    # --- variables ------------------------------------------------------------

    async def get_variable(self, case_id: str, name: str) -> StoredVariable | None:
        """The variable; NoSuchCaseInstance when the case instance does not exist."""
        async with self._connection("get_variable") as connection:
            rows = await connection.fetch(
                f"""
                SELECT c.id AS case_id, {_VARIABLE_COLUMNS}
                FROM case_instance c
                LEFT JOIN variable v ON v.case_instance_id = c.id AND v.name = $2
                LEFT JOIN blob b ON b.key = v.blob_key
                WHERE c.id = $1 AND c.state <> 'closed'
                """,
                case_id,
                name,
            )
        if not rows:
            raise NoSuchCaseInstance(case_id)
        return None if rows[0]["name"] is None else _variable(rows[0])

    async def list_variables(self, case_id: str) -> list[StoredVariable]:
        """All variables of the case instance; NoSuchCaseInstance when it does not exist."""
        async with (
            self._connection("list_variables") as connection,
            connection.transaction(readonly=True),
        ):
            exists = await connection.fetchval(
                f"SELECT 1 FROM case_instance WHERE id = $1 AND {_OPEN}", case_id
            )
            if not exists:
                raise NoSuchCaseInstance(case_id)
            rows = await connection.fetch(
                f"""
                SELECT {_VARIABLE_COLUMNS} FROM variable v
                LEFT JOIN blob b ON b.key = v.blob_key
                WHERE v.case_instance_id = $1 ORDER BY v.name
                """,
                case_id,
            )
        return [_variable(row) for row in rows]

    async def case_incarnation(self, case_id: str) -> int | None:
        """Which life of its id the case instance is (migrations/0004), None when it
        does not exist or is closed: a write that must land in this very instance passes
        it on."""
        async with self._connection("case_incarnation") as connection:
            incarnation: int | None = await connection.fetchval(
                f"SELECT incarnation FROM case_instance WHERE id = $1 AND {_OPEN}", case_id
            )
            return incarnation

    async def case_instance_exists(self, case_id: str) -> bool:
        async with self._connection("case_instance_exists") as connection:
            return bool(
                await connection.fetchval(
                    f"SELECT 1 FROM case_instance WHERE id = $1 AND {_OPEN}", case_id
                )
            )

    async def write_variables(  # noqa: PLR0913 - the write and keyword-only options
        self,
        case_id: str,
        values: Mapping[str, NewValue],
        deletions: Sequence[str] = (),
        *,
        create_case_instance: bool = False,
        incarnation: int | None = None,
        then: TransactionStep | None = None,
    ) -> None:
        """Set and delete variables in one transaction. Blobs the variables pointed at
        before become garbage (trigger of migrations/0003). then: a last step of the
        same transaction (a resumable upload marks itself committed); what it raises
        rolls the whole write back.

        NoSuchCaseInstance when the case instance does not exist and may not be
        created, is closed, or is not the given incarnation (deleted and created again
        since); LostPendingBlob when a new blob is no longer pending.
        """
        try:
            async with self._connection("write_variables") as connection:
                single = len(values) == 1 and not deletions and incarnation is None and then is None
                if single and not create_case_instance:
                    # The common case, a single write, is a single statement.
                    ((name, new),) = values.items()
                    if new.blob is None:
                        if not await self._upsert(connection, case_id, name, new):
                            raise NoSuchCaseInstance(case_id)
                        return
                async with connection.transaction():
                    if create_case_instance:
                        await connection.execute(
                            "INSERT INTO case_instance (id) VALUES ($1) ON CONFLICT DO NOTHING",
                            case_id,
                        )
                    await self._write(connection, case_id, values, deletions, incarnation)
                    if then is not None:
                        await then(connection)
        except asyncpg.ForeignKeyViolationError:
            raise NoSuchCaseInstance(case_id) from None

    async def _write(
        self,
        connection: Connection,
        case_id: str,
        values: Mapping[str, NewValue],
        deletions: Sequence[str],
        incarnation: int | None = None,
    ) -> None:
        # Holding the case row keeps a concurrent DELETE or state transition of the case
        # instance out (a closing waits for this write, or this write finds it closed)
        # and tells a missing case instance apart even when only deleting.
        found = await connection.fetchval(
            f"SELECT incarnation FROM case_instance WHERE id = $1 AND {_OPEN} FOR SHARE",
            case_id,
        )
        if found is None or incarnation not in (None, found):
            raise NoSuchCaseInstance(case_id)
        if deletions:
            await connection.execute(
                "DELETE FROM variable WHERE case_instance_id = $1 AND name = ANY($2::text[])",
                case_id,
                list(deletions),
            )
        # Names in a fixed order, so two writes to the same variables never deadlock.
        for name, new in sorted(values.items()):
            if new.blob is not None:
                made_live = await connection.fetchval(
                    """
                    UPDATE blob SET state = 'live', size = $2, sha256 = $3
                    WHERE key = $1 AND state = 'pending' RETURNING 1
                    """,
                    new.blob.key,
                    new.blob.size,
                    new.blob.sha256,
                )
                if not made_live:
                    raise LostPendingBlob(new.blob.key)
            if not await self._upsert(connection, case_id, name, new):
                raise NoSuchCaseInstance(case_id)

    @staticmethod
    async def _upsert(connection: Connection, case_id: str, name: str, new: NewValue) -> bool:
        """Insert or replace the variable; False when its case instance does not exist or
        is closed. The case row is held FOR SHARE as in _write, so this single statement
        needs no transaction around it."""
        written = await connection.fetchval(
            """
            WITH written AS (
            INSERT INTO variable (case_instance_id, name, type, value, value_info, blob_key)
            SELECT c.id, $2, $3, $4, $5, $6 FROM case_instance c
            WHERE c.id = $1 AND c.state <> 'closed' FOR SHARE
            ON CONFLICT (case_instance_id, name) DO UPDATE SET
                type = EXCLUDED.type, value = EXCLUDED.value,
                value_info = EXCLUDED.value_info, blob_key = EXCLUDED.blob_key,
                updated_at = now()
            RETURNING 1
            )
            SELECT count(*) FROM written
            """,
            case_id,
            name,
            new.type,
            new.value,
            dict(new.value_info),
            None if new.blob is None else new.blob.key,
        )
        return bool(written)

    async def delete_variable(self, case_id: str, name: str) -> None:
        """Delete one variable (fine if it does not exist); NoSuchCaseInstance if the
        case instance does not exist or is closed."""
        async with self._connection("delete_variable") as connection:
            found = await connection.fetchval(
                """
                WITH open AS (
                    SELECT id FROM case_instance WHERE id = $1 AND state <> 'closed' FOR SHARE
                ), gone AS (
                    DELETE FROM variable
                    WHERE case_instance_id = (SELECT id FROM open) AND name = $2
                )
                SELECT 1 FROM open
                """,
                case_id,
                name,
            )
        if not found:
            raise NoSuchCaseInstance(case_id)

    # --- case-instance queries ------------------------------------------------

    async def query_case_instances(
        self, query: CaseQuery, *, first: int, limit: int | None
    ) -> list[CaseInstance]:
        sql, arguments = case_query_sql(query, first=first, limit=limit)
        async with self._connection("query_case_instances") as connection:
            rows = await connection.fetch(sql, *arguments)
        return [_case(row) for row in rows]

    async def count_case_instances(self, query: CaseQuery) -> int:
        sql, arguments = case_count_sql(query)
        async with self._connection("count_case_instances") as connection:
            count = await connection.fetchval(sql, *arguments)
        return int(count)

    # --- historic case instances ---------------------------------------------

    async def query_historic_case_instances(
        self, query: HistoricCaseQuery, *, first: int, limit: int | None
    ) -> list[CaseInstance]:
        sql, arguments = historic_query_sql(query, first=first, limit=limit)
        async with self._connection("query_historic_case_instances") as connection:
            rows = await connection.fetch(sql, *arguments)
        return [_case(row) for row in rows]

    async def count_historic_case_instances(self, query: HistoricCaseQuery) -> int:
        sql, arguments = historic_count_sql(query)
        async with self._connection("count_historic_case_instances") as connection:
            count = await connection.fetchval(sql, *arguments)
        return int(count)

    # --- blob life cycle ------------------------------------------------------

    async def add_pending_blob(self, key: str) -> None:
        """Record a key before any byte is written to it, so no object is ever unknown."""
        async with self._connection("add_pending_blob") as connection:
            await connection.execute("INSERT INTO blob (key, state) VALUES ($1, 'pending')", key)

    async def discard_blobs(self, keys: Iterable[str]) -> None:
        """Pending blobs of failed uploads become garbage, collectable at once."""
        async with self._connection("discard_blobs") as connection:
            await connection.execute(
                """
                UPDATE blob SET state = 'garbage', delete_after = now(), garbage_since = now()
                WHERE key = ANY($1::text[]) AND state = 'pending'
                """,
                list(keys),
            )

    # --- variable instances (runtime and history) -------------------------------

    async def query_variable_instances(
        self, query: VariableQuery, *, first: int, limit: int | None, page_rows: int = 200
    ) -> AsyncIterator[list[VariableInstance]]:
        """The matching variable instances, page by page: page_rows at a time, each a short
        query of its own that starts after the last row of the one before (keyset
        paging: no connection is held while the caller sends them, and a long listing
        costs no more per page than a short one). Each row is as it was when its page
        was read."""
        after: dict[str, Any] | None = None
        remaining = limit
        while remaining is None or remaining > 0:
            rows_wanted = page_rows if remaining is None else min(page_rows, remaining)
            sql, arguments = variable_query_sql(
                query, first=first if after is None else 0, limit=rows_wanted, after=after
            )
            async with self._connection("query_variable_instances") as connection:
                rows = await connection.fetch(sql, *arguments)
            if rows:
                yield [_variable_instance(row) for row in rows]
            if len(rows) < rows_wanted:
                return
            after = dict(rows[-1].items())
            if remaining is not None:
                remaining -= len(rows)

    async def count_variable_instances(self, query: VariableQuery) -> int:
        sql, arguments = variable_count_sql(query)
        async with self._connection("count_variable_instances") as connection:
            count = await connection.fetchval(sql, *arguments)
        return int(count)

    async def get_variable_instance(
        self, variable_id: str, *, history: bool
    ) -> VariableInstance | None:
        """The variable of this id; of a closed case instance only in history."""
        key = variable_uuid(variable_id)
        if key is None:
            return None
        async with self._connection("get_variable_instance") as connection:
            row = await connection.fetchrow(variable_by_id_sql(history=history), key)
        return None if row is None else _variable_instance(row)

    async def delete_historic_variable(self, variable_id: str) -> HistoricDeletion:
        """Delete the variable if its case instance is closed (history only); its blob
        becomes garbage through the trigger of migrations/0003."""
        key = variable_uuid(variable_id)
        if key is None:
            return HistoricDeletion.MISSING
        async with self._connection("delete_historic_variable") as connection:
            row = await connection.fetchrow(DELETE_HISTORIC_SQL, key)
        if row is None:
            return HistoricDeletion.MISSING
        return HistoricDeletion.DELETED if row["deleted"] else HistoricDeletion.RUNNING


@dataclasses.dataclass(frozen=True)
class VariableInstance:
    """A variable with what Camunda's variable-instance DTOs tell about it."""

    variable: StoredVariable
    case_instance_id: str
    tenant_id: str | None
    case_definition_key: str | None
    case_definition_id: str | None
    created_at: datetime
    closed_at: datetime | None  # of the case instance; None while it is not closed


class HistoricDeletion(enum.Enum):
    DELETED = enum.auto()
    MISSING = enum.auto()
    RUNNING = enum.auto()  # its case instance is not closed: nothing deleted


def _variable_instance(row: asyncpg.Record) -> VariableInstance:
    return VariableInstance(
        _variable(row),
        row["case_instance_id"],
        row["tenant_id"],
        row["case_definition_key"],
        row["case_definition_id"],
        row["created_at"],
        row["closed_at"],
    )
