"""pycamunda 0.6.1 (a Python Camunda client written by others, on `requests`) against a
running `casevars serve`, at Camunda's REST root /engine-rest: every request of its
caseinst module (Get, GetList, Count, Complete, Close, Terminate), of its casedef module
(CreateInstance, GetList, Count, Get, GetXML, GetDiagram, UpdateHistoryTimeToLive, by
id, key and key and tenant) and of its variable module (the variable instances'
GetList and Get). The client is synchronous, so each call runs in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pycamunda
import pycamunda.casedef
import pycamunda.caseinst
import pycamunda.variable
import pytest

from tests.conftest import new_id
from tests.serving import Serve, serving

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Serve]:
    async with serving(endpoints, tmp_path) as started:
        yield started


@pytest.fixture
def url(serve: Serve) -> str:
    return f"http://127.0.0.1:{serve.port}/engine-rest"


async def _call(request: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(request)


async def _create(url: str, key: str, business_key: str, **variables: Any) -> Any:
    create = pycamunda.casedef.CreateInstance(url, key=key, business_key=business_key)
    for name, value in variables.items():
        create.add_variable(name, value)
    return await _call(create)


async def test_create_get_list_and_count(url):
    key = new_id("claims")
    first = await _create(url, key, "order-1", amount=12)
    second = await _create(url, key, "order-2")
    assert first.active is True
    assert first.completed is False
    assert first.business_key == "order-1"

    fetched = await _call(pycamunda.caseinst.Get(url, first.id_))
    assert (fetched.id_, fetched.business_key, fetched.active) == (first.id_, "order-1", True)

    listed = await _call(
        pycamunda.caseinst.GetList(url, case_definition_key=key, sort_by="case_instance_id")
    )
    assert [case.id_ for case in listed] == sorted([first.id_, second.id_])
    one = await _call(pycamunda.caseinst.GetList(url, business_key="order-2"))
    assert [case.id_ for case in one] == [second.id_]
    paged = await _call(
        pycamunda.caseinst.GetList(url, case_definition_key=key, first_result=1, max_results=1)
    )
    assert len(paged) == 1
    assert await _call(pycamunda.caseinst.Count(url, case_definition_key=key)) == 2
    assert await _call(pycamunda.caseinst.Count(url, case_definition_key=key, active=True)) == 2
    completed = pycamunda.caseinst.Count(url, case_definition_key=key, completed=True)
    assert await _call(completed) == 0


async def test_complete_with_variables_and_deletions_then_close(url, serve):
    key = new_id("claims")
    case = await _create(url, key, "order-3", gone="x", kept="y")
    complete = pycamunda.caseinst.Complete(url, case.id_, deletions=["gone"])
    complete.add_variable("decision", "approved", type_="String", local=True)
    complete.add_variable("amount", 42)
    await _call(complete)

    shown = await _call(pycamunda.caseinst.Get(url, case.id_))
    assert (shown.active, shown.completed) == (False, True)
    completed = pycamunda.caseinst.GetList(url, case_definition_key=key, completed=True)
    assert [found.id_ for found in await _call(completed)] == [case.id_]
    status, raw = await serve.request(
        f"GET /case-instance/{case.id_}/variables HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert status == 200
    assert b'"gone"' not in raw
    assert b'"decision":{"type":"String","value":"approved"' in raw
    assert b'"amount":{"type":"Integer","value":42' in raw

    await _call(pycamunda.caseinst.Close(url, case.id_))
    with pytest.raises(pycamunda.NotFound, match="Case instance with id"):
        await _call(pycamunda.caseinst.Get(url, case.id_))
    assert await _call(pycamunda.caseinst.Count(url, case_definition_key=key)) == 0
    # History keeps it.
    status, raw = await serve.request(
        f"GET /engine-rest/history/case-instance/{case.id_} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert status == 200
    assert b'"closed":true' in raw


async def test_terminate_and_refused_transitions(url):
    case = await _create(url, new_id("claims"), "order-4")
    with pytest.raises(pycamunda.Forbidden, match="ENGINE-05008"):
        await _call(pycamunda.caseinst.Close(url, case.id_))
    terminate = pycamunda.caseinst.Terminate(url, case.id_)
    terminate.add_variable("reason", "withdrawn")
    await _call(terminate)
    shown = await _call(pycamunda.caseinst.Get(url, case.id_))
    assert (shown.active, shown.completed) == (False, False)
    with pytest.raises(pycamunda.Forbidden, match="already in state 'terminated'"):
        await _call(pycamunda.caseinst.Terminate(url, case.id_))
    with pytest.raises(pycamunda.Forbidden, match="must be in state 'active' to complete"):
        await _call(pycamunda.caseinst.Complete(url, case.id_))
    bad = pycamunda.caseinst.Close(url, case.id_)
    bad.add_variable("n", "abc", type_="Integer")
    with pytest.raises(pycamunda.BadRequest, match="due to invalid variable n"):
        await _call(bad)
    await _call(pycamunda.caseinst.Close(url, case.id_))
    with pytest.raises(pycamunda.NotFound, match="There does not exist any case execution"):
        await _call(pycamunda.caseinst.Complete(url, case.id_))


async def test_create_by_definition_id(url):
    """Uses B's POST /case-definition/{id}/create (the id of Camunda's shape,
    key:version:uuid, that casevars gives the instances of a key)."""
    key = new_id("claims")
    by_key = await _create(url, key, "order-5")
    definition_id = by_key.definition_id
    assert definition_id is not None
    assert definition_id.startswith(f"{key}:")
    create = pycamunda.casedef.CreateInstance(url, id_=definition_id, business_key="order-6")
    create.add_variable("amount", 7)
    by_id = await _call(create)
    assert by_id.definition_id == definition_id
    listed = await _call(pycamunda.caseinst.GetList(url, case_definition_id=definition_id))
    assert sorted(case.id_ for case in listed) == sorted([by_key.id_, by_id.id_])


async def test_case_definitions_read_their_document_diagram_and_time_to_live(url):
    """casedef GetList, Count, Get, GetXML, GetDiagram and UpdateHistoryTimeToLive, by
    id, by key and by key and tenant."""
    key = new_id("defs")
    plain = (await _create(url, key, "p")).definition_id
    tenant = pycamunda.casedef.CreateInstance(url, key=key, tenant_id="acme", business_key="t")
    acme = (await _call(tenant)).definition_id

    listed = await _call(pycamunda.casedef.GetList(url, key=key, sort_by="id_"))
    assert [definition.id_ for definition in listed] == sorted([plain, acme])
    assert await _call(pycamunda.casedef.Count(url, key=key, tenant_id_in=["acme"])) == 1
    for request, expected in [
        (pycamunda.casedef.Get(url, id_=plain), plain),
        (pycamunda.casedef.Get(url, key=key), plain),
        (pycamunda.casedef.Get(url, key=key, tenant_id="acme"), acme),
    ]:
        found = await _call(request)
        assert (found.id_, found.key, found.version) == (expected, key, 1)
        assert found.history_time_to_live is None

    xml = await _call(pycamunda.casedef.GetXML(url, key=key, tenant_id="acme"))
    assert f'<case id="{key}"' in xml
    assert await _call(pycamunda.casedef.GetDiagram(url, id_=plain)) == b""  # 204: none

    await _call(pycamunda.casedef.UpdateHistoryTimeToLive(url, 45, key=key, tenant_id="acme"))
    assert (await _call(pycamunda.casedef.Get(url, id_=acme))).history_time_to_live == 45
    await _call(pycamunda.casedef.UpdateHistoryTimeToLive(url, None, id_=acme))
    assert (await _call(pycamunda.casedef.Get(url, id_=acme))).history_time_to_live is None
    with pytest.raises(pycamunda.NotFound, match="No matching case definition with key"):
        await _call(pycamunda.casedef.GetXML(url, key=new_id("none")))


async def test_variable_instances(url):
    """variable GetList (GET /variable-instance) and Get (GET /variable-instance/{id})."""
    key = new_id("vars")
    case = await _create(url, key, "v", amount=12, note="hello")
    listed = await _call(
        pycamunda.variable.GetList(url, case_instance_id_in=[case.id_], sort_by="name")
    )
    assert [(found.name, found.value) for found in listed] == [("amount", 12), ("note", "hello")]
    assert all(found.case_execution_id == case.id_ for found in listed)
    assert all(found.process_instance_id is None for found in listed)
    named = await _call(
        pycamunda.variable.GetList(url, case_instance_id_in=[case.id_], name_like="no%")
    )
    assert [found.name for found in named] == ["note"]
    one = await _call(pycamunda.variable.Get(url, listed[0].id_))
    assert (one.id_, one.name, one.type_, one.value) == (listed[0].id_, "amount", "Integer", 12)
    with pytest.raises(pycamunda.NotFound, match="Variable instance with Id"):
        await _call(pycamunda.variable.Get(url, new_id("none")))
