"""The variable conditions of case-instance and variable-instance queries are served by
the indexes of migrations/0011: EXPLAIN on a filled table finds them, and no query
reads the whole variable table; with the statistics of migrations/0014, the few case
instances found are looked up by id, names compared exactly or not; a deep page reads
the index of migrations/0015 alone. (tests/test_queries.py, test_variable_instances.py
and test_history_cases.py show that the answers are what they were.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from service.storage.case_query import CaseQuery, case_count_sql, case_query_sql
from service.storage.conditions import VariableCondition
from service.storage.variable_query import VariableQuery, variable_query_sql

CASES = 20_000
DATE_SQL = (
    "to_jsonb(to_char(timestamp '2020-01-01' + i * interval '1 minute',"
    """ 'YYYY-MM-DD"T"HH24:MI:SS.MS"+0000"'))"""
)
INDEXES = {
    "variable_text_idx",
    "variable_text_folded_idx",
    "variable_number_idx",
    "variable_boolean_idx",
}
# Either serves a case instance looked up by id.
CASE_ID_INDEXES = {"case_instance_pkey", "case_instance_open_id_idx"}


@pytest.fixture(scope="module")
def filled_dsn(session_loop: Any, module_database_dsn: str) -> str:
    """The module's database filled once: the tests only read it."""
    session_loop.run(_fill(module_database_dsn))
    return module_database_dsn


@pytest.fixture
async def filled(filled_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(filled_dsn)
    yield connection
    await connection.close()


async def _fill(dsn: str) -> None:
    """CASES case instances of five variables each, as benchmarks/scale.py fills them."""
    connection = await asyncpg.connect(dsn)
    await connection.execute(
        """
        INSERT INTO case_instance (id, business_key, state, closed_at)
        SELECT 'case-' || i, 'bk-' || i,
               CASE WHEN i % 10 = 0 THEN 'closed' ELSE 'active' END,
               CASE WHEN i % 10 = 0 THEN now() END
        FROM generate_series(0, $1 - 1) AS i;
        """,
        CASES,
    )
    for name, kind, value in (
        ("s", "String", "to_jsonb('name-' || lpad(i::text, 7, '0'))"),
        ("n", "Integer", "to_jsonb(i)"),
        ("b", "Boolean", "to_jsonb(i = 7)"),
        (
            "d",
            "Date",
            DATE_SQL,
        ),
        ("Mixed", "String", "to_jsonb('Ref-' || i)"),
    ):
        await connection.execute(
            f"INSERT INTO variable (case_instance_id, name, type, value) "
            f"SELECT 'case-' || i, '{name}', '{kind}', {value} "
            "FROM generate_series(0, $1 - 1) AS i",
            CASES,
        )
    await connection.execute("ANALYZE case_instance; ANALYZE variable")
    await connection.close()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


async def _plan(connection: asyncpg.Connection, sql: str, arguments: list[Any]) -> list[Any]:
    explained = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *arguments)
    return _nodes(json.loads(explained)[0]["Plan"])


def _scans(nodes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(n["Node Type"], n.get("Relation Name")) for n in nodes]


def _assert_indexed(nodes: list[dict[str, Any]], index: str) -> None:
    shape = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes]
    assert index in {node.get("Index Name") for node in nodes}, shape
    # (blob is empty here; case_instance may be cheaper to hash whole at this size)
    assert ("Seq Scan", "variable", None) not in shape, shape


CONDITIONS = [
    # (condition, names ignore case, values ignore case, the index)
    (VariableCondition("s", "eq", "name-0012345"), False, False, "variable_text_idx"),
    (VariableCondition("s", "like", "name-001234%"), False, False, "variable_text_idx"),
    (VariableCondition("s", "gteq", "name-0019990"), False, False, "variable_text_idx"),
    (VariableCondition("S", "eq", "name-0012345"), True, False, "variable_text_idx"),
    (VariableCondition("s", "eq", "NAME-0012345"), False, True, "variable_text_folded_idx"),
    (VariableCondition("mixed", "like", "ref-1234%"), True, True, "variable_text_folded_idx"),
    (VariableCondition("n", "eq", 12345), False, False, "variable_number_idx"),
    (VariableCondition("n", "gt", 19980), False, False, "variable_number_idx"),
    (VariableCondition("N", "lt", 20), True, True, "variable_number_idx"),
    (VariableCondition("n", "lteq", 5.5), False, False, "variable_number_idx"),
    (VariableCondition("b", "eq", value=True), False, False, "variable_boolean_idx"),
    (VariableCondition("B", "eq", value=True), True, True, "variable_boolean_idx"),
    (
        VariableCondition("d", "eq", "2020-01-05T10:00:00.000+0000", is_date=True),
        False,
        False,
        "variable_text_idx",
    ),
    (
        VariableCondition("d", "gt", "2020-01-14T20:00:00.000+0000", is_date=True),
        False,
        True,
        "variable_text_folded_idx",
    ),
]


@pytest.mark.parametrize(("condition", "names_fold", "values_fold", "index"), CONDITIONS)
async def test_case_instance_queries_start_from_the_variable_index(
    filled: asyncpg.Connection,
    condition: VariableCondition,
    names_fold: bool,
    values_fold: bool,
    index: str,
) -> None:
    query = CaseQuery(
        variables=(condition,),
        variable_names_ignore_case=names_fold,
        variable_values_ignore_case=values_fold,
    )
    for sql, arguments in (case_query_sql(query, first=0, limit=100), case_count_sql(query)):
        nodes = await _plan(filled, sql, arguments)
        _assert_indexed(nodes, index)
        # The case instances are then looked up by id, not all read into a hash.
        assert CASE_ID_INDEXES & {node.get("Index Name") for node in nodes}, nodes
        assert ("Seq Scan", "case_instance") not in _scans(nodes)


async def test_two_conditions_read_both_indexes(filled: asyncpg.Connection) -> None:
    query = CaseQuery(
        variables=(
            VariableCondition("s", "like", "name-00123%"),
            VariableCondition("n", "gt", 12300),
        )
    )
    nodes = await _plan(filled, *case_query_sql(query, first=0, limit=100))
    _assert_indexed(nodes, "variable_text_idx")
    _assert_indexed(nodes, "variable_number_idx")


@pytest.mark.parametrize("history", [False, True])
@pytest.mark.parametrize(("condition", "names_fold", "values_fold", "index"), CONDITIONS)
async def test_variable_instance_queries_start_from_the_variable_index(
    filled: asyncpg.Connection,
    condition: VariableCondition,
    names_fold: bool,
    values_fold: bool,
    index: str,
    history: bool,
) -> None:
    query = VariableQuery(
        history=history,
        conditions=(condition,),
        names_ignore_case=names_fold,
        values_ignore_case=values_fold,
    )
    nodes = await _plan(filled, *variable_query_sql(query, first=0, limit=100))
    _assert_indexed(nodes, index)


async def test_the_indexes_exist_and_are_valid(filled: asyncpg.Connection) -> None:
    rows = await filled.fetch(
        """
        SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'variable'::regclass
        """
    )
    valid = {row["relname"] for row in rows if row["indisvalid"]}
    assert valid >= INDEXES
    open_index = await filled.fetchval(
        """
        SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'case_instance_open_id_idx'
        """
    )
    assert open_index is True


async def test_a_deep_page_skips_index_entries_only(filled: asyncpg.Connection) -> None:
    await filled.execute("VACUUM case_instance")  # all visible: no heap fetch needed
    nodes = await _plan(filled, *case_query_sql(CaseQuery(), first=CASES - 100, limit=10))
    only = [n for n in nodes if n["Node Type"] == "Index Only Scan"]
    assert [n.get("Index Name") for n in only] == ["case_instance_open_id_idx"], nodes
    assert ("Seq Scan", "case_instance") not in _scans(nodes)


async def test_the_value_statistics_exist(filled: asyncpg.Connection) -> None:
    names = await filled.fetch(
        "SELECT statistics_name FROM pg_stats_ext_exprs WHERE tablename = 'variable'"
    )
    assert {row["statistics_name"] for row in names} >= {
        "variable_boolean_stats",
        "variable_number_stats",
    }
