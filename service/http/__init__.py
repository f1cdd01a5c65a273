"""The HTTP edge (aiohttp): the route table, one module of handlers per kind of route,
request bodies, errors in Camunda's format, authentication, metrics, logs, OpenAPI.
Talks to Postgres and S3 only through service.storage."""
