"""Every web.AppKey, in one place."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.config import Endpoints, Settings
from service.http.shutdown import InFlight
from service.storage.blobstore import BlobStore
from service.storage.budget import MemoryBudget
from service.storage.db import Pool
from service.storage.repository import Repository
from service.storage.resumable import ResumableUploads

SETTINGS = web.AppKey("settings", Settings)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
REPOSITORY = web.AppKey("repository", Repository)
BLOBS = web.AppKey("blobs", BlobStore)
# Resumable (tus) uploads: their rows, parts and commits.
UPLOADS = web.AppKey("uploads", ResumableUploads)
# The process's one memory budget (CASEVARS_MEMORY_BUDGET_BYTES): upload part buffers
# and Bytes inlined in JSON views are taken from it.
BUDGET = web.AppKey("budget", MemoryBudget)
# The process's one asyncpg pool, shared by the repository and the collector.
POOL = web.AppKey("pool", Pool)
# The background collector task (absent when CASEVARS_COLLECTOR_INTERVAL_SECONDS is 0).
COLLECTOR = web.AppKey("collector", asyncio.Task[None])
# Requests being handled; its `stopping` event is set when SIGTERM arrives (readiness
# answers 503 from then on).
IN_FLIGHT = web.AppKey("in_flight", InFlight)
