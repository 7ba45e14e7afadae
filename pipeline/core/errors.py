"""Custom Vision style errors: `{"code": ..., "message": ...}` with the spec's codes and HTTP statuses."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str


class CustomVisionError(Exception):
    """An error the API reports to the client; raise it anywhere in `pipeline`, the app renders it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message)


def bad_request(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(400, code, message)


def not_found(code: str, message: str) -> CustomVisionError:
    return CustomVisionError(404, code, message)


def unauthorized() -> CustomVisionError:
    return CustomVisionError(
        401,
        "Unauthorized",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
        "for an active subscription and use a correct regional API endpoint for your resource.",
    )


def project_not_found(project_id: str) -> CustomVisionError:
    return not_found("NotFoundProject", f"Project {project_id} not found.")


def tag_not_found(tag_id: str) -> CustomVisionError:
    return not_found("NotFoundTag", f"Tag {tag_id} not found.")


def iteration_not_found(iteration_id: str) -> CustomVisionError:
    return not_found("NotFoundIteration", f"Iteration {iteration_id} not found.")
