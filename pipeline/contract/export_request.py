"""What an export request hands the export job (training_job/exports): the `exports` queue message."""

from __future__ import annotations

import base64

from pydantic import BaseModel

from pipeline.contract.exports import ExportFlavor, ExportPlatform, ExportPrecision


class ExportMessage(BaseModel):
    """The body of an `exports` queue message (base64 JSON, like the training queue's). `request_id` names the
    request that queued it: a message whose export was asked for again since is dropped."""

    project_id: str
    iteration_id: str
    platform: ExportPlatform
    flavor: ExportFlavor | None
    precision: ExportPrecision
    request_id: str

    def encode(self) -> str:
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def decode(cls, content: str) -> ExportMessage:
        return cls.model_validate_json(base64.b64decode(content, validate=True))
