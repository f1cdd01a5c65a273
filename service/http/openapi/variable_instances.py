"""The variable-instance routes of the OpenAPI document: /variable-instance (variables
of case instances not closed) and /history/variable-instance (of every case instance,
closed ones included), their DTOs, filters, queries, downloads and the deletion of a
historic variable instance."""

from __future__ import annotations

from service.camunda.queries import VARIABLE_OPERATORS
from service.http.openapi.blocks import (
    BAD_JSON,
    TEXT,
    Json,
    body_sort_properties,
    common,
    empty_response,
    errors,
    json_body,
    json_body_common,
    json_response,
    links,
    nullable,
    operation,
    parameter_refs,
    ref,
    schema,
)
from service.http.openapi.components import value_schemas
from service.http.openapi.variables import download
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import (
    MAX_LISTED_IDS,
    MAX_QUERY_CONDITIONS,
    MAX_SORTING_ENTRIES,
    MAX_TENANT_IDS,
)
from service.http.variable_instances import (
    HISTORY_CASE_LISTS,
    HISTORY_EMPTY_LISTS,
    HISTORY_EMPTY_TEXTS,
    HISTORY_OTHER_LISTS,
    HISTORY_SORT_KEYS,
    RUNTIME_CASE_LISTS,
    RUNTIME_EMPTY_LISTS,
    RUNTIME_SORT_KEYS,
)

_RUNTIME_TAGS = ("Variable instances",)
_HISTORY_TAGS = ("Historic variable instances",)
_VARIABLE_INSTANCE_ID = ref("parameters", "VariableInstanceId")
_NULL = {"type": "null"}
_NULLABLE_TEXT = nullable(TEXT)
_FLAG = {"type": "boolean"}
_SORT_ORDERS = {"enum": ["asc", "desc"]}


def tags() -> list[Json]:
    return [
        {
            "name": "Variable instances",
            "description": "Camunda's variable instances: the variables of case instances "
            "that are not closed.",
        },
        {
            "name": "Historic variable instances",
            "description": "The variables of every case instance, closed ones included "
            "(casevars keeps one copy of each variable: its last value).",
        },
    ]


def path_parameters() -> Json:
    return {
        "VariableInstanceId": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": (
                "The variable instance id: the `id` of a variable-instance DTO (a UUID in "
                "its lowercase form; any other text names no variable)."
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "example": "3f1d3c53-8c3a-4d2e-9a44-1b9b0e0a2f41",
        },
    }


def _value_properties() -> Json:
    """type, value and valueInfo as in a VariableValue, Bytes values always null."""
    shown = value_schemas()["VariableValue"]["properties"]
    return {
        "type": shown["type"],
        "value": {
            "description": "As in `VariableValue`, except that Bytes values are always null "
            "here (Camunda's queries do not fetch binary contents): `valueInfo.size` and "
            "`valueInfo.dataUrl` tell where the content is."
        },
        "valueInfo": shown["valueInfo"],
    }


def schemas() -> Json:
    case_id = {"type": "string", "description": "The case instance id."}
    runtime = {
        **_value_properties(),
        "id": TEXT,
        "name": TEXT,
        "processDefinitionId": _NULL,
        "processInstanceId": _NULL,
        "executionId": _NULL,
        "caseInstanceId": case_id,
        "caseExecutionId": case_id,
        "taskId": _NULL,
        "batchId": _NULL,
        "activityInstanceId": case_id,
        "errorMessage": _NULL,
        "tenantId": _NULLABLE_TEXT,
    }
    history = {
        **_value_properties(),
        "id": TEXT,
        "name": TEXT,
        "processDefinitionKey": _NULL,
        "processDefinitionId": _NULL,
        "processInstanceId": _NULL,
        "executionId": _NULL,
        "activityInstanceId": case_id,
        "caseDefinitionKey": _NULLABLE_TEXT,
        "caseDefinitionId": _NULLABLE_TEXT,
        "caseInstanceId": case_id,
        "caseExecutionId": case_id,
        "taskId": _NULL,
        "errorMessage": _NULL,
        "tenantId": _NULLABLE_TEXT,
        "state": {"enum": ["CREATED"]},
        "createTime": {"type": "string", "description": "yyyy-MM-dd'T'HH:mm:ss.SSS+0000"},
        "removalTime": _NULLABLE_TEXT,
        "rootProcessInstanceId": _NULL,
    }
    return {
        "VariableInstance": {
            "type": "object",
            "description": (
                "Camunda's VariableInstanceDto of a case variable: `caseExecutionId` and "
                "`activityInstanceId` are the case instance id (its root execution); "
                "process, task and batch fields are null."
            ),
            "required": list(runtime),
            "properties": runtime,
        },
        "VariableInstanceList": {"type": "array", "items": schema("VariableInstance")},
        "HistoricVariableInstance": {
            "type": "object",
            "description": (
                "Camunda's HistoricVariableInstanceDto of a case variable: the last value, "
                "`state` always `CREATED` (a deleted variable is gone), `createTime` when "
                "the variable was first set."
            ),
            "required": list(history),
            "properties": history,
        },
        "HistoricVariableInstanceList": {
            "type": "array",
            "items": schema("HistoricVariableInstance"),
        },
        "VariableInstanceQuery": _query_schema(history=False),
        "HistoricVariableInstanceQuery": _query_schema(history=True),
    }


def _id_list() -> Json:
    return nullable({"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT})


def _query_schema(*, history: bool) -> Json:
    flag = nullable(_FLAG)
    properties: Json = {
        "variableName": _NULLABLE_TEXT,
        "variableNameLike": _NULLABLE_TEXT,
        "variableNamesIgnoreCase": flag,
        "variableValuesIgnoreCase": flag,
        "tenantIdIn": nullable({"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT}),
    }
    case_lists = HISTORY_CASE_LISTS if history else RUNTIME_CASE_LISTS
    empty_lists = HISTORY_EMPTY_LISTS if history else RUNTIME_EMPTY_LISTS
    for name in (*case_lists, *empty_lists):
        properties[name] = _id_list()
    if history:
        properties |= {
            "caseInstanceId": _NULLABLE_TEXT,
            "variableValue": {
                "type": ["string", "number", "boolean", "null"],
                "description": "Equal to the value of the variable `variableName` names "
                "(required with it).",
            },
            "withoutTenantId": flag,
            "includeDeleted": flag,
            **dict.fromkeys(HISTORY_EMPTY_TEXTS, _NULLABLE_TEXT),
            **{name: _id_list() for name in HISTORY_OTHER_LISTS},
        }
    else:
        properties["variableValues"] = nullable(
            {
                "type": "array",
                "maxItems": MAX_QUERY_CONDITIONS,
                "items": {
                    "type": "object",
                    "required": ["name", "operator"],
                    "properties": {
                        "name": TEXT,
                        "operator": {"enum": list(VARIABLE_OPERATORS)},
                        "value": {"type": ["string", "number", "boolean", "null"]},
                    },
                },
            }
        )
    sort_keys = HISTORY_SORT_KEYS if history else RUNTIME_SORT_KEYS
    properties.update(body_sort_properties(sort_keys))
    properties["sorting"] = nullable(
        {
            "type": "array",
            "maxItems": MAX_SORTING_ENTRIES,
            "items": {
                "type": "object",
                "required": ["sortBy", "sortOrder"],
                "properties": {"sortBy": {"enum": list(sort_keys)}, "sortOrder": _SORT_ORDERS},
            },
        }
    )
    dto = "HistoricVariableInstanceQueryDto" if history else "VariableInstanceQueryDto"
    return {
        "type": "object",
        "description": (
            f"Camunda's {dto}: filters combined with AND, every key optional, other keys "
            "ignored. A list filter applies only when it holds an id; "
            f"{', '.join(f'`{name}`' for name in case_lists)} all name the case instance "
            "of a case variable; a non-empty "
            f"{', '.join(f'`{name}`' for name in empty_lists)} matches nothing (case "
            "variables have no process instance, execution or task)."
        ),
        "properties": properties,
    }


# --- the query-string filters ------------------------------------------------------------

_FLAG_TEXT = "`true` in any letter case means true; anything else is no filter."
_LIST_TEXT = f"A comma-separated list of at most {MAX_LISTED_IDS} ids."


def _filters(*, history: bool) -> Json:
    """Filter name -> (description, schema) of one query's query string."""
    id_list = {"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT}
    found: Json = {
        "variableName": ("Exactly this variable name.", TEXT),
        "variableNameLike": ("Names matching this LIKE pattern (`%`, `_`).", TEXT),
        "variableNamesIgnoreCase": (
            (
                "Compare names ignoring case: in `variableValues` conditions (runtime), in "
                f"`variableName`, `variableNameLike` and `variableValue` (history). {_FLAG_TEXT}"
            ),
            _FLAG,
        ),
        "variableValuesIgnoreCase": (f"Compare text values ignoring case. {_FLAG_TEXT}", _FLAG),
        "tenantIdIn": (f"Tenant ids of the case instances. {_LIST_TEXT}", id_list),
    }
    case_lists = HISTORY_CASE_LISTS if history else RUNTIME_CASE_LISTS
    empty_lists = HISTORY_EMPTY_LISTS if history else RUNTIME_EMPTY_LISTS
    for name in case_lists:
        found[name] = (f"Case instance ids. {_LIST_TEXT}", id_list)
    for name in empty_lists:
        found[name] = (f"Matches nothing when it holds an id. {_LIST_TEXT}", id_list)
    if history:
        found |= {
            "caseInstanceId": ("Exactly this case instance.", TEXT),
            "variableValue": (
                "Equal to this text, the value of the variable `variableName` names.",
                TEXT,
            ),
            "variableTypeIn": (f"Type names, compared ignoring case. {_LIST_TEXT}", id_list),
            "variableNameIn": (f"Variable names. {_LIST_TEXT}", id_list),
            "withoutTenantId": (f"Only case instances without a tenant. {_FLAG_TEXT}", _FLAG),
            "includeDeleted": (
                f"No effect: deleted variables are not kept, every one listed exists. {_FLAG_TEXT}",
                _FLAG,
            ),
        }
        for name in HISTORY_EMPTY_TEXTS:
            found[name] = ("Matches nothing (case variables have no process).", TEXT)
    else:
        found["variableValues"] = (
            (
                f"Comma-separated `name_operator_value` conditions (at most "
                f"{MAX_QUERY_CONDITIONS}), operator one of {', '.join(VARIABLE_OPERATORS)}, all on "
                "the same variable. A value in the query string is text (or a date in the REST "
                "format); compare numbers and booleans through the JSON body."
            ),
            {
                "type": "array",
                "maxItems": MAX_QUERY_CONDITIONS,
                "items": {
                    "type": "string",
                    "pattern": f"^[^_,]*_(?:{'|'.join(VARIABLE_OPERATORS)})_[^_,]*$",
                },
            },
        )
    return found


def _prefix(*, history: bool) -> str:
    return "HistoricVariableInstance" if history else "VariableInstance"


def filter_parameters() -> Json:
    """The query-string filters of both GET queries, as `{prefix}-{name}`, and their
    sorting parameters."""
    parameters: Json = {}
    for history in (False, True):
        prefix = _prefix(history=history)
        for name, (description, filter_schema) in _filters(history=history).items():
            array = filter_schema.get("type") == "array"
            parameters[f"{prefix}-{name}"] = {
                "name": name,
                "in": "query",
                "description": description,
                "schema": filter_schema,
                **({"explode": False} if array else {}),
            }
        sort_keys = HISTORY_SORT_KEYS if history else RUNTIME_SORT_KEYS
        parameters[f"{prefix}-sortBy"] = {
            "name": "sortBy",
            "in": "query",
            "description": "Only together with `sortOrder`.",
            "schema": {"enum": list(sort_keys)},
        }
        parameters[f"{prefix}-sortOrder"] = {
            "name": "sortOrder",
            "in": "query",
            "description": "Only together with `sortBy`.",
            "schema": _SORT_ORDERS,
        }
    return parameters


# --- paths -----------------------------------------------------------------------------

_QUERY_400 = (
    "A filter, paging or sorting parameter Camunda refuses (`Cannot set query parameter "
    "'...' to value '...'`, `Only a single sorting parameter specified. sortBy and sortOrder "
    "required`, `Invalid variable comparator specified: ...`, `variable query parameter has "
    "to have format KEY_OPERATOR_VALUE.`, `Only string values can be used with 'like' "
    "condition`, `Only a single variable value parameter specified: ...`), more ids, "
    "conditions or sorting entries than allowed, or text containing NUL: "
    "`InvalidRequestException`."
)


def _query(  # noqa: PLR0913 - an operation's texts, its answer and how it is asked
    operation_id: str,
    summary: str,
    ok: Json,
    *,
    history: bool,
    listing: bool,
    by_body: bool,
) -> Json:
    prefix = _prefix(history=history)
    tags = _HISTORY_TAGS if history else _RUNTIME_TAGS
    paging = ("FirstResult", "MaxResults", "DeserializeValues") if listing else ()
    description = (
        "Matching variables, in order (`v.id` when no sorting is given), with paging."
        if listing
        else "How many variables match."
    )
    if by_body:
        return operation(
            operation_id,
            summary,
            description + " The filters as a JSON body; paging stays in the query string.",
            {"200": ok, **json_body_common(), **errors(s400=f"{_QUERY_400} {BAD_JSON}")},
            parameters=parameter_refs(*paging),
            body=json_body(schema(f"{prefix}Query"), "The query; none is `{}`.", required=False),
            tags=tags,
        )
    names = [*_filters(history=history), *(("sortBy", "sortOrder") if listing else ())]
    return operation(
        operation_id,
        summary,
        description,
        {"200": ok, **common(path=False), **errors(s400=_QUERY_400)},
        parameters=[
            *parameter_refs(*(f"{prefix}-{name}" for name in names)),
            *parameter_refs(*paging),
        ],
        tags=tags,
    )


def _paths_of(*, history: bool) -> Json:
    prefix = _prefix(history=history)
    base = "/history/variable-instance" if history else "/variable-instance"
    resource = "Historic variable instance" if history else "Variable instance"
    word = "historic " if history else ""
    title = "Historic variable instances" if history else "Variable instances"
    tags = _HISTORY_TAGS if history else _RUNTIME_TAGS
    # The first instance a query lists leads to the routes that take its id.
    by_id = {f"Get{prefix}": f"get{prefix}", f"Get{prefix}Data": f"get{prefix}Data"}
    if history:
        by_id["DeleteHistoricVariableInstance"] = "deleteHistoricVariableInstance"
    listed = json_response(
        schema(f"{prefix}List"),
        "The matching variable instances.",
        links=links({"id": "$response.body#/0/id"}, **by_id),
    )
    counted = json_response(schema("Count"), "How many match.")
    not_found = (
        f"No such {word}variable instance: `InvalidRequestException` `{resource} with Id "
        "'{id}' does not exist.`"
        + ("" if history else " (also for a variable of a closed case instance)")
    )
    found: Json = {
        base: {
            "get": _query(
                f"query{prefix}s",
                f"Query {title.lower()}",
                listed,
                history=history,
                listing=True,
                by_body=False,
            ),
            "post": _query(
                f"query{prefix}sByBody",
                f"Query {title.lower()} (JSON body)",
                listed,
                history=history,
                listing=True,
                by_body=True,
            ),
        },
        f"{base}/count": {
            "get": _query(
                f"count{prefix}s",
                f"Count {title.lower()}",
                counted,
                history=history,
                listing=False,
                by_body=False,
            ),
            "post": _query(
                f"count{prefix}sByBody",
                f"Count {title.lower()} (JSON body)",
                counted,
                history=history,
                listing=False,
                by_body=True,
            ),
        },
        f"{base}/{{id}}": {
            "get": operation(
                f"get{prefix}",
                f"Get a {word}variable instance",
                "One variable instance by id.",
                {
                    "200": json_response(schema(prefix), "The variable instance."),
                    **common(),
                    **errors(s404=not_found),
                },
                # deserializeValues too: Camunda's OpenAPI document names it so for history.
                parameters=[
                    _VARIABLE_INSTANCE_ID,
                    *parameter_refs("DeserializeValue", "DeserializeValues"),
                ],
                tags=tags,
            ),
        },
        f"{base}/{{id}}/data": {
            method: {
                **download(
                    f"{method}{prefix}Data",
                    with_body=method == "get",
                    parameters=(_VARIABLE_INSTANCE_ID,),
                    not_found=not_found,
                    id_meaning="the variable instance id",
                ),
                "tags": list(tags),
            }
            for method in ("get", "head")
        },
    }
    if history:
        found[f"{base}/{{id}}"]["delete"] = operation(
            "deleteHistoricVariableInstance",
            "Delete a historic variable instance",
            "Deletes the variable of a closed case instance (its S3 object is collected "
            "after `CASEVARS_GC_GRACE_SECONDS`). casevars keeps one copy of a variable: "
            "the history of a case instance not closed is its runtime variable, and "
            "deleting it is refused (Camunda deletes only its history copy).",
            {
                "204": empty_response("Deleted."),
                **common(),
                **errors(
                    s400=f"The case instance is not closed: `BadUserRequestException`, "
                    f"`code` 0 (Camunda: 204); an id longer than {MAX_ID_LENGTH} characters.",
                    s404="No such historic variable instance: `InvalidRequestException` "
                    "`No historic variable instance found with id: {id}: variable is null`.",
                ),
            },
            parameters=[_VARIABLE_INSTANCE_ID],
            tags=tags,
        )
    return found


def paths() -> Json:
    return {**_paths_of(history=False), **_paths_of(history=True)}
