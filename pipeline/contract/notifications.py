"""Custom Vision's training notification, as the training job posts it to the queue a project's settings name
(`{"version":"1.0","type":"Training","Content":{projectId, iterationId, trainingStatus}}`)."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field

from pipeline.core.vocabulary import IterationStatus


class TrainingContent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    project_id: str = Field(alias="projectId")
    iteration_id: str = Field(alias="iterationId")
    training_status: IterationStatus = Field(alias="trainingStatus")


class TrainingNotification(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: str = "1.0"
    type: str = "Training"  # the notification's kind, not an iteration status
    content: TrainingContent = Field(alias="Content")

    def encode(self) -> str:
        """The queue message body: base64 JSON with Custom Vision's field names."""
        return base64.b64encode(self.model_dump_json(by_alias=True).encode()).decode()
