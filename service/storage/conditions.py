"""What the case-instance and variable-instance queries share in SQL: WHERE clauses
whose parameters are numbered as they are bound, and variable conditions (`name
operator value`) compared with a variable's stored value."""

from __future__ import annotations

import dataclasses
from typing import Any

# Camunda's comparison operators (service.camunda.queries) in SQL; `like` is LIKE.
_SQL_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}


@dataclasses.dataclass(frozen=True)
class VariableCondition:
    """`name operator value` on a variable. value is a JSON scalar; a date value is
    already in the stored form (UTC text) and compares with Date variables only."""

    name: str
    operator: str  # one of service.camunda.queries.VARIABLE_OPERATORS
    value: Any
    is_date: bool = False


class Where:
    """WHERE clauses with their parameters numbered as they are added."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.arguments: list[Any] = []

    def bind(self, value: Any) -> str:
        self.arguments.append(value)
        return f"${len(self.arguments)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def value_clause(where: Where, condition: VariableCondition, *, ignore_case: bool) -> str:
    """The comparison of v.value with the condition's value, by the value's JSON type
    (text compared ignoring case when asked). Casts sit inside CASE so that values of
    other types compare as NULL (no match); a date condition also needs a Date."""
    value = condition.value
    if value is None:
        is_null = "jsonb_typeof(coalesce(v.value, 'null'::jsonb)) = 'null'"
        return is_null if condition.operator == "eq" else f"NOT {is_null}"
    operator = _SQL_OPERATORS.get(condition.operator, "LIKE")
    if isinstance(value, bool):
        cast = "CASE WHEN jsonb_typeof(v.value) = 'boolean' THEN (v.value)::boolean END"
        return f"{cast} {operator} {where.bind(value)}"
    if isinstance(value, int | float):
        cast = "CASE WHEN jsonb_typeof(v.value) = 'number' THEN (v.value)::numeric END"
        return f"{cast} {operator} {where.bind(str(value))}::numeric"
    text = str(value)
    column = "CASE WHEN jsonb_typeof(v.value) = 'string' THEN v.value #>> '{}' END"
    if ignore_case:
        column, text = f"lower({column})", text.lower()
    compared = f'{column} {operator} {where.bind(text)} COLLATE "C"'
    return f"{compared} AND v.type = 'Date'" if condition.is_date else compared
