"""The numbered SQL migrations: package data of service.migrations (see pyproject.toml)."""
