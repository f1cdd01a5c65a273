"""structlog setup (JSON lines or console) and the one-line-per-request access logger."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from service.config import LogFormat
from service.http import paths
from service.private_api import request_body_bytes, response_bytes_sent

REQUEST_ID_KEY = web.RequestKey("request_id", str)
# Who the request's credentials proved to be (auth.py): "user:<name>" or
# "token:<fingerprint>"; absent when authentication is off or the route is open.
PRINCIPAL_KEY = web.RequestKey("principal", str)
# Bytes of a download relayed in the kernel (relay.py), which aiohttp never saw.
RELAYED_BYTES_KEY = web.RequestKey("relayed_bytes", int)
_access_log = structlog.get_logger("casevars.access")


def _json_dumps(event: Any, **_: Any) -> str:
    try:
        return orjson.dumps(event, default=str).decode()
    except TypeError:
        # A lone surrogate (bytes a client sent that are not UTF-8), which orjson
        # refuses: the standard library writes it as a \udcxx escape, still one line.
        return json.dumps(event, default=str)


def configure(log_format: LogFormat, level: str) -> None:
    """Route structlog and the standard library's loggers to one stream, one format."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log is replaced by AccessLogger below.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """One line per request: id, method, route, status, bytes, duration. Never bodies,
    query strings or headers, which may carry credentials. bytes_in counts the body
    bytes actually received (a refused upload shows how little was read), bytes_out
    the response as sent, headers and relayed bytes included."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = paths.route_of(request)
        _access_log.info(
            "request",
            request_id=request.get(REQUEST_ID_KEY),
            method=request.method,
            route=route,
            status=response.status,
            bytes_in=request_body_bytes(request),
            bytes_out=response_bytes_sent(response) + request.get(RELAYED_BYTES_KEY, 0),
            duration_ms=round(time * 1000, 2),
            remote=request.remote,
            principal=request.get(PRINCIPAL_KEY),
        )

    @property
    def enabled(self) -> bool:
        return logging.getLogger("casevars.access").isEnabledFor(logging.INFO)
