"""Seer: the service side (HTTP APIs, ingestion, storage, prediction). Never imports torch."""
