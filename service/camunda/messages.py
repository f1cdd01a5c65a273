"""Camunda's texts for a case instance or variable that does not exist, which differ
between reads and writes because Camunda raises them from different places."""

from __future__ import annotations


def missing_case_on_write(case_id: str) -> str:
    return f"There does not exist any case execution with id: '{case_id}': caseExecution is null"


def missing_case_on_read(case_id: str) -> str:
    return f"case execution {case_id} doesn't exist: caseExecution is null"


def missing_variable(name: str) -> str:
    return f"case execution variable with name {name} does not exist"
