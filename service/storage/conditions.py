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
    (text compared ignoring case when asked): the functions of migrations/0010 give
    NULL (no match) for values of other types, and are the keys of the indexes of
    migrations/0011; a date condition also needs a Date. `neq` finds no help in an
    index (a btree serves ranges, not everything but one value)."""
    value = condition.value
    if value is None:
        is_null = "jsonb_typeof(coalesce(v.value, 'null'::jsonb)) = 'null'"
        return is_null if condition.operator == "eq" else f"NOT {is_null}"
    operator = _SQL_OPERATORS.get(condition.operator, "LIKE")
    if isinstance(value, bool):
        return f"casevars_boolean(v.value) {operator} {where.bind(value)}"
    if isinstance(value, int | float):
        return f"casevars_number(v.value) {operator} {where.bind(str(value))}::numeric"
    text = str(value)
    column = "casevars_text(v.value)"
    if ignore_case:
        column, text = f"lower({column})", text.lower()
    compared = f'{column} {operator} {where.bind(text)} COLLATE "C"'
    indexed = _indexed_text(where, column, condition.operator, text)
    if indexed is not None:
        compared = f"{indexed} AND {compared}"
    return f"{compared} AND v.type = 'Date'" if condition.is_date else compared


# The text indexes hold a value's first INDEXED_CHARS characters (a btree entry has
# at most 2704 bytes; a character up to 4): what the whole text compares to implies
# of its start, in the code point order of COLLATE "C", so that they serve.
INDEXED_CHARS = 200
_IMPLIED = {"eq": "=", "gt": ">=", "gteq": ">=", "lt": "<=", "lteq": "<="}


def _indexed_text(where: Where, column: str, operator: str, text: str) -> str | None:
    start = f'left({column}, {INDEXED_CHARS}) COLLATE "C"'
    if operator in _IMPLIED:
        bound = where.bind(text[:INDEXED_CHARS])
        return f'{start} {_IMPLIED[operator]} {bound} COLLATE "C"'
    if operator != "like":
        return None  # neq: a btree serves ranges, not everything but one value
    prefix = like_prefix(text)[:INDEXED_CHARS]
    if not prefix:
        return None
    escaped = "".join("\\" + char if char in "\\%_" else char for char in prefix)
    return f"{start} LIKE {where.bind(escaped + '%')}"


def like_prefix(pattern: str) -> str:
    """The text every match of a LIKE pattern starts with (backslash escapes)."""
    prefix = []
    escaping = False
    for char in pattern:
        if escaping:
            prefix.append(char)
            escaping = False
        elif char == "\\":
            escaping = True
        elif char in "%_":
            break
        else:
            prefix.append(char)
    return "".join(prefix)


def variable_clause(
    where: Where, condition: VariableCondition, *, names_ignore_case: bool, values_ignore_case: bool
) -> str:
    """The variable v is the one the condition names and meets it. The indexes lead
    with lower(name): a name compared exactly is compared folded too, so that they
    serve it, then exactly."""
    if names_ignore_case:
        name = f"lower(v.name) = {where.bind(condition.name.lower())}"
    else:
        bound = where.bind(condition.name)
        # Compared in "C" (the same equality: the default collation is deterministic)
        # so that the planner does not also read the name's whole index, variable_name_idx.
        name = f'lower(v.name) = lower({bound}) AND v.name = {bound} COLLATE "C"'
    value = value_clause(where, condition, ignore_case=values_ignore_case)
    return f"({name} AND {value})"
