"""MIME types of `data` parts: parameters split at `;` outside quotes only."""

import pytest

from service.camunda import mime


@pytest.mark.parametrize(
    ("text", "essence", "parameters"),
    [
        ("text/plain", "text/plain", {}),
        ("Text/Plain;", "text/plain", {}),
        (
            "text/plain; charset=UTF-8; transient=true",
            "text/plain",
            {"charset": "UTF-8", "transient": "true"},
        ),
        ('text/plain; name="a;b"', "text/plain", {"name": "a;b"}),
        (
            'text/plain; name="a;b"; encoding=UTF-16',
            "text/plain",
            {"name": "a;b", "encoding": "UTF-16"},
        ),
        (' text/plain ; A=b ;; c="d\\"e"', "text/plain", {"a": "b", "c": 'd"e'}),
    ],
)
def test_media_types_that_parse(text, essence, parameters):
    parsed = mime.parse(text)
    assert parsed is not None
    assert parsed.essence == essence
    assert parsed.parameters == parameters


@pytest.mark.parametrize(
    "text",
    [
        "text",
        "text/plain x",
        "text/plain; a",
        "text/plain; =b",
        "text/plain;a=b c",
        'text/plain; a="x"y',
        'a/b; c="open',
    ],
)
def test_text_that_is_no_media_type(text):
    assert mime.parse(text) is None
