"""Every web.AppKey, in one place."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.blobstore import BlobStore
from service.config import Endpoints, Settings
from service.repository import Repository

SETTINGS = web.AppKey("settings", Settings)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
REPOSITORY = web.AppKey("repository", Repository)
BLOBS = web.AppKey("blobs", BlobStore)
# Set when SIGTERM arrives: readiness answers 503 from then on.
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
