"""Camunda's case-instance query vocabulary: the variable comparison operators and the
range of its paging numbers (Java Integers)."""

from __future__ import annotations

VARIABLE_OPERATORS = ("eq", "neq", "gt", "gteq", "lt", "lteq", "like")
# firstResult and maxResults are Java Integers in Camunda.
MAX_INTEGER = 2**31 - 1
MIN_INTEGER = -(2**31)
