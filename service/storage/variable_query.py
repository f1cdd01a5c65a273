"""Variable-instance queries: every case instance's variables as Camunda's variable
instances (runtime: of instances not closed; history: of all of them), what a query
asks (VariableQuery) and the SQL that answers it, parameters always bound."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from typing import Any

from service.storage.conditions import VariableCondition, Where, variable_clause


class VariableAttribute(enum.Enum):
    """What variable instances are sorted by."""

    NAME = enum.auto()
    TYPE = enum.auto()
    CASE_INSTANCE_ID = enum.auto()  # the activity instance id of a case variable
    TENANT_ID = enum.auto()
    NOTHING = enum.auto()  # a process instance id: case variables have none


_SORT_COLUMNS = {
    VariableAttribute.NAME: "v.name",
    VariableAttribute.TYPE: "v.type",
    VariableAttribute.CASE_INSTANCE_ID: "v.case_instance_id",
    VariableAttribute.TENANT_ID: "c.tenant_id",
}


@dataclasses.dataclass(frozen=True)
class VariableQuery:
    """Filters combined with AND. Each of case_instance_ids is a list the variable's
    case instance must be in (caseInstanceIdIn, caseExecutionIdIn, ...: for a case
    variable these ids are all the case instance's id)."""

    history: bool = False  # variables of closed case instances too
    name: str | None = None
    name_like: str | None = None
    names: tuple[str, ...] | None = None
    # History compares name and name_like ignoring case too; runtime only conditions.
    name_filters_ignore_case: bool = False
    case_instance_ids: tuple[tuple[str, ...], ...] = ()
    tenant_ids: tuple[str, ...] | None = None
    without_tenant_id: bool = False
    types: tuple[str, ...] | None = None  # compared ignoring case
    # Conditions on the variable's own name and value, all on the same variable.
    conditions: tuple[VariableCondition, ...] = ()
    names_ignore_case: bool = False
    values_ignore_case: bool = False
    # Filters on what case variables never have (process instances, tasks, ...).
    match_nothing: bool = False
    sorting: tuple[tuple[VariableAttribute, bool], ...] = ()


_COLUMNS = """
    v.id, v.name, v.type, v.value, v.value_info, v.blob_key, b.size, b.sha256,
    v.case_instance_id, v.created_at, c.tenant_id, c.case_definition_key,
    c.case_definition_id, c.closed_at
"""
_FROM = """
    FROM variable v JOIN case_instance c ON c.id = v.case_instance_id
    LEFT JOIN blob b ON b.key = v.blob_key
"""


def variable_uuid(variable_id: str) -> uuid.UUID | None:
    """The id as the uuid it names, None for text no variable id can be: ids are
    compared as Camunda compares them, as text in their canonical (lowercase) form."""
    try:
        parsed = uuid.UUID(variable_id)
    except ValueError:
        return None
    return parsed if str(parsed) == variable_id else None


def _name_filter(where: Where, operator: str, value: str, *, ignore_case: bool) -> str:
    if ignore_case:
        return f"lower(v.name) {operator} lower({where.bind(value)})"
    return f"v.name {operator} {where.bind(value)}"


def _where(query: VariableQuery) -> Where:
    where = Where()
    if query.match_nothing:
        where.add("FALSE")
    if not query.history:
        where.add("c.state <> 'closed'")
    fold = query.name_filters_ignore_case
    if query.name is not None:
        where.add(_name_filter(where, "=", query.name, ignore_case=fold))
    if query.name_like is not None:
        where.add(_name_filter(where, "LIKE", query.name_like, ignore_case=fold))
    if query.names is not None:
        where.add(f"v.name = ANY({where.bind(list(query.names))}::text[])")
    for ids in query.case_instance_ids:
        where.add(f"v.case_instance_id = ANY({where.bind(list(ids))}::text[])")
    if query.tenant_ids is not None:
        where.add(f"c.tenant_id = ANY({where.bind(list(query.tenant_ids))}::text[])")
    if query.without_tenant_id:
        where.add("c.tenant_id IS NULL")
    if query.types is not None:
        types = [name.lower() for name in query.types]
        where.add(f"lower(v.type) = ANY({where.bind(types)}::text[])")
    for condition in query.conditions:
        where.add(
            variable_clause(
                where,
                condition,
                names_ignore_case=query.names_ignore_case,
                values_ignore_case=query.values_ignore_case,
            )
        )
    return where


# The column of each sort key and the row key a page's last row holds it under.
_SORT_ROW_KEYS = {
    VariableAttribute.NAME: "name",
    VariableAttribute.TYPE: "type",
    VariableAttribute.CASE_INSTANCE_ID: "case_instance_id",
    VariableAttribute.TENANT_ID: "tenant_id",
}


# The only sort key that can be null; the others are compared as plain ranges, which
# an index can walk (`v.id > $1` for the default order).
_NULLABLE = frozenset({"tenant_id"})


def _order(query: VariableQuery) -> list[tuple[str, str, bool]]:
    """(column, row key, descending) in sort order; v.id last, Camunda's default order,
    which also makes the order total (paging repeatable, pages well-defined)."""
    keys = [
        (_SORT_COLUMNS[attribute], _SORT_ROW_KEYS[attribute], descending)
        for attribute, descending in query.sorting
        if attribute in _SORT_COLUMNS
    ]
    return [*keys, ("v.id", "id", False)]


def _after(where: Where, order: list[tuple[str, str, bool]], last: Mapping[str, Any]) -> str:
    """Rows that come after `last` in the order (NULLS LAST either way): for some key,
    every key before it equal and this one further on."""
    alternatives = []
    equal: list[str] = []
    for position, (column, row_key, descending) in enumerate(order):
        value = last[row_key]
        # Typed: Postgres cannot tell the type of a parameter IS NOT DISTINCT FROM takes.
        sql_type = "uuid" if row_key == "id" else "text"
        if value is not None:
            beyond = f"{column} {'<' if descending else '>'} {where.bind(value)}::{sql_type}"
            if row_key in _NULLABLE:
                beyond = f"({beyond} OR {column} IS NULL)"
            alternatives.append(" AND ".join([*equal, beyond]))
        if position < len(order) - 1:  # every parameter bound must be used
            equal.append(f"{column} IS NOT DISTINCT FROM {where.bind(value)}::{sql_type}")
    return "(" + " OR ".join(alternatives) + ")" if alternatives else "FALSE"


def variable_query_sql(
    query: VariableQuery,
    *,
    first: int,
    limit: int | None,
    after: Mapping[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """The page of up to limit variable instances from first on, or (after: the last
    row of the page before) those that follow that row."""
    where = _where(query)
    order = _order(query)
    if after is not None:
        where.add(_after(where, order, after))
    ordering = ", ".join(
        f"{column} {'DESC' if descending else 'ASC'} NULLS LAST" for column, _, descending in order
    )
    offset = where.bind(first)
    limit_sql = "ALL" if limit is None else where.bind(limit)
    sql = (
        f"SELECT {_COLUMNS} {_FROM} WHERE {where.sql()} "
        f"ORDER BY {ordering} OFFSET {offset} LIMIT {limit_sql}"
    )
    return sql, where.arguments


def variable_count_sql(query: VariableQuery) -> tuple[str, list[Any]]:
    where = _where(query)
    sql = (
        "SELECT count(*) FROM variable v JOIN case_instance c ON c.id = v.case_instance_id "
        f"WHERE {where.sql()}"
    )
    return sql, where.arguments


def variable_by_id_sql(*, history: bool) -> str:
    """The variable of id $1 (a uuid); of a closed case instance only in history."""
    running = "" if history else "AND c.state <> 'closed'"
    return f"SELECT {_COLUMNS} {_FROM} WHERE v.id = $1 {running}"


# Deletes the variable of id $1 when its case instance is closed; one row (its case
# instance's state, whether it was deleted) when the variable exists, none otherwise.
# Its blob becomes garbage through the trigger of migrations/0003.
DELETE_HISTORIC_SQL = """
    WITH found AS (
        SELECT v.id, c.state FROM variable v
        JOIN case_instance c ON c.id = v.case_instance_id
        WHERE v.id = $1
    ), gone AS (
        DELETE FROM variable v USING found
        WHERE v.id = found.id AND found.state = 'closed'
        RETURNING v.id
    )
    SELECT found.state, EXISTS (SELECT 1 FROM gone) AS deleted FROM found
"""
