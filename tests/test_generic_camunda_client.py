"""generic-camunda-client (Camunda's own OpenAPI document, generated into a Python
client by OpenAPI Generator) against a running `casevars serve`: every operation of its
VariableInstanceApi and HistoricVariableInstanceApi, on case variables. The client
talks to the real process over a socket; the case instances and values it reads are
set up through casevars's routes (the client has no CMMN operations)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.conftest import new_id
from tests.forms import FORM, body, part
from tests.serving import Serve, serving

generic_camunda_client = pytest.importorskip("generic_camunda_client")
from generic_camunda_client.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Serve]:
    async with serving(endpoints, tmp_path) as started:
        yield started


class Casevars:
    """Sets up case instances through casevars's own routes, and builds the client."""

    def __init__(self, serve: Serve, tmp_path: Path) -> None:
        self.root = f"http://127.0.0.1:{serve.port}"
        # Where Camunda mounts its REST API, the client's default base path.
        rest_root = self.root + "/engine-rest"
        self.http = urllib3.PoolManager()
        configuration = generic_camunda_client.Configuration(host=rest_root)
        configuration.temp_folder_path = str(tmp_path)
        self.client = generic_camunda_client.ApiClient(configuration)

    def request(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        return self.http.request(method, self.root + path, **kwargs)

    def case_with_variables(self) -> str:
        case_id = new_id()
        assert self.request("PUT", f"/case-instance/{case_id}").status == 201
        modifications = {
            "text": {"value": "Hello", "type": "String"},
            "amount": {"value": 150, "type": "Integer"},
            "order": {
                "value": '{"id": 7}',
                "type": "Object",
                "valueInfo": {
                    "objectTypeName": "com.example.Order",
                    "serializationDataFormat": "application/json",
                },
            },
        }
        modified = self.request(
            "POST",
            f"/case-instance/{case_id}/variables",
            body=json.dumps({"modifications": modifications}),
            headers={"Content-Type": "application/json"},
        )
        assert modified.status == 204, modified.data
        form = body(
            part("data", b"%PDF-1.7 content", "application/pdf", filename="invoice.pdf"),
            part("valueType", b"File"),
        )
        uploaded = self.request(
            "POST",
            f"/case-instance/{case_id}/variables/invoice/data",
            body=form,
            headers={"Content-Type": FORM},
        )
        assert uploaded.status == 204, uploaded.data
        return case_id

    def close(self, case_id: str) -> None:
        for transition in ("complete", "close"):
            response = self.request(
                "POST",
                f"/case-instance/{case_id}/{transition}",
                body=b"{}",
                headers={"Content-Type": "application/json"},
            )
            assert response.status == 204, response.data


async def _in_thread(function: Callable[[], Any]) -> Any:
    """The client blocks (urllib3): off the test's loop."""
    return await asyncio.to_thread(function)


def _runtime(casevars: Casevars) -> None:
    case_id = casevars.case_with_variables()
    api = generic_camunda_client.VariableInstanceApi(casevars.client)

    listed = api.get_variable_instances(
        case_instance_id_in=case_id, sort_by="variableName", sort_order="asc"
    )
    assert [dto.name for dto in listed] == ["amount", "invoice", "order", "text"]
    by_name = {dto.name: dto for dto in listed}
    amount = by_name["amount"]
    assert (amount.type, amount.value) == ("Integer", 150)
    assert amount.case_instance_id == case_id
    assert amount.case_execution_id == case_id
    assert amount.activity_instance_id == case_id
    assert amount.process_instance_id is None
    assert amount.error_message is None
    assert by_name["order"].value == {"id": 7}
    invoice = by_name["invoice"]
    assert invoice.type == "File"
    assert invoice.value is None
    assert invoice.value_info == {"filename": "invoice.pdf", "mimeType": "application/pdf"}

    serialized = api.get_variable_instances(
        case_instance_id_in=case_id, variable_name="order", deserialize_values=False
    )
    assert [dto.value for dto in serialized] == ['{"id": 7}']
    matching = api.get_variable_instances(
        case_execution_id_in=case_id, variable_values="amount_gteq_100"
    )
    assert matching == []  # a query-string value is text, as in Camunda
    page = api.get_variable_instances(
        case_instance_id_in=case_id,
        sort_by="variableName",
        sort_order="desc",
        first_result=1,
        max_results=2,
    )
    assert [dto.name for dto in page] == ["order", "invoice"]
    assert api.get_variable_instances_count(case_instance_id_in=case_id).count == 4
    assert (
        api.get_variable_instances_count(
            case_instance_id_in=case_id, process_instance_id_in="p"
        ).count
        == 0
    )

    query = generic_camunda_client.VariableInstanceQueryDto(
        case_instance_id_in=[case_id],
        variable_values=[
            generic_camunda_client.VariableQueryParameterDto(
                name="amount", operator="gteq", value=100
            )
        ],
        sorting=[
            generic_camunda_client.VariableInstanceQueryDtoSorting(
                sort_by="variableName", sort_order="asc"
            )
        ],
    )
    assert [
        dto.name for dto in api.query_variable_instances(variable_instance_query_dto=query)
    ] == ["amount"]
    assert api.query_variable_instances_count(variable_instance_query_dto=query).count == 1

    one = api.get_variable_instance(amount.id)
    assert one.to_dict() == amount.to_dict()
    assert (
        api.get_variable_instance(by_name["order"].id, deserialize_value=False).value == '{"id": 7}'
    )
    path = api.get_variable_instance_binary(invoice.id)
    assert Path(path).read_bytes() == b"%PDF-1.7 content"
    assert Path(path).name == "invoice.pdf"  # from Content-Disposition
    with pytest.raises(ApiException) as refused:
        api.get_variable_instance_binary(amount.id)
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["message"] == (
        f"Value of variable with id {amount.id} is not a binary value."
    )
    with pytest.raises(ApiException) as missing:
        api.get_variable_instance("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404


def _history(casevars: Casevars) -> None:
    case_id = casevars.case_with_variables()
    runtime = generic_camunda_client.VariableInstanceApi(casevars.client)
    api = generic_camunda_client.HistoricVariableInstanceApi(casevars.client)
    ids = {dto.name: dto.id for dto in runtime.get_variable_instances(case_instance_id_in=case_id)}
    casevars.close(case_id)
    assert runtime.get_variable_instances_count(case_instance_id_in=case_id).count == 0

    listed = api.get_historic_variable_instances(
        case_instance_id=case_id, sort_by="variableName", sort_order="asc"
    )
    assert [dto.name for dto in listed] == ["amount", "invoice", "order", "text"]
    amount = listed[0]
    assert amount.id == ids["amount"]
    assert amount.state == "CREATED"
    assert amount.create_time is not None  # parsed into a datetime by the client
    assert amount.case_execution_id == case_id
    assert amount.value == 150
    assert api.get_historic_variable_instances_count(case_instance_id=case_id).count == 4
    assert (
        api.get_historic_variable_instances(
            case_instance_id=case_id, variable_name="text", variable_value="Hello"
        )[0].value
        == "Hello"
    )
    assert (
        api.get_historic_variable_instances(case_instance_id=case_id, variable_type_in="file")[
            0
        ].name
        == "invoice"
    )

    query = generic_camunda_client.HistoricVariableInstanceQueryDto(
        case_instance_id=case_id,
        variable_name="amount",
        variable_value=150,
        sorting=[
            generic_camunda_client.HistoricVariableInstanceQueryDtoSorting(
                sort_by="tenantId", sort_order="asc"
            )
        ],
    )
    found = api.query_historic_variable_instances(historic_variable_instance_query_dto=query)
    assert [dto.id for dto in found] == [ids["amount"]]
    assert (
        api.query_historic_variable_instances_count(
            historic_variable_instance_query_dto=query
        ).count
        == 1
    )

    assert (
        api.get_historic_variable_instance(ids["order"], deserialize_values=False).value
        == '{"id": 7}'
    )
    path = api.get_historic_variable_instance_binary(ids["invoice"])
    assert Path(path).read_bytes() == b"%PDF-1.7 content"

    assert api.delete_historic_variable_instance(ids["invoice"]) is None
    with pytest.raises(ApiException) as gone:
        api.get_historic_variable_instance(ids["invoice"])
    assert gone.value.status == 404
    with pytest.raises(ApiException) as again:
        api.delete_historic_variable_instance(ids["invoice"])
    assert again.value.status == 404
    assert api.get_historic_variable_instances_count(case_instance_id=case_id).count == 3


async def test_variable_instance_api(serve, tmp_path):
    casevars = Casevars(serve, tmp_path)
    await _in_thread(lambda: _runtime(casevars))


async def test_historic_variable_instance_api(serve, tmp_path):
    casevars = Casevars(serve, tmp_path)
    await _in_thread(lambda: _history(casevars))


async def test_a_running_case_instances_history_is_not_deleted(serve, tmp_path):
    casevars = Casevars(serve, tmp_path)

    def check() -> None:
        case_id = casevars.case_with_variables()
        api = generic_camunda_client.HistoricVariableInstanceApi(casevars.client)
        (text,) = api.get_historic_variable_instances(
            case_instance_id=case_id, variable_name="text"
        )
        with pytest.raises(ApiException) as refused:
            api.delete_historic_variable_instance(text.id)
        assert refused.value.status == 400
        assert json.loads(refused.value.body)["type"] == "BadUserRequestException"
        runtime = generic_camunda_client.VariableInstanceApi(casevars.client)
        assert runtime.get_variable_instance(text.id).value == "Hello"

    await _in_thread(check)
