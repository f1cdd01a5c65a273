"""Case-instance queries: what a query asks (CaseQuery, its variable conditions and
sorting) and the SQL that answers it, parameters always bound."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from service.storage.conditions import VariableCondition, Where, variable_clause


class CaseAttribute(enum.Enum):
    """What a case instance has, as queries sort by it and PUT changes it."""

    ID = enum.auto()
    BUSINESS_KEY = enum.auto()
    CASE_DEFINITION_KEY = enum.auto()
    CASE_DEFINITION_ID = enum.auto()
    TENANT_ID = enum.auto()


CASE_COLUMNS = {
    CaseAttribute.ID: "id",
    CaseAttribute.BUSINESS_KEY: "business_key",
    CaseAttribute.CASE_DEFINITION_KEY: "case_definition_key",
    CaseAttribute.CASE_DEFINITION_ID: "case_definition_id",
    CaseAttribute.TENANT_ID: "tenant_id",
}
# A case instance's life cycle (migrations/0006), read with its fields.
LIFE_COLUMNS = ("state", "created_at", "closed_at")


@dataclasses.dataclass(frozen=True)
class CaseQuery:
    case_instance_id: str | None = None
    business_key: str | None = None
    case_definition_key: str | None = None
    case_definition_id: str | None = None
    tenant_ids: tuple[str, ...] | None = None
    without_tenant_id: bool = False
    variables: tuple[VariableCondition, ...] = ()
    variable_names_ignore_case: bool = False
    variable_values_ignore_case: bool = False
    # active, completed or terminated: only instances in that state. Closed instances
    # are never listed (history keeps them).
    state: str | None = None
    # (what to sort by, descending?), applied in order.
    sorting: tuple[tuple[CaseAttribute, bool], ...] = ()


def _variables_clause(where: Where, query: CaseQuery) -> str:
    """The case has, for each condition, a variable meeting it. Only the variables
    meeting one are read (through the indexes of migrations/0011 where they serve),
    then grouped by case when there are several conditions. (One EXISTS per condition
    would make the planner join the variable table once per condition, in time that
    grows much faster than their number.)"""
    met = [
        variable_clause(
            where,
            condition,
            names_ignore_case=query.variable_names_ignore_case,
            values_ignore_case=query.variable_values_ignore_case,
        )
        for condition in query.variables
    ]
    if len(met) == 1:
        return f"c.id IN (SELECT v.case_instance_id FROM variable v WHERE {met[0]})"
    having = " AND ".join(f"bool_or({clause})" for clause in met)
    return (
        "c.id IN (SELECT v.case_instance_id FROM variable v "
        f"WHERE {' OR '.join(met)} GROUP BY v.case_instance_id HAVING {having})"
    )


def _where(query: CaseQuery) -> Where:
    where = Where()
    where.add("c.state <> 'closed'")  # closed instances are history only
    return case_filters(where, query)


def case_filters(where: Where, query: CaseQuery) -> Where:
    """The filters runtime and historic case-instance queries share, on case_instance c
    (query.sorting is left to the caller)."""
    if query.state is not None:
        where.add(f"c.state = {where.bind(query.state)}")
    for column, value in (
        ("id", query.case_instance_id),
        ("business_key", query.business_key),
        ("case_definition_key", query.case_definition_key),
        ("case_definition_id", query.case_definition_id),
    ):
        if value is not None:
            where.add(f"c.{column} = {where.bind(value)}")
    if query.tenant_ids is not None:
        where.add(f"c.tenant_id = ANY({where.bind(list(query.tenant_ids))}::text[])")
    if query.without_tenant_id:
        where.add("c.tenant_id IS NULL")
    if query.variables:
        where.add(_variables_clause(where, query))
    return where


def _order(query: CaseQuery, alias: str) -> str:
    order = [
        f"{alias}.{CASE_COLUMNS[attribute]} {'DESC' if descending else 'ASC'} NULLS LAST"
        for attribute, descending in query.sorting
    ]
    order.append(f"{alias}.id ASC")  # a stable order makes paging repeatable
    return ", ".join(order)


def _columns(alias: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in (*CASE_COLUMNS.values(), *LIFE_COLUMNS))


def case_query_sql(query: CaseQuery, *, first: int, limit: int | None) -> tuple[str, list[Any]]:
    """A page of the case instances the query matches. A page past the first row is
    found by a subquery that reads only ids (sorted by id, an index-only scan of
    case_instance_open_id_idx, migrations/0015), and only its rows are read whole: a
    deep page (firstResult 999,990) skips index entries, not 999,990 table rows."""
    where = _where(query)
    offset = where.bind(first)
    limit_sql = "ALL" if limit is None else where.bind(limit)
    page = f"WHERE {where.sql()} ORDER BY {_order(query, 'c')} OFFSET {offset} LIMIT {limit_sql}"
    if first == 0 or limit is None:
        return f"SELECT {_columns('c')} FROM case_instance c {page}", where.arguments
    sql = (
        f"SELECT {_columns('paged')} FROM case_instance paged "
        f"WHERE paged.id IN (SELECT c.id FROM case_instance c {page}) "
        f"ORDER BY {_order(query, 'paged')}"
    )
    return sql, where.arguments


def case_count_sql(query: CaseQuery) -> tuple[str, list[Any]]:
    where = _where(query)
    return f"SELECT count(*) FROM case_instance c WHERE {where.sql()}", where.arguments
