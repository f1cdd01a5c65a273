"""The CMMN document of a casevars case definition (GET /case-definition/{id}/xml).

casevars deploys no CMMN models: a definition is a key (per tenant), and its instances
have no plan items. Its document says just that, as a valid CMMN 1.1 model: one case
whose id is the key (Camunda's case definition key is the case element's id) and an
empty case plan model, with the definition's history time to live in Camunda's own
extension attribute when one is set. A key that cannot be an XML id (an NCName) gets a
derived id, and the key is the case's name."""

from __future__ import annotations

import re
import uuid
from xml.sax.saxutils import quoteattr

CMMN_NAMESPACE = "http://www.omg.org/spec/CMMN/20151109/MODEL"
CAMUNDA_NAMESPACE = "http://camunda.org/schema/1.0/cmmn"
TARGET_NAMESPACE = "urn:casevars:case-definition"
PLAN_MODEL_ID = "casePlanModel"
# An XML NCName in its ASCII form (xsd:ID values are NCNames); longer Unicode names
# are valid XML too, but a derived id is as good a name for those.
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


def _is_xml_text(text: str) -> bool:
    """Whether XML 1.0 can hold the text (no control characters but tab and line ends,
    no surrogates, not U+FFFE or U+FFFF): a key with others gets no name."""
    return all(
        char in "\t\n\r"
        or ("\x20" <= char <= "\ufffd" and not "\ud800" <= char <= "\udfff")
        or char >= "\U00010000"
        for char in text
    )


def case_element_id(key: str) -> str:
    """The id of the case element: the key itself when it is an NCName other than the
    plan model's id, else one derived from it (the same every time)."""
    if _NCNAME.fullmatch(key) and key != PLAN_MODEL_ID:
        return key
    return f"case_{uuid.uuid5(uuid.NAMESPACE_URL, TARGET_NAMESPACE + ':' + key).hex}"


def case_definition_xml(definition_id: str, key: str, history_ttl_days: int | None) -> str:
    """The CMMN 1.1 document of the definition."""
    case_id = case_element_id(key)
    attributes = [f"id={quoteattr(case_id)}"]
    if case_id != key and _is_xml_text(key):
        attributes.append(f"name={quoteattr(key)}")
    if history_ttl_days is not None:
        attributes.append(f'camunda:historyTimeToLive="{history_ttl_days}"')
    definitions_id = "definitions_" + uuid.uuid5(uuid.NAMESPACE_URL, definition_id).hex
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<definitions xmlns="{CMMN_NAMESPACE}" xmlns:camunda="{CAMUNDA_NAMESPACE}" '
        f'id="{definitions_id}" targetNamespace="{TARGET_NAMESPACE}" exporter="casevars">\n'
        f"  <case {' '.join(attributes)}>\n"
        f'    <casePlanModel id="{PLAN_MODEL_ID}" autoComplete="false"/>\n'
        "  </case>\n"
        "</definitions>\n"
    )
