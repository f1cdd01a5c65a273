"""What every Camunda query route reads alike, in the query string or a JSON body:
paging, sorting, variable conditions (`name_op_value`), flags, lists, and the bounds
casevars puts on them. The case-instance and variable-instance queries build their
own query objects from these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from service.camunda.queries import MAX_INTEGER, VARIABLE_OPERATORS
from service.camunda.values import format_date, parse_date
from service.errors import InvalidInput
from service.storage.conditions import VariableCondition

# Bounds on one query (each condition is a subquery with two bound arguments; asyncpg
# takes at most 32,767 arguments).
MAX_QUERY_CONDITIONS = 100
MAX_TENANT_IDS = 1000
MAX_SORTING_ENTRIES = 10
# Ids in one `...IdIn` list, bounded like tenant ids.
MAX_LISTED_IDS = MAX_TENANT_IDS
# The digits of the largest firstResult or maxResults, after leading zeros.
_MAX_INTEGER_DIGITS = len(str(MAX_INTEGER))

Key = TypeVar("Key")
_ORDERS = frozenset({"asc", "desc"})


def bad_parameter(name: str, value: object) -> InvalidInput:
    return InvalidInput(f"Cannot set query parameter '{name}' to value '{value}'")


def paging(request: web.Request) -> tuple[int, int | None]:
    """firstResult and maxResults from the query string (both optional, 0 and more)."""
    found: dict[str, int | None] = {"firstResult": 0, "maxResults": None}
    for name in found:
        raw = request.query.get(name)
        if raw is None:
            continue
        # Camunda's Integer: ASCII digits (str.isdigit also takes '²'), at most 2^31 - 1;
        # counted before int(), which refuses more than 4,300 digits.
        digits = raw.lstrip("0")
        if (
            not (raw.isascii() and raw.isdigit())
            or len(digits) > _MAX_INTEGER_DIGITS
            or int(digits or "0") > MAX_INTEGER
        ):
            raise bad_parameter(name, raw)
        found[name] = int(digits or "0")
    return found["firstResult"] or 0, found["maxResults"]


def query_value(value: Any) -> tuple[Any, bool]:
    """A condition's value as Camunda resolves it: text in the REST date format is a
    date, anything else is used as it is. Returns (value, is_date)."""
    if isinstance(value, str):
        try:
            return format_date(parse_date(value)), True
        except ValueError:
            return value, False
    if isinstance(value, bool | int | float) or value is None:
        return value, False
    raise InvalidInput("")


def condition(name: Any, operator: Any, value: Any) -> VariableCondition:
    if not isinstance(name, str) or not isinstance(operator, str):
        raise InvalidInput("")
    if operator not in VARIABLE_OPERATORS:
        raise InvalidInput(f"Invalid variable comparator specified: {operator}")
    resolved, is_date = query_value(value)
    if operator == "like" and not isinstance(resolved, str):
        raise InvalidInput("Only string values can be used with 'like' condition")
    return VariableCondition(name, operator, resolved, is_date)


def bounded(items: list[Any], limit: int, what: str) -> list[Any]:
    if len(items) > limit:
        raise InvalidInput(f"At most {limit} {what} are allowed in one query, not {len(items)}")
    return items


def conditions_from_text(text: str) -> tuple[VariableCondition, ...]:
    """Comma-separated `name_operator_value` conditions of a query string."""
    conditions = []
    for expression in bounded(text.split(","), MAX_QUERY_CONDITIONS, "variable conditions"):
        triple = expression.split("_")
        if len(triple) != 3:
            raise InvalidInput("variable query parameter has to have format KEY_OPERATOR_VALUE.")
        conditions.append(condition(*triple))
    return tuple(conditions)


def conditions_from_body(raw: Any) -> tuple[VariableCondition, ...]:
    """A JSON body's list of {"name", "operator", "value"} conditions (null: none)."""
    items = objects(raw)
    bounded(items, MAX_QUERY_CONDITIONS, "variable conditions")
    return tuple(
        condition(item.get("name"), item.get("operator"), item.get("value")) for item in items
    )


def objects(raw: Any) -> list[dict[str, Any]]:
    """A body's list of objects (conditions, sorting entries); null or absent: none."""
    items = [] if raw is None else raw
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidInput("")
    return items


def sorting(
    pairs: Iterable[tuple[Any, Any]], keys: Mapping[str, Key]
) -> tuple[tuple[Key, bool], ...]:
    """(what to sort by, descending?) for (sortBy, sortOrder) pairs; keys maps the
    route's sortBy values."""
    checked = []
    for sort_by, sort_order in pairs:
        if not isinstance(sort_by, str) or sort_by not in keys:
            raise bad_parameter("sortBy", sort_by)
        if not isinstance(sort_order, str) or sort_order not in _ORDERS:
            raise bad_parameter("sortOrder", sort_order)
        checked.append((keys[sort_by], sort_order == "desc"))
    return tuple(checked)


def sorting_from_string(
    params: Mapping[str, str], keys: Mapping[str, Key]
) -> tuple[tuple[Key, bool], ...]:
    """sortBy and sortOrder of a query string: both or neither."""
    sort_by, sort_order = params.get("sortBy"), params.get("sortOrder")
    if (sort_by is None) != (sort_order is None):
        raise InvalidInput(
            "Only a single sorting parameter specified. sortBy and sortOrder required"
        )
    return () if sort_by is None else sorting([(sort_by, sort_order)], keys)


def sorting_from_body(
    body: Mapping[str, Any], keys: Mapping[str, Key]
) -> tuple[tuple[Key, bool], ...]:
    """A JSON body's sorting: its top-level `sortBy` and `sortOrder` (both or neither),
    then its `sorting` list of {"sortBy", "sortOrder"} entries, in that order, as
    Camunda's query DTOs apply them."""
    items = objects(body.get("sorting"))
    bounded(items, MAX_SORTING_ENTRIES, "sorting entries")
    pairs = [(item.get("sortBy"), item.get("sortOrder")) for item in items]
    sort_by, sort_order = body.get("sortBy"), body.get("sortOrder")
    # Camunda's setters refuse an unknown value while Jackson reads the body; a value
    # that is not text cannot be read at all.
    for name, value, valid in (("sortBy", sort_by, keys), ("sortOrder", sort_order, _ORDERS)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput("")
        if value is not None and value not in valid:
            raise InvalidInput(f"{name} parameter has invalid value: {value}")
    if (sort_by is None) != (sort_order is None):
        raise InvalidInput(
            "Only a single sorting parameter specified. sortBy and sortOrder required"
        )
    if sort_by is not None:
        bounded(pairs, MAX_SORTING_ENTRIES - 1, "sorting entries besides sortBy")
        pairs.insert(0, (sort_by, sort_order))
    return sorting(pairs, keys)


def flag(value: Any) -> bool:
    """JAX-RS and Jackson booleans: `true` in any letter case, or JSON true."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def text(filters: Mapping[str, Any], name: str) -> str | None:
    """A text filter: absent or null is none; anything but text is a malformed body."""
    value = filters.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidInput("")
    return value


def text_list(filters: Mapping[str, Any], name: str, limit: int, what: str) -> list[str] | None:
    """A list filter: comma-separated in a query string (the caller splits it), a JSON
    array of text in a body; None when absent or null."""
    values = filters.get(name)
    if values is None:
        return None
    if not isinstance(values, list):
        raise InvalidInput("")
    bounded(values, limit, what)
    if not all(isinstance(value, str) for value in values):
        raise InvalidInput("")
    return values


def split_lists(params: Mapping[str, str], names: Iterable[str]) -> dict[str, Any]:
    """The query string's parameters, those named split at commas (Camunda's
    StringArrayConverter and StringListConverter)."""
    found: dict[str, Any] = dict(params)
    for name in names:
        if name in found:
            found[name] = found[name].split(",")
    return found


def refuse_nul(texts: Iterable[str | None], conditions: Sequence[VariableCondition] = ()) -> None:
    """Postgres text cannot hold NUL (so nothing stored can equal a text holding it)."""
    compared = [
        *(text for text in texts if text is not None),
        *(condition.name for condition in conditions),
        *(condition.value for condition in conditions if isinstance(condition.value, str)),
    ]
    if any("\x00" in text for text in compared):
        raise InvalidInput("Query values cannot contain the NUL character (\\u0000)")
