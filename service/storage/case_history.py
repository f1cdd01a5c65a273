"""Historic case-instance queries: every case instance, closed ones included until the
history time to live removes them, with the filters the runtime query has
(case_query.py) and those only history has (create and close times, several ids,
business key patterns, excluded definition keys, not closed)."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from service.storage.case_query import CASE_COLUMNS, LIFE_COLUMNS, CaseQuery, case_filters
from service.storage.conditions import Where


class HistoricAttribute(enum.Enum):
    """What historic case instances sort by."""

    ID = "c.id"
    CASE_DEFINITION_ID = "c.case_definition_id"
    BUSINESS_KEY = "c.business_key"
    CREATE_TIME = "c.created_at"
    CLOSE_TIME = "c.closed_at"
    DURATION = "(c.closed_at - c.created_at)"
    TENANT_ID = "c.tenant_id"


@dataclasses.dataclass(frozen=True)
class HistoricCaseQuery:
    # The runtime query's filters; its state may be "closed" here.
    case: CaseQuery = dataclasses.field(default_factory=CaseQuery)
    case_instance_ids: tuple[str, ...] | None = None
    business_key_like: str | None = None
    case_definition_key_not_in: tuple[str, ...] | None = None
    not_closed: bool = False
    created_before: datetime | None = None
    created_after: datetime | None = None
    closed_before: datetime | None = None
    closed_after: datetime | None = None
    sorting: tuple[tuple[HistoricAttribute, bool], ...] = ()


def _where(query: HistoricCaseQuery) -> Where:
    where = case_filters(Where(), query.case)
    if query.case_instance_ids is not None:
        where.add(f"c.id = ANY({where.bind(list(query.case_instance_ids))}::text[])")
    if query.business_key_like is not None:
        # Camunda's LIKE escapes with a backslash too; COLLATE "C" compares code points.
        where.add(f'c.business_key LIKE {where.bind(query.business_key_like)} COLLATE "C"')
    if query.case_definition_key_not_in is not None:
        keys = where.bind(list(query.case_definition_key_not_in))
        # SQL's NOT IN: an instance without a key is not listed, as in Camunda.
        where.add(f"c.case_definition_key <> ALL({keys}::text[])")
    if query.not_closed:
        where.add("c.state <> 'closed'")
    for column, operator, moment in (
        ("created_at", "<=", query.created_before),
        ("created_at", ">=", query.created_after),
        ("closed_at", "<=", query.closed_before),
        ("closed_at", ">=", query.closed_after),
    ):
        if moment is not None:
            where.add(f"c.{column} {operator} {where.bind(moment)}")
    return where


# A case instance's history row: its fields and its life cycle (migrations/0006).
_COLUMNS = ", ".join(f"c.{column}" for column in (*CASE_COLUMNS.values(), *LIFE_COLUMNS))


def historic_query_sql(
    query: HistoricCaseQuery, *, first: int, limit: int | None
) -> tuple[str, list[Any]]:
    where = _where(query)
    order = [
        f"{attribute.value} {'DESC' if descending else 'ASC'} NULLS LAST"
        for attribute, descending in query.sorting
    ]
    order.append("c.id ASC")  # a stable order makes paging repeatable
    offset = where.bind(first)
    limit_sql = "ALL" if limit is None else where.bind(limit)
    sql = (
        f"SELECT {_COLUMNS} FROM case_instance c WHERE {where.sql()} "
        f"ORDER BY {', '.join(order)} OFFSET {offset} LIMIT {limit_sql}"
    )
    return sql, where.arguments


def historic_count_sql(query: HistoricCaseQuery) -> tuple[str, list[Any]]:
    where = _where(query)
    return f"SELECT count(*) FROM case_instance c WHERE {where.sql()}", where.arguments
